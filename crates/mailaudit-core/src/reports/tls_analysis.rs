//! Summary of a domain's SMTP TLS reports (RFC 8460) over a period: sessions that succeeded and
//! failed, by policy type, by failure type, by sending MTA and by receiving MX, with what each
//! failure type means and how to fix it.
//!
//! Pure: the caller gives the parsed reports. A report may carry policies for several domains;
//! only the policies of the domain asked for are counted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::tlsrpt_report::TlsReport;

/// Sessions under one policy type (`sts`, `tlsa`, `no-policy-found`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyCount {
    /// `policy-type`, or `unknown` when the report left it out.
    pub policy_type: String,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// Failed sessions of one failure type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    /// `result-type` (RFC 8460 section 4.3), or `unspecified`.
    pub result_type: String,
    /// Failed sessions of this type.
    pub sessions: u64,
    /// What it means and what to do, for the result types RFC 8460 defines.
    pub meaning: Option<&'static str>,
}

/// Failed sessions seen from one sending MTA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtaFailures {
    /// `sending-mta-ip`, or `None` when the reporter left it out.
    pub sending_mta_ip: Option<IpAddr>,
    /// Failed sessions from it.
    pub sessions: u64,
    /// The failure types it reported, sorted.
    pub result_types: Vec<String>,
    /// The MX hosts it failed to reach securely (`receiving-mx-hostname`), sorted.
    pub receiving_mx: Vec<String>,
}

/// What a domain's SMTP TLS reports show over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsDomainSummary {
    /// The policy domain.
    pub domain: String,
    /// Reports with at least one policy of the domain.
    pub reports: u64,
    /// The reporting organizations, sorted.
    pub reporters: Vec<String>,
    /// Successful sessions (`total-successful-session-count`).
    pub successful: u64,
    /// Failed sessions (`total-failure-session-count`).
    pub failed: u64,
    /// Sessions per policy type, by policy type.
    pub policies: Vec<PolicyCount>,
    /// Failed sessions per failure type, most first.
    pub failures: Vec<FailureCount>,
    /// Failed sessions per sending MTA, most first.
    pub sending_mtas: Vec<MtaFailures>,
    /// Failed sessions per receiving MX host, most first.
    pub receiving_mx: Vec<(String, u64)>,
    /// Failed sessions the reports counted in `summary` but did not detail in
    /// `failure-details` (reporters may send only the totals).
    pub undetailed_failures: u64,
}

/// RFC 8460 section 4.3 result types, what they mean for the receiving domain, and the fix.
pub const RESULT_TYPES: &[(&str, &str)] = &[
    (
        "starttls-not-supported",
        "an MX did not offer STARTTLS: the sender delivered in clear text or not at all; \
         enable STARTTLS on that MX (Exchange Online always offers it: look for an old \
         gateway or on-premises host still in MX)",
    ),
    (
        "certificate-host-mismatch",
        "the MX certificate does not name the MX host: install a certificate covering the \
         host name the MX record points to",
    ),
    (
        "certificate-expired",
        "the MX certificate has expired: renew it",
    ),
    (
        "certificate-not-trusted",
        "the MX certificate does not chain to a trusted root (self-signed or missing \
         intermediate): install a publicly trusted certificate with its full chain",
    ),
    (
        "validation-failure",
        "a general validation failure of the MX or its certificate: check the MX's TLS \
         set-up and the reporter's additional information",
    ),
    (
        "tlsa-invalid",
        "a DANE TLSA record does not match the MX certificate: update the TLSA records \
         before (not after) rotating certificates",
    ),
    (
        "dnssec-invalid",
        "DNSSEC validation of the MX or TLSA records failed: check the zone's signatures \
         and DS records",
    ),
    (
        "dane-required",
        "the sender requires DANE and the domain's MX has no usable TLSA records",
    ),
    (
        "sts-policy-fetch-error",
        "the MTA-STS policy could not be fetched from https://mta-sts.<domain>/.well-known/\
         mta-sts.txt: publish it over HTTPS with a valid certificate, or remove the \
         _mta-sts TXT record",
    ),
    (
        "sts-policy-invalid",
        "the MTA-STS policy file is malformed, or the MX hosts do not match its mx: lines: \
         fix the policy file and bump the id= of the _mta-sts TXT record",
    ),
    (
        "sts-webpki-invalid",
        "the certificate of the mta-sts.<domain> policy host is not valid: install a \
         publicly trusted certificate for it",
    ),
];

/// The meaning of a result type, if RFC 8460 defines it.
pub fn meaning(result_type: &str) -> Option<&'static str> {
    RESULT_TYPES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(result_type))
        .map(|(_, m)| *m)
}

fn same_domain(a: &str, b: &str) -> bool {
    a.trim()
        .trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim().trim_end_matches('.'))
}

fn sorted_desc<K: Ord + Clone>(m: BTreeMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Summarizes the policies of `domain` in `reports`.
///
/// RFC 8460 section 4.4: a report's `summary` gives `total-successful-session-count` and
/// `total-failure-session-count` per policy, and `failure-details` the failed sessions by
/// `result-type`, `sending-mta-ip` and `receiving-mx-hostname`. The totals come from
/// `summary`; the breakdowns from `failure-details`, and the failures the details do not
/// account for are [`TlsDomainSummary::undetailed_failures`].
pub fn summarize_tls(domain: &str, reports: &[TlsReport]) -> TlsDomainSummary {
    let mut out = TlsDomainSummary {
        domain: domain.to_string(),
        reports: 0,
        reporters: Vec::new(),
        successful: 0,
        failed: 0,
        policies: Vec::new(),
        failures: Vec::new(),
        sending_mtas: Vec::new(),
        receiving_mx: Vec::new(),
        undetailed_failures: 0,
    };
    let mut reporters = BTreeSet::new();
    let mut policies: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    let mut mtas: BTreeMap<Option<IpAddr>, (u64, BTreeSet<String>, BTreeSet<String>)> =
        BTreeMap::new();
    let mut mxs: BTreeMap<String, u64> = BTreeMap::new();
    let mut detailed = 0u64;
    for r in reports {
        let mine: Vec<_> = r
            .policies
            .iter()
            .filter(|p| {
                p.policy
                    .policy_domain
                    .as_deref()
                    .is_some_and(|d| same_domain(d, domain))
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        out.reports += 1;
        if let Some(org) = &r.organization_name {
            reporters.insert(org.clone());
        }
        for p in mine {
            let ok = p.summary.total_successful_session_count;
            let failed = p.summary.total_failure_session_count;
            out.successful = out.successful.saturating_add(ok);
            out.failed = out.failed.saturating_add(failed);
            let t = p
                .policy
                .policy_type
                .clone()
                .unwrap_or_else(|| "unknown".into())
                .to_ascii_lowercase();
            let e = policies.entry(t).or_default();
            e.0 = e.0.saturating_add(ok);
            e.1 = e.1.saturating_add(failed);
            for d in &p.failure_details {
                let n = d.failed_session_count;
                detailed = detailed.saturating_add(n);
                let rt = d
                    .result_type
                    .clone()
                    .unwrap_or_else(|| "unspecified".into())
                    .to_ascii_lowercase();
                *types.entry(rt.clone()).or_default() += n;
                let m = mtas.entry(d.sending_mta_ip).or_default();
                m.0 = m.0.saturating_add(n);
                m.1.insert(rt);
                if let Some(mx) = &d.receiving_mx_hostname {
                    let mx = mx.trim().trim_end_matches('.').to_ascii_lowercase();
                    m.2.insert(mx.clone());
                    *mxs.entry(mx).or_default() += n;
                }
            }
        }
    }
    out.reporters = reporters.into_iter().collect();
    out.policies = policies
        .into_iter()
        .map(|(policy_type, (successful, failed))| PolicyCount {
            policy_type,
            successful,
            failed,
        })
        .collect();
    out.failures = sorted_desc(types)
        .into_iter()
        .map(|(result_type, sessions)| FailureCount {
            meaning: meaning(&result_type),
            result_type,
            sessions,
        })
        .collect();
    let mut mtas: Vec<MtaFailures> = mtas
        .into_iter()
        .map(|(ip, (sessions, types, mx))| MtaFailures {
            sending_mta_ip: ip,
            sessions,
            result_types: types.into_iter().collect(),
            receiving_mx: mx.into_iter().collect(),
        })
        .collect();
    mtas.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.sending_mta_ip.cmp(&b.sending_mta_ip))
    });
    out.sending_mtas = mtas;
    out.receiving_mx = sorted_desc(mxs);
    out.undetailed_failures = out.failed.saturating_sub(detailed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::parse_tls_report;
    use proptest::prelude::*;

    fn report(json: &str) -> TlsReport {
        parse_tls_report(json.as_bytes())
            .expect("valid test report")
            .0
    }

    const GOOGLE: &str = r#"{
      "organization-name": "Google Inc.", "report-id": "g1",
      "date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"},
      "policies": [
        {"policy": {"policy-type": "sts", "policy-domain": "Contoso.com.", "mx-host": ["*.mail.protection.outlook.com"]},
         "summary": {"total-successful-session-count": 90, "total-failure-session-count": 10},
         "failure-details": [
           {"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.1",
            "receiving-mx-hostname": "mx1.contoso.com", "failed-session-count": 6},
           {"result-type": "starttls-not-supported", "sending-mta-ip": "192.0.2.1",
            "receiving-mx-hostname": "MX2.contoso.com.", "failed-session-count": 3}
         ]},
        {"policy": {"policy-type": "no-policy-found", "policy-domain": "fabrikam.com"},
         "summary": {"total-successful-session-count": 1000, "total-failure-session-count": 50}}
      ]}"#;

    const MICROSOFT: &str = r#"{
      "organization-name": "Microsoft Corporation", "report-id": "m1",
      "date-range": {"start-datetime": "2026-11-02T00:00:00Z", "end-datetime": "2026-11-02T23:59:59Z"},
      "policies": [
        {"policy": {"policy-type": "sts", "policy-domain": "contoso.com"},
         "summary": {"total-successful-session-count": 40, "total-failure-session-count": 8},
         "failure-details": [
           {"result-type": "Certificate-Expired", "sending-mta-ip": "2001:db8::25",
            "receiving-mx-hostname": "mx1.contoso.com", "failed-session-count": 8}
         ]}
      ]}"#;

    #[test]
    fn counts_only_the_domains_policies() {
        let s = summarize_tls("contoso.com", &[report(GOOGLE), report(MICROSOFT)]);
        assert_eq!(s.reports, 2);
        assert_eq!(s.reporters, ["Google Inc.", "Microsoft Corporation"]);
        assert_eq!((s.successful, s.failed), (130, 18));
        assert_eq!(
            s.policies,
            [PolicyCount {
                policy_type: "sts".into(),
                successful: 130,
                failed: 18
            }]
        );
        let types: Vec<(&str, u64)> = s
            .failures
            .iter()
            .map(|f| (f.result_type.as_str(), f.sessions))
            .collect();
        assert_eq!(
            types,
            [("certificate-expired", 14), ("starttls-not-supported", 3)]
        );
        assert!(s.failures[0].meaning.unwrap().contains("renew"));
        assert_eq!(s.sending_mtas.len(), 2);
        assert_eq!(
            s.sending_mtas[0].sending_mta_ip,
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(s.sending_mtas[0].sessions, 9);
        assert_eq!(
            s.sending_mtas[0].receiving_mx,
            ["mx1.contoso.com", "mx2.contoso.com"]
        );
        assert_eq!(
            s.receiving_mx,
            [
                ("mx1.contoso.com".to_string(), 14),
                ("mx2.contoso.com".to_string(), 3)
            ]
        );
        assert_eq!(s.undetailed_failures, 1);

        let f = summarize_tls("fabrikam.com", &[report(GOOGLE), report(MICROSOFT)]);
        assert_eq!((f.reports, f.successful, f.failed), (1, 1000, 50));
        assert_eq!(f.policies[0].policy_type, "no-policy-found");
        assert!(f.failures.is_empty());
        assert_eq!(f.undetailed_failures, 50);

        let none = summarize_tls("example.org", &[report(GOOGLE)]);
        assert_eq!((none.reports, none.successful, none.failed), (0, 0, 0));
    }

    #[test]
    fn every_rfc_result_type_has_a_meaning() {
        for t in [
            "starttls-not-supported",
            "certificate-host-mismatch",
            "certificate-expired",
            "certificate-not-trusted",
            "validation-failure",
            "tlsa-invalid",
            "dnssec-invalid",
            "dane-required",
            "sts-policy-fetch-error",
            "sts-policy-invalid",
            "sts-webpki-invalid",
        ] {
            assert!(meaning(t).is_some(), "{t}");
        }
        assert_eq!(meaning("made-up"), None);
    }

    #[test]
    fn stored_form_reparses_to_the_same_report() {
        // The store keeps the parsed report as JSON; its keys are RFC 8460's, so it reads back.
        for r in [report(GOOGLE), report(MICROSOFT)] {
            let json = serde_json::to_vec(&r).unwrap();
            assert_eq!(parse_tls_report(&json).unwrap().0, r);
        }
    }

    proptest! {
        #[test]
        fn totals_are_consistent(counts in proptest::collection::vec((0u64..1_000_000, 0u64..1_000, 0u64..1_000), 0..20)) {
            let reports: Vec<TlsReport> = counts.iter().map(|(ok, fail, detail)| {
                report(&format!(r#"{{"policies":[{{"policy":{{"policy-type":"sts","policy-domain":"d.example"}},
                  "summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{fail}}},
                  "failure-details":[{{"result-type":"validation-failure","failed-session-count":{detail}}}]}}]}}"#))
            }).collect();
            let s = summarize_tls("d.example", &reports);
            prop_assert_eq!(s.successful, counts.iter().map(|c| c.0).sum::<u64>());
            prop_assert_eq!(s.failed, counts.iter().map(|c| c.1).sum::<u64>());
            let detailed: u64 = s.failures.iter().map(|f| f.sessions).sum();
            prop_assert_eq!(detailed, counts.iter().map(|c| c.2).sum::<u64>());
            prop_assert!(s.undetailed_failures <= s.failed);
        }
    }
}
