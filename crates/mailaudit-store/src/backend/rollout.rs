//! The DMARC rollout phase of each domain.

/// The DMARC rollout's methods (see [`impl_store!`](super::impl_store)).
macro_rules! rollout_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn dmarc_rollout(&self, domain: &str) -> Result<Option<DmarcRollout>, StoreError> {
                let domain = norm_domain(domain)?;
                Ok(sqlx::query_as::<_, DmarcRollout>(
                    "SELECT domain, phase, started_at FROM dmarc_rollouts WHERE domain = $1",
                )
                .bind(&domain)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn set_dmarc_rollout(&self, r: &DmarcRollout) -> Result<(), StoreError> {
                let domain = norm_domain(&r.domain)?;
                if !["none", "quarantine", "reject"].contains(&r.phase.as_str()) {
                    return Err(StoreError::Invalid(format!(
                        "DMARC phase {:?} is not none, quarantine or reject",
                        r.phase
                    )));
                }
                sqlx::query(
                    "INSERT INTO dmarc_rollouts (domain, phase, started_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (domain) DO UPDATE SET phase = excluded.phase, \
                     started_at = excluded.started_at",
                )
                .bind(&domain)
                .bind(&r.phase)
                .bind(r.started_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use rollout_methods;
