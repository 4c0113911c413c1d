//! SMTP TLS Reporting (RFC 8460): the `_smtp._tls` TXT record.
//!
//! A domain asks senders for daily reports of TLS failures on its MX hosts by publishing
//! `v=TLSRPTv1; rua=mailto:...` (or `https://...`) at `_smtp._tls.<domain>`. [`parse`] reads
//! the record; [`audit`] looks it up. docs/checks.md has no separate "invalid" identifier: a record
//! that is present but invalid is reported as TLSRPT-MISSING, with a detail saying why, since
//! senders then behave as if there were none.

use std::fmt;

use serde::Serialize;

use crate::checks::{Area, CheckId};
use crate::dns::{DnsSource, normalize_name, txt_tagged};
use crate::finding::Finding;

/// A parsed TLS-RPT record. Field names are the RFC 8460 tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsRptRecord {
    /// `rua`: the report destinations (`mailto:` or `https:` URIs), in order.
    pub rua: Vec<String>,
    /// Other `name=value` fields, in order (ignored by senders).
    pub extensions: Vec<(String, String)>,
}

/// Why a TLS-RPT record is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRptError {
    /// The record does not begin with `v=TLSRPTv1` followed by `;`.
    #[error("the record does not begin with \"v=TLSRPTv1;\"")]
    NotTlsRptV1,
    /// No `rua` field.
    #[error("no rua field")]
    MissingRua,
    /// More than one `rua` field.
    #[error("more than one rua field")]
    DuplicateRua,
    /// An empty field between two `;`.
    #[error("empty field")]
    EmptyField,
    /// A field that is not `name=value` with a valid name and value.
    #[error("invalid field {0:?}")]
    InvalidField(String),
    /// A `rua` URI that is neither a `mailto:` address nor an `https://` URL.
    #[error("rua {0:?} is not a mailto: address or an https:// URL")]
    InvalidUri(String),
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

/// Whether `uri` is a usable report destination: `mailto:local@domain` or `https://host...`,
/// printable ASCII without spaces, commas or semicolons (which must be percent-encoded).
fn is_rua_uri(uri: &str) -> bool {
    if uri.is_empty()
        || !uri
            .chars()
            .all(|c| c.is_ascii_graphic() && c != ',' && c != ';')
    {
        return false;
    }
    let lower = uri.to_ascii_lowercase();
    if let Some(addr) = lower.strip_prefix("mailto:") {
        let addr = addr.split('?').next().unwrap_or("");
        return match addr.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && domain.split('.').all(|l| {
                        !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            }
            None => false,
        };
    }
    if let Some(rest) = lower.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let host = host.split(':').next().unwrap_or("");
        return !host.is_empty() && !host.starts_with('.') && !host.ends_with('.');
    }
    false
}

/// Parses a TLS-RPT record.
///
/// RFC 8460 §3: "tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
/// field-delim = *WSP ";" *WSP [...] tlsrpt-version = %s"v=TLSRPTv1" tlsrpt-rua = %s"rua="
/// tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) tlsrpt-uri = URI [...] tlsrpt-ext-name = (ALPHA /
/// DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") tlsrpt-ext-value = 1*(%x21-3A / %x3C /
/// %x3E-7E)". The "rua" URIs are "mailto:" or "https:" (§3: "Two URI schemes are supported").
pub fn parse(text: &str) -> Result<TlsRptRecord, TlsRptError> {
    let rest = text
        .strip_prefix("v=TLSRPTv1")
        .ok_or(TlsRptError::NotTlsRptV1)?;
    let mut parts = rest.split(';');
    if !parts.next().unwrap_or("").chars().all(is_wsp) {
        return Err(TlsRptError::NotTlsRptV1);
    }
    let fields: Vec<&str> = parts.collect();
    let mut rua: Option<Vec<String>> = None;
    let mut extensions = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let field = field.trim_matches(is_wsp);
        if field.is_empty() {
            if i + 1 == fields.len() && i > 0 {
                break;
            }
            return Err(if fields.len() == 1 {
                TlsRptError::MissingRua
            } else {
                TlsRptError::EmptyField
            });
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(TlsRptError::InvalidField(field.to_string()));
        };
        if name == "rua" {
            if rua.is_some() {
                return Err(TlsRptError::DuplicateRua);
            }
            let mut uris = Vec::new();
            for uri in value.split(',') {
                let uri = uri.trim_matches(is_wsp);
                if !is_rua_uri(uri) {
                    return Err(TlsRptError::InvalidUri(uri.to_string()));
                }
                uris.push(uri.to_string());
            }
            rua = Some(uris);
        } else if is_ext_name(name) && is_ext_value(value) {
            extensions.push((name.to_string(), value.to_string()));
        } else {
            return Err(TlsRptError::InvalidField(field.to_string()));
        }
    }
    Ok(TlsRptRecord {
        rua: rua.ok_or(TlsRptError::MissingRua)?,
        extensions,
    })
}

impl fmt::Display for TlsRptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=TLSRPTv1; rua={}", self.rua.join(","))?;
        for (name, value) in &self.extensions {
            write!(f, "; {name}={value}")?;
        }
        Ok(())
    }
}

/// What the TLS-RPT check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsRptSummary {
    /// The `v=TLSRPTv1` TXT record read, verbatim (the first, if several).
    pub record: Option<String>,
    /// The parsed record, when there is exactly one and it is valid.
    pub parsed: Option<TlsRptRecord>,
}

/// Audits the `_smtp._tls` TXT record of `domain`. `receives_mail` is false for a null-MX
/// domain, which needs no TLS reports (nothing is reported for it).
///
/// RFC 8460 §3: "If multiple TXT records for "_smtp._tls" are returned by the resolver,
/// records that do not begin with "v=TLSRPTv1;" are discarded. If the number of resulting
/// records is not one, senders MUST assume the recipient domain does not implement TLSRPT."
///
/// A TXT record beginning `v=TLSRPTv1` in any letter case counts as an attempt. Findings:
/// TLSRPT-MISSING (none, several, or one that is invalid, the detail says which) and
/// DNS-LOOKUP-FAILED (area transport).
pub async fn audit<D: DnsSource>(
    dns: &D,
    domain: &str,
    receives_mail: bool,
) -> (TlsRptSummary, Vec<Finding>) {
    let domain = normalize_name(domain);
    let name = format!("_smtp._tls.{domain}");
    let mut summary = TlsRptSummary::default();
    let mut findings = Vec::new();
    let candidates = match txt_tagged(dns, &name, "v=TLSRPTv1").await {
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
    let fix = format!("Publish `{name}. TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\"`");
    let problem = match candidates.as_slice() {
        [] => Some((
            format!("no TLS-RPT record at {name}: TLS delivery failures to {domain} go unreported"),
            None,
        )),
        [one] => match parse(one) {
            Ok(rec) => {
                summary.parsed = Some(rec);
                None
            }
            Err(e) => Some((
                format!(
                    "the TLS-RPT record at {name} is present but invalid ({e}); senders ignore it"
                ),
                Some(one.to_string()),
            )),
        },
        many => Some((
            format!(
                "{} TLS-RPT records at {name} are present; senders then assume there is none \
                 (RFC 8460 §3)",
                many.len()
            ),
            Some(
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        )),
    };
    if let Some((detail, evidence)) = problem
        && receives_mail
    {
        let mut f = Finding::new(CheckId::TlsrptMissing, detail).with_fix(fix);
        if let Some(e) = evidence {
            f = f.with_evidence(e);
        }
        findings.push(f);
    }
    (summary, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::memory::{MemoryDns, Rr};

    #[test]
    fn records() {
        use TlsRptError::*;
        for (text, expected) in [
            (
                "v=TLSRPTv1; rua=mailto:reports@example.com",
                Ok(vec!["mailto:reports@example.com"]),
            ),
            (
                "v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt;",
                Ok(vec!["https://reporting.example.com/v1/tlsrpt"]),
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.net:8443/x ; ext=1",
                Ok(vec!["mailto:a@example.com", "https://r.example.net:8443/x"]),
            ),
            (
                "v=TLSRPTv1; rua=MAILTO:A@Example.COM",
                Ok(vec!["MAILTO:A@Example.COM"]),
            ),
            ("v=TLSRPTv1;", Err(MissingRua)),
            ("v=TLSRPTv1", Err(MissingRua)),
            ("v=TLSRPTv1; x=1", Err(MissingRua)),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com",
                Err(DuplicateRua),
            ),
            ("v=TLSRPTv1;; rua=mailto:a@example.com", Err(EmptyField)),
            (
                "v=TLSRPTv1; rua=a@example.com",
                Err(InvalidUri("a@example.com".into())),
            ),
            (
                "v=TLSRPTv1; rua=http://example.com/r",
                Err(InvalidUri("http://example.com/r".into())),
            ),
            (
                "v=TLSRPTv1; rua=mailto:example.com",
                Err(InvalidUri("mailto:example.com".into())),
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@localhost",
                Err(InvalidUri("mailto:a@localhost".into())),
            ),
            (
                "v=TLSRPTv1; rua=https://",
                Err(InvalidUri("https://".into())),
            ),
            ("v=TLSRPTv1; rua=", Err(InvalidUri("".into()))),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com,",
                Err(InvalidUri("".into())),
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com; junk",
                Err(InvalidField("junk".into())),
            ),
            ("v=tlsrptv1; rua=mailto:a@example.com", Err(NotTlsRptV1)),
            ("v=TLSRPTv10; rua=mailto:a@example.com", Err(NotTlsRptV1)),
            ("v=STSv1; id=1", Err(NotTlsRptV1)),
        ] {
            let got = parse(text).map(|r| r.rua);
            let expected = expected.map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>());
            assert_eq!(got, expected, "{text}");
        }
        let r =
            parse("v=TLSRPTv1 ; rua=mailto:a@example.com , https://r.example.net/x;ext=1").unwrap();
        assert_eq!(
            r.to_string(),
            "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x; ext=1"
        );
    }

    #[test]
    fn audit_findings() {
        let n = "_smtp._tls.contoso.com";
        for (name, dns, receives, expected, detail) in [
            (
                "valid",
                MemoryDns::new().txt_at(n, "v=TLSRPTv1; rua=mailto:tls@contoso.com"),
                true,
                vec![],
                "",
            ),
            (
                "missing",
                MemoryDns::new(),
                true,
                vec!["TLSRPT-MISSING"],
                "no TLS-RPT record",
            ),
            (
                "other txt only",
                MemoryDns::new().txt_at(n, "v=spf1 -all"),
                true,
                vec!["TLSRPT-MISSING"],
                "no TLS-RPT record",
            ),
            ("missing, null mx", MemoryDns::new(), false, vec![], ""),
            (
                "invalid",
                MemoryDns::new().txt_at(n, "v=TLSRPTv1; rua=tls@contoso.com"),
                true,
                vec!["TLSRPT-MISSING"],
                "present but invalid",
            ),
            (
                "misspelt",
                MemoryDns::new().txt_at(n, "v=TLSRPTV1; rua=mailto:tls@contoso.com"),
                true,
                vec!["TLSRPT-MISSING"],
                "present but invalid",
            ),
            (
                "two",
                MemoryDns::new()
                    .txt_at(n, "v=TLSRPTv1; rua=mailto:a@contoso.com")
                    .txt_at(n, "v=TLSRPTv1; rua=mailto:b@contoso.com"),
                true,
                vec!["TLSRPT-MISSING"],
                "2 TLS-RPT records",
            ),
            (
                "lookup fails",
                MemoryDns::new().with(n, Rr::Fail(DnsError::Timeout)),
                true,
                vec!["DNS-LOOKUP-FAILED"],
                "timed out",
            ),
        ] {
            let (s, f) = pollster::block_on(audit(&dns, "contoso.com", receives));
            let ids: Vec<_> = f.iter().map(|f| f.id.as_str()).collect();
            assert_eq!(ids, expected, "{name}");
            assert!(
                f.iter()
                    .all(|f| f.area == Area::Transport && f.detail.contains(detail)),
                "{name}: {f:?}"
            );
            assert_eq!(s.parsed.is_some(), name == "valid", "{name}");
        }
    }

    #[test]
    fn audit_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        assert_send(audit(&MemoryDns::new(), "contoso.com", true));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "(v=TLSRPTv1)?[ \t]*(;[ \t]*(rua=((mailto:[a-z]{1,4}@[a-z]{1,4}\\.[a-z]{2}|https://[a-z.]{1,8}/?[!-~]{0,5}|\\PC{0,6})[ ,]{0,2}){1,3}|[a-z_.-]{1,5}=[!-~]{0,6}|\\PC{0,5})){0,4};?") {
            if let Ok(r) = parse(&s) {
                proptest::prop_assert_eq!(parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn valid_records_round_trip(
            s in "v=TLSRPTv1[ \t]?;[ \t]?rua=(mailto:[a-z.+]{1,6}@[a-z]{1,6}\\.[a-z]{2,3}|https://[a-z]{1,8}\\.[a-z]{2}(/[a-z0-9?=&%]{0,8})?)([ \t]?,[ \t]?mailto:[a-z]{1,4}@[a-z]{1,4}\\.[a-z]{2}){0,2}(; [a-z][a-z0-9_.-]{0,5}=[!-:<>-~]{1,8}){0,2};?",
        ) {
            let r = parse(&s);
            proptest::prop_assert!(r.is_ok(), "{s}: {r:?}");
            let r = r.unwrap();
            proptest::prop_assert_eq!(parse(&r.to_string()), Ok(r));
        }
    }
}
