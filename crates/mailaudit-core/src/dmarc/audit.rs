//! The DMARC audit of one domain: discovery, then every `DMARC-*` check of `docs/checks.md` on the
//! record that applies, each finding carrying the corrected record as its fix where one can
//! be computed.
//!
//! Findings about the record's tags are raised on the record that applies to the domain,
//! whether its own or inherited from its Organizational Domain (the fix then names the
//! Organizational Domain's `_dmarc` record). A policy that comes only from a Public Suffix
//! Domain (`psd=y`) is not the domain owner's: the domain is reported DMARC-MISSING. A failed
//! look-up withholds the verdict it would have fed (DNS-LOOKUP-FAILED), never DMARC-MISSING.

use serde::Serialize;

use super::discover::{
    AppliedPolicy, PolicySource, PolicyTag, WalkStep, resolve, select_org_domain, walk,
};
use super::parse::{DmarcParseError, is_dmarc_record, parse_lenient};
use super::{Policy, Record, Uri, propose, propose_next, shares_org_domain};
use crate::checks::{Area, CheckId};
use crate::dns::{DnsError, DnsSource, normalize_name};
use crate::finding::Finding;

/// What the DMARC audit found for one domain (the `dmarc` object of the JSON report).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DmarcSummary {
    /// The record that applies to the domain, verbatim.
    pub record: Option<String>,
    /// The policy that applies to the domain: `none`, `quarantine` or `reject` (after RFC 9989's
    /// rules for invalid records; `null` when no DMARC policy applies).
    pub policy: Option<String>,
    /// The name the record was read at (`_dmarc.example.com`).
    pub found_at: Option<String>,
    /// The domain where the record is published (the DMARC Policy Domain).
    pub policy_domain: Option<String>,
    /// Whether the record is inherited (from the Organizational Domain or the Public Suffix
    /// Domain) rather than the domain's own.
    pub inherited: bool,
    /// The tag the policy comes from: `p` for the domain's own record, `sp` for an inherited one.
    pub applied_tag: Option<String>,
    /// The domain's Organizational Domain (RFC 9989 tree walk), when it could be determined.
    pub org_domain: Option<String>,
    /// The record as receivers read it.
    pub parsed: Option<Record>,
    /// Whether a look-up needed for the policy verdict failed (the verdict is withheld).
    pub lookup_failed: bool,
}

/// The next phase of the DMARC roll-out for `record`: `p` raised one step (none → quarantine →
/// reject; a record without a valid `p` counts as `p=none`), every other tag kept (`rua`
/// first of all). `None` when `p=reject` already.
///
/// RFC 9989 §7.6: domains "wishing to publish "p=reject" **SHOULD** first take advantage of
/// DMARC aggregate report data for their domain to determine the possible impact to their
/// users, first by publishing "p=none" for at least a month, followed by publishing
/// "p=quarantine" for an equally long period of time, and comparing the message disposition
/// results."
///
/// `sp` and `np` are left as published (a weaker one is DMARC-SUBDOMAIN-WEAK's business), and
/// so is `t` (DMARC-TESTING's).
pub fn next_phase(record: &Record) -> Option<Record> {
    let next = record.p.unwrap_or(Policy::None).next()?;
    Some(Record {
        p: Some(next),
        ..record.clone()
    })
}

/// Audits the DMARC policy of `domain`: the summary and the findings (area `dmarc`).
///
/// Queries `_dmarc.<domain>` and, when it holds no single DMARC record, walks up the tree as
/// RFC 9989 §4.10 says; for a domain with its own record, the walk continues to find its
/// Organizational Domain; and for each report address in another Organizational Domain it
/// queries the authorisation record `<policy domain>._report._dmarc.<destination>`
/// (RFC 7489 §7.1).
pub async fn audit<D: DnsSource>(dns: &D, domain: &str) -> (DmarcSummary, Vec<Finding>) {
    let domain = normalize_name(domain);
    let mut summary = DmarcSummary::default();
    let mut findings = Vec::new();

    let w = walk(dns, &domain, Vec::new(), true).await;
    step_findings(&w.steps, &mut findings);
    if let Some((name, e)) = &w.failed {
        summary.lookup_failed = true;
        findings.push(Finding::lookup_failed(
            Area::Dmarc,
            &format!("TXT {name}"),
            e,
        ));
        return (summary, findings);
    }
    let disc = resolve(&domain, w.steps);
    summary.org_domain.clone_from(&disc.org_domain);
    let Some(ap) = disc.policy.clone() else {
        findings.push(missing(
            &domain,
            disc.org_domain.as_deref(),
            &disc.steps,
            None,
        ));
        return (summary, findings);
    };
    summary.record = Some(ap.text.clone());
    summary.policy = ap.policy.map(|p| p.as_str().to_string());
    summary.found_at = Some(ap.found_at.clone());
    summary.policy_domain = Some(ap.domain.clone());
    summary.inherited = ap.inherited();
    summary.applied_tag = Some(ap.tag.as_str().to_string());
    summary.parsed = Some(ap.record.clone());
    if ap.source == PolicySource::PublicSuffix {
        findings.push(missing(
            &domain,
            disc.org_domain.as_deref(),
            &disc.steps,
            Some(&ap),
        ));
        return (summary, findings);
    }

    // The Organizational Domain of the policy domain: for an inherited record, the policy
    // domain is the Organizational Domain; for the domain's own record, walk on.
    let org: Result<String, (String, DnsError)> = match (&ap.source, &disc.org_domain) {
        (PolicySource::Own, None) => {
            let w = walk(dns, &domain, disc.steps.clone(), false).await;
            match w.failed {
                Some(failed) => Err(failed),
                None => Ok(select_org_domain(&domain, &w.steps)),
            }
        }
        _ => Ok(ap.domain.clone()),
    };
    if let Ok(o) = &org {
        summary.org_domain = Some(o.clone());
    }

    record_findings(
        &domain,
        &ap,
        org.as_ref().ok().map(String::as_str),
        &mut findings,
    );
    authorization_findings(dns, &ap, &org, &mut findings).await;
    (summary, findings)
}

/// `name. TXT "value"`, the form every computed fix takes.
fn txt_fix(name: &str, value: &impl std::fmt::Display) -> String {
    let v = value.to_string().replace('\\', "\\\\").replace('"', "\\\"");
    format!("{name}. TXT \"{v}\"")
}

/// A TXT record at a `_dmarc` name that was meant as a DMARC record but is not one: it has a
/// `v=` first tag (e.g. `v=spf1`, `v=dmarc1`) or mentions DMARC.
fn looks_like_dmarc(txt: &str) -> bool {
    let t = txt.trim_start();
    let first = t.split([';', ' ', '\t']).next().unwrap_or("");
    txt.to_ascii_lowercase().contains("dmarc")
        || first
            .split_once('=')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("v"))
}

/// Repairs the commonest ways a DMARC record fails to be one: a misspelt `v=dmarc1`, tags
/// separated by spaces instead of `;`. `None` if that does not give a record with a `p`.
fn repair(txt: &str) -> Option<Record> {
    let mut tokens: Vec<String> = Vec::new();
    for seg in txt.trim().split(';') {
        if seg.matches('=').count() > 1 {
            tokens.extend(seg.split_whitespace().map(str::to_string));
        } else {
            tokens.push(seg.to_string());
        }
    }
    let first = tokens.first_mut()?;
    let (name, value) = first.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("v") || !value.trim().eq_ignore_ascii_case("dmarc1") {
        return None;
    }
    *first = "v=DMARC1".to_string();
    let (record, _) = parse_lenient(&tokens.join(";")).ok()?;
    record.p.is_some().then_some(record)
}

/// DMARC-MULTIPLE and the DMARC-SYNTAX of would-be records, for every name the walk read.
fn step_findings(steps: &[WalkStep], findings: &mut Vec<Finding>) {
    for step in steps {
        let recs = step.dmarc_records();
        if recs.len() > 1 {
            findings.push(
                Finding::new(
                    CheckId::DmarcMultiple,
                    format!(
                        "{} DMARC records at {}: receivers discard all of them (RFC 9989 §4.10 \
                         step 2) and look further up the tree",
                        recs.len(),
                        step.name
                    ),
                )
                .with_evidence(recs.join("\n"))
                .with_fix(format!(
                    "Delete all but one of the {} TXT records at {} that start with v=DMARC1",
                    recs.len(),
                    step.name
                )),
            );
        } else if recs.is_empty() {
            for txt in step.txt.iter().filter(|t| looks_like_dmarc(t)) {
                let why = match parse_lenient(txt) {
                    Err(e) => e.to_string(),
                    Ok(_) => "not a DMARC record".to_string(),
                };
                let mut f = Finding::new(
                    CheckId::DmarcSyntax,
                    format!(
                        "the TXT record at {} is not a DMARC record: {why}; receivers ignore it",
                        step.name
                    ),
                )
                .with_evidence(txt.clone());
                if let Some(r) = repair(txt) {
                    f = f.with_fix(txt_fix(&step.name, &r));
                }
                findings.push(f);
            }
        }
    }
}

/// DMARC-MISSING, with what the walk saw instead of a policy.
fn missing(
    domain: &str,
    org: Option<&str>,
    steps: &[WalkStep],
    psd: Option<&AppliedPolicy>,
) -> Finding {
    let org = org.unwrap_or(domain);
    let mut detail = if org == domain {
        format!("no DMARC record at _dmarc.{domain}")
    } else {
        format!(
            "no DMARC record at _dmarc.{domain} nor at its organizational domain's _dmarc.{org}"
        )
    };
    let mut ignored = Vec::new();
    for s in steps {
        let n = s.dmarc_records().len();
        if n > 1 {
            ignored.push(format!(
                "the {n} records at {} are all ignored (DMARC-MULTIPLE)",
                s.name
            ));
        } else if n == 0 && s.txt.iter().any(|t| looks_like_dmarc(t)) {
            ignored.push(format!(
                "the TXT record at {} is not a DMARC record (DMARC-SYNTAX)",
                s.name
            ));
        }
    }
    if !ignored.is_empty() {
        detail.push_str(&format!(" ({})", ignored.join("; ")));
    }
    match psd {
        Some(ap) => detail.push_str(&format!(
            "; only the public suffix policy at {} applies ({}={})",
            ap.found_at,
            ap.tag,
            ap.policy.map_or("no policy", Policy::as_str)
        )),
        None => detail.push_str(&format!(
            "; receivers apply no DMARC policy to mail from {domain}"
        )),
    }
    let own = steps.first().filter(|s| s.domain == domain);
    let evidence = own.map(|s| s.txt.join("\n")).filter(|e| !e.is_empty());
    let repaired = own.and_then(|s| {
        s.txt
            .iter()
            .filter(|t| looks_like_dmarc(t))
            .find_map(|t| repair(t))
            .map(|r| (s, r))
    });
    let fix = match repaired {
        Some((s, r)) if s.dmarc_records().is_empty() => txt_fix(&s.name, &r),
        _ if own.is_some_and(WalkStep::is_multiple) => format!(
            "Delete all but one of the TXT records at _dmarc.{domain} that start with v=DMARC1"
        ),
        _ => {
            let rua = Uri::new(&format!("mailto:dmarc-reports@{org}"));
            txt_fix(&format!("_dmarc.{org}"), &propose(None, Policy::None, &rua))
        }
    };
    let f = Finding::new(CheckId::DmarcMissing, detail).with_fix(fix);
    match evidence {
        Some(e) => f.with_evidence(e),
        None => f,
    }
}

/// The record with an invalid or missing `p` replaced by a guess at what was meant, and
/// every other invalid part dropped.
fn repaired_record(ap: &AppliedPolicy) -> Record {
    let mut r = ap.record.clone();
    if r.p.is_none() {
        let typed = ap.problems.iter().find_map(|e| match e {
            DmarcParseError::InvalidValue { tag, value, .. } if tag == "p" => {
                Some(value.to_ascii_lowercase())
            }
            _ => None,
        });
        r.p = Some(match typed.as_deref().and_then(|v| v.chars().next()) {
            Some('r') => Policy::Reject,
            Some('q') => Policy::Quarantine,
            _ => Policy::None,
        });
    }
    r
}

/// The findings about the applicable record's tags.
fn record_findings(
    domain: &str,
    ap: &AppliedPolicy,
    org: Option<&str>,
    findings: &mut Vec<Finding>,
) {
    let at = ap.found_at.as_str();
    let r = &ap.record;
    let finding =
        |id: CheckId, detail: String| Finding::new(id, detail).with_evidence(ap.text.clone());
    let whose = if ap.inherited() {
        format!("{domain} inherits the record at {at}")
    } else {
        at.to_string()
    };

    // DMARC-SYNTAX.
    let mut issues: Vec<String> = ap.problems.iter().map(ToString::to_string).collect();
    if r.p.is_none() && !ap.problems.iter().any(|e| e.tag() == Some("p")) {
        issues.push(
            "there is no p tag (RFC 7489 §6.3 requires it; RFC 9989 receivers read the record \
             as p=none only when rua holds a valid URI)"
                .into(),
        );
    }
    if !issues.is_empty() {
        let duplicate = ap
            .problems
            .iter()
            .any(|e| matches!(e, DmarcParseError::DuplicateTag { .. }));
        let consequence = match (ap.is_fallback(), ap.policy) {
            (true, Some(_)) => "receivers treat the record as p=none",
            (true, None) => "receivers apply no DMARC policy",
            (false, _) if duplicate => {
                "receivers may read either value, or discard the whole record (RFC 6376 §3.2)"
            }
            (false, _) => "receivers ignore the invalid parts",
        };
        findings.push(
            finding(
                CheckId::DmarcSyntax,
                format!("{whose}: {}; {consequence}", issues.join("; ")),
            )
            .with_fix(txt_fix(at, &repaired_record(ap))),
        );
    }
    // With an invalid p/sp/np the policy is RFC 9989's fallback: DMARC-SYNTAX says it all.
    if ap.is_fallback() {
        return;
    }

    // DMARC-POLICY-NONE / DMARC-POLICY-QUARANTINE.
    let applied = ap.policy;
    let id = match applied {
        Some(Policy::None) => Some(CheckId::DmarcPolicyNone),
        Some(Policy::Quarantine) => Some(CheckId::DmarcPolicyQuarantine),
        _ => None,
    };
    if let (Some(id), Some(policy)) = (id, applied) {
        let consequence = match policy {
            Policy::None => "receivers take no action on mail that fails DMARC (monitoring only)",
            _ => "failing mail goes to spam rather than being rejected",
        };
        let detail = if ap.inherited() {
            format!(
                "{domain} inherits {}={policy} from {at}: {consequence}",
                effective_tag(ap)
            )
        } else {
            format!("p={policy} at {at}: {consequence}")
        };
        // The one record builder of every proposal ([`propose`]): the domain's tags kept
        // (`rua` first of all), what would make the next phase partial dropped.
        let rua = Uri::new(&format!("mailto:dmarc-reports@{}", ap.domain));
        let next = if ap.tag == PolicyTag::Sp && r.sp.is_some() {
            r.sp.and_then(Policy::next).map(|sp| Record {
                sp: Some(sp),
                ..propose(Some(r), r.p.unwrap_or(Policy::None), &rua)
            })
        } else {
            propose_next(r, &rua)
        };
        let mut f = finding(id, detail);
        if let Some(next) = next {
            f = f.with_fix(txt_fix(at, &next));
        }
        findings.push(f);
    }
    let enforcing = applied.is_some_and(|p| p != Policy::None);

    // DMARC-PCT-PARTIAL (pct has no effect on p=none).
    if let Some(pct) = r.pct.filter(|&p| p < 100 && enforcing) {
        let note = if pct == 0 {
            "; many receivers read pct=0 as a request not to apply it at all, as RFC 9989's t=y"
        } else {
            ""
        };
        findings.push(
            finding(
                CheckId::DmarcPctPartial,
                format!(
                    "pct={pct} at {at}: RFC 7489 receivers apply the policy to only {pct}% of \
                     failing mail{note}"
                ),
            )
            .with_fix(txt_fix(
                at,
                &Record {
                    pct: None,
                    ..r.clone()
                },
            )),
        );
    }

    // DMARC-TESTING (t has no effect on p=none).
    if r.testing() && enforcing {
        let degraded = match applied {
            Some(Policy::Reject) => "quarantine instead of reject",
            _ => "none instead of quarantine",
        };
        findings.push(
            finding(
                CheckId::DmarcTesting,
                format!(
                    "t=y at {at}: testing mode, RFC 9989 receivers apply {degraded} to failing mail"
                ),
            )
            .with_fix(txt_fix(
                at,
                &Record {
                    t: None,
                    ..r.clone()
                },
            )),
        );
    }

    // DMARC-SUBDOMAIN-WEAK: sp/np only matter on an Organizational Domain's record.
    let governs_subdomains = ap.inherited() || org.is_none_or(|o| o == ap.domain);
    if let (Some(p), true) = (r.p, governs_subdomains) {
        let mut weak = Vec::new();
        let mut fixed = r.clone();
        if let Some(sp) = r.sp.filter(|&sp| sp < p) {
            weak.push(format!("sp={sp}"));
            fixed.sp = None;
        }
        if let Some(np) = r.np.filter(|&np| np < p) {
            weak.push(format!("np={np}"));
            fixed.np = None;
        } else if r.np.is_none() && r.sp.is_some_and(|sp| sp < p) {
            weak.push(format!(
                "np (defaults to sp={})",
                r.sp.map_or("", Policy::as_str)
            ));
        }
        if !weak.is_empty() {
            findings.push(
                finding(
                    CheckId::DmarcSubdomainWeak,
                    format!(
                        "{} weaker than p={p} at {at}: spoofed mail from subdomains of {} gets \
                         the weaker treatment",
                        weak.join(" and "),
                        ap.domain
                    ),
                )
                .with_fix(txt_fix(at, &fixed)),
            );
        }
    }

    // DMARC-RUA-INVALID.
    let bad: Vec<String> = [("rua", &r.rua), ("ruf", &r.ruf)]
        .into_iter()
        .flat_map(|(tag, uris)| {
            uris.iter()
                .filter_map(move |u| u.check().err().map(|why| format!("{tag} `{u}`: {why}")))
        })
        .collect();
    if !bad.is_empty() {
        let fixed = Record {
            rua: r.rua.iter().filter_map(fix_uri).collect(),
            ruf: r.ruf.iter().filter_map(fix_uri).collect(),
            ..r.clone()
        };
        findings.push(
            finding(
                CheckId::DmarcRuaInvalid,
                format!("{at}: {}; receivers send no reports there", bad.join("; ")),
            )
            .with_fix(txt_fix(at, &fixed)),
        );
    }

    // DMARC-NO-RUA.
    if !r.has_valid_rua() {
        let detail = if r.rua.is_empty() {
            format!(
                "{whose}, which has no rua tag: no receiver sends aggregate reports, so nobody \
                 sees who sends mail as {}",
                ap.domain
            )
        } else {
            format!("{whose}, whose rua holds no valid mailto: URI: no aggregate reports arrive")
        };
        let rua = vec![Uri::new(&format!("mailto:dmarc-reports@{}", ap.domain))];
        findings.push(
            finding(CheckId::DmarcNoRua, detail)
                .with_fix(txt_fix(at, &Record { rua, ..r.clone() })),
        );
    }

    // DMARC-DEPRECATED-TAG.
    let old = r.deprecated_tags();
    if !old.is_empty() {
        let t = if r.pct == Some(0) && r.t.is_none() {
            Some(true)
        } else {
            r.t
        };
        let fixed = Record {
            pct: None,
            rf: None,
            ri: None,
            t,
            ..r.clone()
        };
        let pct0 = if r.pct == Some(0) {
            " (t=y is RFC 9989's replacement for pct=0)"
        } else {
            ""
        };
        findings.push(
            finding(
                CheckId::DmarcDeprecatedTag,
                format!(
                    "{at} uses {}, removed by RFC 9989: its receivers ignore them{pct0}",
                    old.join(", ")
                ),
            )
            .with_fix(txt_fix(at, &fixed)),
        );
    }
}

/// `sp` or `p`, whichever gave an inherited policy.
fn effective_tag(ap: &AppliedPolicy) -> &'static str {
    match ap.tag {
        PolicyTag::Sp if ap.record.sp.is_some() => "sp",
        PolicyTag::Np if ap.record.np.is_some() => "np",
        PolicyTag::Np if ap.record.sp.is_some() => "sp",
        _ => "p",
    }
}

/// A valid version of `u`: the `mailto:` prefix added to a bare address, an invalid size
/// suffix dropped; `None` if neither helps.
fn fix_uri(u: &Uri) -> Option<Uri> {
    let uri = if !u.uri.contains(':') && u.uri.contains('@') {
        format!("mailto:{}", u.uri)
    } else {
        u.uri.clone()
    };
    [
        Uri {
            uri: uri.clone(),
            size: u.size.clone(),
        },
        Uri { uri, size: None },
    ]
    .into_iter()
    .find(Uri::is_valid_mailto)
}

/// DMARC-RUA-UNAUTHORIZED for report addresses in other organisations.
///
/// RFC 7489 §7.1 (kept by the aggregate reporting document RFC 9989 §11.5 refers to):
/// "1. Extract the host portion of the authority component of the URI. Call this the
/// "destination host", as it refers to a Report Receiver. 2. Prepend the string
/// "_report._dmarc". 3. Prepend the domain name from which the policy was retrieved, after
/// conversion to an A-label if needed. 4. Query the DNS for a TXT record at the constructed
/// name. […] 6. If the result includes no TXT resource records that pass basic parsing, a
/// positive determination of the external reporting relationship cannot be made; stop.
/// 7. If at least one TXT resource record remains in the set after parsing, then the external
/// reporting arrangement was authorized by the Report Receiver."
async fn authorization_findings<D: DnsSource>(
    dns: &D,
    ap: &AppliedPolicy,
    org: &Result<String, (String, DnsError)>,
    findings: &mut Vec<Finding>,
) {
    // Destination hosts outside the policy domain, each with its addresses, in order.
    let mut dests: Vec<(String, Vec<String>)> = Vec::new();
    for (tag, u) in ap
        .record
        .rua
        .iter()
        .map(|u| ("rua", u))
        .chain(ap.record.ruf.iter().map(|u| ("ruf", u)))
    {
        let (Some(addr), Some(host)) = (u.mailto(), u.mailto_domain()) else {
            continue;
        };
        if shares_org_domain(&ap.domain, &host) {
            continue;
        }
        let entry = format!("{tag}={addr}");
        match dests.iter_mut().find(|(h, _)| *h == host) {
            Some((_, v)) => {
                if !v.contains(&entry) {
                    v.push(entry);
                }
            }
            None => dests.push((host, vec![entry])),
        }
    }
    if dests.is_empty() {
        return;
    }
    let org = match org {
        Ok(o) => o,
        Err((name, e)) => {
            findings.push(Finding::lookup_failed(
                Area::Dmarc,
                &format!("TXT {name}"),
                e,
            ));
            return;
        }
    };
    for (host, addrs) in dests {
        if shares_org_domain(org, &host) {
            continue;
        }
        let q = format!("{}._report._dmarc.{host}", ap.domain);
        match dns.txt(&q).await {
            Err(e) => findings.push(Finding::lookup_failed(Area::Dmarc, &format!("TXT {q}"), &e)),
            Ok(txt) if txt.iter().any(|t| is_dmarc_record(t)) => {}
            Ok(txt) => {
                let mut f = Finding::new(
                    CheckId::DmarcRuaUnauthorized,
                    format!(
                        "{} at {} is outside {org}, and {host} publishes no v=DMARC1 record at {q}: \
                         receivers send those reports nowhere",
                        addrs.join(", "),
                        ap.found_at
                    ),
                )
                .with_evidence(ap.text.clone())
                .with_fix(format!(
                    "Have the operator of {host} publish {} (or send reports to an address in {org})",
                    txt_fix(&q, &"v=DMARC1;")
                ));
                if !txt.is_empty() {
                    f.evidence = Some(format!("{}\n{q}: {}", ap.text, txt.join(" | ")));
                }
                findings.push(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Severity;
    use crate::memory::{MemoryDns, Rr};
    use pollster::block_on;

    fn run(dns: &MemoryDns, domain: &str) -> (DmarcSummary, Vec<Finding>) {
        block_on(audit(dns, domain))
    }

    fn at(records: &[&str]) -> MemoryDns {
        records
            .iter()
            .fold(MemoryDns::new(), |d, r| d.txt_at("_dmarc.example.com", r))
    }

    fn ids(f: &[Finding]) -> Vec<CheckId> {
        f.iter().map(|f| f.id).collect()
    }

    fn get(f: &[Finding], id: CheckId) -> &Finding {
        f.iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no {id} in {f:#?}"))
    }

    /// One fixture per check: (records at _dmarc.example.com, raised?).
    fn check(id: CheckId, cases: &[(&[&str], bool)]) {
        for (records, raised) in cases {
            let (_, f) = run(&at(records), "example.com");
            assert_eq!(
                ids(&f).contains(&id),
                *raised,
                "{id} for {records:?}: {f:#?}"
            );
            assert!(f.iter().all(|f| f.area == Area::Dmarc));
        }
    }

    #[test]
    fn clean_record_has_no_findings() {
        let (s, f) = run(
            &at(&["v=DMARC1; p=reject; rua=mailto:dmarc@example.com"]),
            "example.com",
        );
        assert_eq!(f, vec![]);
        assert_eq!(s.policy.as_deref(), Some("reject"));
        assert_eq!(s.found_at.as_deref(), Some("_dmarc.example.com"));
        assert_eq!(s.org_domain.as_deref(), Some("example.com"));
        assert!(!s.inherited);
        assert_eq!(s.applied_tag.as_deref(), Some("p"));
    }

    #[test]
    fn dmarc_missing() {
        check(
            CheckId::DmarcMissing,
            &[
                (&[], true),
                (&["google-site-verification=x"], true),
                (&["v=DMARC1; p=none"], false),
            ],
        );
        let (s, f) = run(&MemoryDns::new(), "Example.com");
        assert_eq!(ids(&f), [CheckId::DmarcMissing]);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(
            f[0].fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com\""
        );
        assert_eq!(s.policy, None);
        assert_eq!(s.org_domain.as_deref(), Some("example.com"));
        // A subdomain covered by its Organizational Domain's record is not missing.
        let dns = MemoryDns::new().txt_at(
            "_dmarc.example.com",
            "v=DMARC1; p=reject; rua=mailto:d@example.com",
        );
        let (s, f) = run(&dns, "shop.example.com");
        assert_eq!(f, vec![]);
        assert!(s.inherited);
        assert_eq!(s.policy.as_deref(), Some("reject"));
        assert_eq!(s.applied_tag.as_deref(), Some("sp"));
        assert_eq!(s.org_domain.as_deref(), Some("example.com"));
    }

    #[test]
    fn dmarc_missing_when_only_a_public_suffix_policy_applies() {
        let dns = MemoryDns::new().txt_at("_dmarc.bank.example", "v=DMARC1; p=reject; psd=y");
        let (s, f) = run(&dns, "mail.giant.bank.example");
        assert_eq!(ids(&f), [CheckId::DmarcMissing]);
        assert!(
            f[0].detail
                .contains("only the public suffix policy at _dmarc.bank.example"),
            "{}",
            f[0].detail
        );
        assert!(
            f[0].fix
                .starts_with("_dmarc.giant.bank.example. TXT \"v=DMARC1; p=none;")
        );
        assert_eq!(s.policy.as_deref(), Some("reject"));
        assert!(s.inherited);
        assert_eq!(s.org_domain.as_deref(), Some("giant.bank.example"));
    }

    #[test]
    fn dns_failure_is_never_missing() {
        for failing in [
            "_dmarc.shop.example.com",
            "_dmarc.example.com",
            "_dmarc.com",
        ] {
            let dns = MemoryDns::new().with(failing, Rr::Fail(DnsError::ServFail));
            let (s, f) = run(&dns, "shop.example.com");
            assert_eq!(ids(&f), [CheckId::DnsLookupFailed], "{failing}");
            assert_eq!(f[0].area, Area::Dmarc);
            assert!(
                f[0].detail.starts_with(&format!("TXT {failing}: SERVFAIL")),
                "{}",
                f[0].detail
            );
            assert!(s.lookup_failed && s.policy.is_none());
        }
        // The domain's own record decides the policy; a failure above it costs only the
        // external-destination verdict, and only when there is one to make.
        let dns = at(&["v=DMARC1; p=reject; rua=mailto:d@example.com"])
            .with("_dmarc.com", Rr::Fail(DnsError::Timeout));
        let (s, f) = run(&dns, "example.com");
        assert_eq!(f, vec![]);
        assert_eq!((s.policy.as_deref(), s.org_domain), (Some("reject"), None));
        let dns = at(&["v=DMARC1; p=reject; rua=mailto:d@vendor.example"])
            .with("_dmarc.com", Rr::Fail(DnsError::Timeout));
        let (_, f) = run(&dns, "example.com");
        assert_eq!(ids(&f), [CheckId::DnsLookupFailed]);
        assert!(f[0].detail.starts_with("TXT _dmarc.com: timed out"));
    }

    #[test]
    fn dmarc_multiple() {
        check(
            CheckId::DmarcMultiple,
            &[
                (&["v=DMARC1; p=none", "v=DMARC1; p=reject"], true),
                (
                    &[
                        "v=DMARC1; p=reject; rua=mailto:d@example.com",
                        "v=spf1 -all",
                    ],
                    false,
                ),
            ],
        );
        let (s, f) = run(
            &at(&["v=DMARC1; p=none", "v=DMARC1; p=reject"]),
            "example.com",
        );
        assert_eq!(ids(&f), [CheckId::DmarcMultiple, CheckId::DmarcMissing]);
        assert_eq!(
            f[0].evidence.as_deref(),
            Some("v=DMARC1; p=none\nv=DMARC1; p=reject")
        );
        assert!(f[1].detail.contains("all ignored"));
        assert!(f[1].fix.starts_with("Delete all but one"));
        assert_eq!(s.policy, None);
        // A subdomain with two records falls back to its Organizational Domain's.
        let dns = MemoryDns::new()
            .txt_at("_dmarc.shop.example.com", "v=DMARC1; p=none")
            .txt_at(
                "_dmarc.shop.example.com",
                "v=DMARC1; p=none; rua=mailto:x@example.com",
            )
            .txt_at(
                "_dmarc.example.com",
                "v=DMARC1; p=reject; rua=mailto:d@example.com",
            );
        let (s, f) = run(&dns, "shop.example.com");
        assert_eq!(ids(&f), [CheckId::DmarcMultiple]);
        assert_eq!(s.found_at.as_deref(), Some("_dmarc.example.com"));
    }

    #[test]
    fn dmarc_syntax() {
        check(
            CheckId::DmarcSyntax,
            &[
                (&["v=DMARC1; p=rejected; rua=mailto:d@example.com"], true),
                (&["v=DMARC1 p=reject"], true),
                (&["v=spf1 -all"], true),
                (
                    &["V=DMARC1; p=reject; adkim=strict; rua=mailto:d@example.com"],
                    true,
                ),
                (&["v=DMARC1; rua=mailto:d@example.com"], true),
                (&["v=DMARC1; p=reject; rua=mailto:d@example.com"], false),
                (&["google-site-verification=abc"], false),
            ],
        );
        // Bad p with a valid rua: RFC 9989 receivers act as if p=none.
        let (s, f) = run(
            &at(&["v=DMARC1; p=rejected; rua=mailto:d@example.com"]),
            "example.com",
        );
        assert_eq!(ids(&f), [CheckId::DmarcSyntax]);
        assert_eq!(
            f[0].detail,
            "_dmarc.example.com: p=rejected is invalid: expected none, quarantine or reject; \
             receivers treat the record as p=none"
        );
        assert_eq!(
            f[0].fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:d@example.com\""
        );
        assert_eq!(
            f[0].evidence.as_deref(),
            Some("v=DMARC1; p=rejected; rua=mailto:d@example.com")
        );
        assert_eq!(s.policy.as_deref(), Some("none"));
        // Bad p and no rua: no DMARC processing at all.
        let (s, f) = run(&at(&["v=DMARC1; p=quarantin"]), "example.com");
        assert!(
            f[0].detail.ends_with("receivers apply no DMARC policy"),
            "{}",
            f[0].detail
        );
        assert!(f[0].fix.contains("p=quarantine"));
        assert_eq!(s.policy, None);
        assert_eq!(s.record.as_deref(), Some("v=DMARC1; p=quarantin"));
        // Not a DMARC record: ignored, so nothing applies; the fix is the repaired record.
        let (s, f) = run(
            &at(&["v=DMARC1 p=reject rua=mailto:d@example.com"]),
            "example.com",
        );
        assert_eq!(ids(&f), [CheckId::DmarcSyntax, CheckId::DmarcMissing]);
        assert!(f[0].detail.contains("not v=DMARC1"), "{}", f[0].detail);
        let fixed = "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:d@example.com\"";
        assert_eq!((f[0].fix.as_str(), f[1].fix.as_str()), (fixed, fixed));
        assert_eq!(s.record, None);
        let (_, f) = run(&at(&["v=dmarc1; p=reject"]), "example.com");
        assert_eq!(f[0].fix, "_dmarc.example.com. TXT \"v=DMARC1; p=reject\"");
    }

    #[test]
    fn dmarc_policy_none() {
        check(
            CheckId::DmarcPolicyNone,
            &[
                (&["v=DMARC1; p=none; rua=mailto:d@example.com"], true),
                (&["v=DMARC1; p=quarantine; rua=mailto:d@example.com"], false),
            ],
        );
        let (_, f) = run(
            &at(&["v=DMARC1; p=none; rua=mailto:d@example.com; fo=1"]),
            "example.com",
        );
        let f = get(&f, CheckId::DmarcPolicyNone);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(
            f.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=quarantine; rua=mailto:d@example.com; fo=1\""
        );
        // Inherited through sp: the fix raises sp at the Organizational Domain.
        let dns = MemoryDns::new().txt_at(
            "_dmarc.example.com",
            "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com",
        );
        let (s, f) = run(&dns, "shop.example.com");
        assert_eq!(s.policy.as_deref(), Some("none"));
        let pn = get(&f, CheckId::DmarcPolicyNone);
        assert!(
            pn.detail
                .starts_with("shop.example.com inherits sp=none from _dmarc.example.com"),
            "{}",
            pn.detail
        );
        assert_eq!(
            pn.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com\""
        );
    }

    #[test]
    fn dmarc_policy_quarantine() {
        check(
            CheckId::DmarcPolicyQuarantine,
            &[
                (&["v=DMARC1; p=quarantine; rua=mailto:d@example.com"], true),
                (&["v=DMARC1; p=reject; rua=mailto:d@example.com"], false),
                (&["v=DMARC1; p=none; rua=mailto:d@example.com"], false),
            ],
        );
        let (_, f) = run(
            &at(&["v=DMARC1; p=quarantine; rua=mailto:d@example.com"]),
            "example.com",
        );
        assert_eq!(
            get(&f, CheckId::DmarcPolicyQuarantine).fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:d@example.com\""
        );
    }

    #[test]
    fn dmarc_pct_partial() {
        check(
            CheckId::DmarcPctPartial,
            &[
                (
                    &["v=DMARC1; p=quarantine; pct=50; rua=mailto:d@example.com"],
                    true,
                ),
                (
                    &["v=DMARC1; p=reject; pct=0; rua=mailto:d@example.com"],
                    true,
                ),
                (
                    &["v=DMARC1; p=reject; pct=100; rua=mailto:d@example.com"],
                    false,
                ),
                (
                    &["v=DMARC1; p=none; pct=10; rua=mailto:d@example.com"],
                    false,
                ),
            ],
        );
        let (_, f) = run(
            &at(&["v=DMARC1; p=reject; pct=25; rua=mailto:d@example.com"]),
            "example.com",
        );
        let pf = get(&f, CheckId::DmarcPctPartial);
        assert!(pf.detail.contains("only 25%"));
        assert_eq!(
            pf.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:d@example.com\""
        );
    }

    #[test]
    fn dmarc_testing() {
        check(
            CheckId::DmarcTesting,
            &[
                (&["v=DMARC1; p=reject; t=y; rua=mailto:d@example.com"], true),
                (
                    &["v=DMARC1; p=reject; t=n; rua=mailto:d@example.com"],
                    false,
                ),
                (&["v=DMARC1; p=none; t=y; rua=mailto:d@example.com"], false),
            ],
        );
        let (_, f) = run(
            &at(&["v=DMARC1; p=reject; t=y; rua=mailto:d@example.com"]),
            "example.com",
        );
        let t = get(&f, CheckId::DmarcTesting);
        assert!(t.detail.contains("quarantine instead of reject"));
        assert_eq!(
            t.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:d@example.com\""
        );
    }

    #[test]
    fn dmarc_subdomain_weak() {
        check(
            CheckId::DmarcSubdomainWeak,
            &[
                (
                    &["v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com"],
                    true,
                ),
                (
                    &["v=DMARC1; p=reject; np=quarantine; rua=mailto:d@example.com"],
                    true,
                ),
                (
                    &["v=DMARC1; p=quarantine; sp=reject; rua=mailto:d@example.com"],
                    false,
                ),
                (
                    &["v=DMARC1; p=reject; sp=reject; np=reject; rua=mailto:d@example.com"],
                    false,
                ),
                (
                    &["v=DMARC1; p=none; sp=none; rua=mailto:d@example.com"],
                    false,
                ),
            ],
        );
        let (_, f) = run(
            &at(&["v=DMARC1; p=reject; sp=none; np=quarantine; rua=mailto:d@example.com"]),
            "example.com",
        );
        let w = get(&f, CheckId::DmarcSubdomainWeak);
        assert!(
            w.detail
                .starts_with("sp=none and np=quarantine weaker than p=reject"),
            "{}",
            w.detail
        );
        assert_eq!(
            w.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:d@example.com\""
        );
        // A subdomain's own record: its sp is ignored (RFC 9989 §4.7), so nothing to report.
        let dns = MemoryDns::new()
            .txt_at(
                "_dmarc.shop.example.com",
                "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com",
            )
            .txt_at(
                "_dmarc.example.com",
                "v=DMARC1; p=reject; rua=mailto:d@example.com",
            );
        let (s, f) = run(&dns, "shop.example.com");
        assert_eq!(f, vec![]);
        assert_eq!(s.org_domain.as_deref(), Some("example.com"));
    }

    #[test]
    fn dmarc_no_rua() {
        check(
            CheckId::DmarcNoRua,
            &[
                (&["v=DMARC1; p=reject"], true),
                (&["v=DMARC1; p=reject; rua=https://example.com/dmarc"], true),
                (&["v=DMARC1; p=reject; ruf=mailto:d@example.com"], true),
                (&["v=DMARC1; p=reject; rua=mailto:d@example.com"], false),
            ],
        );
        let (_, f) = run(&at(&["v=DMARC1; p=reject"]), "example.com");
        let n = get(&f, CheckId::DmarcNoRua);
        assert_eq!(
            n.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.com\""
        );
    }

    #[test]
    fn dmarc_rua_invalid() {
        check(
            CheckId::DmarcRuaInvalid,
            &[
                (&["v=DMARC1; p=reject; rua=dmarc@example.com"], true),
                (
                    &["v=DMARC1; p=reject; rua=mailto:d@example.com; ruf=https://example.com/f"],
                    true,
                ),
                (&["v=DMARC1; p=reject; rua=mailto:d@example.com!10x"], true),
                (&["v=DMARC1; p=reject; rua=mailto:d@example.com!10m"], false),
            ],
        );
        let (_, f) = run(
            &at(&["v=DMARC1; p=reject; rua=dmarc@example.com,mailto:x@example.com!5q"]),
            "example.com",
        );
        let i = get(&f, CheckId::DmarcRuaInvalid);
        assert_eq!(i.severity, Severity::Low);
        assert!(
            i.detail
                .contains("rua `dmarc@example.com`: no mailto: scheme"),
            "{}",
            i.detail
        );
        assert_eq!(
            i.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@example.com,mailto:x@example.com\""
        );
        assert!(ids(&f).contains(&CheckId::DmarcNoRua));
    }

    #[test]
    fn dmarc_rua_unauthorized() {
        let rec = "v=DMARC1; p=reject; rua=mailto:d@example.com,mailto:x@reports.vendor.example; ruf=mailto:f@reports.vendor.example";
        let (_, f) = run(&at(&[rec]), "example.com");
        assert_eq!(ids(&f), [CheckId::DmarcRuaUnauthorized]);
        let u = &f[0];
        assert!(u.detail.starts_with("rua=x@reports.vendor.example, ruf=f@reports.vendor.example at _dmarc.example.com is outside example.com"), "{}", u.detail);
        assert!(
            u.fix
                .contains("example.com._report._dmarc.reports.vendor.example. TXT \"v=DMARC1;\""),
            "{}",
            u.fix
        );

        // Authorised (here through a CNAME, as report processors often do).
        let dns = at(&[rec]).txt_at("*._report._dmarc.reports.vendor.example", "v=DMARC1;");
        let dns = dns
            .with(
                "example.com._report._dmarc.reports.vendor.example",
                Rr::Cname("auth.reports.vendor.example".into()),
            )
            .txt_at("auth.reports.vendor.example", "v=DMARC1");
        let (_, f) = run(&dns, "example.com");
        assert_eq!(f, vec![]);
        assert!(
            dns.queries()
                .contains(&"TXT example.com._report._dmarc.reports.vendor.example".to_string())
        );

        // A failed authorisation look-up withholds the verdict.
        let dns = at(&[rec]).with(
            "example.com._report._dmarc.reports.vendor.example",
            Rr::Fail(DnsError::Timeout),
        );
        let (_, f) = run(&dns, "example.com");
        assert_eq!(ids(&f), [CheckId::DnsLookupFailed]);
        assert!(
            f[0].detail
                .starts_with("TXT example.com._report._dmarc.reports.vendor.example")
        );

        // Addresses in the same organisation need no authorisation, and are not looked up.
        let dns =
            at(&["v=DMARC1; p=reject; rua=mailto:d@example.com,mailto:e@reports.example.com"]);
        let (_, f) = run(&dns, "example.com");
        assert_eq!(f, vec![]);
        assert!(!dns.queries().iter().any(|q| q.contains("_report")));

        // An inherited record: the policy domain (example.com) is the one authorised.
        let dns = MemoryDns::new()
            .txt_at(
                "_dmarc.example.com",
                "v=DMARC1; p=reject; rua=mailto:x@vendor.example",
            )
            .txt_at("example.com._report._dmarc.vendor.example", "v=DMARC1;");
        let (_, f) = run(&dns, "shop.example.com");
        assert_eq!(f, vec![]);
        assert!(
            !dns.queries()
                .iter()
                .any(|q| q.contains("shop.example.com._report"))
        );

        // A record on a subdomain that is not its own organisation: the parent's addresses are
        // in the same organisation.
        let dns = MemoryDns::new()
            .txt_at(
                "_dmarc.shop.example.com",
                "v=DMARC1; p=reject; rua=mailto:d@example.com",
            )
            .txt_at(
                "_dmarc.example.com",
                "v=DMARC1; p=reject; rua=mailto:d@example.com",
            );
        let (_, f) = run(&dns, "shop.example.com");
        assert_eq!(f, vec![]);
    }

    #[test]
    fn dmarc_deprecated_tag() {
        check(
            CheckId::DmarcDeprecatedTag,
            &[
                (
                    &["v=DMARC1; p=reject; rua=mailto:d@example.com; ri=86400"],
                    true,
                ),
                (
                    &["v=DMARC1; p=reject; rua=mailto:d@example.com; rf=afrf"],
                    true,
                ),
                (
                    &["v=DMARC1; p=reject; pct=100; rua=mailto:d@example.com"],
                    true,
                ),
                (
                    &["v=DMARC1; p=reject; rua=mailto:d@example.com; t=n"],
                    false,
                ),
            ],
        );
        let (_, f) = run(
            &at(&["v=DMARC1; p=quarantine; pct=0; rf=afrf; ri=3600; rua=mailto:d@example.com"]),
            "example.com",
        );
        let d = get(&f, CheckId::DmarcDeprecatedTag);
        assert_eq!(d.severity, Severity::Info);
        assert!(d.detail.contains("pct, rf, ri"));
        assert_eq!(
            d.fix,
            "_dmarc.example.com. TXT \"v=DMARC1; p=quarantine; t=y; rua=mailto:d@example.com\""
        );
    }

    #[test]
    fn next_phase_walks_none_quarantine_reject() {
        let r =
            crate::dmarc::parse("v=DMARC1; p=none; sp=none; rua=mailto:d@example.com; fo=1; x=y")
                .unwrap();
        let q = next_phase(&r).unwrap();
        assert_eq!(
            q.to_string(),
            "v=DMARC1; p=quarantine; sp=none; rua=mailto:d@example.com; fo=1; x=y"
        );
        let rj = next_phase(&q).unwrap();
        assert_eq!(rj.p, Some(Policy::Reject));
        assert_eq!(next_phase(&rj), None);
        assert_eq!(
            next_phase(&Record::default()).and_then(|r| r.p),
            Some(Policy::Quarantine)
        );
    }

    #[test]
    fn summary_serializes() {
        let (s, _) = run(
            &at(&["v=DMARC1; p=quarantine; rua=mailto:d@example.com"]),
            "example.com",
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["record"],
            "v=DMARC1; p=quarantine; rua=mailto:d@example.com"
        );
        assert_eq!(v["policy"], "quarantine");
        assert_eq!(v["parsed"]["p"], "quarantine");
        assert_eq!(v["parsed"]["rua"][0], "mailto:d@example.com");
        assert_eq!(v["inherited"], false);
    }

    fn txt_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            prop::sample::select(vec![
                "v=DMARC1; p=none",
                "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com",
                "v=DMARC1; p=quarantine; pct=10; t=y; rua=mailto:x@vendor.example",
                "v=DMARC1; psd=y; p=reject",
                "v=DMARC1; psd=n",
                "v=DMARC1 p=reject",
                "v=DMARC1; p=bad; ruf=dmarc@example.com!x",
                "v=spf1 -all",
            ])
            .prop_map(str::to_string),
            "v=DMARC1;[ -~]{0,60}",
            "[ -~]{0,40}",
        ]
    }

    proptest::proptest! {
        #[test]
        fn audit_never_panics_and_never_reports_missing_on_failure(
            recs in proptest::collection::vec(
                (0usize..4, txt_strategy(), proptest::bool::weighted(0.1)),
                0..6,
            )
        ) {
            const NAMES: [&str; 4] = [
                "_dmarc.shop.example.com",
                "_dmarc.example.com",
                "_dmarc.com",
                "example.com._report._dmarc.vendor.example",
            ];
            let mut dns = MemoryDns::new();
            for (i, txt, fail) in &recs {
                if *fail {
                    dns.add(NAMES[*i], Rr::Fail(DnsError::Timeout));
                } else {
                    dns.add(NAMES[*i], Rr::Txt(txt.clone()));
                }
            }
            for domain in ["shop.example.com", "example.com"] {
                let (s, f) = run(&dns, domain);
                let failed = f.iter().any(|f| f.id == CheckId::DnsLookupFailed);
                proptest::prop_assert!(!(failed && f.iter().any(|f| f.id == CheckId::DmarcMissing)));
                proptest::prop_assert!(f.iter().all(|f| f.area == Area::Dmarc));
                proptest::prop_assert!(s.policy.is_none() || s.record.is_some());
                proptest::prop_assert_eq!(s.lookup_failed, s.record.is_none() && failed);
            }
        }
    }

    #[test]
    fn findings_fixes_parse() {
        // Every computed record fix is a clean DMARC record.
        let records = [
            "v=DMARC1; p=none; sp=none; pct=50; t=y; rf=afrf; rua=dmarc@example.com!9x",
            "v=DMARC1; p=rejct; np=none; rua=mailto:d@example.com",
            "v=DMARC1; p=quarantine; pct=0; ruf=mailto:x@vendor.example",
        ];
        for rec in records {
            let (_, f) = run(&at(&[rec]), "example.com");
            for f in f.iter().filter(|f| f.fix.contains(". TXT \"v=DMARC1;")) {
                let value = f.fix.split_once(". TXT \"").unwrap().1;
                let value = &value[..value.find('"').unwrap()];
                assert!(crate::dmarc::parse(value).is_ok(), "{}: {value}", f.id);
            }
        }
    }
}
