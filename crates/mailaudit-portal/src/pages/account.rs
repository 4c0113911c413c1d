//! `/account`: the signed-in user's own account: its role and customers, and two-factor
//! sign-in. Enrolment shows a new secret as a QR code (SVG drawn on the server, no script) and
//! as text; `POST /account/totp` turns it on once a code from the authenticator app matches,
//! and shows the recovery codes, once (only their hashes are stored).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use mailaudit_app::accounts::{self, describe_role};
use mailaudit_store::now;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::html::{csrf_field, layout};

/// The enrolment QR code of `uri`, as an inline SVG element.
fn qr_svg(uri: &str) -> Result<Markup, AppError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AppError::BadRequest(format!("no QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The renderer writes an XML declaration first: not for an element inside HTML.
    let svg = match svg.find("<svg") {
        Some(at) => svg[at..].to_string(),
        None => svg,
    };
    // PreEscaped: the SVG is the qrcode crate's own markup (a path of the code's modules and
    // its colours, which are ours); no stored or typed value is in it as text.
    Ok(html! { div class="qr" id="totp-qr" { (PreEscaped(svg)) } })
}

/// `GET /account`.
pub async fn page(State(p): State<Portal>, caller: Caller) -> Result<Html<String>, AppError> {
    let Some(u) = caller.user() else {
        return Err(AppError::NotFound("This page".into()));
    };
    let tokens = p.accounts().api_tokens(&u.name).await?;
    let enrol = if u.second_factor {
        None
    } else {
        let secret = accounts::new_totp_secret();
        let qr = qr_svg(&accounts::otpauth_uri(&secret, &u.name))?;
        Some((secret, qr))
    };
    let b = html! {
        h1 { "Your account" } "\n"
        dl class="facts" {
            dt { "Name" } dd { (u.name) }
            dt { "Role" } dd id="role" { (describe_role(u.role, &u.customers)) }
            dt { "Two-factor sign-in" }
            dd id="second-factor" { (if u.second_factor { "on" } else { "off" }) }
        }
        "\n"
        section id="password" {
            h2 { "Change your password" } "\n"
            p class="muted" { "Every session of yours ends with it, this one too: sign in again after." }
            form method="post" action="/account/password" {
                (csrf_field())
                p { label { "Current password " input type="password" name="current"
                    id="current-password" autocomplete="current-password" required; } }
                p { label { "New password (12 characters or more) " input type="password"
                    name="new" id="new-password" autocomplete="new-password" required; } }
                p { button type="submit" id="change-password" { "Change password" } }
            }
        }
        "\n"
        section id="api-tokens" {
            h2 { "API tokens" } "\n"
            p class="muted" {
                "For your own tools (PSA, RMM, dashboards): " code { "Authorization: Bearer TOKEN" }
                " on " code { "/api/v1/" } " (see docs/openapi.json), with your access. A token is shown once."
            }
            @if !tokens.is_empty() {
                table id="token-list" {
                    thead { tr { th { "Label" } th { "Made" } th { "Last used" } th {} } }
                    tbody {
                        @for t in &tokens {
                            tr data-token=(t.id) {
                                td { (t.label) }
                                td class="when" { (crate::html::datetime(t.created_at)) }
                                td class="when" { (t.last_used_at.map_or("never".to_string(), crate::html::datetime)) }
                                td {
                                    form method="post" action={ "/account/tokens/" (t.id) "/revoke" } {
                                        (csrf_field())
                                        button type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/account/tokens" {
                (csrf_field())
                label { "Label " input type="text" name="label" id="token-label" required maxlength="200" placeholder="PSA sync"; }
                " " button type="submit" id="make-token" { "Make a token" }
            }
        }
        "\n"
        @if let Some((secret, qr)) = &enrol {
            section id="enrol" {
                h2 { "Turn on two-factor sign-in" } "\n"
                p {
                    "Scan this code with an authenticator app (or type the key below into it), \
                     then type the six-digit code it shows."
                }
                (qr)
                p { "Key: " code id="totp-secret" { (secret) } }
                form method="post" action="/account/totp" {
                    (csrf_field())
                    input type="hidden" name="secret" value=(secret);
                    p { label { "Code " input type="text" name="code" id="code"
                        autocomplete="one-time-code" required; } }
                    p { button type="submit" id="turn-on" { "Turn on" } }
                }
            }
        }
        "\n"
    };
    Ok(Html(layout("Your account", b)))
}

/// The enrolment form.
#[derive(Deserialize)]
pub struct EnrolForm {
    secret: String,
    code: String,
}

/// `POST /account/totp`: turns two-factor sign-in on when the code matches the secret shown,
/// then shows the recovery codes, once.
pub async fn enrol(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<EnrolForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Some(u) = caller.user() else {
        return Err(AppError::NotFound("This page".into()));
    };
    let Ok(Form(form)) = form else {
        return Err(AppError::BadRequest(
            "expected a form with the key and a code".into(),
        ));
    };
    if u.second_factor {
        return Err(AppError::BadRequest(
            "two-factor sign-in is on already".into(),
        ));
    }
    let t = now();
    let Some(step) = accounts::totp_step(&form.secret, &form.code, t) else {
        return Err(AppError::BadRequest(
            "the code does not match: check the app's clock and type the code it shows now".into(),
        ));
    };
    let codes = accounts::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| accounts::recovery_hash(c)).collect();
    p.accounts()
        .set_second_factor(&u.name, Some(&form.secret), &hashes, t)
        .await?;
    // The enrolment's code is used: it does not sign in again.
    p.accounts().accept_totp_step(&u.name, step).await?;
    crate::auth::record(&p, &caller, "second-factor-on", &u.name, "").await;
    let b = html! {
        h1 { "Two-factor sign-in is on" } "\n"
        p {
            "From now on, signing in asks for a code from your authenticator app. Keep these \
             recovery codes somewhere safe: each signs you in once without the app. They are \
             shown only now."
        }
        ul id="recovery-codes" {
            @for c in &codes { li class="recovery-code" { code { (c) } } }
        }
        p { a href="/" { "To the fleet" } }
    };
    Ok((StatusCode::OK, Html(layout("Two-factor sign-in", b))).into_response())
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
}

/// `POST /account/password`: the user's own password, when the current one is right (under
/// the account's login throttle, as a sign-in); every session of the user ends, this one too.
pub async fn change_password(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Some(u) = caller.user() else {
        return Err(AppError::NotFound("This page".into()));
    };
    let Ok(Form(form)) = form else {
        return Err(AppError::BadRequest(
            "expected a form with the current and the new password".into(),
        ));
    };
    let store = p.accounts();
    let t = now();
    let key = format!("user:{}", u.name.to_lowercase());
    if let Some(left) = crate::auth::throttled(store, &key, crate::auth::FREE_FAILURES, t).await? {
        return Err(AppError::Forbidden(format!(
            "too many wrong passwords for this account: try again in {left} s"
        )));
    }
    let hash = store.user(&u.name).await?.password_hash;
    let current = form.current;
    let right = tokio::task::spawn_blocking(move || {
        hash.is_some_and(|h| accounts::verify_password(&h, &current))
    })
    .await
    .unwrap_or(false);
    if !right {
        store
            .record_login_failure(&key, t, crate::auth::FORGET_AFTER)
            .await?;
        crate::auth::record(
            &p,
            &caller,
            "password-change-failed",
            &u.name,
            "wrong current password",
        )
        .await;
        return Err(AppError::BadRequest("the current password is wrong".into()));
    }
    let actor = accounts::Actor {
        name: u.name.clone(),
        address: u.address.clone(),
    };
    accounts::set_password(store, &actor, &u.name, &form.new, t)
        .await
        .map_err(|e| match e {
            mailaudit_app::AppError::WeakPassword(m) => AppError::BadRequest(m),
            e => e.into(),
        })?;
    Ok(axum::response::Redirect::to("/login").into_response())
}

/// The make-a-token form.
#[derive(Deserialize)]
pub struct TokenForm {
    label: String,
}

/// The prefix of the portal's API tokens (so a leaked one is recognised by secret scanners).
pub const TOKEN_PREFIX: &str = "mat_";

/// `POST /account/tokens`: makes an API token for the signed-in user and shows it, once.
pub async fn create_token(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Html<String>, AppError> {
    let Some(u) = caller.user() else {
        return Err(AppError::NotFound("This page".into()));
    };
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest("expected a form with a label".into()));
    };
    let token = format!("{TOKEN_PREFIX}{}", accounts::new_token());
    let t = p
        .accounts()
        .create_api_token(&u.name, &f.label, &token, now())
        .await?;
    crate::auth::record(&p, &caller, "api-token-create", &u.name, &t.label).await;
    let b = html! {
        h1 { "Your new API token" } "\n"
        p { "Copy it now: it is not shown again (only its hash is kept). It acts as you, " (t.label) "." }
        p { code id="new-token" { (token) } }
        p { a href="/account" { "Back to your account" } }
    };
    Ok(Html(layout("API token", b)))
}

/// `POST /account/tokens/{id}/revoke`: revokes one of the signed-in user's tokens.
pub async fn revoke_token(
    State(p): State<Portal>,
    caller: Caller,
    id: Result<axum::extract::Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let Some(u) = caller.user() else {
        return Err(AppError::NotFound("This page".into()));
    };
    let Ok(axum::extract::Path(id)) = id else {
        return Err(AppError::NotFound("This token".into()));
    };
    if !p.accounts().revoke_api_token(&u.name, id).await? {
        return Err(AppError::NotFound("This token".into()));
    }
    crate::auth::record(&p, &caller, "api-token-revoke", &u.name, &id.to_string()).await;
    Ok(axum::response::Redirect::to("/account#api-tokens").into_response())
}
