//! DMARC: the record, its roll-out from `p=none` to `p=reject` and the reports that tell when to
//! move on.

use crate::checks::CheckId;
use crate::dmarc::{self, Policy, Uri};
use crate::guide::util::{DAY, date, is_plain_name, ps_quote, span};
use crate::guide::{Code, DnsRecord, GuideItem, Lang, Priority, Step};

use super::{Builder, Draft, priority_of, step, step_code, step_dns};

/// Days to stay in `p=none` and in `p=quarantine` before the next phase, at the least
/// (the catalogue's "two to four weeks").
const MIN_PHASE_DAYS: i64 = 14;

/// Parses a DMARC record leniently enough to keep its tags (an invalid tag is dropped).
fn parse_dmarc(text: &str) -> Option<dmarc::Record> {
    dmarc::parse(text)
        .ok()
        .or_else(|| dmarc::parse_lenient(text).ok().map(|(r, _)| r))
}

impl<'a> Builder<'a> {
    pub(super) fn dmarc_name(&self) -> String {
        format!("_dmarc.{}", self.d)
    }

    /// The report address to add when a record has none.
    pub(super) fn default_rua(&self) -> Uri {
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

    pub(super) fn dmarc(&mut self) -> Vec<Draft> {
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
}
