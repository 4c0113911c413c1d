//! `mailaudit-bench dnssec`: what DNSSEC validation costs `mailaudit audit`, per domain, in DNS
//! queries, CPU time and wall time, on the synthetic fleet served as signed and unsigned zones
//! by the lab's DNSSEC-signing server on loopback.
//!
//! Each run audits the same list twice, with `--no-dnssec` and with `--trust-anchor` (the lab
//! root's key), in alternating order; the figures are the medians and their differences. A
//! first, untimed validating audit writes its JSON report, and the bench checks each domain's
//! DNSSEC status against the way its zone was signed: a cost measured on wrong verdicts would
//! mean nothing, so a mismatch fails the bench.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mailaudit_bench::fleet::{DEFAULT_SEED, synthetic_fleet};
use mailaudit_bench::process::{self, ChildRun};
use mailaudit_bench::signed::{SignedFleet, signed_fleet};
use mailaudit_bench::stats::AuditStats;
use mailaudit_lab::SignedDns;
use serde_json::Value;

use crate::{
    load_average, mailaudit_path, pass_tuning, runtime, secs, stats_of, verdict, write_list,
};

/// Measure what DNSSEC validation costs `mailaudit audit`: the synthetic fleet is served as
/// DNSSEC zones (about --signed-percent of the customer domains signed, each MX host in a
/// signed zone with DANE TLSA records) by the lab's signing server on 127.0.0.1, and each run
/// audits it with --no-dnssec and with validation from the lab's trust anchor. Prints DNS
/// queries, CPU time and wall time per domain for both, and the difference. A first
/// validating audit checks every domain's DNSSEC verdict; the exit status is 1 if one is wrong.
#[derive(Debug, clap::Args)]
pub(crate) struct DnssecArgs {
    /// Synthetic domains to audit (each one a zone of its own).
    #[arg(long, value_name = "N", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    domains: u64,

    /// Seed of the synthetic fleet (the same seed and N give the same fleet).
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_SEED)]
    seed: u64,

    /// Share of the customer domains that are signed, in percent; the others are insecure
    /// delegations.
    #[arg(long, value_name = "P", default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=100))]
    signed_percent: u64,

    /// Timed runs of each mode; the medians are compared.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// Passed to `mailaudit audit --concurrency` (default: mailaudit's own default).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,

    /// Passed to `mailaudit audit --timeout` (default: mailaudit's own default).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,

    /// The mailaudit binary [default: `mailaudit` next to this binary, i.e. target/release/].
    #[arg(long, value_name = "PATH")]
    mailaudit: Option<PathBuf>,

    /// Worker threads of the runtime that runs the lab DNS server.
    #[arg(long, value_name = "N", default_value_t = 2)]
    server_threads: usize,
}

/// With or without validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validation {
    Off,
    On,
}

impl Validation {
    fn label(self) -> &'static str {
        match self {
            Validation::Off => "--no-dnssec",
            Validation::On => "validating",
        }
    }
}

/// One timed audit.
#[derive(Debug)]
struct Measured {
    mode: Validation,
    child: ChildRun,
    stats: AuditStats,
    server_queries: u64,
    lab_cpu: Option<Duration>,
}

impl Measured {
    fn seconds(&self) -> f64 {
        self.child.wall.as_secs_f64().max(1e-9)
    }
}

pub(crate) fn run(args: &DnssecArgs) -> Result<bool> {
    let mailaudit = mailaudit_path(args.mailaudit.as_deref())?;
    let n = usize::try_from(args.domains).context("--domains is too large")?;

    let started = Instant::now();
    let fleet = synthetic_fleet(n, args.seed).map_err(anyhow::Error::msg)?;
    let signed = signed_fleet(&fleet, args.signed_percent);
    drop(fleet);
    let runtime = runtime(args.server_threads.max(1))?;
    let dns = runtime
        .block_on(SignedDns::start(&signed.zones))
        .context("cannot start the lab's DNSSEC-signing server")?;
    let prepared = started.elapsed();
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let list = dir.path().join("domains.txt");
    write_list(&list, &signed.domains)?;
    let anchor = dns
        .write_trust_anchor(dir.path())
        .context("cannot write the trust anchor")?;

    println!(
        "mailaudit-bench dnssec: {} synthetic domains, {} signed and {} unsigned; {} zones served \
         ({} signed in all, with the root and the TLDs); {} MX hosts with TLSA; generated and \
         signed in {:.2}s",
        signed.domains.len(),
        signed.signed_domains,
        signed.domains.len() - signed.signed_domains,
        dns.zones().len(),
        dns.zones()
            .iter()
            .filter(|(_, m)| *m != mailaudit_lab::DnssecMode::Unsigned)
            .count(),
        signed.tlsa_hosts,
        prepared.as_secs_f64()
    );
    if signed.dropped > 0 {
        println!(
            "{} records of the fleet left out (simulated failures the signing server cannot serve)",
            signed.dropped
        );
    }
    println!(
        "signing DNS server on {} ({} runtime threads); auditor {}; {} CPUs{}",
        dns.addr(),
        args.server_threads.max(1),
        mailaudit.display(),
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average().map_or(String::new(), |l| format!("; load average {l:.2}"))
    );

    // The verdicts first: an untimed validating audit with its report kept.
    let report = dir.path().join("report.json");
    let mut command = audit_command(&mailaudit, &list, &dns, args, Some(&anchor));
    command.arg("--output").arg(&report);
    let child =
        process::run(command).with_context(|| format!("cannot run {}", mailaudit.display()))?;
    stats_of(&child, &mailaudit)?;
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("cannot read {}", report.display()))?;
    let check = check_verdicts(&text, &signed)?;
    println!(
        "verdicts of a validating audit: {} of {} domains as expected ({} secure, {} insecure); \
         {} MX hosts with TLSA read, {} with a rollover pair {}",
        check.matching,
        signed.domains.len(),
        check.secure,
        check.insecure,
        check.tlsa_hosts,
        check.rollover_hosts,
        verdict(check.mismatches.is_empty())
    );
    for line in check.mismatches.iter().take(5) {
        println!("  {line}");
    }
    println!();

    println!(
        "{:>3}  {:<11}  {:>8}  {:>9}  {:>11}  {:>9}  {:>8}  {:>9}  {:>7}",
        "run",
        "mode",
        "seconds",
        "domains/s",
        "queries/dom",
        "look-ups/",
        "CPU s",
        "CPU ms/",
        "CPU s"
    );
    println!(
        "{:>3}  {:<11}  {:>8}  {:>9}  {:>11}  {:>9}  {:>8}  {:>9}  {:>7}",
        "", "", "(wall)", "(wall)", "(lab)", "domain", "(audit)", "domain", "(lab)"
    );
    let domains = signed.domains.len() as f64;
    let mut runs = Vec::new();
    for i in 1..=args.runs {
        // Alternate which mode goes first, so neither always meets a warmer machine.
        let order = if i % 2 == 1 {
            [Validation::Off, Validation::On]
        } else {
            [Validation::On, Validation::Off]
        };
        for mode in order {
            let anchor = (mode == Validation::On).then_some(anchor.as_path());
            let run = measure(&mailaudit, &list, &dns, args, anchor, mode)?;
            println!(
                "{:>3}  {:<11}  {:>8.2}  {:>9.0}  {:>11.2}  {:>9}  {:>8}  {:>9}  {:>7}",
                i,
                mode.label(),
                run.seconds(),
                domains / run.seconds(),
                run.server_queries as f64 / domains,
                run.stats
                    .lookups
                    .map_or("-".to_owned(), |n| format!("{:.2}", n as f64 / domains)),
                secs(run.child.cpu),
                run.child.cpu.map_or("?".to_owned(), |cpu| format!(
                    "{:.3}",
                    cpu.as_secs_f64() * 1000.0 / domains
                )),
                secs(run.lab_cpu),
            );
            runs.push(run);
        }
    }

    let off = Summary::of(&runs, Validation::Off, domains);
    let on = Summary::of(&runs, Validation::On, domains);
    println!();
    for s in [&off, &on] {
        println!(
            "median {:<11}: {:.2}s ({:.0} domains/s), {:.2} queries/domain, {} ms CPU/domain \
             (auditor), {} ms CPU/domain (lab server)",
            s.label,
            s.seconds,
            domains / s.seconds,
            s.queries,
            ms(s.cpu_ms),
            ms(s.lab_cpu_ms)
        );
    }
    println!(
        "validation costs: +{:.2} queries/domain ({:.0}% more), +{} ms auditor CPU/domain, \
         +{} ms lab CPU/domain; wall time x{:.2}",
        on.queries - off.queries,
        (on.queries / off.queries.max(1e-9) - 1.0) * 100.0,
        ms(on.cpu_ms.zip(off.cpu_ms).map(|(a, b)| a - b)),
        ms(on.lab_cpu_ms.zip(off.lab_cpu_ms).map(|(a, b)| a - b)),
        on.seconds / off.seconds.max(1e-9)
    );
    drop(dns);
    Ok(check.mismatches.is_empty())
}

fn ms(value: Option<f64>) -> String {
    value.map_or("?".to_owned(), |v| format!("{v:.3}"))
}

/// The medians of one mode's runs, per domain.
struct Summary {
    label: &'static str,
    seconds: f64,
    queries: f64,
    cpu_ms: Option<f64>,
    lab_cpu_ms: Option<f64>,
}

impl Summary {
    fn of(runs: &[Measured], mode: Validation, domains: f64) -> Summary {
        let of_mode: Vec<&Measured> = runs.iter().filter(|r| r.mode == mode).collect();
        let per_domain_ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0 / domains);
        Summary {
            label: mode.label(),
            seconds: median(of_mode.iter().map(|r| Some(r.seconds()))).unwrap_or(0.0),
            queries: median(
                of_mode
                    .iter()
                    .map(|r| Some(r.server_queries as f64 / domains)),
            )
            .unwrap_or(0.0),
            cpu_ms: median(of_mode.iter().map(|r| per_domain_ms(r.child.cpu))),
            lab_cpu_ms: median(of_mode.iter().map(|r| per_domain_ms(r.lab_cpu))),
        }
    }
}

/// The median (the lower middle one of an even count), `None` if any value is unknown or there
/// are none.
fn median(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect::<Option<_>>()?;
    values.sort_by(f64::total_cmp);
    values.get((values.len().checked_sub(1)?) / 2).copied()
}

/// `mailaudit audit` over the list, against the signing server; validating from `anchor` when
/// given, with --no-dnssec otherwise. The report goes to /dev/null unless the caller adds an
/// --output.
fn audit_command(
    mailaudit: &Path,
    list: &Path,
    dns: &SignedDns,
    args: &DnssecArgs,
    anchor: Option<&Path>,
) -> Command {
    let mut command = Command::new(mailaudit);
    command
        .arg("audit")
        .arg("--file")
        .arg(list)
        .arg("--nameserver")
        .arg(dns.addr().to_string())
        .args([
            "--format",
            "json",
            "--no-progress",
            "--stats",
            "--no-store",
            "--no-policy-fetch",
        ]);
    match anchor {
        Some(file) => command.arg("--trust-anchor").arg(file),
        None => command.arg("--no-dnssec"),
    };
    pass_tuning(&mut command, args.concurrency, args.timeout);
    command
}

/// One timed audit, counting the server's queries and CPU time.
fn measure(
    mailaudit: &Path,
    list: &Path,
    dns: &SignedDns,
    args: &DnssecArgs,
    anchor: Option<&Path>,
    mode: Validation,
) -> Result<Measured> {
    let mut command = audit_command(mailaudit, list, dns, args, anchor);
    command.arg("--output").arg("/dev/null");
    dns.reset_query_count();
    let cpu_before = process::own_cpu_time();
    let child =
        process::run(command).with_context(|| format!("cannot run {}", mailaudit.display()))?;
    let server_queries = dns.query_count();
    let lab_cpu = process::own_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let stats = stats_of(&child, mailaudit)?;
    Ok(Measured {
        mode,
        child,
        stats,
        server_queries,
        lab_cpu,
    })
}

/// What the validating audit's report says, against the fleet's zones.
#[derive(Debug, Default)]
struct VerdictCheck {
    matching: usize,
    secure: usize,
    insecure: usize,
    tlsa_hosts: usize,
    rollover_hosts: usize,
    mismatches: Vec<String>,
}

/// Compares each domain's `dnssec.domain` in the JSON report `text` with how its zone was
/// signed, and counts the MX hosts whose TLSA records were read.
fn check_verdicts(text: &str, fleet: &SignedFleet) -> Result<VerdictCheck> {
    let report: Value = serde_json::from_str(text).context("the audit's JSON does not parse")?;
    let Some(domains) = report.as_array() else {
        bail!("the audit's JSON is not an array");
    };
    let mut check = VerdictCheck::default();
    let mut seen: HashMap<&str, (&str, String)> = HashMap::new();
    for entry in domains {
        let name = entry["domain"].as_str().unwrap_or_default();
        let status = entry["dnssec"]["domain"]
            .as_str()
            .unwrap_or("no dnssec section");
        // What else the report says, for a mismatch's line.
        let ids: Vec<&str> = entry["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["id"].as_str())
            .collect();
        seen.insert(name, (status, ids.join(" ")));
        for mx in entry["dnssec"]["mx"].as_array().into_iter().flatten() {
            let has_tlsa = mx["tlsa"].as_array().is_some_and(|t| !t.is_empty());
            check.tlsa_hosts += usize::from(has_tlsa);
            check.rollover_hosts += usize::from(mx["rollover"].as_bool() == Some(true));
        }
    }
    for domain in &fleet.domains {
        let expected = fleet.expected.get(domain).copied().unwrap_or("?");
        match seen.get(domain.as_str()) {
            Some((status, _)) if *status == expected => {
                check.matching += 1;
                match *status {
                    "secure" => check.secure += 1,
                    _ => check.insecure += 1,
                }
            }
            Some((status, ids)) => check.mismatches.push(format!(
                "{domain}: {status}, expected {expected} (findings: {ids})"
            )),
            None => check
                .mismatches
                .push(format!("{domain}: not in the report")),
        }
    }
    Ok(check)
}
