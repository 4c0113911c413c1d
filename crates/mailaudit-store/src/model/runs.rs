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
