//! The store's one error type.

use std::path::{Path, PathBuf};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist (`what` says which: `customer "Acme"`, `run 7`).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The write conflicts with the stored state (duplicate name, finished run).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A distributed run's chunk is no longer held by this lease (it expired and another
    /// worker claimed the chunk): nothing was written.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// An argument is invalid (empty name, bad URL, unknown phase).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database failed (connection, I/O, SQL).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Stored data cannot be read back (e.g. a raw report whose compressed form is damaged).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Applying the migrations failed (e.g. the database is newer than this program).
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A store opened with [`OpenMode::MustExist`](crate::OpenMode::MustExist) does not exist:
    /// there is no SQLite file at `path` (and, when `missing_dir` is set, not even the directory
    /// meant to hold it). Nothing was created.
    #[error("no store at {}{}", path.display(), missing_dir_text(missing_dir.as_deref()))]
    NoStore {
        /// The SQLite file looked for.
        path: PathBuf,
        /// Its parent directory, when that does not exist either.
        missing_dir: Option<PathBuf>,
    },
    /// A new SQLite file was to be created
    /// ([`OpenMode::CreateIfMissing`](crate::OpenMode::CreateIfMissing)) in a directory that does
    /// not exist; directories are not created for it, so a mistyped path makes nothing.
    #[error("cannot create a store at {}: directory {} does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The SQLite file to create.
        path: PathBuf,
        /// The missing directory.
        dir: PathBuf,
    },
    /// The PostgreSQL server could not be reached or refused the connection (wrong host or
    /// port, server down, authentication failed, no such database).
    #[error("cannot connect to PostgreSQL at {server}: {reason}")]
    Unreachable {
        /// `HOST:PORT/DATABASE` (no user, no password).
        server: String,
        /// The cause, as the connection attempt reported it.
        reason: String,
    },
}

fn missing_dir_text(dir: Option<&Path>) -> String {
    dir.map(|d| format!(" (directory {} does not exist)", d.display()))
        .unwrap_or_default()
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }
}
