//! Single sign-on (OpenID Connect, authorization code flow with PKCE): the portal's side.
//!
//! The portal does no network I/O of its own: the binary (`mailaudit serve --oidc-…`) gives it
//! a [`SingleSignOn`], which builds the provider's authorization URL and exchanges a code for
//! the claims of a validated ID token (`mailaudit-net::oidc`). Here:
//!
//! - `GET /login/sso` makes a new `state`, `nonce` and PKCE verifier (random tokens from the
//!   operating system), keeps them server-side under the state for [`PENDING_SECS`], puts the
//!   state in an `HttpOnly` cookie (path `/login/sso`), and sends the browser to the provider
//!   with the state, the nonce and the S256 challenge;
//! - `GET /login/sso/callback` accepts the provider's answer only with the state of that
//!   cookie (once: the pending sign-in is taken out), exchanges the code with its verifier,
//!   refuses an ID token whose nonce is not the one sent or was used before, finds the user
//!   ([`SsoMapping`]), and opens a session exactly as a password does (new session id, new
//!   CSRF token, `login` in the audit log with the detail `single sign-on`). The second
//!   factor is the provider's business: a sign-in through it asks for no TOTP code (the admins'
//!   "require a second factor" setting still holds for admins and technicians). Every refusal
//!   is a page saying why and sets no session cookie; a refused answer from the provider is in
//!   the audit log (`login-failed`, `single sign-on: …`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mailaudit_app::accounts::{self, Actor};
use mailaudit_store::{Role, Time, now};
use maud::html;
use serde::Deserialize;

use crate::access::Portal;
use crate::auth;
use crate::html::layout;
use crate::pages::AppError;

/// How long a sign-in started at the provider may take to come back, in seconds.
pub const PENDING_SECS: i64 = 600;
/// The most sign-ins waiting at the provider at once (the oldest are forgotten beyond).
const MAX_PENDING: usize = 10_000;
/// The cookie binding a sign-in to the browser that started it.
pub const SSO_COOKIE: &str = "mailaudit_sso";
/// The audit log's actor for users single sign-on creates or changes.
const SSO_ACTOR: &str = "single sign-on";

/// What a provider's boxed future yields: a value or why not (shown to the user, logged).
pub type SsoFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What the portal needs of an OpenID Connect provider; the binary implements it over HTTPS.
pub trait SingleSignOn: Send + Sync {
    /// The URL of the provider's authorization endpoint to send the browser to, carrying
    /// `state`, `nonce` and the PKCE S256 `code_challenge`.
    fn authorization_url<'a>(
        &'a self,
        state: &'a str,
        nonce: &'a str,
        code_challenge: &'a str,
    ) -> SsoFuture<'a, String>;

    /// Exchanges `code` (with the PKCE `verifier`) and validates the ID token (signature,
    /// issuer, audience, expiry, and its nonce being `nonce`): its claims.
    fn exchange<'a>(
        &'a self,
        code: &'a str,
        verifier: &'a str,
        nonce: &'a str,
    ) -> SsoFuture<'a, SsoClaims>;
}

/// What a validated ID token says about the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoClaims {
    /// `sub`.
    pub subject: String,
    /// The user's e-mail address (`email`, or Entra's `preferred_username`).
    pub email: Option<String>,
    /// The groups the token names (Entra: object IDs).
    pub groups: Vec<String>,
    /// The token's nonce.
    pub nonce: String,
}

/// One `--oidc-group GROUP=ROLE[:CUSTOMER]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRule {
    /// The group's ID as the token names it.
    pub group: String,
    /// The role its members get.
    pub role: Role,
    /// For a viewer, the customer it sees.
    pub customer: Option<String>,
}

impl std::str::FromStr for GroupRule {
    type Err = String;

    /// `GROUP=admin`, `GROUP=technician`, `GROUP=viewer:CUSTOMER`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (group, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected GROUP=admin|technician|viewer:CUSTOMER"))?;
        let (role, customer) = match rest.split_once(':') {
            Some((r, c)) => (r, Some(c.trim().to_string())),
            None => (rest, None),
        };
        let role = Role::parse(role.trim())
            .ok_or_else(|| format!("{s:?}: the role is admin, technician or viewer"))?;
        let group = group.trim().to_string();
        if group.is_empty() {
            return Err(format!("{s:?}: the group ID is empty"));
        }
        match (role, &customer) {
            (Role::Viewer, Some(c)) if !c.is_empty() => {}
            (Role::Viewer, _) => return Err(format!("{s:?}: a viewer needs :CUSTOMER")),
            (_, Some(_)) => return Err(format!("{s:?}: only a viewer has a customer")),
            (_, None) => {}
        }
        Ok(GroupRule {
            group,
            role,
            customer,
        })
    }
}

/// Who may sign in through the provider, and as what: users already in the store (their name
/// is their e-mail address, compared without case) keep their account; the lists and group
/// rules give a role, which a new user is created with and an existing one is moved to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SsoMapping {
    /// `--oidc-admins`: e-mail addresses (compared without case).
    pub admins: Vec<String>,
    /// `--oidc-technicians`.
    pub technicians: Vec<String>,
    /// `--oidc-group`.
    pub groups: Vec<GroupRule>,
}

impl SsoMapping {
    /// The role (and a viewer's customers) the mapping gives `email` with `groups`: the
    /// highest of the lists and the group rules (admin, technician, viewer; a viewer sees the
    /// customers of all its groups), `None` when none applies.
    pub fn role_of(&self, email: &str, groups: &[String]) -> Option<(Role, Vec<String>)> {
        let listed = |l: &[String]| l.iter().any(|a| a.trim().eq_ignore_ascii_case(email));
        if listed(&self.admins) {
            return Some((Role::Admin, Vec::new()));
        }
        let rules: Vec<&GroupRule> = self
            .groups
            .iter()
            .filter(|r| groups.contains(&r.group))
            .collect();
        if rules.iter().any(|r| r.role == Role::Admin) {
            return Some((Role::Admin, Vec::new()));
        }
        if listed(&self.technicians) || rules.iter().any(|r| r.role == Role::Technician) {
            return Some((Role::Technician, Vec::new()));
        }
        let mut customers: Vec<String> = rules.iter().filter_map(|r| r.customer.clone()).collect();
        customers.sort();
        customers.dedup();
        (!customers.is_empty()).then_some((Role::Viewer, customers))
    }
}

struct PendingLogin {
    nonce: String,
    verifier: String,
    next: String,
    expires: Time,
}

/// Single sign-on as the portal runs it: the provider, the label of the sign-in button, the
/// role mapping, and the sign-ins under way.
pub struct Sso {
    provider: Arc<dyn SingleSignOn>,
    label: String,
    mapping: SsoMapping,
    pending: Mutex<HashMap<String, PendingLogin>>,
    used_nonces: Mutex<HashMap<String, Time>>,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("label", &self.label)
            .field("mapping", &self.mapping)
            .finish_non_exhaustive()
    }
}

impl Sso {
    /// Single sign-on through `provider`, its button saying `Sign in with {label}`.
    pub fn new(provider: Arc<dyn SingleSignOn>, label: &str, mapping: SsoMapping) -> Sso {
        Sso {
            provider,
            label: label.to_string(),
            mapping,
            pending: Mutex::new(HashMap::new()),
            used_nonces: Mutex::new(HashMap::new()),
        }
    }

    /// The sign-in button's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn remember(&self, state: String, login: PendingLogin, t: Time) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, l| l.expires > t);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, l)| l.expires)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(state, login);
    }

    fn take(&self, state: &str, t: Time) -> Option<PendingLogin> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(state).filter(|l| l.expires > t)
    }

    /// Records `nonce` as used; false when it was used before.
    fn first_use(&self, nonce: &str, t: Time) -> bool {
        let mut used = self.used_nonces.lock().unwrap_or_else(|p| p.into_inner());
        // A nonce outlives its sign-in by the ID token's life at most; a day is plenty.
        used.retain(|_, at| *at > t - 86_400);
        used.insert(nonce.to_string(), t).is_none()
    }
}

/// The query of `/login/sso`.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /login/sso`: sends the browser to the provider (404 without single sign-on).
pub async fn start(
    State(p): State<Portal>,
    Query(q): Query<StartQuery>,
    req: Request,
) -> Result<Response, AppError> {
    let Some(sso) = p.sso() else {
        return Err(AppError::NotFound("Single sign-on".into()));
    };
    if !p.accounts_on().await? {
        return Ok(Redirect::to("/").into_response());
    }
    // An address that failed too often waits, as for a password.
    let address = auth::client_address(&p, &req);
    let key = format!("addr:{address}");
    if let Some(left) =
        auth::throttled(p.accounts(), &key, auth::FREE_ADDRESS_FAILURES, now()).await?
    {
        let mut res = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins from this address: try again in {left} s."),
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(left));
        return Ok(res);
    }
    let (state, nonce, verifier) = (
        accounts::new_token(),
        accounts::new_token(),
        accounts::new_token(),
    );
    let challenge = accounts::pkce_challenge(&verifier);
    let url = match sso
        .provider
        .authorization_url(&state, &nonce, &challenge)
        .await
    {
        Ok(url) => url,
        Err(why) => {
            eprintln!("mailaudit portal: single sign-on: {why}");
            return Ok(refusal(
                StatusCode::BAD_GATEWAY,
                "The single sign-on provider cannot be reached now. Try again later, or sign \
                 in with your password.",
            ));
        }
    };
    let t = now();
    sso.remember(
        state.clone(),
        PendingLogin {
            nonce,
            verifier,
            next: auth::local_next(q.next.as_deref()),
            expires: t.saturating_add(PENDING_SECS),
        },
        t,
    );
    let mut res = Redirect::to(&url).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        auth::set_cookie(SSO_COOKIE, &state, "/login/sso", p.options.secure_cookies),
    );
    Ok(res)
}

/// The provider's answer.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn refusal(status: StatusCode, why: &str) -> Response {
    let body = html! {
        h1 { "Sign-in refused" } "\n"
        p class="error" id="error" { (why) } "\n"
        p { a href="/login" id="back" { "Back to the sign-in page" } } "\n"
    };
    (status, Html(layout("Sign-in refused", body))).into_response()
}

/// `GET /login/sso/callback`: see the [module docs](self).
pub async fn callback(
    State(p): State<Portal>,
    Query(q): Query<CallbackQuery>,
    req: Request,
) -> Result<Response, AppError> {
    let Some(sso) = p.sso() else {
        return Err(AppError::NotFound("Single sign-on".into()));
    };
    if !p.accounts_on().await? {
        return Ok(Redirect::to("/").into_response());
    }
    let address = auth::client_address(&p, &req);
    let headers: HeaderMap = req.headers().clone();
    let store = p.accounts();
    let t = now();
    let mut res = match signed_in(&p, sso, &q, &headers, t).await? {
        Ok((name, next)) => {
            store
                .clear_login_failures(&format!("user:{}", name.to_lowercase()))
                .await?;
            auth::audit(store, &name, "login", "single sign-on", &address).await;
            let expires = t.saturating_add(p.options.session_max_secs);
            auth::start_session(&p, &headers, &name, expires, false, &next).await?
        }
        Err((status, actor, why)) => {
            store
                .record_login_failure(&format!("addr:{address}"), t, auth::FORGET_AFTER)
                .await?;
            auth::audit(
                store,
                &actor,
                "login-failed",
                &format!("single sign-on: {why}"),
                &address,
            )
            .await;
            refusal(status, &why)
        }
    };
    res.headers_mut().append(
        header::SET_COOKIE,
        auth::set_cookie(SSO_COOKIE, "", "/login/sso", p.options.secure_cookies),
    );
    Ok(res)
}

type Refused = (StatusCode, String, String);

/// The user's name and where to go, or why not (status, who as far as known, why).
async fn signed_in(
    p: &Portal,
    sso: &Sso,
    q: &CallbackQuery,
    headers: &HeaderMap,
    t: Time,
) -> Result<Result<(String, String), Refused>, AppError> {
    let refuse = |status: StatusCode, who: &str, why: &str| {
        Ok(Err((status, who.to_string(), why.to_string())))
    };
    let state = q.state.as_deref().unwrap_or("");
    let cookie = auth::cookie(headers, SSO_COOKIE).unwrap_or_default();
    // The state must be the one this browser was given, and a sign-in still waiting for it.
    let pending = (!state.is_empty() && auth::same_token(state, &cookie))
        .then(|| sso.take(state, t))
        .flatten();
    let Some(pending) = pending else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "",
            "this sign-in was not started from this browser, or took too long: start again \
             from the sign-in page",
        );
    };
    if let Some(e) = &q.error {
        let d = q.error_description.as_deref().unwrap_or("");
        let why: String = format!("the provider refused the sign-in: {e} {d}")
            .chars()
            .take(300)
            .collect();
        return refuse(StatusCode::UNAUTHORIZED, "", why.trim());
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "",
            "the provider sent no authorization code",
        );
    };
    let claims = match sso
        .provider
        .exchange(code, &pending.verifier, &pending.nonce)
        .await
    {
        Ok(c) => c,
        Err(why) => return refuse(StatusCode::UNAUTHORIZED, "", &why),
    };
    if !sso.first_use(&claims.nonce, t) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "",
            "the ID token's nonce was used before (a replayed token)",
        );
    }
    let Some(email) = claims.email.as_deref().map(str::trim) else {
        return refuse(
            StatusCode::FORBIDDEN,
            &claims.subject,
            "the provider gave no e-mail address for this account",
        );
    };
    let store = p.accounts();
    let existing = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.name.eq_ignore_ascii_case(email));
    let mapped = sso.mapping.role_of(email, &claims.groups);
    let actor = Actor {
        name: SSO_ACTOR.into(),
        address: String::new(),
    };
    let name = match (existing, mapped) {
        (Some(u), None) => u.name,
        (Some(u), Some((role, customers))) => {
            if u.role != role || u.customers != customers {
                match accounts::set_role(store, &actor, &u.name, role, &customers, t).await {
                    Ok(_) => {}
                    // The last admin keeps its role; a customer that does not exist: the
                    // account stays as it is.
                    Err(e) => eprintln!("mailaudit portal: single sign-on: {}: {e}", u.name),
                }
            }
            u.name
        }
        (None, Some((role, customers))) => {
            match accounts::add_user(store, &actor, email, role, &customers, None, t).await {
                Ok(u) => u.name,
                Err(e) => {
                    return refuse(
                        StatusCode::FORBIDDEN,
                        email,
                        &format!("the account cannot be created: {e}"),
                    );
                }
            }
        }
        (None, None) => {
            return refuse(
                StatusCode::FORBIDDEN,
                email,
                &format!(
                    "{email} has no account on this portal: ask an admin to add you (a user \
                     named by your e-mail address) or to map your group to a role"
                ),
            );
        }
    };
    Ok(Ok((name, pending.next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;

    impl SingleSignOn for Nobody {
        fn authorization_url<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: &'a str,
        ) -> SsoFuture<'a, String> {
            Box::pin(async { Err("none".to_string()) })
        }
        fn exchange<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str) -> SsoFuture<'a, SsoClaims> {
            Box::pin(async { Err("none".to_string()) })
        }
    }

    #[test]
    fn a_state_is_good_once_and_not_late_and_a_nonce_is_used_once() {
        let sso = Sso::new(Arc::new(Nobody), "x", SsoMapping::default());
        let login = |t: Time| PendingLogin {
            nonce: "n".into(),
            verifier: "v".into(),
            next: "/".into(),
            expires: t + PENDING_SECS,
        };
        sso.remember("s1".into(), login(1000), 1000);
        sso.remember("s2".into(), login(1000), 1000);
        assert!(sso.take("s1", 1000 + PENDING_SECS - 1).is_some());
        assert!(sso.take("s1", 1001).is_none(), "once");
        assert!(sso.take("s2", 1000 + PENDING_SECS).is_none(), "too late");
        assert!(sso.take("unknown", 1000).is_none());
        assert!(sso.first_use("nonce-a", 5000));
        assert!(!sso.first_use("nonce-a", 5001), "replayed");
        assert!(sso.first_use("nonce-b", 5001));
    }

    #[test]
    fn group_rules_parse() {
        let r: GroupRule = "g1=viewer:Contoso Legal".parse().unwrap();
        assert_eq!(r.role, Role::Viewer);
        assert_eq!(r.customer.as_deref(), Some("Contoso Legal"));
        assert_eq!("g2=admin".parse::<GroupRule>().unwrap().role, Role::Admin);
        for bad in ["g", "=admin", "g=viewer", "g=admin:X", "g=boss"] {
            assert!(bad.parse::<GroupRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_highest_role_wins_and_viewers_see_their_groups_customers() {
        let m = SsoMapping {
            admins: vec!["Root@Example.com".into()],
            technicians: vec!["tech@example.com".into()],
            groups: vec![
                "ga=admin".parse().unwrap(),
                "gv1=viewer:A".parse().unwrap(),
                "gv2=viewer:B".parse().unwrap(),
            ],
        };
        let none: &[String] = &[];
        assert_eq!(
            m.role_of("root@example.COM", none),
            Some((Role::Admin, vec![]))
        );
        assert_eq!(
            m.role_of("tech@example.com", &["gv1".into()]),
            Some((Role::Technician, vec![]))
        );
        assert_eq!(
            m.role_of("x@example.com", &["gv2".into(), "gv1".into()]),
            Some((Role::Viewer, vec!["A".into(), "B".into()]))
        );
        assert_eq!(
            m.role_of("x@example.com", &["gv1".into(), "ga".into()]),
            Some((Role::Admin, vec![]))
        );
        assert_eq!(m.role_of("x@example.com", &["other".into()]), None);
    }
}
