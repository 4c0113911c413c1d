//! Distributed runs: `audit --distributed` queues a run's domains in the store, `worker` audits
//! and records its chunks, `runs` shows runs and their progress. PostgreSQL is the queue and the
//! store (see `mailaudit-store`'s `queue` area); no process coordinates the others.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use mailaudit_app::AppError;
use mailaudit_core::audit::{AuditOptions, DomainReport, normalize_domain};
use mailaudit_net::bulk::first_field;
use mailaudit_net::https::HttpsOptions;
use mailaudit_net::live::LiveOptions;
use mailaudit_net::{BulkOptions, Resolver, audit_stream};
use mailaudit_store::{ChunkLease, RunProgress, RunStatus, Store, StoreError};
use tokio::sync::watch;

use super::{dates, open_store, resolver_config, tracking};
use crate::cli::{AuditArgs, Cli, RunsArgs, TextOrJson, WorkerArgs};

/// Queues the domains of `inputs` as a distributed run and, unless `--detach`, follows it until
/// workers have recorded every chunk. `bad_name` tells where an invalid input name came from.
pub(crate) async fn queue(
    store: &dyn Store,
    args: &AuditArgs,
    inputs: impl Iterator<Item = String>,
    bad_name: impl Fn(&str) -> String,
    errored: &AtomicBool,
) -> Result<ExitCode> {
    let size = args.chunk_size as usize;
    let mut seen: HashSet<String> = HashSet::new();
    let mut chunks: Vec<Vec<String>> = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    for raw in inputs {
        let Some(name) = first_field(&raw) else {
            continue;
        };
        match normalize_domain(name) {
            Ok(domain) => {
                if seen.insert(domain.clone()) {
                    chunk.push(domain);
                    if chunk.len() == size {
                        chunks.push(std::mem::take(&mut chunk));
                    }
                }
            }
            Err(e) => {
                let report = DomainReport::invalid(name, &e);
                let err = report.error.unwrap_or_default();
                eprintln!("mailaudit: {}{err}", bad_name(name));
                errored.store(true, Ordering::Relaxed);
            }
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    let domains = seen.len();
    if domains == 0 {
        anyhow::bail!("no valid domain to queue");
    }
    let run = store
        .queue_run(&chunks, tracking::now())
        .await
        .context("cannot queue the run")?;
    eprintln!(
        "mailaudit: run {run}: {domains} domains queued in {} chunks for `mailaudit worker`",
        chunks.len()
    );
    if args.detach {
        match args.format {
            crate::cli::Format::Json => println!(
                "{}",
                serde_json::json!({"run": run, "domains": domains, "chunks": chunks.len()})
            ),
            _ => println!("{run}"),
        }
        return Ok(exit(errored));
    }
    let progress = follow(store, run, !args.no_progress).await?;
    match args.format {
        crate::cli::Format::Json => println!("{}", serde_json::to_string_pretty(&progress)?),
        _ => println!("{}", progress_text(&progress)),
    }
    if progress.run.status == RunStatus::Aborted {
        return Ok(ExitCode::from(2));
    }
    Ok(exit(errored))
}

fn exit(errored: &AtomicBool) -> ExitCode {
    if errored.load(Ordering::Relaxed) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Polls a run's progress (a bar on a terminal) until it is no longer running, or until Ctrl-C
/// (the run goes on without us).
async fn follow(store: &dyn Store, run: i64, bar: bool) -> Result<RunProgress> {
    let pb = if bar && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} domains recorded ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let p = store.run_progress(run, tracking::now()).await?;
        pb.set_length(u64::try_from(p.domains).unwrap_or(0));
        pb.set_position(u64::try_from(p.domains_done).unwrap_or(0));
        pb.set_message(format!(
            "chunks {}/{}, {} held by {} workers{}",
            p.chunks_done,
            p.chunks,
            p.chunks_leased,
            p.workers.len(),
            if p.chunks_expired > 0 {
                format!(", {} to audit again", p.chunks_expired)
            } else {
                String::new()
            }
        ));
        if p.run.status != RunStatus::Running {
            pb.finish_and_clear();
            return Ok(p);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = &mut interrupted => {
                pb.finish_and_clear();
                eprintln!(
                    "mailaudit: run {run} goes on without this command; follow it with `mailaudit runs {run}`"
                );
                return Ok(p);
            }
        }
    }
}

/// A run's progress in a few lines.
fn progress_text(p: &RunProgress) -> String {
    let r = &p.run;
    let mut out = format!(
        "run {}: {} ({} source), started {}",
        r.id,
        r.status,
        r.source,
        dates::format(r.started_at)
    );
    if let Some(f) = r.finished_at {
        out.push_str(&format!(", finished {}", dates::format(f)));
    }
    out.push_str(&format!("\n  results recorded: {}", r.domains));
    if p.chunks > 0 {
        out.push_str(&format!(
            "\n  domains queued:   {} ({} in recorded chunks)\n  chunks:           {} recorded, {} held by a worker, {} expired (to audit again), {} waiting, of {}",
            p.domains,
            p.domains_done,
            p.chunks_done,
            p.chunks_leased,
            p.chunks_expired,
            p.chunks - p.chunks_done - p.chunks_leased - p.chunks_expired,
            p.chunks
        ));
        if p.retried > 0 {
            out.push_str(&format!("\n  chunks claimed more than once: {}", p.retried));
        }
        if !p.workers.is_empty() {
            out.push_str(&format!("\n  workers now: {}", p.workers.join(", ")));
        }
    }
    out
}

/// `mailaudit runs [RUN]`.
pub(crate) async fn runs_cmd(store: &dyn Store, args: &RunsArgs) -> Result<ExitCode> {
    if let Some(run) = args.run {
        let p = store.run_progress(run, tracking::now()).await?;
        match args.format {
            TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&p)?),
            TextOrJson::Text => println!("{}", progress_text(&p)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runs = store.runs(args.limit).await?;
    match args.format {
        TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
        TextOrJson::Text => {
            println!(
                "{:>6}  {:<20}  {:<11}  {:<8}  {:>8}",
                "run", "started", "source", "status", "domains"
            );
            for r in &runs {
                println!(
                    "{:>6}  {:<20}  {:<11}  {:<8}  {:>8}",
                    r.id,
                    dates::format(r.started_at),
                    r.source,
                    r.status,
                    r.domains
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// This machine's name and the process id: a worker's default name.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}:{}", std::process::id())
}

/// What became of a claimed chunk.
enum Chunk {
    /// Audited and recorded: its domains.
    Recorded(usize),
    /// Another worker has it now (this one was too slow): nothing recorded.
    Lost(String),
    /// Given back on Ctrl-C or SIGTERM.
    Stopped,
    /// The store failed; the chunk was given back.
    Failed(anyhow::Error),
}

/// What a worker needs to audit a chunk.
pub(crate) struct Auditor {
    name: String,
    resolver: Resolver,
    live: Arc<LiveOptions>,
    concurrency: usize,
    lease_secs: i64,
}

/// `mailaudit worker`: claims chunks of distributed runs, audits and records them, until
/// stopped (or, with `--exit-when-done`, until no chunk is left).
pub(crate) async fn worker(cli: &Cli, args: &WorkerArgs) -> Result<ExitCode> {
    // In place before anything else, so that an early SIGTERM from a supervisor is heard.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let (stop_tx, mut stop) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        let _ = stop_tx.send(true);
    });

    let store = open_store(cli).await?;
    let config = resolver_config(cli, args.timeout, args.retries)?;
    super::dns_check::check_resolvers(&config).await?;
    let mut live = LiveOptions::default();
    if !args.no_policy_fetch {
        let mut https = HttpsOptions::with_ca_file(args.ca_file.as_deref())?;
        https.port = args.https_port;
        live.https = Some(https);
    }
    let auditor = Auditor {
        name: args.name.clone().unwrap_or_else(default_name),
        resolver: Resolver::new(&config)?,
        live: Arc::new(live),
        concurrency: args.concurrency.max(1),
        lease_secs: args.lease,
    };
    let name = auditor.name.as_str();
    let poll = Duration::from_secs(u64::try_from(args.poll).unwrap_or(2));
    eprintln!(
        "mailaudit worker {name}: looking for chunks (lease {} s; Ctrl-C or SIGTERM to stop)",
        args.lease
    );
    let (chunks, domains, failed) = work_loop(
        store.as_ref(),
        &auditor,
        poll,
        &mut stop,
        args.exit_when_done,
    )
    .await?;
    store.close().await;
    eprintln!("mailaudit worker {name}: stopped; {chunks} chunks ({domains} domains) recorded");
    Ok(if failed && chunks == 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Claims, audits and records chunks until `stop` (or, with `exit_when_done`, until no chunk is
/// left): `mailaudit worker`'s loop, and the one `mailaudit serve` runs for the audits the
/// portal queues. The chunks and domains recorded, and whether something failed.
pub(crate) async fn work_loop(
    store: &dyn Store,
    auditor: &Auditor,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
    exit_when_done: bool,
) -> Result<(u64, usize, bool)> {
    let name = auditor.name.as_str();
    let (mut chunks, mut domains) = (0u64, 0usize);
    let mut failed = false;
    while !*stop.borrow() {
        let wait = match store
            .claim_chunk(name, tracking::now(), auditor.lease_secs)
            .await
        {
            Ok(Some(lease)) => match work(store, auditor, lease, stop).await {
                Chunk::Recorded(n) => {
                    chunks += 1;
                    domains += n;
                    false
                }
                Chunk::Lost(why) => {
                    eprintln!("mailaudit worker {name}: {why}; its results were not recorded");
                    false
                }
                Chunk::Stopped => break,
                Chunk::Failed(e) => {
                    eprintln!("mailaudit worker {name}: {e:#}; the chunk was given back");
                    failed = true;
                    true
                }
            },
            Ok(None) => {
                if exit_when_done && store.open_chunks().await? == 0 {
                    break;
                }
                true
            }
            Err(e) => {
                eprintln!(
                    "mailaudit worker {name}: cannot claim a chunk: {e}; trying again in {} s",
                    poll.as_secs()
                );
                failed = true;
                true
            }
        };
        if wait {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
    Ok((chunks, domains, failed))
}

/// The auditor `mailaudit serve` runs the portal's queued audits with: named after the host
/// and process, the scheduler's resolver settings, no MTA-STS policy fetch (as scheduled
/// audits), a lease of [`SERVE_LEASE`] seconds.
pub(crate) fn serve_auditor(resolver: Resolver, concurrency: usize) -> Auditor {
    Auditor {
        name: format!("serve {}", default_name()),
        resolver,
        live: Arc::new(LiveOptions::default()),
        concurrency: concurrency.max(1),
        lease_secs: SERVE_LEASE,
    }
}

/// The lease `mailaudit serve` takes on a chunk, in seconds.
pub(crate) const SERVE_LEASE: i64 = 120;

/// Audits a claimed chunk, renewing its lease meanwhile, and records it under the lease.
async fn work(
    store: &dyn Store,
    a: &Auditor,
    mut lease: ChunkLease,
    stop: &mut watch::Receiver<bool>,
) -> Chunk {
    let name = a.name.as_str();
    eprintln!(
        "mailaudit worker {name}: run {}, chunk {}: {} domains{}",
        lease.run_id,
        lease.chunk,
        lease.domains.len(),
        if lease.attempts > 1 {
            format!(
                " (claim {}: an earlier worker did not finish it)",
                lease.attempts
            )
        } else {
            String::new()
        }
    );
    // The inventory's settings (parked domains).
    let mut opts = AuditOptions::default();
    match store.domain_states(&lease.domains, 0).await {
        Ok(states) => {
            for s in states {
                if s.entry.is_some_and(|e| e.parked) {
                    opts.parked.insert(s.domain);
                }
            }
        }
        Err(e) => return give_back(store, &lease, e.into()).await,
    }
    let bulk = BulkOptions {
        concurrency: a.concurrency,
        window: (a.concurrency * 16).max(1024),
        audit: Arc::new(opts),
        live: a.live.clone(),
    };
    let mut rx = audit_stream(a.resolver.clone(), lease.domains.clone(), bulk);
    let every = Duration::from_secs(u64::try_from(a.lease_secs / 3).unwrap_or(1).max(1));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut reports = Vec::with_capacity(lease.domains.len());
    loop {
        tokio::select! {
            report = rx.recv() => match report {
                Some(r) => reports.push(r),
                None => break,
            },
            _ = renew.tick() => match store.renew_lease(&mut lease, tracking::now(), a.lease_secs).await {
                Ok(()) => {}
                Err(StoreError::LeaseLost(why)) => return Chunk::Lost(why),
                // The store may be back before the lease ends; if not, the lease is lost.
                Err(e) => eprintln!("mailaudit worker {name}: cannot renew the lease: {e}"),
            },
            _ = stop.changed() => {
                let _ = store.release_lease(&lease).await;
                return Chunk::Stopped;
            }
        }
    }
    match tracking::record_batch(store, lease.run_id, &reports, false, Some(&lease)).await {
        Ok(outcomes) => {
            let n = outcomes.len();
            for (domain, outcome) in outcomes {
                if let Err(e) = outcome {
                    let e = anyhow::Error::from(e);
                    eprintln!("mailaudit worker {name}: {domain}: not recorded: {e:#}");
                }
            }
            Chunk::Recorded(n)
        }
        Err(AppError::Record {
            source: StoreError::LeaseLost(why),
            ..
        }) => Chunk::Lost(why),
        Err(e) => give_back(store, &lease, e.into()).await,
    }
}

/// Gives a chunk back after a failure, so that another claim can take it at once.
async fn give_back(store: &dyn Store, lease: &ChunkLease, e: anyhow::Error) -> Chunk {
    let _ = store.release_lease(lease).await;
    Chunk::Failed(e.context(format!("run {}, chunk {}", lease.run_id, lease.chunk)))
}
