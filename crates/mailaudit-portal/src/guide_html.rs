//! The remediation guide as HTML: the section of a domain's page ([`fragment`]) and the
//! self-contained printable page ([`page`]) that `/domains/{domain}/guide` serves and
//! `mailaudit guide --format html` writes.
//!
//! Built with maud's `html!` like every other page, so every value of the guide (records from
//! DNS, finding details, tenant and people's names) is escaped by construction, and the page
//! goes through [`finish`] (control characters and bidi overrides shown as `\u{1b}`,
//! `\u{202e}`). The guide itself, and its Markdown, are the core's (`guide::build`,
//! `guide::render_markdown`); the sentences both renderings share come from there too.

use maud::{DOCTYPE, Markup, html};

use mailaudit_core::guide::{self, Code, DnsRecord, Guide, GuideItem};

use crate::html::finish;

/// The printable page's style (inline: the page is one self-contained file). It holds no HTML
/// metacharacter, so maud's escaping leaves it as written (a test says so).
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

/// The Content-Security-Policy of the printable page (its `<meta>` and the portal's header):
/// nothing but its own inline style.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// The guide as one self-contained HTML page (inline style, no script, no external asset),
/// finished: every value escaped, control characters and bidi overrides shown visibly.
pub fn page(guide: &Guide) -> String {
    finish(html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n" meta charset="utf-8";
                "\n" meta http-equiv="Content-Security-Policy" content=(PAGE_CSP);
                "\n" title { "Remediation guide for " (guide.domain) }
                "\n" style { (STYLE) }
                "\n"
            }
            "\n"
            body { "\n" (fragment(guide)) }
            "\n"
        }
        "\n"
    })
}

/// The guide's content (from its `<h1>` to its last section; no style, no script), for a page
/// that brings its own style. Classes: `p1`–`p4` on the priority headings, `key`, `note`,
/// `withheld`, `code`, `records` (the host / type / value table of a `dns` block).
pub(crate) fn fragment(guide: &Guide) -> Markup {
    let d = guide.domain.as_str();
    let mut n = 0;
    html! {
        h1 { "Remediation guide for " (d) } "\n"
        p { "Score: " (guide::score_text(guide)) } "\n"
        @for note in &guide.notes {
            p class="note" { (text(note)) } "\n"
        }
        @if !guide.withheld.is_empty() {
            div class="withheld" {
                "\n" h2 { "Withheld" }
                "\n" p {
                    "These look-ups failed, so the checks that need them have no verdict and no \
                     item here. Fix the DNS failure (or retry later) and re-run "
                    code { "mailaudit audit " (d) } "."
                }
                "\n" ul {
                    "\n"
                    @for f in &guide.withheld {
                        li { (f.area.as_str()) ": " (text(&f.detail)) } "\n"
                    }
                }
                "\n"
            }
            "\n"
        }
        @if guide.sections.is_empty() {
            p { "Nothing to do: the report shows no finding that needs a fix." } "\n"
        }
        @for section in &guide.sections {
            h2 class={ "p" (section.priority.as_u8()) } { (section.priority.heading()) } "\n"
            @for item in &section.items {
                ({ n += 1; item_html(n, item) })
            }
        }
    }
}

/// One item: its numbered heading, findings, what was found, why, steps and verification.
fn item_html(n: usize, item: &GuideItem) -> Markup {
    html! {
        section id=(item.key) {
            "\n"
            h3 { (n) ". " (item.title) " " span class="key" { (item.key) } } "\n"
            @if !item.finding_ids.is_empty() {
                p {
                    "Findings: "
                    @for (i, id) in item.finding_ids.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (id.as_str()) }
                    }
                }
                "\n"
            }
            @if !item.found.is_empty() {
                ul {
                    "\n"
                    @for f in &item.found {
                        li { "Found: " (lines(f)) } "\n"
                    }
                }
                "\n"
            }
            p { "Why: " (text(&item.why)) } "\n"
            ol {
                "\n"
                @for step in &item.steps {
                    li {
                        p { (text(&step.text)) }
                        @if let Some(code) = &step.code { "\n" (code_html(code)) }
                    }
                    "\n"
                }
            }
            "\n"
            @if !item.verify.is_empty() {
                p { "Verify:" } "\n"
                @for code in &item.verify { (code_html(code)) }
            }
        }
        "\n"
    }
}

/// A block to paste, and for a `dns` block its records as a DNS provider's form asks for them.
fn code_html(code: &Code) -> Markup {
    html! {
        pre class={ "code " (code.lang.as_str()) } { code { (code.text) } } "\n"
        (records(&code.records))
    }
}

/// The records of a `dns` block as a host / type / value table.
fn records(records: &[DnsRecord]) -> Markup {
    html! {
        @if !records.is_empty() {
            p { (text(&guide::records_intro(records))) } "\n"
            table class="records" {
                "\n"
                thead { tr { th { "Host" } th { "Type" } th { "Value" } th { "Full name" } } } "\n"
                tbody {
                    "\n"
                    @for r in records {
                        tr {
                            td { code { (r.host) } }
                            td { (r.rtype) }
                            td { code { (r.value) } }
                            td { code { (r.name) } }
                        }
                        "\n"
                    }
                }
                "\n"
            }
            "\n"
            @for r in records.iter().filter(|r| !r.strings.is_empty()) {
                p { (text(&guide::long_txt_note(r))) } "\n"
            }
        }
    }
}

/// The guide's sentences: `` `inline code` `` as `<code>`, line breaks as `<br>`.
fn text(s: &str) -> Markup {
    html! {
        @for (i, part) in s.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (lines(part)) }
        }
    }
}

/// `s` with its line breaks as `<br>`.
fn lines(s: &str) -> Markup {
    html! {
        @for (i, line) in s.split('\n').enumerate() {
            @if i > 0 { br; "\n" }
            (line)
        }
    }
}

#[cfg(test)]
mod tests;
