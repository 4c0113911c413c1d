//! The remediation checklist of each domain.

use crate::{ChecklistItem, StoreError};

pub(crate) const CHECKLIST_COLUMNS: &str =
    "domain, key, priority, title, state, done_by, done_at, updated_at";

/// Checks a checklist to sync: every item has a key, and no key appears twice.
pub(crate) fn check_items(items: &[ChecklistItem]) -> Result<(), StoreError> {
    for (i, item) in items.iter().enumerate() {
        if item.key.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "checklist item {i} has no key"
            )));
        }
        if items[..i].iter().any(|o| o.key == item.key) {
            return Err(StoreError::Invalid(format!(
                "checklist key {:?} appears twice",
                item.key
            )));
        }
    }
    Ok(())
}

/// The checklist's methods (see [`impl_store!`](super::impl_store)).
macro_rules! checklist_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            /// Makes each domain's stored checklist the given one (see
            /// [`Store::sync_checklist`](crate::Store::sync_checklist)), in `tx`: one query reads
            /// what is stored for all of them, and only what differs is written (a re-audit that
            /// changes nothing writes nothing). Domains are normalised and items checked by the
            /// caller.
            async fn sync_checklists(
                tx: &mut sqlx::Transaction<'static, $db>,
                lists: &[(String, &[ChecklistItem])],
            ) -> Result<(), StoreError> {
                if lists.is_empty() {
                    return Ok(());
                }
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT domain, key, position, priority, title FROM checklist WHERE domain IN ",
                );
                q.push_tuples(lists, |mut b, (domain, _)| {
                    b.push_bind(domain.as_str());
                });
                let existing: Vec<(String, String, i64, i64, String)> =
                    q.build_query_as().fetch_all(&mut **tx).await?;
                let mut changed: Vec<(&str, i64, &ChecklistItem)> = Vec::new();
                for (domain, items) in lists {
                    let stored: Vec<&(String, String, i64, i64, String)> =
                        existing.iter().filter(|e| e.0 == *domain).collect();
                    for (_, key, ..) in stored.iter().filter(|e| !items.iter().any(|i| i.key == e.1)) {
                        sqlx::query("DELETE FROM checklist WHERE domain = $1 AND key = $2")
                            .bind(domain)
                            .bind(key)
                            .execute(&mut **tx)
                            .await?;
                    }
                    for (position, item) in items.iter().enumerate() {
                        let position = i64::try_from(position).unwrap_or(i64::MAX);
                        let same = stored.iter().any(|(_, key, p, prio, title)| {
                            *key == item.key
                                && *p == position
                                && *prio == i64::from(item.priority)
                                && *title == item.title
                        });
                        if !same {
                            changed.push((domain.as_str(), position, item));
                        }
                    }
                }
                // In one order whoever writes, so that concurrent writers (PostgreSQL) never
                // wait on each other's rows in a cycle.
                changed.sort_by(|a, b| (a.0, &a.2.key).cmp(&(b.0, &b.2.key)));
                // Upserts in chunks of one statement each (9 parameters a row).
                for chunk in changed.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO checklist (domain, key, position, priority, title, state, \
                         done_by, done_at, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, (domain, position, item)| {
                        b.push_bind(*domain)
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
                    q.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Counts the checklists of `domains` again into `checklist_counts` (what the fleet
            /// pages read), in `tx`; a domain whose checklist is empty loses its row.
            async fn recount_checklists(
                tx: &mut sqlx::Transaction<'static, $db>,
                domains: &[&str],
            ) -> Result<(), StoreError> {
                for chunk in domains.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO checklist_counts (domain, total, done, open_p1, open_p2, \
                         open_p3) SELECT domain, COUNT(*), \
                         SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), \
                         MIN(CASE WHEN state = 'open' AND priority = 1 THEN updated_at END), \
                         MIN(CASE WHEN state = 'open' AND priority = 2 THEN updated_at END), \
                         MIN(CASE WHEN state = 'open' AND priority = 3 THEN updated_at END) \
                         FROM checklist WHERE domain IN ",
                    );
                    q.push_tuples(chunk, |mut b, d| {
                        b.push_bind(*d);
                    });
                    q.push(
                        " GROUP BY domain ON CONFLICT (domain) DO UPDATE SET \
                         total = excluded.total, done = excluded.done, \
                         open_p1 = excluded.open_p1, open_p2 = excluded.open_p2, \
                         open_p3 = excluded.open_p3 \
                         WHERE checklist_counts.total <> excluded.total \
                         OR checklist_counts.done <> excluded.done \
                         OR checklist_counts.open_p1 IS DISTINCT FROM excluded.open_p1 \
                         OR checklist_counts.open_p2 IS DISTINCT FROM excluded.open_p2 \
                         OR checklist_counts.open_p3 IS DISTINCT FROM excluded.open_p3",
                    );
                    q.build().execute(&mut **tx).await?;
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM checklist_counts WHERE domain IN ",
                    );
                    q.push_tuples(chunk, |mut b, d| {
                        b.push_bind(*d);
                    });
                    q.push(
                        " AND NOT EXISTS (SELECT 1 FROM checklist k \
                         WHERE k.domain = checklist_counts.domain)",
                    );
                    q.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Sets one item's state in `tx` unless it is in that state already; the item as
            /// stored after, `None` when the change wrote nothing.
            async fn change_item_state<'e, E>(
                executor: E,
                domain: &str,
                key: &str,
                state: ItemState,
                by: &str,
                now: Time,
            ) -> Result<Option<ChecklistItem>, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                Ok(sqlx::query_as::<_, ChecklistItem>(&format!(
                    "UPDATE checklist SET state = $1, done_by = $2, done_at = $3, updated_at = $3 \
                     WHERE domain = $4 AND key = $5 AND state <> $1 RETURNING {CHECKLIST_COLUMNS}"
                ))
                .bind(state.as_str())
                .bind(by)
                .bind(now)
                .bind(domain)
                .bind(key)
                .fetch_optional(executor)
                .await?)
            }
        }

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
                check_items(items)?;
                let mut tx = self.write_tx().await?;
                Self::sync_checklists(&mut tx, &[(domain.clone(), items)]).await?;
                Self::recount_checklists(&mut tx, &[domain.as_str()]).await?;
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
                let mut tx = self.write_tx().await?;
                let row = Self::change_item_state(&mut *tx, &domain, key, state, by, now).await?;
                if row.is_some() {
                    Self::recount_checklists(&mut tx, &[domain.as_str()]).await?;
                }
                tx.commit().await?;
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
