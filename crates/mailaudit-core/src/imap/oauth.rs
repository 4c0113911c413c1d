//! SASL with OAuth 2.0 bearer tokens: XOAUTH2 and OAUTHBEARER.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::{ProtocolError, printable};

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
    Ok(STANDARD.encode(message))
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
    Ok(STANDARD.encode(message))
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
    /// Padding optional, the unused bits of the last symbol not checked.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use base64::engine::general_purpose::STANDARD_NO_PAD;

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
        let f = parse_oauth_challenge(&STANDARD.encode(json));
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
            assert_eq!(base64_decode(&STANDARD.encode(data)).unwrap(), data);
            assert_eq!(base64_decode(&STANDARD_NO_PAD.encode(data)).unwrap(), data);
        }
    }

    proptest! {
        #[test]
        fn oauth_challenges_never_panic(s in "[A-Za-z0-9+/=]{0,80}", raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_oauth_challenge(&s);
            let _ = parse_oauth_challenge(&STANDARD.encode(&raw));
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
    }
}
