//! SPF (RFC 7208): the record model, its parser and printer, the `check_host()` evaluation and
//! the static audit of a domain's SPF policy.
//!
//! The module is split the same way as the other protocol folders:
//!
//! - this file holds the types of a parsed record ([`Record`], [`Term`], [`Directive`],
//!   [`Mechanism`], [`Modifier`]) and the record-selection helper [`select_records`];
//! - [`parse`](mod@parse) turns a TXT string into a [`Record`] (RFC 7208 §4.5, §4.6, §5, §6 and
//!   the ABNF of §12), with precise [`SpfParseError`]s; `Display` on [`Record`] prints an
//!   equivalent record, so `parse(&r.to_string()) == Ok(r)`;
//! - [`macros`] parses and expands macro-strings (§7);
//! - [`eval`] implements `check_host()` (§4 – §6, §8) over a [`DnsSource`](crate::dns::DnsSource);
//! - [`analyze`](mod@analyze) walks a domain's include/redirect tree without an IP address and
//!   turns what it finds into [`Finding`](crate::finding::Finding)s (`docs/checks.md`), and
//!   [`harden`] computes the record to publish instead.
//!
//! Nothing here does I/O: DNS answers come in through the `DnsSource` trait.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub mod analyze;
pub mod eval;
pub mod macros;
pub mod parse;
pub mod propose;

pub use analyze::{SpfAnalysis, SpfNode, analyze, harden};
pub use eval::{SpfOutcome, SpfResult, check_host};
pub use macros::{MacroError, MacroLetter, MacroString, MacroToken};
pub use parse::{SpfParseError, parse};
pub use propose::{GOOGLE_INCLUDE, MailHost, SpfProposal, for_missing};

/// The include target that authorises Microsoft 365 (Exchange Online) to send for a domain.
pub const M365_INCLUDE: &str = "spf.protection.outlook.com";

/// The most DNS-querying terms one `check_host()` evaluation may use (RFC 7208 §4.6.4).
pub const MAX_DNS_LOOKUPS: u32 = 10;

/// The most void look-ups one `check_host()` evaluation may see (RFC 7208 §4.6.4).
pub const MAX_VOID_LOOKUPS: u32 = 2;

/// A parsed SPF record: the terms after `v=spf1`, in order.
///
/// RFC 7208 §4.6.1: `record = version terms *SP`, `terms = *( 1*SP ( directive / modifier ) )`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The directives and modifiers, in the order they were published.
    pub terms: Vec<Term>,
}

/// One term of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// `[qualifier] mechanism`.
    Directive(Directive),
    /// `name "=" value`.
    Modifier(Modifier),
}

/// A mechanism with its qualifier (RFC 7208 §4.6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The result when the mechanism matches (`+` when none is written).
    pub qualifier: Qualifier,
    /// The mechanism.
    pub mechanism: Mechanism,
}

/// A directive's qualifier (RFC 7208 §4.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// `+` (also the default when no qualifier is written): pass.
    Pass,
    /// `-`: fail.
    Fail,
    /// `~`: softfail.
    SoftFail,
    /// `?`: neutral.
    Neutral,
}

impl Qualifier {
    /// The qualifier character (`+`, `-`, `~`, `?`).
    pub fn as_char(self) -> char {
        match self {
            Qualifier::Pass => '+',
            Qualifier::Fail => '-',
            Qualifier::SoftFail => '~',
            Qualifier::Neutral => '?',
        }
    }

    /// The qualifier for a character, if it is one.
    pub fn from_char(c: char) -> Option<Self> {
        match c {
            '+' => Some(Qualifier::Pass),
            '-' => Some(Qualifier::Fail),
            '~' => Some(Qualifier::SoftFail),
            '?' => Some(Qualifier::Neutral),
            _ => None,
        }
    }

    /// The result a match of a directive with this qualifier produces.
    pub fn result(self) -> SpfResult {
        match self {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// The optional CIDR prefix lengths of `a` and `mx` (RFC 7208 §5.6:
/// `dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DualCidr {
    /// The IPv4 prefix length (0–32); 32 when absent.
    pub ip4: Option<u8>,
    /// The IPv6 prefix length (0–128); 128 when absent.
    pub ip6: Option<u8>,
}

/// A mechanism (RFC 7208 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `all` (§5.1): always matches.
    All,
    /// `include:<domain-spec>` (§5.2).
    Include(DomainSpec),
    /// `a[:<domain-spec>][<dual-cidr-length>]` (§5.3).
    A {
        /// The target, or the current domain when absent.
        domain: Option<DomainSpec>,
        /// The prefix lengths.
        cidr: DualCidr,
    },
    /// `mx[:<domain-spec>][<dual-cidr-length>]` (§5.4).
    Mx {
        /// The target, or the current domain when absent.
        domain: Option<DomainSpec>,
        /// The prefix lengths.
        cidr: DualCidr,
    },
    /// `ptr[:<domain-spec>]` (§5.5, "do not use").
    Ptr(Option<DomainSpec>),
    /// `ip4:<ip4-network>[/<prefix>]` (§5.6).
    Ip4 {
        /// The network address.
        addr: Ipv4Addr,
        /// The prefix length (0–32); 32 when absent.
        prefix: Option<u8>,
    },
    /// `ip6:<ip6-network>[/<prefix>]` (§5.6).
    Ip6 {
        /// The network address.
        addr: Ipv6Addr,
        /// The prefix length (0–128); 128 when absent.
        prefix: Option<u8>,
    },
    /// `exists:<domain-spec>` (§5.7).
    Exists(DomainSpec),
}

impl Mechanism {
    /// The mechanism's name as written in records (`all`, `include`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::All => "all",
            Mechanism::Include(_) => "include",
            Mechanism::A { .. } => "a",
            Mechanism::Mx { .. } => "mx",
            Mechanism::Ptr(_) => "ptr",
            Mechanism::Ip4 { .. } => "ip4",
            Mechanism::Ip6 { .. } => "ip6",
            Mechanism::Exists(_) => "exists",
        }
    }

    /// Whether evaluating this mechanism queries DNS and so counts against the limit of 10
    /// (RFC 7208 §4.6.4: `include`, `a`, `mx`, `ptr`, `exists`; `all`, `ip4`, `ip6` do not).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

/// A modifier (RFC 7208 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modifier {
    /// `redirect=<domain-spec>` (§6.1).
    Redirect(DomainSpec),
    /// `exp=<domain-spec>` (§6.2).
    Exp(DomainSpec),
    /// Any other `name=macro-string` (§6: unknown modifiers are ignored, but must parse).
    Unknown {
        /// The name as written.
        name: String,
        /// The value.
        value: MacroString,
    },
}

/// A `domain-spec` (RFC 7208 §7.1): a macro-string that ends in a macro or in `.toplabel`.
///
/// The macro letters `c`, `r` and `t` are not allowed here (§7.3: only in explanation text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSpec(pub MacroString);

impl DomainSpec {
    /// Whether the domain-spec contains a macro (then it can only be resolved during an
    /// evaluation, not statically).
    pub fn has_macros(&self) -> bool {
        self.0.has_macros()
    }

    /// The literal domain when there are no macros (normalised: lower-case, no trailing dot).
    pub fn literal(&self) -> Option<String> {
        if self.has_macros() {
            return None;
        }
        Some(crate::dns::normalize_name(&self.0.to_string()))
    }
}

impl Record {
    /// The directives, in order.
    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.terms.iter().filter_map(|t| match t {
            Term::Directive(d) => Some(d),
            Term::Modifier(_) => None,
        })
    }

    /// The modifiers, in order.
    pub fn modifiers(&self) -> impl Iterator<Item = &Modifier> {
        self.terms.iter().filter_map(|t| match t {
            Term::Modifier(m) => Some(m),
            Term::Directive(_) => None,
        })
    }

    /// The `redirect=` target, if any.
    pub fn redirect(&self) -> Option<&DomainSpec> {
        self.modifiers().find_map(|m| match m {
            Modifier::Redirect(d) => Some(d),
            _ => None,
        })
    }

    /// The `exp=` target, if any.
    pub fn exp(&self) -> Option<&DomainSpec> {
        self.modifiers().find_map(|m| match m {
            Modifier::Exp(d) => Some(d),
            _ => None,
        })
    }

    /// The first `all` directive: the one that ends evaluation (later terms are never reached).
    pub fn all(&self) -> Option<&Directive> {
        self.directives().find(|d| d.mechanism == Mechanism::All)
    }
}

/// Picks the SPF records among the TXT records at a name.
///
/// RFC 7208 §4.5: "Starting with the set of records that were returned by the lookup, discard
/// records that do not begin with a version section of exactly "v=spf1". Note that the version
/// section is terminated by either an SP character or the end of the record." The comparison is
/// case-insensitive (§4.6.1, ABNF strings).
pub fn select_records<S: AsRef<str>>(txt: &[S]) -> Vec<&str> {
    txt.iter()
        .map(AsRef::as_ref)
        .filter(|t| is_spf_record(t))
        .collect()
}

/// Whether a TXT record is an SPF record: `v=spf1` (any case) followed by a space or the end.
pub fn is_spf_record(txt: &str) -> bool {
    let b = txt.as_bytes();
    b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"v=spf1") && (b.len() == 6 || b[6] == b' ')
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=spf1")?;
        for t in &self.terms {
            write!(f, " {t}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Directive(d) => d.fmt(f),
            Term::Modifier(m) => m.fmt(f),
        }
    }
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.qualifier != Qualifier::Pass {
            write!(f, "{}", self.qualifier.as_char())?;
        }
        self.mechanism.fmt(f)
    }
}

impl fmt::Display for DualCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.ip4 {
            write!(f, "/{p}")?;
        }
        if let Some(p) = self.ip6 {
            write!(f, "//{p}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Mechanism::All => Ok(()),
            Mechanism::Include(d) | Mechanism::Exists(d) => write!(f, ":{d}"),
            Mechanism::A { domain, cidr } | Mechanism::Mx { domain, cidr } => {
                if let Some(d) = domain {
                    write!(f, ":{d}")?;
                }
                write!(f, "{cidr}")
            }
            Mechanism::Ptr(d) => match d {
                Some(d) => write!(f, ":{d}"),
                None => Ok(()),
            },
            Mechanism::Ip4 { addr, prefix } => {
                write!(f, ":{addr}")?;
                match prefix {
                    Some(p) => write!(f, "/{p}"),
                    None => Ok(()),
                }
            }
            Mechanism::Ip6 { addr, prefix } => {
                write!(f, ":{addr}")?;
                match prefix {
                    Some(p) => write!(f, "/{p}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Modifier::Redirect(d) => write!(f, "redirect={d}"),
            Modifier::Exp(d) => write!(f, "exp={d}"),
            Modifier::Unknown { name, value } => write!(f, "{name}={value}"),
        }
    }
}

impl fmt::Display for DomainSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7208_section_4_5_record_selection() {
        for (txt, spf) in [
            ("v=spf1", true),
            ("v=spf1 -all", true),
            ("V=SpF1 ~all", true),
            ("v=spf1x", false),
            ("v=spf10", false),
            ("v=spf1\t-all", false),
            ("v=spf", false),
            ("", false),
            ("spf2.0/pra -all", false),
            ("\u{96}", false),
            ("v=spf1mx", false),
        ] {
            assert_eq!(is_spf_record(txt), spf, "{txt:?}");
        }
        let txt = ["hello", "v=spf1 -all", "v=spf1x", "V=SPF1"];
        assert_eq!(select_records(&txt), vec!["v=spf1 -all", "V=SPF1"]);
    }

    #[test]
    fn record_accessors() {
        let r = parse("v=spf1 mx -all ~all redirect=a.example exp=b.example").unwrap();
        assert_eq!(r.all().map(|d| d.qualifier), Some(Qualifier::Fail));
        assert_eq!(
            r.redirect().and_then(DomainSpec::literal).as_deref(),
            Some("a.example")
        );
        assert_eq!(
            r.exp().and_then(DomainSpec::literal).as_deref(),
            Some("b.example")
        );
        assert_eq!(
            r.directives().filter(|d| d.mechanism.queries_dns()).count(),
            1
        );
    }
}
