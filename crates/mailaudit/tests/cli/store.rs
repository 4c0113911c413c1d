//! The store through the CLI: the inventory (`customer`, `domain`, `import`), auditing the
//! inventory, `history`, `diff`, `checklist` and `guide`.
//!
//! Every test uses its own SQLite file (`--db sqlite://<tempdir>/m.db`), so tests never see
//! each other's data; audits use a lab DNS server on loopback and `--no-policy-fetch`.

use serde_json::Value;

use crate::common::{Lab, Output, domain, domains, finding_ids, run};

/// A private store: a SQLite file in its own temporary directory.
pub(crate) struct Db {
    dir: tempfile::TempDir,
    url: String,
}

impl Db {
    /// An empty store, as the first command that writes leaves it (a command that only reads
    /// needs the store to exist: `store_open`). An empty file is an empty SQLite database; the
    /// first command applies the migrations.
    pub(crate) fn new() -> Db {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("m.db");
        std::fs::File::create(&path).expect("create the store file");
        let url = format!("sqlite://{}", path.display());
        Db { dir, url }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Runs `mailaudit --db URL ARGS…`.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--db", self.url.as_str()];
        all.extend_from_slice(args);
        run(&all)
    }

    /// `audit --format json` against `lab`, without policy fetch, plus `extra`.
    pub(crate) fn audit(&self, lab: &Lab, extra: &[&str]) -> Output {
        let mut args = vec![
            "audit",
            "--nameserver",
            lab.addr(),
            "--no-policy-fetch",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// The items of `checklist DOMAIN --format json` (exit status 0 asserted).
    pub(crate) fn checklist(&self, domain: &str) -> Vec<serde_json::Value> {
        let out = self.run(&["checklist", domain, "--format", "json"]);
        out.assert_code(0);
        out.json().as_array().expect("a JSON array").clone()
    }

    /// A path in the store's directory.
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// A domain with an SPF record, DMARC `p=reject` and an MX (the "before" state).
fn zone_before(d: &str) -> String {
    format!(
        "\
{d} MX 10 mail.{d}
mail.{d} A 192.0.2.25
{d} TXT \"v=spf1 ip4:192.0.2.10 -all\"
_dmarc.{d} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{d}\"
"
    )
}

/// The same domain after a bad change: no DMARC record, SPF `~all`.
fn zone_after(d: &str) -> String {
    format!(
        "\
{d} MX 10 mail.{d}
mail.{d} A 192.0.2.25
{d} TXT \"v=spf1 ip4:192.0.2.10 ~all\"
"
    )
}

/// Like [`zone_before`]/[`zone_after`], with the MX at Microsoft 365 (so the guide has its
/// Exchange Online items).
fn zone_m365(d: &str, dmarc: bool) -> String {
    let label = d.replace('.', "-");
    let mut z = format!(
        "{d} MX 0 {label}.mail.protection.outlook.com\n\
         {label}.mail.protection.outlook.com A 192.0.2.26\n\
         {d} TXT \"v=spf1 ip4:192.0.2.10 -all\"\n"
    );
    if dmarc {
        z.push_str(&format!(
            "_dmarc.{d} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{d}\"\n"
        ));
    }
    z
}

/// The IDs of a diff list (`new`, `fixed`, `regressed`…) of one domain's JSON diff.
fn diff_ids(diff: &Value, domain: &str, list: &str) -> Vec<String> {
    let entry = diff
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} in the diff: {diff:#}"));
    entry["diff"][list]
        .as_array()
        .unwrap_or_else(|| panic!("diff.{list} is an array: {entry:#}"))
        .iter()
        .map(|f| f["id"].as_str().expect("finding id").to_owned())
        .collect()
}

fn item<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("item {key} in the checklist: {list:#}"))
}

// ---------------------------------------------------------------------------------------------
// Inventory

#[test]
fn customers_add_list_show_and_duplicates() {
    let db = Db::new();
    db.run(&[
        "customer",
        "add",
        "Acme",
        "--contacts",
        "Ann <ann@acme.test>",
        "--notes",
        "VIP",
    ])
    .assert_code(0);
    // Adding it again changes nothing and says so (crates/mailaudit/tests/cli/inventory.rs
    // has the details).
    let dup = db.run(&["customer", "add", "Acme"]);
    dup.assert_code(0);
    assert!(
        dup.stderr.contains("Acme"),
        "the duplicate is named: {}",
        dup.stderr
    );
    assert!(
        dup.stderr.contains("already exists") && dup.stderr.contains("customer set"),
        "says it already exists: {}",
        dup.stderr
    );
    db.run(&["customer", "add", "Beta"]).assert_code(0);

    let unknown = db.run(&["domain", "add", "x.test", "--customer", "Nobody"]);
    unknown.assert_code(2);
    assert!(unknown.stderr.contains("Nobody"), "{}", unknown.stderr);
    let list = db.run(&["domain", "list"]);
    assert!(
        !list.stdout.contains("x.test"),
        "not added: {}",
        list.stdout
    );

    db.run(&["domain", "add", "a.test", "b.test", "--customer", "Acme"])
        .assert_code(0);
    let list = db.run(&["customer", "list"]);
    list.assert_code(0);
    let acme = list
        .stdout
        .lines()
        .find(|l| l.starts_with("Acme"))
        .unwrap_or_else(|| panic!("Acme listed: {}", list.stdout));
    assert!(
        acme.split_whitespace().any(|w| w == "2"),
        "2 domains: {acme}"
    );
    assert!(acme.contains("ann@acme.test"), "{acme}");
    assert!(list.stdout.lines().any(|l| l.starts_with("Beta")));

    let show = db.run(&["customer", "show", "Acme"]);
    show.assert_code(0);
    for want in [
        "Acme",
        "ann@acme.test",
        "VIP",
        "a.test",
        "b.test",
        "not audited",
    ] {
        assert!(show.stdout.contains(want), "{want} in {}", show.stdout);
    }
    let missing = db.run(&["customer", "show", "Nobody"]);
    missing.assert_code(2);
    assert!(missing.stderr.contains("Nobody"), "{}", missing.stderr);
}

#[test]
fn domains_add_list_remove_idn_and_history_kept() {
    let db = Db::new();
    db.run(&["customer", "add", "Acme"]).assert_code(0);
    let add = db.run(&[
        "domain",
        "add",
        "  Bücher.Example ",
        "PARKED.test.",
        "--customer",
        "Acme",
        "--tenant",
        "acmecorp",
    ]);
    add.assert_code(0);
    assert!(
        add.stdout.contains("xn--bcher-kva.example"),
        "{}",
        add.stdout
    );
    db.run(&["domain", "set", "parked.test", "--parked"])
        .assert_code(0);
    let list = db.run(&["domain", "list"]);
    list.assert_code(0);
    let line = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} listed: {}", list.stdout))
            .to_owned()
    };
    assert!(line("xn--bcher-kva.example").contains("acmecorp"));
    assert!(line("xn--bcher-kva.example").contains("Acme"));
    // Updating parked.test keeps one row.
    assert_eq!(
        list.stdout
            .lines()
            .filter(|l| l.split_whitespace().next() == Some("parked.test"))
            .count(),
        1,
        "{}",
        list.stdout
    );
    assert!(
        line("parked.test").contains("yes"),
        "parked: {}",
        list.stdout
    );
    assert!(!list.stdout.contains("Bücher"), "{}", list.stdout);

    let only = db.run(&["domain", "list", "--customer", "Acme"]);
    assert!(only.stdout.contains("xn--bcher-kva.example"));

    // Audit one, remove it: the inventory forgets it, its history stays.
    let lab = Lab::start(&zone_before("xn--bcher-kva.example"));
    db.audit(&lab, &["xn--bcher-kva.example"]).assert_code(0);
    db.run(&["domain", "remove", "BÜCHER.example"])
        .assert_code(0);
    let list = db.run(&["domain", "list"]);
    assert!(
        !list.stdout.contains("xn--bcher-kva.example"),
        "{}",
        list.stdout
    );
    let hist = db.run(&["history", "bücher.example", "--format", "json"]);
    hist.assert_code(0);
    let hist = hist.json();
    assert_eq!(hist.as_array().map(Vec::len), Some(1), "{hist:#}");
}

#[test]
fn key_people_round_trip_into_the_guide() {
    let db = Db::new();
    db.run(&[
        "domain",
        "add",
        "people.test",
        "--key-person",
        "Carol Chief <carol@people.test>",
        "--key-person",
        "dave@people.test",
    ])
    .assert_code(0);
    let bad = db.run(&[
        "domain",
        "add",
        "people.test",
        "--key-person",
        "not an address",
    ]);
    bad.assert_code(2);
    let lab = Lab::start(&zone_m365("people.test", true));
    let guide = db.run(&[
        "guide",
        "people.test",
        "--nameserver",
        lab.addr(),
        "--format",
        "md",
    ]);
    guide.assert_code(0);
    for want in ["Carol Chief", "carol@people.test", "dave@people.test"] {
        assert!(
            guide.stdout.contains(want),
            "{want} in the guide:\n{}",
            guide.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Import

#[test]
fn import_keeps_good_rows_and_reports_bad_ones_by_line() {
    let db = Db::new();
    let csv = db.path("inv.csv");
    std::fs::write(
        &csv,
        "\u{feff}customer,domain,parked,tenant,key_people,contacts,notes\n\
         Acme,a.test,no,acmecorp,Ann <ann@a.test>,ann@acme.test,first\n\
         Acme,not a domain!,no,,,,\n\
         Beta,b.test,maybe,,,,\n\
         Beta,Bücher.test,yes,,,,\n\
         Acme,A.TEST,yes,acmecorp,,,\n\
         \n\
         Gamma,g.test,,,,gamma contacts,\n",
    )
    .expect("write the CSV");
    let out = db.run(&["import", csv.to_str().expect("utf-8 path")]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(":3:"),
        "bad domain on line 3: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(":4:"),
        "bad parked on line 4: {}",
        out.stderr
    );
    assert!(out.stderr.contains("parked"), "{}", out.stderr);
    for good in [":2:", ":5:", ":6:", ":8:"] {
        assert!(!out.stderr.contains(good), "{good} is good: {}", out.stderr);
    }

    let list = db.run(&["domain", "list"]);
    let names: Vec<&str> = list
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["a.test", "g.test", "xn--bcher-kva.test"],
        "{}",
        list.stdout
    );
    // The duplicate a.test: one row, the last one wins (parked yes).
    let a = list
        .stdout
        .lines()
        .find(|l| l.starts_with("a.test"))
        .expect("a.test");
    assert!(a.contains("yes"), "last row wins: {a}");
    let customers = db.run(&["customer", "list"]);
    for c in ["Acme", "Beta", "Gamma"] {
        assert!(
            customers.stdout.lines().any(|l| l.starts_with(c)),
            "{c}: {}",
            customers.stdout
        );
    }
    let gamma = db.run(&["customer", "show", "Gamma"]);
    assert!(gamma.stdout.contains("gamma contacts"), "{}", gamma.stdout);
}

#[test]
fn import_without_a_domain_column_fails_clearly() {
    let db = Db::new();
    let csv = db.path("nodomain.csv");
    std::fs::write(&csv, "customer,name\nAcme,a.test\n").expect("write");
    let out = db.run(&["import", csv.to_str().expect("utf-8 path")]);
    out.assert_code(2);
    assert!(out.stderr.contains("domain"), "{}", out.stderr);
    let list = db.run(&["domain", "list"]);
    assert!(!list.stdout.contains("a.test"), "{}", list.stdout);
}

#[test]
fn import_from_stdin() {
    let db = Db::new();
    let out = crate::common::run_with_stdin(
        &["--db", db.url(), "import", "-"],
        Some("domain\nstdin.test\n"),
    );
    out.assert_code(0);
    assert!(db.run(&["domain", "list"]).stdout.contains("stdin.test"));
}

// ---------------------------------------------------------------------------------------------
// Auditing the inventory

#[test]
fn audit_without_arguments_audits_the_inventory() {
    let db = Db::new();
    let zone = format!(
        "{}{}{}{}",
        zone_before("one.test"),
        zone_before("two.test"),
        zone_after("parked.test"),
        zone_before("outside.test")
    );
    let lab = Lab::start(&zone);
    // An empty inventory: nothing to audit is an error, not an empty success.
    let empty = db.audit(&lab, &[]);
    empty.assert_code(2);
    assert!(empty.stderr.contains("inventory"), "{}", empty.stderr);

    db.run(&["customer", "add", "Acme"]).assert_code(0);
    db.run(&["customer", "add", "Parkco"]).assert_code(0);
    db.run(&[
        "domain",
        "add",
        "one.test",
        "two.test",
        "--customer",
        "Acme",
    ])
    .assert_code(0);
    db.run(&[
        "domain",
        "add",
        "parked.test",
        "--customer",
        "Parkco",
        "--parked",
    ])
    .assert_code(0);

    let all = db.audit(&lab, &[]);
    let json = all.json();
    let mut got = domains(&json);
    got.sort();
    assert_eq!(
        got,
        ["one.test", "parked.test", "two.test"],
        "{}",
        all.stderr
    );
    let parked = finding_ids(domain(&json, "parked.test"));
    assert!(
        parked.iter().any(|i| i == "PARKED-NOT-LOCKED"),
        "the inventory's parked flag applies: {parked:?}"
    );
    assert!(!finding_ids(domain(&json, "one.test")).contains(&"PARKED-NOT-LOCKED".to_string()));

    let acme = db.audit(&lab, &["--customer", "Acme"]).json();
    let mut got = domains(&acme);
    got.sort();
    assert_eq!(got, ["one.test", "two.test"]);
    let parkco = db.audit(&lab, &["--customer", "Parkco"]).json();
    assert_eq!(domains(&parkco), ["parked.test"]);

    // Every audit was recorded: one.test has 2, parked.test 2 audits.
    let h = db.run(&["history", "one.test", "--format", "json"]).json();
    assert_eq!(h.as_array().map(Vec::len), Some(2), "{h:#}");
    // --no-store records nothing.
    db.audit(&lab, &["one.test", "--no-store"]);
    let h = db.run(&["history", "one.test", "--format", "json"]).json();
    assert_eq!(h.as_array().map(Vec::len), Some(2), "--no-store: {h:#}");
    let show = db.run(&["customer", "show", "Acme"]);
    assert!(!show.stdout.contains("not audited"), "{}", show.stdout);
}

// ---------------------------------------------------------------------------------------------
// History and diff

#[test]
fn history_and_diff_show_new_fixed_and_regressed() {
    let db = Db::new();
    let d = "hist.test";
    let before = Lab::start(&zone_before(d));
    let after = Lab::start(&zone_after(d));

    let first = db.audit(&before, &[d]).json();
    let first_ids = finding_ids(domain(&first, d));
    assert!(
        !first_ids.iter().any(|i| i == "DMARC-MISSING"),
        "{first_ids:?}"
    );
    // One audit: nothing to compare, no failure.
    db.run(&["diff", d]).assert_code(0);

    let second = db.audit(&after, &[d]).json();
    let second_ids = finding_ids(domain(&second, d));
    assert!(
        second_ids.iter().any(|i| i == "DMARC-MISSING"),
        "{second_ids:?}"
    );

    // History: two audits, newest first, with scores.
    let h = db.run(&["history", d, "--format", "json"]);
    h.assert_code(0);
    let h = h.json();
    let rows = h.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{h:#}");
    assert!(
        rows[0]["run"].as_i64() > rows[1]["run"].as_i64(),
        "newest first: {h:#}"
    );
    assert!(rows[0]["audited_at"].as_i64() >= rows[1]["audited_at"].as_i64());
    assert_eq!(rows[0]["score"], domain(&second, d)["score"]);
    assert_eq!(rows[1]["score"], domain(&first, d)["score"]);
    assert!(
        rows[0]["score"].as_i64() < rows[1]["score"].as_i64(),
        "{h:#}"
    );
    let text = db.run(&["history", d]);
    text.assert_code(0);
    assert!(text.stdout.contains("2 audits"), "{}", text.stdout);
    let lines: Vec<&str> = text.stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(
        lines[0].contains("DMARC-MISSING"),
        "newest first: {}",
        text.stdout
    );
    assert!(!lines[1].contains("DMARC-MISSING"), "{}", text.stdout);

    // Diff: the new findings, exit 1.
    let diff = db.run(&["diff", d, "--format", "json"]);
    diff.assert_code(1);
    let diff = diff.json();
    let new = diff_ids(&diff, d, "new");
    assert!(new.iter().any(|i| i == "DMARC-MISSING"), "{diff:#}");
    assert!(new.iter().any(|i| i == "SPF-SOFTFAIL"), "{diff:#}");
    let text = db.run(&["diff", d]);
    text.assert_code(1);
    assert!(text.stdout.contains("new"), "{}", text.stdout);
    assert!(text.stdout.contains("DMARC-MISSING"), "{}", text.stdout);
    // The inventory-wide diff (no arguments) covers only inventory domains: none here.
    db.run(&["diff"]).assert_code(0);

    // The fix: the findings are listed as fixed, nothing worsened.
    db.audit(&before, &[d]);
    let diff = db.run(&["diff", d, "--format", "json"]);
    diff.assert_code(0);
    let diff = diff.json();
    let fixed = diff_ids(&diff, d, "fixed");
    assert!(fixed.iter().any(|i| i == "DMARC-MISSING"), "{diff:#}");
    assert!(fixed.iter().any(|i| i == "SPF-SOFTFAIL"), "{diff:#}");
    assert!(diff_ids(&diff, d, "new").is_empty(), "{diff:#}");

    // It comes back: regressed, not new.
    db.audit(&after, &[d]);
    let diff = db.run(&["diff", d, "--format", "json"]);
    diff.assert_code(1);
    let diff = diff.json();
    let regressed = diff_ids(&diff, d, "regressed");
    assert!(regressed.iter().any(|i| i == "DMARC-MISSING"), "{diff:#}");
    assert!(
        !diff_ids(&diff, d, "new")
            .iter()
            .any(|i| i == "DMARC-MISSING"),
        "{diff:#}"
    );
    let text = db.run(&["diff", d]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.contains("regressed") && l.contains("DMARC-MISSING")),
        "{}",
        text.stdout
    );
    let h = db
        .run(&["history", d, "--format", "json", "--limit", "3"])
        .json();
    assert_eq!(h.as_array().map(Vec::len), Some(3), "--limit: {h:#}");
}

// ---------------------------------------------------------------------------------------------
// Checklist

#[test]
fn checklist_opens_items_and_takes_manual_ticks() {
    let db = Db::new();
    let d = "check.test";
    let without = Lab::start(&zone_m365(d, false));

    let none = db.run(&["checklist", d]);
    none.assert_code(0);
    assert!(none.stdout.contains("no checklist"), "{}", none.stdout);

    let first = db.audit(&without, &[d]).json();
    let ids = finding_ids(domain(&first, d));
    assert!(ids.iter().any(|i| i == "DMARC-MISSING"), "{ids:?}");
    let list = db.run(&["checklist", d, "--format", "json"]);
    list.assert_code(0);
    let list = list.json();
    let publish = item(&list, "dmarc-publish");
    assert_eq!(publish["state"], "open", "{publish:#}");
    assert!(
        publish["priority"]
            .as_u64()
            .is_some_and(|p| (1..=3).contains(&p))
    );
    let text = db.run(&["checklist", d]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.contains("[ ]") && l.contains("dmarc-publish")),
        "{}",
        text.stdout
    );

    // A manual item.
    let done = db.run(&[
        "checklist",
        d,
        "--done",
        "antispoof-rule-audit",
        "--by",
        "alice",
        "--format",
        "json",
    ]);
    done.assert_code(0);
    let list = done.json();
    let rule = item(&list, "antispoof-rule-audit");
    assert_eq!(rule["state"], "done", "{rule:#}");
    assert_eq!(rule["by"], "alice", "{rule:#}");
    let text = db.run(&["checklist", d]);
    assert!(
        text.stdout.lines().any(|l| l.contains("[x]")
            && l.contains("antispoof-rule-audit")
            && l.contains("alice")),
        "{}",
        text.stdout
    );
    // A re-audit cannot see a transport rule: the manual tick stays.
    db.audit(&without, &[d]);
    let list = db.run(&["checklist", d, "--format", "json"]).json();
    assert_eq!(item(&list, "antispoof-rule-audit")["state"], "done");
    // Reopen by hand.
    let list = db
        .run(&[
            "checklist",
            d,
            "--reopen",
            "antispoof-rule-audit",
            "--by",
            "bob",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(item(&list, "antispoof-rule-audit")["state"], "open");
    // An unknown key is an error.
    db.run(&["checklist", d, "--done", "no-such-item"])
        .assert_code(2);
}

// ---------------------------------------------------------------------------------------------
// Guide

/// The TXT records of the guide's ```dns blocks: (owner, text).
fn dns_txt_records(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_dns = false;
    for line in md.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_dns = t == "```dns";
            continue;
        }
        if !in_dns {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        if let Some(pos) = words.iter().position(|w| *w == "TXT") {
            let owner = words[0].trim_end_matches('.').to_string();
            let rdata = t
                .find('"')
                .map(|i| &t[i..])
                .unwrap_or_default()
                .split('"')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect::<String>();
            let _ = pos;
            out.push((owner, rdata));
        }
    }
    out
}

#[test]
fn guide_markdown_has_valid_records_in_priority_order() {
    let db = Db::new();
    let d = "guide.test";
    let lab = Lab::start(&zone_after(d));
    db.audit(&lab, &[d]);
    let out = db.run(&[
        "guide",
        d,
        "--format",
        "md",
        "--rua",
        "mailto:dmarc@msp.test",
    ]);
    out.assert_code(0);
    let md = &out.stdout;
    assert!(md.contains(d), "{md}");

    let records = dns_txt_records(md);
    let dmarc: Vec<&String> = records
        .iter()
        .filter(|(o, _)| o == &format!("_dmarc.{d}"))
        .map(|(_, t)| t)
        .collect();
    assert!(!dmarc.is_empty(), "a DMARC record to publish:\n{md}");
    for r in &dmarc {
        assert!(r.starts_with("v=DMARC1"), "{r}");
        mailaudit_core::dmarc::parse(r).unwrap_or_else(|e| panic!("{r}: {e:?}"));
    }
    assert!(
        dmarc.iter().any(|r| r.contains("mailto:dmarc@msp.test")),
        "the --rua is proposed: {dmarc:?}"
    );
    let spf: Vec<&String> = records
        .iter()
        .filter(|(o, t)| o == d && t.starts_with("v=spf1"))
        .map(|(_, t)| t)
        .collect();
    assert!(!spf.is_empty(), "a hardened SPF record:\n{md}");
    for r in &spf {
        mailaudit_core::spf::parse(r).unwrap_or_else(|e| panic!("{r}: {e:?}"));
        assert!(r.contains("ip4:192.0.2.10"), "keeps the mechanism: {r}");
        assert!(r.ends_with("-all"), "hardened: {r}");
    }

    // Priorities in order, each heading once.
    let headings: Vec<u8> = md
        .lines()
        .filter_map(|l| l.strip_prefix("## Priority "))
        .filter_map(|l| l.chars().next()?.to_digit(10))
        .map(|p| p as u8)
        .collect();
    assert!(headings.len() >= 2, "{headings:?}\n{md}");
    assert!(headings.windows(2).all(|w| w[0] < w[1]), "{headings:?}");

    // The fix applied: a re-audit with the proposed records shows the findings gone.
    let fixed_zone = format!(
        "{d} MX 10 mail.{d}\nmail.{d} A 192.0.2.25\n{d} TXT \"{}\"\n_dmarc.{d} TXT \"{}\"\n",
        spf[0], dmarc[0]
    );
    let fixed = Lab::start(&fixed_zone);
    let json = db.audit(&fixed, &[d, "--no-store"]).json();
    let ids = finding_ids(domain(&json, d));
    for gone in ["DMARC-MISSING", "SPF-SOFTFAIL"] {
        assert!(!ids.iter().any(|i| i == gone), "{gone} fixed: {ids:?}");
    }

    // --output writes the same text to a file.
    let path = db.path("guide.md");
    db.run(&[
        "guide",
        d,
        "--output",
        path.to_str().expect("utf-8"),
        "--rua",
        "mailto:dmarc@msp.test",
    ])
    .assert_code(0);
    let written = std::fs::read_to_string(&path).expect("guide written");
    assert!(written.contains("Priority"), "{written}");
}

#[test]
fn guide_html_is_self_contained() {
    let db = Db::new();
    let d = "html.test";
    let lab = Lab::start(&zone_after(d));
    db.audit(&lab, &[d]);
    let out = db.run(&["guide", d, "--format", "html"]);
    out.assert_code(0);
    let html = out.stdout.to_ascii_lowercase();
    assert!(
        html.contains("<html") || html.contains("<!doctype"),
        "{html}"
    );
    assert!(html.contains(d));
    assert!(!html.contains("<script"), "no scripts");
    for external in ["src=\"http", "src='http", "<link", "url(http", "@import"] {
        assert!(
            !html.contains(external),
            "no external resource ({external})"
        );
    }
}

#[test]
fn guide_for_a_customer_concatenates_and_audits_when_needed() {
    let db = Db::new();
    db.run(&["customer", "add", "Acme"]).assert_code(0);
    db.run(&["domain", "add", "g1.test", "g2.test", "--customer", "Acme"])
        .assert_code(0);
    let lab = Lab::start(&format!(
        "{}{}",
        zone_before("g1.test"),
        zone_after("g2.test")
    ));
    // Neither domain was audited: the guide audits them (and records the audits).
    let out = db.run(&[
        "guide",
        "--customer",
        "Acme",
        "--format",
        "md",
        "--nameserver",
        lab.addr(),
    ]);
    out.assert_code(0);
    let p1 = out.stdout.find("guide for g1.test");
    let p2 = out.stdout.find("guide for g2.test");
    assert!(p1.is_some() && p2.is_some(), "{}", out.stdout);
    assert!(lab.query_count() > 0, "a fresh audit was run");
    for d in ["g1.test", "g2.test"] {
        let h = db.run(&["history", d, "--format", "json"]).json();
        assert_eq!(h.as_array().map(Vec::len), Some(1), "{d}: {h:#}");
        let c = db.run(&["checklist", d, "--format", "json"]).json();
        assert!(c.as_array().is_some_and(|a| !a.is_empty()), "{d}: {c:#}");
    }
    // The second domain has no DMARC: its part of the guide proposes one.
    let g2 = &out.stdout[p2.unwrap_or(0)..];
    assert!(g2.contains("v=DMARC1"), "{g2}");
    // HTML for a customer: both domains too.
    let html = db.run(&["guide", "--customer", "Acme", "--format", "html"]);
    html.assert_code(0);
    assert!(html.stdout.contains("g1.test") && html.stdout.contains("g2.test"));
}
#[test]
fn checklist_ticks_and_reopens_with_the_audit() {
    let db = Db::new();
    let d = "tick.test";
    let without = Lab::start(&zone_m365(d, false));
    let with = Lab::start(&zone_m365(d, true));
    db.audit(&without, &[d]);
    let list = db.run(&["checklist", d, "--format", "json"]).json();
    assert_eq!(item(&list, "dmarc-publish")["state"], "open", "{list:#}");
    // DMARC published: ticked by the audit.
    db.audit(&with, &[d]);
    let list = db.run(&["checklist", d, "--format", "json"]).json();
    let publish = item(&list, "dmarc-publish");
    assert_eq!(publish["state"], "done", "{publish:#}");
    assert_eq!(
        publish["by"], "mailaudit (verified by audit)",
        "{publish:#}"
    );
    assert!(publish["at"].as_i64().is_some(), "{publish:#}");

    // Removed again: reopened (and the audit says so on stderr).
    let again = db.audit(&without, &[d]);
    assert!(
        again.stderr.contains("dmarc-publish"),
        "the regression is reported: {}",
        again.stderr
    );
    let list = db.run(&["checklist", d, "--format", "json"]).json();
    assert_eq!(item(&list, "dmarc-publish")["state"], "open", "{list:#}");
}

// ---------------------------------------------------------------------------------------------
// Prune

#[test]
fn prune_keeps_summaries_history_diff_and_the_latest_audit_whole() {
    let db = Db::new();
    let d = "prune.test";
    let before = Lab::start(&zone_before(d));
    let after = Lab::start(&zone_after(d));
    db.audit(&before, &[d]).assert_code(0);
    db.audit(&after, &[d]);
    // Audits are stamped in whole seconds: the next one is older than --keep 1s by then.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let latest = db.audit(&before, &[d]).json();
    let guide_before = db.run(&["guide", d, "--format", "md"]);
    guide_before.assert_code(0);

    let out = db.run(&["prune", "--keep", "1s", "--format", "json"]);
    out.assert_code(0);
    let outcome = out.json();
    assert_eq!(outcome["results_summarized"], 2, "{outcome:#}");

    let h = db.run(&["history", d, "--format", "json"]).json();
    let rows = h.as_array().expect("array");
    assert_eq!(
        rows.iter()
            .map(|r| r["summary"].as_bool())
            .collect::<Vec<_>>(),
        [Some(false), Some(true), Some(true)],
        "{h:#}"
    );
    // The latest audit is whole: the same report as the audit printed.
    assert_eq!(rows[0]["report"], *domain(&latest, d), "{h:#}");
    // The summaries keep what history and diff need: scores and findings.
    assert!(
        rows[1]["score"].as_i64() < rows[0]["score"].as_i64(),
        "{h:#}"
    );
    let ids: Vec<&str> = rows[1]["report"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(ids.contains(&"DMARC-MISSING"), "{h:#}");
    assert!(rows[1]["report"]["findings"][0]["fix"].is_null(), "{h:#}");
    let diff = db.run(&["diff", d, "--format", "json"]);
    diff.assert_code(0);
    let diff = diff.json();
    assert!(
        diff_ids(&diff, d, "fixed")
            .iter()
            .any(|i| i == "DMARC-MISSING"),
        "{diff:#}"
    );
    // The guide reads the latest audit: unchanged.
    let guide_after = db.run(&["guide", d, "--format", "md"]);
    guide_after.assert_code(0);
    assert_eq!(guide_after.stdout, guide_before.stdout);

    // Again: nothing left to prune; the text form says so.
    let text = db.run(&["prune", "--keep", "1s"]);
    text.assert_code(0);
    assert!(
        text.stdout.starts_with("0 audit(s) from before "),
        "{}",
        text.stdout
    );
    // --keep is required and checked.
    db.run(&["prune"]).assert_code(2);
    db.run(&["prune", "--keep", "soon"]).assert_code(2);
}
