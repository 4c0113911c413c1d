//! The alert mail's SMTP submission, sans I/O: which command comes next and what each reply
//! means, as [`crate::smtp::Probe`] does for the relay probe. `mailaudit-net::notify` moves the
//! bytes, does the TLS handshake and enforces the deadline; this module decides.
//!
//! RFC 6409 §3.1 ("Message Submission for Mail") and RFC 5321 §3.3: `EHLO`, then, when the
//! plan asks for it, `STARTTLS` and a new `EHLO` (RFC 3207 §4.2: "The client MUST discard any
//! knowledge obtained from the server, such as the list of SMTP service extensions, which was
//! not obtained from the TLS negotiation itself"), then `AUTH PLAIN` when credentials are given
//! (RFC 4954), `MAIL FROM`, one `RCPT TO` per recipient, `DATA`, the message, `QUIT`.
//!
//! All or nothing: a recipient refused ends the transaction before `DATA`, so a retry never
//! mails the others twice. Credentials are sent only over TLS, or when the plan says the relay
//! is on a loopback address.

use std::fmt;

use crate::alerts::{clip, one_line};
use crate::dns::check_name;
use crate::smtp::Reply;

/// The step of a submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The server's greeting (`220`).
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

impl Stage {
    /// Whether the mail transaction has begun (`MAIL FROM` or later): a failure from here on
    /// is followed by `QUIT`.
    pub fn in_transaction(self) -> bool {
        matches!(
            self,
            Stage::MailFrom | Stage::RcptTo | Stage::Data | Stage::Message
        )
    }
}

/// What the submission needs: the client's name, TLS, credentials, the envelope.
#[derive(Clone, PartialEq, Eq)]
pub struct Plan {
    /// The name sent with `EHLO` (a domain name or an address literal).
    pub helo: String,
    /// Whether `STARTTLS` is required before anything else.
    pub starttls: bool,
    /// The `AUTH PLAIN` initial response, base64 (RFC 4616 §2), when credentials are given.
    pub auth_plain: Option<String>,
    /// Whether credentials may cross an unencrypted connection (a relay on a loopback address).
    pub cleartext_ok: bool,
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients (at least one).
    pub to: Vec<String>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("helo", &self.helo)
            .field("starttls", &self.starttls)
            .field(
                "auth_plain",
                &self.auth_plain.as_ref().map(|_| "<redacted>"),
            )
            .field("cleartext_ok", &self.cleartext_ok)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// Why a submission failed, as decided from the replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server refused a step: retryable for a 4xx reply, permanent for 5xx.
    Refused {
        /// The step refused.
        stage: Stage,
        /// The reply code.
        code: u16,
        /// The reply, all lines joined on one line and shortened (`550 5.1.1 <x@y>: ...`).
        reply: String,
    },
    /// The server lacks an extension the plan needs: `STARTTLS`, `AUTH PLAIN`.
    Unsupported(&'static str),
    /// Credentials would cross an unencrypted connection.
    Cleartext,
}

/// What the caller does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read a reply without sending anything (the greeting), then [`Submission::on_reply`].
    Read(Stage),
    /// Send this command line (CRLF added by the caller), read the reply, then
    /// [`Submission::on_reply`].
    Send(Stage, String),
    /// The server is ready for TLS: do the handshake, then [`Submission::on_tls`].
    StartTls,
    /// Send the message (dot-stuffed, with its final `.` line), read the reply, then
    /// [`Submission::on_reply`].
    SendMessage,
    /// The message was accepted: send `QUIT`.
    Done,
    /// The submission failed; send `QUIT` first when the transaction had begun
    /// ([`Stage::in_transaction`]).
    Fail(Stage, Failure),
}

/// What the `EHLO` reply announced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Each extension line: the keyword upper-cased, then its parameters.
    lines: Vec<Vec<String>>,
}

impl Extensions {
    /// The extensions of a `250` reply to `EHLO` (every line but the first).
    pub fn from_reply(reply: &Reply) -> Self {
        Extensions {
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

    /// Whether the extension `keyword` (upper case) was announced.
    pub fn has(&self, keyword: &str) -> bool {
        self.lines.iter().any(|l| l[0] == keyword)
    }

    /// RFC 4954 §3: "AUTH mechanism [initial-response]"; the EHLO keyword lists the
    /// mechanisms: `250-AUTH LOGIN PLAIN`.
    pub fn auth_plain(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l[0] == "AUTH" && l[1..].iter().any(|m| m == "PLAIN"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo { after_tls: bool },
    Helo,
    StartTls,
    Auth { continued: bool },
    MailFrom,
    RcptTo(usize),
    Data,
    Message,
    Over,
}

/// The submission state machine: [`Submission::start`], then [`Submission::on_reply`] with
/// each reply (and [`Submission::on_tls`] after the handshake) until [`Action::Done`] or
/// [`Action::Fail`].
#[derive(Debug)]
pub struct Submission {
    plan: Plan,
    state: State,
}

impl Submission {
    /// A submission of `plan`; the first action is [`Submission::start`]'s.
    pub fn new(plan: Plan) -> Self {
        Submission {
            plan,
            state: State::Greeting,
        }
    }

    /// The first action: read the greeting.
    pub fn start(&self) -> Action {
        Action::Read(Stage::Greeting)
    }

    /// The TLS handshake after `STARTTLS` succeeded: `EHLO` again.
    pub fn on_tls(&mut self) -> Action {
        self.state = State::Ehlo { after_tls: true };
        self.ehlo()
    }

    fn ehlo(&self) -> Action {
        Action::Send(Stage::Ehlo, format!("EHLO {}", self.plan.helo))
    }

    fn fail(&mut self, stage: Stage, failure: Failure) -> Action {
        self.state = State::Over;
        Action::Fail(stage, failure)
    }

    fn refused(&mut self, stage: Stage, reply: &Reply) -> Action {
        let text = clip(&one_line(&reply.full_text()), 500);
        let reply_text = if text.is_empty() {
            reply.code.to_string()
        } else {
            format!("{} {text}", reply.code)
        };
        self.fail(
            stage,
            Failure::Refused {
                stage,
                code: reply.code,
                reply: reply_text,
            },
        )
    }

    /// After `EHLO` (or `HELO`): `STARTTLS` when wanted and not yet done, then `AUTH PLAIN`
    /// when credentials are given, then the transaction.
    fn after_ehlo(&mut self, ext: &Extensions, after_tls: bool) -> Action {
        if self.plan.starttls && !after_tls {
            if !ext.has("STARTTLS") {
                return self.fail(Stage::StartTls, Failure::Unsupported("STARTTLS"));
            }
            self.state = State::StartTls;
            return Action::Send(Stage::StartTls, "STARTTLS".into());
        }
        if let Some(token) = &self.plan.auth_plain {
            if !self.plan.starttls && !self.plan.cleartext_ok {
                return self.fail(Stage::Auth, Failure::Cleartext);
            }
            if !ext.auth_plain() {
                return self.fail(Stage::Auth, Failure::Unsupported("AUTH PLAIN"));
            }
            let line = format!("AUTH PLAIN {token}");
            self.state = State::Auth { continued: false };
            return Action::Send(Stage::Auth, line);
        }
        self.mail_from()
    }

    fn mail_from(&mut self) -> Action {
        self.state = State::MailFrom;
        Action::Send(Stage::MailFrom, format!("MAIL FROM:<{}>", self.plan.from))
    }

    fn rcpt(&mut self, i: usize) -> Action {
        self.state = State::RcptTo(i);
        Action::Send(Stage::RcptTo, format!("RCPT TO:<{}>", self.plan.to[i]))
    }

    /// The step whose reply is awaited.
    pub fn stage(&self) -> Stage {
        match self.state {
            State::Greeting => Stage::Greeting,
            State::Ehlo { .. } | State::Helo => Stage::Ehlo,
            State::StartTls => Stage::StartTls,
            State::Auth { .. } => Stage::Auth,
            State::MailFrom => Stage::MailFrom,
            State::RcptTo(_) => Stage::RcptTo,
            State::Data => Stage::Data,
            State::Message | State::Over => Stage::Message,
        }
    }

    /// The next action after `reply`.
    ///
    /// RFC 5321 §4.1.4: "a client SHOULD start an SMTP session by issuing the EHLO command.
    /// [...] If the EHLO command is not acceptable to the SMTP server, 501, 500, 502, or 550
    /// failure replies MUST be returned as appropriate." §3.2: "Older client SMTP systems MAY
    /// [...] use HELO": only when no extension is needed (no STARTTLS, no AUTH). RFC 4954 §4:
    /// a server that asks for the initial response with an empty `334` challenge gets it then.
    pub fn on_reply(&mut self, reply: &Reply) -> Action {
        let positive = (200..300).contains(&reply.code);
        match self.state {
            State::Greeting if reply.code == 220 => {
                self.state = State::Ehlo { after_tls: false };
                self.ehlo()
            }
            State::Greeting => self.refused(Stage::Greeting, reply),
            State::Ehlo { after_tls } if reply.code == 250 => {
                self.after_ehlo(&Extensions::from_reply(reply), after_tls)
            }
            State::Ehlo { after_tls: false }
                if !self.plan.starttls
                    && self.plan.auth_plain.is_none()
                    && matches!(reply.code, 500 | 501 | 502 | 550) =>
            {
                self.state = State::Helo;
                Action::Send(Stage::Ehlo, format!("HELO {}", self.plan.helo))
            }
            State::Ehlo { .. } => self.refused(Stage::Ehlo, reply),
            State::Helo if reply.code == 250 => self.after_ehlo(&Extensions::default(), false),
            State::Helo => self.refused(Stage::Ehlo, reply),
            State::StartTls if reply.code == 220 => Action::StartTls,
            State::StartTls => self.refused(Stage::StartTls, reply),
            State::Auth { continued: false } if reply.code == 334 => {
                self.state = State::Auth { continued: true };
                let token = self.plan.auth_plain.clone().unwrap_or_default();
                Action::Send(Stage::Auth, token)
            }
            State::Auth { .. } if reply.code == 235 => self.mail_from(),
            State::Auth { .. } => self.refused(Stage::Auth, reply),
            State::MailFrom if positive => self.rcpt(0),
            State::MailFrom => self.refused(Stage::MailFrom, reply),
            State::RcptTo(i) if positive && i + 1 < self.plan.to.len() => self.rcpt(i + 1),
            State::RcptTo(_) if positive => {
                self.state = State::Data;
                Action::Send(Stage::Data, "DATA".into())
            }
            State::RcptTo(_) => self.refused(Stage::RcptTo, reply),
            State::Data if reply.code == 354 => {
                self.state = State::Message;
                Action::SendMessage
            }
            State::Data => self.refused(Stage::Data, reply),
            State::Message if positive => {
                self.state = State::Over;
                Action::Done
            }
            State::Message | State::Over => self.refused(Stage::Message, reply),
        }
    }
}

/// Checks an address for the envelope: `local@domain`, printable ASCII without spaces, angle
/// brackets or quotes, at most 254 octets (non-ASCII addresses would need SMTPUTF8). The error
/// says what is wrong.
pub fn check_address(a: &str) -> Result<(), &'static str> {
    if !a.is_ascii() {
        return Err("non-ASCII addresses need SMTPUTF8, which is not supported");
    }
    if a.len() > 254 {
        return Err("longer than 254 octets");
    }
    if a.bytes()
        .any(|b| !(0x21..0x7f).contains(&b) || b"<>\"(),;:\\[]".contains(&b))
    {
        return Err("spaces, control characters and <>\"(),;:\\[] are not allowed");
    }
    match a.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && check_name(domain).is_ok() =>
        {
            Ok(())
        }
        _ => Err("expected local@domain"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::parse_reply;

    fn plan() -> Plan {
        Plan {
            helo: "[127.0.0.1]".into(),
            starttls: false,
            auth_plain: None,
            cleartext_ok: false,
            from: "a@x.test".into(),
            to: vec!["b@x.test".into(), "c@x.test".into()],
        }
    }

    fn reply(text: &str) -> Reply {
        parse_reply(text).unwrap()
    }

    /// Runs the machine against scripted replies: the lines sent, and the last action.
    fn run(plan: Plan, replies: &[&str]) -> (Vec<String>, Action) {
        let mut m = Submission::new(plan);
        let mut action = m.start();
        let mut sent = Vec::new();
        let mut replies = replies.iter();
        loop {
            match &action {
                Action::Send(_, line) => sent.push(line.clone()),
                Action::SendMessage => sent.push("<message>".into()),
                Action::StartTls => {
                    sent.push("<tls>".into());
                    action = m.on_tls();
                    continue;
                }
                Action::Read(_) => {}
                Action::Done | Action::Fail(..) => return (sent, action),
            }
            let Some(r) = replies.next() else {
                return (sent, action);
            };
            action = m.on_reply(&reply(r));
        }
    }

    #[test]
    fn the_whole_transaction() {
        let (sent, last) = run(
            plan(),
            &[
                "220 hi\r\n",
                "250-mx\r\n250 8BITMIME\r\n",
                "250 ok\r\n",
                "250 ok\r\n",
                "250 ok\r\n",
                "354 go\r\n",
                "250 queued\r\n",
            ],
        );
        assert_eq!(
            sent,
            [
                "EHLO [127.0.0.1]",
                "MAIL FROM:<a@x.test>",
                "RCPT TO:<b@x.test>",
                "RCPT TO:<c@x.test>",
                "DATA",
                "<message>"
            ]
        );
        assert_eq!(last, Action::Done);
    }

    #[test]
    fn starttls_then_auth_plain_with_a_continuation() {
        let p = Plan {
            starttls: true,
            auth_plain: Some("AHUAcA==".into()),
            ..plan()
        };
        let (sent, last) = run(
            p.clone(),
            &[
                "220 hi\r\n",
                "250-mx\r\n250 STARTTLS\r\n",
                "220 go ahead\r\n",
                "250-mx\r\n250 AUTH LOGIN PLAIN\r\n",
                "334 \r\n",
                "235 ok\r\n",
            ],
        );
        assert_eq!(
            sent,
            [
                "EHLO [127.0.0.1]",
                "STARTTLS",
                "<tls>",
                "EHLO [127.0.0.1]",
                "AUTH PLAIN AHUAcA==",
                "AHUAcA==",
                "MAIL FROM:<a@x.test>"
            ]
        );
        assert!(matches!(last, Action::Send(Stage::MailFrom, _)));
        assert!(!format!("{p:?}").contains("AHUAcA"));
        // The extensions before TLS are forgotten: AUTH only announced before TLS is missing.
        let (_, last) = run(
            p,
            &[
                "220 hi\r\n",
                "250-mx\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n",
                "220 go ahead\r\n",
                "250 mx\r\n",
            ],
        );
        assert_eq!(
            last,
            Action::Fail(Stage::Auth, Failure::Unsupported("AUTH PLAIN"))
        );
    }

    #[test]
    fn refusals_and_missing_extensions() {
        let (sent, last) = run(
            plan(),
            &[
                "220 hi\r\n",
                "250 mx\r\n",
                "250 ok\r\n",
                "550 5.1.1 <b@x.test>: unknown\r\n",
            ],
        );
        assert_eq!(sent.last().map(String::as_str), Some("RCPT TO:<b@x.test>"));
        let Action::Fail(stage, Failure::Refused { code, reply, .. }) = &last else {
            panic!("{last:?}")
        };
        assert_eq!((*stage, *code), (Stage::RcptTo, 550));
        assert_eq!(reply, "550 5.1.1 <b@x.test>: unknown");
        assert!(stage.in_transaction());
        let (_, last) = run(plan(), &["554 go away\r\n"]);
        assert!(matches!(
            last,
            Action::Fail(Stage::Greeting, Failure::Refused { code: 554, .. })
        ));
        let p = Plan {
            starttls: true,
            ..plan()
        };
        let (_, last) = run(p, &["220 hi\r\n", "250 mx\r\n"]);
        assert_eq!(
            last,
            Action::Fail(Stage::StartTls, Failure::Unsupported("STARTTLS"))
        );
        let p = Plan {
            auth_plain: Some("x".into()),
            ..plan()
        };
        let (sent, last) = run(p.clone(), &["220 hi\r\n", "250-mx\r\n250 AUTH PLAIN\r\n"]);
        assert_eq!(last, Action::Fail(Stage::Auth, Failure::Cleartext));
        assert!(!sent.iter().any(|l| l.starts_with("AUTH")));
        let p = Plan {
            cleartext_ok: true,
            ..p
        };
        let (_, last) = run(
            p,
            &["220 hi\r\n", "250-mx\r\n250 AUTH PLAIN\r\n", "535 no\r\n"],
        );
        assert!(matches!(
            last,
            Action::Fail(Stage::Auth, Failure::Refused { code: 535, .. })
        ));
    }

    #[test]
    fn helo_only_when_no_extension_is_needed() {
        let (sent, last) = run(plan(), &["220 hi\r\n", "502 no\r\n", "250 ok\r\n"]);
        assert_eq!(
            sent,
            [
                "EHLO [127.0.0.1]",
                "HELO [127.0.0.1]",
                "MAIL FROM:<a@x.test>"
            ]
        );
        assert!(matches!(last, Action::Send(Stage::MailFrom, _)));
        let p = Plan {
            starttls: true,
            ..plan()
        };
        let (_, last) = run(p, &["220 hi\r\n", "502 no\r\n"]);
        assert!(matches!(
            last,
            Action::Fail(Stage::Ehlo, Failure::Refused { code: 502, .. })
        ));
    }

    #[test]
    fn ehlo_keywords() {
        let r = reply(
            "250-mx.test Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-auth login plain\r\n250 8BITMIME\r\n",
        );
        let e = Extensions::from_reply(&r);
        assert!(e.has("STARTTLS") && e.has("8BITMIME") && !e.has("SMTPUTF8"));
        assert!(e.auth_plain());
        let r = reply("250-mx.test\r\n250 AUTH LOGIN\r\n");
        assert!(!Extensions::from_reply(&r).auth_plain());
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
            assert_eq!(check_address(a).is_ok(), ok, "{a:?}");
        }
    }
}
