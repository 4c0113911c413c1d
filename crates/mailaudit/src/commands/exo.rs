//! `mailaudit exo`: the Exchange Online collection script and the offline evaluation of its
//! export, correlated with the DNS audits of the tenant's domains.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mailaudit_core::exo::{self, Auth, CMDLETS, ScriptOptions, TenantConfig};
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, ReportView};
use mailaudit_store::{ChecklistItem, ItemState, Store};
use serde_json::{Map, Value};

use super::tracking::now;
use crate::cli::{ExoImportArgs, ExoScriptArgs, TextOrJson};
use crate::output::printable;

pub(crate) fn script(args: &ExoScriptArgs) -> Result<ExitCode> {
    let auth = match (
        &args.app_id,
        &args.certificate_thumbprint,
        &args.organization,
    ) {
        (Some(app_id), Some(thumb), Some(org)) => Auth::AppOnly {
            app_id: app_id.clone(),
            cert_thumbprint: thumb.clone(),
            organization: org.clone(),
        },
        (None, None, Some(org)) => Auth::Delegated {
            organization: org.clone(),
        },
        (None, None, None) => Auth::Interactive,
        _ => bail!("--app-id needs --certificate-thumbprint and --organization"),
    };
    let text = exo::script(&ScriptOptions { auth });
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("{}: cannot write", p.display()))?
        }
        None => io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one export file of at most `max_bytes` bytes (read through a `take`, so a file that
/// grows after the size check is still capped): an export is parsed into memory several times
/// its size, so a larger file is refused, named, before it is read.
fn read_capped(f: &std::path::Path, max_bytes: u64) -> Result<String> {
    use std::io::Read;
    let too_large = || {
        anyhow::anyhow!(
            "{}: larger than {} MiB (--max-file-mb); not read",
            f.display(),
            max_bytes / (1024 * 1024)
        )
    };
    if std::fs::metadata(f).is_ok_and(|m| m.len() > max_bytes) {
        return Err(too_large());
    }
    let file = std::fs::File::open(f).with_context(|| format!("{}: cannot read", f.display()))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", f.display()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    String::from_utf8(bytes).with_context(|| format!("{}: cannot read: not UTF-8", f.display()))
}

/// Reads the inputs into one bundle-shaped JSON object (what the script writes), so that an
/// import made of per-cmdlet files is stored, and read back later, exactly like a bundle. Each
/// file is at most `max_bytes` bytes ([`read_capped`]).
fn read_inputs(paths: &[std::path::PathBuf], max_bytes: u64) -> Result<(Value, Vec<String>)> {
    let mut bundle = Map::new();
    let mut sources = Vec::new();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot read the directory", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    e.extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("json"))
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.clone());
        }
    }
    for f in &files {
        let text = read_capped(f, max_bytes)?;
        let text = text.trim_start_matches('\u{feff}');
        let value: Value =
            serde_json::from_str(text).with_context(|| format!("{}: not JSON", f.display()))?;
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if value.get("mailaudit_bundle").is_some() {
            if let Value::Object(obj) = value {
                bundle.extend(obj);
            }
        } else if let Some(key) = exo::key_for_file(name) {
            bundle.insert(key.to_string(), value);
        } else {
            eprintln!(
                "mailaudit: {}: not an export mailaudit reads (name it after a cmdlet, e.g. inbound_connectors.json); skipped",
                f.display()
            );
            continue;
        }
        sources.push(name.to_string());
    }
    if sources.is_empty() {
        bail!(
            "no export to read in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok((Value::Object(bundle), sources))
}

fn parse(bundle: &Value) -> Result<TenantConfig> {
    let (t, warnings) = exo::parse_bundle(&bundle.to_string())?;
    for w in warnings {
        eprintln!("mailaudit: warning: {w}");
    }
    Ok(t)
}

fn organization(t: &TenantConfig) -> String {
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

pub(crate) async fn import(store: &dyn Store, args: &ExoImportArgs) -> Result<ExitCode> {
    let (bundle, sources) = read_inputs(&args.paths, args.max_file_mb.saturating_mul(1024 * 1024))?;
    let tenant = parse(&bundle)?;
    // The inventory's key people of the tenant's domains, for the impersonation fix.
    let mut people: Vec<(String, String)> = Vec::new();
    for d in store.domains(args.customer.as_deref()).await? {
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
        .domains(args.customer.as_deref())
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
        Some(prev) => Some(exo::diff(&parse(&prev.config)?, &tenant)),
        None => None,
    };

    let mut checklist = Vec::new();
    if !args.no_store {
        store
            .record_tenant_import(
                args.customer.as_deref(),
                &org,
                now(),
                &sources.join(", "),
                &bundle,
                &serde_json::to_value(&findings)?,
            )
            .await?;
        checklist = update_checklists(store, &tenant, args.customer.as_deref()).await?;
    }

    // Text goes through the one escaping policy (names and values come from the export).
    let mut out: Box<dyn Write> = match args.format {
        TextOrJson::Json => Box::new(io::stdout().lock()),
        TextOrJson::Text => Box::new(crate::output::text_stdout()),
    };
    match args.format {
        TextOrJson::Json => {
            let v = serde_json::json!({
                "organization": org,
                "sources": sources,
                "findings": findings,
                "correlation": correlation,
                "changes": changes,
                "checklist": checklist,
            });
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        TextOrJson::Text => write_text(
            &mut out,
            &org,
            &tenant,
            &findings,
            &correlation,
            changes.as_deref(),
            &checklist,
        )?,
    }
    if let Some(threshold) = args.fail_on
        && findings.iter().any(|f| f.severity >= threshold)
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Who ticks an item the import shows done.
const VERIFIED_BY_IMPORT: &str = "mailaudit (verified by Exchange Online import)";
/// Who reopens an item the import shows undone.
const REOPENED_BY_IMPORT: &str = "mailaudit (regression seen by Exchange Online import)";

/// What an import changed on one domain's checklist.
#[derive(Debug, serde::Serialize)]
struct ChecklistChange {
    domain: String,
    ticked: Vec<String>,
    reopened: Vec<String>,
}

/// The checklists of the inventory's domains that are accepted domains of `tenant` (and have a
/// stored audit, which the checklist is built from): the guide's items with the tenant's
/// findings are added, then each item the import can judge ([`guide::verify_import`]) is ticked
/// or reopened, as an audit does with [`guide::verify`].
async fn update_checklists(
    store: &dyn Store,
    tenant: &TenantConfig,
    customer: Option<&str>,
) -> Result<Vec<ChecklistChange>> {
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
        let g = mailaudit_app::stored::guide_for(store, &domain, view, at, None).await?;
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

fn write_text(
    out: &mut dyn Write,
    org: &str,
    tenant: &TenantConfig,
    findings: &[Finding],
    c: &exo::Correlation,
    changes: Option<&[String]>,
    checklist: &[ChecklistChange],
) -> Result<()> {
    let read: Vec<&str> = CMDLETS
        .iter()
        .filter(|k| tenant.has(k.key))
        .map(|k| k.cmdlet)
        .collect();
    writeln!(
        out,
        "{org}: {} findings from {} exports ({})",
        findings.len(),
        read.len(),
        read.join(", ")
    )?;
    for (key, err) in &tenant.errors {
        writeln!(out, "  ! {key} was not collected: {}", printable(err))?;
    }
    for f in findings {
        writeln!(
            out,
            "\n  {:<8}  {:<30} {}",
            f.severity.as_str().to_uppercase(),
            f.id.as_str(),
            printable(&f.title)
        )?;
        writeln!(out, "            {}", printable(&f.detail))?;
        if let Some(e) = &f.evidence {
            for l in printable(e).lines() {
                writeln!(out, "            read: {l}")?;
            }
        }
        for (i, l) in printable(&f.fix).lines().enumerate() {
            writeln!(
                out,
                "            {}{l}",
                if i == 0 { "fix: " } else { "     " }
            )?;
        }
    }
    let section = |out: &mut dyn Write, title: &str, lines: Vec<String>| -> Result<()> {
        if !lines.is_empty() {
            writeln!(out, "\n{title}")?;
            for l in lines {
                writeln!(out, "  - {}", printable(&l))?;
            }
        }
        Ok(())
    };
    section(
        out,
        "Accepted domains missing from the inventory (add with `mailaudit domain add`):",
        c.missing_from_inventory.clone(),
    )?;
    section(
        out,
        "Direct Send (RELAY-OPEN) explained:",
        c.relay_explained
            .iter()
            .map(|(d, e)| format!("{d}: {e}"))
            .collect(),
    )?;
    section(
        out,
        "DKIM: tenant and DNS disagree:",
        c.dkim_mismatch
            .iter()
            .map(|(d, e)| format!("{d}: {e}"))
            .collect(),
    )?;
    section(
        out,
        "Accepted domains no enforcing anti-spoofing rule covers:",
        c.antispoof_uncovered.clone(),
    )?;
    section(
        out,
        "DKIM CNAMEs to publish (from Get-DkimSigningConfig):",
        c.dkim_cnames
            .iter()
            .flat_map(|(d, s1, s2)| {
                [
                    format!("selector1._domainkey.{d}. CNAME {s1}."),
                    format!("selector2._domainkey.{d}. CNAME {s2}."),
                ]
            })
            .collect(),
    )?;
    section(
        out,
        "Checklists updated from this import (`mailaudit checklist DOMAIN`):",
        checklist
            .iter()
            .filter(|c| !c.ticked.is_empty() || !c.reopened.is_empty())
            .map(|c| {
                let mut parts = Vec::new();
                if !c.ticked.is_empty() {
                    parts.push(format!("ticked {}", c.ticked.join(", ")));
                }
                if !c.reopened.is_empty() {
                    parts.push(format!("reopened {}", c.reopened.join(", ")));
                }
                format!("{}: {}", c.domain, parts.join("; "))
            })
            .collect(),
    )?;
    match changes {
        None => writeln!(out, "\nFirst import of {org}.")?,
        Some([]) => writeln!(out, "\nNo change since the previous import.")?,
        Some(list) => section(out, "Changed since the previous import:", list.to_vec())?,
    }
    Ok(())
}
