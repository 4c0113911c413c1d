//! The sub-commands: wiring of the library crates, one module per command family.

mod audit;
mod checklist;
mod checks;
pub(crate) mod dates;
mod demo;
mod distributed;
mod dns_check;
mod exo;
mod guide;
mod history;
mod inventory;
mod relay;
mod report;
mod reports;
mod reports_fetch;
mod schedule;
mod spf_eval;
mod sso;
mod user;

use mailaudit_app::tracking;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mailaudit_net::dns::parse_nameserver;
use mailaudit_net::{Dnssec, ResolverConfig};
use mailaudit_store::{Location, OpenMode, StoreError};

use crate::cli::{
    Cli, ColorChoice, Command, CustomerCommand, DomainCommand, ExoCommand, ReportsCommand,
    ScheduleCommand, UserCommand,
};

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
        Command::Customer(w) => with_store!(cli, |s| inventory::customer(s, &w.command)),
        Command::User(w) => with_store!(cli, |s| user::user_cmd(s, &w.command)),
        Command::Domain(w) => with_store!(cli, |s| inventory::domain(s, &w.command)),
        Command::Import(args) => with_store!(cli, |s| inventory::import(s, args)),
        Command::Worker(args) => runtime()?.block_on(distributed::worker(&cli, args)),
        Command::Runs(args) => with_store!(cli, |s| distributed::runs_cmd(s, args)),
        Command::History(args) => with_store!(cli, |s| history::history_cmd(s, args)),
        Command::Diff(args) => with_store!(cli, |s| history::diff_cmd(s, args)),
        Command::Prune(args) => with_store!(cli, |s| history::prune_cmd(s, args)),
        Command::Guide(args) => with_store!(cli, |s| guide::guide_cmd(&cli, s, args)),
        Command::Checklist(args) => with_store!(cli, |s| checklist::checklist_cmd(s, args)),
        Command::Report(args) => with_store!(cli, |s| report::report_cmd(s, args)),
        Command::Branding(args) => with_store!(cli, |s| report::branding_cmd(s, args)),
        Command::Schedule(w) => {
            with_store!(cli, |s| schedule::schedule_cmd(&cli, s, &w.command))
        }
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

/// Opens the store named by `--db` (or the default SQLite file). The default store is created
/// (with its directories) on first use; a SQLite file named by `--db` or MAILAUDIT_DB that does
/// not exist is created only by a command that writes (see [`creates_store`]), never with its
/// directories, and a reading command fails instead.
pub(crate) async fn open_store(cli: &Cli) -> Result<Box<dyn mailaudit_store::Store>> {
    match cli.db.as_deref() {
        None => {
            let path = mailaudit_store::default_sqlite_path();
            let shown = path.display().to_string();
            open_store_at(
                &Location::SqliteFile(path),
                OpenMode::CreateWithParents,
                &shown,
                "--db",
            )
            .await
        }
        Some(url) => {
            let mode = if creates_store(&cli.command) {
                OpenMode::CreateIfMissing
            } else {
                OpenMode::MustExist
            };
            // Where the URL came from, for the hint.
            let option = if std::env::var("MAILAUDIT_DB").ok().as_deref() == Some(url) {
                "MAILAUDIT_DB"
            } else {
                "--db"
            };
            let shown = mailaudit_store::redact_url(url);
            open_store_at(&Location::parse(Some(url))?, mode, &shown, option).await
        }
    }
}

/// Opens the store at `location` as `mode` allows, saying on standard error when that created
/// a new SQLite file; a store that is missing, or cannot be created where `option` (the option
/// that named it) says, is an error that says what to check.
pub(crate) async fn open_store_at(
    location: &Location,
    mode: OpenMode,
    shown: &str,
    option: &str,
) -> Result<Box<dyn mailaudit_store::Store>> {
    match mailaudit_store::open_with(location, mode).await {
        Ok(opened) => {
            if let Some(path) = &opened.created {
                eprintln!("mailaudit: created a new store at {}", path.display());
            }
            Ok(opened.store)
        }
        Err(StoreError::NoStore {
            path,
            missing_dir: None,
        }) => bail!(
            "no store at {} (check {option}); commands that write create it",
            path.display()
        ),
        Err(StoreError::NoStore {
            path,
            missing_dir: Some(dir),
        }) => bail!(
            "no store at {}: directory {} does not exist (check {option})",
            path.display(),
            dir.display()
        ),
        Err(StoreError::NoDirectory { path, dir }) => bail!(
            "cannot create a store at {}: directory {} does not exist (check {option}; \
             mailaudit creates the file, not its directory)",
            path.display(),
            dir.display()
        ),
        Err(e @ StoreError::Unreachable { .. }) => bail!("{e} (check {option})"),
        Err(e) => Err(e).with_context(|| format!("cannot open the store {shown}")),
    }
}

/// Whether a command may create the store named by `--db` when its SQLite file does not exist:
/// those that add to an empty store. A command that only reads, or changes what must already
/// be stored (a customer's domains, a schedule to remove, a checklist item to tick), or serves
/// the store (`serve`, `schedule run`), needs it to exist, so a mistyped path is an error and
/// not a new, empty store. README "Inventory, history and the remediation guide" lists them.
fn creates_store(command: &Command) -> bool {
    match command {
        // Auditing names records the run; auditing the inventory needs one.
        Command::Audit(a) => !a.domains.is_empty() || !a.file.is_empty(),
        Command::Customer(w) => matches!(w.command, CustomerCommand::Add { .. }),
        // The first admin of a new store.
        Command::User(w) => matches!(w.command, UserCommand::Add { .. }),
        Command::Domain(w) => matches!(&w.command, DomainCommand::Add(a) if a.customer.is_none()),
        Command::Import(_) => true,
        // A fresh audit is recorded for a domain that has none; a customer must exist.
        Command::Guide(g) => g.customer.is_none(),
        Command::Schedule(w) => {
            matches!(&w.command, ScheduleCommand::Set { customer, .. } if customer.is_none())
        }
        Command::Exo(ExoCommand::Import(a)) => !a.no_store,
        Command::Reports(ReportsCommand::Ingest(_) | ReportsCommand::Fetch(_)) => true,
        Command::Demo(_) => true,
        _ => false,
    }
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
        dnssec: match (&cli.trust_anchor, cli.no_dnssec) {
            (_, true) => Dnssec::Off,
            (Some(path), false) => Dnssec::TrustAnchorFile(path.clone()),
            (None, false) => Dnssec::IanaRoot,
        },
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
