//! A DNS failure (SERVFAIL, timeout) is reported as DNS-LOOKUP-FAILED, never as a missing
//! record, and never stops the run.

use serde_json::Value;

use crate::common::{Lab, Silent, domain, domains, finding_ids, run};

/// Finding IDs that claim something is absent: never raised from a look-up that failed.
const ABSENCE: [&str; 5] = [
    "-MISSING",
    "-NOT-FOUND",
    "-NOT-ENABLED",
    "-UNRESOLVABLE",
    "-PARTIAL",
];

fn findings_of<'a>(d: &'a Value, id: &str) -> Vec<&'a Value> {
    d["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["id"] == id)
        .collect()
}

#[test]
fn dmarc_servfail_is_a_lookup_failure_not_a_missing_record() {
    let lab = Lab::start(
        r#"
        servfail.test          MX   0 servfail-test.mail.protection.outlook.com
        servfail.test          TXT  "v=spf1 include:spf.protection.outlook.com -all"
        _dmarc.servfail.test   SERVFAIL
        spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 -all"
        "#,
    );
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--format",
        "json",
        "servfail.test",
    ]);
    out.assert_code(0);
    let report = out.json();
    let d = domain(&report, "servfail.test");
    let ids = finding_ids(d);
    assert!(!ids.contains(&"DMARC-MISSING".to_string()), "{ids:?}");
    let failed = findings_of(d, "DNS-LOOKUP-FAILED");
    assert!(
        failed.iter().any(|f| f["area"] == "dmarc"),
        "a DNS-LOOKUP-FAILED finding in area dmarc: {ids:?}"
    );
    let dmarc_failure = failed
        .iter()
        .find(|f| f["area"] == "dmarc")
        .expect("dmarc failure");
    assert_eq!(dmarc_failure["severity"], "info");
    assert!(
        dmarc_failure["detail"]
            .as_str()
            .is_some_and(|s| s.contains("_dmarc.servfail.test")),
        "the detail names the record: {dmarc_failure}"
    );
    // No other DMARC verdict is given on a record that could not be read.
    assert!(
        ids.iter().all(|id| !id.starts_with("DMARC-")),
        "DMARC verdict withheld: {ids:?}"
    );
    assert_eq!(d["dmarc"]["policy"], Value::Null);
    // SPF was read normally.
    assert_eq!(d["spf"]["all"], "-all");
}

/// Every query goes to a socket that never answers: the run still finishes, and every check that
/// needed DNS reports a lookup failure rather than a missing record.
#[test]
fn silent_nameserver_gives_lookup_failures_never_missing() {
    let silent = Silent::bind();
    let ns = silent.addr();
    let out = run(&[
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--format",
        "json",
        "contoso.example",
        "fabrikam.example",
    ]);
    assert!(
        out.elapsed.as_secs() < 30,
        "the run finished in {:?}",
        out.elapsed
    );
    assert_ne!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(domains(&report), ["contoso.example", "fabrikam.example"]);
    for d in report.as_array().expect("array") {
        let ids = finding_ids(d);
        assert!(
            ids.contains(&"DNS-LOOKUP-FAILED".to_string()),
            "{}: {ids:?}",
            d["domain"]
        );
        for id in &ids {
            assert!(
                id == "DNS-LOOKUP-FAILED",
                "{}: only lookup failures can be known, got {id}",
                d["domain"]
            );
        }
        let areas: Vec<&str> = d["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["area"].as_str())
            .collect();
        for area in ["spf", "dmarc"] {
            assert!(areas.contains(&area), "{}: {areas:?}", d["domain"]);
        }
    }
}

/// The same through the table: no "No DMARC"/"No SPF" text for a domain that could not be read.
#[test]
fn silent_nameserver_table_says_lookup_failed() {
    let silent = Silent::bind();
    let ns = silent.addr();
    let out = run(&[
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--color",
        "never",
        "contoso.example",
    ]);
    assert_ne!(out.code, 1);
    assert!(out.stdout.contains("DNS-LOOKUP-FAILED"), "{}", out.stdout);
    assert!(!out.stdout.contains("-MISSING"), "{}", out.stdout);
    assert!(
        out.stdout.contains("with failed DNS look-ups"),
        "the summary counts it: {}",
        out.stdout
    );
}

/// SERVFAIL and REFUSED on each record the audit reads, one at a time, on a domain that is
/// otherwise the sample's hardened contoso-legal.example: never a *-MISSING finding.
#[test]
fn each_failing_name_is_a_lookup_failure() {
    let names = [
        "contoso-legal.example",
        "_dmarc.contoso-legal.example",
        "selector1._domainkey.contoso-legal.example",
        "_mta-sts.contoso-legal.example",
        "_smtp._tls.contoso-legal.example",
    ];
    for behaviour in ["SERVFAIL", "REFUSED", "TIMEOUT"] {
        for name in names {
            let (mut zone, _) = mailaudit_lab::sample_fleet();
            zone.remove(name);
            zone.merge(
                mailaudit_lab::Zone::parse(&format!("{name} {behaviour}")).expect("zone line"),
            );
            let lab = Lab::start(&zone.to_string());
            let out = run(&[
                "audit",
                "--nameserver",
                lab.addr(),
                "--timeout",
                "0.3",
                "--retries",
                "0",
                "--format",
                "json",
                "contoso-legal.example",
            ]);
            out.assert_code(0);
            let report = out.json();
            let ids = finding_ids(&report[0]);
            assert!(
                ids.contains(&"DNS-LOOKUP-FAILED".to_string()),
                "{behaviour} at {name}: {ids:?}"
            );
            for id in &ids {
                assert!(
                    !ABSENCE.iter().any(|suffix| id.ends_with(suffix)),
                    "{behaviour} at {name}: {id} in {ids:?}"
                );
            }
        }
    }
}

/// A domain whose every look-up failed has not been audited: it must not look hardened.
#[test]
fn unreadable_domain_does_not_score_100() {
    let silent = Silent::bind();
    let ns = silent.addr();
    let out = run(&[
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--format",
        "json",
        "contoso.example",
    ]);
    let report = out.json();
    assert_ne!(report[0]["score"], 100, "{}", report[0]);
}

/// When the MX look-up fails, the provider is unknown: neither the JSON nor the table may claim
/// the domain has no MX.
#[test]
fn failed_mx_is_not_reported_as_no_mx() {
    let silent = Silent::bind();
    let ns = silent.addr();
    let args = [
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--color",
        "never",
        "contoso.example",
    ];
    let table = run(&args);
    assert!(!table.stdout.contains("no MX"), "{}", table.stdout);
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let report = run(&json_args).json();
    assert_ne!(report[0]["provider"], "none", "{}", report[0]);
}
