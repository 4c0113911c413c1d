//! Every DNS record the audit proposes is safe to paste (issue 11): applied to the zone, the
//! finding it fixes is gone and no new finding appears (the next roll-out phase aside), and an
//! SPF proposal still authorises the sender the domain's MX implies (checked with the project's
//! own `check_host` against a provider address of the fixture zone).
//!
//! The fixture zones are in memory ([`MemoryDns`]); every address is a documentation address.

use std::collections::BTreeSet;
use std::net::IpAddr;

use mailaudit_core::audit::{AuditOptions, DomainReport, audit_domain};
use mailaudit_core::checks::CheckId;
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, GuideContext, ReportView};
use mailaudit_core::memory::{MemoryDns, Rr};
use mailaudit_core::spf::{self, SpfResult};

type Zone = Vec<(String, Rr)>;

/// A sending address of each provider, as its SPF record in the fixture zone lists it.
const M365_IP: &str = "192.0.2.10";
const GOOGLE_IP: &str = "198.51.100.25";
const MIMECAST_IP: &str = "203.0.113.10";
const VENDOR_IP: &str = "198.51.100.200";

/// The providers' own records (what the proposals include), shared by every fixture.
fn providers() -> Zone {
    let mut z = vec![
        txt("spf.protection.outlook.com", "v=spf1 ip4:192.0.2.0/25 -all"),
        txt("_spf.google.com", "v=spf1 ip4:198.51.100.0/25 ~all"),
        txt("_netblocks.mimecast.com", "v=spf1 ip4:203.0.113.0/24 -all"),
    ];
    for (host, ip) in [
        ("aspmx.l.google.com", "192.0.2.200"),
        ("eu-smtp-inbound-1.mimecast.com", "192.0.2.201"),
    ] {
        z.push((host.into(), Rr::A(ip.parse().unwrap())));
    }
    z
}

fn txt(name: &str, value: &str) -> (String, Rr) {
    (name.to_string(), Rr::Txt(value.to_string()))
}

/// A domain receiving at Microsoft 365, with DKIM selectors published.
fn m365(domain: &str) -> Zone {
    let label = domain.replace('.', "-");
    let mx = format!("{label}.mail.protection.outlook.com");
    let mut z = providers();
    z.push((domain.into(), Rr::Mx(0, mx.clone())));
    z.push((mx, Rr::A("192.0.2.202".parse().unwrap())));
    z.push(txt(domain, "MS=ms12345678"));
    for sel in ["selector1", "selector2"] {
        z.push((
            format!("{sel}._domainkey.{domain}"),
            Rr::Cname(format!("{sel}-{label}._domainkey.contoso.onmicrosoft.com")),
        ));
    }
    z
}

/// A Google Workspace domain.
fn google(domain: &str) -> Zone {
    let mut z = providers();
    z.push((domain.into(), Rr::Mx(1, "aspmx.l.google.com".into())));
    z
}

/// A domain behind Mimecast, with Microsoft 365 behind it (the `MS=` verification record).
fn mimecast(domain: &str) -> Zone {
    let mut z = providers();
    z.push((
        domain.into(),
        Rr::Mx(10, "eu-smtp-inbound-1.mimecast.com".into()),
    ));
    z.push(txt(domain, "MS=ms12345678"));
    z
}

fn with(mut z: Zone, more: &[(&str, &str)]) -> Zone {
    z.extend(more.iter().map(|(n, v)| txt(n, v)));
    z
}

fn memory(z: &Zone) -> MemoryDns {
    let mut dns = MemoryDns::new();
    for (n, rr) in z {
        dns.add(n, rr.clone());
    }
    dns
}

fn audit(z: &Zone, domain: &str) -> DomainReport {
    pollster::block_on(audit_domain(&memory(z), domain, &AuditOptions::default()))
}

fn ids(r: &DomainReport) -> BTreeSet<CheckId> {
    r.findings.iter().map(|f| f.id).collect()
}

fn find(r: &DomainReport, id: CheckId) -> &Finding {
    r.findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("{id:?} not in {:#?}", r.findings))
}

/// The record a finding's fix proposes, as `(name, TXT value)`: an SPF record (published at
/// the domain) or one `name. TXT "value"` line. `None` when the fix is not a record.
fn proposed_record(domain: &str, f: &Finding) -> Option<(String, String)> {
    let fix = f.fix.trim();
    if fix.starts_with("v=spf1 ") && !fix.contains('\n') && !fix.contains(" (") {
        return Some((domain.to_string(), fix.to_string()));
    }
    if fix.contains('\n') {
        return None;
    }
    let (name, rest) = fix.split_once(". TXT \"")?;
    let value = rest.strip_suffix('"')?;
    Some((
        name.to_string(),
        value.replace("\\\"", "\"").replace("\\\\", "\\"),
    ))
}

/// `z` with the TXT record of the same kind (`v=spf1` or `v=DMARC1`) at `name` replaced.
fn apply(z: &Zone, name: &str, value: &str) -> Zone {
    let kind = |t: &str| {
        t.split([';', ' '])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let mut out: Zone = z
        .iter()
        .filter(|(n, rr)| !(n == name && matches!(rr, Rr::Txt(t) if kind(t) == kind(value))))
        .cloned()
        .collect();
    out.push(txt(name, value));
    out
}

/// The findings that legitimately follow a fix: the next phase of a roll-out the fix starts
/// (a new DMARC record starts at `p=none`; `p=none` moves to `p=quarantine`; a gateway's SPF
/// starts at `~all` until the reports show every sender passing).
fn successors(id: CheckId, proposal: &str) -> Vec<CheckId> {
    match id {
        CheckId::DmarcMissing => vec![CheckId::DmarcPolicyNone],
        CheckId::DmarcPolicyNone => vec![CheckId::DmarcPolicyQuarantine],
        CheckId::SpfMissing if proposal.ends_with("~all") => vec![CheckId::SpfSoftfail],
        _ => vec![],
    }
}

fn spf_result(z: &Zone, domain: &str, ip: &str) -> SpfResult {
    let ip: IpAddr = ip.parse().unwrap();
    pollster::block_on(spf::check_host(
        &memory(z),
        ip,
        domain,
        &format!("user@{domain}"),
        &format!("mail.{domain}"),
    ))
    .result
}

/// Applies every record the audit of `domain` proposes, one at a time, and re-audits: the
/// finding is gone, nothing new appears, and the SPF policy still passes `senders`. Returns
/// how many proposals were applied.
fn reaudit_every_proposal(z: &Zone, domain: &str, senders: &[&str]) -> usize {
    let before = audit(z, domain);
    let mut applied = 0;
    for f in &before.findings {
        let Some((name, value)) = proposed_record(domain, f) else {
            continue;
        };
        // The same record, structured as a DNS panel asks for it (JSON `fix_records`).
        assert_eq!(
            f.fix_records.len(),
            1,
            "{domain} {:?}: {:?}",
            f.id,
            f.fix_records
        );
        let rec = &f.fix_records[0];
        assert_eq!(
            (rec.name.as_str(), rec.rtype.as_str(), rec.value.as_str()),
            (name.as_str(), "TXT", value.as_str()),
            "{domain} {:?}",
            f.id
        );
        let host = match name.strip_suffix(&format!(".{domain}")) {
            Some(prefix) => prefix.to_string(),
            None => "@".to_string(),
        };
        assert_eq!(rec.host, host, "{domain} {:?}", f.id);
        let json = serde_json::to_value(f).expect("finding as JSON");
        assert_eq!(json["fix_records"][0]["host"], host.as_str());
        assert_eq!(json["fix_records"][0]["type"], "TXT");
        assert_eq!(json["fix_records"][0]["value"], value.as_str());
        // The proposal parses back with the project's own parsers.
        if value.starts_with("v=spf1") {
            spf::parse(&value).unwrap_or_else(|e| panic!("{domain} {:?}: {value}: {e}", f.id));
        } else {
            mailaudit_core::dmarc::parse(&value)
                .unwrap_or_else(|e| panic!("{domain} {:?}: {value}: {e}", f.id));
        }
        let fixed = apply(z, &name, &value);
        let after = audit(&fixed, domain);
        assert!(
            !after.has(f.id),
            "{domain}: {:?} still there after publishing {value:?}: {:#?}",
            f.id,
            after.findings
        );
        let allowed = successors(f.id, &value);
        let new: Vec<CheckId> = ids(&after)
            .difference(&ids(&before))
            .filter(|id| !allowed.contains(id))
            .copied()
            .collect();
        assert!(
            new.is_empty(),
            "{domain}: publishing {value:?} for {:?} raised {new:?}: {:#?}",
            f.id,
            after.findings
        );
        if value.starts_with("v=spf1") {
            for ip in senders {
                assert_eq!(
                    spf_result(&fixed, domain, ip),
                    SpfResult::Pass,
                    "{domain}: {value:?} no longer authorises {ip}"
                );
            }
        }
        applied += 1;
    }
    applied
}

fn guide_of(r: &DomainReport) -> guide::Guide {
    guide::build(&ReportView::from_report(r), &GuideContext::default())
}

fn ordered_keys(g: &guide::Guide) -> Vec<&'static str> {
    g.items().map(|(_, i)| i.key).collect()
}

#[test]
fn every_proposed_record_fixes_its_finding_and_raises_no_other() {
    let fleet: Vec<(&str, Zone, Vec<&str>)> = vec![
        ("google.example", google("google.example"), vec![GOOGLE_IP]),
        (
            "gateway.example",
            mimecast("gateway.example"),
            vec![MIMECAST_IP],
        ),
        ("m365.example", m365("m365.example"), vec![M365_IP]),
        (
            "soft.example",
            with(
                m365("soft.example"),
                &[
                    (
                        "soft.example",
                        "v=spf1 include:spf.protection.outlook.com ~all",
                    ),
                    (
                        "_dmarc.soft.example",
                        "v=DMARC1; p=quarantine; rua=mailto:d@soft.example",
                    ),
                ],
            ),
            vec![M365_IP],
        ),
        (
            "noinclude.example",
            with(
                m365("noinclude.example"),
                &[
                    ("noinclude.example", "v=spf1 ip4:198.51.100.200 -all"),
                    (
                        "_dmarc.noinclude.example",
                        "v=DMARC1; p=none; sp=none; pct=50; t=y; rua=mailto:d@noinclude.example; fo=1",
                    ),
                ],
            ),
            vec![M365_IP, VENDOR_IP],
        ),
        (
            "rua.example",
            with(
                google("rua.example"),
                &[
                    ("rua.example", "v=spf1 include:_spf.google.com -all"),
                    (
                        "_dmarc.rua.example",
                        "v=DMARC1; p=none; rua=mailto:x@rua.example; fo=1",
                    ),
                ],
            ),
            vec![GOOGLE_IP],
        ),
    ];
    let mut total = 0;
    for (domain, zone, senders) in &fleet {
        let n = reaudit_every_proposal(zone, domain, senders);
        assert!(n > 0, "{domain}: no record proposed");
        total += n;
    }
    // SPF-MISSING ×3, DMARC-MISSING ×4, SPF-SOFTFAIL, DMARC-POLICY-QUARANTINE,
    // SPF-M365-INCLUDE-MISSING, DMARC-POLICY-NONE ×2 and the tag fixes of noinclude.example.
    assert!(total >= 12, "{total}");
}

#[test]
fn google_workspace_gets_google_include_not_microsoft() {
    let z = google("g.example");
    let r = audit(&z, "g.example");
    let f = find(&r, CheckId::SpfMissing);
    assert_eq!(f.fix, "v=spf1 include:_spf.google.com -all");
    assert!(!f.fix.contains("outlook"), "{}", f.fix);
    // The guide's step 1 publishes the same record.
    let g = guide_of(&r);
    let item = g.item("spf-publish").expect("spf-publish");
    assert_eq!(item.records_to_publish()[0].value, f.fix);
    assert!(
        !item.steps.iter().any(|s| s.text.contains("outlook")),
        "{:#?}",
        item.steps
    );
    // Applied, Google's senders pass.
    let fixed = apply(&z, "g.example", &f.fix);
    assert_eq!(spf_result(&fixed, "g.example", GOOGLE_IP), SpfResult::Pass);
}

#[test]
fn mimecast_gateway_gets_its_include_softfail_and_no_m365_demands() {
    let z = mimecast("mc.example");
    let r = audit(&z, "mc.example");
    assert_eq!(r.gateway.as_deref(), Some("Mimecast"));
    let f = find(&r, CheckId::SpfMissing);
    assert_eq!(f.fix, "v=spf1 include:_netblocks.mimecast.com ~all");
    assert!(!r.has(CheckId::DkimM365Missing), "{:#?}", r.findings);
    let g = guide_of(&r);
    let item = g.item("spf-publish").expect("spf-publish");
    assert_eq!(item.records_to_publish()[0].value, f.fix);

    // With the gateway's SPF published, Microsoft 365's include is not demanded.
    let fixed = apply(&z, "mc.example", &f.fix);
    let after = audit(&fixed, "mc.example");
    assert!(
        !after.has(CheckId::SpfM365IncludeMissing),
        "{:#?}",
        after.findings
    );
    assert!(
        !after.has(CheckId::DkimM365Missing),
        "{:#?}",
        after.findings
    );
    assert_eq!(
        spf_result(&fixed, "mc.example", MIMECAST_IP),
        SpfResult::Pass
    );

    // A gateway without a documented include: no record, what to list first.
    let z = with(providers(), &[("pp.example", "MS=ms1")]);
    let mut z = z;
    z.push((
        "pp.example".into(),
        Rr::Mx(10, "mx0a-001.pphosted.com".into()),
    ));
    z.push((
        "mx0a-001.pphosted.com".into(),
        Rr::A("192.0.2.203".parse().unwrap()),
    ));
    let r = audit(&z, "pp.example");
    let f = find(&r, CheckId::SpfMissing);
    assert!(!f.fix.contains("outlook"), "{}", f.fix);
    assert!(f.fix.contains("Proofpoint"), "{}", f.fix);
    assert_eq!(proposed_record("pp.example", f), None);
    assert!(!r.has(CheckId::DkimM365Missing), "{:#?}", r.findings);
}

#[test]
fn broken_include_and_softfail_fix_the_include_first() {
    let z = with(
        m365("bi.example"),
        &[(
            "bi.example",
            "v=spf1 include:spf.protection.outlook.com include:old-vendor.example ~all",
        )],
    );
    let r = audit(&z, "bi.example");
    assert!(r.has(CheckId::SpfIncludeBroken), "{:#?}", r.findings);
    let soft = find(&r, CheckId::SpfSoftfail);
    assert_eq!(proposed_record("bi.example", soft), None, "{}", soft.fix);
    assert!(soft.fix.contains("old-vendor.example"), "{}", soft.fix);
    // The guide: the broken include first, the hardening after, without a -all record.
    let g = guide_of(&r);
    let keys = ordered_keys(&g);
    let at = |k: &str| {
        keys.iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k} in {keys:?}"))
    };
    assert!(at("SPF-INCLUDE-BROKEN") < at("spf-harden"), "{keys:?}");
    let harden = g.item("spf-harden").unwrap();
    assert!(harden.records_to_publish().is_empty(), "{:?}", harden.steps);
}

/// A domain whose SPF needs 12 look-ups and ends in `~all`.
fn twelve_lookups(domain: &str) -> Zone {
    let mut z = with(
        m365(domain),
        &[
            (
                domain,
                "v=spf1 include:spf.protection.outlook.com include:big.example include:one.example mx ~all",
            ),
            (
                "big.example",
                "v=spf1 include:b1.example include:b2.example include:b3.example include:b4.example \
                 include:b5.example include:b6.example include:b7.example include:b8.example -all",
            ),
            ("one.example", "v=spf1 ip4:198.51.100.200 -all"),
        ],
    );
    for i in 1..=8 {
        z.push(txt(
            &format!("b{i}.example"),
            &format!("v=spf1 ip4:203.0.113.{}/32 -all", 100 + i),
        ));
    }
    z
}

#[test]
fn twelve_lookups_and_softfail_get_under_the_limit_first() {
    let z = twelve_lookups("ll.example");
    let r = audit(&z, "ll.example");
    assert_eq!(r.spf.lookups, 12);
    let soft = find(&r, CheckId::SpfSoftfail);
    assert_eq!(proposed_record("ll.example", soft), None, "{}", soft.fix);
    assert!(soft.fix.contains("SPF-LOOKUP-LIMIT"), "{}", soft.fix);
    let g = guide_of(&r);
    let keys = ordered_keys(&g);
    let at = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(at("spf-lookups") < at("spf-harden"), "{keys:?}");
    assert!(
        g.item("spf-harden")
            .unwrap()
            .records_to_publish()
            .is_empty()
    );
    // The flattened record is within the limit: it may end in -all, and applied it raises
    // nothing new and still authorises Microsoft 365 and the flattened vendor's addresses.
    let flat = &g.item("spf-lookups").unwrap().records_to_publish()[0];
    assert!(flat.value.ends_with("-all"), "{}", flat.value);
    let fixed = apply(&z, "ll.example", &flat.value);
    let after = audit(&fixed, "ll.example");
    assert!(after.spf.lookups <= 10, "{}", after.spf.lookups);
    let new: Vec<_> = ids(&after).difference(&ids(&r)).copied().collect();
    assert!(new.is_empty(), "{new:?}");
    assert!(!after.has(CheckId::SpfLookupLimit) && !after.has(CheckId::SpfSoftfail));
    for ip in [M365_IP, VENDOR_IP, "203.0.113.105"] {
        assert_eq!(
            spf_result(&fixed, "ll.example", ip),
            SpfResult::Pass,
            "{ip}"
        );
    }
}

#[test]
fn dmarc_policy_none_keeps_rua_and_tags_in_the_fix_and_the_guide() {
    let z = with(
        m365("dn.example"),
        &[
            (
                "dn.example",
                "v=spf1 include:spf.protection.outlook.com -all",
            ),
            (
                "_dmarc.dn.example",
                "v=DMARC1; p=none; rua=mailto:x@dn.example; fo=1",
            ),
        ],
    );
    let r = audit(&z, "dn.example");
    let f = find(&r, CheckId::DmarcPolicyNone);
    assert_eq!(
        f.fix,
        "_dmarc.dn.example. TXT \"v=DMARC1; p=quarantine; rua=mailto:x@dn.example; fo=1\""
    );
    let g = guide_of(&r);
    let item = g.item("dmarc-quarantine").expect("dmarc-quarantine");
    let records = item.dns_records();
    assert!(
        records
            .iter()
            .any(|d| d.value == "v=DMARC1; p=quarantine; rua=mailto:x@dn.example; fo=1"),
        "{records:?}"
    );
    // The final phase is the later `dmarc-reject` item's record.
    let later = g.item("dmarc-reject").expect("dmarc-reject").dns_records();
    assert!(
        later
            .iter()
            .any(|d| d.value == "v=DMARC1; p=reject; rua=mailto:x@dn.example; fo=1"),
        "{later:?}"
    );
    // The quarantine → reject step keeps them too.
    let (name, value) = proposed_record("dn.example", f).unwrap();
    let q = audit(&apply(&z, &name, &value), "dn.example");
    assert_eq!(
        find(&q, CheckId::DmarcPolicyQuarantine).fix,
        "_dmarc.dn.example. TXT \"v=DMARC1; p=reject; rua=mailto:x@dn.example; fo=1\""
    );
}

fn reported(ips: &[(&str, u64)]) -> Vec<spf::propose::ReportedSender> {
    ips.iter()
        .map(|(ip, messages)| spf::propose::ReportedSender {
            ip: ip.parse().unwrap(),
            messages: *messages,
        })
        .collect()
}

/// The guide of `r` with `senders` seen passing SPF in the stored DMARC reports.
fn guide_with_reports(r: &DomainReport, senders: &[(&str, u64)]) -> guide::Guide {
    let ctx = GuideContext {
        spf_senders: reported(senders),
        ..GuideContext::default()
    };
    guide::build(&ReportView::from_report(r), &ctx)
}

#[test]
fn a_sender_passing_spf_in_the_reports_is_kept_when_the_record_is_proposed_anew() {
    // The SPF record was deleted: the reports of the last 30 days still show the CRM's
    // address passing SPF, aligned. The proposal keeps it next to Microsoft 365, and once
    // published both pass and nothing new is found.
    let z = m365("gone.example");
    let r = audit(&z, "gone.example");
    assert!(r.has(CheckId::SpfMissing));
    let g = guide_with_reports(&r, &[(VENDOR_IP, 40)]);
    let item = g.item("spf-publish").expect("spf-publish");
    let rec = &item.records_to_publish()[0];
    assert_eq!(
        rec.value,
        format!("v=spf1 include:spf.protection.outlook.com ip4:{VENDOR_IP} -all")
    );
    assert!(
        item.steps.iter().any(|s| s.text.contains(VENDOR_IP)),
        "the step names the kept sender: {:?}",
        item.steps
    );
    let fixed = apply(&z, "gone.example", &rec.value);
    for ip in [M365_IP, VENDOR_IP] {
        assert_eq!(
            spf_result(&fixed, "gone.example", ip),
            SpfResult::Pass,
            "{ip}"
        );
    }
    let after = audit(&fixed, "gone.example");
    assert!(!after.has(CheckId::SpfMissing));
    let new: Vec<_> = ids(&after).difference(&ids(&r)).copied().collect();
    assert!(new.is_empty(), "{new:?}");
}

#[test]
fn senders_the_record_already_authorises_are_not_added_again() {
    // The hardened record keeps the includes: the reported senders (Microsoft 365's and the
    // CRM's, both in the include tree the audit read) need no term of their own.
    let z = with(
        m365("hk.example"),
        &[
            (
                "hk.example",
                "v=spf1 include:spf.protection.outlook.com include:crm.example ~all",
            ),
            ("crm.example", "v=spf1 ip4:198.51.100.192/26 -all"),
            (
                "_dmarc.hk.example",
                "v=DMARC1; p=quarantine; rua=mailto:d@hk.example",
            ),
        ],
    );
    let r = audit(&z, "hk.example");
    let g = guide_with_reports(&r, &[(M365_IP, 900), (VENDOR_IP, 40)]);
    let rec = &g
        .item("spf-harden")
        .expect("spf-harden")
        .records_to_publish()[0];
    assert_eq!(
        rec.value,
        "v=spf1 include:spf.protection.outlook.com include:crm.example -all"
    );
    // A sender outside the tree (passing through a term since removed) is added before -all.
    let g = guide_with_reports(&r, &[(M365_IP, 900), ("203.0.113.77", 12)]);
    let rec = &g.item("spf-harden").unwrap().records_to_publish()[0];
    assert_eq!(
        rec.value,
        "v=spf1 include:spf.protection.outlook.com include:crm.example ip4:203.0.113.77 -all"
    );
    let fixed = apply(&z, "hk.example", &rec.value);
    for ip in [M365_IP, VENDOR_IP, "203.0.113.77"] {
        assert_eq!(
            spf_result(&fixed, "hk.example", ip),
            SpfResult::Pass,
            "{ip}"
        );
    }
}
