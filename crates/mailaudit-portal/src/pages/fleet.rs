//! `/`: the fleet overview, per customer and per domain (`?customer=NAME` shows one customer).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use mailaudit_core::checks::Severity;
use maud::{Markup, html};
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::html::{datetime, domain_href, layout, query_value};
use mailaudit_app::stored::{self, DomainSummary};

/// The query string of `/`.
#[derive(Debug, Default, Deserialize)]
pub struct FleetQuery {
    /// Show only this customer's domains (empty: all).
    pub customer: Option<String>,
}

/// `GET /`.
pub async fn page(
    State(p): State<Portal>,
    caller: Caller,
    query: Result<Query<FleetQuery>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let customer = query
        .ok()
        .and_then(|Query(q)| q.customer)
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let reads = p.reads(&caller);
    let customers = reads.customers().await?;
    let queued = reads.queued_runs().await?;
    let lines = reads.fleet(customer.as_deref()).await?;
    let t = stored::totals(&lines);

    let title = match &customer {
        Some(c) => format!("Customer {c}"),
        None => "Fleet".to_string(),
    };
    let avg = t
        .average_score
        .map_or("–".to_string(), |s| format!("{s}/100"));
    let bad_if = |n: usize| if n > 0 { "bad" } else { "" };
    // Per customer (by name), then the domains without one.
    let mut groups: Vec<(Option<&str>, Vec<&DomainSummary>)> = Vec::new();
    for l in &lines {
        let key = l.customer.as_deref();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(l),
            None => groups.push((key, vec![l])),
        }
    }
    groups.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });

    let b = html! {
        h1 { (title) } "\n"
        form method="get" action="/" class="filter" {
            label {
                "Customer "
                select name="customer" id="customer-filter" {
                    option value="" { "All customers" }
                    @for c in &customers {
                        option value=(c.name)
                            selected[customer.as_deref() == Some(c.name.as_str())] { (c.name) }
                    }
                }
            }
            " "
            button type="submit" { "Show" }
        }
        "\n"
        @if !queued.is_empty() {
            section id="runs-in-progress" {
                h2 { "Distributed audits in progress" }
                @for q in &queued {
                    p class="run-progress" id={ "run-" (q.run.id) } {
                        "Run " (q.run.id) " (started " (datetime(q.run.started_at)) "): "
                        strong { (q.domains_done) } " of " (q.domains) " domains recorded, "
                        (q.chunks_done) " of " (q.chunks) " chunks"
                        @if q.chunks_expired > 0 {
                            ", " (q.chunks_expired) " to audit again (their worker stopped)"
                        }
                        " " progress max=(q.domains.max(1)) value=(q.domains_done) {}
                        br;
                        @if q.workers.is_empty() {
                            span class="muted" { "No worker holds a chunk: start " code { "mailaudit worker" } "." }
                        } @else {
                            span class="muted" { "Workers: " (q.workers.join(", ")) }
                        }
                    }
                }
            }
            "\n"
        }
        ul class="totals" id="totals" {
            li { strong id="t-domains" { (t.domains) } " domains (" (t.audited) " audited)" }
            li { strong id="t-average" { (avg) } " average score" }
            li class=(bad_if(t.without_dmarc)) {
                strong id="t-no-dmarc" { (t.without_dmarc) } " without DMARC"
            }
            li { strong id="t-dmarc-none" { (t.dmarc_none) } " with DMARC p=none" }
            li class=(bad_if(t.direct_send_open)) {
                strong id="t-direct-send" { (t.direct_send_open) } " open to Direct Send"
            }
            li { strong id="t-critical" { (t.with_critical) } " with a critical finding" }
            li {
                strong id="t-checklist" { (t.checklist_done) "/" (t.checklist_total) }
                " checklist items done"
            }
        }
        "\n"
        @if lines.is_empty() {
            p {
                "No domains yet. Add them with " code { "mailaudit domain add" } " or "
                code { "mailaudit import" } ", then run " code { "mailaudit audit" } "."
            }
            "\n"
        }
        @for (cust, group) in &groups {
            section class="customer" {
                h2 {
                    @match cust {
                        Some(c) => { a href={ "/?customer=" (query_value(c)) } { (c) } " " }
                        None => "No customer ",
                    }
                    span class="muted" { (group.len()) " domains" }
                }
                "\n"
                table class="fleet" {
                    thead {
                        tr {
                            th { "Domain" } th { "Score" } th { "DMARC" } th { "Direct Send" }
                            th title="critical" { "Crit" } th { "High" } th { "Med" } th { "Low" }
                            th { "Checklist" } th { "Last audited" }
                        }
                    }
                    tbody { "\n" @for l in group { (row(l)) } }
                }
            }
            "\n"
        }
    };
    Ok(Html(layout(&title, b)))
}

fn row(l: &DomainSummary) -> Markup {
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
            @for (i, sev) in Severity::ALL.iter().take(4).enumerate() {
                @let n = l.counts[i];
                @if n > 0 {
                    td class={ "n sev-" (sev.as_str()) } { (n) }
                } @else {
                    td class="n muted" { "0" }
                }
            }
            td class="checklist" { (l.checklist_done) "/" (l.checklist_total) }
            td class="when" { (audited) }
        }
        "\n"
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
