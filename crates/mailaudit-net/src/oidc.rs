//! OpenID Connect sign-in for the portal (`mailaudit serve --oidc-…`): the relying party's
//! side of the authorization code flow with PKCE (RFC 7636, S256) and a client secret
//! (`client_secret_post`).
//!
//! [`OidcClient`] reads the provider's discovery document
//! (`{issuer}/.well-known/openid-configuration`, OpenID Connect Discovery 1.0, cached once read)
//! and its JWKS (cached; fetched again once when a token names a key it does not hold, which is
//! how a provider's key rollover looks), builds the authorization URL, and exchanges a code for
//! an ID token, which [`validate_id_token`] checks: the signature against the JWKS key named by
//! `kid` (RS256 or ES256 only), `iss`, `aud` (the client ID), `exp` and `iat` with
//! [`LEEWAY`] seconds of clock skew, and `nonce`. Every request goes over HTTPS through
//! [`transport`](crate::transport) (web PKI roots plus `--oidc-ca-file`), with one deadline and
//! capped bodies; redirects are not followed. The cryptography is `jsonwebtoken`'s (ring).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use mailaudit_core::dns::DnsSource;
use mailaudit_core::secret::same_secret;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::NetError;
use crate::http::{self, HttpUrl};
use crate::smtp::TlsRoots;
use crate::transport::{self, Attempt, TransportError};

/// Seconds of clock skew allowed on `exp` and `iat`.
pub const LEEWAY: u64 = 120;

/// The largest discovery document, JWKS or token response read: 256 KiB.
const MAX_BODY: usize = 256 * 1024;

/// The limit of each request to the provider.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The issuer of a Microsoft Entra ID tenant: `https://login.microsoftonline.com/{tenant}/v2.0`.
///
/// The tenant is the directory (tenant) ID, a GUID, or one of its domain names; anything but
/// letters, digits, `.` and `-` is refused.
pub fn microsoft_issuer(tenant: &str) -> Result<String, NetError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 253
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !ok {
        return Err(NetError::Oidc(format!(
            "tenant {tenant:?}: expected the directory (tenant) ID or a domain name of the tenant"
        )));
    }
    Ok(format!("https://login.microsoftonline.com/{tenant}/v2.0"))
}

/// Whether the discovery document's `issuer` may stand for the configured one: the same
/// (OpenID Connect Discovery §4.3), or, for Microsoft Entra ID, the tenant given by a domain
/// name (`…/contoso.onmicrosoft.com/v2.0`), whose document names the tenant by its ID
/// (`…/{GUID}/v2.0`). The ID token's `iss` must then be the document's.
pub fn issuer_matches(configured: &str, discovered: &str) -> bool {
    const ENTRA: &str = "https://login.microsoftonline.com/";
    let entra_tenant = |i: &str| {
        i.strip_prefix(ENTRA)
            .and_then(|r| r.strip_suffix("/v2.0"))
            .filter(|t| !t.is_empty() && !t.contains('/'))
            .is_some()
    };
    configured == discovered || (entra_tenant(configured) && entra_tenant(discovered))
}

/// What the portal's relying party is.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer (`https://login.microsoftonline.com/{tenant}/v2.0`, or another provider's).
    pub issuer: String,
    /// The application (client) ID: the ID token's audience.
    pub client_id: String,
    /// The client secret (hidden by `Debug`), sent in the token request's body.
    pub client_secret: String,
    /// Where the provider sends the browser back: `https://PORTAL/login/sso/callback`.
    pub redirect_uri: String,
    /// The trust anchors of the provider's certificates.
    pub roots: TlsRoots,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The parts of the discovery document used.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Discovery {
    /// `issuer`: must be the configured issuer.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `jwks_uri`.
    pub jwks_uri: String,
}

/// What a validated ID token says about the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdClaims {
    /// `sub`.
    pub subject: String,
    /// `email` (unless `email_verified` is false), else a `preferred_username` that looks like
    /// an address (Entra's UPN).
    pub email: Option<String>,
    /// `groups` (Entra: the groups' object IDs).
    pub groups: Vec<String>,
    /// `nonce`.
    pub nonce: String,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// Checks an ID token (OpenID Connect Core §3.1.3.7): signed (RS256 or ES256) by the key of
/// `jwks` its header names (`kid`), `iss` the issuer, `aud` containing `client_id`, `exp` not
/// passed and `iat` not in the future (both with [`LEEWAY`]), `nonce` the one sent. `now` is
/// seconds since the Unix epoch. Errors are [`NetError::IdToken`]; an unknown `kid` is
/// [`NetError::UnknownKey`] (the caller may fetch the JWKS again).
pub fn validate_id_token(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: u64,
) -> Result<IdClaims, NetError> {
    let bad = |why: &str| NetError::IdToken(why.to_string());
    let header = jsonwebtoken::decode_header(token).map_err(|_| bad("not a signed JWT"))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(bad(&format!(
            "signed with {:?}: only RS256 and ES256 are accepted",
            header.alg
        )));
    }
    let kid = header.kid.clone().unwrap_or_default();
    let jwk: &Jwk = match (header.kid.as_deref(), jwks.keys.as_slice()) {
        (Some(kid), _) => jwks
            .find(kid)
            .ok_or_else(|| NetError::UnknownKey(kid.to_string()))?,
        (None, [only]) => only,
        (None, _) => return Err(bad("no kid in the header and the JWKS holds several keys")),
    };
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| bad(&format!("the JWKS key {kid:?} cannot be used: {e}")))?;
    let mut v = Validation::new(header.alg);
    v.leeway = LEEWAY;
    v.set_issuer(&[issuer]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_nbf = true;
    let data = jsonwebtoken::decode::<RawClaims>(token, &key, &v).map_err(|e| {
        bad(match e.kind() {
            ErrorKind::InvalidSignature => "bad signature",
            ErrorKind::ExpiredSignature => "expired",
            ErrorKind::ImmatureSignature => "not valid yet (nbf)",
            ErrorKind::InvalidAudience => "wrong audience",
            ErrorKind::InvalidIssuer => "wrong issuer",
            ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
            ErrorKind::InvalidAlgorithm => "the key's algorithm is not the header's",
            _ => "malformed",
        })
    })?;
    let c = data.claims;
    match c.iat {
        Some(iat) if iat <= now.saturating_add(LEEWAY) => {}
        Some(_) => return Err(bad("issued in the future (iat)")),
        None => return Err(bad("a required claim is missing (iat)")),
    }
    let got = c.nonce.unwrap_or_default();
    if got.is_empty() || !same_secret(got.as_bytes(), nonce.as_bytes()) {
        return Err(bad("wrong nonce"));
    }
    // When the provider says the address is not verified, no address names the user (users
    // are matched by it; OpenID Connect Core §5.1). Entra sends no `email_verified`: its
    // `email`, else its `preferred_username`, is taken as the tenant gives it.
    let email = if c.email_verified == Some(false) {
        None
    } else {
        c.email
            .filter(|e| e.contains('@'))
            .or(c.preferred_username.filter(|u| u.contains('@')))
    };
    Ok(IdClaims {
        subject: c.sub,
        email,
        groups: c.groups,
        nonce: got,
    })
}

/// Constant-time equality.
/// The relying party; see the [module docs](self).
pub struct OidcClient<D> {
    dns: D,
    config: OidcConfig,
    discovery: Mutex<Option<Discovery>>,
    jwks: Mutex<Option<JwkSet>>,
}

impl<D> fmt::Debug for OidcClient<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<D: DnsSource> OidcClient<D> {
    /// A client of `config`'s provider, looking hosts up through `dns`. Nothing is fetched yet.
    pub fn new(dns: D, config: OidcConfig) -> Result<Self, NetError> {
        let issuer = HttpUrl::parse(&config.issuer)
            .map_err(|e| NetError::Oidc(format!("issuer: invalid URL {e}")))?;
        if !issuer.tls {
            return Err(NetError::Oidc(format!(
                "issuer {}: only https:// is allowed",
                config.issuer
            )));
        }
        if config.client_id.is_empty() || config.client_secret.is_empty() {
            return Err(NetError::Oidc(
                "a client ID and a client secret are required".into(),
            ));
        }
        Ok(OidcClient {
            dns,
            config,
            discovery: Mutex::new(None),
            jwks: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The discovery document (read once, then cached; a failed read is tried again next time).
    pub async fn discovery(&self) -> Result<Discovery, NetError> {
        let mut cached = self.discovery.lock().await;
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let d: Discovery = serde_json::from_slice(&body)
            .map_err(|e| NetError::Oidc(format!("{url}: not a discovery document: {e}")))?;
        // Discovery §4.3: the issuer given must be the one asked for.
        if !issuer_matches(&self.config.issuer, &d.issuer) {
            return Err(NetError::Oidc(format!(
                "{url}: the document's issuer {:?} is not {:?}",
                d.issuer, self.config.issuer
            )));
        }
        // The browser goes to the authorization endpoint (plain HTTP only on loopback, for
        // the lab); the client secret, the code and the keys cross only HTTPS.
        let loopback = |e: &str| {
            e.strip_prefix("http://").is_some_and(|r| {
                r.starts_with("127.0.0.1:")
                    || r.starts_with("[::1]:")
                    || r.starts_with("localhost:")
            })
        };
        if !d.authorization_endpoint.starts_with("https://") && !loopback(&d.authorization_endpoint)
        {
            return Err(NetError::Oidc(format!(
                "{url}: endpoint {} is not https://",
                d.authorization_endpoint
            )));
        }
        for e in [&d.token_endpoint, &d.jwks_uri] {
            if !e.starts_with("https://") {
                return Err(NetError::Oidc(format!(
                    "{url}: endpoint {e} is not https://"
                )));
            }
        }
        *cached = Some(d.clone());
        Ok(d)
    }

    /// The URL the browser is sent to: the authorization endpoint with `response_type=code`,
    /// `scope=openid email profile`, the client ID, the redirect URI, `state`, `nonce` and the
    /// S256 `code_challenge`.
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<String, NetError> {
        let d = self.discovery().await?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("response_mode", "query")
            .finish();
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", d.authorization_endpoint))
    }

    /// Exchanges `code` (with the PKCE `verifier`) at the token endpoint and validates the ID
    /// token it returns against `nonce`.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: u64,
    ) -> Result<IdClaims, NetError> {
        let d = self.discovery().await?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("client_id", &self.config.client_id)
            .append_pair("client_secret", &self.config.client_secret)
            .append_pair("code_verifier", verifier)
            .finish();
        let (status, answer) = self.post(&d.token_endpoint, body).await?;
        let json: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        if status != 200 {
            let text = |k: &str| {
                json.get(k)
                    .and_then(Value::as_str)
                    .map(|s| s.chars().filter(|c| !c.is_control()).take(300).collect())
                    .unwrap_or_default()
            };
            let (e, d): (String, String) = (text("error"), text("error_description"));
            return Err(NetError::Oidc(format!(
                "the token endpoint refused the code (HTTP {status}): {e} {d}"
            )));
        }
        let Some(id_token) = json.get("id_token").and_then(Value::as_str) else {
            return Err(NetError::Oidc(
                "the token endpoint's answer has no id_token".into(),
            ));
        };
        let jwks = self.jwks(&d, false).await?;
        let check = |jwks: &JwkSet| {
            validate_id_token(
                id_token,
                jwks,
                &d.issuer,
                &self.config.client_id,
                nonce,
                now,
            )
        };
        match check(&jwks) {
            Err(NetError::UnknownKey(_)) => check(&self.jwks(&d, true).await?),
            other => other,
        }
    }

    /// The JWKS, cached unless `refresh`.
    async fn jwks(&self, d: &Discovery, refresh: bool) -> Result<JwkSet, NetError> {
        let mut cached = self.jwks.lock().await;
        if !refresh && let Some(k) = cached.as_ref() {
            return Ok(k.clone());
        }
        let body = self.get(&d.jwks_uri).await?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| NetError::Oidc(format!("{}: not a JWKS: {e}", d.jwks_uri)))?;
        *cached = Some(set.clone());
        Ok(set)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, NetError> {
        let u = self.url(url)?;
        let request =
            http::json_request(&u, None).map_err(|e| NetError::Oidc(format!("{url}: {e}")))?;
        match self.send(&u, request).await {
            Ok((200, body)) => Ok(body),
            Ok((status, _)) => Err(NetError::Oidc(format!("{url}: HTTP {status}"))),
            Err(e) => Err(NetError::Oidc(format!("{url}: {e}"))),
        }
    }

    async fn post(&self, url: &str, body: String) -> Result<(u16, Vec<u8>), NetError> {
        let u = self.url(url)?;
        let request = http::json_request(&u, Some(body))
            .map_err(|e| NetError::Oidc(format!("{url}: {e}")))?;
        self.send(&u, request)
            .await
            .map_err(|e| NetError::Oidc(format!("{url}: {e}")))
    }

    fn url(&self, url: &str) -> Result<HttpUrl, NetError> {
        let u = HttpUrl::parse(url).map_err(|e| NetError::Oidc(format!("invalid URL {e}")))?;
        if !u.tls {
            return Err(NetError::Oidc(format!("{url}: only https:// is allowed")));
        }
        Ok(u)
    }

    async fn send(
        &self,
        url: &HttpUrl,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, Vec<u8>), TransportError> {
        let attempt = Attempt::start(
            TIMEOUT,
            transport::DEFAULT_CONNECT_TIMEOUT,
            &self.config.roots,
        );
        http::send_https(&self.dns, url, request, &attempt, MAX_BODY).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_discovered_issuer_is_the_configured_one_or_the_same_entra_tenant_by_id() {
        let guid = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
        assert!(issuer_matches("https://idp.example", "https://idp.example"));
        assert!(!issuer_matches(
            "https://idp.example",
            "https://evil.example"
        ));
        assert!(!issuer_matches(
            "https://idp.example",
            "https://idp.example/"
        ));
        assert!(issuer_matches(
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
            guid
        ));
        assert!(!issuer_matches(
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
            "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"
        ));
        assert!(!issuer_matches("https://idp.example", guid));
    }

    #[test]
    fn microsoft_issuer_of_a_tenant() {
        assert_eq!(
            microsoft_issuer("contoso.onmicrosoft.com").unwrap(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
        );
        assert!(microsoft_issuer("a/b").is_err());
        assert!(microsoft_issuer("").is_err());
    }

    #[test]
    fn a_token_that_is_not_a_jwt_or_unsigned_is_refused() {
        let jwks = JwkSet { keys: vec![] };
        for t in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
            let e = validate_id_token(t, &jwks, "https://i", "c", "n", 0).unwrap_err();
            assert!(matches!(e, NetError::IdToken(_)), "{t}: {e}");
        }
        // HS256 (a shared secret anyone with the client secret could forge) is refused.
        let hs = "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo";
        let e = validate_id_token(hs, &jwks, "https://i", "c", "n", 0).unwrap_err();
        assert!(e.to_string().contains("HS256"), "{e}");
    }
}
