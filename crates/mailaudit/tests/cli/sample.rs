//! `audit --sample` in every format: the shape the contract promises (docs/json.md), then a
//! snapshot of the whole output, so that any change to what users and scripts see is reviewed.

use serde_json::Value;

use crate::common::{domain, domains, finding_ids, run};

/// The fifteen sample domains, in the order of testdata/zones/sample-fleet.zone.
const SAMPLE: [&str; 15] = [
    "contoso-legal.example",
    "fabrikam-dental.example",
    "northwind-logistics.example",
    "tailspin-realty.example",
    "adatum-clinic.example",
    "woodgrove-accounting.example",
    "litware-engineering.example",
    "proseware-insurance.example",
    "alpine-ski-house.example",
    "relecloud-manufacturing.example",
    "graphic-design-institute.example",
    "blue-yonder-airlines.example",
    "trey-research.example",
    "lucerne-publishing.example",
    "coho-winery.example",
];

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];
const AREAS: [&str; 7] = [
    "dmarc",
    "spf",
    "dkim",
    "connectors",
    "antispoof",
    "impersonation",
    "transport",
];

fn sample(format: &str) -> String {
    let out = run(&["audit", "--sample", "--format", format, "--color", "never"]);
    out.assert_code(0);
    out.stdout
}

#[test]
fn sample_fleet_is_what_the_lab_serves() {
    let (_, fleet) = mailaudit_lab::sample_fleet();
    assert_eq!(fleet, SAMPLE);
}

#[test]
fn json_follows_the_interface_contract() {
    let report: Value = serde_json::from_str(&sample("json")).expect("stdout is JSON");
    let list = report.as_array().expect("a JSON array");
    assert_eq!(list.len(), 15);
    assert_eq!(domains(&report), SAMPLE, "input order is kept");

    let ids: Vec<&str> = mailaudit_core::checks::CATALOGUE
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    for d in list {
        let name = d["domain"].as_str().unwrap_or("?");
        for key in [
            "domain", "provider", "findings", "spf", "dmarc", "dkim", "mx", "relay", "score",
        ] {
            assert!(d.get(key).is_some(), "{name}: key {key} missing");
        }
        assert!(
            ["m365", "google", "other", "none"].contains(&d["provider"].as_str().unwrap_or("")),
            "{name}: provider {}",
            d["provider"]
        );
        let lookup_failed = d["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["id"] == "DNS-LOOKUP-FAILED"));
        match d["score"].as_u64() {
            Some(score) => assert!(score <= 100 && !lookup_failed, "{name}: score {score}"),
            // A domain with a withheld verdict is not scored (it would look better than it is).
            None => assert!(
                d["score"].is_null() && lookup_failed,
                "{name}: score {}",
                d["score"]
            ),
        }
        for key in ["record", "lookups", "void_lookups", "all"] {
            assert!(d["spf"].get(key).is_some(), "{name}: spf.{key} missing");
        }
        for key in ["record", "policy"] {
            assert!(d["dmarc"].get(key).is_some(), "{name}: dmarc.{key} missing");
        }
        for sel in d["dkim"]["selectors"].as_array().expect("dkim.selectors") {
            for key in ["name", "cname", "key_bits"] {
                assert!(
                    sel.get(key).is_some(),
                    "{name}: dkim selector {key} missing"
                );
            }
        }
        for mx in d["mx"].as_array().expect("mx is an array") {
            assert!(mx["host"].is_string(), "{name}: mx host");
            assert!(mx["preference"].is_u64(), "{name}: mx preference");
        }
        assert_eq!(d["relay"]["verdict"], "not_tested", "{name}: relay verdict");
        assert!(d["relay"].get("reply").is_some(), "{name}: relay.reply");
        for f in d["findings"].as_array().expect("findings is an array") {
            for key in ["id", "area", "severity", "title", "detail"] {
                assert!(
                    f[key].is_string(),
                    "{name}: finding key {key} missing in {f}"
                );
            }
            let id = f["id"].as_str().unwrap_or("");
            assert!(ids.contains(&id), "{name}: unknown finding ID {id}");
            assert!(SEVERITIES.contains(&f["severity"].as_str().unwrap_or("")));
            assert!(
                AREAS.contains(&f["area"].as_str().unwrap_or("")),
                "{name}: area {}",
                f["area"]
            );
        }
    }

    // What the sample fleet demonstrates (testdata/zones/sample-fleet.zone).
    assert!(finding_ids(domain(&report, "contoso-legal.example")).is_empty());
    assert_eq!(domain(&report, "contoso-legal.example")["score"], 100);
    assert!(
        finding_ids(domain(&report, "fabrikam-dental.example")).contains(&"DMARC-MISSING".into())
    );
    assert!(finding_ids(domain(&report, "adatum-clinic.example")).contains(&"SPF-PASS-ALL".into()));
    let woodgrove = domain(&report, "woodgrove-accounting.example");
    assert!(finding_ids(woodgrove).contains(&"SPF-LOOKUP-LIMIT".into()));
    assert_eq!(woodgrove["spf"]["lookups"], 14);
    let trey = finding_ids(domain(&report, "trey-research.example"));
    assert!(trey.contains(&"DNS-LOOKUP-FAILED".into()));
    assert!(
        !trey.contains(&"DMARC-MISSING".into()),
        "SERVFAIL is not a missing record"
    );

    insta::assert_json_snapshot!("sample_json", report);
}

#[test]
fn json_is_the_same_on_every_run() {
    let first = sample("json");
    let second = sample("json");
    assert_eq!(first, second, "the sample report varies from run to run");
}

#[test]
fn table_snapshot() {
    let out = sample("table");
    assert!(
        !out.contains('\x1b'),
        "--color never writes no escape codes"
    );
    for d in SAMPLE {
        assert!(out.contains(d), "{d} is in the table");
    }
    let last = out.lines().rev().find(|l| l.starts_with("15 domains"));
    assert!(last.is_some(), "the table ends with the fleet summary");
    insta::assert_snapshot!("sample_table", out);
}

#[test]
fn table_color_always_paints() {
    let out = run(&["audit", "--sample", "--color", "always"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("\x1b["),
        "--color always writes escape codes"
    );
    // Colour off when the output is not a terminal (auto).
    let out = run(&["audit", "--sample"]);
    out.assert_code(0);
    assert!(!out.stdout.contains('\x1b'), "auto: no colour into a pipe");
}

#[test]
fn csv_snapshot() {
    let out = sample("csv");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(
            "domain,provider,score,spf_lookups,dmarc_policy,id,area,severity,title,detail,evidence,fix,dnssec,dane"
        )
    );
    // Every domain appears, in input order, once per finding (or once when it has none).
    let json: Value = serde_json::from_str(&sample("json")).expect("JSON");
    let mut reader = csv_rows(&out);
    let mut expected = Vec::new();
    for d in json.as_array().expect("array") {
        let name = d["domain"].as_str().expect("domain");
        let ids = finding_ids(d);
        if ids.is_empty() {
            expected.push((name.to_owned(), String::new()));
        }
        for id in ids {
            expected.push((name.to_owned(), id));
        }
    }
    let got: Vec<(String, String)> = reader
        .iter_mut()
        .map(|r| (r[0].clone(), r[5].clone()))
        .collect();
    assert_eq!(got, expected);
    for row in &reader {
        assert_eq!(row.len(), 14, "every row has 14 columns: {row:?}");
        // The sample is audited without validation: no DNSSEC or DANE cells.
        assert_eq!(row[12..], ["", ""], "{row:?}");
    }
    insta::assert_snapshot!("sample_csv", out);
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, newlines inside quotes), so that
/// the test does not trust the writer's own library to read its output back.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows.remove(0); // header
    rows
}

#[test]
fn html_is_self_contained() {
    let out = sample("html");
    assert!(
        out.starts_with("<!DOCTYPE html>"),
        "starts with the doctype"
    );
    assert!(out.trim_end().ends_with("</html>"), "ends with </html>");
    assert_eq!(
        out.matches("<section>").count(),
        15,
        "one section per domain"
    );
    assert_eq!(out.matches("</section>").count(), 15, "sections are closed");
    assert_eq!(
        out.matches("<table>").count(),
        out.matches("</table>").count()
    );
    let lower = out.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "no scripts");
    assert!(!lower.contains("<link"), "no linked stylesheets");
    assert!(!lower.contains("<img"), "no images");
    for attr in ["src=", "href=", "url("] {
        assert!(!lower.contains(attr), "no external asset ({attr})");
    }
    for d in SAMPLE {
        assert!(out.contains(&format!("<h2>{d} ")), "{d} has a heading");
    }
    // Record text is escaped: the DMARC fix's quotes never appear raw inside markup.
    assert!(out.contains("TXT &quot;v=DMARC1"));
    // A forwarded report says when the audit ran: today's date (UTC), in the heading and the
    // footer.
    let audited = out
        .split("Audited on <time datetime=\"")
        .nth(1)
        .and_then(|rest| rest.split_once('"'))
        .map(|(iso, _)| iso.to_string())
        .expect("the report shows the audit date");
    let today = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .expect("date runs");
    let today = String::from_utf8_lossy(&today.stdout).trim().to_string();
    assert!(
        audited.starts_with(&format!("{today}T")) && audited.ends_with(":00Z"),
        "audit date {audited:?} is today ({today})"
    );
    let shown = audited.trim_end_matches(":00Z").replace('T', " ");
    assert_eq!(out.matches(&format!("{shown} UTC")).count(), 2, "{out}");
    // The version and the date change; the snapshot should not.
    let out = out
        .replace(
            &format!("mailaudit {}", env!("CARGO_PKG_VERSION")),
            "mailaudit [VERSION]",
        )
        .replace(&audited, "[DATE]")
        .replace(&shown, "[DATE]");
    insta::assert_snapshot!("sample_html", out);
}

/// The fleet summary says what each count counts (domains), so that none reads as a number of
/// findings; so does the line by severity.
#[test]
fn fleet_summary_counts_domains_and_says_so() {
    let out = sample("table");
    let summary = out
        .lines()
        .find(|l| l.starts_with("15 domains"))
        .expect("the summary line");
    let (head, counts) = summary.split_once(": ").expect("counts after the head");
    // One sample domain's look-ups fail: it is audited, not scored.
    assert_eq!(
        head,
        "15 domains audited (average score 73 over the 14 scored)"
    );
    for part in counts.split(", ") {
        let (n, rest) = part.split_once(' ').expect("a number and a phrase");
        assert!(n.parse::<u64>().is_ok(), "{part}");
        let unit = if n == "1" { "domain " } else { "domains " };
        assert!(rest.starts_with(unit), "{part:?} does not say domains");
    }
    assert!(counts.starts_with("2 domains without DMARC, 3 domains with DMARC p=none, "));
    assert!(counts.contains("1 domain with SPF ~all"), "{counts}");
    let by_severity = out
        .lines()
        .skip_while(|l| *l != summary)
        .nth(1)
        .expect("the line by severity");
    assert!(
        by_severity.starts_with("3 domains with a critical finding, 8 with a high one, "),
        "{by_severity}"
    );
}
