//! mailaudit's application layer: what the command line and the portal do with the store,
//! between the pure core and their presentation.
//!
//! - [`tracking`]: what happens to an audited domain in the store (its result recorded, its
//!   DMARC roll-out tracked, its checklist verified, regressions queued as alerts);
//! - [`alerts`]: delivery of the alert outbox to webhooks and mail, with backoff;
//! - [`stored`]: what the store holds about a domain, read through the core (its guide, its
//!   fleet line, its history);
//! - [`reports`]: DMARC and SMTP TLS report files read, parsed and mapped to the store's form,
//!   and the ingest pipeline (input order, bounded memory, a time limit per file).
//!
//! Library code: typed results and one error type ([`AppError`]), nothing printed.
#![warn(missing_docs)]

pub mod alerts;
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
    /// A thread or task of the ingest pipeline failed.
    #[error("{0}")]
    Pipeline(String),
}
