//! `mailaudit exo`: the collection script (read-only, one connect line per sign-in mode, every
//! cmdlet of the shared table) and `exo import` of the real ScubaGear exports and of hand-made
//! bundles, with the correlation against a DNS audit in the store and the history of imports.
//!
//! Every test that imports uses its own SQLite store (`--db sqlite://<tempdir>/m.db`); the
//! correlation test audits through a lab DNS server on loopback with `--no-policy-fetch`.

use std::path::{Path, PathBuf};

use mailaudit_core::exo::CMDLETS;
use serde_json::{Value, json};

use crate::common::{Lab, Output, run};
use crate::store::Db;

/// The real ScubaGear exports.
const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/exo");

/// The finding IDs of an `exo import --format json` report, in order.
fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("findings is an array: {report:#}"))
        .iter()
        .map(|f| f["id"].as_str().expect("finding id is a string").to_owned())
        .collect()
}

/// The strings of a JSON array (panics, showing `report`, if it is not one).
fn strings(v: &Value, report: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array of strings: {report:#}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// Writes `bundle` as JSON to `name` in `dir`.
fn write_bundle(dir: &Path, name: &str, bundle: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bundle.to_string()).expect("write the bundle");
    p
}

/// `exo import PATH --format json` on `db`, plus `extra`.
fn import(db: &Db, path: &Path, extra: &[&str]) -> Output {
    let path = path.to_str().expect("UTF-8 path");
    let mut args = vec!["exo", "import", path, "--format", "json"];
    args.extend_from_slice(extra);
    db.run(&args)
}

// ---------------------------------------------------------------------------------------------
// exo script

/// Whether `script` uses a cmdlet whose verb is `verb` (`Set`): a `Verb-` token starting a word.
fn uses_verb(script: &str, verb: &str) -> bool {
    let needle = format!("{}-", verb.to_ascii_lowercase());
    let lower = script.to_ascii_lowercase();
    lower.match_indices(&needle).any(|(i, _)| {
        lower[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    })
}

/// The `Connect-ExchangeOnline` line of a script.
fn connect_line(script: &str) -> &str {
    script
        .lines()
        .find(|l| l.trim_start().starts_with("Connect-ExchangeOnline"))
        .unwrap_or_else(|| panic!("a Connect-ExchangeOnline line:\n{script}"))
}

#[test]
fn script_is_read_only_and_runs_every_cmdlet() {
    let app = [
        "--app-id",
        "00000000-1111-2222-3333-444444444444",
        "--certificate-thumbprint",
        "ABCDEF0123456789",
        "--organization",
        "contoso.onmicrosoft.com",
    ];
    let delegated = ["--organization", "fabrikam.onmicrosoft.com"];
    for extra in [&[][..], &app[..], &delegated[..]] {
        let mut args = vec!["exo", "script"];
        args.extend_from_slice(extra);
        let out = run(&args);
        out.assert_code(0);
        let s = &out.stdout;
        assert!(s.contains("Connect-ExchangeOnline"), "{s}");
        assert!(s.contains("Disconnect-ExchangeOnline"), "{s}");
        for c in CMDLETS {
            assert!(s.contains(c.cmdlet), "{} is run ({extra:?})", c.cmdlet);
        }
        for verb in ["Set", "New", "Remove", "Enable", "Disable", "Add", "Update"] {
            assert!(
                !uses_verb(s, verb),
                "state-changing {verb}- in the script ({extra:?}):\n{s}"
            );
        }
    }
}

#[test]
fn script_sign_in_modes() {
    // Interactive: no tenant, no app.
    let out = run(&["exo", "script"]);
    out.assert_code(0);
    let line = connect_line(&out.stdout);
    for p in [
        "-AppId",
        "-CertificateThumbprint",
        "-Organization",
        "-DelegatedOrganization",
    ] {
        assert!(!line.contains(p), "interactive sign-in has no {p}: {line}");
    }

    // App-only, with a certificate.
    let out = run(&[
        "exo",
        "script",
        "--app-id",
        "00000000-1111-2222-3333-444444444444",
        "--certificate-thumbprint",
        "ABCDEF0123456789",
        "--organization",
        "contoso.onmicrosoft.com",
    ]);
    out.assert_code(0);
    let line = connect_line(&out.stdout);
    for p in [
        "-AppId '00000000-1111-2222-3333-444444444444'",
        "-CertificateThumbprint 'ABCDEF0123456789'",
        "-Organization 'contoso.onmicrosoft.com'",
    ] {
        assert!(line.contains(p), "{p} in {line}");
    }
    assert!(!line.contains("-DelegatedOrganization"), "{line}");

    // Delegated (GDAP) to a customer's tenant.
    let out = run(&[
        "exo",
        "script",
        "--organization",
        "fabrikam.onmicrosoft.com",
    ]);
    out.assert_code(0);
    let line = connect_line(&out.stdout);
    assert!(
        line.contains("-DelegatedOrganization 'fabrikam.onmicrosoft.com'"),
        "{line}"
    );
    assert!(!line.contains("-AppId"), "{line}");

    // App-only parameters without the others: a usage error, no script.
    for args in [
        &["exo", "script", "--app-id", "x"][..],
        &["exo", "script", "--app-id", "x", "--organization", "o"][..],
        &[
            "exo",
            "script",
            "--app-id",
            "x",
            "--certificate-thumbprint",
            "t",
        ][..],
        &["exo", "script", "--certificate-thumbprint", "t"][..],
    ] {
        let out = run(args);
        out.assert_code(2);
        assert!(
            !out.stdout.contains("Connect-ExchangeOnline"),
            "{args:?} printed a script"
        );
    }
}

#[test]
fn script_output_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("collect.ps1");
    let out = run(&[
        "exo",
        "script",
        "--output",
        path.to_str().expect("UTF-8 path"),
    ]);
    out.assert_code(0);
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", out.stdout);
    let written = std::fs::read_to_string(&path).expect("the script was written");
    assert_eq!(written, run(&["exo", "script"]).stdout);
}

// ---------------------------------------------------------------------------------------------
// exo import: the real exports

#[test]
fn import_real_exports_directory() {
    let db = Db::new();
    let out = import(&db, Path::new(TESTDATA), &[]);
    out.assert_code(0);
    let r = out.json();
    assert_eq!(r["organization"], "tqhjy.onmicrosoft.com", "{r:#}");
    let mut expected = vec!["EXO-DIRECTSEND-ALLOWED", "EXO-CONNECTOR-UNRESTRICTED"];
    expected.extend(["EXO-DKIM-DISABLED"; 5]);
    expected.push("EXO-ANTISPOOF-RULE-MISSING");
    assert_eq!(ids(&r), expected, "{r:#}");
    // Every finding carries what was read and the PowerShell fix.
    for f in r["findings"].as_array().expect("findings") {
        assert!(
            f["evidence"].as_str().is_some_and(|e| !e.is_empty()),
            "{f:#}"
        );
        assert!(f["fix"].as_str().is_some_and(|e| !e.is_empty()), "{f:#}");
    }
    // ScubaGear's own DNS look-ups and the sharing policy are not exports of the script.
    for skipped in [
        "dkim_records.json",
        "dmarc_records.json",
        "spf_records.json",
        "sharing_policy.json",
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(skipped) && l.contains("skipped")),
            "{skipped} reported as skipped:\n{}",
            out.stderr
        );
        assert!(
            !strings(&r["sources"], &r).iter().any(|s| s == skipped),
            "{skipped} is not a source"
        );
    }
    for read in [
        "org_config.json",
        "inbound_connectors.json",
        "dkim_config.json",
    ] {
        assert!(
            strings(&r["sources"], &r).iter().any(|s| s == read),
            "{read} is a source: {r:#}"
        );
    }
    // First import of this tenant: nothing to compare with.
    assert!(r["changes"].is_null(), "{r:#}");
}

#[test]
fn import_real_exports_fail_on_and_text() {
    let db = Db::new();
    // EXO-CONNECTOR-UNRESTRICTED is critical.
    import(
        &db,
        Path::new(TESTDATA),
        &["--fail-on", "critical", "--no-store"],
    )
    .assert_code(1);

    let out = db.run(&["exo", "import", TESTDATA, "--no-store"]);
    out.assert_code(0);
    let t = &out.stdout;
    assert!(t.contains("tqhjy.onmicrosoft.com"), "{t}");
    assert!(t.contains("EXO-CONNECTOR-UNRESTRICTED"), "{t}");
    assert!(
        t.contains("inbound connector test 1"),
        "the connector is named:\n{t}"
    );
    assert!(
        t.contains("Set-InboundConnector -Identity 'inbound connector test 1'"),
        "the connector's fix:\n{t}"
    );
    assert!(
        t.contains("Set-OrganizationConfig -RejectDirectSend $true"),
        "the Direct Send fix:\n{t}"
    );
    assert!(
        t.contains("New-DkimSigningConfig -DomainName 'example.com'"),
        "the DKIM fix:\n{t}"
    );
}

// ---------------------------------------------------------------------------------------------
// exo import: hand-made bundles

fn contoso_bundle(reject_direct_send: bool, when_changed: &str) -> Value {
    json!({
        "mailaudit_bundle": 1,
        "organization": "contoso.onmicrosoft.com",
        "org_config": [{"Name": "contoso.onmicrosoft.com", "RejectDirectSend": reject_direct_send}],
        "accepted_domains": [
            {"DomainName": "contoso.onmicrosoft.com", "InitialDomain": true, "DomainType": "Authoritative"},
            {"DomainName": "contoso.com", "Default": true, "DomainType": "Authoritative"}
        ],
        // A single object instead of an array, and a /Date()/ value.
        "inbound_connectors": {
            "Name": "Scanner", "Enabled": true, "ConnectorType": "Partner",
            "SenderDomains": ["smtp:contoso.com;1"], "SenderIPAddresses": [],
            "RequireTls": false, "RestrictDomainsToIPAddresses": false,
            "RestrictDomainsToCertificate": false, "TlsSenderCertificateName": null,
            "WhenChanged": when_changed
        },
        "dkim_config": [{"Domain": "contoso.com", "Enabled": false, "Status": "CnameMissing",
            "Selector1CNAME": "selector1-contoso-com._domainkey.contoso.onmicrosoft.com",
            "Selector2CNAME": "selector2-contoso-com._domainkey.contoso.onmicrosoft.com"}],
        "transport_rules": [],
        "transport_config": {"SmtpClientAuthenticationDisabled": false},
        "errors": {}
    })
}

#[test]
fn import_hand_made_bundle() {
    let db = Db::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = write_bundle(
        dir.path(),
        "contoso.json",
        &contoso_bundle(true, "/Date(1723810171000)/"),
    );
    let out = import(&db, &path, &[]);
    out.assert_code(0);
    let r = out.json();
    assert_eq!(r["organization"], "contoso.onmicrosoft.com", "{r:#}");
    assert_eq!(
        ids(&r),
        [
            "EXO-CONNECTOR-UNRESTRICTED",
            "EXO-CONNECTOR-NO-TLS",
            "EXO-DKIM-DISABLED",
            "EXO-ANTISPOOF-RULE-MISSING",
            "EXO-SMTP-AUTH-ENABLED",
        ],
        "{r:#}"
    );
    assert_eq!(strings(&r["sources"], &r), ["contoso.json"]);
    let dkim = &r["findings"][2];
    assert!(
        dkim["fix"].as_str().is_some_and(|f| f.contains(
            "selector1._domainkey.contoso.com CNAME selector1-contoso-com._domainkey.contoso.onmicrosoft.com"
        )),
        "{dkim:#}"
    );
    // The /Date()/ value is read without a warning.
    assert!(
        !out.stderr.contains("WhenChanged"),
        "no warning about WhenChanged: {}",
        out.stderr
    );

    // The same instant as ISO 8601: the stored /Date()/ was read as that instant, so nothing changed.
    let iso = write_bundle(
        dir.path(),
        "contoso-iso.json",
        &contoso_bundle(true, "2024-08-16T12:09:31Z"),
    );
    let again = import(&db, &iso, &["--no-store"]);
    again.assert_code(0);
    let r = again.json();
    assert_eq!(r["changes"], json!([]), "{r:#}");
}

#[test]
fn import_not_json_names_the_file() {
    let db = Db::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "this is not { json").expect("write");
    let out = import(&db, &path, &[]);
    out.assert_code(2);
    assert!(out.stderr.contains("broken.json"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// An export over `--max-file-mb` (default 64 MiB) is refused before it is read, naming the
/// file, and nothing is recorded; at or under the cap it is read. (A 200 MB export took 1.15 GB
/// of memory before the cap.)
#[test]
fn import_refuses_a_file_over_the_size_cap() {
    let db = Db::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A valid bundle padded with white space to just over 1 MiB.
    let mut text = contoso_bundle(true, "/Date(1723810171000)/").to_string();
    text.push_str(&" ".repeat((1 << 20) + 1 - text.len()));
    let path = dir.path().join("big.json");
    std::fs::write(&path, &text).expect("write");
    let out = import(&db, &path, &["--max-file-mb", "1"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(&format!(
            "{}: larger than 1 MiB (--max-file-mb)",
            path.display()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    // Nothing was recorded: the next import has no previous one to compare with.
    let ok = import(&db, &path, &["--max-file-mb", "2"]);
    ok.assert_code(0);
    assert_eq!(ok.json()["organization"], "contoso.onmicrosoft.com");
    assert_eq!(ok.json()["changes"], Value::Null, "{}", ok.stdout);

    // The default cap, 64 MiB, on a sparse file (no disk space used), in a directory.
    let sparse_dir = dir.path().join("exports");
    std::fs::create_dir(&sparse_dir).expect("mkdir");
    let sparse = sparse_dir.join("inbound_connectors.json");
    std::fs::File::create(&sparse)
        .and_then(|f| f.set_len((64 << 20) + 1))
        .expect("a sparse file");
    let out = import(&db, &sparse_dir, &[]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(&format!(
            "{}: larger than 64 MiB (--max-file-mb)",
            sparse.display()
        )),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Correlation with the inventory and the DNS audit

#[test]
fn import_correlates_with_inventory_and_dns_audit() {
    let db = Db::new();
    // contoso.test at Microsoft 365, without its DKIM selector CNAMEs.
    let lab = Lab::start(
        "\
contoso.test MX 0 contoso-test.mail.protection.outlook.com
contoso-test.mail.protection.outlook.com A 192.0.2.26
contoso.test TXT \"v=spf1 ip4:192.0.2.10 -all\"
_dmarc.contoso.test TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@contoso.test\"
",
    );
    db.run(&["domain", "add", "contoso.test"]).assert_code(0);
    db.audit(&lab, &["contoso.test"]).assert_code(0);

    let s1 = "selector1-contoso-test._domainkey.contoso.onmicrosoft.com";
    let s2 = "selector2-contoso-test._domainkey.contoso.onmicrosoft.com";
    let bundle = json!({
        "mailaudit_bundle": 1,
        "organization": "contoso.onmicrosoft.com",
        "org_config": {"Name": "contoso.onmicrosoft.com", "RejectDirectSend": true},
        "accepted_domains": [
            {"DomainName": "contoso.onmicrosoft.com", "InitialDomain": true},
            {"DomainName": "contoso.test", "Default": true},
            {"DomainName": "fabrikam.test"}
        ],
        "dkim_config": [
            {"Domain": "contoso.test", "Enabled": true, "Selector1CNAME": s1, "Selector2CNAME": s2}
        ]
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = write_bundle(dir.path(), "bundle.json", &bundle);
    let out = import(&db, &path, &[]);
    out.assert_code(0);
    let r = out.json();
    let c = &r["correlation"];
    assert_eq!(
        c["missing_from_inventory"],
        json!(["fabrikam.test"]),
        "{r:#}"
    );
    let mismatch = c["dkim_mismatch"]
        .as_array()
        .unwrap_or_else(|| panic!("dkim_mismatch is an array: {r:#}"));
    assert!(
        mismatch.iter().any(|m| m[0] == "contoso.test"
            && m[1]
                .as_str()
                .is_some_and(|e| e.contains("selector1._domainkey.contoso.test"))),
        "contoso.test's missing CNAMEs: {r:#}"
    );
    assert_eq!(c["dkim_cnames"], json!([["contoso.test", s1, s2]]), "{r:#}");

    // The text report proposes the missing domain and gives the CNAMEs to publish.
    let text = db.run(&["exo", "import", path.to_str().expect("UTF-8"), "--no-store"]);
    text.assert_code(0);
    assert!(text.stdout.contains("fabrikam.test"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains(&format!("selector1._domainkey.contoso.test. CNAME {s1}.")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("selector2._domainkey.contoso.test. CNAME {s2}.")),
        "{}",
        text.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// History between imports

#[test]
fn import_history_and_no_store() {
    let db = Db::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let off = write_bundle(
        dir.path(),
        "off.json",
        &contoso_bundle(false, "/Date(1723810171000)/"),
    );
    let on = write_bundle(
        dir.path(),
        "on.json",
        &contoso_bundle(true, "/Date(1723810171000)/"),
    );
    let changes = |out: &Output| -> Value {
        out.assert_code(0);
        out.json()["changes"].clone()
    };

    // First import: nothing to compare with.
    assert!(changes(&import(&db, &off, &[])).is_null());
    // The same export again: no change.
    assert_eq!(changes(&import(&db, &off, &[])), json!([]));

    // RejectDirectSend turned on, not recorded.
    let c = changes(&import(&db, &on, &["--no-store"]));
    let list = strings(&c, &c);
    assert!(
        list.iter().any(|l| l.contains("RejectDirectSend")),
        "{list:?}"
    );
    // Still compared with the stored (off) import: --no-store did not record.
    let c = changes(&import(&db, &on, &[]));
    let list = strings(&c, &c);
    assert!(
        list.iter().any(|l| l.contains("RejectDirectSend")),
        "{list:?}"
    );
    // Now recorded: no change against itself.
    assert_eq!(changes(&import(&db, &on, &[])), json!([]));
}

// ---------------------------------------------------------------------------------------------
// After an import: the checklist and the guide act on the tenant's real objects

/// A bundle for contoso.test: Direct Send rejected or not, the tenant's own anti-spoofing rule
/// `Block spoof` (in `mode`), a spam-bypass rule for the domain, a named unrestricted partner
/// connector and an anti-phishing policy protecting Ann Lee.
fn tenant_bundle(reject_direct_send: bool, mode: &str) -> Value {
    json!({
        "mailaudit_bundle": 1,
        "organization": "contoso.onmicrosoft.com",
        "org_config": {"Name": "contoso.onmicrosoft.com", "RejectDirectSend": reject_direct_send},
        "accepted_domains": [
            {"DomainName": "contoso.onmicrosoft.com", "InitialDomain": true},
            {"DomainName": "contoso.test", "Default": true}
        ],
        "inbound_connectors": [{
            "Name": "Copier relay", "Enabled": true, "ConnectorType": "Partner",
            "SenderDomains": ["smtp:contoso.test;1"], "SenderIPAddresses": ["203.0.113.0/24"],
            "RequireTls": true, "RestrictDomainsToIPAddresses": false,
            "RestrictDomainsToCertificate": false
        }],
        "transport_rules": [
            {"Name": "Block spoof", "State": "Enabled", "Mode": mode,
             "FromScope": "NotInOrganization", "SenderDomainIs": ["contoso.test"],
             "RejectMessageEnhancedStatusCode": "5.7.1"},
            {"Name": "Allow own domain", "State": "Enabled", "SetSCL": -1,
             "SenderDomainIs": ["contoso.test"]}
        ],
        "anti_phish_policies": [{
            "Name": "Contoso anti-phish", "Enabled": true, "IsDefault": true,
            "EnableTargetedUserProtection": true,
            "TargetedUsersToProtect": ["Ann Lee;ann@contoso.test"],
            "EnableOrganizationDomainsProtection": true,
            "EnableMailboxIntelligence": true, "EnableMailboxIntelligenceProtection": true
        }]
    })
}

/// `(key, state, by)` of each checklist item of `domain`.
fn checklist_states(db: &Db, domain: &str) -> Vec<(String, String, String)> {
    db.checklist(domain)
        .iter()
        .map(|i| {
            (
                i["key"].as_str().expect("key").to_owned(),
                i["state"].as_str().expect("state").to_owned(),
                i["by"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn state_of<'a>(states: &'a [(String, String, String)], key: &str) -> (&'a str, &'a str) {
    states
        .iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, s, by)| (s.as_str(), by.as_str()))
        .unwrap_or_else(|| panic!("{key} in {states:?}"))
}

#[test]
fn import_ticks_and_reopens_the_checklist_and_the_guide_names_real_objects() {
    let db = Db::new();
    let lab = Lab::start(
        "\
contoso.test MX 0 contoso-test.mail.protection.outlook.com
contoso-test.mail.protection.outlook.com A 192.0.2.26
contoso.test TXT \"v=spf1 include:spf.protection.outlook.com -all\"
_dmarc.contoso.test TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@contoso.test\"
",
    );
    db.run(&[
        "domain",
        "add",
        "contoso.test",
        "--key-person",
        "Ann Lee <ann@contoso.test>",
    ])
    .assert_code(0);
    db.audit(&lab, &["contoso.test"]).assert_code(0);
    // The DNS audit cannot tell: the Exchange Online items are open.
    let before = checklist_states(&db, "contoso.test");
    for key in [
        "direct-send-reject",
        "antispoof-rule-audit",
        "antispoof-rule-enforce",
        "impersonation",
    ] {
        assert_eq!(state_of(&before, key).0, "open", "{before:?}");
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let enforcing = write_bundle(dir.path(), "enforce.json", &tenant_bundle(true, "Enforce"));
    let out = import(&db, &enforcing, &[]);
    out.assert_code(0);
    let r = out.json();
    let change = &r["checklist"][0];
    assert_eq!(change["domain"], "contoso.test", "{r:#}");
    let after = checklist_states(&db, "contoso.test");
    for key in [
        "direct-send-reject",
        "antispoof-rule-audit",
        "antispoof-rule-enforce",
        "impersonation",
    ] {
        assert_eq!(
            state_of(&after, key),
            ("done", "mailaudit (verified by Exchange Online import)"),
            "{after:?}"
        );
    }
    // The spam bypass and the unrestricted connector are the import's findings: open.
    assert_eq!(
        state_of(&after, "spam-bypass-remove").0,
        "open",
        "{after:?}"
    );
    assert_eq!(
        state_of(&after, "connectors-partner").0,
        "open",
        "{after:?}"
    );
    // The text `checklist` shows them ticked.
    let text = db.run(&["checklist", "contoso.test"]);
    text.assert_code(0);
    assert!(
        text.stdout.lines().any(|l| l.contains("[x]")
            && l.contains("direct-send-reject")
            && l.contains("verified by Exchange Online import")),
        "{}",
        text.stdout
    );

    // The guide acts on the tenant's objects by name.
    let g = db.run(&["guide", "contoso.test"]);
    g.assert_code(0);
    assert!(
        g.stdout
            .contains("Disable-TransportRule -Identity 'Allow own domain'"),
        "{}",
        g.stdout
    );
    assert!(
        g.stdout.contains(
            "Set-InboundConnector -Identity 'Copier relay' -RequireTls $true -RestrictDomainsToIPAddresses $true"
        ),
        "{}",
        g.stdout
    );
    assert!(
        g.stdout
            .contains("Remove-InboundConnector -Identity 'Copier relay'"),
        "{}",
        g.stdout
    );
    assert!(!g.stdout.contains("<connector name>"), "{}", g.stdout);
    assert!(!g.stdout.contains("New-TransportRule"), "{}", g.stdout);
    assert!(
        g.stdout.contains("'Block spoof' is enabled and enforced"),
        "{}",
        g.stdout
    );
    assert!(
        g.stdout
            .contains("Set-AntiPhishPolicy -Identity 'Contoso anti-phish'"),
        "{}",
        g.stdout
    );

    // A later import with the rule back in audit mode and Direct Send accepted reopens them,
    // and the guide enforces the tenant's rule instead of creating another.
    let audit = write_bundle(dir.path(), "audit.json", &tenant_bundle(false, "Audit"));
    let out = db.run(&["exo", "import", audit.to_str().expect("UTF-8")]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("contoso.test: reopened direct-send-reject, antispoof-rule-enforce"),
        "{}",
        out.stdout
    );
    let reopened = checklist_states(&db, "contoso.test");
    for key in ["direct-send-reject", "antispoof-rule-enforce"] {
        assert_eq!(
            state_of(&reopened, key),
            (
                "open",
                "mailaudit (regression seen by Exchange Online import)"
            ),
            "{reopened:?}"
        );
    }
    assert_eq!(state_of(&reopened, "antispoof-rule-audit").0, "done");
    let g = db.run(&["guide", "contoso.test"]);
    g.assert_code(0);
    assert!(
        g.stdout
            .contains("Set-TransportRule -Identity 'Block spoof' -Mode Enforce"),
        "{}",
        g.stdout
    );
    assert!(!g.stdout.contains("New-TransportRule"), "{}", g.stdout);
    assert!(!g.stdout.contains("Reject spoofed"), "{}", g.stdout);

    // --no-store changes no checklist.
    let again = import(&db, &enforcing, &["--no-store"]);
    again.assert_code(0);
    assert_eq!(again.json()["checklist"], json!([]));
    assert_eq!(
        state_of(&checklist_states(&db, "contoso.test"), "direct-send-reject").0,
        "open"
    );
}

/// The PowerShell lines of a Markdown guide or a text output: every line that starts with a
/// cmdlet of the products the guide drives.
fn powershell_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            [
                "New-",
                "Set-",
                "Remove-",
                "Enable-",
                "Disable-",
                "$o = Get-",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect()
}

/// The single-quoted value of `-param` in `line`, its doubled quotes kept.
fn ps_value<'a>(line: &'a str, param: &str) -> Option<&'a str> {
    let at = line.find(&format!("-{param} '"))? + param.len() + 3;
    let rest = &line[at..];
    let mut end = 0;
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let quote = |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}');
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if quote(c) {
            if chars.get(i + 1).is_some_and(|(_, n)| quote(*n)) {
                i += 2;
                continue;
            }
            end = at;
            break;
        }
        i += 1;
    }
    Some(&rest[..end])
}

#[test]
fn long_domains_typographic_quotes_and_protected_users_paste_safely() {
    // Issue 11's cases through the command line: two subsidiaries with long names (a rule
    // named after both would be 100+ characters, over Exchange Online's 64), a key person
    // whose name holds a typographic apostrophe, and a protected user the export already has.
    let long_a = "northwind-traders-international-subsidiary.example";
    let long_b = "northwind-traders-international-holdings.example";
    let db = Db::new();
    let lab = Lab::start(&format!(
        "\
{long_a} MX 0 northwindtradersinternationalsubsidiary-example.mail.protection.outlook.com
northwindtradersinternationalsubsidiary-example.mail.protection.outlook.com A 192.0.2.27
{long_a} TXT \"v=spf1 include:spf.protection.outlook.com -all\"
_dmarc.{long_a} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{long_a}\"
"
    ));
    db.run(&[
        "domain",
        "add",
        long_a,
        "--key-person",
        "Se\u{e1}n O\u{2019}Brien <sean@northwind.example>",
        "--key-person",
        "Ann Lee <ann@northwind.example>",
    ])
    .assert_code(0);
    db.audit(&lab, &[long_a]).assert_code(0);
    let bundle = json!({
        "mailaudit_bundle": 1,
        "organization": "northwind.onmicrosoft.com",
        "org_config": {"Name": "northwind.onmicrosoft.com", "RejectDirectSend": false},
        "accepted_domains": [
            {"DomainName": "northwind.onmicrosoft.com", "InitialDomain": true},
            {"DomainName": long_a, "Default": true},
            {"DomainName": long_b}
        ],
        "transport_rules": [],
        "anti_phish_policies": [{
            "Name": "Office365 AntiPhish Default", "Enabled": true, "IsDefault": true,
            "EnableTargetedUserProtection": true,
            "TargetedUsersToProtect": ["Ann Lee;ann@northwind.example"],
            "EnableOrganizationDomainsProtection": true,
            "EnableMailboxIntelligence": true, "EnableMailboxIntelligenceProtection": true
        }]
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = write_bundle(dir.path(), "northwind.json", &bundle);
    let imported = db.run(&["exo", "import", path.to_str().expect("UTF-8")]);
    imported.assert_code(0);
    let guide = db.run(&["guide", long_a]);
    guide.assert_code(0);

    let mut rule_names = 0;
    for out in [&imported.stdout, &guide.stdout] {
        for line in powershell_lines(out) {
            if line.contains("TransportRule") {
                for p in ["Name", "Identity"] {
                    if let Some(v) = ps_value(line, p) {
                        rule_names += 1;
                        assert!(
                            v.chars().count() <= 64,
                            "a rule name over 64 characters ({}): {line}",
                            v.chars().count()
                        );
                    }
                }
            }
            // The typographic apostrophe is doubled wherever the name is pasted.
            if line.contains("O\u{2019}") {
                assert!(line.contains("O\u{2019}\u{2019}Brien"), "{line}");
            }
            // The protected users are extended, never replaced.
            if line.contains("-TargetedUsersToProtect") {
                assert!(
                    line.contains("-TargetedUsersToProtect @{Add=")
                        || line.contains("Ann Lee;ann@northwind.example"),
                    "drops Ann Lee: {line}"
                );
                assert!(!line.contains("'Ann Lee;"), "adds Ann Lee again: {line}");
                assert!(
                    line.contains("Se\u{e1}n O\u{2019}\u{2019}Brien;sean@northwind.example"),
                    "{line}"
                );
            }
        }
    }
    assert!(
        rule_names > 0,
        "no transport rule line in:\n{}\n{}",
        imported.stdout,
        guide.stdout
    );
    assert!(
        guide.stdout.contains("-TargetedUsersToProtect"),
        "{}",
        guide.stdout
    );
    // Ann Lee is protected already: only Seán is added.
    assert!(
        guide.stdout.contains(
            "-TargetedUsersToProtect @{Add='Se\u{e1}n O\u{2019}\u{2019}Brien;sean@northwind.example'}"
        ),
        "{}",
        guide.stdout
    );
}

/// A tenant with `domain` locked down: Direct Send rejected, the one partner connector
/// restricted to its IP addresses (or not, with `restricted` false), an enforcing anti-spoofing
/// rule, Ann Lee protected, mailbox intelligence on (or not).
fn hardened_bundle(domain: &str, restricted: bool, intelligence: bool) -> Value {
    json!({
        "mailaudit_bundle": 1,
        "organization": "contosolegal.onmicrosoft.com",
        "org_config": {"Name": "contosolegal.onmicrosoft.com", "RejectDirectSend": true},
        "accepted_domains": [
            {"DomainName": "contosolegal.onmicrosoft.com", "InitialDomain": true},
            {"DomainName": domain, "Default": true}
        ],
        "inbound_connectors": [{
            "Name": "Copier relay", "Enabled": true, "ConnectorType": "Partner",
            "SenderDomains": [format!("smtp:{domain};1")], "SenderIPAddresses": ["203.0.113.0/24"],
            "RequireTls": true, "RestrictDomainsToIPAddresses": restricted,
            "RestrictDomainsToCertificate": false
        }],
        "transport_rules": [
            {"Name": "Block spoof", "State": "Enabled", "Mode": "Enforce",
             "FromScope": "NotInOrganization", "SenderDomainIs": [domain],
             "RejectMessageEnhancedStatusCode": "5.7.1"}
        ],
        "anti_phish_policies": [{
            "Name": "Contoso anti-phish", "Enabled": true, "IsDefault": true,
            "EnableTargetedUserProtection": true,
            "TargetedUsersToProtect": [format!("Ann Lee;ann@{domain}")],
            "EnableOrganizationDomainsProtection": true,
            "EnableMailboxIntelligence": intelligence, "EnableMailboxIntelligenceProtection": true
        }]
    })
}

/// The seed's checklist items tick without a hand: on the sample's hardened Microsoft 365
/// domain the audit ticks `rerun-audit` (nothing left to fix) and lists no DMARC roll-out item
/// (it is at p=reject); an import ticks `connectors-audit` once no partner connector is
/// unrestricted and `mailbox-intelligence` once it is on, and reopens them when a later import
/// shows otherwise. With both, every item of the checklist is done.
#[test]
fn a_hardened_domains_checklist_closes_from_the_audit_and_the_import() {
    const D: &str = "contoso-legal.example";
    let (zone, _) = mailaudit_lab::sample_fleet();
    let lab = Lab::start(&zone.to_string());
    let db = Db::new();
    db.run(&[
        "domain",
        "add",
        D,
        "--key-person",
        &format!("Ann Lee <ann@{D}>"),
    ])
    .assert_code(0);
    let audit = db.audit(&lab, &[D]);
    audit.assert_code(0);
    assert_eq!(
        audit.json()[0]["findings"].as_array().map(Vec::len),
        Some(0),
        "hardened in DNS: {}",
        audit.stdout
    );
    let states = checklist_states(&db, D);
    assert_eq!(
        state_of(&states, "rerun-audit"),
        ("done", "mailaudit (verified by audit)"),
        "{states:?}"
    );
    for key in ["dmarc-verify", "dmarc-review-reports", "dmarc-reject"] {
        assert!(
            !states.iter().any(|(k, _, _)| k == key),
            "{key}: {states:?}"
        );
    }
    for key in ["connectors-audit", "mailbox-intelligence"] {
        assert_eq!(state_of(&states, key), ("open", ""), "{states:?}");
    }

    // An unrestricted connector, mailbox intelligence off: both stay open.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let loose = write_bundle(dir.path(), "loose.json", &hardened_bundle(D, false, false));
    import(&db, &loose, &[]).assert_code(0);
    let states = checklist_states(&db, D);
    for key in ["connectors-audit", "mailbox-intelligence"] {
        assert_eq!(state_of(&states, key).0, "open", "{key}: {states:?}");
    }

    // Locked down: the import ticks them, and nothing is left open.
    let tight = write_bundle(dir.path(), "tight.json", &hardened_bundle(D, true, true));
    let out = import(&db, &tight, &[]);
    out.assert_code(0);
    let states = checklist_states(&db, D);
    for key in ["connectors-audit", "mailbox-intelligence"] {
        assert_eq!(
            state_of(&states, key),
            ("done", "mailaudit (verified by Exchange Online import)"),
            "{states:?}"
        );
    }
    let open: Vec<&String> = states
        .iter()
        .filter(|(_, s, _)| s != "done")
        .map(|(k, _, _)| k)
        .collect();
    assert!(open.is_empty(), "still open: {open:?} in {states:?}");

    // Mailbox intelligence turned off again: reopened by the next import.
    let off = write_bundle(dir.path(), "off.json", &hardened_bundle(D, true, false));
    let out = db.run(&["exo", "import", off.to_str().expect("UTF-8")]);
    out.assert_code(0);
    assert_eq!(
        state_of(&checklist_states(&db, D), "mailbox-intelligence"),
        (
            "open",
            "mailaudit (regression seen by Exchange Online import)"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Inbound SMTP DANE: the tenant's status against the audited MX

#[test]
fn import_flags_dane_enabled_on_the_legacy_mx_and_the_reverse() {
    let db = Db::new();
    // contoso.com on the legacy endpoint (DANE enabled in the tenant), fabrikam.com already on
    // the DNSSEC endpoint (DANE not enabled), tailspin.com legacy and disabled: consistent.
    let lab = Lab::start(
        "\
contoso.com MX 0 contoso-com.mail.protection.outlook.com
contoso-com.mail.protection.outlook.com A 192.0.2.31
fabrikam.com MX 0 fabrikam-com.r-v1.mx.microsoft
fabrikam-com.r-v1.mx.microsoft A 192.0.2.32
tailspin.com MX 0 tailspin-com.mail.protection.outlook.com
tailspin-com.mail.protection.outlook.com A 192.0.2.33
",
    );
    for d in ["contoso.com", "fabrikam.com", "tailspin.com"] {
        db.run(&["domain", "add", d]).assert_code(0);
    }
    let audit = db.audit(&lab, &["contoso.com", "fabrikam.com", "tailspin.com"]);
    assert!(
        audit.stdout.contains("MX-M365-LEGACY"),
        "the legacy MX is reported: {}",
        audit.stdout
    );
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/exo-dane/bundle.json"
    ));
    let out = import(&db, &path, &[]);
    out.assert_code(0);
    let r = out.json();
    let m = r["correlation"]["dane_mismatch"]
        .as_array()
        .unwrap_or_else(|| panic!("dane_mismatch is an array: {r:#}"));
    let of = |d: &str| -> Vec<&str> {
        m.iter()
            .filter(|e| e[0] == d)
            .filter_map(|e| e[1].as_str())
            .collect()
    };
    let contoso = of("contoso.com");
    assert_eq!(contoso.len(), 1, "{r:#}");
    assert!(
        contoso[0].contains("contoso-com.mail.protection.outlook.com")
            && contoso[0].contains("contoso-com.o-v1.mx.microsoft"),
        "names the legacy MX and the tenant's expected MX, read from the export: {}",
        contoso[0]
    );
    let fabrikam = of("fabrikam.com");
    assert_eq!(fabrikam.len(), 1, "{r:#}");
    assert!(
        fabrikam[0].contains("Enable-SmtpDaneInbound -DomainName 'fabrikam.com'"),
        "{}",
        fabrikam[0]
    );
    assert!(of("tailspin.com").is_empty(), "consistent: {r:#}");
    // northwind.com's cmdlets failed: unknown, never a mismatch.
    assert!(of("northwind.com").is_empty(), "{r:#}");

    // The text report says the same.
    let text = db.run(&["exo", "import", path.to_str().expect("UTF-8"), "--no-store"]);
    text.assert_code(0);
    assert!(
        text.stdout
            .contains("Inbound SMTP DANE: tenant and MX disagree:"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("fabrikam.com: the MX points at fabrikam-com.r-v1.mx.microsoft"),
        "{}",
        text.stdout
    );
}
