//! An IMAP4rev1 client (RFC 3501) for reading report mailboxes: connect over implicit TLS
//! (`imaps://`, RFC 8314) or STARTTLS (`imap://`), log in (`AUTHENTICATE PLAIN`, else `LOGIN`),
//! `SELECT`/`EXAMINE` a mailbox, `UID SEARCH` for the messages after a cursor, `UID FETCH` their
//! sizes and bodies (`BODY.PEEK[]`, so nothing is marked read), and optionally flag or move them.
//!
//! The grammar (responses, literals, quoting, modified UTF-7) is `mailaudit_core::imap`; this
//! module moves the bytes and keeps the server in check, since a report mailbox's server is as
//! untrusted as any: every read has a timeout ([`ImapOptions::timeout`], applied to each line and
//! to each chunk of a literal), lines are capped at [`mailaudit_core::imap::MAX_LINE`], literals
//! at [`ImapOptions::max_literal`], the untagged responses to one command at
//! [`MAX_RESPONSES`], and a server that sends bytes after its `STARTTLS` answer (before the
//! handshake) is refused (CVE-2011-0411's "STARTTLS command injection" from the other side).
//!
//! Reaching the server is [`crate::transport`]'s, as for every client of the I/O layer: the
//! host's addresses through the run's DNS source, TCP to each in turn, and the TLS handshake
//! (at once for `imaps://`, after `STARTTLS` for `imap://`), certificates verified against
//! [`TlsRoots`] (web PKI roots plus an optional `--ca-file`) with rustls' web PKI verifier; a
//! failure there is an [`ImapError::Transport`], and a certificate that does not validate ends
//! the session.
//! Plaintext is used only for `imap://` when the server offers no `STARTTLS` and the caller set
//! [`ImapOptions::allow_plaintext`]; a server that offers it always gets it.
//!
//! With [`Session::idle`] the client waits for new mail in the selected mailbox (`IDLE`, RFC
//! 2177) instead of asking again and again: it returns on `* n EXISTS` or when the wait given
//! has passed, after ending the IDLE with `DONE`; the answer to `DONE` is awaited for one
//! [`ImapOptions::timeout`] in all, so a server that never answers cannot hang the client.
//!
//! Besides passwords, [`Session::authenticate_oauth`] logs in with an OAuth 2.0 bearer token
//! (`XOAUTH2`, else `OAUTHBEARER`), as Exchange Online requires.
//!
//! The password and the token are never stored in a [`Session`], never logged and never part of
//! an error.
//!
//! The module's parts: the session's life ([`Session::connect`], `STARTTLS`, login and
//! `LOGOUT`) in `session`, the command/response exchange with its caps on lines, literals and
//! responses in `wire`, the mailbox commands (select, search, sizes, fetch, flag, move) in
//! `fetch`, and `IDLE` in `idle`.

mod fetch;
mod idle;
mod session;
mod wire;

use std::fmt;
use std::io;
use std::time::Duration;

use mailaudit_core::imap::{ProtocolError, Response, Status};
use tokio::io::BufReader;

use crate::smtp::TlsRoots;
use crate::transport::{self, TransportError};
use session::Stream;

/// The default limit of each read, write and connection attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default largest message (literal) accepted: 100 MiB.
pub const DEFAULT_MAX_LITERAL: u64 = 100 * 1024 * 1024;

/// Most untagged responses accepted in answer to one command.
pub const MAX_RESPONSES: usize = 100_000;

/// Most UIDs returned by one [`Session::search_from`].
pub const MAX_SEARCH: usize = 1_000_000;

/// How a session connects.
#[derive(Clone, Debug)]
pub struct ImapOptions {
    /// The limit of each read (a line, a chunk of a literal), each write, the DNS look-up, each
    /// TCP connect attempt and each TLS handshake.
    pub timeout: Duration,
    /// Trust anchors for the server certificate.
    pub roots: TlsRoots,
    /// For `imap://`: go on in plaintext when the server offers no `STARTTLS` (loopback labs).
    pub allow_plaintext: bool,
    /// The largest literal (message) read; a larger one ends the session with
    /// [`ImapError::TooLarge`].
    pub max_literal: u64,
}

impl ImapOptions {
    /// Defaults with the given trust anchors.
    pub fn new(roots: TlsRoots) -> Self {
        ImapOptions {
            timeout: DEFAULT_TIMEOUT,
            roots,
            allow_plaintext: false,
            max_literal: DEFAULT_MAX_LITERAL,
        }
    }
}

/// Why an IMAP session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The server could not be reached: its host name not resolved, no TCP connection, the TLS
    /// handshake failed (certificate not valid, protocol error) or timed out.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server did not answer in time.
    #[error("no answer from the IMAP server within {}s ({stage})", .limit.as_secs_f64())]
    Timeout {
        /// What was waited for.
        stage: String,
        /// The limit.
        limit: Duration,
    },
    /// `imap://` to a server that offers no STARTTLS, without [`ImapOptions::allow_plaintext`].
    #[error(
        "{host} does not offer STARTTLS: refusing to log in without TLS (use imaps:// if the \
         server has it, or --allow-plaintext for a loopback lab)"
    )]
    NoStartTls {
        /// The host.
        host: String,
    },
    /// The server closed the connection.
    #[error("the IMAP server closed the connection ({stage}){}", bye_text(.bye))]
    Closed {
        /// What was going on.
        stage: String,
        /// The text of the server's `BYE`, if it sent one.
        bye: Option<String>,
    },
    /// A read or write failed.
    #[error("IMAP connection error ({stage}): {reason}")]
    Io {
        /// What was going on.
        stage: String,
        /// Why.
        reason: String,
    },
    /// The server sent something this client does not accept.
    #[error("IMAP protocol error ({stage}): {error}")]
    Protocol {
        /// What was going on.
        stage: String,
        /// What is wrong.
        error: ProtocolError,
    },
    /// A line or literal beyond the caps.
    #[error("the IMAP server sent too much ({stage}): {what}")]
    TooLarge {
        /// What was going on.
        stage: String,
        /// What was too large.
        what: String,
    },
    /// The server offers no authentication mechanism this client can use with the credential
    /// given (a token, and neither `AUTH=XOAUTH2` nor `AUTH=OAUTHBEARER`).
    #[error("{host} cannot take this credential: {why}")]
    Unsupported {
        /// The host.
        host: String,
        /// What is missing.
        why: String,
    },
    /// The server refused the login.
    #[error("login as {user} refused: {text}")]
    Login {
        /// The user name.
        user: String,
        /// The server's text.
        text: String,
    },
    /// A command failed (`NO` or `BAD`).
    #[error("{command} failed: {status} {text}")]
    Command {
        /// The command, without arguments that could be secret.
        command: String,
        /// `NO` or `BAD`.
        status: Status,
        /// The server's text.
        text: String,
    },
}

fn bye_text(bye: &Option<String>) -> String {
    bye.as_deref()
        .map(|t| format!(": BYE {t}"))
        .unwrap_or_default()
}

impl ImapError {
    /// Whether the error is about this connection rather than the request (anything but a
    /// refused login or command): a new session may succeed.
    pub fn is_connection(&self) -> bool {
        !matches!(
            self,
            ImapError::Login { .. } | ImapError::Command { .. } | ImapError::Unsupported { .. }
        )
    }
}

/// The selected mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxInfo {
    /// `UIDVALIDITY`: UIDs are only comparable while it stays the same (RFC 3501 §2.3.1.1).
    pub uid_validity: u32,
    /// `UIDNEXT`, when the server sent it.
    pub uid_next: Option<u32>,
    /// The number of messages (`EXISTS`).
    pub exists: u32,
}

/// How an [`Session::idle`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleOutcome {
    /// The server reported new mail (`* n EXISTS`), during the IDLE or in an answer to a
    /// command since the mailbox was selected; the mailbox now holds `exists` messages.
    NewMail {
        /// The message count the server reported.
        exists: u32,
    },
    /// The wait passed with no new mail.
    Elapsed,
}

/// One logged-in (or not yet logged-in) IMAP connection.
pub struct Session {
    io: BufReader<Stream>,
    host: String,
    port: u16,
    opts: ImapOptions,
    tag: u32,
    capabilities: Vec<String>,
    tls: bool,
    /// The last `* n EXISTS` received in an answer to a command since the mailbox was selected
    /// (new mail that arrived while the client was busy), for [`Session::idle`].
    exists_since_select: Option<u32>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("tls", &self.tls)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

fn too_large(stage: &str, what: String) -> ImapError {
    ImapError::TooLarge {
        stage: stage.to_string(),
        what,
    }
}

fn io_error(stage: &str, e: &io::Error) -> ImapError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return ImapError::Closed {
            stage: stage.to_string(),
            bye: None,
        };
    }
    ImapError::Io {
        stage: stage.to_string(),
        reason: transport::describe_io(e),
    }
}

fn unexpected(stage: &str, r: &Response) -> ImapError {
    let what = match r {
        Response::Continue(t) => format!("an unexpected continuation request \"+ {t}\""),
        Response::Tagged { tag, status } => {
            format!(
                "an unexpected tagged response {tag} {} {}",
                status.status, status.text
            )
        }
        Response::Status(s) => format!("an unexpected * {} {}", s.status, s.text),
        other => format!("an unexpected response {other:?}"),
    };
    ImapError::Protocol {
        stage: stage.to_string(),
        error: ProtocolError::Malformed {
            why: what,
            excerpt: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_retryable() {
        assert!(
            ImapError::Closed {
                stage: "x".into(),
                bye: None
            }
            .is_connection()
        );
        assert!(
            !ImapError::Login {
                user: "u".into(),
                text: "NO".into()
            }
            .is_connection()
        );
    }
}
