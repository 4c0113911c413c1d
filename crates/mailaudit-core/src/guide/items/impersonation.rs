//! Exchange Online impersonation protection and mailbox intelligence.

use crate::checks::CheckId;
use crate::guide::util::{is_plain_name, ps_quote};
use crate::guide::{Code, Lang, Priority};

use super::{Builder, Draft, priority_of, step, step_code};

impl<'a> Builder<'a> {
    pub(super) fn impersonation(&mut self) -> Vec<Draft> {
        use CheckId::*;
        // Mailbox intelligence is an item of its own (`mailbox-intelligence`).
        let findings = self.take(&[ExoImpersonationUsersOff, ExoImpersonationDomainsOff]);
        // The policy the tenant's import shows in effect (its default one), by name.
        let target = self
            .ctx
            .exo
            .as_ref()
            .and_then(crate::exo::impersonation_target);
        let policy = ps_quote(target.map_or("Office365 AntiPhish Default", |p| p.name.as_str()));
        // The addresses the policy protects already (`Name;address`): not added twice.
        let protected: Vec<String> = target
            .map(|p| {
                p.targeted_users_to_protect
                    .iter()
                    .filter_map(|u| u.rsplit(';').next())
                    .map(|a| a.trim().to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let people: Vec<String> = self
            .ctx
            .key_people
            .iter()
            .filter(|(_, email)| !protected.contains(&email.trim().to_ascii_lowercase()))
            .filter_map(|(name, email)| {
                let email = email.trim();
                let ok = email.split_once('@').is_some_and(|(l, dom)| {
                    !l.is_empty()
                        && is_plain_name(dom)
                        && l.chars()
                            .all(|c| c.is_ascii_graphic() && !"\"'`$;,<>()".contains(c))
                });
                ok.then(|| {
                    let name: String = name
                        .chars()
                        .map(|c| if c == ';' || c.is_control() { ' ' } else { c })
                        .collect();
                    let name = name.trim();
                    ps_quote(&format!(
                        "{};{email}",
                        if name.is_empty() { email } else { name }
                    ))
                })
            })
            .collect();
        let mut steps = vec![step(self.summary(ExoImpersonationUsersOff))];
        steps.push(step_code(
            "Protect the organization's domains (needs Defender for Office 365 Plan 1 or 2):",
            Lang::PowerShell,
            format!(
                "Set-AntiPhishPolicy -Identity {policy} -EnableOrganizationDomainsProtection $true -TargetedDomainProtectionAction Quarantine"
            ),
        ));
        if people.is_empty() && !self.ctx.key_people.is_empty() && !protected.is_empty() {
            steps.push(step(format!(
                "The key people recorded for {} are protected by {policy} already (its \
                 `TargetedUsersToProtect` in the Exchange Online import).",
                self.d
            )));
        } else if people.is_empty() {
            steps.push(step(format!(
                "No key people are recorded for {}: add the executives, finance, HR and IT \
                 administrators to the domain's inventory and regenerate this guide to get the \
                 `-TargetedUsersToProtect` command.",
                self.d
            )));
        } else {
            steps.push(step_code(
                "Protect the key people against impersonation:",
                Lang::PowerShell,
                format!(
                    "Set-AntiPhishPolicy -Identity {policy} -EnableTargetedUserProtection $true -TargetedUsersToProtect @{{Add={}}} -TargetedUserProtectionAction Quarantine",
                    people.join(",")
                ),
            ));
        }
        let ids: Vec<CheckId> = findings.iter().map(|f| f.id).collect();
        vec![Draft {
            priority: priority_of(&ids, Priority::P3),
            item: self.item(
                "impersonation",
                "Turn on impersonation protection",
                &findings,
                ExoImpersonationUsersOff,
                steps,
                vec![Code::new(
                    Lang::PowerShell,
                    format!("Get-AntiPhishPolicy -Identity {policy} | Format-List Enabled,EnableTargetedUserProtection,TargetedUsersToProtect,EnableOrganizationDomainsProtection"),
                )],
            ),
        }]
    }

    /// `mailbox-intelligence`: mailbox intelligence and its impersonation protection on in the
    /// anti-phishing policy in effect. Ticked by an Exchange Online import that shows both on.
    pub(super) fn mailbox_intelligence(&mut self) -> Draft {
        use CheckId::*;
        let findings = self.take(&[ExoMailboxIntelligenceOff]);
        let tenant = self.ctx.exo.as_ref();
        let target = tenant.and_then(crate::exo::impersonation_target);
        let policy = ps_quote(target.map_or("Office365 AntiPhish Default", |p| p.name.as_str()));
        // The live policy of the import that has both on, if any.
        let on = tenant
            .filter(|t| t.has("anti_phish_policies"))
            .and_then(|t| {
                crate::exo::policies_in_effect(t).into_iter().find(|p| {
                    p.enable_mailbox_intelligence == Some(true)
                        && p.enable_mailbox_intelligence_protection == Some(true)
                })
            });
        let mut steps = Vec::new();
        match on {
            Some(p) if findings.is_empty() => steps.push(step(format!(
                "The tenant's anti-phishing policy {} has mailbox intelligence and its \
                 protection on (Exchange Online import): nothing to change.",
                ps_quote(&p.name)
            ))),
            _ => {
                steps.push(step_code(
                    "Turn on mailbox intelligence and act on the impersonation it detects (needs \
                     Defender for Office 365 Plan 1 or 2). `MoveToJmf` delivers to the Junk Email \
                     folder; `Quarantine` is the strict preset's action:",
                    Lang::PowerShell,
                    format!(
                        "Set-AntiPhishPolicy -Identity {policy} -EnableMailboxIntelligence $true -EnableMailboxIntelligenceProtection $true -MailboxIntelligenceProtectionAction MoveToJmf"
                    ),
                ));
                steps.push(step(
                    "An Exchange Online import (`mailaudit exo import`) ticks this item when the \
                     policy in effect has both settings on.",
                ));
            }
        }
        let ids: Vec<CheckId> = findings.iter().map(|f| f.id).collect();
        Draft {
            priority: priority_of(&ids, Priority::P3),
            item: self.item(
                "mailbox-intelligence",
                "Turn on mailbox intelligence",
                &findings,
                ExoMailboxIntelligenceOff,
                steps,
                vec![Code::new(
                    Lang::PowerShell,
                    format!("Get-AntiPhishPolicy -Identity {policy} | Format-List Enabled,EnableMailboxIntelligence,EnableMailboxIntelligenceProtection,MailboxIntelligenceProtectionAction"),
                )],
            ),
        }
    }
}
