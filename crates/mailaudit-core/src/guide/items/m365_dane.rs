//! Microsoft 365's move to inbound SMTP DANE: from the legacy `mail.protection.outlook.com`
//! endpoint to the DNSSEC-signed `*.mx.microsoft` one (MX-M365-LEGACY).
//!
//! The steps follow Microsoft's procedure ("How SMTP DANE works", set up inbound SMTP DANE with
//! DNSSEC) in its order: lower the MX TTL, `Enable-DnssecForVerifiedDomain` (which prints the new
//! MX host, `DnssecMxValue`), add that MX at priority 20, test it, swap priorities (legacy 30,
//! new 0), delete the legacy MX and restore the TTL, then `Enable-SmtpDaneInbound`. The new host
//! is never constructed from the domain name: the guide names it `<DnssecMxValue>` unless the
//! tenant's Exchange Online import shows it (`Get-DnssecStatusForVerifiedDomain`).

use crate::checks::CheckId;
use crate::guide::util::ps_quote;
use crate::guide::{Code, Lang, Priority};

use super::{Builder, Draft, priority_of, step, step_code};

/// The placeholder for the MX host that `Enable-DnssecForVerifiedDomain` prints.
pub(crate) const DNSSEC_MX_PLACEHOLDER: &str = "<DnssecMxValue>";

impl<'a> Builder<'a> {
    pub(super) fn m365_dane(&mut self) -> Vec<Draft> {
        let found = self.take(&[CheckId::MxM365Legacy]);
        if found.is_empty() {
            return Vec::new();
        }
        let d = self.d.clone();
        let q = ps_quote(&d);
        let legacy: Vec<(u16, String)> = self
            .r
            .mx
            .iter()
            .map(|m| {
                (
                    m.preference,
                    m.host.trim_end_matches('.').to_ascii_lowercase(),
                )
            })
            .filter(|(_, h)| crate::mx::is_m365_legacy(h) && super::is_plain_name(h))
            .collect();
        // What the tenant's import says (an absent export is unknown, never "disabled").
        let tenant = self.ctx.exo.as_ref();
        let dnssec = tenant.and_then(|t| t.dnssec_of(&d));
        let dane = tenant.and_then(|t| t.dane_inbound_of(&d));
        let expected = dnssec
            .and_then(|s| s.expected_mx.as_deref())
            .filter(|h| crate::mx::is_m365_dane_endpoint(h));
        let new_mx = expected.unwrap_or(DNSSEC_MX_PLACEHOLDER);

        let mut steps = vec![step(self.summary(CheckId::MxM365Legacy))];
        steps.push(step(
            "Microsoft's prerequisites: the domain is an accepted domain whose status is Healthy \
             in the Microsoft 365 admin center, and its MX has priority 0 or 10 with no fallback \
             MX. If a third-party gateway receives the mail, leave the MX at the gateway and \
             change the smart host it relays to into the `DnssecMxValue` instead of the steps \
             below that edit the MX.",
        ));
        let current: Vec<String> = legacy
            .iter()
            .map(|(p, h)| format!("{d}.  IN  MX  {p}  {h}."))
            .collect();
        let lower_ttl = "At the DNS host, lower the TTL of the current MX record to the lowest \
                         value it allows (not below 30 seconds), then wait for the old TTL to \
                         expire (an hour for a TTL of 3600)";
        steps.push(if current.is_empty() {
            step(format!("{lower_ttl}."))
        } else {
            step_code(format!("{lower_ttl}:"), Lang::Text, current.join("\n"))
        });
        let enable_dnssec = match (dnssec.and_then(|s| s.enabled()), expected) {
            (Some(true), Some(mx)) => format!(
                "The tenant's Exchange Online import shows DNSSEC already enabled for {d} \
                 (`Get-DnssecStatusForVerifiedDomain`), with the MX host `{mx}`: the steps below \
                 use it. Running the command again prints the same `DnssecMxValue`:"
            ),
            (Some(true), None) => format!(
                "The tenant's Exchange Online import shows DNSSEC already enabled for {d}; run \
                 the command again to read its `DnssecMxValue`, the new MX host written \
                 `{DNSSEC_MX_PLACEHOLDER}` below:"
            ),
            _ => format!(
                "In Exchange Online PowerShell, enable DNSSEC for the domain. It prints `Result`, \
                 `DnssecMxValue` and `ErrorData`: note the `DnssecMxValue` (a host like \
                 `<label>.<letter>-v1.mx.microsoft`, which cannot be derived from the domain \
                 name), written `{DNSSEC_MX_PLACEHOLDER}` below:"
            ),
        };
        steps.push(step_code(
            enable_dnssec,
            Lang::PowerShell,
            format!("Enable-DnssecForVerifiedDomain -DomainName {q}"),
        ));
        steps.push(step_code(
            "At the DNS host, add an MX record for the new host at priority 20, next to the \
             current MX, with the lowest TTL allowed (not below 30 seconds):",
            Lang::Text,
            format!("{d}.  30  IN  MX  20  {new_mx}."),
        ));
        steps.push(step(
            "Check that the new MX works with the Inbound SMTP Email test of the Microsoft \
             Remote Connectivity Analyzer, https://testconnectivity.microsoft.com/tests/O365InboundSmtp/input \
             (retry if DNS caches still give the old answer).",
        ));
        let mut swap: Vec<String> = legacy
            .iter()
            .map(|(_, h)| format!("{d}.  30  IN  MX  30  {h}."))
            .collect();
        swap.push(format!("{d}.  30  IN  MX  0  {new_mx}."));
        steps.push(step_code(
            "Change the priority of the legacy MX to 30 and of the new MX to 0 (the highest):",
            Lang::Text,
            swap.join("\n"),
        ));
        steps.push(step_code(
            "Delete the legacy `mail.protection.outlook.com` MX record, then set the TTL of the \
             new MX to 3600 seconds, so that only this MX is left:",
            Lang::Text,
            format!("{d}.  3600  IN  MX  0  {new_mx}."),
        ));
        let enable_dane = if dane.and_then(|s| s.enabled) == Some(true) {
            format!(
                "The tenant's Exchange Online import shows SMTP DANE inbound already enabled for \
                 {d} (`Get-SmtpDaneInboundStatus`): only the MX change above is left. Otherwise, \
                 enable it (Microsoft then publishes and rotates the TLSA records of its endpoint):"
            )
        } else {
            "Enable inbound SMTP DANE (Microsoft then publishes and rotates the TLSA records of \
             its endpoint):"
                .to_string()
        };
        steps.push(step_code(
            enable_dane,
            Lang::PowerShell,
            format!("Enable-SmtpDaneInbound -DomainName {q}"),
        ));
        let verify = vec![
            Code::new(
                Lang::PowerShell,
                format!(
                    "Get-DnssecStatusForVerifiedDomain -DomainName {q}\n\
                     Get-SmtpDaneInboundStatus -DomainName {q}\n\
                     Resolve-DnsName -Type MX -Name {q}"
                ),
            ),
            self.audit_cmd(),
        ];
        vec![Draft {
            priority: priority_of(&[CheckId::MxM365Legacy], Priority::P4),
            item: self.item(
                "m365-dane",
                "Move the MX to Microsoft 365's DNSSEC endpoint and enable inbound SMTP DANE",
                &found,
                CheckId::MxM365Legacy,
                steps,
                verify,
            ),
        }]
    }
}
