//! `mailaudit checklist`: a domain's remediation checklist with its state.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mailaudit_core::audit::normalize_domain;
use mailaudit_core::guide::{self, Contradiction, ReportView};
use mailaudit_store::{ItemState, Store};

use super::dates;
use super::tracking::now;
use crate::cli::{ChecklistArgs, TextOrJson};
use crate::output::{printable, text_stdout};

pub(crate) async fn checklist_cmd(store: &dyn Store, args: &ChecklistArgs) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let by = args
        .by
        .clone()
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "someone".into()));
    if let Some(key) = args.done.as_deref().or(args.reopen.as_deref()) {
        known_key(store, &domain, key).await?;
    }
    if let Some(key) = &args.done {
        if let Some((at, refused)) = contradiction(store, &domain, key).await? {
            let shows = format!(
                "the latest audit of {domain} ({}) shows: {}",
                dates::format(at),
                printable(&refused.evidence_text())
            );
            if !args.force {
                eprintln!(
                    "mailaudit: {key} cannot be marked done: {shows}. Publish the fix \
                     (`mailaudit guide {domain}` shows it) and re-audit, or use --force to \
                     record it anyway (the next audit will reopen it)."
                );
                return Ok(ExitCode::from(1));
            }
            eprintln!(
                "mailaudit: warning: {key} recorded as done although {shows}; the next audit \
                 will reopen it unless the fix is published by then."
            );
        }
        store
            .set_item_state(&domain, key, ItemState::Done, &by, now())
            .await?;
        audit_item(store, &domain, key, &by, "done").await?;
    }
    if let Some(key) = &args.reopen {
        store
            .set_item_state(&domain, key, ItemState::Open, &by, now())
            .await?;
        audit_item(store, &domain, key, &by, "open").await?;
    }
    let items = store.checklist(&domain).await?;
    let readiness = mailaudit_store::analysis::stored_readiness(store, &domain, now()).await?;
    if args.format == TextOrJson::Json {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &items)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Titles, `--by` names and report reasons: through the one escaping policy.
    let mut out = text_stdout();
    if items.is_empty() {
        writeln!(
            out,
            "{domain}: no checklist yet (run `mailaudit audit {domain}`)"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let open = items.iter().filter(|i| i.state == ItemState::Open).count();
    writeln!(out, "{domain}: {open} of {} items open", items.len())?;
    for i in &items {
        let mark = if i.state == ItemState::Done {
            "[x]"
        } else {
            "[ ]"
        };
        let who = match (&i.by, i.at) {
            (Some(by), Some(at)) => format!("  — {by}, {}", dates::format(at)),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {mark} P{} {:<26} {}{who}",
            i.priority, i.key, i.title
        )?;
        // The DMARC phase items: what the stored aggregate reports say about the move (not
        // under `dmarc-reject` while it is the later phase, after an open `dmarc-quarantine`).
        let later_phase = i.key == "dmarc-reject"
            && items
                .iter()
                .any(|o| o.key == "dmarc-quarantine" && o.state == ItemState::Open);
        if i.state == ItemState::Open
            && !later_phase
            && let Some(next) = match i.key.as_str() {
                "dmarc-quarantine" => Some("quarantine"),
                "dmarc-reject" => Some("reject"),
                _ => None,
            }
        {
            let line = match &readiness {
                Some(r) if r.next == Some(next) && r.ready => {
                    format!("reports: ready for p={next} ({})", r.reasons.join("; "))
                }
                Some(r) if r.next == Some(next) => format!(
                    "reports: not ready for p={next}: {}",
                    r.reasons.first().map_or("", String::as_str)
                ),
                Some(_) => "reports: they judge another phase than this item (re-audit the domain)"
                    .to_string(),
                None => format!(
                    "reports: none stored for the last 30 days (`mailaudit reports ingest`); \
                     `mailaudit reports summary {domain}` judges readiness"
                ),
            };
            writeln!(out, "{:>36}{}", "", printable(&line))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Fails, naming the valid keys and the nearest one, unless `key` is on `domain`'s checklist.
async fn known_key(store: &dyn Store, domain: &str, key: &str) -> Result<()> {
    let items = store.checklist(domain).await?;
    if items.iter().any(|i| i.key == key) {
        return Ok(());
    }
    if items.is_empty() {
        bail!(
            "{domain} has no checklist yet, so it has no item {key:?} (run `mailaudit audit \
             {domain}` first)"
        );
    }
    let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
    let hint = match guide::nearest_key(key, &keys) {
        Some(k) => format!(" (did you mean {k}?)"),
        None => String::new(),
    };
    bail!(
        "{domain}'s checklist has no item {key:?}{hint}; its items are: {}",
        keys.join(", ")
    )
}

/// What the latest stored audit of `domain` shows against marking `key` done, with the audit's
/// time ([`guide::check_manual_done`], the rule by which that audit's successor reopens it).
async fn contradiction(
    store: &dyn Store,
    domain: &str,
    key: &str,
) -> Result<Option<(i64, Contradiction)>> {
    let Some(latest) = store.latest_result(domain).await? else {
        return Ok(None);
    };
    let view = ReportView::from_json(&latest.report).context("reading the latest stored audit")?;
    Ok(guide::check_manual_done(key, &view)
        .err()
        .map(|c| (latest.audited_at, c)))
}

/// Records a checklist change made on the command line in the audit log, as the portal
/// records its own (the name given with --by in the detail).
async fn audit_item(
    store: &dyn Store,
    domain: &str,
    key: &str,
    by: &str,
    state: &str,
) -> Result<()> {
    mailaudit_app::accounts::Actor::cli()
        .record(
            store,
            now(),
            "checklist",
            &format!("{domain} {key}"),
            &format!("{state} (by {by})"),
        )
        .await?;
    Ok(())
}
