//! `mailaudit schedule` and `mailaudit serve`: recurring re-audits and regression alerts.
//!
//! Schedules live in the store. `schedule run` (for cron) claims the due ones atomically, so a
//! cron job and a running `serve` never audit the same schedule twice; it audits their domains,
//! records every result (regressions are queued in the store's alert outbox), then delivers
//! the due alerts with exponential backoff kept in the outbox across runs.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mailaudit_app::alerts;
use mailaudit_core::audit::{AuditOptions, DomainReport};
use mailaudit_net::live::LiveOptions;
use mailaudit_net::notify::{AlertTarget, Backoff, MailTarget, NotifyOptions, WebhookTarget};
use mailaudit_net::smtp::TlsRoots;
use mailaudit_net::{BulkOptions, Resolver, audit_stream};
use mailaudit_store::{RunStatus, Schedule, Scope, Store};

use super::dates;
use super::relay::relay_options;
use super::resolver_config;
use super::tracking::{self, now};
use crate::cli::{Cli, ScheduleCommand, ScheduleRunArgs, ServeArgs, SmtpArgs};

fn scope(fleet: bool, customer: &Option<String>) -> Result<Scope> {
    match (fleet, customer) {
        (_, Some(c)) => Ok(Scope::Customer(c.clone())),
        (true, None) => Ok(Scope::Fleet),
        (false, None) => bail!("give --fleet or --customer NAME"),
    }
}

fn scope_text(s: &Scope) -> String {
    match s {
        Scope::Fleet => "the whole fleet".to_string(),
        Scope::Customer(c) => format!("customer {c}"),
    }
}

fn interval_text(secs: i64) -> String {
    match secs {
        s if s % 604_800 == 0 => format!("{}w", s / 604_800),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub(crate) async fn schedule_cmd(
    cli: &Cli,
    store: &dyn Store,
    cmd: &ScheduleCommand,
) -> Result<ExitCode> {
    let mut out = crate::output::text_stdout();
    match cmd {
        ScheduleCommand::Set {
            fleet,
            customer,
            every,
        } => {
            let scope = scope(*fleet, customer)?;
            if let Scope::Customer(c) = &scope {
                store.customer(c).await?;
            }
            store
                .set_schedule(&Schedule {
                    scope: scope.clone(),
                    interval_secs: *every,
                    next_run_at: now(),
                    last_run_at: None,
                    paused: false,
                })
                .await?;
            writeln!(
                out,
                "{} is re-audited every {} (first run: the next `schedule run` or `serve` tick)",
                scope_text(&scope),
                interval_text(*every)
            )?;
        }
        ScheduleCommand::List => {
            writeln!(
                out,
                "{:<32} {:>8}  {:<17} LAST RUN",
                "SCOPE", "EVERY", "NEXT RUN (UTC)"
            )?;
            for s in store.schedules().await? {
                let last = s.last_run_at.map_or("never".to_string(), dates::format);
                let next = if s.paused {
                    "paused".to_string()
                } else {
                    dates::format(s.next_run_at)
                };
                writeln!(
                    out,
                    "{:<32} {:>8}  {:<17} {last}",
                    scope_text(&s.scope),
                    interval_text(s.interval_secs),
                    next
                )?;
            }
        }
        ScheduleCommand::Pause(which) | ScheduleCommand::Resume(which) => {
            let scope = scope(which.fleet, &which.customer)?;
            let pause = matches!(cmd, ScheduleCommand::Pause(_));
            store.pause_schedule(&scope, pause).await?;
            let word = if pause { "paused" } else { "resumed" };
            writeln!(out, "{word} the schedule of {}", scope_text(&scope))?;
        }
        ScheduleCommand::Remove(which) => {
            let scope = scope(which.fleet, &which.customer)?;
            store.remove_schedule(&scope).await?;
            writeln!(out, "removed the schedule of {}", scope_text(&scope))?;
        }
        ScheduleCommand::Run(args) => {
            drop(out);
            abort_stale(store).await?;
            let ran = run_due(cli, store, args).await?;
            let delivered = deliver_alerts(cli, store, args).await?;
            writeln!(
                crate::output::text_stdout(),
                "{ran} schedules run; {delivered} alerts delivered"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs every due schedule once; returns how many ran. When one is due, the resolver is
/// checked first: one that does not answer fails here, before the schedules are claimed, so
/// they stay due and no run of failed look-ups is recorded.
pub(crate) async fn run_due(cli: &Cli, store: &dyn Store, args: &ScheduleRunArgs) -> Result<usize> {
    let t = now();
    if store
        .schedules()
        .await?
        .iter()
        .any(|s| !s.paused && s.next_run_at <= t)
    {
        super::dns_check::check_resolvers(&resolver_config(cli, args.timeout, 1)?).await?;
    }
    let due = store.claim_due_schedules(now()).await?;
    for s in &due {
        let domains = match &s.scope {
            Scope::Fleet => store.domains(None).await?,
            Scope::Customer(c) => store.domains(Some(c)).await?,
        };
        let mut opts = AuditOptions::default();
        opts.parked
            .extend(domains.iter().filter(|d| d.parked).map(|d| d.name.clone()));
        let mut live = LiveOptions::default();
        if args.relay_test {
            let smtp = SmtpArgs {
                smtp_port: 25,
                helo: None,
                from: None,
                to: None,
                send_test_message: false,
                operator: None,
                ca_file: args.alert_ca_file.clone(),
                smtp_timeout: 30.0,
            };
            live.relay = Some(relay_options(&smtp, None, None)?);
        }
        let resolver = Resolver::new(&resolver_config(cli, args.timeout, 1)?)?;
        let run = store.begin_run("schedule", now()).await?;
        let names: Vec<String> = domains.iter().map(|d| d.name.clone()).collect();
        let bulk = BulkOptions {
            audit: Arc::new(opts),
            live: Arc::new(live),
            ..BulkOptions::default()
        };
        let mut rx = audit_stream(resolver, names, bulk);
        let mut failed = false;
        let mut pending = tracking::Pending::default();
        loop {
            let end = match pending.next(&mut rx).await {
                tracking::Next::Report(r) => {
                    if !pending.push(*r) {
                        continue;
                    }
                    false
                }
                tracking::Next::Due => false,
                tracking::Next::End => true,
            };
            failed |= !record_scheduled(store, run, &pending.take()).await;
            if end {
                break;
            }
        }
        let status = if failed {
            RunStatus::Aborted
        } else {
            RunStatus::Complete
        };
        store.finish_run(run, status, now()).await?;
    }
    if let Some(keep) = args.keep
        && !due.is_empty()
    {
        let pruned = store
            .prune_results(now().saturating_sub(keep))
            .await
            .context("applying --keep")?;
        if pruned.results > 0 {
            eprintln!(
                "mailaudit: --keep: {} older audit(s) kept as summaries, {} stored report(s) \
                 deleted",
                pruned.results, pruned.bodies
            );
        }
    }
    Ok(due.len())
}

/// Records a batch of a scheduled run with alerts; whether every domain of it was recorded
/// (each failure is told).
async fn record_scheduled(store: &dyn Store, run: i64, batch: &[DomainReport]) -> bool {
    if batch.is_empty() {
        return true;
    }
    match tracking::record_batch(store, run, batch, true, None).await {
        Ok(outcomes) => {
            let mut all = true;
            for (domain, outcome) in outcomes {
                if let Err(e) = outcome {
                    eprintln!("mailaudit: {domain}: {:#}", anyhow::Error::from(e));
                    all = false;
                }
            }
            all
        }
        Err(e) => {
            eprintln!("mailaudit: {:#}", anyhow::Error::from(e));
            false
        }
    }
}

fn targets(args: &ScheduleRunArgs) -> Result<Vec<AlertTarget>> {
    let mut out: Vec<AlertTarget> = args
        .webhook
        .iter()
        .map(|u| {
            AlertTarget::Webhook(WebhookTarget {
                url: u.clone(),
                headers: Vec::new(),
            })
        })
        .collect();
    if !args.alert_email.is_empty() {
        let relay = args
            .smtp_relay
            .as_deref()
            .context("--alert-email needs --smtp-relay HOST[:PORT]")?;
        let from = args
            .alert_from
            .clone()
            .context("--alert-email needs --alert-from ADDR")?;
        let (host, port) = match relay.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .with_context(|| format!("invalid port in {relay:?}"))?,
            ),
            None => (relay.to_string(), 587),
        };
        out.push(AlertTarget::Mail(MailTarget {
            relay: host,
            port,
            starttls: args.smtp_starttls,
            username: args.smtp_user.clone(),
            password: std::env::var("MAILAUDIT_SMTP_PASSWORD").ok(),
            from,
            to: args.alert_email.clone(),
        }));
    }
    Ok(out)
}

/// Delivers the due alerts of the outbox to every target; returns how many were delivered.
pub(crate) async fn deliver_alerts(
    cli: &Cli,
    store: &dyn Store,
    args: &ScheduleRunArgs,
) -> Result<usize> {
    let targets = targets(args)?;
    if targets.is_empty() {
        return Ok(0);
    }
    let roots = match &args.alert_ca_file {
        Some(p) => TlsRoots::with_ca_file(p)?,
        None => TlsRoots::webpki(),
    };
    let opts = NotifyOptions::new(roots);
    let resolver = Resolver::new(&resolver_config(cli, args.timeout, 1)?)?;
    let done = alerts::deliver_due(store, &resolver, &targets, &opts, &Backoff::default()).await?;
    for u in &done.undelivered {
        eprintln!(
            "mailaudit: alert for {} not delivered (attempt {}): {}",
            u.domain, u.attempts, u.error
        );
    }
    Ok(done.delivered)
}

/// Marks runs left `running` by a process that died (started over two days ago) as aborted;
/// their recorded results stay.
async fn abort_stale(store: &dyn Store) -> Result<()> {
    let n = store.abort_stale_runs(now() - 2 * 86_400, now()).await?;
    if n > 0 {
        eprintln!(
            "mailaudit: {n} interrupted runs marked aborted (their recorded results are kept)"
        );
    }
    Ok(())
}

/// `mailaudit serve`: the web portal and the scheduler on one runtime, until Ctrl-C or SIGTERM;
/// then the portal finishes the requests in flight and the store is closed.
pub(crate) async fn serve(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    // The address is checked before the store is opened (a bad --listen touches nothing), and
    // again with the store's admins: without one, only loopback.
    mailaudit_portal::check_listen(&args.listen, true, true)?;
    let store: Arc<dyn Store> = Arc::from(super::open_store(cli).await?);
    let result = async {
        let admin = has_admin(store.as_ref()).await?;
        let addr = mailaudit_portal::check_listen(&args.listen, args.public, admin)?;
        if args.behind_https_proxy && !admin && !args.public {
            anyhow::bail!(
                "--behind-https-proxy serves the portal beyond this machine, and the store has \
                 no admin: add the first admin with `mailaudit user add --admin NAME`"
            );
        }
        serve_with(cli, &store, args, addr).await
    }
    .await;
    store.close().await;
    result
}

/// Whether the store has a portal admin (then everyone signs in, and the portal may listen on
/// any address).
async fn has_admin(store: &dyn Store) -> Result<bool> {
    Ok(store
        .users()
        .await?
        .iter()
        .any(|u| u.role == mailaudit_store::Role::Admin))
}

/// Domains audited at once by `serve`'s worker (the portal's queued audits).
const SERVE_CONCURRENCY: usize = 32;

/// The portal on `addr` over `store` and the scheduler, until Ctrl-C or SIGTERM (also what
/// `mailaudit demo` serves its store with).
pub(crate) async fn serve_with(
    cli: &Cli,
    store: &Arc<dyn Store>,
    args: &ServeArgs,
    addr: std::net::SocketAddr,
) -> Result<ExitCode> {
    // The signal handlers are in place before the address is printed: whoever reads that line
    // (a supervisor, a test) may send SIGTERM at once, and it must mean a clean stop, not the
    // default action that kills the process.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    // A certificate or key that cannot be used stops here, before anything listens.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(mailaudit_portal::tls_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    abort_stale(store.as_ref()).await?;
    let listener = mailaudit_portal::bind(addr).await?;
    let local = listener.local_addr().context("the portal's address")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stopped_portal = stopped.clone();
    let users = store.users().await?.len();
    let sso = super::sso::from_args(
        &args.oidc,
        Resolver::new(&resolver_config(cli, args.run.timeout, 1)?)?,
        &format!("{scheme}://{local}"),
    )?;
    let mut portal = mailaudit_portal::Portal::new(
        store.clone(),
        mailaudit_portal::PortalOptions {
            // With accounts, a portal listening beyond loopback answers any host name.
            // (behind a proxy, the Host is the proxy's public name).
            public: args.public || !local.ip().is_loopback() || args.behind_https_proxy,
            secure_cookies: tls.is_some() || args.behind_https_proxy,
            behind_proxy: args.behind_https_proxy,
            session_idle_secs: args.session_idle,
            session_max_secs: args.session_max,
        },
    );
    let sso_label = sso
        .as_ref()
        .map(|s| format!("; single sign-on: {}", s.label()));
    if let Some(sso) = sso {
        portal = portal.with_sso(sso);
    }
    let mut portal = tokio::spawn(mailaudit_portal::serve_portal(
        listener,
        portal,
        mailaudit_portal::Connections {
            tls,
            max: args.max_connections,
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        },
        async move {
            let _ = stopped_portal.wait_for(|s| *s).await;
        },
    ));
    eprintln!(
        "mailaudit: portal on {scheme}://{local}/ ({}{}); scheduler every {}s; Ctrl-C to stop",
        match (users, args.public) {
            (0, true) => "PUBLIC, no authentication".to_string(),
            (0, false) => "loopback only, no authentication".to_string(),
            (n, _) => format!("sign-in required, {n} users"),
        },
        sso_label.unwrap_or_default(),
        args.tick
    );
    // The audits queued in the store (the portal's "Audit now", `audit --distributed`),
    // audited here as a worker would.
    let auditor = super::distributed::serve_auditor(
        Resolver::new(&resolver_config(cli, args.run.timeout, 1)?)?,
        SERVE_CONCURRENCY,
    );
    let worker_store = store.clone();
    let mut worker_stop = stopped.clone();
    let worker = tokio::spawn(async move {
        let done = super::distributed::work_loop(
            worker_store.as_ref(),
            &auditor,
            Duration::from_secs(1),
            &mut worker_stop,
            false,
        )
        .await;
        if let Err(e) = done {
            eprintln!("mailaudit: queued audits: {e:#}");
        }
    });
    drop(stopped);
    let mut tick = tokio::time::interval(Duration::from_secs(args.tick.max(1)));
    let outcome = loop {
        tokio::select! {
            _ = tick.tick() => {
                match run_due(cli, store.as_ref(), &args.run).await {
                    Ok(n) if n > 0 => eprintln!("mailaudit: {n} scheduled audits run"),
                    Ok(_) => {}
                    Err(e) => eprintln!("mailaudit: scheduler: {e:#}"),
                }
                if let Err(e) = deliver_alerts(cli, store.as_ref(), &args.run).await {
                    eprintln!("mailaudit: alerts: {e:#}");
                }
                // Sessions ended by time are deleted when next looked up; this sweeps those
                // never looked up again.
                let idle = args.session_idle;
                if let Err(e) = store.delete_expired_sessions(mailaudit_store::now(), idle).await {
                    eprintln!("mailaudit: sessions: {e}");
                }
            }
            _ = interrupt.recv() => break Ok(()),
            _ = term.recv() => break Ok(()),
            r = &mut portal => break Err(match r {
                Ok(Ok(())) => anyhow::anyhow!("the portal stopped"),
                Ok(Err(e)) => anyhow::Error::new(e),
                Err(e) => anyhow::anyhow!("the portal failed: {e}"),
            }),
        }
    };
    eprintln!("mailaudit: stopping");
    let _ = stop.send(true);
    // A chunk being audited is given back (its lease released) and audited again later.
    if tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .is_err()
    {
        eprintln!("mailaudit: queued audits: still auditing after 10 s, stopping anyway");
    }
    if outcome.is_ok() {
        match tokio::time::timeout(Duration::from_secs(10), portal).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("mailaudit: portal: {e}"),
            Ok(Err(e)) => eprintln!("mailaudit: portal: {e}"),
            Err(_) => {
                eprintln!("mailaudit: portal: requests still open after 10 s, stopping anyway")
            }
        }
    }
    outcome.map(|()| ExitCode::SUCCESS)
}
