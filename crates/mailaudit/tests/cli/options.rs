//! The remaining `audit` options: `--parked`, `--stats`, `--concurrency`.

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
