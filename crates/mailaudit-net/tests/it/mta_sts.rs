//! The MTA-STS policy fetch over real sockets: a TLS server on 127.0.0.1 with a certificate from
//! a test CA made here (rcgen), passed through the CA-file option, and the lab DNS server
//! answering for `mta-sts.contoso.test`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailaudit_core::checks::{Area, CheckId};
use mailaudit_lab::{LabDns, LabRecord, Zone};
use mailaudit_net::Resolver;
use mailaudit_net::https::{self, FetchError, HttpsOptions, Part, Stage, TransportError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const DOMAIN: &str = "contoso.test";
const HOST: &str = "mta-sts.contoso.test";
const MX: &str = "contoso-test.mail.protection.outlook.com";
const POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: *.mail.protection.outlook.com\r\nmax_age: 604800\r\n";

/// A CA made for this test run, written to a PEM file.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    file: PathBuf,
}

impl TestCa {
    fn new() -> TestCa {
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mailaudit test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let file = std::env::temp_dir().join(format!(
            "mailaudit-https-ca-{}-{}.pem",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&file, cert.pem()).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            file,
        }
    }

    /// A leaf certificate for `names`, expired when asked.
    fn leaf(
        &self,
        names: &[&str],
        expired: bool,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    fn options(&self, port: u16) -> HttpsOptions {
        let mut opts = HttpsOptions::with_ca_file(Some(&self.file)).expect("CA file loads");
        opts.port = port;
        opts.timeout = Duration::from_secs(5);
        opts.connect_timeout = Duration::from_secs(2);
        opts
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// What the policy server does on each connection.
#[derive(Clone)]
enum Serve {
    /// Complete the handshake, read the request, send these octets, close.
    Raw(Vec<u8>),
    /// Complete the handshake, read the request, then never answer.
    Hang,
    /// Accept the TCP connection and never speak (no TLS handshake).
    Silent,
}

fn response(status: &str, headers: &[&str], body: &str) -> Serve {
    let mut raw = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    Serve::Raw(raw.into_bytes())
}

fn ok(body: &str) -> Serve {
    response(
        "200 OK",
        &[
            "Content-Type: text/plain; charset=utf-8",
            &format!("Content-Length: {}", body.len()),
        ],
        body,
    )
}

/// A policy server on 127.0.0.1:0. The requests it read are kept in `requests`.
struct PolicyServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl PolicyServer {
    async fn start(ca: &TestCa, names: &[&str], expired: bool, serve: Serve) -> PolicyServer {
        let (chain, key) = ca.leaf(names, expired);
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, serve, seen) = (acceptor.clone(), serve.clone(), seen.clone());
                tokio::spawn(async move {
                    if let Serve::Silent = serve {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        drop(tcp);
                        return;
                    }
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16384 {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&request).into_owned());
                    match serve {
                        Serve::Raw(bytes) => {
                            let _ = tls.write_all(&bytes).await;
                            let _ = tls.shutdown().await;
                        }
                        Serve::Hang | Serve::Silent => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                });
            }
        });
        PolicyServer { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn zone_with(records: &[(&str, LabRecord)]) -> Zone {
    let mut z = Zone::new();
    z.add(
        format!("_mta-sts.{DOMAIN}"),
        LabRecord::Txt(vec!["v=STSv1; id=20240101;".into()]),
    );
    for (name, record) in records {
        z.add(*name, record.clone());
    }
    z
}

fn loopback() -> Zone {
    zone_with(&[(HOST, LabRecord::A("127.0.0.1".parse().unwrap()))])
}

/// The lab DNS, a policy server serving `serve` with a valid certificate, and options for both.
async fn setup(serve: Serve) -> (LabDns, Resolver, PolicyServer, TestCa, HttpsOptions) {
    let ca = TestCa::new();
    let server = PolicyServer::start(&ca, &[HOST], false, serve).await;
    let (dns, resolver) = crate::lab(loopback()).await;
    let opts = ca.options(server.port);
    (dns, resolver, server, ca, opts)
}

async fn fetch(serve: Serve) -> Result<String, FetchError> {
    let (_dns, resolver, _server, _ca, opts) = setup(serve).await;
    https::fetch_policy(&resolver, DOMAIN, &opts).await
}

fn ids(findings: &[mailaudit_core::Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

#[tokio::test]
async fn valid_policy_covering_every_mx_has_no_finding() {
    let (_dns, resolver, server, _ca, opts) = setup(ok(POLICY)).await;
    let (policy, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
    assert_eq!(ids(&findings), Vec::<&str>::new(), "{findings:?}");
    let policy = policy.expect("policy parsed");
    assert_eq!(policy.mx, ["*.mail.protection.outlook.com"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(
        request.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nHost: {HOST}:{}\r\n", server.port)),
        "{request}"
    );
    assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    assert!(request.contains("\r\nUser-Agent: mailaudit/"), "{request}");
}

#[tokio::test]
async fn invalid_policy_text_is_mta_sts_invalid_with_the_parse_reason() {
    let body = "version: STSv1\nmode: strict\nmx: *.mail.protection.outlook.com\nmax_age: 86400\n";
    let (_dns, resolver, _server, _ca, opts) = setup(ok(body)).await;
    let (policy, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
    assert!(policy.is_none());
    assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    assert!(
        findings[0]
            .detail
            .contains("mode \"strict\" is not enforce, testing or none"),
        "{}",
        findings[0].detail
    );
    assert_eq!(findings[0].evidence.as_deref(), Some(body));
}

#[tokio::test]
async fn policy_not_covering_an_mx_names_it() {
    let (_dns, resolver, _server, _ca, opts) = setup(ok(POLICY)).await;
    let mx = [MX.to_string(), "backup.contoso.test".to_string()];
    let (policy, findings) = https::check(&resolver, DOMAIN, &mx, &opts).await;
    assert!(policy.is_some());
    assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    assert!(
        findings[0].detail.contains("backup.contoso.test"),
        "{}",
        findings[0].detail
    );
    assert!(!findings[0].detail.contains(MX));
}

#[tokio::test]
async fn not_found_is_invalid() {
    let (_dns, resolver, _server, _ca, opts) = setup(response(
        "404 Not Found",
        &["Content-Type: text/html", "Content-Length: 9"],
        "not found",
    ))
    .await;
    assert_eq!(
        https::fetch_policy(&resolver, DOMAIN, &opts).await,
        Err(FetchError::Http {
            status: 404,
            reason: "Not Found".into(),
            location: None
        })
    );
    let (policy, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
    assert!(policy.is_none());
    assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    assert!(
        findings[0].detail.contains("HTTP status 404 Not Found"),
        "{}",
        findings[0].detail
    );
}

#[tokio::test]
async fn rfc8461_section_3_3_redirect_is_not_followed() {
    let ca = TestCa::new();
    // The redirect points at the same server, so a followed redirect would be seen there.
    let target = format!("https://{HOST}/elsewhere/mta-sts.txt");
    let server = PolicyServer::start(
        &ca,
        &[HOST],
        false,
        response(
            "301 Moved Permanently",
            &[&format!("Location: {target}"), "Content-Length: 0"],
            "",
        ),
    )
    .await;
    let (_dns, resolver) = crate::lab(loopback()).await;
    let opts = ca.options(server.port);
    let (policy, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
    assert!(policy.is_none());
    assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    assert!(
        findings[0].detail.contains("301") && findings[0].detail.contains("not followed"),
        "{}",
        findings[0].detail
    );
    assert_eq!(
        findings[0].evidence.as_deref(),
        Some(format!("HTTP/1.1 301 Moved Permanently\r\nLocation: {target}").as_str())
    );
    assert_eq!(server.requests().len(), 1, "the redirect was followed");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let big = format!("{POLICY}{}", "x".repeat(70_000));
    let too_large = Err(FetchError::Transport(TransportError::TooLarge {
        part: Part::Body,
        limit: 65_536,
    }));
    // Declared by Content-Length: refused before reading.
    assert_eq!(fetch(ok(&big)).await, too_large);
    // Delimited by the end of the connection.
    assert_eq!(
        fetch(response("200 OK", &["Content-Type: text/plain"], &big)).await,
        too_large
    );
    // Chunked.
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    assert_eq!(
        fetch(response(
            "200 OK",
            &["Content-Type: text/plain", "Transfer-Encoding: chunked"],
            &chunked
        ))
        .await,
        too_large
    );
    // Headers over 16 KiB.
    let header = format!("X-Filler: {}", "y".repeat(20_000));
    assert_eq!(
        fetch(response(
            "200 OK",
            &["Content-Type: text/plain", &header],
            POLICY
        ))
        .await,
        Err(FetchError::Transport(TransportError::TooLarge {
            part: Part::Headers,
            limit: 16_384
        }))
    );
}

#[tokio::test]
async fn chunked_and_close_delimited_bodies_are_read() {
    let (a, b) = POLICY.split_at(20);
    let chunked = format!(
        "{:x};name=value\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\nX-Trailer: 1\r\n\r\n",
        a.len(),
        b.len()
    );
    assert_eq!(
        fetch(response(
            "200 OK",
            &["Content-Type: text/plain", "Transfer-Encoding: chunked"],
            &chunked
        ))
        .await
        .as_deref(),
        Ok(POLICY)
    );
    assert_eq!(
        fetch(response("200 OK", &["Content-Type: text/plain"], POLICY))
            .await
            .as_deref(),
        Ok(POLICY)
    );
    // An interim 100 Continue before the final response is skipped.
    let mut raw = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    if let Serve::Raw(rest) = ok(POLICY) {
        raw.extend(rest);
    }
    assert_eq!(fetch(Serve::Raw(raw)).await.as_deref(), Ok(POLICY));
}

#[tokio::test]
async fn rfc8461_section_3_2_media_type_must_be_text_plain() {
    assert_eq!(
        fetch(response(
            "200 OK",
            &[
                "Content-Type: text/html",
                &format!("Content-Length: {}", POLICY.len())
            ],
            POLICY
        ))
        .await,
        Err(FetchError::ContentType(Some("text/html".into())))
    );
    assert_eq!(
        fetch(response(
            "200 OK",
            &[&format!("Content-Length: {}", POLICY.len())],
            POLICY
        ))
        .await,
        Err(FetchError::ContentType(None))
    );
}

#[tokio::test]
async fn truncated_and_garbage_responses_are_malformed() {
    for serve in [
        response(
            "200 OK",
            &["Content-Type: text/plain", "Content-Length: 500"],
            POLICY,
        ),
        response(
            "200 OK",
            &["Content-Type: text/plain", "Transfer-Encoding: chunked"],
            "5\r\nhello\r\n",
        ),
        Serve::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()),
    ] {
        let got = fetch(serve).await;
        assert!(
            matches!(
                got,
                Err(FetchError::Transport(TransportError::Malformed(_)))
            ),
            "{got:?}"
        );
    }
    // Nothing at all: the connection closed before any response.
    assert_eq!(
        fetch(Serve::Raw(Vec::new())).await,
        Err(FetchError::Transport(TransportError::Io {
            stage: Stage::Response,
            reason: "the server closed the connection without a response".into(),
        }))
    );
}

#[tokio::test]
async fn rfc8461_section_3_3_certificate_must_be_valid_for_the_host() {
    let ca = TestCa::new();
    let (_dns, resolver) = crate::lab(loopback()).await;
    // Not valid for the host name.
    let server = PolicyServer::start(&ca, &["www.contoso.test"], false, ok(POLICY)).await;
    let got = https::fetch_policy(&resolver, DOMAIN, &ca.options(server.port)).await;
    let Err(FetchError::Transport(TransportError::Tls { host, reason })) = &got else {
        panic!("{got:?}");
    };
    assert_eq!(host, HOST);
    assert!(
        reason.contains("not valid for mta-sts.contoso.test")
            && reason.contains("www.contoso.test"),
        "{reason}"
    );
    assert!(
        server.requests().is_empty(),
        "a request went out over a bad certificate"
    );
    let (policy, findings) = https::check(
        &resolver,
        DOMAIN,
        &[MX.to_string()],
        &ca.options(server.port),
    )
    .await;
    assert!(policy.is_none());
    assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    assert!(
        findings[0].detail.contains("not valid for"),
        "{}",
        findings[0].detail
    );

    // Expired.
    let server = PolicyServer::start(&ca, &[HOST], true, ok(POLICY)).await;
    let got = https::fetch_policy(&resolver, DOMAIN, &ca.options(server.port)).await;
    assert!(
        matches!(&got, Err(FetchError::Transport(TransportError::Tls { reason, .. })) if reason.contains("expired")),
        "{got:?}"
    );

    // Issued by a CA the client does not trust (web PKI roots only).
    let server = PolicyServer::start(&ca, &[HOST], false, ok(POLICY)).await;
    let mut opts = HttpsOptions::with_ca_file(None).unwrap();
    opts.port = server.port;
    opts.timeout = Duration::from_secs(5);
    let got = https::fetch_policy(&resolver, DOMAIN, &opts).await;
    assert!(
        matches!(&got, Err(FetchError::Transport(TransportError::Tls { reason, .. })) if reason.contains("unknown issuer")),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_limit() {
    for (serve, stage) in [
        (Serve::Silent, Stage::Handshake),
        (Serve::Hang, Stage::Response),
    ] {
        let (_dns, resolver, _server, _ca, mut opts) = setup(serve).await;
        opts.timeout = Duration::from_millis(800);
        // Which limit ended the fetch is in the error (the stage and the limit of the whole
        // attempt), not measured by a wall clock that would time the machine's load; the
        // generous bound only catches a hang.
        let got = tokio::time::timeout(
            Duration::from_secs(60),
            https::fetch_policy(&resolver, DOMAIN, &opts),
        )
        .await
        .expect("the fetch never hangs");
        assert_eq!(
            got,
            Err(FetchError::Transport(TransportError::Timeout {
                stage,
                limit: Duration::from_millis(800)
            }))
        );
        let (_, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
        assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    }
}

#[tokio::test]
async fn connection_refused_is_invalid() {
    // A leased port: nothing listens on it, and no other test's socket can take it meanwhile
    // (a port bound and released here could be handed to one).
    let lease = mailaudit_lab::lease_ports(1).unwrap().remove(0);
    let port = lease.port();
    let ca = TestCa::new();
    let (_dns, resolver) = crate::lab(loopback()).await;
    let opts = ca.options(port);
    let got = https::fetch_policy(&resolver, DOMAIN, &opts).await;
    assert_eq!(
        got,
        Err(FetchError::Transport(TransportError::Connect {
            host: HOST.into(),
            attempts: vec![format!("127.0.0.1:{port}: connection refused")],
        }))
    );
    let (_, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
    assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    assert!(
        findings[0].detail.contains("connection refused"),
        "{}",
        findings[0].detail
    );
}

#[tokio::test]
async fn a_dead_address_is_skipped_for_the_next() {
    let ca = TestCa::new();
    let server = PolicyServer::start(&ca, &[HOST], false, ok(POLICY)).await;
    // Nothing listens on 127.0.0.2 (the server is bound to 127.0.0.1 only).
    let zone = zone_with(&[
        (HOST, LabRecord::A("127.0.0.2".parse().unwrap())),
        (HOST, LabRecord::A("127.0.0.1".parse().unwrap())),
    ]);
    let (_dns, resolver) = crate::lab(zone).await;
    let got = https::fetch_policy(&resolver, DOMAIN, &ca.options(server.port)).await;
    assert_eq!(got.as_deref(), Ok(POLICY));
}

#[tokio::test]
async fn no_address_is_invalid_and_a_failed_lookup_is_withheld() {
    let ca = TestCa::new();
    let opts = ca.options(443);

    let (_dns, resolver) = crate::lab(zone_with(&[])).await;
    assert_eq!(
        https::fetch_policy(&resolver, DOMAIN, &opts).await,
        Err(FetchError::Transport(TransportError::NoAddress {
            host: HOST.into()
        }))
    );
    let (policy, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
    assert!(policy.is_none());
    assert_eq!(ids(&findings), ["MTA-STS-INVALID"]);
    assert!(
        findings[0].detail.contains("has no A or AAAA record"),
        "{}",
        findings[0].detail
    );

    let (_dns, resolver) = crate::lab(zone_with(&[(HOST, LabRecord::ServFail)])).await;
    let (policy, findings) = https::check(&resolver, DOMAIN, &[MX.to_string()], &opts).await;
    assert!(policy.is_none());
    assert_eq!(ids(&findings), ["DNS-LOOKUP-FAILED"]);
    assert_eq!(findings[0].id, CheckId::DnsLookupFailed);
    assert_eq!(findings[0].area, Area::Transport);
    assert!(findings[0].detail.contains(HOST), "{}", findings[0].detail);
}

#[test]
fn fetch_future_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let opts = HttpsOptions::with_ca_file(None).unwrap();
    let dns = mailaudit_core::memory::MemoryDns::new();
    assert_send(https::check(&dns, DOMAIN, &[], &opts));
}
