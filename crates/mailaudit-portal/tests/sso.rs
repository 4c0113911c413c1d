//! Single sign-on through the lab's OpenID Connect provider (`mailaudit_lab::oidc`): HTTPS
//! with a lab CA the portal's client trusts, the plain-HTTP `/authorize` followed here as a
//! browser would. The provider client is `mailaudit-net::oidc`, wired as `mailaudit serve`
//! wires it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailaudit_core::memory::MemoryDns;
use mailaudit_lab::oidc::{LabOidc, LabUser, Mischief};
use mailaudit_net::oidc::{OidcClient, OidcConfig};
use mailaudit_net::smtp::TlsRoots;
use mailaudit_portal::PortalOptions;
use mailaudit_portal::sso::{SingleSignOn, Sso, SsoClaims, SsoFuture, SsoMapping};
use mailaudit_store::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{CUSTOMER, Portal, Response, SESSION_COOKIE, add_users, set_cookie};

const CLIENT_ID: &str = "0c9a7f3e-1111-4000-8000-00000000cafe";
const SECRET: &str = "Lab~Oidc.Secret.0123456789";
const VIEWERS: &str = "6d1f0e52-aaaa-4bbb-8ccc-viewers00001";

struct Provider(OidcClient<MemoryDns>);

impl SingleSignOn for Provider {
    fn authorization_url<'a>(
        &'a self,
        state: &'a str,
        nonce: &'a str,
        code_challenge: &'a str,
    ) -> SsoFuture<'a, String> {
        Box::pin(async move {
            self.0
                .authorization_url(state, nonce, code_challenge)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn exchange<'a>(
        &'a self,
        code: &'a str,
        verifier: &'a str,
        nonce: &'a str,
    ) -> SsoFuture<'a, SsoClaims> {
        Box::pin(async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let c = self
                .0
                .exchange(code, verifier, nonce, now)
                .await
                .map_err(|e| e.to_string())?;
            Ok(SsoClaims {
                subject: c.subject,
                email: c.email,
                groups: c.groups,
                nonce: c.nonce,
            })
        })
    }
}

fn sso_for(lab: &LabOidc, portal: SocketAddr) -> Sso {
    let client = OidcClient::new(
        MemoryDns::default(),
        OidcConfig {
            issuer: lab.issuer().to_string(),
            client_id: CLIENT_ID.into(),
            client_secret: SECRET.into(),
            redirect_uri: format!("http://{portal}/login/sso/callback"),
            roots: TlsRoots::with_ca_pem(lab.ca_pem().as_bytes()).expect("lab CA"),
        },
    )
    .expect("client");
    let mapping = SsoMapping {
        admins: vec!["boss@contoso.example".into()],
        technicians: vec!["helper@contoso.example".into()],
        groups: vec![format!("{VIEWERS}=viewer:{CUSTOMER}").parse().unwrap()],
    };
    Sso::new(Arc::new(Provider(client)), "Microsoft", mapping)
}

async fn start() -> (LabOidc, Portal) {
    let lab = LabOidc::start(CLIENT_ID, SECRET).expect("lab provider");
    let p = Portal::start_sso(
        PortalOptions::local(),
        mailaudit_portal::Connections::default(),
        |addr| Some(sso_for(&lab, addr)),
    )
    .await;
    add_users(p.store.as_ref()).await;
    (lab, p)
}

fn user(email: &str, groups: &[&str]) -> Option<LabUser> {
    Some(LabUser {
        sub: format!("sub-{email}"),
        email: email.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    })
}

/// A plain-HTTP GET of an absolute `http://` URL: status and `Location:`.
async fn follow(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut conn = tokio::net::TcpStream::connect(host).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut raw))
        .await
        .expect("an answer within 20 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let location = text
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap_or("")
        .trim()
        .to_string();
    (status, location)
}

/// The path and query of a URL of the portal.
fn local(p: &Portal, url: &str) -> String {
    url.strip_prefix(&p.url(""))
        .unwrap_or_else(|| panic!("{url} is not the portal's"))
        .to_string()
}

/// Starts a sign-in at the portal and follows the provider's redirect: the callback's path
/// and the state cookie.
async fn to_callback(p: &Portal) -> (String, String) {
    let start = p.get("/login/sso?next=%2Fchecks").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let state = set_cookie(&start, "mailaudit_sso").expect("the state cookie");
    let authorize = start.header("location").unwrap().to_string();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let (status, back) = follow(&authorize).await;
    assert_eq!(status, 302, "the provider sends the browser back");
    (local(p, &back), state)
}

async fn callback(p: &Portal, path: &str, state: &str) -> Response {
    p.request(
        "GET",
        path,
        &[("Cookie", format!("mailaudit_sso={state}").as_str())],
        None,
    )
    .await
}

async fn sso_login(p: &Portal) -> Response {
    let (path, state) = to_callback(p).await;
    callback(p, &path, &state).await
}

fn session_of(r: &Response) -> crate::common::Session {
    let c = set_cookie(r, SESSION_COOKIE).expect("a session cookie");
    crate::common::Session {
        cookie: format!("{SESSION_COOKIE}={c}"),
        csrf: String::new(),
    }
}

async fn audit_details(p: &Portal) -> Vec<(String, String, String)> {
    p.store
        .audit_log(1000, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mapped_role_signs_in_and_an_existing_user_keeps_its_account_without_totp() {
    let (lab, p) = start().await;
    let page = p.get("/login").await;
    assert!(
        page.body.contains("Sign in with Microsoft") && page.body.contains("id=\"sso\""),
        "{}",
        page.body
    );

    // (who, groups) → role created, what /admin/users answers.
    for (email, groups, role, customers, admin_page) in [
        ("Boss@Contoso.example", vec![], Role::Admin, vec![], 200),
        (
            "helper@contoso.example",
            vec![],
            Role::Technician,
            vec![],
            404,
        ),
        (
            "reader@contoso.example",
            vec![VIEWERS],
            Role::Viewer,
            vec![CUSTOMER.to_string()],
            404,
        ),
    ] {
        lab.set_user(user(email, &groups));
        let r = sso_login(&p).await;
        assert_eq!(r.status, 303, "{email}: {}", r.body);
        assert_eq!(r.header("location"), Some("/checks"), "{email}: next kept");
        let s = session_of(&r);
        assert_eq!(p.get_as(&s, "/checks").await.status, 200, "{email}");
        assert_eq!(
            p.get_as(&s, "/admin/users").await.status,
            admin_page,
            "{email}"
        );
        let u = p.store.user(email).await.expect("the user was created");
        assert_eq!((u.role, u.customers), (role, customers), "{email}");
        assert!(u.password_hash.is_none(), "single sign-on only");
    }
    let log = audit_details(&p).await;
    assert!(
        log.iter().any(|(a, act, d)| a == "helper@contoso.example"
            && act == "login"
            && d == "single sign-on"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|(a, act, _)| a == "single sign-on" && act == "user-add"),
        "{log:?}"
    );

    // An existing user, found by e-mail without case, with a second factor: signs in with its
    // own role, no TOTP asked.
    mailaudit_app::accounts::add_user(
        p.store.as_ref(),
        &mailaudit_app::accounts::Actor::cli(),
        "Ops@Contoso.example",
        Role::Technician,
        &[],
        None,
        crate::common::now(),
    )
    .await
    .unwrap();
    p.store
        .set_second_factor(
            "Ops@Contoso.example",
            Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
            &[],
            crate::common::now(),
        )
        .await
        .unwrap();
    lab.set_user(user("ops@contoso.example", &[]));
    let r = sso_login(&p).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("/checks"),
        "no second-factor step"
    );
    let s = session_of(&r);
    let fleet = p.get_as(&s, "/").await;
    assert_eq!(fleet.status, 200, "a whole session: {}", fleet.body);
    assert_eq!(
        p.store.user("Ops@Contoso.example").await.unwrap().role,
        Role::Technician
    );
    assert_eq!(lab.tokens(), 4);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_states_and_unknown_users_are_refused_without_a_session() {
    let (lab, p) = start().await;
    lab.set_user(user("boss@contoso.example", &[]));
    // A good sign-in first: its nonce is the one replayed below.
    let first = sso_login(&p).await;
    assert_eq!(first.status, 303, "{}", first.body);

    for (m, why) in [
        (Mischief::WrongAudience, "wrong audience"),
        (Mischief::Expired, "expired"),
        (Mischief::OtherKey, "bad signature"),
        (Mischief::ReplayNonce, "wrong nonce"),
    ] {
        lab.set_mischief(m);
        let r = sso_login(&p).await;
        assert_eq!(r.status, 401, "{m:?}: {}", r.body);
        assert!(r.body.contains(why), "{m:?}: {}", r.body);
        assert_eq!(set_cookie(&r, SESSION_COOKIE), None, "{m:?}: no session");
    }
    lab.set_mischief(Mischief::None);

    // The state must be the browser's own, and is good once.
    let (path, state) = to_callback(&p).await;
    let forged = callback(&p, &path, "someone-elses-state").await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert_eq!(set_cookie(&forged, SESSION_COOKIE), None);
    let no_cookie = p.get(&path).await;
    assert_eq!(no_cookie.status, 400, "{}", no_cookie.body);
    let ok = callback(&p, &path, &state).await;
    assert_eq!(ok.status, 303, "the browser's own state: {}", ok.body);
    let again = callback(&p, &path, &state).await;
    assert_eq!(again.status, 400, "a callback replayed: {}", again.body);
    assert_eq!(set_cookie(&again, SESSION_COOKIE), None);

    // Someone neither in the store nor mapped.
    lab.set_user(user("stranger@fabrikam.example", &["some-other-group"]));
    let r = sso_login(&p).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("has no account on this portal"),
        "{}",
        r.body
    );
    assert_eq!(set_cookie(&r, SESSION_COOKIE), None);
    assert!(p.store.user("stranger@fabrikam.example").await.is_err());

    // The provider refusing (no user signed in there).
    lab.set_user(None);
    let r = sso_login(&p).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("access_denied"), "{}", r.body);

    let failed: Vec<String> = audit_details(&p)
        .await
        .into_iter()
        .filter(|(_, act, _)| act == "login-failed")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(failed.len(), 9, "{failed:?}");
    assert!(
        failed.iter().all(|d| d.starts_with("single sign-on: ")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|d| d.contains("stranger@fabrikam.example")),
        "{failed:?}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_single_sign_on_there_is_no_button_and_no_route() {
    let p = Portal::start_with_users(PortalOptions::local()).await;
    let page = p.get("/login").await;
    assert!(!page.body.contains("id=\"sso\""), "{}", page.body);
    assert_eq!(p.get("/login/sso").await.status, 404);
    assert_eq!(
        p.get("/login/sso/callback?code=x&state=y").await.status,
        404
    );
    p.stop().await;
}

/// A real headless Chromium signs in through the lab provider: the portal sends it to the
/// provider's `/authorize` (plain HTTP on loopback, so the browser needs no lab CA), which
/// sends it straight back; the portal's client alone talks to the provider over HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_through_the_provider() {
    let Some(b) = crate::common::Browser::start().await else {
        return;
    };
    let (lab, p) = start().await;
    lab.set_user(user("helper@contoso.example", &[]));
    let c = &b.client;
    c.goto(&p.url("/domains/contoso.example")).await.unwrap();
    // Signed out: the sign-in page, then its single sign-on button.
    c.find(fantoccini::Locator::Id("sso"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let who = c
        .wait()
        .for_element(fantoccini::Locator::Id("signed-in"))
        .await
        .expect("signed in");
    assert_eq!(
        who.attr("data-role").await.unwrap().as_deref(),
        Some("technician")
    );
    assert!(who.text().await.unwrap().contains("helper@contoso.example"));
    assert_eq!(
        c.current_url().await.unwrap().as_str(),
        p.url("/domains/contoso.example"),
        "back where the browser was going"
    );
    assert_eq!(lab.authorizations(), 1);
    assert_eq!(lab.tokens(), 1);
    b.quit().await;
    p.stop().await;
}

/// Failed single sign-ons count against the client's address like failed passwords: past the
/// address's free failures, starting another waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_single_sign_ons_throttle_the_address() {
    let (lab, p) = start().await;
    lab.set_user(user("boss@contoso.example", &[]));
    for _ in 0..mailaudit_portal::auth::FREE_ADDRESS_FAILURES {
        let r = callback(&p, "/login/sso/callback?code=x&state=forged", "other").await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let r = p.get("/login/sso").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(lab.authorizations(), 0);
    p.stop().await;
}
