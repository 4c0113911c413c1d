//! The PostgreSQL store, for teams that run the portal on shared infrastructure. Writes are
//! transactions at READ COMMITTED; the claims (`claim_due_schedules`, `claim_due_alerts`) are
//! single `UPDATE … RETURNING` statements, which PostgreSQL re-evaluates against a row another
//! transaction changed meanwhile, so a row is never claimed twice.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;

use crate::backend::*;
use crate::{
    Alert, ChecklistItem, Customer, DmarcRollout, DomainEntry, ItemState, KeyPerson, NewDomain,
    RUN_SOURCES, Run, RunStatus, Schedule, Scope, Store, StoreError, StoredResult, TenantImport,
    Time, redact_url,
};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=…]`) and applies
    /// pending migrations (under PostgreSQL's advisory lock, so concurrent openers are safe).
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Invalid(format!(
                "bad PostgreSQL URL {}: {}",
                redact_url(url),
                redact_url(&e.to_string())
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// The underlying pool (tests, maintenance).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
}

impl_store!(PgStore, sqlx::Postgres);
