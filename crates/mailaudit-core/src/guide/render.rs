//! Printing a [`Guide`]: Markdown for terminals and tickets, and a self-contained HTML page
//! (inline style, no script, no external asset; every value escaped).

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

/// The sentence before a block's host / type / value table: which zone the hosts are in.
fn records_intro(records: &[DnsRecord]) -> String {
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

/// What to do with a TXT value longer than one character-string.
fn long_txt_note(r: &DnsRecord) -> String {
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

fn score_text(guide: &Guide) -> String {
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

/// HTML-escapes `s` (text and attribute values alike).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#x{:x};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes `s`, turning `` `inline code` `` into `<code>` and line breaks into `<br>`.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part).replace('\n', "<br>\n"));
        }
    }
    out
}

fn html_code(out: &mut String, code: &Code) {
    let _ = writeln!(
        out,
        "<pre class=\"code {}\"><code>{}</code></pre>",
        code.lang.as_str(),
        esc(&code.text)
    );
    html_records(out, &code.records);
}

/// The records of a `dns` block as a host / type / value table (a DNS provider's form).
fn html_records(out: &mut String, records: &[DnsRecord]) {
    if records.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<p>{}</p>\n<table class=\"records\">\n<thead><tr><th>Host</th><th>Type</th><th>Value</th><th>Full name</th></tr></thead>\n<tbody>",
        inline(&records_intro(records))
    );
    for r in records {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&r.host),
            esc(&r.rtype),
            esc(&r.value),
            esc(&r.name)
        );
    }
    out.push_str("</tbody>\n</table>\n");
    for r in records.iter().filter(|r| !r.strings.is_empty()) {
        let _ = writeln!(out, "<p>{}</p>", inline(&long_txt_note(r)));
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1b1b1b}\
h2{border-bottom:2px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}\
h2.p1{border-color:#b00020}h2.p2{border-color:#e06c00}h2.p3{border-color:#c9a400}h2.p4{border-color:#5a7d9a}\
pre{background:#f4f4f4;border:1px solid #ddd;padding:.6rem;overflow-x:auto;white-space:pre}\
code{font-family:ui-monospace,monospace;font-size:.92em}\
.key{color:#666;font-weight:normal;font-size:.8em}\
.note{background:#fff8e1;border-left:4px solid #e0b000;padding:.4rem .8rem}\
.withheld{background:#fdecea;border-left:4px solid #b00020;padding:.4rem .8rem}\
table.records{border-collapse:collapse;margin:.4rem 0}\
table.records th,table.records td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}\
table.records td code{word-break:break-all}";

/// The guide as one self-contained HTML page.
pub fn render_html(guide: &Guide) -> String {
    let mut out = String::new();
    let d = esc(&guide.domain);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>Remediation guide for {d}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    out.push_str(&render_html_fragment(guide));
    out.push_str("</body>\n</html>\n");
    out
}

/// The guide's content as an HTML fragment (from its `<h1>` to its last section, every value
/// escaped, no style, no script), for embedding in a page that brings its own style (the web
/// portal). Classes: `p1`–`p4` on the priority headings, `key`, `note`, `withheld`, `code`,
/// `records` (the host / type / value table of a `dns` block).
pub fn render_html_fragment(guide: &Guide) -> String {
    let mut out = String::new();
    let d = esc(&guide.domain);
    let _ = writeln!(
        out,
        "<h1>Remediation guide for {d}</h1>\n<p>Score: {}</p>",
        esc(&score_text(guide))
    );
    for note in &guide.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", inline(note));
    }
    if !guide.withheld.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"withheld\">\n<h2>Withheld</h2>\n<p>These look-ups failed, so the checks \
             that need them have no verdict and no item here. Fix the DNS failure (or retry later) \
             and re-run <code>mailaudit audit {d}</code>.</p>\n<ul>"
        );
        for f in &guide.withheld {
            let _ = writeln!(
                out,
                "<li>{}: {}</li>",
                esc(f.area.as_str()),
                inline(&f.detail)
            );
        }
        out.push_str("</ul>\n</div>\n");
    }
    if guide.sections.is_empty() {
        out.push_str("<p>Nothing to do: the report shows no finding that needs a fix.</p>\n");
    }
    let mut n = 0;
    for section in &guide.sections {
        let p = section.priority;
        let _ = writeln!(
            out,
            "<h2 class=\"p{}\">{}</h2>",
            p.as_u8(),
            esc(p.heading())
        );
        for item in &section.items {
            n += 1;
            let _ = writeln!(
                out,
                "<section id=\"{}\">\n<h3>{n}. {} <span class=\"key\">{}</span></h3>",
                esc(item.key),
                esc(&item.title),
                esc(item.key)
            );
            if !item.finding_ids.is_empty() {
                let _ = writeln!(out, "<p>Findings: {}</p>", inline(&ids_text(item)));
            }
            if !item.found.is_empty() {
                out.push_str("<ul>\n");
                for f in &item.found {
                    let _ = writeln!(out, "<li>Found: {}</li>", esc(f).replace('\n', "<br>\n"));
                }
                out.push_str("</ul>\n");
            }
            let _ = writeln!(out, "<p>Why: {}</p>\n<ol>", inline(&item.why));
            for step in &item.steps {
                let _ = write!(out, "<li><p>{}</p>", inline(&step.text));
                if let Some(code) = &step.code {
                    out.push('\n');
                    html_code(&mut out, code);
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ol>\n");
            if !item.verify.is_empty() {
                out.push_str("<p>Verify:</p>\n");
                for code in &item.verify {
                    html_code(&mut out, code);
                }
            }
            out.push_str("</section>\n");
        }
    }
    out
}
