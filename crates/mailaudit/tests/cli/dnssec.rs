//! `--trust-anchor` and `--no-dnssec` against the lab's DNSSEC-signing server
//! (`mailaudit_lab::SignedDns`, its own signed root).

use mailaudit_lab::{DnssecMode, SignedDns, SignedZone};

use crate::common::{domain, finding_ids, run};
use crate::docs_json::assert_report_documented;

/// A signed lab on its own runtime, so it answers while the test blocks on the binary.
struct SignedLab {
    dns: SignedDns,
    _rt: tokio::runtime::Runtime,
}

fn signed_lab() -> SignedLab {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let zone = |origin: &str, mode| {
        SignedZone::new(
            origin,
            format!(
                "{origin} MX 10 mx.{origin}\n\
                 {origin} TXT \"v=spf1 mx -all\"\n\
                 _dmarc.{origin} TXT \"v=DMARC1; p=reject\"\n\
                 mx.{origin} A 127.0.0.1"
            ),
            mode,
        )
    };
    let dns = rt
        .block_on(SignedDns::start(&[
            zone("sec.test", DnssecMode::Signed),
            zone("old.test", DnssecMode::ExpiredSignatures),
        ]))
        .expect("signed lab starts");
    SignedLab { dns, _rt: rt }
}

fn audit_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "audit",
        "--no-store",
        "--no-policy-fetch",
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let out = run(&all);
    out.assert_code(0);
    let report = out.json();
    assert_report_documented(&report);
    report
}

#[test]
fn trust_anchor_file_validates_and_no_dnssec_turns_it_off() {
    let lab = signed_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let anchor = lab
        .dns
        .write_trust_anchor(dir.path())
        .expect("trust anchor written");
    let addr = lab.dns.addr().to_string();
    let anchor = anchor.to_str().expect("UTF-8 path");

    let report = audit_json(&[
        "--nameserver",
        &addr,
        "--trust-anchor",
        anchor,
        "sec.test",
        "old.test",
    ]);
    let sec = domain(&report, "sec.test");
    assert_eq!(sec["dnssec"]["domain"], "secure", "{sec}");
    assert_eq!(sec["dnssec"]["mx"][0]["security"], "secure", "{sec}");
    assert!(finding_ids(sec).contains(&"DANE-TLSA-MISSING".to_string()));
    let old = domain(&report, "old.test");
    assert_eq!(old["dnssec"]["domain"], "bogus", "{old}");
    let old_ids = finding_ids(old);
    assert!(old_ids.contains(&"DNSSEC-BOGUS".to_string()), "{old_ids:?}");
    assert!(!old_ids.contains(&"SPF-MISSING".to_string()), "{old_ids:?}");

    // The same, given before the command.
    let before = run(&[
        "--trust-anchor",
        anchor,
        "audit",
        "--no-store",
        "--no-policy-fetch",
        "--format",
        "json",
        "--nameserver",
        &addr,
        "sec.test",
    ]);
    before.assert_code(0);
    assert_eq!(
        domain(&before.json(), "sec.test")["dnssec"]["domain"],
        "secure"
    );

    let off = audit_json(&["--nameserver", &addr, "--no-dnssec", "sec.test", "old.test"]);
    for d in ["sec.test", "old.test"] {
        let r = domain(&off, d);
        assert!(r.get("dnssec").is_none(), "{r}");
        assert!(
            !finding_ids(r)
                .iter()
                .any(|id| id.starts_with("DNSSEC-") || id.starts_with("DANE-")),
            "{r}"
        );
    }
}

#[test]
fn unusable_trust_anchor_file_is_exit_2() {
    let lab = signed_lab();
    let addr = lab.dns.addr().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("anchor.txt");
    std::fs::write(&empty, "# nothing\n").expect("write");
    for path in [empty, dir.path().join("missing.txt")] {
        let path = path.to_str().expect("UTF-8 path").to_string();
        let out = run(&[
            "audit",
            "--no-store",
            "--nameserver",
            &addr,
            "--trust-anchor",
            &path,
            "sec.test",
        ]);
        out.assert_code(2);
        assert!(out.stderr.contains("trust anchor"), "{}", out.stderr);
        assert!(out.stderr.contains(&path), "{}", out.stderr);
    }
    let out = run(&["audit", "--no-dnssec", "--trust-anchor", "x", "sec.test"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--trust-anchor"), "{}", out.stderr);
}

#[test]
fn csv_table_and_html_show_dnssec_per_domain_and_dane_per_mx() {
    let lab = signed_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let anchor = lab
        .dns
        .write_trust_anchor(dir.path())
        .expect("trust anchor written");
    let addr = lab.dns.addr().to_string();
    let anchor = anchor.to_str().expect("UTF-8 path");
    let with = |format: &str| {
        let out = run(&[
            "audit",
            "--no-store",
            "--no-policy-fetch",
            "--nameserver",
            &addr,
            "--trust-anchor",
            anchor,
            "--format",
            format,
            "sec.test",
            "old.test",
        ]);
        out.assert_code(0);
        out.stdout
    };

    // CSV: the two trailing columns, on every row of the domain.
    let csv = with("csv");
    let mut rows = ::csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = rows
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header[header.len() - 2..], ["dnssec", "dane"], "{csv}");
    let mut seen = 0;
    for row in rows.records() {
        let row = row.expect("a CSV row");
        let (dnssec, dane) = (&row[row.len() - 2], &row[row.len() - 1]);
        match &row[0] {
            "sec.test" => {
                assert_eq!(dnssec, "secure", "{csv}");
                assert_eq!(dane, "mx.sec.test: secure, no TLSA", "{csv}");
            }
            "old.test" => assert_eq!(dnssec, "bogus", "{csv}"),
            other => panic!("unexpected domain {other}: {csv}"),
        }
        seen += 1;
    }
    assert!(seen >= 2, "{csv}");

    // The table: one DNSSEC line and one DANE line under the heading.
    let table = with("table");
    assert!(table.contains("  DNSSEC: secure\n"), "{table}");
    assert!(
        table.contains("  DANE:   mx.sec.test: secure, no TLSA\n"),
        "{table}"
    );
    assert!(table.contains("  DNSSEC: bogus\n"), "{table}");

    // HTML: the portal's DNSSEC and DANE section, one row per MX host.
    let html = with("html");
    assert_eq!(
        html.matches("<section class=\"dnssec\">").count(),
        2,
        "{html}"
    );
    assert!(
        html.contains("<tr class=\"mx-dane\" data-host=\"mx.sec.test\"><td>mx.sec.test</td><td>signed, validates</td>"),
        "{html}"
    );
    assert!(
        html.contains("The domain's zone: bogus (validation fails)."),
        "{html}"
    );

    // Validation off: the columns stay, empty; no DNSSEC line.
    let off = run(&[
        "audit",
        "--no-store",
        "--no-policy-fetch",
        "--nameserver",
        &addr,
        "--no-dnssec",
        "--format",
        "table",
        "sec.test",
    ]);
    off.assert_code(0);
    assert!(!off.stdout.contains("DNSSEC:"), "{}", off.stdout);
}
