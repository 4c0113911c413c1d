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

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod analysis;
mod backend;
mod postgres;
mod raw;
mod sqlite;

pub use raw::{MAX_RAW, RawEncoding, RawFile};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Unix seconds, UTC.
pub type Time = i64;

/// The `by` value recorded when an audit, not a person, verified a checklist item.
pub const VERIFIED_BY_AUDIT: &str = "mailaudit (verified by audit)";

/// A customer of the MSP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Customer {
    /// Store id.
    pub id: i64,
    /// Unique name, as typed (surrounding white space removed).
    pub name: String,
    /// Free-form contacts.
    pub contacts: String,
    /// Free-form notes.
    pub notes: String,
    /// When it was added.
    pub created_at: Time,
}

/// A person to protect against impersonation (anti-phishing policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPerson {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// A domain of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DomainEntry {
    /// Store id.
    pub id: i64,
    /// Domain name, lower-case ASCII, no trailing dot.
    pub name: String,
    /// Owning customer's name.
    pub customer: Option<String>,
    /// Parked (sends and receives no mail).
    pub parked: bool,
    /// Microsoft 365 tenant name (`contoso` of `contoso.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// The tenant's Microsoft endpoint (`contoso-com.mail.protection.outlook.com`), if known.
    pub m365_endpoint: Option<String>,
    /// Relay test sender.
    pub relay_from: Option<String>,
    /// Relay test recipient.
    pub relay_to: Option<String>,
    /// People to protect against impersonation.
    #[sqlx(json)]
    pub key_people: Vec<KeyPerson>,
    /// When it was first added (kept by later updates).
    pub added_at: Time,
}

/// A domain to add or update ([`Store::upsert_domain`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewDomain {
    /// Domain name; normalised to lower-case ASCII without trailing dot.
    pub name: String,
    /// Owning customer (must exist).
    pub customer: Option<String>,
    /// Parked flag.
    pub parked: bool,
    /// Microsoft 365 tenant name.
    pub tenant: Option<String>,
    /// The tenant's Microsoft endpoint.
    pub m365_endpoint: Option<String>,
    /// Relay test sender.
    pub relay_from: Option<String>,
    /// Relay test recipient.
    pub relay_to: Option<String>,
    /// People to protect against impersonation.
    pub key_people: Vec<KeyPerson>,
}

/// Changes to one domain of the inventory ([`Store::update_domain`]): every field is left as
/// it is stored unless given here.
///
/// For the optional fields, `None` leaves the stored value, `Some(None)` (or `Some` of an empty
/// or blank text) clears it and `Some(Some(value))` sets it (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DomainUpdate {
    /// The owning customer (must exist); `Some(None)`: no customer.
    pub customer: Option<Option<String>>,
    /// The parked flag.
    pub parked: Option<bool>,
    /// The Microsoft 365 tenant name.
    pub tenant: Option<Option<String>>,
    /// The tenant's Microsoft endpoint.
    pub m365_endpoint: Option<Option<String>>,
    /// Relay test sender.
    pub relay_from: Option<Option<String>>,
    /// Relay test recipient.
    pub relay_to: Option<Option<String>>,
    /// Remove every key person (before `add_key_people` is applied, so both together replace
    /// the list).
    pub clear_key_people: bool,
    /// People to add ([`merge_key_people`]): a person whose address is already listed
    /// (compared case-insensitively) renames that entry in place; the others are appended in
    /// order. Existing people are never dropped unless `clear_key_people`.
    pub add_key_people: Vec<KeyPerson>,
}

impl DomainUpdate {
    /// True when it changes nothing, whatever is stored.
    pub fn is_empty(&self) -> bool {
        self.customer.is_none()
            && self.parked.is_none()
            && self.tenant.is_none()
            && self.m365_endpoint.is_none()
            && self.relay_from.is_none()
            && self.relay_to.is_none()
            && !self.clear_key_people
            && self.add_key_people.is_empty()
    }

    /// `entry` with these changes applied (text trimmed, empty text as none). Whether a new
    /// customer exists is for the store to check.
    pub fn apply(&self, entry: &DomainEntry) -> DomainEntry {
        fn text(v: &Option<String>) -> Option<String> {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        }
        let field = |change: &Option<Option<String>>, old: &Option<String>| match change {
            None => old.clone(),
            Some(v) => text(v),
        };
        let mut key_people = if self.clear_key_people {
            Vec::new()
        } else {
            entry.key_people.clone()
        };
        merge_key_people(&mut key_people, &self.add_key_people);
        DomainEntry {
            customer: field(&self.customer, &entry.customer),
            parked: self.parked.unwrap_or(entry.parked),
            tenant: field(&self.tenant, &entry.tenant),
            m365_endpoint: field(&self.m365_endpoint, &entry.m365_endpoint),
            relay_from: field(&self.relay_from, &entry.relay_from),
            relay_to: field(&self.relay_to, &entry.relay_to),
            key_people,
            ..entry.clone()
        }
    }
}

/// Adds `add` to the key people `list`, deduplicated by address (compared case-insensitively,
/// names and addresses trimmed): a person whose address is listed gives that entry its name in
/// place (a person without a name leaves the entry as it is); the others are appended in order,
/// one without a name named after the address's local part. Nobody is removed.
pub fn merge_key_people(list: &mut Vec<KeyPerson>, add: &[KeyPerson]) {
    for p in add {
        let email = p.email.trim();
        let name = p.name.trim();
        match list
            .iter_mut()
            .find(|q| q.email.trim().eq_ignore_ascii_case(email))
        {
            Some(q) if !name.is_empty() => q.name = name.to_string(),
            Some(_) => {}
            None => list.push(KeyPerson {
                name: if name.is_empty() {
                    email.split('@').next().unwrap_or("").to_string()
                } else {
                    name.to_string()
                },
                email: email.to_string(),
            }),
        }
    }
}

/// A stored thing before and after an update ([`Store::update_domain`],
/// [`Store::update_customer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updated<T> {
    /// As it was stored.
    pub before: T,
    /// As it is stored now.
    pub after: T,
}

impl<T: PartialEq> Updated<T> {
    /// True when the update changed anything (when not, nothing was written).
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// The outcome of [`Store::add_domain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Added<T> {
    /// Added: the entry as stored.
    New(T),
    /// One of that name was already stored; it is returned as stored, untouched.
    Existing(T),
}

/// State of an audit run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not finished (or the process died: its recorded results stay readable).
    Running,
    /// Finished normally.
    Complete,
    /// Stopped early.
    Aborted,
}

impl RunStatus {
    /// The stored word: `running`, `complete` or `aborted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Aborted => "aborted",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(RunStatus::Running),
            "complete" => Some(RunStatus::Complete),
            "aborted" => Some(RunStatus::Aborted),
            _ => None,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sources a run may be started from ([`Store::begin_run`]).
pub const RUN_SOURCES: [&str; 3] = ["cli", "schedule", "portal"];

/// An audit run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Run {
    /// Run id.
    pub id: i64,
    /// When it started.
    pub started_at: Time,
    /// When it finished (None while running or after a crash).
    pub finished_at: Option<Time>,
    /// `cli`, `schedule` or `portal`.
    pub source: String,
    /// Its state.
    pub status: RunStatus,
    /// Number of domain results recorded in it.
    pub domains: i64,
}

/// One domain's stored audit result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoredResult {
    /// The run it belongs to.
    pub run_id: i64,
    /// The domain.
    pub domain: String,
    /// When it was audited.
    pub audited_at: Time,
    /// The score, when the domain was scored.
    pub score: Option<i64>,
    /// The full `DomainReport` as JSON.
    #[sqlx(json)]
    pub report: serde_json::Value,
}

/// State of a checklist item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    /// To do.
    Open,
    /// Done (ticked by a person or verified by an audit).
    Done,
}

impl ItemState {
    /// The stored word: `open` or `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Open => "open",
            ItemState::Done => "done",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(ItemState::Open),
            "done" => Some(ItemState::Done),
            _ => None,
        }
    }
}

/// One item of a domain's remediation checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ChecklistItem {
    /// The domain.
    pub domain: String,
    /// Stable key chosen by the guide (e.g. `dmarc-quarantine`).
    pub key: String,
    /// Priority 1 (critical now), 2 (high, this week), 3 (medium, this month), 4 (low, when
    /// convenient).
    #[sqlx(try_from = "backend::PriorityColumn")]
    pub priority: u8,
    /// Title shown to the technician.
    pub title: String,
    /// Open or done.
    pub state: ItemState,
    /// Who last changed the state (a person, or [`VERIFIED_BY_AUDIT`]).
    #[sqlx(rename = "done_by")]
    pub by: Option<String>,
    /// When the state last changed.
    #[sqlx(rename = "done_at")]
    pub at: Option<Time>,
    /// When the item was last inserted, retitled, reprioritised or changed state.
    pub updated_at: Time,
}

impl ChecklistItem {
    /// The checklist a remediation guide gives `domain` ([`mailaudit_core::guide::checklist`]):
    /// every item open, stamped `at`, ready for [`Store::sync_checklist`] (which keeps the state
    /// of items already stored).
    pub fn open_items(domain: &str, guide: &mailaudit_core::guide::Guide, at: Time) -> Vec<Self> {
        mailaudit_core::guide::checklist(guide)
            .into_iter()
            .map(|(key, priority, title)| ChecklistItem {
                domain: domain.to_string(),
                key: key.to_string(),
                priority,
                title,
                state: ItemState::Open,
                by: None,
                at: None,
                updated_at: at,
            })
            .collect()
    }
}

/// The DMARC rollout phase of a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DmarcRollout {
    /// The domain.
    pub domain: String,
    /// `none`, `quarantine` or `reject`.
    pub phase: String,
    /// When the phase started.
    pub started_at: Time,
}

/// What a schedule audits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// The whole inventory.
    Fleet,
    /// One customer's domains.
    Customer(String),
}

impl Scope {
    /// Stored key: `fleet` or `customer:NAME`.
    pub(crate) fn key(&self) -> String {
        match self {
            Scope::Fleet => "fleet".to_string(),
            Scope::Customer(name) => format!("customer:{name}"),
        }
    }

    pub(crate) fn from_key(key: &str) -> Option<Scope> {
        if key == "fleet" {
            return Some(Scope::Fleet);
        }
        key.strip_prefix("customer:")
            .map(|n| Scope::Customer(n.to_string()))
    }
}

/// A recurring re-audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Schedule {
    /// What it audits.
    pub scope: Scope,
    /// Seconds between runs (> 0).
    pub interval_secs: i64,
    /// When it is next due.
    pub next_run_at: Time,
    /// When it was last claimed.
    pub last_run_at: Option<Time>,
}

/// A queued alert (webhook or email), delivered with retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Alert {
    /// Alert id.
    pub id: i64,
    /// When it was queued.
    pub created_at: Time,
    /// The domain it is about.
    pub domain: String,
    /// The JSON body to deliver.
    #[sqlx(json)]
    pub payload: serde_json::Value,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: Time,
    /// When it was delivered.
    pub delivered_at: Option<Time>,
    /// The last delivery error.
    pub last_error: Option<String>,
}

/// One stored Exchange Online tenant configuration import ([`Store::record_tenant_import`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct TenantImport {
    /// Import id.
    pub id: i64,
    /// The customer it was imported for, if any.
    pub customer: Option<String>,
    /// The tenant's organization name (`contoso.onmicrosoft.com`), lower-case.
    pub organization: String,
    /// When it was imported.
    pub imported_at: Time,
    /// Where it came from (the bundle's file name).
    pub source: String,
    /// The parsed, normalised tenant configuration.
    #[sqlx(rename = "bundle", json)]
    pub config: serde_json::Value,
    /// The findings of its evaluation (a JSON array).
    #[sqlx(json)]
    pub findings: serde_json::Value,
}

/// The kind of an ingested report ([`NewReport::kind`]), stored as its word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A DMARC aggregate report (`aggregate`).
    Aggregate,
    /// A DMARC failure report (`failure`).
    Failure,
    /// An SMTP TLS report (`smtp_tls`).
    SmtpTls,
}

impl ReportKind {
    /// Every kind, in the order of the stored words.
    pub const ALL: [ReportKind; 3] = [
        ReportKind::Aggregate,
        ReportKind::Failure,
        ReportKind::SmtpTls,
    ];

    /// The stored word (also the JSON `type` of `reports parse`): `aggregate`, `failure` or
    /// `smtp_tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Aggregate => "aggregate",
            ReportKind::Failure => "failure",
            ReportKind::SmtpTls => "smtp_tls",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<Self> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for ReportKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        ReportKind::parse(s).ok_or_else(|| {
            let words: Vec<&str> = ReportKind::ALL.iter().map(|k| k.as_str()).collect();
            StoreError::Invalid(format!(
                "unknown report kind {s:?} (one of {})",
                words.join(", ")
            ))
        })
    }
}

/// Compares with the stored word.
impl PartialEq<&str> for ReportKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One record (`<record>` row) of a DMARC aggregate report, flattened for analysis. Absent values
/// are empty strings; lists are comma-separated, in the report's order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, sqlx::FromRow)]
pub struct AggregateRow {
    /// The sending IP address (`row/source_ip`).
    pub source_ip: String,
    /// Messages from that source with these results (`row/count`).
    #[sqlx(rename = "message_count")]
    pub count: i64,
    /// The applied disposition (`policy_evaluated/disposition`).
    pub disposition: String,
    /// DKIM alignment as evaluated by the reporter (`policy_evaluated/dkim`: `pass` or `fail`).
    pub dkim_aligned: String,
    /// SPF alignment as evaluated by the reporter (`policy_evaluated/spf`: `pass` or `fail`).
    pub spf_aligned: String,
    /// The RFC5322.From domain (`identifiers/header_from`).
    pub header_from: String,
    /// The RFC5321.MailFrom domain (`identifiers/envelope_from`), empty when not reported.
    pub envelope_from: String,
    /// The DKIM signing domains (`auth_results/dkim/domain`), comma-separated.
    pub dkim_domains: String,
    /// Their results (`auth_results/dkim/result`), comma-separated, same order.
    pub dkim_results: String,
    /// The SPF domains checked (`auth_results/spf/domain`), comma-separated.
    pub spf_domains: String,
    /// Their results (`auth_results/spf/result`), comma-separated, same order.
    pub spf_results: String,
}

impl AggregateRow {
    /// The row in the form [`mailaudit_core::reports::analysis`] analyses, for a report whose
    /// period begins at `begin`, with the source's reverse DNS name `ptr`; `None` when the
    /// stored source is not an IP address.
    pub fn to_analysis_row(
        &self,
        begin: Time,
        ptr: Option<String>,
    ) -> Option<mailaudit_core::reports::analysis::Row> {
        let results: Vec<&str> = self.dkim_results.split(',').collect();
        Some(mailaudit_core::reports::analysis::Row {
            begin,
            source_ip: self.source_ip.parse().ok()?,
            ptr,
            count: u64::try_from(self.count).unwrap_or(0),
            disposition: self.disposition.clone(),
            dkim_aligned: self.dkim_aligned == "pass",
            spf_aligned: self.spf_aligned == "pass",
            header_from: self.header_from.clone(),
            dkim_domains: self
                .dkim_domains
                .split(',')
                .zip(results.iter())
                .filter(|(d, res)| !d.is_empty() && **res == "pass")
                .map(|(d, _)| d.to_string())
                .collect(),
            spf_domains: self
                .spf_domains
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect(),
            dkim_pass: results.contains(&"pass"),
            spf_pass: self.spf_results.split(',').any(|s| s == "pass"),
        })
    }
}

/// A report to store ([`Store::ingest_report`]).
#[derive(Debug, Clone)]
pub struct NewReport {
    /// Its kind.
    pub kind: ReportKind,
    /// Who sent it (the reporting organization's name or its contact address).
    pub reporter: String,
    /// The reporter's id of the report.
    pub report_id: String,
    /// The domain the report is about; normalised like a domain name, may be empty (a failure
    /// report naming none).
    pub policy_domain: String,
    /// Start of the reported period.
    pub begin: Time,
    /// End of the reported period.
    pub end: Time,
    /// Hex SHA-256 of the report's content, computed by the caller (64 hex digits, any case;
    /// stored lower-case).
    pub content_hash: String,
    /// Where it came from (the file name).
    pub source: String,
    /// The original file as read, before decompression, in its stored form ([`RawFile`]:
    /// `RawFile::compress` it off the writing path; `vec.into()` keeps it as it is).
    pub raw: RawFile,
    /// The parsed report (for an aggregate report, without its records: they are its `rows`,
    /// and all of them are in `raw`), as JSON text (serialized straight from the parser's structs with
    /// `serde_json::value::to_raw_value`: no `serde_json::Value` is built on the way to the
    /// store).
    pub parsed: Box<serde_json::value::RawValue>,
    /// What was wrong with it (a JSON array).
    pub problems: serde_json::Value,
    /// Its records (aggregate reports; empty for the other kinds).
    pub rows: Vec<AggregateRow>,
}

/// The outcome of [`Store::ingest_report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ingested {
    /// Stored under this id.
    New(i64),
    /// Already stored (same key or same content hash) under this id; nothing was written.
    Duplicate(i64),
}

impl Ingested {
    /// The report's id, new or existing.
    pub fn id(self) -> i64 {
        match self {
            Ingested::New(id) | Ingested::Duplicate(id) => id,
        }
    }
}

/// A stored report, without its raw bytes ([`Store::report_raw`]) and parsed form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoredReport {
    /// Report id.
    pub id: i64,
    /// Its kind.
    pub kind: ReportKind,
    /// Who sent it.
    pub reporter: String,
    /// The reporter's id of the report.
    pub report_id: String,
    /// The domain the report is about.
    pub policy_domain: String,
    /// Start of the reported period.
    #[sqlx(rename = "begin_time")]
    pub begin: Time,
    /// End of the reported period.
    #[sqlx(rename = "end_time")]
    pub end: Time,
    /// Lower-case hex SHA-256 of its content.
    pub content_hash: String,
    /// Where it came from (the file name).
    pub source: String,
    /// When it was ingested.
    pub ingested_at: Time,
    /// What was wrong with it (a JSON array).
    #[sqlx(json)]
    pub problems: serde_json::Value,
}

/// Where `reports fetch` stopped reading an IMAP mailbox ([`Store::advance_mailbox_cursor`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct MailboxCursor {
    /// The mailbox's identity, e.g. `imaps://dmarc@mail.example:993/INBOX` (never a password).
    pub mailbox: String,
    /// The mailbox's UIDVALIDITY the UIDs belong to (1 to 2^32-1).
    pub uid_validity: i64,
    /// Every message with this UID or lower has been read (0: none yet).
    pub last_uid: i64,
    /// When the cursor last moved.
    pub updated_at: Time,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist (`what` says which: `customer "Acme"`, `run 7`).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The write conflicts with the stored state (duplicate name, finished run).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An argument is invalid (empty name, bad URL, unknown phase).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database failed (connection, I/O, SQL).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Stored data cannot be read back (e.g. a raw report whose compressed form is damaged).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Applying the migrations failed (e.g. the database is newer than this program).
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A store opened with [`OpenMode::MustExist`] does not exist: there is no SQLite file at
    /// `path` (and, when `missing_dir` is set, not even the directory meant to hold it).
    /// Nothing was created.
    #[error("no store at {}{}", path.display(), missing_dir_text(missing_dir.as_deref()))]
    NoStore {
        /// The SQLite file looked for.
        path: PathBuf,
        /// Its parent directory, when that does not exist either.
        missing_dir: Option<PathBuf>,
    },
    /// A new SQLite file was to be created ([`OpenMode::CreateIfMissing`]) in a directory that
    /// does not exist; directories are not created for it, so a mistyped path makes nothing.
    #[error("cannot create a store at {}: directory {} does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The SQLite file to create.
        path: PathBuf,
        /// The missing directory.
        dir: PathBuf,
    },
    /// The PostgreSQL server could not be reached or refused the connection (wrong host or
    /// port, server down, authentication failed, no such database).
    #[error("cannot connect to PostgreSQL at {server}: {reason}")]
    Unreachable {
        /// `HOST:PORT/DATABASE` (no user, no password).
        server: String,
        /// The cause, as the connection attempt reported it.
        reason: String,
    },
}

fn missing_dir_text(dir: Option<&Path>) -> String {
    dir.map(|d| format!(" (directory {} does not exist)", d.display()))
        .unwrap_or_default()
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }
}

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
    /// `now`), e.g. at start-up after a crash; returns how many. Their results stay.
    async fn abort_stale_runs(&self, started_before: Time, now: Time) -> Result<u64, StoreError>;
    /// Names of the domains whose latest result has a finding with this check id (e.g.
    /// `DMARC-MISSING`), by name.
    async fn domains_with_finding(&self, check_id: &str) -> Result<Vec<String>, StoreError>;
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
    /// Closes the connections (SQLite: checkpoints the WAL). Later calls fail.
    async fn close(&self);
}

/// Where the store lives, parsed from a `--db` URL. Its `Debug` and `Display` hide a PostgreSQL
/// password.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (`sqlite::memory:`), gone when closed.
    SqliteMemory,
    /// A PostgreSQL URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Location {
    /// Parses a URL: None → [`default_sqlite_path`]; `sqlite://PATH` (also `sqlite:PATH`),
    /// `sqlite::memory:`, `postgres://…`, `postgresql://…`.
    pub fn parse(url: Option<&str>) -> Result<Location, StoreError> {
        let Some(url) = url else {
            return Ok(Location::SqliteFile(default_sqlite_path()));
        };
        let url = url.trim();
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Location::SqliteMemory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(Location::SqliteFile(PathBuf::from(p))),
            Some(_) => Err(StoreError::Invalid(
                "sqlite URL without a path (use sqlite://PATH)".into(),
            )),
            None => Err(StoreError::Invalid(format!(
                "unsupported database URL {:?}: use sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB",
                redact_url(url)
            ))),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::SqliteFile(p) => f.debug_tuple("SqliteFile").field(p).finish(),
            Location::SqliteMemory => f.write_str("SqliteMemory"),
            Location::Postgres(u) => f.debug_tuple("Postgres").field(&redact_url(u)).finish(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::SqliteFile(p) => write!(f, "sqlite://{}", p.display()),
            Location::SqliteMemory => f.write_str("sqlite::memory:"),
            Location::Postgres(u) => f.write_str(&redact_url(u)),
        }
    }
}

/// Replaces the password of a URL's `user:password@` part, and any `password=` query parameter,
/// with `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

/// The default SQLite file: `$MAILAUDIT_DB`, else `$XDG_DATA_HOME/mailaudit/mailaudit.db`, else
/// `~/.local/share/mailaudit/mailaudit.db` (`./mailaudit.db` when there is no home directory).
pub fn default_sqlite_path() -> PathBuf {
    default_sqlite_path_from(|k| std::env::var_os(k))
}

fn default_sqlite_path_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let non_empty = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(p) = non_empty("MAILAUDIT_DB") {
        return PathBuf::from(p);
    }
    // XDG Base Directory: "If an implementation encounters a relative path in any of these
    // variables it should consider the path invalid and ignore it."
    if let Some(p) = non_empty("XDG_DATA_HOME").map(PathBuf::from)
        && p.is_absolute()
    {
        return p.join("mailaudit").join("mailaudit.db");
    }
    match non_empty("HOME") {
        Some(home) => Path::new(&home)
            .join(".local/share")
            .join("mailaudit")
            .join("mailaudit.db"),
        None => PathBuf::from("mailaudit.db"),
    }
}

/// Opens the store at `url` (see [`Location::parse`]), creating the SQLite file (mode 0600) and
/// its directories as needed ([`OpenMode::CreateWithParents`]), and applies pending migrations.
pub async fn open(url: Option<&str>) -> Result<Box<dyn Store>, StoreError> {
    open_location(&Location::parse(url)?).await
}

/// Opens the store at a parsed location, as [`open`] does.
pub async fn open_location(location: &Location) -> Result<Box<dyn Store>, StoreError> {
    Ok(open_with(location, OpenMode::CreateWithParents)
        .await?
        .store)
}

/// What opening a store may create when its SQLite file does not exist. (An in-memory database
/// is always new; a PostgreSQL database is never created, only connected to.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The store must exist: a missing file is [`StoreError::NoStore`] and nothing is created
    /// (commands that only read, given an explicit path that may be mistyped).
    MustExist,
    /// A missing file is created (mode 0600) in its directory, which must exist: a missing
    /// directory is [`StoreError::NoDirectory`] (commands that write, given an explicit path).
    CreateIfMissing,
    /// A missing file is created with its missing parent directories (mode 0700): the default
    /// store in the user's data directory.
    CreateWithParents,
}

/// A store just opened by [`open_with`].
pub struct Opened {
    /// The store, migrated.
    pub store: Box<dyn Store>,
    /// The SQLite file that opening it created (`None`: the store existed, or is in memory or
    /// in PostgreSQL).
    pub created: Option<PathBuf>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Opens the store at `location`, creating a missing SQLite file only as `mode` allows, applies
/// pending migrations, and says whether the file was created.
pub async fn open_with(location: &Location, mode: OpenMode) -> Result<Opened, StoreError> {
    Ok(match location {
        Location::SqliteFile(path) => {
            let (store, created) = SqliteStore::open_file_with(path, mode).await?;
            Opened {
                store: Box::new(store),
                created: created.then(|| path.clone()),
            }
        }
        Location::SqliteMemory => Opened {
            store: Box::new(SqliteStore::open_memory().await?),
            created: None,
        },
        Location::Postgres(url) => Opened {
            store: Box::new(PgStore::connect(url).await?),
            created: None,
        },
    })
}

/// The current time as [`Time`] (unix seconds): what the API stamps itself with (`created_at`,
/// `added_at`), and the clock of every caller that records or queries by time (the CLI, the
/// portal), so that they all read it one way.
pub fn now() -> Time {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored words are the migrations' CHECK list and the JSON's; an unknown one is refused.
    #[test]
    fn report_kinds_are_their_stored_words() {
        let words: Vec<String> = ReportKind::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(words, ["aggregate", "failure", "smtp_tls"]);
        for k in ReportKind::ALL {
            assert_eq!(k.as_str().parse::<ReportKind>().unwrap(), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::from(k.as_str())
            );
        }
        for bad in ["forensic", "Aggregate", "smtp-tls", ""] {
            assert!(
                matches!(bad.parse::<ReportKind>(), Err(StoreError::Invalid(_))),
                "{bad}"
            );
        }
        for dir in ["sqlite", "postgres"] {
            let sql = std::fs::read_to_string(format!(
                "{}/migrations/{dir}/0003_reports.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            assert!(
                sql.contains("CHECK (kind IN ('aggregate', 'failure', 'smtp_tls'))"),
                "{dir}"
            );
        }
    }

    #[test]
    fn aggregate_row_to_analysis_row() {
        let r = AggregateRow {
            source_ip: "2001:db8::1".into(),
            count: 7,
            disposition: "none".into(),
            dkim_aligned: "pass".into(),
            spf_aligned: "fail".into(),
            header_from: "contoso.example".into(),
            envelope_from: String::new(),
            dkim_domains: "esp.example,contoso.example".into(),
            dkim_results: "fail,pass".into(),
            spf_domains: "esp.example".into(),
            spf_results: "softfail".into(),
        };
        let row = r
            .to_analysis_row(86_400, Some("o1.esp.example".into()))
            .unwrap();
        assert_eq!(row.source_ip.to_string(), "2001:db8::1");
        assert_eq!((row.begin, row.count), (86_400, 7));
        assert!(row.dkim_aligned && !row.spf_aligned && row.dkim_pass && !row.spf_pass);
        assert_eq!(row.dkim_domains, ["contoso.example"]);
        assert_eq!(row.ptr.as_deref(), Some("o1.esp.example"));
        let bad = AggregateRow {
            source_ip: "not an ip".into(),
            ..r
        };
        assert!(bad.to_analysis_row(0, None).is_none());
    }

    #[test]
    fn redaction() {
        for (url, want) in [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?password=x&a=b",
                "postgres://h/db?password=***&a=b",
            ),
            ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
            ("postgres://u:p/w@h/db", "postgres://u:p/w@h/db"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
        let loc = Location::parse(Some("postgres://me:hunter2@db.example/m")).unwrap();
        assert!(!format!("{loc:?}").contains("hunter2"));
        assert!(!format!("{loc}").contains("hunter2"));
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse(Some("sqlite:///var/x.db")).unwrap(),
            Location::SqliteFile("/var/x.db".into())
        );
        assert_eq!(
            Location::parse(Some("sqlite://rel/x.db")).unwrap(),
            Location::SqliteFile("rel/x.db".into())
        );
        assert_eq!(
            Location::parse(Some("sqlite::memory:")).unwrap(),
            Location::SqliteMemory
        );
        assert!(matches!(
            Location::parse(Some("mysql://x")),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            Location::parse(Some("sqlite://")),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn default_path() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        for (vars, want) in [
            (
                &[("MAILAUDIT_DB", "/x/m.db"), ("HOME", "/h")][..],
                "/x/m.db",
            ),
            (
                &[("XDG_DATA_HOME", "/d"), ("HOME", "/h")][..],
                "/d/mailaudit/mailaudit.db",
            ),
            (
                &[("XDG_DATA_HOME", "rel"), ("HOME", "/h")][..],
                "/h/.local/share/mailaudit/mailaudit.db",
            ),
            (
                &[("MAILAUDIT_DB", ""), ("HOME", "/h")][..],
                "/h/.local/share/mailaudit/mailaudit.db",
            ),
            (&[][..], "mailaudit.db"),
        ] {
            assert_eq!(default_sqlite_path_from(env(vars)), PathBuf::from(want));
        }
    }

    #[test]
    fn scope_keys() {
        for s in [Scope::Fleet, Scope::Customer("A:b".into())] {
            assert_eq!(Scope::from_key(&s.key()), Some(s));
        }
    }
}
