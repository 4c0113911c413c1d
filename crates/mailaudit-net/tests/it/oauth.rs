//! OAuth 2.0 for the IMAP client against real components on loopback: the lab's authorization
//! server (`mailaudit_lab::oauth::LabOAuth`: client credentials token endpoint over HTTPS with a
//! lab CA, introspection over HTTP) and a real Dovecot whose `oauth2` password database asks
//! that introspection endpoint. Tokens are fetched with `request_token`, then used with
//! `AUTHENTICATE XOAUTH2` (SASL-IR) and `AUTHENTICATE OAUTHBEARER` (continuation, SASL-IR not
//! announced); refused tokens go through the server's error challenge; the token endpoint's
//! refusals and a certificate it cannot prove are clear errors without the secret.
//!
//! Needs Dovecot (`scripts/install-test-deps.sh`); `MAILAUDIT_SKIP_DOVECOT=1` skips the Dovecot
//! parts on a machine without it.

use std::time::Duration;

use mailaudit_core::imap::ImapUrl;
use mailaudit_lab::Zone;
use mailaudit_lab::dovecot::{DovecotConfig, DovecotLab};
use mailaudit_lab::oauth::{LabOAuth, OAuthLabConfig};
use mailaudit_net::imap::{ImapError, ImapOptions, Session};
use mailaudit_net::oauth2::{
    AccessToken, ClientCredentials, MICROSOFT_IMAP_SCOPE, TokenError, TokenOptions, TokenProvider,
    TokenSource, request_token,
};
use mailaudit_net::smtp::TlsRoots;

const USER: &str = "dmarc@contoso.test";
const CLIENT_ID: &str = "6f1c1a2e-0000-4000-8000-00000000abcd";
const SECRET: &str = "Lab~Secret.0123456789";

fn authority(lifetime: Duration) -> LabOAuth {
    LabOAuth::start(OAuthLabConfig::new(CLIENT_ID, SECRET, USER).with_lifetime(lifetime))
        .expect("lab authorization server")
}

fn creds(lab: &LabOAuth, secret: &str) -> ClientCredentials {
    ClientCredentials {
        token_url: lab.token_url("contoso.onmicrosoft.com"),
        client_id: CLIENT_ID.into(),
        client_secret: secret.into(),
        scope: MICROSOFT_IMAP_SCOPE.into(),
    }
}

fn token_opts(lab: &LabOAuth) -> TokenOptions {
    TokenOptions {
        timeout: Duration::from_secs(10),
        ..TokenOptions::new(TlsRoots::with_ca_pem(lab.ca_pem().as_bytes()).expect("lab CA"))
    }
}

fn dovecot(config: DovecotConfig) -> Option<DovecotLab> {
    mailaudit_lab::or_skip(DovecotLab::start(&config), "MAILAUDIT_SKIP_DOVECOT")
}

fn url(addr: std::net::SocketAddr) -> ImapUrl {
    ImapUrl::parse(&format!("imap://{}@{addr}/INBOX", USER.replace('@', "%40"))).expect("URL")
}

fn imap_opts() -> ImapOptions {
    ImapOptions {
        allow_plaintext: true,
        timeout: Duration::from_secs(10),
        ..ImapOptions::new(TlsRoots::webpki())
    }
}

#[tokio::test]
async fn xoauth2_with_sasl_ir_logs_in_and_a_revoked_token_is_refused_through_the_challenge() {
    let auth = authority(Duration::from_secs(3600));
    let Some(imap) =
        dovecot(DovecotConfig::new(USER, "unused-password").with_oauth2(auth.introspection_url()))
    else {
        return;
    };
    let (_lab_dns, dns) = crate::lab(Zone::default()).await;
    let token = request_token(&dns, &creds(&auth, SECRET), &token_opts(&auth))
        .await
        .expect("a token");
    assert_eq!(token.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(auth.issued(), 1);
    let req = &auth.requests()[0];
    assert_eq!(req.path, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
    assert_eq!(req.grant_type.as_deref(), Some("client_credentials"));
    assert_eq!(req.scope.as_deref(), Some(MICROSOFT_IMAP_SCOPE));
    assert!(req.secret_ok);

    let mut s = Session::connect(&url(imap.addr()), &dns, &imap_opts())
        .await
        .expect("connect");
    assert!(
        s.has("SASL-IR") && s.has("AUTH=XOAUTH2"),
        "{:?}",
        s.capabilities()
    );
    s.authenticate_oauth(USER, token.secret())
        .await
        .expect("XOAUTH2 login");
    let info = s.select("INBOX", true).await.expect("EXAMINE");
    assert_eq!(info.exists, 0);
    s.logout().await;
    assert!(auth.introspections() >= 1);

    // Revoked: Dovecot's introspection says inactive, the server sends its error challenge,
    // the client acknowledges it and gets the tagged NO.
    auth.revoke_all();
    let mut s = Session::connect(&url(imap.addr()), &dns, &imap_opts())
        .await
        .expect("connect");
    let err = s
        .authenticate_oauth(USER, token.secret())
        .await
        .expect_err("revoked token refused");
    assert!(matches!(err, ImapError::Login { .. }), "{err}");
    assert!(!err.is_connection());
    let text = err.to_string();
    assert!(
        text.contains("AUTHENTICATIONFAILED")
            && text.contains("XOAUTH2 error challenge: status 401"),
        "{text}"
    );
    assert!(!text.contains(token.secret()), "{text}");
    // The session is still usable for another attempt, with a fresh token.
    let fresh = request_token(&dns, &creds(&auth, SECRET), &token_opts(&auth))
        .await
        .expect("a second token");
    s.authenticate_oauth(USER, fresh.secret())
        .await
        .expect("login with the fresh token");
    s.logout().await;
    let log = imap.log();
    assert!(log.contains("method=XOAUTH2"), "{log}");
    assert!(
        !log.contains(token.secret()),
        "the token is in Dovecot's log"
    );
}

#[tokio::test]
async fn oauthbearer_through_a_continuation_when_xoauth2_and_sasl_ir_are_absent() {
    let auth = authority(Duration::from_secs(3600));
    let mut config =
        DovecotConfig::new(USER, "unused-password").with_oauth2(auth.introspection_url());
    if let Some(o) = config.oauth2.as_mut() {
        o.mechanisms = vec!["oauthbearer".into()];
    }
    config.imap_capability = Some("IMAP4rev1 LITERAL+ ID ENABLE IDLE".into());
    let Some(imap) = dovecot(config) else { return };
    let (_lab_dns, dns) = crate::lab(Zone::default()).await;
    let given = AccessToken::given(&auth.mint()).expect("token");
    let mut s = Session::connect(&url(imap.addr()), &dns, &imap_opts())
        .await
        .expect("connect");
    assert!(
        !s.has("SASL-IR") && !s.has("AUTH=XOAUTH2"),
        "{:?}",
        s.capabilities()
    );
    assert!(s.has("AUTH=OAUTHBEARER"), "{:?}", s.capabilities());
    let err = s
        .authenticate_oauth(USER, "not.a.token")
        .await
        .expect_err("unknown token");
    assert!(
        err.to_string()
            .contains("OAUTHBEARER error challenge: status invalid_token"),
        "{err}"
    );
    s.authenticate_oauth(USER, given.secret())
        .await
        .expect("OAUTHBEARER login");
    s.select("INBOX", true).await.expect("EXAMINE");
    s.logout().await;
    assert!(imap.log().contains("method=OAUTHBEARER"), "{}", imap.log());
    // Nothing was fetched from the token endpoint: the token was given.
    assert_eq!(auth.issued(), 0);
}

#[tokio::test]
async fn a_password_only_server_cannot_take_a_token() {
    let Some(imap) = dovecot(DovecotConfig::new(USER, "pw-only")) else {
        return;
    };
    let (_lab_dns, dns) = crate::lab(Zone::default()).await;
    let mut s = Session::connect(&url(imap.addr()), &dns, &imap_opts())
        .await
        .expect("connect");
    let err = s
        .authenticate_oauth(USER, "abc")
        .await
        .expect_err("no mechanism");
    assert!(matches!(err, ImapError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("AUTH=XOAUTH2"), "{err}");
    s.logout().await;
}

#[tokio::test]
async fn token_endpoint_refusals_and_certificates_are_clear_errors_without_the_secret() {
    let auth = authority(Duration::from_secs(3600));
    let (_lab_dns, dns) = crate::lab(Zone::default()).await;
    let wrong = "Wrong~Secret.987654321";
    let err = request_token(&dns, &creds(&auth, wrong), &token_opts(&auth))
        .await
        .expect_err("wrong secret");
    let text = err.to_string();
    assert!(
        matches!(&err, TokenError::Refused { status: 401, error: Some(e), .. } if e == "invalid_client"),
        "{err:?}"
    );
    assert!(
        text.contains("AADSTS7000215: Invalid client secret provided"),
        "{text}"
    );
    assert!(
        text.contains(&auth.token_url("contoso.onmicrosoft.com")),
        "{text}"
    );
    assert!(
        !text.contains(wrong) && !format!("{err:?}").contains(wrong),
        "{text}"
    );
    assert!(!err.is_retryable());

    let mut bad_scope = creds(&auth, SECRET);
    bad_scope.scope = "https://outlook.office365.com/IMAP.AccessAsApp".into();
    let err = request_token(&dns, &bad_scope, &token_opts(&auth))
        .await
        .expect_err("scope");
    assert!(
        err.to_string().contains("invalid_scope: AADSTS1002012"),
        "{err}"
    );
    assert_eq!(auth.issued(), 0);

    // Without the lab CA the endpoint's certificate is not trusted.
    let err = request_token(
        &dns,
        &creds(&auth, SECRET),
        &TokenOptions::new(TlsRoots::webpki()),
    )
    .await
    .expect_err("untrusted");
    assert!(matches!(err, TokenError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
    // http:// is refused before anything is sent.
    let mut plain = creds(&auth, SECRET);
    plain.token_url = plain.token_url.replace("https://", "http://");
    let err = request_token(&dns, &plain, &token_opts(&auth))
        .await
        .expect_err("http");
    assert!(err.to_string().contains("only https://"), "{err}");
    assert_eq!(auth.requests().len(), 2, "{:?}", auth.requests());
}

#[tokio::test]
async fn the_provider_reuses_a_fresh_token_and_renews_it_before_expiry() {
    let auth = authority(Duration::from_secs(2));
    let (_lab_dns, dns) = crate::lab(Zone::default()).await;
    let mut p = TokenProvider::new(
        TokenSource::ClientCredentials(creds(&auth, SECRET)),
        token_opts(&auth),
    );
    assert!(p.can_refresh() && p.refresh_due());
    let (first, fresh) = p.token(&dns).await.expect("first");
    assert!(fresh);
    let (again, fresh) = p.token(&dns).await.expect("cached");
    assert!(!fresh);
    assert_eq!(again.secret(), first.secret());
    assert_eq!(auth.issued(), 1);
    // A 2 s token is renewed half a second before its end.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(p.refresh_due());
    let (second, fresh) = p.token(&dns).await.expect("renewed");
    assert!(fresh);
    assert_ne!(second.secret(), first.secret());
    // Refused: forgotten, a new one next time.
    p.invalidate();
    let (third, fresh) = p.token(&dns).await.expect("after a refusal");
    assert!(fresh && third.secret() != second.secret());
    assert_eq!((auth.issued(), p.fetched()), (3, 3));

    let given = TokenProvider::new(
        TokenSource::Given(AccessToken::given("static.token").expect("token")),
        token_opts(&auth),
    );
    assert!(!given.can_refresh() && !given.refresh_due());
}
