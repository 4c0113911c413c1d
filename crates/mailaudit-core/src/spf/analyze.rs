//! The static audit of a domain's SPF policy: no client IP, just what is published.
//!
//! [`analyze`] reads the domain's SPF record and walks its include/redirect tree the way
//! `check_host()` would reach it, counting DNS-querying terms and the void look-ups it can see
//! without an IP address (include/redirect targets, literal `a:`/`mx:`/`exists:` targets), then
//! reports the findings of `docs/checks.md` for the SPF area. The walk is bounded (depth
//! [`MAX_DEPTH`], [`MAX_NODES`] records, loops cut) so hostile data cannot blow it up, and
//! domain-specs with macros are counted but not fetched (they depend on the message).
//!
//! [`harden`] computes the record to publish instead; the remediation guide reuses it.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use super::propose::{MailHost, for_missing};
use super::{
    Directive, DomainSpec, M365_INCLUDE, MAX_DNS_LOOKUPS, MAX_VOID_LOOKUPS, Mechanism, Modifier,
    Qualifier, Record, Term, parse, select_records,
};
use crate::checks::{Area, CheckId};
use crate::dns::{DnsSource, normalize_name};
use crate::finding::Finding;

/// The deepest include/redirect nesting the walk follows.
pub const MAX_DEPTH: usize = 20;
/// The most records the walk fetches for one domain.
pub const MAX_NODES: usize = 200;
/// RFC 7208 §3.4: "the DNS message containing the SPF record should fit in 512 octets".
pub const MAX_RECORD_OCTETS: usize = 512;

/// What the audit found about a domain's SPF policy (the `spf` object of `docs/json.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpfAnalysis {
    /// The domain's SPF record, verbatim (`None` when there is none, several, or the look-up
    /// failed).
    pub record: Option<String>,
    /// DNS-querying terms (include, a, mx, ptr, exists, redirect) across the whole tree.
    pub lookups: u32,
    /// Void look-ups seen statically across the tree.
    pub void_lookups: u32,
    /// The effective `all` of the policy (`-all`, `~all`, `?all`, `+all`), following
    /// `redirect=`; `None` when there is none.
    pub all: Option<String>,
    /// Whether `spf.protection.outlook.com` is included anywhere in the tree.
    pub authorizes_m365: bool,
    /// The include/redirect tree.
    pub tree: Option<SpfNode>,
}

/// How a record in the tree was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The audited domain itself.
    Root,
    /// An `include:` of the parent.
    Include,
    /// The parent's `redirect=`.
    Redirect,
}

/// One record of the include/redirect tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfNode {
    /// The domain whose record this is (the domain-spec as written when it has macros).
    pub domain: String,
    /// How it was reached.
    pub via: Via,
    /// The SPF record, verbatim, when one was read.
    pub record: Option<String>,
    /// This record's own DNS-querying terms.
    pub lookups: u32,
    /// This record's and everything below it.
    pub total_lookups: u32,
    /// Void look-ups caused by this record's own terms.
    pub void_lookups: u32,
    /// Why the walk stopped here, if it did (no record, DNS failure, loop, macro, limit).
    pub error: Option<String>,
    /// The records it includes or redirects to, in order.
    pub children: Vec<SpfNode>,
}

impl SpfNode {
    fn leaf(
        domain: impl Into<String>,
        via: Via,
        record: Option<String>,
        error: impl Into<String>,
    ) -> Self {
        SpfNode {
            domain: domain.into(),
            via,
            record,
            lookups: 0,
            total_lookups: 0,
            void_lookups: 0,
            error: Some(error.into()),
            children: Vec::new(),
        }
    }

    fn walk(&self, f: &mut impl FnMut(&SpfNode)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }
}

/// Audits the SPF policy of `domain` and returns what was found with the findings (`docs/checks.md`:
/// SPF-MISSING, SPF-MULTIPLE, SPF-SYNTAX, SPF-PASS-ALL, SPF-NEUTRAL-ALL, SPF-SOFTFAIL,
/// SPF-LOOKUP-LIMIT, SPF-LOOKUP-NEAR-LIMIT, SPF-VOID-LIMIT, SPF-INCLUDE-BROKEN, SPF-PTR,
/// SPF-M365-INCLUDE-MISSING when `receives_at_m365`, SPF-TOO-LONG, and DNS-LOOKUP-FAILED).
///
/// RFC 7208 §4.6.4: "SPF implementations MUST limit the total number of those terms to 10
/// during SPF evaluation" (the terms being "include", "a", "mx", "ptr", "exists" and
/// "redirect"), and "SHOULD limit "void lookups" to two".
pub async fn analyze<D: DnsSource>(
    dns: &D,
    domain: &str,
    receives_at_m365: bool,
) -> (SpfAnalysis, Vec<Finding>) {
    let host = if receives_at_m365 {
        MailHost::M365
    } else {
        MailHost::Unknown
    };
    analyze_for(dns, domain, &host).await
}

/// [`analyze`] for a domain whose mail is handled by `host` (from its MX): SPF-MISSING proposes
/// what that host needs ([`for_missing`]), and SPF-M365-INCLUDE-MISSING is raised only for
/// [`MailHost::M365`] (behind a gateway, the gateway's SPF entry is the one needed: the
/// catalogue's accepted exception).
///
/// The `all` findings never propose `-all` while the policy is broken (an include or redirect
/// target that fails, too many void look-ups) or over the look-up limit: order is fix what is
/// broken, get under the limit, then harden.
pub async fn analyze_for<D: DnsSource>(
    dns: &D,
    domain: &str,
    host: &MailHost,
) -> (SpfAnalysis, Vec<Finding>) {
    let domain = normalize_name(domain);
    let mut analysis = SpfAnalysis::default();
    let mut findings = Vec::new();
    let txt = match dns.txt(&domain).await {
        Ok(t) => t,
        Err(e) => {
            findings.push(Finding::lookup_failed(
                Area::Spf,
                &format!("TXT {domain}"),
                &e,
            ));
            return (analysis, findings);
        }
    };
    let records = select_records(&txt);
    let raw = match records.as_slice() {
        [] => {
            let f = Finding::new(
                CheckId::SpfMissing,
                format!("no v=spf1 TXT record at {domain}"),
            );
            let proposal = for_missing(host, &domain);
            let f = f.with_fix(proposal.record.unwrap_or(proposal.note));
            findings.push(f);
            return (analysis, findings);
        }
        [one] => one.to_string(),
        many => {
            findings.push(
                Finding::new(
                    CheckId::SpfMultiple,
                    format!(
                        "{} v=spf1 TXT records at {domain}: receivers return permerror",
                        many.len()
                    ),
                )
                .with_evidence(many.join("\n")),
            );
            return (analysis, findings);
        }
    };
    analysis.record = Some(raw.clone());
    if raw.len() > MAX_RECORD_OCTETS {
        findings.push(
            Finding::new(
                CheckId::SpfTooLong,
                format!(
                    "the SPF record at {domain} is {} octets (over {MAX_RECORD_OCTETS})",
                    raw.len()
                ),
            )
            .with_evidence(raw.clone()),
        );
    }
    let record = match parse(&raw) {
        Ok(r) => r,
        Err(e) => {
            findings.push(
                Finding::new(
                    CheckId::SpfSyntax,
                    format!("the SPF record at {domain} does not parse: {e}"),
                )
                .with_evidence(raw.clone()),
            );
            analysis.tree = Some(SpfNode::leaf(&domain, Via::Root, Some(raw), e.to_string()));
            return (analysis, findings);
        }
    };

    let mut walker = Walker {
        dns,
        nodes: 1,
        findings: Vec::new(),
        voids: Vec::new(),
        ptrs: Vec::new(),
        costs: Vec::new(),
    };
    let root = walker
        .walk_record(
            domain.clone(),
            Via::Root,
            raw.clone(),
            record.clone(),
            vec![domain.clone()],
        )
        .await;
    // What must be fixed before `-all` can be proposed (fix what is broken, get under the
    // limit, then harden).
    let mut blockers: Vec<String> = walker
        .findings
        .iter()
        .filter(|f| f.id == CheckId::SpfIncludeBroken)
        .map(|f| f.detail.clone())
        .collect();
    findings.append(&mut walker.findings);

    analysis.lookups = root.total_lookups;
    let mut voids = 0;
    let mut m365 = false;
    root.walk(&mut |n| {
        voids += n.void_lookups;
        m365 |= n.via != Via::Root && n.domain == M365_INCLUDE;
    });
    analysis.void_lookups = voids;
    analysis.authorizes_m365 = m365;
    let add_m365 = *host == MailHost::M365 && !m365;
    if voids > MAX_VOID_LOOKUPS {
        blockers.push(format!(
            "{voids} void look-ups (limit {MAX_VOID_LOOKUPS}, SPF-VOID-LIMIT)"
        ));
    }
    if root.total_lookups > MAX_DNS_LOOKUPS {
        blockers.push(format!(
            "{} DNS look-ups (limit {MAX_DNS_LOOKUPS}, SPF-LOOKUP-LIMIT)",
            root.total_lookups
        ));
    }
    // While blocked: +all and ?all become ~all (which hard-fails nobody), and ~all stays.
    let all_to = if blockers.is_empty() { "-all" } else { "~all" };

    // The effective all.
    let evidence = raw.clone();
    match effective_all(&root) {
        AllState::Found(q, node) => {
            analysis.all = Some(format!("{}all", q.as_char()));
            let at = if node.via == Via::Root {
                String::new()
            } else {
                format!(" (reached through redirect={})", node.domain)
            };
            let fix = || match (q, node.via) {
                (Qualifier::SoftFail, _) if !blockers.is_empty() => format!(
                    "Keep ~all for now. Fix first: {}. Then harden to -all (audit again for \
                     the record)",
                    blockers.join("; ")
                ),
                (Qualifier::Pass, Via::Redirect) => match node.record.as_deref().map(parse) {
                    Some(Ok(r)) => format!(
                        "{} (publish at {})",
                        harden_to(&r, false, all_to),
                        node.domain
                    ),
                    _ => harden_to(&record, add_m365, all_to),
                },
                _ => harden_to(&record, add_m365, all_to),
            };
            let finding = match q {
                Qualifier::Pass => Some((
                    CheckId::SpfPassAll,
                    format!(
                        "the SPF policy of {domain} ends in +all{at}: any host may send as {domain}"
                    ),
                )),
                Qualifier::Neutral => Some((
                    CheckId::SpfNeutralAll,
                    format!(
                        "the SPF policy of {domain} ends in ?all{at}: unlisted hosts get neutral, not fail"
                    ),
                )),
                Qualifier::SoftFail => Some((
                    CheckId::SpfSoftfail,
                    format!(
                        "the SPF policy of {domain} ends in ~all{at}: unlisted hosts get softfail, not fail"
                    ),
                )),
                Qualifier::Fail => None,
            };
            if let Some((id, detail)) = finding {
                findings.push(
                    Finding::new(id, detail)
                        .with_evidence(evidence.clone())
                        .with_fix(fix()),
                );
            }
        }
        AllState::Missing(node) => {
            let at = if node.via == Via::Root {
                String::new()
            } else {
                format!(" (reached through redirect={})", node.domain)
            };
            findings.push(
                Finding::new(
                    CheckId::SpfNeutralAll,
                    format!("the SPF policy of {domain} has no all mechanism and no redirect{at}: unlisted hosts get neutral"),
                )
                .with_evidence(evidence.clone())
                .with_fix(harden_to(&record, add_m365, all_to)),
            );
        }
        AllState::Unknown => {}
    }

    // Limits.
    let breakdown = walker
        .costs
        .iter()
        .map(|(t, c)| format!("{t} ({c})"))
        .collect::<Vec<_>>()
        .join(", ");
    if analysis.lookups > MAX_DNS_LOOKUPS {
        findings.push(
            Finding::new(
                CheckId::SpfLookupLimit,
                format!(
                    "{} DNS-querying terms (limit {MAX_DNS_LOOKUPS}): {breakdown}",
                    analysis.lookups
                ),
            )
            .with_evidence(evidence.clone()),
        );
    } else if analysis.lookups + 1 >= MAX_DNS_LOOKUPS {
        findings.push(
            Finding::new(
                CheckId::SpfLookupNearLimit,
                format!(
                    "{} DNS-querying terms (limit {MAX_DNS_LOOKUPS}): {breakdown}",
                    analysis.lookups
                ),
            )
            .with_evidence(evidence.clone()),
        );
    }
    if analysis.void_lookups > MAX_VOID_LOOKUPS {
        findings.push(
            Finding::new(
                CheckId::SpfVoidLimit,
                format!(
                    "{} void look-ups (limit {MAX_VOID_LOOKUPS}): {}",
                    analysis.void_lookups,
                    walker.voids.join(", ")
                ),
            )
            .with_evidence(evidence.clone()),
        );
    }
    if !walker.ptrs.is_empty() {
        findings.push(
            Finding::new(
                CheckId::SpfPtr,
                format!("the ptr mechanism is used: {}", walker.ptrs.join(", ")),
            )
            .with_evidence(evidence.clone()),
        );
    }
    // An include or redirect target that could not be read may authorise Microsoft 365: the
    // verdict is withheld (its DNS-LOOKUP-FAILED finding says so).
    let tree_unread = findings.iter().any(|f| f.id == CheckId::DnsLookupFailed);
    if add_m365 && !tree_unread {
        findings.push(
            Finding::new(
                CheckId::SpfM365IncludeMissing,
                format!("{domain} receives mail at Microsoft 365 but its SPF policy does not include {M365_INCLUDE}"),
            )
            .with_evidence(evidence)
            .with_fix(with_include(&record, M365_INCLUDE)),
        );
    }
    analysis.tree = Some(root);
    (analysis, findings)
}

enum AllState<'a> {
    /// An `all` with this qualifier, in this node's record.
    Found(Qualifier, &'a SpfNode),
    /// No `all` and no `redirect` in this node's record: the default neutral applies.
    Missing(&'a SpfNode),
    /// Not known statically (broken or unresolvable redirect).
    Unknown,
}

/// The `all` that ends evaluation: the record's own, or else the redirect target's (§6.1).
fn effective_all(node: &SpfNode) -> AllState<'_> {
    let Some(Ok(rec)) = node.record.as_deref().map(parse) else {
        return AllState::Unknown;
    };
    if let Some(d) = rec.all() {
        return AllState::Found(d.qualifier, node);
    }
    if rec.redirect().is_none() {
        return AllState::Missing(node);
    }
    match node.children.iter().find(|c| c.via == Via::Redirect) {
        Some(c) if c.error.is_none() => effective_all(c),
        _ => AllState::Unknown,
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Walker<'a, D> {
    dns: &'a D,
    nodes: usize,
    findings: Vec<Finding>,
    /// Descriptions of the void look-ups seen.
    voids: Vec<String>,
    /// Where `ptr` is used.
    ptrs: Vec<String>,
    /// The root record's DNS-querying terms and what each costs with its subtree.
    costs: Vec<(String, u32)>,
}

impl<D: DnsSource> Walker<'_, D> {
    /// Walks one parsed record: counts its DNS-querying terms, checks literal targets for void
    /// answers, and follows include and (when no `all` makes it dead) redirect.
    fn walk_record<'s>(
        &'s mut self,
        domain: String,
        via: Via,
        raw: String,
        record: Record,
        path: Vec<String>,
    ) -> BoxFuture<'s, SpfNode> {
        Box::pin(async move {
            let mut node = SpfNode {
                domain: domain.clone(),
                via,
                record: Some(raw),
                lookups: 0,
                total_lookups: 0,
                void_lookups: 0,
                error: None,
                children: Vec::new(),
            };
            let is_root = via == Via::Root;
            let has_all = record.all().is_some();
            for term in &record.terms {
                let (spec, child_via) = match term {
                    Term::Directive(d) => {
                        if !d.mechanism.queries_dns() {
                            continue;
                        }
                        node.lookups += 1;
                        match &d.mechanism {
                            Mechanism::Include(spec) => (spec, Via::Include),
                            other => {
                                if let Mechanism::Ptr(_) = other {
                                    self.ptrs.push(format!("{} at {domain}", d.mechanism));
                                }
                                if self.is_void(other, &domain).await {
                                    node.void_lookups += 1;
                                    self.voids
                                        .push(format!("{} at {domain} (no records)", d.mechanism));
                                }
                                if is_root {
                                    self.costs.push((d.mechanism.to_string(), 1));
                                }
                                continue;
                            }
                        }
                    }
                    // §6.1: redirect is ignored when the record has an "all".
                    Term::Modifier(Modifier::Redirect(spec)) if !has_all => {
                        node.lookups += 1;
                        (spec, Via::Redirect)
                    }
                    Term::Modifier(_) => continue,
                };
                let child = self.child(spec, child_via, &domain, &path).await;
                if child.via == Via::Include || child.via == Via::Redirect {
                    // A target with no records at all was a void look-up of this record's term.
                    if child.error.as_deref() == Some(NO_RECORDS) {
                        node.void_lookups += 1;
                    }
                }
                if is_root {
                    let t = match child_via {
                        Via::Redirect => format!("redirect={spec}"),
                        _ => format!("include:{spec}"),
                    };
                    self.costs.push((t, 1 + child.total_lookups));
                }
                node.children.push(child);
            }
            node.total_lookups =
                node.lookups + node.children.iter().map(|c| c.total_lookups).sum::<u32>();
            node
        })
    }

    /// Fetches and walks an include or redirect target.
    async fn child(
        &mut self,
        spec: &DomainSpec,
        via: Via,
        parent: &str,
        path: &[String],
    ) -> SpfNode {
        let term = match via {
            Via::Redirect => format!("redirect={spec}"),
            _ => format!("include:{spec}"),
        };
        let Some(target) = spec.literal() else {
            return SpfNode::leaf(
                spec.to_string(),
                via,
                None,
                "contains macros: resolved only when a message is evaluated",
            );
        };
        let ctx = format!("{term} in the SPF policy of {parent}");
        if path.contains(&target) {
            self.findings.push(Finding::new(
                CheckId::SpfIncludeBroken,
                format!(
                    "{ctx} loops back to {target}: evaluation exceeds the look-up limit (permerror)"
                ),
            ));
            return SpfNode::leaf(
                target,
                via,
                None,
                "loop: already being evaluated on this path",
            );
        }
        if path.len() >= MAX_DEPTH || self.nodes >= MAX_NODES {
            return SpfNode::leaf(
                target,
                via,
                None,
                format!("not followed: walk limited to depth {MAX_DEPTH} and {MAX_NODES} records"),
            );
        }
        self.nodes += 1;
        let txt = match self.dns.txt(&target).await {
            Ok(t) => t,
            Err(e) => {
                self.findings.push(Finding::lookup_failed(
                    Area::Spf,
                    &format!("TXT {target} ({ctx})"),
                    &e,
                ));
                return SpfNode::leaf(target, via, None, format!("DNS look-up failed: {e}"));
            }
        };
        if txt.is_empty() {
            self.voids.push(format!("{term} (no records)"));
            self.findings.push(Finding::new(
                CheckId::SpfIncludeBroken,
                format!("{ctx}: {target} does not exist or has no TXT records (permerror)"),
            ));
            return SpfNode::leaf(target, via, None, NO_RECORDS);
        }
        let records = select_records(&txt);
        let raw = match records.as_slice() {
            [one] => one.to_string(),
            [] => {
                self.findings.push(Finding::new(
                    CheckId::SpfIncludeBroken,
                    format!("{ctx}: {target} publishes no SPF record (permerror)"),
                ));
                return SpfNode::leaf(target, via, None, "no SPF record");
            }
            many => {
                self.findings.push(
                    Finding::new(
                        CheckId::SpfIncludeBroken,
                        format!(
                            "{ctx}: {target} publishes {} SPF records (permerror)",
                            many.len()
                        ),
                    )
                    .with_evidence(many.join("\n")),
                );
                return SpfNode::leaf(target, via, None, format!("{} SPF records", many.len()));
            }
        };
        match parse(&raw) {
            Ok(rec) => {
                let mut path = path.to_vec();
                path.push(target.clone());
                self.walk_record(target, via, raw, rec, path).await
            }
            Err(e) => {
                self.findings.push(
                    Finding::new(
                        CheckId::SpfSyntax,
                        format!("the SPF record at {target} ({ctx}) does not parse: {e}"),
                    )
                    .with_evidence(raw.clone()),
                );
                SpfNode::leaf(target, via, Some(raw), e.to_string())
            }
        }
    }

    /// Whether a literal `a`, `mx` or `exists` target has no records for any sender (a void
    /// look-up whatever the IP). Targets with macros and failed look-ups are not judged.
    async fn is_void(&self, mechanism: &Mechanism, current: &str) -> bool {
        let target = |spec: Option<&DomainSpec>| match spec {
            Some(s) => s.literal(),
            None => Some(current.to_string()),
        };
        match mechanism {
            Mechanism::A { domain, .. } => {
                let Some(name) = target(domain.as_ref()) else {
                    return false;
                };
                matches!(
                    (self.dns.a(&name).await, self.dns.aaaa(&name).await),
                    (Ok(a), Ok(aaaa)) if a.is_empty() && aaaa.is_empty()
                )
            }
            Mechanism::Mx { domain, .. } => {
                let Some(name) = target(domain.as_ref()) else {
                    return false;
                };
                matches!(self.dns.mx(&name).await, Ok(mx) if mx.is_empty())
            }
            Mechanism::Exists(spec) => {
                let Some(name) = spec.literal() else {
                    return false;
                };
                matches!(self.dns.a(&name).await, Ok(a) if a.is_empty())
            }
            _ => false,
        }
    }
}

const NO_RECORDS: &str = "no TXT records (NXDOMAIN or NODATA)";

/// The hardened version of `record`, as the record to publish.
///
/// - The first `all` becomes `-all` (`~all`, `?all`, `+all` and a missing `all` all do: RFC 7208
///   §4.7 makes a missing `all` neutral). Directives after the first `all` are dropped: they are
///   never evaluated.
/// - A `redirect=X` without `all` becomes `include:X` followed by `-all` (the target's own
///   weak ending then no longer decides; §6.1 ignores redirect when an `all` is present).
/// - With `add_m365`, `include:spf.protection.outlook.com` is added before the `all` unless
///   already there.
/// - Duplicate terms are removed (case-insensitively); other modifiers (`exp=`, unknown) are
///   kept and printed last.
pub fn harden(record: &Record, add_m365: bool) -> String {
    harden_to(record, add_m365, "-all")
}

/// [`harden`] ending in `all` (`-all` or `~all`) instead of `-all`.
pub fn harden_to(record: &Record, add_m365: bool, all: &str) -> String {
    let mut seen = HashSet::new();
    let mut directives: Vec<String> = Vec::new();
    let mut modifiers: Vec<String> = Vec::new();
    let mut push = |list: &mut Vec<String>, t: String| {
        if seen.insert(t.to_ascii_lowercase()) {
            list.push(t);
        }
    };
    let has_all = record.all().is_some();
    let mut after_all = false;
    for term in &record.terms {
        match term {
            Term::Directive(d) if d.mechanism == Mechanism::All => after_all = true,
            Term::Directive(d) if !after_all => push(&mut directives, d.to_string()),
            Term::Directive(_) => {}
            Term::Modifier(Modifier::Redirect(_)) => {}
            Term::Modifier(m) => push(&mut modifiers, m.to_string()),
        }
    }
    if !has_all && let Some(target) = record.redirect() {
        push(&mut directives, format!("include:{target}"));
    }
    if add_m365 {
        let m365 = format!("include:{M365_INCLUDE}");
        let present = directives
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&m365) || d.eq_ignore_ascii_case(&format!("+{m365}")));
        if !present {
            push(&mut directives, m365);
        }
    }
    directives.push(all.to_string());
    let mut out = String::from("v=spf1");
    for t in directives.iter().chain(&modifiers) {
        out.push(' ');
        out.push_str(t);
    }
    out
}

/// `record` with `include:<target>` inserted just before its first `all` (or after its last
/// directive when it has none), everything else unchanged.
pub fn with_include(record: &Record, target: &str) -> String {
    let Ok(spec) = super::parse::parse_domain_spec("include", target) else {
        return record.to_string();
    };
    let include = Directive {
        qualifier: Qualifier::Pass,
        mechanism: Mechanism::Include(spec),
    };
    let mut terms = record.terms.clone();
    let at = terms
        .iter()
        .position(|t| matches!(t, Term::Directive(d) if d.mechanism == Mechanism::All))
        .or_else(|| {
            terms
                .iter()
                .rposition(|t| matches!(t, Term::Directive(_)))
                .map(|i| i + 1)
        })
        .unwrap_or(0);
    terms.insert(at, Term::Directive(include));
    Record { terms }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::memory::{MemoryDns, Rr};

    const DOMAIN: &str = "contoso.example";

    fn run(dns: &MemoryDns, m365: bool) -> (SpfAnalysis, Vec<Finding>) {
        pollster::block_on(analyze(dns, DOMAIN, m365))
    }

    fn ids(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.id.as_str()).collect()
    }

    fn find(findings: &[Finding], id: CheckId) -> &Finding {
        findings
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no {id} in {findings:#?}"))
    }

    fn with_spf(record: &str) -> MemoryDns {
        MemoryDns::new()
            .txt_at(DOMAIN, record)
            .txt_at(M365_INCLUDE, "v=spf1 ip4:40.92.0.0/15 -all")
            .txt_at("_spf.partner.example", "v=spf1 ip4:192.0.2.0/24 -all")
            .with(DOMAIN, Rr::A("192.0.2.10".parse().unwrap()))
            .with(DOMAIN, Rr::Mx(0, "mx.contoso.example".into()))
    }

    /// One fixture per finding ID: (ID, a record that raises it, one that does not).
    #[test]
    fn one_fixture_per_finding() {
        let clean = "v=spf1 include:spf.protection.outlook.com -all";
        let many_includes = |n: usize| {
            let mut dns = with_spf(&format!(
                "v=spf1 {} include:spf.protection.outlook.com -all",
                (0..n)
                    .map(|i| format!("include:s{i}.example"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            for i in 0..n {
                dns = dns.txt_at(&format!("s{i}.example"), "v=spf1 ip4:198.51.100.0/24 -all");
            }
            dns
        };
        let cases: Vec<(CheckId, MemoryDns, MemoryDns)> = vec![
            (
                CheckId::SpfMissing,
                MemoryDns::new().txt_at(DOMAIN, "MS=ms12345"),
                with_spf(clean),
            ),
            (
                CheckId::SpfMultiple,
                with_spf(clean).txt_at(DOMAIN, "v=spf1 -all"),
                with_spf(clean),
            ),
            (
                CheckId::SpfSyntax,
                with_spf("v=spf1 include:spf.protection.outlook.com ip4:192.0.2.300 -all"),
                with_spf(clean),
            ),
            (
                CheckId::SpfPassAll,
                with_spf("v=spf1 include:spf.protection.outlook.com +all"),
                with_spf(clean),
            ),
            (
                CheckId::SpfNeutralAll,
                with_spf("v=spf1 include:spf.protection.outlook.com ?all"),
                with_spf(clean),
            ),
            (
                CheckId::SpfSoftfail,
                with_spf("v=spf1 include:spf.protection.outlook.com ~all"),
                with_spf(clean),
            ),
            (CheckId::SpfLookupLimit, many_includes(10), many_includes(7)),
            (
                CheckId::SpfLookupNearLimit,
                many_includes(8),
                many_includes(7),
            ),
            (
                CheckId::SpfVoidLimit,
                with_spf(
                    "v=spf1 a:gone1.example a:gone2.example mx:gone3.example include:spf.protection.outlook.com -all",
                ),
                with_spf(
                    "v=spf1 a:gone1.example a:gone2.example include:spf.protection.outlook.com -all",
                ),
            ),
            (
                CheckId::SpfIncludeBroken,
                with_spf(
                    "v=spf1 include:spf.protection.outlook.com include:old-vendor.example -all",
                ),
                with_spf(
                    "v=spf1 include:spf.protection.outlook.com include:_spf.partner.example -all",
                ),
            ),
            (
                CheckId::SpfPtr,
                with_spf("v=spf1 include:spf.protection.outlook.com ptr -all"),
                with_spf(clean),
            ),
            (
                CheckId::SpfM365IncludeMissing,
                with_spf("v=spf1 include:_spf.partner.example -all"),
                with_spf(clean),
            ),
            (
                CheckId::SpfTooLong,
                with_spf(&format!(
                    "v=spf1 include:spf.protection.outlook.com {} -all",
                    vec!["ip4:192.0.2.1"; 40].join(" ")
                )),
                with_spf(clean),
            ),
        ];
        for (id, positive, negative) in cases {
            let (_, f) = run(&positive, true);
            assert!(f.iter().any(|f| f.id == id), "{id} not raised: {f:#?}");
            let (_, f) = run(&negative, true);
            assert!(
                !f.iter().any(|f| f.id == id),
                "{id} raised on the clean fixture: {f:#?}"
            );
            assert!(f.iter().all(|f| f.id != CheckId::DnsLookupFailed), "{f:#?}");
        }
        // The clean record raises nothing at all.
        assert_eq!(ids(&run(&with_spf(clean), true).1), Vec::<&str>::new());
    }

    #[test]
    fn dns_failure_is_lookup_failed_not_missing() {
        let dns = MemoryDns::new().with(DOMAIN, Rr::Fail(DnsError::ServFail));
        let (a, f) = run(&dns, true);
        assert_eq!(ids(&f), vec!["DNS-LOOKUP-FAILED"]);
        assert_eq!(f[0].area, Area::Spf);
        assert!(
            f[0].detail.contains("TXT contoso.example: SERVFAIL"),
            "{}",
            f[0].detail
        );
        assert_eq!(a.record, None);
        // A failure on an include target is DNS-LOOKUP-FAILED too, not SPF-INCLUDE-BROKEN.
        let dns = with_spf("v=spf1 include:spf.protection.outlook.com include:flaky.example -all")
            .with("flaky.example", Rr::Fail(DnsError::Timeout));
        let (_, f) = run(&dns, true);
        assert_eq!(ids(&f), vec!["DNS-LOOKUP-FAILED"]);
        assert!(f[0].detail.contains("TXT flaky.example"), "{}", f[0].detail);
    }

    #[test]
    fn lookup_limit_names_what_costs_what() {
        let dns = with_spf("v=spf1 mx include:a.example redirect=b.example")
            .txt_at("a.example", "v=spf1 include:a2.example a mx ptr ~all")
            .txt_at("a2.example", "v=spf1 exists:%{i}.x.example -all")
            .txt_at(
                "b.example",
                "v=spf1 include:spf.protection.outlook.com a:c.example mx:c.example a mx ~all",
            )
            .with("c.example", Rr::A("192.0.2.1".parse().unwrap()))
            .with("c.example", Rr::Mx(0, "c.example".into()))
            .with("a.example", Rr::A("192.0.2.1".parse().unwrap()))
            .with("a.example", Rr::Mx(0, "c.example".into()))
            .with("b.example", Rr::A("192.0.2.1".parse().unwrap()))
            .with("b.example", Rr::Mx(0, "c.example".into()));
        let (a, f) = run(&dns, true);
        assert_eq!(a.lookups, 13);
        let lim = find(&f, CheckId::SpfLookupLimit);
        assert_eq!(
            lim.detail,
            "13 DNS-querying terms (limit 10): mx (1), include:a.example (6), redirect=b.example (6)"
        );
        assert!(a.authorizes_m365);
        assert_eq!(a.all.as_deref(), Some("~all"));
        // The ~all comes from the redirect target; the fix hardens the domain's own record.
        let soft = find(&f, CheckId::SpfSoftfail);
        assert!(
            soft.detail.contains("reached through redirect=b.example"),
            "{}",
            soft.detail
        );
        // Over the limit: no `-all` yet (get under the limit first).
        assert_eq!(
            soft.fix,
            "Keep ~all for now. Fix first: 13 DNS look-ups (limit 10, SPF-LOOKUP-LIMIT). Then \
             harden to -all (audit again for the record)"
        );
        assert!(
            find(&f, CheckId::SpfPtr)
                .detail
                .contains("ptr at a.example")
        );
        let tree = a.tree.unwrap();
        assert_eq!((tree.lookups, tree.total_lookups), (3, 13));
        assert_eq!(tree.children.len(), 2);
        assert_eq!(tree.children[1].via, Via::Redirect);
        assert_eq!(tree.children[0].children[0].children.len(), 0);
        let json = serde_json::to_value(&tree.children[0]).unwrap();
        assert_eq!(json["via"], "include");
        // The include term itself is counted on the parent: 1 + 5 = the 6 of the breakdown.
        assert_eq!(json["total_lookups"], 5);
    }

    /// Fix what is broken, get under the limit, then harden: while an include fails, `~all`
    /// stays (the fix says what to fix first) and `+all`/`?all` become `~all`, never `-all`.
    #[test]
    fn no_hard_fail_while_the_policy_is_broken() {
        let broken = "include:spf.protection.outlook.com include:old-vendor.example";
        for (all, id) in [
            ("~all", CheckId::SpfSoftfail),
            ("?all", CheckId::SpfNeutralAll),
            ("+all", CheckId::SpfPassAll),
        ] {
            let (_, f) = run(&with_spf(&format!("v=spf1 {broken} {all}")), true);
            assert!(
                f.iter().any(|f| f.id == CheckId::SpfIncludeBroken),
                "{f:#?}"
            );
            let fix = &find(&f, id).fix;
            if id == CheckId::SpfSoftfail {
                // Not a record at all: what to fix first.
                assert!(fix.starts_with("Keep ~all for now"), "{fix}");
                assert!(fix.contains("old-vendor.example"), "{fix}");
            } else {
                assert_eq!(*fix, format!("v=spf1 {broken} ~all"));
            }
        }
        // Once the include is repaired, -all is proposed.
        let (_, f) = run(
            &with_spf(
                "v=spf1 include:spf.protection.outlook.com include:_spf.partner.example ~all",
            ),
            true,
        );
        assert_eq!(
            find(&f, CheckId::SpfSoftfail).fix,
            "v=spf1 include:spf.protection.outlook.com include:_spf.partner.example -all"
        );
    }

    /// Behind a gateway, SPF-MISSING proposes the gateway's include with `~all`, and
    /// Microsoft 365's include is not demanded.
    #[test]
    fn gateway_and_google_proposals() {
        let dns = MemoryDns::new();
        let run_for = |host: MailHost| pollster::block_on(analyze_for(&dns, DOMAIN, &host)).1;
        let f = run_for(MailHost::Gateway("Mimecast".into()));
        assert_eq!(
            find(&f, CheckId::SpfMissing).fix,
            "v=spf1 include:_netblocks.mimecast.com ~all"
        );
        let f = run_for(MailHost::Google);
        assert_eq!(
            find(&f, CheckId::SpfMissing).fix,
            "v=spf1 include:_spf.google.com -all"
        );
        let f = run_for(MailHost::Unknown);
        assert!(!find(&f, CheckId::SpfMissing).fix.contains("outlook"));
        let dns = with_spf("v=spf1 include:_spf.partner.example ~all");
        let f = pollster::block_on(analyze_for(
            &dns,
            DOMAIN,
            &MailHost::Gateway("Mimecast".into()),
        ))
        .1;
        assert!(
            !f.iter().any(|f| f.id == CheckId::SpfM365IncludeMissing),
            "{f:#?}"
        );
        assert!(!find(&f, CheckId::SpfSoftfail).fix.contains("outlook"));
    }

    #[test]
    fn near_limit_is_9_or_10() {
        // n `a` terms plus the Microsoft 365 include: n + 1 DNS-querying terms.
        for (n, near, over) in [
            (7, false, false),
            (8, true, false),
            (9, true, false),
            (10, false, true),
        ] {
            let terms = vec!["a"; n].join(" ");
            let (a, f) = run(
                &with_spf(&format!(
                    "v=spf1 {terms} include:spf.protection.outlook.com -all"
                )),
                false,
            );
            assert_eq!(a.lookups, n as u32 + 1);
            assert_eq!(
                f.iter().any(|f| f.id == CheckId::SpfLookupNearLimit),
                near,
                "{n}"
            );
            assert_eq!(
                f.iter().any(|f| f.id == CheckId::SpfLookupLimit),
                over,
                "{n}"
            );
        }
    }

    #[test]
    fn void_lookups_are_counted_statically() {
        let dns = with_spf(
            "v=spf1 a:gone.example mx:gone.example include:gone2.example exists:%{i}.bl.example a -all",
        );
        let (a, f) = run(&dns, false);
        assert_eq!(a.void_lookups, 3);
        let v = find(&f, CheckId::SpfVoidLimit);
        assert!(
            v.detail
                .starts_with("3 void look-ups (limit 2): a:gone.example at contoso.example"),
            "{}",
            v.detail
        );
        assert!(
            find(&f, CheckId::SpfIncludeBroken)
                .detail
                .contains("gone2.example does not exist")
        );
    }

    #[test]
    fn loops_and_caps_stop_the_walk() {
        let dns = with_spf("v=spf1 include:l1.example -all")
            .txt_at("l1.example", "v=spf1 include:l2.example -all")
            .txt_at("l2.example", "v=spf1 include:l1.example -all");
        let (a, f) = run(&dns, false);
        assert!(
            find(&f, CheckId::SpfIncludeBroken)
                .detail
                .contains("loops back to l1.example")
        );
        assert_eq!(a.lookups, 3);
        // A chain deeper than MAX_DEPTH, and a fan-out wider than MAX_NODES.
        let mut deep = with_spf("v=spf1 include:d0.example -all");
        for i in 0..40 {
            deep = deep.txt_at(
                &format!("d{i}.example"),
                &format!("v=spf1 include:d{}.example -all", i + 1),
            );
        }
        let (a, _) = run(&deep, false);
        let mut depth = 0;
        let mut n = a.tree.as_ref().unwrap();
        while let Some(c) = n.children.first() {
            depth += 1;
            n = c;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert!(n.error.as_deref().unwrap().starts_with("not followed"));
        let wide_terms = (0..10)
            .map(|i| format!("include:w{i}.example"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut wide = with_spf(&format!("v=spf1 {wide_terms} -all"));
        for i in 0..10 {
            wide = wide.txt_at(
                &format!("w{i}.example"),
                &format!("v=spf1 {wide_terms} -all"),
            );
        }
        let (a, f) = run(&wide, false);
        let mut count = 0;
        a.tree.unwrap().walk(&mut |_| count += 1);
        assert!(count <= 1 + MAX_NODES * 10, "{count}");
        let fetched = wide
            .queries()
            .iter()
            .filter(|q| q.starts_with("TXT "))
            .count();
        assert!(fetched <= MAX_NODES, "{fetched} TXT queries");
        assert!(f.iter().any(|f| f.id == CheckId::SpfLookupLimit));
    }

    #[test]
    fn all_findings_and_fixes() {
        for (record, m365, id, fix) in [
            (
                "v=spf1 mx ~all",
                false,
                CheckId::SpfSoftfail,
                "v=spf1 mx -all",
            ),
            (
                "v=spf1 mx ?all",
                false,
                CheckId::SpfNeutralAll,
                "v=spf1 mx -all",
            ),
            ("v=spf1 mx", false, CheckId::SpfNeutralAll, "v=spf1 mx -all"),
            ("v=spf1 +all", false, CheckId::SpfPassAll, "v=spf1 -all"),
            ("v=spf1 all", false, CheckId::SpfPassAll, "v=spf1 -all"),
            (
                "v=spf1 mx ~all",
                true,
                CheckId::SpfSoftfail,
                "v=spf1 mx include:spf.protection.outlook.com -all",
            ),
            (
                "v=spf1 mx ~all",
                true,
                CheckId::SpfM365IncludeMissing,
                "v=spf1 mx include:spf.protection.outlook.com ~all",
            ),
            (
                "v=spf1 mx exp=x.example",
                true,
                CheckId::SpfM365IncludeMissing,
                "v=spf1 mx include:spf.protection.outlook.com exp=x.example",
            ),
        ] {
            let (_, f) = run(&with_spf(record), m365);
            let found = find(&f, id);
            assert_eq!(found.fix, fix, "{record}");
            assert_eq!(found.evidence.as_deref(), Some(record));
        }
        let (a, f) = run(
            &with_spf("v=spf1 include:spf.protection.outlook.com -all"),
            true,
        );
        assert_eq!(a.all.as_deref(), Some("-all"));
        assert!(f.is_empty());
        // A redirect to a +all policy: the fix is for the target.
        let dns = with_spf("v=spf1 redirect=open.example").txt_at("open.example", "v=spf1 mx +all");
        let (a, f) = run(&dns, false);
        assert_eq!(a.all.as_deref(), Some("+all"));
        assert_eq!(
            find(&f, CheckId::SpfPassAll).fix,
            "v=spf1 mx -all (publish at open.example)"
        );
        // The redirect target has no all: neutral by default.
        let dns = with_spf("v=spf1 redirect=bare.example").txt_at("bare.example", "v=spf1 mx");
        let (a, f) = run(&dns, false);
        assert_eq!(a.all, None);
        assert_eq!(
            find(&f, CheckId::SpfNeutralAll).fix,
            "v=spf1 include:bare.example -all"
        );
        // A redirect next to an all is ignored (not counted, not followed).
        let (a, f) = run(&with_spf("v=spf1 -all redirect=nowhere.example"), false);
        assert_eq!((a.lookups, a.all.as_deref()), (0, Some("-all")));
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn broken_targets() {
        let dns = with_spf("v=spf1 include:text.example include:two.example include:bad.example redirect=nx.example")
            .txt_at("text.example", "google-site-verification=abc")
            .txt_at("two.example", "v=spf1 -all")
            .txt_at("two.example", "v=spf1 ~all")
            .txt_at("bad.example", "v=spf1 ip4:1.2.3.4/40 -all");
        let (a, f) = run(&dns, false);
        let broken: Vec<&str> = f
            .iter()
            .filter(|f| f.id == CheckId::SpfIncludeBroken)
            .map(|f| f.detail.as_str())
            .collect();
        assert_eq!(broken.len(), 3, "{broken:#?}");
        assert!(broken[0].contains("text.example publishes no SPF record"));
        assert!(broken[1].contains("two.example publishes 2 SPF records"));
        assert!(broken[2].contains("redirect=nx.example"));
        let syntax = find(&f, CheckId::SpfSyntax);
        assert!(syntax.detail.starts_with("the SPF record at bad.example (include:bad.example in the SPF policy of contoso.example) does not parse: term \"ip4:1.2.3.4/40\""), "{}", syntax.detail);
        assert_eq!(
            syntax.evidence.as_deref(),
            Some("v=spf1 ip4:1.2.3.4/40 -all")
        );
        assert_eq!(a.all, None);
        assert!(
            !f.iter().any(|f| f.id == CheckId::SpfNeutralAll),
            "unknown ending: no verdict"
        );
        assert_eq!(a.void_lookups, 1);
    }

    #[test]
    fn top_level_syntax_error() {
        let (a, f) = run(&with_spf("v=spf1 a:foo-bar -all"), false);
        assert_eq!(ids(&f), vec!["SPF-SYNTAX"]);
        assert!(
            f[0].detail.contains("invalid domain-spec \"foo-bar\""),
            "{}",
            f[0].detail
        );
        assert_eq!(a.record.as_deref(), Some("v=spf1 a:foo-bar -all"));
    }

    #[test]
    fn macros_are_counted_not_fetched() {
        let dns = with_spf(
            "v=spf1 include:%{d}.spf.example exists:%{i}._spf.%{d} include:spf.protection.outlook.com -all",
        );
        let (a, f) = run(&dns, true);
        assert_eq!(a.lookups, 3);
        assert!(f.is_empty(), "{f:#?}");
        let tree = a.tree.unwrap();
        assert!(
            tree.children[0]
                .error
                .as_deref()
                .unwrap()
                .contains("macros")
        );
        assert!(!dns.queries().iter().any(|q| q.contains('%')));
    }

    #[test]
    fn harden_table() {
        for (record, m365, hardened) in [
            ("v=spf1 mx ~all", false, "v=spf1 mx -all"),
            ("v=spf1 mx ?all", false, "v=spf1 mx -all"),
            ("v=spf1 mx +all", false, "v=spf1 mx -all"),
            ("v=spf1 mx", false, "v=spf1 mx -all"),
            ("v=spf1 mx -all", false, "v=spf1 mx -all"),
            ("v=spf1 mx mx MX a ~all", false, "v=spf1 mx a -all"),
            ("v=spf1 ~all ip4:192.0.2.1", false, "v=spf1 -all"),
            (
                "v=spf1 mx ~all",
                true,
                "v=spf1 mx include:spf.protection.outlook.com -all",
            ),
            (
                "v=spf1 include:spf.protection.outlook.com ~all",
                true,
                "v=spf1 include:spf.protection.outlook.com -all",
            ),
            (
                "v=spf1 redirect=_spf.example.com",
                false,
                "v=spf1 include:_spf.example.com -all",
            ),
            (
                "v=spf1 redirect=_spf.example.com",
                true,
                "v=spf1 include:_spf.example.com include:spf.protection.outlook.com -all",
            ),
            (
                "v=spf1 -all redirect=_spf.example.com",
                false,
                "v=spf1 -all",
            ),
            (
                "v=spf1 exp=why.example ip4:192.0.2.0/24 ?all",
                false,
                "v=spf1 ip4:192.0.2.0/24 -all exp=why.example",
            ),
        ] {
            let r = parse(record).unwrap();
            let h = harden(&r, m365);
            assert_eq!(h, hardened, "{record}");
            assert!(parse(&h).is_ok());
        }
        for (record, with) in [
            (
                "v=spf1 mx ~all",
                "v=spf1 mx include:spf.protection.outlook.com ~all",
            ),
            ("v=spf1 mx", "v=spf1 mx include:spf.protection.outlook.com"),
            (
                "v=spf1 redirect=x.example",
                "v=spf1 include:spf.protection.outlook.com redirect=x.example",
            ),
        ] {
            assert_eq!(
                with_include(&parse(record).unwrap(), M365_INCLUDE),
                with,
                "{record}"
            );
        }
    }
}
