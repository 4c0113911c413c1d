//! Audit runs and the results recorded in them.
//!
//! A result's report is stored once while it is unchanged: `report_bodies` holds each distinct
//! report's JSON as a Zstandard frame, keyed by its SHA-256, and each result points at its body.
//! A domain audited weekly without change costs a results row and its findings per run, not a
//! copy of its records, evidence and transcripts.

use crate::{RawFile, StoreError, StoredResult, Time};

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

/// A stored result with its report: the body it points at, or the report kept in the row
/// (results recorded before schema version 6).
pub(crate) const RESULT_SELECT: &str = "SELECT r.id, r.run_id, r.domain, r.audited_at, r.score, \
     r.report, r.detail, r.body_id, b.body FROM results r \
     LEFT JOIN report_bodies b ON b.id = r.body_id";

/// A row of [`RESULT_SELECT`].
#[derive(sqlx::FromRow)]
pub(crate) struct ResultRow {
    pub(crate) id: i64,
    pub(crate) run_id: i64,
    pub(crate) domain: String,
    pub(crate) audited_at: Time,
    pub(crate) score: Option<i64>,
    #[sqlx(json)]
    pub(crate) report: serde_json::Value,
    pub(crate) detail: String,
    pub(crate) body_id: Option<i64>,
    pub(crate) body: Option<Vec<u8>>,
}

/// Rows to `(results.id, result)`, each distinct body decompressed and parsed once (a domain's
/// history of unchanged audits shares one body); a body that does not decode is `Corrupt`.
pub(crate) fn into_results(rows: Vec<ResultRow>) -> Result<Vec<(i64, StoredResult)>, StoreError> {
    let mut decoded: std::collections::HashMap<i64, serde_json::Value> =
        std::collections::HashMap::new();
    rows.into_iter()
        .map(|row| {
            let report = match (row.body_id, row.body) {
                (Some(id), Some(body)) => match decoded.get(&id) {
                    Some(report) => report.clone(),
                    None => {
                        let report = decode_body(&row.domain, &body)?;
                        decoded.insert(id, report.clone());
                        report
                    }
                },
                _ => row.report,
            };
            let result = StoredResult {
                run_id: row.run_id,
                domain: row.domain,
                audited_at: row.audited_at,
                score: row.score,
                report,
                summary: row.detail == "summary",
            };
            Ok((row.id, result))
        })
        .collect()
}

/// The results of rows, without their ids.
pub(crate) fn results_of(rows: Vec<ResultRow>) -> Result<Vec<StoredResult>, StoreError> {
    Ok(into_results(rows)?.into_iter().map(|(_, r)| r).collect())
}

/// A stored body: the zstd frame of a report's JSON.
fn decode_body(domain: &str, body: &[u8]) -> Result<serde_json::Value, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("the stored report of {domain}: {e}"))
    };
    let json = RawFile::decode("zstd", body).map_err(|e| corrupt(&e))?;
    serde_json::from_slice(&json).map_err(|e| corrupt(&e))
}

/// The JSON of a report and its SHA-256, the key of its body in `report_bodies`.
pub(crate) fn report_body(report: &serde_json::Value) -> (Vec<u8>, Vec<u8>) {
    use sha2::Digest;
    // A `Value` writes its object keys in one order (sorted), so equal reports give equal bytes.
    let json = serde_json::to_vec(report).unwrap_or_default();
    let digest = sha2::Sha256::digest(&json).to_vec();
    (json, digest)
}

/// Zstandard level of report bodies: reports are small and written once per change.
pub(crate) const BODY_LEVEL: i32 = 3;

/// What `mailaudit prune` keeps of an old result's report: the domain, its score, the state the
/// history compares (`provider`, `parked`, `error`, the SPF, DMARC, DKIM, MTA-STS, TLS-RPT and
/// relay summaries without the SPF include tree and probe transcripts) and the findings without
/// their evidence and fixes. Marked `"summary": true`.
pub(crate) fn summarize(report: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let mut out = serde_json::Map::new();
    let Some(full) = report.as_object() else {
        return Value::Object(out);
    };
    for (key, value) in full {
        let mut value = value.clone();
        match key.as_str() {
            "findings" => {
                for f in value.as_array_mut().into_iter().flatten() {
                    if let Some(f) = f.as_object_mut() {
                        for bulky in ["evidence", "fix", "fix_records"] {
                            f.remove(bulky);
                        }
                    }
                }
            }
            "spf" => {
                if let Some(spf) = value.as_object_mut() {
                    spf.remove("tree");
                }
            }
            "relay" => {
                if let Some(relay) = value.as_object_mut() {
                    relay.remove("probes");
                }
            }
            _ => {}
        }
        out.insert(key.clone(), value);
    }
    out.insert("summary".into(), Value::Bool(true));
    Value::Object(out)
}

/// Results pruned per transaction.
pub(crate) const PRUNE_BATCH: i64 = 500;

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
                let mut tx = self.write_tx().await?;
                Self::check_running(&mut *tx, run_id).await?;
                Self::insert_results(&mut tx, run_id, &[(domain.as_str(), now, score, report)])
                    .await?;
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
                let rows = sqlx::query_as::<_, ResultRow>(&format!(
                    "{RESULT_SELECT} WHERE r.domain = $1 \
                     ORDER BY r.audited_at DESC, r.id DESC LIMIT $2"
                ))
                .bind(&domain)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                results_of(rows)
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
                let rows = sqlx::query_as::<_, ResultRow>(&format!(
                    "{RESULT_SELECT} WHERE r.run_id = $1 ORDER BY r.domain"
                ))
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
                results_of(rows)
            }

            async fn abort_stale_runs(
                &self,
                started_before: Time,
                now: Time,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE runs SET status = 'aborted', finished_at = $1 \
                     WHERE status = 'running' AND started_at < $2 \
                     AND NOT EXISTS (SELECT 1 FROM run_chunks c WHERE c.run_id = runs.id \
                     AND c.state = 'leased' AND c.lease_until >= $2)",
                )
                .bind(now)
                .bind(started_before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn domains_with_finding(&self, check_id: &str) -> Result<Vec<String>, StoreError> {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT l.domain FROM domain_latest l \
                     JOIN result_findings f ON f.result_id = l.result_id \
                     WHERE f.check_id = $1 ORDER BY l.domain",
                )
                .bind(check_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(names)
            }

            async fn compact(&self) -> Result<(), StoreError> {
                self.vacuum().await?;
                Ok(())
            }

            async fn prune_results(&self, before: Time) -> Result<PruneOutcome, StoreError> {
                let mut out = PruneOutcome::default();
                // Each domain's latest result stays whole whatever its age: the guide, the
                // checklist and the portal read it.
                loop {
                    let mut tx = self.write_tx().await?;
                    let rows = sqlx::query_as::<_, ResultRow>(&format!(
                        "{RESULT_SELECT} WHERE r.audited_at < $1 AND r.detail = 'full' \
                         AND EXISTS (SELECT 1 FROM results n WHERE n.domain = r.domain \
                         AND (n.audited_at > r.audited_at \
                         OR (n.audited_at = r.audited_at AND n.id > r.id))) \
                         ORDER BY r.id LIMIT $2"
                    ))
                    .bind(before)
                    .bind(PRUNE_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                    if rows.is_empty() {
                        break;
                    }
                    let rows = into_results(rows)?;
                    // Summaries are bodies too: an unchanged domain's summaries are equal, and
                    // stored once.
                    let summaries: Vec<serde_json::Value> =
                        rows.iter().map(|(_, r)| summarize(&r.report)).collect();
                    let refs: Vec<&serde_json::Value> = summaries.iter().collect();
                    let body_ids = Self::body_ids(&mut tx, &refs).await?;
                    for ((id, _), body_id) in rows.iter().zip(body_ids) {
                        sqlx::query(
                            "UPDATE results SET report = $1, body_id = $2, \
                             detail = 'summary' WHERE id = $3",
                        )
                        .bind(Json(serde_json::Value::Null))
                        .bind(body_id)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    out.results += rows.len() as u64;
                    tx.commit().await?;
                }
                let mut tx = self.write_tx().await?;
                let gone = sqlx::query(
                    "DELETE FROM report_bodies WHERE NOT EXISTS \
                     (SELECT 1 FROM results r WHERE r.body_id = report_bodies.id)",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                out.bodies = gone.rows_affected();
                Ok(out)
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
