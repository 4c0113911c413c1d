//! DMARC aggregate reports (RFC 7489 Appendix C, RFC 9990) and SMTP TLS reports (RFC 8460):
//! pure parsers over bytes already read and decompressed by the caller.
//!
//! Real reports are often broken, and anyone can mail a report address, so every parser here
//! is hostile-input safe: no DTD or entity expansion, capped record counts and text lengths,
//! no panics. In [`Mode::Lenient`] what is recoverable is recovered and each deviation is kept
//! as a [`Problem`]; in [`Mode::Strict`] every deviation is an error-level [`Problem`].

use serde::Serialize;

pub mod aggregate;
pub mod analysis;
pub mod senders;
pub mod tls_analysis;
pub mod tlsrpt_report;

// --- containers and failure reports (another engineer's modules; their `mod` lines go below) ---
pub mod container;
pub mod failure;
// --- end of containers and failure reports ---

pub use aggregate::{AggregateReport, parse_aggregate};
pub use tlsrpt_report::{TlsReport, parse_tls_report};

/// How strictly a report is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Recover what is recoverable; deviations are warnings, a broken record is skipped.
    #[default]
    Lenient,
    /// Every deviation from the schema is an error-level problem.
    Strict,
}

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Recovered deviation (lenient mode).
    Warning,
    /// Deviation that strict mode does not accept.
    Error,
}

/// One thing that was wrong with a report, and what the parser did about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Warning (recovered) or error (strict mode).
    pub level: Level,
    /// Where in the report: an element path such as `feedback/record[3]/row/count`.
    pub location: String,
    /// What was wrong and what was done.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(mode: Mode, location: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            level: match mode {
                Mode::Lenient => Level::Warning,
                Mode::Strict => Level::Error,
            },
            location: location.into(),
            message: message.into(),
        }
    }
}

/// True when any problem is error-level, i.e. the report does not pass strict mode.
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(|p| p.level == Level::Error)
}

/// Why a report could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The input is empty (or only whitespace).
    #[error("empty input: not a recognized report")]
    Empty,
    /// The XML has no `<feedback>` element: not a DMARC aggregate report.
    #[error("not a DMARC aggregate report: {0}")]
    NotAggregate(String),
    /// The XML carries a DTD or an entity declaration, which are refused (XXE, entity bombs).
    #[error("refused: the XML contains a {0} (DTDs and entities are never processed)")]
    Dtd(&'static str),
    /// The XML is not well formed at a point where nothing can be recovered (or strict mode).
    #[error("invalid XML at byte {position}: {message}")]
    Xml {
        /// Byte offset of the error.
        position: u64,
        /// The XML reader's message.
        message: String,
    },
    /// More records than the parser accepts.
    #[error("more than {0} records: refused")]
    TooManyRecords(usize),
    /// Elements nested deeper than the parser accepts.
    #[error("elements nested deeper than {0}: refused")]
    TooDeep(usize),
    /// The input is not valid JSON, or not an SMTP TLS report.
    #[error("not an SMTP TLS report: {0}")]
    NotTlsReport(String),
}
