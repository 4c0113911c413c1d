//! DNS data is attacker-controlled: records are printed verbatim as evidence, so every output
//! format must neutralise markup and terminal control characters found in them.

use crate::common::{Lab, run};

const ZONE: &str = r#"
evil.test         MX  0 evil-test.mail.protection.outlook.com
evil.test         TXT "v=spf1 include:spf.protection.outlook.com ipv4:<script>alert(1)</script> -all"
_dmarc.evil.test  TXT "v=DMARC1; p=none; rua=mailto:<img src=x onerror=alert(1)>@evil.test"
esc.test          MX  0 esc-test.mail.protection.outlook.com
esc.test          TXT "v=spf1 \027[2J\027[31mowned ~all"
_dmarc.esc.test   TXT "v=DMARC1; p=none; rua=mailto:a\027]0;title\007@esc.test"
spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 -all"
"#;

fn audit(lab: &Lab, format: &str) -> String {
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--format",
        format,
        "--color",
        "never",
        "evil.test",
        "esc.test",
    ]);
    out.assert_code(0);
    out.stdout
}

#[test]
fn html_escapes_record_text() {
    let lab = Lab::start(ZONE);
    let html = audit(&lab, "html");
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{html}");
    assert!(!lower.contains("<img"), "{html}");
    assert!(
        html.contains("&lt;script&gt;"),
        "the record is shown, escaped"
    );
    assert!(!html.contains('\x1b'), "no raw control characters in HTML");
}

#[test]
fn json_carries_records_verbatim() {
    let lab = Lab::start(ZONE);
    let report: serde_json::Value = serde_json::from_str(&audit(&lab, "json")).expect("JSON");
    assert_eq!(
        report[0]["spf"]["record"],
        "v=spf1 include:spf.protection.outlook.com ipv4:<script>alert(1)</script> -all"
    );
    assert_eq!(
        report[1]["spf"]["record"],
        "v=spf1 \u{1b}[2J\u{1b}[31mowned ~all"
    );
}

#[test]
fn table_does_not_pass_terminal_escapes_through() {
    let lab = Lab::start(ZONE);
    let table = audit(&lab, "table");
    assert!(table.contains("esc.test"));
    assert!(
        !table.contains('\x1b') && !table.contains('\x07'),
        "DNS data wrote control characters to the terminal: {table:?}"
    );
}

/// Raw terminal controls and bidi overrides that must never reach a text output: ESC (CSI and
/// OSC sequences), BEL (ends an OSC title change), and the Unicode bidi overrides/isolates.
#[track_caller]
fn assert_no_terminal_controls(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(c)
                || ('\u{2066}'..='\u{2069}').contains(c)
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what} passed {bad:?} to the terminal:\n{text:?}"
    );
}

/// A DMARC record whose tag values carry an OSC title change, a screen clear and a bidi
/// override (built in code), and an SPF record with an OSC sequence. (An MX host name with ESC
/// cannot be served: the lab's DNS server refuses such names.)
fn terminal_zone() -> mailaudit_lab::Zone {
    use mailaudit_lab::{LabRecord, Zone};
    let mut zone = Zone::parse(
        "osc.test MX 0 osc-test.mail.protection.outlook.com\n\
         osc.test TXT \"v=spf1 include:spf.protection.outlook.com \\027]0;pwned\\007 ~all\"\n\
         spf.protection.outlook.com TXT \"v=spf1 ip4:40.92.0.0/15 -all\"\n",
    )
    .expect("zone parses");
    zone.add(
        "_dmarc.osc.test",
        LabRecord::Txt(vec![
            "v=DMARC1; p=none; rua=mailto:a\u{1b}]0;title\u{7}@osc.test; \
             ruf=mailto:\u{1b}[2J\u{202e}kcab@osc.test; pct=\u{1b}[31m50"
                .into(),
        ]),
    );
    zone
}

/// The HTML report applies the one policy after escaping: control characters and bidi
/// overrides from records are shown as `\u{1b}`, `\u{202e}`, never raw nor as a character
/// reference (`&#x1b;`) that the browser would decode back.
#[test]
fn html_report_shows_controls_and_bidi_visibly() {
    let lab = crate::common::Lab::start_zone(terminal_zone());
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--format",
        "html",
        "osc.test",
    ]);
    out.assert_code(0);
    assert_no_terminal_controls("HTML report", &out.stdout);
    assert!(!out.stdout.contains("&#x"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("rua=mailto:a\\u{1b}]0;title\\u{7}@osc.test"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\\u{1b}[2J\\u{202e}kcab@osc.test"),
        "{}",
        out.stdout
    );
}

#[test]
fn guide_checklist_history_escape_terminal_controls() {
    let db = crate::store::Db::new();
    let lab = crate::common::Lab::start_zone(terminal_zone());
    // Operator-entered fields: a tenant, a key person and a `--by` name with controls.
    db.run(&[
        "domain",
        "add",
        "osc.test",
        "--tenant",
        "evil\u{1b}]0;t\u{7}",
        "--key-person",
        "Ann \u{202e}eeL <ann@osc.test>",
    ])
    .assert_code(0);
    db.audit(&lab, &["osc.test"]).assert_code(0);
    db.audit(&lab, &["osc.test"]).assert_code(0);

    let guide = db.run(&["guide", "osc.test", "--format", "md"]);
    guide.assert_code(0);
    assert_no_terminal_controls("guide (stdout)", &guide.stdout);
    // The hostile values do reach the guide, escaped visibly (so this is not vacuous).
    assert!(guide.stdout.contains("\\u{1b}"), "{}", guide.stdout);
    assert!(guide.stdout.contains("\\u{202e}"), "{}", guide.stdout);
    // The HTML guide: the same values escaped by maud and shown visibly, never as a character
    // reference (`&#x1b;`) that a browser would decode back.
    let html = db.run(&["guide", "osc.test", "--format", "html"]);
    html.assert_code(0);
    assert_no_terminal_controls("guide (HTML)", &html.stdout);
    assert!(!html.stdout.contains("&#"), "{}", html.stdout);
    assert!(html.stdout.contains("\\u{1b}"), "{}", html.stdout);
    assert!(html.stdout.contains("\\u{202e}"), "{}", html.stdout);

    let file = tempfile::tempdir().expect("a temporary directory");
    let path = file.path().join("guide.md");
    let path_s = path.to_str().expect("UTF-8 path");
    db.run(&["guide", "osc.test", "--format", "md", "-o", path_s])
        .assert_code(0);
    let written = std::fs::read_to_string(&path).expect("the guide file");
    assert_no_terminal_controls("guide (-o file)", &written);
    assert_eq!(
        written, guide.stdout,
        "the file and stdout get the same text"
    );

    let items = db.run(&["checklist", "osc.test", "--format", "json"]);
    items.assert_code(0);
    let key = items.json()[0]["key"]
        .as_str()
        .expect("an item key")
        .to_owned();
    let ticked = db.run(&[
        "checklist",
        "osc.test",
        "--done",
        &key,
        "--force",
        "--by",
        "mallory\u{1b}]0;owned\u{7}\u{2066}",
    ]);
    ticked.assert_code(0);
    assert_no_terminal_controls("checklist", &ticked.stdout);
    assert!(
        ticked
            .stdout
            .contains("mallory\\u{1b}]0;owned\\u{7}\\u{2066}"),
        "the --by name is shown, escaped: {}",
        ticked.stdout
    );
    for args in [
        &["history", "osc.test"][..],
        &["diff", "osc.test"],
        &["domain", "show", "osc.test"],
        &["domain", "list"],
    ] {
        let out = db.run(args);
        assert_no_terminal_controls(&args.join(" "), &out.stdout);
    }
    let show = db.run(&["domain", "show", "osc.test"]);
    assert!(
        show.stdout.contains("evil\\u{1b}]0;t\\u{7}"),
        "{}",
        show.stdout
    );
}

/// DMARC TXT records (shown as DMARC-MISSING's evidence, as published) whose text begins with
/// each spreadsheet formula character (OWASP "CSV Injection").
const FORMULA_ZONE: &str = r#"
eq.test            TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.eq.test     TXT "=HYPERLINK(\"http://evil.example\",\"Fix it now\")"
plus.test          TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.plus.test   TXT "+cmd|' /C calc'!A0"
minus.test         TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.minus.test  TXT "-2+3+cmd|' /C calc'!A0"
at.test            TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.at.test     TXT "@SUM(1+1)*cmd|' /C calc'!A0"
tab.test           TXT "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.tab.test    TXT "\009=1+1"
spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 -all"
"#;

#[test]
fn csv_cells_never_begin_with_a_formula() {
    let lab = Lab::start(FORMULA_ZONE);
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--no-policy-fetch",
        "--format",
        "csv",
        "eq.test",
        "plus.test",
        "minus.test",
        "at.test",
        "tab.test",
    ]);
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let header = reader.headers().expect("a header").clone();
    let evidence = header
        .iter()
        .position(|h| h == "evidence")
        .expect("an evidence column");
    let mut shown = Vec::new();
    for row in reader.records() {
        let row = row.expect("a CSV row");
        for cell in &row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell opens as a formula: {cell:?} in {row:?}"
            );
        }
        if &row[5] == "DMARC-MISSING" {
            shown.push((row[0].to_owned(), row[evidence].to_owned()));
        }
    }
    // The records are kept, as text: one leading `'`, nothing else changed.
    assert_eq!(
        shown,
        [
            (
                "eq.test",
                "'=HYPERLINK(\"http://evil.example\",\"Fix it now\")"
            ),
            ("plus.test", "'+cmd|' /C calc'!A0"),
            ("minus.test", "'-2+3+cmd|' /C calc'!A0"),
            ("at.test", "'@SUM(1+1)*cmd|' /C calc'!A0"),
            ("tab.test", "'\t=1+1"),
        ]
        .map(|(d, e)| (d.to_owned(), e.to_owned())),
        "{}",
        out.stdout
    );
}
