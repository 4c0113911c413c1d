//! A parked domain: the lock-down records of a domain that sends no mail.

use crate::checks::{Area, CheckId};
use crate::guide::util::ps_quote;
use crate::guide::{Code, DnsRecord, Lang, Priority};
use crate::parked;

use super::{Builder, Draft, priority_of, step, step_dns};

impl<'a> Builder<'a> {
    /// The lock-down of a domain that sends no mail: the records of [`parked::lockdown`] (as
    /// the audit's findings carry them), and every SPF, DMARC and MX-MISSING finding folded in,
    /// so that the guide proposes no `p=none` roll-out, Microsoft 365 include or MX for it.
    pub(super) fn parked(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let mut findings = self.take(&[ParkedNotLocked]);
        let areas = [Area::Dmarc, Area::Spf];
        let r = self.r;
        let related: Vec<CheckId> = r
            .findings
            .iter()
            .filter(|f| {
                (areas.contains(&f.area)
                    && !matches!(
                        f.id,
                        DnsLookupFailed | ParkedNotLocked | DmarcRuaUnauthorized
                    ))
                    || f.id == MxMissing
            })
            .map(|f| f.id)
            .collect();
        findings.extend(self.take(&related));
        let seen = parked::Seen {
            // The null MX is due exactly when the audit saw no MX (not when its look-up failed).
            has_mx: !r.has(MxMissing),
            spf: r.spf.record.as_deref(),
            spf_unknown: r.is_withheld(Area::Spf),
            dmarc_policy: r.dmarc.policy.as_deref(),
            dmarc_record: r.dmarc.record.as_deref(),
            dmarc_inherited: r.dmarc.inherited,
            dmarc_unknown: r.dmarc.lookup_failed,
        };
        let lock = parked::lockdown(&seen, &self.default_rua());
        let lines: Vec<DnsRecord> = lock
            .records(&self.d)
            .iter()
            .map(|rec| DnsRecord::new(&self.d, &rec.name, rec.rtype, &rec.value))
            .collect();
        let mut steps = vec![step(self.summary(CheckId::ParkedNotLocked))];
        if !lines.is_empty() {
            steps.push(step_dns(
                format!(
                    "Publish these records (replacing the SPF and DMARC records there now){}:",
                    if lock.null_mx {
                        "; leave out the null MX if the domain receives mail"
                    } else {
                        ""
                    }
                ),
                lines,
            ));
        }
        steps.push(step_dns(
            "Optionally revoke DKIM for every selector:",
            vec![DnsRecord::txt(
                &self.d,
                &format!("*._domainkey.{}", self.d),
                parked::DKIM_REVOKED,
            )],
        ));
        let verify = vec![
            Code::new(
                Lang::PowerShell,
                format!(
                    "Resolve-DnsName -Type TXT -Name {}\nResolve-DnsName -Type TXT -Name {}",
                    ps_quote(&self.d),
                    ps_quote(&self.dmarc_name())
                ),
            ),
            self.audit_cmd(),
        ];
        vec![Draft {
            // As urgent as its most severe finding (a parked domain without DMARC is as
            // spoofable as any other).
            priority: priority_of(
                &findings.iter().map(|f| f.id).collect::<Vec<_>>(),
                Priority::P2,
            ),
            item: self.item(
                "parked-lockdown",
                "Lock down the parked domain",
                &findings,
                ParkedNotLocked,
                steps,
                verify,
            ),
        }]
    }
}
