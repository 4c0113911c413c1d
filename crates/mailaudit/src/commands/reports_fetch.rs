//! `mailaudit reports fetch URL [--watch]`: reads DMARC and SMTP TLS reports from an IMAP
//! mailbox and stores them like `reports ingest`, downloading only what arrived since the
//! mailbox's stored cursor. The poll loop is [`mailaudit_app::fetch`]; this module maps the
//! flags to its options, sets up the login (a password or an OAuth 2.0 bearer token, given in
//! an environment variable or from the client credentials grant), stops a watch on Ctrl-C or
//! SIGTERM, and prints what happens.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use mailaudit_app::fetch::{Auth, Event, FetchOptions, Fetcher, Poll};
use mailaudit_core::imap::ImapUrl;
use mailaudit_net::Resolver;
use mailaudit_net::imap::ImapOptions;
use mailaudit_net::oauth2::{
    AccessToken, ClientCredentials, TokenOptions, TokenProvider, TokenSource, microsoft_token_url,
};
use mailaudit_net::smtp::TlsRoots;
use mailaudit_store::Store;
use tokio::sync::Mutex;

use super::reports::{ReadLimits, mode};
use crate::cli::{Cli, ReportsFetchArgs};

pub(crate) async fn fetch(
    cli: &Cli,
    store: &dyn Store,
    args: &ReportsFetchArgs,
) -> Result<ExitCode> {
    let url = ImapUrl::parse(&args.url)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!(
            "--timeout must be between 0 and 3600 seconds, got {}",
            args.timeout
        );
    }
    if !(args.interval.is_finite() && args.interval >= 0.1 && args.interval <= 7.0 * 86_400.0) {
        bail!(
            "--interval must be between 0.1 seconds and 7 days, got {}",
            args.interval
        );
    }
    if args.max_message_mb == 0 {
        bail!("--max-message-mb must be at least 1");
    }
    let roots = match &args.ca_file {
        Some(path) => TlsRoots::with_ca_file(path)?,
        None => TlsRoots::webpki(),
    };
    let token_opts = TokenOptions {
        timeout: Duration::from_secs_f64(args.timeout),
        ..TokenOptions::new(roots.clone())
    };
    let auth = auth(args, token_opts)?;
    let imap = ImapOptions {
        timeout: Duration::from_secs_f64(args.timeout),
        allow_plaintext: args.allow_plaintext,
        max_literal: args.max_message_mb.saturating_mul(1024 * 1024),
        ..ImapOptions::new(roots)
    };
    // Host names are resolved like every other look-up of the run (--nameserver).
    let resolver = Resolver::new(&super::resolver_config(cli, args.timeout.min(30.0), 1)?)?;
    let opts = FetchOptions {
        url,
        imap,
        limits: ReadLimits::new(args.max_decompressed_mb, args.max_seconds_per_file),
        mode: mode(args.strict),
        mark_seen: args.mark_seen,
        move_to: args.move_to.clone(),
        interval: Duration::from_secs_f64(args.interval),
        idle: !args.no_idle,
    };
    let fetcher = Fetcher::new(store, opts, auth, resolver);
    if args.watch {
        watch(&fetcher, args).await
    } else {
        let poll = fetcher
            .once(&mut |e| {
                note(fetcher.identity(), args, &e);
                Ok(())
            })
            .await?;
        print(fetcher.identity(), &poll)?;
        Ok(if poll.counts.bad > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// The credentials the flags ask for: a bearer token given in an environment variable, the
/// client credentials grant (`--oauth2-client-id` with `--oauth2-tenant` or
/// `--oauth2-token-url`), or else the password.
fn auth(args: &ReportsFetchArgs, opts: TokenOptions) -> Result<Auth> {
    let from_env = |var: &str, what: &str| -> Result<String> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(v),
            _ => bail!(
                "the {what} is read from the environment variable {var}, which is not set (or \
                 empty)"
            ),
        }
    };
    if let Some(var) = &args.oauth2_token_env {
        let token = AccessToken::given(&from_env(var, "OAuth 2.0 access token")?)
            .map_err(|e| anyhow!("the access token in {var} cannot be used: {e}"))?;
        return Ok(Auth::OAuth {
            provider: Box::new(Mutex::new(TokenProvider::new(
                TokenSource::Given(token),
                opts,
            ))),
            from: format!("the token in {var}"),
        });
    }
    if let Some(client_id) = &args.oauth2_client_id {
        let token_url = match (&args.oauth2_token_url, &args.oauth2_tenant) {
            (Some(url), _) => url.clone(),
            (None, Some(tenant)) => microsoft_token_url(tenant)?,
            (None, None) => bail!(
                "--oauth2-client-id needs --oauth2-tenant (Microsoft's token endpoint of the \
                 tenant) or --oauth2-token-url"
            ),
        };
        let creds = ClientCredentials {
            token_url,
            client_id: client_id.clone(),
            client_secret: from_env(&args.oauth2_client_secret_env, "OAuth 2.0 client secret")?
                .trim()
                .to_string(),
            scope: args.oauth2_scope.clone(),
        };
        return Ok(Auth::OAuth {
            provider: Box::new(Mutex::new(TokenProvider::new(
                TokenSource::ClientCredentials(creds),
                opts,
            ))),
            from: "the token endpoint".into(),
        });
    }
    if args.oauth2_tenant.is_some() || args.oauth2_token_url.is_some() {
        bail!("--oauth2-tenant and --oauth2-token-url need --oauth2-client-id");
    }
    Ok(Auth::Password(from_env(
        &args.password_env,
        "IMAP password",
    )?))
}

/// Polls until interrupted (Ctrl-C, SIGINT), terminated (SIGTERM) or a failure that is not the
/// connection's. A report is stored in one transaction, so stopping between two awaits loses
/// nothing already stored; the cursor only moves after the store.
async fn watch(fetcher: &Fetcher<'_>, args: &ReportsFetchArgs) -> Result<ExitCode> {
    // In place before the first line is printed, so that an early SIGTERM from a supervisor is
    // a clean stop too.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let identity = fetcher.identity();
    eprintln!(
        "mailaudit: watching {identity} every {}s{} (Ctrl-C or SIGTERM to stop)",
        args.interval,
        if args.no_idle {
            ""
        } else {
            ", or at once on new mail where the server offers IDLE"
        }
    );
    let mut any_bad = false;
    let mut on = |e: Event<'_>| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Event::Polled(poll) = e {
            any_bad |= poll.counts.bad > 0;
            print(identity, poll)?;
        } else {
            note(identity, args, &e);
        }
        Ok(())
    };
    let outcome: Result<()> = tokio::select! {
        r = fetcher.watch(&mut on) => match r {
            Err(e) => Err(e.into()),
        },
        _ = interrupt.recv() => {
            eprintln!("mailaudit: interrupted; stopping");
            Ok(())
        }
        _ = term.recv() => {
            eprintln!("mailaudit: terminated; stopping");
            Ok(())
        }
    };
    outcome?;
    Ok(if any_bad {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints an event of the fetch on standard error.
fn note(identity: &str, args: &ReportsFetchArgs, e: &Event<'_>) {
    match e {
        Event::Plaintext => eprintln!(
            "mailaudit: warning: {identity}: the server offers no STARTTLS; logging in without \
             TLS (--allow-plaintext)"
        ),
        Event::TokenRefused(refused) => eprintln!(
            "mailaudit: {identity}: the server refused the access token ({refused}); requesting \
             a new one"
        ),
        Event::UidValidityChanged { from, to } => eprintln!(
            "mailaudit: {identity}: UIDVALIDITY changed from {from} to {to}: reading the \
             mailbox from the start (reports already stored count as duplicates)"
        ),
        Event::TooLarge { label, size } => eprintln!(
            "mailaudit: {label}: message of {size} bytes, larger than --max-message-mb ({} \
             MiB); skipped",
            args.max_message_mb
        ),
        Event::Expunged { label } => {
            eprintln!("mailaudit: {label}: the message no longer exists (expunged meanwhile)")
        }
        Event::Unreadable { label, why } => eprintln!("mailaudit: {label}: {why}"),
        Event::NotStored(n) => eprintln!("mailaudit: {n}"),
        Event::Retrying { error, backoff } => eprintln!(
            "mailaudit: {identity}: {}; retrying in {}s",
            chain(*error),
            backoff.as_secs()
        ),
        Event::TokenDue => eprintln!(
            "mailaudit: {identity}: the access token is due for renewal; reconnecting with a \
             new one"
        ),
        Event::ConnectionLost { error, backoff } => eprintln!(
            "mailaudit: {identity}: connection lost: {error}; reconnecting in {}s",
            backoff.as_secs()
        ),
        Event::IdleRefused(e) => eprintln!(
            "mailaudit: {identity}: the server refused IDLE ({e}); polling every {}s instead",
            args.interval
        ),
        // A poll is printed by the caller; events added later are not shown.
        _ => {}
    }
}

/// An error and its causes, as `{:#}` shows an `anyhow::Error`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

fn print(identity: &str, poll: &Poll) -> Result<()> {
    let mailaudit_app::reports::Counts { new, dup, bad } = poll.counts;
    let mut out = crate::output::text_stdout();
    writeln!(
        out,
        "{identity}: {} messages read, {new} reports stored, {dup} duplicates skipped, {bad} not \
         readable",
        poll.messages
    )
    .context("writing to standard output")?;
    out.flush().context("writing to standard output")
}
