//! What happens to an audited domain in the store: its result is recorded (one transaction per
//! domain, so a crash mid-run keeps everything already recorded), its DMARC roll-out phase is
//! tracked, its checklist is brought up to date (items tick themselves when the audit verifies
//! the fix and reopen on regression) and, for scheduled runs, regressions are queued as alerts.

use mailaudit_core::alerts::alert_payload;
use mailaudit_core::audit::DomainReport;
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, ReportView};
use mailaudit_core::history;
use mailaudit_store::{ChecklistItem, DmarcRollout, ItemState, Store};

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

/// Records one audited domain in run `run_id` and updates its roll-out and checklist. With
/// `alerts`, a worsening is queued in the store's alert outbox for delivery.
pub async fn record(
    store: &dyn Store,
    run_id: i64,
    report: &DomainReport,
    alerts: bool,
) -> Result<Recorded, AppError> {
    let mut out = Recorded::default();
    if report.error.is_some() {
        return Ok(out);
    }
    let domain = report.domain.as_str();
    let now = now();
    let earlier = store.history(domain, 10).await?;
    let json = serde_json::to_value(report).map_err(AppError::Serialize)?;
    store
        .record_result(run_id, domain, now, report.score.map(i64::from), &json)
        .await
        .map_err(|source| AppError::Record {
            domain: domain.to_string(),
            source,
        })?;
    let cur = ReportView::from_report(report);

    // The DMARC roll-out: a new phase starts when the published policy changes.
    let mut rollout = store.dmarc_rollout(domain).await?;
    if let Some(policy) = cur.dmarc.policy.as_deref().map(str::to_ascii_lowercase)
        && rollout.as_ref().is_none_or(|r| r.phase != policy)
    {
        let r = DmarcRollout {
            domain: domain.to_string(),
            phase: policy,
            started_at: now,
        };
        store.set_dmarc_rollout(&r).await?;
        rollout = Some(r);
    }

    // The checklist: the guide's items, then what this audit verifies.
    let entry = store.domain(domain).await.ok();
    let ctx = guide_context(entry.as_ref(), rollout.as_ref(), now, None);
    let g = guide::build(&cur, &ctx);
    let mut items = ChecklistItem::open_items(domain, &g, now);
    // The guide lists what is still to do; an item it no longer lists (its finding is gone)
    // stays on the checklist, so that the audit ticks it below and can reopen it later.
    let stored = store.checklist(domain).await?;
    for kept in &stored {
        if !items.iter().any(|i| i.key == kept.key) {
            items.push(kept.clone());
        }
    }
    // A re-audit that changes nothing on the list (the same items, order, priorities and
    // titles) writes nothing; otherwise the list is synced and read back.
    let same = items.len() == stored.len()
        && items
            .iter()
            .zip(&stored)
            .all(|(i, s)| i.key == s.key && i.priority == s.priority && i.title == s.title);
    let current = if same {
        stored
    } else {
        store.sync_checklist(domain, &items).await?;
        store.checklist(domain).await?
    };
    for item in current {
        match (guide::verify(&item.key, &cur), item.state) {
            (Some(true), ItemState::Open) => {
                store
                    .set_item_state(domain, &item.key, ItemState::Done, VERIFIED_BY, now)
                    .await?;
                out.ticked.push(item.key);
            }
            (Some(false), ItemState::Done) => {
                store
                    .set_item_state(domain, &item.key, ItemState::Open, REOPENED_BY, now)
                    .await?;
                out.reopened.push(item.key);
            }
            _ => {}
        }
    }

    // What got worse since the previous audit.
    if let Some((prev, older)) = earlier.split_first() {
        let prev = ReportView::from_json(&prev.report).map_err(AppError::PreviousAudit)?;
        let older: Vec<ReportView> = older
            .iter()
            .filter_map(|r| ReportView::from_json(&r.report).ok())
            .collect();
        let d = history::diff(&prev, &cur, &older);
        out.worsened = d.worsened();
        out.regressions = d.regressed.iter().chain(d.new.iter()).cloned().collect();
        if alerts && (out.worsened || !out.reopened.is_empty()) {
            let payload = alert_payload(domain, &out.regressions, d.score, None);
            store.enqueue_alert(domain, &payload, now).await?;
        }
    }
    Ok(out)
}
