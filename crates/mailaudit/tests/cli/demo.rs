//! `mailaudit demo`: the lab, the audit with the relay probe recorded in the demo store, the
//! synthetic reports, the portal, a clean stop on SIGTERM, and the store kept apart from the
//! user's real one.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mailaudit_store::Store;
use serde_json::Value;

use crate::common::{data_home, http_get, run, sigterm_and_wait};

/// A temporary directory and the `sqlite://` URL of a store in it.
fn temp_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("demo-test.db").display());
    (dir, url)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn open(url: &str) -> Box<dyn Store> {
    mailaudit_store::open(Some(url))
        .await
        .expect("the demo store opens")
}

/// The latest stored report of `domain`.
async fn latest(store: &dyn Store, domain: &str) -> Value {
    store
        .latest_result(domain)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("{domain} has a stored result"))
        .report
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn demo_no_serve_records_the_audited_fleet_with_relay_verdicts_and_reports() {
    let (_dir, db) = temp_db();
    let out = run(&["--db", &db, "demo", "--no-serve"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("15 sample domains audited"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("open to Direct Send: 10 ("),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("without DMARC: 2 (fabrikam-dental.example, blue-yonder-airlines.example)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(85 new)"), "{}", out.stdout);

    runtime().block_on(async {
        let store = open(&db).await;
        let domains = store.domains(None).await.expect("domains");
        assert_eq!(domains.len(), 15);
        assert_eq!(store.customers().await.expect("customers").len(), 4);
        let parked: Vec<&str> = domains
            .iter()
            .filter(|d| d.parked)
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(parked, ["blue-yonder-airlines.example"]);

        // The hardened tenant blocks Direct Send, with STARTTLS validated under the lab CA.
        let contoso = latest(store.as_ref(), "contoso-legal.example").await;
        assert_eq!(contoso["relay"]["verdict"], "blocked", "{contoso:#}");
        let reply = contoso["relay"]["reply"].as_str().unwrap_or_default();
        assert!(
            reply.starts_with("550 5.7.68 TenantInboundAttribution"),
            "{reply}"
        );
        let probe = &contoso["relay"]["probes"][0];
        assert_eq!(probe["tls"]["cert_valid"], true, "{probe:#}");
        assert_eq!(probe["data_sent"], false);

        let fabrikam = latest(store.as_ref(), "fabrikam-dental.example").await;
        assert_eq!(fabrikam["relay"]["verdict"], "open");
        let ids: Vec<&str> = fabrikam["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["id"].as_str())
            .collect();
        assert!(ids.contains(&"RELAY-OPEN"), "{ids:?}");
        assert!(ids.contains(&"DMARC-MISSING"), "{ids:?}");

        // Behind the gateway: the gateway refuses the spoof, the tenant's own endpoint (from
        // the inventory) accepts it.
        let relecloud = latest(store.as_ref(), "relecloud-manufacturing.example").await;
        assert_eq!(relecloud["relay"]["verdict"], "open");
        let verdicts: Vec<(&str, &str)> = relecloud["relay"]["probes"]
            .as_array()
            .expect("probes")
            .iter()
            .map(|p| {
                (
                    p["host"].as_str().unwrap_or_default(),
                    p["verdict"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            verdicts.contains(&("eu-smtp-inbound-1.mimecast.com", "blocked")),
            "{verdicts:?}"
        );
        assert!(
            verdicts.contains(&(
                "relecloudmanufacturing-example.mail.protection.outlook.com",
                "open"
            )),
            "{verdicts:?}"
        );
        let trey = latest(store.as_ref(), "trey-research.example").await;
        assert_eq!(trey["relay"]["verdict"], "inconclusive");

        // Every domain has a checklist, as after a real audit.
        for d in &domains {
            assert!(
                !store
                    .checklist(&d.name)
                    .await
                    .expect("checklist")
                    .is_empty(),
                "{} has a checklist",
                d.name
            );
        }

        // The reports: six weeks for two domains, one TLS report.
        for domain in ["tailspin-realty.example", "adatum-clinic.example"] {
            let reports = store.reports(Some(domain), 1000).await.expect("reports");
            assert_eq!(reports.len(), 42, "{domain}");
            assert!(reports.iter().all(|r| r.kind == "aggregate"));
        }
        let tls = store
            .reports(Some("contoso-legal.example"), 10)
            .await
            .expect("reports");
        assert_eq!(tls.len(), 1);
        assert_eq!(tls[0].kind, "smtp_tls");

        // One domain is ready for its next phase, the other blocked by a forgotten sender.
        let ready = mailaudit_store::analysis::stored_readiness(
            store.as_ref(),
            "tailspin-realty.example",
            now(),
        )
        .await
        .expect("readiness")
        .expect("reports exist");
        assert!(ready.ready, "{ready:?}");
        assert_eq!(ready.next, Some("quarantine"));
        let blocked = mailaudit_store::analysis::stored_readiness(
            store.as_ref(),
            "adatum-clinic.example",
            now(),
        )
        .await
        .expect("readiness")
        .expect("reports exist");
        assert!(!blocked.ready, "{blocked:?}");
        assert!(
            blocked.reasons[0].starts_with("Mailchimp sends"),
            "{blocked:?}"
        );
        store.close().await;
    });

    // Again: the same inventory, a second run, no report stored twice.
    let again = run(&["--db", &db, "demo", "--no-serve"]);
    again.assert_code(0);
    assert!(again.stdout.contains("(0 new)"), "{}", again.stdout);
    runtime().block_on(async {
        let store = open(&db).await;
        assert_eq!(store.domains(None).await.expect("domains").len(), 15);
        assert_eq!(store.customers().await.expect("customers").len(), 4);
        let runs = store.runs(10).await.expect("runs");
        assert_eq!(runs.len(), 2);
        assert!(runs.iter().all(|r| r.domains == 15), "{runs:?}");
        let history = store
            .history("contoso-legal.example", 10)
            .await
            .expect("history");
        assert_eq!(history.len(), 2);
        assert_eq!(
            store
                .reports(Some("adatum-clinic.example"), 1000)
                .await
                .expect("reports")
                .len(),
            42
        );
        store.close().await;
    });
}

#[test]
fn demo_store_defaults_to_demo_db_beside_the_real_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let real = dir.path().join("real.db");
    // MAILAUDIT_DB names the user's real store: the demo writes beside it, never into it.
    let out = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args(["demo", "--no-serve"])
        .env("MAILAUDIT_DB", &real)
        .env("XDG_DATA_HOME", data_home())
        .stdin(Stdio::null())
        .output()
        .expect("mailaudit runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let demo = dir.path().join("demo.db");
    assert!(demo.exists(), "{stdout}");
    assert!(!real.exists(), "the real store is not touched");
    assert!(
        stdout.contains(&format!("into sqlite://{}", demo.display())),
        "{stdout}"
    );
}

#[test]
fn demo_help_and_a_non_loopback_listen_address() {
    let help = run(&["demo", "--help"]);
    help.assert_code(0);
    for needle in ["demo.db", "--no-serve", "--listen", "loopback", "SIGTERM"] {
        assert!(help.stdout.contains(needle), "{needle}:\n{}", help.stdout);
    }
    let (dir, db) = temp_db();
    let out = run(&["--db", &db, "demo", "--listen", "0.0.0.0:0"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{}",
        out.stderr
    );
    assert!(
        !dir.path().join("demo-test.db").exists(),
        "refused before any work"
    );
}

/// Lines of a child's stream, read on a thread.
fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The first line of `rx` containing `needle`, within 60 s.
fn wait_for(rx: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {needle:?} within 60 s"));
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn demo_serves_the_portal_and_stops_cleanly_on_sigterm() {
    let (_dir, db) = temp_db();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args([
            "--db",
            &db,
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--no-accounts",
        ])
        .env_remove("MAILAUDIT_DB")
        .env("XDG_DATA_HOME", data_home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailaudit demo starts");
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    // "  lab: DNS on 127.0.0.1:P, SMTP endpoints on port Q of N loopback addresses (…)"
    let lab = wait_for(&stdout, "SMTP endpoints on port");
    let smtp_port: u16 = lab
        .split("on port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{lab}"));
    let smtp = SocketAddr::from(([127, 0, 2, 11], smtp_port));
    // "mailaudit: portal on http://127.0.0.1:PORT/ (loopback only, …)"
    let line = wait_for(&stderr, "portal on http://");
    let addr = line
        .split("portal on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    assert!(
        TcpStream::connect(smtp).is_ok(),
        "the lab's SMTP endpoints run while the portal serves"
    );

    let (status, home) = http_get(&addr, "/");
    assert_eq!(status, 200, "{home}");
    assert!(home.contains("contoso-legal.example"), "{home}");
    assert!(home.contains("Coho Hospitality"), "{home}");
    let (status, page) = http_get(&addr, "/domains/contoso-legal.example");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Direct Send") && page.contains("blocked"),
        "the relay verdict is shown: {page}"
    );
    let (status, page) = http_get(&addr, "/domains/fabrikam-dental.example");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("RELAY-OPEN"), "{page}");
    assert!(
        page.contains("250 2.1.5 Recipient OK"),
        "the probe's evidence"
    );
    let (status, page) = http_get(&addr, "/domains/tailspin-realty.example/reports");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ready to move to p=quarantine"), "{page}");
    let (status, page) = http_get(&addr, "/domains/adatum-clinic.example/reports");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Mailchimp"), "{page}");

    let status = sigterm_and_wait(&mut child);
    assert_eq!(status.code(), Some(0), "a clean exit on SIGTERM");
    wait_for(&stderr, "stopping");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the portal's port is closed"
    );
    assert!(
        TcpStream::connect(smtp).is_err(),
        "the lab's SMTP port is closed"
    );
}

/// `demo` prints a login for each role, and each signs in with the password shown.
#[test]
fn demo_accounts_prints_a_login_for_each_role() {
    let (_dir, db) = temp_db();
    let logins = |stdout: &str| -> Vec<(String, String, String)> {
        stdout
            .lines()
            .skip_while(|l| !l.contains("portal logins"))
            .skip(1)
            .take(3)
            .map(|l| {
                let (who, role) = l.trim().split_once("  (").expect("a login line");
                let (name, password) = who.split_once(" / ").expect("name / password");
                (
                    name.to_string(),
                    password.to_string(),
                    role.trim_end_matches(')').to_string(),
                )
            })
            .collect()
    };
    let out = run(&["--db", &db, "demo", "--no-serve"]);
    out.assert_code(0);
    let first = logins(&out.stdout);
    assert_eq!(
        first
            .iter()
            .map(|(n, _, r)| (n.as_str(), r.as_str()))
            .collect::<Vec<_>>(),
        [
            ("admin", "admin"),
            ("technician", "technician"),
            ("viewer", "viewer of Contoso Legal Group")
        ],
        "{}",
        out.stdout
    );
    runtime().block_on(async {
        let store = open(&db).await;
        for (name, password, _) in &first {
            let u = store.user(name).await.expect("the user is stored");
            assert!(mailaudit_app::accounts::verify_password(
                u.password_hash.as_deref().unwrap(),
                password
            ));
        }
        store.close().await;
    });
    // Again on the same store: the same users, new passwords.
    let out = run(&["--db", &db, "demo", "--no-serve"]);
    out.assert_code(0);
    let second = logins(&out.stdout);
    assert_eq!(second.len(), 3);
    assert!(
        first
            .iter()
            .zip(&second)
            .all(|(a, b)| a.0 == b.0 && a.1 != b.1)
    );
    // With --no-accounts, no login is printed and no user made: an open portal on loopback.
    let (_dir2, db2) = temp_db();
    let out = run(&["--db", &db2, "demo", "--no-serve", "--no-accounts"]);
    out.assert_code(0);
    assert!(!out.stdout.contains("portal logins"), "{}", out.stdout);
    let users = run(&["--db", &db2, "user", "list", "--format", "json"]);
    users.assert_code(0);
    assert_eq!(
        users.json().as_array().map(Vec::len),
        Some(0),
        "{}",
        users.stdout
    );
}
