//! The routes and what they share: the error pages, the security headers, the loopback `Host:`
//! guard, and the look-up of a domain from its URL.
//!
//! **Adding a page about one domain** (e.g. the DMARC/TLS report summary at
//! `/domains/{domain}/reports`) is three small steps: a module here with
//! `async fn page(State<Portal>, Caller, DomainPath) -> Result<Html<String>, AppError>` that
//! starts with `p.reads(&caller).domain(&raw)` (the caller's scope: 404 outside it) and wraps
//! its body in [`domain_page`]; one line in [`routes`] (and its entry in the authorisation
//! test's table); one entry in [`DOMAIN_PAGES`] so the domain's tab bar links to it.

pub mod account;
pub mod admin;
pub mod api;
pub mod checks;
pub mod domain;
pub mod fleet;
pub mod inventory;
pub mod report;
pub mod reports;
pub mod runs;
pub mod schedules;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use mailaudit_store::StoreError;

use maud::{Markup, html};

use crate::html::{domain_href, layout};
use crate::{Portal, PortalError, auth};

/// The portal's style sheet (`assets/portal.css`, ours, no external asset).
pub const CSS: &str = include_str!("../../assets/portal.css");

/// The Content-Security-Policy of every portal page: nothing external; the portal's own style
/// sheet and its one script (an audit run's live progress, `/assets/progress.js`), which may
/// read the run's events from the portal.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
                       connect-src 'self'; form-action 'self'; base-uri 'none'; \
                       frame-ancestors 'none'";

/// The pages about one domain, as `(path suffix, tab label)`: the tab bar of every domain page.
pub const DOMAIN_PAGES: &[(&str, &str)] = &[
    ("", "Overview"),
    ("/reports", "Reports"),
    ("/guide", "Printable guide"),
];

/// Every route of the portal: `(method, path, handler)`. The router is made from this table,
/// and the authorisation test walks it (every route × every role), so a route added here
/// without an entry in that test fails it.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Portal>)> {
    vec![
        (Method::GET, "/", get(fleet::page)),
        (Method::GET, "/customers", get(fleet::customers)),
        (Method::GET, "/customers/{name}/report", get(report::page)),
        (Method::GET, "/fleet.csv", get(fleet::export_csv)),
        (Method::GET, "/fleet.json", get(fleet::export_json)),
        (Method::GET, "/healthz", get(healthz)),
        (Method::GET, "/assets/portal.css", get(css)),
        (Method::GET, "/login", get(auth::login_form)),
        (Method::POST, "/login", post(auth::login)),
        (Method::POST, "/logout", post(auth::logout)),
        (Method::GET, "/login/totp", get(auth::second_factor_form)),
        (Method::POST, "/login/totp", post(auth::second_factor)),
        (Method::GET, "/login/sso", get(crate::sso::start)),
        (
            Method::GET,
            "/login/sso/callback",
            get(crate::sso::callback),
        ),
        (Method::GET, "/account", get(account::page)),
        (Method::POST, "/account/totp", post(account::enrol)),
        (
            Method::POST,
            "/account/password",
            post(account::change_password),
        ),
        (Method::GET, "/api/v1/fleet", get(api::fleet)),
        (Method::GET, "/api/v1/customers", get(api::customers)),
        (Method::GET, "/api/v1/domains/{domain}", get(api::domain)),
        (
            Method::GET,
            "/api/v1/domains/{domain}/checklist",
            get(api::checklist),
        ),
        (
            Method::GET,
            "/api/v1/domains/{domain}/reports",
            get(api::reports),
        ),
        (Method::POST, "/account/tokens", post(account::create_token)),
        (
            Method::POST,
            "/account/tokens/{id}/revoke",
            post(account::revoke_token),
        ),
        (Method::GET, "/assets/progress.js", get(runs::script)),
        (Method::POST, "/audits", post(runs::audit_now)),
        (Method::GET, "/runs/{id}", get(runs::page)),
        (Method::GET, "/runs/{id}/events", get(runs::events)),
        (Method::GET, "/schedules", get(schedules::page)),
        (Method::POST, "/schedules", post(schedules::set)),
        (Method::POST, "/schedules/pause", post(schedules::pause)),
        (Method::POST, "/schedules/resume", post(schedules::resume)),
        (Method::POST, "/schedules/remove", post(schedules::remove)),
        (Method::GET, "/inventory", get(inventory::page)),
        (
            Method::POST,
            "/inventory/customers",
            post(inventory::add_customer_form),
        ),
        (
            Method::POST,
            "/inventory/domains",
            post(inventory::add_domains_form),
        ),
        (
            Method::POST,
            "/inventory/import",
            post(inventory::import).layer(axum::extract::DefaultBodyLimit::max(
                inventory::MAX_CSV + 64 * 1024,
            )),
        ),
        (
            Method::POST,
            "/inventory/exo",
            post(inventory::exo_import).layer(axum::extract::DefaultBodyLimit::max(
                inventory::MAX_CSV + 64 * 1024,
            )),
        ),
        (
            Method::POST,
            "/domains/{domain}/edit",
            post(inventory::edit_domain),
        ),
        (
            Method::POST,
            "/domains/{domain}/dmarc-phase",
            post(inventory::set_phase),
        ),
        (Method::GET, "/checks", get(checks::index)),
        (Method::GET, "/checks/{id}", get(checks::page)),
        (Method::GET, "/domains/{domain}", get(domain::page)),
        (
            Method::GET,
            "/domains/{domain}/guide",
            get(domain::guide_page),
        ),
        (Method::GET, "/domains/{domain}/reports", get(reports::page)),
        (Method::GET, "/reports/{id}/raw", get(reports::raw)),
        (
            Method::POST,
            "/domains/{domain}/checklist/{key}",
            post(domain::set_item),
        ),
        (Method::GET, "/admin/users", get(admin::users)),
        (Method::POST, "/admin/users", post(admin::add_user)),
        (
            Method::POST,
            "/admin/users/{name}/role",
            post(admin::set_role),
        ),
        (
            Method::POST,
            "/admin/users/{name}/password",
            post(admin::set_password),
        ),
        (
            Method::POST,
            "/admin/users/{name}/reset-2fa",
            post(admin::reset_second_factor),
        ),
        (
            Method::POST,
            "/admin/users/{name}/remove",
            post(admin::remove_user),
        ),
        (Method::POST, "/admin/settings", post(admin::settings)),
        (Method::GET, "/admin/audit", get(admin::audit_log)),
        (Method::GET, "/admin/audit.csv", get(admin::audit_csv)),
    ]
}

/// The portal's router: [`routes`], then the sign-in middleware ([`auth::middleware`]), then
/// the loopback `Host:` guard and security headers ([`guard`], outermost).
pub(crate) fn router(portal: Portal) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            portal.clone(),
            auth::middleware,
        ))
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
            // The store refused what the request gave it (a customer name with a NUL, say):
            // the request is wrong, not the store.
            StoreError::Invalid(why) => AppError::BadRequest(why),
            // It conflicts with what is stored (the last admin, a name taken meanwhile).
            StoreError::Conflict(why) => AppError::BadRequest(why),
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
    match p.health().await {
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
