//! The writers of `mailaudit reports`: the parsed reports of `reports parse` as one JSON
//! array (streamed, one input's documents held at a time), the stored reports of `reports
//! list`, and the analysis of `reports summary` (text or JSON).

use std::io::{self, Write};

use anyhow::Result;
use mailaudit_app::reports::Parsed;
use mailaudit_core::reports::analysis::{DomainAnalysis, whole_percent as pct};
use mailaudit_core::reports::tls_analysis::TlsDomainSummary;
use mailaudit_store::StoredReport;
use serde_json::{Value, json};

use super::{printable, text_stdout};
use crate::cli::TextOrJson;
use crate::commands::dates;

/// One element of `reports parse`'s output: an error object, or a parsed report written straight
/// from its structs (a `serde_json::Value` copy of a large report takes several times its
/// memory and most of the time). The object's keys keep their order.
pub(crate) enum ParsedDoc {
    /// `{ "source": ..., "error": ... }`.
    Error(Value),
    /// A report and its label (the file, and the document inside it).
    Report(String, Box<Parsed>),
}

impl ParsedDoc {
    /// The error object of `source`.
    pub(crate) fn error(source: &str, error: &str) -> ParsedDoc {
        ParsedDoc::Error(json!({ "source": source, "error": error }))
    }
}

impl serde::Serialize for ParsedDoc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (label, parsed) = match self {
            ParsedDoc::Error(v) => return v.serialize(s),
            ParsedDoc::Report(label, parsed) => (label, &**parsed),
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
impl<I: Iterator<Item = ParsedDoc>> serde::Serialize for Streamed<I> {
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

/// Writes `docs` to standard output as one pretty JSON array, element by element as the
/// iterator yields them.
pub(crate) fn write_parsed(docs: impl Iterator<Item = ParsedDoc>) -> Result<()> {
    // Buffered: standard output alone is line-buffered, one write per line of pretty JSON.
    let mut out = io::BufWriter::with_capacity(256 * 1024, io::stdout().lock());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
    serde::Serialize::serialize(&Streamed(Some(docs).into()), &mut ser)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// `reports list`: the stored reports, as a table or JSON.
pub(crate) fn write_list(reports: &[StoredReport], format: TextOrJson) -> Result<()> {
    let mut out: Box<dyn Write> = match format {
        TextOrJson::Json => Box::new(io::stdout().lock()),
        TextOrJson::Text => Box::new(text_stdout()),
    };
    match format {
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
            for r in reports {
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
    Ok(())
}

/// `reports summary` of `domain` over the last `since` seconds: its DMARC analysis `a` and
/// its SMTP TLS summary, as text or JSON.
pub(crate) fn write_summary(
    domain: &str,
    since: i64,
    a: &DomainAnalysis,
    tls: &TlsDomainSummary,
    format: TextOrJson,
) -> Result<()> {
    if format == TextOrJson::Json {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(
            &mut out,
            &json!({ "domain": domain, "policy": a.policy, "days_covered": a.days_covered,
                     "previous_volume": a.previous_volume, "summary": a.summary,
                     "readiness": a.readiness, "tls": tls }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let mut out = text_stdout();
    let summary = &a.summary;
    writeln!(
        out,
        "{domain}: {} messages in the last {} days ({} days of reports; {} the period before), {}% pass DMARC; policy p={}",
        summary.volume,
        since / 86_400,
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
    write_tls(&mut out, tls)?;
    Ok(())
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
