//! Tests of the Exchange Online module: the real ScubaGear exports, hand-made bundles for every
//! EXO-* check, the serialisation traps, the script/importer contract, correlation and diff.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::parse::{READ, iso_from_millis, sender_domain};
use super::*;
use crate::checks::CheckId;
use crate::guide::{ReportView, SelectorView};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/exo");

/// The real exports of `testdata/exo` (tenant tqhjy), parsed: shared with the guide's tenant
/// tests.
pub(crate) fn real_exports() -> TenantConfig {
    let mut files = Vec::new();
    for name in [
        "org_config.json",
        "accepted_domains.json",
        "inbound_connectors.json",
        "outbound_connectors.json",
        "transport_rule.json",
        "dkim_config.json",
        "anti_phish_policies.json",
        "transport_config.json",
        "remote_domains.json",
        "conn_filter.json",
    ] {
        let key = key_for_file(name).unwrap_or_else(|| panic!("no key for {name}"));
        let text = std::fs::read_to_string(format!("{TESTDATA}/{name}")).expect("testdata");
        files.push((key, text));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(k, t)| (*k, t.as_str())).collect();
    let (t, warnings) = parse_exports(&refs).expect("real exports parse");
    // The only warning: the org config predates RejectDirectSend.
    assert_eq!(
        warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["org_config[0].RejectDirectSend: absent (export older than the property)"]
    );
    t
}

fn ids(findings: &[crate::Finding]) -> Vec<(CheckId, String)> {
    findings.iter().map(|f| (f.id, f.detail.clone())).collect()
}

#[test]
fn real_exports_parse() {
    let t = real_exports();
    assert_eq!(t.organization.as_deref(), Some("tqhjy.onmicrosoft.com"));
    assert_eq!(t.org.as_ref().and_then(|o| o.reject_direct_send), None);
    assert_eq!(
        t.accepted_domains
            .iter()
            .map(|d| d.domain_name.as_str())
            .collect::<Vec<_>>(),
        [
            "tqhjy.onmicrosoft.com",
            "tqhjy.mail.onmicrosoft.com",
            "example.com",
            "subdomain.example.com",
            "sub.subdomain.example.com",
            "test365.tqhjy.dhs.gov",
            "testtesttest.test365.tqhjy.dhs.gov",
        ]
    );
    assert!(t.accepted_domains[0].initial_domain && t.accepted_domains[0].default);
    assert!(t.accepted_domains[1].is_coexistence);
    assert_eq!(t.inbound_connectors.len(), 1);
    let c = &t.inbound_connectors[0];
    assert_eq!(c.name, "inbound connector test 1");
    assert_eq!(c.sender_domains, ["test.domain.com"]);
    assert_eq!(c.connector_type.as_deref(), Some("Partner"));
    assert_eq!(c.require_tls, Some(true));
    assert_eq!(c.when_changed.as_deref(), Some("2026-03-03T01:15:23Z"));
    // `[null]`: no outbound connector.
    assert!(t.outbound_connectors.is_empty() && t.has("outbound_connectors"));
    assert_eq!(t.transport_rules.len(), 1);
    assert_eq!(
        t.transport_rules[0].from_scope.as_deref(),
        Some("NotInOrganization")
    );
    assert!(!t.transport_rules[0].blocks());
    assert_eq!(t.dkim.len(), 2);
    assert_eq!(t.dkim[0].selector1_key_size, Some(2048));
    assert_eq!(t.anti_phish.len(), 3);
    assert_eq!(t.anti_phish[0].phish_threshold_level, Some(2));
    assert_eq!(
        t.transport_config,
        Some(TransportConfig {
            smtp_client_authentication_disabled: Some(true)
        })
    );
    assert_eq!(t.remote_domains[0].domain_name, "*");
    assert_eq!(t.remote_domains[0].auto_forward_enabled, Some(false));
    assert_eq!(t.connection_filter[0].name, "Default");
    // Not exports of the script: ScubaGear's own DNS look-ups.
    for other in [
        "dkim_records.json",
        "dmarc_records.json",
        "spf_records.json",
        "sharing_policy.json",
    ] {
        assert_eq!(key_for_file(other), None, "{other}");
    }
}

#[test]
fn real_exports_findings() {
    let t = real_exports();
    let f = evaluate(&t);
    // Read from the files by hand:
    // - org_config has no RejectDirectSend → Direct Send allowed;
    // - "inbound connector test 1": enabled Partner, SenderDomains smtp:test.domain.com;1, no IPs,
    //   no restriction → unrestricted; RequireTls true → no TLS finding;
    // - DKIM configs only for the two onmicrosoft domains → the five custom domains lack DKIM;
    // - the one transport rule only prepends "[External]" → no anti-spoofing rule, no SCL -1;
    // - the default anti-phish policy protects John Doe, org domains, mailbox intelligence → none;
    // - SmtpClientAuthenticationDisabled true → none; no outbound spam policy exported → none.
    let expected = vec![
        (CheckId::ExoDirectsendAllowed, "RejectDirectSend is absent from the export (older module or tenant): Direct Send is accepted unless it was turned on since".to_string()),
        (CheckId::ExoConnectorUnrestricted, "enabled partner connector 'inbound connector test 1' accepts test.domain.com from any IP address and without a certificate restriction".to_string()),
        (CheckId::ExoDkimDisabled, "example.com: no DKIM signing config; mail is signed only as the onmicrosoft.com domain".to_string()),
        (CheckId::ExoDkimDisabled, "subdomain.example.com: no DKIM signing config; mail is signed only as the onmicrosoft.com domain".to_string()),
        (CheckId::ExoDkimDisabled, "sub.subdomain.example.com: no DKIM signing config; mail is signed only as the onmicrosoft.com domain".to_string()),
        (CheckId::ExoDkimDisabled, "test365.tqhjy.dhs.gov: no DKIM signing config; mail is signed only as the onmicrosoft.com domain".to_string()),
        (CheckId::ExoDkimDisabled, "testtesttest.test365.tqhjy.dhs.gov: no DKIM signing config; mail is signed only as the onmicrosoft.com domain".to_string()),
        (CheckId::ExoAntispoofRuleMissing, "no transport rule rejects external mail using example.com, subdomain.example.com, sub.subdomain.example.com, test365.tqhjy.dhs.gov, testtesttest.test365.tqhjy.dhs.gov".to_string()),
    ];
    assert_eq!(ids(&f), expected);
    assert_eq!(f[0].fix, "Set-OrganizationConfig -RejectDirectSend $true");
    assert!(f[1].fix.starts_with(
        "Set-InboundConnector -Identity 'inbound connector test 1' -SenderIPAddresses"
    ));
    assert!(
        f[1].evidence
            .as_deref()
            .is_some_and(|e| e.contains("RestrictDomainsToIPAddresses = False"))
    );
    assert!(
        f[2].fix
            .starts_with("New-DkimSigningConfig -DomainName 'example.com' -Enabled $false")
    );
    assert!(
        f[7].fix
            .starts_with("New-TransportRule -Name 'Reject spoofed ")
    );
    assert!(f[7].evidence.as_deref().is_some_and(|e| {
        e.contains(r#"'Sender is located outside the organization prepend "[External]"'"#)
    }));
    for finding in &f {
        assert!(finding.evidence.is_some(), "{:?}", finding.id);
    }
}

/// A bundle with the given keys (everything else not collected).
fn bundle(v: Value) -> TenantConfig {
    let mut obj = json!({"mailaudit_bundle": 1});
    if let (Some(o), Value::Object(extra)) = (obj.as_object_mut(), v) {
        o.extend(extra);
    }
    parse_bundle(&obj.to_string()).expect("bundle parses").0
}

fn found(t: &TenantConfig, id: CheckId) -> Vec<crate::Finding> {
    evaluate(t).into_iter().filter(|f| f.id == id).collect()
}

fn domains() -> Value {
    json!([
        {"DomainName": "contoso.onmicrosoft.com", "InitialDomain": true, "Default": false},
        {"DomainName": "contoso.mail.onmicrosoft.com", "IsCoexistenceDomain": true},
        {"DomainName": "Contoso.com", "Default": true, "DomainType": "Authoritative"},
        {"DomainName": "fabrikam.com", "DomainType": 0}
    ])
}

#[test]
fn direct_send() {
    for (org, fires) in [
        (json!({"RejectDirectSend": true}), false),
        (json!({"RejectDirectSend": "True"}), false),
        (json!([{"RejectDirectSend": true}]), false),
        (json!({"RejectDirectSend": false}), true),
        (json!({"RejectDirectSend": null}), true),
        (json!({"Name": "contoso.onmicrosoft.com"}), true),
        (json!([]), true),
    ] {
        let t = bundle(json!({"org_config": org}));
        assert_eq!(
            found(&t, CheckId::ExoDirectsendAllowed).len(),
            usize::from(fires),
            "{org}"
        );
    }
    // Not collected: no verdict.
    assert!(
        found(
            &bundle(json!({"accepted_domains": []})),
            CheckId::ExoDirectsendAllowed
        )
        .is_empty()
    );
}

#[test]
fn connectors() {
    let base = json!({"Name": "Scanner", "Enabled": true, "ConnectorType": "Partner",
        "SenderDomains": ["smtp:contoso.com;1"], "SenderIPAddresses": [], "RequireTls": true,
        "RestrictDomainsToIPAddresses": false, "RestrictDomainsToCertificate": false,
        "TlsSenderCertificateName": null});
    let with = |patch: Value| {
        let mut c = base.clone();
        if let (Some(o), Value::Object(p)) = (c.as_object_mut(), patch) {
            o.extend(p);
        }
        bundle(json!({"inbound_connectors": c}))
    };
    for (patch, unrestricted, no_tls) in [
        (json!({}), true, false),
        (json!({"SenderDomains": "smtp:*;1"}), true, false),
        (json!({"Enabled": false}), false, false),
        (
            json!({"Enabled": "False", "RequireTls": false}),
            false,
            false,
        ),
        (json!({"ConnectorType": "OnPremises"}), false, false),
        (
            json!({"RestrictDomainsToIPAddresses": true, "SenderIPAddresses": ["203.0.113.10"]}),
            false,
            false,
        ),
        // restricted to IPs, but the list is empty: not a restriction
        (json!({"RestrictDomainsToIPAddresses": true}), true, false),
        (
            json!({"RestrictDomainsToCertificate": true, "TlsSenderCertificateName": "mail.fabrikam.com"}),
            false,
            false,
        ),
        (json!({"RestrictDomainsToCertificate": true}), true, false),
        (json!({"RequireTls": false}), true, true),
        // RequireTls is a partner connector's setting: an OnPremises connector is not reported.
        (
            json!({"RequireTls": "false", "ConnectorType": "OnPremises"}),
            false,
            false,
        ),
        (json!({"SenderDomains": null}), false, false),
        (json!({"SenderDomains": []}), false, false),
    ] {
        let t = with(patch.clone());
        assert_eq!(
            found(&t, CheckId::ExoConnectorUnrestricted).len(),
            usize::from(unrestricted),
            "{patch}"
        );
        assert_eq!(
            found(&t, CheckId::ExoConnectorNoTls).len(),
            usize::from(no_tls),
            "{patch}"
        );
    }
    let f = found(
        &with(json!({"RequireTls": false})),
        CheckId::ExoConnectorNoTls,
    );
    assert_eq!(
        f[0].fix,
        "Set-InboundConnector -Identity 'Scanner' -RequireTls $true"
    );
    let f = found(
        &with(json!({"SenderDomains": "smtp:*;1", "SenderIPAddresses": "203.0.113.10"})),
        CheckId::ExoConnectorUnrestricted,
    );
    assert!(f[0].detail.contains("every sender domain (*)"));
    assert!(f[0].fix.starts_with(
        "Set-InboundConnector -Identity 'Scanner' -RestrictDomainsToIPAddresses $true"
    ));
}

#[test]
fn dkim() {
    for (dkim, expected) in [
        (json!([]), vec!["contoso.com", "fabrikam.com"]),
        (json!(null), vec!["contoso.com", "fabrikam.com"]),
        (
            json!([{"Domain": "contoso.com", "Enabled": true}, {"Domain": "fabrikam.com", "Enabled": true}]),
            vec![],
        ),
        (
            json!({"Domain": "contoso.com", "Enabled": "True"}),
            vec!["fabrikam.com"],
        ),
        (
            json!([{"Domain": "contoso.com", "Enabled": false, "Status": "CnameMissing",
                    "Selector1CNAME": "selector1-contoso-com._domainkey.contoso.onmicrosoft.com",
                    "Selector2CNAME": "selector2-contoso-com._domainkey.contoso.onmicrosoft.com"},
                   {"Domain": "fabrikam.com", "Enabled": true},
                   {"Domain": "contoso.onmicrosoft.com", "Enabled": false}]),
            vec!["contoso.onmicrosoft.com", "contoso.com"],
        ),
    ] {
        let t = bundle(json!({"accepted_domains": domains(), "dkim_config": dkim}));
        let got: Vec<String> = found(&t, CheckId::ExoDkimDisabled)
            .iter()
            .map(|f| f.detail.split(':').next().unwrap_or("").to_string())
            .collect();
        assert_eq!(got, expected, "{dkim}");
    }
    let t = bundle(json!({"accepted_domains": domains(), "dkim_config": [
        {"Domain": "contoso.com", "Enabled": false, "Selector1CNAME": "s1.example", "Selector2CNAME": "s2.example"},
        {"Domain": "fabrikam.com", "Enabled": true}]}));
    assert_eq!(
        found(&t, CheckId::ExoDkimDisabled)[0].fix,
        "# publish first: selector1._domainkey.contoso.com CNAME s1.example\n# and: selector2._domainkey.contoso.com CNAME s2.example\nSet-DkimSigningConfig -Identity 'contoso.com' -Enabled $true"
    );
    // No accepted domains export: no verdict.
    assert!(
        found(
            &bundle(json!({"dkim_config": []})),
            CheckId::ExoDkimDisabled
        )
        .is_empty()
    );
}

fn rule(patch: Value) -> Value {
    let mut r = json!({"Name": "Anti-spoof", "State": "Enabled", "Mode": "Enforce",
        "FromScope": "NotInOrganization", "SenderDomainIs": ["contoso.com", "fabrikam.com"],
        "SenderAddressLocation": "HeaderOrEnvelope", "RejectMessageEnhancedStatusCode": "5.7.1",
        "RejectMessageReasonText": "No spoofing", "Quarantine": false, "DeleteMessage": false,
        "SetSCL": null});
    if let (Some(o), Value::Object(p)) = (r.as_object_mut(), patch) {
        o.extend(p);
    }
    r
}

#[test]
fn antispoof() {
    for (rules, missing, audit) in [
        (json!([rule(json!({}))]), false, false),
        (json!(rule(json!({}))), false, false),
        (json!([]), true, false),
        (json!(null), true, false),
        (
            json!([rule(json!({"FromScope": "InOrganization"}))]),
            true,
            false,
        ),
        (json!([rule(json!({"FromScope": 1}))]), false, false),
        (
            json!([rule(
                json!({"RejectMessageEnhancedStatusCode": null, "RejectMessageReasonText": null})
            )]),
            true,
            false,
        ),
        (
            json!([rule(
                json!({"RejectMessageEnhancedStatusCode": null, "RejectMessageReasonText": null, "Quarantine": true})
            )]),
            false,
            false,
        ),
        (
            json!([rule(
                json!({"RejectMessageEnhancedStatusCode": null, "RejectMessageReasonText": null, "DeleteMessage": "True"})
            )]),
            false,
            false,
        ),
        (
            json!([rule(json!({"SenderDomainIs": "contoso.com"}))]),
            true,
            false,
        ),
        (
            json!([rule(
                json!({"SenderDomainIs": null, "HeaderMatchesMessageHeader": "From", "HeaderMatchesPatterns": ["@contoso\\.com$", "@fabrikam\\.com$"]})
            )]),
            false,
            false,
        ),
        (
            json!([rule(
                json!({"SenderDomainIs": null, "FromAddressContainsWords": ["@contoso.com", "fabrikam.com"]})
            )]),
            false,
            false,
        ),
        (
            json!([rule(json!({"SenderDomainIs": ["notcontoso.com"]}))]),
            true,
            false,
        ),
        (json!([rule(json!({"Mode": "Audit"}))]), false, true),
        (
            json!([rule(json!({"Mode": "AuditAndNotify"}))]),
            false,
            true,
        ),
        (json!([rule(json!({"Mode": 0}))]), false, true),
        (json!([rule(json!({"State": "Disabled"}))]), false, true),
        (json!([rule(json!({"State": 1}))]), false, true),
        (
            json!([rule(
                json!({"Mode": "Audit", "SenderDomainIs": "contoso.com"})
            )]),
            true,
            true,
        ),
    ] {
        let t = bundle(json!({"accepted_domains": domains(), "transport_rules": rules}));
        assert_eq!(
            found(&t, CheckId::ExoAntispoofRuleMissing).len(),
            usize::from(missing),
            "{rules}"
        );
        assert_eq!(
            found(&t, CheckId::ExoAntispoofRuleAudit).len(),
            usize::from(audit),
            "{rules}"
        );
    }
    let t = bundle(
        json!({"accepted_domains": domains(), "transport_rules": [rule(json!({"State": "Disabled", "Mode": "Audit"}))]}),
    );
    assert_eq!(
        found(&t, CheckId::ExoAntispoofRuleAudit)[0].fix,
        "Set-TransportRule -Identity 'Anti-spoof' -Mode Enforce\nEnable-TransportRule -Identity 'Anti-spoof'"
    );
    let t = bundle(
        json!({"accepted_domains": domains(), "transport_rules": [rule(json!({"SenderDomainIs": "contoso.com"}))]}),
    );
    let f = found(&t, CheckId::ExoAntispoofRuleMissing);
    assert_eq!(
        f[0].detail,
        "no transport rule rejects external mail using fabrikam.com"
    );
    assert_eq!(
        f[0].fix,
        "Set-TransportRule -Identity 'Anti-spoof' -SenderDomainIs 'contoso.com','fabrikam.com'"
    );
}

#[test]
fn spam_bypass() {
    let bypass = |patch: Value| {
        let mut r = json!({"Name": "Bypass for scanner", "State": "Enabled", "Mode": "Enforce",
            "SenderDomainIs": ["contoso.com"], "SetSCL": "-1"});
        if let (Some(o), Value::Object(p)) = (r.as_object_mut(), patch) {
            o.extend(p);
        }
        bundle(json!({"accepted_domains": domains(), "transport_rules": [r]}))
    };
    for (patch, fires) in [
        (json!({}), true),
        (json!({"SetSCL": -1}), true),
        (json!({"SetSCL": 5}), false),
        (json!({"SetSCL": null}), false),
        (json!({"SenderDomainIs": ["partner.example"]}), false),
        (json!({"State": "Disabled"}), false),
        (
            json!({"SenderDomainIs": null, "FromAddressMatchesPatterns": "@contoso\\.com$"}),
            true,
        ),
    ] {
        assert_eq!(
            found(&bypass(patch.clone()), CheckId::ExoSpamBypassOwnDomain).len(),
            usize::from(fires),
            "{patch}"
        );
    }
    let f = found(&bypass(json!({})), CheckId::ExoSpamBypassOwnDomain);
    assert!(
        f[0].fix
            .starts_with("Remove-TransportRule -Identity 'Bypass for scanner'")
    );
}

#[test]
fn impersonation() {
    let good = json!({"Name": "Office365 AntiPhish Default", "IsDefault": true, "Enabled": true,
        "EnableTargetedUserProtection": true, "TargetedUsersToProtect": ["Jane Doe;jane@contoso.com"],
        "EnableOrganizationDomainsProtection": true, "EnableMailboxIntelligence": true,
        "EnableMailboxIntelligenceProtection": true});
    let with = |patch: Value, rules: Value| {
        let mut p = good.clone();
        if let (Some(o), Value::Object(x)) = (p.as_object_mut(), patch) {
            o.extend(x);
        }
        bundle(
            json!({"anti_phish_policies": p, "anti_phish_rules": rules, "accepted_domains": domains()}),
        )
    };
    let all = [
        CheckId::ExoImpersonationUsersOff,
        CheckId::ExoImpersonationDomainsOff,
        CheckId::ExoMailboxIntelligenceOff,
    ];
    for (patch, rules, expected) in [
        (json!({}), json!([]), vec![]),
        (
            json!({"TargetedUsersToProtect": null}),
            json!([]),
            vec![all[0]],
        ),
        (
            json!({"TargetedUsersToProtect": "Jane Doe;jane@contoso.com"}),
            json!([]),
            vec![],
        ),
        (
            json!({"EnableTargetedUserProtection": false}),
            json!([]),
            vec![all[0]],
        ),
        (
            json!({"EnableOrganizationDomainsProtection": "False"}),
            json!([]),
            vec![all[1]],
        ),
        (
            json!({"EnableMailboxIntelligenceProtection": false}),
            json!([]),
            vec![all[2]],
        ),
        (
            json!({"EnableMailboxIntelligence": null}),
            json!([]),
            vec![all[2]],
        ),
        (json!({"Enabled": false}), json!([]), all.to_vec()),
        // A custom policy whose rule is disabled is not in effect.
        (
            json!({"IsDefault": false, "Name": "Execs"}),
            json!({"Name": "Execs", "AntiPhishPolicy": "Execs", "State": "Disabled"}),
            all.to_vec(),
        ),
        (
            json!({"IsDefault": false, "Name": "Execs"}),
            json!({"Name": "Execs", "AntiPhishPolicy": "Execs", "State": "Enabled"}),
            vec![],
        ),
        // A preset policy has no anti-phish rule.
        (
            json!({"IsDefault": false, "Name": "Strict Preset Security Policy1"}),
            json!([]),
            vec![],
        ),
    ] {
        let t = with(patch.clone(), rules);
        let got: Vec<CheckId> = evaluate(&t).iter().map(|f| f.id).collect();
        assert_eq!(got, expected, "{patch}");
    }
    let f = evaluate(&with(json!({"Enabled": false}), json!([])));
    assert_eq!(
        f[0].fix,
        "Set-AntiPhishPolicy -Identity 'Office365 AntiPhish Default' -EnableTargetedUserProtection $true -TargetedUsersToProtect @{Add='Display Name;user@contoso.com'} -TargetedUserProtectionAction Quarantine"
    );
    // Not collected: no verdict.
    assert!(evaluate(&bundle(json!({"anti_phish_policies": []}))).is_empty());
}

#[test]
fn smtp_auth_and_forwarding() {
    for (tc, fires) in [
        (json!({"SmtpClientAuthenticationDisabled": false}), true),
        (json!({"SmtpClientAuthenticationDisabled": "False"}), true),
        (json!({"SmtpClientAuthenticationDisabled": true}), false),
        (json!({"SmtpClientAuthenticationDisabled": null}), false),
        (json!({}), false),
    ] {
        let t = bundle(json!({"transport_config": tc}));
        assert_eq!(
            found(&t, CheckId::ExoSmtpAuthEnabled).len(),
            usize::from(fires),
            "{tc}"
        );
    }
    for (pol, remote, fires, note) in [
        (
            json!({"Name": "Default", "IsDefault": true, "AutoForwardingMode": "On"}),
            json!([]),
            true,
            "",
        ),
        (
            json!({"Name": "Default", "AutoForwardingMode": 2}),
            json!([]),
            true,
            "",
        ),
        (
            json!({"Name": "Default", "AutoForwardingMode": "Automatic"}),
            json!([]),
            false,
            "",
        ),
        (
            json!({"Name": "Default", "AutoForwardingMode": "Off"}),
            json!({"DomainName": "*", "AutoForwardEnabled": true}),
            false,
            "",
        ),
        (
            json!({"Name": "Default", "AutoForwardingMode": "On"}),
            json!({"DomainName": "*", "AutoForwardEnabled": false}),
            true,
            "still blocks",
        ),
        (
            json!({"Name": "Default", "AutoForwardingMode": "On"}),
            json!({"DomainName": "*", "AutoForwardEnabled": "True"}),
            true,
            "allows it too",
        ),
    ] {
        let t = bundle(json!({"outbound_spam_policies": pol, "remote_domains": remote}));
        let f = found(&t, CheckId::ExoAutoforwardExternal);
        assert_eq!(f.len(), usize::from(fires), "{pol}");
        if fires {
            assert!(f[0].detail.contains(note));
            assert_eq!(
                f[0].fix,
                "Set-HostedOutboundSpamFilterPolicy -Identity 'Default' -AutoForwardingMode Off"
            );
        }
    }
}

#[test]
fn traps() {
    // Windows PowerShell's array wrapper, /Date()/ with an offset, a BOM, booleans as strings.
    let text = "\u{feff}".to_string()
        + &json!({"mailaudit_bundle": "1",
            "inbound_connectors": {"value": [{"Name": "A", "Enabled": "True", "WhenChanged": "/Date(1723810171000+0200)/", "SenderDomains": "SMTP:Contoso.COM;1"}], "Count": 1},
            "accepted_domains": [null, 5, {"DomainName": "contoso.com"}, {"Default": true}],
            "transport_rules": [{"Name": "R", "Priority": "3", "SetSCL": "x", "Quarantine": "maybe", "State": 7}],
            "errors": {"dkim_config": "The term 'Get-DkimSigningConfig' is not recognized"}
        })
        .to_string();
    let (t, w) = parse_bundle(&text).expect("parses");
    assert_eq!(t.inbound_connectors[0].enabled, Some(true));
    assert_eq!(t.inbound_connectors[0].sender_domains, ["contoso.com"]);
    assert_eq!(
        t.inbound_connectors[0].when_changed.as_deref(),
        Some("2024-08-16T12:09:31Z")
    );
    assert_eq!(t.accepted_domains.len(), 1);
    assert_eq!(t.transport_rules[0].priority, Some(3));
    assert_eq!(t.transport_rules[0].set_scl, None);
    assert_eq!(t.transport_rules[0].state.as_deref(), Some("7"));
    assert_eq!(
        t.errors.get("dkim_config").map(String::as_str),
        Some("The term 'Get-DkimSigningConfig' is not recognized")
    );
    let w: Vec<String> = w.iter().map(ToString::to_string).collect();
    for expected in [
        "accepted_domains[1]: not an object: 5",
        "accepted_domains[3].DomainName: missing; object skipped",
        "transport_rules[0].SetSCL: not an integer: \"x\"",
        "transport_rules[0].Quarantine: not a boolean: \"maybe\"",
        "transport_rules[0].State: unknown numeric value 7",
        "org_config: Get-OrganizationConfig was not exported",
    ] {
        assert!(w.iter().any(|x| x == expected), "{expected} not in {w:?}");
    }
    // dkim_config failed: recorded as an error, not also as "not exported".
    assert!(w.iter().any(|x| x == "dkim_config: Get-DkimSigningConfig failed while collecting: The term 'Get-DkimSigningConfig' is not recognized"));
    assert!(
        !w.iter()
            .any(|x| x.contains("Get-DkimSigningConfig was not exported"))
    );
    // A failed cmdlet's `[]` is no data: no verdict from it.
    let (t, _) = parse_bundle(
        &json!({"mailaudit_bundle": 1, "org_config": [], "accepted_domains": [],
                "errors": {"org_config": "Access denied"}})
        .to_string(),
    )
    .expect("parses");
    assert!(!t.has("org_config") && t.has("accepted_domains"));
    assert!(evaluate(&t).is_empty());
}

#[test]
fn bundle_errors() {
    for (text, err) in [
        (
            "",
            ExoError::NotJson("EOF while parsing a value at line 1 column 0".into()),
        ),
        (
            "[]",
            ExoError::NotABundle("the top level is not an object".into()),
        ),
        (
            "{}",
            ExoError::NotABundle("no mailaudit_bundle marker and none of the bundle's keys".into()),
        ),
        (
            r#"{"mailaudit_bundle": 2}"#,
            ExoError::UnsupportedVersion("2".into()),
        ),
    ] {
        assert_eq!(parse_bundle(text).err(), Some(err), "{text}");
    }
    assert!(parse_bundle(r#"{"org_config": {"RejectDirectSend": true}}"#).is_ok());
    assert_eq!(
        parse_export("nope", "[]").err(),
        Some(ExoError::UnknownKey("nope".into()))
    );
}

#[test]
fn file_names() {
    for (name, key) in [
        ("inbound_connectors.json", Some("inbound_connectors")),
        ("/tmp/x/transport_rule.json", Some("transport_rules")),
        ("Get-InboundConnector.json", Some("inbound_connectors")),
        (
            "HostedOutboundSpamFilterPolicy.json",
            Some("outbound_spam_policies"),
        ),
        (
            "C:\\exports\\get-dkimsigningconfig.json",
            Some("dkim_config"),
        ),
        ("conn_filter.json", Some("conn_filter")),
        ("spf_records.json", None),
    ] {
        assert_eq!(key_for_file(name), key, "{name}");
    }
}

/// A sample value for a property, typed as the cmdlet returns it.
fn sample(property: &str) -> Value {
    match property {
        "SenderDomains" => json!(["smtp:contoso.com;1"]),
        "SenderIPAddresses" | "SenderIpRanges" | "ExceptIfSenderIpRanges" | "IPAllowList" => {
            json!(["203.0.113.0/24"])
        }
        "SenderDomainIs" | "RecipientDomains" => json!(["contoso.com"]),
        "SmartHosts" => json!(["mail.contoso.com"]),
        "TargetedUsersToProtect" => json!(["Jane Doe;jane@contoso.com"]),
        "FromAddressContainsWords"
        | "FromAddressMatchesPatterns"
        | "HeaderMatchesPatterns"
        | "HeaderContainsWords" => json!(["contoso.com"]),
        "Priority" | "PhishThresholdLevel" => json!(1),
        "Selector1KeySize" | "Selector2KeySize" => json!(2048),
        "SetSCL" => json!("-1"),
        "WhenChanged" => json!("/Date(1723810171000)/"),
        "DomainName" | "Domain" => json!("contoso.com"),
        "State" => json!("Enabled"),
        "Mode" => json!("Enforce"),
        "FromScope" => json!("NotInOrganization"),
        p if p.starts_with("Enable")
            || p.starts_with("Is")
            || p.starts_with("Restrict")
            || p.starts_with("Require")
            || matches!(
                p,
                "Enabled"
                    | "Default"
                    | "InitialDomain"
                    | "Quarantine"
                    | "DeleteMessage"
                    | "StopRuleProcessing"
                    | "RejectDirectSend"
                    | "SmtpClientAuthenticationDisabled"
                    | "AutoForwardEnabled"
                    | "HonorDmarcPolicy"
            ) =>
        {
            json!(true)
        }
        _ => json!("x"),
    }
}

/// The script and the importer agree: a bundle shaped like the script's output (built from
/// [`CMDLETS`]) is read under every key, and the importer reads no property the script does not
/// select.
#[test]
fn script_and_importer_agree() {
    let mut b = serde_json::Map::new();
    b.insert("mailaudit_bundle".into(), json!(1));
    b.insert("generated".into(), json!("2026-11-28T14:00:00.0000000Z"));
    b.insert("module_version".into(), json!("3.7.1"));
    b.insert("organization".into(), json!("contoso.onmicrosoft.com"));
    for c in CMDLETS {
        let obj: serde_json::Map<String, Value> = c
            .properties
            .iter()
            .map(|p| (p.to_string(), sample(p)))
            .collect();
        b.insert(c.key.into(), json!([obj]));
    }
    b.insert("errors".into(), json!({}));
    READ.with(|r| r.borrow_mut().clear());
    let (t, warnings) = parse_bundle(&Value::Object(b).to_string()).expect("parses");
    assert_eq!(warnings, []);
    assert_eq!(
        t.collected,
        CMDLETS.iter().map(|c| c.key).collect::<Vec<_>>()
    );
    assert_eq!(t.module_version.as_deref(), Some("3.7.1"));
    let counts = [
        ("org_config", usize::from(t.org.is_some())),
        ("accepted_domains", t.accepted_domains.len()),
        ("inbound_connectors", t.inbound_connectors.len()),
        ("outbound_connectors", t.outbound_connectors.len()),
        ("transport_rules", t.transport_rules.len()),
        ("dkim_config", t.dkim.len()),
        ("anti_phish_policies", t.anti_phish.len()),
        ("anti_phish_rules", t.anti_phish_rules.len()),
        (
            "transport_config",
            usize::from(t.transport_config.is_some()),
        ),
        ("outbound_spam_policies", t.outbound_spam.len()),
        ("remote_domains", t.remote_domains.len()),
        ("conn_filter", t.connection_filter.len()),
        ("dnssec_status", t.dnssec_status.len()),
        ("smtp_dane_inbound", t.smtp_dane_inbound.len()),
    ];
    assert_eq!(counts.len(), CMDLETS.len());
    for (key, n) in counts {
        assert!(cmdlet_by_key(key).is_some(), "{key}");
        assert_eq!(n, 1, "{key} not read");
    }
    let read = READ.with(|r| r.borrow().clone());
    for (key, property) in &read {
        let c = cmdlet_by_key(key).expect("known key");
        assert!(
            c.properties.contains(&property.as_str()),
            "the importer reads {key}.{property}, which the script does not select"
        );
    }
    for c in CMDLETS {
        for p in c.properties {
            assert!(
                read.contains(&(c.key.to_string(), p.to_string())),
                "{}.{p} is selected but never read",
                c.key
            );
        }
    }
    // And the script names every key.
    let s = script(&ScriptOptions {
        auth: Auth::Interactive,
    });
    for c in CMDLETS {
        assert!(s.contains(&format!("'{}'", c.key)));
    }
}

#[test]
fn helpers() {
    for (entry, domain) in [
        ("smtp:contoso.com;1", "contoso.com"),
        ("smtp:*;1", "*"),
        ("SMTP:*.Contoso.com;1", "*.contoso.com"),
        ("contoso.com", "contoso.com"),
        ("smtp:", ""),
        ("é", "é"),
    ] {
        assert_eq!(sender_domain(entry), domain, "{entry}");
    }
    for (ms, iso) in [
        (0, "1970-01-01T00:00:00Z"),
        (1_723_810_171_000, "2024-08-16T12:09:31Z"),
        (951_782_400_000, "2000-02-29T00:00:00Z"),
        (-1000, "1969-12-31T23:59:59Z"),
        (i64::MAX, "9999-12-31T23:59:59Z"),
        (i64::MIN, "0000-01-01T00:00:00Z"),
    ] {
        assert_eq!(iso_from_millis(ms), iso);
    }
    for (entry, domain, m) in [
        ("*", "a.example", true),
        ("*.example", "a.example", true),
        ("*.example", "example", false),
        ("A.example.", "a.example", true),
        ("b.example", "a.example", false),
    ] {
        assert_eq!(domain_matches(entry, domain), m, "{entry} {domain}");
    }
    for (text, m) in [
        ("@contoso\\.com$", true),
        ("contoso.com", true),
        ("notcontoso.com", false),
        ("contoso.com.evil", false),
        ("jane@contoso.com", true),
    ] {
        assert_eq!(mentions_domain(text, "contoso.com"), m, "{text}");
    }
    assert_eq!(ps_quote("it's"), "'it''s'");
}

fn report(
    domain: &str,
    selectors: &[(&str, Option<&str>)],
    relay_open: bool,
) -> (String, ReportView) {
    let mut r = ReportView {
        domain: domain.into(),
        ..ReportView::default()
    };
    r.dkim.selectors = selectors
        .iter()
        .map(|(n, c)| SelectorView {
            name: (*n).into(),
            cname: c.map(str::to_string),
            key_bits: None,
        })
        .collect();
    if relay_open {
        r.findings
            .push(crate::Finding::new(CheckId::RelayOpen, "accepted"));
    }
    (domain.to_string(), r)
}

#[test]
fn correlation() {
    let s1 = "selector1-contoso-com._domainkey.contoso.onmicrosoft.com";
    let s2 = "selector2-contoso-com._domainkey.contoso.onmicrosoft.com";
    let t = bundle(json!({
        "org_config": {"Name": "contoso.onmicrosoft.com"},
        "accepted_domains": domains(),
        "dkim_config": [
            {"Domain": "contoso.com", "Enabled": true, "Selector1CNAME": s1, "Selector2CNAME": s2},
            {"Domain": "fabrikam.com", "Enabled": false, "Selector1CNAME": "f1", "Selector2CNAME": "f2"}
        ],
        "inbound_connectors": [{"Name": "Scanner", "Enabled": true, "ConnectorType": "Partner", "SenderDomains": "smtp:contoso.com;1"}],
        "transport_rules": [rule(json!({"SenderDomainIs": "contoso.com"}))]
    }));
    let dns = vec![
        report(
            "contoso.com",
            &[
                ("selector1", Some(&format!("{}.", s1.to_uppercase()))),
                ("selector2", None),
            ],
            true,
        ),
        report(
            "fabrikam.com",
            &[("selector1", Some("f1")), ("selector2", None)],
            false,
        ),
    ];
    let c = correlate(&t, &dns, &["CONTOSO.com.".to_string()]);
    assert_eq!(c.missing_from_inventory, ["fabrikam.com"]);
    assert_eq!(
        c.dkim_mismatch,
        [
            ("contoso.com".to_string(), format!("DKIM signing is enabled in the tenant but selector2._domainkey.contoso.com has no CNAME (expected {s2})")),
            ("fabrikam.com".to_string(), "selector CNAMEs are published (selector1 → f1) but signing is disabled in the tenant: Set-DkimSigningConfig -Identity 'fabrikam.com' -Enabled $true".to_string()),
        ]
    );
    assert_eq!(
        c.relay_explained,
        [(
            "contoso.com".to_string(),
            "RejectDirectSend is absent from the export, so Direct Send is accepted (Set-OrganizationConfig -RejectDirectSend $true); enabled inbound connector(s) 'Scanner' accept contoso.com without an IP or certificate restriction; no inbound connector locks contoso.com down to an IP address or certificate".to_string()
        )]
    );
    assert_eq!(c.antispoof_uncovered, ["fabrikam.com"]);
    assert_eq!(
        c.dkim_cnames,
        [
            ("contoso.com".to_string(), s1.to_string(), s2.to_string()),
            (
                "fabrikam.com".to_string(),
                "f1".to_string(),
                "f2".to_string()
            ),
        ]
    );
    // Nothing collected: nothing to say beyond the inventory.
    assert_eq!(
        correlate(&TenantConfig::default(), &dns, &[]),
        Correlation::default()
    );
}

#[test]
fn diff_between_imports() {
    let old = bundle(json!({
        "org_config": {"Name": "contoso.onmicrosoft.com"},
        "accepted_domains": domains(),
        "dkim_config": [{"Domain": "contoso.com", "Enabled": false}],
        "inbound_connectors": [{"Name": "Scanner", "Enabled": true, "RequireTls": false}, {"Name": "Old", "Enabled": true}],
        "transport_rules": [],
        "anti_phish_policies": {"Name": "Default", "IsDefault": true, "EnableMailboxIntelligence": false}
    }));
    let new = bundle(json!({
        "org_config": {"Name": "contoso.onmicrosoft.com", "RejectDirectSend": true},
        "accepted_domains": domains(),
        "dkim_config": [{"Domain": "contoso.com", "Enabled": true}],
        "inbound_connectors": [{"Name": "Scanner", "Enabled": true, "RequireTls": true}],
        "transport_rules": [rule(json!({}))],
        "anti_phish_policies": {"Name": "Default", "IsDefault": true, "EnableMailboxIntelligence": true}
    }));
    assert_eq!(
        diff(&old, &new),
        [
            "RejectDirectSend: absent → True",
            "inbound connector Scanner changed: require_tls: false → true",
            "inbound connector Old removed",
            "transport rule Anti-spoof added",
            "DKIM signing for contoso.com: disabled → enabled",
            "anti-phishing policy Default changed: enable_mailbox_intelligence: false → true",
        ]
    );
    assert!(diff(&new, &new).is_empty());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| json!(f)),
        "(/Date\\(-?[0-9]{0,15}[+-]?[0-9]{0,4}\\)/|smtp:[*a-z.]{0,10};[0-9]|True|False|-1|On|Enforce|.{0,12})"
            .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("mailaudit_bundle".to_string()),
        Just("errors".to_string()),
        Just("value".to_string()),
        Just("Count".to_string()),
        proptest::sample::select(
            CMDLETS
                .iter()
                .flat_map(|c| std::iter::once(c.key).chain(c.properties.iter().copied()))
                .map(str::to_string)
                .collect::<Vec<_>>()
        ),
        "[a-zA-Z]{1,8}",
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parse_never_panics(v in arb_json(), marker in any::<bool>()) {
        let mut v = v;
        if marker && let Some(o) = v.as_object_mut() {
            o.insert("mailaudit_bundle".into(), json!(1));
        }
        let text = v.to_string();
        if let Ok((t, _)) = parse_bundle(&text) {
            let _ = evaluate(&t);
            let _ = correlate(&t, &[], &[]);
            let _ = diff(&t, &TenantConfig::default());
        }
        for c in CMDLETS {
            if let Ok((t, _)) = parse_export(c.key, &text) {
                let _ = evaluate(&t);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_text(s in ".{0,200}") {
        let _ = parse_bundle(&s);
        let _ = parse_export("org_config", &s);
        let _ = key_for_file(&s);
        let _ = sender_domain(&s);
    }
}

#[test]
fn impersonation_fix_names_the_inventorys_key_people() {
    let (t, _) = parse_bundle(
        r#"{"mailaudit_bundle": 1, "accepted_domains": [{"DomainName": "contoso.com", "Default": true}],
            "anti_phish_policies": [{"Name": "Office365 AntiPhish Default", "Enabled": true, "IsDefault": true,
              "EnableTargetedUserProtection": false, "EnableOrganizationDomainsProtection": true,
              "EnableMailboxIntelligence": true, "EnableMailboxIntelligenceProtection": true}]}"#,
    )
    .expect("bundle");
    let people = [
        ("Ann Lee".to_string(), "ann@contoso.com".to_string()),
        ("Seán O'Brien".to_string(), "sean@contoso.com".to_string()),
    ];
    let f = evaluate_for(&t, &people)
        .into_iter()
        .find(|f| f.id == CheckId::ExoImpersonationUsersOff)
        .expect("users-off finding");
    assert!(
        f.fix.contains(
            "-TargetedUsersToProtect @{Add='Ann Lee;ann@contoso.com','Seán O''Brien;sean@contoso.com'}"
        ),
        "{}",
        f.fix
    );
    let generic = evaluate(&t)
        .into_iter()
        .find(|f| f.id == CheckId::ExoImpersonationUsersOff)
        .expect("finding");
    assert!(
        generic.fix.contains("'Display Name;user@contoso.com'"),
        "{}",
        generic.fix
    );
}

/// The inbound SMTP DANE exports of `testdata/exo-dane`.
fn dane_bundle() -> (TenantConfig, Vec<ParseWarning>) {
    let text = std::fs::read_to_string(format!("{TESTDATA}-dane/bundle.json")).expect("testdata");
    parse_bundle(&text).expect("bundle parses")
}

#[test]
fn dane_status_exports_are_read_tolerantly() {
    let (t, warnings) = dane_bundle();
    // The extract holds only the DANE keys: the other required exports are reported missing.
    assert!(
        warnings
            .iter()
            .all(|w| w.message.ends_with("was not exported")),
        "{warnings:?}"
    );
    assert!(t.has("dnssec_status") && t.has("smtp_dane_inbound"));
    // A failure for one domain is kept, and that domain is unknown rather than "disabled".
    assert_eq!(
        t.errors
            .get("dnssec_status/northwind.com")
            .map(String::as_str),
        Some("The domain northwind.com isn't a verified domain.")
    );
    assert!(t.dnssec_of("northwind.com").is_none());
    assert!(t.dane_inbound_of("northwind.com").is_none());

    let contoso = t.dnssec_of("CONTOSO.com.").expect("contoso");
    assert_eq!(contoso.enabled(), Some(true));
    // An object holding the host, mixed case: read, lower-cased, never constructed.
    assert_eq!(
        contoso.expected_mx.as_deref(),
        Some("contoso-com.o-v1.mx.microsoft")
    );
    let fabrikam = t.dnssec_of("fabrikam.com").expect("fabrikam");
    assert_eq!(
        fabrikam.expected_mx.as_deref(),
        Some("fabrikam-com.r-v1.mx.microsoft")
    );
    let tailspin = t.dnssec_of("tailspin.com").expect("tailspin");
    assert_eq!(
        (tailspin.enabled(), tailspin.expected_mx.as_deref()),
        (Some(false), None)
    );
    assert_eq!(
        t.dane_inbound_of("contoso.com").and_then(|s| s.enabled),
        Some(true)
    );
    assert_eq!(
        t.dane_inbound_of("fabrikam.com").and_then(|s| s.enabled),
        Some(false)
    );

    // The serialisation traps: a single object, `DaneStatus`, a boolean `Enabled`, numbers,
    // a value that is not a host, an unknown status word (unknown, with a warning).
    let (t, warnings) = parse_bundle(
        &json!({
            "mailaudit_bundle": 1,
            "dnssec_status": {"DomainName": "a.com", "DnssecFeatureStatus": "enabled", "ExpectedMxRecord": {"Value": "x; Remove-Item"}},
            "smtp_dane_inbound": [
                {"DomainName": "a.com", "DaneStatus": "Enabled"},
                {"DomainName": "b.com", "Enabled": "False"},
                {"DomainName": "c.com", "Status": "Pending"},
                {"Status": "Enabled"}
            ]
        })
        .to_string(),
    )
    .expect("parses");
    assert_eq!(
        t.dnssec_of("a.com").and_then(DnssecStatus::enabled),
        Some(true)
    );
    assert_eq!(
        t.dnssec_of("a.com").and_then(|s| s.expected_mx.clone()),
        None
    );
    let dane: Vec<(&str, Option<bool>)> = t
        .smtp_dane_inbound
        .iter()
        .map(|s| (s.domain.as_str(), s.enabled))
        .collect();
    assert_eq!(
        dane,
        [
            ("a.com", Some(true)),
            ("b.com", Some(false)),
            ("c.com", None)
        ]
    );
    let w: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.contains(&"smtp_dane_inbound[2].Status: no Status, DaneStatus or Enabled value: DANE state unknown".to_string())
            && w.contains(&"smtp_dane_inbound[3].DomainName: missing; object skipped".to_string()),
        "{w:?}"
    );
}

fn with_mx(domain: &str, hosts: &[&str]) -> (String, ReportView) {
    let mut r = ReportView {
        domain: domain.into(),
        provider: "m365".into(),
        ..ReportView::default()
    };
    r.mx = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| crate::guide::MxView {
            host: (*h).into(),
            preference: u16::try_from(i * 10).unwrap_or(0),
        })
        .collect();
    (domain.to_string(), r)
}

#[test]
fn dane_correlation_flags_both_directions() {
    let (t, _) = dane_bundle();
    let dns = vec![
        // DANE enabled in the tenant, MX still legacy (mixed case).
        with_mx("contoso.com", &["Contoso-com.Mail.Protection.Outlook.com"]),
        // DNSSEC endpoint in the MX, DANE not enabled.
        with_mx("fabrikam.com", &["fabrikam-com.r-v1.mx.microsoft."]),
        // Both legacy and disabled: consistent, nothing to say (MX-M365-LEGACY covers it).
        with_mx(
            "tailspin.com",
            &["tailspin-com.mail.protection.outlook.com"],
        ),
        // No status exported for it: unknown, no verdict.
        with_mx("northwind.com", &["northwind-com.b-v1.mx.microsoft"]),
    ];
    let c = correlate(&t, &dns, &[]);
    assert_eq!(
        c.dane_mismatch,
        [
            (
                "contoso.com".to_string(),
                "SMTP DANE inbound is enabled in the tenant but the MX still points at the legacy endpoint contoso-com.mail.protection.outlook.com (MX-M365-LEGACY): senders delivering there get no DANE; finish the MX change to the DnssecMxValue (the tenant expects contoso-com.o-v1.mx.microsoft) and delete the legacy MX".to_string()
            ),
            (
                "fabrikam.com".to_string(),
                "the MX points at fabrikam-com.r-v1.mx.microsoft (the DNSSEC-signed endpoint) but SMTP DANE inbound is not enabled in the tenant: Enable-SmtpDaneInbound -DomainName 'fabrikam.com'".to_string()
            ),
        ]
    );
    // Consistent states: DANE enabled on the new endpoint, and an MX not known (look-up failed).
    let dns = vec![
        with_mx("contoso.com", &["contoso-com.o-v1.mx.microsoft"]),
        with_mx("fabrikam.com", &[]),
    ];
    assert_eq!(correlate(&t, &dns, &[]).dane_mismatch, []);
    // Without the export, nothing.
    let mut none = t.clone();
    none.collected.retain(|k| k != "smtp_dane_inbound");
    assert_eq!(
        correlate(
            &none,
            &[with_mx(
                "contoso.com",
                &["contoso-com.mail.protection.outlook.com"]
            )],
            &[]
        )
        .dane_mismatch,
        []
    );
}
