//! A domain's remediation checklist and its DMARC rollout phase.

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;

/// The `by` value recorded when an audit, not a person, verified a checklist item.
pub const VERIFIED_BY_AUDIT: &str = "mailaudit (verified by audit)";

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
    #[sqlx(try_from = "crate::backend::PriorityColumn")]
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
