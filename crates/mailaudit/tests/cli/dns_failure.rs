//! A DNS failure (SERVFAIL, timeout) is reported as DNS-LOOKUP-FAILED, never as a missing
//! record, and never stops the run. A resolver that does not answer at all fails the run at
//! once (exit 2) with an error naming it; a run in which not one look-up got an answer exits 2.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::common::{Lab, Silent, domain, domains, finding_ids, run};

/// A resolver that is up but resolves nothing: a UDP socket on 127.0.0.1 that answers any
/// question for the root name (the resolver check's `. SOA`) with NOERROR and no records, and
/// never answers anything else (as a forwarder whose upstream is unreachable might), or
/// answers everything with one RCODE ([`RootOnly::answering`]).
pub(crate) struct RootOnly {
    addr: SocketAddr,
    /// Questions for other names received (and left unanswered).
    others: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RootOnly {
    pub(crate) fn start() -> RootOnly {
        RootOnly::spawn(None)
    }

    /// Answers every question, the root's too, with `rcode` and no records.
    pub(crate) fn answering(rcode: u8) -> RootOnly {
        RootOnly::spawn(Some(rcode))
    }

    fn spawn(all: Option<u8>) -> RootOnly {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local address");
        let others = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (o, st) = (others.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                // Header (12 octets), then the question: labels up to a zero octet (the root
                // name is that octet alone), type and class.
                let mut end = 12;
                while end < len && buf[end] != 0 {
                    end += usize::from(buf[end]) + 1;
                }
                let end = end + 5;
                if end > len {
                    continue;
                }
                let rcode = match (all, buf[12] == 0) {
                    (Some(rcode), root) => {
                        if !root {
                            o.fetch_add(1, Ordering::Relaxed);
                        }
                        rcode
                    }
                    (None, true) => 0,
                    (None, false) => {
                        o.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let mut reply = buf[..end].to_vec();
                reply[2] = 0x80 | (buf[2] & 0x01); // QR, RD echoed
                reply[3] = 0x80 | rcode; // RA
                reply[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
                let _ = socket.send_to(&reply, peer);
            }
        });
        RootOnly {
            addr,
            others,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Questions for names other than the root received so far.
    pub(crate) fn others(&self) -> u64 {
        self.others.load(Ordering::Relaxed)
    }
}

impl Drop for RootOnly {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A loopback UDP port with nothing listening on it.
fn closed_port() -> (mailaudit_lab::PortLease, String) {
    // A leased port, held by the caller: nothing listens on it, and no other test's socket can
    // take it meanwhile (a port bound and released here could be handed to one).
    let lease = mailaudit_lab::lease_ports(1)
        .expect("a leased port")
        .remove(0);
    let addr = format!("127.0.0.1:{}", lease.port());
    (lease, addr)
}

/// Finding IDs that claim something is absent: never raised from a look-up that failed.
const ABSENCE: [&str; 5] = [
    "-MISSING",
    "-NOT-FOUND",
    "-NOT-ENABLED",
    "-UNRESOLVABLE",
    "-PARTIAL",
];

fn findings_of<'a>(d: &'a Value, id: &str) -> Vec<&'a Value> {
    d["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["id"] == id)
        .collect()
}

#[test]
fn dmarc_servfail_is_a_lookup_failure_not_a_missing_record() {
    let lab = Lab::start(
        r#"
        servfail.test          MX   0 servfail-test.mail.protection.outlook.com
        servfail.test          TXT  "v=spf1 include:spf.protection.outlook.com -all"
        _dmarc.servfail.test   SERVFAIL
        spf.protection.outlook.com TXT "v=spf1 ip4:40.92.0.0/15 -all"
        "#,
    );
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--format",
        "json",
        "servfail.test",
    ]);
    out.assert_code(0);
    let report = out.json();
    let d = domain(&report, "servfail.test");
    let ids = finding_ids(d);
    assert!(!ids.contains(&"DMARC-MISSING".to_string()), "{ids:?}");
    let failed = findings_of(d, "DNS-LOOKUP-FAILED");
    assert!(
        failed.iter().any(|f| f["area"] == "dmarc"),
        "a DNS-LOOKUP-FAILED finding in area dmarc: {ids:?}"
    );
    let dmarc_failure = failed
        .iter()
        .find(|f| f["area"] == "dmarc")
        .expect("dmarc failure");
    assert_eq!(dmarc_failure["severity"], "info");
    assert!(
        dmarc_failure["detail"]
            .as_str()
            .is_some_and(|s| s.contains("_dmarc.servfail.test")),
        "the detail names the record: {dmarc_failure}"
    );
    // No other DMARC verdict is given on a record that could not be read.
    assert!(
        ids.iter().all(|id| !id.starts_with("DMARC-")),
        "DMARC verdict withheld: {ids:?}"
    );
    assert_eq!(d["dmarc"]["policy"], Value::Null);
    // SPF was read normally.
    assert_eq!(d["spf"]["all"], "-all");
}

/// The resolver passes the check but never answers a question about a domain: the run still
/// finishes, every check that needed DNS reports a lookup failure rather than a missing record,
/// and the run exits 2 saying that no look-up got an answer.
#[test]
fn unanswered_lookups_are_lookup_failures_never_missing() {
    let silent = RootOnly::start();
    let ns = silent.addr();
    let out = run(&[
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--format",
        "json",
        "contoso.example",
        "fabrikam.example",
    ]);
    assert!(
        out.elapsed.as_secs() < 30,
        "the run finished in {:?}",
        out.elapsed
    );
    out.assert_code(2);
    assert!(
        out.stderr.contains("every DNS look-up failed (2 domains"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("no result is trustworthy"),
        "{}",
        out.stderr
    );
    assert!(silent.others() > 0, "the domains were asked about");
    let report = out.json();
    assert_eq!(domains(&report), ["contoso.example", "fabrikam.example"]);
    for d in report.as_array().expect("array") {
        let ids = finding_ids(d);
        assert!(
            ids.contains(&"DNS-LOOKUP-FAILED".to_string()),
            "{}: {ids:?}",
            d["domain"]
        );
        for id in &ids {
            assert!(
                id == "DNS-LOOKUP-FAILED",
                "{}: only lookup failures can be known, got {id}",
                d["domain"]
            );
        }
        let areas: Vec<&str> = d["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["area"].as_str())
            .collect();
        for area in ["spf", "dmarc"] {
            assert!(areas.contains(&area), "{}: {areas:?}", d["domain"]);
        }
    }
}

/// The same through the table: no "No DMARC"/"No SPF" text for a domain that could not be read.
#[test]
fn unanswered_lookups_table_says_lookup_failed() {
    let silent = RootOnly::start();
    let ns = silent.addr();
    let out = run(&[
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--color",
        "never",
        "contoso.example",
    ]);
    out.assert_code(2);
    assert!(out.stdout.contains("DNS-LOOKUP-FAILED"), "{}", out.stdout);
    assert!(!out.stdout.contains("-MISSING"), "{}", out.stdout);
    assert!(
        out.stdout.contains("with failed DNS look-ups"),
        "the summary counts it: {}",
        out.stdout
    );
}

/// SERVFAIL and REFUSED on each record the audit reads, one at a time, on a domain that is
/// otherwise the sample's hardened contoso-legal.example: never a *-MISSING finding.
#[test]
fn each_failing_name_is_a_lookup_failure() {
    let names = [
        "contoso-legal.example",
        "_dmarc.contoso-legal.example",
        "selector1._domainkey.contoso-legal.example",
        "_mta-sts.contoso-legal.example",
        "_smtp._tls.contoso-legal.example",
    ];
    for behaviour in ["SERVFAIL", "REFUSED", "TIMEOUT"] {
        for name in names {
            let (mut zone, _) = mailaudit_lab::sample_fleet();
            zone.remove(name);
            zone.merge(
                mailaudit_lab::Zone::parse(&format!("{name} {behaviour}")).expect("zone line"),
            );
            let lab = Lab::start(&zone.to_string());
            let out = run(&[
                "audit",
                "--nameserver",
                lab.addr(),
                "--timeout",
                "0.3",
                "--retries",
                "0",
                "--format",
                "json",
                "contoso-legal.example",
            ]);
            out.assert_code(0);
            let report = out.json();
            let ids = finding_ids(&report[0]);
            assert!(
                ids.contains(&"DNS-LOOKUP-FAILED".to_string()),
                "{behaviour} at {name}: {ids:?}"
            );
            for id in &ids {
                assert!(
                    !ABSENCE.iter().any(|suffix| id.ends_with(suffix)),
                    "{behaviour} at {name}: {id} in {ids:?}"
                );
            }
        }
    }
}

/// A domain whose every look-up failed has not been audited: it must not look hardened.
#[test]
fn unreadable_domain_does_not_score_100() {
    let silent = RootOnly::start();
    let ns = silent.addr();
    let out = run(&[
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--format",
        "json",
        "contoso.example",
    ]);
    let report = out.json();
    assert_ne!(report[0]["score"], 100, "{}", report[0]);
}

/// When the MX look-up fails, the provider is unknown: neither the JSON nor the table may claim
/// the domain has no MX.
#[test]
fn failed_mx_is_not_reported_as_no_mx() {
    let silent = RootOnly::start();
    let ns = silent.addr();
    let args = [
        "audit",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--retries",
        "0",
        "--color",
        "never",
        "contoso.example",
    ];
    let table = run(&args);
    assert!(!table.stdout.contains("no MX"), "{}", table.stdout);
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let report = run(&json_args).json();
    assert_ne!(report[0]["provider"], "none", "{}", report[0]);
}

/// A `--nameserver` that does not answer at all (nothing listening, or a socket that never
/// replies) fails the run before any domain is audited: exit 2, an error naming the address,
/// no report, and in seconds (the check waits 2 s at most), not after every look-up of every
/// domain has timed out (99 s for one domain before).
#[test]
fn dead_resolver_fails_fast_and_names_it() {
    let silent = Silent::bind();
    let (_lease, closed) = closed_port();
    for (ns, why) in [
        (silent.addr(), "no reply to a test query within 2 s"),
        (closed.clone(), "connection refused"),
    ] {
        for format in ["table", "json"] {
            let out = run(&[
                "audit",
                "--nameserver",
                &ns,
                "--no-store",
                "--format",
                format,
                "contoso.test",
            ]);
            out.assert_code(2);
            let expected = format!("mailaudit: error: the resolver {ns} does not answer (");
            assert!(out.stderr.contains(&expected), "{}", out.stderr);
            assert!(out.stderr.contains(why), "{}", out.stderr);
            assert!(out.stderr.contains("check --nameserver"), "{}", out.stderr);
            assert!(out.stdout.is_empty(), "no report: {}", out.stdout);
            assert!(
                out.elapsed < Duration::from_secs(20),
                "failed fast: {:?}",
                out.elapsed
            );
        }
    }
    // --timeout shorter than the check's 2 s: the check waits no longer than the run would.
    let out = run(&[
        "audit",
        "--nameserver",
        &silent.addr(),
        "--timeout",
        "0.5",
        "--retries",
        "0",
        "--no-store",
        "contoso.test",
    ]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("no reply to a test query within 0.5 s"),
        "{}",
        out.stderr
    );
}

/// With several resolvers, each one that does not answer is named, and the one that answers
/// is not.
#[test]
fn each_dead_resolver_among_several_is_named() {
    let lab = Lab::start("contoso.test MX 10 mx.contoso.test\n");
    let (_lease, dead) = closed_port();
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--nameserver",
        &dead,
        "--no-store",
        "contoso.test",
    ]);
    out.assert_code(2);
    assert!(out.stderr.contains(&dead), "{}", out.stderr);
    assert!(!out.stderr.contains(lab.addr()), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// Every command that does DNS checks its resolver first: relay-test, spf-eval and the fresh
/// audit of `guide`.
#[test]
fn every_dns_command_checks_the_resolver() {
    let (_lease, dead) = closed_port();
    let db = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", db.path().join("store.db").display());
    for args in [
        vec!["relay-test", "contoso.test"],
        vec![
            "spf-eval",
            "--ip",
            "192.0.2.10",
            "--sender",
            "user@contoso.test",
        ],
        vec!["guide", "contoso.test", "--db", &url],
    ] {
        let mut args = args.clone();
        args.extend(["--nameserver", &dead]);
        let out = run(&args);
        out.assert_code(2);
        assert!(
            out.stderr
                .contains(&format!("the resolver {dead} does not answer")),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
}

/// A due schedule with a dead resolver: `schedule run` fails at once and the schedule stays
/// due, so the next run with a working resolver audits.
#[test]
fn schedule_run_with_a_dead_resolver_keeps_the_schedule_due() {
    let lab = Lab::start("sched.test MX 10 mx.sched.test\nmx.sched.test A 192.0.2.25\n");
    let (_lease, dead) = closed_port();
    let db = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", db.path().join("store.db").display());
    run(&["domain", "add", "sched.test", "--db", &url]).assert_code(0);
    run(&["schedule", "set", "--fleet", "--every", "1d", "--db", &url]).assert_code(0);
    // Paused, nothing is due: the resolver is not even asked.
    run(&["schedule", "pause", "--fleet", "--db", &url]).assert_code(0);
    run(&["schedule", "run", "--db", &url, "--nameserver", &dead]).assert_code(0);
    run(&["schedule", "resume", "--fleet", "--db", &url]).assert_code(0);
    let out = run(&["schedule", "run", "--db", &url, "--nameserver", &dead]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains(&format!("the resolver {dead} does not answer")),
        "{}",
        out.stderr
    );
    let out = run(&["schedule", "run", "--db", &url, "--nameserver", lab.addr()]);
    out.assert_code(0);
    assert!(out.stdout.contains("1 schedules run"), "{}", out.stdout);
    assert!(lab.query_count() > 1, "audited");
}

/// A resolver that answers the check with REFUSED is up: the run goes on (each look-up is then
/// a DNS-LOOKUP-FAILED), with a warning saying what REFUSED means, and exits 2 because no
/// look-up got an answer.
#[test]
fn a_refusing_resolver_is_explained() {
    let refusing = RootOnly::answering(5);
    let out = run(&[
        "audit",
        "--nameserver",
        &refusing.addr(),
        "--no-store",
        "--format",
        "json",
        "contoso.test",
    ]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(&format!(
            "warning: the resolver {} answered REFUSED to a test query",
            refusing.addr()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("every DNS look-up failed (1 domain"),
        "{}",
        out.stderr
    );
    assert!(refusing.others() > 0);
    assert!(
        out.stderr
            .contains("does not resolve names for this machine"),
        "{}",
        out.stderr
    );
    let report = out.json();
    assert!(
        finding_ids(&report[0]).contains(&"DNS-LOOKUP-FAILED".to_string()),
        "{report}"
    );
}
