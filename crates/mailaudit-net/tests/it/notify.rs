//! Alert delivery over real sockets on loopback: a webhook server made here (plain HTTP and
//! HTTPS with a certificate from a test CA made with rcgen) that records every request and
//! answers from a script; the real Postfix lab (`mailaudit_lab::postfix`) for plain and STARTTLS
//! submission, its log the witness of what arrived; and a scripted SMTP peer for AUTH PLAIN and
//! for refusals. Host names resolve through the lab DNS server.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mailaudit_core::CheckId;
use mailaudit_core::finding::Finding;
use mailaudit_lab::postfix::{
    Behaviour, Endpoint, LabConfig, PostfixLab, TEST_DOMAIN, TlsIdentity,
};
use mailaudit_lab::{LabDns, LabRecord, Zone};
use mailaudit_net::Resolver;
use mailaudit_net::notify::{
    AlertTarget, Backoff, MailTarget, NotifyError, NotifyOptions, Stage, TransportError,
    WebhookTarget, alert_payload, deliver, deliver_with_retry, mail_content, post_webhook,
    send_mail,
};
use mailaudit_net::smtp::TlsRoots;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Far longer than any attempt of these tests may take by its own limits: only a hang reaches
/// it. Which limit ended an attempt is in its error, which the tests check.
const HANG: Duration = Duration::from_secs(60);

const HOOK_HOST: &str = "hooks.contoso.test";
const RELAY_HOST: &str = "mx.contoso.test";
const LOG_WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Test PKI and DNS
// ---------------------------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    hook: TlsIdentity,
    relay: TlsIdentity,
    wrong_name: TlsIdentity,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mailaudit notify test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |name: &str| {
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            TlsIdentity {
                key_pem: key.serialize_pem(),
                chain_pem: cert.pem(),
            }
        };
        Pki {
            ca_pem: ca.pem(),
            hook: leaf(HOOK_HOST),
            relay: leaf(RELAY_HOST),
            wrong_name: leaf("other.fabrikam.test"),
        }
    })
}

/// Options trusting the test CA, with short limits.
fn options() -> NotifyOptions {
    let mut o = NotifyOptions::new(TlsRoots::with_ca_pem(pki().ca_pem.as_bytes()).unwrap());
    o.timeout = Duration::from_secs(5);
    o.connect_timeout = Duration::from_secs(2);
    o
}

/// The lab DNS server: the hook and relay names at 127.0.0.1, a name that fails.
async fn dns() -> (LabDns, Resolver) {
    let mut z = Zone::new();
    z.add(HOOK_HOST, LabRecord::A(Ipv4Addr::LOCALHOST));
    z.add(RELAY_HOST, LabRecord::A(Ipv4Addr::LOCALHOST));
    z.add("broken.contoso.test", LabRecord::ServFail);
    crate::lab(z).await
}

fn regressions() -> Vec<Finding> {
    vec![
        Finding::new(
            CheckId::DmarcMissing,
            "no TXT record at _dmarc.contoso.test",
        ),
        Finding::new(CheckId::SpfSoftfail, "the SPF record ends with ~all")
            .with_evidence("v=spf1 include:spf.protection.outlook.com ~all"),
    ]
}

fn payload() -> Value {
    alert_payload(
        "contoso.test",
        &regressions(),
        (Some(85), Some(55)),
        Some("https://portal.msp.test/domains/contoso.test"),
    )
}

// ---------------------------------------------------------------------------------------------
// The webhook server
// ---------------------------------------------------------------------------------------------

/// What the server does with one connection.
#[derive(Clone)]
enum Answer {
    /// Read the request, send these octets, close.
    Raw(String),
    /// Read the request, never answer.
    Hang,
}

fn status(line: &str, headers: &[&str], body: &str) -> Answer {
    let mut raw = format!("HTTP/1.1 {line}\r\nContent-Length: {}\r\n", body.len());
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    Answer::Raw(raw)
}

/// A request as the server read it.
#[derive(Clone, Debug)]
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// An HTTP(S) server on 127.0.0.1:0 answering connection after connection from a script (the
/// last answer repeats), recording the requests.
struct HookServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HookServer {
    async fn start(tls: Option<&TlsIdentity>, script: Vec<Answer>) -> HookServer {
        let acceptor = tls.map(|id| {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(id.chain_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap();
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
            let config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
            TlsAcceptor::from(Arc::new(config))
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let answer = {
                    let mut s = script.lock().unwrap();
                    if s.len() > 1 {
                        s.pop_front().unwrap()
                    } else {
                        s.front().cloned().unwrap_or(Answer::Hang)
                    }
                };
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(tcp).await {
                                serve(tls, answer, seen).await;
                            }
                        }
                        None => serve(tcp, answer, seen).await,
                    }
                });
            }
        });
        HookServer { addr, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    answer: Answer,
    seen: Arc<Mutex<Vec<Request>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .split("\r\n")
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    seen.lock().unwrap().push(Request { head, body });
    match answer {
        Answer::Raw(bytes) => {
            let _ = s.write_all(bytes.as_bytes()).await;
            let _ = s.shutdown().await;
        }
        Answer::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}

fn hook(url: String) -> WebhookTarget {
    WebhookTarget {
        url,
        headers: vec![("Authorization".into(), "Bearer s3cret".into())],
    }
}

fn fast_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(50), Duration::from_millis(200), 4)
}

// ---------------------------------------------------------------------------------------------
// Webhook tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn webhook_delivered_with_json_body_and_headers() {
    let (_lab, dns) = dns().await;
    let server = HookServer::start(None, vec![status("200 OK", &[], "ok")]).await;
    let port = server.addr.port();
    let target = hook(format!("http://{HOOK_HOST}:{port}/hooks/T0/B0/XYZ?x=1"));
    let body = payload();
    let got = post_webhook(&dns, &target, &body, &options()).await;
    assert_eq!(got, Ok(200));
    let [req] = server.requests().try_into().expect("one request");
    assert!(
        req.head
            .starts_with("POST /hooks/T0/B0/XYZ?x=1 HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert_eq!(
        req.header("host").as_deref(),
        Some(&*format!("{HOOK_HOST}:{port}"))
    );
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(req.header("connection").as_deref(), Some("close"));
    assert_eq!(
        req.header("authorization").as_deref(),
        Some("Bearer s3cret")
    );
    assert_eq!(
        req.header("content-length"),
        Some(req.body.len().to_string())
    );
    assert_eq!(req.json(), body);
    assert!(
        req.json()["text"]
            .as_str()
            .unwrap()
            .contains("DMARC-MISSING")
    );

    // Any 2xx is a delivery (Teams workflows answer 202), interim 1xx responses skipped.
    for (answer, code) in [
        (status("202 Accepted", &[], ""), 202),
        (
            Answer::Raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_string()),
            204,
        ),
        (
            Answer::Raw(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                    .to_string(),
            ),
            200,
        ),
    ] {
        let server = HookServer::start(None, vec![answer]).await;
        let target = hook(format!("http://127.0.0.1:{}/", server.addr.port()));
        assert_eq!(
            post_webhook(&dns, &target, &body, &options()).await,
            Ok(code)
        );
    }
}

/// A DMARC record carrying a Markdown link reaches a finding's detail through a real audit over
/// the lab DNS; the card posted to the webhook shows it as text: neither Slack's `text` nor the
/// Teams card holds an unescaped `[Fix it now](`, nor other formatting from the record.
#[tokio::test]
async fn webhook_card_escapes_markdown_from_records() {
    const DOMAIN: &str = "evil.contoso.test";
    const LINK: &str = "[Fix it now](https://evil.example)";
    let mut z = Zone::new();
    z.add(HOOK_HOST, LabRecord::A(Ipv4Addr::LOCALHOST));
    z.add(DOMAIN, LabRecord::Txt(vec!["v=spf1 -all".into()]));
    z.add(
        format!("_dmarc.{DOMAIN}"),
        LabRecord::Txt(vec![format!("v=DMARC1; p={LINK} **now** `x` #1 > |")]),
    );
    let (_lab, dns) = crate::lab(z).await;
    let report = mailaudit_core::audit::audit_domain(
        &dns,
        DOMAIN,
        &mailaudit_core::audit::AuditOptions::default(),
    )
    .await;
    assert!(
        report.findings.iter().any(|f| f.detail.contains(LINK)),
        "the record reaches a finding's detail: {:?}",
        report.findings
    );
    let server = HookServer::start(None, vec![status("200 OK", &[], "ok")]).await;
    let target = hook(format!("http://{HOOK_HOST}:{}/hook", server.addr.port()));
    let body = alert_payload(DOMAIN, &report.findings, (Some(90), Some(20)), None);
    assert_eq!(
        post_webhook(&dns, &target, &body, &options()).await,
        Ok(200)
    );
    let [req] = server.requests().try_into().expect("one request");
    let posted = req.json();
    let mut shown = vec![posted["text"].as_str().expect("text").to_owned()];
    for block in posted["attachments"][0]["content"]["body"]
        .as_array()
        .expect("card body")
    {
        shown.push(block["text"].as_str().expect("block text").to_owned());
    }
    for text in &shown {
        assert!(!text.contains("[Fix it now]("), "a link from DNS: {text}");
        assert!(!text.contains("**now**"), "bold from DNS: {text}");
        assert!(!text.contains(" `x`"), "code from DNS: {text}");
    }
    // Still readable: the record's text is there, each metacharacter backslash-escaped.
    let escaped = r"\[Fix it now\]\(https://evil.example\) \*\*now\*\* \`x\` \#1";
    assert!(shown[0].contains(escaped), "{}", shown[0]);
    assert!(shown[0].contains(r"\#1 &gt; \|"), "{}", shown[0]);
    assert!(
        shown[1..]
            .iter()
            .any(|t| t.contains(escaped) && t.contains(r"\#1 \> \|")),
        "{shown:?}"
    );
    // The structured details keep the record verbatim.
    let verbatim = serde_json::to_string(&posted["mailaudit"]).expect("JSON");
    assert!(verbatim.contains(LINK));
}

#[tokio::test]
async fn webhook_500_then_200_is_retried_and_delivered() {
    let (_lab, dns) = dns().await;
    let server = HookServer::start(
        None,
        vec![
            status("500 Internal Server Error", &[], "boom"),
            status("503 Service Unavailable", &["Retry-After: 0"], ""),
            status("200 OK", &[], "1"),
        ],
    )
    .await;
    let target = AlertTarget::Webhook(hook(format!(
        "http://{HOOK_HOST}:{}/hook",
        server.addr.port()
    )));
    let body = payload();
    let opts = options();
    let started = Instant::now();
    let done = deliver_with_retry(&fast_backoff(), |_| deliver(&dns, &target, &body, &opts)).await;
    assert_eq!(done.outcome, Ok(()));
    assert_eq!(done.attempts, 3);
    assert!(
        matches!(done.retried[0], NotifyError::Http { status: 500, ref body, .. } if body == "boom"),
        "{:?}",
        done.retried
    );
    assert!(matches!(
        done.retried[1],
        NotifyError::Http { status: 503, .. }
    ));
    // Backoff waits 50 ms then 100 ms.
    assert!(started.elapsed() >= Duration::from_millis(150));
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.json() == body));
}

#[tokio::test]
async fn webhook_4xx_is_permanent_but_408_and_429_are_retried() {
    let (_lab, dns) = dns().await;
    let server = HookServer::start(
        None,
        vec![status(
            "400 Bad Request",
            &["Content-Type: text/plain"],
            "Invalid webhook payload\r\n",
        )],
    )
    .await;
    let target = hook(format!("http://{HOOK_HOST}:{}/", server.addr.port()));
    let body = payload();
    let opts = options();
    let done = deliver_with_retry(&fast_backoff(), |_| {
        post_webhook(&dns, &target, &body, &opts)
    })
    .await;
    assert_eq!(done.attempts, 1, "a 400 is not retried");
    let err = done.outcome.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "the webhook answered HTTP 400 Bad Request: Invalid webhook payload"
    );
    assert_eq!(server.requests().len(), 1);

    for (line, extra) in [
        ("408 Request Timeout", vec![]),
        ("429 Too Many Requests", vec!["Retry-After: 7"]),
    ] {
        let server = HookServer::start(None, vec![status(line, &extra, "")]).await;
        let target = hook(format!("http://127.0.0.1:{}/", server.addr.port()));
        let err = post_webhook(&dns, &target, &body, &opts).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        if line.starts_with("429") {
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
        // Attempts are used up after max_attempts.
        let done = deliver_with_retry(
            &Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 3),
            |_| post_webhook(&dns, &target, &body, &opts),
        )
        .await;
        assert_eq!(done.attempts, 3);
        assert_eq!(done.retried.len(), 2);
        assert!(done.outcome.is_err());
    }
}

#[tokio::test]
async fn webhook_that_never_answers_times_out() {
    let (_lab, dns) = dns().await;
    let server = HookServer::start(None, vec![Answer::Hang]).await;
    let target = hook(format!("http://127.0.0.1:{}/", server.addr.port()));
    let mut opts = options();
    opts.timeout = Duration::from_millis(500);
    // Which limit ended the attempt is in the error (the stage and the limit), not measured by
    // a wall clock that would time the machine's load; HANG only catches a hang.
    let err = tokio::time::timeout(HANG, post_webhook(&dns, &target, &payload(), &opts))
        .await
        .expect("the webhook POST never hangs")
        .unwrap_err();
    assert_eq!(
        err,
        NotifyError::Transport(TransportError::Timeout {
            stage: Stage::Response,
            limit: Duration::from_millis(500)
        })
    );
    assert!(err.is_retryable());
    assert_eq!(server.requests().len(), 1, "the request was sent");
}

#[tokio::test]
async fn webhook_redirect_is_not_followed() {
    let (_lab, dns) = dns().await;
    let elsewhere = HookServer::start(None, vec![status("200 OK", &[], "")]).await;
    let location = format!("http://127.0.0.1:{}/stolen", elsewhere.addr.port());
    let server = HookServer::start(
        None,
        vec![status(
            "307 Temporary Redirect",
            &[&format!("Location: {location}")],
            "",
        )],
    )
    .await;
    let target = hook(format!("http://{HOOK_HOST}:{}/", server.addr.port()));
    let err = post_webhook(&dns, &target, &payload(), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Http { status: 307, location: Some(l), .. } if *l == location),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("not followed"), "{err}");
    assert_eq!(server.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn webhook_over_https_with_the_test_ca() {
    let (_lab, dns) = dns().await;
    let pki = pki();
    let server = HookServer::start(Some(&pki.hook), vec![status("200 OK", &[], "ok")]).await;
    let port = server.addr.port();
    let target = hook(format!("https://{HOOK_HOST}:{port}/workflows/abc?sig=s"));
    let body = payload();
    assert_eq!(
        post_webhook(&dns, &target, &body, &options()).await,
        Ok(200)
    );
    let [req] = server.requests().try_into().expect("one request");
    assert!(
        req.head
            .starts_with("POST /workflows/abc?sig=s HTTP/1.1\r\n")
    );
    assert_eq!(req.json(), body);

    // Without the test CA the certificate does not validate: nothing is sent.
    let mut untrusted = options();
    untrusted.roots = TlsRoots::webpki();
    let err = post_webhook(&dns, &target, &body, &untrusted)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport(TransportError::Tls { host, reason }) if host == HOOK_HOST && reason.contains("unknown issuer")),
        "{err:?}"
    );
    // A certificate for another name is refused too.
    let wrong = HookServer::start(Some(&pki.wrong_name), vec![status("200 OK", &[], "")]).await;
    let target = hook(format!("https://{HOOK_HOST}:{}/", wrong.addr.port()));
    let err = post_webhook(&dns, &target, &body, &options())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport(TransportError::Tls { reason, .. }) if reason.contains("not valid for")),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
    assert!(wrong.requests().is_empty());
}

#[tokio::test]
async fn webhook_network_failures_are_retryable() {
    let (_lab, dns) = dns().await;
    // A leased port: nothing listens on it, and no other test's socket can take it meanwhile
    // (a port bound and released here could be handed to one).
    let lease = mailaudit_lab::lease_ports(1).unwrap().remove(0);
    let closed = lease.port();
    let body = payload();
    let err = post_webhook(
        &dns,
        &hook(format!("http://127.0.0.1:{closed}/")),
        &body,
        &options(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport(TransportError::Connect { .. })),
        "{err:?}"
    );
    assert!(err.is_retryable());

    let err = post_webhook(
        &dns,
        &hook("https://broken.contoso.test/x".into()),
        &body,
        &options(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport(TransportError::Dns { .. })),
        "{err:?}"
    );
    assert!(err.is_retryable());

    let err = post_webhook(
        &dns,
        &hook("https://nowhere.contoso.test/x".into()),
        &body,
        &options(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        NotifyError::Transport(TransportError::NoAddress {
            host: "nowhere.contoso.test".into()
        })
    );

    let err = post_webhook(&dns, &hook("ftp://x.test/".into()), &body, &options())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::InvalidUrl(_)) && !err.is_retryable());
}

// ---------------------------------------------------------------------------------------------
// Email through the real Postfix lab
// ---------------------------------------------------------------------------------------------

fn postfix() -> Option<PostfixLab> {
    let config = LabConfig::new(vec![
        Endpoint::new("plain", Behaviour::Open),
        Endpoint::new("tls", Behaviour::Open).with_tls(pki().relay.clone()),
        Endpoint::new("badcert", Behaviour::Open).with_tls(pki().wrong_name.clone()),
    ]);
    mailaudit_lab::or_skip(PostfixLab::start(&config), "MAILAUDIT_SKIP_POSTFIX")
}

fn mail_target(relay: &str, port: u16, starttls: bool) -> MailTarget {
    MailTarget {
        relay: relay.into(),
        port,
        starttls,
        username: None,
        password: None,
        from: "alerts@msp.test".into(),
        to: vec![format!("secops@{TEST_DOMAIN}"), format!("it@{TEST_DOMAIN}")],
    }
}

#[tokio::test]
async fn mail_through_postfix_plain_and_starttls() {
    let Some(lab) = postfix() else { return };
    let (_dns_lab, dns) = dns().await;
    let opts = options();
    let content = mail_content(&payload());

    // Plain submission to an IP literal.
    let plain = lab.addr("plain").unwrap();
    let target = AlertTarget::Mail(mail_target("127.0.0.1", plain.port(), false));
    deliver(&dns, &target, &payload(), &opts)
        .await
        .expect("delivered over plain SMTP");
    let discarded = lab.wait_discarded(2, LOG_WAIT);
    assert_eq!(discarded.len(), 2, "{discarded:#?}\n{}", lab.log());
    let mut to: Vec<&str> = discarded.iter().map(|d| d.to.as_str()).collect();
    to.sort();
    assert_eq!(
        to,
        [format!("it@{TEST_DOMAIN}"), format!("secops@{TEST_DOMAIN}")]
    );
    for d in &discarded {
        assert_eq!(d.from.as_deref(), Some("alerts@msp.test"));
        let headers = d.headers.join("\n");
        assert!(headers.contains("From: <alerts@msp.test>"), "{headers}");
        assert!(
            headers.contains(&format!("secops@{TEST_DOMAIN}")),
            "{headers}"
        );
        // The subject has an arrow (→): RFC 2047 encoded.
        assert!(content.subject.contains('→'));
        assert!(
            headers.to_ascii_lowercase().contains("subject: =?utf-8?"),
            "{headers}"
        );
    }
    let sessions = lab.wait_sessions("plain", 1, LOG_WAIT);
    let [s] = sessions.as_slice() else {
        panic!("{sessions:#?}")
    };
    assert_eq!(s.count("data"), Some((1, 1)), "{s:#?}");
    assert_eq!(s.count("rcpt"), Some((2, 2)), "{s:#?}");
    assert_eq!(s.count("quit"), Some((1, 1)), "{s:#?}");
    assert!(s.tls.is_none());

    // STARTTLS to the relay's name (resolved by the lab DNS), certificate from the test CA.
    let tls = lab.addr("tls").unwrap();
    let mut target = mail_target(RELAY_HOST, tls.port(), true);
    target.to = vec![format!("noc@{TEST_DOMAIN}")];
    send_mail(
        &dns,
        &target,
        "ASCII subject",
        "line one\n.dot line\n",
        &opts,
    )
    .await
    .expect("delivered over STARTTLS");
    let discarded = lab.wait_discarded(3, LOG_WAIT);
    let d = discarded
        .iter()
        .find(|d| d.to == format!("noc@{TEST_DOMAIN}"))
        .unwrap_or_else(|| panic!("{discarded:#?}"));
    assert!(
        d.headers
            .iter()
            .any(|h| h.contains("Subject: ASCII subject")),
        "{d:#?}"
    );
    let sessions = lab.wait_sessions("tls", 1, LOG_WAIT);
    let [s] = sessions.as_slice() else {
        panic!("{sessions:#?}")
    };
    assert_eq!(s.count("starttls"), Some((1, 1)), "{s:#?}");
    assert_eq!(s.count("ehlo"), Some((2, 2)), "{s:#?}");
    assert!(s.tls.is_some(), "{s:#?}");

    // STARTTLS required but not offered: nothing is sent.
    let err = send_mail(
        &dns,
        &mail_target("127.0.0.1", plain.port(), true),
        "x",
        "y",
        &opts,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Unsupported { extension, .. } if extension == "STARTTLS"),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    // A certificate for another name ends the session before MAIL.
    let bad = lab.addr("badcert").unwrap();
    let err = send_mail(
        &dns,
        &mail_target(RELAY_HOST, bad.port(), true),
        "x",
        "y",
        &opts,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport(TransportError::Tls { .. })),
        "{err:?}"
    );
    let sessions = lab.wait_sessions("badcert", 1, LOG_WAIT);
    assert!(
        sessions.iter().all(|s| s.count("mail").is_none()),
        "{sessions:#?}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lab.discarded().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// A scripted SMTP peer
// ---------------------------------------------------------------------------------------------

type Script = dyn Fn(&str) -> String + Send + Sync;

/// An SMTP server on 127.0.0.1:0: a greeting, then `answer(line)` for every command; message
/// lines after a `354` are recorded and answered at the final `.` with `answer(".")`. Every
/// line received is kept.
async fn smtp_peer(answer: Arc<Script>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (answer, seen) = (answer.clone(), seen.clone());
            tokio::spawn(async move {
                let mut io = BufReader::new(tcp);
                let _ = io.get_mut().write_all(b"220 peer.test ESMTP\r\n").await;
                let mut data = false;
                loop {
                    let mut line = String::new();
                    match io.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let line = line.trim_end_matches(['\r', '\n']).to_string();
                    seen.lock().unwrap().push(line.clone());
                    if data && line != "." {
                        continue;
                    }
                    let reply = answer(&line);
                    data = line == "DATA" && reply.starts_with("354");
                    let _ = io.get_mut().write_all(reply.as_bytes()).await;
                    if line == "QUIT" {
                        return;
                    }
                }
            });
        }
    });
    (addr, lines)
}

/// A well-behaved submission server offering AUTH PLAIN; `rcpt` answers `RCPT TO`, `auth` the
/// AUTH command.
fn submission(rcpt: &'static str, auth: &'static str) -> Arc<Script> {
    Arc::new(move |line: &str| {
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => "250-peer.test\r\n250-PIPELINING\r\n250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n"
                .to_string(),
            "AUTH" => format!("{auth}\r\n"),
            "MAIL" => "250 2.1.0 Ok\r\n".to_string(),
            "RCPT" => format!("{rcpt}\r\n"),
            "DATA" => "354 End data with <CR><LF>.<CR><LF>\r\n".to_string(),
            "." => "250 2.0.0 Ok: queued as 1234\r\n".to_string(),
            "QUIT" => "221 2.0.0 Bye\r\n".to_string(),
            "RSET" => "250 2.0.0 Ok\r\n".to_string(),
            _ => "502 5.5.2 Error: command not recognized\r\n".to_string(),
        }
    })
}

fn authed(port: u16) -> MailTarget {
    MailTarget {
        relay: "127.0.0.1".into(),
        port,
        starttls: false,
        username: Some("alerts".into()),
        password: Some("hunter2".into()),
        from: "alerts@msp.test".into(),
        to: vec!["a@contoso.test".into(), "b@contoso.test".into()],
    }
}

#[tokio::test]
async fn auth_plain_then_the_whole_transaction() {
    let (_lab, dns) = dns().await;
    let (addr, lines) = smtp_peer(submission(
        "250 2.1.5 Ok",
        "235 2.7.0 Authentication successful",
    ))
    .await;
    send_mail(
        &dns,
        &authed(addr.port()),
        "Süd",
        ".one\r\ntwo\n",
        &options(),
    )
    .await
    .expect("delivered");
    let lines = lines.lock().unwrap().clone();
    let commands: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with(['E', 'A', 'M', 'R', 'D', 'Q']) && !l.contains(": "))
        .collect();
    assert_eq!(
        commands,
        [
            "EHLO [127.0.0.1]",
            // RFC 4616 §2: authzid (empty) NUL authcid NUL passwd.
            "AUTH PLAIN AGFsZXJ0cwBodW50ZXIy",
            "MAIL FROM:<alerts@msp.test>",
            "RCPT TO:<a@contoso.test>",
            "RCPT TO:<b@contoso.test>",
            "DATA",
            "QUIT",
        ],
        "{lines:#?}"
    );
    let message: Vec<&str> = lines
        .iter()
        .skip_while(|l| *l != "DATA")
        .skip(1)
        .take_while(|l| *l != ".")
        .map(String::as_str)
        .collect();
    assert!(
        message.iter().any(|l| l.starts_with("Subject: =?utf-8?")),
        "an RFC 2047 encoded word: {message:#?}"
    );
    assert!(message.contains(&"From: <alerts@msp.test>"), "{message:#?}");
    let raw = message.join("\r\n");
    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a message");
    assert_eq!(parsed.subject(), Some("Süd"), "{message:#?}");
    let to: Vec<&str> = parsed
        .to()
        .expect("To")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["a@contoso.test", "b@contoso.test"], "{message:#?}");
    assert!(
        message.iter().any(|l| l.starts_with("Date: ")),
        "{message:#?}"
    );
    assert!(
        message.iter().any(|l| l.starts_with("Message-ID: <")),
        "{message:#?}"
    );
    let body = message
        .iter()
        .skip_while(|l| !l.is_empty())
        .skip(1)
        .copied()
        .collect::<Vec<_>>();
    assert_eq!(body, ["..one", "two"], "dot-stuffed: {message:#?}");
}

#[tokio::test]
async fn auth_plain_after_an_empty_challenge() {
    let (_lab, dns) = dns().await;
    let base = submission("250 2.1.5 Ok", "334 ");
    let script: Arc<Script> = Arc::new(move |line: &str| {
        if line == "AGFsZXJ0cwBodW50ZXIy" {
            "235 2.7.0 Authentication successful\r\n".to_string()
        } else {
            base(line)
        }
    });
    let (addr, lines) = smtp_peer(script).await;
    send_mail(&dns, &authed(addr.port()), "s", "b", &options())
        .await
        .expect("delivered");
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "AGFsZXJ0cwBodW50ZXIy")
    );
}

#[tokio::test]
async fn smtp_refusals_5xx_permanent_4xx_retryable() {
    let (_lab, dns) = dns().await;
    let opts = options();
    for (rcpt, auth, stage, code, retryable) in [
        (
            "550 5.1.1 <b@contoso.test>: Recipient address rejected: User unknown",
            "235 ok",
            Stage::RcptTo,
            550,
            false,
        ),
        (
            "451 4.3.0 Temporary lookup failure",
            "235 ok",
            Stage::RcptTo,
            451,
            true,
        ),
        (
            "250 ok",
            "535 5.7.8 Error: authentication failed",
            Stage::Auth,
            535,
            false,
        ),
        (
            "250 ok",
            "454 4.7.0 Temporary authentication failure",
            Stage::Auth,
            454,
            true,
        ),
    ] {
        let (addr, lines) = smtp_peer(submission(rcpt, auth)).await;
        let err = send_mail(&dns, &authed(addr.port()), "s", "b", &opts)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::Smtp { stage: s, code: c, .. } if *s == stage && *c == code),
            "{err:?}"
        );
        assert_eq!(err.is_retryable(), retryable, "{err}");
        let lines = lines.lock().unwrap().clone();
        assert!(
            !lines.iter().any(|l| l == "DATA"),
            "no DATA after a refusal: {lines:#?}"
        );
        if stage == Stage::RcptTo {
            assert_eq!(lines.last().map(String::as_str), Some("QUIT"), "{lines:#?}");
            assert!(err.to_string().contains(rcpt), "{err}");
        }
        // The password never appears in the error.
        assert!(!err.to_string().contains("hunter2"));
    }

    // 4xx at RCPT, then accepted: deliver_with_retry sends once, after the retry.
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let script: Arc<Script> = Arc::new(move |line: &str| {
        if line.starts_with("RCPT") {
            let mut n = counter.lock().unwrap();
            *n += 1;
            if *n == 1 {
                return "450 4.2.0 Mailbox busy\r\n".to_string();
            }
        }
        submission("250 ok", "235 ok")(line)
    });
    let (addr, lines) = smtp_peer(script).await;
    let mut target = authed(addr.port());
    target.to.truncate(1);
    let done = deliver_with_retry(&fast_backoff(), |_| {
        send_mail(&dns, &target, "s", "b", &opts)
    })
    .await;
    assert_eq!(done.outcome, Ok(()));
    assert_eq!(done.attempts, 2);
    assert_eq!(
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == "DATA")
            .count(),
        1
    );
}

#[tokio::test]
async fn smtp_server_failures() {
    let (_lab, dns) = dns().await;
    let mut opts = options();
    opts.timeout = Duration::from_millis(600);

    // No AUTH offered while credentials are configured: permanent, nothing sent.
    let no_auth: Arc<Script> = Arc::new(|line: &str| {
        if line.starts_with("EHLO") {
            "250-peer.test\r\n250 8BITMIME\r\n".to_string()
        } else {
            submission("250 ok", "235 ok")(line)
        }
    });
    let (addr, lines) = smtp_peer(no_auth).await;
    let err = send_mail(&dns, &authed(addr.port()), "s", "b", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Unsupported { extension, .. } if extension == "AUTH PLAIN"),
        "{err:?}"
    );
    assert!(!lines.lock().unwrap().iter().any(|l| l.starts_with("AUTH")));

    // A server that stops answering after DATA: a timeout, retryable.
    let mute: Arc<Script> = Arc::new(|line: &str| {
        if line == "." {
            String::new()
        } else {
            submission("250 ok", "235 ok")(line)
        }
    });
    let (addr, _) = smtp_peer(mute).await;
    // The error names the limit that fired and its stage; HANG only catches a hang.
    let err = tokio::time::timeout(HANG, send_mail(&dns, &authed(addr.port()), "s", "b", &opts))
        .await
        .expect("the submission never hangs")
        .unwrap_err();
    assert_eq!(
        err,
        NotifyError::Transport(TransportError::Timeout {
            stage: Stage::Message,
            limit: Duration::from_millis(600)
        })
    );
    assert!(err.is_retryable());

    // Garbage instead of a reply.
    let garbage: Arc<Script> = Arc::new(|_: &str| "HTTP/1.1 400 Bad Request\r\n".to_string());
    let (addr, _) = smtp_peer(garbage).await;
    let err = send_mail(&dns, &authed(addr.port()), "s", "b", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            NotifyError::SmtpProtocol {
                stage: Stage::Ehlo,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());

    // Invalid targets are refused before connecting.
    let mut t = authed(1);
    t.to = vec!["x@y.test>\r\nRCPT TO:<evil@z.test".into()];
    assert!(matches!(
        send_mail(&dns, &t, "s", "b", &opts).await,
        Err(NotifyError::InvalidTarget(_))
    ));
    let mut t = authed(1);
    t.password = None;
    assert!(matches!(
        send_mail(&dns, &t, "s", "b", &opts).await,
        Err(NotifyError::InvalidTarget(_))
    ));
}

#[tokio::test]
async fn payload_shape_for_slack_and_teams() {
    let p = payload();
    // Slack incoming webhooks and the Teams legacy connector read `text`.
    let text = p["text"].as_str().unwrap();
    assert!(
        text.starts_with("mailaudit: 2 regressions on contoso.test (score 85 → 55)"),
        "{text}"
    );
    assert!(text.contains("- CRITICAL DMARC-MISSING"), "{text}");
    assert!(text.ends_with("Details: https://portal.msp.test/domains/contoso.test"));
    // Teams workflows post the Adaptive Card of the first attachment.
    let card = &p["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["version"], "1.4");
    assert!(
        card["content"]["body"][0]["text"]
            .as_str()
            .unwrap()
            .contains("contoso.test")
    );
    assert_eq!(
        card["content"]["actions"][0],
        json!({"type": "Action.OpenUrl", "title": "Open in mailaudit",
               "url": "https://portal.msp.test/domains/contoso.test"})
    );
    // The structured details.
    let m = &p["mailaudit"];
    assert_eq!(m["domain"], "contoso.test");
    assert_eq!(m["regressions"][0]["id"], "DMARC-MISSING");
    assert_eq!(
        m["regressions"][1]["evidence"],
        "v=spf1 include:spf.protection.outlook.com ~all"
    );
    assert_eq!(m["score"]["previous"], 85);
    assert_eq!(m["score"]["current"], 55);
}
