//! `mailaudit serve`: the portal and the scheduler on one runtime; the loopback rule; a clean
//! stop on SIGTERM.

use std::net::TcpStream;
use std::time::Duration;

use crate::common::{Served, http_get, run, sigterm_and_wait, spawn_serve};

#[test]
fn serve_refuses_a_non_loopback_address_without_public() {
    let dir = tempfile::tempdir().unwrap();
    // A store without portal users (an empty file is an empty SQLite database): no sign-in, so
    // loopback only (with an admin, see users.rs).
    std::fs::File::create(dir.path().join("m.db")).unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let out = run(&["--db", &db, "serve", "--listen", "0.0.0.0:0"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("refusing to listen on 0.0.0.0:0")
            && out.stderr.contains("--public")
            && out.stderr.contains("mailaudit user add --admin"),
        "{}",
        out.stderr
    );
    let help = run(&["serve", "--help"]);
    help.assert_code(0);
    let words = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("--public") && words.contains("the portal has no authentication"),
        "{}",
        help.stdout
    );
    assert!(words.contains("everyone signs in"), "{}", help.stdout);
}

/// A running `mailaudit serve` on an ephemeral loopback port: the child, its stderr lines, and
/// the address it printed.
struct Serving {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    addr: String,
    _dir: tempfile::TempDir,
}

fn start_serve() -> Serving {
    let dir = tempfile::tempdir().unwrap();
    // `serve` needs the store to exist (an empty file is an empty SQLite database).
    std::fs::File::create(dir.path().join("m.db")).unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    // "mailaudit: portal on http://127.0.0.1:PORT/ (loopback only, …)"
    let served = spawn_serve(&db, &["--listen", "127.0.0.1:0"], &[]);
    let addr = served.addr();
    let Served { child, lines, .. } = served;
    Serving {
        child,
        lines,
        addr,
        _dir: dir,
    }
}

/// Sends SIGTERM and asserts a clean stop: exit 0, "stopping" said, the port closed.
fn terminate_cleanly(mut serving: Serving) {
    let status = sigterm_and_wait(&mut serving.child);
    // The reader thread ends at EOF, now that the process has exited.
    let mut rest = Vec::new();
    while let Ok(line) = serving.lines.recv_timeout(Duration::from_secs(5)) {
        rest.push(line);
    }
    assert_eq!(
        status.code(),
        Some(0),
        "a clean exit on SIGTERM: {status:?}; stderr after the address: {rest:?}"
    );
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
    assert!(
        TcpStream::connect(&serving.addr).is_err(),
        "the port is closed after the stop"
    );
}

#[test]
fn serve_answers_http_and_stops_cleanly_on_sigterm() {
    let serving = start_serve();
    let (status, response) = http_get(&serving.addr, "/healthz");
    assert_eq!(status, 200, "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
    terminate_cleanly(serving);
}

/// A supervisor (or a script) may send SIGTERM as soon as the address line appears; that is
/// already a clean stop, not death by the signal's default action. (A CI run caught the
/// handler being installed only after the line was printed.)
#[test]
fn sigterm_as_soon_as_the_address_is_printed_is_a_clean_stop() {
    for _ in 0..5 {
        terminate_cleanly(start_serve());
    }
}
