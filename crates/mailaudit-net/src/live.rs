//! Checks that need live connections beyond DNS, run after a domain's DNS audit: the Direct
//! Send relay test and the STARTTLS/TLS check of each MX ([`crate::smtp`]), and the MTA-STS
//! policy fetched over HTTPS ([`crate::https`]).
//!
//! Which host the relay test probes (docs/m365.md): the tenant's Microsoft 365 endpoint when the MX
//! names it; behind a third-party gateway, the gateway's MX **and** the Microsoft endpoint when
//! it is known, because attackers skip the gateway; otherwise the most preferred MX. The report
//! says which host was tested and which answer decided.
//!
//! DANE (RFC 7672 §3): when the report has a `dnssec` section (validation on) and an MX host
//! with usable TLSA records is among the hosts the relay test's STARTTLS probes reached, the
//! chain it presented is matched against those records ([`dane::check_chain`]):
//! DANE-TLSA-MISMATCH when none matches. Those hosts are the relay test's targets (above) and
//! then the other MX hosts in MX order, [`RelayOptions::tls_hosts`] hosts in all; an MX host
//! beyond them, or one whose STARTTLS handshake failed, gets no verdict (`chain_matches` stays
//! absent). Without `--relay-test` nothing is probed and no chain is matched.

use std::net::{IpAddr, SocketAddr};

use mailaudit_core::audit::{DomainReport, RelaySection};
use mailaudit_core::dane::{self, ChainCert};
use mailaudit_core::dns::DnsSource;
use mailaudit_core::finding::Finding;
use mailaudit_core::smtp::{self, ProbeConfig, ProbeReport, Verdict};

use crate::https::{self, HttpsOptions};
use crate::smtp::{Politeness, SmtpOptions, probe_with_chain};

/// What to run beyond DNS.
#[derive(Clone, Debug, Default)]
pub struct LiveOptions {
    /// The Direct Send relay test and the STARTTLS/TLS checks (`--relay-test`).
    pub relay: Option<RelayOptions>,
    /// Fetch the MTA-STS policy of domains that publish an MTA-STS record.
    pub https: Option<HttpsOptions>,
}

/// How the relay test runs.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// Timeouts, port and trust roots.
    pub smtp: SmtpOptions,
    /// The EHLO name: a real host name of the probing machine.
    pub helo: String,
    /// The envelope sender: a full address, or a local part completed with `@<domain>`.
    /// Default: the recipient.
    pub from: Option<String>,
    /// The envelope recipient: a full address, or a local part completed with `@<domain>`.
    /// Default: `postmaster@<domain>` (RFC 5321 §4.5.1 requires it to exist).
    pub to: Option<String>,
    /// Send one labelled test message after an accepted RCPT (opt-in).
    pub send_test_message: bool,
    /// Who runs the test, named in the test message.
    pub operator: String,
    /// Connection limits shared by the whole run.
    pub politeness: Politeness,
    /// Probe this host instead of choosing from the MX set (`relay-test --mx`).
    pub mx: Option<String>,
    /// The tenant's Microsoft 365 endpoint, when known from elsewhere (tenant data,
    /// `relay-test --m365-endpoint`): probed too when the MX is a gateway.
    pub m365_endpoint: Option<String>,
    /// At most this many MX hosts get the STARTTLS/TLS check.
    pub tls_hosts: usize,
    /// Per-domain settings from the inventory, overriding the ones above for that domain.
    pub per_domain: std::collections::HashMap<String, RelayOverride>,
}

/// A domain's own relay-test settings (from the inventory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayOverride {
    /// The envelope sender.
    pub from: Option<String>,
    /// The recipient.
    pub to: Option<String>,
    /// The tenant's Microsoft 365 endpoint.
    pub m365_endpoint: Option<String>,
}

/// Runs the live checks `opts` asks for on a report made by the DNS audit, adding their
/// findings and sections to it. An invalid name or a domain that does not exist
/// (DOMAIN-NOT-FOUND) gets none: there is nothing to connect to.
pub async fn enrich<D: DnsSource>(dns: &D, report: &mut DomainReport, opts: &LiveOptions) {
    if report.error.is_some() || report.not_found() {
        return;
    }
    let domain = report.domain.clone();
    let mx_hosts: Vec<String> = report
        .mx
        .iter()
        .filter(|m| m.host != ".")
        .map(|m| m.host.clone())
        .collect();
    if let Some(https_opts) = &opts.https
        && report.mta_sts.parsed.is_some()
    {
        let (policy, findings) = https::check(dns, &domain, &mx_hosts, https_opts).await;
        report.mta_sts.policy = policy;
        report.add_findings(findings);
    }
    if let Some(relay) = &opts.relay {
        let own;
        let relay = match relay.per_domain.get(&domain) {
            Some(o) => {
                own = RelayOptions {
                    from: o.from.clone().or_else(|| relay.from.clone()),
                    to: o.to.clone().or_else(|| relay.to.clone()),
                    m365_endpoint: o
                        .m365_endpoint
                        .clone()
                        .or_else(|| relay.m365_endpoint.clone()),
                    ..relay.clone()
                };
                &own
            }
            None => relay,
        };
        let (section, mut findings, chains) = relay_test_with_chains(dns, report, relay).await;
        report.relay = section;
        if let Some(dnssec) = report.dnssec.as_mut() {
            for (host, chain) in &chains {
                if chain.is_empty() {
                    continue;
                }
                findings.extend(dane::check_chain(dnssec, host, chain));
            }
        }
        report.add_findings(findings);
    }
}

/// A target of the relay test and why it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    host: String,
    why: &'static str,
}

fn targets(report: &DomainReport, opts: &RelayOptions) -> Vec<Target> {
    if let Some(host) = &opts.mx {
        return vec![Target {
            host: host.clone(),
            why: "given with --mx",
        }];
    }
    let first_mx = report
        .mx
        .iter()
        .find(|m| m.host != ".")
        .map(|m| m.host.clone());
    let mut out = Vec::new();
    if let Some(endpoint) = &report.m365_endpoint {
        out.push(Target {
            host: endpoint.clone(),
            why: "the Microsoft 365 endpoint in the MX",
        });
    } else if report.gateway.is_some() {
        if let Some(host) = first_mx {
            out.push(Target {
                host,
                why: "the gateway MX",
            });
        }
        if let Some(endpoint) = &opts.m365_endpoint {
            out.push(Target {
                host: endpoint.clone(),
                why: "the tenant's Microsoft 365 endpoint behind the gateway",
            });
        }
    } else if let Some(host) = first_mx {
        out.push(Target {
            host,
            why: "the most preferred MX",
        });
    }
    out
}

fn address(local_or_full: Option<&str>, domain: &str) -> Option<String> {
    local_or_full.map(|a| {
        if a.contains('@') {
            a.to_string()
        } else {
            format!("{a}@{domain}")
        }
    })
}

async fn resolve<D: DnsSource>(dns: &D, host: &str) -> Result<Vec<IpAddr>, String> {
    let v4 = dns.a(host).await;
    let mut addrs: Vec<IpAddr> = v4
        .as_ref()
        .map(|v| v.iter().copied().map(IpAddr::V4).collect())
        .unwrap_or_default();
    if addrs.is_empty() {
        let v6 = dns.aaaa(host).await;
        addrs.extend(
            v6.as_ref()
                .map(|v| v.iter().copied().map(IpAddr::V6).collect::<Vec<_>>())
                .unwrap_or_default(),
        );
        if addrs.is_empty() {
            return Err(match (v4, v6) {
                (Err(e), _) | (_, Err(e)) => format!("looking up {host} failed: {e}"),
                _ => format!("{host} has no A or AAAA record"),
            });
        }
    }
    Ok(addrs)
}

/// A report for a probe that never connected (the host does not resolve).
fn unresolved(host: &str, port: u16, relay: bool, reason: String) -> ProbeReport {
    ProbeReport {
        host: host.to_string(),
        addr: None,
        port,
        verdict: Verdict::Inconclusive,
        stage: smtp::Stage::Connect,
        reply: None,
        reason,
        starttls_offered: None,
        tls: None,
        data_sent: false,
        relay,
        transcript: Vec::new(),
    }
}

/// The probe of `host`, and the chain it presented after STARTTLS (empty without TLS).
async fn probe_host<D: DnsSource>(
    dns: &D,
    host: &str,
    cfg: &ProbeConfig,
    opts: &RelayOptions,
) -> (ProbeReport, Vec<ChainCert>) {
    let port = opts.smtp.port;
    match resolve(dns, host).await {
        Err(reason) => (unresolved(host, port, cfg.relay, reason), Vec::new()),
        Ok(addrs) => {
            let addr = SocketAddr::new(addrs[0], port);
            opts.politeness
                .run(host, probe_with_chain(addr, host, cfg, &opts.smtp))
                .await
        }
    }
}

/// The Direct Send relay test of one domain, and the STARTTLS/TLS check of its MX hosts.
/// A domain that does not exist (DOMAIN-NOT-FOUND) is not probed, even with `--mx`: no
/// mailbox of it can exist.
pub async fn relay_test<D: DnsSource>(
    dns: &D,
    report: &DomainReport,
    opts: &RelayOptions,
) -> (RelaySection, Vec<Finding>) {
    let (section, findings, _) = relay_test_with_chains(dns, report, opts).await;
    (section, findings)
}

/// Each probed host and the chain it presented after STARTTLS.
type Chains = Vec<(String, Vec<ChainCert>)>;

/// [`relay_test`], also returning the chain each probed host presented.
async fn relay_test_with_chains<D: DnsSource>(
    dns: &D,
    report: &DomainReport,
    opts: &RelayOptions,
) -> (RelaySection, Vec<Finding>, Chains) {
    let mut chains = Chains::new();
    let domain = report.domain.as_str();
    let mut section = RelaySection::default();
    let mut findings = Vec::new();
    if report.not_found() {
        section.reason =
            Some("the domain does not exist (NXDOMAIN, DOMAIN-NOT-FOUND): nothing to test".into());
        return (section, findings, chains);
    }
    let targets = targets(report, opts);
    if targets.is_empty() {
        section.reason = Some(if report.mx.iter().any(|m| m.host == ".") {
            "null MX: the domain receives no mail".to_string()
        } else {
            "no MX host to test".to_string()
        });
        return (section, findings, chains);
    }
    let to = address(opts.to.as_deref(), domain).unwrap_or_else(|| format!("postmaster@{domain}"));
    let from = address(opts.from.as_deref(), domain).unwrap_or_else(|| to.clone());
    let cfg = ProbeConfig {
        helo: opts.helo.clone(),
        mail_from: from,
        rcpt_to: to,
        send_test_message: opts.send_test_message,
        operator: opts.operator.clone(),
        relay: true,
    };
    for t in &targets {
        let (mut r, chain) = probe_host(dns, &t.host, &cfg, opts).await;
        chains.push((t.host.clone(), chain));
        r.transcript.insert(
            0,
            smtp::TranscriptLine::new(smtp::Dir::Note, format!("probing {} ({})", t.host, t.why)),
        );
        section.probes.push(r);
    }
    // The verdict: open if any tested endpoint accepted; blocked if one refused and none
    // accepted; inconclusive otherwise.
    let decisive = [Verdict::Open, Verdict::Blocked, Verdict::Inconclusive]
        .into_iter()
        .find_map(|v| section.probes.iter().find(|p| p.verdict == v));
    if let Some(p) = decisive {
        section.verdict = p.verdict.as_str().to_string();
        section.reply = p.reply.clone();
        section.target = Some(p.host.clone());
        section.reason = Some(p.reason.clone());
    }
    // STARTTLS/TLS of the other MX hosts (the relay probes already checked theirs).
    let tls_cfg = ProbeConfig {
        relay: false,
        ..cfg.clone()
    };
    let probed: Vec<String> = section
        .probes
        .iter()
        .map(|p| p.host.to_ascii_lowercase())
        .collect();
    let others: Vec<String> = report
        .mx
        .iter()
        .filter(|m| m.host != "." && !probed.contains(&m.host.to_ascii_lowercase()))
        .map(|m| m.host.clone())
        .take(opts.tls_hosts.saturating_sub(probed.len()))
        .collect();
    for host in others {
        let (r, chain) = probe_host(dns, &host, &tls_cfg, opts).await;
        chains.push((host, chain));
        section.probes.push(r);
    }
    for p in &section.probes {
        findings.extend(smtp::findings(domain, p));
    }
    (section, findings, chains)
}
