//! `mailaudit checks`: the check catalogue.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Result, bail};
use mailaudit_core::checks::{CATALOGUE, CheckId};

use crate::cli::ChecksArgs;

/// What to say about a name that is no check: the cause, then the closest IDs, or where the
/// list is when nothing is close.
fn unknown_check(name: &str) -> String {
    let name = name.trim();
    // A code is answered with codes ("SPF006 (SPF-SOFTFAIL)"), an ID with IDs.
    let close: Vec<String> = mailaudit_core::checks::suggest(name)
        .into_iter()
        .map(|id| {
            if name.contains('-') {
                id.to_string()
            } else {
                format!("{} ({id})", id.info().code)
            }
        })
        .collect();
    match close.as_slice() {
        [] => format!("no check named {name}; `mailaudit checks` lists them all"),
        [one] => format!("no check named {name}; did you mean {one}?"),
        [first @ .., last] => format!(
            "no check named {name}; did you mean {} or {last}?",
            first.join(", ")
        ),
    }
}

pub(crate) fn checks(args: &ChecksArgs) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    if args.markdown {
        write!(out, "{}", mailaudit_core::checks::render_markdown())?;
        return Ok(ExitCode::SUCCESS);
    }
    match &args.id {
        None => {
            writeln!(
                out,
                "{:<30} {:<9} {:<13} {:<9} TITLE",
                "ID", "CODE", "AREA", "SEVERITY"
            )?;
            for c in CATALOGUE {
                writeln!(
                    out,
                    "{:<30} {:<9} {:<13} {:<9} {}",
                    c.id, c.code, c.area, c.severity, c.title
                )?;
            }
            writeln!(
                out,
                "\nRun `mailaudit checks ID` for what a check means and how to fix it."
            )?;
        }
        Some(id) => {
            let Ok(id) = id.parse::<CheckId>() else {
                bail!("{}", unknown_check(id));
            };
            let c = id.info();
            writeln!(
                out,
                "{} ({}) — {}\narea: {}   severity: {}\n",
                c.id, c.code, c.title, c.area, c.severity
            )?;
            writeln!(
                out,
                "WHAT IT CHECKS\n{}\n\nWHY IT MATTERS\n{}\n\nHOW TO FIX (Microsoft 365)\n{}\n",
                c.what, c.why, c.fix
            )?;
            if !c.references.is_empty() {
                writeln!(out, "REFERENCES")?;
                for r in c.references {
                    writeln!(out, "  - {r}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
