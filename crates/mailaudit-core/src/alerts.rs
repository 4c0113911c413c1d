//! Regression alerts, pure: the JSON body a webhook receives ([`alert_payload`]) and the
//! email's subject and text written from it ([`mail_content`]). No I/O: delivery (the webhook
//! POST, the SMTP submission, retries) is `mailaudit-net::notify`.
//!
//! [`alert_payload`] builds the JSON once, when a regression is found; the scheduler keeps it
//! in the store's alert outbox and hands it to the delivery on every attempt, for either
//! channel: a webhook receives it as is (its `text` field is what Slack incoming webhooks and
//! the Teams legacy connector show, its `attachments` hold the Adaptive Card that a Teams
//! Workflows webhook posts, its `mailaudit` object the details for other consumers), an email
//! is written from it by [`mail_content`].

use serde_json::{Value, json};

use crate::dns::normalize_name;
use crate::finding::Finding;

/// At most this many findings are listed in a chat message (all are in the `mailaudit` object).
const MAX_LISTED: usize = 20;

/// At most this many characters of a finding's detail in a chat message.
const MAX_DETAIL: usize = 300;

/// The version of the `mailaudit` object in [`alert_payload`].
pub const PAYLOAD_VERSION: u64 = 1;

/// The JSON body of a regression alert, for Slack and Teams alike, with the details in a
/// structured `mailaudit` object:
///
/// ```json
/// { "text": "mailaudit: 1 regression on contoso.com (score 85 → 60)\n\n- CRITICAL DMARC-MISSING: ...",
///   "type": "message",
///   "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive",
///                     "fallback": "...", "content": { "type": "AdaptiveCard", ... } }],
///   "mailaudit": { "version": 1, "event": "regression", "domain": "contoso.com",
///                  "subject": "...", "score": { "previous": 85, "current": 60 },
///                  "regressions": [ <finding as in the JSON report> ], "portal_url": null } }
/// ```
///
/// `text` is what a Slack incoming webhook and a Teams legacy connector show; `<`, `>` and `&`
/// are escaped as Slack requires (record text read from DNS must not become a Slack mention or
/// a Teams HTML tag). A Teams Workflows webhook ("post to a channel when a webhook request is
/// received") posts the Adaptive Card of `attachments`. At most 20 findings are listed in the
/// text and the card, the most severe first, each detail cut at 300 characters; the
/// `mailaudit` object has them all, verbatim. `score` is `(previous, current)`.
pub fn alert_payload(
    domain: &str,
    regressions: &[Finding],
    score: (Option<u8>, Option<u8>),
    portal_url: Option<&str>,
) -> Value {
    let domain = normalize_name(domain);
    let subject = subject_line(&domain, regressions.len(), score);
    // The chat versions: every value from DNS, SMTP or the store (the domain, each finding's
    // title and detail) has its Markdown escaped, so a record's `[Fix it now](https://…)`
    // shows as text, not as a link; `text` (Slack, Teams connector) also gets Slack's
    // entities for `&`, `<`, `>`, the card (Teams workflows) backslashes for `<` and `>`.
    let chat_subject =
        |angles| subject_line(&escape_markdown(&domain, angles), regressions.len(), score);
    let ordered = by_severity(regressions);
    let mut text = escape_chat(&chat_subject(false));
    let mut facts = Vec::new();
    if !ordered.is_empty() {
        text.push_str("\n\n");
    }
    for f in ordered.iter().take(MAX_LISTED) {
        let title = one_line(&f.title);
        let detail = clip(&one_line(&f.detail), MAX_DETAIL);
        let line = |angles| {
            format!(
                "{} {}: {} ({})",
                f.severity.as_str().to_ascii_uppercase(),
                f.id,
                escape_markdown(&title, angles),
                escape_markdown(&detail, angles)
            )
        };
        text.push_str(&format!("- {}\n", escape_chat(&line(false))));
        facts.push(json!({
            "type": "TextBlock",
            "wrap": true,
            "text": format!("- {}", line(true)),
        }));
    }
    if ordered.len() > MAX_LISTED {
        let more = format!("... and {} more", ordered.len() - MAX_LISTED);
        text.push_str(&format!("{more}\n"));
        facts.push(json!({ "type": "TextBlock", "wrap": true, "text": more }));
    }
    let text = text.trim_end().to_string();
    let mut body = vec![json!({
        "type": "TextBlock",
        "size": "Medium",
        "weight": "Bolder",
        "wrap": true,
        "text": one_line(&chat_subject(true)),
    })];
    body.extend(facts);
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    });
    let mut text = text;
    if let Some(url) = portal_url {
        let url = one_line(url);
        text.push_str(&format!("\n\nDetails: {}", escape_chat(&url)));
        card["actions"] =
            json!([{ "type": "Action.OpenUrl", "title": "Open in mailaudit", "url": url }]);
    }
    json!({
        "text": text,
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "fallback": one_line(&subject),
            "content": card,
        }],
        "mailaudit": {
            "version": PAYLOAD_VERSION,
            "event": "regression",
            "domain": domain,
            "subject": subject,
            "score": { "previous": score.0, "current": score.1 },
            "regressions": regressions,
            "portal_url": portal_url,
        },
    })
}

/// An email's subject and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailContent {
    /// The subject (may hold any Unicode; the mail delivery encodes it).
    pub subject: String,
    /// The body, lines separated by `\n`.
    pub body: String,
}

/// The email for an alert payload: from its `mailaudit` object (every finding with detail,
/// evidence and fix, unescaped), or, for a payload made elsewhere, its `text` field (or the
/// JSON itself) under a generic subject.
pub fn mail_content(payload: &Value) -> MailContent {
    let m = &payload["mailaudit"];
    let domain = m["domain"].as_str();
    let regressions: Option<Vec<Finding>> = serde_json::from_value(m["regressions"].clone()).ok();
    let (Some(domain), Some(regressions)) = (domain, regressions) else {
        let body = match payload["text"].as_str() {
            Some(t) => t.to_string(),
            None => serde_json::to_string_pretty(payload).unwrap_or_default(),
        };
        return MailContent {
            subject: "mailaudit alert".to_string(),
            body,
        };
    };
    let score = |k: &str| m["score"][k].as_u64().and_then(|n| u8::try_from(n).ok());
    let score = (score("previous"), score("current"));
    let subject = subject_line(domain, regressions.len(), score);
    let mut body = format!(
        "mailaudit found {} on {domain} since the previous audit.\n{}\n",
        count(regressions.len(), "regression"),
        score_line(score)
    );
    for f in by_severity(&regressions) {
        body.push_str(&format!(
            "\n[{}] {}: {}\n  {}\n",
            f.severity.as_str().to_ascii_uppercase(),
            f.id,
            f.title,
            f.detail.replace('\n', "\n  ")
        ));
        if let Some(e) = &f.evidence {
            body.push_str(&format!("  Found: {}\n", e.replace('\n', "\n    ")));
        }
        if !f.fix.is_empty() {
            body.push_str(&format!("  Fix: {}\n", f.fix.replace('\n', "\n    ")));
        }
    }
    if let Some(url) = m["portal_url"].as_str() {
        body.push_str(&format!("\nDetails: {url}\n"));
    }
    MailContent { subject, body }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn subject_line(domain: &str, n: usize, score: (Option<u8>, Option<u8>)) -> String {
    let score = match score {
        (Some(a), Some(b)) => format!(" (score {a} → {b})"),
        (None, Some(b)) => format!(" (score {b})"),
        (Some(a), None) => format!(" (score {a} → unscored)"),
        (None, None) => String::new(),
    };
    format!("mailaudit: {} on {domain}{score}", count(n, "regression"))
}

fn score_line(score: (Option<u8>, Option<u8>)) -> String {
    let show = |s: Option<u8>| s.map_or("none (a look-up failed)".to_string(), |n| n.to_string());
    format!(
        "Score: {} (previous audit: {})",
        show(score.1),
        show(score.0)
    )
}

/// The findings, most severe first (stable for equal severities).
fn by_severity(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// Control characters (line breaks included) replaced by spaces, runs of spaces kept.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `s` with a backslash before each Markdown metacharacter (`\\`, `` ` ``, `*`, `_`, `~`, `[`,
/// `]`, `(`, `)`, `#`, `|`, and `<`, `>` when `angles`), so that neither Slack's mrkdwn
/// nor the Markdown of Teams cards renders a value from a DNS record as a link, an image or
/// formatting. Without `angles`, `<` and `>` are left for [`escape_chat`].
fn escape_markdown(s: &str, angles: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '(' | ')' | '#' | '|'
        ) || (angles && matches!(c, '<' | '>'))
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Slack's escaping of `&`, `<` and `>` (which Teams renders as the characters).
fn escape_chat(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckId;

    fn finding(id: CheckId, detail: &str) -> Finding {
        Finding::new(id, detail)
    }

    #[test]
    fn payload_for_slack_and_teams() {
        let regressions = vec![
            finding(CheckId::SpfSoftfail, "~all"),
            finding(
                CheckId::DmarcMissing,
                "no TXT record at _dmarc.contoso.com <!channel> & co",
            ),
        ];
        let p = alert_payload(
            "Contoso.COM.",
            &regressions,
            (Some(85), Some(60)),
            Some("https://portal.test/d/contoso.com"),
        );
        let text = p["text"].as_str().unwrap();
        assert!(
            text.starts_with("mailaudit: 2 regressions on contoso.com (score 85 → 60)\n\n- CRITICAL DMARC-MISSING"),
            "{text}"
        );
        assert!(text.contains("&lt;!channel&gt; &amp; co"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(
            text.ends_with("Details: https://portal.test/d/contoso.com"),
            "{text}"
        );
        assert_eq!(p["type"], "message");
        let att = &p["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(att["content"]["type"], "AdaptiveCard");
        assert_eq!(att["content"]["body"].as_array().unwrap().len(), 3);
        assert_eq!(
            att["content"]["actions"][0]["url"],
            "https://portal.test/d/contoso.com"
        );
        let m = &p["mailaudit"];
        assert_eq!(m["version"], 1);
        assert_eq!(m["event"], "regression");
        assert_eq!(m["domain"], "contoso.com");
        assert_eq!(m["score"], json!({"previous": 85, "current": 60}));
        let back: Vec<Finding> = serde_json::from_value(m["regressions"].clone()).unwrap();
        assert_eq!(back, regressions);

        let many: Vec<Finding> = (0..25)
            .map(|i| finding(CheckId::SpfSoftfail, &format!("n{i} {}", "x".repeat(400))))
            .collect();
        let p = alert_payload("contoso.com", &many, (None, None), None);
        let text = p["text"].as_str().unwrap();
        assert_eq!(text.matches("\n- ").count(), 20, "{text}");
        assert!(text.ends_with("... and 5 more"), "{text}");
        assert!(text.contains('…'));
        assert!(p["attachments"][0]["content"].get("actions").is_none());
        assert_eq!(p["mailaudit"]["regressions"].as_array().unwrap().len(), 25);
        assert!(p["mailaudit"]["portal_url"].is_null());
    }

    #[test]
    fn mail_content_from_payload() {
        let regressions = vec![
            finding(CheckId::DmarcMissing, "no record at _dmarc.contoso.com <x>")
                .with_evidence("v=spf1 ~all")
                .with_fix("Publish v=DMARC1; p=none"),
        ];
        let p = alert_payload("contoso.com", &regressions, (Some(90), None), None);
        let c = mail_content(&p);
        assert_eq!(
            c.subject,
            "mailaudit: 1 regression on contoso.com (score 90 → unscored)"
        );
        for needle in [
            "mailaudit found 1 regression on contoso.com since the previous audit.",
            "Score: none (a look-up failed) (previous audit: 90)",
            "[CRITICAL] DMARC-MISSING:",
            "no record at _dmarc.contoso.com <x>",
            "Found: v=spf1 ~all",
            "Fix: Publish v=DMARC1; p=none",
        ] {
            assert!(c.body.contains(needle), "{needle:?} in {}", c.body);
        }
        let other = mail_content(&json!({"text": "hello"}));
        assert_eq!(other.subject, "mailaudit alert");
        assert_eq!(other.body, "hello");
        let raw = mail_content(&json!({"x": 1}));
        assert!(raw.body.contains("\"x\": 1"));
    }

    #[test]
    fn helpers_never_panic_on_odd_text() {
        for s in ["", "é", "\u{0}\u{7f}", "a\u{200b}b", &"🦀".repeat(100)] {
            let _ = clip(s, 0);
            let _ = clip(s, 3);
            let _ = one_line(s);
            let _ = escape_markdown(s, true);
        }
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(one_line("a\r\nb\tc"), "a  b c");
    }
}
