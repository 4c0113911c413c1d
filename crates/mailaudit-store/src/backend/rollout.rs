//! The DMARC rollout phase of each domain.

use crate::StoreError;

/// A roll-out phase is `none`, `quarantine` or `reject`.
pub(crate) fn check_phase(phase: &str) -> Result<(), StoreError> {
    if !["none", "quarantine", "reject"].contains(&phase) {
        return Err(StoreError::Invalid(format!(
            "DMARC phase {phase:?} is not none, quarantine or reject"
        )));
    }
    Ok(())
}

/// The DMARC rollout's methods (see [`impl_store!`](super::impl_store)).
macro_rules! rollout_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            /// Records a domain's (normalised) phase (checked by the caller).
            async fn put_rollout<'e, E>(
                executor: E,
                domain: &str,
                phase: &str,
                started_at: Time,
            ) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO dmarc_rollouts (domain, phase, started_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (domain) DO UPDATE SET phase = excluded.phase, \
                     started_at = excluded.started_at",
                )
                .bind(domain)
                .bind(phase)
                .bind(started_at)
                .execute(executor)
                .await?;
                Ok(())
            }
        }

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
                check_phase(&r.phase)?;
                Self::put_rollout(&self.pool, &domain, &r.phase, r.started_at).await?;
                Ok(())
            }
        }
    };
}

pub(crate) use rollout_methods;
