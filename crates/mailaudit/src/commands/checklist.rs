//! `mailaudit checklist`: a domain's remediation checklist with its state.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use mailaudit_core::audit::normalize_domain;
use mailaudit_store::{ItemState, Store};

use super::dates;
use super::tracking::now;
use crate::cli::{ChecklistArgs, TextOrJson};

pub(crate) async fn checklist_cmd(store: &dyn Store, args: &ChecklistArgs) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let by = args
        .by
        .clone()
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "someone".into()));
    if let Some(key) = &args.done {
        store
            .set_item_state(&domain, key, ItemState::Done, &by, now())
            .await?;
    }
    if let Some(key) = &args.reopen {
        store
            .set_item_state(&domain, key, ItemState::Open, &by, now())
            .await?;
    }
    let items = store.checklist(&domain).await?;
    let mut out = io::stdout().lock();
    if args.format == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &items)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
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
    }
    Ok(ExitCode::SUCCESS)
}
