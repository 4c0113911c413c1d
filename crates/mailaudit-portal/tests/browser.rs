//! A real headless Chromium (WebDriver through chromedriver) against the portal: navigation
//! from the fleet to a domain and a check, ticking a checklist item with the form, hostile
//! strings, the 404 page.
//!
//! Needs Chromium and chromedriver (`scripts/install-test-deps.sh`); set
//! `MAILAUDIT_SKIP_BROWSER=1` to skip these where they cannot run (a browser that cannot start
//! fails the tests otherwise, as CI runs them).

use fantoccini::Locator;
use mailaudit_portal::PortalOptions;
use mailaudit_store::ItemState;

use crate::common::{Browser, HOSTILE_CUSTOMER, HOSTILE_DETAIL, HOSTILE_DOMAIN, Portal};

const LOCAL: PortalOptions = PortalOptions::local();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_fleet_to_domain_to_check_and_404() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start(LOCAL).await;
    let c = &b.client;
    c.goto(&p.url("/")).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "Fleet · mailaudit");

    // Every audited domain is listed with its stored score.
    let rows = c.find_all(Locator::Css("tr[data-domain]")).await.unwrap();
    assert_eq!(rows.len(), 4, "four domains listed");
    for (domain, score) in &p.fleet.scores {
        let row = c
            .find(Locator::Css(&format!("tr[data-domain=\"{domain}\"]")))
            .await
            .unwrap();
        let shown = row
            .find(Locator::Css("td.score-cell"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(shown, score.unwrap().to_string(), "{domain}'s score");
    }
    let no_dmarc = c.find(Locator::Id("t-no-dmarc")).await.unwrap();
    assert_eq!(no_dmarc.text().await.unwrap(), "1");

    // Clicking a domain opens its page.
    c.find(Locator::LinkText("contoso.example"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("domain-name"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().as_str(),
        p.url("/domains/contoso.example")
    );
    let h1 = c.find(Locator::Id("domain-name")).await.unwrap();
    assert_eq!(h1.text().await.unwrap(), "contoso.example");
    assert!(
        c.find(Locator::Css("#guide h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Remediation guide for contoso.example")
    );
    // Each block of DNS records comes with its host / type / value table.
    let hosts = c
        .find_all(Locator::Css("#guide table.records tbody tr td:first-child"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for h in hosts {
        seen.push(h.text().await.unwrap());
    }
    assert!(seen.iter().any(|h| h == "_dmarc"), "hosts shown: {seen:?}");

    // A finding links to its check page.
    let link = c
        .find(Locator::Css(
            "#findings tr[data-check=\"SPF-SOFTFAIL\"] a.check",
        ))
        .await
        .unwrap();
    link.click().await.unwrap();
    c.wait().for_element(Locator::Id("check-id")).await.unwrap();
    assert_eq!(
        c.current_url().await.unwrap().as_str(),
        p.url("/checks/SPF-SOFTFAIL")
    );
    let id = c.find(Locator::Id("check-id")).await.unwrap();
    assert_eq!(id.text().await.unwrap(), "SPF-SOFTFAIL");
    let fix = c
        .find(Locator::Id("fix"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fix.contains("-all"), "the fix is shown: {fix}");
    let affected = c.find(Locator::Id("affected")).await.unwrap();
    assert!(
        affected.text().await.unwrap().contains("contoso.example"),
        "the check lists the domains that have it"
    );

    // The customer filter, submitted with the form.
    c.goto(&p.url("/")).await.unwrap();
    let select = c.find(Locator::Id("customer-filter")).await.unwrap();
    select.select_by_label("Contoso Legal").await.unwrap();
    c.find(Locator::Css("form.filter button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The filtered page, not the one the click left (its `h1` is there until it unloads).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("customer=")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the filter form was not submitted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    let rows = c.find_all(Locator::Css("tr[data-domain]")).await.unwrap();
    assert_eq!(rows.len(), 3, "only Contoso Legal's domains");

    // An unknown domain: the 404 page.
    c.goto(&p.url("/domains/unknown.example")).await.unwrap();
    assert_eq!(
        c.find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Not found"
    );
    assert!(
        c.find(Locator::Id("error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("unknown.example")
    );
    b.quit().await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_ticking_a_checklist_item_persists() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start(LOCAL).await;
    let c = &b.client;
    c.goto(&p.url("/domains/fabrikam.example")).await.unwrap();
    let row = c
        .find(Locator::Css("#checklist tr.item[data-state=\"open\"]"))
        .await
        .unwrap();
    let key = row.attr("data-key").await.unwrap().expect("data-key");
    row.find(Locator::Css("input[name=by]"))
        .await
        .unwrap()
        .send_keys("Bob Ray")
        .await
        .unwrap();
    row.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let selector = format!("#checklist tr.item[data-key=\"{key}\"][data-state=\"done\"]");
    c.wait().for_element(Locator::Css(&selector)).await.unwrap();
    // A reload still shows it done, and the store says so.
    c.refresh().await.unwrap();
    let row = c.find(Locator::Css(&selector)).await.unwrap();
    assert!(row.text().await.unwrap().contains("Bob Ray"));
    let progress = c.find(Locator::Id("checklist-progress")).await.unwrap();
    assert!(progress.text().await.unwrap().starts_with("1/"));
    let items = p.store.checklist("fabrikam.example").await.unwrap();
    let item = items.iter().find(|i| i.key == key).unwrap();
    assert_eq!(item.state, ItemState::Done);
    assert_eq!(item.by.as_deref(), Some("Bob Ray"));

    // Reopen it from the browser.
    let row = c.find(Locator::Css(&selector)).await.unwrap();
    row.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(&format!(
            "#checklist tr.item[data-key=\"{key}\"][data-state=\"open\"]"
        )))
        .await
        .unwrap();
    let items = p.store.checklist("fabrikam.example").await.unwrap();
    assert_eq!(
        items.iter().find(|i| i.key == key).unwrap().state,
        ItemState::Open
    );
    b.quit().await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_renders_hostile_strings_as_text() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start(LOCAL).await;
    let c = &b.client;
    // Through the fleet page's link, as a technician would.
    c.goto(&p.url("/")).await.unwrap();
    let heads = c
        .find_all(Locator::Css("#customers tr[data-customer] td:first-child"))
        .await
        .unwrap();
    let mut texts = Vec::new();
    for h in heads {
        texts.push(h.text().await.unwrap());
    }
    assert!(
        texts.iter().any(|t| t == HOSTILE_CUSTOMER),
        "the hostile customer name is shown as text: {texts:?}"
    );
    c.find(Locator::LinkText(HOSTILE_DOMAIN))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("domain-name"))
        .await
        .unwrap();
    assert_eq!(
        c.find(Locator::Id("domain-name"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        HOSTILE_DOMAIN
    );
    let detail = c
        .find(Locator::Css(
            "#findings tr[data-check=\"SPF-SYNTAX\"] td.detail",
        ))
        .await
        .unwrap();
    assert_eq!(detail.text().await.unwrap(), HOSTILE_DETAIL);
    for page in [p.url("/"), c.current_url().await.unwrap().to_string()] {
        c.goto(&page).await.unwrap();
        // No injected element, no script element at all, no alert.
        for css in [
            "#injected",
            "#injected-svg",
            "#injected-customer",
            "script",
            "img",
            "svg:not(.chart)",
        ] {
            let found = c.find_all(Locator::Css(css)).await.unwrap();
            assert!(found.is_empty(), "{page}: {css} injected");
        }
        match c.get_alert_text().await {
            Err(e) if e.is_no_such_alert() => {}
            other => panic!("{page}: an alert is open: {other:?}"),
        }
    }
    b.quit().await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_reports_tab_shows_sources_verdict_and_tls() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start(LOCAL).await;
    let c = &b.client;
    c.goto(&p.url("/domains/contoso.example")).await.unwrap();
    // The domain's tab bar leads to its reports.
    c.find(Locator::LinkText("Reports"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("readiness"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().as_str(),
        p.url("/domains/contoso.example/reports")
    );
    let verdict = c.find(Locator::Id("readiness")).await.unwrap();
    assert_eq!(
        verdict.attr("data-ready").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        verdict
            .text()
            .await
            .unwrap()
            .contains("Ready to move to p=quarantine")
    );
    let sources = c.find_all(Locator::Css("tr.source")).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(
        sources[0].attr("data-source").await.unwrap().as_deref(),
        Some("Microsoft 365")
    );
    let failed = c.find(Locator::Id("tls-failed")).await.unwrap();
    assert_eq!(failed.text().await.unwrap(), "5 (5%)");
    // The hostile reporter name is text, not markup.
    assert!(
        c.find_all(Locator::Id("injected-reporter"))
            .await
            .unwrap()
            .is_empty()
    );
    // The period links: a week is not enough data.
    c.find(Locator::LinkText("7 days"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#readiness[data-ready=\"false\"]"))
        .await
        .unwrap();
    assert_eq!(
        c.find(Locator::Id("period"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "7 days"
    );
    b.quit().await;
    p.stop().await;
}

/// Signs `user` in through the form the portal shows, from wherever the browser is.
async fn sign_in(c: &fantoccini::Client, p: &Portal, user: &str) {
    c.goto(&p.url("/login")).await.unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(crate::common::password(user))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("signed-in"))
        .await
        .unwrap();
    let who = c.find(Locator::Id("signed-in")).await.unwrap();
    assert!(who.text().await.unwrap().starts_with(user));
}

/// Clicks "Log out" and checks the browser is back at the sign-in page, and that the fleet
/// now sends it there too.
async fn log_out(c: &fantoccini::Client, p: &Portal) {
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("sign-in")).await.unwrap();
    c.goto(&p.url("/")).await.unwrap();
    c.wait().for_element(Locator::Id("sign-in")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&p.url("/login?next="))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_each_role_signs_in_and_sees_what_is_theirs() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start_with_users(LOCAL).await;
    let c = &b.client;

    // Nobody signed in: the fleet sends the browser to sign in, and back after.
    c.goto(&p.url("/domains/contoso.example")).await.unwrap();
    c.wait().for_element(Locator::Id("sign-in")).await.unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("ann")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("not the password")
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("error")).await.unwrap();
    assert_eq!(
        c.find(Locator::Id("error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Wrong name or password."
    );
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(crate::common::password("ann"))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("domain-name"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().as_str(),
        p.url("/domains/contoso.example"),
        "back where the browser was going"
    );

    // The viewer: its customer's domains only, no checklist forms, another customer's domain
    // typed in the address bar is "not found".
    c.goto(&p.url("/")).await.unwrap();
    let rows = c.find_all(Locator::Css("tr[data-domain]")).await.unwrap();
    assert_eq!(rows.len(), 3, "Contoso Legal's three domains");
    c.goto(&p.url("/domains/fabrikam.example")).await.unwrap();
    assert!(
        c.find_all(Locator::Css("#checklist form"))
            .await
            .unwrap()
            .is_empty(),
        "read-only"
    );
    c.goto(&p.url("/domains/%3Cscript%3Ealert%281%29%3C%2Fscript%3E.example"))
        .await
        .unwrap();
    assert_eq!(
        c.find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Not found"
    );
    assert!(
        c.find_all(Locator::LinkText("Users"))
            .await
            .unwrap()
            .is_empty(),
        "no admin menu"
    );
    log_out(c, &p).await;

    // The technician ticks an item; a reload shows it kept, by the technician's name.
    sign_in(c, &p, "tech").await;
    c.goto(&p.url("/domains/fabrikam.example")).await.unwrap();
    let row = c
        .find(Locator::Css("#checklist tr.item[data-state=\"open\"]"))
        .await
        .unwrap();
    let key = row.attr("data-key").await.unwrap().expect("data-key");
    assert!(
        row.find_all(Locator::Css("input[name=by]"))
            .await
            .unwrap()
            .is_empty(),
        "the signed-in name is recorded: no name to type"
    );
    row.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let done = format!("#checklist tr.item[data-key=\"{key}\"][data-state=\"done\"]");
    c.wait().for_element(Locator::Css(&done)).await.unwrap();
    c.refresh().await.unwrap();
    let row = c.find(Locator::Css(&done)).await.unwrap();
    assert!(row.text().await.unwrap().contains("tech, "));
    log_out(c, &p).await;

    // The admin sees it in the audit log.
    sign_in(c, &p, "root").await;
    c.find(Locator::LinkText("Audit log"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("audit")).await.unwrap();
    let entries = c
        .find_all(Locator::Css("#audit tr.entry[data-action=\"checklist\"]"))
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let text = entries[0].text().await.unwrap();
    assert!(
        text.contains("tech") && text.contains(&format!("fabrikam.example {key}")),
        "{text}"
    );
    log_out(c, &p).await;
    b.quit().await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_session_ends_when_left_idle() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start_with_users(PortalOptions {
        session_idle_secs: 2,
        ..LOCAL
    })
    .await;
    let c = &b.client;
    sign_in(c, &p, "tech").await;
    c.goto(&p.url("/checks")).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "Checks · mailaudit");
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    c.goto(&p.url("/checks")).await.unwrap();
    c.wait().for_element(Locator::Id("sign-in")).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "Sign in · mailaudit");
    b.quit().await;
    p.stop().await;
}

/// Two-factor sign-in in the browser: enrolment from the account page with a code computed by
/// the test from the key the page shows, then signing in with the password and a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_second_factor_enrolment_and_sign_in() {
    use mailaudit_app::accounts::totp_code;
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start_with_users(LOCAL).await;
    let c = &b.client;
    sign_in(c, &p, "tech").await;
    c.find(Locator::Id("account"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("totp-qr")).await.unwrap();
    // The QR code is an SVG drawn by the server, shown without script.
    assert!(
        !c.find_all(Locator::Css("#totp-qr svg path"))
            .await
            .unwrap()
            .is_empty()
    );
    let secret = c
        .find(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = totp_code(&secret, crate::common::now()).unwrap();
    c.find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    c.find(Locator::Id("turn-on"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("recovery-codes"))
        .await
        .unwrap();
    let codes = c
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    log_out(c, &p).await;

    // Password, then the code.
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("tech")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(crate::common::password("tech"))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("verify")).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "Second factor · mailaudit");
    // The app's next code (the enrolment's is used up).
    let code = totp_code(&secret, crate::common::now() + 30).unwrap();
    c.find(Locator::Id("code"))
        .await
        .unwrap()
        .send_keys(&code)
        .await
        .unwrap();
    c.find(Locator::Id("verify"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("totals")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().as_str(), p.url("/"));
    let who = c.find(Locator::Id("signed-in")).await.unwrap();
    assert_eq!(who.text().await.unwrap(), "tech (technician)");
    b.quit().await;
    p.stop().await;
}

/// The text of the element `at` finds (it must be there).
async fn text(c: &fantoccini::Client, at: Locator<'_>) -> String {
    c.find(at).await.unwrap().text().await.unwrap()
}

/// A technician imports an inventory CSV with a bad row (named by its line, the others kept),
/// adds a customer, and moves a domain's DMARC phase; each lands in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_technician_imports_the_inventory_and_moves_a_dmarc_phase() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start_with_users(PortalOptions::local()).await;
    let c = &b.client;
    sign_in(c, &p, "tech").await;
    c.goto(&p.url("/inventory")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fleet.csv");
    std::fs::write(
        &csv,
        "customer,domain,parked\nImported Co,imported-one.example,no\nImported Co,not a domain,no\nImported Co,imported-two.example,yes\n",
    )
    .unwrap();
    c.find(Locator::Css("#import input[type=file]"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("#import button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("import-summary"))
        .await
        .unwrap();
    let summary = text(c, Locator::Id("import-summary")).await;
    assert!(
        summary.contains("added 2") && summary.contains("skipped 1"),
        "{summary}"
    );
    let problem = text(c, Locator::Css("#import-problems li[data-line=\"3\"]")).await;
    assert!(
        problem.starts_with("fleet.csv:3"),
        "the bad row is named by its line: {problem}"
    );
    assert!(p.store.domain("imported-two.example").await.unwrap().parked);
    assert!(p.store.domain("imported-one.example").await.is_ok());

    // The DMARC phase, moved from the domain's page.
    c.goto(&p.url("/domains/contoso.example")).await.unwrap();
    let select = c
        .find(Locator::Css("#dmarc-phase select[name=phase]"))
        .await
        .unwrap();
    select.select_by_value("quarantine").await.unwrap();
    c.find(Locator::Css("#dmarc-phase button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let shown = match c.find(Locator::Id("phase")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if shown == "p=quarantine" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "phase shown: {shown:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = p.store.audit_log(50, None).await.unwrap();
    for action in ["inventory-import", "dmarc-phase"] {
        assert!(
            log.iter().any(|e| e.action == action && e.actor == "tech"),
            "{action} in the audit log"
        );
    }
    b.quit().await;
    p.stop().await;
}

/// "Audit now" from a domain's page: the run is queued, and its page follows it live (the
/// server's events, read by the page's script) while a worker audits and records it, to 100 %
/// and "Complete."; then the domain's history has the new audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_audit_now_shows_live_progress_to_the_end() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start_with_users(PortalOptions::local()).await;
    let c = &b.client;
    sign_in(c, &p, "tech").await;
    c.goto(&p.url("/domains/contoso.example")).await.unwrap();
    let before = p.store.history("contoso.example", 100).await.unwrap().len();
    c.find(Locator::Css("form.audit-now button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#run-progress[data-status=\"running\"]"))
        .await
        .unwrap();
    assert_eq!(text(c, Locator::Id("run-done")).await, "0");
    // A worker, through the store: claims the run's chunk, records the audit under its lease.
    let lease = p
        .store
        .claim_chunk("browser-test-worker", mailaudit_store::now(), 60)
        .await
        .unwrap()
        .expect("the queued chunk");
    assert_eq!(lease.domains, ["contoso.example"]);
    // The page sees the worker while it holds the chunk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = text(c, Locator::Id("run-status")).await;
        if status.contains("browser-test-worker") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker is shown: {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let report = p
        .store
        .latest_result("contoso.example")
        .await
        .unwrap()
        .unwrap()
        .report;
    let now = mailaudit_store::now();
    p.store
        .record_batch(
            lease.run_id,
            &[mailaudit_store::ResultWrite {
                domain: "contoso.example".into(),
                audited_at: now,
                score: report["score"].as_i64(),
                report,
                rollout: None,
                checklist: None,
                states: Vec::new(),
                alert: None,
            }],
            Some(&lease),
            now,
        )
        .await
        .unwrap();
    // The events carry it to the page, which reloads when the run is over.
    c.wait()
        .for_element(Locator::Css("#run-progress[data-status=\"complete\"]"))
        .await
        .unwrap();
    assert_eq!(text(c, Locator::Id("run-percent")).await, "100%");
    assert_eq!(text(c, Locator::Id("run-status")).await, "Complete.");
    assert_eq!(
        p.store.history("contoso.example", 100).await.unwrap().len(),
        before + 1
    );
    let log = p.store.audit_log(50, None).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "audit-now" && e.target == "contoso.example")
    );
    b.quit().await;
    p.stop().await;
}

/// The fleet view's CSV export holds what the page shows, in its order; the customer report
/// opens from the customer's fleet page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_export_matches_the_page_and_the_report_opens() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let p = Portal::start_with_users(PortalOptions::local()).await;
    let c = &b.client;
    sign_in(c, &p, "tech").await;
    c.goto(&p.url("/?sort=name")).await.unwrap();
    let mut shown = Vec::new();
    for row in c.find_all(Locator::Css("tr[data-domain]")).await.unwrap() {
        shown.push(row.attr("data-domain").await.unwrap().unwrap());
    }
    assert_eq!(shown.len(), 4, "{shown:?}");
    let href = c
        .find(Locator::Id("export-csv"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("the export link");
    assert_eq!(href, "/fleet.csv?sort=name");
    let tech = p.login("tech", crate::common::password("tech")).await;
    let csv = p.get_as(&tech, &href).await.body;
    let exported: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(exported, shown, "the export is the page, in its order");

    // The customer's page links to its report, which opens with its sections.
    c.goto(&p.url("/?customer=Contoso%20Legal")).await.unwrap();
    c.find(Locator::Id("customer-report"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("report-title"))
        .await
        .unwrap();
    assert_eq!(
        text(c, Locator::Id("report-title")).await,
        "Email security report for Contoso Legal"
    );
    for section in [
        "posture",
        "progress",
        "found",
        "fixed",
        "remaining",
        "domains",
    ] {
        c.find(Locator::Id(section)).await.unwrap();
    }
    b.quit().await;
    p.stop().await;
}
