//! The IMAP4rev1 client's protocol pieces (RFC 3501), without I/O: the `imap://` / `imaps://`
//! URL of a mailbox (RFC 5092, reduced), framing helpers for the reader (literal announcements),
//! the parser of server responses (status responses with their codes, `CAPABILITY`, `SEARCH`,
//! `FETCH` with literals, `EXISTS`), and the encoders a client needs for its commands (quoted
//! strings, modified UTF-7 mailbox names, the SASL PLAIN message), and the OAuth 2.0 SASL pieces:
//! the `XOAUTH2` and `OAUTHBEARER` (RFC 7628) initial responses and the parser of a server's
//! error challenge ([`OAuthMechanism`], [`parse_oauth_challenge`]); and what the responses
//! received during `IDLE` (RFC 2177) mean ([`idle_event`], [`parse_idle_line`],
//! [`idle_period`]).
//!
//! `mailaudit-net::imap` moves the bytes: it reads a response line by line, reads each literal
//! the line announces ([`literal_announced`]) under a size cap, and hands the pieces, as a
//! [`RawResponse`], to [`parse_response`]. Everything here treats the server as hostile: every
//! collection is capped, nesting is limited, and nothing panics on any input (property-tested).

use std::fmt;

/// Longest response line (one text piece between literals, without CRLF) accepted, in octets.
pub const MAX_LINE: usize = 64 * 1024;

/// Most tokens (atoms, strings, parentheses) in one response.
pub const MAX_TOKENS: usize = 100_000;

/// Deepest nesting of parenthesised lists in one response.
pub const MAX_DEPTH: usize = 32;

/// Most literals in one response.
pub const MAX_LITERALS: usize = 64;

/// Why a response (or a URL) was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The response does not follow the grammar of RFC 3501 §9.
    #[error("malformed IMAP response: {why} in {excerpt:?}")]
    Malformed {
        /// What is wrong.
        why: String,
        /// The start of the offending line, printable.
        excerpt: String,
    },
    /// A cap of this module was exceeded.
    #[error("IMAP response exceeds the limit: {0}")]
    TooLarge(String),
    /// A credential that cannot be sent: a bearer token with characters outside RFC 6750's
    /// `b64token`, a user name with control characters. The text never holds the credential.
    #[error("cannot authenticate: {0}")]
    InvalidCredential(String),
    /// A mailbox URL that cannot be used.
    #[error("invalid IMAP URL {url}: {why}")]
    InvalidUrl {
        /// The URL, as given (it never holds a password: one is refused).
        url: String,
        /// What is wrong.
        why: String,
    },
}

fn malformed(why: impl Into<String>, line: &[u8]) -> ProtocolError {
    ProtocolError::Malformed {
        why: why.into(),
        excerpt: printable(&line[..line.len().min(120)]),
    }
}

/// Text from the server made safe to show: invalid UTF-8 replaced, control characters shown as
/// `?`, at most 300 characters.
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(300)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(300).is_some() {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// URL
// ---------------------------------------------------------------------------------------------

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    /// `imaps://`: TLS from the first byte (RFC 8314 §3.2, port 993).
    Implicit,
    /// `imap://`: plaintext connection upgraded with `STARTTLS` (RFC 3501 §6.2.1, port 143).
    StartTls,
}

/// A mailbox to read, from an `imaps://user@host:port/mailbox` URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImapUrl {
    /// `imaps://` or `imap://`.
    pub security: Security,
    /// The user name to log in as (percent-decoded).
    pub user: String,
    /// The host: a DNS name (lower-case) or an IP address (IPv6 without brackets).
    pub host: String,
    /// The port: given, or 993 / 143.
    pub port: u16,
    /// The mailbox name (percent-decoded, UTF-8); `INBOX` when the URL has no path.
    pub mailbox: String,
}

impl fmt::Debug for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImapUrl({self})")
    }
}

/// The canonical form, without password (there never is one): `imaps://user@host:993/INBOX`,
/// with the port always written and the user and mailbox percent-encoded where needed. Used as
/// the mailbox's identity for the stored cursor.
impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            Security::Implicit => "imaps",
            Security::StartTls => "imap",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "{scheme}://{}@{host}:{}/{}",
            percent_encode(&self.user, false),
            self.port,
            percent_encode(&self.mailbox, true)
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` in a path).
fn percent_encode(s: &str, path: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (path && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` made safe to show: control characters removed, and a password in its user
/// information (`user:password@`) replaced with `***`.
pub fn redact(url: &str) -> String {
    let clean: String = url.chars().filter(|c| !c.is_control()).collect();
    let Some((scheme, rest)) = clean.split_once("://") else {
        return clean;
    };
    let Some(at) = rest.rfind('@') else {
        return clean;
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => clean,
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding at {:?}", &s[i..]))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding that is not UTF-8".to_string())
}

impl ImapUrl {
    /// Parses `imaps://user@host[:port][/mailbox]` or `imap://…`.
    ///
    /// RFC 5092 §6: `imapurl = "imap://" iserver ipath-query`, `iserver = [iuserinfo "@"] host
    /// [ ":" port ]`, `enc-user = 1*achar`. The user is required (the client logs in); a password
    /// in the URL is refused, since command lines are visible to other users of the machine
    /// (give it through an environment variable). A `@` inside the user name may be written as is
    /// or as `%40`. The path is the mailbox name, percent-decoded; `;UIDVALIDITY=`, message parts
    /// and queries are not supported.
    pub fn parse(url: &str) -> Result<ImapUrl, ProtocolError> {
        let shown = redact(url);
        let bad = |why: &str| ProtocolError::InvalidUrl {
            url: shown.clone(),
            why: why.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected imaps://USER@HOST[:PORT]/MAILBOX"))?;
        let (security, default_port) = if scheme.eq_ignore_ascii_case("imaps") {
            (Security::Implicit, 993)
        } else if scheme.eq_ignore_ascii_case("imap") {
            (Security::StartTls, 143)
        } else {
            return Err(bad("the scheme must be imaps:// or imap://"));
        };
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("spaces and control characters must be percent-encoded"));
        }
        if rest.contains(['?', '#']) {
            return Err(bad("queries and fragments are not supported"));
        }
        // The authority ends at the first `/` after the last `@` (a user may hold `@` or `/`).
        let at = rest
            .rfind('@')
            .ok_or_else(|| bad("the user name is missing (imaps://USER@HOST/MAILBOX)"))?;
        let (userinfo, after) = (&rest[..at], &rest[at + 1..]);
        let (hostport, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i + 1..]),
            None => (after, ""),
        };
        if userinfo.contains(':') {
            return Err(bad(
                "a password in the URL is not accepted: put it in an environment variable \
                 and name it with --password-env",
            ));
        }
        if userinfo.contains(';') {
            return Err(bad(";AUTH= and other URL parameters are not supported"));
        }
        let user = percent_decode(userinfo).map_err(|e| bad(&e))?;
        if user.is_empty() {
            return Err(bad("empty user name"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (ip, tail) = v6
                .split_once(']')
                .ok_or_else(|| bad("unterminated IPv6 literal"))?;
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("invalid IPv6 address"));
            }
            (ip.to_string(), tail)
        } else {
            match hostport.split_once(':') {
                Some((h, _)) => (h.to_ascii_lowercase(), &hostport[h.len()..]),
                None => (hostport.to_ascii_lowercase(), ""),
            }
        };
        let port = match port.strip_prefix(':') {
            None if port.is_empty() => default_port,
            None => return Err(bad("unexpected text after the host")),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && (host.contains(':')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
        if !host_ok {
            return Err(bad("invalid host name"));
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        let mailbox = if path.is_empty() {
            "INBOX".to_string()
        } else {
            if path.contains(';') {
                return Err(bad(";UIDVALIDITY= and message parts are not supported"));
            }
            percent_decode(path).map_err(|e| bad(&e))?
        };
        if mailbox.chars().any(char::is_control) {
            return Err(bad("control characters in the mailbox name"));
        }
        Ok(ImapUrl {
            security,
            user,
            host,
            port,
            mailbox,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Command encoding
// ---------------------------------------------------------------------------------------------

/// A string argument as a quoted string, or `None` when it cannot be one and must be sent as a
/// literal.
///
/// RFC 3501 §4.3: "A quoted string is a sequence of zero or more 7-bit characters, excluding CR
/// and LF, with double quote (<">) characters at each end." §9: `quoted-specials = DQUOTE /
/// "\"` are escaped with a backslash.
pub fn quoted(s: &str) -> Option<String> {
    if !s
        .bytes()
        .all(|b| (1..0x80).contains(&b) && b != b'\r' && b != b'\n')
    {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// A mailbox name in IMAP's modified UTF-7.
///
/// RFC 3501 §5.1.3: "printable US-ASCII characters, except for "&", represent themselves; that
/// is, characters with octet values 0x20-0x25 and 0x27-0x7e. The character "&" (0x26) is
/// represented by the two-octet sequence "&-". All other characters (octet values 0x00-0x1f and
/// 0x7f-0xff) are represented in modified BASE64, with a further modification from [UTF-7]
/// that "," is used instead of "/"." The base64 encodes UTF-16 (big-endian), starts with `&` and
/// ends with `-`.
pub fn encode_mailbox(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&base64(&bytes, b',', false));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Base64 (RFC 4648 §4) with `c63` as the 64th character, padded or not.
fn base64(bytes: &[u8], c63: u8, pad: bool) -> String {
    const ALPHABET: &[u8; 63] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+";
    let sym = |i: u32| -> char {
        let i = (i & 63) as usize;
        char::from(if i == 63 { c63 } else { ALPHABET[i] })
    };
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        let symbols = chunk.len() + 1;
        for k in 0..4 {
            if k < symbols {
                out.push(sym(n >> (18 - 6 * k)));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// The initial response of `AUTHENTICATE PLAIN`, base64-encoded.
///
/// RFC 4616 §2: "message = [authzid] UTF8NUL authcid UTF8NUL passwd"; RFC 3501 §6.2.2: the
/// client's responses are "encoded in BASE64".
pub fn sasl_plain(user: &str, password: &str) -> String {
    let mut m = Vec::with_capacity(user.len() + password.len() + 2);
    m.push(0);
    m.extend_from_slice(user.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    base64(&m, b'/', true)
}

// ---------------------------------------------------------------------------------------------
// SASL with OAuth 2.0 bearer tokens: XOAUTH2 and OAUTHBEARER
// ---------------------------------------------------------------------------------------------

/// The SASL mechanisms that carry an OAuth 2.0 bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OAuthMechanism {
    /// `XOAUTH2`: Google's and Microsoft's mechanism (the one Exchange Online takes).
    XOAuth2,
    /// `OAUTHBEARER` (RFC 7628): the standard one.
    OAuthBearer,
}

impl OAuthMechanism {
    /// The mechanism name, as in `AUTHENTICATE <name>` and `AUTH=<name>`.
    pub fn name(self) -> &'static str {
        match self {
            OAuthMechanism::XOAuth2 => "XOAUTH2",
            OAuthMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism to use with a server announcing `capabilities` (upper-case, as
    /// [`Response::Capability`] holds them): `XOAUTH2` when offered (Exchange Online offers only
    /// it), else `OAUTHBEARER`, else none.
    pub fn choose(capabilities: &[String]) -> Option<OAuthMechanism> {
        [OAuthMechanism::XOAuth2, OAuthMechanism::OAuthBearer]
            .into_iter()
            .find(|m| {
                capabilities
                    .iter()
                    .any(|c| c.strip_prefix("AUTH=") == Some(m.name()))
            })
    }

    /// The client's answer to an error challenge (base64, possibly empty): what the server
    /// waits for before it sends its tagged `NO`.
    ///
    /// XOAUTH2 (Google's "OAuth 2.0 Mechanism" page): "If the server returns an error
    /// challenge [...] the client must send an empty response to the challenge". RFC 7628
    /// §3.2.3: "the client MUST then send either an additional client response consisting of a
    /// single %x01 (control A) character to the server in order to allow the server to finish
    /// the exchange or a SASL abort message".
    pub fn error_acknowledgement(self) -> &'static str {
        match self {
            OAuthMechanism::XOAuth2 => "",
            // base64 of %x01.
            OAuthMechanism::OAuthBearer => "AQ==",
        }
    }

    /// The initial client response carrying `token` for `user`, base64-encoded; `host` and
    /// `port` are where the client connected (OAUTHBEARER sends them, XOAUTH2 does not).
    pub fn initial_response(
        self,
        user: &str,
        host: &str,
        port: u16,
        token: &str,
    ) -> Result<String, ProtocolError> {
        match self {
            OAuthMechanism::XOAuth2 => sasl_xoauth2(user, token),
            OAuthMechanism::OAuthBearer => sasl_oauthbearer(user, host, port, token),
        }
    }
}

impl fmt::Display for OAuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks that `token` is a bearer token as RFC 6750 §2.1 defines it: "b64token = 1*( ALPHA /
/// DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="". Anything else could break the SASL
/// framing (a `%x01` ends a key-value pair) or the command line; the token itself is never
/// part of the error.
pub fn check_bearer_token(token: &str) -> Result<(), ProtocolError> {
    let body = token.trim_end_matches('=');
    if body.is_empty() {
        return Err(ProtocolError::InvalidCredential(
            "the access token is empty".into(),
        ));
    }
    if let Some(pos) = body
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
    {
        return Err(ProtocolError::InvalidCredential(format!(
            "the access token holds a character a bearer token cannot hold (RFC 6750 §2.1), \
             at position {pos}"
        )));
    }
    Ok(())
}

/// The user name as a SASL key-value: no control characters (`%x01` separates pairs) and not
/// empty.
fn check_sasl_user(user: &str) -> Result<(), ProtocolError> {
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(ProtocolError::InvalidCredential(
            "the user name is empty or holds control characters".into(),
        ));
    }
    Ok(())
}

/// The initial response of `AUTHENTICATE XOAUTH2`, base64-encoded.
///
/// Microsoft, "Authenticate an IMAP, POP or SMTP connection using OAuth": "SASL XOAUTH2
/// encodes the username, access token together in the following format:
/// `base64("user=" + userName + "^Aauth=Bearer " + accessToken + "^A^A")`" where "^A" is
/// Control+A (`%x01`). Google's "OAuth 2.0 Mechanism" page defines the same message
/// ("base64("user=" {User} "^Aauth=Bearer " {Access Token} "^A^A")").
pub fn sasl_xoauth2(user: &str, token: &str) -> Result<String, ProtocolError> {
    check_sasl_user(user)?;
    check_bearer_token(token)?;
    let message = format!("user={user}\x01auth=Bearer {token}\x01\x01");
    Ok(base64(message.as_bytes(), b'/', true))
}

/// The initial response of `AUTHENTICATE OAUTHBEARER`, base64-encoded.
///
/// RFC 7628 §3.1: "client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep", "kvsep = %x01",
/// "kvpair = key "=" value kvsep"; the keys used are "auth: The payload that would be in the
/// HTTP Authorization header if this OAuth exchange was being carried out over HTTP", "host:
/// Contains the host name to which the client connected" and "port: Contains the destination
/// port that the client connected to, represented as a decimal positive integer string
/// without leading zeros". The GS2 header (RFC 5801 §4) is `n,a=<authzid>,`: no channel
/// binding, the user as authorization identity, with "," and "=" written "=2C" and "=3D"
/// (RFC 5801: "saslname [...] encoded as "=2C" and "=3D" respectively").
pub fn sasl_oauthbearer(
    user: &str,
    host: &str,
    port: u16,
    token: &str,
) -> Result<String, ProtocolError> {
    check_sasl_user(user)?;
    check_bearer_token(token)?;
    if host.is_empty() || host.chars().any(char::is_control) {
        return Err(ProtocolError::InvalidCredential(
            "the host name is empty or holds control characters".into(),
        ));
    }
    let authzid = user.replace('=', "=3D").replace(',', "=2C");
    let message =
        format!("n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01");
    Ok(base64(message.as_bytes(), b'/', true))
}

/// What a server said when it refused a bearer token, from its error challenge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuthFailure {
    /// `status`: an HTTP status (`401`, XOAUTH2) or an OAuth error code (`invalid_token`,
    /// OAUTHBEARER).
    pub status: Option<String>,
    /// `scope`: the scope the token would need.
    pub scope: Option<String>,
    /// `schemes` (XOAUTH2): the authentication schemes the server takes.
    pub schemes: Option<String>,
    /// `openid-configuration` (OAUTHBEARER): where the server's authorization server is
    /// described.
    pub openid_configuration: Option<String>,
}

impl fmt::Display for OAuthFailure {
    /// `status 401, scope mail`: the members present, printable; `no details` when none is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("status", &self.status),
            ("scope", &self.scope),
            ("schemes", &self.schemes),
            ("openid-configuration", &self.openid_configuration),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| format!("{k} {}", printable(v.as_bytes())))
        })
        .collect();
        if parts.is_empty() {
            f.write_str("no details")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Most octets of an error challenge decoded.
const MAX_CHALLENGE: usize = 4096;

/// Parses the error challenge a server sends (`+ <base64>`) instead of its tagged answer when
/// it refuses a token. Anything that is not base64 JSON gives an [`OAuthFailure`] with no
/// details: the challenge only explains a refusal that the tagged `NO` makes final.
///
/// RFC 7628 §3.2.2: "The server error response is a JSON [RFC7159] formatted message [...]
/// status (REQUIRED): The authorization error code. [...] scope (OPTIONAL): An OAuth scope
/// that is valid to access the service. [...] openid-configuration (OPTIONAL): The URL for a
/// document following the OpenID Provider Configuration Information schema". Google's XOAUTH2
/// page: "the server responds with [...] a base64-encoded JSON object" such as
/// `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`.
pub fn parse_oauth_challenge(text: &str) -> OAuthFailure {
    let text = text.trim();
    if text.len() > MAX_CHALLENGE * 4 / 3 + 4 {
        return OAuthFailure::default();
    }
    let Some(bytes) = base64_decode(text) else {
        return OAuthFailure::default();
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(&bytes)
    else {
        return OAuthFailure::default();
    };
    let member = |k: &str| -> Option<String> {
        match map.get(k)? {
            serde_json::Value::String(s) => Some(s.chars().take(200).collect()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    OAuthFailure {
        status: member("status"),
        scope: member("scope"),
        schemes: member("schemes"),
        openid_configuration: member("openid-configuration"),
    }
}

/// Decodes standard padded or unpadded base64 (RFC 4648 §4); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for b in body.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone sixth bit group cannot end base64.
    (bits < 6).then_some(out)
}

// ---------------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------------

/// The size of the literal a response line announces at its end (`{N}`), if any.
///
/// RFC 3501 §4.3: "A literal is a sequence of zero or more octets (including CR and LF),
/// prefix-quoted with an octet count in the form of an open brace ("{"), the number of octets,
/// close brace ("}"), and CRLF. [...] In the case of literals transmitted from server to
/// client, the CRLF is immediately followed by the octet data." `line` is without its CRLF.
/// A `{` in the middle of a line is just text; an announcement with a count that is not a
/// number is an error.
pub fn literal_announced(line: &[u8]) -> Result<Option<u64>, ProtocolError> {
    let Some(body) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = body.iter().rposition(|&b| b == b'{') else {
        return Ok(None);
    };
    let digits = &body[open + 1..];
    // `{` inside resp-text (e.g. "* OK {not a literal}") is not followed by digits only.
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        if digits.iter().all(|b| b.is_ascii_digit() || *b == b'+') && !digits.is_empty() {
            return Err(malformed("non-synchronizing literal from the server", line));
        }
        return Ok(None);
    }
    if digits.len() > 19 {
        return Err(ProtocolError::TooLarge(format!(
            "literal of {} octets announced",
            printable(digits)
        )));
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| malformed("bad literal count", line))
}

/// One response as read from the wire: its text pieces (lines without CRLF) and the literals
/// between them. `lines[i]` ends with the announcement of `literals[i]`; there is one more line
/// than there are literals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawResponse {
    /// The text pieces.
    pub lines: Vec<Vec<u8>>,
    /// The literals' octets.
    pub literals: Vec<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// The condition of a status response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `OK`.
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: protocol error.
    Bad,
    /// `PREAUTH` (greeting only).
    Preauth,
    /// `BYE`: the server is closing the connection.
    Bye,
}

impl Status {
    fn parse(word: &[u8]) -> Option<Status> {
        Some(match word.to_ascii_uppercase().as_slice() {
            b"OK" => Status::Ok,
            b"NO" => Status::No,
            b"BAD" => Status::Bad,
            b"PREAUTH" => Status::Preauth,
            b"BYE" => Status::Bye,
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Preauth => "PREAUTH",
            Status::Bye => "BYE",
        })
    }
}

/// A response code (RFC 3501 §7.1), the bracketed part of a status response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// `[UIDVALIDITY n]`.
    UidValidity(u32),
    /// `[UIDNEXT n]`.
    UidNext(u32),
    /// `[CAPABILITY ...]`, upper-cased.
    Capability(Vec<String>),
    /// `[READ-ONLY]`.
    ReadOnly,
    /// `[READ-WRITE]`.
    ReadWrite,
    /// Any other code, its text as sent (printable).
    Other(String),
}

/// A status response's condition, code and human-readable text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusText {
    /// The condition.
    pub status: Status,
    /// The response code, if any.
    pub code: Option<Code>,
    /// The text (printable).
    pub text: String,
}

/// The data of one `FETCH` response, the items this client asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetch {
    /// The message sequence number.
    pub seq: u32,
    /// `UID`.
    pub uid: Option<u32>,
    /// `RFC822.SIZE`.
    pub size: Option<u64>,
    /// `BODY[]` (also as `BODY[]<0>` or `RFC822`): the whole message.
    pub body: Option<Vec<u8>>,
    /// `FLAGS`.
    pub flags: Vec<String>,
}

/// One server response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// `+ text`: the server waits for the rest of the command.
    Continue(String),
    /// `tag OK|NO|BAD text`: a command completed.
    Tagged {
        /// The command's tag.
        tag: String,
        /// Its outcome.
        status: StatusText,
    },
    /// `* OK|NO|BAD|PREAUTH|BYE [code] text`.
    Status(StatusText),
    /// `* CAPABILITY ...`, upper-cased.
    Capability(Vec<String>),
    /// `* SEARCH n n n`.
    Search(Vec<u32>),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n FETCH (...)`.
    Fetch(Fetch),
    /// Any other untagged response (`FLAGS`, `RECENT`, `EXPUNGE`, `LIST`, ...): its name.
    Other(String),
}

/// A token of the response grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Atom(Vec<u8>),
    Str(Vec<u8>),
}

/// A parsed value: an atom, a string (quoted or literal), or a parenthesised list.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Atom(Vec<u8>),
    Str(Vec<u8>),
    List(Vec<Value>),
}

/// Splits `raw` from byte `start` of its first line into tokens. Literals become strings.
fn tokenize(raw: &RawResponse, start: usize) -> Result<Vec<Token>, ProtocolError> {
    if raw.literals.len() > MAX_LITERALS {
        return Err(ProtocolError::TooLarge(format!(
            "more than {MAX_LITERALS} literals"
        )));
    }
    let mut tokens = Vec::new();
    for (i, line) in raw.lines.iter().enumerate() {
        let mut p = if i == 0 { start.min(line.len()) } else { 0 };
        while p < line.len() {
            if tokens.len() >= MAX_TOKENS {
                return Err(ProtocolError::TooLarge(format!(
                    "more than {MAX_TOKENS} tokens"
                )));
            }
            match line[p] {
                b' ' => p += 1,
                b'(' => {
                    tokens.push(Token::Open);
                    p += 1;
                }
                b')' => {
                    tokens.push(Token::Close);
                    p += 1;
                }
                b'"' => {
                    let mut s = Vec::new();
                    p += 1;
                    loop {
                        match line.get(p) {
                            None => return Err(malformed("unterminated quoted string", line)),
                            Some(b'"') => break,
                            Some(b'\\') => {
                                let c = line
                                    .get(p + 1)
                                    .ok_or_else(|| malformed("backslash at end of line", line))?;
                                s.push(*c);
                                p += 2;
                            }
                            Some(c) => {
                                s.push(*c);
                                p += 1;
                            }
                        }
                    }
                    p += 1;
                    tokens.push(Token::Str(s));
                }
                b'{' => {
                    // Only valid as the announcement at the end of this line.
                    if literal_announced(&line[p..])?.is_none() {
                        return Err(malformed("`{` that is not a literal", line));
                    }
                    let lit = raw
                        .literals
                        .get(i)
                        .ok_or_else(|| malformed("literal announced but missing", line))?;
                    tokens.push(Token::Str(lit.clone()));
                    p = line.len();
                }
                _ => {
                    let begin = p;
                    let mut bracket = 0usize;
                    while p < line.len() {
                        match line[p] {
                            b'[' => bracket += 1,
                            b']' => bracket = bracket.saturating_sub(1),
                            b' ' | b'(' | b')' | b'"' | b'{' if bracket == 0 => break,
                            _ => {}
                        }
                        p += 1;
                    }
                    tokens.push(Token::Atom(line[begin..p].to_vec()));
                }
            }
        }
    }
    Ok(tokens)
}

/// Builds values from tokens, lists nested at most [`MAX_DEPTH`] deep.
fn values(tokens: Vec<Token>, line: &[u8]) -> Result<Vec<Value>, ProtocolError> {
    let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
    for t in tokens {
        match t {
            Token::Open => {
                if stack.len() > MAX_DEPTH {
                    return Err(ProtocolError::TooLarge(format!(
                        "lists nested deeper than {MAX_DEPTH}"
                    )));
                }
                stack.push(Vec::new());
            }
            Token::Close => {
                if stack.len() < 2 {
                    return Err(malformed("unbalanced `)`", line));
                }
                let list = stack.pop().unwrap_or_default();
                if let Some(top) = stack.last_mut() {
                    top.push(Value::List(list));
                }
            }
            Token::Atom(a) => stack
                .last_mut()
                .into_iter()
                .for_each(|t| t.push(Value::Atom(a.clone()))),
            Token::Str(s) => stack
                .last_mut()
                .into_iter()
                .for_each(|t| t.push(Value::Str(s.clone()))),
        }
    }
    if stack.len() != 1 {
        return Err(malformed("unbalanced `(`", line));
    }
    Ok(stack.pop().unwrap_or_default())
}

fn number<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses `resp-text = ["[" resp-text-code "]" SP] text` (RFC 3501 §9).
fn status_text(status: Status, rest: &[u8]) -> StatusText {
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    if let Some(inner) = rest.strip_prefix(b"[")
        && let Some(end) = inner.iter().position(|&b| b == b']')
    {
        let code_text = &inner[..end];
        let text = inner[end + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&inner[end + 1..]);
        let mut words = code_text.split(|&b| b == b' ');
        let name = words.next().unwrap_or_default().to_ascii_uppercase();
        let arg = words.next().unwrap_or_default();
        let code = match name.as_slice() {
            b"UIDVALIDITY" => number(arg).map(Code::UidValidity),
            b"UIDNEXT" => number(arg).map(Code::UidNext),
            b"READ-ONLY" => Some(Code::ReadOnly),
            b"READ-WRITE" => Some(Code::ReadWrite),
            b"CAPABILITY" => Some(Code::Capability(capabilities(&code_text[name.len()..]))),
            _ => None,
        }
        .unwrap_or_else(|| Code::Other(printable(code_text)));
        return StatusText {
            status,
            code: Some(code),
            text: printable(text),
        };
    }
    StatusText {
        status,
        code: None,
        text: printable(rest),
    }
}

fn capabilities(text: &[u8]) -> Vec<String> {
    text.split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .take(1000)
        .map(|w| printable(w).to_ascii_uppercase())
        .collect()
}

/// Parses one response.
///
/// RFC 3501 §2.2.2: "The server completion result response indicates the success or failure of
/// the operation. It is tagged with the same tag as the client command which began the
/// operation." §7: "Status responses are OK, NO, BAD, PREAUTH and BYE. [...] Server data [...]
/// are always untagged." §7.5: "The command continuation request response is indicated by a
/// "+" token instead of a tag."
pub fn parse_response(raw: &RawResponse) -> Result<Response, ProtocolError> {
    let first: &[u8] = raw.lines.first().map(Vec::as_slice).unwrap_or_default();
    if raw.lines.len() != raw.literals.len() + 1 {
        return Err(malformed("literals and lines do not match", first));
    }
    if let Some(rest) = first.strip_prefix(b"+") {
        return Ok(Response::Continue(printable(
            rest.strip_prefix(b" ").unwrap_or(rest),
        )));
    }
    let (tag, rest) = match first.iter().position(|&b| b == b' ') {
        Some(i) => (&first[..i], &first[i + 1..]),
        None => return Err(malformed("no space after the tag", first)),
    };
    if tag.is_empty() {
        return Err(malformed("empty tag", first));
    }
    let (word, after) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &[][..]),
    };
    if tag != b"*" {
        let status = Status::parse(word)
            .filter(|s| matches!(s, Status::Ok | Status::No | Status::Bad))
            .ok_or_else(|| malformed("tagged response without OK, NO or BAD", first))?;
        return Ok(Response::Tagged {
            tag: printable(tag),
            status: status_text(status, after),
        });
    }
    if let Some(status) = Status::parse(word) {
        return Ok(Response::Status(status_text(status, after)));
    }
    let upper = word.to_ascii_uppercase();
    match upper.as_slice() {
        b"CAPABILITY" => return Ok(Response::Capability(capabilities(after))),
        b"SEARCH" => {
            let mut uids = Vec::new();
            for w in after.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
                // ESEARCH-style modifiers such as "(MODSEQ 5)" are not asked for.
                uids.push(
                    number(w)
                        .ok_or_else(|| malformed("SEARCH result that is not a number", first))?,
                );
                if uids.len() > MAX_TOKENS {
                    return Err(ProtocolError::TooLarge(format!(
                        "more than {MAX_TOKENS} SEARCH results"
                    )));
                }
            }
            return Ok(Response::Search(uids));
        }
        _ => {}
    }
    if let Some(n) = number::<u32>(word) {
        let after = after.strip_prefix(b" ").unwrap_or(after);
        let (kind, data_start) = match after.iter().position(|&b| b == b' ') {
            Some(i) => (after[..i].to_ascii_uppercase(), i + 1),
            None => (after.to_ascii_uppercase(), after.len()),
        };
        return match kind.as_slice() {
            b"EXISTS" => Ok(Response::Exists(n)),
            b"FETCH" => {
                let offset = first.len() - after.len() + data_start;
                fetch(n, raw, offset).map(Response::Fetch)
            }
            _ => Ok(Response::Other(printable(&kind))),
        };
    }
    if upper.is_empty() {
        return Err(malformed("empty untagged response", first));
    }
    Ok(Response::Other(printable(&upper)))
}

/// Parses `msg-att` of `* n FETCH (...)` (RFC 3501 §7.4.2): pairs of item name and value.
fn fetch(seq: u32, raw: &RawResponse, start: usize) -> Result<Fetch, ProtocolError> {
    let first = raw.lines.first().map(Vec::as_slice).unwrap_or_default();
    let tokens = tokenize(raw, start)?;
    let mut vals = values(tokens, first)?;
    let Some(Value::List(items)) = vals.pop().filter(|_| vals.is_empty()) else {
        return Err(malformed("FETCH data is not one parenthesised list", first));
    };
    let mut f = Fetch {
        seq,
        ..Fetch::default()
    };
    let mut it = items.into_iter();
    while let Some(name) = it.next() {
        let Value::Atom(name) = name else {
            return Err(malformed("FETCH item name is not an atom", first));
        };
        let value = it
            .next()
            .ok_or_else(|| malformed("FETCH item without a value", first))?;
        let name = name.to_ascii_uppercase();
        match (name.as_slice(), value) {
            (b"UID", Value::Atom(v)) => {
                f.uid = Some(number(&v).ok_or_else(|| malformed("UID is not a number", first))?);
            }
            (b"RFC822.SIZE", Value::Atom(v)) => {
                f.size = Some(
                    number(&v).ok_or_else(|| malformed("RFC822.SIZE is not a number", first))?,
                );
            }
            (b"BODY[]" | b"BODY[]<0>" | b"RFC822" | b"BINARY[]", Value::Str(s)) => f.body = Some(s),
            (b"BODY[]" | b"BODY[]<0>" | b"RFC822", Value::Atom(a))
                if a.eq_ignore_ascii_case(b"NIL") =>
            {
                f.body = Some(Vec::new());
            }
            (b"FLAGS", Value::List(flags)) => {
                f.flags = flags
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Atom(a) => Some(printable(&a)),
                        _ => None,
                    })
                    .collect();
            }
            (b"UID" | b"RFC822.SIZE" | b"FLAGS", _) => {
                return Err(malformed(
                    format!(
                        "FETCH item {} has a value of the wrong type",
                        printable(&name)
                    ),
                    first,
                ));
            }
            // Other items (INTERNALDATE, MODSEQ, ...) are not needed.
            _ => {}
        }
    }
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// IDLE (RFC 2177)
// ---------------------------------------------------------------------------------------------

/// The longest a client stays in one IDLE before ending it and issuing another.
///
/// RFC 2177 §3: "The server MAY consider a client inactive if it has an IDLE command running,
/// and if such a server has an inactivity timeout it MAY log the client off implicitly at the
/// end of its timeout period. Because of that, clients using IDLE are advised to terminate the
/// IDLE and re-issue it at least every 29 minutes to avoid being logged off."
pub const IDLE_REISSUE: std::time::Duration = std::time::Duration::from_secs(29 * 60);

/// The line that ends an IDLE command (RFC 2177 §3: `idle = "IDLE" CRLF "DONE"`).
pub const IDLE_DONE: &str = "DONE";

/// How long one IDLE may last for a client that polls every `interval`: the interval, but
/// never more than [`IDLE_REISSUE`].
pub fn idle_period(interval: std::time::Duration) -> std::time::Duration {
    interval.min(IDLE_REISSUE)
}

/// What a server response means to a client in (or entering) IDLE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdleEvent {
    /// `+ idling`: the server accepted the command and now sends updates as they happen.
    Accepted,
    /// `* n EXISTS`: the mailbox now holds `n` messages (new mail).
    Exists(u32),
    /// `* BYE text`: the server is closing the connection.
    Bye(String),
    /// The tagged response to the IDLE command: `OK` after `DONE`, or `NO`/`BAD` (refused).
    Finished(StatusText),
    /// Any other untagged response (`EXPUNGE`, `FETCH` flag updates, `RECENT`, `* OK Still
    /// here`): nothing to act on.
    Ignored,
}

/// Classifies `response`, received while the IDLE command tagged `idle_tag` runs.
///
/// RFC 2177 §3: "The IDLE command is sent from the client to the server when the client is
/// ready to accept unsolicited mailbox update messages. The server requests a response to the
/// IDLE command using the continuation ("+") response. The IDLE command remains active until
/// the client responds to the continuation, and as long as an IDLE command is active, the
/// server is now free to send untagged EXISTS, EXPUNGE, and other messages at any time. [...]
/// The IDLE command is terminated by the receipt of a "DONE" continuation from the client;
/// such response satisfies the server's continuation request. At that point, the server MAY
/// send any remaining queued untagged responses and then MUST immediately send the tagged
/// response to the IDLE command and prepare to process other commands."
///
/// A tagged response with another tag is an error: no other command is running.
pub fn idle_event(response: Response, idle_tag: &str) -> Result<IdleEvent, ProtocolError> {
    Ok(match response {
        Response::Continue(_) => IdleEvent::Accepted,
        Response::Exists(n) => IdleEvent::Exists(n),
        Response::Status(StatusText {
            status: Status::Bye,
            text,
            ..
        }) => IdleEvent::Bye(text),
        Response::Tagged { tag, status } if tag == idle_tag => IdleEvent::Finished(status),
        Response::Tagged { tag, status } => {
            return Err(ProtocolError::Malformed {
                why: format!(
                    "a tagged response for {tag:?} while only IDLE ({idle_tag}) was running"
                ),
                excerpt: printable(format!("{tag} {} {}", status.status, status.text).as_bytes()),
            });
        }
        _ => IdleEvent::Ignored,
    })
}

/// Parses and classifies one response line (without CRLF) received during IDLE: a line that
/// announces a literal is refused here (the reader hands such responses, with their
/// literals, to [`parse_response`] and then [`idle_event`]).
pub fn parse_idle_line(line: &[u8], idle_tag: &str) -> Result<IdleEvent, ProtocolError> {
    if line.len() > MAX_LINE {
        return Err(ProtocolError::TooLarge(format!(
            "a response line longer than {MAX_LINE} bytes"
        )));
    }
    if literal_announced(line)?.is_some() {
        return Err(malformed("a literal in a single-line response", line));
    }
    let raw = RawResponse {
        lines: vec![line.to_vec()],
        literals: Vec::new(),
    };
    idle_event(parse_response(&raw)?, idle_tag)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn raw(lines: &[&[u8]], literals: &[&[u8]]) -> RawResponse {
        RawResponse {
            lines: lines.iter().map(|l| l.to_vec()).collect(),
            literals: literals.iter().map(|l| l.to_vec()).collect(),
        }
    }

    fn one(line: &str) -> Result<Response, ProtocolError> {
        parse_response(&raw(&[line.as_bytes()], &[]))
    }

    #[test]
    fn status_responses_and_codes() {
        assert_eq!(
            one("* OK [UIDVALIDITY 1795880197] UIDs valid").unwrap(),
            Response::Status(StatusText {
                status: Status::Ok,
                code: Some(Code::UidValidity(1_795_880_197)),
                text: "UIDs valid".into()
            })
        );
        assert_eq!(
            one("a1 OK [READ-ONLY] Examine completed").unwrap(),
            Response::Tagged {
                tag: "a1".into(),
                status: StatusText {
                    status: Status::Ok,
                    code: Some(Code::ReadOnly),
                    text: "Examine completed".into()
                }
            }
        );
        let Response::Status(s) =
            one("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            s.code,
            Some(Code::Capability(vec![
                "IMAP4REV1".into(),
                "STARTTLS".into(),
                "AUTH=PLAIN".into()
            ]))
        );
        assert!(matches!(
            one("a2 NO [AUTHENTICATIONFAILED] Authentication failed.").unwrap(),
            Response::Tagged { status: StatusText { status: Status::No, code: Some(Code::Other(c)), .. }, .. } if c == "AUTHENTICATIONFAILED"
        ));
        assert!(matches!(
            one("* BYE Server shutting down.").unwrap(),
            Response::Status(StatusText {
                status: Status::Bye,
                ..
            })
        ));
        assert_eq!(one("+ ").unwrap(), Response::Continue(String::new()));
        assert_eq!(one("+").unwrap(), Response::Continue(String::new()));
    }

    #[test]
    fn untagged_data() {
        assert_eq!(one("* 23 EXISTS").unwrap(), Response::Exists(23));
        assert_eq!(
            one("* SEARCH 2 84 882").unwrap(),
            Response::Search(vec![2, 84, 882])
        );
        assert_eq!(one("* SEARCH").unwrap(), Response::Search(vec![]));
        assert_eq!(one("* 3 RECENT").unwrap(), Response::Other("RECENT".into()));
        assert_eq!(
            one("* FLAGS (\\Answered \\Seen)").unwrap(),
            Response::Other("FLAGS".into())
        );
        assert_eq!(
            one("* CAPABILITY IMAP4rev1 MOVE").unwrap(),
            Response::Capability(vec!["IMAP4REV1".into(), "MOVE".into()])
        );
    }

    #[test]
    fn fetch_with_literal() {
        let body = b"Subject: x\r\n\r\n{5}\r\n) \"quoted\" (";
        let r = parse_response(&raw(
            &[
                b"* 12 FETCH (UID 34 RFC822.SIZE 44 FLAGS (\\Seen) BODY[] {33}",
                b")",
            ],
            &[body],
        ))
        .unwrap();
        assert_eq!(
            r,
            Response::Fetch(Fetch {
                seq: 12,
                uid: Some(34),
                size: Some(44),
                body: Some(body.to_vec()),
                flags: vec!["\\Seen".into()],
            })
        );
        // Items in another order, the body after the literal's closing text.
        let r = parse_response(&raw(&[b"* 1 FETCH (BODY[] {3}", b" UID 7)"], &[b"abc"])).unwrap();
        assert!(
            matches!(r, Response::Fetch(Fetch { uid: Some(7), body: Some(ref b), .. }) if b == b"abc")
        );
        // A quoted body and an unrequested item with brackets and spaces.
        let r =
            one("* 2 FETCH (UID 9 BODY[HEADER.FIELDS (FROM TO)] \"x\" BODY[] \"a\\\"b\")").unwrap();
        assert!(
            matches!(r, Response::Fetch(Fetch { uid: Some(9), body: Some(ref b), .. }) if b == b"a\"b")
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            "",
            "*",
            "a1 MAYBE done",
            "* 1 FETCH (UID x)",
            "* 1 FETCH (UID 3",
            "* 1 FETCH UID 3)",
            "* 1 FETCH (UID)",
            "* 1 FETCH (UID 1 BODY[] {2}",
            "* SEARCH 1 two",
            "* 1 FETCH (UID \"unterminated)",
        ] {
            assert!(one(bad).is_err(), "{bad:?}");
        }
        let deep = format!("* 1 FETCH {}{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(one(&deep), Err(ProtocolError::TooLarge(_))));
    }

    #[test]
    fn literal_announcements() {
        for (line, want) in [
            (&b"* 1 FETCH (BODY[] {123}"[..], Ok(Some(123))),
            (b"* OK no literal", Ok(None)),
            (b"* OK {text}", Ok(None)),
            (b"* OK {}", Ok(None)),
            (b"{0}", Ok(Some(0))),
        ] {
            assert_eq!(literal_announced(line), want, "{line:?}");
        }
        assert!(literal_announced(b"* 1 FETCH (BODY[] {99999999999999999999999}").is_err());
        assert!(literal_announced(b"* 1 FETCH (BODY[] {5+}").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("INBOX").as_deref(), Some("\"INBOX\""));
        assert_eq!(quoted("a\"b\\c").as_deref(), Some("\"a\\\"b\\\\c\""));
        assert_eq!(quoted("pässword"), None);
        assert_eq!(quoted("a\r\nb"), None);
        assert_eq!(quoted("a\0b"), None);
    }

    #[test]
    fn rfc3501_section_5_1_3_modified_utf7() {
        for (name, enc) in [
            ("INBOX", "INBOX"),
            ("Tom & Jerry", "Tom &- Jerry"),
            // RFC 3501 §5.1.3's example.
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Rapports DMARC/é", "Rapports DMARC/&AOk-"),
        ] {
            assert_eq!(encode_mailbox(name), enc);
        }
    }

    #[test]
    fn rfc4616_plain() {
        // "\0tim\0tanstaaftanstaaf" from RFC 4616 §4's example.
        assert_eq!(
            sasl_plain("tim", "tanstaaftanstaaf"),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
        assert_eq!(base64(b"f", b'/', true), "Zg==");
        assert_eq!(base64(b"fo", b'/', true), "Zm8=");
        assert_eq!(base64(b"foo", b'/', true), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff], b'/', true), "+/8=");
    }

    /// The messages decoded again, for reading the tests.
    fn decoded(b64: &str) -> String {
        String::from_utf8(base64_decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn xoauth2_initial_response() {
        // Google's XOAUTH2 page: user "someuser@example.com", token "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        // "base64 encoded: dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==".
        assert_eq!(
            sasl_xoauth2(
                "someuser@example.com",
                "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
            )
            .unwrap(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        assert_eq!(
            decoded(&sasl_xoauth2("dmarc@contoso.test", "eyJ0.eXA-_~+/x==").unwrap()),
            "user=dmarc@contoso.test\x01auth=Bearer eyJ0.eXA-_~+/x==\x01\x01"
        );
    }

    #[test]
    fn rfc7628_section_4_1_oauthbearer_initial_response() {
        // RFC 7628 §4.1's example: "n,a=user@example.com,^Ahost=server.example.com^Aport=143^A
        // auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==^A^A".
        let ir = sasl_oauthbearer(
            "user@example.com",
            "server.example.com",
            143,
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        )
        .unwrap();
        assert_eq!(
            decoded(&ir),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer \
             vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        // RFC 5801's saslname escapes.
        let ir = sasl_oauthbearer("a,b=c", "h", 993, "t").unwrap();
        assert!(decoded(&ir).starts_with("n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01"));
    }

    #[test]
    fn credentials_that_would_break_the_framing_are_refused_without_echo() {
        for (user, token) in [
            ("u", ""),
            ("u", "==="),
            ("u", "sec ret"),
            ("u", "sec\x01ret"),
            ("u", "sec\r\nret"),
            ("u", "sécret"),
            ("u", "a=b"),
            ("", "token"),
            ("u\x01", "token"),
            ("u\n", "token"),
        ] {
            for m in [OAuthMechanism::XOAuth2, OAuthMechanism::OAuthBearer] {
                let e = m.initial_response(user, "h", 1, token).unwrap_err();
                assert!(matches!(e, ProtocolError::InvalidCredential(_)), "{e}");
                if token.len() > 3 {
                    assert!(!e.to_string().contains(token), "{e}");
                }
            }
        }
        assert!(sasl_oauthbearer("u", "", 1, "t").is_err());
    }

    #[test]
    fn mechanism_choice() {
        let caps = |s: &str| -> Vec<String> { s.split(' ').map(str::to_string).collect() };
        for (offered, want) in [
            (
                "IMAP4REV1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER",
                Some(OAuthMechanism::XOAuth2),
            ),
            (
                "IMAP4REV1 AUTH=OAUTHBEARER AUTH=XOAUTH2",
                Some(OAuthMechanism::XOAuth2),
            ),
            (
                "IMAP4REV1 AUTH=OAUTHBEARER",
                Some(OAuthMechanism::OAuthBearer),
            ),
            ("IMAP4REV1 AUTH=PLAIN XOAUTH2", None),
            ("", None),
        ] {
            assert_eq!(OAuthMechanism::choose(&caps(offered)), want, "{offered}");
        }
        assert_eq!(OAuthMechanism::XOAuth2.error_acknowledgement(), "");
        assert_eq!(
            base64_decode(OAuthMechanism::OAuthBearer.error_acknowledgement()),
            Some(vec![1])
        );
    }

    #[test]
    fn error_challenges() {
        // What Dovecot 2.3 sends for XOAUTH2 and for OAUTHBEARER.
        let f = parse_oauth_challenge(
            "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=",
        );
        assert_eq!(
            f,
            OAuthFailure {
                status: Some("401".into()),
                scope: Some("mail".into()),
                schemes: Some("bearer".into()),
                openid_configuration: None,
            }
        );
        assert_eq!(f.to_string(), "status 401, scope mail, schemes bearer");
        let f = parse_oauth_challenge("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=");
        assert_eq!(f.status.as_deref(), Some("invalid_token"));
        // RFC 7628 §4.3's example, with a numeric status tolerated.
        let json = br#"{"status":401,"scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#;
        let f = parse_oauth_challenge(&base64(json, b'/', true));
        assert_eq!(f.status.as_deref(), Some("401"));
        assert_eq!(
            f.openid_configuration.as_deref(),
            Some("https://example.com/.well-known/openid-configuration")
        );
        // Not base64, not JSON, not an object, empty: no details.
        for junk in ["", "!!!", "e30", "WzFd", "bm90IGpzb24=", "A", "AAAAA==="] {
            assert_eq!(
                parse_oauth_challenge(junk),
                OAuthFailure::default(),
                "{junk}"
            );
        }
        assert_eq!(OAuthFailure::default().to_string(), "no details");
    }

    #[test]
    fn base64_decoding_round_trips_the_encoder() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\x00\xff\x01"] {
            assert_eq!(base64_decode(&base64(data, b'/', true)).unwrap(), data);
            assert_eq!(base64_decode(&base64(data, b'/', false)).unwrap(), data);
        }
    }

    #[test]
    fn urls() {
        let u = ImapUrl::parse("imaps://reports@contoso.com@Mail.Contoso.com/Rapports%20DMARC")
            .unwrap();
        assert_eq!(
            (
                u.security,
                u.user.as_str(),
                u.host.as_str(),
                u.port,
                u.mailbox.as_str()
            ),
            (
                Security::Implicit,
                "reports@contoso.com",
                "mail.contoso.com",
                993,
                "Rapports DMARC"
            )
        );
        assert_eq!(
            u.to_string(),
            "imaps://reports%40contoso.com@mail.contoso.com:993/Rapports%20DMARC"
        );
        assert_eq!(ImapUrl::parse(&u.to_string()).unwrap(), u);
        let u = ImapUrl::parse("imap://dmarc@127.0.0.1:1143").unwrap();
        assert_eq!(
            (u.security, u.port, u.mailbox.as_str()),
            (Security::StartTls, 1143, "INBOX")
        );
        let u = ImapUrl::parse("IMAPS://u@[::1]:10993/a/b/").unwrap();
        assert_eq!((u.host.as_str(), u.mailbox.as_str()), ("::1", "a/b"));
        assert_eq!(u.to_string(), "imaps://u@[::1]:10993/a/b");
        for bad in [
            "https://u@h/",
            "imaps://h/INBOX",
            "imaps://u:secret@h/INBOX",
            "imaps://@h/INBOX",
            "imaps://u@h:0/",
            "imaps://u@h:99999/",
            "imaps://u@h:x/",
            "imaps://u@/INBOX",
            "imaps://u@h/INBOX?x",
            "imaps://u@h/IN BOX",
            "imaps://u@h/%ZZ",
            "imaps://u@h/%0A",
            "imaps://u;AUTH=*@h/",
            "imaps://u@[::1/",
            "imaps://u@h;x/",
        ] {
            assert!(ImapUrl::parse(bad).is_err(), "{bad}");
        }
        // The error never echoes a password.
        let e = ImapUrl::parse("imaps://u:hunter2@h/")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("password") && e.contains("--password-env"),
            "{e}"
        );
    }

    #[test]
    fn rfc2177_idle_events() {
        for (line, want) in [
            // RFC 2177 §3's example exchange.
            ("+ idling", Ok(IdleEvent::Accepted)),
            ("+", Ok(IdleEvent::Accepted)),
            ("* 4 EXISTS", Ok(IdleEvent::Exists(4))),
            ("* 3 exists", Ok(IdleEvent::Exists(3))),
            ("* 2 EXPUNGE", Ok(IdleEvent::Ignored)),
            ("* 3 EXISTS", Ok(IdleEvent::Exists(3))),
            ("* 1 FETCH (FLAGS (\\Seen))", Ok(IdleEvent::Ignored)),
            ("* OK Still here", Ok(IdleEvent::Ignored)),
            ("* 5 RECENT", Ok(IdleEvent::Ignored)),
            (
                "* BYE Autologout; idle for too long",
                Ok(IdleEvent::Bye("Autologout; idle for too long".into())),
            ),
        ] {
            assert_eq!(parse_idle_line(line.as_bytes(), "A002"), want, "{line}");
        }
        assert!(matches!(
            parse_idle_line(b"A002 OK IDLE terminated", "A002"),
            Ok(IdleEvent::Finished(StatusText {
                status: Status::Ok,
                ..
            }))
        ));
        assert!(matches!(
            parse_idle_line(b"A002 BAD unknown command", "A002"),
            Ok(IdleEvent::Finished(StatusText {
                status: Status::Bad,
                ..
            }))
        ));
        for bad in [
            &b""[..],
            b"A001 OK other tag",
            b"\x00\xff garbage",
            b"* 1 FETCH (BODY[] {5}",
            b"* 99999999999 EXISTS extra",
            b"A002 MAYBE",
        ] {
            let got = parse_idle_line(bad, "A002");
            // A number too large for u32 is not EXISTS: only ignored or an error.
            assert!(
                !matches!(
                    got,
                    Ok(IdleEvent::Exists(_) | IdleEvent::Accepted | IdleEvent::Finished(_))
                ),
                "{bad:?}: {got:?}"
            );
        }
        assert!(parse_idle_line(b"A001 OK other tag", "A002").is_err());
        assert!(parse_idle_line(b"\x00\xff garbage", "A002").is_err());
        assert!(parse_idle_line(&vec![b'a'; MAX_LINE + 1], "A002").is_err());
    }

    #[test]
    fn rfc2177_idle_is_reissued_every_29_minutes_at_most() {
        use std::time::Duration;
        assert_eq!(
            idle_period(Duration::from_secs(300)),
            Duration::from_secs(300)
        );
        assert_eq!(
            idle_period(Duration::from_secs(3600)),
            Duration::from_secs(29 * 60)
        );
        assert_eq!(
            idle_period(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
    }

    proptest! {
        #[test]
        fn idle_lines_never_panic(line in proptest::collection::vec(any::<u8>(), 0..100), tag in "[A-Za-z0-9]{1,6}") {
            let _ = parse_idle_line(&line, &tag);
        }

        #[test]
        fn idle_grammar_never_panics(s in "(\\+|\\*|A1)( [0-9]{0,12})?( (EXISTS|EXPUNGE|OK|NO|BAD|BYE|FETCH|RECENT))?[ -~]{0,30}") {
            let _ = parse_idle_line(s.as_bytes(), "A1");
        }

        #[test]
        fn parser_never_panics(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..4),
            literal in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let n = lines.len() - 1;
            let r = RawResponse { lines, literals: vec![literal; n] };
            let _ = parse_response(&r);
            for l in &r.lines {
                let _ = literal_announced(l);
            }
        }

        #[test]
        fn fetch_grammar_never_panics(s in "\\* [0-9]{1,3} FETCH [()A-Z0-9\\[\\]<>. \"{}\\\\]{0,60}") {
            let _ = one(&s);
        }

        #[test]
        fn urls_never_panic_and_round_trip(s in "imaps?://[a-z@%0-9:;]{0,12}@[a-z0-9.:\\[\\]]{0,12}(:[0-9]{0,6})?(/[ -~]{0,12})?") {
            if let Ok(u) = ImapUrl::parse(&s) {
                prop_assert_eq!(ImapUrl::parse(&u.to_string()).unwrap(), u);
            }
        }

        #[test]
        fn oauth_challenges_never_panic(s in "[A-Za-z0-9+/=]{0,80}", raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_oauth_challenge(&s);
            let _ = parse_oauth_challenge(&base64(&raw, b'/', true));
            let _ = parse_oauth_challenge(&String::from_utf8_lossy(&raw));
        }

        #[test]
        fn oauth_initial_responses_never_panic_and_decode(user in "\\PC{0,30}", token in "[ -~]{0,40}", host in "\\PC{0,20}", port in any::<u16>()) {
            for m in [OAuthMechanism::XOAuth2, OAuthMechanism::OAuthBearer] {
                if let Ok(ir) = m.initial_response(&user, &host, port, &token) {
                    let message = base64_decode(&ir).expect("valid base64");
                    // The token appears once, and only it and the separators follow "auth=".
                    let want = format!("auth=Bearer {token}\x01\x01");
                    prop_assert!(message.ends_with(want.as_bytes()));
                }
            }
        }

        #[test]
        fn mailbox_encoding_is_ascii(s in "\\PC{0,20}") {
            let e = encode_mailbox(&s);
            prop_assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)));
            prop_assert!(quoted(&e).is_some());
        }
    }
}
