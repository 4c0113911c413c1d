//! Audit runs and each domain's stored result.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;

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
pub const RUN_SOURCES: [&str; 4] = ["cli", "schedule", "portal", "distributed"];

/// An audit run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Run {
    /// Run id.
    pub id: i64,
    /// When it started.
    pub started_at: Time,
    /// When it finished (None while running or after a crash).
    pub finished_at: Option<Time>,
    /// `cli`, `schedule`, `portal` or `distributed` (queued for `mailaudit worker`s).
    pub source: String,
    /// Its state.
    pub status: RunStatus,
    /// Number of domain results recorded in it.
    pub domains: i64,
}

/// One domain's stored audit result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    /// The run it belongs to.
    pub run_id: i64,
    /// The domain.
    pub domain: String,
    /// When it was audited.
    pub audited_at: Time,
    /// The score, when the domain was scored.
    pub score: Option<i64>,
    /// The full `DomainReport` as JSON, or its summary once pruned (see `summary`).
    pub report: serde_json::Value,
    /// Whether [`Store::prune_results`] replaced the report with its summary: the score, the
    /// findings without evidence or fixes and the state the history compares, but no SPF
    /// include tree, probe transcripts or record details.
    #[serde(default)]
    pub summary: bool,
}

/// What [`Store::prune_results`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneOutcome {
    /// Results whose report was replaced by its summary.
    pub results: u64,
    /// Stored report bodies no result points at any more, deleted.
    pub bodies: u64,
}

/// What recording needs to know of a domain before it writes an audit's result (the
/// [`Store::domain_states`] of many domains, read in one query per kind).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainState {
    /// The domain, normalised.
    pub domain: String,
    /// Its inventory entry, when it is in the inventory.
    pub entry: Option<crate::DomainEntry>,
    /// Its DMARC roll-out phase, when recorded.
    pub rollout: Option<crate::DmarcRollout>,
    /// Its checklist, by priority then the order of the last sync.
    pub checklist: Vec<crate::ChecklistItem>,
    /// Its newest results, newest first.
    pub history: Vec<StoredResult>,
}

/// A checklist item's state set by an audit (see [`Store::set_item_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The item's key.
    pub key: String,
    /// Its new state.
    pub state: crate::ItemState,
    /// Who changed it.
    pub by: String,
}

/// Everything an audit of one domain writes, for [`Store::record_batch`]: its result, and what
/// follows from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultWrite {
    /// The domain.
    pub domain: String,
    /// When it was audited.
    pub audited_at: Time,
    /// Its score, when scored.
    pub score: Option<i64>,
    /// The report (`DomainReport` as JSON).
    pub report: serde_json::Value,
    /// A new DMARC roll-out phase to record.
    pub rollout: Option<crate::DmarcRollout>,
    /// The checklist to make the stored one, as [`Store::sync_checklist`] does (`None`: left as
    /// it is).
    pub checklist: Option<Vec<crate::ChecklistItem>>,
    /// Items whose state the audit changes, after the sync.
    pub states: Vec<StateChange>,
    /// An alert to queue (its payload).
    pub alert: Option<serde_json::Value>,
}
