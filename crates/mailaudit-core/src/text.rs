//! The one policy for characters that must not be shown as they are, in every text mailaudit
//! writes for people: the terminal, Markdown, CSV cells and HTML pages (the portal's and the
//! CLI's report, where it applies after HTML escaping).
//!
//! DNS records, SMTP replies, exports and operator-entered names are attacker-controlled. A
//! C0 or C1 control character (ESC, BEL, CR, CSI, ...) can drive a terminal (title change,
//! screen clear); a bidirectional override or isolate reorders what is shown (a record that
//! reads differently from what it is). Each such character is shown as its Rust escape
//! (`\u{1b}`, `\u{202e}`): visible, and made only of ASCII characters that are neither HTML
//! nor Markdown nor CSV metacharacters. Line feeds and tabs are kept.

use std::borrow::Cow;

/// Whether `c` must not be shown as it is: C0 and C1 control characters and DEL (ESC, BEL,
/// CR, ...), except line feed and tab, and the Unicode bidirectional embeddings, overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069), which reorder what is shown.
pub fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `s` with each [`unsafe_char`] shown as its Rust escape (`\u{1b}`, `\u{202e}`); borrowed
/// when there is none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_controls_and_bidi_only() {
        assert_eq!(
            printable("a\u{1b}]0;t\u{7}b\r\u{7f}\u{9b}\u{202e}\u{2066}\tc\né"),
            "a\\u{1b}]0;t\\u{7}b\\u{d}\\u{7f}\\u{9b}\\u{202e}\\u{2066}\tc\né"
        );
        assert!(matches!(printable("plain — text"), Cow::Borrowed(_)));
        // What it writes is inert in HTML, Markdown and CSV: no metacharacter of theirs.
        let all: String = (0u32..0x30000).filter_map(char::from_u32).collect();
        let shown = printable(&all);
        assert!(!shown.chars().any(unsafe_char));
        assert_eq!(
            shown.matches(['<', '>', '&', '"', '\'', '`', ',']).count(),
            all.matches(['<', '>', '&', '"', '\'', '`', ',']).count()
        );
    }
}
