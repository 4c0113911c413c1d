//! SMTP reply parsing (RFC 5321 §4.2), line by line, with caps on the line length and the
//! number of lines so that a hostile server cannot make the client buffer without bound.

use std::fmt;

/// At most this many lines in one reply. RFC 5321 sets no limit on multi-line replies; real
/// EHLO replies have about 10–20 lines.
pub const MAX_REPLY_LINES: usize = 100;

/// At most this many octets in one reply line, without its CRLF. RFC 5321 §4.5.3.1.5 sets 512;
/// real servers exceed it slightly, so the parser is lenient up to 4096.
pub const MAX_REPLY_LINE: usize = 4096;

/// One SMTP reply: a three-digit code and its text lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The reply code, 200–599.
    pub code: u16,
    /// The RFC 3463 enhanced status code (e.g. `5.7.68`) at the start of the first line's text,
    /// when there is one.
    pub enhanced: Option<String>,
    /// The text after the code and its separator, one entry per line (may be empty strings).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply `code text` (for tests and for synthesised replies).
    pub fn new(code: u16, text: &str) -> Self {
        Reply {
            code,
            enhanced: enhanced_code(text),
            lines: vec![text.to_string()],
        }
    }

    /// The first line with its code, as shown in reports: `550 5.7.68 TenantInboundAttribution; …`.
    pub fn text(&self) -> String {
        match self.lines.first() {
            Some(l) if !l.is_empty() => format!("{} {l}", self.code),
            _ => self.code.to_string(),
        }
    }

    /// All lines' text joined with spaces (for matching phrases that may sit on any line).
    pub fn full_text(&self) -> String {
        self.lines.join(" ")
    }

    /// The first digit: 2 positive completion, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// A 2xx reply.
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }
}

/// The reply as sent on the wire, lines separated by CRLF (no final CRLF):
/// `250-first`, …, `250 last`.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            if i > 0 {
                f.write_str("\r\n")?;
            }
            write!(f, "{}{sep}{text}", self.code)?;
        }
        Ok(())
    }
}

/// Why a reply line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The line does not start with three digits.
    #[error("not an SMTP reply line: {0:?}")]
    NotAReply(String),
    /// Three digits, but not a reply code RFC 5321 allows (first digit 2–5, second 0–5).
    #[error("invalid reply code {0}")]
    BadCode(String),
    /// The code is followed by something other than a space, a hyphen or the end of the line.
    #[error("bad separator after reply code in {0:?}")]
    BadSeparator(String),
    /// A continuation line carries another code than the first line.
    #[error("reply code changed within a multi-line reply: {first} then {got}")]
    MismatchedCode {
        /// The first line's code.
        first: u16,
        /// The offending line's code.
        got: u16,
    },
    /// A line longer than the cap.
    #[error("reply line of {len} octets exceeds the limit of {max}")]
    LineTooLong {
        /// The cap.
        max: usize,
        /// The line's length.
        len: usize,
    },
    /// More lines than the cap.
    #[error("reply has more than {max} lines")]
    TooManyLines {
        /// The cap.
        max: usize,
    },
}

/// Assembles one reply from lines (already split, CRLF stripped).
///
/// RFC 5321 §4.2:
///
/// > An SMTP reply consists of a three digit number (transmitted as three numeric characters)
/// > followed by some text unless specified otherwise in this document. […] The format for
/// > multiline replies requires that every line, except the last, begin with the reply code,
/// > followed immediately by a hyphen, "-" (also known as minus), followed by text. The last
/// > line will begin with the reply code, followed immediately by `<SP>`, optionally some text,
/// > and `<CRLF>`.
/// >
/// > ```text
/// > Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
/// >                  Reply-code [ SP textstring ] CRLF
/// > Reply-code     = %x32-35 %x30-35 %x30-39
/// > ```
#[derive(Clone, Debug)]
pub struct ReplyParser {
    max_lines: usize,
    max_line: usize,
    code: Option<u16>,
    lines: Vec<String>,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// A parser with the default caps ([`MAX_REPLY_LINES`], [`MAX_REPLY_LINE`]).
    pub fn new() -> Self {
        Self::with_caps(MAX_REPLY_LINES, MAX_REPLY_LINE)
    }

    /// A parser with explicit caps (at least one line of at least 3 octets).
    pub fn with_caps(max_lines: usize, max_line: usize) -> Self {
        ReplyParser {
            max_lines: max_lines.max(1),
            max_line: max_line.max(3),
            code: None,
            lines: Vec::new(),
        }
    }

    /// The line-length cap in octets.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Whether part of a multi-line reply has been read.
    pub fn in_progress(&self) -> bool {
        self.code.is_some()
    }

    /// Feeds one line; returns the reply when this was its last line. After an error or a
    /// complete reply the parser is reset and can read the next reply.
    pub fn feed(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        let r = self.feed_inner(line);
        if !matches!(r, Ok(None)) {
            self.code = None;
        }
        r
    }

    fn feed_inner(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        if line.len() > self.max_line {
            return Err(ReplyError::LineTooLong {
                max: self.max_line,
                len: line.len(),
            });
        }
        let b = line.as_bytes();
        if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
            return Err(ReplyError::NotAReply(excerpt(line)));
        }
        // The first three octets are ASCII digits, so slicing at 3 is on a char boundary.
        let (digits, rest) = line.split_at(3);
        if !(b'2'..=b'5').contains(&b[0]) || !(b'0'..=b'5').contains(&b[1]) {
            return Err(ReplyError::BadCode(digits.to_string()));
        }
        let code: u16 = digits
            .parse()
            .map_err(|_| ReplyError::BadCode(digits.to_string()))?;
        let (last, text) = match rest.as_bytes().first() {
            None => (true, ""),
            Some(b' ') => (true, &rest[1..]),
            Some(b'-') => (false, &rest[1..]),
            Some(_) => return Err(ReplyError::BadSeparator(excerpt(line))),
        };
        match self.code {
            None => {
                self.code = Some(code);
                self.lines.clear();
            }
            Some(first) if first != code => {
                return Err(ReplyError::MismatchedCode { first, got: code });
            }
            Some(_) => {}
        }
        if self.lines.len() >= self.max_lines {
            return Err(ReplyError::TooManyLines {
                max: self.max_lines,
            });
        }
        self.lines.push(text.to_string());
        if !last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        let enhanced = lines.first().and_then(|l| enhanced_code(l));
        Ok(Some(Reply {
            code,
            enhanced,
            lines,
        }))
    }
}

/// Parses a whole reply from text with CRLF or LF line ends (convenience for tests and tools).
pub fn parse_reply(text: &str) -> Result<Reply, ReplyError> {
    let mut p = ReplyParser::new();
    let mut lines = text.split('\n').peekable();
    while let Some(raw) = lines.next() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() && lines.peek().is_none() {
            break;
        }
        if let Some(r) = p.feed(line)? {
            return Ok(r);
        }
    }
    Err(ReplyError::NotAReply(String::new()))
}

/// The RFC 3463 enhanced status code at the start of `text`, if any.
///
/// RFC 3463 §2:
///
/// > ```text
/// > status-code = class "." subject "." detail
/// > class = "2"/"4"/"5"
/// > subject = 1*3digit
/// > detail = 1*3digit
/// > ```
pub fn enhanced_code(text: &str) -> Option<String> {
    let word = text.split_ascii_whitespace().next()?;
    let mut parts = word.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !matches!(class, "2" | "4" | "5") {
        return None;
    }
    let ok = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    (ok(subject) && ok(detail)).then(|| word.to_string())
}

/// At most 80 characters of a line, for error messages (char-boundary safe).
fn excerpt(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(p: &mut ReplyParser, lines: &[&str]) -> Result<Option<Reply>, ReplyError> {
        let mut out = Ok(None);
        for l in lines {
            out = p.feed(l);
            if !matches!(out, Ok(None)) {
                break;
            }
        }
        out
    }

    #[test]
    fn rfc5321_section_4_2_replies() {
        type Case<'a> = (&'a [&'a str], Result<Option<Reply>, ReplyError>);
        let cases: &[Case] = &[
            (
                &["220 mx.example.com ESMTP"],
                Ok(Some(Reply::new(220, "mx.example.com ESMTP"))),
            ),
            (
                &["250-mx.example.com", "250-PIPELINING", "250 STARTTLS"],
                Ok(Some(Reply {
                    code: 250,
                    enhanced: None,
                    lines: vec![
                        "mx.example.com".into(),
                        "PIPELINING".into(),
                        "STARTTLS".into(),
                    ],
                })),
            ),
            (&["250"], Ok(Some(Reply::new(250, "")))),
            (&["250-"], Ok(None)),
            (
                &["550 5.7.68 TenantInboundAttribution; Direct Send not allowed"],
                Ok(Some(Reply {
                    code: 550,
                    enhanced: Some("5.7.68".into()),
                    lines: vec!["5.7.68 TenantInboundAttribution; Direct Send not allowed".into()],
                })),
            ),
            (
                &["HTTP/1.1 400 Bad Request"],
                Err(ReplyError::NotAReply("HTTP/1.1 400 Bad Request".into())),
            ),
            (&[""], Err(ReplyError::NotAReply(String::new()))),
            (&["25"], Err(ReplyError::NotAReply("25".into()))),
            (&["600 nope"], Err(ReplyError::BadCode("600".into()))),
            (&["199 nope"], Err(ReplyError::BadCode("199".into()))),
            (&["260 nope"], Err(ReplyError::BadCode("260".into()))),
            (&["250x"], Err(ReplyError::BadSeparator("250x".into()))),
            (
                &["2500 ok"],
                Err(ReplyError::BadSeparator("2500 ok".into())),
            ),
            (
                &["250-first", "251 second"],
                Err(ReplyError::MismatchedCode {
                    first: 250,
                    got: 251,
                }),
            ),
            (
                &["250-first", "garbage"],
                Err(ReplyError::NotAReply("garbage".into())),
            ),
        ];
        for (lines, want) in cases {
            let mut p = ReplyParser::new();
            assert_eq!(&feed_all(&mut p, lines), want, "{lines:?}");
        }
    }

    #[test]
    fn caps_on_line_length_and_count() {
        let mut p = ReplyParser::with_caps(3, 20);
        let long = format!("250 {}", "x".repeat(17));
        assert_eq!(
            p.feed(&long),
            Err(ReplyError::LineTooLong { max: 20, len: 21 })
        );
        assert!(!p.in_progress());
        let mut p = ReplyParser::with_caps(3, 20);
        assert_eq!(
            feed_all(&mut p, &["250-a", "250-b", "250-c", "250 d"]),
            Err(ReplyError::TooManyLines { max: 3 })
        );
        // The parser recovers for the next reply.
        assert_eq!(p.feed("250 ok"), Ok(Some(Reply::new(250, "ok"))));
        let mut p = ReplyParser::new();
        let lines: Vec<String> = (0..=MAX_REPLY_LINES).map(|i| format!("250-{i}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(
            feed_all(&mut p, &refs),
            Err(ReplyError::TooManyLines {
                max: MAX_REPLY_LINES
            })
        );
    }

    #[test]
    fn enhanced_codes() {
        for (text, want) in [
            ("5.7.68 TenantInboundAttribution", Some("5.7.68")),
            ("4.7.500 Server busy", Some("4.7.500")),
            ("2.1.0 Sender OK", Some("2.1.0")),
            ("5.7.1234 too long", None),
            ("3.1.1 bad class", None),
            ("5.7 short", None),
            ("5.7.1.2 long", None),
            ("Recipient ok", None),
            ("", None),
        ] {
            assert_eq!(enhanced_code(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn text_and_display() {
        let r =
            parse_reply("250-mx.example.com hello\r\n250-SIZE 1000\r\n250 STARTTLS\r\n").unwrap();
        assert_eq!(r.text(), "250 mx.example.com hello");
        assert_eq!(
            r.to_string(),
            "250-mx.example.com hello\r\n250-SIZE 1000\r\n250 STARTTLS"
        );
        assert_eq!(Reply::new(354, "").text(), "354");
        // Non-ASCII text is kept; excerpts cut on char boundaries.
        let e = ReplyParser::new().feed(&"é".repeat(100)).unwrap_err();
        assert!(matches!(e, ReplyError::NotAReply(s) if s.ends_with('…')));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(lines in proptest::collection::vec(".{0,120}", 0..8)) {
            let mut p = ReplyParser::with_caps(5, 64);
            for l in &lines {
                let _ = p.feed(l);
            }
        }

        #[test]
        fn parser_round_trips_display(
            code in 200u16..=559,
            lines in proptest::collection::vec("[ -~]{0,40}", 1..6),
        ) {
            proptest::prop_assume!(code % 100 < 60);
            let r = Reply { code, enhanced: enhanced_code(&lines[0]), lines };
            proptest::prop_assert_eq!(parse_reply(&r.to_string()), Ok(r));
        }
    }
}
