//! Delivery of the store's alert outbox: the due alerts are claimed (so two runners never send
//! the same one), sent to every target, and marked delivered, or failed with the time of the
//! next attempt (exponential backoff kept in the outbox across runs; a permanent failure is
//! not retried).

use mailaudit_core::dns::DnsSource;
use mailaudit_net::notify::{self, AlertTarget, Backoff, NotifyOptions};
use mailaudit_store::{Store, now};

use crate::AppError;

/// How long a claimed alert stays with this runner before another may take it, in seconds.
const LEASE_SECS: i64 = 300;

/// One alert that could not be delivered to every target this time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undelivered {
    /// The alert's domain.
    pub domain: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Why (the last target's failure).
    pub error: String,
}

/// What one delivery round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Alerts delivered to every target.
    pub delivered: usize,
    /// Alerts left in the outbox for a later attempt (or given up on).
    pub undelivered: Vec<Undelivered>,
}

/// Delivers the due alerts of the outbox to every one of `targets` (nothing without targets),
/// through `dns` for the targets' addresses.
pub async fn deliver_due<D: DnsSource>(
    store: &dyn Store,
    dns: &D,
    targets: &[AlertTarget],
    opts: &NotifyOptions,
    backoff: &Backoff,
) -> Result<Delivery, AppError> {
    let mut out = Delivery::default();
    if targets.is_empty() {
        return Ok(out);
    }
    for alert in store.claim_due_alerts(now(), LEASE_SECS).await? {
        let mut error = None;
        for t in targets {
            if let Err(e) = notify::deliver(dns, t, &alert.payload, opts).await {
                error = Some(e);
            }
        }
        match error {
            None => {
                store.alert_delivered(alert.id, now()).await?;
                out.delivered += 1;
            }
            Some(e) => {
                let attempts = u32::try_from(alert.attempts + 1).unwrap_or(u32::MAX);
                let next = backoff
                    .retry_delay(attempts, &e)
                    .map_or(i64::MAX / 2, |d| now() + d.as_secs() as i64);
                // `notify::deliver` took the target's secrets out of the error already.
                let error = e.to_string();
                store.alert_failed(alert.id, &error, next).await?;
                out.undelivered.push(Undelivered {
                    domain: alert.domain,
                    attempts,
                    error,
                });
            }
        }
    }
    Ok(out)
}
