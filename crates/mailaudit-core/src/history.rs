//! What changed between two audits of one domain: new, fixed and regressed findings, and the
//! changes of state that matter (the relay test, the DMARC policy, the SPF `all`).
//!
//! A finding is identified by its check ID and area (the area matters for DNS-LOOKUP-FAILED,
//! which takes the area of the check it withheld); its detail may change between audits (a
//! look-up count going from 11 to 12) without the finding being new.

use serde::Serialize;

use crate::checks::{Area, CheckId};
use crate::finding::Finding;
use crate::guide::ReportView;

/// The difference between the previous audit and the current one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// **New**: findings of the current report that the previous report did not have and that
    /// no earlier report had either: a first appearance.
    pub new: Vec<Finding>,
    /// **Fixed**: findings of the previous report that the current report does not have,
    /// although the current report's look-ups for that area succeeded. (A finding that
    /// disappears because its area's look-ups failed is not fixed: see `unverified`.)
    pub fixed: Vec<Finding>,
    /// **Regressed**: findings of the current report that the previous report did not have but
    /// some earlier report did: a problem that had been fixed came back. Disjoint from `new`.
    pub regressed: Vec<Finding>,
    /// Findings of the previous report that the current report cannot confirm or refute,
    /// because a look-up of their area failed (DNS-LOOKUP-FAILED withholds the verdict).
    pub unverified: Vec<Finding>,
    /// Changes of state, better or worse ([`Change::regression`] says which).
    pub changes: Vec<Change>,
    /// The score before and after.
    pub score: (Option<u8>, Option<u8>),
}

/// A change in one aspect of the domain's state between two audits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed: `relay`, `dmarc.policy` or `spf.all`.
    pub what: &'static str,
    /// The previous value (`None`: absent).
    pub before: Option<String>,
    /// The current value.
    pub after: Option<String>,
    /// Whether the change weakens the domain (relay blocked → open, DMARC reject → none,
    /// SPF `-all` → `~all`, a policy or record that disappeared).
    pub regression: bool,
}

impl Diff {
    /// Whether anything got worse: a regressed finding, a new finding or a state change that
    /// is a regression. (For a domain audited before, a new finding is a degradation too.)
    pub fn worsened(&self) -> bool {
        !self.new.is_empty()
            || !self.regressed.is_empty()
            || self.changes.iter().any(|c| c.regression)
    }

    /// Whether nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty()
            && self.fixed.is_empty()
            && self.regressed.is_empty()
            && self.unverified.is_empty()
            && self.changes.is_empty()
            && self.score.0 == self.score.1
    }
}

fn key(f: &Finding) -> (CheckId, Area) {
    (f.id, f.area)
}

fn has(r: &ReportView, k: (CheckId, Area)) -> bool {
    r.findings.iter().any(|f| key(f) == k)
}

/// The areas whose verdict a report withholds.
fn withheld(r: &ReportView, area: Area) -> bool {
    r.is_withheld(area) || (area == Area::Dmarc && r.dmarc.lookup_failed)
}

/// Rank of a DMARC policy: none < quarantine < reject; `None` (no policy) below all.
fn dmarc_rank(p: Option<&str>) -> u8 {
    match p.map(str::to_ascii_lowercase).as_deref() {
        Some("reject") => 3,
        Some("quarantine") => 2,
        Some("none") => 1,
        _ => 0,
    }
}

/// Rank of an SPF `all`: `+all` < none/`?all` < `~all` < `-all`.
fn spf_rank(all: Option<&str>) -> u8 {
    match all {
        Some("-all") => 3,
        Some("~all") => 2,
        Some("+all") => 0,
        _ => 1,
    }
}

/// Rank of a relay verdict where it decides anything: open < blocked. `None` when the
/// verdict proves nothing (inconclusive, not tested).
fn relay_rank(v: &str) -> Option<u8> {
    match v {
        "open" => Some(0),
        "blocked" => Some(1),
        _ => None,
    }
}

/// Whether [`diff`] of `prev` and `cur` reads `earlier` at all: only when `cur` has a finding
/// `prev` did not (is it new, or back?). An unchanged domain's diff needs no older report, so a
/// caller can read older reports only for the domains that need them.
pub fn needs_earlier(prev: &ReportView, cur: &ReportView) -> bool {
    cur.findings.iter().any(|f| !has(prev, key(f)))
}

/// Compares `cur` with `prev`, using `earlier` (the reports before `prev`, in any order) to
/// tell a regression from a first appearance. See [`Diff`] for the definitions.
///
/// Duplicates (several findings with one ID, as for an unresolvable MX host) are reported
/// once, by the first of them.
pub fn diff(prev: &ReportView, cur: &ReportView, earlier: &[ReportView]) -> Diff {
    let mut d = Diff {
        score: (prev.score, cur.score),
        ..Diff::default()
    };
    let mut seen = Vec::new();
    for f in &cur.findings {
        let k = key(f);
        if seen.contains(&k) {
            continue;
        }
        seen.push(k);
        if has(prev, k) {
            continue;
        }
        if earlier.iter().any(|e| has(e, k)) {
            d.regressed.push(f.clone());
        } else {
            d.new.push(f.clone());
        }
    }
    let mut seen = Vec::new();
    for f in &prev.findings {
        let k = key(f);
        if seen.contains(&k) || has(cur, k) {
            continue;
        }
        seen.push(k);
        if f.id == CheckId::DnsLookupFailed {
            // A look-up that works again: fixed, whatever the area.
            d.fixed.push(f.clone());
        } else if withheld(cur, f.area) {
            d.unverified.push(f.clone());
        } else {
            d.fixed.push(f.clone());
        }
    }

    // Relay: only decisive verdicts are compared.
    if let (Some(a), Some(b)) = (
        relay_rank(&prev.relay.verdict),
        relay_rank(&cur.relay.verdict),
    ) && a != b
    {
        d.changes.push(Change {
            what: "relay",
            before: Some(prev.relay.verdict.clone()),
            after: Some(cur.relay.verdict.clone()),
            regression: b < a,
        });
    }
    // DMARC policy: not when the current verdict is withheld.
    let (pp, cp) = (prev.dmarc.policy.as_deref(), cur.dmarc.policy.as_deref());
    if !withheld(cur, Area::Dmarc)
        && !withheld(prev, Area::Dmarc)
        && dmarc_rank(pp) != dmarc_rank(cp)
    {
        d.changes.push(Change {
            what: "dmarc.policy",
            before: pp.map(str::to_string),
            after: cp.map(str::to_string),
            regression: dmarc_rank(cp) < dmarc_rank(pp),
        });
    }
    let (pa, ca) = (prev.spf.all.as_deref(), cur.spf.all.as_deref());
    if !withheld(cur, Area::Spf) && !withheld(prev, Area::Spf) && pa != ca {
        d.changes.push(Change {
            what: "spf.all",
            before: pa.map(str::to_string),
            after: ca.map(str::to_string),
            regression: spf_rank(ca) < spf_rank(pa),
        });
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;

    fn f(id: CheckId) -> Finding {
        Finding::new(id, "x")
    }

    fn report(ids: &[CheckId], dmarc: Option<&str>, relay: &str) -> ReportView {
        let mut r = ReportView {
            domain: "contoso.example".into(),
            findings: ids.iter().map(|id| f(*id)).collect(),
            ..ReportView::default()
        };
        r.dmarc.policy = dmarc.map(str::to_string);
        r.relay.verdict = relay.into();
        r
    }

    fn ids(v: &[Finding]) -> Vec<CheckId> {
        v.iter().map(|f| f.id).collect()
    }

    #[test]
    fn earlier_reports_matter_only_for_findings_prev_lacks() {
        use CheckId::*;
        let prev = report(&[DmarcPolicyNone, TlsrptMissing], Some("none"), "blocked");
        let older = report(&[SpfSoftfail], Some("none"), "not_tested");
        // The same findings, or fewer, and other states: the diff is the same without `older`.
        for cur in [
            report(&[DmarcPolicyNone, TlsrptMissing], Some("reject"), "open"),
            report(&[TlsrptMissing], Some("none"), "blocked"),
        ] {
            assert!(!needs_earlier(&prev, &cur));
            assert_eq!(
                diff(&prev, &cur, std::slice::from_ref(&older)),
                diff(&prev, &cur, &[])
            );
        }
        // A finding prev lacks: new or back, which only `older` tells.
        let cur = report(&[SpfSoftfail, TlsrptMissing], Some("none"), "blocked");
        assert!(needs_earlier(&prev, &cur));
        assert_ne!(diff(&prev, &cur, &[older]), diff(&prev, &cur, &[]));
    }

    #[test]
    fn new_fixed_regressed() {
        use CheckId::*;
        let older = report(&[SpfSoftfail], Some("none"), "not_tested");
        let prev = report(&[DmarcPolicyNone, TlsrptMissing], Some("none"), "blocked");
        let cur = report(
            &[SpfSoftfail, MtaStsMissing, TlsrptMissing],
            Some("reject"),
            "open",
        );
        let d = diff(&prev, &cur, &[older]);
        assert_eq!(ids(&d.new), [MtaStsMissing]);
        assert_eq!(ids(&d.regressed), [SpfSoftfail]);
        assert_eq!(ids(&d.fixed), [DmarcPolicyNone]);
        assert!(d.unverified.is_empty());
        assert_eq!(
            d.changes,
            [
                Change {
                    what: "relay",
                    before: Some("blocked".into()),
                    after: Some("open".into()),
                    regression: true
                },
                Change {
                    what: "dmarc.policy",
                    before: Some("none".into()),
                    after: Some("reject".into()),
                    regression: false
                },
            ]
        );
        assert!(d.worsened());
    }

    #[test]
    fn state_changes() {
        for (before, after, regression) in [
            (
                (Some("reject"), "blocked"),
                (Some("quarantine"), "blocked"),
                Some(true),
            ),
            ((Some("reject"), "blocked"), (None, "blocked"), Some(true)),
            ((None, "open"), (Some("none"), "blocked"), Some(false)),
            ((Some("none"), "open"), (Some("none"), "inconclusive"), None),
            ((Some("none"), "not_tested"), (Some("none"), "open"), None),
        ] {
            let d = diff(
                &report(&[], before.0, before.1),
                &report(&[], after.0, after.1),
                &[],
            );
            match regression {
                None => assert!(d.changes.is_empty(), "{before:?} {after:?}"),
                Some(r) => assert!(
                    !d.changes.is_empty() && d.changes.iter().all(|c| c.regression == r),
                    "{before:?} {after:?}: {:?}",
                    d.changes
                ),
            }
        }
        let mut a = report(&[], None, "");
        let mut b = a.clone();
        a.spf.all = Some("-all".into());
        b.spf.all = Some("~all".into());
        assert!(diff(&a, &b, &[]).changes[0].regression);
        assert!(!diff(&b, &a, &[]).changes[0].regression);
    }

    #[test]
    fn a_withheld_verdict_is_not_a_fix() {
        use CheckId::*;
        let prev = report(&[DmarcPolicyNone, SpfSoftfail], Some("none"), "");
        let mut cur = report(&[SpfSoftfail], None, "");
        cur.findings.push(Finding::lookup_failed(
            Area::Dmarc,
            "TXT _dmarc.contoso.example",
            &DnsError::ServFail,
        ));
        cur.dmarc.lookup_failed = true;
        let d = diff(&prev, &cur, &[]);
        assert!(d.fixed.is_empty());
        assert_eq!(ids(&d.unverified), [DmarcPolicyNone]);
        assert_eq!(ids(&d.new), [DnsLookupFailed]);
        assert!(d.changes.is_empty(), "no policy change while withheld");
        // The look-up works again: the failure is fixed.
        let d = diff(&cur, &prev, &[]);
        assert_eq!(ids(&d.fixed), [DnsLookupFailed]);
    }

    #[test]
    fn identical_reports() {
        let r = report(
            &[CheckId::SpfSoftfail, CheckId::SpfSoftfail],
            Some("none"),
            "open",
        );
        let d = diff(&r, &r, std::slice::from_ref(&r));
        assert!(d.is_empty() && !d.worsened(), "{d:?}");
    }
}
