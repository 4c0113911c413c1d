//! Command-line definitions: the help text lives on the arguments, so `--help` and the manual
//! come from one source.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mailaudit_core::Severity;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a finding at or above --fail-on was reported
  2  error: bad arguments, unreadable input, or an input line that is not a domain name
     (the run still audits every other domain)";

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  a finding at or above --fail-on was reported
  2  error: bad arguments, unreadable input, or an input line that is not a domain name
     (the run still audits every other domain)

Examples:
  mailaudit audit --sample                      audit the built-in sample fleet (no network)
  mailaudit audit contoso.com fabrikam.com
  mailaudit audit --file domains.txt --format json --output audit.json
  mailaudit audit --file domains.txt --format csv --fail-on high
  mailaudit spf-eval --ip 192.0.2.10 --sender user@contoso.com
  mailaudit checks SPF-LOOKUP-LIMIT";

/// Audit and harden the email security (SPF, DMARC, DKIM, MX, MTA-STS, TLS-RPT) of many
/// Microsoft 365 domains at once.
#[derive(Debug, Parser)]
#[command(name = "mailaudit", version, about, after_help = AFTER_HELP, max_term_width = 100)]
pub(crate) struct Cli {
    /// Send every DNS query of the run to this recursive resolver instead of the system's
    /// (`/etc/resolv.conf`). ADDR or ADDR:PORT ([V6]:PORT for IPv6); repeatable.
    #[arg(long, global = true, value_name = "ADDR[:PORT]")]
    pub(crate) nameserver: Vec<String>,

    /// When to use colours in terminal output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Audit domains' email DNS and report findings (CHECKS.md) with a 0-100 score each.
    ///
    /// Domains come from the arguments and from --file (one per line; blank lines and `#`
    /// comments ignored; only the first column of a CSV line is read). Names are trimmed,
    /// lower-cased and converted to A-labels; duplicates are audited once; invalid names are
    /// reported and the run goes on. Results are written as domains finish, in input order.
    #[command(after_help = EXIT_CODES)]
    Audit(AuditArgs),
    /// Evaluate SPF for a connection, as a receiver would (RFC 7208 check_host()).
    ///
    /// Prints the result (pass, fail, softfail, neutral, none, permerror, temperror) as the
    /// first line of standard output, then the explanation if the domain publishes one.
    #[command(name = "spf-eval")]
    SpfEval(SpfEvalArgs),
    /// Explain the checks: what each finding means, why it matters, how to fix it in Microsoft 365.
    Checks(ChecksArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Domains to audit.
    #[arg(value_name = "DOMAIN")]
    pub(crate) domains: Vec<String>,

    /// Read domains from this file, one per line (`-` for standard input).
    #[arg(long, short = 'f', value_name = "PATH")]
    pub(crate) file: Vec<PathBuf>,

    /// Audit the built-in sample fleet, served by an in-process DNS server on loopback: real
    /// output with no network.
    #[arg(long, conflicts_with_all = ["domains", "file", "nameserver"])]
    pub(crate) sample: bool,

    /// Output format: a readable table, a JSON array (one object per domain), CSV (one row per
    /// finding), or a self-contained HTML report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,

    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,

    /// Domains audited at once. The default keeps a 2-core machine busy against a nearby resolver.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) concurrency: usize,

    /// Seconds to wait for each DNS reply before retrying.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub(crate) timeout: f64,

    /// Times a DNS query is retried after a timeout.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) retries: usize,

    /// Exit with status 1 if any finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub(crate) fail_on: Option<Severity>,

    /// A file of domains that send no mail (one per line): they must publish `v=spf1 -all` and
    /// DMARC `p=reject` (PARKED-NOT-LOCKED). Domains with a null MX are treated as parked anyway.
    #[arg(long, value_name = "FILE")]
    pub(crate) parked: Option<PathBuf>,

    /// Do not draw a progress bar (it is drawn on standard error only when that is a terminal).
    #[arg(long)]
    pub(crate) no_progress: bool,

    /// Print DNS statistics (look-ups, queries sent, domains per second) to standard error at the end.
    #[arg(long)]
    pub(crate) stats: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SpfEvalArgs {
    /// The connecting client's IP address.
    #[arg(long, value_name = "IP")]
    pub(crate) ip: std::net::IpAddr,
    /// The MAIL FROM address (the domain after `@` is evaluated; an empty sender uses the HELO name).
    #[arg(long, value_name = "ADDR", allow_hyphen_values = true)]
    pub(crate) sender: String,
    /// The HELO/EHLO name the client gave.
    #[arg(long, value_name = "NAME", default_value = "unknown")]
    pub(crate) helo: String,
    /// Seconds to wait for each DNS reply before retrying.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub(crate) timeout: f64,
}

#[derive(Debug, Args)]
pub(crate) struct ChecksArgs {
    /// A check ID (e.g. SPF-LOOKUP-LIMIT) or code (e.g. SPF009); without it, list all checks.
    #[arg(value_name = "ID")]
    pub(crate) id: Option<String>,
    /// Print the full reference of every check as Markdown.
    #[arg(long)]
    pub(crate) markdown: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
        .map_err(|e: mailaudit_core::CoreError| e.to_string())
}
