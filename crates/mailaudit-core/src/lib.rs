//! The pure core of mailaudit: record parsers, SPF evaluation over a resolver trait, DMARC
//! discovery, DKIM and MX classification, findings and scoring.
//!
//! **Invariant:** this crate does no I/O and depends on no async runtime. DNS data comes in
//! through the [`dns::DnsSource`] trait; typed records and [`finding::Finding`]s come out.
//! Audit outcomes, including malformed records and failed look-ups, are data, never `Err`.
#![warn(missing_docs)]

pub mod alerts;
pub mod audit;
pub mod checks;
pub mod dane;
pub mod dkim;
pub mod dmarc;
pub mod dns;
pub mod duration;
pub mod exo;
pub mod finding;
pub mod guide;
pub mod history;
pub mod imap;
pub mod memory;
pub mod mta_sts;
pub mod mx;
mod name;
pub mod parked;
pub mod powershell;
pub mod record;
pub mod reports;
pub mod score;
pub mod secret;
pub mod smtp;
pub mod spf;
pub mod submission;
pub mod text;
pub mod tlsrpt;

pub use checks::{Area, CheckId, Severity};
pub use dns::{DnsError, DnsSource};
pub use finding::Finding;

/// Errors of the core's own API (not audit outcomes, which are findings).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreError {
    /// A severity name that is not one of critical, high, medium, low, info.
    #[error("unknown severity {0:?} (expected critical, high, medium, low or info)")]
    UnknownSeverity(String),
    /// A check identifier that is not in the catalogue.
    #[error("unknown check {0:?}")]
    UnknownCheck(String),
    /// A domain name that cannot be audited.
    #[error("invalid domain name {name:?}: {reason}")]
    InvalidDomain {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
}
