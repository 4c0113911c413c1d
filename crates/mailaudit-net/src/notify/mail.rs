//! The email channel: one plain-text message through an SMTP submission relay (RFC 6409),
//! STARTTLS and `AUTH PLAIN` as the target asks, the MIME message written by `mail-builder`.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use mailaudit_core::alerts::one_line;
use mailaudit_core::dns::{DnsSource, normalize_name};
use mailaudit_core::smtp::{Reply, ReplyParser};
use mailaudit_core::submission::{self, Action, Failure, Plan, Submission};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::{timeout, timeout_at};

use super::{NotifyError, NotifyOptions, Stage, TransportError};
use crate::transport::{Attempt, describe_io};

/// How long `QUIT` is waited for once the message is accepted or the transaction failed.
const QUIT_WAIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------------

/// An SMTP submission relay and the envelope of the alert emails.
#[derive(Clone, PartialEq, Eq)]
pub struct MailTarget {
    /// The relay's host name or IP address.
    pub relay: String,
    /// Its port: 587 for submission, 25 for a relay that takes mail from this host.
    pub port: u16,
    /// Whether to require STARTTLS (RFC 3207) before authenticating and sending; the relay's
    /// certificate must be valid for `relay`.
    pub starttls: bool,
    /// The user name for `AUTH PLAIN`, with `password`.
    pub username: Option<String>,
    /// The password for `AUTH PLAIN` (hidden by `Debug`).
    pub password: Option<String>,
    /// The sender: envelope `MAIL FROM` and the `From` field.
    pub from: String,
    /// The recipients: envelope `RCPT TO` and the `To` field.
    pub to: Vec<String>,
}

impl fmt::Debug for MailTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailTarget")
            .field("relay", &self.relay)
            .field("port", &self.port)
            .field("starttls", &self.starttls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// The core's check of an envelope address ([`submission::check_address`]), as an error
/// naming the address's role.
fn check_address(role: &str, a: &str) -> Result<(), NotifyError> {
    submission::check_address(a)
        .map_err(|why| NotifyError::InvalidTarget(format!("invalid {role} address {a:?}: {why}")))
}

/// Sends one plain-text email through the relay of `target`.
///
/// RFC 6409 §3.1 ("Message Submission for Mail") and RFC 5321 §3.3: `EHLO`, then, when
/// `target.starttls`, `STARTTLS` and a new `EHLO` (RFC 3207 §4.2: "The client MUST discard any
/// knowledge obtained from the server, such as the list of SMTP service extensions, which was
/// not obtained from the TLS negotiation itself"), then `AUTH PLAIN` when credentials are given
/// (RFC 4616 §2: "message = \[authzid\] UTF8NUL authcid UTF8NUL passwd"), `MAIL FROM`, one
/// `RCPT TO` per recipient, `DATA` with the message dot-stuffed (RFC 5321 §4.5.2: "Before
/// sending a line of mail text, the SMTP client checks the first character of the line. If it
/// is a period, one additional period is inserted at the beginning of the line."), `QUIT`.
/// Which command comes next and what each reply means is decided by the core's
/// [`Submission`]; this function moves the bytes, does the TLS handshake and keeps the time.
///
/// All or nothing: a recipient refused ends the transaction before `DATA`, so a retry never
/// mails the others twice. A 4xx reply is a retryable [`NotifyError::Smtp`], a 5xx a permanent
/// one. Credentials are sent only over TLS, or to a relay on a loopback address. The relay's
/// certificate is verified against `opts.roots` for the name `target.relay`. The whole session
/// is bounded by `opts.timeout`.
pub async fn send_mail<D: DnsSource>(
    dns: &D,
    target: &MailTarget,
    subject: &str,
    body: &str,
    opts: &NotifyOptions,
) -> Result<(), NotifyError> {
    check_address("sender", &target.from)?;
    if target.to.is_empty() {
        return Err(NotifyError::InvalidTarget("no recipient".into()));
    }
    for to in &target.to {
        check_address("recipient", to)?;
    }
    let credentials = match (&target.username, &target.password) {
        (Some(u), Some(p)) => Some((u.as_str(), p.as_str())),
        (None, None) => None,
        _ => {
            return Err(NotifyError::InvalidTarget(
                "a user name and a password go together".into(),
            ));
        }
    };
    if let Some((u, p)) = credentials
        && (u.contains('\0') || p.contains('\0') || u.is_empty())
    {
        return Err(NotifyError::InvalidTarget(
            "the user name must be non-empty and neither may contain NUL".into(),
        ));
    }
    let relay = target.relay.trim();
    let relay = relay
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(relay);
    let host = match relay.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => {
            let h = normalize_name(relay);
            if mailaudit_core::dns::check_name(&h).is_err() {
                return Err(NotifyError::InvalidTarget(format!(
                    "invalid relay host {relay:?}"
                )));
            }
            h
        }
    };
    let message = build_message(target, subject, body, SystemTime::now());
    let attempt = Attempt::start(opts.timeout, opts.connect_timeout, &opts.roots);
    let tcp = attempt.open(dns, &host, target.port).await?;
    let local = tcp.local_addr().ok();
    let loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    let helo = match &opts.helo_name {
        Some(n) => n.clone(),
        None => match local.map(|a| a.ip()) {
            Some(IpAddr::V4(ip)) => format!("[{ip}]"),
            Some(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
            None => "[127.0.0.1]".to_string(),
        },
    };
    let plan = Plan {
        helo,
        starttls: target.starttls,
        auth_plain: credentials.map(|(user, password)| plain_token(user, password)),
        cleartext_ok: loopback,
        from: target.from.clone(),
        to: target.to.clone(),
    };
    let mut s = Smtp::new(Box::new(tcp) as Box<dyn Io>, &attempt);
    let mut machine = Submission::new(plan);
    let mut action = machine.start();
    loop {
        let step = match action {
            Action::Read(stage) => s.read_reply(stage.into()).await,
            Action::Send(stage, line) => {
                let stage = stage.into();
                match s.write(stage, format!("{line}\r\n").as_bytes()).await {
                    Ok(()) => s.read_reply(stage).await,
                    Err(e) => Err(e),
                }
            }
            Action::SendMessage => match s.write(Stage::Message, &message).await {
                Ok(()) => s.read_reply(Stage::Message).await,
                Err(e) => Err(e),
            },
            Action::StartTls => {
                let tcp = s.into_inner(Stage::StartTls)?;
                let tls = attempt.tls(tcp, &host, None).await?;
                s = Smtp::new(Box::new(tls) as Box<dyn Io>, &attempt);
                action = machine.on_tls();
                continue;
            }
            Action::Done => {
                s.quit().await;
                return Ok(());
            }
            Action::Fail(stage, failure) => {
                if stage.in_transaction() {
                    s.quit().await;
                }
                return Err(match failure {
                    Failure::Refused { stage, code, reply } => NotifyError::Smtp {
                        stage: stage.into(),
                        code,
                        reply,
                    },
                    Failure::Unsupported(extension) => NotifyError::Unsupported {
                        relay: host,
                        extension: extension.to_string(),
                    },
                    Failure::Cleartext => NotifyError::InvalidTarget(format!(
                        "refusing to send the password to {host} over an unencrypted \
                         connection: enable STARTTLS"
                    )),
                });
            }
        };
        match step {
            Ok(reply) => action = machine.on_reply(&reply),
            Err(e) => {
                // A transaction under way ends with QUIT, so the server drops it.
                if machine.stage().in_transaction() {
                    s.quit().await;
                }
                return Err(e);
            }
        }
    }
}

impl From<submission::Stage> for Stage {
    fn from(stage: submission::Stage) -> Stage {
        match stage {
            submission::Stage::Greeting => Stage::Greeting,
            submission::Stage::Ehlo => Stage::Ehlo,
            submission::Stage::StartTls => Stage::StartTls,
            submission::Stage::Auth => Stage::Auth,
            submission::Stage::MailFrom => Stage::MailFrom,
            submission::Stage::RcptTo => Stage::RcptTo,
            submission::Stage::Data => Stage::Data,
            submission::Stage::Message => Stage::Message,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An SMTP client connection: bounded line reads, the core's reply parser, one deadline.
struct Smtp<'a, S> {
    io: BufReader<S>,
    parser: ReplyParser,
    attempt: &'a Attempt,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Smtp<'a, S> {
    fn new(stream: S, attempt: &'a Attempt) -> Self {
        Smtp {
            io: BufReader::new(stream),
            parser: ReplyParser::new(),
            attempt,
        }
    }

    fn timed_out(&self, stage: Stage) -> NotifyError {
        self.attempt.timed_out(stage).into()
    }

    /// The stream back, for STARTTLS. Octets the server sent ahead of the TLS handshake would
    /// be taken as protected: RFC 3207 §4.2 makes the client discard them, so they are refused.
    fn into_inner(self, stage: Stage) -> Result<S, NotifyError> {
        if !self.io.buffer().is_empty() {
            return Err(NotifyError::SmtpProtocol {
                stage,
                reason: "the server sent data ahead of its reply".into(),
            });
        }
        Ok(self.io.into_inner())
    }

    /// One reply line without its CRLF, at most the parser's line cap.
    async fn read_line(&mut self, stage: Stage) -> Result<String, NotifyError> {
        let max = self.parser.max_line() + 2;
        let mut line = Vec::new();
        loop {
            let buf = match timeout_at(self.attempt.deadline, self.io.fill_buf()).await {
                Err(_) => return Err(self.timed_out(stage)),
                Ok(Err(e)) => return Err(io_error(stage, describe_io(&e))),
                Ok(Ok(b)) => b,
            };
            if buf.is_empty() {
                return Err(io_error(stage, "the server closed the connection".into()));
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..take]);
            self.io.consume(take);
            if line.len() > max {
                return Err(NotifyError::SmtpProtocol {
                    stage,
                    reason: format!("a reply line longer than {} octets", max - 2),
                });
            }
            if done {
                break;
            }
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    async fn read_reply(&mut self, stage: Stage) -> Result<Reply, NotifyError> {
        loop {
            let line = self.read_line(stage).await?;
            match self.parser.feed(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => {
                    return Err(NotifyError::SmtpProtocol {
                        stage,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    async fn write(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), NotifyError> {
        let stream = self.io.get_mut();
        match timeout_at(self.attempt.deadline, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        {
            Err(_) => Err(self.timed_out(stage)),
            Ok(Err(e)) => Err(io_error(stage, describe_io(&e))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// `QUIT`, its reply waited for briefly; failures ignored (the outcome is already known).
    async fn quit(&mut self) {
        let _ = timeout(QUIT_WAIT, async {
            if self.write(Stage::Message, b"QUIT\r\n").await.is_ok() {
                let _ = self.read_reply(Stage::Message).await;
            }
        })
        .await;
    }
}

fn io_error(stage: Stage, reason: String) -> NotifyError {
    TransportError::Io { stage, reason }.into()
}

/// The message as sent after `DATA`: header fields, the body, dot-stuffed, CRLF line ends, the
/// terminating `.` line. The MIME message itself is written by `mail-builder`.
///
/// RFC 5322 §3.6: "The only required header fields are the origination date field and the
/// originator address field(s)"; §3.6.4: "Every message SHOULD have a "Message-ID:" field."
/// RFC 2045: `MIME-Version: 1.0`, `Content-Type: text/plain; charset="utf-8"`; a body that is
/// not 7-bit text with short lines is sent quoted-printable or base64 (whichever is shorter),
/// so no 8BITMIME support is needed; a subject that is not printable ASCII is sent as RFC 2047
/// encoded words. RFC 3834 §5: `Auto-Submitted: auto-generated` keeps vacation responders from
/// answering. RFC 5321 §4.5.2: "Before sending a line of mail text, the SMTP client checks the
/// first character of the line. If it is a period, one additional period is inserted at the
/// beginning of the line."
fn build_message(target: &MailTarget, subject: &str, body: &str, now: SystemTime) -> Vec<u8> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let domain = target.from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let to: Vec<Address<'_>> = target
        .to
        .iter()
        .map(|a| Address::new_address(None::<&str>, a.as_str()))
        .collect();
    let mut text = split_lines(body).join("\r\n");
    text.push_str("\r\n");
    let message = MessageBuilder::new()
        .from(Address::new_address(None::<&str>, target.from.as_str()))
        .to(Address::new_list(to))
        // One line: a line break in a subject would start a header field of its own.
        .subject(one_line(subject))
        .message_id(format!("{}@{domain}", unique_id(now)))
        .date(secs)
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .text_body(text)
        .write_to_vec()
        // Writing to a vector does not fail.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The body's lines: split at CRLF, CR or LF; no empty last line for a final line break.
fn split_lines(body: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        match rest.find(['\r', '\n']) {
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// The `AUTH PLAIN` message, base64-encoded (RFC 4616 §2: "message = \[authzid\] UTF8NUL
/// authcid UTF8NUL passwd"; RFC 4954 §4: "the client [...] encodes it in base64").
fn plain_token(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

/// A Message-ID left part unique to this process and moment: time, process, a counter and
/// per-process random state.
fn unique_id(now: SystemTime) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u128(d.as_nanos());
    format!(
        "{}.{:x}.{:x}.{:016x}.mailaudit",
        d.as_secs(),
        std::process::id(),
        n,
        h.finish()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4616_auth_plain() {
        // RFC 4616 §4's example: authcid "tim", password "tanstaaftanstaaf".
        assert_eq!(
            plain_token("tim", "tanstaaftanstaaf"),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
    }

    fn mail_target() -> MailTarget {
        MailTarget {
            relay: "smtp.test".into(),
            port: 25,
            starttls: false,
            username: None,
            password: None,
            from: "alerts@msp.test".into(),
            to: vec!["a@x.test".into(), "b@x.test".into()],
        }
    }

    /// The message as a receiver reads it: dot-stuffing undone, the final `.` line removed.
    fn received(m: &[u8]) -> Vec<u8> {
        let m = m.strip_suffix(b".\r\n").expect("the final dot line");
        let mut out = Vec::new();
        for line in m.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    /// The message as a receiver parses it.
    fn parse(m: &[u8]) -> mail_parser::Message<'static> {
        let raw = received(m);
        mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("a message")
            .into_owned()
    }

    #[test]
    fn message_headers_and_dot_stuffing() {
        let target = mail_target();
        let now = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        let m = build_message(&target, "Hi", ".leading dot\n..two\nplain\r\nend", now);
        let text = String::from_utf8(m.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        for needle in [
            "From: <alerts@msp.test>",
            "Subject: Hi",
            "MIME-Version: 1.0",
            "Auto-Submitted: auto-generated",
            "Content-Transfer-Encoding: 7bit",
        ] {
            assert!(head.contains(needle), "{needle:?} in {head}");
        }
        assert!(!head.lines().any(|l| l.starts_with('.')), "{head}");
        assert_eq!(body, "..leading dot\r\n...two\r\nplain\r\nend\r\n.\r\n");
        assert!(
            text.split("\r\n").all(|l| !l.contains('\n')),
            "bare LF: {text:?}"
        );

        let parsed = parse(&m);
        assert_eq!(parsed.subject(), Some("Hi"));
        assert_eq!(parsed.date().map(|d| d.to_timestamp()), Some(1_709_210_096));
        let to: Vec<_> = parsed
            .to()
            .unwrap()
            .iter()
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(to, ["a@x.test", "b@x.test"]);
        assert_eq!(
            parsed
                .from()
                .and_then(|f| f.first())
                .and_then(|a| a.address()),
            Some("alerts@msp.test")
        );
        assert_eq!(
            parsed.body_text(0).as_deref(),
            Some(".leading dot\r\n..two\r\nplain\r\nend\r\n")
        );
        let id = parsed.message_id().unwrap().to_string();
        assert!(id.ends_with("@msp.test"), "{id}");
        let other = build_message(&target, "Hi", "x", now);
        let other = parse(&other);
        assert_ne!(other.message_id(), Some(id.as_str()));

        let utf8 = build_message(&target, "é", "café\n.x", now);
        let parsed = parse(&utf8);
        assert!(utf8.is_ascii(), "{}", String::from_utf8_lossy(&utf8));
        assert_eq!(parsed.subject(), Some("é"));
        assert_eq!(parsed.body_text(0).as_deref(), Some("café\r\n.x\r\n"));
        let long = "a".repeat(1200);
        let long = build_message(&target, "x", &long, now);
        assert!(long.split(|&b| b == b'\n').all(|l| l.len() <= 998));
        let parsed = parse(&long);
        assert_eq!(parsed.body_text(0).map(|b| b.trim_end().len()), Some(1200));
    }

    #[test]
    fn rfc2047_subjects() {
        let target = mail_target();
        for s in [
            "mailaudit: 2 regressions",
            "mailaudit: 1 regression on contoso.com (score 85 → 60)",
            "Régression sur exemple.fr",
            &"日本語のドメイン".repeat(10),
            "=?looks encoded?=",
            &"é".repeat(200),
            "a\r\nBcc: x@y",
        ] {
            let m = build_message(&target, s, "x", SystemTime::now());
            assert!(m.is_ascii(), "{s}");
            let head = String::from_utf8_lossy(&m);
            let head = head.split("\r\n\r\n").next().unwrap();
            assert!(!head.contains("\r\nBcc"), "{head}");
            assert!(head.split("\r\n").all(|l| l.len() <= 998), "{head}");
            let parsed = parse(&m);
            assert_eq!(parsed.subject(), Some(one_line(s).as_str()), "{head}");
        }
    }

    #[test]
    fn addresses_are_checked_by_the_core() {
        assert!(check_address("sender", "alerts@msp.test").is_ok());
        let err = check_address("recipient", "a b@x.test").unwrap_err();
        assert!(
            matches!(&err, NotifyError::InvalidTarget(t) if t.starts_with("invalid recipient address \"a b@x.test\": spaces")),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let m = MailTarget {
            relay: "smtp.test".into(),
            port: 587,
            starttls: true,
            username: Some("alerts".into()),
            password: Some("hunter2".into()),
            from: "a@x.test".into(),
            to: vec!["b@x.test".into()],
        };
        let d = format!("{m:?}");
        assert!(!d.contains("hunter2") && d.contains("<redacted>"), "{d}");
    }

    #[test]
    fn helpers_never_panic_on_odd_text() {
        for s in ["", "é", "\u{0}\u{7f}", "a\u{200b}b", &"🦀".repeat(100)] {
            let _ = build_message(&mail_target(), s, s, SystemTime::now());
            let _ = split_lines(s);
        }
        assert_eq!(split_lines("a\r\nb\rc\n\nd\n"), ["a", "b", "c", "", "d"]);
    }
}
