//! The store's data: what each area of the [`Store`](crate::Store) takes and gives back, one module
//! per area, all re-exported at the crate root.

mod accounts;
mod checklist;
mod fleet;
mod inventory;
mod mailbox;
mod queue;
mod reports;
mod runs;
mod schedules;
mod tenant;

pub use accounts::{ApiToken, AuditEntry, LoginFailures, NewUser, Role, Session, User};
pub use checklist::{ChecklistItem, DmarcRollout, ItemState, VERIFIED_BY_AUDIT};
pub use fleet::{
    AREAS, CustomerLine, DUE_DAYS, DmarcFilter, FleetLine, FleetPage, FleetQuery, FleetSort,
    FleetTotals, RELAY_VERDICTS, SEVERITIES, TrendPoint, rank_severity, severity_rank,
};
pub use inventory::{
    Added, Customer, DomainEntry, DomainUpdate, KeyPerson, NewDomain, Updated, merge_key_people,
};
pub use mailbox::MailboxCursor;
pub use queue::{ChunkLease, RunProgress};
pub use reports::{AggregateRow, Ingested, NewReport, ReportKind, StoredReport};
pub use runs::{
    DomainState, PruneOutcome, RUN_SOURCES, ResultWrite, Run, RunStatus, StateChange, StoredResult,
};
pub use schedules::{Alert, Schedule, Scope};
pub use tenant::TenantImport;

/// Unix seconds, UTC.
pub type Time = i64;

/// The current time as [`Time`] (unix seconds): what the API stamps itself with (`created_at`,
/// `added_at`), and the clock of every caller that records or queries by time (the CLI, the
/// portal), so that they all read it one way.
pub fn now() -> Time {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
