//! Politeness limits for probes: at most `per_host` sessions to one host at a time (one by
//! default), at most `global` sessions in all, and a pause between the end of one session to a
//! host and the start of the next.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Shared limits for a run's probes. Cheap to clone; clones share the limits.
#[derive(Clone, Debug)]
pub struct Politeness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    global: Semaphore,
    per_host: usize,
    spacing: Duration,
    hosts: Mutex<HashMap<String, Arc<HostSlot>>>,
}

#[derive(Debug)]
struct HostSlot {
    sessions: Semaphore,
    last_end: Mutex<Option<Instant>>,
}

/// Records the end of a session when dropped (also when the session's future is cancelled).
struct EndGuard<'a>(&'a HostSlot);

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.last_end.lock() {
            *t = Some(Instant::now());
        }
    }
}

impl Default for Politeness {
    /// 16 sessions in all, one per host, two seconds between sessions to one host.
    fn default() -> Self {
        Politeness::new(16, 1, Duration::from_secs(2))
    }
}

impl Politeness {
    /// Limits: `global` sessions in all, `per_host` at a time to one host (each at least 1),
    /// and `spacing` between the end of a session to a host and the start of the next.
    pub fn new(global: usize, per_host: usize, spacing: Duration) -> Self {
        Politeness {
            inner: Arc::new(Inner {
                global: Semaphore::new(global.clamp(1, Semaphore::MAX_PERMITS)),
                per_host: per_host.clamp(1, Semaphore::MAX_PERMITS),
                spacing,
                hosts: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn slot(&self, host: &str) -> Arc<HostSlot> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let mut hosts = match self.inner.hosts.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        hosts
            .entry(key)
            .or_insert_with(|| {
                Arc::new(HostSlot {
                    sessions: Semaphore::new(self.inner.per_host),
                    last_end: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Runs `f` (one session to `host`, compared case-insensitively) within the limits: waits
    /// for a free slot for the host, then for the spacing since its last session, then for a
    /// global slot.
    pub async fn run<F: Future>(&self, host: &str, f: F) -> F::Output {
        let slot = self.slot(host);
        // The semaphores are never closed, so acquiring only fails in theory; then go on
        // without the permit rather than fail the probe.
        let _host_permit = slot.sessions.acquire().await.ok();
        let last = slot.last_end.lock().ok().and_then(|t| *t);
        if let Some(t) = last {
            tokio::time::sleep_until(t + self.inner.spacing).await;
        }
        let _global_permit = self.inner.global.acquire().await.ok();
        let _end = EndGuard(&slot);
        f.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn measure(p: &Politeness, hosts: &[&str]) -> (usize, Duration) {
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let tasks = hosts.iter().map(|h| {
            let (now, max, p) = (now.clone(), max.clone(), p.clone());
            let h = h.to_string();
            async move {
                p.run(&h, async {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }
        });
        futures::future::join_all(tasks).await;
        (max.load(Ordering::SeqCst), start.elapsed())
    }

    #[tokio::test]
    async fn limits_per_host_global_and_spacing() {
        let p = Politeness::new(8, 1, Duration::from_millis(100));
        let (max, took) = measure(&p, &["mx.a.example", "MX.A.example.", "mx.a.example"]).await;
        assert_eq!(max, 1);
        // 3 × 50 ms sessions and 2 × 100 ms spacing.
        assert!(took >= Duration::from_millis(340), "{took:?}");
        let p = Politeness::new(2, 1, Duration::ZERO);
        let (max, _) = measure(&p, &["a", "b", "c", "d"]).await;
        assert_eq!(max, 2);
        let p = Politeness::new(8, 1, Duration::ZERO);
        let (max, _) = measure(&p, &["a", "b", "c", "d"]).await;
        assert_eq!(max, 4);
    }
}
