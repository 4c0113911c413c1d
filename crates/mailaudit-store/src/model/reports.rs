//! Ingested DMARC aggregate, DMARC failure and SMTP TLS reports.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;
use crate::error::StoreError;
use crate::raw::RawFile;

/// The kind of an ingested report ([`NewReport::kind`]), stored as its word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A DMARC aggregate report (`aggregate`).
    Aggregate,
    /// A DMARC failure report (`failure`).
    Failure,
    /// An SMTP TLS report (`smtp_tls`).
    SmtpTls,
}

impl ReportKind {
    /// Every kind, in the order of the stored words.
    pub const ALL: [ReportKind; 3] = [
        ReportKind::Aggregate,
        ReportKind::Failure,
        ReportKind::SmtpTls,
    ];

    /// The stored word (also the JSON `type` of `reports parse`): `aggregate`, `failure` or
    /// `smtp_tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Aggregate => "aggregate",
            ReportKind::Failure => "failure",
            ReportKind::SmtpTls => "smtp_tls",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<Self> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for ReportKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        ReportKind::parse(s).ok_or_else(|| {
            let words: Vec<&str> = ReportKind::ALL.iter().map(|k| k.as_str()).collect();
            StoreError::Invalid(format!(
                "unknown report kind {s:?} (one of {})",
                words.join(", ")
            ))
        })
    }
}

/// Compares with the stored word.
impl PartialEq<&str> for ReportKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One record (`<record>` row) of a DMARC aggregate report, flattened for analysis. Absent values
/// are empty strings; lists are comma-separated, in the report's order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, sqlx::FromRow)]
pub struct AggregateRow {
    /// The sending IP address (`row/source_ip`).
    pub source_ip: String,
    /// Messages from that source with these results (`row/count`).
    #[sqlx(rename = "message_count")]
    pub count: i64,
    /// The applied disposition (`policy_evaluated/disposition`).
    pub disposition: String,
    /// DKIM alignment as evaluated by the reporter (`policy_evaluated/dkim`: `pass` or `fail`).
    pub dkim_aligned: String,
    /// SPF alignment as evaluated by the reporter (`policy_evaluated/spf`: `pass` or `fail`).
    pub spf_aligned: String,
    /// The RFC5322.From domain (`identifiers/header_from`).
    pub header_from: String,
    /// The RFC5321.MailFrom domain (`identifiers/envelope_from`), empty when not reported.
    pub envelope_from: String,
    /// The DKIM signing domains (`auth_results/dkim/domain`), comma-separated.
    pub dkim_domains: String,
    /// Their results (`auth_results/dkim/result`), comma-separated, same order.
    pub dkim_results: String,
    /// The SPF domains checked (`auth_results/spf/domain`), comma-separated.
    pub spf_domains: String,
    /// Their results (`auth_results/spf/result`), comma-separated, same order.
    pub spf_results: String,
}

impl AggregateRow {
    /// The row in the form [`mailaudit_core::reports::analysis`] analyses, for a report whose
    /// period begins at `begin`, with the source's reverse DNS name `ptr`; `None` when the
    /// stored source is not an IP address.
    pub fn to_analysis_row(
        &self,
        begin: Time,
        ptr: Option<String>,
    ) -> Option<mailaudit_core::reports::analysis::Row> {
        let results: Vec<&str> = self.dkim_results.split(',').collect();
        Some(mailaudit_core::reports::analysis::Row {
            begin,
            source_ip: self.source_ip.parse().ok()?,
            ptr,
            count: u64::try_from(self.count).unwrap_or(0),
            disposition: self.disposition.clone(),
            dkim_aligned: self.dkim_aligned == "pass",
            spf_aligned: self.spf_aligned == "pass",
            header_from: self.header_from.clone(),
            dkim_domains: self
                .dkim_domains
                .split(',')
                .zip(results.iter())
                .filter(|(d, res)| !d.is_empty() && **res == "pass")
                .map(|(d, _)| d.to_string())
                .collect(),
            spf_domains: self
                .spf_domains
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect(),
            dkim_pass: results.contains(&"pass"),
            spf_pass: self.spf_results.split(',').any(|s| s == "pass"),
        })
    }
}

/// A report to store ([`Store::ingest_report`]).
#[derive(Debug, Clone)]
pub struct NewReport {
    /// Its kind.
    pub kind: ReportKind,
    /// Who sent it (the reporting organization's name or its contact address).
    pub reporter: String,
    /// The reporter's id of the report.
    pub report_id: String,
    /// The domain the report is about; normalised like a domain name, may be empty (a failure
    /// report naming none).
    pub policy_domain: String,
    /// Start of the reported period.
    pub begin: Time,
    /// End of the reported period.
    pub end: Time,
    /// Hex SHA-256 of the report's content, computed by the caller (64 hex digits, any case;
    /// stored lower-case).
    pub content_hash: String,
    /// Where it came from (the file name).
    pub source: String,
    /// The original file as read, before decompression, in its stored form ([`RawFile`]:
    /// `RawFile::compress` it off the writing path; `vec.into()` keeps it as it is).
    pub raw: RawFile,
    /// The parsed report (for an aggregate report, without its records: they are its `rows`,
    /// and all of them are in `raw`), as JSON text (serialized straight from the parser's structs with
    /// `serde_json::value::to_raw_value`: no `serde_json::Value` is built on the way to the
    /// store).
    pub parsed: Box<serde_json::value::RawValue>,
    /// What was wrong with it (a JSON array).
    pub problems: serde_json::Value,
    /// Its records (aggregate reports; empty for the other kinds).
    pub rows: Vec<AggregateRow>,
}

/// The outcome of [`Store::ingest_report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ingested {
    /// Stored under this id.
    New(i64),
    /// Already stored (same key or same content hash) under this id; nothing was written.
    Duplicate(i64),
}

impl Ingested {
    /// The report's id, new or existing.
    pub fn id(self) -> i64 {
        match self {
            Ingested::New(id) | Ingested::Duplicate(id) => id,
        }
    }
}

/// A stored report, without its raw bytes ([`Store::report_raw`]) and parsed form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoredReport {
    /// Report id.
    pub id: i64,
    /// Its kind.
    pub kind: ReportKind,
    /// Who sent it.
    pub reporter: String,
    /// The reporter's id of the report.
    pub report_id: String,
    /// The domain the report is about.
    pub policy_domain: String,
    /// Start of the reported period.
    #[sqlx(rename = "begin_time")]
    pub begin: Time,
    /// End of the reported period.
    #[sqlx(rename = "end_time")]
    pub end: Time,
    /// Lower-case hex SHA-256 of its content.
    pub content_hash: String,
    /// Where it came from (the file name).
    pub source: String,
    /// When it was ingested.
    pub ingested_at: Time,
    /// What was wrong with it (a JSON array).
    #[sqlx(json)]
    pub problems: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored words are the migrations' CHECK list and the JSON's; an unknown one is refused.
    #[test]
    fn report_kinds_are_their_stored_words() {
        let words: Vec<String> = ReportKind::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(words, ["aggregate", "failure", "smtp_tls"]);
        for k in ReportKind::ALL {
            assert_eq!(k.as_str().parse::<ReportKind>().unwrap(), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::from(k.as_str())
            );
        }
        for bad in ["forensic", "Aggregate", "smtp-tls", ""] {
            assert!(
                matches!(bad.parse::<ReportKind>(), Err(StoreError::Invalid(_))),
                "{bad}"
            );
        }
        for dir in ["sqlite", "postgres"] {
            let sql = std::fs::read_to_string(format!(
                "{}/migrations/{dir}/0003_reports.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            assert!(
                sql.contains("CHECK (kind IN ('aggregate', 'failure', 'smtp_tls'))"),
                "{dir}"
            );
        }
    }

    #[test]
    fn aggregate_row_to_analysis_row() {
        let r = AggregateRow {
            source_ip: "2001:db8::1".into(),
            count: 7,
            disposition: "none".into(),
            dkim_aligned: "pass".into(),
            spf_aligned: "fail".into(),
            header_from: "contoso.example".into(),
            envelope_from: String::new(),
            dkim_domains: "esp.example,contoso.example".into(),
            dkim_results: "fail,pass".into(),
            spf_domains: "esp.example".into(),
            spf_results: "softfail".into(),
        };
        let row = r
            .to_analysis_row(86_400, Some("o1.esp.example".into()))
            .unwrap();
        assert_eq!(row.source_ip.to_string(), "2001:db8::1");
        assert_eq!((row.begin, row.count), (86_400, 7));
        assert!(row.dkim_aligned && !row.spf_aligned && row.dkim_pass && !row.spf_pass);
        assert_eq!(row.dkim_domains, ["contoso.example"]);
        assert_eq!(row.ptr.as_deref(), Some("o1.esp.example"));
        let bad = AggregateRow {
            source_ip: "not an ip".into(),
            ..r
        };
        assert!(bad.to_analysis_row(0, None).is_none());
    }
}
