//! Mail exchangers: who receives the domain's mail, and does the MX set work.
//!
//! [`classify_host`] sorts one MX host name into Microsoft 365 (classic, current, GCC High),
//! Google, a known third-party filtering gateway (from the documented [`GATEWAYS`] table), or
//! other. [`audit`] reads the domain's MX records and reports MX-MISSING, MX-NULL and
//! MX-UNRESOLVABLE, and exposes in [`MxSummary`] what other checks need: the provider, the
//! Microsoft 365 endpoint (the relay probe targets it even behind a gateway) and the gateway
//! vendor. MX-GATEWAY itself is decided by the assembler, which has the other evidence (DKIM
//! CNAMEs, SPF) that the tenant is behind the gateway.

use serde::Serialize;
use serde::ser::SerializeSeq;

use crate::checks::{Area, CheckId};
use crate::dns::{DnsSource, Mx, normalize_name};
use crate::finding::Finding;

/// At most this many MX hosts are resolved (A, then AAAA) per domain.
pub const MAX_HOSTS_RESOLVED: usize = 10;

/// Who receives the domain's mail, as far as its MX records tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// At least one MX host is a Microsoft 365 endpoint.
    M365,
    /// Google Workspace (and no Microsoft 365 host).
    Google,
    /// Some other mail service or an on-premises server (a gateway in front of Microsoft 365
    /// shows up here too when the Microsoft endpoint is not in the MX set).
    Other,
    /// No MX or a null MX.
    None,
    /// The MX look-up failed: who receives the mail is not known (never reported as `none`).
    Unknown,
}

impl Provider {
    /// The JSON/CSV name: `m365`, `google`, `other`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::M365 => "m365",
            Provider::Google => "google",
            Provider::Other => "other",
            Provider::None => "none",
            Provider::Unknown => "unknown",
        }
    }

    /// A name for people: `Microsoft 365`, `Google Workspace`, `other mail service`, `no mail`.
    pub fn label(self) -> &'static str {
        match self {
            Provider::M365 => "Microsoft 365",
            Provider::Google => "Google Workspace",
            Provider::Other => "other mail service",
            Provider::None => "no MX",
            Provider::Unknown => "provider unknown (MX look-up failed)",
        }
    }
}

/// What kind of mail exchanger a host name is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostClass {
    /// `<label>.mail.protection.outlook.com` (Exchange Online, commercial).
    M365Classic {
        /// The tenant's MX label, as published (lower-case).
        label: String,
    },
    /// `<label>.<letter>-v1.mx.microsoft` (DNSSEC-signed, DANE-capable endpoint).
    M365Current {
        /// The tenant's MX label, as published (lower-case).
        label: String,
    },
    /// `<label>.mail.protection.office365.us` (GCC High / DoD).
    M365Gcc {
        /// The tenant's MX label, as published (lower-case).
        label: String,
    },
    /// Google Workspace (`aspmx.l.google.com`, `altN.aspmx.l.google.com`, `*.googlemail.com`,
    /// `smtp.google.com`).
    Google,
    /// A third-party filtering gateway listed in [`GATEWAYS`].
    Gateway {
        /// The vendor's name as shown to users.
        vendor: &'static str,
    },
    /// Anything else.
    Other,
}

impl HostClass {
    /// Whether this is a Microsoft 365 endpoint (any form).
    pub fn is_m365(&self) -> bool {
        matches!(
            self,
            HostClass::M365Classic { .. }
                | HostClass::M365Current { .. }
                | HostClass::M365Gcc { .. }
        )
    }

    /// The Microsoft 365 MX label, for a Microsoft 365 endpoint.
    pub fn m365_label(&self) -> Option<&str> {
        match self {
            HostClass::M365Classic { label }
            | HostClass::M365Current { label }
            | HostClass::M365Gcc { label } => Some(label),
            _ => None,
        }
    }
}

/// Known third-party mail filtering gateways: `(host suffix, vendor)`.
///
/// A host matches when it is a subdomain of the suffix (`x.mimecast.com` matches
/// `mimecast.com`; `mimecast.com` itself does not). Sources: the vendors' published MX host
/// names for customers.
///
/// | suffix | vendor |
/// |---|---|
/// | `mimecast.com`, `mimecast.co.za`, `mimecast-offshore.com` | Mimecast |
/// | `pphosted.com` | Proofpoint |
/// | `ppe-hosted.com` | Proofpoint Essentials |
/// | `barracudanetworks.com` | Barracuda |
/// | `iphmx.com` | Cisco Secure Email (IronPort) |
/// | `tmes.trendmicro.com`, `tmes.trendmicro.eu` | Trend Micro |
/// | `hydra.sophos.com` | Sophos |
/// | `hornetsecurity.com` | Hornetsecurity |
/// | `mailcontrol.com` | Forcepoint |
/// | `messagelabs.com` | Symantec / Broadcom Email Security.cloud |
/// | `fireeyecloud.com` | Trellix (FireEye) |
/// | `spamtitan.com` | SpamTitan |
/// | `libraesva.com` | Libraesva |
/// | `mxrecord.io`, `mxrecord.mx` | Cloudflare Email Security (Area 1) |
pub const GATEWAYS: &[(&str, &str)] = &[
    ("mimecast.com", "Mimecast"),
    ("mimecast.co.za", "Mimecast"),
    ("mimecast-offshore.com", "Mimecast"),
    ("pphosted.com", "Proofpoint"),
    ("ppe-hosted.com", "Proofpoint Essentials"),
    ("barracudanetworks.com", "Barracuda"),
    ("iphmx.com", "Cisco Secure Email"),
    ("tmes.trendmicro.com", "Trend Micro"),
    ("tmes.trendmicro.eu", "Trend Micro"),
    ("hydra.sophos.com", "Sophos"),
    ("hornetsecurity.com", "Hornetsecurity"),
    ("mailcontrol.com", "Forcepoint"),
    ("messagelabs.com", "Symantec"),
    ("fireeyecloud.com", "Trellix"),
    ("spamtitan.com", "SpamTitan"),
    ("libraesva.com", "Libraesva"),
    ("mxrecord.io", "Cloudflare"),
    ("mxrecord.mx", "Cloudflare"),
];

/// Whether `label` is one DNS label of letters, digits and hyphens.
fn is_ldh_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `host` is a proper subdomain of `suffix` (both lower-case).
fn is_subdomain_of(host: &str, suffix: &str) -> bool {
    host.len() > suffix.len() + 1
        && host.ends_with(suffix)
        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
}

/// Classifies one MX host name (case-insensitive, a trailing dot ignored).
///
/// Microsoft 365 forms (`docs/m365.md`): `<label>.mail.protection.outlook.com`,
/// `<label>.<letter>-v1.mx.microsoft` (letter a–z) and, for GCC High,
/// `<label>.mail.protection.office365.us`, where `<label>` is one DNS label. The label is read,
/// never constructed from the domain name.
pub fn classify_host(host: &str) -> HostClass {
    let host = normalize_name(host);
    if let Some(label) = host.strip_suffix(".mail.protection.outlook.com")
        && is_ldh_label(label)
    {
        return HostClass::M365Classic {
            label: label.to_string(),
        };
    }
    if let Some(label) = host.strip_suffix(".mail.protection.office365.us")
        && is_ldh_label(label)
    {
        return HostClass::M365Gcc {
            label: label.to_string(),
        };
    }
    if let Some(rest) = host.strip_suffix(".mx.microsoft")
        && let Some((label, zone)) = rest.rsplit_once('.')
        && is_letter_v1(zone)
        && is_ldh_label(label)
    {
        return HostClass::M365Current {
            label: label.to_string(),
        };
    }
    if is_google(&host) {
        return HostClass::Google;
    }
    for (suffix, vendor) in GATEWAYS {
        if is_subdomain_of(&host, suffix) {
            return HostClass::Gateway { vendor };
        }
    }
    HostClass::Other
}

/// `<letter>-v1` with a letter a–z.
pub(crate) fn is_letter_v1(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4 && b[0].is_ascii_lowercase() && &b[1..] == b"-v1"
}

fn is_google(host: &str) -> bool {
    matches!(
        host,
        "aspmx.l.google.com"
            | "alt1.aspmx.l.google.com"
            | "alt2.aspmx.l.google.com"
            | "alt3.aspmx.l.google.com"
            | "alt4.aspmx.l.google.com"
            | "smtp.google.com"
    ) || is_subdomain_of(host, "googlemail.com")
}

/// What the MX records say, for the JSON report and for the other checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxSummary {
    /// The MX records, sorted by preference (then host); serialized as
    /// `[{"host": "...", "preference": 0}]` (`docs/json.md`).
    #[serde(serialize_with = "serialize_hosts")]
    pub hosts: Vec<Mx>,
    /// Who receives the mail, from the MX set alone: Microsoft 365 if any host is a Microsoft
    /// endpoint, else Google if any host is Google's, else other; none without (usable) MX.
    pub provider: Provider,
    /// A valid null MX (RFC 7505): the domain receives no mail.
    pub null_mx: bool,
    /// The vendor of the most preferred third-party gateway in the MX set, if any.
    pub gateway: Option<String>,
    /// The most preferred Microsoft 365 MX host, if any (the Direct Send probe's target).
    pub m365_endpoint: Option<String>,
    /// The MX look-up itself failed: everything above is unknown, not absent.
    pub lookup_failed: bool,
}

impl MxSummary {
    fn empty() -> Self {
        MxSummary {
            hosts: vec![],
            provider: Provider::None,
            null_mx: false,
            gateway: None,
            m365_endpoint: None,
            lookup_failed: false,
        }
    }

    /// Whether the domain accepts mail (has MX records, or falls back to its address records);
    /// false only for a valid null MX. Unknown (look-up failed) counts as receiving.
    pub fn receives_mail(&self) -> bool {
        !self.null_mx
    }
}

fn serialize_hosts<S: serde::Serializer>(hosts: &[Mx], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Host<'a> {
        host: &'a str,
        preference: u16,
    }
    let mut seq = s.serialize_seq(Some(hosts.len()))?;
    for mx in hosts {
        seq.serialize_element(&Host {
            host: &mx.exchange,
            preference: mx.preference,
        })?;
    }
    seq.end()
}

fn render_mx(domain: &str, hosts: &[Mx]) -> String {
    hosts
        .iter()
        .map(|m| {
            let exchange = if m.exchange.is_empty() {
                "."
            } else {
                m.exchange.as_str()
            };
            format!("{domain}. MX {} {exchange}", m.preference)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `host` is Microsoft 365's legacy endpoint `<label>.mail.protection.outlook.com`
/// (MX-M365-LEGACY). The GCC High endpoint `<label>.mail.protection.office365.us` is not: Microsoft
/// documents no DNSSEC-signed `mx.microsoft` endpoint to move it to.
pub fn is_m365_legacy(host: &str) -> bool {
    matches!(classify_host(host), HostClass::M365Classic { .. })
}

/// Whether `host` is Microsoft 365's DNSSEC-signed, DANE-capable endpoint
/// `<label>.<letter>-v1.mx.microsoft`.
pub fn is_m365_dane_endpoint(host: &str) -> bool {
    matches!(classify_host(host), HostClass::M365Current { .. })
}

/// MX-M365-LEGACY for the legacy Microsoft 365 hosts among the domain's `total` MX hosts.
fn legacy_finding(domain: &str, legacy: &[&Mx], total: usize) -> Finding {
    let hosts: Vec<&str> = legacy.iter().map(|m| m.exchange.as_str()).collect();
    let evidence = legacy
        .iter()
        .map(|m| format!("{domain}. MX {} {}", m.preference, m.exchange))
        .collect::<Vec<_>>()
        .join("\n");
    let fallback = if total > legacy.len() {
        "; Microsoft's procedure also expects no fallback MX next to it"
    } else {
        ""
    };
    Finding::new(
        CheckId::MxM365Legacy,
        format!(
            "{domain} receives its mail at Microsoft 365's legacy endpoint {}: inbound SMTP DANE \
             with DNSSEC needs the `*.mx.microsoft` endpoint that `Enable-DnssecForVerifiedDomain` \
             returns{fallback}",
            hosts.join(", ")
        ),
    )
    .with_evidence(evidence)
}

/// Audits the MX records of `domain`.
///
/// RFC 5321 §5.1: "If an empty list of MXs is returned, the address is treated as if it was
/// associated with an implicit MX RR, with a preference of 0, pointing to that host."
///
/// RFC 7505 §3: "The null MX RR is an ordinary MX record with an RDATA section consisting of
/// preference number 0 and a zero-length label, written in master files as ".", as the
/// exchange domain, to denote that there exists no mail exchanger for a domain. [...] A domain
/// that advertises a null MX MUST NOT advertise any other MX RR."
///
/// Findings: MX-MISSING, MX-NULL (also for an invalid null MX mixed with other MX, with a
/// detail saying so; `null_mx` is then false), MX-UNRESOLVABLE for each of the first
/// [`MAX_HOSTS_RESOLVED`] hosts with neither A nor AAAA records, and DNS-LOOKUP-FAILED (area
/// transport) when the MX look-up or a host's address look-ups fail, and MX-M365-LEGACY when
/// an MX host is Microsoft 365's legacy `<label>.mail.protection.outlook.com` endpoint
/// ([`is_m365_legacy`]). MX-GATEWAY is not emitted here.
pub async fn audit<D: DnsSource>(dns: &D, domain: &str) -> (MxSummary, Vec<Finding>) {
    let domain = normalize_name(domain);
    let mut summary = MxSummary::empty();
    let mut findings = Vec::new();

    let mut hosts = match dns.mx(&domain).await {
        Ok(h) => h,
        Err(e) => {
            summary.lookup_failed = true;
            summary.provider = Provider::Unknown;
            findings.push(Finding::lookup_failed(
                Area::Transport,
                &format!("MX {domain}"),
                &e,
            ));
            return (summary, findings);
        }
    };
    for mx in &mut hosts {
        mx.exchange = normalize_name(&mx.exchange);
    }
    hosts.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
    hosts.dedup();
    summary.hosts = hosts.clone();

    if hosts.is_empty() {
        findings.push(
            Finding::new(
                CheckId::MxMissing,
                format!(
                    "{domain} has no MX record; senders fall back to its A/AAAA record \
                     (RFC 5321 §5.1) and deliver there, or give up"
                ),
            )
            .with_fix(format!(
                "Publish the MX record shown for {domain} in the Microsoft 365 admin center \
                 (Settings > Domains), e.g. `{domain}. MX 0 <label>.mail.protection.outlook.com`; \
                 if {domain} receives no mail, publish a null MX instead: `{domain}. MX 0 .`"
            )),
        );
        return (summary, findings);
    }

    let evidence = render_mx(&domain, &hosts);
    let nulls = hosts.iter().filter(|m| m.exchange.is_empty()).count();
    if nulls > 0 {
        if hosts.len() == 1 {
            summary.null_mx = true;
            let pref = hosts[0].preference;
            let detail = if pref == 0 {
                format!("{domain} publishes a null MX (RFC 7505): it receives no mail")
            } else {
                format!(
                    "{domain} publishes a null MX (RFC 7505) with preference {pref} instead of 0: \
                     it receives no mail"
                )
            };
            findings.push(
                Finding::new(CheckId::MxNull, detail)
                    .with_evidence(evidence)
                    .with_fix(format!(
                        "Nothing to do if {domain} should receive no mail; make sure it also \
                         publishes `v=spf1 -all` and a DMARC `p=reject` policy"
                    )),
            );
            return (summary, findings);
        }
        findings.push(
            Finding::new(
                CheckId::MxNull,
                format!(
                    "invalid null MX: {domain} publishes a null MX together with {} other MX \
                     record(s), which RFC 7505 §3 forbids; senders ignore the null MX and deliver \
                     to the others",
                    hosts.len() - nulls
                ),
            )
            .with_evidence(evidence)
            .with_fix(format!(
                "If {domain} receives mail, delete the `{domain}. MX 0 .` record; if it does \
                 not, delete every other MX record"
            )),
        );
    }

    let real: Vec<&Mx> = hosts.iter().filter(|m| !m.exchange.is_empty()).collect();
    let classes: Vec<HostClass> = real.iter().map(|m| classify_host(&m.exchange)).collect();
    summary.m365_endpoint = real
        .iter()
        .zip(&classes)
        .find(|(_, c)| c.is_m365())
        .map(|(m, _)| m.exchange.clone());
    summary.gateway = classes.iter().find_map(|c| match c {
        HostClass::Gateway { vendor } => Some(vendor.to_string()),
        _ => None,
    });
    let legacy: Vec<&Mx> = real
        .iter()
        .zip(&classes)
        .filter(|(_, c)| matches!(c, HostClass::M365Classic { .. }))
        .map(|(m, _)| *m)
        .collect();
    if !legacy.is_empty() {
        findings.push(legacy_finding(&domain, &legacy, real.len()));
    }
    summary.provider = if summary.m365_endpoint.is_some() {
        Provider::M365
    } else if classes.contains(&HostClass::Google) {
        Provider::Google
    } else {
        Provider::Other
    };

    for mx in real.iter().take(MAX_HOSTS_RESOLVED) {
        let host = &mx.exchange;
        let a = dns.a(host).await;
        if matches!(&a, Ok(v) if !v.is_empty()) {
            continue;
        }
        let aaaa = dns.aaaa(host).await;
        match (a, aaaa) {
            (_, Ok(v)) if !v.is_empty() => {}
            (Err(e), _) => findings.push(Finding::lookup_failed(
                Area::Transport,
                &format!("A {host}"),
                &e,
            )),
            (_, Err(e)) => findings.push(Finding::lookup_failed(
                Area::Transport,
                &format!("AAAA {host}"),
                &e,
            )),
            (Ok(_), Ok(_)) => findings.push(
                Finding::new(
                    CheckId::MxUnresolvable,
                    format!(
                        "MX host {host} (preference {}) of {domain} has no A or AAAA record: \
                         mail routed to it cannot be delivered",
                        mx.preference
                    ),
                )
                .with_evidence(format!("{domain}. MX {} {host}", mx.preference))
                .with_fix(format!(
                    "Remove `{domain}. MX {} {host}` or correct it to the host shown in the \
                     Microsoft 365 admin center (Settings > Domains)",
                    mx.preference
                )),
            ),
        }
    }
    (summary, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::memory::{MemoryDns, Rr};

    fn lbl(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn real_world_hosts_are_classified() {
        use HostClass::*;
        for (host, expected) in [
            (
                "contoso-com.mail.protection.outlook.com",
                M365Classic {
                    label: lbl("contoso-com"),
                },
            ),
            (
                "Contoso-COM.Mail.Protection.Outlook.com.",
                M365Classic {
                    label: lbl("contoso-com"),
                },
            ),
            (
                "heigvd-ch01b.mail.protection.outlook.com",
                M365Classic {
                    label: lbl("heigvd-ch01b"),
                },
            ),
            (
                "contoso-com.c-v1.mx.microsoft",
                M365Current {
                    label: lbl("contoso-com"),
                },
            ),
            (
                "Fabrikam-NL01c.R-v1.MX.Microsoft",
                M365Current {
                    label: lbl("fabrikam-nl01c"),
                },
            ),
            (
                "agency-gov.mail.protection.office365.us",
                M365Gcc {
                    label: lbl("agency-gov"),
                },
            ),
            ("a.b.mail.protection.outlook.com", Other),
            ("mail.protection.outlook.com", Other),
            ("x.1-v1.mx.microsoft", Other),
            ("x.ab-v1.mx.microsoft", Other),
            ("ASPMX.L.GOOGLE.COM", Google),
            ("alt1.aspmx.l.google.com", Google),
            ("Alt4.ASPMX.l.google.com.", Google),
            ("alt5.aspmx.l.google.com", Other),
            ("aspmx2.googlemail.com", Google),
            ("smtp.google.com", Google),
            (
                "eu-smtp-inbound-1.mimecast.com",
                Gateway { vendor: "Mimecast" },
            ),
            (
                "ZA-SMTP-INBOUND-1.MIMECAST.CO.ZA",
                Gateway { vendor: "Mimecast" },
            ),
            (
                "mx0a-00123401.pphosted.com",
                Gateway {
                    vendor: "Proofpoint",
                },
            ),
            (
                "mx1-us1.ppe-hosted.com",
                Gateway {
                    vendor: "Proofpoint Essentials",
                },
            ),
            (
                "d123456a.ess.barracudanetworks.com",
                Gateway {
                    vendor: "Barracuda",
                },
            ),
            (
                "mx1.hc1234-56.iphmx.com",
                Gateway {
                    vendor: "Cisco Secure Email",
                },
            ),
            (
                "contoso.in.tmes.trendmicro.com",
                Gateway {
                    vendor: "Trend Micro",
                },
            ),
            (
                "contoso.in.tmes.trendmicro.eu",
                Gateway {
                    vendor: "Trend Micro",
                },
            ),
            (
                "mx-01-eu-central-1.prod.hydra.sophos.com",
                Gateway { vendor: "Sophos" },
            ),
            (
                "mx01.hornetsecurity.com",
                Gateway {
                    vendor: "Hornetsecurity",
                },
            ),
            (
                "cluster1.eu.messagelabs.com",
                Gateway { vendor: "Symantec" },
            ),
            (
                "cluster5.eu.mailcontrol.com",
                Gateway {
                    vendor: "Forcepoint",
                },
            ),
            (
                "mx1.contoso.fireeyecloud.com",
                Gateway { vendor: "Trellix" },
            ),
            (
                "inbound.spamtitan.com",
                Gateway {
                    vendor: "SpamTitan",
                },
            ),
            (
                "mx.libraesva.com",
                Gateway {
                    vendor: "Libraesva",
                },
            ),
            (
                "mailstream-east.mxrecord.io",
                Gateway {
                    vendor: "Cloudflare",
                },
            ),
            ("mimecast.com", Other),
            ("evilmimecast.com", Other),
            ("mimecast.com.evil.example", Other),
            ("mail.contoso.com", Other),
            ("", Other),
            ("...", Other),
        ] {
            assert_eq!(classify_host(host), expected, "{host}");
        }
    }

    fn run(dns: &MemoryDns) -> (MxSummary, Vec<Finding>) {
        pollster::block_on(audit(dns, "Contoso.com"))
    }

    fn ids(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn mx_findings_positive_and_negative() {
        let ip = Rr::A("192.0.2.1".parse().unwrap());
        let ip6 = Rr::Aaaa("2001:db8::1".parse().unwrap());
        let m365 = "contoso-com.mail.protection.outlook.com";
        let cases: Vec<(&str, MemoryDns, Vec<&str>)> = vec![
            (
                "healthy m365",
                MemoryDns::new()
                    .with("contoso.com", Rr::Mx(0, m365.into()))
                    .with(m365, ip.clone()),
                vec!["MX-M365-LEGACY"],
            ),
            (
                "healthy m365 dane endpoint",
                MemoryDns::new()
                    .with(
                        "contoso.com",
                        Rr::Mx(0, "contoso-com.o-v1.mx.microsoft".into()),
                    )
                    .with("contoso-com.o-v1.mx.microsoft", ip.clone()),
                vec![],
            ),
            (
                "aaaa only",
                MemoryDns::new()
                    .with("contoso.com", Rr::Mx(0, "mx.contoso.com".into()))
                    .with("mx.contoso.com", ip6.clone()),
                vec![],
            ),
            (
                "missing",
                MemoryDns::new().with("contoso.com", ip.clone()),
                vec!["MX-MISSING"],
            ),
            (
                "null",
                MemoryDns::new().with("contoso.com", Rr::Mx(0, ".".into())),
                vec!["MX-NULL"],
            ),
            (
                "null mixed",
                MemoryDns::new()
                    .with("contoso.com", Rr::Mx(0, ".".into()))
                    .with("contoso.com", Rr::Mx(10, m365.into()))
                    .with(m365, ip.clone()),
                vec!["MX-NULL", "MX-M365-LEGACY"],
            ),
            (
                "unresolvable backup",
                MemoryDns::new()
                    .with("contoso.com", Rr::Mx(0, m365.into()))
                    .with("contoso.com", Rr::Mx(10, "old.contoso.com".into()))
                    .with(m365, ip.clone()),
                vec!["MX-M365-LEGACY", "MX-UNRESOLVABLE"],
            ),
            (
                "host lookup fails",
                MemoryDns::new()
                    .with("contoso.com", Rr::Mx(0, "mx.contoso.com".into()))
                    .with("mx.contoso.com", Rr::Fail(DnsError::ServFail)),
                vec!["DNS-LOOKUP-FAILED"],
            ),
            (
                "mx lookup fails",
                MemoryDns::new().with("contoso.com", Rr::Fail(DnsError::Timeout)),
                vec!["DNS-LOOKUP-FAILED"],
            ),
        ];
        for (name, dns, expected) in cases {
            let (_, f) = run(&dns);
            assert_eq!(ids(&f), expected, "{name}");
            for f in &f {
                assert_eq!(f.area, Area::Transport, "{name}");
            }
        }
    }

    #[test]
    fn summary_exposes_provider_gateway_and_endpoint() {
        let ip = Rr::A("192.0.2.1".parse().unwrap());
        let dns = MemoryDns::new()
            .with(
                "contoso.com",
                Rr::Mx(20, "Contoso-com.mail.protection.outlook.com.".into()),
            )
            .with(
                "contoso.com",
                Rr::Mx(10, "eu-smtp-inbound-2.mimecast.com".into()),
            )
            .with(
                "contoso.com",
                Rr::Mx(10, "eu-smtp-inbound-1.mimecast.com".into()),
            )
            .with("contoso-com.mail.protection.outlook.com", ip.clone())
            .with("eu-smtp-inbound-1.mimecast.com", ip.clone())
            .with("eu-smtp-inbound-2.mimecast.com", ip.clone());
        let (s, f) = run(&dns);
        assert_eq!(ids(&f), ["MX-M365-LEGACY"]);
        assert_eq!(s.provider, Provider::M365);
        assert_eq!(s.gateway.as_deref(), Some("Mimecast"));
        assert_eq!(
            s.m365_endpoint.as_deref(),
            Some("contoso-com.mail.protection.outlook.com")
        );
        let order: Vec<_> = s.hosts.iter().map(|m| m.exchange.as_str()).collect();
        assert_eq!(
            order,
            [
                "eu-smtp-inbound-1.mimecast.com",
                "eu-smtp-inbound-2.mimecast.com",
                "contoso-com.mail.protection.outlook.com"
            ]
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["provider"], "m365");
        assert_eq!(json["hosts"][0]["host"], "eu-smtp-inbound-1.mimecast.com");
        assert_eq!(json["hosts"][0]["preference"], 10);
    }

    #[test]
    fn providers() {
        let ip = Rr::A("192.0.2.1".parse().unwrap());
        for (hosts, provider) in [
            (
                vec!["aspmx.l.google.com", "alt1.aspmx.l.google.com"],
                Provider::Google,
            ),
            (vec!["mx.contoso.com"], Provider::Other),
            (vec!["x.pphosted.com"], Provider::Other),
            (
                vec!["contoso-com.b-v1.mx.microsoft", "aspmx.l.google.com"],
                Provider::M365,
            ),
        ] {
            let mut dns = MemoryDns::new();
            for (i, h) in hosts.iter().enumerate() {
                dns.add("contoso.com", Rr::Mx(i as u16, h.to_string()));
                dns.add(h, ip.clone());
            }
            assert_eq!(run(&dns).0.provider, provider, "{hosts:?}");
        }
        let (s, _) = run(&MemoryDns::new());
        assert_eq!(s.provider, Provider::None);
        let (s, _) = run(&MemoryDns::new().with("contoso.com", Rr::Mx(0, ".".into())));
        assert!(s.null_mx && !s.receives_mail());
        assert_eq!(serde_json::to_value(s.provider).unwrap(), "none");
        let (s, _) = run(&MemoryDns::new().with("contoso.com", Rr::Fail(DnsError::ServFail)));
        assert!(s.lookup_failed && s.receives_mail());
        assert_eq!(s.provider, Provider::Unknown);
    }

    #[test]
    fn legacy_m365_endpoint_is_reported_case_insensitively() {
        let ip = Rr::A("192.0.2.1".parse().unwrap());
        // Mixed case as real records have it; one finding naming every legacy host.
        let dns = MemoryDns::new()
            .with(
                "contoso.com",
                Rr::Mx(0, "Contoso-COM.Mail.Protection.Outlook.com.".into()),
            )
            .with("contoso-com.mail.protection.outlook.com", ip.clone());
        let (_, f) = run(&dns);
        assert_eq!(ids(&f), ["MX-M365-LEGACY"]);
        let legacy = &f[0];
        assert_eq!(
            (legacy.area, legacy.severity),
            (Area::Transport, crate::checks::Severity::Info)
        );
        assert!(
            legacy
                .detail
                .contains("contoso-com.mail.protection.outlook.com"),
            "{}",
            legacy.detail
        );
        assert!(!legacy.detail.contains("fallback"), "{}", legacy.detail);
        assert_eq!(
            legacy.evidence.as_deref(),
            Some("contoso.com. MX 0 contoso-com.mail.protection.outlook.com")
        );

        // Half-way through the migration (both endpoints): still legacy, and the fallback is named.
        let both = MemoryDns::new()
            .with(
                "contoso.com",
                Rr::Mx(0, "contoso-com.mail.protection.outlook.com".into()),
            )
            .with("contoso-com.mail.protection.outlook.com", ip.clone())
            .with(
                "contoso.com",
                Rr::Mx(20, "contoso-com.o-v1.mx.microsoft".into()),
            )
            .with("contoso-com.o-v1.mx.microsoft", ip.clone());
        let (_, f) = run(&both);
        assert_eq!(ids(&f), ["MX-M365-LEGACY"]);
        assert!(f[0].detail.contains("fallback"), "{}", f[0].detail);

        // Not legacy: the DANE endpoint, GCC High, look-alikes, a gateway in front of Microsoft 365.
        for host in [
            "contoso-com.O-V1.MX.Microsoft",
            "agency-gov.mail.protection.office365.us",
            "a.b.mail.protection.outlook.com",
            "mail.protection.outlook.com.evil.example",
            "eu-smtp-inbound-1.mimecast.com",
        ] {
            let dns = MemoryDns::new()
                .with("contoso.com", Rr::Mx(10, host.into()))
                .with(host, ip.clone());
            let (_, f) = run(&dns);
            assert!(!ids(&f).contains(&"MX-M365-LEGACY"), "{host}: {f:?}");
        }
        assert!(is_m365_legacy("X.MAIL.PROTECTION.OUTLOOK.COM."));
        assert!(!is_m365_legacy("x.c-v1.mx.microsoft"));
        assert!(is_m365_dane_endpoint("X.C-V1.MX.MICROSOFT"));
        assert!(!is_m365_dane_endpoint("x.mail.protection.outlook.com"));
    }

    #[test]
    fn address_lookups_are_capped() {
        let mut dns = MemoryDns::new();
        for i in 0..15u16 {
            dns.add("contoso.com", Rr::Mx(i, format!("mx{i}.contoso.com")));
        }
        let (s, f) = run(&dns);
        assert_eq!(s.hosts.len(), 15);
        assert_eq!(f.len(), MAX_HOSTS_RESOLVED);
        // One MX query, then A and AAAA for each of the first ten.
        assert_eq!(dns.queries().len(), 1 + 2 * MAX_HOSTS_RESOLVED);
    }

    #[test]
    fn audit_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        assert_send(audit(&MemoryDns::new(), "contoso.com"));
    }

    proptest::proptest! {
        #[test]
        fn classify_never_panics(host in "\\PC{0,80}") {
            let _ = classify_host(&host);
        }

        #[test]
        fn classify_is_case_insensitive(host in "[a-zA-Z0-9.-]{0,60}") {
            proptest::prop_assert_eq!(classify_host(&host), classify_host(&host.to_ascii_uppercase()));
        }
    }
}
