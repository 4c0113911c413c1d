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
                // What is stored, so that only what differs is written: a re-audit that
                // changes nothing writes nothing.
                let existing: Vec<(String, i64, i64, String)> = sqlx::query_as(
                    "SELECT key, position, priority, title FROM checklist WHERE domain = $1",
                )
                .bind(&domain)
                .fetch_all(&mut *tx)
                .await?;
                for (key, ..) in existing.iter().filter(|e| !items.iter().any(|i| i.key == e.0)) {
                    sqlx::query("DELETE FROM checklist WHERE domain = $1 AND key = $2")
                        .bind(&domain)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                let changed: Vec<(i64, &ChecklistItem)> = items
                    .iter()
                    .enumerate()
                    .map(|(position, item)| (i64::try_from(position).unwrap_or(i64::MAX), item))
                    .filter(|(position, item)| {
                        !existing.iter().any(|(key, p, prio, title)| {
                            *key == item.key
                                && p == position
                                && *prio == i64::from(item.priority)
                                && *title == item.title
                        })
                    })
                    .collect();
                // Upserts in chunks of one statement each (9 parameters a row).
                for chunk in changed.chunks(100) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO checklist (domain, key, position, priority, title, state, \
                         done_by, done_at, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, (position, item)| {
                        b.push_bind(domain.as_str())
                            .push_bind(item.key.as_str())
                            .push_bind(*position)
                            .push_bind(i64::from(item.priority))
                            .push_bind(item.title.as_str())
                            .push_bind(item.state.as_str())
                            .push_bind(item.by.as_deref())
                            .push_bind(item.at)
                            .push_bind(item.updated_at);
                    });
                    q.push(
                        " ON CONFLICT (domain, key) DO UPDATE SET position = excluded.position, \
                         priority = excluded.priority, title = excluded.title, \
                         updated_at = CASE WHEN checklist.title <> excluded.title \
                         OR checklist.priority <> excluded.priority \
                         THEN excluded.updated_at ELSE checklist.updated_at END",
                    );
                    q.build().execute(&mut *tx).await?;
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
