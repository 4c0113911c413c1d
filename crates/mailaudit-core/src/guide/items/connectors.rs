//! Exchange Online connectors: partner connectors, Direct Send rejected, and the review of every
//! inbound connector.

use crate::checks::CheckId;
use crate::guide::util::{is_plain_name, ps_quote};
use crate::guide::{Code, Lang, Priority, Step};

use super::{Builder, Draft, priority_of, step, step_code};

/// What `-SenderIPAddresses` of an inbound connector accepts.
const IP_RANGE_RULE: &str = "takes IPv4 addresses and CIDR ranges from /24 to /32 only: split a \
     wider range into /24s (a /20 is sixteen /24s), or restrict by certificate instead";

impl<'a> Builder<'a> {
    /// Partner connectors for legitimate senders, then Direct Send rejected.
    pub(super) fn connectors(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let r = self.r;
        let d = self.d.clone();
        let verdict = r.relay.verdict.as_str();
        let mut out = Vec::new();
        let endpoint = r
            .m365_endpoint
            .clone()
            .or_else(|| self.ctx.m365_endpoint.clone())
            .filter(|h| is_plain_name(h))
            .unwrap_or_else(|| "the tenant's Microsoft 365 endpoint".into());
        let open = verdict == "open";
        let conn_findings = self.take(&[ExoConnectorUnrestricted, ExoConnectorNoTls, MxGateway]);
        let ds_findings = self.take(&[RelayOpen, ExoDirectsendAllowed, RelayInconclusive]);
        let needs_reject = verdict != "blocked";
        if !needs_reject && conn_findings.iter().all(|f| f.id == MxGateway) {
            return out;
        }
        let ds_priority = if open {
            Priority::P1
        } else {
            priority_of(
                &ds_findings
                    .iter()
                    .map(|f| f.id)
                    .filter(|id| *id != RelayInconclusive)
                    .collect::<Vec<_>>(),
                Priority::P2,
            )
        };
        let conn_ids: Vec<CheckId> = conn_findings.iter().map(|f| f.id).collect();
        let conn_priority = priority_of(&conn_ids, Priority::P2).min(if needs_reject {
            ds_priority
        } else {
            Priority::P4
        });
        let name = |what: &str| ps_quote(&format!("{d} {what}"));
        let mut steps = vec![step(format!(
            "List the devices and applications that send as {d} to {endpoint} without \
             authenticating (scanners, printers, line-of-business applications, SaaS). Move each \
             to authenticated submission, or give it a partner inbound connector restricted to \
             its IP addresses or its certificate; replace the values in angle brackets."
        ))];
        steps.push(step_code(
            format!(
                "Restricted by IP address (`-SenderIPAddresses` {IP_RANGE_RULE}):"
            ),
            Lang::PowerShell,
            format!(
                "New-InboundConnector -Name {} -ConnectorType Partner -SenderDomains {} -RequireTls $true -RestrictDomainsToIPAddresses $true -SenderIPAddresses '<sender IP or range>'",
                name("partner by IP"),
                ps_quote(&d)
            ),
        ));
        steps.push(step_code(
            "Or restricted by certificate (the sender must use TLS with a certificate naming that host):",
            Lang::PowerShell,
            format!(
                "New-InboundConnector -Name {} -ConnectorType Partner -SenderDomains {} -RequireTls $true -RestrictDomainsToCertificate $true -TlsSenderCertificateName '<sender certificate host>'",
                name("partner by certificate"),
                ps_quote(&d)
            ),
        ));
        if let Some(vendor) = r.gateway.as_deref() {
            steps.push(step(format!(
                "Mail arrives through {vendor}: a partner connector restricted to {vendor}'s \
                 published IP ranges or certificate also locks the tenant to the gateway. A \
                 gateway publishes ranges wider than /24 (a /20, say): enter each as its /24s \
                 (a /20 is sixteen /24s), or restrict by the gateway's certificate instead. {}",
                self.summary(MxGateway)
            )));
        }
        steps.extend(self.connector_hardening());
        let mut item = self.item(
                "connectors-partner",
                "Give legitimate unauthenticated senders restricted partner connectors",
                &conn_findings,
                ExoConnectorUnrestricted,
                steps,
                vec![Code::new(
                    Lang::PowerShell,
                    "Get-InboundConnector | Format-List Name,Enabled,RestrictDomainsToIPAddresses,RestrictDomainsToCertificate,RequireTls",
                )],
            );
        if conn_ids.iter().all(|id| *id == MxGateway) {
            item.why = format!(
                "Rejecting Direct Send also rejects the scanners and applications that rely on it. \
                 A partner connector restricted to their IP addresses or certificate keeps them \
                 working; an unrestricted one would trust anyone who merely claims {d}."
            );
        }
        out.push(Draft {
            priority: conn_priority,
            item,
        });
        if !needs_reject {
            return out;
        }
        let state = match verdict {
            "open" => format!(
                "The relay test shows Direct Send open: {} accepted mail from {d} to {d} without \
                 authentication{}.",
                r.relay.target.as_deref().unwrap_or(&endpoint),
                r.relay
                    .reply
                    .as_deref()
                    .map(|x| format!(" (`{}`)", x.replace('`', "'")))
                    .unwrap_or_default()
            ),
            "inconclusive" => "The relay test could not decide; assume Direct Send is open until \
                               `RejectDirectSend` is set."
                .into(),
            _ => "The relay test has not been run; Direct Send is accepted unless \
                  `RejectDirectSend` is set (it is off by default)."
                .into(),
        };
        let steps = vec![
            step(state),
            step(self.summary(if open {
                RelayOpen
            } else {
                ExoDirectsendAllowed
            })),
            step_code(
                "Once the partner connectors of the previous item are in place, reject Direct Send:",
                Lang::PowerShell,
                "Set-OrganizationConfig -RejectDirectSend $true",
            ),
        ];
        out.push(Draft {
            priority: ds_priority,
            item: self.item(
                "direct-send-reject",
                "Reject Direct Send",
                &ds_findings,
                if open {
                    RelayOpen
                } else {
                    ExoDirectsendAllowed
                },
                steps,
                vec![
                    Code::new(
                        Lang::PowerShell,
                        "Get-OrganizationConfig | Format-List RejectDirectSend",
                    ),
                    Code::new(Lang::Shell, format!("mailaudit relay-test {d}")),
                ],
            ),
        });
        out
    }

    /// The steps that fix the existing inbound connectors: by name, from the tenant's import,
    /// when there is one; otherwise how to find them.
    fn connector_hardening(&self) -> Vec<Step> {
        let option_c = |id: &str| {
            format!(
                "Set-InboundConnector -Identity {id} -Enabled $false\n# after one to two weeks without legitimate mail missing (message trace, users' reports):\nRemove-InboundConnector -Identity {id}"
            )
        };
        let Some(t) = self
            .ctx
            .exo
            .as_ref()
            .filter(|t| t.has("inbound_connectors"))
        else {
            return vec![
                step_code(
                    "Harden the existing inbound connectors: every enabled partner connector \
                     must be restricted by IP or certificate and require TLS. List them, then \
                     fix each one:",
                    Lang::PowerShell,
                    format!(
                        "Get-InboundConnector | Format-List Name,Enabled,ConnectorType,SenderDomains,SenderIPAddresses,RestrictDomainsToIPAddresses,RestrictDomainsToCertificate,TlsSenderCertificateName,RequireTls\n{}",
                        crate::powershell::append_to_list(
                            "Get-InboundConnector",
                            "Set-InboundConnector",
                            "<connector name>",
                            "SenderIPAddresses",
                            &["<partner IP or range>"],
                            "-RequireTls $true -RestrictDomainsToIPAddresses $true"
                        )
                    ),
                ),
                step_code(
                    "Or, for a connector nobody can explain: disable it, wait one to two weeks, \
                     then remove it:",
                    Lang::PowerShell,
                    option_c(&ps_quote("<connector name>")),
                ),
            ];
        };
        let bad: Vec<&crate::exo::InboundConnector> = t
            .inbound_connectors
            .iter()
            .filter(|c| crate::exo::is_unrestricted(c) || crate::exo::lacks_tls(c))
            .collect();
        if bad.is_empty() {
            return vec![step(
                "The tenant's Exchange Online import shows no enabled partner connector that is \
                 unrestricted or lacks TLS: give new senders connectors like the ones above.",
            )];
        }
        let mut steps = Vec::new();
        for c in bad {
            let id = ps_quote(&c.name);
            let accepts = if c.sender_domains.iter().any(|s| s == "*") {
                "every sender domain (*)".to_string()
            } else {
                c.sender_domains.join(", ")
            };
            let mut code = Vec::new();
            let what;
            if crate::exo::is_unrestricted(c) {
                what = format!(
                    "Connector {id} accepts {accepts} from any IP address and without a \
                     certificate restriction{}. Restrict it by IP address (`-SenderIPAddresses` \
                     {IP_RANGE_RULE}) or by certificate, and require TLS:",
                    if c.require_tls == Some(false) {
                        ", and does not require TLS"
                    } else {
                        ""
                    }
                );
                if c.sender_ip_addresses.is_empty() {
                    code.push(crate::powershell::append_to_list(
                        "Get-InboundConnector",
                        "Set-InboundConnector",
                        &c.name,
                        "SenderIPAddresses",
                        &["<partner IP or range>"],
                        "-RequireTls $true -RestrictDomainsToIPAddresses $true",
                    ));
                } else {
                    // Its IP addresses are there: only the restriction is missing.
                    code.push(format!(
                        "Set-InboundConnector -Identity {id} -RequireTls $true -RestrictDomainsToIPAddresses $true"
                    ));
                }
                code.push("# or, by certificate:".into());
                code.push(format!(
                    "Set-InboundConnector -Identity {id} -RequireTls $true -RestrictDomainsToCertificate $true -TlsSenderCertificateName '<partner certificate host>'"
                ));
            } else {
                what = format!("Partner connector {id} ({accepts}) does not require TLS:");
                code.push(format!(
                    "Set-InboundConnector -Identity {id} -RequireTls $true"
                ));
            }
            steps.push(step_code(what, Lang::PowerShell, code.join("\n")));
            steps.push(step_code(
                format!(
                    "Or, if nobody can say what {id} is for: disable it, wait one to two weeks, \
                     then remove it:"
                ),
                Lang::PowerShell,
                option_c(&id),
            ));
        }
        steps
    }

    /// `connectors-audit`: review every inbound connector of the tenant (Microsoft 365
    /// domains). Ticked by an Exchange Online import that lists the connectors and shows none
    /// unrestricted or without TLS ([`crate::guide::verify_import`]), or by hand.
    pub(super) fn connectors_audit(&self) -> Draft {
        let list = "Get-InboundConnector | Format-List Name,ConnectorType,SenderDomains,SenderIPAddresses,TlsSenderCertificateName,RestrictDomainsToIPAddresses,RestrictDomainsToCertificate,RequireTls,Enabled";
        let mut steps = vec![step_code(
            "List every inbound connector of the tenant with what restricts it:",
            Lang::PowerShell,
            list,
        )];
        match self
            .ctx
            .exo
            .as_ref()
            .filter(|t| t.has("inbound_connectors"))
        {
            Some(t) if t.inbound_connectors.is_empty() => steps.push(step(
                "The tenant's Exchange Online import lists no inbound connector: nothing to \
                 review now; review a connector added later the same way.",
            )),
            Some(t) => {
                let each: Vec<String> = t
                    .inbound_connectors
                    .iter()
                    .map(|c| {
                        let restricted = if c.restricts_by_ip() {
                            "restricted by IP address"
                        } else if c.restricts_by_certificate() {
                            "restricted by certificate"
                        } else {
                            "not restricted"
                        };
                        format!(
                            "{} ({}, {}, {restricted}, {})",
                            ps_quote(&c.name),
                            if c.is_partner() {
                                "partner"
                            } else {
                                "on-premises"
                            },
                            if c.is_enabled() {
                                "enabled"
                            } else {
                                "disabled"
                            },
                            match c.require_tls {
                                Some(true) => "TLS required",
                                Some(false) => "TLS not required",
                                None => "TLS setting not exported",
                            }
                        )
                    })
                    .collect();
                steps.push(step(format!(
                    "The tenant's Exchange Online import lists {} inbound connector{}: {}.",
                    each.len(),
                    if each.len() == 1 { "" } else { "s" },
                    each.join("; ")
                )));
            }
            None => {}
        }
        steps.push(step(
            "For each connector, find out who sends through it (a scanner, an application, a \
             partner, a filtering gateway) and whether it is still used. An enabled partner \
             connector must be restricted to its sender's IP addresses or certificate and \
             require TLS; one nobody can explain is disabled, then removed. The connector item \
             of this guide has the commands.",
        ));
        steps.push(step_code(
            "Export the tenant's configuration and import it: the import ticks this item when \
             it shows no enabled partner connector that is unrestricted or lacks TLS (and \
             reopens it when a later import shows one):",
            Lang::Shell,
            "mailaudit exo script -o collect.ps1\npwsh ./collect.ps1 -OutFile tenant.json\nmailaudit exo import tenant.json",
        ));
        let mut item = self.item(
            "connectors-audit",
            "Audit the inbound connectors",
            &[],
            CheckId::ExoConnectorUnrestricted,
            steps,
            vec![Code::new(Lang::PowerShell, list)],
        );
        item.why = format!(
            "An inbound connector decides which mail the tenant trusts. One left from an old \
             gateway, a past partner or a test, or one that accepts any sender domain from any \
             address, lets spoofed mail claiming {} past the controls meant for anonymous mail; \
             nobody notices until it is abused.",
            self.d
        );
        Draft {
            priority: Priority::P3,
            item,
        }
    }
}
