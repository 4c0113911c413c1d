//! SMTP TLS reports (RFC 8460 section 4, JSON), read leniently: missing fields are absent,
//! fields sent as `""` are treated as absent (parsedmarc issue #915), and each deviation is a
//! [`Problem`]. Field names follow the JSON keys.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Mode, Problem, ReportError};

/// Most policies accepted in one report.
pub const MAX_POLICIES: usize = 100_000;
/// Most failure details accepted per policy.
pub const MAX_FAILURE_DETAILS: usize = 100_000;

/// A parsed SMTP TLS report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsReport {
    /// `organization-name`.
    pub organization_name: Option<String>,
    /// `date-range`.
    pub date_range: TlsDateRange,
    /// `contact-info`.
    pub contact_info: Option<String>,
    /// `report-id`.
    pub report_id: Option<String>,
    /// `policies`.
    pub policies: Vec<TlsPolicyReport>,
}

impl TlsReport {
    /// Sum of `total-successful-session-count` over all policies.
    pub fn successful_sessions(&self) -> u64 {
        self.policies.iter().fold(0u64, |n, p| {
            n.saturating_add(p.summary.total_successful_session_count)
        })
    }

    /// Sum of `total-failure-session-count` over all policies.
    pub fn failed_sessions(&self) -> u64 {
        self.policies.iter().fold(0u64, |n, p| {
            n.saturating_add(p.summary.total_failure_session_count)
        })
    }
}

/// `date-range`: RFC 3339 date-times as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsDateRange {
    /// `start-datetime`.
    pub start_datetime: Option<String>,
    /// `end-datetime`.
    pub end_datetime: Option<String>,
}

/// One element of `policies`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsPolicyReport {
    /// `policy`.
    pub policy: TlsPolicy,
    /// `summary`.
    pub summary: TlsSummary,
    /// `failure-details`.
    pub failure_details: Vec<FailureDetail>,
}

/// `policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsPolicy {
    /// `policy-type`: tlsa, sts or no-policy-found.
    pub policy_type: Option<String>,
    /// `policy-string`: the policy's lines.
    pub policy_string: Vec<String>,
    /// `policy-domain`.
    pub policy_domain: Option<String>,
    /// `mx-host`: the MX patterns of an MTA-STS policy.
    pub mx_host: Vec<String>,
}

/// `summary`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsSummary {
    /// `total-successful-session-count`.
    pub total_successful_session_count: u64,
    /// `total-failure-session-count`.
    pub total_failure_session_count: u64,
}

/// One element of `failure-details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FailureDetail {
    /// `result-type`, e.g. starttls-not-supported, certificate-expired, sts-policy-fetch-error.
    pub result_type: Option<String>,
    /// `sending-mta-ip`.
    pub sending_mta_ip: Option<IpAddr>,
    /// `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `receiving-mx-helo`.
    pub receiving_mx_helo: Option<String>,
    /// `receiving-ip`.
    pub receiving_ip: Option<IpAddr>,
    /// `failed-session-count`.
    pub failed_session_count: u64,
    /// `additional-information`.
    pub additional_information: Option<String>,
    /// `failure-reason-code`.
    pub failure_reason_code: Option<String>,
}

struct Ctx {
    problems: Vec<Problem>,
}

impl Ctx {
    fn problem(&mut self, loc: &str, msg: impl Into<String>) {
        if self.problems.len() < 1_000 {
            self.problems.push(Problem::new(Mode::Lenient, loc, msg));
        }
    }

    fn string(&mut self, obj: &Map<String, Value>, key: &str, loc: &str) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.problem(loc, format!("\"{key}\" is not a string: ignored"));
                None
            }
        }
    }

    fn count(&mut self, obj: &Map<String, Value>, key: &str, loc: &str) -> u64 {
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.problem(loc, format!("missing \"{key}\": 0"));
                0
            }
            Some(Value::Number(n)) => n.as_u64().unwrap_or_else(|| {
                self.problem(loc, format!("\"{key}\" {n} is not a count: 0"));
                0
            }),
            Some(Value::String(s)) => s.trim().parse().unwrap_or_else(|_| {
                self.problem(loc, format!("\"{key}\" {s:?} is not a count: 0"));
                0
            }),
            Some(_) => {
                self.problem(loc, format!("\"{key}\" is not a count: 0"));
                0
            }
        }
    }

    fn ip(&mut self, obj: &Map<String, Value>, key: &str, loc: &str) -> Option<IpAddr> {
        let s = self.string(obj, key, loc)?;
        match s.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.problem(
                    loc,
                    format!("\"{key}\" {s:?} is not an IP address: ignored"),
                );
                None
            }
        }
    }

    fn strings(&mut self, obj: &Map<String, Value>, key: &str, loc: &str) -> Vec<String> {
        match obj.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if s.trim().is_empty() => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                self.problem(loc, format!("\"{key}\" is not a list of strings: ignored"));
                Vec::new()
            }
        }
    }
}

fn object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

/// Parse an SMTP TLS report.
///
/// RFC 8460 section 4.4: "The report is composed as a plain text file encoded in the I-JSON
/// format ([RFC7493])." Section 4.3 lists the fields; a report must be a JSON object with a
/// `policies` array, otherwise [`ReportError::NotTlsReport`]. Missing or empty (`""`) fields are
/// absent, with a [`Problem`] where the RFC requires them.
pub fn parse_tls_report(json: &[u8]) -> Result<(TlsReport, Vec<Problem>), ReportError> {
    if json.trim_ascii().is_empty() {
        return Err(ReportError::Empty);
    }
    let value: Value =
        serde_json::from_slice(json).map_err(|e| ReportError::NotTlsReport(e.to_string()))?;
    let Some(root) = value.as_object() else {
        return Err(ReportError::NotTlsReport("not a JSON object".into()));
    };
    let Some(policies) = root.get("policies").and_then(Value::as_array) else {
        return Err(ReportError::NotTlsReport("no \"policies\" array".into()));
    };
    let mut cx = Ctx {
        problems: Vec::new(),
    };
    let mut report = TlsReport {
        organization_name: cx.string(root, "organization-name", "report"),
        contact_info: cx.string(root, "contact-info", "report"),
        report_id: cx.string(root, "report-id", "report"),
        ..TlsReport::default()
    };
    for key in ["organization-name", "report-id"] {
        if !root.contains_key(key) {
            cx.problem("report", format!("missing \"{key}\""));
        }
    }
    match object(root.get("date-range")) {
        Some(dr) => {
            report.date_range = TlsDateRange {
                start_datetime: cx.string(dr, "start-datetime", "date-range"),
                end_datetime: cx.string(dr, "end-datetime", "date-range"),
            }
        }
        None => cx.problem("report", "missing \"date-range\""),
    }
    if policies.len() > MAX_POLICIES {
        return Err(ReportError::NotTlsReport(format!(
            "more than {MAX_POLICIES} policies"
        )));
    }
    for (i, pv) in policies.iter().enumerate() {
        let loc = format!("policies[{i}]");
        let Some(po) = pv.as_object() else {
            cx.problem(&loc, "not an object: skipped");
            continue;
        };
        let mut pr = TlsPolicyReport::default();
        match object(po.get("policy")) {
            Some(p) => {
                let l = format!("{loc}.policy");
                pr.policy = TlsPolicy {
                    policy_type: cx.string(p, "policy-type", &l),
                    policy_string: cx.strings(p, "policy-string", &l),
                    policy_domain: cx
                        .string(p, "policy-domain", &l)
                        .map(|d| d.to_ascii_lowercase()),
                    mx_host: cx.strings(p, "mx-host", &l),
                };
            }
            None => cx.problem(&loc, "missing \"policy\""),
        }
        match object(po.get("summary")) {
            Some(s) => {
                let l = format!("{loc}.summary");
                pr.summary = TlsSummary {
                    total_successful_session_count: cx.count(
                        s,
                        "total-successful-session-count",
                        &l,
                    ),
                    total_failure_session_count: cx.count(s, "total-failure-session-count", &l),
                };
            }
            None => cx.problem(&loc, "missing \"summary\""),
        }
        if let Some(details) = po.get("failure-details").and_then(Value::as_array) {
            for (j, dv) in details.iter().take(MAX_FAILURE_DETAILS).enumerate() {
                let l = format!("{loc}.failure-details[{j}]");
                let Some(d) = dv.as_object() else {
                    cx.problem(&l, "not an object: skipped");
                    continue;
                };
                pr.failure_details.push(FailureDetail {
                    result_type: cx.string(d, "result-type", &l),
                    sending_mta_ip: cx.ip(d, "sending-mta-ip", &l),
                    receiving_mx_hostname: cx.string(d, "receiving-mx-hostname", &l),
                    receiving_mx_helo: cx.string(d, "receiving-mx-helo", &l),
                    receiving_ip: cx.ip(d, "receiving-ip", &l),
                    failed_session_count: cx.count(d, "failed-session-count", &l),
                    additional_information: cx.string(d, "additional-information", &l),
                    failure_reason_code: cx.string(d, "failure-reason-code", &l),
                });
            }
            if details.len() > MAX_FAILURE_DETAILS {
                cx.problem(
                    &loc,
                    format!("more than {MAX_FAILURE_DETAILS} failure details: rest ignored"),
                );
            }
        }
        report.policies.push(pr);
    }
    Ok((report, cx.problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    macro_rules! sample {
        ($p:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../testdata/reports/smtp_tls/",
                $p
            ))
        };
    }

    /// (name, file bytes, org, policy domain, ok sessions, failed sessions)
    type SampleRow<'a> = (&'a str, &'a [u8], &'a str, &'a str, u64, u64);

    #[test]
    fn samples_match_source_md() {
        let table: &[SampleRow] = &[
            (
                "mail.ru",
                sample!("mail.ru.json"),
                "Mail.ru",
                "example.com",
                0,
                1,
            ),
            (
                "rfc8460",
                sample!("rfc8460.json"),
                "Company-X",
                "company-y.example",
                5326,
                303,
            ),
            (
                "smtp_tls",
                sample!("smtp_tls.json"),
                "Example Inc.",
                "example.com",
                0,
                3,
            ),
            (
                "empty fields",
                sample!("empty_failure_detail_fields.json"),
                "Reporter Example",
                "example.com",
                0,
                1,
            ),
        ];
        for (name, json, org, domain, ok, failed) in table {
            let (r, problems) = parse_tls_report(json).unwrap();
            assert_eq!(r.organization_name.as_deref(), Some(*org), "{name}");
            assert_eq!(
                r.policies[0].policy.policy_domain.as_deref(),
                Some(*domain),
                "{name}"
            );
            assert_eq!(
                (r.successful_sessions(), r.failed_sessions()),
                (*ok, *failed),
                "{name}"
            );
            assert!(problems.is_empty(), "{name}: {problems:?}");
            assert!(
                serde_json::to_string(&r)
                    .unwrap()
                    .contains("organization-name")
            );
        }
    }

    #[test]
    fn empty_fields_are_absent() {
        let (r, _) = parse_tls_report(sample!("empty_failure_detail_fields.json")).unwrap();
        let d = &r.policies[0].failure_details[0];
        assert_eq!((d.sending_mta_ip, d.receiving_ip), (None, None));
        assert_eq!(d.receiving_mx_hostname, None);
        assert_eq!(d.additional_information, None);
        assert_eq!(d.failure_reason_code.as_deref(), Some("no-policy-served"));
        assert_eq!(d.failed_session_count, 1);
        assert_eq!(r.policies[0].policy.policy_string.len(), 4);
    }

    #[test]
    fn refused_and_lenient() {
        assert_eq!(parse_tls_report(b"").err(), Some(ReportError::Empty));
        assert!(matches!(
            parse_tls_report(b"[1]"),
            Err(ReportError::NotTlsReport(_))
        ));
        assert!(matches!(
            parse_tls_report(b"{\"a\":1}"),
            Err(ReportError::NotTlsReport(_))
        ));
        let (r, problems) = parse_tls_report(
            br#"{"policies":[{"policy":{"policy-type":"sts"},"summary":{"total-successful-session-count":"7"},"failure-details":[{"sending-mta-ip":"x","failed-session-count":-1}]}, 3]}"#,
        )
        .unwrap();
        assert_eq!(r.successful_sessions(), 7);
        assert_eq!(r.policies.len(), 1);
        assert!(problems.len() >= 4, "{problems:?}");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_tls_report(&bytes);
        }
    }
}
