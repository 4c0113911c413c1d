//! Unix seconds ↔ civil dates (UTC), both ways in one place (Howard Hinnant's algorithms), for
//! what the binary prints and for RFC 3339 dates in reports.

/// `2026-11-28 14:03` (UTC) from unix seconds.
pub(crate) fn format(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-09-03T00:00:00Z` or `2024-09-03T02:00:00+02:00` (RFC 3339) → unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, rest) = s.trim().split_once(['T', 't', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let zone = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let mut t = rest[..zone]
        .split(':')
        .map(|p| p.split('.').next().unwrap_or("0").parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    let offset = match rest.get(zone..zone + 1) {
        Some(sign @ ("+" | "-")) => {
            let mut o = rest[zone + 1..].split(':').map(|p| p.parse::<i64>().ok());
            let secs = o.next()?? * 3600 + o.next().flatten().unwrap_or(0) * 60;
            if sign == "-" { -secs } else { secs }
        }
        _ => 0,
    };
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        for (text, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-09-03T00:00:00Z", 1_725_321_600),
            ("2024-09-03T02:00:00+02:00", 1_725_321_600),
            ("2024-02-29T23:59:59Z", 1_709_251_199),
            ("2026-11-28T14:03:00.123Z", 1_795_874_580),
        ] {
            assert_eq!(parse_rfc3339(text), Some(secs), "{text}");
        }
        assert_eq!(format(1_725_321_600), "2024-09-03 00:00");
        assert_eq!(format(1_795_874_580), "2026-11-28 14:03");
        for bad in ["", "2024-13-01T00:00:00Z", "yesterday", "2024-09-03"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
