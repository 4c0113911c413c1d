//! The PostgreSQL store, for teams that run the portal on shared infrastructure. Writes are
//! transactions at READ COMMITTED; the claims (`claim_due_schedules`, `claim_due_alerts`) are
//! single `UPDATE … RETURNING` statements, which PostgreSQL re-evaluates against a row another
//! transaction changed meanwhile, so a row is never claimed twice.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::types::Json;

use crate::backend::*;
use crate::{
    Alert, ChecklistItem, ChunkLease, Customer, CustomerLine, DmarcRollout, DomainEntry,
    DomainState, FleetLine, FleetPage, FleetQuery, ItemState, NewDomain, PruneOutcome, RUN_SOURCES,
    ResultWrite, Role, Run, RunProgress, RunStatus, Schedule, Scope, Store, StoreError,
    StoredResult, TenantImport, Time, TrendPoint, User, redact_url,
};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long the first connection may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The innermost cause of a connection error ("Connection refused (os error 111)", "password
/// authentication failed for user …"), without sqlx's wrappers repeating it.
fn root_cause(e: &sqlx::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

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
        // One connection first, so that a server that is down, a wrong port or a refused login
        // is reported at once with its cause (the pool would retry until its acquire timeout
        // and then only say that it timed out).
        let server = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let unreachable = |reason: String| StoreError::Unreachable {
            server: server.clone(),
            reason: redact_url(&reason),
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(unreachable(root_cause(&e))),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = PgStore { pool };
        store.fill_latest().await?;
        Ok(store)
    }

    /// The underlying pool (tests, maintenance).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// What a claim's inner `SELECT` adds to lock the chunk it picks: the row, skipping rows other claims hold, so workers never wait on each other.
    const CLAIM_LOCK: &'static str = " FOR UPDATE OF c SKIP LOCKED";
    /// What a `SELECT` of one row adds to lock it until the transaction ends: `FOR NO KEY
    /// UPDATE`, which does not wait for the `KEY SHARE` locks that inserting rows referencing it
    /// takes (results reference their run), so two writers of one run never deadlock.
    const ROW_LOCK: &'static str = " FOR NO KEY UPDATE";

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Plain `VACUUM`: the space of deleted rows is reused (the files keep their size; `VACUUM
    /// FULL` would lock the tables for its whole run).
    async fn vacuum(&self) -> Result<(), sqlx::Error> {
        sqlx::query("VACUUM").execute(&self.pool).await?;
        Ok(())
    }
}

impl_store!(PgStore, sqlx::Postgres);
