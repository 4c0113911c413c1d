//! Printing a [`Guide`] as Markdown, for terminals and tickets, and the sentences that every
//! rendering of a guide shares ([`records_intro`], [`long_txt_note`], [`score_text`]). The guide
//! as HTML is presentation: the portal's `guide_html` renders it with maud templates, which
//! escape every value, under the one control-character policy of every page.

use std::fmt::Write as _;

use super::{Code, DnsRecord, Guide, GuideItem};

/// The longest run of backticks in `text`.
fn longest_backticks(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A Markdown code fence long enough that `text` cannot close it.
fn fence(text: &str) -> String {
    "`".repeat((longest_backticks(text) + 1).max(3))
}

fn md_code(out: &mut String, code: &Code, indent: &str) {
    let f = fence(&code.text);
    let _ = writeln!(out, "{indent}{f}{}", code.lang.as_str());
    for line in code.text.lines() {
        let _ = writeln!(out, "{indent}{line}");
    }
    let _ = writeln!(out, "{indent}{f}");
    md_records(out, &code.records, indent);
}

/// The sentence before a block's host / type / value table: which zone the hosts are in
/// (Markdown: `` `inline code` `` in backticks).
pub fn records_intro(records: &[DnsRecord]) -> String {
    let mut zones: Vec<&str> = Vec::new();
    for r in records {
        if !zones.contains(&r.zone.as_str()) {
            zones.push(&r.zone);
        }
    }
    let zones: Vec<String> = zones.iter().map(|z| format!("`{z}`")).collect();
    format!(
        "In a DNS provider's form: Host relative to {} (`@` is the domain itself; some panels \
         want the full name), the value without quotes:",
        zones.join(", ")
    )
}

/// What to do with a TXT value longer than one character-string (Markdown: `` `inline code` ``
/// in backticks).
pub fn long_txt_note(r: &DnsRecord) -> String {
    format!(
        "The value at `{}` is {} characters, over the 255 of one TXT string: most panels \
         split it themselves; if yours asks for the strings, enter the {} quoted strings of the \
         zone-file line, in order.",
        r.host,
        r.value.len(),
        r.strings.len()
    )
}

/// An inline code span that holds `text` whatever its backticks, `|` escaped for a table cell.
fn md_cell(text: &str) -> String {
    let ticks = "`".repeat(longest_backticks(text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{}{pad}{ticks}", text.replace('|', "\\|"))
}

/// The records of a `dns` block as a host / type / value table (a DNS provider's form).
fn md_records(out: &mut String, records: &[DnsRecord], indent: &str) {
    if records.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{indent}{}\n", records_intro(records));
    let _ = writeln!(out, "{indent}| Host | Type | Value | Full name |");
    let _ = writeln!(out, "{indent}|---|---|---|---|");
    for r in records {
        let _ = writeln!(
            out,
            "{indent}| {} | {} | {} | {} |",
            md_cell(&r.host),
            r.rtype,
            md_cell(&r.value),
            md_cell(&r.name)
        );
    }
    for r in records.iter().filter(|r| !r.strings.is_empty()) {
        let _ = writeln!(out, "\n{indent}{}", long_txt_note(r));
    }
}

/// Indents every line after the first of a multi-line text by `indent`.
fn hang(text: &str, indent: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 || l.is_empty() {
                l.to_string()
            } else {
                format!("{indent}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The guide's score as shown: `70/100`, or `not scored`.
pub fn score_text(guide: &Guide) -> String {
    match guide.score {
        Some(s) => format!("{s}/100"),
        None => "not scored".into(),
    }
}

fn ids_text(item: &GuideItem) -> String {
    item.finding_ids
        .iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The guide as Markdown.
pub fn render_markdown(guide: &Guide) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Remediation guide for {}\n", guide.domain);
    let _ = writeln!(out, "Score: {}\n", score_text(guide));
    for note in &guide.notes {
        let _ = writeln!(out, "> {}\n", hang(note, "> "));
    }
    if !guide.withheld.is_empty() {
        let _ = writeln!(
            out,
            "## Withheld\n\nThese look-ups failed, so the checks that need them have no verdict \
             and no item here. Fix the DNS failure (or retry later) and re-run `mailaudit audit {}`.\n",
            guide.domain
        );
        for f in &guide.withheld {
            let _ = writeln!(out, "- {}: {}", f.area, hang(&f.detail, "  "));
        }
        out.push('\n');
    }
    if guide.sections.is_empty() {
        out.push_str("Nothing to do: the report shows no finding that needs a fix.\n");
        return out;
    }
    let mut n = 0;
    for section in &guide.sections {
        let _ = writeln!(out, "## {}\n", section.priority.heading());
        for item in &section.items {
            n += 1;
            let _ = writeln!(out, "### {n}. {} (`{}`)\n", item.title, item.key);
            if !item.finding_ids.is_empty() {
                let _ = writeln!(out, "Findings: {}\n", ids_text(item));
            }
            for found in &item.found {
                let _ = writeln!(out, "- Found: {}", hang(found, "  "));
            }
            if !item.found.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "Why: {}\n", item.why);
            for (i, step) in item.steps.iter().enumerate() {
                let _ = writeln!(out, "{}. {}", i + 1, hang(&step.text, "   "));
                if let Some(code) = &step.code {
                    out.push('\n');
                    md_code(&mut out, code, "   ");
                }
                out.push('\n');
            }
            if !item.verify.is_empty() {
                out.push_str("Verify:\n\n");
                for code in &item.verify {
                    md_code(&mut out, code, "");
                    out.push('\n');
                }
            }
        }
    }
    out
}
