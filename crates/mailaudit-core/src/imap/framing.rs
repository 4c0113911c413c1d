//! Framing: the literals a response line announces, and a response as read from the wire.

use super::{ProtocolError, malformed, printable};

/// The size of the literal a response line announces at its end (`{N}`), if any.
///
/// RFC 3501 §4.3: "A literal is a sequence of zero or more octets (including CR and LF),
/// prefix-quoted with an octet count in the form of an open brace ("{"), the number of octets,
/// close brace ("}"), and CRLF. [...] In the case of literals transmitted from server to
/// client, the CRLF is immediately followed by the octet data." `line` is without its CRLF.
/// A `{` in the middle of a line is just text; an announcement with a count that is not a
/// number is an error.
pub fn literal_announced(line: &[u8]) -> Result<Option<u64>, ProtocolError> {
    let Some(body) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = body.iter().rposition(|&b| b == b'{') else {
        return Ok(None);
    };
    let digits = &body[open + 1..];
    // `{` inside resp-text (e.g. "* OK {not a literal}") is not followed by digits only.
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        if digits.iter().all(|b| b.is_ascii_digit() || *b == b'+') && !digits.is_empty() {
            return Err(malformed("non-synchronizing literal from the server", line));
        }
        return Ok(None);
    }
    if digits.len() > 19 {
        return Err(ProtocolError::TooLarge(format!(
            "literal of {} octets announced",
            printable(digits)
        )));
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| malformed("bad literal count", line))
}

/// One response as read from the wire: its text pieces (lines without CRLF) and the literals
/// between them. `lines[i]` ends with the announcement of `literals[i]`; there is one more line
/// than there are literals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawResponse {
    /// The text pieces.
    pub lines: Vec<Vec<u8>>,
    /// The literals' octets.
    pub literals: Vec<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_announcements() {
        for (line, want) in [
            (&b"* 1 FETCH (BODY[] {123}"[..], Ok(Some(123))),
            (b"* OK no literal", Ok(None)),
            (b"* OK {text}", Ok(None)),
            (b"* OK {}", Ok(None)),
            (b"{0}", Ok(Some(0))),
        ] {
            assert_eq!(literal_announced(line), want, "{line:?}");
        }
        assert!(literal_announced(b"* 1 FETCH (BODY[] {99999999999999999999999}").is_err());
        assert!(literal_announced(b"* 1 FETCH (BODY[] {5+}").is_err());
    }
}
