//! The verdict table and the probe state machine (sans-IO: it says what to send next given the
//! last reply; the socket loop lives in `mailaudit-net`).

use super::parse::Reply;
use super::{ProbeConfig, Stage, Verdict};

/// Phrases in a refusal that mean the probe's own address was refused for its reputation
/// (a DNS block list, a Microsoft banned-IP range), not the tenant's policy.
const REPUTATION_MARKERS: &[&str] = &[
    "spamhaus",
    "spamcop",
    "barracudacentral",
    "blocked using",
    "dnsbl",
    "blacklist",
    "blocklist",
    "block list",
    "banned sending ip",
    "ip reputation",
    "poor reputation",
    "not accepted from this ip",
];

/// Classifies one reply at one stage of the probe, per the Direct Send reply table in docs/m365.md:
///
/// | stage | reply | verdict |
/// |---|---|---|
/// | RCPT | `250 …` | open |
/// | MAIL or RCPT (stage unconfirmed; also possible after DATA) | `550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources` | blocked |
/// | MAIL or RCPT | other `5.7.x` policy rejections (not IP reputation) | blocked, text kept |
/// | RCPT | `550 5.4.1 Recipient address rejected: Access denied. AS(…)` (unknown recipient) | inconclusive |
/// | RCPT | `550 5.7.64 TenantAttribution; Relay Access Denied` (recipient not in tenant) | inconclusive |
/// | any | IP reputation: `5.7.1 … Spamhaus`, `5.7.606`, `5.7.708`, `451 4.7.500` | inconclusive |
/// | TCP | timeout or refusal on port 25 (many networks block it) | inconclusive |
///
/// Beyond the table, so that every reply has a verdict: a positive reply anywhere but RCPT
/// means "keep going" (`None`), and so does any reply to STARTTLS (a refused STARTTLS is a TLS
/// finding, not a relay verdict; the probe goes on in clear text) or QUIT. Every other refusal is
/// inconclusive: `421` (the server closes the session), any `4xx` (greylisting, rate limits),
/// a `5xx` that is not a `5.7.x` policy refusal (syntax, unknown sender), and `Relay access
/// denied` in a `5.7.1` (the recipient's domain is not hosted there, like `5.7.64`). IP
/// reputation refusals are recognised by Microsoft's codes `5.7.606`–`5.7.649` ("banned sending
/// IP") and `5.7.708`, by `4.7.500`–`4.7.699`, and by block-list phrases (Spamhaus, "blocked
/// using", …). Only `5.7.68` is taken as a block after DATA: the envelope was accepted by then.
pub fn classify(stage: Stage, reply: &Reply) -> Option<Verdict> {
    classify_with_reason(stage, reply).map(|(v, _)| v)
}

/// [`classify`] with a sentence saying which row of the table applied.
pub fn classify_with_reason(stage: Stage, reply: &Reply) -> Option<(Verdict, String)> {
    use Verdict::{Blocked, Inconclusive, Open};
    let text = reply.text();
    let full = reply.full_text().to_ascii_lowercase();
    let at = stage.label();
    let enhanced = reply.enhanced.as_deref().unwrap_or("");
    if matches!(stage, Stage::Quit) {
        return None;
    }
    if reply.code == 421 {
        return Some((
            Inconclusive,
            format!("the server closed the session at {at} ({text}); try again later"),
        ));
    }
    if is_reputation(enhanced, &full) {
        return Some((
            Inconclusive,
            format!(
                "the probe's own IP address was refused for its reputation at {at} ({text}); \
                 run the probe from another host"
            ),
        ));
    }
    if matches!(stage, Stage::StartTls) {
        return None;
    }
    let direct_send_block = enhanced == "5.7.68" || full.contains("tenantinboundattribution");
    if direct_send_block && !reply.is_positive() {
        return Some((Blocked, format!("Direct Send is rejected at {at}: {text}")));
    }
    if reply.class() == 3 {
        return match stage {
            Stage::Data => None,
            _ => Some((Inconclusive, format!("unexpected reply at {at} ({text})"))),
        };
    }
    if reply.is_positive() {
        return match stage {
            Stage::Rcpt => Some((
                Open,
                format!(
                    "the recipient was accepted ({text}) from an unauthenticated client with a \
                     sender in the domain: Direct Send spoofing is possible"
                ),
            )),
            _ => None,
        };
    }
    if reply.class() == 4 {
        return Some((
            Inconclusive,
            format!("temporary refusal at {at} ({text}), e.g. greylisting; try again later"),
        ));
    }
    // 5xx from here on.
    if matches!(stage, Stage::Rcpt) && enhanced == "5.4.1" {
        return Some((
            Inconclusive,
            format!("the recipient is unknown ({text}); use an existing mailbox of the domain"),
        ));
    }
    if matches!(stage, Stage::Rcpt)
        && (enhanced == "5.7.64"
            || full.contains("tenantattribution")
            || full.contains("relay access denied"))
    {
        return Some((
            Inconclusive,
            format!(
                "the recipient is not hosted by this server ({text}); use a mailbox of the \
                 domain and the domain's own endpoint"
            ),
        ));
    }
    if matches!(stage, Stage::Mail | Stage::Rcpt) && enhanced.starts_with("5.7.") {
        return Some((
            Blocked,
            format!("the spoofed envelope is refused by policy at {at}: {text}"),
        ));
    }
    Some((Inconclusive, format!("refused at {at} ({text})")))
}

fn is_reputation(enhanced: &str, full_lower: &str) -> bool {
    let detail = |prefix: &str| {
        enhanced
            .strip_prefix(prefix)
            .and_then(|d| d.parse::<u16>().ok())
    };
    if detail("5.7.").is_some_and(|d| (606..=649).contains(&d) || d == 708) {
        return true;
    }
    if detail("4.7.").is_some_and(|d| (500..=699).contains(&d)) {
        return true;
    }
    REPUTATION_MARKERS.iter().any(|m| full_lower.contains(m))
}

/// What the socket loop must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one command line (the loop appends CRLF), then read the next reply.
    Send(String),
    /// Start the TLS handshake, then call [`Probe::on_tls_established`].
    StartTls,
    /// Send the labelled test message (already dot-stuffed, ending `CRLF.CRLF`), then read the
    /// next reply.
    SendData(Vec<u8>),
    /// Close the connection: the verdict, the stage that decided it and why.
    Finish(Verdict, Stage, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Banner,
    Ehlo { after_tls: bool },
    Helo,
    StartTls,
    Tls,
    Mail,
    Rcpt,
    Data,
    DataBody,
    Rset,
    Quit,
    Done,
}

/// The Direct Send probe as a state machine: banner, EHLO, STARTTLS when offered, EHLO again,
/// `MAIL FROM`, `RCPT TO`, then `RSET` and `QUIT`. `DATA` only with
/// [`ProbeConfig::send_test_message`], and then once, with the labelled message of
/// [`test_message`]. A probe with `relay: false` stops after the second EHLO (TLS check only).
///
/// RFC 5321 §3.3: "There are three steps to SMTP mail transactions. The transaction starts with
/// a MAIL command that gives the sender identification. […] A series of one or more RCPT
/// commands follows, giving the receiver information. Then, a DATA command initiates transfer of
/// the mail data". §4.1.1.5: "RSET […] specifies that the current mail transaction will be
/// aborted. Any stored sender, recipients, and mail data MUST be discarded".
#[derive(Clone, Debug)]
pub struct Probe {
    cfg: ProbeConfig,
    state: State,
    stage: Stage,
    decided: Option<(Verdict, Stage, String)>,
    decisive_reply: Option<String>,
    last_reply: Option<String>,
    starttls_offered: Option<bool>,
    tls: bool,
    data_sent: bool,
    in_transaction: bool,
    date: Option<String>,
}

impl Probe {
    /// A probe that expects the server's banner next. Control characters in the configured
    /// names and addresses are removed, so no configuration can inject a command.
    pub fn new(cfg: ProbeConfig) -> Self {
        let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
        let bare = |s: &str| -> String {
            let s = clean(s);
            let t = s.trim();
            t.strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or(t)
                .to_string()
        };
        let cfg = ProbeConfig {
            helo: clean(&cfg.helo).trim().to_string(),
            mail_from: bare(&cfg.mail_from),
            rcpt_to: bare(&cfg.rcpt_to),
            operator: clean(&cfg.operator).trim().to_string(),
            ..cfg
        };
        Probe {
            cfg,
            state: State::Banner,
            stage: Stage::Banner,
            decided: None,
            decisive_reply: None,
            last_reply: None,
            starttls_offered: None,
            tls: false,
            data_sent: false,
            in_transaction: false,
            date: None,
        }
    }

    /// Sets the RFC 5322 `Date:` of the test message (the core has no clock).
    pub fn with_message_date(mut self, date: impl Into<String>) -> Self {
        self.date = Some(date.into());
        self
    }

    /// The configuration in use (after removing control characters).
    pub fn config(&self) -> &ProbeConfig {
        &self.cfg
    }

    /// The stage the probe is at (the last command sent, or the banner).
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Whether the first EHLO reply advertised STARTTLS (`None` before it was read).
    pub fn starttls_offered(&self) -> Option<bool> {
        self.starttls_offered
    }

    /// Whether the TLS handshake completed.
    pub fn tls_established(&self) -> bool {
        self.tls
    }

    /// Whether the test message was sent (only ever with `send_test_message`).
    pub fn data_sent(&self) -> bool {
        self.data_sent
    }

    /// The verdict once decided (it may be decided before RSET and QUIT are done).
    pub fn decided(&self) -> Option<&(Verdict, Stage, String)> {
        self.decided.as_ref()
    }

    fn send(&mut self, state: State, stage: Stage, cmd: String) -> Action {
        self.state = state;
        self.stage = stage;
        Action::Send(cmd)
    }

    fn ehlo(&mut self, after_tls: bool) -> Action {
        let cmd = format!("EHLO {}", self.cfg.helo);
        self.send(State::Ehlo { after_tls }, Stage::Ehlo, cmd)
    }

    fn mail_or_quit(&mut self) -> Action {
        if self.cfg.relay {
            let cmd = format!("MAIL FROM:<{}>", self.cfg.mail_from);
            self.send(State::Mail, Stage::Mail, cmd)
        } else {
            let reason = match (self.starttls_offered, self.tls) {
                (_, true) => "TLS check only (relay not tested): STARTTLS and TLS completed",
                (Some(true), false) => {
                    "TLS check only (relay not tested): STARTTLS was offered but refused"
                }
                _ => "TLS check only (relay not tested): STARTTLS is not offered",
            };
            self.decide(Verdict::Inconclusive, Stage::Ehlo, reason.to_string());
            self.quit()
        }
    }

    /// The reply that decided the verdict (`None` when an I/O failure decided it).
    pub fn decisive_reply(&self) -> Option<&str> {
        self.decisive_reply.as_deref()
    }

    fn decide(&mut self, v: Verdict, stage: Stage, reason: String) {
        if self.decided.is_none() {
            self.decided = Some((v, stage, reason));
            self.decisive_reply = self.last_reply.clone();
        }
    }

    /// RSET if a transaction is open, then QUIT.
    fn close(&mut self) -> Action {
        if self.in_transaction {
            self.in_transaction = false;
            let stage = self.stage;
            self.send(State::Rset, stage, "RSET".into())
        } else {
            self.quit()
        }
    }

    fn quit(&mut self) -> Action {
        let stage = self.stage;
        self.send(State::Quit, stage, "QUIT".into())
    }

    fn finish(&mut self) -> Action {
        self.state = State::Done;
        let (v, s, r) = self.decided.clone().unwrap_or_else(|| {
            (
                Verdict::Inconclusive,
                self.stage,
                format!(
                    "the session ended at {} without a verdict",
                    self.stage.label()
                ),
            )
        });
        Action::Finish(v, s, r)
    }

    /// The next step after a complete reply from the server.
    pub fn on_reply(&mut self, reply: &Reply) -> Action {
        let at = self.stage;
        self.last_reply = Some(reply.text());
        if reply.code == 421 || self.state == State::Done {
            if let Some((v, r)) = classify_with_reason(at, reply) {
                self.decide(v, at, r);
            }
            return self.finish();
        }
        match self.state {
            State::Banner => {
                if reply.code == 220 {
                    return self.ehlo(false);
                }
                self.refused(at, reply)
            }
            State::Ehlo { after_tls } => {
                if reply.is_positive() {
                    if !after_tls {
                        let offered = reply.lines.iter().skip(1).any(|l| {
                            l.split_ascii_whitespace()
                                .next()
                                .is_some_and(|w| w.eq_ignore_ascii_case("STARTTLS"))
                        });
                        self.starttls_offered = Some(offered);
                        if offered {
                            return self.send(State::StartTls, Stage::StartTls, "STARTTLS".into());
                        }
                    }
                    return self.mail_or_quit();
                }
                if !after_tls && matches!(reply.code, 500 | 502) {
                    // RFC 5321 §3.2: "the client SHOULD fall back to HELO" when EHLO is not
                    // recognised. HELO advertises no extensions, so no STARTTLS either.
                    self.starttls_offered = Some(false);
                    let cmd = format!("HELO {}", self.cfg.helo);
                    return self.send(State::Helo, Stage::Ehlo, cmd);
                }
                self.refused(at, reply)
            }
            State::Helo => {
                if reply.is_positive() {
                    return self.mail_or_quit();
                }
                self.refused(at, reply)
            }
            State::StartTls => {
                if reply.code == 220 {
                    self.state = State::Tls;
                    return Action::StartTls;
                }
                // RFC 3207 §4: after a 454 "the client [...] may continue" without TLS.
                self.mail_or_quit()
            }
            State::Tls => {
                // A reply where the handshake should be: the server did not start TLS.
                self.decide(
                    Verdict::Inconclusive,
                    Stage::StartTls,
                    format!(
                        "the server sent a reply instead of starting TLS: {}",
                        reply.text()
                    ),
                );
                self.finish()
            }
            State::Mail => {
                if reply.is_positive() {
                    self.in_transaction = true;
                    let cmd = format!("RCPT TO:<{}>", self.cfg.rcpt_to);
                    return self.send(State::Rcpt, Stage::Rcpt, cmd);
                }
                self.refused(at, reply)
            }
            State::Rcpt => {
                let Some((v, r)) = classify_with_reason(Stage::Rcpt, reply) else {
                    return self.refused(at, reply);
                };
                self.decide(v, Stage::Rcpt, r);
                if v == Verdict::Open && self.cfg.send_test_message && !self.data_sent {
                    return self.send(State::Data, Stage::Data, "DATA".into());
                }
                self.close()
            }
            State::Data => {
                if reply.code == 354 {
                    self.state = State::DataBody;
                    self.data_sent = true;
                    return Action::SendData(test_message(&self.cfg, self.date.as_deref()));
                }
                self.after_data(reply, "DATA")
            }
            State::DataBody => {
                if reply.is_positive() {
                    self.in_transaction = false;
                    self.amend_reason(&format!(
                        "; the labelled test message was accepted ({})",
                        reply.text()
                    ));
                    return self.quit();
                }
                self.after_data(reply, "the message")
            }
            State::Rset => self.quit(),
            State::Quit | State::Done => self.finish(),
        }
    }

    /// A refusal after DATA: only `5.7.68` turns the verdict into blocked (the envelope was
    /// accepted, so the spoofing is otherwise possible).
    fn after_data(&mut self, reply: &Reply, what: &str) -> Action {
        if let Some((Verdict::Blocked, r)) = classify_with_reason(Stage::Data, reply) {
            self.decided = Some((Verdict::Blocked, Stage::Data, r));
            self.decisive_reply = Some(reply.text());
        } else {
            self.amend_reason(&format!("; {what} was refused ({})", reply.text()));
        }
        self.close()
    }

    fn amend_reason(&mut self, extra: &str) {
        if let Some((_, _, r)) = self.decided.as_mut() {
            r.push_str(extra);
        }
    }

    fn refused(&mut self, at: Stage, reply: &Reply) -> Action {
        let (v, r) = classify_with_reason(at, reply).unwrap_or_else(|| {
            (
                Verdict::Inconclusive,
                format!("unexpected reply at {} ({})", at.label(), reply.text()),
            )
        });
        self.decide(v, at, r);
        self.close()
    }

    /// The next step after the TLS handshake completed: EHLO again (RFC 3207 §4.2: "The client
    /// SHOULD send an EHLO command as the first command after a successful TLS negotiation").
    pub fn on_tls_established(&mut self) -> Action {
        if self.state != State::Tls {
            self.decide(
                Verdict::Inconclusive,
                self.stage,
                "TLS was established out of sequence".into(),
            );
            return self.finish();
        }
        self.tls = true;
        self.ehlo(true)
    }

    /// Ends the probe after an I/O failure (timeout, reset, unparsable reply, failed TLS
    /// handshake): the verdict already decided if there is one (the failure came during RSET
    /// or QUIT), otherwise inconclusive at the current stage with `reason`. Always returns
    /// [`Action::Finish`].
    pub fn abort(&mut self, reason: impl Into<String>) -> Action {
        let stage = self.stage;
        self.last_reply = None;
        self.decide(Verdict::Inconclusive, stage, reason.into());
        self.finish()
    }
}

/// The labelled test message sent after `DATA` with `send_test_message`: headers saying it is a
/// security test and who ran it, dot-stuffed, ending with `CRLF.CRLF`.
///
/// RFC 5321 §4.5.2: "Before sending a line of mail text, the SMTP client checks the first
/// character of the line. If it is a period, one additional period is inserted at the beginning
/// of the line."
pub fn test_message(cfg: &ProbeConfig, date: Option<&str>) -> Vec<u8> {
    let operator = if cfg.operator.is_empty() {
        "an unnamed operator"
    } else {
        cfg.operator.as_str()
    };
    let mut lines = vec![
        format!("From: <{}>", cfg.mail_from),
        format!("To: <{}>", cfg.rcpt_to),
        "Subject: [mailaudit] Security test: Direct Send spoofing check (no action needed)"
            .to_string(),
    ];
    if let Some(d) = date {
        lines.push(format!("Date: {d}"));
    }
    lines.extend([
        format!(
            "X-Mailaudit-Test: security test of Microsoft 365 Direct Send (unauthenticated relay), \
             run by {operator}"
        ),
        "MIME-Version: 1.0".to_string(),
        "Content-Type: text/plain; charset=utf-8".to_string(),
        String::new(),
        "This is a security test sent by mailaudit, not a real message.".to_string(),
        String::new(),
        format!(
            "It was sent by {operator} to check whether this domain accepts unauthenticated mail"
        ),
        "that claims to come from the domain itself (Microsoft 365 Direct Send). Its arrival"
            .to_string(),
        "shows that such spoofed mail is delivered; see Set-OrganizationConfig -RejectDirectSend."
            .to_string(),
        "No action is needed from the recipient.".to_string(),
    ]);
    let mut out = Vec::new();
    for l in &lines {
        if l.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::parse::parse_reply;

    const DIRECT_SEND_BLOCK: &str = "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources";

    fn reply(s: &str) -> Reply {
        parse_reply(s).expect("test reply parses")
    }

    /// Every row of the docs/m365.md Direct Send table, and the rows added for totality.
    #[test]
    fn m365_direct_send_table() {
        use Stage::*;
        use Verdict::*;
        let cases: &[(Stage, &str, Option<Verdict>)] = &[
            // RCPT | 250 … | open
            (Rcpt, "250 2.1.5 Recipient OK", Some(Open)),
            (Rcpt, "251 2.1.5 User not local; will forward", Some(Open)),
            // MAIL or RCPT (also after DATA) | 550 5.7.68 … | blocked
            (Mail, DIRECT_SEND_BLOCK, Some(Blocked)),
            (Rcpt, DIRECT_SEND_BLOCK, Some(Blocked)),
            (Data, DIRECT_SEND_BLOCK, Some(Blocked)),
            // MAIL or RCPT | other 5.7.x policy rejections | blocked
            (
                Rcpt,
                "550 5.7.1 Sender rejected by anti-spoofing policy",
                Some(Blocked),
            ),
            (
                Mail,
                "553 5.7.26 Unauthenticated email from example.com is not accepted",
                Some(Blocked),
            ),
            (
                Rcpt,
                "550 5.7.51 TenantInboundAttribution; Rejecting",
                Some(Blocked),
            ),
            // RCPT | 550 5.4.1 … AS(…) | inconclusive
            (
                Rcpt,
                "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
                Some(Inconclusive),
            ),
            // RCPT | 550 5.7.64 TenantAttribution; Relay Access Denied | inconclusive
            (
                Rcpt,
                "550 5.7.64 TenantAttribution; Relay Access Denied",
                Some(Inconclusive),
            ),
            (
                Rcpt,
                "554 5.7.1 <a@b.example>: Relay access denied",
                Some(Inconclusive),
            ),
            // any | IP reputation | inconclusive
            (
                Banner,
                "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus",
                Some(Inconclusive),
            ),
            (
                Mail,
                "550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus.",
                Some(Inconclusive),
            ),
            (
                Rcpt,
                "550 5.7.1 Client host rejected: listed by zen.spamhaus.org",
                Some(Inconclusive),
            ),
            (
                Rcpt,
                "550 5.7.606 Access denied, banned sending IP [192.0.2.1]",
                Some(Inconclusive),
            ),
            (
                Mail,
                "550 5.7.649 Access denied, banned sending IP [192.0.2.1]",
                Some(Inconclusive),
            ),
            (
                Rcpt,
                "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP",
                Some(Inconclusive),
            ),
            (
                Mail,
                "451 4.7.500 Server busy. Please try again later from [192.0.2.1]",
                Some(Inconclusive),
            ),
            (Ehlo, "451 4.7.500 Server busy", Some(Inconclusive)),
            // Beyond the table: temporary failures, 421, other 5xx.
            (
                Rcpt,
                "450 4.2.0 <a@b.example>: Recipient address rejected: Greylisted",
                Some(Inconclusive),
            ),
            (
                Mail,
                "421 4.3.2 Service not available, closing transmission channel",
                Some(Inconclusive),
            ),
            (StartTls, "421 4.3.2 Shutting down", Some(Inconclusive)),
            (Rcpt, "550 5.1.1 User unknown", Some(Inconclusive)),
            (
                Mail,
                "501 5.1.7 Bad sender address syntax",
                Some(Inconclusive),
            ),
            (Banner, "554 No SMTP service here", Some(Inconclusive)),
            (Ehlo, "550 5.7.1 go away", Some(Inconclusive)),
            (Rcpt, "354 what", Some(Inconclusive)),
            // Keep going.
            (Banner, "220 mx.example.com ESMTP", None),
            (Ehlo, "250-mx.example.com\r\n250 STARTTLS", None),
            (Mail, "250 2.1.0 Sender OK", None),
            (Data, "354 Start mail input", None),
            (StartTls, "454 4.7.0 TLS not available", None),
            (StartTls, "220 2.0.0 Ready to start TLS", None),
            (Quit, "221 2.0.0 Bye", None),
            (Quit, "550 whatever", None),
        ];
        for (stage, text, want) in cases {
            assert_eq!(classify(*stage, &reply(text)), *want, "{stage:?} {text}");
        }
    }

    #[test]
    fn reasons_name_the_row() {
        for (stage, text, phrase) in [
            (
                Stage::Rcpt,
                DIRECT_SEND_BLOCK,
                "Direct Send is rejected at RCPT TO",
            ),
            (
                Stage::Rcpt,
                "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
                "recipient is unknown",
            ),
            (
                Stage::Rcpt,
                "550 5.7.64 TenantAttribution; Relay Access Denied",
                "not hosted",
            ),
            (
                Stage::Mail,
                "550 5.7.606 Access denied, banned sending IP [192.0.2.1]",
                "reputation",
            ),
            (Stage::Rcpt, "450 4.2.0 Greylisted", "greylisting"),
            (Stage::Mail, "421 4.3.2 closing", "closed the session"),
            (Stage::Rcpt, "250 ok", "Direct Send spoofing is possible"),
        ] {
            let (_, r) = classify_with_reason(stage, &reply(text)).expect("decided");
            assert!(r.contains(phrase), "{text}: {r}");
        }
    }

    /// Runs a probe against a scripted server: `server` maps each command (or `<MESSAGE>`) to
    /// a reply. Returns the commands sent and the final action.
    fn drive(
        cfg: ProbeConfig,
        banner: &str,
        server: impl Fn(&str) -> String,
    ) -> (Vec<String>, Action, Probe) {
        let mut p = Probe::new(cfg);
        let mut sent = Vec::new();
        let mut action = p.on_reply(&reply(banner));
        for _ in 0..50 {
            action = match action {
                Action::Send(c) => {
                    let r = reply(&server(&c));
                    sent.push(c);
                    p.on_reply(&r)
                }
                Action::StartTls => {
                    sent.push("<TLS>".into());
                    p.on_tls_established()
                }
                Action::SendData(m) => {
                    assert!(m.ends_with(b"\r\n.\r\n"));
                    sent.push("<MESSAGE>".into());
                    p.on_reply(&reply(&server("<MESSAGE>")))
                }
                fin @ Action::Finish(..) => return (sent, fin, p),
            };
        }
        panic!("probe did not finish: {sent:?}");
    }

    fn server(rcpt: &'static str, starttls: bool) -> impl Fn(&str) -> String {
        move |c: &str| {
            let verb = c
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" if starttls => "250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS".into(),
                "EHLO" => "250-mx.example.com\r\n250 PIPELINING".into(),
                "STARTTLS" => "220 2.0.0 Ready".into(),
                "MAIL" => "250 2.1.0 Sender OK".into(),
                "RCPT" => rcpt.into(),
                "DATA" => "354 Go ahead".into(),
                "<MESSAGE>" => "250 2.6.0 Queued".into(),
                "RSET" => "250 2.0.0 Reset".into(),
                "QUIT" => "221 2.0.0 Bye".into(),
                _ => "500 5.5.1 Unknown".into(),
            }
        }
    }

    fn cfg() -> ProbeConfig {
        ProbeConfig::relay("probe.example.net", "ceo@contoso.com")
    }

    #[test]
    fn sequence_with_starttls() {
        let (sent, fin, p) = drive(
            cfg(),
            "220 mx ESMTP",
            server("250 2.1.5 Recipient OK", true),
        );
        assert_eq!(
            sent,
            [
                "EHLO probe.example.net",
                "STARTTLS",
                "<TLS>",
                "EHLO probe.example.net",
                "MAIL FROM:<ceo@contoso.com>",
                "RCPT TO:<ceo@contoso.com>",
                "RSET",
                "QUIT"
            ]
        );
        assert!(matches!(fin, Action::Finish(Verdict::Open, Stage::Rcpt, _)));
        assert_eq!(p.starttls_offered(), Some(true));
        assert!(p.tls_established());
        assert!(!p.data_sent());
        assert_eq!(p.decisive_reply(), Some("250 2.1.5 Recipient OK"));
    }

    #[test]
    fn sequence_without_starttls() {
        let (sent, fin, p) = drive(cfg(), "220 mx ESMTP", server(DIRECT_SEND_BLOCK, false));
        assert_eq!(
            sent,
            [
                "EHLO probe.example.net",
                "MAIL FROM:<ceo@contoso.com>",
                "RCPT TO:<ceo@contoso.com>",
                "RSET",
                "QUIT"
            ]
        );
        assert!(matches!(
            fin,
            Action::Finish(Verdict::Blocked, Stage::Rcpt, _)
        ));
        assert_eq!(p.starttls_offered(), Some(false));
        assert_eq!(p.decisive_reply(), Some(DIRECT_SEND_BLOCK));
    }

    #[test]
    fn sequence_with_test_message() {
        let c = ProbeConfig {
            send_test_message: true,
            operator: "Jane Doe <jane@contoso.com>".into(),
            ..cfg()
        };
        let (sent, fin, p) = drive(c, "220 mx ESMTP", server("250 2.1.5 OK", true));
        assert_eq!(
            sent,
            [
                "EHLO probe.example.net",
                "STARTTLS",
                "<TLS>",
                "EHLO probe.example.net",
                "MAIL FROM:<ceo@contoso.com>",
                "RCPT TO:<ceo@contoso.com>",
                "DATA",
                "<MESSAGE>",
                "QUIT"
            ]
        );
        assert!(p.data_sent());
        let Action::Finish(Verdict::Open, Stage::Rcpt, reason) = fin else {
            panic!("{fin:?}")
        };
        assert!(reason.contains("test message was accepted"), "{reason}");
    }

    #[test]
    fn test_message_is_labelled_and_dot_stuffed() {
        let c = ProbeConfig {
            operator: ".Jane\r\nBcc: evil@example.org".into(),
            ..cfg()
        };
        let p = Probe::new(c);
        let m = String::from_utf8(test_message(
            p.config(),
            Some("Mon, 1 Jan 2024 00:00:00 +0000"),
        ))
        .unwrap();
        assert!(m.contains("\r\nSubject: [mailaudit] Security test"));
        assert!(m.contains("\r\nX-Mailaudit-Test: security test of Microsoft 365 Direct Send"));
        assert!(m.contains("run by .JaneBcc: evil@example.org\r\n"), "{m}");
        assert!(!m.contains("\r\nBcc:"));
        assert!(m.contains("\r\nDate: Mon, 1 Jan 2024"));
        assert!(m.ends_with("\r\n.\r\n"));
        assert_eq!(m.matches("\r\n.\r\n").count(), 1);
        let stuffed = test_message(
            &ProbeConfig {
                mail_from: ".dot@x".into(),
                ..cfg()
            },
            None,
        );
        assert!(
            String::from_utf8(stuffed)
                .unwrap()
                .starts_with("From: <.dot@x>")
        );
    }

    /// Without `send_test_message`, DATA is never sent, whatever the server says, and no
    /// configured string can smuggle a command in.
    #[test]
    fn never_data_without_opt_in() {
        let hostile = ProbeConfig {
            helo: "x\r\nDATA".into(),
            mail_from: "a@b\r\nDATA\r\n".into(),
            rcpt_to: "<a@b>\nDATA".into(),
            ..cfg()
        };
        for rcpt in ["250 OK", "354 go ahead", DIRECT_SEND_BLOCK, "450 later"] {
            for c in [cfg(), hostile.clone()] {
                let (sent, _, p) = drive(c, "220 mx", server(rcpt, true));
                assert!(!p.data_sent());
                for s in &sent {
                    assert!(!s.contains('\r') && !s.contains('\n'), "{s:?}");
                    assert!(!s.eq_ignore_ascii_case("DATA"), "{sent:?}");
                    assert_ne!(s, "<MESSAGE>");
                }
            }
        }
    }

    #[test]
    fn tls_only_check() {
        let c = ProbeConfig::tls_only("probe.example.net");
        let (sent, fin, _) = drive(c.clone(), "220 mx", server("250 OK", true));
        assert_eq!(
            sent,
            [
                "EHLO probe.example.net",
                "STARTTLS",
                "<TLS>",
                "EHLO probe.example.net",
                "QUIT"
            ]
        );
        assert!(matches!(
            fin,
            Action::Finish(Verdict::Inconclusive, Stage::Ehlo, _)
        ));
        let (sent, _, p) = drive(c, "220 mx", server("250 OK", false));
        assert_eq!(sent, ["EHLO probe.example.net", "QUIT"]);
        assert_eq!(p.starttls_offered(), Some(false));
    }

    #[test]
    fn refusals_and_fallbacks() {
        // Banner refusal: QUIT, inconclusive.
        let (sent, fin, _) = drive(
            cfg(),
            "554 5.7.1 blocked using Spamhaus",
            server("250", false),
        );
        assert_eq!(sent, ["QUIT"]);
        assert!(matches!(
            fin,
            Action::Finish(Verdict::Inconclusive, Stage::Banner, _)
        ));
        // 421 at the banner: no QUIT.
        let (sent, _, _) = drive(cfg(), "421 busy", server("250", false));
        assert!(sent.is_empty());
        // MAIL refused: no transaction, so no RSET.
        let (sent, fin, _) = drive(cfg(), "220 mx", |c: &str| {
            if c.starts_with("MAIL") {
                DIRECT_SEND_BLOCK.to_string()
            } else {
                server("250", false)(c)
            }
        });
        assert_eq!(sent.last().map(String::as_str), Some("QUIT"));
        assert!(!sent.iter().any(|s| s == "RSET" || s.starts_with("RCPT")));
        assert!(matches!(
            fin,
            Action::Finish(Verdict::Blocked, Stage::Mail, _)
        ));
        // 421 mid-session at RCPT: finish at once.
        let (sent, fin, _) = drive(cfg(), "220 mx", server("421 4.3.2 closing", false));
        assert_eq!(
            sent.last().map(String::as_str),
            Some("RCPT TO:<ceo@contoso.com>")
        );
        assert!(matches!(
            fin,
            Action::Finish(Verdict::Inconclusive, Stage::Rcpt, _)
        ));
        // STARTTLS refused: go on in clear text.
        let (sent, fin, p) = drive(cfg(), "220 mx", |c: &str| {
            if c == "STARTTLS" {
                "454 4.7.0 TLS not available".to_string()
            } else {
                server("250 OK", true)(c)
            }
        });
        assert!(sent.contains(&"RCPT TO:<ceo@contoso.com>".to_string()));
        assert!(!p.tls_established());
        assert!(matches!(fin, Action::Finish(Verdict::Open, ..)));
        // EHLO not recognised: HELO, no STARTTLS.
        let (sent, _, p) = drive(cfg(), "220 mx", |c: &str| {
            if c.starts_with("EHLO") {
                "502 5.5.2 Command not recognized".to_string()
            } else {
                server("250 OK", false)(c)
            }
        });
        assert_eq!(sent[1], "HELO probe.example.net");
        assert_eq!(p.starttls_offered(), Some(false));
        // Blocked after DATA with send_test_message.
        let c = ProbeConfig {
            send_test_message: true,
            ..cfg()
        };
        let (_, fin, p) = drive(c, "220 mx", |cmd: &str| {
            if cmd == "<MESSAGE>" {
                DIRECT_SEND_BLOCK.to_string()
            } else {
                server("250 OK", false)(cmd)
            }
        });
        assert!(p.data_sent());
        assert!(matches!(
            fin,
            Action::Finish(Verdict::Blocked, Stage::Data, _)
        ));
    }

    #[test]
    fn abort_keeps_a_decided_verdict() {
        let mut p = Probe::new(cfg());
        assert!(
            matches!(p.abort("connection refused"), Action::Finish(Verdict::Inconclusive, Stage::Banner, r) if r == "connection refused")
        );
        let mut p = Probe::new(cfg());
        let mut a = p.on_reply(&reply("220 mx"));
        for r in ["250 mx", "250 OK", DIRECT_SEND_BLOCK] {
            assert!(matches!(a, Action::Send(_)));
            a = p.on_reply(&reply(r));
        }
        assert_eq!(a, Action::Send("RSET".into()));
        assert!(matches!(
            p.abort("timeout"),
            Action::Finish(Verdict::Blocked, Stage::Rcpt, _)
        ));
        // TLS established out of sequence.
        let mut p = Probe::new(cfg());
        assert!(matches!(
            p.on_tls_established(),
            Action::Finish(Verdict::Inconclusive, ..)
        ));
    }

    fn arb_reply() -> impl proptest::strategy::Strategy<Value = Reply> {
        use proptest::prelude::*;
        (
            200u16..=599,
            proptest::option::of("[245]\\.[0-9]{1,3}\\.[0-9]{1,3}"),
            proptest::collection::vec(".{0,40}", 0..4),
        )
            .prop_map(|(code, enhanced, lines)| Reply {
                code,
                enhanced,
                lines,
            })
    }

    proptest::proptest! {
        /// The state machine never panics and always finishes, whatever the server replies.
        #[test]
        fn state_machine_never_panics(
            replies in proptest::collection::vec(arb_reply(), 0..30),
            send in proptest::bool::ANY,
            relay in proptest::bool::ANY,
        ) {
            let c = ProbeConfig { send_test_message: send, relay, ..cfg() };
            let mut p = Probe::new(c);
            let mut finished = false;
            for r in &replies {
                match p.on_reply(r) {
                    Action::StartTls => { let _ = p.on_tls_established(); }
                    Action::Send(s) => {
                        proptest::prop_assert!(send || s != "DATA");
                    }
                    Action::SendData(_) => proptest::prop_assert!(send),
                    Action::Finish(..) => { finished = true; break; }
                }
            }
            if !finished {
                proptest::prop_assert!(matches!(p.abort("timeout"), Action::Finish(..)));
            }
            let _ = classify(p.stage(), replies.first().unwrap_or(&Reply::new(250, "")));
        }
    }
}
