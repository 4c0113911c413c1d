//! The SMTP probes, pure part: reply parsing, the Direct Send verdict table, the probe state
//! machine and the findings drawn from a probe report.
//!
//! The Direct Send probe (docs/m365.md) connects without authentication to a domain's inbound
//! endpoint on port 25, says EHLO, upgrades with STARTTLS when offered and says EHLO again,
//! then offers `MAIL FROM` an address of the domain and `RCPT TO` a mailbox of the domain, and
//! ends with `RSET` and `QUIT`. It never sends `DATA` unless [`ProbeConfig::send_test_message`]
//! is set, and then sends one clearly labelled message ([`test_message`]). The replies are
//! classified by [`classify`] into [`Verdict::Open`], [`Verdict::Blocked`] or
//! [`Verdict::Inconclusive`].
//!
//! This module does no I/O: [`Probe`] is a sans-IO state machine that, given the last reply,
//! says what to send next ([`Action`]); `mailaudit_net::smtp::probe` drives it over a socket,
//! with timeouts, caps, TLS and politeness limits, and fills in a [`ProbeReport`], from which
//! [`findings`] draws RELAY-OPEN, RELAY-INCONCLUSIVE, STARTTLS-MISSING and TLS-CERT-INVALID.
//!
//! **TLS-PROTOCOL-OLD is never raised by this probe.** The TLS stack (rustls) cannot speak TLS
//! below 1.2, so whether an MX *accepts* TLS 1.0 or 1.1 cannot be tested with it; rather than
//! guess, the check is left to a tool with an old-protocol-capable TLS library. The negotiated
//! version is still recorded in [`TlsInfo::version`] (always 1.2 or 1.3).

mod eval;
mod parse;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checks::CheckId;
use crate::finding::Finding;

pub use eval::{Action, Probe, classify, classify_with_reason, test_message};
pub use parse::{
    MAX_REPLY_LINE, MAX_REPLY_LINES, Reply, ReplyError, ReplyParser, enhanced_code, parse_reply,
};

/// The outcome of a Direct Send probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The endpoint accepted the spoofed envelope: Direct Send spoofing is possible.
    Open,
    /// The endpoint refused the spoofed envelope by policy.
    Blocked,
    /// The probe could not decide (no connection, greylisting, unknown recipient, reputation).
    Inconclusive,
}

impl Verdict {
    /// The JSON name: `open`, `blocked`, `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Open => "open",
            Verdict::Blocked => "blocked",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the session a probe is, or where its verdict was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The TCP connection.
    Connect,
    /// The server's greeting.
    Banner,
    /// EHLO (or the HELO fallback), before or after TLS.
    Ehlo,
    /// STARTTLS and the TLS handshake.
    StartTls,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// `DATA` and the test message (only with `send_test_message`).
    Data,
    /// `QUIT` (and `RSET` before it).
    Quit,
}

impl Stage {
    /// The JSON name: `connect`, `banner`, `ehlo`, `starttls`, `mail`, `rcpt`, `data`, `quit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "ehlo",
            Stage::StartTls => "starttls",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Quit => "quit",
        }
    }

    /// A name for sentences: `the connection`, `the banner`, `EHLO`, `STARTTLS`, `MAIL FROM`, …
    pub fn label(self) -> &'static str {
        match self {
            Stage::Connect => "the connection",
            Stage::Banner => "the banner",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Quit => "QUIT",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who wrote a transcript line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Sent by the probe.
    Client,
    /// Received from the server.
    Server,
    /// The probe's own remark (connection, TLS, timeouts).
    Note,
}

/// One line of the session transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// Who wrote it.
    pub dir: Dir,
    /// The line, without CRLF (server lines capped at the reply line limit).
    pub line: String,
}

impl TranscriptLine {
    /// A line of `dir`.
    pub fn new(dir: Dir, line: impl Into<String>) -> Self {
        TranscriptLine {
            dir,
            line: line.into(),
        }
    }
}

/// `C: EHLO …`, `S: 250 …`, `*  note`.
impl fmt::Display for TranscriptLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.dir {
            Dir::Client => "C: ",
            Dir::Server => "S: ",
            Dir::Note => "*  ",
        };
        write!(f, "{tag}{}", self.line)
    }
}

/// What the probe says and to whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// The host name given in EHLO: a real name of the probing host.
    pub helo: String,
    /// The envelope sender, an address of the audited domain (without angle brackets).
    pub mail_from: String,
    /// The envelope recipient, an existing mailbox of the audited domain.
    pub rcpt_to: String,
    /// Send one labelled test message after an accepted RCPT (opt-in; otherwise never DATA).
    pub send_test_message: bool,
    /// Who runs the test, named in the test message's `X-Mailaudit-Test:` header.
    pub operator: String,
    /// `true` for the relay probe; `false` for the STARTTLS/TLS check only (EHLO, STARTTLS,
    /// EHLO, QUIT).
    pub relay: bool,
}

impl ProbeConfig {
    /// A relay probe from `address` to itself (the default of docs/m365.md: the sender is the
    /// recipient), saying `EHLO helo`, without a test message.
    pub fn relay(helo: impl Into<String>, address: impl Into<String>) -> Self {
        let address = address.into();
        ProbeConfig {
            helo: helo.into(),
            mail_from: address.clone(),
            rcpt_to: address,
            send_test_message: false,
            operator: String::new(),
            relay: true,
        }
    }

    /// A STARTTLS/TLS check only (no MAIL, no RCPT).
    pub fn tls_only(helo: impl Into<String>) -> Self {
        ProbeConfig {
            relay: false,
            ..ProbeConfig::relay(helo, "")
        }
    }
}

/// What the TLS session looked like. The certificate is judged but never aborts the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// The negotiated protocol version (`TLSv1.2`, `TLSv1.3`).
    pub version: String,
    /// The negotiated cipher suite (e.g. `TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// The chain verifies to a trusted root, is within its validity period and names the host.
    pub cert_valid: bool,
    /// Why not: `expired …`, `not valid for name …`, `unknown issuer`, `self-signed`, …
    pub cert_error: Option<String>,
    /// The DNS names in the end-entity certificate (subject alternative names, else the CN).
    pub names: Vec<String>,
    /// The end-entity certificate's notAfter, RFC 3339 (UTC).
    pub not_after: Option<String>,
}

/// The outcome of one probe of one host, with the full transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The MX (or Microsoft endpoint) host name probed.
    pub host: String,
    /// The address connected to (`IP:PORT`), when known.
    pub addr: Option<String>,
    /// The TCP port.
    pub port: u16,
    /// The verdict.
    pub verdict: Verdict,
    /// The stage that decided it.
    pub stage: Stage,
    /// The reply that decided it (`550 5.7.68 …`), when a reply did.
    pub reply: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// Whether EHLO advertised STARTTLS (`None` when EHLO was never answered).
    pub starttls_offered: Option<bool>,
    /// The TLS session, when STARTTLS completed.
    pub tls: Option<TlsInfo>,
    /// Whether the labelled test message was sent.
    pub data_sent: bool,
    /// Whether this was a relay probe (`false`: STARTTLS/TLS check only).
    #[serde(default = "yes")]
    pub relay: bool,
    /// Every line sent and received, and the probe's notes.
    pub transcript: Vec<TranscriptLine>,
}

fn yes() -> bool {
    true
}

impl ProbeReport {
    /// The transcript as text, one `C:`/`S:`/`*` line each.
    pub fn transcript_text(&self) -> String {
        let mut s = String::new();
        for l in &self.transcript {
            s.push_str(&l.to_string());
            s.push('\n');
        }
        s
    }

    fn endpoint(&self) -> String {
        match &self.addr {
            Some(a) => format!("{} ({a})", self.host),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// The server lines answering the first EHLO.
    fn ehlo_reply(&self) -> Option<String> {
        let start = self
            .transcript
            .iter()
            .position(|l| l.dir == Dir::Client && l.line.starts_with("EHLO"))?;
        let lines: Vec<&str> = self.transcript[start + 1..]
            .iter()
            .take_while(|l| l.dir != Dir::Client)
            .filter(|l| l.dir == Dir::Server)
            .map(|l| l.line.as_str())
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

/// The findings of one probe of one of `domain`'s hosts: RELAY-OPEN or RELAY-INCONCLUSIVE for
/// relay probes, STARTTLS-MISSING when EHLO did not advertise STARTTLS, TLS-CERT-INVALID when
/// the certificate did not verify. A blocked relay and a good TLS session yield nothing.
/// TLS-PROTOCOL-OLD is never raised (see the module documentation).
pub fn findings(domain: &str, report: &ProbeReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = report.endpoint();
    let evidence = || {
        report
            .reply
            .clone()
            .unwrap_or_else(|| report.transcript_text().trim_end().to_string())
    };
    if report.relay {
        match report.verdict {
            Verdict::Open => out.push(
                Finding::new(
                    CheckId::RelayOpen,
                    format!(
                        "{at} accepted an unauthenticated envelope from {domain} to {domain} at {}: {}",
                        report.stage.label(),
                        report.reason
                    ),
                )
                .with_evidence(report.transcript_text().trim_end().to_string()),
            ),
            Verdict::Inconclusive => out.push(
                Finding::new(
                    CheckId::RelayInconclusive,
                    format!(
                        "{at}, Direct Send test of {domain} undecided at {}: {}",
                        report.stage.label(),
                        report.reason
                    ),
                )
                .with_evidence(evidence()),
            ),
            Verdict::Blocked => {}
        }
    }
    if report.starttls_offered == Some(false) {
        let mut f = Finding::new(
            CheckId::StarttlsMissing,
            format!("{at} does not advertise STARTTLS in its EHLO reply"),
        );
        if let Some(e) = report.ehlo_reply() {
            f = f.with_evidence(e);
        }
        out.push(f);
    }
    if let Some(tls) = report.tls.as_ref().filter(|t| !t.cert_valid) {
        let why = tls.cert_error.as_deref().unwrap_or("did not verify");
        let names = if tls.names.is_empty() {
            "no DNS names".to_string()
        } else {
            tls.names.join(", ")
        };
        out.push(
            Finding::new(
                CheckId::TlsCertInvalid,
                format!(
                    "{at} presents a certificate that is not valid for {}: {why}",
                    report.host
                ),
            )
            .with_evidence(format!(
                "names: {names}; not after: {}; {} {}",
                tls.not_after.as_deref().unwrap_or("unknown"),
                tls.version,
                tls.cipher
            )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verdict: Verdict, relay: bool) -> ProbeReport {
        ProbeReport {
            host: "contoso-com.mail.protection.outlook.com".into(),
            addr: Some("192.0.2.10:25".into()),
            port: 25,
            verdict,
            stage: Stage::Rcpt,
            reply: Some("250 2.1.5 Recipient OK".into()),
            reason: "the recipient was accepted".into(),
            starttls_offered: Some(true),
            tls: None,
            data_sent: false,
            relay,
            transcript: vec![
                TranscriptLine::new(Dir::Note, "connected"),
                TranscriptLine::new(Dir::Server, "220 mx"),
                TranscriptLine::new(Dir::Client, "EHLO probe.example.net"),
                TranscriptLine::new(Dir::Server, "250-mx"),
                TranscriptLine::new(Dir::Server, "250 SIZE 1000"),
                TranscriptLine::new(Dir::Client, "QUIT"),
            ],
        }
    }

    fn ids(fs: &[Finding]) -> Vec<CheckId> {
        fs.iter().map(|f| f.id).collect()
    }

    #[test]
    fn findings_per_outcome() {
        let bad_cert = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            cert_valid: false,
            cert_error: Some("expired (notAfter 2020-01-01T00:00:00Z)".into()),
            names: vec!["mx.contoso.com".into()],
            not_after: Some("2020-01-01T00:00:00Z".into()),
        };
        let good_cert = TlsInfo {
            cert_valid: true,
            cert_error: None,
            ..bad_cert.clone()
        };
        let cases: Vec<(ProbeReport, Vec<CheckId>)> = vec![
            (report(Verdict::Open, true), vec![CheckId::RelayOpen]),
            (report(Verdict::Blocked, true), vec![]),
            (
                report(Verdict::Inconclusive, true),
                vec![CheckId::RelayInconclusive],
            ),
            (report(Verdict::Inconclusive, false), vec![]),
            (report(Verdict::Open, false), vec![]),
            (
                ProbeReport {
                    starttls_offered: Some(false),
                    ..report(Verdict::Blocked, true)
                },
                vec![CheckId::StarttlsMissing],
            ),
            (
                ProbeReport {
                    starttls_offered: None,
                    ..report(Verdict::Inconclusive, false)
                },
                vec![],
            ),
            (
                ProbeReport {
                    tls: Some(bad_cert),
                    ..report(Verdict::Open, true)
                },
                vec![CheckId::RelayOpen, CheckId::TlsCertInvalid],
            ),
            (
                ProbeReport {
                    tls: Some(good_cert),
                    ..report(Verdict::Blocked, true)
                },
                vec![],
            ),
        ];
        for (r, want) in cases {
            assert_eq!(ids(&findings("contoso.com", &r)), want, "{r:?}");
        }
    }

    #[test]
    fn finding_contents() {
        let f = findings("contoso.com", &report(Verdict::Open, true));
        assert!(
            f[0].detail
                .contains("contoso-com.mail.protection.outlook.com (192.0.2.10:25)")
        );
        assert!(
            f[0].evidence
                .as_deref()
                .unwrap()
                .contains("C: EHLO probe.example.net")
        );
        let r = ProbeReport {
            starttls_offered: Some(false),
            ..report(Verdict::Inconclusive, true)
        };
        let f = findings("contoso.com", &r);
        assert_eq!(f[0].evidence.as_deref(), Some("250 2.1.5 Recipient OK"));
        assert_eq!(f[1].evidence.as_deref(), Some("250-mx\n250 SIZE 1000"));
        let r = ProbeReport {
            tls: Some(TlsInfo {
                version: "TLSv1.2".into(),
                cipher: "X".into(),
                cert_valid: false,
                cert_error: Some("self-signed".into()),
                names: vec![],
                not_after: None,
            }),
            ..report(Verdict::Blocked, true)
        };
        let f = findings("contoso.com", &r);
        assert!(f[0].detail.ends_with(": self-signed"), "{}", f[0].detail);
    }

    #[test]
    fn serialises_lowercase() {
        let r = report(Verdict::Inconclusive, true);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["verdict"], "inconclusive");
        assert_eq!(v["stage"], "rcpt");
        assert_eq!(v["transcript"][0]["dir"], "note");
        assert_eq!(serde_json::to_value(Stage::StartTls).unwrap(), "starttls");
        for s in [
            Stage::Connect,
            Stage::Banner,
            Stage::Ehlo,
            Stage::StartTls,
            Stage::Mail,
            Stage::Rcpt,
            Stage::Data,
            Stage::Quit,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for v in [Verdict::Open, Verdict::Blocked, Verdict::Inconclusive] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        let back: ProbeReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
