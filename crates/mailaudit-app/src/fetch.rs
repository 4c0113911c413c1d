//! DMARC and SMTP TLS reports read from an IMAP mailbox and stored like report files, downloading
//! only what arrived since the mailbox's stored cursor (UIDVALIDITY and last UID read): the poll
//! loop of `mailaudit reports fetch`.
//!
//! One poll ([`Fetcher::poll`]): (re)open the mailbox, look up the cursor, `UID SEARCH` past it
//! (from the start when UIDVALIDITY changed), fetch the sizes, then each message in UID order:
//! download it, open it as an `.eml` ([`open_input`]), store its reports ([`ingest_file`]), flag
//! or move it when asked and everything in it was read, and move the cursor past it. The cursor
//! moves only after the message's reports are stored, so a connection lost in the middle means
//! that message is downloaded again on reconnection and its reports count as duplicates: nothing
//! is lost, nothing is stored twice. [`Fetcher::watch`] repeats polls: after each one it waits in
//! `IDLE` (RFC 2177) when the server offers it (and [`FetchOptions::idle`] is set) until the
//! server announces new mail (`* n EXISTS`) or the interval passes (29 minutes at most), else it
//! sleeps the interval. An IMAP failure (in a poll or in IDLE) is reported and the session
//! reopened with backoff. Store failures end the watch.
//!
//! Login is by password or by OAuth 2.0 bearer token (Exchange Online) from a
//! [`TokenProvider`]. A fetched token is renewed before it expires (when watching, the session is
//! closed and reopened with the new token before a poll), and a fetched token the server refuses
//! is replaced once by a new one on the same connection.
//!
//! Nothing is printed: what happens is told to the caller as [`Event`]s.

use std::convert::Infallible;
use std::time::Duration;

use mailaudit_core::imap::{ImapUrl, idle_period};
use mailaudit_core::reports::Mode;
use mailaudit_net::Resolver;
use mailaudit_net::imap::{ImapError, ImapOptions, MailboxInfo, Session};
use mailaudit_net::oauth2::{TokenError, TokenProvider};
use mailaudit_store::Store;
use tokio::sync::Mutex;

use crate::AppError;
use crate::reports::{Counts, NotStored, ReadLimits, ingest_file, open_input};
use crate::tracking::now;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait before reconnecting.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// UIDs whose sizes are asked for in one command.
const SIZE_BATCH: usize = 500;

/// How the session logs in.
pub enum Auth {
    /// `AUTHENTICATE PLAIN` or `LOGIN` with this password.
    Password(String),
    /// `AUTHENTICATE XOAUTH2` or `OAUTHBEARER` with tokens from the provider.
    OAuth {
        /// Where the tokens come from.
        provider: Box<Mutex<TokenProvider>>,
        /// Where they come from, in words, for the hints of a refusal ("the token endpoint",
        /// "the token in VAR").
        from: String,
    },
}

/// What to fetch and how.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The mailbox.
    pub url: ImapUrl,
    /// The IMAP client's settings; `max_literal` is also the largest message downloaded.
    pub imap: ImapOptions,
    /// Limits on opening each message.
    pub limits: ReadLimits,
    /// The report parsers' mode.
    pub mode: Mode,
    /// Flag each message read in full as `\Seen`.
    pub mark_seen: bool,
    /// Move each message read in full to this mailbox.
    pub move_to: Option<String>,
    /// The time between polls when watching (the longest wait in IDLE too).
    pub interval: Duration,
    /// Whether to wait in IDLE between polls where the server offers it.
    pub idle: bool,
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// Messages read.
    pub messages: u64,
    /// Reports stored, duplicates, messages and documents not readable.
    pub counts: Counts,
}

/// What happens during a fetch, told to the caller as it happens.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The server offers no STARTTLS and plaintext is allowed: logging in without TLS.
    Plaintext,
    /// The server refused a fetched access token; a new one is requested.
    TokenRefused(&'a ImapError),
    /// UIDVALIDITY changed: the mailbox is read from the start.
    UidValidityChanged {
        /// The stored UIDVALIDITY.
        from: i64,
        /// The mailbox's.
        to: i64,
    },
    /// A message larger than the largest message downloaded (`imap.max_literal`); skipped and
    /// counted as not readable.
    TooLarge {
        /// The message's IMAP URL.
        label: &'a str,
        /// Its size in bytes.
        size: u64,
    },
    /// A message expunged between the search and its download.
    Expunged {
        /// The message's IMAP URL.
        label: &'a str,
    },
    /// A message that cannot be opened as a report message.
    Unreadable {
        /// The message's IMAP URL.
        label: &'a str,
        /// Why.
        why: &'a str,
    },
    /// A document of a message that was not stored.
    NotStored(&'a NotStored),
    /// A poll of [`Fetcher::watch`] ended.
    Polled(&'a Poll),
    /// Watching: the session could not be opened; retrying after `backoff`.
    Retrying {
        /// Why.
        error: &'a AppError,
        /// The wait.
        backoff: Duration,
    },
    /// Watching: the access token is due for renewal; reconnecting with a new one.
    TokenDue,
    /// Watching: the connection was lost; reconnecting after `backoff`.
    ConnectionLost {
        /// Why.
        error: &'a ImapError,
        /// The wait.
        backoff: Duration,
    },
    /// Watching: the server offers IDLE but refused it; polling every interval from now on.
    IdleRefused(&'a ImapError),
}

/// Receives the [`Event`]s of a fetch. An error (the caller could not report a poll) ends
/// [`Fetcher::watch`] with [`AppError::Progress`].
pub type OnEvent<'a> =
    dyn FnMut(Event<'_>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a;

/// Why a poll stopped: the IMAP session (retry with a new one) or anything else (give up).
enum Failure {
    Imap(ImapError),
    Other(AppError),
}

impl From<ImapError> for Failure {
    fn from(e: ImapError) -> Self {
        Failure::Imap(e)
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Failure::Other(e)
    }
}

impl From<mailaudit_store::StoreError> for Failure {
    fn from(e: mailaudit_store::StoreError) -> Self {
        Failure::Other(e.into())
    }
}

/// Reads reports from one mailbox into the store.
pub struct Fetcher<'a> {
    store: &'a dyn Store,
    opts: FetchOptions,
    /// The mailbox's identity (the URL without password), the cursor's key.
    identity: String,
    auth: Auth,
    resolver: Resolver,
}

impl<'a> Fetcher<'a> {
    /// A fetcher of `opts.url` into `store`, logging in with `auth`; host names (and the token
    /// endpoint's) are resolved by `resolver`.
    pub fn new(store: &'a dyn Store, opts: FetchOptions, auth: Auth, resolver: Resolver) -> Self {
        Fetcher {
            store,
            identity: opts.url.to_string(),
            opts,
            auth,
            resolver,
        }
    }

    /// The mailbox's identity: its URL without password, the key of its cursor.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One session, one poll. A session that cannot be opened is [`AppError::FetchConnect`],
    /// an IMAP failure during the poll [`AppError::FetchRead`].
    pub async fn once(&self, on: &mut OnEvent<'_>) -> Result<Poll, AppError> {
        let mut session = self.session(on).await.map_err(|e| AppError::FetchConnect {
            mailbox: self.identity.clone(),
            source: Box::new(e),
        })?;
        let result = self.poll(&mut session, on).await;
        session.logout().await;
        match result {
            Ok(poll) => Ok(poll),
            Err(Failure::Imap(e)) => Err(AppError::FetchRead {
                mailbox: self.identity.clone(),
                source: Box::new(e),
            }),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Polls until dropped, reconnecting with backoff; each poll is told as
    /// [`Event::Polled`]. Returns only on a failure that is not the connection's (the store,
    /// or the caller's [`OnEvent`]).
    pub async fn watch(&self, on: &mut OnEvent<'_>) -> Result<Infallible, AppError> {
        let mut backoff = FIRST_BACKOFF;
        // Whether IDLE is used: on, unless not asked for or a server refused it once.
        let mut idle = self.opts.idle;
        loop {
            let mut session = match self.session(on).await {
                Ok(s) => s,
                Err(error) => {
                    tell(
                        on,
                        Event::Retrying {
                            error: &error,
                            backoff,
                        },
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
                    tell(on, Event::TokenDue);
                    session.logout().await;
                    break;
                }
                match self.poll(&mut session, on).await {
                    Ok(poll) => {
                        backoff = FIRST_BACKOFF;
                        on(Event::Polled(&poll)).map_err(AppError::Progress)?;
                    }
                    Err(Failure::Other(e)) => {
                        session.logout().await;
                        return Err(e);
                    }
                    Err(Failure::Imap(e)) => {
                        lost(on, &e, &mut backoff).await;
                        break;
                    }
                }
                if !(idle && session.supports_idle()) {
                    tokio::time::sleep(self.opts.interval).await;
                    continue;
                }
                // RFC 2177 §3: "clients using IDLE are advised to terminate the IDLE and
                // re-issue it at least every 29 minutes to avoid being logged off."
                match session.idle(idle_period(self.opts.interval)).await {
                    // New mail, or the wait passed: poll.
                    Ok(_) => {}
                    Err(e @ ImapError::Command { .. }) => {
                        // Offered but refused: poll from now on.
                        tell(on, Event::IdleRefused(&e));
                        idle = false;
                        tokio::time::sleep(self.opts.interval).await;
                    }
                    Err(e) => {
                        lost(on, &e, &mut backoff).await;
                        break;
                    }
                }
            }
        }
    }

    /// Whether the access token should be renewed now.
    async fn token_due(&self) -> bool {
        match &self.auth {
            Auth::Password(_) => false,
            Auth::OAuth { provider, .. } => provider.lock().await.refresh_due(),
        }
    }

    /// Connects and logs in.
    async fn session(&self, on: &mut OnEvent<'_>) -> Result<Session, AppError> {
        let mut session = Session::connect(&self.opts.url, &self.resolver, &self.opts.imap).await?;
        if !session.is_tls() {
            tell(on, Event::Plaintext);
        }
        let user = &self.opts.url.user;
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
        tell(on, Event::TokenRefused(&refused));
        provider.invalidate();
        let (token, _) = provider.token(&self.resolver).await?;
        match session.authenticate_oauth(user, token.secret()).await {
            Ok(()) => Ok(session),
            Err(e @ ImapError::Login { .. }) => Err(self.refused(e, from, true)),
            Err(e) => Err(e.into()),
        }
    }

    /// A refused token, with what to check.
    fn refused(&self, error: ImapError, from: &str, fetched: bool) -> AppError {
        AppError::TokenRefused(Box::new(TokenRefused {
            error,
            from: from.to_string(),
            fetched,
            user: self.opts.url.user.clone(),
        }))
    }

    fn read_only(&self) -> bool {
        !self.opts.mark_seen && self.opts.move_to.is_none()
    }

    /// (Re)opens the mailbox and reads every message past the cursor.
    async fn poll(&self, session: &mut Session, on: &mut OnEvent<'_>) -> Result<Poll, Failure> {
        let info = session
            .select(&self.opts.url.mailbox, self.read_only())
            .await?;
        let validity = i64::from(info.uid_validity);
        let cursor = self.store.mailbox_cursor(&self.identity).await?;
        let first = match &cursor {
            Some(c) if c.uid_validity == validity => c.last_uid + 1,
            Some(c) => {
                tell(
                    on,
                    Event::UidValidityChanged {
                        from: c.uid_validity,
                        to: validity,
                    },
                );
                1
            }
            None => 1,
        };
        if cursor.as_ref().is_none_or(|c| c.uid_validity != validity) {
            // Record the (re)start, so the reset holds even if nothing is read now.
            self.store
                .advance_mailbox_cursor(&self.identity, validity, 0, now())
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
                self.message(session, &info, uid, size, &mut poll, on)
                    .await?;
                self.store
                    .advance_mailbox_cursor(&self.identity, validity, i64::from(uid), now())
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
        on: &mut OnEvent<'_>,
    ) -> Result<(), Failure> {
        let label = format!(
            "{};UIDVALIDITY={}/;UID={uid}",
            self.identity, info.uid_validity
        );
        let Some(size) = size else { return Ok(()) };
        poll.messages += 1;
        if size > self.opts.imap.max_literal {
            tell(
                on,
                Event::TooLarge {
                    label: &label,
                    size,
                },
            );
            poll.counts.bad += 1;
            return Ok(());
        }
        let Some(raw) = session.fetch(uid).await? else {
            tell(on, Event::Expunged { label: &label });
            poll.messages -= 1;
            return Ok(());
        };
        let counts = match open_input(
            &label,
            &format!("uid-{uid}.eml"),
            raw,
            &self.opts.limits,
            self.opts.mode,
        ) {
            Err(why) => {
                tell(
                    on,
                    Event::Unreadable {
                        label: &label,
                        why: &why,
                    },
                );
                Counts {
                    bad: 1,
                    ..Counts::default()
                }
            }
            Ok(file) => {
                let stored = ingest_file(self.store, &file, self.opts.mode, now()).await?;
                for n in &stored.not_stored {
                    tell(on, Event::NotStored(n));
                }
                stored.counts
            }
        };
        poll.counts += counts;
        if counts.bad == 0 {
            if self.opts.mark_seen {
                session.mark_seen(uid).await?;
            }
            if let Some(target) = &self.opts.move_to {
                session.move_to(uid, target).await?;
            }
        }
        Ok(())
    }
}

/// Tells an event whose report cannot fail the fetch (only [`Event::Polled`]'s can).
fn tell(on: &mut OnEvent<'_>, event: Event<'_>) {
    let _ = on(event);
}

/// Tells a lost connection and waits `backoff`, which doubles for the next time.
async fn lost(on: &mut OnEvent<'_>, e: &ImapError, backoff: &mut Duration) {
    tell(
        on,
        Event::ConnectionLost {
            error: e,
            backoff: *backoff,
        },
    );
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

/// The IMAP server refused an OAuth 2.0 access token ([`AppError::TokenRefused`]); the text
/// says what to check.
#[derive(Debug, thiserror::Error)]
#[error("{}", refused_text(.error, .from, *.fetched, .user))]
pub struct TokenRefused {
    /// The server's refusal.
    pub error: ImapError,
    /// Where the token came from, in words.
    pub from: String,
    /// Whether it came from the token endpoint (else it was given).
    pub fetched: bool,
    /// The mailbox user.
    pub user: String,
}

impl From<ImapError> for AppError {
    fn from(e: ImapError) -> Self {
        AppError::Imap(Box::new(e))
    }
}

impl From<TokenError> for AppError {
    fn from(e: TokenError) -> Self {
        AppError::Token(Box::new(e))
    }
}

fn refused_text(error: &ImapError, from: &str, fetched: bool, user: &str) -> String {
    if fetched {
        format!(
            "{error}; the token came from {from}: with Exchange Online, check that the app has \
             the IMAP.AccessAsApp application permission with admin consent, that \
             New-ServicePrincipal registered it in Exchange Online, and that \
             Add-MailboxPermission gave that service principal FullAccess to {user}"
        )
    } else {
        format!("{error}; {from} was refused: it may have expired (give a new one)")
    }
}
