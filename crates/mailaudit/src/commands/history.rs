//! `mailaudit history`, `mailaudit diff`: a domain's audits over time; `mailaudit prune`: the
//! old ones down to their summaries.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use mailaudit_core::audit::normalize_domain;
use mailaudit_core::guide::ReportView;
use mailaudit_core::history::{self, Diff};
use mailaudit_store::Store;

use crate::cli::{DiffArgs, HistoryArgs, PruneArgs, TextOrJson};
use crate::output::{printable, text_stdout};

pub(crate) async fn history_cmd(store: &dyn Store, args: &HistoryArgs) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let results = store.history(&domain, args.limit.max(1)).await?;
    if args.format == TextOrJson::Json {
        let mut out = io::stdout().lock();
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|r| serde_json::json!({ "run": r.run_id, "audited_at": r.audited_at, "score": r.score, "summary": r.summary, "report": r.report }))
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = text_stdout();
    if results.is_empty() {
        writeln!(
            out,
            "{domain}: no stored audit (run `mailaudit audit {domain}`)"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{domain}: {} audits, newest first", results.len())?;
    for r in &results {
        let view = ReportView::from_json(&r.report).context("reading a stored audit")?;
        let score = r.score.map_or("n/a".to_string(), |s| s.to_string());
        let ids: Vec<&str> = view
            .findings
            .iter()
            .filter(|f| f.severity > mailaudit_core::Severity::Info)
            .map(|f| f.id.as_str())
            .collect();
        writeln!(
            out,
            "  {}  run {:<5} score {score:>3}  {}",
            super::dates::format(r.audited_at),
            r.run_id,
            ids.join(" ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_diff(out: &mut dyn Write, domain: &str, d: &Diff) -> Result<()> {
    let fmt = |s: Option<u8>| s.map_or("n/a".to_string(), |s| s.to_string());
    writeln!(
        out,
        "{domain}: score {} → {}",
        fmt(d.score.0),
        fmt(d.score.1)
    )?;
    if d.is_empty() {
        writeln!(out, "  no change")?;
    }
    for (label, list) in [
        ("new", &d.new),
        ("regressed", &d.regressed),
        ("fixed", &d.fixed),
        ("unverified", &d.unverified),
    ] {
        for f in list {
            writeln!(
                out,
                "  {label:<10} {:<26} {}",
                f.id.as_str(),
                printable(&f.title)
            )?;
        }
    }
    for c in &d.changes {
        let mark = if c.regression { "worse" } else { "better" };
        let v = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
        writeln!(
            out,
            "  {mark:<10} {}: {} → {}",
            c.what,
            v(&c.before),
            v(&c.after)
        )?;
    }
    Ok(())
}

pub(crate) async fn diff_cmd(store: &dyn Store, args: &DiffArgs) -> Result<ExitCode> {
    let domains: Vec<String> = if args.domains.is_empty() {
        store
            .domains(args.customer.as_deref())
            .await?
            .into_iter()
            .map(|d| d.name)
            .collect()
    } else {
        args.domains
            .iter()
            .map(|d| normalize_domain(d))
            .collect::<Result<_, _>>()?
    };
    let mut out: Box<dyn Write> = match args.format {
        TextOrJson::Json => Box::new(io::stdout().lock()),
        TextOrJson::Text => Box::new(text_stdout()),
    };
    let mut json = Vec::new();
    let mut worsened = false;
    for domain in &domains {
        let results = store.history(domain, 10).await?;
        let views: Vec<ReportView> = results
            .iter()
            .filter_map(|r| ReportView::from_json(&r.report).ok())
            .collect();
        let [cur, prev, earlier @ ..] = views.as_slice() else {
            if args.format == TextOrJson::Text {
                writeln!(
                    out,
                    "{domain}: fewer than two stored audits, nothing to compare"
                )?;
            }
            continue;
        };
        let d = history::diff(prev, cur, earlier);
        worsened |= d.worsened();
        match args.format {
            TextOrJson::Json => json.push(serde_json::json!({ "domain": domain, "diff": d })),
            TextOrJson::Text => write_diff(&mut out, domain, &d)?,
        }
    }
    if args.format == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    }
    Ok(if worsened {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `mailaudit prune --keep INTERVAL`: old audits down to their summaries, then the space back.
pub(crate) async fn prune_cmd(store: &dyn Store, args: &PruneArgs) -> Result<ExitCode> {
    let now = mailaudit_store::now();
    let before = now.saturating_sub(args.keep);
    let pruned = store
        .prune_results(before)
        .await
        .context("pruning the stored audits")?;
    store.compact().await.context("compacting the store")?;
    if args.format == TextOrJson::Json {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "before": before,
                "results_summarized": pruned.results,
                "report_bodies_deleted": pruned.bodies,
            }),
        )?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = text_stdout();
    writeln!(
        out,
        "{} audit(s) from before {} kept as summaries; {} stored report(s) no audit uses any \
         more deleted",
        pruned.results,
        crate::commands::dates::format(before),
        pruned.bodies
    )?;
    Ok(ExitCode::SUCCESS)
}
