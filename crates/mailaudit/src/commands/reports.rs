//! `mailaudit reports parse`: read DMARC aggregate, failure and SMTP TLS reports from files,
//! directories, mbox files or Maildirs and print what they say, without storing anything.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use anyhow::Result;
use mailaudit_core::audit::normalize_domain;
use mailaudit_core::dns::DnsSource;
use mailaudit_core::reports::analysis::whole_percent as pct;
use mailaudit_core::reports::container::{self, Kind, Limits};
use mailaudit_core::reports::tls_analysis::TlsDomainSummary;
use mailaudit_core::reports::{self, Mode, failure};
use mailaudit_net::Resolver;
use mailaudit_store::analysis;
use mailaudit_store::{AggregateRow, Ingested, NewReport, RawFile, Store};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::dates;
use crate::cli::{
    Cli, ReportInputArgs, ReportsIngestArgs, ReportsListArgs, ReportsParseArgs, ReportsRawArgs,
    ReportsSummaryArgs, TextOrJson,
};
use crate::output::{printable, text_stdout};

/// The largest input file read (the containers have their own decompression caps).
const MAX_FILE: u64 = 100 * 1024 * 1024;

/// Every file below `path` (a file, a directory, or a Maildir's `cur`/`new`), in name order;
/// an unreadable directory is an error entry `(path, why)`.
fn files(path: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<(String, String)>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push((
                    path.display().to_string(),
                    format!("cannot read the directory: {e}"),
                ));
                return;
            }
        };
        entries.sort();
        for e in entries {
            // Maildir's `tmp` holds messages being delivered: not reports yet.
            if e.file_name().is_some_and(|n| n == "tmp") && path.join("cur").is_dir() {
                continue;
            }
            // A directory of reports often carries its own documentation (a README, a
            // licence NOTICE) or a desktop's hidden files: passed over with a note, not an
            // error that fails the run. A file named on the command line is always read.
            if e.is_file()
                && let Some(why) = e
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(not_a_report)
            {
                eprintln!("mailaudit: {}: {why}; skipped", e.display());
                continue;
            }
            files(&e, out, errors);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// Why a file found in a directory is evidently not a report, from its name: documentation
/// (README, NOTICE, LICENSE, ... with no extension or a text one) and hidden files.
fn not_a_report(name: &str) -> Option<&'static str> {
    const DOCS: [&str; 9] = [
        "readme",
        "notice",
        "license",
        "licence",
        "copying",
        "changelog",
        "authors",
        "source",
        "sources",
    ];
    if name.starts_with('.') {
        return Some("a hidden file, not a report");
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) => (stem, Some(ext.to_ascii_lowercase())),
        None => (name, None),
    };
    let text_ext = ext
        .as_deref()
        .is_none_or(|e| matches!(e, "md" | "txt" | "rst" | "adoc" | "markdown"));
    (text_ext && DOCS.contains(&stem.to_ascii_lowercase().as_str()))
        .then_some("a documentation file, not a report")
}

/// The bounds on reading one input: decompressed sizes and nesting (the core's [`Limits`]), and
/// time.
#[derive(Clone, Debug)]
pub(crate) struct ReadLimits {
    /// Decompression caps.
    pub(crate) sizes: Limits,
    /// Most time spent opening one input, then parsing each of its reports; `None`: no limit.
    pub(crate) time: Option<Duration>,
}

impl ReadLimits {
    /// Caps of `max_decompressed_mb` MiB and `max_seconds` seconds (0: no time limit).
    pub(crate) fn new(max_decompressed_mb: usize, max_seconds: f64) -> ReadLimits {
        ReadLimits {
            sizes: Limits {
                max_decompressed: max_decompressed_mb.saturating_mul(1024 * 1024),
                ..Limits::default()
            },
            time: (max_seconds > 0.0).then(|| Duration::from_secs_f64(max_seconds)),
        }
    }

    /// The limits of `args` (`--max-decompressed-mb`, `--max-seconds-per-file`,
    /// `--max-messages`).
    fn of(args: &ReportInputArgs) -> ReadLimits {
        let mut limits = ReadLimits::new(args.max_decompressed_mb, args.max_seconds_per_file);
        limits.sizes.max_messages = args.max_messages;
        limits
    }
}

/// Runs `work` on a thread of its own and waits at most `limit` for it (without a limit it runs
/// here). Past the limit the thread is abandoned: what it works on is size-capped, so it ends
/// by itself, and its result is dropped. Nothing in the parsers should take long, so this
/// bounds what a pathological input might still do (the hostile-input rule: one file must not
/// stall the batch).
fn bounded<T: Send + 'static>(
    limit: Option<Duration>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let Some(limit) = limit else {
        return Ok(work());
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("mailaudit-report".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| format!("cannot start a reader thread: {e}"))?;
    rx.recv_timeout(limit).map_err(|e| match e {
        std::sync::mpsc::RecvTimeoutError::Timeout => format!(
            "took longer than {} s to read (--max-seconds-per-file); skipped",
            limit.as_secs_f64()
        ),
        std::sync::mpsc::RecvTimeoutError::Disconnected => {
            "the reader failed unexpectedly; skipped".to_string()
        }
    })
}

/// One input file, read and opened.
pub(crate) struct FileInput {
    /// The file as read (before decompression).
    raw: Vec<u8>,
    /// Its documents, each with a label naming the file (and the document inside it).
    docs: Vec<(String, container::Extracted)>,
    /// What of it was not read, `(label, why)`: an mbox's messages over `--max-messages`.
    skipped: Vec<(String, String)>,
    /// The time limit on parsing each document.
    time: Option<Duration>,
}

/// Opens one input's bytes (a file named `name`, shown as `source`) into its documents, within
/// the limits, or says why it cannot be. `mode` decides whether a damaged gzip stream is
/// recovered (with a warning on its documents) or refused.
pub(crate) fn open_input(
    source: &str,
    name: &str,
    raw: Vec<u8>,
    limits: &ReadLimits,
    mode: Mode,
) -> Result<FileInput, String> {
    let (raw, found) = {
        let (name, sizes) = (name.to_string(), limits.sizes);
        bounded(limits.time, move || {
            let found = container::extract(&name, &raw, &sizes, mode);
            (raw, found)
        })?
    };
    let found = found.map_err(|e| e.to_string())?;
    let label = |inner: &str| {
        if inner == name {
            source.to_string()
        } else {
            format!("{source}:{inner}")
        }
    };
    let skipped: Vec<(String, String)> = found
        .skipped
        .iter()
        .map(|s| {
            (
                label(&s.name),
                format!(
                    "{} messages read, {} over --max-messages skipped",
                    s.read, s.skipped
                ),
            )
        })
        .collect();
    if found.docs.is_empty() && skipped.is_empty() {
        return Err("no report found".to_string());
    }
    let docs = found
        .docs
        .into_iter()
        .map(|d| (label(&d.name), d))
        .collect();
    Ok(FileInput {
        raw,
        docs,
        skipped,
        time: limits.time,
    })
}

/// The files of `args`, read lazily one at a time (memory stays bounded by one file), each
/// opened into its documents, or `(source, why)` when it cannot be.
fn inputs(
    args: &ReportInputArgs,
    mode: Mode,
) -> impl Iterator<Item = Result<FileInput, (String, String)>> + '_ {
    let limits = ReadLimits::of(args);
    input_items(args)
        .into_iter()
        .map(move |item| item.and_then(|path| read_input(&path, &limits, mode)))
}

/// The files named by `args` (directories walked), in order, after a `(source, why)` for each
/// path that cannot be listed.
fn input_items(args: &ReportInputArgs) -> Vec<Result<PathBuf, (String, String)>> {
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for p in &args.paths {
        files(p, &mut paths, &mut errors);
    }
    errors
        .into_iter()
        .map(Err)
        .chain(paths.into_iter().map(Ok))
        .collect()
}

/// One file read (at most [`MAX_FILE`] bytes) and opened into its documents within `limits`, or
/// `(source, why)` when it cannot be.
fn read_input(path: &Path, limits: &ReadLimits, mode: Mode) -> Result<FileInput, (String, String)> {
    let source = path.display().to_string();
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_FILE) {
        return Err((
            source,
            format!("larger than {} MiB; skipped", MAX_FILE / 1024 / 1024),
        ));
    }
    let raw = std::fs::read(path).map_err(|e| (source.clone(), format!("cannot read: {e}")))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(&source)
        .to_string();
    open_input(&source, &name, raw, limits, mode).map_err(|e| (source, e))
}

/// The parsers' mode for `--strict`.
pub(crate) fn mode(strict: bool) -> Mode {
    if strict { Mode::Strict } else { Mode::Lenient }
}

/// One parsed report.
enum Parsed {
    Aggregate(reports::AggregateReport, Vec<reports::Problem>),
    Tls(reports::TlsReport, Vec<reports::Problem>),
    Failure(failure::FailureReport, Vec<String>),
}

impl Parsed {
    /// `aggregate`, `smtp_tls` or `failure` (the JSON `type` and the store's `kind`).
    fn kind(&self) -> &'static str {
        match self {
            Parsed::Aggregate(..) => "aggregate",
            Parsed::Tls(..) => "smtp_tls",
            Parsed::Failure(..) => "failure",
        }
    }

    /// The report as JSON text, serialized straight from its structs (no `Value` on the way:
    /// the store keeps the text), and its problems as JSON.
    fn json(&self) -> (Box<RawValue>, Value) {
        fn raw(r: &impl serde::Serialize) -> Box<RawValue> {
            serde_json::value::to_raw_value(r).unwrap_or_else(|_| {
                // Unreachable for these structs (string keys only); `null` keeps the rule that
                // ingest never panics.
                RawValue::from_string("null".to_string()).expect("null is JSON")
            })
        }
        let v = |r: Result<Value, serde_json::Error>| r.unwrap_or(Value::Null);
        match self {
            Parsed::Aggregate(r, p) => (raw(r), v(serde_json::to_value(p))),
            Parsed::Tls(r, p) => (raw(r), v(serde_json::to_value(p))),
            Parsed::Failure(r, p) => (raw(r), v(serde_json::to_value(p))),
        }
    }
}

/// Parses one document by its kind, within `time` ([`bounded`]; the document is copied to the
/// parsing thread).
fn parse_doc(
    doc: &container::Extracted,
    mode: Mode,
    time: Option<Duration>,
) -> Result<Parsed, String> {
    if time.is_none() {
        return parse_kind(doc, mode);
    }
    let doc = doc.clone();
    bounded(time, move || parse_kind(&doc, mode))?
}

/// Parses one document by its kind. What was recovered from its container (a truncated gzip
/// stream) comes first among its problems, or is added to the error when it cannot be parsed.
fn parse_kind(doc: &container::Extracted, mode: Mode) -> Result<Parsed, String> {
    let with = |mut p: Vec<reports::Problem>| {
        if doc.problems.is_empty() {
            return p;
        }
        let mut all = doc.problems.clone();
        all.append(&mut p);
        all
    };
    let parsed = match doc.kind {
        Kind::AggregateXml => reports::parse_aggregate(&doc.bytes, mode)
            .map(|(r, p)| Parsed::Aggregate(r, with(p)))
            .map_err(|e| format!("aggregate report: {e}")),
        Kind::TlsJson => reports::parse_tls_report(&doc.bytes)
            .map(|(r, p)| Parsed::Tls(r, with(p)))
            .map_err(|e| format!("SMTP TLS report: {e}")),
        Kind::FailureEml => failure::parse_failure(&doc.bytes)
            .map(|(r, p)| {
                let mut all: Vec<String> = doc.problems.iter().map(|p| p.message.clone()).collect();
                all.extend(p);
                Parsed::Failure(r, all)
            })
            .map_err(|e| format!("failure report: {e}")),
        _ => Err("not a DMARC aggregate, failure or SMTP TLS report".to_string()),
    };
    parsed.map_err(|e| {
        doc.problems
            .iter()
            .fold(e, |e, p| format!("{e} ({}: {})", p.location, p.message))
    })
}

pub(crate) fn parse(args: &ReportsParseArgs) -> Result<ExitCode> {
    /// One element of the output: an error object, or a parsed report written straight from
    /// its structs (a `serde_json::Value` copy of a large report takes several times its
    /// memory and most of the time). The object's keys keep their order.
    enum Doc {
        Error(Value),
        Report(String, Box<Parsed>),
    }
    impl serde::Serialize for Doc {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let (label, parsed) = match self {
                Doc::Error(v) => return v.serialize(s),
                Doc::Report(label, parsed) => (label, &**parsed),
            };
            let mut m = s.serialize_map(Some(4))?;
            match parsed {
                Parsed::Aggregate(r, p) => {
                    m.serialize_entry("problems", p)?;
                    m.serialize_entry("report", r)?;
                }
                Parsed::Tls(r, p) => {
                    m.serialize_entry("problems", p)?;
                    m.serialize_entry("report", r)?;
                }
                Parsed::Failure(r, p) => {
                    m.serialize_entry("problems", p)?;
                    m.serialize_entry("report", r)?;
                }
            }
            m.serialize_entry("source", label)?;
            m.serialize_entry("type", parsed.kind())?;
            m.end()
        }
    }
    /// A JSON array serialized element by element as its iterator yields them: the output is
    /// the same as for a `Vec` of the elements, but only one input file's documents are held
    /// at a time.
    struct Streamed<I>(std::cell::RefCell<Option<I>>);
    impl<I: Iterator<Item = Doc>> serde::Serialize for Streamed<I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.borrow_mut().take().into_iter().flatten())
        }
    }

    /// `serde_json`'s pretty format (two-space indent), byte for byte, with each line break
    /// and its indentation written at once (`PrettyFormatter` writes the indentation two bytes
    /// at a time: 40% of the instructions spent writing the JSON).
    #[derive(Default)]
    struct Pretty {
        depth: usize,
        has_value: bool,
    }
    impl Pretty {
        fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
            /// A line break and up to 64 levels of indentation.
            const LINE: [u8; 129] = {
                let mut line = [b' '; 129];
                line[0] = b'\n';
                line
            };
            let mut n = 2 * self.depth;
            w.write_all(&LINE[..1 + n.min(128)])?;
            while n > 128 {
                n -= 128;
                w.write_all(&LINE[1..1 + n.min(128)])?;
            }
            Ok(())
        }
    }
    impl serde_json::ser::Formatter for Pretty {
        fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
            self.depth += 1;
            self.has_value = false;
            w.write_all(b"[")
        }
        fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
            self.depth -= 1;
            if self.has_value {
                self.newline(w)?;
            }
            w.write_all(b"]")
        }
        fn begin_array_value<W: ?Sized + io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> io::Result<()> {
            if !first {
                w.write_all(b",")?;
            }
            self.newline(w)
        }
        fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
            self.has_value = true;
            Ok(())
        }
        fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
            self.depth += 1;
            self.has_value = false;
            w.write_all(b"{")
        }
        fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
            self.depth -= 1;
            if self.has_value {
                self.newline(w)?;
            }
            w.write_all(b"}")
        }
        fn begin_object_key<W: ?Sized + io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> io::Result<()> {
            if !first {
                w.write_all(b",")?;
            }
            self.newline(w)
        }
        fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
            w.write_all(b": ")
        }
        fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
            self.has_value = true;
            Ok(())
        }
    }

    let mode = mode(args.input.strict);
    let (mut failed, mut strict_failed) = (false, false);
    let docs = inputs(&args.input, mode).flat_map(|input| {
        let mut out_docs: Vec<Doc> = Vec::new();
        match input {
            Err((source, error)) => {
                eprintln!("mailaudit: {source}: {error}");
                failed = true;
                out_docs.push(Doc::Error(json!({ "source": source, "error": error })));
            }
            Ok(file) => {
                for (label, doc) in &file.docs {
                    match parse_doc(doc, mode, file.time) {
                        Err(error) => {
                            eprintln!("mailaudit: {label}: {error}");
                            failed = true;
                            out_docs.push(Doc::Error(json!({ "source": label, "error": error })));
                        }
                        Ok(parsed) => {
                            strict_failed |= args.input.strict
                                && match &parsed {
                                    Parsed::Aggregate(_, p) | Parsed::Tls(_, p) => {
                                        reports::has_errors(p)
                                    }
                                    Parsed::Failure(..) => false,
                                };
                            out_docs.push(Doc::Report(label.clone(), Box::new(parsed)));
                        }
                    }
                }
                for (label, error) in &file.skipped {
                    eprintln!("mailaudit: {label}: {error}");
                    failed = true;
                    out_docs.push(Doc::Error(json!({ "source": label, "error": error })));
                }
            }
        }
        out_docs
    });
    // Buffered: standard output alone is line-buffered, one write per line of pretty JSON.
    let mut out = io::BufWriter::with_capacity(256 * 1024, io::stdout().lock());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
    serde::Serialize::serialize(&Streamed(Some(docs).into()), &mut ser)?;
    writeln!(out)?;
    out.flush()?;
    Ok(if failed || strict_failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The store's form of one parsed report. An aggregate report's records become its
/// [`AggregateRow`]s and are left out of its stored `parsed` JSON (which keeps the metadata and
/// the published policy): the rows are what the analysis reads, every record stays in the raw
/// file kept with it (`reports parse` of that file gives them all), and storing them twice made
/// the database a third larger and `reports ingest` slower.
fn new_report(
    mut parsed: Parsed,
    doc: &container::Extracted,
    raw: &[u8],
    source: &str,
    now: i64,
) -> NewReport {
    let records = match &mut parsed {
        Parsed::Aggregate(r, _) => std::mem::take(&mut r.records),
        _ => Vec::new(),
    };
    let hash = sha256_hex(&doc.bytes);
    let (value, problems) = parsed.json();
    let mut n = NewReport {
        kind: parsed.kind().to_string(),
        reporter: String::new(),
        report_id: hash.clone(),
        policy_domain: String::new(),
        begin: now,
        end: now,
        content_hash: hash,
        source: source.to_string(),
        raw: RawFile::compress(raw),
        parsed: value,
        problems,
        rows: Vec::new(),
    };
    match parsed {
        Parsed::Aggregate(r, _) => {
            n.begin = i64::try_from(r.report_metadata.date_range.begin).unwrap_or(0);
            n.end = i64::try_from(r.report_metadata.date_range.end).unwrap_or(n.begin);
            n.reporter = r.report_metadata.org_name;
            n.report_id = r.report_metadata.report_id;
            n.policy_domain = r.policy_published.domain;
            n.rows = records
                .into_iter()
                .map(|rec| {
                    let join = |v: Vec<String>| v.join(",");
                    let (dkim_domains, dkim_results) = rec
                        .auth_results
                        .dkim
                        .into_iter()
                        .map(|d| (d.domain, d.result))
                        .unzip();
                    let (spf_domains, spf_results) = rec
                        .auth_results
                        .spf
                        .into_iter()
                        .map(|d| (d.domain, d.result))
                        .unzip();
                    AggregateRow {
                        source_ip: rec.row.source_ip.to_string(),
                        count: i64::try_from(rec.row.count).unwrap_or(i64::MAX),
                        disposition: rec.row.policy_evaluated.disposition,
                        dkim_aligned: rec.row.policy_evaluated.dkim,
                        spf_aligned: rec.row.policy_evaluated.spf,
                        header_from: rec.identifiers.header_from,
                        envelope_from: rec.identifiers.envelope_from.unwrap_or_default(),
                        dkim_domains: join(dkim_domains),
                        dkim_results: join(dkim_results),
                        spf_domains: join(spf_domains),
                        spf_results: join(spf_results),
                    }
                })
                .collect();
        }
        Parsed::Tls(r, _) => {
            n.reporter = r.organization_name.clone().unwrap_or_default();
            if let Some(id) = &r.report_id {
                n.report_id = id.clone();
            }
            n.policy_domain = r
                .policies
                .first()
                .and_then(|p| p.policy.policy_domain.clone())
                .unwrap_or_default();
            n.begin = r
                .date_range
                .start_datetime
                .as_deref()
                .and_then(dates::parse_rfc3339)
                .unwrap_or(now);
            n.end = r
                .date_range
                .end_datetime
                .as_deref()
                .and_then(dates::parse_rfc3339)
                .unwrap_or(n.begin);
        }
        Parsed::Failure(r, _) => {
            n.reporter = r.user_agent.clone().unwrap_or_default();
            n.policy_domain = r.reported_domain.clone().unwrap_or_default();
        }
    }
    n
}

/// The store's form of the one report in `bytes` (a file named `name`, recorded as coming from
/// `source`), read as `reports ingest` reads it: for reports made by mailaudit itself (the
/// demo's), so that they are stored exactly like ingested ones.
pub(crate) fn stored_form(
    name: &str,
    source: &str,
    bytes: Vec<u8>,
    now: i64,
) -> Result<NewReport, String> {
    let file = open_input(
        source,
        name,
        bytes,
        &ReadLimits::new(50, 0.0),
        Mode::Lenient,
    )?;
    let [(label, doc)] = file.docs.as_slice() else {
        return Err(format!("{source}: not exactly one report"));
    };
    let parsed = parse_kind(doc, Mode::Lenient).map_err(|e| format!("{label}: {e}"))?;
    Ok(new_report(parsed, doc, &file.raw, label, now))
}

/// What ingesting inputs did: reports stored, duplicates skipped, inputs or documents not read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) new: u64,
    pub(crate) dup: u64,
    pub(crate) bad: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.new += o.new;
        self.dup += o.dup;
        self.bad += o.bad;
    }
}

/// One document of an input, ready for the store: its report in the store's form, or why it
/// cannot be read. `label` names the file (and the document inside it).
pub(crate) struct Prepared {
    label: String,
    report: Result<NewReport, String>,
}

impl Prepared {
    /// About how much memory it holds, for [`Budget`].
    fn size(&self) -> usize {
        match &self.report {
            Ok(r) => {
                r.raw.stored().len()
                    + r.parsed.get().len()
                    + r.rows.len() * std::mem::size_of::<AggregateRow>() * 2
            }
            Err(e) => e.len(),
        }
        .saturating_add(self.label.len())
    }
}

/// Parses each document of one opened input into the store's form (the parsing within the
/// input's time limit).
fn prepare_file(file: &FileInput, mode: Mode, now: i64) -> Vec<Prepared> {
    let skipped = file.skipped.iter().map(|(label, why)| Prepared {
        label: label.clone(),
        report: Err(why.clone()),
    });
    file.docs
        .iter()
        .map(|(label, doc)| {
            // The raw file is kept with its report; a file holding several (an mbox) keeps
            // each report's own bytes instead of copying the whole file once per report.
            let raw_kept: &[u8] = if file.docs.len() == 1 {
                &file.raw
            } else {
                &doc.bytes
            };
            Prepared {
                label: label.clone(),
                report: parse_doc(doc, mode, file.time)
                    .map(|parsed| new_report(parsed, doc, raw_kept, label, now)),
            }
        })
        .chain(skipped)
        .collect()
}

/// Stores prepared documents in one transaction ([`Store::ingest_reports`]); a document that
/// could not be read, or that the store refuses as invalid, is reported on standard error (with
/// its label) and counted, and the others are stored. A database error is the caller's.
async fn store_prepared(store: &dyn Store, batch: Vec<Prepared>, now: i64) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut labels = Vec::with_capacity(batch.len());
    let mut reports = Vec::with_capacity(batch.len());
    for p in batch {
        match p.report {
            Ok(r) => {
                labels.push(p.label);
                reports.push(r);
            }
            Err(e) => {
                eprintln!("mailaudit: {}: {e}", p.label);
                counts.bad += 1;
            }
        }
    }
    if reports.is_empty() {
        return Ok(counts);
    }
    let outcomes = store.ingest_reports(reports, now).await?;
    for (label, outcome) in labels.iter().zip(outcomes) {
        match outcome {
            Ok(Ingested::New(_)) => counts.new += 1,
            Ok(Ingested::Duplicate(_)) => counts.dup += 1,
            Err(e) => {
                eprintln!("mailaudit: {label}: not stored: {e}");
                counts.bad += 1;
            }
        }
    }
    Ok(counts)
}

/// Parses and stores each report of one opened input (in one transaction); a document that
/// cannot be read is reported on standard error (with its label) and counted.
pub(crate) async fn ingest_file(
    store: &dyn Store,
    file: &FileInput,
    mode: Mode,
    now: i64,
) -> Result<Counts> {
    store_prepared(store, prepare_file(file, mode, now), now).await
}

/// A memory budget in bytes shared by the reading thread of `reports ingest` (which takes from
/// it before queueing a prepared report) and the storing task (which gives back once the
/// report is stored): what bounds the queue between them. A report larger than the whole
/// budget takes all of it, so it still goes through, alone.
struct Budget {
    total: usize,
    state: std::sync::Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl Budget {
    fn new(total: usize) -> Budget {
        Budget {
            total,
            state: std::sync::Mutex::new((total, false)),
            changed: std::sync::Condvar::new(),
        }
    }

    /// Waits until `n` bytes (at most the whole budget) are free and takes them; how many were
    /// taken, or `None` once the budget is closed (the storing side has stopped).
    fn take(&self, n: usize) -> Option<usize> {
        let n = n.min(self.total);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.1 {
                return None;
            }
            if state.0 >= n {
                state.0 -= n;
                return Some(n);
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn give(&self, n: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = (state.0 + n).min(self.total);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.changed.notify_all();
    }
}

/// Closes the budget when the storing side stops, however it stops.
struct CloseOnDrop(std::sync::Arc<Budget>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Reports read and prepared ahead of the store, at most (and at most [`QUEUE_BYTES`] of them).
const QUEUE_REPORTS: usize = 64;
/// Memory the prepared reports waiting for the store may hold.
const QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// Reports stored per transaction, at most (and at most [`QUEUE_BYTES`] of them).
const BATCH_REPORTS: usize = 64;

/// One file read, opened, parsed and prepared for the store ([`read_input`], [`prepare_file`]),
/// all of it on one thread within the file's time limit: a file past it is one error, named by
/// the file, and the caller goes on. (One bounded thread per file, rather than one to open it
/// and one per report, each with a copy of the report: fewer threads and copies per file.)
fn prepare_path(path: &Path, limits: &ReadLimits, mode: Mode, now: i64) -> Vec<Prepared> {
    let untimed = ReadLimits {
        time: None,
        ..limits.clone()
    };
    let owned = path.to_path_buf();
    let work = move || match read_input(&owned, &untimed, mode) {
        Ok(file) => prepare_file(&file, mode, now),
        Err((label, e)) => vec![Prepared {
            label,
            report: Err(e),
        }],
    };
    bounded(limits.time, work).unwrap_or_else(|e| {
        vec![Prepared {
            label: path.display().to_string(),
            report: Err(e),
        }]
    })
}

/// Inputs read and prepared ahead of the one the store is waiting for, at most, per worker.
const AHEAD_PER_WORKER: usize = 2;

/// The reading side of `reports ingest`: one worker per core reads, opens, parses and prepares
/// files (each the way [`inputs`] and [`prepare_file`] do, the time limit included), and their
/// reports are queued for the store in the order of the inputs, so that which of two
/// duplicates is stored, and the order of the messages, do not depend on the timing. A worker
/// waits rather than run more than [`AHEAD_PER_WORKER`] files per worker ahead of the next one
/// due, which bounds the memory of files prepared out of order; the queue is bounded by
/// `budget`. Returns when every input is queued or the storing side has stopped.
fn read_in_parallel(
    args: &ReportInputArgs,
    mode: Mode,
    now: i64,
    budget: &Budget,
    tx: &tokio::sync::mpsc::Sender<(Prepared, usize)>,
) {
    use std::collections::BTreeMap;
    use std::sync::{Condvar, Mutex};

    let limits = ReadLimits::of(args);
    let items = input_items(args);
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 8)
        .min(items.len().max(1));
    let window = workers * AHEAD_PER_WORKER;

    /// What the workers share: the next input to take, the prepared inputs waiting for their
    /// turn, the next input due, and whether the storing side has stopped.
    struct State {
        next_to_take: usize,
        ready: BTreeMap<usize, Vec<Prepared>>,
        next_due: usize,
        stopped: bool,
    }
    let state = Mutex::new(State {
        next_to_take: 0,
        ready: BTreeMap::new(),
        next_due: 0,
        stopped: false,
    });
    let changed = Condvar::new();
    // Held by the one worker queueing reports at a time, in order.
    let sending = Mutex::new(());
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    // Take the next input, unless too far ahead of the one due.
                    let index = {
                        let mut st = lock(&state);
                        loop {
                            if st.stopped || st.next_to_take >= items.len() {
                                return;
                            }
                            if st.next_to_take < st.next_due + window {
                                break;
                            }
                            st = changed.wait(st).unwrap_or_else(|e| e.into_inner());
                        }
                        st.next_to_take += 1;
                        st.next_to_take - 1
                    };
                    let prepared = match &items[index] {
                        Ok(path) => prepare_path(path, &limits, mode, now),
                        Err((label, e)) => vec![Prepared {
                            label: label.clone(),
                            report: Err(e.clone()),
                        }],
                    };
                    lock(&state).ready.insert(index, prepared);
                    // Queue whatever is due, in order, one worker at a time. A worker that finds
                    // another queueing goes back to reading: that one looks again for what is
                    // due after it lets go, so nothing is left behind.
                    loop {
                        let _sending = match sending.try_lock() {
                            Ok(g) => g,
                            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                            Err(std::sync::TryLockError::WouldBlock) => break,
                        };
                        loop {
                            let due = {
                                let mut st = lock(&state);
                                let next = st.next_due;
                                match st.ready.remove(&next) {
                                    Some(due) => due,
                                    None => break,
                                }
                            };
                            for p in due {
                                let sent = budget
                                    .take(p.size())
                                    .is_some_and(|taken| tx.blocking_send((p, taken)).is_ok());
                                if !sent {
                                    lock(&state).stopped = true;
                                    changed.notify_all();
                                    return;
                                }
                            }
                            lock(&state).next_due += 1;
                            changed.notify_all();
                        }
                        drop(_sending);
                        let st = lock(&state);
                        if !st.ready.contains_key(&st.next_due) {
                            break;
                        }
                    }
                }
            });
        }
    });
}

/// `reports ingest`: a reading thread reads, opens, parses and prepares the inputs in order
/// while this task stores what is ready, a batch per transaction (all that is waiting, up to
/// [`BATCH_REPORTS`]): reading and storing overlap, and commits are shared.
pub(crate) async fn ingest(store: &dyn Store, args: &ReportsIngestArgs) -> Result<ExitCode> {
    let mode = mode(args.input.strict);
    let now = super::tracking::now();
    let budget = std::sync::Arc::new(Budget::new(QUEUE_BYTES));
    let _close = CloseOnDrop(budget.clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Prepared, usize)>(QUEUE_REPORTS);
    let reader = {
        let (input, budget) = (args.input.clone(), budget.clone());
        std::thread::Builder::new()
            .name("mailaudit-ingest-reader".into())
            .spawn(move || read_in_parallel(&input, mode, now, &budget, &tx))?
    };
    let mut counts = Counts::default();
    while let Some(first) = rx.recv().await {
        let mut taken = first.1;
        let mut batch = vec![first.0];
        while batch.len() < BATCH_REPORTS {
            match rx.try_recv() {
                Ok((p, n)) => {
                    taken += n;
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        counts += store_prepared(store, batch, now).await?;
        budget.give(taken);
    }
    if reader.join().is_err() {
        anyhow::bail!("the reading thread failed");
    }
    let Counts { new, dup, bad } = counts;
    writeln!(
        io::stdout().lock(),
        "{new} reports stored, {dup} duplicates skipped, {bad} inputs not read"
    )?;
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `reports list`: the stored reports, newest first, as a table or JSON.
pub(crate) async fn list(store: &dyn Store, args: &ReportsListArgs) -> Result<ExitCode> {
    let domain = args.domain.as_deref().map(normalize_domain).transpose()?;
    let reports = store.reports(domain.as_deref(), args.limit).await?;
    let mut out: Box<dyn Write> = match args.format {
        TextOrJson::Json => Box::new(io::stdout().lock()),
        TextOrJson::Text => Box::new(text_stdout()),
    };
    match args.format {
        TextOrJson::Json => {
            let v: Vec<Value> = reports
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "kind": r.kind,
                        "reporter": r.reporter,
                        "report_id": r.report_id,
                        "policy_domain": r.policy_domain,
                        "begin": r.begin,
                        "end": r.end,
                        "source": r.source,
                        "content_hash": r.content_hash,
                        "ingested_at": r.ingested_at,
                        "problems": r.problems,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        TextOrJson::Text => {
            if reports.is_empty() {
                writeln!(out, "no reports stored")?;
            }
            for r in &reports {
                let problems = r.problems.as_array().map_or(0, Vec::len);
                writeln!(
                    out,
                    "{:>6}  {:<9} {:<16} {:<28} {} – {}  {} problems  {}",
                    r.id,
                    r.kind,
                    printable(&r.policy_domain),
                    printable(&r.reporter),
                    dates::format(r.begin),
                    dates::format(r.end),
                    problems,
                    printable(&r.source),
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reports raw ID`: the stored report's original bytes, to standard output or a new file.
pub(crate) async fn raw(store: &dyn Store, args: &ReportsRawArgs) -> Result<ExitCode> {
    let bytes = store.report_raw(args.id).await?;
    match &args.output {
        Some(path) => {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
            f.write_all(&bytes)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        None => {
            let mut out = io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reverse DNS names of the aggregate sources of `domain` in `from..until`, through the run's
/// resolver (`--nameserver`), once per address, all at once.
async fn source_ptrs(
    store: &dyn Store,
    resolver: &Resolver,
    domain: &str,
    from: i64,
    until: i64,
) -> Result<HashMap<IpAddr, String>> {
    let ips: HashSet<IpAddr> = store
        .aggregate_rows(domain, from, until)
        .await?
        .iter()
        .filter_map(|(_, r)| r.source_ip.parse().ok())
        .collect();
    let lookups = futures::future::join_all(ips.into_iter().map(|ip| {
        let r = resolver.clone();
        async move { (ip, r.ptr(ip).await.ok().and_then(|v| v.into_iter().next())) }
    }))
    .await;
    Ok(lookups
        .into_iter()
        .filter_map(|(ip, p)| p.map(|p| (ip, p)))
        .collect())
}

pub(crate) async fn summary(
    cli: &Cli,
    store: &dyn Store,
    args: &ReportsSummaryArgs,
) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let now = super::tracking::now();
    let (since, until) = (now - args.since, now);
    let ptrs = if args.no_rdns {
        HashMap::new()
    } else {
        let resolver = Resolver::new(&super::resolver_config(cli, args.timeout, 1)?)?;
        source_ptrs(store, &resolver, &domain, since - args.since, until).await?
    };
    let (a, tls) = analysis::domain_reports(store, &domain, since, until, &ptrs).await?;
    if args.format == TextOrJson::Json {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(
            &mut out,
            &json!({ "domain": domain, "policy": a.policy, "days_covered": a.days_covered,
                     "previous_volume": a.previous_volume, "summary": a.summary,
                     "readiness": a.readiness, "tls": tls }),
        )?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = text_stdout();
    let summary = &a.summary;
    writeln!(
        out,
        "{domain}: {} messages in the last {} days ({} days of reports; {} the period before), {}% pass DMARC; policy p={}",
        summary.volume,
        args.since / 86_400,
        a.days_covered.round(),
        a.previous_volume,
        pct(summary.dmarc_pass, summary.volume),
        a.policy
    )?;
    writeln!(
        out,
        "\n  {:<36} {:>9} {:>6} {:>6} {:>6}  NOTE",
        "SOURCE", "MESSAGES", "DMARC", "DKIM", "SPF"
    )?;
    for s in &summary.sources {
        let note = match (s.failing, s.new) {
            (true, true) => "failing, new",
            (true, false) => "failing",
            (false, true) => "new",
            _ => "",
        };
        writeln!(
            out,
            "  {:<36} {:>9} {:>5}% {:>5}% {:>5}%  {note}",
            printable(&s.key),
            s.messages,
            pct(s.dmarc_pass, s.messages),
            pct(s.dkim_aligned, s.messages),
            pct(s.spf_aligned, s.messages)
        )?;
    }
    match (a.readiness.ready, a.readiness.next) {
        (true, Some(next)) => writeln!(out, "\nReady to move to p={next}:")?,
        _ => writeln!(out, "\nNot ready for the next DMARC phase:")?,
    }
    for r in &a.readiness.reasons {
        writeln!(out, "  - {}", printable(r))?;
    }
    write_tls(&mut out, &tls)?;
    Ok(ExitCode::SUCCESS)
}

/// The SMTP TLS part of `reports summary`'s text output.
fn write_tls(out: &mut impl Write, tls: &TlsDomainSummary) -> io::Result<()> {
    if tls.reports == 0 {
        return writeln!(out, "\nSMTP TLS reports: none in the period.");
    }
    let total = tls.successful.saturating_add(tls.failed);
    writeln!(
        out,
        "\nSMTP TLS reports: {} from {}; {} sessions, {} failed ({}%)",
        tls.reports,
        printable(&tls.reporters.join(", ")),
        total,
        tls.failed,
        pct(tls.failed, total)
    )?;
    for p in &tls.policies {
        writeln!(
            out,
            "  policy {:<16} {:>9} ok {:>9} failed",
            printable(&p.policy_type),
            p.successful,
            p.failed
        )?;
    }
    if !tls.failures.is_empty() {
        writeln!(out, "\n  {:<28} {:>9}  MEANING", "FAILURE TYPE", "SESSIONS")?;
        for f in &tls.failures {
            writeln!(
                out,
                "  {:<28} {:>9}  {}",
                printable(&f.result_type),
                f.sessions,
                f.meaning.unwrap_or("not defined by RFC 8460")
            )?;
        }
    }
    if !tls.sending_mtas.is_empty() {
        writeln!(
            out,
            "\n  {:<40} {:>9}  TYPES / RECEIVING MX",
            "SENDING MTA", "FAILED"
        )?;
        for m in &tls.sending_mtas {
            let ip = m
                .sending_mta_ip
                .map_or_else(|| "(not reported)".to_string(), |ip| ip.to_string());
            writeln!(
                out,
                "  {:<40} {:>9}  {} / {}",
                ip,
                m.sessions,
                printable(&m.result_types.join(",")),
                printable(&m.receiving_mx.join(","))
            )?;
        }
    }
    if tls.undetailed_failures > 0 {
        writeln!(
            out,
            "  ({} failed sessions were reported without details)",
            tls.undetailed_failures
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/reports/aggregate/example.net!example.com!1529366400!1529452799.xml"
    );

    /// An aggregate report's records become its rows, in order and whole, and are left out of
    /// the stored JSON, which keeps the metadata and the policy; the raw file is kept as read.
    #[test]
    fn an_aggregate_report_is_stored_as_rows_and_its_header() {
        let bytes = std::fs::read(SAMPLE).unwrap();
        let file = open_input(
            "s.xml",
            "s.xml",
            bytes.clone(),
            &ReadLimits::new(50, 0.0),
            Mode::Lenient,
        )
        .unwrap();
        let (_, doc) = &file.docs[0];
        let parsed = parse_kind(doc, Mode::Lenient).unwrap();
        let Parsed::Aggregate(report, _) = &parsed else {
            panic!("an aggregate report")
        };
        let records = report.records.clone();
        assert!(!records.is_empty());
        let n = new_report(parsed, doc, &file.raw, "s.xml", 1);
        assert_eq!(n.raw.original().unwrap(), bytes);
        assert_eq!(n.rows.len(), records.len());
        for (row, rec) in n.rows.iter().zip(&records) {
            assert_eq!(row.source_ip, rec.row.source_ip.to_string());
            assert_eq!(row.count, i64::try_from(rec.row.count).unwrap());
            assert_eq!(row.header_from, rec.identifiers.header_from);
            let dkim: Vec<&str> = rec
                .auth_results
                .dkim
                .iter()
                .map(|d| d.domain.as_str())
                .collect();
            assert_eq!(row.dkim_domains, dkim.join(","));
            let spf: Vec<&str> = rec
                .auth_results
                .spf
                .iter()
                .map(|d| d.result.as_str())
                .collect();
            assert_eq!(row.spf_results, spf.join(","));
        }
        let json: Value = serde_json::from_str(n.parsed.get()).unwrap();
        assert_eq!(json["records"], json!([]));
        assert_eq!(json["policy_published"]["domain"], "example.com");
        assert_eq!(json["report_metadata"]["report_id"], n.report_id.as_str());
        assert_eq!(
            (n.policy_domain.as_str(), n.kind.as_str()),
            ("example.com", "aggregate")
        );
    }

    /// The queue's budget: a report larger than all of it still goes (alone); a taker waits
    /// until enough is given back; closing releases a waiting taker with `None`.
    #[test]
    fn budget_bounds_the_queue_and_closing_releases_a_waiting_reader() {
        let budget = std::sync::Arc::new(Budget::new(100));
        assert_eq!(budget.take(1_000), Some(100));
        budget.give(100);
        assert_eq!(budget.take(60), Some(60));
        let waiting = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.take(50))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiting.is_finished(), "40 free: 50 must wait");
        budget.give(60);
        assert_eq!(waiting.join().unwrap(), Some(50));
        assert_eq!(budget.take(50), Some(50));
        let waiting = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.take(10))
        };
        std::thread::sleep(Duration::from_millis(50));
        budget.close();
        assert_eq!(waiting.join().unwrap(), None);
    }
}
