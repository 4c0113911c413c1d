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
//!
//! One file per job: [`url`](self::url) (the mailbox URL), `command` (command encoders),
//! `oauth` (SASL with bearer tokens), `framing` (literal announcements), `response` (the
//! response parser) and `idle` (IDLE).

mod command;
mod framing;
mod idle;
mod oauth;
mod response;
mod url;

pub use command::{encode_mailbox, quoted, sasl_plain};
pub use framing::{RawResponse, literal_announced};
pub use idle::{IDLE_DONE, IDLE_REISSUE, IdleEvent, idle_event, idle_period, parse_idle_line};
pub use oauth::{
    OAuthFailure, OAuthMechanism, check_bearer_token, parse_oauth_challenge, sasl_oauthbearer,
    sasl_xoauth2,
};
pub use response::{Code, Fetch, Response, Status, StatusText, parse_response};
pub use url::{ImapUrl, Security, redact};

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
