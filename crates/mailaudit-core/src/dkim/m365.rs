//! The shape of Microsoft 365 DKIM selector CNAME targets (`docs/m365.md`).
//!
//! `selector1._domainkey.<domain>` and `selector2._domainkey.<domain>` are CNAMEs to
//! `selectorN-<label>._domainkey.<tenant>.onmicrosoft.com` (classic) or
//! `selectorN-<label>._domainkey.<tenant>.<letter>-v1.dkim.mail.microsoft` (current). The
//! matcher below is the hand-written equivalent of
//! `^selector([12])-[a-z0-9-]+\._domainkey\.[a-z0-9-]+\.(onmicrosoft\.com|[a-z]-v1\.dkim\.mail\.microsoft)\.?$`
//! (case-insensitive).

use std::fmt;

use crate::mx::is_letter_v1;

/// A Microsoft 365 DKIM CNAME target, taken apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct M365Target {
    /// The selector number in the target (1 or 2).
    pub selector: u8,
    /// The domain's label (e.g. `contoso-com`), lower-case.
    pub label: String,
    /// The tenant name (e.g. `contoso` of `contoso.onmicrosoft.com`), lower-case.
    pub tenant: String,
    /// The zone after the tenant: `onmicrosoft.com` or `<letter>-v1.dkim.mail.microsoft`.
    pub zone: String,
}

impl M365Target {
    /// The same target for the other selector (what the missing CNAME should point at).
    pub fn for_selector(&self, selector: u8) -> M365Target {
        M365Target {
            selector,
            ..self.clone()
        }
    }
}

impl fmt::Display for M365Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "selector{}-{}._domainkey.{}.{}",
            self.selector, self.label, self.tenant, self.zone
        )
    }
}

/// How many leading characters of a long domain's reduced name its label must share
/// ([`label_fits_domain`]): a DNS label holds 63 octets and `selectorN-` takes 10, so the label of
/// a long domain may be cut short.
const LONG_HEAD: usize = 30;

/// Whether `label` (of a target `selectorN-<label>._domainkey.…`) can be `domain`'s own
/// Microsoft 365 label, from the domain name alone.
///
/// The label is the domain with its dots turned into dashes, **but** existing hyphens are
/// dropped and a collision suffix may be added (`docs/m365.md`: `heig-vd.ch` → `heigvd-ch01b`,
/// `dutch-shape.nl` → `dutchshape-nl01c`), so the label is never built from the name: both are
/// reduced to their letters and digits, and the label's must start with the domain's, followed
/// by nothing or by a suffix that starts with a digit (`heigvdch` + `01b`). For a long domain
/// (over [`LONG_HEAD`] letters and digits) the label may be cut short: their first
/// [`LONG_HEAD`] must agree. An internationalised domain (an `xn--` A-label), whose label rules
/// are not documented, always fits: no verdict without the facts.
///
/// `false` means the label was made for another domain: the CNAME was copied (from another
/// customer's records, or from a template) and points at a key this domain does not own.
pub fn label_fits_domain(label: &str, domain: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.split('.').any(|l| l.starts_with("xn--")) {
        return true;
    }
    let reduce = |s: &str| -> Vec<u8> {
        s.bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| b.to_ascii_lowercase())
            .collect()
    };
    let (l, d) = (reduce(label), reduce(&domain));
    if d.is_empty() {
        return true;
    }
    if let Some(rest) = l.strip_prefix(d.as_slice()) {
        return rest.first().is_none_or(u8::is_ascii_digit);
    }
    d.len() > LONG_HEAD && l.len() >= LONG_HEAD && l[..LONG_HEAD] == d[..LONG_HEAD]
}

fn is_lower_ldh(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses a CNAME target as a Microsoft 365 DKIM target, or `None` if it does not have the shape.
pub fn parse_m365_target(target: &str) -> Option<M365Target> {
    let t = target.trim().to_ascii_lowercase();
    let t = t.strip_suffix('.').unwrap_or(&t);
    let labels: Vec<&str> = t.split('.').collect();
    let (first, rest) = labels.split_first()?;
    let after = first.strip_prefix("selector")?;
    let selector = match after.as_bytes().first()? {
        b'1' => 1,
        b'2' => 2,
        _ => return None,
    };
    let label = after.get(1..)?.strip_prefix('-')?;
    if !is_lower_ldh(label) {
        return None;
    }
    let [domainkey, tenant, zone @ ..] = rest else {
        return None;
    };
    if *domainkey != "_domainkey" || !is_lower_ldh(tenant) {
        return None;
    }
    let zone_ok = match zone {
        ["onmicrosoft", "com"] => true,
        [letter, "dkim", "mail", "microsoft"] => is_letter_v1(letter),
        _ => false,
    };
    zone_ok.then(|| M365Target {
        selector,
        label: label.to_string(),
        tenant: tenant.to_string(),
        zone: zone.join("."),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_shapes() {
        for (target, expected) in [
            (
                "selector1-contoso-com._domainkey.contoso.onmicrosoft.com",
                Some((1, "contoso-com", "contoso", "onmicrosoft.com")),
            ),
            (
                "Selector2-Contoso-COM._domainkey.ContosoCorp.onmicrosoft.com.",
                Some((2, "contoso-com", "contosocorp", "onmicrosoft.com")),
            ),
            (
                "selector1-heigvd-ch01b._domainkey.heigvd.r-v1.dkim.mail.microsoft",
                Some((1, "heigvd-ch01b", "heigvd", "r-v1.dkim.mail.microsoft")),
            ),
            (
                "selector3-contoso-com._domainkey.contoso.onmicrosoft.com",
                None,
            ),
            (
                "selector1contoso-com._domainkey.contoso.onmicrosoft.com",
                None,
            ),
            ("selector1-._domainkey.contoso.onmicrosoft.com", None),
            (
                "selector1-contoso_com._domainkey.contoso.onmicrosoft.com",
                None,
            ),
            ("selector1-contoso-com._domainkey.onmicrosoft.com", None),
            ("selector1-contoso-com._domainkey.a.b.onmicrosoft.com", None),
            (
                "selector1-contoso-com.domainkey.contoso.onmicrosoft.com",
                None,
            ),
            (
                "selector1-contoso-com._domainkey.contoso.onmicrosoft.com.evil",
                None,
            ),
            (
                "selector1-contoso-com._domainkey.contoso.rr-v1.dkim.mail.microsoft",
                None,
            ),
            (
                "selector1-contoso-com._domainkey.contoso.dkim.mail.microsoft",
                None,
            ),
            ("s1.dkim.example.net", None),
            ("selector1", None),
            ("", None),
        ] {
            let got = parse_m365_target(target);
            let got = got.as_ref().map(|t| {
                (
                    t.selector,
                    t.label.as_str(),
                    t.tenant.as_str(),
                    t.zone.as_str(),
                )
            });
            assert_eq!(got, expected, "{target}");
        }
        let t =
            parse_m365_target("Selector1-contoso-com._domainkey.contoso.onmicrosoft.com").unwrap();
        assert_eq!(
            t.for_selector(2).to_string(),
            "selector2-contoso-com._domainkey.contoso.onmicrosoft.com"
        );
    }

    #[test]
    fn labels_fit_their_own_domain_only() {
        for (label, domain, fits) in [
            ("contoso-com", "contoso.com", true),
            ("Contoso-COM", "Contoso.com.", true),
            ("mail-contoso-com", "mail.contoso.com", true),
            // docs/m365.md: hyphens dropped, a collision suffix added.
            ("heigvd-ch01b", "heig-vd.ch", true),
            ("heigvd-ch", "heig-vd.ch", true),
            ("dutchshape-nl01c", "dutch-shape.nl", true),
            ("contoso-com-01i", "contoso.com", true),
            // Another customer's target, copied.
            ("fabrikam-com", "contoso.com", false),
            ("contoso-com", "fabrikam.com", false),
            // Another domain of the same name: the suffix is not a collision suffix.
            ("contoso-com-au", "contoso.com", false),
            ("contoso-com", "contoso.com.au", false),
            ("heigvd-ch01b", "heig-vd.de", false),
            // A long domain's label, cut short.
            (
                "averyveryverylongdomainnameforaclinic-ex",
                "a-very-very-very-long-domain-name-for-a-clinic.example",
                true,
            ),
            (
                "averyveryverylongdomainnameforanother-ex",
                "a-very-very-very-long-domain-name-for-a-clinic.example",
                true,
            ),
            (
                "anotherverylongdomainnameforaclinic-ex",
                "a-very-very-very-long-domain-name-for-a-clinic.example",
                false,
            ),
            // No documented rule for A-labels: no verdict.
            ("anything", "xn--bcher-kva.ch", true),
        ] {
            assert_eq!(
                label_fits_domain(label, domain),
                fits,
                "{label} for {domain}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "(selector[0-9]-)?[a-zA-Z0-9.\u{e9}_-]{0,40}(\\._domainkey\\.[a-z]{1,5}\\.(onmicrosoft\\.com|[a-z]-v1\\.dkim\\.mail\\.microsoft))?\\.?") {
            if let Some(t) = parse_m365_target(&s) {
                proptest::prop_assert_eq!(parse_m365_target(&t.to_string()), Some(t));
            }
        }

        #[test]
        fn valid_targets_round_trip(s in "[sS]elector[12]-[a-zA-Z0-9-]{1,20}\\._domainkey\\.[a-zA-Z0-9-]{1,10}\\.(onmicrosoft\\.com|[a-z]-v1\\.dkim\\.mail\\.microsoft)\\.?") {
            let t = parse_m365_target(&s);
            proptest::prop_assert!(t.is_some(), "{}", s);
            let t = t.unwrap();
            proptest::prop_assert_eq!(parse_m365_target(&t.to_string()), Some(t));
        }
    }
}
