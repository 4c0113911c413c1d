//! The SMTP probe over a socket: drives the pure state machine of
//! [`mailaudit_core::smtp::Probe`] over TCP and, after STARTTLS, over rustls; enforces the
//! timeouts and caps; and keeps the full transcript in the [`ProbeReport`].
//!
//! Every wait is bounded: the TCP connection by [`SmtpOptions::connect_timeout`], each whole
//! reply (all of its lines; a server sending one byte at a time does not reset it), each write
//! and the TLS handshake by [`SmtpOptions::reply_timeout`], and the whole session by
//! [`SmtpOptions::session_timeout`]. A reply line longer than [`SmtpOptions::max_reply_line`]
//! ends the session as soon as the cap is passed, without reading the rest of the line, and a
//! reply of more than [`mailaudit_core::smtp::MAX_REPLY_LINES`] lines likewise. Every failure
//! (refusal, timeout, reset, garbage, a failed handshake) ends in a verdict, inconclusive unless
//! one was already reached, with a reason saying what happened; [`probe`] never returns an
//! error and never panics.
//!
//! The certificate is judged against the web PKI roots (plus a lab CA file, [`TlsRoots`]) and
//! the MX host name but never stops the session, so the relay verdict is still reached on a
//! host with a bad certificate. rustls speaks only TLS 1.2 and 1.3, so whether a server accepts
//! TLS 1.0 or 1.1 (TLS-PROTOCOL-OLD) cannot be tested here and is not reported.
//!
//! [`Politeness`] bounds the sessions per host and in all, and spaces them.

mod politeness;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailaudit_core::dane::ChainCert;
use mailaudit_core::smtp::{
    Action, Dir, Probe, ProbeConfig, ProbeReport, Reply, ReplyError, ReplyParser, Stage, TlsInfo,
    TranscriptLine, Verdict,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub use politeness::Politeness;
pub use tls::TlsRoots;

/// Timeouts, caps and trust roots for probes.
#[derive(Clone, Debug)]
pub struct SmtpOptions {
    /// The port callers connect to (25; another for labs). [`probe`] itself uses the port of
    /// the address it is given.
    pub port: u16,
    /// The longest wait for the TCP connection.
    pub connect_timeout: Duration,
    /// The longest wait for each complete reply (all its lines), each write and the TLS
    /// handshake.
    pub reply_timeout: Duration,
    /// The longest time for the whole session, connection included.
    pub session_timeout: Duration,
    /// The trust anchors certificates are judged against.
    pub roots: TlsRoots,
    /// The longest reply line read, in octets without CRLF.
    pub max_reply_line: usize,
}

impl Default for SmtpOptions {
    /// Port 25, 10 s to connect, 30 s per reply, 120 s per session, web PKI roots, 4096-octet
    /// lines.
    fn default() -> Self {
        SmtpOptions {
            port: 25,
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(120),
            roots: TlsRoots::webpki(),
            max_reply_line: mailaudit_core::smtp::MAX_REPLY_LINE,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

/// Probes the SMTP server at `addr`, known as `host` (the MX host name: sent as SNI and the
/// name its certificate must match), with `cfg`. Never panics, never hangs: every wait is
/// bounded by `opts`, and every failure is a verdict in the report.
///
/// RFC 3207 §4: "The STARTTLS keyword is used to tell the SMTP client that the SMTP server is
/// currently able to negotiate the use of TLS. […] After receiving a 220 response to a
/// STARTTLS command, the client MUST start the TLS negotiation before giving any other SMTP
/// commands." §4.2: "The client MUST discard any knowledge obtained from the server, such as
/// the list of SMTP service extensions, which was not obtained from the TLS negotiation itself."
pub async fn probe(
    addr: SocketAddr,
    host: &str,
    cfg: &ProbeConfig,
    opts: &SmtpOptions,
) -> ProbeReport {
    probe_with_chain(addr, host, cfg, opts).await.0
}

/// [`probe`], also returning the certificate chain the server presented after STARTTLS (end
/// entity first; empty when no TLS session was established), for DANE (RFC 7672 §3).
pub async fn probe_with_chain(
    addr: SocketAddr,
    host: &str,
    cfg: &ProbeConfig,
    opts: &SmtpOptions,
) -> (ProbeReport, Vec<ChainCert>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let mut s = Session {
        addr,
        host,
        opts,
        probe: Probe::new(cfg.clone()).with_message_date(tls::rfc5322(now)),
        transcript: Vec::new(),
        tls: None,
        chain: Vec::new(),
    };
    let outcome = match timeout(opts.session_timeout, s.run()).await {
        Ok(a) => a,
        Err(_) => {
            let reason = format!(
                "the session did not finish within {} (at {})",
                ms(opts.session_timeout),
                s.probe.stage().label()
            );
            s.note(&reason);
            s.probe.abort(reason)
        }
    };
    let (verdict, stage, reason) = match outcome {
        Action::Finish(v, st, r) => (v, st, r),
        // `run` only returns `Finish`; keep a verdict anyway.
        other => (
            Verdict::Inconclusive,
            s.probe.stage(),
            format!("internal: the session ended on {other:?}"),
        ),
    };
    s.note(&format!(
        "verdict: {verdict} at {}: {reason}",
        stage.label()
    ));
    let report = ProbeReport {
        host: host.to_string(),
        addr: Some(addr.to_string()),
        port: addr.port(),
        verdict,
        stage,
        reply: if stage == Stage::Connect {
            None
        } else {
            s.probe.decisive_reply().map(str::to_string)
        },
        reason,
        starttls_offered: s.probe.starttls_offered(),
        tls: s.tls,
        data_sent: s.probe.data_sent(),
        relay: cfg.relay,
        transcript: s.transcript,
    };
    (report, s.chain)
}

struct Session<'a> {
    addr: SocketAddr,
    host: &'a str,
    opts: &'a SmtpOptions,
    probe: Probe,
    transcript: Vec<TranscriptLine>,
    tls: Option<TlsInfo>,
    chain: Vec<ChainCert>,
}

/// Why a reply could not be read.
enum ReadError {
    Timeout,
    Closed { partial: bool },
    Io(io::Error),
    TooLong { read: usize },
    Parse(ReplyError),
}

enum Line {
    Text(String),
    Eof,
    TooLong(usize),
}

impl Session<'_> {
    fn note(&mut self, s: &str) {
        self.transcript.push(TranscriptLine::new(Dir::Note, s));
    }

    /// The whole session; returns [`Action::Finish`].
    async fn run(&mut self) -> Action {
        let opts = self.opts;
        let addr = self.addr;
        self.note(&format!("connecting to {addr} ({})", self.host));
        let tcp = match timeout(opts.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return self.connect_failed(connect_reason(addr, &e)),
            Err(_) => {
                return self.connect_failed(format!(
                    "no TCP connection to {addr} within {}: outbound port {} is probably \
                     blocked by this network (many ISPs and cloud providers block port 25), \
                     or the host is down",
                    ms(opts.connect_timeout),
                    addr.port()
                ));
            }
        };
        self.note("connected");
        let _ = tcp.set_nodelay(true);
        let mut conn: Conn =
            BufReader::with_capacity(conn_capacity(opts.max_reply_line), Box::new(tcp));
        let mut parser =
            ReplyParser::with_caps(mailaudit_core::smtp::MAX_REPLY_LINES, opts.max_reply_line);
        loop {
            let reply = match self.read_reply(&mut conn, &mut parser).await {
                Ok(r) => r,
                Err(e) => {
                    let reason = self.read_error_reason(e);
                    self.note(&reason);
                    return self.probe.abort(reason);
                }
            };
            let mut action = self.probe.on_reply(&reply);
            loop {
                match action {
                    Action::Send(cmd) => {
                        self.transcript
                            .push(TranscriptLine::new(Dir::Client, cmd.clone()));
                        let mut bytes = cmd.into_bytes();
                        bytes.extend_from_slice(b"\r\n");
                        if let Err(reason) = self.write(&mut conn, &bytes).await {
                            return self.probe.abort(reason);
                        }
                        break;
                    }
                    Action::SendData(msg) => {
                        self.note(&format!(
                            "sending the labelled test message ({} octets)",
                            msg.len()
                        ));
                        for l in String::from_utf8_lossy(&msg).lines() {
                            self.transcript.push(TranscriptLine::new(Dir::Client, l));
                        }
                        if let Err(reason) = self.write(&mut conn, &msg).await {
                            return self.probe.abort(reason);
                        }
                        break;
                    }
                    Action::StartTls => {
                        conn = match self.start_tls(conn).await {
                            Ok(c) => c,
                            Err(reason) => {
                                self.note(&reason);
                                return self.probe.abort(reason);
                            }
                        };
                        action = self.probe.on_tls_established();
                    }
                    fin @ Action::Finish(..) => return fin,
                }
            }
        }
    }

    fn connect_failed(&mut self, reason: String) -> Action {
        self.note(&reason);
        Action::Finish(Verdict::Inconclusive, Stage::Connect, reason)
    }

    async fn write(&mut self, conn: &mut Conn, bytes: &[u8]) -> Result<(), String> {
        let stage = self.probe.stage().label();
        let w = async {
            conn.write_all(bytes).await?;
            conn.flush().await
        };
        let reason = match timeout(self.opts.reply_timeout, w).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("sending {stage} failed: {}", io_reason(&e)),
            Err(_) => format!(
                "the server did not accept {stage} within {}",
                ms(self.opts.reply_timeout)
            ),
        };
        self.note(&reason);
        Err(reason)
    }

    /// Reads one whole reply within the reply timeout, logging each line.
    async fn read_reply(
        &mut self,
        conn: &mut Conn,
        parser: &mut ReplyParser,
    ) -> Result<Reply, ReadError> {
        let max = self.opts.max_reply_line;
        let transcript = &mut self.transcript;
        let read = async {
            let mut any = false;
            loop {
                match read_line_capped(conn, max).await.map_err(ReadError::Io)? {
                    Line::Text(l) => {
                        any = true;
                        transcript.push(TranscriptLine::new(Dir::Server, l.clone()));
                        match parser.feed(&l) {
                            Ok(Some(r)) => return Ok(r),
                            Ok(None) => {}
                            Err(e) => return Err(ReadError::Parse(e)),
                        }
                    }
                    Line::Eof => return Err(ReadError::Closed { partial: any }),
                    Line::TooLong(n) => return Err(ReadError::TooLong { read: n }),
                }
            }
        };
        let r = timeout(self.opts.reply_timeout, read)
            .await
            .unwrap_or(Err(ReadError::Timeout));
        if r.is_err() {
            // Start the next reply afresh (there is none: the session ends).
            *parser = ReplyParser::with_caps(mailaudit_core::smtp::MAX_REPLY_LINES, max);
        }
        r
    }

    fn read_error_reason(&self, e: ReadError) -> String {
        let at = self.probe.stage();
        let label = at.label();
        match e {
            ReadError::Timeout if at == Stage::Banner => format!(
                "no complete banner within {} (the server sent no greeting, or too slowly)",
                ms(self.opts.reply_timeout)
            ),
            ReadError::Timeout => format!(
                "no complete reply to {label} within {}",
                ms(self.opts.reply_timeout)
            ),
            ReadError::Closed { partial: true } => {
                format!("the server closed the connection in the middle of its reply to {label}")
            }
            ReadError::Closed { partial: false } if at == Stage::Banner => {
                "the server closed the connection without a banner".to_string()
            }
            ReadError::Closed { partial: false } => {
                format!("the server closed the connection without replying to {label}")
            }
            ReadError::Io(e) => format!("reading the reply to {label}: {}", io_reason(&e)),
            ReadError::TooLong { read } => format!(
                "a reply line at {label} exceeds {} octets (stopped reading after {read})",
                self.opts.max_reply_line
            ),
            ReadError::Parse(e) => format!("not a valid SMTP reply at {label}: {e}"),
        }
    }

    async fn start_tls(&mut self, conn: Conn) -> Result<Conn, String> {
        let buffered = conn.buffer().len();
        if buffered > 0 {
            // RFC 3207 §4.2 and the STARTTLS command-injection attacks: plaintext that arrived
            // after the 220 must not be read as if it came over TLS.
            self.note(&format!(
                "discarded {buffered} octets the server sent in clear text after its 220 to STARTTLS"
            ));
        }
        let io = conn.into_inner();
        let name = tls::server_name(self.host, self.addr.ip());
        let connector = tokio_rustls::TlsConnector::from(self.opts.roots.config.clone());
        let stream =
            match timeout(self.opts.reply_timeout, connector.connect(name.clone(), io)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(format!("TLS handshake failed after STARTTLS: {e}")),
                Err(_) => {
                    return Err(format!(
                        "TLS handshake did not complete within {}",
                        ms(self.opts.reply_timeout)
                    ));
                }
            };
        let info = tls::inspect(stream.get_ref().1, &self.opts.roots, &name, self.host);
        self.chain = tls::chain(stream.get_ref().1);
        let cert = match &info.cert_error {
            None => format!("certificate valid for {}", self.host),
            Some(e) => format!("certificate NOT valid: {e}"),
        };
        self.note(&format!(
            "TLS established: {} {}; {cert}; names: {}; not after: {}",
            info.version,
            info.cipher,
            info.names.join(", "),
            info.not_after.as_deref().unwrap_or("unknown")
        ));
        self.tls = Some(info);
        let cap = conn_capacity(self.opts.max_reply_line);
        Ok(BufReader::with_capacity(cap, Box::new(stream)))
    }
}

fn conn_capacity(max_line: usize) -> usize {
    max_line.saturating_add(2).clamp(512, 65_536)
}

/// Reads one line (LF or CRLF ended, the end stripped), giving up as soon as it exceeds `max`
/// octets, without reading the rest.
async fn read_line_capped(conn: &mut Conn, max: usize) -> io::Result<Line> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let avail = conn.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                Line::Eof
            } else {
                // A last line without its end: give it to the parser as it is.
                Line::Text(String::from_utf8_lossy(&buf).into_owned())
            });
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(i) => {
                buf.extend_from_slice(&avail[..i]);
                conn.consume(i + 1);
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                if buf.len() > max {
                    return Ok(Line::TooLong(buf.len()));
                }
                return Ok(Line::Text(String::from_utf8_lossy(&buf).into_owned()));
            }
            None => {
                let n = avail.len();
                buf.extend_from_slice(avail);
                conn.consume(n);
                // One octet of slack for a CR whose LF has not arrived yet.
                if buf.len() > max.saturating_add(1) {
                    return Ok(Line::TooLong(buf.len()));
                }
            }
        }
    }
}

fn connect_reason(addr: SocketAddr, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => format!(
            "connection to {addr} refused: nothing accepts SMTP on port {}, or a firewall on \
             the way rejects it (many networks block outbound port 25)",
            addr.port()
        ),
        io::ErrorKind::TimedOut => format!(
            "connection to {addr} timed out: outbound port {} is probably blocked by this network",
            addr.port()
        ),
        _ => format!(
            "cannot connect to {addr}: {e} (outbound port {} may be blocked by this network)",
            addr.port()
        ),
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "the connection was reset by the server".into(),
        io::ErrorKind::ConnectionAborted => "the connection was aborted".into(),
        io::ErrorKind::BrokenPipe => "the server closed the connection".into(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".into(),
        _ => e.to_string(),
    }
}

/// `300 ms`, `10 s`.
fn ms(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
