//! What an Exchange Online import does: the exports gathered into one bundle ([`Bundle`]), the
//! bundle parsed into the tenant's configuration and evaluated (with the inventory's key people
//! of its domains), correlated with the stored DNS audits of its accepted domains and compared
//! with the tenant's previous import; then, unless asked not to, the import recorded and the
//! checklists of its domains ticked or reopened by what it verifies ([`update_checklists`]).

use mailaudit_core::exo::{self, Correlation, TenantConfig};
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, ReportView};
use mailaudit_store::{ChecklistItem, ItemState, Store};
use serde_json::{Map, Value};

use crate::AppError;
use crate::tracking::now;

/// Who ticks an item the import shows done.
pub const VERIFIED_BY_IMPORT: &str = "mailaudit (verified by Exchange Online import)";
/// Who reopens an item the import shows undone.
pub const REOPENED_BY_IMPORT: &str = "mailaudit (regression seen by Exchange Online import)";

/// The exports of one import gathered into one bundle-shaped JSON object (what the collection
/// script writes), so that an import made of per-cmdlet files is stored, and read back later,
/// exactly like a bundle.
#[derive(Debug, Default)]
pub struct Bundle {
    bundle: Map<String, Value>,
    sources: Vec<String>,
}

impl Bundle {
    /// Adds the JSON of the file named `name`: a bundle is merged, a per-cmdlet export is put
    /// under its cmdlet's key ([`exo::key_for_file`]). Returns `false`, adding nothing, for a
    /// file that is neither.
    pub fn add(&mut self, name: &str, value: Value) -> bool {
        if value.get("mailaudit_bundle").is_some() {
            if let Value::Object(obj) = value {
                self.bundle.extend(obj);
            }
        } else if let Some(key) = exo::key_for_file(name) {
            self.bundle.insert(key.to_string(), value);
        } else {
            return false;
        }
        self.sources.push(name.to_string());
        true
    }

    /// Adds the text of the file named `name` (JSON, a byte-order mark ignored), as [`Bundle::add`]:
    /// `Ok(false)` for a file that is no export, an error for one that is not JSON.
    pub fn add_json(&mut self, name: &str, text: &str) -> Result<bool, serde_json::Error> {
        let value: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))?;
        Ok(self.add(name, value))
    }

    /// Whether no file was added.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The bundle, and the names of the files it was made of, in order.
    pub fn into_parts(self) -> (Value, Vec<String>) {
        (Value::Object(self.bundle), self.sources)
    }
}

/// Parses a bundle; each warning (a property read leniently or skipped) is given to `warn`.
pub fn parse(
    bundle: &Value,
    warn: &mut (dyn FnMut(&exo::ParseWarning) + Send),
) -> Result<TenantConfig, AppError> {
    let (t, warnings) = exo::parse_bundle(&bundle.to_string())?;
    for w in &warnings {
        warn(w);
    }
    Ok(t)
}

/// The tenant's name: its organization, else its first `onmicrosoft.com` domain (not the
/// coexistence one), else `unknown-tenant`.
pub fn organization(t: &TenantConfig) -> String {
    t.organization
        .clone()
        .or_else(|| {
            t.accepted_domains
                .iter()
                .find(|d| d.is_onmicrosoft() && !d.is_coexistence_domain())
                .map(|d| d.domain_name.clone())
        })
        .unwrap_or_else(|| "unknown-tenant".to_string())
}

/// What to do with an import.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions<'a> {
    /// The inventory's customer whose domains are considered (all when `None`); the import is
    /// recorded under it.
    pub customer: Option<&'a str>,
    /// Evaluate only: record nothing, touch no checklist.
    pub no_store: bool,
}

/// What an import found and changed.
#[derive(Debug)]
pub struct Imported {
    /// The tenant's name ([`organization`]).
    pub organization: String,
    /// The tenant's configuration.
    pub tenant: TenantConfig,
    /// The EXO-* findings.
    pub findings: Vec<Finding>,
    /// What the tenant and the stored DNS audits of its domains say together.
    pub correlation: Correlation,
    /// What changed since the tenant's previous import (`None` on its first).
    pub changes: Option<Vec<String>>,
    /// The checklists updated (empty with [`ImportOptions::no_store`]).
    pub checklist: Vec<ChecklistChange>,
}

/// Imports `bundle`, made of the files `sources` ([`Bundle`]); the warnings of parsing it (and
/// the tenant's previous import) are given to `warn` as they come.
pub async fn import(
    store: &dyn Store,
    bundle: &Value,
    sources: &[String],
    opts: ImportOptions<'_>,
    warn: &mut (dyn FnMut(&exo::ParseWarning) + Send),
) -> Result<Imported, AppError> {
    let tenant = parse(bundle, warn)?;
    // The inventory's key people of the tenant's domains, for the impersonation fix.
    let mut people: Vec<(String, String)> = Vec::new();
    for d in store.domains(opts.customer).await? {
        if tenant
            .accepted_domains
            .iter()
            .any(|a| a.domain_name.eq_ignore_ascii_case(&d.name))
        {
            for p in d.key_people {
                if !people.iter().any(|(_, e)| e.eq_ignore_ascii_case(&p.email)) {
                    people.push((p.name, p.email));
                }
            }
        }
    }
    let findings: Vec<Finding> = exo::evaluate_for(&tenant, &people);
    let org = organization(&tenant);

    // Correlation with the inventory and the latest DNS audits of the accepted domains.
    let inventory: Vec<String> = store
        .domains(opts.customer)
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect();
    let mut dns = Vec::new();
    for d in &tenant.accepted_domains {
        if let Some(r) = store.latest_result(&d.domain_name).await?
            && let Ok(view) = ReportView::from_json(&r.report)
        {
            dns.push((d.domain_name.clone(), view));
        }
    }
    let correlation = exo::correlate(&tenant, &dns, &inventory);

    // What changed since the previous import of this tenant.
    let previous = store.tenant_imports(&org, 1).await?;
    let changes = match previous.first() {
        Some(prev) => Some(exo::diff(&parse(&prev.config, warn)?, &tenant)),
        None => None,
    };

    let mut checklist = Vec::new();
    if !opts.no_store {
        store
            .record_tenant_import(
                opts.customer,
                &org,
                now(),
                &sources.join(", "),
                bundle,
                &serde_json::to_value(&findings).map_err(AppError::Serialize)?,
            )
            .await?;
        checklist = update_checklists(store, &tenant, opts.customer).await?;
    }
    Ok(Imported {
        organization: org,
        tenant,
        findings,
        correlation,
        changes,
        checklist,
    })
}

/// What an import changed on one domain's checklist.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChecklistChange {
    /// The domain.
    pub domain: String,
    /// The items ticked.
    pub ticked: Vec<String>,
    /// The items reopened.
    pub reopened: Vec<String>,
}

/// The checklists of the inventory's domains that are accepted domains of `tenant` (and have a
/// stored audit, which the checklist is built from): the guide's items with the tenant's
/// findings are added, then each item the import can judge ([`guide::verify_import`]) is ticked
/// or reopened, as an audit does with [`guide::verify`].
pub async fn update_checklists(
    store: &dyn Store,
    tenant: &TenantConfig,
    customer: Option<&str>,
) -> Result<Vec<ChecklistChange>, AppError> {
    let at = now();
    let mut out = Vec::new();
    for entry in store.domains(customer).await? {
        let domain = entry.name.clone();
        if !tenant
            .accepted_domains
            .iter()
            .any(|a| a.domain_name.eq_ignore_ascii_case(&domain) && !a.is_coexistence_domain())
        {
            continue;
        }
        let Some(latest) = store.latest_result(&domain).await? else {
            continue;
        };
        let Ok(view) = ReportView::from_json(&latest.report) else {
            continue;
        };
        // The guide as `mailaudit guide` shows it: with the tenant's newest import (this one).
        let g = crate::stored::guide_for(store, &domain, view, at, None).await?;
        let mut items = ChecklistItem::open_items(&domain, &g, at);
        for kept in store.checklist(&domain).await? {
            if !items.iter().any(|i| i.key == kept.key) {
                items.push(kept);
            }
        }
        store.sync_checklist(&domain, &items).await?;
        let people: Vec<(String, String)> = entry
            .key_people
            .iter()
            .map(|p| (p.name.clone(), p.email.clone()))
            .collect();
        let mut change = ChecklistChange {
            domain: domain.clone(),
            ticked: Vec::new(),
            reopened: Vec::new(),
        };
        for item in store.checklist(&domain).await? {
            match (
                guide::verify_import(&item.key, tenant, &domain, &people),
                item.state,
            ) {
                (Some(true), ItemState::Open) => {
                    store
                        .set_item_state(&domain, &item.key, ItemState::Done, VERIFIED_BY_IMPORT, at)
                        .await?;
                    change.ticked.push(item.key);
                }
                (Some(false), ItemState::Done) => {
                    store
                        .set_item_state(&domain, &item.key, ItemState::Open, REOPENED_BY_IMPORT, at)
                        .await?;
                    change.reopened.push(item.key);
                }
                _ => {}
            }
        }
        out.push(change);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_merged_and_exports_go_under_their_key() {
        let mut b = Bundle::default();
        assert!(b.is_empty());
        assert!(!b.add("notes.json", serde_json::json!({"a": 1})));
        assert!(b.is_empty());
        assert!(b.add(
            "bundle.json",
            serde_json::json!({"mailaudit_bundle": 1, "organization": "contoso.onmicrosoft.com"})
        ));
        assert!(b.add("inbound_connectors.json", serde_json::json!([])));
        let (v, sources) = b.into_parts();
        assert_eq!(sources, ["bundle.json", "inbound_connectors.json"]);
        assert_eq!(v["mailaudit_bundle"], 1);
        assert_eq!(v["organization"], "contoso.onmicrosoft.com");
        assert_eq!(v["inbound_connectors"], serde_json::json!([]));
    }

    #[test]
    fn the_organization_falls_back_to_the_tenant_domain_then_unknown() {
        let mut warnings = Vec::new();
        let t = parse(
            &serde_json::json!({
                "mailaudit_bundle": 1,
                "accepted_domains": [
                    {"DomainName": "contoso.com"},
                    {"DomainName": "contoso.onmicrosoft.com"}
                ]
            }),
            &mut |w| warnings.push(w.to_string()),
        )
        .unwrap();
        assert_eq!(organization(&t), "contoso.onmicrosoft.com");
        assert_eq!(organization(&TenantConfig::default()), "unknown-tenant");
    }
}
