//! The mailbox to read: `imaps://user@host:port/mailbox` URLs (RFC 5092, reduced).

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::ProtocolError;

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

/// Percent-encoded in a user name: everything but RFC 3986 unreserved characters…
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// …and in a mailbox path, everything but those and `/`.
const PATH: &AsciiSet = &USERINFO.remove(b'/');

fn percent_encode(s: &str, path: bool) -> String {
    utf8_percent_encode(s, if path { PATH } else { USERINFO }).to_string()
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

/// Decodes `%XX` escapes; an error for a malformed escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    if let Some((i, _)) = s.match_indices('%').find(|(i, _)| {
        !s.as_bytes()
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    }) {
        return Err(format!("bad percent-encoding at {:?}", &s[i..]));
    }
    percent_decode_str(s)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| "percent-encoding that is not UTF-8".to_string())
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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

    proptest! {
        #[test]
        fn urls_never_panic_and_round_trip(s in "imaps?://[a-z@%0-9:;]{0,12}@[a-z0-9.:\\[\\]]{0,12}(:[0-9]{0,6})?(/[ -~]{0,12})?") {
            if let Ok(u) = ImapUrl::parse(&s) {
                prop_assert_eq!(ImapUrl::parse(&u.to_string()).unwrap(), u);
            }
        }
    }
}
