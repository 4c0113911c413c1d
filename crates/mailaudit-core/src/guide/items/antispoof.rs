//! Exchange Online anti-spoofing: the transport rule against spoofed own domains, and the rules
//! that bypass spam filtering.

use crate::checks::CheckId;
use crate::finding::Finding;
use crate::guide::util::ps_quote;
use crate::guide::{Code, Lang, Priority};

use super::{Builder, Draft, priority_of, step, step_code};

impl<'a> Builder<'a> {
    pub(super) fn antispoof(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let d = self.d.clone();
        let missing = self.take(&[ExoAntispoofRuleMissing]);
        let audit = self.take(&[ExoAntispoofRuleAudit]);
        let bypass = self.take(&[ExoSpamBypassOwnDomain]);
        // The tenant's rules that already cover the domain (an enforcing one first): the steps
        // act on that rule, by its name, and never create a second one.
        let tenant = self.ctx.exo.as_ref().filter(|t| t.has("transport_rules"));
        let covering: Vec<&crate::exo::TransportRule> = tenant
            .map(|t| {
                let mut rules: Vec<&crate::exo::TransportRule> = crate::exo::antispoof_rules(t)
                    .into_iter()
                    .filter(|(_, c)| c.iter().any(|x| x.eq_ignore_ascii_case(&d)))
                    .map(|(r, _)| r)
                    .collect();
                rules.sort_by_key(|r| !(r.is_enabled() && r.is_enforced()));
                rules
            })
            .unwrap_or_default();
        let existing = covering.first().copied();
        let rule_name = existing.map_or_else(
            || crate::powershell::antispoof_rule_name(&[&d]),
            |r| r.name.clone(),
        );
        let rule = ps_quote(&rule_name);
        let exempt = step_code(
            "Exempt each legitimate external service that sends as the domain (marketing, \
             CRM, invoicing), by its sending IP range:",
            Lang::PowerShell,
            // Read and extend: a plain list would drop the exemptions made before.
            crate::powershell::append_to_list(
                "Get-TransportRule",
                "Set-TransportRule",
                &rule_name,
                "ExceptIfSenderIpRanges",
                &["<service IP range>"],
                "",
            ),
        );
        let incident = step_code(
            "While the rule audits, optionally have each match reported to a mailbox you \
             watch (the audit severity also shows in the transport rule report):",
            Lang::PowerShell,
            format!(
                "Set-TransportRule -Identity {rule} -SetAuditSeverity 'Medium' -GenerateIncidentReport '<security mailbox address>'"
            ),
        );
        let enforced = existing.is_some_and(|r| r.is_enabled() && r.is_enforced());
        let create = match existing {
            Some(r) => {
                let mut steps = vec![step(format!(
                    "The tenant's transport rule {rule} already rejects external mail using {d}{}: \
                     do not create another rule.",
                    if enforced {
                        String::new()
                    } else {
                        format!(
                            " (state {}, mode {})",
                            r.state.as_deref().unwrap_or("Enabled"),
                            r.mode.as_deref().unwrap_or("Enforce")
                        )
                    }
                ))];
                steps.push(exempt);
                if !enforced {
                    steps.push(incident);
                }
                steps
            }
            None => vec![
                step(self.summary(ExoAntispoofRuleMissing)),
                step_code(
                    "Create the rule in audit mode (matches are logged with a medium audit \
                     severity, nothing is rejected yet):",
                    Lang::PowerShell,
                    format!(
                        "New-TransportRule -Name {rule} -FromScope NotInOrganization -SenderDomainIs {} -SenderAddressLocation HeaderOrEnvelope -RejectMessageEnhancedStatusCode 5.7.1 -RejectMessageReasonText {} -Mode Audit -SetAuditSeverity 'Medium'",
                        ps_quote(&d),
                        ps_quote(&format!("External senders may not use {d}"))
                    ),
                ),
                exempt,
                incident,
            ],
        };
        let check = Code::new(
            Lang::PowerShell,
            format!(
                "Get-TransportRule -Identity {rule} | Format-List State,Mode,SenderDomainIs,ExceptIfSenderIpRanges"
            ),
        );
        let enforce = if enforced {
            vec![step(format!(
                "The tenant's transport rule {rule} is enabled and enforced for {d}: nothing to \
                 change; keep its exemptions up to date."
            ))]
        } else {
            let mut code = format!("Set-TransportRule -Identity {rule} -Mode Enforce");
            if existing.is_some_and(|r| !r.is_enabled()) {
                code.push_str(&format!("\nEnable-TransportRule -Identity {rule}"));
            }
            vec![
                step(
                    "Leave the rule in audit mode for one to two weeks and look for legitimate \
                     mail in its matches (message trace, transport rule report, incident \
                     reports); exempt it.",
                ),
                step_code("Then enforce the rule:", Lang::PowerShell, code),
            ]
        };
        let mut out = vec![
            Draft {
                priority: priority_of(&[ExoAntispoofRuleMissing], Priority::P2),
                item: self.item(
                    "antispoof-rule-audit",
                    "Create the anti-spoofing transport rule in audit mode",
                    &missing,
                    ExoAntispoofRuleMissing,
                    create,
                    vec![check.clone()],
                ),
            },
            Draft {
                priority: priority_of(&[ExoAntispoofRuleAudit], Priority::P3),
                item: self.item(
                    "antispoof-rule-enforce",
                    "Enforce the anti-spoofing transport rule",
                    &audit,
                    ExoAntispoofRuleAudit,
                    enforce,
                    vec![check],
                ),
            },
        ];
        out.extend(self.spam_bypass(&bypass));
        out
    }

    /// The rules that let mail claiming the organization's own domains bypass spam filtering
    /// (SCL -1): disabled, then removed, by name.
    fn spam_bypass(&self, findings: &[&'a Finding]) -> Option<Draft> {
        use CheckId::*;
        let tenant = self.ctx.exo.as_ref().filter(|t| t.has("transport_rules"));
        let rules: Vec<(String, Vec<String>)> = tenant
            .map(|t| {
                crate::exo::spam_bypass_rules(t)
                    .into_iter()
                    .map(|(r, own)| (r.name.clone(), own.iter().map(|s| s.to_string()).collect()))
                    .collect()
            })
            .unwrap_or_default();
        if findings.is_empty() && rules.is_empty() {
            return None;
        }
        let mut steps = vec![step(self.summary(ExoSpamBypassOwnDomain))];
        if rules.is_empty() {
            // Findings without the import they came from: their own fixes name the rules.
            for f in findings {
                if !f.fix.trim().is_empty() {
                    steps.push(step_code(
                        "For this tenant:",
                        Lang::PowerShell,
                        f.fix.trim().to_string(),
                    ));
                }
            }
        }
        for (name, own) in &rules {
            let id = ps_quote(name);
            steps.push(step_code(
                format!(
                    "Transport rule {id} sets SCL -1 (bypasses spam filtering) for mail that \
                     claims to come from {}: anyone can spoof those domains past the filters. \
                     Disable it now; remove it once nothing legitimate is missed:",
                    own.join(", ")
                ),
                Lang::PowerShell,
                format!(
                    "Disable-TransportRule -Identity {id}\n# after one to two weeks without legitimate mail missing:\nRemove-TransportRule -Identity {id}"
                ),
            ));
        }
        steps.push(step(
            "If a sender truly needs a bypass, tie it to the sender's IP addresses \
             (`-SenderIpRanges`), never to a sender domain.",
        ));
        let check = match rules.first() {
            Some((name, _)) => format!(
                "Get-TransportRule -Identity {} | Format-List State,SetSCL,SenderDomainIs,SenderIpRanges",
                ps_quote(name)
            ),
            None => "Get-TransportRule | Where-Object { $_.SetSCL -eq -1 } | Format-List Name,State,SenderDomainIs,SenderIpRanges".to_string(),
        };
        Some(Draft {
            priority: priority_of(&[ExoSpamBypassOwnDomain], Priority::P2),
            item: self.item(
                "spam-bypass-remove",
                "Remove the spam-filter bypass for the organization's own domains",
                findings,
                ExoSpamBypassOwnDomain,
                steps,
                vec![Code::new(Lang::PowerShell, check)],
            ),
        })
    }
}
