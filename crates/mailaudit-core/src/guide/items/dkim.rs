//! DKIM: the Microsoft 365 selectors' CNAMEs, and keys that are too weak.

use crate::checks::CheckId;
use crate::dkim;
use crate::guide::util::ps_quote;
use crate::guide::{Code, DnsRecord, Lang, Priority};

use super::{Builder, Draft, priority_of, step, step_code, step_dns};

/// Where the DKIM targets the guide writes come from ([`Builder::dkim_targets`]).
enum DkimSource {
    /// The tenant's `Get-DkimSigningConfig`, from its Exchange Online import.
    Import,
    /// The other selector of a published, correct target.
    Published,
}

impl<'a> Builder<'a> {
    /// The DKIM targets the guide may write, per selector number: the tenant's own values from
    /// its Exchange Online import (`Get-DkimSigningConfig`), or the other selector of a
    /// published, correct target (same tenant, zone and label, selector number swapped). `None`
    /// when neither is known: a target is never built from the tenant name and the label, since
    /// the label, the tenant and (for domains added since May 2025, MX `*.mx.microsoft`) the
    /// `<letter>-v1.dkim.mail.microsoft` zone cannot be predicted.
    fn dkim_targets(&self, mismatch: bool) -> Option<(DkimSource, [String; 2])> {
        if let Some((s1, s2)) = &self.ctx.dkim_cnames {
            // Exported values are data: written only when they are Microsoft 365 targets of
            // the right selector.
            let ok = |v: &str, n: u8| {
                dkim::parse_m365_target(v)
                    .filter(|t| t.selector == n)
                    .map(|_| v.trim().trim_end_matches('.').to_ascii_lowercase())
            };
            return Some((DkimSource::Import, [ok(s1, 1)?, ok(s2, 2)?]));
        }
        if mismatch {
            return None;
        }
        let published: Vec<dkim::M365Target> = self
            .r
            .dkim
            .selectors
            .iter()
            .filter_map(|s| {
                let t = dkim::parse_m365_target(s.cname.as_deref()?)?;
                (s.name
                    .eq_ignore_ascii_case(&format!("selector{}", t.selector)))
                .then_some(t)
            })
            .collect();
        let t = published.first()?;
        if published
            .iter()
            .any(|o| (&o.tenant, &o.zone, &o.label) != (&t.tenant, &t.zone, &t.label))
            || !dkim::label_fits_domain(&t.label, &self.d) && !self.own_mx_label(&t.label)
        {
            return None;
        }
        Some((
            DkimSource::Published,
            [t.for_selector(1).to_string(), t.for_selector(2).to_string()],
        ))
    }

    /// Whether `label` is one the domain's own Microsoft 365 MX names.
    fn own_mx_label(&self, label: &str) -> bool {
        self.r
            .mx
            .iter()
            .filter_map(|m| {
                crate::mx::classify_host(&m.host)
                    .m365_label()
                    .map(str::to_string)
            })
            .any(|l| l.eq_ignore_ascii_case(label))
    }

    pub(super) fn dkim(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let mut out = Vec::new();
        let d = self.d.clone();
        let qd = ps_quote(&d);
        let get = format!(
            "Get-DkimSigningConfig -Identity {qd} | Format-List Selector1CNAME,Selector2CNAME"
        );
        let new = format!("New-DkimSigningConfig -DomainName {qd} -Enabled $false");
        let enable = format!("Set-DkimSigningConfig -Identity {qd} -Enabled $true");
        let verify = vec![
            Code::new(
                Lang::PowerShell,
                format!(
                    "Resolve-DnsName -Type CNAME -Name 'selector1._domainkey.{d}'\nResolve-DnsName -Type CNAME -Name 'selector2._domainkey.{d}'"
                ),
            ),
            self.audit_cmd(),
        ];
        let cnames = self.take(&[DkimM365Missing, DkimM365Partial, DkimM365TargetMismatch]);
        if !cnames.is_empty() {
            let ids: Vec<CheckId> = cnames.iter().map(|f| f.id).collect();
            let mismatch = ids.contains(&DkimM365TargetMismatch);
            let mut steps = vec![step(self.summary(ids[0]))];
            // The selectors to publish: both when one is wrong, else those not published.
            let published = |n: u8| {
                self.r
                    .dkim
                    .selectors
                    .iter()
                    .any(|s| s.name == format!("selector{n}") && s.cname.is_some())
            };
            let wanted: Vec<u8> = [1u8, 2]
                .into_iter()
                .filter(|n| mismatch || !published(*n))
                .collect();
            let replacing = if mismatch {
                " (replacing the CNAMEs published now)"
            } else {
                ""
            };
            match self.dkim_targets(mismatch) {
                Some((source, targets)) if !wanted.is_empty() => {
                    let lines: Vec<DnsRecord> = wanted
                        .iter()
                        .map(|n| {
                            DnsRecord::cname(
                                &d,
                                &format!("selector{n}._domainkey.{d}"),
                                &targets[*n as usize - 1],
                            )
                        })
                        .collect();
                    let how = match source {
                        DkimSource::Import => format!(
                            "Publish the CNAMEs{replacing}: the exact values of the tenant's \
                             `Get-DkimSigningConfig`, from its Exchange Online import:"
                        ),
                        DkimSource::Published => format!(
                            "Publish the missing CNAME: the published selector's target with \
                             the selector number swapped (`{get}` shows the same value):"
                        ),
                    };
                    steps.push(step_dns(how, lines));
                }
                _ => {
                    steps.push(step_code(
                        "Read the exact CNAME targets in Exchange Online PowerShell (they name \
                         the tenant and a label Microsoft chooses, and for domains added since \
                         May 2025 a `<letter>-v1.dkim.mail.microsoft` zone, so they cannot be \
                         written here):",
                        Lang::PowerShell,
                        get.clone(),
                    ));
                    steps.push(step_code(
                        "If it returns nothing, create the signing configuration first, then read \
                         them again:",
                        Lang::PowerShell,
                        new.clone(),
                    ));
                    let which: Vec<String> = wanted
                        .iter()
                        .map(|n| {
                            format!("`selector{n}._domainkey.{d}` as a CNAME to the `Selector{n}CNAME` value")
                        })
                        .collect();
                    steps.push(step(format!(
                        "At the DNS host, publish {}{replacing}, exactly as shown (once the \
                         tenant's export is imported with `mailaudit exo import`, this guide \
                         writes the values itself).",
                        if which.is_empty() {
                            format!(
                                "`selector1._domainkey.{d}` and `selector2._domainkey.{d}` as \
                                 CNAMEs to the `Selector1CNAME` and `Selector2CNAME` values"
                            )
                        } else {
                            which.join(" and ")
                        }
                    )));
                }
            }
            steps.push(step_code(
                "Once both CNAMEs resolve, enable signing:",
                Lang::PowerShell,
                enable.clone(),
            ));
            out.push(Draft {
                priority: priority_of(&ids, Priority::P2),
                item: self.item(
                    "dkim-cnames",
                    "Publish the Microsoft 365 DKIM CNAMEs",
                    &cnames,
                    ids[0],
                    steps,
                    verify.clone(),
                ),
            });
        }
        let disabled = self.take(&[DkimM365NotEnabled, ExoDkimDisabled]);
        if !disabled.is_empty() {
            let ids: Vec<CheckId> = disabled.iter().map(|f| f.id).collect();
            let steps = vec![
                step(self.summary(ids[0])),
                step_code("Enable signing:", Lang::PowerShell, enable.clone()),
                step_code(
                    "If `Get-DkimSigningConfig` finds no configuration for the domain, create it enabled:",
                    Lang::PowerShell,
                    format!("New-DkimSigningConfig -DomainName {qd} -Enabled $true"),
                ),
            ];
            let mut v = vec![Code::new(
                Lang::PowerShell,
                format!(
                    "Get-DkimSigningConfig -Identity {qd} | Format-List Enabled,Status\nResolve-DnsName -Type TXT -Name 'selector1._domainkey.{d}'"
                ),
            )];
            v.push(self.audit_cmd());
            out.push(Draft {
                priority: priority_of(&ids, Priority::P2),
                item: self.item(
                    "dkim-enable",
                    "Enable DKIM signing in Microsoft 365",
                    &disabled,
                    ids[0],
                    steps,
                    v,
                ),
            });
        }
        let weak = self.take(&[DkimKeyWeak]);
        if !weak.is_empty() {
            let mut steps = vec![step(self.summary(DkimKeyWeak))];
            if self.r.is_m365() {
                steps.push(step_code(
                    "Rotate to a 2048-bit key, and once the new key is in use (up to about four \
                     days), rotate again so that both selectors hold one:",
                    Lang::PowerShell,
                    format!(
                        "Get-DkimSigningConfig -Identity {qd} | Format-List Selector1KeySize,Selector2KeySize\nRotate-DkimSigningConfig -Identity {qd} -KeySize 2048"
                    ),
                ));
            }
            out.push(Draft {
                priority: priority_of(&[DkimKeyWeak], Priority::P3),
                item: self.item(
                    "dkim-key-size",
                    "Use 2048-bit DKIM keys",
                    &weak,
                    DkimKeyWeak,
                    steps,
                    vec![self.audit_cmd()],
                ),
            });
        }
        out
    }
}
