//! DMARC aggregate, failure and SMTP TLS reports from files: the inputs read and opened
//! ([`input`]), each document parsed by its kind ([`parse_doc`]), mapped to the store's form
//! and stored in input order, in bounded memory ([`ingest`]).

pub mod ingest;
pub mod input;

use std::time::Duration;

use mailaudit_core::reports::container::{self, Kind};
use mailaudit_core::reports::{self, Mode, failure};
use serde_json::Value;
use serde_json::value::RawValue;

pub use ingest::{
    Counts, NotStored, Prepared, Stored, ingest_file, ingest_items, new_report, stored_form,
};
pub use input::{FileInput, InputItems, ReadLimits, input_items, inputs, open_input, read_input};

use input::bounded;

/// The parsers' mode for `--strict`.
pub fn mode(strict: bool) -> Mode {
    if strict { Mode::Strict } else { Mode::Lenient }
}

/// One parsed report.
#[derive(Debug)]
pub enum Parsed {
    /// A DMARC aggregate report and its problems.
    Aggregate(reports::AggregateReport, Vec<reports::Problem>),
    /// An SMTP TLS report and its problems.
    Tls(reports::TlsReport, Vec<reports::Problem>),
    /// A DMARC failure report and its problems.
    Failure(failure::FailureReport, Vec<String>),
}

impl Parsed {
    /// `aggregate`, `smtp_tls` or `failure` (the JSON `type` and the store's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Parsed::Aggregate(..) => "aggregate",
            Parsed::Tls(..) => "smtp_tls",
            Parsed::Failure(..) => "failure",
        }
    }

    /// Whether its problems include an error (what `--strict` fails on; a failure report has
    /// none).
    pub fn has_errors(&self) -> bool {
        match self {
            Parsed::Aggregate(_, p) | Parsed::Tls(_, p) => reports::has_errors(p),
            Parsed::Failure(..) => false,
        }
    }

    /// The report as JSON text, serialized straight from its structs (no `Value` on the way:
    /// the store keeps the text), and its problems as JSON.
    fn json(&self) -> (Box<RawValue>, Value) {
        fn raw(r: &impl serde::Serialize) -> Box<RawValue> {
            serde_json::value::to_raw_value(r).unwrap_or_else(|_| {
                // Unreachable for these structs (string keys only); `null` keeps the rule that
                // ingest never panics.
                RawValue::from_string("null".to_string()).expect("null is JSON")
            })
        }
        let v = |r: Result<Value, serde_json::Error>| r.unwrap_or(Value::Null);
        match self {
            Parsed::Aggregate(r, p) => (raw(r), v(serde_json::to_value(p))),
            Parsed::Tls(r, p) => (raw(r), v(serde_json::to_value(p))),
            Parsed::Failure(r, p) => (raw(r), v(serde_json::to_value(p))),
        }
    }
}

/// Parses one document by its kind, within `time` (on a thread of its own; the document is
/// copied to it).
pub fn parse_doc(
    doc: &container::Extracted,
    mode: Mode,
    time: Option<Duration>,
) -> Result<Parsed, String> {
    if time.is_none() {
        return parse_kind(doc, mode);
    }
    let doc = doc.clone();
    bounded(time, move || parse_kind(&doc, mode))?
}

/// Parses one document by its kind. What was recovered from its container (a truncated gzip
/// stream) comes first among its problems, or is added to the error when it cannot be parsed.
pub fn parse_kind(doc: &container::Extracted, mode: Mode) -> Result<Parsed, String> {
    let with = |mut p: Vec<reports::Problem>| {
        if doc.problems.is_empty() {
            return p;
        }
        let mut all = doc.problems.clone();
        all.append(&mut p);
        all
    };
    let parsed = match doc.kind {
        Kind::AggregateXml => reports::parse_aggregate(&doc.bytes, mode)
            .map(|(r, p)| Parsed::Aggregate(r, with(p)))
            .map_err(|e| format!("aggregate report: {e}")),
        Kind::TlsJson => reports::parse_tls_report(&doc.bytes)
            .map(|(r, p)| Parsed::Tls(r, with(p)))
            .map_err(|e| format!("SMTP TLS report: {e}")),
        Kind::FailureEml => failure::parse_failure(&doc.bytes)
            .map(|(r, p)| {
                let mut all: Vec<String> = doc.problems.iter().map(|p| p.message.clone()).collect();
                all.extend(p);
                Parsed::Failure(r, all)
            })
            .map_err(|e| format!("failure report: {e}")),
        _ => Err("not a DMARC aggregate, failure or SMTP TLS report".to_string()),
    };
    parsed.map_err(|e| {
        doc.problems
            .iter()
            .fold(e, |e, p| format!("{e} ({}: {})", p.location, p.message))
    })
}
