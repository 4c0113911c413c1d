//! The per-domain score, 0–100.
//!
//! A domain starts at 100 and loses points for each finding by severity:
//!
//! | severity | points |
//! |---|---|
//! | critical | 30 |
//! | high | 15 |
//! | medium | 6 |
//! | low | 2 |
//! | info | 0 |
//!
//! The score never goes below 0. Informational findings never count. A domain with a
//! DNS-LOOKUP-FAILED finding gets no score at all (`null`): some verdicts were withheld, and a
//! number computed from the rest would make a domain that could not be read look hardened.
//! Nor does a domain that does not exist (DOMAIN-NOT-FOUND). A fully hardened Microsoft 365
//! domain (DMARC `p=reject` with reports, SPF `-all` with the Microsoft include, DKIM enabled,
//! MTA-STS and TLS-RPT) scores 100; a typical unprotected one (no DMARC, SPF `~all`, no DKIM)
//! scores 100 − 30 − 15 − 15 − … and lands near 30.

use crate::checks::{CheckId, Severity};
use crate::finding::Finding;

/// The points a finding of `severity` costs.
pub fn penalty(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 30,
        Severity::High => 15,
        Severity::Medium => 6,
        Severity::Low => 2,
        Severity::Info => 0,
    }
}

/// The score of a domain with these findings; `None` when a look-up failed (a verdict was
/// withheld) or the domain does not exist.
pub fn score(findings: &[Finding]) -> Option<u8> {
    if findings
        .iter()
        .any(|f| matches!(f.id, CheckId::DnsLookupFailed | CheckId::DomainNotFound))
    {
        return None;
    }
    let lost: u32 = findings.iter().map(|f| penalty(f.severity)).sum();
    Some(100u32.saturating_sub(lost) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_table() {
        let f = |id| Finding::new(id, "");
        for (findings, expected) in [
            (vec![], Some(100)),
            (vec![f(CheckId::MxNull)], Some(100)),
            (vec![f(CheckId::DnsLookupFailed), f(CheckId::MxNull)], None),
            (vec![f(CheckId::DomainNotFound)], None),
            (vec![f(CheckId::DmarcMissing)], Some(70)),
            (
                vec![
                    f(CheckId::DmarcMissing),
                    f(CheckId::SpfSoftfail),
                    f(CheckId::TlsrptMissing),
                ],
                Some(53),
            ),
            (vec![f(CheckId::DmarcMissing); 4], Some(0)),
            // DNSSEC and DANE: bogus and a TLSA mismatch weigh as other high transport
            // findings; the informational ones cost nothing.
            (vec![f(CheckId::DnssecBogus)], Some(85)),
            (vec![f(CheckId::DaneTlsaMismatch)], Some(85)),
            (vec![f(CheckId::StarttlsMissing)], Some(85)),
            (vec![f(CheckId::DaneTlsaUnusable)], Some(94)),
            (
                vec![
                    f(CheckId::DnssecUnsigned),
                    f(CheckId::DnssecMxUnsigned),
                    f(CheckId::DaneTlsaMissing),
                ],
                Some(100),
            ),
        ] {
            assert_eq!(score(&findings), expected, "{findings:?}");
        }
    }
}
