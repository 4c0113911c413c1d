//! [`ReportView`]: a lenient reading of a stored report (the JSON of
//! [`DomainReport`](crate::audit::DomainReport)), so that reports written by older or newer
//! versions still load: unknown fields are ignored, missing or `null` fields take their
//! defaults, and findings whose ID this version does not know are skipped.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::audit::DomainReport;
use crate::checks::{Area, CheckId};
use crate::finding::Finding;

/// Deserializes `T`, taking `null` as the default.
fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes a list of findings, skipping the entries this version cannot read (an ID from
/// a newer catalogue, a missing field).
fn lenient_findings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Finding>, D::Error> {
    let raw: Option<Vec<serde_json::Value>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// Deserializes `T`, taking anything that is not a `T` (`null`, a value of the wrong type) as
/// the default.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(d: D) -> Result<T, D::Error> {
    let raw = serde_json::Value::deserialize(d)?;
    Ok(T::deserialize(raw).unwrap_or_default())
}

/// Deserializes a list, taking anything that is not a list as empty and each entry that is not
/// a `T` as `T`'s default.
fn lenient_list<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let raw = serde_json::Value::deserialize(d)?;
    Ok(match raw {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| T::deserialize(v).unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    })
}

/// One domain's stored report, as the guide, the checklist and the history read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportView {
    /// The domain audited.
    #[serde(deserialize_with = "or_default")]
    pub domain: String,
    /// Why the input could not be audited (an invalid name), if it could not.
    pub error: Option<String>,
    /// `m365`, `google`, `other` or `none`.
    #[serde(deserialize_with = "or_default")]
    pub provider: String,
    /// Whether the domain was treated as parked.
    #[serde(deserialize_with = "or_default")]
    pub parked: bool,
    /// The findings this version knows, most severe first.
    #[serde(deserialize_with = "lenient_findings")]
    pub findings: Vec<Finding>,
    /// The SPF analysis.
    #[serde(deserialize_with = "or_default")]
    pub spf: SpfView,
    /// The DMARC policy that applies.
    #[serde(deserialize_with = "or_default")]
    pub dmarc: DmarcView,
    /// The DKIM selectors looked at.
    #[serde(deserialize_with = "or_default")]
    pub dkim: DkimView,
    /// The MX records.
    #[serde(deserialize_with = "or_default")]
    pub mx: Vec<MxView>,
    /// The third-party gateway vendor in front of the mailboxes, if any.
    pub gateway: Option<String>,
    /// The tenant's Microsoft 365 MX host, if the MX set names one.
    pub m365_endpoint: Option<String>,
    /// The Direct Send relay test.
    #[serde(deserialize_with = "or_default")]
    pub relay: RelayView,
    /// DNSSEC and DANE (absent when validation was off, or from an older version).
    #[serde(default)]
    pub dnssec: Option<crate::dane::DnssecSection>,
    /// 0–100, or `None` when the domain was not scored.
    pub score: Option<u8>,
}

/// The `spf` object of a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpfView {
    /// The domain's SPF record, verbatim.
    pub record: Option<String>,
    /// DNS-querying terms across the whole tree.
    #[serde(deserialize_with = "or_default")]
    pub lookups: u32,
    /// Void look-ups seen across the tree.
    #[serde(deserialize_with = "or_default")]
    pub void_lookups: u32,
    /// The effective `all` (`-all`, `~all`, `?all`, `+all`).
    pub all: Option<String>,
    /// Whether `spf.protection.outlook.com` is included anywhere in the tree.
    #[serde(deserialize_with = "or_default")]
    pub authorizes_m365: bool,
    /// The include/redirect tree, when stored.
    #[serde(deserialize_with = "lenient")]
    pub tree: Option<SpfNodeView>,
}

/// One record of the stored SPF include/redirect tree ([`SpfNode`](crate::spf::SpfNode) as
/// JSON), read leniently: unknown fields are ignored, and a field that is missing or of the
/// wrong type takes its default (a child that is not an object is a node with no domain and no
/// record), so a tree written by another version never makes the report unreadable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpfNodeView {
    /// The domain whose record this is.
    #[serde(deserialize_with = "lenient")]
    pub domain: Option<String>,
    /// How it was reached: `root`, `include` or `redirect`.
    #[serde(deserialize_with = "lenient")]
    pub via: Option<String>,
    /// The SPF record, verbatim, when one was read.
    #[serde(deserialize_with = "lenient")]
    pub record: Option<String>,
    /// This record's own DNS-querying terms.
    #[serde(deserialize_with = "lenient")]
    pub lookups: u32,
    /// This record's and everything below it.
    #[serde(deserialize_with = "lenient")]
    pub total_lookups: u32,
    /// Void look-ups caused by this record's own terms.
    #[serde(deserialize_with = "lenient")]
    pub void_lookups: u32,
    /// Why the walk stopped here, if it did.
    #[serde(deserialize_with = "lenient")]
    pub error: Option<String>,
    /// The records it includes or redirects to, in order.
    #[serde(deserialize_with = "lenient_list")]
    pub children: Vec<SpfNodeView>,
}

/// The `dmarc` object of a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DmarcView {
    /// The record that applies, verbatim.
    pub record: Option<String>,
    /// `none`, `quarantine` or `reject`; `None` when no policy applies.
    pub policy: Option<String>,
    /// The name the record was read at.
    pub found_at: Option<String>,
    /// Whether the record is inherited from the organizational domain.
    #[serde(deserialize_with = "or_default")]
    pub inherited: bool,
    /// The domain's organizational domain, when it was determined.
    pub org_domain: Option<String>,
    /// Whether a look-up the policy verdict needs failed (the verdict is withheld).
    #[serde(deserialize_with = "or_default")]
    pub lookup_failed: bool,
}

/// The `dkim` object of a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DkimView {
    /// The selectors looked at.
    #[serde(deserialize_with = "or_default")]
    pub selectors: Vec<SelectorView>,
    /// The Microsoft 365 tenant name read from a selector CNAME target.
    pub tenant: Option<String>,
    /// The domain's Microsoft 365 DKIM label read from a selector CNAME target.
    pub m365_label: Option<String>,
}

/// One DKIM selector of a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelectorView {
    /// The selector (`selector1`).
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    /// The CNAME target published at the selector, if any.
    pub cname: Option<String>,
    /// The key size, when a usable key was found.
    pub key_bits: Option<u32>,
}

/// One MX record of a report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MxView {
    /// The exchange host (`.` for a null MX).
    #[serde(deserialize_with = "or_default")]
    pub host: String,
    /// Its preference.
    #[serde(deserialize_with = "or_default")]
    pub preference: u16,
}

/// The `relay` object of a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayView {
    /// `open`, `blocked`, `inconclusive` or `not_tested`.
    #[serde(deserialize_with = "or_default")]
    pub verdict: String,
    /// The deciding server reply, if any.
    pub reply: Option<String>,
    /// The host whose answer decided the verdict.
    pub target: Option<String>,
}

impl Default for RelayView {
    fn default() -> Self {
        RelayView {
            verdict: "not_tested".into(),
            reply: None,
            target: None,
        }
    }
}

impl ReportView {
    /// The view of a report just produced (through its JSON form, as the store keeps it).
    pub fn from_report(r: &DomainReport) -> Self {
        serde_json::to_value(r)
            .ok()
            .and_then(|v| Self::from_json(&v).ok())
            .unwrap_or_else(|| ReportView {
                domain: r.domain.clone(),
                error: r.error.clone(),
                ..ReportView::default()
            })
    }

    /// Reads a stored report. Fails only when `v` is not an object or a field has the wrong
    /// type (a string where a number belongs).
    pub fn from_json(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        ReportView::deserialize(v)
    }

    /// Whether the report has a finding with this ID.
    pub fn has(&self, id: CheckId) -> bool {
        self.findings.iter().any(|f| f.id == id)
    }

    /// The DNS-LOOKUP-FAILED findings of `area`: the checks of that area whose verdict is withheld.
    pub fn withheld(&self, area: Area) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.id == CheckId::DnsLookupFailed && f.area == area)
    }

    /// Whether a look-up of `area` failed, or the domain does not exist (DOMAIN-NOT-FOUND
    /// withholds every verdict), so that the absence of its findings proves nothing.
    pub fn is_withheld(&self, area: Area) -> bool {
        self.not_found() || self.withheld(area).next().is_some()
    }

    /// Whether the domain does not exist (DOMAIN-NOT-FOUND).
    pub fn not_found(&self) -> bool {
        self.has(CheckId::DomainNotFound)
    }

    /// Whether the domain's mail is handled by Microsoft 365.
    pub fn is_m365(&self) -> bool {
        self.provider == "m365"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_reading() {
        for (json, expected) in [
            (json!({}), ReportView::default()),
            (
                json!({"domain": "a.example", "spf": null, "relay": null, "future": 1}),
                ReportView {
                    domain: "a.example".into(),
                    ..ReportView::default()
                },
            ),
            (
                json!({"domain": "a.example", "findings": [
                    {"id": "NOT-A-CHECK", "area": "spf", "severity": "high", "title": "", "detail": ""},
                    {"id": "SPF-MISSING", "area": "spf", "severity": "high", "title": "t", "detail": "d"},
                    {"id": "SPF-SOFTFAIL"}
                ]}),
                ReportView {
                    domain: "a.example".into(),
                    findings: vec![Finding {
                        id: CheckId::SpfMissing,
                        area: Area::Spf,
                        severity: crate::Severity::High,
                        title: "t".into(),
                        detail: "d".into(),
                        evidence: None,
                        fix: String::new(),
                        fix_records: Vec::new(),
                    }],
                    ..ReportView::default()
                },
            ),
        ] {
            assert_eq!(ReportView::from_json(&json).unwrap(), expected, "{json}");
        }
        assert!(ReportView::from_json(&json!([1, 2])).is_err());
        assert!(ReportView::from_json(&json!({"score": "high"})).is_err());
    }

    #[test]
    fn from_report_keeps_the_tree() {
        let dns = crate::memory::MemoryDns::new()
            .txt_at("a.example", "v=spf1 include:b.example ~all")
            .txt_at("b.example", "v=spf1 ip4:192.0.2.1 -all");
        let r = pollster::block_on(crate::audit::audit_domain(
            &dns,
            "a.example",
            &Default::default(),
        ));
        let v = ReportView::from_report(&r);
        assert_eq!(v.domain, "a.example");
        assert_eq!(v.spf.all.as_deref(), Some("~all"));
        assert!(v.spf.tree.is_some());
        // The typed tree holds every field the audit wrote.
        assert_eq!(
            serde_json::to_value(&v.spf.tree).unwrap(),
            serde_json::to_value(&r.spf.tree).unwrap()
        );
        assert!(v.has(CheckId::SpfSoftfail));
        assert_eq!(v.relay.verdict, "not_tested");
    }

    #[test]
    fn the_spf_tree_reads_leniently() {
        let v = ReportView::from_json(&json!({"spf": {"tree": {
            "domain": "a.example",
            "via": "root",
            "record": "v=spf1 include:b.example -all",
            "total_lookups": 2,
            "future": true,
            "children": [
                {"domain": "b.example", "via": "include", "total_lookups": "x", "record": 5,
                 "children": {}},
                7
            ]
        }}}))
        .unwrap();
        let tree = v.spf.tree.unwrap();
        assert_eq!(tree.domain.as_deref(), Some("a.example"));
        assert_eq!(tree.total_lookups, 2);
        assert_eq!(
            tree.children,
            vec![
                SpfNodeView {
                    domain: Some("b.example".into()),
                    via: Some("include".into()),
                    ..SpfNodeView::default()
                },
                SpfNodeView::default(),
            ]
        );
        // A tree that is not an object is no tree; the rest of the report is still read.
        let v = ReportView::from_json(&json!({"spf": {"tree": "broken", "lookups": 3}})).unwrap();
        assert_eq!(v.spf.tree, None);
        assert_eq!(v.spf.lookups, 3);
    }
}
