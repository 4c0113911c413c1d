//! SPF macros (RFC 7208 §7): parsing macro-strings and explanation strings, and expanding them.
//!
//! A [`MacroString`] is a sequence of literal text and macro expansions. Where it appears
//! decides what is allowed ([`MacroContext`]): in a `domain-spec` the letters `c`, `r`, `t` are
//! errors; in explanation text (`exp=` TXT records) they are allowed and so are spaces.
//! Expansion itself ([`MacroString::expand`]) is pure: the caller supplies the values in
//! [`MacroVars`], including the validated PTR name for `%{p}` (which needs DNS, see
//! [`crate::spf::eval`]).

use std::fmt;
use std::net::IpAddr;

/// Where a macro-string appears, which decides the accepted syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacroContext {
    /// A `domain-spec` (mechanism targets, `redirect=`, `exp=`): no `c`, `r`, `t`, no spaces.
    Domain,
    /// The value of an unknown modifier: any macro letter, no spaces.
    Modifier,
    /// Explanation text fetched for `exp=` (§6.2 `explain-string`): any letter, spaces allowed.
    Explanation,
}

/// Why a macro-string is malformed (RFC 7208 §7.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MacroError {
    /// A character outside the visible ASCII range (or a space outside explanation text).
    #[error("character {0:?} is not allowed (only visible ASCII, RFC 7208 §7.1)")]
    InvalidCharacter(char),
    /// A `%` not followed by `{`, `%`, `_` or `-`.
    #[error("'%' must be followed by '{{', '%', '_' or '-' (RFC 7208 §7.1)")]
    LonePercent,
    /// `%{` without a closing `}`.
    #[error("unterminated macro (missing '}}')")]
    Unterminated,
    /// A macro letter outside `s l o d i p h c r t v`.
    #[error("{0:?} is not a macro letter (expected one of s l o d i p h c r t v)")]
    UnknownLetter(char),
    /// `c`, `r` or `t` outside explanation text.
    #[error("macro letter {0:?} is only allowed in explanation text (RFC 7208 §7.3)")]
    ExplanationOnly(char),
    /// A transformer digit count of zero.
    #[error("the number of parts in a macro must not be zero (RFC 7208 §7.3)")]
    ZeroParts,
    /// A character inside `%{…}` that is neither a transformer nor a delimiter.
    #[error("{0:?} is not a macro delimiter (expected one of . - + , / _ =)")]
    InvalidDelimiter(char),
}

/// A macro letter (RFC 7208 §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacroLetter {
    /// `s`: the sender (`local-part@domain`).
    S,
    /// `l`: the sender's local-part.
    L,
    /// `o`: the sender's domain.
    O,
    /// `d`: the current domain.
    D,
    /// `i`: the client IP (dotted quad, or dot-separated nibbles for IPv6).
    I,
    /// `p`: the validated domain name of the client IP ("do not use").
    P,
    /// `v`: `in-addr` for IPv4, `ip6` for IPv6.
    V,
    /// `h`: the HELO/EHLO domain.
    H,
    /// `c`: the client IP in readable form (explanation only).
    C,
    /// `r`: the name of the receiving host (explanation only).
    R,
    /// `t`: the current timestamp (explanation only).
    T,
}

impl MacroLetter {
    /// The letter for a (lower- or upper-case) character.
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c.to_ascii_lowercase() {
            's' => MacroLetter::S,
            'l' => MacroLetter::L,
            'o' => MacroLetter::O,
            'd' => MacroLetter::D,
            'i' => MacroLetter::I,
            'p' => MacroLetter::P,
            'v' => MacroLetter::V,
            'h' => MacroLetter::H,
            'c' => MacroLetter::C,
            'r' => MacroLetter::R,
            't' => MacroLetter::T,
            _ => return None,
        })
    }

    /// The lower-case letter.
    pub fn as_char(self) -> char {
        match self {
            MacroLetter::S => 's',
            MacroLetter::L => 'l',
            MacroLetter::O => 'o',
            MacroLetter::D => 'd',
            MacroLetter::I => 'i',
            MacroLetter::P => 'p',
            MacroLetter::V => 'v',
            MacroLetter::H => 'h',
            MacroLetter::C => 'c',
            MacroLetter::R => 'r',
            MacroLetter::T => 't',
        }
    }

    /// Whether the letter is allowed only in explanation text (`c`, `r`, `t`).
    pub fn explanation_only(self) -> bool {
        matches!(self, MacroLetter::C | MacroLetter::R | MacroLetter::T)
    }
}

/// One piece of a macro-string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacroToken {
    /// Literal text (adjacent literal characters are kept together).
    Literal(String),
    /// `%{` letter transformers delimiters `}`.
    Expand {
        /// The letter.
        letter: MacroLetter,
        /// Upper-case letter: the value is URL-escaped after expansion (§7.3).
        url_escape: bool,
        /// Keep this many right-hand parts (never zero).
        digits: Option<u8>,
        /// `r`: reverse the parts first.
        reverse: bool,
        /// The delimiters to split on (`.` when empty).
        delimiters: String,
    },
    /// `%%`: a literal `%`.
    Percent,
    /// `%_`: a space.
    Space,
    /// `%-`: `%20`.
    UrlSpace,
}

/// A parsed macro-string (RFC 7208 §7.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MacroString(pub Vec<MacroToken>);

/// The values macros expand to during one evaluation.
#[derive(Clone, Debug)]
pub struct MacroVars<'a> {
    /// `s`: the sender.
    pub sender: &'a str,
    /// `l`: its local-part.
    pub local: &'a str,
    /// `o`: its domain.
    pub sender_domain: &'a str,
    /// `d`: the current domain.
    pub domain: &'a str,
    /// `i`, `c`, `v`: the client IP (IPv4-mapped addresses already turned into IPv4).
    pub ip: IpAddr,
    /// `p`: the validated name, when the caller looked it up (otherwise `unknown`).
    pub validated: Option<&'a str>,
    /// `h`: the HELO/EHLO domain.
    pub helo: &'a str,
    /// `r`: the receiving host (`unknown` when not known).
    pub receiver: &'a str,
    /// `t`: seconds since the epoch.
    pub timestamp: u64,
}

impl MacroString {
    /// Parses a macro-string in `ctx`.
    ///
    /// RFC 7208 §7.1:
    /// ```text
    /// macro-string     = *( macro-expand / macro-literal )
    /// macro-expand     = ( "%{" macro-letter transformers *delimiter "}" )
    ///                    / "%%" / "%_" / "%-"
    /// macro-literal    = %x21-24 / %x26-7E
    /// macro-letter     = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
    /// transformers     = *DIGIT [ "r" ]
    /// delimiter        = "." / "-" / "+" / "," / "/" / "_" / "="
    /// ```
    /// "A '%' character not followed by a '{', '%', '-', or '_' character is a syntax error."
    pub fn parse(s: &str, ctx: MacroContext) -> Result<Self, MacroError> {
        let mut tokens = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                let ok =
                    matches!(c, '\x21'..='\x7e') || (c == ' ' && ctx == MacroContext::Explanation);
                if !ok {
                    return Err(MacroError::InvalidCharacter(c));
                }
                lit.push(c);
                continue;
            }
            let tok = match chars.next() {
                Some('%') => MacroToken::Percent,
                Some('_') => MacroToken::Space,
                Some('-') => MacroToken::UrlSpace,
                Some('{') => {
                    let letter_c = chars.next().ok_or(MacroError::Unterminated)?;
                    let letter = MacroLetter::from_char(letter_c)
                        .ok_or(MacroError::UnknownLetter(letter_c))?;
                    if letter.explanation_only() && ctx == MacroContext::Domain {
                        return Err(MacroError::ExplanationOnly(letter_c));
                    }
                    let mut digits: Option<u32> = None;
                    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                        chars.next();
                        digits = Some(digits.unwrap_or(0).saturating_mul(10).saturating_add(d));
                    }
                    if digits == Some(0) {
                        return Err(MacroError::ZeroParts);
                    }
                    let reverse = matches!(chars.peek(), Some('r' | 'R'));
                    if reverse {
                        chars.next();
                    }
                    let mut delimiters = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(MacroError::Unterminated),
                            Some('}') => break,
                            Some(d @ ('.' | '-' | '+' | ',' | '/' | '_' | '=')) => {
                                delimiters.push(d)
                            }
                            Some(other) => return Err(MacroError::InvalidDelimiter(other)),
                        }
                    }
                    MacroToken::Expand {
                        letter,
                        url_escape: letter_c.is_ascii_uppercase(),
                        digits: digits.map(|d| u8::try_from(d).unwrap_or(u8::MAX)),
                        reverse,
                        delimiters,
                    }
                }
                _ => return Err(MacroError::LonePercent),
            };
            if !lit.is_empty() {
                tokens.push(MacroToken::Literal(std::mem::take(&mut lit)));
            }
            tokens.push(tok);
        }
        if !lit.is_empty() {
            tokens.push(MacroToken::Literal(lit));
        }
        Ok(MacroString(tokens))
    }

    /// Whether any token is an expansion (`%{…}`, `%%`, `%_` or `%-`).
    pub fn has_macros(&self) -> bool {
        self.0.iter().any(|t| !matches!(t, MacroToken::Literal(_)))
    }

    /// Whether the string uses `letter`.
    pub fn uses(&self, letter: MacroLetter) -> bool {
        self.0
            .iter()
            .any(|t| matches!(t, MacroToken::Expand { letter: l, .. } if *l == letter))
    }

    /// Expands the macro-string.
    ///
    /// RFC 7208 §7.3: "If transformers or delimiters are provided, the replacement value for a
    /// macro letter is split into parts separated by one or more of the specified delimiter
    /// characters. After performing any reversal operation and/or removal of left-hand parts,
    /// the parts are rejoined using "." and not the original splitting characters." … "Uppercase
    /// macros expand exactly as their lowercase equivalents, and are then URL escaped. URL
    /// escaping MUST be performed for characters not in the "unreserved" set."
    pub fn expand(&self, vars: &MacroVars<'_>) -> String {
        let mut out = String::new();
        for t in &self.0 {
            match t {
                MacroToken::Literal(s) => out.push_str(s),
                MacroToken::Percent => out.push('%'),
                MacroToken::Space => out.push(' '),
                MacroToken::UrlSpace => out.push_str("%20"),
                MacroToken::Expand {
                    letter,
                    url_escape,
                    digits,
                    reverse,
                    delimiters,
                } => {
                    let value = letter_value(*letter, vars);
                    let delims: &[char] = &delimiters.chars().collect::<Vec<_>>();
                    let mut parts: Vec<&str> = if delims.is_empty() {
                        value.split('.').collect()
                    } else {
                        value.split(delims).collect()
                    };
                    if *reverse {
                        parts.reverse();
                    }
                    if let Some(n) = digits {
                        let n = usize::from(*n);
                        if n < parts.len() {
                            parts.drain(..parts.len() - n);
                        }
                    }
                    let joined = parts.join(".");
                    if *url_escape {
                        out.push_str(&url_escape_str(&joined));
                    } else {
                        out.push_str(&joined);
                    }
                }
            }
        }
        out
    }
}

fn letter_value(letter: MacroLetter, v: &MacroVars<'_>) -> String {
    match letter {
        MacroLetter::S => v.sender.to_string(),
        MacroLetter::L => v.local.to_string(),
        MacroLetter::O => v.sender_domain.to_string(),
        MacroLetter::D => v.domain.to_string(),
        MacroLetter::I => dotted_ip(v.ip),
        MacroLetter::P => v.validated.unwrap_or("unknown").to_string(),
        MacroLetter::V => match v.ip {
            IpAddr::V4(_) => "in-addr".to_string(),
            IpAddr::V6(_) => "ip6".to_string(),
        },
        MacroLetter::H => v.helo.to_string(),
        MacroLetter::C => v.ip.to_string(),
        MacroLetter::R => v.receiver.to_string(),
        MacroLetter::T => v.timestamp.to_string(),
    }
}

/// The `i` macro value: RFC 7208 §7.3, "For IPv4 addresses, both the "i" and "c" macros expand
/// to the standard dotted-quad format. For IPv6 addresses, the "i" macro expands to a
/// dot-format address; it is intended for use in %{ir}."
pub fn dotted_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(63);
            for b in v6.octets() {
                for nibble in [b >> 4, b & 0xf] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            s
        }
    }
}

/// URL-escapes every character outside RFC 3986 "unreserved" (`ALPHA / DIGIT / - . _ ~`).
fn url_escape_str(s: &str) -> String {
    const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

impl fmt::Display for MacroString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.0 {
            match t {
                MacroToken::Literal(s) => f.write_str(s)?,
                MacroToken::Percent => f.write_str("%%")?,
                MacroToken::Space => f.write_str("%_")?,
                MacroToken::UrlSpace => f.write_str("%-")?,
                MacroToken::Expand {
                    letter,
                    url_escape,
                    digits,
                    reverse,
                    delimiters,
                } => {
                    let c = letter.as_char();
                    let c = if *url_escape {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    };
                    write!(f, "%{{{c}")?;
                    if let Some(d) = digits {
                        write!(f, "{d}")?;
                    }
                    if *reverse {
                        f.write_str("r")?;
                    }
                    write!(f, "{delimiters}}}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars_v4() -> MacroVars<'static> {
        MacroVars {
            sender: "strong-bad@email.example.com",
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: "192.0.2.3".parse().unwrap(),
            validated: None,
            helo: "mx.example.org",
            receiver: "unknown",
            timestamp: 1_700_000_000,
        }
    }

    fn expand(s: &str, vars: &MacroVars<'_>) -> String {
        MacroString::parse(s, MacroContext::Explanation)
            .unwrap()
            .expand(vars)
    }

    /// RFC 7208 §7.4, verbatim.
    #[test]
    fn rfc7208_section_7_4_examples() {
        let v4 = vars_v4();
        for (macro_string, expected) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
        ] {
            assert_eq!(expand(macro_string, &v4), expected, "{macro_string}");
        }
        let v6 = MacroVars {
            ip: "2001:db8::cb01".parse().unwrap(),
            ..vars_v4()
        };
        for (macro_string, expected) in [
            (
                "%{ir}.%{v}._spf.%{d2}",
                "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com",
            ),
            ("%{c}", "2001:db8::cb01"),
        ] {
            assert_eq!(expand(macro_string, &v6), expected, "{macro_string}");
        }
    }

    #[test]
    fn special_tokens_escaping_and_other_letters() {
        let v = MacroVars {
            local: "~jack&jill=up-a_b3.c",
            validated: Some("mx.example.com"),
            ..vars_v4()
        };
        for (s, expected) in [
            ("%%%_%-", "% %20"),
            ("%{L}", "~jack%26jill%3Dup-a_b3.c"),
            ("%{p}", "mx.example.com"),
            ("%{h}", "mx.example.org"),
            ("%{c}", "192.0.2.3"),
            ("%{r}", "unknown"),
            ("%{t}", "1700000000"),
            ("%{d200}", "email.example.com"),
            ("%{l+-}", "~jack&jill=up.a_b3.c"),
            ("%{S}", "strong-bad%40email.example.com"),
        ] {
            assert_eq!(expand(s, &v), expected, "{s}");
        }
        assert_eq!(expand("%{p}", &vars_v4()), "unknown");
    }

    #[test]
    fn rfc7208_section_7_1_syntax() {
        use MacroContext::*;
        for (s, ctx, expected) in [
            ("%{d}", Domain, Ok(())),
            ("%{ir}.%{v}", Domain, Ok(())),
            ("%(ir)", Domain, Err(MacroError::LonePercent)),
            ("foo%", Domain, Err(MacroError::LonePercent)),
            ("%{a}", Domain, Err(MacroError::UnknownLetter('a'))),
            ("%{r}", Domain, Err(MacroError::ExplanationOnly('r'))),
            ("%{c}", Domain, Err(MacroError::ExplanationOnly('c'))),
            ("%{T}", Domain, Err(MacroError::ExplanationOnly('T'))),
            ("%{c}", Explanation, Ok(())),
            ("%{c}", Modifier, Ok(())),
            ("%{d0}", Domain, Err(MacroError::ZeroParts)),
            ("%{d", Domain, Err(MacroError::Unterminated)),
            ("%{", Domain, Err(MacroError::Unterminated)),
            ("%{dx}", Domain, Err(MacroError::InvalidDelimiter('x'))),
            ("a b", Domain, Err(MacroError::InvalidCharacter(' '))),
            ("a b", Explanation, Ok(())),
            (
                "caf\u{e9}",
                Explanation,
                Err(MacroError::InvalidCharacter('\u{e9}')),
            ),
            ("%{l2r+-}", Domain, Ok(())),
        ] {
            assert_eq!(
                MacroString::parse(s, ctx).map(|_| ()),
                expected,
                "{s:?} in {ctx:?}"
            );
        }
    }

    #[test]
    fn printing_round_trips() {
        for s in [
            "%{d}",
            "a%%b%_c%-d",
            "%{L2r-.}x",
            "plain.example.com",
            "%{ir}.%{v}._spf.%{d2}",
        ] {
            let m = MacroString::parse(s, MacroContext::Modifier).unwrap();
            assert_eq!(m.to_string(), s);
            assert_eq!(
                MacroString::parse(&m.to_string(), MacroContext::Modifier),
                Ok(m)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            for ctx in [MacroContext::Domain, MacroContext::Modifier, MacroContext::Explanation] {
                if let Ok(m) = MacroString::parse(&s, ctx) {
                    let _ = m.expand(&vars_v4());
                    proptest::prop_assert_eq!(MacroString::parse(&m.to_string(), ctx), Ok(m));
                }
            }
        }

        #[test]
        fn macro_like_strings_never_panic(s in "([a-z.]|%[{}%_\\-]|%\\{[slodipvhcrtSLX][0-9]{0,3}r?[.+,/_=-]{0,3}\\}?)*") {
            if let Ok(m) = MacroString::parse(&s, MacroContext::Modifier) {
                let _ = m.expand(&vars_v4());
                proptest::prop_assert_eq!(MacroString::parse(&m.to_string(), MacroContext::Modifier), Ok(m));
            }
        }
    }
}
