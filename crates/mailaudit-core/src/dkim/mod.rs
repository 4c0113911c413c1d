//! DKIM: are the domain's signing keys published, and are they strong enough.
//!
//! For a Microsoft 365 domain the selectors are known: `selector1` and `selector2`, published as
//! CNAMEs into the tenant (`docs/m365.md`). [`audit`] checks that both exist, that they point at
//! Microsoft 365 DKIM targets for the same tenant ([`m365::parse_m365_target`]) made for this
//! domain (the target's label is the domain's own MX label, or fits the domain name:
//! [`m365::label_fits_domain`]; a label made for another domain is a CNAME copied from another
//! customer), and that at least one resolves to a key (only one selector is active at a time).
//! The tenant name read from the targets is the best credential-free source of it.
//!
//! A target is never built here: the exact values depend on the tenant, on a label Microsoft
//! chooses (hyphens dropped, collision suffixes) and, for domains added since May 2025, on a
//! `<letter>-v1.dkim.mail.microsoft` zone that cannot be predicted. A fix writes a target only
//! when it is the other selector of a published, correct one (same tenant, zone and label,
//! selector number swapped); otherwise it says how to read them with `Get-DkimSigningConfig`.
//!
//! For other domains, DKIM selectors **cannot be enumerated from DNS**: a key is only found if
//! its selector is guessed. [`audit`] tries the short documented list [`COMMON_SELECTORS`], so
//! DKIM-NOT-FOUND is a hint, not proof that the domain does not sign.
//!
//! Keys are parsed by [`key::parse_key_record`]; RSA keys under 2048 bits are DKIM-KEY-WEAK.

pub mod key;
pub mod m365;

use serde::Serialize;

use crate::checks::{Area, CheckId};
use crate::dns::{DnsError, DnsSource, normalize_name};
use crate::finding::Finding;

pub use key::{DkimKeyError, DkimKeyRecord, KeyEncoding, KeyType, PublicKey, parse_key_record};
pub use m365::{M365Target, label_fits_domain, parse_m365_target};

/// The selectors tried on a domain that is not at Microsoft 365, in order: the defaults of
/// Google Workspace (`google`), Microsoft 365 (`selector1`, `selector2`), common MTAs and
/// control panels (`default`, `dkim`, `mail`, `smtp`) and common ESPs (`k1`, `s1`, `s2`).
pub const COMMON_SELECTORS: &[&str] = &[
    "google",
    "selector1",
    "selector2",
    "default",
    "k1",
    "s1",
    "s2",
    "dkim",
    "mail",
    "smtp",
];

/// The Microsoft 365 selectors.
pub const M365_SELECTORS: [&str; 2] = ["selector1", "selector2"];

/// RSA keys shorter than this are weak (RFC 8301 §3.2: signers SHOULD use at least 2048 bits).
pub const MIN_RSA_BITS: u32 = 2048;

/// What was found at one selector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SelectorResult {
    /// The selector (e.g. `selector1`).
    pub name: String,
    /// The CNAME target published at `<selector>._domainkey.<domain>`, if any.
    pub cname: Option<String>,
    /// The key size (RSA modulus bits, 256 for Ed25519), when a usable key was found.
    pub key_bits: Option<u32>,
    /// The key type (`rsa`, `ed25519`), when a usable key was found.
    pub key_type: Option<String>,
    /// The key record is published with an empty `p=` (revoked).
    pub revoked: bool,
    /// The key record read, verbatim.
    pub record: Option<String>,
    /// Why the record found is not a usable key, if it is not.
    pub error: Option<String>,
}

impl SelectorResult {
    fn has_key(&self) -> bool {
        self.key_bits.is_some()
    }

    fn is_weak_rsa(&self) -> bool {
        self.key_type.as_deref() == Some("rsa") && self.key_bits.is_some_and(|b| b < MIN_RSA_BITS)
    }
}

/// What the DKIM check found, for the JSON report (`docs/json.md`: `dkim.selectors`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DkimSummary {
    /// The selectors looked at: both Microsoft 365 selectors, or the common selectors at which
    /// a record was found.
    pub selectors: Vec<SelectorResult>,
    /// The Microsoft 365 tenant name read from a selector CNAME target (`<tenant>.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// The domain's Microsoft 365 label read from a selector CNAME target (e.g. `contoso-com`).
    pub m365_label: Option<String>,
}

/// The best DKIM key record among the TXT records at a selector: a usable key first, then a
/// revoked one, then a broken one. TXT records that do not look like DKIM (neither starting
/// with `v=DKIM1` nor carrying a `p=` tag) are ignored.
fn read_selector(result: &mut SelectorResult, txts: &[String]) {
    let mut best: Option<(u8, &String, Result<PublicKey, DkimKeyError>)> = None;
    for txt in txts {
        let head = txt.trim_start();
        let looks_dkim = head
            .get(..7)
            .is_some_and(|h| h.eq_ignore_ascii_case("v=DKIM1"))
            || txt.split(';').any(|t| t.trim_start().starts_with("p="));
        if !looks_dkim {
            continue;
        }
        let outcome = parse_key_record(txt).and_then(|r| r.public_key());
        let rank = match &outcome {
            Ok(_) => 3,
            Err(DkimKeyError::Revoked) => 2,
            Err(_) => 1,
        };
        if best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
            best = Some((rank, txt, outcome));
        }
    }
    let Some((_, txt, outcome)) = best else {
        return;
    };
    result.record = Some(txt.clone());
    match outcome {
        Ok(k) => {
            result.key_bits = Some(k.bits);
            result.key_type = Some(k.key_type.to_string());
        }
        Err(DkimKeyError::Revoked) => result.revoked = true,
        Err(e) => result.error = Some(e.to_string()),
    }
}

/// A short note on selectors whose record is revoked or broken, for a finding's detail.
fn unusable_note(selectors: &[SelectorResult]) -> String {
    let notes: Vec<String> = selectors
        .iter()
        .filter_map(|s| {
            if s.revoked {
                Some(format!("{} has a revoked key (empty p=)", s.name))
            } else {
                s.error.as_ref().map(|e| format!("{}: {e}", s.name))
            }
        })
        .collect();
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    }
}

fn weak_finding(domain: &str, s: &SelectorResult, fix: String) -> Finding {
    let bits = s.key_bits.unwrap_or(0);
    let mut f = Finding::new(
        CheckId::DkimKeyWeak,
        format!(
            "the DKIM key at {}._domainkey.{domain} is RSA {bits} bits (minimum {MIN_RSA_BITS})",
            s.name
        ),
    )
    .with_fix(fix);
    if let Some(r) = &s.record {
        f = f.with_evidence(r.clone());
    }
    f
}

/// Audits DKIM for `domain`; `m365` says whether the domain is at Microsoft 365 (from its MX,
/// SPF or tenant data), which decides between the selector-CNAME checks and the
/// common-selector search. As [`audit_with_labels`] without the domain's MX labels.
///
/// RFC 6376 §3.6.2.1: "All DKIM keys are stored in a subdomain named "_domainkey". Given a
/// DKIM-Signature field with a "d=" tag of "example.com" and an "s=" tag of "foo.bar", the DNS
/// query will be for "foo.bar._domainkey.example.com"."
///
/// RFC 8301 §3.2: "Signers MUST use RSA keys of at least 1024 bits for all keys. Signers
/// SHOULD use RSA keys of at least 2048 bits."
///
/// Findings (area dkim): DKIM-M365-MISSING, DKIM-M365-PARTIAL, DKIM-M365-TARGET-MISMATCH,
/// DKIM-M365-NOT-ENABLED, DKIM-KEY-WEAK, DKIM-NOT-FOUND and DNS-LOOKUP-FAILED.
pub async fn audit<D: DnsSource>(dns: &D, domain: &str, m365: bool) -> (DkimSummary, Vec<Finding>) {
    audit_with_labels(dns, domain, m365, &[]).await
}

/// [`audit`], with `own_labels` the domain's own Microsoft 365 labels read from its MX
/// (`<label>.mail.protection.outlook.com`, `<label>.<x>-v1.mx.microsoft`): a DKIM target with
/// one of them is the domain's own whatever the domain name ([`label_fits_domain`] is the
/// other way a label is recognised).
pub async fn audit_with_labels<D: DnsSource>(
    dns: &D,
    domain: &str,
    m365: bool,
    own_labels: &[String],
) -> (DkimSummary, Vec<Finding>) {
    let domain = normalize_name(domain);
    if m365 {
        audit_m365(dns, &domain, own_labels).await
    } else {
        audit_common(dns, &domain).await
    }
}

/// Whether the target's label was made for `domain`: one of its MX labels, or one that fits its
/// name.
fn is_own_label(t: &M365Target, domain: &str, own_labels: &[String]) -> bool {
    own_labels.iter().any(|l| l.eq_ignore_ascii_case(&t.label))
        || label_fits_domain(&t.label, domain)
}

/// The Microsoft 365 checks. DKIM-M365-NOT-ENABLED is raised only when at least one CNAME has
/// the Microsoft 365 shape and this domain's label (otherwise DKIM-M365-TARGET-MISMATCH already
/// says what is wrong). Since only one selector is active and the inactive one keeps its old key
/// until the next rotation, DKIM-KEY-WEAK is raised only when every key found is weak.
async fn audit_m365<D: DnsSource>(
    dns: &D,
    domain: &str,
    own_labels: &[String],
) -> (DkimSummary, Vec<Finding>) {
    let mut summary = DkimSummary::default();
    let mut findings = Vec::new();
    // Per selector: CNAME known (lookup succeeded), parsed target of this domain's label.
    let mut known = [false; 2];
    let mut targets: [Option<M365Target>; 2] = [None, None];
    // A selector whose target was made for another domain (copied).
    let mut copied = [false; 2];
    // Any Microsoft 365 target of this domain seen, even for the wrong selector (for the
    // tenant name).
    let mut seen: Option<M365Target> = None;
    let mut txt_failed = false;

    for (i, sel) in M365_SELECTORS.iter().enumerate() {
        let name = format!("{sel}._domainkey.{domain}");
        let mut result = SelectorResult {
            name: sel.to_string(),
            ..Default::default()
        };
        match dns.cname(&name).await {
            Err(e) => findings.push(Finding::lookup_failed(
                Area::Dkim,
                &format!("CNAME {name}"),
                &e,
            )),
            Ok(v) => {
                known[i] = true;
                result.cname = v.into_iter().next();
            }
        }
        if let Some(target) = &result.cname {
            let n = i as u8 + 1;
            match parse_m365_target(target) {
                Some(t) if !is_own_label(&t, domain, own_labels) => {
                    copied[i] = true;
                    let mx = match own_labels.first() {
                        Some(l) => format!("; {domain}'s own MX names the label `{l}`"),
                        None => String::new(),
                    };
                    findings.push(
                        Finding::new(
                            CheckId::DkimM365TargetMismatch,
                            format!(
                                "{name} is a CNAME to {target}, whose label `{}` was made for \
                                 another domain, not {domain} (a Microsoft 365 label is the \
                                 domain name with dots as dashes, hyphens dropped and perhaps a \
                                 numbered suffix such as `01b`{mx}): the CNAME looks copied from \
                                 another domain's records, in the tenant `{}`, and points at a \
                                 key {domain} does not own",
                                t.label, t.tenant
                            ),
                        )
                        .with_evidence(format!("{name}. CNAME {target}"))
                        .with_fix(read_cnames_fix(domain)),
                    );
                }
                Some(t) if t.selector == n => targets[i] = Some(t),
                Some(t) => {
                    let detail = format!(
                        "{name} points at the target of selector{} ({target}); it must point at \
                         selector{n}-…",
                        t.selector
                    );
                    findings.push(
                        Finding::new(CheckId::DkimM365TargetMismatch, detail)
                            .with_evidence(format!("{name}. CNAME {target}"))
                            .with_fix(format!("{name}. CNAME {}.", t.for_selector(n))),
                    );
                    seen.get_or_insert(t);
                }
                None => findings.push(
                    Finding::new(
                        CheckId::DkimM365TargetMismatch,
                        format!(
                            "{name} is a CNAME to {target}, which is not a Microsoft 365 DKIM \
                             target (selector{n}-<label>._domainkey.<tenant>.onmicrosoft.com or \
                             selector{n}-<label>._domainkey.<tenant>.<letter>-v1.dkim.mail.microsoft)"
                        ),
                    )
                    .with_evidence(format!("{name}. CNAME {target}"))
                    .with_fix(read_cnames_fix(domain)),
                ),
            }
            match dns.txt(&name).await {
                Ok(txts) => read_selector(&mut result, &txts),
                Err(e) => {
                    txt_failed = true;
                    findings.push(Finding::lookup_failed(
                        Area::Dkim,
                        &format!("TXT {name}"),
                        &e,
                    ));
                }
            }
        }
        summary.selectors.push(result);
    }

    if let Some(t) = targets.iter().flatten().next().or(seen.as_ref()) {
        summary.tenant = Some(t.tenant.clone());
        summary.m365_label = Some(t.label.clone());
    }
    // Two targets of this domain's label in different tenants (a copied one is reported above).
    if let [Some(a), Some(b)] = &targets
        && (a.tenant != b.tenant || a.zone != b.zone)
    {
        findings.push(
            Finding::new(
                CheckId::DkimM365TargetMismatch,
                format!(
                    "the selector CNAMEs of {domain} point at different tenants: {}.{} and {}.{}",
                    a.tenant, a.zone, b.tenant, b.zone
                ),
            )
            .with_evidence(format!(
                "selector1._domainkey.{domain}. CNAME {a}\nselector2._domainkey.{domain}. CNAME {b}"
            ))
            .with_fix(read_cnames_fix(domain)),
        );
    }

    let present: Vec<bool> = summary
        .selectors
        .iter()
        .map(|s| s.cname.is_some())
        .collect();
    match (present[0], present[1]) {
        (false, false) if known == [true, true] => findings.push(
            Finding::new(
                CheckId::DkimM365Missing,
                format!(
                    "neither selector1._domainkey.{domain} nor selector2._domainkey.{domain} is a \
                     CNAME: Microsoft 365 cannot sign {domain}'s mail with its own DKIM key"
                ),
            )
            .with_fix(format!(
                "{}, then `Set-DkimSigningConfig -Identity {q} -Enabled $true`",
                read_cnames_fix(domain),
                q = crate::powershell::quote(domain)
            )),
        ),
        (true, false) | (false, true) => {
            let (have, missing) = if present[0] { (0, 1) } else { (1, 0) };
            if known[missing] {
                let missing_name = format!("{}._domainkey.{domain}", M365_SELECTORS[missing]);
                // The other selector of a published, correct target; never a guess.
                let fix = match &targets[have] {
                    Some(t) if !copied[have] => format!(
                        "{missing_name}. CNAME {}.",
                        t.for_selector(missing as u8 + 1)
                    ),
                    _ => read_cnames_fix(domain),
                };
                findings.push(
                    Finding::new(
                        CheckId::DkimM365Partial,
                        format!(
                            "{missing_name} is not published (only {}._domainkey.{domain} is): key \
                             rotation will break DKIM",
                            M365_SELECTORS[have]
                        ),
                    )
                    .with_fix(fix),
                );
            }
        }
        _ => {}
    }

    let keys: Vec<&SelectorResult> = summary.selectors.iter().filter(|s| s.has_key()).collect();
    let any_shape = targets.iter().any(Option::is_some);
    // A selector whose CNAME or TXT could not be read may hold the key: withhold the verdict.
    let unknown = txt_failed || known.iter().any(|k| !k);
    if keys.is_empty() && any_shape && !unknown {
        let names: Vec<String> = summary
            .selectors
            .iter()
            .filter(|s| s.cname.is_some())
            .map(|s| format!("{}._domainkey.{domain}", s.name))
            .collect();
        let evidence: Vec<&str> = summary
            .selectors
            .iter()
            .filter_map(|s| s.record.as_deref())
            .collect();
        let mut f = Finding::new(
            CheckId::DkimM365NotEnabled,
            format!(
                "no DKIM key behind {}{}: DKIM signing is not enabled for {domain} in the tenant",
                names.join(" or "),
                unusable_note(&summary.selectors)
            ),
        )
        .with_fix(format!(
            "In Exchange Online PowerShell: `Set-DkimSigningConfig -Identity {q} -Enabled \
             $true` (or `New-DkimSigningConfig -DomainName {q} -Enabled $true` if it has no \
             signing configuration yet)",
            q = crate::powershell::quote(domain)
        ));
        if !evidence.is_empty() {
            f = f.with_evidence(evidence.join("\n"));
        }
        findings.push(f);
    }
    if !keys.is_empty() && keys.iter().all(|s| s.is_weak_rsa()) {
        for s in keys {
            findings.push(weak_finding(
                domain,
                s,
                format!(
                    "In Exchange Online PowerShell: `Rotate-DkimSigningConfig -Identity {q} \
                     -KeySize 2048` (the new key takes effect at the next rotation, about four \
                     days later; rotate again to upgrade the other selector)",
                    q = crate::powershell::quote(domain)
                ),
            ));
        }
    }
    (summary, findings)
}

/// The fix that writes no target: read the exact values in the tenant and publish them. The
/// targets name the tenant, a label Microsoft chooses and, for domains added since May 2025
/// (MX `<label>.<x>-v1.mx.microsoft`), a `<letter>-v1.dkim.mail.microsoft` zone: none of it is
/// predictable from DNS.
pub fn read_cnames_fix(domain: &str) -> String {
    format!(
        "In Exchange Online PowerShell, read the exact targets with `Get-DkimSigningConfig \
         -Identity {q} | Format-List Selector1CNAME,Selector2CNAME` (if it returns nothing, \
         create the configuration first with `New-DkimSigningConfig -DomainName {q} -Enabled \
         $false`); publish selector1._domainkey.{domain} as a CNAME to the Selector1CNAME value \
         and selector2._domainkey.{domain} to the Selector2CNAME value, exactly as shown",
        q = crate::powershell::quote(domain)
    )
}

/// The common-selector search for domains not at Microsoft 365. Look-up failures are reported
/// only when no key was found (they then withhold DKIM-NOT-FOUND), as one finding.
async fn audit_common<D: DnsSource>(dns: &D, domain: &str) -> (DkimSummary, Vec<Finding>) {
    let mut summary = DkimSummary::default();
    let mut findings = Vec::new();
    let mut failures: Vec<(String, DnsError)> = Vec::new();
    for sel in COMMON_SELECTORS {
        let name = format!("{sel}._domainkey.{domain}");
        match dns.txt(&name).await {
            Err(e) => failures.push((name, e)),
            Ok(txts) => {
                let mut result = SelectorResult {
                    name: sel.to_string(),
                    ..Default::default()
                };
                read_selector(&mut result, &txts);
                if result.record.is_some() {
                    // Informational only: a failure here leaves `cname` unknown.
                    result.cname = dns
                        .cname(&name)
                        .await
                        .ok()
                        .and_then(|v| v.into_iter().next());
                    summary.selectors.push(result);
                }
            }
        }
    }
    if let Some(t) = summary
        .selectors
        .iter()
        .find_map(|s| s.cname.as_deref().and_then(parse_m365_target))
    {
        summary.tenant = Some(t.tenant);
        summary.m365_label = Some(t.label);
    }

    let keys: Vec<&SelectorResult> = summary.selectors.iter().filter(|s| s.has_key()).collect();
    if keys.is_empty() {
        if let Some((name, err)) = failures.first() {
            let what = match failures.len() {
                1 => format!("TXT {name}"),
                n => format!("TXT {name} (and {} other selectors)", n - 1),
            };
            findings.push(Finding::lookup_failed(Area::Dkim, &what, err));
        } else {
            findings.push(
                Finding::new(
                    CheckId::DkimNotFound,
                    format!(
                        "no DKIM key at the common selectors of {domain} ({}){}; selectors cannot \
                         be listed from DNS, so {domain} may still sign with another selector",
                        COMMON_SELECTORS.join(", "),
                        unusable_note(&summary.selectors)
                    ),
                )
                .with_fix(format!(
                    "Turn on DKIM signing at every service that sends as {domain} and publish the \
                     2048-bit key each gives you at <selector>._domainkey.{domain} \
                     (`v=DKIM1; k=rsa; p=<key>`)"
                )),
            );
        }
    }
    for s in keys.into_iter().filter(|s| s.is_weak_rsa()) {
        findings.push(weak_finding(
            domain,
            s,
            format!(
                "Generate a 2048-bit key at the sending service, publish it under a new selector \
                 at <new-selector>._domainkey.{domain}, switch signing to it, then revoke the old \
                 one with `{}._domainkey.{domain}. TXT \"v=DKIM1; p=\"`",
                s.name
            ),
        ));
    }
    (summary, findings)
}

#[cfg(test)]
mod tests {
    use super::key::tests::{
        ED25519_RAW, RSA1024_PKCS1, RSA1024_SPKI, RSA2048_PKCS1, RSA2048_SPKI,
    };
    use super::*;
    use crate::memory::{MemoryDns, Rr};

    const T1: &str = "selector1-contoso-com._domainkey.contoso.onmicrosoft.com";
    const T2: &str = "selector2-contoso-com._domainkey.contoso.onmicrosoft.com";
    const S1: &str = "selector1._domainkey.contoso.com";
    const S2: &str = "selector2._domainkey.contoso.com";

    fn key(p: &str) -> String {
        format!("v=DKIM1; k=rsa; p={p}")
    }

    fn cnames(t1: Option<&str>, t2: Option<&str>) -> MemoryDns {
        let mut dns = MemoryDns::new();
        if let Some(t) = t1 {
            dns.add(S1, Rr::Cname(t.into()));
        }
        if let Some(t) = t2 {
            dns.add(S2, Rr::Cname(t.into()));
        }
        dns
    }

    fn ids(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn m365_findings() {
        let cases: Vec<(&str, MemoryDns, Vec<&str>)> = vec![
            (
                "both, key at 1",
                cnames(Some(T1), Some(T2)).txt_at(T1, &key(RSA2048_SPKI)),
                vec![],
            ),
            (
                "both, keys at both, mixed case",
                cnames(Some(&T1.to_uppercase()), Some(T2))
                    .txt_at(T1, &key(RSA2048_SPKI))
                    .txt_at(T2, &key(RSA2048_PKCS1)),
                vec![],
            ),
            (
                "current form",
                cnames(
                    Some("selector1-contoso-com._domainkey.contoso.c-v1.dkim.mail.microsoft"),
                    Some("selector2-contoso-com._domainkey.contoso.c-v1.dkim.mail.microsoft"),
                )
                .txt_at(
                    "selector2-contoso-com._domainkey.contoso.c-v1.dkim.mail.microsoft",
                    &key(RSA2048_SPKI),
                ),
                vec![],
            ),
            ("missing", MemoryDns::new(), vec!["DKIM-M365-MISSING"]),
            (
                "txt without cname is still missing",
                MemoryDns::new().txt_at(S1, &key(RSA2048_SPKI)),
                vec!["DKIM-M365-MISSING"],
            ),
            (
                "partial",
                cnames(Some(T1), None).txt_at(T1, &key(RSA2048_SPKI)),
                vec!["DKIM-M365-PARTIAL"],
            ),
            (
                "partial other",
                cnames(None, Some(T2)).txt_at(T2, &key(RSA2048_SPKI)),
                vec!["DKIM-M365-PARTIAL"],
            ),
            (
                "not a microsoft target",
                cnames(Some("s1.dkim.example.net"), Some(T2)).txt_at(T2, &key(RSA2048_SPKI)),
                vec!["DKIM-M365-TARGET-MISMATCH"],
            ),
            (
                "swapped",
                cnames(Some(T2), Some(T1)).txt_at(T1, &key(RSA2048_SPKI)),
                vec!["DKIM-M365-TARGET-MISMATCH", "DKIM-M365-TARGET-MISMATCH"],
            ),
            (
                "two tenants",
                cnames(
                    Some(T1),
                    Some("selector2-contoso-com._domainkey.fabrikam.onmicrosoft.com"),
                )
                .txt_at(T1, &key(RSA2048_SPKI)),
                vec!["DKIM-M365-TARGET-MISMATCH"],
            ),
            (
                "not enabled",
                cnames(Some(T1), Some(T2)),
                vec!["DKIM-M365-NOT-ENABLED"],
            ),
            (
                "not enabled, revoked",
                cnames(Some(T1), Some(T2)).txt_at(T1, "v=DKIM1; k=rsa; p="),
                vec!["DKIM-M365-NOT-ENABLED"],
            ),
            (
                "not enabled, junk",
                cnames(Some(T1), Some(T2)).txt_at(T1, "v=DKIM1; p=!!!"),
                vec!["DKIM-M365-NOT-ENABLED"],
            ),
            (
                "weak",
                cnames(Some(T1), Some(T2)).txt_at(T1, &key(RSA1024_SPKI)),
                vec!["DKIM-KEY-WEAK"],
            ),
            (
                "weak both",
                cnames(Some(T1), Some(T2))
                    .txt_at(T1, &key(RSA1024_SPKI))
                    .txt_at(T2, &key(RSA1024_PKCS1)),
                vec!["DKIM-KEY-WEAK", "DKIM-KEY-WEAK"],
            ),
            (
                "inactive weak after rotation",
                cnames(Some(T1), Some(T2))
                    .txt_at(T1, &key(RSA1024_SPKI))
                    .txt_at(T2, &key(RSA2048_SPKI)),
                vec![],
            ),
            (
                "ed25519 is not weak",
                cnames(Some(T1), Some(T2))
                    .txt_at(T1, &format!("v=DKIM1; k=ed25519; p={ED25519_RAW}")),
                vec![],
            ),
            (
                "cname lookup fails",
                cnames(None, Some(T2))
                    .with(S1, Rr::Fail(DnsError::ServFail))
                    .txt_at(T2, &key(RSA2048_SPKI)),
                vec!["DNS-LOOKUP-FAILED"],
            ),
            (
                "both fail",
                MemoryDns::new()
                    .with(S1, Rr::Fail(DnsError::Timeout))
                    .with(S2, Rr::Fail(DnsError::Timeout)),
                vec!["DNS-LOOKUP-FAILED", "DNS-LOOKUP-FAILED"],
            ),
            (
                "key lookup fails",
                cnames(Some(T1), Some(T2)).with(T1, Rr::Fail(DnsError::Timeout)),
                vec!["DNS-LOOKUP-FAILED"],
            ),
        ];
        for (name, dns, expected) in cases {
            let (_, f) = pollster::block_on(audit(&dns, "Contoso.com", true));
            assert_eq!(ids(&f), expected, "{name}: {f:#?}");
            assert!(f.iter().all(|f| f.area == Area::Dkim), "{name}");
        }
    }

    #[test]
    fn m365_summary_and_fixes() {
        let dns = cnames(Some(T1), Some(T2)).txt_at(T1, &key(RSA2048_SPKI));
        let (s, _) = pollster::block_on(audit(&dns, "contoso.com", true));
        assert_eq!(s.tenant.as_deref(), Some("contoso"));
        assert_eq!(s.m365_label.as_deref(), Some("contoso-com"));
        assert_eq!(s.selectors.len(), 2);
        assert_eq!(s.selectors[0].key_bits, Some(2048));
        assert_eq!(s.selectors[1].key_bits, None);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["selectors"][0]["name"], "selector1");
        assert_eq!(json["selectors"][0]["cname"], T1);
        assert_eq!(json["selectors"][0]["key_bits"], 2048);
        assert_eq!(json["selectors"][1]["key_bits"], serde_json::Value::Null);

        let dns = cnames(Some(T1), None).txt_at(T1, &key(RSA2048_SPKI));
        let (_, f) = pollster::block_on(audit(&dns, "contoso.com", true));
        assert_eq!(f[0].fix, format!("{S2}. CNAME {T2}."));

        let dns = cnames(Some(T1), Some(T2)).txt_at(T1, &key(RSA1024_SPKI));
        let (_, f) = pollster::block_on(audit(&dns, "contoso.com", true));
        assert!(f[0].detail.contains("1024 bits"), "{}", f[0].detail);
        assert!(
            f[0].fix
                .contains("Rotate-DkimSigningConfig -Identity 'contoso.com' -KeySize 2048")
        );
        assert_eq!(f[0].evidence.as_deref(), Some(key(RSA1024_SPKI).as_str()));
    }

    /// Copied selector CNAMEs: a target whose label was made for another domain is a mismatch;
    /// labels with hyphens dropped and a collision suffix (`docs/m365.md`) are the domain's own, and
    /// so is any label the domain's own MX names.
    #[test]
    fn m365_copied_targets() {
        fn pair(label: &str, tenant: &str, zone: &str) -> (String, String) {
            let t = |n: u8| format!("selector{n}-{label}._domainkey.{tenant}.{zone}");
            (t(1), t(2))
        }
        let om = "onmicrosoft.com";
        /// `(domain, its MX labels, the published targets, the findings expected)`.
        type Case<'a> = (&'a str, &'a [&'a str], (String, String), Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "contoso.com",
                &[],
                pair("contoso-com", "contoso", om),
                vec![],
            ),
            (
                "heig-vd.ch",
                &[],
                pair("heigvd-ch01b", "heigvd", "r-v1.dkim.mail.microsoft"),
                vec![],
            ),
            (
                "dutch-shape.nl",
                &[],
                pair("dutchshape-nl01c", "dutchshape", om),
                vec![],
            ),
            // The MX names the label: the domain's own, whatever the name.
            (
                "contoso.com",
                &["fixtures-test"],
                pair("fixtures-test", "fixtures", om),
                vec![],
            ),
            (
                "contoso.com",
                &[],
                pair("fabrikam-com", "fabrikam", om),
                vec!["DKIM-M365-TARGET-MISMATCH", "DKIM-M365-TARGET-MISMATCH"],
            ),
            (
                "contoso.com",
                &["contoso-com"],
                pair("fabrikam-com", "fabrikam", "c-v1.dkim.mail.microsoft"),
                vec!["DKIM-M365-TARGET-MISMATCH", "DKIM-M365-TARGET-MISMATCH"],
            ),
            // contoso.com.au's records copied into contoso.com, and the other way round.
            (
                "contoso.com",
                &[],
                pair("contoso-com-au", "contoso", om),
                vec!["DKIM-M365-TARGET-MISMATCH", "DKIM-M365-TARGET-MISMATCH"],
            ),
            (
                "contoso.com.au",
                &[],
                pair("contoso-com", "contoso", om),
                vec!["DKIM-M365-TARGET-MISMATCH", "DKIM-M365-TARGET-MISMATCH"],
            ),
        ];
        for (domain, labels, (t1, t2), expected) in cases {
            let s1 = format!("selector1._domainkey.{domain}");
            let s2 = format!("selector2._domainkey.{domain}");
            let dns = MemoryDns::new()
                .with(&s1, Rr::Cname(t1.clone()))
                .with(&s2, Rr::Cname(t2.clone()))
                .txt_at(&t1, &key(RSA2048_SPKI));
            let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            let (s, f) = pollster::block_on(audit_with_labels(&dns, domain, true, &labels));
            assert_eq!(ids(&f), expected, "{domain} {t1}: {f:#?}");
            if expected.is_empty() {
                assert!(s.tenant.is_some(), "{domain} {t1}");
                continue;
            }
            // The finding names the published target and why it is wrong, and guesses nothing.
            assert!(f[0].detail.contains(&t1), "{}", f[0].detail);
            assert!(
                f[0].detail.contains("made for another domain"),
                "{}",
                f[0].detail
            );
            for f in &f {
                assert!(f.fix.contains("Get-DkimSigningConfig"), "{}", f.fix);
                assert!(
                    !f.fix.contains("._domainkey.") || !f.fix.contains("onmicrosoft"),
                    "{}",
                    f.fix
                );
            }
            // The other customer's tenant is not this domain's.
            assert_eq!(s.tenant, None, "{domain}");
            assert_eq!(s.m365_label, None, "{domain}");
        }

        // Only one selector, copied: no target is derived from it, and DKIM-M365-NOT-ENABLED is
        // not raised on top (the copied CNAME is what is wrong).
        let (t1, _) = pair("fabrikam-com", "fabrikam", om);
        let dns = cnames(Some(&t1), None);
        let (_, f) = pollster::block_on(audit(&dns, "contoso.com", true));
        assert_eq!(
            ids(&f),
            ["DKIM-M365-TARGET-MISMATCH", "DKIM-M365-PARTIAL"],
            "{f:#?}"
        );
        assert!(!f[1].fix.contains("fabrikam"), "{}", f[1].fix);
        assert!(
            f[1].fix
                .contains("Get-DkimSigningConfig -Identity 'contoso.com'"),
            "{}",
            f[1].fix
        );
    }

    /// No fix writes a target it did not read: DKIM-M365-MISSING and the mismatches say how to
    /// read them (with New-DkimSigningConfig when there is no configuration); only the other
    /// selector of a correct published target is written.
    #[test]
    fn m365_fixes_never_guess_a_target() {
        let (_, f) = pollster::block_on(audit(&MemoryDns::new(), "contoso.com", true));
        assert_eq!(ids(&f), ["DKIM-M365-MISSING"]);
        let fix = &f[0].fix;
        assert!(
            !fix.contains("onmicrosoft") && !fix.contains("dkim.mail.microsoft"),
            "{fix}"
        );
        let get = fix
            .find("Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Selector1CNAME,Selector2CNAME")
            .expect(fix);
        let new = fix
            .find("New-DkimSigningConfig -DomainName 'contoso.com' -Enabled $false")
            .expect(fix);
        let enable = fix
            .find("Set-DkimSigningConfig -Identity 'contoso.com' -Enabled $true")
            .expect(fix);
        assert!(get < new && new < enable, "{fix}");
        assert!(fix.contains("exactly as shown"), "{fix}");

        let dns = cnames(Some("s1.dkim.example.net"), Some(T2)).txt_at(T2, &key(RSA2048_SPKI));
        let (_, f) = pollster::block_on(audit(&dns, "contoso.com", true));
        assert!(
            f[0].fix
                .starts_with("In Exchange Online PowerShell, read the exact targets"),
            "{}",
            f[0].fix
        );

        // The current form: the other selector of a published, correct target (same letter).
        let t = "selector1-contoso-com._domainkey.contoso.c-v1.dkim.mail.microsoft";
        let dns = cnames(Some(t), None).txt_at(t, &key(RSA2048_SPKI));
        let (_, f) = pollster::block_on(audit(&dns, "contoso.com", true));
        assert_eq!(ids(&f), ["DKIM-M365-PARTIAL"]);
        assert_eq!(
            f[0].fix,
            format!(
                "{S2}. CNAME selector2-contoso-com._domainkey.contoso.c-v1.dkim.mail.microsoft."
            )
        );
    }

    #[test]
    fn common_selector_findings() {
        let g = "google._domainkey.contoso.com";
        let cases: Vec<(&str, MemoryDns, Vec<&str>)> = vec![
            (
                "google key",
                MemoryDns::new().txt_at(g, &key(RSA2048_SPKI)),
                vec![],
            ),
            (
                "key without v=",
                MemoryDns::new().txt_at(
                    "s1._domainkey.contoso.com",
                    &format!("k=rsa; p={RSA2048_SPKI}"),
                ),
                vec![],
            ),
            ("none", MemoryDns::new(), vec!["DKIM-NOT-FOUND"]),
            (
                "only a revoked key",
                MemoryDns::new().txt_at(g, "v=DKIM1; p="),
                vec!["DKIM-NOT-FOUND"],
            ),
            (
                "spf at a wildcard is not a key",
                MemoryDns::new().txt_at(g, "v=spf1 -all"),
                vec!["DKIM-NOT-FOUND"],
            ),
            (
                "weak",
                MemoryDns::new().txt_at(g, &key(RSA1024_SPKI)),
                vec!["DKIM-KEY-WEAK"],
            ),
            (
                "weak and strong",
                MemoryDns::new()
                    .txt_at(g, &key(RSA1024_SPKI))
                    .txt_at("k1._domainkey.contoso.com", &key(RSA2048_SPKI)),
                vec!["DKIM-KEY-WEAK"],
            ),
            (
                "failure and nothing found",
                MemoryDns::new().with(g, Rr::Fail(DnsError::Refused)),
                vec!["DNS-LOOKUP-FAILED"],
            ),
            (
                "failure but key found",
                MemoryDns::new()
                    .with(g, Rr::Fail(DnsError::Refused))
                    .txt_at("s1._domainkey.contoso.com", &key(RSA2048_SPKI)),
                vec![],
            ),
        ];
        for (name, dns, expected) in cases {
            let (_, f) = pollster::block_on(audit(&dns, "contoso.com", false));
            assert_eq!(ids(&f), expected, "{name}: {f:#?}");
            assert!(f.iter().all(|f| f.area == Area::Dkim), "{name}");
        }
    }

    #[test]
    fn common_summary_records_only_found_selectors() {
        let dns = MemoryDns::new()
            .with(S1, Rr::Cname(T1.into()))
            .txt_at(T1, &key(RSA2048_SPKI))
            .txt_at("k1._domainkey.contoso.com", "v=DKIM1; p=");
        let (s, f) = pollster::block_on(audit(&dns, "contoso.com", false));
        assert!(f.is_empty());
        let names: Vec<_> = s.selectors.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["selector1", "k1"]);
        assert_eq!(s.selectors[0].cname.as_deref(), Some(T1));
        assert!(s.selectors[1].revoked);
        assert_eq!(s.tenant.as_deref(), Some("contoso"));
        assert_eq!(
            dns.queries()
                .iter()
                .filter(|q| q.starts_with("TXT"))
                .count(),
            COMMON_SELECTORS.len()
        );
    }

    #[test]
    fn audit_future_is_send_and_swapped_targets_name_the_tenant() {
        fn assert_send<T: Send>(_: T) {}
        assert_send(audit(&MemoryDns::new(), "contoso.com", true));
        let (s, _) = pollster::block_on(audit(&cnames(Some(T2), Some(T1)), "contoso.com", true));
        assert_eq!(s.tenant.as_deref(), Some("contoso"));
    }

    proptest::proptest! {
        #[test]
        fn audit_never_panics_on_junk_records(txt in "\\PC{0,120}", target in "[a-z0-9.-]{1,60}") {
            let dns = cnames(Some(&target), Some(T2)).txt_at(&target, &txt).txt_at(T2, &txt).txt_at("google._domainkey.contoso.com", &txt);
            let _ = pollster::block_on(audit(&dns, "contoso.com", true));
            let _ = pollster::block_on(audit(&dns, "contoso.com", false));
        }
    }
}
