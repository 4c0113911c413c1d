//! A domain that does not exist (NXDOMAIN at its name, a typo such as `contosso.test`) is
//! reported as DOMAIN-NOT-FOUND alone, with no score, in every format, in the store and the
//! guide; it is not probed. A domain that exists without an MX (NODATA) is audited as usual.

use std::net::TcpListener;

use serde_json::Value;

use crate::common::{Lab, domain, finding_ids, run};

/// `contoso.test` exists (the real one); `a-only.test` exists with nothing but an A record;
/// `contosso.test` (the typo) does not.
const ZONE: &str = r#"
contoso.test MX 10 contoso-test.mail.protection.outlook.com
contoso.test TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.contoso.test TXT "v=DMARC1; p=reject; rua=mailto:dmarc@contoso.test"
contoso-test.mail.protection.outlook.com A 127.0.0.1
spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 -all"
a-only.test A 192.0.2.80
"#;

fn audit(lab: &Lab, extra: &[&str]) -> crate::common::Output {
    let mut args = vec![
        "audit",
        "--nameserver",
        lab.addr(),
        "--no-store",
        "--no-policy-fetch",
    ];
    args.extend(extra);
    run(&args)
}

#[test]
fn a_domain_that_does_not_exist_is_domain_not_found_alone_with_no_score() {
    let lab = Lab::start(ZONE);
    let out = audit(
        &lab,
        &[
            "--format",
            "json",
            "contosso.test",
            "contoso.test",
            "a-only.test",
        ],
    );
    out.assert_code(0);
    let report = out.json();
    let typo = domain(&report, "contosso.test");
    assert_eq!(finding_ids(typo), ["DOMAIN-NOT-FOUND"], "{typo:#}");
    assert_eq!(typo["score"], Value::Null, "{typo:#}");
    let f = &typo["findings"][0];
    assert_eq!(
        (f["severity"].as_str(), f["area"].as_str()),
        (Some("high"), Some("transport"))
    );
    assert!(
        f["detail"]
            .as_str()
            .is_some_and(|d| d.contains("contosso.test")),
        "{f}"
    );
    assert_eq!(typo["mx"], serde_json::json!([]));
    assert_eq!(typo["dmarc"]["policy"], Value::Null);

    // The real domain, in the same run: audited as usual.
    let real = domain(&report, "contoso.test");
    let ids = finding_ids(real);
    assert!(!ids.contains(&"DOMAIN-NOT-FOUND".to_string()), "{ids:?}");
    assert_eq!(real["dmarc"]["policy"], "reject");
    assert!(real["score"].is_u64(), "{real:#}");

    // Exists without an MX (NODATA for MX): not "not found".
    let a_only = domain(&report, "a-only.test");
    let ids = finding_ids(a_only);
    assert!(!ids.contains(&"DOMAIN-NOT-FOUND".to_string()), "{ids:?}");
    assert!(ids.contains(&"MX-MISSING".to_string()), "{ids:?}");
    assert!(ids.contains(&"DMARC-MISSING".to_string()), "{ids:?}");
    assert!(a_only["score"].is_u64(), "{a_only:#}");

    // A high finding: --fail-on high trips on it.
    audit(
        &lab,
        &["--format", "json", "--fail-on", "high", "contosso.test"],
    )
    .assert_code(1);
}

#[test]
fn every_format_says_the_domain_does_not_exist() {
    let lab = Lab::start(ZONE);
    let table = audit(&lab, &["--color", "never", "contosso.test"]);
    table.assert_code(0);
    assert!(
        table.stdout.contains(
            "contosso.test  ·  does not exist (NXDOMAIN)  ·  no score (the domain does not exist)"
        ),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("DOMAIN-NOT-FOUND"),
        "{}",
        table.stdout
    );
    for absent in ["DMARC-MISSING", "SPF-MISSING", "MX-MISSING", "no MX"] {
        assert!(!table.stdout.contains(absent), "{absent}: {}", table.stdout);
    }
    assert!(
        table.stdout.contains("1 domain not found (NXDOMAIN)"),
        "the summary counts it: {}",
        table.stdout
    );

    let csv = audit(&lab, &["--format", "csv", "contosso.test"]);
    csv.assert_code(0);
    let rows: Vec<&str> = csv.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", csv.stdout);
    let cols: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(cols[0], "contosso.test");
    assert_eq!(cols[2], "", "no score: {}", rows[0]);
    assert_eq!(cols[5], "DOMAIN-NOT-FOUND", "{}", rows[0]);

    let html = audit(&lab, &["--format", "html", "contosso.test"]);
    html.assert_code(0);
    assert!(
        html.stdout.contains("no score (the domain does not exist)"),
        "{}",
        html.stdout
    );
    assert!(html.stdout.contains("DOMAIN-NOT-FOUND"));
}

#[test]
fn the_store_and_the_guide_say_it_does_not_exist() {
    let lab = Lab::start(ZONE);
    let db = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", db.path().join("store.db").display());
    run(&["domain", "add", "contosso.test", "--db", &url]).assert_code(0);
    let out = run(&[
        "audit",
        "--db",
        &url,
        "--nameserver",
        lab.addr(),
        "--no-policy-fetch",
        "--format",
        "json",
    ]);
    out.assert_code(0);
    assert_eq!(finding_ids(&out.json()[0]), ["DOMAIN-NOT-FOUND"]);

    let guide = run(&["guide", "contosso.test", "--db", &url]);
    guide.assert_code(0);
    assert!(guide.stdout.contains("does not exist"), "{}", guide.stdout);
    for proposal in ["v=DMARC1", "v=spf1", "_domainkey", "Priority"] {
        assert!(
            !guide.stdout.contains(proposal),
            "{proposal}: {}",
            guide.stdout
        );
    }
    let history = run(&["history", "contosso.test", "--db", &url, "--format", "json"]);
    history.assert_code(0);
    let h = history.json();
    assert_eq!(h.as_array().map(Vec::len), Some(1), "{h:#}");
    assert_eq!(h[0]["score"], Value::Null, "{h:#}");
}

/// The relay test does not connect anywhere for a domain that does not exist, even when the
/// host to probe is given with --mx.
#[test]
fn a_domain_that_does_not_exist_is_not_probed() {
    let lab = Lab::start(ZONE);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    let out = run(&[
        "relay-test",
        "contosso.test",
        "--nameserver",
        lab.addr(),
        "--mx",
        "127.0.0.1",
        "--smtp-port",
        &port,
        "--smtp-timeout",
        "2",
    ]);
    out.assert_code(2);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert!(listener.accept().is_err(), "no connection was made");
}
