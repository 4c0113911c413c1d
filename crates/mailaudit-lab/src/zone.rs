//! Zone data: what the lab server answers, and its text format.
//!
//! A [`Zone`] maps lower-case owner names (without the trailing dot) to the [`LabRecord`]s
//! published there. There are no zone cuts, no SOA or NS records to maintain and no wildcards:
//! the lab plays both the authoritative server and the recursive resolver for every name it
//! knows, so one `Zone` holds `contoso.example` and `spf.protection.outlook.com` side by side.
//! Besides ordinary data it can make a name misbehave ([`LabRecord::Timeout`],
//! [`LabRecord::ServFail`], [`LabRecord::Refused`]).
//!
//! # Text format
//!
//! [`Zone::parse`] reads one record per line, `<name> <TYPE> <rdata>`:
//!
//! ```text
//! # a comment; blank lines are ignored
//! contoso.example            MX     0 contoso-example.mail.protection.outlook.com
//! contoso.example            TXT    "v=spf1 include:spf.protection.outlook.com -all"
//! selector1._domainkey.contoso.example CNAME selector1-contoso-example._domainkey.contoso.onmicrosoft.com
//! big.contoso.example        TXT    "first string" "second \"quoted\" string" "back\\slash"
//! word.contoso.example       TXT    unquoted-single-word
//! parked.example             MX     0 .
//! _dmarc.broken.example      SERVFAIL
//! 11.2.0.192.in-addr.arpa    PTR    mail.contoso.example
//! _25._tcp.mail.contoso.example TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
//! ```
//!
//! * Names are case-insensitive and may end with a dot; they are stored lower-case without it.
//!   A name is 1 to 253 octets of labels of 1 to 63 octets drawn from ASCII letters, digits,
//!   `-`, `_` and `/` (RFC 2317 reverse zones). Wildcards are not supported.
//! * Types (case-insensitive): `A <ipv4>`, `AAAA <ipv6>`, `MX <preference> <host>` (a null MX,
//!   RFC 7505, is `MX 0 .`), `TXT` and `SPF` (type 99) with one or more double-quoted
//!   character-strings or a single unquoted word, `CNAME <target>`, `PTR <target>`,
//!   `TLSA <usage> <selector> <matching type> <hex>` (RFC 6698 §2.2: three numbers from 0 to
//!   255, then the certificate association data in hexadecimal, one or more words, either
//!   case), and the behaviours `TIMEOUT`, `SERVFAIL`, `REFUSED` with no rdata.
//! * Inside double quotes, `\"` is a quote, `\\` a backslash and `\DDD` (three decimal digits,
//!   at most 127) an ASCII character; any other escape is an error. Strings longer than 255
//!   octets are split into several character-strings when served.
//! * `#` outside double quotes starts a comment that runs to the end of the line.
//!
//! Errors name the line (1-based). [`Zone`]'s `Display` prints this format, and parsing the
//! printed text gives back an equal zone.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::LabError;

/// Longest name accepted, in presentation form without the trailing dot (RFC 1035 §2.3.4 limits
/// the wire form to 255 octets, which is 253 characters of dotted text).
pub const MAX_NAME_LEN: usize = 253;

/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// One record (or one behaviour) published at a name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LabRecord {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A mail exchanger: preference and host. The host `""` (or `"."`) is the root: a null MX
    /// (RFC 7505) when the preference is 0.
    Mx(u16, String),
    /// A TXT record made of these character-strings. A string longer than 255 octets is split
    /// into several character-strings when served; an empty list is served as one empty string.
    Txt(Vec<String>),
    /// An alias: queries for other types at this name follow it (see [`crate::LabDns`]).
    Cname(String),
    /// A pointer, normally published at a reverse name (see [`reverse_name`]).
    Ptr(String),
    /// The obsolete SPF record type 99 (RFC 4408 §3.1.1, removed by RFC 7208 §14.1), with the
    /// same character-strings as [`LabRecord::Txt`].
    Spf(Vec<String>),
    /// A DANE certificate association (RFC 6698), normally published at `_25._tcp.<mx host>`.
    Tlsa {
        /// Certificate usage (3 = DANE-EE, 2 = DANE-TA, ...).
        usage: u8,
        /// Selector (0 = full certificate, 1 = SubjectPublicKeyInfo).
        selector: u8,
        /// Matching type (0 = exact, 1 = SHA-256, 2 = SHA-512).
        matching: u8,
        /// The certificate association data (not empty).
        data: Vec<u8>,
    },
    /// Never answer any query for this name (nor for names whose CNAME chain reaches it).
    Timeout,
    /// Answer every query for this name with SERVFAIL.
    ServFail,
    /// Answer every query for this name with REFUSED.
    Refused,
}

impl LabRecord {
    /// The record's type keyword in the text format (`A`, `MX`, `TIMEOUT`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            LabRecord::A(_) => "A",
            LabRecord::Aaaa(_) => "AAAA",
            LabRecord::Mx(..) => "MX",
            LabRecord::Txt(_) => "TXT",
            LabRecord::Cname(_) => "CNAME",
            LabRecord::Ptr(_) => "PTR",
            LabRecord::Spf(_) => "SPF",
            LabRecord::Tlsa { .. } => "TLSA",
            LabRecord::Timeout => "TIMEOUT",
            LabRecord::ServFail => "SERVFAIL",
            LabRecord::Refused => "REFUSED",
        }
    }

    /// The record with its target names normalised: trailing dot removed, root written `""`.
    /// Target case is kept (real zones publish mixed-case targets; comparisons must ignore it).
    fn normalised(self) -> Self {
        match self {
            LabRecord::Mx(pref, host) => LabRecord::Mx(pref, strip_dot(&host).to_owned()),
            LabRecord::Cname(target) => LabRecord::Cname(strip_dot(&target).to_owned()),
            LabRecord::Ptr(target) => LabRecord::Ptr(strip_dot(&target).to_owned()),
            other => other,
        }
    }
}

impl fmt::Display for LabRecord {
    /// The record in the text format, without the owner name: `MX 0 .`, `TXT "a" "b"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())?;
        match self {
            LabRecord::A(ip) => write!(f, " {ip}"),
            LabRecord::Aaaa(ip) => write!(f, " {ip}"),
            LabRecord::Mx(pref, host) => write!(f, " {pref} {}", display_target(host)),
            LabRecord::Cname(target) | LabRecord::Ptr(target) => {
                write!(f, " {}", display_target(target))
            }
            LabRecord::Txt(strings) | LabRecord::Spf(strings) => {
                if strings.is_empty() {
                    return f.write_str(" \"\"");
                }
                for s in strings {
                    f.write_str(" \"")?;
                    write_escaped(f, s)?;
                    f.write_str("\"")?;
                }
                Ok(())
            }
            LabRecord::Tlsa {
                usage,
                selector,
                matching,
                data,
            } => {
                write!(f, " {usage} {selector} {matching} ")?;
                data.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            LabRecord::Timeout | LabRecord::ServFail | LabRecord::Refused => Ok(()),
        }
    }
}

fn display_target(name: &str) -> &str {
    if name.is_empty() { "." } else { name }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c if c.is_ascii_control() => write!(f, "\\{:03}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

fn strip_dot(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// Zone data: lower-case owner names (no trailing dot) and the records published at each, in
/// the order they were added. Identical records at one name are kept once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    names: BTreeMap<String, Vec<LabRecord>>,
}

impl Zone {
    /// An empty zone: every name is NXDOMAIN.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `record` at `name` (case-insensitive, trailing dot optional).
    ///
    /// This never fails: a name that is not a valid DNS name (see [`Zone::validate`]) is stored
    /// but can never match a query. Zones read by [`Zone::parse`] are always valid.
    pub fn add(&mut self, name: impl AsRef<str>, record: LabRecord) -> &mut Self {
        let key = strip_dot(name.as_ref()).to_ascii_lowercase();
        let record = record.normalised();
        let records = self.names.entry(key).or_default();
        if !records.contains(&record) {
            records.push(record);
        }
        self
    }

    /// Publishes a PTR record for `ip` at its reverse name (see [`reverse_name`]).
    pub fn add_ptr(&mut self, ip: IpAddr, target: impl Into<String>) -> &mut Self {
        self.add(reverse_name(ip), LabRecord::Ptr(target.into()))
    }

    /// Removes every record at `name` and returns them (empty if there were none).
    pub fn remove(&mut self, name: &str) -> Vec<LabRecord> {
        let key = strip_dot(name).to_ascii_lowercase();
        self.names.remove(&key).unwrap_or_default()
    }

    /// The records published at `name`, in the order they were added.
    pub fn get(&self, name: &str) -> &[LabRecord] {
        let key = strip_dot(name).to_ascii_lowercase();
        self.names.get(&key).map_or(&[], Vec::as_slice)
    }

    /// Every owner name with its records, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[LabRecord])> {
        self.names.iter().map(|(n, r)| (n.as_str(), r.as_slice()))
    }

    /// The number of owner names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the zone has no names at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Adds every record of `other` (after this zone's own records at the same name).
    pub fn merge(&mut self, other: Zone) -> &mut Self {
        for (name, records) in other.names {
            for record in records {
                self.add(&name, record);
            }
        }
        self
    }

    /// Checks that every owner and target name is a valid DNS name (see the module docs).
    /// [`crate::LabDns::start`] refuses a zone that fails this.
    pub fn validate(&self) -> Result<(), LabError> {
        for (name, records) in &self.names {
            check_name(name).map_err(|reason| LabError::InvalidName {
                name: name.clone(),
                reason,
            })?;
            for record in records {
                let target = match record {
                    LabRecord::Mx(_, host) if host.is_empty() => continue,
                    LabRecord::Mx(_, t) | LabRecord::Cname(t) | LabRecord::Ptr(t) => t,
                    _ => continue,
                };
                check_name(target).map_err(|reason| LabError::InvalidName {
                    name: target.clone(),
                    reason,
                })?;
            }
        }
        Ok(())
    }

    /// Reads a zone in the text format described in the [module docs](self).
    ///
    /// The first error stops parsing and names its line (1-based).
    pub fn parse(text: &str) -> Result<Zone, LabError> {
        let mut zone = Zone::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            match parse_line(line) {
                Ok(Some((name, record))) => {
                    zone.add(name, record);
                }
                Ok(None) => {}
                Err(error) => {
                    return Err(LabError::Parse {
                        line: line_no,
                        error,
                    });
                }
            }
        }
        Ok(zone)
    }
}

impl fmt::Display for Zone {
    /// The zone in the text format, one record per line, names in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, records) in &self.names {
            for record in records {
                writeln!(f, "{name} {record}")?;
            }
        }
        Ok(())
    }
}

/// The reverse-mapping name of `ip`: `4.3.2.1.in-addr.arpa` for `1.2.3.4` (RFC 1035 §3.5) and
/// the 32 reversed nibbles under `ip6.arpa` for IPv6 (RFC 3596 §2.5).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push(nibble(byte & 0x0f));
                name.push('.');
                name.push(nibble(byte >> 4));
                name.push('.');
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

fn nibble(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

/// Why a line of zone text was rejected (the line number is in [`LabError::Parse`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The line has a name but no type.
    #[error("missing record type after the name")]
    MissingType,
    /// The type keyword is not one of the supported types.
    #[error("unknown record type {0:?}")]
    UnknownType(String),
    /// The owner or target name is not a valid DNS name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as written.
        name: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// The type needs rdata that is missing.
    #[error("{rtype} record: missing {expected}")]
    MissingRdata {
        /// The record type.
        rtype: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// More rdata than the type takes.
    #[error("{rtype} record: unexpected {found:?}")]
    TrailingData {
        /// The record type.
        rtype: &'static str,
        /// The first superfluous token.
        found: String,
    },
    /// An A record whose rdata is not an IPv4 address.
    #[error("invalid IPv4 address {0:?}")]
    InvalidIpv4(String),
    /// An AAAA record whose rdata is not an IPv6 address.
    #[error("invalid IPv6 address {0:?}")]
    InvalidIpv6(String),
    /// An MX preference that is not an integer from 0 to 65535.
    #[error("invalid MX preference {0:?}")]
    InvalidPreference(String),
    /// A TLSA usage, selector or matching type that is not an integer from 0 to 255.
    #[error("invalid TLSA field {0:?}: expected an integer from 0 to 255")]
    InvalidTlsaField(String),
    /// TLSA certificate association data that is not an even number of hexadecimal digits.
    #[error("invalid TLSA data {0:?}: expected hexadecimal digits")]
    InvalidHex(String),
    /// A double-quoted string that has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedString,
    /// A backslash escape other than `\"`, `\\` or `\DDD` (at most 127).
    #[error("invalid escape {0:?} in quoted string")]
    InvalidEscape(String),
    /// A quoted string where a name, address or number is expected.
    #[error("{rtype} record: quoted string where a word is expected")]
    UnexpectedQuoted {
        /// The record type (or `"owner"` for the owner name).
        rtype: &'static str,
    },
    /// TXT or SPF rdata that mixes unquoted words with quoted strings, or has several words.
    #[error("{rtype} record: rdata must be quoted strings or a single unquoted word")]
    MixedTxt {
        /// `TXT` or `SPF`.
        rtype: &'static str,
    },
}

/// What is wrong with a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty (or `.` where the root is not allowed).
    #[error("empty name")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("longer than {MAX_NAME_LEN} octets")]
    TooLong,
    /// A label is empty (two dots in a row, or a leading dot).
    #[error("empty label")]
    EmptyLabel,
    /// A label is longer than [`MAX_LABEL_LEN`].
    #[error("label longer than {MAX_LABEL_LEN} octets")]
    LabelTooLong,
    /// A character other than ASCII letters, digits, `-`, `_` and `/`.
    #[error("character {0:?} not allowed")]
    BadChar(char),
}

/// Checks a name without its trailing dot (see the module docs for the rules).
pub(crate) fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong);
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')))
        {
            return Err(NameError::BadChar(c));
        }
    }
    Ok(())
}

/// A token of a zone line.
#[derive(Debug, PartialEq)]
enum Token {
    /// An unquoted word.
    Word(String),
    /// A double-quoted string, escapes resolved.
    Quoted(String),
}

/// Splits a line into tokens, dropping a `#` comment outside quotes.
fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(ParseError::UnterminatedString),
                    Some('"') => break,
                    Some('\\') => s.push(read_escape(&mut chars)?),
                    Some(c) => s.push(c),
                }
            }
            tokens.push(Token::Quoted(s));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' || c == '#' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

/// Reads what follows a backslash inside a quoted string.
fn read_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, ParseError> {
    match chars.next() {
        None => Err(ParseError::UnterminatedString),
        Some(c @ ('"' | '\\')) => Ok(c),
        Some(d) if d.is_ascii_digit() => {
            let mut digits = String::from(d);
            for _ in 0..2 {
                match chars.next() {
                    Some(d) if d.is_ascii_digit() => digits.push(d),
                    Some(other) => {
                        digits.push(other);
                        return Err(ParseError::InvalidEscape(format!("\\{digits}")));
                    }
                    None => return Err(ParseError::UnterminatedString),
                }
            }
            match digits.parse::<u8>() {
                Ok(v) if v <= 127 => Ok(char::from(v)),
                _ => Err(ParseError::InvalidEscape(format!("\\{digits}"))),
            }
        }
        Some(other) => Err(ParseError::InvalidEscape(format!("\\{other}"))),
    }
}

/// Parses one line: `None` for a blank or comment line.
fn parse_line(line: &str) -> Result<Option<(String, LabRecord)>, ParseError> {
    let mut tokens = tokenize(line)?.into_iter();
    let Some(owner) = tokens.next() else {
        return Ok(None);
    };
    let owner = word(owner, "owner")?;
    let owner = parse_name(&owner, false)?;
    let rtype = match tokens.next() {
        None => return Err(ParseError::MissingType),
        Some(t) => word(t, "type")?.to_ascii_uppercase(),
    };
    let rest: Vec<Token> = tokens.collect();
    let record = match rtype.as_str() {
        "A" => {
            let [ip] = words::<1>(rest, "A", "an IPv4 address")?;
            LabRecord::A(ip.parse().map_err(|_| ParseError::InvalidIpv4(ip))?)
        }
        "AAAA" => {
            let [ip] = words::<1>(rest, "AAAA", "an IPv6 address")?;
            LabRecord::Aaaa(ip.parse().map_err(|_| ParseError::InvalidIpv6(ip))?)
        }
        "MX" => {
            let [pref, host] = words::<2>(rest, "MX", "a preference and a host")?;
            let pref = pref
                .parse()
                .map_err(|_| ParseError::InvalidPreference(pref))?;
            LabRecord::Mx(pref, parse_name(&host, true)?)
        }
        "CNAME" => {
            let [target] = words::<1>(rest, "CNAME", "a target name")?;
            LabRecord::Cname(parse_name(&target, false)?)
        }
        "PTR" => {
            let [target] = words::<1>(rest, "PTR", "a target name")?;
            LabRecord::Ptr(parse_name(&target, false)?)
        }
        "TXT" => LabRecord::Txt(strings(rest, "TXT")?),
        "SPF" => LabRecord::Spf(strings(rest, "SPF")?),
        "TLSA" => tlsa(rest)?,
        "TIMEOUT" => {
            words::<0>(rest, "TIMEOUT", "")?;
            LabRecord::Timeout
        }
        "SERVFAIL" => {
            words::<0>(rest, "SERVFAIL", "")?;
            LabRecord::ServFail
        }
        "REFUSED" => {
            words::<0>(rest, "REFUSED", "")?;
            LabRecord::Refused
        }
        _ => return Err(ParseError::UnknownType(rtype)),
    };
    Ok(Some((owner, record)))
}

/// TLSA rdata: usage, selector and matching type (0 to 255), then hexadecimal data that may be
/// split over several words.
fn tlsa(tokens: Vec<Token>) -> Result<LabRecord, ParseError> {
    let mut words = tokens
        .into_iter()
        .map(|t| word(t, "TLSA"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut field = || -> Result<u8, ParseError> {
        let w = words.next().ok_or(ParseError::MissingRdata {
            rtype: "TLSA",
            expected: "usage, selector, matching type and hexadecimal data",
        })?;
        w.parse().map_err(|_| ParseError::InvalidTlsaField(w))
    };
    let (usage, selector, matching) = (field()?, field()?, field()?);
    let hex: String = words.collect();
    if hex.is_empty() {
        return Err(ParseError::MissingRdata {
            rtype: "TLSA",
            expected: "hexadecimal certificate association data",
        });
    }
    let data = decode_hex(&hex).ok_or(ParseError::InvalidHex(hex))?;
    Ok(LabRecord::Tlsa {
        usage,
        selector,
        matching,
        data,
    })
}

/// Decodes an even number of hexadecimal digits (either case).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

fn word(token: Token, rtype: &'static str) -> Result<String, ParseError> {
    match token {
        Token::Word(w) => Ok(w),
        Token::Quoted(_) => Err(ParseError::UnexpectedQuoted { rtype }),
    }
}

/// Exactly `N` unquoted words.
fn words<const N: usize>(
    tokens: Vec<Token>,
    rtype: &'static str,
    expected: &'static str,
) -> Result<[String; N], ParseError> {
    let mut out = Vec::with_capacity(N);
    for token in tokens {
        let w = word(token, rtype)?;
        if out.len() == N {
            return Err(ParseError::TrailingData { rtype, found: w });
        }
        out.push(w);
    }
    out.try_into()
        .map_err(|_| ParseError::MissingRdata { rtype, expected })
}

/// TXT/SPF rdata: quoted strings, or one unquoted word.
fn strings(tokens: Vec<Token>, rtype: &'static str) -> Result<Vec<String>, ParseError> {
    match tokens.as_slice() {
        [] => Err(ParseError::MissingRdata {
            rtype,
            expected: "one or more quoted strings",
        }),
        [Token::Word(_)] => Ok(tokens
            .into_iter()
            .map(|t| match t {
                Token::Word(w) | Token::Quoted(w) => w,
            })
            .collect()),
        _ => tokens
            .into_iter()
            .map(|t| match t {
                Token::Quoted(s) => Ok(s),
                Token::Word(_) => Err(ParseError::MixedTxt { rtype }),
            })
            .collect(),
    }
}

/// A name in the text format, without its trailing dot (case kept; [`Zone::add`] lower-cases
/// owner names); `.` (the root, returned as `""`) only where `root_ok`.
fn parse_name(text: &str, root_ok: bool) -> Result<String, ParseError> {
    if root_ok && text == "." {
        return Ok(String::new());
    }
    let name = strip_dot(text).to_owned();
    check_name(&name).map_err(|reason| ParseError::InvalidName {
        name: text.to_owned(),
        reason,
    })?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_err(text: &str) -> (usize, ParseError) {
        match Zone::parse(text) {
            Err(LabError::Parse { line, error }) => (line, error),
            other => panic!("expected a parse error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_type() {
        let text = r##"
# comment
Contoso.Example.   A     192.0.2.1   # trailing comment
contoso.example    aaaa  2001:db8::1
contoso.example    MX    10 Mail.Contoso.Example.
parked.example     MX    0 .
contoso.example    TXT   "v=spf1 -all"
multi.example      TXT   "a \"b\"" "c\\d" "#not a comment" "\065"
word.example       TXT   v=DMARC1;p=none
spf.example        SPF   "v=spf1 -all"
www.example        CNAME contoso.example.
1.2.0.192.in-addr.arpa PTR contoso.example
slow.example       TIMEOUT
bad.example        servfail
no.example         REFUSED
"##;
        let zone = Zone::parse(text).expect("parses");
        let rows: [(&str, &[LabRecord]); 11] = [
            (
                "contoso.example",
                &[
                    LabRecord::A(Ipv4Addr::new(192, 0, 2, 1)),
                    LabRecord::Aaaa("2001:db8::1".parse().expect("ip")),
                    LabRecord::Mx(10, "Mail.Contoso.Example".into()),
                    LabRecord::Txt(vec!["v=spf1 -all".into()]),
                ],
            ),
            ("parked.example", &[LabRecord::Mx(0, String::new())]),
            (
                "multi.example",
                &[LabRecord::Txt(vec![
                    "a \"b\"".into(),
                    "c\\d".into(),
                    "#not a comment".into(),
                    "A".into(),
                ])],
            ),
            (
                "word.example",
                &[LabRecord::Txt(vec!["v=DMARC1;p=none".into()])],
            ),
            ("spf.example", &[LabRecord::Spf(vec!["v=spf1 -all".into()])]),
            ("www.example", &[LabRecord::Cname("contoso.example".into())]),
            (
                "1.2.0.192.in-addr.arpa",
                &[LabRecord::Ptr("contoso.example".into())],
            ),
            ("slow.example", &[LabRecord::Timeout]),
            ("bad.example", &[LabRecord::ServFail]),
            ("no.example", &[LabRecord::Refused]),
            ("missing.example", &[]),
        ];
        for (name, expected) in rows {
            assert_eq!(zone.get(name), expected, "{name}");
        }
        assert_eq!(zone.len(), 10);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let cases: Vec<(&str, usize, ParseError)> = vec![
            ("a.example", 1, ParseError::MissingType),
            (
                "\n\na.example BOGUS x",
                3,
                ParseError::UnknownType("BOGUS".into()),
            ),
            (
                "# ok\na.example A",
                2,
                ParseError::MissingRdata {
                    rtype: "A",
                    expected: "an IPv4 address",
                },
            ),
            (
                "a.example A 300.1.1.1",
                1,
                ParseError::InvalidIpv4("300.1.1.1".into()),
            ),
            (
                "a.example AAAA 1.2.3.4",
                1,
                ParseError::InvalidIpv6("1.2.3.4".into()),
            ),
            (
                "a.example A 1.2.3.4 5.6.7.8",
                1,
                ParseError::TrailingData {
                    rtype: "A",
                    found: "5.6.7.8".into(),
                },
            ),
            (
                "a.example MX x host.example",
                1,
                ParseError::InvalidPreference("x".into()),
            ),
            (
                "a.example MX 70000 host.example",
                1,
                ParseError::InvalidPreference("70000".into()),
            ),
            (
                "a.example MX 10",
                1,
                ParseError::MissingRdata {
                    rtype: "MX",
                    expected: "a preference and a host",
                },
            ),
            ("a.example TXT \"open", 1, ParseError::UnterminatedString),
            (
                "a.example TXT \"bad \\n\"",
                1,
                ParseError::InvalidEscape("\\n".into()),
            ),
            (
                "a.example TXT \"\\200\"",
                1,
                ParseError::InvalidEscape("\\200".into()),
            ),
            (
                "a.example TXT two words",
                1,
                ParseError::MixedTxt { rtype: "TXT" },
            ),
            (
                "a.example TXT \"q\" word",
                1,
                ParseError::MixedTxt { rtype: "TXT" },
            ),
            (
                "a.example TXT",
                1,
                ParseError::MissingRdata {
                    rtype: "TXT",
                    expected: "one or more quoted strings",
                },
            ),
            (
                "a.example TIMEOUT now",
                1,
                ParseError::TrailingData {
                    rtype: "TIMEOUT",
                    found: "now".into(),
                },
            ),
            (
                "a..example A 1.2.3.4",
                1,
                ParseError::InvalidName {
                    name: "a..example".into(),
                    reason: NameError::EmptyLabel,
                },
            ),
            (
                "a.example CNAME .",
                1,
                ParseError::InvalidName {
                    name: ".".into(),
                    reason: NameError::Empty,
                },
            ),
            (
                "a*.example A 1.2.3.4",
                1,
                ParseError::InvalidName {
                    name: "a*.example".into(),
                    reason: NameError::BadChar('*'),
                },
            ),
            (
                "x.example CNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
                1,
                ParseError::InvalidName {
                    name:
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example"
                            .into(),
                    reason: NameError::LabelTooLong,
                },
            ),
            (
                "\"q\" A 1.2.3.4",
                1,
                ParseError::UnexpectedQuoted { rtype: "owner" },
            ),
        ];
        for (text, line, error) in cases {
            assert_eq!(parse_err(text), (line, error), "{text:?}");
        }
    }

    #[test]
    fn too_long_name_is_rejected() {
        let long = ["abcdefghij"; 25].join(".");
        assert!(long.len() > MAX_NAME_LEN);
        let (_, error) = parse_err(&format!("{long} A 192.0.2.1"));
        assert!(matches!(
            error,
            ParseError::InvalidName {
                reason: NameError::TooLong,
                ..
            }
        ));
    }

    #[test]
    fn add_normalises_and_dedups() {
        let mut zone = Zone::new();
        zone.add("WWW.Example.", LabRecord::Cname("Target.Example.".into()))
            .add("www.example", LabRecord::Cname("Target.Example".into()))
            .add("www.example", LabRecord::Mx(0, ".".into()));
        assert_eq!(
            zone.get("www.EXAMPLE."),
            &[
                LabRecord::Cname("Target.Example".into()),
                LabRecord::Mx(0, String::new())
            ]
        );
        assert!(zone.validate().is_ok());
        zone.add("bad name.example", LabRecord::A(Ipv4Addr::LOCALHOST));
        assert!(matches!(
            zone.validate(),
            Err(LabError::InvalidName {
                reason: NameError::BadChar(' '),
                ..
            })
        ));
    }

    #[test]
    fn merge_and_remove() {
        let mut a = Zone::parse("a.example A 192.0.2.1\nb.example A 192.0.2.2").expect("a");
        let b = Zone::parse("a.example A 192.0.2.1\na.example A 192.0.2.3").expect("b");
        a.merge(b);
        assert_eq!(
            a.get("a.example"),
            &[
                LabRecord::A(Ipv4Addr::new(192, 0, 2, 1)),
                LabRecord::A(Ipv4Addr::new(192, 0, 2, 3))
            ]
        );
        assert_eq!(
            a.remove("B.example."),
            vec![LabRecord::A(Ipv4Addr::new(192, 0, 2, 2))]
        );
        assert!(a.get("b.example").is_empty());
        assert_eq!(a.iter().count(), 1);
    }

    #[test]
    fn reverse_names() {
        for (ip, expected) in [
            ("192.0.2.11", "11.2.0.192.in-addr.arpa"),
            (
                "2001:db8::1",
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            ),
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(reverse_name(ip), expected);
        }
        let mut zone = Zone::new();
        zone.add_ptr("192.0.2.11".parse().expect("ip"), "mx.example");
        assert_eq!(
            zone.get("11.2.0.192.in-addr.arpa"),
            &[LabRecord::Ptr("mx.example".into())]
        );
    }

    #[test]
    fn tlsa_records() {
        let zone = Zone::parse(
            "_25._tcp.mx.example TLSA 3 1 1 00FFab\n_25._tcp.mx.example TLSA 2 0 0 0a 0B # split",
        )
        .expect("parses");
        assert_eq!(
            zone.get("_25._tcp.MX.example."),
            &[
                LabRecord::Tlsa {
                    usage: 3,
                    selector: 1,
                    matching: 1,
                    data: vec![0x00, 0xff, 0xab],
                },
                LabRecord::Tlsa {
                    usage: 2,
                    selector: 0,
                    matching: 0,
                    data: vec![0x0a, 0x0b],
                },
            ]
        );
        assert_eq!(
            zone.to_string(),
            "_25._tcp.mx.example TLSA 3 1 1 00ffab\n_25._tcp.mx.example TLSA 2 0 0 0a0b\n"
        );
        let cases = [
            (
                "x TLSA 3 1",
                "TLSA record: missing usage, selector, matching type and hexadecimal data",
            ),
            (
                "x TLSA 3 1 1",
                "TLSA record: missing hexadecimal certificate association data",
            ),
            (
                "x TLSA 256 1 1 00",
                "invalid TLSA field \"256\": expected an integer from 0 to 255",
            ),
            (
                "x TLSA 3 1 1 abc",
                "invalid TLSA data \"abc\": expected hexadecimal digits",
            ),
            (
                "x TLSA 3 1 1 zz",
                "invalid TLSA data \"zz\": expected hexadecimal digits",
            ),
            (
                "x TLSA 3 1 1 \"00\"",
                "TLSA record: quoted string where a word is expected",
            ),
        ];
        for (text, expected) in cases {
            let (line, error) = parse_err(text);
            assert_eq!((line, error.to_string().as_str()), (1, expected), "{text}");
        }
    }

    #[test]
    fn display_prints_the_text_format() {
        let mut zone = Zone::new();
        zone.add("p.example", LabRecord::Mx(0, String::new()))
            .add(
                "t.example",
                LabRecord::Txt(vec!["a\"b\\c\n".into(), String::new()]),
            )
            .add("t.example", LabRecord::Txt(vec![]))
            .add("s.example", LabRecord::ServFail);
        let text = zone.to_string();
        assert_eq!(
            text,
            "p.example MX 0 .\ns.example SERVFAIL\nt.example TXT \"a\\\"b\\\\c\\010\" \"\"\nt.example TXT \"\"\n"
        );
    }

    fn arb_name() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-z0-9_-][a-z0-9_/-]{0,10}", 1..5).prop_map(|l| l.join("."))
    }

    fn arb_record() -> impl Strategy<Value = LabRecord> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| LabRecord::A(Ipv4Addr::from(o))),
            any::<[u8; 16]>().prop_map(|o| LabRecord::Aaaa(Ipv6Addr::from(o))),
            (
                any::<u16>(),
                prop_oneof![Just(String::new()), "[A-Za-z0-9]{1,8}(\\.[a-z]{1,5}){0,3}"]
            )
                .prop_map(|(p, h)| LabRecord::Mx(p, h)),
            proptest::collection::vec("\\PC{0,40}|[\\x00-\\x7f]{0,20}", 1..4)
                .prop_map(LabRecord::Txt),
            proptest::collection::vec(".{0,300}", 1..3).prop_map(LabRecord::Spf),
            arb_name().prop_map(LabRecord::Cname),
            arb_name().prop_map(LabRecord::Ptr),
            (
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 1..70)
            )
                .prop_map(|(usage, selector, matching, data)| LabRecord::Tlsa {
                    usage,
                    selector,
                    matching,
                    data
                }),
            Just(LabRecord::Timeout),
            Just(LabRecord::ServFail),
            Just(LabRecord::Refused),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = Zone::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_zone_like_lines(
            name in "[a-zA-Z0-9._*-]{0,20}",
            rtype in "(A|AAAA|MX|TXT|SPF|CNAME|PTR|TLSA|TIMEOUT|x)",
            rdata in "[ \"\\\\a-z0-9.:#]{0,30}",
        ) {
            let _ = Zone::parse(&format!("{name} {rtype} {rdata}"));
        }

        #[test]
        fn display_round_trips(records in proptest::collection::vec((arb_name(), arb_record()), 0..12)) {
            let mut zone = Zone::new();
            for (name, record) in records {
                zone.add(name, record);
            }
            let text = zone.to_string();
            let parsed = Zone::parse(&text);
            prop_assert_eq!(parsed.as_ref().ok(), Some(&zone), "text: {}", text);
        }
    }
}
