//! The one escaping policy, through every page type: markup and quotes escaped (maud), C0 and
//! C1 control characters and bidi overrides shown as visible escapes (`\u{1b}`, `\u{202e}`),
//! never raw nor as a character reference the browser would decode.

use mailaudit_core::audit::{AuditOptions, audit_domain};
use mailaudit_core::memory::{MemoryDns, Rr};
use mailaudit_core::text::unsafe_char;
use mailaudit_portal::PortalOptions;
use mailaudit_store::{ItemState, KeyPerson, NewDomain, NewReport};
use serde_json::json;

use crate::common::{Portal, now, record_json};

/// Markup, both quotes, C0 (ESC, BEL, DEL), C1 (NEL, CSI) and bidi controls (RLO, LRI).
const TEXT: &str =
    "<script>alert('c')</script>\"'\u{1b}[2J\u{7}\u{7f}\u{85}\u{9b}31m\u{202e}fdp.exe\u{2066}";
/// The store refuses control characters in names, not bidi overrides (nor markup).
const DOMAIN: &str = "<q>'bidi\"\u{202e}elpmaxe.example";
const CUSTOMER: &str = "<i>Bidi</i> \u{202e}oC \"&'";
/// A domain with a valid name, so that it gets a guide with the hostile values in it.
const GUIDED: &str = "guided.example";

/// Where a hostile value must show: visible escapes of what it carries.
const SHOWN_CONTROLS: &str = "\\u{1b}[2J\\u{7}\\u{7f}\\u{85}\\u{9b}31m\\u{202e}fdp.exe\\u{2066}";
const SHOWN_DOMAIN: &str = "&lt;q&gt;'bidi&quot;\\u{202e}elpmaxe.example";

fn pct(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Every character the policy covers, and every numeric character reference to one.
#[track_caller]
fn assert_policy(what: &str, body: &str) {
    let raw: Vec<char> = body.chars().filter(|c| unsafe_char(*c)).collect();
    assert!(raw.is_empty(), "{what}: raw {raw:?} in\n{body}");
    for bad in ["<script", "<q>", "<i>", "alert('c')</script>"] {
        assert!(!body.contains(bad), "{what}: {bad:?} raw in\n{body}");
    }
    // `&#x1b;`, `&#27;`, `&#x9b;` (which a browser even decodes as `›`): none.
    for (i, _) in body.match_indices("&#") {
        let rest = &body[i + 2..];
        let (digits, radix) = match rest.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16),
            None => (rest, 10),
        };
        let end = digits.find(';').unwrap_or(0);
        let code = u32::from_str_radix(&digits[..end], radix).ok();
        let c = code.and_then(char::from_u32);
        assert!(
            !c.is_some_and(|c| unsafe_char(c) || (0x80..0xa0).contains(&u32::from(c))),
            "{what}: a character reference to {c:?} in\n{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controls_and_bidi_are_shown_visibly_on_every_page() {
    let p = Portal::start(PortalOptions::local()).await;
    let store = p.store.as_ref();
    store
        .add_customer(CUSTOMER, "", "")
        .await
        .expect("customer");
    store
        .upsert_domain(&NewDomain {
            name: DOMAIN.into(),
            customer: Some(CUSTOMER.into()),
            tenant: Some(TEXT.replace(|c: char| c.is_control(), "")),
            ..NewDomain::default()
        })
        .await
        .expect("domain");
    // A stored audit whose finding carries the text in its title, detail and evidence.
    let dns = MemoryDns::new().with("www.policy.example", Rr::A([192, 0, 2, 80].into()));
    let audited = audit_domain(&dns, "policy.example", &AuditOptions::default()).await;
    let mut report = serde_json::to_value(&audited).expect("the report serialises");
    report["domain"] = json!(DOMAIN);
    report["findings"].as_array_mut().expect("findings").insert(
        0,
        json!({"id": "SPF-SYNTAX", "area": "spf", "severity": "critical",
               "title": TEXT, "detail": TEXT, "evidence": TEXT, "fix": TEXT}),
    );
    record_json(store, DOMAIN, &report, Some(40), now() - 20).await;
    // A domain whose name is valid, so it has a guide: the hostile text in its finding's
    // detail and evidence (shown by the guide's items), its tenant and a key person.
    store
        .upsert_domain(&NewDomain {
            name: GUIDED.into(),
            tenant: Some(TEXT.replace(|c: char| c.is_control(), "")),
            key_people: vec![KeyPerson {
                name: TEXT.into(),
                email: format!("ceo@{GUIDED}"),
            }],
            ..NewDomain::default()
        })
        .await
        .expect("guided domain");
    let mut guided = serde_json::to_value(&audited).expect("the report serialises");
    guided["findings"].as_array_mut().expect("findings").insert(
        0,
        json!({"id": "SPF-SYNTAX", "area": "spf", "severity": "critical",
               "title": TEXT, "detail": TEXT, "evidence": TEXT, "fix": TEXT}),
    );
    record_json(store, GUIDED, &guided, Some(40), now() - 20).await;
    // Who ticked an item, as `mailaudit checklist --by` stores it (the portal's form drops
    // control characters; the CLI keeps them).
    let key = store.checklist("contoso.example").await.expect("checklist")[0]
        .key
        .clone();
    store
        .set_item_state("contoso.example", &key, ItemState::Done, TEXT, now() - 10)
        .await
        .expect("tick");
    // A DMARC report whose reporter and file name carry the text (report names must be
    // domain names: the ordinary domain gets it).
    let begin = now() - 86_400;
    store
        .ingest_report(
            &NewReport {
                kind: mailaudit_store::ReportKind::Aggregate,
                reporter: TEXT.into(),
                report_id: "policy-1".into(),
                policy_domain: "contoso.example".into(),
                begin,
                end: begin + 3600,
                content_hash: "ab".repeat(32),
                source: TEXT.into(),
                raw: b"x".to_vec().into(),
                parsed: serde_json::value::to_raw_value(&json!({})).unwrap(),
                problems: json!([]),
                rows: Vec::new(),
            },
            now(),
        )
        .await
        .expect("ingest");

    let enc = pct(DOMAIN);
    let pages = [
        ("fleet", "/".to_string(), 200),
        ("customer", format!("/?customer={}", pct(CUSTOMER)), 200),
        ("domain", format!("/domains/{enc}"), 200),
        ("ticked", "/domains/contoso.example".to_string(), 200),
        ("guide", format!("/domains/{enc}/guide"), 200),
        ("guided", format!("/domains/{GUIDED}"), 200),
        ("guided guide", format!("/domains/{GUIDED}/guide"), 200),
        (
            "reports",
            "/domains/contoso.example/reports".to_string(),
            200,
        ),
        ("checks", "/checks".to_string(), 200),
        ("check", "/checks/SPF-SYNTAX".to_string(), 200),
        ("customers", "/customers".to_string(), 200),
        (
            "customer report",
            format!("/customers/{}/report", pct(CUSTOMER)),
            200,
        ),
        // Error pages show what was asked for.
        (
            "404",
            format!("/domains/{}", pct("no\u{1b}[2J\u{202e}.example")),
            404,
        ),
        (
            "404 check",
            format!("/checks/{}", pct("X\u{9b}\u{202e}")),
            404,
        ),
    ];
    for (what, path, status) in &pages {
        let r = p.get(path).await;
        assert_eq!(r.status, *status, "{what}: GET {path}\n{}", r.body);
        assert_policy(what, &r.body);
    }
    // The values are there, shown (so the checks above are not vacuous).
    let fleet = p.get("/").await.body;
    assert!(fleet.contains(SHOWN_DOMAIN), "{fleet}");
    assert!(
        fleet.contains("&lt;i&gt;Bidi&lt;/i&gt; \\u{202e}oC &quot;&amp;'"),
        "{fleet}"
    );
    let domain = p.get(&format!("/domains/{enc}")).await.body;
    assert!(
        domain.contains(&format!(
            "<td class=\"detail\">&lt;script&gt;alert('c')&lt;/script&gt;&quot;'{SHOWN_CONTROLS}</td>"
        )),
        "{domain}"
    );
    assert!(
        domain.contains(&format!("<pre class=\"evidence\">&lt;script&gt;alert('c')&lt;/script&gt;&quot;'{SHOWN_CONTROLS}</pre>")),
        "{domain}"
    );
    assert!(
        domain.contains("\\u{202e}fdp.exe\\u{2066}</dd>"),
        "tenant: {domain}"
    );
    let ticked = p.get("/domains/contoso.example").await.body;
    assert!(
        ticked.contains(&format!(
            "<td class=\"who\">&lt;script&gt;alert('c')&lt;/script&gt;&quot;'{SHOWN_CONTROLS}, "
        )),
        "{ticked}"
    );
    let guide = p.get(&format!("/domains/{enc}/guide")).await.body;
    assert!(guide.contains("\\u{202e}"), "{guide}");
    // The guide, printable and on the domain's page: the finding's detail as found, escaped
    // and its controls shown (the guide's renderer is maud's too).
    let found =
        format!("<li>Found: &lt;script&gt;alert('c')&lt;/script&gt;&quot;'{SHOWN_CONTROLS}");
    let printable = p.get(&format!("/domains/{GUIDED}/guide")).await.body;
    assert!(printable.contains(&found), "{printable}");
    let page = p.get(&format!("/domains/{GUIDED}")).await.body;
    let section = &page[page
        .find("<section id=\"guide\"")
        .expect("the guide section")..];
    assert!(section.contains(&found), "{section}");
    let reports = p.get("/domains/contoso.example/reports").await.body;
    assert!(
        reports.contains(&format!("title=\"Download the file as received\">&lt;script&gt;alert('c')&lt;/script&gt;&quot;'{SHOWN_CONTROLS}</a>")),
        "{reports}"
    );
    let check = p.get("/checks/SPF-SYNTAX").await.body;
    assert!(check.contains(SHOWN_DOMAIN), "{check}");
    let missing = p
        .get(&format!("/domains/{}", pct("no\u{1b}[2J\u{202e}.example")))
        .await
        .body;
    assert!(
        missing.contains("no\\u{1b}[2j\\u{202e}.example"),
        "{missing}"
    );
    p.stop().await;
}
