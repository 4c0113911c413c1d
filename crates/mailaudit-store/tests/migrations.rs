//! Migrations: from an empty database, from a database at each earlier schema version holding
//! data (tests/fixtures/vNNNN.sql, loaded after migrating up to that version), and a database
//! newer than this program refused without damage.

use std::path::PathBuf;

use mailaudit_store::{
    AggregateRow, Ingested, ItemState, NewReport, Role, RunStatus, Scope, StoreError,
};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::db::{Kind, TestDb};

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl Pool {
    pub(crate) async fn connect(db: &TestDb) -> Pool {
        match db.kind {
            Kind::Sqlite => {
                let path = db.url.strip_prefix("sqlite://").unwrap();
                std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                Pool::Sqlite(SqlitePool::connect_with(opts).await.unwrap())
            }
            Kind::Postgres => Pool::Pg(PgPool::connect(&db.url).await.unwrap()),
        }
    }

    pub(crate) async fn migrate(&self, m: &Migrator) {
        match self {
            Pool::Sqlite(p) => m.run(p).await.unwrap(),
            Pool::Pg(p) => m.run(p).await.unwrap(),
        }
    }

    pub(crate) async fn exec(&self, sql: &str) {
        match self {
            Pool::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Pool::Pg(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }

    pub(crate) async fn count(&self, table: &str) -> i64 {
        let q = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Pool::Sqlite(p) => sqlx::query_scalar(&q).fetch_one(p).await,
            Pool::Pg(p) => sqlx::query_scalar(&q).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{e}: {q}"))
    }

    pub(crate) async fn applied(&self) -> Vec<i64> {
        let q = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        match self {
            Pool::Sqlite(p) => sqlx::query_scalar(q).fetch_all(p).await,
            Pool::Pg(p) => sqlx::query_scalar(q).fetch_all(p).await,
        }
        .unwrap()
    }

    pub(crate) async fn close(self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Pg(p) => p.close().await,
        }
    }
}

/// `(version, file)` of each migration of the back end, in order.
fn migration_files(db: &TestDb) -> Vec<(i64, PathBuf)> {
    let mut v: Vec<(i64, PathBuf)> = std::fs::read_dir(db.migrations_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let version = name.split('_').next().unwrap().parse().unwrap();
            (version, p)
        })
        .collect();
    v.sort();
    v
}

/// The tables a fixture writes to (its `INSERT INTO name` statements), each once.
fn fixture_tables(sql: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for rest in sql.split("INSERT INTO ").skip(1) {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !v.contains(&name) {
            v.push(name);
        }
    }
    v
}

pub(crate) async fn from_empty(kind: Kind) {
    let db = TestDb::new(kind).await;
    let all: Vec<i64> = migration_files(&db).iter().map(|(v, _)| *v).collect();
    assert_eq!(all.first(), Some(&1));
    assert!((2..=9).all(|v| all.contains(&v)), "{all:?}");
    let s = db.open().await;
    s.add_customer("Kept", "", "").await.unwrap();
    // Version 2's table is there and usable from the start.
    s.record_tenant_import(
        Some("Kept"),
        "kept.onmicrosoft.com",
        1,
        "kept.json",
        &serde_json::json!({}),
        &serde_json::json!([]),
    )
    .await
    .unwrap();
    // Version 3's tables too.
    let ingested = s.ingest_report(&fixture_report("kept"), 2).await.unwrap();
    assert!(matches!(ingested, Ingested::New(_)));
    // Version 4's table too.
    s.advance_mailbox_cursor(KEPT_MAILBOX, 7, 3, 4)
        .await
        .unwrap();
    // Version 8's tables too.
    s.add_user(
        &mailaudit_store::NewUser {
            name: "kept".into(),
            role: Role::Admin,
            customers: Vec::new(),
            password_hash: None,
        },
        5,
    )
    .await
    .unwrap();
    s.close().await;
    let pool = Pool::connect(&db).await;
    assert_eq!(pool.applied().await, all);
    pool.close().await;
    // Reopening applies nothing again and keeps the data.
    let s = db.open().await;
    assert_eq!(s.customers().await.unwrap().len(), 1);
    assert_eq!(
        s.latest_tenant_imports(Some("Kept")).await.unwrap()[0].source,
        "kept.json"
    );
    assert_eq!(s.reports(None, 10).await.unwrap()[0].id, ingested.id());
    assert_eq!(s.report_raw(ingested.id()).await.unwrap(), b"kept\0raw");
    let cursor = s.mailbox_cursor(KEPT_MAILBOX).await.unwrap().unwrap();
    assert_eq!((cursor.uid_validity, cursor.last_uid), (7, 3));
    assert_eq!(s.user("kept").await.unwrap().role, Role::Admin);
    s.close().await;
    let pool = Pool::connect(&db).await;
    assert_eq!(pool.applied().await, all);
    pool.close().await;
}

pub(crate) async fn from_each_previous_version(kind: Kind) {
    let files = migration_files(&TestDb::new(kind).await);
    let all: Vec<i64> = files.iter().map(|(v, _)| *v).collect();
    for (i, (version, _)) in files.iter().enumerate() {
        let db = TestDb::new(kind).await;
        // A migrator holding the migrations up to `version` only.
        let dir = tempfile::tempdir().unwrap();
        for (_, f) in &files[..=i] {
            std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        let partial = Migrator::new(dir.path()).await.unwrap();
        let pool = Pool::connect(&db).await;
        pool.migrate(&partial).await;
        assert_eq!(pool.applied().await, all[..=i]);
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/v{version:04}.sql"));
        let sql = std::fs::read_to_string(&fixture).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (each schema version needs a data fixture)",
                fixture.display()
            )
        });
        pool.exec(&sql).await;
        let tables = fixture_tables(&sql);
        let mut counts = Vec::new();
        for t in &tables {
            counts.push(pool.count(t).await);
        }
        pool.close().await;

        let s = db.open().await;
        // Every row written at the old version is still there, before anything new is written.
        let pool = Pool::connect(&db).await;
        assert_eq!(pool.applied().await, all, "after upgrading from {version}");
        for (t, n) in tables.iter().zip(&counts) {
            assert_eq!(
                pool.count(t).await,
                *n,
                "{t} after upgrading from {version}"
            );
        }
        pool.close().await;
        check_fixture(&*s, version).await;
        s.close().await;
    }
}

/// The fixture's data, read through the API, and new writes on top of it.
async fn check_fixture(s: &dyn mailaudit_store::Store, version: &i64) {
    let ctx = format!("fixture v{version}");
    let c = s.customer("Fixture Co").await.expect(&ctx);
    assert_eq!(
        (c.contacts.as_str(), c.notes.as_str(), c.created_at),
        ("ops@fixture.example", "from v1", 1_700_000_000)
    );
    let d = s.domain("fixture.example").await.expect(&ctx);
    assert_eq!(d.customer.as_deref(), Some("Fixture Co"));
    assert_eq!(d.key_people.len(), 1);
    assert_eq!(d.key_people[0].email, "boss@fixture.example");
    assert_eq!(d.tenant.as_deref(), Some("fixture"));
    let latest = s.latest_result("fixture.example").await.unwrap().unwrap();
    assert_eq!((latest.score, latest.audited_at), (Some(72), 1_700_000_150));
    assert_eq!(latest.report["findings"][0]["id"], "SPF-SOFTFAIL");
    assert_eq!(
        s.domains_with_finding("SPF-SOFTFAIL").await.unwrap(),
        ["fixture.example"]
    );
    // The fleet pages' facts of the newest result (version 9; read from the results of
    // earlier versions when the store is first opened).
    let fleet = s
        .fleet_page(&mailaudit_store::FleetQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fleet.lines.len(), 1, "{ctx}");
    let line = &fleet.lines[0];
    assert_eq!(
        (line.name.as_str(), line.score, line.audited_at, line.counts),
        (
            "fixture.example",
            Some(72),
            Some(1_700_000_150),
            [0, 1, 0, 0, 0]
        ),
        "{ctx}"
    );
    assert_eq!((line.checklist_done, line.checklist_total), (1, 1), "{ctx}");
    // API tokens (version 9): the fixture's from v9 on, and new ones on top.
    if *version >= 9 {
        let tokens = s.api_tokens("fixture-admin").await.unwrap();
        assert_eq!(tokens.len(), 1, "{ctx}");
        assert_eq!(tokens[0].label, "fixture PSA");
        let u = s
            .api_token_user("fixture-api-token-0001", 1_700_300_100)
            .await
            .unwrap()
            .expect("the fixture's token");
        assert_eq!(u.name, "fixture-admin");
    }
    if *version >= 8 {
        s.create_api_token(
            "fixture-admin",
            "later",
            "a-later-api-token-0002",
            1_700_400_000,
        )
        .await
        .unwrap();
        assert!(
            s.api_token_user("a-later-api-token-0002", 1_700_400_001)
                .await
                .unwrap()
                .is_some()
        );
    }
    let runs = s.runs(10).await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| (r.status, r.domains))
            .collect::<Vec<_>>(),
        [(RunStatus::Running, 0), (RunStatus::Complete, 1)]
    );
    let list = s.checklist("fixture.example").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].state, list[0].by.as_deref()),
        (ItemState::Done, Some("alice"))
    );
    assert_eq!(
        s.dmarc_rollout("fixture.example")
            .await
            .unwrap()
            .unwrap()
            .phase,
        "quarantine"
    );
    let sched = s.schedules().await.unwrap();
    assert_eq!(sched[0].scope, Scope::Customer("Fixture Co".into()));
    let due = s.due_alerts(1_700_000_600).await.unwrap();
    assert_eq!(
        (due.len(), due[0].attempts, due[0].last_error.as_deref()),
        (1, 1, Some("HTTP 502"))
    );
    // New rows get fresh ids on top of the old ones.
    let c2 = s.add_customer("After upgrade", "", "").await.unwrap();
    assert_ne!(c2.id, c.id);
    let run = s.begin_run("cli", 1_800_000_000).await.unwrap();
    assert!(runs.iter().all(|r| r.id != run));
    s.record_result(
        run,
        "fixture.example",
        1_800_000_001,
        Some(99),
        &serde_json::json!({"score": 99}),
    )
    .await
    .unwrap();
    s.finish_run(run, RunStatus::Complete, 1_800_000_002)
        .await
        .unwrap();
    let history = s.history("fixture.example", 10).await.unwrap();
    assert_eq!(history.len(), 2);
    // The new result's report comes from its body, the old one's from its row.
    assert_eq!(history[0].report, serde_json::json!({"score": 99}));
    assert_eq!(history[1].report["findings"][0]["id"], "SPF-SOFTFAIL");
    // Pruning reaches the old row: its summary keeps the findings; the latest stays whole.
    let pruned = s.prune_results(1_800_000_000).await.unwrap();
    assert_eq!(pruned.results, 1, "{ctx}");
    let history = s.history("fixture.example", 10).await.unwrap();
    assert!(!history[0].summary && history[1].summary, "{ctx}");
    assert_eq!(history[0].report, serde_json::json!({"score": 99}));
    assert_eq!(history[1].report["findings"][0]["id"], "SPF-SOFTFAIL");
    assert_eq!(history[1].report["summary"], true);
    let a = s
        .enqueue_alert("fixture.example", &serde_json::json!({}), 1)
        .await
        .unwrap();
    assert_ne!(a, due[0].id);

    // Tenant imports (version 2): the fixture's import from v2 on, and new imports on top.
    let org = "fixture.onmicrosoft.com";
    let before = s.tenant_imports(org, 10).await.unwrap();
    if *version >= 2 {
        assert_eq!(before.len(), 1, "{ctx}");
        let t = &before[0];
        assert_eq!(t.customer.as_deref(), Some("Fixture Co"));
        assert_eq!(
            (t.imported_at, t.source.as_str()),
            (1_700_000_800, "fixture-tenant.json")
        );
        assert_eq!(t.config["transportConfig"]["RejectDirectSend"], false);
        assert_eq!(t.findings[0]["id"], "EXO-DIRECT-SEND");
    } else {
        assert!(before.is_empty(), "{ctx}");
    }
    let new = s
        .record_tenant_import(
            Some("Fixture Co"),
            org,
            1_800_000_003,
            "after-upgrade.json",
            &serde_json::json!({"organization": org}),
            &serde_json::json!([]),
        )
        .await
        .unwrap();
    assert!(before.iter().all(|t| t.id != new));
    let after = s.tenant_imports(org, 10).await.unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[0].id, new);
    let latest = s.latest_tenant_imports(Some("Fixture Co")).await.unwrap();
    assert_eq!(
        latest.iter().map(|t| t.id).collect::<Vec<_>>(),
        [new],
        "{ctx}"
    );

    // Reports (version 3): the fixture's report from v3 on, and new reports on top.
    let before = s.reports(Some("fixture.example"), 10).await.unwrap();
    let rows = s
        .aggregate_rows("fixture.example", 1_700_000_000, 1_700_100_000)
        .await
        .unwrap();
    if *version >= 3 {
        assert_eq!(before.len(), 1, "{ctx}");
        let r = &before[0];
        assert_eq!(
            (r.kind.as_str(), r.reporter.as_str(), r.report_id.as_str()),
            ("aggregate", "google.com", "fixture-report-1")
        );
        assert_eq!(
            (r.begin, r.end, r.ingested_at),
            (1_700_006_400, 1_700_092_799, 1_700_100_000)
        );
        assert_eq!(r.source, "fixture-report.xml");
        assert_eq!(r.problems[0]["problem"], "empty org email");
        assert_eq!(s.report_raw(r.id).await.unwrap(), b"raw fixture report");
        assert_eq!(
            rows.iter()
                .map(|(b, x)| (*b, x.source_ip.as_str(), x.count))
                .collect::<Vec<_>>(),
            [
                (1_700_006_400, "192.0.2.1", 12),
                (1_700_006_400, "2001:db8::1", 3)
            ],
            "{ctx}"
        );
        assert_eq!(rows[0].1.envelope_from, "bounce.fixture.example");
        // The fixture's report again: a duplicate.
        let mut again = fixture_report("again");
        again.report_id = "fixture-report-1".into();
        again.begin = 1_700_006_400;
        again.end = 1_700_092_799;
        assert_eq!(
            s.ingest_report(&again, 1).await.unwrap(),
            Ingested::Duplicate(r.id)
        );
    } else {
        assert!(before.is_empty() && rows.is_empty(), "{ctx}");
    }
    let new = s
        .ingest_report(&fixture_report("after-upgrade"), 1_800_000_004)
        .await
        .unwrap();
    assert!(matches!(new, Ingested::New(_)), "{ctx}");
    assert!(before.iter().all(|r| r.id != new.id()));
    let after = s.reports(Some("fixture.example"), 10).await.unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[0].id, new.id());

    // Mailbox cursors (version 4): the fixture's cursor from v4 on; it moves on from there.
    let mailbox = "imaps://dmarc%40fixture.example@imap.fixture.example:993/INBOX";
    let before = s.mailbox_cursor(mailbox).await.unwrap();
    if *version >= 4 {
        let c = before.expect(&ctx);
        assert_eq!(
            (c.uid_validity, c.last_uid, c.updated_at),
            (1_700_000_000, 42, 1_700_100_100)
        );
        // Same UIDVALIDITY: only forward.
        let c = s
            .advance_mailbox_cursor(mailbox, 1_700_000_000, 41, 1_800_000_005)
            .await
            .unwrap();
        assert_eq!(c.last_uid, 42, "{ctx}");
    } else {
        assert!(before.is_none(), "{ctx}");
    }
    let c = s
        .advance_mailbox_cursor(mailbox, 1_700_000_000, 50, 1_800_000_006)
        .await
        .unwrap();
    assert_eq!((c.last_uid, c.updated_at), (50, 1_800_000_006), "{ctx}");

    // Portal accounts (version 8): the fixture's users, session, audit log and throttle
    // counter from v8 on; new ones on top.
    let users = s.users().await.unwrap();
    let token = "fixture-session-token-0001";
    if *version >= 8 {
        assert_eq!(
            users
                .iter()
                .map(|u| (u.name.as_str(), u.role, u.customers.clone()))
                .collect::<Vec<_>>(),
            [
                ("fixture-admin", Role::Admin, vec![]),
                (
                    "fixture-viewer",
                    Role::Viewer,
                    vec!["Fixture Co".to_string()]
                ),
            ],
            "{ctx}"
        );
        assert!(
            users[0]
                .password_hash
                .as_deref()
                .unwrap()
                .starts_with("$argon2id$")
        );
        assert_eq!(users[1].totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            users[1].recovery_codes,
            ["recovery-hash-1", "recovery-hash-2"]
        );
        assert_eq!(
            s.setting("require_second_factor").await.unwrap().as_deref(),
            Some("yes")
        );
        // (Its last use was long ago: a long idle limit keeps it.)
        let session = s
            .session(token, 1_800_000_007, 1_000_000_000)
            .await
            .unwrap();
        let session = session.expect(&ctx);
        assert_eq!(
            (
                session.user.name.as_str(),
                session.csrf_token.as_str(),
                session.pending
            ),
            ("fixture-viewer", "fixture-csrf-token-0001", false)
        );
        let log = s.audit_log(10, None).await.unwrap();
        assert_eq!(
            log.iter()
                .map(|e| (e.actor.as_str(), e.action.as_str(), e.address.as_str()))
                .collect::<Vec<_>>(),
            [
                ("fixture-admin", "user-role", "192.0.2.8"),
                ("fixture-viewer", "login", "192.0.2.7")
            ],
            "{ctx}"
        );
        let f = s.login_failures("user:fixture-admin").await.unwrap();
        assert_eq!(f.map(|f| (f.failures, f.last_at)), Some((2, 1_700_200_300)));
    } else {
        assert!(users.is_empty(), "{ctx}");
        assert!(
            s.session(token, 1_800_000_007, 3600)
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.audit_log(10, None).await.unwrap().is_empty());
    }
    let added = s
        .add_user(
            &mailaudit_store::NewUser {
                name: "after-upgrade".into(),
                role: Role::Viewer,
                customers: vec!["Fixture Co".into()],
                password_hash: None,
            },
            1_800_000_008,
        )
        .await
        .unwrap();
    assert!(users.iter().all(|u| u.id != added.id), "{ctx}");
    let before = s.audit_log(10, None).await.unwrap();
    let id = s
        .record_audit(&mailaudit_store::AuditEntry {
            id: 0,
            at: 1_800_000_009,
            actor: "command line".into(),
            action: "user-add".into(),
            target: "after-upgrade".into(),
            detail: String::new(),
            address: String::new(),
        })
        .await
        .unwrap();
    assert!(before.iter().all(|e| e.id < id), "{ctx}");
    s.create_session(
        "after-upgrade-token-0001",
        "after-upgrade",
        "csrf-after-upgrade-01",
        1_800_000_010,
        1_900_000_000,
        false,
    )
    .await
    .unwrap();
    assert!(
        s.session("after-upgrade-token-0001", 1_800_000_011, 60)
            .await
            .unwrap()
            .is_some()
    );
}

const KEPT_MAILBOX: &str = "imaps://dmarc@imap.kept.example:993/INBOX";

/// A small aggregate report whose key and hash derive from `tag`.
fn fixture_report(tag: &str) -> NewReport {
    let hash: String = format!("{tag:0>64}")
        .bytes()
        .map(|b| char::from(b"0123456789abcdef"[usize::from(b % 16)]))
        .collect();
    NewReport {
        kind: mailaudit_store::ReportKind::Aggregate,
        reporter: "google.com".into(),
        report_id: tag.into(),
        policy_domain: "fixture.example".into(),
        begin: 1_800_000_000,
        end: 1_800_086_399,
        content_hash: hash,
        source: format!("{tag}.xml"),
        raw: format!("{tag}\0raw").into_bytes().into(),
        parsed: serde_json::value::to_raw_value(&serde_json::json!({"report_id": tag})).unwrap(),
        problems: serde_json::json!([]),
        rows: vec![AggregateRow {
            source_ip: "192.0.2.9".into(),
            count: 5,
            header_from: "fixture.example".into(),
            ..AggregateRow::default()
        }],
    }
}

pub(crate) async fn newer_database_is_refused(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Kept", "", "").await.unwrap();
    s.close().await;
    let pool = Pool::connect(&db).await;
    pool.exec(match kind {
        Kind::Sqlite => {
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from the future', TRUE, X'00', 0)"
        }
        Kind::Postgres => {
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from the future', TRUE, '\\x00'::bytea, 0)"
        }
    })
    .await;
    pool.close().await;
    let err = mailaudit_store::open(Some(&db.url))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
    // Nothing was damaged: once the future row is gone, the data is there.
    let pool = Pool::connect(&db).await;
    pool.exec("DELETE FROM _sqlx_migrations WHERE version = 99999")
        .await;
    pool.close().await;
    let s = db.open().await;
    assert_eq!(s.customers().await.unwrap().len(), 1);
    s.close().await;
}

pub(crate) async fn concurrent_first_opens(kind: Kind) {
    // A fresh install where the scheduler and a cron job start at the same instant: every opener
    // either migrates or sees the migration done, never fails half-way.
    for round in 0..5 {
        let db = TestDb::new(kind).await;
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let url = db.url.clone();
            tasks.push(tokio::spawn(async move {
                let s = mailaudit_store::open(Some(&url)).await?;
                s.close().await;
                Ok::<_, StoreError>(())
            }));
        }
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                panic!("round {round}: {e}");
            }
        }
        let pool = Pool::connect(&db).await;
        let all: Vec<i64> = migration_files(&db).iter().map(|(v, _)| *v).collect();
        assert_eq!(pool.applied().await, all);
        pool.close().await;
    }
}
