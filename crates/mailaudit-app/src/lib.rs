//! mailaudit's application layer: what the command line and the portal do with the store,
//! between the pure core and their presentation.
//!
//! - [`tracking`]: what happens to an audited domain in the store (its result recorded, its
//!   DMARC roll-out tracked, its checklist verified, regressions queued as alerts);
//! - [`alerts`] (feature `net`): delivery of the alert outbox to webhooks and mail, with backoff;
//! - [`stored`]: what the store holds about a domain, read through the core (its guide, its
//!   fleet line, its history);
//! - [`inventory`]: customers and domains as the user enters them (key people and names
//!   checked, `domain add` that never erases, the changes an entry makes) and the CSV import;
//! - [`reports`]: DMARC and SMTP TLS report files read, parsed and mapped to the store's form,
//!   and the ingest pipeline (input order, bounded memory, a time limit per file).
//! - [`fetch`] (feature `net`): reports read from an IMAP mailbox past its stored cursor, once or watching;
//! - [`exo`]: an Exchange Online import parsed, recorded, correlated with the stored audits, and
//!   the checklists it verifies ticked or reopened;
//!
//! - [`accounts`]: portal users (argon2id password hashes, the role and customer rules, the
//!   last admin kept), the audit log of their changes, and the random tokens of sessions;
//!
//! Library code: typed results and one error type ([`AppError`]), nothing printed.
#![warn(missing_docs)]

pub mod accounts;
#[cfg(feature = "net")]
pub mod alerts;
pub mod customer_report;
pub mod exo;
#[cfg(feature = "net")]
pub mod fetch;
pub mod inventory;
pub mod reports;
pub mod stored;
pub mod tracking;

use mailaudit_store::StoreError;

/// Errors of the application layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Recording a domain's result failed.
    #[error("recording {domain}")]
    Record {
        /// The domain.
        domain: String,
        /// Why.
        source: StoreError,
    },
    /// A report could not be serialised for the store.
    #[error("serialising the report")]
    Serialize(#[source] serde_json::Error),
    /// A stored audit is not a report this version can read.
    #[error("the stored audit of {domain} (run {run}) cannot be read: {source}")]
    StoredReport {
        /// The domain.
        domain: String,
        /// Its run.
        run: i64,
        /// Why.
        source: serde_json::Error,
    },
    /// The previous stored audit of a domain cannot be read.
    #[error("reading the previous audit")]
    PreviousAudit(#[source] serde_json::Error),
    /// A domain name (or other input) the core refuses.
    #[error(transparent)]
    Domain(#[from] mailaudit_core::CoreError),
    /// A key person that is not "Name <address>" or an address.
    #[error("invalid key person {text:?}: expected \"Name <address>\"")]
    InvalidKeyPerson {
        /// The text given (trimmed).
        text: String,
    },
    /// A `parked` cell that is not yes or no.
    #[error("parked must be yes or no, not {value:?}")]
    InvalidParked {
        /// The value given (lower case).
        value: String,
    },
    /// The header row of an inventory CSV cannot be read.
    #[error("cannot read the header row")]
    CsvHeader(#[source] csv::Error),
    /// The header row of an inventory CSV has no `domain` column.
    #[error("the header row has no `domain` column")]
    NoDomainColumn,
    /// A thread or task of the ingest pipeline failed.
    #[error("{0}")]
    Pipeline(String),
    /// An IMAP session failed (`fetch`).
    #[cfg(feature = "net")]
    #[error(transparent)]
    Imap(Box<mailaudit_net::imap::ImapError>),
    /// No OAuth 2.0 access token was obtained (`fetch`).
    #[cfg(feature = "net")]
    #[error(transparent)]
    Token(Box<mailaudit_net::oauth2::TokenError>),
    /// The IMAP server refused the OAuth 2.0 access token (`fetch`).
    #[cfg(feature = "net")]
    #[error(transparent)]
    TokenRefused(Box<fetch::TokenRefused>),
    /// The mailbox's session could not be opened (`fetch`).
    #[cfg(feature = "net")]
    #[error("cannot read {mailbox}")]
    FetchConnect {
        /// The mailbox's identity.
        mailbox: String,
        /// Why.
        source: Box<AppError>,
    },
    /// The IMAP session failed while reading the mailbox (`fetch`).
    #[cfg(feature = "net")]
    #[error("reading {mailbox}")]
    FetchRead {
        /// The mailbox's identity.
        mailbox: String,
        /// Why.
        source: Box<mailaudit_net::imap::ImapError>,
    },
    /// The caller's progress callback failed (`fetch`).
    #[error(transparent)]
    Progress(Box<dyn std::error::Error + Send + Sync>),
    /// An Exchange Online export cannot be read (`exo`).
    #[error(transparent)]
    Exo(#[from] mailaudit_core::exo::ExoError),
    /// A password the account rules refuse (too short, too long, control characters).
    #[error("{0}")]
    WeakPassword(String),
    /// Hashing a password failed (`accounts`).
    #[error("hashing the password: {0}")]
    PasswordHash(String),
    /// The change would leave the portal without an admin (`accounts`).
    #[error("{0}")]
    LastAdmin(String),
}
