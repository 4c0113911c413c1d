//! What the store holds about a domain, read through the core: the remediation guide of its
//! latest stored audit (with its tenant's Exchange Online findings) and its
//! score history with the changes between audits.
//!
//! These functions are shared by the portal and the command line (`mailaudit guide`, the
//! checklist tracking of `mailaudit audit`), so that both present one domain the same way. They only read the store and call the core: no DNS, no SMTP.

use mailaudit_core::exo::{self, TenantConfig};
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, Guide, GuideContext, ReportView};
use mailaudit_core::history::{self, Diff};
use mailaudit_store::{
    DmarcRollout, DomainEntry, Store, StoreError, StoredResult, TenantImport, Time,
};

use crate::AppError;

/// The guide's context for a domain: the inventory's data, the DMARC roll-out, today.
pub fn guide_context(
    entry: Option<&DomainEntry>,
    rollout: Option<&DmarcRollout>,
    today: Time,
    default_rua: Option<String>,
) -> GuideContext {
    GuideContext {
        today,
        tenant: entry.and_then(|e| e.tenant.clone()),
        m365_endpoint: entry.and_then(|e| e.m365_endpoint.clone()),
        key_people: entry
            .map(|e| {
                e.key_people
                    .iter()
                    .map(|p| (p.name.clone(), p.email.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        dmarc_rollout: rollout.map(|r| (r.phase.clone(), r.started_at)),
        default_rua,
        dkim_cnames: None,
        dmarc_readiness: None,
        exo: None,
        spf_senders: Vec::new(),
    }
}

/// The newest Exchange Online import whose tenant has `domain` among its accepted domains (or
/// a DKIM signing configuration for it), parsed.
pub async fn tenant_of(
    store: &dyn Store,
    domain: &str,
) -> Result<Option<(TenantConfig, TenantImport)>, StoreError> {
    let mut imports = store.latest_tenant_imports(None).await?;
    imports.sort_by_key(|i| std::cmp::Reverse(i.imported_at));
    for import in imports {
        let Ok((t, _)) = exo::parse_bundle(&import.config.to_string()) else {
            continue;
        };
        let has = |d: &str| d.eq_ignore_ascii_case(domain);
        if t.accepted_domains.iter().any(|a| has(&a.domain_name))
            || t.dkim.iter().any(|k| has(&k.domain))
        {
            return Ok(Some((t, import)));
        }
    }
    Ok(None)
}

/// The exact DKIM CNAME targets of `domain` from its tenant's newest Exchange Online import
/// (`Get-DkimSigningConfig`'s Selector1CNAME/Selector2CNAME).
pub async fn tenant_dkim_cnames(
    store: &dyn Store,
    domain: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let Some((t, _)) = tenant_of(store, domain).await? else {
        return Ok(None);
    };
    Ok(dkim_cnames_of(&t, domain))
}

/// `domain`'s Selector1CNAME/Selector2CNAME in `t`.
fn dkim_cnames_of(t: &TenantConfig, domain: &str) -> Option<(String, String)> {
    t.dkim
        .iter()
        .find(|k| k.domain.eq_ignore_ascii_case(domain))
        .and_then(|cfg| Some((cfg.selector1_cname.clone()?, cfg.selector2_cname.clone()?)))
}

/// The EXO-* findings of the newest Exchange Online import of `domain`'s tenant (empty when
/// there is none).
pub async fn tenant_findings(store: &dyn Store, domain: &str) -> Result<Vec<Finding>, StoreError> {
    Ok(match tenant_of(store, domain).await? {
        Some((_, import)) => serde_json::from_value(import.findings).unwrap_or_default(),
        None => Vec::new(),
    })
}

/// Reads a stored result through the core's lenient view.
pub fn view_of(r: &StoredResult) -> Result<ReportView, AppError> {
    ReportView::from_json(&r.report).map_err(|source| AppError::StoredReport {
        domain: r.domain.clone(),
        run: r.run_id,
        source,
    })
}

/// The remediation guide of `view` (normally the domain's latest stored audit), as
/// `mailaudit guide` builds it: the tenant's Exchange Online findings added, the inventory's
/// data, the DMARC roll-out, the tenant's DKIM CNAMEs and the stored DMARC reports' readiness
/// verdict in the context.
pub async fn guide_for(
    store: &dyn Store,
    domain: &str,
    mut view: ReportView,
    today: Time,
    default_rua: Option<String>,
) -> Result<Guide, StoreError> {
    let tenant = tenant_of(store, domain).await?;
    if let Some((_, import)) = &tenant {
        view.findings.extend(
            serde_json::from_value::<Vec<Finding>>(import.findings.clone()).unwrap_or_default(),
        );
    }
    let entry = store.domain(domain).await.ok();
    let rollout = store.dmarc_rollout(domain).await?;
    let mut ctx = guide_context(entry.as_ref(), rollout.as_ref(), today, default_rua);
    ctx.dkim_cnames = tenant.as_ref().and_then(|(t, _)| dkim_cnames_of(t, domain));
    // The tenant's objects by name: the guide acts on them, not on placeholders.
    ctx.exo = tenant.map(|(t, _)| t);
    ctx.dmarc_readiness = mailaudit_store::analysis::stored_readiness(store, domain, today).await?;
    ctx.spf_senders = mailaudit_store::analysis::stored_spf_senders(store, domain, today).await?;
    Ok(guide::build(&view, &ctx))
}

/// One stored audit of a domain with what changed since the one before it.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// The run.
    pub run_id: i64,
    /// When.
    pub audited_at: Time,
    /// The score.
    pub score: Option<u8>,
    /// The changes since the previous stored audit (`history::diff`), None for the oldest shown
    /// or when a report could not be read.
    pub diff: Option<Diff>,
}

/// The domain's newest `limit` stored audits, newest first, each with its diff from the one
/// before it (as `mailaudit diff` computes it).
pub fn history_entries(results: &[StoredResult]) -> Vec<HistoryEntry> {
    let views: Vec<Option<ReportView>> = results
        .iter()
        .map(|r| ReportView::from_json(&r.report).ok())
        .collect();
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let cur = views[i].as_ref();
            let prev = views.get(i + 1).and_then(Option::as_ref);
            let earlier: Vec<ReportView> =
                views.iter().skip(i + 2).filter_map(Clone::clone).collect();
            HistoryEntry {
                run_id: r.run_id,
                audited_at: r.audited_at,
                score: cur
                    .and_then(|v| v.score)
                    .or_else(|| r.score.and_then(|x| u8::try_from(x).ok())),
                diff: match (prev, cur) {
                    (Some(p), Some(c)) => Some(history::diff(p, c, &earlier)),
                    _ => None,
                },
            }
        })
        .collect()
}
