//! The queue of distributed runs (`run_chunks`): no coordinator process, the database is the
//! queue. A claim is one `UPDATE … WHERE (run_id, chunk) = (SELECT … LIMIT 1 FOR UPDATE SKIP
//! LOCKED) RETURNING …` statement (PostgreSQL; SQLite serialises writers and needs no row
//! locks), a lease is a token and an expiry, and a chunk's results are recorded in the
//! transaction that marks it done, fenced by the token ([`Store::record_batch`](crate::Store)).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;

/// A token for a new lease: the worker's name, the process, the time in nanoseconds and a
/// counter, so that no two claims ever share one.
pub(crate) fn lease_token(worker: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{worker}/{}/{nanos}/{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A worker's name: not empty, no control characters, at most 200 characters.
pub(crate) fn check_worker(worker: &str) -> Result<&str, StoreError> {
    let w = worker.trim();
    if w.is_empty() || w.len() > 200 || w.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "a worker's name is 1 to 200 characters without control characters: {worker:?}"
        )));
    }
    Ok(w)
}

/// A lease's length: 1 second to a day.
pub(crate) fn check_lease_secs(secs: i64) -> Result<i64, StoreError> {
    if !(1..=86_400).contains(&secs) {
        return Err(StoreError::Invalid(format!(
            "a lease lasts 1 s to 1 day, not {secs} s"
        )));
    }
    Ok(secs)
}

/// The chunk columns a claim returns.
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    pub(crate) run_id: i64,
    pub(crate) chunk: i64,
    pub(crate) domains: String,
    pub(crate) attempts: i64,
}

/// The counts of a run's chunks at a time.
#[derive(sqlx::FromRow)]
pub(crate) struct ChunkCounts {
    pub(crate) chunks: i64,
    pub(crate) done: i64,
    pub(crate) leased: i64,
    pub(crate) expired: i64,
    pub(crate) domains: i64,
    pub(crate) domains_done: i64,
    pub(crate) retried: i64,
}

/// The queue's methods (see [`impl_store!`](super::impl_store)).
macro_rules! queue_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            /// Marks a leased chunk done in `tx`, if `lease`'s token still holds it; else
            /// `LeaseLost`.
            async fn complete_chunk(
                tx: &mut sqlx::Transaction<'static, $db>,
                lease: &ChunkLease,
                now: Time,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE run_chunks SET state = 'done', done_at = $1, lease_until = NULL \
                     WHERE run_id = $2 AND chunk = $3 AND token = $4 AND state = 'leased'",
                )
                .bind(now)
                .bind(lease.run_id)
                .bind(lease.chunk)
                .bind(&lease.token)
                .execute(&mut **tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::LeaseLost(format!(
                        "chunk {} of run {} was claimed by another worker after this lease expired",
                        lease.chunk, lease.run_id
                    )));
                }
                Ok(())
            }

            /// Finishes the run as `Complete` in `tx` when none of its chunks is left. The
            /// run's row is locked first (PostgreSQL), so that of two workers recording the
            /// last two chunks at once, the second sees the first's and finishes the run.
            async fn complete_run_if_done(
                tx: &mut sqlx::Transaction<'static, $db>,
                run_id: i64,
                now: Time,
            ) -> Result<(), StoreError> {
                sqlx::query(&format!("SELECT id FROM runs WHERE id = $1{}", Self::ROW_LOCK))
                    .bind(run_id)
                    .execute(&mut **tx)
                    .await?;
                let left: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM run_chunks WHERE run_id = $1 AND state <> 'done'",
                )
                .bind(run_id)
                .fetch_one(&mut **tx)
                .await?;
                if left == 0 {
                    sqlx::query(
                        "UPDATE runs SET status = 'complete', finished_at = $1 \
                         WHERE id = $2 AND status = 'running'",
                    )
                    .bind(now)
                    .bind(run_id)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }
        }

        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn queue_run(&self, chunks: &[Vec<String>], now: Time) -> Result<i64, StoreError> {
                let mut rows: Vec<(i64, String, i64)> = Vec::new();
                for chunk in chunks {
                    let names: Vec<String> =
                        chunk.iter().map(|d| norm_domain(d)).collect::<Result<_, _>>()?;
                    if !names.is_empty() {
                        let n = i64::try_from(names.len()).unwrap_or(i64::MAX);
                        let number = i64::try_from(rows.len()).unwrap_or(i64::MAX);
                        rows.push((number, names.join("\n"), n));
                    }
                }
                if rows.is_empty() {
                    return Err(StoreError::Invalid("a distributed run needs domains".into()));
                }
                let mut tx = self.write_tx().await?;
                let run_id: i64 = sqlx::query_scalar(
                    "INSERT INTO runs (started_at, source, status) \
                     VALUES ($1, 'distributed', 'running') RETURNING id",
                )
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                for part in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO run_chunks (run_id, chunk, domains, size) ",
                    );
                    q.push_values(part, |mut b, (number, domains, size)| {
                        b.push_bind(run_id)
                            .push_bind(*number)
                            .push_bind(domains.as_str())
                            .push_bind(*size);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(run_id)
            }

            async fn claim_chunk(
                &self,
                worker: &str,
                now: Time,
                lease_secs: i64,
            ) -> Result<Option<ChunkLease>, StoreError> {
                let worker = check_worker(worker)?;
                let lease_until = now.saturating_add(check_lease_secs(lease_secs)?);
                let token = lease_token(worker);
                let mut tx = self.write_tx().await?;
                let row = sqlx::query_as::<_, ClaimedRow>(&format!(
                    "UPDATE run_chunks SET state = 'leased', worker = $1, token = $2, \
                     lease_until = $3, attempts = attempts + 1 \
                     WHERE (run_id, chunk) = (SELECT c.run_id, c.chunk FROM run_chunks c \
                     JOIN runs r ON r.id = c.run_id WHERE r.status = 'running' \
                     AND (c.state = 'pending' OR (c.state = 'leased' AND c.lease_until < $4)) \
                     ORDER BY c.run_id, c.chunk LIMIT 1{}) \
                     RETURNING run_id, chunk, domains, attempts",
                    Self::CLAIM_LOCK
                ))
                .bind(worker)
                .bind(&token)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row.map(|r| ChunkLease {
                    run_id: r.run_id,
                    chunk: r.chunk,
                    domains: r.domains.lines().map(str::to_string).collect(),
                    token,
                    lease_until,
                    attempts: r.attempts,
                }))
            }

            async fn renew_lease(
                &self,
                lease: &mut ChunkLease,
                now: Time,
                lease_secs: i64,
            ) -> Result<(), StoreError> {
                let until = now.saturating_add(check_lease_secs(lease_secs)?);
                let done = sqlx::query(
                    "UPDATE run_chunks SET lease_until = $1 \
                     WHERE run_id = $2 AND chunk = $3 AND token = $4 AND state = 'leased'",
                )
                .bind(until)
                .bind(lease.run_id)
                .bind(lease.chunk)
                .bind(&lease.token)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::LeaseLost(format!(
                        "chunk {} of run {} is no longer held by this worker",
                        lease.chunk, lease.run_id
                    )));
                }
                lease.lease_until = until;
                Ok(())
            }

            async fn release_lease(&self, lease: &ChunkLease) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE run_chunks SET state = 'pending', worker = NULL, token = NULL, \
                     lease_until = NULL \
                     WHERE run_id = $1 AND chunk = $2 AND token = $3 AND state = 'leased'",
                )
                .bind(lease.run_id)
                .bind(lease.chunk)
                .bind(&lease.token)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn run_progress(&self, run_id: i64, now: Time) -> Result<RunProgress, StoreError> {
                let run = self.run(run_id).await?;
                let c = sqlx::query_as::<_, ChunkCounts>(
                    "SELECT COUNT(*) AS chunks, \
                     CAST(COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0) AS BIGINT) AS done, \
                     CAST(COALESCE(SUM(CASE WHEN state = 'leased' AND lease_until >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS leased, \
                     CAST(COALESCE(SUM(CASE WHEN state = 'leased' AND lease_until < $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS expired, \
                     CAST(COALESCE(SUM(size), 0) AS BIGINT) AS domains, \
                     CAST(COALESCE(SUM(CASE WHEN state = 'done' THEN size ELSE 0 END), 0) AS BIGINT) AS domains_done, \
                     CAST(COALESCE(SUM(CASE WHEN attempts > 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS retried \
                     FROM run_chunks WHERE run_id = $1",
                )
                .bind(run_id)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                let workers: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT worker FROM run_chunks WHERE run_id = $1 \
                     AND state = 'leased' AND lease_until >= $2 AND worker IS NOT NULL \
                     ORDER BY worker",
                )
                .bind(run_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(RunProgress {
                    run,
                    chunks: c.chunks,
                    chunks_done: c.done,
                    chunks_leased: c.leased,
                    chunks_expired: c.expired,
                    domains: c.domains,
                    domains_done: c.domains_done,
                    retried: c.retried,
                    workers,
                })
            }

            async fn open_chunks(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM run_chunks c JOIN runs r ON r.id = c.run_id \
                     WHERE r.status = 'running' AND c.state <> 'done'",
                )
                .fetch_one(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use queue_methods;
