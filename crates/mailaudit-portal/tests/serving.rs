//! Serving for real: HTTPS with rustls (and `Secure` cookies), a key file others can read
//! refused, the client's address behind a reverse proxy, the header read timeout and the cap
//! on concurrent connections.

use std::sync::Arc;
use std::time::Duration;

use mailaudit_portal::{Connections, PortalOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Portal, SESSION_COOKIE, password, set_cookie_header};

/// A self-signed certificate for 127.0.0.1 and its key, written to PEM files (the key 0600).
fn certificate(
    dir: &std::path::Path,
) -> (rcgen::Certificate, std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.join("portal.crt");
    let key = dir.join("portal.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (ck.cert, cert, key)
}

/// `GET path` over TLS to the portal, trusting `ca`: the status line and the headers.
async fn https_get(p: &Portal, ca: &rcgen::Certificate, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("a TLS handshake");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        p.addr
    );
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut out))
        .await
        .expect("an answer")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_rustls_and_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let tls = mailaudit_portal::tls_config(&cert, &key).expect("a usable certificate and key");
    let p = Portal::start_with(
        PortalOptions {
            secure_cookies: true,
            ..PortalOptions::local()
        },
        Connections {
            tls: Some(tls),
            ..Connections::default()
        },
    )
    .await;
    crate::common::add_users(p.store.as_ref()).await;
    let r = https_get(&p, &ca, "/healthz").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("ok\n"), "{r}");
    let r = https_get(&p, &ca, "/login").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let cookie = r
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: mailaudit_login=")
        })
        .expect("the login form's cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out)).await;
    assert!(!out.starts_with(b"HTTP/1.1 200"), "{out:?}");
    p.stop().await;

    // A key file that others can read is refused; so is a certificate that is not one.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = mailaudit_portal::tls_config(&cert, &key).expect_err("refused");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = mailaudit_portal::tls_config(&key, &key).expect_err("refused");
    assert!(e.to_string().contains("no certificate"), "{e}");
}

/// Behind a reverse proxy on this machine, the client's address is the one the proxy adds to
/// X-Forwarded-For; otherwise the header is the client's say-so and is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_the_forwarded_address_is_logged() {
    for (behind_proxy, want) in [(true, "203.0.113.9"), (false, "127.0.0.1")] {
        let p = Portal::start_with_users(PortalOptions {
            behind_proxy,
            secure_cookies: behind_proxy,
            ..PortalOptions::local()
        })
        .await;
        let form = p.get("/login").await;
        let nonce = crate::common::hidden(&form.body, "csrf").unwrap();
        let cookie = format!("mailaudit_login={nonce}");
        let body = format!(
            "csrf={nonce}&name=tech&password={}",
            crate::common::enc(password("tech"))
        );
        let r = p
            .request(
                "POST",
                "/login",
                &[
                    ("Cookie", cookie.as_str()),
                    ("X-Forwarded-For", "198.51.100.1, 203.0.113.9"),
                ],
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(
            set_cookie_header(&r, SESSION_COOKIE)
                .unwrap()
                .contains("Secure"),
            behind_proxy
        );
        let log = p.store.audit_log(1, None).await.unwrap();
        assert_eq!(
            (log[0].action.as_str(), log[0].address.as_str()),
            ("login", want)
        );
        p.stop().await;
    }
}

/// A client that sends no complete request head within the header timeout is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_after_the_header_timeout() {
    let p = Portal::start_with(
        PortalOptions::local(),
        Connections {
            header_timeout: Duration::from_secs(1),
            ..Connections::default()
        },
    )
    .await;
    let mut tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    // A generous bound that only catches a hang; the server closes after its timeout.
    let read = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(
        !out.starts_with(b"HTTP/1.1 200"),
        "no request was answered: {out:?}"
    );
    // A whole request is answered as usual.
    assert_eq!(p.get("/healthz").await.status, 200);
    p.stop().await;
}

/// With two connections allowed, a third waits until one of them ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_their_turn() {
    let p = Portal::start_with(
        PortalOptions::local(),
        Connections {
            max: 2,
            ..Connections::default()
        },
    )
    .await;
    // Two connections held open with half a request each.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(tcp);
    }
    let mut third = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection is not served while two are open"
    );
    // One of the two ends: the third is served.
    drop(held.pop());
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), third.read_to_end(&mut out))
        .await
        .expect("served once a connection is free")
        .unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    drop(held);
    p.stop().await;
}
