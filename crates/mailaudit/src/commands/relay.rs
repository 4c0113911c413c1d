//! `mailaudit relay-test`, and the SMTP options shared with `audit --relay-test`.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use mailaudit_core::audit::{AuditOptions, normalize_domain};
use mailaudit_net::Resolver;
use mailaudit_net::live::RelayOptions;
use mailaudit_net::smtp::{Politeness, SmtpOptions, TlsRoots};

use super::{host_name, resolver_config};
use crate::cli::{Cli, RelayFormat, RelayTestArgs, SmtpArgs};

pub(crate) fn roots(args: &SmtpArgs) -> Result<TlsRoots> {
    Ok(match &args.ca_file {
        Some(path) => TlsRoots::with_ca_file(path)?,
        None => TlsRoots::webpki(),
    })
}

pub(crate) fn relay_options(
    args: &SmtpArgs,
    mx: Option<String>,
    m365_endpoint: Option<String>,
) -> Result<RelayOptions> {
    let t = args.smtp_timeout;
    if !(t.is_finite() && t > 0.0 && t <= 600.0) {
        bail!("--smtp-timeout must be between 0 and 600 seconds, got {t}");
    }
    let reply = Duration::from_secs_f64(t);
    let smtp = SmtpOptions {
        port: args.smtp_port,
        connect_timeout: reply / 3,
        reply_timeout: reply,
        session_timeout: reply * 4,
        roots: roots(args)?,
        ..SmtpOptions::default()
    };
    let host = host_name();
    let user = std::env::var("USER").unwrap_or_else(|_| "mailaudit".to_string());
    Ok(RelayOptions {
        smtp,
        helo: args.helo.clone().unwrap_or_else(|| host.clone()),
        from: args.from.clone(),
        to: args.to.clone(),
        send_test_message: args.send_test_message,
        operator: args
            .operator
            .clone()
            .unwrap_or_else(|| format!("{user}@{host}")),
        politeness: Politeness::new(8, 1, Duration::from_secs(1)),
        mx,
        m365_endpoint,
        tls_hosts: 3,
        per_domain: Default::default(),
    })
}

pub(crate) async fn relay_test(cli: &Cli, args: &RelayTestArgs) -> Result<ExitCode> {
    let domain = normalize_domain(&args.domain)?;
    let config = resolver_config(cli, args.timeout, 1)?;
    let opts = relay_options(&args.smtp, args.mx.clone(), args.m365_endpoint.clone())?;
    super::dns_check::check_resolvers(&config).await?;
    let resolver = Resolver::new(&config)?;
    let report =
        mailaudit_core::audit::audit_domain(&resolver, &domain, &AuditOptions::default()).await;
    let (section, findings) = mailaudit_net::live::relay_test(&resolver, &report, &opts).await;
    // The text transcript goes through the one escaping policy (MX names, replies,
    // certificate errors come from the network); JSON is escaped by serde.
    let mut out: Box<dyn Write> = match args.format {
        RelayFormat::Json => Box::new(io::stdout().lock()),
        RelayFormat::Text => Box::new(crate::output::text_stdout()),
    };
    match args.format {
        RelayFormat::Json => {
            let value =
                serde_json::json!({ "domain": domain, "relay": section, "findings": findings });
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
        RelayFormat::Text => {
            let verdict = section.verdict.to_uppercase();
            writeln!(out, "{domain}: {verdict}")?;
            if let Some(reason) = &section.reason {
                writeln!(out, "  {}", crate::output::printable(reason))?;
            }
            if let Some(reply) = &section.reply {
                writeln!(out, "  deciding reply: {}", crate::output::printable(reply))?;
            }
            for p in &section.probes {
                let kind = if p.relay {
                    "relay probe"
                } else {
                    "STARTTLS/TLS check"
                };
                let addr = p.addr.as_deref().unwrap_or("not connected");
                writeln!(
                    out,
                    "\n  {kind} of {} [{addr}]: {} — {}",
                    p.host,
                    p.verdict.as_str(),
                    crate::output::printable(&p.reason)
                )?;
                if let Some(tls) = &p.tls {
                    let cert = if tls.cert_valid {
                        "certificate valid".to_string()
                    } else {
                        format!(
                            "certificate INVALID: {}",
                            tls.cert_error.as_deref().unwrap_or("unknown reason")
                        )
                    };
                    writeln!(out, "    TLS {} {}; {cert}", tls.version, tls.cipher)?;
                } else if p.starttls_offered == Some(false) {
                    writeln!(out, "    STARTTLS not offered")?;
                }
                for line in &p.transcript {
                    writeln!(out, "    {}", crate::output::printable(&line.to_string()))?;
                }
            }
            for f in &findings {
                writeln!(
                    out,
                    "\n  {} {}: {}",
                    f.severity.as_str().to_uppercase(),
                    f.id,
                    crate::output::printable(&f.detail)
                )?;
            }
        }
    }
    Ok(match section.verdict.as_str() {
        "blocked" => ExitCode::SUCCESS,
        "open" => ExitCode::from(1),
        "not_tested" => {
            eprintln!(
                "mailaudit: {domain}: {}",
                crate::output::printable(section.reason.as_deref().unwrap_or("nothing to test"))
            );
            ExitCode::from(2)
        }
        _ => ExitCode::from(3),
    })
}
