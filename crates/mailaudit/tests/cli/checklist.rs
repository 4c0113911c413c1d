//! The fixes, the guide and the checklist agree: a parked domain gets only the lock-down
//! records everywhere; the guide's Priority 4 items are on the checklist; a manual tick that
//! the latest audit contradicts is refused with the evidence (or forced, with a warning); an
//! unknown checklist key lists the valid ones.

use serde_json::Value;

use crate::common::{Lab, domain, finding_ids};
use crate::store::Db;

const PARKED: &str = "blue-yonder-airlines.example";

/// What a domain that sends mail is told, and a parked domain must not be: the `p=none`
/// roll-out, the Microsoft 365 include, DKIM CNAMEs.
fn sending_advice(text: &str) -> Vec<&'static str> {
    [
        "p=none",
        "p=quarantine",
        "include:spf.protection.outlook.com",
        "CNAME",
        "selector1._domainkey",
        "Set-DkimSigningConfig",
    ]
    .into_iter()
    .filter(|s| text.contains(s))
    .collect()
}

/// The checklist's keys and priorities, from `checklist --format json`.
fn checklist(db: &Db, d: &str) -> Vec<(String, u64, String)> {
    db.checklist(d)
        .iter()
        .map(|i| {
            (
                i["key"].as_str().expect("key").to_owned(),
                i["priority"].as_u64().expect("priority"),
                i["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

/// The item keys of a Markdown guide, by priority: `(priority, key)` from `### N. Title (`key`)`
/// under `## Priority P — …`.
fn guide_keys(md: &str) -> Vec<(u64, String)> {
    let mut priority = 0;
    let mut out = Vec::new();
    for line in md.lines() {
        if let Some(rest) = line.strip_prefix("## Priority ") {
            priority = rest[..1].parse().expect("a priority digit");
        } else if line.starts_with("### ")
            && let Some(key) = line
                .rsplit_once("(`")
                .and_then(|(_, k)| k.strip_suffix("`)"))
        {
            out.push((priority, key.to_owned()));
        }
    }
    out
}

#[test]
fn a_parked_domain_gets_only_the_lock_down_records_everywhere() {
    let lab = Lab::sample_plus(
        "\
parked365.test MX 0 parked365-test.mail.protection.outlook.com
parked365-test.mail.protection.outlook.com A 192.0.2.26
parked365.test TXT \"v=spf1 include:spf.protection.outlook.com ~all\"
_dmarc.parked365.test TXT \"v=DMARC1; p=none; rua=mailto:reports@parked365.test\"
",
    );
    let db = Db::new();

    // The sample fleet's parked domain (null MX, no SPF, no DMARC).
    let json = db.audit(&lab, &[PARKED]);
    json.assert_code(0);
    let json = json.json();
    let report = domain(&json, PARKED);
    assert_eq!(report["parked"], true);
    let ids = finding_ids(report);
    for id in ["DMARC-MISSING", "SPF-MISSING", "PARKED-NOT-LOCKED"] {
        assert!(ids.iter().any(|i| i == id), "{id}: {ids:?}");
    }
    // Every fix of an SPF or DMARC finding is the same lock-down.
    let lock = format!(
        "{PARKED}. TXT \"v=spf1 -all\"\n_dmarc.{PARKED}. TXT \"v=DMARC1; p=reject; sp=reject; \
         adkim=s; aspf=s; rua=mailto:dmarc-reports@{PARKED}\""
    );
    for f in report["findings"].as_array().expect("findings") {
        let fix = f["fix"].as_str().expect("fix");
        assert_eq!(sending_advice(fix), Vec::<&str>::new(), "{f:#}");
        if f["area"] == "spf" || f["area"] == "dmarc" {
            assert_eq!(fix, lock, "{f:#}");
        }
    }
    // The other formats carry the same fixes.
    for format in ["csv", "html", "table"] {
        let out = db.run(&[
            "audit",
            "--nameserver",
            lab.addr(),
            "--no-policy-fetch",
            "--no-store",
            "--format",
            format,
            PARKED,
        ]);
        out.assert_code(0);
        assert_eq!(
            sending_advice(&out.stdout),
            Vec::<&str>::new(),
            "{format}:\n{}",
            out.stdout
        );
        assert!(out.stdout.contains("v=spf1 -all"), "{format}");
        assert!(out.stdout.contains("p=reject"), "{format}");
    }

    // The guide: one lock-down item with the same records, none of the sending advice.
    let md = db.run(&["guide", PARKED]);
    md.assert_code(0);
    let md = md.stdout;
    assert_eq!(sending_advice(&md), Vec::<&str>::new(), "{md}");
    assert!(
        md.contains(&format!("{PARKED}.  3600  IN  TXT  \"v=spf1 -all\"")),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "_dmarc.{PARKED}.  3600  IN  TXT  \"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; \
             rua=mailto:dmarc-reports@{PARKED}\""
        )),
        "{md}"
    );
    assert_eq!(
        guide_keys(&md)
            .into_iter()
            .map(|(_, k)| k)
            .collect::<Vec<_>>(),
        ["parked-lockdown", "rerun-audit"],
        "{md}"
    );
    let html = db.run(&["guide", PARKED, "--format", "html"]);
    html.assert_code(0);
    assert_eq!(sending_advice(&html.stdout), Vec::<&str>::new());
    assert!(html.stdout.contains("v=spf1 -all"));
    // JSON: the guide's structure, each DNS block with its records as host / type / value.
    let json = db.run(&["guide", PARKED, "--format", "json"]);
    json.assert_code(0);
    let g = json.json();
    assert_eq!(g["domain"], PARKED, "{g:#}");
    let records: Vec<&Value> = g["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .flat_map(|s| s["items"].as_array().expect("items"))
        .flat_map(|i| i["steps"].as_array().expect("steps"))
        .filter(|st| st["code"]["lang"] == "dns")
        .flat_map(|st| st["code"]["records"].as_array().expect("records"))
        .collect();
    assert!(
        records.iter().any(|r| r["host"] == "@"
            && r["type"] == "TXT"
            && r["value"] == "v=spf1 -all"
            && r["name"] == PARKED),
        "{g:#}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["host"] == "_dmarc" && r["name"] == format!("_dmarc.{PARKED}")),
        "{g:#}"
    );
    // The checklist: the lock-down (and the re-audit that shows it), no DMARC roll-out, no SPF
    // include, no DKIM.
    let keys: Vec<String> = checklist(&db, PARKED).into_iter().map(|i| i.0).collect();
    assert_eq!(keys, ["parked-lockdown", "rerun-audit"]);

    // A Microsoft 365 domain listed as parked in the inventory: its own rua is kept.
    let d = "parked365.test";
    db.run(&["domain", "add", d, "--parked"]).assert_code(0);
    let json = db.audit(&lab, &[]);
    json.assert_code(0);
    let json = json.json();
    let report = domain(&json, d);
    assert_eq!(report["parked"], true, "{report:#}");
    let dmarc =
        format!("_dmarc.{d}. TXT \"v=DMARC1; p=reject; sp=reject; rua=mailto:reports@{d}\"");
    for f in report["findings"].as_array().expect("findings") {
        if f["area"] == "spf" || f["area"] == "dmarc" {
            let fix = f["fix"].as_str().expect("fix");
            assert_eq!(fix, format!("{d}. TXT \"v=spf1 -all\"\n{dmarc}"), "{f:#}");
        }
    }
    let md = db.run(&["guide", d]).stdout;
    assert!(
        !md.contains("include:spf.protection.outlook.com")
            && !md.contains("p=none;")
            && !md.contains("CNAME"),
        "{md}"
    );
    assert!(md.contains("\"v=spf1 -all\"") && md.contains("rua=mailto:reports@parked365.test"));
    let keys: Vec<String> = checklist(&db, d).into_iter().map(|i| i.0).collect();
    assert!(keys.contains(&"parked-lockdown".to_string()), "{keys:?}");
    for k in [
        "dmarc-quarantine",
        "spf-harden",
        "spf-publish",
        "dkim-cnames",
    ] {
        assert!(!keys.iter().any(|x| x == k), "{k}: {keys:?}");
    }
}

/// An M365 domain with `~all` and no MTA-STS or TLS-RPT record.
fn zone_soft(d: &str) -> String {
    let label = d.replace('.', "-");
    format!(
        "{d} MX 0 {label}.mail.protection.outlook.com\n\
         {label}.mail.protection.outlook.com A 192.0.2.26\n\
         {d} TXT \"v=spf1 ip4:192.0.2.10 ~all\"\n\
         _dmarc.{d} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{d}\"\n"
    )
}

#[test]
fn every_guide_item_of_priority_4_is_on_the_checklist() {
    let db = Db::new();
    let d = "low.test";
    let lab = Lab::start(&zone_soft(d));
    db.audit(&lab, &[d]).assert_code(0);
    let md = db.run(&["guide", d]);
    md.assert_code(0);
    let guide = guide_keys(&md.stdout);
    let low: Vec<&String> = guide
        .iter()
        .filter(|(p, _)| *p == 4)
        .map(|(_, k)| k)
        .collect();
    assert!(
        low.iter().any(|k| *k == "mta-sts") && low.iter().any(|k| *k == "tls-rpt"),
        "Priority 4 of the guide: {low:?}\n{}",
        md.stdout
    );
    let list = checklist(&db, d);
    for (priority, key) in &guide {
        assert!(
            list.iter().any(|(k, p, _)| k == key && p == priority),
            "{key} (P{priority}) on the checklist: {list:?}"
        );
    }
    let text = db.run(&["checklist", d]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.contains("[ ] P4") && l.contains("tls-rpt")),
        "{}",
        text.stdout
    );
}

fn state(db: &Db, d: &str, key: &str) -> (String, Value) {
    let out = db.run(&["checklist", d, "--format", "json"]);
    out.assert_code(0);
    let list = out.json();
    let item = list
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("{key} in {list:#}"))
        .clone();
    (item["state"].as_str().expect("state").to_owned(), item)
}

#[test]
fn a_manual_tick_the_latest_audit_contradicts_is_refused_or_forced() {
    let db = Db::new();
    let d = "soft.test";
    let lab = Lab::start(&zone_soft(d));
    db.audit(&lab, &[d]).assert_code(0);
    assert_eq!(state(&db, d, "spf-harden").0, "open");

    // Refused, with the evidence, the audit's date and the way out.
    let out = db.run(&["checklist", d, "--done", "spf-harden", "--by", "alice"]);
    out.assert_code(1);
    for needle in [
        "spf-harden cannot be marked done",
        "the latest audit of soft.test (20",
        "`v=spf1 ip4:192.0.2.10 ~all`",
        "ends in ~all",
        "re-audit",
        "--force",
        "the next audit will reopen it",
    ] {
        assert!(
            out.stderr.contains(needle),
            "{needle:?} in:\n{}",
            out.stderr
        );
    }
    assert_eq!(state(&db, d, "spf-harden").0, "open", "nothing recorded");

    // --force records it, with a warning.
    let out = db.run(&[
        "checklist",
        d,
        "--done",
        "spf-harden",
        "--force",
        "--by",
        "alice",
    ]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("the next audit will reopen it"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("~all"), "{}", out.stderr);
    let (s, item) = state(&db, d, "spf-harden");
    assert_eq!(s, "done");
    assert_eq!(item["by"], "alice");
    // …and the next audit reopens it, as announced.
    db.audit(&lab, &[d]).assert_code(0);
    assert_eq!(state(&db, d, "spf-harden").0, "open");

    // An item DNS cannot show is ticked without a word.
    let out = db.run(&[
        "checklist",
        d,
        "--done",
        "antispoof-rule-audit",
        "--by",
        "bob",
    ]);
    out.assert_code(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(state(&db, d, "antispoof-rule-audit").0, "done");
    // --force means nothing without --done.
    db.run(&["checklist", d, "--force"]).assert_code(2);

    // Once DNS shows the fix, the audit ticks it itself.
    let fixed = Lab::start(&zone_soft(d).replace("~all", "-all"));
    db.audit(&fixed, &[d]).assert_code(0);
    let (s, item) = state(&db, d, "spf-harden");
    assert_eq!(s, "done", "{item:#}");
}

#[test]
fn an_unknown_checklist_key_lists_the_valid_keys() {
    let db = Db::new();
    let d = "typo.test";
    let lab = Lab::start(&zone_soft(d));

    db.audit(&lab, &[d]).assert_code(0);
    // A domain with no checklist yet: say so.
    let out = db.run(&["checklist", "other.test", "--done", "spf-harden"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("no checklist yet")
            && out.stderr.contains("mailaudit audit other.test"),
        "{}",
        out.stderr
    );
    let keys: Vec<String> = checklist(&db, d).into_iter().map(|i| i.0).collect();
    for flag in ["--done", "--reopen"] {
        let out = db.run(&["checklist", d, flag, "spf-hardn"]);
        out.assert_code(2);
        assert!(
            out.stderr.contains("\"spf-hardn\"") && out.stderr.contains("did you mean spf-harden?"),
            "{flag}: {}",
            out.stderr
        );
        for k in &keys {
            assert!(
                out.stderr.contains(k.as_str()),
                "{flag}: {k} in {}",
                out.stderr
            );
        }
    }
    // Nothing near: the keys, no guess.
    let out = db.run(&["checklist", d, "--done", "zzzzzzzz"]);
    out.assert_code(2);
    assert!(!out.stderr.contains("did you mean"), "{}", out.stderr);
    assert!(out.stderr.contains("spf-harden"), "{}", out.stderr);
}
