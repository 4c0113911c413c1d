//! Portal accounts over plain HTTP: every route × every role, a viewer's isolation, CSRF
//! refusals, the login throttle, session fixation, cookie attributes, expiry and revocation,
//! the audit log and its CSV, and user management by admins.

use std::collections::HashMap;

use mailaudit_portal::PortalOptions;
use mailaudit_store::ItemState;

use crate::common::{
    CUSTOMER, HOSTILE_CUSTOMER, LOGIN_COOKIE, Portal, Response, SESSION_COOKIE, Session, enc,
    hidden, password, set_cookie, set_cookie_header,
};

const LOCAL: PortalOptions = PortalOptions::local();

/// The roles of the matrix; `None` is nobody signed in.
const ROLES: [Option<&str>; 4] = [None, Some("ann"), Some("tech"), Some("root")];

/// A route of the router: its method and path pattern.
type Route = (&'static str, &'static str);
/// What a route is asked with and answers: a concrete path, a form body, and the status for
/// nobody, a viewer, a technician and an admin.
type Expect = (String, String, [u16; 4]);

/// The hostile domain's URL segment.
const HOSTILE_SEG: &str = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E.example";

/// A second-factor key for the enrolment entry of the route table.
const ENROL_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// A six-digit code that is not `secret`'s now (nor a step before or after).
fn wrong_code(secret: &str) -> String {
    let now = crate::common::now();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !mailaudit_app::accounts::verify_totp(secret, c, now))
        .expect("a wrong code")
}

/// An open checklist item of `domain`.
async fn open_item(p: &Portal, domain: &str) -> String {
    p.store
        .checklist(domain)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.state == ItemState::Open)
        .expect("an open item")
        .key
}

/// Every route of the router (`pages::routes()`), asked by nobody, a viewer of Contoso Legal,
/// a technician and an admin: the status each gets. A route without an entry here fails the
/// test: a new route must say who may use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_role() {
    let p = Portal::start_with_users(LOCAL).await;
    // A user for the admin routes to change, and a report of the viewer's customer.
    mailaudit_app::accounts::add_user(
        p.store.as_ref(),
        &mailaudit_app::accounts::Actor::cli(),
        "temp",
        mailaudit_store::Role::Technician,
        &[],
        Some("temp password 1"),
        1,
    )
    .await
    .unwrap();
    let report = p.store.reports(Some("contoso.example"), 1).await.unwrap()[0].id;
    let item = open_item(&p, "contoso.example").await;
    // (method, route) → (path, form body, [nobody, viewer, technician, admin]).
    let table: Vec<(Route, Expect)> = vec![
        (
            ("GET", "/"),
            ("/".into(), String::new(), [303, 200, 200, 200]),
        ),
        (
            ("GET", "/customers"),
            ("/customers".into(), String::new(), [303, 200, 200, 200]),
        ),
        (
            ("GET", "/customers/{name}/report"),
            (
                format!("/customers/{}/report", enc(CUSTOMER)),
                String::new(),
                [303, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/fleet.csv"),
            ("/fleet.csv".into(), String::new(), [303, 200, 200, 200]),
        ),
        (
            ("GET", "/fleet.json"),
            ("/fleet.json".into(), String::new(), [303, 200, 200, 200]),
        ),
        (
            ("GET", "/healthz"),
            ("/healthz".into(), String::new(), [200; 4]),
        ),
        (
            ("GET", "/assets/portal.css"),
            ("/assets/portal.css".into(), String::new(), [200; 4]),
        ),
        (
            ("GET", "/api/v1/fleet"),
            ("/api/v1/fleet".into(), String::new(), [401, 200, 200, 200]),
        ),
        (
            ("GET", "/api/v1/customers"),
            (
                "/api/v1/customers".into(),
                String::new(),
                [401, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/api/v1/domains/{domain}"),
            (
                "/api/v1/domains/contoso.example".into(),
                String::new(),
                [401, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/api/v1/domains/{domain}/checklist"),
            (
                "/api/v1/domains/contoso.example/checklist".into(),
                String::new(),
                [401, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/api/v1/domains/{domain}/reports"),
            (
                "/api/v1/domains/contoso.example/reports".into(),
                String::new(),
                [401, 200, 200, 200],
            ),
        ),
        (
            ("POST", "/account/tokens"),
            (
                "/account/tokens".into(),
                "label=matrix".into(),
                [403, 200, 200, 200],
            ),
        ),
        (
            ("POST", "/account/tokens/{id}/revoke"),
            (
                "/account/tokens/999999/revoke".into(),
                String::new(),
                [403, 404, 404, 404],
            ),
        ),
        (
            ("GET", "/assets/progress.js"),
            ("/assets/progress.js".into(), String::new(), [200; 4]),
        ),
        (
            ("POST", "/audits"),
            (
                "/audits".into(),
                "domain=contoso.example".into(),
                [403, 404, 303, 303],
            ),
        ),
        (
            ("GET", "/runs/{id}"),
            ("/runs/1".into(), String::new(), [303, 404, 200, 200]),
        ),
        (
            ("GET", "/runs/{id}/events"),
            ("/runs/1/events".into(), String::new(), [303, 404, 200, 200]),
        ),
        (
            ("GET", "/login"),
            ("/login".into(), String::new(), [200; 4]),
        ),
        // A login post without the form's cookie is refused for everyone.
        (
            ("POST", "/login"),
            ("/login".into(), "name=tech&password=x".into(), [403; 4]),
        ),
        (
            ("POST", "/logout"),
            ("/logout".into(), String::new(), [403, 303, 303, 303]),
        ),
        // Only a session waiting for its second factor has a use for these: the others are
        // sent on.
        (
            ("GET", "/login/totp"),
            ("/login/totp".into(), String::new(), [303; 4]),
        ),
        (
            ("POST", "/login/totp"),
            (
                "/login/totp".into(),
                "code=123456".into(),
                [403, 303, 303, 303],
            ),
        ),
        // Without single sign-on configured, its routes do not exist (tests/sso.rs has them
        // with a provider).
        (
            ("GET", "/login/sso"),
            ("/login/sso".into(), String::new(), [404; 4]),
        ),
        (
            ("GET", "/login/sso/callback"),
            (
                "/login/sso/callback?code=x&state=y".into(),
                String::new(),
                [404; 4],
            ),
        ),
        (
            ("GET", "/account"),
            ("/account".into(), String::new(), [303, 200, 200, 200]),
        ),
        // A code that does not match the key: refused, nothing turned on.
        (
            ("POST", "/account/totp"),
            (
                "/account/totp".into(),
                format!("secret={ENROL_SECRET}&code={}", wrong_code(ENROL_SECRET)),
                [403, 400, 400, 400],
            ),
        ),
        // A wrong current password: refused, nothing changed.
        (
            ("POST", "/account/password"),
            (
                "/account/password".into(),
                "current=not+it&new=a+new+password+1".into(),
                [403, 400, 400, 400],
            ),
        ),
        (
            ("POST", "/admin/settings"),
            (
                "/admin/settings".into(),
                "require_second_factor=no".into(),
                [403, 404, 404, 303],
            ),
        ),
        (
            ("GET", "/checks"),
            ("/checks".into(), String::new(), [303, 200, 200, 200]),
        ),
        (
            ("GET", "/checks/{id}"),
            (
                "/checks/SPF-SOFTFAIL".into(),
                String::new(),
                [303, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/domains/{domain}"),
            (
                "/domains/contoso.example".into(),
                String::new(),
                [303, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/domains/{domain}/guide"),
            (
                "/domains/contoso.example/guide".into(),
                String::new(),
                [303, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/domains/{domain}/reports"),
            (
                "/domains/contoso.example/reports".into(),
                String::new(),
                [303, 200, 200, 200],
            ),
        ),
        (
            ("GET", "/reports/{id}/raw"),
            (
                format!("/reports/{report}/raw"),
                String::new(),
                [303, 200, 200, 200],
            ),
        ),
        (
            ("POST", "/domains/{domain}/checklist/{key}"),
            (
                format!("/domains/contoso.example/checklist/{item}"),
                "state=done".into(),
                [403, 403, 303, 303],
            ),
        ),
        (
            ("GET", "/schedules"),
            ("/schedules".into(), String::new(), [303, 404, 200, 200]),
        ),
        (
            ("POST", "/schedules"),
            (
                "/schedules".into(),
                "scope=fleet&every=7d".into(),
                [403, 404, 303, 303],
            ),
        ),
        (
            ("POST", "/schedules/pause"),
            (
                "/schedules/pause".into(),
                "scope=fleet".into(),
                [403, 404, 303, 303],
            ),
        ),
        (
            ("POST", "/schedules/resume"),
            (
                "/schedules/resume".into(),
                "scope=fleet".into(),
                [403, 404, 303, 303],
            ),
        ),
        (
            ("POST", "/schedules/remove"),
            (
                "/schedules/remove".into(),
                format!("scope={}", enc(&format!("customer:{CUSTOMER}"))),
                [403, 404, 404, 404],
            ),
        ),
        (
            ("GET", "/inventory"),
            ("/inventory".into(), String::new(), [303, 404, 200, 200]),
        ),
        (
            ("POST", "/inventory/customers"),
            (
                "/inventory/customers".into(),
                "name=Matrix+Co".into(),
                [403, 404, 200, 200],
            ),
        ),
        (
            ("POST", "/inventory/domains"),
            (
                "/inventory/domains".into(),
                "domains=matrix.example".into(),
                [403, 404, 200, 200],
            ),
        ),
        (
            ("POST", "/inventory/import"),
            (
                "/inventory/import".into(),
                "file=not-multipart".into(),
                [403, 404, 400, 400],
            ),
        ),
        (
            ("POST", "/inventory/exo"),
            (
                "/inventory/exo".into(),
                "file=not-multipart".into(),
                [403, 404, 400, 400],
            ),
        ),
        (
            ("POST", "/domains/{domain}/edit"),
            (
                "/domains/contoso.example/edit".into(),
                format!("customer={}&tenant=contoso", enc(CUSTOMER)),
                [403, 404, 303, 303],
            ),
        ),
        (
            ("POST", "/domains/{domain}/dmarc-phase"),
            (
                "/domains/contoso.example/dmarc-phase".into(),
                "phase=quarantine".into(),
                [403, 404, 303, 303],
            ),
        ),
        (
            ("GET", "/admin/users"),
            ("/admin/users".into(), String::new(), [303, 404, 404, 200]),
        ),
        (
            ("POST", "/admin/users"),
            (
                "/admin/users".into(),
                "name=added&role=technician&password=added+password+1".into(),
                [403, 404, 404, 303],
            ),
        ),
        (
            ("POST", "/admin/users/{name}/role"),
            (
                "/admin/users/temp/role".into(),
                format!("role=viewer&customer={}", enc(CUSTOMER)),
                [403, 404, 404, 303],
            ),
        ),
        (
            ("POST", "/admin/users/{name}/password"),
            (
                "/admin/users/temp/password".into(),
                "password=another+password+1".into(),
                [403, 404, 404, 303],
            ),
        ),
        (
            ("POST", "/admin/users/{name}/reset-2fa"),
            (
                "/admin/users/temp/reset-2fa".into(),
                String::new(),
                [403, 404, 404, 303],
            ),
        ),
        (
            ("POST", "/admin/users/{name}/remove"),
            (
                "/admin/users/temp/remove".into(),
                String::new(),
                [403, 404, 404, 303],
            ),
        ),
        (
            ("GET", "/admin/audit"),
            ("/admin/audit".into(), String::new(), [303, 404, 404, 200]),
        ),
        (
            ("GET", "/admin/audit.csv"),
            (
                "/admin/audit.csv".into(),
                String::new(),
                [303, 404, 404, 200],
            ),
        ),
    ];
    let table: HashMap<Route, Expect> = table.into_iter().collect();
    let routes = mailaudit_portal::pages::routes();
    let mut missing = Vec::new();
    for (method, route, _) in &routes {
        if !table.contains_key(&(method.as_str(), *route)) {
            missing.push(format!("{method} {route}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an entry in the authorisation table: {missing:?}"
    );
    assert_eq!(table.len(), routes.len(), "every entry names a route");

    let mut sessions: HashMap<&str, Session> = HashMap::new();
    for user in ROLES.into_iter().flatten() {
        sessions.insert(user, p.login(user, password(user)).await);
    }
    for (method, route, _) in &routes {
        let (path, body, want) = &table[&(method.as_str(), *route)];
        for (i, user) in ROLES.iter().enumerate() {
            // Logging out ends the session: a session of its own.
            let session = match user {
                Some(u) if *route == "/logout" => Some(p.login(u, password(u)).await),
                Some(u) => Some(sessions[u].clone()),
                None => None,
            };
            let r = match (method.as_str(), &session) {
                ("GET", Some(s)) => p.get_as(s, path).await,
                ("GET", None) => p.get(path).await,
                (_, Some(s)) => p.post_as(s, path, body).await,
                (_, None) => {
                    let origin = format!("http://{}", p.addr);
                    p.request("POST", path, &[("Origin", origin.as_str())], Some(body))
                        .await
                }
            };
            assert_eq!(
                r.status,
                want[i],
                "{method} {path} as {}: {}",
                user.unwrap_or("nobody"),
                r.body
            );
            if r.status == 303 && user.is_none() {
                assert!(
                    r.header("location").unwrap().starts_with("/login?next="),
                    "{path}"
                );
            }
        }
    }
    // What the inventory writes did, and that they are in the audit log.
    assert!(p.store.customer("Matrix Co").await.is_ok());
    assert!(p.store.domain("matrix.example").await.is_ok());
    assert_eq!(
        p.store
            .dmarc_rollout("contoso.example")
            .await
            .unwrap()
            .map(|r| r.phase),
        Some("quarantine".to_string())
    );
    let log = p.store.audit_log(200, None).await.unwrap();
    for action in ["customer-add", "domain-add", "dmarc-phase"] {
        assert!(
            log.iter().any(|e| e.action == action && e.actor == "tech"),
            "{action} by tech in the audit log"
        );
    }
    // What the writes did: the technician's tick, the admin's changes.
    let ticked = p.store.checklist("contoso.example").await.unwrap();
    let ticked = ticked.iter().find(|i| i.key == item).unwrap();
    assert_eq!(ticked.state, ItemState::Done);
    assert_eq!(
        ticked.by.as_deref(),
        Some("tech"),
        "the technician's tick, by its name (the admin's found it done already)"
    );
    assert!(p.store.user("added").await.is_ok());
    assert!(p.store.user("temp").await.is_err(), "removed by the admin");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_only_its_customer_and_404_elsewhere() {
    let p = Portal::start_with_users(LOCAL).await;
    let ann = p.login("ann", password("ann")).await;
    let fleet = p.get_as(&ann, "/").await.body;
    for d in ["contoso.example", "fabrikam.example", "unaudited.example"] {
        assert!(
            fleet.contains(&format!("data-domain=\"{d}\"")),
            "{d}: {fleet}"
        );
    }
    assert!(
        !fleet.contains(HOSTILE_SEG) && !fleet.contains("alert(1)"),
        "{fleet}"
    );
    assert!(
        !fleet.contains("Evil"),
        "no other customer in the filter: {fleet}"
    );
    assert!(fleet.contains("ann (viewer)"), "who is signed in: {fleet}");
    // Another customer's domain, guide and reports: the 404 of a domain that does not exist.
    let unknown = p.get_as(&ann, "/domains/unknown.example").await;
    assert_eq!(unknown.status, 404);
    for path in [
        format!("/domains/{HOSTILE_SEG}"),
        format!("/domains/{HOSTILE_SEG}/guide"),
        format!("/domains/{HOSTILE_SEG}/reports"),
    ] {
        let r = p.get_as(&ann, &path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.body.replace(
                "&lt;script&gt;alert(1)&lt;/script&gt;.example",
                "unknown.example"
            ),
            unknown.body,
            "{path}: the same page as for a domain that does not exist"
        );
    }
    let other = format!("/?customer={}", enc(HOSTILE_CUSTOMER));
    assert_eq!(p.get_as(&ann, &other).await.status, 404);
    let own = format!("/?customer={}", enc(CUSTOMER));
    assert_eq!(p.get_as(&ann, &own).await.status, 200);
    // A tick on another customer's domain: not found, not forbidden.
    let key = "dmarc-publish";
    let r = p
        .post_as(
            &ann,
            &format!("/domains/{HOSTILE_SEG}/checklist/{key}"),
            "state=done",
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // No check page lists another customer's domains.
    let check = p.get_as(&ann, "/checks/SPF-SYNTAX").await.body;
    assert!(!check.contains("alert(1)"), "{check}");

    // The other viewer: contoso.example's report file is not found, like a report that does
    // not exist; its own domain is there.
    let eve = p.login("eve", password("eve")).await;
    let report = p.store.reports(Some("contoso.example"), 1).await.unwrap()[0].id;
    let r = p.get_as(&eve, &format!("/reports/{report}/raw")).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body.replace(
            &format!("report {report} not found"),
            "report 999999 not found"
        ),
        p.get_as(&eve, "/reports/999999/raw").await.body
    );
    assert_eq!(p.get_as(&eve, "/domains/contoso.example").await.status, 404);
    assert_eq!(
        p.get_as(&eve, &format!("/domains/{HOSTILE_SEG}"))
            .await
            .status,
        200
    );
    let fleet = p.get_as(&eve, "/").await.body;
    assert!(!fleet.contains("contoso.example"), "{fleet}");
    // A viewer's pages have no checklist forms: read-only.
    let page = p.get_as(&ann, "/domains/contoso.example").await.body;
    assert!(page.contains("id=\"checklist\""));
    assert!(
        !page.contains("/checklist/"),
        "no checklist form for a viewer"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_need_the_sessions_csrf_token() {
    let p = Portal::start_with_users(LOCAL).await;
    let tech = p.login("tech", password("tech")).await;
    let root = p.login("root", password("root")).await;
    let key = open_item(&p, "fabrikam.example").await;
    let path = format!("/domains/fabrikam.example/checklist/{key}");
    let origin = format!("http://{}", p.addr);
    let cookie = tech.cookie.as_str();
    for (headers, body, why) in [
        (
            vec![("Cookie", cookie)],
            "state=done".to_string(),
            "no token",
        ),
        (
            vec![("Cookie", cookie), ("Origin", origin.as_str())],
            "state=done&csrf=wrong".to_string(),
            "a wrong token",
        ),
        (
            vec![("Cookie", cookie), ("Origin", origin.as_str())],
            format!("state=done&csrf={}", enc(&root.csrf)),
            "another session's token",
        ),
        (
            vec![("Cookie", cookie), ("Origin", "http://evil.example")],
            format!("state=done&csrf={}", enc(&tech.csrf)),
            "the right token from another origin",
        ),
        (
            vec![("Origin", origin.as_str())],
            format!("state=done&csrf={}", enc(&tech.csrf)),
            "the right token without the session",
        ),
    ] {
        let r = p.request("POST", &path, &headers, Some(&body)).await;
        assert_eq!(r.status, 403, "{why}: {}", r.body);
    }
    let state = || async {
        p.store
            .checklist("fabrikam.example")
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.key == key)
            .unwrap()
            .state
    };
    assert_eq!(
        state().await,
        ItemState::Open,
        "refused posts change nothing"
    );
    // The session's own token: accepted, with or without an Origin header.
    let r = p
        .request(
            "POST",
            &path,
            &[("Cookie", cookie)],
            Some(&format!("state=done&csrf={}", enc(&tech.csrf))),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(state().await, ItemState::Done);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_account_and_per_address() {
    let p = Portal::start_with_users(LOCAL).await;
    for i in 0..5 {
        let r = p.try_login("tech", "wrong password!", None).await;
        assert_eq!(r.status, 401, "failure {i}");
        assert!(r.body.contains("Wrong name or password."), "{}", r.body);
        assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    }
    // Locked: even the right password waits, and the page says for how long.
    let r = p.try_login("tech", password("tech"), None).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.body
            .contains("Sign-in is locked: try again in 1 minute ("),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    // Other accounts are not locked by it (the address has failed 5 times of its 20).
    p.login("root", password("root")).await;
    // An unknown name fails the same way as a wrong password, and counts against the address.
    for i in 0..15 {
        let r = p
            .try_login(&format!("nobody{i}"), "wrong password!", None)
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = p.try_login("ann", password("ann"), None).await;
    assert_eq!(r.status, 429, "the address is locked now: {}", r.body);
    let log = p.store.audit_log(100, None).await.unwrap();
    let count = |a: &str| log.iter().filter(|e| e.action == a).count();
    assert_eq!(count("login-failed"), 20);
    assert_eq!(count("login-refused"), 2);
    assert!(
        log.iter()
            .all(|e| !e.detail.contains("wrong password!") && !e.target.contains("wrong")),
        "no password in the log"
    );
    assert!(
        log.iter().any(|e| e.action == "login-failed"
            && e.actor == "nobody0"
            && e.address == "127.0.0.1")
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_makes_a_new_session_with_safe_cookies() {
    let p = Portal::start_with_users(LOCAL).await;
    // The login form's cookie.
    let form = p.get("/login").await;
    let h = set_cookie_header(&form, LOGIN_COOKIE).unwrap();
    assert!(
        h.contains("HttpOnly") && h.contains("SameSite=Lax") && !h.contains("Secure"),
        "{h}"
    );
    // The form shown again to the same browser (another tab; Chromium's request for
    // /favicon.ico lands there too) keeps its token, so the first form still works.
    let nonce = set_cookie(&form, LOGIN_COOKIE).unwrap();
    assert_eq!(hidden(&form.body, "csrf").as_deref(), Some(nonce.as_str()));
    let cookie = format!("{LOGIN_COOKIE}={nonce}");
    let again = p
        .request("GET", "/login", &[("Cookie", cookie.as_str())], None)
        .await;
    assert_eq!(hidden(&again.body, "csrf").as_deref(), Some(nonce.as_str()));
    // A login post whose token is not its cookie's is refused.
    let other = if nonce.starts_with('x') { 'y' } else { 'x' };
    let body = format!(
        "csrf={other}{}&name=tech&password={}",
        &nonce[1..],
        enc(password("tech"))
    );
    let r = p
        .request(
            "POST",
            "/login",
            &[("Cookie", cookie.as_str())],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A session id planted in the browser before sign-in (fixation) is not the one after.
    let planted = "planted-session-id-0123456789";
    let r = p
        .try_login(
            "tech",
            password("tech"),
            Some(&format!("{SESSION_COOKIE}={planted}")),
        )
        .await;
    assert_eq!(r.status, 303);
    let h = set_cookie_header(&r, SESSION_COOKIE).unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(h.contains(attr), "{attr}: {h}");
    }
    assert!(!h.contains("Secure"), "plain HTTP: {h}");
    let token = set_cookie(&r, SESSION_COOKIE).unwrap();
    assert_ne!(token, planted);
    assert!(token.len() >= 43, "{token}");
    // A second sign-in from the same browser: another id, and the first one ends.
    let first = Session {
        cookie: format!("{SESSION_COOKIE}={token}"),
        csrf: String::new(),
    };
    assert_eq!(p.get_as(&first, "/").await.status, 200);
    let r = p
        .try_login("tech", password("tech"), Some(&first.cookie))
        .await;
    let second = set_cookie(&r, SESSION_COOKIE).unwrap();
    assert_ne!(second, token);
    assert_eq!(
        p.get_as(&first, "/").await.status,
        303,
        "the old session ended"
    );
    // Over HTTPS (a TLS listener or a proxy), cookies are Secure.
    let secure = Portal::start_with_users(PortalOptions {
        secure_cookies: true,
        ..LOCAL
    })
    .await;
    let r = secure.try_login("tech", password("tech"), None).await;
    assert!(
        set_cookie_header(&r, SESSION_COOKIE)
            .unwrap()
            .contains("; Secure")
    );
    secure.stop().await;
    // A `next` that leaves the portal goes to the fleet instead.
    let form = p.get("/login?next=//evil.example/").await;
    assert_eq!(hidden(&form.body, "next").as_deref(), Some("/"));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_logout_expiry_and_password_or_role_change() {
    let p = Portal::start_with_users(PortalOptions {
        session_idle_secs: 3,
        session_max_secs: 6,
        ..LOCAL
    })
    .await;
    let signed_out = |r: &Response| r.status == 303;
    let second = std::time::Duration::from_secs(1);
    // Idle: three seconds unused (times are whole seconds).
    let s = p.login("tech", password("tech")).await;
    tokio::time::sleep(second * 4 + second / 5).await;
    assert!(signed_out(&p.get_as(&s, "/").await), "idle session ended");
    // Absolute: used every second, over six seconds after sign-in all the same.
    let s = p.login("tech", password("tech")).await;
    let start = std::time::Instant::now();
    while start.elapsed() < second * 4 {
        assert_eq!(p.get_as(&s, "/").await.status, 200, "{:?}", start.elapsed());
        tokio::time::sleep(second).await;
    }
    while start.elapsed() < second * 7 + second / 2 {
        tokio::time::sleep(second).await;
        let _ = p.get_as(&s, "/").await;
    }
    assert!(signed_out(&p.get_as(&s, "/").await), "absolute expiry");
    p.stop().await;

    let p = Portal::start_with_users(LOCAL).await;
    // Logout: the session ends, the cookie is expired, and the old cookie no longer works.
    let s = p.login("tech", password("tech")).await;
    let r = p.post_as(&s, "/logout", "").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert!(
        set_cookie_header(&r, SESSION_COOKIE)
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(signed_out(&p.get_as(&s, "/").await));
    // A password change (here by an admin) and a role change end the user's sessions.
    let root = p.login("root", password("root")).await;
    let s = p.login("tech", password("tech")).await;
    let r = p
        .post_as(
            &root,
            "/admin/users/tech/password",
            "password=a+brand+new+one",
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(signed_out(&p.get_as(&s, "/").await), "password change");
    let s = p.login("tech", "a brand new one").await;
    let r = p
        .post_as(
            &root,
            "/admin/users/tech/role",
            &format!("role=viewer&customer={}", enc(CUSTOMER)),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(signed_out(&p.get_as(&s, "/").await), "role change");
    // Signed in again, the new role applies.
    let s = p.login("tech", "a brand new one").await;
    assert_eq!(
        p.get_as(&s, &format!("/domains/{HOSTILE_SEG}"))
            .await
            .status,
        404
    );
    // The admin's own session lives on.
    assert_eq!(p.get_as(&root, "/admin/users").await.status, 200);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_and_exports_what_happened() {
    let p = Portal::start_with_users(LOCAL).await;
    let _ = p.try_login("tech", "wrong password!", None).await;
    let tech = p.login("tech", password("tech")).await;
    let key = open_item(&p, "contoso.example").await;
    let r = p
        .post_as(
            &tech,
            &format!("/domains/contoso.example/checklist/{key}"),
            "state=done",
        )
        .await;
    assert_eq!(r.status, 303);
    let root = p.login("root", password("root")).await;
    let r = p
        .post_as(
            &root,
            "/admin/users",
            &format!(
                "name=zoe&role=viewer&customer={}&password=zoe+password+12",
                enc(CUSTOMER)
            ),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Refused changes say why, and change nothing: the last admin stays, weak passwords fail.
    let r = p.post_as(&root, "/admin/users/root/remove", "").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("only admin"), "{}", r.body);
    let r = p
        .post_as(
            &root,
            "/admin/users",
            "name=weak&role=technician&password=short",
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(p.store.user("weak").await.is_err());
    // The new viewer signs in and sees its customer.
    let zoe = p.login("zoe", "zoe password 12").await;
    assert_eq!(p.get_as(&zoe, "/domains/contoso.example").await.status, 200);

    let page = p.get_as(&root, "/admin/audit").await;
    assert_eq!(page.status, 200);
    for part in [
        "<td class=\"actor\">tech</td><td class=\"action\">login-failed</td>",
        "<td class=\"actor\">tech</td><td class=\"action\">login</td>",
        &format!(
            "<td class=\"actor\">tech</td><td class=\"action\">checklist</td><td class=\"target\">contoso.example {key}</td><td class=\"detail\">done</td><td>127.0.0.1</td>"
        ),
        "<td class=\"actor\">root</td><td class=\"action\">user-add</td><td class=\"target\">zoe</td><td class=\"detail\">viewer of Contoso Legal</td>",
        "<td class=\"actor\">command line</td><td class=\"action\">user-add</td><td class=\"target\">root</td>",
    ] {
        assert!(page.body.contains(part), "{part}: {}", page.body);
    }
    let csv = p.get_as(&root, "/admin/audit.csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .starts_with("attachment;"),
        "a download"
    );
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next(),
        Some("time,unix_time,actor,action,target,detail,address")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(
        rows.len(),
        p.store.audit_log(1000, None).await.unwrap().len()
    );
    assert!(
        rows.iter().any(|l| l.contains(&format!(
            ",tech,checklist,contoso.example {key},done,127.0.0.1"
        ))),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|l| l.ends_with(",root,user-add,zoe,viewer of Contoso Legal,127.0.0.1")),
        "{rows:?}"
    );
    p.stop().await;
}

/// Two-factor sign-in: enrolment with a code computed here (RFC 6238, from the key the page
/// shows), then sign-in in two steps with a new session id at each, a wrong code refused, and
/// a recovery code that works once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_enrolment_sign_in_and_recovery_codes() {
    use mailaudit_app::accounts::totp_code;
    let p = Portal::start_with_users(LOCAL).await;
    let tech = p.login("tech", password("tech")).await;
    let page = p.get_as(&tech, "/account").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<dd id=\"second-factor\">off</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<div class=\"qr\" id=\"totp-qr\"><svg"),
        "an inline QR code"
    );
    let secret = hidden(&page.body, "secret").expect("the key");
    // A wrong code turns nothing on.
    let r = p
        .post_as(
            &tech,
            "/account/totp",
            &format!("secret={secret}&code={}", wrong_code(&secret)),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(p.store.user("tech").await.unwrap().totp_secret.is_none());
    let enrol_code = totp_code(&secret, crate::common::now()).unwrap();
    let r = p
        .post_as(
            &tech,
            "/account/totp",
            &format!("secret={secret}&code={enrol_code}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let recovery: Vec<String> = r
        .body
        .split("<li class=\"recovery-code\"><code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10, "{}", r.body);
    let stored = p.store.user("tech").await.unwrap();
    assert_eq!(stored.totp_secret.as_deref(), Some(secret.as_str()));
    assert!(
        stored.recovery_codes.iter().all(|h| !recovery.contains(h)),
        "only hashes are stored"
    );
    // The session goes on; the account says so.
    let page = p.get_as(&tech, "/account").await.body;
    assert!(page.contains("<dd id=\"second-factor\">on</dd>"), "{page}");

    // Signing in again: the password opens a pending session that reaches nothing else.
    let r = p.try_login("tech", password("tech"), None).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login/totp?next=%2F"));
    let pending = Session {
        cookie: format!(
            "{SESSION_COOKIE}={}",
            set_cookie(&r, SESSION_COOKIE).unwrap()
        ),
        csrf: String::new(),
    };
    for path in ["/", "/domains/contoso.example", "/account"] {
        let r = p.get_as(&pending, path).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/login/totp"), "{path}");
    }
    let form = p.get_as(&pending, "/login/totp").await;
    assert_eq!(form.status, 200);
    let pending = Session {
        csrf: hidden(&form.body, "csrf").expect("the form's CSRF token"),
        ..pending
    };
    let key = open_item(&p, "contoso.example").await;
    let r = p
        .post_as(
            &pending,
            &format!("/domains/contoso.example/checklist/{key}"),
            "state=done",
        )
        .await;
    assert_eq!(r.status, 403, "a pending session changes nothing");
    let r = p
        .post_as(
            &pending,
            "/login/totp",
            &format!("code={}&next=%2F", wrong_code(&secret)),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Wrong code."));
    // The enrolment's code is used up: the app's next code (a step later, within the
    // window of one step either way).
    let r = p
        .post_as(
            &pending,
            "/login/totp",
            &format!("code={enrol_code}&next=%2F"),
        )
        .await;
    assert_eq!(r.status, 401, "the enrolment's code again: {}", r.body);
    let code = totp_code(&secret, crate::common::now() + 30).unwrap();
    let r = p
        .post_as(&pending, "/login/totp", &format!("code={code}&next=%2F"))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let full = set_cookie(&r, SESSION_COOKIE).unwrap();
    assert!(
        !pending.cookie.ends_with(&full),
        "a new session id after the second factor"
    );
    assert_eq!(
        p.get_as(&pending, "/").await.header("location"),
        Some("/login?next=%2F")
    );
    let full = Session {
        cookie: format!("{SESSION_COOKIE}={full}"),
        csrf: String::new(),
    };
    assert_eq!(p.get_as(&full, "/").await.status, 200);
    // The same code a second time (seen over a shoulder): refused.
    let r = p.try_login("tech", password("tech"), None).await;
    let again = Session {
        cookie: format!(
            "{SESSION_COOKIE}={}",
            set_cookie(&r, SESSION_COOKIE).unwrap()
        ),
        csrf: String::new(),
    };
    let form = p.get_as(&again, "/login/totp").await;
    let again = Session {
        csrf: hidden(&form.body, "csrf").unwrap(),
        ..again
    };
    let r = p
        .post_as(&again, "/login/totp", &format!("code={code}"))
        .await;
    assert_eq!(r.status, 401, "a replayed code: {}", r.body);

    // A recovery code instead of the app's code: once.
    for (attempt, want) in [(0, 303), (1, 401)] {
        let r = p.try_login("tech", password("tech"), None).await;
        let pending = Session {
            cookie: format!(
                "{SESSION_COOKIE}={}",
                set_cookie(&r, SESSION_COOKIE).unwrap()
            ),
            csrf: String::new(),
        };
        let form = p.get_as(&pending, "/login/totp").await;
        let pending = Session {
            csrf: hidden(&form.body, "csrf").unwrap(),
            ..pending
        };
        let r = p
            .post_as(
                &pending,
                "/login/totp",
                &format!("code={}", enc(&recovery[3].to_uppercase())),
            )
            .await;
        assert_eq!(r.status, want, "attempt {attempt}: {}", r.body);
    }
    assert_eq!(p.store.user("tech").await.unwrap().recovery_codes.len(), 9);
    let log = p.store.audit_log(100, None).await.unwrap();
    let details: Vec<&str> = log
        .iter()
        .filter(|e| e.actor == "tech" && e.action.starts_with("login"))
        .map(|e| e.detail.as_str())
        .collect();
    assert!(
        details.contains(&"password and second factor"),
        "{details:?}"
    );
    assert!(
        details.contains(&"password and recovery code"),
        "{details:?}"
    );
    assert!(details.contains(&"wrong second-factor code"), "{details:?}");
    assert!(
        log.iter()
            .any(|e| e.action == "second-factor-on" && e.target == "tech")
    );
    p.stop().await;
}

/// When admins require a second factor, an admin or technician without one can reach only
/// its account page until it has one; viewers are not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_can_require_a_second_factor_of_staff() {
    let p = Portal::start_with_users(LOCAL).await;
    let root = p.login("root", password("root")).await;
    let r = p
        .post_as(&root, "/admin/settings", "require_second_factor=yes")
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The admin itself, on its next request.
    let r = p.get_as(&root, "/admin/users").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/account")));
    let tech = p.login_to("tech", password("tech"), "/account").await;
    let r = p.get_as(&tech, "/").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/account")));
    let key = open_item(&p, "contoso.example").await;
    let r = p
        .post_as(
            &tech,
            &format!("/domains/contoso.example/checklist/{key}"),
            "state=done",
        )
        .await;
    assert_eq!(r.status, 403);
    let page = p.get_as(&tech, "/account").await;
    assert_eq!(page.status, 200);
    let secret = hidden(&page.body, "secret").unwrap();
    let code = mailaudit_app::accounts::totp_code(&secret, crate::common::now()).unwrap();
    let r = p
        .post_as(
            &tech,
            "/account/totp",
            &format!("secret={secret}&code={code}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        p.get_as(&tech, "/").await.status,
        200,
        "set up: everything again"
    );
    // Viewers are not asked.
    let ann = p.login("ann", password("ann")).await;
    assert_eq!(p.get_as(&ann, "/").await.status, 200);
    // An admin turns a lost second factor off: the user's sessions end, and it must set one
    // up again.
    p.store
        .set_setting("require_second_factor", "no")
        .await
        .unwrap();
    let users = p.get_as(&root, "/admin/users").await.body;
    assert!(
        users.contains("action=\"/admin/users/tech/reset-2fa\""),
        "{users}"
    );
    let r = p.post_as(&root, "/admin/users/tech/reset-2fa", "").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(p.store.user("tech").await.unwrap().totp_secret.is_none());
    assert_eq!(p.get_as(&tech, "/").await.status, 303, "its sessions ended");
    let log = p.store.audit_log(1, None).await.unwrap();
    assert_eq!(
        (
            log[0].actor.as_str(),
            log[0].action.as_str(),
            log[0].target.as_str()
        ),
        ("root", "second-factor-off", "tech")
    );
    p.stop().await;
}

/// A user changes its own password: the current one is checked (a wrong one counts as a
/// failed sign-in), every session of the user ends, and the new one signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_change_their_own_password() {
    let p = Portal::start_with_users(LOCAL).await;
    let ann = p.login("ann", password("ann")).await;
    let other = p.login("ann", password("ann")).await;
    let r = p
        .post_as(
            &ann,
            "/account/password",
            "current=wrong&new=a+new+password+1",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        p.store
            .login_failures("user:ann")
            .await
            .unwrap()
            .unwrap()
            .failures,
        1
    );
    let r = p
        .post_as(
            &ann,
            "/account/password",
            &format!("current={}&new=short", enc(password("ann"))),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("at least 12"), "{}", r.body);
    let r = p
        .post_as(
            &ann,
            "/account/password",
            &format!("current={}&new=a+new+password+1", enc(password("ann"))),
        )
        .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    for s in [&ann, &other] {
        assert_eq!(p.get_as(s, "/").await.status, 303, "every session ended");
    }
    assert_eq!(p.try_login("ann", password("ann"), None).await.status, 401);
    p.login("ann", "a new password 1").await;
    let log = p.store.audit_log(100, None).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "user-password" && e.actor == "ann" && e.target == "ann")
    );
    assert!(
        log.iter()
            .any(|e| e.action == "password-change-failed" && e.actor == "ann")
    );
    p.stop().await;
}
