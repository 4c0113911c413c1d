//! DNSSEC and DANE end to end: the validating resolver against the lab's DNSSEC-signing server
//! (`mailaudit_lab::SignedDns`, its own signed root as the only trust anchor), the audit's
//! DNSSEC-* and DANE-* verdicts, and the TLSA records matched against the chain a lab SMTP
//! endpoint presents in STARTTLS.

use std::net::IpAddr;
use std::time::Duration;

use mailaudit_core::audit::{AuditOptions, DomainReport, audit_domain};
use mailaudit_core::dane::{ChainCert, MxDane};
use mailaudit_core::dns::{DnsSource, Security};
use mailaudit_core::smtp::ProbeConfig;
use mailaudit_lab::smtp::{Behaviour, LabSmtp, SmtpEndpoint};
use mailaudit_lab::{DnssecMode as Mode, SignedDns, SignedZone};
use mailaudit_net::live::{LiveOptions, RelayOptions, enrich};
use mailaudit_net::smtp::{Politeness, SmtpOptions, TlsRoots, probe_with_chain};
use mailaudit_net::{Dnssec, Resolver, ResolverConfig};
use sha2::{Digest, Sha256};

/// A usable "3 1 1" record's data that matches nothing (the DNS-only tests probe nothing).
const SOME_DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The check IDs of this area.
const AREA: [&str; 6] = [
    "DNSSEC-UNSIGNED",
    "DNSSEC-BOGUS",
    "DNSSEC-MX-UNSIGNED",
    "DANE-TLSA-MISSING",
    "DANE-TLSA-UNUSABLE",
    "DANE-TLSA-MISMATCH",
];

fn resolver(dns: &SignedDns, dnssec: Dnssec) -> Resolver {
    Resolver::new(&ResolverConfig {
        nameservers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
        dnssec,
        ..ResolverConfig::default()
    })
    .expect("resolver builds")
}

fn validating(dns: &SignedDns) -> Resolver {
    resolver(dns, Dnssec::TrustAnchorText(dns.trust_anchor().to_string()))
}

async fn audit(resolver: &Resolver, domain: &str) -> DomainReport {
    audit_domain(resolver, domain, &AuditOptions::default()).await
}

/// The DNSSEC/DANE check IDs of a report, sorted.
fn area_ids(report: &DomainReport) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = report
        .findings
        .iter()
        .map(|f| f.id.as_str())
        .filter(|id| AREA.contains(id))
        .collect();
    ids.sort_unstable();
    ids
}

fn all_ids(report: &DomainReport) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.id.as_str()).collect()
}

/// A zone at `origin` with an MX host inside it, an address, SPF and DMARC, and `extra`.
fn mail_zone(origin: &str, extra: &str, mode: Mode) -> SignedZone {
    SignedZone::new(
        origin,
        format!(
            "{origin} MX 10 mx.{origin}\n\
             {origin} TXT \"v=spf1 mx -all\"\n\
             _dmarc.{origin} TXT \"v=DMARC1; p=reject\"\n\
             mx.{origin} A 127.0.0.1\n\
             {extra}"
        ),
        mode,
    )
}

#[tokio::test]
async fn the_resolver_tells_secure_insecure_and_bogus_zones() {
    let dns = SignedDns::start(&[
        mail_zone("sec.test", "", Mode::Signed),
        mail_zone("plain.test", "", Mode::Unsigned),
        mail_zone("old.test", "", Mode::ExpiredSignatures),
        mail_zone("dsm.test", "", Mode::DsMismatch),
    ])
    .await
    .expect("signed lab starts");
    let r = validating(&dns);
    for (name, want) in [
        ("sec.test", Security::Secure),
        // A host name inside the zone: answered by the NODATA proof.
        ("mx.sec.test", Security::Secure),
        ("plain.test", Security::Insecure),
        ("mx.plain.test", Security::Insecure),
        ("old.test", Security::Bogus),
        ("mx.old.test", Security::Bogus),
        ("dsm.test", Security::Bogus),
    ] {
        assert_eq!(r.security(name).await, Ok(Some(want)), "{name}");
    }
    // The records of a bogus zone are still read (by the non-validating resolver).
    let mx = r.mx("old.test").await.expect("MX of a bogus zone is read");
    assert_eq!(mx.len(), 1);
    // Each security question is counted once, then answered from the cache.
    let before = r.stats().queries_sent;
    assert_eq!(r.security("sec.test").await, Ok(Some(Security::Secure)));
    assert_eq!(r.stats().queries_sent, before);
}

#[tokio::test]
async fn tlsa_records_are_read_as_lower_case_hex() {
    let dns = SignedDns::start(&[mail_zone(
        "sec.test",
        "_25._tcp.mx.sec.test TLSA 3 1 1 ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        Mode::Signed,
    )])
    .await
    .expect("signed lab starts");
    let r = validating(&dns);
    let tlsa = r.tlsa("_25._tcp.mx.sec.test").await.expect("TLSA answered");
    assert_eq!(tlsa.len(), 1);
    let t = &tlsa[0];
    assert_eq!(
        (t.cert_usage, t.selector, t.matching_type),
        (3, 1, 1),
        "{t:?}"
    );
    assert_eq!(
        t.cert_association_data,
        "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
    );
    assert_eq!(r.tlsa("_25._tcp.nothing.sec.test").await, Ok(Vec::new()));
}

#[tokio::test]
async fn signed_domain_with_usable_tlsa_has_no_dnssec_or_dane_finding() {
    let dns = SignedDns::start(&[mail_zone(
        "sec.test",
        &format!("_25._tcp.mx.sec.test TLSA 3 1 1 {SOME_DIGEST}"),
        Mode::Signed,
    )])
    .await
    .expect("signed lab starts");
    let report = audit(&validating(&dns), "sec.test").await;
    assert_eq!(
        area_ids(&report),
        Vec::<&str>::new(),
        "{:?}",
        report.findings
    );
    let section = report.dnssec.as_ref().expect("a dnssec section");
    assert_eq!(section.domain, Some(Security::Secure));
    assert_eq!(section.mx.len(), 1);
    assert_eq!(section.mx[0].security, Some(Security::Secure));
    assert!(section.mx[0].usable);
    assert_eq!(section.mx[0].chain_matches, None, "nothing was probed");
}

#[tokio::test]
async fn unsigned_domain_is_dnssec_unsigned() {
    let dns = SignedDns::start(&[mail_zone("plain.test", "", Mode::Unsigned)])
        .await
        .expect("signed lab starts");
    let report = audit(&validating(&dns), "plain.test").await;
    let ids = area_ids(&report);
    assert!(ids.contains(&"DNSSEC-UNSIGNED"), "{ids:?}");
    assert!(!ids.contains(&"DNSSEC-BOGUS"), "{ids:?}");
    // DANE applies only to MX hosts in signed zones.
    assert!(!ids.contains(&"DANE-TLSA-MISSING"), "{ids:?}");
    assert_eq!(
        report.dnssec.as_ref().and_then(|d| d.domain),
        Some(Security::Insecure)
    );
}

#[tokio::test]
async fn expired_signatures_and_ds_mismatch_are_bogus_never_missing() {
    let dns = SignedDns::start(&[
        mail_zone("old.test", "", Mode::ExpiredSignatures),
        mail_zone("dsm.test", "", Mode::DsMismatch),
    ])
    .await
    .expect("signed lab starts");
    let r = validating(&dns);
    for domain in ["old.test", "dsm.test"] {
        let report = audit(&r, domain).await;
        let ids = all_ids(&report);
        assert!(ids.contains(&"DNSSEC-BOGUS"), "{domain}: {ids:?}");
        assert!(!ids.contains(&"DNSSEC-UNSIGNED"), "{domain}: {ids:?}");
        for missing in [
            "SPF-MISSING",
            "DMARC-MISSING",
            "MX-MISSING",
            "DANE-TLSA-MISSING",
        ] {
            assert!(!ids.contains(&missing), "{domain}: {ids:?}");
        }
        assert_eq!(
            report.dnssec.as_ref().and_then(|d| d.domain),
            Some(Security::Bogus),
            "{domain}"
        );
    }
}

#[tokio::test]
async fn mx_in_an_unsigned_zone_is_dnssec_mx_unsigned() {
    let dns = SignedDns::start(&[
        SignedZone::new(
            "sec.test",
            "sec.test MX 10 mx.plain.test\n\
             sec.test TXT \"v=spf1 -all\"",
            Mode::Signed,
        ),
        SignedZone::new("plain.test", "mx.plain.test A 127.0.0.1", Mode::Unsigned),
    ])
    .await
    .expect("signed lab starts");
    let report = audit(&validating(&dns), "sec.test").await;
    let ids = area_ids(&report);
    assert_eq!(ids, vec!["DNSSEC-MX-UNSIGNED"], "{:?}", report.findings);
}

#[tokio::test]
async fn signed_mx_without_tlsa_is_dane_tlsa_missing() {
    let dns = SignedDns::start(&[mail_zone("sec.test", "", Mode::Signed)])
        .await
        .expect("signed lab starts");
    let report = audit(&validating(&dns), "sec.test").await;
    assert_eq!(area_ids(&report), vec!["DANE-TLSA-MISSING"]);
}

#[tokio::test]
async fn pkix_ee_tlsa_only_is_dane_tlsa_unusable() {
    let dns = SignedDns::start(&[mail_zone(
        "sec.test",
        &format!("_25._tcp.mx.sec.test TLSA 1 1 1 {SOME_DIGEST}"),
        Mode::Signed,
    )])
    .await
    .expect("signed lab starts");
    let report = audit(&validating(&dns), "sec.test").await;
    assert_eq!(area_ids(&report), vec!["DANE-TLSA-UNUSABLE"]);
    let section = report.dnssec.as_ref().expect("a dnssec section");
    assert!(!section.mx[0].usable);
}

#[tokio::test]
async fn no_dnssec_gives_no_section_and_no_verdict() {
    let dns = SignedDns::start(&[
        mail_zone("old.test", "", Mode::ExpiredSignatures),
        mail_zone("plain.test", "", Mode::Unsigned),
        mail_zone("sec.test", "", Mode::Signed),
    ])
    .await
    .expect("signed lab starts");
    let off = resolver(&dns, Dnssec::Off);
    assert_eq!(off.security("old.test").await, Ok(None));
    for domain in ["old.test", "plain.test", "sec.test"] {
        let report = audit(&off, domain).await;
        assert_eq!(area_ids(&report), Vec::<&str>::new(), "{domain}");
        assert!(report.dnssec.is_none(), "{domain}");
        // The records themselves are read as usual.
        assert!(!report.mx.is_empty(), "{domain}");
    }
}

#[tokio::test]
async fn a_trust_anchor_file_is_read_and_a_bad_one_refused() {
    let dns = SignedDns::start(&[mail_zone("sec.test", "", Mode::Signed)])
        .await
        .expect("signed lab starts");
    let dir = std::env::temp_dir().join(format!("mailaudit-net-dnssec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dns.write_trust_anchor(&dir).expect("trust anchor written");
    let r = resolver(&dns, Dnssec::TrustAnchorFile(path));
    assert_eq!(r.security("sec.test").await, Ok(Some(Security::Secure)));
    // Against the IANA root, the lab's own root is not trusted: nothing validates as secure.
    let iana = resolver(&dns, Dnssec::IanaRoot);
    assert_ne!(iana.security("sec.test").await, Ok(Some(Security::Secure)));
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "# no key\n").unwrap();
    let err = Resolver::new(&ResolverConfig {
        dnssec: Dnssec::TrustAnchorFile(empty),
        ..ResolverConfig::default()
    })
    .expect_err("an anchor file without a key is refused");
    assert!(err.to_string().contains("trust anchor"), "{err}");
    let missing = Resolver::new(&ResolverConfig {
        dnssec: Dnssec::TrustAnchorFile(dir.join("nope.txt")),
        ..ResolverConfig::default()
    })
    .expect_err("a missing anchor file is refused");
    assert!(missing.to_string().contains("nope.txt"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The MX host of the STARTTLS tests and its lab address.
const DANE_MX: &str = "mx.dane.test";
const DANE_IP: &str = "127.0.151.1";

fn relay_options(smtp: &LabSmtp) -> RelayOptions {
    RelayOptions {
        smtp: SmtpOptions {
            port: smtp.port(),
            connect_timeout: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(5),
            session_timeout: Duration::from_secs(20),
            roots: TlsRoots::with_ca_pem(smtp.ca_pem().as_bytes()).expect("lab CA"),
            ..SmtpOptions::default()
        },
        helo: "probe.mailaudit.test".into(),
        from: None,
        to: None,
        send_test_message: false,
        operator: "tests@mailaudit.test".into(),
        politeness: Politeness::new(4, 1, Duration::ZERO),
        mx: None,
        m365_endpoint: None,
        tls_hosts: 3,
        per_domain: Default::default(),
    }
}

/// The chain the lab endpoint presents, fetched by a STARTTLS probe of its own.
async fn presented_chain(smtp: &LabSmtp) -> Vec<ChainCert> {
    let opts = relay_options(smtp);
    let ip: IpAddr = DANE_IP.parse().unwrap();
    let cfg = ProbeConfig {
        helo: opts.helo.clone(),
        mail_from: "postmaster@dane.test".into(),
        rcpt_to: "postmaster@dane.test".into(),
        send_test_message: false,
        operator: opts.operator.clone(),
        relay: false,
    };
    let (report, chain) =
        probe_with_chain((ip, smtp.port()).into(), DANE_MX, &cfg, &opts.smtp).await;
    assert!(report.tls.is_some(), "STARTTLS worked: {report:?}");
    assert!(!chain.is_empty());
    chain
}

/// "3 1 1" data of a certificate: SHA-256 of its SubjectPublicKeyInfo, read here from the DER
/// with x509-parser.
fn dane_ee_sha256(cert_der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).expect("certificate parses");
    Sha256::digest(cert.tbs_certificate.subject_pki.raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Audits `dane.test` with `tlsa` (each "usage selector type data") as its MX's TLSA records,
/// with the relay test's STARTTLS probe against the lab endpoint.
async fn dane_audit(smtp: &LabSmtp, tlsa: &[String]) -> DomainReport {
    let records: String = tlsa
        .iter()
        .map(|t| format!("\n_25._tcp.{DANE_MX} TLSA {t}"))
        .collect();
    let dns = SignedDns::start(&[SignedZone::new(
        "dane.test",
        format!(
            "dane.test MX 10 {DANE_MX}\n\
             dane.test TXT \"v=spf1 mx -all\"\n\
             {DANE_MX} A {DANE_IP}{records}"
        ),
        Mode::Signed,
    )])
    .await
    .expect("signed lab starts");
    let r = validating(&dns);
    let mut report = audit(&r, "dane.test").await;
    let live = LiveOptions {
        relay: Some(relay_options(smtp)),
        https: None,
    };
    enrich(&r, &mut report, &live).await;
    report
}

async fn dane_smtp() -> LabSmtp {
    LabSmtp::start(vec![SmtpEndpoint {
        host: DANE_MX.into(),
        addrs: vec![DANE_IP.parse().unwrap()],
        domains: vec!["dane.test".into()],
        behaviour: Behaviour::Blocked,
    }])
    .await
    .expect("lab SMTP starts")
}

/// Asserts the report's findings (of the DNSSEC and DANE area) are `ids` and whether its MX's
/// TLSA records matched the presented chain; returns that MX's section.
fn assert_dane<'r>(report: &'r DomainReport, ids: &[&str], matches: bool) -> &'r MxDane {
    assert_eq!(area_ids(report), ids, "{:?}", report.findings);
    let section = report.dnssec.as_ref().expect("a dnssec section");
    assert_eq!(
        section.mx[0].chain_matches,
        Some(matches),
        "{:?}",
        section.mx[0]
    );
    &section.mx[0]
}

#[tokio::test]
async fn tlsa_matching_the_starttls_chain_is_no_finding() {
    let smtp = dane_smtp().await;
    let chain = presented_chain(&smtp).await;
    let report = dane_audit(
        &smtp,
        &[format!("3 1 1 {}", dane_ee_sha256(&chain[0].cert_der))],
    )
    .await;
    assert!(
        report.relay.probes.iter().any(|p| p.tls.is_some()),
        "{:?}",
        report.relay
    );
    assert_dane(&report, &[], true);
}

#[tokio::test]
async fn tlsa_matching_no_certificate_is_dane_tlsa_mismatch() {
    let smtp = dane_smtp().await;
    let chain = presented_chain(&smtp).await;
    let right = dane_ee_sha256(&chain[0].cert_der);
    // The same digest with its first octet changed.
    let flipped = if right.starts_with("00") { "ff" } else { "00" };
    let wrong = format!("{flipped}{}", &right[2..]);
    let report = dane_audit(&smtp, &[format!("3 1 1 {wrong}")]).await;
    assert_dane(&report, &["DANE-TLSA-MISMATCH"], false);
}

/// The lab endpoint presents its CA after the leaf, so a DANE-TA record has an anchor to match.
#[tokio::test]
async fn dane_ta_record_of_the_issuing_ca_matches() {
    let smtp = dane_smtp().await;
    let chain = presented_chain(&smtp).await;
    assert_eq!(chain.len(), 2, "leaf and CA");
    let report = dane_audit(
        &smtp,
        &[format!("2 1 1 {}", dane_ee_sha256(&chain[1].cert_der))],
    )
    .await;
    assert_dane(&report, &[], true);
}

/// RFC 7671 §5.2.2: a DANE-TA record names a trust anchor, which the end-entity certificate is
/// not; "2 1 1" of the leaf's own key matches nothing.
#[tokio::test]
async fn dane_ta_record_of_the_leaf_is_a_mismatch() {
    let smtp = dane_smtp().await;
    let chain = presented_chain(&smtp).await;
    let report = dane_audit(
        &smtp,
        &[format!("2 1 1 {}", dane_ee_sha256(&chain[0].cert_der))],
    )
    .await;
    assert_dane(&report, &["DANE-TLSA-MISMATCH"], false);
}

/// internet.nl's rollover scheme: the current key as "3 1 1" and the issuer as "2 1 1"; both
/// match, the MX is reported with a rollover pair and nothing is found.
#[tokio::test]
async fn rollover_pair_of_current_key_and_issuer_matches() {
    let smtp = dane_smtp().await;
    let chain = presented_chain(&smtp).await;
    let report = dane_audit(
        &smtp,
        &[
            format!("3 1 1 {}", dane_ee_sha256(&chain[0].cert_der)),
            format!("2 1 1 {}", dane_ee_sha256(&chain[1].cert_der)),
        ],
    )
    .await;
    let mx = assert_dane(&report, &[], true);
    assert!(mx.rollover, "{mx:?}");
}
