//! Ingested reports and the aggregate rows of DMARC aggregate reports.

use super::norm_domain;
use crate::StoreError;

/// Normalises a report's policy domain like [`norm_domain`], but an empty one is kept (a failure
/// report may name none), and refuses one that is no domain name: anyone may mail a report
/// address, so the policy domain is attacker-controlled (`<script>alert(1)</script>`). A domain
/// name is dot-separated labels of 1 to 63 octets, each of letters (IDN U-labels included),
/// digits, `-` and `_`.
pub(crate) fn norm_policy_domain(name: &str) -> Result<String, StoreError> {
    let n = name.trim();
    if n.is_empty() || n == "." {
        return Ok(String::new());
    }
    let n = norm_domain(n)?;
    if let Some(c) = n
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(StoreError::Invalid(format!(
            "domain name with a character no domain name has ({c:?}): {n:?}"
        )));
    }
    if n.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(StoreError::Invalid(format!(
            "domain name with an empty label or one over 63 octets: {n:?}"
        )));
    }
    Ok(n)
}

/// Checks a report to ingest; returns its normalised policy domain and lower-case content hash.
pub(crate) fn check_report(r: &crate::NewReport) -> Result<(String, String), StoreError> {
    let hash = r.content_hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid(format!(
            "content hash is not a hex SHA-256: {:?}",
            r.content_hash
        )));
    }
    if !r.problems.is_array() {
        return Err(StoreError::Invalid(
            "report problems must be a JSON array".into(),
        ));
    }
    Ok((norm_policy_domain(&r.policy_domain)?, hash))
}

pub(crate) const REPORT_COLUMNS: &str = "id, kind, reporter, report_id, policy_domain, begin_time, \
     end_time, content_hash, source, ingested_at, problems";

pub(crate) const AGGREGATE_ROW_COLUMNS: &str = "source_ip, message_count, disposition, \
     dkim_aligned, spf_aligned, header_from, envelope_from, dkim_domains, dkim_results, \
     spf_domains, spf_results";

/// Most aggregate rows per multi-row INSERT of [`Store::ingest_reports`] (15 parameters each:
/// 7,680, within SQLite's 32,766 and PostgreSQL's 65,535).
pub(crate) const ROWS_PER_INSERT: usize = 512;

/// The sizes of the multi-row INSERTs `n` rows are cut into: as many of [`ROWS_PER_INSERT`] as
/// fit, then the rest by powers of two (1,201 rows: 512, 512, 128, 32, 16, 1). So there are at
/// most ten distinct statements, each prepared once per connection and then taken from the
/// statement cache; a statement per row count meant preparing one anew for nearly every report.
pub(crate) fn row_chunks(n: usize) -> impl Iterator<Item = usize> {
    let full = std::iter::repeat_n(ROWS_PER_INSERT, n / ROWS_PER_INSERT);
    let rest = n % ROWS_PER_INSERT;
    let parts = (0..ROWS_PER_INSERT.trailing_zeros())
        .rev()
        .map(|bit| 1usize << bit)
        .filter(move |size| rest & size != 0);
    full.chain(parts)
}

/// An aggregate row with the beginning of its report's period ([`crate::Store::aggregate_rows`]).
#[derive(sqlx::FromRow)]
pub(crate) struct AggregateRowAt {
    pub(crate) begin_time: crate::Time,
    #[sqlx(flatten)]
    pub(crate) row: crate::AggregateRow,
}

/// A stored report with its parsed form ([`crate::Store::parsed_reports`]).
#[derive(sqlx::FromRow)]
pub(crate) struct ParsedReport {
    #[sqlx(flatten)]
    pub(crate) report: crate::StoredReport,
    #[sqlx(json)]
    pub(crate) parsed: serde_json::Value,
}

/// The reports' methods (see [`impl_store!`](super::impl_store)).
macro_rules! reports_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn ingest_reports(
                &self,
                reports: Vec<crate::NewReport>,
                now: Time,
            ) -> Result<Vec<Result<crate::Ingested, StoreError>>, StoreError> {
                let mut tx = self.write_tx().await?;
                let mut outcomes = Vec::with_capacity(reports.len());
                for r in reports {
                    let (domain, hash) = match check_report(&r) {
                        Ok(checked) => checked,
                        Err(e) => {
                            outcomes.push(Err(e));
                            continue;
                        }
                    };
                    let encoding = r.raw.encoding().as_str();
                    // ON CONFLICT DO NOTHING covers the key and the hash alike (also against a
                    // report earlier in this batch); under PostgreSQL it waits for a concurrent
                    // insert of the same report and then does nothing.
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO reports (kind, reporter, report_id, policy_domain, \
                         begin_time, end_time, content_hash, source, raw, parsed, problems, \
                         ingested_at, raw_encoding) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                         ON CONFLICT DO NOTHING RETURNING id",
                    )
                    .bind(r.kind)
                    .bind(&r.reporter)
                    .bind(&r.report_id)
                    .bind(&domain)
                    .bind(r.begin)
                    .bind(r.end)
                    .bind(&hash)
                    .bind(r.source)
                    .bind(r.raw.into_stored())
                    .bind(Json(r.parsed))
                    .bind(Json(r.problems))
                    .bind(now)
                    .bind(encoding)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(id) = id else {
                        // Nothing was written. A new statement: under READ COMMITTED it sees
                        // the row that conflicted.
                        let existing: i64 = sqlx::query_scalar(
                            "SELECT id FROM reports WHERE (kind = $1 AND reporter = $2 \
                             AND report_id = $3 AND policy_domain = $4 AND begin_time = $5 \
                             AND end_time = $6) OR content_hash = $7 \
                             ORDER BY CASE WHEN content_hash = $7 THEN 1 ELSE 0 END, id LIMIT 1",
                        )
                        .bind(r.kind)
                        .bind(r.reporter)
                        .bind(r.report_id)
                        .bind(domain)
                        .bind(r.begin)
                        .bind(r.end)
                        .bind(hash)
                        .fetch_one(&mut *tx)
                        .await?;
                        outcomes.push(Ok(crate::Ingested::Duplicate(existing)));
                        continue;
                    };
                    // The rows in multi-row INSERTs (`row_chunks`): one statement per chunk
                    // instead of one per row; the rows' strings move into it.
                    let sizes = row_chunks(r.rows.len());
                    let mut rows = r.rows.into_iter();
                    for size in sizes {
                        let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                            "INSERT INTO aggregate_rows (report_id, policy_domain, begin_time, \
                             end_time, {AGGREGATE_ROW_COLUMNS}) "
                        ));
                        q.push_values(rows.by_ref().take(size), |mut b, row| {
                            b.push_bind(id)
                                .push_bind(domain.clone())
                                .push_bind(r.begin)
                                .push_bind(r.end)
                                .push_bind(row.source_ip)
                                .push_bind(row.count)
                                .push_bind(row.disposition)
                                .push_bind(row.dkim_aligned)
                                .push_bind(row.spf_aligned)
                                .push_bind(row.header_from)
                                .push_bind(row.envelope_from)
                                .push_bind(row.dkim_domains)
                                .push_bind(row.dkim_results)
                                .push_bind(row.spf_domains)
                                .push_bind(row.spf_results);
                        });
                        q.build().execute(&mut *tx).await?;
                    }
                    outcomes.push(Ok(crate::Ingested::New(id)));
                }
                tx.commit().await?;
                Ok(outcomes)
            }

            async fn aggregate_rows(
                &self,
                policy_domain: &str,
                since: Time,
                until: Time,
            ) -> Result<Vec<(Time, crate::AggregateRow)>, StoreError> {
                // A name no report can have (refused at ingest) has no rows.
                let Ok(domain) = norm_policy_domain(policy_domain) else {
                    return Ok(Vec::new());
                };
                let rows = sqlx::query_as::<_, AggregateRowAt>(&format!(
                    "SELECT begin_time, {AGGREGATE_ROW_COLUMNS} FROM aggregate_rows \
                     WHERE policy_domain = $1 AND begin_time >= $2 AND begin_time < $3 \
                     ORDER BY begin_time, id"
                ))
                .bind(&domain)
                .bind(since)
                .bind(until)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| (r.begin_time, r.row)).collect())
            }

            async fn reports(
                &self,
                policy_domain: Option<&str>,
                limit: i64,
            ) -> Result<Vec<crate::StoredReport>, StoreError> {
                let limit = check_limit(limit)?;
                let rows = match policy_domain {
                    Some(d) => {
                        let Ok(d) = norm_policy_domain(d) else {
                            return Ok(Vec::new());
                        };
                        sqlx::query_as::<_, crate::StoredReport>(&format!(
                            "SELECT {REPORT_COLUMNS} FROM reports WHERE policy_domain = $1 \
                             ORDER BY begin_time DESC, id DESC LIMIT $2"
                        ))
                        .bind(d)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query_as::<_, crate::StoredReport>(&format!(
                            "SELECT {REPORT_COLUMNS} FROM reports \
                             ORDER BY begin_time DESC, id DESC LIMIT $1"
                        ))
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows)
            }

            async fn parsed_reports(
                &self,
                kind: crate::ReportKind,
                policy_domain: &str,
                since: Time,
                until: Time,
            ) -> Result<Vec<(crate::StoredReport, serde_json::Value)>, StoreError> {
                let Ok(domain) = norm_policy_domain(policy_domain) else {
                    return Ok(Vec::new());
                };
                let rows = sqlx::query_as::<_, ParsedReport>(&format!(
                    "SELECT {REPORT_COLUMNS}, parsed FROM reports \
                     WHERE kind = $1 AND policy_domain = $2 AND begin_time >= $3 \
                     AND begin_time < $4 ORDER BY begin_time, id"
                ))
                .bind(kind)
                .bind(&domain)
                .bind(since)
                .bind(until)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| (r.report, r.parsed)).collect())
            }

            async fn report_domain(&self, id: i64) -> Result<String, StoreError> {
                let domain = sqlx::query_scalar::<_, String>(
                    "SELECT policy_domain FROM reports WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("report {id}")))?;
                Ok(domain)
            }

            async fn report_raw(&self, id: i64) -> Result<Vec<u8>, StoreError> {
                let (encoding, raw) = sqlx::query_as::<_, (String, Vec<u8>)>(
                    "SELECT raw_encoding, raw FROM reports WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("report {id}")))?;
                crate::RawFile::decode(&encoding, &raw)
                    .map_err(|e| StoreError::Corrupt(format!("report {id}'s raw file: {e}")))
            }
        }
    };
}

pub(crate) use reports_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_chunks_cover_every_row_with_few_distinct_sizes() {
        let mut sizes = std::collections::BTreeSet::new();
        for n in 0..3_000 {
            let chunks: Vec<usize> = row_chunks(n).collect();
            assert_eq!(chunks.iter().sum::<usize>(), n, "{n}");
            assert!(
                chunks.iter().all(|&c| (1..=ROWS_PER_INSERT).contains(&c)),
                "{n}"
            );
            assert!(chunks.windows(2).all(|w| w[0] >= w[1]), "{n}: {chunks:?}");
            sizes.extend(chunks);
        }
        assert_eq!(sizes.len(), 10, "{sizes:?}");
        assert_eq!(
            row_chunks(1_201).collect::<Vec<_>>(),
            [512, 512, 128, 32, 16, 1]
        );
    }

    #[test]
    fn policy_domains() {
        for (input, want) in [
            ("Contoso.Example.", Some("contoso.example")),
            ("", Some("")),
            (".", Some("")),
            (
                "_dmarc.xn--bcher-kva.example",
                Some("_dmarc.xn--bcher-kva.example"),
            ),
            ("bücher.example", Some("bücher.example")),
            ("localhost", Some("localhost")),
            ("<script>alert(1)</script>", None),
            ("<script>.example", None),
            ("a..example", None),
            (".a.example", None),
            ("a/b.example", None),
            ("a b.example", None),
        ] {
            assert_eq!(norm_policy_domain(input).ok().as_deref(), want, "{input:?}");
        }
        assert!(norm_policy_domain(&format!("{}.example", "a".repeat(64))).is_err());
        assert!(norm_policy_domain(&format!("{}.example", "a".repeat(63))).is_ok());
    }
}
