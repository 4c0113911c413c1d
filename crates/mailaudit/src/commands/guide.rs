//! `mailaudit guide`: the remediation guide from the latest stored audit (or a fresh one).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mailaudit_core::audit::{AuditOptions, audit_domain, normalize_domain};
use mailaudit_core::guide::{self, ReportView};
use mailaudit_net::Resolver;
use mailaudit_store::Store;

use super::resolver_config;
use super::tracking;
use crate::cli::{Cli, GuideArgs, GuideFormat};

pub(crate) async fn guide_cmd(cli: &Cli, store: &dyn Store, args: &GuideArgs) -> Result<ExitCode> {
    let domains: Vec<String> = match (&args.domain, &args.customer) {
        (Some(d), _) => vec![normalize_domain(d)?],
        (None, Some(c)) => store
            .domains(Some(c))
            .await?
            .into_iter()
            .map(|d| d.name)
            .collect(),
        (None, None) => bail!("give a DOMAIN or --customer NAME"),
    };
    let mut pages = Vec::new();
    for domain in &domains {
        let view = match store.latest_result(domain).await? {
            Some(r) => ReportView::from_json(&r.report).context("reading the stored audit")?,
            None => {
                // No audit yet: run one (DNS only) and record it, so the checklist exists too.
                let config = resolver_config(cli, args.timeout, 1)?;
                super::dns_check::check_resolvers(&config).await?;
                let resolver = Resolver::new(&config)?;
                let entry = store.domain(domain).await.ok();
                let mut opts = AuditOptions::default();
                if entry.as_ref().is_some_and(|e| e.parked) {
                    opts.parked.insert(domain.clone());
                }
                let report = audit_domain(&resolver, domain, &opts).await;
                let run = store.begin_run("cli", tracking::now()).await?;
                tracking::record(store, run, &report, false).await?;
                store
                    .finish_run(run, mailaudit_store::RunStatus::Complete, tracking::now())
                    .await?;
                ReportView::from_report(&report)
            }
        };
        // The tenant's Exchange Online findings (connectors, Direct Send, transport rules,
        // anti-phishing) and DKIM CNAMEs from its newest import, the inventory's data and the
        // roll-out: built as the portal builds it.
        pages.push(
            mailaudit_app::stored::guide_for(
                store,
                domain,
                view,
                tracking::now(),
                args.rua.clone(),
            )
            .await?,
        );
    }
    let text = match args.format {
        GuideFormat::Md => pages
            .iter()
            .map(guide::render_markdown)
            .collect::<Vec<_>>()
            .join("\n---\n\n"),
        // One object for a DOMAIN, an array of them for --customer.
        GuideFormat::Json => {
            let mut json = if args.customer.is_some() {
                serde_json::to_string_pretty(&pages)?
            } else {
                serde_json::to_string_pretty(&pages[0])?
            };
            json.push('\n');
            json
        }
        // The portal's renderer (maud templates, every value escaped): one page per domain.
        GuideFormat::Html => pages
            .iter()
            .map(mailaudit_portal::guide_html::page)
            .collect::<Vec<_>>()
            .join("\n"),
    };
    // One escaping policy for the terminal and the file alike (it is opened in terminals and
    // editors): control characters and bidi overrides from records, replies and names escaped.
    // JSON escapes control characters itself (and must stay valid JSON).
    let text = if args.format == GuideFormat::Json {
        text
    } else {
        crate::output::printable(&text).into_owned()
    };
    match &args.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("{}: cannot write", p.display()))?
        }
        None => io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
