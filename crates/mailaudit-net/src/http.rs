//! The HTTP/1.1 client of the webhook POST, the OAuth 2.0 token request and the MTA-STS fetch:
//! hyper's client connection API ([`hyper::client::conn::http1`]) over a connection opened by
//! [`crate::transport`] (plain TCP or TLS), one request per connection (`Connection: close`),
//! within the attempt's deadline, with a cap on the response head ([`MAX_HEADER`]) and on the
//! body (each caller's). Interim 1xx responses are skipped; redirects are never followed: a 3xx
//! is the caller's final answer. URLs are parsed by the `url` crate ([`HttpUrl::parse`]).

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};

use crate::transport::{Attempt, CloseIsEof, Part, Stage, TransportError, describe_io};

/// The cap on a response head (status line and header fields), in octets.
pub const MAX_HEADER: usize = 16 * 1024;

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("mailaudit/", env!("CARGO_PKG_VERSION"));

/// A request for JSON from `url` on a connection closed after it: a `GET`, or with `form` an
/// `application/x-www-form-urlencoded` `POST` of it (the OAuth 2.0 token requests, the OpenID
/// Connect discovery document and key set).
pub(crate) fn json_request(
    url: &HttpUrl,
    form: Option<String>,
) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    use hyper::header::{ACCEPT, ACCEPT_ENCODING, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
    let builder = match &form {
        Some(body) => Request::post(url.target.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(CONTENT_LENGTH, body.len()),
        None => Request::get(url.target.as_str()),
    };
    builder
        .header(HOST, url.authority())
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .header(ACCEPT, "application/json")
        .header(ACCEPT_ENCODING, "identity")
        .header(CONNECTION, "close")
        .body(Full::new(form.map(Bytes::from).unwrap_or_default()))
}

/// Sends `request` to the `https` URL `url` within `attempt` (TCP to the host's addresses
/// through `dns`, TLS, one request): the final status and the body, read up to `max_body`.
pub(crate) async fn send_https<D: mailaudit_core::dns::DnsSource>(
    dns: &D,
    url: &HttpUrl,
    request: Request<Full<Bytes>>,
    attempt: &Attempt,
    max_body: usize,
) -> Result<(u16, Vec<u8>), TransportError> {
    let tcp = attempt.open(dns, &url.host, url.port).await?;
    let tls = attempt.tls(tcp, &url.host, Some(b"http/1.1")).await?;
    let response = send(tls, request, attempt).await?;
    let status = response.status().as_u16();
    let body = read_body(response.into_body(), max_body, attempt).await?;
    Ok((status, body))
}

/// A parsed `http` or `https` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// `https`.
    pub(crate) tls: bool,
    /// The host, lower-case, an IPv6 literal without its brackets.
    pub(crate) host: String,
    /// The port (80 or 443 unless given).
    pub(crate) port: u16,
    /// The origin-form request target: path and query, `/` when empty.
    pub(crate) target: String,
}

impl HttpUrl {
    /// Parses an `http` or `https` URL; the error names what is wrong, never the URL's path,
    /// query or user information ([`redact_url`]).
    ///
    /// RFC 9110 §4.2.1: "http-URI = "http" "://" authority path-abempty [ "?" query ]"; §4.2.2:
    /// "https-URI = "https" "://" authority path-abempty [ "?" query ]"; §4.2.4: "A sender MUST
    /// NOT generate the userinfo subcomponent (and its "@" delimiter) when an "http" or "https"
    /// URI reference is generated within a message as a target URI or field value." The
    /// fragment is not sent (RFC 9110 §7.1). Only printable ASCII is taken (IDN host names in
    /// their `xn--` form, other characters percent-encoded), so the URL sent is the one given.
    pub(crate) fn parse(url: &str) -> Result<HttpUrl, String> {
        let bad = |why: &str| Err(format!("{} ({why})", redact_url(url)));
        if url.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            return bad("only printable ASCII without spaces is allowed; percent-encode the rest");
        }
        // The authority as written: the `url` crate would take `https:///x` for the host `x`
        // and `https://user@host` apart silently.
        let Some((_, rest)) = url.split_once("://") else {
            return bad("expected http:// or https://");
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if authority.contains('@') {
            return bad("user information in the URL is not allowed; use an Authorization header");
        }
        if authority.is_empty() {
            return bad("no host");
        }
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(url::ParseError::InvalidPort) => return bad("invalid port"),
            Err(url::ParseError::InvalidIpv6Address) => return bad("invalid IPv6 literal"),
            Err(url::ParseError::EmptyHost) => return bad("no host"),
            Err(e) => return bad(&e.to_string()),
        };
        let tls = match parsed.scheme() {
            "https" => true,
            "http" => false,
            _ => return bad("expected http:// or https://"),
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => {
                let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
                if d.is_empty()
                    || d.bytes().any(|b| {
                        !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
                    })
                    || mailaudit_core::dns::check_name(&d).is_err()
                {
                    return bad("invalid host name");
                }
                d
            }
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return bad("no host"),
        };
        let port = match parsed.port_or_known_default() {
            Some(0) | None => return bad("invalid port"),
            Some(p) => p,
        };
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        Ok(HttpUrl {
            tls,
            host,
            port,
            target,
        })
    }

    /// The `Host` field value: the host (IPv6 in brackets), with the port when not the default.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `scheme://authority/<redacted>`: what may be shown of a URL whose path or query may be a
/// credential (a Slack or Teams webhook URL is one).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if end == rest.len() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/<redacted>")
    }
}

/// Sends `request` on `stream` and returns the final response head with its body still to be
/// read ([`read_body`], [`excerpt`]), within the attempt's deadline. The connection is driven
/// by a task of its own, which ends with the connection or at the deadline.
pub(crate) async fn send<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    attempt: &Attempt,
) -> Result<Response<Incoming>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .title_case_headers(true)
            .max_buf_size(MAX_HEADER)
            .handshake::<_, Full<Bytes>>(TokioIo::new(CloseIsEof(stream)))
            .await
            .map_err(|e| error(&e, Stage::Request, false))?;
        tokio::spawn(timeout_at(attempt.deadline, conn));
        sender
            .send_request(request)
            .await
            .map_err(|e| error(&e, Stage::Response, false))
    };
    match timeout_at(attempt.deadline, exchange).await {
        Err(_) => Err(attempt.timed_out(Stage::Response)),
        Ok(result) => result,
    }
}

/// The whole body, at most `max` octets (a larger one is [`TransportError::TooLarge`], a
/// declared `Content-Length` over the cap refused before reading), within the deadline.
pub(crate) async fn read_body(
    body: Incoming,
    max: usize,
    attempt: &Attempt,
) -> Result<Vec<u8>, TransportError> {
    let too_large = TransportError::TooLarge {
        part: Part::Body,
        limit: max,
    };
    if body.size_hint().lower() > max as u64 {
        return Err(too_large);
    }
    match timeout_at(attempt.deadline, Limited::new(body, max).collect()).await {
        Err(_) => Err(attempt.timed_out(Stage::Response)),
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Ok(Err(e)) => Err(match e.downcast_ref::<hyper::Error>() {
            Some(e) => error(e, Stage::Response, true),
            None => TransportError::Malformed(e.to_string()),
        }),
    }
}

/// The start of a body, best effort: what arrives by `until`, at most about `max` octets.
pub(crate) async fn excerpt(mut body: Incoming, max: usize, until: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match timeout_at(until, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    out.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    out.truncate(max);
    out
}

/// The reason phrase as sent, or the status's canonical one.
pub(crate) fn reason<B>(response: &Response<B>) -> String {
    match response.extensions().get::<hyper::ext::ReasonPhrase>() {
        Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
        None => response
            .status()
            .canonical_reason()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The first value of the field `name`, as text.
pub(crate) fn header<B>(response: &Response<B>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

/// A hyper error as a transport error: a head over [`MAX_HEADER`], a malformed response, a
/// connection closed before the response (or, `in_body`, before the end of the body), an I/O
/// failure.
fn error(e: &hyper::Error, stage: Stage, in_body: bool) -> TransportError {
    if e.is_parse_too_large() {
        return TransportError::TooLarge {
            part: Part::Headers,
            limit: MAX_HEADER,
        };
    }
    if e.is_parse() || e.is_parse_status() {
        return TransportError::Malformed(e.to_string());
    }
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    let closed = io.is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
    if closed || e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return if in_body {
            TransportError::Malformed("the connection closed before the end of the body".into())
        } else {
            TransportError::Io {
                stage,
                reason: "the server closed the connection without a response".into(),
            }
        };
    }
    if let Some(io) = io {
        return TransportError::Io {
            stage,
            reason: describe_io(io),
        };
    }
    TransportError::Io {
        stage,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_section_4_2_urls() {
        for (url, expected) in [
            (
                "https://hooks.slack.com/services/T0/B0/XYZ",
                Some((true, "hooks.slack.com", 443, "/services/T0/B0/XYZ")),
            ),
            (
                "HTTP://Example.COM:8080",
                Some((false, "example.com", 8080, "/")),
            ),
            (
                "http://127.0.0.1:9/a?b=c#frag",
                Some((false, "127.0.0.1", 9, "/a?b=c")),
            ),
            ("https://[::1]:8443/x", Some((true, "::1", 8443, "/x"))),
            ("https://x.test?q=1", Some((true, "x.test", 443, "/?q=1"))),
            ("https://x.test.:443/", Some((true, "x.test", 443, "/"))),
            ("ftp://x.test/", None),
            ("https://user:pw@x.test/", None),
            ("https://x.test:0/", None),
            ("https://x.test:99999/", None),
            ("https://x.test:+1/", None),
            ("https:///path", None),
            ("https://x test/", None),
            ("https://x.test/é", None),
            ("https://[::1/", None),
            ("https://[zz]/", None),
            ("https://a..b/", None),
            ("x.test/hook", None),
            ("", None),
        ] {
            let got = HttpUrl::parse(url).ok();
            let got = got
                .as_ref()
                .map(|u| (u.tls, u.host.as_str(), u.port, u.target.as_str()));
            assert_eq!(got, expected, "{url}");
        }
        let err = HttpUrl::parse("https://user:secret@x.test/hook/SECRET").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = HttpUrl::parse("https://x.test:0/hook/SECRET").unwrap_err();
        assert_eq!(err, "https://x.test:0/<redacted> (invalid port)");
    }

    #[test]
    fn authority_has_the_port_only_when_not_default() {
        for (url, host) in [
            ("https://x.test/", "x.test"),
            ("https://x.test:8443/", "x.test:8443"),
            ("http://x.test:80/", "x.test"),
            ("http://x.test:443/", "x.test:443"),
            ("http://[::1]:81/", "[::1]:81"),
        ] {
            assert_eq!(HttpUrl::parse(url).unwrap().authority(), host, "{url}");
        }
    }

    #[test]
    fn redaction_keeps_scheme_and_host_only() {
        assert_eq!(
            redact_url("https://u:p@hooks.test/a/SECRET?x"),
            "https://hooks.test/<redacted>"
        );
        assert_eq!(redact_url("https://hooks.test"), "https://hooks.test");
        assert_eq!(redact_url("garbage"), "<redacted>");
        for s in ["", "é", "\u{0}\u{7f}", "a\u{200b}b", &"🦀".repeat(100)] {
            let _ = redact_url(s);
            let _ = HttpUrl::parse(s);
        }
    }
}
