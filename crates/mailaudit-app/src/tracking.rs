//! What happens to an audited domain in the store: its result is recorded (one transaction per
//! batch of domains, so a crash mid-run keeps every batch already recorded), its DMARC roll-out phase is
//! tracked, its checklist is brought up to date (items tick themselves when the audit verifies
//! the fix and reopen on regression) and, for scheduled runs, regressions are queued as alerts.

use mailaudit_core::alerts::alert_payload;
use mailaudit_core::audit::DomainReport;
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, ReportView};
use mailaudit_core::history;
use mailaudit_store::{
    ChecklistItem, ChunkLease, DmarcRollout, DomainState, ItemState, ResultWrite, StateChange,
    Store,
};

use crate::AppError;
use crate::stored::guide_context;

/// Who ticks or reopens an item after an audit.
pub const VERIFIED_BY: &str = "mailaudit (verified by audit)";
/// Who reopens an item that regressed.
pub const REOPENED_BY: &str = "mailaudit (regression seen by audit)";

/// The current time in unix seconds (the store's clock).
pub use mailaudit_store::now;

/// What recording one domain changed.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Checklist items ticked by this audit.
    pub ticked: Vec<String>,
    /// Checklist items reopened by this audit.
    pub reopened: Vec<String>,
    /// What got worse since the previous audit (empty on a first audit).
    pub regressions: Vec<Finding>,
    /// Whether anything got worse (findings or state changes).
    pub worsened: bool,
}

/// How many of a domain's newest results recording reads to tell what got worse: the previous
/// one, and the ones before it to tell a new problem from one that came back.
pub const HISTORY_READ: i64 = 10;

/// What waiting for the next audited domain gave ([`Pending::next`]).
pub enum Next {
    /// A report (boxed: a report is large, the other variants nothing).
    Report(Box<DomainReport>),
    /// The oldest pending domain has waited [`Pending::DELAY`]: record the batch now.
    Due,
    /// The audit is over.
    End,
}

/// Audited domains waiting to be recorded together ([`record_batch`]): at most
/// [`Pending::MAX`] of them, and none for longer than [`Pending::DELAY`], so that a crash loses
/// at most what was audited in that time (the next run audits it again).
#[derive(Default)]
pub struct Pending {
    reports: Vec<DomainReport>,
    due: Option<tokio::time::Instant>,
}

impl Pending {
    /// Domains recorded per transaction.
    pub const MAX: usize = 256;
    /// How long an audited domain may wait for the rest of its batch.
    pub const DELAY: std::time::Duration = std::time::Duration::from_secs(1);

    /// The next report from `rx`, or [`Next::Due`] when the pending ones must be recorded first.
    pub async fn next(&self, rx: &mut tokio::sync::mpsc::Receiver<DomainReport>) -> Next {
        let next = match self.due {
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(next) => next,
                Err(_) => return Next::Due,
            },
            None => rx.recv().await,
        };
        next.map_or(Next::End, |r| Next::Report(Box::new(r)))
    }

    /// Adds a report; whether the batch is full (record it now).
    pub fn push(&mut self, report: DomainReport) -> bool {
        if self.reports.is_empty() {
            self.due = Some(tokio::time::Instant::now() + Self::DELAY);
        }
        self.reports.push(report);
        self.reports.len() >= Self::MAX
    }

    /// The pending reports, to record; none is pending after.
    pub fn take(&mut self) -> Vec<DomainReport> {
        self.due = None;
        std::mem::take(&mut self.reports)
    }
}

/// Records one audited domain in run `run_id` and updates its roll-out and checklist. With
/// `alerts`, a worsening is queued in the store's alert outbox for delivery. A report with an
/// error (an invalid name) is not recorded.
pub async fn record(
    store: &dyn Store,
    run_id: i64,
    report: &DomainReport,
    alerts: bool,
) -> Result<Recorded, AppError> {
    let mut out = record_batch(store, run_id, std::slice::from_ref(report), alerts, None).await?;
    match out.pop() {
        Some((_, r)) => r,
        None => Ok(Recorded::default()),
    }
}

/// Records audited domains of run `run_id` as [`record`] does, in one store transaction
/// ([`Store::record_batch`]) after one read of what the store holds about them all
/// ([`Store::domain_states`]): what makes recording a large audit cheap. Reports with an error
/// are left out; a domain audited twice is recorded once, from its last report. With `lease`,
/// the batch is a distributed run's chunk, marked done in the same transaction (`LeaseLost`
/// when another worker has it now: nothing is written).
///
/// Returns each recorded domain with what recording it changed, or why it was left out (a
/// previous audit that cannot be read); `Err` when the store refused the batch (nothing of it
/// was written).
pub async fn record_batch(
    store: &dyn Store,
    run_id: i64,
    reports: &[DomainReport],
    alerts: bool,
    lease: Option<&ChunkLease>,
) -> Result<Vec<(String, Result<Recorded, AppError>)>, AppError> {
    // The last report of each domain, in the order of their first appearance.
    let mut last: Vec<&DomainReport> = Vec::new();
    for report in reports.iter().filter(|r| r.error.is_none()) {
        match last.iter_mut().find(|r| r.domain == report.domain) {
            Some(slot) => *slot = report,
            None => last.push(report),
        }
    }
    let names: Vec<String> = last.iter().map(|r| r.domain.clone()).collect();
    // Each domain's previous result; the ones before it only for the domains whose diff reads
    // them (a finding the previous audit did not have: new, or back?), which an unchanged
    // fleet has few of.
    let states = store.domain_states(&names, 1).await?;
    let now = now();
    let mut prepared = Vec::with_capacity(last.len());
    let mut needy = Vec::new();
    for (report, state) in last.into_iter().zip(states) {
        let cur = ReportView::from_report(report);
        let prev = state
            .history
            .first()
            .map(|p| ReportView::from_json(&p.report).map_err(AppError::PreviousAudit));
        if let Some(Ok(prev)) = &prev
            && history::needs_earlier(prev, &cur)
        {
            needy.push(state.domain.clone());
        }
        prepared.push((report, state, cur, prev));
    }
    let mut older: std::collections::HashMap<String, Vec<ReportView>> = Default::default();
    if !needy.is_empty() {
        for s in store.domain_states(&needy, HISTORY_READ).await? {
            let views = s
                .history
                .iter()
                .skip(1)
                .filter_map(|r| ReportView::from_json(&r.report).ok())
                .collect();
            older.insert(s.domain, views);
        }
    }
    let mut writes = Vec::with_capacity(prepared.len());
    let mut out = Vec::with_capacity(prepared.len());
    for (report, state, cur, prev) in prepared {
        let earlier = older.get(&state.domain).map_or(&[][..], Vec::as_slice);
        let planned = match prev.transpose() {
            Ok(prev) => plan(report, &state, &cur, prev.as_ref(), earlier, now, alerts),
            Err(e) => Err(e),
        };
        match planned {
            Ok((write, recorded)) => {
                writes.push(write);
                out.push((report.domain.clone(), Ok(recorded)));
            }
            Err(e) => out.push((report.domain.clone(), Err(e))),
        }
    }
    if writes.is_empty() && lease.is_none() {
        return Ok(out);
    }
    store
        .record_batch(run_id, &writes, lease, now)
        .await
        .map_err(|source| AppError::Record {
            domain: match writes.as_slice() {
                [one] => one.domain.clone(),
                many => format!("{} domains", many.len()),
            },
            source,
        })?;
    Ok(out)
}

/// What recording `report` writes, given what the store holds about its domain, and what that
/// changes.
/// `prev` is its previous audit, `earlier` the ones before (when the diff needs them).
fn plan(
    report: &DomainReport,
    state: &DomainState,
    cur: &ReportView,
    prev: Option<&ReportView>,
    earlier: &[ReportView],
    now: i64,
    alerts: bool,
) -> Result<(ResultWrite, Recorded), AppError> {
    let mut out = Recorded::default();
    let domain = state.domain.as_str();
    let json = serde_json::to_value(report).map_err(AppError::Serialize)?;
    let mut write = ResultWrite {
        domain: domain.to_string(),
        audited_at: now,
        score: report.score.map(i64::from),
        report: json,
        rollout: None,
        checklist: None,
        states: Vec::new(),
        alert: None,
    };

    // The DMARC roll-out: a new phase starts when the published policy changes.
    let mut rollout = state.rollout.clone();
    if let Some(policy) = cur.dmarc.policy.as_deref().map(str::to_ascii_lowercase)
        && rollout.as_ref().is_none_or(|r| r.phase != policy)
    {
        let r = DmarcRollout {
            domain: domain.to_string(),
            phase: policy,
            started_at: now,
        };
        write.rollout = Some(r.clone());
        rollout = Some(r);
    }

    // The checklist: the guide's items, then what this audit verifies.
    let ctx = guide_context(state.entry.as_ref(), rollout.as_ref(), now, None);
    let g = guide::build(cur, &ctx);
    let mut items = ChecklistItem::open_items(domain, &g, now);
    // The guide lists what is still to do; an item it no longer lists (its finding is gone)
    // stays on the checklist, so that the audit ticks it below and can reopen it later.
    let stored = &state.checklist;
    for kept in stored {
        if !items.iter().any(|i| i.key == kept.key) {
            items.push(kept.clone());
        }
    }
    // A re-audit that changes nothing on the list (the same items, order, priorities and
    // titles) writes nothing; otherwise the list is synced, which keeps each stored item's
    // state.
    let same = items.len() == stored.len()
        && items
            .iter()
            .zip(stored)
            .all(|(i, s)| i.key == s.key && i.priority == s.priority && i.title == s.title);
    let current: Vec<(String, ItemState)> = items
        .iter()
        .map(|i| {
            let state = stored
                .iter()
                .find(|s| s.key == i.key)
                .map_or(i.state, |s| s.state);
            (i.key.clone(), state)
        })
        .collect();
    if !same {
        write.checklist = Some(items);
    }
    for (key, state) in current {
        let (to, by) = match (guide::verify(&key, cur), state) {
            (Some(true), ItemState::Open) => (ItemState::Done, VERIFIED_BY),
            (Some(false), ItemState::Done) => (ItemState::Open, REOPENED_BY),
            _ => continue,
        };
        match to {
            ItemState::Done => out.ticked.push(key.clone()),
            ItemState::Open => out.reopened.push(key.clone()),
        }
        write.states.push(StateChange {
            key,
            state: to,
            by: by.to_string(),
        });
    }

    // What got worse since the previous audit.
    if let Some(prev) = prev {
        let d = history::diff(prev, cur, earlier);
        out.worsened = d.worsened();
        out.regressions = d.regressed.iter().chain(d.new.iter()).cloned().collect();
        if alerts && (out.worsened || !out.reopened.is_empty()) {
            write.alert = Some(alert_payload(domain, &out.regressions, d.score, None));
        }
    }
    Ok((write, out))
}
