//! The portal's HTML toolkit: the page layout and the escaping policy, URL segments, and a
//! small Markdown subset for the catalogue's texts.
//!
//! Every value that comes from the store (domain names, customer names, finding details,
//! evidence, checklist titles, who ticked an item) is attacker-controlled: a hostile DNS record
//! ends up in a finding's evidence. Pages are built with maud's `html!`, which escapes every
//! spliced value (`&`, `<`, `>`, `"`; attribute values are always double-quoted); raw HTML
//! needs an explicit `PreEscaped`, used only where the comment beside it says why it is safe.
//! Every page then goes through [`finish`], which applies the one policy for control
//! characters and bidi overrides ([`mailaudit_core::text::printable`]: shown as `\u{1b}`,
//! `\u{202e}`), so no value, whatever its path into the page, carries one raw. A URL path
//! segment from the store goes through [`seg`] first.

use std::borrow::Cow;

use maud::{DOCTYPE, Markup, html};

use crate::access::Caller;

/// A finished page: `markup` with [`mailaudit_core::text::printable`] applied to the whole
/// document (after HTML escaping: what it writes contains no HTML metacharacter). The one
/// place the control-character policy is applied to HTML.
pub(crate) fn finish(markup: Markup) -> String {
    let page = markup.into_string();
    match mailaudit_core::text::printable(&page) {
        Cow::Borrowed(_) => page,
        Cow::Owned(escaped) => escaped,
    }
}

/// `s` as one URL path segment: every byte but the RFC 3986 unreserved characters
/// percent-encoded (so `/`, `?`, `#`, `<` and quotes cannot leave the segment). The result is
/// plain ASCII without HTML metacharacters, safe in an attribute.
///
/// RFC 3986 §2.3: "Characters that are allowed in a URI but do not have a reserved purpose are
/// called unreserved. These include uppercase and lowercase letters, decimal digits, hyphen,
/// period, underscore, and tilde."
pub(crate) fn seg(s: &str) -> String {
    const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    // "." and ".." are dot-segments that a browser would resolve away.
    match s {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string(),
    }
}

/// `s` as a query-string value (`application/x-www-form-urlencoded`, spaces as `%20`).
pub(crate) fn query_value(s: &str) -> String {
    seg(s)
}

/// The path of a domain's page (`/domains/<segment>`), plus `suffix` (`""`, `"/guide"`, …).
pub(crate) fn domain_href(domain: &str, suffix: &str) -> String {
    format!("/domains/{}{suffix}", seg(domain))
}

/// The hidden `csrf` field every POST form carries (nothing without accounts).
pub(crate) fn csrf_field() -> Markup {
    html! {
        @if let Some(t) = crate::auth::csrf_token() {
            input type="hidden" name="csrf" value=(t);
        }
    }
}

/// One CSV field: quoted when it holds a comma, a quote or a line break; a value a spreadsheet
/// would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading `'`.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The path of a check's catalogue page.
pub(crate) fn check_href(id: &str) -> String {
    format!("/checks/{}", seg(id))
}

/// `2026-11-28 14:03 UTC` from unix seconds (the core's guide calendar).
pub(crate) fn datetime(t: i64) -> String {
    format!("{} UTC", mailaudit_core::guide::date_time(t))
}

/// A whole page: `title` is plain text, `body` the page module's markup.
pub(crate) fn layout(title: &str, body: Markup) -> String {
    let caller = crate::auth::current();
    finish(html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n" meta charset="utf-8";
                "\n" meta name="viewport" content="width=device-width, initial-scale=1";
                "\n" title { (title) " · mailaudit" }
                "\n" link rel="stylesheet" href="/assets/portal.css";
                "\n"
            }
            "\n"
            body {
                "\n"
                header class="top" {
                    a class="brand" href="/" { "mailaudit" }
                    @match &caller {
                        Some(Caller::SignedOut | Caller::Pending(_)) => {}
                        _ => nav { a href="/" { "Fleet" } a href="/customers" { "Customers" } a href="/checks" { "Checks" }
                            @if caller.as_ref().is_some_and(|c| c.may_write() && !matches!(c, Caller::SignedOut)) {
                                a href="/inventory" { "Inventory" }
                                a href="/schedules" { "Schedules" }
                            }
                            @if caller.as_ref().is_some_and(Caller::is_admin) {
                                a href="/admin/users" { "Users" }
                                a href="/admin/audit" { "Audit log" }
                            }
                        }
                    }
                    @if let Some(u) = caller.as_ref().and_then(Caller::session_user) {
                        form method="post" action="/logout" class="session" {
                            @if caller.as_ref().and_then(Caller::user).is_some() {
                                a href="/account" id="account" { "Account" } " "
                            }
                            span id="signed-in" data-role=(u.role.as_str()) {
                                (u.name) " (" (u.role.as_str()) ")"
                            }
                            " "
                            input type="hidden" name="csrf" value=(u.csrf);
                            button type="submit" id="logout" { "Log out" }
                        }
                    }
                }
                "\n"
                main { "\n" (body) }
                "\n"
                footer {
                    @if matches!(caller, Some(Caller::Open) | None) {
                        "mailaudit portal · read-only view of the store, except the checklist · no \
                         authentication: keep it on loopback"
                    } @else {
                        "mailaudit portal · every change is recorded in the audit log"
                    }
                }
                "\n"
            }
            "\n"
        }
        "\n"
    })
}

/// One block of the Markdown subset.
enum Block<'a> {
    Para(String),
    Code { lang: &'a str, code: String },
    List(List, Vec<&'a str>),
}

/// A small Markdown subset, as the catalogue writes it: paragraphs, fenced code blocks,
/// numbered and bulleted lists (one line per item) and `` `inline code` ``. Everything else is
/// text, escaped; no raw HTML passes through.
pub(crate) fn markdown(md: &str) -> Markup {
    let mut blocks = Vec::new();
    let mut lines = md.lines().peekable();
    let mut para: Vec<&str> = Vec::new();
    let flush = |blocks: &mut Vec<Block>, para: &mut Vec<&str>| {
        if !para.is_empty() {
            blocks.push(Block::Para(para.join(" ")));
            para.clear();
        }
    };
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(lang) = t.strip_prefix("```") {
            flush(&mut blocks, &mut para);
            let mut code = Vec::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                code.push(l);
            }
            blocks.push(Block::Code {
                lang: lang.trim(),
                code: code.join("\n"),
            });
        } else if t.is_empty() {
            flush(&mut blocks, &mut para);
        } else if let Some((kind, text)) = list_item(t) {
            flush(&mut blocks, &mut para);
            let mut items = vec![text];
            while let Some((k, text)) = lines.peek().and_then(|l| list_item(l.trim_start())) {
                if k != kind {
                    break;
                }
                items.push(text);
                lines.next();
            }
            blocks.push(Block::List(kind, items));
        } else {
            para.push(t);
        }
    }
    flush(&mut blocks, &mut para);
    html! {
        @for block in &blocks {
            @match block {
                Block::Para(text) => { p { (inline(text)) } "\n" }
                Block::Code { lang, code } => {
                    pre class={ "code " (lang) } { code { (code) } } "\n"
                }
                Block::List(List::Numbered, items) => {
                    ol { "\n" @for i in items { li { (inline(i)) } "\n" } } "\n"
                }
                Block::List(List::Bullet, items) => {
                    ul { "\n" @for i in items { li { (inline(i)) } "\n" } } "\n"
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Numbered,
    Bullet,
}

/// `1. text` or `- text` → the list kind and the text.
fn list_item(t: &str) -> Option<(List, &str)> {
    if let Some(rest) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
        return Some((List::Bullet, rest));
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        return t[digits..]
            .strip_prefix(". ")
            .map(|rest| (List::Numbered, rest));
    }
    None
}

/// `s` as text, with `` `inline code` `` as `<code>`.
pub(crate) fn inline(s: &str) -> Markup {
    html! {
        @for (i, part) in s.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// A catalogue reference: `"Title — https://…"` becomes a link, anything else text.
pub(crate) fn reference(r: &str) -> Markup {
    match r.rsplit_once(" — ") {
        Some((title, url)) if url.starts_with("https://") && !url.contains(char::is_whitespace) => {
            html! { a href=(url) rel="noreferrer noopener" { (title) } }
        }
        _ => html! { (r) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        for (input, want) in [
            ("plain.example", "plain.example"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a\"b'c&d", "a&quot;b'c&amp;d"),
            // Controls and bidi overrides are shown, never passed raw (nor as a character
            // reference, which the browser would decode: `&#x9b;` even becomes `›`).
            (
                "x\u{7}y\u{202e}z\u{1b}[2J\u{9b}\u{2066}\r",
                "x\\u{7}y\\u{202e}z\\u{1b}[2J\\u{9b}\\u{2066}\\u{d}",
            ),
            ("tab\tand\nline", "tab\tand\nline"),
            ("ünïcode", "ünïcode"),
        ] {
            assert_eq!(finish(html! { (input) }), want, "{input:?}");
            assert_eq!(
                finish(html! { a title=(input) {} }),
                format!("<a title=\"{want}\"></a>"),
                "{input:?} in an attribute"
            );
        }
        // The whole page goes through the policy, the title too.
        let page = layout("t\u{202e}", html! { p { "\u{1b}" } });
        assert!(
            page.contains("<title>t\\u{202e} · mailaudit</title>"),
            "{page}"
        );
        assert!(page.contains("<p>\\u{1b}</p>"), "{page}");
        assert!(!page.chars().any(mailaudit_core::text::unsafe_char));
    }

    #[test]
    fn segments() {
        for (input, want) in [
            ("contoso.com", "contoso.com"),
            ("a/b?c#d", "a%2Fb%3Fc%23d"),
            ("<x y=\"1\">", "%3Cx%20y%3D%221%22%3E"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(seg(input), want, "{input:?}");
        }
    }

    #[test]
    fn markdown_subset() {
        let md = "Publish `v=DMARC1` <now>.\n\nSecond\nline.\n\n```text\n<a> & b\n```\n\n1. one `x`\n2. two\n\n- a\n- b\nafter";
        let html = markdown(md).into_string();
        assert_eq!(
            html,
            "<p>Publish <code>v=DMARC1</code> &lt;now&gt;.</p>\n<p>Second line.</p>\n\
             <pre class=\"code text\"><code>&lt;a&gt; &amp; b</code></pre>\n\
             <ol>\n<li>one <code>x</code></li>\n<li>two</li>\n</ol>\n\
             <ul>\n<li>a</li>\n<li>b</li>\n</ul>\n<p>after</p>\n"
        );
        // Every catalogue text renders without raw HTML escaping into the page.
        for info in mailaudit_core::checks::CATALOGUE {
            let h = markdown(info.fix).into_string();
            assert!(!h.contains("<script"), "{}", info.id);
            assert!(h.starts_with("<p>"), "{}", info.id);
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            reference("RFC 7489 §6.1").into_string(),
            "RFC 7489 §6.1",
            "plain references stay text"
        );
        assert_eq!(
            reference("Doc — https://x.example/a?b=1&c=2").into_string(),
            "<a href=\"https://x.example/a?b=1&amp;c=2\" rel=\"noreferrer noopener\">Doc</a>"
        );
        assert_eq!(
            reference("Doc — javascript:alert(1)").into_string(),
            "Doc — javascript:alert(1)"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(datetime(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
