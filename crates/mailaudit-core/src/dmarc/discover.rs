//! DMARC policy discovery and Organizational Domain determination by the RFC 9989 DNS Tree Walk.
//!
//! RFC 9989 replaces RFC 7489's Public Suffix List with a walk up the DNS tree: query
//! `_dmarc.<domain>`, then its parents (jumping to seven labels for long names), stopping early
//! only at a record that carries `psd=y` or `psd=n`. The records found decide both which policy
//! applies to the domain ([`discover`]) and its Organizational Domain
//! ([`organizational_domain`]). A failed query (`Err(DnsError)`) stops the walk: the verdict it
//! would have fed is withheld, never guessed.

use std::fmt;

use serde::Serialize;

use super::parse::{DmarcParseError, is_dmarc_record, parse_lenient};
use super::{Policy, Psd, Record, Uri};
use crate::dns::{DnsError, DnsSource, normalize_name};

/// The query budget of the walk: RFC 9989 §4.10, "a shortcut is built into the process so that
/// Author Domains with more than eight labels do not result in more than eight DNS queries."
pub const MAX_WALK_QUERIES: usize = 8;

/// One query of the tree walk and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalkStep {
    /// The domain whose record was asked for (`example.com`).
    pub domain: String,
    /// The name queried (`_dmarc.example.com`).
    pub name: String,
    /// Every TXT record at the name, verbatim (empty for NXDOMAIN/NODATA).
    pub txt: Vec<String>,
}

impl WalkStep {
    /// The TXT records that are DMARC records (first tag `v=DMARC1`).
    pub fn dmarc_records(&self) -> Vec<&str> {
        self.txt
            .iter()
            .map(String::as_str)
            .filter(|t| is_dmarc_record(t))
            .collect()
    }

    /// The DMARC record at this name, if there is exactly one.
    ///
    /// RFC 9989 §4.10 step 2: "If multiple DMARC Policy Records are returned, they are all
    /// discarded."
    pub fn record(&self) -> Option<&str> {
        match self.dmarc_records().as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether more than one DMARC record is published here (all are then ignored).
    pub fn is_multiple(&self) -> bool {
        self.dmarc_records().len() > 1
    }

    /// The `psd` tag of the single DMARC record here, if any (`None` if absent or invalid).
    pub fn psd(&self) -> Option<Psd> {
        self.parsed().and_then(|(r, _)| r.psd)
    }

    /// The single DMARC record, as a receiver reads it.
    pub fn parsed(&self) -> Option<(Record, Vec<DmarcParseError>)> {
        self.record().and_then(|t| parse_lenient(t).ok())
    }

    /// Whether the walk stops after this step (a single record with `psd=y` or `psd=n`).
    fn stops(&self) -> bool {
        matches!(self.psd(), Some(Psd::Yes | Psd::No))
    }
}

/// Where the policy that applies to a domain was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// At `_dmarc.<domain>` itself.
    Own,
    /// At the domain's Organizational Domain (a parent of the domain).
    OrganizationalDomain,
    /// At the domain's Public Suffix Domain (a record with `psd=y`): the domain's owner
    /// publishes no policy of its own.
    PublicSuffix,
}

/// Which tag of the record gives the policy for the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyTag {
    /// `p`: the record is the domain's own.
    P,
    /// `sp`: the record is inherited and the domain exists.
    Sp,
    /// `np`: the record is inherited and the domain does not exist.
    Np,
}

impl PolicyTag {
    /// The tag name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyTag::P => "p",
            PolicyTag::Sp => "sp",
            PolicyTag::Np => "np",
        }
    }
}

impl fmt::Display for PolicyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The DMARC record that applies to a domain and the policy it gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedPolicy {
    /// Whose record it is.
    pub source: PolicySource,
    /// The DMARC Policy Domain: where the record is published (`example.com`).
    pub domain: String,
    /// The name the record was read at (`_dmarc.example.com`).
    pub found_at: String,
    /// The record, verbatim.
    pub text: String,
    /// The record as a receiver reads it (invalid parts dropped).
    pub record: Record,
    /// What the receiver had to drop, and why.
    pub problems: Vec<DmarcParseError>,
    /// The tag the policy is taken from.
    pub tag: PolicyTag,
    /// The policy that applies to the domain after RFC 9989's rules for invalid records;
    /// `None` when receivers apply no DMARC processing (no valid `p`, or an invalid `sp`/`np`,
    /// and no valid `rua`).
    pub policy: Option<Policy>,
}

impl AppliedPolicy {
    /// Whether the record is not the domain's own.
    pub fn inherited(&self) -> bool {
        self.source != PolicySource::Own
    }

    /// Whether [`AppliedPolicy::policy`] comes from RFC 9989's fallback for an invalid
    /// `p`/`sp`/`np` rather than from the tag itself.
    pub fn is_fallback(&self) -> bool {
        self.record.p.is_none() || self.problems.iter().any(is_policy_problem)
    }
}

fn is_policy_problem(e: &DmarcParseError) -> bool {
    matches!(
        e,
        DmarcParseError::InvalidValue { tag, .. } | DmarcParseError::MissingValue { tag }
            if matches!(tag.as_str(), "p" | "sp" | "np")
    )
}

/// The outcome of policy discovery for one domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// The domain, normalised (lower-case, no trailing dot).
    pub domain: String,
    /// Every query made, in order.
    pub steps: Vec<WalkStep>,
    /// The record that applies, if any.
    pub policy: Option<AppliedPolicy>,
    /// The domain's Organizational Domain, when the walk went far enough to decide it (it stops
    /// at the domain's own record, which decides the policy but not the Organizational Domain,
    /// unless that record carries `psd=y` or `psd=n`).
    pub org_domain: Option<String>,
}

/// The names the tree walk queries for `domain`, in order (the domain without `_dmarc.`).
///
/// RFC 9989 §4.10:
///
/// > 3. Break the subject DNS domain name into a set of ordered labels. Assign the count of
/// >    labels to "x", and number the labels from right to left […]
/// > 4. If x < 8, remove the left-most (highest-numbered) label from the subject domain. If
/// >    x >= 8, remove the left-most (highest-numbered) labels from the subject domain until 7
/// >    labels remain. The resulting DNS domain name is the new target for the next lookup.
/// > […]
/// > 7. Determine the target for the next query by removing the left-most label from the
/// >    target of the previous query. Repeat steps 5, 6, and 7 until the process stops or
/// >    there are no more labels remaining.
pub fn walk_targets(domain: &str) -> Vec<String> {
    let labels: Vec<&str> = domain.split('.').collect();
    let x = labels.len();
    let mut out = vec![domain.to_string()];
    let mut n = if x >= MAX_WALK_QUERIES {
        MAX_WALK_QUERIES - 1
    } else {
        x - 1
    };
    while n >= 1 {
        out.push(labels[x - n..].join("."));
        n -= 1;
    }
    out
}

/// A walk so far, and the query that failed if it could not finish.
#[derive(Clone, Debug, Default)]
pub(super) struct Walk {
    pub(super) steps: Vec<WalkStep>,
    pub(super) failed: Option<(String, DnsError)>,
}

/// Runs (or resumes, after `prior` steps) the tree walk from `domain`.
///
/// RFC 9989 §4.10 steps 2 and 6: "If a single record remains and it contains either a "psd=y"
/// tag or a "psd=n" tag, stop." With `stop_at_own`, the walk also stops after the first query
/// when it finds the domain's own record (§4.10.1: "If a valid DMARC Policy Record is found
/// there, then this is the DMARC Policy Record to be applied to the message").
pub(super) async fn walk<D: DnsSource>(
    dns: &D,
    domain: &str,
    prior: Vec<WalkStep>,
    stop_at_own: bool,
) -> Walk {
    let mut w = Walk {
        steps: prior,
        failed: None,
    };
    if w.steps.last().is_some_and(WalkStep::stops) {
        return w;
    }
    for target in walk_targets(domain).into_iter().skip(w.steps.len()) {
        let name = format!("_dmarc.{target}");
        let txt = match dns.txt(&name).await {
            Ok(txt) => txt,
            Err(e) => {
                w.failed = Some((name, e));
                return w;
            }
        };
        let step = WalkStep {
            domain: target,
            name,
            txt,
        };
        let first = w.steps.is_empty();
        let stop = step.stops() || (first && stop_at_own && step.record().is_some());
        w.steps.push(step);
        if stop {
            break;
        }
    }
    w
}

/// Selects the Organizational Domain of `domain` from a completed walk.
///
/// RFC 9989 §4.10.2: "For each Tree Walk that retrieved valid DMARC Policy Records, select the
/// Organizational Domain from the domains for which valid DMARC Policy Records were retrieved
/// from the longest to the shortest:
///
/// 1. If a valid DMARC Policy Record contains the "psd" tag set to "n" ("psd=n"), this is the
///    Organizational Domain, and the selection process is complete.
/// 2. If a valid DMARC Policy Record, other than the one for the domain where the tree walk
///    started, contains the "psd" tag set to "y" ("psd=y"), the Organizational Domain is the
///    domain one label below this one in the DNS hierarchy, and the selection process is
///    complete. […]
/// 3. Otherwise, select the DMARC Policy Record found at the name with the fewest number of
///    labels. This is the Organizational Domain and the selection process is complete.
///
/// If this process does not determine the Organizational Domain, then the initial target
/// domain is the Organizational Domain."
pub(super) fn select_org_domain(domain: &str, steps: &[WalkStep]) -> String {
    let found: Vec<&WalkStep> = steps.iter().filter(|s| s.record().is_some()).collect();
    if let Some(s) = found.iter().find(|s| s.psd() == Some(Psd::No)) {
        return s.domain.clone();
    }
    if let Some(s) = found
        .iter()
        .find(|s| s.psd() == Some(Psd::Yes) && s.domain != domain)
    {
        return one_label_below(domain, &s.domain);
    }
    // The walk goes from the longest name to the shortest: the last record has fewest labels.
    found
        .last()
        .map_or_else(|| domain.to_string(), |s| s.domain.clone())
}

/// The ancestor-or-self of `domain` that has one label more than `ancestor`.
fn one_label_below(domain: &str, ancestor: &str) -> String {
    let labels: Vec<&str> = domain.split('.').collect();
    let k = ancestor.split('.').count() + 1;
    if k > labels.len() {
        return domain.to_string();
    }
    labels[labels.len() - k..].join(".")
}

/// Decides the applicable policy from a walk that ran with `stop_at_own` and did not fail.
///
/// RFC 9989 §4.10.1: "The DMARC Policy Record to be applied to an email message will be the
/// record found at any of the following locations, listed from highest preference to lowest:
/// the Author Domain; the Organizational Domain of the Author Domain; the Public Suffix Domain
/// of the Author Domain. […] If the DMARC Policy Record to be applied is that of the Author
/// Domain, then the Domain Owner Assessment Policy is taken from the "p" tag of the record. If
/// the DMARC Policy Record to be applied is that of either the Organizational Domain or the
/// Public Suffix Domain and the Author Domain is a subdomain of that domain, then the Domain
/// Owner Assessment Policy is taken from the "sp" tag (if any) if the Author Domain exists, or
/// the "np" tag (if any) if the Author Domain does not exist. In the absence of applicable
/// "sp" or "np" tags, the "p" tag policy is used for subdomains."
///
/// An audited domain is taken to exist, so an inherited policy comes from `sp`.
pub(super) fn resolve(domain: &str, steps: Vec<WalkStep>) -> Discovery {
    let own = steps.first().filter(|s| s.record().is_some());
    if let Some(s) = own {
        let org_domain = s.stops().then(|| domain.to_string());
        let policy = applied(s, PolicySource::Own, PolicyTag::P);
        return Discovery {
            domain: domain.to_string(),
            policy,
            org_domain,
            steps,
        };
    }
    let org = select_org_domain(domain, &steps);
    let policy = if let Some(s) = steps
        .iter()
        .find(|s| s.domain == org && s.record().is_some())
    {
        applied(s, PolicySource::OrganizationalDomain, PolicyTag::Sp)
    } else if let Some(s) = steps.iter().find(|s| s.psd() == Some(Psd::Yes)) {
        applied(s, PolicySource::PublicSuffix, PolicyTag::Sp)
    } else {
        None
    };
    Discovery {
        domain: domain.to_string(),
        steps,
        policy,
        org_domain: Some(org),
    }
}

fn applied(step: &WalkStep, source: PolicySource, tag: PolicyTag) -> Option<AppliedPolicy> {
    let text = step.record()?.to_string();
    let (record, problems) = step.parsed()?;
    let policy = effective_policy(&record, &problems, tag);
    Some(AppliedPolicy {
        source,
        domain: step.domain.clone(),
        found_at: step.name.clone(),
        text,
        record,
        problems,
        tag,
        policy,
    })
}

/// The policy a receiver applies from `record` through `tag`.
///
/// RFC 9989 §4.10.1: "If a retrieved DMARC Policy Record does not contain a valid "p" tag, or
/// contains an "sp" or "np" tag that is not valid, then: If a "rua" tag is present and contains
/// at least one syntactically valid reporting URI, the Mail Receiver **MUST** act as if a
/// record containing "p=none" was retrieved and continue processing; Otherwise, the Mail
/// Receiver applies no DMARC processing to this message."
pub(super) fn effective_policy(
    record: &Record,
    problems: &[DmarcParseError],
    tag: PolicyTag,
) -> Option<Policy> {
    if record.p.is_none() || problems.iter().any(is_policy_problem) {
        return record.rua.iter().any(uri_syntax_ok).then_some(Policy::None);
    }
    match tag {
        PolicyTag::P => record.p,
        PolicyTag::Sp => record.subdomain_policy(),
        PolicyTag::Np => record.nonexistent_policy(),
    }
}

/// A syntactically valid URI in the RFC 3986 sense, as far as `scheme ":" rest` goes.
fn uri_syntax_ok(u: &Uri) -> bool {
    let Some((scheme, rest)) = u.uri.split_once(':') else {
        return false;
    };
    let mut b = scheme.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Discovers the DMARC policy that applies to `domain` (RFC 9989 §4.10.1), by the DNS Tree Walk.
///
/// Queries `_dmarc.<domain>`; if it holds exactly one DMARC record, that is the policy (`p`).
/// Otherwise walks up the tree (RFC 9989 §4.10; at most eight queries in all) and applies the
/// record of the Organizational Domain, or failing that of the Public Suffix Domain, through
/// `sp` (the domain is taken to exist). `Err` when any query the decision needs fails.
pub async fn discover<D: DnsSource>(dns: &D, domain: &str) -> Result<Discovery, DnsError> {
    let domain = normalize_name(domain);
    let w = walk(dns, &domain, Vec::new(), true).await;
    match w.failed {
        Some((_, e)) => Err(e),
        None => Ok(resolve(&domain, w.steps)),
    }
}

/// Determines the Organizational Domain of `domain` by the RFC 9989 DNS Tree Walk (§4.10.2).
///
/// With no DMARC record anywhere on the walk, the domain is its own Organizational Domain.
/// `Err` when any query of the walk fails.
pub async fn organizational_domain<D: DnsSource>(
    dns: &D,
    domain: &str,
) -> Result<String, DnsError> {
    let domain = normalize_name(domain);
    let w = walk(dns, &domain, Vec::new(), false).await;
    match w.failed {
        Some((_, e)) => Err(e),
        None => Ok(select_org_domain(&domain, &w.steps)),
    }
}

/// Whether `domain` belongs to the organisation whose Organizational Domain is `org_domain`:
/// it is that domain or one of its subdomains (case-insensitive, trailing dots ignored).
///
/// This is the pure half of the external-destination test of RFC 7489 §7.1 (RFC 9989 §11.5
/// defers to the aggregate reporting document): a report URI whose host is not at or under the
/// policy domain's Organizational Domain is certainly in another organisation, since every
/// domain's Organizational Domain is the domain itself or one of its parents. (A subdomain
/// that declares itself an Organizational Domain with `psd=n` is treated as inside.)
pub fn shares_org_domain(org_domain: &str, domain: &str) -> bool {
    let org = normalize_name(org_domain);
    let d = normalize_name(domain);
    !org.is_empty() && (d == org || d.strip_suffix(&org).is_some_and(|rest| rest.ends_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryDns, Rr};
    use pollster::block_on;

    fn targets(d: &str) -> Vec<String> {
        walk_targets(d)
    }

    #[test]
    fn walk_targets_follow_rfc9989_section_4_10() {
        assert_eq!(targets("com"), ["com"]);
        assert_eq!(targets("example.com"), ["example.com", "com"]);
        assert_eq!(
            targets("a.mail.example.com"),
            [
                "a.mail.example.com",
                "mail.example.com",
                "example.com",
                "com"
            ]
        );
        // 7 labels: walked one by one (7 queries).
        assert_eq!(targets("a.b.c.d.e.example.com").len(), 7);
        // 8 labels: "If x >= 8 … until 7 labels remain" — the same as removing one.
        let t8 = targets("a.b.c.d.e.f.example.com");
        assert_eq!(t8.len(), 8);
        assert_eq!(t8[1], "b.c.d.e.f.example.com");
        // RFC 9989 §4.10's own example: 13 labels, eight queries.
        assert_eq!(
            targets("a.b.c.d.e.f.g.h.i.j.mail.example.com"),
            [
                "a.b.c.d.e.f.g.h.i.j.mail.example.com",
                "g.h.i.j.mail.example.com",
                "h.i.j.mail.example.com",
                "i.j.mail.example.com",
                "j.mail.example.com",
                "mail.example.com",
                "example.com",
                "com",
            ]
        );
    }

    #[test]
    fn own_record_is_the_policy_after_one_query() {
        let dns = MemoryDns::new()
            .txt_at("_dmarc.example.com", "v=DMARC1; p=reject")
            .txt_at("_dmarc.example.com", "google-site-verification=abc");
        let d = block_on(discover(&dns, "Example.COM.")).unwrap();
        let p = d.policy.unwrap();
        assert_eq!(p.source, PolicySource::Own);
        assert_eq!(p.found_at, "_dmarc.example.com");
        assert_eq!(p.text, "v=DMARC1; p=reject");
        assert_eq!((p.tag, p.policy), (PolicyTag::P, Some(Policy::Reject)));
        assert!(!p.inherited());
        assert_eq!(d.org_domain, None);
        assert_eq!(dns.queries(), ["TXT _dmarc.example.com"]);
    }

    #[test]
    fn subdomain_inherits_sp_from_organizational_domain() {
        let dns = MemoryDns::new()
            .txt_at("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine")
            .txt_at("_dmarc.mail.example.com", "not dmarc");
        let d = block_on(discover(&dns, "a.mail.example.com")).unwrap();
        let p = d.policy.unwrap();
        assert_eq!(p.source, PolicySource::OrganizationalDomain);
        assert_eq!(p.found_at, "_dmarc.example.com");
        assert_eq!((p.tag, p.policy), (PolicyTag::Sp, Some(Policy::Quarantine)));
        assert_eq!(d.org_domain.as_deref(), Some("example.com"));
        assert_eq!(
            dns.queries(),
            [
                "TXT _dmarc.a.mail.example.com",
                "TXT _dmarc.mail.example.com",
                "TXT _dmarc.example.com",
                "TXT _dmarc.com"
            ]
        );
        // Without sp, p applies to subdomains.
        let dns = MemoryDns::new().txt_at("_dmarc.example.com", "v=DMARC1; p=quarantine");
        let p = block_on(discover(&dns, "x.example.com"))
            .unwrap()
            .policy
            .unwrap();
        assert_eq!(p.policy, Some(Policy::Quarantine));
    }

    #[test]
    fn the_highest_record_is_the_organizational_domain() {
        // RFC 9989 §4.10.2: records at mail.example.com and example.com → example.com.
        let dns = MemoryDns::new()
            .txt_at("_dmarc.mail.example.com", "v=DMARC1; p=none")
            .txt_at("_dmarc.example.com", "v=DMARC1; p=reject");
        let d = block_on(discover(&dns, "a.mail.example.com")).unwrap();
        assert_eq!(d.org_domain.as_deref(), Some("example.com"));
        assert_eq!(d.policy.unwrap().found_at, "_dmarc.example.com");
        assert_eq!(
            block_on(organizational_domain(&dns, "a.mail.example.com")).unwrap(),
            "example.com"
        );
        // psd=n at mail.example.com: it is its own Organizational Domain, and the walk stops.
        let dns = MemoryDns::new()
            .txt_at("_dmarc.mail.example.com", "v=DMARC1; p=none; psd=n")
            .txt_at("_dmarc.example.com", "v=DMARC1; p=reject");
        let d = block_on(discover(&dns, "a.mail.example.com")).unwrap();
        assert_eq!(d.org_domain.as_deref(), Some("mail.example.com"));
        assert_eq!(d.policy.unwrap().policy, Some(Policy::None));
        assert_eq!(dns.queries().len(), 2);
    }

    #[test]
    fn rfc9989_psd_example() {
        // RFC 9989 Appendix B.4.3: bank.example publishes psd=y.
        let dns = MemoryDns::new()
            .txt_at("_dmarc.bank.example", "v=DMARC1; p=reject; psd=y")
            .txt_at("_dmarc.giant.bank.example", "v=DMARC1; p=quarantine");
        let org = |d| block_on(organizational_domain(&dns, d)).unwrap();
        assert_eq!(org("giant.bank.example"), "giant.bank.example");
        assert_eq!(org("mail.giant.bank.example"), "giant.bank.example");
        assert_eq!(org("mail.mega.bank.example"), "mega.bank.example");
        assert_eq!(org("bank.example"), "bank.example");
        // The walk stopped at the psd=y record: _dmarc.example was never asked.
        assert!(!dns.queries().contains(&"TXT _dmarc.example".to_string()));

        // giant.bank.example's subdomains inherit its record, not the PSD's.
        let d = block_on(discover(&dns, "mail.giant.bank.example")).unwrap();
        let p = d.policy.unwrap();
        assert_eq!(
            (p.source, p.found_at.as_str()),
            (
                PolicySource::OrganizationalDomain,
                "_dmarc.giant.bank.example"
            )
        );
        // mega.bank.example publishes nothing: the PSD's policy applies.
        let d = block_on(discover(&dns, "mail.mega.bank.example")).unwrap();
        assert_eq!(d.org_domain.as_deref(), Some("mega.bank.example"));
        let p = d.policy.unwrap();
        assert_eq!(
            (p.source, p.found_at.as_str()),
            (PolicySource::PublicSuffix, "_dmarc.bank.example")
        );
        assert_eq!(p.policy, Some(Policy::Reject));
        // A PSD auditing itself uses its own p.
        let p = block_on(discover(&dns, "bank.example"))
            .unwrap()
            .policy
            .unwrap();
        assert_eq!(p.source, PolicySource::Own);
    }

    #[test]
    fn no_record_anywhere() {
        let dns = MemoryDns::new();
        let d = block_on(discover(&dns, "a.example.com")).unwrap();
        assert_eq!(d.policy, None);
        assert_eq!(d.org_domain.as_deref(), Some("a.example.com"));
        assert_eq!(d.steps.len(), 3);
        assert_eq!(
            block_on(organizational_domain(&dns, "a.example.com")).unwrap(),
            "a.example.com"
        );
    }

    #[test]
    fn long_names_take_the_seven_label_shortcut() {
        let dns = MemoryDns::new().txt_at("_dmarc.example.com", "v=DMARC1; p=reject");
        let d = block_on(discover(&dns, "a.b.c.d.e.f.g.h.i.j.k.example.com")).unwrap();
        assert_eq!(d.policy.unwrap().found_at, "_dmarc.example.com");
        let q = dns.queries();
        assert_eq!(q.len(), MAX_WALK_QUERIES);
        assert_eq!(q[1], "TXT _dmarc.g.h.i.j.k.example.com");
        assert_eq!(q[7], "TXT _dmarc.com");
        // A record at a skipped name is never seen (RFC 9989 §5.1.7's warning).
        let dns = MemoryDns::new().txt_at("_dmarc.b.c.d.e.f.g.example.com", "v=DMARC1; p=reject");
        let d = block_on(discover(&dns, "mail.a.b.c.d.e.f.g.example.com")).unwrap();
        assert_eq!(d.policy, None);
    }

    #[test]
    fn multiple_records_are_all_discarded_and_the_walk_goes_on() {
        let dns = MemoryDns::new()
            .txt_at("_dmarc.sub.example.com", "v=DMARC1; p=none")
            .txt_at("_dmarc.sub.example.com", "v=DMARC1; p=reject")
            .txt_at("_dmarc.example.com", "v=DMARC1; p=quarantine");
        let d = block_on(discover(&dns, "sub.example.com")).unwrap();
        assert!(d.steps[0].is_multiple());
        let p = d.policy.unwrap();
        assert_eq!(p.found_at, "_dmarc.example.com");
        assert_eq!(p.policy, Some(Policy::Quarantine));
    }

    #[test]
    fn dns_failure_at_any_step_is_an_error() {
        for failing in ["_dmarc.a.example.com", "_dmarc.example.com", "_dmarc.com"] {
            let dns = MemoryDns::new()
                .txt_at("_dmarc.example.com", "v=DMARC1; p=reject")
                .with(failing, Rr::Fail(DnsError::Timeout));
            assert_eq!(
                block_on(discover(&dns, "a.example.com")),
                Err(DnsError::Timeout),
                "{failing}"
            );
            assert_eq!(
                block_on(organizational_domain(&dns, "a.example.com")),
                Err(DnsError::Timeout),
                "{failing}"
            );
        }
        // A failure above the domain's own record does not matter to discovery.
        let dns = MemoryDns::new()
            .txt_at("_dmarc.example.com", "v=DMARC1; p=reject")
            .with("_dmarc.com", Rr::Fail(DnsError::ServFail));
        assert!(
            block_on(discover(&dns, "example.com"))
                .unwrap()
                .policy
                .is_some()
        );
        assert_eq!(
            block_on(organizational_domain(&dns, "example.com")),
            Err(DnsError::ServFail)
        );
    }

    #[test]
    fn invalid_policy_falls_back_per_rfc9989() {
        let cases = [
            ("v=DMARC1; p=reject", Some(Policy::Reject)),
            (
                "v=DMARC1; p=bogus; rua=mailto:d@example.com",
                Some(Policy::None),
            ),
            (
                "v=DMARC1; p=bogus; rua=https://example.com/r",
                Some(Policy::None),
            ),
            ("v=DMARC1; p=bogus", None),
            ("v=DMARC1; rua=mailto:d@example.com", Some(Policy::None)),
            ("v=DMARC1", None),
            (
                "v=DMARC1; p=reject; sp=bad; rua=mailto:d@example.com",
                Some(Policy::None),
            ),
            ("v=DMARC1; p=reject; np=bad", None),
            ("v=DMARC1; p=reject; adkim=x", Some(Policy::Reject)),
        ];
        for (txt, want) in cases {
            let (r, problems) = parse_lenient(txt).unwrap();
            assert_eq!(effective_policy(&r, &problems, PolicyTag::P), want, "{txt}");
        }
        let (r, problems) = parse_lenient("v=DMARC1; p=reject; sp=none; np=quarantine").unwrap();
        assert_eq!(
            effective_policy(&r, &problems, PolicyTag::Sp),
            Some(Policy::None)
        );
        assert_eq!(
            effective_policy(&r, &problems, PolicyTag::Np),
            Some(Policy::Quarantine)
        );
    }

    #[test]
    fn org_domain_membership() {
        for (org, d, want) in [
            ("example.com", "example.com", true),
            ("example.com", "Reports.Example.com.", true),
            ("example.com", "badexample.com", false),
            ("example.com", "example.net", false),
            ("mail.example.com", "example.com", false),
            ("", "example.com", false),
        ] {
            assert_eq!(shares_org_domain(org, d), want, "{org} {d}");
        }
    }
}
