//! SQLite specifics: the file's place and mode, WAL, the in-memory URL.

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
