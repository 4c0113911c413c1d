//! Exchange Online tenant configuration imports.

pub(crate) const TENANT_SELECT: &str = "SELECT t.id, c.name AS customer, t.organization, \
     t.imported_at, t.source, t.bundle, t.findings \
     FROM tenant_imports t LEFT JOIN customers c ON c.id = t.customer_id";

/// `t` is the newest import of its organization among the rows matching `scope` (a condition on
/// the alias `n`, e.g. `TRUE` or `n.customer_id = $1`).
pub(crate) fn newest_tenant_import(scope: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM tenant_imports n WHERE n.organization = t.organization \
         AND {scope} AND (n.imported_at > t.imported_at \
         OR (n.imported_at = t.imported_at AND n.id > t.id)))"
    )
}

/// The tenant imports' methods (see [`impl_store!`](super::impl_store)).
macro_rules! tenant_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn record_tenant_import(
                &self,
                customer: Option<&str>,
                organization: &str,
                now: Time,
                source: &str,
                config: &serde_json::Value,
                findings: &serde_json::Value,
            ) -> Result<i64, StoreError> {
                let organization = norm_domain(organization)?;
                if !findings.is_array() {
                    return Err(StoreError::Invalid(
                        "tenant import findings must be a JSON array".into(),
                    ));
                }
                let customer = customer.map(norm_customer).transpose()?;
                let mut tx = self.write_tx().await?;
                let customer_id = match &customer {
                    Some(c) => Some(Self::customer_id(&mut *tx, c).await?),
                    None => None,
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tenant_imports (customer_id, organization, imported_at, source, \
                     bundle, findings) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(customer_id)
                .bind(&organization)
                .bind(now)
                .bind(source)
                .bind(Json(config))
                .bind(Json(findings))
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn tenant_imports(
                &self,
                organization: &str,
                limit: i64,
            ) -> Result<Vec<TenantImport>, StoreError> {
                let organization = norm_domain(organization)?;
                let limit = check_limit(limit)?;
                let rows = sqlx::query_as::<_, TenantImport>(&format!(
                    "{TENANT_SELECT} WHERE t.organization = $1 \
                     ORDER BY t.imported_at DESC, t.id DESC LIMIT $2"
                ))
                .bind(&organization)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn latest_tenant_imports(
                &self,
                customer: Option<&str>,
            ) -> Result<Vec<TenantImport>, StoreError> {
                let rows = match customer {
                    None => {
                        sqlx::query_as::<_, TenantImport>(&format!(
                            "{TENANT_SELECT} WHERE {} ORDER BY t.organization",
                            newest_tenant_import("TRUE")
                        ))
                        .fetch_all(&self.pool)
                        .await?
                    }
                    Some(c) => {
                        let c = norm_customer(c)?;
                        let id = Self::customer_id(&self.pool, &c).await?;
                        sqlx::query_as::<_, TenantImport>(&format!(
                            "{TENANT_SELECT} WHERE t.customer_id = $1 AND {} \
                             ORDER BY t.organization",
                            newest_tenant_import("n.customer_id = $1")
                        ))
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows)
            }
        }
    };
}

pub(crate) use tenant_methods;
