//! The fleet pages' reads: each domain's newest result and what it found (`domain_latest`,
//! written with the result), listed with the inventory and the checklist, filtered, sorted and
//! paged in SQL, so a page costs the same whatever the size of the fleet's history.

use crate::{AREAS, FleetQuery, FleetSort, FleetTotals, SEVERITIES, StoreError, Time};

/// What the fleet pages list about a result, read from its report (`findings[].severity`,
/// `findings[].area`, `dmarc.policy`, `relay.verdict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    pub(crate) dmarc_policy: Option<String>,
    pub(crate) lacks_dmarc: bool,
    pub(crate) relay: String,
    /// Findings by severity, [`SEVERITIES`] order.
    pub(crate) counts: [i64; 5],
    /// The worst severity's rank.
    pub(crate) worst: i64,
    /// The worst severity's rank by area, [`AREAS`] order.
    pub(crate) areas: [i64; 7],
    pub(crate) unreadable: bool,
    /// The findings' ids, each between spaces (` A B `), for a check filter's `LIKE`.
    pub(crate) checks: String,
}

impl Facts {
    /// The facts of a report (a report that is not a JSON object is unreadable).
    pub(crate) fn of(report: &serde_json::Value) -> Facts {
        let mut f = Facts {
            dmarc_policy: None,
            lacks_dmarc: false,
            relay: "not_tested".into(),
            counts: [0; 5],
            worst: 0,
            areas: [0; 7],
            unreadable: !report.is_object(),
            checks: " ".into(),
        };
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        f.dmarc_policy = text(report.pointer("/dmarc/policy"));
        if let Some(verdict) = text(report.pointer("/relay/verdict")) {
            f.relay = verdict;
        }
        for finding in report
            .get("findings")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let id = finding.get("id").and_then(|v| v.as_str()).unwrap_or("");
            if is_check_id(id) && !f.checks.contains(&format!(" {id} ")) {
                f.checks.push_str(id);
                f.checks.push(' ');
            }
            match id {
                "DMARC-MISSING" => f.lacks_dmarc = true,
                "RELAY-OPEN" => f.relay = "open".into(),
                _ => {}
            }
            let severity = finding.get("severity").and_then(|v| v.as_str());
            let Some(rank) = severity.and_then(crate::severity_rank) else {
                continue;
            };
            let rank = i64::from(rank);
            f.counts[5 - rank as usize] += 1;
            f.worst = f.worst.max(rank);
            let area = finding.get("area").and_then(|v| v.as_str()).unwrap_or("");
            if let Some(i) = AREAS.iter().position(|a| *a == area) {
                f.areas[i] = f.areas[i].max(rank);
            }
        }
        f
    }

    /// The facts of a result whose report could not be read.
    pub(crate) fn unreadable() -> Facts {
        Facts {
            unreadable: true,
            ..Facts::of(&serde_json::json!({}))
        }
    }
}

/// Whether `id` has the shape of a check id (letters, digits, dashes): what may stand in
/// `checks` and in a check filter.
pub(crate) fn is_check_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A row of `domain_latest` to write: `(domain, result id, audited_at, score, facts)`.
pub(crate) type LatestRow<'a> = (&'a str, i64, Time, Option<i64>, Facts);

/// The columns of `domain_latest`, in the order [`LatestRow`] binds them.
pub(crate) const LATEST_COLUMNS: &str = "domain, result_id, audited_at, score, dmarc_policy, \
     lacks_dmarc, relay, n_critical, n_high, n_medium, n_low, n_info, worst, area_dmarc, \
     area_spf, area_dkim, area_connectors, area_antispoof, area_impersonation, area_transport, \
     unreadable, checks";

/// Rows of `domain_latest` per statement (22 parameters a row).
pub(crate) const LATEST_PER_STATEMENT: usize = 400;

/// An integer expression both back ends read as `i64` (PostgreSQL's `SUM` of a `BIGINT` is a
/// `NUMERIC`, a `CASE` of literals an `INTEGER`).
pub(crate) fn int(expr: &str) -> String {
    format!("CAST(COALESCE({expr}, 0) AS BIGINT)")
}

/// 1 when `cond` holds, else 0.
fn one_if(cond: &str) -> String {
    format!("CASE WHEN {cond} THEN 1 ELSE 0 END")
}

/// What the fleet's lines select: the inventory, the newest result's facts, the checklist.
pub(crate) fn line_select() -> String {
    let mut cols = vec![
        "d.name".to_string(),
        "c.name AS customer".to_string(),
        format!("{} AS parked", int(&one_if("d.parked"))),
        "l.audited_at".to_string(),
        "l.score".to_string(),
        "l.dmarc_policy".to_string(),
        format!("{} AS lacks_dmarc", int(&one_if("l.lacks_dmarc"))),
        "COALESCE(l.relay, 'not_tested') AS relay".to_string(),
    ];
    for s in SEVERITIES {
        cols.push(format!("{} AS n_{s}", int(&format!("l.n_{s}"))));
    }
    for a in AREAS {
        cols.push(format!("{} AS area_{a}", int(&format!("l.area_{a}"))));
    }
    cols.push(format!("{} AS checklist_done", int("k.done")));
    cols.push(format!("{} AS checklist_total", int("k.total")));
    cols.push(format!("{} AS overdue", int("k.overdue")));
    cols.push(format!("{} AS unreadable", int(&one_if("l.unreadable"))));
    format!("SELECT {}", cols.join(", "))
}

/// What the totals select.
pub(crate) fn totals_select() -> String {
    let sums = [
        ("domains", "1".to_string()),
        ("audited", one_if("l.domain IS NOT NULL")),
        ("scored", one_if("l.score IS NOT NULL")),
        ("score_sum", "l.score".to_string()),
        ("without_dmarc", one_if("l.lacks_dmarc")),
        ("dmarc_none", one_if("l.dmarc_policy = 'none'")),
        ("dmarc_reject", one_if("l.dmarc_policy = 'reject'")),
        ("direct_send_open", one_if("l.relay = 'open'")),
        ("direct_send_blocked", one_if("l.relay = 'blocked'")),
        ("with_critical", one_if("l.n_critical > 0")),
        ("checklist_done", "k.done".to_string()),
        ("checklist_total", "k.total".to_string()),
        ("overdue", one_if("k.overdue > 0")),
    ];
    let cols: Vec<String> = sums
        .iter()
        .map(|(name, e)| format!("{} AS {name}", int(&format!("SUM({e})"))))
        .collect();
    format!("SELECT {}", cols.join(", "))
}

/// A row of [`totals_select`].
#[derive(sqlx::FromRow)]
pub(crate) struct TotalsRow {
    domains: i64,
    audited: i64,
    scored: i64,
    score_sum: i64,
    without_dmarc: i64,
    dmarc_none: i64,
    dmarc_reject: i64,
    direct_send_open: i64,
    direct_send_blocked: i64,
    with_critical: i64,
    checklist_done: i64,
    checklist_total: i64,
    overdue: i64,
}

impl From<TotalsRow> for FleetTotals {
    fn from(r: TotalsRow) -> FleetTotals {
        let n = |x: i64| u64::try_from(x).unwrap_or(0);
        FleetTotals {
            domains: n(r.domains),
            audited: n(r.audited),
            average_score: (r.scored > 0)
                .then(|| u8::try_from(r.score_sum / r.scored).unwrap_or(0)),
            without_dmarc: n(r.without_dmarc),
            dmarc_none: n(r.dmarc_none),
            dmarc_reject: n(r.dmarc_reject),
            direct_send_open: n(r.direct_send_open),
            direct_send_blocked: n(r.direct_send_blocked),
            with_critical: n(r.with_critical),
            checklist_done: n(r.checklist_done),
            checklist_total: n(r.checklist_total),
            overdue: n(r.overdue),
        }
    }
}

/// A row of [`line_select`].
#[derive(sqlx::FromRow)]
pub(crate) struct LineRow {
    name: String,
    customer: Option<String>,
    parked: i64,
    audited_at: Option<i64>,
    score: Option<i64>,
    dmarc_policy: Option<String>,
    lacks_dmarc: i64,
    relay: String,
    n_critical: i64,
    n_high: i64,
    n_medium: i64,
    n_low: i64,
    n_info: i64,
    area_dmarc: i64,
    area_spf: i64,
    area_dkim: i64,
    area_connectors: i64,
    area_antispoof: i64,
    area_impersonation: i64,
    area_transport: i64,
    checklist_done: i64,
    checklist_total: i64,
    overdue: i64,
    unreadable: i64,
}

impl From<LineRow> for crate::FleetLine {
    fn from(r: LineRow) -> crate::FleetLine {
        let n = |x: i64| u32::try_from(x).unwrap_or(0);
        let rank = |x: i64| u8::try_from(x.clamp(0, 5)).unwrap_or(0);
        crate::FleetLine {
            name: r.name,
            customer: r.customer,
            parked: r.parked != 0,
            audited_at: r.audited_at,
            score: r.score.and_then(|s| u8::try_from(s).ok()),
            dmarc_policy: r.dmarc_policy,
            lacks_dmarc: r.lacks_dmarc != 0,
            relay: r.relay,
            counts: [r.n_critical, r.n_high, r.n_medium, r.n_low, r.n_info].map(n),
            areas: [
                r.area_dmarc,
                r.area_spf,
                r.area_dkim,
                r.area_connectors,
                r.area_antispoof,
                r.area_impersonation,
                r.area_transport,
            ]
            .map(rank),
            checklist_done: n(r.checklist_done),
            checklist_total: n(r.checklist_total),
            overdue: r.overdue != 0,
            unreadable: r.unreadable != 0,
        }
    }
}

/// The `LIKE` pattern of a search: its text, lower-case, with `\`, `%` and `_` escaped.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The `ORDER BY` of a sort: each key with its direction (reversed with `descending`, nulls
/// kept where they are), the domain name last.
pub(crate) fn order_by(sort: FleetSort, descending: bool) -> String {
    let keys: &[(&str, bool, &str)] = match sort {
        FleetSort::Worst => &[
            ("l.worst", false, "NULLS LAST"),
            ("l.n_critical", false, "NULLS LAST"),
            ("l.n_high", false, "NULLS LAST"),
            ("l.n_medium", false, "NULLS LAST"),
            ("l.n_low", false, "NULLS LAST"),
            ("l.score", true, "NULLS LAST"),
        ],
        FleetSort::Score => &[("l.score", true, "NULLS LAST")],
        FleetSort::Audited => &[("l.audited_at", true, "NULLS FIRST")],
        FleetSort::Name => &[],
        FleetSort::Customer => &[("c.name", true, "NULLS LAST")],
        FleetSort::Progress => &[(
            "CAST(k.done AS REAL) / CAST(NULLIF(k.total, 0) AS REAL)",
            true,
            "NULLS LAST",
        )],
    };
    let mut parts: Vec<String> = keys
        .iter()
        .map(|(expr, asc, nulls)| {
            let dir = if *asc != descending { "ASC" } else { "DESC" };
            format!("{expr} {dir} {nulls}")
        })
        .collect();
    let name_dir = if descending && sort == FleetSort::Name {
        "DESC"
    } else {
        "ASC"
    };
    parts.push(format!("d.name {name_dir}"));
    format!(" ORDER BY {}", parts.join(", "))
}

/// The checklist's counts per domain (`k`), and whether one of its open items is past its due
/// time at `now` (`overdue`, 1 or 0, as `k_overdue`'s expression).
pub(crate) fn push_checklist_join<'a, DB: sqlx::Database>(
    q: &mut sqlx::QueryBuilder<'a, DB>,
    now: Time,
) where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(" LEFT JOIN (SELECT domain, total, done, CASE WHEN ");
    for (i, (priority, days)) in crate::DUE_DAYS.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push(format!("open_p{priority} < "));
        q.push_bind(now.saturating_sub(days * 86_400));
    }
    q.push(" THEN 1 ELSE 0 END AS overdue FROM checklist_counts) k ON k.domain = d.name");
}

/// The fleet's `FROM`: the inventory's domains `d`, their customers `c`, newest results `l` and
/// checklists `k` (overdue judged at `now`).
pub(crate) fn push_lines_from<'a, DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<'a, DB>, now: Time)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(
        " FROM domains d LEFT JOIN customers c ON c.id = d.customer_id \
         LEFT JOIN domain_latest l ON l.domain = d.name",
    );
    push_checklist_join(q, now);
}

/// The fleet's `FROM` and `WHERE` for `query` (the lines of the inventory's domains that pass
/// every filter of the query).
pub(crate) fn push_fleet_from<'a, DB: sqlx::Database>(
    q: &mut sqlx::QueryBuilder<'a, DB>,
    query: &'a FleetQuery,
) -> Result<(), StoreError>
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    push_lines_from(q, query.now);
    q.push(" WHERE 1 = 1");
    push_scope(q, "c.name", query.scope.as_deref());
    if let Some(c) = &query.customer {
        q.push(" AND c.name = ").push_bind(c.trim());
    }
    if let Some(text) = query.search.as_deref().filter(|t| !t.trim().is_empty()) {
        q.push(" AND d.name LIKE ")
            .push_bind(like_pattern(text))
            .push(" ESCAPE '\\'");
    }
    if let Some(rank) = query.min_severity
        && !(1..=5).contains(&rank)
    {
        return Err(StoreError::Invalid(format!("severity rank {rank}")));
    }
    match (query.area, query.min_severity) {
        (Some(i), rank) => {
            let area = AREAS
                .get(i)
                .ok_or_else(|| StoreError::Invalid(format!("area {i}")))?;
            q.push(format!(" AND l.area_{area} >= "))
                .push_bind(i64::from(rank.unwrap_or(2)));
        }
        (None, Some(rank)) => {
            q.push(" AND l.worst >= ").push_bind(i64::from(rank));
        }
        (None, None) => {}
    }
    if let Some(check) = &query.check {
        // The newest result's ids, not the findings index: a check found in most of a year
        // of history would otherwise be read for every old result.
        if !is_check_id(check) {
            return Err(StoreError::Invalid(format!("check id {check:?}")));
        }
        q.push(" AND l.checks LIKE ")
            .push_bind(format!("% {check} %"));
    }
    if let Some(relay) = &query.relay {
        if !crate::RELAY_VERDICTS.contains(&relay.as_str()) {
            return Err(StoreError::Invalid(format!(
                "Direct Send verdict {relay:?}"
            )));
        }
        q.push(" AND COALESCE(l.relay, 'not_tested') = ")
            .push_bind(relay.as_str());
    }
    match query.dmarc {
        Some(crate::DmarcFilter::Missing) => {
            q.push(" AND l.lacks_dmarc = TRUE");
        }
        Some(policy) => {
            q.push(" AND l.dmarc_policy = ").push_bind(policy.as_str());
        }
        None => {}
    }
    if query.overdue {
        q.push(" AND k.overdue > 0");
    }
    match query.never_audited {
        Some(true) => {
            q.push(" AND l.domain IS NULL");
        }
        Some(false) => {
            q.push(" AND l.domain IS NOT NULL");
        }
        None => {}
    }
    Ok(())
}

/// ` AND <column> IN (…)` for a scope of customers (nothing for every domain); `column` holds
/// the customer's name.
pub(crate) fn push_scope<'a, DB: sqlx::Database>(
    q: &mut sqlx::QueryBuilder<'a, DB>,
    column: &str,
    scope: Option<&'a [String]>,
) where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    match scope {
        None => {}
        Some([]) => {
            q.push(" AND 1 = 0");
        }
        Some(list) => {
            q.push(format!(" AND {column} IN "));
            q.push_tuples(list, |mut b, c| {
                b.push_bind(c.as_str());
            });
        }
    }
}

/// A run's totals over its results `r`, in the columns of `run_totals` after the customer.
pub(crate) fn trend_sums() -> String {
    let sums = [
        ("domains", "1".to_string()),
        ("scored", one_if("r.score IS NOT NULL")),
        ("score_sum", "r.score".to_string()),
        (
            "with_dmarc",
            "CASE WHEN EXISTS (SELECT 1 FROM result_findings f WHERE f.result_id = r.id \
             AND f.check_id = 'DMARC-MISSING') THEN 0 ELSE 1 END"
                .to_string(),
        ),
        ("at_reject", one_if("r.dmarc_policy = 'reject'")),
        ("relay_blocked", one_if("r.relay = 'blocked'")),
        ("relay_open", one_if("r.relay = 'open'")),
        (
            "with_critical",
            one_if(
                "EXISTS (SELECT 1 FROM result_findings f WHERE f.result_id = r.id \
                 AND f.severity = 'critical')",
            ),
        ),
    ];
    sums.iter()
        .map(|(name, e)| format!("{} AS {name}", int(&format!("SUM({e})"))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of `run_totals` after the run and the customer.
pub(crate) const TREND_COLUMNS: [&str; 8] = [
    "domains",
    "scored",
    "score_sum",
    "with_dmarc",
    "at_reject",
    "relay_blocked",
    "relay_open",
    "with_critical",
];

/// A row of the trend: a run, when it started, its totals.
#[derive(sqlx::FromRow)]
pub(crate) struct TrendRow {
    run_id: i64,
    at: i64,
    domains: i64,
    scored: i64,
    score_sum: i64,
    with_dmarc: i64,
    at_reject: i64,
    relay_blocked: i64,
    relay_open: i64,
    with_critical: i64,
}

impl From<TrendRow> for crate::TrendPoint {
    fn from(r: TrendRow) -> crate::TrendPoint {
        let n = |x: i64| u64::try_from(x).unwrap_or(0);
        crate::TrendPoint {
            run_id: r.run_id,
            at: r.at,
            domains: n(r.domains),
            average_score: (r.scored > 0).then(|| r.score_sum as f64 / r.scored as f64),
            with_dmarc: n(r.with_dmarc),
            at_reject: n(r.at_reject),
            relay_blocked: n(r.relay_blocked),
            relay_open: n(r.relay_open),
            with_critical: n(r.with_critical),
        }
    }
}

/// The methods of the fleet pages (see [`impl_store!`](super::impl_store)).
macro_rules! fleet_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            /// Writes `rows` into `domain_latest`, each replacing the domain's row only when it
            /// is as new or newer (by audited_at, then result id).
            async fn upsert_latest(
                tx: &mut sqlx::Transaction<'static, $db>,
                rows: &[LatestRow<'_>],
            ) -> Result<(), StoreError> {
                for chunk in rows.chunks(LATEST_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO domain_latest ({LATEST_COLUMNS}) "
                    ));
                    q.push_values(chunk, |mut b, (domain, id, at, score, f)| {
                        b.push_bind(*domain)
                            .push_bind(*id)
                            .push_bind(*at)
                            .push_bind(*score)
                            .push_bind(f.dmarc_policy.clone())
                            .push_bind(f.lacks_dmarc)
                            .push_bind(f.relay.clone());
                        for n in f.counts {
                            b.push_bind(n);
                        }
                        b.push_bind(f.worst);
                        for a in f.areas {
                            b.push_bind(a);
                        }
                        b.push_bind(f.unreadable).push_bind(f.checks.clone());
                    });
                    let updates: Vec<String> = LATEST_COLUMNS
                        .split(", ")
                        .skip(1)
                        .map(|c| format!("{c} = excluded.{c}"))
                        .collect();
                    q.push(format!(
                        " ON CONFLICT (domain) DO UPDATE SET {} \
                         WHERE excluded.audited_at > domain_latest.audited_at \
                         OR (excluded.audited_at = domain_latest.audited_at \
                         AND excluded.result_id >= domain_latest.result_id)",
                        updates.join(", ")
                    ));
                    q.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Reads the newest result of each domain recorded before schema version 9 into
            /// `domain_latest`, once (the `domain_latest` setting the migration wrote asks for
            /// it, and goes when it is done). A report that does not decode is `unreadable`.
            pub(crate) async fn fill_latest(&self) -> Result<(), StoreError> {
                let pending: Option<String> =
                    sqlx::query_scalar("SELECT value FROM settings WHERE key = 'domain_latest'")
                        .fetch_optional(&self.pool)
                        .await?;
                if pending.is_none() {
                    return Ok(());
                }
                let mut after = String::new();
                loop {
                    let names: Vec<String> = sqlx::query_scalar(
                        "SELECT DISTINCT domain FROM results WHERE domain > $1 \
                         ORDER BY domain LIMIT $2",
                    )
                    .bind(&after)
                    .bind(LATEST_PER_STATEMENT as i64)
                    .fetch_all(&self.pool)
                    .await?;
                    let Some(last) = names.last() else {
                        break;
                    };
                    after = last.clone();
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "{RESULT_SELECT} WHERE r.domain IN "
                    ));
                    q.push_tuples(&names, |mut b, n| {
                        b.push_bind(n.as_str());
                    });
                    q.push(
                        " AND NOT EXISTS (SELECT 1 FROM results n WHERE n.domain = r.domain \
                         AND (n.audited_at > r.audited_at \
                         OR (n.audited_at = r.audited_at AND n.id > r.id)))",
                    );
                    let rows: Vec<ResultRow> = q.build_query_as().fetch_all(&self.pool).await?;
                    let read: Vec<(i64, String, Time, Option<i64>, Facts)> = rows
                        .into_iter()
                        .map(|row| {
                            let (id, domain, at, score) =
                                (row.id, row.domain.clone(), row.audited_at, row.score);
                            let facts = match into_results(vec![row]) {
                                Ok(mut r) => Facts::of(&r.remove(0).1.report),
                                Err(_) => Facts::unreadable(),
                            };
                            (id, domain, at, score, facts)
                        })
                        .collect();
                    let latest: Vec<LatestRow<'_>> = read
                        .iter()
                        .map(|(id, d, at, score, f)| (d.as_str(), *id, *at, *score, f.clone()))
                        .collect();
                    let mut tx = self.write_tx().await?;
                    Self::upsert_latest(&mut tx, &latest).await?;
                    tx.commit().await?;
                }
                sqlx::query("DELETE FROM settings WHERE key = 'domain_latest'")
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn fleet_page(&self, query: &FleetQuery) -> Result<FleetPage, StoreError> {
                let limit = check_limit(query.limit)?;
                let offset = check_limit(query.offset)?;
                // The totals and the page's names at once, on two connections; the names
                // first (the sort carries only its keys), then their lines.
                let mut totals_q = sqlx::QueryBuilder::<$db>::new(totals_select());
                push_fleet_from(&mut totals_q, query)?;
                let mut names_q = sqlx::QueryBuilder::<$db>::new("SELECT d.name");
                push_fleet_from(&mut names_q, query)?;
                names_q.push(order_by(query.sort, query.descending));
                names_q.push(" LIMIT ").push_bind(limit);
                names_q.push(" OFFSET ").push_bind(offset);
                let (totals, names): (TotalsRow, Vec<String>) = tokio::try_join!(
                    totals_q.build_query_as().fetch_one(&self.pool),
                    names_q.build_query_scalar().fetch_all(&self.pool),
                )?;
                let mut lines: Vec<FleetLine> = Vec::with_capacity(names.len());
                for chunk in names.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(line_select());
                    push_lines_from(&mut q, query.now);
                    q.push(" WHERE d.name IN ");
                    q.push_tuples(chunk, |mut b, n| {
                        b.push_bind(n.as_str());
                    });
                    let rows: Vec<LineRow> = q.build_query_as().fetch_all(&self.pool).await?;
                    lines.extend(rows.into_iter().map(FleetLine::from));
                }
                let position: HashMap<&str, usize> =
                    names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
                lines.sort_by_key(|l| position.get(l.name.as_str()).copied());
                Ok(FleetPage {
                    lines,
                    totals: totals.into(),
                })
            }

            async fn trend(
                &self,
                scope: Option<&[String]>,
                customer: Option<&str>,
                since: Time,
            ) -> Result<Vec<TrendPoint>, StoreError> {
                // Finished runs' totals, computed once.
                let missing: Vec<i64> = sqlx::query_scalar(
                    "SELECT u.id FROM runs u WHERE u.status <> 'running' AND u.started_at >= $1 \
                     AND NOT EXISTS (SELECT 1 FROM run_totals t WHERE t.run_id = u.id) \
                     AND EXISTS (SELECT 1 FROM results r WHERE r.run_id = u.id) ORDER BY u.id",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                for run in missing {
                    let mut tx = self.write_tx().await?;
                    sqlx::query(&format!(
                        "INSERT INTO run_totals (run_id, customer, {}) \
                         SELECT r.run_id, COALESCE(c.name, ''), {} FROM results r \
                         LEFT JOIN domains d ON d.name = r.domain \
                         LEFT JOIN customers c ON c.id = d.customer_id \
                         WHERE r.run_id = $1 GROUP BY r.run_id, COALESCE(c.name, '') \
                         ON CONFLICT (run_id, customer) DO NOTHING",
                        TREND_COLUMNS.join(", "),
                        trend_sums()
                    ))
                    .bind(run)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                }
                let sums: Vec<String> = TREND_COLUMNS
                    .iter()
                    .map(|c| format!("{} AS {c}", int(&format!("SUM(t.{c})"))))
                    .collect();
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT t.run_id, u.started_at AS at, {} FROM run_totals t \
                     JOIN runs u ON u.id = t.run_id WHERE u.started_at >= ",
                    sums.join(", ")
                ));
                q.push_bind(since);
                push_scope(&mut q, "t.customer", scope);
                if let Some(c) = customer {
                    q.push(" AND t.customer = ").push_bind(c.trim());
                }
                q.push(" GROUP BY t.run_id, u.started_at");
                let mut rows: Vec<TrendRow> = q.build_query_as().fetch_all(&self.pool).await?;
                // Running runs, read as they stand (their results by the run's index).
                let running: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM runs WHERE status = 'running' AND started_at >= $1",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                if !running.is_empty() {
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT r.run_id, u.started_at AS at, {} FROM results r \
                         JOIN runs u ON u.id = r.run_id \
                         LEFT JOIN domains d ON d.name = r.domain \
                         LEFT JOIN customers c ON c.id = d.customer_id WHERE r.run_id IN ",
                        trend_sums()
                    ));
                    q.push_tuples(&running, |mut b, id| {
                        b.push_bind(*id);
                    });
                    push_scope(&mut q, "c.name", scope);
                    if let Some(c) = customer {
                        q.push(" AND c.name = ").push_bind(c.trim());
                    }
                    q.push(" GROUP BY r.run_id, u.started_at");
                    rows.extend(q.build_query_as::<TrendRow>().fetch_all(&self.pool).await?);
                }
                let mut points: Vec<TrendPoint> = rows.into_iter().map(TrendPoint::from).collect();
                points.sort_by_key(|p| (p.at, p.run_id));
                Ok(points)
            }

            async fn customer_lines(
                &self,
                scope: Option<&[String]>,
                now: Time,
            ) -> Result<Vec<CustomerLine>, StoreError> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "{}, c.name AS customer FROM customers c \
                     JOIN domains d ON d.customer_id = c.id \
                     LEFT JOIN domain_latest l ON l.domain = d.name",
                    totals_select()
                ));
                push_checklist_join(&mut q, now);
                q.push(" WHERE 1 = 1");
                push_scope(&mut q, "c.name", scope);
                q.push(" GROUP BY c.name ORDER BY c.name");
                let rows: Vec<CustomerRow> = q.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(CustomerLine::from).collect())
            }
        }
    };
}

/// A row of the customers' totals.
#[derive(sqlx::FromRow)]
pub(crate) struct CustomerRow {
    customer: String,
    #[sqlx(flatten)]
    totals: TotalsRow,
}

impl From<CustomerRow> for crate::CustomerLine {
    fn from(r: CustomerRow) -> crate::CustomerLine {
        crate::CustomerLine {
            name: r.customer,
            totals: r.totals.into(),
        }
    }
}

pub(crate) use fleet_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_report() {
        let r = serde_json::json!({
            "dmarc": {"policy": "none"},
            "relay": {"verdict": "blocked"},
            "findings": [
                {"id": "SPF-SOFTFAIL", "severity": "high", "area": "spf"},
                {"id": "DKIM-MISSING", "severity": "high", "area": "dkim"},
                {"id": "DMARC-POLICY-NONE", "severity": "medium", "area": "dmarc"},
                {"id": "DNS-LOOKUP-FAILED", "severity": "info", "area": "spf"},
                {"id": "X", "severity": "bogus", "area": "spf"}
            ]
        });
        let f = Facts::of(&r);
        assert_eq!(f.dmarc_policy.as_deref(), Some("none"));
        assert_eq!(f.relay, "blocked");
        assert!(!f.lacks_dmarc && !f.unreadable);
        assert_eq!(f.counts, [0, 2, 1, 0, 1]);
        assert_eq!(f.worst, 4);
        assert_eq!(f.areas, [3, 4, 4, 0, 0, 0, 0]);
        assert_eq!(
            f.checks,
            " SPF-SOFTFAIL DKIM-MISSING DMARC-POLICY-NONE DNS-LOOKUP-FAILED X "
        );
        assert!(!is_check_id("A B") && !is_check_id("A%") && !is_check_id(""));

        let open = serde_json::json!({
            "relay": {"verdict": "inconclusive"},
            "findings": [
                {"id": "RELAY-OPEN", "severity": "critical", "area": "connectors"},
                {"id": "DMARC-MISSING", "severity": "critical", "area": "dmarc"}
            ]
        });
        let f = Facts::of(&open);
        assert_eq!(
            (f.relay.as_str(), f.lacks_dmarc, f.worst),
            ("open", true, 5)
        );
        assert_eq!(Facts::of(&serde_json::json!({})).relay, "not_tested");
        assert!(Facts::of(&serde_json::json!(null)).unreadable);
    }

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(like_pattern(" Ex_a%m\\ "), "%ex\\_a\\%m\\\\%");
    }

    #[test]
    fn orders_end_with_the_name() {
        assert_eq!(order_by(FleetSort::Name, false), " ORDER BY d.name ASC");
        assert_eq!(order_by(FleetSort::Name, true), " ORDER BY d.name DESC");
        assert_eq!(
            order_by(FleetSort::Score, true),
            " ORDER BY l.score DESC NULLS LAST, d.name ASC"
        );
    }
}
