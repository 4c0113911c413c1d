//! Where `reports fetch` stopped reading a mailbox.

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;

/// Where `reports fetch` stopped reading an IMAP mailbox ([`Store::advance_mailbox_cursor`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct MailboxCursor {
    /// The mailbox's identity, e.g. `imaps://dmarc@mail.example:993/INBOX` (never a password).
    pub mailbox: String,
    /// The mailbox's UIDVALIDITY the UIDs belong to (1 to 2^32-1).
    pub uid_validity: i64,
    /// Every message with this UID or lower has been read (0: none yet).
    pub last_uid: i64,
    /// When the cursor last moved.
    pub updated_at: Time,
}
