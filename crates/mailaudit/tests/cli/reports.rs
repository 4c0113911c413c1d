//! `mailaudit reports parse`: the sample reports of `testdata/reports/` (parsedmarc's, Apache-2.0)
//! read through the binary, containers included, and bad input reported without stopping.

use serde_json::Value;

use crate::common::{Lab, run};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/reports");

fn parse(args: &[&str]) -> (i32, Vec<Value>, String) {
    let mut all = vec!["reports", "parse"];
    all.extend_from_slice(args);
    let out = run(&all);
    let docs: Vec<Value> = serde_json::from_str(&out.stdout).expect("a JSON array");
    (out.code, docs, out.stderr)
}

fn of_type<'a>(docs: &'a [Value], t: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["type"] == t && d.get("report").is_some())
        .collect()
}

#[test]
fn every_sample_is_read_as_its_kind() {
    let (code, docs, stderr) = parse(&[SAMPLES]);
    // empty.xml is refused; the two documentation files beside the samples (NOTICE,
    // SOURCE.md) are passed over with a note; the rest is read.
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("empty.xml"), "{stderr}");
    for doc in ["NOTICE", "SOURCE.md"] {
        assert!(
            stderr.contains(&format!(
                "{doc}: a documentation file, not a report; skipped"
            )),
            "{stderr}"
        );
    }
    let aggregate = of_type(&docs, "aggregate");
    // 13 aggregate samples (two of them in .gz/.zip), the upper-cased one, and 4 copies of one
    // report in extract_report/ (plain, changed, .gz, .zip).
    assert_eq!(aggregate.len(), 18, "{docs:#?}");
    assert_eq!(of_type(&docs, "failure").len(), 5);
    assert_eq!(of_type(&docs, "smtp_tls").len(), 5);
    // The same Google report in three containers reads the same.
    let google: Vec<&&Value> = aggregate
        .iter()
        .filter(|d| {
            d["source"]
                .as_str()
                .is_some_and(|s| s.contains("nice-input"))
        })
        .collect();
    assert_eq!(google.len(), 3);
    for g in &google {
        assert_eq!(
            g["report"]["records"].as_array().map(Vec::len),
            Some(20),
            "{}",
            g["source"]
        );
        assert_eq!(g["report"], google[0]["report"], "{}", g["source"]);
    }
}

#[test]
fn mixed_case_words_are_problems_in_strict_mode() {
    let file = format!("{SAMPLES}/aggregate_invalid/report_with_upper_cased_pass.xml");
    let (code, docs, _) = parse(&[&file]);
    assert_eq!(code, 0);
    let row = &docs[0]["report"]["records"][0]["row"]["policy_evaluated"];
    assert_eq!(row["dkim"], "pass", "lower-cased: {row}");
    let (strict_code, strict, _) = parse(&["--strict", &file]);
    assert_eq!(strict_code, 2, "strict mode fails on deviations");
    assert!(
        strict[0]["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["level"] == "error")),
        "{:#?}",
        strict[0]["problems"]
    );
}

#[test]
fn junk_and_hostile_files_are_errors_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("junk.bin"), [0u8, 159, 146, 150, 1, 2, 3]).expect("write");
    std::fs::write(
        dir.path().join("xxe.xml"),
        r#"<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feedback>&xxe;</feedback>"#,
    )
    .expect("write");
    std::fs::copy(
        format!("{SAMPLES}/aggregate/example.net!example.com!1529366400!1529452799.xml"),
        dir.path().join("good.xml"),
    )
    .expect("copy");
    let (code, docs, stderr) = parse(&[dir.path().to_str().expect("UTF-8")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("junk.bin") && stderr.contains("xxe.xml"),
        "{stderr}"
    );
    assert!(
        !serde_json::to_string(&docs)
            .expect("json")
            .contains("root:"),
        "no entity was expanded"
    );
    assert_eq!(
        of_type(&docs, "aggregate").len(),
        1,
        "the good report is still read"
    );
}

#[test]
fn documentation_beside_reports_is_noted_not_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("README.md"), "# DMARC reports of March\n").expect("write");
    std::fs::write(dir.path().join("NOTICE"), "Reports by example.net\n").expect("write");
    std::fs::write(
        dir.path().join(".DS_Store"),
        [0u8, 0, 0, 1, 66, 117, 100, 49],
    )
    .expect("write");
    std::fs::copy(
        format!("{SAMPLES}/aggregate/example.net!example.com!1529366400!1529452799.xml"),
        dir.path().join("good.xml"),
    )
    .expect("copy");
    let (code, docs, stderr) = parse(&[dir.path().to_str().expect("UTF-8")]);
    assert_eq!(code, 0, "notes are not errors: {stderr}");
    assert_eq!(of_type(&docs, "aggregate").len(), 1);
    assert_eq!(docs.len(), 1, "nothing else is output: {docs:#?}");
    assert!(
        stderr.contains("README.md: a documentation file, not a report; skipped")
            && stderr.contains("NOTICE: a documentation file, not a report; skipped")
            && stderr.contains(".DS_Store: a hidden file, not a report; skipped"),
        "{stderr}"
    );
    // Named on the command line, a file is always read: a README given as a report is an error.
    let readme = dir.path().join("README.md");
    let (code, _, stderr) = parse(&[readme.to_str().expect("UTF-8")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("README.md"), "{stderr}");
}

#[test]
fn ingest_deduplicates_and_summary_judges_readiness() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let first = run(&["reports", "ingest", "--db", &db, SAMPLES]);
    assert_eq!(
        first.code, 2,
        "empty.xml and the text files are not reports: {}",
        first.stderr
    );
    // The Google report comes in three containers: stored once.
    assert!(
        first
            .stdout
            .starts_with("25 reports stored, 3 duplicates skipped"),
        "{}",
        first.stdout
    );
    let again = run(&["reports", "ingest", "--db", &db, SAMPLES]);
    assert!(
        again
            .stdout
            .starts_with("0 reports stored, 28 duplicates skipped"),
        "{}",
        again.stdout
    );

    let out = run(&[
        "reports",
        "summary",
        "example.com",
        "--db",
        &db,
        "--since",
        "5000d",
        "--no-rdns",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        v["summary"]["volume"], 6111,
        "messages of every aggregate sample for example.com"
    );
    assert_eq!(v["readiness"]["ready"], true, "{}", v["readiness"]);
    assert_eq!(v["readiness"]["next"], "quarantine");
    // example.com's SMTP TLS reports: three samples, five failed sessions, no successes.
    assert_eq!(v["tls"]["reports"], 3, "{}", v["tls"]);
    assert_eq!(
        (v["tls"]["successful"].as_u64(), v["tls"]["failed"].as_u64()),
        (Some(0), Some(5))
    );

    // RFC 8460's example report: sessions by policy, failure type and sending MTA.
    let args = |format| {
        run(&[
            "reports",
            "summary",
            "company-y.example",
            "--db",
            &db,
            "--since",
            "5000d",
            "--no-rdns",
            "--format",
            format,
        ])
    };
    let json = args("json");
    assert_eq!(json.code, 0, "{}", json.stderr);
    let tls = serde_json::from_str::<Value>(&json.stdout).expect("JSON")["tls"].clone();
    assert_eq!(
        (tls["successful"].as_u64(), tls["failed"].as_u64()),
        (Some(5326), Some(303))
    );
    assert_eq!(tls["policies"][0]["policy_type"], "sts");
    let types: Vec<(String, u64)> = tls["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["result_type"].as_str().unwrap().to_string(),
                f["sessions"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("starttls-not-supported".to_string(), 200),
            ("certificate-expired".to_string(), 100),
            ("validation-failure".to_string(), 3)
        ]
    );
    assert_eq!(
        tls["sending_mtas"][0]["sending_mta_ip"],
        "2001:db8:abcd:13::1"
    );
    assert_eq!(tls["sending_mtas"].as_array().unwrap().len(), 3);
    let text = args("text");
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("SMTP TLS reports: 1 from Company-X; 5629 sessions, 303 failed (5%)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("certificate-expired"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("2001:db8:abcd:13::1"),
        "{}",
        text.stdout
    );
}

/// `reports summary DOMAIN --since 30d --format json` of the store `db` (no reverse DNS).
fn summary_json(db: &str, domain: &str) -> Value {
    let out = run(&[
        "reports",
        "summary",
        domain,
        "--db",
        db,
        "--since",
        "30d",
        "--no-rdns",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("JSON")
}

/// A one-record aggregate report for `domain` beginning `days_ago` days before now.
fn aggregate_xml(
    domain: &str,
    id: &str,
    days_ago: i64,
    ip: &str,
    count: u32,
    dkim: &str,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let begin = (now - days_ago * 86_400).div_euclid(86_400) * 86_400;
    let aligned = if dkim == domain { "pass" } else { "fail" };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata><org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email>
    <report_id>{id}</report_id><date_range><begin>{begin}</begin><end>{end}</end></date_range></report_metadata>
  <policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>
  <record>
    <row><source_ip>{ip}</source_ip><count>{count}</count>
      <policy_evaluated><disposition>none</disposition><dkim>{aligned}</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><dkim><domain>{dkim}</domain><result>pass</result></dkim>
      <spf><domain>bounce.{dkim}</domain><result>pass</result></spf></auth_results>
  </record>
</feedback>
"#,
        end = begin + 86_399
    )
}

#[test]
fn guide_and_checklist_use_the_reports_readiness() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let domain = "tailspin-realty.example"; // p=none in the sample fleet
    let lab = Lab::sample_plus("");
    let out = run(&[
        "audit",
        domain,
        "--nameserver",
        lab.addr(),
        "--no-policy-fetch",
        "--db",
        &db,
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let checklist = |db: &str| run(&["checklist", domain, "--db", db]).stdout;
    assert!(
        checklist(&db).contains("reports: none stored for the last 30 days"),
        "{}",
        checklist(&db)
    );

    // Three weeks of Microsoft 365 mail, DKIM-aligned: ready for quarantine.
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    for day in 1..=21 {
        let xml = aggregate_xml(
            domain,
            &format!("m365-{day}"),
            day,
            "40.107.1.1",
            20,
            domain,
        );
        std::fs::write(reports.join(format!("m365-{day}.xml")), xml).unwrap();
    }
    let ingest = |db: &str| run(&["reports", "ingest", "--db", db, reports.to_str().unwrap()]);
    assert_eq!(ingest(&db).code, 0);
    let list = checklist(&db);
    assert!(
        list.contains("reports: ready for p=quarantine (420 messages over 21.0 days"),
        "{list}"
    );
    let guide = run(&["guide", domain, "--db", &db]);
    assert_eq!(guide.code, 0, "{}", guide.stderr);
    assert!(
        guide
            .stdout
            .contains("The aggregate reports support the move to p=quarantine: 420 messages"),
        "{}",
        guide.stdout
    );

    // A marketing service sending every day without aligned DKIM: not ready, and the guide says why.
    for day in 1..=10 {
        let xml = aggregate_xml(
            domain,
            &format!("esp-{day}"),
            day,
            "198.51.100.20",
            30,
            "mcsv.net",
        );
        std::fs::write(reports.join(format!("esp-{day}.xml")), xml).unwrap();
    }
    assert_eq!(ingest(&db).code, 0);
    let list = checklist(&db);
    assert!(
        list.contains("reports: not ready for p=quarantine: "),
        "{list}"
    );
    let guide = run(&["guide", domain, "--db", &db]).stdout;
    assert!(
        guide.contains("The aggregate reports do not support the move to p=quarantine yet: ")
            && guide.contains("Mailchimp"),
        "{guide}"
    );
}

#[test]
fn a_file_over_the_time_limit_is_skipped_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A 10 MB report (30,000 records): far more than 0.2 s for a debug build to read.
    let record = "<record><row><source_ip>192.0.2.1</source_ip><count>1</count>\
        <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>\
        </policy_evaluated></row><identifiers><header_from>contoso.example</header_from>\
        </identifiers><auth_results><dkim><domain>contoso.example</domain><result>pass</result>\
        </dkim><spf><domain>contoso.example</domain><result>pass</result></spf></auth_results>\
        </record>\n";
    let big = format!(
        "<feedback><report_metadata><org_name>big</org_name><email>a@b.example</email>\
         <report_id>big-1</report_id><date_range><begin>1700000000</begin><end>1700086399</end>\
         </date_range></report_metadata><policy_published><domain>contoso.example</domain>\
         <p>none</p></policy_published>{}</feedback>",
        record.repeat(30_000)
    );
    std::fs::write(dir.path().join("a-big.xml"), big).unwrap();
    std::fs::copy(
        format!("{SAMPLES}/aggregate/example.net!example.com!1529366400!1529452799.xml"),
        dir.path().join("b-small.xml"),
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let (code, docs, stderr) = parse(&[path, "--max-seconds-per-file", "0.2"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "a-big.xml: took longer than 0.2 s to read (--max-seconds-per-file); skipped"
        ),
        "{stderr}"
    );
    assert_eq!(
        docs[0]["error"].as_str().map(|e| e.contains("took longer")),
        Some(true)
    );
    assert_eq!(
        of_type(&docs, "aggregate").len(),
        1,
        "the small report is still read"
    );
    // Without a limit the big one is read too.
    let (code, docs, stderr) = parse(&[path, "--max-seconds-per-file", "0"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(of_type(&docs, "aggregate").len(), 2);

    // `reports ingest` (its files read on several threads) bounds each file the same way.
    let store = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", store.path().display());
    let ingest = |limit| {
        run(&[
            "reports",
            "ingest",
            "--db",
            &db,
            path,
            "--max-seconds-per-file",
            limit,
        ])
    };
    let out = ingest("0.2");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "a-big.xml: took longer than 0.2 s to read (--max-seconds-per-file); skipped"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .starts_with("1 reports stored, 0 duplicates skipped, 1 inputs not read"),
        "{}",
        out.stdout
    );
    let out = ingest("0");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("1 reports stored, 1 duplicates skipped, 0 inputs not read"),
        "{}",
        out.stdout
    );
}

/// A report the store refuses (a policy domain that is no domain name, as anyone may mail to a
/// report address) is named and counted; the reports before and after it are stored. (Before
/// batched ingest, this stopped the whole run at the bad file.)
#[test]
fn a_report_the_store_refuses_is_named_and_the_rest_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let files = [
        (
            "a.xml",
            aggregate_xml("contoso.example", "a", 2, "192.0.2.1", 5, "contoso.example"),
        ),
        (
            "b.xml",
            aggregate_xml("exa mple..com", "b", 2, "192.0.2.2", 5, "contoso.example"),
        ),
        (
            "c.xml",
            aggregate_xml("contoso.example", "c", 1, "192.0.2.3", 7, "contoso.example"),
        ),
        // No white space, so it passed the store's old check and was stored.
        (
            "d.xml",
            aggregate_xml(
                "&lt;script&gt;alert(1)&lt;/script&gt;",
                "d",
                1,
                "192.0.2.4",
                9,
                "contoso.example",
            ),
        ),
    ];
    for (name, xml) in &files {
        std::fs::write(inputs.join(name), xml).unwrap();
    }
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let out = run(&["reports", "ingest", "--db", &db, inputs.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("2 reports stored, 0 duplicates skipped, 2 inputs not read"),
        "{}",
        out.stdout
    );
    for name in ["b.xml", "d.xml"] {
        let path = inputs.join(name).display().to_string();
        assert!(
            out.stderr
                .contains(&format!("{path}: not stored: invalid: domain name")),
            "{name}: {}",
            out.stderr
        );
    }
    let list = run(&["reports", "list", "--db", &db, "--format", "json"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(!list.stdout.contains("script"), "{}", list.stdout);
    let v = summary_json(&db, "contoso.example");
    assert_eq!(
        v["summary"]["volume"], 12,
        "a.xml and c.xml: {}",
        v["summary"]
    );
}

/// `reports ingest` reads files on several threads but stores and reports them in input order:
/// a large file first (done last) does not move the messages about the broken files after it.
#[test]
fn ingest_reports_in_input_order_whatever_the_threads_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    // The store refuses it (no domain name), but only once all of it is read: its message
    // comes last in time and must still come first.
    let one = aggregate_xml("exa mple..com", "big", 3, "192.0.2.1", 1, "contoso.example");
    let (head, rest) = one.split_at(one.find("  <record>").unwrap());
    let (record, tail) = rest.split_at(rest.find("</feedback>").unwrap());
    std::fs::write(
        inputs.join("00-big.xml"),
        format!("{head}{}{tail}", record.repeat(40_000)),
    )
    .unwrap();
    let mut broken = vec![inputs.join("00-big.xml").display().to_string()];
    for i in 1..40 {
        let name = format!("{i:02}-report.xml");
        if i % 7 == 0 {
            std::fs::write(inputs.join(&name), "not a report at all\n").unwrap();
            broken.push(inputs.join(&name).display().to_string());
        } else {
            let id = format!("r{i}");
            let xml = aggregate_xml("contoso.example", &id, 2, "192.0.2.2", 1, "contoso.example");
            std::fs::write(inputs.join(&name), xml).unwrap();
        }
    }
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let input = inputs.to_str().unwrap();
    let out = run(&["reports", "ingest", "--db", &db, input]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("34 reports stored, 0 duplicates skipped, 6 inputs not read"),
        "{}",
        out.stdout
    );
    let named: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| {
            broken
                .iter()
                .find(|b| l.contains(b.as_str()))
                .map(|b| b.as_str())
        })
        .collect();
    assert_eq!(named, broken, "{}", out.stderr);
    let v = summary_json(&db, "contoso.example");
    assert_eq!(v["summary"]["volume"], 34, "{}", v["summary"]);
}

/// `reports list` shows what `reports ingest` stored, and `reports raw ID` gives back each
/// file exactly as it was read, whether the store compressed it (XML) or kept it as it was
/// (`.gz`, `.zip`); `--output` refuses to overwrite; an unknown id is an error.
#[test]
fn list_and_raw_give_back_each_stored_file_as_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let ingest = run(&["reports", "ingest", "--db", &db, SAMPLES]);
    assert!(
        ingest.stdout.starts_with("25 reports stored"),
        "{}",
        ingest.stdout
    );
    let list = run(&[
        "reports", "list", "--db", &db, "--limit", "100", "--format", "json",
    ]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let reports = list.json();
    let reports = reports.as_array().expect("an array");
    assert_eq!(reports.len(), 25);
    let mut checked = std::collections::BTreeSet::new();
    for r in reports {
        // `FILE` or `FILE:DOCUMENT` (a report inside a container). A file holding one report
        // keeps the whole file; a message with several parts keeps each report's own bytes.
        let label = r["source"].as_str().unwrap();
        let source = label.split(':').next().unwrap();
        if label.contains(':') && source.ends_with(".eml") {
            continue;
        }
        let id = r["id"].as_i64().unwrap().to_string();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailaudit"))
            .args(["--db", &db, "reports", "raw", &id])
            .env("XDG_DATA_HOME", crate::common::data_home())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, std::fs::read(source).unwrap(), "{source}");
        checked.insert(source.rsplit('.').next().unwrap().to_string());
    }
    // Stored compressed (.xml, .json) and as read (.gz, .zip) alike.
    for ext in ["xml", "gz", "zip", "json"] {
        assert!(checked.contains(ext), "{checked:?}");
    }

    // --domain filters; the text form names the file.
    let text = run(&["reports", "list", "--db", &db, "--domain", "Example.COM."]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.lines().count() >= 5, "{}", text.stdout);
    assert!(
        text.stdout.lines().all(|l| l.contains("example.com")),
        "{}",
        text.stdout
    );

    let first = reports[0]["id"].as_i64().unwrap().to_string();
    let file = dir.path().join("out.bin");
    let path = file.to_str().unwrap();
    let out = run(&["reports", "raw", "--db", &db, &first, "--output", path]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!std::fs::read(&file).unwrap().is_empty());
    let again = run(&["reports", "raw", "--db", &db, &first, "--output", path]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("cannot create"), "{}", again.stderr);
    let missing = run(&["reports", "raw", "--db", &db, "99999"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("report 99999 not found"),
        "{}",
        missing.stderr
    );
}

/// A gzip stream truncated (its trailer lost, as a gateway vendor's reporter sends them) or
/// followed by junk: `reports parse` and `reports ingest` recover the report with a warning
/// naming what was wrong; `--strict` refuses the file. (Before: "corrupt gzip data: unexpected
/// end of file", whatever the mode.)
#[test]
fn a_truncated_gzip_report_is_recovered_unless_strict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gz = std::fs::read(format!("{SAMPLES}/extract_report/nice-input.xml.gz")).unwrap();
    let xml_len = std::fs::read(format!("{SAMPLES}/extract_report/nice-input.xml"))
        .unwrap()
        .len();
    let truncated = dir.path().join("truncated.xml.gz");
    std::fs::write(&truncated, &gz[..gz.len() - 8]).unwrap();
    let mut with_junk = gz.clone();
    with_junk.extend_from_slice(b"<html>junk</html>");
    let junk = dir.path().join("junk.xml.gz");
    std::fs::write(&junk, &with_junk).unwrap();

    for (path, message) in [
        (
            &truncated,
            format!("gzip stream truncated after {xml_len} bytes"),
        ),
        (&junk, "17 bytes of junk after the gzip member".into()),
    ] {
        let p = path.to_str().unwrap();
        let (code, docs, stderr) = parse(&[p]);
        assert_eq!(code, 0, "{p}: {stderr}");
        let agg = of_type(&docs, "aggregate");
        assert_eq!(agg.len(), 1, "{docs:?}");
        assert_eq!(agg[0]["report"]["records"].as_array().unwrap().len(), 20);
        let problem = &agg[0]["problems"][0];
        assert_eq!(problem["level"], "warning", "{problem}");
        let m = problem["message"].as_str().unwrap();
        assert!(m.ends_with(": recovered") || m.ends_with(" ignored"), "{m}");
        assert!(
            problem["message"].as_str().unwrap().starts_with(&message),
            "{problem}"
        );

        let (code, docs, stderr) = parse(&[p, "--strict"]);
        assert_eq!(code, 2, "{p}: {stderr}");
        assert!(of_type(&docs, "aggregate").is_empty(), "{docs:?}");
        let file = path.file_name().unwrap().to_str().unwrap();
        assert!(
            stderr.contains(&format!("{p}: {file}: corrupt gzip data: {message}")),
            "{stderr}"
        );
        assert!(stderr.contains("refused in strict mode"), "{stderr}");
    }

    let db = format!("sqlite://{}/m.db", dir.path().display());
    let t = truncated.to_str().unwrap();
    let strict = run(&["reports", "ingest", "--db", &db, t, "--strict"]);
    assert_eq!(strict.code, 2, "{}", strict.stderr);
    assert!(
        strict
            .stdout
            .starts_with("0 reports stored, 0 duplicates skipped, 1 inputs not read"),
        "{}",
        strict.stdout
    );
    let lenient = run(&["reports", "ingest", "--db", &db, t]);
    assert_eq!(lenient.code, 0, "{}", lenient.stderr);
    assert!(
        lenient
            .stdout
            .starts_with("1 reports stored, 0 duplicates skipped, 0 inputs not read"),
        "{}",
        lenient.stdout
    );
}

/// An mbox of 1,050 reports: the first 1,000 (`--max-messages`, default) are read and stored,
/// the 50 after are named and counted; with `--max-messages 2000` all are. (Before: "more than
/// 1000 entries", nothing stored.)
#[test]
fn an_mbox_over_max_messages_is_read_up_to_it_and_the_excess_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mbox = String::new();
    for i in 0..1_050 {
        let xml = aggregate_xml(
            "contoso.example",
            &format!("m{i}"),
            2,
            "192.0.2.1",
            1,
            "contoso.example",
        );
        mbox.push_str(&format!(
            "From reporter@example.net Mon Jan  1 00:00:00 2024\n\
             From: reporter@example.net\nTo: dmarc@contoso.example\n\
             Subject: Report Domain: contoso.example Report-ID: m{i}\n\
             Date: Mon, 1 Jan 2024 00:00:00 +0000\nMIME-Version: 1.0\n\
             Content-Type: multipart/mixed; boundary=\"b\"\n\n\
             --b\nContent-Type: text/xml; name=\"r{i}.xml\"\n\
             Content-Disposition: attachment; filename=\"r{i}.xml\"\n\n{xml}\n--b--\n\n"
        ));
    }
    let path = dir.path().join("rua.mbox");
    std::fs::write(&path, mbox).unwrap();
    let p = path.to_str().unwrap();
    let note = format!("{p}: 1000 messages read, 50 over --max-messages skipped");

    let (code, docs, stderr) = parse(&[p]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(of_type(&docs, "aggregate").len(), 1_000);
    assert!(stderr.contains(&note), "{stderr}");
    let last = docs.last().unwrap();
    assert_eq!(last["source"], p, "{last}");
    assert!(
        last["error"].as_str().unwrap().contains("50 over"),
        "{last}"
    );

    let db = format!("sqlite://{}/m.db", dir.path().display());
    let out = run(&["reports", "ingest", "--db", &db, p]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("1000 reports stored, 0 duplicates skipped, 1 inputs not read"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains(&note), "{}", out.stderr);

    let all = format!("sqlite://{}/all.db", dir.path().display());
    let out = run(&[
        "reports",
        "ingest",
        "--db",
        &all,
        p,
        "--max-messages",
        "2000",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("1050 reports stored, 0 duplicates skipped, 0 inputs not read"),
        "{}",
        out.stdout
    );
}
