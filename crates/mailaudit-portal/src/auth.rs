//! Signing in: the session middleware, the login and logout pages, the session cookie, CSRF
//! tokens and the login throttle.
//!
//! Once the store has a user (`Portal::accounts_on`), every route but [`PUBLIC`] needs a
//! session: a page asked for without one redirects to `/login`, a form posted without one is
//! refused. Sessions are server-side, in the store (only the SHA-256 of the cookie's value is
//! stored): a session ends at logout, after [`PortalOptions::session_idle_secs`] unused, after
//! [`PortalOptions::session_max_secs`] whatever its use, and when its user's password or role
//! changes. A new session id is made at every sign-in (no session fixation). The cookie is
//! `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when the portal is reached over HTTPS.
//!
//! Every POST is checked here, in one place: refused when the browser says it comes from
//! another site (`Origin` other than the portal's, `Sec-Fetch-Site: cross-site`); with
//! accounts, refused unless its form carries the session's CSRF token (`csrf`), compared in
//! constant time; without accounts (no session, no token), refused unless it carries an
//! `Origin` (or `Sec-Fetch-Site: same-origin`): a post with neither is refused. The login
//! form, posted before there is a session, carries a token that must match a cookie set with
//! the form (double submit).
//!
//! With a second factor (TOTP), the password opens only a short *pending* session, which
//! reaches nothing but `/login/totp` and `/logout`; the right code (a time step not used
//! before) or an unused recovery code replaces it with a whole session under a new id. When
//! the admins require a second factor, an admin or technician without one reaches only its
//! account page until it has set one up.
//!
//! Failed sign-ins are counted per account and per client address ([`Store`]'s
//! `login_failures`): past [`FREE_FAILURES`] (per address [`FREE_ADDRESS_FAILURES`]) each
//! further try waits twice as long as the one before, from 30 seconds up to 15 minutes, and
//! the page says how long. An hour without failures forgets them; a successful sign-in forgets
//! the account's.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Form, FromRequest as _, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use mailaudit_app::accounts;
use mailaudit_core::secret::same_secret;
use mailaudit_store::{AuditEntry, Store, Time, now};
use maud::html;
use serde::Deserialize;

#[cfg(doc)]
use crate::PortalOptions;
use crate::access::{Caller, Portal, SignedIn};
use crate::html::layout;
use crate::pages::AppError;

/// The routes served without a session.
pub const PUBLIC: &[&str] = &[
    "/login",
    "/login/sso",
    "/login/sso/callback",
    "/healthz",
    "/assets/portal.css",
    "/assets/progress.js",
];

/// What a session still waiting for its second factor may reach (besides [`PUBLIC`]).
const SECOND_FACTOR_PATHS: &[&str] = &["/login/totp", "/logout"];
/// What an admin or technician without a second factor may reach when one is required.
const ENROL_PATHS: &[&str] = &["/account", "/account/totp", "/account/password", "/logout"];
/// The admin setting that requires a second factor of admins and technicians (`yes`/`no`).
pub const REQUIRE_SECOND_FACTOR: &str = "require_second_factor";
/// How long a session waits for its second factor after the password.
const SECOND_FACTOR_WAIT: i64 = 300;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mailaudit_session";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "mailaudit_login";

/// Failed sign-ins of one account before the waits begin.
pub const FREE_FAILURES: i64 = 5;
/// Failed sign-ins from one address before the waits begin (several people may share one).
pub const FREE_ADDRESS_FAILURES: i64 = 20;
/// The first wait, in seconds; each further failure doubles it.
const FIRST_WAIT: i64 = 30;
/// The longest wait, in seconds.
const LONGEST_WAIT: i64 = 15 * 60;
/// After this long without a failure, the failures are forgotten.
pub(crate) const FORGET_AFTER: i64 = 3600;
/// The largest form body read.
const MAX_FORM: usize = 64 * 1024;

tokio::task_local! {
    /// The caller of the request being answered: what the layout shows (who is signed in, the
    /// logout button) and the CSRF token forms carry.
    static CURRENT: Caller;
}

/// The current request's caller, when there is one (pages rendered outside a request: none).
pub(crate) fn current() -> Option<Caller> {
    CURRENT.try_with(Caller::clone).ok()
}

/// The session's CSRF token, for a form's hidden `csrf` field (none without accounts).
pub(crate) fn csrf_token() -> Option<String> {
    current().and_then(|c| c.session_user().map(|u| u.csrf.clone()))
}

/// How long a throttled key must still wait at `now`, if it must.
fn wait(failures: i64, last_at: Time, free: i64, now: Time) -> Option<i64> {
    if failures < free {
        return None;
    }
    let doublings = u32::try_from((failures - free).min(30)).unwrap_or(30);
    let wait = FIRST_WAIT
        .saturating_mul(1i64 << doublings)
        .min(LONGEST_WAIT);
    let left = last_at.saturating_add(wait) - now;
    (left > 0).then_some(left)
}

/// A cookie's value from the request's `Cookie:` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// A `Set-Cookie:` value: `HttpOnly; SameSite=Lax`, `Secure` when served over HTTPS; an empty
/// value expires the cookie.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if value.is_empty() {
        c.push_str("; Max-Age=0");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Whether two tokens are the same ([`same_secret`]: in constant time).
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    same_secret(a.as_bytes(), b.as_bytes())
}

/// Why a state-changing request is refused as cross-site, if it is: an `Origin` that is not
/// `http(s)://<Host>`, or `Sec-Fetch-Site: cross-site`.
pub(crate) fn cross_origin(headers: &HeaderMap) -> Option<String> {
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return Some("cross-site form submissions are refused".into());
    }
    let origin = get(header::ORIGIN)?;
    let host = get(header::HOST).unwrap_or("");
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host));
    (!same).then(|| format!("a form from {origin} may not change this portal"))
}

/// Whether the browser says the request comes from the portal's own pages: an `Origin`
/// header (checked against the host by [`cross_origin`]) or `Sec-Fetch-Site: same-origin`.
fn same_origin_said(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("same-origin"))
}

/// The client's address, for the throttle and the audit log: the TCP peer's, or behind a
/// reverse proxy on this machine (a loopback peer), the last address of `X-Forwarded-For`
/// (the one the proxy added; earlier ones are the client's say-so).
pub(crate) fn client_address(p: &Portal, req: &Request) -> String {
    let Some(peer) = crate::serving::peer(req) else {
        return String::new();
    };
    if p.options.behind_proxy
        && peer.ip().is_loopback()
        && let Some(forwarded) = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|a| a.parse::<std::net::IpAddr>().is_ok())
    {
        return forwarded.to_string();
    }
    peer.ip().to_string()
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    body.split(|b| *b == b'&').filter_map(|pair| {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let decode = |s: &[u8]| -> Option<String> {
            let plus: Vec<u8> = s
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            percent_encoding::percent_decode(&plus)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        Some((decode(k)?, decode(v)?))
    })
}

/// The session middleware (see the module's documentation): finds the caller, refuses
/// cross-site posts and posts without the session's CSRF token, sends the signed-out to
/// `/login`, and answers the request with the caller known to the handler and the layout.
pub(crate) async fn middleware(State(p): State<Portal>, req: Request, next: Next) -> Response {
    match authenticate(&p, req).await {
        Ok((caller, req)) => CURRENT.scope(caller, next.run(req)).await,
        Err(res) => res,
    }
}

async fn authenticate(p: &Portal, req: Request) -> Result<(Caller, Request), Response> {
    let post = req.method() == Method::POST;
    if post && let Some(why) = cross_origin(req.headers()) {
        return Err(AppError::Forbidden(why).into_response());
    }
    let public = PUBLIC.contains(&req.uri().path());
    // A store that cannot say whether there are accounts lets no one in: only the public
    // routes answer (`/healthz` then says the store is unavailable).
    let on = match p.accounts_on().await {
        Ok(on) => on,
        Err(_) if public => return Ok((Caller::SignedOut, req)),
        Err(e) => return Err(AppError::from(e).into_response()),
    };
    // Without accounts there is no session token: a post must show where it comes from.
    if post && !on && !same_origin_said(req.headers()) {
        return Err(AppError::Forbidden(
            "a form post must come from this portal's own pages (no Origin header was sent)".into(),
        )
        .into_response());
    }
    let address = client_address(p, &req);
    let (req, caller) = if on {
        let session = match cookie(req.headers(), SESSION_COOKIE) {
            Some(token) => p
                .accounts()
                .session(&token, now(), p.options.session_idle_secs)
                .await
                .map_err(|e| AppError::from(e).into_response())?
                .map(|s| (token, s)),
            None => None,
        };
        match session {
            Some((token, s)) => {
                let user = Arc::new(SignedIn {
                    name: s.user.name,
                    role: s.user.role,
                    customers: s.user.customers,
                    csrf: s.csrf_token,
                    token,
                    address,
                    second_factor: s.user.totp_secret.is_some(),
                });
                let caller = if s.pending {
                    Caller::Pending(user)
                } else {
                    Caller::User(user)
                };
                (req, Some(caller))
            }
            None => (req, None),
        }
    } else {
        (req, Some(Caller::Open))
    };
    // The API: a token in `Authorization: Bearer`, else the session as for a page; never a
    // redirect to the sign-in page, never a half-signed-in session.
    let api = req.uri().path().starts_with("/api/");
    let (req, caller) = if api && on {
        match bearer(req.headers()) {
            Some(token) => match p
                .accounts()
                .api_token_user(&token, now())
                .await
                .map_err(|e| AppError::from(e).into_response())?
            {
                Some(u) => {
                    let user = Arc::new(SignedIn {
                        name: u.name,
                        role: u.role,
                        customers: u.customers,
                        csrf: String::new(),
                        token: String::new(),
                        address: client_address(p, &req),
                        // The token was made by a user fully signed in.
                        second_factor: true,
                    });
                    (req, Some(Caller::User(user)))
                }
                None => {
                    return Err(crate::pages::api::api_error(
                        axum::http::StatusCode::UNAUTHORIZED,
                        "the API token is not known (revoked, or mistyped)",
                    ));
                }
            },
            None => match caller {
                Some(c @ Caller::User(_)) => (req, Some(c)),
                _ => {
                    return Err(crate::pages::api::api_error(
                        axum::http::StatusCode::UNAUTHORIZED,
                        "sign in, or send an API token: Authorization: Bearer TOKEN",
                    ));
                }
            },
        }
    } else {
        (req, caller)
    };
    let mut req = req;
    // The CSRF token of every post of a session, read from its form (the sign-in form has its
    // own, see `login`).
    if post
        && !public
        && let Some(u) = caller.as_ref().and_then(Caller::session_user)
    {
        // A file upload (multipart) carries its token in the address, and its body is left to
        // the handler, which reads it with its own limit.
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        let (token, rebuilt) = if multipart {
            let query = req.uri().query().unwrap_or("").as_bytes();
            (form_field(query, "csrf").unwrap_or_default(), req)
        } else {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
                AppError::BadRequest("the form is too large".into()).into_response()
            })?;
            let token = form_field(&bytes, "csrf").unwrap_or_default();
            (token, Request::from_parts(parts, Body::from(bytes)))
        };
        req = rebuilt;
        if !same_token(&token, &u.csrf) {
            return Err(AppError::Forbidden(
                "this form is out of date or was not sent by this portal (its CSRF token does \
                 not match your session): reload the page and try again"
                    .into(),
            )
            .into_response());
        }
    }
    let path = req.uri().path();
    // Half signed in: only the second factor (or logging out).
    if let Some(Caller::Pending(_)) = &caller
        && !public
        && !SECOND_FACTOR_PATHS.contains(&path)
    {
        return Err(if post {
            AppError::Forbidden("give your second-factor code first".into()).into_response()
        } else {
            Redirect::to("/login/totp").into_response()
        });
    }
    // An admin or technician without a second factor, when the admins require one: only
    // the account page, to set it up.
    if let Some(Caller::User(u)) = &caller
        && !u.second_factor
        && u.role != mailaudit_store::Role::Viewer
        && !public
        && !ENROL_PATHS.contains(&path)
        && p.accounts()
            .setting(REQUIRE_SECOND_FACTOR)
            .await
            .map_err(|e| AppError::from(e).into_response())?
            .as_deref()
            == Some("yes")
    {
        return Err(if post {
            AppError::Forbidden("set up two-factor sign-in first (your account page)".into())
                .into_response()
        } else {
            Redirect::to("/account").into_response()
        });
    }
    match caller {
        Some(c) => {
            req.extensions_mut().insert(c.clone());
            Ok((c, req))
        }
        None if public => Ok((Caller::SignedOut, req)),
        None if post => Err(AppError::Forbidden(
            "you are not signed in (or your session has ended): sign in again".into(),
        )
        .into_response()),
        None => {
            let next = req
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string();
            let to = format!("/login?next={}", crate::html::query_value(&next));
            Err(Redirect::to(&to).into_response())
        }
    }
}

/// The query string of `/login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path of this portal only (`/…`, not `//host`), in
/// printable ASCII (what a `Location:` header carries; the portal's own links are
/// percent-encoded).
pub(crate) fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// The sign-in page. Its form's token is the browser's login cookie when it has one (a
/// second rendering, say for another tab, or the browser's own request for `/favicon.ico` sent
/// here, must not make the first form stale), else a new one.
fn login_page(
    p: &Portal,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    name: &str,
    next: &str,
) -> Response {
    let nonce = cookie(headers, LOGIN_COOKIE)
        .filter(|c| {
            c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(accounts::new_token);
    let body = html! {
        h1 { "Sign in" } "\n"
        @if let Some(e) = error { p class="error" id="error" { (e) } "\n" }
        form method="post" action="/login" class="login" {
            input type="hidden" name="csrf" value=(nonce);
            input type="hidden" name="next" value=(next);
            p { label { "Name " input type="text" name="name" id="name" value=(name)
                autocomplete="username" required autofocus; } }
            p { label { "Password " input type="password" name="password" id="password"
                autocomplete="current-password" required; } }
            p { button type="submit" id="sign-in" { "Sign in" } }
        }
        "\n"
        @if let Some(sso) = p.sso() {
            p class="sso" {
                a href={ "/login/sso?next=" (crate::html::query_value(next)) } id="sso" class="button" {
                    "Sign in with " (sso.label())
                }
            }
            "\n"
        }
    };
    let mut res = (status, Html(layout("Sign in", body))).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &nonce, "/login", p.options.secure_cookies),
    );
    res
}

/// `GET /login`: the sign-in form (without accounts, the fleet: there is nothing to sign in to).
pub async fn login_form(
    State(p): State<Portal>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    if !p.accounts_on().await? {
        return Ok(Redirect::to("/").into_response());
    }
    let next = local_next(q.next.as_deref());
    Ok(login_page(&p, &headers, StatusCode::OK, None, "", &next))
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

pub(crate) async fn audit(
    store: &dyn Store,
    actor: &str,
    action: &str,
    detail: &str,
    address: &str,
) {
    let e = AuditEntry {
        id: 0,
        at: now(),
        actor: actor.into(),
        action: action.into(),
        target: String::new(),
        detail: detail.into(),
        address: address.into(),
    };
    if let Err(e) = store.record_audit(&e).await {
        eprintln!("mailaudit portal: audit log: {e}");
    }
}

/// `POST /login`: checks the throttle, then the password; on success a new session (new id,
/// new CSRF token) and its cookie, the old session (if any) ended.
pub async fn login(State(p): State<Portal>, req: Request) -> Result<Response, AppError> {
    if !p.accounts_on().await? {
        return Ok(Redirect::to("/").into_response());
    }
    let address = client_address(&p, &req);
    let headers = req.headers().clone();
    let Ok(Form(form)) = Form::<LoginForm>::from_request(req, &()).await else {
        return Err(AppError::BadRequest(
            "expected a form with name and password".into(),
        ));
    };
    let next = local_next(form.next.as_deref());
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !same_token(&nonce, form.csrf.as_deref().unwrap_or("")) {
        return Err(AppError::Forbidden(
            "this sign-in form is out of date or was not sent by this portal: reload the page \
             and try again (cookies must be allowed)"
                .into(),
        ));
    }
    let store = p.accounts();
    let name = form.name.trim().to_string();
    let t = now();
    let user_key = format!("user:{}", name.to_lowercase());
    let addr_key = format!("addr:{address}");
    let mut locked = None;
    for (key, free) in [
        (&user_key, FREE_FAILURES),
        (&addr_key, FREE_ADDRESS_FAILURES),
    ] {
        if let Some(left) = throttled(store, key, free, t).await? {
            locked = Some(locked.map_or(left, |l: i64| l.max(left)));
        }
    }
    if let Some(left) = locked {
        audit(store, &name, "login-refused", "throttled", &address).await;
        let minutes = (left + 59) / 60;
        let msg = format!(
            "Too many failed sign-ins for this account or from this address. Sign-in is locked: \
             try again in {} ({left} s).",
            if minutes == 1 {
                "1 minute".to_string()
            } else {
                format!("{minutes} minutes")
            }
        );
        let mut res = login_page(
            &p,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&msg),
            &name,
            &next,
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(left));
        return Ok(res);
    }
    let user = match store.user(&name).await {
        Ok(u) => Some(u),
        Err(
            mailaudit_store::StoreError::NotFound { .. } | mailaudit_store::StoreError::Invalid(_),
        ) => None,
        Err(e) => return Err(e.into()),
    };
    let password = form.password;
    let ok = tokio::task::spawn_blocking({
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        move || match hash {
            Some(h) => accounts::verify_password(&h, &password),
            None => {
                accounts::verify_nothing(&password);
                false
            }
        }
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        store
            .record_login_failure(&user_key, t, FORGET_AFTER)
            .await?;
        store
            .record_login_failure(&addr_key, t, FORGET_AFTER)
            .await?;
        audit(
            store,
            &name,
            "login-failed",
            "wrong name or password",
            &address,
        )
        .await;
        return Ok(login_page(
            &p,
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("Wrong name or password."),
            &name,
            &next,
        ));
    };
    // With a second factor, the password opens only a short pending session, for the code.
    let pending = user.totp_secret.is_some();
    if !pending {
        store.clear_login_failures(&user_key).await?;
    }
    let expires = if pending {
        t.saturating_add(SECOND_FACTOR_WAIT)
    } else {
        t.saturating_add(p.options.session_max_secs)
    };
    let to = if pending {
        format!("/login/totp?next={}", crate::html::query_value(&next))
    } else {
        audit(store, &user.name, "login", "password", &address).await;
        next
    };
    start_session(&p, &headers, &user.name, expires, pending, &to).await
}

/// Starts a new session (a new id: the one the browser had, if any, ends) and sends the
/// browser to `to` with its cookie.
pub(crate) async fn start_session(
    p: &Portal,
    headers: &HeaderMap,
    user: &str,
    expires: Time,
    pending: bool,
    to: &str,
) -> Result<Response, AppError> {
    let store = p.accounts();
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        store.delete_session(&old).await?;
    }
    let token = accounts::new_token();
    let csrf = accounts::new_token();
    store
        .create_session(&token, user, &csrf, now(), expires, pending)
        .await?;
    let mut res = Redirect::to(to).into_response();
    let secure = p.options.secure_cookies;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, "/", secure),
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/login", secure),
    );
    Ok(res)
}

/// How long `key` must still wait before another sign-in, if it must.
pub(crate) async fn throttled(
    store: &dyn Store,
    key: &str,
    free: i64,
    t: Time,
) -> Result<Option<i64>, AppError> {
    Ok(match store.login_failures(key).await? {
        Some(f) => wait(f.failures, f.last_at, free, t),
        None => None,
    })
}

fn second_factor_page(status: StatusCode, error: Option<&str>, next: &str) -> Response {
    let body = html! {
        h1 { "Second factor" } "\n"
        @if let Some(e) = error { p class="error" id="error" { (e) } "\n" }
        p { "Type the code your authenticator app shows for mailaudit, or one of your recovery codes." }
        form method="post" action="/login/totp" class="login" {
            (crate::html::csrf_field())
            input type="hidden" name="next" value=(next);
            p { label { "Code " input type="text" name="code" id="code" autocomplete="one-time-code"
                required autofocus; } }
            p { button type="submit" id="verify" { "Sign in" } }
        }
        "\n"
    };
    (status, Html(layout("Second factor", body))).into_response()
}

/// `GET /login/totp`: the second step of signing in, for a session that has given its
/// password.
pub async fn second_factor_form(
    caller: Caller,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    if !matches!(caller, Caller::Pending(_)) {
        return Ok(Redirect::to("/").into_response());
    }
    let next = local_next(q.next.as_deref());
    Ok(second_factor_page(StatusCode::OK, None, &next))
}

/// The second-factor form.
#[derive(Deserialize)]
pub struct SecondFactorForm {
    code: String,
    next: Option<String>,
}

/// `POST /login/totp`: the code of the user's authenticator (this time step or the one before
/// or after) or an unused recovery code (used up), under the account's login throttle; then a
/// new, whole session.
pub async fn second_factor(
    State(p): State<Portal>,
    caller: Caller,
    headers: HeaderMap,
    form: Result<Form<SecondFactorForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, AppError> {
    let Caller::Pending(u) = &caller else {
        return Ok(Redirect::to("/").into_response());
    };
    let Ok(Form(form)) = form else {
        return Err(AppError::BadRequest("expected a form with a code".into()));
    };
    let next = local_next(form.next.as_deref());
    let store = p.accounts();
    let t = now();
    let user_key = format!("user:{}", u.name.to_lowercase());
    if let Some(left) = throttled(store, &user_key, FREE_FAILURES, t).await? {
        audit(store, &u.name, "login-refused", "throttled", &u.address).await;
        let msg = format!(
            "Too many failed sign-ins for this account. Sign-in is locked: try again in {left} s."
        );
        return Ok(second_factor_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&msg),
            &next,
        ));
    }
    let user = store.user(&u.name).await?;
    let code = form.code.trim();
    // A code is good once: its time step must be later than the last one accepted.
    let step = user
        .totp_secret
        .as_deref()
        .and_then(|secret| accounts::totp_step(secret, code, t));
    let by_code = match step {
        Some(step) => store.accept_totp_step(&user.name, step).await?,
        None => false,
    };
    let by_recovery = !by_code
        && code.chars().filter(char::is_ascii_alphanumeric).count() == 10
        && store
            .use_recovery_code(&user.name, &accounts::recovery_hash(code), t)
            .await?;
    if !by_code && !by_recovery {
        store
            .record_login_failure(&user_key, t, FORGET_AFTER)
            .await?;
        audit(
            store,
            &u.name,
            "login-failed",
            "wrong second-factor code",
            &u.address,
        )
        .await;
        return Ok(second_factor_page(
            StatusCode::UNAUTHORIZED,
            Some("Wrong code."),
            &next,
        ));
    }
    store.clear_login_failures(&user_key).await?;
    let how = if by_code {
        "password and second factor"
    } else {
        "password and recovery code"
    };
    audit(store, &u.name, "login", how, &u.address).await;
    let expires = t.saturating_add(p.options.session_max_secs);
    start_session(&p, &headers, &user.name, expires, false, &next).await
}

/// `POST /logout`: ends the session (its CSRF token checked by the middleware), expires the
/// cookie, back to the sign-in page.
pub async fn logout(State(p): State<Portal>, caller: Caller) -> Result<Response, AppError> {
    let Some(u) = caller.session_user() else {
        return Ok(Redirect::to("/").into_response());
    };
    p.accounts().delete_session(&u.token).await?;
    audit(p.accounts(), &u.name, "logout", "", &u.address).await;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", p.options.secure_cookies),
    );
    Ok(res)
}

/// Records `action` by the caller in the audit log (a failure to record is logged, never lost
/// silently, and does not undo the action).
pub(crate) async fn record(p: &Portal, caller: &Caller, action: &str, target: &str, detail: &str) {
    let (actor, address) = caller.user().map_or(("web portal", ""), |u| {
        (u.name.as_str(), u.address.as_str())
    });
    let e = AuditEntry {
        id: 0,
        at: now(),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        detail: detail.into(),
        address: address.into(),
    };
    if let Err(e) = p.accounts().record_audit(&e).await {
        eprintln!("mailaudit portal: audit log: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_30_seconds_to_15_minutes() {
        assert_eq!(wait(4, 100, 5, 100), None);
        assert_eq!(wait(5, 100, 5, 100), Some(30));
        assert_eq!(wait(5, 100, 5, 129), Some(1));
        assert_eq!(wait(5, 100, 5, 130), None);
        assert_eq!(wait(6, 100, 5, 100), Some(60));
        assert_eq!(wait(9, 100, 5, 100), Some(480));
        assert_eq!(wait(10, 100, 5, 100), Some(900));
        assert_eq!(wait(1000, 100, 5, 100), Some(900));
    }

    #[test]
    fn cookies_forms_and_next() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mailaudit_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(
            form_field(b"state=done&csrf=a%2Bb+c&x", "csrf").as_deref(),
            Some("a+b c")
        );
        assert_eq!(form_field(b"state=done", "csrf"), None);
        for (n, want) in [
            (Some("/domains/a.example?x=1"), "/domains/a.example?x=1"),
            (Some("//evil.example/"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("/a\r\nSet-Cookie: x=1"), "/"),
            (Some("/é"), "/"),
            (None, "/"),
        ] {
            assert_eq!(local_next(n), want, "{n:?}");
        }
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        let c = set_cookie(SESSION_COOKIE, "v", "/", true);
        assert_eq!(
            c.to_str().unwrap(),
            "mailaudit_session=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
