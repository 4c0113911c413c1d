//! The IMAP client against a real Dovecot on loopback (`mailaudit_lab::dovecot`): login with a
//! good and a bad password, plaintext refused unless allowed, messages fetched whole through
//! literals (byte for byte), the UID search behind the cursor, UIDVALIDITY, flagging and moving,
//! STARTTLS and IMAPS with a certificate from a test CA made here with rcgen; and scripted
//! hostile servers (a huge literal, a literal over the cap, garbage, a stall, a drop in the middle
//! of a literal, an endless line, bytes injected after the STARTTLS answer) that must end in a
//! clear error, never a panic or a hang. IDLE (RFC 2177): Dovecot wakes the client when a
//! message is delivered; scripted servers that announce new mail among other updates, never
//! answer DONE, send garbage or BYE during IDLE, or offer no IDLE.
//!
//! Each Dovecot test starts its own instance (a fraction of a second), so tests run in parallel.
//! Needs Dovecot (`scripts/install-test-deps.sh`); set `MAILAUDIT_SKIP_DOVECOT=1` to skip these on
//! a machine without it; without it a missing Dovecot fails them.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mailaudit_core::imap::ImapUrl;
use mailaudit_lab::dovecot::{DovecotConfig, DovecotLab};
use mailaudit_lab::postfix::TlsIdentity;
use mailaudit_lab::{LabDns, Zone};
use mailaudit_net::Resolver;
use mailaudit_net::imap::{IdleOutcome, ImapError, ImapOptions, Session};
use mailaudit_net::smtp::TlsRoots;
use mailaudit_net::transport::TransportError;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const USER: &str = "dmarc@contoso.test";
const PASSWORD: &str = "r3ports-Only!";

/// A CA and a certificate for 127.0.0.1 it signed, made once per test binary.
struct Pki {
    ca_pem: String,
    leaf: TlsIdentity,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mailaudit IMAP test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("IP")));
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &ca).expect("leaf certificate");
        Pki {
            ca_pem: ca.pem(),
            leaf: TlsIdentity {
                key_pem: key.serialize_pem(),
                chain_pem: cert.pem(),
            },
        }
    })
}

/// Starts a Dovecot lab, with TLS when asked; `None` when `MAILAUDIT_SKIP_DOVECOT` is set and
/// Dovecot cannot run here.
fn lab(tls: bool) -> Option<DovecotLab> {
    let mut config = DovecotConfig::new(USER, PASSWORD);
    if tls {
        config = config.with_tls(pki().leaf.clone());
    }
    mailaudit_lab::or_skip(DovecotLab::start(&config), "MAILAUDIT_SKIP_DOVECOT")
}

/// A resolver that would ask the lab DNS server, which has no data: every test here connects
/// to an IP literal, so nothing is asked at all.
async fn dns() -> (LabDns, Resolver) {
    crate::lab(Zone::default()).await
}

fn url(scheme: &str, addr: std::net::SocketAddr, mailbox: &str) -> ImapUrl {
    ImapUrl::parse(&format!(
        "{scheme}://{}@{addr}/{mailbox}",
        USER.replace('@', "%40")
    ))
    .expect("URL")
}

fn plain_opts() -> ImapOptions {
    ImapOptions {
        allow_plaintext: true,
        timeout: Duration::from_secs(10),
        ..ImapOptions::new(TlsRoots::webpki())
    }
}

fn tls_opts() -> ImapOptions {
    ImapOptions {
        timeout: Duration::from_secs(10),
        ..ImapOptions::new(TlsRoots::with_ca_pem(pki().ca_pem.as_bytes()).expect("CA"))
    }
}

/// A message with CRLF line ends (as IMAP serves it), `n` making it unique; it holds text that
/// looks like IMAP syntax (a literal announcement, parentheses, quotes) and 8-bit bytes.
fn message(n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: reporter@example.net\r\nTo: {USER}\r\nSubject: Report {n}\r\n\
         Message-ID: <{n}@example.net>\r\n\r\nbody {n} {{5}}\r\n) \"quoted\" (\r\n* 1 FETCH (UID 9)\r\n"
    )
    .into_bytes();
    m.extend_from_slice(b"8-bit: \xe9\xff\r\n");
    m
}

#[tokio::test]
async fn login_ok_bad_password_and_plaintext_refused() {
    let Some(lab) = lab(false) else { return };
    let (_dns, dns) = dns().await;
    let u = url("imap", lab.addr(), "INBOX");
    // Without --allow-plaintext, a server without STARTTLS gets no credentials.
    let err = Session::connect(&u, &dns, &ImapOptions::new(TlsRoots::webpki()))
        .await
        .expect_err("plaintext refused");
    assert!(matches!(err, ImapError::NoStartTls { .. }), "{err}");
    assert!(err.to_string().contains("--allow-plaintext"), "{err}");

    let mut s = Session::connect(&u, &dns, &plain_opts())
        .await
        .expect("connect");
    assert!(!s.is_tls());
    let err = s.login(USER, "wrong").await.expect_err("bad password");
    assert!(matches!(err, ImapError::Login { .. }), "{err}");
    assert!(!err.is_connection());
    assert!(!err.to_string().contains("wrong"), "{err}");
    s.logout().await;

    let mut s = Session::connect(&u, &dns, &plain_opts())
        .await
        .expect("connect");
    s.login(USER, PASSWORD).await.expect("login");
    let info = s.select("INBOX", true).await.expect("EXAMINE");
    assert_eq!(info.exists, 0);
    assert_eq!(
        info.uid_validity,
        lab.uid_validity("INBOX").expect("uidvalidity")
    );
    let err = s
        .select("No such box", true)
        .await
        .expect_err("missing mailbox");
    assert!(matches!(err, ImapError::Command { .. }), "{err}");
    s.logout().await;
    let log = lab.log();
    assert!(log.contains("method=PLAIN"), "{log}");
}

#[tokio::test]
async fn fetch_whole_messages_through_literals_after_the_cursor() {
    let Some(lab) = lab(false) else { return };
    let (_dns, dns) = dns().await;
    let mut sent: Vec<Vec<u8>> = (1..=3).map(message).collect();
    // A large message: literals are read in chunks.
    let mut big = message(4);
    for i in 0..20_000 {
        big.extend_from_slice(format!("line {i} of a long attachment\r\n").as_bytes());
    }
    sent.push(big);
    for m in &sent {
        lab.deliver("INBOX", m).expect("deliver");
    }
    let mut s = Session::connect(&url("imap", lab.addr(), "INBOX"), &dns, &plain_opts())
        .await
        .expect("connect");
    s.login(USER, PASSWORD).await.expect("login");
    let info = s.select("INBOX", true).await.expect("EXAMINE");
    assert_eq!(info.exists, 4);
    let uids = s.search_from(1).await.expect("search");
    assert_eq!(uids, [1, 2, 3, 4]);
    let sizes = s.sizes(&uids).await.expect("sizes");
    for ((uid, size), m) in sizes.iter().zip(&sent) {
        assert_eq!(*size, m.len() as u64, "size of {uid}");
        let body = s.fetch(*uid).await.expect("fetch").expect("exists");
        assert_eq!(&body, m, "message {uid} byte for byte");
    }
    // The cursor: after the last UID there is nothing, although `4:*` would name message 4.
    assert_eq!(s.search_from(5).await.expect("search"), Vec::<u32>::new());
    assert_eq!(s.fetch(99).await.expect("fetch"), None);
    // A new message is found after the cursor in the same session.
    lab.deliver("INBOX", &message(5)).expect("deliver");
    s.noop().await.expect("NOOP");
    assert_eq!(s.search_from(5).await.expect("search"), [5]);
    // EXAMINE and BODY.PEEK: nothing was marked read.
    s.logout().await;
    let out = std::process::Command::new("doveadm")
        .arg("-c")
        .arg(lab.dir().join("dovecot.conf"))
        .args(["search", "-u", USER, "mailbox", "INBOX", "SEEN"])
        .output()
        .expect("doveadm search");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn uidvalidity_changes_when_the_mailbox_is_recreated_and_messages_move() {
    let Some(lab) = lab(false) else { return };
    let (_dns, dns) = dns().await;
    lab.create_mailbox("Reports").expect("create");
    lab.create_mailbox("Traités").expect("create");
    lab.deliver("Reports", &message(1)).expect("deliver");
    lab.deliver("Reports", &message(2)).expect("deliver");
    let opts = plain_opts();
    let u = url("imap", lab.addr(), "Reports");
    let mut s = Session::connect(&u, &dns, &opts).await.expect("connect");
    s.login(USER, PASSWORD).await.expect("login");
    let first = s.select("Reports", false).await.expect("SELECT");
    assert_eq!(s.search_from(1).await.expect("search"), [1, 2]);
    s.mark_seen(1).await.expect("flag");
    s.move_to(2, "Traités").await.expect("move");
    s.logout().await;
    assert_eq!(lab.count("Reports").expect("count"), 1);
    assert_eq!(lab.count("Traités").expect("count"), 1);

    lab.recreate_mailbox("Reports").expect("recreate");
    let mut s = Session::connect(&u, &dns, &opts).await.expect("connect");
    s.login(USER, PASSWORD).await.expect("login");
    let second = s.select("Reports", true).await.expect("EXAMINE");
    assert_ne!(first.uid_validity, second.uid_validity);
    assert_eq!(second.exists, 0);
    s.logout().await;
}

#[tokio::test]
async fn starttls_and_imaps_with_a_private_ca() {
    let Some(lab) = lab(true) else { return };
    let (_dns, dns) = dns().await;
    lab.deliver("INBOX", &message(1)).expect("deliver");
    let imaps = lab.tls_addr().expect("IMAPS port");
    for u in [
        url("imaps", imaps, "INBOX"),
        url("imap", lab.addr(), "INBOX"),
    ] {
        let mut s = Session::connect(&u, &dns, &tls_opts())
            .await
            .expect("connect");
        assert!(s.is_tls(), "{u}");
        // After STARTTLS the capabilities are asked again: no STARTTLS any more, AUTH=PLAIN.
        assert!(!s.has("STARTTLS"), "{:?}", s.capabilities());
        s.login(USER, PASSWORD).await.expect("login");
        s.select("INBOX", true).await.expect("EXAMINE");
        assert_eq!(
            s.fetch(1).await.expect("fetch").expect("exists"),
            message(1),
            "{u}"
        );
        s.logout().await;
    }
    // --allow-plaintext never downgrades: a server offering STARTTLS gets it.
    let s = Session::connect(
        &url("imap", lab.addr(), "INBOX"),
        &dns,
        &ImapOptions {
            allow_plaintext: true,
            ..tls_opts()
        },
    )
    .await
    .expect("connect");
    assert!(s.is_tls());
    s.logout().await;
    // Without the CA the certificate is refused, before any credentials are sent.
    for u in [
        url("imaps", imaps, "INBOX"),
        url("imap", lab.addr(), "INBOX"),
    ] {
        let err = Session::connect(&u, &dns, &ImapOptions::new(TlsRoots::webpki()))
            .await
            .expect_err("unknown CA");
        assert!(
            matches!(err, ImapError::Transport(TransportError::Tls { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("issuer"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted hostile servers
// ---------------------------------------------------------------------------------------------

/// What the scripted server does in answer to a command.
enum Act {
    /// Sends these bytes and reads the next command.
    Send(Vec<u8>),
    /// Sends these bytes and closes the connection.
    SendClose(Vec<u8>),
    /// Sends these bytes and then nothing, never closing.
    SendStall(Vec<u8>),
}

/// A one-connection IMAP server on 127.0.0.1 that greets with `greeting` and answers each
/// command with `respond(tag, command)`. Returns its address and the commands it received.
async fn scripted(
    greeting: &'static [u8],
    mut respond: impl FnMut(&str, &str) -> Act + Send + 'static,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        if w.write_all(greeting).await.is_err() {
            return;
        }
        loop {
            let mut line = String::new();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end().to_string();
            log.lock().expect("lock").push(line.clone());
            let (tag, cmd) = line.split_once(' ').unwrap_or((&line, ""));
            match respond(tag, cmd) {
                Act::Send(b) => {
                    if w.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Act::SendClose(b) => {
                    let _ = w.write_all(&b).await;
                    return;
                }
                Act::SendStall(b) => {
                    let _ = w.write_all(&b).await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
            }
        }
    });
    (addr, seen)
}

const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hostile ready\r\n";

/// Answers login and EXAMINE normally; `fetch` answers `UID FETCH`.
fn normal(tag: &str, cmd: &str, fetch: fn(&str) -> Act) -> Act {
    let upper = cmd.to_ascii_uppercase();
    if upper.starts_with("AUTHENTICATE") {
        Act::Send(format!("{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n").into_bytes())
    } else if upper.starts_with("EXAMINE") || upper.starts_with("SELECT") {
        Act::Send(
            format!("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-ONLY] done\r\n")
                .into_bytes(),
        )
    } else if upper.starts_with("UID FETCH") {
        fetch(tag)
    } else {
        Act::Send(format!("{tag} OK done\r\n").into_bytes())
    }
}

/// Far longer than any session of these tests may take by its own timeouts: only a hang
/// reaches it. Which limit ended a session is in its error (`ImapError::Timeout`'s stage and
/// limit), which the tests check, not a wall-clock ceiling that would measure the machine's load.
const HANG: Duration = Duration::from_secs(60);

/// Connects to the scripted server, logs in, selects and fetches UID 1, with a short timeout
/// and a small literal cap. The attempt must end (within [`HANG`]), with an error.
async fn fetch_from(addr: std::net::SocketAddr) -> ImapError {
    let (_dns, dns) = dns().await;
    let opts = ImapOptions {
        timeout: Duration::from_millis(500),
        max_literal: 1024 * 1024,
        ..plain_opts()
    };
    let result = tokio::time::timeout(HANG, async {
        let mut s = Session::connect(&url("imap", addr, "INBOX"), &dns, &opts).await?;
        s.login(USER, PASSWORD).await?;
        s.select("INBOX", true).await?;
        s.fetch(1).await
    })
    .await
    .expect("the session never hangs");
    result.expect_err("the hostile server must cause an error")
}

#[tokio::test]
async fn hostile_huge_literal_is_refused_before_reading_it() {
    let (addr, _) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |_| {
            Act::SendStall(b"* 1 FETCH (UID 1 BODY[] {99999999999999}\r\n".to_vec())
        })
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("99999999999999"), "{err}");
}

#[tokio::test]
async fn hostile_literal_over_the_cap_is_refused() {
    let (addr, _) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |_| {
            Act::SendStall(b"* 1 FETCH (UID 1 BODY[] {1048577}\r\n".to_vec())
        })
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn hostile_garbage_is_a_protocol_error() {
    let (addr, _) = scripted(b"\x00\xff\xfeGARBAGE\r\n", |tag, _| {
        Act::Send(format!("{tag} OK\r\n").into_bytes())
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::Protocol { .. }), "{err}");
    // Garbage inside a FETCH response too.
    let (addr, _) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |_| {
            Act::Send(b"* 1 FETCH (UID ((((( BODY[] \"x)\r\n".to_vec())
        })
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn hostile_stall_times_out() {
    // Silent after the greeting.
    let (addr, _) = scripted(GREETING, |_, _| Act::SendStall(Vec::new())).await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::Timeout { .. }), "{err}");
    // Silent in the middle of a literal.
    let (addr, _) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |_| {
            Act::SendStall(b"* 1 FETCH (UID 1 BODY[] {100}\r\nonly ten b".to_vec())
        })
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("literal"), "{err}");
}

#[tokio::test]
async fn hostile_drop_mid_literal_is_reported() {
    let (addr, _) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |_| {
            Act::SendClose(b"* 1 FETCH (UID 1 BODY[] {100}\r\nonly ten b".to_vec())
        })
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::Closed { .. }), "{err}");
    assert!(err.is_connection());
    assert!(
        err.to_string().contains("after 10 of the 100 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn hostile_endless_line_is_refused() {
    let (addr, _) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |_| {
            let mut b = b"* 1 FETCH (UID 1 X-JUNK \"".to_vec();
            b.extend(std::iter::repeat_n(b'a', 200 * 1024));
            Act::SendStall(b)
        })
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn hostile_bye_and_starttls_injection() {
    // BYE in answer to a command: the connection is closed, with the server's words.
    let (addr, _) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |_| {
            Act::SendClose(b"* BYE going away now\r\n".to_vec())
        })
    })
    .await;
    let err = fetch_from(addr).await;
    assert!(matches!(err, ImapError::Closed { .. }), "{err}");
    assert!(err.to_string().contains("going away now"), "{err}");

    // Bytes after the STARTTLS answer, before the handshake: refused, nothing else sent.
    let (addr, seen) = scripted(
        b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n",
        |tag, cmd| {
            if cmd.eq_ignore_ascii_case("STARTTLS") {
                Act::SendStall(format!("{tag} OK Begin TLS\r\n* OK injected\r\n").into_bytes())
            } else {
                Act::Send(format!("{tag} BAD no\r\n").into_bytes())
            }
        },
    )
    .await;
    let (_dns, dns) = dns().await;
    let err = Session::connect(&url("imap", addr, "INBOX"), &dns, &tls_opts())
        .await
        .expect_err("injection refused");
    assert!(err.to_string().contains("injection"), "{err}");
    assert_eq!(*seen.lock().expect("lock"), ["m1 STARTTLS"]);
}

// ---------------------------------------------------------------------------------------------
// IDLE (RFC 2177)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rfc2177_idle_wakes_on_a_delivery_to_dovecot() {
    let Some(lab) = lab(false) else { return };
    let (_dns, dns) = dns().await;
    lab.deliver("INBOX", &message(1)).expect("deliver");
    let mut s = Session::connect(&url("imap", lab.addr(), "INBOX"), &dns, &plain_opts())
        .await
        .expect("connect");
    s.login(USER, PASSWORD).await.expect("login");
    assert!(s.supports_idle(), "{:?}", s.capabilities());
    s.select("INBOX", true).await.expect("EXAMINE");
    // Nothing new: the wait passes, DONE is answered, the session goes on.
    let started = Instant::now();
    assert_eq!(
        s.idle(Duration::from_millis(300)).await.expect("idle"),
        IdleOutcome::Elapsed
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(s.search_from(1).await.expect("search"), [1]);
    // A delivery during IDLE wakes the client long before the 60 s wait.
    let dir = lab.dir().to_path_buf();
    let deliver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let out = std::process::Command::new("doveadm")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .args(["save", "-u", USER, "-m", "INBOX"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().expect("stdin").write_all(&message(2))?;
                c.wait()
            });
        (Instant::now(), out)
    });
    let outcome = s.idle(Duration::from_secs(60)).await.expect("idle");
    let woke = Instant::now();
    let (delivered, status) = deliver.join().expect("deliver thread");
    assert!(status.expect("doveadm save").success());
    assert_eq!(outcome, IdleOutcome::NewMail { exists: 2 });
    // `NewMail` (not `Elapsed`) within the 60 s wait: the delivery woke it. How soon is the
    // machine's business; it is shown, not asserted.
    let lag = woke.saturating_duration_since(delivered);
    eprintln!("IDLE woke {lag:?} after the delivery");
    assert_eq!(s.search_from(2).await.expect("search"), [2]);
    s.logout().await;
}

const IDLE_GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR IDLE] ready\r\n";

/// A server offering IDLE: login and EXAMINE answered normally, `IDLE` with `on_idle`, `DONE`
/// with `on_done(idle_tag)`.
fn idle_server(
    on_idle: fn() -> Act,
    on_done: fn(&str) -> Act,
) -> impl FnMut(&str, &str) -> Act + Send + 'static {
    let mut idle_tag = String::new();
    move |tag, cmd| {
        let upper = cmd.to_ascii_uppercase();
        if tag.eq_ignore_ascii_case("DONE") && cmd.is_empty() {
            on_done(&idle_tag)
        } else if upper == "IDLE" {
            idle_tag = tag.to_string();
            on_idle()
        } else if upper.starts_with("AUTHENTICATE") {
            Act::Send(format!("{tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n").into_bytes())
        } else {
            normal(tag, cmd, |t| {
                Act::Send(format!("{t} OK done\r\n").into_bytes())
            })
        }
    }
}

/// Logs in to the scripted server at `addr` and selects INBOX, with a 500 ms timeout.
async fn idle_session(addr: std::net::SocketAddr) -> Result<Session, ImapError> {
    let (_dns, dns) = dns().await;
    let opts = ImapOptions {
        timeout: Duration::from_millis(500),
        ..plain_opts()
    };
    let mut s = Session::connect(&url("imap", addr, "INBOX"), &dns, &opts).await?;
    s.login(USER, PASSWORD).await?;
    s.select("INBOX", true).await?;
    Ok(s)
}

#[tokio::test]
async fn rfc2177_idle_reports_exists_and_ignores_other_updates() {
    let (addr, seen) = scripted(
        IDLE_GREETING,
        idle_server(
            || {
                Act::Send(
                    b"+ idling\r\n* 2 EXPUNGE\r\n* 1 FETCH (FLAGS (\\Seen))\r\n\
                      * OK Still here\r\n* 3 EXISTS\r\n"
                        .to_vec(),
                )
            },
            |tag| Act::Send(format!("{tag} OK IDLE terminated\r\n").into_bytes()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    // `NewMail`, not `Elapsed`: the update ended the 30 s wait.
    let outcome = s.idle(Duration::from_secs(30)).await.expect("idle");
    assert_eq!(outcome, IdleOutcome::NewMail { exists: 3 });
    // The session goes on after DONE.
    s.noop().await.expect("NOOP after IDLE");
    assert_eq!(
        seen.lock().expect("lock")[2..],
        ["m3 IDLE", "DONE", "m4 NOOP"]
    );

    // No update: the wait passes and DONE ends the IDLE.
    let (addr, seen) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::Send(b"+ idling\r\n".to_vec()),
            |tag| Act::Send(format!("* OK queued\r\n{tag} OK IDLE terminated\r\n").into_bytes()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    let started = Instant::now();
    let outcome = s.idle(Duration::from_millis(700)).await.expect("idle");
    assert_eq!(outcome, IdleOutcome::Elapsed);
    // The whole wait, then DONE (answered at once, as `seen` shows).
    assert!(
        started.elapsed() >= Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen.lock().expect("lock")[2..], ["m3 IDLE", "DONE"]);
}

#[tokio::test]
async fn rfc2177_new_mail_announced_during_a_command_skips_the_idle() {
    // `* 4 EXISTS` in the answer to NOOP (mail that arrived during a poll): no IDLE is sent.
    let (addr, seen) = scripted(IDLE_GREETING, |tag, cmd| {
        if cmd.eq_ignore_ascii_case("NOOP") {
            Act::Send(format!("* 4 EXISTS\r\n{tag} OK done\r\n").into_bytes())
        } else if cmd.eq_ignore_ascii_case("IDLE") {
            Act::SendStall(Vec::new())
        } else {
            idle_server(
                || Act::SendStall(Vec::new()),
                |_| Act::SendStall(Vec::new()),
            )(tag, cmd)
        }
    })
    .await;
    let mut s = idle_session(addr).await.expect("session");
    s.noop().await.expect("NOOP");
    assert_eq!(
        s.idle(Duration::from_secs(30)).await.expect("idle"),
        IdleOutcome::NewMail { exists: 4 }
    );
    assert!(
        !seen
            .lock()
            .expect("lock")
            .iter()
            .any(|c| c.contains("IDLE"))
    );
}

#[tokio::test]
async fn hostile_idle_server_that_never_answers_done_times_out() {
    let (addr, seen) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::Send(b"+ idling\r\n".to_vec()),
            |_| Act::SendStall(b"* OK still thinking\r\n".to_vec()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    let err = s
        .idle(Duration::from_millis(200))
        .await
        .expect_err("no answer to DONE");
    // 200 ms of IDLE, then the session's one 500 ms timeout for the answer to DONE.
    assert!(
        matches!(&err, ImapError::Timeout { stage, limit }
            if stage.contains("DONE") && *limit == Duration::from_millis(500)),
        "{err:?}"
    );
    assert!(err.to_string().contains("DONE"), "{err}");
    assert!(err.is_connection());
    assert_eq!(
        seen.lock().expect("lock").last().map(String::as_str),
        Some("DONE")
    );

    // Silent after IDLE (no continuation): the usual timeout.
    let (addr, _) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::SendStall(Vec::new()),
            |_| Act::SendStall(Vec::new()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    let err = s
        .idle(Duration::from_secs(30))
        .await
        .expect_err("no continuation");
    assert!(matches!(err, ImapError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn hostile_idle_garbage_bye_and_drop_are_errors() {
    // Garbage during IDLE: a protocol error, no panic.
    let (addr, _) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::SendStall(b"+ idling\r\n\x00\xff\xfeGARBAGE\r\n".to_vec()),
            |_| Act::SendStall(Vec::new()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    let err = s.idle(Duration::from_secs(30)).await.expect_err("garbage");
    assert!(matches!(err, ImapError::Protocol { .. }), "{err}");
    // A tagged answer for a command that is not running.
    let (addr, _) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::SendStall(b"+ idling\r\nm1 OK stray\r\n".to_vec()),
            |_| Act::SendStall(Vec::new()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    let err = s
        .idle(Duration::from_secs(30))
        .await
        .expect_err("stray tag");
    assert!(matches!(err, ImapError::Protocol { .. }), "{err}");
    // BYE during IDLE: closed, with the server's words.
    let (addr, _) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::SendClose(b"+ idling\r\n* BYE Autologout; idle for too long\r\n".to_vec()),
            |_| Act::SendStall(Vec::new()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    let err = s.idle(Duration::from_secs(30)).await.expect_err("BYE");
    assert!(matches!(err, ImapError::Closed { .. }), "{err}");
    assert!(err.to_string().contains("idle for too long"), "{err}");
    // The connection dropped during IDLE.
    let (addr, _) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::SendClose(b"+ idling\r\n".to_vec()),
            |_| Act::SendStall(Vec::new()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    // `Closed`, not a timeout: the drop ended the 30 s wait.
    let err = s.idle(Duration::from_secs(30)).await.expect_err("dropped");
    assert!(matches!(err, ImapError::Closed { .. }), "{err}");
    assert!(err.is_connection());
    // IDLE refused: the server's answer.
    let (addr, _) = scripted(
        IDLE_GREETING,
        idle_server(
            || Act::Send(b"m3 BAD IDLE not now\r\n".to_vec()),
            |_| Act::SendStall(Vec::new()),
        ),
    )
    .await;
    let mut s = idle_session(addr).await.expect("session");
    let err = s.idle(Duration::from_secs(30)).await.expect_err("refused");
    assert!(matches!(err, ImapError::Command { .. }), "{err}");
    // A server without IDLE: not sent at all.
    let (addr, seen) = scripted(GREETING, |tag, cmd| {
        normal(tag, cmd, |t| Act::Send(format!("{t} OK\r\n").into_bytes()))
    })
    .await;
    let mut s = idle_session(addr).await.expect("session");
    assert!(!s.supports_idle());
    let err = s.idle(Duration::from_secs(30)).await.expect_err("no IDLE");
    assert!(matches!(err, ImapError::Unsupported { .. }), "{err}");
    assert!(
        !seen
            .lock()
            .expect("lock")
            .iter()
            .any(|c| c.contains("IDLE"))
    );
}
