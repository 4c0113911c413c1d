//! Nothing the user entered is lost: `domain add` and `customer add` never change what is
//! stored, `domain set` and `customer set` change exactly the fields given, `domain show` prints
//! everything stored about one domain, and `import` updates only the columns a row fills in.
//!
//! Each test uses its own SQLite file ([`Db`]), so the tests run in parallel.

use serde_json::Value;

use crate::common::{Lab, Output};
use crate::store::Db;

/// `domain show DOMAIN --format json`, parsed.
fn show(db: &Db, domain: &str) -> Value {
    let out = db.run(&["domain", "show", domain, "--format", "json"]);
    out.assert_code(0);
    out.json()
}

/// The `(name, email)` pairs of a shown domain's key people.
fn people(shown: &Value) -> Vec<(String, String)> {
    shown["key_people"]
        .as_array()
        .unwrap_or_else(|| panic!("key_people is an array: {shown:#}"))
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["email"].as_str().expect("email").to_owned(),
            )
        })
        .collect()
}

fn pair(name: &str, email: &str) -> (String, String) {
    (name.to_owned(), email.to_owned())
}

/// A CSV file in its own temporary directory (kept alive by the returned guard).
fn csv_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("inventory.csv");
    std::fs::write(&path, text).expect("write the CSV");
    let path = path.to_str().expect("UTF-8 path").to_owned();
    (dir, path)
}

fn bellows(db: &Db) {
    db.run(&["customer", "add", "Bellows College"])
        .assert_code(0);
    db.run(&[
        "domain",
        "add",
        "bellowscollege.test",
        "--customer",
        "Bellows College",
        "--tenant",
        "bellowscollege",
        "--relay-to",
        "alerts@bellowscollege.test",
        "--key-person",
        "Ann Lee <ann@bellowscollege.test>",
        "--key-person",
        "Bob Ray <bob@bellowscollege.test>",
    ])
    .assert_code(0);
}

fn assert_bellows_intact(shown: &Value) {
    assert_eq!(shown["customer"], "Bellows College", "{shown:#}");
    assert_eq!(shown["tenant"], "bellowscollege", "{shown:#}");
    assert_eq!(shown["relay_to"], "alerts@bellowscollege.test", "{shown:#}");
    assert_eq!(
        people(shown),
        [
            pair("Ann Lee", "ann@bellowscollege.test"),
            pair("Bob Ray", "bob@bellowscollege.test")
        ]
    );
}

/// The case of the issue: re-adding a domain with only `--customer` erased its tenant and key
/// people. Now nothing changes and mailaudit says so.
#[test]
fn re_adding_a_domain_with_only_customer_keeps_its_tenant_and_key_people() {
    let db = Db::new();
    bellows(&db);

    let again = db.run(&[
        "domain",
        "add",
        "bellowscollege.test",
        "--customer",
        "Bellows College",
    ]);
    again.assert_code(0);
    assert!(
        again
            .stderr
            .contains("bellowscollege.test is already in the inventory")
            && again
                .stderr
                .contains("mailaudit domain set bellowscollege.test"),
        "reported on standard error with the command that changes it: {}",
        again.stderr
    );
    assert!(!again.stdout.contains("added"), "{}", again.stdout);
    assert_bellows_intact(&show(&db, "bellowscollege.test"));

    // Without any option: the same.
    db.run(&["domain", "add", "BellowsCollege.test."])
        .assert_code(0);
    assert_bellows_intact(&show(&db, "bellowscollege.test"));
}

/// A value that differs from the stored one is not applied: exit 1, the difference and the
/// `domain set` command that would apply it are named, and the other domains of the command
/// are added (a name given twice once).
#[test]
fn domain_add_with_different_values_changes_nothing_and_adds_the_others() {
    let db = Db::new();
    bellows(&db);
    db.run(&["customer", "add", "Other"]).assert_code(0);

    let out = db.run(&[
        "domain",
        "add",
        "new.bellowscollege.test",
        "bellowscollege.test",
        "NEW.bellowscollege.test.",
        "--customer",
        "Other",
        "--tenant",
        "othertenant",
    ]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("bellowscollege.test is already in the inventory"),
        "{}",
        out.stderr
    );
    for want in [
        "customer is Bellows College (given: Other)",
        "tenant is bellowscollege (given: othertenant)",
        "`mailaudit domain set bellowscollege.test --customer Other --tenant othertenant`",
    ] {
        assert!(out.stderr.contains(want), "{want:?} in {}", out.stderr);
    }
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("added new.bellowscollege.test"))
            .count(),
        1,
        "the name given twice is added once: {}",
        out.stdout
    );
    assert_bellows_intact(&show(&db, "bellowscollege.test"));
    let new = show(&db, "new.bellowscollege.test");
    assert_eq!(new["customer"], "Other");
    assert_eq!(new["tenant"], "othertenant");

    // A key person not yet listed is a difference too; the suggested command adds them.
    let out = db.run(&[
        "domain",
        "add",
        "bellowscollege.test",
        "--key-person",
        "Cy Dee <cy@bellowscollege.test>",
    ]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("--key-person 'Cy Dee <cy@bellowscollege.test>'"),
        "{}",
        out.stderr
    );
    assert_bellows_intact(&show(&db, "bellowscollege.test"));

    // An invalid name or unknown customer: nothing is added at all.
    let bad = db.run(&["domain", "add", "fresh.test", "bad domain!"]);
    bad.assert_code(2);
    let bad = db.run(&["domain", "add", "fresh.test", "--customer", "Nobody"]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("Nobody"), "{}", bad.stderr);
    let missing = db.run(&["domain", "show", "fresh.test"]);
    missing.assert_code(2);
    assert!(
        missing
            .stderr
            .contains("fresh.test is not in the inventory"),
        "{}",
        missing.stderr
    );
}

#[test]
fn domain_set_changes_the_given_fields_and_clears_on_request() {
    let db = Db::new();
    bellows(&db);
    db.run(&["customer", "add", "Other"]).assert_code(0);

    // One field: printed as old → new, the rest kept.
    let out = db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "--tenant",
        "bellows2",
    ]);
    out.assert_code(0);
    assert_eq!(
        out.stdout.trim(),
        "bellowscollege.test: tenant: bellowscollege → bellows2"
    );
    let shown = show(&db, "bellowscollege.test");
    assert_eq!(shown["tenant"], "bellows2");
    assert_eq!(shown["customer"], "Bellows College");
    assert_eq!(people(&shown).len(), 2, "{shown:#}");

    // --key-person adds (a known address is renamed in place, a bare known address keeps its
    // name); --parked; another customer.
    let out = db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "--key-person",
        "Cy Dee <cy@bellowscollege.test>",
        "--key-person",
        "Ann Lee-Smith <ANN@bellowscollege.test>",
        "--key-person",
        "bob@bellowscollege.test",
        "--parked",
        "--customer",
        "Other",
    ]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("bellowscollege.test: customer: Bellows College → Other"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("bellowscollege.test: parked: no → yes"),
        "{}",
        out.stdout
    );
    let shown = show(&db, "bellowscollege.test");
    assert_eq!(
        people(&shown),
        [
            pair("Ann Lee-Smith", "ann@bellowscollege.test"),
            pair("Bob Ray", "bob@bellowscollege.test"),
            pair("Cy Dee", "cy@bellowscollege.test"),
        ]
    );
    assert_eq!(shown["parked"], true);
    assert_eq!(shown["customer"], "Other");
    assert_eq!(shown["tenant"], "bellows2");

    // Setting what is already stored: unchanged.
    let out = db.run(&["domain", "set", "bellowscollege.test", "--parked"]);
    out.assert_code(0);
    assert!(out.stdout.contains("unchanged"), "{}", out.stdout);

    // Clearing; --clear-key-people with --key-person replaces the list.
    let out = db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "--clear-tenant",
        "--clear-relay-to",
        "--clear-customer",
        "--not-parked",
        "--clear-key-people",
        "--key-person",
        "Dee Eff <dee@bellowscollege.test>",
    ]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("bellowscollege.test: tenant: bellows2 → (none)"),
        "{}",
        out.stdout
    );
    let shown = show(&db, "bellowscollege.test");
    assert_eq!(shown["tenant"], Value::Null);
    assert_eq!(shown["relay_to"], Value::Null);
    assert_eq!(shown["customer"], Value::Null);
    assert_eq!(shown["parked"], false);
    assert_eq!(people(&shown), [pair("Dee Eff", "dee@bellowscollege.test")]);

    // A domain not in the inventory is an error naming it, and nothing changes (not even the
    // known domain of the same command).
    let out = db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "typo.test",
        "--tenant",
        "t3",
    ]);
    out.assert_code(2);
    assert!(out.stderr.contains("typo.test"), "{}", out.stderr);
    assert!(
        out.stderr.contains("not in the inventory"),
        "{}",
        out.stderr
    );
    assert_eq!(show(&db, "bellowscollege.test")["tenant"], Value::Null);
    // An unknown customer, conflicting options, nothing to change: errors, nothing changed.
    let out = db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "--customer",
        "Nobody",
        "--tenant",
        "t3",
    ]);
    out.assert_code(2);
    assert!(out.stderr.contains("Nobody"), "{}", out.stderr);
    db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "--tenant",
        "t3",
        "--clear-tenant",
    ])
    .assert_code(2);
    db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "--parked",
        "--not-parked",
    ])
    .assert_code(2);
    let out = db.run(&["domain", "set", "bellowscollege.test"]);
    out.assert_code(2);
    assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);
    assert_eq!(show(&db, "bellowscollege.test")["tenant"], Value::Null);
}

#[test]
fn domain_show_prints_everything_stored() {
    let db = Db::new();
    bellows(&db);
    db.run(&[
        "domain",
        "set",
        "bellowscollege.test",
        "--m365-endpoint",
        "bellowscollege-test.mail.protection.outlook.com",
        "--relay-from",
        "probe@bellowscollege.test",
    ])
    .assert_code(0);

    let shown = show(&db, "BellowsCollege.test");
    assert_eq!(shown["domain"], "bellowscollege.test");
    assert_eq!(
        shown["m365_endpoint"],
        "bellowscollege-test.mail.protection.outlook.com"
    );
    assert_eq!(shown["relay_from"], "probe@bellowscollege.test");
    assert_eq!(shown["parked"], false);
    assert_bellows_intact(&shown);
    assert!(
        shown["added_at"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000),
        "{shown:#}"
    );
    assert_eq!(shown["latest_audit"], Value::Null);
    assert_eq!(shown["checklist"]["total"], 0);

    let text = db.run(&["domain", "show", "bellowscollege.test"]);
    text.assert_code(0);
    for want in [
        "customer:       Bellows College",
        "parked:         no",
        "tenant:         bellowscollege",
        "m365 endpoint:  bellowscollege-test.mail.protection.outlook.com",
        "relay from:     probe@bellowscollege.test",
        "relay to:       alerts@bellowscollege.test",
        "key people:     Ann Lee <ann@bellowscollege.test>",
        "Bob Ray <bob@bellowscollege.test>",
        "added:",
        "latest audit:   not audited",
    ] {
        assert!(text.stdout.contains(want), "{want:?} in:\n{}", text.stdout);
    }

    // After an audit: its date and score, and the checklist's progress.
    let d = "bellowscollege.test";
    let lab = Lab::start(&format!(
        "{d} MX 10 mail.{d}\n\
         mail.{d} A 192.0.2.25\n\
         {d} TXT \"v=spf1 ip4:192.0.2.10 -all\"\n\
         _dmarc.{d} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{d}\"\n"
    ));
    let audit = db.audit(&lab, &[d]);
    audit.assert_code(0);
    let score = audit.json()[0]["score"].as_i64().expect("a score");
    let shown = show(&db, d);
    assert_eq!(shown["latest_audit"]["score"], score, "{shown:#}");
    assert!(shown["latest_audit"]["audited_at"].as_i64().is_some());
    let total = shown["checklist"]["total"].as_u64().expect("a total");
    assert!(total > 0, "the audit made a checklist: {shown:#}");
    let open = shown["checklist"]["open"].as_array().expect("open keys");
    assert_eq!(
        shown["checklist"]["done"].as_u64().expect("done") + open.len() as u64,
        total
    );
    let text = db.run(&["domain", "show", d]);
    assert!(
        text.stdout.contains(&format!("score {score} (run ")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!(" of {total} items done")),
        "{}",
        text.stdout
    );
}

#[test]
fn customer_add_twice_keeps_contacts_and_customer_set_changes_them() {
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
    let show_customer = |db: &Db| {
        let out = db.run(&["customer", "show", "Acme"]);
        out.assert_code(0);
        out.stdout
    };

    // Again without options: nothing changed, said so, exit 0.
    let again = db.run(&["customer", "add", "Acme"]);
    again.assert_code(0);
    assert!(
        again.stderr.contains("customer Acme already exists")
            && again.stderr.contains("customer set"),
        "{}",
        again.stderr
    );
    // Again with other contacts: nothing changed, exit 1, the command to change it named.
    let other = db.run(&[
        "customer",
        "add",
        "Acme",
        "--contacts",
        "Bob <bob@acme.test>",
    ]);
    other.assert_code(1);
    assert!(
        other
            .stderr
            .contains("`mailaudit customer set Acme --contacts 'Bob <bob@acme.test>'`"),
        "{}",
        other.stderr
    );
    let shown = show_customer(&db);
    assert!(
        shown.contains("contacts: Ann <ann@acme.test>") && shown.contains("notes: VIP"),
        "{shown}"
    );

    // customer set: only what is given.
    let set = db.run(&["customer", "set", "Acme", "--notes", "VIP, 24/7"]);
    set.assert_code(0);
    assert_eq!(set.stdout.trim(), "customer Acme: notes: VIP → VIP, 24/7");
    let shown = show_customer(&db);
    assert!(
        shown.contains("contacts: Ann <ann@acme.test>") && shown.contains("notes: VIP, 24/7"),
        "{shown}"
    );
    let missing = db.run(&["customer", "set", "Nobody", "--notes", "x"]);
    missing.assert_code(2);
    assert!(missing.stderr.contains("Nobody"), "{}", missing.stderr);
    db.run(&["customer", "set", "Acme"]).assert_code(2);
}

/// A sparse CSV over existing domains: only the columns present, and only non-empty cells,
/// change anything; each update is printed and summed up.
#[test]
fn import_of_a_sparse_csv_keeps_the_other_columns_and_reports_the_update() {
    let db = Db::new();
    bellows(&db);
    db.run(&[
        "customer",
        "add",
        "Acme",
        "--contacts",
        "it@acme.test",
        "--notes",
        "VIP",
    ])
    .assert_code(0);
    db.run(&[
        "domain",
        "add",
        "acme.test",
        "--customer",
        "Acme",
        "--tenant",
        "acme",
        "--parked",
    ])
    .assert_code(0);

    let (_dir, csv) = csv_file(
        "domain,tenant,key_people,parked\n\
         bellowscollege.test,bellows2,Cy Dee <cy@bellowscollege.test>,\n\
         acme.test,,,\n\
         fresh.test,freshtenant,,\n",
    );
    let out: Output = db.run(&["import", &csv]);
    out.assert_code(0);
    assert!(
        out.stdout.contains(&format!(
            "{csv}:2: bellowscollege.test: tenant: bellowscollege → bellows2"
        )),
        "{}",
        out.stdout
    );
    let summary = out.stdout.lines().last().expect("a summary");
    assert_eq!(
        summary,
        "imported 1 new domain, updated 1 (bellowscollege.test: tenant, key_people), \
         1 unchanged, 0 rows skipped"
    );

    let shown = show(&db, "bellowscollege.test");
    assert_eq!(shown["tenant"], "bellows2");
    assert_eq!(shown["customer"], "Bellows College", "no customer column");
    assert_eq!(shown["relay_to"], "alerts@bellowscollege.test");
    assert_eq!(
        people(&shown),
        [
            pair("Ann Lee", "ann@bellowscollege.test"),
            pair("Bob Ray", "bob@bellowscollege.test"),
            pair("Cy Dee", "cy@bellowscollege.test"),
        ],
        "key_people cells add"
    );
    // Empty cells left acme.test as it was (parked stays yes).
    let acme = show(&db, "acme.test");
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["parked"], true);
    assert_eq!(acme["customer"], "Acme");
    assert_eq!(show(&db, "fresh.test")["tenant"], "freshtenant");

    // An existing customer keeps contacts and notes unless a cell gives them.
    let (_dir2, csv) = csv_file(
        "customer,domain,contacts,notes\n\
         Acme,acme.test,,\n\
         Acme,acme2.test,new@acme.test,\n",
    );
    let out = db.run(&["import", &csv]);
    out.assert_code(0);
    assert!(
        out.stdout.contains(&format!(
            "{csv}:3: customer Acme: contacts: it@acme.test → new@acme.test"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 customer updated (Acme: contacts)"),
        "{}",
        out.stdout
    );
    let acme = db.run(&["customer", "show", "Acme"]);
    assert!(
        acme.stdout.contains("contacts: new@acme.test") && acme.stdout.contains("notes: VIP"),
        "{}",
        acme.stdout
    );
}
