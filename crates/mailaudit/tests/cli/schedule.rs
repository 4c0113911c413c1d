//! `mailaudit schedule`: schedules in the store, `schedule run` auditing the due ones and
//! posting regression alerts to a webhook on loopback (a std `TcpListener` thread recording
//! each request body), with the alert kept in the outbox when the webhook fails.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::Lab;
use crate::store::Db;

/// The secret part of the webhook's URL (as in a Teams or Slack webhook).
const SECRET: &str = "t0ken-9f8e7d6c5b4a";

/// A webhook on 127.0.0.1: answers each POST with the next queued status (200 when none) and
/// records the bodies.
struct Hook {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook");
        let port = listener.local_addr().expect("address").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(VecDeque::new()));
        let (b, s) = (bodies.clone(), statuses.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let end = buf.len().min(head_end + len);
                let body = String::from_utf8_lossy(&buf[head_end..end]).into_owned();
                b.lock().expect("bodies").push(body);
                let status = s.lock().expect("statuses").pop_front().unwrap_or(200);
                let reason = if status == 200 { "OK" } else { "Error" };
                // An error quotes the request line, secret path and all, as real services do.
                let echo = if status == 200 {
                    String::new()
                } else {
                    head.lines().next().unwrap_or("").to_string()
                };
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{echo}",
                        echo.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Hook {
            port,
            bodies,
            statuses,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook/{SECRET}", self.port)
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("bodies").clone()
    }
}

fn zone(d: &str, dmarc: bool) -> String {
    let mut z = format!(
        "{d} MX 10 mail.{d}\nmail.{d} A 192.0.2.25\n{d} TXT \"v=spf1 ip4:192.0.2.10 -all\"\n"
    );
    if dmarc {
        z.push_str(&format!(
            "_dmarc.{d} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{d}\"\n"
        ));
    }
    z
}

/// `schedule run --webhook URL --nameserver LAB`; returns (schedules run, alerts delivered).
fn schedule_run(db: &Db, lab: &Lab, hook: &Hook) -> (u32, u32, String) {
    let url = hook.url();
    let out = db.run(&[
        "schedule",
        "run",
        "--webhook",
        &url,
        "--nameserver",
        lab.addr(),
        "--timeout",
        "2",
    ]);
    out.assert_code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("schedules run"))
        .unwrap_or_else(|| panic!("a summary line: {}\n{}", out.stdout, out.stderr))
        .to_owned();
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "{line}");
    (nums[0], nums[1], out.stderr)
}

#[test]
fn schedule_set_list_remove() {
    let db = Db::new();
    let empty = db.run(&["schedule", "list"]);
    empty.assert_code(0);
    assert_eq!(
        empty.stdout.lines().count(),
        1,
        "just the header: {}",
        empty.stdout
    );
    db.run(&["schedule", "set", "--fleet", "--every", "1d"])
        .assert_code(0);
    db.run(&["customer", "add", "Acme"]).assert_code(0);
    db.run(&["schedule", "set", "--customer", "Acme", "--every", "12h"])
        .assert_code(0);
    let unknown = db.run(&["schedule", "set", "--customer", "Nobody", "--every", "1d"]);
    unknown.assert_code(2);
    db.run(&["schedule", "set", "--fleet", "--every", "soon"])
        .assert_code(2);
    db.run(&["schedule", "set", "--every", "1d"]).assert_code(2);

    let list = db.run(&["schedule", "list"]);
    list.assert_code(0);
    let fleet = list
        .stdout
        .lines()
        .find(|l| l.contains("whole fleet"))
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(fleet.contains("1d") && fleet.contains("never"), "{fleet}");
    let acme = list
        .stdout
        .lines()
        .find(|l| l.contains("Acme"))
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(acme.contains("12h"), "{acme}");

    // Paused: listed as paused, and setting it again keeps it paused; resumed, due again.
    db.run(&["schedule", "pause", "--customer", "Acme"])
        .assert_code(0);
    let listed = db.run(&["schedule", "list"]).stdout;
    let acme = listed.lines().find(|l| l.contains("Acme")).unwrap();
    assert!(acme.contains("paused"), "{listed}");
    db.run(&["schedule", "set", "--customer", "Acme", "--every", "12h"])
        .assert_code(0);
    assert!(
        db.run(&["schedule", "list"])
            .stdout
            .lines()
            .any(|l| l.contains("Acme") && l.contains("paused"))
    );
    db.run(&["schedule", "resume", "--customer", "Acme"])
        .assert_code(0);
    assert!(!db.run(&["schedule", "list"]).stdout.contains("paused"));
    db.run(&["schedule", "pause", "--customer", "Nobody"])
        .assert_code(2);

    // Setting the fleet again replaces it (one row).
    db.run(&["schedule", "set", "--fleet", "--every", "7d"])
        .assert_code(0);
    let list = db.run(&["schedule", "list"]);
    let fleet: Vec<&str> = list
        .stdout
        .lines()
        .filter(|l| l.contains("whole fleet"))
        .collect();
    assert_eq!(fleet.len(), 1, "{}", list.stdout);
    assert!(fleet[0].contains("1w"), "{}", list.stdout);

    db.run(&["schedule", "remove", "--customer", "Acme"])
        .assert_code(0);
    let list = db.run(&["schedule", "list"]);
    assert!(!list.stdout.contains("Acme"), "{}", list.stdout);
    assert!(list.stdout.contains("whole fleet"));
}

#[test]
fn schedule_run_alerts_on_regression_and_retries_a_failed_webhook() {
    let db = Db::new();
    let d = "sched.test";
    let good = Lab::start(&zone(d, true));
    let bad = Lab::start(&zone(d, false));
    let hook = Hook::start();
    db.run(&["domain", "add", d]).assert_code(0);

    // Nothing scheduled: nothing runs.
    assert_eq!(schedule_run(&db, &good, &hook).0, 0);

    db.run(&["schedule", "set", "--fleet", "--every", "1d"])
        .assert_code(0);
    // The first run audits; a first audit is no regression: no alert.
    let (ran, delivered, _) = schedule_run(&db, &good, &hook);
    assert_eq!((ran, delivered), (1, 0));
    assert!(good.query_count() > 0);
    assert!(hook.bodies().is_empty(), "{:?}", hook.bodies());
    let list = db.run(&["schedule", "list"]);
    assert!(
        !list.stdout.contains("never"),
        "last run shown: {}",
        list.stdout
    );
    // Not due again until tomorrow.
    let (ran, _, _) = schedule_run(&db, &bad, &hook);
    assert_eq!(ran, 0);
    assert_eq!(bad.query_count(), 0, "no audit when nothing is due");

    // DMARC removed, the schedule made due again: exactly one alert.
    db.run(&["schedule", "set", "--fleet", "--every", "1d"])
        .assert_code(0);
    let (ran, delivered, stderr) = schedule_run(&db, &bad, &hook);
    assert_eq!((ran, delivered), (1, 1), "{stderr}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let payload: Value = serde_json::from_str(&bodies[0]).expect("the webhook body is JSON");
    let text = payload.to_string();
    assert!(text.contains(d), "{payload:#}");
    assert!(text.contains("DMARC-MISSING"), "{payload:#}");
    // Delivered once: a further run posts nothing.
    db.run(&["schedule", "set", "--fleet", "--every", "1d"])
        .assert_code(0);
    let (_, delivered, _) = schedule_run(&db, &bad, &hook);
    assert_eq!(delivered, 0, "no change, no alert");
    assert_eq!(hook.bodies().len(), 1);
    // The history has all three scheduled audits.
    let h = db.run(&["history", d, "--format", "json"]).json();
    assert_eq!(h.as_array().map(Vec::len), Some(3), "{h:#}");

    // Fixed, then broken again while the webhook answers 500: the alert stays in the outbox.
    db.run(&["schedule", "set", "--fleet", "--every", "1d"])
        .assert_code(0);
    assert_eq!(
        schedule_run(&db, &good, &hook).1,
        0,
        "an improvement is no alert"
    );
    hook.statuses.lock().expect("statuses").push_back(500);
    db.run(&["schedule", "set", "--fleet", "--every", "1d"])
        .assert_code(0);
    let (ran, delivered, stderr) = schedule_run(&db, &bad, &hook);
    assert_eq!((ran, delivered), (1, 0), "{stderr}");
    assert_eq!(hook.bodies().len(), 2, "one failed attempt");
    assert!(stderr.contains("not delivered"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    // The backoff (one minute) keeps the next run from retrying at once.
    let (ran, delivered, _) = schedule_run(&db, &bad, &hook);
    assert_eq!((ran, delivered), (0, 0));
    assert_eq!(hook.bodies().len(), 2, "no retry before the backoff");

    // The outbox holds it, undelivered, with the error; make it due, and it is delivered.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = mailaudit_store::open(Some(db.url()))
            .await
            .expect("open the store");
        let far = 4_000_000_000;
        let pending: Vec<_> = store
            .due_alerts(far)
            .await
            .expect("due alerts")
            .into_iter()
            .filter(|a| a.delivered_at.is_none())
            .collect();
        assert_eq!(pending.len(), 1, "{pending:#?}");
        let alert = &pending[0];
        assert_eq!(alert.domain, d);
        assert_eq!(alert.attempts, 1, "{alert:#?}");
        assert!(
            alert
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("500") && e.contains("<redacted>")),
            "{alert:#?}"
        );
        // The error body quoted the webhook's secret path; the store keeps it redacted.
        assert!(
            !alert.last_error.as_deref().unwrap_or("").contains(SECRET),
            "{alert:#?}"
        );
        store
            .alert_failed(alert.id, "test: retry now", 0)
            .await
            .expect("make the alert due");
        store.close().await;
    });
    let (_, delivered, stderr) = schedule_run(&db, &bad, &hook);
    assert_eq!(delivered, 1, "the retry is delivered: {stderr}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[1], bodies[2], "the same alert retried");
    assert!(bodies[2].contains("DMARC-MISSING"));
}

/// `schedule run --keep`: the retention applied after the due schedules ran.
#[test]
fn schedule_run_keep_prunes_old_audits_to_summaries() {
    let db = Db::new();
    let d = "keep.test";
    let lab = Lab::start(&zone(d, true));
    db.run(&["domain", "add", d]).assert_code(0);
    db.run(&["schedule", "set", "--fleet", "--every", "1d"])
        .assert_code(0);
    let run = |keep: &str| {
        db.run(&["schedule", "set", "--fleet", "--every", "1d"])
            .assert_code(0);
        let out = db.run(&[
            "schedule",
            "run",
            "--nameserver",
            lab.addr(),
            "--timeout",
            "2",
            "--keep",
            keep,
        ]);
        out.assert_code(0);
        out
    };
    run("1d");
    // Audits are stamped in whole seconds: the first is older than --keep 1s by then.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = run("1s");
    assert!(
        out.stderr
            .contains("--keep: 1 older audit(s) kept as summaries"),
        "{}",
        out.stderr
    );
    let h = db.run(&["history", d, "--format", "json"]).json();
    let summaries: Vec<Option<bool>> = h
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["summary"].as_bool())
        .collect();
    assert_eq!(summaries, [Some(false), Some(true)], "{h:#}");
}
