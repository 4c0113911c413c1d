//! The alert outbox: queued alerts, delivered with retry.

pub(crate) const ALERT_COLUMNS: &str =
    "id, created_at, domain, payload, attempts, next_attempt_at, delivered_at, last_error";

/// The alert outbox's methods (see [`impl_store!`](super::impl_store)).
macro_rules! alerts_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            /// Queues an alert for a (normalised) domain, due at once; its id.
            async fn put_alert<'e, E>(
                executor: E,
                domain: &str,
                payload: &serde_json::Value,
                now: Time,
            ) -> Result<i64, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                Ok(sqlx::query_scalar(
                    "INSERT INTO alerts (created_at, domain, payload, attempts, next_attempt_at) \
                     VALUES ($1, $2, $3, 0, $1) RETURNING id",
                )
                .bind(now)
                .bind(domain)
                .bind(Json(payload))
                .fetch_one(executor)
                .await?)
            }
        }

        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn enqueue_alert(
                &self,
                domain: &str,
                payload: &serde_json::Value,
                now: Time,
            ) -> Result<i64, StoreError> {
                let domain = norm_domain(domain)?;
                let id = Self::put_alert(&self.pool, &domain, payload, now).await?;
                Ok(id)
            }

            async fn due_alerts(&self, now: Time) -> Result<Vec<Alert>, StoreError> {
                let rows = sqlx::query_as::<_, Alert>(&format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts \
                     WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
                     ORDER BY next_attempt_at, id"
                ))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn alert_delivered(&self, id: i64, now: Time) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE alerts SET attempts = attempts + 1, delivered_at = $1 \
                     WHERE id = $2 AND delivered_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM alerts WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                    if exists.is_none() {
                        return Err(StoreError::not_found(format!("alert {id}")));
                    }
                }
                Ok(())
            }

            async fn alert_failed(
                &self,
                id: i64,
                error: &str,
                next_attempt_at: Time,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = $1, \
                     next_attempt_at = $2 WHERE id = $3 AND delivered_at IS NULL",
                )
                .bind(error)
                .bind(next_attempt_at)
                .bind(id)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM alerts WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                    return Err(match exists {
                        None => StoreError::not_found(format!("alert {id}")),
                        Some(_) => StoreError::Conflict(format!("alert {id} was already delivered")),
                    });
                }
                Ok(())
            }

            async fn claim_due_alerts(
                &self,
                now: Time,
                lease_secs: i64,
            ) -> Result<Vec<Alert>, StoreError> {
                if lease_secs <= 0 {
                    return Err(StoreError::Invalid(format!(
                        "alert lease must be positive, not {lease_secs}"
                    )));
                }
                let mut v = sqlx::query_as::<_, Alert>(&format!(
                    "UPDATE alerts SET next_attempt_at = $2 \
                     WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
                     RETURNING {ALERT_COLUMNS}"
                ))
                .bind(now)
                .bind(now.saturating_add(lease_secs))
                .fetch_all(&self.pool)
                .await?;
                v.sort_by_key(|a| a.id);
                Ok(v)
            }
        }
    };
}

pub(crate) use alerts_methods;
