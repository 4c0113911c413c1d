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

use crate::cli::{Cli, ReportsIngestArgs, ReportsParseArgs, ReportsSummaryArgs, TextOrJson};
use crate::output::printable;

/// The largest input file read (the containers have their own decompression caps).
const MAX_FILE: u64 = 100 * 1024 * 1024;

/// Every file below `path` (a file, a directory, or a Maildir's `cur`/`new`), in name order.
fn files(path: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<Value>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(json!({ "source": path.display().to_string(), "error": format!("cannot read the directory: {e}") }));
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

fn parse_one(name: &str, doc: &container::Extracted, mode: Mode) -> Value {
    match doc.kind {
        Kind::AggregateXml => match reports::parse_aggregate(&doc.bytes, mode) {
            Ok((r, problems)) => {
                json!({ "source": name, "type": "aggregate", "report": r, "problems": problems })
            }
            Err(e) => json!({ "source": name, "type": "aggregate", "error": e.to_string() }),
        },
        Kind::TlsJson => match reports::parse_tls_report(&doc.bytes) {
            Ok((r, problems)) => {
                json!({ "source": name, "type": "smtp_tls", "report": r, "problems": problems })
            }
            Err(e) => json!({ "source": name, "type": "smtp_tls", "error": e.to_string() }),
        },
        Kind::FailureEml => match failure::parse_failure(&doc.bytes) {
            Ok((r, problems)) => {
                json!({ "source": name, "type": "failure", "report": r, "problems": problems })
            }
            Err(e) => json!({ "source": name, "type": "failure", "error": e.to_string() }),
        },
        _ => {
            json!({ "source": name, "error": "not a DMARC aggregate, failure or SMTP TLS report" })
        }
    }
}

pub(crate) fn parse(args: &ReportsParseArgs) -> Result<ExitCode> {
    let mode = if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let limits = Limits {
        max_decompressed: args.max_decompressed_mb * 1024 * 1024,
        ..Limits::default()
    };
    let mut out_docs: Vec<Value> = Vec::new();
    let mut paths = Vec::new();
    for p in &args.paths {
        files(p, &mut paths, &mut out_docs);
    }
    for path in &paths {
        let source = path.display().to_string();
        let bytes = match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE => {
                out_docs.push(json!({ "source": source, "error": format!("larger than {} MiB; skipped", MAX_FILE / 1024 / 1024) }));
                continue;
            }
            _ => match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    out_docs
                        .push(json!({ "source": source, "error": format!("cannot read: {e}") }));
                    continue;
                }
            },
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&source)
            .to_string();
        match container::extract(&name, &bytes, &limits) {
            Ok(docs) if docs.is_empty() => {
                out_docs.push(json!({ "source": source, "error": "no report found" }))
            }
            Ok(docs) => {
                for d in &docs {
                    let inner = if d.name == name {
                        source.clone()
                    } else {
                        format!("{source}:{}", d.name)
                    };
                    out_docs.push(parse_one(&inner, d, mode));
                }
            }
            Err(e) => out_docs.push(json!({ "source": source, "error": e.to_string() })),
        }
    }
    let failed = out_docs.iter().filter(|d| d.get("error").is_some()).count();
    let strict_failed = args.strict
        && out_docs.iter().any(|d| {
            d["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["level"] == "error"))
        });
    for d in out_docs.iter().filter(|d| d.get("error").is_some()) {
        eprintln!(
            "mailaudit: {}: {}",
            d["source"].as_str().unwrap_or("?"),
            d["error"].as_str().unwrap_or("?")
        );
    }
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &out_docs)?;
    writeln!(out)?;
    Ok(if failed > 0 || strict_failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `2024-09-03T00:00:00Z` (RFC 3339, UTC or with an offset) → unix seconds.
fn rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time_end = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let mut t = rest[..time_end]
        .split(':')
        .map(|p| p.split('.').next().unwrap_or("0").parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    let offset = match rest.get(time_end..time_end + 1) {
        Some("+") | Some("-") => {
            let sign = if &rest[time_end..time_end + 1] == "-" {
                -1
            } else {
                1
            };
            let mut o = rest[time_end + 1..]
                .split(':')
                .map(|p| p.parse::<i64>().ok());
            sign * (o.next()?? * 3600 + o.next().flatten().unwrap_or(0) * 60)
        }
        _ => 0,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
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

/// The store's form of one parsed report, or why it cannot be stored.
fn new_report(
    doc: &container::Extracted,
    raw: &[u8],
    source: &str,
    mode: Mode,
    now: i64,
) -> Result<NewReport, String> {
    let hash = sha256_hex(&doc.bytes);
    let base = |kind: &str,
                reporter: String,
                report_id: String,
                domain: String,
                begin: i64,
                end: i64,
                parsed: Value,
                problems: Value| NewReport {
        kind: kind.to_string(),
        reporter,
        report_id,
        policy_domain: domain,
        begin,
        end,
        content_hash: hash.clone(),
        source: source.to_string(),
        raw: raw.to_vec(),
        parsed,
        problems,
        rows: Vec::new(),
    };
    match doc.kind {
        Kind::AggregateXml => {
            let (r, problems) =
                reports::parse_aggregate(&doc.bytes, mode).map_err(|e| e.to_string())?;
            let begin = i64::try_from(r.report_metadata.date_range.begin).unwrap_or(0);
            let end = i64::try_from(r.report_metadata.date_range.end).unwrap_or(begin);
            let rows = r
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
            let mut n = base(
                "aggregate",
                r.report_metadata.org_name.clone(),
                r.report_metadata.report_id.clone(),
                r.policy_published.domain.clone(),
                begin,
                end,
                serde_json::to_value(&r).map_err(|e| e.to_string())?,
                serde_json::to_value(&problems).map_err(|e| e.to_string())?,
            );
            n.rows = rows;
            Ok(n)
        }
        Kind::TlsJson => {
            let (r, problems) = reports::parse_tls_report(&doc.bytes).map_err(|e| e.to_string())?;
            let begin = r
                .date_range
                .start_datetime
                .as_deref()
                .and_then(rfc3339)
                .unwrap_or(now);
            let end = r
                .date_range
                .end_datetime
                .as_deref()
                .and_then(rfc3339)
                .unwrap_or(begin);
            let domain = r
                .policies
                .first()
                .and_then(|p| p.policy.policy_domain.clone())
                .unwrap_or_default();
            Ok(base(
                "smtp_tls",
                r.organization_name.clone().unwrap_or_default(),
                r.report_id.clone().unwrap_or_else(|| hash.clone()),
                domain,
                begin,
                end,
                serde_json::to_value(&r).map_err(|e| e.to_string())?,
                serde_json::to_value(&problems).map_err(|e| e.to_string())?,
            ))
        }
        Kind::FailureEml => {
            let (r, problems) = failure::parse_failure(&doc.bytes).map_err(|e| e.to_string())?;
            Ok(base(
                "failure",
                r.user_agent.clone().unwrap_or_default(),
                hash.clone(),
                r.reported_domain.clone().unwrap_or_default(),
                now,
                now,
                serde_json::to_value(&r).map_err(|e| e.to_string())?,
                serde_json::to_value(&problems).map_err(|e| e.to_string())?,
            ))
        }
        _ => Err("not a DMARC aggregate, failure or SMTP TLS report".to_string()),
    }
}

pub(crate) async fn ingest(store: &dyn Store, args: &ReportsIngestArgs) -> Result<ExitCode> {
    let mode = if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let limits = Limits {
        max_decompressed: args.max_decompressed_mb * 1024 * 1024,
        ..Limits::default()
    };
    let now = super::tracking::now();
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for p in &args.paths {
        files(p, &mut paths, &mut errors);
    }
    let (mut new, mut dup, mut bad) = (0u64, 0u64, errors.len() as u64);
    for e in &errors {
        eprintln!(
            "mailaudit: {}: {}",
            e["source"].as_str().unwrap_or("?"),
            e["error"].as_str().unwrap_or("?")
        );
    }
    for path in &paths {
        let source = path.display().to_string();
        let raw = match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE => {
                eprintln!(
                    "mailaudit: {source}: larger than {} MiB; skipped",
                    MAX_FILE / 1024 / 1024
                );
                bad += 1;
                continue;
            }
            _ => match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("mailaudit: {source}: cannot read: {e}");
                    bad += 1;
                    continue;
                }
            },
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&source)
            .to_string();
        let docs = match container::extract(&name, &raw, &limits) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("mailaudit: {source}: {e}");
                bad += 1;
                continue;
            }
        };
        for d in &docs {
            // The raw file is kept with its report; a file holding several (an mbox) keeps each
            // report's own bytes instead of copying the whole file once per report.
            let raw_kept: &[u8] = if docs.len() == 1 { &raw } else { &d.bytes };
            let label = if d.name == name {
                source.clone()
            } else {
                format!("{source}:{}", d.name)
            };
            match new_report(d, raw_kept, &label, mode, now) {
                Err(e) => {
                    eprintln!("mailaudit: {label}: {e}");
                    bad += 1;
                }
                Ok(r) => match store.ingest_report(&r, now).await? {
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
