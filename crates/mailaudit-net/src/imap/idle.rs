//! `IDLE` (RFC 2177): waiting in the selected mailbox for new mail, ended by `DONE`.

use std::time::Duration;

use mailaudit_core::imap::{IDLE_DONE, IdleEvent, idle_event};
use tokio::io::AsyncBufReadExt;
use tokio::time::{Instant, timeout};

#[cfg(doc)]
use super::ImapOptions;
use super::{IdleOutcome, ImapError, MAX_RESPONSES, Session, io_error, too_large};

impl Session {
    /// Whether the server offers `IDLE` (RFC 2177).
    pub fn supports_idle(&self) -> bool {
        self.has("IDLE")
    }

    /// Waits, in the selected mailbox, for new mail or until `wait` has passed: `IDLE`, then
    /// `DONE` and its tagged answer. Returns at once with [`IdleOutcome::NewMail`] when an
    /// `EXISTS` came in an answer to a command since the mailbox was selected (mail that
    /// arrived during the last poll). Callers keep `wait` within
    /// [`mailaudit_core::imap::idle_period`].
    ///
    /// RFC 2177 §3: "The IDLE command is sent from the client to the server when the client is
    /// ready to accept unsolicited mailbox update messages. The server requests a response to
    /// the IDLE command using the continuation ("+") response. The IDLE command remains active
    /// until the client responds to the continuation, and as long as an IDLE command is
    /// active, the server is now free to send untagged EXISTS, EXPUNGE, and other messages at
    /// any time. The IDLE command is terminated by the receipt of a "DONE" continuation from
    /// the client; such response satisfies the server's continuation request. At that point,
    /// the server MAY send any remaining queued untagged responses and then MUST immediately
    /// send the tagged response to the IDLE command and prepare to process other commands."
    ///
    /// Untagged responses other than `EXISTS` (`EXPUNGE`, `FETCH` flag updates, `* OK Still
    /// here`) are ignored; `* BYE` or a closed connection is [`ImapError::Closed`]; a refused
    /// IDLE (`NO`, `BAD`) is [`ImapError::Command`]; a server that offers no IDLE is
    /// [`ImapError::Unsupported`]. Each read keeps [`ImapOptions::timeout`] (once a response
    /// has begun), and the answer to `DONE` is awaited for one timeout in all.
    pub async fn idle(&mut self, wait: Duration) -> Result<IdleOutcome, ImapError> {
        if let Some(exists) = self.exists_since_select.take() {
            return Ok(IdleOutcome::NewMail { exists });
        }
        if !self.supports_idle() {
            return Err(ImapError::Unsupported {
                host: self.host.clone(),
                why: "it does not offer IDLE (RFC 2177)".into(),
            });
        }
        let stage = "IDLE";
        let tag = self.send("IDLE", stage).await?;
        let mut new_mail = None;
        // The continuation request; updates may come before it.
        let mut accepted = false;
        for _ in 0..MAX_RESPONSES {
            match self.idle_response(&tag, stage).await? {
                IdleEvent::Accepted => {
                    accepted = true;
                    break;
                }
                IdleEvent::Exists(n) => new_mail = Some(n),
                IdleEvent::Finished(status) => {
                    // Ended (or refused) before it began: nothing to end with DONE.
                    self.expect_ok("IDLE", status)?;
                    return Ok(outcome(new_mail));
                }
                IdleEvent::Bye(_) | IdleEvent::Ignored => {}
            }
        }
        if !accepted {
            return Err(too_large(
                stage,
                format!("more than {MAX_RESPONSES} responses before the continuation"),
            ));
        }
        let deadline = Instant::now() + wait;
        while new_mail.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // Wait for the first byte of a response without taking it: a response cut by the
            // deadline would be lost. Once it has begun, it is read under the usual timeout.
            match timeout(left, self.io.fill_buf()).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(io_error(stage, &e)),
                Ok(Ok([])) => {
                    return Err(ImapError::Closed {
                        stage: "IDLE, waiting for new mail".into(),
                        bye: None,
                    });
                }
                Ok(Ok(_)) => {}
            }
            match self.idle_response(&tag, stage).await? {
                IdleEvent::Exists(n) => new_mail = Some(n),
                IdleEvent::Finished(status) => {
                    // The server ended the IDLE itself (RFC 2177 does not provide for it):
                    // no DONE is due.
                    self.expect_ok("IDLE", status)?;
                    return Ok(outcome(new_mail));
                }
                IdleEvent::Accepted | IdleEvent::Ignored | IdleEvent::Bye(_) => {}
            }
        }
        if let Some(n) = self.done(&tag).await? {
            new_mail = Some(n);
        }
        Ok(outcome(new_mail))
    }

    /// Sends `DONE` and reads until the tagged answer to the IDLE command `tag`, for one
    /// [`ImapOptions::timeout`] in all. Returns the last `EXISTS` sent meanwhile.
    async fn done(&mut self, tag: &str) -> Result<Option<u32>, ImapError> {
        let stage = "DONE (ending IDLE)";
        self.write_line(IDLE_DONE, stage).await?;
        let limit = self.opts.timeout;
        let answer = async {
            let mut new_mail = None;
            for _ in 0..MAX_RESPONSES {
                match self.idle_response(tag, stage).await? {
                    IdleEvent::Finished(status) => {
                        self.expect_ok("IDLE", status)?;
                        return Ok(new_mail);
                    }
                    IdleEvent::Exists(n) => new_mail = Some(n),
                    IdleEvent::Accepted | IdleEvent::Ignored | IdleEvent::Bye(_) => {}
                }
            }
            Err(too_large(
                stage,
                format!("more than {MAX_RESPONSES} responses to DONE"),
            ))
        };
        match timeout(limit, answer).await {
            Ok(r) => r,
            Err(_) => Err(ImapError::Timeout {
                stage: "waiting for the answer to DONE (ending IDLE)".into(),
                limit,
            }),
        }
    }

    /// Reads one response during IDLE and says what it means; `* BYE` ends the session.
    async fn idle_response(&mut self, tag: &str, stage: &str) -> Result<IdleEvent, ImapError> {
        let response = self.read_response(stage).await?;
        match idle_event(response, tag).map_err(|error| ImapError::Protocol {
            stage: stage.to_string(),
            error,
        })? {
            IdleEvent::Bye(text) => Err(ImapError::Closed {
                stage: stage.to_string(),
                bye: Some(text),
            }),
            event => Ok(event),
        }
    }
}

fn outcome(new_mail: Option<u32>) -> IdleOutcome {
    match new_mail {
        Some(exists) => IdleOutcome::NewMail { exists },
        None => IdleOutcome::Elapsed,
    }
}
