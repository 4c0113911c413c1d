//! The guide and the checklist after an Exchange Online import: over the real exports of
//! `testdata/exo` and modified copies (a rule named `Block spoof` in audit mode covering the
//! domain, an SCL -1 bypass rule, a named unrestricted partner connector, an OnPremises
//! connector without TLS), the steps name the tenant's real objects, propose no second rule for
//! a covered domain, and [`verify_import`] says what the export shows.

use super::*;
use crate::exo::{InboundConnector, TransportRule};
use crate::guide::{self, Guide, GuideContext, Lang, ReportView};

const DOMAIN: &str = "example.com";

/// The real exports (tenant tqhjy: example.com and four more custom domains).
use crate::exo::tests::real_exports as real;

fn block_spoof(mode: &str, state: &str, domains: &[&str]) -> TransportRule {
    TransportRule {
        name: "Block spoof".into(),
        state: Some(state.into()),
        mode: Some(mode.into()),
        from_scope: Some("NotInOrganization".into()),
        sender_domain_is: domains.iter().map(|d| d.to_string()).collect(),
        reject_message_enhanced_status_code: Some("5.7.1".into()),
        except_if_sender_ip_ranges: vec!["198.51.100.0/24".into()],
        ..Default::default()
    }
}

fn bypass_rule() -> TransportRule {
    TransportRule {
        name: "Allow own domain".into(),
        state: Some("Enabled".into()),
        set_scl: Some(-1),
        sender_domain_is: vec![DOMAIN.into()],
        ..Default::default()
    }
}

/// A named partner connector that has IP addresses but does not restrict to them, and an
/// OnPremises connector without TLS (not a finding: RequireTls is a partner setting).
fn connectors(t: &mut TenantConfig) {
    t.inbound_connectors.push(InboundConnector {
        name: "Fabrikam relay".into(),
        enabled: Some(true),
        connector_type: Some("Partner".into()),
        sender_domains: vec![DOMAIN.into()],
        sender_ip_addresses: vec!["203.0.113.0/24".into()],
        require_tls: Some(false),
        restrict_domains_to_ip_addresses: Some(false),
        ..Default::default()
    });
    t.inbound_connectors.push(InboundConnector {
        name: "On-premises hybrid".into(),
        enabled: Some(true),
        connector_type: Some("OnPremises".into()),
        sender_domains: vec!["*".into()],
        require_tls: Some(false),
        ..Default::default()
    });
}

/// The guide of example.com (at Microsoft 365) with the tenant's findings and, with `context`,
/// the import itself in the guide's context (as `guide_for` builds it).
fn guide_with(t: &TenantConfig, context: bool) -> Guide {
    let mut view = ReportView {
        domain: DOMAIN.into(),
        provider: "m365".into(),
        ..ReportView::default()
    };
    view.findings.extend(exo::evaluate(t));
    let ctx = GuideContext {
        today: 1_750_000_000,
        exo: context.then(|| t.clone()),
        ..GuideContext::default()
    };
    guide::build(&view, &ctx)
}

/// The PowerShell of an item's steps.
fn powershell(g: &Guide, key: &str) -> String {
    let item = g.item(key).unwrap_or_else(|| panic!("no item {key}"));
    item.steps
        .iter()
        .filter_map(|s| s.code.as_ref())
        .filter(|c| c.lang == Lang::PowerShell)
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn prose(g: &Guide, key: &str) -> String {
    let item = g.item(key).unwrap_or_else(|| panic!("no item {key}"));
    item.steps
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_guide_acts_on_the_audit_mode_rule_that_covers_the_domain() {
    let mut t = real();
    t.transport_rules
        .push(block_spoof("Audit", "Enabled", &[DOMAIN]));
    let g = guide_with(&t, true);
    let audit = powershell(&g, "antispoof-rule-audit");
    let enforce = powershell(&g, "antispoof-rule-enforce");
    // No second rule, no rule that does not exist.
    for text in [&audit, &enforce] {
        assert!(!text.contains("New-TransportRule"), "{text}");
        assert!(!text.contains("Reject spoofed"), "{text}");
    }
    assert!(
        prose(&g, "antispoof-rule-audit")
            .contains("'Block spoof' already rejects external mail using example.com"),
        "{}",
        prose(&g, "antispoof-rule-audit")
    );
    // Exemptions extend the rule's list (198.51.100.0/24 stays).
    assert!(
        audit.contains("$o = Get-TransportRule -Identity 'Block spoof'; Set-TransportRule -Identity 'Block spoof' -ExceptIfSenderIpRanges (@($o.ExceptIfSenderIpRanges) +"),
        "{audit}"
    );
    assert!(
        audit.contains(
            "Set-TransportRule -Identity 'Block spoof' -SetAuditSeverity 'Medium' -GenerateIncidentReport"
        ),
        "{audit}"
    );
    assert_eq!(
        enforce,
        "Set-TransportRule -Identity 'Block spoof' -Mode Enforce"
    );
    let verify = &g.item("antispoof-rule-enforce").expect("item").verify[0].text;
    assert!(verify.contains("-Identity 'Block spoof'"), "{verify}");

    // Disabled as well: enabled by name too.
    let mut t = real();
    t.transport_rules
        .push(block_spoof("Audit", "Disabled", &[DOMAIN]));
    let enforce = powershell(&guide_with(&t, true), "antispoof-rule-enforce");
    assert_eq!(
        enforce,
        "Set-TransportRule -Identity 'Block spoof' -Mode Enforce\nEnable-TransportRule -Identity 'Block spoof'"
    );

    // Without the import in the context (the findings alone), the product's own name is used.
    let g = guide_with(&real(), false);
    assert!(
        powershell(&g, "antispoof-rule-audit")
            .contains("New-TransportRule -Name 'Reject spoofed example.com'")
    );
}

#[test]
fn an_enforcing_rule_leaves_nothing_to_create_and_ticks_both_items() {
    let mut t = real();
    t.transport_rules
        .push(block_spoof("Enforce", "Enabled", &[DOMAIN]));
    let g = guide_with(&t, true);
    assert_eq!(powershell(&g, "antispoof-rule-enforce"), "");
    assert!(
        prose(&g, "antispoof-rule-enforce").contains("'Block spoof' is enabled and enforced"),
        "{}",
        prose(&g, "antispoof-rule-enforce")
    );
    assert!(!powershell(&g, "antispoof-rule-audit").contains("New-TransportRule"));
    assert_eq!(
        verify_import("antispoof-rule-audit", &t, DOMAIN, &[]),
        Some(true)
    );
    assert_eq!(
        verify_import("antispoof-rule-enforce", &t, DOMAIN, &[]),
        Some(true)
    );
    // A domain the rule does not cover still gets its own rule, in audit mode.
    let other = "subdomain.example.com";
    assert_eq!(
        verify_import("antispoof-rule-audit", &t, other, &[]),
        Some(false)
    );
    // The real export: no rule covers it.
    let t = real();
    assert_eq!(
        verify_import("antispoof-rule-audit", &t, DOMAIN, &[]),
        Some(false)
    );
    assert_eq!(
        verify_import("antispoof-rule-enforce", &t, DOMAIN, &[]),
        Some(false)
    );
    // In audit mode: created, not enforced.
    let mut t = real();
    t.transport_rules
        .push(block_spoof("Audit", "Enabled", &[DOMAIN]));
    assert_eq!(
        verify_import("antispoof-rule-audit", &t, DOMAIN, &[]),
        Some(true)
    );
    assert_eq!(
        verify_import("antispoof-rule-enforce", &t, DOMAIN, &[]),
        Some(false)
    );
}

#[test]
fn a_rule_covering_another_domain_is_no_reason_to_skip_this_one() {
    let mut t = real();
    t.transport_rules.push(block_spoof(
        "Enforce",
        "Enabled",
        &["subdomain.example.com"],
    ));
    let audit = powershell(&guide_with(&t, true), "antispoof-rule-audit");
    assert!(
        audit.contains("New-TransportRule -Name 'Reject spoofed example.com' -FromScope NotInOrganization -SenderDomainIs 'example.com'"),
        "{audit}"
    );
    assert!(
        audit.contains("-Mode Audit -SetAuditSeverity 'Medium'"),
        "{audit}"
    );
}

#[test]
fn the_spam_bypass_rule_is_disabled_then_removed_by_name() {
    let mut t = real();
    t.transport_rules.push(bypass_rule());
    let g = guide_with(&t, true);
    let ps = powershell(&g, "spam-bypass-remove");
    assert!(
        ps.contains("Disable-TransportRule -Identity 'Allow own domain'"),
        "{ps}"
    );
    assert!(
        ps.contains("Remove-TransportRule -Identity 'Allow own domain'"),
        "{ps}"
    );
    assert_eq!(
        g.item("spam-bypass-remove").expect("item").finding_ids,
        [CheckId::ExoSpamBypassOwnDomain]
    );
    // Not mixed into the anti-spoofing rule's item any more.
    assert!(
        !g.item("antispoof-rule-audit")
            .expect("item")
            .finding_ids
            .contains(&CheckId::ExoSpamBypassOwnDomain)
    );
    assert_eq!(
        verify_import("spam-bypass-remove", &t, DOMAIN, &[]),
        Some(false)
    );
    assert_eq!(
        guide::verify("spam-bypass-remove", &ReportView::default()),
        None
    );
    // The real export has no bypass: no item, and the checklist can tick it.
    let t = real();
    assert!(guide_with(&t, true).item("spam-bypass-remove").is_none());
    assert_eq!(
        verify_import("spam-bypass-remove", &t, DOMAIN, &[]),
        Some(true)
    );
}

#[test]
fn connectors_are_named_and_onpremises_is_not_asked_for_tls() {
    let mut t = real();
    connectors(&mut t);
    let f = exo::evaluate(&t);
    let no_tls: Vec<&str> = f
        .iter()
        .filter(|f| f.id == CheckId::ExoConnectorNoTls)
        .map(|f| f.detail.as_str())
        .collect();
    assert_eq!(
        no_tls,
        ["enabled partner connector 'Fabrikam relay' does not require TLS"]
    );
    let g = guide_with(&t, true);
    let ps = powershell(&g, "connectors-partner");
    assert!(!ps.contains("<connector name>"), "{ps}");
    assert!(!ps.contains("On-premises hybrid"), "{ps}");
    // The real export's connector, without IP addresses: extended, TLS required.
    assert!(
        ps.contains("$o = Get-InboundConnector -Identity 'inbound connector test 1'; Set-InboundConnector -Identity 'inbound connector test 1' -SenderIPAddresses (@($o.SenderIPAddresses) + @('<partner IP or range>') | Select-Object -Unique) -RequireTls $true -RestrictDomainsToIPAddresses $true"),
        "{ps}"
    );
    // The one with addresses: only the restriction and TLS.
    assert!(
        ps.contains("Set-InboundConnector -Identity 'Fabrikam relay' -RequireTls $true -RestrictDomainsToIPAddresses $true"),
        "{ps}"
    );
    // Option C: disable, wait, remove.
    assert!(
        ps.contains("Set-InboundConnector -Identity 'Fabrikam relay' -Enabled $false\n# after one to two weeks"),
        "{ps}"
    );
    assert!(
        ps.contains("Remove-InboundConnector -Identity 'Fabrikam relay'"),
        "{ps}"
    );
    // A new IP-restricted connector requires TLS too, and the /24 rule is said.
    let item = g.item("connectors-partner").expect("item");
    let by_ip = item
        .steps
        .iter()
        .find(|s| s.text.starts_with("Restricted by IP address"))
        .expect("the IP step");
    assert!(by_ip.text.contains("/24 to /32"), "{}", by_ip.text);
    assert!(
        by_ip.text.contains("a /20 is sixteen /24s"),
        "{}",
        by_ip.text
    );
    let code = &by_ip.code.as_ref().expect("code").text;
    assert!(
        code.contains("-RequireTls $true -RestrictDomainsToIPAddresses $true"),
        "{code}"
    );

    // Without the import in the context: how to find them, and option C with a placeholder.
    let ps = powershell(&guide_with(&t, false), "connectors-partner");
    assert!(ps.contains("Get-InboundConnector | Format-List"), "{ps}");
    assert!(
        ps.contains("Remove-InboundConnector -Identity '<connector name>'"),
        "{ps}"
    );

    assert_eq!(
        verify_import("connectors-partner", &t, DOMAIN, &[]),
        Some(false)
    );
}

#[test]
fn connectors_partner_ticks_when_nothing_is_unrestricted() {
    let mut t = real();
    t.inbound_connectors.clear();
    // Nothing unrestricted, but Direct Send still accepted: not decided by the import.
    assert_eq!(verify_import("connectors-partner", &t, DOMAIN, &[]), None);
    t.org.get_or_insert_default().reject_direct_send = Some(true);
    assert_eq!(
        verify_import("connectors-partner", &t, DOMAIN, &[]),
        Some(true)
    );
    // An OnPremises connector without TLS does not reopen it.
    connectors(&mut t);
    t.inbound_connectors
        .retain(|c| c.name == "On-premises hybrid");
    assert_eq!(
        verify_import("connectors-partner", &t, DOMAIN, &[]),
        Some(true)
    );
    // Not collected: no verdict.
    t.collected.retain(|k| k != "inbound_connectors");
    assert_eq!(verify_import("connectors-partner", &t, DOMAIN, &[]), None);
}

#[test]
fn direct_send_impersonation_and_dkim_from_the_import() {
    let mut t = real();
    // RejectDirectSend absent from this export: not rejected.
    assert_eq!(
        verify_import("direct-send-reject", &t, DOMAIN, &[]),
        Some(false)
    );
    t.org.get_or_insert_default().reject_direct_send = Some(true);
    assert_eq!(
        verify_import("direct-send-reject", &t, DOMAIN, &[]),
        Some(true)
    );
    let mut none = t.clone();
    none.collected.retain(|k| k != "org_config");
    assert_eq!(
        verify_import("direct-send-reject", &none, DOMAIN, &[]),
        None
    );

    // The default policy protects John Doe, the organization's domains, mailbox intelligence.
    let john = ("John Doe".to_string(), "johndoe@example.com".to_string());
    let ann = ("Ann Lee".to_string(), "ann@example.com".to_string());
    assert_eq!(verify_import("impersonation", &t, DOMAIN, &[]), Some(true));
    assert_eq!(
        verify_import("impersonation", &t, DOMAIN, std::slice::from_ref(&john)),
        Some(true)
    );
    // A key person the policy does not protect keeps the item open.
    assert_eq!(
        verify_import("impersonation", &t, DOMAIN, &[john, ann]),
        Some(false)
    );
    // Mailbox intelligence is its own item: on in this export, off in a copy.
    assert_eq!(
        verify_import("mailbox-intelligence", &t, DOMAIN, &[]),
        Some(true)
    );
    let mut off = t.clone();
    for p in &mut off.anti_phish {
        p.enable_mailbox_intelligence_protection = Some(false);
    }
    assert_eq!(
        verify_import("mailbox-intelligence", &off, DOMAIN, &[]),
        Some(false)
    );
    assert_eq!(
        verify_import("impersonation", &off, DOMAIN, &[]),
        Some(true)
    );
    let mut uncollected = t.clone();
    uncollected.collected.retain(|k| k != "anti_phish_policies");
    assert_eq!(
        verify_import("mailbox-intelligence", &uncollected, DOMAIN, &[]),
        None
    );

    // No DKIM signing config for example.com in this export.
    assert_eq!(verify_import("dkim-enable", &t, DOMAIN, &[]), Some(false));
    // DNS items are not the import's to judge.
    assert_eq!(verify_import("dmarc-publish", &t, DOMAIN, &[]), None);
    assert_eq!(verify_import("spf-harden", &t, DOMAIN, &[]), None);
    assert_eq!(verify_import("no-such-key", &t, DOMAIN, &[]), None);
    // SMTP AUTH is disabled in this export.
    assert_eq!(
        verify_import("EXO-SMTP-AUTH-ENABLED", &t, DOMAIN, &[]),
        Some(true)
    );
}

#[test]
fn the_guide_names_the_tenants_anti_phishing_policy() {
    let mut t = real();
    for p in &mut t.anti_phish {
        if p.is_default {
            p.name = "Contoso anti-phish".into();
            p.enable_organization_domains_protection = Some(false);
        }
    }
    let g = guide_with(&t, true);
    let ps = powershell(&g, "impersonation");
    assert!(
        ps.contains("Set-AntiPhishPolicy -Identity 'Contoso anti-phish'"),
        "{ps}"
    );
    assert!(!ps.contains("Office365 AntiPhish Default"), "{ps}");
}

#[test]
fn connectors_audit_names_the_tenants_connectors_and_ticks_from_the_import() {
    let mut t = real();
    connectors(&mut t);
    let g = guide_with(&t, true);
    let text = prose(&g, "connectors-audit");
    assert!(
        text.contains("'Fabrikam relay' (partner, enabled, not restricted, TLS not required)"),
        "{text}"
    );
    assert!(
        text.contains(
            "'On-premises hybrid' (on-premises, enabled, not restricted, TLS not required)"
        ),
        "{text}"
    );
    assert!(
        powershell(&g, "connectors-audit")
            .starts_with("Get-InboundConnector | Format-List Name,ConnectorType,"),
    );
    // Unrestricted partner connectors: the import shows the review is not done.
    assert_eq!(
        verify_import("connectors-audit", &t, DOMAIN, &[]),
        Some(false)
    );
    // Only the OnPremises connector left (RequireTls is a partner setting): done.
    t.inbound_connectors
        .retain(|c| c.name == "On-premises hybrid");
    assert_eq!(
        verify_import("connectors-audit", &t, DOMAIN, &[]),
        Some(true)
    );
    // No connector at all: done too, and the guide says there is nothing to review.
    t.inbound_connectors.clear();
    assert_eq!(
        verify_import("connectors-audit", &t, DOMAIN, &[]),
        Some(true)
    );
    assert!(
        prose(&guide_with(&t, true), "connectors-audit").contains("lists no inbound connector")
    );
    // Not collected: no verdict, and no list in the guide.
    t.collected.retain(|k| k != "inbound_connectors");
    assert_eq!(verify_import("connectors-audit", &t, DOMAIN, &[]), None);
    assert!(!prose(&guide_with(&t, true), "connectors-audit").contains("import lists"));
}

#[test]
fn mailbox_intelligence_is_its_own_item() {
    // The real export has it on in the default policy: nothing to change, nothing to paste.
    let t = real();
    let g = guide_with(&t, true);
    let item = g
        .item("mailbox-intelligence")
        .expect("mailbox-intelligence");
    assert!(item.finding_ids.is_empty(), "{:?}", item.finding_ids);
    assert!(prose(&g, "mailbox-intelligence").contains("nothing to change"));
    assert!(!powershell(&g, "mailbox-intelligence").contains("Set-AntiPhishPolicy"));
    // Off: the finding moves to this item (not impersonation), with the command.
    let mut off = t.clone();
    for p in &mut off.anti_phish {
        p.enable_mailbox_intelligence = Some(false);
    }
    let g = guide_with(&off, true);
    let item = g
        .item("mailbox-intelligence")
        .expect("mailbox-intelligence");
    assert_eq!(item.finding_ids, [CheckId::ExoMailboxIntelligenceOff]);
    assert!(
        !g.item("impersonation")
            .expect("impersonation")
            .finding_ids
            .contains(&CheckId::ExoMailboxIntelligenceOff)
    );
    let ps = powershell(&g, "mailbox-intelligence");
    assert!(
        ps.contains("-EnableMailboxIntelligence $true -EnableMailboxIntelligenceProtection $true -MailboxIntelligenceProtectionAction MoveToJmf"),
        "{ps}"
    );
    assert!(!powershell(&g, "impersonation").contains("MailboxIntelligence"));
    assert_eq!(
        verify_import("mailbox-intelligence", &off, DOMAIN, &[]),
        Some(false)
    );
}
