//! mailaudit's store: the customer and domain inventory, every audit run with each domain's full
//! report, the remediation checklist, DMARC rollout state, recurring schedules, the alert outbox,
//! the history of Exchange Online tenant configuration imports, and ingested DMARC aggregate,
//! DMARC failure and SMTP TLS reports (deduplicated, with their raw files and the aggregate
//! records for per-domain analysis).
//!
//! One [`Store`] trait, two implementations over sqlx 0.8: embedded SQLite (the default, a file in
//! the user's data directory, see [`default_sqlite_path`]) and PostgreSQL for shared deployments.
//! [`open`] picks one from a URL and applies the versioned migrations in `migrations/sqlite` or
//! `migrations/postgres` before returning.
//!
//! Durability and concurrency:
//! - every write is one transaction (SQLite: WAL journal, `BEGIN IMMEDIATE`, a 30 s busy timeout);
//! - [`Store::record_result`] commits each domain's result on its own, so a crash mid-audit leaves
//!   the run `running` with the results recorded so far readable, and never a half-written row;
//! - [`Store::claim_due_schedules`] and [`Store::claim_due_alerts`] are single atomic
//!   `UPDATE … RETURNING` statements, so two runners never both take the same schedule or alert.
//!
//! All times are unix seconds UTC ([`Time`]); the binary formats dates.

#![warn(missing_docs)]

mod error;
mod model;
mod open;

pub mod analysis;
mod backend;
mod postgres;
mod raw;
mod sqlite;

pub use error::StoreError;
pub use model::*;
pub use open::{
    Location, OpenMode, Opened, default_sqlite_path, open, open_location, open_with, redact_url,
};
pub use raw::{MAX_RAW, RawEncoding, RawFile};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The store: inventory, history, checklist, rollout, schedules and alerts.
///
/// Domain names are normalised (trimmed, ASCII lower-case, trailing dot removed) by every method.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Adds a customer; `Conflict` if the name exists.
    async fn add_customer(
        &self,
        name: &str,
        contacts: &str,
        notes: &str,
    ) -> Result<Customer, StoreError>;
    /// All customers, by name.
    async fn customers(&self) -> Result<Vec<Customer>, StoreError>;
    /// One customer; `NotFound` if absent.
    async fn customer(&self, name: &str) -> Result<Customer, StoreError>;
    /// Changes a customer's contacts and/or notes (`None` leaves one as it is), in one
    /// transaction, and returns the customer before and after; nothing is written when nothing
    /// changes. `NotFound` if absent.
    async fn update_customer(
        &self,
        name: &str,
        contacts: Option<&str>,
        notes: Option<&str>,
    ) -> Result<Updated<Customer>, StoreError>;
    /// Adds or replaces a domain (its `id` and `added_at` are kept; every other field becomes
    /// `d`'s, so fields `d` leaves empty are erased: see [`Store::add_domain`] and
    /// [`Store::update_domain`] for what a person typed); the customer must exist (`NotFound`).
    async fn upsert_domain(&self, d: &NewDomain) -> Result<DomainEntry, StoreError>;
    /// Adds a domain unless one of that name is stored: [`Added::New`] with the entry as
    /// stored, or [`Added::Existing`] with the stored entry, which is left untouched. The
    /// customer must exist (`NotFound`, nothing written).
    async fn add_domain(&self, d: &NewDomain) -> Result<Added<DomainEntry>, StoreError>;
    /// Changes the fields of a stored domain that `u` gives ([`DomainUpdate::apply`]), in one
    /// transaction, and returns the entry before and after; nothing is written when nothing
    /// changes. `NotFound` for an unknown domain or customer (nothing written).
    async fn update_domain(
        &self,
        name: &str,
        u: &DomainUpdate,
    ) -> Result<Updated<DomainEntry>, StoreError>;
    /// Removes a domain from the inventory; its results, checklist and rollout are kept.
    /// `NotFound` if absent.
    async fn remove_domain(&self, name: &str) -> Result<(), StoreError>;
    /// Domains by name, all or one customer's (`NotFound` if that customer does not exist).
    async fn domains(&self, customer: Option<&str>) -> Result<Vec<DomainEntry>, StoreError>;
    /// One domain; `NotFound` if absent.
    async fn domain(&self, name: &str) -> Result<DomainEntry, StoreError>;
    /// Starts a run (`source`: one of [`RUN_SOURCES`]) and returns its id.
    async fn begin_run(&self, source: &str, now: Time) -> Result<i64, StoreError>;
    /// Records one domain's result in a running run, in its own transaction. Recording the same
    /// domain twice in one run replaces the earlier result. `NotFound` for an unknown run,
    /// `Conflict` for a finished one.
    async fn record_result(
        &self,
        run_id: i64,
        domain: &str,
        now: Time,
        score: Option<i64>,
        report: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Finishes a running run with `Complete` or `Aborted` (`Invalid` for `Running`, `Conflict`
    /// if already finished).
    async fn finish_run(&self, run_id: i64, status: RunStatus, now: Time)
    -> Result<(), StoreError>;
    /// The newest `limit` runs, newest first.
    async fn runs(&self, limit: i64) -> Result<Vec<Run>, StoreError>;
    /// The domain's newest result, from complete or running (or aborted) runs alike.
    async fn latest_result(&self, domain: &str) -> Result<Option<StoredResult>, StoreError>;
    /// The domain's newest `limit` results, newest first (by audit time, then insertion).
    async fn history(&self, domain: &str, limit: i64) -> Result<Vec<StoredResult>, StoreError>;
    /// The domain's checklist, by priority then the order of the last sync.
    async fn checklist(&self, domain: &str) -> Result<Vec<ChecklistItem>, StoreError>;
    /// Makes the stored checklist the given one: new keys are inserted as given, existing keys get
    /// the new title, priority and order but keep their state, by and at; keys absent from
    /// `items` are deleted. Items' own `domain` fields are ignored.
    async fn sync_checklist(&self, domain: &str, items: &[ChecklistItem])
    -> Result<(), StoreError>;
    /// Sets one item's state, recording who and when; `NotFound` if the item does not exist.
    async fn set_item_state(
        &self,
        domain: &str,
        key: &str,
        state: ItemState,
        by: &str,
        now: Time,
    ) -> Result<ChecklistItem, StoreError>;
    /// The domain's DMARC rollout state, if recorded.
    async fn dmarc_rollout(&self, domain: &str) -> Result<Option<DmarcRollout>, StoreError>;
    /// Records the domain's DMARC rollout phase (`none`, `quarantine` or `reject`; else `Invalid`).
    async fn set_dmarc_rollout(&self, r: &DmarcRollout) -> Result<(), StoreError>;
    /// Adds or replaces the schedule of its scope (a customer scope must name an existing
    /// customer; `interval_secs` > 0).
    async fn set_schedule(&self, s: &Schedule) -> Result<(), StoreError>;
    /// Removes the schedule of a scope; `NotFound` if there is none.
    async fn remove_schedule(&self, scope: &Scope) -> Result<(), StoreError>;
    /// All schedules (fleet first, then customers by name).
    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError>;
    /// Pauses a schedule (kept, not run: [`Store::claim_due_schedules`] skips it) or resumes
    /// it; `NotFound` when there is none for `scope`.
    async fn pause_schedule(&self, scope: &Scope, paused: bool) -> Result<(), StoreError>;
    /// Takes every schedule due at `now` (`next_run_at <= now`) in one atomic statement that sets
    /// `last_run_at = now` and advances `next_run_at` by the interval (to `now + interval` when
    /// more than one interval was missed). Returns them as updated; concurrent callers never get
    /// the same schedule for the same due time.
    async fn claim_due_schedules(&self, now: Time) -> Result<Vec<Schedule>, StoreError>;
    /// Queues an alert, due at once; returns its id.
    async fn enqueue_alert(
        &self,
        domain: &str,
        payload: &serde_json::Value,
        now: Time,
    ) -> Result<i64, StoreError>;
    /// Undelivered alerts due at `now`, oldest due first (read only: see also
    /// [`Store::claim_due_alerts`]).
    async fn due_alerts(&self, now: Time) -> Result<Vec<Alert>, StoreError>;
    /// Marks an alert delivered (counts the attempt); `NotFound` if absent. Delivering an already
    /// delivered alert keeps the first delivery time.
    async fn alert_delivered(&self, id: i64, now: Time) -> Result<(), StoreError>;
    /// Records a failed attempt and when to retry; `NotFound` if absent.
    async fn alert_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Time,
    ) -> Result<(), StoreError>;

    // ---- additions to the shared design ----

    /// Like [`Store::due_alerts`], but atomically leases the alerts it returns: their
    /// `next_attempt_at` moves to `now + lease_secs`, so a concurrent sender does not take them
    /// while this one delivers. Report the outcome with `alert_delivered`/`alert_failed`.
    async fn claim_due_alerts(&self, now: Time, lease_secs: i64) -> Result<Vec<Alert>, StoreError>;
    /// One run; `NotFound` if absent.
    async fn run(&self, run_id: i64) -> Result<Run, StoreError>;
    /// All results of one run, by domain.
    async fn run_results(&self, run_id: i64) -> Result<Vec<StoredResult>, StoreError>;
    /// Marks runs still `running` that started before `started_before` as `Aborted` (finished at
    /// `now`), e.g. at start-up after a crash; returns how many. Their results stay. A
    /// distributed run a worker has held a chunk of since `started_before` is still being
    /// worked on, and is left running.
    async fn abort_stale_runs(&self, started_before: Time, now: Time) -> Result<u64, StoreError>;
    /// Names of the domains whose latest result has a finding with this check id (e.g.
    /// `DMARC-MISSING`), by name.
    async fn domains_with_finding(&self, check_id: &str) -> Result<Vec<String>, StoreError>;
    /// Replaces the report of every result audited before `before` with its summary (score,
    /// findings without evidence or fixes, the state the history compares), except each
    /// domain's latest result, which stays whole whatever its age; then deletes the report
    /// bodies no result points at. Runs, scores and findings stay, so history, trends and
    /// fixed/regressed events remain. In batches of one transaction each: stopped half-way, what
    /// was pruned is pruned and the rest untouched.
    async fn prune_results(&self, before: Time) -> Result<PruneOutcome, StoreError>;
    /// Gives the space of deleted rows back: SQLite's `VACUUM` (the file shrinks), PostgreSQL's
    /// `VACUUM` (the space is reused; the files keep their size).
    async fn compact(&self) -> Result<(), StoreError>;
    /// Records an Exchange Online tenant configuration import: `config` is the parsed, normalised
    /// bundle, `findings` its evaluation (must be a JSON array, else `Invalid`), `source` the file
    /// it came from. `organization` is normalised like a domain name (`Invalid` when empty). The
    /// customer, when given, must exist (`NotFound`, nothing written). Returns the import's id.
    async fn record_tenant_import(
        &self,
        customer: Option<&str>,
        organization: &str,
        now: Time,
        source: &str,
        config: &serde_json::Value,
        findings: &serde_json::Value,
    ) -> Result<i64, StoreError>;
    /// The organization's newest `limit` imports, newest first (by import time, then insertion);
    /// empty for an organization never imported.
    async fn tenant_imports(
        &self,
        organization: &str,
        limit: i64,
    ) -> Result<Vec<TenantImport>, StoreError>;
    /// The newest import of each organization, by organization name: of every organization, or,
    /// given a customer, of each organization among that customer's imports (`NotFound` if the
    /// customer does not exist).
    async fn latest_tenant_imports(
        &self,
        customer: Option<&str>,
    ) -> Result<Vec<TenantImport>, StoreError>;
    /// Stores a report and its aggregate rows in one transaction. A report already stored with
    /// the same key (kind, reporter, report id, policy domain, begin, end) or the same content hash
    /// gives `Duplicate(its id)` and writes nothing (concurrent ingests of one report store it
    /// once). `Invalid` for a content hash that is not 64 hex digits, or problems that are not a
    /// JSON array.
    async fn ingest_report(&self, r: &NewReport, now: Time) -> Result<Ingested, StoreError> {
        let mut outcomes = self.ingest_reports(vec![r.clone()], now).await?;
        outcomes.pop().unwrap_or_else(|| {
            Err(StoreError::Invalid(
                "the store gave no outcome for the report".into(),
            ))
        })
    }
    /// Stores several reports, each as [`Store::ingest_report`] would, in one transaction (one
    /// commit for the lot: what makes `reports ingest` fast). The outcomes are in the order of
    /// `reports`; a report that is `Invalid` gets its error in its place and the others are
    /// stored. A database error fails the whole call and stores none of them. The reports are
    /// taken by value: their bytes and rows move into the statements instead of being copied.
    async fn ingest_reports(
        &self,
        reports: Vec<NewReport>,
        now: Time,
    ) -> Result<Vec<Result<Ingested, StoreError>>, StoreError>;
    /// The aggregate rows of the policy domain's reports whose period begins in
    /// `since <= begin < until` (so consecutive periods never count a report twice), each with its
    /// report's begin, by begin then storage order.
    async fn aggregate_rows(
        &self,
        policy_domain: &str,
        since: Time,
        until: Time,
    ) -> Result<Vec<(Time, AggregateRow)>, StoreError>;
    /// The newest `limit` reports (by period begin, then ingestion), all or one policy domain's.
    async fn reports(
        &self,
        policy_domain: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredReport>, StoreError>;
    /// The reports of one kind filed under `policy_domain` whose period begins in
    /// `since <= begin < until`, each with its parsed form, by begin then storage order. (An SMTP
    /// TLS report is filed under its first policy's domain.)
    async fn parsed_reports(
        &self,
        kind: ReportKind,
        policy_domain: &str,
        since: Time,
        until: Time,
    ) -> Result<Vec<(StoredReport, serde_json::Value)>, StoreError>;
    /// The policy domain a report is filed under (what decides who may see it); `NotFound` if
    /// absent.
    async fn report_domain(&self, id: i64) -> Result<String, StoreError>;
    /// A report's original file bytes; `NotFound` if absent.
    async fn report_raw(&self, id: i64) -> Result<Vec<u8>, StoreError>;
    /// The cursor of `mailbox` (its identity, see [`MailboxCursor::mailbox`]), if one is stored.
    async fn mailbox_cursor(&self, mailbox: &str) -> Result<Option<MailboxCursor>, StoreError>;
    /// Records that the messages of `mailbox` up to UID `last_uid` under `uid_validity` have been
    /// read, and returns the cursor now stored. Under the same UIDVALIDITY the cursor only moves
    /// forward (a lower `last_uid` leaves it where it is, so concurrent fetchers never move it
    /// back); a different UIDVALIDITY replaces it, since the old UIDs mean nothing any more.
    /// `Invalid` for an empty mailbox identity, one holding control characters or a password
    /// (`user:password@`), a UIDVALIDITY outside 1..=2^32-1 or a UID outside 0..=2^32-1.
    async fn advance_mailbox_cursor(
        &self,
        mailbox: &str,
        uid_validity: i64,
        last_uid: i64,
        now: Time,
    ) -> Result<MailboxCursor, StoreError>;
    /// What recording needs to know of each of `domains` (their inventory entries, DMARC
    /// roll-outs, checklists and newest `history` results), in the order given, read with one
    /// query per kind whatever their number. Duplicate names are read once.
    async fn domain_states(
        &self,
        domains: &[String],
        history: i64,
    ) -> Result<Vec<DomainState>, StoreError>;
    /// Records several audited domains of a running run in one transaction: each result (as
    /// [`Store::record_result`]), then its roll-out phase, checklist sync, item states and
    /// alert. Statements are issued per kind for the whole batch, not per domain, which is what
    /// makes recording a large audit cheap; the commit makes them durable together. `Invalid`
    /// when a domain appears twice (nothing written).
    ///
    /// With `lease` (a chunk of a distributed run, see [`Store::claim_chunk`]), the same
    /// transaction marks the chunk done, and only if the lease's token still holds it: otherwise
    /// `LeaseLost` and nothing is written, so each domain of a run gets exactly one result
    /// however many workers die or stall. The worker recording the run's last chunk also
    /// finishes the run as `Complete`.
    async fn record_batch(
        &self,
        run_id: i64,
        writes: &[ResultWrite],
        lease: Option<&ChunkLease>,
        now: Time,
    ) -> Result<(), StoreError>;
    /// A page of the fleet: the inventory's domains that pass `query`'s filters, in its order,
    /// `query.limit` lines from `query.offset`, with the totals over every line matched (each
    /// domain's newest result and what it found, and its checklist). `Invalid` for a filter
    /// value out of range.
    async fn fleet_page(&self, query: &FleetQuery) -> Result<FleetPage, StoreError>;
    /// Each customer's totals over its domains (within `scope`: None for every customer), by
    /// name; overdue checklist items judged at `now`.
    async fn customer_lines(
        &self,
        scope: Option<&[String]>,
        now: Time,
    ) -> Result<Vec<CustomerLine>, StoreError>;
    /// The progress over time of the domains within `scope` (None: every domain), or of one
    /// customer's: each run started at or after `since` that recorded one of them, oldest
    /// first, with its totals. A finished run's totals are computed once and kept
    /// (`run_totals`, by the customer each domain had then); a running run's are read each time.
    async fn trend(
        &self,
        scope: Option<&[String]>,
        customer: Option<&str>,
        since: Time,
    ) -> Result<Vec<TrendPoint>, StoreError>;
    /// Starts a distributed run (source `distributed`) whose domains are `chunks`, for
    /// `mailaudit worker`s to claim; in one transaction. Empty chunks are skipped; `Invalid` when
    /// no domain is left.
    async fn queue_run(&self, chunks: &[Vec<String>], now: Time) -> Result<i64, StoreError>;
    /// Claims the first chunk of a running distributed run that is pending or whose lease has
    /// expired, for `lease_secs` from `now`, for `worker` (a name shown in the run's progress).
    /// PostgreSQL skips chunks another claim has locked (`FOR UPDATE SKIP LOCKED`); SQLite
    /// serialises claims through its write lock. `None` when no chunk is to be had now.
    async fn claim_chunk(
        &self,
        worker: &str,
        now: Time,
        lease_secs: i64,
    ) -> Result<Option<ChunkLease>, StoreError>;
    /// Extends a held lease to `now + lease_secs`; `LeaseLost` when the token no longer holds
    /// the chunk. Updates `lease.lease_until`.
    async fn renew_lease(
        &self,
        lease: &mut ChunkLease,
        now: Time,
        lease_secs: i64,
    ) -> Result<(), StoreError>;
    /// Gives a held chunk back (pending again, for the next claim), e.g. when a worker is
    /// stopped; a lease already lost is left alone.
    async fn release_lease(&self, lease: &ChunkLease) -> Result<(), StoreError>;
    /// How far a distributed run is at `now`; `NotFound` for an unknown run.
    async fn run_progress(&self, run_id: i64, now: Time) -> Result<RunProgress, StoreError>;
    /// How many chunks of running distributed runs are not yet recorded (pending, leased or
    /// expired): what workers still have to do.
    async fn open_chunks(&self) -> Result<i64, StoreError>;

    // ---- portal accounts ----

    /// Adds a portal user with its role and, for a viewer, its customers (at least one, each
    /// existing: `NotFound` otherwise, nothing written); customers for an admin or a
    /// technician, who see every customer, are `Invalid`. `Conflict` if the name is taken.
    async fn add_user(&self, u: &NewUser, now: Time) -> Result<User, StoreError>;
    /// Every user, by name, with their customers.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// One user; `NotFound` if absent.
    async fn user(&self, name: &str) -> Result<User, StoreError>;
    /// Removes a user and its sessions, in one transaction; returns the user as it was. The
    /// audit log keeps naming it. `NotFound` if absent.
    async fn remove_user(&self, name: &str) -> Result<User, StoreError>;
    /// Replaces a user's password hash (`None`: no password, single sign-on only) and revokes
    /// every session of the user, in one transaction; returns how many were revoked.
    /// `NotFound` if absent.
    async fn set_password(
        &self,
        name: &str,
        password_hash: Option<&str>,
        now: Time,
    ) -> Result<u64, StoreError>;
    /// Gives a user a role and its customers (the rules of [`Store::add_user`]) and revokes its
    /// sessions, in one transaction; returns the user before and after. `NotFound` if absent.
    async fn set_role(
        &self,
        name: &str,
        role: Role,
        customers: &[String],
        now: Time,
    ) -> Result<Updated<User>, StoreError>;
    /// Sets (or, with `None`, removes) a user's second-factor secret and replaces its recovery
    /// codes (their hashes). `NotFound` if absent.
    async fn set_second_factor(
        &self,
        name: &str,
        secret: Option<&str>,
        recovery_hashes: &[String],
        now: Time,
    ) -> Result<(), StoreError>;
    /// Accepts a second-factor code of time step `step` for a user, once: true when `step` is
    /// later than the last step accepted (it is now the last), false for a step already used
    /// or an earlier one (a replayed code), or an unknown user. Setting the second factor
    /// forgets the last step.
    async fn accept_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError>;
    /// Uses up one of a user's recovery codes, by its hash, in one transaction: true when it was
    /// there (it is gone now), false otherwise. `NotFound` for an unknown user.
    async fn use_recovery_code(
        &self,
        name: &str,
        hash: &str,
        now: Time,
    ) -> Result<bool, StoreError>;
    /// An admin setting's value, if set.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets an admin setting.
    async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Starts a session of `user` under `token` (stored only as its SHA-256), with its CSRF
    /// token, ending at `expires_at` at the latest; `pending` while its second factor is still
    /// to be given. Tokens are at least 16 characters without white space (`Invalid`);
    /// `NotFound` for an unknown user.
    async fn create_session(
        &self,
        token: &str,
        user: &str,
        csrf_token: &str,
        now: Time,
        expires_at: Time,
        pending: bool,
    ) -> Result<(), StoreError>;
    /// The session of `token` with its user as stored now, and marks it used at `now`. A
    /// session past its absolute expiry, or unused for `idle_secs`, is deleted and `None`, as
    /// is an unknown token.
    async fn session(
        &self,
        token: &str,
        now: Time,
        idle_secs: i64,
    ) -> Result<Option<Session>, StoreError>;
    /// Ends the session of `token` (logout); false if there was none.
    async fn delete_session(&self, token: &str) -> Result<bool, StoreError>;
    /// Ends every session of a user; returns how many.
    async fn revoke_sessions(&self, user: &str) -> Result<u64, StoreError>;
    /// Deletes the sessions past their absolute expiry or unused for `idle_secs` at `now`;
    /// returns how many.
    async fn delete_expired_sessions(&self, now: Time, idle_secs: i64) -> Result<u64, StoreError>;
    /// Appends an entry to the audit log (its `id` is ignored; control characters are dropped
    /// and each field is cut at 1,000 characters); returns its id. `Invalid` without an action.
    async fn record_audit(&self, e: &AuditEntry) -> Result<i64, StoreError>;
    /// The newest `limit` audit log entries, newest first; with `before_id`, those older than
    /// that entry (the next page).
    async fn audit_log(
        &self,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Counts a failed sign-in under `key` (`user:NAME`, `addr:IP`) at `now`, in one atomic
    /// statement, and returns the count: one more than before, or 1 when the last failure is
    /// `forget_after` seconds old or older.
    async fn record_login_failure(
        &self,
        key: &str,
        now: Time,
        forget_after: i64,
    ) -> Result<LoginFailures, StoreError>;
    /// The failed sign-ins counted under `key`, if any.
    async fn login_failures(&self, key: &str) -> Result<Option<LoginFailures>, StoreError>;
    /// Forgets the failed sign-ins under `key` (after a successful one).
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;

    /// Makes an API token for `user` (its SHA-256 stored, with `label`); `NotFound` for an
    /// unknown user, `Invalid` for a token too short or a label empty or over 200 characters.
    async fn create_api_token(
        &self,
        user: &str,
        label: &str,
        token: &str,
        now: Time,
    ) -> Result<ApiToken, StoreError>;
    /// A user's API tokens, newest first.
    async fn api_tokens(&self, user: &str) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes one of `user`'s API tokens; false when it has none with that id.
    async fn revoke_api_token(&self, user: &str, id: i64) -> Result<bool, StoreError>;
    /// The user an API token acts as (None for an unknown token), noting its use at `now`.
    async fn api_token_user(&self, token: &str, now: Time) -> Result<Option<User>, StoreError>;

    /// Closes the connections (SQLite: checkpoints the WAL). Later calls fail.
    async fn close(&self);
}
