//! Exit codes (README "Exit codes"): 0 success, 1 a finding at or above `--fail-on`, 2 an error
//! (bad arguments, unreadable input, an invalid domain name; the run still reports the rest).

use crate::common::{Lab, domains, finding_ids, run};

#[test]
fn clean_run_exits_zero() {
    let out = run(&["audit", "--sample", "--format", "json"]);
    out.assert_code(0);
    assert!(
        out.stderr.is_empty(),
        "a clean run is quiet on stderr: {}",
        out.stderr
    );
}

#[test]
fn fail_on_critical_on_the_sample_exits_one() {
    for sev in ["critical", "CRITICAL", "high", "info"] {
        let out = run(&["audit", "--sample", "--format", "json", "--fail-on", sev]);
        out.assert_code(1);
        // The report is still complete.
        assert_eq!(
            out.json().as_array().map(Vec::len),
            Some(15),
            "--fail-on {sev}"
        );
    }
}

/// One hardened domain (no findings) and one whose worst finding is low, served by the sample
/// zone on our own lab server.
#[test]
fn fail_on_is_a_threshold() {
    let lab = Lab::sample_plus("");
    let ns = lab.addr();
    let audit = |domain: &str, sev: &str| {
        // The sample's MTA-STS policy host is not served here: this test is about DNS findings.
        run(&[
            "audit",
            "--no-policy-fetch",
            "--nameserver",
            ns,
            "--format",
            "json",
            "--fail-on",
            sev,
            domain,
        ])
    };
    // No findings at all: no threshold is reached.
    for sev in ["critical", "high", "medium", "low", "info"] {
        let out = audit("contoso-legal.example", sev);
        out.assert_code(0);
        let report = out.json();
        assert!(finding_ids(&report[0]).is_empty(), "{}", out.stdout);
    }
    // Worst finding is low (MTA-STS-MISSING): above it 0, at or below it 1.
    let report = audit("graphic-design-institute.example", "critical").json();
    let severities: Vec<&str> = report[0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["severity"].as_str())
        .collect();
    assert_eq!(severities, ["low"], "{report}");
    for (sev, code) in [
        ("critical", 0),
        ("high", 0),
        ("medium", 0),
        ("low", 1),
        ("info", 1),
    ] {
        audit("graphic-design-institute.example", sev).assert_code(code);
    }
    assert!(lab.query_count() > 0, "the binary asked our lab server");
}

#[test]
fn fail_on_rejects_an_unknown_severity() {
    let out = run(&["audit", "--sample", "--fail-on", "severe"]);
    out.assert_code(2);
    assert!(out.stderr.contains("severe"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn invalid_name_exits_two_and_the_rest_is_reported() {
    let lab = Lab::sample_plus("");
    let out = run(&[
        "audit",
        "--no-policy-fetch",
        "--nameserver",
        lab.addr(),
        "--format",
        "json",
        "contoso-legal.example",
        "bad..name",
        "coho-winery.example",
    ]);
    out.assert_code(2);
    let report = out.json();
    assert_eq!(
        domains(&report),
        ["contoso-legal.example", "bad..name", "coho-winery.example"]
    );
    assert!(report[1]["error"].is_string(), "{}", report[1]);
    assert_eq!(report[0]["score"], 100, "the valid domains are audited");
    assert!(out.stderr.contains("bad..name"), "{}", out.stderr);
}

#[test]
fn invalid_name_beats_fail_on() {
    // Both an invalid name and a finding above the threshold: the error status wins.
    let lab = Lab::sample_plus("");
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--fail-on",
        "low",
        "fabrikam-dental.example",
        "not a domain",
    ]);
    out.assert_code(2);
    assert!(out.stdout.contains("fabrikam-dental.example"));
}

#[test]
fn missing_file_exits_two_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-such-domains.txt");
    let path = path.to_str().expect("UTF-8 path");
    let out = run(&["audit", "--nameserver", "127.0.0.1:9", "--file", path]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("no-such-domains.txt"),
        "the message names the file: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "nothing is audited: {}", out.stdout);
}

#[test]
fn unknown_option_is_a_usage_error() {
    let out = run(&["audit", "--sample", "--frobnicate"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--frobnicate"), "{}", out.stderr);
    assert!(out.stderr.contains("Usage:"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn no_domains_is_an_error() {
    let out = run(&["audit", "--nameserver", "127.0.0.1:9"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("--sample"),
        "says what to pass: {}",
        out.stderr
    );
}

#[test]
fn bad_nameserver_and_timeout_are_errors() {
    let out = run(&["audit", "--nameserver", "not-an-address", "contoso.example"]);
    out.assert_code(2);
    assert!(out.stderr.contains("not-an-address"), "{}", out.stderr);
    for t in ["0", "-1", "nan", "1000"] {
        let timeout = format!("--timeout={t}");
        let out = run(&[
            "audit",
            "--nameserver",
            "127.0.0.1:9",
            &timeout,
            "contoso.example",
        ]);
        out.assert_code(2);
        assert!(out.stderr.contains("--timeout"), "{t}: {}", out.stderr);
    }
}

#[test]
fn sample_conflicts_with_domains() {
    let out = run(&["audit", "--sample", "contoso.example"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--sample"), "{}", out.stderr);
}
