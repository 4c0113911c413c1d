//! An IMAP4rev1 client (RFC 3501) for reading report mailboxes: connect over implicit TLS
//! (`imaps://`, RFC 8314) or STARTTLS (`imap://`), log in (`AUTHENTICATE PLAIN`, else `LOGIN`),
//! `SELECT`/`EXAMINE` a mailbox, `UID SEARCH` for the messages after a cursor, `UID FETCH` their
//! sizes and bodies (`BODY.PEEK[]`, so nothing is marked read), and optionally flag or move them.
//!
//! The grammar (responses, literals, quoting, modified UTF-7) is `mailaudit_core::imap`; this
//! module moves the bytes and keeps the server in check, since a report mailbox's server is as
//! untrusted as any: every read has a timeout ([`ImapOptions::timeout`], applied to each line and
//! to each chunk of a literal), lines are capped at [`mailaudit_core::imap::MAX_LINE`], literals
//! at [`ImapOptions::max_literal`], the untagged responses to one command at
//! [`MAX_RESPONSES`], and a server that sends bytes after its `STARTTLS` answer (before the
//! handshake) is refused (CVE-2011-0411's "STARTTLS command injection" from the other side).
//!
//! Certificates are verified against [`TlsRoots`] (web PKI roots plus an optional `--ca-file`)
//! with rustls' web PKI verifier; a certificate that does not validate ends the session.
//! Plaintext is used only for `imap://` when the server offers no `STARTTLS` and the caller set
//! [`ImapOptions::allow_plaintext`]; a server that offers it always gets it.
//!
//! With [`Session::idle`] the client waits for new mail in the selected mailbox (`IDLE`, RFC
//! 2177) instead of asking again and again: it returns on `* n EXISTS` or when the wait given
//! has passed, after ending the IDLE with `DONE`; the answer to `DONE` is awaited for one
//! [`ImapOptions::timeout`] in all, so a server that never answers cannot hang the client.
//!
//! Besides passwords, [`Session::authenticate_oauth`] logs in with an OAuth 2.0 bearer token
//! (`XOAUTH2`, else `OAUTHBEARER`), as Exchange Online requires.
//!
//! The password and the token are never stored in a [`Session`], never logged and never part of
//! an error.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mailaudit_core::dns::DnsSource;
use mailaudit_core::imap::{
    Code, Fetch, IDLE_DONE, IdleEvent, ImapUrl, MAX_LINE, OAuthMechanism, ProtocolError,
    RawResponse, Response, Security, Status, StatusText, encode_mailbox, idle_event,
    literal_announced, parse_oauth_challenge, parse_response, quoted, sasl_plain,
};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;

use crate::smtp::TlsRoots;
use crate::transport;

/// The default limit of each read, write and connection attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default largest message (literal) accepted: 100 MiB.
pub const DEFAULT_MAX_LITERAL: u64 = 100 * 1024 * 1024;

/// Most untagged responses accepted in answer to one command.
pub const MAX_RESPONSES: usize = 100_000;

/// Most UIDs returned by one [`Session::search_from`].
pub const MAX_SEARCH: usize = 1_000_000;

/// Literal bytes are read in chunks of this size, each under the timeout.
const CHUNK: u64 = 64 * 1024;

/// How a session connects.
#[derive(Clone, Debug)]
pub struct ImapOptions {
    /// The limit of each read (a line, a chunk of a literal), each write and each connection
    /// attempt.
    pub timeout: Duration,
    /// Trust anchors for the server certificate.
    pub roots: TlsRoots,
    /// For `imap://`: go on in plaintext when the server offers no `STARTTLS` (loopback labs).
    pub allow_plaintext: bool,
    /// The largest literal (message) read; a larger one ends the session with
    /// [`ImapError::TooLarge`].
    pub max_literal: u64,
}

impl ImapOptions {
    /// Defaults with the given trust anchors.
    pub fn new(roots: TlsRoots) -> Self {
        ImapOptions {
            timeout: DEFAULT_TIMEOUT,
            roots,
            allow_plaintext: false,
            max_literal: DEFAULT_MAX_LITERAL,
        }
    }
}

/// Why an IMAP session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The host name could not be resolved.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// No TCP connection could be made.
    #[error("cannot connect to {host}: {}", .attempts.join("; "))]
    Connect {
        /// The host.
        host: String,
        /// One entry per address tried.
        attempts: Vec<String>,
    },
    /// The server did not answer in time.
    #[error("no answer from the IMAP server within {}s ({stage})", .limit.as_secs_f64())]
    Timeout {
        /// What was waited for.
        stage: String,
        /// The limit.
        limit: Duration,
    },
    /// The TLS handshake failed (certificate not valid, protocol error).
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// `imap://` to a server that offers no STARTTLS, without [`ImapOptions::allow_plaintext`].
    #[error(
        "{host} does not offer STARTTLS: refusing to log in without TLS (use imaps:// if the \
         server has it, or --allow-plaintext for a loopback lab)"
    )]
    NoStartTls {
        /// The host.
        host: String,
    },
    /// The server closed the connection.
    #[error("the IMAP server closed the connection ({stage}){}", bye_text(.bye))]
    Closed {
        /// What was going on.
        stage: String,
        /// The text of the server's `BYE`, if it sent one.
        bye: Option<String>,
    },
    /// A read or write failed.
    #[error("IMAP connection error ({stage}): {reason}")]
    Io {
        /// What was going on.
        stage: String,
        /// Why.
        reason: String,
    },
    /// The server sent something this client does not accept.
    #[error("IMAP protocol error ({stage}): {error}")]
    Protocol {
        /// What was going on.
        stage: String,
        /// What is wrong.
        error: ProtocolError,
    },
    /// A line or literal beyond the caps.
    #[error("the IMAP server sent too much ({stage}): {what}")]
    TooLarge {
        /// What was going on.
        stage: String,
        /// What was too large.
        what: String,
    },
    /// The server offers no authentication mechanism this client can use with the credential
    /// given (a token, and neither `AUTH=XOAUTH2` nor `AUTH=OAUTHBEARER`).
    #[error("{host} cannot take this credential: {why}")]
    Unsupported {
        /// The host.
        host: String,
        /// What is missing.
        why: String,
    },
    /// The server refused the login.
    #[error("login as {user} refused: {text}")]
    Login {
        /// The user name.
        user: String,
        /// The server's text.
        text: String,
    },
    /// A command failed (`NO` or `BAD`).
    #[error("{command} failed: {status} {text}")]
    Command {
        /// The command, without arguments that could be secret.
        command: String,
        /// `NO` or `BAD`.
        status: Status,
        /// The server's text.
        text: String,
    },
}

fn bye_text(bye: &Option<String>) -> String {
    bye.as_deref()
        .map(|t| format!(": BYE {t}"))
        .unwrap_or_default()
}

impl ImapError {
    /// Whether the error is about this connection rather than the request (anything but a
    /// refused login or command): a new session may succeed.
    pub fn is_connection(&self) -> bool {
        !matches!(
            self,
            ImapError::Login { .. } | ImapError::Command { .. } | ImapError::Unsupported { .. }
        )
    }
}

/// The TCP or TLS stream under a session.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// While the TCP stream moves into TLS (and after a failed handshake): no connection.
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is gone")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// The selected mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxInfo {
    /// `UIDVALIDITY`: UIDs are only comparable while it stays the same (RFC 3501 §2.3.1.1).
    pub uid_validity: u32,
    /// `UIDNEXT`, when the server sent it.
    pub uid_next: Option<u32>,
    /// The number of messages (`EXISTS`).
    pub exists: u32,
}

/// How an [`Session::idle`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleOutcome {
    /// The server reported new mail (`* n EXISTS`), during the IDLE or in an answer to a
    /// command since the mailbox was selected; the mailbox now holds `exists` messages.
    NewMail {
        /// The message count the server reported.
        exists: u32,
    },
    /// The wait passed with no new mail.
    Elapsed,
}

/// One logged-in (or not yet logged-in) IMAP connection.
pub struct Session {
    io: BufReader<Stream>,
    host: String,
    port: u16,
    opts: ImapOptions,
    tag: u32,
    capabilities: Vec<String>,
    tls: bool,
    /// The last `* n EXISTS` received in an answer to a command since the mailbox was selected
    /// (new mail that arrived while the client was busy), for [`Session::idle`].
    exists_since_select: Option<u32>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("tls", &self.tls)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

impl Session {
    /// Connects to the server of `url` (resolving its host through `dns` unless it is an IP
    /// address), reads the greeting and secures the connection: TLS at once for `imaps://`,
    /// `STARTTLS` for `imap://` (see the [module docs](self)).
    ///
    /// RFC 3501 §6.2.1: "A [TLS] negotiation begins immediately after the CRLF at the end of the
    /// tagged OK response from the server. [...] The server remains in the non-authenticated
    /// state, even if client credentials are supplied during the [TLS] negotiation. [...] Once
    /// [TLS] has been started, the client MUST discard cached information about server
    /// capabilities and SHOULD re-issue the CAPABILITY command."
    pub async fn connect<D: DnsSource>(
        url: &ImapUrl,
        dns: &D,
        opts: &ImapOptions,
    ) -> Result<Session, ImapError> {
        let addrs: Vec<IpAddr> = match url.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => transport::resolve(dns, &url.host, Instant::now() + opts.timeout)
                .await
                .map_err(|e| ImapError::Resolve {
                    host: url.host.clone(),
                    reason: e.to_string(),
                })?,
        };
        let tcp = connect_tcp(&url.host, &addrs, url.port, opts.timeout).await?;
        let mut session = Session {
            io: BufReader::new(Stream::Plain(tcp)),
            host: url.host.clone(),
            port: url.port,
            opts: opts.clone(),
            tag: 0,
            capabilities: Vec::new(),
            tls: false,
            exists_since_select: None,
        };
        if url.security == Security::Implicit {
            session.start_tls().await?;
        }
        session.greeting().await?;
        if session.capabilities.is_empty() {
            session.refresh_capabilities().await?;
        }
        if url.security == Security::StartTls {
            if session.has("STARTTLS") {
                let status = session.command("STARTTLS", "STARTTLS", |_| Ok(())).await?;
                session.expect_ok("STARTTLS", status)?;
                // Bytes the server sent after its OK would be read as if they came over TLS.
                if !session.io.buffer().is_empty() {
                    return Err(ImapError::Io {
                        stage: "STARTTLS".into(),
                        reason: "the server sent data after its STARTTLS answer, before the \
                                 TLS handshake (command injection?); refused"
                            .into(),
                    });
                }
                session.start_tls().await?;
                session.capabilities.clear();
                session.refresh_capabilities().await?;
            } else if !opts.allow_plaintext {
                return Err(ImapError::NoStartTls {
                    host: url.host.clone(),
                });
            }
        }
        Ok(session)
    }

    /// Whether the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The server's capabilities (upper-case), as last announced.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Whether the server announced capability `name` (upper-case).
    pub fn has(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }

    /// Logs in as `user`: `AUTHENTICATE PLAIN` when the server offers it (with the initial
    /// response on the command line under SASL-IR, RFC 4959), else `LOGIN`.
    ///
    /// RFC 3501 §6.2.3: "The LOGIN command SHOULD NOT be used except as a last resort, and it is
    /// recommended that client implementations have a means to disable any automatic use of the
    /// LOGIN command." `LOGINDISABLED` is honoured: no credentials are sent where the server
    /// forbids it.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), ImapError> {
        let refused = |text: String| ImapError::Login {
            user: user.to_string(),
            text,
        };
        let status = if self.has("AUTH=PLAIN") {
            let ir = sasl_plain(user, password);
            if self.has("SASL-IR") {
                self.command(&format!("AUTHENTICATE PLAIN {ir}"), "AUTHENTICATE", |_| {
                    Ok(())
                })
                .await?
            } else {
                let tag = self.send("AUTHENTICATE PLAIN", "AUTHENTICATE").await?;
                match self.read_response("AUTHENTICATE").await? {
                    Response::Continue(_) => {
                        self.write_line(&ir, "AUTHENTICATE").await?;
                        self.finish(&tag, "AUTHENTICATE", |_| Ok(())).await?
                    }
                    Response::Tagged { tag: t, status } if t == tag => status,
                    other => return Err(unexpected("AUTHENTICATE", &other)),
                }
            }
        } else if self.has("LOGINDISABLED") {
            return Err(refused(
                "the server disables LOGIN here and offers no AUTH=PLAIN".into(),
            ));
        } else {
            let (Some(u), Some(p)) = (quoted(user), quoted(password)) else {
                return Err(refused(
                    "the server offers only LOGIN, which cannot carry a non-ASCII user name or \
                     password"
                        .into(),
                ));
            };
            self.command(&format!("LOGIN {u} {p}"), "LOGIN", |_| Ok(()))
                .await?
        };
        if status.status != Status::Ok {
            return Err(refused(format!("{} {}", status.status, status.text)));
        }
        // RFC 3501 §6.2.3: capabilities may change after login.
        match status.code {
            Some(Code::Capability(c)) => self.capabilities = c,
            _ => self.refresh_capabilities().await?,
        }
        Ok(())
    }

    /// Logs in as `user` with the OAuth 2.0 bearer `token`: `AUTHENTICATE XOAUTH2` when the
    /// server offers it (Exchange Online), else `AUTHENTICATE OAUTHBEARER` (RFC 7628), with the
    /// initial response on the command line under SASL-IR (RFC 4959), else after the server's
    /// empty continuation request. The token is never logged nor part of an error.
    ///
    /// RFC 3501 §6.2.2: "If the server supports the requested authentication mechanism, it
    /// performs an authentication protocol exchange to authenticate and identify the client."
    /// A refused token is answered with an error challenge (`+ <base64 JSON>`), which the
    /// client acknowledges (an empty line for XOAUTH2, `%x01` for OAUTHBEARER, see
    /// [`OAuthMechanism::error_acknowledgement`]) before the server's tagged `NO`; the
    /// challenge's details are part of the [`ImapError::Login`] text. Exchange Online answers
    /// `NO AUTHENTICATE failed.` at once.
    pub async fn authenticate_oauth(&mut self, user: &str, token: &str) -> Result<(), ImapError> {
        let Some(mechanism) = OAuthMechanism::choose(&self.capabilities) else {
            return Err(ImapError::Unsupported {
                host: self.host.clone(),
                why: "it offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER, so OAuth 2.0 \
                      tokens cannot be used (use a password instead)"
                    .into(),
            });
        };
        let ir = mechanism
            .initial_response(user, &self.host, self.port, token)
            .map_err(|error| ImapError::Protocol {
                stage: "AUTHENTICATE".into(),
                error,
            })?;
        let stage = "AUTHENTICATE";
        let tag = if self.has("SASL-IR") {
            self.send(&format!("AUTHENTICATE {} {ir}", mechanism.name()), stage)
                .await?
        } else {
            let tag = self
                .send(&format!("AUTHENTICATE {}", mechanism.name()), stage)
                .await?;
            match self.read_response(stage).await? {
                Response::Continue(_) => self.write_line(&ir, stage).await?,
                Response::Tagged { tag: t, status } if t == tag => {
                    return self.finish_login(user, status, None).await;
                }
                other => return Err(unexpected(stage, &other)),
            }
            tag
        };
        // The tagged answer, or an error challenge first.
        let mut challenge = None;
        let status = loop {
            match self.read_response(stage).await? {
                Response::Tagged { tag: t, status } if t == tag => break status,
                Response::Continue(text) if challenge.is_none() => {
                    challenge = Some(parse_oauth_challenge(&text));
                    self.write_line(mechanism.error_acknowledgement(), stage)
                        .await?;
                }
                Response::Status(StatusText {
                    status: Status::Bye,
                    text,
                    ..
                }) => {
                    return Err(ImapError::Closed {
                        stage: stage.into(),
                        bye: Some(text),
                    });
                }
                r @ (Response::Tagged { .. } | Response::Continue(_)) => {
                    return Err(unexpected(stage, &r));
                }
                // Untagged data (CAPABILITY, ...) before the answer.
                _ => {}
            }
        };
        self.finish_login(
            user,
            status,
            challenge.map(|c| format!("{mechanism} error challenge: {c}")),
        )
        .await
    }

    /// After the tagged answer to a login: refused, or logged in with fresh capabilities.
    async fn finish_login(
        &mut self,
        user: &str,
        status: StatusText,
        detail: Option<String>,
    ) -> Result<(), ImapError> {
        if status.status != Status::Ok {
            // The response code (RFC 5530: AUTHENTICATIONFAILED, AUTHORIZATIONFAILED,
            // EXPIRED, ...) says why.
            let code = match &status.code {
                Some(Code::Other(c)) => format!("[{c}] "),
                _ => String::new(),
            };
            let mut text = format!("{} {code}{}", status.status, status.text);
            if let Some(d) = detail {
                text.push_str(&format!(" ({d})"));
            }
            return Err(ImapError::Login {
                user: user.to_string(),
                text,
            });
        }
        // RFC 3501 §6.2.2: capabilities may change after authentication.
        match status.code {
            Some(Code::Capability(c)) => self.capabilities = c,
            _ => self.refresh_capabilities().await?,
        }
        Ok(())
    }

    /// Opens `mailbox` (UTF-8; sent in modified UTF-7): `EXAMINE` when `read_only`, else
    /// `SELECT`.
    ///
    /// RFC 3501 §6.3.1: "OK [UIDVALIDITY <n>] The unique identifier validity value. [...] If
    /// this is missing, the client can not make any assumptions about the persistence of
    /// unique identifiers." This client refuses a mailbox without it.
    pub async fn select(
        &mut self,
        mailbox: &str,
        read_only: bool,
    ) -> Result<MailboxInfo, ImapError> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let name = mailbox_arg(mailbox);
        let (mut validity, mut next, mut exists) = (None, None, 0);
        let status = self
            .command(&format!("{verb} {name}"), verb, |r| {
                match r {
                    Response::Status(StatusText {
                        code: Some(Code::UidValidity(v)),
                        ..
                    }) => validity = Some(v),
                    Response::Status(StatusText {
                        code: Some(Code::UidNext(n)),
                        ..
                    }) => next = Some(n),
                    Response::Exists(n) => exists = n,
                    _ => {}
                }
                Ok(())
            })
            .await?;
        self.expect_ok(verb, status)?;
        self.exists_since_select = None;
        let uid_validity = validity.ok_or_else(|| ImapError::Protocol {
            stage: verb.into(),
            error: ProtocolError::Malformed {
                why: "the server sent no UIDVALIDITY".into(),
                excerpt: String::new(),
            },
        })?;
        Ok(MailboxInfo {
            uid_validity,
            uid_next: next,
            exists,
        })
    }

    /// The UIDs of the messages with UID `first` or higher, ascending.
    ///
    /// RFC 3501 §6.4.4 and §9 (`seq-range`): "`*` represents the largest number in use", so
    /// `UID SEARCH UID n:*` also returns the last message when every UID is below `n`; such
    /// UIDs are dropped here.
    pub async fn search_from(&mut self, first: u32) -> Result<Vec<u32>, ImapError> {
        let first = first.max(1);
        let mut uids: Vec<u32> = Vec::new();
        let status = self
            .command(&format!("UID SEARCH UID {first}:*"), "UID SEARCH", |r| {
                if let Response::Search(found) = r {
                    uids.extend(found.into_iter().filter(|u| *u >= first));
                    if uids.len() > MAX_SEARCH {
                        return Err(too_large(
                            "UID SEARCH",
                            format!("more than {MAX_SEARCH} UIDs"),
                        ));
                    }
                }
                Ok(())
            })
            .await?;
        self.expect_ok("UID SEARCH", status)?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The sizes (`RFC822.SIZE`) of the messages `uids`, by UID; messages expunged meanwhile
    /// are absent.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u64)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let status = self
            .command(
                &format!("UID FETCH {} (UID RFC822.SIZE)", sequence_set(uids)),
                "UID FETCH (RFC822.SIZE)",
                |r| {
                    if let Response::Fetch(Fetch {
                        uid: Some(uid),
                        size: Some(size),
                        ..
                    }) = r
                        && uids.binary_search(&uid).is_ok()
                    {
                        found.push((uid, size));
                    }
                    Ok(())
                },
            )
            .await?;
        self.expect_ok("UID FETCH", status)?;
        found.sort_unstable();
        found.dedup_by_key(|(u, _)| *u);
        Ok(found)
    }

    /// The whole message `uid` (`BODY.PEEK[]`: the `\Seen` flag is not set), or `None` when it
    /// no longer exists.
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let mut body = None;
        let status = self
            .command(
                &format!("UID FETCH {uid} (UID BODY.PEEK[])"),
                "UID FETCH (BODY.PEEK[])",
                |r| {
                    if let Response::Fetch(f) = r
                        && f.uid == Some(uid)
                        && f.body.is_some()
                    {
                        body = f.body;
                    }
                    Ok(())
                },
            )
            .await?;
        self.expect_ok("UID FETCH", status)?;
        Ok(body)
    }

    /// Sets the `\Seen` flag of message `uid`.
    pub async fn mark_seen(&mut self, uid: u32) -> Result<(), ImapError> {
        let status = self
            .command(
                &format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)"),
                "UID STORE",
                |_| Ok(()),
            )
            .await?;
        self.expect_ok("UID STORE", status)
    }

    /// Moves message `uid` to `mailbox`: `UID MOVE` (RFC 6851) when offered, else `UID COPY`,
    /// `\Deleted` and, with UIDPLUS (RFC 4315), `UID EXPUNGE` of that message alone (without
    /// UIDPLUS the original stays, flagged `\Deleted`, for the mailbox owner's next expunge).
    pub async fn move_to(&mut self, uid: u32, mailbox: &str) -> Result<(), ImapError> {
        let name = mailbox_arg(mailbox);
        if self.has("MOVE") {
            let status = self
                .command(&format!("UID MOVE {uid} {name}"), "UID MOVE", |_| Ok(()))
                .await?;
            return self.expect_ok("UID MOVE", status);
        }
        let status = self
            .command(&format!("UID COPY {uid} {name}"), "UID COPY", |_| Ok(()))
            .await?;
        self.expect_ok("UID COPY", status)?;
        let status = self
            .command(
                &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
                "UID STORE",
                |_| Ok(()),
            )
            .await?;
        self.expect_ok("UID STORE", status)?;
        if self.has("UIDPLUS") {
            let status = self
                .command(&format!("UID EXPUNGE {uid}"), "UID EXPUNGE", |_| Ok(()))
                .await?;
            self.expect_ok("UID EXPUNGE", status)?;
        }
        Ok(())
    }

    /// `NOOP`: keeps the session alive and tells whether it still is.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        let status = self.command("NOOP", "NOOP", |_| Ok(())).await?;
        self.expect_ok("NOOP", status)
    }

    /// Whether the server offers `IDLE` (RFC 2177).
    pub fn supports_idle(&self) -> bool {
        self.has("IDLE")
    }

    /// Waits, in the selected mailbox, for new mail or until `wait` has passed: `IDLE`, then
    /// `DONE` and its tagged answer. Returns at once with [`IdleOutcome::NewMail`] when an
    /// `EXISTS` came in an answer to a command since the mailbox was selected (mail that
    /// arrived during the last poll). Callers keep `wait` within
    /// [`mailaudit_core::imap::idle_period`].
    ///
    /// RFC 2177 §3: "The IDLE command is sent from the client to the server when the client is
    /// ready to accept unsolicited mailbox update messages. The server requests a response to
    /// the IDLE command using the continuation ("+") response. The IDLE command remains active
    /// until the client responds to the continuation, and as long as an IDLE command is
    /// active, the server is now free to send untagged EXISTS, EXPUNGE, and other messages at
    /// any time. The IDLE command is terminated by the receipt of a "DONE" continuation from
    /// the client; such response satisfies the server's continuation request. At that point,
    /// the server MAY send any remaining queued untagged responses and then MUST immediately
    /// send the tagged response to the IDLE command and prepare to process other commands."
    ///
    /// Untagged responses other than `EXISTS` (`EXPUNGE`, `FETCH` flag updates, `* OK Still
    /// here`) are ignored; `* BYE` or a closed connection is [`ImapError::Closed`]; a refused
    /// IDLE (`NO`, `BAD`) is [`ImapError::Command`]; a server that offers no IDLE is
    /// [`ImapError::Unsupported`]. Each read keeps [`ImapOptions::timeout`] (once a response
    /// has begun), and the answer to `DONE` is awaited for one timeout in all.
    pub async fn idle(&mut self, wait: Duration) -> Result<IdleOutcome, ImapError> {
        if let Some(exists) = self.exists_since_select.take() {
            return Ok(IdleOutcome::NewMail { exists });
        }
        if !self.supports_idle() {
            return Err(ImapError::Unsupported {
                host: self.host.clone(),
                why: "it does not offer IDLE (RFC 2177)".into(),
            });
        }
        let stage = "IDLE";
        let tag = self.send("IDLE", stage).await?;
        let mut new_mail = None;
        // The continuation request; updates may come before it.
        let mut accepted = false;
        for _ in 0..MAX_RESPONSES {
            match self.idle_response(&tag, stage).await? {
                IdleEvent::Accepted => {
                    accepted = true;
                    break;
                }
                IdleEvent::Exists(n) => new_mail = Some(n),
                IdleEvent::Finished(status) => {
                    // Ended (or refused) before it began: nothing to end with DONE.
                    self.expect_ok("IDLE", status)?;
                    return Ok(outcome(new_mail));
                }
                IdleEvent::Bye(_) | IdleEvent::Ignored => {}
            }
        }
        if !accepted {
            return Err(too_large(
                stage,
                format!("more than {MAX_RESPONSES} responses before the continuation"),
            ));
        }
        let deadline = Instant::now() + wait;
        while new_mail.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // Wait for the first byte of a response without taking it: a response cut by the
            // deadline would be lost. Once it has begun, it is read under the usual timeout.
            match timeout(left, self.io.fill_buf()).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(io_error(stage, &e)),
                Ok(Ok([])) => {
                    return Err(ImapError::Closed {
                        stage: "IDLE, waiting for new mail".into(),
                        bye: None,
                    });
                }
                Ok(Ok(_)) => {}
            }
            match self.idle_response(&tag, stage).await? {
                IdleEvent::Exists(n) => new_mail = Some(n),
                IdleEvent::Finished(status) => {
                    // The server ended the IDLE itself (RFC 2177 does not provide for it):
                    // no DONE is due.
                    self.expect_ok("IDLE", status)?;
                    return Ok(outcome(new_mail));
                }
                IdleEvent::Accepted | IdleEvent::Ignored | IdleEvent::Bye(_) => {}
            }
        }
        if let Some(n) = self.done(&tag).await? {
            new_mail = Some(n);
        }
        Ok(outcome(new_mail))
    }

    /// Sends `DONE` and reads until the tagged answer to the IDLE command `tag`, for one
    /// [`ImapOptions::timeout`] in all. Returns the last `EXISTS` sent meanwhile.
    async fn done(&mut self, tag: &str) -> Result<Option<u32>, ImapError> {
        let stage = "DONE (ending IDLE)";
        self.write_line(IDLE_DONE, stage).await?;
        let limit = self.opts.timeout;
        let answer = async {
            let mut new_mail = None;
            for _ in 0..MAX_RESPONSES {
                match self.idle_response(tag, stage).await? {
                    IdleEvent::Finished(status) => {
                        self.expect_ok("IDLE", status)?;
                        return Ok(new_mail);
                    }
                    IdleEvent::Exists(n) => new_mail = Some(n),
                    IdleEvent::Accepted | IdleEvent::Ignored | IdleEvent::Bye(_) => {}
                }
            }
            Err(too_large(
                stage,
                format!("more than {MAX_RESPONSES} responses to DONE"),
            ))
        };
        match timeout(limit, answer).await {
            Ok(r) => r,
            Err(_) => Err(ImapError::Timeout {
                stage: "waiting for the answer to DONE (ending IDLE)".into(),
                limit,
            }),
        }
    }

    /// Reads one response during IDLE and says what it means; `* BYE` ends the session.
    async fn idle_response(&mut self, tag: &str, stage: &str) -> Result<IdleEvent, ImapError> {
        let response = self.read_response(stage).await?;
        match idle_event(response, tag).map_err(|error| ImapError::Protocol {
            stage: stage.to_string(),
            error,
        })? {
            IdleEvent::Bye(text) => Err(ImapError::Closed {
                stage: stage.to_string(),
                bye: Some(text),
            }),
            event => Ok(event),
        }
    }

    /// `LOGOUT`, then closes the connection. Failures are ignored: the session ends anyway.
    pub async fn logout(mut self) {
        if let Ok(tag) = self.send("LOGOUT", "LOGOUT").await {
            for _ in 0..16 {
                match self.read_response("LOGOUT").await {
                    Ok(Response::Tagged { tag: t, .. }) if t == tag => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        let _ = timeout(Duration::from_secs(2), self.io.get_mut().shutdown()).await;
    }

    // -----------------------------------------------------------------------------------------

    async fn start_tls(&mut self) -> Result<(), ImapError> {
        let host = self.host.clone();
        let tls_error = |reason: String| ImapError::Tls {
            host: host.clone(),
            reason,
        };
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| tls_error(e.to_string()))?
                .with_webpki_verifier(self.opts.roots.verifier.clone())
                .with_no_client_auth();
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.clone())
                .map_err(|_| tls_error(format!("{host:?} is not a valid TLS server name")))?,
        };
        // Take the TCP stream out (nothing is left in the buffer: checked by the caller for
        // STARTTLS, and nothing was read yet for imaps://).
        let old = std::mem::replace(&mut self.io, BufReader::new(Stream::Gone)).into_inner();
        let Stream::Plain(tcp) = old else {
            return Err(tls_error("TLS is already active".into()));
        };
        let connector = TlsConnector::from(Arc::new(config));
        let tls = match timeout(self.opts.timeout, connector.connect(name, tcp)).await {
            Err(_) => {
                return Err(ImapError::Timeout {
                    stage: "TLS handshake".into(),
                    limit: self.opts.timeout,
                });
            }
            Ok(Err(e)) => return Err(tls_error(transport::describe_tls(&e, &host))),
            Ok(Ok(s)) => s,
        };
        self.io = BufReader::new(Stream::Tls(Box::new(tls)));
        self.tls = true;
        Ok(())
    }

    /// Reads the greeting. RFC 3501 §7.1.4/§7.1.5: `* OK`, `* PREAUTH` or `* BYE`.
    async fn greeting(&mut self) -> Result<(), ImapError> {
        match self.read_response("greeting").await? {
            Response::Status(StatusText {
                status: Status::Ok | Status::Preauth,
                code,
                ..
            }) => {
                if let Some(Code::Capability(c)) = code {
                    self.capabilities = c;
                }
                Ok(())
            }
            Response::Status(StatusText {
                status: Status::Bye,
                text,
                ..
            }) => Err(ImapError::Closed {
                stage: "greeting".into(),
                bye: Some(text),
            }),
            other => Err(unexpected("greeting", &other)),
        }
    }

    async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let mut caps = None;
        let status = self
            .command("CAPABILITY", "CAPABILITY", |r| {
                if let Response::Capability(c) = r {
                    caps = Some(c);
                }
                Ok(())
            })
            .await?;
        self.expect_ok("CAPABILITY", status)?;
        self.capabilities = caps.unwrap_or_default();
        Ok(())
    }

    fn expect_ok(&self, command: &str, status: StatusText) -> Result<(), ImapError> {
        if status.status == Status::Ok {
            return Ok(());
        }
        Err(ImapError::Command {
            command: command.to_string(),
            status: status.status,
            text: status.text,
        })
    }

    /// Sends `text` with a fresh tag and reads responses until the tagged one, handing every
    /// untagged response to `each`. `stage` names the command in errors (it never holds
    /// credentials).
    async fn command(
        &mut self,
        text: &str,
        stage: &str,
        each: impl FnMut(Response) -> Result<(), ImapError>,
    ) -> Result<StatusText, ImapError> {
        let tag = self.send(text, stage).await?;
        self.finish(&tag, stage, each).await
    }

    async fn send(&mut self, text: &str, stage: &str) -> Result<String, ImapError> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.write_line(&format!("{tag} {text}"), stage).await?;
        Ok(tag)
    }

    async fn finish(
        &mut self,
        tag: &str,
        stage: &str,
        mut each: impl FnMut(Response) -> Result<(), ImapError>,
    ) -> Result<StatusText, ImapError> {
        for _ in 0..MAX_RESPONSES {
            match self.read_response(stage).await? {
                Response::Tagged { tag: t, status } if t == tag => return Ok(status),
                Response::Status(StatusText {
                    status: Status::Bye,
                    text,
                    ..
                }) => {
                    return Err(ImapError::Closed {
                        stage: stage.to_string(),
                        bye: Some(text),
                    });
                }
                r @ (Response::Tagged { .. } | Response::Continue(_)) => {
                    return Err(unexpected(stage, &r));
                }
                r => {
                    if let Response::Exists(n) = r {
                        self.exists_since_select = Some(n);
                    }
                    each(r)?
                }
            }
        }
        Err(too_large(
            stage,
            format!("more than {MAX_RESPONSES} responses to one command"),
        ))
    }

    async fn write_line(&mut self, line: &str, stage: &str) -> Result<(), ImapError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let limit = self.opts.timeout;
        let io = self.io.get_mut();
        match timeout(limit, async {
            io.write_all(&bytes).await?;
            io.flush().await
        })
        .await
        {
            Err(_) => Err(ImapError::Timeout {
                stage: format!("sending {stage}"),
                limit,
            }),
            Ok(Err(e)) => Err(io_error(stage, &e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads one response: its lines and the literals they announce.
    async fn read_response(&mut self, stage: &str) -> Result<Response, ImapError> {
        let mut raw = RawResponse::default();
        loop {
            let line = self.read_line(stage).await?;
            let announced = literal_announced(&line).map_err(|error| ImapError::Protocol {
                stage: stage.to_string(),
                error,
            })?;
            raw.lines.push(line);
            let Some(len) = announced else { break };
            if raw.literals.len() >= mailaudit_core::imap::MAX_LITERALS {
                return Err(too_large(stage, "too many literals in one response".into()));
            }
            if len > self.opts.max_literal {
                return Err(too_large(
                    stage,
                    format!(
                        "a literal of {len} bytes, over the limit of {} bytes",
                        self.opts.max_literal
                    ),
                ));
            }
            let literal = self.read_literal(len, stage).await?;
            raw.literals.push(literal);
        }
        parse_response(&raw).map_err(|error| ImapError::Protocol {
            stage: stage.to_string(),
            error,
        })
    }

    async fn read_line(&mut self, stage: &str) -> Result<Vec<u8>, ImapError> {
        let mut line = Vec::new();
        let limit = self.opts.timeout;
        let mut capped = (&mut self.io).take(MAX_LINE as u64 + 2);
        match timeout(limit, capped.read_until(b'\n', &mut line)).await {
            Err(_) => {
                return Err(ImapError::Timeout {
                    stage: format!("waiting for the answer to {stage}"),
                    limit,
                });
            }
            Ok(Err(e)) => return Err(io_error(stage, &e)),
            Ok(Ok(_)) => {}
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_LINE {
                return Err(too_large(
                    stage,
                    format!("a response line longer than {MAX_LINE} bytes"),
                ));
            }
            return Err(ImapError::Closed {
                stage: if line.is_empty() {
                    stage.to_string()
                } else {
                    format!("{stage}, in the middle of a line")
                },
                bye: None,
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    async fn read_literal(&mut self, len: u64, stage: &str) -> Result<Vec<u8>, ImapError> {
        let limit = self.opts.timeout;
        let mut out = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK);
            let before = out.len();
            let mut chunk = (&mut self.io).take(want);
            match timeout(limit, chunk.read_to_end(&mut out)).await {
                Err(_) => {
                    return Err(ImapError::Timeout {
                        stage: format!("{stage}, in the middle of a {len}-byte literal"),
                        limit,
                    });
                }
                Ok(Err(e)) => return Err(io_error(stage, &e)),
                Ok(Ok(_)) => {}
            }
            let got = (out.len() - before) as u64;
            if got < want {
                return Err(ImapError::Closed {
                    stage: format!(
                        "{stage}, after {} of the {len} bytes of a literal",
                        len - left + got
                    ),
                    bye: None,
                });
            }
            left -= got;
        }
        Ok(out)
    }
}

fn outcome(new_mail: Option<u32>) -> IdleOutcome {
    match new_mail {
        Some(exists) => IdleOutcome::NewMail { exists },
        None => IdleOutcome::Elapsed,
    }
}

/// A mailbox name as a command argument: modified UTF-7, quoted.
fn mailbox_arg(name: &str) -> String {
    // Modified UTF-7 is printable ASCII, which always quotes.
    quoted(&encode_mailbox(name)).unwrap_or_else(|| "\"INBOX\"".into())
}

/// `1:3,7,9:10` for sorted UIDs.
fn sequence_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.saturating_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

fn too_large(stage: &str, what: String) -> ImapError {
    ImapError::TooLarge {
        stage: stage.to_string(),
        what,
    }
}

fn io_error(stage: &str, e: &io::Error) -> ImapError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return ImapError::Closed {
            stage: stage.to_string(),
            bye: None,
        };
    }
    ImapError::Io {
        stage: stage.to_string(),
        reason: transport::describe_io(e),
    }
}

fn unexpected(stage: &str, r: &Response) -> ImapError {
    let what = match r {
        Response::Continue(t) => format!("an unexpected continuation request \"+ {t}\""),
        Response::Tagged { tag, status } => {
            format!(
                "an unexpected tagged response {tag} {} {}",
                status.status, status.text
            )
        }
        Response::Status(s) => format!("an unexpected * {} {}", s.status, s.text),
        other => format!("an unexpected response {other:?}"),
    };
    ImapError::Protocol {
        stage: stage.to_string(),
        error: ProtocolError::Malformed {
            why: what,
            excerpt: String::new(),
        },
    }
}

/// Connects to the addresses in turn ([`transport::connect_in_turn`]), each attempt bounded by
/// `limit` (and nothing else: the deadline lets every address have its attempt).
async fn connect_tcp(
    host: &str,
    addrs: &[IpAddr],
    port: u16,
    limit: Duration,
) -> Result<TcpStream, ImapError> {
    let all = limit.saturating_mul(
        u32::try_from(addrs.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1),
    );
    let deadline = tokio::time::Instant::now() + all;
    transport::connect_in_turn(addrs, port, limit, deadline)
        .await
        .map_err(|attempts| ImapError::Connect {
            host: host.to_string(),
            attempts,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets() {
        for (uids, want) in [
            (&[][..], ""),
            (&[5][..], "5"),
            (&[1, 2, 3, 7, 9, 10][..], "1:3,7,9:10"),
            (&[4_294_967_294, 4_294_967_295][..], "4294967294:4294967295"),
        ] {
            assert_eq!(sequence_set(uids), want);
        }
    }

    #[test]
    fn mailbox_arguments_are_quoted_utf7() {
        assert_eq!(mailbox_arg("INBOX"), "\"INBOX\"");
        assert_eq!(
            mailbox_arg("Rapports/é \"x\""),
            "\"Rapports/&AOk- \\\"x\\\"\""
        );
    }

    #[test]
    fn connection_errors_are_retryable() {
        assert!(
            ImapError::Closed {
                stage: "x".into(),
                bye: None
            }
            .is_connection()
        );
        assert!(
            !ImapError::Login {
                user: "u".into(),
                text: "NO".into()
            }
            .is_connection()
        );
    }
}
