//! `mailaudit-bench`: audit throughput and peak memory of `mailaudit audit` on a synthetic
//! fleet served by the lab DNS server on loopback, against the project's targets (at least
//! 1,000 domains/s, peak RSS under 200 MB), optionally side by side with checkdmarc.
//!
//! Build both binaries in release mode, then run the bench:
//!
//! ```text
//! cargo build --release -p mailaudit -p mailaudit-bench && target/release/mailaudit-bench
//! ```
//!
//! `mailaudit-bench reports` measures DMARC aggregate report parsing and ingest instead, on a
//! generated corpus, optionally against parsedmarc (README, "Report parsing").
//! `mailaudit-bench dnssec` measures what DNSSEC validation costs per domain (README, "DNSSEC
//! validation").
//!
//! Exit status: 0 when every target is met, 1 when one is missed, 2 on an error.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use mailaudit_bench::fleet::{DEFAULT_SEED, Mix, synthetic_fleet};
use mailaudit_bench::isolation::{is_root, network_isolated};
use mailaudit_bench::load::udp_load;
use mailaudit_bench::process::{self, ChildRun, find_in_path};
use mailaudit_bench::stats::{AuditStats, parse_stats};
use mailaudit_lab::LabDns;

mod dnssec;
mod portal;
mod reports;
mod store;

/// Set in the environment of the copy of the bench re-executed under `unshare --net`.
const NETNS_ENV: &str = "MAILAUDIT_BENCH_NETNS";

/// The checkdmarc release the issue's reference figure (about 30 domains/s) is for.
const CHECKDMARC_VERSION: &str = "6.0.4";

/// Measure `mailaudit audit` throughput (domains/s), DNS queries per domain and peak memory on
/// a synthetic fleet served by an in-process DNS server on 127.0.0.1, and check them against
/// the targets.
///
/// With --checkdmarc, also time checkdmarc on a subset of the same fleet, served on
/// 127.0.0.1:53 (checkdmarc cannot be given a port), and print the ratio. That part runs in a
/// network namespace with nothing but loopback, which the bench enters by re-running itself
/// under `unshare --net` (root, or unprivileged user namespaces, needed), so that checkdmarc's
/// MTA-STS fetches cannot reach any other address.
///
/// `mailaudit-bench reports` measures DMARC aggregate report parsing and ingest instead (see
/// `mailaudit-bench reports --help`), `mailaudit-bench dnssec` what DNSSEC validation costs,
/// `mailaudit-bench store` the store's size over a year of weekly audits, `mailaudit-bench
/// portal` the portal's pages on a store of an MSP's size (each: `--help`).
#[derive(Debug, Parser)]
#[command(
    name = "mailaudit-bench",
    version,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<BenchCommand>,

    /// Synthetic domains to audit.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    domains: usize,

    /// Seed of the synthetic fleet (the same seed and N give the same fleet).
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_SEED)]
    seed: u64,

    /// Passed to `mailaudit audit --concurrency` (default: mailaudit's own default).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,

    /// Passed to `mailaudit audit --timeout` (default: mailaudit's own default).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,

    /// Audit runs; the verdict uses the median run, and the best is shown too.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// The mailaudit binary [default: `mailaudit` next to this binary, i.e. target/release/].
    #[arg(long, value_name = "PATH")]
    mailaudit: Option<PathBuf>,

    /// Port of 127.0.0.1 for the lab DNS server (0: an ephemeral port; --checkdmarc uses 53).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    port: u16,

    /// Worker threads of the runtime that runs the lab DNS server.
    #[arg(long, value_name = "N", default_value_t = 2)]
    server_threads: usize,

    /// Record each run in this store (`sqlite://PATH` or `postgres://…`, passed to `mailaudit
    /// --db`) instead of auditing with --no-store: what recording costs, against a run without
    /// it. The store must be one the audit may create or write to; runs accumulate in it.
    #[arg(long, value_name = "URL")]
    db: Option<String>,

    /// Queries of the lab server's own capacity test (64 UDP clients); 0 skips it.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    server_load_queries: u64,

    /// Target: at least this many domains/s.
    #[arg(long, value_name = "RATE", default_value_t = 1000.0)]
    target_rate: f64,

    /// Target: peak RSS of the auditor under this many MB (MiB).
    #[arg(long, value_name = "MB", default_value_t = 200.0)]
    target_rss_mb: f64,

    /// Also time checkdmarc (must be on PATH: `pip install checkdmarc==6.0.4`) on a subset.
    #[arg(long)]
    checkdmarc: bool,

    /// Domains of the fleet (the first N) given to checkdmarc.
    #[arg(long, value_name = "N", default_value_t = 200)]
    checkdmarc_domains: usize,
}

/// Benchmarks other than the audit one.
#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// DMARC aggregate reports: `mailaudit reports parse` and `reports ingest` on a generated
    /// corpus (records/s, MB/s, peak RSS), optionally against parsedmarc on the same files.
    Reports(reports::ReportsArgs),
    /// DNSSEC validation: `mailaudit audit` with and without it on the synthetic fleet served
    /// as signed and unsigned zones (queries, CPU and wall time per domain), after checking
    /// every domain's DNSSEC verdict.
    Dnssec(dnssec::DnssecArgs),
    /// The store's size over a year of weekly audits (bytes per domain and run, recording
    /// time), then what pruning gives back.
    Store(store::StoreArgs),
    /// The portal's pages on a store of an MSP's size (10,000 domains in 100 customers, a year
    /// of weekly audits): server time per page (median, 95th percentile) and size, against
    /// the budget of 100 ms and 300 KB.
    Portal(portal::PortalArgs),
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let result = match args.command.take() {
        Some(BenchCommand::Reports(reports)) => reports::run(&reports),
        Some(BenchCommand::Dnssec(dnssec)) => dnssec::run(&dnssec),
        Some(BenchCommand::Store(store)) => store::run(&store),
        Some(BenchCommand::Portal(portal)) => portal::run(&portal),
        None => run(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("mailaudit-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One audit run of the full fleet.
#[derive(Debug)]
struct AuditRun {
    domains: usize,
    child: ChildRun,
    stats: AuditStats,
    server_queries: u64,
    /// CPU time the bench (the lab server, mostly) used during the run.
    lab_cpu: Option<Duration>,
    /// UDP datagrams the kernel dropped for want of socket buffer space during the run.
    udp_drops: Option<u64>,
}

impl AuditRun {
    fn seconds(&self) -> f64 {
        self.child.wall.as_secs_f64().max(1e-9)
    }

    /// Domains per second of wall time, process start to exit.
    fn rate(&self) -> f64 {
        self.domains as f64 / self.seconds()
    }

    /// The larger of the auditor's own report and the bench's sampling, in MB.
    fn peak_rss_mb(&self) -> Option<f64> {
        let sampled = self.child.peak_rss_kib.map(|kib| kib as f64 / 1024.0);
        match (self.stats.peak_rss_mb, sampled) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

fn run(mut args: Args) -> Result<bool> {
    if args.domains == 0 {
        bail!("--domains must be at least 1");
    }
    if args.checkdmarc && !prepare_isolation(&mut args)? {
        // The re-executed copy ran the whole benchmark; nothing left to do here.
        return Ok(true);
    }
    let mailaudit = mailaudit_path(args.mailaudit.as_deref())?;

    let started = Instant::now();
    let fleet = synthetic_fleet(args.domains, args.seed).map_err(anyhow::Error::msg)?;
    let generated = started.elapsed();

    let runtime = runtime(args.server_threads.max(1))?;
    let port = if args.checkdmarc { 53 } else { args.port };
    let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let names = fleet.zone.len();
    let lab = runtime
        .block_on(LabDns::start_on(bind, fleet.zone))
        .with_context(|| format!("cannot start the lab DNS server on {bind}"))?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let list = dir.path().join("domains.txt");
    write_list(&list, &fleet.domains)?;

    println!(
        "mailaudit-bench: {} synthetic domains ({}), {names} names in the zone, generated in {:.2}s",
        fleet.domains.len(),
        describe_mix(&fleet.mix),
        generated.as_secs_f64()
    );
    println!(
        "lab DNS server on {} (UDP+TCP, {} runtime threads); auditor {}; {} CPUs",
        lab.addr(),
        args.server_threads.max(1),
        mailaudit.display(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    if let Some(load) = load_average() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        println!(
            "load average before the runs: {load:.2}{}",
            if load > cpus / 2.0 {
                " (other work is running: figures will be low and noisy)"
            } else {
                ""
            }
        );
    }
    println!();

    // The audit runs.
    let mut runs = Vec::new();
    println!(
        "{:>3}  {:>8}  {:>9}  {:>10}  {:>10}  {:>9}  {:>9}  {:>10}  {:>7}  {:>7}  {:>9}",
        "run",
        "seconds",
        "domains/s",
        "queries/dom",
        "queries/dom",
        "look-ups/",
        "peak RSS",
        "lab",
        "CPU s",
        "CPU s",
        "UDP"
    );
    println!(
        "{:>3}  {:>8}  {:>9}  {:>10}  {:>10}  {:>9}  {:>9}  {:>10}  {:>7}  {:>7}  {:>9}",
        "",
        "(wall)",
        "(wall)",
        "(lab)",
        "(stats)",
        "domain",
        "(MB)",
        "queries/s",
        "(audit)",
        "(lab)",
        "drops"
    );
    for i in 1..=args.runs {
        let run = audit_run(
            &mailaudit,
            &list,
            lab.addr(),
            &args,
            &lab,
            fleet.domains.len(),
        )?;
        let per_domain = |n: Option<u64>| {
            n.map_or("-".to_owned(), |n| {
                format!("{:.2}", n as f64 / run.domains as f64)
            })
        };
        println!(
            "{:>3}  {:>8.2}  {:>9.0}  {:>10.2}  {:>10}  {:>9}  {:>9}  {:>10.0}  {:>7}  {:>7}  {:>9}",
            i,
            run.seconds(),
            run.rate(),
            run.server_queries as f64 / run.domains as f64,
            per_domain(run.stats.queries_sent),
            per_domain(run.stats.lookups),
            run.peak_rss_mb()
                .map_or("?".to_owned(), |mb| format!("{mb:.0}")),
            run.server_queries as f64 / run.seconds(),
            secs(run.child.cpu),
            secs(run.lab_cpu),
            run.udp_drops.map_or("?".to_owned(), |n| n.to_string()),
        );
        runs.push(run);
    }

    let mut by_rate: Vec<&AuditRun> = runs.iter().collect();
    by_rate.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let median = by_rate[(by_rate.len() - 1) / 2];
    let best = by_rate[by_rate.len() - 1];
    let peak_rss = runs
        .iter()
        .map(AuditRun::peak_rss_mb)
        .try_fold(0.0f64, |max, mb| mb.map(|mb| max.max(mb)));
    println!();
    if runs.len() > 1 {
        println!(
            "median of {} runs: {:.0} domains/s; best: {:.0} domains/s ({:.2}s)",
            runs.len(),
            median.rate(),
            best.rate(),
            best.seconds()
        );
    }
    let drops: u64 = runs.iter().filter_map(|r| r.udp_drops).sum();
    if drops > 0 {
        println!(
            "note: the kernel dropped {drops} UDP datagrams on full socket buffers during the \
             runs; each costs the auditor a --timeout wait and a retry, so a run with drops \
             near its end is seconds slower"
        );
    }
    println!(
        "auditor's own clock (stats line): {:.0} domains/s in {:.2}s (median run)",
        median.stats.domains as f64 / median.stats.seconds.max(1e-9),
        median.stats.seconds
    );

    if let Some(cpu) = median.child.cpu {
        println!(
            "auditor CPU per domain: {:.2} ms (median run; issue 16's goal: 0.3 ms)",
            cpu.as_secs_f64() * 1000.0 / median.domains.max(1) as f64
        );
    }

    let rate_ok = median.rate() >= args.target_rate;
    let rss_ok = peak_rss.is_some_and(|mb| mb < args.target_rss_mb);
    println!(
        "target throughput >= {:.0} domains/s: {:.0} domains/s {}",
        args.target_rate,
        median.rate(),
        verdict(rate_ok)
    );
    println!(
        "target peak RSS < {:.0} MB: {} {}",
        args.target_rss_mb,
        peak_rss.map_or("unknown".to_owned(), |mb| format!("{mb:.0} MB")),
        verdict(rss_ok)
    );

    // The lab server's own capacity, measured after the audits so it disturbs none of them.
    if args.server_load_queries > 0 {
        let before = lab.query_count();
        let load = runtime
            .block_on(udp_load(
                lab.addr(),
                &fleet.domains,
                64,
                args.server_load_queries,
            ))
            .context("lab server load test")?;
        println!(
            "lab server capacity: {} UDP queries from 64 clients answered in {:.2}s: {:.0} queries/s{}",
            load.answered,
            load.elapsed.as_secs_f64(),
            load.rate(),
            if load.answered == load.sent && lab.query_count() - before == load.sent {
                String::new()
            } else {
                format!(
                    " ({} sent, {} unanswered)",
                    load.sent,
                    load.sent - load.answered
                )
            }
        );
        // What the server could answer at the audit's queries per domain: the ceiling the
        // auditor's throughput is a share of.
        let per_domain = median.server_queries as f64 / median.domains.max(1) as f64;
        if per_domain > 0.0 && load.rate() > 0.0 {
            let ceiling = load.rate() / per_domain;
            println!(
                "the lab server's ceiling at {per_domain:.1} queries per domain: {ceiling:.0} domains/s; the median run reached {:.0}% of it (goal: 80%)",
                100.0 * median.rate() / ceiling
            );
        }
    }

    if args.checkdmarc {
        let subset = &fleet.domains[..args.checkdmarc_domains.clamp(1, fleet.domains.len())];
        compare_checkdmarc(&args, &mailaudit, &lab, subset, dir.path(), median.rate())?;
    }

    drop(lab);
    Ok(rate_ok && rss_ok)
}

/// Makes sure the process runs where only loopback is reachable, for checkdmarc. Returns
/// `Ok(true)` to go on in this process, `Ok(false)` when a re-executed copy under `unshare
/// --net` did the work (its exit status is propagated), and turns the comparison off (with a
/// message) when no isolated namespace can be had.
fn prepare_isolation(args: &mut Args) -> Result<bool> {
    if std::env::var_os(NETNS_ENV).is_some() {
        // Inside the new namespace: loopback starts down.
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        if !up.is_ok_and(|s| s.success()) {
            eprintln!("mailaudit-bench: warning: `ip link set lo up` failed in the namespace");
        }
        if !network_isolated() {
            eprintln!(
                "mailaudit-bench: not isolated from the network even under unshare; skipping checkdmarc"
            );
            args.checkdmarc = false;
        }
        return Ok(true);
    }
    if network_isolated() {
        return Ok(true);
    }
    let mut unshare = Command::new("unshare");
    unshare.arg("--net");
    if !is_root() {
        unshare.arg("--map-root-user");
    }
    let probe = unshare_probe(!is_root());
    if !probe {
        eprintln!(
            "mailaudit-bench: cannot create a network namespace with `unshare --net` (needs root or \
             unprivileged user namespaces); checkdmarc must not run with network access, so the \
             comparison is skipped. Run the bench as root, or inside a namespace with only loopback."
        );
        args.checkdmarc = false;
        return Ok(true);
    }
    let exe = std::env::current_exe().context("cannot find the bench's own path")?;
    eprintln!(
        "mailaudit-bench: re-running under `unshare --net` (loopback only) for the checkdmarc comparison"
    );
    let status = unshare
        .arg("--")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, "1")
        .status()
        .context("cannot run unshare")?;
    std::process::exit(status.code().unwrap_or(2));
}

/// Whether `unshare --net true` works here.
fn unshare_probe(map_root: bool) -> bool {
    let mut probe = Command::new("unshare");
    probe.arg("--net");
    if map_root {
        probe.arg("--map-root-user");
    }
    probe
        .arg("true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The mailaudit binary: the one given, or `mailaudit` beside this executable.
fn mailaudit_path(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .context("cannot find the bench's own path")?
            .with_file_name("mailaudit"),
    };
    if !path.is_file() {
        bail!(
            "no mailaudit binary at {}: build it with `cargo build --release -p mailaudit`, or \
             pass --mailaudit PATH",
            path.display()
        );
    }
    Ok(path)
}

/// A multi-thread tokio runtime of `threads` workers (the lab servers' and the store's).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

fn write_list(path: &Path, domains: &[String]) -> Result<()> {
    let mut text = domains.join("\n");
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `mailaudit audit` over the list in `list`, against `server`.
fn mailaudit_command(mailaudit: &Path, list: &Path, server: SocketAddr, args: &Args) -> Command {
    let mut command = Command::new(mailaudit);
    command
        .arg("audit")
        .arg("--file")
        .arg(list)
        .arg("--nameserver")
        .arg(server.to_string())
        .args([
            "--format",
            "json",
            "--output",
            "/dev/null",
            "--no-progress",
            "--stats",
            // The fleet's MTA-STS hosts serve no policy.
            "--no-policy-fetch",
            // The lab serves the fleet unsigned under no signed root: validating it would
            // measure a fleet of bogus zones, not the audit.
            "--no-dnssec",
        ]);
    // Measured, not recorded, unless --db says where to record.
    match &args.db {
        Some(url) => command.arg("--db").arg(url),
        None => command.arg("--no-store"),
    };
    pass_tuning(&mut command, args.concurrency, args.timeout);
    command
}

/// The `--stats` line of an audit, or an error with the start of its standard error.
pub(crate) fn stats_of(child: &ChildRun, mailaudit: &Path) -> Result<AuditStats> {
    parse_stats(&child.stderr).with_context(|| {
        format!(
            "{} exited with {} and printed no --stats line; its standard error:\n{}",
            mailaudit.display(),
            child.status,
            head(&child.stderr, 20)
        )
    })
}

/// Passes the bench's `--concurrency` and `--timeout`, when given, on to `mailaudit audit`.
pub(crate) fn pass_tuning(command: &mut Command, concurrency: Option<usize>, timeout: Option<f64>) {
    if let Some(n) = concurrency {
        command.arg("--concurrency").arg(n.to_string());
    }
    if let Some(secs) = timeout {
        command.arg("--timeout").arg(secs.to_string());
    }
}

/// One audit of the list, counting the lab's queries.
fn audit_run(
    mailaudit: &Path,
    list: &Path,
    server: SocketAddr,
    args: &Args,
    lab: &LabDns,
    domains: usize,
) -> Result<AuditRun> {
    lab.reset_query_count();
    let drops_before = udp_receive_buffer_errors();
    let cpu_before = process::own_cpu_time();
    let child = process::run(mailaudit_command(mailaudit, list, server, args))
        .with_context(|| format!("cannot run {}", mailaudit.display()))?;
    let server_queries = lab.query_count();
    let lab_cpu = process::own_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let udp_drops = udp_receive_buffer_errors()
        .zip(drops_before)
        .map(|(after, before)| after.saturating_sub(before));
    let stats = stats_of(&child, mailaudit)?;
    // Exit status 1 only means findings at or above --fail-on (not given here); 2 means some
    // input or lookup error, worth showing but not fatal to the measurement.
    if !child.status.success() {
        eprintln!(
            "mailaudit-bench: note: mailaudit exited with {}; first lines of its standard error:\n{}",
            child.status,
            head(&child.stderr, 5)
        );
    }
    if stats.domains != domains as u64 {
        eprintln!(
            "mailaudit-bench: warning: mailaudit reports {} domains, the list has {domains}",
            stats.domains
        );
    }
    Ok(AuditRun {
        domains,
        child,
        stats,
        server_queries,
        lab_cpu,
        udp_drops,
    })
}

/// Times checkdmarc and mailaudit on the same subset of the fleet and prints the ratios.
fn compare_checkdmarc(
    args: &Args,
    mailaudit: &Path,
    lab: &LabDns,
    subset: &[String],
    dir: &Path,
    full_rate: f64,
) -> Result<()> {
    println!();
    let Some(checkdmarc) = find_in_path("checkdmarc") else {
        println!(
            "checkdmarc: not on PATH, comparison skipped. Install it (the bench never installs \
             anything) with `pip install checkdmarc=={CHECKDMARC_VERSION}`, then rerun with --checkdmarc."
        );
        return Ok(());
    };
    let version = Command::new(&checkdmarc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if version != CHECKDMARC_VERSION {
        println!(
            "checkdmarc: note: version {version:?} found; the reference figure is for {CHECKDMARC_VERSION}"
        );
    }
    let list = dir.join("checkdmarc-domains.txt");
    write_list(&list, subset)?;
    let output = dir.join("checkdmarc.json");

    lab.reset_query_count();
    let mut command = Command::new(&checkdmarc);
    // The list first: -n and -o take one or more values each. -n: the lab (port 53);
    // -t/--retries: DNS timeout, no retries; -o: results to a file (silences the screen).
    // MX TLS probes are off unless --check-mx-tls is given.
    command
        .arg(&list)
        .args([
            "-f",
            "json",
            "-t",
            "2.0",
            "--retries",
            "0",
            "-n",
            "127.0.0.1",
            "-o",
        ])
        .arg(&output);
    let child = process::run(command).context("cannot run checkdmarc")?;
    let queries = lab.query_count();
    if !child.status.success() {
        println!(
            "checkdmarc: exited with {}; first lines of its standard error:\n{}",
            child.status,
            head(&child.stderr, 10)
        );
    }
    let results = std::fs::read_to_string(&output)
        .map(|text| text.matches("\"domain\":").count())
        .unwrap_or(0);
    let n = subset.len() as f64;
    let secs = child.wall.as_secs_f64().max(1e-9);
    let rate = n / secs;
    println!(
        "checkdmarc {version}: {} domains in {secs:.2}s: {rate:.1} domains/s, {:.1} queries/domain, \
         peak RSS {} ({} results written)",
        subset.len(),
        queries as f64 / n,
        child.peak_rss_kib.map_or("?".to_owned(), |kib| format!(
            "{:.0} MB",
            kib as f64 / 1024.0
        )),
        results
    );

    if results != subset.len() {
        println!(
            "checkdmarc wrote {results} results for {} domains: its timing does not count, no ratio",
            subset.len()
        );
        return Ok(());
    }

    // mailaudit on the same subset, for a like-for-like figure.
    lab.reset_query_count();
    let same = process::run(mailaudit_command(mailaudit, &list, lab.addr(), args))
        .context("cannot run mailaudit on the checkdmarc subset")?;
    let same_rate = n / same.wall.as_secs_f64().max(1e-9);
    println!(
        "mailaudit on the same {} domains: {:.2}s: {same_rate:.0} domains/s, {:.1} queries/domain",
        subset.len(),
        same.wall.as_secs_f64(),
        lab.query_count() as f64 / n
    );
    println!(
        "ratio mailaudit / checkdmarc: {:.0}x on the same {} domains; {:.0}x with mailaudit's \
         {}-domain run",
        same_rate / rate,
        subset.len(),
        full_rate / rate,
        args.domains
    );
    Ok(())
}

/// The kernel's count of UDP datagrams dropped for a full socket receive buffer, system-wide
/// (`RcvbufErrors` in `/proc/net/snmp`). Each drop costs the auditor a timeout and a retry.
fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let header = udp.next()?;
    let values = udp.next()?;
    let at = header
        .split_whitespace()
        .position(|h| h == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// A duration in seconds, or `?`.
fn secs(d: Option<Duration>) -> String {
    d.map_or("?".to_owned(), |d| format!("{:.2}", d.as_secs_f64()))
}

/// The 1-minute load average from `/proc/loadavg`.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn describe_mix(mix: &Mix) -> String {
    format!(
        "{} Microsoft 365, {} Google, {} other MX, {} without MX, {} null MX; DMARC on {}, \
         a DKIM key on {}, MTA-STS on {}, TLS-RPT on {}",
        mix.microsoft365,
        mix.google,
        mix.other,
        mix.no_mx,
        mix.null_mx,
        mix.dmarc,
        mix.dkim_key,
        mix.mta_sts,
        mix.tls_rpt
    )
}

/// The first `n` lines of `text`, indented.
fn head(text: &str, n: usize) -> String {
    text.lines()
        .take(n)
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
