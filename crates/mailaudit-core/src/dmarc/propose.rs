//! The one function that builds every DMARC record mailaudit proposes: the audit's fixes
//! (DMARC-MISSING, DMARC-POLICY-NONE, DMARC-POLICY-QUARANTINE, the tag repairs), the guide's
//! roll-out records and the parked lock-down all come from [`propose`], so the record a finding
//! proposes and the one the guide shows never disagree, and neither drops the domain's report
//! addresses or other tags.

use super::{Policy, Record, Uri};

/// The record to publish for `target`, built from the `current` record (when there is one):
///
/// - every tag the domain chose is kept: `rua` and `ruf` (their valid `mailto:` URIs), `adkim`,
///   `aspf`, `fo`, `psd`, unknown tags;
/// - `p` becomes `target`; `sp` and `np`, when weaker than `target`, are raised to it (a weaker
///   one would be DMARC-SUBDOMAIN-WEAK);
/// - `t=y` (testing mode) and the tags RFC 9989 removed (`pct`, `rf`, `ri`) are dropped, since
///   each would make the proposed policy apply to less than all failing mail (DMARC-TESTING,
///   DMARC-PCT-PARTIAL, DMARC-DEPRECATED-TAG);
/// - invalid report URIs are dropped, and `default_rua` is added when no valid `rua` is left
///   (DMARC-NO-RUA, DMARC-RUA-INVALID).
///
/// Without a current record the result is `v=DMARC1; p=<target>; rua=<default_rua>`.
pub fn propose(current: Option<&Record>, target: Policy, default_rua: &Uri) -> Record {
    let mut r = current.cloned().unwrap_or_else(|| Record::new(target));
    r.v = "DMARC1".into();
    r.p = Some(target);
    r.rua.retain(Uri::is_valid_mailto);
    r.ruf.retain(Uri::is_valid_mailto);
    if r.rua.is_empty() {
        r.rua.push(default_rua.clone());
    }
    r.t = None;
    r.pct = None;
    r.rf = None;
    r.ri = None;
    for sub in [&mut r.sp, &mut r.np] {
        if sub.is_some_and(|s| s < target) {
            *sub = Some(target);
        }
    }
    r
}

/// The record of the next roll-out phase of `current` (none → quarantine → reject; a record
/// without a valid `p` counts as `p=none`), built by [`propose`]; `None` at `p=reject`.
pub fn propose_next(current: &Record, default_rua: &Uri) -> Option<Record> {
    let next = current.p.unwrap_or(Policy::None).next()?;
    Some(propose(Some(current), next, default_rua))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmarc::parse;

    fn rua() -> Uri {
        Uri::new("mailto:dmarc-reports@example.com")
    }

    #[test]
    fn keeps_every_tag_the_domain_chose() {
        let now = parse("v=DMARC1; p=none; rua=mailto:x@y.example; fo=1").unwrap();
        let next = propose_next(&now, &rua()).unwrap();
        assert_eq!(
            next.to_string(),
            "v=DMARC1; p=quarantine; rua=mailto:x@y.example; fo=1"
        );
        let after = propose_next(&next, &rua()).unwrap();
        assert_eq!(
            after.to_string(),
            "v=DMARC1; p=reject; rua=mailto:x@y.example; fo=1"
        );
        assert_eq!(propose_next(&after, &rua()), None);
        let (full, _) = crate::dmarc::parse_lenient(
            "v=DMARC1; p=none; sp=none; np=none; adkim=s; aspf=s; pct=50; t=y; rf=afrf; \
             ri=3600; rua=mailto:a@example.com,https://bad; ruf=mailto:f@example.com; fo=1",
        )
        .unwrap();
        let q = propose(Some(&full), Policy::Quarantine, &rua()).to_string();
        for kept in [
            "p=quarantine",
            "sp=quarantine",
            "np=quarantine",
            "adkim=s",
            "aspf=s",
            "rua=mailto:a@example.com",
            "ruf=mailto:f@example.com",
            "fo=1",
        ] {
            assert!(q.contains(kept), "{kept} in {q}");
        }
        for dropped in ["pct=", "t=y", "rf=", "ri=", "https://bad"] {
            assert!(!q.contains(dropped), "{dropped} in {q}");
        }
    }

    #[test]
    fn without_a_record_or_a_valid_rua() {
        assert_eq!(
            propose(None, Policy::None, &rua()).to_string(),
            "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"
        );
        let now = parse("v=DMARC1; p=quarantine; rua=https://x.example").unwrap();
        assert_eq!(
            propose_next(&now, &rua()).unwrap().to_string(),
            "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.com"
        );
        // A stronger subdomain policy is kept as it is.
        let now = parse("v=DMARC1; p=none; sp=reject; rua=mailto:x@y.example").unwrap();
        assert_eq!(
            propose_next(&now, &rua()).unwrap().to_string(),
            "v=DMARC1; p=quarantine; sp=reject; rua=mailto:x@y.example"
        );
    }
}
