//! SPF: the record proposed, repaired or hardened, and the look-up limit (flattening reads the
//! stored include tree).

use crate::checks::CheckId;
use crate::guide::util::ps_quote;
use crate::guide::{DnsRecord, Lang, Priority, SpfNodeView, Step};
use crate::spf::{self, Mechanism, Qualifier, Term};

use super::{Builder, Draft, plural, priority_of, step, step_code, step_dns};

impl<'a> Builder<'a> {
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

    pub(super) fn spf(&mut self) -> Vec<Draft> {
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
                        .find(|c| spec.literal().as_deref() == Some(c.domain)),
                    _ => None,
                },
                Term::Modifier(_) => None,
            };
            match replaced {
                Some(c) => {
                    let (ranges, why) = spf::propose::flatten(c.node);
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
struct IncludeCost<'t> {
    via: &'t str,
    domain: &'t str,
    cost: u32,
    node: &'t SpfNodeView,
}

/// The look-up cost of each include/redirect of the root record, read from the stored tree:
/// 1 for the term itself plus everything below it.
fn include_costs(tree: &SpfNodeView) -> Vec<IncludeCost<'_>> {
    tree.children
        .iter()
        .filter_map(|c| {
            Some(IncludeCost {
                via: c.via.as_deref().unwrap_or("include"),
                domain: c.domain.as_deref()?,
                cost: c.total_lookups.saturating_add(1),
                node: c,
            })
        })
        .collect()
}
