-- mailaudit store, schema version 4 (PostgreSQL): where `mailaudit reports fetch` stopped reading
-- each IMAP mailbox, so that a poll downloads only the messages that arrived since. `mailbox` is the
-- mailbox's identity (imaps://user@host:port/Mailbox; never a password); UIDs are only comparable
-- while `uid_validity` stays the same (RFC 3501 section 2.3.1.1), so a new UIDVALIDITY replaces the
-- row. The cursor is an optimisation: reports are deduplicated by content anyway.

CREATE TABLE mailbox_cursors (
    mailbox        TEXT    PRIMARY KEY,
    uid_validity   BIGINT  NOT NULL CHECK (uid_validity BETWEEN 1 AND 4294967295),
    last_uid       BIGINT  NOT NULL CHECK (last_uid BETWEEN 0 AND 4294967295),
    updated_at     BIGINT  NOT NULL
);
