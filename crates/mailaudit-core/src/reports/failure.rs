//! DMARC failure reports: the Abuse Reporting Format (ARF, RFC 5965) as profiled for
//! authentication failures by RFC 6591 and DMARC by RFC 9991, plus the plain-text reports some
//! MTAs (Exim among them) send with no `message/feedback-report` part at all.
//!
//! Parsing is lenient: what deviates from the RFCs is recorded as a warning next to the report,
//! and only an input that is no email, or an email that is no failure report, is an error.

use std::net::IpAddr;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

/// RFC 6591 section 3.2 / RFC 5965 section 3.2 `Delivery-Result` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryResult {
    /// The message was delivered.
    Delivered,
    /// The message was delivered to a spam folder.
    Spam,
    /// The message was treated according to a policy (quarantined, for instance).
    Policy,
    /// The message was rejected.
    Reject,
    /// Any other outcome.
    Other,
}

/// Header fields of the reported message (the sample), as far as they were included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OriginalHeaders {
    /// `Subject`.
    pub subject: Option<String>,
    /// `From`, verbatim.
    pub from: Option<String>,
    /// `To`, verbatim.
    pub to: Option<String>,
    /// `Date`, verbatim.
    pub date: Option<String>,
}

/// One failure report. Fields are named after the ARF fields (RFC 5965 section 3.1, RFC 6591
/// section 3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailureReport {
    /// `Feedback-Type` (`auth-failure` for DMARC; defaulted when absent).
    pub feedback_type: String,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `Original-Mail-From` (angle brackets removed; `None` when empty).
    pub original_mail_from: Option<String>,
    /// Every `Original-Rcpt-To`.
    pub original_rcpt_to: Vec<String>,
    /// `Arrival-Date`, verbatim.
    pub arrival_date: Option<String>,
    /// `Source-IP`.
    pub source_ip: Option<IpAddr>,
    /// `Reported-Domain` (lower-cased).
    pub reported_domain: Option<String>,
    /// Every `Authentication-Results`.
    pub authentication_results: Vec<String>,
    /// `DKIM-Domain`.
    pub dkim_domain: Option<String>,
    /// `Delivery-Result`, folded onto the RFC 5965 values.
    pub delivery_result: Option<DeliveryResult>,
    /// `Identity-Alignment` (RFC 6591 section 3.2), e.g. `spf,dkim` or `none`.
    pub identity_alignment: Option<String>,
    /// Header fields of the sample message.
    pub original_headers: OriginalHeaders,
    /// `true` when the sample is headers only (`text/rfc822-headers` or no body), `false` when a
    /// whole message is included; `None` when there is no sample.
    pub sample_headers_only: Option<bool>,
}

/// Why an input is not a failure report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailureError {
    /// The bytes are not an RFC 5322 message.
    #[error("not an email message")]
    NotAnEmail,
    /// An email with no `message/feedback-report` part and no recognisable plain-text report.
    #[error("not a failure report: no message/feedback-report part and no DMARC failure text")]
    NotAFailureReport,
}

/// Parses a failure report email; returns the report and the deviations found.
///
/// RFC 6591 section 3.1: "The "Feedback-Type" field MUST be "auth-failure""; RFC 5965 section 2:
/// the report is a `multipart/report` whose second part is `message/feedback-report` and whose
/// third part is the original message or its headers (`message/rfc822` or
/// `text/rfc822-headers`). Real reporters also use `multipart/mixed`, base64 the feedback part,
/// or send plain text only (as parsedmarc, the source IP and domain are then read from the text).
///
/// # Errors
/// [`FailureError`] when the bytes are no email or the email is no failure report.
pub fn parse_failure(eml: &[u8]) -> Result<(FailureReport, Vec<String>), FailureError> {
    let eml = strip_mbox_separator(eml);
    if !super::container::looks_like_headers(super::container::skip_bom_and_space(eml)) {
        return Err(FailureError::NotAnEmail);
    }
    let message = MessageParser::default()
        .parse(eml)
        .filter(|m| !m.headers().is_empty())
        .ok_or(FailureError::NotAnEmail)?;
    let mut warnings = Vec::new();
    let mut report = FailureReport::default();
    let mut arf = None;
    let mut sample = None;
    for part in &message.parts {
        let media = part
            .content_type()
            .map(|ct| {
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase()
            })
            .unwrap_or_default();
        match media.as_str() {
            "message/feedback-report" if arf.is_none() => arf = Some(part.contents()),
            "text/rfc822-headers" if sample.is_none() => sample = Some((part.contents(), true)),
            _ if sample.is_none() && matches!(part.body, PartType::Message(_)) => {
                sample = Some((part.contents(), false));
            }
            _ => {}
        }
    }
    match arf {
        Some(fields) => read_arf(fields, &mut report, &mut warnings),
        None => {
            if !read_plain_text(&message, &mut report, &mut sample) {
                return Err(FailureError::NotAFailureReport);
            }
            warnings.push("no message/feedback-report part; read from the plain text".to_owned());
        }
    }
    if report.feedback_type.is_empty() {
        report.feedback_type = "auth-failure".to_owned();
        if arf.is_some() {
            warnings.push("Feedback-Type missing; assumed auth-failure".to_owned());
        }
    }
    if let Some((bytes, headers_only)) = sample {
        let (headers, no_body) = read_sample(bytes);
        report.original_headers = headers;
        report.sample_headers_only = Some(headers_only || no_body);
    }
    if report.reported_domain.is_none() {
        let from_domain = report
            .original_headers
            .from
            .as_deref()
            .and_then(address_domain);
        let ar_domain = report
            .authentication_results
            .iter()
            .find_map(|ar| value_after(ar, "header.from="));
        report.reported_domain = ar_domain.or(from_domain);
        if arf.is_some() {
            warnings.push("Reported-Domain missing".to_owned());
        }
    }
    Ok((report, warnings))
}

fn strip_mbox_separator(eml: &[u8]) -> &[u8] {
    if eml.starts_with(b"From ") {
        match eml.iter().position(|&b| b == b'\n') {
            Some(nl) => &eml[nl + 1..],
            None => &[],
        }
    } else {
        eml
    }
}

/// Unfolds RFC 5322 header lines into `(name, value)` pairs.
fn fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if out.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn read_arf(bytes: &[u8], report: &mut FailureReport, warnings: &mut Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    for (name, value) in fields(&text) {
        match name.as_str() {
            "feedback-type" => report.feedback_type = value.to_ascii_lowercase(),
            "user-agent" => report.user_agent = non_empty(&value),
            "version" => report.version = non_empty(&value),
            "original-mail-from" => {
                report.original_mail_from = non_empty(value.trim_matches(['<', '>']));
            }
            "original-rcpt-to" => {
                if let Some(v) = non_empty(value.trim_matches(['<', '>'])) {
                    report.original_rcpt_to.push(v);
                }
            }
            "arrival-date" | "received-date" => report.arrival_date = non_empty(&value),
            "source-ip" => match value.trim().parse::<IpAddr>() {
                Ok(ip) => report.source_ip = Some(ip),
                Err(_) => warnings.push(format!("Source-IP {value:?} is not an IP address")),
            },
            "reported-domain" => report.reported_domain = non_empty(&value.to_ascii_lowercase()),
            "authentication-results" => report.authentication_results.push(value),
            "dkim-domain" => report.dkim_domain = non_empty(&value),
            "delivery-result" => {
                let folded = fold_delivery_result(&value);
                if !matches!(
                    value.to_ascii_lowercase().as_str(),
                    "delivered" | "spam" | "policy" | "reject" | "other"
                ) {
                    warnings.push(format!(
                        "Delivery-Result {value:?} is not an RFC 5965 value; read as {folded:?}"
                    ));
                }
                report.delivery_result = Some(folded);
            }
            "identity-alignment" => report.identity_alignment = non_empty(&value),
            _ => {}
        }
    }
    if report.feedback_type != "auth-failure" && !report.feedback_type.is_empty() {
        warnings.push(format!(
            "Feedback-Type {:?} is not auth-failure (RFC 6591 section 3.1)",
            report.feedback_type
        ));
    }
}

/// Folds a `Delivery-Result` onto the RFC 5965 values the way parsedmarc does: the first value
/// the field contains wins (`smg-policy-action` is `policy`), anything else is `other`.
fn fold_delivery_result(value: &str) -> DeliveryResult {
    let v = value.to_ascii_lowercase();
    [
        ("delivered", DeliveryResult::Delivered),
        ("spam", DeliveryResult::Spam),
        ("policy", DeliveryResult::Policy),
        ("reject", DeliveryResult::Reject),
    ]
    .into_iter()
    .find(|(word, _)| v.contains(word))
    .map_or(DeliveryResult::Other, |(_, r)| r)
}

/// Reads the sample's header fields; the flag says whether the sample has no body.
fn read_sample(bytes: &[u8]) -> (OriginalHeaders, bool) {
    let text = String::from_utf8_lossy(bytes);
    let mut headers = OriginalHeaders::default();
    for (name, value) in fields(&text) {
        let slot = match name.as_str() {
            "subject" => &mut headers.subject,
            "from" => &mut headers.from,
            "to" => &mut headers.to,
            "date" => &mut headers.date,
            _ => continue,
        };
        if slot.is_none() {
            *slot = non_empty(&decode_words(&value));
        }
    }
    let no_body = text
        .split_once("\n\n")
        .or_else(|| text.split_once("\r\n\r\n"))
        .is_none_or(|(_, body)| body.trim().is_empty());
    (headers, no_body)
}

/// Decodes RFC 2047 encoded words by letting mail-parser read a one-field message.
fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_owned();
    }
    let raw = format!("Subject: {value}\r\n\r\n");
    MessageParser::default()
        .parse_headers(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| value.to_owned())
}

fn address_domain(from: &str) -> Option<String> {
    let at = from.rfind('@')?;
    let rest = &from[at + 1..];
    let end = rest
        .find(|c: char| c == '>' || c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    non_empty(&rest[..end].to_ascii_lowercase())
}

/// The token after `key` in `text` (up to whitespace or `;`), lower-cased.
fn value_after(text: &str, key: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find(key)? + key.len();
    let rest = &lower[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ';' || c == ')')
        .unwrap_or(rest.len());
    non_empty(&rest[..end])
}

/// Plain-text reports: labelled lines such as `Sender IP Address: 203.0.113.68` and
/// `Sender Domain: example.com`, or failing that `from IP x` / `for domain` in the subject.
/// Returns whether the message reads as a DMARC failure report at all.
fn read_plain_text<'m>(
    message: &'m Message<'m>,
    report: &mut FailureReport,
    sample: &mut Option<(&'m [u8], bool)>,
) -> bool {
    let subject = message.subject().unwrap_or_default();
    let body: String = message
        .parts
        .iter()
        .filter(|p| p.is_text())
        .filter_map(|p| p.text_contents())
        .collect::<Vec<_>>()
        .join("\n");
    let lower_subject = subject.to_ascii_lowercase();
    let lower_body = body.to_ascii_lowercase();
    let is_report = (lower_subject.contains("dmarc")
        && ["fail", "forensic", "ruf"]
            .iter()
            .any(|w| lower_subject.contains(w)))
        || (lower_body.contains("dmarc")
            && (lower_body.contains("failed") || lower_body.contains("failure")));
    if !is_report {
        return false;
    }
    for line in body.lines() {
        let Some((label, value)) = line.split_once(':') else {
            continue;
        };
        let label = label.trim().to_ascii_lowercase();
        let value = value.trim();
        match label.as_str() {
            "sender ip address" | "source ip" | "source-ip" | "ip address" | "sender ip"
                if report.source_ip.is_none() =>
            {
                report.source_ip = value.parse().ok();
            }
            "sender domain" | "reported domain" | "reported-domain" | "domain"
                if report.reported_domain.is_none() =>
            {
                report.reported_domain = non_empty(&value.to_ascii_lowercase());
            }
            "received date" | "arrival date" | "arrival-date" if report.arrival_date.is_none() => {
                report.arrival_date = non_empty(value);
            }
            _ => {}
        }
    }
    if report.source_ip.is_none() {
        report.source_ip = ["from ip ", "ip:", "ip="]
            .iter()
            .find_map(|key| value_after(subject, key).or_else(|| value_after(&body, key)))
            .and_then(|v| v.trim_matches([',', '.', '(', ')']).parse().ok());
    }
    if report.reported_domain.is_none() {
        report.reported_domain = value_after(subject, "for ")
            .filter(|d| d.contains('.'))
            .or_else(|| value_after(&body, "header.from="));
    }
    // Exim quotes the received headers after a marker line inside the text part.
    if sample.is_none() {
        for part in message.parts.iter().filter(|p| p.is_text()) {
            let contents = part.contents();
            if let Some(pos) = find_line_after(contents, b"copy of the headers") {
                *sample = Some((&contents[pos..], true));
                break;
            }
        }
    }
    true
}

/// The offset just past the line that contains `marker`.
fn find_line_after(haystack: &[u8], marker: &[u8]) -> Option<usize> {
    let at = haystack
        .windows(marker.len())
        .position(|w| w.eq_ignore_ascii_case(marker))?;
    let nl = haystack[at..].iter().position(|&b| b == b'\n')?;
    Some(at + nl + 1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/reports/failure/"
    );

    fn parse(file: &str) -> (FailureReport, Vec<String>) {
        let bytes = std::fs::read(format!("{DIR}{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
        parse_failure(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    #[test]
    fn failure_samples() {
        for (file, domain, ip, delivery, subject) in [
            (
                "DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml",
                "domain.de",
                "10.10.10.10",
                Some(DeliveryResult::Policy),
                None,
            ),
            (
                "[Netease DMARC Failure Report] Rent Reminder.eml",
                "cardinal.com",
                "167.89.69.24",
                Some(DeliveryResult::Delivered),
                Some("Rent Reminder"),
            ),
            (
                "dmarc_ruf_report_linkedin.eml",
                "example.com",
                "10.10.10.10",
                Some(DeliveryResult::Delivered),
                None,
            ),
            (
                "exim_plain_text_only_no_arf_part.eml",
                "example.com",
                "203.0.113.68",
                None,
                Some("Payment from your account."),
            ),
        ] {
            let (report, _) = parse(file);
            assert_eq!(report.feedback_type, "auth-failure", "{file}");
            assert_eq!(report.reported_domain.as_deref(), Some(domain), "{file}");
            assert_eq!(report.source_ip, ip.parse().ok(), "{file}");
            assert_eq!(report.delivery_result, delivery, "{file}");
            assert!(report.sample_headers_only.is_some(), "{file}: sample");
            if let Some(subject) = subject {
                assert_eq!(
                    report.original_headers.subject.as_deref(),
                    Some(subject),
                    "{file}"
                );
            }
        }
    }

    #[test]
    fn arf_fields() {
        let (r, warnings) = parse("[Netease DMARC Failure Report] Rent Reminder.eml");
        assert_eq!(r.user_agent.as_deref(), Some("NtesDmarcReporter/1.0"));
        assert_eq!(r.version.as_deref(), Some("1"));
        assert_eq!(r.dkim_domain.as_deref(), Some("entrata.com"));
        assert_eq!(r.identity_alignment.as_deref(), Some("spf,dkim"));
        assert_eq!(
            r.original_mail_from.as_deref(),
            Some("bounces+1137616-c1ad-xsj399=163.com@email.entrata.com")
        );
        assert_eq!(
            r.original_headers.from.as_deref(),
            Some("700 on Washington <info@cardinal.com>")
        );
        // The sample is a message/rfc822 part with an empty body.
        assert_eq!(r.sample_headers_only, Some(true));
        assert_eq!(r.authentication_results.len(), 1);
        assert!(warnings.is_empty(), "{warnings:?}");

        let (r, warnings) = parse(
            "DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml",
        );
        assert_eq!(
            r.original_mail_from.as_deref(),
            Some("sharepoint@domain.de")
        );
        assert_eq!(r.original_rcpt_to, ["peter.pan@domain.de"]);
        assert_eq!(
            r.arrival_date.as_deref(),
            Some("Mon, 01 Oct 2018 11:20:27 +0200")
        );
        assert!(warnings.iter().any(|w| w.contains("smg-policy-action")));

        let (r, _) = parse("dmarc_ruf_report_linkedin.eml");
        assert_eq!(r.sample_headers_only, Some(false));
        assert_eq!(r.original_mail_from, None);
        assert_eq!(r.original_rcpt_to, ["recipient@linkedin.com"]);
    }

    #[test]
    fn crlf_and_lf_linkedin_parse_identically() {
        assert_eq!(
            parse("dmarc_ruf_report_linkedin.eml"),
            parse("dmarc_ruf_report_linkedin.crlf.eml")
        );
    }

    #[test]
    fn plain_text_report_has_authentication_results_key() {
        let (r, warnings) = parse("exim_plain_text_only_no_arf_part.eml");
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("authentication_results").is_some());
        assert_eq!(json["source_ip"], "203.0.113.68");
        assert_eq!(r.sample_headers_only, Some(true));
        assert!(warnings.iter().any(|w| w.contains("plain text")));
    }

    #[test]
    fn not_failure_reports() {
        for (input, err) in [
            (&b""[..], FailureError::NotAnEmail),
            (b"\x00\x01binary", FailureError::NotAnEmail),
            (
                b"From: a@example.com\r\nSubject: lunch\r\n\r\nSee you at noon.\r\n",
                FailureError::NotAFailureReport,
            ),
        ] {
            assert_eq!(parse_failure(input).err(), Some(err), "{input:?}");
        }
    }

    #[test]
    fn delivery_result_folding() {
        for (raw, expect) in [
            ("delivered", DeliveryResult::Delivered),
            ("Spam", DeliveryResult::Spam),
            ("smg-policy-action", DeliveryResult::Policy),
            ("reject", DeliveryResult::Reject),
            ("bounced", DeliveryResult::Other),
        ] {
            assert_eq!(fold_delivery_result(raw), expect, "{raw}");
        }
    }

    proptest! {
        #[test]
        fn parse_failure_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_failure(&bytes);
            let mut arf = b"Subject: DMARC failure\nContent-Type: message/feedback-report\n\n".to_vec();
            arf.extend(&bytes);
            let _ = parse_failure(&arf);
        }
    }
}
