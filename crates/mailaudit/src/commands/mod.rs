//! The sub-commands: wiring of the library crates, one module per command family.

mod audit;
mod checks;
mod relay;
mod spf_eval;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mailaudit_net::ResolverConfig;
use mailaudit_net::dns::parse_nameserver;

use crate::cli::{Cli, ColorChoice, Command};

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Audit(args) => runtime()?.block_on(audit::audit(&cli, args)),
        Command::SpfEval(args) => runtime()?.block_on(spf_eval::spf_eval(&cli, args)),
        Command::RelayTest(args) => runtime()?.block_on(relay::relay_test(&cli, args)),
        Command::Checks(args) => checks::checks(args),
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
