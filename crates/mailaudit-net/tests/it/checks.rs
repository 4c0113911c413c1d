//! Fixture zones for every DNS check ID of `docs/checks.md`, positive and negative, audited through
//! the real resolver against the real DNS server.
//!
//! `testdata/zones/check-fixtures.zone` holds, for each ID, a domain that raises it
//! (`*-pos.test`) and a similar one that does not (`*-neg.test`); [`TABLE`] says which. One test
//! audits every domain of the table and reports every mismatch at once; another fails when a
//! DNS check of the catalogue has no positive or no negative fixture. The DNS-failure matrix
//! (SERVFAIL, REFUSED, TIMEOUT on each name a check needs) shows that a failed look-up is a
//! DNS-LOOKUP-FAILED in the check's area and never the corresponding "missing" finding.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use hickory_proto::rr::RecordType;
use mailaudit_core::audit::{AuditOptions, DomainReport, audit_domain};
use mailaudit_core::checks::{CATALOGUE, Source};
use mailaudit_core::mx::Provider;
use mailaudit_core::{Area, CheckId, Severity};
use mailaudit_lab::{LabDns, Zone, client};
use mailaudit_net::{Resolver, ResolverConfig};

use crate::{lab, resolver_for};

/// The fixture zone.
const FIXTURES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/zones/check-fixtures.zone"
));

/// Domains of [`TABLE`] that the zone must not have at all (NXDOMAIN: DOMAIN-NOT-FOUND).
const ABSENT: &[&str] = &["domain-not-found-pos.test"];

/// Domains audited as parked (`--parked`) although they have an MX.
const PARKED: &[&str] = &["parked-list-pos.test", "parked-list-neg.test"];

use CheckId::*;

/// `(domain, id, whether the domain's report must have a finding with that id)`.
const TABLE: &[(&str, CheckId, bool)] = &[
    // DMARC
    ("dmarc-missing-pos.test", DmarcMissing, true),
    ("dmarc-missing-neg.test", DmarcMissing, false),
    ("mail.dmarc-org-pos.test", DmarcMissing, true),
    ("mail.dmarc-org-neg.test", DmarcMissing, false),
    ("dmarc-multiple-pos.test", DmarcMultiple, true),
    ("dmarc-multiple-neg.test", DmarcMultiple, false),
    ("dmarc-syntax-pos.test", DmarcSyntax, true),
    ("dmarc-syntax-v-pos.test", DmarcSyntax, true),
    ("dmarc-syntax-neg.test", DmarcSyntax, false),
    ("dmarc-none-pos.test", DmarcPolicyNone, true),
    ("dmarc-none-neg.test", DmarcPolicyNone, false),
    ("dmarc-quarantine-pos.test", DmarcPolicyQuarantine, true),
    ("dmarc-quarantine-neg.test", DmarcPolicyQuarantine, false),
    ("dmarc-pct-pos.test", DmarcPctPartial, true),
    ("dmarc-pct-neg.test", DmarcPctPartial, false),
    ("dmarc-testing-pos.test", DmarcTesting, true),
    ("dmarc-testing-neg.test", DmarcTesting, false),
    ("dmarc-sub-weak-pos.test", DmarcSubdomainWeak, true),
    ("dmarc-np-weak-pos.test", DmarcSubdomainWeak, true),
    ("dmarc-sub-weak-neg.test", DmarcSubdomainWeak, false),
    ("dmarc-no-rua-pos.test", DmarcNoRua, true),
    ("dmarc-no-rua-neg.test", DmarcNoRua, false),
    ("dmarc-rua-unauth-pos.test", DmarcRuaUnauthorized, true),
    ("dmarc-rua-unauth-neg.test", DmarcRuaUnauthorized, false),
    ("dmarc-rua-invalid-pos.test", DmarcRuaInvalid, true),
    ("dmarc-rua-invalid-neg.test", DmarcRuaInvalid, false),
    ("dmarc-deprecated-pos.test", DmarcDeprecatedTag, true),
    ("dmarc-pct-neg.test", DmarcDeprecatedTag, true),
    ("dmarc-deprecated-neg.test", DmarcDeprecatedTag, false),
    // SPF
    ("spf-missing-pos.test", SpfMissing, true),
    ("spf-missing-neg.test", SpfMissing, false),
    ("spf-multiple-pos.test", SpfMultiple, true),
    ("spf-multiple-neg.test", SpfMultiple, false),
    ("spf-syntax-pos.test", SpfSyntax, true),
    ("spf-syntax-inc-pos.test", SpfSyntax, true),
    ("spf-syntax-neg.test", SpfSyntax, false),
    ("spf-pass-all-pos.test", SpfPassAll, true),
    ("spf-pass-all-bare-pos.test", SpfPassAll, true),
    ("spf-pass-all-neg.test", SpfPassAll, false),
    ("spf-neutral-all-pos.test", SpfNeutralAll, true),
    ("spf-neutral-noall-pos.test", SpfNeutralAll, true),
    ("spf-neutral-all-neg.test", SpfNeutralAll, false),
    ("spf-neutral-redirect-neg.test", SpfNeutralAll, false),
    ("spf-softfail-pos.test", SpfSoftfail, true),
    ("spf-softfail-neg.test", SpfSoftfail, false),
    ("spf-lookup-limit-pos.test", SpfLookupLimit, true),
    ("spf-lookup-limit-neg.test", SpfLookupLimit, false),
    ("spf-lookup-limit-pos.test", SpfLookupNearLimit, false),
    ("spf-near-limit-pos.test", SpfLookupNearLimit, true),
    ("spf-near-limit-9-pos.test", SpfLookupNearLimit, true),
    ("spf-near-limit-neg.test", SpfLookupNearLimit, false),
    ("spf-void-pos.test", SpfVoidLimit, true),
    ("spf-void-neg.test", SpfVoidLimit, false),
    ("spf-include-broken-pos.test", SpfIncludeBroken, true),
    ("spf-include-nospf-pos.test", SpfIncludeBroken, true),
    ("spf-include-broken-neg.test", SpfIncludeBroken, false),
    ("spf-ptr-pos.test", SpfPtr, true),
    ("spf-ptr-neg.test", SpfPtr, false),
    ("spf-m365-pos.test", SpfM365IncludeMissing, true),
    ("spf-m365-neg.test", SpfM365IncludeMissing, false),
    ("spf-too-long-pos.test", SpfTooLong, true),
    ("spf-too-long-tcp-pos.test", SpfTooLong, true),
    ("spf-too-long-neg.test", SpfTooLong, false),
    // DKIM
    ("dkim-m365-missing-pos.test", DkimM365Missing, true),
    ("dkim-m365-missing-neg.test", DkimM365Missing, false),
    ("dkim-m365-partial-pos.test", DkimM365Partial, true),
    ("dkim-m365-partial-neg.test", DkimM365Partial, false),
    ("dkim-m365-mismatch-pos.test", DkimM365TargetMismatch, true),
    ("dkim-m365-tenants-pos.test", DkimM365TargetMismatch, true),
    ("dkim-m365-swapped-pos.test", DkimM365TargetMismatch, true),
    ("dkim-m365-copied-pos.test", DkimM365TargetMismatch, true),
    // A copied CNAME is what is wrong, not signing (the key behind it is another domain's).
    ("dkim-m365-copied-pos.test", DkimM365NotEnabled, false),
    ("dkim-m365-mismatch-neg.test", DkimM365TargetMismatch, false),
    ("dkim-m365-not-enabled-pos.test", DkimM365NotEnabled, true),
    ("dkim-m365-not-enabled-neg.test", DkimM365NotEnabled, false),
    ("dkim-key-weak-pos.test", DkimKeyWeak, true),
    ("dkim-key-weak-other-pos.test", DkimKeyWeak, true),
    ("dkim-key-weak-neg.test", DkimKeyWeak, false),
    ("dkim-not-found-pos.test", DkimNotFound, true),
    ("dkim-not-found-neg.test", DkimNotFound, false),
    // A Microsoft 365 domain is not searched at the common selectors.
    ("dkim-m365-missing-pos.test", DkimNotFound, false),
    // MX
    ("mx-missing-pos.test", MxMissing, true),
    ("mx-missing-neg.test", MxMissing, false),
    ("mx-null-pos.test", MxNull, true),
    ("mx-null-neg.test", MxNull, false),
    ("mx-unresolvable-pos.test", MxUnresolvable, true),
    ("mx-unresolvable-neg.test", MxUnresolvable, false),
    ("mx-unresolvable-v6-neg.test", MxUnresolvable, false),
    ("mx-gateway-pos.test", MxGateway, true),
    ("mx-gateway-neg.test", MxGateway, false),
    ("hardened.test", MxGateway, false),
    ("hardened.test", MxM365Legacy, true),
    ("mx-m365-legacy-pos.test", MxM365Legacy, true),
    ("mx-m365-legacy-neg.test", MxM365Legacy, false),
    ("mx-m365-legacy-gcc-neg.test", MxM365Legacy, false),
    // Parked domains
    ("mx-null-pos.test", ParkedNotLocked, true),
    ("parked-null-pos.test", ParkedNotLocked, true),
    ("parked-null-neg.test", ParkedNotLocked, false),
    ("parked-list-pos.test", ParkedNotLocked, true),
    ("parked-list-neg.test", ParkedNotLocked, false),
    ("mx-null-neg.test", ParkedNotLocked, false),
    // MTA-STS, TLS-RPT
    ("mta-sts-missing-pos.test", MtaStsMissing, true),
    ("mta-sts-missing-neg.test", MtaStsMissing, false),
    ("mta-sts-missing-nullmx-neg.test", MtaStsMissing, false),
    ("mta-sts-invalid-pos.test", MtaStsInvalid, true),
    ("mta-sts-invalid-two-pos.test", MtaStsInvalid, true),
    ("mta-sts-invalid-neg.test", MtaStsInvalid, false),
    ("tlsrpt-missing-pos.test", TlsrptMissing, true),
    ("tlsrpt-invalid-pos.test", TlsrptMissing, true),
    ("tlsrpt-missing-neg.test", TlsrptMissing, false),
    ("mta-sts-missing-nullmx-neg.test", TlsrptMissing, false),
    // DNS failures
    ("dns-failed-pos.test", DnsLookupFailed, true),
    ("dns-failed-refused-pos.test", DnsLookupFailed, true),
    ("dns-failed-neg.test", DnsLookupFailed, false),
    ("dns-failed-pos.test", DmarcMissing, false),
    ("dns-failed-refused-pos.test", TlsrptMissing, false),
    ("hardened.test", DnsLookupFailed, false),
    // The domain itself
    ("domain-not-found-pos.test", DomainNotFound, true),
    ("domain-not-found-pos.test", DmarcMissing, false),
    ("domain-not-found-pos.test", MxMissing, false),
    ("domain-not-found-neg.test", DomainNotFound, false),
    ("domain-not-found-neg.test", MxMissing, true),
    ("domain-not-found-ent-neg.test", DomainNotFound, false),
    ("domain-not-found-servfail-neg.test", DomainNotFound, false),
    ("domain-not-found-servfail-neg.test", DnsLookupFailed, true),
    ("hardened.test", DomainNotFound, false),
];

fn fixture_zone() -> Zone {
    Zone::parse(FIXTURES).expect("check-fixtures.zone parses")
}

fn audit_options() -> AuditOptions {
    AuditOptions {
        parked: PARKED.iter().map(|d| d.to_string()).collect(),
    }
}

/// Audits `domains` concurrently through `resolver`.
async fn audit_all(
    resolver: &Resolver,
    domains: impl IntoIterator<Item = String>,
    opts: &AuditOptions,
) -> BTreeMap<String, DomainReport> {
    let domains: Vec<String> = domains.into_iter().collect();
    let reports = join_all(domains.iter().map(|d| audit_domain(resolver, d, opts))).await;
    domains.into_iter().zip(reports).collect()
}

/// A lab server for `zone` and a resolver with a generous timeout: these zones have no
/// `TIMEOUT` names, so a timeout could only be a loaded test machine, not what is tested.
async fn patient_lab(zone: Zone) -> (LabDns, Resolver) {
    let server = LabDns::start(zone).await.expect("lab DNS server starts");
    let resolver = resolver_for(&server, PATIENT);
    (server, resolver)
}

/// The resolver timeout where no name is meant to time out.
const PATIENT: Duration = Duration::from_secs(5);

/// Serves the fixture zone and audits every domain of [`TABLE`] (plus `extra`).
async fn audit_fixtures(extra: &[&str]) -> (LabDns, BTreeMap<String, DomainReport>) {
    let (server, resolver) = patient_lab(fixture_zone()).await;
    let domains: HashSet<String> = TABLE
        .iter()
        .map(|(d, _, _)| *d)
        .chain(extra.iter().copied())
        .map(str::to_string)
        .collect();
    let reports = audit_all(&resolver, domains, &audit_options()).await;
    (server, reports)
}

fn ids(report: &DomainReport) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.id.as_str()).collect()
}

fn finding(report: &DomainReport, id: CheckId) -> &mailaudit_core::Finding {
    report
        .findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("{}: no {id} in {:?}", report.domain, ids(report)))
}

#[tokio::test]
async fn every_fixture_raises_exactly_what_its_row_says() {
    let (_server, reports) = audit_fixtures(&[]).await;
    let mismatches: Vec<String> = TABLE
        .iter()
        .filter_map(|&(domain, id, expected)| {
            let report = &reports[domain];
            (report.has(id) != expected).then(|| {
                format!(
                    "{domain}: expected {id} {}; findings: {:?}",
                    if expected { "present" } else { "absent" },
                    ids(report)
                )
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} rows do not hold:\n{}",
        mismatches.len(),
        TABLE.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_dns_check_has_a_positive_and_a_negative_fixture() {
    let dns_checks: Vec<CheckId> = CATALOGUE
        .iter()
        .filter(|c| c.source() == Source::Dns)
        .map(|c| c.id)
        .collect();
    assert!(dns_checks.len() >= 40, "{dns_checks:?}");
    let uncovered: Vec<String> = dns_checks
        .iter()
        .filter_map(|&id| {
            let pos = TABLE.iter().any(|&(_, i, e)| i == id && e);
            let neg = TABLE.iter().any(|&(_, i, e)| i == id && !e);
            let missing: Vec<&str> = [(pos, "positive"), (neg, "negative")]
                .into_iter()
                .filter(|(have, _)| !have)
                .map(|(_, what)| what)
                .collect();
            (!missing.is_empty()).then(|| format!("{id}: no {} fixture", missing.join(" nor ")))
        })
        .collect();
    assert!(uncovered.is_empty(), "{}", uncovered.join("\n"));

    // Every row names a domain of the zone (a typo would make a negative row pass vacuously),
    // but the ones that must not exist, which must have nothing.
    let zone = fixture_zone();
    let names: Vec<&str> = zone.iter().map(|(n, _)| n).collect();
    for (domain, _, _) in TABLE {
        let in_zone = names
            .iter()
            .any(|n| n == domain || n.ends_with(&format!(".{domain}")));
        if ABSENT.contains(domain) {
            assert!(!in_zone, "{domain} must not exist in check-fixtures.zone");
        } else {
            assert!(in_zone, "{domain} has no record in check-fixtures.zone");
        }
    }
}

#[tokio::test]
async fn spf_lookup_counts_and_details() {
    let (_server, r) = audit_fixtures(&["spf-count.test"]).await;

    // mx (1) + include:_spf.nested.test (1) + inside it include:_spf.small.test (1) + exists (1)
    let count = &r["spf-count.test"];
    assert_eq!(count.spf.lookups, 4, "{:#?}", count.spf.tree);
    assert_eq!(count.spf.void_lookups, 0);
    let tree = count.spf.tree.as_ref().expect("tree");
    assert_eq!((tree.lookups, tree.total_lookups), (2, 4));
    let nested = &tree.children[0];
    assert_eq!(nested.domain, "_spf.nested.test");
    assert_eq!((nested.lookups, nested.total_lookups), (2, 2));
    assert_eq!(nested.children[0].domain, "_spf.small.test");
    assert!(!count.has(SpfLookupNearLimit) && !count.has(SpfLookupLimit));

    for (domain, lookups) in [
        ("spf-lookup-limit-pos.test", 11),
        ("spf-lookup-limit-neg.test", 10),
        ("spf-near-limit-pos.test", 10),
        ("spf-near-limit-9-pos.test", 9),
        ("spf-near-limit-neg.test", 8),
        ("spf-include-broken-neg.test", 1),
        ("spf-m365-neg.test", 1),
    ] {
        assert_eq!(r[domain].spf.lookups, lookups, "{domain}");
    }

    // The detail names the number and the costly include with its cost.
    let limit = finding(&r["spf-lookup-limit-pos.test"], SpfLookupLimit);
    assert!(limit.detail.contains("11"), "{}", limit.detail);
    assert!(
        limit.detail.contains("include:_spf.costly.test (10)"),
        "{}",
        limit.detail
    );
    assert!(
        limit.detail.contains("include:_spf.small.test (1)"),
        "{}",
        limit.detail
    );
    assert_eq!(
        limit.evidence.as_deref(),
        Some("v=spf1 include:_spf.costly.test include:_spf.small.test -all")
    );

    assert_eq!(r["spf-void-pos.test"].spf.void_lookups, 3);
    assert_eq!(r["spf-void-neg.test"].spf.void_lookups, 2);
    let void = finding(&r["spf-void-pos.test"], SpfVoidLimit);
    assert!(
        void.detail.contains("void3.spf-void-pos.test"),
        "{}",
        void.detail
    );

    let broken = finding(&r["spf-include-broken-pos.test"], SpfIncludeBroken);
    assert!(
        broken.detail.contains("_spf.nowhere.test"),
        "{}",
        broken.detail
    );

    let m365 = finding(&r["spf-m365-pos.test"], SpfM365IncludeMissing);
    assert_eq!(
        m365.fix,
        "v=spf1 ip4:198.51.100.1 include:spf.protection.outlook.com -all"
    );
    assert!(r["spf-m365-neg.test"].spf.authorizes_m365);

    assert_eq!(r["spf-softfail-pos.test"].spf.all.as_deref(), Some("~all"));
    assert_eq!(
        r["spf-pass-all-bare-pos.test"].spf.all.as_deref(),
        Some("+all")
    );
    assert_eq!(
        r["spf-neutral-redirect-neg.test"].spf.all.as_deref(),
        Some("-all")
    );
}

/// A TXT record over 512 octets, and one over 4096 that the server can only send over TCP.
#[tokio::test]
async fn long_spf_records_are_read_whole_over_tcp() {
    let (server, r) = audit_fixtures(&[]).await;
    for (domain, octets, too_long) in [
        ("spf-too-long-pos.test", 513, true),
        ("spf-too-long-neg.test", 512, false),
        ("spf-too-long-tcp-pos.test", 5000, true),
    ] {
        let report = &r[domain];
        let record = report.spf.record.as_deref().unwrap_or_default();
        assert_eq!(record.len(), octets, "{domain}");
        assert!(record.starts_with("v=spf1 ") && record.ends_with(" -all"));
        assert_eq!(report.has(SpfTooLong), too_long, "{domain}");
        if too_long {
            let f = finding(report, SpfTooLong);
            assert!(
                f.detail.contains(&format!("{octets} octets")),
                "{}",
                f.detail
            );
        }
    }
    // The 5000-octet answer does not fit in UDP even at the largest payload the server allows:
    // it comes back truncated (TC), so the record above was read over TCP.
    let query = client::build_query(7, "spf-too-long-tcp-pos.test", RecordType::TXT, Some(4096))
        .expect("query");
    let reply = client::udp_exchange(server.addr(), &query, Duration::from_secs(2))
        .await
        .expect("UDP reply");
    assert!(reply.metadata.truncation, "TC set on the UDP answer");
}

#[tokio::test]
async fn policy_provider_and_score() {
    let extra = ["hardened.test", "provider-google.test"];
    let (_server, r) = audit_fixtures(&extra).await;

    for (domain, policy) in [
        ("dmarc-none-pos.test", Some("none")),
        ("dmarc-quarantine-pos.test", Some("quarantine")),
        ("dmarc-none-neg.test", Some("reject")),
        ("dmarc-missing-pos.test", None),
        ("dns-failed-pos.test", None),
    ] {
        assert_eq!(r[domain].dmarc.policy.as_deref(), policy, "{domain}");
    }
    let inherited = &r["mail.dmarc-org-neg.test"].dmarc;
    assert!(inherited.inherited, "{inherited:?}");
    assert_eq!(inherited.policy.as_deref(), Some("reject"));
    assert_eq!(
        inherited.found_at.as_deref(),
        Some("_dmarc.dmarc-org-neg.test")
    );
    assert!(r["dns-failed-pos.test"].dmarc.lookup_failed);

    for (domain, provider, gateway) in [
        ("hardened.test", Provider::M365, None),
        ("spf-m365-pos.test", Provider::M365, None),
        ("mx-gateway-pos.test", Provider::M365, Some("Mimecast")),
        ("mx-gateway-neg.test", Provider::Other, Some("Mimecast")),
        ("provider-google.test", Provider::Google, None),
        ("dkim-not-found-pos.test", Provider::Other, None),
        ("mx-missing-pos.test", Provider::None, None),
    ] {
        let report = &r[domain];
        assert_eq!(report.provider, provider, "{domain}");
        assert_eq!(report.gateway.as_deref(), gateway, "{domain}");
    }
    assert_eq!(
        r["mx-gateway-pos.test"].m365_endpoint, None,
        "the gateway's MX names no Microsoft endpoint"
    );
    assert_eq!(
        r["hardened.test"].m365_endpoint.as_deref(),
        Some("fixtures-test.mail.protection.outlook.com")
    );
    assert!(r["mx-null-pos.test"].parked && r["parked-list-pos.test"].parked);
    assert!(!r["mx-missing-neg.test"].parked);

    // Fully hardened: 100, nothing above info.
    let hardened = &r["hardened.test"];
    assert_eq!(hardened.score, Some(100), "{:?}", ids(hardened));
    assert!(
        hardened.worst().is_none_or(|s| s <= Severity::Info),
        "{:?}",
        ids(hardened)
    );
    assert_eq!(hardened.dkim.tenant.as_deref(), Some("fixtures"));

    // Every score is 100 minus the findings' penalties, or none when a look-up failed (a
    // verdict was withheld); findings come most severe first.
    for (domain, report) in &r {
        let lost: u32 = report
            .findings
            .iter()
            .map(|f| mailaudit_core::score::penalty(f.severity))
            .sum();
        let expected = (!report.has(DnsLookupFailed) && !report.has(DomainNotFound))
            .then(|| 100u32.saturating_sub(lost) as u8);
        assert_eq!(report.score, expected, "{domain}: {:?}", ids(report));
        assert!(
            report
                .findings
                .windows(2)
                .all(|w| w[0].severity >= w[1].severity),
            "{domain}: {:?}",
            ids(report)
        );
    }
    // A critical finding costs 30.
    assert!(r["dmarc-missing-pos.test"].score.is_some_and(|s| s <= 70));
    assert!(r["spf-pass-all-pos.test"].score.is_some_and(|s| s <= 70));
}

/// Where a look-up is made to fail, the area its DNS-LOOKUP-FAILED must carry, and the finding
/// that a failure must never turn into.
#[derive(Clone, Copy, Debug)]
enum Place {
    Dmarc,
    ApexTxt,
    Mx,
    Dkim,
    SpfInclude,
}

impl Place {
    const ALL: [Place; 5] = [
        Place::Dmarc,
        Place::ApexTxt,
        Place::Mx,
        Place::Dkim,
        Place::SpfInclude,
    ];

    fn area(self) -> Area {
        match self {
            Place::Dmarc => Area::Dmarc,
            Place::ApexTxt | Place::SpfInclude => Area::Spf,
            Place::Mx => Area::Transport,
            Place::Dkim => Area::Dkim,
        }
    }

    fn never(self) -> CheckId {
        match self {
            Place::Dmarc => DmarcMissing,
            Place::ApexTxt => SpfMissing,
            Place::Mx => MxMissing,
            Place::Dkim => DkimM365Missing,
            Place::SpfInclude => SpfIncludeBroken,
        }
    }

    /// The failing name, as the finding's detail quotes it.
    fn name(self, d: &str) -> String {
        match self {
            Place::Dmarc => format!("TXT _dmarc.{d}"),
            Place::ApexTxt => format!("TXT {d}"),
            Place::Mx => format!("MX {d}"),
            Place::Dkim => format!("CNAME selector1._domainkey.{d}"),
            Place::SpfInclude => format!("TXT _spf.{d}"),
        }
    }
}

/// A fully hardened domain (as `hardened.test`) whose look-up at `place` fails with `kind`
/// (`SERVFAIL`, `REFUSED` or `TIMEOUT`). At the apex, the other types keep answering.
fn failing_domain(d: &str, place: Place, kind: &str) -> String {
    let mut lines = [
        format!("{d} MX 0 fixtures-test.mail.protection.outlook.com"),
        format!("{d} TXT \"v=spf1 include:spf.protection.outlook.com include:_spf.{d} -all\""),
        format!("_spf.{d} TXT \"v=spf1 ip4:203.0.113.0/24 -all\""),
        format!("_dmarc.{d} TXT \"v=DMARC1; p=reject; sp=reject; rua=mailto:dmarc@{d}\""),
        format!(
            "selector1._domainkey.{d} CNAME selector1-fixtures-test._domainkey.fixtures.onmicrosoft.com"
        ),
        format!(
            "selector2._domainkey.{d} CNAME selector2-fixtures-test._domainkey.fixtures.onmicrosoft.com"
        ),
        format!("_mta-sts.{d} TXT \"v=STSv1; id=20250101\""),
        format!("_smtp._tls.{d} TXT \"v=TLSRPTv1; rua=mailto:tls@{d}\""),
    ];
    let (drop, owner) = match place {
        Place::Dmarc => (3, format!("_dmarc.{d}")),
        Place::ApexTxt => (1, d.to_string()),
        Place::Mx => (0, d.to_string()),
        Place::Dkim => (4, format!("selector1._domainkey.{d}")),
        Place::SpfInclude => (2, format!("_spf.{d}")),
    };
    lines[drop] = format!("{owner} {kind}");
    lines.join("\n")
}

#[tokio::test]
async fn dns_failures_withhold_verdicts_and_are_never_missing_records() {
    let mut zone = fixture_zone();
    let mut cases = Vec::new();
    for kind in ["SERVFAIL", "REFUSED", "TIMEOUT"] {
        for place in Place::ALL {
            let d = format!("fail-{}-{place:?}.test", kind.to_ascii_lowercase()).to_lowercase();
            zone.merge(Zone::parse(&failing_domain(&d, place, kind)).expect("zone"));
            cases.push((d, place, kind));
        }
    }
    let server = LabDns::start(zone).await.expect("lab starts");
    // TIMEOUT cases get a short timeout (300 ms); a second attempt keeps a loaded machine's slow
    // answer from passing for a dead name. The other cases need no short timeout at all.
    let short = Resolver::new(&ResolverConfig {
        nameservers: vec![server.addr()],
        timeout: Duration::from_millis(300),
        attempts: 2,
        dnssec: mailaudit_net::Dnssec::Off,
        ..ResolverConfig::default()
    })
    .expect("resolver builds");
    let patient = resolver_for(&server, PATIENT);
    let opts = AuditOptions::default();
    // The domains are audited concurrently (`audit_all`), so the timeouts overlap; what is
    // checked below is what each audit makes of them, not how long the test took.
    let (timeouts, answers): (Vec<_>, Vec<_>) = cases.iter().partition(|c| c.2 == "TIMEOUT");
    let (mut reports, others) = futures::join!(
        audit_all(&short, timeouts.iter().map(|c| c.0.clone()), &opts),
        audit_all(&patient, answers.iter().map(|c| c.0.clone()), &opts),
    );
    reports.extend(others);

    let mut problems = Vec::new();
    for (d, place, kind) in &cases {
        let report = &reports[d];
        let failed: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.id == DnsLookupFailed)
            .collect();
        let want = place.name(d);
        let hit = failed
            .iter()
            .find(|f| f.area == place.area() && f.detail.starts_with(&want));
        match hit {
            None => problems.push(format!(
                "{d} ({kind} at {place:?}): no DNS-LOOKUP-FAILED in area {} for {want:?}; got {:?}",
                place.area(),
                failed
                    .iter()
                    .map(|f| format!("{}: {}", f.area, f.detail))
                    .collect::<Vec<_>>()
            )),
            Some(f) => {
                assert_eq!(f.severity, Severity::Info);
                let word = match *kind {
                    "TIMEOUT" => "time",
                    "SERVFAIL" => "SERVFAIL",
                    _ => "REFUSED",
                };
                if !f
                    .detail
                    .to_ascii_lowercase()
                    .contains(&word.to_ascii_lowercase())
                {
                    problems.push(format!("{d}: detail does not say {word}: {}", f.detail));
                }
            }
        }
        if report.has(place.never()) {
            problems.push(format!(
                "{d} ({kind} at {place:?}): reported {} for a failed look-up",
                place.never()
            ));
        }
        // The rest of the domain's verdicts are still given.
        let others_missing = [DmarcMissing, SpfMissing, MxMissing, DkimM365Missing]
            .into_iter()
            .filter(|id| report.has(*id))
            .collect::<Vec<_>>();
        if !others_missing.is_empty() {
            problems.push(format!("{d}: {others_missing:?} on a hardened domain"));
        }
        match place {
            Place::Dmarc => {
                assert!(
                    report.dmarc.lookup_failed && report.dmarc.policy.is_none(),
                    "{d}"
                );
                assert!(
                    !report.has(DmarcNoRua) && !report.has(DmarcPolicyNone),
                    "{d}"
                );
            }
            Place::ApexTxt => assert_eq!(report.spf.record, None, "{d}"),
            Place::Mx => {
                assert!(report.mx.is_empty() && !report.parked, "{d}");
                assert_eq!(report.provider, Provider::Unknown, "{d}");
            }
            Place::Dkim => assert!(!report.has(DkimM365Partial), "{d}: {:?}", ids(report)),
            Place::SpfInclude => {
                assert_eq!(report.spf.all.as_deref(), Some("-all"), "{d}");
                assert!(!report.has(SpfVoidLimit), "{d}");
            }
        }
        // A withheld verdict gives no score at all.
        assert_eq!(report.score, None, "{d}");
        // And it raises nothing else on a hardened domain.
        if report.worst().is_some_and(|s| s > Severity::Info) {
            problems.push(format!(
                "{d} ({kind} at {place:?}): findings above info on a hardened domain: {:?}",
                ids(report)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// Verdicts withheld when a look-up they depend on failed.

const WITHHELD_KEY: &str = "\"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtPoV5jU6sf6pbOl47LVkA2/rKFW4aSbfjC98kRa6EJjo15LQO0v0gLodA32FdpQ+abrZHnUA2f9vBiwOKVLfyfz2MVPKUX2QRDK+fvsueOQ0yyYNGJ6Az7UCgfkSwFZcVUwz4sGskAJx1W7l/b1xeHWZe2Gl56Apx8iYKC+fWLp9Lc47QC8yFih5+EluvXWpL\" \"l76zVI7yuZy5h953LXRc//6eZ+7atWpvnyin1o4SDMC10i2RmkkT3ZiRmLhuAa4noYEsDDYEsq5q/6ozVRzXJDZcXvHGLzVDem41qhgmAx+9fOhrN7q68Eok3RiweAb+Azw2iAQwnRHLKgJpmIKtwIDAQAB\"";

/// A selector whose CNAME could not be read may hold the key: DKIM-M365-NOT-ENABLED is withheld.
#[tokio::test]
async fn dkim_not_enabled_is_withheld_when_a_selector_lookup_fails() {
    let zone = Zone::parse(&format!(
        r#"
m.test MX 0 fixtures-test.mail.protection.outlook.com
fixtures-test.mail.protection.outlook.com A 127.0.2.10
selector1._domainkey.m.test SERVFAIL
selector2._domainkey.m.test CNAME selector2-fixtures-test._domainkey.fixtures.onmicrosoft.com
selector1-fixtures-test._domainkey.fixtures.onmicrosoft.com TXT {WITHHELD_KEY}
"#
    ))
    .unwrap();
    let (_s, r) = lab(zone).await;
    let rep = audit_domain(&r, "m.test", &AuditOptions::default()).await;
    assert!(rep.has(DnsLookupFailed));
    assert!(!rep.has(DkimM365NotEnabled), "{:?}", ids(&rep));
}

/// A parked domain whose SPF or DMARC could not be read is not reported as unlocked for it.
#[tokio::test]
async fn parked_not_locked_is_withheld_when_a_lookup_fails() {
    let zone = Zone::parse(
        r#"
p1.test MX 0 .
p1.test TXT "v=spf1 -all"
_dmarc.p1.test SERVFAIL
p2.test MX 0 .
p2.test SERVFAIL
_dmarc.p2.test TXT "v=DMARC1; p=reject"
"#,
    )
    .unwrap();
    let (_s, r) = lab(zone).await;
    for d in ["p1.test", "p2.test"] {
        let rep = audit_domain(&r, d, &AuditOptions::default()).await;
        assert!(rep.has(DnsLookupFailed));
        assert!(!rep.has(ParkedNotLocked), "{d}: {:?}", rep.findings);
    }
}

/// An include or redirect target that could not be read may authorise Microsoft 365.
#[tokio::test]
async fn m365_include_missing_is_withheld_when_an_include_fails() {
    let zone = Zone::parse(
        r#"
fixtures-test.mail.protection.outlook.com A 127.0.2.10
i.test MX 0 fixtures-test.mail.protection.outlook.com
i.test TXT "v=spf1 include:_spf.i.test -all"
_spf.i.test SERVFAIL
r.test MX 0 fixtures-test.mail.protection.outlook.com
r.test TXT "v=spf1 redirect=_spf.r.test"
_spf.r.test TIMEOUT
"#,
    )
    .unwrap();
    let (_s, r) = lab(zone).await;
    for d in ["i.test", "r.test"] {
        let rep = audit_domain(&r, d, &AuditOptions::default()).await;
        assert!(rep.has(DnsLookupFailed));
        assert!(!rep.has(SpfM365IncludeMissing), "{d}: {:?}", ids(&rep));
    }
}
