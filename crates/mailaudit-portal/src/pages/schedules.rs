//! `/schedules` (technicians and admins): the recurring re-audits that `mailaudit serve` (or
//! `schedule run` from cron) runs: set one for the fleet or a customer, pause and resume it
//! (kept as it is while paused), remove it. Each change is audit-logged; viewers get 404.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mailaudit_store::{Schedule, Scope};
use maud::html;
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::auth::record;
use crate::html::{csrf_field, datetime, layout};

/// An interval (`12h`, `1d`, `7d`, `2w`: 1 hour to 365 days) in seconds.
pub fn interval(text: &str) -> Result<i64, String> {
    use mailaudit_core::duration::{DAY, DurationError, HOUR, WEEK, parse};
    let t = text.trim();
    parse(t, &[HOUR, DAY, WEEK], HOUR.1, 365 * DAY.1).map_err(|e| match e {
        DurationError::Range => format!("the interval {t:?} is not from 1 hour to 365 days"),
        _ => format!("the interval {t:?} is not hours (12h), days (7d) or weeks (2w)"),
    })
}

/// An interval as the form shows it.
fn interval_text(secs: i64) -> String {
    match secs {
        s if s % 604_800 == 0 => format!("{}w", s / 604_800),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s => format!("{}h", s / 3600),
    }
}

/// A scope's name on the page and in the audit log.
fn scope_text(s: &Scope) -> String {
    match s {
        Scope::Fleet => "the fleet".into(),
        Scope::Customer(c) => format!("customer {c}"),
    }
}

/// `GET /schedules`.
pub async fn page(State(p): State<Portal>, caller: Caller) -> Result<Html<String>, AppError> {
    let store = p.inventory(&caller)?;
    let list = store.schedules().await?;
    let customers = store.customers().await?;
    let b = html! {
        h1 { "Schedules" } "\n"
        p class="muted" {
            "Recurring re-audits, run by " code { "mailaudit serve" } " (or " code { "mailaudit schedule run" }
            " from cron), with alerts on regression."
        }
        @if list.is_empty() {
            p id="no-schedules" { "No schedule yet." }
        } @else {
            table id="schedules" {
                thead { tr { th { "Audits" } th { "Every" } th { "Next run" } th { "Last run" } th {} } }
                tbody {
                    @for s in &list {
                        tr data-scope=(s.scope.key()) data-paused=(s.paused) {
                            td { (scope_text(&s.scope)) }
                            td { (interval_text(s.interval_secs)) }
                            td class="when" {
                                @if s.paused { span class="warn" { "paused" } } @else { (datetime(s.next_run_at)) }
                            }
                            td class="when" { (s.last_run_at.map_or("never".to_string(), datetime)) }
                            td {
                                form method="post" action=(if s.paused { "/schedules/resume" } else { "/schedules/pause" }) class="inline" {
                                    (csrf_field())
                                    input type="hidden" name="scope" value=(s.scope.key());
                                    button type="submit" { (if s.paused { "Resume" } else { "Pause" }) }
                                }
                                " "
                                form method="post" action="/schedules/remove" class="inline" {
                                    (csrf_field())
                                    input type="hidden" name="scope" value=(s.scope.key());
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        "\n"
        section id="set-schedule" {
            h2 { "Set a schedule" }
            form method="post" action="/schedules" {
                (csrf_field())
                label {
                    "Audit "
                    select name="scope" {
                        option value="fleet" { "the fleet" }
                        @for c in &customers {
                            option value=(Scope::Customer(c.name.clone()).key()) { "customer " (c.name) }
                        }
                    }
                }
                " " label { "every " input name="every" value="7d" size="5" required; }
                " " button type="submit" { "Set" }
                " " span class="muted" { "12h, 1d, 7d, 2w; setting an existing schedule changes its interval (a paused one stays paused)" }
            }
        }
    };
    Ok(Html(layout("Schedules", b)))
}

/// A form naming a schedule (and, to set one, its interval).
#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    scope: String,
    #[serde(default)]
    every: String,
}

/// The scope of a form, or a 400.
fn form_scope(form: Result<Form<ScheduleForm>, FormRejection>) -> Result<ScheduleForm, AppError> {
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest("expected a form with scope".into()));
    };
    Ok(f)
}

fn parse_scope(text: &str) -> Result<Scope, AppError> {
    Scope::from_key(text.trim())
        .ok_or_else(|| AppError::BadRequest(format!("unknown scope {:?}", text.trim())))
}

/// `POST /schedules`: sets (or changes the interval of) a schedule, first due one interval
/// from now.
pub async fn set(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> Result<Response, AppError> {
    let store = p.inventory(&caller)?;
    let f = form_scope(form)?;
    let scope = parse_scope(&f.scope)?;
    let every = interval(&f.every).map_err(AppError::BadRequest)?;
    let now = mailaudit_store::now();
    store
        .set_schedule(&Schedule {
            scope: scope.clone(),
            interval_secs: every,
            next_run_at: now + every,
            last_run_at: None,
            paused: false,
        })
        .await?;
    record(
        &p,
        &caller,
        "schedule-set",
        &scope_text(&scope),
        &interval_text(every),
    )
    .await;
    Ok(Redirect::to("/schedules").into_response())
}

/// `POST /schedules/pause`, `/schedules/resume`, `/schedules/remove`.
async fn change(
    p: Portal,
    caller: Caller,
    form: Result<Form<ScheduleForm>, FormRejection>,
    what: &str,
) -> Result<Response, AppError> {
    let store = p.inventory(&caller)?;
    let scope = parse_scope(&form_scope(form)?.scope)?;
    match what {
        "pause" => store.pause_schedule(&scope, true).await?,
        "resume" => store.pause_schedule(&scope, false).await?,
        _ => store.remove_schedule(&scope).await?,
    }
    record(
        &p,
        &caller,
        &format!("schedule-{what}"),
        &scope_text(&scope),
        "",
    )
    .await;
    Ok(Redirect::to("/schedules").into_response())
}

/// `POST /schedules/pause`.
pub async fn pause(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> Result<Response, AppError> {
    change(p, caller, form, "pause").await
}

/// `POST /schedules/resume`.
pub async fn resume(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> Result<Response, AppError> {
    change(p, caller, form, "resume").await
}

/// `POST /schedules/remove`.
pub async fn remove(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> Result<Response, AppError> {
    change(p, caller, form, "remove").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(interval("7d"), Ok(7 * 86_400));
        assert_eq!(interval("12h"), Ok(12 * 3600));
        assert_eq!(interval("2w"), Ok(14 * 86_400));
        for bad in [
            "",
            "0h",
            "30m",
            "366d",
            "7",
            "-1d",
            "d",
            "99999999999999999999w",
        ] {
            assert!(interval(bad).is_err(), "{bad:?}");
        }
        assert_eq!(interval_text(14 * 86_400), "2w");
        assert_eq!(interval_text(3 * 86_400), "3d");
        assert_eq!(interval_text(7200), "2h");
    }
}
