//! The sub-commands: wiring of the library crates, one module per command family.

mod audit;
mod checklist;
mod checks;
pub(crate) mod dates;
mod demo;
mod exo;
mod guide;
mod history;
mod inventory;
mod relay;
mod reports;
mod reports_fetch;
mod schedule;
mod spf_eval;
mod tracking;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mailaudit_net::ResolverConfig;
use mailaudit_net::dns::parse_nameserver;

use crate::cli::{Cli, ColorChoice, Command, ExoCommand, ReportsCommand};

/// Opens the store (`--db`, default the embedded SQLite file), runs the command with it on a
/// runtime, and closes it.
macro_rules! with_store {
    ($cli:ident, |$s:ident| $body:expr) => {
        runtime()?.block_on(async {
            let store = open_store(&$cli).await?;
            let $s = store.as_ref();
            let result = $body.await;
            store.close().await;
            result
        })
    };
}

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Audit(args) => runtime()?.block_on(audit::audit(&cli, args)),
        Command::SpfEval(args) => runtime()?.block_on(spf_eval::spf_eval(&cli, args)),
        Command::RelayTest(args) => runtime()?.block_on(relay::relay_test(&cli, args)),
        Command::Checks(args) => checks::checks(args),
        Command::Customer(cmd) => with_store!(cli, |s| inventory::customer(s, cmd)),
        Command::Domain(cmd) => with_store!(cli, |s| inventory::domain(s, cmd)),
        Command::Import(args) => with_store!(cli, |s| inventory::import(s, args)),
        Command::History(args) => with_store!(cli, |s| history::history_cmd(s, args)),
        Command::Diff(args) => with_store!(cli, |s| history::diff_cmd(s, args)),
        Command::Guide(args) => with_store!(cli, |s| guide::guide_cmd(&cli, s, args)),
        Command::Checklist(args) => with_store!(cli, |s| checklist::checklist_cmd(s, args)),
        Command::Schedule(cmd) => with_store!(cli, |s| schedule::schedule_cmd(&cli, s, cmd)),
        Command::Serve(args) => runtime()?.block_on(schedule::serve(&cli, args)),
        Command::Exo(ExoCommand::Script(args)) => exo::script(args),
        Command::Exo(ExoCommand::Import(args)) => with_store!(cli, |s| exo::import(s, args)),
        Command::Reports(ReportsCommand::Parse(args)) => reports::parse(args),
        Command::Reports(ReportsCommand::Ingest(args)) => {
            with_store!(cli, |s| reports::ingest(s, args))
        }
        Command::Reports(ReportsCommand::Fetch(args)) => {
            with_store!(cli, |s| reports_fetch::fetch(&cli, s, args))
        }
        Command::Reports(ReportsCommand::Summary(args)) => {
            with_store!(cli, |s| reports::summary(&cli, s, args))
        }
        Command::Reports(ReportsCommand::List(args)) => {
            with_store!(cli, |s| reports::list(s, args))
        }
        Command::Reports(ReportsCommand::Raw(args)) => {
            with_store!(cli, |s| reports::raw(s, args))
        }
        Command::Demo(args) => runtime()?.block_on(demo::demo(&cli, args)),
    }
}

/// Opens the store named by `--db` (or the default SQLite file).
pub(crate) async fn open_store(cli: &Cli) -> Result<Box<dyn mailaudit_store::Store>> {
    let shown = cli.db.as_deref().map(mailaudit_store::redact_url);
    mailaudit_store::open(cli.db.as_deref())
        .await
        .with_context(|| match shown {
            Some(url) => format!("cannot open the store {url}"),
            None => format!(
                "cannot open the store {}",
                mailaudit_store::default_sqlite_path().display()
            ),
        })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn resolver_config(cli: &Cli, timeout: f64, retries: usize) -> Result<ResolverConfig> {
    let nameservers = cli
        .nameserver
        .iter()
        .map(|s| parse_nameserver(s))
        .collect::<Result<Vec<_>, _>>()?;
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 300.0) {
        bail!("--timeout must be between 0 and 300 seconds, got {timeout}");
    }
    Ok(ResolverConfig {
        nameservers,
        timeout: Duration::from_secs_f64(timeout),
        attempts: retries + 1,
        ..ResolverConfig::default()
    })
}

pub(crate) fn color_enabled(choice: ColorChoice, to_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// This machine's host name, for EHLO and the operator label.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
