//! `mailaudit audit`: the bulk audit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mailaudit_core::audit::DomainReport;
use mailaudit_core::audit::{AuditOptions, normalize_domain};
use mailaudit_net::https::HttpsOptions;
use mailaudit_net::live::{LiveOptions, RelayOverride};
use mailaudit_net::{BulkOptions, Resolver, audit_stream};
use mailaudit_store::{DomainEntry, RunStatus, Store};

use super::relay::{relay_options, roots};
use super::tracking;
use super::{color_enabled, open_store, resolver_config};
use crate::cli::{AuditArgs, Cli};
use crate::output::{ReportWriter, Summary};

/// Where the invalid names of the input files are: each name as read (the first field of its
/// line), with the `FILE:LINE` of each line that holds it, in input order. Only invalid names
/// are kept, so memory stays flat however long the files.
#[derive(Clone, Default)]
struct InvalidAt(Arc<Mutex<HashMap<String, VecDeque<String>>>>);

impl InvalidAt {
    /// Notes `line` of `file` (counted from 1) if its name is invalid.
    fn note(&self, file: &str, line: usize, text: &str) {
        if let Some(name) = mailaudit_net::bulk::first_field(text)
            && normalize_domain(name).is_err()
            && let Ok(mut map) = self.0.lock()
        {
            map.entry(name.to_string())
                .or_default()
                .push_back(format!("{file}:{line}"));
        }
    }

    /// The `FILE:LINE` of the next report for the invalid `name`, if it came from a file.
    fn take(&self, name: &str) -> Option<String> {
        let mut map = self.0.lock().ok()?;
        let places = map.get_mut(name)?;
        let place = places.pop_front();
        if places.is_empty() {
            map.remove(name);
        }
        place
    }
}

/// Lines of every `--file`, opened up front so a missing file fails before any work starts.
fn file_lines(
    paths: &[std::path::PathBuf],
    errored: Arc<AtomicBool>,
    invalid_at: &InvalidAt,
) -> Result<Vec<Box<dyn Iterator<Item = String> + Send>>> {
    let mut out: Vec<Box<dyn Iterator<Item = String> + Send>> = Vec::new();
    for path in paths {
        let reader: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
            Box::new(BufReader::new(f))
        };
        let name = if path.as_os_str() == "-" {
            "<stdin>".to_string()
        } else {
            path.display().to_string()
        };
        let errored = errored.clone();
        let invalid_at = invalid_at.clone();
        let mut number = 0;
        out.push(Box::new(reader.lines().map_while(move |l| match l {
            Ok(l) => {
                number += 1;
                invalid_at.note(&name, number, &l);
                Some(l)
            }
            Err(e) => {
                eprintln!("mailaudit: {name}: read error: {e}; the rest of this file is skipped");
                errored.store(true, Ordering::Relaxed);
                None
            }
        })));
    }
    Ok(out)
}

fn count_lines(paths: &[std::path::PathBuf]) -> Option<u64> {
    let mut n = 0;
    for p in paths {
        if p.as_os_str() == "-" {
            return None;
        }
        let f = File::open(p).ok()?;
        for line in BufReader::new(f).lines() {
            if mailaudit_net::bulk::first_field(&line.ok()?).is_some() {
                n += 1;
            }
        }
    }
    Some(n)
}

fn read_parked(path: &Path) -> Result<HashSet<String>> {
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut set = HashSet::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}: read error", path.display()))?;
        let Some(t) = mailaudit_net::bulk::first_field(&line) else {
            continue;
        };
        match normalize_domain(t) {
            Ok(d) => {
                set.insert(d);
            }
            Err(e) => eprintln!("mailaudit: {}:{}: {e}; line ignored", path.display(), i + 1),
        }
    }
    Ok(set)
}

pub(crate) async fn audit(cli: &Cli, args: &AuditArgs) -> Result<ExitCode> {
    let errored = Arc::new(AtomicBool::new(false));
    let mut config = resolver_config(cli, args.timeout, args.retries)?;
    let mut opts = AuditOptions::default();
    if let Some(p) = &args.parked {
        opts.parked = read_parked(p)?;
    }

    // The store records the run, unless --no-store (the sample fleet is never recorded).
    let store = if args.no_store || args.sample {
        None
    } else {
        Some(open_store(cli).await?)
    };
    let mut overrides = HashMap::new();
    let invalid_at = InvalidAt::default();

    // The inputs, in order: arguments, then each file (or the inventory).
    let mut lab = None;
    let mut sources: Vec<Box<dyn Iterator<Item = String> + Send>> = Vec::new();
    let total: Option<u64>;
    if args.sample {
        let (zone, domains) = mailaudit_lab::sample_fleet();
        let server = mailaudit_lab::LabDns::start(zone)
            .await
            .context("cannot start the sample DNS server")?;
        config.nameservers = vec![server.addr()];
        // The sample fleet's lab DNS is not signed: validating it from any trust anchor would
        // only say so for every domain.
        config.dnssec = mailaudit_net::Dnssec::Off;
        lab = Some(server);
        total = Some(domains.len() as u64);
        sources.push(Box::new(domains.into_iter()));
    } else if args.domains.is_empty() && args.file.is_empty() {
        // The inventory: every domain, or one customer's.
        let store = match &store {
            Some(s) => s.as_ref(),
            None => bail!(
                "no domains given: pass DOMAIN arguments, --file PATH or --sample, or audit the inventory (without --no-store)"
            ),
        };
        let entries = store.domains(args.customer.as_deref()).await?;
        if entries.is_empty() {
            bail!(
                "no domains to audit: the inventory has no domains{} (add some with `mailaudit domain add` or `mailaudit import`); or pass DOMAIN arguments, --file PATH, or --sample",
                args.customer
                    .as_deref()
                    .map(|c| format!(" for customer {c}"))
                    .unwrap_or_default()
            );
        }
        overrides.extend(inventory_options(&entries, &mut opts));
        total = Some(entries.len() as u64);
        sources.push(Box::new(entries.into_iter().map(|e| e.name)));
    } else {
        total = count_lines(&args.file).map(|n| n + args.domains.len() as u64);
        sources.push(Box::new(args.domains.clone().into_iter()));
        sources.extend(file_lines(&args.file, errored.clone(), &invalid_at)?);
    }
    let inputs = sources.into_iter().flatten();

    // A distributed run is queued for workers, not audited here.
    if args.distributed {
        let Some(store) = store else {
            bail!("--distributed needs a store (--db postgres://…)");
        };
        let bad_name = |name: &str| {
            invalid_at
                .take(name)
                .map(|at| format!("{at}: "))
                .unwrap_or_default()
        };
        let code =
            super::distributed::queue(store.as_ref(), args, inputs, bad_name, &errored).await;
        store.close().await;
        return code;
    }

    // The inputs are readable: a resolver that does not answer fails the run now, not after
    // every look-up of every domain has timed out.
    if !args.sample {
        super::dns_check::check_resolvers(&config).await?;
    }
    let resolver = Resolver::new(&config)?;
    let stats_resolver = resolver.clone();
    let mut live = LiveOptions::default();
    // The sample fleet is DNS only: its MX and MTA-STS hosts are documentation addresses.
    if !args.no_policy_fetch && !args.sample {
        let mut https = HttpsOptions::new(roots(&args.smtp)?);
        https.port = args.https_port;
        live.https = Some(https);
    }
    if args.relay_test {
        let mut relay = relay_options(&args.smtp, None, None)?;
        relay.per_domain = overrides;
        live.relay = Some(relay);
    }
    let bulk = BulkOptions {
        concurrency: args.concurrency.max(1),
        window: (args.concurrency.max(1) * 16).max(1024),
        audit: Arc::new(opts),
        live: Arc::new(live),
    };
    let mut rx = audit_stream(resolver, inputs, bulk);

    let to_terminal = args.output.is_none() && io::stdout().is_terminal();
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("{}: cannot create", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let color = color_enabled(cli.color, to_terminal);
    let mut writer = ReportWriter::new(args.format, sink, color);
    writer.begin()?;

    // The bar is drawn on standard error when that is a terminal; output printed to the same
    // terminal is written above it (`suspend`), so the two never mix.
    let show_progress = !args.no_progress && io::stderr().is_terminal();
    let pb = if show_progress {
        let pb = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        pb.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} domains ({per_sec}, eta {eta}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };

    let run = match &store {
        Some(s) => Some(s.begin_run("cli", tracking::now()).await?),
        None => None,
    };
    let started = Instant::now();
    let mut summary = Summary::default();
    // Results are recorded in batches (`tracking::Pending`: one transaction for up to 256
    // domains, none waiting more than a second).
    let mut pending = tracking::Pending::default();
    loop {
        let report = match pending.next(&mut rx).await {
            tracking::Next::Report(r) => *r,
            tracking::Next::Due => {
                if let (Some(store), Some(run)) = (&store, run) {
                    record(store.as_ref(), run, pending.take(), &pb, &errored).await;
                }
                continue;
            }
            tracking::Next::End => break,
        };
        if let Some(err) = &report.error {
            // "FILE:LINE: invalid domain name "bad domain!": contains a space and '!'" (an
            // argument's error names it already).
            let place = invalid_at
                .take(&report.domain)
                .map(|at| format!("{at}: "))
                .unwrap_or_default();
            pb.suspend(|| eprintln!("mailaudit: {place}{err}"));
            errored.store(true, Ordering::Relaxed);
        }
        summary.add(&report);
        pb.suspend(|| writer.write(&report))?;
        pb.inc(1);
        pb.set_message(report.domain.clone());
        if let (Some(store), Some(run)) = (&store, run)
            && report.error.is_none()
            && pending.push(report)
        {
            record(store.as_ref(), run, pending.take(), &pb, &errored).await;
        }
    }
    if let (Some(store), Some(run)) = (&store, run) {
        record(store.as_ref(), run, pending.take(), &pb, &errored).await;
    }
    pb.finish_and_clear();
    writer.finish(&summary)?;
    if let (Some(store), Some(run)) = (&store, run) {
        store
            .finish_run(run, RunStatus::Complete, tracking::now())
            .await?;
        store.close().await;
    }
    drop(lab);

    if args.stats {
        let s = stats_resolver.stats();
        let secs = started.elapsed().as_secs_f64();
        let n = summary.domains.max(1) as f64;
        let rss = peak_rss_mb()
            .map(|mb| format!("; peak RSS {mb:.1} MB"))
            .unwrap_or_default();
        eprintln!(
            "mailaudit: {} domains in {:.2}s ({:.0} domains/s); {} look-ups, {} queries sent ({:.1} queries/domain){rss}",
            summary.domains,
            secs,
            summary.domains as f64 / secs.max(1e-9),
            s.lookups,
            s.queries_sent,
            s.queries_sent as f64 / n
        );
    }
    // Not one look-up answered: the findings are all DNS-LOOKUP-FAILED, nothing was audited.
    if let Some(msg) =
        super::dns_check::all_failed_message(&stats_resolver.stats(), summary.audited())
    {
        eprintln!("{msg}");
        errored.store(true, Ordering::Relaxed);
    }
    if errored.load(Ordering::Relaxed) {
        return Ok(ExitCode::from(2));
    }
    if let Some(threshold) = args.fail_on
        && summary.worst.is_some_and(|w| w >= threshold)
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Records the audited domains of `batch` in run `run`, telling which ones could not be
/// recorded and which checklist items regressed.
async fn record(
    store: &dyn Store,
    run: i64,
    batch: Vec<DomainReport>,
    pb: &ProgressBar,
    errored: &AtomicBool,
) {
    if batch.is_empty() {
        return;
    }
    match tracking::record_batch(store, run, &batch, false, None).await {
        Ok(outcomes) => {
            for (domain, outcome) in outcomes {
                match outcome {
                    Ok(r) if !r.reopened.is_empty() => pb.suspend(|| {
                        eprintln!(
                            "mailaudit: {domain}: regression, checklist items reopened: {}",
                            r.reopened.join(", ")
                        )
                    }),
                    Ok(_) => {}
                    Err(e) => {
                        pb.suspend(|| eprintln!("mailaudit: {domain}: not recorded: {e:#}"));
                        errored.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        Err(e) => {
            let e = anyhow::Error::from(e);
            pb.suspend(|| eprintln!("mailaudit: not recorded: {e:#}"));
            errored.store(true, Ordering::Relaxed);
        }
    }
}

/// The process's peak resident set size (Linux `VmHWM`), in megabytes.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// What the inventory says about how to audit its domains: parked ones go into `opts`, and the
/// relay probe's per-domain settings (sender, recipient, the tenant's Microsoft 365 endpoint)
/// are returned by domain.
pub(crate) fn inventory_options(
    entries: &[DomainEntry],
    opts: &mut AuditOptions,
) -> HashMap<String, RelayOverride> {
    let mut overrides = HashMap::new();
    for e in entries {
        if e.parked {
            opts.parked.insert(e.name.clone());
        }
        overrides.insert(
            e.name.clone(),
            RelayOverride {
                from: e.relay_from.clone(),
                to: e.relay_to.clone(),
                m365_endpoint: e.m365_endpoint.clone(),
            },
        );
    }
    overrides
}
