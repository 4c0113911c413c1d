//! Unix seconds as the binary prints them (UTC; the calendar is the core's, from the `time`
//! crate). RFC 3339 dates in reports are read by `mailaudit-app`'s ingest.

/// `2026-11-28 14:03` (UTC) from unix seconds.
pub(crate) use mailaudit_core::guide::date_time as format;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_minutes() {
        assert_eq!(format(0), "1970-01-01 00:00");
        assert_eq!(format(1_725_321_600), "2024-09-03 00:00");
        assert_eq!(format(1_795_874_580), "2026-11-28 14:03");
        assert_eq!(format(1_709_251_199), "2024-02-29 23:59");
        assert_eq!(format(-60), "1969-12-31 23:59");
    }
}
