//! The [`Store`](crate::Store) implementation shared by both back ends.
//!
//! The SQL is portable between SQLite and PostgreSQL (`$N` parameters, `RETURNING`,
//! `ON CONFLICT … DO UPDATE`); only the schema (migrations), the connection set-up and how a write
//! transaction begins differ. [`impl_store!`] expands the same method bodies for each back end's
//! pool type; each back end provides `self.pool` and `self.write_tx()`.
//!
//! One file per area (inventory, runs, checklist, rollout, schedules, alerts, tenant imports,
//! reports, mailbox cursors) holds that area's SQL and helpers, and a `*_methods!` macro with its
//! methods of the `Store` impl; this module holds what they share: name checks, the column types
//! and the macros that put the impl together.

mod accounts;
mod alerts;
mod batch;
mod checklist;
mod fleet;
mod inventory;
mod mailbox;
mod queue;
mod reports;
mod rollout;
mod runs;
mod schedules;
mod tenant;

pub(crate) use accounts::*;
pub(crate) use alerts::*;
pub(crate) use batch::*;
pub(crate) use checklist::*;
pub(crate) use fleet::*;
pub(crate) use inventory::*;
pub(crate) use mailbox::*;
pub(crate) use queue::*;
pub(crate) use reports::*;
pub(crate) use rollout::*;
pub(crate) use runs::*;
pub(crate) use schedules::*;
pub(crate) use tenant::*;

use crate::StoreError;

/// Normalises a domain name: trimmed, ASCII lower-case, one trailing dot removed.
pub(crate) fn norm_domain(name: &str) -> Result<String, StoreError> {
    let n = name.trim();
    let n = n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase();
    if n.is_empty() {
        return Err(StoreError::Invalid("empty domain name".into()));
    }
    if n.len() > 253 {
        return Err(StoreError::Invalid(format!(
            "domain name longer than 253 characters: {n:?}"
        )));
    }
    if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "domain name with white space or control characters: {n:?}"
        )));
    }
    Ok(n)
}

/// Normalises a customer name: trimmed, non-empty, no control characters.
pub(crate) fn norm_customer(name: &str) -> Result<String, StoreError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(StoreError::Invalid("empty customer name".into()));
    }
    if n.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "customer name with control characters: {n:?}"
        )));
    }
    Ok(n.to_string())
}

/// `LIMIT` values must not be negative.
pub(crate) fn check_limit(limit: i64) -> Result<i64, StoreError> {
    if limit < 0 {
        return Err(StoreError::Invalid(format!("negative limit {limit}")));
    }
    Ok(limit)
}

/// Maps a unique-constraint violation to `Conflict(msg)`, anything else to `Db`.
pub(crate) fn conflict_on_unique(e: sqlx::Error, msg: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(msg()),
        _ => StoreError::Db(e),
    }
}

/// Reads a column stored as a word (`TEXT` in both back ends) as `$ty`, through `$parse`
/// (`Option<$ty>` from `&str`); a word it does not know is a decode error naming it.
macro_rules! word_column {
    ($ty:ty, $what:literal, $parse:expr) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let word = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                ($parse)(word).ok_or_else(|| format!("unknown {} {word:?}", $what).into())
            }
        }
    };
}

word_column!(crate::Role, "role", crate::Role::parse);
word_column!(crate::RunStatus, "run status", crate::RunStatus::parse);
word_column!(crate::ItemState, "checklist state", crate::ItemState::parse);
word_column!(crate::Scope, "schedule scope", crate::Scope::from_key);
word_column!(crate::ReportKind, "report kind", crate::ReportKind::parse);

/// A report's kind is written as its word.
impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for crate::ReportKind
where
    &'q str: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
    }
}

/// A checklist item's stored priority, read as [`ChecklistItem::priority`](crate::ChecklistItem):
/// a value outside `0..=255` (never written) reads as 255.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub struct PriorityColumn(i64);

impl From<PriorityColumn> for u8 {
    fn from(p: PriorityColumn) -> u8 {
        u8::try_from(p.0).unwrap_or(u8::MAX)
    }
}

/// Expands `impl Store for $store` over `$db` (`sqlx::Sqlite` or `sqlx::Postgres`), with every
/// area's methods.
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        store_methods! {
            $store, $db;
            [
                inventory_methods runs_methods checklist_methods rollout_methods
                schedules_methods alerts_methods tenant_methods reports_methods mailbox_methods
                batch_methods queue_methods accounts_methods fleet_methods
            ]
        }
    };
}

/// Gathers the methods of the areas listed in brackets into one `#[async_trait] impl Store`.
/// The attribute would see a macro inside the impl unexpanded, so each area's macro is called
/// in turn with the methods gathered so far, adds its own and calls back with the areas left;
/// when none is left, the impl is written.
macro_rules! store_methods {
    ($store:ty, $db:ty; [] $($methods:tt)*) => {
        #[async_trait::async_trait]
        impl Store for $store {
            $($methods)*

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
    ($store:ty, $db:ty; [$area:ident $($areas:ident)*] $($methods:tt)*) => {
        $area! { $store, $db; [$($areas)*] $($methods)* }
    };
}

pub(crate) use {impl_store, store_methods};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        for (input, want) in [
            ("Example.COM.", Some("example.com")),
            ("  a.b  ", Some("a.b")),
            ("", None),
            (".", None),
            ("a b.com", None),
            ("a\u{0}.com", None),
        ] {
            assert_eq!(norm_domain(input).ok().as_deref(), want, "{input:?}");
        }
        assert!(norm_domain(&"a".repeat(254)).is_err());
    }

    /// Rows map to their structs by name (renamed and JSON columns included), a priority out of
    /// range reads as 255, and a stored word this version cannot read (the schema's CHECK
    /// constraints keep most out) is a decode error, never a default.
    #[tokio::test]
    async fn rows_decode_by_name_and_refuse_unknown_words() {
        use crate::{ChecklistItem, ItemState, NewDomain, Schedule, Scope, SqliteStore, Store};
        let s = SqliteStore::open_memory().await.unwrap();
        let domain = NewDomain {
            name: "a.example".into(),
            ..NewDomain::default()
        };
        s.add_domain(&domain).await.unwrap();
        let item = ChecklistItem {
            domain: "a.example".into(),
            key: "dmarc-quarantine".into(),
            priority: 2,
            title: "Move to quarantine".into(),
            state: ItemState::Open,
            by: None,
            at: None,
            updated_at: 1,
        };
        s.sync_checklist("a.example", std::slice::from_ref(&item))
            .await
            .unwrap();
        let done = s
            .set_item_state("a.example", "dmarc-quarantine", ItemState::Done, "ann", 7)
            .await
            .unwrap();
        assert_eq!(
            (done.priority, done.state, done.by.as_deref(), done.at),
            (2, ItemState::Done, Some("ann"), Some(7))
        );
        assert_eq!(s.checklist("a.example").await.unwrap(), vec![done]);
        let pool = s.pool();
        sqlx::query("UPDATE checklist SET priority = 300")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(s.checklist("a.example").await.unwrap()[0].priority, u8::MAX);

        let fleet = Schedule {
            scope: Scope::Fleet,
            interval_secs: 60,
            next_run_at: 100,
            last_run_at: None,
            paused: false,
        };
        s.set_schedule(&fleet).await.unwrap();
        assert_eq!(s.schedules().await.unwrap(), vec![fleet]);
        sqlx::query("UPDATE schedules SET scope = 'galaxy'")
            .execute(pool)
            .await
            .unwrap();
        let err = s.schedules().await.unwrap_err();
        assert!(err.to_string().contains("\"galaxy\""), "{err}");
        assert!(s.domain("a.example").await.unwrap().key_people.is_empty());
    }
}
