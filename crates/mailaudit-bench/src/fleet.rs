//! A synthetic fleet of customer domains, shaped like a managed-service provider's.
//!
//! [`synthetic_fleet`] builds the zone the lab server answers and the list of domains to
//! audit. Every choice for domain `i` comes from a small generator seeded with `(seed, i)`, so
//! the same `(n, seed)` always gives the same fleet, and the first `m` domains of a fleet of
//! `n` are the fleet of `m`.
//!
//! The mix follows what such fleets look like: about 70% Microsoft 365 (MX
//! `<label>.mail.protection.outlook.com`, SPF including `spf.protection.outlook.com` plus up to
//! three SaaS senders from a shared pool, DKIM `selector1`/`selector2` CNAMEs to the tenant),
//! 10% Google Workspace, 10% other providers or gateways (Mimecast, a hosted provider,
//! self-hosted), 5% without MX and 5% parked with a null MX (RFC 7505). DMARC is published on
//! about 60%, MTA-STS and TLS-RPT on a few. The shared includes, `spf.protection.outlook.com`
//! and the DMARC report vendor are looked up by many domains, so an auditor's cache matters as
//! it does on a real fleet.
//!
//! Customer names are under the reserved `.example` and `.test` TLDs (RFC 2606); the provider
//! names (`*.outlook.com`, `*.google.com`, `*.mimecast.com`, `*.onmicrosoft.com`) are real
//! public names answered here only by the lab. Host addresses (A records) are loopback
//! addresses (127.0.0.0/8), so nothing that follows them leaves the machine; SPF `ip4:`/`ip6:`
//! terms use the documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (RFC 5737)
//! and 2001:db8::/32 (RFC 3849).

use std::net::Ipv4Addr;

use mailaudit_lab::{LabRecord, Zone, sample_fleet};

/// The seed [`synthetic_fleet`] uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 0x6d61_696c_6175_6469; // "mailaudi"

/// The DKIM key record published at every synthetic selector with a key: the 2048-bit key of
/// `contoso-legal.example`'s selector1 in the sample fleet.
const SAMPLE_KEY_NAME: &str =
    "selector1-contosolegal-example._domainkey.contosolegal.onmicrosoft.com";

/// Microsoft 365's SPF record, taken from the sample fleet.
const M365_SPF: &str = "spf.protection.outlook.com";

/// The external DMARC report vendor (as in the sample fleet).
const DMARC_VENDOR: &str = "reports.dmarc-vendor.example";

/// A synthetic fleet: the zone that serves it and its customer domains, in order.
#[derive(Clone, Debug)]
pub struct SyntheticFleet {
    /// Every record: the customer domains and the shared infrastructure.
    pub zone: Zone,
    /// The customer domains, distinct, in index order.
    pub domains: Vec<String>,
    /// How many domains fell in each category.
    pub mix: Mix,
}

/// How a fleet's domains are made up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mix {
    /// Microsoft 365 MX.
    pub microsoft365: usize,
    /// Google Workspace MX.
    pub google: usize,
    /// Mimecast, a hosted provider, or self-hosted MX.
    pub other: usize,
    /// No MX record at all.
    pub no_mx: usize,
    /// A null MX (parked).
    pub null_mx: usize,
    /// A DMARC record is published (well-formed or not).
    pub dmarc: usize,
    /// At least one DKIM key is published.
    pub dkim_key: usize,
    /// An MTA-STS record is published.
    pub mta_sts: usize,
    /// A TLS-RPT record is published.
    pub tls_rpt: usize,
}

/// The kind of mail service a domain uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Microsoft365,
    Google,
    Other,
    NoMx,
    NullMx,
}

/// SplitMix64: tiny, fast, and good enough to pick a fleet's shape deterministically.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, index: u64) -> Self {
        let mut rng = Rng(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.next();
        rng
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A percentage roll: `0..100`.
    pub(crate) fn percent(&mut self) -> u64 {
        self.below(100)
    }

    /// True with probability `p` percent.
    pub(crate) fn chance(&mut self, p: u64) -> bool {
        self.percent() < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        &items[i.min(items.len().saturating_sub(1))]
    }
}

const FIRST_WORDS: &[&str] = &[
    "alpine",
    "adatum",
    "bellows",
    "blue-yonder",
    "coho",
    "contoso",
    "fabrikam",
    "fourth-coffee",
    "graphic",
    "humongous",
    "litware",
    "lucerne",
    "margie",
    "northwind",
    "proseware",
    "relecloud",
    "southridge",
    "tailspin",
    "trey",
    "wide-world",
    "wingtip",
    "woodgrove",
    "datum",
    "consolidated",
];

const SECOND_WORDS: &[&str] = &[
    "legal",
    "dental",
    "logistics",
    "realty",
    "clinic",
    "accounting",
    "engineering",
    "insurance",
    "travel",
    "manufacturing",
    "design",
    "airlines",
    "research",
    "publishing",
    "winery",
    "bank",
    "school",
    "foods",
    "motors",
    "health",
    "studio",
    "partners",
    "builders",
    "consulting",
];

/// The shared SaaS senders: the include name and the records that serve it (owner, TXT).
/// Lookup cost of each include, counting the include itself, is 1 to 4.
const SAAS: &[(&str, &[(&str, &str)])] = &[
    (
        "_spf.mailer-one.example",
        &[
            (
                "_spf.mailer-one.example",
                "v=spf1 include:_spf1.mailer-one.example include:_spf2.mailer-one.example ~all",
            ),
            ("_spf1.mailer-one.example", "v=spf1 ip4:203.0.113.0/26 ~all"),
            (
                "_spf2.mailer-one.example",
                "v=spf1 ip4:203.0.113.64/26 ip6:2001:db8:100::/48 ~all",
            ),
        ],
    ),
    (
        "_spf.crm-cloud.example",
        &[
            (
                "_spf.crm-cloud.example",
                "v=spf1 a:mta1.crm-cloud.example a:mta2.crm-cloud.example include:_netblocks.crm-cloud.example ~all",
            ),
            (
                "_netblocks.crm-cloud.example",
                "v=spf1 ip4:203.0.113.128/27 ~all",
            ),
        ],
    ),
    (
        "spf.payroll-hub.example",
        &[(
            "spf.payroll-hub.example",
            "v=spf1 mx:payroll-hub.example include:_spf.mailer-one.example -all",
        )],
    ),
    (
        "mail.helpdesk-saas.example",
        &[(
            "mail.helpdesk-saas.example",
            "v=spf1 ip4:203.0.113.192/28 -all",
        )],
    ),
    (
        "spf.newsletter-hub.example",
        &[(
            "spf.newsletter-hub.example",
            "v=spf1 ip4:198.51.100.128/26 ip6:2001:db8:200::/48 ~all",
        )],
    ),
    (
        "_spf.invoice-flow.example",
        &[(
            "_spf.invoice-flow.example",
            "v=spf1 ip4:198.51.100.192/27 -all",
        )],
    ),
    (
        "spf.esign-cloud.example",
        &[
            (
                "spf.esign-cloud.example",
                "v=spf1 include:_ip4.esign-cloud.example include:_ip6.esign-cloud.example -all",
            ),
            (
                "_ip4.esign-cloud.example",
                "v=spf1 ip4:203.0.113.208/28 -all",
            ),
            (
                "_ip6.esign-cloud.example",
                "v=spf1 ip6:2001:db8:300::/48 -all",
            ),
        ],
    ),
    (
        "_spf.ticket-desk.example",
        &[(
            "_spf.ticket-desk.example",
            "v=spf1 ip4:203.0.113.224/28 ~all",
        )],
    ),
    (
        "spf.survey-sprout.example",
        &[(
            "spf.survey-sprout.example",
            "v=spf1 ip4:198.51.100.224/28 ?all",
        )],
    ),
    (
        "_spf.webinar-live.example",
        &[(
            "_spf.webinar-live.example",
            "v=spf1 ip4:198.51.100.240/29 ~all",
        )],
    ),
    (
        "spf.hr-portal.example",
        &[(
            "spf.hr-portal.example",
            "v=spf1 a:smtp.hr-portal.example ip4:198.51.100.248/29 -all",
        )],
    ),
    (
        "_spf.webshop-cart.example",
        &[(
            "_spf.webshop-cart.example",
            "v=spf1 ip4:203.0.113.240/29 ~all",
        )],
    ),
    (
        "spf.event-pass.example",
        &[("spf.event-pass.example", "v=spf1 ip4:203.0.113.248/30 ~all")],
    ),
    (
        "_spf.booking-now.example",
        &[(
            "_spf.booking-now.example",
            "v=spf1 include:_spf.mailer-one.example ~all",
        )],
    ),
    (
        "spf.status-pager.example",
        &[(
            "spf.status-pager.example",
            "v=spf1 ip4:203.0.113.252/30 -all",
        )],
    ),
    (
        "_spf.marketing-pulse.example",
        &[
            (
                "_spf.marketing-pulse.example",
                "v=spf1 include:_a.marketing-pulse.example include:_b.marketing-pulse.example ~all",
            ),
            (
                "_a.marketing-pulse.example",
                "v=spf1 ip4:198.51.100.32/27 ~all",
            ),
            (
                "_b.marketing-pulse.example",
                "v=spf1 ip4:198.51.100.64/27 ~all",
            ),
        ],
    ),
    (
        "spf.donor-base.example",
        &[("spf.donor-base.example", "v=spf1 ip4:198.51.100.96/28 ~all")],
    ),
    (
        "_spf.alerting-ops.example",
        &[(
            "_spf.alerting-ops.example",
            "v=spf1 ip4:198.51.100.112/29 -all",
        )],
    ),
    (
        "spf.doc-share.example",
        &[("spf.doc-share.example", "v=spf1 ip6:2001:db8:400::/48 -all")],
    ),
    (
        "_spf.fax-relay.example",
        &[(
            "_spf.fax-relay.example",
            "v=spf1 ip4:198.51.100.120/30 ~all",
        )],
    ),
];

/// Google's MX hosts (five-record form) and the single-record form.
const GOOGLE_MX: &[(u16, &str)] = &[
    (1, "aspmx.l.google.com"),
    (5, "alt1.aspmx.l.google.com"),
    (5, "alt2.aspmx.l.google.com"),
    (10, "alt3.aspmx.l.google.com"),
    (10, "alt4.aspmx.l.google.com"),
];

/// Builds a fleet of `n` distinct domains from `seed`.
///
/// Fails only if the sample fleet (where the DKIM key and Microsoft's and Mimecast's SPF
/// records come from) no longer has them.
pub fn synthetic_fleet(n: usize, seed: u64) -> Result<SyntheticFleet, String> {
    let (sample, _) = sample_fleet();
    let key = sample
        .get(SAMPLE_KEY_NAME)
        .iter()
        .find(|r| matches!(r, LabRecord::Txt(_)))
        .cloned()
        .ok_or_else(|| format!("the sample fleet has no TXT record at {SAMPLE_KEY_NAME}"))?;

    let mut zone = Zone::new();
    shared_infrastructure(&mut zone, &sample)?;
    let mut fleet = SyntheticFleet {
        zone,
        domains: Vec::with_capacity(n),
        mix: Mix::default(),
    };
    for i in 0..n {
        add_domain(&mut fleet, i, seed, &key);
    }
    Ok(fleet)
}

/// Records shared by many domains: Microsoft's and Google's SPF, Mimecast, the SaaS pool, the
/// hosted provider and the DMARC report vendor.
fn shared_infrastructure(zone: &mut Zone, sample: &Zone) -> Result<(), String> {
    for name in [
        M365_SPF,
        "eu._netblocks.mimecast.com",
        "eu-smtp-inbound-1.mimecast.com",
        "eu-smtp-inbound-2.mimecast.com",
    ] {
        let records = sample.get(name);
        if records.is_empty() {
            return Err(format!("the sample fleet has no records at {name}"));
        }
        for record in records {
            zone.add(name, record.clone());
        }
    }
    for (_, records) in SAAS {
        for (owner, text) in *records {
            zone.add(owner, txt(text));
        }
    }
    zone.add("mta1.crm-cloud.example", a([127, 0, 113, 130]));
    zone.add("mta2.crm-cloud.example", a([127, 0, 113, 131]));
    zone.add(
        "payroll-hub.example",
        LabRecord::Mx(10, "mx1.payroll-hub.example".into()),
    );
    zone.add("mx1.payroll-hub.example", a([127, 0, 113, 160]));
    zone.add("smtp.hr-portal.example", a([127, 51, 100, 250]));

    zone.add(
        "_spf.google.com",
        txt("v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all"),
    );
    zone.add(
        "_netblocks.google.com",
        txt("v=spf1 ip4:198.51.100.0/27 ip4:198.51.100.160/27 ~all"),
    );
    zone.add(
        "_netblocks2.google.com",
        txt("v=spf1 ip6:2001:db8:4860::/48 ~all"),
    );
    zone.add(
        "_netblocks3.google.com",
        txt("v=spf1 ip4:203.0.113.32/27 ~all"),
    );
    for (i, (_, host)) in GOOGLE_MX.iter().enumerate() {
        zone.add(*host, a([127, 0, 2, 201 + i as u8]));
    }
    zone.add("smtp.google.com", a([127, 0, 2, 206]));

    zone.add("mx1.hosted-mail.example", a([127, 51, 100, 10]));
    zone.add("mx2.hosted-mail.example", a([127, 51, 100, 11]));
    zone.add(
        "spf.hosted-mail.example",
        txt("v=spf1 ip4:198.51.100.8/29 ~all"),
    );

    zone.add(
        DMARC_VENDOR,
        LabRecord::Mx(10, "mx.dmarc-vendor.example".into()),
    );
    zone.add("mx.dmarc-vendor.example", a([127, 51, 100, 60]));
    Ok(())
}

/// Adds domain `i` to the fleet.
fn add_domain(fleet: &mut SyntheticFleet, i: usize, seed: u64, key: &LabRecord) {
    let mut rng = Rng::new(seed, i as u64);
    let zone = &mut fleet.zone;
    let mix = &mut fleet.mix;

    let tld = if rng.chance(15) { "test" } else { "example" };
    let first = *rng.pick(FIRST_WORDS);
    let second = *rng.pick(SECOND_WORDS);
    let domain = format!("{first}-{second}-{i}.{tld}");
    // Microsoft 365's MX label: the domain without hyphens, dots as hyphens.
    let label = domain.replace('-', "").replace('.', "-");
    let tenant = format!("{}{}{}", first.replace('-', ""), second, i);
    let host_ip = Ipv4Addr::new(127, 0, 2, 1 + (i % 250) as u8);

    let kind = match rng.percent() {
        0..70 => Kind::Microsoft365,
        70..80 => Kind::Google,
        80..90 => Kind::Other,
        90..95 => Kind::NoMx,
        _ => Kind::NullMx,
    };
    if rng.chance(55) {
        zone.add(
            &domain,
            LabRecord::A(Ipv4Addr::new(127, 0, 113, (i % 250) as u8)),
        );
    }

    // MX, and the SPF mechanisms that go with it.
    let mut spf: Vec<String> = Vec::new();
    let mut saas_max = 3;
    match kind {
        Kind::Microsoft365 => {
            mix.microsoft365 += 1;
            let mx = if rng.chance(5) {
                format!("{label}.c-v1.mx.microsoft")
            } else {
                format!("{label}.mail.protection.outlook.com")
            };
            zone.add(&domain, LabRecord::Mx(0, mx.clone()));
            zone.add(&mx, LabRecord::A(host_ip));
            if rng.chance(80) {
                zone.add(&domain, txt(&format!("MS=ms{:08}", rng.below(100_000_000))));
            }
            if rng.chance(15) {
                spf.push(format!("ip4:198.51.100.{}", rng.below(256)));
            }
            // A few forget Microsoft's include (SPF-M365-INCLUDE-MISSING).
            if rng.chance(95) {
                spf.push(format!("include:{M365_SPF}"));
            }
            if rng.chance(85) {
                add_dkim_cnames(zone, mix, &mut rng, &domain, &label, &tenant, key);
            }
        }
        Kind::Google => {
            mix.google += 1;
            if rng.chance(30) {
                zone.add(&domain, LabRecord::Mx(1, "smtp.google.com".into()));
            } else {
                for (pref, host) in GOOGLE_MX {
                    zone.add(&domain, LabRecord::Mx(*pref, (*host).into()));
                }
            }
            zone.add(
                &domain,
                txt(&format!("google-site-verification={:016x}", rng.next())),
            );
            spf.push("include:_spf.google.com".into());
            saas_max = 2;
            if rng.chance(60) {
                zone.add(format!("google._domainkey.{domain}"), key.clone());
                mix.dkim_key += 1;
            }
        }
        Kind::Other => {
            mix.other += 1;
            match rng.percent() {
                0..40 => {
                    zone.add(
                        &domain,
                        LabRecord::Mx(10, "eu-smtp-inbound-1.mimecast.com".into()),
                    );
                    zone.add(
                        &domain,
                        LabRecord::Mx(10, "eu-smtp-inbound-2.mimecast.com".into()),
                    );
                    spf.push("include:eu._netblocks.mimecast.com".into());
                    // Most Mimecast customers deliver to Microsoft 365 behind it.
                    if rng.chance(70) {
                        spf.push(format!("include:{M365_SPF}"));
                        let mx = format!("{label}.mail.protection.outlook.com");
                        zone.add(&mx, LabRecord::A(host_ip));
                        add_dkim_cnames(zone, mix, &mut rng, &domain, &label, &tenant, key);
                    }
                    saas_max = 2;
                }
                40..70 => {
                    zone.add(&domain, LabRecord::Mx(10, "mx1.hosted-mail.example".into()));
                    zone.add(&domain, LabRecord::Mx(20, "mx2.hosted-mail.example".into()));
                    spf.push("include:spf.hosted-mail.example".into());
                }
                _ => {
                    let mx = format!("mail.{domain}");
                    zone.add(&domain, LabRecord::Mx(10, mx.clone()));
                    zone.add(&mx, LabRecord::A(host_ip));
                    spf.push("mx".into());
                    if rng.chance(50) {
                        spf.push("a".into());
                    }
                    saas_max = 1;
                }
            }
        }
        Kind::NoMx => {
            mix.no_mx += 1;
            saas_max = 0;
            if rng.chance(50) {
                spf.push("a".into());
            }
        }
        Kind::NullMx => {
            mix.null_mx += 1;
            zone.add(&domain, LabRecord::Mx(0, String::new()));
            saas_max = 0;
        }
    }

    // SPF: 0 to 3 shared SaaS includes and an `all` qualifier; a few domains publish none.
    let publish_spf = match kind {
        Kind::NoMx => rng.chance(50),
        Kind::NullMx => rng.chance(70),
        _ => rng.chance(97),
    };
    if publish_spf {
        let wanted = match rng.percent() {
            0..35 => 0,
            35..70 => 1,
            70..90 => 2,
            _ => 3,
        }
        .min(saas_max);
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < wanted {
            let k = usize::try_from(rng.below(SAAS.len() as u64)).unwrap_or(0);
            if !chosen.contains(&k) {
                chosen.push(k);
            }
        }
        spf.extend(chosen.iter().map(|&k| format!("include:{}", SAAS[k].0)));
        let all = match kind {
            Kind::NullMx | Kind::NoMx if spf.is_empty() => "-all",
            _ => match rng.percent() {
                0..35 => "-all",
                35..90 => "~all",
                90..97 => "?all",
                _ => "+all",
            },
        };
        spf.push(all.into());
        zone.add(&domain, txt(&format!("v=spf1 {}", spf.join(" "))));
    }

    // DMARC on about 60%; parked domains that bother are usually locked down.
    if rng.chance(60) {
        mix.dmarc += 1;
        let p = if kind == Kind::NullMx && rng.chance(60) {
            "reject"
        } else {
            match rng.percent() {
                0..45 => "none",
                45..70 => "quarantine",
                _ => "reject",
            }
        };
        let mut record = format!("v=DMARC1; p={p}");
        if p == "quarantine" && rng.chance(20) {
            record.push_str("; pct=50");
        }
        if rng.chance(25) {
            record.push_str("; sp=reject");
        }
        if rng.chance(60) {
            if rng.chance(30) {
                record.push_str(&format!("; rua=mailto:{tenant}@{DMARC_VENDOR}"));
                if rng.chance(80) {
                    zone.add(
                        format!("{domain}._report._dmarc.{DMARC_VENDOR}"),
                        txt("v=DMARC1"),
                    );
                }
            } else {
                record.push_str(&format!("; rua=mailto:dmarc-reports@{domain}"));
            }
        }
        if rng.chance(3) {
            // A typo a receiver would ignore the record for.
            record = record.replace("p=", "p=rejected; x=");
        }
        zone.add(format!("_dmarc.{domain}"), txt(&record));
    }

    if kind != Kind::NullMx && kind != Kind::NoMx {
        if rng.chance(8) {
            mix.mta_sts += 1;
            zone.add(
                format!("_mta-sts.{domain}"),
                txt(&format!(
                    "v=STSv1; id=2025{:04}T000000",
                    101 + rng.below(1100)
                )),
            );
            zone.add(format!("mta-sts.{domain}"), a([127, 0, 2, 80]));
        }
        if rng.chance(12) {
            mix.tls_rpt += 1;
            zone.add(
                format!("_smtp._tls.{domain}"),
                txt(&format!("v=TLSRPTv1; rua=mailto:tls-reports@{domain}")),
            );
        }
    }

    fleet.domains.push(domain);
}

/// Microsoft 365's DKIM selector CNAMEs, with keys published at none, one or both targets.
fn add_dkim_cnames(
    zone: &mut Zone,
    mix: &mut Mix,
    rng: &mut Rng,
    domain: &str,
    label: &str,
    tenant: &str,
    key: &LabRecord,
) {
    let keys = match rng.percent() {
        0..65 => 2,
        65..80 => 1,
        _ => 0,
    };
    if keys > 0 {
        mix.dkim_key += 1;
    }
    for (n, selector) in ["selector1", "selector2"].into_iter().enumerate() {
        let target = format!("{selector}-{label}._domainkey.{tenant}.onmicrosoft.com");
        zone.add(
            format!("{selector}._domainkey.{domain}"),
            LabRecord::Cname(target.clone()),
        );
        if n < keys {
            zone.add(target, key.clone());
        }
    }
}

fn txt(text: &str) -> LabRecord {
    LabRecord::Txt(vec![text.to_owned()])
}

fn a(octets: [u8; 4]) -> LabRecord {
    LabRecord::A(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fleet_is_valid_distinct_and_deterministic() {
        let fleet = synthetic_fleet(2_000, DEFAULT_SEED).expect("fleet");
        fleet.zone.validate().expect("every name is valid");
        assert_eq!(fleet.domains.len(), 2_000);
        let distinct: HashSet<&String> = fleet.domains.iter().collect();
        assert_eq!(distinct.len(), 2_000);
        for d in &fleet.domains {
            assert!(d.ends_with(".example") || d.ends_with(".test"), "{d}");
        }
        // Same inputs, same fleet; a prefix of a fleet is the smaller fleet.
        let again = synthetic_fleet(2_000, DEFAULT_SEED).expect("fleet");
        assert_eq!(again.zone, fleet.zone);
        let small = synthetic_fleet(100, DEFAULT_SEED).expect("fleet");
        assert_eq!(small.domains[..], fleet.domains[..100]);
        let other = synthetic_fleet(100, DEFAULT_SEED + 1).expect("fleet");
        assert_ne!(other.zone, small.zone);
    }

    #[test]
    fn mix_is_roughly_as_documented() {
        let fleet = synthetic_fleet(10_000, DEFAULT_SEED).expect("fleet");
        let m = fleet.mix;
        assert_eq!(
            m.microsoft365 + m.google + m.other + m.no_mx + m.null_mx,
            10_000
        );
        let near = |got: usize, want: usize, slack: usize| got.abs_diff(want) <= slack;
        assert!(near(m.microsoft365, 7_000, 300), "{m:?}");
        assert!(near(m.google, 1_000, 150), "{m:?}");
        assert!(near(m.other, 1_000, 150), "{m:?}");
        assert!(near(m.no_mx, 500, 100), "{m:?}");
        assert!(near(m.null_mx, 500, 100), "{m:?}");
        assert!(near(m.dmarc, 6_000, 300), "{m:?}");
        assert!(
            m.dkim_key > 4_000 && m.mta_sts > 300 && m.tls_rpt > 500,
            "{m:?}"
        );
    }

    #[test]
    fn domains_look_like_their_kind() {
        let fleet = synthetic_fleet(500, DEFAULT_SEED).expect("fleet");
        let zone = &fleet.zone;
        let mut m365_with_key = 0;
        for d in &fleet.domains {
            let mx: Vec<&LabRecord> = zone
                .get(d)
                .iter()
                .filter(|r| matches!(r, LabRecord::Mx(..)))
                .collect();
            // Every MX host (but the null MX) has an address.
            for r in &mx {
                if let LabRecord::Mx(_, host) = r
                    && !host.is_empty()
                {
                    assert!(
                        zone.get(host).iter().any(|r| matches!(r, LabRecord::A(_))),
                        "{d}: MX {host} has no A record"
                    );
                }
            }
            let spf: Vec<String> = zone
                .get(d)
                .iter()
                .filter_map(|r| match r {
                    LabRecord::Txt(s) if s.concat().starts_with("v=spf1") => Some(s.concat()),
                    _ => None,
                })
                .collect();
            assert!(spf.len() <= 1, "{d}: {spf:?}");
            // Every include is served.
            for term in spf.iter().flat_map(|s| s.split(' ')) {
                if let Some(target) = term.strip_prefix("include:") {
                    assert!(!zone.get(target).is_empty(), "{d}: include:{target}");
                }
            }
            let is_m365 = mx.iter().any(
                |r| matches!(r, LabRecord::Mx(_, h) if h.ends_with(".mail.protection.outlook.com")),
            );
            if is_m365 {
                let cname = zone.get(&format!("selector1._domainkey.{d}"));
                if let Some(LabRecord::Cname(target)) = cname.first() {
                    assert!(target.ends_with(".onmicrosoft.com"), "{target}");
                    if !zone.get(target).is_empty() {
                        m365_with_key += 1;
                    }
                }
            }
        }
        assert!(m365_with_key > 100, "{m365_with_key}");
        // The keys are the sample fleet's 2048-bit key.
        let (sample, _) = sample_fleet();
        let sample_key = sample.get(SAMPLE_KEY_NAME).first().expect("sample key");
        let keys: Vec<&LabRecord> = zone
            .iter()
            .filter(|(name, _)| name.contains("._domainkey."))
            .flat_map(|(_, records)| records)
            .filter(|r| matches!(r, LabRecord::Txt(_)))
            .collect();
        assert!(!keys.is_empty());
        assert!(keys.iter().all(|k| *k == sample_key));
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = Rng::new(1, 2);
        let mut b = Rng::new(1, 2);
        assert_eq!(a.next(), b.next());
        let mut counts = [0usize; 10];
        let mut r = Rng::new(DEFAULT_SEED, 0);
        for _ in 0..10_000 {
            counts[usize::try_from(r.below(10)).unwrap_or(0)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
    }
}
