//! The catch-all items: every remaining finding by its check ID, and the re-run of the audit that
//! closes the guide.

use crate::checks::{CheckId, Severity};
use crate::guide::{Lang, Priority};

use super::{Builder, Draft, step, step_code};

impl<'a> Builder<'a> {
    /// Every remaining finding above `info`: an item keyed by its check ID, with the
    /// catalogue's fix summary and the fix computed for this domain, if any.
    pub(super) fn generic(&mut self) -> Vec<Draft> {
        let r = self.r;
        let mut out = Vec::new();
        for f in &r.findings {
            if self.covered.contains(&f.id) || f.severity == Severity::Info {
                continue;
            }
            out.extend(self.generic_item(f.id));
        }
        out
    }

    /// The catalogue's item for the findings with `id` (marking them covered): its one-line
    /// fix, each finding's own fix, and where the full instructions are.
    pub(super) fn generic_item(&mut self, id: CheckId) -> Option<Draft> {
        let all = self.take(&[id]);
        let f = *all.first()?;
        let summary = self.summary(f.id);
        let mut steps = vec![step(summary.clone())];
        for g in &all {
            let fix = g.fix.trim();
            if !fix.is_empty() && fix != summary && fix != f.id.info().fix_summary() {
                steps.push(step(format!("For this domain: {fix}")));
            }
        }
        steps.push(step(format!(
            "Full instructions: `mailaudit checks {}`.",
            f.id.as_str()
        )));
        Some(Draft {
            priority: Priority::of(f.severity),
            item: self.item(
                f.id.as_str(),
                f.id.info().title,
                &all,
                f.id,
                steps,
                vec![self.audit_cmd()],
            ),
        })
    }

    /// `rerun-audit`, the last item of every guide that has one: audit again once the rest is
    /// done. Ticked by the audit that shows no finding left to fix ([`crate::guide::verify`]).
    pub(super) fn rerun(&self) -> Draft {
        let d = &self.d;
        let mut steps = vec![step_code(
            "When the items above are done (a changed record is seen once the old one's TTL has \
             passed, up to an hour for the records of this guide), audit the domain again:",
            Lang::Shell,
            format!("mailaudit audit {d}"),
        )];
        if self.r.is_m365() {
            steps.push(step_code(
                "Export the tenant's Exchange Online configuration again and import it, so that \
                 the Exchange Online items are checked too:",
                Lang::Shell,
                "mailaudit exo script -o collect.ps1\npwsh ./collect.ps1 -OutFile tenant.json\nmailaudit exo import tenant.json",
            ));
        }
        steps.push(step(format!(
            "`mailaudit checklist {d}` shows what the audits verified. This item ticks itself \
             when an audit shows no finding left to fix, and reopens when a later one shows a \
             new one."
        )));
        let mut item = self.item(
            "rerun-audit",
            "Re-run the audit",
            &[],
            CheckId::DnsLookupFailed,
            steps,
            vec![self.audit_cmd()],
        );
        item.why = "Only a new audit shows that the changes are live and correct, and catches a \
                    change that broke something else; the checklist ticks and reopens its items \
                    from it."
            .into();
        Draft {
            priority: Priority::P4,
            item,
        }
    }
}
