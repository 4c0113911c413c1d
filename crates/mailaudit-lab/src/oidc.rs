//! A loopback OpenID Connect provider, for the tests of the portal's single sign-on.
//!
//! Over HTTPS (a certificate for 127.0.0.1 from a lab CA made at start, like
//! [`oauth`](crate::oauth)): the discovery document (`/.well-known/openid-configuration`), the
//! JWKS (`/jwks`: one ECDSA P-256 key made at start, ES256) and the token endpoint (`/token`:
//! the authorization code grant with `client_secret_post` and PKCE S256, answering with an ID
//! token). The authorization endpoint (`/authorize`) has no sign-in page: it sends the browser
//! straight back to `redirect_uri?code=…&state=…` for the user the test set
//! ([`LabOidc::set_user`]), recording the nonce and the PKCE challenge. It is served over
//! plain HTTP on a second port, so a browser in a test follows it without trusting the lab CA
//! (nothing secret crosses it: the code is useless without the verifier and the client
//! secret, which go to `/token` over HTTPS).
//!
//! [`LabOidc::set_mischief`] makes the next ID tokens bad in one way: another audience,
//! expired, signed by a key not in the JWKS, carrying the nonce of an earlier sign-in, or
//! saying the address is not verified.
//!
//! Each connection is served by a thread (one request, then `Connection: close`), with read
//! timeouts and size caps. The API is blocking; dropping the [`LabOidc`] stops it.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::LabError;
use crate::oauth::{LabHttp, Stream, json_string, new_token, read_request, spawn_accept};

/// The JWKS key's `kid`.
pub const KID: &str = "lab-key-1";

/// The user `/authorize` signs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabUser {
    /// `sub`.
    pub sub: String,
    /// `email`.
    pub email: String,
    /// `groups`.
    pub groups: Vec<String>,
}

/// A way to make the ID tokens bad.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mischief {
    /// Good tokens.
    #[default]
    None,
    /// `aud` is another client.
    WrongAudience,
    /// `exp` an hour ago.
    Expired,
    /// Signed by a key that is not in the JWKS, under the JWKS key's `kid`.
    OtherKey,
    /// The nonce of the first sign-in this provider saw, whatever the request's.
    ReplayNonce,
    /// A good token, saying `email_verified: false`.
    UnverifiedEmail,
}

#[derive(Debug)]
struct Grant {
    user: LabUser,
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct State {
    /// The signing key's `kid`, the key, and the JWKS publishing it.
    key: Option<(String, EncodingKey, String)>,
    discoveries: usize,
    jwks_fetches: usize,
    user: Option<LabUser>,
    mischief: Mischief,
    grants: HashMap<String, Grant>,
    first_nonce: Option<String>,
    authorizations: usize,
    tokens: usize,
    refused: Vec<String>,
    n: u64,
}

struct Shared {
    client_id: String,
    client_secret: String,
    issuer: String,
    authorize_url: String,
    other_key: EncodingKey,
    state: Mutex<State>,
    stop: AtomicBool,
    tls: Arc<rustls::ServerConfig>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running provider; see the [module docs](self).
pub struct LabOidc {
    shared: Arc<Shared>,
    addrs: [SocketAddr; 2],
    ca_pem: String,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LabOidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabOidc")
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

fn p256_key() -> Result<(EncodingKey, Vec<u8>), LabError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| LabError::Tls(format!("OIDC signing key: {e}")))?;
    Ok((
        EncodingKey::from_ec_der(&key.serialize_der()),
        key.public_key_raw().to_vec(),
    ))
}

/// A new signing key under `kid`, with the JWKS that publishes it.
fn signing_key(kid: &str) -> Result<(String, EncodingKey, String), LabError> {
    let (key, public) = p256_key()?;
    // The uncompressed point: 0x04 || x || y.
    let point = public.get(1..).unwrap_or_default();
    let (x, y) = point.split_at(point.len() / 2);
    let jwks = format!(
        "{{\"keys\":[{{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"sig\",\"alg\":\"ES256\",\
         \"kid\":{},\"x\":\"{}\",\"y\":\"{}\"}}]}}",
        json_string(kid),
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    );
    Ok((kid.to_string(), key, jwks))
}

impl LabOidc {
    /// Starts the provider of the client `client_id` with `client_secret`: HTTPS and the
    /// plain-HTTP authorization endpoint, each on an ephemeral port of 127.0.0.1.
    pub fn start(client_id: &str, client_secret: &str) -> Result<LabOidc, LabError> {
        let (ca_pem, tls) = crate::smtp::make_tls(&["127.0.0.1".to_string()])?;
        let https = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(LabError::Bind)?;
        let plain = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(LabError::Bind)?;
        let addrs = [
            https.local_addr().map_err(LabError::Bind)?,
            plain.local_addr().map_err(LabError::Bind)?,
        ];
        let (other_key, _) = p256_key()?;
        let shared = Arc::new(Shared {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            issuer: format!("https://{}", addrs[0]),
            authorize_url: format!("http://{}/authorize", addrs[1]),
            other_key,
            state: Mutex::new(State {
                key: Some(signing_key(KID)?),
                ..State::default()
            }),
            stop: AtomicBool::new(false),
            tls,
        });
        let threads = vec![
            spawn_accept(https, shared.clone(), true),
            spawn_accept(plain, shared.clone(), false),
        ];
        Ok(LabOidc {
            shared,
            addrs,
            ca_pem,
            threads,
        })
    }

    /// The issuer: `https://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The PEM of the CA that signed the HTTPS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The user the next sign-ins are for (`None`: `/authorize` answers `access_denied`).
    pub fn set_user(&self, user: Option<LabUser>) {
        self.shared.state().user = user;
    }

    /// How the next ID tokens are bad, if they are.
    pub fn set_mischief(&self, m: Mischief) {
        self.shared.state().mischief = m;
    }

    /// How many times `/authorize` sent a code.
    pub fn authorizations(&self) -> usize {
        self.shared.state().authorizations
    }

    /// How many ID tokens `/token` issued.
    pub fn tokens(&self) -> usize {
        self.shared.state().tokens
    }

    /// Replaces the signing key by a new one under `kid` (a key rollover: the JWKS then
    /// publishes only the new key).
    pub fn rotate_key(&self, kid: &str) -> Result<(), LabError> {
        self.shared.state().key = Some(signing_key(kid)?);
        Ok(())
    }

    /// How many times the discovery document was read.
    pub fn discoveries(&self) -> usize {
        self.shared.state().discoveries
    }

    /// How many times the JWKS was read.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.state().jwks_fetches
    }

    /// Why `/token` refused each request it refused, in order.
    pub fn refused(&self) -> Vec<String> {
        self.shared.state().refused.clone()
    }
}

impl Drop for LabOidc {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for addr in self.addrs {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl LabHttp for Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn tls(&self) -> Arc<rustls::ServerConfig> {
        self.tls.clone()
    }
    fn serve(&self, stream: &mut dyn Stream, https: bool) -> io::Result<()> {
        serve(stream, self, https)
    }
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

fn json(status: u16, body: String) -> Answer {
    Answer {
        status,
        location: None,
        body,
    }
}

fn oauth_error(status: u16, error: &str, why: &str) -> Answer {
    json(
        status,
        format!(
            "{{\"error\":{},\"error_description\":{}}}",
            json_string(error),
            json_string(why)
        ),
    )
}

fn serve(mut stream: impl io::Read + Write, shared: &Shared, https: bool) -> io::Result<()> {
    let Some(req) = read_request(&mut stream)? else {
        return Ok(());
    };
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let a = match (https, req.method.as_str(), path) {
        (true, "GET", "/.well-known/openid-configuration") => {
            shared.state().discoveries += 1;
            json(
                200,
                format!(
                    "{{\"issuer\":{},\"authorization_endpoint\":{},\"token_endpoint\":{},\
                 \"jwks_uri\":{},\"response_types_supported\":[\"code\"],\
                 \"subject_types_supported\":[\"public\"],\
                 \"id_token_signing_alg_values_supported\":[\"ES256\"],\
                 \"code_challenge_methods_supported\":[\"S256\"],\
                 \"token_endpoint_auth_methods_supported\":[\"client_secret_post\"]}}",
                    json_string(&shared.issuer),
                    json_string(&shared.authorize_url),
                    json_string(&format!("{}/token", shared.issuer)),
                    json_string(&format!("{}/jwks", shared.issuer)),
                ),
            )
        }
        (true, "GET", "/jwks") => {
            let mut st = shared.state();
            st.jwks_fetches += 1;
            json(
                200,
                st.key.as_ref().map(|k| k.2.clone()).unwrap_or_default(),
            )
        }
        (true, "POST", "/token") => token(shared, &req.form),
        (false, "GET", "/authorize") => authorize(
            shared,
            &form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ),
        _ => oauth_error(404, "not_found", "no such endpoint"),
    };
    let reason = match a.status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let location = a
        .location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {} {reason}\r\n{location}Content-Type: application/json; charset=utf-8\r\n\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        a.status,
        a.body.len(),
        a.body
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

fn authorize(shared: &Shared, q: &HashMap<String, String>) -> Answer {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != shared.client_id {
        return oauth_error(400, "unauthorized_client", "unknown client_id");
    }
    let redirect = get("redirect_uri");
    if !redirect.starts_with("http://127.0.0.1:") && !redirect.starts_with("https://") {
        return oauth_error(400, "invalid_request", "bad redirect_uri");
    }
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || get("nonce").is_empty()
    {
        return oauth_error(
            400,
            "invalid_request",
            "response_type=code, a nonce and an S256 code_challenge are required",
        );
    }
    let mut st = shared.state();
    let mut to = url_with(&redirect, &[("state", &get("state"))]);
    match st.user.clone() {
        None => to = url_with(&to, &[("error", "access_denied")]),
        Some(user) => {
            st.n += 1;
            let code = new_token(st.n);
            st.first_nonce.get_or_insert_with(|| get("nonce"));
            st.grants.insert(
                code.clone(),
                Grant {
                    user,
                    nonce: get("nonce"),
                    challenge: get("code_challenge"),
                    redirect_uri: redirect,
                },
            );
            st.authorizations += 1;
            to = url_with(&to, &[("code", &code)]);
        }
    }
    Answer {
        status: 302,
        location: Some(to),
        body: String::new(),
    }
}

fn url_with(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", s.finish())
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nonce: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    groups: &'a [String],
}

fn token(shared: &Shared, form: &HashMap<String, String>) -> Answer {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut st = shared.state();
    let refuse = |st: &mut State, status: u16, error: &str, why: &str| {
        st.refused.push(why.to_string());
        oauth_error(status, error, why)
    };
    if get("grant_type") != "authorization_code" {
        return refuse(&mut st, 400, "unsupported_grant_type", "grant_type");
    }
    if get("client_id") != shared.client_id || get("client_secret") != shared.client_secret {
        return refuse(&mut st, 401, "invalid_client", "client_id or client_secret");
    }
    // A code is good once.
    let Some(grant) = st.grants.remove(&get("code")) else {
        return refuse(&mut st, 400, "invalid_grant", "unknown or used code");
    };
    if grant.redirect_uri != get("redirect_uri") {
        return refuse(&mut st, 400, "invalid_grant", "redirect_uri differs");
    }
    let verifier = get("code_verifier");
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return refuse(&mut st, 400, "invalid_grant", "PKCE verifier");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let m = st.mischief;
    let nonce = match (m, &st.first_nonce) {
        (Mischief::ReplayNonce, Some(first)) => first.clone(),
        _ => grant.nonce.clone(),
    };
    let (iat, exp) = if m == Mischief::Expired {
        (now - 7200, now - 3600)
    } else {
        (now, now + 3600)
    };
    let claims = Claims {
        iss: &shared.issuer,
        sub: &grant.user.sub,
        aud: if m == Mischief::WrongAudience {
            "another-application"
        } else {
            &shared.client_id
        },
        exp,
        iat,
        nonce: &nonce,
        email: &grant.user.email,
        email_verified: (m == Mischief::UnverifiedEmail).then_some(false),
        groups: &grant.user.groups,
    };
    let Some((kid, key, _)) = st.key.as_ref() else {
        return refuse(&mut st, 400, "server_error", "no signing key");
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.clone());
    let key = if m == Mischief::OtherKey {
        &shared.other_key
    } else {
        key
    };
    let signed = jsonwebtoken::encode(&header, &claims, key);
    match signed {
        Ok(id_token) => {
            st.tokens += 1;
            json(
                200,
                format!(
                    "{{\"token_type\":\"Bearer\",\"expires_in\":3600,\
                     \"access_token\":\"lab-access\",\"id_token\":{}}}",
                    json_string(&id_token)
                ),
            )
        }
        Err(e) => refuse(&mut st, 400, "server_error", &e.to_string()),
    }
}
