//! DKIM-M365-TARGET-MISMATCH from what the DNS audit does not know: the domain's tenant.
//!
//! The audit sees only DNS: it recognises a selector CNAME copied from another domain by its
//! label ([`crate::dkim::label_fits_domain`]), but a CNAME copied from a domain of another
//! tenant with a label that fits (or left behind by a previous tenant) looks correct there.
//! The guide knows more: the tenant's own `Get-DkimSigningConfig` values from an Exchange
//! Online import ([`GuideContext::dkim_cnames`]), the tenant's `onmicrosoft.com` domains from
//! that import ([`GuideContext::exo`]), or the tenant recorded in the inventory
//! ([`GuideContext::tenant`]), in that order of trust. [`findings`] compares the published
//! targets with the first of them that is known.

use crate::checks::CheckId;
use crate::dkim;
use crate::finding::Finding;

use super::{GuideContext, ReportView};

/// Where the expected tenant comes from, in words.
const FROM_IMPORT: &str = "its Exchange Online import";
const FROM_INVENTORY: &str = "the inventory";

/// The DKIM-M365-TARGET-MISMATCH findings of `report`'s published selector CNAMEs against the
/// tenant `ctx` knows; none when the audit already found a mismatch (its fix already reads the
/// targets), when no tenant is known, or when nothing is published.
pub(super) fn findings(report: &ReportView, ctx: &GuideContext) -> Vec<Finding> {
    if report.error.is_some() || report.not_found() || report.has(CheckId::DkimM365TargetMismatch) {
        return Vec::new();
    }
    let d = norm(&report.domain);
    let published: Vec<(u8, &str)> = report
        .dkim
        .selectors
        .iter()
        .filter_map(|s| {
            let n = match s.name.to_ascii_lowercase().as_str() {
                "selector1" => 1,
                "selector2" => 2,
                _ => return None,
            };
            Some((n, s.cname.as_deref()?))
        })
        .collect();
    if published.is_empty() {
        return Vec::new();
    }
    let mismatch = |name: &str, target: &str, detail: String| {
        Finding::new(CheckId::DkimM365TargetMismatch, detail)
            .with_evidence(format!("{name}. CNAME {target}"))
            .with_fix(dkim::read_cnames_fix(&d))
    };
    let mut out = Vec::new();

    // The tenant's own values: the published CNAME must be exactly it.
    if let Some((e1, e2)) = &ctx.dkim_cnames {
        for (n, target) in published {
            let expected = if n == 1 { e1 } else { e2 };
            if norm(target) == norm(expected) {
                continue;
            }
            let name = format!("selector{n}._domainkey.{d}");
            let tenants = match (
                dkim::parse_m365_target(target),
                dkim::parse_m365_target(expected),
            ) {
                (Some(p), Some(e)) if p.tenant != e.tenant => format!(
                    ": the CNAME points into the tenant `{}`, not `{}`",
                    p.tenant, e.tenant
                ),
                _ => String::new(),
            };
            out.push(mismatch(
                &name,
                target,
                format!(
                    "{name} is a CNAME to {target}, but the tenant's own Selector{n}CNAME \
                     (`Get-DkimSigningConfig`, from {FROM_IMPORT}) is {}{tenants}",
                    norm(expected)
                ),
            ));
        }
        return out;
    }

    let (tenants, from) = match import_tenants(ctx) {
        t if !t.is_empty() => (t, FROM_IMPORT),
        _ => match ctx.tenant.as_deref().and_then(inventory_tenant) {
            Some(t) => (vec![t], FROM_INVENTORY),
            None => return out,
        },
    };
    for (n, target) in published {
        let Some(t) = dkim::parse_m365_target(target) else {
            continue;
        };
        if tenants.contains(&t.tenant) {
            continue;
        }
        let name = format!("selector{n}._domainkey.{d}");
        let expected = tenants
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        out.push(mismatch(
            &name,
            target,
            format!(
                "{name} is a CNAME to {target}, in the tenant `{}`, but {d}'s tenant is \
                 {expected} (from {from}): the CNAME looks copied from a domain of another tenant \
                 (or left from a previous one) and points at a key that tenant controls",
                t.tenant
            ),
        ));
    }
    out
}

/// Lower case, without the trailing dot: [`crate::dns::normalize_name`].
use crate::dns::normalize_name as norm;

/// The tenant names of an Exchange Online import: the first label of its `<name>.onmicrosoft.com`
/// accepted domains and of its organization's name (the coexistence domains
/// `<name>.mail.onmicrosoft.com` name the same tenant, so they are not needed).
fn import_tenants(ctx: &GuideContext) -> Vec<String> {
    let Some(t) = &ctx.exo else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let names = t
        .accepted_domains
        .iter()
        .map(|a| a.domain_name.as_str())
        .chain(t.org.as_ref().and_then(|o| o.name.as_deref()));
    for name in names {
        if let Some(tenant) = onmicrosoft_label(name)
            && !out.contains(&tenant)
        {
            out.push(tenant);
        }
    }
    out
}

/// `contoso` of `contoso.onmicrosoft.com` (one label before the suffix).
fn onmicrosoft_label(name: &str) -> Option<String> {
    let name = norm(name);
    let label = name.strip_suffix(".onmicrosoft.com")?;
    is_tenant_label(label).then(|| label.to_string())
}

/// The inventory's tenant (`contoso` or `contoso.onmicrosoft.com`) as the tenant label of a DKIM
/// target; `None` for anything else (a display name, a tenant ID), which cannot be compared.
fn inventory_tenant(tenant: &str) -> Option<String> {
    let t = norm(tenant);
    let t = t.strip_suffix(".onmicrosoft.com").unwrap_or(&t);
    (is_tenant_label(t) && !is_guid(t)).then(|| t.to_string())
}

fn is_tenant_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A tenant ID (`00000000-0000-0000-0000-000000000000`), not a tenant name.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}
