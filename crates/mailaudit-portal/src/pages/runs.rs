//! "Audit now": `POST /audits` queues an audit of a domain, a customer or the fleet in the
//! store (a distributed run, in chunks), which `mailaudit serve` audits as a worker would (or
//! any `mailaudit worker`); `/runs/{id}` shows its progress, live through server-sent events
//! (`/runs/{id}/events`, read by `/assets/progress.js` under `script-src 'self'`), and without
//! script the page refreshes itself. Runs are fleet-wide: viewers get 404.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::auth::record;
use crate::html::{csrf_field, datetime, layout};
use mailaudit_store::{RunProgress, RunStatus};

/// Domains per chunk of a queued audit.
pub const CHUNK: usize = 25;

/// How often the progress is sent.
const TICK: Duration = Duration::from_secs(1);

/// The progress page's script (ours, MIT OR Apache-2.0): reads the run's events and updates
/// the page; reloads it when the run is over.
pub const PROGRESS_JS: &str = include_str!("../../assets/progress.js");

/// What to audit: one of `domain`, `customer`, `fleet`.
#[derive(Debug, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    fleet: String,
}

/// `POST /audits`.
pub async fn audit_now(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<AuditForm>, FormRejection>,
) -> Result<Response, AppError> {
    let store = p.inventory(&caller)?;
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest(
            "expected a form with domain, customer or fleet".into(),
        ));
    };
    let (domain, customer, fleet) = (f.domain.trim(), f.customer.trim(), !f.fleet.is_empty());
    let (what, names): (String, Vec<String>) = match (domain, customer, fleet) {
        (d, "", false) if !d.is_empty() => {
            let found = p.reads(&caller).domain(d).await?;
            (found.name.clone(), vec![found.name.clone()])
        }
        ("", c, false) if !c.is_empty() => {
            let list = store.domains(Some(c)).await?;
            (
                format!("customer {c}"),
                list.into_iter().map(|d| d.name).collect(),
            )
        }
        ("", "", true) => {
            let list = store.domains(None).await?;
            (
                "the fleet".into(),
                list.into_iter().map(|d| d.name).collect(),
            )
        }
        _ => {
            return Err(AppError::BadRequest(
                "give one of domain, customer or fleet".into(),
            ));
        }
    };
    if names.is_empty() {
        return Err(AppError::BadRequest(format!(
            "{what} has no domains to audit"
        )));
    }
    let chunks: Vec<Vec<String>> = names.chunks(CHUNK).map(<[String]>::to_vec).collect();
    let run = store.queue_run(&chunks, mailaudit_store::now()).await?;
    record(
        &p,
        &caller,
        "audit-now",
        &what,
        &format!("run {run}, {} domains", names.len()),
    )
    .await;
    Ok(Redirect::to(&format!("/runs/{run}")).into_response())
}

/// A run's id from its path, or 404.
fn run_id(path: Result<Path<String>, PathRejection>) -> Result<i64, AppError> {
    path.ok()
        .and_then(|Path(s)| s.parse::<i64>().ok())
        .ok_or_else(|| AppError::NotFound("This run".into()))
}

/// A run's progress, for a caller who sees the whole fleet (404 otherwise).
async fn progress(p: &Portal, caller: &Caller, id: i64) -> Result<RunProgress, AppError> {
    let reads = p.reads(caller);
    if !reads.is_all() {
        return Err(AppError::NotFound("This run".into()));
    }
    reads.run_progress(id).await
}

/// The share done, in whole percent.
fn percent(p: &RunProgress) -> i64 {
    if p.domains <= 0 {
        100
    } else {
        p.domains_done * 100 / p.domains
    }
}

/// `GET /runs/{id}`.
pub async fn page(
    State(p): State<Portal>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let id = run_id(path)?;
    let r = progress(&p, &caller, id).await?;
    let running = r.run.status == RunStatus::Running;
    let b = html! {
        h1 { "Audit run " (id) } "\n"
        p class="muted" { "Started " (datetime(r.run.started_at)) " · " (r.run.source) } "\n"
        section id="run-progress" data-events={ "/runs/" (id) "/events" } data-status=(r.run.status.as_str()) {
            p {
                strong id="run-done" { (r.domains_done) } " of " span id="run-total" { (r.domains) }
                " domains audited (" span id="run-percent" { (percent(&r)) "%" } ")"
            }
            progress id="run-bar" max=(r.domains.max(1)) value=(r.domains_done) {}
            p id="run-status" {
                @match r.run.status {
                    RunStatus::Running => {
                        @if r.workers.is_empty() {
                            "Waiting for a worker: " code { "mailaudit serve" } " audits queued runs, as does "
                            code { "mailaudit worker" } "."
                        } @else {
                            "Auditing (" (r.workers.join(", ")) ")."
                        }
                    }
                    RunStatus::Complete => { "Complete." }
                    RunStatus::Aborted => { "Aborted." }
                }
            }
        }
        "\n"
        @if running {
            // Without script, the page refreshes itself.
            noscript { meta http-equiv="refresh" content="3"; }
            script src="/assets/progress.js" {}
        } @else {
            p { a href="/" { "The fleet" } " · " a href="/?sort=audited&dir=desc" { "Latest audits first" } }
        }
    };
    Ok(Html(layout(&format!("Audit run {id}"), b)).into_response())
}

/// The progress as an event's JSON.
fn event(r: &RunProgress) -> Event {
    let data = serde_json::json!({
        "done": r.domains_done,
        "total": r.domains,
        "percent": percent(r),
        "status": r.run.status.as_str(),
        "workers": r.workers,
    });
    Event::default().event("progress").data(data.to_string())
}

/// `GET /runs/{id}/events`: the run's progress every second as `progress` events (JSON: done,
/// total, percent, status, workers) until it is over; the last event has its final status.
pub async fn events(
    State(p): State<Portal>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let id = run_id(path)?;
    let first = progress(&p, &caller, id).await?;
    let stream = futures::stream::unfold(
        (Some(first), p, caller, false),
        move |(next, p, caller, over)| async move {
            if over {
                return None;
            }
            let r = match next {
                Some(r) => r,
                None => {
                    tokio::time::sleep(TICK).await;
                    match progress(&p, &caller, id).await {
                        Ok(r) => r,
                        // The store failed: end the stream; the page's script reloads.
                        Err(_) => return None,
                    }
                }
            };
            let over = r.run.status != RunStatus::Running;
            Some((Ok::<Event, Infallible>(event(&r)), (None, p, caller, over)))
        },
    );
    let mut res = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("a header"));
    Ok(res)
}

/// `GET /assets/progress.js`.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        PROGRESS_JS,
    )
        .into_response()
}

/// The "Audit now" button of a domain, a customer or the fleet (`field` = `domain`,
/// `customer` or `fleet`), for those who may write.
pub(crate) fn audit_button(caller: &Caller, field: &str, value: &str, label: &str) -> maud::Markup {
    html! {
        @if caller.may_write() {
            form method="post" action="/audits" class="inline audit-now" {
                (csrf_field())
                input type="hidden" name=(field) value=(value);
                button type="submit" { (label) }
            }
        }
    }
}
