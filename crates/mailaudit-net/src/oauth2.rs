//! OAuth 2.0 access tokens for IMAP (`reports fetch` against Exchange Online): the client
//! credentials grant (RFC 6749 §4.4) against a token endpoint, by default Microsoft's
//! (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`, scope
//! `https://outlook.office365.com/.default`), and a [`TokenProvider`] that hands a session a
//! token, fetches a new one before the current one expires, and can be told a token was refused.
//!
//! The request is one HTTPS `POST` through [`crate::transport`] (DNS through the run's
//! [`DnsSource`], each TCP connect bounded, certificates verified against [`TlsRoots`], web PKI
//! plus `--ca-file`) and the HTTP/1.1 client over hyper that the webhooks use, one deadline for
//! the whole exchange ([`TokenOptions::timeout`]) and a cap on the response body
//! ([`TokenOptions::max_body`]). Only `https://` endpoints are used: the client secret never
//! crosses a network in clear.
//!
//! Secrets stay out of logs: [`ClientCredentials`] and [`AccessToken`] hide the secret and the
//! token from `Debug`; errors name the endpoint and quote the server's `error` and
//! `error_description`, with any occurrence of the client secret in them replaced.

use std::fmt;
use std::time::Duration;

use mailaudit_core::dns::DnsSource;
use mailaudit_core::imap::check_bearer_token;
use serde_json::Value;
use tokio::time::Instant;

use crate::http::{self, HttpUrl};
use crate::smtp::TlsRoots;
use crate::transport::{self, Attempt, TransportError};

/// Exchange Online's scope for app-only IMAP, POP and SMTP access.
///
/// Microsoft, "Authenticate an IMAP, POP or SMTP connection using OAuth" (client credentials
/// grant flow): "use the scope `https://outlook.office365.com/.default`" in the token request.
pub const MICROSOFT_IMAP_SCOPE: &str = "https://outlook.office365.com/.default";

/// The default limit of one whole token request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default largest token response body: 64 KiB (a Microsoft token response is about 2 KiB).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// At most this many characters of a server's `error_description` are kept.
const MAX_DESCRIPTION: usize = 600;

/// How a token is requested.
#[derive(Clone, Debug)]
pub struct TokenOptions {
    /// The limit of the whole request: DNS look-up to the last body octet.
    pub timeout: Duration,
    /// The limit of each TCP connect attempt (also cut by `timeout`).
    pub connect_timeout: Duration,
    /// The trust anchors the token endpoint's certificate must chain to.
    pub roots: TlsRoots,
    /// The largest response body accepted, in octets.
    pub max_body: usize,
}

impl TokenOptions {
    /// The defaults ([`DEFAULT_TIMEOUT`], a 10 s connect limit, [`DEFAULT_MAX_BODY`]) with these
    /// trust anchors.
    pub fn new(roots: TlsRoots) -> Self {
        TokenOptions {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: transport::DEFAULT_CONNECT_TIMEOUT,
            roots,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// An application's credentials for the client credentials grant.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The token endpoint: an `https://` URL.
    pub token_url: String,
    /// The application (client) ID.
    pub client_id: String,
    /// The client secret (hidden by `Debug`).
    pub client_secret: String,
    /// The scope asked for ([`MICROSOFT_IMAP_SCOPE`] for Exchange Online).
    pub scope: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Microsoft's token endpoint of a tenant: `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
///
/// The tenant is the directory (tenant) ID, a GUID, or one of its domain names
/// (`contoso.onmicrosoft.com`); anything but letters, digits, `.` and `-` is refused.
pub fn microsoft_token_url(tenant: &str) -> Result<String, TokenError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 253
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !ok {
        return Err(TokenError::InvalidSetting(format!(
            "tenant {tenant:?}: expected the directory (tenant) ID or a domain name of the tenant"
        )));
    }
    Ok(format!(
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
    ))
}

/// A bearer token and when it was received.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    secret: String,
    /// Its lifetime (`expires_in`), when the token endpoint said; `None`: unknown (a token
    /// given by the user), never refreshed before a server refuses it.
    pub expires_in: Option<Duration>,
    /// When it was received.
    pub received: Instant,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl AccessToken {
    /// A token given by the user (no known lifetime); it must be an RFC 6750 `b64token`.
    pub fn given(token: &str) -> Result<AccessToken, TokenError> {
        let token = token.trim();
        check_bearer_token(token).map_err(|e| TokenError::InvalidSetting(e.to_string()))?;
        Ok(AccessToken {
            secret: token.to_string(),
            expires_in: None,
            received: Instant::now(),
        })
    }

    /// The token itself, for the SASL message only: never print it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// When a new token should be fetched: before the end of its lifetime by a quarter of it,
    /// at most 5 minutes (a Microsoft token lives 60 to 90 minutes: renewed 5 minutes before
    /// it expires); `None` for a token of unknown lifetime.
    pub fn refresh_at(&self) -> Option<Instant> {
        let life = self.expires_in?;
        let margin = (life / 4).min(Duration::from_secs(300));
        Some(self.received + life.saturating_sub(margin))
    }

    /// Whether the token should be replaced by now.
    pub fn refresh_due(&self, now: Instant) -> bool {
        self.refresh_at().is_some_and(|at| now >= at)
    }
}

/// Why no token was obtained.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A setting cannot be used: the endpoint URL, the tenant, a token given by the user.
    #[error("{0}")]
    InvalidSetting(String),
    /// The endpoint could not be reached or the exchange failed (DNS, TCP, TLS, timeout, a
    /// malformed HTTP response).
    #[error("token endpoint {endpoint}: {error}")]
    Transport {
        /// The token endpoint URL.
        endpoint: String,
        /// What failed.
        error: TransportError,
    },
    /// The endpoint refused the request (RFC 6749 §5.2): wrong secret, unknown client, scope.
    #[error("{}", describe_refusal(.endpoint, *.status, .error.as_deref(), .description.as_deref()))]
    Refused {
        /// The token endpoint URL.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// `error` (`invalid_client`, `invalid_scope`, ...).
        error: Option<String>,
        /// `error_description`, printable, shortened.
        description: Option<String>,
    },
    /// A 200 answer without a usable token.
    #[error("the token endpoint {endpoint} sent an unusable answer: {why}")]
    Malformed {
        /// The token endpoint URL.
        endpoint: String,
        /// What is wrong.
        why: String,
    },
}

fn describe_refusal(
    endpoint: &str,
    status: u16,
    error: Option<&str>,
    description: Option<&str>,
) -> String {
    let mut s = format!("the token endpoint {endpoint} refused the request (HTTP {status})");
    match (error, description) {
        (Some(e), Some(d)) => s.push_str(&format!(": {e}: {d}")),
        (Some(e), None) => s.push_str(&format!(": {e}")),
        (None, Some(d)) => s.push_str(&format!(": {d}")),
        (None, None) => {}
    }
    s
}

impl TokenError {
    /// Whether another attempt may succeed later: network failures, timeouts, HTTP 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            TokenError::Transport { error, .. } => error.is_retryable(),
            TokenError::Refused { status, .. } => *status >= 500 || *status == 429,
            TokenError::InvalidSetting(_) | TokenError::Malformed { .. } => false,
        }
    }
}

/// The request body of the client credentials grant.
///
/// RFC 6749 §4.4.2: "grant_type REQUIRED. Value MUST be set to "client_credentials". scope
/// OPTIONAL." Microsoft, "OAuth 2.0 client credentials flow": the request carries `client_id`,
/// `scope`, `client_secret` and `grant_type=client_credentials` in the form body, as sent here
/// (RFC 6749 §2.3.1 allows the two client parameters in the body; Microsoft documents them so).
/// RFC 6749 Appendix B: the `application/x-www-form-urlencoded` format, by the `url` crate.
fn request_body(creds: &ClientCredentials) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &creds.client_id)
        .append_pair("client_secret", &creds.client_secret)
        .append_pair("scope", &creds.scope)
        .finish()
}

/// Server text made safe to show: the client secret replaced, control characters dropped,
/// shortened.
fn scrub(text: &str, secret: &str) -> String {
    let text = if secret.len() >= 4 {
        text.replace(secret, "<redacted>")
    } else {
        text.to_string()
    };
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DESCRIPTION)
        .collect();
    if text.chars().count() > MAX_DESCRIPTION {
        out.push('…');
    }
    out.trim().to_string()
}

/// Requests a token with the client credentials grant.
///
/// RFC 6749 §5.1: "access_token REQUIRED. The access token issued by the authorization server.
/// token_type REQUIRED. The type of the token issued [...]. Value is case insensitive.
/// expires_in RECOMMENDED. The lifetime in seconds of the access token." §5.2: "The
/// authorization server responds with an HTTP 400 (Bad Request) status code (unless specified
/// otherwise) [...] error REQUIRED [...] error_description OPTIONAL. Human-readable ASCII
/// \[USASCII\] text providing additional information". A `token_type` other than `Bearer` is
/// refused (RFC 6750 is what SASL XOAUTH2 and OAUTHBEARER carry); `expires_in` may be a number
/// or a string of digits (some servers quote it). Redirects are not followed.
pub async fn request_token<D: DnsSource>(
    dns: &D,
    creds: &ClientCredentials,
    opts: &TokenOptions,
) -> Result<AccessToken, TokenError> {
    let endpoint = creds.token_url.clone();
    let url = HttpUrl::parse(&creds.token_url)
        .map_err(|e| TokenError::InvalidSetting(format!("token endpoint: invalid URL {e}")))?;
    if !url.tls {
        return Err(TokenError::InvalidSetting(format!(
            "token endpoint {endpoint}: only https:// is allowed (the client secret would \
             cross the network in clear)"
        )));
    }
    let request = http::json_request(&url, Some(request_body(creds)))
        .map_err(|e| TokenError::InvalidSetting(format!("token endpoint {endpoint}: {e}")))?;
    let attempt = Attempt::start(opts.timeout, opts.connect_timeout, &opts.roots);
    let (status, body) = http::send_https(dns, &url, request, &attempt, opts.max_body)
        .await
        .map_err(|error| TokenError::Transport {
            endpoint: endpoint.clone(),
            error,
        })?;
    interpret(&endpoint, &creds.client_secret, status, &body)
}

/// Turns the token endpoint's answer into a token or an error.
fn interpret(
    endpoint: &str,
    secret: &str,
    status: u16,
    body: &[u8],
) -> Result<AccessToken, TokenError> {
    let json: Option<serde_json::Map<String, Value>> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let text = |k: &str| -> Option<String> {
        json.as_ref()?
            .get(k)?
            .as_str()
            .map(|s| scrub(s, secret))
            .filter(|s| !s.is_empty())
    };
    if status != 200 {
        let (error, mut description) = (text("error"), text("error_description"));
        if error.is_none() && description.is_none() && !body.is_empty() {
            // Not an RFC 6749 error: show the start of what came back.
            description = Some(scrub(&String::from_utf8_lossy(body), secret));
        }
        return Err(TokenError::Refused {
            endpoint: endpoint.to_string(),
            status,
            error,
            description,
        });
    }
    let malformed = |why: &str| TokenError::Malformed {
        endpoint: endpoint.to_string(),
        why: why.to_string(),
    };
    let Some(map) = &json else {
        return Err(malformed("the body is not a JSON object"));
    };
    let Some(token) = map.get("access_token").and_then(Value::as_str) else {
        return Err(malformed("no access_token"));
    };
    match map.get("token_type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        Some(t) => {
            return Err(malformed(&format!(
                "token_type {:?}, not Bearer",
                scrub(t, secret)
            )));
        }
        None => return Err(malformed("no token_type")),
    }
    check_bearer_token(token).map_err(|e| malformed(&e.to_string()))?;
    let expires_in = match map.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    }
    // A lifetime beyond a year is not believed; an absent or zero one is unknown.
    .filter(|s| (1..=366 * 86_400).contains(s))
    .map(Duration::from_secs);
    Ok(AccessToken {
        secret: token.to_string(),
        expires_in,
        received: Instant::now(),
    })
}

/// Where tokens come from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// One token given by the user; it is never renewed.
    Given(AccessToken),
    /// The client credentials grant; tokens are renewed before they expire.
    ClientCredentials(ClientCredentials),
}

/// Hands out a valid token: the current one while it is fresh, a new one when it is due for
/// renewal or was refused ([`TokenProvider::invalidate`]).
#[derive(Debug)]
pub struct TokenProvider {
    source: TokenSource,
    opts: TokenOptions,
    current: Option<AccessToken>,
    fetched: usize,
}

impl TokenProvider {
    /// A provider for `source`.
    pub fn new(source: TokenSource, opts: TokenOptions) -> Self {
        let current = match &source {
            TokenSource::Given(t) => Some(t.clone()),
            TokenSource::ClientCredentials(_) => None,
        };
        TokenProvider {
            source,
            opts,
            current,
            fetched: 0,
        }
    }

    /// Whether new tokens can be fetched (client credentials), rather than one given.
    pub fn can_refresh(&self) -> bool {
        matches!(self.source, TokenSource::ClientCredentials(_))
    }

    /// How many tokens were fetched from the token endpoint so far.
    pub fn fetched(&self) -> usize {
        self.fetched
    }

    /// Whether the current token is due for renewal (always false for a given token).
    pub fn refresh_due(&self) -> bool {
        self.can_refresh()
            && self
                .current
                .as_ref()
                .is_none_or(|t| t.refresh_due(Instant::now()))
    }

    /// Forgets the current token (the server refused it): the next [`TokenProvider::token`]
    /// fetches a new one. A given token is kept: there is no other.
    pub fn invalidate(&mut self) {
        if self.can_refresh() {
            self.current = None;
        }
    }

    /// A token to use now, and whether it was just fetched.
    pub async fn token<D: DnsSource>(
        &mut self,
        dns: &D,
    ) -> Result<(AccessToken, bool), TokenError> {
        match &self.source {
            TokenSource::Given(t) => Ok((t.clone(), false)),
            TokenSource::ClientCredentials(creds) => {
                if let Some(t) = &self.current
                    && !t.refresh_due(Instant::now())
                {
                    return Ok((t.clone(), false));
                }
                let t = request_token(dns, creds, &self.opts).await?;
                self.fetched += 1;
                self.current = Some(t.clone());
                Ok((t, true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_appendix_b_form_encoding() {
        let creds = ClientCredentials {
            token_url: "https://x/".into(),
            client_id: "id 1".into(),
            client_secret: "s&=+é".into(),
            scope: MICROSOFT_IMAP_SCOPE.into(),
        };
        assert_eq!(
            request_body(&creds),
            "grant_type=client_credentials&client_id=id+1&client_secret=s%26%3D%2B%C3%A9&\
             scope=https%3A%2F%2Foutlook.office365.com%2F.default"
        );
        let back: Vec<(String, String)> =
            url::form_urlencoded::parse(request_body(&creds).as_bytes())
                .into_owned()
                .collect();
        assert_eq!(back[2], ("client_secret".into(), "s&=+é".into()));
        assert!(!format!("{creds:?}").contains("s&="));
    }

    #[test]
    fn microsoft_endpoints() {
        assert_eq!(
            microsoft_token_url("contoso.onmicrosoft.com").unwrap(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(microsoft_token_url("72f988bf-86f1-41af-91ab-2d7cd011db47").is_ok());
        for bad in ["", "a/b", "a b", "../x", "x?y"] {
            assert!(microsoft_token_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc6749_section_5_answers() {
        let ok = interpret(
            "E",
            "secret",
            200,
            br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0.eXAi.sig-_"}"#,
        )
        .unwrap();
        assert_eq!(ok.secret(), "eyJ0.eXAi.sig-_");
        assert_eq!(ok.expires_in, Some(Duration::from_secs(3599)));
        assert!(!format!("{ok:?}").contains("eyJ0"));
        let quoted = interpret(
            "E",
            "s",
            200,
            br#"{"token_type":"bearer","expires_in":"60","access_token":"t"}"#,
        )
        .unwrap();
        assert_eq!(quoted.expires_in, Some(Duration::from_secs(60)));
        let forever = interpret(
            "E",
            "s",
            200,
            br#"{"token_type":"Bearer","expires_in":0,"access_token":"t"}"#,
        )
        .unwrap();
        assert_eq!(forever.expires_in, None);

        let refused = interpret(
            "https://login.example/t/oauth2/v2.0/token",
            "hunter2secret",
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: hunter2secret\r\n"}"#,
        )
        .unwrap_err();
        let text = refused.to_string();
        assert_eq!(
            text,
            "the token endpoint https://login.example/t/oauth2/v2.0/token refused the request \
             (HTTP 401): invalid_client: AADSTS7000215: Invalid client secret provided: <redacted>"
        );
        assert!(!refused.is_retryable());
        let html = interpret("E", "s", 502, b"<html>Bad gateway</html>").unwrap_err();
        assert!(
            html.to_string().contains("(HTTP 502): <html>Bad gateway"),
            "{html}"
        );
        assert!(html.is_retryable());

        for (body, why) in [
            (&b"not json"[..], "not a JSON object"),
            (br#"{"token_type":"Bearer"}"#, "no access_token"),
            (br#"{"access_token":"t"}"#, "no token_type"),
            (br#"{"access_token":"t","token_type":"mac"}"#, "not Bearer"),
            (
                br#"{"access_token":"a b","token_type":"Bearer"}"#,
                "RFC 6750",
            ),
        ] {
            let e = interpret("E", "s", 200, body).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn renewal_is_due_before_expiry() {
        let now = Instant::now();
        let t = |secs: u64| AccessToken {
            secret: "t".into(),
            expires_in: Some(Duration::from_secs(secs)),
            received: now,
        };
        // One hour: renewed 5 minutes before the end.
        assert_eq!(t(3600).refresh_at(), Some(now + Duration::from_secs(3300)));
        // Short-lived: a quarter of the lifetime before the end.
        assert_eq!(t(4).refresh_at(), Some(now + Duration::from_secs(3)));
        assert!(!t(4).refresh_due(now + Duration::from_secs(2)));
        assert!(t(4).refresh_due(now + Duration::from_secs(3)));
        let given = AccessToken::given(" abc.def ").unwrap();
        assert_eq!(given.secret(), "abc.def");
        assert_eq!(given.refresh_at(), None);
        assert!(AccessToken::given("a\u{1}b").is_err());
    }
}
