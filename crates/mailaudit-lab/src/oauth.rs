//! A tiny OAuth 2.0 authorization server on loopback, for the tests of `reports fetch` with
//! Exchange-Online-style authentication: a token endpoint that issues bearer tokens through the
//! client credentials grant (RFC 6749 §4.4), over HTTPS with a certificate from a lab CA made
//! at start, and an introspection endpoint (RFC 7662) over plain HTTP, which a
//! [`DovecotLab`](crate::dovecot::DovecotLab) configured with
//! [`DovecotConfig::with_oauth2`](crate::dovecot::DovecotConfig::with_oauth2) asks whether a
//! token is valid and whose it is.
//!
//! The token endpoint answers like the Microsoft identity platform's
//! `/{tenant}/oauth2/v2.0/token`: `POST` of an `application/x-www-form-urlencoded` body with
//! `grant_type=client_credentials`, `client_id`, `client_secret` and `scope`; a JSON object
//! with `token_type`, `expires_in` and `access_token` on success, or an HTTP 400/401 with
//! `error` and `error_description` (Microsoft's `AADSTS…` texts) on failure. Tokens live for
//! [`OAuthLabConfig::lifetime`]; [`LabOAuth::revoke_all`] makes every token issued so far
//! invalid at once. The server counts what it did ([`LabOAuth::issued`],
//! [`LabOAuth::requests`], [`LabOAuth::introspections`]) so tests observe the client from the
//! server's side.
//!
//! Both listeners are on 127.0.0.1, ephemeral ports; each connection is served by a thread
//! (one request, then `Connection: close`), with read timeouts and size caps. The API is
//! blocking; dropping the [`LabOAuth`] stops it.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::LabError;

/// The path of the token endpoint, after the tenant: `/{tenant}/oauth2/v2.0/token`.
pub const TOKEN_PATH: &str = "/oauth2/v2.0/token";

/// The largest request (head and body) read.
const MAX_REQUEST: usize = 64 * 1024;

/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the authorization server accepts and issues.
#[derive(Clone)]
pub struct OAuthLabConfig {
    /// The application (client) ID it knows.
    pub client_id: String,
    /// That application's client secret.
    pub client_secret: String,
    /// The scope it issues tokens for (`https://outlook.office365.com/.default`).
    pub scope: String,
    /// The mailbox user every token is for: the introspection's `username`.
    pub username: String,
    /// How long a token is valid (its `expires_in`, rounded up to whole seconds).
    pub lifetime: Duration,
}

impl std::fmt::Debug for OAuthLabConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthLabConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .field("username", &self.username)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl OAuthLabConfig {
    /// One application issuing one-hour tokens for `username` with Exchange Online's IMAP scope.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        username: impl Into<String>,
    ) -> Self {
        OAuthLabConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: "https://outlook.office365.com/.default".into(),
            username: username.into(),
            lifetime: Duration::from_secs(3600),
        }
    }

    /// The same with tokens valid for `lifetime`.
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }
}

/// One request the token endpoint received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The request path (`/{tenant}/oauth2/v2.0/token`).
    pub path: String,
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// Whether `client_secret` was the right one (the secret itself is not kept).
    pub secret_ok: bool,
    /// `scope`.
    pub scope: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

#[derive(Debug)]
struct Token {
    expires: Instant,
    revoked: bool,
}

#[derive(Debug, Default)]
struct State {
    tokens: HashMap<String, Token>,
    issued: usize,
    requests: Vec<TokenRequest>,
    introspections: usize,
    minted: u64,
}

struct Shared {
    config: OAuthLabConfig,
    state: Mutex<State>,
    stop: AtomicBool,
    tls: Arc<rustls::ServerConfig>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running authorization server; see the [module docs](self).
pub struct LabOAuth {
    shared: Arc<Shared>,
    token_addr: SocketAddr,
    introspection_addr: SocketAddr,
    ca_pem: String,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LabOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabOAuth")
            .field("token_addr", &self.token_addr)
            .field("introspection_addr", &self.introspection_addr)
            .finish()
    }
}

impl LabOAuth {
    /// Starts both endpoints on ephemeral ports of 127.0.0.1.
    pub fn start(config: OAuthLabConfig) -> Result<LabOAuth, LabError> {
        let (ca_pem, tls) = crate::smtp::make_tls(&["127.0.0.1".to_string()])?;
        let token_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(LabError::Bind)?;
        let introspection_listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(LabError::Bind)?;
        let token_addr = token_listener.local_addr().map_err(LabError::Bind)?;
        let introspection_addr = introspection_listener
            .local_addr()
            .map_err(LabError::Bind)?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            tls,
        });
        let threads = vec![
            spawn_accept(token_listener, shared.clone(), true),
            spawn_accept(introspection_listener, shared.clone(), false),
        ];
        Ok(LabOAuth {
            shared,
            token_addr,
            introspection_addr,
            ca_pem,
            threads,
        })
    }

    /// The token endpoint of `tenant`: `https://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("https://{}/{tenant}{TOKEN_PATH}", self.token_addr)
    }

    /// The introspection endpoint: `http://127.0.0.1:PORT/introspect`.
    pub fn introspection_url(&self) -> String {
        format!("http://{}/introspect", self.introspection_addr)
    }

    /// The PEM of the CA that signed the token endpoint's certificate (for 127.0.0.1).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// How many tokens the token endpoint issued.
    pub fn issued(&self) -> usize {
        self.shared.state().issued
    }

    /// The requests the token endpoint received, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.state().requests.clone()
    }

    /// How many introspection requests were answered.
    pub fn introspections(&self) -> usize {
        self.shared.state().introspections
    }

    /// A valid token issued outside the token endpoint (not counted by [`LabOAuth::issued`]),
    /// as an administrator would hand one out.
    pub fn mint(&self) -> String {
        let mut state = self.shared.state();
        state.minted += 1;
        let token = new_token(u64::MAX - state.minted);
        let expires = Instant::now() + self.shared.config.lifetime;
        state.tokens.insert(
            token.clone(),
            Token {
                expires,
                revoked: false,
            },
        );
        token
    }

    /// Makes every token issued so far invalid (introspection answers `active: false`).
    pub fn revoke_all(&self) {
        for t in self.shared.state().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Stops the server; dropping it does the same.
    pub fn stop(self) {}
}

impl Drop for LabOAuth {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loops.
        for addr in [self.token_addr, self.introspection_addr] {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A stream a lab HTTP server answers on: plain TCP or TLS over it.
pub(crate) trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// What the accept loops of a loopback lab HTTP(S) server ([`spawn_accept`]) need of its
/// shared state.
pub(crate) trait LabHttp: Send + Sync + 'static {
    /// Whether the server is stopping.
    fn stopped(&self) -> bool;
    /// Its TLS configuration (the lab CA's certificate).
    fn tls(&self) -> Arc<rustls::ServerConfig>;
    /// Answers one connection; `https`: it came over TLS.
    fn serve(&self, stream: &mut dyn Stream, https: bool) -> io::Result<()>;
}

/// Accepts connections on `listener` until the server stops, each answered on a thread of its
/// own with read and write timeouts, over TLS when `tls`.
pub(crate) fn spawn_accept<S: LabHttp>(
    listener: TcpListener,
    shared: Arc<S>,
    tls: bool,
) -> JoinHandle<()> {
    thread::spawn(move || {
        for conn in listener.incoming() {
            if shared.stopped() {
                return;
            }
            let Ok(mut stream) = conn else {
                thread::sleep(Duration::from_millis(20));
                continue;
            };
            let shared = shared.clone();
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
                let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
                let _ = if tls {
                    serve_tls(stream, &*shared)
                } else {
                    shared.serve(&mut stream, false)
                };
            });
        }
    })
}

fn serve_tls<S: LabHttp>(stream: TcpStream, shared: &S) -> io::Result<()> {
    let conn = rustls::ServerConnection::new(shared.tls()).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    shared.serve(&mut tls, true)?;
    tls.conn.send_close_notify();
    tls.flush()
}

impl LabHttp for Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn tls(&self) -> Arc<rustls::ServerConfig> {
        self.tls.clone()
    }
    fn serve(&self, stream: &mut dyn Stream, token_endpoint: bool) -> io::Result<()> {
        serve(stream, self, token_endpoint)
    }
}

/// Reads one request, answers it, closes.
fn serve(mut stream: impl Read + Write, shared: &Shared, token_endpoint: bool) -> io::Result<()> {
    let Some(request) = read_request(&mut stream)? else {
        return Ok(());
    };
    let (status, body) = if token_endpoint {
        token(shared, &request)
    } else {
        introspect(shared, &request)
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) form: HashMap<String, String>,
}

/// The request line and the form body (by `Content-Length`); `None` when the peer closed
/// without a whole request.
pub(crate) fn read_request(stream: &mut impl Read) -> io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        path,
        form: parse_form(&String::from_utf8_lossy(&body)),
    }))
}

/// `application/x-www-form-urlencoded` (RFC 6749 Appendix B).
fn parse_form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn error_body(error: &str, description: &str) -> String {
    format!(
        "{{\"error\":{},\"error_description\":{},\"error_codes\":[7000215],\
         \"timestamp\":\"2026-01-01 00:00:00Z\",\"trace_id\":\"lab\",\"correlation_id\":\"lab\"}}",
        json_string(error),
        json_string(description)
    )
}

/// A fresh opaque token: `lab<n>.<64 random bits in hex>`.
pub(crate) fn new_token(n: u64) -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("lab{n}.{:016x}", h.finish())
}

/// The token endpoint (Microsoft identity platform v2.0 behaviour).
fn token(shared: &Shared, req: &Request) -> (u16, String) {
    let config = &shared.config;
    let get = |k: &str| req.form.get(k).cloned();
    let secret_ok = get("client_secret").as_deref() == Some(config.client_secret.as_str());
    let (status, body) = if req.method != "POST" {
        (
            405,
            error_body(
                "invalid_request",
                "AADSTS900561: The endpoint only accepts POST requests.",
            ),
        )
    } else if !req.path.ends_with(TOKEN_PATH) {
        (404, error_body("not_found", "no such endpoint"))
    } else if get("grant_type").as_deref() != Some("client_credentials") {
        (
            400,
            error_body(
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
            ),
        )
    } else if get("client_id").as_deref() != Some(config.client_id.as_str()) {
        (
            400,
            error_body(
                "unauthorized_client",
                &format!(
                    "AADSTS700016: Application with identifier '{}' was not found in the \
                     directory.",
                    get("client_id").unwrap_or_default()
                ),
            ),
        )
    } else if !secret_ok {
        (
            401,
            error_body(
                "invalid_client",
                &format!(
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent \
                     in the request is the client secret value, not the client secret ID, for a \
                     secret added to app '{}'.",
                    config.client_id
                ),
            ),
        )
    } else if get("scope").as_deref() != Some(config.scope.as_str()) {
        (
            400,
            error_body(
                "invalid_scope",
                &format!(
                    "AADSTS1002012: The provided value for scope {} is not valid. Client \
                     credential flows must have a scope value with /.default suffixed to the \
                     resource identifier (application ID URI).",
                    get("scope").unwrap_or_default()
                ),
            ),
        )
    } else {
        let mut state = shared.state();
        state.issued += 1;
        let token = new_token(state.issued as u64);
        state.tokens.insert(
            token.clone(),
            Token {
                expires: Instant::now() + config.lifetime,
                revoked: false,
            },
        );
        let secs = config.lifetime.as_secs() + u64::from(config.lifetime.subsec_nanos() > 0);
        (
            200,
            format!(
                "{{\"token_type\":\"Bearer\",\"expires_in\":{secs},\"ext_expires_in\":{secs},\
                 \"access_token\":{}}}",
                json_string(&token)
            ),
        )
    };
    shared.state().requests.push(TokenRequest {
        path: req.path.clone(),
        grant_type: get("grant_type"),
        client_id: get("client_id"),
        secret_ok,
        scope: get("scope"),
        status,
    });
    (status, body)
}

/// The introspection endpoint (RFC 7662 §2.2: "active REQUIRED. Boolean indicator of whether
/// or not the presented token is currently active").
fn introspect(shared: &Shared, req: &Request) -> (u16, String) {
    let mut state = shared.state();
    state.introspections += 1;
    let active = req
        .form
        .get("token")
        .and_then(|t| state.tokens.get(t))
        .is_some_and(|t| !t.revoked && Instant::now() < t.expires);
    if active {
        (
            200,
            format!(
                "{{\"active\":true,\"username\":{},\"scope\":{},\"client_id\":{}}}",
                json_string(&shared.config.username),
                json_string(&shared.config.scope),
                json_string(&shared.config.client_id)
            ),
        )
    } else {
        (200, "{\"active\":false}".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_json() {
        let f =
            parse_form("grant_type=client_credentials&scope=https%3A%2F%2Fx%2F.default&a=b+c&z=%");
        assert_eq!(f["grant_type"], "client_credentials");
        assert_eq!(f["scope"], "https://x/.default");
        assert_eq!(f["a"], "b c");
        assert_eq!(f["z"], "%");
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        let t = new_token(3);
        assert!(t.starts_with("lab3.") && t.len() == 21, "{t}");
        assert_ne!(new_token(3), new_token(3));
    }
}
