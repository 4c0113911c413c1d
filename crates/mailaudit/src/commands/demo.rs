//! `mailaudit demo`: the whole product on one machine with no network.
//!
//! Starts the lab ([`mailaudit_lab::LabDns`] serving the sample fleet, [`LabSmtp`] posing as
//! its mail hosts), puts the fleet in a demo store's inventory, audits it with the relay probe
//! against the lab and records every result as `audit` does ([`tracking::record`]), stores
//! synthetic DMARC aggregate reports and one SMTP TLS report, prints a summary and serves the
//! portal through `serve`'s own code path ([`schedule::serve_with`]) until Ctrl-C or SIGTERM.
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
use mailaudit_lab::{LabDns, LabSmtp, SAMPLE_GATEWAY_TENANTS, sample_fleet, sample_fleet_smtp};
use mailaudit_net::live::LiveOptions;
use mailaudit_net::smtp::TlsRoots;
use mailaudit_net::{BulkOptions, Resolver, ResolverConfig, audit_stream};
use mailaudit_store::{Ingested, Location, NewDomain, NewReport, OpenMode, RunStatus, Store};

use super::relay::relay_options;
use super::{dates, schedule, tracking};
use crate::cli::{Cli, Command, DemoArgs, DnsOpt, ScheduleRunArgs, ServeArgs, SmtpArgs, StoreOpt};

/// The demo's customers: name, contacts, notes.
const CUSTOMERS: &[(&str, &str, &str)] = &[
    (
        "Contoso Legal Group",
        "it@contoso-legal.example",
        "Sample customer of the built-in demo",
    ),
    (
        "Fabrikam Health Partners",
        "admin@fabrikam-dental.example",
        "Sample customer of the built-in demo",
    ),
    (
        "Woodgrove Industries",
        "it@woodgrove-accounting.example",
        "Sample customer of the built-in demo",
    ),
    (
        "Coho Hospitality",
        "ops@coho-winery.example",
        "Sample customer of the built-in demo",
    ),
];

/// The sample fleet's inventory: domain, customer, Microsoft 365 tenant (from its DKIM
/// CNAMEs), parked.
const INVENTORY: &[(&str, &str, Option<&str>, bool)] = &[
    (
        "contoso-legal.example",
        "Contoso Legal Group",
        Some("contosolegal"),
        false,
    ),
    (
        "northwind-logistics.example",
        "Contoso Legal Group",
        Some("northwindlogistics"),
        false,
    ),
    (
        "tailspin-realty.example",
        "Contoso Legal Group",
        Some("tailspinrealty"),
        false,
    ),
    (
        "trey-research.example",
        "Contoso Legal Group",
        Some("treyresearch"),
        false,
    ),
    (
        "fabrikam-dental.example",
        "Fabrikam Health Partners",
        Some("fabrikamdental"),
        false,
    ),
    (
        "adatum-clinic.example",
        "Fabrikam Health Partners",
        Some("adatumclinic"),
        false,
    ),
    (
        "proseware-insurance.example",
        "Fabrikam Health Partners",
        Some("prosewareinsurance"),
        false,
    ),
    (
        "lucerne-publishing.example",
        "Fabrikam Health Partners",
        Some("lucernepublishing"),
        false,
    ),
    (
        "woodgrove-accounting.example",
        "Woodgrove Industries",
        Some("woodgroveaccounting"),
        false,
    ),
    (
        "litware-engineering.example",
        "Woodgrove Industries",
        Some("litwareeng"),
        false,
    ),
    (
        "relecloud-manufacturing.example",
        "Woodgrove Industries",
        Some("relecloudmfg"),
        false,
    ),
    (
        "alpine-ski-house.example",
        "Woodgrove Industries",
        Some("alpineskihouse"),
        false,
    ),
    (
        "coho-winery.example",
        "Coho Hospitality",
        Some("cohowinery"),
        false,
    ),
    (
        "graphic-design-institute.example",
        "Coho Hospitality",
        Some("graphicdesigninst"),
        false,
    ),
    (
        "blue-yonder-airlines.example",
        "Coho Hospitality",
        None,
        true,
    ),
];

/// The domain whose reports show it ready for the next DMARC phase (p=none → quarantine).
const READY_DOMAIN: &str = "tailspin-realty.example";
/// The domain whose reports show a forgotten Mailchimp sender failing alignment (p=quarantine).
const MAILCHIMP_DOMAIN: &str = "adatum-clinic.example";
/// The domain of the SMTP TLS report (MTA-STS and TLS-RPT published).
const TLS_DOMAIN: &str = "contoso-legal.example";
/// Days of synthetic aggregate reports, ending yesterday.
const REPORT_DAYS: i64 = 42;
const DAY: i64 = 86_400;

/// `mailaudit demo`.
pub(crate) async fn demo(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    // Refuse a bad --listen before any work.
    let listen = if args.no_serve {
        None
    } else {
        Some(mailaudit_portal::check_listen(&args.listen, false)?)
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
                color: cli.color,
                db: cli.db.clone(),
                command: Command::Demo(args.clone()),
            };
            let serve = ServeArgs {
                listen: args.listen.clone(),
                public: false,
                tick: 60,
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
    for (name, contacts, notes) in CUSTOMERS {
        if !existing.contains(*name) {
            store
                .add_customer(name, contacts, notes)
                .await
                .with_context(|| format!("adding the sample customer {name}"))?;
        }
    }
    for (name, customer, tenant, parked) in INVENTORY {
        let m365_endpoint = SAMPLE_GATEWAY_TENANTS
            .iter()
            .find(|(d, _)| d == name)
            .map(|(_, host)| host.to_string());
        store
            .upsert_domain(&NewDomain {
                name: name.to_string(),
                customer: Some(customer.to_string()),
                parked: *parked,
                tenant: tenant.map(str::to_string),
                m365_endpoint,
                ..NewDomain::default()
            })
            .await
            .with_context(|| format!("adding the sample domain {name}"))?;
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

/// Stores the synthetic reports ending yesterday; returns how many were new. Their content
/// depends only on the day they cover, so a re-run the same day stores nothing new.
async fn store_reports(store: &dyn Store, now: i64) -> Result<usize> {
    let today = now.div_euclid(DAY) * DAY;
    let mut new = 0;
    let mut docs: Vec<NewReport> = Vec::new();
    for back in 1..=REPORT_DAYS {
        let begin = today - back * DAY;
        let day = begin / DAY;
        docs.push(aggregate(READY_DOMAIN, "none", begin, &ready_records(day))?);
        docs.push(aggregate(
            MAILCHIMP_DOMAIN,
            "quarantine",
            begin,
            &mailchimp_records(day),
        )?);
    }
    docs.push(tls_report(today - DAY)?);
    for d in &docs {
        if let Ingested::New(_) = store
            .ingest_report(d, now)
            .await
            .with_context(|| format!("storing the sample report {}", d.report_id))?
        {
            new += 1;
        }
    }
    Ok(new)
}

/// One record of a synthetic aggregate report.
struct Rec {
    ip: String,
    count: u64,
    disposition: &'static str,
    /// DKIM signatures: (d=, result).
    dkim: Vec<(String, &'static str)>,
    /// SPF: (domain checked, result).
    spf: (String, &'static str),
    header_from: &'static str,
}

impl Rec {
    /// DMARC's aligned results (relaxed alignment: the same organizational domain).
    fn aligned(&self) -> (bool, bool) {
        let org = |d: &str| d.ends_with(self.header_from);
        (
            self.dkim.iter().any(|(d, r)| *r == "pass" && org(d)),
            self.spf.1 == "pass" && org(&self.spf.0),
        )
    }
}

/// A small deterministic spread, so that the days differ.
fn spread(day: i64, salt: i64, range: u64) -> u64 {
    (day.wrapping_mul(2_654_435_761).wrapping_add(salt * 40_503)).unsigned_abs() % range.max(1)
}

/// tailspin-realty.example (p=none): its Microsoft 365 mail passes SPF aligned (DKIM signing
/// is not enabled, so Microsoft signs with the tenant's onmicrosoft.com domain), and a few
/// spoofed messages fail: ready for p=quarantine.
fn ready_records(day: i64) -> Vec<Rec> {
    let d = READY_DOMAIN;
    let mut v = vec![Rec {
        ip: format!("40.107.22.{}", 10 + spread(day, 1, 4)),
        count: 70 + spread(day, 2, 60),
        disposition: "none",
        dkim: vec![("tailspinrealty.onmicrosoft.com".into(), "pass")],
        spf: (d.into(), "pass"),
        header_from: d,
    }];
    if day % 4 == 0 {
        v.push(Rec {
            ip: format!("203.0.113.{}", 61 + spread(day, 3, 2)),
            count: 1 + spread(day, 4, 3),
            disposition: "none",
            dkim: Vec::new(),
            spf: (d.into(), "fail"),
            header_from: d,
        });
    }
    v
}

/// adatum-clinic.example (p=quarantine): Microsoft 365 mail passes with aligned DKIM and SPF,
/// but a Mailchimp newsletter (twice a week) signs with mcsv.net and bounces to rsgsv.net:
/// a forgotten service failing alignment, which blocks p=reject.
fn mailchimp_records(day: i64) -> Vec<Rec> {
    let d = MAILCHIMP_DOMAIN;
    let mut v = vec![Rec {
        ip: format!("40.107.73.{}", 20 + spread(day, 5, 2)),
        count: 90 + spread(day, 6, 50),
        disposition: "none",
        dkim: vec![(d.into(), "pass")],
        spf: (d.into(), "pass"),
        header_from: d,
    }];
    if day.rem_euclid(7) == 1 || day.rem_euclid(7) == 4 {
        let n = spread(day, 7, 3);
        v.push(Rec {
            ip: format!("198.51.100.{}", 40 + n),
            count: 300 + spread(day, 8, 120),
            disposition: "quarantine",
            dkim: vec![("mcsv.net".into(), "pass")],
            spf: (format!("mail{}.atl11.rsgsv.net", 40 + n), "pass"),
            header_from: d,
        });
    }
    v
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A DMARC aggregate report (RFC 7489 appendix C) for `domain` at `p=policy` covering the day
/// from `begin`, read back through the core's parser and stored as `reports ingest` stores it.
fn aggregate(domain: &str, policy: &str, begin: i64, recs: &[Rec]) -> Result<NewReport> {
    let reporter = if (begin / DAY) % 3 == 0 {
        ("Enterprise Outlook", "dmarcreport@microsoft.com")
    } else {
        ("google.com", "noreply-dmarc-support@google.com")
    };
    let report_id = format!("demo-{domain}-{}", begin / DAY);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n  \
         <report_metadata>\n    <org_name>{}</org_name>\n    <email>{}</email>\n    \
         <report_id>{report_id}</report_id>\n    <date_range><begin>{begin}</begin><end>{}</end></date_range>\n  \
         </report_metadata>\n  <policy_published>\n    <domain>{domain}</domain>\n    \
         <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>{policy}</p>\n    <sp>{policy}</sp>\n    \
         <pct>100</pct>\n  </policy_published>\n",
        xml_escape(reporter.0),
        reporter.1,
        begin + DAY - 1
    );
    for r in recs {
        let (dkim_ok, spf_ok) = r.aligned();
        let word = |b: bool| if b { "pass" } else { "fail" };
        xml.push_str(&format!(
            "  <record>\n    <row>\n      <source_ip>{}</source_ip>\n      <count>{}</count>\n      \
             <policy_evaluated><disposition>{}</disposition><dkim>{}</dkim><spf>{}</spf></policy_evaluated>\n    \
             </row>\n    <identifiers><header_from>{}</header_from><envelope_from>{}</envelope_from></identifiers>\n    \
             <auth_results>\n",
            r.ip,
            r.count,
            r.disposition,
            word(dkim_ok),
            word(spf_ok),
            r.header_from,
            r.spf.0
        ));
        for (d, result) in &r.dkim {
            xml.push_str(&format!(
                "      <dkim><domain>{d}</domain><selector>selector1</selector><result>{result}</result></dkim>\n"
            ));
        }
        xml.push_str(&format!(
            "      <spf><domain>{}</domain><result>{}</result></spf>\n    </auth_results>\n  </record>\n",
            r.spf.0, r.spf.1
        ));
    }
    xml.push_str("</feedback>\n");
    super::reports::stored_form(
        &format!("{report_id}.xml"),
        &format!("mailaudit demo: {report_id}.xml"),
        xml.into_bytes(),
        begin + DAY,
    )
    .map_err(|e| anyhow::anyhow!("the sample report does not read back: {e}"))
}

/// An SMTP TLS report (RFC 8460) for the day from `begin`: the domain's MTA-STS policy with a
/// few sessions failing to fetch it.
fn tls_report(begin: i64) -> Result<NewReport> {
    let rfc3339 = |t: i64| format!("{}:00Z", dates::format(t).replace(' ', "T"));
    let report_id = format!("demo-tls-{TLS_DOMAIN}-{}", begin / DAY);
    let mx = "contosolegal-example.o-v1.mx.microsoft";
    let json = serde_json::json!({
        "organization-name": "Google Inc.",
        "date-range": {
            "start-datetime": rfc3339(begin),
            "end-datetime": format!("{}:59Z", dates::format(begin + DAY - 1).replace(' ', "T")),
        },
        "contact-info": "smtp-tls-reporting@google.com",
        "report-id": report_id,
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: enforce", format!("mx: {mx}"), "max_age: 604800"],
                "policy-domain": TLS_DOMAIN,
                "mx-host": [mx],
            },
            "summary": {
                "total-successful-session-count": 1834 + spread(begin / DAY, 9, 200),
                "total-failure-session-count": 6,
            },
            "failure-details": [{
                "result-type": "sts-policy-fetch-error",
                "sending-mta-ip": "2001:db8:4860::25",
                "receiving-mx-hostname": mx,
                "failed-session-count": 6,
            }],
        }],
    });
    super::reports::stored_form(
        &format!("{report_id}.json"),
        &format!("mailaudit demo: {report_id}.json"),
        serde_json::to_vec_pretty(&json)?,
        begin + DAY,
    )
    .map_err(|e| anyhow::anyhow!("the sample report does not read back: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_is_the_sample_fleet() {
        let (_, fleet) = sample_fleet();
        let mut listed: Vec<&str> = INVENTORY.iter().map(|(d, ..)| *d).collect();
        let mut fleet: Vec<&str> = fleet.iter().map(String::as_str).collect();
        listed.sort_unstable();
        fleet.sort_unstable();
        assert_eq!(listed, fleet);
        for (_, customer, ..) in INVENTORY {
            assert!(CUSTOMERS.iter().any(|(c, ..)| c == customer), "{customer}");
        }
        assert_eq!(
            INVENTORY.iter().filter(|(.., parked)| *parked).count(),
            1,
            "one parked domain"
        );
    }

    #[test]
    fn synthetic_reports_parse_and_align_as_intended() {
        let begin = 20_000 * DAY;
        let r = aggregate(READY_DOMAIN, "none", begin, &ready_records(20_000)).unwrap();
        assert_eq!(r.policy_domain, READY_DOMAIN);
        assert_eq!(r.rows[0].spf_aligned, "pass");
        assert_eq!(r.rows[0].dkim_aligned, "fail");
        assert_eq!(r.problems, serde_json::json!([]), "{:?}", r.problems);
        // A Mailchimp day (twice a week).
        let day = (20_000..20_007)
            .find(|d: &i64| d.rem_euclid(7) == 1)
            .unwrap();
        let r = aggregate(
            MAILCHIMP_DOMAIN,
            "quarantine",
            day * DAY,
            &mailchimp_records(day),
        )
        .unwrap();
        let mc = &r.rows[1];
        assert_eq!(
            (mc.dkim_aligned.as_str(), mc.spf_aligned.as_str()),
            ("fail", "fail")
        );
        assert_eq!(mc.dkim_domains, "mcsv.net");
        let t = tls_report(begin).unwrap();
        assert_eq!(t.kind, "smtp_tls");
        assert_eq!(t.policy_domain, TLS_DOMAIN);
        assert_eq!(t.problems, serde_json::json!([]), "{:?}", t.problems);
    }
}
