//! MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file, and MX pattern matching.
//!
//! A domain announces MTA-STS with a TXT record at `_mta-sts.<domain>` ([`parse_txt`]) and
//! serves its policy at `https://mta-sts.<domain>/.well-known/mta-sts.txt` ([`parse_policy`]).
//! The core does no I/O: [`audit`] checks the TXT record through the [`DnsSource`]; the HTTPS
//! fetch belongs to the I/O layer, which hands the body to [`check_policy`] together with the
//! MX hosts, so that the policy verdict (MTA-STS-INVALID when it does not parse or does not
//! cover every MX, by [`mx_matches`]) is decided here.

use std::fmt;

use serde::Serialize;

use crate::checks::{Area, CheckId};
use crate::dns::{DnsSource, normalize_name, txt_tagged};
use crate::finding::Finding;

/// The largest `max_age` allowed (RFC 8461 §3.2), in seconds (about one year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// A parsed `_mta-sts` TXT record (`v=STSv1; id=...;`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StsRecord {
    /// `id`: 1–32 letters and digits; changes whenever the policy changes.
    pub id: String,
    /// Other `name=value` fields, in order (ignored by senders).
    pub extensions: Vec<(String, String)>,
}

/// The policy mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Senders must not deliver to an MX that fails validation.
    Enforce,
    /// Senders deliver anyway and report failures (TLS-RPT).
    Testing,
    /// No policy (used to withdraw one).
    None,
}

impl Mode {
    /// The policy-file keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed MTA-STS policy file. The `version` is always `STSv1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StsPolicy {
    /// `mode`.
    pub mode: Mode,
    /// `max_age` in seconds (at most [`MAX_AGE_LIMIT`]).
    pub max_age: u64,
    /// The `mx` patterns, in order (`mail.example.com` or `*.example.com`).
    pub mx: Vec<String>,
    /// Other `key: value` lines, in order (ignored by senders).
    pub extensions: Vec<(String, String)>,
}

impl StsPolicy {
    /// Whether some `mx` pattern matches `host`.
    pub fn covers(&self, host: &str) -> bool {
        self.mx.iter().any(|p| mx_matches(p, host))
    }
}

/// Why an MTA-STS record or policy is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MtaStsError {
    /// The TXT record does not begin with `v=STSv1` followed by `;`.
    #[error("the record does not begin with \"v=STSv1;\"")]
    NotStsV1,
    /// No `id` field.
    #[error("no id field")]
    MissingId,
    /// `id` is not 1–32 letters and digits.
    #[error("id {0:?} is not 1-32 letters and digits")]
    InvalidId(String),
    /// An empty field between two `;`.
    #[error("empty field")]
    EmptyField,
    /// A field that is not `name=value` with a valid name and value.
    #[error("invalid field {0:?}")]
    InvalidField(String),
    /// A policy line that is not `key: value` with a valid key.
    #[error("invalid line {0:?}")]
    InvalidLine(String),
    /// No `version` line.
    #[error("no version line")]
    MissingVersion,
    /// `version` is not `STSv1`.
    #[error("version {0:?} is not STSv1")]
    InvalidVersion(String),
    /// No `mode` line.
    #[error("no mode line")]
    MissingMode,
    /// `mode` is not enforce, testing or none.
    #[error("mode {0:?} is not enforce, testing or none")]
    InvalidMode(String),
    /// No `max_age` line.
    #[error("no max_age line")]
    MissingMaxAge,
    /// `max_age` is not 1–10 digits.
    #[error("max_age {0:?} is not a number of seconds")]
    InvalidMaxAge(String),
    /// `max_age` above [`MAX_AGE_LIMIT`].
    #[error("max_age {0} is above the maximum of 31557600")]
    MaxAgeTooLarge(u64),
    /// Mode enforce or testing without any `mx` line.
    #[error("no mx line (required unless mode is none)")]
    MissingMx,
    /// An `mx` value that is not a host name or `*.` followed by one.
    #[error("mx {0:?} is not a host name pattern")]
    InvalidMx(String),
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
fn is_ext_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `1*(%x21-3A / %x3C / %x3E-7E)`: printable ASCII except `;` and `=`.
fn is_ext_value(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| matches!(c, '\x21'..='\x3a' | '\x3c' | '\x3e'..='\x7e'))
}

/// Parses the TXT record at `_mta-sts.<domain>`.
///
/// RFC 8461 §3.1: "sts-text-record = sts-version 1*(sts-field-delim sts-field)
/// [sts-field-delim] [...] sts-field-delim = *WSP ";" *WSP [...] sts-id = %s"id=" 1*32(ALPHA /
/// DIGIT) [...] sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
/// sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)". Only the first `id` counts.
pub fn parse_txt(text: &str) -> Result<StsRecord, MtaStsError> {
    let rest = text.strip_prefix("v=STSv1").ok_or(MtaStsError::NotStsV1)?;
    let mut parts = rest.split(';');
    if !parts.next().unwrap_or("").chars().all(is_wsp) {
        return Err(MtaStsError::NotStsV1);
    }
    let fields: Vec<&str> = parts.collect();
    let mut id = None;
    let mut extensions = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let field = field.trim_matches(is_wsp);
        if field.is_empty() {
            if i + 1 == fields.len() && i > 0 {
                break; // the optional trailing delimiter
            }
            return Err(if fields.len() == 1 {
                MtaStsError::MissingId
            } else {
                MtaStsError::EmptyField
            });
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(MtaStsError::InvalidField(field.to_string()));
        };
        if name == "id" {
            if value.is_empty()
                || value.len() > 32
                || !value.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(MtaStsError::InvalidId(value.to_string()));
            }
            id.get_or_insert_with(|| value.to_string());
        } else if is_ext_name(name) && is_ext_value(value) {
            extensions.push((name.to_string(), value.to_string()));
        } else {
            return Err(MtaStsError::InvalidField(field.to_string()));
        }
    }
    Ok(StsRecord {
        id: id.ok_or(MtaStsError::MissingId)?,
        extensions,
    })
}

impl fmt::Display for StsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=STSv1; id={};", self.id)?;
        for (name, value) in &self.extensions {
            write!(f, " {name}={value};")?;
        }
        Ok(())
    }
}

/// Whether `s` is a host name: LDH labels of 1–63 characters, not starting or ending with `-`.
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Parses an MTA-STS policy file (LF or CRLF line endings).
///
/// RFC 8461 §3.2: "version: Currently, only "STSv1" is supported. mode: One of "enforce",
/// "testing", or "none" [...] max_age: Max lifetime of the policy (plaintext non-negative
/// integer seconds, maximum value of 31557600). [...] mx: Allowed MX patterns. [...] If any
/// non-repeated field -- i.e., all fields excluding "mx" -- is duplicated, all entries except
/// for the first SHALL be ignored." Its ABNF marks `version`, `mode` and `max_age` "required
/// once" and `mx` "required at least once, except when mode is 'none'", with lines ended by
/// LF or CRLF. Unknown fields are kept as extensions. Blank lines are tolerated.
pub fn parse_policy(text: &str) -> Result<StsPolicy, MtaStsError> {
    let mut version: Option<&str> = None;
    let mut mode: Option<&str> = None;
    let mut max_age: Option<&str> = None;
    let mut mx = Vec::new();
    let mut extensions: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_matches(is_wsp).is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(MtaStsError::InvalidLine(line.to_string()));
        };
        let value = value.trim_matches(is_wsp);
        if !is_ext_name(key) || value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(MtaStsError::InvalidLine(line.to_string()));
        }
        match key {
            "version" => _ = version.get_or_insert(value),
            "mode" => _ = mode.get_or_insert(value),
            "max_age" => _ = max_age.get_or_insert(value),
            "mx" => {
                let host = value.strip_prefix("*.").unwrap_or(value);
                if !is_domain(host) {
                    return Err(MtaStsError::InvalidMx(value.to_string()));
                }
                mx.push(value.to_string());
            }
            _ => {
                if !extensions.iter().any(|(k, _)| k == key) {
                    extensions.push((key.to_string(), value.to_string()));
                }
            }
        }
    }
    match version {
        None => return Err(MtaStsError::MissingVersion),
        Some("STSv1") => {}
        Some(v) => return Err(MtaStsError::InvalidVersion(v.to_string())),
    }
    let mode = match mode {
        None => return Err(MtaStsError::MissingMode),
        Some("enforce") => Mode::Enforce,
        Some("testing") => Mode::Testing,
        Some("none") => Mode::None,
        Some(m) => return Err(MtaStsError::InvalidMode(m.to_string())),
    };
    let max_age = max_age.ok_or(MtaStsError::MissingMaxAge)?;
    if max_age.is_empty() || max_age.len() > 10 || !max_age.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MtaStsError::InvalidMaxAge(max_age.to_string()));
    }
    let max_age: u64 = max_age
        .parse()
        .map_err(|_| MtaStsError::InvalidMaxAge(max_age.to_string()))?;
    if max_age > MAX_AGE_LIMIT {
        return Err(MtaStsError::MaxAgeTooLarge(max_age));
    }
    if mx.is_empty() && mode != Mode::None {
        return Err(MtaStsError::MissingMx);
    }
    Ok(StsPolicy {
        mode,
        max_age,
        mx,
        extensions,
    })
}

impl fmt::Display for StsPolicy {
    /// Prints the policy file with CRLF line endings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "version: STSv1\r\nmode: {}\r\n", self.mode)?;
        for mx in &self.mx {
            write!(f, "mx: {mx}\r\n")?;
        }
        write!(f, "max_age: {}\r\n", self.max_age)?;
        for (key, value) in &self.extensions {
            write!(f, "{key}: {value}\r\n")?;
        }
        Ok(())
    }
}

/// Whether the policy `mx` pattern matches the MX host (case-insensitive, trailing dots
/// ignored).
///
/// RFC 8461 §4.1 (in substance): an MX host matches a pattern equal to it, or a pattern
/// `*.<suffix>` whose wildcard stands for exactly one (the leftmost) label: `*.example.com`
/// matches `mx1.example.com` but neither `example.com` nor `a.mx1.example.com`.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let pattern = normalize_name(pattern);
    let host = normalize_name(host);
    if host.is_empty() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => match host.split_once('.') {
            Some((first, rest)) => !first.is_empty() && !suffix.is_empty() && rest == suffix,
            None => false,
        },
        None => pattern == host,
    }
}

/// What the MTA-STS TXT check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StsSummary {
    /// The `v=STSv1` TXT record read, verbatim (the first, if several).
    pub record: Option<String>,
    /// The parsed record, when there is exactly one and it is valid.
    pub parsed: Option<StsRecord>,
    /// Where the policy is to be fetched from, when the record is valid.
    pub policy_url: Option<String>,
    /// The policy fetched over HTTPS and valid, when it was fetched (the I/O layer fills it).
    pub policy: Option<StsPolicy>,
}

/// The URL of `domain`'s MTA-STS policy (RFC 8461 §3.3).
pub fn policy_url(domain: &str) -> String {
    format!(
        "https://mta-sts.{}/.well-known/mta-sts.txt",
        normalize_name(domain)
    )
}

fn example_policy(domain: &str) -> String {
    format!(
        "publish `_mta-sts.{domain}. TXT \"v=STSv1; id=<YYYYMMDDhhmm>;\"` and serve at {} \
         (text/plain): `version: STSv1` / `mode: testing` / `mx: <each MX host>` / \
         `max_age: 604800`; move to `mode: enforce` once TLS-RPT reports are clean",
        policy_url(domain)
    )
}

/// Audits the `_mta-sts` TXT record of `domain`. `receives_mail` is false for a null-MX
/// domain, which needs no MTA-STS (no MTA-STS-MISSING is raised for it).
///
/// RFC 8461 §3.1: "If multiple TXT records for "_mta-sts" are returned by the resolver,
/// records that do not begin with "v=STSv1;" are discarded. If the number of resulting records
/// is not one, or if the resulting record is syntactically invalid, senders MUST assume the
/// recipient domain does not have an available MTA-STS Policy and skip the remaining steps of
/// policy discovery."
///
/// A TXT record that begins `v=STSv1` in any letter case counts as an attempt at a record, so
/// that a misspelt one is reported as MTA-STS-INVALID rather than missing. Findings:
/// MTA-STS-MISSING, MTA-STS-INVALID, DNS-LOOKUP-FAILED (area transport).
pub async fn audit<D: DnsSource>(
    dns: &D,
    domain: &str,
    receives_mail: bool,
) -> (StsSummary, Vec<Finding>) {
    let domain = normalize_name(domain);
    let name = format!("_mta-sts.{domain}");
    let mut summary = StsSummary::default();
    let mut findings = Vec::new();
    let candidates = match txt_tagged(dns, &name, "v=STSv1").await {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding::lookup_failed(
                Area::Transport,
                &format!("TXT {name}"),
                &e,
            ));
            return (summary, findings);
        }
    };
    summary.record = candidates.first().map(|s| s.to_string());
    match candidates.as_slice() {
        [] => {
            if receives_mail {
                findings.push(
                    Finding::new(
                        CheckId::MtaStsMissing,
                        format!(
                            "no MTA-STS record at {name}: senders may deliver {domain}'s mail \
                             without TLS or to an impostor MX"
                        ),
                    )
                    .with_fix(format!(
                        "Publish an MTA-STS policy: {}",
                        example_policy(&domain)
                    )),
                );
            }
        }
        [one] => match parse_txt(one) {
            Ok(rec) => {
                summary.parsed = Some(rec);
                summary.policy_url = Some(policy_url(&domain));
            }
            Err(e) => findings.push(
                Finding::new(
                    CheckId::MtaStsInvalid,
                    format!("the MTA-STS record at {name} is invalid: {e}; senders ignore it"),
                )
                .with_evidence(one.to_string())
                .with_fix(format!(
                    "Replace it with `{name}. TXT \"v=STSv1; id=<YYYYMMDDhhmm>;\"`"
                )),
            ),
        },
        many => findings.push(
            Finding::new(
                CheckId::MtaStsInvalid,
                format!(
                    "{} MTA-STS records at {name}: senders then assume there is no policy",
                    many.len()
                ),
            )
            .with_evidence(
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .with_fix(format!(
                "Keep one record: `{name}. TXT \"v=STSv1; id=<YYYYMMDDhhmm>;\"`"
            )),
        ),
    }
    (summary, findings)
}

/// Judges a fetched policy body against the domain's MX hosts: MTA-STS-INVALID when it does
/// not parse, or when an MX host is matched by no `mx` pattern (mode `none` excepted).
///
/// RFC 8461 §4.1: "Senders MUST first check whether the recipient MX host is a match for one
/// of the "mx" patterns" (in `enforce` mode, delivery to an unmatched MX fails).
pub fn check_policy(
    domain: &str,
    body: &str,
    mx_hosts: &[String],
) -> (Option<StsPolicy>, Vec<Finding>) {
    let domain = normalize_name(domain);
    let url = policy_url(&domain);
    match parse_policy(body) {
        Err(e) => (
            None,
            vec![
                Finding::new(
                    CheckId::MtaStsInvalid,
                    format!("the MTA-STS policy at {url} is invalid: {e}; senders ignore it"),
                )
                .with_evidence(body.chars().take(2000).collect::<String>())
                .with_fix(format!(
                    "Serve a valid policy at {url}: {}",
                    example_policy(&domain)
                )),
            ],
        ),
        Ok(policy) => {
            let mut findings = Vec::new();
            let uncovered: Vec<&str> = mx_hosts
                .iter()
                .map(|h| h.as_str())
                .filter(|h| !h.is_empty() && !policy.covers(h))
                .collect();
            if policy.mode != Mode::None && !uncovered.is_empty() {
                let mut fixed = policy.clone();
                fixed.mx.extend(uncovered.iter().map(|h| normalize_name(h)));
                findings.push(
                    Finding::new(
                        CheckId::MtaStsInvalid,
                        format!(
                            "the MTA-STS policy at {url} (mode {}) does not cover MX host(s) {}",
                            policy.mode,
                            uncovered.join(", ")
                        ),
                    )
                    .with_evidence(body.chars().take(2000).collect::<String>())
                    .with_fix(format!(
                        "Serve this policy at {url} and change the id in _mta-sts.{domain}:\n{fixed}"
                    )),
                );
            }
            (Some(policy), findings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::memory::{MemoryDns, Rr};

    #[test]
    fn txt_records() {
        use MtaStsError::*;
        for (text, expected) in [
            ("v=STSv1; id=20160831085700Z;", Ok("20160831085700Z")),
            ("v=STSv1;id=1", Ok("1")),
            ("v=STSv1 ;\tid=abc ; ext=x-y;", Ok("abc")),
            ("v=STSv1; id=a; id=b", Ok("a")),
            (
                "v=STSv1; id=12345678901234567890123456789012",
                Ok("12345678901234567890123456789012"),
            ),
            (
                "v=STSv1; id=123456789012345678901234567890123",
                Err(InvalidId("123456789012345678901234567890123".into())),
            ),
            (
                "v=STSv1; id=2024-01-01",
                Err(InvalidId("2024-01-01".into())),
            ),
            ("v=STSv1; id=", Err(InvalidId("".into()))),
            ("v=STSv1;", Err(MissingId)),
            ("v=STSv1", Err(MissingId)),
            ("v=STSv1; ext=1", Err(MissingId)),
            ("v=STSv1;; id=1", Err(EmptyField)),
            ("v=STSv1; id=1; bad", Err(InvalidField("bad".into()))),
            ("v=STSv1; id=1; _x=1", Err(InvalidField("_x=1".into()))),
            ("v=STSv1; id=1; x=a b", Err(InvalidField("x=a b".into()))),
            ("v=stsv1; id=1", Err(NotStsV1)),
            (" v=STSv1; id=1", Err(NotStsV1)),
            ("v=STSv10; id=1", Err(NotStsV1)),
            ("v=spf1 -all", Err(NotStsV1)),
        ] {
            assert_eq!(
                parse_txt(text).map(|r| r.id),
                expected.map(str::to_string),
                "{text}"
            );
        }
        let r = parse_txt("v=STSv1; id=1; ext=x-y").unwrap();
        assert_eq!(r.to_string(), "v=STSv1; id=1; ext=x-y;");
    }

    #[test]
    fn policies() {
        use MtaStsError::*;
        let ok = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
        let p = parse_policy(ok).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604_800);
        assert_eq!(
            p.mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        assert_eq!(p.to_string(), ok);
        for (text, expected) in [
            (
                "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\n",
                Ok(Mode::Testing),
            ),
            ("version: STSv1\nmode: none\nmax_age: 86400", Ok(Mode::None)),
            (
                "version:STSv1\nmode:enforce\nmx:a.example\nmax_age:31557600\nfoo: bar\n\n",
                Ok(Mode::Enforce),
            ),
            (
                "version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 1\n",
                Ok(Mode::Enforce),
            ),
            (
                "mode: enforce\nmx: a.example\nmax_age: 1",
                Err(MissingVersion),
            ),
            (
                "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1",
                Err(InvalidVersion("STSv2".into())),
            ),
            (
                "version: STSv1\nmx: a.example\nmax_age: 1",
                Err(MissingMode),
            ),
            (
                "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1",
                Err(InvalidMode("Enforce".into())),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example",
                Err(MissingMaxAge),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1",
                Err(InvalidMaxAge("-1".into())),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901",
                Err(InvalidMaxAge("12345678901".into())),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601",
                Err(MaxAgeTooLarge(31_557_601)),
            ),
            ("version: STSv1\nmode: enforce\nmax_age: 1", Err(MissingMx)),
            (
                "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1",
                Err(InvalidMx("a..example".into())),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.*.example\nmax_age: 1",
                Err(InvalidMx("mail.*.example".into())),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1",
                Err(InvalidMx("*.".into())),
            ),
            (
                "version STSv1\nmode: enforce\nmx: a.example\nmax_age: 1",
                Err(InvalidLine("version STSv1".into())),
            ),
            (
                " version: STSv1\nmode: none\nmax_age: 1",
                Err(InvalidLine(" version: STSv1".into())),
            ),
            (
                "<html>Not found</html>",
                Err(InvalidLine("<html>Not found</html>".into())),
            ),
        ] {
            assert_eq!(parse_policy(text).map(|p| p.mode), expected, "{text:?}");
        }
    }

    #[test]
    fn rfc8461_section_4_1_mx_matching() {
        for (pattern, host, expected) in [
            ("mail.example.com", "mail.example.com", true),
            ("mail.example.com", "MAIL.Example.COM.", true),
            ("Mail.Example.com.", "mail.example.com", true),
            ("mail.example.com", "mail2.example.com", false),
            ("*.example.com", "mx1.example.com", true),
            ("*.example.com", "MX1.EXAMPLE.COM", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.mx1.example.com", false),
            ("*.example.com", ".example.com", false),
            (
                "*.mail.protection.outlook.com",
                "contoso-com.mail.protection.outlook.com",
                true,
            ),
            ("*.", "com", false),
            ("*", "com", false),
            ("", "", false),
        ] {
            assert_eq!(mx_matches(pattern, host), expected, "{pattern} vs {host}");
        }
    }

    fn ids(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn audit_findings() {
        let n = "_mta-sts.contoso.com";
        for (name, dns, receives, expected) in [
            (
                "valid",
                MemoryDns::new().txt_at(n, "v=STSv1; id=20240101;"),
                true,
                vec![],
            ),
            (
                "valid among others",
                MemoryDns::new()
                    .txt_at(n, "google-site-verification=x")
                    .txt_at(n, "v=STSv1; id=1"),
                true,
                vec![],
            ),
            ("missing", MemoryDns::new(), true, vec!["MTA-STS-MISSING"]),
            (
                "unrelated txt only",
                MemoryDns::new().txt_at(n, "hello"),
                true,
                vec!["MTA-STS-MISSING"],
            ),
            ("missing, null mx", MemoryDns::new(), false, vec![]),
            (
                "invalid",
                MemoryDns::new().txt_at(n, "v=STSv1; id=2024-01-01"),
                true,
                vec!["MTA-STS-INVALID"],
            ),
            (
                "wrong case",
                MemoryDns::new().txt_at(n, "v=stsv1; id=1"),
                true,
                vec!["MTA-STS-INVALID"],
            ),
            (
                "two",
                MemoryDns::new()
                    .txt_at(n, "v=STSv1; id=1")
                    .txt_at(n, "v=STSv1; id=2"),
                true,
                vec!["MTA-STS-INVALID"],
            ),
            (
                "lookup fails",
                MemoryDns::new().with(n, Rr::Fail(DnsError::ServFail)),
                true,
                vec!["DNS-LOOKUP-FAILED"],
            ),
        ] {
            let (s, f) = pollster::block_on(audit(&dns, "contoso.com", receives));
            assert_eq!(ids(&f), expected, "{name}");
            assert!(f.iter().all(|f| f.area == Area::Transport));
            assert_eq!(
                s.parsed.is_some(),
                expected.is_empty() && name.starts_with("valid"),
                "{name}"
            );
        }
        let dns = MemoryDns::new().txt_at(n, "v=STSv1; id=1");
        let (s, _) = pollster::block_on(audit(&dns, "contoso.com", true));
        assert_eq!(
            s.policy_url.as_deref(),
            Some("https://mta-sts.contoso.com/.well-known/mta-sts.txt")
        );
    }

    #[test]
    fn policy_coverage() {
        let mx = vec![
            "contoso-com.mail.protection.outlook.com".to_string(),
            "backup.contoso.com".to_string(),
        ];
        let body =
            "version: STSv1\nmode: enforce\nmx: *.mail.protection.outlook.com\nmax_age: 604800\n";
        let (p, f) = check_policy("contoso.com", body, &mx);
        assert!(p.is_some());
        assert_eq!(ids(&f), ["MTA-STS-INVALID"]);
        assert!(f[0].detail.contains("backup.contoso.com"));
        assert!(f[0].fix.contains("mx: backup.contoso.com\r\n"));
        let (_, f) = check_policy("contoso.com", body, &mx[..1]);
        assert!(f.is_empty());
        let (_, f) = check_policy(
            "contoso.com",
            "version: STSv1\nmode: none\nmax_age: 1\n",
            &mx,
        );
        assert!(f.is_empty());
        let (p, f) = check_policy("contoso.com", "garbage", &mx);
        assert!(p.is_none());
        assert_eq!(ids(&f), ["MTA-STS-INVALID"]);
    }

    #[test]
    fn audit_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        assert_send(audit(&MemoryDns::new(), "contoso.com", true));
    }

    proptest::proptest! {
        #[test]
        fn txt_never_panics_and_round_trips(s in "(v=STSv1)?[ \t]*(;[ \t]*(id=[a-zA-Z0-9]{0,34}|[a-z_.-]{1,5}=[!-~]{0,6}|\\PC{0,5})){0,4};?") {
            if let Ok(r) = parse_txt(&s) {
                proptest::prop_assert_eq!(parse_txt(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn policy_never_panics_and_round_trips(
            lines in proptest::collection::vec(
                "(version: STSv1|mode: (enforce|testing|none|x)|max_age: [0-9]{1,9}|mx: (\\*\\.)?[a-z0-9.-]{1,12}|[a-z_]{1,6}:[ -~]{0,8}|\\PC{0,12})",
                0..8,
            ),
            crlf in proptest::bool::ANY,
        ) {
            let body = lines.join(if crlf { "\r\n" } else { "\n" });
            if let Ok(p) = parse_policy(&body) {
                proptest::prop_assert_eq!(parse_policy(&p.to_string()), Ok(p));
            }
        }

        #[test]
        fn valid_txt_round_trips(s in "v=STSv1[ \t]?;[ \t]?(ext[a-z0-9_.-]{0,4}=[!-:<>-~]{1,6}[ \t]?;[ \t]?)?id=[a-zA-Z0-9]{1,32}([ \t]?;[ \t]?x[a-z0-9_.-]{0,6}=[!-:<>-~]{1,6}){0,2};?") {
            let r = parse_txt(&s);
            proptest::prop_assert!(r.is_ok(), "{}: {:?}", s, r);
            let r = r.unwrap();
            proptest::prop_assert_eq!(parse_txt(&r.to_string()), Ok(r));
        }

        #[test]
        fn valid_policy_round_trips(
            mode in "(enforce|testing|none)",
            mx in proptest::collection::vec("(\\*\\.)?[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){1,3}", 1..4),
            max_age in 0u64..=MAX_AGE_LIMIT,
            ext in proptest::collection::vec(("[a-z][a-z0-9_.-]{0,6}", "[!-~]{0,8}"), 0..3),
            crlf in proptest::bool::ANY,
        ) {
            proptest::prop_assume!(
                ext.iter().all(|(k, _)| !["version", "mode", "mx", "max_age"].contains(&k.as_str()))
            );
            let mut lines = vec!["version: STSv1".to_string(), format!("mode: {mode}")];
            lines.extend(mx.iter().map(|m| format!("mx: {m}")));
            lines.push(format!("max_age: {max_age}"));
            lines.extend(ext.iter().map(|(k, v)| format!("{k}: {v}")));
            let body = lines.join(if crlf { "\r\n" } else { "\n" });
            let p = parse_policy(&body);
            proptest::prop_assert!(p.is_ok(), "{:?}: {:?}", body, p);
            let p = p.unwrap();
            proptest::prop_assert_eq!(&p.mx, &mx);
            proptest::prop_assert_eq!(parse_policy(&p.to_string()), Ok(p));
        }

        #[test]
        fn matching_never_panics(p in "\\PC{0,30}", h in "\\PC{0,30}") {
            let _ = mx_matches(&p, &h);
        }
    }
}
