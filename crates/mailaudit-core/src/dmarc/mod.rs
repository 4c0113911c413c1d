//! DMARC: the policy record, its discovery in DNS, and the audit of one domain's policy.
//!
//! DMARC is specified by RFC 9989 (DMARCbis, which obsoletes RFC 7489 and RFC 9091). The
//! record syntax is RFC 7489's with three tags added (`np`, `psd`, `t`) and three removed
//! (`pct`, `rf`, `ri`); most receivers still run RFC 7489 code, so the parser reads both and
//! the audit reports what each generation of receiver makes of a record.
//!
//! - [`parse()`] / [`parse_lenient`] turn TXT text into a typed [`Record`] (fields named after
//!   the RFC tags); [`Record`]'s `Display` prints it back so that it re-parses to the same value.
//! - [`discover()`] performs the RFC 9989 DNS Tree Walk for the policy that applies to a domain
//!   (its own record, or the one inherited from its Organizational Domain or its Public Suffix
//!   Domain); [`organizational_domain`] performs the walk for the Organizational Domain.
//! - [`audit()`] turns all that into a [`DmarcSummary`] and [`Finding`](crate::Finding)s, every
//!   `DMARC-*` check of `docs/checks.md`, with the corrected record as the fix where it can be
//!   computed; [`next_phase`] gives the next step of the none → quarantine → reject roll-out.
//! - [`propose()`] builds every DMARC record mailaudit proposes (the audit's fixes, the guide's
//!   roll-out, the parked lock-down), keeping the domain's own tags.
//!
//! Nothing here does I/O: DNS answers come through [`DnsSource`](crate::DnsSource).

use std::fmt;

use serde::Serialize;

mod audit;
mod discover;
mod parse;
mod propose;

pub use audit::{DmarcSummary, audit, next_phase};
pub use discover::{
    AppliedPolicy, Discovery, MAX_WALK_QUERIES, PolicySource, PolicyTag, WalkStep, discover,
    organizational_domain, shares_org_domain, walk_targets,
};
pub use parse::{DmarcParseError, is_dmarc_record, parse, parse_lenient};
pub use propose::{propose, propose_next};

/// A Domain Owner Assessment Policy: the value of `p`, `sp` and `np` (RFC 9989 §4.7).
///
/// Ordered from weakest to strongest: `None < Quarantine < Reject`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// `none`: "The Domain Owner offers no expression of preference."
    None,
    /// `quarantine`: "The Domain Owner considers such mail to be suspicious."
    Quarantine,
    /// `reject`: failures are "a clear indication that the use of the domain name is not valid".
    Reject,
}

impl Policy {
    /// The tag value: `none`, `quarantine` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    /// The next step of the roll-out: none → quarantine → reject; `None` after reject.
    pub fn next(self) -> Option<Policy> {
        match self {
            Policy::None => Some(Policy::Quarantine),
            Policy::Quarantine => Some(Policy::Reject),
            Policy::Reject => None,
        }
    }

    /// Parses a tag value (case-insensitive, as ABNF literals are, RFC 5234 §2.3).
    pub fn from_value(v: &str) -> Option<Policy> {
        [Policy::None, Policy::Quarantine, Policy::Reject]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(v))
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identifier alignment mode: the value of `adkim` and `aspf` (default relaxed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Alignment {
    /// `r`: the domains share an Organizational Domain.
    #[serde(rename = "r")]
    Relaxed,
    /// `s`: the domains are identical.
    #[serde(rename = "s")]
    Strict,
}

impl Alignment {
    /// The tag value: `r` or `s`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alignment::Relaxed => "r",
            Alignment::Strict => "s",
        }
    }
}

/// The value of the RFC 9989 `psd` tag: is the publishing domain a Public Suffix Domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Psd {
    /// `y`: a PSD; the Organizational Domain is one label below it.
    #[serde(rename = "y")]
    Yes,
    /// `n`: not a PSD, and the Organizational Domain for itself and its subdomains.
    #[serde(rename = "n")]
    No,
    /// `u` (the default): not a PSD; the tree walk decides the Organizational Domain.
    #[serde(rename = "u")]
    Unknown,
}

impl Psd {
    /// The tag value: `y`, `n` or `u`.
    pub fn as_str(self) -> &'static str {
        match self {
            Psd::Yes => "y",
            Psd::No => "n",
            Psd::Unknown => "u",
        }
    }
}

/// One failure-reporting option of the `fo` tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum FailureOption {
    /// `0`: report when all mechanisms fail to produce an aligned pass (the default).
    #[serde(rename = "0")]
    All,
    /// `1`: report when any mechanism produces something other than an aligned pass.
    #[serde(rename = "1")]
    Any,
    /// `d`: report any DKIM signature that failed evaluation.
    #[serde(rename = "d")]
    Dkim,
    /// `s`: report any SPF evaluation failure.
    #[serde(rename = "s")]
    Spf,
}

impl FailureOption {
    /// The option character: `0`, `1`, `d` or `s`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureOption::All => "0",
            FailureOption::Any => "1",
            FailureOption::Dkim => "d",
            FailureOption::Spf => "s",
        }
    }
}

/// One report destination of `rua` or `ruf`, as published.
///
/// RFC 7489 §6.4: `dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]`, the suffix being a
/// maximum report size. RFC 9989 Appendix C.4: "the ability to specify a maximum report size
/// in the DMARC URI has been removed", so receivers may ignore it; it is kept so that the record
/// prints back as published.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Uri {
    /// The URI, as published (trimmed), without the size suffix.
    pub uri: String,
    /// The text after the first `!` (RFC 7489 size limit, e.g. `10m`), if any.
    pub size: Option<String>,
}

impl Uri {
    /// Splits one list element at its first `!` into the URI and the size suffix.
    pub fn new(item: &str) -> Uri {
        let item = item.trim();
        match item.split_once('!') {
            Some((uri, size)) => Uri {
                uri: uri.trim().to_string(),
                size: Some(size.to_string()),
            },
            None => Uri {
                uri: item.to_string(),
                size: None,
            },
        }
    }

    /// The mail address of a valid `mailto:` URI (`local@domain`, the domain lower-case,
    /// percent-encoding decoded), or `None`.
    pub fn mailto(&self) -> Option<String> {
        self.check().ok()
    }

    /// The domain of a valid `mailto:` URI, lower-case.
    pub fn mailto_domain(&self) -> Option<String> {
        self.mailto()
            .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
    }

    /// Whether this is a valid `mailto:` URI with a valid size suffix, if any.
    pub fn is_valid_mailto(&self) -> bool {
        self.check().is_ok()
    }

    /// Checks the URI: `Ok(address)` for a valid `mailto:` URI, `Err(why)` otherwise.
    ///
    /// RFC 9989 §4.7: "Any valid URI can be specified. A Mail Receiver **MUST** implement support
    /// for a "mailto:" URI". Only `mailto:` is certain to be honoured, so anything else is
    /// reported (`DMARC-RUA-INVALID`).
    pub fn check(&self) -> Result<String, String> {
        if self.uri.is_empty() {
            return Err("empty URI".into());
        }
        if let Some(size) = &self.size {
            let digits = size.trim_end_matches(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']);
            let unit_len = size.len() - digits.len();
            if digits.is_empty() || unit_len > 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "size suffix !{size} is not digits with an optional k, m, g or t unit"
                ));
            }
        }
        let Some((scheme, rest)) = self.uri.split_once(':') else {
            return Err(if self.uri.contains('@') {
                "no mailto: scheme (an address needs the mailto: prefix)".into()
            } else {
                "not a URI (no scheme)".into()
            });
        };
        if !scheme.eq_ignore_ascii_case("mailto") {
            return Err(format!(
                "scheme {scheme}: is not mailto: (receivers need only support mailto:)"
            ));
        }
        let addr = rest.split('?').next().unwrap_or("");
        let addr = percent_decode(addr).ok_or("invalid percent-encoding")?;
        let Some((local, domain)) = addr.rsplit_once('@') else {
            return Err(format!("{addr:?} is not an address (no @)"));
        };
        if local.is_empty()
            || local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','))
        {
            return Err(format!("invalid local part {local:?}"));
        }
        let domain = domain.to_ascii_lowercase();
        if !is_hostname(&domain) {
            return Err(format!("invalid domain {domain:?}"));
        }
        Ok(format!("{local}@{domain}"))
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)?;
        if let Some(size) = &self.size {
            write!(f, "!{size}")?;
        }
        Ok(())
    }
}

impl Serialize for Uri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let well_formed = s.split('%').skip(1).all(|escape| {
        escape
            .as_bytes()
            .get(..2)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    let decoded = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
    well_formed.then(|| decoded.into_owned())
}

/// A host name of at least two LDH labels (RFC 1123 §2.1), no trailing dot.
fn is_hostname(d: &str) -> bool {
    crate::dns::check_name(d).is_ok()
        && !d.ends_with('.')
        && d.split('.').count() >= 2
        && d.split('.').all(|l| {
            l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A DMARC policy record (RFC 9989 §4.7, with the RFC 7489 tags it removed), fields named after
/// the tags. A tag that was not published is `None` (or empty): the RFC defaults are applied by
/// the accessors ([`Record::adkim_or_default`] …), not stored.
///
/// `Display` prints the record in a canonical tag order (`v` first, unknown tags last) that
/// [`parse()`] reads back to an equal value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// `v`: the version, always `DMARC1` for a parsed record.
    pub v: String,
    /// `p`: the policy for the domain itself (RFC 9989: RECOMMENDED; RFC 7489: REQUIRED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<Policy>,
    /// `sp`: the policy for existing subdomains (defaults to `p`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sp: Option<Policy>,
    /// `np`: the policy for non-existent subdomains (RFC 9989; defaults to `sp`, then `p`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub np: Option<Policy>,
    /// `adkim`: DKIM alignment mode (default relaxed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adkim: Option<Alignment>,
    /// `aspf`: SPF alignment mode (default relaxed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspf: Option<Alignment>,
    /// `pct`: percentage of failing mail the policy applies to (RFC 7489; removed by RFC 9989).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pct: Option<u8>,
    /// `rua`: aggregate report destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rua: Vec<Uri>,
    /// `ruf`: failure report destinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ruf: Vec<Uri>,
    /// `fo`: failure reporting options (default `0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fo: Option<Vec<FailureOption>>,
    /// `rf`: failure report format(s), as published (RFC 7489; removed by RFC 9989).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rf: Option<String>,
    /// `ri`: requested aggregate report interval in seconds (RFC 7489; removed by RFC 9989).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ri: Option<u32>,
    /// `t`: testing mode (RFC 9989; `true` for `t=y`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<bool>,
    /// `psd`: whether the publishing domain is a Public Suffix Domain (RFC 9989).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psd: Option<Psd>,
    /// Tags that are not DMARC tags, lower-case name and value as published, in order.
    /// RFC 9989 §4.7: "unknown tags **MUST** be ignored."
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<(String, String)>,
}

impl Default for Record {
    /// `v=DMARC1` and nothing else.
    fn default() -> Self {
        Record {
            v: "DMARC1".into(),
            p: None,
            sp: None,
            np: None,
            adkim: None,
            aspf: None,
            pct: None,
            rua: Vec::new(),
            ruf: Vec::new(),
            fo: None,
            rf: None,
            ri: None,
            t: None,
            psd: None,
            unknown: Vec::new(),
        }
    }
}

impl Record {
    /// `v=DMARC1; p=<p>`.
    pub fn new(p: Policy) -> Record {
        Record {
            p: Some(p),
            ..Record::default()
        }
    }

    /// The policy for existing subdomains: `sp`, else `p` (RFC 9989 §4.7 `sp`).
    pub fn subdomain_policy(&self) -> Option<Policy> {
        self.sp.or(self.p)
    }

    /// The policy for non-existent subdomains: `np`, else `sp`, else `p` (RFC 9989 §4.7 `np`).
    pub fn nonexistent_policy(&self) -> Option<Policy> {
        self.np.or(self.sp).or(self.p)
    }

    /// `adkim`, defaulting to relaxed.
    pub fn adkim_or_default(&self) -> Alignment {
        self.adkim.unwrap_or(Alignment::Relaxed)
    }

    /// `aspf`, defaulting to relaxed.
    pub fn aspf_or_default(&self) -> Alignment {
        self.aspf.unwrap_or(Alignment::Relaxed)
    }

    /// `pct`, defaulting to 100.
    pub fn pct_or_default(&self) -> u8 {
        self.pct.unwrap_or(100)
    }

    /// Whether `t=y` (testing mode) is set.
    pub fn testing(&self) -> bool {
        self.t == Some(true)
    }

    /// Whether `rua` holds at least one valid `mailto:` URI.
    pub fn has_valid_rua(&self) -> bool {
        self.rua.iter().any(Uri::is_valid_mailto)
    }

    /// The RFC 7489 tags RFC 9989 removed that this record still carries (`pct`, `rf`, `ri`).
    pub fn deprecated_tags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.pct.is_some() {
            v.push("pct");
        }
        if self.rf.is_some() {
            v.push("rf");
        }
        if self.ri.is_some() {
            v.push("ri");
        }
        v
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, tag: &str, uris: &[Uri]) -> fmt::Result {
            if uris.is_empty() {
                return Ok(());
            }
            write!(f, "; {tag}=")?;
            for (i, u) in uris.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{u}")?;
            }
            Ok(())
        }
        write!(f, "v={}", self.v)?;
        if let Some(p) = self.p {
            write!(f, "; p={p}")?;
        }
        if let Some(sp) = self.sp {
            write!(f, "; sp={sp}")?;
        }
        if let Some(np) = self.np {
            write!(f, "; np={np}")?;
        }
        if let Some(t) = self.t {
            write!(f, "; t={}", if t { "y" } else { "n" })?;
        }
        if let Some(psd) = self.psd {
            write!(f, "; psd={}", psd.as_str())?;
        }
        if let Some(a) = self.adkim {
            write!(f, "; adkim={}", a.as_str())?;
        }
        if let Some(a) = self.aspf {
            write!(f, "; aspf={}", a.as_str())?;
        }
        if let Some(pct) = self.pct {
            write!(f, "; pct={pct}")?;
        }
        list(f, "rua", &self.rua)?;
        list(f, "ruf", &self.ruf)?;
        if let Some(fo) = &self.fo {
            let fo: Vec<&str> = fo.iter().map(|o| o.as_str()).collect();
            write!(f, "; fo={}", fo.join(":"))?;
        }
        if let Some(rf) = &self.rf {
            write!(f, "; rf={rf}")?;
        }
        if let Some(ri) = self.ri {
            write!(f, "; ri={ri}")?;
        }
        for (k, v) in &self.unknown {
            write!(f, "; {k}={v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Record {
    type Err = DmarcParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
