//! `mailaudit demo`: the whole product on one machine with no network.
//!
//! Wiring only: the sample data is the lab's. Starts the lab ([`mailaudit_lab::LabDns`] serving
//! the sample fleet, [`LabSmtp`] posing as its mail hosts), puts the fleet's customers and
//! domains ([`SAMPLE_CUSTOMERS`], [`SAMPLE_INVENTORY`]) in a demo store's inventory, audits it
//! with the relay probe against the lab and records every result as `audit` does
//! ([`tracking::record`]), reads the lab's synthetic DMARC aggregate reports and SMTP TLS report
//! ([`sample_reports`]) through the parser and stores them as `reports ingest` does, prints a
//! summary and serves the portal through `serve`'s own code path ([`schedule::serve_with`])
//! until Ctrl-C or SIGTERM.
//!
//! Nothing leaves the machine: the resolver asks only the lab DNS server, every address in the
//! sample zone is a loopback address, the MTA-STS policy fetch is off (its host would be a
//! loopback address with nothing on port 443), and the portal binds loopback only.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use mailaudit_core::audit::{AuditOptions, DomainReport};
use mailaudit_core::checks::CheckId;
use mailaudit_lab::demo::{MAILCHIMP_DOMAIN, READY_DOMAIN, REPORT_DAYS, TLS_DOMAIN};
use mailaudit_lab::{
    LabDns, LabSmtp, SAMPLE_CUSTOMERS, SAMPLE_GATEWAY_TENANTS, SAMPLE_INVENTORY, SampleReport,
    sample_fleet, sample_fleet_smtp, sample_reports,
};
use mailaudit_net::live::LiveOptions;
use mailaudit_net::smtp::TlsRoots;
use mailaudit_net::{BulkOptions, Resolver, ResolverConfig, audit_stream};
use mailaudit_store::{Ingested, Location, NewDomain, NewReport, OpenMode, RunStatus, Store};

use super::relay::relay_options;
use super::{schedule, tracking};
use crate::cli::{Cli, Command, DemoArgs, DnsOpt, ScheduleRunArgs, ServeArgs, SmtpArgs, StoreOpt};

/// `mailaudit demo`.
pub(crate) async fn demo(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    // Refuse a bad --listen before any work.
    let listen = if args.no_serve {
        None
    } else {
        Some(mailaudit_portal::check_listen(&args.listen, false, false)?)
    };
    let (location, shown, mode) = demo_store(cli)?;
    let store: Arc<dyn Store> = Arc::from(
        super::open_store_at(&location, mode, &shown, "--db")
            .await
            .context("the demo store")?,
    );
    let result = run(cli, args, &store, &shown, listen).await;
    store.close().await;
    result
}

/// The demo's store: `--db` when given on the command line (a new SQLite file is created, but
/// not its directory), else `demo.db` next to the default store (created with its directories).
/// `MAILAUDIT_DB` names the user's real store, so it only places the default.
fn demo_store(cli: &Cli) -> Result<(Location, String, OpenMode)> {
    let from_env = std::env::var("MAILAUDIT_DB").ok();
    match &cli.db {
        Some(url) if from_env.as_deref() != Some(url.as_str()) => Ok((
            Location::parse(Some(url))?,
            mailaudit_store::redact_url(url),
            OpenMode::CreateIfMissing,
        )),
        _ => {
            let path = mailaudit_store::default_sqlite_path().with_file_name("demo.db");
            let shown = format!("sqlite://{}", path.display());
            Ok((
                Location::SqliteFile(path),
                shown,
                OpenMode::CreateWithParents,
            ))
        }
    }
}

async fn run(
    cli: &Cli,
    args: &DemoArgs,
    store: &Arc<dyn Store>,
    shown: &str,
    listen: Option<std::net::SocketAddr>,
) -> Result<ExitCode> {
    let (zone, domains) = sample_fleet();
    let dns = LabDns::start(zone)
        .await
        .context("cannot start the lab DNS server")?;
    let smtp = LabSmtp::start(sample_fleet_smtp())
        .await
        .context("cannot start the lab SMTP endpoints")?;

    let outcome = async {
        inventory(store.as_ref()).await?;
        let audited = audit(store.as_ref(), &dns, &smtp, &domains).await?;
        let stored = store_reports(store.as_ref(), tracking::now()).await?;
        let lab = format!(
            "DNS on {}, SMTP endpoints on port {} of {} loopback addresses ({} …)",
            dns.addr(),
            smtp.port(),
            smtp.addrs().len(),
            smtp.addrs()
                .first()
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        );
        print_summary(shown, &audited, stored, &lab)?;
        if !args.no_accounts {
            print_logins(&demo_accounts(store.as_ref()).await?)?;
        }
        Ok::<bool, anyhow::Error>(audited.errored)
    }
    .await;
    let errored = match outcome {
        Ok(e) => e,
        Err(e) => {
            smtp.shutdown().await;
            dns.shutdown().await;
            return Err(e);
        }
    };

    let code = match listen {
        None => Ok(ExitCode::SUCCESS),
        Some(addr) => {
            // `serve`'s own loop; its scheduler resolves through the lab only.
            let lab_cli = Cli {
                nameserver: vec![dns.addr().to_string()],
                // The lab DNS is not signed: the scheduler does not validate DNSSEC.
                no_dnssec: true,
                trust_anchor: None,
                color: cli.color,
                db: cli.db.clone(),
                command: Command::Demo(args.clone()),
            };
            let serve = ServeArgs {
                listen: args.listen.clone(),
                public: false,
                tls_cert: None,
                tls_key: None,
                behind_https_proxy: false,
                max_connections: 512,
                header_timeout: 30,
                session_idle: mailaudit_portal::PortalOptions::IDLE,
                session_max: mailaudit_portal::PortalOptions::MAX,
                tick: 60,
                oidc: crate::cli::OidcArgs::default(),
                store: StoreOpt::default(),
                run: ScheduleRunArgs {
                    dns: DnsOpt::default(),
                    webhook: Vec::new(),
                    alert_email: Vec::new(),
                    smtp_relay: None,
                    smtp_starttls: false,
                    smtp_user: None,
                    alert_from: None,
                    alert_ca_file: None,
                    relay_test: false,
                    timeout: 3.0,
                    keep: None,
                },
            };
            schedule::serve_with(&lab_cli, store, &serve, addr).await
        }
    };
    smtp.shutdown().await;
    dns.shutdown().await;
    match code {
        Ok(_) if errored => Ok(ExitCode::from(2)),
        other => other,
    }
}

/// Puts the customers and the fleet in the inventory; existing entries are kept (customers)
/// or replaced by the same data (domains), so a re-run changes nothing.
async fn inventory(store: &dyn Store) -> Result<()> {
    let existing: HashSet<String> = store
        .customers()
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    for c in SAMPLE_CUSTOMERS {
        if !existing.contains(c.name) {
            store
                .add_customer(c.name, c.contacts, c.notes)
                .await
                .with_context(|| format!("adding the sample customer {}", c.name))?;
        }
    }
    for d in SAMPLE_INVENTORY {
        let m365_endpoint = SAMPLE_GATEWAY_TENANTS
            .iter()
            .find(|(name, _)| *name == d.name)
            .map(|(_, host)| host.to_string());
        store
            .upsert_domain(&NewDomain {
                name: d.name.to_string(),
                customer: Some(d.customer.to_string()),
                parked: d.parked,
                tenant: d.tenant.map(str::to_string),
                m365_endpoint,
                ..NewDomain::default()
            })
            .await
            .with_context(|| format!("adding the sample domain {}", d.name))?;
    }
    Ok(())
}

/// What the audit found, for the summary.
#[derive(Debug, Default)]
struct Audited {
    run: i64,
    domains: usize,
    /// Relay verdict → domains.
    verdicts: HashMap<String, Vec<String>>,
    no_dmarc: Vec<String>,
    errored: bool,
}

/// Audits the fleet over the lab with the relay probe and records every result.
async fn audit(
    store: &dyn Store,
    dns: &LabDns,
    smtp: &LabSmtp,
    domains: &[String],
) -> Result<Audited> {
    let entries = store.domains(None).await?;
    let mut opts = AuditOptions::default();
    let entries: Vec<_> = entries
        .into_iter()
        .filter(|e| domains.contains(&e.name))
        .collect();
    let overrides = super::audit::inventory_options(&entries, &mut opts);
    let smtp_args = SmtpArgs {
        smtp_port: smtp.port(),
        helo: None,
        from: None,
        to: None,
        send_test_message: false,
        operator: None,
        ca_file: None,
        smtp_timeout: 10.0,
    };
    let mut relay = relay_options(&smtp_args, None, None)?;
    relay.smtp.roots =
        TlsRoots::with_ca_pem(smtp.ca_pem().as_bytes()).context("trusting the lab CA")?;
    relay.per_domain = overrides;
    // No MTA-STS policy fetch: the lab serves no HTTPS.
    let live = LiveOptions {
        relay: Some(relay),
        https: None,
    };
    let resolver = Resolver::new(&ResolverConfig {
        nameservers: vec![dns.addr()],
        timeout: Duration::from_secs(3),
        attempts: 2,
        // The lab DNS is not signed: no DNSSEC validation.
        dnssec: mailaudit_net::Dnssec::Off,
        ..ResolverConfig::default()
    })?;
    let bulk = BulkOptions {
        concurrency: 16,
        audit: Arc::new(opts),
        live: Arc::new(live),
        ..BulkOptions::default()
    };
    let run = store.begin_run("cli", tracking::now()).await?;
    let mut out = Audited {
        run,
        ..Audited::default()
    };
    let mut rx = audit_stream(resolver, domains.to_vec(), bulk);
    while let Some(report) = rx.recv().await {
        if let Some(err) = &report.error {
            eprintln!("mailaudit: {}: {err}", report.domain);
            out.errored = true;
        }
        if let Err(e) = tracking::record(store, run, &report, false).await {
            eprintln!("mailaudit: {}: not recorded: {e:#}", report.domain);
            out.errored = true;
        }
        tally(&mut out, &report);
    }
    store
        .finish_run(run, RunStatus::Complete, tracking::now())
        .await?;
    Ok(out)
}

fn tally(out: &mut Audited, report: &DomainReport) {
    out.domains += 1;
    out.verdicts
        .entry(report.relay.verdict.clone())
        .or_default()
        .push(report.domain.clone());
    if report
        .findings
        .iter()
        .any(|f| f.id == CheckId::DmarcMissing)
    {
        out.no_dmarc.push(report.domain.clone());
    }
}

/// The demo's portal accounts: an admin, a technician and a viewer of the first sample customer, each
/// with a new random password (a demo store run again gets new passwords for them); returns
/// `(name, password, role as the user list says it)`.
async fn demo_accounts(store: &dyn Store) -> Result<Vec<(String, String, String)>> {
    use mailaudit_app::accounts::{self, Actor, describe_role};
    use mailaudit_store::Role;
    let customer = SAMPLE_CUSTOMERS[0].name.to_string();
    let mut out = Vec::new();
    for (name, role, customers) in [
        ("admin", Role::Admin, vec![]),
        ("technician", Role::Technician, vec![]),
        ("viewer", Role::Viewer, vec![customer]),
    ] {
        // 24 characters of base64url: 144 random bits.
        let password: String = accounts::new_token().chars().take(24).collect();
        let cli = Actor::cli();
        match store.user(name).await {
            Ok(_) => {
                accounts::set_role(store, &cli, name, role, &customers, tracking::now()).await?;
                accounts::set_password(store, &cli, name, &password, tracking::now()).await?;
            }
            Err(mailaudit_store::StoreError::NotFound { .. }) => {
                accounts::add_user(
                    store,
                    &cli,
                    name,
                    role,
                    &customers,
                    Some(&password),
                    tracking::now(),
                )
                .await?;
            }
            Err(e) => return Err(e.into()),
        }
        out.push((name.to_string(), password, describe_role(role, &customers)));
    }
    Ok(out)
}

fn print_logins(logins: &[(String, String, String)]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "  portal logins (sign in at /login):")?;
    for (name, password, role) in logins {
        writeln!(out, "    {name} / {password}  ({role})")?;
    }
    Ok(())
}

fn print_summary(shown: &str, a: &Audited, reports: usize, lab: &str) -> Result<()> {
    let count = |v: &str| a.verdicts.get(v).map_or(0, Vec::len);
    let list = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.join(", "))
        }
    };
    let open = a.verdicts.get("open").cloned().unwrap_or_default();
    let mut out = crate::output::text_stdout();
    writeln!(
        out,
        "mailaudit demo: {} sample domains audited over the lab (DNS and SMTP on loopback) into {shown}, run {}",
        a.domains, a.run
    )?;
    writeln!(out, "  open to Direct Send: {}{}", open.len(), list(&open))?;
    writeln!(
        out,
        "  Direct Send blocked: {}, inconclusive: {}, not tested: {}",
        count("blocked"),
        count("inconclusive"),
        count("not_tested")
    )?;
    writeln!(
        out,
        "  without DMARC: {}{}",
        a.no_dmarc.len(),
        list(&a.no_dmarc)
    )?;
    writeln!(
        out,
        "  reports: {REPORT_DAYS} days of DMARC aggregate reports for {READY_DOMAIN} and {MAILCHIMP_DOMAIN}, an SMTP TLS report for {TLS_DOMAIN} ({reports} new)"
    )?;
    writeln!(out, "  lab: {lab}; stopped on exit")?;
    out.flush()?;
    Ok(())
}

/// Stores the lab's synthetic reports ending yesterday ([`sample_reports`]), each read back
/// through the parser and stored as `reports ingest` stores it; returns how many were new.
/// Their content depends only on the day they cover, so a re-run the same day stores nothing
/// new.
async fn store_reports(store: &dyn Store, now: i64) -> Result<usize> {
    let mut new = 0;
    for sample in sample_reports(now) {
        let report = stored_form(&sample)?;
        if let Ingested::New(_) = store
            .ingest_report(&report, now)
            .await
            .with_context(|| format!("storing the sample report {}", report.report_id))?
        {
            new += 1;
        }
    }
    Ok(new)
}

/// A sample report as the store keeps it, parsed as `reports ingest` parses it.
fn stored_form(sample: &SampleReport) -> Result<NewReport> {
    super::reports::stored_form(
        &sample.file_name,
        &format!("mailaudit demo: {}", sample.file_name),
        sample.bytes.clone(),
        sample.received_at,
    )
    .map_err(|e| anyhow::anyhow!("the sample report does not read back: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_reports_parse_and_align_as_intended() {
        const DAY: i64 = 86_400;
        let reports: Vec<NewReport> = sample_reports(20_007 * DAY + 3_600)
            .iter()
            .map(|s| stored_form(s).unwrap())
            .collect();
        let aggregate = |domain: &str, day: i64| {
            reports
                .iter()
                .find(|r| r.report_id == format!("demo-{domain}-{day}"))
                .unwrap_or_else(|| panic!("{domain} {day}"))
        };
        let r = aggregate(READY_DOMAIN, 20_000);
        assert_eq!(r.policy_domain, READY_DOMAIN);
        assert_eq!(r.rows[0].spf_aligned, "pass");
        assert_eq!(r.rows[0].dkim_aligned, "fail");
        assert_eq!(r.problems, serde_json::json!([]), "{:?}", r.problems);
        // A Mailchimp day (twice a week).
        let day = (20_000..20_007)
            .find(|d: &i64| d.rem_euclid(7) == 1)
            .unwrap();
        let r = aggregate(MAILCHIMP_DOMAIN, day);
        let mc = &r.rows[1];
        assert_eq!(
            (mc.dkim_aligned.as_str(), mc.spf_aligned.as_str()),
            ("fail", "fail")
        );
        assert_eq!(mc.dkim_domains, "mcsv.net");
        let t = reports.last().unwrap();
        assert_eq!(t.kind, "smtp_tls");
        assert_eq!(t.policy_domain, TLS_DOMAIN);
        assert_eq!(t.report_id, format!("demo-tls-{TLS_DOMAIN}-20006"));
        assert_eq!(t.problems, serde_json::json!([]), "{:?}", t.problems);
        assert!(reports.iter().all(|r| r.problems == serde_json::json!([])));
    }
}
