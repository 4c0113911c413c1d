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
  mailaudit audit --file domains.txt --relay-test --helo probe.msp.example
  mailaudit relay-test contoso.com --to alerts@contoso.com
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
    /// Test whether a domain's inbound endpoint accepts mail that spoofs the domain itself
    /// (Microsoft 365 "Direct Send"), and check STARTTLS/TLS of its MX hosts.
    ///
    /// Connects to the domain's Microsoft 365 endpoint (or the MX given with --mx) on port 25:
    /// EHLO, STARTTLS when offered (then EHLO again), MAIL FROM an address of the domain, RCPT TO
    /// a mailbox of the domain, then RSET and QUIT. Nothing is delivered: DATA is never sent
    /// unless --send-test-message is given. Behind a third-party gateway, the gateway MX is
    /// tested, and the Microsoft endpoint too when given with --m365-endpoint (attackers skip
    /// the gateway). Only test domains you are responsible for.
    #[command(name = "relay-test", after_help = RELAY_EXIT_CODES)]
    RelayTest(RelayTestArgs),
    /// Explain the checks: what each finding means, why it matters, how to fix it in Microsoft 365.
    Checks(ChecksArgs),
}

const RELAY_EXIT_CODES: &str = "\
Exit codes:
  0  blocked: the endpoint refused the spoofed envelope
  1  open: Direct Send spoofing is possible (RELAY-OPEN)
  2  error: bad arguments, no MX to test
  3  inconclusive: port 25 blocked, greylisting, unknown recipient, the probe's address refused";

/// Options of the SMTP probe, shared by `audit --relay-test` and `relay-test`.
#[derive(Debug, Args)]
pub(crate) struct SmtpArgs {
    /// The SMTP port to connect to (25; another for labs).
    #[arg(long, value_name = "PORT", default_value_t = 25)]
    pub(crate) smtp_port: u16,
    /// The host name given in EHLO: use a real, resolvable name of this machine.
    /// Default: this machine's host name.
    #[arg(long, value_name = "NAME")]
    pub(crate) helo: Option<String>,
    /// The envelope sender: an existing address of the domain (a full address, or a local part
    /// completed with @DOMAIN). Default: the recipient.
    #[arg(long = "from", value_name = "ADDR")]
    pub(crate) from: Option<String>,
    /// The envelope recipient: an existing mailbox of the domain (a full address, or a local
    /// part). Default: postmaster.
    #[arg(long = "to", value_name = "ADDR")]
    pub(crate) to: Option<String>,
    /// Send one clearly labelled test message (subject and an X-Mailaudit-Test header saying
    /// it is a security test and who ran it) to the recipient, who must have consented.
    #[arg(long)]
    pub(crate) send_test_message: bool,
    /// Who runs the test, named in the test message. Default: USER@HOSTNAME.
    #[arg(long, value_name = "TEXT")]
    pub(crate) operator: Option<String>,
    /// Trust the CA certificates in this PEM file too (labs), besides the web PKI roots.
    #[arg(long, value_name = "PATH")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Seconds to wait for each SMTP reply (the connection gets a third of it, the whole
    /// session four times it).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub(crate) smtp_timeout: f64,
}

#[derive(Debug, Args)]
pub(crate) struct RelayTestArgs {
    /// The domain to test.
    #[arg(value_name = "DOMAIN")]
    pub(crate) domain: String,
    /// Probe this host instead of the one chosen from the domain's MX records.
    #[arg(long, value_name = "HOST")]
    pub(crate) mx: Option<String>,
    /// The tenant's Microsoft 365 endpoint (`<label>.mail.protection.outlook.com`), probed
    /// too when the MX is a third-party gateway.
    #[arg(long, value_name = "HOST")]
    pub(crate) m365_endpoint: Option<String>,
    #[command(flatten)]
    pub(crate) smtp: SmtpArgs,
    /// Output: the verdict and the transcript as text, or the JSON `relay` object.
    #[arg(long, value_enum, default_value_t = RelayFormat::Text)]
    pub(crate) format: RelayFormat,
    /// Seconds to wait for each DNS reply before retrying.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub(crate) timeout: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RelayFormat {
    Text,
    Json,
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

    /// Run the Direct Send relay test (see `mailaudit relay-test --help`) on each domain, and
    /// check STARTTLS/TLS of its MX hosts. Probes are polite: one connection per MX host at a
    /// time, at most 8 at once, spaced.
    #[arg(long)]
    pub(crate) relay_test: bool,

    #[command(flatten)]
    pub(crate) smtp: SmtpArgs,

    /// Do not fetch MTA-STS policies over HTTPS (by default the policy of each domain that
    /// publishes an `_mta-sts` record is fetched and checked against its MX hosts).
    #[arg(long)]
    pub(crate) no_policy_fetch: bool,

    /// The HTTPS port of MTA-STS policy hosts (443; another for labs).
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub(crate) https_port: u16,
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
