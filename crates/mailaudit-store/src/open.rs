//! Where the store lives (`--db` URLs) and opening it there.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Store;
use crate::error::StoreError;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;

/// Where the store lives, parsed from a `--db` URL. Its `Debug` and `Display` hide a PostgreSQL
/// password.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (`sqlite::memory:`), gone when closed.
    SqliteMemory,
    /// A PostgreSQL URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Location {
    /// Parses a URL: None → [`default_sqlite_path`]; `sqlite://PATH` (also `sqlite:PATH`),
    /// `sqlite::memory:`, `postgres://…`, `postgresql://…`.
    pub fn parse(url: Option<&str>) -> Result<Location, StoreError> {
        let Some(url) = url else {
            return Ok(Location::SqliteFile(default_sqlite_path()));
        };
        let url = url.trim();
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Location::SqliteMemory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(Location::SqliteFile(PathBuf::from(p))),
            Some(_) => Err(StoreError::Invalid(
                "sqlite URL without a path (use sqlite://PATH)".into(),
            )),
            None => Err(StoreError::Invalid(format!(
                "unsupported database URL {:?}: use sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB",
                redact_url(url)
            ))),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::SqliteFile(p) => f.debug_tuple("SqliteFile").field(p).finish(),
            Location::SqliteMemory => f.write_str("SqliteMemory"),
            Location::Postgres(u) => f.debug_tuple("Postgres").field(&redact_url(u)).finish(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::SqliteFile(p) => write!(f, "sqlite://{}", p.display()),
            Location::SqliteMemory => f.write_str("sqlite::memory:"),
            Location::Postgres(u) => f.write_str(&redact_url(u)),
        }
    }
}

/// Replaces the password of a URL's `user:password@` part, and any `password=` query parameter,
/// with `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

/// The default SQLite file: `$MAILAUDIT_DB`, else `$XDG_DATA_HOME/mailaudit/mailaudit.db`, else
/// `~/.local/share/mailaudit/mailaudit.db` (`./mailaudit.db` when there is no home directory).
pub fn default_sqlite_path() -> PathBuf {
    default_sqlite_path_from(|k| std::env::var_os(k))
}

fn default_sqlite_path_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let non_empty = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(p) = non_empty("MAILAUDIT_DB") {
        return PathBuf::from(p);
    }
    // XDG Base Directory: "If an implementation encounters a relative path in any of these
    // variables it should consider the path invalid and ignore it."
    if let Some(p) = non_empty("XDG_DATA_HOME").map(PathBuf::from)
        && p.is_absolute()
    {
        return p.join("mailaudit").join("mailaudit.db");
    }
    match non_empty("HOME") {
        Some(home) => Path::new(&home)
            .join(".local/share")
            .join("mailaudit")
            .join("mailaudit.db"),
        None => PathBuf::from("mailaudit.db"),
    }
}

/// Opens the store at `url` (see [`Location::parse`]), creating the SQLite file (mode 0600) and
/// its directories as needed ([`OpenMode::CreateWithParents`]), and applies pending migrations.
pub async fn open(url: Option<&str>) -> Result<Box<dyn Store>, StoreError> {
    open_location(&Location::parse(url)?).await
}

/// Opens the store at a parsed location, as [`open`] does.
pub async fn open_location(location: &Location) -> Result<Box<dyn Store>, StoreError> {
    Ok(open_with(location, OpenMode::CreateWithParents)
        .await?
        .store)
}

/// What opening a store may create when its SQLite file does not exist. (An in-memory database
/// is always new; a PostgreSQL database is never created, only connected to.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The store must exist: a missing file is [`StoreError::NoStore`] and nothing is created
    /// (commands that only read, given an explicit path that may be mistyped).
    MustExist,
    /// A missing file is created (mode 0600) in its directory, which must exist: a missing
    /// directory is [`StoreError::NoDirectory`] (commands that write, given an explicit path).
    CreateIfMissing,
    /// A missing file is created with its missing parent directories (mode 0700): the default
    /// store in the user's data directory.
    CreateWithParents,
}

/// A store just opened by [`open_with`].
pub struct Opened {
    /// The store, migrated.
    pub store: Box<dyn Store>,
    /// The SQLite file that opening it created (`None`: the store existed, or is in memory or
    /// in PostgreSQL).
    pub created: Option<PathBuf>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Opens the store at `location`, creating a missing SQLite file only as `mode` allows, applies
/// pending migrations, and says whether the file was created.
pub async fn open_with(location: &Location, mode: OpenMode) -> Result<Opened, StoreError> {
    Ok(match location {
        Location::SqliteFile(path) => {
            let (store, created) = SqliteStore::open_file_with(path, mode).await?;
            Opened {
                store: Box::new(store),
                created: created.then(|| path.clone()),
            }
        }
        Location::SqliteMemory => Opened {
            store: Box::new(SqliteStore::open_memory().await?),
            created: None,
        },
        Location::Postgres(url) => Opened {
            store: Box::new(PgStore::connect(url).await?),
            created: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        for (url, want) in [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?password=x&a=b",
                "postgres://h/db?password=***&a=b",
            ),
            ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
            ("postgres://u:p/w@h/db", "postgres://u:p/w@h/db"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
        let loc = Location::parse(Some("postgres://me:hunter2@db.example/m")).unwrap();
        assert!(!format!("{loc:?}").contains("hunter2"));
        assert!(!format!("{loc}").contains("hunter2"));
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse(Some("sqlite:///var/x.db")).unwrap(),
            Location::SqliteFile("/var/x.db".into())
        );
        assert_eq!(
            Location::parse(Some("sqlite://rel/x.db")).unwrap(),
            Location::SqliteFile("rel/x.db".into())
        );
        assert_eq!(
            Location::parse(Some("sqlite::memory:")).unwrap(),
            Location::SqliteMemory
        );
        assert!(matches!(
            Location::parse(Some("mysql://x")),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            Location::parse(Some("sqlite://")),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn default_path() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        for (vars, want) in [
            (
                &[("MAILAUDIT_DB", "/x/m.db"), ("HOME", "/h")][..],
                "/x/m.db",
            ),
            (
                &[("XDG_DATA_HOME", "/d"), ("HOME", "/h")][..],
                "/d/mailaudit/mailaudit.db",
            ),
            (
                &[("XDG_DATA_HOME", "rel"), ("HOME", "/h")][..],
                "/h/.local/share/mailaudit/mailaudit.db",
            ),
            (
                &[("MAILAUDIT_DB", ""), ("HOME", "/h")][..],
                "/h/.local/share/mailaudit/mailaudit.db",
            ),
            (&[][..], "mailaudit.db"),
        ] {
            assert_eq!(default_sqlite_path_from(env(vars)), PathBuf::from(want));
        }
    }
}
