//! `mailaudit reports fetch URL [--watch]`: reads DMARC and SMTP TLS reports from an IMAP
//! mailbox and stores them like `reports ingest`, downloading only what arrived since the
//! mailbox's stored cursor (UIDVALIDITY and last UID read).
//!
//! One poll: (re)open the mailbox, look up the cursor, `UID SEARCH` past it (from the start when
//! UIDVALIDITY changed), fetch the sizes, then each message in UID order: download it, open it
//! as an `.eml` (`reports::open_input`), store its reports (`reports::ingest_file`), flag or move
//! it when asked and everything in it was read, and move the cursor past it. The cursor moves
//! only after the message's reports are stored, so a connection lost in the middle means that
//! message is downloaded again on reconnection and its reports count as duplicates: nothing is
//! lost, nothing is stored twice. With `--watch`, polls repeat: after each one the watcher waits
//! in `IDLE` (RFC 2177) when the server offers it (and `--no-idle` is not given) until the
//! server announces new mail (`* n EXISTS`) or `--interval` passes (29 minutes at most), else
//! it sleeps `--interval`. An IMAP failure (in a poll or in IDLE) is reported and the session
//! reopened with backoff. Store failures end the command.
//!
//! Login is by password or by OAuth 2.0 bearer token (Exchange Online): a token given in an
//! environment variable, or tokens from the client credentials grant
//! ([`mailaudit_net::oauth2::TokenProvider`]). A fetched token is renewed before it expires
//! (with `--watch`, the session is closed and reopened with the new token before a poll), and
//! a fetched token the server refuses is replaced once by a new one on the same connection.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use mailaudit_core::imap::{ImapUrl, idle_period};
use mailaudit_core::reports::Mode;
use mailaudit_net::Resolver;
use mailaudit_net::imap::{ImapError, ImapOptions, MailboxInfo, Session};
use mailaudit_net::oauth2::{
    AccessToken, ClientCredentials, TokenOptions, TokenProvider, TokenSource, microsoft_token_url,
};
use mailaudit_net::smtp::TlsRoots;
use mailaudit_store::Store;
use tokio::sync::Mutex;

use super::reports::{Counts, ReadLimits, ingest_file, open_input};
use crate::cli::{Cli, ReportsFetchArgs};

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// UIDs whose sizes are asked for in one command.
const SIZE_BATCH: usize = 500;

/// Why a poll stopped: the IMAP session (retry with a new one) or anything else (give up).
enum Failure {
    Imap(ImapError),
    Other(anyhow::Error),
}

impl From<ImapError> for Failure {
    fn from(e: ImapError) -> Self {
        Failure::Imap(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<mailaudit_store::StoreError> for Failure {
    fn from(e: mailaudit_store::StoreError) -> Self {
        Failure::Other(e.into())
    }
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default)]
struct Poll {
    messages: u64,
    counts: Counts,
}

/// How the session logs in.
enum Auth {
    /// `AUTHENTICATE PLAIN` or `LOGIN`.
    Password(String),
    /// `AUTHENTICATE XOAUTH2` or `OAUTHBEARER` with tokens from the provider; `from` says where
    /// they come from, for the hints of a refusal.
    OAuth {
        provider: Box<Mutex<TokenProvider>>,
        from: String,
    },
}

struct Fetcher<'a> {
    store: &'a dyn Store,
    args: &'a ReportsFetchArgs,
    url: ImapUrl,
    /// The mailbox's identity (the URL without password), the cursor's key.
    identity: String,
    auth: Auth,
    opts: ImapOptions,
    resolver: Resolver,
    limits: ReadLimits,
    mode: Mode,
}

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
    let opts = ImapOptions {
        timeout: Duration::from_secs_f64(args.timeout),
        allow_plaintext: args.allow_plaintext,
        max_literal: args.max_message_mb.saturating_mul(1024 * 1024),
        ..ImapOptions::new(roots)
    };
    // Host names are resolved like every other look-up of the run (--nameserver).
    let resolver = Resolver::new(&super::resolver_config(cli, args.timeout.min(30.0), 1)?)?;
    let fetcher = Fetcher {
        store,
        args,
        identity: url.to_string(),
        url,
        auth,
        opts,
        resolver,
        limits: ReadLimits::new(args.max_decompressed_mb, args.max_seconds_per_file),
        mode: super::reports::mode(args.strict),
    };
    if args.watch {
        fetcher.watch().await
    } else {
        fetcher.once().await
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

impl Fetcher<'_> {
    /// One session, one poll.
    async fn once(&self) -> Result<ExitCode> {
        let mut session = self
            .session()
            .await
            .with_context(|| format!("cannot read {}", self.identity))?;
        let result = self.poll(&mut session).await;
        session.logout().await;
        match result {
            Ok(poll) => {
                self.print(&poll)?;
                Ok(if poll.counts.bad > 0 {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                })
            }
            Err(Failure::Imap(e)) => {
                Err(anyhow::Error::new(e).context(format!("reading {}", self.identity)))
            }
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Polls until interrupted, reconnecting with backoff.
    async fn watch(&self) -> Result<ExitCode> {
        // In place before the first line is printed, so that an early SIGTERM from a
        // supervisor is a clean stop too.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        eprintln!(
            "mailaudit: watching {} every {}s{} (Ctrl-C or SIGTERM to stop)",
            self.identity,
            self.args.interval,
            if self.args.no_idle {
                ""
            } else {
                ", or at once on new mail where the server offers IDLE"
            }
        );
        let interval = Duration::from_secs_f64(self.args.interval);
        let mut backoff = FIRST_BACKOFF;
        let mut any_bad = false;
        // Whether IDLE is used: on, unless --no-idle or a server refused it once.
        let mut idle = !self.args.no_idle;
        let run = async {
            loop {
                let mut session = match self.session().await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!(
                            "mailaudit: {}: {e:#}; retrying in {}s",
                            self.identity,
                            backoff.as_secs()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                };
                loop {
                    // A token about to expire is replaced before the server ends the session
                    // (Exchange Online does when the token it was opened with expires).
                    if self.token_due().await {
                        eprintln!(
                            "mailaudit: {}: the access token is due for renewal; reconnecting \
                             with a new one",
                            self.identity
                        );
                        session.logout().await;
                        break;
                    }
                    match self.poll(&mut session).await {
                        Ok(poll) => {
                            backoff = FIRST_BACKOFF;
                            any_bad |= poll.counts.bad > 0;
                            self.print(&poll)?;
                        }
                        Err(Failure::Other(e)) => {
                            session.logout().await;
                            return Err(e);
                        }
                        Err(Failure::Imap(e)) => {
                            self.lost(&e, &mut backoff).await;
                            break;
                        }
                    }
                    if !(idle && session.supports_idle()) {
                        tokio::time::sleep(interval).await;
                        continue;
                    }
                    // RFC 2177 §3: "clients using IDLE are advised to terminate the IDLE and
                    // re-issue it at least every 29 minutes to avoid being logged off."
                    match session.idle(idle_period(interval)).await {
                        // New mail, or the wait passed: poll.
                        Ok(_) => {}
                        Err(e @ ImapError::Command { .. }) => {
                            // Offered but refused: poll from now on.
                            eprintln!(
                                "mailaudit: {}: the server refused IDLE ({e}); polling every \
                                 {}s instead",
                                self.identity, self.args.interval
                            );
                            idle = false;
                            tokio::time::sleep(interval).await;
                        }
                        Err(e) => {
                            self.lost(&e, &mut backoff).await;
                            break;
                        }
                    }
                }
            }
        };
        // Runs until interrupted (Ctrl-C, SIGINT), terminated (SIGTERM) or a failure that is
        // not the connection's. A report is stored in one transaction, so stopping between two
        // awaits loses nothing already stored; the cursor only moves after the store.
        let outcome: Result<()> = tokio::select! {
            r = run => r,
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

    /// Reports a lost connection and waits `backoff`, which doubles for the next time.
    async fn lost(&self, e: &ImapError, backoff: &mut Duration) {
        eprintln!(
            "mailaudit: {}: connection lost: {e}; reconnecting in {}s",
            self.identity,
            backoff.as_secs()
        );
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }

    /// Whether the access token should be renewed now.
    async fn token_due(&self) -> bool {
        match &self.auth {
            Auth::Password(_) => false,
            Auth::OAuth { provider, .. } => provider.lock().await.refresh_due(),
        }
    }

    /// Connects and logs in.
    async fn session(&self) -> Result<Session> {
        let mut session = Session::connect(&self.url, &self.resolver, &self.opts).await?;
        if !session.is_tls() {
            eprintln!(
                "mailaudit: warning: {}: the server offers no STARTTLS; logging in without TLS \
                 (--allow-plaintext)",
                self.identity
            );
        }
        let user = &self.url.user;
        let (provider, from) = match &self.auth {
            Auth::Password(password) => {
                session.login(user, password).await?;
                return Ok(session);
            }
            Auth::OAuth { provider, from } => (provider, from),
        };
        let mut provider = provider.lock().await;
        let (token, fresh) = provider.token(&self.resolver).await?;
        let refused = match session.authenticate_oauth(user, token.secret()).await {
            Ok(()) => return Ok(session),
            Err(e @ ImapError::Login { .. }) => e,
            Err(e) => return Err(e.into()),
        };
        // Refused: a token from the token endpoint may have been revoked or have expired
        // early; one new token is asked for. A token just fetched, or one given, is not
        // replaced: another would be refused the same way.
        if !provider.can_refresh() || fresh {
            return Err(self.refused(refused, from, provider.can_refresh()));
        }
        eprintln!(
            "mailaudit: {}: the server refused the access token ({refused}); requesting a new one",
            self.identity
        );
        provider.invalidate();
        let (token, _) = provider.token(&self.resolver).await?;
        match session.authenticate_oauth(user, token.secret()).await {
            Ok(()) => Ok(session),
            Err(e @ ImapError::Login { .. }) => Err(self.refused(e, from, true)),
            Err(e) => Err(e.into()),
        }
    }

    /// A refused token, with what to check.
    fn refused(&self, e: ImapError, from: &str, fetched: bool) -> anyhow::Error {
        if fetched {
            anyhow!(
                "{e}; the token came from {from}: with Exchange Online, check that the app has \
                 the IMAP.AccessAsApp application permission with admin consent, that \
                 New-ServicePrincipal registered it in Exchange Online, and that \
                 Add-MailboxPermission gave that service principal FullAccess to {}",
                self.url.user
            )
        } else {
            anyhow!("{e}; {from} was refused: it may have expired (give a new one)")
        }
    }

    fn read_only(&self) -> bool {
        !self.args.mark_seen && self.args.move_to.is_none()
    }

    /// (Re)opens the mailbox and reads every message past the cursor.
    async fn poll(&self, session: &mut Session) -> Result<Poll, Failure> {
        let info = session.select(&self.url.mailbox, self.read_only()).await?;
        let validity = i64::from(info.uid_validity);
        let now = super::tracking::now();
        let cursor = self.store.mailbox_cursor(&self.identity).await?;
        let first = match &cursor {
            Some(c) if c.uid_validity == validity => c.last_uid + 1,
            Some(c) => {
                eprintln!(
                    "mailaudit: {}: UIDVALIDITY changed from {} to {validity}: reading the \
                     mailbox from the start (reports already stored count as duplicates)",
                    self.identity, c.uid_validity
                );
                1
            }
            None => 1,
        };
        if cursor.as_ref().is_none_or(|c| c.uid_validity != validity) {
            // Record the (re)start, so the reset holds even if nothing is read now.
            self.store
                .advance_mailbox_cursor(&self.identity, validity, 0, now)
                .await?;
        }
        let mut poll = Poll::default();
        let Ok(first) = u32::try_from(first) else {
            return Ok(poll);
        };
        let uids = session.search_from(first).await?;
        for batch in uids.chunks(SIZE_BATCH) {
            let sizes = session.sizes(batch).await?;
            for &uid in batch {
                let size = sizes
                    .binary_search_by_key(&uid, |(u, _)| *u)
                    .ok()
                    .map(|i| sizes[i].1);
                self.message(session, &info, uid, size, &mut poll).await?;
                self.store
                    .advance_mailbox_cursor(
                        &self.identity,
                        validity,
                        i64::from(uid),
                        super::tracking::now(),
                    )
                    .await?;
            }
        }
        Ok(poll)
    }

    /// Reads and stores one message; `size` is `None` when it was expunged meanwhile.
    async fn message(
        &self,
        session: &mut Session,
        info: &MailboxInfo,
        uid: u32,
        size: Option<u64>,
        poll: &mut Poll,
    ) -> Result<(), Failure> {
        let label = format!(
            "{};UIDVALIDITY={}/;UID={uid}",
            self.identity, info.uid_validity
        );
        let Some(size) = size else { return Ok(()) };
        poll.messages += 1;
        if size > self.opts.max_literal {
            eprintln!(
                "mailaudit: {label}: message of {size} bytes, larger than --max-message-mb \
                 ({} MiB); skipped",
                self.args.max_message_mb
            );
            poll.counts.bad += 1;
            return Ok(());
        }
        let Some(raw) = session.fetch(uid).await? else {
            eprintln!("mailaudit: {label}: the message no longer exists (expunged meanwhile)");
            poll.messages -= 1;
            return Ok(());
        };
        let counts = match open_input(
            &label,
            &format!("uid-{uid}.eml"),
            raw,
            &self.limits,
            self.mode,
        ) {
            Err(why) => {
                eprintln!("mailaudit: {label}: {why}");
                Counts {
                    bad: 1,
                    ..Counts::default()
                }
            }
            Ok(file) => ingest_file(self.store, &file, self.mode, super::tracking::now()).await?,
        };
        poll.counts += counts;
        if counts.bad == 0 {
            if self.args.mark_seen {
                session.mark_seen(uid).await?;
            }
            if let Some(target) = &self.args.move_to {
                session.move_to(uid, target).await?;
            }
        }
        Ok(())
    }

    fn print(&self, poll: &Poll) -> Result<()> {
        let Counts { new, dup, bad } = poll.counts;
        let mut out = crate::output::text_stdout();
        writeln!(
            out,
            "{}: {} messages read, {new} reports stored, {dup} duplicates skipped, {bad} not \
             readable",
            self.identity, poll.messages
        )
        .context("writing to standard output")?;
        out.flush().context("writing to standard output")
    }
}
