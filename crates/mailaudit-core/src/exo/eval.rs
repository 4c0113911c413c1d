//! The EXO-* checks of `docs/checks.md` over a [`TenantConfig`].

use crate::checks::CheckId;
use crate::finding::Finding;
use crate::powershell::{add_to_list, antispoof_rule_name, append_to_list, quote_list};

use super::*;

/// Every EXO-* check of `docs/checks.md` on one tenant's configuration. A check whose export was not
/// collected gives no finding (see the module documentation).
pub fn evaluate(t: &TenantConfig) -> Vec<Finding> {
    evaluate_for(t, &[])
}

/// [`evaluate`], with the people to protect against impersonation `(display name, address)`
/// (the inventory's key people) written into the EXO-IMPERSONATION-USERS-OFF fix.
pub fn evaluate_for(t: &TenantConfig, key_people: &[(String, String)]) -> Vec<Finding> {
    let mut out = Vec::new();
    direct_send(t, &mut out);
    connectors(t, &mut out);
    dkim(t, &mut out);
    antispoof(t, &mut out);
    spam_bypass(t, &mut out);
    impersonation(t, key_people, &mut out);
    smtp_auth(t, &mut out);
    autoforward(t, &mut out);
    out
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "True",
        Some(false) => "False",
        None => "(absent)",
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "{}".into()
    } else {
        format!("{{{}}}", v.join(", "))
    }
}

/// The accepted domains that DNS-level protections concern: all but coexistence domains.
pub(crate) fn mail_domains(t: &TenantConfig) -> Vec<&AcceptedDomain> {
    t.accepted_domains
        .iter()
        .filter(|d| !d.is_coexistence_domain() && !d.domain_name.is_empty())
        .collect()
}

/// The domains an anti-spoofing rule should cover: the custom accepted domains (the
/// `onmicrosoft.com` ones too when there is no custom domain).
pub(crate) fn spoofable_domains(t: &TenantConfig) -> Vec<&str> {
    let all = mail_domains(t);
    let custom: Vec<&str> = all
        .iter()
        .filter(|d| !d.is_onmicrosoft())
        .map(|d| d.domain_name.as_str())
        .collect();
    if custom.is_empty() {
        all.iter().map(|d| d.domain_name.as_str()).collect()
    } else {
        custom
    }
}

/// `RejectDirectSend` is not `true` in the organization config, including when absent.
fn direct_send(t: &TenantConfig, out: &mut Vec<Finding>) {
    if !t.has("org_config") {
        return;
    }
    let value = t.org.as_ref().and_then(|o| o.reject_direct_send);
    if value == Some(true) {
        return;
    }
    let detail = match value {
        Some(_) => "RejectDirectSend is False: anyone can deliver mail from the tenant's domains to its users without authenticating".to_string(),
        None => "RejectDirectSend is absent from the export (older module or tenant): Direct Send is accepted unless it was turned on since".to_string(),
    };
    out.push(
        Finding::new(CheckId::ExoDirectsendAllowed, detail)
            .with_evidence(format!(
                "Get-OrganizationConfig: RejectDirectSend = {}",
                yes_no(value)
            ))
            .with_fix("Set-OrganizationConfig -RejectDirectSend $true"),
    );
}

fn connector_evidence(c: &InboundConnector) -> String {
    format!(
        "Get-InboundConnector {}: Enabled = {}, ConnectorType = {}, SenderDomains = {}, SenderIPAddresses = {}, RequireTls = {}, RestrictDomainsToIPAddresses = {}, RestrictDomainsToCertificate = {}, TlsSenderCertificateName = {}",
        ps_quote(&c.name),
        yes_no(c.enabled),
        c.connector_type.as_deref().unwrap_or("(absent)"),
        list(&c.sender_domains),
        list(&c.sender_ip_addresses),
        yes_no(c.require_tls),
        yes_no(c.restrict_domains_to_ip_addresses),
        yes_no(c.restrict_domains_to_certificate),
        c.tls_sender_certificate_name.as_deref().unwrap_or("(none)"),
    )
}

/// An enabled partner connector that accepts sender domains without restricting them to IP
/// addresses or a certificate (EXO-CONNECTOR-UNRESTRICTED).
pub(crate) fn is_unrestricted(c: &InboundConnector) -> bool {
    c.is_enabled() && c.is_partner() && !c.sender_domains.is_empty() && !c.locks_down()
}

/// An enabled partner connector with `RequireTls` false (EXO-CONNECTOR-NO-TLS). `RequireTls`
/// is a partner connector's setting: an OnPremises connector is never reported.
pub(crate) fn lacks_tls(c: &InboundConnector) -> bool {
    c.is_enabled() && c.is_partner() && c.require_tls == Some(false)
}

/// EXO-CONNECTOR-UNRESTRICTED and EXO-CONNECTOR-NO-TLS.
fn connectors(t: &TenantConfig, out: &mut Vec<Finding>) {
    for c in &t.inbound_connectors {
        if !c.is_enabled() {
            continue;
        }
        let id = ps_quote(&c.name);
        if is_unrestricted(c) {
            let all = c.sender_domains.iter().any(|d| d == "*");
            let fix = if c.sender_ip_addresses.is_empty() {
                format!(
                    "Set-InboundConnector -Identity {id} -SenderIPAddresses '<partner IP address or range>' -RestrictDomainsToIPAddresses $true\n# or, by certificate:\nSet-InboundConnector -Identity {id} -RequireTls $true -RestrictDomainsToCertificate $true -TlsSenderCertificateName '<partner certificate host>'\n# or, if nobody knows what it is for:\nSet-InboundConnector -Identity {id} -Enabled $false"
                )
            } else {
                format!(
                    "Set-InboundConnector -Identity {id} -RestrictDomainsToIPAddresses $true\n# or, if nobody knows what it is for:\nSet-InboundConnector -Identity {id} -Enabled $false"
                )
            };
            out.push(
                Finding::new(
                    CheckId::ExoConnectorUnrestricted,
                    format!(
                        "enabled partner connector {id} accepts {} from any IP address and without a certificate restriction",
                        if all {
                            "every sender domain (*)".to_string()
                        } else {
                            c.sender_domains.join(", ")
                        }
                    ),
                )
                .with_evidence(connector_evidence(c))
                .with_fix(fix),
            );
        }
        if lacks_tls(c) {
            out.push(
                Finding::new(
                    CheckId::ExoConnectorNoTls,
                    format!("enabled partner connector {id} does not require TLS"),
                )
                .with_evidence(connector_evidence(c))
                .with_fix(format!(
                    "Set-InboundConnector -Identity {id} -RequireTls $true"
                )),
            );
        }
    }
}

/// EXO-DKIM-DISABLED, per accepted domain (coexistence domains skipped; `onmicrosoft.com`
/// domains only when their config exists and is disabled).
fn dkim(t: &TenantConfig, out: &mut Vec<Finding>) {
    if !t.has("dkim_config") || !t.has("accepted_domains") {
        return;
    }
    for d in mail_domains(t) {
        let name = &d.domain_name;
        let cfg = t.dkim.iter().find(|c| c.domain == *name);
        match cfg {
            Some(c) if c.enabled == Some(true) => {}
            Some(c) => {
                let s1 = c.selector1_cname.as_deref().unwrap_or("(none)");
                let s2 = c.selector2_cname.as_deref().unwrap_or("(none)");
                out.push(
                    Finding::new(
                        CheckId::ExoDkimDisabled,
                        format!(
                            "{name}: DKIM signing config exists but is not enabled (Status {})",
                            c.status.as_deref().unwrap_or("(absent)")
                        ),
                    )
                    .with_evidence(format!(
                        "Get-DkimSigningConfig {name}: Enabled = {}, Status = {}, Selector1CNAME = {s1}, Selector2CNAME = {s2}",
                        yes_no(c.enabled),
                        c.status.as_deref().unwrap_or("(absent)")
                    ))
                    .with_fix(if d.is_onmicrosoft() {
                        format!("Set-DkimSigningConfig -Identity {} -Enabled $true", ps_quote(name))
                    } else {
                        format!(
                            "# publish first: selector1._domainkey.{name} CNAME {s1}\n# and: selector2._domainkey.{name} CNAME {s2}\nSet-DkimSigningConfig -Identity {} -Enabled $true",
                            ps_quote(name)
                        )
                    }),
                );
            }
            None if d.is_onmicrosoft() => {}
            None => out.push(
                Finding::new(
                    CheckId::ExoDkimDisabled,
                    format!("{name}: no DKIM signing config; mail is signed only as the onmicrosoft.com domain"),
                )
                .with_evidence(format!("Get-DkimSigningConfig: no object for {name}"))
                .with_fix(format!(
                    "New-DkimSigningConfig -DomainName {q} -Enabled $false\nGet-DkimSigningConfig -Identity {q} | Format-List Selector1CNAME,Selector2CNAME\n# publish selector1._domainkey.{name} and selector2._domainkey.{name} as CNAMEs to those values, then:\nSet-DkimSigningConfig -Identity {q} -Enabled $true",
                    q = ps_quote(name)
                )),
            ),
        }
    }
}

/// An anti-spoofing rule: external senders only, blocks the message, names accepted domains.
pub(crate) fn antispoof_rules(t: &TenantConfig) -> Vec<(&TransportRule, Vec<String>)> {
    let domains = spoofable_domains(t);
    t.transport_rules
        .iter()
        .filter(|r| r.is_external_only() && r.blocks())
        .filter_map(|r| {
            let covered: Vec<String> = r
                .sender_domains_among(&domains)
                .into_iter()
                .map(str::to_string)
                .collect();
            (!covered.is_empty()).then_some((r, covered))
        })
        .collect()
}

fn rule_evidence(r: &TransportRule) -> String {
    format!(
        "Get-TransportRule {}: State = {}, Mode = {}, FromScope = {}, SenderDomainIs = {}, SenderAddressLocation = {}, RejectMessageEnhancedStatusCode = {}, Quarantine = {}, DeleteMessage = {}, SetSCL = {}",
        ps_quote(&r.name),
        r.state.as_deref().unwrap_or("(absent)"),
        r.mode.as_deref().unwrap_or("(absent)"),
        r.from_scope.as_deref().unwrap_or("(absent)"),
        list(&r.sender_domain_is),
        r.sender_address_location.as_deref().unwrap_or("(absent)"),
        r.reject_message_enhanced_status_code
            .as_deref()
            .unwrap_or("(none)"),
        yes_no(r.quarantine),
        yes_no(r.delete_message),
        r.set_scl.map_or("(none)".to_string(), |s| s.to_string()),
    )
}

/// EXO-ANTISPOOF-RULE-MISSING (some custom accepted domain is not covered by an enforcing rule)
/// and EXO-ANTISPOOF-RULE-AUDIT (a matching rule that is disabled or only audits).
fn antispoof(t: &TenantConfig, out: &mut Vec<Finding>) {
    if !t.has("transport_rules") || !t.has("accepted_domains") {
        return;
    }
    let domains = spoofable_domains(t);
    if domains.is_empty() {
        return;
    }
    let rules = antispoof_rules(t);
    let enforced: Vec<&str> = rules
        .iter()
        .filter(|(r, _)| r.is_enabled() && r.is_enforced())
        .flat_map(|(_, c)| c.iter().map(String::as_str))
        .collect();
    let in_audit: Vec<&str> = rules
        .iter()
        .filter(|(r, _)| !(r.is_enabled() && r.is_enforced()))
        .flat_map(|(_, c)| c.iter().map(String::as_str))
        .collect();
    for (r, covered) in &rules {
        if r.is_enabled() && r.is_enforced() {
            continue;
        }
        let id = ps_quote(&r.name);
        let mut fix = Vec::new();
        let mut why = Vec::new();
        if !r.is_enforced() {
            why.push(format!("Mode {}", r.mode.as_deref().unwrap_or("")));
            fix.push(format!("Set-TransportRule -Identity {id} -Mode Enforce"));
        }
        if !r.is_enabled() {
            why.push("State Disabled".to_string());
            fix.push(format!("Enable-TransportRule -Identity {id}"));
        }
        out.push(
            Finding::new(
                CheckId::ExoAntispoofRuleAudit,
                format!(
                    "anti-spoofing rule {id} for {} takes no action ({})",
                    covered.join(", "),
                    why.join(", ")
                ),
            )
            .with_evidence(rule_evidence(r))
            .with_fix(fix.join("\n")),
        );
    }
    let missing: Vec<&str> = domains
        .iter()
        .copied()
        .filter(|d| !enforced.contains(d) && !in_audit.contains(d))
        .collect();
    if missing.is_empty() {
        return;
    }
    let enforcing_rule = rules
        .iter()
        .find(|(r, _)| r.is_enabled() && r.is_enforced() && !r.sender_domain_is.is_empty());
    let fix = match enforcing_rule {
        Some((r, _)) => {
            let mut all: Vec<String> = r.sender_domain_is.clone();
            all.extend(missing.iter().map(|d| d.to_string()));
            all.sort();
            all.dedup();
            // The union of the exported list and the missing domains: nothing is dropped.
            format!(
                "Set-TransportRule -Identity {} -SenderDomainIs {}",
                ps_quote(&r.name),
                quote_list(&all)
            )
        }
        None => {
            let name = antispoof_rule_name(&domains);
            format!(
                "New-TransportRule -Name {} -FromScope NotInOrganization -SenderDomainIs {} -SenderAddressLocation HeaderOrEnvelope -RejectMessageEnhancedStatusCode 5.7.1 -RejectMessageReasonText {} -Mode Audit\n# after one to two weeks of audit without legitimate matches:\nSet-TransportRule -Identity {} -Mode Enforce",
                ps_quote(&name),
                quote_list(&domains),
                ps_quote("External senders may not use this organization's domains"),
                ps_quote(&name)
            )
        }
    };
    let evidence = if t.transport_rules.is_empty() {
        "Get-TransportRule: no rules".to_string()
    } else {
        format!(
            "Get-TransportRule: {}",
            t.transport_rules
                .iter()
                .map(|r| ps_quote(&r.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    out.push(
        Finding::new(
            CheckId::ExoAntispoofRuleMissing,
            format!(
                "no transport rule rejects external mail using {}",
                missing.join(", ")
            ),
        )
        .with_evidence(evidence)
        .with_fix(fix),
    );
}

/// The enabled rules that set SCL -1 for mail from accepted domains, with those domains.
pub(crate) fn spam_bypass_rules(t: &TenantConfig) -> Vec<(&TransportRule, Vec<&str>)> {
    let domains: Vec<&str> = mail_domains(t)
        .iter()
        .map(|d| d.domain_name.as_str())
        .collect();
    t.transport_rules
        .iter()
        .filter(|r| r.set_scl == Some(-1) && r.is_enabled())
        .filter_map(|r| {
            let own = r.sender_domains_among(&domains);
            (!own.is_empty()).then_some((r, own))
        })
        .collect()
}

/// The anti-phishing policy the impersonation fixes change: the default one, else the first.
pub(crate) fn impersonation_target(t: &TenantConfig) -> Option<&AntiPhishPolicy> {
    t.anti_phish
        .iter()
        .find(|p| p.is_default)
        .or(t.anti_phish.first())
}

/// EXO-SPAM-BYPASS-OWN-DOMAIN: an enabled rule sets SCL -1 for mail from an accepted domain.
fn spam_bypass(t: &TenantConfig, out: &mut Vec<Finding>) {
    if !t.has("transport_rules") {
        return;
    }
    for (r, own) in spam_bypass_rules(t) {
        let id = ps_quote(&r.name);
        let by_ip = if r.sender_ip_ranges.is_empty() {
            "on the sender domain alone".to_string()
        } else {
            format!("for sender IP ranges {}", r.sender_ip_ranges.join(", "))
        };
        out.push(
            Finding::new(
                CheckId::ExoSpamBypassOwnDomain,
                format!(
                    "rule {id} bypasses spam filtering (SetSCL -1) for mail from {} {by_ip}",
                    own.join(", ")
                ),
            )
            .with_evidence(rule_evidence(r))
            .with_fix(format!(
                "Remove-TransportRule -Identity {id}\n# or, if a bypass must stay, tie it to the sender's IP addresses instead of its domain:\n{}",
                append_to_list(
                    "Get-TransportRule",
                    "Set-TransportRule",
                    &r.name,
                    "SenderIpRanges",
                    &["<sender IP address or range>"],
                    "-SenderDomainIs $null"
                )
            )),
        );
    }
}

/// The anti-phishing policies in effect (see the module documentation).
pub(crate) fn policies_in_effect(t: &TenantConfig) -> Vec<&AntiPhishPolicy> {
    t.anti_phish
        .iter()
        .filter(|p| {
            if p.enabled == Some(false) {
                return false;
            }
            if p.is_default {
                return true;
            }
            let rules: Vec<&AntiPhishRule> = t
                .anti_phish_rules
                .iter()
                .filter(|r| {
                    r.anti_phish_policy
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&p.name))
                })
                .collect();
            rules.is_empty()
                || rules.iter().any(|r| {
                    !r.state
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("Disabled"))
                })
        })
        .collect()
}

fn policy_summary(p: &AntiPhishPolicy) -> String {
    format!(
        "{}: Enabled = {}, IsDefault = {}, EnableTargetedUserProtection = {}, TargetedUsersToProtect = {}, EnableOrganizationDomainsProtection = {}, EnableMailboxIntelligence = {}, EnableMailboxIntelligenceProtection = {}",
        ps_quote(&p.name),
        yes_no(p.enabled),
        if p.is_default { "True" } else { "False" },
        yes_no(p.enable_targeted_user_protection),
        p.targeted_users_to_protect.len(),
        yes_no(p.enable_organization_domains_protection),
        yes_no(p.enable_mailbox_intelligence),
        yes_no(p.enable_mailbox_intelligence_protection),
    )
}

/// EXO-IMPERSONATION-USERS-OFF, EXO-IMPERSONATION-DOMAINS-OFF, EXO-MAILBOX-INTELLIGENCE-OFF.
fn impersonation(t: &TenantConfig, key_people: &[(String, String)], out: &mut Vec<Finding>) {
    if !t.has("anti_phish_policies") || t.anti_phish.is_empty() {
        return;
    }
    let live = policies_in_effect(t);
    let target = impersonation_target(t)
        .map(|p| ps_quote(&p.name))
        .unwrap_or_default();
    let evidence = format!(
        "Get-AntiPhishPolicy: {}",
        t.anti_phish
            .iter()
            .map(policy_summary)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let domain = t
        .accepted_domains
        .iter()
        .find(|d| d.default)
        .map_or("contoso.com", |d| d.domain_name.as_str());
    if !live.iter().any(|p| {
        p.enable_targeted_user_protection == Some(true) && !p.targeted_users_to_protect.is_empty()
    }) {
        out.push(
            Finding::new(
                CheckId::ExoImpersonationUsersOff,
                "no enabled anti-phishing policy protects targeted users (EnableTargetedUserProtection with users listed)",
            )
            .with_evidence(evidence.clone())
            .with_fix(format!(
                // @{Add=…} keeps the users the policy protects already.
                "Set-AntiPhishPolicy -Identity {target} -EnableTargetedUserProtection $true {} -TargetedUserProtectionAction Quarantine",
                add_to_list(
                    "TargetedUsersToProtect",
                    &if key_people.is_empty() {
                        vec![format!("Display Name;user@{domain}")]
                    } else {
                        key_people
                            .iter()
                            .map(|(name, email)| format!("{};{}", name.replace(';', ","), email))
                            .collect::<Vec<_>>()
                    }
                )
            )),
        );
    }
    if !live
        .iter()
        .any(|p| p.enable_organization_domains_protection == Some(true))
    {
        out.push(
            Finding::new(
                CheckId::ExoImpersonationDomainsOff,
                "no enabled anti-phishing policy has EnableOrganizationDomainsProtection on",
            )
            .with_evidence(evidence.clone())
            .with_fix(format!(
                "Set-AntiPhishPolicy -Identity {target} -EnableOrganizationDomainsProtection $true -TargetedDomainProtectionAction Quarantine"
            )),
        );
    }
    if !live.iter().any(|p| {
        p.enable_mailbox_intelligence == Some(true)
            && p.enable_mailbox_intelligence_protection == Some(true)
    }) {
        out.push(
            Finding::new(
                CheckId::ExoMailboxIntelligenceOff,
                "no enabled anti-phishing policy has both EnableMailboxIntelligence and EnableMailboxIntelligenceProtection on",
            )
            .with_evidence(evidence)
            .with_fix(format!(
                "Set-AntiPhishPolicy -Identity {target} -EnableMailboxIntelligence $true -EnableMailboxIntelligenceProtection $true -MailboxIntelligenceProtectionAction MoveToJmf"
            )),
        );
    }
}

/// EXO-SMTP-AUTH-ENABLED: `SmtpClientAuthenticationDisabled` is false.
fn smtp_auth(t: &TenantConfig, out: &mut Vec<Finding>) {
    let Some(tc) = &t.transport_config else {
        return;
    };
    if tc.smtp_client_authentication_disabled == Some(false) {
        out.push(
            Finding::new(
                CheckId::ExoSmtpAuthEnabled,
                "SmtpClientAuthenticationDisabled is False: SMTP AUTH is allowed for every mailbox that does not override it",
            )
            .with_evidence("Get-TransportConfig: SmtpClientAuthenticationDisabled = False")
            .with_fix("Set-TransportConfig -SmtpClientAuthenticationDisabled $true"),
        );
    }
}

/// EXO-AUTOFORWARD-EXTERNAL: an outbound spam policy with `AutoForwardingMode` `On`.
fn autoforward(t: &TenantConfig, out: &mut Vec<Finding>) {
    let star = t.remote_domains.iter().find(|d| d.domain_name == "*");
    let remote = match star.and_then(|d| d.auto_forward_enabled) {
        Some(false) => {
            "; the default remote domain (*) has AutoForwardEnabled False, which still blocks forwarding to domains without their own remote-domain entry"
        }
        Some(true) => "; the default remote domain (*) allows it too (AutoForwardEnabled True)",
        None => "",
    };
    for p in &t.outbound_spam {
        if !p
            .auto_forwarding_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("On"))
        {
            continue;
        }
        let id = ps_quote(&p.name);
        out.push(
            Finding::new(
                CheckId::ExoAutoforwardExternal,
                format!("outbound spam policy {id} allows automatic external forwarding{remote}"),
            )
            .with_evidence(format!(
                "Get-HostedOutboundSpamFilterPolicy {id}: AutoForwardingMode = On, IsDefault = {}",
                if p.is_default { "True" } else { "False" }
            ))
            .with_fix(format!(
                "Set-HostedOutboundSpamFilterPolicy -Identity {id} -AutoForwardingMode Off"
            )),
        );
    }
}
