//! Customers and domains: the inventory.

/// An optional text field: trimmed, empty means none.
pub(crate) fn opt_text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub(crate) const DOMAIN_SELECT: &str = "SELECT d.id, d.name, c.name AS customer, d.parked, d.tenant, \
     d.m365_endpoint, d.relay_from, d.relay_to, d.key_people, d.added_at \
     FROM domains d LEFT JOIN customers c ON c.id = d.customer_id";

/// The inventory's methods, and the look-up of a customer's id the other areas share (see [`impl_store!`](super::impl_store)).
macro_rules! inventory_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            async fn customer_id<'e, E>(executor: E, name: &str) -> Result<i64, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query_scalar::<_, i64>("SELECT id FROM customers WHERE name = $1")
                    .bind(name)
                    .fetch_optional(executor)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("customer {name:?}")))
            }

            /// Inserts the domain `d` in one transaction, `on_conflict` deciding what happens to
            /// an existing one (replace, or leave as it is); the stored entry after it, and
            /// whether a row was written.
            async fn insert_domain(
                &self,
                d: &NewDomain,
                on_conflict: &str,
            ) -> Result<(DomainEntry, bool), StoreError> {
                let name = norm_domain(&d.name)?;
                let customer = match &d.customer {
                    Some(c) => Some(norm_customer(c)?),
                    None => None,
                };
                let mut tx = self.write_tx().await?;
                let customer_id = match &customer {
                    Some(c) => Some(Self::customer_id(&mut *tx, c).await?),
                    None => None,
                };
                let done = sqlx::query(&format!(
                    "INSERT INTO domains (name, customer_id, parked, tenant, m365_endpoint, \
                     relay_from, relay_to, key_people, added_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) {on_conflict}"
                ))
                .bind(&name)
                .bind(customer_id)
                .bind(d.parked)
                .bind(opt_text(&d.tenant))
                .bind(opt_text(&d.m365_endpoint))
                .bind(opt_text(&d.relay_from))
                .bind(opt_text(&d.relay_to))
                .bind(Json(&d.key_people))
                .bind(crate::now())
                .execute(&mut *tx)
                .await?;
                let entry = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((entry, done.rows_affected() == 1))
            }
        }

        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn add_customer(
                &self,
                name: &str,
                contacts: &str,
                notes: &str,
            ) -> Result<Customer, StoreError> {
                let name = norm_customer(name)?;
                let created_at = crate::now();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO customers (name, contacts, notes, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&name)
                .bind(contacts)
                .bind(notes)
                .bind(created_at)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| conflict_on_unique(e, || format!("customer {name:?} already exists")))?;
                Ok(Customer {
                    id,
                    name,
                    contacts: contacts.to_string(),
                    notes: notes.to_string(),
                    created_at,
                })
            }

            async fn customers(&self) -> Result<Vec<Customer>, StoreError> {
                let rows = sqlx::query_as::<_, Customer>(
                    "SELECT id, name, contacts, notes, created_at FROM customers ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn customer(&self, name: &str) -> Result<Customer, StoreError> {
                let name = norm_customer(name)?;
                let row = sqlx::query_as::<_, Customer>(
                    "SELECT id, name, contacts, notes, created_at FROM customers WHERE name = $1",
                )
                .bind(&name)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::not_found(format!("customer {name:?}")))?;
                Ok(row)
            }

            async fn update_customer(
                &self,
                name: &str,
                contacts: Option<&str>,
                notes: Option<&str>,
            ) -> Result<crate::Updated<Customer>, StoreError> {
                let name = norm_customer(name)?;
                let mut tx = self.write_tx().await?;
                // Takes the row's lock, as in update_domain.
                let locked = sqlx::query("UPDATE customers SET name = name WHERE name = $1")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                if locked.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("customer {name:?}")));
                }
                let before = sqlx::query_as::<_, Customer>(
                    "SELECT id, name, contacts, notes, created_at FROM customers WHERE name = $1",
                )
                .bind(&name)
                .fetch_one(&mut *tx)
                .await?;
                let after = Customer {
                    contacts: contacts.map_or_else(|| before.contacts.clone(), str::to_string),
                    notes: notes.map_or_else(|| before.notes.clone(), str::to_string),
                    ..before.clone()
                };
                if after == before {
                    return Ok(crate::Updated { before, after });
                }
                sqlx::query("UPDATE customers SET contacts = $1, notes = $2 WHERE id = $3")
                    .bind(&after.contacts)
                    .bind(&after.notes)
                    .bind(after.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(crate::Updated { before, after })
            }

            async fn upsert_domain(&self, d: &NewDomain) -> Result<DomainEntry, StoreError> {
                let (entry, _) = self
                    .insert_domain(
                        d,
                        "ON CONFLICT (name) DO UPDATE SET customer_id = excluded.customer_id, \
                         parked = excluded.parked, tenant = excluded.tenant, \
                         m365_endpoint = excluded.m365_endpoint, relay_from = excluded.relay_from, \
                         relay_to = excluded.relay_to, key_people = excluded.key_people",
                    )
                    .await?;
                Ok(entry)
            }

            async fn add_domain(
                &self,
                d: &NewDomain,
            ) -> Result<crate::Added<DomainEntry>, StoreError> {
                let (entry, inserted) = self
                    .insert_domain(d, "ON CONFLICT (name) DO NOTHING")
                    .await?;
                Ok(if inserted {
                    crate::Added::New(entry)
                } else {
                    crate::Added::Existing(entry)
                })
            }

            async fn update_domain(
                &self,
                name: &str,
                u: &crate::DomainUpdate,
            ) -> Result<crate::Updated<DomainEntry>, StoreError> {
                let name = norm_domain(name)?;
                let mut u = u.clone();
                if let Some(Some(c)) = &u.customer {
                    u.customer = Some(Some(norm_customer(c)?));
                }
                let mut tx = self.write_tx().await?;
                // A no-op write first: it takes the row's lock (PostgreSQL; SQLite's
                // BEGIN IMMEDIATE already holds the database's), so no other writer changes the
                // row between the read and the write.
                let locked = sqlx::query("UPDATE domains SET name = name WHERE name = $1")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                if locked.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("domain {name:?}")));
                }
                let before = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?;
                let after = u.apply(&before);
                if after == before {
                    // Nothing to write: the transaction is rolled back when dropped.
                    return Ok(crate::Updated { before, after });
                }
                let customer_id = match &after.customer {
                    Some(c) => Some(Self::customer_id(&mut *tx, c).await?),
                    None => None,
                };
                sqlx::query(
                    "UPDATE domains SET customer_id = $1, parked = $2, tenant = $3, \
                     m365_endpoint = $4, relay_from = $5, relay_to = $6, key_people = $7 \
                     WHERE name = $8",
                )
                .bind(customer_id)
                .bind(after.parked)
                .bind(&after.tenant)
                .bind(&after.m365_endpoint)
                .bind(&after.relay_from)
                .bind(&after.relay_to)
                .bind(Json(&after.key_people))
                .bind(&name)
                .execute(&mut *tx)
                .await?;
                let after = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(crate::Updated { before, after })
            }

            async fn remove_domain(&self, name: &str) -> Result<(), StoreError> {
                let name = norm_domain(name)?;
                let done = sqlx::query("DELETE FROM domains WHERE name = $1")
                    .bind(&name)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("domain {name:?}")));
                }
                Ok(())
            }

            async fn domains(&self, customer: Option<&str>) -> Result<Vec<DomainEntry>, StoreError> {
                let rows = match customer {
                    None => {
                        sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} ORDER BY d.name"))
                            .fetch_all(&self.pool)
                            .await?
                    }
                    Some(c) => {
                        let c = norm_customer(c)?;
                        let id = Self::customer_id(&self.pool, &c).await?;
                        sqlx::query_as::<_, DomainEntry>(&format!(
                            "{DOMAIN_SELECT} WHERE d.customer_id = $1 ORDER BY d.name"
                        ))
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows)
            }

            async fn domain(&self, name: &str) -> Result<DomainEntry, StoreError> {
                let name = norm_domain(name)?;
                let row = sqlx::query_as::<_, DomainEntry>(&format!("{DOMAIN_SELECT} WHERE d.name = $1"))
                    .bind(&name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("domain {name:?}")))?;
                Ok(row)
            }
        }
    };
}

pub(crate) use inventory_methods;
