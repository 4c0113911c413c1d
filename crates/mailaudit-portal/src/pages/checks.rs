//! `/checks` and `/checks/{ID}`: the check catalogue (`mailaudit_core::checks::CATALOGUE`), as
//! `mailaudit checks` shows it: what it checks, why it matters, how to fix it in Microsoft 365,
//! references; and which domains have the finding in their latest audit.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Html;
use mailaudit_core::checks::{CATALOGUE, CheckId};
use maud::html;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::html::{check_href, domain_href, layout, markdown, query_value, reference};

/// The affected domains a check's page lists (by name); the fleet view lists them all.
const AFFECTED_LISTED: i64 = 100;

/// `GET /checks`: every check, in catalogue order.
pub async fn index() -> Html<String> {
    let b = html! {
        h1 { "Checks" } "\n"
        table class="catalogue" {
            thead { tr { th { "ID" } th { "Code" } th { "Area" } th { "Severity" } th { "Title" } } }
            tbody {
                "\n"
                @for c in CATALOGUE {
                    @let id = c.id.as_str();
                    tr {
                        td { a href=(check_href(id)) { (id) } }
                        td { code { (c.code) } }
                        td { (c.area.to_string()) }
                        td { span class={ "sev sev-" (c.severity.as_str()) } { (c.severity.as_str()) } }
                        td { (c.title) }
                    }
                    "\n"
                }
            }
        }
        "\n"
    };
    Html(layout("Checks", b))
}

/// `GET /checks/{ID}` (the ID or the short code, any case).
pub async fn page(
    State(p): State<Portal>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Html<String>, AppError> {
    let raw = id.map(|Path(s)| s).unwrap_or_default();
    let Ok(id) = raw.parse::<CheckId>() else {
        return Err(AppError::NotFound(format!("The check {raw:?}")));
    };
    let c = id.info();
    let affected = p
        .reads(&caller)
        .fleet_page(mailaudit_store::FleetQuery {
            check: Some(id.as_str().to_string()),
            sort: mailaudit_store::FleetSort::Name,
            limit: AFFECTED_LISTED,
            now: mailaudit_store::now(),
            ..mailaudit_store::FleetQuery::default()
        })
        .await?;
    let count = affected.totals.domains;
    let b = html! {
        h1 id="check-id" { (id.as_str()) } "\n"
        p class="lead" id="check-title" { (c.title) } "\n"
        p class="muted" {
            "Code " code { (c.code) } " · area " (c.area.to_string()) " · severity "
            span class={ "sev sev-" (c.severity.as_str()) } { (c.severity.as_str()) } " · " (c.source().heading())
        }
        "\n"
        section id="what" { h2 { "What it checks" } "\n" (markdown(c.what)) } "\n"
        section id="why" { h2 { "Why it matters" } "\n" (markdown(c.why)) } "\n"
        section id="fix" { h2 { "How to fix it in Microsoft 365" } "\n" (markdown(c.fix)) } "\n"
        section id="references" {
            h2 { "References" } "\n"
            ul { "\n" @for r in c.references { li { (reference(r)) } "\n" } }
        }
        "\n"
        section id="affected" {
            h2 { "Domains with this finding " span class="muted" id="affected-count" { (count) } } "\n"
            @if affected.lines.is_empty() {
                p { "None in their latest audit." }
            } @else {
                ul class="inline" {
                    @for l in &affected.lines { li { a href=(domain_href(&l.name, "")) { (l.name) } } }
                }
                p {
                    a id="affected-fleet" href={ "/?check=" (query_value(id.as_str())) } {
                        @if count > affected.lines.len() as u64 {
                            "All " (count) " in the fleet view, with filters and exports"
                        } @else {
                            "In the fleet view, with filters and exports"
                        }
                    }
                }
            }
        }
        "\n"
    };
    Ok(Html(layout(id.as_str(), b)))
}
