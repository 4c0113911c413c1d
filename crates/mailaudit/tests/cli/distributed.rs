//! Distributed runs: `audit --distributed` queues a run, `mailaudit worker` processes claim and
//! record its chunks, `runs` shows the progress. Against a real PostgreSQL cluster on loopback
//! (`mailaudit_lab::postgres`) with three worker processes, one SIGKILLed mid-chunk; and on a
//! SQLite file with the queuing command following the run to its end.
//!
//! Each chunk holds one domain whose name server never answers (`TIMEOUT` in the lab zone), so
//! auditing a chunk takes a few seconds: long enough to kill a worker in the middle of one.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Lab, data_home, run, unsigned_lab};

/// Chunks of the test runs, and domains per chunk.
const CHUNKS: usize = 4;
const CHUNK_SIZE: usize = 8;

/// The lab zone and the domains file: per chunk, one silent domain first, then ordinary ones.
fn fleet(dir: &Path) -> (Lab, String, Vec<String>) {
    let mut zone = String::new();
    let mut names = Vec::new();
    for c in 0..CHUNKS {
        let slow = format!("slow{c}.example");
        zone.push_str(&format!("{slow} TIMEOUT\n"));
        names.push(slow);
        for i in 1..CHUNK_SIZE {
            let d = format!("d{c}-{i}.example");
            zone.push_str(&format!(
                "{d} MX 10 mx.{d}\nmx.{d} A 127.0.0.1\n{d} TXT \"v=spf1 mx -all\"\n\
                 _dmarc.{d} TXT \"v=DMARC1; p=reject\"\n"
            ));
            names.push(d);
        }
    }
    let file = dir.join("domains.txt");
    std::fs::write(&file, names.join("\n")).expect("write the domains file");
    (Lab::start(&zone), file.display().to_string(), names)
}

/// Starts `mailaudit ARGS…` in the background, its standard error going to `log`.
fn spawn(args: &[&str], log: &Path) -> Child {
    let err = std::fs::File::create(log).expect("create the log");
    Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args(unsigned_lab(args))
        .env_remove("MAILAUDIT_DB")
        .env("XDG_DATA_HOME", data_home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("mailaudit starts")
}

/// Waits (at most 120 s, which only catches a hang) for `child` to exit; its exit code.
fn wait(child: &mut Child, what: &str) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code().unwrap_or(-1);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `runs RUN --format json` on `db`.
fn progress(db: &str, run_id: i64) -> Value {
    let out = run(&["runs", &run_id.to_string(), "--db", db, "--format", "json"]);
    out.assert_code(0);
    out.json()
}

fn worker_args<'a>(db: &'a str, lab: &'a Lab, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "worker",
        "--db",
        db,
        "--nameserver",
        lab.addr(),
        "--no-policy-fetch",
        "--timeout",
        "2",
        "--retries",
        "1",
        "--lease",
        "3s",
        "--poll",
        "1s",
        "--name",
        name,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn three_workers_on_postgresql_one_killed_mid_chunk() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = mailaudit_lab::postgres::fresh_database();
    let (lab, file, names) = fleet(dir.path());
    let size = CHUNK_SIZE.to_string();

    let out = run(&[
        "audit",
        "--db",
        &db,
        "--distributed",
        "--detach",
        "--chunk-size",
        &size,
        "--file",
        &file,
        "--format",
        "json",
    ]);
    out.assert_code(0);
    let queued = out.json();
    assert_eq!(queued["domains"], names.len());
    assert_eq!(queued["chunks"], CHUNKS);
    let run_id = queued["run"].as_i64().expect("the run's id");
    let p = progress(&db, run_id);
    assert_eq!(
        (p["run"]["status"].as_str(), p["run"]["source"].as_str()),
        (Some("running"), Some("distributed"))
    );
    assert_eq!(p["chunks_done"], 0);

    // w1 alone: it claims chunk 0 and is killed while auditing it (its silent domain keeps it
    // busy for seconds).
    let w1_log = dir.path().join("w1.log");
    let mut w1 = spawn(&worker_args(&db, &lab, "w1", &[]), &w1_log);
    let started = Instant::now();
    loop {
        let p = progress(&db, run_id);
        if p["workers"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w == "w1"))
        {
            assert_eq!(p["chunks_done"], 0, "w1 finished its chunk before the kill");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "w1 never claimed a chunk"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    w1.kill().expect("SIGKILL w1");
    let _ = w1.wait();
    assert!(
        std::fs::read_to_string(&w1_log)
            .unwrap()
            .contains("chunk 0: 8 domains"),
        "w1 had claimed chunk 0"
    );
    assert_eq!(
        progress(&db, run_id)["run"]["domains"],
        0,
        "w1 recorded nothing"
    );

    // Two more workers do the rest, chunk 0 included once w1's lease has expired.
    let logs = [dir.path().join("w2.log"), dir.path().join("w3.log")];
    let mut w2 = spawn(
        &worker_args(&db, &lab, "w2", &["--exit-when-done"]),
        &logs[0],
    );
    let mut w3 = spawn(
        &worker_args(&db, &lab, "w3", &["--exit-when-done"]),
        &logs[1],
    );
    assert_eq!(wait(&mut w2, "w2"), 0);
    assert_eq!(wait(&mut w3, "w3"), 0);

    let p = progress(&db, run_id);
    assert_eq!(p["run"]["status"], "complete", "{p}");
    assert_eq!(p["chunks_done"], CHUNKS);
    assert_eq!(p["domains_done"], names.len());
    // Each domain of the run has exactly one result: as many results as names, and chunk 0
    // (w1's) claimed twice and recorded once.
    assert_eq!(p["run"]["domains"], names.len(), "{p}");
    assert_eq!(p["retried"], 1, "{p}");
    let logs: String = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap())
        .collect();
    assert_eq!(
        logs.matches("chunk 0: 8 domains (claim 2").count(),
        1,
        "chunk 0 claimed again once:\n{logs}"
    );
    assert!(!logs.contains("not recorded"), "{logs}");
    // The results are the run's, read as any run's: a silent domain's look-ups failed (it is
    // not "missing"), an ordinary one is audited.
    let h = run(&["history", "slow0.example", "--db", &db, "--format", "json"]);
    h.assert_code(0);
    let h = h.json();
    let ids: Vec<&str> = h[0]["report"]["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&"DNS-LOOKUP-FAILED"), "{h}");
    let list = run(&["runs", "--db", &db, "--format", "json"]);
    list.assert_code(0);
    assert_eq!(list.json()[0]["id"], run_id);
}

#[test]
fn audit_distributed_follows_the_run_to_its_end_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("m.db");
    let db = format!("sqlite://{}", path.display());
    let (lab, file, names) = fleet(dir.path());
    let size = CHUNK_SIZE.to_string();

    // Queue and follow; the worker starts once the run is queued and exits when it is done.
    let mut queue = spawn(
        &[
            "audit",
            "--db",
            &db,
            "--distributed",
            "--chunk-size",
            &size,
            "--file",
            &file,
            "bad name!",
            "--format",
            "json",
        ],
        &dir.path().join("queue.log"),
    );
    let started = Instant::now();
    while !std::fs::read_to_string(dir.path().join("queue.log"))
        .unwrap_or_default()
        .contains("queued in 4 chunks")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run was never queued"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut worker = spawn(
        &worker_args(&db, &lab, "solo", &["--exit-when-done"]),
        &dir.path().join("worker.log"),
    );
    assert_eq!(wait(&mut worker, "the worker"), 0);
    // The invalid argument is reported, and makes the exit status 2; the rest is audited.
    assert_eq!(wait(&mut queue, "audit --distributed"), 2);
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut queue.stdout.take().unwrap(), &mut stdout).unwrap();
    let p: Value = serde_json::from_str(&stdout).expect("the final progress as JSON");
    assert_eq!(p["run"]["status"], "complete", "{p}");
    assert_eq!(p["run"]["domains"], names.len());
    assert_eq!(p["workers"], serde_json::json!([]));
    let log = std::fs::read_to_string(dir.path().join("queue.log")).unwrap();
    assert!(log.contains("bad name!"), "{log}");

    // The text form of the same run.
    let run_id = p["run"]["id"].as_i64().unwrap().to_string();
    let text = run(&["runs", &run_id, "--db", &db]);
    text.assert_code(0);
    assert!(
        text.stdout.contains("complete (distributed source)")
            && text.stdout.contains("4 recorded, 0 held by a worker"),
        "{}",
        text.stdout
    );

    // Options that make no sense with --distributed are refused.
    let out = run(&[
        "audit",
        "--db",
        &db,
        "--distributed",
        "--no-store",
        "a.example",
    ]);
    out.assert_code(2);
}
