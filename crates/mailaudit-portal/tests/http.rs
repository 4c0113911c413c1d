//! Plain HTTP: status codes, headers, the checklist form's writes and refusals, the loopback
//! `Host:` guard, escaping in the served bytes, and store failures as 500 pages.

use mailaudit_portal::PortalOptions;
use mailaudit_store::ItemState;

use crate::common::{
    CUSTOMER, HOSTILE_CUSTOMER, HOSTILE_DETAIL, HOSTILE_DOMAIN, HOSTILE_EVIDENCE, Portal,
};

const LOCAL: PortalOptions = PortalOptions::local();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes_of_every_page() {
    let p = Portal::start(LOCAL).await;
    for (path, status) in [
        ("/", 200),
        ("/?customer=Contoso%20Legal", 200),
        ("/?customer=Nobody", 404),
        // A control character is a bad request, not a store failure (a NUL was a 500).
        ("/?customer=%00", 400),
        ("/?customer=Contoso%01Legal", 400),
        ("/healthz", 200),
        ("/assets/portal.css", 200),
        ("/checks", 200),
        ("/checks/SPF-SOFTFAIL", 200),
        ("/checks/spf-softfail", 200),
        ("/checks/DMARC001", 200),
        ("/checks/NOT-A-CHECK", 404),
        ("/domains/contoso.example", 200),
        ("/domains/CONTOSO.EXAMPLE.", 200),
        ("/domains/contoso.example/guide", 200),
        ("/domains/unaudited.example", 200),
        ("/domains/unaudited.example/guide", 404),
        ("/domains/unknown.example", 404),
        ("/domains/unknown.example/guide", 404),
        ("/domains/%FF%FE", 404),
        ("/domains/..%2F..%2Fetc%2Fpasswd", 404),
        ("/no/such/page", 404),
    ] {
        let r = p.get(path).await;
        assert_eq!(r.status, status, "GET {path}: {}", r.body);
        assert!(
            r.header("content-security-policy").is_some(),
            "GET {path} has a CSP"
        );
    }
    let r = p.get("/healthz").await;
    assert_eq!(r.body, "ok\n");
    let r = p.get("/assets/portal.css").await;
    assert!(r.header("content-type").unwrap().starts_with("text/css"));
    let r = p.get("/domains/unknown.example").await;
    assert!(r.body.contains("unknown.example"), "{}", r.body);
    assert!(r.body.contains("<h1>Not found</h1>"), "{}", r.body);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_stored_data() {
    let p = Portal::start(LOCAL).await;
    let fleet = p.get("/").await.body;
    for (domain, score) in &p.fleet.scores {
        let score = score.expect("the fixture domains are scored");
        assert!(
            fleet.contains(&format!("href=\"/domains/{domain}\">{domain}</a></td>")),
            "{domain} listed"
        );
        assert!(
            fleet.contains(&format!("\">{score}</span>")),
            "{domain} score {score}"
        );
    }
    assert!(fleet.contains("<strong id=\"t-domains\">4</strong> domains (3 audited)"));
    // fabrikam.example has no DMARC; contoso.example has p=none.
    assert!(
        fleet.contains("<strong id=\"t-no-dmarc\">1</strong>"),
        "{fleet}"
    );
    assert!(
        fleet.contains("<strong id=\"t-dmarc-none\">2</strong>"),
        "{fleet}"
    );
    // The customer filter keeps that customer's domains only.
    let one = p.get("/?customer=Contoso%20Legal").await.body;
    assert!(one.contains("contoso.example") && !one.contains("alert(1)"));
    assert!(one.contains(&format!("<h1>Customer {CUSTOMER}</h1>")));

    let page = p.get("/domains/contoso.example").await.body;
    for part in [
        "id=\"findings\"",
        "href=\"/checks/SPF-SOFTFAIL\">SPF-SOFTFAIL</a>",
        "id=\"history\"",
        "fixed: <a href=\"/checks/DMARC-MISSING\">DMARC-MISSING</a>",
        "id=\"checklist\"",
        "id=\"guide\"",
        "Remediation guide for contoso.example",
        "method=\"post\" action=\"/domains/contoso.example/checklist/",
        // The guide's records as a DNS provider's form asks for them, beside the zone lines.
        "<table class=\"records\">",
        "<tr><td><code>_dmarc</code></td><td>TXT</td><td><code>v=DMARC1; p=quarantine;",
        "<td><code>_dmarc.contoso.example</code></td></tr>",
        // The seed's checklist items, on the domain's checklist too.
        "dmarc-review-reports",
        "connectors-audit",
        "rerun-audit",
    ] {
        assert!(page.contains(part), "domain page has {part:?}");
    }
    let check = p.get("/checks/DMARC-MISSING").await.body;
    for part in [
        "What it checks",
        "Why it matters",
        "How to fix it in Microsoft 365",
        "<a href=\"https://learn.microsoft.com/",
        "href=\"/domains/fabrikam.example\"",
    ] {
        assert!(check.contains(part), "check page has {part:?}");
    }
    let guide = p.get("/domains/contoso.example/guide").await;
    assert!(guide.body.starts_with("<!DOCTYPE html>"));
    assert_eq!(
        guide.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'")
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_are_escaped_in_the_served_html() {
    let p = Portal::start(LOCAL).await;
    let enc = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E.example";
    for path in [
        "/".to_string(),
        format!("/domains/{enc}"),
        "/checks/SPF-SYNTAX".to_string(),
    ] {
        let r = p.get(&path).await;
        assert_eq!(r.status, 200, "GET {path}");
        for raw in [
            HOSTILE_DOMAIN,
            HOSTILE_DETAIL,
            HOSTILE_EVIDENCE,
            HOSTILE_CUSTOMER,
            "<script",
            "<img",
        ] {
            assert!(!r.body.contains(raw), "GET {path} contains {raw:?} raw");
        }
        // The only SVG is the portal's own charts.
        assert_eq!(
            r.body.matches("<svg").count(),
            r.body
                .matches("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart ")
                .count(),
            "GET {path}: an SVG that is not a chart"
        );
    }
    let page = p.get(&format!("/domains/{enc}")).await.body;
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;.example"));
    assert!(page.contains("&lt;img id=&quot;injected&quot; src=&quot;x&quot;"));
    let fleet = p.get("/").await.body;
    assert!(
        fleet.contains(&format!("href=\"/domains/{enc}\"")),
        "{fleet}"
    );
    assert!(fleet.contains("&lt;b id=&quot;injected-customer&quot;&gt;Evil&lt;/b&gt; &amp; Co"));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_form_writes_through_the_store_and_refuses_cross_site_posts() {
    let p = Portal::start(LOCAL).await;
    let items = p.store.checklist("contoso.example").await.unwrap();
    let key = items
        .iter()
        .find(|i| i.state == ItemState::Open)
        .expect("an open item")
        .key
        .clone();
    let path = format!("/domains/contoso.example/checklist/{key}");
    let origin = format!("http://{}", p.addr);
    let state = |items: Vec<mailaudit_store::ChecklistItem>| {
        items.into_iter().find(|i| i.key == key).unwrap()
    };

    // Refused: another origin, a cross-site fetch, no Origin at all (and no session's CSRF
    // token: there are no accounts), a bad state, an unknown key or domain.
    for (headers, body, status) in [
        (vec![("Origin", "http://evil.example")], "state=done", 403),
        (vec![], "state=done", 403),
        (vec![("Origin", "null")], "state=done", 403),
        (vec![("Sec-Fetch-Site", "cross-site")], "state=done", 403),
        (vec![("Origin", origin.as_str())], "state=finished", 400),
        (vec![("Origin", origin.as_str())], "by=x", 400),
    ] {
        let r = p.request("POST", &path, &headers, Some(body)).await;
        assert_eq!(r.status, status, "{headers:?} {body}: {}", r.body);
    }
    assert_eq!(
        state(p.store.checklist("contoso.example").await.unwrap()).state,
        ItemState::Open,
        "refused posts change nothing"
    );
    let r = p
        .request(
            "POST",
            "/domains/contoso.example/checklist/no-such-item",
            &[("Origin", origin.as_str())],
            Some("state=done"),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = p
        .request(
            "POST",
            "/domains/unknown.example/checklist/dmarc-publish",
            &[("Origin", origin.as_str())],
            Some("state=done"),
        )
        .await;
    assert_eq!(r.status, 404);

    // Accepted: same origin; recorded with the name given, then reopened with the default name.
    let r = p
        .request(
            "POST",
            &path,
            &[("Origin", origin.as_str())],
            Some("state=done&by=Ann+Lee"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/domains/contoso.example#item-{key}").as_str())
    );
    let item = state(p.store.checklist("contoso.example").await.unwrap());
    assert_eq!(item.state, ItemState::Done);
    assert_eq!(item.by.as_deref(), Some("Ann Lee"));
    // A browser that says the form is its own page's, without an Origin header.
    let r = p
        .request(
            "POST",
            &path,
            &[("Sec-Fetch-Site", "same-origin")],
            Some("state=open&by="),
        )
        .await;
    assert_eq!(r.status, 303);
    let item = state(p.store.checklist("contoso.example").await.unwrap());
    assert_eq!(item.state, ItemState::Open);
    assert_eq!(item.by.as_deref(), Some("web portal"));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_portal_refuses_foreign_host_names() {
    let p = Portal::start(LOCAL).await;
    for (host, status) in [
        ("evil.example", 403),
        ("evil.example:8080", 403),
        ("10.0.0.1", 403),
        ("localhost", 200),
        ("127.0.0.1", 200),
        ("[::1]:8080", 200),
    ] {
        let r = p.request("GET", "/", &[("Host", host)], None).await;
        assert_eq!(r.status, status, "Host: {host}");
    }
    p.stop().await;
    let p = Portal::start(PortalOptions {
        public: true,
        ..PortalOptions::local()
    })
    .await;
    let r = p
        .request("GET", "/", &[("Host", "portal.msp.example")], None)
        .await;
    assert_eq!(r.status, 200, "a public portal serves any host name");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failure_is_a_500_page_not_a_panic() {
    let p = Portal::start(LOCAL).await;
    p.store.close().await;
    for path in ["/", "/domains/contoso.example", "/checks/SPF-SOFTFAIL"] {
        let r = p.get(path).await;
        assert_eq!(r.status, 500, "GET {path}");
        assert!(r.body.contains("The store could not be read"), "{}", r.body);
        assert!(
            !r.body.contains("database error"),
            "the cause stays in the log"
        );
    }
    let r = p.get("/healthz").await;
    assert_eq!(r.status, 503);
    // Even the catalogue, which needs no store, is refused: without the store, the portal
    // cannot tell whether everyone must sign in, so it lets no one in.
    assert_eq!(p.get("/checks").await.status, 500);
    assert_eq!(p.get("/assets/portal.css").await.status, 200);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_page_shows_the_analysis_and_the_verdict() {
    let p = Portal::start(LOCAL).await;
    let r = p.get("/domains/contoso.example/reports").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // 21 days x 100 messages, all aligned, at p=none: ready for quarantine.
    assert!(r.body.contains("<dd id=\"volume\">2100</dd>"), "{}", r.body);
    assert!(r.body.contains("data-ready=\"true\""), "{}", r.body);
    assert!(
        r.body.contains("Ready to move to p=quarantine"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("data-source=\"Microsoft 365\""),
        "{}",
        r.body
    );
    // Day by day: the volume by source and the pass rate, as charts.
    let daily = r
        .body
        .split("id=\"daily\"")
        .nth(1)
        .expect("the daily charts");
    assert!(
        daily.contains("id=\"daily-volume\"") && daily.contains("Microsoft 365"),
        "{daily}"
    );
    assert!(
        daily.contains("id=\"daily-pass\"") && daily.contains("% passing DMARC"),
        "{daily}"
    );
    // The TLS report: 100 sessions, 5 failed with an expired certificate.
    assert!(
        r.body.contains("<dd id=\"tls-sessions\">100</dd>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("data-type=\"certificate-expired\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("2001:db8::25"), "{}", r.body);
    // The reports received, the hostile reporter name escaped.
    assert!(
        !r.body.contains("<i id=\"injected-reporter\">"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("&lt;i id=&quot;injected-reporter&quot;&gt;Evil reporter&lt;/i&gt;"),
        "{}",
        r.body
    );
    // A shorter period: a week of reports is not enough. (The reports begin at midnight, so
    // the last 7 days hold 6 of them, 7 only when the test runs exactly at midnight.)
    let week = p.get("/domains/contoso.example/reports?days=7").await;
    assert_eq!(week.status, 200);
    assert!(
        week.body.contains("<dd id=\"volume\">600</dd>")
            || week.body.contains("<dd id=\"volume\">700</dd>"),
        "{}",
        week.body
    );
    assert!(week.body.contains("data-ready=\"false\""), "{}", week.body);
    assert!(week.body.contains("not enough data"), "{}", week.body);
    // A domain without reports, a bad period, an unknown domain.
    let none = p.get("/domains/fabrikam.example/reports").await;
    assert_eq!(none.status, 200);
    assert!(
        !none.body.contains("id=\"daily\""),
        "no chart without reports"
    );
    assert!(
        none.body.contains("No aggregate report covers this period"),
        "{}",
        none.body
    );
    assert!(
        none.body.contains("No SMTP TLS report covers this period"),
        "{}",
        none.body
    );
    assert_eq!(
        p.get("/domains/contoso.example/reports?days=0")
            .await
            .status,
        400
    );
    assert_eq!(
        p.get("/domains/contoso.example/reports?days=x")
            .await
            .status,
        400
    );
    assert_eq!(p.get("/domains/nowhere.example/reports").await.status, 404);

    // Each report received links to its file as received: a download, never a page.
    let row = r
        .body
        .lines()
        .find(|l| l.contains("data-kind=\"smtp tls\""))
        .expect("the TLS report's row");
    let href = row
        .split("href=\"")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .expect("a link");
    assert!(
        href.starts_with("/reports/") && href.ends_with("/raw"),
        "{href}"
    );
    let raw = p.get(href).await;
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert_eq!(raw.body, crate::common::TLS_RAW);
    assert_eq!(raw.header("content-type"), Some("application/octet-stream"));
    let id = href
        .trim_start_matches("/reports/")
        .trim_end_matches("/raw");
    assert_eq!(
        raw.header("content-disposition"),
        Some(format!("attachment; filename=\"report-{id}.json\"").as_str())
    );
    assert_eq!(raw.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(p.get("/reports/x/raw").await.status, 400);
    assert_eq!(p.get("/reports/0/raw").await.status, 400);
    assert_eq!(p.get("/reports/999999/raw").await.status, 404);
    p.stop().await;
}

/// A tick the latest audit contradicts (contoso.example is at `p=none`, so moving to
/// quarantine is not done) is accepted, as `mailaudit checklist --done --force` is, and the
/// page says what the audit shows and that the next audit will reopen it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_the_latest_audit_contradicts_carries_a_warning() {
    let p = Portal::start(LOCAL).await;
    let row = |body: &str, key: &str| -> String {
        let start = body
            .find(&format!("<tr id=\"item-{key}\""))
            .unwrap_or_else(|| panic!("a row for {key}: {body}"));
        let end = body[start..].find("</tr>").expect("the row ends") + start;
        body[start..end].to_string()
    };
    let page = p.get("/domains/contoso.example").await;
    assert_eq!(page.status, 200);
    assert!(
        !row(&page.body, "dmarc-quarantine").contains("contradicted"),
        "an open item has no warning"
    );
    let r = p
        .request(
            "POST",
            "/domains/contoso.example/checklist/dmarc-quarantine",
            &[("Origin", format!("http://{}", p.addr).as_str())],
            Some("state=done&by=Ann"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = p.get("/domains/contoso.example").await;
    let tr = row(&page.body, "dmarc-quarantine");
    assert!(tr.contains("data-state=\"done\""), "{tr}");
    assert!(
        tr.contains("class=\"warn contradicted\"")
            && tr.contains("p=none")
            && tr.contains("The next audit will reopen this item"),
        "{tr}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_page_shows_dnssec_and_dane_per_mx() {
    use mailaudit_core::audit::{AuditOptions, audit_domain};
    use mailaudit_core::dns::{Security, Tlsa};
    use mailaudit_core::memory::{MemoryDns, Rr};

    let p = Portal::start(LOCAL).await;
    // A signed domain: one MX in a signed zone with a "3 1 1" TLSA record, one in an unsigned
    // zone.
    let dns = MemoryDns::new()
        .with("signed.example", Rr::Mx(10, "mx1.signed.example".into()))
        .with("signed.example", Rr::Mx(20, "mx.unsigned.example".into()))
        .with("mx1.signed.example", Rr::A("192.0.2.1".parse().unwrap()))
        .with("mx.unsigned.example", Rr::A("192.0.2.2".parse().unwrap()))
        .with(
            "_25._tcp.mx1.signed.example",
            Rr::Tlsa(Tlsa {
                cert_usage: 3,
                selector: 1,
                matching_type: 1,
                cert_association_data: "ab".repeat(32),
            }),
        )
        .with_security("signed.example", Security::Secure)
        .with_security("unsigned.example", Security::Insecure);
    let report = audit_domain(&dns, "signed.example", &AuditOptions::default()).await;
    let json = serde_json::to_value(&report).expect("the report serialises");
    p.store
        .add_domain(&mailaudit_store::NewDomain {
            name: "signed.example".into(),
            ..Default::default()
        })
        .await
        .expect("domain added");
    crate::common::record_json(
        p.store.as_ref(),
        "signed.example",
        &json,
        report.score.map(i64::from),
        crate::common::now(),
    )
    .await;

    let page = p.get("/domains/signed.example").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    assert!(
        b.contains("<dd id=\"dnssec-status\">signed, validates</dd>"),
        "{b}"
    );
    assert!(b.contains("<section class=\"dnssec\">"), "{b}");
    assert!(
        b.contains("<tr class=\"mx-dane\" data-host=\"mx1.signed.example\"><td>mx1.signed.example</td><td>signed, validates</td>"),
        "{b}"
    );
    assert!(b.contains(&format!("3 1 1 {}", "ab".repeat(32))), "{b}");
    assert!(
        b.contains("<tr class=\"mx-dane\" data-host=\"mx.unsigned.example\"><td>mx.unsigned.example</td><td>not signed</td>"),
        "{b}"
    );
    assert!(
        b.contains("href=\"/checks/DNSSEC-MX-UNSIGNED\""),
        "the finding is listed too: {b}"
    );

    // A domain audited without validation says so and has no section.
    let page = p.get("/domains/contoso.example").await.body;
    assert!(
        page.contains("<dd id=\"dnssec-status\"><span class=\"muted\">not validated</span></dd>"),
        "{page}"
    );
    assert!(!page.contains("class=\"dnssec\""));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_page_shows_distributed_runs_in_progress() {
    let p = Portal::start(LOCAL).await;
    let fleet = p.get("/").await.body;
    assert!(!fleet.contains("runs-in-progress"), "no run queued yet");
    let chunks: Vec<Vec<String>> = (0..3)
        .map(|c| (0..2).map(|i| format!("q{c}-{i}.example")).collect())
        .collect();
    let now = mailaudit_store::now();
    let run = p.store.queue_run(&chunks, now).await.unwrap();
    let fleet = p.get("/").await.body;
    assert!(
        fleet.contains(&format!("id=\"run-{run}\"")) && fleet.contains("No worker holds a chunk"),
        "{fleet}"
    );
    let lease = p
        .store
        .claim_chunk("worker-a", now, 60)
        .await
        .unwrap()
        .unwrap();
    p.store
        .record_batch(run, &[], Some(&lease), now)
        .await
        .unwrap();
    let _held = p
        .store
        .claim_chunk("worker-b", now, 60)
        .await
        .unwrap()
        .unwrap();
    let fleet = p.get("/").await.body;
    assert!(
        fleet.contains("<strong>2</strong> of 6 domains recorded, 1 of 3 chunks")
            && fleet.contains("Workers: worker-b"),
        "{fleet}"
    );
    p.stop().await;
}
