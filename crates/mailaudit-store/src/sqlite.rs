//! The embedded SQLite store: one file (mode 0600) in WAL mode, written through `BEGIN IMMEDIATE`
//! transactions with a 30 s busy timeout, so concurrent writers (the scheduler and the portal, or
//! several processes) queue instead of failing or losing updates.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json;

use crate::backend::*;
use crate::{
    Alert, ChecklistItem, ChunkLease, Customer, CustomerLine, DmarcRollout, DomainEntry,
    DomainState, FleetLine, FleetPage, FleetQuery, ItemState, NewDomain, OpenMode, PruneOutcome,
    RUN_SOURCES, ResultWrite, Role, Run, RunProgress, RunStatus, Schedule, Scope, Store,
    StoreError, StoredResult, TenantImport, Time, TrendPoint, User,
};

/// How long a writer waits for another's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// Opens (creating it, its parent directories with mode 0700 and the file with mode 0600 when
    /// missing) the SQLite file at `path` and applies pending migrations.
    pub async fn open_file(path: &Path) -> Result<SqliteStore, StoreError> {
        Ok(Self::open_file_with(path, OpenMode::CreateWithParents)
            .await?
            .0)
    }

    /// Opens the SQLite file at `path`, creating it when missing only as `mode` allows, and
    /// applies pending migrations; also says whether this call created the file.
    pub async fn open_file_with(
        path: &Path,
        mode: OpenMode,
    ) -> Result<(SqliteStore, bool), StoreError> {
        let io = |e| StoreError::Db(sqlx::Error::Io(e));
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let missing_dir = parent.filter(|p| !p.exists()).map(Path::to_path_buf);
        let created = match mode {
            OpenMode::MustExist => {
                if !path.try_exists().map_err(io)? {
                    return Err(StoreError::NoStore {
                        path: path.to_path_buf(),
                        missing_dir,
                    });
                }
                false
            }
            OpenMode::CreateIfMissing => {
                if let Some(dir) = missing_dir {
                    return Err(StoreError::NoDirectory {
                        path: path.to_path_buf(),
                        dir,
                    });
                }
                create_private_file(path, false).map_err(io)?
            }
            OpenMode::CreateWithParents => create_private_file(path, true).map_err(io)?,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // A page cache of 64 MiB per connection (SQLite's default is 2 MiB): the fleet
            // pages read the inventory, the newest results and the checklists' counts of
            // every domain, a few MiB at 10,000 domains.
            .pragma("cache_size", "-65536");
        // sqlx does not lock SQLite migrations: two processes opening a new file at once would
        // both apply version 1, and the first connection's switch to WAL needs an exclusive
        // lock that a concurrent opener can make fail at once with SQLITE_BUSY. An advisory
        // lock held from before the first connection until the migrations are applied
        // serialises openers; the second sees the first's work and applies nothing. The lock is
        // on a separate `<db>.lock` file, never on the database itself: closing any descriptor
        // of the database file drops the process's POSIX locks on it, SQLite's own included,
        // which corrupts the database under concurrent writers (SQLite's "How To Corrupt An
        // SQLite Database File", §2.2).
        let lock = lock_file(&lock_path(path)).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await?;
        let store = Self::migrated(pool).await;
        drop(lock);
        Ok((store?, created))
    }

    /// Opens a private in-memory database (one connection, kept open until [`Store::close`]).
    pub async fn open_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<SqliteStore, StoreError> {
        MIGRATOR.run(&pool).await?;
        let store = SqliteStore { pool };
        store.fill_latest().await?;
        Ok(store)
    }

    /// The underlying pool (tests, maintenance).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// What a claim's inner `SELECT` adds to lock the chunk it picks: nothing: a write transaction holds the database's write lock already.
    const CLAIM_LOCK: &'static str = "";
    /// What a `SELECT` of one row adds to lock it until the transaction ends: nothing (see `CLAIM_LOCK`).
    const ROW_LOCK: &'static str = "";

    /// A write transaction: `BEGIN IMMEDIATE` takes the write lock up front (waiting up to the
    /// busy timeout), so a transaction that reads before it writes can never fail half-way with
    /// `SQLITE_BUSY` because another writer committed in between.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// `VACUUM` rewrites the database through the write-ahead log; the checkpoint that follows
    /// copies it back and truncates the log, so the files shrink.
    async fn vacuum(&self) -> Result<(), sqlx::Error> {
        sqlx::query("VACUUM").execute(&self.pool).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The migration lock file of the database at `path`.
fn lock_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    std::path::PathBuf::from(name)
}

/// Takes an exclusive advisory lock on `path` (created if missing, mode 0600), waiting up to
/// [`BUSY_TIMEOUT`] without blocking the async runtime.
async fn lock_file(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| StoreError::Db(sqlx::Error::Io(e));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{} is locked by another migration", path.display()),
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}

/// Creates the file at `path` (mode 0600) if it does not exist yet, and with `parents` its
/// missing parent directories (mode 0700); an existing file is left as it is. True when this
/// call created the file.
fn create_private_file(path: &Path, parents: bool) -> std::io::Result<bool> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(parent) = path.parent()
        && parents
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);
