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
