//! Report writers: table (terminal), JSON, CSV and HTML. Each writes domains as they arrive,
//! so output starts at once and memory stays flat; the summary comes at the end.

mod csv;
mod html;
pub(crate) mod reports;
mod table;

use std::io::Write;

use anyhow::Result;
use mailaudit_core::audit::DomainReport;
use mailaudit_core::checks::{CheckId, Severity};
use mailaudit_core::dns::Security;

use crate::cli::Format;

/// Fleet-wide counts for the closing summary.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) domains: u64,
    pub(crate) invalid: u64,
    pub(crate) worst: Option<Severity>,
    /// Domains with at least one finding of each severity (most urgent first).
    pub(crate) by_severity: [u64; 5],
    /// Domains with each headline finding, in [`HEADLINES`] order.
    pub(crate) headlines: [u64; HEADLINES.len()],
    pub(crate) score_sum: u64,
    /// Domains with a score (a failed look-up leaves a domain unscored).
    pub(crate) scored: u64,
}

/// The findings the summary line counts, with the phrase it uses after "N domains" (each
/// count is of domains, never of findings).
pub(crate) const HEADLINES: [(CheckId, &str); 13] = [
    (CheckId::DmarcMissing, "without DMARC"),
    (CheckId::DmarcPolicyNone, "with DMARC p=none"),
    (CheckId::SpfMissing, "without SPF"),
    (CheckId::SpfSoftfail, "with SPF ~all"),
    (CheckId::SpfPassAll, "with SPF +all"),
    (CheckId::SpfLookupLimit, "over the SPF 10-lookup limit"),
    (
        CheckId::SpfM365IncludeMissing,
        "whose SPF lacks Microsoft 365",
    ),
    (
        CheckId::DkimM365Missing,
        "without Microsoft 365 DKIM CNAMEs",
    ),
    (CheckId::DkimM365NotEnabled, "with DKIM signing not enabled"),
    (CheckId::ParkedNotLocked, "parked but not locked down"),
    (CheckId::MxGateway, "behind a gateway (Direct Send bypass)"),
    (CheckId::DnsLookupFailed, "with failed DNS look-ups"),
    (CheckId::DomainNotFound, "not found (NXDOMAIN)"),
];

impl Summary {
    /// Domains audited: the inputs that were domain names.
    pub(crate) fn audited(&self) -> u64 {
        self.domains - self.invalid
    }

    pub(crate) fn add(&mut self, r: &DomainReport) {
        self.domains += 1;
        if r.error.is_some() {
            self.invalid += 1;
            return;
        }
        self.worst = self.worst.max(r.worst());
        for (i, sev) in Severity::ALL.iter().enumerate() {
            if r.findings.iter().any(|f| f.severity == *sev) {
                self.by_severity[i] += 1;
            }
        }
        for (i, (id, _)) in HEADLINES.iter().enumerate() {
            if r.has(*id) {
                self.headlines[i] += 1;
            }
        }
        if let Some(score) = r.score {
            self.score_sum += u64::from(score);
            self.scored += 1;
        }
    }

    /// "141 domains audited (average score 41): 84 domains without DMARC, 97 domains with SPF
    /// ~all, ...": every count says what it counts (domains; input names that are not domain
    /// names), so none reads as a number of findings.
    pub(crate) fn line(&self) -> String {
        let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let mut parts: Vec<String> = HEADLINES
            .iter()
            .zip(self.headlines)
            .filter(|(_, n)| *n > 0)
            .map(|((_, phrase), n)| format!("{} {phrase}", plural(n, "domain")))
            .collect();
        if self.invalid > 0 {
            parts.push(format!(
                "{} not audited (not a domain name)",
                plural(self.invalid, "input name")
            ));
        }
        let audited = self.domains - self.invalid;
        let avg = match self.score_sum.checked_div(self.scored) {
            Some(avg) if self.scored == audited => format!("average score {avg}"),
            Some(avg) => format!("average score {avg} over the {} scored", self.scored),
            None => "no domain scored".to_string(),
        };
        let head = format!("{} audited ({avg})", plural(audited, "domain"));
        if parts.is_empty() {
            head
        } else {
            format!("{head}: {}", parts.join(", "))
        }
    }
}

/// What the heading of a domain shows besides its name: who receives its mail (or that the
/// domain does not exist), and why it has no score when it has none.
pub(crate) fn heading_parts(r: &DomainReport) -> (&'static str, &'static str) {
    if r.not_found() {
        (
            "does not exist (NXDOMAIN)",
            "no score (the domain does not exist)",
        )
    } else {
        (r.provider.label(), "score n/a (look-ups failed)")
    }
}

/// The one escaping policy for everything mailaudit writes as text (terminal, Markdown, CSV
/// cells, HTML): control characters and bidi overrides shown as their Rust escape
/// (`\u{1b}`, `\u{202e}`), so a hostile DNS record, SMTP reply or operator-entered name cannot
/// drive the terminal (title change, screen clear) or reorder what is shown. Line feeds and
/// tabs are kept. See [`mailaudit_core::text`].
pub(crate) use mailaudit_core::text::printable;

/// A text stream that applies [`printable`] to everything written through it: commands that
/// print text (guide, checklist, history, diff, inventory, reports, `exo import`, relay test)
/// write through one, so no value, whatever its source, escapes the policy. Bytes that are not
/// UTF-8 are shown as U+FFFD. Not for JSON (serde escapes control characters itself) nor for
/// the colour codes of the audit table.
pub(crate) struct SafeWriter<W: Write> {
    inner: W,
    /// The start of a UTF-8 sequence cut between two writes.
    pending: Vec<u8>,
}

impl<W: Write> SafeWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        SafeWriter {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: Write> Write for SafeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut rest: &[u8] = &self.pending;
        let mut text = String::new();
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    text.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete sequence at the end: wait for the next write.
                        None => {
                            rest = bad;
                            break;
                        }
                        Some(n) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
        let keep = rest.to_vec();
        self.inner.write_all(printable(&text).as_bytes())?;
        self.pending = keep;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for SafeWriter<W> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.inner.write_all("\u{fffd}".as_bytes());
            let _ = self.inner.flush();
        }
    }
}

/// Standard output as a [`SafeWriter`]: for every command's text output.
pub(crate) fn text_stdout() -> SafeWriter<std::io::StdoutLock<'static>> {
    SafeWriter::new(std::io::stdout().lock())
}

/// Writes reports in one format.
pub(crate) struct ReportWriter {
    format: Format,
    out: Box<dyn Write>,
    color: bool,
    count: u64,
    csv: Option<::csv::Writer<Box<dyn Write>>>,
}

impl ReportWriter {
    pub(crate) fn new(format: Format, out: Box<dyn Write>, color: bool) -> Self {
        ReportWriter {
            format,
            out,
            color,
            count: 0,
            csv: None,
        }
    }

    pub(crate) fn begin(&mut self) -> Result<()> {
        match self.format {
            Format::Json => self.out.write_all(b"[")?,
            Format::Csv => {
                let out = std::mem::replace(&mut self.out, Box::new(std::io::sink()));
                let mut w = ::csv::Writer::from_writer(out);
                w.write_record(csv::HEADER)?;
                self.csv = Some(w);
            }
            Format::Html => html::begin(&mut self.out, mailaudit_store::now())?,
            Format::Table => {}
        }
        Ok(())
    }

    pub(crate) fn write(&mut self, r: &DomainReport) -> Result<()> {
        match self.format {
            Format::Json => {
                self.out
                    .write_all(if self.count == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer_pretty(&mut self.out, r)?;
            }
            Format::Csv => {
                if let Some(w) = self.csv.as_mut() {
                    csv::write(w, r)?;
                }
            }
            Format::Html => html::domain(&mut self.out, r)?,
            Format::Table => table::domain(&mut self.out, r, self.color)?,
        }
        self.count += 1;
        if self.format != Format::Html {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(w) = self.csv.as_mut() {
            w.flush()?;
        }
        self.out.flush()?;
        Ok(())
    }

    pub(crate) fn finish(&mut self, summary: &Summary) -> Result<()> {
        match self.format {
            Format::Json => self
                .out
                .write_all(if self.count == 0 { b"]\n" } else { b"\n]\n" })?,
            Format::Csv => {}
            Format::Html => html::end(&mut self.out, summary)?,
            Format::Table => table::summary(&mut self.out, summary, self.color)?,
        }
        self.flush()
    }
}

/// The DNSSEC and DANE summary of a report, for the CSV cells and the table: the `dnssec`
/// cell (the domain's zone: `secure`, `insecure`, `bogus`, `failed`; empty when
/// validation was off) and the `dane` cell (per MX host: `host: zone, N TLSA, usable or
/// unusable, chain matches or mismatch`, hosts separated by `; `).
pub(super) fn dnssec_cells(r: &DomainReport) -> (String, String) {
    let Some(d) = &r.dnssec else {
        return (String::new(), String::new());
    };
    let word = |s: Option<Security>| match s {
        Some(Security::Secure) => "secure",
        Some(Security::Insecure) => "insecure",
        Some(Security::Bogus) => "bogus",
        None => "failed",
    };
    let dane =
        d.mx.iter()
            .map(|m| {
                let mut parts = vec![word(m.security).to_string()];
                if !m.tlsa.is_empty() {
                    parts.push(format!("{} TLSA", m.tlsa.len()));
                    parts.push(if m.usable { "usable" } else { "unusable" }.into());
                    match m.chain_matches {
                        Some(true) => parts.push("chain matches".into()),
                        Some(false) => parts.push("chain mismatch".into()),
                        None => {}
                    }
                } else if m.security == Some(Security::Secure) {
                    parts.push("no TLSA".into());
                }
                format!("{}: {}", m.host, parts.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
    (word(d.domain).to_string(), dane)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::SafeWriter;

    #[test]
    fn safe_writer_escapes_across_split_writes() {
        let mut buf = Vec::new();
        {
            let mut w = SafeWriter::new(&mut buf);
            let bytes = "x\u{1b}[2J \u{202e}é\n".as_bytes();
            // One byte at a time: a character cut between writes is kept until complete.
            for b in bytes {
                w.write_all(std::slice::from_ref(b)).unwrap();
            }
            w.write_all(b"bad \xff end").unwrap();
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "x\\u{1b}[2J \\u{202e}é\nbad \u{fffd} end"
        );
    }
}
