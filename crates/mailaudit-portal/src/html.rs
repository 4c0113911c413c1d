//! The portal's HTML toolkit: escaping, URL path segments, the page layout and a small Markdown
//! subset for the catalogue's texts.
//!
//! Every value that comes from the store (domain names, customer names, finding details,
//! evidence, checklist titles, who ticked an item) is attacker-controlled: a hostile DNS record
//! ends up in a finding's evidence. Such values reach a page only through [`Esc`] (text and
//! attribute values) or [`seg`] (a URL path segment, then escaped). Pages are built with
//! `write!` into a `String`; the literal parts are ours.

use std::fmt::{self, Write as _};

/// Displays a string HTML-escaped, for text and (double- or single-quoted) attribute values.
pub(crate) struct Esc<'a>(pub(crate) &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = 0;
        for (i, c) in self.0.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                c if c.is_control() && c != '\n' && c != '\t' => {
                    f.write_str(&self.0[last..i])?;
                    write!(f, "&#x{:x};", c as u32)?;
                    last = i + c.len_utf8();
                    continue;
                }
                _ => continue,
            };
            f.write_str(&self.0[last..i])?;
            f.write_str(rep)?;
            last = i + c.len_utf8();
        }
        f.write_str(&self.0[last..])
    }
}

/// The escaped form of `s`.
pub(crate) fn esc(s: &str) -> String {
    Esc(s).to_string()
}

/// `s` as one URL path segment: every byte but the RFC 3986 unreserved characters
/// percent-encoded (so `/`, `?`, `#`, `<` and quotes cannot leave the segment). The result is
/// plain ASCII without HTML metacharacters, safe in an attribute.
///
/// RFC 3986 §2.3: "Characters that are allowed in a URI but do not have a reserved purpose are
/// called unreserved. These include uppercase and lowercase letters, decimal digits, hyphen,
/// period, underscore, and tilde."
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    // "." and ".." are dot-segments that a browser would resolve away.
    match out.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => out,
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

/// The path of a check's catalogue page.
pub(crate) fn check_href(id: &str) -> String {
    format!("/checks/{}", seg(id))
}

/// `2026-11-28 14:03 UTC` from unix seconds (the date from the core's guide calendar).
pub(crate) fn datetime(t: i64) -> String {
    let sod = t.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02} UTC",
        mailaudit_core::guide::date(t),
        sod / 3600,
        sod % 3600 / 60
    )
}

/// A whole page: `title` is plain text (escaped here), `body` is HTML built by a page module.
pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · mailaudit</title>\n<link rel=\"stylesheet\" href=\"/assets/portal.css\">\n\
         </head>\n<body>\n<header class=\"top\"><a class=\"brand\" href=\"/\">mailaudit</a>\
         <nav><a href=\"/\">Fleet</a><a href=\"/checks\">Checks</a></nav></header>\n\
         <main>\n{body}</main>\n<footer>mailaudit portal · read-only view of the store, except the \
         checklist · no authentication: keep it on loopback</footer>\n</body>\n</html>\n",
        Esc(title)
    )
}

/// A small Markdown subset, as the catalogue writes it: paragraphs, fenced code blocks,
/// numbered and bulleted lists (one line per item) and `` `inline code` ``. Everything else is
/// text, escaped; no raw HTML passes through.
pub(crate) fn markdown(md: &str) -> String {
    let mut out = String::new();
    let mut lines = md.lines().peekable();
    let mut para: Vec<&str> = Vec::new();
    let flush = |out: &mut String, para: &mut Vec<&str>| {
        if !para.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(&para.join(" ")));
            para.clear();
        }
    };
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(lang) = t.strip_prefix("```") {
            flush(&mut out, &mut para);
            let mut code = Vec::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                code.push(l);
            }
            let _ = writeln!(
                out,
                "<pre class=\"code {}\"><code>{}</code></pre>",
                Esc(lang.trim()),
                Esc(&code.join("\n"))
            );
        } else if t.is_empty() {
            flush(&mut out, &mut para);
        } else if let Some((kind, text)) = list_item(t) {
            flush(&mut out, &mut para);
            let tag = if kind == List::Numbered { "ol" } else { "ul" };
            let _ = writeln!(out, "<{tag}>\n<li>{}</li>", inline(text));
            while let Some(next) = lines.peek().copied() {
                match list_item(next.trim_start()) {
                    Some((k, text)) if k == kind => {
                        let _ = writeln!(out, "<li>{}</li>", inline(text));
                        lines.next();
                    }
                    _ => break,
                }
            }
            let _ = writeln!(out, "</{tag}>");
        } else {
            para.push(t);
        }
    }
    flush(&mut out, &mut para);
    out
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

/// Escapes `s`, turning `` `inline code` `` into `<code>`.
pub(crate) fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", Esc(part));
        } else {
            let _ = write!(out, "{}", Esc(part));
        }
    }
    out
}

/// A catalogue reference: `"Title — https://…"` becomes a link, anything else text.
pub(crate) fn reference(r: &str) -> String {
    match r.rsplit_once(" — ") {
        Some((title, url)) if url.starts_with("https://") && !url.contains(char::is_whitespace) => {
            format!(
                "<a href=\"{}\" rel=\"noreferrer noopener\">{}</a>",
                Esc(url),
                Esc(title)
            )
        }
        _ => esc(r),
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
            ("a\"b'c&d", "a&quot;b&#39;c&amp;d"),
            ("x\u{7}y\u{202e}", "x&#x7;y\u{202e}"),
            ("ünïcode", "ünïcode"),
        ] {
            assert_eq!(esc(input), want, "{input:?}");
        }
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
        let html = markdown(md);
        assert_eq!(
            html,
            "<p>Publish <code>v=DMARC1</code> &lt;now&gt;.</p>\n<p>Second line.</p>\n\
             <pre class=\"code text\"><code>&lt;a&gt; &amp; b</code></pre>\n\
             <ol>\n<li>one <code>x</code></li>\n<li>two</li>\n</ol>\n\
             <ul>\n<li>a</li>\n<li>b</li>\n</ul>\n<p>after</p>\n"
        );
        // Every catalogue text renders without raw HTML escaping into the page.
        for info in mailaudit_core::checks::CATALOGUE {
            let h = markdown(info.fix);
            assert!(!h.contains("<script"), "{}", info.id);
            assert!(h.starts_with("<p>"), "{}", info.id);
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            reference("RFC 7489 §6.1"),
            "RFC 7489 §6.1",
            "plain references stay text"
        );
        assert_eq!(
            reference("Doc — https://x.example/a?b=1&c=2"),
            "<a href=\"https://x.example/a?b=1&amp;c=2\" rel=\"noreferrer noopener\">Doc</a>"
        );
        assert_eq!(
            reference("Doc — javascript:alert(1)"),
            "Doc — javascript:alert(1)"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(datetime(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
