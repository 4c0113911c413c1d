//! The MTA-STS policy fetch (RFC 8461 §3.3): one HTTPS GET of
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, judged by the core.
//!
//! [`fetch_policy`] resolves `mta-sts.<domain>` through the run's [`DnsSource`] (never the system
//! resolver), connects over TCP to its addresses in turn (A records first, then AAAA), speaks TLS
//! with SNI `mta-sts.<domain>` and full web-PKI certificate validation (rustls), all through
//! [`crate::transport`], and sends the request with the HTTP/1.1 client of `crate::http`
//! (hyper): a response head of at most [`MAX_HEADER`] octets, then a body framed by
//! `Content-Length`, by the chunked transfer coding, or by the end of the connection, capped at
//! [`HttpsOptions::max_body`]. Every step is bounded by one deadline for the whole fetch
//! ([`HttpsOptions::timeout`]); each TCP connect attempt is also bounded by
//! [`HttpsOptions::connect_timeout`], so that a dead first address leaves time for the next.
//! Only status 200 is a policy; redirects are reported, never followed.
//!
//! [`check`] fetches and hands the body to [`mailaudit_core::mta_sts::check_policy`], which
//! decides MTA-STS-INVALID (parse error, an MX not covered). A failed fetch is MTA-STS-INVALID
//! with the precise reason ([`FetchError`]), except a failed DNS look-up of the policy host,
//! which is DNS-LOOKUP-FAILED (area transport): the verdict is withheld, as for any look-up.
//!
//! Trust anchors: the SMTP probe's [`TlsRoots`] (web PKI roots plus an optional `--ca-file`), but
//! unlike the probe, which records a bad certificate and goes on, this fetch uses rustls' own
//! web PKI verifier: a certificate that does not validate ends the fetch
//! ([`TransportError::Tls`]).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{ACCEPT, ACCEPT_ENCODING, CONNECTION, HOST, USER_AGENT};
use mailaudit_core::checks::{Area, CheckId};
use mailaudit_core::dns::{DnsSource, normalize_name};
use mailaudit_core::finding::Finding;
use mailaudit_core::mta_sts::{StsPolicy, check_policy, policy_url};

use crate::NetError;
use crate::http;
pub use crate::http::MAX_HEADER;
use crate::smtp::TlsRoots;
use crate::transport::Attempt;
pub use crate::transport::{DEFAULT_CONNECT_TIMEOUT, Part, Stage, TransportError};

/// The path of the policy on the policy host (RFC 8461 §3.2, RFC 8615).
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";

/// The default body cap: 64 KiB, RFC 8461 §3.3's suggested maximum policy size.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The default time limit of a whole fetch: one minute, RFC 8461 §3.3's suggested timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How the policy is fetched.
#[derive(Clone, Debug)]
pub struct HttpsOptions {
    /// The HTTPS port of the policy host: 443; labs override it.
    pub port: u16,
    /// The limit of the whole fetch, DNS look-up to the last body octet.
    pub timeout: Duration,
    /// The limit of each TCP connect attempt (also cut by `timeout`).
    pub connect_timeout: Duration,
    /// The largest body accepted, in octets; a larger one is [`TransportError::TooLarge`].
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

/// Why no policy was fetched. Each variant but a failed DNS look-up
/// ([`TransportError::Dns`]) means the domain has no valid policy for senders (RFC 8461 §3.3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The policy host could not be reached, or did not answer in HTTP/1.1 within the limits:
    /// no address, a failed look-up, no TCP connection, an invalid certificate (RFC 8461 §3.3),
    /// a timeout, a malformed or oversized response.
    #[error(transparent)]
    Transport(#[from] TransportError),
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
    let attempt = Attempt::start(opts.timeout, opts.connect_timeout, &opts.roots);
    let tcp = attempt.open(dns, &host, opts.port).await?;
    let tls = attempt.tls(tcp, &host, Some(b"http/1.1")).await?;
    let response = http::send(tls, request(&host, opts.port), &attempt).await?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(FetchError::Http {
            status,
            reason: http::reason(&response),
            location: http::header(&response, "location"),
        });
    }
    check_content_type(http::header(&response, "content-type").as_deref())?;
    if let Some(coding) = http::header(&response, "content-encoding")
        && !coding.eq_ignore_ascii_case("identity")
    {
        return Err(TransportError::Malformed(format!(
            "content coding {coding:?} was not asked for (Accept-Encoding: identity)"
        ))
        .into());
    }
    let body = http::read_body(response.into_body(), opts.max_body, &attempt).await?;
    String::from_utf8(body)
        .map_err(|e| TransportError::Malformed(format!("the body is not UTF-8 text ({e})")).into())
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
    if let FetchError::Transport(TransportError::Dns { query, error }) = err {
        return Finding::lookup_failed(Area::Transport, query, error);
    }
    let detail = format!(
        "the MTA-STS policy at {url} cannot be fetched: {err}; senders treat {domain} as having \
         no MTA-STS policy"
    );
    let fix = match err {
        FetchError::Transport(TransportError::NoAddress { .. }) => format!(
            "Publish an A (or AAAA) record for {host} pointing to an HTTPS server that serves {url} \
             with a certificate valid for {host}, or remove the _mta-sts.{domain} TXT record if \
             MTA-STS is not wanted"
        ),
        FetchError::Transport(TransportError::Tls { .. }) => format!(
            "Install on {host} a certificate valid for {host}, issued by a publicly trusted CA, \
             not expired, served with its full chain (RFC 8461 §3.3)"
        ),
        FetchError::Transport(TransportError::TooLarge { .. }) => format!(
            "Serve at {url} only the policy (version, mode, mx and max_age lines): a few hundred \
             octets, well under 64 KiB"
        ),
        FetchError::Transport(TransportError::Malformed(_) | TransportError::Dns { .. }) => {
            format!(
                "Serve {url} with a well-formed HTTP/1.1 200 response whose body is the policy \
                 as text/plain"
            )
        }
        FetchError::Transport(_) => format!(
            "Make {url} reachable from the Internet on port 443 and answer within a minute \
             (RFC 8461 §3.3)"
        ),
        FetchError::Http { .. } => format!(
            "Serve the policy at {url} itself with status 200 (no redirect: RFC 8461 §3.3 forbids \
             following one)"
        ),
        FetchError::ContentType(_) => {
            format!("Serve {url} with the header `Content-Type: text/plain` (RFC 8461 §3.2)")
        }
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

/// The request: `GET` of the well-known path, `Host` with the port when it is not 443.
fn request(host: &str, port: u16) -> Request<Full<Bytes>> {
    let authority = if port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let built = Request::get(WELL_KNOWN_PATH)
        .header(HOST, authority)
        .header(USER_AGENT, http::USER_AGENT)
        .header(ACCEPT, "text/plain")
        .header(ACCEPT_ENCODING, "identity")
        .header(CONNECTION, "close")
        .body(Full::new(Bytes::new()));
    // The host was checked as a DNS name; the other values are constants.
    built.unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
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

#[cfg(test)]
mod tests {
    use super::*;
    use mailaudit_core::dns::DnsError;

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
    fn request_names_the_host_and_closes() {
        let r = request("mta-sts.contoso.com", 443);
        assert_eq!(r.method(), hyper::Method::GET);
        assert_eq!(r.uri(), WELL_KNOWN_PATH);
        let h = |name| r.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(h(HOST), Some("mta-sts.contoso.com"));
        assert_eq!(h(CONNECTION), Some("close"));
        assert_eq!(
            h(USER_AGENT),
            Some(concat!("mailaudit/", env!("CARGO_PKG_VERSION")))
        );
        let r = request("mta-sts.contoso.com", 8443);
        assert_eq!(
            r.headers().get(HOST).and_then(|v| v.to_str().ok()),
            Some("mta-sts.contoso.com:8443")
        );
    }

    #[test]
    fn findings_for_fetch_failures() {
        let dns_fail = fetch_finding(
            "Contoso.com.",
            &FetchError::Transport(TransportError::Dns {
                query: "A mta-sts.contoso.com".into(),
                error: DnsError::ServFail,
            }),
        );
        assert_eq!(dns_fail.id, CheckId::DnsLookupFailed);
        assert_eq!(dns_fail.area, Area::Transport);
        assert!(dns_fail.detail.contains("A mta-sts.contoso.com"));
        for (err, needle) in [
            (
                FetchError::Transport(TransportError::NoAddress {
                    host: "mta-sts.contoso.com".into(),
                }),
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
                FetchError::Transport(TransportError::Tls {
                    host: "mta-sts.contoso.com".into(),
                    reason: "the certificate has expired".into(),
                }),
                "expired",
            ),
            (
                FetchError::Transport(TransportError::Timeout {
                    stage: Stage::Handshake,
                    limit: Duration::from_secs(2),
                }),
                "within 2s: timed out during the TLS handshake",
            ),
            (
                FetchError::Transport(TransportError::TooLarge {
                    part: Part::Body,
                    limit: 65536,
                }),
                "the response body exceeds the limit of 65536 octets",
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
