//! CSV: one row per finding; a domain without findings gets one row with the finding columns
//! empty, and an invalid name one with only `title` and `detail` (the reason), so every input
//! appears.

use std::io::Write;

use anyhow::Result;
use mailaudit_core::audit::DomainReport;

pub(super) const HEADER: [&str; 12] = [
    "domain",
    "provider",
    "score",
    "spf_lookups",
    "dmarc_policy",
    "id",
    "area",
    "severity",
    "title",
    "detail",
    "evidence",
    "fix",
];

/// The title of the row of an input name that is not a domain name (not audited).
const INVALID_TITLE: &str = "not a domain name: not audited";

pub(super) fn write(w: &mut ::csv::Writer<Box<dyn Write>>, r: &DomainReport) -> Result<()> {
    let score = r.score.map(|s| s.to_string()).unwrap_or_default();
    let lookups = if r.error.is_some() {
        String::new()
    } else {
        r.spf.lookups.to_string()
    };
    let policy = r.dmarc.policy.clone().unwrap_or_default();
    let provider = if r.error.is_some() {
        String::new()
    } else {
        r.provider.as_str().to_string()
    };
    let base = [
        r.domain.as_str(),
        provider.as_str(),
        score.as_str(),
        lookups.as_str(),
        policy.as_str(),
    ];
    if r.findings.is_empty() {
        // An invalid name is no finding: no check ID (every ID in the output is one of
        // `mailaudit checks`), a title that says so, and the reason in `detail`.
        let detail = r.error.clone().unwrap_or_default();
        let title = if r.error.is_some() { INVALID_TITLE } else { "" };
        let row = base
            .iter()
            .copied()
            .chain(["", "", "", title, detail.as_str(), "", ""]);
        w.write_record(row)?;
    }
    for f in &r.findings {
        let evidence = f.evidence.as_deref().unwrap_or("");
        let row = base.iter().copied().chain([
            f.id.as_str(),
            f.area.as_str(),
            f.severity.as_str(),
            f.title.as_str(),
            f.detail.as_str(),
            evidence,
            f.fix.as_str(),
        ]);
        w.write_record(row)?;
    }
    Ok(())
}
