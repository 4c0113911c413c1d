//! `mailaudit exo`: the Exchange Online collection script and the offline evaluation of its
//! export, correlated with the DNS audits of the tenant's domains. What an import does is
//! [`mailaudit_app::exo`]; this module reads the files (each capped) and prints the result.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mailaudit_app::exo::{Bundle, ChecklistChange, ImportOptions, Imported};
use mailaudit_core::exo::{self, Auth, CMDLETS, ScriptOptions, TenantConfig};
use mailaudit_core::finding::Finding;
use mailaudit_store::Store;
use serde_json::Value;

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

/// Reads the inputs into one bundle-shaped JSON object ([`Bundle`]). Each file is at most
/// `max_bytes` bytes ([`read_capped`]).
fn read_inputs(paths: &[std::path::PathBuf], max_bytes: u64) -> Result<(Value, Vec<String>)> {
    let mut bundle = Bundle::default();
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
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let added = bundle
            .add_json(name, &text)
            .with_context(|| format!("{}: not JSON", f.display()))?;
        if !added {
            eprintln!(
                "mailaudit: {}: not an export mailaudit reads (name it after a cmdlet, e.g. inbound_connectors.json); skipped",
                f.display()
            );
        }
    }
    if bundle.is_empty() {
        bail!(
            "no export to read in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(bundle.into_parts())
}

pub(crate) async fn import(store: &dyn Store, args: &ExoImportArgs) -> Result<ExitCode> {
    let (bundle, sources) = read_inputs(&args.paths, args.max_file_mb.saturating_mul(1024 * 1024))?;
    let opts = ImportOptions {
        customer: args.customer.as_deref(),
        no_store: args.no_store,
    };
    let imported = mailaudit_app::exo::import(store, &bundle, &sources, opts, &mut |w| {
        eprintln!("mailaudit: warning: {w}");
    })
    .await?;
    let Imported {
        organization: org,
        findings,
        ..
    } = &imported;

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
                "correlation": imported.correlation,
                "changes": imported.changes,
                "checklist": imported.checklist,
            });
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        TextOrJson::Text => write_text(
            &mut out,
            org,
            &imported.tenant,
            findings,
            &imported.correlation,
            imported.changes.as_deref(),
            &imported.checklist,
        )?,
    }
    if let Some(threshold) = args.fail_on
        && findings.iter().any(|f| f.severity >= threshold)
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
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
        "Inbound SMTP DANE: tenant and MX disagree:",
        c.dane_mismatch
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
