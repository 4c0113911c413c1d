//! SQLite specifics: the file's place and mode, WAL, the in-memory URL, what opening may create;
//! and a PostgreSQL server that does not listen.

use std::os::unix::fs::PermissionsExt;

use mailaudit_store::{SqliteStore, Store};

#[tokio::test]
async fn file_is_private_and_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/mailaudit.db");
    let s = SqliteStore::open_file(&path).await.unwrap();
    s.add_customer("Acme", "", "").await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode {mode:o}");
    let parent = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(parent, 0o700, "created directory mode {parent:o}");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    // The WAL file SQLite creates next to it is as private as the database.
    let wal = path.with_file_name("mailaudit.db-wal");
    if wal.exists() {
        assert_eq!(
            std::fs::metadata(&wal).unwrap().permissions().mode() & 0o077,
            0
        );
    }
    s.close().await;
}

#[tokio::test]
async fn memory_database() {
    let s = mailaudit_store::open(Some("sqlite::memory:"))
        .await
        .unwrap();
    s.add_customer("Acme", "", "").await.unwrap();
    // Several calls share the one database.
    for _ in 0..5 {
        assert_eq!(s.customers().await.unwrap().len(), 1);
    }
    s.close().await;
}

#[tokio::test]
async fn bad_urls() {
    for url in ["mysql://x/y", "sqlite://", "postgres://u:hunter2@[::1/db"] {
        let err = mailaudit_store::open(Some(url)).await.err().expect(url);
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

/// `OpenMode`: what opening may create. A store that must exist is never created (nor its
/// directory); a new file is created only in an existing directory unless parents are allowed;
/// `created` says when this call made the file.
#[tokio::test]
async fn open_modes_create_only_what_they_may() {
    use mailaudit_store::{Location, OpenMode, StoreError, open_with};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let location = Location::SqliteFile(path.clone());

    let err = open_with(&location, OpenMode::MustExist).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NoStore { path: p, missing_dir: None } if *p == path),
        "{err:?}"
    );
    assert!(!path.exists(), "nothing created");
    assert!(
        !dir.path().join("m.db.lock").exists(),
        "no lock file either"
    );

    let opened = open_with(&location, OpenMode::CreateIfMissing)
        .await
        .unwrap();
    assert_eq!(opened.created.as_deref(), Some(path.as_path()));
    opened.store.add_customer("Acme", "", "").await.unwrap();
    opened.store.close().await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode {mode:o}");

    // Existing now: every mode opens it, none claims to have created it.
    for mode in [
        OpenMode::MustExist,
        OpenMode::CreateIfMissing,
        OpenMode::CreateWithParents,
    ] {
        let opened = open_with(&location, mode).await.unwrap();
        assert_eq!(opened.created, None, "{mode:?}");
        assert_eq!(opened.store.customers().await.unwrap().len(), 1, "{mode:?}");
        opened.store.close().await;
    }

    // A missing directory: an error naming it, and no directory made, unless parents may be.
    let deep = dir.path().join("typo/m.db");
    let location = Location::SqliteFile(deep.clone());
    let err = open_with(&location, OpenMode::MustExist).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NoStore { missing_dir: Some(d), .. } if *d == dir.path().join("typo")),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = open_with(&location, OpenMode::CreateIfMissing)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NoDirectory { dir: d, .. } if *d == dir.path().join("typo")),
        "{err:?}"
    );
    assert!(!dir.path().join("typo").exists(), "no directory created");
    let opened = open_with(&location, OpenMode::CreateWithParents)
        .await
        .unwrap();
    assert_eq!(opened.created.as_deref(), Some(deep.as_path()));
    opened.store.close().await;

    // In memory: always new, never "created" on disk, whatever the mode.
    let opened = open_with(&Location::SqliteMemory, OpenMode::MustExist)
        .await
        .unwrap();
    assert_eq!(opened.created, None);
    opened.store.close().await;
}

/// A PostgreSQL server that does not listen: an immediate error naming the server and the
/// cause, not a wait for the pool's timeout (whose error would say so: "timed out").
#[tokio::test]
async fn unreachable_postgres_is_reported_at_once() {
    // A leased port: nothing listens on it, and no other test's socket can take it meanwhile
    // (a port bound and released here could be handed to one).
    let lease = mailaudit_lab::lease_ports(1)
        .expect("a leased port")
        .remove(0);
    let port = lease.port();
    let url = format!("postgres://u:hunter2@127.0.0.1:{port}/m");
    let err = mailaudit_store::open(Some(&url))
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(!text.contains("timed out"), "{text}");
    assert!(
        text.starts_with(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}/m: "
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
