//! Admins only: `/admin/users` (the users, their roles and customers; add, change the role,
//! set a password, remove) and `/admin/audit` (the audit log; `/admin/audit.csv` the whole log
//! as CSV). Every change goes through `mailaudit_app::accounts`, as `mailaudit user` does: the
//! last admin is kept, a password or role change ends the user's sessions, and each change is
//! recorded with the admin's name and address. Anyone but an admin gets the 404 of a page that
//! does not exist.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use mailaudit_app::accounts::{self, Actor, describe_role};
use mailaudit_store::{Role, now};
use maud::html;
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::html::{csrf_field, csv_field, datetime, layout, seg};

/// The audit log entries shown on the page (the CSV has them all).
const SHOWN: i64 = 500;

/// The admin's [`Actor`], or the 404 of a page that does not exist for anyone else.
fn admin(caller: &Caller) -> Result<Actor, AppError> {
    match caller.user() {
        Some(u) if caller.is_admin() => Ok(Actor {
            name: u.name.clone(),
            address: u.address.clone(),
        }),
        _ => Err(AppError::NotFound("This page".into())),
    }
}

/// An error of an account change, as the page shows it.
fn refused(e: mailaudit_app::AppError) -> AppError {
    match e {
        mailaudit_app::AppError::Store(mailaudit_store::StoreError::NotFound { what }) => {
            AppError::NotFound(what)
        }
        mailaudit_app::AppError::Store(
            mailaudit_store::StoreError::Invalid(m) | mailaudit_store::StoreError::Conflict(m),
        ) => AppError::BadRequest(m),
        mailaudit_app::AppError::WeakPassword(m) | mailaudit_app::AppError::LastAdmin(m) => {
            AppError::BadRequest(m)
        }
        e => e.into(),
    }
}

fn role_select(current: Option<Role>) -> maud::Markup {
    html! {
        select name="role" aria-label="role" {
            @for r in Role::ALL {
                option value=(r.as_str()) selected[current == Some(r)] { (r.as_str()) }
            }
        }
    }
}

/// `GET /admin/users`.
pub async fn users(State(p): State<Portal>, caller: Caller) -> Result<Html<String>, AppError> {
    admin(&caller)?;
    let users = p.accounts().users().await?;
    let required = p
        .accounts()
        .setting(crate::auth::REQUIRE_SECOND_FACTOR)
        .await?
        .as_deref()
        == Some("yes");
    let customers = p.reads(&caller).customers().await?;
    let customer_select = html! {
        select name="customer" multiple size="3" aria-label="customers (viewers only)" {
            @for c in &customers { option value=(c.name) { (c.name) } }
        }
    };
    let b = html! {
        h1 { "Users" } "\n"
        p class="muted" {
            "Admins see and do everything; technicians see every customer and keep checklists; \
             viewers see only their customers, read-only. Changing a password or a role ends \
             the user's sessions."
        }
        table class="users" id="users" {
            thead { tr { th { "Name" } th { "Role" } th { "Sign-in" } th { "Added" } th { "Change" } } }
            tbody {
                "\n"
                @for u in &users {
                    @let base = format!("/admin/users/{}", seg(&u.name));
                    tr class="user" data-user=(u.name) data-role=(u.role.as_str()) {
                        td { (u.name) }
                        td { (describe_role(u.role, &u.customers)) }
                        td {
                            (if u.password_hash.is_some() { "password" } else { "no password" })
                            @if u.totp_secret.is_some() { ", 2FA" }
                        }
                        td class="when" { (datetime(u.created_at)) }
                        td {
                            form method="post" action={ (base) "/role" } class="inline" {
                                (csrf_field())
                                (role_select(Some(u.role))) " " (customer_select)
                                " " button type="submit" { "Set role" }
                            }
                            form method="post" action={ (base) "/password" } class="inline" {
                                (csrf_field())
                                input type="password" name="password" placeholder="new password"
                                    aria-label="new password" autocomplete="new-password";
                                " " button type="submit" { "Set password" }
                            }
                            @if u.totp_secret.is_some() {
                                form method="post" action={ (base) "/reset-2fa" } class="inline" {
                                    (csrf_field())
                                    button type="submit" { "Turn 2FA off" }
                                }
                            }
                            form method="post" action={ (base) "/remove" } class="inline" {
                                (csrf_field())
                                button type="submit" class="danger" { "Remove" }
                            }
                        }
                    }
                    "\n"
                }
            }
        }
        "\n"
        section id="settings" {
            h2 { "Settings" } "\n"
            form method="post" action="/admin/settings" {
                (csrf_field())
                label {
                    "Two-factor sign-in for admins and technicians "
                    select name="require_second_factor" id="require-second-factor" {
                        option value="no" selected[!required] { "optional" }
                        option value="yes" selected[required] { "required" }
                    }
                }
                " " button type="submit" { "Save" }
            }
        }
        "\n"
        section id="add-user" {
            h2 { "Add a user" } "\n"
            form method="post" action="/admin/users" {
                (csrf_field())
                p { label { "Name " input type="text" name="name" id="new-name" required; } }
                p { label { "Role " (role_select(Some(Role::Technician))) } }
                p { label { "Customers (viewers only) " (customer_select) } }
                p {
                    label {
                        "Password (12 characters or more) "
                        input type="password" name="password" id="new-password"
                            autocomplete="new-password" required;
                    }
                }
                p { button type="submit" id="add" { "Add user" } }
            }
        }
        "\n"
    };
    Ok(Html(layout("Users", b)))
}

/// A form with a role and a viewer's customers (`customer` repeated).
fn role_and_customers(body: &str) -> Result<(Role, Vec<String>), AppError> {
    let mut role = None;
    let mut customers = Vec::new();
    for (k, v) in form_pairs(body) {
        match k.as_str() {
            "role" => role = Role::parse(&v),
            "customer" if !v.trim().is_empty() => customers.push(v),
            _ => {}
        }
    }
    let role = role.ok_or_else(|| AppError::BadRequest("choose a role".into()))?;
    Ok((role, customers))
}

fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// `POST /admin/users`: adds a user.
pub async fn add_user(
    State(p): State<Portal>,
    caller: Caller,
    body: String,
) -> Result<Response, AppError> {
    let actor = admin(&caller)?;
    let (role, customers) = role_and_customers(&body)?;
    let pairs = form_pairs(&body);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (name, password) = (get("name"), get("password"));
    accounts::add_user(
        p.accounts(),
        &actor,
        &name,
        role,
        &customers,
        Some(&password),
        now(),
    )
    .await
    .map_err(refused)?;
    Ok(Redirect::to("/admin/users").into_response())
}

/// `POST /admin/users/{name}/role`.
pub async fn set_role(
    State(p): State<Portal>,
    caller: Caller,
    Path(name): Path<String>,
    body: String,
) -> Result<Response, AppError> {
    let actor = admin(&caller)?;
    let (role, customers) = role_and_customers(&body)?;
    accounts::set_role(p.accounts(), &actor, &name, role, &customers, now())
        .await
        .map_err(refused)?;
    Ok(Redirect::to("/admin/users").into_response())
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

/// `POST /admin/users/{name}/password`.
pub async fn set_password(
    State(p): State<Portal>,
    caller: Caller,
    Path(name): Path<String>,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, AppError> {
    let actor = admin(&caller)?;
    let Ok(Form(form)) = form else {
        return Err(AppError::BadRequest(
            "expected a form with a password".into(),
        ));
    };
    accounts::set_password(p.accounts(), &actor, &name, &form.password, now())
        .await
        .map_err(refused)?;
    Ok(Redirect::to("/admin/users").into_response())
}

/// `POST /admin/users/{name}/reset-2fa`: turns a user's second factor off (a lost phone);
/// its sessions end.
pub async fn reset_second_factor(
    State(p): State<Portal>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let actor = admin(&caller)?;
    accounts::reset_second_factor(p.accounts(), &actor, &name, now())
        .await
        .map_err(refused)?;
    Ok(Redirect::to("/admin/users").into_response())
}

/// `POST /admin/users/{name}/remove`.
pub async fn remove_user(
    State(p): State<Portal>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let actor = admin(&caller)?;
    accounts::remove_user(p.accounts(), &actor, &name, now())
        .await
        .map_err(refused)?;
    Ok(Redirect::to("/admin/users").into_response())
}

/// The settings form.
#[derive(Deserialize)]
pub struct SettingsForm {
    require_second_factor: String,
}

/// `POST /admin/settings`: whether admins and technicians must have a second factor (those
/// without one are sent to set it up before anything else).
pub async fn settings(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Result<Response, AppError> {
    admin(&caller)?;
    let value = match form
        .as_ref()
        .map(|Form(f)| f.require_second_factor.as_str())
    {
        Ok("yes") => "yes",
        Ok("no") => "no",
        _ => {
            return Err(AppError::BadRequest(
                "require_second_factor is yes or no".into(),
            ));
        }
    };
    p.accounts()
        .set_setting(crate::auth::REQUIRE_SECOND_FACTOR, value)
        .await?;
    crate::auth::record(
        &p,
        &caller,
        "setting",
        crate::auth::REQUIRE_SECOND_FACTOR,
        value,
    )
    .await;
    Ok(Redirect::to("/admin/users").into_response())
}

/// `GET /admin/audit`: the newest entries of the audit log.
pub async fn audit_log(State(p): State<Portal>, caller: Caller) -> Result<Html<String>, AppError> {
    admin(&caller)?;
    let log = p.accounts().audit_log(SHOWN, None).await?;
    let b = html! {
        h1 { "Audit log" } "\n"
        p { a href="/admin/audit.csv" id="csv" { "Download the whole log as CSV" } } "\n"
        table class="audit" id="audit" {
            thead {
                tr { th { "When" } th { "Who" } th { "Action" } th { "On" } th { "Detail" } th { "Address" } }
            }
            tbody {
                "\n"
                @for e in &log {
                    tr class="entry" data-action=(e.action) {
                        td class="when" { (datetime(e.at)) }
                        td class="actor" { (e.actor) }
                        td class="action" { (e.action) }
                        td class="target" { (e.target) }
                        td class="detail" { (e.detail) }
                        td { (e.address) }
                    }
                    "\n"
                }
            }
        }
        "\n"
    };
    Ok(Html(layout("Audit log", b)))
}

/// `GET /admin/audit.csv`: the whole audit log, oldest last (as the page), as CSV.
pub async fn audit_csv(State(p): State<Portal>, caller: Caller) -> Result<Response, AppError> {
    admin(&caller)?;
    let mut out = String::from("time,unix_time,actor,action,target,detail,address\r\n");
    let mut before = None;
    loop {
        let page = p.accounts().audit_log(1000, before).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for e in &page {
            let at = mailaudit_core::guide::date_time(e.at);
            let row = [
                at.as_str(),
                &e.at.to_string(),
                &e.actor,
                &e.action,
                &e.target,
                &e.detail,
                &e.address,
            ]
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",");
            out.push_str(&mailaudit_core::text::printable(&row));
            out.push_str("\r\n");
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mailaudit-audit-log.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        for (input, want) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
        ] {
            assert_eq!(csv_field(input), want, "{input:?}");
        }
        let (role, customers) =
            role_and_customers("csrf=x&role=viewer&customer=A+B&customer=C%26D").unwrap();
        assert_eq!(role, Role::Viewer);
        assert_eq!(customers, ["A B", "C&D"]);
        assert!(role_and_customers("role=king").is_err());
    }
}
