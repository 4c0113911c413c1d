//! `mailaudit-bench store`: how large the store grows with a year of weekly audits, and what
//! `mailaudit prune` gives back.
//!
//! One real audit of the synthetic fleet (`mailaudit audit --format json` against the lab DNS
//! server) gives each domain its report. The bench then records `--runs` weekly runs of them
//! into a fresh SQLite store through the store's own API, a week apart in the store's clock,
//! changing `--change-percent` of the domains' reports each week (a changed report is a new
//! one; the others are the same as the week before, as an unchanged domain's audit is), and
//! prints the store's size as it grows, the bytes per domain and run, and the recording time.
//! Finally it prunes what is older than `--keep` and compacts, as `mailaudit prune` does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mailaudit_bench::fleet::{DEFAULT_SEED, synthetic_fleet};
use mailaudit_bench::process;
use mailaudit_lab::LabDns;
use mailaudit_store::{Location, OpenMode, RunStatus, Store, open_with};
use serde_json::Value;

use crate::{mailaudit_path, runtime, stats_of, write_list};

/// A week in seconds, the interval between two runs in the store's clock.
pub(crate) const WEEK: i64 = 7 * 86_400;

/// Measure the store's size over a year of weekly audits of the synthetic fleet (each domain's
/// report from one real audit against the lab DNS server, recorded once per week through the
/// store's API, a share of them changed each week), then prune and compact as `mailaudit prune
/// --keep` does. Prints the size after chosen weeks, bytes per domain and run, and the
/// recording time per run.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    /// Synthetic domains.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    domains: u64,

    /// Seed of the synthetic fleet.
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_SEED)]
    seed: u64,

    /// Weekly runs recorded.
    #[arg(long, value_name = "K", default_value_t = 52, value_parser = clap::value_parser!(u32).range(1..=520))]
    runs: u32,

    /// Share of the domains whose report changes each week, in percent.
    #[arg(long, value_name = "P", default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=100))]
    change_percent: u64,

    /// What the final prune keeps whole, in days (older results keep their summary).
    #[arg(long, value_name = "DAYS", default_value_t = 180)]
    keep_days: i64,

    /// Keep the store in this directory (default: a temporary one, removed at the end).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// The mailaudit binary [default: `mailaudit` next to this binary, i.e. target/release/].
    #[arg(long, value_name = "PATH")]
    mailaudit: Option<PathBuf>,
}

pub(crate) fn run(args: &StoreArgs) -> Result<bool> {
    let mailaudit = mailaudit_path(args.mailaudit.as_deref())?;
    let n = usize::try_from(args.domains).context("--domains is too large")?;
    let runtime = runtime(2)?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    // One real audit gives each domain its report.
    let audited = audit_fleet(&runtime, &mailaudit, n, args.seed, temp.path())?;
    drop(audited.lab);
    let reports = audited.reports;
    let json_bytes: usize = reports
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
        .sum();
    println!(
        "mailaudit-bench store: {} domains audited once against the lab DNS server; their \
         reports average {:.1} KB of JSON (what every result cost the store before schema \
         version 6)",
        reports.len(),
        json_bytes as f64 / reports.len().max(1) as f64 / 1024.0
    );

    let path = dir.join("bench-store.db");
    let _ = std::fs::remove_file(&path);
    runtime.block_on(record_weeks(args, &path, reports))?;
    // The store bench has no target to miss: it measures.
    Ok(true)
}

/// The synthetic fleet served by the lab DNS server and audited once ([`audit_fleet`]).
pub(crate) struct AuditedFleet {
    /// The lab DNS server, still serving the fleet.
    pub(crate) lab: LabDns,
    /// The fleet's domains.
    pub(crate) domains: Vec<String>,
    /// The file listing them, one per line.
    pub(crate) list: PathBuf,
    /// Each domain's report from the audit.
    pub(crate) reports: Vec<Value>,
}

/// The synthetic fleet of `n` domains (`seed`) served by the lab DNS server on `runtime`,
/// listed in `dir`, and audited once by `mailaudit` (`--no-store`) for each domain's report.
pub(crate) fn audit_fleet(
    runtime: &tokio::runtime::Runtime,
    mailaudit: &Path,
    n: usize,
    seed: u64,
    dir: &Path,
) -> Result<AuditedFleet> {
    let fleet = synthetic_fleet(n, seed).map_err(anyhow::Error::msg)?;
    let domains = fleet.domains.clone();
    let lab = runtime
        .block_on(LabDns::start(fleet.zone))
        .context("cannot start the lab DNS server")?;
    let list = dir.join("domains.txt");
    write_list(&list, &domains)?;
    let json = dir.join("audit.json");
    audit_once(mailaudit, &list, &lab.addr().to_string(), &json, None)?;
    let reports = read_reports(&json)?;
    Ok(AuditedFleet {
        lab,
        domains,
        list,
        reports,
    })
}

/// One `mailaudit audit` of the domains in `list` against the lab DNS server at `nameserver`,
/// its JSON report written to `json`; recorded in the store `db` when given (`--no-store`
/// otherwise). No MTA-STS policy fetch and no DNSSEC: the lab serves neither.
pub(crate) fn audit_once(
    mailaudit: &Path,
    list: &Path,
    nameserver: &str,
    json: &Path,
    db: Option<&str>,
) -> Result<()> {
    let mut command = Command::new(mailaudit);
    command
        .arg("audit")
        .arg("--file")
        .arg(list)
        .arg("--nameserver")
        .arg(nameserver)
        .args(["--format", "json", "--no-progress", "--stats"])
        .args(["--no-policy-fetch", "--no-dnssec", "--output"])
        .arg(json);
    match db {
        Some(db) => command.args(["--db", db]),
        None => command.arg("--no-store"),
    };
    let child =
        process::run(command).with_context(|| format!("cannot run {}", mailaudit.display()))?;
    stats_of(&child, mailaudit)?;
    Ok(())
}

/// The audit's JSON report: an array of domain reports.
fn read_reports(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let Value::Array(reports) = serde_json::from_str(&text).context("the audit's JSON")? else {
        bail!("the audit's JSON is not an array");
    };
    Ok(reports)
}

/// Whether domain `i`'s report changes in week `week`: a fixed hash roll, the same every run.
pub(crate) fn changes(i: usize, week: u32, percent: u64) -> bool {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ u64::from(week).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) % 100 < percent
}

/// The store's size on disk: the database file and its write-ahead log.
fn size_of(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

async fn record_weeks(args: &StoreArgs, path: &Path, mut reports: Vec<Value>) -> Result<()> {
    let store = open_with(
        &Location::SqliteFile(path.to_path_buf()),
        OpenMode::CreateIfMissing,
    )
    .await
    .with_context(|| format!("cannot create the store {}", path.display()))?
    .store;
    let n = reports.len().max(1) as f64;
    let start: i64 = 1_700_000_000;
    let mut versions = vec![0u32; reports.len()];
    let mut last_size = size_of(path);
    let mut record_secs = Vec::new();
    println!(
        "{:>4}  {:>8}  {:>10}  {:>12}  {:>10}",
        "week", "changed", "store MB", "bytes/domain", "record s"
    );
    println!(
        "{:>4}  {:>8}  {:>10}  {:>12}  {:>10}",
        "", "", "", "(this run)", ""
    );
    for week in 1..=args.runs {
        let at = start + i64::from(week) * WEEK;
        let mut changed = 0;
        for (i, report) in reports.iter_mut().enumerate() {
            if week > 1 && changes(i, week, args.change_percent) {
                versions[i] += 1;
                changed += 1;
                // Any change makes a new report; this one stands for a record or a verdict
                // that moved.
                report["bench_change"] = Value::from(versions[i]);
            }
        }
        let t = Instant::now();
        record_run(&*store, at, &reports).await?;
        let secs = t.elapsed().as_secs_f64();
        record_secs.push(secs);
        let size = size_of(path);
        let shown = week <= 3 || week % 13 == 0 || week == args.runs;
        if shown {
            println!(
                "{:>4}  {:>8}  {:>10.1}  {:>12.0}  {:>10.2}",
                week,
                changed,
                size as f64 / 1e6,
                size.saturating_sub(last_size) as f64 / n,
                secs
            );
        }
        last_size = size;
    }
    let grown = size_of(path);
    let mut sorted = record_secs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "after {} runs: {:.1} MB, {:.0} bytes per domain and run; recording a run: median {:.2}s \
         ({:.0} results/s)",
        args.runs,
        grown as f64 / 1e6,
        grown as f64 / n / f64::from(args.runs),
        median,
        n / median.max(1e-9)
    );

    let now = start + i64::from(args.runs) * WEEK;
    let t = Instant::now();
    let pruned = store
        .prune_results(now - args.keep_days * 86_400)
        .await
        .context("pruning")?;
    store.compact().await.context("compacting")?;
    let after = size_of(path);
    println!(
        "prune --keep {}d: {} results kept as summaries, {} report bodies deleted in {:.1}s; \
         {:.1} MB -> {:.1} MB",
        args.keep_days,
        pruned.results,
        pruned.bodies,
        t.elapsed().as_secs_f64(),
        grown as f64 / 1e6,
        after as f64 / 1e6
    );
    store.close().await;
    Ok(())
}

/// One run: every domain's report recorded through `Store::record_result`, one transaction
/// each (`mailaudit audit` records batches of up to 256 since schema 7; the figures of this
/// bench are those of the per-result path).
async fn record_run(store: &dyn Store, at: i64, reports: &[Value]) -> Result<()> {
    let run = store.begin_run("cli", at).await?;
    for report in reports {
        let Some(domain) = report["domain"].as_str() else {
            continue;
        };
        let score = report["score"].as_i64();
        store
            .record_result(run, domain, at, score, report)
            .await
            .with_context(|| format!("recording {domain}"))?;
    }
    store.finish_run(run, RunStatus::Complete, at + 60).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weekly_change_roll_follows_the_share() {
        let changed = (0..10_000).filter(|&i| changes(i, 7, 2)).count();
        assert!((150..=250).contains(&changed), "{changed}");
        assert_eq!((0..1000).filter(|&i| changes(i, 7, 0)).count(), 0);
        assert_eq!((0..1000).filter(|&i| changes(i, 7, 100)).count(), 1000);
        // Another week rolls other domains.
        let a: Vec<usize> = (0..1000).filter(|&i| changes(i, 7, 10)).collect();
        let b: Vec<usize> = (0..1000).filter(|&i| changes(i, 8, 10)).collect();
        assert_ne!(a, b);
    }
}
