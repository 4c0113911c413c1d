//! The items of the guide, computed from the report: one builder per remediation area.
//!
//! Explanations come from the catalogue ([`CheckId::info`]: `why` and the fix's one-line
//! summary); records come from the project's own functions ([`crate::spf::harden`],
//! [`crate::dmarc::propose`], [`crate::dkim::parse_m365_target`]); what is written here is only
//! the glue that makes them specific to the domain. One file per remediation area; [`build`]
//! assembles them in the guide's order.

mod antispoof;
mod connectors;
mod dkim;
mod dmarc;
mod generic;
mod impersonation;
mod m365_dane;
mod parked;
mod spf;
mod transport;

use std::collections::HashSet;

use crate::checks::CheckId;
use crate::finding::Finding;

use super::util::{is_plain_name, ps_quote};
use super::{
    Code, DnsRecord, Guide, GuideContext, GuideItem, Lang, Priority, ReportView, Section, Step,
};

/// An item with its priority, before the items are grouped into sections.
struct Draft {
    priority: Priority,
    item: GuideItem,
}

struct Builder<'a> {
    r: &'a ReportView,
    ctx: &'a GuideContext,
    d: String,
    covered: HashSet<CheckId>,
}

pub(super) fn build(report: &ReportView, ctx: &GuideContext) -> Guide {
    let domain = report
        .domain
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut guide = Guide {
        domain: domain.clone(),
        score: report.score,
        sections: Vec::new(),
        withheld: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(err) = &report.error {
        guide
            .notes
            .push(format!("No guide: the input could not be audited ({err})."));
        return guide;
    }
    if !is_plain_name(&domain) {
        guide.notes.push(
            "No guide: the report's domain is not a plain host name, so no record or command \
             can be written for it safely."
                .into(),
        );
        return guide;
    }
    if report.not_found() {
        guide.notes.push(format!(
            "No guide: {domain} does not exist (the DNS answers NXDOMAIN for it, \
             DOMAIN-NOT-FOUND), so no record is proposed. Check the spelling of the name in the \
             inventory, then its registration and delegation at the registrar; audit again once \
             it resolves."
        ));
        return guide;
    }
    guide.withheld = report
        .findings
        .iter()
        .filter(|f| f.id == CheckId::DnsLookupFailed)
        .cloned()
        .collect();
    let mut b = Builder {
        r: report,
        ctx,
        d: domain,
        covered: HashSet::from([CheckId::DnsLookupFailed]),
    };
    let mut drafts = Vec::new();
    if report.parked && report.has(CheckId::ParkedNotLocked) {
        drafts.extend(b.parked());
    } else {
        drafts.extend(b.dmarc());
        drafts.extend(b.spf());
    }
    drafts.extend(b.dkim());
    if report.is_m365() {
        drafts.push(b.connectors_audit());
        drafts.extend(b.connectors());
        drafts.extend(b.antispoof());
        drafts.extend(b.impersonation());
        drafts.push(b.mailbox_intelligence());
    } else {
        guide.notes.push(format!(
            "The report does not show {} receiving its mail at Microsoft 365 (provider: {}), so \
             the Exchange Online items (Direct Send, connectors, transport rule, impersonation) \
             are left out.",
            b.d,
            if report.provider.is_empty() {
                "unknown"
            } else {
                &report.provider
            }
        ));
    }
    drafts.extend(b.m365_dane());
    drafts.extend(b.transport());
    drafts.extend(b.generic());
    // Last, whenever there is anything to do: the audit that shows it done.
    if !drafts.is_empty() {
        drafts.push(b.rerun());
    }
    for p in Priority::ALL {
        let items: Vec<GuideItem> = drafts
            .iter()
            .filter(|d| d.priority == p)
            .map(|d| d.item.clone())
            .collect();
        if !items.is_empty() {
            guide.sections.push(Section { priority: p, items });
        }
    }
    guide
}

fn step(text: impl Into<String>) -> Step {
    Step {
        text: text.into(),
        code: None,
    }
}

/// A step with a block of DNS records: their zone-file lines, and the records themselves for
/// the host / type / value form ([`Code::dns`]). Every `dns` block is written this way.
fn step_dns(text: impl Into<String>, records: Vec<DnsRecord>) -> Step {
    Step {
        text: text.into(),
        code: Some(Code::dns(records)),
    }
}

fn step_code(text: impl Into<String>, lang: Lang, code: impl Into<String>) -> Step {
    Step {
        text: text.into(),
        code: Some(Code::new(lang, code)),
    }
}

/// The highest priority among `ids`' severities, or `default` when there are none.
fn priority_of(ids: &[CheckId], default: Priority) -> Priority {
    ids.iter()
        .map(|id| id.info().severity)
        .max()
        .map(Priority::of)
        .unwrap_or(default)
}

impl<'a> Builder<'a> {
    /// The findings of the report with these IDs (marking them covered).
    fn take(&mut self, ids: &[CheckId]) -> Vec<&'a Finding> {
        let r = self.r;
        let found: Vec<&'a Finding> = r.findings.iter().filter(|f| ids.contains(&f.id)).collect();
        for f in &found {
            self.covered.insert(f.id);
        }
        found
    }

    /// An item for `findings` (their IDs, details; `why` from `why_of` or the first finding).
    fn item(
        &self,
        key: &'static str,
        title: impl Into<String>,
        findings: &[&Finding],
        why_of: CheckId,
        steps: Vec<Step>,
        verify: Vec<Code>,
    ) -> GuideItem {
        let mut ids: Vec<CheckId> = Vec::new();
        for f in findings {
            if !ids.contains(&f.id) {
                ids.push(f.id);
            }
        }
        GuideItem {
            key,
            title: title.into(),
            finding_ids: ids,
            found: findings.iter().map(|f| f.detail.clone()).collect(),
            why: findings
                .first()
                .map(|f| f.id)
                .unwrap_or(why_of)
                .info()
                .why
                .to_string(),
            steps,
            verify,
        }
    }

    /// The catalogue's one-line fix of `id`, for this domain.
    fn summary(&self, id: CheckId) -> String {
        id.info().fix_summary().replace("<domain>", &self.d)
    }

    fn audit_cmd(&self) -> Code {
        Code::new(Lang::Shell, format!("mailaudit audit {}", self.d))
    }

    fn verify_txt(&self, name: &str) -> Vec<Code> {
        vec![
            Code::new(
                Lang::PowerShell,
                format!("Resolve-DnsName -Type TXT -Name {}", ps_quote(name)),
            ),
            self.audit_cmd(),
        ]
    }
}

fn plural(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 { "" } else { "s" }
}
