//! Portal accounts: users, the customers of viewers, sessions (stored by the SHA-256 of their
//! token), the audit log and the login throttle's counters.

use crate::{Role, StoreError, Time, User};

/// A user's row, before its customers are added.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) password_hash: Option<String>,
    pub(crate) totp_secret: Option<String>,
    pub(crate) recovery_codes: String,
    pub(crate) created_at: Time,
    pub(crate) updated_at: Time,
}

impl UserRow {
    pub(crate) fn with_customers(self, customers: Vec<String>) -> User {
        User {
            id: self.id,
            name: self.name,
            role: self.role,
            customers,
            password_hash: self.password_hash,
            totp_secret: self.totp_secret,
            recovery_codes: self
                .recovery_codes
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub(crate) const USER_SELECT: &str = "SELECT id, name, role, password_hash, totp_secret, \
     recovery_codes, created_at, updated_at FROM users";

/// A session row with its user's.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub(crate) user_id: i64,
    pub(crate) csrf_token: String,
    pub(crate) created_at: Time,
    pub(crate) last_seen_at: Time,
    pub(crate) expires_at: Time,
    pub(crate) pending: bool,
}

/// Normalises a user name: trimmed; non-empty, at most 100 characters, no white space or
/// control characters inside (a sign-in name is typed, and shown in the audit log).
pub(crate) fn norm_user(name: &str) -> Result<String, StoreError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(StoreError::Invalid("empty user name".into()));
    }
    if n.chars().count() > 100 {
        return Err(StoreError::Invalid(format!(
            "user name longer than 100 characters: {n:?}"
        )));
    }
    if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "user name with white space or control characters: {n:?}"
        )));
    }
    Ok(n.to_string())
}

/// Checks that `customers` fit `role`: a viewer sees at least one customer; an admin or a
/// technician sees them all, so naming customers for one is a mistake, not a restriction.
/// Returns the names normalised, each once.
pub(crate) fn check_scope(role: Role, customers: &[String]) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = Vec::new();
    for c in customers {
        let c = crate::backend::norm_customer(c)?;
        if !names.contains(&c) {
            names.push(c);
        }
    }
    match (role, names.is_empty()) {
        (Role::Viewer, true) => Err(StoreError::Invalid(
            "a viewer sees only the customers it is given: name at least one".into(),
        )),
        (Role::Admin | Role::Technician, false) => Err(StoreError::Invalid(format!(
            "{} sees every customer: customers are given only to viewers",
            if role == Role::Admin {
                "an admin"
            } else {
                "a technician"
            }
        ))),
        _ => Ok(names),
    }
}

/// The stored form of a session token: its SHA-256, in hex. The token itself is never stored,
/// so a copy of the database signs no one in.
pub(crate) fn token_hash(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Refuses an empty token (or one with control characters): no session is ever stored or
/// looked up under one.
pub(crate) fn check_token(token: &str, what: &str) -> Result<(), StoreError> {
    if token.len() < 16 || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(StoreError::Invalid(format!(
            "a {what} is at least 16 characters without white space"
        )));
    }
    Ok(())
}

/// The accounts' methods (see [`impl_store!`](super::impl_store)).
macro_rules! accounts_methods {
    ($store:ty, $db:ty; [$($areas:ident)*] $($methods:tt)*) => {
        impl $store {
            /// `Conflict` unless another admin than `name` remains, in `tx`: the admins' rows
            /// are locked (PostgreSQL; SQLite's write transaction holds the database), so two
            /// admins demoting or removing each other at once cannot leave none.
            async fn keep_an_admin(
                tx: &mut sqlx::Transaction<'static, $db>,
                name: &str,
            ) -> Result<(), StoreError> {
                let admins: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT name FROM users WHERE role = 'admin'{}",
                    Self::ROW_LOCK
                ))
                .fetch_all(&mut **tx)
                .await?;
                if admins.iter().all(|a| a == name) {
                    return Err(StoreError::Conflict(format!(
                        "{name} is the only admin: make another user admin first"
                    )));
                }
                Ok(())
            }

            /// The customers each of `ids` may see, by name.
            async fn user_customers<'e, E>(
                executor: E,
                ids: &[i64],
            ) -> Result<std::collections::HashMap<i64, Vec<String>>, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let mut out: std::collections::HashMap<i64, Vec<String>> =
                    std::collections::HashMap::new();
                if ids.is_empty() {
                    return Ok(out);
                }
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
                    "SELECT uc.user_id, c.name FROM user_customers uc \
                     JOIN customers c ON c.id = uc.customer_id \
                     WHERE uc.user_id IN ({list}) ORDER BY c.name"
                ))
                .fetch_all(executor)
                .await?;
                for (id, name) in rows {
                    out.entry(id).or_default().push(name);
                }
                Ok(out)
            }

            /// The user of `name` (`NotFound`), with its customers, in `tx`.
            async fn user_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                name: &str,
            ) -> Result<User, StoreError> {
                let row = sqlx::query_as::<_, UserRow>(&format!("{USER_SELECT} WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("user {name:?}")))?;
                let mut scopes = Self::user_customers(&mut **tx, &[row.id]).await?;
                let customers = scopes.remove(&row.id).unwrap_or_default();
                Ok(row.with_customers(customers))
            }

            /// Gives user `id` exactly `customers` (which must exist), in `tx`.
            async fn set_user_customers(
                tx: &mut sqlx::Transaction<'static, $db>,
                id: i64,
                customers: &[String],
            ) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM user_customers WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                for c in customers {
                    let cid = Self::customer_id(&mut **tx, c).await?;
                    sqlx::query("INSERT INTO user_customers (user_id, customer_id) VALUES ($1, $2)")
                        .bind(id)
                        .bind(cid)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }
        }

        store_methods! {
            $store, $db; [$($areas)*] $($methods)*

            async fn add_user(&self, u: &crate::NewUser, now: Time) -> Result<User, StoreError> {
                let name = norm_user(&u.name)?;
                let customers = check_scope(u.role, &u.customers)?;
                let mut tx = self.write_tx().await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO users (name, role, password_hash, totp_secret, created_at, \
                     updated_at) VALUES ($1, $2, $3, NULL, $4, $4) RETURNING id",
                )
                .bind(&name)
                .bind(u.role.as_str())
                .bind(u.password_hash.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| conflict_on_unique(e, || format!("user {name:?} already exists")))?;
                Self::set_user_customers(&mut tx, id, &customers).await?;
                let user = Self::user_in(&mut tx, &name).await?;
                tx.commit().await?;
                Ok(user)
            }

            async fn users(&self) -> Result<Vec<User>, StoreError> {
                let rows = sqlx::query_as::<_, UserRow>(&format!("{USER_SELECT} ORDER BY name"))
                    .fetch_all(&self.pool)
                    .await?;
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let mut scopes = Self::user_customers(&self.pool, &ids).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        let c = scopes.remove(&r.id).unwrap_or_default();
                        r.with_customers(c)
                    })
                    .collect())
            }

            async fn user(&self, name: &str) -> Result<User, StoreError> {
                let name = norm_user(name)?;
                let row = sqlx::query_as::<_, UserRow>(&format!("{USER_SELECT} WHERE name = $1"))
                    .bind(&name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::not_found(format!("user {name:?}")))?;
                let mut scopes = Self::user_customers(&self.pool, &[row.id]).await?;
                let customers = scopes.remove(&row.id).unwrap_or_default();
                Ok(row.with_customers(customers))
            }

            async fn remove_user(&self, name: &str) -> Result<User, StoreError> {
                let name = norm_user(name)?;
                let mut tx = self.write_tx().await?;
                let user = Self::user_in(&mut tx, &name).await?;
                if user.role == Role::Admin {
                    Self::keep_an_admin(&mut tx, &name).await?;
                }
                for table in ["sessions", "user_customers", "api_tokens"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                        .bind(user.id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(user)
            }

            async fn set_password(
                &self,
                name: &str,
                password_hash: Option<&str>,
                now: Time,
            ) -> Result<u64, StoreError> {
                let name = norm_user(name)?;
                let mut tx = self.write_tx().await?;
                let user = Self::user_in(&mut tx, &name).await?;
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(password_hash)
                    .bind(now)
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                let revoked = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(revoked)
            }

            async fn set_role(
                &self,
                name: &str,
                role: Role,
                customers: &[String],
                now: Time,
            ) -> Result<crate::Updated<User>, StoreError> {
                let name = norm_user(name)?;
                let customers = check_scope(role, customers)?;
                let mut tx = self.write_tx().await?;
                let before = Self::user_in(&mut tx, &name).await?;
                if before.role == Role::Admin && role != Role::Admin {
                    Self::keep_an_admin(&mut tx, &name).await?;
                }
                sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
                    .bind(role.as_str())
                    .bind(now)
                    .bind(before.id)
                    .execute(&mut *tx)
                    .await?;
                Self::set_user_customers(&mut tx, before.id, &customers).await?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(before.id)
                    .execute(&mut *tx)
                    .await?;
                let after = Self::user_in(&mut tx, &name).await?;
                tx.commit().await?;
                Ok(crate::Updated { before, after })
            }

            async fn set_second_factor(
                &self,
                name: &str,
                secret: Option<&str>,
                recovery_hashes: &[String],
                now: Time,
            ) -> Result<(), StoreError> {
                let name = norm_user(name)?;
                if recovery_hashes.iter().any(|h| h.is_empty() || h.contains('\n')) {
                    return Err(StoreError::Invalid("a recovery code hash is one word".into()));
                }
                let done = sqlx::query(
                    "UPDATE users SET totp_secret = $1, recovery_codes = $2, updated_at = $3, \
                     totp_last_step = NULL WHERE name = $4",
                )
                .bind(secret)
                .bind(recovery_hashes.join("\n"))
                .bind(now)
                .bind(&name)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found(format!("user {name:?}")));
                }
                Ok(())
            }

            async fn accept_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError> {
                let name = norm_user(name)?;
                // One statement: of two sign-ins with the same code, one wins.
                let done = sqlx::query(
                    "UPDATE users SET totp_last_step = $1 WHERE name = $2 \
                     AND (totp_last_step IS NULL OR totp_last_step < $1)",
                )
                .bind(step)
                .bind(&name)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_recovery_code(
                &self,
                name: &str,
                hash: &str,
                now: Time,
            ) -> Result<bool, StoreError> {
                let name = norm_user(name)?;
                let mut tx = self.write_tx().await?;
                let user = Self::user_in(&mut tx, &name).await?;
                if hash.is_empty() || !user.recovery_codes.iter().any(|h| h == hash) {
                    return Ok(false);
                }
                let left: Vec<&str> = user
                    .recovery_codes
                    .iter()
                    .map(String::as_str)
                    .filter(|h| *h != hash)
                    .collect();
                sqlx::query("UPDATE users SET recovery_codes = $1, updated_at = $2 WHERE id = $3")
                    .bind(left.join("\n"))
                    .bind(now)
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
                let v = sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(v)
            }

            async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
                if key.trim().is_empty() {
                    return Err(StoreError::Invalid("a setting needs a name".into()));
                }
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn create_session(
                &self,
                token: &str,
                user: &str,
                csrf_token: &str,
                now: Time,
                expires_at: Time,
                pending: bool,
            ) -> Result<(), StoreError> {
                check_token(token, "session token")?;
                check_token(csrf_token, "CSRF token")?;
                let name = norm_user(user)?;
                let mut tx = self.write_tx().await?;
                let u = Self::user_in(&mut tx, &name).await?;
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, \
                     last_seen_at, expires_at, pending) VALUES ($1, $2, $3, $4, $4, $5, $6)",
                )
                .bind(token_hash(token))
                .bind(u.id)
                .bind(csrf_token)
                .bind(now)
                .bind(expires_at)
                .bind(pending)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_on_unique(e, || "the session token is taken".into()))?;
                tx.commit().await?;
                Ok(())
            }

            async fn session(
                &self,
                token: &str,
                now: Time,
                idle_secs: i64,
            ) -> Result<Option<crate::Session>, StoreError> {
                if check_token(token, "session token").is_err() {
                    return Ok(None);
                }
                let hash = token_hash(token);
                let row = sqlx::query_as::<_, SessionRow>(
                    "SELECT user_id, csrf_token, created_at, last_seen_at, expires_at, pending \
                     FROM sessions WHERE id_hash = $1",
                )
                .bind(&hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                if now >= row.expires_at || now >= row.last_seen_at.saturating_add(idle_secs) {
                    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                        .bind(&hash)
                        .execute(&self.pool)
                        .await?;
                    return Ok(None);
                }
                let Some(user) = sqlx::query_as::<_, UserRow>(&format!("{USER_SELECT} WHERE id = $1"))
                    .bind(row.user_id)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut scopes = Self::user_customers(&self.pool, &[user.id]).await?;
                let customers = scopes.remove(&user.id).unwrap_or_default();
                if now > row.last_seen_at {
                    sqlx::query(
                        "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2 \
                         AND last_seen_at < $1",
                    )
                    .bind(now)
                    .bind(&hash)
                    .execute(&self.pool)
                    .await?;
                }
                Ok(Some(crate::Session {
                    user: user.with_customers(customers),
                    csrf_token: row.csrf_token,
                    created_at: row.created_at,
                    last_seen_at: row.last_seen_at,
                    expires_at: row.expires_at,
                    pending: row.pending,
                }))
            }

            async fn create_api_token(
                &self,
                user: &str,
                label: &str,
                token: &str,
                now: Time,
            ) -> Result<crate::ApiToken, StoreError> {
                check_token(token, "API token")?;
                let label = label.trim();
                if label.is_empty()
                    || label.chars().count() > 200
                    || label.chars().any(char::is_control)
                {
                    return Err(StoreError::Invalid(
                        "an API token's label is 1 to 200 characters without control characters"
                            .into(),
                    ));
                }
                let name = norm_user(user)?;
                let mut tx = self.write_tx().await?;
                let u = Self::user_in(&mut tx, &name).await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO api_tokens (user_id, label, token_hash, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(u.id)
                .bind(label)
                .bind(token_hash(token))
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| conflict_on_unique(e, || "the API token is taken".into()))?;
                tx.commit().await?;
                Ok(crate::ApiToken {
                    id,
                    user: name,
                    label: label.to_string(),
                    created_at: now,
                    last_used_at: None,
                })
            }

            async fn api_tokens(&self, user: &str) -> Result<Vec<crate::ApiToken>, StoreError> {
                let name = norm_user(user)?;
                let rows: Vec<(i64, String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT t.id, t.label, t.created_at, t.last_used_at FROM api_tokens t \
                     JOIN users u ON u.id = t.user_id WHERE u.name = $1 ORDER BY t.id DESC",
                )
                .bind(&name)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, label, created_at, last_used_at)| crate::ApiToken {
                        id,
                        user: name.clone(),
                        label,
                        created_at,
                        last_used_at,
                    })
                    .collect())
            }

            async fn revoke_api_token(&self, user: &str, id: i64) -> Result<bool, StoreError> {
                let name = norm_user(user)?;
                let done = sqlx::query(
                    "DELETE FROM api_tokens WHERE id = $1 \
                     AND user_id IN (SELECT id FROM users WHERE name = $2)",
                )
                .bind(id)
                .bind(&name)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn api_token_user(
                &self,
                token: &str,
                now: Time,
            ) -> Result<Option<User>, StoreError> {
                if check_token(token, "API token").is_err() {
                    return Ok(None);
                }
                let hash = token_hash(token);
                let user_id: Option<i64> =
                    sqlx::query_scalar("SELECT user_id FROM api_tokens WHERE token_hash = $1")
                        .bind(&hash)
                        .fetch_optional(&self.pool)
                        .await?;
                let Some(user_id) = user_id else {
                    return Ok(None);
                };
                let Some(user) = sqlx::query_as::<_, UserRow>(&format!("{USER_SELECT} WHERE id = $1"))
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut scopes = Self::user_customers(&self.pool, &[user.id]).await?;
                let customers = scopes.remove(&user.id).unwrap_or_default();
                // Noted at most once a minute: a busy script does not write on every call.
                sqlx::query(
                    "UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2 \
                     AND (last_used_at IS NULL OR last_used_at < $1 - 60)",
                )
                .bind(now)
                .bind(&hash)
                .execute(&self.pool)
                .await?;
                Ok(Some(user.with_customers(customers)))
            }

            async fn delete_session(&self, token: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(token_hash(token))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn revoke_sessions(&self, user: &str) -> Result<u64, StoreError> {
                let name = norm_user(user)?;
                let done = sqlx::query(
                    "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)",
                )
                .bind(&name)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn delete_expired_sessions(
                &self,
                now: Time,
                idle_secs: i64,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                )
                .bind(now)
                .bind(now.saturating_sub(idle_secs))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn record_audit(&self, e: &crate::AuditEntry) -> Result<i64, StoreError> {
                let clean = |s: &str| -> String {
                    s.chars().filter(|c| !c.is_control()).take(1000).collect()
                };
                if e.action.trim().is_empty() {
                    return Err(StoreError::Invalid("an audit entry needs an action".into()));
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO audit_log (at, actor, action, target, detail, address) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(e.at)
                .bind(clean(&e.actor))
                .bind(clean(&e.action))
                .bind(clean(&e.target))
                .bind(clean(&e.detail))
                .bind(clean(&e.address))
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn audit_log(
                &self,
                limit: i64,
                before_id: Option<i64>,
            ) -> Result<Vec<crate::AuditEntry>, StoreError> {
                let limit = check_limit(limit)?;
                let rows = sqlx::query_as::<_, crate::AuditEntry>(
                    "SELECT id, at, actor, action, target, detail, address FROM audit_log \
                     WHERE id < $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(before_id.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn record_login_failure(
                &self,
                key: &str,
                now: Time,
                forget_after: i64,
            ) -> Result<crate::LoginFailures, StoreError> {
                // One statement: atomic on both back ends; the right-hand sides see the old row.
                let row = sqlx::query_as::<_, crate::LoginFailures>(
                    "INSERT INTO login_failures (key, failures, last_at) VALUES ($1, 1, $2) \
                     ON CONFLICT (key) DO UPDATE SET \
                       failures = CASE WHEN login_failures.last_at <= $3 THEN 1 \
                                  ELSE login_failures.failures + 1 END, \
                       last_at = excluded.last_at \
                     RETURNING failures, last_at",
                )
                .bind(key)
                .bind(now)
                .bind(now.saturating_sub(forget_after))
                .fetch_one(&self.pool)
                .await?;
                Ok(row)
            }

            async fn login_failures(
                &self,
                key: &str,
            ) -> Result<Option<crate::LoginFailures>, StoreError> {
                let row = sqlx::query_as::<_, crate::LoginFailures>(
                    "SELECT failures, last_at FROM login_failures WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM login_failures WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use accounts_methods;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_and_scopes() {
        for (input, want) in [
            ("  ann ", Some("ann")),
            ("ann.lee@example.com", Some("ann.lee@example.com")),
            ("", None),
            ("ann lee", None),
            ("ann\u{0}", None),
        ] {
            assert_eq!(norm_user(input).ok().as_deref(), want, "{input:?}");
        }
        assert!(norm_user(&"a".repeat(101)).is_err());
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_scope(Role::Viewer, &c(&["A", " A ", "B"])).unwrap(),
            c(&["A", "B"])
        );
        assert!(check_scope(Role::Viewer, &[]).is_err());
        assert!(check_scope(Role::Admin, &[]).unwrap().is_empty());
        let e = check_scope(Role::Technician, &c(&["A"])).unwrap_err();
        assert!(
            e.to_string().contains("a technician sees every customer"),
            "{e}"
        );
    }

    #[test]
    fn tokens_are_stored_hashed() {
        let h = token_hash("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(check_token("short", "t").is_err());
        assert!(check_token(&"x".repeat(16), "t").is_ok());
        assert!(check_token(&format!("{} x", "x".repeat(16)), "t").is_err());
    }
}
