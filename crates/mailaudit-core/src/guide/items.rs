//! The items of the guide, computed from the report: one builder per remediation area.
//!
//! Explanations come from the catalogue ([`CheckId::info`]: `why` and the fix's one-line
//! summary); records come from the project's own functions ([`spf::harden`],
//! [`dmarc::propose`], [`dkim::parse_m365_target`]); what is written here is only the glue
//! that makes them specific to the domain.

use std::collections::HashSet;

use crate::checks::{Area, CheckId, Severity};
use crate::dkim;
use crate::dmarc::{self, Policy, Uri};
use crate::finding::Finding;
use crate::parked;
use crate::spf::{self, Mechanism, Qualifier, Term};

use super::util::{DAY, date, is_plain_name, ps_quote, span, sts_id};
use super::{
    Code, DnsRecord, Guide, GuideContext, GuideItem, Lang, Priority, ReportView, Section, Step,
};

/// An item with its priority, before the items are grouped into sections.
struct Draft {
    priority: Priority,
    item: GuideItem,
}

/// Where the DKIM targets the guide writes come from ([`Builder::dkim_targets`]).
enum DkimSource {
    /// The tenant's `Get-DkimSigningConfig`, from its Exchange Online import.
    Import,
    /// The other selector of a published, correct target.
    Published,
}

/// What `-SenderIPAddresses` of an inbound connector accepts.
const IP_RANGE_RULE: &str = "takes IPv4 addresses and CIDR ranges from /24 to /32 only: split a \
     wider range into /24s (a /20 is sixteen /24s), or restrict by certificate instead";

/// Days to stay in `p=none` and in `p=quarantine` before the next phase, at the least
/// (the catalogue's "two to four weeks").
const MIN_PHASE_DAYS: i64 = 14;

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

/// Parses a DMARC record leniently enough to keep its tags (an invalid tag is dropped).
fn parse_dmarc(text: &str) -> Option<dmarc::Record> {
    dmarc::parse(text)
        .ok()
        .or_else(|| dmarc::parse_lenient(text).ok().map(|(r, _)| r))
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

    fn dmarc_name(&self) -> String {
        format!("_dmarc.{}", self.d)
    }

    /// The report address to add when a record has none.
    fn default_rua(&self) -> Uri {
        let text = self
            .ctx
            .default_rua
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"))
                {
                    s.to_string()
                } else {
                    format!("mailto:{s}")
                }
            })
            .filter(|s| Uri::new(s).is_valid_mailto() && !s.contains([';', ',', '"']))
            .unwrap_or_else(|| format!("mailto:dmarc-reports@{}", self.d));
        Uri::new(&text)
    }

    /// `record` at its current phase with what the DMARC findings complain about repaired,
    /// every other tag kept ([`dmarc::propose`], the one builder of every proposed record).
    fn clean_dmarc(&self, record: &dmarc::Record) -> dmarc::Record {
        dmarc::propose(
            Some(record),
            record.p.unwrap_or(Policy::None),
            &self.default_rua(),
        )
    }

    /// The record of the phase after `record`'s ([`dmarc::propose_next`]).
    fn next_dmarc(&self, record: &dmarc::Record) -> Option<dmarc::Record> {
        dmarc::propose_next(record, &self.default_rua())
    }

    /// The DMARC record `record` at the domain's `_dmarc` name.
    fn dmarc_rec(&self, record: &dmarc::Record) -> DnsRecord {
        DnsRecord::txt(&self.d, &self.dmarc_name(), &record.to_string())
    }

    /// The roll-out state, in words, for a domain whose published policy is `current`.
    fn rollout(&self, current: Policy) -> String {
        let next = current.next().map(Policy::as_str).unwrap_or("reject");
        let Some((phase, started)) = &self.ctx.dmarc_rollout else {
            return format!(
                "The date this phase (p={current}) started is not recorded: record it, so that \
                 the guide can say when to move to {next}."
            );
        };
        let phase = phase.trim().to_ascii_lowercase();
        let since = date(*started);
        if phase != current.as_str() {
            return format!(
                "The roll-out log says p={phase} since {since}, but the published record is \
                 p={current}: publish the record of the phase you are in, or update the log."
            );
        }
        let age = self.ctx.today.saturating_sub(*started);
        let what = match current {
            Policy::None => "Monitoring (p=none)",
            Policy::Quarantine => "Quarantining (p=quarantine)",
            Policy::Reject => "Rejecting (p=reject)",
        };
        if age < MIN_PHASE_DAYS * DAY {
            format!(
                "{what} for {} (since {since}): keep reading the aggregate reports until at \
                 least {}, then move to {next} if no legitimate source fails.",
                span(age),
                date(started.saturating_add(MIN_PHASE_DAYS * DAY))
            )
        } else {
            format!(
                "{what} for {} (since {since}): review the aggregate reports, then move to {next}.",
                span(age)
            )
        }
    }

    /// What the aggregate reports say about moving to `next`, when they were analysed.
    fn readiness(&self, next: Policy) -> Option<String> {
        let r = self.ctx.dmarc_readiness.as_ref()?;
        if r.next != Some(next.as_str()) {
            return None;
        }
        let reasons = r.reasons.join("; ");
        Some(if r.ready {
            format!("The aggregate reports support the move to p={next}: {reasons}.")
        } else {
            format!("The aggregate reports do not support the move to p={next} yet: {reasons}.")
        })
    }

    fn dmarc(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let r = self.r;
        let mut out = Vec::new();
        if r.dmarc.lookup_failed {
            return out;
        }
        let base = r.dmarc.record.as_deref().and_then(parse_dmarc);
        let secondary = [
            DmarcPctPartial,
            DmarcTesting,
            DmarcSubdomainWeak,
            DmarcNoRua,
            DmarcRuaUnauthorized,
            DmarcRuaInvalid,
            DmarcDeprecatedTag,
        ];
        let publish = self.take(&[DmarcMissing, DmarcMultiple, DmarcSyntax]);
        if !publish.is_empty() {
            // Salvage the tags of the published record(s): the applicable one, else the
            // first one in the evidence that parses.
            let salvaged = base.clone().or_else(|| {
                publish
                    .iter()
                    .filter_map(|f| f.evidence.as_deref())
                    .flat_map(str::lines)
                    .find_map(parse_dmarc)
            });
            let mut findings = publish;
            findings.extend(self.take(&secondary));
            let now =
                self.clean_dmarc(&salvaged.unwrap_or_else(|| dmarc::Record::new(Policy::None)));
            let first = findings[0].id;
            let mut steps = vec![step(self.summary(first))];
            steps.push(step_dns(
                format!(
                    "Publish this record (the only TXT record at `{}`; delete any other):",
                    self.dmarc_name()
                ),
                vec![self.dmarc_rec(&now)],
            ));
            let phase = now.p.unwrap_or(Policy::None);
            if let Some(next) = self.next_dmarc(&now) {
                steps.push(step_dns(
                    format!(
                        "This starts the p={phase} phase; after {MIN_PHASE_DAYS} days or more of \
                         aggregate reports in which every legitimate source passes, move to {}:",
                        next.p.unwrap_or(Policy::Reject)
                    ),
                    vec![self.dmarc_rec(&next)],
                ));
            }
            let priority = priority_of(&[first], Priority::P1);
            out.push(Draft {
                priority,
                item: self.item(
                    "dmarc-publish",
                    "Publish a DMARC record",
                    &findings,
                    first,
                    steps,
                    self.verify_txt(&self.dmarc_name()),
                ),
            });
            // Then: check it is live, review the reports, and (from p=none) the last phase.
            out.push(Draft {
                priority,
                item: self.dmarc_verify(),
            });
            if phase != Policy::Reject {
                out.push(self.dmarc_review(phase, true));
            }
            if phase == Policy::None
                && let Some(after) = self.next_dmarc(&now).and_then(|n| self.next_dmarc(&n))
            {
                out.push(self.dmarc_later_reject(&after, true));
            }
            return out;
        }
        let Some(base) = base else {
            return out;
        };
        let current = base.p.unwrap_or(Policy::None);
        let (phase_id, key, title) = match current {
            Policy::None => (
                DmarcPolicyNone,
                "dmarc-quarantine",
                "Move DMARC to p=quarantine",
            ),
            Policy::Quarantine => (
                DmarcPolicyQuarantine,
                "dmarc-reject",
                "Move DMARC to p=reject",
            ),
            Policy::Reject => {
                out.extend(self.dmarc_secondary(&base));
                return out;
            }
        };
        let mut findings = self.take(&[phase_id]);
        let fixes_too = self.take(&secondary);
        findings.extend(fixes_too.iter().copied());
        let now = self.clean_dmarc(&base);
        let Some(next) = self.next_dmarc(&now) else {
            return out;
        };
        let mut steps = vec![step(self.summary(phase_id)), step(self.rollout(current))];
        if let Some(text) = self.readiness(next.p.unwrap_or(Policy::Reject)) {
            steps.push(step(text));
        }
        if r.dmarc.inherited {
            steps.push(step(format!(
                "The policy is inherited from `{}`; the records below give {} a record of its \
                 own, with the same report addresses.",
                r.dmarc
                    .found_at
                    .as_deref()
                    .unwrap_or("the organizational domain"),
                self.d
            )));
        }
        if now.to_string() == base.to_string() && !r.dmarc.inherited {
            steps.push(step(format!(
                "Published now (p={current}): `{}`",
                now.to_string().replace('`', "'")
            )));
        } else {
            let fixed: Vec<&str> = fixes_too.iter().map(|f| f.id.as_str()).collect();
            steps.push(step_dns(
                if fixed.is_empty() {
                    format!("The record of the current phase (p={current}):")
                } else {
                    format!(
                        "The record of the current phase (p={current}), with {} fixed; publish it now:",
                        fixed.join(", ")
                    )
                },
                vec![self.dmarc_rec(&now)],
            ));
        }
        steps.push(step_dns(
            format!(
                "When the reports show every legitimate source passing, publish the next phase (p={}):",
                next.p.unwrap_or(Policy::Reject)
            ), vec![self.dmarc_rec(&next)],
        ));
        let after = self.next_dmarc(&next);
        if after.is_some() {
            // The final phase is an item of its own (`dmarc-reject`, below), not a step here.
            steps.push(step(
                "Then, after that phase, the final one: the item \"Move DMARC to p=reject\" \
                 (low priority until this one is done).",
            ));
        }
        steps.extend(self.rua_authorizations(&now));
        let priority = priority_of(&[phase_id], Priority::P2);
        out.push(Draft {
            priority,
            item: self.item(
                key,
                title,
                &findings,
                phase_id,
                steps,
                self.verify_txt(&self.dmarc_name()),
            ),
        });
        out.push(self.dmarc_review(current, false));
        if let Some(after) = after {
            out.push(self.dmarc_later_reject(&after, false));
        }
        out
    }

    /// `dmarc-verify`: after publishing, check that the record is live and reports arrive.
    fn dmarc_verify(&self) -> GuideItem {
        let name = self.dmarc_name();
        let steps = vec![
            step_code(
                format!(
                    "Once the DNS host shows the record (allow up to an hour, its TTL), look it \
                     up: `{name}` must return exactly one TXT record, starting with `v=DMARC1`, \
                     the one you published:"
                ),
                Lang::PowerShell,
                format!("Resolve-DnsName -Type TXT -Name {}", ps_quote(&name)),
            ),
            step_code(
                "Audit the domain again: the audit ticks this item (and \"Publish a DMARC \
                 record\") when it reads one valid record with a working report address (`rua`):",
                Lang::Shell,
                format!("mailaudit audit {}", self.d),
            ),
            step(format!(
                "Within a day or two the first aggregate reports reach the `rua` address; \
                 ingest them (`mailaudit reports ingest` or `mailaudit reports fetch`) and \
                 read them with `mailaudit reports summary {}`.",
                self.d
            )),
        ];
        let mut item = self.item(
            "dmarc-verify",
            "Verify the DMARC record is published",
            &[],
            CheckId::DmarcMissing,
            steps,
            self.verify_txt(&name),
        );
        item.why = "A record with a typo, at the wrong name or next to a second DMARC record is \
                    ignored by receivers, exactly as if there were none; only a look-up after \
                    publishing shows that it is live, and only arriving reports show that its \
                    report address works."
            .into();
        item
    }

    /// `dmarc-review-reports`: read the aggregate reports for two to four weeks of a phase
    /// (`phase`, or the phase a record about to be published starts with `publishing`) before
    /// moving on. Ticked by the audit once the domain is at `p=reject`, or by hand.
    fn dmarc_review(&self, phase: Policy, publishing: bool) -> Draft {
        let d = &self.d;
        let next = phase.next().unwrap_or(Policy::Reject);
        let weeks = |from: i64, days: i64| date(from.saturating_add(days * DAY));
        let when = match &self.ctx.dmarc_rollout {
            _ if publishing => format!(
                "The record starts the p={phase} phase: review the aggregate reports two to four \
                 weeks after it is published, then move to p={next}."
            ),
            Some((p, started)) if p.trim().eq_ignore_ascii_case(phase.as_str()) => {
                let age = self.ctx.today.saturating_sub(*started);
                if age < MIN_PHASE_DAYS * DAY {
                    format!(
                        "p={phase} since {}: review the aggregate reports between {} and {} \
                         (two to four weeks in), then move to p={next}.",
                        date(*started),
                        weeks(*started, MIN_PHASE_DAYS),
                        weeks(*started, 2 * MIN_PHASE_DAYS)
                    )
                } else {
                    format!(
                        "p={phase} since {} ({}): the review is due{}.",
                        date(*started),
                        span(age),
                        if age > 2 * MIN_PHASE_DAYS * DAY {
                            format!(
                                " (four weeks were up on {})",
                                weeks(*started, 2 * MIN_PHASE_DAYS)
                            )
                        } else {
                            String::new()
                        }
                    )
                }
            }
            _ => format!(
                "The date the p={phase} phase started is not recorded (mailaudit records it \
                 when an audit sees the policy change): review the aggregate reports two to four \
                 weeks into the phase, then move to p={next}."
            ),
        };
        let mut steps = vec![step(when)];
        if !publishing && let Some(text) = self.readiness(next) {
            steps.push(step(text));
        }
        steps.push(step_code(
            "Read the senders the reports show, by service, with what passes and fails:",
            Lang::Shell,
            format!("mailaudit reports summary {d}"),
        ));
        steps.push(step(format!(
            "For each source: a service that sends for {d} (Microsoft 365, a marketing or \
             ticketing platform, a scanner, a partner) and fails DMARC needs its SPF include or \
             DKIM signing for {d} before p={next}; a source nobody recognises is spoofing, which \
             p={next} stops. Mail forwarded by a mailing list that fails SPF but passes DKIM is \
             fine."
        )));
        steps.push(step(format!(
            "When every legitimate source passes, do the p={next} item. The audit ticks this \
             item once {d} is at p=reject; tick it by hand after a review \
             (`mailaudit checklist {d} --done dmarc-review-reports`)."
        )));
        let mut item = self.item(
            "dmarc-review-reports",
            "Review the DMARC aggregate reports after 2–4 weeks",
            &[],
            if phase == Policy::Quarantine {
                CheckId::DmarcPolicyQuarantine
            } else {
                CheckId::DmarcPolicyNone
            },
            steps,
            vec![Code::new(
                Lang::Shell,
                format!("mailaudit reports summary {d}"),
            )],
        );
        item.why = format!(
            "Moving to p={next} before every legitimate sender passes DMARC sends real mail to \
             junk or rejects it; the aggregate reports are the only view of everyone who sends \
             as {d}."
        );
        Draft {
            priority: Priority::P3,
            item,
        }
    }

    /// The final phase, shown while the domain is not yet at `p=quarantine`: `dmarc-reject` at
    /// low priority, under the key (and title) of the item that replaces it once the domain is
    /// at `p=quarantine`, so that the checklist keeps one `dmarc-reject` entry throughout.
    fn dmarc_later_reject(&self, record: &dmarc::Record, publishing: bool) -> Draft {
        let steps = vec![
            step(format!(
                "Later: first {}\"Move DMARC to p=quarantine\". Nothing to do here until {} \
                 has been at p=quarantine for {MIN_PHASE_DAYS} days or more and the aggregate \
                 reports show no legitimate source failing.",
                if publishing {
                    "\"Publish a DMARC record\", then "
                } else {
                    ""
                },
                self.d
            )),
            step_dns(
                "Then publish the final phase (p=reject):",
                vec![self.dmarc_rec(record)],
            ),
        ];
        Draft {
            priority: Priority::P4,
            item: self.item(
                "dmarc-reject",
                "Move DMARC to p=reject",
                &[],
                CheckId::DmarcPolicyQuarantine,
                steps,
                self.verify_txt(&self.dmarc_name()),
            ),
        }
    }

    /// For a record already at `p=reject`: the report-address and tag repairs.
    fn dmarc_secondary(&mut self, base: &dmarc::Record) -> Vec<Draft> {
        use CheckId::*;
        let mut out = Vec::new();
        let now = self.clean_dmarc(base);
        let rua = self.take(&[DmarcNoRua, DmarcRuaInvalid, DmarcRuaUnauthorized]);
        if !rua.is_empty() {
            let ids: Vec<CheckId> = rua.iter().map(|f| f.id).collect();
            let mut steps = vec![step(self.summary(ids[0]))];
            if rua.iter().any(|f| f.id != DmarcRuaUnauthorized) {
                steps.push(step_dns(
                    "Publish the record with valid report addresses:",
                    vec![self.dmarc_rec(&now)],
                ));
            }
            steps.extend(self.rua_authorizations(&now));
            out.push(Draft {
                priority: priority_of(&ids, Priority::P3),
                item: self.item(
                    "dmarc-rua",
                    "Fix the DMARC report addresses",
                    &rua,
                    ids[0],
                    steps,
                    self.verify_txt(&self.dmarc_name()),
                ),
            });
        }
        let tags = self.take(&[
            DmarcPctPartial,
            DmarcTesting,
            DmarcSubdomainWeak,
            DmarcDeprecatedTag,
        ]);
        if !tags.is_empty() {
            let ids: Vec<CheckId> = tags.iter().map(|f| f.id).collect();
            let steps = vec![
                step(self.summary(ids[0])),
                step_dns(
                    "Publish the record without testing mode, partial coverage or removed tags, \
                     and with subdomain policies as strong as p:",
                    vec![self.dmarc_rec(&now)],
                ),
            ];
            out.push(Draft {
                priority: priority_of(&ids, Priority::P3),
                item: self.item(
                    "dmarc-tags",
                    "Apply the DMARC policy fully",
                    &tags,
                    ids[0],
                    steps,
                    self.verify_txt(&self.dmarc_name()),
                ),
            });
        }
        out
    }

    /// For DMARC-RUA-UNAUTHORIZED: the authorisation records each external report destination
    /// must publish (RFC 7489 §7.1: `<domain>._report._dmarc.<destination>` with `v=DMARC1`).
    fn rua_authorizations(&self, record: &dmarc::Record) -> Vec<Step> {
        if !self.r.has(CheckId::DmarcRuaUnauthorized) {
            return Vec::new();
        }
        let org = self
            .r
            .dmarc
            .org_domain
            .clone()
            .unwrap_or_else(|| self.d.clone());
        let mut lines = Vec::new();
        for uri in record.rua.iter().chain(&record.ruf) {
            let Some(dest) = uri.mailto_domain() else {
                continue;
            };
            if !is_plain_name(&dest) || dmarc::shares_org_domain(&org, &dest) {
                continue;
            }
            // Entered in the destination's DNS, not the domain's.
            let rec = DnsRecord::txt(
                &dest,
                &format!("{}._report._dmarc.{dest}", self.d),
                "v=DMARC1",
            );
            if !lines.contains(&rec) {
                lines.push(rec);
            }
        }
        if lines.is_empty() {
            return Vec::new();
        }
        vec![step_dns(
            "Ask each external report destination to authorise the domain (the destination \
             publishes this in its own zone):",
            lines,
        )]
    }

    /// The SPF record `record` at the domain.
    fn spf_rec(&self, record: &str) -> DnsRecord {
        DnsRecord::txt(&self.d, &self.d, record)
    }

    /// The step publishing the SPF record `record` proposes, with the senders the stored DMARC
    /// reports show passing SPF kept ([`spf::propose::keep_senders`]) and a step naming them.
    fn spf_proposal(&self, intro: impl Into<String>, record: &str) -> Vec<Step> {
        let kept =
            spf::propose::keep_senders(record, self.r.spf.tree.as_ref(), &self.ctx.spf_senders);
        let mut steps = vec![step_dns(intro, vec![self.spf_rec(&kept.record)])];
        let list = |s: &[spf::propose::ReportedSender]| {
            s.iter()
                .map(|s| format!("{} ({} message{})", s.ip, s.messages, plural(s.messages)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !kept.added.is_empty() {
            steps.push(step(format!(
                "Kept from the DMARC aggregate reports of the last 30 days: {} passed SPF for \
                 {} through the published record, which the proposal would not otherwise \
                 list, so it names {} explicitly. Replace {} with the service's own include \
                 once you know it.",
                list(&kept.added),
                self.d,
                if kept.added.len() == 1 { "it" } else { "them" },
                if kept.added.len() == 1 { "it" } else { "them" },
            )));
        }
        if !kept.left_out.is_empty() {
            steps.push(step(format!(
                "Also passing SPF in the reports, not listed here: {}. The record therefore \
                 ends in `~all`: add their services' includes, then harden to `-all`.",
                list(&kept.left_out)
            )));
        }
        steps
    }

    fn spf(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let r = self.r;
        let mut out = Vec::new();
        let m365_missing = r.has(SpfM365IncludeMissing);
        let verify = self.verify_txt(&self.d);

        let missing = self.take(&[SpfMissing]);
        if !missing.is_empty() {
            // The one proposal of SPF-MISSING (the audit's fix is the same): what the MX
            // implies, never Microsoft 365's include for a Google or gateway domain.
            let host =
                spf::MailHost::new(r.is_m365(), r.provider == "google", r.gateway.as_deref());
            let proposal = spf::for_missing(&host, &self.d);
            let mut steps = vec![step(self.summary(SpfMissing))];
            match &proposal.record {
                Some(record) => steps.extend(self.spf_proposal(
                    format!("Publish this record at `{}`. {}", self.d, proposal.note),
                    record,
                )),
                None => steps.push(step(proposal.note.clone())),
            }
            self.covered.insert(SpfM365IncludeMissing);
            out.push(Draft {
                priority: priority_of(&[SpfMissing], Priority::P2),
                item: self.item(
                    "spf-publish",
                    "Publish an SPF record",
                    &missing,
                    SpfMissing,
                    steps,
                    verify.clone(),
                ),
            });
            return out;
        }

        let repair = self.take(&[SpfMultiple, SpfSyntax]);
        if !repair.is_empty() {
            let mut steps = vec![step(self.summary(repair[0].id))];
            if let Some(merged) = repair
                .iter()
                .find(|f| f.id == SpfMultiple)
                .and_then(|f| f.evidence.as_deref())
                .and_then(|e| merge_spf(e, m365_missing || r.is_m365()))
            {
                steps.extend(self.spf_proposal(
                    format!(
                        "Replace the SPF records at `{}` with this single record (their \
                         senders merged, duplicates removed, ending in `-all`):",
                        self.d
                    ),
                    &merged,
                ));
            } else if let Some(ev) = repair.iter().find_map(|f| f.evidence.as_deref()) {
                steps.push(step_dns(
                    "The record read, to correct at the DNS host (the finding above says what \
                     does not parse):",
                    vec![self.spf_rec(ev)],
                ));
            }
            out.push(Draft {
                priority: priority_of(&[repair[0].id], Priority::P2),
                item: self.item(
                    "spf-repair",
                    "Repair the SPF record",
                    &repair,
                    repair[0].id,
                    steps,
                    verify.clone(),
                ),
            });
            return out;
        }

        let Some(parsed) = r.spf.record.as_deref().and_then(|t| spf::parse(t).ok()) else {
            return out;
        };
        // Order: fix what is broken, get under the look-up limit, then harden (`-all` is
        // proposed only for a policy that works and fits).
        for id in [SpfIncludeBroken, SpfVoidLimit] {
            out.extend(self.generic_item(id));
        }
        let lookups = self.take(&[SpfLookupLimit, SpfLookupNearLimit]);
        let blocked = r.has(SpfIncludeBroken) || r.has(SpfVoidLimit) || r.has(SpfLookupLimit);
        if !lookups.is_empty() {
            let ids: Vec<CheckId> = lookups.iter().map(|f| f.id).collect();
            let steps = self.spf_lookup_steps(&parsed, m365_missing, ids.contains(&SpfLookupLimit));
            out.push(Draft {
                priority: priority_of(&ids, Priority::P2),
                item: self.item(
                    "spf-lookups",
                    "Bring SPF within 10 DNS look-ups",
                    &lookups,
                    ids[0],
                    steps,
                    verify.clone(),
                ),
            });
        }
        let hardened = spf::harden(&parsed, m365_missing);
        let harden = self.take(&[SpfPassAll, SpfNeutralAll, SpfSoftfail]);
        let harden_ids: Vec<CheckId> = harden.iter().map(|f| f.id).collect();
        // While blocked, the record of the M365 item keeps a softfail ending.
        let interim = spf::analyze::harden_to(&parsed, m365_missing, "~all");
        let m365 = self.take(&[SpfM365IncludeMissing]);
        if !m365.is_empty() {
            let mut steps = vec![step(self.summary(SpfM365IncludeMissing))];
            if harden.is_empty() {
                steps.extend(self.spf_proposal(
                    format!("Replace the SPF record at `{}` with:", self.d),
                    &spf::analyze::with_include(&parsed, spf::M365_INCLUDE),
                ));
            } else if blocked {
                steps.extend(self.spf_proposal(
                    format!(
                        "Replace the SPF record at `{}` with (still `~all`: harden only once \
                         the items above are done):",
                        self.d
                    ),
                    &interim,
                ));
            } else {
                steps.extend(self.spf_proposal(
                    "The hardened record of \"Harden SPF to -all\" adds it; publish that one \
                     record:",
                    &hardened,
                ));
            }
            out.push(Draft {
                priority: priority_of(&[SpfM365IncludeMissing], Priority::P2),
                item: self.item(
                    "spf-m365-include",
                    "Authorise Microsoft 365 in SPF",
                    &m365,
                    SpfM365IncludeMissing,
                    steps,
                    verify.clone(),
                ),
            });
        }
        if !harden.is_empty() {
            let mut steps = vec![step(self.summary(harden_ids[0]))];
            if blocked {
                let mut first = Vec::new();
                if r.has(SpfIncludeBroken) || r.has(SpfVoidLimit) {
                    first.push("repair or remove the broken include (the item above)");
                }
                if r.has(SpfLookupLimit) {
                    first.push("bring the policy within 10 DNS look-ups (\"Bring SPF within 10 DNS look-ups\")");
                }
                steps.push(step(format!(
                    "Not yet: first {}. Until then receivers return permerror for mail that \
                     reaches the failing part of the policy, so `-all` would only add risk; once \
                     the policy works and fits, audit again: the audit then proposes the \
                     hardened record.",
                    first.join(", then ")
                )));
                if !harden_ids.contains(&SpfSoftfail) {
                    steps.extend(self.spf_proposal(
                        format!(
                            "Meanwhile, end the record at `{}` in softfail instead of {}:",
                            self.d,
                            if harden_ids.contains(&SpfPassAll) {
                                "`+all`"
                            } else {
                                "a neutral result"
                            }
                        ),
                        &interim,
                    ));
                }
            } else {
                if r.is_m365() {
                    steps.push(step_code(
                        "First make sure Microsoft 365 signs with DKIM (forwarded mail then still \
                         passes DMARC):",
                        Lang::PowerShell,
                        format!(
                            "Get-DkimSigningConfig -Identity {} | Format-List Enabled,Status",
                            ps_quote(&self.d)
                        ),
                    ));
                }
                steps.extend(self.spf_proposal(
                    format!(
                        "Replace the SPF record at `{}` with the hardened one{}:",
                        self.d,
                        if m365_missing {
                            " (Microsoft 365 include added)"
                        } else {
                            ""
                        }
                    ),
                    &hardened,
                ));
            }
            out.push(Draft {
                priority: priority_of(&harden_ids, Priority::P2),
                item: self.item(
                    "spf-harden",
                    "Harden SPF to -all",
                    &harden,
                    harden_ids[0],
                    steps,
                    verify,
                ),
            });
        }
        out
    }

    fn spf_lookup_steps(&self, parsed: &spf::Record, add_m365: bool, over: bool) -> Vec<Step> {
        let total = self.r.spf.lookups;
        let max = spf::MAX_DNS_LOOKUPS;
        let mut steps = vec![step(if over {
            format!(
                "Warning: the SPF policy needs {total} DNS look-ups; receivers stop at {max} and \
                 return permerror, so SPF passes no sender at all and DMARC rests on DKIM alone."
            )
        } else {
            format!(
                "The SPF policy needs {total} of the {max} DNS look-ups allowed: one more \
                 include from a vendor breaks it."
            )
        })];
        steps.push(step(self.summary(CheckId::SpfLookupLimit)));
        let Some(tree) = self.r.spf.tree.as_ref() else {
            return steps;
        };
        let costs = include_costs(tree);
        if !costs.is_empty() {
            let mut lines: Vec<String> = costs
                .iter()
                .map(|c| {
                    format!(
                        "- `{}:{}` — {} look-up{}",
                        c.via,
                        c.domain,
                        c.cost,
                        plural(c.cost)
                    )
                })
                .collect();
            for d in parsed.directives() {
                if d.mechanism.queries_dns() && !matches!(d.mechanism, Mechanism::Include(_)) {
                    lines.push(format!("- `{d}` — 1 look-up"));
                }
            }
            steps.push(step(format!(
                "Look-ups per term of the record (the term itself included):\n{}",
                lines.join("\n")
            )));
        }
        if !over {
            return steps;
        }
        // Flatten the costliest includes (never Microsoft 365's) until the count fits.
        let mut remaining = total + u32::from(add_m365 && !self.r.spf.authorizes_m365);
        let mut chosen: Vec<&IncludeCost> = Vec::new();
        let mut sorted: Vec<&IncludeCost> = costs
            .iter()
            .filter(|c| c.via == "include" && !c.domain.eq_ignore_ascii_case(spf::M365_INCLUDE))
            .collect();
        sorted.sort_by_key(|c| std::cmp::Reverse(c.cost));
        for c in sorted {
            if remaining <= max {
                break;
            }
            remaining = remaining.saturating_sub(c.cost);
            chosen.push(c);
        }
        if chosen.is_empty() || remaining > max {
            steps.push(step(
                "Flattening the includes would not bring the count within the limit: move bulk \
                 senders (marketing, ticketing) to a subdomain such as `mail.<domain>` with its \
                 own SPF record."
                    .replace("<domain>", &self.d),
            ));
            return steps;
        }
        let mut terms: Vec<Term> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for t in &parsed.terms {
            let replaced = match t {
                Term::Directive(d) => match &d.mechanism {
                    Mechanism::Include(spec) => chosen
                        .iter()
                        .find(|c| spec.literal().as_deref() == Some(c.domain.as_str())),
                    _ => None,
                },
                Term::Modifier(_) => None,
            };
            match replaced {
                Some(c) => {
                    let (ranges, why) = spf::propose::flatten(&c.node);
                    problems.extend(why.into_iter().map(|w| format!("{}: {w}", c.domain)));
                    terms.extend(ranges);
                }
                None => terms.push(t.clone()),
            }
        }
        // `-all` only for a policy that works: with a broken include left, softfail.
        let broken = self.r.has(CheckId::SpfIncludeBroken) || self.r.has(CheckId::SpfVoidLimit);
        let flat = spf::analyze::harden_to(
            &spf::Record { terms },
            add_m365,
            if broken { "~all" } else { "-all" },
        );
        let names: Vec<String> = chosen
            .iter()
            .map(|c| format!("`include:{}`", c.domain))
            .collect();
        steps.extend(self.spf_proposal(
            format!(
                "Flattening proposal: replace {} with the IP ranges {} today, which brings \
                 the policy to about {remaining} look-ups. Providers change their ranges \
                 without notice: the ranges must be refreshed (re-run `mailaudit audit {}` \
                 regularly, or use a flattening service), or move those senders to a subdomain \
                 with its own SPF record instead.",
                names.join(", "),
                if chosen.len() == 1 {
                    "it returns"
                } else {
                    "they return"
                },
                self.d
            ),
            &flat,
        ));
        if !problems.is_empty() {
            steps.push(step(format!(
                "Check before publishing: the flattened ranges may be incomplete ({}).",
                problems.join("; ")
            )));
        }
        if flat.len() > spf::analyze::MAX_RECORD_OCTETS {
            steps.push(step(format!(
                "The flattened record is {} octets, over the {} recommended: prefer moving senders \
                 to a subdomain.",
                flat.len(),
                spf::analyze::MAX_RECORD_OCTETS
            )));
        }
        steps
    }

    /// The lock-down of a domain that sends no mail: the records of [`parked::lockdown`] (as
    /// the audit's findings carry them), and every SPF, DMARC and MX-MISSING finding folded in,
    /// so that the guide proposes no `p=none` roll-out, Microsoft 365 include or MX for it.
    fn parked(&mut self) -> Vec<Draft> {
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

    fn dkim(&mut self) -> Vec<Draft> {
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

    /// Partner connectors for legitimate senders, then Direct Send rejected.
    fn connectors(&mut self) -> Vec<Draft> {
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

    fn antispoof(&mut self) -> Vec<Draft> {
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

    fn impersonation(&mut self) -> Vec<Draft> {
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

    /// `connectors-audit`: review every inbound connector of the tenant (Microsoft 365
    /// domains). Ticked by an Exchange Online import that lists the connectors and shows none
    /// unrestricted or without TLS ([`super::verify_import`]), or by hand.
    fn connectors_audit(&self) -> Draft {
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

    /// `mailbox-intelligence`: mailbox intelligence and its impersonation protection on in the
    /// anti-phishing policy in effect. Ticked by an Exchange Online import that shows both on.
    fn mailbox_intelligence(&mut self) -> Draft {
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

    /// `rerun-audit`, the last item of every guide that has one: audit again once the rest is
    /// done. Ticked by the audit that shows no finding left to fix ([`super::verify`]).
    fn rerun(&self) -> Draft {
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

    fn transport(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let d = self.d.clone();
        let mut out = Vec::new();
        let sts = self.take(&[MtaStsMissing, MtaStsInvalid]);
        if !sts.is_empty() {
            let ids: Vec<CheckId> = sts.iter().map(|f| f.id).collect();
            let hosts: Vec<&str> = self
                .r
                .mx
                .iter()
                .map(|m| m.host.trim_end_matches('.'))
                .filter(|h| is_plain_name(h))
                .collect();
            let mut policy = String::from("version: STSv1\nmode: testing\n");
            for h in &hosts {
                policy.push_str(&format!("mx: {h}\n"));
            }
            policy.push_str("max_age: 604800");
            let steps = vec![
                step(self.summary(ids[0])),
                step_code(
                    format!(
                        "Serve this policy at `https://mta-sts.{d}/.well-known/mta-sts.txt`, over \
                         HTTPS with a valid certificate for `mta-sts.{d}`:"
                    ),
                    Lang::Text,
                    policy,
                ),
                step_dns(
                    "Publish the record (change its `id` whenever the policy changes):",
                    vec![DnsRecord::txt(
                        &d,
                        &format!("_mta-sts.{d}"),
                        &format!("v=STSv1; id={}", sts_id(self.ctx.today)),
                    )],
                ),
                step(
                    "After a few weeks of clean TLS reports, set `mode: enforce`, raise `max_age` and change the `id`.",
                ),
            ];
            out.push(Draft {
                priority: priority_of(&ids, Priority::P4),
                item: self.item(
                    "mta-sts",
                    "Publish an MTA-STS policy",
                    &sts,
                    ids[0],
                    steps,
                    self.verify_txt(&format!("_mta-sts.{d}")),
                ),
            });
        }
        let rpt = self.take(&[TlsrptMissing]);
        if !rpt.is_empty() {
            let steps = vec![
                step(self.summary(TlsrptMissing)),
                step_dns(
                    "Publish:",
                    vec![DnsRecord::txt(
                        &d,
                        &format!("_smtp._tls.{d}"),
                        &format!("v=TLSRPTv1; rua=mailto:tlsrpt@{d}"),
                    )],
                ),
            ];
            out.push(Draft {
                priority: priority_of(&[TlsrptMissing], Priority::P4),
                item: self.item(
                    "tls-rpt",
                    "Publish a TLS-RPT record",
                    &rpt,
                    TlsrptMissing,
                    steps,
                    self.verify_txt(&format!("_smtp._tls.{d}")),
                ),
            });
        }
        out
    }

    /// Every remaining finding above `info`: an item keyed by its check ID, with the
    /// catalogue's fix summary and the fix computed for this domain, if any.
    fn generic(&mut self) -> Vec<Draft> {
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
    fn generic_item(&mut self, id: CheckId) -> Option<Draft> {
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
}

fn plural(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 { "" } else { "s" }
}

/// Merges the SPF records of SPF-MULTIPLE's evidence (one per line) into one hardened record.
fn merge_spf(evidence: &str, add_m365: bool) -> Option<String> {
    let mut terms: Vec<Term> = Vec::new();
    for line in evidence.lines() {
        let rec = spf::parse(line.trim()).ok()?;
        let redirect = rec.redirect().cloned();
        let has_all = rec.all().is_some();
        for t in rec.terms {
            match &t {
                Term::Directive(d) if d.mechanism == Mechanism::All => break,
                Term::Directive(_) => terms.push(t),
                Term::Modifier(spf::Modifier::Redirect(_)) => {}
                Term::Modifier(_) => terms.push(t),
            }
        }
        if let (Some(target), false) = (redirect, has_all) {
            terms.push(Term::Directive(spf::Directive {
                qualifier: Qualifier::Pass,
                mechanism: Mechanism::Include(target),
            }));
        }
    }
    let merged = spf::harden(&spf::Record { terms }, add_m365);
    spf::parse(&merged).ok().map(|_| merged)
}

/// One term of the root record that costs look-ups, with its subtree.
struct IncludeCost {
    via: String,
    domain: String,
    cost: u32,
    node: serde_json::Value,
}

/// The look-up cost of each include/redirect of the root record, read from the stored tree
/// (`SpfNode` as JSON): 1 for the term itself plus everything below it.
fn include_costs(tree: &serde_json::Value) -> Vec<IncludeCost> {
    let Some(children) = tree.get("children").and_then(|c| c.as_array()) else {
        return Vec::new();
    };
    children
        .iter()
        .filter_map(|c| {
            let domain = c.get("domain")?.as_str()?.to_string();
            let via = c
                .get("via")
                .and_then(|v| v.as_str())
                .unwrap_or("include")
                .to_string();
            let total = c.get("total_lookups").and_then(|v| v.as_u64()).unwrap_or(0);
            let cost = u32::try_from(total.saturating_add(1)).unwrap_or(u32::MAX);
            Some(IncludeCost {
                via,
                domain,
                cost,
                node: c.clone(),
            })
        })
        .collect()
}
