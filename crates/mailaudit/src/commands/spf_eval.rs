//! `mailaudit spf-eval`: RFC 7208 check_host().

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use mailaudit_net::Resolver;

use super::resolver_config;
use crate::cli::{Cli, SpfEvalArgs};

pub(crate) async fn spf_eval(cli: &Cli, args: &SpfEvalArgs) -> Result<ExitCode> {
    let config = resolver_config(cli, args.timeout, 1)?;
    super::dns_check::check_resolvers(&config).await?;
    let resolver = Resolver::new(&config)?;
    let sender = args.sender.trim();
    let domain = match sender.rsplit_once('@') {
        Some((_, d)) => d.to_string(),
        None if sender.is_empty() => args.helo.clone(),
        None => sender.to_string(),
    };
    let outcome =
        mailaudit_core::spf::check_host(&resolver, args.ip, &domain, sender, &args.helo).await;
    // The explanation (`exp=`) comes from DNS: through the one escaping policy.
    let mut out = crate::output::text_stdout();
    writeln!(out, "{}", outcome.result.as_str())?;
    if let Some(exp) = &outcome.explanation {
        writeln!(out, "{exp}")?;
    }
    if !outcome.reason.is_empty() {
        eprintln!("mailaudit: {}", crate::output::printable(&outcome.reason));
    }
    Ok(ExitCode::SUCCESS)
}
