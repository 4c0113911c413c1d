//! Reading the line `mailaudit audit --stats` prints to standard error.
//!
//! ```text
//! mailaudit: 10000 domains in 8.12s (1231 domains/s); 120000 look-ups, 95000 queries sent (9.5 queries/domain)
//! ```
//!
//! optionally with `peak RSS NNN MB` somewhere after the counts (the auditor's own VmHWM). The
//! parser looks for labelled numbers rather than a fixed layout, so fields may move or be added.

/// What an auditor's `--stats` line says.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditStats {
    /// Domains audited.
    pub domains: u64,
    /// Seconds the audit took, by its own clock.
    pub seconds: f64,
    /// Look-ups asked of the resolver (cache hits included), if reported.
    pub lookups: Option<u64>,
    /// DNS queries sent to the nameserver, if reported.
    pub queries_sent: Option<u64>,
    /// Peak resident set size in MB (MiB), if reported.
    pub peak_rss_mb: Option<f64>,
}

/// The last stats line in `stderr`, if any: a line starting `mailaudit:` that has
/// `<N> domains in <S>s`.
pub fn parse_stats(stderr: &str) -> Option<AuditStats> {
    stderr.lines().rev().find_map(parse_stats_line)
}

/// One stats line, or `None` if it is not one.
pub fn parse_stats_line(line: &str) -> Option<AuditStats> {
    let rest = line.trim().strip_prefix("mailaudit:")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    // "<N> domains in <S>s"
    let at = words
        .windows(3)
        .position(|w| w[1] == "domains" && w[2] == "in")?;
    let domains = words.get(at)?.parse().ok()?;
    let seconds = words
        .get(at + 3)?
        .trim_end_matches([',', ';'])
        .strip_suffix('s')?
        .parse()
        .ok()?;
    Some(AuditStats {
        domains,
        seconds,
        lookups: number_before(&words, "look-ups").and_then(|n| n.parse().ok()),
        queries_sent: number_before(&words, "queries")
            .filter(|_| {
                words
                    .windows(2)
                    .any(|w| w[0] == "queries" && w[1].starts_with("sent"))
            })
            .and_then(|n| n.parse().ok()),
        peak_rss_mb: peak_rss(&words),
    })
}

/// The word before the first word equal to `label` (ignoring trailing punctuation).
fn number_before<'a>(words: &[&'a str], label: &str) -> Option<&'a str> {
    let at = words
        .iter()
        .position(|w| w.trim_end_matches([',', ';', ')']) == label)?;
    let word = words.get(at.checked_sub(1)?)?;
    Some(word.trim_start_matches('('))
}

/// `peak RSS <N> <unit>` (or `peak RSS <N><unit>`), in MB.
fn peak_rss(words: &[&str]) -> Option<f64> {
    let at = words
        .windows(2)
        .position(|w| w[0].eq_ignore_ascii_case("peak") && w[1].eq_ignore_ascii_case("rss"))?;
    let value = words.get(at + 2)?.trim_end_matches([',', ';', ')']);
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = if unit.is_empty() {
        words
            .get(at + 3)
            .map_or("", |u| u.trim_end_matches([',', ';', ')']))
    } else {
        unit
    };
    let factor = match unit.to_ascii_lowercase().as_str() {
        "kb" | "kib" | "k" => 1.0 / 1024.0,
        "mb" | "mib" | "m" => 1.0,
        "gb" | "gib" | "g" => 1024.0,
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_lines() {
        let base = AuditStats {
            domains: 10_000,
            seconds: 8.12,
            lookups: Some(120_000),
            queries_sent: Some(95_000),
            peak_rss_mb: None,
        };
        let cases: &[(&str, Option<AuditStats>)] = &[
            (
                "mailaudit: 10000 domains in 8.12s (1231 domains/s); 120000 look-ups, 95000 queries sent (9.5 queries/domain)",
                Some(base.clone()),
            ),
            (
                "mailaudit: 10000 domains in 8.12s (1231 domains/s); 120000 look-ups, 95000 queries sent (9.5 queries/domain); peak RSS 87 MB",
                Some(AuditStats {
                    peak_rss_mb: Some(87.0),
                    ..base.clone()
                }),
            ),
            (
                "mailaudit: 10000 domains in 8.12s (1231 domains/s); peak RSS 87.5 MB; 120000 look-ups, 95000 queries sent (9.5 queries/domain)",
                Some(AuditStats {
                    peak_rss_mb: Some(87.5),
                    ..base.clone()
                }),
            ),
            (
                "mailaudit: 10000 domains in 8.12s (1231 domains/s); 120000 look-ups, 95000 queries sent, peak RSS 2048kB",
                Some(AuditStats {
                    peak_rss_mb: Some(2.0),
                    ..base.clone()
                }),
            ),
            (
                "mailaudit: 3 domains in 0.01s",
                Some(AuditStats {
                    domains: 3,
                    seconds: 0.01,
                    lookups: None,
                    queries_sent: None,
                    peak_rss_mb: None,
                }),
            ),
            ("mailaudit: \"x.example\": lookup failed", None),
            ("10000 domains in 8.12s", None),
            ("mailaudit: ten domains in 8.12s", None),
            ("mailaudit: 10 domains in soon", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(&parse_stats_line(line), want, "{line}");
        }
    }

    #[test]
    fn takes_the_last_stats_line() {
        let stderr = "mailaudit: \"bad..example\": not a domain name\n\
                      mailaudit: 2 domains in 1.00s (2 domains/s); 4 look-ups, 3 queries sent (1.5 queries/domain)\n";
        let stats = parse_stats(stderr).expect("stats");
        assert_eq!(stats.domains, 2);
        assert_eq!(stats.queries_sent, Some(3));
        assert_eq!(parse_stats("nothing here\n"), None);
    }
}
