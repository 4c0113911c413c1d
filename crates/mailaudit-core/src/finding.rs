//! A finding: one check's verdict on one domain, as data.

use serde::{Deserialize, Serialize};

use crate::checks::{Area, CheckId, Severity};
use crate::dns::DnsError;

/// One finding, as written to JSON and CSV (`docs/json.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check's stable identifier.
    pub id: CheckId,
    /// The area: the check's own, or for DNS-LOOKUP-FAILED the area of the withheld check.
    pub area: Area,
    /// The severity (from the catalogue).
    pub severity: Severity,
    /// One line (from the catalogue).
    pub title: String,
    /// What was found on this domain: the number that broke the limit, the name that failed.
    pub detail: String,
    /// The record or reply read, verbatim, when there is one.
    #[serde(default)]
    pub evidence: Option<String>,
    /// The fix for this domain: the record to publish or the command to run when it can be
    /// computed, otherwise the catalogue's general fix.
    #[serde(default)]
    pub fix: String,
    /// When the fix is DNS records (and nothing else), the same records as a DNS provider's
    /// form asks for them: host, type, value ([`crate::record::from_fix`]); set by the audit.
    /// Empty (and absent from JSON) for any other fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix_records: Vec<crate::record::DnsRecord>,
}

impl Finding {
    /// A finding for `id` with the catalogue's area, severity, title and fix.
    pub fn new(id: CheckId, detail: impl Into<String>) -> Self {
        let info = id.info();
        Finding {
            id,
            area: info.area,
            severity: info.severity,
            title: info.title.to_string(),
            detail: detail.into(),
            evidence: None,
            fix: first_paragraph(info.fix),
            fix_records: Vec::new(),
        }
    }

    /// Attaches the record or reply read.
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = Some(evidence.into());
        self
    }

    /// Replaces the general fix with one computed for this domain.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }

    /// DNS-LOOKUP-FAILED for a check of `area`: `what` says which look-up (e.g. `TXT _dmarc.example.com`).
    pub fn lookup_failed(area: Area, what: &str, err: &DnsError) -> Self {
        let mut f = Finding::new(
            CheckId::DnsLookupFailed,
            format!("{what}: {err}; the {area} verdict is withheld"),
        );
        f.area = area;
        f
    }
}

fn first_paragraph(s: &str) -> String {
    s.split("\n\n").next().unwrap_or("").trim().to_string()
}
