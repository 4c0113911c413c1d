//! The command/response exchange: tagged commands, and responses read line by line with the
//! literals they announce, every read under the timeout, lines capped at
//! [`mailaudit_core::imap::MAX_LINE`], literals at [`ImapOptions::max_literal`] (read in chunks),
//! the responses to one command at [`MAX_RESPONSES`].

use mailaudit_core::imap::{
    MAX_LINE, RawResponse, Response, Status, StatusText, literal_announced, parse_response,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

#[cfg(doc)]
use super::ImapOptions;
use super::{ImapError, MAX_RESPONSES, Session, io_error, too_large, unexpected};

/// Literal bytes are read in chunks of this size, each under the timeout.
const CHUNK: u64 = 64 * 1024;

impl Session {
    pub(super) fn expect_ok(&self, command: &str, status: StatusText) -> Result<(), ImapError> {
        if status.status == Status::Ok {
            return Ok(());
        }
        Err(ImapError::Command {
            command: command.to_string(),
            status: status.status,
            text: status.text,
        })
    }

    /// Sends `text` with a fresh tag and reads responses until the tagged one, handing every
    /// untagged response to `each`. `stage` names the command in errors (it never holds
    /// credentials).
    pub(super) async fn command(
        &mut self,
        text: &str,
        stage: &str,
        each: impl FnMut(Response) -> Result<(), ImapError>,
    ) -> Result<StatusText, ImapError> {
        let tag = self.send(text, stage).await?;
        self.finish(&tag, stage, each).await
    }

    pub(super) async fn send(&mut self, text: &str, stage: &str) -> Result<String, ImapError> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.write_line(&format!("{tag} {text}"), stage).await?;
        Ok(tag)
    }

    pub(super) async fn finish(
        &mut self,
        tag: &str,
        stage: &str,
        mut each: impl FnMut(Response) -> Result<(), ImapError>,
    ) -> Result<StatusText, ImapError> {
        for _ in 0..MAX_RESPONSES {
            match self.read_response(stage).await? {
                Response::Tagged { tag: t, status } if t == tag => return Ok(status),
                Response::Status(StatusText {
                    status: Status::Bye,
                    text,
                    ..
                }) => {
                    return Err(ImapError::Closed {
                        stage: stage.to_string(),
                        bye: Some(text),
                    });
                }
                r @ (Response::Tagged { .. } | Response::Continue(_)) => {
                    return Err(unexpected(stage, &r));
                }
                r => {
                    if let Response::Exists(n) = r {
                        self.exists_since_select = Some(n);
                    }
                    each(r)?
                }
            }
        }
        Err(too_large(
            stage,
            format!("more than {MAX_RESPONSES} responses to one command"),
        ))
    }

    pub(super) async fn write_line(&mut self, line: &str, stage: &str) -> Result<(), ImapError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let limit = self.opts.timeout;
        let io = self.io.get_mut();
        match timeout(limit, async {
            io.write_all(&bytes).await?;
            io.flush().await
        })
        .await
        {
            Err(_) => Err(ImapError::Timeout {
                stage: format!("sending {stage}"),
                limit,
            }),
            Ok(Err(e)) => Err(io_error(stage, &e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads one response: its lines and the literals they announce.
    pub(super) async fn read_response(&mut self, stage: &str) -> Result<Response, ImapError> {
        let mut raw = RawResponse::default();
        loop {
            let line = self.read_line(stage).await?;
            let announced = literal_announced(&line).map_err(|error| ImapError::Protocol {
                stage: stage.to_string(),
                error,
            })?;
            raw.lines.push(line);
            let Some(len) = announced else { break };
            if raw.literals.len() >= mailaudit_core::imap::MAX_LITERALS {
                return Err(too_large(stage, "too many literals in one response".into()));
            }
            if len > self.opts.max_literal {
                return Err(too_large(
                    stage,
                    format!(
                        "a literal of {len} bytes, over the limit of {} bytes",
                        self.opts.max_literal
                    ),
                ));
            }
            let literal = self.read_literal(len, stage).await?;
            raw.literals.push(literal);
        }
        parse_response(&raw).map_err(|error| ImapError::Protocol {
            stage: stage.to_string(),
            error,
        })
    }

    pub(super) async fn read_line(&mut self, stage: &str) -> Result<Vec<u8>, ImapError> {
        let mut line = Vec::new();
        let limit = self.opts.timeout;
        let mut capped = (&mut self.io).take(MAX_LINE as u64 + 2);
        match timeout(limit, capped.read_until(b'\n', &mut line)).await {
            Err(_) => {
                return Err(ImapError::Timeout {
                    stage: format!("waiting for the answer to {stage}"),
                    limit,
                });
            }
            Ok(Err(e)) => return Err(io_error(stage, &e)),
            Ok(Ok(_)) => {}
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_LINE {
                return Err(too_large(
                    stage,
                    format!("a response line longer than {MAX_LINE} bytes"),
                ));
            }
            return Err(ImapError::Closed {
                stage: if line.is_empty() {
                    stage.to_string()
                } else {
                    format!("{stage}, in the middle of a line")
                },
                bye: None,
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    pub(super) async fn read_literal(
        &mut self,
        len: u64,
        stage: &str,
    ) -> Result<Vec<u8>, ImapError> {
        let limit = self.opts.timeout;
        let mut out = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK);
            let before = out.len();
            let mut chunk = (&mut self.io).take(want);
            match timeout(limit, chunk.read_to_end(&mut out)).await {
                Err(_) => {
                    return Err(ImapError::Timeout {
                        stage: format!("{stage}, in the middle of a {len}-byte literal"),
                        limit,
                    });
                }
                Ok(Err(e)) => return Err(io_error(stage, &e)),
                Ok(Ok(_)) => {}
            }
            let got = (out.len() - before) as u64;
            if got < want {
                return Err(ImapError::Closed {
                    stage: format!(
                        "{stage}, after {} of the {len} bytes of a literal",
                        len - left + got
                    ),
                    bye: None,
                });
            }
            left -= got;
        }
        Ok(out)
    }
}
