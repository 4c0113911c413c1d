//! A test database of either back end: a temporary SQLite file, or a fresh database on the
//! binary's PostgreSQL cluster.

use mailaudit_store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

pub(crate) struct TestDb {
    pub(crate) kind: Kind,
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub(crate) async fn new(kind: Kind) -> TestDb {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                // A nested path: open() creates the missing directories.
                let path = dir.path().join("data/mailaudit/store.db");
                TestDb {
                    kind,
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                }
            }
            Kind::Postgres => TestDb {
                kind,
                url: mailaudit_lab::postgres::fresh_database(),
                _dir: None,
            },
        }
    }

    pub(crate) async fn open(&self) -> Box<dyn Store> {
        mailaudit_store::open(Some(&self.url))
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.url))
    }

    /// The migrations folder of this back end.
    pub(crate) fn migrations_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(match self.kind {
                Kind::Sqlite => "sqlite",
                Kind::Postgres => "postgres",
            })
    }
}
