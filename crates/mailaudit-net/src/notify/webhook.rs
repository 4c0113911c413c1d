//! The webhook channel: the alert's JSON POSTed over HTTP or HTTPS by the HTTP/1.1 client over
//! hyper ([`crate::http`]), a redirect never followed.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName,
    HeaderValue, USER_AGENT,
};
use mailaudit_core::alerts::{clip, one_line};
use mailaudit_core::dns::DnsSource;
use serde_json::Value;
use tokio::time::Instant;

use super::{NotifyError, NotifyOptions};
use crate::http::{self, HttpUrl, redact_url};
use crate::transport::Attempt;

/// At most this many octets of an error response's body are read, for the error message.
const MAX_ERROR_BODY: usize = 8 * 1024;

/// At most this many characters of an error response's body are kept in [`NotifyError::Http`].
const ERROR_EXCERPT: usize = 300;

/// How long an error response's body is waited for, at most (within the attempt's deadline).
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

/// A webhook: the URL to POST the alert's JSON to, and extra request header fields (e.g.
/// `Authorization`).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `http://` or `https://` URL: `scheme://host[:port][/path][?query]`, ASCII (IDN host
    /// names in their `xn--` form, other characters percent-encoded); no user information.
    pub url: String,
    /// Extra header fields, sent in order. `Host`, `Content-Type`, `Content-Length`,
    /// `Transfer-Encoding` and `Connection` are set by the client and refused here.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for WebhookTarget {
    /// The URL without its path and query, the header names without their values: a webhook
    /// URL and an `Authorization` value are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| format!("{n}: <redacted>"))
            .collect();
        f.debug_struct("WebhookTarget")
            .field("url", &redact_url(&self.url))
            .field("headers", &headers)
            .finish()
    }
}

/// Header fields the client sets itself.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// The request: `POST`, the JSON body with its length, `Connection: close`, the extra fields.
///
/// RFC 9112 §9.6: "A client that does not support persistent connections MUST send the "close"
/// connection option in every request message." RFC 9110 §5.5: "Field values containing CR,
/// LF, or NUL characters are invalid and dangerous".
fn webhook_request(
    url: &HttpUrl,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, NotifyError> {
    let invalid = |why: String| NotifyError::InvalidTarget(why);
    let mut request = Request::post(url.target.as_str())
        .header(HOST, url.authority())
        .header(USER_AGENT, http::USER_AGENT)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, body.len())
        .header(ACCEPT, "*/*")
        .header(ACCEPT_ENCODING, "identity")
        .header(CONNECTION, "close")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| invalid(format!("the request cannot be built: {e}")))?;
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(invalid(format!("invalid header field name {name:?}")));
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r))
        {
            return Err(invalid(format!(
                "the header field {name} is set by mailaudit and cannot be given"
            )));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(invalid(format!(
                "the value of the header field {name} holds control characters (CR, LF, NUL...)"
            )));
        }
        let field = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("invalid header field name {name:?}")))?;
        let value = HeaderValue::from_bytes(value.trim_matches([' ', '\t']).as_bytes())
            .map_err(|_| invalid(format!("invalid value of the header field {name}")))?;
        request.headers_mut().append(field, value);
    }
    Ok(request)
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// POSTs `body` as JSON to the webhook and returns the 2xx status it answered.
///
/// RFC 9110 §15.3: "The 2xx (Successful) class of status code indicates that the client's
/// request was successfully received, understood, and accepted." §15.4: "The 3xx (Redirection)
/// class of status code indicates that further action needs to be taken by the user agent in
/// order to fulfill the request." A redirect is not followed (a POST to wherever a
/// compromised or misconfigured server points would hand it the alert): it is a permanent
/// [`NotifyError::Http`], as is every 4xx but 408 and 429; 5xx, 408, 429 and network failures
/// are retryable. Interim 1xx responses are skipped. The host is resolved through `dns`; an
/// `https` URL's certificate is verified against `opts.roots`. The whole attempt is bounded by
/// `opts.timeout`.
pub async fn post_webhook<D: DnsSource>(
    dns: &D,
    target: &WebhookTarget,
    body: &Value,
    opts: &NotifyOptions,
) -> Result<u16, NotifyError> {
    let url = HttpUrl::parse(&target.url).map_err(NotifyError::InvalidUrl)?;
    let json = serde_json::to_vec(body)
        .map_err(|e| NotifyError::InvalidTarget(format!("the body cannot be serialized: {e}")))?;
    let request = webhook_request(&url, &target.headers, json)?;
    let attempt = Attempt::start(opts.timeout, opts.connect_timeout, &opts.roots);
    let tcp = attempt.open(dns, &url.host, url.port).await?;
    let response = if url.tls {
        let tls = attempt.tls(tcp, &url.host, Some(b"http/1.1")).await?;
        http::send(tls, request, &attempt).await?
    } else {
        http::send(tcp, request, &attempt).await?
    };
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(status);
    }
    let reason = http::reason(&response);
    let location = if (300..400).contains(&status) {
        http::header(&response, "location")
    } else {
        None
    };
    let retry_after = http::header(&response, "retry-after").and_then(|v| retry_after(&v));
    let until = attempt.deadline.min(Instant::now() + ERROR_BODY_WAIT);
    let raw = http::excerpt(response.into_body(), MAX_ERROR_BODY, until).await;
    Err(NotifyError::Http {
        status,
        reason,
        location,
        retry_after,
        body: clip(
            one_line(&String::from_utf8_lossy(&raw)).trim(),
            ERROR_EXCERPT,
        ),
    })
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3); an HTTP-date is ignored.
fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_text(r: &Request<Full<Bytes>>) -> String {
        let mut text = format!("{} {}\r\n", r.method(), r.uri());
        for (name, value) in r.headers() {
            text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        text
    }

    #[test]
    fn request_carries_json_length_and_close() {
        let url = HttpUrl::parse("https://x.test:8443/hook?a=1").unwrap();
        let r = webhook_request(
            &url,
            &[("Authorization".into(), "Bearer t".into())],
            b"{\"text\":\"hi\"}".to_vec(),
        )
        .unwrap();
        let text = request_text(&r);
        assert!(
            text.starts_with("POST /hook?a=1\r\nhost: x.test:8443\r\n"),
            "{text}"
        );
        for needle in [
            "\r\ncontent-type: application/json\r\n",
            "\r\ncontent-length: 13\r\n",
            "\r\nconnection: close\r\n",
            "\r\nauthorization: Bearer t\r\n",
        ] {
            assert!(text.contains(needle), "{needle:?} in {text}");
        }
        assert_eq!(hyper::body::Body::size_hint(r.body()).exact(), Some(13));
        for (name, value) in [
            ("X-Evil", "a\r\nHost: other"),
            ("X-Nul", "a\0b"),
            ("Bad Name", "v"),
            ("", "v"),
            ("content-length", "1"),
            ("Host", "other"),
            ("Connection", "keep-alive"),
        ] {
            assert!(
                matches!(
                    webhook_request(&url, &[(name.into(), value.into())], b"{}".to_vec()),
                    Err(NotifyError::InvalidTarget(_))
                ),
                "{name:?}: {value:?}"
            );
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let w = WebhookTarget {
            url: "https://hooks.slack.com/services/T0/B0/SECRET".into(),
            headers: vec![("Authorization".into(), "Bearer TOKEN".into())],
        };
        let d = format!("{w:?}");
        assert!(d.contains("https://hooks.slack.com/<redacted>"), "{d}");
        assert!(!d.contains("SECRET") && !d.contains("TOKEN"), "{d}");
    }

    #[test]
    fn retry_after_is_delay_seconds() {
        for (value, expected) in [
            ("120", Some(120)),
            (" 5 ", Some(5)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
            ("-1", None),
            ("", None),
            ("9999999999", None),
        ] {
            assert_eq!(
                retry_after(value).map(|d| d.as_secs()),
                expected,
                "{value:?}"
            );
        }
        for s in ["é", "\u{0}\u{7f}", "1.5", &"🦀".repeat(100)] {
            assert_eq!(retry_after(s), None, "{s:?}");
        }
    }
}
