//! Recurring re-audits and the alert outbox.

use serde::{Deserialize, Serialize};

use super::Time;

/// What a schedule audits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// The whole inventory.
    Fleet,
    /// One customer's domains.
    Customer(String),
}

impl Scope {
    /// Stored key: `fleet` or `customer:NAME` (also what the portal's forms send).
    pub fn key(&self) -> String {
        match self {
            Scope::Fleet => "fleet".to_string(),
            Scope::Customer(name) => format!("customer:{name}"),
        }
    }

    /// The scope of a key ([`Scope::key`]); None for another text.
    pub fn from_key(key: &str) -> Option<Scope> {
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
    /// Paused: kept, and not run until resumed ([`Store::pause_schedule`]); setting a schedule
    /// again leaves this as it is.
    #[serde(default)]
    #[sqlx(default)]
    pub paused: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys() {
        for s in [Scope::Fleet, Scope::Customer("A:b".into())] {
            assert_eq!(Scope::from_key(&s.key()), Some(s));
        }
    }
}
