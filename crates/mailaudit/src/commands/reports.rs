//! `mailaudit reports parse`: read DMARC aggregate, failure and SMTP TLS reports from files,
//! directories, mbox files or Maildirs and print what they say, without storing anything.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use anyhow::Result;
use mailaudit_core::audit::normalize_domain;
use mailaudit_core::dns::DnsSource;
use mailaudit_core::guide::ReportView;
use mailaudit_core::reports::analysis::{self, Row};
use mailaudit_core::reports::container::{self, Kind, Limits};
use mailaudit_core::reports::{self, Mode, failure};
use mailaudit_net::Resolver;
use mailaudit_store::{AggregateRow, Ingested, NewReport, Store};
use serde_json::{Value, json};

use super::dates;
use crate::cli::{
    Cli, ReportInputArgs, ReportsIngestArgs, ReportsParseArgs, ReportsSummaryArgs, TextOrJson,
};
use crate::output::printable;

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
            files(&e, out, errors);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// One input file, read and opened.
struct FileInput {
    /// The file as read (before decompression).
    raw: Vec<u8>,
    /// Its documents, each with a label naming the file (and the document inside it).
    docs: Vec<(String, container::Extracted)>,
}

/// The files of `args`, read lazily one at a time (memory stays bounded by one file), each
/// opened into its documents, or `(source, why)` when it cannot be.
fn inputs(
    args: &ReportInputArgs,
) -> impl Iterator<Item = Result<FileInput, (String, String)>> + '_ {
    let limits = Limits {
        max_decompressed: args.max_decompressed_mb * 1024 * 1024,
        ..Limits::default()
    };
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for p in &args.paths {
        files(p, &mut paths, &mut errors);
    }
    errors
        .into_iter()
        .map(Err)
        .chain(paths.into_iter().map(move |path| {
            let source = path.display().to_string();
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_FILE) {
                return Err((
                    source,
                    format!("larger than {} MiB; skipped", MAX_FILE / 1024 / 1024),
                ));
            }
            let raw =
                std::fs::read(&path).map_err(|e| (source.clone(), format!("cannot read: {e}")))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(&source)
                .to_string();
            let docs = container::extract(&name, &raw, &limits)
                .map_err(|e| (source.clone(), e.to_string()))?;
            if docs.is_empty() {
                return Err((source, "no report found".to_string()));
            }
            let docs = docs
                .into_iter()
                .map(|d| {
                    let label = if d.name == name {
                        source.clone()
                    } else {
                        format!("{source}:{}", d.name)
                    };
                    (label, d)
                })
                .collect();
            Ok(FileInput { raw, docs })
        }))
}

fn mode(args: &ReportInputArgs) -> Mode {
    if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    }
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

    /// The report and its problems as JSON.
    fn json(&self) -> (Value, Value) {
        let v = |r: Result<Value, serde_json::Error>| r.unwrap_or(Value::Null);
        match self {
            Parsed::Aggregate(r, p) => (v(serde_json::to_value(r)), v(serde_json::to_value(p))),
            Parsed::Tls(r, p) => (v(serde_json::to_value(r)), v(serde_json::to_value(p))),
            Parsed::Failure(r, p) => (v(serde_json::to_value(r)), v(serde_json::to_value(p))),
        }
    }
}

/// Parses one document by its kind.
fn parse_doc(doc: &container::Extracted, mode: Mode) -> Result<Parsed, String> {
    match doc.kind {
        Kind::AggregateXml => reports::parse_aggregate(&doc.bytes, mode)
            .map(|(r, p)| Parsed::Aggregate(r, p))
            .map_err(|e| format!("aggregate report: {e}")),
        Kind::TlsJson => reports::parse_tls_report(&doc.bytes)
            .map(|(r, p)| Parsed::Tls(r, p))
            .map_err(|e| format!("SMTP TLS report: {e}")),
        Kind::FailureEml => failure::parse_failure(&doc.bytes)
            .map(|(r, p)| Parsed::Failure(r, p))
            .map_err(|e| format!("failure report: {e}")),
        _ => Err("not a DMARC aggregate, failure or SMTP TLS report".to_string()),
    }
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

    let mode = mode(&args.input);
    let (mut failed, mut strict_failed) = (false, false);
    let docs = inputs(&args.input).flat_map(|input| {
        let mut out_docs: Vec<Doc> = Vec::new();
        match input {
            Err((source, error)) => {
                eprintln!("mailaudit: {source}: {error}");
                failed = true;
                out_docs.push(Doc::Error(json!({ "source": source, "error": error })));
            }
            Ok(file) => {
                for (label, doc) in &file.docs {
                    match parse_doc(doc, mode) {
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
            }
        }
        out_docs
    });
    // Buffered: standard output alone is line-buffered, one write per line of pretty JSON.
    let mut out = io::BufWriter::new(io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, &Streamed(Some(docs).into()))?;
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

fn join(v: impl Iterator<Item = String>) -> String {
    v.collect::<Vec<_>>().join(",")
}

/// The store's form of one parsed report.
fn new_report(
    parsed: &Parsed,
    doc: &container::Extracted,
    raw: &[u8],
    source: &str,
    now: i64,
) -> NewReport {
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
        raw: raw.to_vec(),
        parsed: value,
        problems,
        rows: Vec::new(),
    };
    match parsed {
        Parsed::Aggregate(r, _) => {
            n.reporter = r.report_metadata.org_name.clone();
            n.report_id = r.report_metadata.report_id.clone();
            n.policy_domain = r.policy_published.domain.clone();
            n.begin = i64::try_from(r.report_metadata.date_range.begin).unwrap_or(0);
            n.end = i64::try_from(r.report_metadata.date_range.end).unwrap_or(n.begin);
            n.rows = r
                .records
                .iter()
                .map(|rec| AggregateRow {
                    source_ip: rec.row.source_ip.to_string(),
                    count: i64::try_from(rec.row.count).unwrap_or(i64::MAX),
                    disposition: rec.row.policy_evaluated.disposition.clone(),
                    dkim_aligned: rec.row.policy_evaluated.dkim.clone(),
                    spf_aligned: rec.row.policy_evaluated.spf.clone(),
                    header_from: rec.identifiers.header_from.clone(),
                    envelope_from: rec.identifiers.envelope_from.clone().unwrap_or_default(),
                    dkim_domains: join(rec.auth_results.dkim.iter().map(|d| d.domain.clone())),
                    dkim_results: join(rec.auth_results.dkim.iter().map(|d| d.result.clone())),
                    spf_domains: join(rec.auth_results.spf.iter().map(|d| d.domain.clone())),
                    spf_results: join(rec.auth_results.spf.iter().map(|d| d.result.clone())),
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

pub(crate) async fn ingest(store: &dyn Store, args: &ReportsIngestArgs) -> Result<ExitCode> {
    let mode = mode(&args.input);
    let now = super::tracking::now();
    let (mut new, mut dup, mut bad) = (0u64, 0u64, 0u64);
    for input in inputs(&args.input) {
        let file = match input {
            Ok(f) => f,
            Err((source, error)) => {
                eprintln!("mailaudit: {source}: {error}");
                bad += 1;
                continue;
            }
        };
        for (label, doc) in &file.docs {
            // The raw file is kept with its report; a file holding several (an mbox) keeps each
            // report's own bytes instead of copying the whole file once per report.
            let raw_kept: &[u8] = if file.docs.len() == 1 {
                &file.raw
            } else {
                &doc.bytes
            };
            match parse_doc(doc, mode) {
                Err(e) => {
                    eprintln!("mailaudit: {label}: {e}");
                    bad += 1;
                }
                Ok(parsed) => match store
                    .ingest_report(&new_report(&parsed, doc, raw_kept, label, now), now)
                    .await?
                {
                    Ingested::New(_) => new += 1,
                    Ingested::Duplicate(_) => dup += 1,
                },
            }
        }
    }
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

pub(crate) async fn summary(
    cli: &Cli,
    store: &dyn Store,
    args: &ReportsSummaryArgs,
) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let now = super::tracking::now();
    let (since, until) = (now - args.since, now);
    let rows = store.aggregate_rows(&domain, since, until).await?;
    let previous = store
        .aggregate_rows(&domain, since - args.since, since)
        .await?;
    // Reverse DNS of each source, through the run's resolver (--nameserver), once per address.
    let resolver = Resolver::new(&super::resolver_config(cli, args.timeout, 1)?)?;
    let mut ptrs: HashMap<IpAddr, Option<String>> = HashMap::new();
    let ips: HashSet<IpAddr> = rows
        .iter()
        .chain(previous.iter())
        .filter_map(|(_, r)| r.source_ip.parse().ok())
        .collect();
    if !args.no_rdns {
        let lookups = futures::future::join_all(ips.iter().map(|ip| {
            let r = resolver.clone();
            let ip = *ip;
            async move { (ip, r.ptr(ip).await.ok().and_then(|v| v.into_iter().next())) }
        }))
        .await;
        ptrs.extend(lookups);
    }
    let to_rows = |rows: &[(i64, AggregateRow)]| -> Vec<Row> {
        rows.iter()
            .filter_map(|(begin, r)| {
                let ip: IpAddr = r.source_ip.parse().ok()?;
                let results: Vec<&str> = r.dkim_results.split(',').collect();
                Some(Row {
                    begin: *begin,
                    source_ip: ip,
                    ptr: ptrs.get(&ip).cloned().flatten(),
                    count: u64::try_from(r.count).unwrap_or(0),
                    disposition: r.disposition.clone(),
                    dkim_aligned: r.dkim_aligned == "pass",
                    spf_aligned: r.spf_aligned == "pass",
                    header_from: r.header_from.clone(),
                    dkim_domains: r
                        .dkim_domains
                        .split(',')
                        .zip(results.iter())
                        .filter(|(d, res)| !d.is_empty() && **res == "pass")
                        .map(|(d, _)| d.to_string())
                        .collect(),
                    dkim_pass: results.contains(&"pass"),
                    spf_pass: r.spf_results.split(',').any(|s| s == "pass"),
                })
            })
            .collect()
    };
    let prev_summary =
        analysis::summarize(&domain, &to_rows(&previous), since - args.since, since, &[]);
    let summary = analysis::summarize(
        &domain,
        &to_rows(&rows),
        since,
        until,
        &prev_summary.source_keys(),
    );
    // The current phase: the latest stored audit's DMARC policy (none when unknown).
    let policy = match store.latest_result(&domain).await? {
        Some(r) => ReportView::from_json(&r.report)
            .ok()
            .and_then(|v| v.dmarc.policy)
            .unwrap_or_else(|| "none".into()),
        None => "none".into(),
    };
    let days = match (
        rows.iter().map(|(b, _)| *b).min(),
        rows.iter().map(|(b, _)| *b).max(),
    ) {
        (Some(first), Some(last)) => (last - first) as f64 / 86_400.0 + 1.0,
        _ => 0.0,
    };
    let verdict = analysis::readiness(&summary, &policy, days);
    let mut out = io::stdout().lock();
    if args.format == TextOrJson::Json {
        serde_json::to_writer_pretty(
            &mut out,
            &json!({ "domain": domain, "policy": policy, "days_covered": days, "summary": summary, "readiness": verdict }),
        )?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |a: u64, b: u64| a.saturating_mul(100).checked_div(b).unwrap_or(0);
    writeln!(
        out,
        "{domain}: {} messages in the last {} days ({} days of reports), {}% pass DMARC; policy p={policy}",
        summary.volume,
        args.since / 86_400,
        days.round(),
        pct(summary.dmarc_pass, summary.volume)
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
    match (verdict.ready, verdict.next) {
        (true, Some(next)) => writeln!(out, "\nReady to move to p={next}:")?,
        _ => writeln!(out, "\nNot ready for the next DMARC phase:")?,
    }
    for r in &verdict.reasons {
        writeln!(out, "  - {}", printable(r))?;
    }
    Ok(ExitCode::SUCCESS)
}
