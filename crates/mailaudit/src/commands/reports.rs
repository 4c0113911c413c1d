//! `mailaudit reports`: `parse` reads DMARC aggregate, failure and SMTP TLS reports from files,
//! directories, mbox files or Maildirs and prints what they say, without storing anything;
//! `ingest` stores them; `list`, `raw` and `summary` read what is stored. The reading, parsing
//! and storing are `mailaudit_app::reports`; the writers are `output::reports`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Result;
use mailaudit_app::reports::{self as app, InputItems};
use mailaudit_core::audit::normalize_domain;
use mailaudit_core::dns::DnsSource;
use mailaudit_net::Resolver;
use mailaudit_store::{Store, analysis};

pub(crate) use mailaudit_app::reports::{Counts, ReadLimits, mode, stored_form};

use crate::cli::{
    Cli, ReportInputArgs, ReportsIngestArgs, ReportsListArgs, ReportsParseArgs, ReportsRawArgs,
    ReportsSummaryArgs,
};
use crate::output::reports::{ParsedDoc, write_list, write_parsed, write_summary};

/// The limits of `args` (`--max-decompressed-mb`, `--max-seconds-per-file`, `--max-messages`).
fn limits(args: &ReportInputArgs) -> ReadLimits {
    let mut limits = ReadLimits::new(args.max_decompressed_mb, args.max_seconds_per_file);
    limits.sizes.max_messages = args.max_messages;
    limits
}

/// The files of `args` (directories walked, in order); each file passed over in a directory is
/// noted on standard error.
fn input_items(args: &ReportInputArgs) -> InputItems {
    let found = app::input_items(&args.paths);
    for (path, why) in &found.passed_over {
        eprintln!("mailaudit: {path}: {why}; skipped");
    }
    found
}

pub(crate) fn parse(args: &ReportsParseArgs) -> Result<ExitCode> {
    let mode = mode(args.input.strict);
    let (mut failed, mut strict_failed) = (false, false);
    let items = input_items(&args.input).items;
    let docs = app::inputs(items, limits(&args.input), mode).flat_map(|input| {
        let mut out_docs: Vec<ParsedDoc> = Vec::new();
        match input {
            Err((source, error)) => {
                eprintln!("mailaudit: {source}: {error}");
                failed = true;
                out_docs.push(ParsedDoc::error(&source, &error));
            }
            Ok(file) => {
                for (label, doc) in &file.docs {
                    match app::parse_doc(doc, mode, file.time) {
                        Err(error) => {
                            eprintln!("mailaudit: {label}: {error}");
                            failed = true;
                            out_docs.push(ParsedDoc::error(label, &error));
                        }
                        Ok(parsed) => {
                            strict_failed |= args.input.strict && parsed.has_errors();
                            out_docs.push(ParsedDoc::Report(label.clone(), Box::new(parsed)));
                        }
                    }
                }
                for (label, error) in &file.skipped {
                    eprintln!("mailaudit: {label}: {error}");
                    failed = true;
                    out_docs.push(ParsedDoc::error(label, error));
                }
            }
        }
        out_docs
    });
    write_parsed(docs)?;
    Ok(if failed || strict_failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `reports ingest`: the inputs read, opened and parsed in parallel and stored in input order,
/// a batch per transaction ([`app::ingest_items`]).
pub(crate) async fn ingest(store: &dyn Store, args: &ReportsIngestArgs) -> Result<ExitCode> {
    let mode = mode(args.input.strict);
    let now = super::tracking::now();
    let items = input_items(&args.input).items;
    let counts = app::ingest_items(store, items, &limits(&args.input), mode, now, |n| {
        eprintln!("mailaudit: {n}");
    })
    .await?;
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
    write_list(&reports, args.format)?;
    Ok(ExitCode::SUCCESS)
}

/// `reports raw ID`: the stored report's original bytes, to standard output or a new file.
pub(crate) async fn raw(store: &dyn Store, args: &ReportsRawArgs) -> Result<ExitCode> {
    let bytes = store.report_raw(args.id).await?;
    match &args.output {
        Some(path) => {
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

/// `reports summary DOMAIN`: what the stored reports of the period say, as text or JSON.
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
    write_summary(&domain, args.since, &a, &tls, args.format)?;
    Ok(ExitCode::SUCCESS)
}
