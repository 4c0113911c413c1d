//! `/customers/{name}/report`: the customer report ([`crate::report_html`]) of one customer
//! of the caller's scope, for `?since=90d` (default; `30d`, `365d`, any number of days up to
//! ten years, or weeks: `12w`) on `?paper=a4` (default) or `letter`: the same page that
//! `mailaudit report --customer` writes.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::report_html::{self, PAGE_CSP, Paper};

/// The period unless `since` says otherwise, in days.
pub const DEFAULT_DAYS: i64 = 90;
/// The longest period, in days.
pub const MAX_DAYS: i64 = 3650;

/// The query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReportParams {
    /// The period: `90d`, `12w`.
    pub since: Option<String>,
    /// `a4` or `letter`.
    pub paper: Option<String>,
}

/// A period (`90d`, `12w`, up to [`MAX_DAYS`]) in seconds.
pub fn period(text: &str) -> Result<i64, String> {
    use mailaudit_core::duration::{DAY, DurationError, WEEK, parse};
    let t = text.trim();
    parse(t, &[DAY, WEEK], DAY.1, MAX_DAYS * DAY.1).map_err(|e| match e {
        DurationError::Range => format!("the period {t:?} is not from 1 day to {MAX_DAYS} days"),
        _ => format!("the period {t:?} is not a number of days (90d) or weeks (12w)"),
    })
}

/// The paper named, or an error naming the choices.
pub fn paper(text: &str) -> Result<Paper, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "a4" => Ok(Paper::A4),
        "letter" => Ok(Paper::Letter),
        other => Err(format!("the paper {other:?} is not a4 or letter")),
    }
}

/// `GET /customers/{name}/report`.
pub async fn page(
    State(p): State<Portal>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Ok(Path(name)) = name else {
        return Err(AppError::NotFound("This page".into()));
    };
    let Query(params) = query.map_err(|e| {
        AppError::BadRequest(format!(
            "The query string is not understood: {}.",
            e.body_text()
        ))
    })?;
    let length = match params.since.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => period(s).map_err(AppError::BadRequest)?,
        None => DEFAULT_DAYS * 86_400,
    };
    let paper = match params.paper.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => paper(s).map_err(AppError::BadRequest)?,
        None => Paper::default(),
    };
    let now = mailaudit_store::now();
    let report = p
        .reads(&caller)
        .customer_report(&name, now - length, now)
        .await?;
    let branding = p.branding().await?;
    let mut res = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        report_html::page(&report, &branding, paper),
    )
        .into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_papers() {
        assert_eq!(period("90d"), Ok(90 * 86_400));
        assert_eq!(period("12w"), Ok(84 * 86_400));
        for bad in [
            "",
            "0d",
            "-3d",
            "90",
            "3651d",
            "d",
            "1y",
            "99999999999999999999w",
        ] {
            assert!(period(bad).is_err(), "{bad:?}");
        }
        assert_eq!(paper("Letter"), Ok(Paper::Letter));
        assert!(paper("legal").is_err());
    }
}
