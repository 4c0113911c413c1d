//! The OpenID Connect client against the lab provider (`mailaudit_lab::oidc`) over HTTPS on
//! loopback: discovery and the JWKS cached, the JWKS read again once for a key it does not
//! hold, the code exchanged with PKCE and the client secret, and every bad token refused.

use std::time::Duration;

use mailaudit_core::memory::MemoryDns;
use mailaudit_lab::oidc::{LabOidc, LabUser, Mischief};
use mailaudit_net::NetError;
use mailaudit_net::oidc::{OidcClient, OidcConfig};
use mailaudit_net::smtp::TlsRoots;

const CLIENT_ID: &str = "0c9a7f3e-2222-4000-8000-00000000beef";
const SECRET: &str = "Lab~Oidc.Secret.abcdefghij";
const REDIRECT: &str = "http://127.0.0.1:9/login/sso/callback";

fn client(lab: &LabOidc, secret: &str, roots: TlsRoots) -> OidcClient<MemoryDns> {
    OidcClient::new(
        MemoryDns::default(),
        OidcConfig {
            issuer: lab.issuer().to_string(),
            client_id: CLIENT_ID.into(),
            client_secret: secret.into(),
            redirect_uri: REDIRECT.into(),
            roots,
        },
    )
    .expect("client")
}

fn lab_roots(lab: &LabOidc) -> TlsRoots {
    TlsRoots::with_ca_pem(lab.ca_pem().as_bytes()).expect("lab CA")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The browser's part: `/authorize` followed to the redirect URI, the code it carries.
async fn authorize(url: &str) -> String {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").expect("plain HTTP on loopback");
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = std::net::TcpStream::connect(host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let location = text
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .expect("a redirect")
            .to_string();
        assert!(location.starts_with(REDIRECT), "{location}");
        let query = location.split_once('?').unwrap().1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("a code")
    })
    .await
    .unwrap()
}

async fn sign_in(
    c: &OidcClient<MemoryDns>,
    nonce: &str,
) -> Result<mailaudit_net::oidc::IdClaims, NetError> {
    let verifier = format!("verifier-of-{nonce}-0123456789012345678901234567890");
    let challenge = mailaudit_app_pkce(&verifier);
    let url = c.authorization_url("st", nonce, &challenge).await?;
    let code = authorize(&url).await;
    c.exchange(&code, &verifier, nonce, now()).await
}

/// RFC 7636 S256 (the portal's is `mailaudit_app::accounts::pkce_challenge`).
fn mailaudit_app_pkce(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

#[tokio::test]
async fn a_code_becomes_validated_claims_and_the_jwks_is_read_again_for_a_new_key() {
    let lab = LabOidc::start(CLIENT_ID, SECRET).unwrap();
    lab.set_user(Some(LabUser {
        sub: "abc".into(),
        email: "Ann@Contoso.example".into(),
        groups: vec!["g1".into(), "g2".into()],
    }));
    let c = client(&lab, SECRET, lab_roots(&lab));
    let claims = sign_in(&c, "nonce-1").await.expect("signed in");
    assert_eq!(claims.subject, "abc");
    assert_eq!(claims.email.as_deref(), Some("Ann@Contoso.example"));
    assert_eq!(claims.groups, ["g1", "g2"]);
    assert_eq!(claims.nonce, "nonce-1");
    sign_in(&c, "nonce-2").await.expect("again");
    assert_eq!(
        (lab.discoveries(), lab.jwks_fetches()),
        (1, 1),
        "both cached"
    );

    // A key rollover: the token names a kid the cached JWKS lacks; read once more.
    lab.rotate_key("lab-key-2").unwrap();
    sign_in(&c, "nonce-3").await.expect("after the rollover");
    assert_eq!(lab.jwks_fetches(), 2);

    // A token signed by a key the JWKS does not publish: refused (and the JWKS is not read
    // again, the kid being known).
    lab.set_mischief(Mischief::OtherKey);
    let e = sign_in(&c, "nonce-4").await.unwrap_err();
    assert!(
        matches!(&e, NetError::IdToken(w) if w == "bad signature"),
        "{e}"
    );
    assert_eq!(lab.jwks_fetches(), 2);
    // A token whose address the provider says is unverified: signed in, but with no address
    // to match a user by.
    lab.set_mischief(Mischief::UnverifiedEmail);
    let claims = sign_in(&c, "nonce-6").await.expect("a good token");
    assert_eq!((claims.subject.as_str(), claims.email), ("abc", None));
    for (m, why) in [
        (Mischief::WrongAudience, "wrong audience"),
        (Mischief::Expired, "expired"),
        (Mischief::ReplayNonce, "wrong nonce"),
    ] {
        lab.set_mischief(m);
        let e = sign_in(&c, "nonce-5").await.unwrap_err();
        assert!(matches!(&e, NetError::IdToken(w) if w == why), "{m:?}: {e}");
    }
}

#[tokio::test]
async fn a_wrong_secret_an_untrusted_ca_and_a_wrong_verifier_are_refused() {
    let lab = LabOidc::start(CLIENT_ID, SECRET).unwrap();
    lab.set_user(Some(LabUser {
        sub: "abc".into(),
        email: "ann@contoso.example".into(),
        groups: vec![],
    }));
    let e = sign_in(&client(&lab, "wrong secret", lab_roots(&lab)), "n")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid_client"), "{e}");

    // The web PKI roots alone do not trust the lab CA: the discovery fails on TLS.
    let before = lab.discoveries();
    let e = client(&lab, SECRET, TlsRoots::webpki())
        .authorization_url("s", "n", "c")
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::Oidc(_)), "{e}");
    assert_eq!(lab.discoveries(), before, "no request got through");

    let c = client(&lab, SECRET, lab_roots(&lab));
    let url = c
        .authorization_url("s", "n", &mailaudit_app_pkce("the right verifier"))
        .await
        .unwrap();
    let code = authorize(&url).await;
    let e = c
        .exchange(&code, "another verifier", "n", now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid_grant"), "{e}");
    assert_eq!(
        lab.refused().last().map(String::as_str),
        Some("PKCE verifier")
    );

    // Only https:// issuers.
    let e = OidcClient::new(
        MemoryDns::default(),
        OidcConfig {
            issuer: "http://127.0.0.1:1".into(),
            client_id: CLIENT_ID.into(),
            client_secret: SECRET.into(),
            redirect_uri: REDIRECT.into(),
            roots: TlsRoots::webpki(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");
}
