//! The guide's HTML: a whole page snapshotted (insta), the records table, and hostile values
//! (markup, quotes, control characters, bidi overrides) escaped and shown under the one policy.

use super::*;
use mailaudit_core::audit::{AuditOptions, audit_domain};
use mailaudit_core::checks::CheckId;
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{GuideContext, Lang, Priority, ReportView, Section, Step, build};
use mailaudit_core::memory::{MemoryDns, Rr};
use mailaudit_core::text::unsafe_char;

const D: &str = "contoso.example";
const MX_HOST: &str = "contoso-example.mail.protection.outlook.com";
/// 2026-02-02 00:00:00 UTC.
const TODAY: i64 = 1_769_990_400;
/// A 2048-bit RSA key (`openssl genrsa 2048 | openssl rsa -pubout -outform DER | base64`), the
/// core's DKIM test key.
const RSA2048_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA8OOxifOIX0+u/n3wcb7zYlOVrUQB3WiGWfWO7NkJo9JJHdWIGE9Y63TncmicabS0/9drCBr8XzjefYsj1UP8G2MDkEN2sEh4gCN6/Qiju71Iuf/+m4zmVg5gT/j07xvTMcv62v+m1d9Z3On3V/tK0lSIOEjBXhMZ+SOXNcClnDQ2crK8w4ECRYAQOeCx5RrIn4wpe1n4yIkc40h1og859kfU/2CLB/knk3cniJUqE8+DJuSuXYk9N6CUi6TmTYJkiUV8FhUZKFxpWnB6eOPTxlAuarTRGuWefOjHcmVO+cfqlvGbRtcmVQqvFq0SATAJRuNgTQ19Q974e/O0LK8b4wIDAQAB";

/// A hardened Microsoft 365 domain without its DMARC record (the core's guide fixture).
fn no_dmarc_zone() -> MemoryDns {
    let key = format!("v=DKIM1; k=rsa; p={RSA2048_SPKI}");
    MemoryDns::new()
        .with(D, Rr::Mx(0, MX_HOST.into()))
        .with(MX_HOST, Rr::A([192, 0, 2, 25].into()))
        .with(
            D,
            Rr::Txt("v=spf1 include:spf.protection.outlook.com -all".into()),
        )
        .with(D, Rr::Txt("MS=ms12345678".into()))
        .with(
            "spf.protection.outlook.com",
            Rr::Txt("v=spf1 ip4:40.92.0.0/15 ip6:2a01:111:f400::/48 -all".into()),
        )
        .with(
            "selector1._domainkey.contoso.example",
            Rr::Cname("selector1-contoso-example._domainkey.contoso.onmicrosoft.com".into()),
        )
        .with(
            "selector2._domainkey.contoso.example",
            Rr::Cname("selector2-contoso-example._domainkey.contoso.onmicrosoft.com".into()),
        )
        .with(
            "selector1-contoso-example._domainkey.contoso.onmicrosoft.com",
            Rr::Txt(key),
        )
        .with(
            "_mta-sts.contoso.example",
            Rr::Txt("v=STSv1; id=20250101".into()),
        )
        .with(
            "_smtp._tls.contoso.example",
            Rr::Txt("v=TLSRPTv1; rua=mailto:tlsrpt@contoso.example".into()),
        )
}

fn ctx() -> GuideContext {
    GuideContext {
        today: TODAY,
        key_people: vec![
            ("Jane Doe".into(), "jane.doe@contoso.example".into()),
            ("Seán O'Brien".into(), "sean@contoso.example".into()),
        ],
        ..GuideContext::default()
    }
}

fn no_dmarc_report() -> ReportView {
    let r = pollster::block_on(audit_domain(&no_dmarc_zone(), D, &AuditOptions::default()));
    ReportView::from_report(&r)
}

/// One item of priority 1 with `steps`, and `found`.
fn one_item(domain: &str, found: Vec<String>, steps: Vec<Step>) -> Guide {
    Guide {
        domain: domain.into(),
        score: None,
        sections: vec![Section {
            priority: Priority::P1,
            items: vec![GuideItem {
                key: "spf-repair",
                title: "t".into(),
                finding_ids: vec![CheckId::SpfSyntax],
                found,
                why: "w".into(),
                steps,
                verify: Vec::new(),
            }],
        }],
        withheld: Vec::new(),
        notes: Vec::new(),
    }
}

fn dns_step(records: Vec<DnsRecord>) -> Step {
    Step {
        text: "Publish `this`:".into(),
        code: Some(Code {
            lang: Lang::Dns,
            text: records
                .iter()
                .map(DnsRecord::zone_line)
                .collect::<Vec<_>>()
                .join("\n"),
            records,
        }),
    }
}

#[test]
fn no_dmarc_page() {
    let g = build(&no_dmarc_report(), &ctx());
    assert!(g.item("dmarc-publish").is_some());
    let html = page(&g);
    assert!(!html.contains("<script"), "no script");
    insta::assert_snapshot!("no_dmarc_html", html);
}

#[test]
fn the_domain_page_embeds_the_same_content() {
    let g = build(&no_dmarc_report(), &ctx());
    let html = page(&g);
    let part = finish(fragment(&g));
    assert!(part.starts_with("<h1>Remediation guide for contoso.example</h1>\n"));
    assert!(
        html.contains(&format!("<body>\n{part}</body>\n</html>\n")),
        "{html}"
    );
}

#[test]
fn the_style_is_not_altered_by_escaping() {
    assert!(!STYLE.contains(['&', '<', '>', '"']), "{STYLE}");
    let html = page(&one_item(D, Vec::new(), Vec::new()));
    assert!(html.contains(&format!("<style>{STYLE}</style>")), "{html}");
    assert!(html.contains(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{PAGE_CSP}\">"
    )));
}

#[test]
fn records_are_a_host_type_value_table() {
    // A hostile value from DNS with a pipe and backticks, and one over 255 octets.
    let hostile = "v=spf1 `x`|y ``z -all";
    let long = format!(
        "v=spf1 {}-all",
        (1..=30)
            .map(|i| format!("ip4:198.51.100.{i} "))
            .collect::<String>()
    );
    let g = one_item(
        D,
        Vec::new(),
        vec![dns_step(vec![
            DnsRecord::txt(D, D, hostile),
            DnsRecord::txt(D, &format!("_dmarc.{D}"), &long),
        ])],
    );
    let html = page(&g);
    assert!(html.contains("<table class=\"records\">\n<thead><tr><th>Host</th><th>Type</th><th>Value</th><th>Full name</th></tr></thead>\n<tbody>\n"), "{html}");
    assert!(
        html.contains(
            "<tr><td><code>@</code></td><td>TXT</td><td><code>v=spf1 `x`|y ``z -all</code></td><td><code>contoso.example</code></td></tr>\n"
        ),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<tr><td><code>_dmarc</code></td><td>TXT</td><td><code>{long}</code></td><td><code>_dmarc.contoso.example</code></td></tr>\n"
        )),
        "{html}"
    );
    // The sentences around the table: inline code as `<code>`.
    assert!(
        html.contains("<p>In a DNS provider's form: Host relative to <code>contoso.example</code>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<p>The value at <code>_dmarc</code> is {} characters, over the 255 of one TXT string",
            long.len()
        )),
        "{html}"
    );
    assert!(html.contains("<li><p>Publish <code>this</code>:</p>\n<pre class=\"code dns\"><code>"));
}

/// Markup, both quotes, C0 (ESC, BEL, CR, DEL), C1 (CSI) and bidi controls (RLO, LRI).
const HOSTILE: &str =
    "<script>alert('c')</script>\"'&\u{1b}[2J\u{7}\r\u{7f}\u{9b}\u{202e}fdp\u{2066}";
/// How it shows: escaped by maud, the controls as visible escapes (never `&#x1b;`).
const SHOWN: &str = "&lt;script&gt;alert('c')&lt;/script&gt;&quot;'&amp;\\u{1b}[2J\\u{7}\\u{d}\\u{7f}\\u{9b}\\u{202e}fdp\\u{2066}";

#[test]
fn hostile_values_are_escaped_and_shown() {
    let mut g = one_item(
        HOSTILE,
        vec![format!("{HOSTILE}\nsecond line")],
        vec![dns_step(vec![DnsRecord::txt(D, D, HOSTILE)])],
    );
    g.notes.push(format!("note `{HOSTILE}`"));
    g.withheld
        .push(Finding::new(CheckId::DnsLookupFailed, HOSTILE));
    g.sections[0].items[0].title = HOSTILE.into();
    let html = page(&g);
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("&#"), "no character reference: {html}");
    assert!(!html.chars().any(unsafe_char), "{html}");
    for part in [
        format!("<title>Remediation guide for {SHOWN}</title>"),
        format!("<h1>Remediation guide for {SHOWN}</h1>"),
        format!("<p class=\"note\">note <code>{SHOWN}</code></p>"),
        format!("re-run <code>mailaudit audit {SHOWN}</code>."),
        format!("<li>{}: {SHOWN}</li>", g.withheld[0].area.as_str()),
        format!("<h3>1. {SHOWN} <span class=\"key\">spf-repair</span></h3>"),
        format!("<li>Found: {SHOWN}<br>\nsecond line</li>"),
        format!("<td><code>{SHOWN}</code></td>"),
        "<p>Findings: <code>SPF-SYNTAX</code></p>".to_string(),
    ] {
        assert!(html.contains(&part), "{part:?} in\n{html}");
    }
}

#[test]
fn a_hostile_finding_in_an_audited_report() {
    let mut r = no_dmarc_report();
    r.findings.push(Finding::new(
        CheckId::MxUnresolvable,
        "<script>alert(1)</script>",
    ));
    let html = page(&build(&r, &ctx()));
    assert!(!html.contains("<script>"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Whatever the values, no markup escapes them and no unsafe character is left raw.
    #[test]
    fn any_value_stays_text(
        domain in "\\PC{0,20}|[<>&\"'\u{0}-\u{1f}\u{7f}-\u{9f}\u{202a}-\u{202e}\u{2066}-\u{2069}]{0,10}",
        found in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{9f}\u{202a}-\u{202e}])*",
        value in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{9f}\u{202a}-\u{202e}])*",
        text in "(\\PC|[`<\n])*",
    ) {
        let mut g = one_item(
            &domain,
            vec![found],
            vec![dns_step(vec![DnsRecord::txt(D, D, &value)])],
        );
        g.notes.push(text.clone());
        g.sections[0].items[0].why = text;
        let html = page(&g);
        proptest::prop_assert!(!html.chars().any(unsafe_char), "{}", html);
        proptest::prop_assert!(!html.contains("&#"), "{}", html);
        // The only elements are the renderer's own.
        for tag in html.split('<').skip(1) {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                .collect();
            proptest::prop_assert!(
                [
                    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "h2",
                    "h3", "p", "div", "ul", "ol", "li", "section", "span", "code", "pre", "br",
                    "table", "thead", "tbody", "tr", "th", "td",
                ]
                .contains(&name.as_str()),
                "<{} in {}",
                name,
                html
            );
        }
    }
}
