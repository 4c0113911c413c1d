//! The fleet as the portal lists it: one line per inventory domain with what its newest audit
//! found, filtered, sorted and paged by the store, and the customers ranked.

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;

/// The remediation areas in the order of [`FleetLine::areas`] (the seed's six areas and mail
/// transport; the names of `mailaudit_core::checks::Area`).
pub const AREAS: [&str; 7] = [
    "dmarc",
    "spf",
    "dkim",
    "connectors",
    "antispoof",
    "impersonation",
    "transport",
];

/// The severities from the most severe, in the order of [`FleetLine::counts`]; a severity's
/// rank ([`severity_rank`]) is 5 for `critical` down to 1 for `info` (0: no finding).
pub const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// The rank of a severity word (`critical` 5 … `info` 1), None for another word.
pub fn severity_rank(word: &str) -> Option<u8> {
    SEVERITIES
        .iter()
        .position(|s| *s == word)
        .map(|i| 5 - i as u8)
}

/// The severity word of a rank (1..=5), None for 0 (no finding) or out of range.
pub fn rank_severity(rank: u8) -> Option<&'static str> {
    (1..=5)
        .contains(&rank)
        .then(|| SEVERITIES[5 - rank as usize])
}

/// How long an open checklist item of each priority may stay open before it is overdue: 1 day
/// for priority 1 ("now"), 7 for priority 2 ("this week"), 30 for priority 3 ("this month");
/// priority 4 ("when convenient") is never overdue. Counted from the item's `updated_at` (when
/// it was opened, retitled or reprioritised).
pub const DUE_DAYS: [(u8, i64); 3] = [(1, 1), (2, 7), (3, 30)];

/// How the fleet's lines are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetSort {
    /// Worst first: the most severe finding, then the number of findings by severity, then the
    /// lowest score; never-audited domains last.
    #[default]
    Worst,
    /// By score, lowest first (unscored last).
    Score,
    /// By the time of the newest audit, oldest first (never audited last).
    Audited,
    /// By domain name.
    Name,
    /// By customer, then domain name (domains without a customer last).
    Customer,
    /// By checklist progress (the share of items done), least done first.
    Progress,
}

impl FleetSort {
    /// Every order, as the portal offers them.
    pub const ALL: [FleetSort; 6] = [
        FleetSort::Worst,
        FleetSort::Score,
        FleetSort::Audited,
        FleetSort::Name,
        FleetSort::Customer,
        FleetSort::Progress,
    ];

    /// The word in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetSort::Worst => "worst",
            FleetSort::Score => "score",
            FleetSort::Audited => "audited",
            FleetSort::Name => "name",
            FleetSort::Customer => "customer",
            FleetSort::Progress => "progress",
        }
    }

    /// Parses the word in URLs.
    pub fn parse(word: &str) -> Option<FleetSort> {
        FleetSort::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// The DMARC state a fleet filter asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcFilter {
    /// No DMARC policy applies (DMARC-MISSING).
    Missing,
    /// `p=none`.
    None,
    /// `p=quarantine`.
    Quarantine,
    /// `p=reject`.
    Reject,
}

impl DmarcFilter {
    /// Every state.
    pub const ALL: [DmarcFilter; 4] = [
        DmarcFilter::Missing,
        DmarcFilter::None,
        DmarcFilter::Quarantine,
        DmarcFilter::Reject,
    ];

    /// The word in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcFilter::Missing => "missing",
            DmarcFilter::None => "none",
            DmarcFilter::Quarantine => "quarantine",
            DmarcFilter::Reject => "reject",
        }
    }

    /// Parses the word in URLs.
    pub fn parse(word: &str) -> Option<DmarcFilter> {
        DmarcFilter::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// The Direct Send verdicts a fleet filter may ask for (`relay` of a report).
pub const RELAY_VERDICTS: [&str; 4] = ["open", "blocked", "inconclusive", "not_tested"];

/// Which of the fleet's lines to list ([`Store::fleet_page`]). Every filter narrows: a line is
/// listed when it passes them all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetQuery {
    /// The caller's scope: None for every domain, or these customers' domains only (domains
    /// without a customer are outside every list).
    pub scope: Option<Vec<String>>,
    /// One customer's domains.
    pub customer: Option<String>,
    /// Domains whose name contains this text (case-insensitive).
    pub search: Option<String>,
    /// Domains with a finding at least this severe (rank, see [`severity_rank`]); with `area`,
    /// in that area.
    pub min_severity: Option<u8>,
    /// Domains with a finding (low or worse, or `min_severity`) in this area (an index into
    /// [`AREAS`]).
    pub area: Option<usize>,
    /// Domains whose newest audit has this finding.
    pub check: Option<String>,
    /// Domains with this Direct Send verdict (one of [`RELAY_VERDICTS`]; a domain never tested
    /// or never audited is `not_tested`).
    pub relay: Option<String>,
    /// Domains in this DMARC state.
    pub dmarc: Option<DmarcFilter>,
    /// Domains with an overdue checklist item ([`DUE_DAYS`]).
    pub overdue: bool,
    /// Domains never audited (true) or audited (false).
    pub never_audited: Option<bool>,
    /// The order.
    pub sort: FleetSort,
    /// Reverse the order.
    pub descending: bool,
    /// Lines skipped.
    pub offset: i64,
    /// Lines listed at most.
    pub limit: i64,
    /// The time overdue items are judged at.
    pub now: Time,
}

/// One inventory domain's line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetLine {
    /// The domain.
    pub name: String,
    /// Its customer.
    pub customer: Option<String>,
    /// Parked in the inventory.
    pub parked: bool,
    /// When its newest audit ran (None: never audited).
    pub audited_at: Option<Time>,
    /// Its score.
    pub score: Option<u8>,
    /// The DMARC policy that applies (`none`, `quarantine`, `reject`).
    pub dmarc_policy: Option<String>,
    /// No DMARC policy applies (DMARC-MISSING).
    pub lacks_dmarc: bool,
    /// The Direct Send verdict (`open`, `blocked`, `inconclusive`, `not_tested`).
    pub relay: String,
    /// Findings by severity, most severe first ([`SEVERITIES`] order).
    pub counts: [u32; 5],
    /// The worst severity's rank in each area ([`AREAS`] order; 0: no finding).
    pub areas: [u8; 7],
    /// Checklist items done.
    pub checklist_done: u32,
    /// Checklist items in all.
    pub checklist_total: u32,
    /// An open checklist item is past its due time ([`DUE_DAYS`]).
    pub overdue: bool,
    /// The newest audit's report could not be read (its line shows no verdicts).
    pub unreadable: bool,
}

impl FleetLine {
    /// Whether the domain is open to Direct Send spoofing.
    pub fn direct_send_open(&self) -> bool {
        self.relay == "open"
    }
}

/// Sums over the lines a query matches (all of them, not only the page).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetTotals {
    /// Domains matched.
    pub domains: u64,
    /// Domains with a stored audit.
    pub audited: u64,
    /// Average of the scores (rounded down).
    pub average_score: Option<u8>,
    /// Domains no DMARC policy covers.
    pub without_dmarc: u64,
    /// Domains at `p=none`.
    pub dmarc_none: u64,
    /// Domains at `p=reject`.
    pub dmarc_reject: u64,
    /// Domains open to Direct Send spoofing.
    pub direct_send_open: u64,
    /// Domains where Direct Send is blocked.
    pub direct_send_blocked: u64,
    /// Domains with a critical finding.
    pub with_critical: u64,
    /// Checklist items done.
    pub checklist_done: u64,
    /// Checklist items.
    pub checklist_total: u64,
    /// Domains with an overdue checklist item.
    pub overdue: u64,
}

/// A page of the fleet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetPage {
    /// The page's lines.
    pub lines: Vec<FleetLine>,
    /// Sums over every line the query matched.
    pub totals: FleetTotals,
}

/// A customer's line: its domains' totals ([`Store::customer_lines`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerLine {
    /// The customer.
    pub name: String,
    /// Its domains' totals.
    pub totals: FleetTotals,
}

/// One run's totals in the fleet's progress over time ([`Store::trend`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The run.
    pub run_id: i64,
    /// When it started.
    pub at: Time,
    /// Domains audited in it.
    pub domains: u64,
    /// Their average score (None: none scored).
    pub average_score: Option<f64>,
    /// Domains a DMARC policy covers.
    pub with_dmarc: u64,
    /// Domains at `p=reject`.
    pub at_reject: u64,
    /// Domains where Direct Send is blocked.
    pub relay_blocked: u64,
    /// Domains open to Direct Send.
    pub relay_open: u64,
    /// Domains with a critical finding.
    pub with_critical: u64,
}
