//! Small pure helpers of the guide: dates without a clock, zone-file and PowerShell quoting.

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// The UTC date and time of a unix time; a time beyond the years ±9999 is clamped to them.
pub(crate) fn utc(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(if unix < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}

/// `YYYY-MM-DD` (UTC) of a unix time.
pub fn date(unix: i64) -> String {
    let t = utc(unix);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// `YYYY-MM-DD HH:MM` (UTC) of a unix time.
pub fn date_time(unix: i64) -> String {
    let t = utc(unix);
    format!("{} {:02}:{:02}", date(unix), t.hour(), t.minute())
}

/// `YYYYMMDDT000000`: a date-stamped MTA-STS policy `id`.
pub(crate) fn sts_id(unix: i64) -> String {
    let t = utc(unix);
    format!(
        "{:04}{:02}{:02}T000000",
        t.year(),
        u8::from(t.month()),
        t.day()
    )
}

/// A duration in words, rounded down: `today`, `1 day`, `5 days`, `1 week`, `3 weeks`.
pub(crate) fn span(secs: i64) -> String {
    let days = secs.max(0) / DAY;
    match days {
        0 => "today".into(),
        1 => "1 day".into(),
        2..=13 => format!("{days} days"),
        _ => format!("{} weeks", days / 7),
    }
}

/// Whether `name` is a plain host name: ASCII letters, digits, `-`, `_` and dots, 1–253
/// octets. Everything the guide pastes into a record or a command is checked with it first.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
pub(crate) use crate::record::{parse_zone_line, txt_rdata};

/// One TXT record line of a zone file (the guide writes them through [`crate::record::DnsRecord`]).
#[cfg(test)]
pub(crate) fn txt_line(name: &str, text: &str) -> String {
    crate::record::DnsRecord::txt(name, name, text).zone_line()
}

/// One CNAME record line of a zone file.
#[cfg(test)]
pub(crate) fn cname_line(name: &str, target: &str) -> String {
    crate::record::DnsRecord::cname(name, name, target).zone_line()
}

/// The one PowerShell quoting function ([`crate::powershell::quote`]).
pub(crate) use crate::powershell::quote as ps_quote;

/// The Levenshtein distance between `a` and `b`, in characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for (unix, expected) in [
            (0, "1970-01-01"),
            (951_782_400, "2000-02-29"),
            (1_767_225_600, "2026-01-01"),
            (-86_400, "1969-12-31"),
            (1_767_225_599, "2025-12-31"),
        ] {
            assert_eq!(date(unix), expected, "{unix}");
        }
        assert_eq!(sts_id(1_767_225_600), "20260101T000000");
        assert_eq!(date_time(1_795_874_580), "2026-11-28 14:03");
        assert_eq!(date_time(-60), "1969-12-31 23:59");
        for (secs, expected) in [
            (-5, "today"),
            (3_600, "today"),
            (DAY, "1 day"),
            (13 * DAY, "13 days"),
            (21 * DAY + 5, "3 weeks"),
        ] {
            assert_eq!(span(secs), expected);
        }
        // Extreme values must not panic.
        let _ = date(i64::MAX / 2);
        let _ = date(i64::MIN / 2);
    }

    #[test]
    fn quoting() {
        for (s, expected) in [
            ("Jane Doe;jane@contoso.com", "'Jane Doe;jane@contoso.com'"),
            ("O'Brien", "'O''Brien'"),
            ("$(evil)", "'$(evil)'"),
            ("a\nb", "'a b'"),
            ("x\u{2019}y", "'x\u{2019}\u{2019}y'"),
            ("Zoë", "'Zoë'"),
        ] {
            assert_eq!(ps_quote(s), expected, "{s:?}");
        }
        for (s, expected) in [
            ("v=spf1 -all", "\"v=spf1 -all\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("", "\"\""),
        ] {
            assert_eq!(txt_rdata(s), expected);
        }
        let long = "a".repeat(300);
        assert_eq!(
            txt_rdata(&long),
            format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))
        );
        for text in ["v=spf1 -all", "a\"b\\c\u{7}", &long, "Zoë"] {
            let line = txt_line("x.example", text);
            assert_eq!(
                parse_zone_line(&line),
                Some(("x.example".into(), "TXT".into(), text.to_string())),
                "{line}"
            );
        }
        assert_eq!(
            parse_zone_line(&cname_line("s._domainkey.x.example", "t.example.")),
            Some((
                "s._domainkey.x.example".into(),
                "CNAME".into(),
                "t.example.".into()
            ))
        );
        for bad in [
            "",
            "x TXT \"a\"",
            "x. 3600 IN TXT a",
            "x. 3600 IN TXT \"a",
            "x. ttl IN TXT \"a\"",
        ] {
            assert_eq!(parse_zone_line(bad), None, "{bad:?}");
        }
        assert!(is_plain_name("contoso.com"));
        for bad in ["", "a b.com", "a\"b.com", ".com", "a..b", "a;b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn zone_lines_round_trip(text in "\\PC{0,600}", raw in "\\PC{0,80}") {
            let line = txt_line("x.example", &text);
            proptest::prop_assert_eq!(
                parse_zone_line(&line),
                Some(("x.example".to_string(), "TXT".to_string(), text))
            );
            let _ = parse_zone_line(&raw);
            let _ = ps_quote(&raw);
            proptest::prop_assert!(!ps_quote(&raw).contains('\n'));
        }
    }
}
