//! The MTA-STS policy fetch (RFC 8461 §3.3): one HTTPS GET of
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, judged by the core.
//!
//! [`fetch_policy`] resolves `mta-sts.<domain>` through the run's [`DnsSource`] (never the system
//! resolver), connects over TCP to its addresses in turn (A records first, then AAAA), speaks TLS
//! with SNI `mta-sts.<domain>` and full web-PKI certificate validation (rustls), sends a plain
//! HTTP/1.1 request and parses the response by hand: status line, header fields (at most
//! [`MAX_HEADER`] octets), then a body framed by `Content-Length`, by the chunked transfer coding,
//! or by the end of the connection, capped at [`HttpsOptions::max_body`]. Every step is bounded by
//! one deadline for the whole fetch ([`HttpsOptions::timeout`]); each TCP connect attempt is also
//! bounded by [`HttpsOptions::connect_timeout`], so that a dead first address leaves time for the
//! next. Only status 200 is a policy; redirects are reported, never followed.
//!
//! [`check`] fetches and hands the body to [`mailaudit_core::mta_sts::check_policy`], which
//! decides MTA-STS-INVALID (parse error, an MX not covered). A failed fetch is MTA-STS-INVALID
//! with the precise reason ([`FetchError`]), except a failed DNS look-up of the policy host,
//! which is DNS-LOOKUP-FAILED (area transport): the verdict is withheld, as for any look-up.
//!
//! Trust anchors: the SMTP probe's [`TlsRoots`] (web PKI roots plus an optional `--ca-file`), but
//! unlike the probe, which records a bad certificate and goes on, this fetch uses rustls' own
//! web PKI verifier: a certificate that does not validate ends the fetch ([`FetchError::Tls`]).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailaudit_core::checks::{Area, CheckId};
use mailaudit_core::dns::{DnsError, DnsSource, normalize_name};
use mailaudit_core::finding::Finding;
use mailaudit_core::mta_sts::{StsPolicy, check_policy, policy_url};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsConnector;

use crate::NetError;
use crate::smtp::TlsRoots;

/// The path of the policy on the policy host (RFC 8461 §3.2, RFC 8615).
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";

/// The default body cap: 64 KiB, RFC 8461 §3.3's suggested maximum policy size.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The cap on the response head (status line and header fields), in octets.
pub const MAX_HEADER: usize = 16 * 1024;

/// The default time limit of a whole fetch: one minute, RFC 8461 §3.3's suggested timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default limit of one TCP connect attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest chunk-size line accepted in a chunked body (with its extensions).
const MAX_CHUNK_LINE: usize = 1024;

/// How many interim (1xx) responses are skipped before the final one.
pub(crate) const MAX_INTERIM: usize = 4;

/// How the policy is fetched.
#[derive(Clone, Debug)]
pub struct HttpsOptions {
    /// The HTTPS port of the policy host: 443; labs override it.
    pub port: u16,
    /// The limit of the whole fetch, DNS look-up to the last body octet.
    pub timeout: Duration,
    /// The limit of each TCP connect attempt (also cut by `timeout`).
    pub connect_timeout: Duration,
    /// The largest body accepted, in octets; a larger one is [`FetchError::TooLarge`].
    pub max_body: usize,
    /// The trust anchors the policy host's certificate must chain to.
    pub roots: TlsRoots,
}

impl HttpsOptions {
    /// Options with the defaults (port 443, [`DEFAULT_TIMEOUT`], [`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_MAX_BODY`]) and these trust anchors.
    pub fn new(roots: TlsRoots) -> Self {
        HttpsOptions {
            port: 443,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            roots,
        }
    }

    /// Options with the defaults, trusting the web PKI roots plus the certificates of the PEM
    /// file `ca_file` when given (`--ca-file`).
    pub fn with_ca_file(ca_file: Option<&Path>) -> Result<Self, NetError> {
        let roots = match ca_file {
            Some(path) => TlsRoots::with_ca_file(path)?,
            None => TlsRoots::webpki(),
        };
        Ok(HttpsOptions::new(roots))
    }
}

/// The step of the fetch at which it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FetchStage {
    /// Resolving `mta-sts.<domain>`.
    Dns,
    /// The TCP connection.
    Connect,
    /// The TLS handshake (certificate validation included).
    Handshake,
    /// Sending the HTTP request.
    Request,
    /// Reading the HTTP response.
    Response,
}

impl fmt::Display for FetchStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FetchStage::Dns => "the DNS look-up",
            FetchStage::Connect => "the TCP connection",
            FetchStage::Handshake => "the TLS handshake",
            FetchStage::Request => "sending the request",
            FetchStage::Response => "reading the response",
        })
    }
}

/// Which part of the response broke a size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The status line and header fields ([`MAX_HEADER`]).
    Headers,
    /// The body ([`HttpsOptions::max_body`]).
    Body,
    /// A chunk-size line of a chunked body.
    ChunkLine,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Headers => "the response headers",
            Part::Body => "the policy body",
            Part::ChunkLine => "a chunk-size line",
        })
    }
}

/// Why no policy was fetched. Each variant but [`FetchError::Dns`] means the domain has no
/// valid policy for senders (RFC 8461 §3.3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The policy host has neither A nor AAAA records.
    #[error("{host} has no A or AAAA record")]
    NoAddress {
        /// `mta-sts.<domain>`.
        host: String,
    },
    /// A look-up of the policy host failed (not a missing record: the verdict is withheld).
    #[error("{query}: {error}")]
    Dns {
        /// The look-up, e.g. `A mta-sts.example.com`.
        query: String,
        /// Why it failed.
        error: DnsError,
    },
    /// No TCP connection to any address of the policy host.
    #[error("cannot connect to {host}: {}", .attempts.join("; "))]
    Connect {
        /// `mta-sts.<domain>`.
        host: String,
        /// One line per address tried: `ADDR:PORT: why`.
        attempts: Vec<String>,
    },
    /// The TLS handshake failed: an invalid certificate (RFC 8461 §3.3), an alert, a reset.
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// `mta-sts.<domain>`.
        host: String,
        /// Why: not valid for the host name, expired, unknown issuer, ...
        reason: String,
    },
    /// A final status other than 200.
    #[error("{}", describe_status(*.status, .reason, .location.as_deref()))]
    Http {
        /// The status code.
        status: u16,
        /// The reason phrase, as sent.
        reason: String,
        /// The `Location` field of a redirect, which is not followed.
        location: Option<String>,
    },
    /// The body is not served as `text/plain` (RFC 8461 §3.2); `None` when no `Content-Type`.
    #[error("{}", describe_content_type(.0.as_deref()))]
    ContentType(Option<String>),
    /// A part of the response is over its limit.
    #[error("{part} exceed(s) the limit of {limit} octets")]
    TooLarge {
        /// The part.
        part: Part,
        /// The limit broken.
        limit: usize,
    },
    /// The whole-fetch time limit ran out.
    #[error("no complete answer within {}s: timed out during {stage}", .limit.as_secs_f64())]
    Timeout {
        /// The step under way.
        stage: FetchStage,
        /// The limit of the whole fetch.
        limit: Duration,
    },
    /// The connection failed after it was set up (reset, I/O error).
    #[error("the connection failed during {stage}: {reason}")]
    Io {
        /// The step under way.
        stage: FetchStage,
        /// Why.
        reason: String,
    },
    /// The response is not well-formed HTTP/1.1 (or the body is not UTF-8 text).
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
}

fn describe_status(status: u16, reason: &str, location: Option<&str>) -> String {
    let line = format!("HTTP status {status} {reason}")
        .trim_end()
        .to_string();
    if (300..400).contains(&status) {
        match location {
            Some(l) => format!(
                "{line}, a redirect to {l} that is not followed (RFC 8461 §3.3: only a 200 \
                 response is a policy)"
            ),
            None => format!("{line}, a redirect that is not followed (RFC 8461 §3.3)"),
        }
    } else {
        format!("{line} (RFC 8461 §3.3: only a 200 response is a policy)")
    }
}

fn describe_content_type(value: Option<&str>) -> String {
    match value {
        Some(v) => format!(
            "the policy is served as {v:?}, not text/plain (RFC 8461 §3.2: senders SHOULD \
             validate that the media type is \"text/plain\")"
        ),
        None => "the policy is served without a Content-Type, not as text/plain (RFC 8461 §3.2)"
            .to_string(),
    }
}

/// Fetches `domain`'s MTA-STS policy body.
///
/// RFC 8461 §3.3: "When fetching a policy, senders SHOULD validate that the media type is
/// "text/plain" [...] (§3.2). [...] the HTTPS endpoint MUST present an X.509 certificate that is
/// valid for the "mta-sts" DNS-ID [...] chain to a root CA that is trusted by the sending MTA,
/// and be non-expired. [...] Policies fetched via HTTPS are only valid if the HTTP response code
/// is 200 (OK). HTTP 3xx redirects MUST NOT be followed, and HTTP caching [...] MUST NOT be
/// used. [...] Senders MAY impose a timeout on the HTTPS GET and/or a limit on the maximum size
/// of the response body [...]. A suggested timeout is one minute, and a suggested maximum policy
/// size is 64 kilobytes".
///
/// The host is resolved through `dns` only. Every step is bounded by `opts.timeout` in all; a
/// deviation from the RFC (wrong media type, a redirect, an invalid certificate) is an error
/// naming it, since senders would not use such a policy.
pub async fn fetch_policy<D: DnsSource>(
    dns: &D,
    domain: &str,
    opts: &HttpsOptions,
) -> Result<String, FetchError> {
    let host = format!("mta-sts.{}", normalize_name(domain));
    let deadline = Instant::now() + opts.timeout;
    let addrs = resolve(dns, &host, deadline).await?;
    let tcp = connect(&host, &addrs, opts, deadline).await?;
    let mut tls = handshake(tcp, &host, opts, deadline).await?;
    let request = request(&host, opts.port);
    match timeout_at(deadline, async {
        tls.write_all(request.as_bytes()).await?;
        tls.flush().await
    })
    .await
    {
        Err(_) => {
            return Err(FetchError::Timeout {
                stage: FetchStage::Request,
                limit: opts.timeout,
            });
        }
        Ok(Err(e)) => {
            return Err(FetchError::Io {
                stage: FetchStage::Request,
                reason: describe_io(&e),
            });
        }
        Ok(Ok(())) => {}
    }
    read_response(tls, opts, deadline).await
}

/// Fetches and judges `domain`'s MTA-STS policy against its MX hosts: the core's
/// [`check_policy`] verdict, or one finding for a failed fetch ([`fetch_finding`]).
///
/// RFC 8461 §3.3: a policy that cannot be fetched over HTTPS with a valid certificate and status
/// 200 is not a valid policy; senders then skip MTA-STS for the domain (MTA-STS-INVALID).
pub async fn check<D: DnsSource>(
    dns: &D,
    domain: &str,
    mx_hosts: &[String],
    opts: &HttpsOptions,
) -> (Option<StsPolicy>, Vec<Finding>) {
    match fetch_policy(dns, domain, opts).await {
        Ok(body) => check_policy(domain, &body, mx_hosts),
        Err(err) => (None, vec![fetch_finding(domain, &err)]),
    }
}

/// The finding for a failed fetch: DNS-LOOKUP-FAILED (area transport) for a failed look-up of
/// the policy host, MTA-STS-INVALID with the reason and a computed fix otherwise.
pub fn fetch_finding(domain: &str, err: &FetchError) -> Finding {
    let domain = normalize_name(domain);
    let host = format!("mta-sts.{domain}");
    let url = policy_url(&domain);
    if let FetchError::Dns { query, error } = err {
        return Finding::lookup_failed(Area::Transport, query, error);
    }
    let detail = format!(
        "the MTA-STS policy at {url} cannot be fetched: {err}; senders treat {domain} as having \
         no MTA-STS policy"
    );
    let fix = match err {
        FetchError::NoAddress { .. } => format!(
            "Publish an A (or AAAA) record for {host} pointing to an HTTPS server that serves {url} \
             with a certificate valid for {host}, or remove the _mta-sts.{domain} TXT record if \
             MTA-STS is not wanted"
        ),
        FetchError::Connect { .. } | FetchError::Timeout { .. } | FetchError::Io { .. } => {
            format!(
                "Make {url} reachable from the Internet on port 443 and answer within a minute \
                 (RFC 8461 §3.3)"
            )
        }
        FetchError::Tls { .. } => format!(
            "Install on {host} a certificate valid for {host}, issued by a publicly trusted CA, \
             not expired, served with its full chain (RFC 8461 §3.3)"
        ),
        FetchError::Http { .. } => format!(
            "Serve the policy at {url} itself with status 200 (no redirect: RFC 8461 §3.3 forbids \
             following one)"
        ),
        FetchError::ContentType(_) => {
            format!("Serve {url} with the header `Content-Type: text/plain` (RFC 8461 §3.2)")
        }
        FetchError::TooLarge { .. } => format!(
            "Serve at {url} only the policy (version, mode, mx and max_age lines): a few hundred \
             octets, well under 64 KiB"
        ),
        FetchError::Malformed(_) | FetchError::Dns { .. } => format!(
            "Serve {url} with a well-formed HTTP/1.1 200 response whose body is the policy as \
             text/plain"
        ),
    };
    let finding = Finding::new(CheckId::MtaStsInvalid, detail).with_fix(fix);
    match err {
        FetchError::Http {
            status,
            reason,
            location,
        } => {
            let mut evidence = format!("HTTP/1.1 {status} {reason}").trim_end().to_string();
            if let Some(l) = location {
                evidence.push_str(&format!("\r\nLocation: {l}"));
            }
            finding.with_evidence(evidence)
        }
        FetchError::ContentType(Some(v)) => finding.with_evidence(format!("Content-Type: {v}")),
        _ => finding,
    }
}

/// The addresses of `host`: A records first, then AAAA. One failed look-up is tolerated when
/// the other yields addresses; otherwise the failure is reported, never taken for "no address".
pub(crate) async fn resolve<D: DnsSource>(
    dns: &D,
    host: &str,
    deadline: Instant,
) -> Result<Vec<IpAddr>, FetchError> {
    let Ok((a, aaaa)) =
        timeout_at(deadline, futures::future::join(dns.a(host), dns.aaaa(host))).await
    else {
        return Err(FetchError::Dns {
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
        (true, Some((query, error))) => Err(FetchError::Dns { query, error }),
        (true, None) => Err(FetchError::NoAddress {
            host: host.to_string(),
        }),
    }
}

/// Connects to the addresses in turn, each attempt bounded by `connect_timeout` and the deadline.
async fn connect(
    host: &str,
    addrs: &[IpAddr],
    opts: &HttpsOptions,
    deadline: Instant,
) -> Result<TcpStream, FetchError> {
    match connect_in_turn(addrs, opts.port, opts.connect_timeout, deadline).await {
        Ok(stream) => Ok(stream),
        Err(_) if Instant::now() >= deadline => Err(FetchError::Timeout {
            stage: FetchStage::Connect,
            limit: opts.timeout,
        }),
        Err(attempts) => Err(FetchError::Connect {
            host: host.to_string(),
            attempts,
        }),
    }
}

/// TCP to `port` of each address in turn until one answers (Nagle off), each attempt bounded by
/// `per_attempt` and all of them by `deadline`: the stream, or why each attempt failed
/// (`ADDR: reason`; empty when the deadline passed before the first). What the MTA-STS fetch,
/// the webhooks and the IMAP client share; each turns the failures into its own error.
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

/// The TLS handshake with SNI `host` and full certificate validation against `opts.roots`.
async fn handshake(
    tcp: TcpStream,
    host: &str,
    opts: &HttpsOptions,
    deadline: Instant,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, FetchError> {
    let tls_error = |reason: String| FetchError::Tls {
        host: host.to_string(),
        reason,
    };
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .with_webpki_verifier(opts.roots.verifier.clone())
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| tls_error(format!("{host:?} is not a valid TLS server name")))?;
    match timeout_at(
        deadline,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    {
        Err(_) => Err(FetchError::Timeout {
            stage: FetchStage::Handshake,
            limit: opts.timeout,
        }),
        Ok(Err(e)) => Err(tls_error(describe_tls(&e, host))),
        Ok(Ok(stream)) => Ok(stream),
    }
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

/// The request: `GET` of the well-known path, `Host` with the port when it is not 443.
fn request(host: &str, port: u16) -> String {
    let authority = if port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    format!(
        "GET {WELL_KNOWN_PATH} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: mailaudit/{}\r\n\
         Accept: text/plain\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Buffered reading against the fetch deadline.
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    deadline: Instant,
    limit: Duration,
}

impl<S: AsyncRead + Unpin> Conn<S> {
    /// Reads more octets into the buffer; `Ok(0)` at the end of the connection. A close without
    /// TLS close_notify counts as the end: most HTTPS servers close so, and every framed body is
    /// checked for completeness.
    async fn fill(&mut self) -> Result<usize, FetchError> {
        let mut chunk = [0u8; 8192];
        match timeout_at(self.deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Err(FetchError::Timeout {
                stage: FetchStage::Response,
                limit: self.limit,
            }),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Ok(Err(e)) => Err(FetchError::Io {
                stage: FetchStage::Response,
                reason: describe_io(&e),
            }),
        }
    }
}

/// Reads the response: skips interim 1xx responses, requires 200 and text/plain, reads the body
/// by its framing, within the caps.
async fn read_response<S: AsyncRead + Unpin>(
    stream: S,
    opts: &HttpsOptions,
    deadline: Instant,
) -> Result<String, FetchError> {
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        deadline,
        limit: opts.timeout,
    };
    let mut interim = 0;
    let head = loop {
        if let Some((head_len, body_start)) = find_head_end(&conn.buf) {
            if head_len > MAX_HEADER {
                return Err(FetchError::TooLarge {
                    part: Part::Headers,
                    limit: MAX_HEADER,
                });
            }
            let head = parse_head(&conn.buf[..head_len])?;
            conn.buf.drain(..body_start);
            if (100..200).contains(&head.status) && head.status != 101 {
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(FetchError::Malformed(format!(
                        "more than {MAX_INTERIM} interim 1xx responses"
                    )));
                }
                continue;
            }
            break head;
        }
        if conn.buf.len() > MAX_HEADER {
            return Err(FetchError::TooLarge {
                part: Part::Headers,
                limit: MAX_HEADER,
            });
        }
        if conn.fill().await? == 0 {
            return Err(FetchError::Malformed(
                if conn.buf.is_empty() && interim == 0 {
                    "the server closed the connection without a response".to_string()
                } else {
                    "the connection closed inside the response headers".to_string()
                },
            ));
        }
    };
    if head.status != 200 {
        return Err(FetchError::Http {
            status: head.status,
            reason: head.reason.clone(),
            location: head.header("location").map(str::to_string),
        });
    }
    check_content_type(head.header("content-type"))?;
    if let Some(coding) = head.header("content-encoding")
        && !coding.trim().eq_ignore_ascii_case("identity")
    {
        return Err(FetchError::Malformed(format!(
            "content coding {coding:?} was not asked for (Accept-Encoding: identity)"
        )));
    }
    let max = opts.max_body;
    let body = match framing(&head)? {
        Framing::Length(len) => {
            if len > max as u64 {
                return Err(FetchError::TooLarge {
                    part: Part::Body,
                    limit: max,
                });
            }
            let len = len as usize;
            while conn.buf.len() < len {
                if conn.fill().await? == 0 {
                    return Err(FetchError::Malformed(format!(
                        "the connection closed after {} of {len} body octets",
                        conn.buf.len()
                    )));
                }
            }
            conn.buf.truncate(len);
            conn.buf
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::default();
            let mut body = Vec::new();
            loop {
                let input = std::mem::take(&mut conn.buf);
                if decoder.feed(&input, &mut body, max)? {
                    break body;
                }
                if conn.fill().await? == 0 {
                    return Err(FetchError::Malformed(
                        "the connection closed before the last chunk".to_string(),
                    ));
                }
            }
        }
        Framing::Close => loop {
            if conn.buf.len() > max {
                return Err(FetchError::TooLarge {
                    part: Part::Body,
                    limit: max,
                });
            }
            if conn.fill().await? == 0 {
                break conn.buf;
            }
        },
    };
    String::from_utf8(body)
        .map_err(|e| FetchError::Malformed(format!("the body is not UTF-8 text ({e})")))
}

/// RFC 8461 §3.2: "senders SHOULD validate that the media type is "text/plain" to guard against
/// cases where web servers allow untrusted users to host non-text content (typically, HTML or
/// images) at a user-defined path." Parameters (`; charset=utf-8`) are allowed; the media type
/// is compared case-insensitively (RFC 9110 §8.3.1).
fn check_content_type(value: Option<&str>) -> Result<(), FetchError> {
    let Some(value) = value else {
        return Err(FetchError::ContentType(None));
    };
    let media = value.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("text/plain") {
        Ok(())
    } else {
        Err(FetchError::ContentType(Some(value.to_string())))
    }
}

/// A parsed HTTP/1.x response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// The minor version: `HTTP/1.<minor>`.
    pub(crate) minor: u8,
    /// The status code.
    pub(crate) status: u16,
    /// The reason phrase (may be empty).
    pub(crate) reason: String,
    /// The header fields in order, names as sent, values without surrounding whitespace.
    pub(crate) headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of the field `name` (case-insensitive).
    pub(crate) fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).next()
    }

    /// Every value of the field `name`, in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for ResponseHead {
    /// The head as sent on the wire, ending with the empty line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP/1.{} {:03} {}\r\n",
            self.minor, self.status, self.reason
        )?;
        for (name, value) in &self.headers {
            write!(f, "{name}: {value}\r\n")?;
        }
        f.write_str("\r\n")
    }
}

/// Where the head ends: `(length of the head without the empty line, start of the body)`.
/// Lines end with CRLF or a bare LF (RFC 9112 §2.2 lets a recipient accept LF).
pub(crate) fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[start..i];
            if line.is_empty() || line == b"\r" {
                return Some((start, i + 1));
            }
            start = i + 1;
        }
    }
    None
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a response head (status line and fields, without the empty line).
///
/// RFC 9112 §4: "status-line = HTTP-version SP status-code SP [ reason-phrase ]"; §5: "field-line
/// = field-name ":" OWS field-value OWS" with no whitespace allowed between the field name and
/// the colon; §5.2: "A user agent that receives an obs-fold in a response message [...] MUST
/// replace each received obs-fold with one or more SP octets prior to interpreting the field
/// value."
pub(crate) fn parse_head(bytes: &[u8]) -> Result<ResponseHead, FetchError> {
    let malformed = |what: String| Err(FetchError::Malformed(what));
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let shown = || String::from_utf8_lossy(status_line).into_owned();
    let Some(rest) = status_line.strip_prefix(b"HTTP/1.") else {
        return malformed(format!("the status line {:?} is not HTTP/1.x", shown()));
    };
    let (minor, rest) = match rest {
        [d, b' ', rest @ ..] if d.is_ascii_digit() => (d - b'0', rest),
        _ => return malformed(format!("the status line {:?} is not HTTP/1.x", shown())),
    };
    let (code, reason) = match rest {
        [a, b, c] => ([*a, *b, *c], &[][..]),
        [a, b, c, b' ', reason @ ..] => ([*a, *b, *c], reason),
        _ => return malformed(format!("the status line {:?} has no status code", shown())),
    };
    if !code.iter().all(u8::is_ascii_digit) {
        return malformed(format!("the status line {:?} has no status code", shown()));
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if reason.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return malformed(format!("control octets in the status line {:?}", shown()));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if let [b' ' | b'\t', folded @ ..] = line {
            let Some((_, value)) = headers.last_mut() else {
                return malformed("a folded line before any header field".to_string());
            };
            let more = String::from_utf8_lossy(folded);
            let more = more.trim_matches([' ', '\t']);
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return malformed(format!(
                "the header line {:?} has no colon",
                String::from_utf8_lossy(line)
            ));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return malformed(format!(
                "invalid header field name {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        if value
            .iter()
            .any(|&b| (b.is_ascii_control() && b != b'\t') || b == 0x7f)
        {
            return malformed(format!(
                "control octets in the header field {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value)
                .trim_matches([' ', '\t'])
                .to_string(),
        ));
    }
    Ok(ResponseHead {
        minor,
        status,
        reason: String::from_utf8_lossy(reason).into_owned(),
        headers,
    })
}

/// How the body's end is found (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length`.
    Length(u64),
    /// Neither: the body ends when the server closes the connection.
    Close,
}

/// RFC 9112 §6.3: "If a message is received with both a Transfer-Encoding and a Content-Length
/// header field, the Transfer-Encoding overrides the Content-Length. [...] If a message is
/// received without Transfer-Encoding and with an invalid Content-Length header field, then the
/// message framing is invalid [...]. Otherwise, this is a response message without a declared
/// message body length, so the message body length is determined by the number of octets
/// received prior to the server closing the connection." A transfer coding other than chunked
/// was not asked for and is refused.
pub(crate) fn framing(head: &ResponseHead) -> Result<Framing, FetchError> {
    let codings: Vec<String> = head
        .values("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    if !codings.is_empty() {
        return if codings.iter().all(|c| c == "chunked") && codings.len() == 1 {
            Ok(Framing::Chunked)
        } else {
            Err(FetchError::Malformed(format!(
                "transfer coding {:?} is not supported (only chunked)",
                codings.join(", ")
            )))
        };
    }
    let mut length: Option<u64> = None;
    for value in head.values("content-length").flat_map(|v| v.split(',')) {
        let value = value.trim();
        let parsed =
            (!value.is_empty() && value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten();
        match (parsed, length) {
            (None, _) => {
                return Err(FetchError::Malformed(format!(
                    "invalid Content-Length {value:?}"
                )));
            }
            (Some(n), Some(m)) if n != m => {
                return Err(FetchError::Malformed(format!(
                    "conflicting Content-Length values {m} and {n}"
                )));
            }
            (Some(n), _) => length = Some(n),
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

/// Where the chunked decoder is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Reading chunk data: this many octets are left.
    Data(u64),
    /// Reading the CRLF after chunk data.
    DataEnd,
    /// Reading trailer fields after the last chunk, until the empty line.
    Trailer,
    /// The body is complete.
    Done,
}

/// An incremental decoder of the chunked transfer coding.
///
/// RFC 9112 §7.1: "chunked-body = *chunk last-chunk trailer-section CRLF; chunk = chunk-size
/// [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG; last-chunk = 1*("0") [ chunk-ext ]
/// CRLF". Chunk extensions are ignored, as are trailer fields (§7.1.1, §7.1.2).
#[derive(Debug, Default)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    line: Vec<u8>,
    trailer_len: usize,
}

impl ChunkedDecoder {
    /// Consumes `input`, appending chunk data to `out` (at most `max` octets in all). Returns
    /// whether the body is complete; octets after its end are ignored.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<bool, FetchError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Data(left) => {
                    let n = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailer => {
                    let b = input[i];
                    i += 1;
                    if b != b'\n' {
                        self.line.push(b);
                        if self.state == ChunkState::Trailer {
                            self.trailer_len += 1;
                            if self.trailer_len > MAX_HEADER {
                                return Err(FetchError::TooLarge {
                                    part: Part::Headers,
                                    limit: MAX_HEADER,
                                });
                            }
                        } else if self.line.len() > MAX_CHUNK_LINE {
                            return Err(FetchError::TooLarge {
                                part: Part::ChunkLine,
                                limit: MAX_CHUNK_LINE,
                            });
                        }
                        continue;
                    }
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.state = match self.state {
                        ChunkState::Size => {
                            let size = chunk_size(&line)?;
                            if (out.len() as u64).saturating_add(size) > max as u64 {
                                return Err(FetchError::TooLarge {
                                    part: Part::Body,
                                    limit: max,
                                });
                            }
                            if size == 0 {
                                ChunkState::Trailer
                            } else {
                                ChunkState::Data(size)
                            }
                        }
                        ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
                        ChunkState::DataEnd => {
                            return Err(FetchError::Malformed(
                                "chunk data longer than its chunk size".to_string(),
                            ));
                        }
                        ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                        other => other,
                    };
                }
            }
        }
        Ok(self.state == ChunkState::Done)
    }
}

/// The size of a chunk-size line (`1*HEXDIG [ chunk-ext ]`, BWS tolerated before `;`).
fn chunk_size(line: &[u8]) -> Result<u64, FetchError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&[][..], |end| &digits[..=end]);
    let invalid = || {
        FetchError::Malformed(format!(
            "invalid chunk-size line {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid());
    }
    let significant = digits
        .iter()
        .position(|&b| b != b'0')
        .map_or(&[][..], |start| &digits[start..]);
    if significant.len() > 16 {
        return Err(invalid());
    }
    Ok(significant.iter().fold(0u64, |n, &d| {
        let v = (d as char).to_digit(16).unwrap_or(0);
        (n << 4) | u64::from(v)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            minor: 1,
            status,
            reason: "X".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn rfc9112_section_4_status_lines() {
        for (text, expected) in [
            ("HTTP/1.1 200 OK", Some((1, 200, "OK"))),
            ("HTTP/1.0 404 Not Found", Some((0, 404, "Not Found"))),
            ("HTTP/1.1 200 ", Some((1, 200, ""))),
            ("HTTP/1.1 200", Some((1, 200, ""))),
            (
                "HTTP/1.1 301 Moved\tPermanently",
                Some((1, 301, "Moved\tPermanently")),
            ),
            ("HTTP/2 200 OK", None),
            ("HTTP/1.1 20 OK", None),
            ("HTTP/1.1 2000 OK", None),
            ("HTTP/1.1 abc OK", None),
            ("HTTP/1.1  200 OK", None),
            ("http/1.1 200 OK", None),
            ("HTTP/1.1 200 O\u{1}K", None),
            ("", None),
            ("SSH-2.0-OpenSSH", None),
        ] {
            let parsed = parse_head(text.as_bytes());
            assert_eq!(
                parsed
                    .as_ref()
                    .ok()
                    .map(|h| (h.minor, h.status, h.reason.as_str())),
                expected,
                "{text:?}: {parsed:?}"
            );
            if expected.is_none() {
                assert!(matches!(parsed, Err(FetchError::Malformed(_))));
            }
        }
    }

    #[test]
    fn rfc9112_section_5_header_fields() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nX-Long: a\r\n  b\r\n\tc\r\nEmpty:\r\n",
        )
        .unwrap();
        assert_eq!(h.header("content-type"), Some("text/plain"));
        assert_eq!(h.header("x-long"), Some("a b c"));
        assert_eq!(h.header("empty"), Some(""));
        assert_eq!(h.header("missing"), None);
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Type : text/plain"[..],
            b"HTTP/1.1 200 OK\r\nno colon here",
            b"HTTP/1.1 200 OK\r\n continued first",
            b"HTTP/1.1 200 OK\r\n: empty name",
            b"HTTP/1.1 200 OK\r\nX: a\x00b",
            b"HTTP/1.1 200 OK\r\nX(y): 1",
        ] {
            assert!(
                matches!(parse_head(bad), Err(FetchError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn head_end_accepts_crlf_and_bare_lf() {
        for (buf, expected) in [
            (&b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"[..], Some((23, 25))),
            (b"HTTP/1.1 200 OK\nA: b\n\nbody", Some((21, 22))),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n", None),
            (b"", None),
            (b"\r\n", Some((0, 2))),
        ] {
            assert_eq!(find_head_end(buf), expected, "{buf:?}");
        }
    }

    #[test]
    fn rfc8461_section_3_2_media_type() {
        for (value, ok) in [
            (Some("text/plain"), true),
            (Some("text/plain; charset=utf-8"), true),
            (Some("TEXT/Plain ;charset=\"us-ascii\""), true),
            (Some("text/html"), false),
            (Some("text/plainx"), false),
            (Some("application/octet-stream"), false),
            (Some(""), false),
            (None, false),
        ] {
            let r = check_content_type(value);
            assert_eq!(r.is_ok(), ok, "{value:?}");
            if !ok {
                assert_eq!(r, Err(FetchError::ContentType(value.map(str::to_string))));
            }
        }
    }

    #[test]
    fn rfc9112_section_6_3_framing() {
        use Framing::*;
        for (headers, expected) in [
            (vec![], Ok(Close)),
            (vec![("Content-Length", "42")], Ok(Length(42))),
            (vec![("content-length", "42, 42")], Ok(Length(42))),
            (
                vec![("Content-Length", "42"), ("Content-Length", "42")],
                Ok(Length(42)),
            ),
            (vec![("Transfer-Encoding", "chunked")], Ok(Chunked)),
            (vec![("Transfer-Encoding", "Chunked")], Ok(Chunked)),
            (
                vec![("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                Ok(Chunked),
            ),
            (vec![("Content-Length", "4x")], Err(())),
            (vec![("Content-Length", "-1")], Err(())),
            (vec![("Content-Length", "")], Err(())),
            (vec![("Content-Length", "99999999999999999999")], Err(())),
            (vec![("Content-Length", "1, 2")], Err(())),
            (vec![("Transfer-Encoding", "gzip, chunked")], Err(())),
            (vec![("Transfer-Encoding", "chunked, chunked")], Err(())),
        ] {
            let h = head(200, &headers);
            assert_eq!(framing(&h).map_err(|_| ()), expected, "{headers:?}");
        }
    }

    fn decode(input: &[&[u8]], max: usize) -> Result<(bool, Vec<u8>), FetchError> {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let mut done = false;
        for piece in input {
            done = d.feed(piece, &mut out, max)?;
        }
        Ok((done, out))
    }

    #[test]
    fn rfc9112_section_7_1_chunked() {
        for (input, expected) in [
            (&b"5\r\nhello\r\n0\r\n\r\n"[..], Ok((true, &b"hello"[..]))),
            (
                b"5;ext=1\r\nhello\r\n6 ; x\r\n world\r\n000\r\nTrailer: x\r\n\r\nextra",
                Ok((true, b"hello world")),
            ),
            (b"A\nabcdefghij\n0\n\n", Ok((true, b"abcdefghij"))),
            (b"5\r\nhello\r\n", Ok((false, b"hello"))),
            (b"5\r\nhel", Ok((false, b"hel"))),
            (b"0\r\n", Ok((false, b""))),
            (b"z\r\n", Err("malformed")),
            (b"\r\n", Err("malformed")),
            (b"5\r\nhelloX\r\n", Err("malformed")),
            (b"10000000000000000\r\n", Err("malformed")),
            (b"00000000000000000001\r\nx\r\n0\r\n\r\n", Ok((true, b"x"))),
            (b"11\r\n", Err("too large")),
        ] {
            let got = decode(&[input], 16);
            let got = match &got {
                Ok((done, out)) => Ok((*done, out.as_slice())),
                Err(FetchError::Malformed(_)) => Err("malformed"),
                Err(FetchError::TooLarge { .. }) => Err("too large"),
                Err(e) => panic!("{e}"),
            };
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(input));
        }
        let long = [b'1'; MAX_CHUNK_LINE + 1];
        assert!(matches!(
            decode(&[&long], usize::MAX),
            Err(FetchError::TooLarge {
                part: Part::ChunkLine,
                ..
            })
        ));
    }

    /// A small deterministic generator: proptest is not a dev-dependency of this crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn bytes(&mut self, alphabet: &[u8], max_len: usize) -> Vec<u8> {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    #[test]
    fn chunked_round_trips_over_any_split() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let data = rng.bytes(b"ab\r\n0;x", 200);
            let mut wire = Vec::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(40) - 1);
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let cut = rng.below(wire.len());
            let (done, out) = decode(&[&wire[..cut], &wire[cut..]], 1000).unwrap();
            assert!(done);
            assert_eq!(out, data);
        }
    }

    #[test]
    fn parsers_never_panic() {
        let mut rng = Rng(42);
        let alphabet = b"HTP/1.0 2:\r\n\t ;aZ\x00\x7f\xff;chunked";
        for _ in 0..20_000 {
            let bytes = rng.bytes(alphabet, 80);
            let mut input = if rng.below(2) == 0 {
                b"HTTP/1.1 200 OK\r\n".to_vec()
            } else {
                Vec::new()
            };
            input.extend_from_slice(&bytes);
            let _ = find_head_end(&input);
            if let Ok(h) = parse_head(&input) {
                let _ = framing(&h);
            }
            let _ = decode(&[&bytes], 64);
            let _ = chunk_size(&bytes);
        }
    }

    #[test]
    fn head_round_trips_through_display() {
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let name = String::from_utf8(rng.bytes(b"abcXYZ-_!~", 8)).unwrap();
            let name = if name.is_empty() {
                "x".to_string()
            } else {
                name
            };
            let value = String::from_utf8(rng.bytes(b"ab c;=/\t", 12)).unwrap();
            let value = value.trim_matches([' ', '\t']).to_string();
            let reason = String::from_utf8(rng.bytes(b"ab C\t", 10)).unwrap();
            let h = ResponseHead {
                minor: rng.below(2) as u8,
                status: 100 + rng.below(500) as u16,
                reason,
                headers: vec![(name, value)],
            };
            let wire = h.to_string();
            let (len, body) = find_head_end(wire.as_bytes()).unwrap();
            assert_eq!(body, wire.len());
            assert_eq!(parse_head(&wire.as_bytes()[..len]), Ok(h));
        }
    }

    #[test]
    fn request_names_the_host_and_closes() {
        let r = request("mta-sts.contoso.com", 443);
        assert!(
            r.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.contoso.com\r\n")
        );
        assert!(r.contains("\r\nConnection: close\r\n"));
        assert!(r.contains(&format!(
            "\r\nUser-Agent: mailaudit/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(r.ends_with("\r\n\r\n"));
        assert!(
            request("mta-sts.contoso.com", 8443).contains("\r\nHost: mta-sts.contoso.com:8443\r\n")
        );
    }

    #[test]
    fn findings_for_fetch_failures() {
        let dns_fail = fetch_finding(
            "Contoso.com.",
            &FetchError::Dns {
                query: "A mta-sts.contoso.com".into(),
                error: DnsError::ServFail,
            },
        );
        assert_eq!(dns_fail.id, CheckId::DnsLookupFailed);
        assert_eq!(dns_fail.area, Area::Transport);
        assert!(dns_fail.detail.contains("A mta-sts.contoso.com"));
        for (err, needle) in [
            (
                FetchError::NoAddress {
                    host: "mta-sts.contoso.com".into(),
                },
                "has no A or AAAA record",
            ),
            (
                FetchError::Http {
                    status: 301,
                    reason: "Moved Permanently".into(),
                    location: Some("https://www.contoso.com/".into()),
                },
                "redirect to https://www.contoso.com/ that is not followed",
            ),
            (
                FetchError::Http {
                    status: 404,
                    reason: "Not Found".into(),
                    location: None,
                },
                "HTTP status 404 Not Found",
            ),
            (
                FetchError::ContentType(Some("text/html".into())),
                "not text/plain",
            ),
            (
                FetchError::Tls {
                    host: "mta-sts.contoso.com".into(),
                    reason: "the certificate has expired".into(),
                },
                "expired",
            ),
            (
                FetchError::Timeout {
                    stage: FetchStage::Handshake,
                    limit: Duration::from_secs(2),
                },
                "within 2s: timed out during the TLS handshake",
            ),
            (
                FetchError::TooLarge {
                    part: Part::Body,
                    limit: 65536,
                },
                "65536",
            ),
        ] {
            let f = fetch_finding("contoso.com", &err);
            assert_eq!(f.id, CheckId::MtaStsInvalid, "{err}");
            assert_eq!(f.area, Area::Transport);
            assert!(f.detail.contains(needle), "{}", f.detail);
            assert!(
                f.detail
                    .contains("https://mta-sts.contoso.com/.well-known/mta-sts.txt"),
                "{}",
                f.detail
            );
            assert!(!f.fix.is_empty());
        }
        let f = fetch_finding(
            "contoso.com",
            &FetchError::Http {
                status: 302,
                reason: "Found".into(),
                location: Some("/x".into()),
            },
        );
        assert_eq!(
            f.evidence.as_deref(),
            Some("HTTP/1.1 302 Found\r\nLocation: /x")
        );
    }

    #[test]
    fn missing_ca_file_is_an_error() {
        let err = HttpsOptions::with_ca_file(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(matches!(err, NetError::CaFile { .. }), "{err}");
        let opts = HttpsOptions::with_ca_file(None).unwrap();
        assert_eq!((opts.port, opts.max_body), (443, 65_536));
    }
}
