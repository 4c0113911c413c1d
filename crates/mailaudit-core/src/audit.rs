//! One domain's audit from DNS: runs every DNS check over a [`DnsSource`] and assembles the
//! [`DomainReport`] of `docs/json.md`.
//!
//! The MX look-up comes first (it decides the provider, which decides what the SPF and DKIM
//! checks expect), with the apex's existence (answered from the same MX question): a domain
//! that does not exist (NXDOMAIN) gets the single finding DOMAIN-NOT-FOUND and no score.
//! Otherwise SPF, DMARC, DKIM, MTA-STS, TLS-RPT and DNSSEC/DANE run concurrently.
//!
//! DNSSEC and DANE ([`crate::dane::audit`]) run only when the source validates: the section
//! `dnssec` is absent otherwise, and for a name that does not exist or is not valid. A domain
//! that receives no mail (null MX, or parked) gets its own zone's DNSSEC status only: its MX
//! hosts, if it has any, are not looked at for DANE.

use std::collections::HashSet;

use serde::Serialize;

use crate::checks::{Area, CheckId, Severity};
use crate::dns::DnsSource;
use crate::finding::Finding;
use crate::mx::{MxSummary, Provider};
use crate::{CoreError, dkim, dmarc, mta_sts, mx, parked, score, spf, tlsrpt};

/// Options for auditing one domain.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// Domains known to send no mail (`--parked`): they must be locked down.
    pub parked: HashSet<String>,
}

/// The Direct Send relay test of a report (`docs/json.md`: `relay`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RelaySection {
    /// `open`, `blocked`, `inconclusive` or `not_tested`.
    pub verdict: String,
    /// The deciding server reply, if any.
    pub reply: Option<String>,
    /// The host whose answer decided the verdict.
    pub target: Option<String>,
    /// Why, in one sentence (also why it was not tested).
    pub reason: Option<String>,
    /// Every SMTP session of the test (relay probes and STARTTLS/TLS checks), with transcripts.
    pub probes: Vec<crate::smtp::ProbeReport>,
}

impl Default for RelaySection {
    fn default() -> Self {
        RelaySection {
            verdict: "not_tested".into(),
            reply: None,
            target: None,
            reason: None,
            probes: Vec::new(),
        }
    }
}

/// One MX entry of the report.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MxEntry {
    /// The exchange host (`"."` for a null MX).
    pub host: String,
    /// Its preference.
    pub preference: u16,
}

/// Everything the DNS audit found about one domain (`docs/json.md`, `audit --format json`).
#[derive(Clone, Debug, Serialize)]
pub struct DomainReport {
    /// The domain audited (normalised: lower-case A-labels), or the input as given when invalid.
    pub domain: String,
    /// Why the input could not be audited (invalid name); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who receives the domain's mail.
    pub provider: Provider,
    /// Whether the domain was treated as parked (null MX or `--parked`).
    pub parked: bool,
    /// The findings, most severe first.
    pub findings: Vec<Finding>,
    /// The SPF analysis.
    pub spf: spf::SpfAnalysis,
    /// The DMARC policy that applies.
    pub dmarc: dmarc::DmarcSummary,
    /// The DKIM selectors looked at.
    pub dkim: dkim::DkimSummary,
    /// The MX records.
    pub mx: Vec<MxEntry>,
    /// The third-party gateway vendor in front of the mailboxes, if the MX is one.
    pub gateway: Option<String>,
    /// The tenant's Microsoft 365 MX host, if the MX set names one (the Direct Send probe's target).
    pub m365_endpoint: Option<String>,
    /// MTA-STS record.
    pub mta_sts: mta_sts::StsSummary,
    /// TLS-RPT record.
    pub tlsrpt: tlsrpt::TlsRptSummary,
    /// The Direct Send relay test.
    pub relay: RelaySection,
    /// DNSSEC and DANE ([`crate::dane`]); absent when the resolver does not validate
    /// (`--no-dnssec`), for an invalid name and for a domain that does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<crate::dane::DnssecSection>,
    /// 0–100, see [`crate::score`]; `null` for an invalid name, a domain that does not exist
    /// (DOMAIN-NOT-FOUND) or when a look-up failed.
    pub score: Option<u8>,
}

impl DomainReport {
    /// The most severe finding's severity, ignoring none.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Whether the report has a finding with this ID.
    pub fn has(&self, id: CheckId) -> bool {
        self.findings.iter().any(|f| f.id == id)
    }

    /// Whether the domain does not exist (DOMAIN-NOT-FOUND): every other verdict is withheld.
    pub fn not_found(&self) -> bool {
        self.has(CheckId::DomainNotFound)
    }

    /// Adds findings from checks run after the DNS audit (SMTP probes, the MTA-STS policy),
    /// keeping the order (most severe first) and the score up to date. A report of an invalid
    /// name or of a domain that does not exist takes none.
    pub fn add_findings(&mut self, mut more: Vec<Finding>) {
        if more.is_empty() || self.error.is_some() || self.not_found() {
            return;
        }
        crate::record::attach_to_findings(&self.domain, &mut more);
        self.findings.extend(more);
        sort_findings(&mut self.findings);
        self.score = score::score(&self.findings);
    }

    /// A report for a domain that does not exist (NXDOMAIN at its name): the single finding
    /// DOMAIN-NOT-FOUND, every other verdict withheld, no score.
    pub fn nonexistent(domain: &str) -> Self {
        let finding = Finding::new(
            CheckId::DomainNotFound,
            format!(
                "{domain} does not exist: the DNS answers NXDOMAIN for the name itself, so no \
                 other check applies (is the name misspelt, or has its registration lapsed?)"
            ),
        )
        .with_evidence(format!("NXDOMAIN for {domain}"));
        DomainReport {
            findings: vec![finding],
            relay: RelaySection {
                reason: Some("the domain does not exist".into()),
                ..RelaySection::default()
            },
            ..DomainReport::empty(domain)
        }
    }

    /// A report for an input that is not a valid domain name.
    pub fn invalid(input: &str, err: &CoreError) -> Self {
        DomainReport {
            error: Some(err.to_string()),
            ..DomainReport::empty(input)
        }
    }

    /// A report with nothing in it: no finding, no record, no score.
    fn empty(domain: &str) -> Self {
        DomainReport {
            domain: domain.to_string(),
            error: None,
            provider: Provider::None,
            parked: false,
            findings: Vec::new(),
            spf: Default::default(),
            dmarc: Default::default(),
            dkim: Default::default(),
            mx: Vec::new(),
            gateway: None,
            m365_endpoint: None,
            mta_sts: Default::default(),
            tlsrpt: Default::default(),
            relay: RelaySection::default(),
            dnssec: None,
            score: None,
        }
    }
}

/// Normalises one input line into a domain to audit: trimmed, lower-cased, a trailing dot
/// dropped, internationalised names converted to A-labels (UTS #46), then checked as a host name.
///
/// The reason of an error names the first problem, in this order: spaces and other characters
/// no host name has (each listed once: "contains a space and '!'"), a name IDNA cannot convert,
/// the length, empty or long labels, too few labels, a label starting or ending with '-', a
/// numeric top-level label.
pub fn normalize_domain(input: &str) -> Result<String, CoreError> {
    let invalid = |reason: &str| CoreError::InvalidDomain {
        name: input.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = input.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    // Characters no host name has, before IDNA (which would only say "not valid"); other
    // non-ASCII characters are IDNA's to judge.
    if let Some(reason) = bad_characters(trimmed) {
        return Err(invalid(&reason));
    }
    let ascii = idna::domain_to_ascii(trimmed)
        .map_err(|_| invalid("not a valid internationalised name (IDNA)"))?;
    if ascii.len() > 253 {
        return Err(invalid("longer than 253 octets"));
    }
    // IDNA maps some characters to ASCII ones a host name cannot have (a full-width '!').
    if let Some(reason) = bad_characters(&ascii) {
        return Err(invalid(&reason));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err(invalid(
            "has an empty label (a leading dot or two dots in a row)",
        ));
    }
    if let Some(long) = labels.iter().find(|l| l.len() > 63) {
        return Err(invalid(&format!(
            "has a label of {} octets (at most 63)",
            long.len()
        )));
    }
    if labels.len() < 2 {
        return Err(invalid(
            "is a single label: a domain needs at least two (contoso.com)",
        ));
    }
    if let Some(l) = labels
        .iter()
        .find(|l| l.starts_with('-') || l.ends_with('-'))
    {
        return Err(invalid(&format!("the label {l:?} starts or ends with '-'")));
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid("an IP address or numeric top-level label"));
    }
    Ok(ascii)
}

/// "contains a space and '!'": the characters of `name` that no host name has (ASCII other
/// than letters, digits, '-', '_' and '.'; whitespace and control characters of any kind), each
/// once, in order of first appearance, spaces first; with a hint when the name looks like an
/// e-mail address or a URL. None when there are none.
fn bad_characters(name: &str) -> Option<String> {
    let mut found: Vec<char> = Vec::new();
    for c in name.chars() {
        let bad = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        } else {
            c.is_whitespace() || c.is_control()
        };
        if bad && !found.contains(&c) {
            found.push(c);
        }
    }
    if found.is_empty() {
        return None;
    }
    // Spaces first (the likeliest cause: two columns, or words), then the rest as they come.
    found.sort_by_key(|c| *c != ' ');
    const SHOWN: usize = 5;
    let mut names: Vec<String> = found
        .iter()
        .take(SHOWN)
        .map(|c| match c {
            ' ' => "a space".to_string(),
            '\t' => "a tab".to_string(),
            c => format!("{c:?}"),
        })
        .collect();
    if found.len() > SHOWN {
        names.push(format!("{} other characters", found.len() - SHOWN));
    }
    let list = match names.as_slice() {
        [one] => one.clone(),
        [first @ .., last] => format!("{} and {last}", first.join(", ")),
        [] => String::new(),
    };
    let hint = if name.contains("://") {
        " (a URL? give the host name alone)"
    } else if found.contains(&'@') {
        " (an e-mail address? give the part after '@')"
    } else {
        ""
    };
    Some(format!("contains {list}{hint}"))
}

/// Audits one (normalised) domain from DNS.
pub async fn audit_domain<D: DnsSource>(
    dns: &D,
    domain: &str,
    opts: &AuditOptions,
) -> DomainReport {
    let apex_txt = dns.txt(domain);
    // The resolver answers `exists` from the MX question at the apex: no extra query.
    let (mx_res, apex_txt, exists) =
        futures_util::join!(mx::audit(dns, domain), apex_txt, dns.exists(domain));
    // NXDOMAIN at the name: whatever else was read is the absence of everything. A failed
    // look-up (`Err`) is not an answer: the checks below report it as DNS-LOOKUP-FAILED.
    if exists == Ok(false) {
        return DomainReport::nonexistent(domain);
    }
    let (mx_summary, mut findings) = mx_res;
    let ms_verified = apex_txt
        .as_ref()
        .map(|v| {
            v.iter()
                .any(|t| t.trim_start().to_ascii_lowercase().starts_with("ms="))
        })
        .unwrap_or(false);
    let direct_m365 = mx_summary.provider == Provider::M365;
    let behind_gateway = mx_summary.gateway.is_some();
    let parked = mx_summary.null_mx || opts.parked.contains(domain);
    let receives_mail = !parked && mx_summary.receives_mail();
    let m365_hint = direct_m365 || (behind_gateway && ms_verified);
    // What the SPF proposals must authorise, from the MX: behind a gateway, the gateway's SPF
    // entry (not Microsoft 365's include) is needed, and Microsoft 365's DKIM selectors are
    // not assumed (the generic selector probe still finds them when they are published).
    let mail_host = if parked {
        spf::MailHost::Unknown
    } else {
        spf::MailHost::new(
            direct_m365,
            mx_summary.provider == Provider::Google,
            mx_summary.gateway.as_deref(),
        )
    };
    let dkim_m365 = m365_hint && !behind_gateway;
    // The domain's own Microsoft 365 labels, from its MX: a DKIM target with one of them is
    // the domain's own (another label that does not fit the name is a copied CNAME).
    let own_labels: Vec<String> = mx_summary
        .hosts
        .iter()
        .filter_map(|h| {
            mx::classify_host(&h.exchange)
                .m365_label()
                .map(str::to_string)
        })
        .collect();

    // DANE concerns the hosts that receive the domain's mail: none for a parked domain.
    let dane_hosts: Vec<String> = if receives_mail {
        mx_summary
            .hosts
            .iter()
            .map(|m| m.exchange.clone())
            .collect()
    } else {
        Vec::new()
    };
    let (spf_res, dmarc_res, dkim_res, sts_res, rpt_res, dane_res) = futures_util::join!(
        spf::analyze::analyze_for(dns, domain, &mail_host),
        dmarc::audit(dns, domain),
        async {
            if parked {
                (dkim::DkimSummary::default(), Vec::new())
            } else {
                dkim::audit_with_labels(dns, domain, dkim_m365, &own_labels).await
            }
        },
        mta_sts::audit(dns, domain, receives_mail),
        tlsrpt::audit(dns, domain, receives_mail),
        crate::dane::audit(dns, domain, &dane_hosts),
    );
    let (spf, f) = spf_res;
    findings.extend(f);
    let (dmarc, f) = dmarc_res;
    findings.extend(f);
    let (dkim, f) = dkim_res;
    findings.extend(f);
    let (mta_sts, f) = sts_res;
    findings.extend(f);
    let (tlsrpt, f) = rpt_res;
    findings.extend(f);
    let (dnssec, f) = dane_res;
    findings.extend(f);

    let m365 = m365_hint || (behind_gateway && spf.authorizes_m365);
    let provider = if m365 {
        Provider::M365
    } else {
        mx_summary.provider
    };
    if let (true, Some(vendor)) = (m365, mx_summary.gateway.as_deref()) {
        findings.push(
            Finding::new(
                CheckId::MxGateway,
                format!(
                    "MX points at {vendor} in front of Microsoft 365: anyone can skip it and send \
                     straight to the tenant's Microsoft endpoint (Direct Send)"
                ),
            )
            .with_evidence(mx_hosts_text(&mx_summary)),
        );
    }
    if parked {
        lock_down(domain, &mx_summary, &spf, &dmarc, &mut findings);
    }
    crate::record::attach_to_findings(domain, &mut findings);
    sort_findings(&mut findings);
    let score = score::score(&findings);
    DomainReport {
        domain: domain.to_string(),
        error: None,
        provider,
        parked,
        findings,
        spf,
        dmarc,
        dkim,
        mx: mx_summary
            .hosts
            .iter()
            .map(|m| MxEntry {
                host: if m.exchange.is_empty() {
                    ".".into()
                } else {
                    m.exchange.clone()
                },
                preference: m.preference,
            })
            .collect(),
        gateway: mx_summary.gateway.clone(),
        m365_endpoint: mx_summary.m365_endpoint.clone(),
        mta_sts,
        tlsrpt,
        relay: RelaySection::default(),
        dnssec,
        score,
    }
}

/// A domain that sends no mail gets only the lock-down records ([`parked::lockdown`]):
/// PARKED-NOT-LOCKED when SPF or DMARC is not locked down, and the same records as the fix of
/// each of its SPF, DMARC and MX-MISSING findings, in place of the fixes meant for a domain that
/// sends mail (the `p=none` roll-out, the Microsoft 365 include, a Microsoft 365 MX). The
/// findings themselves stay: they are true, and they count in the score.
fn lock_down(
    domain: &str,
    mx: &MxSummary,
    spf: &spf::SpfAnalysis,
    dmarc: &dmarc::DmarcSummary,
    findings: &mut Vec<Finding>,
) {
    // A half whose look-up failed is unknown, not unlocked: its verdict is withheld.
    let spf_unknown = findings
        .iter()
        .any(|f| f.id == CheckId::DnsLookupFailed && f.area == Area::Spf);
    let seen = parked::Seen {
        has_mx: !mx.hosts.is_empty() || mx.lookup_failed,
        spf: spf.record.as_deref(),
        spf_unknown,
        dmarc_policy: dmarc.policy.as_deref(),
        dmarc_record: dmarc.record.as_deref(),
        dmarc_inherited: dmarc.inherited,
        dmarc_unknown: dmarc.lookup_failed,
    };
    let lock = parked::lockdown(&seen, &parked::default_rua(domain));
    if lock.is_empty() {
        return;
    }
    let fix = lock.fix_text(domain);
    for f in findings.iter_mut() {
        // The SPF and DMARC records are replaced (an unauthorised report address is fixed at
        // its destination, not here); a missing MX becomes a null MX.
        let replaced = lock.unlocked()
            && matches!(f.area, Area::Spf | Area::Dmarc)
            && !matches!(
                f.id,
                CheckId::DnsLookupFailed | CheckId::DmarcRuaUnauthorized
            );
        if replaced || (lock.null_mx && f.id == CheckId::MxMissing) {
            f.fix.clone_from(&fix);
        }
    }
    if lock.unlocked() {
        let mut missing = Vec::new();
        if lock.spf {
            missing.push("SPF is not exactly `v=spf1 -all`");
        }
        if lock.dmarc.is_some() {
            missing.push("DMARC is not p=reject");
        }
        let why = if mx.null_mx {
            "null MX"
        } else {
            "listed as parked"
        };
        findings.push(
            Finding::new(
                CheckId::ParkedNotLocked,
                format!(
                    "{domain} sends no mail ({why}) but {}",
                    missing.join(" and ")
                ),
            )
            .with_fix(fix),
        );
    }
}

fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
}

fn mx_hosts_text(mx: &MxSummary) -> String {
    mx.hosts
        .iter()
        .map(|m| format!("{} {}", m.preference, m.exchange))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::memory::{MemoryDns, Rr};

    fn audit(dns: &MemoryDns, domain: &str) -> DomainReport {
        pollster::block_on(audit_domain(dns, domain, &AuditOptions::default()))
    }

    fn ids(r: &DomainReport) -> Vec<CheckId> {
        r.findings.iter().map(|f| f.id).collect()
    }

    #[test]
    fn a_domain_that_does_not_exist_has_one_finding_and_no_score() {
        let dns = MemoryDns::new()
            .with("contoso.test", Rr::Mx(10, "mx.contoso.test".into()))
            .txt_at("contoso.test", "v=spf1 -all")
            .with("mx.contoso.test", Rr::A("192.0.2.25".parse().unwrap()));
        let r = audit(&dns, "contosso.test");
        assert_eq!(ids(&r), [CheckId::DomainNotFound]);
        assert!(r.not_found());
        assert_eq!(r.score, None);
        let f = &r.findings[0];
        assert_eq!((f.area, f.severity), (Area::Transport, Severity::High));
        assert!(f.detail.contains("contosso.test"), "{}", f.detail);
        assert!(r.error.is_none() && r.mx.is_empty() && r.spf.record.is_none());
        // Nothing below the name was asked: every other verdict is withheld, not computed.
        let below: Vec<String> = dns
            .queries()
            .into_iter()
            .filter(|q| q.contains("_dmarc") || q.contains("_domainkey") || q.contains("_mta-sts"))
            .collect();
        assert!(below.is_empty(), "{below:?}");
        // Checks run later (the relay probe, the MTA-STS policy) add nothing to it.
        let mut r = r;
        r.add_findings(vec![Finding::new(CheckId::RelayOpen, "accepted")]);
        assert_eq!(ids(&r), [CheckId::DomainNotFound]);
        assert_eq!(r.score, None);

        // The same zone's existing domain is audited as usual.
        let r = audit(&dns, "contoso.test");
        assert!(!r.not_found(), "{:?}", ids(&r));
        assert!(r.has(CheckId::DmarcMissing), "{:?}", ids(&r));
        assert!(r.score.is_some());
    }

    #[test]
    fn an_existing_name_without_mx_or_a_failed_lookup_is_not_not_found() {
        let dns = MemoryDns::new()
            .with("a-only.test", Rr::A("192.0.2.80".parse().unwrap()))
            .txt_at("_dmarc.ent.test", "v=DMARC1; p=reject")
            .with("broken.test", Rr::Fail(DnsError::ServFail));
        // NODATA for MX: the domain exists, it has no MX.
        let r = audit(&dns, "a-only.test");
        assert!(!r.has(CheckId::DomainNotFound), "{:?}", ids(&r));
        assert!(r.has(CheckId::MxMissing), "{:?}", ids(&r));
        // An empty non-terminal exists (RFC 8020).
        let r = audit(&dns, "ent.test");
        assert!(!r.has(CheckId::DomainNotFound), "{:?}", ids(&r));
        assert_eq!(r.dmarc.policy.as_deref(), Some("reject"));
        // A failure is a failure, never "does not exist".
        let r = audit(&dns, "broken.test");
        assert!(!r.has(CheckId::DomainNotFound), "{:?}", ids(&r));
        assert!(r.has(CheckId::DnsLookupFailed), "{:?}", ids(&r));
        assert_eq!(r.score, None);
    }

    #[test]
    fn input_hygiene() {
        for (input, expected) in [
            ("  Example.COM. ", Some("example.com")),
            ("bücher.example", Some("xn--bcher-kva.example")),
            ("_dmarc.example.com", Some("_dmarc.example.com")),
            ("", None),
            ("localhost", None),
            ("a..b", None),
            ("-bad.example", None),
            ("192.0.2.1", None),
            ("exa mple.com", None),
            ("foo@example.com", None),
        ] {
            assert_eq!(
                normalize_domain(input).ok().as_deref(),
                expected,
                "{input:?}"
            );
        }
    }

    /// The reason names the real, first problem: characters before the label count.
    #[test]
    fn invalid_names_say_why() {
        for (input, reason) in [
            ("bad domain!", "contains a space and '!'"),
            ("bad!domain here", "contains a space and '!'"),
            ("a b\tc", "contains a space and a tab"),
            ("a,b;c.example", "contains ',' and ';'"),
            (
                "<>()[]{}.example",
                "contains '<', '>', '(', ')', '[' and 3 other characters",
            ),
            ("ctl\u{1b}[31m.example", "contains '\\u{1b}' and '['"),
            (
                "foo@example.com",
                "contains '@' (an e-mail address? give the part after '@')",
            ),
            (
                "https://contoso.com/",
                "contains ':' and '/' (a URL? give the host name alone)",
            ),
            (
                "bad",
                "is a single label: a domain needs at least two (contoso.com)",
            ),
            (
                "a..b",
                "has an empty label (a leading dot or two dots in a row)",
            ),
            (
                ".example.com",
                "has an empty label (a leading dot or two dots in a row)",
            ),
            ("-bad.example", "the label \"-bad\" starts or ends with '-'"),
            ("192.0.2.1", "an IP address or numeric top-level label"),
            ("", "empty"),
            ("  ", "empty"),
        ] {
            match normalize_domain(input) {
                Err(CoreError::InvalidDomain { name, reason: got }) => {
                    assert_eq!(got, reason, "{input:?}");
                    assert_eq!(name, input, "the name as given");
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
        let long = format!("{}.example", "a".repeat(64));
        let err = normalize_domain(&long).unwrap_err().to_string();
        assert!(
            err.ends_with("has a label of 64 octets (at most 63)"),
            "{err}"
        );
        // Non-ASCII letters are IDNA's to judge, not "bad characters".
        assert_eq!(
            normalize_domain("bücher.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        // A full-width '!' is mapped by IDNA to '!', and then named.
        let err = normalize_domain("bad\u{ff01}.example")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with(": contains '!'"), "{err}");
    }

    #[test]
    fn dnssec_and_dane_are_reported_only_when_the_source_validates() {
        use crate::dns::{Security, Tlsa};
        let zone = || {
            MemoryDns::new()
                .with("contoso.test", Rr::Mx(10, "mx.contoso.test".into()))
                .txt_at("contoso.test", "v=spf1 mx -all")
                .with("mx.contoso.test", Rr::A("192.0.2.25".parse().unwrap()))
                .with("parked.test", Rr::Mx(0, ".".into()))
                .with("listed.test", Rr::Mx(10, "mx.contoso.test".into()))
        };
        // Without validation: no section, no DNSSEC finding, the JSON has no `dnssec` key.
        let plain = audit(&zone(), "contoso.test");
        assert_eq!(plain.dnssec, None);
        let json = serde_json::to_value(&plain).expect("json");
        assert!(json.get("dnssec").is_none(), "{json}");

        // Validating, signed, with a usable TLSA record: a section and no DNSSEC finding.
        let signed = zone().with_security("contoso.test", Security::Secure).with(
            "_25._tcp.mx.contoso.test",
            Rr::Tlsa(Tlsa {
                cert_usage: 3,
                selector: 1,
                matching_type: 1,
                cert_association_data: "ab".repeat(32),
            }),
        );
        let r = audit(&signed, "contoso.test");
        let d = r.dnssec.as_ref().expect("section");
        assert_eq!(d.domain, Some(Security::Secure));
        assert_eq!(d.mx.len(), 1);
        assert!(d.mx[0].usable);
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["dnssec"]["mx"][0]["host"], "mx.contoso.test");
        assert!(
            !r.findings
                .iter()
                .any(|f| f.id.info().source() == crate::checks::Source::Dnssec)
        );

        // Validating, unsigned: DNSSEC-UNSIGNED and DNSSEC-MX-UNSIGNED, info, score unchanged.
        let unsigned = zone().with_security("other.test", Security::Secure);
        let r = audit(&unsigned, "contoso.test");
        assert!(r.has(CheckId::DnssecUnsigned) && r.has(CheckId::DnssecMxUnsigned));
        assert_eq!(r.score, plain.score);

        // Bogus: high, and it costs what a high finding costs.
        let bogus = zone().with_security("contoso.test", Security::Bogus);
        let r = audit(&bogus, "contoso.test");
        assert!(r.has(CheckId::DnssecBogus));
        assert_eq!(
            r.score,
            plain.score.map(|s| s.saturating_sub(15)),
            "{:?}",
            ids(&r)
        );

        // A parked domain: its own zone only, no MX host looked at for DANE.
        for (domain, parked) in [("parked.test", false), ("listed.test", true)] {
            let dns = zone().with_security("contoso.test", Security::Secure);
            let opts = AuditOptions {
                parked: if parked {
                    HashSet::from([domain.to_string()])
                } else {
                    HashSet::new()
                },
            };
            let r = pollster::block_on(audit_domain(&dns, domain, &opts));
            assert!(r.parked, "{domain}");
            let d = r.dnssec.as_ref().expect("section");
            assert_eq!(d.domain, Some(Security::Insecure), "{domain}");
            assert!(d.mx.is_empty(), "{domain}: {d:?}");
            assert!(!dns.queries().iter().any(|q| q.starts_with("TLSA")));
        }

        // A name that does not exist: no section, nothing asked about DNSSEC.
        let dns = zone().with_security("contoso.test", Security::Secure);
        let r = audit(&dns, "nowhere.test");
        assert!(r.not_found());
        assert_eq!(r.dnssec, None);
    }
}
