//! The built-in sample fleet that `mailaudit audit --sample` audits.
//!
//! The data lives in `testdata/zones/sample-fleet.zone`, whose header comments say what each
//! domain demonstrates. It is embedded with `include_str!`, so an installed binary needs no data
//! files. The domain list comes from the same file: its `# fleet: <domain> ...` comment lines.

use crate::Zone;

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
    use crate::LabRecord;

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
    fn fleet_domains_come_from_comment_lines() {
        let text =
            "# fleet: A.example  first\n#fleet: no.example\n  # fleet: b.example\nx A 192.0.2.1";
        assert_eq!(fleet_domains(text), ["a.example", "b.example"]);
    }
}
