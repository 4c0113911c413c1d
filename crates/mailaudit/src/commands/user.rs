//! `mailaudit user add|list|remove|passwd|role`: portal users, through `mailaudit_app::accounts`
//! (argon2id hashes, the last admin kept, every change in the audit log). Passwords come from
//! MAILAUDIT_PASSWORD, standard input (`--password-stdin`) or a prompt without echo; never from
//! the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mailaudit_app::accounts::{self, Actor, describe_role};
use mailaudit_store::{Role, Store, now};

use crate::cli::{PasswordArgs, RoleArg, TextOrJson, UserCommand};
use crate::output::text_stdout;

/// The environment variable a password may come from.
pub(crate) const PASSWORD_ENV: &str = "MAILAUDIT_PASSWORD";

fn role(r: RoleArg) -> Role {
    match r {
        RoleArg::Admin => Role::Admin,
        RoleArg::Technician => Role::Technician,
        RoleArg::Viewer => Role::Viewer,
    }
}

/// The new password of `name`: the first line of standard input with --password-stdin, else
/// MAILAUDIT_PASSWORD, else typed twice at a prompt on the terminal.
fn password(args: &PasswordArgs, name: &str) -> Result<String> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let pw = line.strip_suffix('\n').unwrap_or(&line);
        let pw = pw.strip_suffix('\r').unwrap_or(pw);
        return Ok(pw.to_string());
    }
    if let Ok(pw) = std::env::var(PASSWORD_ENV) {
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password for {name}: set {PASSWORD_ENV}, pass --password-stdin and write it to \
             standard input, or run this in a terminal to be asked (a password is never taken \
             from the command line)"
        );
    }
    let first = rpassword::prompt_password(format!("Password for {name}: "))
        .context("reading the password")?;
    accounts::check_password(&first)?;
    let again =
        rpassword::prompt_password("The same password again: ").context("reading the password")?;
    if first != again {
        bail!("the two passwords differ: nothing changed");
    }
    Ok(first)
}

pub(crate) async fn user_cmd(store: &dyn Store, cmd: &UserCommand) -> Result<ExitCode> {
    let cli = Actor::cli();
    let mut out = text_stdout();
    match cmd {
        UserCommand::Add {
            name,
            role: r,
            admin,
            customers,
            password: pw,
            no_password,
        } => {
            let role = if *admin {
                Role::Admin
            } else {
                role(r.context("--role or --admin is required")?)
            };
            let password = if *no_password {
                None
            } else {
                Some(password(pw, name)?)
            };
            let user = accounts::add_user(
                store,
                &cli,
                name,
                role,
                customers,
                password.as_deref(),
                now(),
            )
            .await?;
            writeln!(
                out,
                "added user {} ({})",
                user.name,
                describe_role(user.role, &user.customers)
            )?;
        }
        UserCommand::List { format } => {
            let users = store.users().await?;
            match format {
                TextOrJson::Json => {
                    let list: Vec<serde_json::Value> = users
                        .iter()
                        .map(|u| {
                            serde_json::json!({
                                "name": u.name,
                                "role": u.role,
                                "customers": u.customers,
                                "password": u.password_hash.is_some(),
                                "second_factor": u.totp_secret.is_some(),
                                "created_at": u.created_at,
                            })
                        })
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                }
                TextOrJson::Text => {
                    if users.is_empty() {
                        eprintln!(
                            "mailaudit: no portal users: the portal serves loopback only, \
                             without sign-in (add the first admin with `mailaudit user add \
                             --admin NAME`)"
                        );
                    }
                    for u in &users {
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}",
                            u.name,
                            describe_role(u.role, &u.customers),
                            if u.password_hash.is_some() {
                                "password"
                            } else {
                                "no password"
                            },
                            if u.totp_secret.is_some() {
                                "2FA"
                            } else {
                                "no 2FA"
                            },
                            crate::commands::dates::format(u.created_at),
                        )?;
                    }
                }
            }
        }
        UserCommand::Remove { name } => {
            let u = accounts::remove_user(store, &cli, name, now()).await?;
            writeln!(out, "removed user {} and ended its sessions", u.name)?;
        }
        UserCommand::Passwd { name, password: pw } => {
            // Unknown users are refused before asking for a password.
            let u = store.user(name).await?;
            let password = password(pw, &u.name)?;
            let ended = accounts::set_password(store, &cli, &u.name, &password, now()).await?;
            writeln!(
                out,
                "password of {} changed; {ended} sessions ended",
                u.name
            )?;
        }
        UserCommand::Reset2fa { name } => {
            let ended = accounts::reset_second_factor(store, &cli, name, now()).await?;
            writeln!(
                out,
                "two-factor sign-in of {name} is off; {ended} sessions ended"
            )?;
        }
        UserCommand::Role {
            name,
            role: r,
            customers,
        } => {
            let changed = accounts::set_role(store, &cli, name, role(*r), customers, now()).await?;
            writeln!(
                out,
                "{} is now {} (was {}); its sessions ended",
                changed.after.name,
                describe_role(changed.after.role, &changed.after.customers),
                describe_role(changed.before.role, &changed.before.customers),
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
