//! Recurring re-audits.

use crate::{Schedule, Scope};

/// Fleet first, then customers by name.
pub(crate) fn sort_schedules(v: &mut [Schedule]) {
    v.sort_by(|a, b| match (&a.scope, &b.scope) {
        (Scope::Fleet, Scope::Fleet) => std::cmp::Ordering::Equal,
        (Scope::Fleet, _) => std::cmp::Ordering::Less,
        (_, Scope::Fleet) => std::cmp::Ordering::Greater,
        (Scope::Customer(x), Scope::Customer(y)) => x.cmp(y),
    });
}

/// The schedules' methods (see [`impl_store!`](super::impl_store)).
macro_rules! schedules_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn set_schedule(&self, s: &Schedule) -> Result<(), StoreError> {
                if s.interval_secs <= 0 {
                    return Err(StoreError::Invalid(format!(
                        "schedule interval must be positive, not {}",
                        s.interval_secs
                    )));
                }
                let scope = match &s.scope {
                    Scope::Fleet => Scope::Fleet,
                    Scope::Customer(c) => Scope::Customer(norm_customer(c)?),
                };
                let mut tx = self.write_tx().await?;
                if let Scope::Customer(c) = &scope {
                    Self::customer_id(&mut *tx, c).await?;
                }
                sqlx::query(
                    "INSERT INTO schedules (scope, interval_secs, next_run_at, last_run_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (scope) DO UPDATE SET \
                     interval_secs = excluded.interval_secs, next_run_at = excluded.next_run_at, \
                     last_run_at = excluded.last_run_at",
                )
                .bind(scope.key())
                .bind(s.interval_secs)
                .bind(s.next_run_at)
                .bind(s.last_run_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn remove_schedule(&self, scope: &Scope) -> Result<(), StoreError> {
                let scope = match scope {
                    Scope::Fleet => Scope::Fleet,
                    Scope::Customer(c) => Scope::Customer(norm_customer(c)?),
                };
                let done = sqlx::query("DELETE FROM schedules WHERE scope = $1")
                    .bind(scope.key())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("schedule {}", scope.key())));
                }
                Ok(())
            }

            async fn pause_schedule(&self, scope: &Scope, paused: bool) -> Result<(), StoreError> {
                let scope = match scope {
                    Scope::Fleet => Scope::Fleet,
                    Scope::Customer(c) => Scope::Customer(norm_customer(c)?),
                };
                let done = sqlx::query("UPDATE schedules SET paused = $1 WHERE scope = $2")
                    .bind(paused)
                    .bind(scope.key())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("schedule {}", scope.key())));
                }
                Ok(())
            }

            async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
                let mut v = sqlx::query_as::<_, Schedule>(
                    "SELECT scope, interval_secs, next_run_at, last_run_at, paused FROM schedules",
                )
                .fetch_all(&self.pool)
                .await?;
                sort_schedules(&mut v);
                Ok(v)
            }

            async fn claim_due_schedules(&self, now: Time) -> Result<Vec<Schedule>, StoreError> {
                // One statement: atomic in both back ends. PostgreSQL re-checks the WHERE clause
                // of a row another transaction updated meanwhile, so a concurrent claimer skips it.
                let mut v = sqlx::query_as::<_, Schedule>(
                    "UPDATE schedules SET last_run_at = $1, next_run_at = CASE \
                     WHEN next_run_at + interval_secs > $1 THEN next_run_at + interval_secs \
                     ELSE $1 + interval_secs END \
                     WHERE next_run_at <= $1 AND paused = FALSE \
                     RETURNING scope, interval_secs, next_run_at, last_run_at, paused",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                sort_schedules(&mut v);
                Ok(v)
            }
        }
    };
}

pub(crate) use schedules_methods;
