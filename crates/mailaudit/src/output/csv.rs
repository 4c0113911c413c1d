//! CSV: one row per finding; a domain without findings gets one row with the finding columns
//! empty, and an invalid name one with only `title` and `detail` (the reason), so every input
//! appears.

use std::io::Write;

use anyhow::Result;
use mailaudit_core::audit::DomainReport;

pub(super) const HEADER: [&str; 14] = [
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
    "dnssec",
    "dane",
];

/// A cell made safe to open in a spreadsheet: the text policy of [`super::printable`] (no
/// control characters but line feed and tab), then, as OWASP's "CSV Injection" guidance says, a
/// cell that begins with `=`, `+`, `-`, `@`, tab or carriage return (which Excel and LibreOffice
/// read as a formula) gets a leading `'`. Record text comes from DNS: `=HYPERLINK(...)` in a
/// TXT record must reach the sheet as text.
pub(super) fn cell(s: &str) -> std::borrow::Cow<'_, str> {
    let s = super::printable(s);
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        s
    }
}

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
    let (dnssec, dane) = super::dnssec_cells(r);
    let tail = [dnssec.as_str(), dane.as_str()];
    if r.findings.is_empty() {
        // An invalid name is no finding: no check ID (every ID in the output is one of
        // `mailaudit checks`), a title that says so, and the reason in `detail`.
        let detail = r.error.clone().unwrap_or_default();
        let title = if r.error.is_some() { INVALID_TITLE } else { "" };
        let row = base
            .iter()
            .copied()
            .chain(["", "", "", title, detail.as_str(), "", ""])
            .chain(tail);
        w.write_record(row.map(|s| cell(s).into_owned()))?;
    }
    for f in &r.findings {
        let evidence = f.evidence.as_deref().unwrap_or("");
        let row = base
            .iter()
            .copied()
            .chain([
                f.id.as_str(),
                f.area.as_str(),
                f.severity.as_str(),
                f.title.as_str(),
                f.detail.as_str(),
                evidence,
                f.fix.as_str(),
            ])
            .chain(tail);
        w.write_record(row.map(|s| cell(s).into_owned()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formula_cells_are_neutralised() {
        for (given, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-all", "'-all"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("v=spf1 -all", "v=spf1 -all"),
            ("85", "85"),
            ("", ""),
            ("a\u{1b}[2J", "a\\u{1b}[2J"),
        ] {
            assert_eq!(cell(given), want, "{given:?}");
        }
    }
}
