//! The shape of Microsoft 365 DKIM selector CNAME targets (`M365.md`).
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
