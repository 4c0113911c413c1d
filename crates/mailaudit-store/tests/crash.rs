//! A writer killed with SIGKILL in the middle of an audit run: every result it reported as
//! committed is there and whole, the earlier run is untouched, and the run stays `running`.
//!
//! The writer is this test binary itself, re-run with `--exact crash::child` and
//! `MAILAUDIT_STORE_CRASH_CHILD=<url>`; it prints `committed N` after each result.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mailaudit_store::RunStatus;
use serde_json::json;

use crate::db::{Kind, TestDb};

const CHILD_ENV: &str = "MAILAUDIT_STORE_CRASH_CHILD";
/// Results the parent waits for before killing the writer.
const KILL_AFTER: i64 = 25;

fn big_report(n: i64) -> serde_json::Value {
    // Large enough that a write takes a while, so the kill lands mid-transaction at times.
    json!({"domain": format!("d{n}.example"), "score": n, "n": n, "padding": "x".repeat(256 * 1024)})
}

/// The writer. Does nothing unless started by `killed_writer_loses_nothing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = mailaudit_store::open(Some(&url)).await.unwrap();
    let run = store.begin_run("schedule", 5000).await.unwrap();
    for n in 0..100_000i64 {
        let d = format!("d{n}.example");
        store
            .record_result(run, &d, 5000 + n, Some(n), &big_report(n))
            .await
            .unwrap();
        println!("committed {n}");
    }
}

pub(crate) async fn killed_writer_loses_nothing(kind: Kind) {
    let db = TestDb::new(kind).await;
    let earlier = {
        let s = db.open().await;
        let r = s.begin_run("cli", 100).await.unwrap();
        for i in 0..5 {
            let d = format!("d{i}.example");
            s.record_result(r, &d, 101, Some(1), &json!({"domain": d, "score": 1}))
                .await
                .unwrap();
        }
        s.finish_run(r, RunStatus::Complete, 102).await.unwrap();
        s.close().await;
        r
    };

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");
    let stdout = child.stdout.take().unwrap();
    let acknowledged = tokio::task::spawn_blocking(move || {
        let mut last = -1i64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("committed ") {
                last = n.trim().parse().unwrap();
                if last + 1 >= KILL_AFTER {
                    break;
                }
            }
        }
        last
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        acknowledged + 1 >= KILL_AFTER,
        "the writer stopped after {acknowledged} results"
    );

    let s = db.open().await;
    let runs = s.runs(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    let crashed = &runs[0];
    assert_eq!(crashed.status, RunStatus::Running);
    // Everything acknowledged is there (the writer may have committed one or two more before
    // the kill landed).
    assert!(
        crashed.domains > acknowledged,
        "{} results stored, {} acknowledged",
        crashed.domains,
        acknowledged + 1
    );
    let results = s.run_results(crashed.id).await.unwrap();
    assert_eq!(i64::try_from(results.len()).unwrap(), crashed.domains);
    for r in &results {
        let n = r.score.unwrap();
        assert_eq!(r.report, big_report(n), "result {n} is not whole");
        assert_eq!(r.domain, format!("d{n}.example"));
    }
    let earlier_results = s.run_results(earlier).await.unwrap();
    assert_eq!(earlier_results.len(), 5);
    assert!(earlier_results.iter().all(|r| r.score == Some(1)));
    assert_eq!((runs[1].status, runs[1].domains), (RunStatus::Complete, 5));
    // d0's latest is the crashed run's committed result.
    assert_eq!(
        s.latest_result("d0.example").await.unwrap().unwrap().run_id,
        crashed.id
    );
    s.close().await;
}
