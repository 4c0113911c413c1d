//! What every client of the I/O layer shares to reach a server: the host's addresses through
//! the run's [`DnsSource`] (never the system resolver; an IP literal as is), TCP to each address
//! in turn (each connect bounded, a dead first address leaving time for the next), the TLS
//! handshake with rustls' web PKI verifier against [`TlsRoots`] (web PKI plus `--ca-file`), one
//! deadline for the whole attempt, and one error type for all of it: [`TransportError`].
//!
//! The webhook POST and the alert mail submission ([`crate::notify`]), the OAuth 2.0 token
//! request ([`crate::oauth2`]) and the MTA-STS policy fetch ([`crate::https`]) open their
//! connections through an `Attempt`, and report a failure to reach the server, a timeout, a
//! broken connection or a malformed answer as a [`TransportError`], next to their own outcomes
//! (an HTTP status, an SMTP reply, a token refused). The IMAP client ([`crate::imap`]) reaches
//! its server the same way (the TLS handshake at once or after `STARTTLS`), its `ImapError`
//! wrapping a [`TransportError`].

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mailaudit_core::dns::{DnsError, DnsSource};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsConnector;

use crate::smtp::TlsRoots;

/// The default limit of one TCP connect attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The step of an attempt at which it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Resolving the host name.
    Dns,
    /// The TCP connection.
    Connect,
    /// The TLS handshake (certificate validation included), HTTPS or after STARTTLS.
    Handshake,
    /// Sending the HTTP request.
    Request,
    /// Reading the HTTP response.
    Response,
    /// The SMTP greeting (`220`).
    Greeting,
    /// `EHLO` (or `HELO`).
    Ehlo,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH PLAIN`.
    Auth,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// `DATA`.
    Data,
    /// The message content and its final reply.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Dns => "the DNS look-up",
            Stage::Connect => "the TCP connection",
            Stage::Handshake => "the TLS handshake",
            Stage::Request => "sending the request",
            Stage::Response => "reading the response",
            Stage::Greeting => "the SMTP greeting",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH PLAIN",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the message content",
        })
    }
}

/// Which part of a response broke a size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The status line and header fields.
    Headers,
    /// The body.
    Body,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Headers => "the response headers exceed",
            Part::Body => "the response body exceeds",
        })
    }
}

/// Why a server could not be reached or did not answer in the protocol: the one error of the
/// transport shared by the webhook, the alert mail, the OAuth 2.0 token request, the MTA-STS
/// fetch and the IMAP client. Every variant is worth another attempt later ([`TransportError::is_retryable`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A look-up of the host failed (not a missing record).
    #[error("{query}: {error}")]
    Dns {
        /// The look-up, e.g. `A hooks.example.com`.
        query: String,
        /// Why it failed.
        error: DnsError,
    },
    /// The host has neither A nor AAAA records.
    #[error("{host} has no A or AAAA record")]
    NoAddress {
        /// The host name.
        host: String,
    },
    /// No TCP connection to any address of the host.
    #[error("cannot connect to {host}: {}", .attempts.join("; "))]
    Connect {
        /// The host name.
        host: String,
        /// One line per address tried: `ADDR:PORT: why`.
        attempts: Vec<String>,
    },
    /// The TLS handshake failed: an invalid certificate, an alert, a reset.
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host name.
        host: String,
        /// Why: not valid for the host name, expired, unknown issuer, ...
        reason: String,
    },
    /// The attempt's time limit ran out.
    #[error("no complete answer within {}s: timed out during {stage}", .limit.as_secs_f64())]
    Timeout {
        /// The step under way.
        stage: Stage,
        /// The limit of the whole attempt.
        limit: Duration,
    },
    /// The connection failed after it was set up: reset, closed early.
    #[error("the connection failed during {stage}: {reason}")]
    Io {
        /// The step under way.
        stage: Stage,
        /// Why.
        reason: String,
    },
    /// The response is not well-formed HTTP/1.1.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    /// A part of the response is over its limit.
    #[error("{part} the limit of {limit} octets")]
    TooLarge {
        /// The part.
        part: Part,
        /// The limit broken.
        limit: usize,
    },
}

impl TransportError {
    /// Whether another attempt may succeed: always (a name may be fixed, a server restarted,
    /// a certificate renewed, a proxy repaired); what is permanent is the callers' to say.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// One attempt's limits and trust anchors, and its deadline, set when the attempt starts.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    /// The limit of the whole attempt (named in [`TransportError::Timeout`]).
    pub(crate) timeout: Duration,
    /// The limit of each TCP connect (also cut by the deadline).
    pub(crate) connect_timeout: Duration,
    /// The trust anchors of every TLS handshake.
    pub(crate) roots: TlsRoots,
    /// When the attempt ends.
    pub(crate) deadline: Instant,
}

impl Attempt {
    /// An attempt starting now.
    pub(crate) fn start(timeout: Duration, connect_timeout: Duration, roots: &TlsRoots) -> Self {
        Attempt {
            timeout,
            connect_timeout,
            roots: roots.clone(),
            deadline: Instant::now() + timeout,
        }
    }

    /// The timeout error of `stage`.
    pub(crate) fn timed_out(&self, stage: Stage) -> TransportError {
        TransportError::Timeout {
            stage,
            limit: self.timeout,
        }
    }

    /// The addresses of `host`: an IP literal as is, otherwise A then AAAA records from `dns`.
    pub(crate) async fn addresses<D: DnsSource>(
        &self,
        dns: &D,
        host: &str,
    ) -> Result<Vec<IpAddr>, TransportError> {
        match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip]),
            Err(_) => resolve(dns, host, self.deadline).await,
        }
    }

    /// TCP to the addresses in turn ([`connect_in_turn`]).
    pub(crate) async fn connect(
        &self,
        host: &str,
        addrs: &[IpAddr],
        port: u16,
    ) -> Result<TcpStream, TransportError> {
        match connect_in_turn(addrs, port, self.connect_timeout, self.deadline).await {
            Ok(stream) => Ok(stream),
            Err(_) if Instant::now() >= self.deadline => Err(self.timed_out(Stage::Connect)),
            Err(attempts) => Err(TransportError::Connect {
                host: host.to_string(),
                attempts,
            }),
        }
    }

    /// The addresses of `host`, then TCP to its `port`.
    pub(crate) async fn open<D: DnsSource>(
        &self,
        dns: &D,
        host: &str,
        port: u16,
    ) -> Result<TcpStream, TransportError> {
        let addrs = self.addresses(dns, host).await?;
        self.connect(host, &addrs, port).await
    }

    /// The TLS handshake with `host` (SNI for a name; an IP literal must be in the
    /// certificate) and full certificate validation against the roots, offering `alpn`.
    pub(crate) async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        host: &str,
        alpn: Option<&[u8]>,
    ) -> Result<tokio_rustls::client::TlsStream<S>, TransportError> {
        let tls_error = |reason: String| TransportError::Tls {
            host: host.to_string(),
            reason,
        };
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| tls_error(e.to_string()))?
                .with_webpki_verifier(self.roots.verifier.clone())
                .with_no_client_auth();
        if let Some(p) = alpn {
            config.alpn_protocols = vec![p.to_vec()];
        }
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_string())
                .map_err(|_| tls_error(format!("{host:?} is not a valid TLS server name")))?,
        };
        match timeout_at(
            self.deadline,
            TlsConnector::from(Arc::new(config)).connect(name, stream),
        )
        .await
        {
            Err(_) => Err(self.timed_out(Stage::Handshake)),
            Ok(Err(e)) => Err(tls_error(describe_tls(&e, host))),
            Ok(Ok(s)) => Ok(s),
        }
    }
}

/// The addresses of `host`: A records first, then AAAA. One failed look-up is tolerated when
/// the other yields addresses; otherwise the failure is reported, never taken for "no address".
pub(crate) async fn resolve<D: DnsSource>(
    dns: &D,
    host: &str,
    deadline: Instant,
) -> Result<Vec<IpAddr>, TransportError> {
    let Ok((a, aaaa)) =
        timeout_at(deadline, futures::future::join(dns.a(host), dns.aaaa(host))).await
    else {
        return Err(TransportError::Dns {
            query: format!("A {host}"),
            error: DnsError::Timeout,
        });
    };
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut failure = None;
    match a {
        Ok(v4) => addrs.extend(v4.into_iter().map(IpAddr::V4)),
        Err(error) => failure = Some((format!("A {host}"), error)),
    }
    match aaaa {
        Ok(v6) => addrs.extend(v6.into_iter().map(IpAddr::V6)),
        Err(error) => {
            failure.get_or_insert((format!("AAAA {host}"), error));
        }
    }
    match (addrs.is_empty(), failure) {
        (false, _) => Ok(addrs),
        (true, Some((query, error))) => Err(TransportError::Dns { query, error }),
        (true, None) => Err(TransportError::NoAddress {
            host: host.to_string(),
        }),
    }
}

/// TCP to `port` of each address in turn until one answers (Nagle off), each attempt bounded by
/// `per_attempt` and all of them by `deadline`: the stream, or why each attempt failed
/// (`ADDR: reason`; empty when the deadline passed before the first).
pub(crate) async fn connect_in_turn(
    addrs: &[IpAddr],
    port: u16,
    per_attempt: Duration,
    deadline: Instant,
) -> Result<TcpStream, Vec<String>> {
    let mut attempts = Vec::new();
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let limit = per_attempt.min(left);
        match timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => attempts.push(format!("{addr}: {}", describe_io(&e))),
            Err(_) => attempts.push(format!("{addr}: no answer within {}s", limit.as_secs_f64())),
        }
    }
    Err(attempts)
}

/// Why a handshake failed, in words: the certificate verdict when there is one.
pub(crate) fn describe_tls(err: &io::Error, host: &str) -> String {
    let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the handshake".to_string()
            }
            _ => describe_io(err),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::NotValidForName => {
                format!("the certificate is not valid for {host}")
            }
            CertificateError::NotValidForNameContext { presented, .. } => {
                if presented.is_empty() {
                    format!("the certificate is not valid for {host} (it names no host)")
                } else {
                    format!(
                        "the certificate is not valid for {host} (it is valid for {})",
                        presented.join(", ")
                    )
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the certificate has expired ({cert})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the certificate is not valid yet ({cert})")
            }
            CertificateError::UnknownIssuer => "the certificate does not chain to a trusted root \
                 (unknown issuer: self-signed, a private CA, or a missing intermediate)"
                .to_string(),
            CertificateError::Revoked => "the certificate is revoked".to_string(),
            other => format!("invalid certificate: {other}"),
        },
        rustls::Error::AlertReceived(alert) => format!("the server sent the TLS alert {alert:?}"),
        other => other.to_string(),
    }
}

/// An I/O error in words, without the OS error number when the kind says it all.
pub(crate) fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => err.to_string(),
    }
}

/// A stream on which a close without TLS close_notify reads as the end of the stream, as most
/// HTTPS servers close so: every framed body is still checked for completeness by the HTTP
/// client, and a body framed by the end of the connection ends there.
#[derive(Debug)]
pub(crate) struct CloseIsEof<S>(pub(crate) S);

impl<S: AsyncRead + Unpin> AsyncRead for CloseIsEof<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CloseIsEof<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
