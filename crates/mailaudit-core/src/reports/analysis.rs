//! Analysis of DMARC aggregate report rows for one domain and period: volume, sending sources
//! grouped by service, alignment per source, new sources, and a readiness verdict for the next
//! DMARC policy phase (`p=none` → `quarantine` → `reject`).
//!
//! Pure: the caller gives the rows (with reverse DNS already looked up), the period, and the
//! time span the reports cover. No clock, no DNS.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::aggregate::AggregateReport;
use super::senders::{self, Kind};

/// One aggregate report row, flattened, with the source's reverse DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `<date_range><begin>` of the report, seconds since the Unix epoch.
    pub begin: i64,
    /// `<source_ip>`.
    pub source_ip: IpAddr,
    /// Reverse DNS name of `source_ip`, looked up by the caller.
    pub ptr: Option<String>,
    /// `<count>`.
    pub count: u64,
    /// `<policy_evaluated><disposition>`.
    pub disposition: String,
    /// `<policy_evaluated><dkim>` is `pass`: DKIM passed and aligned.
    pub dkim_aligned: bool,
    /// `<policy_evaluated><spf>` is `pass`: SPF passed and aligned.
    pub spf_aligned: bool,
    /// `<identifiers><header_from>`.
    pub header_from: String,
    /// `<auth_results><dkim><domain>` of the signatures that passed.
    pub dkim_domains: Vec<String>,
    /// The domains of `<auth_results><spf>`: the return-path (MAIL FROM) or HELO domains
    /// checked, which name an email service that neither signs nor has reverse DNS.
    pub spf_domains: Vec<String>,
    /// Any `<auth_results><dkim>` passed (aligned or not).
    pub dkim_pass: bool,
    /// Any `<auth_results><spf>` passed (aligned or not).
    pub spf_pass: bool,
}

/// Flattens an aggregate report into [`Row`]s; `ptr` gives each source IP's reverse DNS name.
pub fn rows_from_report(
    report: &AggregateReport,
    mut ptr: impl FnMut(IpAddr) -> Option<String>,
) -> Vec<Row> {
    let begin = i64::try_from(report.report_metadata.date_range.begin).unwrap_or(i64::MAX);
    report
        .records
        .iter()
        .map(|r| Row {
            begin,
            source_ip: r.row.source_ip,
            ptr: ptr(r.row.source_ip),
            count: r.row.count,
            disposition: r.row.policy_evaluated.disposition.clone(),
            dkim_aligned: r.row.policy_evaluated.dkim == "pass",
            spf_aligned: r.row.policy_evaluated.spf == "pass",
            header_from: r.identifiers.header_from.clone(),
            dkim_domains: r
                .auth_results
                .dkim
                .iter()
                .filter(|d| d.result == "pass")
                .map(|d| d.domain.clone())
                .collect(),
            spf_domains: r
                .auth_results
                .spf
                .iter()
                .map(|s| s.domain.clone())
                .filter(|d| !d.is_empty())
                .collect(),
            dkim_pass: r.auth_results.dkim.iter().any(|d| d.result == "pass"),
            spf_pass: r.auth_results.spf.iter().any(|s| s.result == "pass"),
        })
        .collect()
}

/// One sending source: a known service, else a reverse DNS organizational domain, else an IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Service name, else the PTR's organizational domain, else the IP address.
    pub key: String,
    /// The known service (see [`senders::SENDERS`]), if any.
    pub service: Option<&'static str>,
    /// Its kind, if a known service.
    pub kind: Option<Kind>,
    /// Distinct source IPs, sorted.
    pub ips: Vec<IpAddr>,
    /// Messages.
    pub messages: u64,
    /// Messages that passed DMARC (aligned DKIM or aligned SPF).
    pub dmarc_pass: u64,
    /// Messages with aligned DKIM pass.
    pub dkim_aligned: u64,
    /// Messages with aligned SPF pass.
    pub spf_aligned: u64,
    /// Messages with any DKIM pass (aligned or not).
    pub dkim_pass: u64,
    /// Messages with any SPF pass (aligned or not).
    pub spf_pass: u64,
    /// Distinct UTC days on which it sent.
    pub days_seen: u32,
    /// DMARC pass rate below [`PASS_RATE_PERCENT`].
    pub failing: bool,
    /// Neither its key nor any of its IPs is in the previous period's sources.
    pub new: bool,
}

/// What a domain's reports show over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The domain (header From) analysed.
    pub domain: String,
    /// Start of the period (inclusive), seconds since the epoch.
    pub since: i64,
    /// End of the period (exclusive), seconds since the epoch.
    pub until: i64,
    /// Messages.
    pub volume: u64,
    /// Messages that passed DMARC.
    pub dmarc_pass: u64,
    /// Sources, by volume (largest first), then key.
    pub sources: Vec<Source>,
}

impl Summary {
    /// Keys and IPs of every source, to pass as `previous_sources` for the next period.
    pub fn source_keys(&self) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for s in &self.sources {
            out.insert(s.key.clone());
            out.extend(s.ips.iter().map(IpAddr::to_string));
        }
        out.into_iter().collect()
    }
}

/// A source is failing, and a meaningful source blocks readiness, when fewer than this percent
/// of its messages pass DMARC. 98 % rather than 100 % leaves room for what breaks alignment on
/// legitimate mail outside the domain's control: forwarding that rewrites the envelope and a
/// mailing list that alters the body.
pub const PASS_RATE_PERCENT: u64 = 98;
/// Reports must cover at least this many days: the checklist's "review after 2-4 weeks", long
/// enough that a weekly newsletter or a monthly invoice run has shown up at least twice.
pub const MIN_DAYS: f64 = 14.0;
/// And at least this many messages, below which percentages say little.
pub const MIN_MESSAGES: u64 = 100;
/// A source has meaningful volume above this percent of the domain's volume…
pub const MEANINGFUL_PERCENT: u64 = 1;
/// …or from this many messages, so that a small but real sender on a large domain counts.
pub const MEANINGFUL_MESSAGES: u64 = 50;
/// A failing unknown source seen on at least this many distinct days is steady traffic (half of
/// [`MIN_DAYS`]): spoofing comes in bursts, a forgotten application sends every working day.
pub const STEADY_DAYS: u32 = 7;

fn in_domain(header_from: &str, domain: &str) -> bool {
    let h = header_from.trim().trim_end_matches('.');
    let d = domain.trim().trim_end_matches('.');
    h.is_empty()
        || h.eq_ignore_ascii_case(d)
        || (h.len() > d.len() + 1
            && h.as_bytes()[h.len() - d.len() - 1] == b'.'
            && h.as_bytes()[h.len() - d.len()..].eq_ignore_ascii_case(d.as_bytes()))
}

/// `part / whole < percent / 100`, without overflow.
fn below(part: u64, whole: u64, percent: u64) -> bool {
    u128::from(part) * 100 < u128::from(whole) * u128::from(percent)
}

/// The sending source of a row: the known service it is (by its PTR name, DKIM and SPF
/// domains), and its key: the service's name, else the organisational domain of its PTR name,
/// else its address.
fn source_of(r: &Row) -> (Option<&'static senders::Sender>, String) {
    let dkim: Vec<&str> = r.dkim_domains.iter().map(String::as_str).collect();
    let spf: Vec<&str> = r.spf_domains.iter().map(String::as_str).collect();
    let service = senders::classify(r.ptr.as_deref(), &dkim, &spf);
    let key = match service {
        Some(s) => s.name.to_string(),
        None => r
            .ptr
            .as_deref()
            .and_then(senders::org_domain)
            .unwrap_or_else(|| r.source_ip.to_string()),
    };
    (service, key)
}

/// A domain's daily DMARC volume, by source, and pass rate ([`daily`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Daily {
    /// The days (unix seconds of each day's start, UTC), oldest first, every day of the
    /// period.
    pub days: Vec<i64>,
    /// The largest sources by volume, each with its messages per day; the rest as `other`.
    pub sources: Vec<(String, Vec<u64>)>,
    /// Messages per day.
    pub volume: Vec<u64>,
    /// Of which passing DMARC (DKIM or SPF aligned) per day.
    pub pass: Vec<u64>,
}

/// The daily volume of `domain`'s reports rows from `since` to `until` (a row counts on the day
/// its report period begins), by the `top` largest sources and the rest, and how much of it
/// passed DMARC.
pub fn daily(domain: &str, rows: &[Row], since: i64, until: i64, top: usize) -> Daily {
    let first = since.div_euclid(86_400);
    let last = (until - 1).div_euclid(86_400).max(first);
    let n = usize::try_from(last - first + 1).unwrap_or(0).min(3700);
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let (mut volume, mut pass) = (vec![0u64; n], vec![0u64; n]);
    for r in rows
        .iter()
        .filter(|r| r.begin >= since && r.begin < until && in_domain(&r.header_from, domain))
    {
        let Ok(day) = usize::try_from(r.begin.div_euclid(86_400) - first) else {
            continue;
        };
        if day >= n {
            continue;
        }
        let (_, key) = source_of(r);
        let per = by_key.entry(key).or_insert_with(|| vec![0; n]);
        per[day] = per[day].saturating_add(r.count);
        volume[day] = volume[day].saturating_add(r.count);
        if r.dkim_aligned || r.spf_aligned {
            pass[day] = pass[day].saturating_add(r.count);
        }
    }
    let mut sources: Vec<(String, Vec<u64>)> = by_key.into_iter().collect();
    sources.sort_by(|a, b| {
        b.1.iter()
            .sum::<u64>()
            .cmp(&a.1.iter().sum::<u64>())
            .then(a.0.cmp(&b.0))
    });
    if sources.len() > top {
        let rest = sources.split_off(top);
        let mut other = vec![0u64; n];
        for (_, per) in rest {
            for (o, v) in other.iter_mut().zip(per) {
                *o = o.saturating_add(v);
            }
        }
        sources.push(("other".to_string(), other));
    }
    Daily {
        days: (0..n as i64).map(|i| (first + i) * 86_400).collect(),
        sources,
        volume,
        pass,
    }
}

/// Summarizes the rows of `domain` (its header From, or a subdomain; an empty header From is
/// kept) whose report begins in `since..until`. Rows are grouped into sources by
/// [`senders::classify`], else by the PTR's [`senders::org_domain`], else by IP. A source is
/// `new` when neither its key nor any of its IPs is in `previous_sources` (use
/// [`Summary::source_keys`] of the previous period).
pub fn summarize(
    domain: &str,
    rows: &[Row],
    since: i64,
    until: i64,
    previous_sources: &[String],
) -> Summary {
    struct Acc {
        service: Option<&'static senders::Sender>,
        ips: BTreeSet<IpAddr>,
        days: BTreeSet<i64>,
        s: [u64; 6],
    }
    let mut by_key: BTreeMap<String, Acc> = BTreeMap::new();
    let (mut volume, mut dmarc_pass) = (0u64, 0u64);
    for r in rows
        .iter()
        .filter(|r| r.begin >= since && r.begin < until && in_domain(&r.header_from, domain))
    {
        let (service, key) = source_of(r);
        let acc = by_key.entry(key).or_insert_with(|| Acc {
            service,
            ips: BTreeSet::new(),
            days: BTreeSet::new(),
            s: [0; 6],
        });
        acc.ips.insert(r.source_ip);
        acc.days.insert(r.begin.div_euclid(86_400));
        let pass = r.dkim_aligned || r.spf_aligned;
        for (i, flag) in [
            true,
            pass,
            r.dkim_aligned,
            r.spf_aligned,
            r.dkim_pass,
            r.spf_pass,
        ]
        .into_iter()
        .enumerate()
        {
            if flag {
                acc.s[i] = acc.s[i].saturating_add(r.count);
            }
        }
        volume = volume.saturating_add(r.count);
        if pass {
            dmarc_pass = dmarc_pass.saturating_add(r.count);
        }
    }
    let mut sources: Vec<Source> = by_key
        .into_iter()
        .map(|(key, a)| {
            let new = !previous_sources.contains(&key)
                && !a
                    .ips
                    .iter()
                    .any(|ip| previous_sources.contains(&ip.to_string()));
            Source {
                service: a.service.map(|s| s.name),
                kind: a.service.map(|s| s.kind),
                ips: a.ips.into_iter().collect(),
                messages: a.s[0],
                dmarc_pass: a.s[1],
                dkim_aligned: a.s[2],
                spf_aligned: a.s[3],
                dkim_pass: a.s[4],
                spf_pass: a.s[5],
                days_seen: u32::try_from(a.days.len()).unwrap_or(u32::MAX),
                failing: below(a.s[1], a.s[0], PASS_RATE_PERCENT),
                new,
                key,
            }
        })
        .collect();
    sources.sort_by(|a, b| b.messages.cmp(&a.messages).then_with(|| a.key.cmp(&b.key)));
    Summary {
        domain: domain.to_string(),
        since,
        until,
        volume,
        dmarc_pass,
        sources,
    }
}

/// Whether the domain can move to the next DMARC policy, and why (or why not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// True when the next phase can be published.
    pub ready: bool,
    /// The next `p=` value: `quarantine` from `none`, `reject` from `quarantine`; `None` at
    /// `reject` or for an unknown policy.
    pub next: Option<&'static str>,
    /// The reasons: blockers first, then what was checked and passed.
    pub reasons: Vec<String>,
}

/// `part` as a whole percentage of `whole`, rounded down, 0 when `whole` is 0: how the summary
/// views (`reports summary`, the portal) show rates.
pub fn whole_percent(part: u64, whole: u64) -> u64 {
    (u128::from(part) * 100)
        .checked_div(u128::from(whole))
        .map_or(0, |p| u64::try_from(p).unwrap_or(u64::MAX))
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The readiness verdict for the next DMARC phase over a [`Summary`] covering `days_covered`
/// days, with the domain currently at `p=current_policy`.
///
/// Ready when all of these hold:
/// 1. Enough data: at least [`MIN_DAYS`] days and [`MIN_MESSAGES`] messages.
/// 2. Every source with meaningful volume (over [`MEANINGFUL_PERCENT`] % of the volume, or at
///    least [`MEANINGFUL_MESSAGES`] messages) passes DMARC (aligned DKIM or aligned SPF) for at
///    least [`PASS_RATE_PERCENT`] % of its messages.
/// 3. The remaining failures look like spoofing, not a forgotten service. A failing meaningful
///    source blocks when it is a known service (the fix names it: set up its DKIM), when it
///    passes for some of its messages (a legitimate sender partly configured), or when it sent
///    on at least [`STEADY_DAYS`] distinct days (steady traffic from an unidentified sender).
///    A failing meaningful source that never passes, is no known service and sends in bursts is
///    called spoofing and does not block. Small failing sources never block: they are either
///    spoofing or forwarding, and a stricter policy is what stops the former.
pub fn readiness(summary: &Summary, current_policy: &str, days_covered: f64) -> Readiness {
    let policy = current_policy.trim().to_ascii_lowercase();
    let next = match policy.as_str() {
        "none" => Some("quarantine"),
        "quarantine" => Some("reject"),
        "reject" => {
            return Readiness {
                ready: false,
                next: None,
                reasons: vec!["the domain is already at p=reject: there is no next phase".into()],
            };
        }
        _ => {
            return Readiness {
                ready: false,
                next: None,
                reasons: vec![format!(
                    "unknown current policy {current_policy:?}: expected none, quarantine or reject"
                )],
            };
        }
    };
    let mut blockers: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if days_covered.is_nan() || days_covered < MIN_DAYS {
        blockers.push(format!(
            "not enough data: reports cover {days_covered:.1} days, at least {MIN_DAYS:.0} are needed"
        ));
    }
    if summary.volume < MIN_MESSAGES {
        blockers.push(format!(
            "not enough data: {} messages reported, at least {MIN_MESSAGES} are needed",
            summary.volume
        ));
    }
    let (mut spoof_sources, mut spoof_messages, mut small_fail) = (0u64, 0u64, 0u64);
    for s in &summary.sources {
        if !s.failing {
            continue;
        }
        let meaningful = u128::from(s.messages) * 100
            > u128::from(summary.volume) * u128::from(MEANINGFUL_PERCENT)
            || s.messages >= MEANINGFUL_MESSAGES;
        let rate = pct(s.dmarc_pass, s.messages);
        let share = pct(s.messages, summary.volume);
        if !meaningful {
            small_fail = small_fail.saturating_add(s.messages - s.dmarc_pass.min(s.messages));
            continue;
        }
        let sender = s
            .service
            .and_then(|n| senders::SENDERS.iter().find(|x| x.name == n));
        if let Some(x) = sender {
            blockers.push(format!(
                "{} sends {} messages ({share:.1} % of volume) and only {rate:.1} % pass DMARC \
                 (aligned DKIM {}, aligned SPF {}): a forgotten service; fix: {} (or align its SPF \
                 with a return-path on the domain)",
                x.name, s.messages, s.dkim_aligned, s.spf_aligned, x.fix
            ));
        } else if s.dmarc_pass > 0 {
            blockers.push(format!(
                "{} ({} IPs) sends {} messages ({share:.1} % of volume) and {rate:.1} % pass \
                 DMARC: a legitimate sender partly configured; fix: make it sign with DKIM for \
                 the domain, or add it to SPF with an aligned return-path",
                s.key,
                s.ips.len(),
                s.messages
            ));
        } else if s.days_seen >= STEADY_DAYS {
            blockers.push(format!(
                "{} ({} IPs) sent {} messages ({share:.1} % of volume) on {} days and none pass \
                 DMARC: steady traffic, likely a forgotten service; identify it and add its \
                 DKIM or SPF, or confirm it is not yours",
                s.key,
                s.ips.len(),
                s.messages,
                s.days_seen
            ));
        } else {
            spoof_sources += 1;
            spoof_messages = spoof_messages.saturating_add(s.messages);
        }
    }
    if blockers.is_empty() {
        notes.push(format!(
            "{} messages over {days_covered:.1} days; every source with meaningful volume passes \
             DMARC for at least {PASS_RATE_PERCENT} % of its messages",
            summary.volume
        ));
    }
    if spoof_sources > 0 {
        notes.push(format!(
            "{spoof_messages} failing messages from {spoof_sources} unknown sources that never \
             pass and send in bursts look like spoofing"
        ));
    }
    if small_fail > 0 {
        notes.push(format!(
            "{small_fail} failing messages from small sources (each under {MEANINGFUL_PERCENT} % \
             of volume and {MEANINGFUL_MESSAGES} messages) look like spoofing or forwarding"
        ));
    }
    let ready = blockers.is_empty();
    blockers.extend(notes);
    Readiness {
        ready,
        next,
        reasons: blockers,
    }
}

/// A domain's DMARC aggregate analysis over one period, with the readiness verdict: what
/// `mailaudit reports summary`, the portal and the remediation guide show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainAnalysis {
    /// The domain analysed.
    pub domain: String,
    /// The current DMARC policy (`none`, `quarantine`, `reject`) the verdict starts from.
    pub policy: String,
    /// Days between the first and the last report of the period, both included (0 without
    /// reports).
    pub days_covered: f64,
    /// The period's sources.
    pub summary: Summary,
    /// Messages in the period before (of the same length), for the trend.
    pub previous_volume: u64,
    /// Whether the domain can move to the next phase, and why.
    pub readiness: Readiness,
}

/// Days from the first to the last report begin among `rows`, both days included; 0 when
/// there are none.
pub fn days_covered(rows: &[Row]) -> f64 {
    match (
        rows.iter().map(|r| r.begin).min(),
        rows.iter().map(|r| r.begin).max(),
    ) {
        (Some(first), Some(last)) => (last - first) as f64 / 86_400.0 + 1.0,
        _ => 0.0,
    }
}

/// Analyses `domain` over `since..until` from the rows of that period (`current`) and of the
/// period of the same length before it (`previous`, for new sources and the trend), with the
/// domain at `p=policy`.
pub fn analyse(
    domain: &str,
    current: &[Row],
    previous: &[Row],
    since: i64,
    until: i64,
    policy: &str,
) -> DomainAnalysis {
    let length = until.saturating_sub(since);
    let before = summarize(domain, previous, since.saturating_sub(length), since, &[]);
    let summary = summarize(domain, current, since, until, &before.source_keys());
    let days = days_covered(current);
    DomainAnalysis {
        domain: domain.to_string(),
        policy: policy.to_string(),
        days_covered: days,
        readiness: readiness(&summary, policy, days),
        previous_volume: before.volume,
        summary,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn daily_volume_by_source_and_pass() {
        let day = 86_400;
        let row = |begin: i64, ip: &str, count: u64, aligned: bool| Row {
            begin,
            source_ip: ip.parse().unwrap(),
            ptr: None,
            count,
            disposition: "none".into(),
            dkim_aligned: aligned,
            spf_aligned: false,
            header_from: "contoso.com".into(),
            dkim_domains: Vec::new(),
            spf_domains: Vec::new(),
            dkim_pass: aligned,
            spf_pass: false,
        };
        let rows = vec![
            row(10 * day, "192.0.2.1", 100, true),
            row(10 * day + 5, "192.0.2.1", 50, true),
            row(11 * day, "192.0.2.2", 7, false),
            row(12 * day, "192.0.2.3", 3, false),
            row(12 * day, "192.0.2.1", 10, true),
        ];
        let d = daily("contoso.com", &rows, 10 * day, 13 * day, 1);
        assert_eq!(d.days, [10 * day, 11 * day, 12 * day]);
        assert_eq!(d.volume, [150, 7, 13]);
        assert_eq!(d.pass, [150, 0, 10]);
        assert_eq!(
            d.sources,
            [
                ("192.0.2.1".to_string(), vec![150, 0, 10]),
                ("other".to_string(), vec![0, 7, 3])
            ]
        );
        assert!(
            daily("contoso.com", &[], 10 * day, 10 * day, 3)
                .sources
                .is_empty()
        );
    }

    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400;

    fn row(day: i64, ip: &str, ptr: Option<&str>, count: u64, dkim: bool, spf: bool) -> Row {
        Row {
            begin: day * DAY,
            source_ip: ip.parse().unwrap(),
            ptr: ptr.map(str::to_string),
            count,
            disposition: "none".into(),
            dkim_aligned: dkim,
            spf_aligned: spf,
            header_from: "contoso.com".into(),
            dkim_domains: if dkim {
                vec!["contoso.com".into()]
            } else {
                vec![]
            },
            spf_domains: vec!["contoso.com".into()],
            dkim_pass: dkim,
            spf_pass: spf,
        }
    }

    /// 21 days of Microsoft 365 mail, 100 messages a day, all aligned.
    fn m365() -> Vec<Row> {
        (0..21)
            .map(|d| {
                row(
                    d,
                    "40.107.1.1",
                    Some("mail-db5eur03on2100.outbound.protection.outlook.com"),
                    100,
                    true,
                    true,
                )
            })
            .collect()
    }

    fn verdict(rows: &[Row], policy: &str, days: f64) -> (Summary, Readiness) {
        let s = summarize("contoso.com", rows, 0, 30 * DAY, &[]);
        let r = readiness(&s, policy, days);
        (s, r)
    }

    #[test]
    fn all_aligned_is_ready() {
        let rows = m365();
        for (policy, next) in [("none", Some("quarantine")), ("Quarantine", Some("reject"))] {
            let (s, r) = verdict(&rows, policy, 21.0);
            assert_eq!(s.volume, 2100);
            assert_eq!(s.dmarc_pass, 2100);
            assert_eq!(s.sources.len(), 1);
            assert_eq!(s.sources[0].service, Some("Microsoft 365"));
            assert!(r.ready, "{r:?}");
            assert_eq!(r.next, next);
        }
        let (_, r) = verdict(&rows, "reject", 21.0);
        assert_eq!((r.ready, r.next), (false, None));
        let (_, r) = verdict(&rows, "bogus", 21.0);
        assert_eq!((r.ready, r.next), (false, None));
    }

    #[test]
    fn forgotten_marketing_service_blocks() {
        let mut rows = m365();
        // 30 % of volume: 900 messages over 9 days, SPF passes for mcsv.net but nothing aligns.
        for d in 0..9 {
            let mut r = row(
                d * 2,
                "198.2.128.1",
                Some("mail1.suw1.mcsv.net"),
                100,
                false,
                false,
            );
            r.spf_pass = true;
            r.dkim_pass = true;
            r.dkim_domains = vec!["mcsv.net".into()];
            rows.push(r);
        }
        let (s, r) = verdict(&rows, "none", 21.0);
        let mc = s.sources.iter().find(|x| x.key == "Mailchimp").unwrap();
        assert!(mc.failing);
        assert_eq!(mc.messages, 900);
        assert_eq!(mc.spf_pass, 900);
        assert!(!r.ready);
        assert!(r.reasons[0].contains("Mailchimp"), "{:?}", r.reasons);
        assert!(r.reasons[0].contains("DKIM"), "{:?}", r.reasons);
    }

    #[test]
    fn pure_spoofing_is_ready() {
        let mut rows = m365();
        for i in 0..40u8 {
            rows.push(row(
                i64::from(i % 3),
                &format!("203.0.113.{i}"),
                None,
                5,
                false,
                false,
            ));
        }
        let (s, r) = verdict(&rows, "none", 21.0);
        assert_eq!(s.sources.len(), 41);
        assert_eq!(s.sources.iter().filter(|x| x.failing).count(), 40);
        assert!(r.ready, "{r:?}");
        assert!(r.reasons.iter().any(|x| x.contains("spoofing")), "{r:?}");
    }

    #[test]
    fn bursty_unknown_source_is_spoofing_but_steady_one_blocks() {
        let mut rows = m365();
        rows.push(row(
            3,
            "192.0.2.7",
            Some("vps.example.net"),
            300,
            false,
            false,
        ));
        let (_, r) = verdict(&rows, "none", 21.0);
        assert!(r.ready, "{r:?}");
        for d in 0..10 {
            rows.push(row(
                d,
                "192.0.2.8",
                Some("app.example.net"),
                10,
                false,
                false,
            ));
        }
        let (_, r) = verdict(&rows, "none", 21.0);
        assert!(!r.ready);
        assert!(r.reasons[0].contains("example.net"), "{r:?}");
    }

    #[test]
    fn too_little_data() {
        let rows = m365();
        let (_, r) = verdict(&rows[..5], "none", 5.0);
        assert!(!r.ready);
        assert!(r.reasons[0].contains("5.0 days"), "{r:?}");
        let (_, r) = verdict(&rows[..0], "none", 30.0);
        assert!(!r.ready);
        assert!(r.reasons[0].contains("0 messages"), "{r:?}");
        let (_, r) = verdict(&rows, "none", f64::NAN);
        assert!(!r.ready);
    }

    #[test]
    fn new_sources_are_flagged() {
        let mut rows = m365();
        rows.push(row(1, "198.51.100.1", None, 3, false, false));
        rows.push(row(
            1,
            "198.51.100.2",
            Some("mx.fabrikam.com"),
            3,
            true,
            true,
        ));
        rows.push(row(1, "2001:db8::1", None, 3, true, false));
        let previous = vec!["Microsoft 365".to_string(), "198.51.100.2".to_string()];
        let s = summarize("contoso.com", &rows, 0, 30 * DAY, &previous);
        let new: Vec<(&str, bool)> = s.sources.iter().map(|x| (x.key.as_str(), x.new)).collect();
        assert_eq!(
            new,
            [
                ("Microsoft 365", false),
                ("198.51.100.1", true),
                ("2001:db8::1", true),
                ("fabrikam.com", false),
            ]
        );
        assert!(s.source_keys().contains(&"fabrikam.com".to_string()));
    }

    #[test]
    fn analyse_compares_with_the_period_before() {
        // Days 0..21 of Microsoft 365 mail; the period analysed is days 14..28, so the period
        // before is days 0..14. A source new in the second period is flagged new.
        let mut rows = m365();
        rows.push(row(20, "198.51.100.9", None, 5, false, false));
        let (previous, current): (Vec<Row>, Vec<Row>) =
            rows.into_iter().partition(|r| r.begin < 14 * DAY);
        let a = analyse(
            "contoso.com",
            &current,
            &previous,
            14 * DAY,
            28 * DAY,
            "none",
        );
        assert_eq!(a.previous_volume, 1400);
        assert_eq!(a.summary.volume, 705);
        assert_eq!(a.days_covered, 7.0);
        let new: Vec<(&str, bool)> = a
            .summary
            .sources
            .iter()
            .map(|s| (s.key.as_str(), s.new))
            .collect();
        assert_eq!(new, [("Microsoft 365", false), ("198.51.100.9", true)]);
        // Seven days of reports are not enough.
        assert!(!a.readiness.ready);
        assert!(
            a.readiness.reasons[0].contains("7.0 days"),
            "{:?}",
            a.readiness
        );
        assert_eq!(days_covered(&[]), 0.0);
    }

    #[test]
    fn whole_percentages() {
        assert_eq!(whole_percent(1, 3), 33);
        assert_eq!(whole_percent(5, 5), 100);
        assert_eq!(whole_percent(7, 0), 0);
        assert_eq!(whole_percent(u64::MAX, u64::MAX), 100, "no overflow");
    }

    #[test]
    fn period_and_domain_filter() {
        let mut rows = m365();
        rows[0].header_from = "other.example".into();
        rows[1].header_from = "news.CONTOSO.com".into();
        let s = summarize("contoso.com", &rows, 0, 10 * DAY, &[]);
        assert_eq!(s.volume, 900);
    }

    proptest! {
        #[test]
        fn never_panics(
            rows in proptest::collection::vec(
                (any::<i64>(), any::<u32>(), proptest::option::of(".{0,20}"), any::<u64>(),
                 any::<bool>(), any::<bool>(), ".{0,12}"), 0..20),
            since in any::<i64>(), until in any::<i64>(), days in any::<f64>(), policy in ".{0,10}"
        ) {
            let rows: Vec<Row> = rows.into_iter().map(|(b, ip, ptr, c, d, s, h)| Row {
                begin: b, source_ip: IpAddr::from(ip.to_be_bytes()), ptr, count: c,
                disposition: String::new(), dkim_aligned: d, spf_aligned: s, header_from: h,
                dkim_domains: vec![], spf_domains: vec![], dkim_pass: d, spf_pass: s,
            }).collect();
            for (a, b) in [(since, until), (i64::MIN, i64::MAX)] {
                let s = summarize("contoso.com", &rows, a, b, &[]);
                let _ = readiness(&s, &policy, days);
                let _ = readiness(&s, "none", days);
            }
        }
    }
}
