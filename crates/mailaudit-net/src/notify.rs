//! Alert delivery for regressions found by scheduled re-audits: a JSON webhook POST over
//! HTTP or HTTPS ([`post_webhook`]), an email through an SMTP submission relay ([`send_mail`]),
//! and the retry policy around both ([`Backoff`], [`deliver_with_retry`]).
//!
//! [`alert_payload`] builds the JSON body once, when a regression is found; the scheduler keeps
//! it in the store's alert outbox and hands it to [`deliver`] on every attempt, for either
//! channel: a webhook receives it as is (its `text` field is what Slack incoming webhooks and
//! the Teams legacy connector show, its `attachments` hold the Adaptive Card that a Teams
//! Workflows webhook posts, its `mailaudit` object the details for other consumers), an email
//! is written from it by [`mail_content`].
//!
//! Both clients are written by hand over tokio's `TcpStream` and rustls: the HTTP/1.1 response
//! head is parsed by the MTA-STS fetch's parser ([`crate::https`]), SMTP replies by the core's
//! [`ReplyParser`]. Host names are resolved through the run's [`DnsSource`] (`--nameserver`, or
//! the system's configuration); IP literals are used as they are. Certificates are verified
//! against [`TlsRoots`] (web PKI plus `--ca-file`) with rustls' web PKI verifier: a certificate
//! that does not validate ends the attempt. One deadline bounds each whole attempt
//! ([`NotifyOptions::timeout`]), and each TCP connect is also bounded by
//! [`NotifyOptions::connect_timeout`].
//!
//! Every failure is a [`NotifyError`] that says whether another attempt may succeed
//! ([`NotifyError::is_retryable`]): network failures, timeouts, HTTP 5xx, 408 and 429, and SMTP
//! 4xx replies are retryable; HTTP 4xx and 3xx (a redirect is never followed), SMTP 5xx replies
//! and invalid targets are permanent.
//!
//! Secrets stay out of logs: the `Debug` output of [`WebhookTarget`] hides the URL's path and
//! query (a Slack or Teams webhook URL is itself the credential) and the header values, that of
//! [`MailTarget`] the password; errors name the host, never the path or the credentials.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailaudit_core::dns::{DnsError, DnsSource, normalize_name};
use mailaudit_core::finding::Finding;
use mailaudit_core::smtp::{Reply, ReplyParser};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsConnector;

use crate::https::{self, ChunkedDecoder, FetchError, Framing, MAX_HEADER, MAX_INTERIM};
use crate::smtp::TlsRoots;

/// The default limit of one whole delivery attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default limit of one TCP connect attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many octets of an error response's body are read, for the error message.
const MAX_ERROR_BODY: usize = 8 * 1024;

/// At most this many characters of an error response's body are kept in [`NotifyError::Http`].
const ERROR_EXCERPT: usize = 300;

/// How long an error response's body is waited for, at most (within the attempt's deadline).
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);

/// How long `QUIT` is waited for once the message is accepted or the transaction failed.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// At most this many findings are listed in a chat message (all are in the `mailaudit` object).
const MAX_LISTED: usize = 20;

/// At most this many characters of a finding's detail in a chat message.
const MAX_DETAIL: usize = 300;

/// The version of the `mailaudit` object in [`alert_payload`].
pub const PAYLOAD_VERSION: u64 = 1;

/// How alerts are delivered: time limits, trust anchors, the SMTP client's name.
#[derive(Clone, Debug)]
pub struct NotifyOptions {
    /// The limit of one whole attempt: DNS look-up to the last reply.
    pub timeout: Duration,
    /// The limit of each TCP connect attempt (also cut by `timeout`).
    pub connect_timeout: Duration,
    /// The trust anchors HTTPS servers and STARTTLS relays must chain to.
    pub roots: TlsRoots,
    /// The name sent with `EHLO`; `None` sends the address literal of the local end of the
    /// connection (`[192.0.2.1]`), as RFC 5321 §4.1.4 allows a client without a meaningful name.
    pub helo_name: Option<String>,
}

impl Default for NotifyOptions {
    /// [`DEFAULT_TIMEOUT`], [`DEFAULT_CONNECT_TIMEOUT`], the web PKI roots, an address literal
    /// for `EHLO`.
    fn default() -> Self {
        NotifyOptions::new(TlsRoots::webpki())
    }
}

impl NotifyOptions {
    /// The default options with these trust anchors.
    pub fn new(roots: TlsRoots) -> Self {
        NotifyOptions {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            roots,
            helo_name: None,
        }
    }
}

/// The step of a delivery attempt at which it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Resolving the host name.
    Dns,
    /// The TCP connection.
    Connect,
    /// The TLS handshake (certificate validation included), HTTPS or after STARTTLS.
    Handshake,
    /// Sending the HTTP request.
    Request,
    /// Reading the HTTP response.
    Response,
    /// The SMTP greeting (`220`).
    Greeting,
    /// `EHLO` (or `HELO`).
    Ehlo,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH PLAIN`.
    Auth,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// `DATA`.
    Data,
    /// The message content and its final reply.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Dns => "the DNS look-up",
            Stage::Connect => "the TCP connection",
            Stage::Handshake => "the TLS handshake",
            Stage::Request => "sending the request",
            Stage::Response => "reading the response",
            Stage::Greeting => "the SMTP greeting",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH PLAIN",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the message content",
        })
    }
}

/// Why an alert was not delivered. [`NotifyError::is_retryable`] says whether another attempt
/// may succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The webhook URL cannot be used (permanent). The text never repeats the URL's path.
    #[error("invalid webhook URL: {0}")]
    InvalidUrl(String),
    /// Another part of the target cannot be used: a header, an address, credentials
    /// (permanent).
    #[error("invalid alert target: {0}")]
    InvalidTarget(String),
    /// A look-up of the host failed (retryable).
    #[error("{query}: {error}")]
    Dns {
        /// The look-up, e.g. `A hooks.example.com`.
        query: String,
        /// Why it failed.
        error: DnsError,
    },
    /// The host has neither A nor AAAA records (retryable: the name may be fixed).
    #[error("{host} has no A or AAAA record")]
    NoAddress {
        /// The host name.
        host: String,
    },
    /// No TCP connection to any address of the host (retryable).
    #[error("cannot connect to {host}: {}", .attempts.join("; "))]
    Connect {
        /// The host name.
        host: String,
        /// One line per address tried: `ADDR:PORT: why`.
        attempts: Vec<String>,
    },
    /// The TLS handshake failed: an invalid certificate, an alert, a reset (retryable: a
    /// certificate may be renewed).
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// The attempt's time limit ran out (retryable).
    #[error("no complete answer within {}s: timed out during {stage}", .limit.as_secs_f64())]
    Timeout {
        /// The step under way.
        stage: Stage,
        /// The limit of the whole attempt.
        limit: Duration,
    },
    /// The connection failed after it was set up: reset, closed early (retryable).
    #[error("the connection failed during {stage}: {reason}")]
    Io {
        /// The step under way.
        stage: Stage,
        /// Why.
        reason: String,
    },
    /// The webhook answered with a final status other than 2xx. Retryable for 5xx, 408 and
    /// 429; permanent otherwise (a 3xx redirect is not followed).
    #[error("{}", describe_http(*.status, .reason, .location.as_deref(), .body))]
    Http {
        /// The status code.
        status: u16,
        /// The reason phrase, as sent.
        reason: String,
        /// The `Location` field of a redirect, which is not followed.
        location: Option<String>,
        /// The `Retry-After` field in seconds, when given as a number.
        retry_after: Option<Duration>,
        /// The start of the response body (control characters replaced), for the operator.
        body: String,
    },
    /// The response is not well-formed HTTP/1.1 (retryable: a proxy in trouble).
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    /// The SMTP server refused a step: retryable for a 4xx reply, permanent for 5xx.
    #[error("the mail server rejected {stage}: {reply}")]
    Smtp {
        /// The step refused.
        stage: Stage,
        /// The reply code.
        code: u16,
        /// The reply, all lines joined (`550 5.1.1 <x@y>: Recipient address rejected`).
        reply: String,
    },
    /// The SMTP server broke the protocol: garbage, an overlong line (retryable).
    #[error("SMTP protocol error during {stage}: {reason}")]
    SmtpProtocol {
        /// The step under way.
        stage: Stage,
        /// What was wrong.
        reason: String,
    },
    /// The relay lacks an extension the target needs: `STARTTLS`, `AUTH PLAIN` (permanent).
    #[error("{relay} does not offer {extension}, which this mail target needs")]
    Unsupported {
        /// The relay's host name.
        relay: String,
        /// The extension missing.
        extension: String,
    },
}

fn describe_http(status: u16, reason: &str, location: Option<&str>, body: &str) -> String {
    let mut s = format!("the webhook answered HTTP {status} {reason}")
        .trim_end()
        .to_string();
    if (300..400).contains(&status) {
        match location {
            Some(l) => s.push_str(&format!(", a redirect to {l} that is not followed")),
            None => s.push_str(", a redirect that is not followed"),
        }
    }
    if !body.is_empty() {
        s.push_str(&format!(": {body}"));
    }
    s
}

impl NotifyError {
    /// Whether another attempt may succeed: network failures, timeouts, HTTP 5xx, 408 and 429,
    /// SMTP 4xx. Invalid targets, other HTTP statuses (4xx, 3xx), SMTP 5xx and missing
    /// extensions are permanent.
    ///
    /// RFC 9110 §15.5.1: "The 4xx (Client Error) class of status code indicates that the client
    /// seems to have erred." §15.5.9 (408): "If the client has an outstanding request in
    /// transit, it MAY repeat that request." RFC 6585 §4 (429): "The user has sent too many
    /// requests in a given amount of time". RFC 5321 §4.2.1: "4yz Transient Negative Completion
    /// reply [...] The sender-SMTP is encouraged to try again"; "5yz Permanent Negative
    /// Completion reply [...] The SMTP client SHOULD NOT repeat the exact request".
    pub fn is_retryable(&self) -> bool {
        match self {
            NotifyError::InvalidUrl(_)
            | NotifyError::InvalidTarget(_)
            | NotifyError::Unsupported { .. } => false,
            NotifyError::Http { status, .. } => {
                (500..600).contains(status) || *status == 408 || *status == 429
            }
            NotifyError::Smtp { code, .. } => (400..500).contains(code),
            NotifyError::Dns { .. }
            | NotifyError::NoAddress { .. }
            | NotifyError::Connect { .. }
            | NotifyError::Tls { .. }
            | NotifyError::Timeout { .. }
            | NotifyError::Io { .. }
            | NotifyError::Malformed(_)
            | NotifyError::SmtpProtocol { .. } => true,
        }
    }

    /// The wait the server asked for (`Retry-After` of a 429 or 503), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            NotifyError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Retry policy
// ---------------------------------------------------------------------------------------------

/// Exponential backoff with a cap and a limit on attempts: the waits are `base`, `2 × base`,
/// `4 × base`, ... never more than `max`, and after `max_attempts` attempts delivery stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How many attempts in all, the first included (at least 1).
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// One minute, doubling up to one hour, 10 attempts: about five hours from the first
    /// attempt to the last.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(60), Duration::from_secs(3600), 10)
    }
}

impl Backoff {
    /// A policy with these parameters.
    pub const fn new(base: Duration, max: Duration, max_attempts: u32) -> Self {
        Backoff {
            base,
            max,
            max_attempts,
        }
    }

    /// The wait before the next attempt once `attempts` attempts have failed (1 after the first
    /// failure): `base × 2^(attempts-1)`, at most `max`; `None` when `attempts` reached
    /// `max_attempts` (give up).
    pub fn next_delay(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(31);
        let delay = self.base.checked_mul(1u32 << exponent).unwrap_or(self.max);
        Some(delay.min(self.max))
    }

    /// The wait before the next attempt after `attempts` attempts, the last of which failed
    /// with `err`: `None` when `err` is permanent or the attempts are used up; otherwise
    /// [`Backoff::next_delay`], or the server's `Retry-After` when that is longer (capped at
    /// `max`).
    pub fn retry_delay(&self, attempts: u32, err: &NotifyError) -> Option<Duration> {
        if !err.is_retryable() {
            return None;
        }
        let delay = self.next_delay(attempts)?;
        Some(match err.retry_after() {
            Some(asked) => delay.max(asked.min(self.max)),
            None => delay,
        })
    }
}

/// The outcome of [`deliver_with_retry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempts<T> {
    /// The value of the successful attempt, or the error of the last one.
    pub outcome: Result<T, NotifyError>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The errors of the failed attempts before the last, in order.
    pub retried: Vec<NotifyError>,
}

/// Runs `attempt` (given the attempt number, from 1) until it succeeds, fails permanently, or
/// `backoff` gives up, sleeping [`Backoff::retry_delay`] between attempts. For in-process
/// retries (`mailaudit schedule run`); the scheduler's outbox keeps the attempt count in the
/// store instead and calls [`deliver`] once per due alert.
///
/// ```no_run
/// # async fn demo(dns: &mailaudit_net::Resolver, target: mailaudit_net::notify::AlertTarget,
/// #               payload: serde_json::Value) {
/// use mailaudit_net::notify::{Backoff, NotifyOptions, deliver, deliver_with_retry};
/// let opts = NotifyOptions::default();
/// let done = deliver_with_retry(&Backoff::default(), |_| deliver(dns, &target, &payload, &opts)).await;
/// # }
/// ```
pub async fn deliver_with_retry<T, F, Fut>(backoff: &Backoff, mut attempt: F) -> Attempts<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, NotifyError>>,
{
    let mut retried = Vec::new();
    let mut n = 0u32;
    loop {
        n = n.saturating_add(1);
        match attempt(n).await {
            Ok(value) => {
                return Attempts {
                    outcome: Ok(value),
                    attempts: n,
                    retried,
                };
            }
            Err(err) => match backoff.retry_delay(n, &err) {
                Some(delay) => {
                    retried.push(err);
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Attempts {
                        outcome: Err(err),
                        attempts: n,
                        retried,
                    };
                }
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The alert: payload, email content, targets
// ---------------------------------------------------------------------------------------------

/// Where an alert goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertTarget {
    /// A webhook (Teams, Slack, anything accepting a JSON POST).
    Webhook(WebhookTarget),
    /// An email through a submission relay.
    Mail(MailTarget),
}

/// Delivers the alert `payload` (made by [`alert_payload`], as kept in the outbox) to `target`
/// once: the JSON itself to a webhook, the email [`mail_content`] writes from it to a mail
/// target.
pub async fn deliver<D: DnsSource>(
    dns: &D,
    target: &AlertTarget,
    payload: &Value,
    opts: &NotifyOptions,
) -> Result<(), NotifyError> {
    match target {
        AlertTarget::Webhook(w) => post_webhook(dns, w, payload, opts).await.map(|_| ()),
        AlertTarget::Mail(m) => {
            let content = mail_content(payload);
            send_mail(dns, m, &content.subject, &content.body, opts).await
        }
    }
}

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
    /// The subject (may hold any Unicode; [`send_mail`] encodes it).
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
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
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

// ---------------------------------------------------------------------------------------------
// Connections shared by both channels
// ---------------------------------------------------------------------------------------------

/// The addresses of `host`: an IP literal as is, otherwise A then AAAA records from `dns`.
pub(crate) async fn addresses<D: DnsSource>(
    dns: &D,
    host: &str,
    deadline: Instant,
) -> Result<Vec<IpAddr>, NotifyError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    https::resolve(dns, host, deadline)
        .await
        .map_err(|e| match e {
            FetchError::Dns { query, error } => NotifyError::Dns { query, error },
            FetchError::NoAddress { host } => NotifyError::NoAddress { host },
            other => NotifyError::Io {
                stage: Stage::Dns,
                reason: other.to_string(),
            },
        })
}

/// Connects to the addresses in turn ([`https::connect_in_turn`]), each attempt bounded by
/// `connect_timeout` and the deadline.
pub(crate) async fn connect(
    host: &str,
    addrs: &[IpAddr],
    port: u16,
    opts: &NotifyOptions,
    deadline: Instant,
) -> Result<TcpStream, NotifyError> {
    match https::connect_in_turn(addrs, port, opts.connect_timeout, deadline).await {
        Ok(stream) => Ok(stream),
        Err(_) if Instant::now() >= deadline => Err(NotifyError::Timeout {
            stage: Stage::Connect,
            limit: opts.timeout,
        }),
        Err(attempts) => Err(NotifyError::Connect {
            host: host.to_string(),
            attempts,
        }),
    }
}

/// The TLS handshake with `host` (SNI for a name; an IP literal must be in the certificate)
/// and full certificate validation against `opts.roots`.
pub(crate) async fn tls_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    alpn: Option<&[u8]>,
    opts: &NotifyOptions,
    deadline: Instant,
) -> Result<tokio_rustls::client::TlsStream<S>, NotifyError> {
    let tls_error = |reason: String| NotifyError::Tls {
        host: host.to_string(),
        reason,
    };
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .with_webpki_verifier(opts.roots.verifier.clone())
            .with_no_client_auth();
    if let Some(p) = alpn {
        config.alpn_protocols = vec![p.to_vec()];
    }
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string())
            .map_err(|_| tls_error(format!("{host:?} is not a valid TLS server name")))?,
    };
    match timeout_at(
        deadline,
        TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await
    {
        Err(_) => Err(NotifyError::Timeout {
            stage: Stage::Handshake,
            limit: opts.timeout,
        }),
        Ok(Err(e)) => Err(tls_error(https::describe_tls(&e, host))),
        Ok(Ok(s)) => Ok(s),
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

/// A webhook: the URL to POST the alert's JSON to, and extra request header fields (e.g.
/// `Authorization`).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `http://` or `https://` URL: `scheme://host[:port][/path][?query]`, ASCII (IDN host
    /// names in their `xn--` form, other characters percent-encoded); no user information.
    pub url: String,
    /// Extra header fields, sent in order. `Host`, `Content-Type`, `Content-Length`,
    /// `Transfer-Encoding` and `Connection` are set by the client and refused here.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for WebhookTarget {
    /// The URL without its path and query, the header names without their values: a webhook
    /// URL and an `Authorization` value are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| format!("{n}: <redacted>"))
            .collect();
        f.debug_struct("WebhookTarget")
            .field("url", &redact_url(&self.url))
            .field("headers", &headers)
            .finish()
    }
}

/// `scheme://authority/<redacted>`: what may be shown of a webhook URL.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if end == rest.len() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/<redacted>")
    }
}

/// A parsed webhook URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    /// `https`.
    pub(crate) tls: bool,
    /// The host, lower-case, an IPv6 literal without its brackets.
    pub(crate) host: String,
    /// The port (80 or 443 unless given).
    pub(crate) port: u16,
    /// The origin-form request target: path and query, `/` when empty.
    pub(crate) target: String,
}

impl Url {
    /// The `Host` field value: the host (IPv6 in brackets), with the port when not the default.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses an `http` or `https` URL.
///
/// RFC 9110 §4.2.1: "http-URI = "http" "://" authority path-abempty [ "?" query ]"; §4.2.2:
/// "https-URI = "https" "://" authority path-abempty [ "?" query ]"; §4.2.4: "A sender MUST NOT
/// generate the userinfo subcomponent (and its "@" delimiter) when an "http" or "https" URI
/// reference is generated within a message as a target URI or field value." The fragment is
/// not sent (RFC 9110 §7.1).
pub(crate) fn parse_url(url: &str) -> Result<Url, NotifyError> {
    let bad = |why: &str| {
        Err(NotifyError::InvalidUrl(format!(
            "{} ({why})",
            redact_url(url)
        )))
    };
    if url.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return bad("only printable ASCII without spaces is allowed; percent-encode the rest");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("expected http:// or https://");
    };
    let (tls, default_port) = if scheme.eq_ignore_ascii_case("https") {
        (true, 443)
    } else if scheme.eq_ignore_ascii_case("http") {
        (false, 80)
    } else {
        return bad("expected http:// or https://");
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return bad("user information in the URL is not allowed; use an Authorization header");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((ip, after)) = v6.split_once(']') else {
            return bad("unterminated IPv6 literal");
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("invalid IPv6 literal");
        }
        match after {
            "" => (ip.to_ascii_lowercase(), None),
            p => match p.strip_prefix(':') {
                Some(p) => (ip.to_ascii_lowercase(), Some(p)),
                None => return bad("invalid authority"),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return bad("invalid port"),
        },
    };
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    if host.is_empty() {
        return bad("no host");
    }
    if !host.contains(':')
        && (host
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'))
            || mailaudit_core::dns::check_name(&host).is_err())
    {
        return bad("invalid host name");
    }
    let tail = tail.split('#').next().unwrap_or("");
    let target = match tail.as_bytes().first() {
        None => "/".to_string(),
        Some(b'?') => format!("/{tail}"),
        Some(_) => tail.to_string(),
    };
    Ok(Url {
        tls,
        host,
        port,
        target,
    })
}

/// Header fields the client sets itself.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// The request: `POST`, the JSON body with its length, `Connection: close`, the extra fields.
///
/// RFC 9112 §9.6: "A client that does not support persistent connections MUST send the "close"
/// connection option in every request message." RFC 9110 §5.5: "Field values containing CR,
/// LF, or NUL characters are invalid and dangerous".
fn webhook_request(
    url: &Url,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<u8>, NotifyError> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailaudit/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nAccept: */*\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n",
        url.target,
        url.authority(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(NotifyError::InvalidTarget(format!(
                "invalid header field name {name:?}"
            )));
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r))
        {
            return Err(NotifyError::InvalidTarget(format!(
                "the header field {name} is set by mailaudit and cannot be given"
            )));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(NotifyError::InvalidTarget(format!(
                "the value of the header field {name} holds control characters (CR, LF, NUL...)"
            )));
        }
        head.push_str(&format!("{name}: {}\r\n", value.trim_matches([' ', '\t'])));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    Ok(request)
}

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// POSTs `body` as JSON to the webhook and returns the 2xx status it answered.
///
/// RFC 9110 §15.3: "The 2xx (Successful) class of status code indicates that the client's
/// request was successfully received, understood, and accepted." §15.4: "The 3xx (Redirection)
/// class of status code indicates that further action needs to be taken by the user agent in
/// order to fulfill the request." A redirect is not followed (a POST to wherever a
/// compromised or misconfigured server points would hand it the alert): it is a permanent
/// [`NotifyError::Http`], as is every 4xx but 408 and 429; 5xx, 408, 429 and network failures
/// are retryable. Interim 1xx responses are skipped. The host is resolved through `dns`; an
/// `https` URL's certificate is verified against `opts.roots`. The whole attempt is bounded by
/// `opts.timeout`.
pub async fn post_webhook<D: DnsSource>(
    dns: &D,
    target: &WebhookTarget,
    body: &Value,
    opts: &NotifyOptions,
) -> Result<u16, NotifyError> {
    let url = parse_url(&target.url)?;
    let json = serde_json::to_vec(body)
        .map_err(|e| NotifyError::InvalidTarget(format!("the body cannot be serialized: {e}")))?;
    let request = webhook_request(&url, &target.headers, &json)?;
    let deadline = Instant::now() + opts.timeout;
    let addrs = addresses(dns, &url.host, deadline).await?;
    let tcp = connect(&url.host, &addrs, url.port, opts, deadline).await?;
    if url.tls {
        let tls = tls_handshake(tcp, &url.host, Some(b"http/1.1"), opts, deadline).await?;
        exchange(tls, &request, opts, deadline).await
    } else {
        exchange(tcp, &request, opts, deadline).await
    }
}

/// Writes `request` on `stream` by `deadline` (`limit` is the timeout named in the error), and
/// returns the connection, ready to read the response (the webhook and the OAuth 2.0 token
/// request share it).
pub(crate) async fn send_request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    limit: Duration,
    deadline: Instant,
) -> Result<HttpConn<S>, NotifyError> {
    match timeout_at(deadline, async {
        stream.write_all(request).await?;
        stream.flush().await
    })
    .await
    {
        Err(_) => Err(NotifyError::Timeout {
            stage: Stage::Request,
            limit,
        }),
        Ok(Err(e)) => Err(NotifyError::Io {
            stage: Stage::Request,
            reason: https::describe_io(&e),
        }),
        Ok(Ok(())) => Ok(HttpConn {
            stream,
            buf: Vec::new(),
            deadline,
            limit,
        }),
    }
}

/// Sends the request and reads the final response's status.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    request: &[u8],
    opts: &NotifyOptions,
    deadline: Instant,
) -> Result<u16, NotifyError> {
    let mut conn = send_request(stream, request, opts.timeout, deadline).await?;
    let head = conn.read_head().await?;
    if (200..300).contains(&head.status) {
        return Ok(head.status);
    }
    let body = conn.error_body(&head).await;
    Err(NotifyError::Http {
        status: head.status,
        reason: head.reason.clone(),
        location: if (300..400).contains(&head.status) {
            head.header("location").map(str::to_string)
        } else {
            None
        },
        retry_after: head.header("retry-after").and_then(retry_after),
        body,
    })
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3); an HTTP-date is ignored.
fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().map(Duration::from_secs)
}

/// Buffered reading of the response against the attempt's deadline.
pub(crate) struct HttpConn<S> {
    pub(crate) stream: S,
    pub(crate) buf: Vec<u8>,
    pub(crate) deadline: Instant,
    pub(crate) limit: Duration,
}

impl<S: AsyncRead + Unpin> HttpConn<S> {
    /// Reads more octets; `Ok(0)` at the end of the connection (a TLS close without
    /// close_notify included).
    async fn fill(&mut self, until: Instant) -> Result<usize, NotifyError> {
        let mut chunk = [0u8; 4096];
        match timeout_at(until, self.stream.read(&mut chunk)).await {
            Err(_) => Err(NotifyError::Timeout {
                stage: Stage::Response,
                limit: self.limit,
            }),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            Ok(Err(e)) => Err(NotifyError::Io {
                stage: Stage::Response,
                reason: https::describe_io(&e),
            }),
        }
    }

    /// The final response head, interim 1xx responses skipped; the buffer keeps what follows.
    pub(crate) async fn read_head(&mut self) -> Result<https::ResponseHead, NotifyError> {
        let mut interim = 0;
        loop {
            if let Some((head_len, body_start)) = https::find_head_end(&self.buf) {
                if head_len > MAX_HEADER {
                    return Err(too_large_head());
                }
                let head = https::parse_head(&self.buf[..head_len]).map_err(malformed)?;
                self.buf.drain(..body_start);
                if (100..200).contains(&head.status) && head.status != 101 {
                    interim += 1;
                    if interim > MAX_INTERIM {
                        return Err(NotifyError::Malformed(format!(
                            "more than {MAX_INTERIM} interim 1xx responses"
                        )));
                    }
                    continue;
                }
                return Ok(head);
            }
            if self.buf.len() > MAX_HEADER {
                return Err(too_large_head());
            }
            if self.fill(self.deadline).await? == 0 {
                return Err(if self.buf.is_empty() && interim == 0 {
                    NotifyError::Io {
                        stage: Stage::Response,
                        reason: "the server closed the connection without a response".into(),
                    }
                } else {
                    NotifyError::Malformed(
                        "the connection closed inside the response headers".into(),
                    )
                });
            }
        }
    }

    /// The start of an error response's body, best effort: what arrives within a short wait,
    /// decoded by its framing, control characters replaced, cut at [`ERROR_EXCERPT`].
    async fn error_body(&mut self, head: &https::ResponseHead) -> String {
        let framing = https::framing(head).unwrap_or(Framing::Close);
        let until = self.deadline.min(Instant::now() + ERROR_BODY_WAIT);
        loop {
            let enough = match framing {
                Framing::Length(n) => self.buf.len() as u64 >= n,
                _ => false,
            };
            if enough || self.buf.len() >= MAX_ERROR_BODY {
                break;
            }
            if !matches!(self.fill(until).await, Ok(n) if n > 0) {
                break;
            }
            if let Framing::Chunked = framing {
                let mut probe = ChunkedDecoder::default();
                let mut out = Vec::new();
                if probe.feed(&self.buf, &mut out, usize::MAX).unwrap_or(true) {
                    break;
                }
            }
        }
        let raw = match framing {
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                let mut out = Vec::new();
                let _ = decoder.feed(&self.buf, &mut out, usize::MAX);
                out
            }
            Framing::Length(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
                self.buf[..n].to_vec()
            }
            Framing::Close => self.buf.clone(),
        };
        clip(
            one_line(&String::from_utf8_lossy(&raw)).trim(),
            ERROR_EXCERPT,
        )
    }
}

impl<S: AsyncRead + Unpin> HttpConn<S> {
    /// The whole body of the response `head` by its framing, at most `max` octets (a larger
    /// one is [`NotifyError::Malformed`], saying so), within the deadline.
    pub(crate) async fn read_body(
        &mut self,
        head: &https::ResponseHead,
        max: usize,
    ) -> Result<Vec<u8>, NotifyError> {
        let too_large = || NotifyError::Malformed(format!("the body exceeds {max} octets"));
        match https::framing(head).map_err(malformed)? {
            Framing::Length(len) => {
                let len = usize::try_from(len).map_err(|_| too_large())?;
                if len > max {
                    return Err(too_large());
                }
                while self.buf.len() < len {
                    if self.fill(self.deadline).await? == 0 {
                        return Err(NotifyError::Malformed(format!(
                            "the connection closed after {} of {len} body octets",
                            self.buf.len()
                        )));
                    }
                }
                self.buf.truncate(len);
                Ok(std::mem::take(&mut self.buf))
            }
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                let mut body = Vec::new();
                loop {
                    let input = std::mem::take(&mut self.buf);
                    if decoder.feed(&input, &mut body, max).map_err(|e| match e {
                        FetchError::TooLarge { .. } => too_large(),
                        other => malformed(other),
                    })? {
                        return Ok(body);
                    }
                    if self.fill(self.deadline).await? == 0 {
                        return Err(NotifyError::Malformed(
                            "the connection closed before the last chunk".into(),
                        ));
                    }
                }
            }
            Framing::Close => loop {
                if self.buf.len() > max {
                    return Err(too_large());
                }
                if self.fill(self.deadline).await? == 0 {
                    return Ok(std::mem::take(&mut self.buf));
                }
            },
        }
    }
}

fn too_large_head() -> NotifyError {
    NotifyError::Malformed(format!(
        "the response headers exceed the limit of {MAX_HEADER} octets"
    ))
}

fn malformed(e: FetchError) -> NotifyError {
    match e {
        FetchError::Malformed(m) => NotifyError::Malformed(m),
        other => NotifyError::Malformed(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------------

/// An SMTP submission relay and the envelope of the alert emails.
#[derive(Clone, PartialEq, Eq)]
pub struct MailTarget {
    /// The relay's host name or IP address.
    pub relay: String,
    /// Its port: 587 for submission, 25 for a relay that takes mail from this host.
    pub port: u16,
    /// Whether to require STARTTLS (RFC 3207) before authenticating and sending; the relay's
    /// certificate must be valid for `relay`.
    pub starttls: bool,
    /// The user name for `AUTH PLAIN`, with `password`.
    pub username: Option<String>,
    /// The password for `AUTH PLAIN` (hidden by `Debug`).
    pub password: Option<String>,
    /// The sender: envelope `MAIL FROM` and the `From` field.
    pub from: String,
    /// The recipients: envelope `RCPT TO` and the `To` field.
    pub to: Vec<String>,
}

impl fmt::Debug for MailTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailTarget")
            .field("relay", &self.relay)
            .field("port", &self.port)
            .field("starttls", &self.starttls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// Checks an address for the envelope: `local@domain`, printable ASCII without spaces, angle
/// brackets or quotes, at most 254 octets (non-ASCII addresses would need SMTPUTF8).
fn check_address(role: &str, a: &str) -> Result<(), NotifyError> {
    let bad = |why: &str| {
        Err(NotifyError::InvalidTarget(format!(
            "invalid {role} address {a:?}: {why}"
        )))
    };
    if !a.is_ascii() {
        return bad("non-ASCII addresses need SMTPUTF8, which is not supported");
    }
    if a.len() > 254 {
        return bad("longer than 254 octets");
    }
    if a.bytes()
        .any(|b| !(0x21..0x7f).contains(&b) || b"<>\"(),;:\\[]".contains(&b))
    {
        return bad("spaces, control characters and <>\"(),;:\\[] are not allowed");
    }
    match a.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && mailaudit_core::dns::check_name(domain).is_ok() =>
        {
            Ok(())
        }
        _ => bad("expected local@domain"),
    }
}

/// Sends one plain-text email through the relay of `target`.
///
/// RFC 6409 §3.1 ("Message Submission for Mail") and RFC 5321 §3.3: `EHLO`, then, when
/// `target.starttls`, `STARTTLS` and a new `EHLO` (RFC 3207 §4.2: "The client MUST discard any
/// knowledge obtained from the server, such as the list of SMTP service extensions, which was
/// not obtained from the TLS negotiation itself"), then `AUTH PLAIN` when credentials are given
/// (RFC 4616 §2: "message = \[authzid\] UTF8NUL authcid UTF8NUL passwd"), `MAIL FROM`, one
/// `RCPT TO` per recipient, `DATA` with the message dot-stuffed (RFC 5321 §4.5.2: "Before
/// sending a line of mail text, the SMTP client checks the first character of the line. If it
/// is a period, one additional period is inserted at the beginning of the line."), `QUIT`.
///
/// All or nothing: a recipient refused ends the transaction before `DATA`, so a retry never
/// mails the others twice. A 4xx reply is a retryable [`NotifyError::Smtp`], a 5xx a permanent
/// one. Credentials are sent only over TLS, or to a relay on a loopback address. The relay's
/// certificate is verified against `opts.roots` for the name `target.relay`. The whole session
/// is bounded by `opts.timeout`.
pub async fn send_mail<D: DnsSource>(
    dns: &D,
    target: &MailTarget,
    subject: &str,
    body: &str,
    opts: &NotifyOptions,
) -> Result<(), NotifyError> {
    check_address("sender", &target.from)?;
    if target.to.is_empty() {
        return Err(NotifyError::InvalidTarget("no recipient".into()));
    }
    for to in &target.to {
        check_address("recipient", to)?;
    }
    let credentials = match (&target.username, &target.password) {
        (Some(u), Some(p)) => Some((u.as_str(), p.as_str())),
        (None, None) => None,
        _ => {
            return Err(NotifyError::InvalidTarget(
                "a user name and a password go together".into(),
            ));
        }
    };
    if let Some((u, p)) = credentials
        && (u.contains('\0') || p.contains('\0') || u.is_empty())
    {
        return Err(NotifyError::InvalidTarget(
            "the user name must be non-empty and neither may contain NUL".into(),
        ));
    }
    let relay = target.relay.trim();
    let relay = relay
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(relay);
    let host = match relay.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => {
            let h = normalize_name(relay);
            if mailaudit_core::dns::check_name(&h).is_err() {
                return Err(NotifyError::InvalidTarget(format!(
                    "invalid relay host {relay:?}"
                )));
            }
            h
        }
    };
    let message = build_message(target, subject, body, SystemTime::now());
    let deadline = Instant::now() + opts.timeout;
    let addrs = addresses(dns, &host, deadline).await?;
    let tcp = connect(&host, &addrs, target.port, opts, deadline).await?;
    let local = tcp.local_addr().ok();
    let loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    let helo = match &opts.helo_name {
        Some(n) => n.clone(),
        None => match local.map(|a| a.ip()) {
            Some(IpAddr::V4(ip)) => format!("[{ip}]"),
            Some(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
            None => "[127.0.0.1]".to_string(),
        },
    };
    let mut s = Smtp::new(tcp, deadline, opts.timeout);
    s.expect(Stage::Greeting, None, |c| c == 220).await?;
    let mut ehlo = s
        .ehlo(&helo, !target.starttls && credentials.is_none())
        .await?;
    let mut s: Smtp<Box<dyn Io>> = if target.starttls {
        if !ehlo.has("STARTTLS") {
            return Err(NotifyError::Unsupported {
                relay: host,
                extension: "STARTTLS".into(),
            });
        }
        s.expect(Stage::StartTls, Some("STARTTLS"), |c| c == 220)
            .await?;
        let tcp = s.into_inner(Stage::StartTls)?;
        let tls = tls_handshake(tcp, &host, None, opts, deadline).await?;
        let mut s = Smtp::new(Box::new(tls) as Box<dyn Io>, deadline, opts.timeout);
        ehlo = s.ehlo(&helo, false).await?;
        s
    } else {
        let tcp = s.into_inner(Stage::Ehlo)?;
        Smtp::new(Box::new(tcp) as Box<dyn Io>, deadline, opts.timeout)
    };
    if let Some((user, password)) = credentials {
        if !target.starttls && !loopback {
            return Err(NotifyError::InvalidTarget(format!(
                "refusing to send the password to {host} over an unencrypted connection: \
                 enable STARTTLS"
            )));
        }
        if !ehlo.auth_plain() {
            return Err(NotifyError::Unsupported {
                relay: host,
                extension: "AUTH PLAIN".into(),
            });
        }
        s.auth_plain(user, password).await?;
    }
    let result = s.transaction(target, &message).await;
    s.quit().await;
    result
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What the `EHLO` reply announced.
#[derive(Debug, Default)]
struct Ehlo {
    /// Each extension line: the keyword upper-cased, then its parameters.
    lines: Vec<Vec<String>>,
}

impl Ehlo {
    fn from_reply(reply: &Reply) -> Self {
        Ehlo {
            lines: reply
                .lines
                .iter()
                .skip(1)
                .map(|l| {
                    l.split_whitespace()
                        .map(str::to_ascii_uppercase)
                        .collect::<Vec<_>>()
                })
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    fn has(&self, keyword: &str) -> bool {
        self.lines.iter().any(|l| l[0] == keyword)
    }

    /// RFC 4954 §3: "AUTH mechanism [initial-response]"; the EHLO keyword lists the
    /// mechanisms: `250-AUTH LOGIN PLAIN`.
    fn auth_plain(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l[0] == "AUTH" && l[1..].iter().any(|m| m == "PLAIN"))
    }
}

/// An SMTP client connection: bounded line reads, the core's reply parser, one deadline.
struct Smtp<S> {
    io: BufReader<S>,
    parser: ReplyParser,
    deadline: Instant,
    limit: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    fn new(stream: S, deadline: Instant, limit: Duration) -> Self {
        Smtp {
            io: BufReader::new(stream),
            parser: ReplyParser::new(),
            deadline,
            limit,
        }
    }

    fn timed_out(&self, stage: Stage) -> NotifyError {
        NotifyError::Timeout {
            stage,
            limit: self.limit,
        }
    }

    /// The stream back, for STARTTLS. Octets the server sent ahead of the TLS handshake would
    /// be taken as protected: RFC 3207 §4.2 makes the client discard them, so they are refused.
    fn into_inner(self, stage: Stage) -> Result<S, NotifyError> {
        if !self.io.buffer().is_empty() {
            return Err(NotifyError::SmtpProtocol {
                stage,
                reason: "the server sent data ahead of its reply".into(),
            });
        }
        Ok(self.io.into_inner())
    }

    /// One reply line without its CRLF, at most the parser's line cap.
    async fn read_line(&mut self, stage: Stage) -> Result<String, NotifyError> {
        let max = self.parser.max_line() + 2;
        let mut line = Vec::new();
        loop {
            let buf = match timeout_at(self.deadline, self.io.fill_buf()).await {
                Err(_) => return Err(self.timed_out(stage)),
                Ok(Err(e)) => {
                    return Err(NotifyError::Io {
                        stage,
                        reason: https::describe_io(&e),
                    });
                }
                Ok(Ok(b)) => b,
            };
            if buf.is_empty() {
                return Err(NotifyError::Io {
                    stage,
                    reason: "the server closed the connection".into(),
                });
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..take]);
            self.io.consume(take);
            if line.len() > max {
                return Err(NotifyError::SmtpProtocol {
                    stage,
                    reason: format!("a reply line longer than {} octets", max - 2),
                });
            }
            if done {
                break;
            }
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    async fn read_reply(&mut self, stage: Stage) -> Result<Reply, NotifyError> {
        loop {
            let line = self.read_line(stage).await?;
            match self.parser.feed(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => {
                    return Err(NotifyError::SmtpProtocol {
                        stage,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    async fn write(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), NotifyError> {
        let stream = self.io.get_mut();
        match timeout_at(self.deadline, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        {
            Err(_) => Err(self.timed_out(stage)),
            Ok(Err(e)) => Err(NotifyError::Io {
                stage,
                reason: https::describe_io(&e),
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends `command` (if any) and reads the reply; a reply whose code `ok` refuses is a
    /// [`NotifyError::Smtp`].
    async fn expect(
        &mut self,
        stage: Stage,
        command: Option<&str>,
        ok: impl Fn(u16) -> bool,
    ) -> Result<Reply, NotifyError> {
        if let Some(c) = command {
            self.write(stage, format!("{c}\r\n").as_bytes()).await?;
        }
        let reply = self.read_reply(stage).await?;
        if ok(reply.code) {
            Ok(reply)
        } else {
            Err(refused(stage, &reply))
        }
    }

    /// `EHLO`, or `HELO` when `EHLO` is refused with 5xx and `helo_ok` (no extension needed).
    ///
    /// RFC 5321 §4.1.4: "a client SHOULD start an SMTP session by issuing the EHLO command. [...]
    /// If the EHLO command is not acceptable to the SMTP server, 501, 500, 502, or 550 failure
    /// replies MUST be returned as appropriate." §3.2: "Older client SMTP systems MAY [...] use
    /// HELO".
    async fn ehlo(&mut self, name: &str, helo_ok: bool) -> Result<Ehlo, NotifyError> {
        self.write(Stage::Ehlo, format!("EHLO {name}\r\n").as_bytes())
            .await?;
        let reply = self.read_reply(Stage::Ehlo).await?;
        if reply.code == 250 {
            return Ok(Ehlo::from_reply(&reply));
        }
        if helo_ok && matches!(reply.code, 500 | 501 | 502 | 550) {
            self.expect(Stage::Ehlo, Some(&format!("HELO {name}")), |c| c == 250)
                .await?;
            return Ok(Ehlo::default());
        }
        Err(refused(Stage::Ehlo, &reply))
    }

    /// `AUTH PLAIN` with the initial response (RFC 4954 §4); a server that asks for it with an
    /// empty `334` challenge gets it then.
    async fn auth_plain(&mut self, user: &str, password: &str) -> Result<(), NotifyError> {
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        self.write(Stage::Auth, format!("AUTH PLAIN {token}\r\n").as_bytes())
            .await?;
        let mut reply = self.read_reply(Stage::Auth).await?;
        if reply.code == 334 {
            self.write(Stage::Auth, format!("{token}\r\n").as_bytes())
                .await?;
            reply = self.read_reply(Stage::Auth).await?;
        }
        if reply.code == 235 {
            Ok(())
        } else {
            Err(refused(Stage::Auth, &reply))
        }
    }

    /// `MAIL FROM`, every `RCPT TO`, `DATA`, the message.
    async fn transaction(
        &mut self,
        target: &MailTarget,
        message: &[u8],
    ) -> Result<(), NotifyError> {
        let positive = |c: u16| (200..300).contains(&c);
        self.expect(
            Stage::MailFrom,
            Some(&format!("MAIL FROM:<{}>", target.from)),
            positive,
        )
        .await?;
        for to in &target.to {
            self.expect(Stage::RcptTo, Some(&format!("RCPT TO:<{to}>")), positive)
                .await?;
        }
        self.expect(Stage::Data, Some("DATA"), |c| c == 354).await?;
        self.write(Stage::Message, message).await?;
        self.expect(Stage::Message, None, positive).await?;
        Ok(())
    }

    /// `QUIT`, its reply waited for briefly; failures ignored (the outcome is already known).
    async fn quit(&mut self) {
        let _ = timeout(QUIT_WAIT, async {
            if self.write(Stage::Message, b"QUIT\r\n").await.is_ok() {
                let _ = self.read_reply(Stage::Message).await;
            }
        })
        .await;
    }
}

fn refused(stage: Stage, reply: &Reply) -> NotifyError {
    let text = reply.full_text();
    let text = clip(&one_line(&text), 500);
    NotifyError::Smtp {
        stage,
        code: reply.code,
        reply: if text.is_empty() {
            reply.code.to_string()
        } else {
            format!("{} {text}", reply.code)
        },
    }
}

/// The message as sent after `DATA`: header fields, the body, dot-stuffed, CRLF line ends, the
/// terminating `.` line.
///
/// RFC 5322 §3.6: "The only required header fields are the origination date field and the
/// originator address field(s)"; §3.6.4: "Every message SHOULD have a "Message-ID:" field."
/// RFC 2045 §4, §5: `MIME-Version: 1.0` and `Content-Type: text/plain; charset=utf-8`; a body
/// that is not 7-bit text with lines of at most 998 octets is sent base64-encoded (RFC 2045
/// §6.8), so no 8BITMIME support is needed. RFC 3834 §5: `Auto-Submitted: auto-generated` keeps
/// vacation responders from answering.
fn build_message(target: &MailTarget, subject: &str, body: &str, now: SystemTime) -> Vec<u8> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let domain = target.from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let mut m = String::new();
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(secs)));
    m.push_str(&format!("From: <{}>\r\n", target.from));
    let to: Vec<String> = target.to.iter().map(|a| format!("<{a}>")).collect();
    m.push_str(&format!("To: {}\r\n", to.join(",\r\n ")));
    m.push_str(&format!("Subject: {}\r\n", encode_subject(subject)));
    m.push_str(&format!("Message-ID: <{}@{domain}>\r\n", unique_id(now)));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Auto-Submitted: auto-generated\r\n");
    let lines: Vec<&str> = split_lines(body);
    let seven_bit = body.is_ascii() && !body.contains('\0') && lines.iter().all(|l| l.len() <= 998);
    let mut out = Vec::new();
    if seven_bit {
        m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        out.extend_from_slice(m.as_bytes());
        for line in lines {
            if line.starts_with('.') {
                out.push(b'.');
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    } else {
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        out.extend_from_slice(m.as_bytes());
        let text = lines.join("\r\n") + "\r\n";
        let encoded = base64(text.as_bytes());
        for chunk in encoded.as_bytes().chunks(76) {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The body's lines: split at CRLF, CR or LF; no empty last line for a final line break.
fn split_lines(body: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        match rest.find(['\r', '\n']) {
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// The `Subject` field value: as is when it is printable ASCII (no `=?`), else RFC 2047
/// encoded words, folded.
///
/// RFC 2047 §2: "encoded-word = "=?" charset "?" encoding "?" encoded-text "?="" and "An
/// 'encoded-word' may not be more than 75 characters long, including 'charset', 'encoding',
/// 'encoded-text', and delimiters. If it is desirable to encode more text than will fit in an
/// 'encoded-word' of 75 characters, multiple 'encoded-word's (separated by CRLF SPACE) may be
/// used." §5: each word must hold whole characters ("Each 'encoded-word' MUST represent an
/// integral number of characters").
fn encode_subject(subject: &str) -> String {
    let subject = one_line(subject);
    let plain = subject.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !subject.contains("=?")
        && subject.len() <= 900;
    if plain {
        return subject;
    }
    // 45 octets encode to 60 base64 characters: `=?UTF-8?B?` + 60 + `?=` = 72 <= 75.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in subject.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// Base64 (RFC 4648 §4), with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A Message-ID left part unique to this process and moment: time, process, a counter and
/// per-process random state.
fn unique_id(now: SystemTime) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u128(d.as_nanos());
    format!(
        "{}.{:x}.{:x}.{:016x}.mailaudit",
        d.as_secs(),
        std::process::id(),
        n,
        h.finish()
    )
}

/// RFC 5322 §3.3 date-time in UTC: `Mon, 01 Jan 2024 00:00:00 +0000`.
fn rfc5322_date(t: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let mon = MONTHS[(month as usize).clamp(1, 12) - 1];
    format!(
        "{weekday}, {day:02} {mon} {year:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailaudit_core::checks::CheckId;

    #[test]
    fn rfc9110_section_4_2_webhook_urls() {
        for (url, expected) in [
            (
                "https://hooks.slack.com/services/T0/B0/XYZ",
                Some((true, "hooks.slack.com", 443, "/services/T0/B0/XYZ")),
            ),
            (
                "HTTP://Example.COM:8080",
                Some((false, "example.com", 8080, "/")),
            ),
            (
                "http://127.0.0.1:9/a?b=c#frag",
                Some((false, "127.0.0.1", 9, "/a?b=c")),
            ),
            ("https://[::1]:8443/x", Some((true, "::1", 8443, "/x"))),
            ("https://x.test?q=1", Some((true, "x.test", 443, "/?q=1"))),
            ("https://x.test.:443/", Some((true, "x.test", 443, "/"))),
            ("ftp://x.test/", None),
            ("https://user:pw@x.test/", None),
            ("https://x.test:0/", None),
            ("https://x.test:99999/", None),
            ("https://x.test:+1/", None),
            ("https:///path", None),
            ("https://x test/", None),
            ("https://x.test/é", None),
            ("https://[::1/", None),
            ("https://[zz]/", None),
            ("https://a..b/", None),
            ("x.test/hook", None),
            ("", None),
        ] {
            let got = parse_url(url).ok();
            let got = got
                .as_ref()
                .map(|u| (u.tls, u.host.as_str(), u.port, u.target.as_str()));
            assert_eq!(got, expected, "{url}");
        }
        let err = parse_url("https://user:secret@x.test/hook/SECRET").unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn authority_has_the_port_only_when_not_default() {
        for (url, host) in [
            ("https://x.test/", "x.test"),
            ("https://x.test:8443/", "x.test:8443"),
            ("http://x.test:80/", "x.test"),
            ("http://x.test:443/", "x.test:443"),
            ("http://[::1]:81/", "[::1]:81"),
        ] {
            assert_eq!(parse_url(url).unwrap().authority(), host, "{url}");
        }
    }

    #[test]
    fn request_carries_json_length_and_close() {
        let url = parse_url("https://x.test:8443/hook?a=1").unwrap();
        let r = webhook_request(
            &url,
            &[("Authorization".into(), "Bearer t".into())],
            b"{\"text\":\"hi\"}",
        )
        .unwrap();
        let r = String::from_utf8(r).unwrap();
        assert!(
            r.starts_with("POST /hook?a=1 HTTP/1.1\r\nHost: x.test:8443\r\n"),
            "{r}"
        );
        for needle in [
            "\r\nContent-Type: application/json\r\n",
            "\r\nContent-Length: 13\r\n",
            "\r\nConnection: close\r\n",
            "\r\nAuthorization: Bearer t\r\n",
        ] {
            assert!(r.contains(needle), "{needle:?} in {r}");
        }
        assert!(r.ends_with("\r\n\r\n{\"text\":\"hi\"}"));
        for (name, value) in [
            ("X-Evil", "a\r\nHost: other"),
            ("X-Nul", "a\0b"),
            ("Bad Name", "v"),
            ("", "v"),
            ("content-length", "1"),
            ("Host", "other"),
            ("Connection", "keep-alive"),
        ] {
            assert!(
                matches!(
                    webhook_request(&url, &[(name.into(), value.into())], b"{}"),
                    Err(NotifyError::InvalidTarget(_))
                ),
                "{name:?}: {value:?}"
            );
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let w = WebhookTarget {
            url: "https://hooks.slack.com/services/T0/B0/SECRET".into(),
            headers: vec![("Authorization".into(), "Bearer TOKEN".into())],
        };
        let d = format!("{w:?}");
        assert!(d.contains("https://hooks.slack.com/<redacted>"), "{d}");
        assert!(!d.contains("SECRET") && !d.contains("TOKEN"), "{d}");
        let m = MailTarget {
            relay: "smtp.test".into(),
            port: 587,
            starttls: true,
            username: Some("alerts".into()),
            password: Some("hunter2".into()),
            from: "a@x.test".into(),
            to: vec!["b@x.test".into()],
        };
        let d = format!("{m:?}");
        assert!(!d.contains("hunter2") && d.contains("<redacted>"), "{d}");
    }

    #[test]
    fn retryable_classification() {
        let http = |status| NotifyError::Http {
            status,
            reason: String::new(),
            location: None,
            retry_after: None,
            body: String::new(),
        };
        let smtp = |code| NotifyError::Smtp {
            stage: Stage::RcptTo,
            code,
            reply: String::new(),
        };
        for (err, retryable) in [
            (http(500), true),
            (http(502), true),
            (http(503), true),
            (http(408), true),
            (http(429), true),
            (http(400), false),
            (http(401), false),
            (http(403), false),
            (http(404), false),
            (http(410), false),
            (http(301), false),
            (http(302), false),
            (smtp(421), true),
            (smtp(451), true),
            (smtp(550), false),
            (smtp(554), false),
            (NotifyError::InvalidUrl("x".into()), false),
            (NotifyError::InvalidTarget("x".into()), false),
            (
                NotifyError::Unsupported {
                    relay: "r".into(),
                    extension: "STARTTLS".into(),
                },
                false,
            ),
            (
                NotifyError::Timeout {
                    stage: Stage::Response,
                    limit: Duration::from_secs(1),
                },
                true,
            ),
            (
                NotifyError::Connect {
                    host: "h".into(),
                    attempts: vec![],
                },
                true,
            ),
            (
                NotifyError::Dns {
                    query: "A h".into(),
                    error: DnsError::ServFail,
                },
                true,
            ),
            (NotifyError::Malformed("x".into()), true),
        ] {
            assert_eq!(err.is_retryable(), retryable, "{err}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let b = Backoff::new(Duration::from_secs(10), Duration::from_secs(60), 6);
        let delays: Vec<Option<u64>> = (0..=7)
            .map(|n| b.next_delay(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [
                Some(10),
                Some(10),
                Some(20),
                Some(40),
                Some(60),
                Some(60),
                None,
                None
            ]
        );
        let huge = Backoff::new(Duration::from_secs(u64::MAX / 2), Duration::MAX, u32::MAX);
        assert_eq!(huge.next_delay(40), Some(Duration::MAX));
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::ZERO, 0).next_delay(0),
            None
        );
        let d = Backoff::default();
        assert_eq!(d.next_delay(1), Some(Duration::from_secs(60)));
        assert_eq!(d.next_delay(9), Some(Duration::from_secs(3600)));
        assert_eq!(d.next_delay(10), None);
    }

    #[test]
    fn retry_delay_honours_retry_after_and_permanence() {
        let b = Backoff::new(Duration::from_secs(10), Duration::from_secs(60), 5);
        let busy = |secs: Option<u64>| NotifyError::Http {
            status: 429,
            reason: "Too Many Requests".into(),
            location: None,
            retry_after: secs.map(Duration::from_secs),
            body: String::new(),
        };
        assert_eq!(b.retry_delay(1, &busy(None)), Some(Duration::from_secs(10)));
        assert_eq!(
            b.retry_delay(1, &busy(Some(30))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            b.retry_delay(1, &busy(Some(3600))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            b.retry_delay(3, &busy(Some(1))),
            Some(Duration::from_secs(40))
        );
        assert_eq!(b.retry_delay(5, &busy(None)), None);
        assert_eq!(b.retry_delay(1, &NotifyError::InvalidUrl("x".into())), None);
        for (value, expected) in [
            ("120", Some(120)),
            (" 5 ", Some(5)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
            ("-1", None),
            ("", None),
            ("9999999999", None),
        ] {
            assert_eq!(
                retry_after(value).map(|d| d.as_secs()),
                expected,
                "{value:?}"
            );
        }
    }

    #[test]
    fn base64_rfc4648_section_10_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        // RFC 4616 §4's example: authcid "tim", password "tanstaaftanstaaf".
        assert_eq!(
            base64(b"\0tim\0tanstaaftanstaaf"),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
    }

    #[test]
    fn rfc5322_dates() {
        for (t, expected) in [
            (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_704_067_199, "Sun, 31 Dec 2023 23:59:59 +0000"),
            (1_709_210_096, "Thu, 29 Feb 2024 12:34:56 +0000"),
            (-1, "Wed, 31 Dec 1969 23:59:59 +0000"),
        ] {
            assert_eq!(rfc5322_date(t), expected, "{t}");
        }
    }

    /// Decodes the encoded words of a subject (test helper).
    fn decode_subject(s: &str) -> String {
        let mut out = Vec::new();
        for word in s.split("\r\n ") {
            let b64 = word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .expect("an encoded word");
            assert!(word.len() <= 75, "{word}");
            let mut bits = 0u32;
            let mut n = 0;
            for c in b64.bytes().filter(|&c| c != b'=') {
                let v = match c {
                    b'A'..=b'Z' => c - b'A',
                    b'a'..=b'z' => c - b'a' + 26,
                    b'0'..=b'9' => c - b'0' + 52,
                    b'+' => 62,
                    _ => 63,
                };
                bits = (bits << 6) | u32::from(v);
                n += 6;
                if n >= 8 {
                    n -= 8;
                    out.push((bits >> n) as u8);
                }
            }
            // Each word decodes to whole characters on its own (RFC 2047 §5).
            assert!(std::str::from_utf8(&out).is_ok(), "{word}");
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc2047_subjects() {
        assert_eq!(
            encode_subject("mailaudit: 2 regressions"),
            "mailaudit: 2 regressions"
        );
        assert_eq!(encode_subject("a\r\nBcc: x@y"), "a  Bcc: x@y");
        for s in [
            "mailaudit: 1 regression on contoso.com (score 85 → 60)",
            "Régression sur exemple.fr",
            &"日本語のドメイン".repeat(10),
            "=?looks encoded?=",
            &"é".repeat(200),
        ] {
            let e = encode_subject(s);
            assert!(e.is_ascii(), "{e}");
            assert_eq!(decode_subject(&e), s);
        }
    }

    #[test]
    fn message_headers_and_dot_stuffing() {
        let target = MailTarget {
            relay: "smtp.test".into(),
            port: 25,
            starttls: false,
            username: None,
            password: None,
            from: "alerts@msp.test".into(),
            to: vec!["a@x.test".into(), "b@x.test".into()],
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        let m = build_message(&target, "Hi", ".leading dot\n..two\nplain\r\nend", now);
        let m = String::from_utf8(m).unwrap();
        let (head, body) = m.split_once("\r\n\r\n").unwrap();
        for needle in [
            "Date: Thu, 29 Feb 2024 12:34:56 +0000",
            "From: <alerts@msp.test>",
            "To: <a@x.test>,\r\n <b@x.test>",
            "Subject: Hi",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
            "Auto-Submitted: auto-generated",
        ] {
            assert!(head.contains(needle), "{needle:?} in {head}");
        }
        assert!(head.contains("Message-ID: <") && head.contains("@msp.test>"));
        assert_eq!(body, "..leading dot\r\n...two\r\nplain\r\nend\r\n.\r\n");
        let other = build_message(&target, "Hi", "x", now);
        assert_ne!(
            m.lines().find(|l| l.starts_with("Message-ID")),
            String::from_utf8(other)
                .unwrap()
                .lines()
                .find(|l| l.starts_with("Message-ID"))
        );
        let utf8 = String::from_utf8(build_message(&target, "é", "café\n.x", now)).unwrap();
        assert!(
            utf8.contains("Content-Transfer-Encoding: base64\r\n\r\nY2Fmw6kNCi54DQo=\r\n.\r\n"),
            "{utf8}"
        );
        assert!(utf8.contains("Subject: =?UTF-8?B?w6k=?=\r\n"), "{utf8}");
        let long = "a".repeat(1200);
        let long = String::from_utf8(build_message(&target, "x", &long, now)).unwrap();
        assert!(long.contains("Content-Transfer-Encoding: base64"));
        assert!(long.lines().all(|l| l.len() <= 998));
    }

    #[test]
    fn addresses_are_checked() {
        for (a, ok) in [
            ("alerts@msp.test", true),
            ("a.b+c@x.test", true),
            ("a@b@x.test", true),
            ("", false),
            ("nobody", false),
            ("@x.test", false),
            ("a@", false),
            ("a@x..test", false),
            ("a b@x.test", false),
            ("a@x.test>\r\nRCPT TO:<evil@x.test", false),
            ("a<b@x.test", false),
            ("jörg@x.test", false),
        ] {
            assert_eq!(check_address("sender", a).is_ok(), ok, "{a:?}");
        }
    }

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
    fn ehlo_keywords() {
        let reply = mailaudit_core::smtp::parse_reply(
            "250-mx.test Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-auth login plain\r\n250 8BITMIME\r\n",
        )
        .unwrap();
        let e = Ehlo::from_reply(&reply);
        assert!(e.has("STARTTLS") && e.has("8BITMIME") && !e.has("SMTPUTF8"));
        assert!(e.auth_plain());
        let reply = mailaudit_core::smtp::parse_reply("250-mx.test\r\n250 AUTH LOGIN\r\n").unwrap();
        assert!(!Ehlo::from_reply(&reply).auth_plain());
    }

    #[test]
    fn helpers_never_panic_on_odd_text() {
        for s in ["", "é", "\u{0}\u{7f}", "a\u{200b}b", &"🦀".repeat(100)] {
            let _ = clip(s, 0);
            let _ = clip(s, 3);
            let _ = encode_subject(s);
            let _ = split_lines(s);
            let _ = redact_url(s);
            let _ = parse_url(s);
            let _ = retry_after(s);
        }
        assert_eq!(split_lines("a\r\nb\rc\n\nd\n"), ["a", "b", "c", "", "d"]);
        assert_eq!(clip("héllo", 2), "hé…");
    }
}
