//! The DNS records the audit proposes never hard-fail a legitimate sender nor drop a domain's
//! DMARC tags (issue 11), in the audit's text, JSON and CSV and in the guide: SPF-MISSING on a
//! Google Workspace domain proposes Google's include; a domain behind Mimecast is not asked for
//! Microsoft 365's SPF include nor its DKIM selectors; `-all` is not proposed while an include
//! is broken, and the guide puts the repair before the hardening.

use crate::common::{Lab, domain, finding_ids, run};
use crate::store::Db;

const ZONE: &str = r#"
google.test MX 1 aspmx.l.google.com
aspmx.l.google.com A 127.0.0.1
_dmarc.google.test TXT "v=DMARC1; p=none; rua=mailto:x@google.test; fo=1"
_spf.google.com TXT "v=spf1 ip4:198.51.100.0/24 ~all"
gateway.test MX 10 eu-smtp-inbound-1.mimecast.com
gateway.test TXT "MS=ms12345678"
gateway.test TXT "v=spf1 include:_netblocks.mimecast.com ~all"
eu-smtp-inbound-1.mimecast.com A 127.0.0.2
_netblocks.mimecast.com TXT "v=spf1 ip4:203.0.113.0/24 -all"
broken.test MX 10 broken-test.mail.protection.outlook.com
broken-test.mail.protection.outlook.com A 127.0.0.3
broken.test TXT "v=spf1 include:spf.protection.outlook.com include:old-vendor.test ~all"
spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 -all"
"#;

const DOMAINS: [&str; 3] = ["google.test", "gateway.test", "broken.test"];

fn audit(lab: &Lab, format: &str) -> crate::common::Output {
    let mut args = vec![
        "audit",
        "--nameserver",
        lab.addr(),
        "--no-store",
        "--no-policy-fetch",
        "--format",
        format,
    ];
    args.extend(DOMAINS);
    run(&args)
}

fn fix_of(report: &serde_json::Value, d: &str, id: &str) -> String {
    domain(report, d)["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("{id} for {d}: {report:#}"))["fix"]
        .as_str()
        .expect("fix is a string")
        .to_owned()
}

#[test]
fn proposals_follow_the_mx_and_keep_the_dmarc_tags_in_json_csv_and_text() {
    let lab = Lab::start(ZONE);
    let out = audit(&lab, "json");
    let report = out.json();

    // Google Workspace: Google's include, never Microsoft 365's.
    assert_eq!(
        fix_of(&report, "google.test", "SPF-MISSING"),
        "v=spf1 include:_spf.google.com -all"
    );
    // DMARC-POLICY-NONE keeps rua and fo.
    assert_eq!(
        fix_of(&report, "google.test", "DMARC-POLICY-NONE"),
        "_dmarc.google.test. TXT \"v=DMARC1; p=quarantine; rua=mailto:x@google.test; fo=1\""
    );
    // Behind Mimecast: neither Microsoft 365's SPF include nor its DKIM selectors are demanded.
    let ids = finding_ids(domain(&report, "gateway.test"));
    assert!(ids.contains(&"MX-GATEWAY".to_string()), "{ids:?}");
    for absent in ["SPF-M365-INCLUDE-MISSING", "DKIM-M365-MISSING"] {
        assert!(!ids.contains(&absent.to_string()), "{absent} in {ids:?}");
    }
    // A broken include: no -all yet, the include first.
    let soft = fix_of(&report, "broken.test", "SPF-SOFTFAIL");
    assert!(!soft.starts_with("v=spf1"), "{soft}");
    assert!(soft.contains("old-vendor.test"), "{soft}");

    // The CSV carries the same fixes.
    let csv = audit(&lab, "csv").stdout;
    let row = |d: &str, id: &str| {
        csv.lines()
            .find(|l| l.starts_with(d) && l.contains(id))
            .unwrap_or_else(|| panic!("{d} {id} in {csv}"))
            .to_owned()
    };
    let spf = row("google.test", "SPF-MISSING");
    assert!(spf.contains("v=spf1 include:_spf.google.com -all"), "{spf}");
    assert!(!spf.contains("outlook"), "{spf}");
    let dmarc = row("google.test", "DMARC-POLICY-NONE");
    assert!(dmarc.contains("rua=mailto:x@google.test; fo=1"), "{dmarc}");
    let soft = row("broken.test", "SPF-SOFTFAIL");
    assert!(
        soft.contains("old-vendor.test") && !soft.contains("include:old-vendor.test -all"),
        "{soft}"
    );
    assert!(!csv.contains("SPF-M365-INCLUDE-MISSING"), "{csv}");

    // And the text report.
    let text = audit(&lab, "table").stdout;
    assert!(
        text.contains("v=spf1 include:_spf.google.com -all"),
        "{text}"
    );
    assert!(
        !text.contains("old-vendor.test -all") && !text.contains("include:old-vendor.test -all"),
        "{text}"
    );
}

#[test]
fn the_guide_proposes_what_the_audit_does_in_order() {
    let lab = Lab::start(ZONE);
    let db = Db::new();
    let mut args = vec![];
    args.extend(DOMAINS);
    db.audit(&lab, &args).assert_code(0);

    let md = db.run(&["guide", "google.test"]);
    md.assert_code(0);
    assert!(
        md.stdout
            .contains("\"v=spf1 include:_spf.google.com -all\""),
        "{}",
        md.stdout
    );
    assert!(
        !md.stdout.contains("spf.protection.outlook.com"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout
            .contains("\"v=DMARC1; p=quarantine; rua=mailto:x@google.test; fo=1\""),
        "{}",
        md.stdout
    );

    let md = db.run(&["guide", "broken.test"]).stdout;
    let broken = md
        .find("(`SPF-INCLUDE-BROKEN`)")
        .expect("the broken include item");
    let harden = md.find("(`spf-harden`)").expect("the harden item");
    assert!(broken < harden, "{md}");
    // No record ending in -all that still includes the broken target.
    assert!(
        !md.lines()
            .any(|l| l.contains("include:old-vendor.test") && l.contains("-all\"")),
        "{md}"
    );
}

/// One aggregate report of `domain`, yesterday, where `ip` passed SPF aligned `count` times.
fn spf_pass_report(domain: &str, ip: &str, count: u32) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let begin = (now - 86_400) / 86_400 * 86_400;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata><org_name>receiver.example</org_name><email>dmarc@receiver.example</email>
    <report_id>kept-{ip}</report_id><date_range><begin>{begin}</begin><end>{end}</end></date_range></report_metadata>
  <policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>quarantine</p><sp>quarantine</sp><pct>100</pct></policy_published>
  <record>
    <row><source_ip>{ip}</source_ip><count>{count}</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><spf><domain>{domain}</domain><result>pass</result></spf></auth_results>
  </record>
</feedback>
"#,
        end = begin + 86_399
    )
}

#[test]
fn the_guide_keeps_senders_the_stored_reports_show_passing_spf() {
    // The record lost the on-premises relay last week; the reports still show it passing SPF
    // aligned. Hardening the record to -all as it stands would hard-fail it: the guide's
    // proposal names it, and the Microsoft 365 address the include covers is not repeated.
    let lab = Lab::start(
        r#"
kept.test MX 10 kept-test.mail.protection.outlook.com
kept-test.mail.protection.outlook.com A 127.0.0.4
kept.test TXT "v=spf1 include:spf.protection.outlook.com ~all"
_dmarc.kept.test TXT "v=DMARC1; p=quarantine; rua=mailto:d@kept.test"
spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 -all"
"#,
    );
    let db = Db::new();
    db.audit(&lab, &["kept.test"]).assert_code(0);
    let before = db.run(&["guide", "kept.test"]).stdout;
    assert!(
        before.contains("\"v=spf1 include:spf.protection.outlook.com -all\""),
        "{before}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    for (ip, n) in [("198.51.100.60", 25), ("40.92.3.4", 400)] {
        std::fs::write(
            dir.path().join(format!("{ip}.xml")),
            spf_pass_report("kept.test", ip, n),
        )
        .unwrap();
    }
    db.run(&["reports", "ingest", dir.path().to_str().unwrap()])
        .assert_code(0);
    let after = db.run(&["guide", "kept.test"]);
    after.assert_code(0);
    assert!(
        after
            .stdout
            .contains("\"v=spf1 include:spf.protection.outlook.com ip4:198.51.100.60 -all\""),
        "{}",
        after.stdout
    );
    assert!(
        after.stdout.contains("198.51.100.60 (25 messages)"),
        "{}",
        after.stdout
    );
    assert!(!after.stdout.contains("ip4:40.92.3.4"), "{}", after.stdout);
}
