//! `mailaudit report --customer` (HTML, and PDF printed by the system's Chromium and read back
//! with `pdftotext`) and `mailaudit branding`.

use std::process::Command;

use crate::common::{Lab, run_env};
use crate::store::Db;

const CUSTOMER: &str = "Report Co";

/// A customer with one domain audited twice: first with no DMARC record and SPF `~all`, then
/// fixed (p=reject, `-all`), so the report has findings fixed in the period.
fn audited() -> Db {
    let db = Db::new();
    let d = "fixed.test";
    db.run(&["customer", "add", CUSTOMER]).assert_code(0);
    db.run(&["domain", "add", d, "--customer", CUSTOMER])
        .assert_code(0);
    let broken = Lab::start(&format!(
        "{d} MX 10 mail.{d}\nmail.{d} A 192.0.2.25\n{d} TXT \"v=spf1 ip4:192.0.2.10 ~all\"\n"
    ));
    db.audit(&broken, &[]);
    let fixed = Lab::start(&format!(
        "{d} MX 10 mail.{d}\nmail.{d} A 192.0.2.25\n{d} TXT \"v=spf1 ip4:192.0.2.10 -all\"\n\
         _dmarc.{d} TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{d}\"\n"
    ));
    db.audit(&fixed, &[]);
    db
}

#[test]
fn html_report_shows_posture_fixes_and_what_remains() {
    let db = audited();
    let out = db.run(&["report", "--customer", CUSTOMER, "--since", "30d"]);
    out.assert_code(0);
    let html = &out.stdout;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("Email security report for Report Co"),
        "{html}"
    );
    assert!(html.contains("data-domain=\"fixed.test\""), "{html}");
    // The fix between the two audits, with its date.
    let fixed = html.split("id=\"fixed\"").nth(1).unwrap_or_default();
    assert!(fixed.contains("<strong id=\"r-fixed\">"), "{fixed}");
    assert!(fixed.contains("fixed.test"), "{fixed}");
    assert!(fixed.to_lowercase().contains("dmarc"), "{fixed}");
    // Posture now: the one domain has DMARC at p=reject.
    assert!(
        html.contains("<strong id=\"r-dmarc\">1 of 1</strong>"),
        "{html}"
    );
    assert!(
        html.contains("<strong id=\"r-reject\">1</strong>"),
        "{html}"
    );
    // The progress chart of the two runs, and no script anywhere.
    assert!(
        html.contains("<svg") && html.contains("% with DMARC"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");

    // To a file, on Letter paper.
    let path = db
        .url()
        .trim_start_matches("sqlite://")
        .replace("m.db", "r.html");
    db.run(&[
        "report",
        "--customer",
        CUSTOMER,
        "--paper",
        "letter",
        "-o",
        &path,
    ])
    .assert_code(0);
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(file.contains("@page{size:letter;"), "letter paper");

    // Errors: an unknown customer, a period that is not one, a PDF without a file.
    let unknown = db.run(&["report", "--customer", "Nobody"]);
    unknown.assert_code(2);
    assert!(unknown.stderr.contains("Nobody"), "{}", unknown.stderr);
    let bad = db.run(&["report", "--customer", CUSTOMER, "--since", "1y"]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("1y"), "{}", bad.stderr);
    db.run(&["report", "--customer", CUSTOMER, "--format", "pdf"])
        .assert_code(2);
}

#[test]
fn pdf_report_is_a_real_pdf_of_the_same_figures() {
    if !std::path::Path::new("/usr/bin/chromium").exists()
        || Command::new("pdftotext").arg("-v").output().is_err()
    {
        mailaudit_lab::or_skip::<(), _>(
            Err("chromium and pdftotext (poppler-utils) are needed to print and read the PDF"),
            "MAILAUDIT_SKIP_BROWSER",
        );
        return;
    }
    let db = audited();
    db.run(&["branding", "--name", "Northwind IT Services"])
        .assert_code(0);
    let shown = db.run(&["branding"]);
    shown.assert_code(0);
    assert!(
        shown.stdout.contains("Northwind IT Services"),
        "{}",
        shown.stdout
    );

    let pdf = db
        .url()
        .trim_start_matches("sqlite://")
        .replace("m.db", "r.pdf");
    let out = db.run(&[
        "report",
        "--customer",
        CUSTOMER,
        "--format",
        "pdf",
        "-o",
        &pdf,
        "--chromium",
        "/usr/bin/chromium",
    ]);
    out.assert_code(0);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "a PDF");
    let text = Command::new("pdftotext")
        .args(["-layout", &pdf, "-"])
        .output()
        .expect("pdftotext");
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    for want in [
        "Email security report for Report Co",
        "Northwind IT Services",
        "Posture now",
        "What was fixed",
        "What remains, in priority order",
        "fixed.test",
        "1 of 1",
    ] {
        assert!(text.contains(want), "{want:?} in the PDF's text:\n{text}");
    }
    // Sections start on new pages: more than one page.
    assert!(text.matches('\u{c}').count() >= 2, "page breaks:\n{text}");

    // No Chromium: a clear error, exit 2, no file.
    let missing = db
        .url()
        .trim_start_matches("sqlite://")
        .replace("m.db", "none.pdf");
    let out = run_env(
        &[
            "--db",
            db.url(),
            "report",
            "--customer",
            CUSTOMER,
            "--format",
            "pdf",
            "-o",
            &missing,
        ],
        &[("PATH", "/nonexistent"), ("MAILAUDIT_CHROMIUM", "")],
        None,
    );
    out.assert_code(2);
    assert!(out.stderr.contains("no Chromium found"), "{}", out.stderr);
    assert!(!std::path::Path::new(&missing).exists());
}

#[test]
fn branding_takes_a_logo_and_refuses_what_is_not_one() {
    let db = Db::new();
    db.run(&["customer", "add", CUSTOMER]).assert_code(0);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("logo.svg");
    std::fs::write(
        &svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>",
    )
    .unwrap();
    let set = db.run(&["branding", "--logo", svg.to_str().unwrap()]);
    set.assert_code(0);
    assert!(set.stdout.contains("image/svg+xml"), "{}", set.stdout);
    let html = db.run(&["report", "--customer", CUSTOMER]).stdout;
    assert!(html.contains("src=\"data:image/svg+xml;base64,"), "{html}");
    let junk = dir.path().join("logo.txt");
    std::fs::write(&junk, "hello").unwrap();
    let refused = db.run(&["branding", "--logo", junk.to_str().unwrap()]);
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("PNG, JPEG or SVG"),
        "{}",
        refused.stderr
    );
    // The earlier logo is kept.
    assert!(db.run(&["branding"]).stdout.contains("image/svg+xml"));
    db.run(&["branding", "--no-logo"]).assert_code(0);
    assert!(db.run(&["branding"]).stdout.contains("logo: (none)"));
}
