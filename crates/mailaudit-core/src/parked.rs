//! The lock-down of a domain that sends no mail (a null MX, or listed as parked): the records
//! PARKED-NOT-LOCKED asks for.
//!
//! [`lockdown`] is the one place that decides them, so that every output that carries a fix
//! agrees for a parked domain: the fix of PARKED-NOT-LOCKED, the fix of each SPF, DMARC and
//! MX-MISSING finding of that domain (see [`crate::audit`]), and the guide's `parked-lockdown`
//! item. The records are `v=spf1 -all`, a DMARC `p=reject` record (the domain's own record with
//! its report addresses kept, or a new strict one) and a null MX when the domain has no MX at
//! all; never the `p=none` roll-out, a Microsoft 365 include or DKIM CNAMEs, which are for
//! domains that send mail (M3AAWG, *Protecting Parked Domains Best Common Practices*).

use crate::dmarc::{self, Alignment, Policy, Record, Uri};

/// The SPF record of a domain that sends no mail.
pub const SPF: &str = "v=spf1 -all";

/// The key record that revokes DKIM for every selector when published at
/// `*._domainkey.<domain>` (RFC 6376 §3.6.1: an empty `p=` means the key has been revoked).
pub const DKIM_REVOKED: &str = "v=DKIM1; p=";

/// What an audit saw of a domain that sends no mail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen<'a> {
    /// Whether the domain has an MX record (a null MX counts).
    pub has_mx: bool,
    /// Its SPF record, if it has one.
    pub spf: Option<&'a str>,
    /// Whether the SPF look-up failed (the SPF verdict is withheld: no SPF record is proposed).
    pub spf_unknown: bool,
    /// The DMARC policy that applies (`none`, `quarantine`, `reject`), if any.
    pub dmarc_policy: Option<&'a str>,
    /// The DMARC record that applies, verbatim, if any.
    pub dmarc_record: Option<&'a str>,
    /// Whether that record is inherited (from the Organizational Domain): its tags are then
    /// not the domain's own, and a new record is proposed.
    pub dmarc_inherited: bool,
    /// Whether a DMARC look-up failed (the DMARC verdict is withheld: no record is proposed).
    pub dmarc_unknown: bool,
}

/// What a domain that sends no mail still has to publish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockDown {
    /// A null MX (`0 .`): the domain has no MX at all.
    pub null_mx: bool,
    /// [`SPF`]: the SPF record is missing or is not exactly `v=spf1 -all`.
    pub spf: bool,
    /// The DMARC record to publish: the policy is not `p=reject`.
    pub dmarc: Option<Record>,
}

/// One record of a [`LockDown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRecord {
    /// The owner name, without the trailing dot.
    pub name: String,
    /// `MX` or `TXT`.
    pub rtype: &'static str,
    /// The rdata (for TXT, the text without quotes).
    pub value: String,
}

impl LockDown {
    /// Whether SPF or DMARC is not locked down (what PARKED-NOT-LOCKED reports; a missing null
    /// MX alone is MX-MISSING's business).
    pub fn unlocked(&self) -> bool {
        self.spf || self.dmarc.is_some()
    }

    /// Whether nothing is left to publish.
    pub fn is_empty(&self) -> bool {
        !self.null_mx && !self.unlocked()
    }

    /// The records to publish for `domain`, in order: the null MX, SPF, DMARC.
    pub fn records(&self, domain: &str) -> Vec<LockRecord> {
        let mut out = Vec::new();
        if self.null_mx {
            out.push(LockRecord {
                name: domain.to_string(),
                rtype: "MX",
                value: "0 .".into(),
            });
        }
        if self.spf {
            out.push(LockRecord {
                name: domain.to_string(),
                rtype: "TXT",
                value: SPF.into(),
            });
        }
        if let Some(r) = &self.dmarc {
            out.push(LockRecord {
                name: format!("_dmarc.{domain}"),
                rtype: "TXT",
                value: r.to_string(),
            });
        }
        out
    }

    /// The records as one fix, a line each (`example.com. TXT "v=spf1 -all"`), as the audit's
    /// findings carry them.
    pub fn fix_text(&self, domain: &str) -> String {
        self.records(domain)
            .iter()
            .map(|r| match r.rtype {
                "TXT" => format!("{}. TXT \"{}\"", r.name, r.value),
                t => format!("{}. {t} {}", r.name, r.value),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether `record` is exactly `v=spf1 -all` (case and spacing aside).
pub fn spf_locked(record: Option<&str>) -> bool {
    record.is_some_and(|r| {
        r.split_whitespace()
            .map(str::to_ascii_lowercase)
            .eq(["v=spf1", "-all"].map(String::from))
    })
}

/// Whether the DMARC policy that applies locks the domain down (`reject`).
pub fn dmarc_locked(policy: Option<&str>) -> bool {
    policy.is_some_and(|p| p.trim().eq_ignore_ascii_case("reject"))
}

/// The lock-down DMARC record: the domain's own record (`own`, when it parses) with `p` and `sp`
/// set to `reject`, `np` raised to `reject` when present, the testing flag and the tags RFC 9989
/// removed (`pct`, `rf`, `ri`) dropped, invalid report addresses dropped and `default_rua` added
/// when no valid `rua` is left; without a record, `v=DMARC1; p=reject; sp=reject; adkim=s;
/// aspf=s` with `default_rua`.
pub fn dmarc_record(own: Option<&str>, default_rua: &Uri) -> Record {
    let r = own
        .and_then(|t| {
            dmarc::parse(t)
                .ok()
                .or_else(|| dmarc::parse_lenient(t).ok().map(|(r, _)| r))
        })
        .unwrap_or_else(|| Record {
            adkim: Some(Alignment::Strict),
            aspf: Some(Alignment::Strict),
            ..Record::new(Policy::Reject)
        });
    // The one builder of every proposed DMARC record, then `sp=reject` added.
    let mut r = dmarc::propose(Some(&r), Policy::Reject, default_rua);
    r.sp = Some(Policy::Reject);
    r
}

/// What `seen` still has to publish; `default_rua` is the report address of a DMARC record that
/// has none. A half whose look-up failed is unknown, not unlocked: nothing is proposed for it.
pub fn lockdown(seen: &Seen<'_>, default_rua: &Uri) -> LockDown {
    LockDown {
        null_mx: !seen.has_mx,
        spf: !seen.spf_unknown && !spf_locked(seen.spf),
        dmarc: (!seen.dmarc_unknown && !dmarc_locked(seen.dmarc_policy)).then(|| {
            dmarc_record(
                seen.dmarc_record.filter(|_| !seen.dmarc_inherited),
                default_rua,
            )
        }),
    }
}

/// The report address proposed when a lock-down DMARC record has none:
/// `mailto:dmarc-reports@<domain>` (as DMARC-MISSING proposes).
pub fn default_rua(domain: &str) -> Uri {
    Uri::new(&format!("mailto:dmarc-reports@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "parked.example";

    #[test]
    fn nothing_published_gets_every_record() {
        let l = lockdown(&Seen::default(), &default_rua(D));
        assert!(l.unlocked() && l.null_mx && l.spf);
        assert_eq!(
            l.fix_text(D),
            "parked.example. MX 0 .\n\
             parked.example. TXT \"v=spf1 -all\"\n\
             _dmarc.parked.example. TXT \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; \
             rua=mailto:dmarc-reports@parked.example\""
        );
        // Every record re-parses: the DMARC record is p=reject.
        let rec = l.records(D);
        let dmarc = dmarc::parse(&rec[2].value).expect("parses");
        assert_eq!(dmarc.p, Some(Policy::Reject));
    }

    #[test]
    fn an_own_record_keeps_its_report_addresses() {
        let seen = Seen {
            has_mx: true,
            spf: Some("v=spf1 include:spf.protection.outlook.com ~all"),
            dmarc_policy: Some("none"),
            dmarc_record: Some(
                "v=DMARC1; p=none; pct=50; t=y; rua=mailto:d@parked.example,https://x; np=none",
            ),
            ..Seen::default()
        };
        let l = lockdown(&seen, &default_rua(D));
        assert!(!l.null_mx && l.spf);
        assert_eq!(
            l.dmarc.expect("a DMARC record").to_string(),
            "v=DMARC1; p=reject; sp=reject; np=reject; rua=mailto:d@parked.example"
        );
    }

    #[test]
    fn an_inherited_record_is_not_copied() {
        let seen = Seen {
            has_mx: true,
            spf: Some("V=SPF1   -ALL"),
            dmarc_policy: Some("quarantine"),
            dmarc_record: Some("v=DMARC1; p=quarantine; rua=mailto:org@example"),
            dmarc_inherited: true,
            ..Seen::default()
        };
        let l = lockdown(&seen, &Uri::new("mailto:msp@msp.example"));
        assert!(!l.spf, "v=spf1 -all in any case is locked");
        assert_eq!(
            l.fix_text(D),
            "_dmarc.parked.example. TXT \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; \
             rua=mailto:msp@msp.example\""
        );
    }

    #[test]
    fn locked_and_unknown_halves_propose_nothing() {
        let seen = Seen {
            has_mx: true,
            spf: Some("v=spf1 -all"),
            dmarc_policy: Some("REJECT"),
            dmarc_record: Some("v=DMARC1; p=REJECT"),
            ..Seen::default()
        };
        assert!(lockdown(&seen, &default_rua(D)).is_empty());
        let unknown = Seen {
            has_mx: true,
            spf_unknown: true,
            dmarc_unknown: true,
            ..Seen::default()
        };
        let l = lockdown(&unknown, &default_rua(D));
        assert!(l.is_empty() && !l.unlocked(), "{l:?}");
        // A missing null MX alone is not PARKED-NOT-LOCKED.
        let no_mx = Seen {
            has_mx: false,
            ..seen
        };
        let l = lockdown(&no_mx, &default_rua(D));
        assert!(!l.unlocked() && !l.is_empty());
        assert_eq!(l.fix_text(D), "parked.example. MX 0 .");
    }
}
