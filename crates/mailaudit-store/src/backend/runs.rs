//! Audit runs and the results recorded in them.

/// `(check id, severity)` of each finding of a stored report (`findings[].id`,
/// `findings[].severity`), first occurrence of each id.
pub(crate) fn finding_pairs(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let Some(findings) = report.get("findings").and_then(|f| f.as_array()) else {
        return out;
    };
    for f in findings {
        let Some(id) = f.get("id").and_then(|v| v.as_str()) else {
            continue;
        };
        let severity = f.get("severity").and_then(|v| v.as_str()).unwrap_or("");
        if !out.iter().any(|(i, _)| i == id) {
            out.push((id.to_string(), severity.to_string()));
        }
    }
    out
}

pub(crate) const RUN_SELECT: &str = "SELECT r.id, r.started_at, r.finished_at, r.source, r.status, \
     (SELECT COUNT(*) FROM results x WHERE x.run_id = r.id) AS domains FROM runs r";

pub(crate) const RESULT_COLUMNS: &str = "run_id, domain, audited_at, score, report";

/// The methods of runs and results (see [`impl_store!`](super::impl_store)).
macro_rules! runs_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            async fn run_status<'e, E>(executor: E, run_id: i64) -> Result<RunStatus, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_scalar::<_, RunStatus>("SELECT status FROM runs WHERE id = $1")
                    .bind(run_id)
                    .fetch_optional(executor)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("run {run_id}")))
            }
        }

        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn begin_run(&self, source: &str, now: Time) -> Result<i64, StoreError> {
                if !RUN_SOURCES.contains(&source) {
                    return Err(StoreError::Invalid(format!(
                        "run source {source:?} is not one of {RUN_SOURCES:?}"
                    )));
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO runs (started_at, source, status) \
                     VALUES ($1, $2, 'running') RETURNING id",
                )
                .bind(now)
                .bind(source)
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn record_result(
                &self,
                run_id: i64,
                domain: &str,
                now: Time,
                score: Option<i64>,
                report: &serde_json::Value,
            ) -> Result<(), StoreError> {
                let domain = norm_domain(domain)?;
                let findings = finding_pairs(report);
                let mut tx = self.write_tx().await?;
                let status = Self::run_status(&mut *tx, run_id).await?;
                if status != RunStatus::Running {
                    return Err(StoreError::Conflict(format!(
                        "run {run_id} is {status}, not running"
                    )));
                }
                let result_id: i64 = sqlx::query_scalar(
                    "INSERT INTO results (run_id, domain, audited_at, score, report) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (run_id, domain) DO UPDATE SET audited_at = excluded.audited_at, \
                     score = excluded.score, report = excluded.report RETURNING id",
                )
                .bind(run_id)
                .bind(&domain)
                .bind(now)
                .bind(score)
                .bind(Json(report))
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM result_findings WHERE result_id = $1")
                    .bind(result_id)
                    .execute(&mut *tx)
                    .await?;
                for (check_id, severity) in &findings {
                    sqlx::query(
                        "INSERT INTO result_findings (result_id, check_id, severity) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(result_id)
                    .bind(check_id)
                    .bind(severity)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn finish_run(
                &self,
                run_id: i64,
                status: RunStatus,
                now: Time,
            ) -> Result<(), StoreError> {
                if status == RunStatus::Running {
                    return Err(StoreError::Invalid(
                        "a run is finished as complete or aborted, not running".into(),
                    ));
                }
                let done = sqlx::query(
                    "UPDATE runs SET status = $1, finished_at = $2 \
                     WHERE id = $3 AND status = 'running'",
                )
                .bind(status.as_str())
                .bind(now)
                .bind(run_id)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    let current = Self::run_status(&self.pool, run_id).await?;
                    return Err(StoreError::Conflict(format!(
                        "run {run_id} is already {current}"
                    )));
                }
                Ok(())
            }

            async fn runs(&self, limit: i64) -> Result<Vec<Run>, StoreError> {
                let limit = check_limit(limit)?;
                let rows = sqlx::query_as::<_, Run>(&format!("{RUN_SELECT} ORDER BY r.id DESC LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows)
            }

            async fn latest_result(&self, domain: &str) -> Result<Option<StoredResult>, StoreError> {
                Ok(self.history(domain, 1).await?.into_iter().next())
            }

            async fn history(
                &self,
                domain: &str,
                limit: i64,
            ) -> Result<Vec<StoredResult>, StoreError> {
                let domain = norm_domain(domain)?;
                let limit = check_limit(limit)?;
                let rows = sqlx::query_as::<_, StoredResult>(&format!(
                    "SELECT {RESULT_COLUMNS} FROM results WHERE domain = $1 \
                     ORDER BY audited_at DESC, id DESC LIMIT $2"
                ))
                .bind(&domain)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn run(&self, run_id: i64) -> Result<Run, StoreError> {
                let row = sqlx::query_as::<_, Run>(&format!("{RUN_SELECT} WHERE r.id = $1"))
                    .bind(run_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("run {run_id}")))?;
                Ok(row)
            }

            async fn run_results(&self, run_id: i64) -> Result<Vec<StoredResult>, StoreError> {
                Self::run_status(&self.pool, run_id).await?;
                let rows = sqlx::query_as::<_, StoredResult>(&format!(
                    "SELECT {RESULT_COLUMNS} FROM results WHERE run_id = $1 ORDER BY domain"
                ))
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn abort_stale_runs(
                &self,
                started_before: Time,
                now: Time,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE runs SET status = 'aborted', finished_at = $1 \
                     WHERE status = 'running' AND started_at < $2",
                )
                .bind(now)
                .bind(started_before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn domains_with_finding(&self, check_id: &str) -> Result<Vec<String>, StoreError> {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT r.domain FROM results r \
                     JOIN result_findings f ON f.result_id = r.id \
                     WHERE f.check_id = $1 AND NOT EXISTS (SELECT 1 FROM results n \
                     WHERE n.domain = r.domain AND (n.audited_at > r.audited_at \
                     OR (n.audited_at = r.audited_at AND n.id > r.id))) \
                     ORDER BY r.domain",
                )
                .bind(check_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(names)
            }
        }
    };
}

pub(crate) use runs_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_of_report() {
        let r = serde_json::json!({"findings": [
            {"id": "SPF-SOFTFAIL", "severity": "high"},
            {"id": "DNS-LOOKUP-FAILED", "severity": "info"},
            {"id": "DNS-LOOKUP-FAILED", "severity": "info"},
            {"severity": "low"}
        ]});
        assert_eq!(
            finding_pairs(&r),
            vec![
                ("SPF-SOFTFAIL".to_string(), "high".to_string()),
                ("DNS-LOOKUP-FAILED".to_string(), "info".to_string())
            ]
        );
        assert!(finding_pairs(&serde_json::json!(null)).is_empty());
    }
}
