//! Which commands create the store (README "Inventory, history and the remediation guide"): a
//! SQLite file named by `--db` or MAILAUDIT_DB that does not exist is created only by commands
//! that write, which say so; reading commands fail with exit 2 and create nothing, not even a
//! directory; the default store is created on first use; PostgreSQL is never created, and a
//! server that does not answer is reported at once.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Lab, Output, run};

/// A temporary directory and a store path in a directory of it that does not exist (a typo).
struct Typo {
    dir: tempfile::TempDir,
}

impl Typo {
    fn new() -> Typo {
        Typo {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// `<tmp>/NAME`, a file in the existing directory.
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `<tmp>/mistyped/m.db`: neither the file nor its directory exists.
    fn deep(&self) -> PathBuf {
        self.dir.path().join("mistyped").join("m.db")
    }

    /// Nothing but what the test made is in the directory.
    fn assert_listing(&self, expected: &[&str]) {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("list the directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, expected, "files in {}", self.dir.path().display());
    }
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn with_db(path: &Path, args: &[&str]) -> Output {
    let url = url(path);
    let mut all = vec!["--db", url.as_str()];
    all.extend_from_slice(args);
    run(&all)
}

/// Reading commands given a store that does not exist: exit 2, a message naming the path and
/// saying what to check, and nothing created: neither the file nor a missing directory.
#[test]
fn reading_commands_refuse_a_missing_store_and_create_nothing() {
    let typo = Typo::new();
    let lab = Lab::sample_plus("");
    let reading: &[&[&str]] = &[
        &["domain", "list"],
        &["customer", "list"],
        &["customer", "show", "Acme"],
        &["domain", "remove", "contoso.com"],
        &["domain", "add", "contoso.com", "--customer", "Acme"],
        &["history", "contoso.com"],
        &["diff"],
        &["checklist", "contoso.com"],
        &["checklist", "contoso.com", "--done", "spf-harden"],
        &["guide", "--customer", "Acme"],
        &["schedule", "list"],
        &["schedule", "run"],
        &["schedule", "set", "--customer", "Acme", "--every", "1d"],
        &["reports", "list"],
        &["reports", "summary", "contoso.com"],
        &["reports", "raw", "1"],
        &["audit", "--nameserver", lab.addr()],
        &["serve", "--listen", "127.0.0.1:0"],
    ];
    for args in reading {
        let missing = typo.file("m.db");
        let out = with_db(&missing, args);
        out.assert_code(2);
        let expected = format!(
            "mailaudit: error: no store at {} (check --db); commands that write create it",
            missing.display()
        );
        assert!(
            out.stderr.lines().any(|l| l == expected),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("created a new store"), "{args:?}");

        let deep = typo.deep();
        let out = with_db(&deep, args);
        out.assert_code(2);
        assert!(
            out.stderr.contains(&format!(
                "no store at {}: directory {} does not exist (check --db)",
                deep.display(),
                deep.parent().unwrap().display()
            )),
            "{args:?}: {}",
            out.stderr
        );
        typo.assert_listing(&[]);
    }
}

/// Writing commands create the file, say so on stderr, and work; the next command (reading)
/// finds what they stored and says nothing about creating.
#[test]
fn writing_commands_create_the_store_and_say_so() {
    let typo = Typo::new();
    let db = typo.file("m.db");
    let out = with_db(&db, &["customer", "add", "Acme"]);
    out.assert_code(0);
    assert_eq!(
        out.stderr,
        format!("mailaudit: created a new store at {}\n", db.display())
    );
    assert!(db.is_file());
    let list = with_db(&db, &["customer", "list"]);
    list.assert_code(0);
    assert!(list.stdout.contains("Acme"), "{}", list.stdout);
    assert!(!list.stderr.contains("created"), "{}", list.stderr);
    let again = with_db(&db, &["domain", "add", "contoso.com"]);
    again.assert_code(0);
    assert!(!again.stderr.contains("created"), "{}", again.stderr);

    // Other writing commands, each on a store of its own.
    let lab = Lab::sample_plus("");
    let csv = typo.file("inventory.csv");
    std::fs::write(&csv, "domain,customer\ncontoso-legal.example,Contoso\n").expect("write");
    let csv = csv.to_str().expect("UTF-8 path").to_string();
    let writing: Vec<(&str, Vec<&str>)> = vec![
        ("import.db", vec!["import", &csv]),
        ("domain.db", vec!["domain", "add", "contoso.com"]),
        (
            "schedule.db",
            vec!["schedule", "set", "--fleet", "--every", "1d"],
        ),
        (
            "audit.db",
            vec![
                "audit",
                "--nameserver",
                lab.addr(),
                "--no-policy-fetch",
                "--format",
                "json",
                "contoso-legal.example",
            ],
        ),
    ];
    for (name, args) in &writing {
        let db = typo.file(name);
        let out = with_db(&db, args);
        out.assert_code(0);
        assert!(
            out.stderr.lines().next()
                == Some(&format!(
                    "mailaudit: created a new store at {}",
                    db.display()
                )),
            "{args:?}: {}",
            out.stderr
        );
        assert!(db.is_file(), "{args:?}");
    }
    // The audit was recorded in the store it created.
    let history = with_db(
        &typo.file("audit.db"),
        &["history", "contoso-legal.example"],
    );
    history.assert_code(0);
    assert!(history.stdout.contains("100"), "{}", history.stdout);
}

/// A writing command does not create a missing directory: the path is probably mistyped.
#[test]
fn writing_commands_do_not_create_a_missing_directory() {
    let typo = Typo::new();
    let deep = typo.deep();
    let out = with_db(&deep, &["customer", "add", "Acme"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(&format!(
            "cannot create a store at {}: directory {} does not exist (check --db",
            deep.display(),
            deep.parent().unwrap().display()
        )),
        "{}",
        out.stderr
    );
    typo.assert_listing(&[]);
}

/// MAILAUDIT_DB is an explicit path like --db, and the message names it.
#[test]
fn mailaudit_db_is_explicit_too() {
    let typo = Typo::new();
    let db = typo.file("env.db");
    let run_env = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
            .args(args)
            .env("MAILAUDIT_DB", url(&db))
            .env("XDG_DATA_HOME", typo.file("data"))
            .output()
            .expect("mailaudit runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run_env(&["domain", "list"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no store at {} (check MAILAUDIT_DB); commands that write create it",
            db.display()
        )),
        "{stderr}"
    );
    typo.assert_listing(&[]);
    let (code, stderr) = run_env(&["domain", "add", "contoso.com"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("created a new store at"), "{stderr}");
    let (code, stderr) = run_env(&["domain", "list"]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// The default store (no --db) is created with its directories on first use, once, with a
/// note; a reading command may be the first.
#[test]
fn the_default_store_is_created_on_first_use() {
    let typo = Typo::new();
    let data = typo.file("data");
    let run_default = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
            .args(args)
            .env_remove("MAILAUDIT_DB")
            .env("XDG_DATA_HOME", &data)
            .output()
            .expect("mailaudit runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let store = data.join("mailaudit").join("mailaudit.db");
    let (code, stderr) = run_default(&["domain", "list"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr,
        format!("mailaudit: created a new store at {}\n", store.display())
    );
    assert!(store.is_file());
    let (code, stderr) = run_default(&["domain", "list"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "", "said once");
}

/// `sqlite::memory:` needs nothing on disk, whatever the command.
#[test]
fn memory_store_works_for_every_command() {
    for args in [&["domain", "list"][..], &["customer", "add", "Acme"]] {
        let mut all = vec!["--db", "sqlite::memory:"];
        all.extend_from_slice(args);
        let out = run(&all);
        out.assert_code(0);
        assert!(!out.stderr.contains("created"), "{}", out.stderr);
    }
}

/// A PostgreSQL server that is not there: at once, exit 2, the server and the cause named,
/// the password not shown. "At once": the error is the refused connection, not the pool's
/// timeout after retrying it.
#[test]
fn unreachable_postgres_fails_fast_and_clearly() {
    // A leased port: nothing listens on it, and no other test's socket can take it meanwhile
    // (a port bound and released here could be handed to one).
    let lease = mailaudit_lab::lease_ports(1)
        .expect("a leased port")
        .remove(0);
    let port = lease.port();
    let url = format!("postgres://mailaudit:hunter2@127.0.0.1:{port}/mailaudit");
    let out = run(&["--db", &url, "domain", "list"]);
    out.assert_code(2);
    assert!(!out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}/mailaudit: "
        )) && out.stderr.to_lowercase().contains("refused")
            && out.stderr.contains("(check --db)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}
