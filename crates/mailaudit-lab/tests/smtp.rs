//! The lab SMTP server over real loopback sockets, driven by a raw client (plain text, then
//! TLS through rustls trusting the lab CA).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mailaudit_lab::smtp::{
    BLOCKED_REPLY, Behaviour, DATA_REFUSAL, LabSmtp, LabSmtpOptions, RELAY_DENIED_REPLY,
    SmtpEndpoint, UNKNOWN_RECIPIENT_REPLY,
};
use mailaudit_lab::{LabError, SAMPLE_GATEWAY_REPLY, sample_fleet_smtp};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw SMTP client: sends lines, reads whole (multi-line) replies.
struct Client {
    conn: BufReader<Box<dyn Io>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("the endpoint accepts");
        Client {
            conn: BufReader::new(Box::new(tcp)),
        }
    }

    /// One whole reply, its lines joined with `\n`; `None` at end of stream.
    async fn reply(&mut self) -> Option<String> {
        let mut lines: Vec<String> = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, self.conn.read_line(&mut line))
                .await
                .expect("a reply in time")
                .expect("read");
            if n == 0 {
                return (!lines.is_empty()).then(|| lines.join("\n"));
            }
            assert!(line.ends_with("\r\n"), "CRLF line ends: {line:?}");
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Some(lines.join("\n"));
            }
        }
    }

    async fn send(&mut self, raw: &str) {
        self.conn.write_all(raw.as_bytes()).await.expect("send");
        self.conn.flush().await.expect("flush");
    }

    /// Sends a command and reads its reply.
    async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await.expect("a reply")
    }

    /// STARTTLS was answered 220: runs the handshake for `host`, trusting `ca_pem`.
    async fn upgrade(self, host: &str, ca_pem: &str) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from(host.to_string()).expect("server name");
        let io = self.conn.into_inner();
        let tls = tokio::time::timeout(WAIT, connector.connect(name, io))
            .await
            .expect("handshake in time")
            .expect("the certificate is valid for the host under the lab CA");
        Client {
            conn: BufReader::new(Box::new(tls)),
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

fn endpoint(host: &str, addr: &str, behaviour: Behaviour) -> SmtpEndpoint {
    SmtpEndpoint {
        host: host.into(),
        addrs: vec![ip(addr)],
        domains: vec!["contoso.example".into()],
        behaviour,
    }
}

/// Three endpoints on three loopback addresses of their own (unused by the demo's fleet).
async fn lab() -> LabSmtp {
    LabSmtp::start(vec![
        endpoint(
            "contoso-example.mail.protection.outlook.com",
            "127.0.77.1",
            Behaviour::Open,
        ),
        endpoint("blocked.mx.example", "127.0.77.2", Behaviour::Blocked),
        endpoint(
            "unknown.mx.example",
            "127.0.77.3",
            Behaviour::UnknownRecipient,
        ),
    ])
    .await
    .expect("the lab SMTP server starts")
}

fn addr(lab: &LabSmtp, ip_text: &str) -> SocketAddr {
    SocketAddr::new(ip(ip_text), lab.port())
}

/// Waits for the server to log `n` finished sessions.
async fn sessions(lab: &LabSmtp, n: usize) -> Vec<mailaudit_lab::smtp::SessionRecord> {
    let start = tokio::time::Instant::now();
    loop {
        let s = lab.sessions();
        if s.len() >= n || start.elapsed() > WAIT {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn one_port_on_every_address_each_with_its_own_banner() {
    let lab = lab().await;
    assert_eq!(lab.addrs().len(), 3);
    assert!(lab.addrs().iter().all(|a| a.port() == lab.port()));
    for (ip_text, host) in [
        ("127.0.77.1", "contoso-example.mail.protection.outlook.com"),
        ("127.0.77.2", "blocked.mx.example"),
        ("127.0.77.3", "unknown.mx.example"),
    ] {
        let mut c = Client::connect(addr(&lab, ip_text)).await;
        let banner = c.reply().await.expect("banner");
        assert!(
            banner.starts_with(&format!("220 {host} Microsoft ESMTP MAIL Service")),
            "{banner}"
        );
        assert!(c.cmd("QUIT").await.starts_with("221 2.0.0"));
        assert_eq!(c.reply().await, None, "closed after QUIT");
    }
}

#[tokio::test]
async fn plain_session_open_endpoint() {
    let lab = lab().await;
    let mut c = Client::connect(addr(&lab, "127.0.77.1")).await;
    c.reply().await.expect("banner");
    assert!(
        c.cmd("MAIL FROM:<a@contoso.example>")
            .await
            .starts_with("503 5.5.2")
    );
    let ehlo = c.cmd("EHLO probe.lab.example").await;
    let lines: Vec<&str> = ehlo.lines().collect();
    assert!(
        lines[0].starts_with("250-contoso-example.mail.protection.outlook.com Hello [127.0.0.1]"),
        "{ehlo}"
    );
    for ext in [
        "SIZE 157286400",
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(
            lines.iter().any(|l| l.get(4..) == Some(ext)),
            "{ext} in {ehlo}"
        );
    }
    assert!(lines.last().unwrap().starts_with("250 "), "{ehlo}");
    assert!(
        c.cmd("RCPT TO:<b@contoso.example>")
            .await
            .starts_with("503 5.5.1")
    );
    assert_eq!(
        c.cmd("MAIL FROM:<ceo@contoso.example> SIZE=100").await,
        "250 2.1.0 Sender OK"
    );
    assert!(
        c.cmd("MAIL FROM:<x@contoso.example>")
            .await
            .starts_with("503")
    );
    assert_eq!(
        c.cmd("RCPT TO:<postmaster@Contoso.Example>").await,
        "250 2.1.5 Recipient OK"
    );
    assert_eq!(
        c.cmd("RCPT TO:<someone@fabrikam.example>").await,
        RELAY_DENIED_REPLY
    );
    assert_eq!(c.cmd("RCPT TO:broken").await, "501 5.5.4 Invalid arguments");
    assert_eq!(c.cmd("DATA").await, DATA_REFUSAL);
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 Resetting");
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
    assert_eq!(c.cmd("FOO bar").await, "500 5.3.3 Unrecognized command");
    assert!(c.cmd("QUIT").await.starts_with("221"));
    drop(c);
    let s = sessions(&lab, 1).await;
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].commands,
        [
            "MAIL", "EHLO", "RCPT", "MAIL", "MAIL", "RCPT", "RCPT", "RCPT", "DATA", "RSET", "NOOP",
            "FOO bar", "QUIT"
        ]
    );
    assert_eq!(s[0].count("data"), 1);
    assert!(!s[0].tls);
    assert_eq!(
        s[0].rcpt_replies,
        ["250 2.1.5 Recipient OK", RELAY_DENIED_REPLY]
    );
}

#[tokio::test]
async fn starttls_with_the_lab_ca_then_direct_send_is_blocked() {
    let lab = lab().await;
    let host = "blocked.mx.example";
    let mut c = Client::connect(addr(&lab, "127.0.77.2")).await;
    c.reply().await.expect("banner");
    assert!(
        c.cmd("STARTTLS").await.starts_with("503 5.5.2"),
        "hello first"
    );
    c.cmd("EHLO probe.lab.example").await;
    assert_eq!(c.cmd("STARTTLS").await, "220 2.0.0 SMTP server ready");
    let mut c = c.upgrade(host, lab.ca_pem()).await;
    // The session starts afresh over TLS, and STARTTLS is no longer offered.
    assert!(
        c.cmd("MAIL FROM:<ceo@contoso.example>")
            .await
            .starts_with("503 5.5.2")
    );
    let ehlo = c.cmd("EHLO probe.lab.example").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(c.cmd("STARTTLS").await, "503 5.5.1 Already in TLS");
    c.cmd("MAIL FROM:<ceo@contoso.example>").await;
    assert_eq!(c.cmd("RCPT TO:<cfo@contoso.example>").await, BLOCKED_REPLY);
    // A sender from elsewhere is no Direct Send spoof: accepted.
    c.cmd("RSET").await;
    c.cmd("MAIL FROM:<partner@fabrikam.example>").await;
    assert_eq!(
        c.cmd("RCPT TO:<cfo@contoso.example>").await,
        "250 2.1.5 Recipient OK"
    );
    c.cmd("QUIT").await;
    drop(c);
    let s = sessions(&lab, 1).await;
    assert!(s[0].tls);
    assert_eq!(s[0].count("STARTTLS"), 3);
    assert_eq!(s[0].count("DATA"), 0);
}

#[tokio::test]
async fn unknown_recipient_and_pipelined_commands_in_order() {
    let lab = lab().await;
    let mut c = Client::connect(addr(&lab, "127.0.77.3")).await;
    c.reply().await.expect("banner");
    c.send("EHLO a.example\r\nMAIL FROM:<x@contoso.example>\r\nRCPT TO:<y@contoso.example>\r\nNOOP\r\n")
        .await;
    assert!(c.reply().await.unwrap().starts_with("250-"));
    assert_eq!(c.reply().await.unwrap(), "250 2.1.0 Sender OK");
    assert_eq!(c.reply().await.unwrap(), UNKNOWN_RECIPIENT_REPLY);
    assert_eq!(c.reply().await.unwrap(), "250 2.0.0 OK");
}

#[tokio::test]
async fn plain_text_after_starttls_is_discarded() {
    let lab = lab().await;
    let mut c = Client::connect(addr(&lab, "127.0.77.1")).await;
    c.reply().await.expect("banner");
    c.cmd("EHLO a.example").await;
    // An injected command in the same segment as STARTTLS must not be answered over TLS.
    c.send("STARTTLS\r\nRSET\r\n").await;
    assert_eq!(c.reply().await.unwrap(), "220 2.0.0 SMTP server ready");
    let mut c = c
        .upgrade("contoso-example.mail.protection.outlook.com", lab.ca_pem())
        .await;
    assert_eq!(
        c.cmd("NOOP").await,
        "250 2.0.0 OK",
        "the first reply over TLS is NOOP's"
    );
}

#[tokio::test]
async fn long_lines_idle_clients_and_command_floods_are_cut_off() {
    let opts = LabSmtpOptions {
        idle_timeout: Duration::from_millis(300),
        max_commands: 5,
        ..LabSmtpOptions::default()
    };
    let lab = LabSmtp::start_with(
        vec![endpoint("mx.limits.example", "127.0.77.9", Behaviour::Open)],
        opts,
    )
    .await
    .expect("starts");
    let a = addr(&lab, "127.0.77.9");

    let mut c = Client::connect(a).await;
    c.reply().await.expect("banner");
    let long = format!("NOOP {}", "x".repeat(600));
    assert_eq!(c.cmd(&long).await, "500 5.5.6 Line too long; closing");
    assert_eq!(c.reply().await, None);
    // Without a line end at all.
    let mut c = Client::connect(a).await;
    c.reply().await.expect("banner");
    c.send(&"y".repeat(4000)).await;
    assert_eq!(c.reply().await.unwrap(), "500 5.5.6 Line too long; closing");

    let mut c = Client::connect(a).await;
    c.reply().await.expect("banner");
    let started = std::time::Instant::now();
    let r = c.reply().await.expect("a timeout notice");
    assert!(r.starts_with("421 4.4.2 mx.limits.example"), "{r}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(c.reply().await, None);

    let mut c = Client::connect(a).await;
    c.reply().await.expect("banner");
    for _ in 0..5 {
        assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK");
    }
    assert!(c.cmd("NOOP").await.starts_with("421 4.7.0"));
    assert_eq!(c.reply().await, None);
}

#[tokio::test]
async fn sessions_beyond_the_limit_are_turned_away() {
    let opts = LabSmtpOptions {
        max_sessions: 1,
        ..LabSmtpOptions::default()
    };
    let lab = LabSmtp::start_with(
        vec![endpoint("mx.busy.example", "127.0.77.10", Behaviour::Open)],
        opts,
    )
    .await
    .expect("starts");
    let a = addr(&lab, "127.0.77.10");
    let mut first = Client::connect(a).await;
    first.reply().await.expect("banner");
    let mut second = Client::connect(a).await;
    let r = second.reply().await.expect("a refusal");
    assert!(r.starts_with("421 4.3.2 mx.busy.example"), "{r}");
    assert_eq!(second.reply().await, None);
    // The first session is unaffected, and its end frees the slot.
    assert!(first.cmd("QUIT").await.starts_with("221"));
    sessions(&lab, 1).await;
    // (The session's task ends just after it is logged: allow for that instant.)
    let start = std::time::Instant::now();
    loop {
        let mut third = Client::connect(a).await;
        let r = third.reply().await.expect("a reply");
        if r.starts_with("220 ") {
            break;
        }
        assert!(start.elapsed() < WAIT, "the slot is never freed: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn refuses_bad_configurations() {
    let err = LabSmtp::start(vec![endpoint("mx.example", "192.0.2.25", Behaviour::Open)])
        .await
        .expect_err("not loopback");
    assert!(
        matches!(err, LabError::SmtpConfig(ref m) if m.contains("not a loopback")),
        "{err}"
    );
    let err = LabSmtp::start(vec![
        endpoint("a.example", "127.0.77.20", Behaviour::Open),
        endpoint("b.example", "127.0.77.20", Behaviour::Open),
    ])
    .await
    .expect_err("duplicate");
    assert!(err.to_string().contains("more than one endpoint"), "{err}");
    assert!(LabSmtp::start(Vec::new()).await.is_err());
}

#[tokio::test]
async fn drop_and_shutdown_close_the_ports() {
    let first = lab().await;
    let a = addr(&first, "127.0.77.1");
    let mut c = Client::connect(a).await;
    c.reply().await.expect("banner");
    first.shutdown().await;
    assert_eq!(c.reply().await, None, "the open session is closed too");
    assert!(TcpStream::connect(a).await.is_err());

    let second = lab().await;
    let a = addr(&second, "127.0.77.2");
    drop(second);
    // Aborted tasks release their sockets as the runtime drops them.
    let start = std::time::Instant::now();
    while TcpStream::connect(a).await.is_ok() {
        assert!(start.elapsed() < WAIT, "the port stays open after drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_sample_fleet_endpoints_are_served() {
    let lab = LabSmtp::start(sample_fleet_smtp())
        .await
        .expect("the sample fleet's endpoints start");
    assert!(lab.addrs().len() >= 17, "{:?}", lab.addrs());
    let mut c = Client::connect(SocketAddr::new(ip("127.0.2.11"), lab.port())).await;
    let banner = c.reply().await.unwrap();
    assert!(
        banner.contains("contosolegal-example.o-v1.mx.microsoft"),
        "{banner}"
    );
    c.cmd("EHLO a.example").await;
    c.cmd("STARTTLS").await;
    let mut c = c
        .upgrade("contosolegal-example.o-v1.mx.microsoft", lab.ca_pem())
        .await;
    c.cmd("EHLO a.example").await;
    c.cmd("MAIL FROM:<postmaster@contoso-legal.example>").await;
    assert_eq!(
        c.cmd("RCPT TO:<postmaster@contoso-legal.example>").await,
        BLOCKED_REPLY
    );

    let mut c = Client::connect(SocketAddr::new(ip("127.51.100.21"), lab.port())).await;
    c.reply().await.unwrap();
    c.cmd("EHLO a.example").await;
    c.cmd("MAIL FROM:<postmaster@relecloud-manufacturing.example>")
        .await;
    assert_eq!(
        c.cmd("RCPT TO:<postmaster@relecloud-manufacturing.example>")
            .await,
        SAMPLE_GATEWAY_REPLY
    );
}
