//! One domain's audit from DNS: runs every DNS check over a [`DnsSource`] and assembles the
//! [`DomainReport`] of `INTERFACE.md`.
//!
//! The MX look-up comes first (it decides the provider, which decides what the SPF and DKIM
//! checks expect); then SPF, DMARC, DKIM, MTA-STS and TLS-RPT run concurrently.

use std::collections::HashSet;

use serde::Serialize;

use crate::checks::{Area, CheckId, Severity};
use crate::dns::DnsSource;
use crate::finding::Finding;
use crate::mx::{MxSummary, Provider};
use crate::{CoreError, dkim, dmarc, mta_sts, mx, score, spf, tlsrpt};

/// Options for auditing one domain.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// Domains known to send no mail (`--parked`): they must be locked down.
    pub parked: HashSet<String>,
}

/// The Direct Send relay test of a report (`INTERFACE.md`: `relay`).
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

/// Everything the DNS audit found about one domain (`INTERFACE.md`, `audit --format json`).
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
    /// 0–100, see [`crate::score`]; `null` for an invalid name or when a look-up failed.
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

    /// Adds findings from checks run after the DNS audit (SMTP probes, the MTA-STS policy),
    /// keeping the order (most severe first) and the score up to date.
    pub fn add_findings(&mut self, more: Vec<Finding>) {
        if more.is_empty() || self.error.is_some() {
            return;
        }
        self.findings.extend(more);
        sort_findings(&mut self.findings);
        self.score = score::score(&self.findings);
    }

    /// A report for an input that is not a valid domain name.
    pub fn invalid(input: &str, err: &CoreError) -> Self {
        DomainReport {
            domain: input.to_string(),
            error: Some(err.to_string()),
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
            score: None,
        }
    }
}

/// Normalises one input line into a domain to audit: trimmed, lower-cased, a trailing dot
/// dropped, internationalised names converted to A-labels (UTS #46), then checked as a host name.
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
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| invalid("not a valid IDNA name"))?;
    if ascii.len() > 253 {
        return Err(invalid("longer than 253 octets"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid("needs at least two labels"));
    }
    for l in &labels {
        if l.is_empty() || l.len() > 63 {
            return Err(invalid("empty label or label over 63 octets"));
        }
        if !l
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "characters other than letters, digits, '-' and '_'",
            ));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(invalid("a label starts or ends with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid("an IP address or numeric top-level label"));
    }
    Ok(ascii)
}

/// Audits one (normalised) domain from DNS.
pub async fn audit_domain<D: DnsSource>(
    dns: &D,
    domain: &str,
    opts: &AuditOptions,
) -> DomainReport {
    let apex_txt = dns.txt(domain);
    let (mx_res, apex_txt) = futures_util::join!(mx::audit(dns, domain), apex_txt);
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

    let (spf_res, dmarc_res, dkim_res, sts_res, rpt_res) = futures_util::join!(
        spf::analyze(dns, domain, m365_hint && !parked),
        dmarc::audit(dns, domain),
        async {
            if parked {
                (dkim::DkimSummary::default(), Vec::new())
            } else {
                dkim::audit(dns, domain, m365_hint).await
            }
        },
        mta_sts::audit(dns, domain, receives_mail),
        tlsrpt::audit(dns, domain, receives_mail),
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
        let spf_locked = spf.record.as_deref().is_some_and(|r| {
            r.split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                == ["v=spf1", "-all"]
        });
        let dmarc_locked = dmarc.policy.as_deref() == Some("reject");
        // A half whose look-up failed is unknown, not unlocked: its verdict is withheld.
        let spf_unknown = findings
            .iter()
            .any(|f| f.id == CheckId::DnsLookupFailed && f.area == Area::Spf);
        let dmarc_unknown = dmarc.lookup_failed;
        let mut missing = Vec::new();
        if !spf_locked && !spf_unknown {
            missing.push("SPF is not exactly `v=spf1 -all`");
        }
        if !dmarc_locked && !dmarc_unknown {
            missing.push("DMARC is not p=reject");
        }
        if !missing.is_empty() {
            let why = if mx_summary.null_mx {
                "null MX"
            } else {
                "listed as parked"
            };
            findings.push(
                Finding::new(
                    CheckId::ParkedNotLocked,
                    format!("{domain} sends no mail ({why}) but {}", missing.join(" and ")),
                )
                .with_fix(format!(
                    "{domain}. TXT \"v=spf1 -all\"\n_dmarc.{domain}. TXT \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s\""
                )),
            );
        }
    }
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
        score,
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
}
