//! The SMTP probe against a real Postfix on loopback posing as Microsoft 365 endpoints
//! (`mailaudit_lab::postfix`): an open tenant, one that blocks Direct Send with 5.7.68, one
//! that rejects the recipient (5.4.1), STARTTLS with a certificate from a test CA made here
//! with rcgen, an expired and a mismatched certificate, and one endpoint without STARTTLS.
//!
//! Postfix's own log is the witness of what the probe sent: its `disconnect from` line counts
//! every command of the session, so "no DATA" is read from the server side, not from the
//! probe's word. Each test starts its own instance (about half a second) so that logs and
//! queues are its own and tests run in parallel; dropping the lab stops Postfix.
//!
//! Needs root and Postfix (`scripts/install-test-deps.sh`). Set `MAILAUDIT_SKIP_POSTFIX=1` to
//! skip these tests on a machine that has neither; without it a missing Postfix fails them.

use std::sync::OnceLock;
use std::time::Duration;

use mailaudit_core::CheckId;
use mailaudit_core::smtp::{ProbeConfig, ProbeReport, Stage, Verdict, findings};
use mailaudit_lab::postfix::{
    BLOCKED_REPLY, Behaviour, Endpoint, LabConfig, PostfixLab, TEST_DOMAIN, TEST_HOSTNAME,
    TlsIdentity, UNKNOWN_RECIPIENT_REPLY,
};
use mailaudit_net::smtp::{self, SmtpOptions, TlsRoots};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const LOG_WAIT: Duration = Duration::from_secs(10);

/// The test PKI: a CA and leaf certificates it signed, made once per test binary.
struct Pki {
    ca_pem: String,
    valid: TlsIdentity,
    expired: TlsIdentity,
    mismatched: TlsIdentity,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mailaudit test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let leaf = |name: &str, expired: bool| {
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            if expired {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &ca).expect("leaf certificate");
            TlsIdentity {
                key_pem: key.serialize_pem(),
                chain_pem: cert.pem(),
            }
        };
        Pki {
            ca_pem: ca.pem(),
            valid: leaf(TEST_HOSTNAME, false),
            expired: leaf(TEST_HOSTNAME, true),
            mismatched: leaf("mx.fabrikam.test", false),
        }
    })
}

/// Starts a lab with every kind of endpoint: `open`, `blocked`, `unknown` (valid certificate),
/// `expired`, `mismatched` (open, bad certificate) and `plain` (open, no STARTTLS). `None` when
/// `MAILAUDIT_SKIP_POSTFIX` is set and Postfix cannot run here.
fn lab() -> Option<PostfixLab> {
    let pki = pki();
    let config = LabConfig::new(vec![
        Endpoint::new("open", Behaviour::Open).with_tls(pki.valid.clone()),
        Endpoint::new("blocked", Behaviour::Blocked).with_tls(pki.valid.clone()),
        Endpoint::new("unknown", Behaviour::UnknownRecipient).with_tls(pki.valid.clone()),
        Endpoint::new("expired", Behaviour::Open).with_tls(pki.expired.clone()),
        Endpoint::new("mismatched", Behaviour::Open).with_tls(pki.mismatched.clone()),
        Endpoint::new("plain", Behaviour::Open),
    ]);
    mailaudit_lab::or_skip(PostfixLab::start(&config), "MAILAUDIT_SKIP_POSTFIX")
}

/// A minimal SMTP client: sends a command, reads the whole (multi-line) reply.
struct Raw<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    /// Reads one reply; returns its lines (with the code).
    async fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line))
                .await
                .expect("reply within 10 s")
                .expect("read");
            assert!(n > 0, "connection closed; got {lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
    }

    async fn cmd(&mut self, command: &str) -> Vec<String> {
        self.io
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("write");
        self.reply().await
    }
}

#[tokio::test]
async fn endpoints_answer_the_spoofed_envelope_like_microsoft_365() {
    let Some(lab) = lab() else { return };
    let envelope = |to: &str| {
        (
            format!("MAIL FROM:<ceo@{TEST_DOMAIN}>"),
            format!("RCPT TO:<{to}@{TEST_DOMAIN}>"),
        )
    };
    for (endpoint, rcpt_reply) in [
        ("open", "250 2.1.5 Ok".to_owned()),
        ("blocked", BLOCKED_REPLY.to_owned()),
        ("unknown", UNKNOWN_RECIPIENT_REPLY.to_owned()),
    ] {
        let addr = lab.addr(endpoint).expect("endpoint");
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut raw = Raw {
            io: BufReader::new(stream),
        };
        let banner = raw.reply().await;
        assert_eq!(
            banner,
            [format!(
                "220 {TEST_HOSTNAME} Microsoft ESMTP MAIL Service ready"
            )]
        );
        let ehlo = raw.cmd("EHLO probe.mailaudit.test").await;
        assert!(
            ehlo.iter().any(|l| l.ends_with("STARTTLS")),
            "{endpoint}: {ehlo:?}"
        );
        let (mail, rcpt) = envelope("postmaster");
        assert_eq!(raw.cmd(&mail).await, ["250 2.1.0 Ok"], "{endpoint}");
        assert_eq!(raw.cmd(&rcpt).await, [rcpt_reply.as_str()], "{endpoint}");
        assert_eq!(raw.cmd("RSET").await, ["250 2.0.0 Ok"], "{endpoint}");
        assert_eq!(raw.cmd("QUIT").await, ["221 2.0.0 Bye"], "{endpoint}");

        let sessions = lab.wait_sessions(endpoint, 1, LOG_WAIT);
        let [session] = sessions.as_slice() else {
            panic!(
                "{endpoint}: one session expected: {sessions:#?}\n{}",
                lab.log()
            );
        };
        assert!(session.closed, "{session:#?}");
        assert!(!session.sent_data(), "{session:#?}");
        let accepted = u32::from(endpoint == "open");
        assert_eq!(session.count("rcpt"), Some((accepted, 1)), "{session:#?}");
        if endpoint != "open" {
            assert_eq!(session.rejects, [rcpt_reply], "{session:#?}");
        }
    }
    // The plain endpoint offers no STARTTLS.
    let stream = TcpStream::connect(lab.addr("plain").expect("plain"))
        .await
        .expect("connect");
    let mut raw = Raw {
        io: BufReader::new(stream),
    };
    raw.reply().await;
    let ehlo = raw.cmd("EHLO probe.mailaudit.test").await;
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    raw.cmd("QUIT").await;

    assert!(lab.discarded().is_empty());
    assert_eq!(lab.wait_queue_empty(std::time::Duration::from_secs(10)), 0);
}

#[tokio::test]
async fn a_message_sent_to_the_open_endpoint_is_accepted_then_discarded() {
    let Some(lab) = lab() else { return };
    let stream = TcpStream::connect(lab.addr("open").expect("open"))
        .await
        .expect("connect");
    let mut raw = Raw {
        io: BufReader::new(stream),
    };
    raw.reply().await;
    raw.cmd("EHLO probe.mailaudit.test").await;
    raw.cmd(&format!("MAIL FROM:<ceo@{TEST_DOMAIN}>")).await;
    raw.cmd(&format!("RCPT TO:<postmaster@{TEST_DOMAIN}>"))
        .await;
    let go = raw.cmd("DATA").await;
    assert!(go[0].starts_with("354"), "{go:?}");
    let queued = raw
        .cmd("Subject: lab\r\nX-Mailaudit-Test: lab self-check\r\n\r\nhello\r\n.")
        .await;
    assert!(
        queued[0].starts_with("250 2.0.0 Ok: queued as "),
        "{queued:?}"
    );
    raw.cmd("QUIT").await;

    let discarded = lab.wait_discarded(1, LOG_WAIT);
    let [message] = discarded.as_slice() else {
        panic!("one message expected: {discarded:#?}\n{}", lab.log());
    };
    assert_eq!(message.to, format!("postmaster@{TEST_DOMAIN}"));
    assert_eq!(
        message.from.as_deref(),
        Some(format!("ceo@{TEST_DOMAIN}").as_str())
    );
    assert_eq!(message.endpoint.as_deref(), Some("open"));
    assert!(queued[0].ends_with(&message.queue_id));
    let sessions = lab.wait_sessions("open", 1, LOG_WAIT);
    assert_eq!(sessions[0].count("data"), Some((1, 1)));
    assert_eq!(sessions[0].queue_ids, [message.queue_id.as_str()]);
    assert_eq!(
        lab.wait_queue_empty(std::time::Duration::from_secs(10)),
        0,
        "nothing is left in the queue"
    );
}

#[test]
fn stopping_the_lab_ends_postfix_and_removes_its_directory() {
    let Some(lab) = lab() else { return };
    let dir = lab.dir().to_owned();
    let pid: u32 = std::fs::read_to_string(dir.join("spool/pid/master.pid"))
        .expect("master.pid")
        .trim()
        .parse()
        .expect("pid");
    let addr = lab.addr("open").expect("open");
    lab.stop();
    assert!(!dir.exists(), "{} removed", dir.display());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, s)| s.trim_start().starts_with('Z')),
        "master {pid} still running: {stat}"
    );
    assert!(std::net::TcpStream::connect(addr).is_err(), "{addr} closed");
}

/// The lab's STARTTLS endpoints, checked with a plain rustls client trusting only the test CA:
/// the valid certificate verifies for the MX name, the expired and the mismatched ones fail
/// for that reason.
#[tokio::test]
async fn starttls_endpoints_present_the_test_certificates() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{CertificateError, Error as TlsError};

    let Some(lab) = lab() else { return };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki().ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA added");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Postfix issues TLS 1.3 session tickets, shared by all endpoints of the instance (tlsmgr):
    // a resumed session presents no certificate, so the second endpoint would "verify" without
    // one. Every connection here must see its endpoint's certificate.
    config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));

    for (endpoint, want) in [
        ("open", Ok(())),
        ("expired", Err("expired")),
        ("mismatched", Err("name")),
    ] {
        let stream = TcpStream::connect(lab.addr(endpoint).expect("endpoint"))
            .await
            .expect("connect");
        let mut raw = Raw {
            io: BufReader::new(stream),
        };
        raw.reply().await;
        raw.cmd("EHLO probe.mailaudit.test").await;
        assert_eq!(
            raw.cmd("STARTTLS").await,
            ["220 2.0.0 Ready to start TLS"],
            "{endpoint}"
        );
        let name = ServerName::try_from(TEST_HOSTNAME).expect("name");
        let result = connector.connect(name, raw.io.into_inner()).await;
        match (result, want) {
            (Ok(tls), Ok(())) => {
                let (_, session) = tls.get_ref();
                assert_eq!(
                    session.protocol_version(),
                    Some(rustls::ProtocolVersion::TLSv1_3),
                    "{endpoint}"
                );
                let mut raw = Raw {
                    io: BufReader::new(tls),
                };
                let ehlo = raw.cmd("EHLO probe.mailaudit.test").await;
                assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
                raw.cmd("QUIT").await;
            }
            (Err(e), Err(why)) => {
                let inner = e.into_inner().and_then(|e| e.downcast::<TlsError>().ok());
                let ok = match inner.as_deref() {
                    Some(TlsError::InvalidCertificate(c)) => match why {
                        "expired" => matches!(
                            c,
                            CertificateError::Expired | CertificateError::ExpiredContext { .. }
                        ),
                        _ => matches!(
                            c,
                            CertificateError::NotValidForName
                                | CertificateError::NotValidForNameContext { .. }
                        ),
                    },
                    _ => false,
                };
                assert!(ok, "{endpoint}: {inner:?}");
            }
            (got, want) => panic!("{endpoint}: got {:?}, want {want:?}", got.map(|_| ())),
        }
    }
    let sessions = lab.wait_sessions("open", 1, LOG_WAIT);
    let tls = sessions[0].tls.as_deref().unwrap_or_default();
    assert!(tls.starts_with("TLSv1.3 with cipher "), "{sessions:#?}");
}

// ---------------------------------------------------------------------------------------------
// The probe itself against the lab.

/// The probe's options for the lab: the test CA trusted beside the web PKI, short timeouts.
fn probe_options(lab: &PostfixLab) -> SmtpOptions {
    let ca = lab.dir().join("test-ca.pem");
    std::fs::write(&ca, &pki().ca_pem).expect("CA file written");
    SmtpOptions {
        connect_timeout: Duration::from_secs(5),
        reply_timeout: Duration::from_secs(10),
        session_timeout: Duration::from_secs(30),
        roots: TlsRoots::with_ca_file(&ca).expect("CA file usable"),
        ..SmtpOptions::default()
    }
}

/// The Direct Send spoof: the tenant's own address as sender and recipient.
fn spoof() -> ProbeConfig {
    ProbeConfig::relay("probe.mailaudit.test", format!("postmaster@{TEST_DOMAIN}"))
}

async fn probe_endpoint(
    lab: &PostfixLab,
    endpoint: &str,
    cfg: &ProbeConfig,
    opts: &SmtpOptions,
) -> ProbeReport {
    let addr = lab.addr(endpoint).expect("endpoint");
    smtp::probe(addr, TEST_HOSTNAME, cfg, opts).await
}

fn ids(findings: &[mailaudit_core::Finding]) -> Vec<CheckId> {
    findings.iter().map(|f| f.id).collect()
}

/// The server's record of one session: exactly the safe probe's commands, never DATA.
fn assert_safe_session(lab: &PostfixLab, endpoint: &str, rcpt_accepted: u32) {
    let sessions = lab.wait_sessions(endpoint, 1, LOG_WAIT);
    let [session] = sessions.as_slice() else {
        panic!("{endpoint}: one session expected: {sessions:#?}");
    };
    assert!(session.closed, "{session:#?}");
    for (command, want) in [
        ("ehlo", Some((2, 2))),
        ("starttls", Some((1, 1))),
        ("mail", Some((1, 1))),
        ("rcpt", Some((rcpt_accepted, 1))),
        ("data", None),
        ("bdat", None),
        ("rset", Some((1, 1))),
        ("quit", Some((1, 1))),
    ] {
        assert_eq!(
            session.count(command),
            want,
            "{endpoint} {command}: {session:#?}"
        );
    }
    assert!(session.tls.is_some(), "{session:#?}");
}

#[tokio::test]
async fn probe_reports_an_open_tenant_without_sending_data() {
    let Some(lab) = lab() else { return };
    let opts = probe_options(&lab);
    let report = probe_endpoint(&lab, "open", &spoof(), &opts).await;
    let transcript = report.transcript_text();
    assert_eq!(report.verdict, Verdict::Open, "{transcript}");
    assert_eq!(report.stage, Stage::Rcpt, "{transcript}");
    assert!(!report.data_sent, "{transcript}");
    assert_eq!(report.starttls_offered, Some(true));
    assert!(
        report.tls.as_ref().is_some_and(|t| t.cert_valid),
        "{:?}",
        report.tls
    );
    assert_eq!(ids(&findings(TEST_DOMAIN, &report)), [CheckId::RelayOpen]);

    // Postfix's side: no DATA, nothing queued, nothing delivered.
    assert_safe_session(&lab, "open", 1);
    assert!(lab.discarded().is_empty(), "{}", lab.log());
    assert_eq!(lab.wait_queue_empty(std::time::Duration::from_secs(10)), 0);
}

#[tokio::test]
async fn probe_reports_a_tenant_that_rejects_direct_send_as_blocked() {
    let Some(lab) = lab() else { return };
    let opts = probe_options(&lab);
    let report = probe_endpoint(&lab, "blocked", &spoof(), &opts).await;
    let transcript = report.transcript_text();
    assert_eq!(report.verdict, Verdict::Blocked, "{transcript}");
    assert_eq!(report.stage, Stage::Rcpt, "{transcript}");
    assert_eq!(report.reply.as_deref(), Some(BLOCKED_REPLY), "{transcript}");
    assert!(!report.data_sent);
    assert!(
        ids(&findings(TEST_DOMAIN, &report)).is_empty(),
        "{:#?}",
        findings(TEST_DOMAIN, &report)
    );

    assert_safe_session(&lab, "blocked", 0);
    let sessions = lab.sessions();
    assert_eq!(sessions[0].rejects, [BLOCKED_REPLY]);
    assert_eq!(lab.wait_queue_empty(std::time::Duration::from_secs(10)), 0);
}

#[tokio::test]
async fn probe_reports_an_unknown_recipient_as_inconclusive() {
    let Some(lab) = lab() else { return };
    let opts = probe_options(&lab);
    let report = probe_endpoint(&lab, "unknown", &spoof(), &opts).await;
    let transcript = report.transcript_text();
    assert_eq!(report.verdict, Verdict::Inconclusive, "{transcript}");
    assert_eq!(report.stage, Stage::Rcpt, "{transcript}");
    assert_eq!(
        report.reply.as_deref(),
        Some(UNKNOWN_RECIPIENT_REPLY),
        "{transcript}"
    );
    assert!(!report.data_sent);
    assert_eq!(
        ids(&findings(TEST_DOMAIN, &report)),
        [CheckId::RelayInconclusive]
    );
    assert_safe_session(&lab, "unknown", 0);
}

/// Probes `endpoints` in order with the same `opts` and checks each TLS report: version and
/// cipher as Postfix negotiated them, and the certificate verdict (`None`: valid, or the words
/// the reason must contain).
async fn check_certificates(
    lab: &PostfixLab,
    opts: &SmtpOptions,
    endpoints: &[(&str, Option<&str>)],
) {
    let mut seen = std::collections::HashMap::new();
    for &(endpoint, error) in endpoints {
        let report = probe_endpoint(lab, endpoint, &spoof(), opts).await;
        let transcript = report.transcript_text();
        // The certificate never stops the session: the relay verdict is still reached.
        assert_eq!(report.verdict, Verdict::Open, "{endpoint}: {transcript}");
        let tls = report
            .tls
            .as_ref()
            .unwrap_or_else(|| panic!("{endpoint}: no TLS: {transcript}"));
        assert!(
            ["TLSv1.2", "TLSv1.3"].contains(&tls.version.as_str()),
            "{tls:?}"
        );
        assert!(!tls.cipher.is_empty() && tls.cipher != "unknown", "{tls:?}");
        match error {
            None => {
                assert!(tls.cert_valid, "{endpoint}: {tls:?}");
                assert_eq!(tls.cert_error, None);
                assert_eq!(tls.names, [TEST_HOSTNAME]);
            }
            Some(why) => {
                assert!(!tls.cert_valid, "{endpoint}: {tls:?}");
                let reason = tls.cert_error.as_deref().unwrap_or_default();
                assert!(reason.contains(why), "{endpoint}: {reason:?}");
                assert!(
                    ids(&findings(TEST_DOMAIN, &report)).contains(&CheckId::TlsCertInvalid),
                    "{endpoint}"
                );
            }
        }
        // The protocol the probe reports is the one Postfix negotiated.
        let n = seen.entry(endpoint).or_insert(0);
        *n += 1;
        let sessions = lab.wait_sessions(endpoint, *n, LOG_WAIT);
        let server = sessions
            .last()
            .and_then(|s| s.tls.clone())
            .unwrap_or_default();
        assert!(
            server.starts_with(&format!("{} with cipher ", tls.version)),
            "{endpoint}: probe {tls:?}, server {server:?}"
        );
    }
}

#[tokio::test]
async fn probe_judges_the_starttls_certificates() {
    let Some(lab) = lab() else { return };
    for endpoint in [
        ("open", None),
        ("expired", Some("expired")),
        ("mismatched", Some("not valid for name mx.contoso.test")),
    ] {
        check_certificates(&lab, &probe_options(&lab), &[endpoint]).await;
    }
}

/// One options value for every probe, as a bulk run has: an earlier session with the same
/// host name must not stand in for a later one. Postfix issues TLS 1.3 session tickets that
/// are valid across the instance's endpoints (as one MX name's many servers may share ticket
/// keys); a resumed session presents no certificate, and rustls then reports the certificate
/// of the session it resumed.
#[tokio::test]
async fn probe_never_reports_a_resumed_sessions_certificate() {
    let Some(lab) = lab() else { return };
    let opts = probe_options(&lab);
    check_certificates(
        &lab,
        &opts,
        &[
            ("open", None),
            ("expired", Some("expired")),
            ("mismatched", Some("not valid for name mx.contoso.test")),
            ("open", None),
        ],
    )
    .await;
}

#[tokio::test]
async fn probe_reports_a_server_without_starttls() {
    let Some(lab) = lab() else { return };
    let opts = probe_options(&lab);
    let report = probe_endpoint(&lab, "plain", &spoof(), &opts).await;
    assert_eq!(report.starttls_offered, Some(false));
    assert!(report.tls.is_none());
    assert_eq!(report.verdict, Verdict::Open);
    let found = ids(&findings(TEST_DOMAIN, &report));
    assert!(found.contains(&CheckId::StarttlsMissing), "{found:?}");
    let sessions = lab.wait_sessions("plain", 1, LOG_WAIT);
    assert_eq!(sessions[0].count("starttls"), None);
    assert_eq!(sessions[0].count("data"), None);
}

#[tokio::test]
async fn tls_only_probe_sends_no_envelope() {
    let Some(lab) = lab() else { return };
    let opts = probe_options(&lab);
    let cfg = ProbeConfig::tls_only("probe.mailaudit.test");
    let report = probe_endpoint(&lab, "open", &cfg, &opts).await;
    assert!(
        report.tls.as_ref().is_some_and(|t| t.cert_valid),
        "{:?}",
        report.tls
    );
    let sessions = lab.wait_sessions("open", 1, LOG_WAIT);
    let session = &sessions[0];
    for (command, want) in [
        ("ehlo", Some((2, 2))),
        ("starttls", Some((1, 1))),
        ("mail", None),
        ("rcpt", None),
        ("data", None),
        ("quit", Some((1, 1))),
    ] {
        assert_eq!(session.count(command), want, "{command}: {session:#?}");
    }
}

#[tokio::test]
async fn send_test_message_delivers_exactly_one_labelled_message() {
    let Some(lab) = lab() else { return };
    let opts = probe_options(&lab);
    let cfg = ProbeConfig {
        send_test_message: true,
        operator: "security@fabrikam.test".into(),
        ..spoof()
    };
    let report = probe_endpoint(&lab, "open", &cfg, &opts).await;
    let transcript = report.transcript_text();
    assert_eq!(report.verdict, Verdict::Open, "{transcript}");
    assert!(report.data_sent, "{transcript}");

    let discarded = lab.wait_discarded(1, LOG_WAIT);
    let [message] = discarded.as_slice() else {
        panic!("one message expected: {discarded:#?}\n{}", lab.log());
    };
    let address = format!("postmaster@{TEST_DOMAIN}");
    assert_eq!(message.to, address);
    assert_eq!(message.from.as_deref(), Some(address.as_str()));
    assert_eq!(message.endpoint.as_deref(), Some("open"));
    let header = |name: &str| {
        message
            .headers
            .iter()
            .find(|h| h.starts_with(name))
            .cloned()
            .unwrap_or_default()
    };
    assert!(header("Subject:").contains("Security test"), "{message:#?}");
    let label = header("X-Mailaudit-Test:");
    assert!(
        label.contains("security test") && label.contains("security@fabrikam.test"),
        "{message:#?}"
    );

    let sessions = lab.wait_sessions("open", 1, LOG_WAIT);
    let [session] = sessions.as_slice() else {
        panic!("one session expected: {sessions:#?}");
    };
    assert_eq!(session.count("data"), Some((1, 1)), "{session:#?}");
    assert_eq!(session.queue_ids, [message.queue_id.as_str()]);
    // Give the discard agent's removal a moment, then the queue is empty again.
    let deadline = std::time::Instant::now() + LOG_WAIT;
    while lab.queued_files() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lab.wait_queue_empty(std::time::Duration::from_secs(10)), 0);
    // Still exactly one, a moment later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lab.discarded().len(), 1);
}
