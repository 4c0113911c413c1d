//! `mailaudit-bench portal`: how long the portal's pages take, and how much they weigh, on a
//! store of an MSP's size: `--domains` (10,000) in `--customers` (100) with a year of weekly
//! audits (`--runs`, 52).
//!
//! The store is built from the store bench's fleet: one real audit of the synthetic fleet
//! against the lab DNS server gives each domain its report ([`crate::store::audit_fleet`]),
//! the weeks before are recorded through the store's API in batches (`Store::record_batch`),
//! a week apart in the store's clock (a share of the reports changing each week), and the last
//! run is a real `mailaudit audit --db` of the fleet, so that
//! checklists, DMARC roll-outs and the findings index are what an audit leaves. Then the
//! portal's router is called in this process, as `mailaudit serve` would call it for a request
//! (no socket: the figures are the server's time, from the request to the last byte of the
//! body), each page `--requests` times after one warm-up request, and the median and 95th
//! percentile are printed with the page's size, against issue 14's budget: 100 ms and 300 KB.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mailaudit_bench::fleet::DEFAULT_SEED;
use mailaudit_store::{Location, NewDomain, OpenMode, ResultWrite, RunStatus, Store, open_with};
use serde_json::Value;
use tower_service::Service;

use crate::store::{AuditedFleet, WEEK, audit_fleet, audit_once, changes};
use crate::{mailaudit_path, runtime};

/// Issue 14's budget for every page: server time.
const BUDGET_MS: f64 = 100.0;
/// And size.
const BUDGET_KB: f64 = 300.0;
/// Results recorded per transaction while building the store.
const BATCH: usize = 256;

/// Time the portal's pages on a store of an MSP's size (a year of weekly audits of the
/// synthetic fleet, in customers): the median and 95th percentile of the server's time per
/// page and its size, against the budget of 100 ms and 300 KB.
#[derive(Debug, clap::Args)]
pub(crate) struct PortalArgs {
    /// Synthetic domains.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    domains: u64,

    /// Customers the domains are shared among (round robin).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    customers: u64,

    /// Weekly runs in the store (the last one a real audit).
    #[arg(long, value_name = "K", default_value_t = 52, value_parser = clap::value_parser!(u32).range(1..=520))]
    runs: u32,

    /// Share of the domains whose report changes each week, in percent.
    #[arg(long, value_name = "P", default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=100))]
    change_percent: u64,

    /// Requests per page (after one warm-up request).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    requests: u32,

    /// The store to build: `postgres://…` (an empty database) or `sqlite://PATH` (a file that
    /// does not exist yet). Default: a SQLite file in a temporary directory.
    #[arg(long, value_name = "URL")]
    db: Option<String>,

    /// Seed of the synthetic fleet.
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_SEED)]
    seed: u64,

    /// The mailaudit binary [default: `mailaudit` next to this binary, i.e. target/release/].
    #[arg(long, value_name = "PATH")]
    mailaudit: Option<PathBuf>,
}

/// One page's figures.
struct PageTimes {
    label: String,
    path: String,
    median_ms: f64,
    p95_ms: f64,
    kb: f64,
}

pub(crate) fn run(args: &PortalArgs) -> Result<bool> {
    let mailaudit = mailaudit_path(args.mailaudit.as_deref())?;
    let n = usize::try_from(args.domains).context("--domains is too large")?;
    let runtime = runtime(2)?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let db = match &args.db {
        Some(db) => db.clone(),
        None => format!("sqlite://{}", temp.path().join("portal.db").display()),
    };

    let AuditedFleet {
        lab,
        domains,
        list,
        reports,
    } = audit_fleet(&runtime, &mailaudit, n, args.seed, temp.path())?;
    let nameserver = lab.addr().to_string();

    let t = Instant::now();
    let store: Arc<dyn Store> = runtime
        .block_on(async {
            let location = Location::parse(Some(&db))?;
            open_with(&location, OpenMode::CreateIfMissing).await
        })
        .with_context(|| format!("cannot open the store {db}"))?
        .store
        .into();
    let customers = runtime.block_on(inventory(&*store, &domains, args.customers))?;
    runtime.block_on(history(&*store, reports, args))?;
    println!(
        "mailaudit-bench portal: {} domains in {} customers, {} weekly runs before the last \
         recorded through the store's API in {:.1}s",
        domains.len(),
        customers.len(),
        args.runs.saturating_sub(1),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    audit_once(
        &mailaudit,
        &list,
        &nameserver,
        &temp.path().join("last.json"),
        Some(&db),
    )?;
    drop(lab);
    println!(
        "the last run: `mailaudit audit --db` of the fleet in {:.1}s (checklists, roll-outs)",
        t.elapsed().as_secs_f64()
    );

    let domain = &domains[domains.len() / 2];
    let customer = &customers[customers.len() / 2];
    let search = domain.split('.').next().unwrap_or(domain);
    let search = &search[..search.len().min(6)];
    // (label, path, held to the budget): the exports are downloads of the whole fleet, timed
    // for information.
    let pages = [
        ("fleet (worst first)", "/".to_string(), true),
        (
            "fleet, page 100 by name",
            "/?sort=name&page=100".to_string(),
            true,
        ),
        ("fleet, by score", "/?sort=score&dir=desc".to_string(), true),
        ("fleet, critical", "/?severity=critical".to_string(), true),
        (
            "fleet, DMARC p=none",
            "/?dmarc=none&sort=audited".to_string(),
            true,
        ),
        (
            "fleet, SPF area, high",
            "/?area=spf&severity=high".to_string(),
            true,
        ),
        ("fleet, overdue items", "/?overdue=yes".to_string(), true),
        ("fleet, search", format!("/?q={}", encode(search)), true),
        (
            "fleet, one customer",
            format!("/?customer={}", encode(customer)),
            true,
        ),
        ("customers", "/customers".to_string(), true),
        ("checks", "/checks".to_string(), true),
        ("a check", "/checks/DMARC-MISSING".to_string(), true),
        ("a domain", format!("/domains/{domain}"), true),
        ("its guide", format!("/domains/{domain}/guide"), true),
        ("its reports", format!("/domains/{domain}/reports"), true),
        ("export: fleet CSV", "/fleet.csv".to_string(), false),
        ("export: fleet JSON", "/fleet.json".to_string(), false),
    ];
    let router = mailaudit_portal::router(store.clone(), mailaudit_portal::PortalOptions::local());
    let mut out = Vec::new();
    for (label, path, budget) in pages {
        let times = runtime.block_on(time_page(&router, label, &path, args.requests))?;
        out.push((times, budget));
    }
    runtime.block_on(store.close());

    println!();
    println!(
        "{:<22}  {:>10}  {:>10}  {:>9}  path",
        "page", "median ms", "p95 ms", "KB"
    );
    let mut ok = true;
    for (p, budget) in &out {
        let pass = !budget || (p.p95_ms <= BUDGET_MS && p.kb <= BUDGET_KB);
        ok &= pass;
        println!(
            "{:<22}  {:>10.1}  {:>10.1}  {:>9.1}  {}  {}",
            p.label,
            p.median_ms,
            p.p95_ms,
            p.kb,
            p.path,
            if pass { "" } else { "OVER BUDGET" }
        );
    }
    println!(
        "budget: every page's p95 under {BUDGET_MS:.0} ms of server time and under {BUDGET_KB:.0} KB: {}",
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}

/// `--customers` customers, the domains shared among them round robin; the customers' names.
async fn inventory(store: &dyn Store, domains: &[String], customers: u64) -> Result<Vec<String>> {
    let names: Vec<String> = (1..=customers)
        .map(|i| format!("Customer {i:03}"))
        .collect();
    for name in &names {
        store.add_customer(name, "", "").await?;
    }
    for (i, d) in domains.iter().enumerate() {
        let customer = names[i % names.len()].clone();
        store
            .add_domain(&NewDomain {
                name: d.clone(),
                customer: Some(customer),
                ..NewDomain::default()
            })
            .await
            .with_context(|| format!("adding {d}"))?;
    }
    Ok(names)
}

/// The weekly runs before the last, a week apart, ending a week ago in the store's clock.
async fn history(store: &dyn Store, mut reports: Vec<Value>, args: &PortalArgs) -> Result<()> {
    let weeks = args.runs.saturating_sub(1);
    let now = mailaudit_store::now();
    let start = now - i64::from(args.runs) * WEEK;
    let mut versions = vec![0u32; reports.len()];
    for week in 1..=weeks {
        let at = start + i64::from(week) * WEEK;
        for (i, report) in reports.iter_mut().enumerate() {
            if week > 1 && changes(i, week, args.change_percent) {
                versions[i] += 1;
                report["bench_change"] = Value::from(versions[i]);
            }
        }
        let run = store.begin_run("schedule", at).await?;
        for chunk in reports.chunks(BATCH) {
            let writes: Vec<ResultWrite> = chunk
                .iter()
                .filter_map(|r| {
                    Some(ResultWrite {
                        domain: r["domain"].as_str()?.to_string(),
                        audited_at: at,
                        score: r["score"].as_i64(),
                        report: r.clone(),
                        rollout: None,
                        checklist: None,
                        states: Vec::new(),
                        alert: None,
                    })
                })
                .collect();
            store.record_batch(run, &writes, None, at).await?;
        }
        store.finish_run(run, RunStatus::Complete, at + 600).await?;
    }
    Ok(())
}

/// `text` percent-encoded for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One page requested `requests` times (after a warm-up request) through the router.
async fn time_page(
    router: &axum::Router,
    label: &str,
    path: &str,
    requests: u32,
) -> Result<PageTimes> {
    let mut times = Vec::new();
    let mut size = 0;
    for i in 0..=requests {
        let request = Request::get(path)
            .header(header::HOST, "127.0.0.1")
            .body(Body::empty())
            .context("a request")?;
        let mut service = router.clone();
        let t = Instant::now();
        let response = service.call(request).await.context("the router")?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .context("the response body")?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if status != StatusCode::OK {
            bail!("GET {path}: {status}");
        }
        size = body.len();
        if i > 0 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(PageTimes {
        label: label.to_string(),
        path: path.to_string(),
        median_ms: at(0.5),
        p95_ms: at(0.95),
        kb: size as f64 / 1024.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_names_are_encoded_for_the_query_string() {
        assert_eq!(encode("Customer 007"), "Customer%20007");
        assert_eq!(encode("a&b=c/d"), "a%26b%3Dc%2Fd");
        assert_eq!(encode("Ünï"), "%C3%9Cn%C3%AF");
    }
}
