//! The remediation guide's records fix what they address: for fixture domains in several
//! states, the guide's records are published in the lab zone (`LabDns::set_zone`) and a
//! re-audit through the real resolver, with a fresh cache, no longer raises the finding, and
//! the checklist's `verify` now says the item is done.

use std::collections::BTreeMap;
use std::time::Duration;

use mailaudit_core::CheckId;
use mailaudit_core::audit::{AuditOptions, audit_domain};
use mailaudit_core::guide::{self, GuideContext, ReportView};
use mailaudit_lab::{LabDns, LabRecord, Zone};

use crate::resolver_for;

/// 2026-02-02 00:00:00 UTC.
const TODAY: i64 = 1_769_990_400;

const ZONE: &str = r#"
spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 ip6:2a01:111:f400::/48 -all"
guide-test.mail.protection.outlook.com A 127.0.0.1
selector1-dkim-guide-test._domainkey.guidetenant.onmicrosoft.com TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA8OOxifOIX0+u/n3wcb7zYlOVrUQB3WiGWfWO7NkJo9JJHdWIGE9Y63TncmicabS0/9drCBr8XzjefYsj1UP8G2MDkEN2sEh4gCN6/Qiju71Iuf/+m4zmVg5gT/j07xvTMcv62v+m1d9Z3On3V/tK0lSIOEjBXhMZ+SOXNcClnDQ2crK8w4ECRYAQOeCx5RrIn4wpe1n4yIkc40h1og859kfU/2CLB/knk3cniJUqE8+DJuSuXYk9N6CUi6TmTYJkiUV8FhUZKFxpWnB6eOPTxlAuarTRGuWefOjHcmVO+cfqlvGbRtcmVQqvFq0SATAJRuNgTQ19Q974e/O0LK8b4wIDAQAB"

# No DMARC record.
no-dmarc.guide.test MX 0 guide-test.mail.protection.outlook.com
no-dmarc.guide.test TXT "v=spf1 include:spf.protection.outlook.com -all"
no-dmarc.guide.test TXT "MS=ms11111111"

# p=none.
dmarc-none.guide.test MX 0 guide-test.mail.protection.outlook.com
dmarc-none.guide.test TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.dmarc-none.guide.test TXT "v=DMARC1; p=none; rua=mailto:dmarc@dmarc-none.guide.test"

# SPF ~all, with another TXT record at the apex that must survive.
softfail.guide.test MX 0 guide-test.mail.protection.outlook.com
softfail.guide.test TXT "v=spf1 ip4:198.51.100.1 include:spf.protection.outlook.com ~all"
softfail.guide.test TXT "MS=ms22222222"
_dmarc.softfail.guide.test TXT "v=DMARC1; p=reject; rua=mailto:dmarc@softfail.guide.test"

# Microsoft 365 mailboxes, SPF without the Microsoft 365 include.
m365-include.guide.test MX 0 guide-test.mail.protection.outlook.com
m365-include.guide.test TXT "v=spf1 ip4:198.51.100.1 -all"
_dmarc.m365-include.guide.test TXT "v=DMARC1; p=reject; rua=mailto:dmarc@m365-include.guide.test"

# No DKIM CNAMEs; the tenant is known from the inventory, its exact values from an Exchange
# Online import (the guide never builds them from the tenant name).
dkim.guide.test MX 0 dkim-guide-test.mail.protection.outlook.com
dkim-guide-test.mail.protection.outlook.com A 127.0.0.1
dkim.guide.test TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.dkim.guide.test TXT "v=DMARC1; p=reject; rua=mailto:dmarc@dkim.guide.test"

# Parked (null MX), not locked down.
parked.guide.test MX 0 .
parked.guide.test TXT "v=spf1 include:spf.protection.outlook.com ~all"
_dmarc.parked.guide.test TXT "v=DMARC1; p=none"
"#;

/// `(domain, checklist key, the finding it must remove)`.
const CASES: &[(&str, &str, CheckId)] = &[
    (
        "no-dmarc.guide.test",
        "dmarc-publish",
        CheckId::DmarcMissing,
    ),
    (
        "dmarc-none.guide.test",
        "dmarc-quarantine",
        CheckId::DmarcPolicyNone,
    ),
    ("softfail.guide.test", "spf-harden", CheckId::SpfSoftfail),
    (
        "m365-include.guide.test",
        "spf-m365-include",
        CheckId::SpfM365IncludeMissing,
    ),
    ("dkim.guide.test", "dkim-cnames", CheckId::DkimM365Missing),
    (
        "parked.guide.test",
        "parked-lockdown",
        CheckId::ParkedNotLocked,
    ),
];

const PATIENT: Duration = Duration::from_secs(5);

/// The guide's context of `domain`: the inventory's tenant, and for `dkim.guide.test` the
/// DKIM targets of its tenant's Exchange Online import (`Get-DkimSigningConfig`).
fn ctx(domain: &str) -> GuideContext {
    let target =
        |n: u8| format!("selector{n}-dkim-guide-test._domainkey.guidetenant.onmicrosoft.com");
    GuideContext {
        today: TODAY,
        tenant: Some("guidetenant".into()),
        dmarc_rollout: Some(("none".into(), TODAY - 30 * 86_400)),
        dkim_cnames: (domain == "dkim.guide.test").then(|| (target(1), target(2))),
        ..GuideContext::default()
    }
}

async fn audit_view(server: &LabDns, domain: &str) -> ReportView {
    // A fresh resolver per audit: nothing is answered from a cache filled before the change.
    let resolver = resolver_for(server, PATIENT);
    let report = audit_domain(&resolver, domain, &AuditOptions::default()).await;
    ReportView::from_report(&report)
}

/// Publishes `records` in `zone` the way an administrator would: an SPF record replaces the
/// SPF record at its name (other TXT records stay), a DMARC record replaces the TXT records at
/// `_dmarc`, a CNAME or an MX replaces everything at its name.
fn publish(zone: &mut Zone, records: &[guide::DnsRecord]) {
    for r in records {
        let spf = r.value.starts_with("v=spf1");
        let keep: Vec<LabRecord> = zone
            .remove(&r.name)
            .into_iter()
            .filter(|old| match (r.rtype.as_str(), old) {
                ("TXT", LabRecord::Txt(s)) => spf && !s.concat().starts_with("v=spf1"),
                ("MX", LabRecord::Mx(..)) | ("CNAME", _) => false,
                _ => true,
            })
            .collect();
        for old in keep {
            zone.add(&r.name, old);
        }
        let new = match r.rtype.as_str() {
            "TXT" => LabRecord::Txt(vec![r.value.clone()]),
            "CNAME" => LabRecord::Cname(r.value.clone()),
            "MX" => {
                let (pref, host) = r.value.split_once(' ').expect("MX rdata");
                LabRecord::Mx(pref.parse().expect("MX preference"), host.to_string())
            }
            other => panic!("unexpected record type {other}"),
        };
        zone.add(&r.name, new);
    }
}

#[tokio::test]
async fn reaudit_with_the_guides_records_shows_the_finding_gone() {
    let mut zone = Zone::parse(ZONE).expect("zone parses");
    let server = LabDns::start(zone.clone())
        .await
        .expect("lab DNS server starts");

    let mut applied: BTreeMap<&str, Vec<guide::DnsRecord>> = BTreeMap::new();
    for (domain, key, id) in CASES {
        let before = audit_view(&server, domain).await;
        assert!(
            before.has(*id),
            "{domain}: expected {id} before, got {:?}",
            before.findings.iter().map(|f| f.id).collect::<Vec<_>>()
        );
        assert_eq!(guide::verify(key, &before), Some(false), "{domain} {key}");
        let g = guide::build(&before, &ctx(domain));
        let item = g
            .item(key)
            .unwrap_or_else(|| panic!("{domain}: no {key} in the guide"));
        assert!(
            item.finding_ids.contains(id),
            "{domain}: {key} addresses {id}"
        );
        assert!(
            guide::checklist(&g).iter().any(|(k, _, _)| k == key),
            "{domain}: {key} is a checklist item"
        );
        let records: Vec<guide::DnsRecord> = item
            .records_to_publish()
            .into_iter()
            .filter(|r| !r.name.starts_with('*'))
            .collect();
        assert!(!records.is_empty(), "{domain}: {key} has records");
        publish(&mut zone, &records);
        applied.insert(domain, records);
    }
    server.set_zone(zone.clone());

    for (domain, key, id) in CASES {
        let after = audit_view(&server, domain).await;
        assert!(
            !after.has(*id),
            "{domain}: {id} still raised after publishing {:?}: {:?}",
            applied[domain],
            after.findings
        );
        assert_eq!(
            guide::verify(key, &after),
            Some(true),
            "{domain}: {key} verified after publishing {:?}",
            applied[domain]
        );
        // The new guide no longer has the item.
        assert!(
            guide::build(&after, &ctx(domain)).item(key).is_none(),
            "{domain} {key}"
        );
    }

    // Other TXT records at the apex were left alone.
    assert!(
        zone.get("softfail.guide.test")
            .iter()
            .any(|r| matches!(r, LabRecord::Txt(s) if s.concat() == "MS=ms22222222"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_failed_lookup_is_withheld_not_guided() {
    let mut zone = Zone::parse(ZONE).expect("zone parses");
    zone.remove("_dmarc.softfail.guide.test");
    zone.add("_dmarc.softfail.guide.test", LabRecord::ServFail);
    let server = LabDns::start(zone).await.expect("lab DNS server starts");
    let view = audit_view(&server, "softfail.guide.test").await;
    let g = guide::build(&view, &ctx("softfail.guide.test"));
    assert!(!g.withheld.is_empty(), "{:?}", view.findings);
    assert!(g.item("dmarc-publish").is_none());
    assert_eq!(guide::verify("dmarc-publish", &view), None);
    assert_eq!(guide::verify("spf-harden", &view), Some(false));
    server.shutdown().await;
}
