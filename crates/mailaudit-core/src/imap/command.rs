//! Command encoding: quoted strings, modified UTF-7 mailbox names, the SASL PLAIN message.

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{NO_PAD, STANDARD};

/// RFC 3501 §5.1.3's modified BASE64: `,` instead of `/`, no padding.
const MODIFIED_BASE64: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::IMAP_MUTF7, NO_PAD);

/// A string argument as a quoted string, or `None` when it cannot be one and must be sent as a
/// literal.
///
/// RFC 3501 §4.3: "A quoted string is a sequence of zero or more 7-bit characters, excluding CR
/// and LF, with double quote (<">) characters at each end." §9: `quoted-specials = DQUOTE /
/// "\"` are escaped with a backslash.
pub fn quoted(s: &str) -> Option<String> {
    if !s
        .bytes()
        .all(|b| (1..0x80).contains(&b) && b != b'\r' && b != b'\n')
    {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// A mailbox name in IMAP's modified UTF-7.
///
/// RFC 3501 §5.1.3: "printable US-ASCII characters, except for "&", represent themselves; that
/// is, characters with octet values 0x20-0x25 and 0x27-0x7e. The character "&" (0x26) is
/// represented by the two-octet sequence "&-". All other characters (octet values 0x00-0x1f and
/// 0x7f-0xff) are represented in modified BASE64, with a further modification from [UTF-7]
/// that "," is used instead of "/"." The base64 encodes UTF-16 (big-endian), starts with `&` and
/// ends with `-`.
pub fn encode_mailbox(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&MODIFIED_BASE64.encode(&bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// The initial response of `AUTHENTICATE PLAIN`, base64-encoded.
///
/// RFC 4616 §2: "message = [authzid] UTF8NUL authcid UTF8NUL passwd"; RFC 3501 §6.2.2: the
/// client's responses are "encoded in BASE64".
pub fn sasl_plain(user: &str, password: &str) -> String {
    let mut m = Vec::with_capacity(user.len() + password.len() + 2);
    m.push(0);
    m.extend_from_slice(user.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    STANDARD.encode(&m)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quoted("INBOX").as_deref(), Some("\"INBOX\""));
        assert_eq!(quoted("a\"b\\c").as_deref(), Some("\"a\\\"b\\\\c\""));
        assert_eq!(quoted("pässword"), None);
        assert_eq!(quoted("a\r\nb"), None);
        assert_eq!(quoted("a\0b"), None);
    }

    #[test]
    fn rfc3501_section_5_1_3_modified_utf7() {
        for (name, enc) in [
            ("INBOX", "INBOX"),
            ("Tom & Jerry", "Tom &- Jerry"),
            // RFC 3501 §5.1.3's example.
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Rapports DMARC/é", "Rapports DMARC/&AOk-"),
        ] {
            assert_eq!(encode_mailbox(name), enc);
        }
    }

    #[test]
    fn rfc4616_plain() {
        // "\0tim\0tanstaaftanstaaf" from RFC 4616 §4's example.
        assert_eq!(
            sasl_plain("tim", "tanstaaftanstaaf"),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
    }

    proptest! {
        #[test]
        fn mailbox_encoding_is_ascii(s in "\\PC{0,20}") {
            let e = encode_mailbox(&s);
            prop_assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)));
            prop_assert!(quoted(&e).is_some());
        }
    }
}
