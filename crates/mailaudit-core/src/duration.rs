//! Durations as people type them (`90d`, `12h`, `2w`): the one parser behind the CLI's
//! intervals (`schedule set --every`, `prune --keep`), the report's period (`--since`,
//! `?since=`) and the portal's schedule form.

/// A unit: its suffix and its length in seconds.
pub type Unit = (&'static str, i64);

/// Seconds.
pub const SECOND: Unit = ("s", 1);
/// Minutes.
pub const MINUTE: Unit = ("m", 60);
/// Hours.
pub const HOUR: Unit = ("h", 3600);
/// Days.
pub const DAY: Unit = ("d", 86_400);
/// Weeks.
pub const WEEK: Unit = ("w", 604_800);

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Not a whole number followed by one of the units (or, with a bare-number unit, nothing).
    Form,
    /// A unit that is not among those taken.
    Unit,
    /// Outside the range taken (or too large to count).
    Range,
}

/// `text` (trimmed: a whole number, then a unit's suffix; a bare number is in the unit whose
/// suffix is empty, when one is given) in seconds, within `min..=max`.
pub fn parse(text: &str, units: &[Unit], min: i64, max: i64) -> Result<i64, DurationError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    if number.is_empty() {
        return Err(DurationError::Form);
    }
    let unit = units
        .iter()
        .find(|(s, _)| *s == suffix)
        .or_else(|| {
            suffix
                .is_empty()
                .then(|| units.iter().find(|(s, _)| *s == "s"))
                .flatten()
        })
        .ok_or(if suffix.is_empty() {
            DurationError::Form
        } else {
            DurationError::Unit
        })?;
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit.1))
        .filter(|s| (min..=max).contains(s))
        .ok_or(DurationError::Range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let all = [SECOND, MINUTE, HOUR, DAY, WEEK];
        assert_eq!(parse("90d", &all, 1, i64::MAX), Ok(90 * 86_400));
        assert_eq!(parse(" 12h ", &all, 1, i64::MAX), Ok(43_200));
        assert_eq!(
            parse("30", &all, 1, i64::MAX),
            Ok(30),
            "a bare number is seconds"
        );
        assert_eq!(parse("30", &[DAY], 1, i64::MAX), Err(DurationError::Form));
        assert_eq!(parse("1y", &all, 1, i64::MAX), Err(DurationError::Unit));
        assert_eq!(parse("d", &all, 1, i64::MAX), Err(DurationError::Form));
        assert_eq!(parse("-3d", &all, 1, i64::MAX), Err(DurationError::Form));
        assert_eq!(parse("0d", &all, 1, i64::MAX), Err(DurationError::Range));
        assert_eq!(
            parse("99999999999999999999w", &all, 1, i64::MAX),
            Err(DurationError::Range)
        );
        assert_eq!(
            parse("366d", &[DAY], 1, 365 * 86_400),
            Err(DurationError::Range)
        );
    }
}
