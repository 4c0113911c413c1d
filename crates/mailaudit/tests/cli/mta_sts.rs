//! The MTA-STS policy fetch through `mailaudit audit`: an HTTPS server on 127.0.0.1 (rustls,
//! with a certificate for `mta-sts.contoso.test` from a test CA made here with rcgen, trusted
//! through `--ca-file`, reached through `--https-port`), and the lab DNS answering for the
//! domain's `_mta-sts` record and `mta-sts.contoso.test A 127.0.0.1`.
//!
//! The server counts the requests it read, so that "no fetch" is observed on the server side.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::common::{Lab, Output, domain, finding_ids, run};

const DOMAIN: &str = "contoso.test";
const POLICY_HOST: &str = "mta-sts.contoso.test";
const MX: &str = "contoso-test.mail.protection.outlook.com";
const COVERING: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: *.mail.protection.outlook.com\r\nmax_age: 604800\r\n";
const NOT_COVERING: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.fabrikam.test\r\nmax_age: 604800\r\n";

/// The zone: an MX, SPF and DMARC, the MTA-STS record (when `sts`) and the policy host on
/// loopback.
fn zone(sts: bool) -> String {
    let mut z = format!(
        "\
{DOMAIN} MX 0 {MX}
{MX} A 127.0.0.1
{DOMAIN} TXT \"v=spf1 ip4:192.0.2.10 -all\"
_dmarc.{DOMAIN} TXT \"v=DMARC1; p=reject\"
{POLICY_HOST} A 127.0.0.1
"
    );
    if sts {
        z.push_str(&format!(
            "_mta-sts.{DOMAIN} TXT \"v=STSv1; id=2026112801;\"\n"
        ));
    }
    z
}

/// A policy server on 127.0.0.1:0 with its own runtime, answering every request with
/// `status` and `body`; the CA that signed its certificate is in `ca_file`.
struct PolicyServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
    ca_file: tempfile::NamedTempFile,
    _rt: tokio::runtime::Runtime,
}

impl PolicyServer {
    fn start(status: &str, body: &str) -> PolicyServer {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mailaudit CLI MTA-STS test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
        ca_file.write_all(ca.pem().as_bytes()).expect("CA written");
        ca_file.flush().expect("CA flushed");

        let params = CertificateParams::new(vec![POLICY_HOST.to_string()]).expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &ca).expect("leaf certificate");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (seen, counted) = (requests.clone(), count.clone());
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, response, seen, counted) = (
                    acceptor.clone(),
                    response.clone(),
                    seen.clone(),
                    counted.clone(),
                );
                tokio::spawn(async move {
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
                    counted.fetch_add(1, Ordering::SeqCst);
                    seen.lock()
                        .expect("requests lock")
                        .push(String::from_utf8_lossy(&request).into_owned());
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        PolicyServer {
            port,
            requests,
            count,
            ca_file,
            _rt: rt,
        }
    }

    fn ca(&self) -> &str {
        self.ca_file.path().to_str().expect("UTF-8 temp path")
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// `mailaudit audit DOMAIN --format json` with this server's port and CA, and `extra`.
    fn audit(&self, dns: &Lab, extra: &[&str]) -> Output {
        let port = self.port.to_string();
        let mut args = vec![
            "--nameserver",
            dns.addr(),
            "audit",
            DOMAIN,
            "--format",
            "json",
            "--https-port",
            &port,
            "--ca-file",
            self.ca(),
        ];
        args.extend(extra);
        run(&args)
    }
}

/// The MTA-STS findings of the domain's report.
fn sts_findings(report: &Value) -> Vec<Value> {
    domain(report, DOMAIN)["findings"]
        .as_array()
        .expect("findings is an array")
        .iter()
        .filter(|f| f["id"].as_str().is_some_and(|id| id.starts_with("MTA-STS")))
        .cloned()
        .collect()
}

#[test]
fn a_valid_policy_covering_the_mx_is_fetched_and_reported() {
    let server = PolicyServer::start("200 OK", COVERING);
    let dns = Lab::start(&zone(true));
    let out = server.audit(&dns, &[]);
    out.assert_code(0);
    let json = out.json();
    crate::docs_json::assert_report_documented(&json);
    assert_eq!(sts_findings(&json), Vec::<Value>::new());
    let sts = &domain(&json, DOMAIN)["mta_sts"];
    let policy = &sts["policy"];
    assert_eq!(policy["mode"], "enforce", "{sts:#}");
    assert_eq!(policy["max_age"], 604800, "{sts:#}");
    assert_eq!(
        policy["mx"],
        serde_json::json!(["*.mail.protection.outlook.com"]),
        "{sts:#}"
    );
    assert_eq!(
        sts["policy_url"],
        "https://mta-sts.contoso.test/.well-known/mta-sts.txt"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(
        requests[0].starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].contains(&format!("\r\nHost: {POLICY_HOST}")),
        "{}",
        requests[0]
    );
}

#[test]
fn a_policy_not_covering_the_mx_is_mta_sts_invalid_naming_it() {
    let server = PolicyServer::start("200 OK", NOT_COVERING);
    let dns = Lab::start(&zone(true));
    let out = server.audit(&dns, &[]);
    let json = out.json();
    let found = sts_findings(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["id"], "MTA-STS-INVALID");
    assert_eq!(found[0]["severity"], "medium");
    let detail = found[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(MX) && detail.contains("does not cover"),
        "{detail}"
    );
    assert_eq!(found[0]["evidence"], NOT_COVERING);
    // The fix is the policy with the MX added.
    let fix = found[0]["fix"].as_str().unwrap_or_default();
    assert!(fix.contains(&format!("mx: {MX}")), "{fix}");
    // The policy parsed, so it is still reported.
    let policy = &domain(&json, DOMAIN)["mta_sts"]["policy"];
    assert_eq!(policy["mx"], serde_json::json!(["mx.fabrikam.test"]));
    assert_eq!(server.count(), 1);
}

#[test]
fn a_missing_policy_file_is_mta_sts_invalid_with_the_status() {
    let server = PolicyServer::start("404 Not Found", "not found");
    let dns = Lab::start(&zone(true));
    let json = server.audit(&dns, &[]).json();
    let found = sts_findings(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["id"], "MTA-STS-INVALID");
    let detail = found[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("404"), "{detail}");
    assert!(domain(&json, DOMAIN)["mta_sts"]["policy"].is_null());
    assert_eq!(server.count(), 1);
}

#[test]
fn without_the_ca_file_the_policy_host_is_not_trusted() {
    let server = PolicyServer::start("200 OK", COVERING);
    let dns = Lab::start(&zone(true));
    let port = server.port.to_string();
    let out = run(&[
        "--nameserver",
        dns.addr(),
        "audit",
        DOMAIN,
        "--format",
        "json",
        "--https-port",
        &port,
    ]);
    let json = out.json();
    let found = sts_findings(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["id"], "MTA-STS-INVALID");
    assert!(domain(&json, DOMAIN)["mta_sts"]["policy"].is_null());
    // The handshake failed, so no request was read.
    assert_eq!(server.count(), 0);
}

#[test]
fn no_policy_fetch_fetches_nothing() {
    let server = PolicyServer::start("200 OK", NOT_COVERING);
    let dns = Lab::start(&zone(true));
    let out = server.audit(&dns, &["--no-policy-fetch"]);
    out.assert_code(0);
    let json = out.json();
    assert_eq!(sts_findings(&json), Vec::<Value>::new());
    let sts = &domain(&json, DOMAIN)["mta_sts"];
    assert!(sts["policy"].is_null(), "{sts:#}");
    // The record is still read and reported.
    assert_eq!(sts["record"], "v=STSv1; id=2026112801;", "{sts:#}");
    // Give a stray connection time to arrive before counting.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.count(), 0);
}

#[test]
fn a_domain_without_the_mta_sts_record_is_not_fetched() {
    let server = PolicyServer::start("200 OK", NOT_COVERING);
    let dns = Lab::start(&zone(false));
    let json = server.audit(&dns, &[]).json();
    assert!(
        !finding_ids(domain(&json, DOMAIN)).contains(&"MTA-STS-INVALID".to_string()),
        "{json:#}"
    );
    assert!(domain(&json, DOMAIN)["mta_sts"]["policy"].is_null());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.count(), 0);
}
