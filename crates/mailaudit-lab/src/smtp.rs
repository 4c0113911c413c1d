//! A scripted SMTP server posing as Microsoft 365 inbound endpoints (and third-party gateways)
//! on loopback, for the built-in demo and for tests that need no system package.
//!
//! [`LabSmtp::start`] binds the **same** ephemeral port on every address of a list of
//! [`SmtpEndpoint`]s (all loopback: 127.0.0.0/8 or `::1`), so a client that resolves an MX host
//! name to its lab address and connects to "the SMTP port" reaches the endpoint standing for
//! that host. The port is chosen by binding the first address at port 0, then the others on the
//! port it got; if one of them is taken, everything is released and tried again with a new port.
//!
//! Each endpoint speaks enough ESMTP for the Direct Send probe, the way Exchange Online does:
//! a `220` banner, `EHLO` with `SIZE`, `PIPELINING`, `ENHANCEDSTATUSCODES` and `STARTTLS`
//! (before TLS), `STARTTLS` with a certificate for every endpoint's host name signed by a lab CA
//! made with rcgen at start ([`LabSmtp::ca_pem`], for the client's trust store), `MAIL`, `RCPT`,
//! `RSET`, `NOOP` and `QUIT`. `DATA` (and `BDAT`) is only ever refused with [`DATA_REFUSAL`]:
//! nothing is accepted or delivered. The answer to `RCPT` comes from the endpoint's
//! [`Behaviour`] (`docs/m365.md`, "Direct Send"):
//!
//! | [`Behaviour`]                   | `RCPT TO` a mailbox of the endpoint's domains, sender in them too |
//! |---------------------------------|------------------------------------------------------------------|
//! | [`Behaviour::Open`]             | `250 2.1.5 Recipient OK`                                         |
//! | [`Behaviour::Blocked`]          | [`BLOCKED_REPLY`] (`550 5.7.68 TenantInboundAttribution; …`)      |
//! | [`Behaviour::UnknownRecipient`] | [`UNKNOWN_RECIPIENT_REPLY`] (`550 5.4.1 …`), for any sender       |
//! | [`Behaviour::Reject`]           | the given reply (a gateway's anti-spoofing refusal)              |
//!
//! A sender outside the endpoint's domains is accepted by every behaviour but
//! `UnknownRecipient` (only the spoof is refused), and a recipient outside them is refused with
//! [`RELAY_DENIED_REPLY`] (`550 5.7.64 TenantAttribution; Relay Access Denied`).
//!
//! # Limits
//!
//! Every session is bounded ([`LabSmtpOptions`]): a command line longer than the RFC 5321 limit
//! ends the session with `500 5.5.6`; an idle client is sent `421 4.4.2` and disconnected; a
//! session has a total time limit and a command limit; each address serves a bounded number of
//! sessions at once (`421 4.3.2` to the next). Plain text sent after `STARTTLS` and before the
//! handshake is discarded, never read as if it came over TLS.
//!
//! # Lifetime
//!
//! The server runs as tasks of the tokio runtime it was started on. Dropping the [`LabSmtp`]
//! aborts them, which closes every listening socket and session; [`LabSmtp::shutdown`] also
//! waits for that. [`LabSmtp::sessions`] lists what each finished session saw (its commands,
//! whether TLS was established and the reply to each `RCPT`), so tests can prove, for instance,
//! that a probe never sent `DATA`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailaudit_lab::LabError> {
//! use mailaudit_lab::smtp::{Behaviour, LabSmtp, SmtpEndpoint};
//!
//! let smtp = LabSmtp::start(vec![SmtpEndpoint {
//!     host: "contoso-example.mail.protection.outlook.com".into(),
//!     addrs: vec!["127.0.2.11".parse().unwrap()],
//!     domains: vec!["contoso.example".into()],
//!     behaviour: Behaviour::Blocked,
//! }])
//! .await?;
//! // probe 127.0.2.11 on smtp.port(), trusting smtp.ca_pem() ...
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout, timeout_at};

use crate::LabError;
pub use crate::postfix::{BLOCKED_REPLY, UNKNOWN_RECIPIENT_REPLY};

/// The reply to `RCPT TO` a recipient outside the endpoint's domains, as Exchange Online gives
/// for a domain that is not one of the tenant's accepted domains.
pub const RELAY_DENIED_REPLY: &str = "550 5.7.64 TenantAttribution; Relay Access Denied";

/// The reply to `DATA` and `BDAT`: the lab accepts no message.
pub const DATA_REFUSAL: &str =
    "554 5.3.0 mailaudit lab endpoint: no message is accepted or delivered here";

/// `SIZE` advertised in `EHLO` (Exchange Online's 150 MiB).
const MAX_MESSAGE_SIZE: u64 = 157_286_400;

/// How often the start is retried when the chosen port is taken on another address.
const BIND_ATTEMPTS: usize = 32;

/// At most this many finished sessions are kept for [`LabSmtp::sessions`] (the oldest go).
const SESSION_LOG: usize = 10_000;

/// At most this many recipients per transaction. RFC 5321 §4.5.3.1.8: "The minimum total
/// number of recipients that MUST be buffered is 100 recipients."
const MAX_RECIPIENTS: usize = 100;

/// How an endpoint answers a spoofed envelope: a sender and a recipient both in its domains,
/// from an unauthenticated client (Microsoft 365 "Direct Send").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts the recipient: the tenant is open to Direct Send (the probe's `open`).
    Open,
    /// Refuses it with [`BLOCKED_REPLY`], as a tenant with `RejectDirectSend` does (`blocked`).
    Blocked,
    /// Refuses every recipient with [`UNKNOWN_RECIPIENT_REPLY`]: the probe learns nothing about
    /// Direct Send (`inconclusive`).
    UnknownRecipient,
    /// Refuses the spoofed sender at `RCPT` with this reply (a complete reply line, e.g. a
    /// gateway's `550 5.7.1 …` anti-spoofing refusal). A reply that does not start with three
    /// digits is sent as `550 5.7.1 <text>`.
    Reject(String),
}

/// One endpoint: a host name, the loopback addresses it answers on, and its behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpEndpoint {
    /// The host name it stands for (the MX name): its banner and `EHLO` name, and a name of the
    /// lab certificate.
    pub host: String,
    /// The addresses it answers on: loopback only (127.0.0.0/8, `::1`). An address may belong
    /// to one endpoint only.
    pub addrs: Vec<IpAddr>,
    /// The domains it receives mail for (a tenant's accepted domains), compared
    /// case-insensitively.
    pub domains: Vec<String>,
    /// How it answers a spoofed envelope.
    pub behaviour: Behaviour,
}

/// Limits of every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSmtpOptions {
    /// The longest wait for the next command (then `421 4.4.2` and the connection is closed).
    pub idle_timeout: Duration,
    /// The longest time for a whole session, TLS handshake included.
    pub session_timeout: Duration,
    /// The longest command line in octets, CRLF included. RFC 5321 §4.5.3.1.4: "The maximum
    /// total length of a command line including the command word and the `<CRLF>` is 512
    /// octets."
    pub max_line: usize,
    /// The most commands in one session (then `421 4.7.0` and the connection is closed).
    pub max_commands: usize,
    /// The most sessions at once on one address (the next get `421 4.3.2` and are closed).
    pub max_sessions: usize,
}

impl Default for LabSmtpOptions {
    /// 30 s idle, 2 minutes per session, 512-octet lines, 100 commands, 64 sessions per address.
    fn default() -> Self {
        LabSmtpOptions {
            idle_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(120),
            max_line: 512,
            max_commands: 100,
            max_sessions: 64,
        }
    }
}

/// What one finished session saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The endpoint's host name.
    pub host: String,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The client's address.
    pub peer: SocketAddr,
    /// The command verbs received, upper-case, in order (`EHLO`, `STARTTLS`, …); a line that is
    /// no command is recorded as it came, cut to 32 characters.
    pub commands: Vec<String>,
    /// Whether a TLS session was established after `STARTTLS`.
    pub tls: bool,
    /// The reply given to each `RCPT`.
    pub rcpt_replies: Vec<String>,
}

impl SessionRecord {
    /// How many times the client sent `verb` (case-insensitive).
    pub fn count(&self, verb: &str) -> usize {
        self.commands
            .iter()
            .filter(|c| c.eq_ignore_ascii_case(verb))
            .count()
    }
}

/// The running server: see the [module documentation](self).
pub struct LabSmtp {
    port: u16,
    addrs: Vec<SocketAddr>,
    ca_pem: String,
    log: Arc<Mutex<VecDeque<SessionRecord>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LabSmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabSmtp")
            .field("port", &self.port)
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

/// One endpoint as a session sees it.
struct Endpoint {
    host: String,
    domains: Vec<String>,
    behaviour: Behaviour,
}

/// What every session shares.
struct Shared {
    tls: tokio_rustls::TlsAcceptor,
    opts: LabSmtpOptions,
    log: Arc<Mutex<VecDeque<SessionRecord>>>,
}

impl LabSmtp {
    /// Starts the endpoints with the default [`LabSmtpOptions`].
    pub async fn start(endpoints: Vec<SmtpEndpoint>) -> Result<LabSmtp, LabError> {
        Self::start_with(endpoints, LabSmtpOptions::default()).await
    }

    /// Starts the endpoints: makes the lab CA and a certificate for every endpoint's host name,
    /// then binds one port on all their addresses (see the [module documentation](self)).
    ///
    /// Fails with [`LabError::SmtpConfig`] when there is no address, an address is not
    /// loopback or is given twice, or a host name cannot be put in a certificate; with
    /// [`LabError::SmtpBind`] when an address cannot be bound (after `BIND_ATTEMPTS` ports
    /// when the port is taken). An IPv6 address on a machine without IPv6 (the address not
    /// available) is left out; [`LabSmtp::addrs`] lists what is served.
    pub async fn start_with(
        endpoints: Vec<SmtpEndpoint>,
        opts: LabSmtpOptions,
    ) -> Result<LabSmtp, LabError> {
        let mut plan: Vec<(IpAddr, Arc<Endpoint>)> = Vec::new();
        for e in &endpoints {
            let ep = Arc::new(Endpoint {
                host: e.host.clone(),
                domains: e.domains.iter().map(|d| normalize(d)).collect(),
                behaviour: e.behaviour.clone(),
            });
            for ip in &e.addrs {
                if !ip.is_loopback() {
                    return Err(LabError::SmtpConfig(format!(
                        "{ip} (of {}) is not a loopback address",
                        e.host
                    )));
                }
                if plan.iter().any(|(a, _)| a == ip) {
                    return Err(LabError::SmtpConfig(format!(
                        "{ip} is given to more than one endpoint"
                    )));
                }
                plan.push((*ip, ep.clone()));
            }
        }
        if plan.is_empty() {
            return Err(LabError::SmtpConfig("no address to listen on".into()));
        }
        // IPv4 first, so that the port is chosen where it is always available.
        plan.sort_by_key(|(ip, _)| ip.is_ipv6());
        let hosts: Vec<String> = endpoints.iter().map(|e| e.host.clone()).collect();
        let (ca_pem, server_config) = make_tls(&hosts)?;
        let (port, listeners) = bind_all(&plan).await?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let shared = Arc::new(Shared {
            tls: tokio_rustls::TlsAcceptor::from(server_config),
            opts,
            log: log.clone(),
        });
        let mut addrs = Vec::with_capacity(listeners.len());
        let mut tasks = Vec::with_capacity(listeners.len());
        for (listener, ep) in listeners {
            let local = listener.local_addr().map_err(|source| LabError::SmtpBind {
                addr: SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port),
                source,
            })?;
            addrs.push(local);
            tasks.push(tokio::spawn(accept_loop(listener, ep, shared.clone())));
        }
        Ok(LabSmtp {
            port,
            addrs,
            ca_pem,
            log,
            tasks,
        })
    }

    /// The port every endpoint listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every address served, with the port.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The lab CA's certificate (PEM): trust it to validate the endpoints' certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The sessions finished so far (at most the last 10,000), oldest first.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().cloned().collect()
    }

    /// Stops every endpoint and session, and waits until their sockets are closed.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            // A task ends aborted (its sessions with it): nothing else to learn from it.
            let _ = t.await;
        }
    }
}

impl Drop for LabSmtp {
    fn drop(&mut self) {
        // Aborting an accept loop drops its listener and its set of sessions, which aborts them.
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// `Domain.Example.` → `domain.example`.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Binds every planned address on one port; returns the port and the listeners.
async fn bind_all(
    plan: &[(IpAddr, Arc<Endpoint>)],
) -> Result<(u16, Vec<(TcpListener, Arc<Endpoint>)>), LabError> {
    let mut last_error = None;
    'attempt: for _ in 0..BIND_ATTEMPTS {
        let Some(((first_ip, first_ep), rest)) = plan.split_first() else {
            return Err(LabError::SmtpConfig("no address to listen on".into()));
        };
        let first_addr = SocketAddr::new(*first_ip, 0);
        let first = TcpListener::bind(first_addr)
            .await
            .map_err(|source| LabError::SmtpBind {
                addr: first_addr,
                source,
            })?;
        let port = first
            .local_addr()
            .map_err(|source| LabError::SmtpBind {
                addr: first_addr,
                source,
            })?
            .port();
        let mut listeners = vec![(first, first_ep.clone())];
        for (ip, ep) in rest {
            let addr = SocketAddr::new(*ip, port);
            match TcpListener::bind(addr).await {
                Ok(l) => listeners.push((l, ep.clone())),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    last_error = Some(LabError::SmtpBind { addr, source: e });
                    continue 'attempt;
                }
                Err(e)
                    if ip.is_ipv6()
                        && (matches!(
                            e.kind(),
                            io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
                        ) || e.raw_os_error() == Some(97)) =>
                {
                    // No IPv6 on this machine (EADDRNOTAVAIL, EAFNOSUPPORT): serve IPv4 only.
                }
                Err(source) => return Err(LabError::SmtpBind { addr, source }),
            }
        }
        return Ok((port, listeners));
    }
    Err(last_error
        .unwrap_or_else(|| LabError::SmtpConfig("no port free on every address".to_string())))
}

/// The current year (UTC), for certificate validity without a date crate.
fn current_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // 365.2425 days a year: exact enough away from New Year's Eve, and the validity below has
    // a year of slack on both sides.
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

/// Makes the lab CA and one certificate naming every host; returns the CA's PEM and the TLS
/// server configuration presenting the certificate followed by the CA's.
pub(crate) fn make_tls(hosts: &[String]) -> Result<(String, Arc<rustls::ServerConfig>), LabError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, date_time_ymd,
    };
    let tls_err = |what: &str, e: &dyn std::fmt::Display| LabError::Tls(format!("{what}: {e}"));
    let year = current_year();
    let ca_key = KeyPair::generate().map_err(|e| tls_err("CA key", &e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("CA", &e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "mailaudit lab CA (loopback only)");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = date_time_ymd(year - 1, 1, 1);
    ca.not_after = date_time_ymd(year + 2, 1, 1);
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| tls_err("CA certificate", &e))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names: Vec<String> = hosts.iter().map(|h| normalize(h)).collect();
    names.sort();
    names.dedup();
    let mut leaf = CertificateParams::new(names.clone())
        .map_err(|e| LabError::SmtpConfig(format!("a host name cannot be certified: {e}")))?;
    if let Some(first) = names.first() {
        leaf.distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = date_time_ymd(year - 1, 1, 1);
    leaf.not_after = date_time_ymd(year + 1, 12, 31);
    let leaf_key = KeyPair::generate().map_err(|e| tls_err("key", &e))?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| tls_err("certificate", &e))?;

    // The CA goes out after the leaf, as a public MX's issuer does, so that DANE-TA ("2 1 1")
    // records have a certificate above the leaf to match (RFC 7671 §5.2.2: the trust anchor
    // must be in the chain the server presents).
    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_err("TLS versions", &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| tls_err("TLS configuration", &e))?;
    Ok((ca_cert.pem(), Arc::new(config)))
}

/// Accepts connections on one address until aborted; the sessions are tasks of a set owned
/// here, so aborting this task ends them too.
async fn accept_loop(listener: TcpListener, ep: Arc<Endpoint>, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            // Out of file descriptors and the like: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Sessions that ended while waiting for this connection free their slots.
        while sessions.try_join_next().is_some() {}
        if sessions.len() >= shared.opts.max_sessions {
            let _ = tcp.try_write(
                format!(
                    "421 4.3.2 {} Too many concurrent connections; try again later\r\n",
                    ep.host
                )
                .as_bytes(),
            );
            continue;
        }
        let local = tcp.local_addr().unwrap_or(peer);
        sessions.spawn(session(tcp, local, peer, ep.clone(), shared.clone()));
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

/// One line read from the client.
enum Line {
    Text(String),
    Eof,
    TooLong,
}

/// What a command leads to.
enum Next {
    Continue,
    StartTls,
    Close,
}

/// The state of one session.
struct State<'a> {
    ep: &'a Endpoint,
    peer: SocketAddr,
    tls: bool,
    greeted: bool,
    sender: Option<String>,
    recipients: usize,
    record: SessionRecord,
}

async fn session(
    tcp: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    ep: Arc<Endpoint>,
    shared: Arc<Shared>,
) {
    let _ = tcp.set_nodelay(true);
    let mut st = State {
        ep: &ep,
        peer,
        tls: false,
        greeted: false,
        sender: None,
        recipients: 0,
        record: SessionRecord {
            host: ep.host.clone(),
            local,
            peer,
            commands: Vec::new(),
            tls: false,
            rcpt_replies: Vec::new(),
        },
    };
    let deadline = Instant::now() + shared.opts.session_timeout;
    let conn: Conn = BufReader::new(Box::new(tcp));
    // The session ends at the deadline, whatever it is doing.
    let _ = timeout_at(deadline, converse(conn, &mut st, &shared)).await;
    st.record.tls = st.tls;
    let mut log = shared
        .log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if log.len() >= SESSION_LOG {
        log.pop_front();
    }
    log.push_back(st.record);
}

/// Writes one reply (lines joined with CRLF, a final CRLF added) and flushes it.
async fn reply(conn: &mut Conn, text: &str, limit: Duration) -> bool {
    let mut bytes = text.replace('\n', "\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n");
    let w = async {
        conn.write_all(&bytes).await?;
        conn.flush().await
    };
    matches!(timeout(limit, w).await, Ok(Ok(())))
}

/// The conversation: banner, then one reply per command until QUIT, an error or a limit.
async fn converse(mut conn: Conn, st: &mut State<'_>, shared: &Shared) {
    let opts = &shared.opts;
    let host = st.ep.host.clone();
    let banner = format!("220 {host} Microsoft ESMTP MAIL Service ready (mailaudit lab)");
    if !reply(&mut conn, &banner, opts.idle_timeout).await {
        return;
    }
    let mut commands = 0usize;
    loop {
        let line = match timeout(opts.idle_timeout, read_line(&mut conn, opts.max_line)).await {
            Err(_) => {
                let text = format!("421 4.4.2 {host} Connection timed out; closing");
                let _ = reply(&mut conn, &text, opts.idle_timeout).await;
                return;
            }
            Ok(Err(_) | Ok(Line::Eof)) => return,
            Ok(Ok(Line::TooLong)) => {
                let _ = reply(
                    &mut conn,
                    "500 5.5.6 Line too long; closing",
                    opts.idle_timeout,
                )
                .await;
                return;
            }
            Ok(Ok(Line::Text(l))) => l,
        };
        commands += 1;
        if commands > opts.max_commands {
            let text = format!("421 4.7.0 {host} Too many commands; closing");
            let _ = reply(&mut conn, &text, opts.idle_timeout).await;
            return;
        }
        let (text, next) = st.command(&line);
        if !reply(&mut conn, &text, opts.idle_timeout).await {
            return;
        }
        match next {
            Next::Continue => {}
            Next::Close => return,
            Next::StartTls => {
                // RFC 3207 §4.2 (and the STARTTLS command-injection attacks): nothing the
                // client sent in clear text after STARTTLS may be taken as sent over TLS.
                let io = conn.into_inner();
                // A failed or stalled handshake ends the session.
                let Ok(Ok(tls)) = timeout(opts.idle_timeout, shared.tls.accept(io)).await else {
                    return;
                };
                conn = BufReader::new(Box::new(tls));
                st.tls = true;
                // RFC 3207 §4.2: "Upon completion of the TLS handshake, the SMTP protocol is
                // reset to the initial state (the state in SMTP after a server issues a 220
                // service ready greeting)."
                st.greeted = false;
                st.sender = None;
                st.recipients = 0;
            }
        }
    }
}

/// Reads one line (CRLF or LF ended, the end stripped) of at most `max` octets including its
/// end; a longer line is not read further.
async fn read_line(conn: &mut Conn, max: usize) -> io::Result<Line> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let avail = conn.fill_buf().await?;
        if avail.is_empty() {
            return Ok(Line::Eof);
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(i) => {
                if buf.len() + i + 1 > max {
                    return Ok(Line::TooLong);
                }
                buf.extend_from_slice(&avail[..i]);
                conn.consume(i + 1);
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(Line::Text(String::from_utf8_lossy(&buf).into_owned()));
            }
            None => {
                let n = avail.len();
                if buf.len() + n >= max {
                    return Ok(Line::TooLong);
                }
                buf.extend_from_slice(avail);
                conn.consume(n);
            }
        }
    }
}

/// The address inside `<…>` after `FROM:` or `TO:` (`prefix`), parameters ignored; `None` when
/// the syntax is wrong. The null reverse-path `<>` gives `Some("")`.
fn path_arg(arg: &str, prefix: &str) -> Option<String> {
    let rest = arg.trim_start();
    let head = rest.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = rest[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    let addr = &inner[..end];
    if addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(addr.to_string())
}

/// The domain of an address, lower-case (`""` when there is none).
fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| normalize(d))
        .unwrap_or_default()
}

impl State<'_> {
    fn hosts(&self, domain: &str) -> bool {
        self.ep.domains.iter().any(|d| d == domain)
    }

    /// The reply to one command line, and what follows it.
    fn command(&mut self, line: &str) -> (String, Next) {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, a),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        let known = [
            "EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "RSET", "NOOP", "QUIT", "DATA", "BDAT",
            "VRFY", "AUTH",
        ];
        self.record
            .commands
            .push(if known.contains(&verb.as_str()) {
                verb.clone()
            } else {
                line.chars().take(32).collect()
            });
        let host = &self.ep.host;
        let ok = |s: &str| (s.to_string(), Next::Continue);
        match verb.as_str() {
            "EHLO" | "HELO" => {
                if arg.trim().is_empty() {
                    return ok("501 5.5.4 Invalid domain name");
                }
                self.greeted = true;
                self.sender = None;
                self.recipients = 0;
                let hello = format!("{host} Hello [{}]", self.peer.ip());
                if verb == "HELO" {
                    return ok(&format!("250 {hello}"));
                }
                let mut lines = vec![
                    hello,
                    format!("SIZE {MAX_MESSAGE_SIZE}"),
                    "PIPELINING".to_string(),
                    "DSN".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                ];
                if !self.tls {
                    lines.push("STARTTLS".to_string());
                }
                lines
                    .extend(["8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8"].map(str::to_string));
                let last = lines.len() - 1;
                let text = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                    .collect::<Vec<_>>()
                    .join("\n");
                (text, Next::Continue)
            }
            "STARTTLS" => {
                if self.tls {
                    ok("503 5.5.1 Already in TLS")
                } else if !arg.trim().is_empty() {
                    // RFC 3207 §4: "501 Syntax error (no parameters allowed)".
                    ok("501 5.5.4 Syntax error (no parameters allowed)")
                } else if !self.greeted {
                    ok("503 5.5.2 Send hello first")
                } else {
                    ("220 2.0.0 SMTP server ready".to_string(), Next::StartTls)
                }
            }
            "MAIL" => {
                if !self.greeted {
                    return ok("503 5.5.2 Send hello first");
                }
                if self.sender.is_some() {
                    return ok("503 5.5.2 Sender already specified");
                }
                match path_arg(arg, "FROM:") {
                    None => ok("501 5.5.4 Invalid arguments"),
                    Some(addr) => {
                        self.sender = Some(addr);
                        ok("250 2.1.0 Sender OK")
                    }
                }
            }
            "RCPT" => {
                let Some(sender) = self.sender.clone() else {
                    return ok("503 5.5.1 Need mail command");
                };
                let Some(rcpt) = path_arg(arg, "TO:") else {
                    return ok("501 5.5.4 Invalid arguments");
                };
                let text = if self.recipients >= MAX_RECIPIENTS {
                    "452 4.5.3 Too many recipients".to_string()
                } else {
                    self.rcpt_reply(&sender, &rcpt)
                };
                if text.starts_with('2') {
                    self.recipients += 1;
                }
                self.record.rcpt_replies.push(text.clone());
                (text, Next::Continue)
            }
            "DATA" | "BDAT" => {
                // After a refused BDAT the client sends the chunk anyway: close rather than
                // read message data as commands.
                let next = if verb == "BDAT" {
                    Next::Close
                } else {
                    Next::Continue
                };
                (DATA_REFUSAL.to_string(), next)
            }
            "RSET" => {
                self.sender = None;
                self.recipients = 0;
                ok("250 2.0.0 Resetting")
            }
            "NOOP" => ok("250 2.0.0 OK"),
            "VRFY" => ok("252 2.1.5 Cannot VRFY user"),
            "AUTH" => ok("504 5.7.4 Unrecognized authentication type"),
            "QUIT" => (
                format!("221 2.0.0 {host} Service closing transmission channel"),
                Next::Close,
            ),
            "" => ok("500 5.5.2 Syntax error, command unrecognized"),
            _ => ok("500 5.3.3 Unrecognized command"),
        }
    }

    /// The reply to `RCPT TO:<rcpt>` in a transaction from `sender`.
    fn rcpt_reply(&self, sender: &str, rcpt: &str) -> String {
        if !self.hosts(&domain_of(rcpt)) {
            return RELAY_DENIED_REPLY.to_string();
        }
        let spoofed = self.hosts(&domain_of(sender));
        match &self.ep.behaviour {
            Behaviour::UnknownRecipient => UNKNOWN_RECIPIENT_REPLY.to_string(),
            Behaviour::Blocked if spoofed => BLOCKED_REPLY.to_string(),
            Behaviour::Reject(text) if spoofed => {
                let t = text.trim();
                if t.len() >= 3 && t.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
                    t.to_string()
                } else {
                    format!("550 5.7.1 {t}")
                }
            }
            _ => "250 2.1.5 Recipient OK".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_with_parameters_and_case() {
        assert_eq!(
            path_arg("FROM:<a@b.example> SIZE=10", "FROM:"),
            Some("a@b.example".into())
        );
        assert_eq!(
            path_arg("from: <a@b.example>", "FROM:"),
            Some("a@b.example".into())
        );
        assert_eq!(path_arg("FROM:<>", "FROM:"), Some(String::new()));
        assert_eq!(path_arg("FROM:a@b.example", "FROM:"), None);
        assert_eq!(path_arg("TO:<a@b.example", "TO:"), None);
        assert_eq!(path_arg("TO:<a b@c>", "TO:"), None);
        assert_eq!(path_arg("", "TO:"), None);
        assert_eq!(path_arg("T", "TO:"), None);
        // Multi-byte text never panics at the prefix boundary.
        assert_eq!(path_arg("TÖ:<a@b>", "TO:"), None);
    }

    #[test]
    fn domains_are_compared_lower_case() {
        assert_eq!(domain_of("Ceo@Contoso.Example."), "contoso.example");
        assert_eq!(domain_of("postmaster"), "");
    }

    #[test]
    fn the_year_is_plausible() {
        let y = current_year();
        assert!((2024..2200).contains(&y), "{y}");
    }
}
