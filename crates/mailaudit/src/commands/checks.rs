//! `mailaudit checks`: the check catalogue.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use mailaudit_core::checks::{CATALOGUE, CheckId};

use crate::cli::ChecksArgs;

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
            let id: CheckId = id
                .parse()
                .with_context(|| "run `mailaudit checks` for the list of checks".to_string())?;
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
