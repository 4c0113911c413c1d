//! Portal accounts: users and their roles, the customers a viewer may see, server-side
//! sessions, the audit log and the login throttle's counters.

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;

/// What a user may do in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: every customer, checklists, users, settings and the audit log.
    Admin,
    /// Every customer: checklists; not users or settings.
    Technician,
    /// Read-only, and only the customers the user is scoped to.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Technician, Role::Viewer];

    /// The stored word: `admin`, `technician` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Technician => "technician",
            Role::Viewer => "viewer",
        }
    }

    /// The role of a stored word (ASCII case-insensitive, trimmed).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A portal user, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: i64,
    /// The sign-in name (unique; trimmed, no control characters, no white space).
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The customers a viewer may see, by name (empty for admins and technicians).
    pub customers: Vec<String>,
    /// The argon2id PHC string of the password; `None` for a user who signs in only through
    /// single sign-on.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    /// The base32 secret of the user's second factor (TOTP), once enrolled.
    #[serde(skip_serializing)]
    pub totp_secret: Option<String>,
    /// The SHA-256 hashes (hex) of the user's unused recovery codes.
    #[serde(skip_serializing)]
    pub recovery_codes: Vec<String>,
    /// When the user was added.
    pub created_at: Time,
    /// When the user's role, password or second factor last changed.
    pub updated_at: Time,
}

/// The password hash and second-factor secret are left out: a user printed in a log or an
/// error message never carries them.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("customers", &self.customers)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "…"))
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| "…"))
            .field("recovery_codes", &self.recovery_codes.len())
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A user to add ([`Store::add_user`]).
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The sign-in name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// For a viewer, the customers it may see (at least one, each existing); empty otherwise.
    pub customers: Vec<String>,
    /// The argon2id PHC string of the password (`None`: single sign-on only).
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("customers", &self.customers)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "…"))
            .finish()
    }
}

/// A signed-in session with its user, as [`Store::session`] finds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose session it is (read afresh at each look-up: a role change applies at once).
    pub user: User,
    /// The token every state-changing request of this session must carry.
    pub csrf_token: String,
    /// When the user signed in.
    pub created_at: Time,
    /// The last request of the session (before this look-up).
    pub last_seen_at: Time,
    /// When the session ends whatever its use (absolute expiry).
    pub expires_at: Time,
    /// The user has given its password but not yet its second factor: the session may only
    /// give it (or log out).
    pub pending: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("csrf_token", &"…")
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .field("pending", &self.pending)
            .finish()
    }
}

/// One entry of the audit log: who did what, to what, when and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// The entry's id (increasing; ignored by [`Store::record_audit`]).
    pub id: i64,
    /// When.
    pub at: Time,
    /// Who: a user name, `command line`, or, for a failed sign-in, the name typed.
    pub actor: String,
    /// What, as a word: `login`, `login-failed`, `logout`, `checklist`, `user-add`, …
    pub action: String,
    /// What it was done to (a user, a domain and checklist key, …), or empty.
    pub target: String,
    /// More about it (the new state, the role given, why a sign-in failed), or empty.
    pub detail: String,
    /// The client's address, or empty (the command line).
    pub address: String,
}

/// Recent failed sign-ins under one throttle key ([`Store::record_login_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LoginFailures {
    /// Failures in a row (since the last success or the last quiet period).
    pub failures: i64,
    /// When the last one happened.
    pub last_at: Time,
}

/// A portal user's token for the JSON API (`/api/v1/`): only its SHA-256 is stored, so the
/// token itself is shown once, when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Its id (to revoke it).
    pub id: i64,
    /// The user it acts as.
    pub user: String,
    /// What it is for, as its maker said.
    pub label: String,
    /// When it was made.
    pub created_at: Time,
    /// When it was last used.
    pub last_used_at: Option<Time>,
}
