//! The bulk driver ([`audit_stream`]) over the real resolver and the real DNS server: input
//! hygiene (comments, blank lines, duplicates, invalid names, IDNs), results in input order
//! whatever the audits' speed, the same reports at any concurrency, and one run-wide cache so a
//! name shared by many domains is asked once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailaudit_core::CheckId;
use mailaudit_core::audit::{AuditOptions, DomainReport};
use mailaudit_lab::{LabDns, Zone};
use mailaudit_net::{BulkOptions, Resolver, ResolverConfig, audit_stream};

use crate::resolver_for;

/// The resolver timeout where no name is meant to time out: these tests run beside others on a
/// small machine, and a slow answer must not pass for a dead name.
const PATIENT: Duration = Duration::from_secs(5);

/// A lab server for `zone` and a patient resolver.
async fn lab(zone: Zone) -> (LabDns, Resolver) {
    let server = LabDns::start(zone).await.expect("lab DNS server starts");
    let resolver = resolver_for(&server, PATIENT);
    (server, resolver)
}

/// Runs the bulk driver over `inputs` and collects every report, in the order they came out.
async fn run(
    resolver: Resolver,
    inputs: &[&str],
    concurrency: usize,
    window: usize,
) -> Vec<DomainReport> {
    let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    run_owned(resolver, inputs, concurrency, window).await
}

async fn run_owned(
    resolver: Resolver,
    inputs: Vec<String>,
    concurrency: usize,
    window: usize,
) -> Vec<DomainReport> {
    let opts = BulkOptions {
        concurrency,
        window,
        audit: Arc::new(AuditOptions::default()),
        ..BulkOptions::default()
    };
    let mut rx = audit_stream(resolver, inputs, opts);
    let mut out = Vec::new();
    while let Some(report) = rx.recv().await {
        out.push(report);
    }
    out
}

fn domains(reports: &[DomainReport]) -> Vec<&str> {
    reports.iter().map(|r| r.domain.as_str()).collect()
}

/// A small, complete domain: MX, SPF through a shared include, DMARC.
fn domain_records(d: &str) -> String {
    format!(
        "{d} MX 10 mx.shared.test\n\
         {d} TXT \"v=spf1 include:_spf.shared.test -all\"\n\
         _dmarc.{d} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{d}\"\n"
    )
}

const SHARED: &str = "mx.shared.test A 192.0.2.25\n\
                      _spf.shared.test TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n";

fn zone_of(domains: &[&str], extra: &str) -> Zone {
    let mut text = String::from(SHARED);
    for d in domains {
        text.push_str(&domain_records(d));
    }
    text.push_str(extra);
    Zone::parse(&text).expect("zone parses")
}

#[tokio::test]
async fn results_come_out_in_input_order_even_when_earlier_domains_are_slower() {
    // slow-*.test never answer (every type at the apex, and _dmarc): each of their audits waits
    // for several timeouts while the fast domains behind them finish.
    let fast: Vec<String> = (0..24).map(|i| format!("fast{i:02}.test")).collect();
    let fast_refs: Vec<&str> = fast.iter().map(String::as_str).collect();
    let slow = "slow-a.test TIMEOUT\n_dmarc.slow-a.test TIMEOUT\n\
                slow-b.test TIMEOUT\n_dmarc.slow-b.test TIMEOUT\n";
    let server = LabDns::start(zone_of(&fast_refs, slow))
        .await
        .expect("lab starts");

    let mut inputs = vec!["slow-a.test"];
    inputs.extend(&fast_refs[..3]);
    inputs.push("slow-b.test");
    inputs.extend(&fast_refs[3..]);

    for (concurrency, window) in [(1, 1), (2, 2), (8, 16), (64, 4096)] {
        // 300 ms per attempt; the second attempt keeps a loaded machine's slow answer for a
        // fast domain from passing for a dead name.
        let resolver = Resolver::new(&ResolverConfig {
            nameservers: vec![server.addr()],
            timeout: Duration::from_millis(300),
            attempts: 2,
            dnssec: mailaudit_net::Dnssec::Off,
            ..ResolverConfig::default()
        })
        .expect("resolver builds");
        let reports = run(resolver, &inputs, concurrency, window).await;
        assert_eq!(
            domains(&reports),
            inputs,
            "concurrency {concurrency}, window {window}"
        );
        for r in &reports {
            let slow = r.domain.starts_with("slow-");
            assert_eq!(
                r.has(CheckId::DnsLookupFailed),
                slow,
                "{}: {:?}",
                r.domain,
                r.findings
            );
            assert!(!r.has(CheckId::DmarcMissing) && !r.has(CheckId::SpfMissing));
            assert_eq!(r.error, None);
        }
    }

    // With room in the window, the work behind a slow head is not held back, only its output:
    // by the time the first report (slow-a.test, a second per dead name) comes out, every fast
    // domain has been audited, i.e. has sent all its queries.
    let fast_cost = {
        let resolver = resolver_for(&server, PATIENT);
        server.reset_query_count();
        run(resolver, &fast_refs, 64, 4096).await;
        server.query_count()
    };
    let resolver = resolver_for(&server, Duration::from_secs(1));
    server.reset_query_count();
    let opts = BulkOptions {
        concurrency: 64,
        window: 4096,
        audit: Arc::new(AuditOptions::default()),
        ..BulkOptions::default()
    };
    let owned: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    let mut rx = audit_stream(resolver, owned, opts);
    let head = rx.recv().await.expect("a first report");
    let asked_by_then = server.query_count();
    assert_eq!(head.domain, "slow-a.test");
    assert!(
        asked_by_then >= fast_cost,
        "{asked_by_then} queries sent when the slow head came out; the fast domains alone \
         send {fast_cost}"
    );
    let mut rest = 0;
    while rx.recv().await.is_some() {
        rest += 1;
    }
    assert_eq!(rest, inputs.len() - 1);
}

#[tokio::test]
async fn duplicates_are_audited_once_in_first_seen_order() {
    let (server, resolver) = lab(zone_of(&["example.test", "other.test"], "")).await;
    let inputs = [
        "Example.TEST",
        "example.test.",
        " example.test ",
        "other.test",
        "EXAMPLE.test",
        "\texample.test\t",
        "Other.Test.",
    ];
    let reports = run(resolver.clone(), &inputs, 4, 8).await;
    assert_eq!(domains(&reports), ["example.test", "other.test"]);
    assert!(reports.iter().all(|r| r.error.is_none()));
    assert_eq!(reports[0].dmarc.policy.as_deref(), Some("reject"));

    // Auditing a domain a second time would cost lookups (cache hits); auditing it once costs
    // exactly what a run over the two distinct domains costs.
    let (queries, lookups) = (server.query_count(), resolver.stats().lookups);
    let fresh = resolver_for(&server, PATIENT);
    server.reset_query_count();
    run(fresh.clone(), &["example.test", "other.test"], 4, 8).await;
    assert_eq!(fresh.stats().lookups, lookups, "each domain audited once");
    assert_eq!(server.query_count(), queries);
}

#[tokio::test]
async fn invalid_names_yield_error_reports_and_the_run_goes_on() {
    let (_server, resolver) = lab(zone_of(&["good1.test", "good2.test"], "")).await;
    let inputs = [
        "good1.test",
        "exa mple.test",
        "-bad.test",
        "192.0.2.1",
        "a..b.test",
        ".",
        "foo@example.test",
        "localhost",
        "good2.test",
    ];
    let reports = run(resolver, &inputs, 4, 8).await;
    assert_eq!(reports.len(), 9, "{:?}", domains(&reports));
    assert_eq!(reports[0].domain, "good1.test");
    assert_eq!(reports[8].domain, "good2.test");
    for r in [&reports[0], &reports[8]] {
        assert_eq!(r.error, None);
        assert_eq!(r.dmarc.policy.as_deref(), Some("reject"));
        assert!(r.score.is_some());
    }
    for (r, input) in reports[1..8].iter().zip(&inputs[1..8]) {
        let err = r
            .error
            .as_deref()
            .unwrap_or_else(|| panic!("{input:?} audited as {:?}: {:?}", r.domain, r.findings));
        assert!(err.contains("invalid domain name"), "{input:?}: {err}");
        assert_eq!(r.score, None, "{input:?}");
        assert!(r.findings.is_empty(), "{input:?}");
    }
    // The domain is the first field of a line; `exa` is no domain name, so the space does not
    // start another column: the name is `exa mple.test`, invalid for its space.
    assert_eq!(reports[1].domain, "exa mple.test");
    let err = reports[1].error.as_deref().unwrap_or_default();
    assert!(err.ends_with("contains a space"), "{err}");
    assert_eq!(reports[2].domain, "-bad.test");
    assert_eq!(reports[3].domain, "192.0.2.1");
}

#[tokio::test]
async fn comments_and_blank_lines_are_skipped() {
    let (_server, resolver) = lab(zone_of(&["good1.test", "good2.test"], "")).await;
    let inputs = [
        "# customer list, exported 2025-01-01",
        "",
        "   ",
        "\t",
        "good1.test   # trailing comment",
        "   # indented comment",
        "#good3.test",
        "good2.test,Contoso Ltd,2025",
        "Domain,Customer",
        "\"good1.test\",\"Contoso, Ltd\"",
    ];
    let reports = run(resolver, &inputs, 4, 8).await;
    assert_eq!(domains(&reports), ["good1.test", "good2.test"]);
    assert!(reports.iter().all(|r| r.error.is_none()));
}

#[tokio::test]
async fn internationalised_names_are_audited_as_a_labels() {
    let (_server, resolver) = lab(zone_of(&["xn--bcher-kva.test"], "")).await;
    let reports = run(
        resolver,
        &["bücher.test", "BÜCHER.test.", "xn--bcher-kva.test"],
        4,
        8,
    )
    .await;
    assert_eq!(domains(&reports), ["xn--bcher-kva.test"]);
    let r = &reports[0];
    assert_eq!(r.error, None);
    assert_eq!(
        r.spf.record.as_deref(),
        Some("v=spf1 include:_spf.shared.test -all"),
        "the A-label was asked"
    );
    assert_eq!(r.dmarc.policy.as_deref(), Some("reject"));
}

/// The apex names of the check fixtures (`*-pos.test`, `*-neg.test`, `hardened.test`, ...).
fn fixture_domains(zone: &Zone) -> Vec<String> {
    let mut out: Vec<String> = zone
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.split('.').count() == 2 && n.ends_with(".test") && !n.starts_with('_'))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn concurrency_1_and_64_give_identical_reports() {
    let zone = Zone::parse(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/zones/check-fixtures.zone"
    )))
    .expect("fixtures parse");
    let inputs = fixture_domains(&zone);
    assert!(inputs.len() > 70, "{}", inputs.len());
    let server = LabDns::start(zone).await.expect("lab starts");

    let mut runs = Vec::new();
    for concurrency in [1, 64] {
        // A fresh resolver (and cache) for each run.
        let resolver = resolver_for(&server, PATIENT);
        let reports = run_owned(resolver, inputs.clone(), concurrency, 128).await;
        let json: Vec<String> = reports
            .iter()
            .map(|r| serde_json::to_string_pretty(r).expect("report serialises"))
            .collect();
        runs.push(json);
    }
    assert_eq!(runs[0].len(), inputs.len());
    for (i, (a, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert_eq!(a, b, "{}: concurrency 1 and 64 differ", inputs[i]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_domains_through_a_small_window_share_one_cache() {
    const N: usize = 2000;
    let names: Vec<String> = (0..N).map(|i| format!("d{i:04}.test")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let server = LabDns::start(zone_of(&refs, "")).await.expect("lab starts");

    // What one domain costs, and what a second identical one adds: the difference is the
    // per-domain part; the rest (the shared include, the shared MX host, the _dmarc walk above
    // the domains) is asked once per run whatever the number of domains.
    let mut cost = Vec::new();
    for n in [1, 2] {
        let resolver = resolver_for(&server, PATIENT);
        server.reset_query_count();
        let reports = run(resolver.clone(), &refs[..n], 8, 16).await;
        assert_eq!(reports.len(), n);
        assert_eq!(resolver.stats().queries_sent, server.query_count());
        cost.push(server.query_count());
    }
    let per_domain = cost[1] - cost[0];
    let shared = cost[0] - per_domain;
    assert!(
        shared >= 2,
        "the include and the MX host at least: {cost:?}"
    );

    let resolver = resolver_for(&server, PATIENT);
    server.reset_query_count();
    let t0 = Instant::now();
    let reports = run(resolver.clone(), &refs, 8, 16).await;
    let elapsed = t0.elapsed();
    assert_eq!(reports.len(), N);
    assert!(domains(&reports).iter().eq(refs.iter()), "input order");
    for r in &reports {
        assert_eq!(r.error, None, "{}", r.domain);
        assert_eq!(r.spf.lookups, 1, "{}", r.domain);
        assert!(
            r.spf
                .tree
                .as_ref()
                .is_some_and(|t| t.children[0].error.is_none())
        );
        assert!(
            !r.has(CheckId::DnsLookupFailed),
            "{}: {:?}",
            r.domain,
            r.findings
        );
    }
    let stats = resolver.stats();
    assert_eq!(
        server.query_count(),
        shared + per_domain * N as u64,
        "shared names asked once per run ({shared} shared, {per_domain} per domain), in {elapsed:?}"
    );
    assert_eq!(stats.queries_sent, server.query_count());
    // Every domain asks for the shared names; all but the first are answered from the cache.
    assert!(
        stats.lookups >= stats.queries_sent + (N as u64 - 1) * shared,
        "{stats:?}"
    );
}
