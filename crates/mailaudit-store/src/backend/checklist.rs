//! The remediation checklist of each domain.

pub(crate) const CHECKLIST_COLUMNS: &str =
    "domain, key, priority, title, state, done_by, done_at, updated_at";

/// The checklist's methods (see [`impl_store!`](super::impl_store)).
macro_rules! checklist_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn checklist(&self, domain: &str) -> Result<Vec<ChecklistItem>, StoreError> {
                let domain = norm_domain(domain)?;
                let rows = sqlx::query_as::<_, ChecklistItem>(&format!(
                    "SELECT {CHECKLIST_COLUMNS} FROM checklist WHERE domain = $1 \
                     ORDER BY priority, position, key"
                ))
                .bind(&domain)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn sync_checklist(
                &self,
                domain: &str,
                items: &[ChecklistItem],
            ) -> Result<(), StoreError> {
                let domain = norm_domain(domain)?;
                for (i, item) in items.iter().enumerate() {
                    if item.key.trim().is_empty() {
                        return Err(StoreError::Invalid(format!("checklist item {i} has no key")));
                    }
                    if items[..i].iter().any(|o| o.key == item.key) {
                        return Err(StoreError::Invalid(format!(
                            "checklist key {:?} appears twice",
                            item.key
                        )));
                    }
                }
                let mut tx = self.write_tx().await?;
                let existing: Vec<String> =
                    sqlx::query_scalar("SELECT key FROM checklist WHERE domain = $1")
                        .bind(&domain)
                        .fetch_all(&mut *tx)
                        .await?;
                for key in existing.iter().filter(|k| !items.iter().any(|i| &i.key == *k)) {
                    sqlx::query("DELETE FROM checklist WHERE domain = $1 AND key = $2")
                        .bind(&domain)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                for (position, item) in items.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO checklist (domain, key, position, priority, title, state, \
                         done_by, done_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (domain, key) DO UPDATE SET position = excluded.position, \
                         priority = excluded.priority, title = excluded.title, \
                         updated_at = CASE WHEN checklist.title <> excluded.title \
                         OR checklist.priority <> excluded.priority \
                         THEN excluded.updated_at ELSE checklist.updated_at END",
                    )
                    .bind(&domain)
                    .bind(&item.key)
                    .bind(i64::try_from(position).unwrap_or(i64::MAX))
                    .bind(i64::from(item.priority))
                    .bind(&item.title)
                    .bind(item.state.as_str())
                    .bind(&item.by)
                    .bind(item.at)
                    .bind(item.updated_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn set_item_state(
                &self,
                domain: &str,
                key: &str,
                state: ItemState,
                by: &str,
                now: Time,
            ) -> Result<ChecklistItem, StoreError> {
                let domain = norm_domain(domain)?;
                let by = by.trim();
                if by.is_empty() {
                    return Err(StoreError::Invalid(
                        "who changed the checklist item is required".into(),
                    ));
                }
                let row = sqlx::query_as::<_, ChecklistItem>(&format!(
                    "UPDATE checklist SET state = $1, done_by = $2, done_at = $3, updated_at = $3 \
                     WHERE domain = $4 AND key = $5 AND state <> $1 RETURNING {CHECKLIST_COLUMNS}"
                ))
                .bind(state.as_str())
                .bind(by)
                .bind(now)
                .bind(&domain)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = row {
                    return Ok(row);
                }
                // Unchanged (already in that state) or absent.
                let row = sqlx::query_as::<_, ChecklistItem>(&format!(
                    "SELECT {CHECKLIST_COLUMNS} FROM checklist WHERE domain = $1 AND key = $2"
                ))
                .bind(&domain)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| {
                    StoreError::not_found(format!("checklist item {key:?} of {domain}"))
                })?;
                Ok(row)
            }
        }
    };
}

pub(crate) use checklist_methods;
