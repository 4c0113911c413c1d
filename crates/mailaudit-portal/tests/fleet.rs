//! The fleet view over HTTP: paging, sorting, filters and their totals, the customers'
//! ranking, the exports of what the filters match, and every parameter checked (a value the
//! page does not know is a 400 naming it, never a 500), also with generated values.

use mailaudit_portal::PortalOptions;
use proptest::prelude::*;

use crate::common::{CUSTOMER, HOSTILE_CUSTOMER, Portal};

const LOCAL: PortalOptions = PortalOptions::local();

/// The domains of a fleet page's table, in their order.
fn listed(body: &str) -> Vec<String> {
    body.split("<tr data-domain=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
        .map(|d| d.replace("&lt;", "<").replace("&gt;", ">"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_pages_sort_filter_and_export() {
    let p = Portal::start(LOCAL).await;
    let hostile = "<script>alert(1)</script>.example";

    // Worst first by default: the two domains with a critical finding (the hostile domain's
    // SPF-SYNTAX, fabrikam's DMARC-MISSING), then contoso; the never-audited domain last.
    let all = p.get("/").await;
    assert_eq!(all.status, 200);
    let order = listed(&all.body);
    assert_eq!(order.len(), 4, "{order:?}");
    let mut worst = order[..2].to_vec();
    worst.sort();
    assert_eq!(worst, [hostile, "fabrikam.example"]);
    assert_eq!(order[2..], ["contoso.example", "unaudited.example"]);
    assert!(
        all.body
            .contains("<span class=\"muted\" id=\"shown\">1–4 of 4</span>")
    );
    // Both customers ranked.
    let ranking = all
        .body
        .split("id=\"customers\"")
        .nth(1)
        .unwrap_or_default();
    assert!(ranking.contains("data-customer=\"&lt;b"), "{ranking}");
    assert!(
        ranking.contains(&format!("data-customer=\"{CUSTOMER}\"")),
        "{ranking}"
    );

    // By name, and reversed.
    let by_name = listed(&p.get("/?sort=name").await.body);
    let mut sorted = by_name.clone();
    sorted.sort();
    assert_eq!(by_name, sorted);
    let reversed = listed(&p.get("/?sort=name&dir=desc").await.body);
    assert_eq!(reversed, by_name.iter().rev().cloned().collect::<Vec<_>>());

    // Two a page: the pager links to the next page, which lists the rest; the totals are
    // those of every match on each page.
    let first = p.get("/?sort=name&per=2").await.body;
    assert_eq!(listed(&first), by_name[..2]);
    assert!(first.contains("Page 1 of 2"), "{first}");
    assert!(
        first.contains("href=\"/?sort=name&amp;page=2&amp;per=2\""),
        "{first}"
    );
    let second = p.get("/?sort=name&per=2&page=2").await.body;
    assert_eq!(listed(&second), by_name[2..]);
    assert!(second.contains("<strong id=\"t-domains\">4</strong>"));
    // A page past the end is empty, not an error.
    let past = p.get("/?per=2&page=9").await;
    assert_eq!(past.status, 200);
    assert!(listed(&past.body).is_empty() && past.body.contains("id=\"no-match\""));

    // Filters, and the totals follow them.
    let missing = p.get("/?dmarc=missing").await.body;
    assert_eq!(listed(&missing), ["fabrikam.example"]);
    assert!(missing.contains("<strong id=\"t-domains\">1</strong> domains (1 audited)"));
    assert!(missing.contains("<strong id=\"t-no-dmarc\">1</strong>"));
    let mut critical = listed(&p.get("/?severity=critical").await.body);
    critical.sort();
    assert_eq!(critical, [hostile, "fabrikam.example"]);
    assert_eq!(listed(&p.get("/?q=FABRI").await.body), ["fabrikam.example"]);
    assert_eq!(
        listed(&p.get("/?audited=never").await.body),
        ["unaudited.example"]
    );
    assert_eq!(
        listed(&p.get("/?check=SPF-SYNTAX").await.body),
        [hostile],
        "a check filter lists the domains with that finding"
    );
    let customer = format!(
        "/?customer={}",
        HOSTILE_CUSTOMER
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    assert_eq!(listed(&p.get(&customer).await.body), [hostile]);
    let none = p.get("/?dmarc=reject").await.body;
    assert!(listed(&none).is_empty() && none.contains("No domain matches these filters"));
    // The form sends empty values for "Any": no filter.
    assert_eq!(
        listed(
            &p.get("/?q=&severity=&area=&relay=&dmarc=&audited=&customer=")
                .await
                .body
        )
        .len(),
        4
    );

    // The exports hold every match, not only the page, in the page's order.
    let csv = p.get("/fleet.csv?sort=name&per=1").await;
    assert_eq!(csv.status, 200);
    let rows: Vec<&str> = csv.body.lines().collect();
    assert!(rows[0].starts_with("domain,customer,parked,score,dmarc,direct_send"));
    assert_eq!(rows.len(), 5, "{}", csv.body);
    assert!(
        rows[2].starts_with("contoso.example,Contoso Legal,false,"),
        "{rows:?}"
    );
    let json = p.get("/fleet.json?dmarc=missing").await;
    let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(v["count"], 1);
    assert_eq!(v["domains"][0]["domain"], "fabrikam.example");
    assert_eq!(v["domains"][0]["dmarc_missing"], true);
    assert_eq!(v["domains"][0]["areas"]["dmarc"], "critical");

    // Every customer, ranked.
    let customers = p.get("/customers").await.body;
    assert!(customers.contains(&format!("data-customer=\"{CUSTOMER}\"")));

    // A check's page counts the affected domains and links to them in the fleet view.
    let check = p.get("/checks/SPF-SYNTAX").await.body;
    assert!(check.contains("id=\"affected-count\">1<"), "{check}");
    assert!(check.contains("href=\"/?check=SPF-SYNTAX\""), "{check}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_parameters_out_of_range_are_400_naming_them() {
    let p = Portal::start(LOCAL).await;
    for (query, named) in [
        ("severity=bogus", "severity"),
        ("area=mx", "area"),
        ("relay=wide", "relay"),
        ("dmarc=p%3Dnone", "dmarc"),
        ("sort=random", "sort"),
        ("dir=up", "dir"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=99999999999999999999", "page"),
        ("per=0", "per"),
        ("per=501", "per"),
        ("per=1e3", "per"),
        ("overdue=maybe", "overdue"),
        ("audited=often", "audited"),
        ("check=NOT-A-CHECK", "check"),
        ("customer=%00", "customer"),
        ("q=%01", "q"),
        ("sort=name&sort=score", "query string"),
    ] {
        for path in ["/", "/fleet.csv", "/fleet.json"] {
            let r = p.get(&format!("{path}?{query}")).await;
            assert_eq!(r.status, 400, "{path}?{query}: {}", r.body);
            if path == "/" {
                assert!(r.body.contains(named), "{query}: {}", r.body);
            }
        }
    }
    let long = format!("/?q={}", "a".repeat(254));
    assert_eq!(p.get(&long).await.status, 400);
    // An unknown customer is not found, as on the customer's own page.
    assert_eq!(p.get("/?customer=Nobody").await.status, 404);
    p.stop().await;
}

/// Any value of any parameter: 200, 400 or 404, never a server error.
#[test]
fn generated_fleet_parameters_never_fail_the_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let p = rt.block_on(Portal::start(LOCAL));
    let names = [
        "customer", "q", "severity", "area", "check", "relay", "dmarc", "overdue", "audited",
        "sort", "dir", "page", "per", "other",
    ];
    let config = ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(pairs in proptest::collection::vec((0..names.len(), any::<Vec<u8>>()), 0..5))| {
        let query: Vec<String> = pairs
            .iter()
            .map(|(i, v)| {
                let value: String = v.iter().map(|b| format!("%{b:02X}")).collect();
                format!("{}={value}", names[*i])
            })
            .collect();
        let path = format!("/?{}", query.join("&"));
        let r = rt.block_on(p.get(&path));
        prop_assert!(matches!(r.status, 200 | 400 | 404), "{path}: {} {}", r.status, r.body);
    });
    rt.block_on(p.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_report_and_progress_charts() {
    let p = Portal::start(LOCAL).await;
    let path = format!("/customers/{}/report", CUSTOMER.replace(' ', "%20"));
    let r = p.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let csp = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-security-policy"))
        .map(|(_, v)| v.as_str());
    assert_eq!(
        csp,
        Some(mailaudit_portal::report_html::PAGE_CSP),
        "the report's own policy: inline style, inline images"
    );
    let html = &r.body;
    assert!(html.contains(&format!("Email security report for {CUSTOMER}")));
    // contoso.example had no DMARC record, then p=none: the fix is in the report.
    let fixed = html.split("id=\"fixed\"").nth(1).unwrap_or_default();
    assert!(fixed.contains("contoso.example"), "{fixed}");
    assert!(html.contains("data-domain=\"fabrikam.example\""));
    assert!(!html.contains("alert(1)"), "only this customer's domains");
    // Other periods and paper; bad values are 400; an unknown customer 404.
    assert_eq!(
        p.get(&format!("{path}?since=12w&paper=letter"))
            .await
            .status,
        200
    );
    for bad in [
        "since=1y",
        "since=0d",
        "since=99999d",
        "paper=legal",
        "since=9&since=9",
    ] {
        assert_eq!(p.get(&format!("{path}?{bad}")).await.status, 400, "{bad}");
    }
    assert_eq!(p.get("/customers/Nobody/report").await.status, 404);
    // The fleet page links to it, and draws the progress of the runs.
    let fleet = p.get("/?customer=Contoso%20Legal").await.body;
    assert!(fleet.contains(&format!("href=\"{path}\"")), "{fleet}");
    assert!(
        fleet.contains("id=\"progress\"") && fleet.contains("<svg"),
        "{fleet}"
    );
    // A domain's page draws its score history.
    let domain = p.get("/domains/contoso.example").await.body;
    assert!(domain.contains("id=\"score-history\""), "{domain}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_import_names_bad_rows_and_keeps_good_ones() {
    let p = Portal::start(LOCAL).await;
    let csv = "domain,customer\r\nnew-one.example,Contoso Legal\r\n\"bad name\",Contoso Legal\r\nnew-two.example,Brand New Co\r\n";
    let r = p
        .post_files("/inventory/import", &[("fleet.csv", csv)], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("added 2"), "{}", r.body);
    assert!(r.body.contains("data-line=\"3\""), "{}", r.body);
    assert!(
        r.body.contains("<strong>fleet.csv:3</strong>"),
        "{}",
        r.body
    );
    assert!(p.store.domain("new-two.example").await.is_ok());
    assert!(
        p.store.customer("Brand New Co").await.is_ok(),
        "a new customer from the file"
    );
    // No domain column: a 400 that says so; no file: a 400.
    let r = p
        .post_files("/inventory/import", &[("x.csv", "name\r\nx")], None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("no `domain` column"), "{}", r.body);
    let r = p.post_files("/inventory/import", &[], None).await;
    assert_eq!(r.status, 400);
    // Adding domains: bad names refused before any is added.
    let r = p
        .post_form(
            "/inventory/domains",
            "domains=ok-one.example%0Anot+a+domain",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        p.store.domain("ok-one.example").await.is_err(),
        "nothing added"
    );
    p.stop().await;
}

/// A file upload carries its CSRF token in its address: without it, or with another
/// session's, it is refused before the file is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_needs_its_sessions_csrf_token() {
    let p = Portal::start_with_users(LOCAL).await;
    let tech = p.login("tech", crate::common::password("tech")).await;
    let root = p.login("root", crate::common::password("root")).await;
    let files = [("f.csv", "domain\r\ncsrf-test.example")];
    let post = |path: String| {
        let (p, tech) = (&p, &tech);
        async move { p.post_files(&path, &files, Some(tech)).await }
    };
    assert_eq!(
        post("/inventory/import".into()).await.status,
        403,
        "no token"
    );
    let other = format!("/inventory/import?csrf={}", crate::common::enc(&root.csrf));
    assert_eq!(post(other).await.status, 403, "another session's token");
    assert!(p.store.domain("csrf-test.example").await.is_err());
    let own = format!("/inventory/import?csrf={}", crate::common::enc(&tech.csrf));
    let r = post(own).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(p.store.domain("csrf-test.example").await.is_ok());
    p.stop().await;
}

/// Long evidence (an SMTP transcript) is folded across the table; the SPF include tree is drawn
/// with each record's look-ups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_evidence_is_folded_and_the_spf_tree_is_drawn() {
    let p = Portal::start(LOCAL).await;
    let mut report = p
        .store
        .latest_result("contoso.example")
        .await
        .unwrap()
        .unwrap()
        .report;
    let transcript = "220 mx.contoso.example ESMTP\nEHLO probe\n250-mx.contoso.example\n250 STARTTLS\nMAIL FROM:<ceo@contoso.example>\n250 2.1.0 Sender OK\nRCPT TO:<it@contoso.example>\n250 2.1.5 Recipient OK";
    report["findings"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "RELAY-OPEN", "area": "connectors", "severity": "critical",
            "title": "Direct Send open", "detail": "accepted", "evidence": transcript, "fix": "x"
        }));
    crate::common::record_json(
        p.store.as_ref(),
        "contoso.example",
        &report,
        Some(30),
        mailaudit_store::now(),
    )
    .await;
    let page = p.get("/domains/contoso.example").await.body;
    let row = page
        .split("<tr class=\"evidence-row\" data-check=\"RELAY-OPEN\">")
        .nth(1)
        .expect("the transcript's own row");
    assert!(
        row.contains("<details><summary>Evidence: 220 mx.contoso.example ESMTP…</summary>"),
        "{row}"
    );
    assert!(row.contains("RCPT TO:&lt;it@contoso.example&gt;"), "{row}");
    // The SPF tree: the domain's record and Microsoft 365's below it, with look-ups.
    let tree = page.split("id=\"spf-tree\"").nth(1).expect("the SPF tree");
    assert!(tree.contains("of 10 DNS look-ups"), "{tree}");
    assert!(tree.contains("data-domain=\"contoso.example\""), "{tree}");
    assert!(
        tree.contains("data-domain=\"spf.protection.outlook.com\""),
        "{tree}"
    );
    assert!(tree.contains(" in all"), "{tree}");
    p.stop().await;
}

/// Schedules from the portal: set, paused (kept, not run), resumed, removed; bad values 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_set_paused_resumed_and_removed() {
    let p = Portal::start(LOCAL).await;
    let post = |path: &'static str, body: String| {
        let p = &p;
        async move { p.post_form(path, &body).await }
    };
    let scope = format!("customer:{CUSTOMER}").replace(' ', "+");
    let r = post("/schedules", format!("scope={scope}&every=2w")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = p.get("/schedules").await.body;
    assert!(page.contains("data-paused=\"false\""), "{page}");
    assert!(page.contains("<td>2w</td>"), "{page}");
    assert_eq!(
        post("/schedules/pause", format!("scope={scope}"))
            .await
            .status,
        303
    );
    let s = &p.store.schedules().await.unwrap()[0];
    assert!(s.paused);
    assert!(
        p.store
            .claim_due_schedules(s.next_run_at + 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        p.get("/schedules")
            .await
            .body
            .contains("data-paused=\"true\"")
    );
    assert_eq!(
        post("/schedules/resume", format!("scope={scope}"))
            .await
            .status,
        303
    );
    assert!(!p.store.schedules().await.unwrap()[0].paused);
    for bad in [
        "scope=fleet&every=30m",
        "scope=fleet&every=soon",
        "scope=galaxy&every=1d",
    ] {
        assert_eq!(
            post("/schedules", bad.to_string()).await.status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        post("/schedules", "scope=customer:Nobody&every=1d".into())
            .await
            .status,
        404
    );
    assert_eq!(
        post("/schedules/remove", format!("scope={scope}"))
            .await
            .status,
        303
    );
    assert!(p.store.schedules().await.unwrap().is_empty());
    assert_eq!(
        post("/schedules/remove", format!("scope={scope}"))
            .await
            .status,
        404
    );
    p.stop().await;
}

/// An Exchange Online export uploaded on the inventory page (the per-cmdlet files of
/// testdata/exo): evaluated as `mailaudit exo import` does, recorded, its findings shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_online_export_is_imported_from_the_portal() {
    let p = Portal::start(LOCAL).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/exo");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json"))
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(&n)).unwrap();
            (n, text)
        })
        .collect();
    files.sort();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let r = p.post_files("/inventory/exo", &files, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"exo-findings\""), "{}", r.body);
    assert!(r.body.contains("data-check=\"EXO-"), "{}", r.body);
    let imports = p.store.latest_tenant_imports(None).await.unwrap();
    assert!(!imports.is_empty(), "recorded");
    // Junk is a 400 naming the file; nothing recognisable, a 400 saying what to send.
    let r = p
        .post_files("/inventory/exo", &[("x.json", "not json")], None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("x.json: not JSON"), "{}", r.body);
    let r = p
        .post_files("/inventory/exo", &[("notes.json", "{}")], None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("No export to read"), "{}", r.body);
    p.stop().await;
}

/// A domain's inventory entry edited from its page: customer, parked, tenant, endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domains_entry_is_edited_from_its_page() {
    let p = Portal::start(LOCAL).await;
    let post = |body: &'static str| {
        let p = &p;
        async move { p.post_form("/domains/contoso.example/edit", body).await }
    };
    assert!(
        p.get("/domains/contoso.example")
            .await
            .body
            .contains("id=\"inventory\"")
    );
    let r = post("customer=&parked=yes&tenant=newtenant&m365_endpoint=contoso-example.mail.protection.outlook.com").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let d = p.store.domain("contoso.example").await.unwrap();
    assert_eq!(
        (
            d.customer,
            d.parked,
            d.tenant.as_deref(),
            d.m365_endpoint.as_deref()
        ),
        (
            None,
            true,
            Some("newtenant"),
            Some("contoso-example.mail.protection.outlook.com")
        )
    );
    let log = p.store.audit_log(20, None).await.unwrap();
    assert!(log.iter().any(|e| e.action == "domain-set"
        && e.target == "contoso.example"
        && e.detail.contains("parked")));
    assert_eq!(
        post("customer=Nobody+Inc").await.status,
        404,
        "an unknown customer"
    );
    assert_eq!(p.get("/domains/contoso.example").await.status, 200);
    p.stop().await;
}
