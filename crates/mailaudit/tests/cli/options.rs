//! The remaining `audit` options (`--parked`, `--stats`, `--concurrency`), and where the store,
//! DNS and colour options are accepted.

use crate::common::{Lab, domain, finding_ids, run};

#[test]
fn parked_file_requires_lock_down() {
    let lab = Lab::sample_plus(
        r#"
        locked.test          TXT "v=spf1 -all"
        _dmarc.locked.test   TXT "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s"
        "#,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let parked = dir.path().join("parked.txt");
    std::fs::write(
        &parked,
        "# domains that send no mail\nCOHO-WINERY.example.  # parked last year\nlocked.test\n",
    )
    .expect("write parked file");
    let out = run(&[
        "audit",
        "--no-policy-fetch",
        "--nameserver",
        lab.addr(),
        "--format",
        "json",
        "--parked",
        parked.to_str().expect("UTF-8"),
        "coho-winery.example",
        "locked.test",
        "contoso-legal.example",
    ]);
    out.assert_code(0);
    let report = out.json();
    let coho = domain(&report, "coho-winery.example");
    assert_eq!(coho["parked"], true);
    assert!(finding_ids(coho).contains(&"PARKED-NOT-LOCKED".to_string()));
    let locked = domain(&report, "locked.test");
    assert_eq!(locked["parked"], true);
    assert!(
        !finding_ids(locked).contains(&"PARKED-NOT-LOCKED".to_string()),
        "{locked}"
    );
    let contoso = domain(&report, "contoso-legal.example");
    assert_eq!(contoso["parked"], false);
    assert!(finding_ids(contoso).is_empty());
}

#[test]
fn missing_parked_file_exits_two_naming_it() {
    let out = run(&[
        "audit",
        "--sample",
        "--parked",
        "/nonexistent/parked-domains.txt",
    ]);
    out.assert_code(2);
    assert!(out.stderr.contains("parked-domains.txt"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn stats_go_to_stderr_only() {
    let plain = run(&["audit", "--sample", "--format", "json"]);
    let stats = run(&["audit", "--sample", "--format", "json", "--stats"]);
    stats.assert_code(0);
    assert_eq!(
        plain.stdout, stats.stdout,
        "--stats does not change the report"
    );
    assert!(stats.stderr.contains("15 domains"), "{}", stats.stderr);
    assert!(stats.stderr.contains("queries sent"), "{}", stats.stderr);
}

#[test]
fn concurrency_does_not_change_the_report() {
    let one = run(&[
        "audit",
        "--sample",
        "--format",
        "json",
        "--concurrency",
        "1",
    ]);
    let many = run(&[
        "audit",
        "--sample",
        "--format",
        "json",
        "--concurrency",
        "1000",
    ]);
    one.assert_code(0);
    many.assert_code(0);
    assert_eq!(one.stdout, many.stdout);
    // 0 is treated as 1, not a hang.
    let zero = run(&[
        "audit",
        "--sample",
        "--format",
        "json",
        "--concurrency",
        "0",
    ]);
    zero.assert_code(0);
    assert_eq!(zero.stdout, one.stdout);
}

/// Every line of a domain's block in the table is indented under its heading, so the table can
/// be read (and grepped) block by block: a multi-line value (two SPF records read at one name)
/// must not start a line at column 0.
#[test]
fn table_blocks_are_indented() {
    let out = run(&["audit", "--sample", "--color", "never"]);
    out.assert_code(0);
    let (_, fleet) = mailaudit_lab::sample_fleet();
    for line in out.stdout.lines() {
        let at_column_0 = !line.is_empty() && !line.starts_with(' ');
        if at_column_0 {
            let is_heading = fleet.iter().any(|d| line.starts_with(&format!("{d}  ")));
            let is_summary = line.starts_with("15 domains")
                || (line.contains("domains with a critical finding") && line.ends_with(" one"));
            assert!(is_heading || is_summary, "stray line at column 0: {line:?}");
        }
    }
}

/// Piping into `head` closes the pipe early: that is not an error worth a message.
#[test]
fn closed_stdout_is_not_an_error_message() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args([
            "audit",
            "--sample",
            "--format",
            "json",
            "--concurrency",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mailaudit");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read a line");
    // stdout is dropped (closed) here.
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// `--db`, `--nameserver` and `--color` show in the help of the commands that use them, and only
/// there; they are accepted before the command (as they always were) and after it.
#[test]
fn store_dns_and_colour_options_belong_to_the_commands_that_use_them() {
    let options_in = |args: &[&str]| -> Vec<&'static str> {
        let out = run(args);
        out.assert_code(0);
        ["--db", "--nameserver", "--color"]
            .into_iter()
            .filter(|o| {
                out.stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{o} ")))
            })
            .collect()
    };
    for (args, expected) in [
        (&["checks", "--help"][..], &[][..]),
        (&["exo", "script", "--help"], &[]),
        (&["reports", "parse", "--help"], &[]),
        (&["spf-eval", "--help"], &["--nameserver"]),
        (&["relay-test", "--help"], &["--nameserver"]),
        (&["customer", "add", "--help"], &["--db"]),
        (&["domain", "show", "--help"], &["--db"]),
        (&["history", "--help"], &["--db"]),
        (&["schedule", "list", "--help"], &["--db"]),
        (&["schedule", "run", "--help"], &["--db", "--nameserver"]),
        (&["guide", "--help"], &["--db", "--nameserver"]),
        (&["reports", "summary", "--help"], &["--db", "--nameserver"]),
        (&["serve", "--help"], &["--db", "--nameserver"]),
        (&["demo", "--help"], &["--db"]),
        (&["audit", "--help"], &["--db", "--nameserver", "--color"]),
        // The top level lists all three: they may be given before any command.
        (&["--help"], &["--db", "--nameserver", "--color"]),
    ] {
        assert_eq!(options_in(args), expected, "mailaudit {}", args.join(" "));
    }

    // Before or after the command, the same store.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    run(&["--db", &db, "customer", "add", "Before"]).assert_code(0);
    run(&["customer", "add", "After", "--db", &db]).assert_code(0);
    let list = run(&["customer", "list", "--db", &db]);
    list.assert_code(0);
    assert!(
        list.stdout.contains("Before") && list.stdout.contains("After"),
        "{}",
        list.stdout
    );
    // A command that does not use the store refuses --db after it instead of ignoring it.
    let out = run(&["checks", "--db", &db]);
    out.assert_code(2);
    assert!(out.stderr.contains("--db"), "{}", out.stderr);

    // --db after the command wins over MAILAUDIT_DB (which names a store that does not exist).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args(["customer", "list", "--db", &db])
        .env("MAILAUDIT_DB", "sqlite:///nonexistent-dir/typo.db")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("After"));
}
