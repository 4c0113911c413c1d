//! `mailaudit relay-test` and `mailaudit audit --relay-test` end to end: the real binary against
//! a real Postfix on loopback posing as Microsoft 365 endpoints (`mailaudit_lab::postfix`).
//!
//! Each test starts its own Postfix instance, so that its log (the server-side witness of every
//! command the probe sent) and its queue are its own. The binary finds the endpoint through a
//! lab DNS zone in which the MX host (`contoso-test.mail.protection.outlook.com`) has
//! `A 127.0.0.1`; `--smtp-port` names the endpoint's ephemeral port and `--ca-file` the test CA
//! (made here with rcgen) that signed the endpoint's certificate for the MX host name.
//!
//! Two hosts on one port: a run has a single `--smtp-port`, but Postfix gives every endpoint
//! its own port on 127.0.0.1. Where a run must reach two endpoints (a gateway and the
//! Microsoft endpoint behind it; two domains in one audit), the second host resolves to
//! 127.0.0.2 and a [`Forward`]er listening on 127.0.0.2 at the first endpoint's port number
//! relays the bytes to the second endpoint. Everything stays on loopback.
//!
//! Needs root and Postfix (`scripts/install-test-deps.sh`). Set `MAILAUDIT_SKIP_POSTFIX=1` to
//! skip these tests on a machine that has neither; without it a missing Postfix fails them.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use mailaudit_lab::postfix::{
    BLOCKED_REPLY, Behaviour, Endpoint, LabConfig, PostfixLab, TEST_DOMAIN, TEST_HOSTNAME,
    TlsIdentity, UNKNOWN_RECIPIENT_REPLY,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};
use serde_json::Value;

use crate::common::{Lab, Output, domain, finding_ids, run};

/// The tenant's Microsoft 365 endpoint, the MX of [`TEST_DOMAIN`].
const ENDPOINT: &str = "contoso-test.mail.protection.outlook.com";
/// A Mimecast gateway MX.
const GATEWAY: &str = "eu-smtp-inbound-1.mimecast.com";
/// A second tenant, for the two-domain audit.
const FABRIKAM: &str = "fabrikam.test";
const FABRIKAM_ENDPOINT: &str = "fabrikam-test.mail.protection.outlook.com";
/// The EHLO name every run gives.
const HELO: &str = "probe.mailaudit.test";
/// How long Postfix may take to log a session after the client left.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// The test PKI: a CA and leaf certificates it signed, made once per test binary.
struct Pki {
    ca_pem: String,
    valid: TlsIdentity,
    expired: TlsIdentity,
    mismatched: TlsIdentity,
}

/// Every host name a lab endpoint stands for in these tests.
const NAMES: [&str; 4] = [ENDPOINT, FABRIKAM_ENDPOINT, GATEWAY, TEST_HOSTNAME];

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mailaudit CLI test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let leaf = |names: &[&str], expired: bool| {
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                    .expect("leaf params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, names[0]);
            if expired {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &ca).expect("leaf certificate");
            TlsIdentity {
                key_pem: key.serialize_pem(),
                chain_pem: cert.pem(),
            }
        };
        Pki {
            ca_pem: ca.pem(),
            valid: leaf(&NAMES, false),
            expired: leaf(&NAMES, true),
            mismatched: leaf(&["mx.fabrikam.test"], false),
        }
    })
}

/// A started Postfix lab and the test CA written into its directory (removed with it).
struct Rig {
    postfix: PostfixLab,
    ca: PathBuf,
}

impl Rig {
    /// Starts `endpoints` for `domains`; `None` when `MAILAUDIT_SKIP_POSTFIX` is set and Postfix
    /// cannot run here.
    fn start(domains: &[&str], endpoints: Vec<Endpoint>) -> Option<Rig> {
        let config = LabConfig {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..LabConfig::new(endpoints)
        };
        // (`PostfixLab::start` itself retries a start that fails on a loaded machine.)
        let postfix = mailaudit_lab::or_skip(PostfixLab::start(&config), "MAILAUDIT_SKIP_POSTFIX")?;
        let ca = postfix.dir().join("cli-test-ca.pem");
        std::fs::write(&ca, &pki().ca_pem).expect("CA file written");
        Some(Rig { postfix, ca })
    }

    /// One endpoint of `behaviour` named `name`, with the valid certificate, for [`TEST_DOMAIN`].
    fn one(name: &str, behaviour: Behaviour) -> Option<Rig> {
        Rig::start(
            &[TEST_DOMAIN],
            vec![Endpoint::new(name, behaviour).with_tls(pki().valid.clone())],
        )
    }

    fn port(&self, endpoint: &str) -> u16 {
        self.postfix.addr(endpoint).expect("endpoint exists").port()
    }

    fn ca(&self) -> &str {
        self.ca.to_str().expect("UTF-8 temp path")
    }

    /// The binary's options for SMTP against `endpoint`'s port.
    fn smtp_args(&self, endpoint: &str) -> Vec<String> {
        [
            "--smtp-port",
            &self.port(endpoint).to_string(),
            "--ca-file",
            self.ca(),
            "--helo",
            HELO,
            "--smtp-timeout",
            "10",
        ]
        .map(String::from)
        .to_vec()
    }

    /// `mailaudit relay-test DOMAIN` against `endpoint`, with `extra` arguments.
    fn relay_test(&self, dns: &Lab, domain: &str, endpoint: &str, extra: &[&str]) -> Output {
        let mut args: Vec<String> = ["--nameserver", dns.addr(), "relay-test", domain]
            .map(String::from)
            .to_vec();
        args.extend(self.smtp_args(endpoint));
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    }

    /// The one closed session of `endpoint`, as Postfix logged it.
    #[track_caller]
    fn session(&self, endpoint: &str) -> mailaudit_lab::postfix::Session {
        let sessions = self.postfix.wait_sessions(endpoint, 1, LOG_WAIT);
        let [session] = sessions.as_slice() else {
            panic!(
                "{endpoint}: one session expected: {sessions:#?}\n{}",
                self.postfix.log()
            );
        };
        assert!(session.closed, "{session:#?}");
        session.clone()
    }

    /// Waits for the queue to be empty (see [`PostfixLab::wait_queue_empty`]).
    #[track_caller]
    fn assert_queue_empties(&self) {
        assert_eq!(
            self.postfix.wait_queue_empty(LOG_WAIT),
            0,
            "{}",
            self.postfix.log()
        );
    }

    /// The server's record: exactly the safe probe's commands (EHLO, STARTTLS, EHLO, MAIL, RCPT,
    /// RSET, QUIT), never DATA.
    #[track_caller]
    fn assert_safe_session(&self, endpoint: &str, rcpt_accepted: u32) {
        let session = self.session(endpoint);
        for (command, want) in [
            ("ehlo", Some((2, 2))),
            ("starttls", Some((1, 1))),
            ("mail", Some((1, 1))),
            ("rcpt", Some((rcpt_accepted, 1))),
            ("data", None),
            ("bdat", None),
            ("rset", Some((1, 1))),
            ("quit", Some((1, 1))),
        ] {
            assert_eq!(
                session.count(command),
                want,
                "{endpoint} {command}: {session:#?}"
            );
        }
        assert!(session.tls.is_some(), "{session:#?}");
    }
}

/// The zone of [`TEST_DOMAIN`] with `mx` as its only MX, `mx` at 127.0.0.1, and SPF and DMARC
/// records that leave no critical finding.
fn zone(mx: &str) -> String {
    format!(
        "\
{TEST_DOMAIN} MX 0 {mx}
{mx} A 127.0.0.1
{TEST_DOMAIN} TXT \"v=spf1 ip4:192.0.2.10 -all\"
_dmarc.{TEST_DOMAIN} TXT \"v=DMARC1; p=reject\"
{TEST_HOSTNAME} A 127.0.0.1
"
    )
}

/// Relays every TCP connection made to `listen` to `to`, byte for byte, until dropped.
struct Forward {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Forward {
    fn start(listen: SocketAddr, to: SocketAddr) -> Forward {
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"));
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut into: TcpStream| {
                    thread::spawn(move || {
                        let _ = io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Write);
                    })
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                pipe(client, server);
                pipe(s2, c2);
            }
        });
        Forward { addr, stop }
    }

    /// A forwarder on 127.0.0.2 at the port number of `same_port_as`, relaying to `to`.
    fn second_host(same_port_as: u16, to: SocketAddr) -> Forward {
        Forward::start(SocketAddr::from(([127, 0, 0, 2], same_port_as)), to)
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag and closes the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// The position of each of `needles` in `haystack`, asserting they all occur in this order.
#[track_caller]
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} not found (in order) in:\n{haystack}"),
        }
    }
}

/// The finding of `id` in a JSON object with `findings`.
#[track_caller]
fn finding<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .expect("findings is an array")
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {:#}", report["findings"]))
}

/// The client lines (`C: ...`) of a JSON probe's transcript.
fn client_lines(probe: &Value) -> Vec<String> {
    probe["transcript"]
        .as_array()
        .expect("transcript is an array")
        .iter()
        .filter(|l| l["dir"] == "client")
        .map(|l| l["line"].as_str().expect("line is a string").to_owned())
        .collect()
}

#[test]
fn relay_test_reports_an_open_endpoint_with_its_transcript_and_sends_no_data() {
    let Some(rig) = Rig::one("open", Behaviour::Open) else {
        return;
    };
    let dns = Lab::start(&zone(ENDPOINT));
    let out = rig.relay_test(&dns, TEST_DOMAIN, "open", &[]);
    out.assert_code(1);
    let text = &out.stdout;
    assert!(text.starts_with("contoso.test: OPEN\n"), "{text}");
    assert!(
        text.contains(&format!("relay probe of {ENDPOINT} [127.0.0.1:")),
        "{text}"
    );
    assert!(text.contains("certificate valid"), "{text}");
    let rcpt = format!("C: RCPT TO:<postmaster@{TEST_DOMAIN}>");
    assert_in_order(
        text,
        &[
            &format!("probing {ENDPOINT} (the Microsoft 365 endpoint in the MX)"),
            "S: 220 ",
            &format!("C: EHLO {HELO}"),
            "C: STARTTLS",
            "S: 220 2.0.0 Ready to start TLS",
            &format!("C: EHLO {HELO}"),
            &format!("C: MAIL FROM:<postmaster@{TEST_DOMAIN}>"),
            "S: 250 2.1.0 Ok",
            &rcpt,
            "S: 250 2.1.5 Ok",
            "C: RSET",
            "C: QUIT",
            "RELAY-OPEN",
        ],
    );
    assert!(!text.contains("C: DATA"), "{text}");
    rig.assert_safe_session("open", 1);
    assert!(rig.postfix.discarded().is_empty(), "{}", rig.postfix.log());
    rig.assert_queue_empties();

    // The same test as JSON.
    let out = rig.relay_test(&dns, TEST_DOMAIN, "open", &["--format", "json"]);
    out.assert_code(1);
    let json = out.json();
    crate::docs_json::assert_relay_test_documented(&json);
    assert_eq!(json["domain"], TEST_DOMAIN);
    let relay = &json["relay"];
    assert_eq!(relay["verdict"], "open", "{relay:#}");
    assert_eq!(relay["target"], ENDPOINT, "{relay:#}");
    assert_eq!(relay["reply"], "250 2.1.5 Ok", "{relay:#}");
    let probes = relay["probes"].as_array().expect("probes");
    assert_eq!(probes.len(), 1, "{relay:#}");
    assert_eq!(probes[0]["host"], ENDPOINT);
    assert_eq!(probes[0]["data_sent"], false);
    assert_eq!(probes[0]["starttls_offered"], true);
    assert_eq!(
        probes[0]["tls"]["cert_valid"], true,
        "{:#}",
        probes[0]["tls"]
    );
    assert_eq!(
        client_lines(&probes[0]),
        [
            format!("EHLO {HELO}"),
            "STARTTLS".into(),
            format!("EHLO {HELO}"),
            format!("MAIL FROM:<postmaster@{TEST_DOMAIN}>"),
            format!("RCPT TO:<postmaster@{TEST_DOMAIN}>"),
            "RSET".into(),
            "QUIT".into(),
        ]
    );
    assert_eq!(finding_ids(&json), ["RELAY-OPEN"]);
    let open = finding(&json, "RELAY-OPEN");
    assert_eq!(open["severity"], "critical");
    assert!(
        open["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(ENDPOINT),
        "{open:#}"
    );
    let sessions = rig.postfix.wait_sessions("open", 2, LOG_WAIT);
    assert!(
        sessions.iter().all(|s| s.closed && !s.sent_data()),
        "{sessions:#?}"
    );
    assert!(rig.postfix.discarded().is_empty());
}

#[test]
fn relay_test_reports_a_blocking_endpoint_with_the_5_7_68_reply() {
    let Some(rig) = Rig::one("blocked", Behaviour::Blocked) else {
        return;
    };
    let dns = Lab::start(&zone(ENDPOINT));
    let out = rig.relay_test(&dns, TEST_DOMAIN, "blocked", &[]);
    out.assert_code(0);
    let text = &out.stdout;
    assert!(text.starts_with("contoso.test: BLOCKED\n"), "{text}");
    assert!(
        text.contains(&format!("deciding reply: {BLOCKED_REPLY}")),
        "{text}"
    );
    assert_in_order(
        text,
        &[
            &format!("C: RCPT TO:<postmaster@{TEST_DOMAIN}>"),
            &format!("S: {BLOCKED_REPLY}"),
            "C: RSET",
            "C: QUIT",
        ],
    );
    assert!(!text.contains("RELAY-"), "{text}");
    rig.assert_safe_session("blocked", 0);
    assert_eq!(rig.session("blocked").rejects, [BLOCKED_REPLY]);

    let out = rig.relay_test(&dns, TEST_DOMAIN, "blocked", &["--format", "json"]);
    out.assert_code(0);
    let json = out.json();
    assert_eq!(json["relay"]["verdict"], "blocked");
    assert_eq!(json["relay"]["reply"], BLOCKED_REPLY);
    assert_eq!(json["relay"]["target"], ENDPOINT);
    assert_eq!(finding_ids(&json), Vec::<String>::new());
}

#[test]
fn relay_test_reports_an_unknown_recipient_as_inconclusive() {
    let Some(rig) = Rig::one("unknown", Behaviour::UnknownRecipient) else {
        return;
    };
    let dns = Lab::start(&zone(ENDPOINT));
    let out = rig.relay_test(&dns, TEST_DOMAIN, "unknown", &["--format", "json"]);
    out.assert_code(3);
    let json = out.json();
    let relay = &json["relay"];
    assert_eq!(relay["verdict"], "inconclusive", "{relay:#}");
    assert_eq!(relay["reply"], UNKNOWN_RECIPIENT_REPLY, "{relay:#}");
    assert_eq!(finding_ids(&json), ["RELAY-INCONCLUSIVE"]);
    assert_eq!(finding(&json, "RELAY-INCONCLUSIVE")["severity"], "info");
    rig.assert_safe_session("unknown", 0);

    let out = rig.relay_test(&dns, TEST_DOMAIN, "unknown", &[]);
    out.assert_code(3);
    assert!(
        out.stdout.starts_with("contoso.test: INCONCLUSIVE\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("RELAY-INCONCLUSIVE"), "{}", out.stdout);
}

#[test]
fn send_test_message_delivers_one_message_naming_the_operator() {
    let Some(rig) = Rig::one("open", Behaviour::Open) else {
        return;
    };
    let dns = Lab::start(&zone(ENDPOINT));
    let out = rig.relay_test(
        &dns,
        TEST_DOMAIN,
        "open",
        &["--send-test-message", "--operator", "MSP Security Team"],
    );
    out.assert_code(1);
    assert!(out.stdout.contains("C: DATA"), "{}", out.stdout);

    let discarded = rig.postfix.wait_discarded(1, LOG_WAIT);
    let [message] = discarded.as_slice() else {
        panic!(
            "one message expected: {discarded:#?}\n{}",
            rig.postfix.log()
        );
    };
    let address = format!("postmaster@{TEST_DOMAIN}");
    assert_eq!(message.to, address);
    assert_eq!(message.from.as_deref(), Some(address.as_str()));
    let label = message
        .headers
        .iter()
        .find(|h| h.starts_with("X-Mailaudit-Test:"))
        .unwrap_or_else(|| panic!("no X-Mailaudit-Test header: {message:#?}"));
    assert!(label.contains("MSP Security Team"), "{label}");
    assert!(label.contains("security test"), "{label}");
    let session = rig.session("open");
    assert_eq!(session.count("data"), Some((1, 1)), "{session:#?}");
    rig.assert_queue_empties();
    // Still exactly one, a moment later.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(rig.postfix.discarded().len(), 1);
}

#[test]
fn without_send_test_message_no_message_is_delivered() {
    let Some(rig) = Rig::one("open", Behaviour::Open) else {
        return;
    };
    let dns = Lab::start(&zone(ENDPOINT));
    // The operator alone changes nothing: no DATA.
    let out = rig.relay_test(
        &dns,
        TEST_DOMAIN,
        "open",
        &["--operator", "MSP Security Team"],
    );
    out.assert_code(1);
    rig.assert_safe_session("open", 1);
    thread::sleep(Duration::from_millis(300));
    assert!(rig.postfix.discarded().is_empty(), "{}", rig.postfix.log());
    rig.assert_queue_empties();
}

#[test]
fn from_and_to_are_completed_with_the_domain_or_taken_as_given() {
    let Some(rig) = Rig::one("open", Behaviour::Open) else {
        return;
    };
    let dns = Lab::start(&zone(ENDPOINT));
    for (from, to, mail, rcpt) in [
        (
            Some("ceo"),
            Some("alerts"),
            "MAIL FROM:<ceo@contoso.test>",
            "RCPT TO:<alerts@contoso.test>",
        ),
        (
            Some("finance@contoso.test"),
            Some("helpdesk@contoso.test"),
            "MAIL FROM:<finance@contoso.test>",
            "RCPT TO:<helpdesk@contoso.test>",
        ),
        // The sender defaults to the recipient.
        (
            None,
            Some("alerts"),
            "MAIL FROM:<alerts@contoso.test>",
            "RCPT TO:<alerts@contoso.test>",
        ),
        (
            Some("ceo"),
            None,
            "MAIL FROM:<ceo@contoso.test>",
            "RCPT TO:<postmaster@contoso.test>",
        ),
    ] {
        let mut extra = vec!["--format", "json"];
        if let Some(f) = from {
            extra.extend(["--from", f]);
        }
        if let Some(t) = to {
            extra.extend(["--to", t]);
        }
        let out = rig.relay_test(&dns, TEST_DOMAIN, "open", &extra);
        out.assert_code(1);
        let json = out.json();
        let lines = client_lines(&json["relay"]["probes"][0]);
        assert!(lines.iter().any(|l| l == mail), "{from:?}: {lines:?}");
        assert!(lines.iter().any(|l| l == rcpt), "{to:?}: {lines:?}");
    }
}

#[test]
fn bad_certificates_are_tls_cert_invalid_and_the_verdict_is_still_reached() {
    let pki = pki();
    let Some(rig) = Rig::start(
        &[TEST_DOMAIN],
        vec![
            Endpoint::new("expired", Behaviour::Open).with_tls(pki.expired.clone()),
            Endpoint::new("mismatched", Behaviour::Open).with_tls(pki.mismatched.clone()),
            Endpoint::new("plain", Behaviour::Blocked),
        ],
    ) else {
        return;
    };
    let dns = Lab::start(&zone(ENDPOINT));
    for (endpoint, why) in [
        ("expired", "expired"),
        ("mismatched", &*format!("not valid for name {ENDPOINT}")),
    ] {
        let out = rig.relay_test(&dns, TEST_DOMAIN, endpoint, &["--format", "json"]);
        out.assert_code(1);
        let json = out.json();
        crate::docs_json::assert_relay_test_documented(&json);
        assert_eq!(json["relay"]["verdict"], "open", "{endpoint}: {json:#}");
        let tls = &json["relay"]["probes"][0]["tls"];
        assert_eq!(tls["cert_valid"], false, "{endpoint}: {tls:#}");
        let ids = finding_ids(&json);
        assert!(ids.contains(&"TLS-CERT-INVALID".to_string()), "{ids:?}");
        assert!(ids.contains(&"RELAY-OPEN".to_string()), "{ids:?}");
        let detail = finding(&json, "TLS-CERT-INVALID")["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains(why), "{endpoint}: {detail}");
        assert!(detail.contains(ENDPOINT), "{endpoint}: {detail}");
        rig.assert_safe_session(endpoint, 1);

        // The text report says so too.
        let out = rig.relay_test(&dns, TEST_DOMAIN, endpoint, &[]);
        out.assert_code(1);
        assert!(
            out.stdout.contains("certificate INVALID: "),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("TLS-CERT-INVALID"), "{}", out.stdout);
    }

    // No STARTTLS at all: the envelope goes in the clear, the verdict is still reached.
    let out = rig.relay_test(&dns, TEST_DOMAIN, "plain", &["--format", "json"]);
    out.assert_code(0);
    let json = out.json();
    assert_eq!(json["relay"]["verdict"], "blocked", "{json:#}");
    let probe = &json["relay"]["probes"][0];
    assert_eq!(probe["starttls_offered"], false, "{probe:#}");
    assert!(probe["tls"].is_null(), "{probe:#}");
    assert_eq!(finding_ids(&json), ["STARTTLS-MISSING"]);
    assert!(
        finding(&json, "STARTTLS-MISSING")["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(ENDPOINT),
        "{json:#}"
    );
    let session = rig.session("plain");
    assert_eq!(session.count("starttls"), None, "{session:#?}");
    assert!(!session.sent_data(), "{session:#?}");
}

#[test]
fn behind_a_gateway_the_gateway_and_the_given_microsoft_endpoint_are_probed() {
    let Some(rig) = Rig::start(
        &[TEST_DOMAIN],
        vec![
            Endpoint::new("gateway", Behaviour::Blocked).with_tls(pki().valid.clone()),
            Endpoint::new("tenant", Behaviour::Open).with_tls(pki().valid.clone()),
        ],
    ) else {
        return;
    };
    // The gateway on 127.0.0.1 at its own port; the tenant endpoint on 127.0.0.2 at the same
    // port number, forwarded to the tenant endpoint.
    let port = rig.port("gateway");
    let _forward = Forward::second_host(port, rig.postfix.addr("tenant").expect("tenant"));
    let dns = Lab::start(&format!(
        "{}{ENDPOINT} A 127.0.0.2\n",
        zone(GATEWAY).replace(&format!("{ENDPOINT} A 127.0.0.1\n"), "")
    ));

    // The gateway alone: it blocks.
    let out = rig.relay_test(&dns, TEST_DOMAIN, "gateway", &["--format", "json"]);
    out.assert_code(0);
    let json = out.json();
    let relay = &json["relay"];
    assert_eq!(relay["verdict"], "blocked", "{relay:#}");
    assert_eq!(relay["target"], GATEWAY, "{relay:#}");
    let probes = relay["probes"].as_array().expect("probes");
    assert_eq!(probes.len(), 1, "{relay:#}");
    assert_eq!(probes[0]["host"], GATEWAY);
    assert!(
        probes[0]["transcript"][0]["line"]
            .as_str()
            .unwrap_or_default()
            .contains("the gateway MX"),
        "{:#}",
        probes[0]["transcript"][0]
    );
    assert_eq!(rig.postfix.wait_sessions("gateway", 1, LOG_WAIT).len(), 1);
    assert!(
        rig.postfix
            .sessions()
            .iter()
            .all(|s| s.endpoint != "tenant")
    );

    // With the tenant's endpoint: both are probed, and the open endpoint decides.
    let out = rig.relay_test(
        &dns,
        TEST_DOMAIN,
        "gateway",
        &["--m365-endpoint", ENDPOINT, "--format", "json"],
    );
    out.assert_code(1);
    let json = out.json();
    let relay = &json["relay"];
    assert_eq!(relay["verdict"], "open", "{relay:#}");
    assert_eq!(relay["target"], ENDPOINT, "{relay:#}");
    let probes = relay["probes"].as_array().expect("probes");
    let summary: Vec<(&str, &str, bool)> = probes
        .iter()
        .map(|p| {
            (
                p["host"].as_str().unwrap_or_default(),
                p["verdict"].as_str().unwrap_or_default(),
                p["relay"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(GATEWAY, "blocked", true), (ENDPOINT, "open", true)],
        "{relay:#}"
    );
    assert_eq!(
        probes[1]["addr"].as_str().unwrap_or_default(),
        format!("127.0.0.2:{port}")
    );
    assert_eq!(finding_ids(&json), ["RELAY-OPEN"]);
    assert!(
        finding(&json, "RELAY-OPEN")["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(ENDPOINT),
        "{json:#}"
    );
    // Each endpoint saw exactly the safe probe this time.
    let tenant = rig.session("tenant");
    assert!(!tenant.sent_data(), "{tenant:#?}");
    assert_eq!(tenant.count("rcpt"), Some((1, 1)), "{tenant:#?}");
    let gateway = rig.postfix.wait_sessions("gateway", 2, LOG_WAIT);
    assert!(
        gateway.iter().all(|s| s.closed && !s.sent_data()),
        "{gateway:#?}"
    );
    assert!(rig.postfix.discarded().is_empty());
}

/// The two-domain zone: `contoso.test` on 127.0.0.1 (open), `fabrikam.test` on 127.0.0.2
/// (forwarded to the blocking endpoint).
fn two_domain_zone() -> String {
    format!(
        "{}\
{FABRIKAM} MX 0 {FABRIKAM_ENDPOINT}
{FABRIKAM_ENDPOINT} A 127.0.0.2
{FABRIKAM} TXT \"v=spf1 ip4:192.0.2.10 -all\"
_dmarc.{FABRIKAM} TXT \"v=DMARC1; p=reject\"
",
        zone(ENDPOINT)
    )
}

#[test]
fn audit_relay_test_adds_the_relay_section_and_lowers_the_score() {
    let Some(rig) = Rig::start(
        &[TEST_DOMAIN, FABRIKAM],
        vec![
            Endpoint::new("open", Behaviour::Open).with_tls(pki().valid.clone()),
            Endpoint::new("blocked", Behaviour::Blocked).with_tls(pki().valid.clone()),
        ],
    ) else {
        return;
    };
    let port = rig.port("open");
    let _forward = Forward::second_host(port, rig.postfix.addr("blocked").expect("blocked"));
    let dns = Lab::start(&two_domain_zone());
    let audit = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "--nameserver",
            dns.addr(),
            "audit",
            TEST_DOMAIN,
            FABRIKAM,
            "--format",
            "json",
            "--fail-on",
            "critical",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    };

    // Without the relay test: nothing critical, no SMTP connection, relay not tested.
    let before = audit(&[]);
    before.assert_code(0);
    let before = before.json();
    for d in [TEST_DOMAIN, FABRIKAM] {
        assert_eq!(domain(&before, d)["relay"]["verdict"], "not_tested");
    }
    assert!(rig.postfix.sessions().is_empty(), "{}", rig.postfix.log());

    let mut extra = vec!["--relay-test".to_string()];
    extra.extend(rig.smtp_args("open"));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let after = audit(&extra);
    after.assert_code(1);
    let after = after.json();
    crate::docs_json::assert_report_documented(&after);

    let contoso = domain(&after, TEST_DOMAIN);
    assert_eq!(
        contoso["relay"]["verdict"], "open",
        "{:#}",
        contoso["relay"]
    );
    assert_eq!(contoso["relay"]["target"], ENDPOINT);
    assert_eq!(contoso["relay"]["reply"], "250 2.1.5 Ok");
    assert!(finding_ids(contoso).contains(&"RELAY-OPEN".to_string()));
    // Most severe first: the critical RELAY-OPEN leads.
    assert_eq!(contoso["findings"][0]["id"], "RELAY-OPEN", "{contoso:#}");
    let fabrikam = domain(&after, FABRIKAM);
    assert_eq!(
        fabrikam["relay"]["verdict"], "blocked",
        "{:#}",
        fabrikam["relay"]
    );
    assert_eq!(fabrikam["relay"]["target"], FABRIKAM_ENDPOINT);
    assert_eq!(fabrikam["relay"]["reply"], BLOCKED_REPLY);
    let relay_ids = |d: &Value| {
        finding_ids(d)
            .into_iter()
            .filter(|id| id.starts_with("RELAY-"))
            .collect::<Vec<_>>()
    };
    assert_eq!(relay_ids(fabrikam), Vec::<String>::new());

    // The score: lowered for the open domain only.
    let score = |report: &Value, d: &str| {
        domain(report, d)["score"]
            .as_u64()
            .unwrap_or_else(|| panic!("{d} has a score"))
    };
    assert!(
        score(&after, TEST_DOMAIN) < score(&before, TEST_DOMAIN),
        "{} -> {}",
        score(&before, TEST_DOMAIN),
        score(&after, TEST_DOMAIN)
    );
    assert_eq!(score(&after, FABRIKAM), score(&before, FABRIKAM));

    // Each endpoint saw one safe session.
    rig.assert_safe_session("open", 1);
    rig.assert_safe_session("blocked", 0);
    assert!(rig.postfix.discarded().is_empty());
}

/// The test of a refused port uses its own loopback address, so that no listener started by a
/// concurrent test (Postfix and the servers bind 127.0.0.1, the forwarders 127.0.0.2) can take
/// the port between its release and the probe.
const REFUSING: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

#[test]
fn a_refused_port_is_inconclusive_within_the_timeout() {
    let dns = Lab::start(&zone(ENDPOINT).replace("A 127.0.0.1", &format!("A {REFUSING}")));
    let port = {
        let listener = TcpListener::bind((REFUSING, 0)).expect("bind a loopback TCP port");
        listener.local_addr().expect("local address").port()
    };
    let out = run(&[
        "--nameserver",
        dns.addr(),
        "relay-test",
        TEST_DOMAIN,
        "--smtp-port",
        &port.to_string(),
        "--helo",
        HELO,
        "--smtp-timeout",
        "3",
        "--format",
        "json",
    ]);
    out.assert_code(3);
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    let json = out.json();
    let relay = &json["relay"];
    assert_eq!(relay["verdict"], "inconclusive", "{relay:#}");
    assert_eq!(relay["target"], ENDPOINT, "{relay:#}");
    let reason = relay["reason"].as_str().unwrap_or_default().to_lowercase();
    assert!(reason.contains("connect"), "{reason}");
    assert!(relay["reply"].is_null(), "{relay:#}");
    assert_eq!(relay["probes"][0]["stage"], "connect", "{relay:#}");
    assert_eq!(relay["probes"][0]["addr"], format!("{REFUSING}:{port}"));
    assert_eq!(finding_ids(&json), ["RELAY-INCONCLUSIVE"]);
}

#[test]
fn a_null_mx_domain_has_nothing_to_test() {
    let dns = Lab::start("parked.test MX 0 .\n");
    for format in ["text", "json"] {
        let out = run(&[
            "--nameserver",
            dns.addr(),
            "relay-test",
            "parked.test",
            "--smtp-port",
            "9",
            "--helo",
            HELO,
            "--format",
            format,
        ]);
        out.assert_code(2);
        assert!(out.stderr.contains("null MX"), "{}", out.stderr);
        if format == "json" {
            let json = out.json();
            assert_eq!(json["relay"]["verdict"], "not_tested");
            assert!(
                json["relay"]["probes"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
            );
        } else {
            assert!(out.stdout.contains("NOT_TESTED"), "{}", out.stdout);
        }
    }
}
