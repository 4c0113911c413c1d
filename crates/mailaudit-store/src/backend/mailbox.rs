//! Mailbox cursors: where `reports fetch` stopped reading each mailbox.

use crate::StoreError;

/// Checks a mailbox cursor's values (see `Store::advance_mailbox_cursor`).
pub(crate) fn check_cursor(
    mailbox: &str,
    uid_validity: i64,
    last_uid: i64,
) -> Result<(), StoreError> {
    if mailbox.trim().is_empty() || mailbox.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "mailbox identity empty or with control characters: {mailbox:?}"
        )));
    }
    if crate::redact_url(mailbox) != mailbox {
        return Err(StoreError::Invalid(
            "a mailbox identity must not hold a password".into(),
        ));
    }
    if !(1..=i64::from(u32::MAX)).contains(&uid_validity) {
        return Err(StoreError::Invalid(format!(
            "UIDVALIDITY {uid_validity} is outside 1..=4294967295"
        )));
    }
    if !(0..=i64::from(u32::MAX)).contains(&last_uid) {
        return Err(StoreError::Invalid(format!(
            "UID {last_uid} is outside 0..=4294967295"
        )));
    }
    Ok(())
}

/// The mailbox cursors' methods (see [`impl_store!`](super::impl_store)).
macro_rules! mailbox_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn mailbox_cursor(
                &self,
                mailbox: &str,
            ) -> Result<Option<crate::MailboxCursor>, StoreError> {
                let row = sqlx::query_as::<_, crate::MailboxCursor>(
                    "SELECT mailbox, uid_validity, last_uid, updated_at FROM mailbox_cursors \
                     WHERE mailbox = $1",
                )
                .bind(mailbox)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            async fn advance_mailbox_cursor(
                &self,
                mailbox: &str,
                uid_validity: i64,
                last_uid: i64,
                now: Time,
            ) -> Result<crate::MailboxCursor, StoreError> {
                check_cursor(mailbox, uid_validity, last_uid)?;
                // One statement: atomic on both back ends. The right-hand sides see the old row.
                let row = sqlx::query_as::<_, crate::MailboxCursor>(
                    "INSERT INTO mailbox_cursors (mailbox, uid_validity, last_uid, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (mailbox) DO UPDATE SET \
                       last_uid = CASE \
                         WHEN mailbox_cursors.uid_validity <> excluded.uid_validity \
                           OR excluded.last_uid > mailbox_cursors.last_uid \
                         THEN excluded.last_uid ELSE mailbox_cursors.last_uid END, \
                       uid_validity = excluded.uid_validity, \
                       updated_at = excluded.updated_at \
                     RETURNING mailbox, uid_validity, last_uid, updated_at",
                )
                .bind(mailbox)
                .bind(uid_validity)
                .bind(last_uid)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok(row)
            }
        }
    };
}

pub(crate) use mailbox_methods;
