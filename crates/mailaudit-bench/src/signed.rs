//! The synthetic fleet as a tree of DNSSEC zones, for `mailaudit-bench dnssec`.
//!
//! [`signed_fleet`] splits the one [`Zone`] of a [`SyntheticFleet`] into the zones a signing
//! server ([`mailaudit_lab::dnssec::SignedDns`]) serves: each customer domain is a zone of its
//! own (the names below it, `_dmarc`, `_domainkey`, a self-hosted `mail.` host, go with it), and
//! every other name goes to the zone of its last two labels (`outlook.com`, `mx.microsoft`,
//! `hosted-mail.example`, ...).
//!
//! How each zone is signed follows what a validator meets on a real fleet:
//! - a customer domain is signed ([`Mode::Signed`], a DS in its TLD) when a roll seeded by its
//!   index falls under `signed_percent`, and an insecure delegation ([`Mode::Unsigned`])
//!   otherwise;
//! - `mx.microsoft` (Microsoft 365's DNSSEC endpoint, `<label>.<x>-v1.mx.microsoft`) is signed;
//!   every other provider zone (`outlook.com`, `google.com`, ...) is unsigned, as those are
//!   today.
//!
//! Every MX host in a signed zone publishes DANE TLSA records at `_25._tcp.<host>`: a `3 1 1`,
//! and on every third host a `2 1 1` beside it (the rollover scheme), so that the auditor's
//! TLSA look-ups are part of what is measured. The digests are made up: the benchmark runs no
//! STARTTLS probe, so nothing is matched against a certificate.

use std::collections::{BTreeMap, HashMap, HashSet};

use mailaudit_lab::dnssec::{Mode, SignedZone};
use mailaudit_lab::{LabRecord, Zone};

use crate::fleet::{Rng, SyntheticFleet};

/// The zone of Microsoft 365's DNSSEC-signed MX endpoints.
const SIGNED_PROVIDER_ZONE: &str = "mx.microsoft";

/// A fleet split into zones, each with the way it is signed.
#[derive(Debug)]
pub struct SignedFleet {
    /// Every zone, in name order.
    pub zones: Vec<SignedZone>,
    /// The customer domains, as in the synthetic fleet.
    pub domains: Vec<String>,
    /// The DNSSEC status a validating auditor must give each customer domain's zone:
    /// `secure` or `insecure`.
    pub expected: HashMap<String, &'static str>,
    /// Customer domains that are signed.
    pub signed_domains: usize,
    /// MX hosts (in signed zones) given TLSA records.
    pub tlsa_hosts: usize,
    /// Records left out because the signing server cannot serve them (simulated timeouts and
    /// the like); zero for the synthetic fleet as it is.
    pub dropped: usize,
}

/// Splits `fleet` into signed and unsigned zones (see the [module docs](self)); about
/// `signed_percent` of the customer domains are signed.
pub fn signed_fleet(fleet: &SyntheticFleet, signed_percent: u64) -> SignedFleet {
    let customers: HashSet<&str> = fleet.domains.iter().map(String::as_str).collect();
    let mut modes: BTreeMap<String, Mode> = BTreeMap::new();
    let mut expected = HashMap::with_capacity(fleet.domains.len());
    let mut signed_domains = 0;
    for (i, domain) in fleet.domains.iter().enumerate() {
        // Not the fleet's own generator for index i: a stream of its own, so the signed
        // share does not follow any of the fleet's other choices.
        let signed = Rng::new(0x444e_5353_4543, i as u64).chance(signed_percent);
        signed_domains += usize::from(signed);
        let mode = if signed { Mode::Signed } else { Mode::Unsigned };
        modes.insert(domain.clone(), mode);
        expected.insert(domain.clone(), if signed { "secure" } else { "insecure" });
    }

    // Every customer domain is a zone, even one the fleet gives no record (a few without MX,
    // SPF or DMARC): a registered domain is delegated and has its SOA and NS, so it exists
    // (the plain lab server answers NXDOMAIN for it instead).
    let mut texts: BTreeMap<String, Zone> = fleet
        .domains
        .iter()
        .map(|d| (d.to_ascii_lowercase(), Zone::default()))
        .collect();
    let mut dropped = 0;
    for (owner, records) in fleet.zone.iter() {
        let origin = zone_of(owner, &customers);
        let zone = texts.entry(origin.clone()).or_default();
        for record in records {
            if matches!(
                record,
                LabRecord::Timeout | LabRecord::ServFail | LabRecord::Refused
            ) {
                dropped += 1;
                continue;
            }
            zone.add(owner, record.clone());
        }
        modes.entry(origin).or_insert_with_key(|origin| {
            if origin == SIGNED_PROVIDER_ZONE {
                Mode::Signed
            } else {
                Mode::Unsigned
            }
        });
    }

    // TLSA for each MX host whose zone is signed.
    let mut mx_hosts: Vec<String> = fleet
        .zone
        .iter()
        .flat_map(|(_, records)| records)
        .filter_map(|r| match r {
            LabRecord::Mx(_, host) if !host.is_empty() => Some(host.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    mx_hosts.sort();
    mx_hosts.dedup();
    let mut tlsa_hosts = 0;
    for (n, host) in mx_hosts.iter().enumerate() {
        let origin = zone_of(host, &customers);
        if modes.get(&origin) != Some(&Mode::Signed) {
            continue;
        }
        let owner = format!("_25._tcp.{host}");
        let zone = texts.entry(origin).or_default();
        zone.add(&owner, tlsa(3, host));
        if n % 3 == 0 {
            zone.add(&owner, tlsa(2, host));
        }
        tlsa_hosts += 1;
    }

    let zones = texts
        .into_iter()
        .map(|(origin, zone)| {
            let mode = modes.get(&origin).copied().unwrap_or(Mode::Unsigned);
            SignedZone::new(origin, zone.to_string(), mode)
        })
        .collect();
    SignedFleet {
        zones,
        domains: fleet.domains.clone(),
        expected,
        signed_domains,
        tlsa_hosts,
        dropped,
    }
}

/// The zone that holds `owner`: the customer domain it is or is below, else its last two
/// labels (the whole name if it has fewer).
fn zone_of(owner: &str, customers: &HashSet<&str>) -> String {
    let owner = owner.trim_end_matches('.').to_ascii_lowercase();
    let mut suffix = owner.as_str();
    loop {
        if customers.contains(suffix) {
            return suffix.to_owned();
        }
        match suffix.split_once('.') {
            Some((_, rest)) => suffix = rest,
            None => break,
        }
    }
    let labels: Vec<&str> = owner.split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

/// A TLSA record of usage `usage`, selector 1 (SPKI), matching type 1 (SHA-256), with a
/// made-up digest that depends on the host.
fn tlsa(usage: u8, host: &str) -> LabRecord {
    let mut rng = Rng::new(u64::from(usage), host.bytes().map(u64::from).sum());
    let data = (0..4).flat_map(|_| rng.next().to_be_bytes()).collect();
    LabRecord::Tlsa {
        usage,
        selector: 1,
        matching: 1,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::synthetic_fleet;

    #[test]
    fn every_name_lands_in_exactly_one_zone_and_domains_are_zones() {
        let fleet = synthetic_fleet(400, 7).expect("fleet");
        let signed = signed_fleet(&fleet, 50);
        assert_eq!(signed.dropped, 0);
        assert_eq!(signed.domains, fleet.domains);
        // Half are signed, give or take the roll.
        assert!(
            (150..=250).contains(&signed.signed_domains),
            "{}",
            signed.signed_domains
        );
        assert_eq!(
            signed.expected.values().filter(|s| **s == "secure").count(),
            signed.signed_domains
        );
        let customers: HashSet<&str> = fleet.domains.iter().map(String::as_str).collect();
        for domain in &fleet.domains {
            assert_eq!(zone_of(domain, &customers), *domain);
            assert_eq!(zone_of(&format!("_dmarc.{domain}"), &customers), *domain);
        }
        assert_eq!(
            zone_of("abc.c-v1.mx.microsoft", &customers),
            SIGNED_PROVIDER_ZONE
        );
        assert_eq!(
            zone_of("x.mail.protection.outlook.com", &customers),
            "outlook.com"
        );
        assert_eq!(zone_of("localhost", &customers), "localhost");
        // Zones are distinct and one per customer domain at least, even for a domain the
        // fleet gives no record.
        assert!(signed.zones.len() > fleet.domains.len());
        let origins: HashSet<&str> = signed.zones.iter().map(|z| z.origin.as_str()).collect();
        assert_eq!(origins.len(), signed.zones.len());
        for domain in &fleet.domains {
            assert!(origins.contains(domain.as_str()), "{domain} has no zone");
        }
        // Some MX hosts are in signed zones and got TLSA records.
        assert!(signed.tlsa_hosts > 0);
    }

    /// A few domains of the fleet have no record at all (no MX, SPF or DMARC); they are zones
    /// all the same, so a validating audit finds them and says whether they are signed.
    #[test]
    fn a_domain_without_records_is_still_a_zone() {
        let fleet = synthetic_fleet(2000, crate::fleet::DEFAULT_SEED).expect("fleet");
        let customers: HashSet<&str> = fleet.domains.iter().map(String::as_str).collect();
        let named: HashSet<String> = fleet
            .zone
            .iter()
            .map(|(owner, _)| zone_of(owner, &customers))
            .collect();
        let recordless: Vec<&String> = fleet
            .domains
            .iter()
            .filter(|d| !named.contains(*d))
            .collect();
        assert!(
            !recordless.is_empty(),
            "the fleet has domains without a record"
        );
        let signed = signed_fleet(&fleet, 50);
        for domain in recordless {
            assert!(
                signed.zones.iter().any(|z| z.origin == *domain),
                "{domain} has no zone"
            );
        }
    }

    /// The zones are ones the signing server takes: every owner inside its zone, nothing it
    /// cannot sign, MX hosts on loopback; and it serves them all, with the root and the TLDs.
    #[tokio::test]
    async fn the_signing_server_serves_the_split_fleet() {
        let fleet = synthetic_fleet(60, 3).expect("fleet");
        let signed = signed_fleet(&fleet, 50);
        let dns = mailaudit_lab::SignedDns::start(&signed.zones)
            .await
            .expect("the signing server takes the zones");
        let served: HashSet<&str> = dns.zones().iter().map(|(z, _)| z.as_str()).collect();
        for domain in &signed.domains {
            assert!(served.contains(format!("{domain}.").as_str()), "{domain}");
        }
        for zone in [".", "example.", "test.", "microsoft.", "mx.microsoft."] {
            assert!(served.contains(zone), "{zone}");
        }
        let modes: HashMap<&str, Mode> =
            dns.zones().iter().map(|(z, m)| (z.as_str(), *m)).collect();
        assert_eq!(modes["mx.microsoft."], Mode::Signed);
        assert_eq!(modes["outlook.com."], Mode::Unsigned);
        for domain in &signed.domains {
            let expected = if signed.expected[domain] == "secure" {
                Mode::Signed
            } else {
                Mode::Unsigned
            };
            assert_eq!(modes[format!("{domain}.").as_str()], expected, "{domain}");
        }
        dns.shutdown().await;
    }

    #[test]
    fn no_domain_is_signed_at_zero_percent_and_all_at_a_hundred() {
        let fleet = synthetic_fleet(100, 1).expect("fleet");
        assert_eq!(signed_fleet(&fleet, 0).signed_domains, 0);
        assert_eq!(signed_fleet(&fleet, 100).signed_domains, 100);
    }

    #[test]
    fn tlsa_digests_are_sha256_sized_and_differ_by_host() {
        let (a, b) = (tlsa(3, "mx1.example"), tlsa(3, "mx2.example"));
        let LabRecord::Tlsa { data, .. } = &a else {
            panic!("not TLSA")
        };
        assert_eq!(data.len(), 32);
        assert_ne!(a, b);
    }
}
