//! `/`: the fleet, one line per domain, paged, sorted and filtered by the store (worst first
//! by default), with the totals of what the filters match and the customers ranked worst
//! first; `/customers`: every customer ranked. `/fleet.csv` and `/fleet.json` export what a
//! fleet page's filters match, every page of it.
//!
//! Every query parameter is checked: a value the page does not know is a 400 naming it, never
//! ignored and never a 500. An empty value is no filter (what an HTML form sends for "All").

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use mailaudit_core::checks::CheckId;
use mailaudit_store::{
    AREAS, CustomerLine, DmarcFilter, FleetLine, FleetQuery, FleetSort, FleetTotals,
    RELAY_VERDICTS, SEVERITIES, rank_severity, severity_rank,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::html::{check_href, csv_field, datetime, domain_href, layout, query_value, seg};

/// Lines per page unless `per` says otherwise.
pub const PER_PAGE: i64 = 50;
/// The most lines a page lists.
pub const MAX_PER_PAGE: i64 = 500;
/// The period of the fleet page's progress chart, in days.
const PROGRESS_DAYS: i64 = 365;
/// Customers on the fleet page's ranking (the rest on `/customers`).
const RANKED: usize = 10;
/// The most lines an export writes.
const MAX_EXPORT: i64 = 1_000_000;

/// The areas' headings, [`AREAS`] order: (abbreviation for a narrow column, name); the fleet
/// table, its filter and the customer report.
pub(crate) const AREA_HEADINGS: [(&str, &str); 7] = [
    ("DMARC", "DMARC"),
    ("SPF", "SPF"),
    ("DKIM", "DKIM"),
    ("Conn.", "Connectors and Direct Send"),
    ("Spoof", "Anti-spoofing"),
    ("Imp.", "Impersonation protection"),
    ("Transp.", "Transport (MX, TLS, MTA-STS, TLS-RPT)"),
];

/// The query string of `/` (and the exports), as sent: every value checked by [`Params::query`].
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Params {
    /// One customer's domains.
    pub customer: Option<String>,
    /// Domain names containing this text.
    pub q: Option<String>,
    /// A finding at least this severe.
    pub severity: Option<String>,
    /// A finding in this area.
    pub area: Option<String>,
    /// This finding in the newest audit.
    pub check: Option<String>,
    /// The Direct Send verdict.
    pub relay: Option<String>,
    /// The DMARC state.
    pub dmarc: Option<String>,
    /// An overdue checklist item.
    pub overdue: Option<String>,
    /// `never` (never audited) or `yes` (audited).
    pub audited: Option<String>,
    /// The order.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub dir: Option<String>,
    /// The page, from 1.
    pub page: Option<String>,
    /// Lines per page.
    pub per: Option<String>,
}

/// A parameter's value, trimmed, None when empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A 400 for a value `name` does not take.
fn bad(name: &str, value: &str, expected: &str) -> AppError {
    AppError::BadRequest(format!(
        "The parameter {name}={value:?} is not understood: {expected}."
    ))
}

/// One of `words`, or a 400.
fn one_of<'a>(name: &str, value: &'a str, words: &[&str]) -> Result<&'a str, AppError> {
    if words.contains(&value) {
        Ok(value)
    } else {
        Err(bad(name, value, &format!("one of {}", words.join(", "))))
    }
}

/// A whole number in `range`, or a 400.
fn number(name: &str, value: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64, AppError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            bad(
                name,
                value,
                &format!("a whole number from {} to {}", range.start(), range.end()),
            )
        })
}

/// Free text (a customer name, a search): at most 253 characters, no control characters.
fn text<'a>(name: &str, value: &'a str) -> Result<&'a str, AppError> {
    if value.chars().count() > 253 || value.chars().any(char::is_control) {
        return Err(bad(
            name,
            value,
            "text of at most 253 characters without control characters",
        ));
    }
    Ok(value)
}

impl Params {
    /// The store's query for these parameters (its scope set by the caller's reads), or a 400
    /// naming the first value that is not understood.
    pub fn query(&self) -> Result<FleetQuery, AppError> {
        let mut q = FleetQuery {
            limit: PER_PAGE,
            now: mailaudit_store::now(),
            ..FleetQuery::default()
        };
        if let Some(c) = given(&self.customer) {
            q.customer = Some(text("customer", c)?.to_string());
        }
        if let Some(s) = given(&self.q) {
            q.search = Some(text("q", s)?.to_string());
        }
        if let Some(s) = given(&self.severity) {
            q.min_severity = severity_rank(one_of("severity", s, &SEVERITIES)?);
        }
        if let Some(a) = given(&self.area) {
            let a = one_of("area", a, &AREAS)?;
            q.area = AREAS.iter().position(|x| *x == a);
        }
        if let Some(c) = given(&self.check) {
            let id = c
                .parse::<CheckId>()
                .map_err(|_| bad("check", c, "a check's ID or code (see /checks)"))?;
            q.check = Some(id.as_str().to_string());
        }
        if let Some(r) = given(&self.relay) {
            q.relay = Some(one_of("relay", r, &RELAY_VERDICTS)?.to_string());
        }
        if let Some(d) = given(&self.dmarc) {
            let words = DmarcFilter::ALL.map(DmarcFilter::as_str);
            q.dmarc = DmarcFilter::parse(one_of("dmarc", d, &words)?);
        }
        if let Some(o) = given(&self.overdue) {
            q.overdue = match o {
                "1" | "yes" | "on" | "true" => true,
                "0" | "no" | "off" | "false" => false,
                _ => return Err(bad("overdue", o, "yes or no")),
            };
        }
        if let Some(a) = given(&self.audited) {
            q.never_audited = Some(one_of("audited", a, &["never", "yes"])? == "never");
        }
        if let Some(s) = given(&self.sort) {
            let words = FleetSort::ALL.map(FleetSort::as_str);
            q.sort = FleetSort::parse(one_of("sort", s, &words)?).unwrap_or_default();
        }
        if let Some(d) = given(&self.dir) {
            q.descending = one_of("dir", d, &["asc", "desc"])? == "desc";
        }
        if let Some(per) = given(&self.per) {
            q.limit = number("per", per, 1..=MAX_PER_PAGE)?;
        }
        if let Some(page) = given(&self.page) {
            let page = number("page", page, 1..=1_000_000)?;
            q.offset = (page - 1) * q.limit;
        }
        Ok(q)
    }

    /// The URL of the fleet page with these parameters, `changes` applied (`None` removes
    /// one); empty parameters are left out.
    fn href(&self, changes: &[(&str, Option<&str>)]) -> String {
        self.href_to("/", changes)
    }

    /// The same parameters on another path (the exports).
    fn href_to(&self, path: &str, changes: &[(&str, Option<&str>)]) -> String {
        let mut pairs = Vec::new();
        for (name, value) in self.pairs() {
            let value = match changes.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => *v,
                None => value,
            };
            if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
                pairs.push(format!("{name}={}", query_value(v)));
            }
        }
        if pairs.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", pairs.join("&"))
        }
    }

    /// Every parameter by name, in URL order.
    fn pairs(&self) -> [(&'static str, Option<&str>); 13] {
        [
            ("customer", self.customer.as_deref()),
            ("q", self.q.as_deref()),
            ("severity", self.severity.as_deref()),
            ("area", self.area.as_deref()),
            ("check", self.check.as_deref()),
            ("relay", self.relay.as_deref()),
            ("dmarc", self.dmarc.as_deref()),
            ("overdue", self.overdue.as_deref()),
            ("audited", self.audited.as_deref()),
            ("sort", self.sort.as_deref()),
            ("dir", self.dir.as_deref()),
            ("page", self.page.as_deref()),
            ("per", self.per.as_deref()),
        ]
    }

    /// Whether a filter other than the customer is set.
    fn filtered_beyond_customer(&self) -> bool {
        self.pairs()[1..9]
            .iter()
            .any(|(_, v)| given(&v.map(str::to_string)).is_some())
    }

    /// Whether any filter is set (not the order or the page).
    fn filtered(&self) -> bool {
        self.pairs()[..9]
            .iter()
            .any(|(_, v)| given(&v.map(str::to_string)).is_some())
    }
}

/// The query string, or a 400 for one that is not a query string (a parameter given twice).
fn params(query: Result<Query<Params>, QueryRejection>) -> Result<Params, AppError> {
    query.map(|Query(p)| p).map_err(|e| {
        AppError::BadRequest(format!(
            "The query string is not understood: {}.",
            e.body_text()
        ))
    })
}

/// `GET /`.
pub async fn page(
    State(p): State<Portal>,
    caller: Caller,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let params = params(query)?;
    let q = params.query()?;
    let reads = p.reads(&caller);
    // The page's reads are independent: at once, each on its own connection.
    let trend = async {
        // The progress of the fleet (or of the customer shown) over the last year, unfiltered.
        if params.filtered_beyond_customer() {
            Ok(Vec::new())
        } else {
            reads
                .trend(q.customer.as_deref(), q.now - PROGRESS_DAYS * 86_400)
                .await
        }
    };
    let (customers, queued, page, trend) = tokio::try_join!(
        reads.customer_lines(q.now),
        reads.queued_runs(),
        reads.fleet_page(q.clone()),
        trend,
    )?;
    let t = &page.totals;
    let reads_all = reads.is_all();

    let title = match &q.customer {
        Some(c) => format!("Customer {c}"),
        None => "Fleet".to_string(),
    };
    let first = q.offset + 1;
    let last = q.offset + page.lines.len() as i64;
    let pages = (t.domains as i64 + q.limit - 1) / q.limit;
    let current = q.offset / q.limit + 1;

    let b = html! {
        h1 { (title) } "\n"
        @if let Some(c) = &q.customer {
            p {
                a id="customer-report" href=(report_href(c)) { "The customer report (to print or send)" }
                " " (super::runs::audit_button(&caller, "customer", c, "Audit this customer now"))
            }
        } @else if reads_all {
            p { (super::runs::audit_button(&caller, "fleet", "yes", "Audit the fleet now")) }
        }
        (filter_form(&params, &q, &customers))
        "\n"
        @if !queued.is_empty() {
            section id="runs-in-progress" {
                h2 { "Audits in progress" }
                @for r in &queued {
                    p class="run-progress" id={ "run-" (r.run.id) } {
                        a href={ "/runs/" (r.run.id) } { "Run " (r.run.id) } " (started " (datetime(r.run.started_at)) "): "
                        strong { (r.domains_done) } " of " (r.domains) " domains recorded, "
                        (r.chunks_done) " of " (r.chunks) " chunks"
                        @if r.chunks_expired > 0 {
                            ", " (r.chunks_expired) " to audit again (their worker stopped)"
                        }
                        " " progress max=(r.domains.max(1)) value=(r.domains_done) {}
                        br;
                        @if r.workers.is_empty() {
                            span class="muted" { "No worker holds a chunk: start " code { "mailaudit worker" } "." }
                        } @else {
                            span class="muted" { "Workers: " (r.workers.join(", ")) }
                        }
                    }
                }
            }
            "\n"
        }
        (totals(t))
        "\n"
        @if trend.len() > 1 {
            section id="progress" {
                h2 { "Progress over the last year" }
                (crate::charts::line_chart("progress", "Progress over the last year", &progress_series(&trend), Some(100.0), ""))
            }
            "\n"
        }
        @if q.customer.is_none() && !params.filtered() && customers.len() > 1 {
            (ranking(&customers, RANKED, &params))
            "\n"
        }
        @if page.lines.is_empty() {
            @if params.filtered() {
                p id="no-match" { "No domain matches these filters. " a href="/" { "Show every domain" } "." }
            } @else if t.domains > 0 {
                p id="no-match" { "No domain on this page. " a href=(params.href(&[("page", None)])) { "First page" } "." }
            } @else {
                p {
                    "No domains yet. Add them with " code { "mailaudit domain add" } " or "
                    code { "mailaudit import" } ", then run " code { "mailaudit audit" } "."
                }
            }
            "\n"
        } @else {
            section id="domains" {
                h2 {
                    "Domains " span class="muted" id="shown" {
                        (first) "–" (last) " of " (t.domains)
                    }
                }
                "\n"
                table class="fleet" {
                    thead { (headings(&params, &q)) }
                    tbody { "\n" @for l in &page.lines { (row(l)) } }
                }
                "\n"
                (pager(&params, current, pages))
                p class="exports" {
                    "Export what these filters match: "
                    a id="export-csv" href=(params.href_to("/fleet.csv", &[("page", None), ("per", None)])) { "CSV" }
                    " · "
                    a id="export-json" href=(params.href_to("/fleet.json", &[("page", None), ("per", None)])) { "JSON" }
                }
            }
            "\n"
        }
    };
    Ok(Html(layout(&title, b)))
}

/// The progress chart's lines: the shares of the audited domains with DMARC, at `p=reject`
/// and with Direct Send blocked, and the average score, per run.
pub(crate) fn progress_series(trend: &[mailaudit_store::TrendPoint]) -> Vec<crate::charts::Series> {
    let share = |f: fn(&mailaudit_store::TrendPoint) -> u64| -> Vec<(i64, f64)> {
        trend
            .iter()
            .filter(|p| p.domains > 0)
            .map(|p| (p.at, f(p) as f64 * 100.0 / p.domains as f64))
            .collect()
    };
    vec![
        crate::charts::Series {
            label: "% with DMARC".into(),
            points: share(|p| p.with_dmarc),
        },
        crate::charts::Series {
            label: "% at p=reject".into(),
            points: share(|p| p.at_reject),
        },
        crate::charts::Series {
            label: "% Direct Send blocked".into(),
            points: share(|p| p.relay_blocked),
        },
        crate::charts::Series {
            label: "average score".into(),
            points: trend
                .iter()
                .filter_map(|p| p.average_score.map(|s| (p.at, s)))
                .collect(),
        },
    ]
}

/// The filters, as a form that sends them back to `/` (the order and page size kept).
fn filter_form(params: &Params, q: &FleetQuery, customers: &[CustomerLine]) -> Markup {
    let chosen = |v: &Option<String>, w: &str| given(v) == Some(w);
    html! {
        form method="get" action="/" class="filter" id="filters" {
            label { "Search " input type="search" name="q" value=[given(&params.q)] placeholder="domain name"; }
            " "
            label {
                "Customer "
                select name="customer" id="customer-filter" {
                    option value="" { "All customers" }
                    @for c in customers {
                        option value=(c.name)
                            selected[q.customer.as_deref() == Some(c.name.as_str())] { (c.name) }
                    }
                }
            }
            " "
            label {
                "Severity "
                select name="severity" {
                    option value="" { "Any" }
                    @for s in SEVERITIES {
                        option value=(s) selected[chosen(&params.severity, s)] { (s) " or worse" }
                    }
                }
            }
            " "
            label {
                "Area "
                select name="area" {
                    option value="" { "Any" }
                    @for (a, (_, name)) in AREAS.iter().zip(AREA_HEADINGS) {
                        option value=(a) selected[chosen(&params.area, a)] { (name) }
                    }
                }
            }
            " "
            label {
                "Direct Send "
                select name="relay" {
                    option value="" { "Any" }
                    @for r in RELAY_VERDICTS {
                        option value=(r) selected[chosen(&params.relay, r)] { (r.replace('_', " ")) }
                    }
                }
            }
            " "
            label {
                "DMARC "
                select name="dmarc" {
                    option value="" { "Any" }
                    @for d in DmarcFilter::ALL {
                        @let w = d.as_str();
                        option value=(w) selected[chosen(&params.dmarc, w)] {
                            @if w == "missing" { "missing" } @else { "p=" (w) }
                        }
                    }
                }
            }
            " "
            label {
                "Audited "
                select name="audited" {
                    option value="" { "Any" }
                    option value="yes" selected[chosen(&params.audited, "yes")] { "audited" }
                    option value="never" selected[chosen(&params.audited, "never")] { "never audited" }
                }
            }
            " "
            label { input type="checkbox" name="overdue" value="yes" checked[q.overdue]; " overdue checklist" }
            @if let Some(c) = given(&params.check) {
                input type="hidden" name="check" value=(c);
            }
            @if let Some(s) = given(&params.sort) { input type="hidden" name="sort" value=(s); }
            @if let Some(d) = given(&params.dir) { input type="hidden" name="dir" value=(d); }
            @if let Some(p) = given(&params.per) { input type="hidden" name="per" value=(p); }
            " "
            button type="submit" { "Show" }
            @if params.filtered() {
                " " a href=(params.href(&[
                    ("customer", None), ("q", None), ("severity", None), ("area", None),
                    ("check", None), ("relay", None), ("dmarc", None), ("overdue", None),
                    ("audited", None), ("page", None),
                ])) id="clear-filters" { "Clear filters" }
            }
            @if let Some(c) = given(&params.check) {
                p class="muted" { "Only domains with " a href=(check_href(c)) { (c) } " in their newest audit." }
            }
        }
    }
}

/// The totals of what the filters match.
fn totals(t: &FleetTotals) -> Markup {
    let avg = t
        .average_score
        .map_or("–".to_string(), |s| format!("{s}/100"));
    let bad_if = |n: u64| if n > 0 { "bad" } else { "" };
    html! {
        ul class="totals" id="totals" {
            li { strong id="t-domains" { (t.domains) } " domains (" (t.audited) " audited)" }
            li { strong id="t-average" { (avg) } " average score" }
            li class=(bad_if(t.without_dmarc)) {
                strong id="t-no-dmarc" { (t.without_dmarc) } " without DMARC"
            }
            li { strong id="t-dmarc-none" { (t.dmarc_none) } " with DMARC p=none" }
            li { strong id="t-dmarc-reject" { (t.dmarc_reject) } " at p=reject" }
            li class=(bad_if(t.direct_send_open)) {
                strong id="t-direct-send" { (t.direct_send_open) } " open to Direct Send"
            }
            li { strong id="t-critical" { (t.with_critical) } " with a critical finding" }
            li {
                strong id="t-checklist" { (t.checklist_done) "/" (t.checklist_total) }
                " checklist items done"
            }
            li class=(bad_if(t.overdue)) {
                strong id="t-overdue" { (t.overdue) } " with an overdue item"
            }
        }
    }
}

/// Customers ranked worst first: the most domains with a critical finding, open to Direct Send,
/// without DMARC, then the lowest average score.
pub(crate) fn rank(customers: &mut [CustomerLine]) {
    customers.sort_by(|a, b| {
        let key = |c: &CustomerLine| {
            (
                std::cmp::Reverse(c.totals.with_critical),
                std::cmp::Reverse(c.totals.direct_send_open),
                std::cmp::Reverse(c.totals.without_dmarc),
                c.totals.average_score.unwrap_or(u8::MAX),
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
}

/// The ranking table of the first `n` customers (all with `n` = their number).
fn ranking(customers: &[CustomerLine], n: usize, params: &Params) -> Markup {
    let mut ranked = customers.to_vec();
    rank(&mut ranked);
    html! {
        section id="customers" {
            h2 {
                "Customers, worst first "
                span class="muted" { (customers.len()) }
            }
            "\n"
            (customer_table(&ranked[..n.min(ranked.len())], params))
            @if ranked.len() > n {
                p { a href="/customers" { "Every customer (" (ranked.len()) ")" } }
            }
        }
    }
}

/// A table of customers with their totals and checklist progress.
fn customer_table(customers: &[CustomerLine], params: &Params) -> Markup {
    html! {
        table class="customers" {
            thead {
                tr {
                    th { "Customer" } th { "Domains" } th { "Average score" }
                    th title="domains with a critical finding" { "Critical" }
                    th title="domains open to Direct Send" { "Direct Send open" }
                    th title="domains without DMARC" { "No DMARC" }
                    th { "At p=reject" } th { "Checklist" } th { "Overdue" } th { "Report" }
                }
            }
            tbody {
                "\n"
                @for c in customers {
                    @let t = &c.totals;
                    tr data-customer=(c.name) {
                        td { a href=(params.href(&[("customer", Some(&c.name)), ("page", None)])) { (c.name) } }
                        td class="n" { (t.domains) }
                        td class="n" {
                            @match t.average_score {
                                Some(s) => span class={ "score " (score_class(s)) } { (s) },
                                None => span class="muted" { "–" },
                            }
                        }
                        td class={ "n" @if t.with_critical > 0 { " bad" } } { (t.with_critical) }
                        td class={ "n" @if t.direct_send_open > 0 { " bad" } } { (t.direct_send_open) }
                        td class={ "n" @if t.without_dmarc > 0 { " bad" } } { (t.without_dmarc) }
                        td class="n" { (t.dmarc_reject) }
                        td class="checklist" {
                            meter min="0" max=(t.checklist_total.max(1)) value=(t.checklist_done) {}
                            " " (t.checklist_done) "/" (t.checklist_total)
                        }
                        td class="n" { (t.overdue) }
                        td { a href=(report_href(&c.name)) { "Report" } }
                    }
                    "\n"
                }
            }
        }
    }
}

/// The path of a customer's report.
pub(crate) fn report_href(customer: &str) -> String {
    format!("/customers/{}/report", seg(customer))
}

/// `GET /customers`: every customer in the caller's scope, ranked worst first.
pub async fn customers(State(p): State<Portal>, caller: Caller) -> Result<Html<String>, AppError> {
    let lines = p
        .reads(&caller)
        .customer_lines(mailaudit_store::now())
        .await?;
    let n = lines.len();
    let b = html! {
        h1 { "Customers" } "\n"
        @if lines.is_empty() {
            p { "No customers yet. Add them with " code { "mailaudit customer add" } "." }
        } @else {
            (ranking(&lines, n, &Params::default()))
        }
    };
    Ok(Html(layout("Customers", b)))
}

/// The table's headings: each sortable column a link that sorts by it (again: reversed).
fn headings(params: &Params, q: &FleetQuery) -> Markup {
    let sorted = |label: &str, sort: FleetSort, title: Option<&str>| {
        let on = q.sort == sort;
        let dir = if on && !q.descending { "desc" } else { "asc" };
        let mark = match (on, q.descending) {
            (false, _) => "",
            (true, false) => " ▲",
            (true, true) => " ▼",
        };
        html! {
            th title=[title] aria-sort=[on.then_some(if q.descending { "descending" } else { "ascending" })] {
                a href=(params.href(&[("sort", Some(sort.as_str())), ("dir", Some(dir)), ("page", None)])) {
                    (label) (mark)
                }
            }
        }
    };
    html! {
        tr {
            (sorted("Domain", FleetSort::Name, None))
            (sorted("Customer", FleetSort::Customer, None))
            (sorted("Score", FleetSort::Score, None))
            th { "DMARC" } th { "Direct Send" }
            @for (abbr, name) in AREA_HEADINGS { th class="area" title=(name) { (abbr) } }
            (sorted("Findings", FleetSort::Worst, Some("critical, high, medium, low; worst first")))
            (sorted("Checklist", FleetSort::Progress, None))
            (sorted("Last audited", FleetSort::Audited, None))
        }
    }
}

/// Page links: first, previous, the page, next, last.
fn pager(params: &Params, current: i64, pages: i64) -> Markup {
    let page_href = |n: i64| params.href(&[("page", (n > 1).then(|| n.to_string()).as_deref())]);
    html! {
        @if pages > 1 {
            nav class="pager" id="pager" {
                @if current > 1 {
                    a href=(page_href(1)) rel="first" { "« First" } " "
                    a href=(page_href(current - 1)) rel="prev" id="prev" { "‹ Previous" } " "
                }
                span { "Page " (current) " of " (pages) } " "
                @if current < pages {
                    a href=(page_href(current + 1)) rel="next" id="next" { "Next ›" } " "
                    a href=(page_href(pages)) rel="last" { "Last »" }
                }
            }
        }
    }
}

fn row(l: &FleetLine) -> Markup {
    let relay_class = match l.relay.as_str() {
        "open" => "bad",
        "blocked" => "good",
        _ => "muted",
    };
    let audited = l.audited_at.map_or("never".to_string(), datetime);
    html! {
        tr data-domain=(l.name) {
            td {
                a class="domain" href=(domain_href(&l.name, "")) { (l.name) }
                @if l.parked { " " span class="tag" { "parked" } }
            }
            td { @if let Some(c) = &l.customer { (c) } }
            td class="score-cell" {
                @match (l.score, l.unreadable) {
                    (_, true) => span class="muted" { "unreadable" },
                    (Some(s), _) => span class={ "score " (score_class(s)) } { (s) },
                    (None, _) if l.audited_at.is_some() => span class="muted" { "n/a" },
                    (None, _) => span class="muted" { "not audited" },
                }
            }
            td {
                @match (&l.dmarc_policy, l.lacks_dmarc) {
                    (_, true) => span class="bad" { "missing" },
                    (Some(p), _) => span class=(if p == "reject" { "good" } else { "warn" }) {
                        "p=" (p)
                    },
                    (None, _) => span class="muted" { "–" },
                }
            }
            td { span class=(relay_class) { (l.relay.replace('_', " ")) } }
            @for rank in l.areas {
                @match rank_severity(rank).filter(|_| l.audited_at.is_some()) {
                    Some(sev) => td class={ "area sev-" (sev) } title=(sev) { (sev_abbr(sev)) },
                    None => td class="area muted" title="no finding" { "·" },
                }
            }
            td class="counts" {
                @for (i, n) in l.counts.iter().take(4).enumerate() {
                    @if *n > 0 {
                        span class={ "n sev-" (SEVERITIES[i]) } title=(SEVERITIES[i]) { (n) } " "
                    }
                }
            }
            td class="checklist" {
                (l.checklist_done) "/" (l.checklist_total)
                @if l.overdue { " " span class="bad" title="an open item is past its due time" { "overdue" } }
            }
            td class="when" { (audited) }
        }
        "\n"
    }
}

/// A severity in a narrow cell.
fn sev_abbr(sev: &str) -> &'static str {
    match sev {
        "critical" => "crit",
        "high" => "high",
        "medium" => "med",
        "low" => "low",
        _ => "info",
    }
}

/// `good` (80+), `warn` (50–79) or `bad`.
pub(crate) fn score_class(s: u8) -> &'static str {
    match s {
        80.. => "good",
        50..=79 => "warn",
        _ => "bad",
    }
}

/// The lines an export writes: every line the filters match (not only a page).
async fn export_lines(
    p: &Portal,
    caller: &Caller,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Vec<FleetLine>, AppError> {
    let mut q = params(query)?.query()?;
    q.offset = 0;
    q.limit = MAX_EXPORT;
    Ok(p.reads(caller).fleet_page(q).await?.lines)
}

/// `GET /fleet.csv`: what the fleet page's filters match, in its order, as CSV (RFC 4180; a
/// cell that a spreadsheet would read as a formula is prefixed with `'`).
pub async fn export_csv(
    State(p): State<Portal>,
    caller: Caller,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, AppError> {
    let lines = export_lines(&p, &caller, query).await?;
    let mut out = String::from(
        "domain,customer,parked,score,dmarc,direct_send,critical,high,medium,low,info,",
    );
    for a in AREAS {
        out.push_str(&format!("area_{a},"));
    }
    out.push_str("checklist_done,checklist_total,overdue,last_audited\r\n");
    for l in &lines {
        let dmarc = if l.lacks_dmarc {
            "missing".to_string()
        } else {
            l.dmarc_policy.clone().unwrap_or_default()
        };
        let mut cells = vec![
            l.name.clone(),
            l.customer.clone().unwrap_or_default(),
            l.parked.to_string(),
            l.score.map(|s| s.to_string()).unwrap_or_default(),
            dmarc,
            l.relay.clone(),
        ];
        cells.extend(l.counts.iter().map(u32::to_string));
        cells.extend(
            l.areas
                .iter()
                .map(|r| rank_severity(*r).unwrap_or("").to_string()),
        );
        cells.push(l.checklist_done.to_string());
        cells.push(l.checklist_total.to_string());
        cells.push(l.overdue.to_string());
        cells.push(l.audited_at.map(datetime).unwrap_or_default());
        let cells: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mailaudit-fleet.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

/// `GET /fleet.json`: the same lines as JSON (`{"domains": [...], "count": N}`).
pub async fn export_json(
    State(p): State<Portal>,
    caller: Caller,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, AppError> {
    let lines = export_lines(&p, &caller, query).await?;
    let domains: Vec<serde_json::Value> = lines.iter().map(line_json).collect();
    let body = serde_json::json!({ "count": domains.len(), "domains": domains });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

/// A fleet line as JSON: the areas and severities by name.
pub(crate) fn line_json(l: &FleetLine) -> serde_json::Value {
    let areas: serde_json::Map<String, serde_json::Value> = AREAS
        .iter()
        .zip(l.areas)
        .map(|(a, r)| ((*a).to_string(), rank_severity(r).into()))
        .collect();
    let findings: serde_json::Map<String, serde_json::Value> = SEVERITIES
        .iter()
        .zip(l.counts)
        .map(|(s, n)| ((*s).to_string(), n.into()))
        .collect();
    serde_json::json!({
        "domain": l.name,
        "customer": l.customer,
        "parked": l.parked,
        "audited_at": l.audited_at,
        "score": l.score,
        "dmarc_policy": l.dmarc_policy,
        "dmarc_missing": l.lacks_dmarc,
        "direct_send": l.relay,
        "findings": findings,
        "areas": areas,
        "checklist": {"done": l.checklist_done, "total": l.checklist_total, "overdue": l.overdue},
        "unreadable": l.unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(
        name: &str,
        critical: u64,
        open: u64,
        no_dmarc: u64,
        avg: Option<u8>,
    ) -> CustomerLine {
        CustomerLine {
            name: name.into(),
            totals: FleetTotals {
                with_critical: critical,
                direct_send_open: open,
                without_dmarc: no_dmarc,
                average_score: avg,
                ..FleetTotals::default()
            },
        }
    }

    #[test]
    fn customers_rank_worst_first() {
        let mut c = vec![
            customer("fine", 0, 0, 0, Some(95)),
            customer("weak", 0, 0, 0, Some(40)),
            customer("open", 0, 3, 0, Some(90)),
            customer("critical", 2, 0, 0, Some(90)),
            customer("no-dmarc", 0, 0, 1, Some(90)),
            customer("unaudited", 0, 0, 0, None),
        ];
        rank(&mut c);
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["critical", "open", "no-dmarc", "weak", "fine", "unaudited"]
        );
    }

    #[test]
    fn links_keep_the_other_parameters() {
        let p = Params {
            customer: Some("A & B".into()),
            sort: Some("name".into()),
            page: Some("3".into()),
            ..Params::default()
        };
        assert_eq!(
            p.href(&[("page", None)]),
            "/?customer=A%20%26%20B&sort=name"
        );
        assert_eq!(
            p.href(&[("sort", Some("score")), ("dir", Some("desc"))]),
            "/?customer=A%20%26%20B&sort=score&dir=desc&page=3"
        );
        assert_eq!(Params::default().href(&[]), "/");
        let q = p.query().unwrap();
        assert_eq!(
            (q.offset, q.limit, q.sort),
            (2 * PER_PAGE, PER_PAGE, FleetSort::Name)
        );
    }
}
