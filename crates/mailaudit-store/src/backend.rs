//! The [`Store`](crate::Store) implementation shared by both back ends.
//!
//! The SQL is portable between SQLite and PostgreSQL (`$N` parameters, `RETURNING`,
//! `ON CONFLICT … DO UPDATE`); only the schema (migrations), the connection set-up and how a write
//! transaction begins differ. [`impl_store!`] expands the same method bodies for each back end's
//! pool type; each back end provides `self.pool` and `self.write_tx()`.

use crate::StoreError;

/// Normalises a domain name: trimmed, ASCII lower-case, one trailing dot removed.
pub(crate) fn norm_domain(name: &str) -> Result<String, StoreError> {
    let n = name.trim();
    let n = n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase();
    if n.is_empty() {
        return Err(StoreError::Invalid("empty domain name".into()));
    }
    if n.len() > 253 {
        return Err(StoreError::Invalid(format!(
            "domain name longer than 253 characters: {n:?}"
        )));
    }
    if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "domain name with white space or control characters: {n:?}"
        )));
    }
    Ok(n)
}

/// Normalises a customer name: trimmed, non-empty, no control characters.
pub(crate) fn norm_customer(name: &str) -> Result<String, StoreError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(StoreError::Invalid("empty customer name".into()));
    }
    if n.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "customer name with control characters: {n:?}"
        )));
    }
    Ok(n.to_string())
}

/// An optional text field: trimmed, empty means none.
pub(crate) fn opt_text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `LIMIT` values must not be negative.
pub(crate) fn check_limit(limit: i64) -> Result<i64, StoreError> {
    if limit < 0 {
        return Err(StoreError::Invalid(format!("negative limit {limit}")));
    }
    Ok(limit)
}

/// Maps a unique-constraint violation to `Conflict(msg)`, anything else to `Db`.
pub(crate) fn conflict_on_unique(e: sqlx::Error, msg: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(msg()),
        _ => StoreError::Db(e),
    }
}

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

/// Checks a mailbox cursor's values (see `Store::advance_mailbox_cursor`).
pub(crate) fn check_cursor(
    mailbox: &str,
    uid_validity: i64,
    last_uid: i64,
) -> Result<(), StoreError> {
    if mailbox.trim().is_empty() || mailbox.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "mailbox identity empty or with control characters: {mailbox:?}"
        )));
    }
    if crate::redact_url(mailbox) != mailbox {
        return Err(StoreError::Invalid(
            "a mailbox identity must not hold a password".into(),
        ));
    }
    if !(1..=i64::from(u32::MAX)).contains(&uid_validity) {
        return Err(StoreError::Invalid(format!(
            "UIDVALIDITY {uid_validity} is outside 1..=4294967295"
        )));
    }
    if !(0..=i64::from(u32::MAX)).contains(&last_uid) {
        return Err(StoreError::Invalid(format!(
            "UID {last_uid} is outside 0..=4294967295"
        )));
    }
    Ok(())
}

pub(crate) const REPORT_COLUMNS: &str = "id, kind, reporter, report_id, policy_domain, begin_time, \
     end_time, content_hash, source, ingested_at, problems";

pub(crate) const AGGREGATE_ROW_COLUMNS: &str = "source_ip, message_count, disposition, \
     dkim_aligned, spf_aligned, header_from, envelope_from, dkim_domains, dkim_results, \
     spf_domains, spf_results";

pub(crate) const DOMAIN_SELECT: &str = "SELECT d.id, d.name, c.name AS customer, d.parked, d.tenant, \
     d.m365_endpoint, d.relay_from, d.relay_to, d.key_people, d.added_at \
     FROM domains d LEFT JOIN customers c ON c.id = d.customer_id";

pub(crate) const RUN_SELECT: &str = "SELECT r.id, r.started_at, r.finished_at, r.source, r.status, \
     (SELECT COUNT(*) FROM results x WHERE x.run_id = r.id) AS domains FROM runs r";

pub(crate) const RESULT_COLUMNS: &str = "run_id, domain, audited_at, score, report";

pub(crate) const CHECKLIST_COLUMNS: &str =
    "domain, key, priority, title, state, done_by, done_at, updated_at";

pub(crate) const ALERT_COLUMNS: &str =
    "id, created_at, domain, payload, attempts, next_attempt_at, delivered_at, last_error";

pub(crate) const TENANT_SELECT: &str = "SELECT t.id, c.name AS customer, t.organization, \
     t.imported_at, t.source, t.bundle, t.findings \
     FROM tenant_imports t LEFT JOIN customers c ON c.id = t.customer_id";

/// `t` is the newest import of its organization among the rows matching `scope` (a condition on
/// the alias `n`, e.g. `TRUE` or `n.customer_id = $1`).
pub(crate) fn newest_tenant_import(scope: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM tenant_imports n WHERE n.organization = t.organization \
         AND {scope} AND (n.imported_at > t.imported_at \
         OR (n.imported_at = t.imported_at AND n.id > t.id)))"
    )
}

/// Expands `impl Store for $store` over `$db` (`sqlx::Sqlite` or `sqlx::Postgres`).
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

/// Reads a column stored as a word (`TEXT` in both back ends) as `$ty`, through `$parse`
/// (`Option<$ty>` from `&str`); a word it does not know is a decode error naming it.
macro_rules! word_column {
    ($ty:ty, $what:literal, $parse:expr) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let word = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                ($parse)(word).ok_or_else(|| format!("unknown {} {word:?}", $what).into())
            }
        }
    };
}

word_column!(crate::RunStatus, "run status", crate::RunStatus::parse);
word_column!(crate::ItemState, "checklist state", crate::ItemState::parse);
word_column!(crate::Scope, "schedule scope", crate::Scope::from_key);
word_column!(crate::ReportKind, "report kind", crate::ReportKind::parse);

/// A report's kind is written as its word.
impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for crate::ReportKind
where
    &'q str: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
    }
}

/// A checklist item's stored priority, read as [`ChecklistItem::priority`](crate::ChecklistItem):
/// a value outside `0..=255` (never written) reads as 255.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub struct PriorityColumn(i64);

impl From<PriorityColumn> for u8 {
    fn from(p: PriorityColumn) -> u8 {
        u8::try_from(p.0).unwrap_or(u8::MAX)
    }
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

macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        fn sort_schedules(v: &mut [Schedule]) {
            v.sort_by(|a, b| match (&a.scope, &b.scope) {
                (Scope::Fleet, Scope::Fleet) => std::cmp::Ordering::Equal,
                (Scope::Fleet, _) => std::cmp::Ordering::Less,
                (_, Scope::Fleet) => std::cmp::Ordering::Greater,
                (Scope::Customer(x), Scope::Customer(y)) => x.cmp(y),
            });
        }

        impl $store {
            async fn customer_id<'e, E>(executor: E, name: &str) -> Result<i64, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_scalar::<_, i64>("SELECT id FROM customers WHERE name = $1")
                    .bind(name)
                    .fetch_optional(executor)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("customer {name:?}")))
            }

            /// Inserts the domain `d` in one transaction, `on_conflict` deciding what happens to
            /// an existing one (replace, or leave as it is); the stored entry after it, and
            /// whether a row was written.
            async fn insert_domain(
                &self,
                d: &NewDomain,
                on_conflict: &str,
            ) -> Result<(DomainEntry, bool), StoreError> {
                let name = norm_domain(&d.name)?;
                let customer = match &d.customer {
                    Some(c) => Some(norm_customer(c)?),
                    None => None,
                };
                let mut tx = self.write_tx().await?;
                let customer_id = match &customer {
                    Some(c) => Some(Self::customer_id(&mut *tx, c).await?),
                    None => None,
                };
                let done = sqlx::query(&format!(
                    "INSERT INTO domains (name, customer_id, parked, tenant, m365_endpoint, \
                     relay_from, relay_to, key_people, added_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) {on_conflict}"
                ))
                .bind(&name)
                .bind(customer_id)
                .bind(d.parked)
                .bind(opt_text(&d.tenant))
                .bind(opt_text(&d.m365_endpoint))
                .bind(opt_text(&d.relay_from))
                .bind(opt_text(&d.relay_to))
                .bind(Json(&d.key_people))
                .bind(crate::now())
                .execute(&mut *tx)
                .await?;
                let entry = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((entry, done.rows_affected() == 1))
            }

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

        #[async_trait::async_trait]
        impl Store for $store {
            async fn add_customer(
                &self,
                name: &str,
                contacts: &str,
                notes: &str,
            ) -> Result<Customer, StoreError> {
                let name = norm_customer(name)?;
                let created_at = crate::now();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO customers (name, contacts, notes, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&name)
                .bind(contacts)
                .bind(notes)
                .bind(created_at)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| conflict_on_unique(e, || format!("customer {name:?} already exists")))?;
                Ok(Customer {
                    id,
                    name,
                    contacts: contacts.to_string(),
                    notes: notes.to_string(),
                    created_at,
                })
            }

            async fn customers(&self) -> Result<Vec<Customer>, StoreError> {
                let rows = sqlx::query_as::<_, Customer>(
                    "SELECT id, name, contacts, notes, created_at FROM customers ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn customer(&self, name: &str) -> Result<Customer, StoreError> {
                let name = norm_customer(name)?;
                let row = sqlx::query_as::<_, Customer>(
                    "SELECT id, name, contacts, notes, created_at FROM customers WHERE name = $1",
                )
                .bind(&name)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("customer {name:?}")))?;
                Ok(row)
            }

            async fn update_customer(
                &self,
                name: &str,
                contacts: Option<&str>,
                notes: Option<&str>,
            ) -> Result<crate::Updated<Customer>, StoreError> {
                let name = norm_customer(name)?;
                let mut tx = self.write_tx().await?;
                // Takes the row's lock, as in update_domain.
                let locked = sqlx::query("UPDATE customers SET name = name WHERE name = $1")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                if locked.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("customer {name:?}")));
                }
                let before = sqlx::query_as::<_, Customer>(
                    "SELECT id, name, contacts, notes, created_at FROM customers WHERE name = $1",
                )
                .bind(&name)
                .fetch_one(&mut *tx)
                .await?;
                let after = Customer {
                    contacts: contacts.map_or_else(|| before.contacts.clone(), str::to_string),
                    notes: notes.map_or_else(|| before.notes.clone(), str::to_string),
                    ..before.clone()
                };
                if after == before {
                    return Ok(crate::Updated { before, after });
                }
                sqlx::query("UPDATE customers SET contacts = $1, notes = $2 WHERE id = $3")
                    .bind(&after.contacts)
                    .bind(&after.notes)
                    .bind(after.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(crate::Updated { before, after })
            }

            async fn upsert_domain(&self, d: &NewDomain) -> Result<DomainEntry, StoreError> {
                let (entry, _) = self
                    .insert_domain(
                        d,
                        "ON CONFLICT (name) DO UPDATE SET customer_id = excluded.customer_id, \
                         parked = excluded.parked, tenant = excluded.tenant, \
                         m365_endpoint = excluded.m365_endpoint, relay_from = excluded.relay_from, \
                         relay_to = excluded.relay_to, key_people = excluded.key_people",
                    )
                    .await?;
                Ok(entry)
            }

            async fn add_domain(
                &self,
                d: &NewDomain,
            ) -> Result<crate::Added<DomainEntry>, StoreError> {
                let (entry, inserted) = self
                    .insert_domain(d, "ON CONFLICT (name) DO NOTHING")
                    .await?;
                Ok(if inserted {
                    crate::Added::New(entry)
                } else {
                    crate::Added::Existing(entry)
                })
            }

            async fn update_domain(
                &self,
                name: &str,
                u: &crate::DomainUpdate,
            ) -> Result<crate::Updated<DomainEntry>, StoreError> {
                let name = norm_domain(name)?;
                let mut u = u.clone();
                if let Some(Some(c)) = &u.customer {
                    u.customer = Some(Some(norm_customer(c)?));
                }
                let mut tx = self.write_tx().await?;
                // A no-op write first: it takes the row's lock (PostgreSQL; SQLite's
                // BEGIN IMMEDIATE already holds the database's), so no other writer changes the
                // row between the read and the write.
                let locked = sqlx::query("UPDATE domains SET name = name WHERE name = $1")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                if locked.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("domain {name:?}")));
                }
                let before = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?;
                let after = u.apply(&before);
                if after == before {
                    // Nothing to write: the transaction is rolled back when dropped.
                    return Ok(crate::Updated { before, after });
                }
                let customer_id = match &after.customer {
                    Some(c) => Some(Self::customer_id(&mut *tx, c).await?),
                    None => None,
                };
                sqlx::query(
                    "UPDATE domains SET customer_id = $1, parked = $2, tenant = $3, \
                     m365_endpoint = $4, relay_from = $5, relay_to = $6, key_people = $7 \
                     WHERE name = $8",
                )
                .bind(customer_id)
                .bind(after.parked)
                .bind(&after.tenant)
                .bind(&after.m365_endpoint)
                .bind(&after.relay_from)
                .bind(&after.relay_to)
                .bind(Json(&after.key_people))
                .bind(&name)
                .execute(&mut *tx)
                .await?;
                let after = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(crate::Updated { before, after })
            }

            async fn remove_domain(&self, name: &str) -> Result<(), StoreError> {
                let name = norm_domain(name)?;
                let done = sqlx::query("DELETE FROM domains WHERE name = $1")
                    .bind(&name)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("domain {name:?}")));
                }
                Ok(())
            }

            async fn domains(&self, customer: Option<&str>) -> Result<Vec<DomainEntry>, StoreError> {
                let rows = match customer {
                    None => {
                        sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} ORDER BY d.name"))
                            .fetch_all(&self.pool)
                            .await?
                    }
                    Some(c) => {
                        let c = norm_customer(c)?;
                        let id = Self::customer_id(&self.pool, &c).await?;
                        sqlx::query_as::<_, DomainEntry>(&format!(
                            "{DOMAIN_SELECT} WHERE d.customer_id = $1 ORDER BY d.name"
                        ))
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows)
            }

            async fn domain(&self, name: &str) -> Result<DomainEntry, StoreError> {
                let name = norm_domain(name)?;
                let row = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("domain {name:?}")))?;
                Ok(row)
            }

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

            async fn checklist(&self, domain: &str) -> Result<Vec<ChecklistItem>, StoreError> {
                let domain = norm_domain(domain)?;
                let rows = sqlx::query_as::<_, ChecklistItem>(&format!(
                    "SELECT {CHECKLIST_COLUMNS} FROM checklist WHERE domain = $1 \
                     ORDER BY priority, position, key"
                ))
                .bind(&domain)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn sync_checklist(
                &self,
                domain: &str,
                items: &[ChecklistItem],
            ) -> Result<(), StoreError> {
                let domain = norm_domain(domain)?;
                for (i, item) in items.iter().enumerate() {
                    if item.key.trim().is_empty() {
                        return Err(StoreError::Invalid(format!("checklist item {i} has no key")));
                    }
                    if items[..i].iter().any(|o| o.key == item.key) {
                        return Err(StoreError::Invalid(format!(
                            "checklist key {:?} appears twice",
                            item.key
                        )));
                    }
                }
                let mut tx = self.write_tx().await?;
                let existing: Vec<String> =
                    sqlx::query_scalar("SELECT key FROM checklist WHERE domain = $1")
                        .bind(&domain)
                        .fetch_all(&mut *tx)
                        .await?;
                for key in existing.iter().filter(|k| !items.iter().any(|i| &i.key == *k)) {
                    sqlx::query("DELETE FROM checklist WHERE domain = $1 AND key = $2")
                        .bind(&domain)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                for (position, item) in items.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO checklist (domain, key, position, priority, title, state, \
                         done_by, done_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (domain, key) DO UPDATE SET position = excluded.position, \
                         priority = excluded.priority, title = excluded.title, \
                         updated_at = CASE WHEN checklist.title <> excluded.title \
                         OR checklist.priority <> excluded.priority \
                         THEN excluded.updated_at ELSE checklist.updated_at END",
                    )
                    .bind(&domain)
                    .bind(&item.key)
                    .bind(i64::try_from(position).unwrap_or(i64::MAX))
                    .bind(i64::from(item.priority))
                    .bind(&item.title)
                    .bind(item.state.as_str())
                    .bind(&item.by)
                    .bind(item.at)
                    .bind(item.updated_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn set_item_state(
                &self,
                domain: &str,
                key: &str,
                state: ItemState,
                by: &str,
                now: Time,
            ) -> Result<ChecklistItem, StoreError> {
                let domain = norm_domain(domain)?;
                let by = by.trim();
                if by.is_empty() {
                    return Err(StoreError::Invalid(
                        "who changed the checklist item is required".into(),
                    ));
                }
                let row = sqlx::query_as::<_, ChecklistItem>(&format!(
                    "UPDATE checklist SET state = $1, done_by = $2, done_at = $3, updated_at = $3 \
                     WHERE domain = $4 AND key = $5 AND state <> $1 RETURNING {CHECKLIST_COLUMNS}"
                ))
                .bind(state.as_str())
                .bind(by)
                .bind(now)
                .bind(&domain)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = row {
                    return Ok(row);
                }
                // Unchanged (already in that state) or absent.
                let row = sqlx::query_as::<_, ChecklistItem>(&format!(
                    "SELECT {CHECKLIST_COLUMNS} FROM checklist WHERE domain = $1 AND key = $2"
                ))
                .bind(&domain)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| {
                    StoreError::not_found(format!("checklist item {key:?} of {domain}"))
                })?;
                Ok(row)
            }

            async fn dmarc_rollout(&self, domain: &str) -> Result<Option<DmarcRollout>, StoreError> {
                let domain = norm_domain(domain)?;
                Ok(sqlx::query_as::<_, DmarcRollout>(
                    "SELECT domain, phase, started_at FROM dmarc_rollouts WHERE domain = $1",
                )
                .bind(&domain)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn set_dmarc_rollout(&self, r: &DmarcRollout) -> Result<(), StoreError> {
                let domain = norm_domain(&r.domain)?;
                if !["none", "quarantine", "reject"].contains(&r.phase.as_str()) {
                    return Err(StoreError::Invalid(format!(
                        "DMARC phase {:?} is not none, quarantine or reject",
                        r.phase
                    )));
                }
                sqlx::query(
                    "INSERT INTO dmarc_rollouts (domain, phase, started_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (domain) DO UPDATE SET phase = excluded.phase, \
                     started_at = excluded.started_at",
                )
                .bind(&domain)
                .bind(&r.phase)
                .bind(r.started_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn set_schedule(&self, s: &Schedule) -> Result<(), StoreError> {
                if s.interval_secs <= 0 {
                    return Err(StoreError::Invalid(format!(
                        "schedule interval must be positive, not {}",
                        s.interval_secs
                    )));
                }
                let scope = match &s.scope {
                    Scope::Fleet => Scope::Fleet,
                    Scope::Customer(c) => Scope::Customer(norm_customer(c)?),
                };
                let mut tx = self.write_tx().await?;
                if let Scope::Customer(c) = &scope {
                    Self::customer_id(&mut *tx, c).await?;
                }
                sqlx::query(
                    "INSERT INTO schedules (scope, interval_secs, next_run_at, last_run_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (scope) DO UPDATE SET \
                     interval_secs = excluded.interval_secs, next_run_at = excluded.next_run_at, \
                     last_run_at = excluded.last_run_at",
                )
                .bind(scope.key())
                .bind(s.interval_secs)
                .bind(s.next_run_at)
                .bind(s.last_run_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn remove_schedule(&self, scope: &Scope) -> Result<(), StoreError> {
                let scope = match scope {
                    Scope::Fleet => Scope::Fleet,
                    Scope::Customer(c) => Scope::Customer(norm_customer(c)?),
                };
                let done = sqlx::query("DELETE FROM schedules WHERE scope = $1")
                    .bind(scope.key())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("schedule {}", scope.key())));
                }
                Ok(())
            }

            async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
                let mut v = sqlx::query_as::<_, Schedule>(
                    "SELECT scope, interval_secs, next_run_at, last_run_at FROM schedules",
                )
                .fetch_all(&self.pool)
                .await?;
                sort_schedules(&mut v);
                Ok(v)
            }

            async fn claim_due_schedules(&self, now: Time) -> Result<Vec<Schedule>, StoreError> {
                // One statement: atomic in both back ends. PostgreSQL re-checks the WHERE clause
                // of a row another transaction updated meanwhile, so a concurrent claimer skips it.
                let mut v = sqlx::query_as::<_, Schedule>(
                    "UPDATE schedules SET last_run_at = $1, next_run_at = CASE \
                     WHEN next_run_at + interval_secs > $1 THEN next_run_at + interval_secs \
                     ELSE $1 + interval_secs END \
                     WHERE next_run_at <= $1 \
                     RETURNING scope, interval_secs, next_run_at, last_run_at",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                sort_schedules(&mut v);
                Ok(v)
            }

            async fn enqueue_alert(
                &self,
                domain: &str,
                payload: &serde_json::Value,
                now: Time,
            ) -> Result<i64, StoreError> {
                let domain = norm_domain(domain)?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO alerts (created_at, domain, payload, attempts, next_attempt_at) \
                     VALUES ($1, $2, $3, 0, $1) RETURNING id",
                )
                .bind(now)
                .bind(&domain)
                .bind(Json(payload))
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn due_alerts(&self, now: Time) -> Result<Vec<Alert>, StoreError> {
                let rows = sqlx::query_as::<_, Alert>(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts \
                     WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
                     ORDER BY next_attempt_at, id"
                ))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn alert_delivered(&self, id: i64, now: Time) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE alerts SET attempts = attempts + 1, delivered_at = $1 \
                     WHERE id = $2 AND delivered_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM alerts WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                    if exists.is_none() {
                        return Err(StoreError::not_found(format!("alert {id}")));
                    }
                }
                Ok(())
            }

            async fn alert_failed(
                &self,
                id: i64,
                error: &str,
                next_attempt_at: Time,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = $1, \
                     next_attempt_at = $2 WHERE id = $3 AND delivered_at IS NULL",
                )
                .bind(error)
                .bind(next_attempt_at)
                .bind(id)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM alerts WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                    return Err(match exists {
                        None => StoreError::not_found(format!("alert {id}")),
                        Some(_) => StoreError::Conflict(format!("alert {id} was already delivered")),
                    });
                }
                Ok(())
            }

            async fn claim_due_alerts(
                &self,
                now: Time,
                lease_secs: i64,
            ) -> Result<Vec<Alert>, StoreError> {
                if lease_secs <= 0 {
                    return Err(StoreError::Invalid(format!(
                        "alert lease must be positive, not {lease_secs}"
                    )));
                }
                let mut v = sqlx::query_as::<_, Alert>(&format!(
                    "UPDATE alerts SET next_attempt_at = $2 \
                     WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
                     RETURNING {ALERT_COLUMNS}"
                ))
                .bind(now)
                .bind(now.saturating_add(lease_secs))
                .fetch_all(&self.pool)
                .await?;
                v.sort_by_key(|a| a.id);
                Ok(v)
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

            async fn record_tenant_import(
                &self,
                customer: Option<&str>,
                organization: &str,
                now: Time,
                source: &str,
                config: &serde_json::Value,
                findings: &serde_json::Value,
            ) -> Result<i64, StoreError> {
                let organization = norm_domain(organization)?;
                if !findings.is_array() {
                    return Err(StoreError::Invalid(
                        "tenant import findings must be a JSON array".into(),
                    ));
                }
                let customer = customer.map(norm_customer).transpose()?;
                let mut tx = self.write_tx().await?;
                let customer_id = match &customer {
                    Some(c) => Some(Self::customer_id(&mut *tx, c).await?),
                    None => None,
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tenant_imports (customer_id, organization, imported_at, source, \
                     bundle, findings) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(customer_id)
                .bind(&organization)
                .bind(now)
                .bind(source)
                .bind(Json(config))
                .bind(Json(findings))
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn tenant_imports(
                &self,
                organization: &str,
                limit: i64,
            ) -> Result<Vec<TenantImport>, StoreError> {
                let organization = norm_domain(organization)?;
                let limit = check_limit(limit)?;
                let rows = sqlx::query_as::<_, TenantImport>(&format!(
                    "{TENANT_SELECT} WHERE t.organization = $1 \
                     ORDER BY t.imported_at DESC, t.id DESC LIMIT $2"
                ))
                .bind(&organization)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn latest_tenant_imports(
                &self,
                customer: Option<&str>,
            ) -> Result<Vec<TenantImport>, StoreError> {
                let rows = match customer {
                    None => {
                        sqlx::query_as::<_, TenantImport>(&format!(
                            "{TENANT_SELECT} WHERE {} ORDER BY t.organization",
                            newest_tenant_import("TRUE")
                        ))
                        .fetch_all(&self.pool)
                        .await?
                    }
                    Some(c) => {
                        let c = norm_customer(c)?;
                        let id = Self::customer_id(&self.pool, &c).await?;
                        sqlx::query_as::<_, TenantImport>(&format!(
                            "{TENANT_SELECT} WHERE t.customer_id = $1 AND {} \
                             ORDER BY t.organization",
                            newest_tenant_import("n.customer_id = $1")
                        ))
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows)
            }

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

            async fn mailbox_cursor(
                &self,
                mailbox: &str,
            ) -> Result<Option<crate::MailboxCursor>, StoreError> {
                let row = sqlx::query_as::<_, crate::MailboxCursor>(
                    "SELECT mailbox, uid_validity, last_uid, updated_at FROM mailbox_cursors \
                     WHERE mailbox = $1",
                )
                .bind(mailbox)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            async fn advance_mailbox_cursor(
                &self,
                mailbox: &str,
                uid_validity: i64,
                last_uid: i64,
                now: Time,
            ) -> Result<crate::MailboxCursor, StoreError> {
                check_cursor(mailbox, uid_validity, last_uid)?;
                // One statement: atomic on both back ends. The right-hand sides see the old row.
                let row = sqlx::query_as::<_, crate::MailboxCursor>(
                    "INSERT INTO mailbox_cursors (mailbox, uid_validity, last_uid, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (mailbox) DO UPDATE SET \
                       last_uid = CASE \
                         WHEN mailbox_cursors.uid_validity <> excluded.uid_validity \
                           OR excluded.last_uid > mailbox_cursors.last_uid \
                         THEN excluded.last_uid ELSE mailbox_cursors.last_uid END, \
                       uid_validity = excluded.uid_validity, \
                       updated_at = excluded.updated_at \
                     RETURNING mailbox, uid_validity, last_uid, updated_at",
                )
                .bind(mailbox)
                .bind(uid_validity)
                .bind(last_uid)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok(row)
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}

pub(crate) use impl_store;

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
    fn domain_names() {
        for (input, want) in [
            ("Example.COM.", Some("example.com")),
            ("  a.b  ", Some("a.b")),
            ("", None),
            (".", None),
            ("a b.com", None),
            ("a\u{0}.com", None),
        ] {
            assert_eq!(norm_domain(input).ok().as_deref(), want, "{input:?}");
        }
        assert!(norm_domain(&"a".repeat(254)).is_err());
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

    /// Rows map to their structs by name (renamed and JSON columns included), a priority out of
    /// range reads as 255, and a stored word this version cannot read (the schema's CHECK
    /// constraints keep most out) is a decode error, never a default.
    #[tokio::test]
    async fn rows_decode_by_name_and_refuse_unknown_words() {
        use crate::{ChecklistItem, ItemState, NewDomain, Schedule, Scope, SqliteStore, Store};
        let s = SqliteStore::open_memory().await.unwrap();
        let domain = NewDomain {
            name: "a.example".into(),
            ..NewDomain::default()
        };
        s.add_domain(&domain).await.unwrap();
        let item = ChecklistItem {
            domain: "a.example".into(),
            key: "dmarc-quarantine".into(),
            priority: 2,
            title: "Move to quarantine".into(),
            state: ItemState::Open,
            by: None,
            at: None,
            updated_at: 1,
        };
        s.sync_checklist("a.example", std::slice::from_ref(&item))
            .await
            .unwrap();
        let done = s
            .set_item_state("a.example", "dmarc-quarantine", ItemState::Done, "ann", 7)
            .await
            .unwrap();
        assert_eq!(
            (done.priority, done.state, done.by.as_deref(), done.at),
            (2, ItemState::Done, Some("ann"), Some(7))
        );
        assert_eq!(s.checklist("a.example").await.unwrap(), vec![done]);
        let pool = s.pool();
        sqlx::query("UPDATE checklist SET priority = 300")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(s.checklist("a.example").await.unwrap()[0].priority, u8::MAX);

        let fleet = Schedule {
            scope: Scope::Fleet,
            interval_secs: 60,
            next_run_at: 100,
            last_run_at: None,
        };
        s.set_schedule(&fleet).await.unwrap();
        assert_eq!(s.schedules().await.unwrap(), vec![fleet]);
        sqlx::query("UPDATE schedules SET scope = 'galaxy'")
            .execute(pool)
            .await
            .unwrap();
        let err = s.schedules().await.unwrap_err();
        assert!(err.to_string().contains("\"galaxy\""), "{err}");
        assert!(s.domain("a.example").await.unwrap().key_people.is_empty());
    }
}
