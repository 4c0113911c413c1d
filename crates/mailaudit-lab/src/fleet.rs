//! The built-in sample fleet that `mailaudit audit --sample` and `mailaudit demo` audit.
//!
//! The data lives in `testdata/zones/sample-fleet.zone`, whose header comments say what each
//! domain demonstrates. It is embedded with `include_str!`, so an installed binary needs no data
//! files. The domain list comes from the same file: its `# fleet: <domain> ...` comment lines.
//!
//! [`sample_fleet_smtp`] gives the SMTP endpoints the demo runs for it ([`crate::LabSmtp`]):
//! one per mail host, on the host's loopback addresses from the zone, answering the Direct
//! Send probe as the table of [`sample_relay_behaviour`] says.

use std::net::IpAddr;

use crate::smtp::{Behaviour, SmtpEndpoint};
use crate::{LabRecord, Zone};

/// What the sample fleet's third-party gateway (the Mimecast MX hosts of
/// `relecloud-manufacturing.example`) answers to a spoofed sender: an anti-spoofing refusal,
/// which the probe reads as blocked.
pub const SAMPLE_GATEWAY_REPLY: &str =
    "550 5.7.1 Anti-Spoofing policy - Inbound not allowed (mailaudit lab gateway)";

/// Sample domains behind a third-party gateway, with their tenant's own Microsoft 365 endpoint
/// (which the MX does not name, so an inventory must give it for the relay probe to test it).
pub const SAMPLE_GATEWAY_TENANTS: &[(&str, &str)] = &[(
    "relecloud-manufacturing.example",
    "relecloudmanufacturing-example.mail.protection.outlook.com",
)];

/// How the Microsoft 365 endpoint of a sample domain answers a Direct Send probe: blocked
/// (`550 5.7.68`) for the hardened tenants (`contoso-legal.example`,
/// `graphic-design-institute.example`, `coho-winery.example`), unknown recipient (`550 5.4.1`,
/// so the probe is inconclusive) for `trey-research.example`, open for every other domain.
pub fn sample_relay_behaviour(domain: &str) -> Behaviour {
    match domain {
        "contoso-legal.example" | "graphic-design-institute.example" | "coho-winery.example" => {
            Behaviour::Blocked
        }
        "trey-research.example" => Behaviour::UnknownRecipient,
        _ => Behaviour::Open,
    }
}

/// The SMTP endpoints of the sample fleet: every MX host of a fleet domain (and every tenant
/// endpoint of [`SAMPLE_GATEWAY_TENANTS`]), on the host's A and AAAA addresses in the zone (all
/// loopback), receiving mail for the domains whose MX it is, answering as
/// [`sample_relay_behaviour`] says; the gateway hosts (`*.mimecast.com`) answer with
/// [`SAMPLE_GATEWAY_REPLY`].
pub fn sample_fleet_smtp() -> Vec<SmtpEndpoint> {
    let (zone, domains) = sample_fleet();
    let mut out: Vec<SmtpEndpoint> = Vec::new();
    let mut add = |host: &str, domain: &str, behaviour: Behaviour| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(e) = out.iter_mut().find(|e| e.host == host) {
            if !e.domains.iter().any(|d| d == domain) {
                e.domains.push(domain.to_string());
            }
            return;
        }
        let addrs: Vec<IpAddr> = zone
            .get(&host)
            .iter()
            .filter_map(|r| match r {
                LabRecord::A(a) => Some(IpAddr::V4(*a)),
                LabRecord::Aaaa(a) => Some(IpAddr::V6(*a)),
                _ => None,
            })
            .collect();
        if addrs.is_empty() {
            return;
        }
        out.push(SmtpEndpoint {
            host,
            addrs,
            domains: vec![domain.to_string()],
            behaviour,
        });
    };
    for domain in &domains {
        for record in zone.get(domain) {
            if let LabRecord::Mx(_, host) = record
                && !host.is_empty()
                && host != "."
            {
                let behaviour = if host.ends_with(".mimecast.com") {
                    Behaviour::Reject(SAMPLE_GATEWAY_REPLY.to_string())
                } else {
                    sample_relay_behaviour(domain)
                };
                add(host, domain, behaviour);
            }
        }
    }
    for (domain, host) in SAMPLE_GATEWAY_TENANTS {
        add(host, domain, sample_relay_behaviour(domain));
    }
    out
}

/// The text of `testdata/zones/sample-fleet.zone`.
pub const SAMPLE_FLEET_ZONE: &str = include_str!("../../../testdata/zones/sample-fleet.zone");

/// The sample fleet: the zone that serves it, and its customer domains in the order the zone
/// file lists them.
///
/// The embedded file is checked by this crate's tests; should it ever fail to parse, the zone
/// returned is empty rather than a panic (every domain then reads as NXDOMAIN).
pub fn sample_fleet() -> (Zone, Vec<String>) {
    let zone = Zone::parse(SAMPLE_FLEET_ZONE).unwrap_or_default();
    (zone, fleet_domains(SAMPLE_FLEET_ZONE))
}

/// The domains named by `# fleet: <domain>` comment lines.
fn fleet_domains(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("# fleet:"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_fleet_parses_and_is_valid() {
        let zone = Zone::parse(SAMPLE_FLEET_ZONE).expect("the sample fleet zone parses");
        zone.validate()
            .expect("every name in the sample fleet is valid");
        let (served, domains) = sample_fleet();
        assert_eq!(served, zone);
        assert_eq!(domains.len(), 15);
        for domain in &domains {
            assert!(domain.ends_with(".example"), "{domain}");
            assert!(
                zone.get(domain)
                    .iter()
                    .any(|r| matches!(r, LabRecord::Mx(..))),
                "{domain} has an MX record"
            );
        }
    }

    #[test]
    fn every_mx_host_resolves() {
        let (zone, _) = sample_fleet();
        for (name, records) in zone.iter() {
            for record in records {
                if let LabRecord::Mx(_, host) = record {
                    if host.is_empty() {
                        continue;
                    }
                    assert!(
                        zone.get(host).iter().any(|r| matches!(r, LabRecord::A(_))),
                        "MX host {host} of {name} has an A record"
                    );
                }
            }
        }
    }

    #[test]
    fn txt_strings_fit_character_strings() {
        let (zone, _) = sample_fleet();
        for (name, records) in zone.iter() {
            for record in records {
                if let LabRecord::Txt(strings) = record {
                    for s in strings {
                        assert!(s.len() <= 255, "{name}: string of {} octets", s.len());
                    }
                }
            }
        }
    }

    /// The TXT record at `name` starting with `prefix`, strings joined.
    fn txt(zone: &Zone, name: &str, prefix: &str) -> Option<String> {
        zone.get(name).iter().find_map(|r| match r {
            LabRecord::Txt(s) if s.concat().starts_with(prefix) => Some(s.concat()),
            _ => None,
        })
    }

    /// DNS-querying terms of the SPF policy at `name`, nested includes counted (RFC 7208
    /// section 4.6.4); enough for the sample data, not an SPF evaluator.
    fn spf_lookups(zone: &Zone, name: &str) -> usize {
        let Some(record) = txt(zone, name, "v=spf1 ") else {
            return 0;
        };
        record
            .split_whitespace()
            .map(|term| term.trim_start_matches(['+', '-', '~', '?']))
            .map(|term| {
                if let Some(target) = term.strip_prefix("include:") {
                    1 + spf_lookups(zone, target)
                } else if ["a", "mx", "ptr"].contains(&term)
                    || ["a:", "mx:", "ptr:", "exists:", "redirect="]
                        .iter()
                        .any(|p| term.starts_with(p))
                {
                    1
                } else {
                    0
                }
            })
            .sum()
    }

    #[test]
    fn documented_spf_lookup_counts_hold() {
        let (zone, _) = sample_fleet();
        for (name, lookups) in [
            ("woodgrove-accounting.example", 14),
            ("_spf.mailer-one.example", 2),
            ("_spf.crm-cloud.example", 3),
            ("spf.payroll-hub.example", 4),
            ("contoso-legal.example", 1),
            ("relecloud-manufacturing.example", 2),
        ] {
            assert_eq!(spf_lookups(&zone, name), lookups, "{name}");
        }
    }

    #[test]
    fn documented_dkim_key_sizes_hold() {
        let (zone, _) = sample_fleet();
        // The base64 of an RSA SubjectPublicKeyInfo is 216 characters for 1024 bits and 392
        // for 2048 bits.
        for (target, len) in [
            (
                "selector1-contosolegal-example._domainkey.contosolegal.onmicrosoft.com",
                392,
            ),
            (
                "selector1-prosewareinsurance-example._domainkey.prosewareinsurance.onmicrosoft.com",
                216,
            ),
            (
                "selector1-graphicdesigninstitute-example._domainkey.graphicdesigninst.c-v1.dkim.mail.microsoft",
                392,
            ),
        ] {
            let record = txt(&zone, target, "v=DKIM1;").expect(target);
            let p = record.split("p=").nth(1).unwrap_or_default();
            assert_eq!(p.len(), len, "{target}");
        }
        assert!(
            txt(
                &zone,
                "selector1-tailspinrealty-example._domainkey.tailspinrealty.onmicrosoft.com",
                ""
            )
            .is_none()
        );
    }

    #[test]
    fn every_mail_host_of_the_fleet_has_a_loopback_smtp_endpoint() {
        let (zone, domains) = sample_fleet();
        let endpoints = sample_fleet_smtp();
        for domain in &domains {
            for record in zone.get(domain) {
                if let LabRecord::Mx(_, host) = record
                    && !host.is_empty()
                {
                    let e = endpoints
                        .iter()
                        .find(|e| e.host == *host)
                        .unwrap_or_else(|| panic!("no endpoint for {host}"));
                    assert!(e.domains.contains(domain), "{host} receives for {domain}");
                }
            }
        }
        let mut seen = Vec::new();
        for e in &endpoints {
            assert!(!e.addrs.is_empty(), "{}", e.host);
            for a in &e.addrs {
                assert!(a.is_loopback(), "{} at {a}", e.host);
                assert!(!seen.contains(a), "{a} is given twice");
                seen.push(*a);
            }
        }
        let behaviour = |host: &str| {
            endpoints
                .iter()
                .find(|e| e.host == host)
                .map(|e| e.behaviour.clone())
        };
        assert_eq!(
            behaviour("contosolegal-example.o-v1.mx.microsoft"),
            Some(Behaviour::Blocked)
        );
        assert_eq!(
            behaviour("fabrikamdental-example.mail.protection.outlook.com"),
            Some(Behaviour::Open)
        );
        assert_eq!(
            behaviour("eu-smtp-inbound-2.mimecast.com"),
            Some(Behaviour::Reject(SAMPLE_GATEWAY_REPLY.into()))
        );
        // The tenant endpoint behind the gateway is served too, and is open.
        assert_eq!(
            behaviour(SAMPLE_GATEWAY_TENANTS[0].1),
            Some(Behaviour::Open)
        );
        // 13 Microsoft 365 MX hosts (no MX for the parked domain, two gateway hosts for
        // relecloud), two gateway hosts and one tenant endpoint.
        assert_eq!(endpoints.len(), 16);
    }

    #[test]
    fn fleet_domains_come_from_comment_lines() {
        let text =
            "# fleet: A.example  first\n#fleet: no.example\n  # fleet: b.example\nx A 192.0.2.1";
        assert_eq!(fleet_domains(text), ["a.example", "b.example"]);
    }
}
