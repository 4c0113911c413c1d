//! The SPF record parser (RFC 7208 §4.6, §5, §6, §7.1 and the collected ABNF of §12).
//!
//! [`parse`] is strict: every term of the record is checked, so any syntax error anywhere is
//! found before evaluation starts (§4.6: "any syntax errors anywhere in the record MUST be
//! detected"). Errors name the offending term and say why ([`SpfParseError`]).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::macros::{MacroContext, MacroError, MacroString, MacroToken};
use super::{Directive, DomainSpec, DualCidr, Mechanism, Modifier, Qualifier, Record, Term};

/// Why a string is not a valid SPF record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpfParseError {
    /// The record does not start with `v=spf1` followed by a space or the end.
    #[error("not an SPF record: it must start with \"v=spf1\" followed by a space or the end")]
    NotSpf,
    /// A term contains a character outside visible ASCII (terms are separated by spaces only).
    #[error(
        "term {term:?} contains {ch:?}: only visible ASCII is allowed, terms are separated by spaces"
    )]
    InvalidCharacter {
        /// The term.
        term: String,
        /// The offending character.
        ch: char,
    },
    /// A term that is neither a known mechanism nor a `name=value` modifier.
    #[error(
        "term {term:?} is not a mechanism (all, include, a, mx, ptr, ip4, ip6, exists) or a name=value modifier"
    )]
    UnknownMechanism {
        /// The term.
        term: String,
    },
    /// A mechanism given an argument it does not take (`all:x`, `ptr/24`, `include:x/24` …).
    #[error("term {term:?}: unexpected {rest:?} after {mechanism}")]
    UnexpectedArgument {
        /// The term.
        term: String,
        /// The mechanism name.
        mechanism: &'static str,
        /// The unexpected text.
        rest: String,
    },
    /// `include`, `exists`, `redirect`, `exp` without a domain, or `a:`/`mx:`/`ptr:` with an
    /// empty one.
    #[error("term {term:?}: the domain-spec is missing or empty")]
    MissingDomain {
        /// The term.
        term: String,
    },
    /// A domain-spec that does not end in a macro or a valid `.toplabel` (§7.1).
    #[error("term {term:?}: invalid domain-spec {domain:?}: {reason}")]
    InvalidDomainSpec {
        /// The term.
        term: String,
        /// The domain-spec as written.
        domain: String,
        /// Why.
        reason: &'static str,
    },
    /// A malformed macro.
    #[error("term {term:?}: {error}")]
    InvalidMacro {
        /// The term.
        term: String,
        /// The macro error.
        error: MacroError,
    },
    /// A malformed CIDR prefix length.
    #[error("term {term:?}: invalid prefix length {cidr:?} ({reason})")]
    InvalidCidr {
        /// The term.
        term: String,
        /// The prefix as written.
        cidr: String,
        /// Why.
        reason: &'static str,
    },
    /// A malformed `ip4:` address.
    #[error("term {term:?}: {addr:?} is not an IPv4 address in dotted-quad form")]
    InvalidIp4 {
        /// The term.
        term: String,
        /// The address as written.
        addr: String,
    },
    /// A malformed `ip6:` address.
    #[error("term {term:?}: {addr:?} is not an IPv6 address")]
    InvalidIp6 {
        /// The term.
        term: String,
        /// The address as written.
        addr: String,
    },
    /// `redirect=` or `exp=` appears more than once (§6).
    #[error("the {name}= modifier appears more than once (RFC 7208 §6)")]
    DuplicateModifier {
        /// `redirect` or `exp`.
        name: &'static str,
    },
}

/// Parses an SPF record.
///
/// RFC 7208 §4.6.1:
/// ```text
/// record           = version terms *SP
/// version          = "v=spf1"
/// terms            = *( 1*SP ( directive / modifier ) )
/// directive        = [ qualifier ] mechanism
/// qualifier        = "+" / "-" / "?" / "~"
/// modifier         = redirect / explanation / unknown-modifier
/// unknown-modifier = name "=" macro-string
/// name             = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
/// ```
/// "As per the definition of the ABNF notation in \[RFC5234\], mechanism and modifier names are
/// case-insensitive." §6: the `redirect` and `exp` modifiers "MUST NOT appear in a record more
/// than once each. If they do, then check_host() exits with a result of "permerror"."
pub fn parse(record: &str) -> Result<Record, SpfParseError> {
    if !super::is_spf_record(record) {
        return Err(SpfParseError::NotSpf);
    }
    let rest = record.get(6..).unwrap_or("");
    let mut terms = Vec::new();
    for term in rest.split(' ').filter(|t| !t.is_empty()) {
        terms.push(parse_term(term)?);
    }
    let r = Record { terms };
    if r.modifiers()
        .filter(|m| matches!(m, Modifier::Redirect(_)))
        .count()
        > 1
    {
        return Err(SpfParseError::DuplicateModifier { name: "redirect" });
    }
    if r.modifiers()
        .filter(|m| matches!(m, Modifier::Exp(_)))
        .count()
        > 1
    {
        return Err(SpfParseError::DuplicateModifier { name: "exp" });
    }
    Ok(r)
}

fn parse_term(term: &str) -> Result<Term, SpfParseError> {
    if let Some(ch) = term.chars().find(|c| !matches!(c, '\x21'..='\x7e')) {
        return Err(SpfParseError::InvalidCharacter {
            term: term.to_string(),
            ch,
        });
    }
    // From here on the term is pure ASCII, so byte indexing is on char boundaries.
    if let Some(eq) = modifier_name_len(term) {
        let name = &term[..eq];
        let value = &term[eq + 1..];
        return parse_modifier(term, name, value).map(Term::Modifier);
    }
    let (qualifier, body) = match term.chars().next().and_then(Qualifier::from_char) {
        Some(q) => (q, &term[1..]),
        None => (Qualifier::Pass, term),
    };
    let name_len = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let (name, rest) = body.split_at(name_len);
    let mechanism = parse_mechanism(term, &name.to_ascii_lowercase(), rest)?;
    Ok(Term::Directive(Directive {
        qualifier,
        mechanism,
    }))
}

/// The length of the modifier name when `term` is `name "=" …`.
fn modifier_name_len(term: &str) -> Option<usize> {
    let b = term.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        .count();
    (b.get(n) == Some(&b'=')).then_some(n)
}

fn parse_modifier(term: &str, name: &str, value: &str) -> Result<Modifier, SpfParseError> {
    match name.to_ascii_lowercase().as_str() {
        "redirect" => parse_domain_spec(term, value).map(Modifier::Redirect),
        "exp" => parse_domain_spec(term, value).map(Modifier::Exp),
        _ => MacroString::parse(value, MacroContext::Modifier)
            .map(|value| Modifier::Unknown {
                name: name.to_string(),
                value,
            })
            .map_err(|error| SpfParseError::InvalidMacro {
                term: term.to_string(),
                error,
            }),
    }
}

/// Parses a mechanism given its lower-cased name and the text after it.
///
/// RFC 7208 §5 (ABNF):
/// ```text
/// all      = "all"
/// include  = "include"  ":" domain-spec
/// A        = "a"      [ ":" domain-spec ] [ dual-cidr-length ]
/// MX       = "mx"     [ ":" domain-spec ] [ dual-cidr-length ]
/// PTR      = "ptr"    [ ":" domain-spec ]
/// IP4      = "ip4"      ":" ip4-network   [ ip4-cidr-length ]
/// IP6      = "ip6"      ":" ip6-network   [ ip6-cidr-length ]
/// exists   = "exists"   ":" domain-spec
/// ```
fn parse_mechanism(term: &str, name: &str, rest: &str) -> Result<Mechanism, SpfParseError> {
    let t = || term.to_string();
    let unexpected = |mechanism: &'static str| SpfParseError::UnexpectedArgument {
        term: term.to_string(),
        mechanism,
        rest: rest.to_string(),
    };
    match name {
        "all" => {
            if rest.is_empty() {
                Ok(Mechanism::All)
            } else {
                Err(unexpected("all"))
            }
        }
        "include" | "exists" => {
            let Some(spec) = rest.strip_prefix(':') else {
                return Err(if rest.is_empty() {
                    SpfParseError::MissingDomain { term: t() }
                } else {
                    unexpected(if name == "include" {
                        "include"
                    } else {
                        "exists"
                    })
                });
            };
            let d = parse_domain_spec(term, spec)?;
            Ok(if name == "include" {
                Mechanism::Include(d)
            } else {
                Mechanism::Exists(d)
            })
        }
        "a" | "mx" => {
            let (domain, cidr) = if let Some(spec) = rest.strip_prefix(':') {
                let (spec, cidr) = split_trailing_cidr(spec);
                let cidr = parse_dual_cidr(term, cidr)?;
                (Some(parse_domain_spec(term, spec)?), cidr)
            } else if rest.is_empty() || rest.starts_with('/') {
                (None, parse_dual_cidr(term, rest)?)
            } else {
                return Err(unexpected(if name == "a" { "a" } else { "mx" }));
            };
            Ok(if name == "a" {
                Mechanism::A { domain, cidr }
            } else {
                Mechanism::Mx { domain, cidr }
            })
        }
        "ptr" => {
            if rest.is_empty() {
                Ok(Mechanism::Ptr(None))
            } else if let Some(spec) = rest.strip_prefix(':') {
                Ok(Mechanism::Ptr(Some(parse_domain_spec(term, spec)?)))
            } else {
                Err(unexpected("ptr"))
            }
        }
        "ip4" => {
            let Some(net) = rest.strip_prefix(':') else {
                return Err(SpfParseError::InvalidIp4 {
                    term: t(),
                    addr: String::new(),
                });
            };
            let (addr, prefix) = match net.split_once('/') {
                Some((a, p)) => (a, Some(parse_cidr(term, p, 32)?)),
                None => (net, None),
            };
            let addr = parse_ip4(addr).ok_or_else(|| SpfParseError::InvalidIp4 {
                term: t(),
                addr: addr.to_string(),
            })?;
            Ok(Mechanism::Ip4 { addr, prefix })
        }
        "ip6" => {
            let Some(net) = rest.strip_prefix(':') else {
                return Err(SpfParseError::InvalidIp6 {
                    term: t(),
                    addr: String::new(),
                });
            };
            let (addr, prefix) = match net.split_once('/') {
                Some((a, p)) => (a, Some(parse_cidr(term, p, 128)?)),
                None => (net, None),
            };
            let addr: Ipv6Addr = addr.parse().map_err(|_| SpfParseError::InvalidIp6 {
                term: t(),
                addr: addr.to_string(),
            })?;
            Ok(Mechanism::Ip6 { addr, prefix })
        }
        _ => Err(SpfParseError::UnknownMechanism { term: t() }),
    }
}

/// `ip4-network = qnum "." qnum "." qnum "." qnum`, `qnum` without leading zeros.
fn parse_ip4(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut o = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty()
            || p.len() > 3
            || !p.bytes().all(|b| b.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
        {
            return None;
        }
        o[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(o))
}

/// Splits a trailing `dual-cidr-length` off `a:`/`mx:` arguments: the longest suffix of the
/// form `/digits`, `//digits` or `/digits//digits`.
fn split_trailing_cidr(s: &str) -> (&str, &str) {
    let mut end = s.len();
    // ip6 part: "//" digits at the very end.
    if let Some(i) = s.rfind('/') {
        let digits = &s[i + 1..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if i > 0 && s.as_bytes()[i - 1] == b'/' {
                end = i - 1;
                // Possibly an ip4 part before it.
                let head = &s[..end];
                if let Some(j) = head.rfind('/') {
                    let d = &head[j + 1..];
                    if !d.is_empty()
                        && d.bytes().all(|b| b.is_ascii_digit())
                        && !(j > 0 && head.as_bytes()[j - 1] == b'/')
                    {
                        end = j;
                    }
                }
            } else {
                end = i;
            }
        }
    }
    s.split_at(end)
}

/// `dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]`, the whole of `s`.
fn parse_dual_cidr(term: &str, s: &str) -> Result<DualCidr, SpfParseError> {
    let mut cidr = DualCidr::default();
    let bad = |reason| SpfParseError::InvalidCidr {
        term: term.to_string(),
        cidr: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Ok(cidr);
    }
    let (ip4, ip6) = match s.find("//") {
        Some(i) => (&s[..i], Some(&s[i + 2..])),
        None => (s, None),
    };
    if !ip4.is_empty() {
        let p = ip4.strip_prefix('/').ok_or_else(|| bad("expected '/'"))?;
        cidr.ip4 = Some(parse_cidr(term, p, 32)?);
    }
    if let Some(p) = ip6 {
        cidr.ip6 = Some(parse_cidr(term, p, 128)?);
    }
    Ok(cidr)
}

/// `ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT)`, `ip6-cidr-length = "/" ("0" / %x31-39 0*2DIGIT)`,
/// bounded by 32 and 128 (RFC 7208 §5.6).
fn parse_cidr(term: &str, digits: &str, max: u8) -> Result<u8, SpfParseError> {
    let bad = |reason| SpfParseError::InvalidCidr {
        term: term.to_string(),
        cidr: format!("/{digits}"),
        reason,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a number"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(bad("leading zero"));
    }
    match digits.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(bad(if max == 32 {
            "IPv4 prefixes go from 0 to 32"
        } else {
            "IPv6 prefixes go from 0 to 128"
        })),
    }
}

/// Parses a `domain-spec`.
///
/// RFC 7208 §7.1:
/// ```text
/// domain-spec      = macro-string domain-end
/// domain-end       = ( "." toplabel [ "." ] ) / macro-expand
/// toplabel         = ( *alphanum ALPHA *alphanum ) /
///                    ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
/// ```
pub(crate) fn parse_domain_spec(term: &str, s: &str) -> Result<DomainSpec, SpfParseError> {
    if s.is_empty() {
        return Err(SpfParseError::MissingDomain {
            term: term.to_string(),
        });
    }
    let ms = MacroString::parse(s, MacroContext::Domain).map_err(|error| {
        SpfParseError::InvalidMacro {
            term: term.to_string(),
            error,
        }
    })?;
    let invalid = |reason| SpfParseError::InvalidDomainSpec {
        term: term.to_string(),
        domain: s.to_string(),
        reason,
    };
    match ms.0.last() {
        Some(MacroToken::Literal(lit)) => {
            let lit = lit.strip_suffix('.').unwrap_or(lit);
            let Some((_, top)) = lit.rsplit_once('.') else {
                return Err(invalid(
                    "it must end in a macro or in '.' followed by a top-level label",
                ));
            };
            if !is_toplabel(top) {
                return Err(invalid(
                    "the top-level label must be letters and digits (not all digits), with inner hyphens only",
                ));
            }
        }
        Some(_) => {}
        None => {
            return Err(SpfParseError::MissingDomain {
                term: term.to_string(),
            });
        }
    }
    Ok(DomainSpec(ms))
}

fn is_toplabel(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_alphanumeric) {
        return b.iter().any(u8::is_ascii_alphabetic);
    }
    b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spf::MacroLetter;

    fn lit(s: &str) -> DomainSpec {
        DomainSpec(MacroString(vec![MacroToken::Literal(s.to_string())]))
    }

    fn dir(q: Qualifier, m: Mechanism) -> Term {
        Term::Directive(Directive {
            qualifier: q,
            mechanism: m,
        })
    }

    #[test]
    fn every_mechanism_parses() {
        use Mechanism::*;
        use Qualifier::*;
        let cidr = |ip4, ip6| DualCidr { ip4, ip6 };
        for (record, terms) in [
            ("v=spf1", vec![]),
            ("v=spf1 ", vec![]),
            ("V=SPF1   -ALL  ", vec![dir(Fail, All)]),
            ("v=spf1 +all", vec![dir(Pass, All)]),
            ("v=spf1 ?all", vec![dir(Neutral, All)]),
            ("v=spf1 ~all", vec![dir(SoftFail, All)]),
            (
                "v=spf1 include:_spf.example.com",
                vec![dir(Pass, Include(lit("_spf.example.com")))],
            ),
            (
                "v=spf1 a",
                vec![dir(
                    Pass,
                    A {
                        domain: None,
                        cidr: cidr(None, None),
                    },
                )],
            ),
            (
                "v=spf1 a/24",
                vec![dir(
                    Pass,
                    A {
                        domain: None,
                        cidr: cidr(Some(24), None),
                    },
                )],
            ),
            (
                "v=spf1 a//64",
                vec![dir(
                    Pass,
                    A {
                        domain: None,
                        cidr: cidr(None, Some(64)),
                    },
                )],
            ),
            (
                "v=spf1 a/0//0",
                vec![dir(
                    Pass,
                    A {
                        domain: None,
                        cidr: cidr(Some(0), Some(0)),
                    },
                )],
            ),
            (
                "v=spf1 a:foo.example/24//64",
                vec![dir(
                    Pass,
                    A {
                        domain: Some(lit("foo.example")),
                        cidr: cidr(Some(24), Some(64)),
                    },
                )],
            ),
            (
                "v=spf1 a:foo:bar/baz.example.com",
                vec![dir(
                    Pass,
                    A {
                        domain: Some(lit("foo:bar/baz.example.com")),
                        cidr: cidr(None, None),
                    },
                )],
            ),
            (
                "v=spf1 -mx",
                vec![dir(
                    Fail,
                    Mx {
                        domain: None,
                        cidr: cidr(None, None),
                    },
                )],
            ),
            (
                "v=spf1 mx:mail.example//128",
                vec![dir(
                    Pass,
                    Mx {
                        domain: Some(lit("mail.example")),
                        cidr: cidr(None, Some(128)),
                    },
                )],
            ),
            ("v=spf1 ptr", vec![dir(Pass, Ptr(None))]),
            (
                "v=spf1 ?ptr:example.com",
                vec![dir(Neutral, Ptr(Some(lit("example.com"))))],
            ),
            (
                "v=spf1 ip4:192.0.2.0/24",
                vec![dir(
                    Pass,
                    Ip4 {
                        addr: [192, 0, 2, 0].into(),
                        prefix: Some(24),
                    },
                )],
            ),
            (
                "v=spf1 ip4:0.0.0.0/0",
                vec![dir(
                    Pass,
                    Ip4 {
                        addr: [0, 0, 0, 0].into(),
                        prefix: Some(0),
                    },
                )],
            ),
            (
                "v=spf1 ip4:192.0.2.1",
                vec![dir(
                    Pass,
                    Ip4 {
                        addr: [192, 0, 2, 1].into(),
                        prefix: None,
                    },
                )],
            ),
            (
                "v=spf1 ip6:2001:db8::/32",
                vec![dir(
                    Pass,
                    Ip6 {
                        addr: "2001:db8::".parse().unwrap(),
                        prefix: Some(32),
                    },
                )],
            ),
            (
                "v=spf1 ip6:::FFFF:1.2.3.4",
                vec![dir(
                    Pass,
                    Ip6 {
                        addr: "::ffff:1.2.3.4".parse().unwrap(),
                        prefix: None,
                    },
                )],
            ),
            (
                "v=spf1 exists:%{i}.bl.example",
                vec![dir(
                    Pass,
                    Exists(parse_domain_spec("", "%{i}.bl.example").unwrap()),
                )],
            ),
            (
                "v=spf1 redirect=_spf.example.com",
                vec![Term::Modifier(Modifier::Redirect(lit("_spf.example.com")))],
            ),
            (
                "v=spf1 EXP=explain.example.com",
                vec![Term::Modifier(Modifier::Exp(lit("explain.example.com")))],
            ),
            (
                "v=spf1 moo.cow-far_out=man:dog/cat",
                vec![Term::Modifier(Modifier::Unknown {
                    name: "moo.cow-far_out".into(),
                    value: MacroString(vec![MacroToken::Literal("man:dog/cat".into())]),
                })],
            ),
            (
                "v=spf1 default=pass",
                vec![Term::Modifier(Modifier::Unknown {
                    name: "default".into(),
                    value: MacroString(vec![MacroToken::Literal("pass".into())]),
                })],
            ),
            (
                "v=spf1 a:xn--bcher-kva.xn--zckzah",
                vec![dir(
                    Pass,
                    A {
                        domain: Some(lit("xn--bcher-kva.xn--zckzah")),
                        cidr: cidr(None, None),
                    },
                )],
            ),
            (
                "v=spf1 a:museum.example.",
                vec![dir(
                    Pass,
                    A {
                        domain: Some(lit("museum.example.")),
                        cidr: cidr(None, None),
                    },
                )],
            ),
        ] {
            assert_eq!(parse(record), Ok(Record { terms }), "{record}");
        }
        // A domain-spec ending in a macro.
        let r = parse("v=spf1 a:%{d}").unwrap();
        let Some(Term::Directive(Directive {
            mechanism: Mechanism::A {
                domain: Some(d), ..
            },
            ..
        })) = r.terms.first()
        else {
            panic!("{r:?}")
        };
        assert!(d.0.uses(MacroLetter::D));
    }

    #[test]
    fn invalid_records_are_rejected_precisely() {
        use SpfParseError as E;
        let t = |s: &str| s.to_string();
        for (record, expected) in [
            ("v=spf1x", E::NotSpf),
            ("v=spf10 -all", E::NotSpf),
            ("spf1 -all", E::NotSpf),
            ("", E::NotSpf),
            (
                "v=spf1 ip4:1.2.3.4 -all moo",
                E::UnknownMechanism { term: t("moo") },
            ),
            (
                "v=spf1 redirect:t2.example.com",
                E::UnknownMechanism {
                    term: t("redirect:t2.example.com"),
                },
            ),
            (
                "v=spf1 moo.cow/far_out=man:dog/cat",
                E::UnknownMechanism {
                    term: t("moo.cow/far_out=man:dog/cat"),
                },
            ),
            ("v=spf1 1up=foo", E::UnknownMechanism { term: t("1up=foo") }),
            ("v=spf1 =all", E::UnknownMechanism { term: t("=all") }),
            (
                "v=spf1 -all.",
                E::UnexpectedArgument {
                    term: t("-all."),
                    mechanism: "all",
                    rest: t("."),
                },
            ),
            (
                "v=spf1 -all:foobar",
                E::UnexpectedArgument {
                    term: t("-all:foobar"),
                    mechanism: "all",
                    rest: t(":foobar"),
                },
            ),
            (
                "v=spf1 -all/8",
                E::UnexpectedArgument {
                    term: t("-all/8"),
                    mechanism: "all",
                    rest: t("/8"),
                },
            ),
            (
                "v=spf1 ptr/0",
                E::UnexpectedArgument {
                    term: t("ptr/0"),
                    mechanism: "ptr",
                    rest: t("/0"),
                },
            ),
            ("v=spf1 ptr:", E::MissingDomain { term: t("ptr:") }),
            ("v=spf1 a:", E::MissingDomain { term: t("a:") }),
            ("v=spf1 include", E::MissingDomain { term: t("include") }),
            (
                "v=spf1 include:",
                E::MissingDomain {
                    term: t("include:"),
                },
            ),
            ("v=spf1 exists", E::MissingDomain { term: t("exists") }),
            ("v=spf1 exp=", E::MissingDomain { term: t("exp=") }),
            (
                "v=spf1 ?all redirect=",
                E::MissingDomain {
                    term: t("redirect="),
                },
            ),
            (
                "v=spf1 a/33",
                E::InvalidCidr {
                    term: t("a/33"),
                    cidr: t("/33"),
                    reason: "IPv4 prefixes go from 0 to 32",
                },
            ),
            (
                "v=spf1 a//129",
                E::InvalidCidr {
                    term: t("a//129"),
                    cidr: t("/129"),
                    reason: "IPv6 prefixes go from 0 to 128",
                },
            ),
            (
                "v=spf1 a/24/64",
                E::InvalidCidr {
                    term: t("a/24/64"),
                    cidr: t("/24/64"),
                    reason: "not a number",
                },
            ),
            (
                "v=spf1 ip4:1.2.3.4/032",
                E::InvalidCidr {
                    term: t("ip4:1.2.3.4/032"),
                    cidr: t("/032"),
                    reason: "leading zero",
                },
            ),
            (
                "v=spf1 ip4:1.2.3.4//32",
                E::InvalidCidr {
                    term: t("ip4:1.2.3.4//32"),
                    cidr: t("//32"),
                    reason: "not a number",
                },
            ),
            (
                "v=spf1 ip6:::1.1.1.1//33",
                E::InvalidCidr {
                    term: t("ip6:::1.1.1.1//33"),
                    cidr: t("//33"),
                    reason: "not a number",
                },
            ),
            (
                "v=spf1 ip4",
                E::InvalidIp4 {
                    term: t("ip4"),
                    addr: t(""),
                },
            ),
            (
                "v=spf1 ip4:1.2.3",
                E::InvalidIp4 {
                    term: t("ip4:1.2.3"),
                    addr: t("1.2.3"),
                },
            ),
            (
                "v=spf1 ip4:1.2.3.4:8080",
                E::InvalidIp4 {
                    term: t("ip4:1.2.3.4:8080"),
                    addr: t("1.2.3.4:8080"),
                },
            ),
            (
                "v=spf1 ip4:01.2.3.4",
                E::InvalidIp4 {
                    term: t("ip4:01.2.3.4"),
                    addr: t("01.2.3.4"),
                },
            ),
            (
                "v=spf1 -all ip6",
                E::InvalidIp6 {
                    term: t("ip6"),
                    addr: t(""),
                },
            ),
            (
                "v=spf1 ip6::CAFE::BABE",
                E::InvalidIp6 {
                    term: t("ip6::CAFE::BABE"),
                    addr: t(":CAFE::BABE"),
                },
            ),
            (
                "v=spf1 a:foo.example.com\0",
                E::InvalidCharacter {
                    term: t("a:foo.example.com\0"),
                    ch: '\0',
                },
            ),
            (
                "v=spf1 a:ctrl.example.com\rptr -all",
                E::InvalidCharacter {
                    term: t("a:ctrl.example.com\rptr"),
                    ch: '\r',
                },
            ),
            (
                "v=spf1 \u{80}a:example.net",
                E::InvalidCharacter {
                    term: t("\u{80}a:example.net"),
                    ch: '\u{80}',
                },
            ),
            (
                "v=spf1 -exists:%(ir).sbl.example.com",
                E::InvalidMacro {
                    term: t("-exists:%(ir).sbl.example.com"),
                    error: MacroError::LonePercent,
                },
            ),
            (
                "v=spf1 -all foo=%abc",
                E::InvalidMacro {
                    term: t("foo=%abc"),
                    error: MacroError::LonePercent,
                },
            ),
            (
                "v=spf1 -all exp=%{r}.example.com",
                E::InvalidMacro {
                    term: t("exp=%{r}.example.com"),
                    error: MacroError::ExplanationOnly('r'),
                },
            ),
            (
                "v=spf1 a:%{a}.example.com",
                E::InvalidMacro {
                    term: t("a:%{a}.example.com"),
                    error: MacroError::UnknownLetter('a'),
                },
            ),
            (
                "v=spf1 exp=a.example exp=b.example",
                E::DuplicateModifier { name: "exp" },
            ),
            (
                "v=spf1 redirect=a.example -all redirect=a.example",
                E::DuplicateModifier { name: "redirect" },
            ),
        ] {
            assert_eq!(parse(record), Err(expected), "{record:?}");
        }
        for (record, domain) in [
            ("v=spf1 a:foo-bar -all", "foo-bar"),
            ("v=spf1 a:111.222.33.44", "111.222.33.44"),
            ("v=spf1 a:abc.123", "abc.123"),
            ("v=spf1 a:museum", "museum"),
            ("v=spf1 a:museum.", "museum."),
            ("v=spf1 a:example.-com", "example.-com"),
            ("v=spf1 a:example.com:8080", "example.com:8080"),
            ("v=spf1 include:ip5.example.com/24", "ip5.example.com/24"),
            ("v=spf1 exists:mail.example.com/24", "mail.example.com/24"),
            ("v=spf1 exp=-all", "-all"),
            ("v=spf1 redirect=-all ?all", "-all"),
            ("v=spf1 mx:example.com-", "example.com-"),
        ] {
            assert!(
                matches!(parse(record), Err(E::InvalidDomainSpec { domain: d, .. }) if d == domain),
                "{record:?}: {:?}",
                parse(record)
            );
        }
    }

    #[test]
    fn errors_say_which_term_and_why() {
        let e = parse("v=spf1 ip4:1.2.3.4/33 -all").unwrap_err();
        assert_eq!(
            e.to_string(),
            "term \"ip4:1.2.3.4/33\": invalid prefix length \"/33\" (IPv4 prefixes go from 0 to 32)"
        );
    }

    #[test]
    fn printing_round_trips() {
        for (record, printed) in [
            (
                "v=spf1 +a/24//64 -mx:foo.example ~ptr ?exists:%{ir}.x.example",
                "v=spf1 a/24//64 -mx:foo.example ~ptr ?exists:%{ir}.x.example",
            ),
            (
                "V=SPF1 IP4:192.0.2.1/24 ip6:2001:DB8::/32 Include:a.example REDIRECT=b.example",
                "v=spf1 ip4:192.0.2.1/24 ip6:2001:db8::/32 include:a.example redirect=b.example",
            ),
            (
                "v=spf1  exp=e.%{d2}  Foo=%{L}x -all",
                "v=spf1 exp=e.%{d2} Foo=%{L}x -all",
            ),
        ] {
            let r = parse(record).unwrap();
            assert_eq!(r.to_string(), printed);
            assert_eq!(parse(&r.to_string()), Ok(r));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_strings(s in "\\PC*") {
            if let Ok(r) = parse(&s) {
                proptest::prop_assert_eq!(parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn never_panics_on_spf_like_strings(
            s in "(v|V)=(spf|SPF)1( {1,2}[-+~?]?(all|include|a|mx|ptr|ip4|ip6|exists|redirect|exp|foo|[a-z]{1,3})([:=][a-z0-9.%{}:/_-]{0,20})?(/[0-9]{1,3})?(//[0-9]{1,3})?){0,8} ?"
        ) {
            if let Ok(r) = parse(&s) {
                proptest::prop_assert_eq!(parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn generated_valid_records_round_trip(terms in proptest::collection::vec(valid_term(), 0..10)) {
            let record = format!("v=spf1 {}", terms.join(" "));
            let r = parse(&record);
            proptest::prop_assert!(r.is_ok(), "{record}: {r:?}");
            let r = r.unwrap();
            proptest::prop_assert_eq!(parse(&r.to_string()), Ok(r));
        }
    }

    fn valid_term() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let q = prop_oneof![Just(""), Just("+"), Just("-"), Just("~"), Just("?")];
        let label = "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?";
        let domain = prop_oneof![
            (label, "[a-z]{2,6}").prop_map(|(l, t)| format!("{l}.{t}")),
            (label, "[a-z]{2,6}").prop_map(|(l, t)| format!("{l}.{t}.")),
            Just("%{d}".to_string()),
            Just("%{ir}.%{v}._spf.%{d2}".to_string()),
            Just("%{l1r-}.%{o}".to_string()),
            (label).prop_map(|l| format!("{l}.%{{d}}")),
        ];
        let c4 = prop_oneof![
            Just(String::new()),
            (0u8..=32).prop_map(|n| format!("/{n}"))
        ];
        let c6 = prop_oneof![
            Just(String::new()),
            (0u8..=128).prop_map(|n| format!("//{n}"))
        ];
        let mech = prop_oneof![
            Just("all".to_string()),
            domain.clone().prop_map(|d| format!("include:{d}")),
            (proptest::option::of(domain.clone()), c4.clone(), c6.clone()).prop_map(
                |(d, a, b)| format!("a{}{a}{b}", d.map(|d| format!(":{d}")).unwrap_or_default())
            ),
            (proptest::option::of(domain.clone()), c4, c6).prop_map(|(d, a, b)| format!(
                "mx{}{a}{b}",
                d.map(|d| format!(":{d}")).unwrap_or_default()
            )),
            proptest::option::of(domain.clone())
                .prop_map(|d| format!("ptr{}", d.map(|d| format!(":{d}")).unwrap_or_default())),
            (any::<[u8; 4]>(), proptest::option::of(0u8..=32)).prop_map(|(a, p)| format!(
                "ip4:{}{}",
                Ipv4Addr::from(a),
                p.map(|p| format!("/{p}")).unwrap_or_default()
            )),
            (any::<[u8; 16]>(), proptest::option::of(0u8..=128)).prop_map(|(a, p)| format!(
                "ip6:{}{}",
                Ipv6Addr::from(a),
                p.map(|p| format!("/{p}")).unwrap_or_default()
            )),
            domain.clone().prop_map(|d| format!("exists:{d}")),
        ];
        prop_oneof![
            4 => (q, mech).prop_map(|(q, m)| format!("{q}{m}")),
            1 => domain.prop_map(|d| format!("x-n={d}")),
            1 => "x[a-z0-9._-]{0,6}=[a-z0-9.:/]{0,10}",
        ]
    }
}
