//! `/api/v1/`: the JSON API for an MSP's own tools (PSA, RMM, dashboards), read-only, with the
//! caller's scope: a viewer's token sees its customers only, exactly as its pages do.
//! Authenticated by a per-user API token (`Authorization: Bearer TOKEN`, made and revoked on
//! the account page, stored hashed) or the portal's session cookie; without accounts, open as
//! the portal is. Errors are JSON too: `{"error": "...", "status": N}`. Documented by
//! `docs/openapi.json`, which a test checks against [`super::routes`].

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mailaudit_store::analysis::domain_reports;
use serde::Deserialize;
use serde_json::{Value, json};

use super::fleet::{Params, line_json};
use super::{AppError, DomainPath};
use crate::Portal;
use crate::access::Caller;
use mailaudit_app::stored::view_of;

/// A handler's failure, as JSON.
pub struct ApiError(AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl From<mailaudit_store::StoreError> for ApiError {
    fn from(e: mailaudit_store::StoreError) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, text) = match self.0 {
            AppError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
            AppError::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
            AppError::Forbidden(why) => (StatusCode::FORBIDDEN, why),
            AppError::Internal(e) => {
                eprintln!("mailaudit portal: api: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the store could not be read".to_string(),
                )
            }
        };
        api_error(status, &text)
    }
}

/// A JSON error response.
pub(crate) fn api_error(status: StatusCode, text: &str) -> Response {
    (
        status,
        Json(json!({ "error": text, "status": status.as_u16() })),
    )
        .into_response()
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The query string, or a 400.
fn params<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| {
        ApiError(AppError::BadRequest(format!(
            "the query string is not understood: {}",
            e.body_text()
        )))
    })
}

/// `GET /api/v1/fleet`: the fleet page's lines and totals, with its parameters (`customer`,
/// `q`, `severity`, `area`, `check`, `relay`, `dmarc`, `overdue`, `audited`, `sort`, `dir`,
/// `page`, `per`).
pub async fn fleet(
    State(p): State<Portal>,
    caller: Caller,
    query: Result<Query<Params>, QueryRejection>,
) -> ApiResult {
    let q = params(query)?.query()?;
    let page = p.reads(&caller).fleet_page(q.clone()).await?;
    Ok(Json(json!({
        "page": q.offset / q.limit + 1,
        "per": q.limit,
        "matched": page.totals.domains,
        "totals": page.totals,
        "domains": page.lines.iter().map(line_json).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/customers`: each customer of the scope with its domains' totals.
pub async fn customers(State(p): State<Portal>, caller: Caller) -> ApiResult {
    let lines = p
        .reads(&caller)
        .customer_lines(mailaudit_store::now())
        .await?;
    let list: Vec<Value> = lines
        .iter()
        .map(|c| json!({ "name": c.name, "totals": c.totals }))
        .collect();
    Ok(Json(json!({ "customers": list })))
}

/// `GET /api/v1/domains/{domain}`: the domain's inventory entry and its latest audit's
/// score and findings.
pub async fn domain(
    State(p): State<Portal>,
    caller: Caller,
    DomainPath(raw): DomainPath,
) -> ApiResult {
    let d = p.reads(&caller).domain(&raw).await?;
    let view = d
        .latest
        .as_ref()
        .map(view_of)
        .transpose()
        .map_err(|e| ApiError(e.into()))?;
    let findings: Vec<Value> = view
        .as_ref()
        .map(|v| {
            v.findings
                .iter()
                .map(|f| {
                    json!({
                        "id": f.id.as_str(),
                        "severity": f.severity.as_str(),
                        "area": f.area.as_str(),
                        "title": f.title,
                        "detail": f.detail,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "domain": d.name,
        "customer": d.entry.as_ref().and_then(|e| e.customer.clone()),
        "parked": d.entry.as_ref().is_some_and(|e| e.parked),
        "audited_at": d.latest.as_ref().map(|r| r.audited_at),
        "run": d.latest.as_ref().map(|r| r.run_id),
        "score": view.as_ref().and_then(|v| v.score),
        "dmarc_policy": view.as_ref().and_then(|v| v.dmarc.policy.clone()),
        "direct_send": view.as_ref().map(|v| v.relay.verdict.clone()),
        "findings": findings,
    })))
}

/// `GET /api/v1/domains/{domain}/checklist`: the remediation checklist, by priority.
pub async fn checklist(
    State(p): State<Portal>,
    caller: Caller,
    DomainPath(raw): DomainPath,
) -> ApiResult {
    let d = p.reads(&caller).domain(&raw).await?;
    let items: Vec<Value> = d
        .store()
        .checklist(&d.name)
        .await?
        .into_iter()
        .map(|i| {
            json!({
                "key": i.key,
                "priority": i.priority,
                "title": i.title,
                "state": i.state.as_str(),
                "by": i.by,
                "at": i.at,
                "updated_at": i.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "domain": d.name, "items": items })))
}

/// The period of the reports summary.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Days {
    /// Days back from now (1 to 3660, default 30).
    pub days: Option<i64>,
}

/// `GET /api/v1/domains/{domain}/reports?days=30`: the DMARC aggregate and SMTP TLS reports
/// summary of the period (as `mailaudit reports summary --format json`).
pub async fn reports(
    State(p): State<Portal>,
    caller: Caller,
    DomainPath(raw): DomainPath,
    query: Result<Query<Days>, QueryRejection>,
) -> ApiResult {
    let days = params(query)?.days.unwrap_or(30);
    if !(1..=3660).contains(&days) {
        return Err(ApiError(AppError::BadRequest(
            "days must be a whole number of days from 1 to 3660".into(),
        )));
    }
    let d = p.reads(&caller).domain(&raw).await?;
    let until = mailaudit_store::now();
    let since = until - days * 86_400;
    let (dmarc, tls) = domain_reports(d.store(), &d.name, since, until, &HashMap::new()).await?;
    Ok(Json(json!({
        "domain": d.name,
        "since": since,
        "until": until,
        "dmarc": dmarc,
        "tls": tls,
    })))
}

/// Every other path under `/api/`: a JSON 404.
pub async fn not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "no such API path (see docs/openapi.json)",
    )
}
