//! The routes and what they share: the error pages, the security headers, the loopback `Host:`
//! guard, and the look-up of a domain from its URL.
//!
//! **Adding a page about one domain** (e.g. the DMARC/TLS report summary at
//! `/domains/{domain}/reports`) is three small steps: a module here with
//! `async fn page(State<Portal>, DomainPath) -> Result<Html<String>, AppError>` that starts with
//! [`find_domain`] and wraps its body in [`domain_page`]; one `.route(…)` line in [`router`];
//! one entry in [`DOMAIN_PAGES`] so the domain's tab bar links to it.

pub mod checks;
pub mod domain;
pub mod fleet;
pub mod reports;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mailaudit_core::audit::normalize_domain;
use mailaudit_store::{DomainEntry, StoreError, StoredResult};

use maud::{Markup, html};

use crate::html::{domain_href, layout};
use crate::{Portal, PortalError};

/// The portal's style sheet (`assets/portal.css`, ours, no external asset).
pub const CSS: &str = include_str!("../../assets/portal.css");

/// The Content-Security-Policy of every portal page: no script, no external anything.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                       base-uri 'none'; frame-ancestors 'none'";

/// The pages about one domain, as `(path suffix, tab label)`: the tab bar of every domain page.
pub const DOMAIN_PAGES: &[(&str, &str)] = &[
    ("", "Overview"),
    ("/reports", "Reports"),
    ("/guide", "Printable guide"),
];

/// Every route of the portal.
pub(crate) fn router(portal: Portal) -> Router {
    Router::new()
        .route("/", get(fleet::page))
        .route("/healthz", get(healthz))
        .route("/assets/portal.css", get(css))
        .route("/checks", get(checks::index))
        .route("/checks/{id}", get(checks::page))
        .route("/domains/{domain}", get(domain::page))
        .route("/domains/{domain}/guide", get(domain::guide_page))
        .route("/domains/{domain}/reports", get(reports::page))
        .route("/reports/{id}/raw", get(reports::raw))
        .route("/domains/{domain}/checklist/{key}", post(domain::set_item))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(portal.clone(), guard))
        .with_state(portal)
}

/// A handler's failure, as a page.
#[derive(Debug)]
pub enum AppError {
    /// 404: what was not found (shown, escaped).
    NotFound(String),
    /// 400: what was wrong with the request.
    BadRequest(String),
    /// 403: why the request is refused.
    Forbidden(String),
    /// 500: logged to standard error; the page says only that the store failed.
    Internal(PortalError),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => AppError::NotFound(what),
            e => AppError::Internal(e.into()),
        }
    }
}

impl From<PortalError> for AppError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::Store(e) | PortalError::App(mailaudit_app::AppError::Store(e)) => e.into(),
            e => AppError::Internal(e),
        }
    }
}

impl From<mailaudit_app::AppError> for AppError {
    fn from(e: mailaudit_app::AppError) -> Self {
        PortalError::from(e).into()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            AppError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("{what} not found."),
            ),
            AppError::BadRequest(why) => (StatusCode::BAD_REQUEST, "Bad request", why),
            AppError::Forbidden(why) => (StatusCode::FORBIDDEN, "Forbidden", why),
            AppError::Internal(e) => {
                eprintln!("mailaudit portal: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Server error",
                    "The store could not be read. The cause is in the server's log; try again \
                     later."
                        .to_string(),
                )
            }
        };
        let body = html! {
            h1 { (title) } "\n"
            p class="error" id="error" { (text) } "\n"
            p { a href="/" { "Back to the fleet" } } "\n"
        };
        (status, Html(layout(title, body))).into_response()
    }
}

async fn not_found() -> AppError {
    AppError::NotFound("This page".into())
}

/// `/healthz`: 200 `ok` when the store answers, 503 otherwise (for monitoring).
async fn healthz(State(p): State<Portal>) -> Response {
    match p.store.runs(1).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            eprintln!("mailaudit portal: health check: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

/// Whether a `Host:` value names this machine: `localhost` (or `*.localhost`), a loopback
/// IPv4 address or `[::1]`, with or without a port.
pub(crate) fn host_is_loopback(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses requests for a non-loopback `Host:` unless the portal is public, then adds the
/// security headers to every response.
async fn guard(State(p): State<Portal>, req: Request, next: Next) -> Response {
    if !p.options.public
        && let Some(host) = req.headers().get(header::HOST)
        && !host.to_str().is_ok_and(host_is_loopback)
    {
        return AppError::Forbidden(
            "This portal only answers requests for a loopback host name (localhost, 127.0.0.1, \
             [::1]). Start it with --public to serve other names."
                .into(),
        )
        .into_response();
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: with `no-referrer` Chromium sends `Origin: null` on
    // the portal's own form posts, which the checklist's cross-site check must refuse.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// The `{domain}` of a domain page's URL (percent-decoded); an undecodable path is a 404.
pub struct DomainPath(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for DomainPath {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let params: Result<Path<Vec<(String, String)>>, PathRejection> =
            Path::from_request_parts(parts, state).await;
        let Ok(Path(params)) = params else {
            return Err(AppError::NotFound("This page".into()));
        };
        params
            .into_iter()
            .find(|(k, _)| k == "domain")
            .map(|(_, v)| DomainPath(v))
            .ok_or_else(|| AppError::NotFound("This page".into()))
    }
}

/// A domain as the store knows it: its inventory entry and latest stored audit (at least one
/// of the two exists).
pub struct FoundDomain {
    /// The name as stored.
    pub name: String,
    /// The inventory entry (None when the domain was removed but its audits are kept).
    pub entry: Option<DomainEntry>,
    /// The latest stored audit.
    pub latest: Option<StoredResult>,
}

/// Looks a domain up by the name in its URL (normalised as the CLI does: IDNA, lower case);
/// 404 when the store knows nothing about it.
pub async fn find_domain(p: &Portal, raw: &str) -> Result<FoundDomain, AppError> {
    let name = normalize_domain(raw).unwrap_or_else(|_| {
        let t = raw.trim();
        t.strip_suffix('.').unwrap_or(t).to_ascii_lowercase()
    });
    let absent = |e: &StoreError| matches!(e, StoreError::NotFound { .. } | StoreError::Invalid(_));
    let entry = match p.store.domain(&name).await {
        Ok(e) => Some(e),
        Err(e) if absent(&e) => None,
        Err(e) => return Err(e.into()),
    };
    let latest = match p.store.latest_result(&name).await {
        Ok(r) => r,
        Err(e) if absent(&e) => None,
        Err(e) => return Err(e.into()),
    };
    if entry.is_none() && latest.is_none() {
        return Err(AppError::NotFound(format!("The domain {name}")));
    }
    Ok(FoundDomain {
        name,
        entry,
        latest,
    })
}

/// A page about one domain: the tab bar of [`DOMAIN_PAGES`] (with `current` marked), then
/// `body`.
pub fn domain_page(name: &str, current: &str, title: &str, body: Markup) -> Html<String> {
    Html(layout(
        title,
        html! {
            nav class="tabs" {
                @for (suffix, label) in DOMAIN_PAGES {
                    a href=(domain_href(name, suffix))
                        class=[(*suffix == current).then_some("current")] { (label) }
                }
            }
            "\n"
            (body)
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (host, ok) in [
            ("localhost", true),
            ("localhost:8080", true),
            ("LOCALHOST.:80", true),
            ("portal.localhost:1", true),
            ("127.0.0.1:8080", true),
            ("127.8.9.1", true),
            ("[::1]:8080", true),
            ("[::1]", true),
            ("evil.example", false),
            ("evil.example:8080", false),
            ("127.0.0.1.evil.example", false),
            ("10.0.0.1:80", false),
            ("[::1]x", false),
            ("localhost:80:80", false),
            ("", false),
        ] {
            assert_eq!(host_is_loopback(host), ok, "{host:?}");
        }
    }
}
