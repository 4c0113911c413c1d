//! IDLE (RFC 2177): what a response received during IDLE means, and how long one IDLE lasts.

use super::{
    MAX_LINE, ProtocolError, RawResponse, Response, Status, StatusText, literal_announced,
    malformed, parse_response, printable,
};

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
    use crate::imap::MAX_LINE;

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
    }
}
