//! `/`: the fleet overview, per customer and per domain (`?customer=NAME` shows one customer).

use std::fmt::Write as _;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use mailaudit_core::checks::Severity;
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::html::{Esc, datetime, domain_href, layout, query_value};
use crate::stored::{self, DomainSummary};

/// The query string of `/`.
#[derive(Debug, Default, Deserialize)]
pub struct FleetQuery {
    /// Show only this customer's domains (empty: all).
    pub customer: Option<String>,
}

/// `GET /`.
pub async fn page(
    State(p): State<Portal>,
    query: Result<Query<FleetQuery>, QueryRejection>,
) -> Result<Html<String>, AppError> {
    let customer = query
        .ok()
        .and_then(|Query(q)| q.customer)
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let customers = p.store.customers().await?;
    let lines = stored::fleet(p.store.as_ref(), customer.as_deref()).await?;
    let t = stored::totals(&lines);

    let mut b = String::new();
    let title = match &customer {
        Some(c) => format!("Customer {c}"),
        None => "Fleet".to_string(),
    };
    let _ = writeln!(b, "<h1>{}</h1>", Esc(&title));
    b.push_str(
        "<form method=\"get\" action=\"/\" class=\"filter\"><label>Customer \
         <select name=\"customer\" id=\"customer-filter\"><option value=\"\">All customers</option>",
    );
    for c in &customers {
        let sel = if customer.as_deref() == Some(c.name.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            b,
            "<option value=\"{}\"{sel}>{}</option>",
            Esc(&c.name),
            Esc(&c.name)
        );
    }
    b.push_str("</select></label> <button type=\"submit\">Show</button></form>\n");

    let avg = t
        .average_score
        .map_or("–".to_string(), |s| format!("{s}/100"));
    let _ = writeln!(
        b,
        "<ul class=\"totals\" id=\"totals\">\
         <li><strong id=\"t-domains\">{}</strong> domains ({} audited)</li>\
         <li><strong id=\"t-average\">{avg}</strong> average score</li>\
         <li class=\"{}\"><strong id=\"t-no-dmarc\">{}</strong> without DMARC</li>\
         <li><strong id=\"t-dmarc-none\">{}</strong> with DMARC p=none</li>\
         <li class=\"{}\"><strong id=\"t-direct-send\">{}</strong> open to Direct Send</li>\
         <li><strong id=\"t-critical\">{}</strong> with a critical finding</li>\
         <li><strong id=\"t-checklist\">{}/{}</strong> checklist items done</li></ul>",
        t.domains,
        t.audited,
        if t.without_dmarc > 0 { "bad" } else { "" },
        t.without_dmarc,
        t.dmarc_none,
        if t.direct_send_open > 0 { "bad" } else { "" },
        t.direct_send_open,
        t.with_critical,
        t.checklist_done,
        t.checklist_total,
    );

    if lines.is_empty() {
        b.push_str(
            "<p>No domains yet. Add them with <code>mailaudit domain add</code> or \
             <code>mailaudit import</code>, then run <code>mailaudit audit</code>.</p>\n",
        );
    }
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
    for (cust, group) in groups {
        match cust {
            Some(c) => {
                let _ = writeln!(
                    b,
                    "<section class=\"customer\"><h2><a href=\"/?customer={}\">{}</a> \
                     <span class=\"muted\">{} domains</span></h2>",
                    query_value(c),
                    Esc(c),
                    group.len()
                );
            }
            None => {
                let _ = writeln!(
                    b,
                    "<section class=\"customer\"><h2>No customer <span class=\"muted\">{} \
                     domains</span></h2>",
                    group.len()
                );
            }
        }
        b.push_str(
            "<table class=\"fleet\"><thead><tr><th>Domain</th><th>Score</th><th>DMARC</th>\
             <th>Direct Send</th><th title=\"critical\">Crit</th><th>High</th><th>Med</th>\
             <th>Low</th><th>Checklist</th><th>Last audited</th></tr></thead><tbody>\n",
        );
        for l in group {
            row(&mut b, l);
        }
        b.push_str("</tbody></table></section>\n");
    }
    Ok(Html(layout(&title, &b)))
}

fn row(b: &mut String, l: &DomainSummary) {
    let score = match (l.score, l.unreadable) {
        (_, true) => "<span class=\"muted\">unreadable</span>".to_string(),
        (Some(s), _) => format!("<span class=\"score {}\">{s}</span>", score_class(s)),
        (None, _) if l.audited_at.is_some() => "<span class=\"muted\">n/a</span>".into(),
        (None, _) => "<span class=\"muted\">not audited</span>".into(),
    };
    let dmarc = match (&l.dmarc_policy, l.lacks_dmarc) {
        (_, true) => "<span class=\"bad\">missing</span>".to_string(),
        (Some(p), _) => format!(
            "<span class=\"{}\">p={}</span>",
            if p == "reject" { "good" } else { "warn" },
            Esc(p)
        ),
        (None, _) => "<span class=\"muted\">–</span>".into(),
    };
    let relay_class = match l.relay.as_str() {
        "open" => "bad",
        "blocked" => "good",
        _ => "muted",
    };
    let parked = if l.parked {
        " <span class=\"tag\">parked</span>"
    } else {
        ""
    };
    let _ = write!(
        b,
        "<tr data-domain=\"{name}\"><td><a class=\"domain\" href=\"{href}\">{name}</a>{parked}</td>\
         <td class=\"score-cell\">{score}</td><td>{dmarc}</td>\
         <td><span class=\"{relay_class}\">{relay}</span></td>",
        name = Esc(&l.name),
        href = domain_href(&l.name, ""),
        relay = Esc(&l.relay.replace('_', " ")),
    );
    for (i, sev) in Severity::ALL.iter().take(4).enumerate() {
        let n = l.counts[i];
        if n > 0 {
            let _ = write!(b, "<td class=\"n sev-{sev}\">{n}</td>");
        } else {
            b.push_str("<td class=\"n muted\">0</td>");
        }
    }
    let audited = l.audited_at.map_or("never".to_string(), datetime);
    let _ = writeln!(
        b,
        "<td class=\"checklist\">{}/{}</td><td class=\"when\">{}</td></tr>",
        l.checklist_done,
        l.checklist_total,
        Esc(&audited)
    );
}

/// `good` (80+), `warn` (50–79) or `bad`.
pub(crate) fn score_class(s: u8) -> &'static str {
    match s {
        80.. => "good",
        50..=79 => "warn",
        _ => "bad",
    }
}
