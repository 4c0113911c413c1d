//! Recording many audited domains at once: what recording needs to know of them, read with one
//! query per kind, and what their audits write, in one transaction with statements per kind for
//! the whole batch. A statement is a round trip to the database (SQLite's worker thread, or
//! PostgreSQL's socket); per-domain statements made recording cost more than the audit itself.

use crate::StoreError;

pub(crate) use std::collections::HashMap;

/// Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters
/// at 9 parameters a row.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// The names of a batch, normalised, each once, in their first order.
pub(crate) fn unique_names(domains: &[String]) -> Result<Vec<String>, StoreError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for d in domains {
        let d = super::norm_domain(d)?;
        if seen.insert(d.clone()) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Groups rows by their domain (the key `key` gives), keeping their order.
pub(crate) fn by_domain<T>(rows: Vec<T>, key: impl Fn(&T) -> &str) -> HashMap<String, Vec<T>> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        out.entry(key(&row).to_string()).or_default().push(row);
    }
    out
}

/// The methods of batch recording (see [`impl_store!`](super::impl_store)).
macro_rules! batch_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            /// The ids of the bodies of `reports` in `report_bodies`, in their order: those
            /// stored before found by digest (one query per [`ROWS_PER_STATEMENT`] digests),
            /// the others compressed and added (one statement per as many).
            async fn body_ids(
                tx: &mut sqlx::Transaction<'static, $db>,
                reports: &[&serde_json::Value],
            ) -> Result<Vec<i64>, StoreError> {
                let bodies: Vec<(Vec<u8>, Vec<u8>)> =
                    reports.iter().map(|r| report_body(r)).collect();
                let mut digests: Vec<&[u8]> = bodies.iter().map(|(_, d)| d.as_slice()).collect();
                digests.sort_unstable();
                digests.dedup();
                let mut ids: HashMap<Vec<u8>, i64> = HashMap::new();
                for chunk in digests.chunks(ROWS_PER_STATEMENT) {
                    Self::find_bodies(tx, chunk, &mut ids).await?;
                }
                let mut missing: Vec<(&[u8], Vec<u8>)> = Vec::new();
                for digest in digests.iter().filter(|d| !ids.contains_key(**d)) {
                    let json = bodies
                        .iter()
                        .find(|(_, d)| d.as_slice() == *digest)
                        .map(|(j, _)| j.as_slice())
                        .unwrap_or_default();
                    let body = zstd::bulk::compress(json, BODY_LEVEL).map_err(|e| {
                        StoreError::Invalid(format!("cannot compress the report: {e}"))
                    })?;
                    missing.push((digest, body));
                }
                // Sorted by digest (as `digests` is), so that concurrent writers (PostgreSQL)
                // take the unique index's entries in one order and never deadlock.
                for chunk in missing.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO report_bodies (digest, body) ",
                    );
                    q.push_values(chunk, |mut b, (digest, body)| {
                        b.push_bind(*digest).push_bind(body.as_slice());
                    });
                    // A concurrent writer may add the same body first (PostgreSQL): then its row
                    // is not returned here, and the look-up below finds it.
                    q.push(" ON CONFLICT (digest) DO NOTHING RETURNING id, digest");
                    let added: Vec<(i64, Vec<u8>)> =
                        q.build_query_as().fetch_all(&mut **tx).await?;
                    ids.extend(added.into_iter().map(|(id, digest)| (digest, id)));
                    let raced: Vec<&[u8]> = chunk
                        .iter()
                        .map(|(d, _)| *d)
                        .filter(|d| !ids.contains_key(*d))
                        .collect();
                    if !raced.is_empty() {
                        Self::find_bodies(tx, &raced, &mut ids).await?;
                    }
                }
                bodies
                    .iter()
                    .map(|(_, digest)| {
                        ids.get(digest).copied().ok_or_else(|| {
                            StoreError::Corrupt("a report body was neither found nor added".into())
                        })
                    })
                    .collect()
            }

            /// Adds the ids of the stored bodies among `digests` to `ids`.
            async fn find_bodies(
                tx: &mut sqlx::Transaction<'static, $db>,
                digests: &[&[u8]],
                ids: &mut HashMap<Vec<u8>, i64>,
            ) -> Result<(), StoreError> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, digest FROM report_bodies WHERE digest IN ",
                );
                q.push_tuples(digests, |mut b, d| {
                    b.push_bind(*d);
                });
                let found: Vec<(i64, Vec<u8>)> = q.build_query_as().fetch_all(&mut **tx).await?;
                ids.extend(found.into_iter().map(|(id, digest)| (digest, id)));
                Ok(())
            }

            /// Writes results of a running run (checked by the caller) and their findings
            /// index, replacing a result the domain already has in the run: `(domain,
            /// audited_at, score, report)` with normalised, distinct domains.
            async fn insert_results(
                tx: &mut sqlx::Transaction<'static, $db>,
                run_id: i64,
                rows: &[(&str, Time, Option<i64>, &serde_json::Value)],
            ) -> Result<(), StoreError> {
                let reports: Vec<&serde_json::Value> = rows.iter().map(|r| r.3).collect();
                let body_ids = Self::body_ids(tx, &reports).await?;
                let facts: Vec<Facts> = reports.iter().map(|r| Facts::of(r)).collect();
                let mut result_ids: HashMap<String, i64> = HashMap::new();
                for ((chunk, bodies), facts) in rows
                    .chunks(ROWS_PER_STATEMENT)
                    .zip(body_ids.chunks(ROWS_PER_STATEMENT))
                    .zip(facts.chunks(ROWS_PER_STATEMENT))
                {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO results (run_id, domain, audited_at, score, report, body_id, \
                         detail, dmarc_policy, relay) ",
                    );
                    q.push_values(
                        chunk.iter().zip(bodies).zip(facts),
                        |mut b, ((row, body_id), f)| {
                            b.push_bind(run_id)
                                .push_bind(row.0)
                                .push_bind(row.1)
                                .push_bind(row.2)
                                .push_bind(Json(serde_json::Value::Null))
                                .push_bind(*body_id)
                                .push_bind("full")
                                .push_bind(f.dmarc_policy.as_deref())
                                .push_bind(f.relay.as_str());
                        },
                    );
                    q.push(
                        " ON CONFLICT (run_id, domain) DO UPDATE SET \
                         audited_at = excluded.audited_at, score = excluded.score, \
                         report = excluded.report, body_id = excluded.body_id, \
                         detail = excluded.detail, dmarc_policy = excluded.dmarc_policy, \
                         relay = excluded.relay RETURNING id, domain",
                    );
                    let ids: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
                    result_ids.extend(ids.into_iter().map(|(id, d)| (d, id)));
                }
                let mut findings: Vec<(i64, String, String)> = Vec::new();
                let mut latest: Vec<LatestRow<'_>> = Vec::with_capacity(rows.len());
                for ((domain, at, score, report), f) in rows.iter().zip(facts) {
                    let id = result_ids.get(*domain).copied().ok_or_else(|| {
                        StoreError::Corrupt(format!("the result of {domain} was not written"))
                    })?;
                    latest.push((domain, id, *at, *score, f));
                    findings.extend(
                        finding_pairs(report)
                            .into_iter()
                            .map(|(check, severity)| (id, check, severity)),
                    );
                }
                // A replaced result's findings go (the rows of new results have none).
                let ids: Vec<i64> = result_ids.values().copied().collect();
                for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM result_findings WHERE result_id IN ",
                    );
                    q.push_tuples(chunk, |mut b, id| {
                        b.push_bind(*id);
                    });
                    q.build().execute(&mut **tx).await?;
                }
                for chunk in findings.chunks(ROWS_PER_STATEMENT * 3) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO result_findings (result_id, check_id, severity) ",
                    );
                    q.push_values(chunk, |mut b, (id, check, severity)| {
                        b.push_bind(*id)
                            .push_bind(check.as_str())
                            .push_bind(severity.as_str());
                    });
                    q.build().execute(&mut **tx).await?;
                }
                Self::upsert_latest(tx, &latest).await?;
                Ok(())
            }

            /// Errors unless run `run_id` is running.
            async fn check_running<'e, E>(executor: E, run_id: i64) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let status = Self::run_status(executor, run_id).await?;
                if status != RunStatus::Running {
                    return Err(StoreError::Conflict(format!(
                        "run {run_id} is {status}, not running"
                    )));
                }
                Ok(())
            }
        }

        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn domain_states(
                &self,
                domains: &[String],
                history: i64,
            ) -> Result<Vec<DomainState>, StoreError> {
                let names = unique_names(domains)?;
                let history = check_limit(history)?;
                let mut entries: HashMap<String, DomainEntry> = HashMap::new();
                let mut rollouts: HashMap<String, DmarcRollout> = HashMap::new();
                let mut checklists: HashMap<String, Vec<ChecklistItem>> = HashMap::new();
                let mut histories: HashMap<String, Vec<StoredResult>> = HashMap::new();
                for chunk in names.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "{DOMAIN_SELECT} WHERE d.name IN "
                    ));
                    q.push_tuples(chunk, |mut b, d| {
                        b.push_bind(d.as_str());
                    });
                    let rows: Vec<DomainEntry> = q.build_query_as().fetch_all(&self.pool).await?;
                    entries.extend(rows.into_iter().map(|e| (e.name.clone(), e)));

                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT domain, phase, started_at FROM dmarc_rollouts WHERE domain IN ",
                    );
                    q.push_tuples(chunk, |mut b, d| {
                        b.push_bind(d.as_str());
                    });
                    let rows: Vec<DmarcRollout> = q.build_query_as().fetch_all(&self.pool).await?;
                    rollouts.extend(rows.into_iter().map(|r| (r.domain.clone(), r)));

                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {CHECKLIST_COLUMNS} FROM checklist WHERE domain IN "
                    ));
                    q.push_tuples(chunk, |mut b, d| {
                        b.push_bind(d.as_str());
                    });
                    q.push(" ORDER BY domain, priority, position, key");
                    let rows: Vec<ChecklistItem> =
                        q.build_query_as().fetch_all(&self.pool).await?;
                    checklists.extend(by_domain(rows, |i| &i.domain));

                    if history > 0 {
                        // Each domain's newest `history` results, by the index on (domain,
                        // audited_at, id).
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "SELECT r.id, r.run_id, r.domain, r.audited_at, r.score, r.report, \
                             r.detail, r.body_id, b.body FROM (SELECT x.*, ROW_NUMBER() OVER \
                             (PARTITION BY x.domain ORDER BY x.audited_at DESC, x.id DESC) AS rn \
                             FROM results x WHERE x.domain IN ",
                        );
                        q.push_tuples(chunk, |mut b, d| {
                            b.push_bind(d.as_str());
                        });
                        q.push(") r LEFT JOIN report_bodies b ON b.id = r.body_id WHERE r.rn <= ");
                        q.push_bind(history);
                        q.push(" ORDER BY r.domain, r.audited_at DESC, r.id DESC");
                        let rows: Vec<ResultRow> =
                            q.build_query_as().fetch_all(&self.pool).await?;
                        histories.extend(by_domain(results_of(rows)?, |r| &r.domain));
                    }
                }
                Ok(names
                    .into_iter()
                    .map(|domain| DomainState {
                        entry: entries.remove(&domain),
                        rollout: rollouts.remove(&domain),
                        checklist: checklists.remove(&domain).unwrap_or_default(),
                        history: histories.remove(&domain).unwrap_or_default(),
                        domain,
                    })
                    .collect())
            }

            async fn record_batch(
                &self,
                run_id: i64,
                writes: &[ResultWrite],
                lease: Option<&ChunkLease>,
                now: Time,
            ) -> Result<(), StoreError> {
                // Everything is checked before the transaction begins.
                let mut names: Vec<String> = Vec::with_capacity(writes.len());
                for w in writes {
                    let name = norm_domain(&w.domain)?;
                    if names.contains(&name) {
                        return Err(StoreError::Invalid(format!(
                            "{name} appears twice in one batch"
                        )));
                    }
                    if let Some(r) = &w.rollout {
                        check_phase(&r.phase)?;
                    }
                    if let Some(items) = &w.checklist {
                        check_items(items)?;
                    }
                    if w.states.iter().any(|s| s.by.trim().is_empty()) {
                        return Err(StoreError::Invalid(
                            "who changed the checklist item is required".into(),
                        ));
                    }
                    names.push(name);
                }
                let mut tx = self.write_tx().await?;
                if let Some(lease) = lease {
                    // First, so that a lost lease writes nothing; PostgreSQL holds the chunk's
                    // row from here to the commit, so no one can claim it in between.
                    Self::complete_chunk(&mut tx, lease, now).await?;
                }
                Self::check_running(&mut *tx, run_id).await?;
                let rows: Vec<(&str, Time, Option<i64>, &serde_json::Value)> = writes
                    .iter()
                    .zip(&names)
                    .map(|(w, name)| (name.as_str(), w.audited_at, w.score, &w.report))
                    .collect();
                Self::insert_results(&mut tx, run_id, &rows).await?;
                for (w, name) in writes.iter().zip(&names) {
                    if let Some(r) = &w.rollout {
                        Self::put_rollout(&mut *tx, name, &r.phase, r.started_at).await?;
                    }
                }
                let lists: Vec<(String, &[ChecklistItem])> = writes
                    .iter()
                    .zip(&names)
                    .filter_map(|(w, name)| w.checklist.as_deref().map(|l| (name.clone(), l)))
                    .collect();
                Self::sync_checklists(&mut tx, &lists).await?;
                for (w, name) in writes.iter().zip(&names) {
                    for s in &w.states {
                        Self::change_item_state(&mut *tx, name, &s.key, s.state, s.by.trim(), now)
                            .await?;
                    }
                    if let Some(payload) = &w.alert {
                        Self::put_alert(&mut *tx, name, payload, now).await?;
                    }
                }
                let touched: Vec<&str> = writes
                    .iter()
                    .zip(&names)
                    .filter(|(w, _)| w.checklist.is_some() || !w.states.is_empty())
                    .map(|(_, name)| name.as_str())
                    .collect();
                Self::recount_checklists(&mut tx, &touched).await?;
                if let Some(lease) = lease {
                    Self::complete_run_if_done(&mut tx, lease.run_id, now).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use batch_methods;
