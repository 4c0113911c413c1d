//! The mailbox commands: `SELECT`/`EXAMINE`, `UID SEARCH` from a cursor, `UID FETCH` of sizes
//! and whole messages (through the capped literals of `wire`), flagging, moving and `NOOP`.

use mailaudit_core::imap::{
    Code, Fetch, ProtocolError, Response, StatusText, encode_mailbox, quoted,
};

use super::{ImapError, MAX_SEARCH, MailboxInfo, Session, too_large};

impl Session {
    /// Opens `mailbox` (UTF-8; sent in modified UTF-7): `EXAMINE` when `read_only`, else
    /// `SELECT`.
    ///
    /// RFC 3501 §6.3.1: "`OK [UIDVALIDITY <n>]` The unique identifier validity value. [...] If
    /// this is missing, the client can not make any assumptions about the persistence of
    /// unique identifiers." This client refuses a mailbox without it.
    pub async fn select(
        &mut self,
        mailbox: &str,
        read_only: bool,
    ) -> Result<MailboxInfo, ImapError> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let name = mailbox_arg(mailbox);
        let (mut validity, mut next, mut exists) = (None, None, 0);
        let status = self
            .command(&format!("{verb} {name}"), verb, |r| {
                match r {
                    Response::Status(StatusText {
                        code: Some(Code::UidValidity(v)),
                        ..
                    }) => validity = Some(v),
                    Response::Status(StatusText {
                        code: Some(Code::UidNext(n)),
                        ..
                    }) => next = Some(n),
                    Response::Exists(n) => exists = n,
                    _ => {}
                }
                Ok(())
            })
            .await?;
        self.expect_ok(verb, status)?;
        self.exists_since_select = None;
        let uid_validity = validity.ok_or_else(|| ImapError::Protocol {
            stage: verb.into(),
            error: ProtocolError::Malformed {
                why: "the server sent no UIDVALIDITY".into(),
                excerpt: String::new(),
            },
        })?;
        Ok(MailboxInfo {
            uid_validity,
            uid_next: next,
            exists,
        })
    }

    /// The UIDs of the messages with UID `first` or higher, ascending.
    ///
    /// RFC 3501 §6.4.4 and §9 (`seq-range`): "`*` represents the largest number in use", so
    /// `UID SEARCH UID n:*` also returns the last message when every UID is below `n`; such
    /// UIDs are dropped here.
    pub async fn search_from(&mut self, first: u32) -> Result<Vec<u32>, ImapError> {
        let first = first.max(1);
        let mut uids: Vec<u32> = Vec::new();
        let status = self
            .command(&format!("UID SEARCH UID {first}:*"), "UID SEARCH", |r| {
                if let Response::Search(found) = r {
                    uids.extend(found.into_iter().filter(|u| *u >= first));
                    if uids.len() > MAX_SEARCH {
                        return Err(too_large(
                            "UID SEARCH",
                            format!("more than {MAX_SEARCH} UIDs"),
                        ));
                    }
                }
                Ok(())
            })
            .await?;
        self.expect_ok("UID SEARCH", status)?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The sizes (`RFC822.SIZE`) of the messages `uids`, by UID; messages expunged meanwhile
    /// are absent.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u64)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let status = self
            .command(
                &format!("UID FETCH {} (UID RFC822.SIZE)", sequence_set(uids)),
                "UID FETCH (RFC822.SIZE)",
                |r| {
                    if let Response::Fetch(Fetch {
                        uid: Some(uid),
                        size: Some(size),
                        ..
                    }) = r
                        && uids.binary_search(&uid).is_ok()
                    {
                        found.push((uid, size));
                    }
                    Ok(())
                },
            )
            .await?;
        self.expect_ok("UID FETCH", status)?;
        found.sort_unstable();
        found.dedup_by_key(|(u, _)| *u);
        Ok(found)
    }

    /// The whole message `uid` (`BODY.PEEK[]`: the `\Seen` flag is not set), or `None` when it
    /// no longer exists.
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let mut body = None;
        let status = self
            .command(
                &format!("UID FETCH {uid} (UID BODY.PEEK[])"),
                "UID FETCH (BODY.PEEK[])",
                |r| {
                    if let Response::Fetch(f) = r
                        && f.uid == Some(uid)
                        && f.body.is_some()
                    {
                        body = f.body;
                    }
                    Ok(())
                },
            )
            .await?;
        self.expect_ok("UID FETCH", status)?;
        Ok(body)
    }

    /// Sets the `\Seen` flag of message `uid`.
    pub async fn mark_seen(&mut self, uid: u32) -> Result<(), ImapError> {
        let status = self
            .command(
                &format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)"),
                "UID STORE",
                |_| Ok(()),
            )
            .await?;
        self.expect_ok("UID STORE", status)
    }

    /// Moves message `uid` to `mailbox`: `UID MOVE` (RFC 6851) when offered, else `UID COPY`,
    /// `\Deleted` and, with UIDPLUS (RFC 4315), `UID EXPUNGE` of that message alone (without
    /// UIDPLUS the original stays, flagged `\Deleted`, for the mailbox owner's next expunge).
    pub async fn move_to(&mut self, uid: u32, mailbox: &str) -> Result<(), ImapError> {
        let name = mailbox_arg(mailbox);
        if self.has("MOVE") {
            let status = self
                .command(&format!("UID MOVE {uid} {name}"), "UID MOVE", |_| Ok(()))
                .await?;
            return self.expect_ok("UID MOVE", status);
        }
        let status = self
            .command(&format!("UID COPY {uid} {name}"), "UID COPY", |_| Ok(()))
            .await?;
        self.expect_ok("UID COPY", status)?;
        let status = self
            .command(
                &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
                "UID STORE",
                |_| Ok(()),
            )
            .await?;
        self.expect_ok("UID STORE", status)?;
        if self.has("UIDPLUS") {
            let status = self
                .command(&format!("UID EXPUNGE {uid}"), "UID EXPUNGE", |_| Ok(()))
                .await?;
            self.expect_ok("UID EXPUNGE", status)?;
        }
        Ok(())
    }

    /// `NOOP`: keeps the session alive and tells whether it still is.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        let status = self.command("NOOP", "NOOP", |_| Ok(())).await?;
        self.expect_ok("NOOP", status)
    }
}

/// A mailbox name as a command argument: modified UTF-7, quoted.
fn mailbox_arg(name: &str) -> String {
    // Modified UTF-7 is printable ASCII, which always quotes.
    quoted(&encode_mailbox(name)).unwrap_or_else(|| "\"INBOX\"".into())
}

/// `1:3,7,9:10` for sorted UIDs.
fn sequence_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.saturating_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets() {
        for (uids, want) in [
            (&[][..], ""),
            (&[5][..], "5"),
            (&[1, 2, 3, 7, 9, 10][..], "1:3,7,9:10"),
            (&[4_294_967_294, 4_294_967_295][..], "4294967294:4294967295"),
        ] {
            assert_eq!(sequence_set(uids), want);
        }
    }

    #[test]
    fn mailbox_arguments_are_quoted_utf7() {
        assert_eq!(mailbox_arg("INBOX"), "\"INBOX\"");
        assert_eq!(
            mailbox_arg("Rapports/é \"x\""),
            "\"Rapports/&AOk- \\\"x\\\"\""
        );
    }
}
