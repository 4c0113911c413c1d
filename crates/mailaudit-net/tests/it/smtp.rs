//! The SMTP probe against in-process scripted peers on 127.0.0.1: honest servers (open,
//! blocked, unknown recipient), STARTTLS peers with certificates made at test time by rcgen,
//! and hostile peers (no banner, slowloris, garbage, greylisting, 421, multi-megabyte lines,
//! failed handshakes, resets, a refused port). Every test bounds how long the probe takes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailaudit_core::CheckId;
use mailaudit_core::smtp::{ProbeConfig, ProbeReport, Stage, Verdict, findings};
use mailaudit_net::smtp::{Politeness, SmtpOptions, TlsRoots, probe};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "mx.lab.test";
const DIRECT_SEND_BLOCK: &str = "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources";

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Everything a peer received, one entry per command (`<MESSAGE>…` for message content).
type Log = Arc<Mutex<Vec<String>>>;

struct Peer {
    addr: SocketAddr,
    log: Log,
    max_concurrent: Arc<AtomicUsize>,
}

impl Peer {
    fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Starts a peer on 127.0.0.1:0 that runs `handler` for each connection.
async fn spawn<F, Fut>(handler: F) -> Peer
where
    F: Fn(TcpStream, Log) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let (l, n, m) = (log.clone(), now.clone(), max.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (h, l, n, m) = (handler.clone(), l.clone(), n.clone(), m.clone());
            tokio::spawn(async move {
                let c = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(c, Ordering::SeqCst);
                h(sock, l).await;
                n.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Peer {
        addr,
        log,
        max_concurrent: max,
    }
}

/// What an honest scripted server answers.
#[derive(Clone)]
struct Script {
    banner: String,
    banner_delay: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
    mail: String,
    rcpt: String,
    data_end: String,
}

impl Script {
    fn new(rcpt: &str) -> Self {
        Script {
            banner: "220 mx.lab.test ESMTP scripted".into(),
            banner_delay: Duration::ZERO,
            tls: None,
            mail: "250 2.1.0 Sender OK".into(),
            rcpt: rcpt.into(),
            data_end: "250 2.6.0 Queued as TEST1".into(),
        }
    }

    fn tls(mut self, cfg: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(cfg);
        self
    }
}

async fn honest(script: Script) -> Peer {
    let script = Arc::new(script);
    spawn(move |sock, log| serve(sock, script.clone(), log)).await
}

async fn say(conn: &mut BufReader<Box<dyn Io>>, text: &str) -> bool {
    let mut out = text.replace("\r\n", "\n").replace('\n', "\r\n");
    out.push_str("\r\n");
    conn.write_all(out.as_bytes()).await.is_ok() && conn.flush().await.is_ok()
}

/// A small SMTP server that records every command it receives.
async fn serve(sock: TcpStream, s: Arc<Script>, log: Log) {
    tokio::time::sleep(s.banner_delay).await;
    let mut conn: BufReader<Box<dyn Io>> = BufReader::new(Box::new(sock));
    if !say(&mut conn, &s.banner).await {
        return;
    }
    let mut in_tls = false;
    loop {
        let mut line = String::new();
        match conn.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end().to_string();
        log.lock().unwrap().push(cmd.clone());
        let verb = cmd
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" if s.tls.is_some() && !in_tls => {
                "250-mx.lab.test\n250-PIPELINING\n250-STARTTLS\n250 SIZE 35882577".to_string()
            }
            "EHLO" => "250-mx.lab.test\n250-PIPELINING\n250 SIZE 35882577".to_string(),
            "STARTTLS" if s.tls.is_some() && !in_tls => {
                if !say(&mut conn, "220 2.0.0 Ready to start TLS").await {
                    return;
                }
                let acceptor = tokio_rustls::TlsAcceptor::from(s.tls.clone().unwrap());
                match acceptor.accept(conn.into_inner()).await {
                    Ok(t) => conn = BufReader::new(Box::new(t)),
                    Err(_) => return,
                }
                in_tls = true;
                continue;
            }
            "MAIL" => s.mail.clone(),
            "RCPT" => s.rcpt.clone(),
            "DATA" => {
                if !say(&mut conn, "354 Start mail input; end with <CRLF>.<CRLF>").await {
                    return;
                }
                let mut msg = String::from("<MESSAGE>");
                loop {
                    let mut l = String::new();
                    match conn.read_line(&mut l).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    msg.push_str(&l);
                }
                log.lock().unwrap().push(msg);
                s.data_end.clone()
            }
            "RSET" => "250 2.0.0 Resetting".to_string(),
            "QUIT" => {
                say(&mut conn, "221 2.0.0 Service closing transmission channel").await;
                return;
            }
            _ => "502 5.5.2 Command not recognized".to_string(),
        };
        if !say(&mut conn, &reply).await || reply.starts_with("421") {
            return;
        }
    }
}

fn cfg() -> ProbeConfig {
    ProbeConfig::relay("probe.lab.test", "ceo@contoso.test")
}

fn opts(reply_ms: u64) -> SmtpOptions {
    SmtpOptions {
        port: 25,
        connect_timeout: Duration::from_millis(500),
        reply_timeout: Duration::from_millis(reply_ms),
        session_timeout: Duration::from_secs(5),
        roots: TlsRoots::webpki(),
        max_reply_line: 4096,
    }
}

/// Far longer than any probe of these tests may take by its own timeouts: only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// Runs a probe. Which of its timeouts ended it (banner, reply, TLS handshake, whole session)
/// is in its reason ("no complete banner within 300 ms"), which the tests check: the peers
/// stall for longer than those timeouts, so an ending by anything else would say otherwise. A
/// wall-clock ceiling would only measure the test machine's load, so the one bound here is
/// [`HANG`]: that the probe ends at all.
async fn run(peer_addr: SocketAddr, c: &ProbeConfig, o: &SmtpOptions) -> ProbeReport {
    tokio::time::timeout(HANG, probe(peer_addr, HOST, c, o))
        .await
        .expect("the probe itself never hangs")
}

fn assert_verdict(r: &ProbeReport, v: Verdict, stage: Stage, phrase: &str) {
    assert_eq!(
        (r.verdict, r.stage),
        (v, stage),
        "{}\n{}",
        r.reason,
        r.transcript_text()
    );
    assert!(
        r.reason.contains(phrase),
        "reason {:?} lacks {phrase:?}\n{}",
        r.reason,
        r.transcript_text()
    );
}

fn verbs(cmds: &[String]) -> Vec<String> {
    cmds.iter()
        .map(|c| {
            if c.starts_with("<MESSAGE>") {
                "<MESSAGE>".to_string()
            } else {
                c.split([' ', ':']).next().unwrap_or("").to_string()
            }
        })
        .collect()
}

// ---------------------------------------------------------------- honest peers

#[tokio::test]
async fn open_server_accepts_the_spoofed_envelope() {
    let peer = honest(Script::new("250 2.1.5 Recipient OK")).await;
    let r = run(peer.addr, &cfg(), &opts(800)).await;
    assert_verdict(
        &r,
        Verdict::Open,
        Stage::Rcpt,
        "Direct Send spoofing is possible",
    );
    assert_eq!(r.reply.as_deref(), Some("250 2.1.5 Recipient OK"));
    assert_eq!(
        peer.commands(),
        [
            "EHLO probe.lab.test",
            "MAIL FROM:<ceo@contoso.test>",
            "RCPT TO:<ceo@contoso.test>",
            "RSET",
            "QUIT"
        ]
    );
    assert_eq!(r.starttls_offered, Some(false));
    assert!(!r.data_sent);
    assert!(r.transcript_text().contains("S: 250 2.1.5 Recipient OK"));
    let ids: Vec<CheckId> = findings("contoso.test", &r).iter().map(|f| f.id).collect();
    assert_eq!(ids, [CheckId::RelayOpen, CheckId::StarttlsMissing]);
}

#[tokio::test]
async fn blocking_server_refuses_at_rcpt() {
    let peer = honest(Script::new(DIRECT_SEND_BLOCK)).await;
    let r = run(peer.addr, &cfg(), &opts(800)).await;
    assert_verdict(
        &r,
        Verdict::Blocked,
        Stage::Rcpt,
        "5.7.68 TenantInboundAttribution",
    );
    assert_eq!(r.reply.as_deref(), Some(DIRECT_SEND_BLOCK));
    assert_eq!(
        verbs(&peer.commands()),
        ["EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    );
}

#[tokio::test]
async fn blocking_server_refuses_at_mail() {
    let mut s = Script::new("250 OK");
    s.mail = DIRECT_SEND_BLOCK.into();
    let peer = honest(s).await;
    let r = run(peer.addr, &cfg(), &opts(800)).await;
    assert_verdict(
        &r,
        Verdict::Blocked,
        Stage::Mail,
        "Direct Send is rejected at MAIL FROM",
    );
    assert_eq!(verbs(&peer.commands()), ["EHLO", "MAIL", "QUIT"]);
}

#[tokio::test]
async fn unknown_recipient_is_inconclusive() {
    let peer = honest(Script::new(
        "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
    ))
    .await;
    let r = run(peer.addr, &cfg(), &opts(800)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Rcpt,
        "recipient is unknown",
    );
    let f = findings("contoso.test", &r);
    assert_eq!(f[0].id, CheckId::RelayInconclusive);
    assert_eq!(
        f[0].evidence.as_deref(),
        Some("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)")
    );
}

#[tokio::test]
async fn no_data_without_send_test_message() {
    // Even a server that would take the message never sees DATA.
    let peer = honest(Script::new("250 2.1.5 Recipient OK")).await;
    let r = run(peer.addr, &cfg(), &opts(800)).await;
    assert!(!r.data_sent);
    let cmds = peer.commands();
    assert!(
        !cmds
            .iter()
            .any(|c| c.eq_ignore_ascii_case("DATA") || c.starts_with("<MESSAGE>"))
    );
    assert!(!r.transcript.iter().any(|l| l.line == "DATA"));
}

#[tokio::test]
async fn send_test_message_sends_exactly_one_labelled_message() {
    let peer = honest(Script::new("250 2.1.5 Recipient OK")).await;
    let c = ProbeConfig {
        send_test_message: true,
        operator: "Lab Operator <ops@probe.lab.test>".into(),
        ..cfg()
    };
    let r = run(peer.addr, &c, &opts(800)).await;
    assert_verdict(&r, Verdict::Open, Stage::Rcpt, "test message was accepted");
    assert!(r.data_sent);
    let cmds = peer.commands();
    assert_eq!(
        verbs(&cmds),
        ["EHLO", "MAIL", "RCPT", "DATA", "<MESSAGE>", "QUIT"]
    );
    let messages: Vec<&String> = cmds.iter().filter(|c| c.starts_with("<MESSAGE>")).collect();
    assert_eq!(messages.len(), 1);
    let m = messages[0];
    assert!(m.contains("Subject: [mailaudit] Security test"), "{m}");
    assert!(
        m.contains("X-Mailaudit-Test: security test of Microsoft 365 Direct Send"),
        "{m}"
    );
    assert!(
        m.contains("run by Lab Operator <ops@probe.lab.test>"),
        "{m}"
    );
    assert!(m.contains("\r\nDate: "), "{m}");
}

// ---------------------------------------------------------------- STARTTLS and certificates

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn pki() -> Pki {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "mailaudit test CA");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

enum Leaf {
    Valid,
    Expired,
    WrongName,
    SelfSigned,
}

fn server_config(pki: &Pki, leaf: Leaf) -> Arc<rustls::ServerConfig> {
    let name = match leaf {
        Leaf::WrongName => "other.lab.test",
        _ => HOST,
    };
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if let Leaf::Expired = leaf {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = match leaf {
        Leaf::SelfSigned => p.self_signed(&key).unwrap(),
        _ => p.signed_by(&key, &pki.issuer).unwrap(),
    };
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Arc::new(cfg)
}

/// Writes the test CA to a file and loads it the way `--ca-file` does.
fn roots_with(pki: &Pki) -> TlsRoots {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "mailaudit-smtp-ca-{}-{}.pem",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, &pki.ca_pem).unwrap();
    let roots = TlsRoots::with_ca_file(&path).expect("the test CA loads");
    let _ = std::fs::remove_file(&path);
    roots
}

async fn tls_probe(leaf: Leaf, with_ca: bool) -> (ProbeReport, Peer) {
    let pki = pki();
    let peer = honest(Script::new("250 2.1.5 Recipient OK").tls(server_config(&pki, leaf))).await;
    let mut o = opts(800);
    if with_ca {
        o.roots = roots_with(&pki);
    }
    let r = run(peer.addr, &cfg(), &o).await;
    (r, peer)
}

#[tokio::test]
async fn starttls_with_a_valid_certificate() {
    let (r, peer) = tls_probe(Leaf::Valid, true).await;
    assert_verdict(&r, Verdict::Open, Stage::Rcpt, "accepted");
    assert_eq!(
        verbs(&peer.commands()),
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    );
    assert_eq!(r.starttls_offered, Some(true));
    let tls = r.tls.as_ref().expect("TLS info");
    assert!(tls.cert_valid, "{tls:?}");
    assert_eq!(tls.cert_error, None);
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.cipher.starts_with("TLS13_"), "{}", tls.cipher);
    assert_eq!(tls.names, [HOST]);
    assert!(tls.not_after.is_some());
    let ids: Vec<CheckId> = findings("contoso.test", &r).iter().map(|f| f.id).collect();
    assert_eq!(ids, [CheckId::RelayOpen]);
}

#[tokio::test]
async fn starttls_with_an_expired_certificate_still_reaches_a_verdict() {
    let (r, _) = tls_probe(Leaf::Expired, true).await;
    assert_verdict(&r, Verdict::Open, Stage::Rcpt, "accepted");
    let tls = r.tls.as_ref().expect("TLS info");
    assert!(!tls.cert_valid);
    let e = tls.cert_error.as_deref().unwrap();
    assert!(
        e.starts_with("expired (notAfter 2001-01-01T00:00:00Z)"),
        "{e}"
    );
    let f = findings("contoso.test", &r);
    assert!(
        f.iter()
            .any(|f| f.id == CheckId::TlsCertInvalid && f.detail.contains("expired"))
    );
}

#[tokio::test]
async fn starttls_with_a_certificate_for_another_name() {
    let (r, _) = tls_probe(Leaf::WrongName, true).await;
    assert_eq!(r.verdict, Verdict::Open);
    let tls = r.tls.as_ref().expect("TLS info");
    assert!(!tls.cert_valid);
    let e = tls.cert_error.as_deref().unwrap();
    assert!(e.contains("not valid for name mx.lab.test"), "{e}");
    assert!(e.contains("other.lab.test"), "{e}");
}

#[tokio::test]
async fn starttls_with_a_self_signed_certificate() {
    let (r, _) = tls_probe(Leaf::SelfSigned, true).await;
    assert_eq!(r.verdict, Verdict::Open);
    let e = r.tls.as_ref().unwrap().cert_error.clone().unwrap();
    assert!(e.starts_with("self-signed"), "{e}");
}

#[tokio::test]
async fn starttls_with_a_private_ca_and_no_ca_file() {
    let (r, _) = tls_probe(Leaf::Valid, false).await;
    assert_eq!(r.verdict, Verdict::Open);
    let e = r.tls.as_ref().unwrap().cert_error.clone().unwrap();
    assert!(e.starts_with("unknown issuer"), "{e}");
}

#[tokio::test]
async fn tls_only_check_reports_starttls_missing() {
    let peer = honest(Script::new("250 OK")).await;
    let r = run(
        peer.addr,
        &ProbeConfig::tls_only("probe.lab.test"),
        &opts(800),
    )
    .await;
    assert_eq!(verbs(&peer.commands()), ["EHLO", "QUIT"]);
    let ids: Vec<CheckId> = findings("contoso.test", &r).iter().map(|f| f.id).collect();
    assert_eq!(ids, [CheckId::StarttlsMissing]);
}

// ---------------------------------------------------------------- hostile peers

#[tokio::test]
async fn no_banner() {
    let peer = spawn(|sock, _| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(sock);
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(300)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Banner,
        "no complete banner within 300 ms",
    );
    assert_eq!(r.reply, None);
    assert_eq!(
        findings("contoso.test", &r)[0].id,
        CheckId::RelayInconclusive
    );
}

#[tokio::test]
async fn slowloris_banner_byte_by_byte() {
    let peer = spawn(|mut sock, _| async move {
        for b in b"220 mx.lab.test ESMTP, very slowly\r\n" {
            if sock.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    // Each byte arrives well within the reply timeout; the whole banner does not.
    let r = run(peer.addr, &cfg(), &opts(400)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Banner,
        "no complete banner within 400 ms",
    );
    assert!(
        r.transcript
            .iter()
            .all(|l| l.dir != mailaudit_core::smtp::Dir::Server)
    );
}

#[tokio::test]
async fn garbage_banner() {
    let peer = spawn(|mut sock, _| async move {
        let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Banner,
        "not a valid SMTP reply at the banner",
    );
    assert!(r.transcript_text().contains("S: HTTP/1.1 400 Bad Request"));
}

#[tokio::test]
async fn garbage_after_ehlo() {
    let peer = spawn(|mut sock, _| async move {
        let _ = sock.write_all(b"220 mx.lab.test ESMTP\r\n").await;
        let mut buf = [0u8; 256];
        let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
        let _ = sock
            .write_all(b"250-mx.lab.test\r\n\x00\xff\xfe binary junk\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Ehlo,
        "not a valid SMTP reply at EHLO",
    );
}

#[tokio::test]
async fn mismatched_codes_in_a_multiline_reply() {
    let peer = spawn(|mut sock, _| async move {
        let _ = sock.write_all(b"220-mx.lab.test ESMTP\r\n554 no\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Banner,
        "reply code changed",
    );
}

#[tokio::test]
async fn greylisting_4xx_at_rcpt() {
    let peer = honest(Script::new(
        "450 4.2.0 <ceo@contoso.test>: Recipient address rejected: Greylisted, try again later",
    ))
    .await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(&r, Verdict::Inconclusive, Stage::Rcpt, "greylisting");
    assert_eq!(
        verbs(&peer.commands()),
        ["EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    );
}

#[tokio::test]
async fn ip_reputation_refusal_at_the_banner() {
    let mut s = Script::new("250 OK");
    s.banner =
        "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using Spamhaus".into();
    let peer = honest(s).await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(&r, Verdict::Inconclusive, Stage::Banner, "reputation");
}

#[tokio::test]
async fn service_closing_421_mid_session() {
    let mut s = Script::new("250 OK");
    s.mail = "421 4.3.2 Service not available, closing transmission channel".into();
    let peer = honest(s).await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(&r, Verdict::Inconclusive, Stage::Mail, "closed the session");
    assert_eq!(verbs(&peer.commands()), ["EHLO", "MAIL"]);
}

#[tokio::test]
async fn multi_megabyte_reply_line() {
    let peer = spawn(|mut sock, _| async move {
        let _ = sock.write_all(b"220 ").await;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            // 4 MiB in all, unless the client stops reading.
            if sock.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = sock.write_all(b"\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(800)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Banner,
        "exceeds 4096 octets",
    );
    // It stopped at the cap: the count in the reason is the cap plus at most one read.
    let read: usize = r
        .reason
        .rsplit("after ")
        .next()
        .and_then(|s| s.trim_end_matches(')').parse().ok())
        .expect("the reason says how much was read");
    assert!(read <= 2 * 4096 + 4, "read {read}");
}

#[tokio::test]
async fn too_many_reply_lines() {
    let peer = spawn(|mut sock, _| async move {
        for _ in 0..10_000 {
            if sock.write_all(b"220-flood\r\n").await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(800)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::Banner,
        "more than 100 lines",
    );
}

#[tokio::test]
async fn tls_handshake_failure() {
    let peer = spawn(|mut sock, log| async move {
        let _ = sock.write_all(b"220 mx.lab.test ESMTP\r\n").await;
        let mut r = BufReader::new(&mut sock);
        let mut line = String::new();
        let _ = r.read_line(&mut line).await;
        log.lock().unwrap().push(line.trim_end().to_string());
        let _ = sock.write_all(b"250-mx.lab.test\r\n250 STARTTLS\r\n").await;
        let mut r = BufReader::new(&mut sock);
        let mut line = String::new();
        let _ = r.read_line(&mut line).await;
        log.lock().unwrap().push(line.trim_end().to_string());
        // Plaintext after the 220 (which the client must discard, not read as TLS data),
        // then, once the client has started its handshake, bytes that are not TLS.
        let _ = sock
            .write_all(b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = sock.write_all(b"this is not a TLS record at all\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::StartTls,
        "TLS handshake failed",
    );
    assert_eq!(r.starttls_offered, Some(true));
    assert_eq!(r.tls, None);
    assert!(
        r.transcript_text().contains("discarded"),
        "{}",
        r.transcript_text()
    );
}

#[tokio::test]
async fn tls_handshake_stalls() {
    let peer = spawn(|mut sock, _| async move {
        let _ = sock.write_all(b"220 mx.lab.test ESMTP\r\n").await;
        let mut buf = [0u8; 256];
        let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
        let _ = sock.write_all(b"250-mx.lab.test\r\n250 STARTTLS\r\n").await;
        let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
        let _ = sock.write_all(b"220 2.0.0 Ready to start TLS\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(400)).await;
    assert_verdict(
        &r,
        Verdict::Inconclusive,
        Stage::StartTls,
        "did not complete within 400 ms",
    );
}

#[tokio::test]
async fn connection_reset() {
    let peer = spawn(|mut sock, _| async move {
        let _ = sock.write_all(b"220 mx.lab.test ESMTP\r\n").await;
        let mut buf = [0u8; 256];
        let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
        let _ = sock.set_zero_linger();
        drop(sock);
    })
    .await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_verdict(&r, Verdict::Inconclusive, Stage::Ehlo, "reset");
}

#[tokio::test]
async fn connection_closed_without_banner() {
    let peer = spawn(|sock, _| async move { drop(sock) }).await;
    let r = run(peer.addr, &cfg(), &opts(500)).await;
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(
        r.reason.contains("closed") || r.reason.contains("reset"),
        "{}",
        r.reason
    );
}

#[tokio::test]
async fn refused_port() {
    // A leased port: nothing listens on it, and no other test's socket can take it meanwhile
    // (a port bound and released here could be handed to one).
    let lease = mailaudit_lab::lease_ports(1).unwrap().remove(0);
    let addr = SocketAddr::from(([127, 0, 0, 1], lease.port()));
    let r = run(addr, &cfg(), &opts(500)).await;
    assert_verdict(&r, Verdict::Inconclusive, Stage::Connect, "refused");
    assert!(r.reason.contains("port 25"), "{}", r.reason);
    assert_eq!(r.starttls_offered, None);
    let f = findings("contoso.test", &r);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].id, CheckId::RelayInconclusive);
}

#[tokio::test]
async fn whole_session_timeout() {
    // Every reply comes within the reply timeout, but the session is too slow overall.
    let peer = spawn(|sock, log| async move {
        let mut conn = BufReader::new(sock);
        let slow = Duration::from_millis(200);
        tokio::time::sleep(slow).await;
        let _ = conn.get_mut().write_all(b"220 mx.lab.test\r\n").await;
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            log.lock().unwrap().push(line.trim_end().to_string());
            tokio::time::sleep(slow).await;
            if conn.get_mut().write_all(b"250 OK\r\n").await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut o = opts(300);
    o.session_timeout = Duration::from_millis(500);
    let r = run(peer.addr, &cfg(), &o).await;
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(
        r.reason.contains("did not finish within 500 ms"),
        "{}",
        r.reason
    );
}

// ---------------------------------------------------------------- politeness

#[tokio::test]
async fn politeness_never_overlaps_sessions_to_one_host() {
    let mut s = Script::new("250 2.1.5 Recipient OK");
    s.banner_delay = Duration::from_millis(100);
    let peer = honest(s).await;
    let polite = Politeness::new(8, 1, Duration::from_millis(50));
    let (o, c) = (opts(800), cfg());
    let start = Instant::now();
    let one = polite.run(HOST, probe(peer.addr, HOST, &c, &o));
    let two = polite.run("MX.LAB.TEST.", probe(peer.addr, HOST, &c, &o));
    let (a, b) = tokio::join!(one, two);
    assert_eq!((a.verdict, b.verdict), (Verdict::Open, Verdict::Open));
    assert_eq!(peer.max_concurrent.load(Ordering::SeqCst), 1);
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        verbs(&peer.commands())
            .iter()
            .filter(|v| *v == "EHLO")
            .count(),
        2
    );
}
