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
     (the run still audits every other domain); a resolver that does not answer a test
     query (checked before the run, 2 s at most); or every DNS look-up of the run failed

A domain that does not exist (NXDOMAIN) is reported as DOMAIN-NOT-FOUND, with no score.";

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  a finding at or above --fail-on was reported
  2  error: bad arguments, unreadable input, or an input line that is not a domain name
     (the run still audits every other domain)

Examples:
  mailaudit audit --sample                      audit the built-in sample fleet (no network)
  mailaudit demo                                the whole product on the sample fleet, in the portal
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
    /// The recursive resolver for the commands that do DNS, given before the command (also
    /// accepted after it, where `--help` shows it).
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub(crate) nameserver: Vec<String>,

    /// No DNSSEC validation, for the commands that do DNS (also accepted after the command,
    /// where `--help` says more).
    #[arg(long, conflicts_with = "trust_anchor")]
    pub(crate) no_dnssec: bool,

    /// The DNSSEC trust anchor file, for the commands that do DNS (also accepted after the
    /// command, where `--help` says more).
    #[arg(long, value_name = "FILE")]
    pub(crate) trust_anchor: Option<std::path::PathBuf>,

    /// When to use colours in `audit`'s table (also accepted after `audit`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,

    /// The store for the commands that use one, given before the command (also accepted after
    /// it, where `--help` says more).
    #[arg(long, value_name = "URL", env = "MAILAUDIT_DB")]
    pub(crate) db: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--db`, on each command that uses the store (and, for a command family such as `customer`,
/// on each of its commands).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StoreOpt {
    /// The store: `sqlite://PATH`, `sqlite::memory:` or `postgres://USER@HOST/DB` (or the
    /// MAILAUDIT_DB environment variable). Default: an embedded SQLite file in the user's data
    /// directory ($XDG_DATA_HOME/mailaudit/mailaudit.db), created on first use. A SQLite file
    /// named here that does not exist is created (in an existing directory, never with its
    /// directories) only by commands that add to the store (audit of named domains,
    /// customer/domain add, import, guide DOMAIN, schedule set --fleet, exo import, reports
    /// ingest/fetch, user add, demo), which say so; other commands exit 2 with "no store at PATH" (README
    /// "Inventory, history and the remediation guide").
    #[arg(long = "db", id = "store_db", global = true, value_name = "URL")]
    pub(crate) db: Option<String>,
}

/// `--nameserver`, on each command that does DNS.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct DnsOpt {
    /// Send every DNS query of the run to this recursive resolver instead of the system's
    /// (`/etc/resolv.conf`). ADDR or ADDR:PORT ([V6]:PORT for IPv6); repeatable. Each is asked
    /// one test query first: one that does not answer stops the run (exit 2).
    #[arg(
        long = "nameserver",
        id = "nameserver",
        global = true,
        value_name = "ADDR[:PORT]"
    )]
    pub(crate) nameserver: Vec<String>,

    /// Do not validate DNSSEC: no DNSSEC or DANE verdicts (DNSSEC-*, DANE-*), and none of the
    /// validation's queries (bulk research runs). Default: the domain's zone and each MX host's
    /// zone are validated from the IANA root's trust anchor, or from --trust-anchor. `audit
    /// --sample` and `demo` never validate (their lab DNS is not signed); a --nameserver that
    /// strips DNSSEC records makes every zone bogus: use --no-dnssec with it.
    #[arg(
        long = "no-dnssec",
        id = "no_dnssec",
        global = true,
        conflicts_with = "trust_anchor"
    )]
    pub(crate) no_dnssec: bool,

    /// Validate DNSSEC from the DNSKEY records of FILE instead of the IANA root's trust anchor
    /// (zone-file lines such as `. 3600 IN DNSKEY 257 3 13 <base64>`; one key of the root zone
    /// at least): a lab with its own signed root.
    #[arg(
        long = "trust-anchor",
        id = "trust_anchor",
        global = true,
        value_name = "FILE"
    )]
    pub(crate) trust_anchor: Option<std::path::PathBuf>,
}

/// A command family whose every command uses the store (`customer`, `domain`, `schedule`).
#[derive(Debug, Args)]
pub(crate) struct WithStore<C: Subcommand> {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    #[command(subcommand)]
    pub(crate) command: C,
}

impl Cli {
    /// Parses the command line and puts the options given after the command (`--db`,
    /// `--nameserver`, `--color`, shown only in the help of the commands that use them) where
    /// every command reads them: given after the command, they win over the same option given
    /// before it, which wins over MAILAUDIT_DB.
    pub(crate) fn parse_args() -> Cli {
        let mut cli = Cli::parse();
        let (store, dns, color) = cli.command.options();
        if let Some(db) = store.and_then(|s| s.db.clone()) {
            cli.db = Some(db);
        }
        if let Some(dns) = dns.filter(|d| !d.nameserver.is_empty()) {
            cli.nameserver = dns.nameserver.clone();
        }
        if let Some(dns) = dns {
            cli.no_dnssec |= dns.no_dnssec;
            if dns.trust_anchor.is_some() {
                cli.trust_anchor = dns.trust_anchor.clone();
            }
        }
        if let Some(color) = color {
            cli.color = color;
        }
        cli
    }
}

impl Command {
    /// The store, DNS and colour options this command takes, as given after it.
    fn options(&self) -> (Option<&StoreOpt>, Option<&DnsOpt>, Option<ColorChoice>) {
        match self {
            Command::Audit(a) => (Some(&a.store), Some(&a.dns), a.color),
            Command::SpfEval(a) => (None, Some(&a.dns), None),
            Command::RelayTest(a) => (None, Some(&a.dns), None),
            Command::Checks(_) => (None, None, None),
            Command::Customer(w) => (Some(&w.store), None, None),
            Command::User(w) => (Some(&w.store), None, None),
            Command::Domain(w) => (Some(&w.store), None, None),
            Command::Import(a) => (Some(&a.store), None, None),
            Command::History(a) => (Some(&a.store), None, None),
            Command::Diff(a) => (Some(&a.store), None, None),
            Command::Prune(a) => (Some(&a.store), None, None),
            Command::Worker(a) => (Some(&a.store), Some(&a.dns), None),
            Command::Runs(a) => (Some(&a.store), None, None),
            Command::Guide(a) => (Some(&a.store), Some(&a.dns), None),
            Command::Report(a) => (Some(&a.store), None, None),
            Command::Branding(a) => (Some(&a.store), None, None),
            Command::Checklist(a) => (Some(&a.store), None, None),
            Command::Schedule(w) => (
                Some(&w.store),
                match &w.command {
                    ScheduleCommand::Run(r) => Some(&r.dns),
                    _ => None,
                },
                None,
            ),
            Command::Serve(a) => (Some(&a.store), Some(&a.run.dns), None),
            Command::Exo(ExoCommand::Script(_)) => (None, None, None),
            Command::Exo(ExoCommand::Import(a)) => (Some(&a.store), None, None),
            Command::Reports(r) => match r {
                ReportsCommand::Parse(_) => (None, None, None),
                ReportsCommand::Ingest(a) => (Some(&a.store), None, None),
                ReportsCommand::Fetch(a) => (Some(&a.store), Some(&a.dns), None),
                ReportsCommand::Summary(a) => (Some(&a.store), Some(&a.dns), None),
                ReportsCommand::List(a) => (Some(&a.store), None, None),
                ReportsCommand::Raw(a) => (Some(&a.store), None, None),
            },
            Command::Demo(a) => (Some(&a.store), None, None),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Audit domains' email DNS and report findings (`mailaudit checks`, docs/checks.md) with a
    /// 0-100 score each.
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
    /// Manage customers (name, contacts, notes).
    Customer(WithStore<CustomerCommand>),
    /// Manage the inventory of domains (customer, parked flag, tenant, relay-test addresses,
    /// key people to protect against impersonation).
    Domain(WithStore<DomainCommand>),
    /// Import customers and domains from a CSV file (bad rows reported with line numbers, good
    /// rows kept; existing domains get only the values the file gives).
    ///
    /// Columns (a header row is required; order free; only `domain` is mandatory): customer,
    /// domain, parked (yes/no), tenant, m365_endpoint, relay_from, relay_to, key_people
    /// ("Name <address>; Name <address>"), contacts, notes.
    Import(ImportArgs),
    /// Audit the chunks of distributed runs (`audit --distributed`) from a shared store, on as
    /// many machines as you like.
    ///
    /// A worker claims a chunk (PostgreSQL `FOR UPDATE SKIP LOCKED`: workers never wait on each
    /// other), audits its domains with its own resolver, renews its lease while it audits, and
    /// records the chunk's results in the transaction that marks the chunk done, only if its
    /// lease still holds. A worker that dies loses only its lease: the chunk is claimed again
    /// when the lease has expired, and each domain gets exactly one result in the run. Ctrl-C or
    /// SIGTERM gives the current chunk back and stops. Inventory settings apply (parked
    /// domains); the Direct Send relay probe is not run by workers.
    ///
    /// Exit status 0 when stopped or done, 2 when the store or the resolver cannot be used.
    Worker(WorkerArgs),
    /// List audit runs (newest first), or show one run's progress: a distributed run's chunks
    /// recorded, held and expired, its domains and the workers holding chunks now.
    Runs(RunsArgs),
    /// Show a domain's stored audits: score and findings over time.
    History(HistoryArgs),
    /// Show what is new, what was fixed and what regressed since each domain's previous audit.
    Diff(DiffArgs),
    /// Keep the store small: the audits older than --keep keep their summary (score, findings
    /// without evidence or fixes, the state the history compares) and lose their details (record
    /// texts, the SPF include tree, probe transcripts). Each domain's latest audit stays whole
    /// whatever its age, so its guide and checklist are unchanged; runs, scores, findings and
    /// history stay. Then the space is given back (SQLite) or made reusable (PostgreSQL VACUUM).
    ///
    /// Exit status 0 when done, 2 when the store cannot be read or written.
    Prune(PruneArgs),
    /// The remediation guide: the exact DNS records and PowerShell to run, in priority order,
    /// from the domain's latest stored audit (or a fresh one).
    Guide(GuideArgs),
    /// A domain's remediation checklist: items tick themselves when a re-audit verifies the fix
    /// and reopen on regression; mark manual items done here.
    Checklist(ChecklistArgs),
    /// Recurring re-audits of the fleet or of a customer, with alerts on regression.
    Schedule(WithStore<ScheduleCommand>),
    /// Serve the web portal (the fleet paged, sorted and filtered, customers ranked, each
    /// domain's findings, history, checklist, remediation guide and DMARC/TLS report summary,
    /// the customer report, the inventory, schedules, "Audit now" and the JSON API at
    /// /api/v1/), run the scheduler (re-audits and alerts) and audit the runs queued in the
    /// store (the portal's "Audit now", `audit --distributed`) as a worker would, until Ctrl-C
    /// or SIGTERM.
    ///
    /// Once the store has portal users (`mailaudit user add`), everyone signs in: admins and
    /// technicians see every customer, a viewer only its own, read-only; every change is in
    /// the audit log. With at least one admin, the portal may listen on any address. Without
    /// users, the portal has no authentication: it listens on loopback only (default
    /// 127.0.0.1:8080) and answers only requests for a loopback host name, unless --public.
    ///
    /// Single sign-on (OpenID Connect: Microsoft Entra ID with --oidc-tenant, another provider
    /// with --oidc-issuer) adds a sign-in button; the client secret comes from
    /// MAILAUDIT_OIDC_CLIENT_SECRET only. The provider's users sign in as the store's user
    /// named by their e-mail address, or with the role --oidc-admins, --oidc-technicians or
    /// --oidc-group give them; anyone else is refused. The second factor is then the
    /// provider's.
    Serve(ServeArgs),
    /// The customer report: what an MSP hands a customer for a period (the posture now, what
    /// was found, what was fixed and when, what remains in priority order, the progress
    /// charts), as a self-contained HTML page or a PDF (printed by headless Chromium).
    ///
    /// The same page as the portal's /customers/NAME/report. The MSP's name and logo come from
    /// `mailaudit branding`.
    ///
    /// Exit status 0 when written, 2 when the store cannot be read, the customer does not
    /// exist, or (PDF) no Chromium is found or it fails.
    Report(ReportArgs),
    /// The MSP's name and logo on customer reports: shown without options, set with them.
    Branding(BrandingArgs),
    /// Portal users: who signs in to `mailaudit serve`, and what each may see and do.
    ///
    /// Roles: `admin` (everything: every customer, users, the audit log), `technician` (every
    /// customer; keeps checklists, the inventory and schedules, starts audits), `viewer`
    /// (read-only, only the customers given with
    /// --customer). Start with the first admin: `mailaudit user add --admin NAME`.
    ///
    /// Passwords (12 characters or more) are never taken from the command line: they come from
    /// the MAILAUDIT_PASSWORD environment variable, from standard input with --password-stdin
    /// (one line), or from a prompt on the terminal. They are stored as argon2id hashes.
    /// Changing a user's password or role ends its sessions; `reset-2fa` turns off the
    /// two-factor sign-in of a user who lost it. Every change is recorded in the audit log as
    /// made by `command line`.
    User(WithStore<UserCommand>),
    /// Exchange Online tenant configuration: generate the read-only collection script, then
    /// evaluate its export offline (connectors, Direct Send, transport rules, DKIM signing,
    /// anti-phishing).
    #[command(subcommand)]
    Exo(ExoCommand),
    /// DMARC aggregate, failure and SMTP TLS reports.
    #[command(subcommand)]
    Reports(ReportsCommand),
    /// The whole product on one machine with no network: start the built-in lab, audit its
    /// sample fleet into a demo store (with the Direct Send relay probe), serve the web portal.
    ///
    /// The lab is a DNS server and Microsoft-365-like SMTP endpoints on loopback addresses
    /// (127.0.2.x and the like, one port; STARTTLS with a certificate from a CA made at start)
    /// serving the 15 fictional domains of `audit --sample`. Each run puts them in the inventory
    /// under four fictional customers (the parked one flagged parked), audits all of them with
    /// the relay probe against the lab's endpoints (some open to Direct Send, the hardened ones
    /// blocking it with `550 5.7.68`), records the results as `audit` does (history, DMARC
    /// roll-out, checklists), stores six weeks of synthetic DMARC aggregate reports for
    /// tailspin-realty.example (ready for p=quarantine) and adatum-clinic.example (a forgotten
    /// Mailchimp sender fails alignment) and one SMTP TLS report for contoso-legal.example,
    /// prints a summary, then serves the portal until Ctrl-C or SIGTERM and stops the lab.
    /// Nothing leaves the machine: every address the audit follows is a loopback address, the
    /// lab answers every DNS query (--nameserver is not used), and the MTA-STS policy fetch is
    /// off.
    ///
    /// The store is a separate SQLite file, `demo.db` next to the default store (in the data
    /// directory), so sample domains never mix with your real inventory; MAILAUDIT_DB is not
    /// used for it. `--db URL` chooses another store. Running the demo again keeps the
    /// inventory as it is and adds a new audit run (reports already stored are skipped).
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// Where the web portal listens (loopback only; port 0: any free port). The address is
    /// printed.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Audit and store the sample fleet, print the summary and exit, without serving the portal
    /// (for scripts and CI).
    #[arg(long)]
    pub(crate) no_serve: bool,
    /// No portal accounts: by default the demo store gets an admin, a technician and a viewer
    /// of the first sample customer, each with a new random password printed with the summary
    /// (new ones at each run), and the portal asks everyone to sign in. With this, no account
    /// is made or changed and no login printed: the portal of a demo store without users is
    /// open on loopback (one that has users from an earlier run still asks for sign-in).
    #[arg(long)]
    pub(crate) no_accounts: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportsCommand {
    /// Read reports and print what they say as JSON, without storing them.
    ///
    /// PATH may be a report (`.xml`, `.json`), a container (`.gz`, `.zip`, `.eml` with the
    /// report attached, an mbox file) or a directory (a Maildir included). Containers are
    /// recognised by their content, not their name; decompression is capped, and archive bombs
    /// and deeply nested archives are refused with an error while the other files are read.
    /// Exit 2 if any input could not be read as a report (or, with --strict, deviates).
    Parse(ReportsParseArgs),
    /// Read reports and store them: deduplicated (reporter, report id, policy domain, period,
    /// and a content hash), the raw file kept. Bad inputs are reported and skipped.
    Ingest(ReportsIngestArgs),
    /// Read reports from an IMAP mailbox (the rua/ruf/TLS-RPT address's) and store them like
    /// `reports ingest`; with --watch, keep doing it.
    ///
    /// Connects to the mailbox of URL (`imaps://USER@HOST[:PORT]/MAILBOX`, implicit TLS, port
    /// 993; or `imap://USER@HOST[:PORT]/MAILBOX`, STARTTLS, port 143; MAILBOX defaults to INBOX,
    /// percent-encoded where needed, e.g. `imaps://dmarc%40msp.example@imap.msp.example/INBOX`),
    /// logs in with the password from the environment variable named by --password-env (never
    /// from the command line, never printed) or with an OAuth 2.0 token (below), opens the mailbox read-only (unless --mark-seen or
    /// --move-to) and downloads the messages that arrived since the last run (`BODY.PEEK[]`: they
    /// stay unread). Each message is opened like an `.eml` file: its report attachments (`.xml`,
    /// `.gz`, `.zip`, `.json`) and, when it is one, the failure report itself are parsed and
    /// stored, deduplicated by key and content hash, the message bytes kept.
    ///
    /// Where the last run stopped is stored per mailbox (its URL without password, its
    /// UIDVALIDITY and the last UID read), so a poll downloads only new messages; when the
    /// server's UIDVALIDITY changes the mailbox is read again from the start (reports already
    /// stored count as duplicates). A message that holds no report, or a broken one, is reported
    /// on standard error with its UID and why, left as it is (not flagged or moved), and the
    /// cursor moves past it: it is not downloaded again. A message larger than --max-message-mb
    /// is reported and skipped the same way, without being downloaded.
    ///
    /// Each poll prints one line: messages read, reports stored, duplicates skipped, documents
    /// not readable. With --watch the command keeps watching the mailbox until interrupted: when
    /// the server offers IDLE (RFC 2177), it waits in IDLE after each poll and polls again as
    /// soon as the server announces new mail, or after --interval seconds (29 minutes at most,
    /// when IDLE is re-issued as RFC 2177 advises); without IDLE (or with --no-idle) it polls
    /// every --interval seconds. A lost connection (server restart, network failure, timeout) is reported on standard
    /// error and the command reconnects with backoff (1 s doubling up to 5 minutes), going on
    /// from the stored cursor, so no report is lost or stored twice.
    ///
    /// Authentication is by password (SASL PLAIN, or LOGIN when that is all the server offers)
    /// or, for Exchange Online, which accepts only OAuth 2.0 over IMAP, by an OAuth 2.0 access
    /// token (SASL XOAUTH2, or OAUTHBEARER when the server offers only that): fetched with the
    /// client credentials grant of an app registered in Microsoft Entra ID (--oauth2-tenant,
    /// --oauth2-client-id, the secret in --oauth2-client-secret-env), or given ready-made in an
    /// environment variable (--oauth2-token-env). Fetched tokens are renewed before they expire
    /// (with --watch, the session is reopened with the new token), and a token the server
    /// refuses is replaced once by a new one. Neither the secret nor a token is ever printed.
    #[command(after_help = FETCH_AFTER_HELP)]
    Fetch(Box<ReportsFetchArgs>),
    /// Who sends as a domain, per source (known services, reverse DNS, IP): volume, DMARC, DKIM
    /// and SPF alignment, failing and new sources, and whether the domain is ready for the next
    /// DMARC phase, with the reasons; then its SMTP TLS sessions by policy, failure type and
    /// sending MTA.
    Summary(ReportsSummaryArgs),
    /// The stored reports, newest first (by the start of their period): id, kind, reporter,
    /// policy domain, period, problems and the file each came from. The id is what `reports
    /// raw` takes.
    List(ReportsListArgs),
    /// Write a stored report's original file, exactly as it was read (before decompression;
    /// for a message fetched from IMAP, the message), to standard output or --output.
    Raw(ReportsRawArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ReportsListArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// Only the reports about this domain (their policy domain).
    #[arg(long, value_name = "DOMAIN")]
    pub(crate) domain: Option<String>,
    /// At most this many (1 to 10000).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub(crate) limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
}

#[derive(Debug, Args)]
pub(crate) struct ReportsRawArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// The report's id (`reports list`).
    pub(crate) id: i64,
    /// Write to this file instead of standard output (refused if it exists).
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ReportsIngestArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    #[command(flatten)]
    pub(crate) input: ReportInputArgs,
}

const FETCH_AFTER_HELP: &str = "\
Exit codes:
  0  success: every message read was stored or recognised as a duplicate
  2  a message or document could not be read as a report (the others were stored), or an
     error: bad arguments, the password (token, secret) variable unset, the server or the
     token endpoint unreachable, TLS, the token request or the login refused (without
     --watch; with --watch these are reported and retried, and the exit status on
     interruption is 2 if any message could not be read, else 0)

OAuth 2.0 (Exchange Online): register an app in Microsoft Entra ID with the Office 365
Exchange Online application permission IMAP.AccessAsApp (admin consent granted) and a
client secret; in Exchange Online PowerShell, New-ServicePrincipal -AppId <client ID>
-ObjectId <object ID of the app's enterprise application>, then Add-MailboxPermission
-Identity <mailbox> -User <that service principal> -AccessRights FullAccess. See the README
section \"Reading reports from Exchange Online\" and Microsoft's article \"Authenticate an
IMAP, POP or SMTP connection using OAuth\".

Examples:
  export MAILAUDIT_IMAP_PASSWORD='...'
  mailaudit reports fetch imaps://dmarc%40msp.example@imap.msp.example/INBOX
  mailaudit reports fetch imaps://rua@mail.msp.example/DMARC --watch --interval 600 \\
      --move-to DMARC/Done
  mailaudit reports fetch imap://rua@127.0.0.1:1143/INBOX --allow-plaintext   # loopback lab
  export MAILAUDIT_OAUTH2_CLIENT_SECRET='...'
  mailaudit reports fetch imaps://dmarc%40contoso.com@outlook.office365.com/INBOX \\
      --oauth2-tenant contoso.onmicrosoft.com \\
      --oauth2-client-id 00000000-0000-0000-0000-000000000000 --watch";

#[derive(Debug, Args)]
pub(crate) struct ReportsFetchArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
    /// The mailbox: `imaps://USER@HOST[:PORT]/MAILBOX` or `imap://USER@HOST[:PORT]/MAILBOX`
    /// (STARTTLS). A password in the URL is refused.
    #[arg(value_name = "URL")]
    pub(crate) url: String,
    /// The environment variable holding the password (not read when an --oauth2 option
    /// chooses OAuth 2.0).
    #[arg(long, value_name = "VAR", default_value = "MAILAUDIT_IMAP_PASSWORD")]
    pub(crate) password_env: String,
    /// Log in with the OAuth 2.0 access token held by the environment variable VAR (SASL
    /// XOAUTH2, or OAUTHBEARER when the server offers only that) instead of a password. The
    /// token is used as it is and never renewed: when it expires, the server refuses it and
    /// the command says so. Use the --oauth2-client-id options to have tokens fetched and
    /// renewed instead.
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with_all = ["oauth2_client_id", "oauth2_tenant", "oauth2_token_url"]
    )]
    pub(crate) oauth2_token_env: Option<String>,
    /// Log in with OAuth 2.0 tokens fetched with the client credentials grant (RFC 6749 §4.4)
    /// for the application (client) ID of an app registered in Microsoft Entra ID (or any
    /// OAuth 2.0 authorization server, with --oauth2-token-url). Needs --oauth2-tenant or
    /// --oauth2-token-url; the secret comes from --oauth2-client-secret-env. A token is fetched
    /// when the first session opens, renewed a little before it expires (`expires_in`), and
    /// replaced once when the server refuses it.
    #[arg(long, value_name = "ID")]
    pub(crate) oauth2_client_id: Option<String>,
    /// The Microsoft Entra tenant of the app: its directory (tenant) ID or one of its domain
    /// names (contoso.onmicrosoft.com). Tokens come from
    /// https://login.microsoftonline.com/TENANT/oauth2/v2.0/token.
    #[arg(long, value_name = "TENANT", conflicts_with = "oauth2_token_url")]
    pub(crate) oauth2_tenant: Option<String>,
    /// The environment variable holding the app's client secret (the secret's value, not its
    /// ID). Never read from the command line, never printed, sent only over HTTPS.
    #[arg(
        long,
        value_name = "VAR",
        default_value = "MAILAUDIT_OAUTH2_CLIENT_SECRET"
    )]
    pub(crate) oauth2_client_secret_env: String,
    /// The token endpoint, instead of Microsoft's endpoint of --oauth2-tenant: an https:// URL
    /// (another authorization server, a sovereign cloud such as
    /// https://login.microsoftonline.us/TENANT/oauth2/v2.0/token, or a test server). Its
    /// certificate is checked against the web PKI roots and --ca-file.
    #[arg(long, value_name = "URL")]
    pub(crate) oauth2_token_url: Option<String>,
    /// The scope asked for with the client credentials grant.
    #[arg(
        long,
        value_name = "SCOPE",
        default_value = mailaudit_net::oauth2::MICROSOFT_IMAP_SCOPE
    )]
    pub(crate) oauth2_scope: String,
    /// Keep running: wait for new mail with IDLE when the server offers it, else poll every
    /// --interval seconds; reconnect when the connection is lost.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Seconds between two polls with --watch: with IDLE, the longest wait for new mail before
    /// polling anyway (capped at 29 minutes).
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub(crate) interval: f64,
    /// With --watch, never use IDLE: poll every --interval seconds even when the server offers
    /// IDLE.
    #[arg(long, requires = "watch")]
    pub(crate) no_idle: bool,
    /// Trust the CA certificates in this PEM file too (a private CA), besides the web PKI roots,
    /// for the IMAP server and the OAuth 2.0 token endpoint.
    #[arg(long, value_name = "PATH")]
    pub(crate) ca_file: Option<PathBuf>,
    /// With imap://, go on without TLS when the server offers no STARTTLS (loopback labs only:
    /// the password would cross the network in clear). A server offering STARTTLS always gets it.
    #[arg(long)]
    pub(crate) allow_plaintext: bool,
    /// Seconds to wait for each answer of the server (and each connection attempt); also the
    /// limit of a whole OAuth 2.0 token request.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub(crate) timeout: f64,
    /// Set the \Seen flag of each message whose reports were all stored (or were duplicates).
    #[arg(long)]
    pub(crate) mark_seen: bool,
    /// Move each message whose reports were all stored (or were duplicates) to this mailbox
    /// (it must exist). Messages that could not be read stay where they are.
    #[arg(long, value_name = "MAILBOX")]
    pub(crate) move_to: Option<String>,
    /// Report every deviation from the schema as an error (default: recover what can be
    /// recovered and list the problems).
    #[arg(long)]
    pub(crate) strict: bool,
    /// Largest decompressed size of one message's reports, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 50)]
    pub(crate) max_decompressed_mb: usize,
    /// Most seconds spent opening and parsing one message; a message that takes longer is
    /// reported and skipped (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_seconds)]
    pub(crate) max_seconds_per_file: f64,
    /// Largest message downloaded, in MiB; larger ones are reported and skipped.
    #[arg(long, value_name = "MIB", default_value_t = 100)]
    pub(crate) max_message_mb: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ReportsSummaryArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
    /// The domain (the reports' policy domain).
    pub(crate) domain: String,
    /// The period: the last INTERVAL (e.g. 14d, 30d); new sources are those absent from the
    /// period before it.
    #[arg(long, value_name = "INTERVAL", default_value = "30d", value_parser = parse_interval)]
    pub(crate) since: i64,
    /// Do not look up the reverse DNS of the sources.
    #[arg(long)]
    pub(crate) no_rdns: bool,
    /// Seconds to wait for each DNS reply (reverse look-ups).
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub(crate) timeout: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
}

#[derive(Debug, Args)]
pub(crate) struct ReportsParseArgs {
    #[command(flatten)]
    pub(crate) input: ReportInputArgs,
    /// Output format (JSON: one array, one object per report found).
    #[arg(long, value_enum, default_value_t = ReportsFormat::Json)]
    pub(crate) format: ReportsFormat,
}

/// The inputs of `reports parse` and `reports ingest`.
#[derive(Clone, Debug, Args)]
pub(crate) struct ReportInputArgs {
    /// Files or directories (mbox files and Maildirs included).
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Report every deviation from the schema as an error (default: recover what can be
    /// recovered and list the problems). A gzip stream cut short or followed by junk is then
    /// refused, where by default the report is read from what decompressed, with a warning.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Largest decompressed size of one input, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 50)]
    pub(crate) max_decompressed_mb: usize,
    /// Messages read from one mbox file, at most: the ones after are skipped, and named with
    /// their number (anyone who can mail the report address can fill an mbox).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub(crate) max_messages: usize,
    /// Most seconds spent on one input file (`reports ingest`: reading, opening and parsing all
    /// of it; `reports parse`: opening it, then each report in it); a file that takes longer is
    /// reported and skipped, and the rest of the batch goes on (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_seconds)]
    pub(crate) max_seconds_per_file: f64,
}

/// A number of seconds, 0 or more, finite.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds (0 or more)")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportsFormat {
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExoCommand {
    /// Print the PowerShell 7 script (ExchangeOnlineManagement v3) that exports the tenant's
    /// configuration as one JSON bundle. It is read-only: it only runs Get- cmdlets.
    ///
    /// Run it as an Exchange administrator: `pwsh ./collect.ps1 -OutFile contoso.json`, then
    /// `mailaudit exo import contoso.json`.
    Script(ExoScriptArgs),
    /// Evaluate an export: the bundle the script wrote, or per-cmdlet JSON files
    /// (`Get-InboundConnector | ConvertTo-Json -Depth 5 > inbound_connectors.json`) or a
    /// directory of them. Reports every EXO-* finding with the PowerShell fix, correlates with
    /// the latest DNS audits of the accepted domains, shows what changed since the previous
    /// import and records the import. The checklists of the inventory's audited domains that
    /// are accepted domains of the tenant are then ticked and reopened from what the export
    /// shows (Direct Send, anti-spoofing rule, connectors, spam bypass, impersonation, DKIM),
    /// and `mailaudit guide` names the tenant's own rules, connectors and policies.
    Import(ExoImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ExoScriptArgs {
    /// Sign in unattended as this app registration (with --certificate-thumbprint and --organization).
    #[arg(long, value_name = "ID", requires_all = ["certificate_thumbprint", "organization"])]
    pub(crate) app_id: Option<String>,
    /// The app's certificate thumbprint (certificate in the user's store).
    #[arg(long, value_name = "THUMBPRINT")]
    pub(crate) certificate_thumbprint: Option<String>,
    /// The tenant (`contoso.onmicrosoft.com`): with --app-id, or alone for a partner (GDAP)
    /// administrator signing in to a customer's tenant.
    #[arg(long, value_name = "TENANT")]
    pub(crate) organization: Option<String>,
    /// Write the script to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ExoImportArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// The bundle, per-cmdlet export files, or directories of them.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// The customer the tenant belongs to (for the inventory comparison and the history).
    #[arg(long, value_name = "NAME")]
    pub(crate) customer: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
    /// Exit with status 1 if any finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub(crate) fail_on: Option<Severity>,
    /// Do not record the import in the store (nor update any checklist).
    #[arg(long)]
    pub(crate) no_store: bool,
    /// Largest export file read, in MiB: a larger one is refused, named, before it is read (an
    /// export takes several times its size in memory while it is evaluated).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub(crate) max_file_mb: u64,
}

/// The end of `customer add --help`.
const CUSTOMER_ADD_NOTES: &str = "\
A customer that already exists is left as it is (its contacts and notes are never overwritten \
here): mailaudit says so and points to `mailaudit customer set`.

Exit status: 0 added, or already there with the same contacts and notes as given; 1 already \
there with different contacts or notes given (nothing changed); 2 an error.";

#[derive(Debug, Subcommand)]
pub(crate) enum CustomerCommand {
    /// Add a customer (an existing one is never changed: see `customer set`).
    #[command(after_help = CUSTOMER_ADD_NOTES)]
    Add {
        /// The customer's name (unique).
        name: String,
        /// Contacts (free text: names, addresses, phone numbers).
        #[arg(long)]
        contacts: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
    },
    /// Change an existing customer's contacts and/or notes (what is not given is kept; an empty
    /// value clears it).
    Set {
        /// The customer's name.
        name: String,
        /// New contacts (replace the stored ones).
        #[arg(long)]
        contacts: Option<String>,
        /// New notes (replace the stored ones).
        #[arg(long)]
        notes: Option<String>,
    },
    /// List customers with their number of domains.
    List,
    /// Show a customer: contacts, notes, domains with their latest score.
    Show {
        /// The customer's name.
        name: String,
    },
}

/// The end of `domain add --help`.
const DOMAIN_ADD_NOTES: &str = "\
Adding never erases: a domain already in the inventory is left exactly as it is (customer, \
tenant, key people and every other field), reported on standard error with the \
`mailaudit domain set` command that would change it; the other domains of the command are \
still added. A name given twice is added once.

Exit status: 0 every domain was added, or was already there with the values given; 1 some \
domain was already there with a different value for an option given (that domain was not \
changed; the others were added); 2 an error (invalid name, unknown customer, bad --key-person: \
nothing added).";

/// The end of `domain set --help`.
const DOMAIN_SET_NOTES: &str = "\
Only the fields given change; each change is printed as `DOMAIN: field: old → new`. \
--key-person adds people to the domain's list (a person whose address is already listed is \
renamed, nobody is removed); --clear-key-people empties the list first, so with --key-person it \
replaces the list. Every domain must already be in the inventory (`mailaudit domain add`), and \
a --customer must exist: otherwise nothing is changed.

Exit status: 0 done (also when the values were already so); 2 an error (a domain not in the \
inventory, unknown customer, bad --key-person).";

#[derive(Debug, Subcommand)]
pub(crate) enum DomainCommand {
    /// Add domains to the inventory (a domain already there is never changed: see `domain set`).
    #[command(after_help = DOMAIN_ADD_NOTES)]
    Add(DomainAddArgs),
    /// Change some fields of domains already in the inventory; the others are kept.
    #[command(after_help = DOMAIN_SET_NOTES)]
    Set(DomainSetArgs),
    /// Show everything stored about one domain: customer, parked flag, tenant, endpoint,
    /// relay-test addresses, key people, when it was added, its latest audit, checklist
    /// progress and DMARC roll-out phase.
    Show {
        /// The domain.
        domain: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Remove domains from the inventory (their audit history is kept).
    Remove {
        /// The domains.
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// List the inventory.
    List {
        /// Only this customer's domains.
        #[arg(long, value_name = "NAME")]
        customer: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DomainAddArgs {
    /// The domains.
    #[arg(required = true)]
    pub(crate) domains: Vec<String>,
    /// The customer they belong to (must exist: `mailaudit customer add`).
    #[arg(long, value_name = "NAME")]
    pub(crate) customer: Option<String>,
    /// The domain sends no mail: it must publish `v=spf1 -all` and DMARC `p=reject`.
    #[arg(long)]
    pub(crate) parked: bool,
    /// The Microsoft 365 tenant name (`contoso` of contoso.onmicrosoft.com).
    #[arg(long, value_name = "NAME")]
    pub(crate) tenant: Option<String>,
    /// The tenant's Microsoft 365 endpoint (`<label>.mail.protection.outlook.com`), probed by
    /// the relay test when the MX is a third-party gateway.
    #[arg(long, value_name = "HOST")]
    pub(crate) m365_endpoint: Option<String>,
    /// The relay test's envelope sender for this domain.
    #[arg(long, value_name = "ADDR")]
    pub(crate) relay_from: Option<String>,
    /// The relay test's recipient for this domain (an existing mailbox).
    #[arg(long, value_name = "ADDR")]
    pub(crate) relay_to: Option<String>,
    /// A person to protect against impersonation: "Name <address>" (repeatable).
    #[arg(long = "key-person", value_name = "NAME <ADDR>")]
    pub(crate) key_people: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DomainSetArgs {
    /// The domains (each must be in the inventory).
    #[arg(required = true)]
    pub(crate) domains: Vec<String>,
    /// Move them to this customer (must exist).
    #[arg(long, value_name = "NAME", conflicts_with = "clear_customer")]
    pub(crate) customer: Option<String>,
    /// Mark them parked (they send no mail).
    #[arg(long, conflicts_with = "not_parked")]
    pub(crate) parked: bool,
    /// Mark them not parked.
    #[arg(long)]
    pub(crate) not_parked: bool,
    /// The Microsoft 365 tenant name.
    #[arg(long, value_name = "NAME", conflicts_with = "clear_tenant")]
    pub(crate) tenant: Option<String>,
    /// The tenant's Microsoft 365 endpoint.
    #[arg(long, value_name = "HOST", conflicts_with = "clear_m365_endpoint")]
    pub(crate) m365_endpoint: Option<String>,
    /// The relay test's envelope sender.
    #[arg(long, value_name = "ADDR", conflicts_with = "clear_relay_from")]
    pub(crate) relay_from: Option<String>,
    /// The relay test's recipient.
    #[arg(long, value_name = "ADDR", conflicts_with = "clear_relay_to")]
    pub(crate) relay_to: Option<String>,
    /// Add a person to protect against impersonation: "Name <address>" (repeatable; added to
    /// the stored people, deduplicated by address).
    #[arg(long = "key-person", value_name = "NAME <ADDR>")]
    pub(crate) key_people: Vec<String>,
    /// Remove the customer (the domains belong to none).
    #[arg(long)]
    pub(crate) clear_customer: bool,
    /// Remove the tenant name.
    #[arg(long)]
    pub(crate) clear_tenant: bool,
    /// Remove the Microsoft 365 endpoint.
    #[arg(long)]
    pub(crate) clear_m365_endpoint: bool,
    /// Remove the relay test's sender.
    #[arg(long)]
    pub(crate) clear_relay_from: bool,
    /// Remove the relay test's recipient.
    #[arg(long)]
    pub(crate) clear_relay_to: bool,
    /// Remove every key person (with --key-person: replace the list).
    #[arg(long)]
    pub(crate) clear_key_people: bool,
}

/// The end of `import --help`.
const IMPORT_NOTES: &str = "\
New domains are added with the row's values. A row for a domain already in the inventory (or \
an earlier row of the same file) updates only the columns the file has and the row fills in: a \
column missing from the header, or an empty cell, leaves the stored value as it is, so a sparse \
file never erases anything (use `mailaudit domain set --clear-…` to clear a field). \
key_people cells add people (deduplicated by address). Unknown customers are created with the \
row's contacts and notes; for an existing customer, non-empty contacts and notes cells replace \
the stored ones. Each update is printed (`FILE:LINE: DOMAIN: field: old → new`), then a \
summary: new, updated (with the fields), unchanged, skipped.

Exit status: 0 every row was imported; 2 some rows were skipped (each reported with its line \
number; the good rows are kept) or the file could not be read.";

#[derive(Debug, Args)]
#[command(after_help = IMPORT_NOTES)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// The CSV file (`-` for standard input).
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// The domain.
    pub(crate) domain: String,
    /// How many audits to show, newest first.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// Keep the details of the audits of the last INTERVAL (e.g. 180d, 26w); older audits keep
    /// their summary.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub(crate) keep: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// Domains to compare (default: the whole inventory, or --customer).
    pub(crate) domains: Vec<String>,
    /// Only this customer's domains.
    #[arg(long, value_name = "NAME")]
    pub(crate) customer: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
}

#[derive(Debug, Args)]
pub(crate) struct GuideArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
    /// The domain (or --customer for all of a customer's domains).
    #[arg(required_unless_present = "customer")]
    pub(crate) domain: Option<String>,
    /// Every domain of this customer, one guide after the other.
    #[arg(long, value_name = "NAME", conflicts_with = "domain")]
    pub(crate) customer: Option<String>,
    /// Markdown (for tickets and wikis), a self-contained HTML page, or JSON (the guide's
    /// items, steps and blocks; each DNS block with its records as host, type and value).
    #[arg(long, value_enum, default_value_t = GuideFormat::Md)]
    pub(crate) format: GuideFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
    /// The DMARC aggregate report address to propose when a record has none
    /// (e.g. mailto:dmarc@msp.example).
    #[arg(long, value_name = "URI")]
    pub(crate) rua: Option<String>,
    /// Seconds to wait for each DNS reply when a fresh audit is needed.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub(crate) timeout: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    Html,
    Pdf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PaperSize {
    A4,
    Letter,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// The customer.
    #[arg(long, value_name = "NAME")]
    pub(crate) customer: String,
    /// The period the report covers, back from now: days (90d) or weeks (12w), up to 3650 days.
    #[arg(long, value_name = "PERIOD", default_value = "90d")]
    pub(crate) since: String,
    /// A self-contained HTML page (inline style and charts), or a PDF of the same page.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub(crate) format: ReportFormat,
    /// Write to this file (required for PDF; HTML goes to standard output without it).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
    /// The paper the page is laid out for.
    #[arg(long, value_enum, default_value_t = PaperSize::A4)]
    pub(crate) paper: PaperSize,
    /// The Chromium (or Chrome) that prints the PDF [default: MAILAUDIT_CHROMIUM, else
    /// chromium, chromium-browser, google-chrome or google-chrome-stable on PATH].
    #[arg(long, value_name = "PATH")]
    pub(crate) chromium: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BrandingArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// The MSP's name, at the top of every customer report ("" removes it).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// The MSP's logo: a PNG, JPEG or SVG file of at most 256 KiB, stored in the store.
    #[arg(long, value_name = "FILE", conflicts_with = "no_logo")]
    pub(crate) logo: Option<PathBuf>,
    /// Remove the stored logo.
    #[arg(long)]
    pub(crate) no_logo: bool,
}

/// The end of `checklist --help`.
const CHECKLIST_NOTES: &str = "\
The checklist holds every item of the remediation guide (`mailaudit guide DOMAIN`), Priority 1 \
to 4. Items that the audit can see tick themselves when a re-audit shows the fix and reopen on \
regression; items it cannot see (transport rules, anti-phishing policies) are ticked by hand.

Exit status: 0 done; 1 --done refused because the latest audit shows the item's problem (use \
--force to record it anyway); 2 an error (an invalid domain name, a key not on the domain's \
checklist, no store).";

#[derive(Debug, Args)]
#[command(after_help = CHECKLIST_NOTES)]
pub(crate) struct ChecklistArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// The domain.
    pub(crate) domain: String,
    /// Mark this item done (its key, e.g. antispoof-rule-enforce).
    ///
    /// Refused (exit status 1, with what the latest audit shows) when that audit shows the
    /// problem the item fixes, e.g. spf-harden while the SPF record still ends in ~all: the next
    /// audit would reopen it. An unknown key is an error (exit status 2) that lists the
    /// domain's keys.
    #[arg(long, value_name = "KEY", conflicts_with = "reopen")]
    pub(crate) done: Option<String>,
    /// With --done: record the item done even though the latest audit shows its problem (with a
    /// warning: the next audit reopens it unless the fix is published by then).
    #[arg(long, requires = "done")]
    pub(crate) force: bool,
    /// Reopen this item.
    #[arg(long, value_name = "KEY")]
    pub(crate) reopen: Option<String>,
    /// Who did it (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub(crate) by: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Re-audit the fleet (or one customer) every INTERVAL.
    Set {
        /// The whole inventory.
        #[arg(
            long,
            conflicts_with = "customer",
            required_unless_present = "customer"
        )]
        fleet: bool,
        /// One customer's domains.
        #[arg(long, value_name = "NAME")]
        customer: Option<String>,
        /// How often: e.g. 12h, 1d, 7d.
        #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
        every: i64,
    },
    /// List schedules with their next run.
    List,
    /// Remove a schedule.
    Remove(ScheduleScope),
    /// Pause a schedule: kept as it is, not run until resumed.
    Pause(ScheduleScope),
    /// Resume a paused schedule (a run that fell due meanwhile runs at the next tick).
    Resume(ScheduleScope),
    /// Run the schedules that are due (for cron), then deliver pending alerts.
    Run(ScheduleRunArgs),
}

/// The schedule a command acts on: the fleet's or a customer's.
#[derive(Debug, Args)]
pub(crate) struct ScheduleScope {
    /// The whole-fleet schedule.
    #[arg(
        long,
        conflicts_with = "customer",
        required_unless_present = "customer"
    )]
    pub(crate) fleet: bool,
    /// A customer's schedule.
    #[arg(long, value_name = "NAME")]
    pub(crate) customer: Option<String>,
}

/// How the scheduler audits and alerts (`schedule run`, `serve`).
#[derive(Debug, Args, Clone)]
pub(crate) struct ScheduleRunArgs {
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
    /// Post regression alerts to this webhook (Teams and Slack accept its JSON; repeatable).
    /// The URL is a credential: prefer the environment variable, since every local user can
    /// read a command line. Errors are stored and printed with its path redacted.
    #[arg(long, value_name = "URL", env = "MAILAUDIT_WEBHOOK")]
    pub(crate) webhook: Vec<String>,
    /// E-mail regression alerts to this address (repeatable; needs --smtp-relay and --alert-from).
    #[arg(long, value_name = "ADDR")]
    pub(crate) alert_email: Vec<String>,
    /// The SMTP relay for alert e-mail: HOST or HOST:PORT (default port 587).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(crate) smtp_relay: Option<String>,
    /// Use STARTTLS with the relay.
    #[arg(long)]
    pub(crate) smtp_starttls: bool,
    /// The relay login (the password is read from MAILAUDIT_SMTP_PASSWORD).
    #[arg(long, value_name = "USER")]
    pub(crate) smtp_user: Option<String>,
    /// The sender address of alert e-mail.
    #[arg(long, value_name = "ADDR")]
    pub(crate) alert_from: Option<String>,
    /// Trust the CA certificates in this PEM file too (labs), for webhooks and the relay.
    #[arg(long, value_name = "PATH")]
    pub(crate) alert_ca_file: Option<PathBuf>,
    /// Also run the relay test in scheduled audits.
    #[arg(long)]
    pub(crate) relay_test: bool,
    /// Seconds to wait for each DNS reply.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub(crate) timeout: f64,
    /// Retention: after the due schedules have run, keep the details of the audits of the last
    /// INTERVAL (e.g. 180d) and the summary of older ones, as `mailaudit prune --keep` does
    /// (without its compaction). Default: keep everything.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub(crate) keep: Option<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// Where the web portal listens (port 0: any free port; the address is printed). A
    /// non-loopback address needs a portal admin in the store (`mailaudit user add --admin`),
    /// or --public.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// For a store without portal users: allow a non-loopback --listen address and any Host
    /// name. Without users the portal has NO authentication: anyone who can reach it sees the
    /// whole fleet and can tick checklist items. Only behind an authenticating reverse proxy.
    /// Not needed once the store has an admin.
    #[arg(long)]
    pub(crate) public: bool,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key), e.g.
    /// `--listen 0.0.0.0:443`. Session cookies are then `Secure`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM). The file must be readable by its owner only
    /// (chmod 600): the key is never taken from the command line itself.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// The portal is reached through a reverse proxy on this machine that terminates HTTPS
    /// (nginx, Caddy; README "Serving it for real"): session cookies are `Secure`, and the
    /// client's address is the one the proxy adds to X-Forwarded-For.
    #[arg(long, conflicts_with = "tls_cert")]
    pub(crate) behind_https_proxy: bool,
    /// The most connections served at once (more wait to be accepted).
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub(crate) max_connections: usize,
    /// Seconds a client may take to send a request's headers (or to finish the TLS
    /// handshake); a kept-alive connection idle this long is closed.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) header_timeout: u64,
    /// With accounts: a session unused this long ends (30m, 1h, …; plain seconds too).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_interval)]
    pub(crate) session_idle: i64,
    /// With accounts: a session ends this long after sign-in, however it is used.
    #[arg(long, value_name = "DURATION", default_value = "12h", value_parser = parse_interval)]
    pub(crate) session_max: i64,
    /// How often the scheduler looks for due schedules, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub(crate) tick: u64,
    #[command(flatten)]
    pub(crate) oidc: OidcArgs,
    #[command(flatten)]
    pub(crate) run: ScheduleRunArgs,
}

/// `mailaudit serve`'s single sign-on (OpenID Connect) flags.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct OidcArgs {
    /// Single sign-on with Microsoft Entra ID: the directory (tenant) ID or a domain name of
    /// the tenant (issuer https://login.microsoftonline.com/TENANT/v2.0). Needs
    /// --oidc-client-id and the client secret in MAILAUDIT_OIDC_CLIENT_SECRET (never on the
    /// command line). The sign-in page then has a "Sign in with Microsoft" button; README
    /// "Single sign-on" tells the app registration.
    #[arg(
        long,
        value_name = "TENANT",
        conflicts_with = "oidc_issuer",
        requires = "oidc_client_id"
    )]
    pub(crate) oidc_tenant: Option<String>,
    /// Single sign-on with another OpenID Connect provider: its issuer URL (https://; its
    /// discovery document is ISSUER/.well-known/openid-configuration).
    #[arg(long, value_name = "URL", requires = "oidc_client_id")]
    pub(crate) oidc_issuer: Option<String>,
    /// The application (client) ID registered with the provider.
    #[arg(long, value_name = "ID")]
    pub(crate) oidc_client_id: Option<String>,
    /// The redirect URI registered with the provider:
    /// https://PORTAL/login/sso/callback (default: the listening address's, right only for a
    /// portal reached at that address).
    #[arg(long, value_name = "URL")]
    pub(crate) oidc_redirect_uri: Option<String>,
    /// Also trust the CA certificates of this PEM file for the provider's HTTPS endpoints
    /// (web PKI roots are always trusted).
    #[arg(long, value_name = "FILE")]
    pub(crate) oidc_ca_file: Option<std::path::PathBuf>,
    /// E-mail addresses that sign in as admins through single sign-on (comma-separated; the
    /// user is created, or given the role, at sign-in).
    #[arg(long, value_name = "EMAIL,...", value_delimiter = ',')]
    pub(crate) oidc_admins: Vec<String>,
    /// E-mail addresses that sign in as technicians through single sign-on.
    #[arg(long, value_name = "EMAIL,...", value_delimiter = ',')]
    pub(crate) oidc_technicians: Vec<String>,
    /// Members of a group (the ID token's `groups` claim: Entra object IDs) sign in with a
    /// role: GROUP=admin, GROUP=technician or GROUP=viewer:CUSTOMER (repeat for several; the
    /// highest role wins). Users already in the store whose name is their e-mail address sign
    /// in with their own role; anyone else is refused.
    #[arg(long = "oidc-group", value_name = "GROUP=ROLE[:CUSTOMER]")]
    pub(crate) oidc_groups: Vec<String>,
}

/// `mailaudit user …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a portal user (the password from MAILAUDIT_PASSWORD, --password-stdin or a prompt).
    Add {
        /// The sign-in name (e.g. an e-mail address; no white space).
        name: String,
        /// The user's role: admin, technician or viewer (a viewer needs --customer).
        #[arg(long, value_enum, required_unless_present = "admin")]
        role: Option<RoleArg>,
        /// Make the user an admin (the same as --role admin): how the first user is made.
        #[arg(long, conflicts_with = "role")]
        admin: bool,
        /// A customer the viewer may see (repeat for several; only with --role viewer).
        #[arg(long = "customer", value_name = "NAME")]
        customers: Vec<String>,
        #[command(flatten)]
        password: PasswordArgs,
        /// Add the user without a password (it signs in only through single sign-on, or after
        /// `mailaudit user passwd`).
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
    },
    /// List portal users: name, role, customers, second factor, when added.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Remove a portal user and end its sessions (the audit log keeps its name; the last admin
    /// cannot be removed).
    Remove {
        /// The user's name.
        name: String,
    },
    /// Set a user's password (from MAILAUDIT_PASSWORD, --password-stdin or a prompt) and end
    /// its sessions.
    Passwd {
        /// The user's name.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Turn a user's two-factor sign-in off (a lost phone and recovery codes) and end its
    /// sessions; the user sets it up again from its account page.
    #[command(name = "reset-2fa")]
    Reset2fa {
        /// The user's name.
        name: String,
    },
    /// Change a user's role (and a viewer's customers) and end its sessions (the last admin
    /// keeps its role).
    Role {
        /// The user's name.
        name: String,
        /// The new role.
        #[arg(value_enum)]
        role: RoleArg,
        /// A customer the viewer may see (repeat for several; only for viewer). Replaces the
        /// viewer's customers.
        #[arg(long = "customer", value_name = "NAME")]
        customers: Vec<String>,
    },
}

/// Where a password comes from.
#[derive(Debug, Args)]
pub(crate) struct PasswordArgs {
    /// Read the password from the first line of standard input (for scripts; else it comes
    /// from MAILAUDIT_PASSWORD, or a prompt on the terminal).
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

/// A portal role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// Everything: every customer, users, the audit log.
    Admin,
    /// Every customer; keeps checklists, the inventory and schedules; starts audits; not users.
    Technician,
    /// Read-only, only its customers.
    Viewer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TextOrJson {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum GuideFormat {
    Md,
    Html,
    Json,
}

/// `30m`, `12h`, `1d`, `7d`, `2w` (or plain seconds) → seconds.
pub(crate) fn parse_interval(s: &str) -> Result<i64, String> {
    use mailaudit_core::duration::{DAY, DurationError, HOUR, MINUTE, SECOND, WEEK, parse};
    let s = s.trim();
    parse(s, &[SECOND, MINUTE, HOUR, DAY, WEEK], 1, i64::MAX).map_err(|e| match e {
        DurationError::Form => format!("invalid interval {s:?}: expected e.g. 12h, 1d, 7d"),
        DurationError::Unit => format!("invalid interval unit in {s:?}: use s, m, h, d or w"),
        DurationError::Range
            if s.trim_start_matches('0')
                .starts_with(|c: char| !c.is_ascii_digit()) =>
        {
            "the interval must be positive".to_string()
        }
        DurationError::Range => "interval too long".to_string(),
    })
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
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
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
    /// When to use colours in the table.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub(crate) color: Option<ColorChoice>,
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
    /// Domains to audit. Without domains or --file, the whole inventory is audited (or
    /// --customer's domains).
    #[arg(value_name = "DOMAIN")]
    pub(crate) domains: Vec<String>,

    /// Audit this customer's domains from the inventory.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["domains", "file", "sample"])]
    pub(crate) customer: Option<String>,

    /// Do not record the run in the store (history, checklist, alerts).
    #[arg(long)]
    pub(crate) no_store: bool,

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
    #[arg(long, value_name = "N", default_value_t = 128)]
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

    /// Do not audit here: queue the run in the store for `mailaudit worker`s (on this machine or
    /// others) and follow its progress until they have recorded every domain. The domains
    /// (arguments, --file or the inventory) are normalised and deduplicated here and queued in
    /// chunks of --chunk-size; each worker audits with its own resolver and options. Needs a
    /// store the workers share: PostgreSQL (`--db postgres://…`); a SQLite file serves workers on
    /// this machine only. Ctrl-C stops following; the run goes on. The results are read as any
    /// run's (history, guide, portal, `mailaudit runs`).
    #[arg(
        long,
        conflicts_with_all = ["no_store", "sample", "relay_test", "output", "fail_on", "stats", "parked"]
    )]
    pub(crate) distributed: bool,

    /// Domains per chunk of a distributed run: what a worker claims at once, records in one
    /// transaction, and audits again when it dies half-way.
    #[arg(long, value_name = "N", default_value_t = 500, requires = "distributed",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) chunk_size: u32,

    /// With --distributed: queue the run, print its id and exit without following it.
    #[arg(long, requires = "distributed")]
    pub(crate) detach: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
    /// This worker's name in the runs' progress (default: HOST:PID).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Domains audited at once.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub(crate) concurrency: usize,
    /// How long a claimed chunk is this worker's: renewed every third of it while the worker
    /// audits, so a worker that dies or loses the store holds its chunk this long at most, then
    /// another worker claims it and audits it again.
    #[arg(long, value_name = "INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub(crate) lease: i64,
    /// How often an idle worker looks for a chunk.
    #[arg(long, value_name = "INTERVAL", default_value = "2s", value_parser = parse_interval)]
    pub(crate) poll: i64,
    /// Exit once no running distributed run has a chunk left to audit (pending, or leased by a
    /// worker that may yet die); by default the worker waits for new runs until Ctrl-C or
    /// SIGTERM.
    #[arg(long)]
    pub(crate) exit_when_done: bool,
    /// Seconds to wait for each DNS reply before retrying.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub(crate) timeout: f64,
    /// Times a DNS query is retried after a timeout.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) retries: usize,
    /// Do not fetch MTA-STS policies over HTTPS.
    #[arg(long)]
    pub(crate) no_policy_fetch: bool,
    /// The HTTPS port of MTA-STS policy hosts (443; another for labs).
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub(crate) https_port: u16,
    /// Trust the CA certificates in this PEM file too (labs), for MTA-STS policy hosts.
    #[arg(long, value_name = "PATH")]
    pub(crate) ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    #[command(flatten)]
    pub(crate) store: StoreOpt,
    /// One run's progress (a distributed run's chunks and workers) instead of the list.
    #[arg(value_name = "RUN")]
    pub(crate) run: Option<i64>,
    /// How many runs to list, newest first.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) format: TextOrJson,
}

#[derive(Debug, Args)]
pub(crate) struct SpfEvalArgs {
    #[command(flatten)]
    pub(crate) dns: DnsOpt,
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

#[cfg(test)]
mod tests {
    use super::parse_interval;

    #[test]
    fn intervals_and_their_errors() {
        assert_eq!(parse_interval("7d"), Ok(7 * 86_400));
        assert_eq!(parse_interval("90"), Ok(90));
        assert_eq!(parse_interval("30m"), Ok(1800));
        assert!(
            parse_interval("soon")
                .unwrap_err()
                .contains("expected e.g. 12h")
        );
        assert!(
            parse_interval("1y")
                .unwrap_err()
                .contains("use s, m, h, d or w")
        );
        assert_eq!(
            parse_interval("0d").unwrap_err(),
            "the interval must be positive"
        );
        assert_eq!(
            parse_interval("99999999999999999999w").unwrap_err(),
            "interval too long"
        );
    }
}
