//! Report containers: gzip, zip, RFC 5322 messages (`.eml`) and mbox, unpacked in memory into
//! the report documents they carry.
//!
//! Anyone can mail a report address, so every container is hostile until proven otherwise.
//! Formats are detected by their leading bytes, never by the file name. Decompression reads in
//! bounded chunks (`Read::take`) against a shared budget: the total decompressed size, the
//! expansion ratio of each archive, the archive nesting depth and the number of entries are all
//! capped by [`Limits`], and declared sizes in archive headers are never trusted.
//!
//! A gzip stream that is truncated, or followed by bytes that are not another gzip member (both
//! seen from real reporters), is refused in [`Mode::Strict`]; in [`Mode::Lenient`] what
//! decompressed is kept, within the same caps, with a warning [`Problem`] on each document found
//! in it (parsedmarc recovers such reports too). An mbox's messages past
//! [`Limits::max_messages`] are skipped, and counted in [`Extraction::skipped`].

use std::io::{Cursor, Read};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::Serialize;

use super::{Mode, Problem};

/// Caps applied while unpacking one input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes all decompression of one input may produce.
    pub max_decompressed: usize,
    /// Largest allowed ratio of decompressed bytes to the archive's own size.
    pub max_ratio: u64,
    /// Largest number of archive layers (gzip, zip) nested inside each other.
    pub max_depth: u8,
    /// Largest number of entries (zip members, MIME parts) in one input, or in one message of
    /// an mbox.
    pub max_entries: usize,
    /// Messages of an mbox read, at most; the ones after are skipped (and counted in
    /// [`Extraction::skipped`]), not a reason to refuse the whole mbox.
    pub max_messages: usize,
}

impl Default for Limits {
    /// 50 MiB, ratio 100, two nested archives, 1,000 entries, 1,000 mbox messages.
    fn default() -> Self {
        Self {
            max_decompressed: 50 * 1024 * 1024,
            max_ratio: 100,
            max_depth: 2,
            max_entries: 1_000,
            max_messages: 1_000,
        }
    }
}

/// What a leaf document looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// XML, presumably a DMARC aggregate report (RFC 7489 appendix C / RFC 9990).
    AggregateXml,
    /// JSON, presumably an SMTP TLS report (RFC 8460).
    TlsJson,
    /// An email carrying a failure report (ARF, RFC 6591, or a plain-text one).
    FailureEml,
    /// Not recognised.
    Unknown,
}

/// One document found inside an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Path of the document inside the input, e.g. `report.eml/rua.zip/rua.xml`.
    pub name: String,
    /// The document's bytes, fully decoded and decompressed.
    pub bytes: Vec<u8>,
    /// What the document looks like.
    pub kind: Kind,
    /// What was wrong with the containers it came out of and was recovered (lenient mode: a
    /// truncated gzip stream, junk after one); empty for nearly every document.
    pub problems: Vec<Problem>,
}

/// What one input held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extraction {
    /// The documents found, in order.
    pub docs: Vec<Extracted>,
    /// The mboxes that had more than [`Limits::max_messages`] messages.
    pub skipped: Vec<Skipped>,
}

/// An mbox whose messages past [`Limits::max_messages`] were skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The mbox.
    pub name: String,
    /// Messages read.
    pub read: usize,
    /// Messages skipped.
    pub skipped: usize,
}

/// Why an input was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// Decompression would exceed the total size cap.
    #[error("{name}: decompressed size exceeds the cap of {max} bytes (decompression bomb?)")]
    TooLarge {
        /// The archive being unpacked.
        name: String,
        /// The cap.
        max: usize,
    },
    /// An archive expands by more than the allowed ratio.
    #[error(
        "{name}: expands {compressed} bytes beyond the allowed ratio {max_ratio}:1 (decompression bomb?)"
    )]
    RatioExceeded {
        /// The archive being unpacked.
        name: String,
        /// The archive's own size.
        compressed: usize,
        /// The cap.
        max_ratio: u64,
    },
    /// Archives are nested deeper than allowed.
    #[error("{name}: archives nested deeper than {max} levels")]
    TooDeep {
        /// The archive that would open one level too many.
        name: String,
        /// The cap.
        max: u8,
    },
    /// More entries than allowed.
    #[error("{name}: more than {max} entries")]
    TooManyEntries {
        /// The container whose entries broke the cap.
        name: String,
        /// The cap.
        max: usize,
    },
    /// A gzip stream or zip archive that cannot be decoded.
    #[error("{name}: corrupt {format} data: {reason}")]
    Corrupt {
        /// The archive.
        name: String,
        /// `gzip` or `zip`.
        format: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The input is empty.
    #[error("{name}: empty input")]
    Empty {
        /// The input.
        name: String,
    },
}

/// Bytes before this many MIME levels are no longer followed (messages forwarded as
/// attachments inside each other); archives are capped separately by [`Limits::max_depth`].
const MAX_MESSAGE_NESTING: u8 = 8;

/// How a byte string should be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Gzip,
    Zip,
    Xml,
    Json,
    Mbox,
    Email,
    Unknown,
}

/// Running totals shared by every layer of one input, and how strictly it is read.
struct Budget<'l> {
    limits: &'l Limits,
    mode: Mode,
    decompressed: usize,
    entries: usize,
    /// Problems of the archive layers being unpacked (given to each document found in them).
    problems: Vec<Problem>,
    skipped: Vec<Skipped>,
}

impl Budget<'_> {
    fn entry(&mut self, name: &str) -> Result<(), ContainerError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ContainerError::TooManyEntries {
                name: name.to_owned(),
                max: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Reads `reader` to the end, refusing output beyond the remaining total budget or beyond
    /// `max_ratio` times `compressed` (what is left of that allowance for this archive is
    /// `ratio_left`).
    fn inflate(
        &mut self,
        name: &str,
        format: &'static str,
        reader: impl Read,
        compressed: usize,
        ratio_left: &mut u64,
    ) -> Result<Vec<u8>, ContainerError> {
        let (out, error) = self.inflate_partial(name, reader, compressed, ratio_left)?;
        match error {
            Some(e) => Err(ContainerError::Corrupt {
                name: name.to_owned(),
                format,
                reason: e.to_string(),
            }),
            None => Ok(out),
        }
    }

    /// As [`Budget::inflate`], but a decoding error is returned beside the bytes decoded before
    /// it (which are counted against the caps like any other); only a broken cap is an `Err`.
    fn inflate_partial(
        &mut self,
        name: &str,
        reader: impl Read,
        compressed: usize,
        ratio_left: &mut u64,
    ) -> Result<(Vec<u8>, Option<std::io::Error>), ContainerError> {
        let total_left = self
            .limits
            .max_decompressed
            .saturating_sub(self.decompressed);
        let cap = (total_left as u64).min(*ratio_left);
        let mut out = Vec::new();
        // One byte past the cap tells "exactly at the cap" from "over it". `read_to_end` keeps
        // what was read before an error.
        let error = reader
            .take(cap.saturating_add(1))
            .read_to_end(&mut out)
            .err();
        let len = out.len() as u64;
        if len > cap {
            if len > total_left as u64 {
                return Err(ContainerError::TooLarge {
                    name: name.to_owned(),
                    max: self.limits.max_decompressed,
                });
            }
            return Err(ContainerError::RatioExceeded {
                name: name.to_owned(),
                compressed,
                max_ratio: self.limits.max_ratio,
            });
        }
        *ratio_left -= len;
        self.decompressed += out.len();
        Ok((out, error))
    }

    /// Decompresses a gzip stream of one or more members (RFC 1952 section 2.2: "A gzip file
    /// consists of a series of "members""). A stream cut short, or followed by bytes that are
    /// not a member, is refused in strict mode; in lenient mode what decompressed is kept and
    /// the deviation is one warning in `self.problems` (the caller's to remove).
    fn gunzip(&mut self, name: &str, bytes: &[u8]) -> Result<Vec<u8>, ContainerError> {
        let mut ratio_left = self.limits.max_ratio.saturating_mul(bytes.len() as u64);
        let mut out = Vec::new();
        let mut rest = bytes;
        let mut problem = None;
        while !rest.is_empty() {
            if !out.is_empty() && !rest.starts_with(&[0x1f, 0x8b]) {
                // Zero padding after the last member (tape-style blocks) is no deviation.
                if rest.iter().any(|&b| b != 0) {
                    problem = Some((
                        format!("{} bytes of junk after the gzip member", rest.len()),
                        "ignored",
                    ));
                }
                break;
            }
            let mut decoder = flate2::bufread::GzDecoder::new(rest);
            let (part, error) =
                self.inflate_partial(name, &mut decoder, bytes.len(), &mut ratio_left)?;
            out.extend_from_slice(&part);
            if let Some(e) = error {
                if out.is_empty() {
                    // Nothing to recover: not gzip after all, or broken from its start.
                    return Err(ContainerError::Corrupt {
                        name: name.to_owned(),
                        format: "gzip",
                        reason: e.to_string(),
                    });
                }
                problem = Some((
                    format!("gzip stream truncated after {} bytes ({e})", out.len()),
                    ": recovered",
                ));
                break;
            }
            let left = decoder.into_inner();
            if left.len() == rest.len() {
                break;
            }
            rest = left;
        }
        if let Some((what, done)) = problem {
            if self.mode == Mode::Strict {
                return Err(ContainerError::Corrupt {
                    name: name.to_owned(),
                    format: "gzip",
                    reason: format!("{what}: refused in strict mode"),
                });
            }
            let sep = if done.starts_with(':') { "" } else { " " };
            self.problems
                .push(Problem::new(self.mode, name, format!("{what}{sep}{done}")));
        }
        Ok(out)
    }
}

/// Unpacks one input file into the report documents it carries.
///
/// The format is detected from the bytes: gzip (`1f 8b`, multi-member streams included), zip
/// (`PK\x03\x04`), XML (`<`), JSON (`{`), an mbox (a first line `From `) or an RFC 5322 message
/// (header fields). A message yields its report attachments (RFC 7489 section 7.2.1.1: "The
/// aggregate data MUST be an XML file that SHOULD be subjected to GZIP compression"; RFC 8460
/// section 5.3: `application/tlsrpt+json` / `application/tlsrpt+gzip`), and, when it is itself a
/// failure report (RFC 6591 `message/feedback-report`, or a plain-text one), the whole message as
/// [`Kind::FailureEml`]. Anything else is returned once as [`Kind::Unknown`].
///
/// An mbox's messages after the first [`Limits::max_messages`] are skipped and listed in
/// [`Extraction::skipped`]. A gzip stream truncated or followed by junk is read as far as it
/// goes in [`Mode::Lenient`] (a warning on each document found in it), refused in
/// [`Mode::Strict`].
///
/// # Errors
/// Refuses the whole input when a cap of `limits` is broken or an archive is corrupt.
pub fn extract(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
    mode: Mode,
) -> Result<Extraction, ContainerError> {
    if bytes.is_empty() {
        return Err(ContainerError::Empty {
            name: name.to_owned(),
        });
    }
    let mut budget = Budget {
        limits,
        mode,
        decompressed: 0,
        entries: 0,
        problems: Vec::new(),
        skipped: Vec::new(),
    };
    let mut docs = Vec::new();
    walk(name, bytes.to_vec(), 0, 0, &mut budget, &mut docs)?;
    Ok(Extraction {
        docs,
        skipped: budget.skipped,
    })
}

fn sniff(bytes: &[u8]) -> Format {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Format::Gzip;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    let text = skip_bom_and_space(bytes);
    match text.first() {
        Some(b'<') => return Format::Xml,
        Some(b'{') | Some(b'[') => return Format::Json,
        _ => {}
    }
    if text.starts_with(b"From ") {
        return Format::Mbox;
    }
    if looks_like_headers(text) {
        return Format::Email;
    }
    Format::Unknown
}

pub(crate) fn skip_bom_and_space(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// RFC 5322 section 2.2: "Header fields are lines beginning with a field name, followed by a
/// colon (":"), followed by a field body". The first line must be one, and the header block must
/// hold at least one field every message carries.
pub(crate) fn looks_like_headers(text: &[u8]) -> bool {
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let Some(colon) = first.iter().position(|&b| b == b':') else {
        return false;
    };
    if colon == 0 || !first[..colon].iter().all(|&b| (33..=126).contains(&b)) {
        return false;
    }
    const COMMON: [&str; 8] = [
        "from:",
        "date:",
        "subject:",
        "received:",
        "content-type:",
        "mime-version:",
        "return-path:",
        "message-id:",
    ];
    let head_end = find(text, b"\n\n")
        .or_else(|| find(text, b"\r\n\r\n"))
        .unwrap_or(text.len());
    text[..head_end]
        .split(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b" ") && !line.starts_with(b"\t"))
        .any(|line| {
            COMMON.iter().any(|c| {
                line.len() >= c.len() && line[..c.len()].eq_ignore_ascii_case(c.as_bytes())
            })
        })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn leaf_kind(bytes: &[u8]) -> Kind {
    match sniff(bytes) {
        Format::Xml => Kind::AggregateXml,
        Format::Json => Kind::TlsJson,
        _ => Kind::Unknown,
    }
}

fn walk(
    name: &str,
    bytes: Vec<u8>,
    archive_depth: u8,
    message_depth: u8,
    budget: &mut Budget<'_>,
    out: &mut Vec<Extracted>,
) -> Result<(), ContainerError> {
    match sniff(&bytes) {
        Format::Gzip => {
            let depth = enter_archive(name, archive_depth, budget.limits)?;
            let problems_before = budget.problems.len();
            let inner = budget.gunzip(name, &bytes)?;
            drop(bytes);
            let inner_name = name
                .strip_suffix(".gz")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{name}/0"));
            let walked = walk(&inner_name, inner, depth, message_depth, budget, out);
            budget.problems.truncate(problems_before);
            walked
        }
        Format::Zip => unzip(name, &bytes, archive_depth, message_depth, budget, out),
        Format::Mbox => {
            let messages = split_mbox(&bytes);
            let max = budget.limits.max_messages;
            if messages.len() > max {
                budget.skipped.push(Skipped {
                    name: name.to_owned(),
                    read: max,
                    skipped: messages.len() - max,
                });
            }
            for (i, msg) in messages.into_iter().take(max).enumerate() {
                let msg_name = format!("{name}#{}", i + 1);
                if message_depth >= MAX_MESSAGE_NESTING {
                    continue;
                }
                // Each message has the entry cap to itself: an mbox is bounded by
                // `max_messages`, the file size and the decompression caps.
                let entries_before = std::mem::replace(&mut budget.entries, 0);
                let read = email(
                    &msg_name,
                    msg,
                    archive_depth,
                    message_depth + 1,
                    budget,
                    out,
                );
                budget.entries = entries_before;
                read?;
            }
            Ok(())
        }
        Format::Email if message_depth < MAX_MESSAGE_NESTING => {
            email(name, &bytes, archive_depth, message_depth + 1, budget, out)
        }
        _ => {
            out.push(Extracted {
                name: name.to_owned(),
                kind: leaf_kind(&bytes),
                bytes,
                problems: budget.problems.clone(),
            });
            Ok(())
        }
    }
}

fn enter_archive(name: &str, depth: u8, limits: &Limits) -> Result<u8, ContainerError> {
    if depth >= limits.max_depth {
        return Err(ContainerError::TooDeep {
            name: name.to_owned(),
            max: limits.max_depth,
        });
    }
    Ok(depth + 1)
}

fn unzip(
    name: &str,
    bytes: &[u8],
    archive_depth: u8,
    message_depth: u8,
    budget: &mut Budget<'_>,
    out: &mut Vec<Extracted>,
) -> Result<(), ContainerError> {
    let depth = enter_archive(name, archive_depth, budget.limits)?;
    let corrupt = |e: zip::result::ZipError| ContainerError::Corrupt {
        name: name.to_owned(),
        format: "zip",
        reason: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(corrupt)?;
    if archive.len() > budget.limits.max_entries.saturating_sub(budget.entries) {
        return Err(ContainerError::TooManyEntries {
            name: name.to_owned(),
            max: budget.limits.max_entries,
        });
    }
    let mut ratio_left = budget.limits.max_ratio.saturating_mul(bytes.len() as u64);
    for i in 0..archive.len() {
        let file = archive.by_index(i).map_err(corrupt)?;
        if file.is_dir() {
            continue;
        }
        budget.entry(name)?;
        let entry_name = match file.name() {
            Ok(n) => format!("{name}/{n}"),
            Err(_) => format!("{name}/entry{i}"),
        };
        let inner = budget.inflate(&entry_name, "zip", file, bytes.len(), &mut ratio_left)?;
        walk(&entry_name, inner, depth, message_depth, budget, out)?;
    }
    Ok(())
}

/// Splits an mbox on its `From ` separator lines (RFC 4155: "each message is preceded by a
/// separator line that begins with the five-character sequence "From "").
fn split_mbox(bytes: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut pos = 0;
    let mut at_line_start = true;
    while pos < bytes.len() {
        if at_line_start && bytes[pos..].starts_with(b"From ") {
            starts.push(pos);
        }
        at_line_start = bytes[pos] == b'\n';
        pos += 1;
    }
    let mut msgs = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(bytes.len());
        let chunk = &bytes[start..end];
        // Drop the separator line itself.
        let body = match chunk.iter().position(|&b| b == b'\n') {
            Some(nl) => &chunk[nl + 1..],
            None => &[][..],
        };
        if !body.iter().all(u8::is_ascii_whitespace) {
            msgs.push(body);
        }
    }
    msgs
}

/// Media types that carry report documents (RFC 7489 section 7.2.1.1, RFC 8460 section 5.3).
const REPORT_TYPES: [&str; 13] = [
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/x-zip",
    "application/x-zip-compressed",
    "text/xml",
    "application/xml",
    "application/tlsrpt+json",
    "application/tlsrpt+gzip",
    "application/json",
    "application/octet-stream",
    "application/x-gunzip",
    "application/gzip-compressed",
];

/// File name endings that mark an attachment as a report whatever its declared type.
const REPORT_SUFFIXES: [&str; 5] = [".xml", ".gz", ".zip", ".json", ".tgz"];

fn email(
    name: &str,
    bytes: &[u8],
    archive_depth: u8,
    message_depth: u8,
    budget: &mut Budget<'_>,
    out: &mut Vec<Extracted>,
) -> Result<(), ContainerError> {
    let Some(message) = MessageParser::default().parse(bytes) else {
        out.push(Extracted {
            name: name.to_owned(),
            bytes: bytes.to_vec(),
            kind: Kind::Unknown,
            problems: budget.problems.clone(),
        });
        return Ok(());
    };
    let mut is_failure = message
        .content_type()
        .is_some_and(|ct| ct.attribute("report-type") == Some("feedback-report"));
    let mut found = false;
    let mut forwarded = Vec::new();
    for (i, part) in message.parts.iter().enumerate() {
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let media = part
            .content_type()
            .map(|ct| {
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase()
            })
            .unwrap_or_default();
        let file = part.attachment_name().unwrap_or_default().to_owned();
        if media == "message/feedback-report" {
            is_failure = true;
            continue;
        }
        if matches!(part.body, PartType::Message(_)) {
            forwarded.push(i);
            continue;
        }
        let by_name = REPORT_SUFFIXES
            .iter()
            .any(|s| file.to_ascii_lowercase().ends_with(s));
        if !(REPORT_TYPES.contains(&media.as_str()) || by_name) {
            continue;
        }
        budget.entry(name)?;
        found = true;
        let part_name = if file.is_empty() {
            format!("{name}/part{i}")
        } else {
            format!("{name}/{file}")
        };
        walk(
            &part_name,
            part.contents().to_vec(),
            archive_depth,
            message_depth,
            budget,
            out,
        )?;
    }
    if !is_failure && !found {
        is_failure = looks_like_plain_text_failure(&message);
    }
    if is_failure {
        budget.entry(name)?;
        out.push(Extracted {
            name: name.to_owned(),
            bytes: bytes.to_vec(),
            kind: Kind::FailureEml,
            problems: budget.problems.clone(),
        });
        return Ok(());
    }
    // A report forwarded as an attached message: open it; keep only what it recognises.
    for i in forwarded {
        if let Some(part) = message.parts.get(i) {
            budget.entry(name)?;
            let mut inner = Vec::new();
            walk(
                &format!("{name}/message{i}"),
                part.contents().to_vec(),
                archive_depth,
                message_depth,
                budget,
                &mut inner,
            )?;
            inner.retain(|e| e.kind != Kind::Unknown);
            found |= !inner.is_empty();
            out.append(&mut inner);
        }
    }
    if !found {
        out.push(Extracted {
            name: name.to_owned(),
            bytes: bytes.to_vec(),
            kind: Kind::Unknown,
            problems: budget.problems.clone(),
        });
    }
    Ok(())
}

/// Some reporters (Exim among them) send failure reports as plain text with no
/// `message/feedback-report` part; recognise them by their subject or wording.
fn looks_like_plain_text_failure(message: &mail_parser::Message<'_>) -> bool {
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let subject_says = subject.contains("dmarc")
        && ["fail", "forensic", "ruf"]
            .iter()
            .any(|w| subject.contains(w));
    let body_says = message.parts.iter().any(|p| {
        p.is_text()
            && p.text_contents().is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                t.contains("dmarc") && (t.contains("failed") || t.contains("failure"))
            })
    });
    subject_says || body_says
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{Compression, write::GzEncoder};
    use proptest::prelude::*;
    use zip::write::SimpleFileOptions;

    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/reports/");

    fn sample(path: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn run(name: &str, bytes: &[u8]) -> Vec<Extracted> {
        extract(name, bytes, &Limits::default(), Mode::Lenient)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .docs
    }

    fn kinds(found: &[Extracted]) -> Vec<Kind> {
        found.iter().map(|e| e.kind).collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn base64(data: &[u8]) -> String {
        use base64::Engine as _;
        let out = base64::engine::general_purpose::STANDARD.encode(data);
        let mut wrapped = String::new();
        for line in out.as_bytes().chunks(76) {
            wrapped.push_str(std::str::from_utf8(line).unwrap());
            wrapped.push_str("\r\n");
        }
        wrapped
    }

    const XML: &[u8] = b"<?xml version=\"1.0\"?><feedback><report_metadata/></feedback>\n";
    const JSON: &[u8] = b"{\"organization-name\":\"Example\",\"policies\":[]}\n";

    #[test]
    fn aggregate_samples_in_containers() {
        let nice = sample("extract_report/nice-input.xml");
        for (path, expect) in [
            ("extract_report/nice-input.xml", Some(&nice)),
            ("extract_report/nice-input.xml.gz", Some(&nice)),
            ("extract_report/nice-input.xml.zip", Some(&nice)),
            (
                "aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz",
                None,
            ),
            (
                "aggregate/estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip",
                None,
            ),
        ] {
            let found = run(path, &sample(path));
            assert_eq!(kinds(&found), [Kind::AggregateXml], "{path}");
            if let Some(expect) = expect {
                assert_eq!(&found[0].bytes, expect, "{path}");
            }
        }
    }

    #[test]
    fn every_plain_sample_is_detected_by_its_bytes() {
        for (dir, kind) in [
            ("aggregate", Kind::AggregateXml),
            ("aggregate_invalid", Kind::AggregateXml),
            ("smtp_tls", Kind::TlsJson),
        ] {
            let entries = std::fs::read_dir(format!("{DIR}{dir}")).unwrap();
            for entry in entries {
                let path = entry.unwrap().path();
                let file = path.file_name().unwrap().to_string_lossy().into_owned();
                if file.ends_with(".eml") {
                    continue;
                }
                // The name is deliberately meaningless: detection is by content.
                let found = run("input.bin", &std::fs::read(&path).unwrap());
                assert_eq!(kinds(&found), [kind], "{dir}/{file}");
            }
        }
    }

    #[test]
    fn google_tls_report_email_yields_one_json() {
        let path = "smtp_tls/google.com_smtp_tls_report.eml";
        let found = run(path, &sample(path));
        assert_eq!(kinds(&found), [Kind::TlsJson]);
        assert!(found[0].bytes.starts_with(b"{"));
    }

    #[test]
    fn failure_samples_yield_one_failure_email() {
        for file in [
            "DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml",
            "[Netease DMARC Failure Report] Rent Reminder.eml",
            "dmarc_ruf_report_linkedin.eml",
            "dmarc_ruf_report_linkedin.crlf.eml",
            "exim_plain_text_only_no_arf_part.eml",
        ] {
            let found = run(file, &sample(&format!("failure/{file}")));
            assert_eq!(kinds(&found), [Kind::FailureEml], "{file}");
        }
    }

    #[test]
    fn empty_input_is_refused() {
        assert_eq!(
            extract(
                "empty.xml",
                &sample("empty.xml"),
                &Limits::default(),
                Mode::Lenient
            ),
            Err(ContainerError::Empty {
                name: "empty.xml".into()
            })
        );
    }

    /// 200 MiB of zeros as 200 gzip members of 1 MiB each: small to build, ~200 KB on disk.
    fn gzip_bomb() -> Vec<u8> {
        let member = gzip(&vec![0u8; 1 << 20]);
        member.repeat(200)
    }

    #[test]
    fn gzip_bomb_is_refused() {
        let bomb = gzip_bomb();
        assert!(bomb.len() < 1 << 20);
        let err = extract("bomb.gz", &bomb, &Limits::default(), Mode::Lenient).unwrap_err();
        assert!(matches!(err, ContainerError::RatioExceeded { .. }), "{err}");
        let loose = Limits {
            max_ratio: u64::MAX,
            max_decompressed: 8 << 20,
            ..Limits::default()
        };
        let err = extract("bomb.gz", &bomb, &loose, Mode::Lenient).unwrap_err();
        assert_eq!(
            err,
            ContainerError::TooLarge {
                name: "bomb.gz".into(),
                max: 8 << 20
            }
        );
        assert!(err.to_string().contains("bomb"));
    }

    #[test]
    fn zip_bomb_is_refused() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("zeros.xml", SimpleFileOptions::default())
            .unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..8 {
            w.write_all(&chunk).unwrap();
        }
        let bomb = w.finish().unwrap().into_inner();
        let err = extract("bomb.zip", &bomb, &Limits::default(), Mode::Lenient).unwrap_err();
        assert!(matches!(err, ContainerError::RatioExceeded { .. }), "{err}");
    }

    #[test]
    fn nesting_beyond_max_depth_is_refused() {
        let inner = zip_of(&[("r.xml", XML)]);
        let two = zip_of(&[("inner.zip", &inner)]);
        let found = run("two.zip", &two);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bytes, XML);
        assert_eq!(found[0].name, "two.zip/inner.zip/r.xml");
        let three = zip_of(&[("two.zip", &two)]);
        let err = extract("three.zip", &three, &Limits::default(), Mode::Lenient).unwrap_err();
        assert_eq!(
            err,
            ContainerError::TooDeep {
                name: "three.zip/two.zip/inner.zip".into(),
                max: 2
            }
        );
        // gzip counts as a layer too.
        let err = extract(
            "g.gz",
            &gzip(&gzip(&gzip(XML))),
            &Limits::default(),
            Mode::Lenient,
        )
        .unwrap_err();
        assert!(matches!(err, ContainerError::TooDeep { .. }), "{err}");
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        let (a, b) = XML.split_at(20);
        let mut both = gzip(a);
        both.extend(gzip(b));
        let found = run("r.xml.gz", &both);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bytes, XML);
        assert_eq!(found[0].name, "r.xml");
    }

    #[test]
    fn zip_with_several_reports() {
        let gz = gzip(XML);
        let archive = zip_of(&[("a.xml", XML), ("b.json", JSON), ("c.xml.gz", &gz)]);
        let found = run("several.zip", &archive);
        assert_eq!(
            kinds(&found),
            [Kind::AggregateXml, Kind::TlsJson, Kind::AggregateXml]
        );
        assert!(found.iter().all(|e| e.bytes == XML || e.bytes == JSON));
        let err = extract(
            "several.zip",
            &archive,
            &Limits {
                max_entries: 2,
                ..Limits::default()
            },
            Mode::Lenient,
        )
        .unwrap_err();
        assert!(
            matches!(err, ContainerError::TooManyEntries { .. }),
            "{err}"
        );
    }

    fn email_with_attachments() -> Vec<u8> {
        let gz = gzip(XML);
        let zipped = zip_of(&[("z.xml", XML)]);
        format!(
            "From: reporter@example.net\r\nTo: dmarc@example.com\r\nSubject: Report Domain: example.com\r\n\
             Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate report.\r\n\
             --b1\r\nContent-Type: application/gzip; name=\"r.xml.gz\"\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"r.xml.gz\"\r\n\r\n{}\
             --b1\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"r.zip\"\r\n\r\n{}\
             --b1\r\nContent-Type: text/xml\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
             <?xml version=3D\"1.0\"?><feedback><report_metadata/></feedback>\r\n\
             --b1\r\nContent-Type: application/tlsrpt+json\r\n\r\n{}\r\n\
             --b1--\r\n",
            base64(&gz),
            base64(&zipped),
            std::str::from_utf8(JSON).unwrap().trim_end(),
        )
        .into_bytes()
    }

    #[test]
    fn email_with_several_attachments() {
        let found = run("several.eml", &email_with_attachments());
        assert_eq!(
            kinds(&found),
            [
                Kind::AggregateXml,
                Kind::AggregateXml,
                Kind::AggregateXml,
                Kind::TlsJson
            ]
        );
        assert_eq!(found[0].bytes, XML);
        assert_eq!(found[1].bytes, XML);
        assert_eq!(found[0].name, "several.eml/r.xml");
        assert_eq!(found[1].name, "several.eml/r.zip/z.xml");
        assert!(
            found[2]
                .bytes
                .starts_with(b"<?xml version=\"1.0\"?><feedback>")
        );
    }

    #[test]
    fn mbox_with_three_messages() {
        let linkedin = sample("failure/dmarc_ruf_report_linkedin.eml");
        let mut mbox = b"From reporter@example.net Mon Jan  1 00:00:00 2024\n".to_vec();
        mbox.extend(email_with_attachments());
        mbox.extend(b"\nFrom reporter@example.net Mon Jan  1 00:00:01 2024\n");
        mbox.extend(email_with_attachments());
        mbox.extend(b"\n");
        mbox.extend(&linkedin);
        let found = run("box.mbox", &mbox);
        let k = kinds(&found);
        assert_eq!(k.len(), 9, "{k:?}");
        assert_eq!(k[8], Kind::FailureEml);
        assert_eq!(found[0].name, "box.mbox#1/r.xml");
        assert_eq!(found[4].name, "box.mbox#2/r.xml");
        assert_eq!(found[8].name, "box.mbox#3");
    }

    /// The sample report's gzip, and the report.
    fn nice_gz() -> (Vec<u8>, Vec<u8>) {
        (
            sample("extract_report/nice-input.xml.gz"),
            sample("extract_report/nice-input.xml"),
        )
    }

    fn records(xml: &[u8]) -> usize {
        let (r, _) = crate::reports::parse_aggregate(xml, Mode::Lenient)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(xml)));
        r.records.len()
    }

    /// A gzip member followed by junk (seen from a gateway vendor's reporter): lenient keeps the
    /// whole report with a warning, strict refuses it. Zero padding is no deviation.
    #[test]
    fn junk_after_the_gzip_member() {
        let (gz, xml) = nice_gz();
        for junk in [&b"\r\n"[..], b"garbage after the member", b"\x1f"] {
            let mut input = gz.clone();
            input.extend_from_slice(junk);
            let found = run("r.xml.gz", &input);
            assert_eq!(kinds(&found), [Kind::AggregateXml]);
            assert_eq!(found[0].bytes, xml, "{junk:?}");
            assert_eq!(found[0].problems.len(), 1, "{junk:?}");
            let p = &found[0].problems[0];
            assert_eq!(p.level, crate::reports::Level::Warning);
            assert_eq!(p.location, "r.xml.gz");
            assert!(
                p.message.contains("junk after the gzip member ignored"),
                "{}",
                p.message
            );
            assert_eq!(records(&found[0].bytes), 20);
            let err = extract("r.xml.gz", &input, &Limits::default(), Mode::Strict).unwrap_err();
            assert!(
                matches!(&err, ContainerError::Corrupt { format: "gzip", reason, .. }
                    if reason.contains("junk")),
                "{err}"
            );
        }
        let mut padded = gz.clone();
        padded.extend_from_slice(&[0; 512]);
        for mode in [Mode::Lenient, Mode::Strict] {
            let found = extract("r.xml.gz", &padded, &Limits::default(), mode).unwrap();
            assert_eq!(found.docs[0].bytes, xml);
            assert!(found.docs[0].problems.is_empty());
        }
        // A second, intact member is still read (multi-member streams), with no problem.
        let mut two = gz.clone();
        two.extend(gzip(b"\n"));
        let found = run("r.xml.gz", &two);
        assert!(found[0].problems.is_empty());
        assert_eq!(found[0].bytes.len(), xml.len() + 1);
    }

    /// A gzip stream cut at every point: strict refuses each; lenient keeps what decompressed
    /// (always a prefix of the report) with a warning naming how much, or refuses the input
    /// when nothing decompressed. Cut only after `</feedback>` (its trailer lost), the report
    /// parses whole.
    #[test]
    fn truncated_gzip_is_recovered_in_lenient_mode_only() {
        let (gz, xml) = nice_gz();
        let mut recovered = 0;
        for cut in 2..gz.len() {
            let input = &gz[..cut];
            let strict = extract("r.xml.gz", input, &Limits::default(), Mode::Strict);
            assert!(
                matches!(strict, Err(ContainerError::Corrupt { format: "gzip", .. })),
                "{cut}: {strict:?}"
            );
            match extract("r.xml.gz", input, &Limits::default(), Mode::Lenient) {
                Err(ContainerError::Corrupt { format: "gzip", .. }) => {}
                Err(e) => panic!("{cut}: {e}"),
                Ok(found) => {
                    recovered += 1;
                    let doc = &found.docs[0];
                    assert!(xml.starts_with(&doc.bytes), "{cut}");
                    assert_eq!(doc.problems.len(), 1, "{cut}");
                    let message = &doc.problems[0].message;
                    assert!(
                        message.starts_with(&format!(
                            "gzip stream truncated after {} bytes",
                            doc.bytes.len()
                        )) && message.ends_with(": recovered"),
                        "{cut}: {message}"
                    );
                    // Cut mid-record: the lenient XML parser closes what is open and keeps
                    // every complete record.
                    let complete = doc.bytes.windows(9).filter(|w| w == b"</record>").count();
                    if complete > 0 {
                        assert!(records(&doc.bytes) >= complete, "{cut}");
                    }
                }
            }
        }
        assert!(recovered > gz.len() / 2, "{recovered} of {}", gz.len());
        // The trailer (CRC-32 and size, RFC 1952 section 2.3) cut off: the whole report.
        for cut in [gz.len() - 8, gz.len() - 4, gz.len() - 1] {
            let found = run("r.xml.gz", &gz[..cut]);
            assert_eq!(found[0].bytes, xml, "{cut}");
            assert_eq!(records(&found[0].bytes), 20, "{cut}");
        }
    }

    /// Recovery keeps the caps: a bomb cut short is still a bomb.
    #[test]
    fn truncated_gzip_bomb_is_still_refused() {
        let bomb = gzip_bomb();
        let cut = &bomb[..bomb.len() - 100];
        let err = extract("bomb.gz", cut, &Limits::default(), Mode::Lenient).unwrap_err();
        assert!(matches!(err, ContainerError::RatioExceeded { .. }), "{err}");
        let mut junk = gzip(&vec![0u8; 8 << 20]);
        junk.extend_from_slice(b"junk");
        let small = Limits {
            max_decompressed: 1 << 20,
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let err = extract("bomb.gz", &junk, &small, Mode::Lenient).unwrap_err();
        assert!(matches!(err, ContainerError::TooLarge { .. }), "{err}");
    }

    /// An mbox of more than `max_messages` messages: the first ones are read, the rest skipped
    /// and counted (not the whole mbox refused); each message has the entry cap to itself.
    #[test]
    fn mbox_over_max_messages_skips_only_the_excess() {
        let mut mbox = Vec::new();
        for i in 0..1_050 {
            mbox.extend(b"From reporter@example.net Mon Jan  1 00:00:00 2024\n");
            mbox.extend(email_with_attachments());
            mbox.extend(format!("\nmessage {i}\n").as_bytes());
        }
        let found = extract("box.mbox", &mbox, &Limits::default(), Mode::Lenient).unwrap();
        // Four reports per message, 4,000 entries in all: over `max_entries`, but not in one
        // message.
        assert_eq!(found.docs.len(), 4_000);
        assert_eq!(found.docs[3_999].name, "box.mbox#1000/part5");
        assert_eq!(
            found.skipped,
            [Skipped {
                name: "box.mbox".into(),
                read: 1_000,
                skipped: 50
            }]
        );
        let all = Limits {
            max_messages: 2_000,
            ..Limits::default()
        };
        let found = extract("box.mbox", &mbox, &all, Mode::Lenient).unwrap();
        assert_eq!(found.docs.len(), 4_200);
        assert!(found.skipped.is_empty());
        let few = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        let err = extract("box.mbox", &mbox, &few, Mode::Lenient).unwrap_err();
        assert!(
            matches!(err, ContainerError::TooManyEntries { .. }),
            "{err}"
        );
    }

    #[test]
    fn junk_is_unknown() {
        for junk in [
            &b"\x00\x01\x02garbage"[..],
            b"hello world",
            b"\x1f\x8bnot really gzip",
            b"PK\x03\x04not really zip",
            b"From nobody\n",
            b"Subject: hi\n\njust a note",
        ] {
            match extract("junk", junk, &Limits::default(), Mode::Lenient) {
                Ok(found) => assert!(
                    found.docs.iter().all(|e| e.kind == Kind::Unknown),
                    "{junk:?}"
                ),
                Err(ContainerError::Corrupt { .. }) => {}
                Err(e) => panic!("{junk:?}: {e}"),
            }
        }
        assert_eq!(kinds(&run("junk", b"hello world")), [Kind::Unknown]);
    }

    proptest! {
        #[test]
        fn extract_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                prefix in prop::sample::select(vec![
                                    &b""[..], b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"From x\n",
                                    b"Content-Type: multipart/mixed; boundary=x\n\n--x\n",
                                ])) {
            let mut input = prefix.to_vec();
            input.extend(bytes);
            let _ = extract("p", &input, &Limits::default(), Mode::Lenient);
        }
    }
}
