//! The session's life: [`Session::connect`] through [`crate::transport`] (the look-up, TCP, the
//! TLS handshake at once or after `STARTTLS`), the greeting and capabilities, the logins by
//! password or OAuth 2.0 token, and `LOGOUT`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use mailaudit_core::dns::DnsSource;
use mailaudit_core::imap::{
    Code, ImapUrl, OAuthMechanism, Response, Security, Status, StatusText, parse_oauth_challenge,
    quoted, sasl_plain,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{ImapError, ImapOptions, Session, unexpected};
use crate::transport::{Attempt, TransportError};

/// The TCP or TLS stream under a session.
pub(super) enum Stream {
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

impl Session {
    /// Connects to the server of `url` (resolving its host through `dns` unless it is an IP
    /// address), reads the greeting and secures the connection: TLS at once for `imaps://`,
    /// `STARTTLS` for `imap://` (see the [module docs](super)).
    ///
    /// RFC 3501 §6.2.1: "A \[TLS\] negotiation begins immediately after the CRLF at the end of the
    /// tagged OK response from the server. [...] The server remains in the non-authenticated
    /// state, even if client credentials are supplied during the \[TLS\] negotiation. [...] Once
    /// \[TLS\] has been started, the client MUST discard cached information about server
    /// capabilities and SHOULD re-issue the CAPABILITY command."
    pub async fn connect<D: DnsSource>(
        url: &ImapUrl,
        dns: &D,
        opts: &ImapOptions,
    ) -> Result<Session, ImapError> {
        // The look-up, then every address its own connect attempt of one timeout.
        let lookup = Attempt::start(opts.timeout, opts.timeout, &opts.roots);
        let addrs = lookup.addresses(dns, &url.host).await?;
        let tries = u32::try_from(addrs.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let tcp = Attempt::start(
            opts.timeout.saturating_mul(tries),
            opts.timeout,
            &opts.roots,
        )
        .connect(&url.host, &addrs, url.port)
        .await?;
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

    /// The TLS handshake ([`Attempt::tls`]) on the TCP stream, within one timeout.
    async fn start_tls(&mut self) -> Result<(), ImapError> {
        // Take the TCP stream out (nothing is left in the buffer: checked by the caller for
        // STARTTLS, and nothing was read yet for imaps://).
        let old = std::mem::replace(&mut self.io, BufReader::new(Stream::Gone)).into_inner();
        let Stream::Plain(tcp) = old else {
            return Err(TransportError::Tls {
                host: self.host.clone(),
                reason: "TLS is already active".into(),
            }
            .into());
        };
        let tls = Attempt::start(self.opts.timeout, self.opts.timeout, &self.opts.roots)
            .tls(tcp, &self.host, None)
            .await?;
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
}
