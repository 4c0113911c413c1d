//! Guides for domains in each state: Markdown snapshots (insta), the records parsed back by
//! the project's own parsers, and the checklist and verification over re-audits in memory.

use super::*;
use crate::audit::{AuditOptions, DomainReport, audit_domain};
use crate::dkim::key::tests::{RSA1024_SPKI, RSA2048_SPKI};
use crate::dns::DnsError;
use crate::memory::{MemoryDns, Rr};

const D: &str = "contoso.example";
/// A fully hardened domain receives its mail at the DNSSEC-signed endpoint (no MX-M365-LEGACY).
const MX_HOST: &str = "contoso-example.o-v1.mx.microsoft";
/// 2026-02-02 00:00:00 UTC.
const TODAY: i64 = 1_769_990_400;

/// A fully hardened Microsoft 365 domain, as `(name, record)`.
fn hardened() -> Vec<(String, Rr)> {
    let key = format!("v=DKIM1; k=rsa; p={RSA2048_SPKI}");
    [
        (D, Rr::Mx(0, MX_HOST.into())),
        (MX_HOST, Rr::A([192, 0, 2, 25].into())),
        (
            D,
            Rr::Txt("v=spf1 include:spf.protection.outlook.com -all".into()),
        ),
        (D, Rr::Txt("MS=ms12345678".into())),
        (
            "spf.protection.outlook.com",
            Rr::Txt("v=spf1 ip4:40.92.0.0/15 ip6:2a01:111:f400::/48 -all".into()),
        ),
        (
            "_dmarc.contoso.example",
            Rr::Txt("v=DMARC1; p=reject; rua=mailto:dmarc@contoso.example".into()),
        ),
        (
            "selector1._domainkey.contoso.example",
            Rr::Cname("selector1-contoso-example._domainkey.contoso.onmicrosoft.com".into()),
        ),
        (
            "selector2._domainkey.contoso.example",
            Rr::Cname("selector2-contoso-example._domainkey.contoso.onmicrosoft.com".into()),
        ),
        (
            "selector1-contoso-example._domainkey.contoso.onmicrosoft.com",
            Rr::Txt(key),
        ),
        (
            "_mta-sts.contoso.example",
            Rr::Txt("v=STSv1; id=20250101".into()),
        ),
        (
            "_smtp._tls.contoso.example",
            Rr::Txt("v=TLSRPTv1; rua=mailto:tlsrpt@contoso.example".into()),
        ),
    ]
    .into_iter()
    .map(|(n, r)| (n.to_string(), r))
    .collect()
}

/// `zone` with the records at `name` replaced by `with` (none: removed).
fn set(mut zone: Vec<(String, Rr)>, name: &str, with: &[Rr]) -> Vec<(String, Rr)> {
    zone.retain(|(n, r)| {
        n != name || (name == D && !matches!(r, Rr::Txt(t) if t.starts_with("v=spf1")))
    });
    for r in with {
        zone.push((name.to_string(), r.clone()));
    }
    zone
}

fn set_spf(zone: Vec<(String, Rr)>, spf: &str) -> Vec<(String, Rr)> {
    set(zone, D, &[Rr::Txt(spf.into())])
}

fn memory(zone: &[(String, Rr)]) -> MemoryDns {
    let mut dns = MemoryDns::new();
    for (n, r) in zone {
        dns.add(n, r.clone());
    }
    dns
}

fn audit_zone(zone: &[(String, Rr)], parked: bool) -> DomainReport {
    let mut opts = AuditOptions::default();
    if parked {
        opts.parked.insert(D.to_string());
    }
    pollster::block_on(audit_domain(&memory(zone), D, &opts))
}

fn audit(zone: &[(String, Rr)]) -> ReportView {
    ReportView::from_report(&audit_zone(zone, false))
}

fn ctx() -> GuideContext {
    GuideContext {
        today: TODAY,
        tenant: None,
        m365_endpoint: None,
        key_people: vec![
            ("Jane Doe".into(), "jane.doe@contoso.example".into()),
            ("Seán O'Brien".into(), "sean@contoso.example".into()),
        ],
        dmarc_rollout: None,
        default_rua: None,
        dkim_cnames: None,
        dmarc_readiness: None,
        exo: None,
        spf_senders: Vec::new(),
    }
}

/// Every DNS record of the guide is valid for the project's own parsers, and every `dns` block
/// is its records: each zone-file line reads back as the record beside it (host / type /
/// value), with the host relative to the zone the record is entered in.
fn check_records(guide: &Guide) {
    for (_, item) in guide.items() {
        for code in item.steps.iter().filter_map(|s| s.code.as_ref()) {
            if code.lang != Lang::Dns {
                assert!(code.records.is_empty(), "{}: {code:?}", item.key);
                continue;
            }
            assert!(
                !code.records.is_empty(),
                "{}: a dns block without records",
                item.key
            );
            let lines: Vec<&str> = code.text.lines().collect();
            assert_eq!(lines.len(), code.records.len(), "{}: {code:?}", item.key);
            for (line, r) in lines.iter().zip(&code.records) {
                let (name, rtype, value) = util::parse_zone_line(line)
                    .unwrap_or_else(|| panic!("{}: {line:?} does not read back", item.key));
                assert_eq!((&name, &rtype), (&r.name, &r.rtype), "{line}");
                let value = if rtype == "CNAME" {
                    value
                        .strip_suffix('.')
                        .expect("absolute target")
                        .to_string()
                } else {
                    value
                };
                assert_eq!(value, r.value, "{line}");
                if r.name == r.zone {
                    assert_eq!(r.host, "@", "{r:?}");
                } else {
                    assert_eq!(format!("{}.{}", r.host, r.zone), r.name, "{r:?}");
                }
                assert_eq!(r.strings.is_empty(), r.value.len() <= 255, "{r:?}");
            }
        }
    }
    for (_, item) in guide.items() {
        for r in item.dns_records() {
            match r.rtype.as_str() {
                "TXT" if r.name.starts_with("_dmarc.") => {
                    let rec = crate::dmarc::parse(&r.value)
                        .unwrap_or_else(|e| panic!("{}: {:?}: {e}", item.key, r.value));
                    assert!(rec.p.is_some(), "{r:?}");
                    assert!(rec.has_valid_rua(), "{r:?}");
                }
                "TXT" if r.value.starts_with("v=spf1") => {
                    let rec = crate::spf::parse(&r.value)
                        .unwrap_or_else(|e| panic!("{}: {:?}: {e}", item.key, r.value));
                    assert_eq!(
                        rec.all().map(|d| d.qualifier),
                        Some(crate::spf::Qualifier::Fail),
                        "{r:?}"
                    );
                }
                "TXT" if r.name.contains("._report._dmarc.") => assert_eq!(r.value, "v=DMARC1"),
                "TXT" if r.name.starts_with("_smtp._tls.") => {
                    assert!(r.value.starts_with("v=TLSRPTv1; rua=mailto:"), "{r:?}")
                }
                "TXT" if r.name.starts_with("_mta-sts.") => {
                    assert!(r.value.starts_with("v=STSv1; id="), "{r:?}")
                }
                "TXT" if r.name.starts_with("*._domainkey.") => assert_eq!(r.value, "v=DKIM1; p="),
                "CNAME" => {
                    let n = if r.name.starts_with("selector1.") {
                        1
                    } else {
                        2
                    };
                    let t =
                        crate::dkim::parse_m365_target(&r.value).unwrap_or_else(|| panic!("{r:?}"));
                    assert_eq!(t.selector, n, "{r:?}");
                }
                "MX" => assert_eq!(r.value, "0 ."),
                _ => panic!("unexpected record {r:?} in {}", item.key),
            }
        }
    }
}

/// The guide's Markdown, checked for valid records and snapshotted.
fn guide_md(report: &ReportView, ctx: &GuideContext) -> (Guide, String) {
    let g = build(report, ctx);
    check_records(&g);
    let md = render_markdown(&g);
    (g, md)
}

fn keys(g: &Guide) -> Vec<&'static str> {
    g.items().map(|(_, i)| i.key).collect()
}

/// Applies the item's records to the zone, re-audits and says whether `verify` now agrees.
fn apply(zone: &[(String, Rr)], item: &GuideItem) -> Vec<(String, Rr)> {
    let mut zone = zone.to_vec();
    for r in item.records_to_publish() {
        if r.name.starts_with('*') {
            continue;
        }
        let rr = match r.rtype.as_str() {
            "TXT" => Rr::Txt(r.value.clone()),
            "CNAME" => Rr::Cname(r.value.clone()),
            "MX" => Rr::Mx(0, ".".into()),
            other => panic!("{other}"),
        };
        if r.rtype == "TXT" && r.name == D {
            zone = set_spf(zone, &r.value);
        } else {
            zone = set(zone, &r.name, &[rr]);
        }
    }
    zone
}

#[test]
fn fully_hardened_m365_domain() {
    let r = audit(&hardened());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let (g, md) = guide_md(&r, &ctx());
    assert_eq!(
        keys(&g),
        [
            "connectors-partner",
            "direct-send-reject",
            "antispoof-rule-audit",
            "connectors-audit",
            "antispoof-rule-enforce",
            "impersonation",
            "mailbox-intelligence",
            "rerun-audit"
        ]
    );
    // Nothing left that DNS shows: the re-audit item is done already; the Exchange Online
    // items are for an import (or a hand) to tick.
    assert_eq!(verify("rerun-audit", &r), Some(true));
    for key in ["connectors-audit", "mailbox-intelligence", "impersonation"] {
        assert_eq!(verify(key, &r), None, "{key}");
    }
    insta::assert_snapshot!("fully_hardened", md);
}

#[test]
fn no_dmarc() {
    let zone = set(hardened(), "_dmarc.contoso.example", &[]);
    let r = audit(&zone);
    let (g, md) = guide_md(&r, &ctx());
    let item = g.item("dmarc-publish").expect("dmarc-publish");
    assert_eq!(item.finding_ids, [CheckId::DmarcMissing]);
    assert_eq!(
        item.records_to_publish()[0].value,
        "v=DMARC1; p=none; rua=mailto:dmarc-reports@contoso.example"
    );
    assert_eq!(
        checklist(&g)[0],
        ("dmarc-publish", 1, "Publish a DMARC record".to_string())
    );
    assert_eq!(verify("dmarc-publish", &r), Some(false));
    let fixed = audit(&apply(&zone, item));
    assert!(!fixed.has(CheckId::DmarcMissing));
    assert_eq!(verify("dmarc-publish", &fixed), Some(true));
    assert_eq!(verify("dmarc-quarantine", &fixed), Some(false));
    // Its HTML page: the portal's `guide_html` tests (snapshot `no_dmarc_html`).
    insta::assert_snapshot!("no_dmarc", md);
}

#[test]
fn dmarc_default_rua_from_context() {
    let zone = set(hardened(), "_dmarc.contoso.example", &[]);
    let mut c = ctx();
    c.default_rua = Some("reports@msp.example".into());
    let g = build(&audit(&zone), &c);
    let rec = &g.item("dmarc-publish").unwrap().records_to_publish()[0];
    assert_eq!(
        rec.value,
        "v=DMARC1; p=none; rua=mailto:reports@msp.example"
    );
}

#[test]
fn dmarc_none_for_three_weeks() {
    let zone = set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Txt(
            "v=DMARC1; p=none; rua=mailto:dmarc@contoso.example; ruf=mailto:forensic@contoso.example; fo=1; adkim=s"
                .into(),
        )],
    );
    let r = audit(&zone);
    let mut c = ctx();
    c.dmarc_rollout = Some(("none".into(), TODAY - 21 * 86_400 - 3_600));
    let (g, md) = guide_md(&r, &c);
    let item = g.item("dmarc-quarantine").expect("dmarc-quarantine");
    assert!(
        item.steps.iter().any(|s| s.text.starts_with(
            "Monitoring (p=none) for 3 weeks (since 2026-01-11): review the aggregate reports, then move to quarantine."
        )),
        "{:#?}",
        item.steps
    );
    let recs = item.dns_records();
    // Next phase here, the final one in its own later item; rua, ruf, fo and adkim kept.
    assert_eq!(
        recs.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(),
        [
            "v=DMARC1; p=quarantine; adkim=s; rua=mailto:dmarc@contoso.example; ruf=mailto:forensic@contoso.example; fo=1",
        ]
    );
    let later = g.item("dmarc-reject").expect("the later phase");
    assert_eq!(
        later
            .dns_records()
            .iter()
            .map(|r| r.value.as_str())
            .collect::<Vec<_>>(),
        [
            "v=DMARC1; p=reject; adkim=s; rua=mailto:dmarc@contoso.example; ruf=mailto:forensic@contoso.example; fo=1",
        ]
    );
    let fixed = audit(&apply(&zone, item));
    assert!(!fixed.has(CheckId::DmarcPolicyNone));
    assert_eq!(verify("dmarc-quarantine", &fixed), Some(true));
    assert_eq!(verify("dmarc-reject", &fixed), Some(false));
    insta::assert_snapshot!("dmarc_none_3_weeks", md);

    // Five days in: wait; a log that disagrees with DNS: say so.
    c.dmarc_rollout = Some(("none".into(), TODAY - 5 * 86_400));
    let g = build(&r, &c);
    let text = &g.item("dmarc-quarantine").unwrap().steps[1].text;
    assert!(
        text.contains("for 5 days") && text.contains("until at least 2026-02-11"),
        "{text}"
    );
    c.dmarc_rollout = Some(("quarantine".into(), TODAY - 5 * 86_400));
    let g = build(&r, &c);
    assert!(
        g.item("dmarc-quarantine").unwrap().steps[1]
            .text
            .contains("roll-out log says p=quarantine")
    );

    // The aggregate reports' verdict, when there is one for the next phase, is a step.
    let verdict = |ready, next| crate::reports::analysis::Readiness {
        ready,
        next,
        reasons: vec!["first reason".into(), "second reason".into()],
    };
    c.dmarc_readiness = Some(verdict(true, Some("quarantine")));
    let steps = build(&r, &c)
        .item("dmarc-quarantine")
        .unwrap()
        .steps
        .clone();
    assert_eq!(
        steps[2].text,
        "The aggregate reports support the move to p=quarantine: first reason; second reason."
    );
    c.dmarc_readiness = Some(verdict(false, Some("quarantine")));
    let steps = build(&r, &c)
        .item("dmarc-quarantine")
        .unwrap()
        .steps
        .clone();
    assert!(steps[2].text.starts_with(
        "The aggregate reports do not support the move to p=quarantine yet: first reason"
    ));
    // A verdict about another phase (the audit and the reports disagree) is not shown.
    c.dmarc_readiness = Some(verdict(true, Some("reject")));
    let steps = build(&r, &c)
        .item("dmarc-quarantine")
        .unwrap()
        .steps
        .clone();
    assert!(
        !steps
            .iter()
            .any(|s| s.text.contains("aggregate reports support"))
    );
}

#[test]
fn dmarc_quarantine_with_weak_tags() {
    let zone = set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Txt("v=DMARC1; p=quarantine; sp=none; pct=50".into())],
    );
    let r = audit(&zone);
    let (g, md) = guide_md(&r, &ctx());
    let item = g.item("dmarc-reject").expect("dmarc-reject");
    for id in [
        CheckId::DmarcPolicyQuarantine,
        CheckId::DmarcNoRua,
        CheckId::DmarcSubdomainWeak,
    ] {
        assert!(
            item.finding_ids.contains(&id),
            "{id} in {:?}",
            item.finding_ids
        );
    }
    let fixed = audit(&apply(&zone, item));
    for id in [
        CheckId::DmarcNoRua,
        CheckId::DmarcSubdomainWeak,
        CheckId::DmarcPctPartial,
        CheckId::DmarcDeprecatedTag,
    ] {
        assert!(!fixed.has(id), "{id} after the current-phase record");
    }
    assert_eq!(verify("dmarc-reject", &fixed), Some(false));
    let next = &item.dns_records()[1];
    assert_eq!(
        next.value,
        "v=DMARC1; p=reject; sp=reject; rua=mailto:dmarc-reports@contoso.example"
    );
    insta::assert_snapshot!("dmarc_quarantine", md);
}

#[test]
fn spf_softfail_over_the_limit() {
    let mut zone = set_spf(
        hardened(),
        "v=spf1 include:spf.protection.outlook.com include:big.example include:mid.example include:one.example mx ~all",
    );
    for (n, r) in [
        (
            "big.example",
            "v=spf1 include:b1.example include:b2.example include:b3.example include:b4.example ip4:198.51.100.0/24 -all",
        ),
        ("b1.example", "v=spf1 ip4:203.0.113.0/26 -all"),
        (
            "b2.example",
            "v=spf1 ip4:203.0.113.64/26 ip6:2001:db8::/48 -all",
        ),
        ("b3.example", "v=spf1 include:b5.example -all"),
        ("b5.example", "v=spf1 ip4:203.0.113.128/26 -all"),
        ("b4.example", "v=spf1 ip4:203.0.113.192/26 -all"),
        (
            "mid.example",
            "v=spf1 include:m1.example include:m2.example -all",
        ),
        ("m1.example", "v=spf1 ip4:192.0.2.0/28 -all"),
        ("m2.example", "v=spf1 a:host.m2.example -all"),
        ("one.example", "v=spf1 ip4:192.0.2.128/25 -all"),
    ] {
        zone.push((n.to_string(), Rr::Txt(r.into())));
    }
    let r = audit(&zone);
    assert!(
        r.has(CheckId::SpfLookupLimit) && r.has(CheckId::SpfSoftfail),
        "{:?}",
        r.findings
    );
    let (g, md) = guide_md(&r, &ctx());
    // Order: get under the limit, then harden. The harden item proposes no `-all` on the
    // record that is over the limit (it says to do the look-ups item first).
    let harden = g.item("spf-harden").expect("spf-harden");
    assert!(
        harden.records_to_publish().is_empty(),
        "{:?}",
        harden.records_to_publish()
    );
    assert!(
        harden.steps.iter().any(|s| s
            .text
            .starts_with("Not yet: first bring the policy within 10 DNS look-ups")),
        "{:?}",
        harden.steps
    );
    let keys: Vec<&str> = g
        .sections
        .iter()
        .flat_map(|s| s.items.iter().map(|i| i.key))
        .collect();
    let at = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(at("spf-lookups") < at("spf-harden"), "{keys:?}");
    let lookups = g.item("spf-lookups").expect("spf-lookups");
    let flat = lookups.dns_records();
    assert_eq!(flat.len(), 1);
    assert!(
        !flat[0].value.contains("include:big.example"),
        "{}",
        flat[0].value
    );
    assert!(
        flat[0].value.contains("ip4:203.0.113.128/26"),
        "{}",
        flat[0].value
    );
    // The flattened record, applied, is within the limit and hardened.
    let fixed = audit(&apply(&zone, lookups));
    assert!(!fixed.has(CheckId::SpfLookupLimit), "{:?}", fixed.findings);
    assert!(!fixed.has(CheckId::SpfSoftfail));
    assert_eq!(verify("spf-lookups", &fixed), Some(true));
    assert_eq!(verify("spf-harden", &fixed), Some(true));
    insta::assert_snapshot!("spf_softfail_over_limit", md);
}

#[test]
fn spf_missing_m365_include() {
    let zone = set_spf(hardened(), "v=spf1 ip4:198.51.100.1 -all");
    let r = audit(&zone);
    let (g, md) = guide_md(&r, &ctx());
    let item = g.item("spf-m365-include").expect("spf-m365-include");
    assert_eq!(
        item.records_to_publish()[0].value,
        "v=spf1 ip4:198.51.100.1 include:spf.protection.outlook.com -all"
    );
    assert_eq!(verify("spf-m365-include", &r), Some(false));
    let fixed = audit(&apply(&zone, item));
    assert!(!fixed.has(CheckId::SpfM365IncludeMissing));
    assert_eq!(verify("spf-m365-include", &fixed), Some(true));
    insta::assert_snapshot!("spf_missing_m365_include", md);
}

#[test]
fn spf_softfail_and_missing_m365_include_share_one_record() {
    let zone = set_spf(hardened(), "v=spf1 ip4:198.51.100.1 ~all");
    let g = build(&audit(&zone), &ctx());
    let a = g.item("spf-harden").unwrap().records_to_publish();
    let b = g.item("spf-m365-include").unwrap().records_to_publish();
    assert_eq!(a, b);
    let fixed = audit(&apply(&zone, g.item("spf-harden").unwrap()));
    assert_eq!(verify("spf-harden", &fixed), Some(true));
    assert_eq!(verify("spf-m365-include", &fixed), Some(true));
}

fn without_dkim() -> Vec<(String, Rr)> {
    let zone = set(hardened(), "selector1._domainkey.contoso.example", &[]);
    set(zone, "selector2._domainkey.contoso.example", &[])
}

/// The inventory's tenant is not enough to write a target: the label, and for new domains the
/// `<letter>-v1.dkim.mail.microsoft` zone, cannot be predicted. The guide says how to read them.
#[test]
fn dkim_missing_with_tenant() {
    let zone = without_dkim();
    let r = audit(&zone);
    let mut c = ctx();
    c.tenant = Some("Contoso.onmicrosoft.com".into());
    let (g, md) = guide_md(&r, &c);
    let item = g.item("dkim-cnames").expect("dkim-cnames");
    assert!(item.records_to_publish().is_empty(), "{md}");
    let text = format!("{md}\n{:?}", item.steps);
    assert!(!text.contains("onmicrosoft.com."), "{md}");
    assert!(!text.contains("selector1-"), "{md}");
    let code: Vec<&str> = item
        .steps
        .iter()
        .filter_map(|s| s.code.as_ref().map(|c| c.text.as_str()))
        .collect();
    assert_eq!(
        code,
        [
            "Get-DkimSigningConfig -Identity 'contoso.example' | Format-List Selector1CNAME,Selector2CNAME",
            "New-DkimSigningConfig -DomainName 'contoso.example' -Enabled $false",
            "Set-DkimSigningConfig -Identity 'contoso.example' -Enabled $true",
        ]
    );
    assert!(md.contains("exactly as shown"), "{md}");
    insta::assert_snapshot!("dkim_missing_with_tenant", md);
}

/// The tenant's own values from an Exchange Online import are published as they are, whatever
/// their form; applied, the finding is gone.
#[test]
fn dkim_missing_with_import() {
    let zone = without_dkim();
    let r = audit(&zone);
    let mut c = ctx();
    c.tenant = Some("contoso".into());
    c.dkim_cnames = Some((
        "selector1-contoso-example._domainkey.contoso.onmicrosoft.com".into(),
        "Selector2-contoso-example._domainkey.contoso.onmicrosoft.com.".into(),
    ));
    let (g, md) = guide_md(&r, &c);
    let item = g.item("dkim-cnames").expect("dkim-cnames");
    let recs = item.records_to_publish();
    let got: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r.name.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "selector1._domainkey.contoso.example",
                "selector1-contoso-example._domainkey.contoso.onmicrosoft.com"
            ),
            (
                "selector2._domainkey.contoso.example",
                "selector2-contoso-example._domainkey.contoso.onmicrosoft.com"
            ),
        ]
    );
    assert!(md.contains("from its Exchange Online import"), "{md}");
    let fixed = audit(&apply(&zone, item));
    assert!(!fixed.has(CheckId::DkimM365Missing), "{:?}", fixed.findings);
    assert!(fixed.findings.is_empty(), "{:?}", fixed.findings);
    assert_eq!(verify("dkim-cnames", &fixed), Some(true));
    assert_eq!(verify("dkim-enable", &fixed), Some(true));
    assert!(build(&fixed, &c).item("dkim-cnames").is_none());
    insta::assert_snapshot!("dkim_missing_with_import", md);

    // The current form, which nothing could have predicted, is taken from the import too.
    let current = |n: u8| {
        format!("selector{n}-contosoexample-com01i._domainkey.contoso.r-v1.dkim.mail.microsoft")
    };
    c.dkim_cnames = Some((current(1), current(2)));
    let g = build(&r, &c);
    let recs = g.item("dkim-cnames").unwrap().records_to_publish();
    assert_eq!(recs[0].value, current(1));
    assert_eq!(recs[1].value, current(2));
    // Exported values that are not Microsoft 365 targets of their selector are not written.
    c.dkim_cnames = Some((current(2), current(1)));
    let g = build(&r, &c);
    assert!(
        g.item("dkim-cnames")
            .unwrap()
            .records_to_publish()
            .is_empty()
    );
}

/// A domain on the new `*.mx.microsoft` MX, without an import: nothing is built, in the
/// guide or in the audit's fix.
#[test]
fn dkim_missing_on_the_new_mx_is_read_not_built() {
    let mx = "contoso-example.r-v1.mx.microsoft";
    let zone = set(without_dkim(), D, &[]);
    let zone = set(
        zone,
        D,
        &[
            Rr::Mx(0, mx.into()),
            Rr::Txt("v=spf1 include:spf.protection.outlook.com -all".into()),
        ],
    );
    let mut zone = zone;
    zone.push((mx.into(), Rr::A([192, 0, 2, 26].into())));
    let r = audit(&zone);
    assert!(r.has(CheckId::DkimM365Missing), "{:?}", r.findings);
    let mut c = ctx();
    c.tenant = Some("contoso".into());
    c.m365_endpoint = Some(mx.into());
    let (g, md) = guide_md(&r, &c);
    let item = g.item("dkim-cnames").expect("dkim-cnames");
    assert!(item.records_to_publish().is_empty(), "{md}");
    assert!(md.contains("Get-DkimSigningConfig -Identity 'contoso.example' | Format-List Selector1CNAME,Selector2CNAME"), "{md}");
    let f = r
        .findings
        .iter()
        .find(|f| f.id == CheckId::DkimM365Missing)
        .unwrap();
    assert!(
        !f.fix.contains("onmicrosoft") && !f.fix.contains("dkim.mail.microsoft"),
        "{}",
        f.fix
    );
}

/// Selector CNAMEs copied from another customer: the audit says so (the label), the guide
/// writes no target (not even the other selector of the copied one) and says how to read them.
#[test]
fn dkim_copied_from_another_customer() {
    let copied = |n: u8| format!("selector{n}-fabrikam-com._domainkey.fabrikam.onmicrosoft.com");
    let zone = set(
        without_dkim(),
        "selector1._domainkey.contoso.example",
        &[Rr::Cname(copied(1))],
    );
    let r = audit(&zone);
    let f: Vec<&crate::Finding> = r
        .findings
        .iter()
        .filter(|f| f.id == CheckId::DkimM365TargetMismatch)
        .collect();
    assert_eq!(f.len(), 1, "{:?}", r.findings);
    assert!(f[0].detail.contains(&copied(1)), "{}", f[0].detail);
    assert!(
        f[0].detail
            .contains("`fabrikam-com` was made for another domain"),
        "{}",
        f[0].detail
    );
    let (g, md) = guide_md(&r, &ctx());
    let item = g.item("dkim-cnames").expect("dkim-cnames");
    assert!(item.records_to_publish().is_empty(), "{md}");
    assert!(
        item.found.iter().any(|d| d.contains(&copied(1))),
        "{:?}",
        item.found
    );
    assert!(!md.contains(&copied(2)), "{md}");
    assert!(md.contains("replacing the CNAMEs published now"), "{md}");
}

/// The tenant known to the guide (an Exchange Online import, else the inventory) makes a
/// CNAME into another tenant DKIM-M365-TARGET-MISMATCH, even with a label that fits.
#[test]
fn dkim_target_in_another_tenant() {
    let r = audit(&hardened());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let published = "selector1-contoso-example._domainkey.contoso.onmicrosoft.com";
    let found = |c: &GuideContext| -> Vec<String> {
        let g = build(&r, c);
        match g.item("dkim-cnames") {
            Some(item) => {
                assert!(item.finding_ids.contains(&CheckId::DkimM365TargetMismatch));
                item.found.clone()
            }
            None => Vec::new(),
        }
    };
    let mut c = ctx();
    // The inventory's tenant, in both spellings; a display name or tenant ID says nothing.
    for (tenant, mismatch) in [
        ("fabrikam", true),
        ("Fabrikam.onmicrosoft.com", true),
        ("contoso", false),
        ("CONTOSO.onmicrosoft.com.", false),
        ("Contoso Ltd", false),
        ("72f988bf-86f1-41af-91ab-2d7cd011db47", false),
    ] {
        c.tenant = Some(tenant.into());
        let f = found(&c);
        assert_eq!(!f.is_empty(), mismatch, "{tenant}: {f:?}");
        if mismatch {
            assert_eq!(f.len(), 2, "{f:?}");
            assert!(f[0].contains(published), "{}", f[0]);
            assert!(f[0].contains("in the tenant `contoso`, but contoso.example's tenant is `fabrikam` (from the inventory)"), "{}", f[0]);
            // No target is written: the right one is not known.
            let g = build(&r, &c);
            assert!(
                g.item("dkim-cnames")
                    .unwrap()
                    .records_to_publish()
                    .is_empty()
            );
            assert_eq!(verify("dkim-cnames", &r), Some(true));
        }
    }
    // The import's tenant wins over the inventory's.
    c.tenant = Some("contoso".into());
    c.exo = Some(crate::exo::TenantConfig {
        accepted_domains: [
            "fabrikam.onmicrosoft.com",
            "fabrikam.mail.onmicrosoft.com",
            D,
        ]
        .iter()
        .map(|d| crate::exo::AcceptedDomain {
            domain_name: d.to_string(),
            ..Default::default()
        })
        .collect(),
        ..Default::default()
    });
    let f = found(&c);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(
        f[0].contains("tenant is `fabrikam` (from its Exchange Online import)"),
        "{}",
        f[0]
    );

    // The tenant's own values, when imported, are what the CNAMEs must be: published as they
    // are, replacing both; applied, no mismatch is left.
    let own = |n: u8| {
        format!("selector{n}-contosoexample01b._domainkey.fabrikam.b-v1.dkim.mail.microsoft")
    };
    c.dkim_cnames = Some((own(1), own(2)));
    let g = build(&r, &c);
    let item = g.item("dkim-cnames").expect("dkim-cnames");
    assert!(item.found[0].contains(&format!("the tenant's own Selector1CNAME (`Get-DkimSigningConfig`, from its Exchange Online import) is {}", own(1))), "{:?}", item.found);
    assert!(
        item.found[0].contains("points into the tenant `contoso`, not `fabrikam`"),
        "{:?}",
        item.found
    );
    let recs = item.records_to_publish();
    assert_eq!(
        recs.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
        [own(1), own(2)]
    );
    let fixed = audit(&apply(&hardened(), item));
    assert!(
        !fixed.has(CheckId::DkimM365TargetMismatch),
        "{:?}",
        fixed.findings
    );
    assert!(build(&fixed, &c).item("dkim-cnames").is_none());
    // Nothing to compare against: no finding.
    assert!(found(&ctx()).is_empty());
}

#[test]
fn dkim_missing_without_tenant() {
    let r = audit(&without_dkim());
    let (g, md) = guide_md(&r, &ctx());
    let item = g.item("dkim-cnames").expect("dkim-cnames");
    assert!(item.dns_records().is_empty());
    assert!(item.steps.iter().any(|s| s.code.as_ref().is_some_and(|c| c.text
        == "Get-DkimSigningConfig -Identity 'contoso.example' | Format-List Selector1CNAME,Selector2CNAME")));
    assert_eq!(verify("dkim-cnames", &r), Some(false));
    insta::assert_snapshot!("dkim_missing_without_tenant", md);
}

#[test]
fn dkim_partial_follows_the_published_target() {
    let zone = set(hardened(), "selector2._domainkey.contoso.example", &[]);
    let r = audit(&zone);
    assert!(r.has(CheckId::DkimM365Partial));
    let g = build(&r, &ctx());
    let recs = g.item("dkim-cnames").unwrap().records_to_publish();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].name, "selector2._domainkey.contoso.example");
    // The value as a DNS panel takes it (no trailing dot); the zone-file line has the dot.
    assert_eq!(
        recs[0].value,
        "selector2-contoso-example._domainkey.contoso.onmicrosoft.com"
    );
    assert_eq!(recs[0].host, "selector2._domainkey");
    assert!(
        recs[0]
            .zone_line()
            .ends_with("CNAME  selector2-contoso-example._domainkey.contoso.onmicrosoft.com.")
    );
}

#[test]
fn dkim_weak_key() {
    let zone = set(
        hardened(),
        "selector1-contoso-example._domainkey.contoso.onmicrosoft.com",
        &[Rr::Txt(format!("v=DKIM1; k=rsa; p={RSA1024_SPKI}"))],
    );
    let r = audit(&zone);
    let g = build(&r, &ctx());
    assert!(g.item("dkim-key-size").is_some(), "{:?}", keys(&g));
    assert_eq!(verify("dkim-key-size", &r), Some(false));
}

#[test]
fn relay_open() {
    let mut rep = audit_zone(&hardened(), false);
    rep.relay.verdict = "open".into();
    rep.relay.reply = Some("250 2.1.5 Recipient OK".into());
    rep.relay.target = Some(MX_HOST.into());
    rep.m365_endpoint = Some(MX_HOST.into());
    rep.add_findings(vec![crate::Finding::new(
        CheckId::RelayOpen,
        format!("{MX_HOST} accepted MAIL FROM and RCPT TO in {D} without authentication"),
    )]);
    let r = ReportView::from_report(&rep);
    let (g, md) = guide_md(&r, &ctx());
    assert_eq!(
        checklist(&g)[..2],
        [
            (
                "connectors-partner",
                1,
                "Give legitimate unauthenticated senders restricted partner connectors".to_string()
            ),
            ("direct-send-reject", 1, "Reject Direct Send".to_string())
        ]
    );
    assert_eq!(verify("direct-send-reject", &r), Some(false));
    let mut blocked = r.clone();
    blocked.relay.verdict = "blocked".into();
    blocked.findings.clear();
    assert_eq!(verify("direct-send-reject", &blocked), Some(true));
    let g2 = build(&blocked, &ctx());
    assert!(g2.item("direct-send-reject").is_none());
    assert!(md.contains("Set-OrganizationConfig -RejectDirectSend $true"));
    assert!(md.contains("mailaudit relay-test contoso.example"));
    assert!(md.contains(r#"-TargetedUsersToProtect @{Add='Jane Doe;jane.doe@contoso.example','Seán O''Brien;sean@contoso.example'}"#));
    insta::assert_snapshot!("relay_open", md);
}

#[test]
fn parked_domain_not_locked() {
    let zone: Vec<(String, Rr)> = vec![
        (D.into(), Rr::Mx(0, ".".into())),
        (
            D.into(),
            Rr::Txt("v=spf1 include:spf.protection.outlook.com ~all".into()),
        ),
        (
            "_dmarc.contoso.example".into(),
            Rr::Txt("v=DMARC1; p=none; rua=mailto:dmarc@contoso.example".into()),
        ),
    ];
    let rep = audit_zone(&zone, false);
    let r = ReportView::from_report(&rep);
    assert!(r.has(CheckId::ParkedNotLocked), "{:?}", r.findings);
    let (g, md) = guide_md(&r, &ctx());
    assert_eq!(keys(&g)[0], "parked-lockdown");
    assert!(g.item("dmarc-quarantine").is_none() && g.item("spf-harden").is_none());
    let item = g.item("parked-lockdown").unwrap();
    let fixed = ReportView::from_report(&audit_zone(&apply(&zone, item), false));
    assert!(!fixed.has(CheckId::ParkedNotLocked), "{:?}", fixed.findings);
    assert_eq!(verify("parked-lockdown", &fixed), Some(true));
    assert_eq!(verify("parked-lockdown", &r), Some(false));
    insta::assert_snapshot!("parked_not_locked", md);
}

#[test]
fn dns_failure_withholds_items() {
    let zone = set(
        set_spf(hardened(), "v=spf1 include:spf.protection.outlook.com ~all"),
        "_dmarc.contoso.example",
        &[Rr::Fail(DnsError::ServFail)],
    );
    let r = audit(&zone);
    assert!(r.is_withheld(crate::Area::Dmarc), "{:?}", r.findings);
    let (g, md) = guide_md(&r, &ctx());
    assert!(!g.withheld.is_empty());
    assert!(
        g.items().all(|(_, i)| !i.key.starts_with("dmarc")),
        "{:?}",
        keys(&g)
    );
    assert!(g.item("spf-harden").is_some());
    for key in [
        "dmarc-publish",
        "dmarc-quarantine",
        "dmarc-reject",
        "dmarc-rua",
    ] {
        assert_eq!(verify(key, &r), None, "{key}");
    }
    assert_eq!(verify("spf-harden", &r), Some(false));
    assert_eq!(verify("antispoof-rule-audit", &r), None);
    insta::assert_snapshot!("dns_failure_withheld", md);
}

#[test]
fn transport_records() {
    let zone = set(
        set(hardened(), "_mta-sts.contoso.example", &[]),
        "_smtp._tls.contoso.example",
        &[],
    );
    let r = audit(&zone);
    let g = build(&r, &ctx());
    check_records(&g);
    let item = g.item("tls-rpt").expect("tls-rpt");
    let fixed = audit(&apply(&zone, item));
    assert_eq!(verify("tls-rpt", &fixed), Some(true));
    let sts = g.item("mta-sts").expect("mta-sts");
    assert_eq!(
        sts.records_to_publish()[0].value,
        "v=STSv1; id=20260202T000000"
    );
    // Low priority items are on the checklist too, at priority 4.
    let list = checklist(&g);
    for key in ["tls-rpt", "mta-sts"] {
        assert!(
            list.iter().any(|(k, p, _)| *k == key && *p == 4),
            "{key}: {list:?}"
        );
    }
}

#[test]
fn checklist_has_every_guide_item() {
    // A domain with findings at every priority.
    let zone = set(
        set(
            set_spf(hardened(), "v=spf1 include:spf.protection.outlook.com ~all"),
            "_mta-sts.contoso.example",
            &[],
        ),
        "_dmarc.contoso.example",
        &[],
    );
    let g = build(&audit(&zone), &ctx());
    let list: Vec<(&str, u8)> = checklist(&g).iter().map(|(k, p, _)| (*k, *p)).collect();
    let guide: Vec<(&str, u8)> = g.items().map(|(p, i)| (i.key, p.as_u8())).collect();
    assert_eq!(list, guide);
    assert!(list.iter().any(|(_, p)| *p == 4), "{list:?}");
    assert!(list.iter().any(|(_, p)| *p == 1), "{list:?}");
}

#[test]
fn a_manual_tick_the_report_contradicts_is_refused_with_the_evidence() {
    let soft = audit(&set_spf(
        hardened(),
        "v=spf1 include:spf.protection.outlook.com ~all",
    ));
    let err = check_manual_done("spf-harden", &soft).expect_err("~all contradicts spf-harden");
    assert_eq!(err.key, "spf-harden");
    assert_eq!(
        err.evidence[0],
        "the SPF record of contoso.example is `v=spf1 include:spf.protection.outlook.com ~all`"
    );
    assert!(
        err.evidence_text().contains("ends in ~all"),
        "{:?}",
        err.evidence
    );
    // The hardened domain shows the fix: accepted.
    let hard = audit(&hardened());
    assert_eq!(check_manual_done("spf-harden", &hard), Ok(()));
    // DNS cannot show a transport rule: accepted.
    assert_eq!(check_manual_done("antispoof-rule-audit", &soft), Ok(()));
    // A withheld verdict proves nothing: accepted.
    let failed = audit(&set(hardened(), D, &[Rr::Fail(DnsError::ServFail)]));
    assert_eq!(verify("spf-harden", &failed), None);
    assert_eq!(check_manual_done("spf-harden", &failed), Ok(()));
    // DMARC: the record that applies, or its absence.
    let none = audit(&set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Txt(
            "v=DMARC1; p=none; rua=mailto:d@contoso.example".into(),
        )],
    ));
    let err = check_manual_done("dmarc-reject", &none).expect_err("p=none");
    assert_eq!(
        err.evidence[0],
        "the DMARC record at _dmarc.contoso.example is `v=DMARC1; p=none; rua=mailto:d@contoso.example`"
    );
    let missing = audit(&set(hardened(), "_dmarc.contoso.example", &[]));
    let err = check_manual_done("dmarc-publish", &missing).expect_err("no DMARC");
    assert_eq!(
        err.evidence[0],
        "no DMARC policy applies to contoso.example"
    );
    assert!(err.evidence.len() > 1, "the finding's detail too: {err:?}");
    // A generic item keyed by its check ID: the finding's detail.
    let weak = audit(&set(
        hardened(),
        "selector1-contoso-example._domainkey.contoso.onmicrosoft.com",
        &[Rr::Txt(format!("v=DKIM1; k=rsa; p={RSA1024_SPKI}"))],
    ));
    let err = check_manual_done("dkim-key-size", &weak).expect_err("1024-bit key");
    assert!(!err.evidence.is_empty(), "{err:?}");
    // Every item of a guide that verify says is not done is refused, never with no evidence.
    for (_, item) in build(&soft, &ctx()).items() {
        if verify(item.key, &soft) == Some(false) {
            let e = check_manual_done(item.key, &soft).expect_err(item.key);
            assert!(!e.evidence.is_empty(), "{}", item.key);
        }
    }
}

#[test]
fn nearest_key_suggests_typos_only() {
    let keys = [
        "spf-harden",
        "spf-publish",
        "dmarc-reject",
        "DKIM-NOT-FOUND",
    ];
    assert_eq!(nearest_key("spf-hardn", &keys), Some("spf-harden"));
    assert_eq!(nearest_key("SPF-HARDEN ", &keys), Some("spf-harden"));
    assert_eq!(nearest_key("dkim-not-fund", &keys), Some("DKIM-NOT-FOUND"));
    assert_eq!(nearest_key("dmarc-rejct", &keys), Some("dmarc-reject"));
    assert_eq!(nearest_key("antispoof", &keys), None);
    assert_eq!(nearest_key("x", &keys), None);
    assert_eq!(nearest_key("spf-hardn", &[]), None);
}

/// Whether any DNS record or step of the guide proposes what a domain that sends mail needs:
/// the `p=none` roll-out, the Microsoft 365 include, DKIM CNAMEs.
fn sending_advice(g: &Guide) -> Vec<String> {
    let mut out = Vec::new();
    for (_, item) in g.items() {
        for r in item.dns_records() {
            let v = r.value.to_ascii_lowercase();
            if v.contains("p=none")
                || v.contains("p=quarantine")
                || v.contains("include:spf.protection.outlook.com")
                || r.rtype == "CNAME"
            {
                out.push(format!("{}: {r:?}", item.key));
            }
        }
        for s in &item.steps {
            if s.text.contains("p=none") || s.text.contains("spf.protection.outlook.com") {
                out.push(format!("{}: {}", item.key, s.text));
            }
        }
    }
    out
}

#[test]
fn a_parked_domain_gets_only_the_lock_down() {
    // Null MX, nothing else: DMARC-MISSING, SPF-MISSING and PARKED-NOT-LOCKED.
    let zone: Vec<(String, Rr)> = vec![(D.into(), Rr::Mx(0, ".".into()))];
    let rep = audit_zone(&zone, false);
    let ids: Vec<CheckId> = rep.findings.iter().map(|f| f.id).collect();
    for id in [
        CheckId::DmarcMissing,
        CheckId::SpfMissing,
        CheckId::ParkedNotLocked,
    ] {
        assert!(ids.contains(&id), "{id}: {ids:?}");
    }
    // Every fix of the report is the lock-down, the same text.
    let lock = "contoso.example. TXT \"v=spf1 -all\"\n_dmarc.contoso.example. TXT \
                \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; \
                rua=mailto:dmarc-reports@contoso.example\"";
    for f in &rep.findings {
        if matches!(f.area, Area::Spf | Area::Dmarc) {
            assert_eq!(f.fix, lock, "{}", f.id);
        }
    }
    let r = ReportView::from_report(&rep);
    let (g, md) = guide_md(&r, &ctx());
    // One item, as urgent as DMARC-MISSING, with the same records as the findings' fix (and
    // the re-audit that shows it done).
    assert_eq!(keys(&g), ["parked-lockdown", "rerun-audit"]);
    assert_eq!(g.sections[0].priority, Priority::P1);
    let item = g.item("parked-lockdown").expect("parked-lockdown");
    let published: Vec<String> = item
        .records_to_publish()
        .iter()
        .filter(|r| !r.name.starts_with('*'))
        .map(|r| format!("{}. {} \"{}\"", r.name, r.rtype, r.value))
        .collect();
    assert_eq!(published.join("\n"), lock);
    assert_eq!(sending_advice(&g), Vec::<String>::new(), "{md}");
    assert_eq!(checklist(&g).len(), 2);
    // Publishing them locks the domain down.
    let fixed = ReportView::from_report(&audit_zone(&apply(&zone, item), false));
    assert!(!fixed.has(CheckId::ParkedNotLocked), "{:?}", fixed.findings);
    assert_eq!(verify("parked-lockdown", &fixed), Some(true));

    // Listed as parked with no MX at all: the null MX joins the lock-down, MX-MISSING too.
    let exists: Vec<(String, Rr)> = vec![(D.into(), Rr::A([192, 0, 2, 80].into()))];
    let rep = audit_zone(&exists, true);
    let mx = rep
        .findings
        .iter()
        .find(|f| f.id == CheckId::MxMissing)
        .expect("MX-MISSING");
    assert!(
        mx.fix.starts_with("contoso.example. MX 0 .\n"),
        "{}",
        mx.fix
    );
    assert!(!mx.fix.contains("outlook"), "{}", mx.fix);
    let r = ReportView::from_report(&rep);
    let (g, md) = guide_md(&r, &ctx());
    assert_eq!(keys(&g), ["parked-lockdown", "rerun-audit"], "{md}");
    assert!(
        g.item("parked-lockdown")
            .expect("parked-lockdown")
            .finding_ids
            .contains(&CheckId::MxMissing)
    );
    assert!(md.contains("contoso.example.  3600  IN  MX  0 ."), "{md}");
    assert_eq!(sending_advice(&g), Vec::<String>::new(), "{md}");

    // Listed as parked, locked down, but no MX: only the null MX, under MX-MISSING.
    let locked: Vec<(String, Rr)> = vec![
        (D.into(), Rr::Txt("v=spf1 -all".into())),
        (
            "_dmarc.contoso.example".into(),
            Rr::Txt("v=DMARC1; p=reject; rua=mailto:d@contoso.example".into()),
        ),
    ];
    let rep = audit_zone(&locked, true);
    assert!(!rep.has(CheckId::ParkedNotLocked), "{:?}", rep.findings);
    let mx = rep
        .findings
        .iter()
        .find(|f| f.id == CheckId::MxMissing)
        .expect("MX-MISSING");
    assert_eq!(mx.fix, "contoso.example. MX 0 .");
}

#[test]
fn hostile_report_values_are_neutralised() {
    let mut r = audit(&set(hardened(), "_dmarc.contoso.example", &[]));
    r.domain = "evil.example\"; Remove-Mailbox".into();
    let g = build(&r, &ctx());
    assert!(g.sections.is_empty());
    assert!(!g.notes.is_empty());
    let mut r = audit(&hardened());
    r.findings.push(crate::Finding::new(
        CheckId::MxUnresolvable,
        "<script>alert(1)</script>",
    ));
    // The same finding in the guide's HTML: the portal's `guide_html` tests.
    let mut c = ctx();
    c.key_people = vec![(
        "Eve\n$(Remove-Mailbox)".into(),
        "eve@contoso.example".into(),
    )];
    let g = build(&r, &c);
    let text: Vec<&str> = g
        .item("impersonation")
        .unwrap()
        .steps
        .iter()
        .filter_map(|s| s.code.as_ref())
        .map(|c| c.text.as_str())
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("'Eve $(Remove-Mailbox);eve@contoso.example'")),
        "{text:?}"
    );
    assert!(text.iter().all(|t| !t.contains('\n')));
}

#[test]
fn invalid_report() {
    let r = ReportView {
        domain: "not a domain".into(),
        error: Some("invalid".into()),
        ..ReportView::default()
    };
    let g = build(&r, &ctx());
    assert!(g.sections.is_empty());
    assert_eq!(verify("dmarc-publish", &r), None);
    assert!(render_markdown(&g).contains("No guide"));
}

#[test]
fn verify_unknown_and_generic_keys() {
    let r = audit(&hardened());
    assert_eq!(verify("no-such-key", &r), None);
    assert_eq!(verify("MX-UNRESOLVABLE", &r), Some(true));
    assert_eq!(verify("TLS-CERT-INVALID", &r), None);
    assert_eq!(verify("connectors-partner", &r), None);
    assert_eq!(verify("impersonation", &r), None);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    #[test]
    fn build_never_panics(
        domain in "[a-z0-9.\\-\"]{0,30}",
        spf in proptest::option::of("v=spf1[ -~]{0,80}"),
        dmarc in proptest::option::of("v=DMARC1[ -~]{0,80}"),
        policy in proptest::option::of("none|quarantine|reject|x"),
        tenant in proptest::option::of("\\PC{0,20}"),
        person in ("\\PC{0,20}", "\\PC{0,20}"),
        picks in proptest::collection::vec(0usize..57, 0..12),
        detail in "\\PC{0,40}",
        verdict in "open|blocked|inconclusive|not_tested|",
        provider in "m365|google|other|none",
    ) {
        let ids: Vec<CheckId> = CheckId::all().collect();
        let mut r = ReportView {
            domain,
            provider,
            spf: SpfView { record: spf, ..SpfView::default() },
            dmarc: DmarcView { record: dmarc, policy, ..DmarcView::default() },
            dkim: DkimView { tenant: tenant.clone(), ..DkimView::default() },
            ..ReportView::default()
        };
        r.relay.verdict = verdict;
        for i in picks {
            let id = ids[i % ids.len()];
            r.findings.push(crate::Finding::new(id, detail.clone()).with_evidence(detail.clone()));
        }
        let mut c = ctx();
        c.tenant = tenant;
        c.key_people.push(person);
        c.default_rua = Some(detail.clone());
        let g = build(&r, &c);
        let _ = render_markdown(&g);
        let _ = checklist(&g);
        for (_, item) in g.items() {
            let _ = verify(item.key, &r);
            let _ = item.records_to_publish();
        }
    }
}

#[test]
fn a_domain_that_does_not_exist_gets_no_records_and_no_verdicts() {
    // The zone has another domain only: contoso.example is NXDOMAIN.
    let zone: Vec<(String, Rr)> = hardened()
        .into_iter()
        .map(|(n, r)| (n.replace(D, "fabrikam.example"), r))
        .collect();
    let rep = audit_zone(&zone, false);
    assert_eq!(
        rep.findings.iter().map(|f| f.id).collect::<Vec<_>>(),
        [CheckId::DomainNotFound]
    );
    let r = ReportView::from_report(&rep);
    assert!(r.not_found());
    let (g, md) = guide_md(&r, &ctx());
    assert!(g.sections.is_empty(), "no item: {md}");
    assert!(checklist(&g).is_empty());
    assert!(md.contains("does not exist"), "{md}");
    assert!(!md.contains("v=DMARC1") && !md.contains("v=spf1"), "{md}");
    // Nothing can be verified on it: no item is ticked or reopened.
    for key in [
        "dmarc-publish",
        "dmarc-reject",
        "spf-harden",
        "dkim-cnames",
        "mta-sts",
    ] {
        assert_eq!(verify(key, &r), None, "{key}");
    }
    // Compared with an earlier audit of the domain when it existed, its findings are
    // unverified, not fixed, and the disappearance itself is new.
    let before = audit(&set(hardened(), &format!("_dmarc.{D}"), &[]));
    assert!(before.has(CheckId::DmarcMissing));
    let d = crate::history::diff(&before, &r, &[]);
    assert!(d.fixed.is_empty(), "{:?}", d.fixed);
    assert!(
        d.unverified.iter().any(|f| f.id == CheckId::DmarcMissing),
        "{:?}",
        d.unverified
    );
    assert_eq!(
        d.new.iter().map(|f| f.id).collect::<Vec<_>>(),
        [CheckId::DomainNotFound]
    );
    assert!(d.worsened());
    assert!(d.changes.is_empty(), "{:?}", d.changes);
}

#[test]
fn records_are_shown_as_host_type_value_too() {
    // An external report address (authorised in the destination's zone) and an SPF record
    // longer than one TXT string.
    let long_spf = format!(
        "v=spf1 {}include:spf.protection.outlook.com ~all",
        (1..=20)
            .map(|i| format!("ip4:198.51.100.{i} "))
            .collect::<String>()
    );
    let zone = set(
        set_spf(hardened(), &long_spf),
        "_dmarc.contoso.example",
        &[Rr::Txt("v=DMARC1; p=none; rua=mailto:d@msp.example".into())],
    );
    let r = audit(&zone);
    assert!(r.has(CheckId::DmarcRuaUnauthorized), "{:?}", r.findings);
    let (g, md) = guide_md(&r, &ctx());
    let auth = g
        .item("dmarc-quarantine")
        .expect("dmarc-quarantine")
        .dns_records()
        .into_iter()
        .find(|r| r.name.contains("._report._dmarc."))
        .expect("the authorisation record");
    assert_eq!(auth.zone, "msp.example");
    assert_eq!(auth.host, "contoso.example._report._dmarc");
    assert!(
        md.contains("Host relative to `msp.example`"),
        "the table names the destination's zone: {md}"
    );
    assert!(md.contains(
        "| `contoso.example._report._dmarc` | TXT | `v=DMARC1` | `contoso.example._report._dmarc.msp.example` |"
    ));
    // The hardened SPF record: over 255 octets, split in the zone-file line, whole in the table.
    let spf = g
        .item("spf-harden")
        .expect("spf-harden")
        .records_to_publish()
        .remove(0);
    assert!(
        spf.value.len() > 255 && spf.value.ends_with(" -all"),
        "{spf:?}"
    );
    assert_eq!(spf.host, "@");
    assert_eq!(spf.strings.len(), 2);
    assert_eq!(spf.strings.concat(), spf.value);
    assert!(md.contains(&format!(
        "| `@` | TXT | `{}` | `contoso.example` |",
        spf.value
    )));
    assert!(md.contains(&format!(
        "The value at `@` is {} characters, over the 255 of one TXT string",
        spf.value.len()
    )));
    assert!(spf.zone_line().contains("\" \""), "{}", spf.zone_line());
    // The HTML page has the same table (the portal's `guide_html` tests).
    // In the guide's JSON, a dns block carries its records; other blocks do not.
    let json = serde_json::to_value(g.item("dmarc-quarantine").unwrap()).unwrap();
    let blocks: Vec<&serde_json::Value> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.get("code").filter(|c| !c.is_null()))
        .collect();
    let dns = blocks
        .iter()
        .find(|c| c["lang"] == "dns")
        .expect("a dns block");
    assert_eq!(dns["records"][0]["host"], "_dmarc");
    assert_eq!(dns["records"][0]["type"], "TXT");
    assert!(
        blocks
            .iter()
            .filter(|c| c["lang"] != "dns")
            .all(|c| c.get("records").is_none())
    );
}

#[test]
fn a_markdown_cell_cannot_break_the_table() {
    // A value from DNS with a pipe and backticks (a TXT record kept in a proposal).
    let hostile = "v=spf1 `x`|y ``z -all";
    let g = Guide {
        domain: D.into(),
        score: None,
        sections: vec![Section {
            priority: Priority::P1,
            items: vec![GuideItem {
                key: "spf-repair",
                title: "t".into(),
                finding_ids: Vec::new(),
                found: Vec::new(),
                why: "w".into(),
                steps: vec![Step {
                    text: "s".into(),
                    code: Some(Code::dns(vec![DnsRecord::txt(D, D, hostile)])),
                }],
                verify: Vec::new(),
            }],
        }],
        withheld: Vec::new(),
        notes: Vec::new(),
    };
    let md = render_markdown(&g);
    let row = md
        .lines()
        .find(|l| l.trim_start().starts_with("| `@`"))
        .expect("the table row");
    // Four cells: the pipes that are not escaped are the five borders.
    let unescaped = row.matches('|').count() - row.matches("\\|").count();
    assert_eq!(unescaped, 5, "{row}");
    // The value's code span is delimited by more backticks than it contains.
    assert!(row.contains("| ```v=spf1 `x`\\|y ``z -all``` |"), "{row}");
}

/// The items of the seed's checklist: when each appears.
#[test]
fn the_seed_checklist_items_appear_when_due() {
    let at = |g: &Guide, key: &str| g.items().position(|(_, i)| i.key == key);
    let priority = |g: &Guide, key: &str| g.items().find(|(_, i)| i.key == key).map(|(p, _)| p);
    let count = |g: &Guide, key: &str| g.items().filter(|(_, i)| i.key == key).count();

    // No DMARC: publish, then verify (same priority, right after), review, the final phase
    // later; the re-audit last.
    let g = build(
        &audit(&set(hardened(), "_dmarc.contoso.example", &[])),
        &ctx(),
    );
    let publish = at(&g, "dmarc-publish").expect("dmarc-publish");
    assert_eq!(at(&g, "dmarc-verify"), Some(publish + 1), "{:?}", keys(&g));
    assert_eq!(priority(&g, "dmarc-verify"), priority(&g, "dmarc-publish"));
    assert_eq!(priority(&g, "dmarc-review-reports"), Some(Priority::P3));
    assert_eq!(priority(&g, "dmarc-reject"), Some(Priority::P4));
    assert!(g.item("dmarc-quarantine").is_none());
    assert!(g.item("dmarc-reject").unwrap().finding_ids.is_empty());
    assert_eq!(keys(&g).last(), Some(&"rerun-audit"));

    // p=none: the next phase, the review with its dates, the final phase later (one item).
    let none = audit(&set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Txt(
            "v=DMARC1; p=none; rua=mailto:d@contoso.example".into(),
        )],
    ));
    let mut c = ctx();
    c.dmarc_rollout = Some(("none".into(), TODAY - 5 * 86_400));
    let g = build(&none, &c);
    assert!(g.item("dmarc-verify").is_none());
    assert_eq!(count(&g, "dmarc-reject"), 1);
    assert_eq!(priority(&g, "dmarc-reject"), Some(Priority::P4));
    assert!(at(&g, "dmarc-quarantine") < at(&g, "dmarc-review-reports"));
    let review = g.item("dmarc-review-reports").unwrap();
    assert_eq!(
        review.steps[0].text,
        "p=none since 2026-01-28: review the aggregate reports between 2026-02-11 and 2026-02-25 (two to four weeks in), then move to p=quarantine."
    );
    c.dmarc_rollout = Some(("none".into(), TODAY - 35 * 86_400));
    c.dmarc_readiness = Some(crate::reports::analysis::Readiness {
        ready: false,
        next: Some("quarantine"),
        reasons: vec!["a forgotten sender fails".into()],
    });
    let g = build(&none, &c);
    let review = g.item("dmarc-review-reports").unwrap();
    assert!(
        review.steps[0]
            .text
            .contains("the review is due (four weeks were up on"),
        "{}",
        review.steps[0].text
    );
    assert!(review.steps[1].text.contains("a forgotten sender fails"));
    assert_eq!(keys(&g).last(), Some(&"rerun-audit"));

    // p=quarantine: the real dmarc-reject item (its finding), the review, nothing later.
    let quarantine = audit(&set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Txt(
            "v=DMARC1; p=quarantine; rua=mailto:d@contoso.example".into(),
        )],
    ));
    let g = build(&quarantine, &ctx());
    assert_eq!(count(&g, "dmarc-reject"), 1);
    assert_eq!(
        g.item("dmarc-reject").unwrap().finding_ids,
        [CheckId::DmarcPolicyQuarantine]
    );
    assert!(g.item("dmarc-review-reports").is_some());

    // p=reject: no DMARC roll-out item at all.
    let g = build(&audit(&hardened()), &ctx());
    for key in ["dmarc-verify", "dmarc-review-reports", "dmarc-reject"] {
        assert!(g.item(key).is_none(), "{key}");
    }
    // Microsoft 365: the connectors' audit and mailbox intelligence; the re-audit last.
    assert!(g.item("connectors-audit").is_some() && g.item("mailbox-intelligence").is_some());
    assert_eq!(keys(&g).last(), Some(&"rerun-audit"));

    // Not Microsoft 365: neither Exchange Online item; nothing to do, no re-audit either.
    let other = ReportView {
        domain: D.into(),
        provider: "other".into(),
        ..ReportView::default()
    };
    let g = build(&other, &ctx());
    assert!(g.sections.is_empty(), "{:?}", keys(&g));
    let mut other = other;
    other
        .findings
        .push(crate::Finding::new(CheckId::DmarcMissing, "none"));
    let g = build(&other, &ctx());
    assert!(g.item("connectors-audit").is_none() && g.item("mailbox-intelligence").is_none());
    assert_eq!(keys(&g).last(), Some(&"rerun-audit"));
}

/// How the new items tick: from the audit, or (Exchange Online) from an import or by hand.
#[test]
fn the_seed_checklist_items_tick_from_the_audit() {
    // dmarc-verify: a valid record with a working report address.
    let zone = set(hardened(), "_dmarc.contoso.example", &[]);
    let missing = audit(&zone);
    assert_eq!(verify("dmarc-verify", &missing), Some(false));
    let g = build(&missing, &ctx());
    let published = audit(&apply(&zone, g.item("dmarc-publish").unwrap()));
    assert_eq!(verify("dmarc-verify", &published), Some(true));
    let no_rua = audit(&set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Txt("v=DMARC1; p=none".into())],
    ));
    assert_eq!(verify("dmarc-verify", &no_rua), Some(false));
    let e = check_manual_done("dmarc-verify", &no_rua).expect_err("no rua");
    assert!(
        e.evidence
            .iter()
            .any(|x| x.contains("rua") || x.contains("report")),
        "{e:?}"
    );
    let failed = audit(&set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Fail(DnsError::ServFail)],
    ));
    assert_eq!(verify("dmarc-verify", &failed), None);

    // dmarc-review-reports: not visible in DNS until the roll-out reaches p=reject; a tick by
    // hand during the roll-out is accepted.
    let none = audit(&set(
        hardened(),
        "_dmarc.contoso.example",
        &[Rr::Txt(
            "v=DMARC1; p=none; rua=mailto:d@contoso.example".into(),
        )],
    ));
    assert_eq!(verify("dmarc-review-reports", &none), None);
    assert_eq!(check_manual_done("dmarc-review-reports", &none), Ok(()));
    assert_eq!(
        verify("dmarc-review-reports", &audit(&hardened())),
        Some(true)
    );
    // The later p=reject item stays open at p=none.
    assert_eq!(verify("dmarc-reject", &none), Some(false));

    // rerun-audit: done when the audit shows nothing left; reopened by a finding.
    assert_eq!(verify("rerun-audit", &audit(&hardened())), Some(true));
    let soft = audit(&set_spf(
        hardened(),
        "v=spf1 include:spf.protection.outlook.com ~all",
    ));
    assert_eq!(verify("rerun-audit", &soft), Some(false));
    let e = check_manual_done("rerun-audit", &soft).expect_err("SPF-SOFTFAIL left");
    assert!(
        e.evidence.iter().any(|x| x.starts_with("SPF-SOFTFAIL: ")),
        "{e:?}"
    );
    assert_eq!(verify("rerun-audit", &failed), None);

    // The Exchange Online items: DNS cannot tell; their findings (from an import) reopen them.
    let hard = audit(&hardened());
    for key in ["connectors-audit", "mailbox-intelligence"] {
        assert_eq!(verify(key, &hard), None, "{key}");
        assert_eq!(check_manual_done(key, &hard), Ok(()), "{key}");
    }
    let mut tenant = hard.clone();
    tenant.findings.push(crate::Finding::new(
        CheckId::ExoMailboxIntelligenceOff,
        "off",
    ));
    tenant.findings.push(crate::Finding::new(
        CheckId::ExoConnectorUnrestricted,
        "open",
    ));
    assert_eq!(verify("mailbox-intelligence", &tenant), Some(false));
    assert_eq!(verify("connectors-audit", &tenant), Some(false));
    // Impersonation no longer waits for mailbox intelligence.
    assert_eq!(verify("impersonation", &tenant), None);
}
