//! What an Exchange Online import shows about the checklist's items: [`verify_import`] is to a
//! tenant's export what [`super::verify`] is to a DNS audit, so that `exo import` ticks and
//! reopens the checklist of the tenant's domains as `audit` does.

use crate::checks::CheckId;
use crate::exo::{self, TenantConfig};

/// Whether the tenant's import `t` shows the fix of the checklist item `key` for `domain` (one
/// of its accepted domains), with `key_people` `(display name, address)` the inventory's people
/// to protect against impersonation.
///
/// - `Some(true)`: the export shows the fix (`RejectDirectSend` true for `direct-send-reject`,
///   an enabled, enforcing anti-spoofing rule covering the domain for `antispoof-rule-enforce`,
///   every key person protected by an anti-phishing policy in effect and the organization's
///   domains protected for `impersonation`, mailbox intelligence and its protection on for
///   `mailbox-intelligence`, the inbound connectors collected and none unrestricted or without
///   TLS for `connectors-audit`).
/// - `Some(false)`: the export shows the problem.
/// - `None`: the export cannot tell: the cmdlet the item depends on was not collected, the
///   item is not Exchange Online configuration (DNS records), or the key is unknown.
pub fn verify_import(
    key: &str,
    t: &TenantConfig,
    domain: &str,
    key_people: &[(String, String)],
) -> Option<bool> {
    use CheckId::*;
    let domain = exo::norm_domain(domain);
    let collected = |k: &str| t.has(k);
    let findings = || exo::evaluate_for(t, key_people);
    let none_of = |ids: &[CheckId]| !findings().iter().any(|f| ids.contains(&f.id));
    let covering = || {
        exo::antispoof_rules(t)
            .into_iter()
            .filter(|(_, c)| c.iter().any(|d| d.eq_ignore_ascii_case(&domain)))
            .map(|(r, _)| r)
            .collect::<Vec<_>>()
    };
    let rules_known = collected("transport_rules") && collected("accepted_domains");
    match key {
        "direct-send-reject" => collected("org_config")
            .then(|| t.org.as_ref().and_then(|o| o.reject_direct_send) == Some(true)),
        "connectors-partner" => {
            if !collected("inbound_connectors") {
                return None;
            }
            if t.inbound_connectors
                .iter()
                .any(|c| exo::is_unrestricted(c) || exo::lacks_tls(c))
            {
                return Some(false);
            }
            // Nothing unrestricted: done once unauthenticated mail is either refused or only
            // accepted through a connector that locks the domain down.
            let rejects = t.org.as_ref().and_then(|o| o.reject_direct_send) == Some(true);
            let locked = t
                .inbound_connectors
                .iter()
                .any(|c| c.is_partner() && c.covers(&domain) && c.locks_down());
            (rejects || locked).then_some(true)
        }
        "antispoof-rule-audit" => rules_known.then(|| !covering().is_empty()),
        "antispoof-rule-enforce" => {
            rules_known.then(|| covering().iter().any(|r| r.is_enabled() && r.is_enforced()))
        }
        "spam-bypass-remove" => {
            collected("transport_rules").then(|| exo::spam_bypass_rules(t).is_empty())
        }
        "impersonation" => {
            if !collected("anti_phish_policies") || t.anti_phish.is_empty() {
                return None;
            }
            let live = exo::policies_in_effect(t);
            let protected = |email: &str| {
                live.iter().any(|p| {
                    p.enable_targeted_user_protection == Some(true)
                        && p.targeted_users_to_protect.iter().any(|u| {
                            u.rsplit(';')
                                .next()
                                .is_some_and(|a| a.trim().eq_ignore_ascii_case(email.trim()))
                        })
                })
            };
            Some(
                none_of(&[ExoImpersonationUsersOff, ExoImpersonationDomainsOff])
                    && key_people.iter().all(|(_, email)| protected(email)),
            )
        }
        "mailbox-intelligence" => (collected("anti_phish_policies") && !t.anti_phish.is_empty())
            .then(|| none_of(&[ExoMailboxIntelligenceOff])),
        // Reviewed by the import: every connector listed, none unrestricted or without TLS.
        "connectors-audit" => collected("inbound_connectors").then(|| {
            !t.inbound_connectors
                .iter()
                .any(|c| exo::is_unrestricted(c) || exo::lacks_tls(c))
        }),
        "dkim-enable" => (collected("dkim_config") && collected("accepted_domains")).then(|| {
            t.dkim
                .iter()
                .any(|c| c.domain.eq_ignore_ascii_case(&domain) && c.enabled == Some(true))
        }),
        other => {
            let id: CheckId = other.parse().ok()?;
            let needs = match id {
                ExoSmtpAuthEnabled => "transport_config",
                ExoAutoforwardExternal => "outbound_spam_policies",
                ExoConnectorUnrestricted | ExoConnectorNoTls => "inbound_connectors",
                ExoDirectsendAllowed => "org_config",
                ExoSpamBypassOwnDomain => "transport_rules",
                _ => return None,
            };
            collected(needs).then(|| none_of(&[id]))
        }
    }
}

#[cfg(test)]
#[path = "tenant_tests.rs"]
mod tests;
