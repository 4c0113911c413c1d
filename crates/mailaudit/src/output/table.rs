//! The terminal table: one block per domain, then the fleet summary.

use std::io::Write;

use anyhow::Result;
use mailaudit_core::audit::DomainReport;
use mailaudit_core::checks::Severity;
use mailaudit_core::spf::SpfNode;
use mailaudit_core::spf::analyze::Via;

use super::{Summary, printable};

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn severity_code(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;91",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    }
}

/// Writes `text` after `label` in the finding's text column, continuation lines aligned.
fn field(out: &mut dyn Write, label: &str, text: &str) -> Result<()> {
    let text = printable(text);
    let indent = " ".repeat(12 + label.chars().count() + usize::from(!label.is_empty()));
    for (i, line) in text.lines().enumerate() {
        match (i, label.is_empty()) {
            (0, true) => writeln!(out, "{:12}{line}", "")?,
            (0, false) => writeln!(out, "{:12}{label} {line}", "")?,
            _ => writeln!(out, "{indent}{line}")?,
        }
    }
    Ok(())
}

pub(super) fn domain(out: &mut dyn Write, r: &DomainReport, color: bool) -> Result<()> {
    let name = printable(&r.domain);
    if let Some(err) = &r.error {
        writeln!(
            out,
            "{}  {}\n",
            paint(color, "1", &name),
            paint(color, "31", &printable(err))
        )?;
        return Ok(());
    }
    let (provider, no_score) = super::heading_parts(r);
    let score = match r.score {
        Some(score) => {
            let code = match score {
                90..=100 => "32",
                60..=89 => "33",
                _ => "31",
            };
            paint(color, code, &format!("score {score}/100"))
        }
        None => paint(color, "2", no_score),
    };
    let parked = if r.parked { "  ·  parked" } else { "" };
    writeln!(
        out,
        "{}  ·  {provider}{parked}  ·  {score}",
        paint(color, "1", &name),
    )?;
    let (dnssec, dane) = super::dnssec_cells(r);
    if !dnssec.is_empty() {
        writeln!(out, "  DNSSEC: {dnssec}")?;
        if !dane.is_empty() {
            writeln!(out, "  DANE:   {}", printable(&dane))?;
        }
    }
    if r.findings.is_empty() {
        writeln!(out, "  {}", paint(color, "32", "no findings"))?;
    }
    for f in &r.findings {
        let sev = format!("{:<8}", f.severity.as_str().to_uppercase());
        writeln!(
            out,
            "  {}  {:<26} {}",
            paint(color, severity_code(f.severity), &sev),
            f.id.as_str(),
            printable(&f.title)
        )?;
        if !f.detail.is_empty() {
            field(out, "", &f.detail)?;
        }
        if let Some(ev) = &f.evidence {
            field(out, &paint(color, "2", "read:"), ev)?;
        }
        if f.severity > Severity::Info && !f.fix.is_empty() {
            field(out, &paint(color, "32", "fix:"), &f.fix)?;
        }
    }
    if let Some(tree) = &r.spf.tree
        && (r.spf.lookups >= 9 || tree_has_error(tree))
    {
        writeln!(
            out,
            "  SPF include tree ({} DNS-querying terms, limit 10):",
            r.spf.lookups
        )?;
        write_tree(out, tree, "    ", true, true)?;
    }
    writeln!(out)?;
    Ok(())
}

fn tree_has_error(n: &SpfNode) -> bool {
    n.error.is_some() || n.children.iter().any(tree_has_error)
}

fn write_tree(
    out: &mut dyn Write,
    n: &SpfNode,
    prefix: &str,
    last: bool,
    root: bool,
) -> Result<()> {
    let (branch, next) = if root {
        ("", prefix.to_string())
    } else if last {
        ("└─ ", format!("{prefix}   "))
    } else {
        ("├─ ", format!("{prefix}│  "))
    };
    let label = if root {
        n.domain.clone()
    } else {
        match n.via {
            Via::Redirect => format!("redirect={}", n.domain),
            _ => format!("include:{}", n.domain),
        }
    };
    let err = n
        .error
        .as_deref()
        .map(|e| format!("  ! {e}"))
        .unwrap_or_default();
    writeln!(
        out,
        "{prefix}{branch}{}  {} own, {} total{}",
        printable(&label),
        n.lookups,
        n.total_lookups,
        printable(&err)
    )?;
    for (i, c) in n.children.iter().enumerate() {
        write_tree(out, c, &next, i + 1 == n.children.len(), false)?;
    }
    Ok(())
}

pub(super) fn summary(out: &mut dyn Write, s: &Summary, color: bool) -> Result<()> {
    writeln!(out, "{}", paint(color, "1", &s.line()))?;
    // "3 domains with a critical finding, 8 with a high one, ...": domains, not findings.
    let sev: Vec<String> = Severity::ALL
        .iter()
        .zip(s.by_severity)
        .filter(|(sev, _)| **sev != Severity::Info)
        .enumerate()
        .map(|(i, (sev, n))| {
            let domains = match (i, n) {
                (0, 1) => "1 domain".to_string(),
                (0, n) => format!("{n} domains"),
                (_, n) => n.to_string(),
            };
            let what = if i == 0 { "finding" } else { "one" };
            format!("{domains} with a {} {what}", sev.as_str())
        })
        .collect();
    writeln!(out, "{}", sev.join(", "))?;
    Ok(())
}
