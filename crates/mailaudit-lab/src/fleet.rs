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

    #[test]
    fn fleet_domains_come_from_comment_lines() {
        let text =
            "# fleet: A.example  first\n#fleet: no.example\n  # fleet: b.example\nx A 192.0.2.1";
        assert_eq!(fleet_domains(text), ["a.example", "b.example"]);
    }
}
