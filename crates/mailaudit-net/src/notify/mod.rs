//! Alert delivery for regressions found by scheduled re-audits: a JSON webhook POST over
//! HTTP or HTTPS ([`post_webhook`]), an email through an SMTP submission relay ([`send_mail`]),
//! and the retry policy around both ([`Backoff`], [`deliver_with_retry`]).
//!
//! What is sent is the core's ([`mailaudit_core::alerts`]): [`alert_payload`] builds the JSON
//! body once, when a regression is found; the scheduler keeps it in the store's alert outbox and
//! hands it to [`deliver`] on every attempt, for either channel: a webhook receives it as is, an
//! email is written from it by [`mail_content`].
//!
//! Connections go through [`crate::transport`]: host names resolved through the run's
//! [`DnsSource`] (`--nameserver`, or the system's configuration), IP literals used as they
//! are, certificates verified against [`TlsRoots`] (web PKI plus `--ca-file`) with rustls' web
//! PKI verifier (a certificate that does not validate ends the attempt). The webhook is POSTed
//! by the HTTP/1.1 client over hyper ([`post_webhook`]); the email's SMTP dialogue is decided
//! by the core's sans-IO [`Submission`](mailaudit_core::submission::Submission) and its MIME
//! message written by `mail-builder` ([`send_mail`]). One deadline bounds each whole attempt
//! ([`NotifyOptions::timeout`]), and each TCP connect is also bounded by
//! [`NotifyOptions::connect_timeout`].
//!
//! Every failure is a [`NotifyError`] that says whether another attempt may succeed
//! ([`NotifyError::is_retryable`]): network failures and timeouts ([`TransportError`]), HTTP
//! 5xx, 408 and 429, and SMTP 4xx replies are retryable; HTTP 4xx and 3xx (a redirect is never
//! followed), SMTP 5xx replies and invalid targets are permanent.
//!
//! Secrets stay out of logs: the `Debug` output of [`WebhookTarget`] hides the URL's path and
//! query (a Slack or Teams webhook URL is itself the credential) and the header values, that of
//! [`MailTarget`] the password; errors name the host, never the path or the credentials, and
//! what a server answered is quoted with them redacted ([`deliver`], [`AlertTarget::redact`]).

use std::future::Future;
use std::time::Duration;

use mailaudit_core::dns::DnsSource;
use serde_json::Value;

use crate::smtp::TlsRoots;
pub use crate::transport::{DEFAULT_CONNECT_TIMEOUT, Stage, TransportError};
pub use mailaudit_core::alerts::{MailContent, PAYLOAD_VERSION, alert_payload, mail_content};

mod mail;
mod webhook;

pub use mail::{MailTarget, send_mail};
pub use webhook::{WebhookTarget, post_webhook};

/// The default limit of one whole delivery attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The server could not be reached or the connection failed: DNS, TCP, TLS, a timeout, a
    /// malformed HTTP response (retryable).
    #[error(transparent)]
    Transport(#[from] TransportError),
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
            NotifyError::Transport(e) => e.is_retryable(),
            NotifyError::SmtpProtocol { .. } => true,
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

impl NotifyError {
    /// This error with `target`'s secrets ([`AlertTarget::redact`]) taken out of what the
    /// other side sent (a response's reason, `Location` and body, a mail server's reply): a
    /// webhook answering 404 may quote the path it was posted to, which is the credential.
    /// The variant, and so whether another attempt may succeed, stays.
    pub fn redacted(self, target: &AlertTarget) -> NotifyError {
        let r = |s: String| target.redact(&s);
        match self {
            NotifyError::Http {
                status,
                reason,
                location,
                retry_after,
                body,
            } => NotifyError::Http {
                status,
                reason: r(reason),
                location: location.map(r),
                retry_after,
                body: r(body),
            },
            NotifyError::Smtp { stage, code, reply } => NotifyError::Smtp {
                stage,
                code,
                reply: r(reply),
            },
            NotifyError::SmtpProtocol { stage, reason } => NotifyError::SmtpProtocol {
                stage,
                reason: r(reason),
            },
            e => e,
        }
    }
}

impl AlertTarget {
    /// `text` (an error message, say a webhook's error response quoting the path it was
    /// posted to) with this target's secrets replaced by `<redacted>`: a webhook URL's path and
    /// query (where Teams, Slack and most services put the credential) and its header values,
    /// a relay's password. What is stored or shown of a failed delivery goes through this.
    pub fn redact(&self, text: &str) -> String {
        const MARK: &str = "<redacted>";
        let mut secrets: Vec<String> = Vec::new();
        match self {
            AlertTarget::Webhook(w) => {
                // The request target the webhook is posted to, as the server sees it.
                if let Ok(url) = crate::http::HttpUrl::parse(&w.url) {
                    let secret = url.target.trim_start_matches('/');
                    if !secret.is_empty() {
                        // The whole path and query, and each long part of it on its own (an
                        // error may quote only the key of `/webhookb2/…/IncomingWebhook/KEY/…`).
                        secrets.push(secret.to_string());
                        secrets.extend(
                            secret
                                .split(['/', '?', '&', '=', '#'])
                                .filter(|part| part.len() >= 8)
                                .map(str::to_string),
                        );
                    }
                }
                secrets.extend(w.headers.iter().map(|(_, v)| v.clone()));
            }
            AlertTarget::Mail(m) => secrets.extend(m.password.clone()),
        }
        // The longest first, so that a secret holding another is replaced whole.
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_string();
        for s in &secrets {
            out = out.replace(s.as_str(), MARK);
        }
        out
    }
}

/// Delivers the alert `payload` (made by [`alert_payload`], as kept in the outbox) to `target`
/// once: the JSON itself to a webhook, the email [`mail_content`] writes from it to a mail
/// target. An error comes without the target's secrets ([`NotifyError::redacted`]).
pub async fn deliver<D: DnsSource>(
    dns: &D,
    target: &AlertTarget,
    payload: &Value,
    opts: &NotifyOptions,
) -> Result<(), NotifyError> {
    let sent = match target {
        AlertTarget::Webhook(w) => post_webhook(dns, w, payload, opts).await.map(|_| ()),
        AlertTarget::Mail(m) => {
            let content = mail_content(payload);
            send_mail(dns, m, &content.subject, &content.body, opts).await
        }
    };
    sent.map_err(|e| e.redacted(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targets_secrets_are_redacted_from_error_text() {
        let hook = AlertTarget::Webhook(WebhookTarget {
            url: "https://example.webhook.office.com/webhookb2/0c1e@9a2f/IncomingWebhook/s3cr3tKey0123/77ab?sig=abcdef123456".into(),
            headers: vec![("Authorization".into(), "Bearer tok-ABCDEFGH".into())],
        });
        let echoed = "HTTP 404: no route for /webhookb2/0c1e@9a2f/IncomingWebhook/s3cr3tKey0123/77ab?sig=abcdef123456";
        let out = hook.redact(echoed);
        assert_eq!(out, "HTTP 404: no route for /<redacted>");
        // A part quoted alone, and a header value.
        let out = hook.redact("unknown key s3cr3tKey0123; auth Bearer tok-ABCDEFGH refused");
        assert!(
            !out.contains("s3cr3tKey0123") && !out.contains("tok-ABCDEFGH"),
            "{out}"
        );
        // What is not secret stays: the host, the status.
        assert_eq!(
            hook.redact("example.webhook.office.com: HTTP 500"),
            "example.webhook.office.com: HTTP 500"
        );
        let mail = AlertTarget::Mail(MailTarget {
            relay: "smtp.example".into(),
            port: 587,
            starttls: true,
            username: Some("alerts".into()),
            password: Some("hunter2-long".into()),
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
        });
        assert_eq!(
            mail.redact("535 5.7.8 bad credentials for alerts/hunter2-long"),
            "535 5.7.8 bad credentials for alerts/<redacted>"
        );
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
                TransportError::Timeout {
                    stage: Stage::Response,
                    limit: Duration::from_secs(1),
                }
                .into(),
                true,
            ),
            (
                TransportError::Connect {
                    host: "h".into(),
                    attempts: vec![],
                }
                .into(),
                true,
            ),
            (
                TransportError::Dns {
                    query: "A h".into(),
                    error: mailaudit_core::dns::DnsError::ServFail,
                }
                .into(),
                true,
            ),
            (TransportError::Malformed("x".into()).into(), true),
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
    }
}
