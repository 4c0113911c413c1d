//! The sub-commands: wiring of the library crates.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mailaudit_core::audit::{AuditOptions, normalize_domain};
use mailaudit_core::checks::{CATALOGUE, CheckId};
use mailaudit_net::dns::parse_nameserver;
use mailaudit_net::https::HttpsOptions;
use mailaudit_net::live::{LiveOptions, RelayOptions};
use mailaudit_net::smtp::{Politeness, SmtpOptions, TlsRoots};
use mailaudit_net::{BulkOptions, Resolver, ResolverConfig, audit_stream};

use crate::cli::{
    AuditArgs, ChecksArgs, Cli, ColorChoice, Command, RelayFormat, RelayTestArgs, SmtpArgs,
    SpfEvalArgs,
};
use crate::output::{ReportWriter, Summary};

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Audit(args) => runtime()?.block_on(audit(&cli, args)),
        Command::SpfEval(args) => runtime()?.block_on(spf_eval(&cli, args)),
        Command::RelayTest(args) => runtime()?.block_on(relay_test(&cli, args)),
        Command::Checks(args) => checks(args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn resolver_config(cli: &Cli, timeout: f64, retries: usize) -> Result<ResolverConfig> {
    let nameservers = cli
        .nameserver
        .iter()
        .map(|s| parse_nameserver(s))
        .collect::<Result<Vec<_>, _>>()?;
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 300.0) {
        bail!("--timeout must be between 0 and 300 seconds, got {timeout}");
    }
    Ok(ResolverConfig {
        nameservers,
        timeout: Duration::from_secs_f64(timeout),
        attempts: retries + 1,
        ..ResolverConfig::default()
    })
}

fn color_enabled(choice: ColorChoice, to_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Lines of every `--file`, opened up front so a missing file fails before any work starts.
fn file_lines(
    paths: &[std::path::PathBuf],
    errored: Arc<AtomicBool>,
) -> Result<Vec<Box<dyn Iterator<Item = String> + Send>>> {
    let mut out: Vec<Box<dyn Iterator<Item = String> + Send>> = Vec::new();
    for path in paths {
        let reader: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
            Box::new(BufReader::new(f))
        };
        let name = path.display().to_string();
        let errored = errored.clone();
        out.push(Box::new(reader.lines().map_while(move |l| match l {
            Ok(l) => Some(l),
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

async fn audit(cli: &Cli, args: &AuditArgs) -> Result<ExitCode> {
    let errored = Arc::new(AtomicBool::new(false));
    let mut config = resolver_config(cli, args.timeout, args.retries)?;
    let mut opts = AuditOptions::default();
    if let Some(p) = &args.parked {
        opts.parked = read_parked(p)?;
    }

    // The inputs, in order: arguments, then each file.
    let mut lab = None;
    let mut sources: Vec<Box<dyn Iterator<Item = String> + Send>> = Vec::new();
    let total: Option<u64>;
    if args.sample {
        let (zone, domains) = mailaudit_lab::sample_fleet();
        let server = mailaudit_lab::LabDns::start(zone)
            .await
            .context("cannot start the sample DNS server")?;
        config.nameservers = vec![server.addr()];
        lab = Some(server);
        total = Some(domains.len() as u64);
        sources.push(Box::new(domains.into_iter()));
    } else {
        if args.domains.is_empty() && args.file.is_empty() {
            bail!("no domains given: pass DOMAIN arguments, --file PATH, or --sample (see --help)");
        }
        total = count_lines(&args.file).map(|n| n + args.domains.len() as u64);
        sources.push(Box::new(args.domains.clone().into_iter()));
        sources.extend(file_lines(&args.file, errored.clone())?);
    }
    let inputs = sources.into_iter().flatten();

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
        live.relay = Some(relay_options(&args.smtp, None, None)?);
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

    let started = Instant::now();
    let mut summary = Summary::default();
    while let Some(report) = rx.recv().await {
        if let Some(err) = &report.error {
            pb.suspend(|| eprintln!("mailaudit: {:?}: {err}", report.domain));
            errored.store(true, Ordering::Relaxed);
        }
        summary.add(&report);
        pb.suspend(|| writer.write(&report))?;
        pb.inc(1);
        pb.set_message(report.domain.clone());
    }
    pb.finish_and_clear();
    writer.finish(&summary)?;
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

fn roots(args: &SmtpArgs) -> Result<TlsRoots> {
    Ok(match &args.ca_file {
        Some(path) => TlsRoots::with_ca_file(path)?,
        None => TlsRoots::webpki(),
    })
}

/// This machine's host name, for EHLO and the operator label.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

fn relay_options(
    args: &SmtpArgs,
    mx: Option<String>,
    m365_endpoint: Option<String>,
) -> Result<RelayOptions> {
    let t = args.smtp_timeout;
    if !(t.is_finite() && t > 0.0 && t <= 600.0) {
        bail!("--smtp-timeout must be between 0 and 600 seconds, got {t}");
    }
    let reply = Duration::from_secs_f64(t);
    let smtp = SmtpOptions {
        port: args.smtp_port,
        connect_timeout: reply / 3,
        reply_timeout: reply,
        session_timeout: reply * 4,
        roots: roots(args)?,
        ..SmtpOptions::default()
    };
    let host = host_name();
    let user = std::env::var("USER").unwrap_or_else(|_| "mailaudit".to_string());
    Ok(RelayOptions {
        smtp,
        helo: args.helo.clone().unwrap_or_else(|| host.clone()),
        from: args.from.clone(),
        to: args.to.clone(),
        send_test_message: args.send_test_message,
        operator: args
            .operator
            .clone()
            .unwrap_or_else(|| format!("{user}@{host}")),
        politeness: Politeness::new(8, 1, Duration::from_secs(1)),
        mx,
        m365_endpoint,
        tls_hosts: 3,
    })
}

async fn relay_test(cli: &Cli, args: &RelayTestArgs) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let config = resolver_config(cli, args.timeout, 1)?;
    let resolver = Resolver::new(&config)?;
    let opts = relay_options(&args.smtp, args.mx.clone(), args.m365_endpoint.clone())?;
    let report =
        mailaudit_core::audit::audit_domain(&resolver, &domain, &AuditOptions::default()).await;
    let (section, findings) = mailaudit_net::live::relay_test(&resolver, &report, &opts).await;
    let mut out = io::stdout().lock();
    match args.format {
        RelayFormat::Json => {
            let value =
                serde_json::json!({ "domain": domain, "relay": section, "findings": findings });
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
        RelayFormat::Text => {
            let verdict = section.verdict.to_uppercase();
            writeln!(out, "{domain}: {verdict}")?;
            if let Some(reason) = &section.reason {
                writeln!(out, "  {}", crate::output::printable(reason))?;
            }
            if let Some(reply) = &section.reply {
                writeln!(out, "  deciding reply: {}", crate::output::printable(reply))?;
            }
            for p in &section.probes {
                let kind = if p.relay {
                    "relay probe"
                } else {
                    "STARTTLS/TLS check"
                };
                let addr = p.addr.as_deref().unwrap_or("not connected");
                writeln!(
                    out,
                    "\n  {kind} of {} [{addr}]: {} — {}",
                    p.host,
                    p.verdict.as_str(),
                    crate::output::printable(&p.reason)
                )?;
                if let Some(tls) = &p.tls {
                    let cert = if tls.cert_valid {
                        "certificate valid".to_string()
                    } else {
                        format!(
                            "certificate INVALID: {}",
                            tls.cert_error.as_deref().unwrap_or("unknown reason")
                        )
                    };
                    writeln!(out, "    TLS {} {}; {cert}", tls.version, tls.cipher)?;
                } else if p.starttls_offered == Some(false) {
                    writeln!(out, "    STARTTLS not offered")?;
                }
                for line in &p.transcript {
                    writeln!(out, "    {}", crate::output::printable(&line.to_string()))?;
                }
            }
            for f in &findings {
                writeln!(
                    out,
                    "\n  {} {}: {}",
                    f.severity.as_str().to_uppercase(),
                    f.id,
                    crate::output::printable(&f.detail)
                )?;
            }
        }
    }
    Ok(match section.verdict.as_str() {
        "blocked" => ExitCode::SUCCESS,
        "open" => ExitCode::from(1),
        "not_tested" => {
            eprintln!(
                "mailaudit: {domain}: {}",
                section.reason.as_deref().unwrap_or("nothing to test")
            );
            ExitCode::from(2)
        }
        _ => ExitCode::from(3),
    })
}

/// The process's peak resident set size (Linux `VmHWM`), in megabytes.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn spf_eval(cli: &Cli, args: &SpfEvalArgs) -> Result<ExitCode> {
    let config = resolver_config(cli, args.timeout, 1)?;
    let resolver = Resolver::new(&config)?;
    let sender = args.sender.trim();
    let domain = match sender.rsplit_once('@') {
        Some((_, d)) => d.to_string(),
        None if sender.is_empty() => args.helo.clone(),
        None => sender.to_string(),
    };
    let outcome =
        mailaudit_core::spf::check_host(&resolver, args.ip, &domain, sender, &args.helo).await;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", outcome.result.as_str())?;
    if let Some(exp) = &outcome.explanation {
        writeln!(out, "{exp}")?;
    }
    if !outcome.reason.is_empty() {
        eprintln!("mailaudit: {}", outcome.reason);
    }
    Ok(ExitCode::SUCCESS)
}

fn checks(args: &ChecksArgs) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    if args.markdown {
        write!(out, "{}", mailaudit_core::checks::render_markdown())?;
        return Ok(ExitCode::SUCCESS);
    }
    match &args.id {
        None => {
            writeln!(
                out,
                "{:<30} {:<9} {:<13} {:<9} TITLE",
                "ID", "CODE", "AREA", "SEVERITY"
            )?;
            for c in CATALOGUE {
                writeln!(
                    out,
                    "{:<30} {:<9} {:<13} {:<9} {}",
                    c.id, c.code, c.area, c.severity, c.title
                )?;
            }
            writeln!(
                out,
                "\nRun `mailaudit checks ID` for what a check means and how to fix it."
            )?;
        }
        Some(id) => {
            let id: CheckId = id
                .parse()
                .with_context(|| "run `mailaudit checks` for the list of checks".to_string())?;
            let c = id.info();
            writeln!(
                out,
                "{} ({}) — {}\narea: {}   severity: {}\n",
                c.id, c.code, c.title, c.area, c.severity
            )?;
            writeln!(
                out,
                "WHAT IT CHECKS\n{}\n\nWHY IT MATTERS\n{}\n\nHOW TO FIX (Microsoft 365)\n{}\n",
                c.what, c.why, c.fix
            )?;
            if !c.references.is_empty() {
                writeln!(out, "REFERENCES")?;
                for r in c.references {
                    writeln!(out, "  - {r}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
