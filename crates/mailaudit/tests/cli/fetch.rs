//! `mailaudit reports fetch` against a real Dovecot on loopback (`mailaudit_lab::dovecot`):
//! every sample of `testdata/reports` delivered as a mail message (the `.eml` samples as they
//! are, the others attached in base64 the way reporters send them), fetched and stored with the
//! same figures per kind as `reports ingest` stores from the files; a second fetch downloads
//! nothing (Dovecot's own logout line counts the bodies it sent); UIDVALIDITY changes; TLS with
//! a private CA, plaintext refused, bad password; and `--watch` picking up new messages across a
//! dropped connection and a server restart, without losing or duplicating a report; with IDLE
//! (RFC 2177) a report delivered while the watcher waits is stored within seconds although
//! `--interval` is 300 s, and with `--no-idle` it is not. OAuth 2.0
//! (the Exchange Online way): tokens from the lab's authorization server
//! (`mailaudit_lab::oauth::LabOAuth`, client credentials grant over HTTPS with a lab CA) checked
//! by Dovecot's `oauth2` password database through the lab's introspection endpoint; a bad
//! client secret; a token renewed before it expires and a revoked one replaced under `--watch`;
//! a token given in an environment variable.
//!
//! Needs Dovecot (`scripts/install-test-deps.sh`); set `MAILAUDIT_SKIP_DOVECOT=1` to skip these
//! on a machine without it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailaudit_lab::dovecot::{DovecotConfig, DovecotLab};
use mailaudit_lab::oauth::{LabOAuth, OAuthLabConfig};
use mailaudit_lab::postfix::TlsIdentity;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/reports");
const USER: &str = "dmarc@contoso.test";
const PASSWORD: &str = "Fetch-Secret-42";
/// Nothing here resolves a name (every URL holds an IP address); should anything try, it asks
/// the discard port of loopback, never a public resolver.
const NAMESERVER: &str = "127.0.0.1:9";

fn lab(tls: Option<TlsIdentity>) -> Option<DovecotLab> {
    let mut config = DovecotConfig::new(USER, PASSWORD);
    if let Some(t) = tls {
        config = config.with_tls(t);
    }
    mailaudit_lab::or_skip(DovecotLab::start(&config), "MAILAUDIT_SKIP_DOVECOT")
}

fn imap_url(scheme: &str, addr: std::net::SocketAddr, mailbox: &str) -> String {
    format!("{scheme}://{}@{addr}/{mailbox}", USER.replace('@', "%40"))
}

/// The sample files (not SOURCE.md and NOTICE), in name order.
fn samples() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("samples directory")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("SOURCE.md" | "NOTICE")
            ) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(SAMPLES), &mut out);
    out
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, b)| n | (u32::from(*b) << (16 - 8 * k)));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `file` as a reporter mails it: an `.eml` as it is, anything else attached in base64 to a
/// short multipart message.
fn as_message(file: &Path, n: usize) -> Vec<u8> {
    let bytes = std::fs::read(file).expect("sample");
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 name");
    if name.ends_with(".eml") {
        return bytes;
    }
    let media = if name.ends_with(".gz") {
        "application/gzip"
    } else if name.ends_with(".zip") {
        "application/zip"
    } else if name.ends_with(".json") {
        "application/tlsrpt+json"
    } else {
        "text/xml"
    };
    format!(
        "From: noreply-reports@reporter.example\r\nTo: {USER}\r\n\
         Subject: Report {n} for example.com\r\nMessage-ID: <sample-{n}@reporter.example>\r\n\
         Date: Thu, 28 Nov 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"sample-boundary\"\r\n\r\n\
         --sample-boundary\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is a report from the sample set.\r\n\
         --sample-boundary\r\nContent-Type: {media}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--sample-boundary--\r\n",
        base64(&bytes)
    )
    .into_bytes()
}

/// Reports stored in the SQLite store at `db`, by kind, and their sources.
fn stored(db: &str) -> (BTreeMap<String, usize>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s = mailaudit_store::open(Some(db)).await.expect("open store");
        let reports = s.reports(None, 10_000).await.expect("reports");
        s.close().await;
        let mut by_kind = BTreeMap::new();
        for r in &reports {
            *by_kind.entry(r.kind.to_string()).or_insert(0) += 1;
        }
        (by_kind, reports.into_iter().map(|r| r.source).collect())
    })
}

fn command(args: &[&str], password: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailaudit"));
    cmd.args(args)
        .args(["--nameserver", NAMESERVER])
        .env_remove("MAILAUDIT_DB")
        .env_remove("MAILAUDIT_IMAP_PASSWORD")
        .env_remove("MAILAUDIT_OAUTH2_CLIENT_SECRET")
        .env("XDG_DATA_HOME", crate::common::data_home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = password {
        cmd.env("MAILAUDIT_IMAP_PASSWORD", p);
    }
    cmd
}

/// Runs `reports fetch` to completion (60 s at most).
fn fetch(args: &[&str], password: Option<&str>) -> (i32, String, String) {
    fetch_with(args, password, &[])
}

/// The same with more environment variables.
fn fetch_with(
    args: &[&str],
    password: Option<&str>,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut all = vec!["reports", "fetch"];
    all.extend_from_slice(args);
    let mut cmd = command(&all, password);
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("mailaudit starts");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("reports fetch {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (out_t.join().expect("stdout"), err_t.join().expect("stderr"));
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(PASSWORD),
            "the password was printed:\n{text}"
        );
        for (name, value) in env {
            assert!(!text.contains(value), "{name} was printed:\n{text}");
        }
    }
    (status.code().expect("exit code"), stdout, stderr)
}

/// Dovecot's logout lines (`Logged out in=.. out=.. ... body_count=N body_bytes=M`), in order:
/// how many message bodies each session sent.
fn bodies_sent(lab: &DovecotLab) -> Vec<u64> {
    lab.log()
        .lines()
        .filter(|l| l.contains("Logged out") || l.contains("Disconnected"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("body_count="))
                .and_then(|n| n.trim_end_matches(',').parse().ok())
        })
        .collect()
}

fn wait_for_log(lab: &DovecotLab, sessions: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sent = bodies_sent(lab);
        if sent.len() >= sessions || Instant::now() > deadline {
            return sent;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn fetch_stores_every_sample_as_ingest_does_then_downloads_nothing() {
    let Some(lab) = lab(None) else { return };
    let files = samples();
    assert_eq!(files.len(), 29, "{files:#?}");
    for (n, f) in files.iter().enumerate() {
        lab.deliver("INBOX", &as_message(f, n)).expect("deliver");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = format!("sqlite://{}/ingest.db", dir.path().display());
    let db = format!("sqlite://{}/fetch.db", dir.path().display());

    // What `reports ingest` stores from the files themselves.
    let ingest = crate::common::run(&["reports", "ingest", "--db", &reference, SAMPLES]);
    assert_eq!(ingest.code, 2, "{}", ingest.stderr);
    let (want, _) = stored(&reference);

    let url = imap_url("imap", lab.addr(), "INBOX");
    let (code, stdout, stderr) = fetch(&["--db", &db, &url, "--allow-plaintext"], Some(PASSWORD));
    // empty.xml holds no report: reported by UID, skipped; everything else is stored.
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(";UID=") && stderr.contains("empty.xml"),
        "{stderr}"
    );
    assert!(stderr.contains("without TLS"), "{stderr}");
    let (got, sources) = stored(&db);
    // The two LinkedIn failure samples differ only in their line ends (LF and CRLF); IMAP serves
    // every message with CRLF, so by mail they are the same message and the second is a
    // duplicate. Every other figure is the same as from the files.
    assert_eq!(
        got.get("aggregate"),
        want.get("aggregate"),
        "{got:?} {want:?}"
    );
    assert_eq!(
        got.get("smtp_tls"),
        want.get("smtp_tls"),
        "{got:?} {want:?}"
    );
    assert_eq!(want.get("failure"), Some(&5), "{want:?}");
    assert_eq!(got.get("failure"), Some(&4), "{got:?}");
    let total: usize = got.values().sum();
    let reports_in_mail = 18 + 5 + 5;
    assert!(
        stdout.contains(&format!(
            "29 messages read, {total} reports stored, {} duplicates skipped, 1 not readable",
            reports_in_mail - total
        )),
        "{stdout}"
    );
    assert!(
        sources
            .iter()
            .all(|s| s.starts_with(&format!("{url};UIDVALIDITY="))),
        "{sources:#?}"
    );
    assert_eq!(wait_for_log(&lab, 1), [29], "{}", lab.log());

    // Again: the cursor says there is nothing new, and the server sends no message body.
    let (code, stdout, stderr) = fetch(&["--db", &db, &url, "--allow-plaintext"], Some(PASSWORD));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("0 messages read, 0 reports stored, 0 duplicates skipped, 0 not readable"),
        "{stdout}"
    );
    assert_eq!(wait_for_log(&lab, 2), [29, 0], "{}", lab.log());
    assert_eq!(stored(&db).0, got);
    // Nothing was marked read or moved: the mailbox was only examined.
    assert_eq!(lab.count("INBOX").expect("count"), 29);
}

#[test]
fn uidvalidity_change_rereads_and_move_to_files_messages() {
    let Some(lab) = lab(None) else { return };
    lab.create_mailbox("Reports").expect("create");
    lab.create_mailbox("Done").expect("create");
    let one =
        Path::new(SAMPLES).join("aggregate/example.net!example.com!1529366400!1529452799.xml");
    let two = Path::new(SAMPLES).join("smtp_tls/rfc8460.json");
    lab.deliver("Reports", &as_message(&one, 1))
        .expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let url = imap_url("imap", lab.addr(), "Reports");
    let base = ["--db", &db, &url, "--allow-plaintext"];
    let (code, stdout, stderr) = fetch(&base, Some(PASSWORD));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("1 messages read, 1 reports stored"),
        "{stdout}"
    );

    // A new UIDVALIDITY: the mailbox is read from the start; the old report is a duplicate.
    lab.recreate_mailbox("Reports").expect("recreate");
    lab.deliver("Reports", &as_message(&one, 1))
        .expect("deliver");
    lab.deliver("Reports", &as_message(&two, 2))
        .expect("deliver");
    lab.deliver(
        "Reports",
        b"Subject: hello\r\nFrom: a@b.example\r\n\r\nno report here\r\n",
    )
    .expect("deliver");
    let mut args = base.to_vec();
    args.extend(["--move-to", "Done"]);
    let (code, stdout, stderr) = fetch(&args, Some(PASSWORD));
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("UIDVALIDITY changed"), "{stderr}");
    assert!(
        stderr.contains(";UID=3"),
        "the message without a report, by UID: {stderr}"
    );
    assert!(
        stdout.contains("3 messages read, 1 reports stored, 1 duplicates skipped, 1 not readable"),
        "{stdout}"
    );
    // The two read messages were moved; the unreadable one stays for a human to look at.
    assert_eq!(lab.count("Done").expect("count"), 2);
    assert_eq!(lab.count("Reports").expect("count"), 1);
    // The cursor moved past the unreadable message: it is not read again.
    let (code, stdout, _) = fetch(&base, Some(PASSWORD));
    assert_eq!(code, 0);
    assert!(stdout.contains("0 messages read"), "{stdout}");
}

#[test]
fn tls_with_private_ca_plaintext_refused_and_bad_password() {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mailaudit fetch test CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("IP")));
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("leaf");
    let Some(lab) = lab(Some(TlsIdentity {
        key_pem: key.serialize_pem(),
        chain_pem: cert.pem(),
    })) else {
        return;
    };
    let sample = Path::new(SAMPLES).join("smtp_tls/rfc8460.json");
    lab.deliver("INBOX", &as_message(&sample, 1))
        .expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    let ca_file = ca_file.to_str().expect("UTF-8");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let imaps = imap_url("imaps", lab.tls_addr().expect("IMAPS"), "INBOX");
    let starttls = imap_url("imap", lab.addr(), "INBOX");

    // Without the CA: the certificate is refused, an error exit.
    let (code, _, stderr) = fetch(&["--db", &db, &imaps], Some(PASSWORD));
    assert_eq!(code, 2);
    assert!(stderr.contains("issuer"), "{stderr}");
    // With it, over IMAPS: stored. Over STARTTLS: a duplicate (the cursor is per URL).
    let (code, stdout, stderr) =
        fetch(&["--db", &db, &imaps, "--ca-file", ca_file], Some(PASSWORD));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("1 messages read, 1 reports stored"),
        "{stdout}"
    );
    assert!(!stderr.contains("without TLS"), "{stderr}");
    let (code, stdout, stderr) = fetch(
        &["--db", &db, &starttls, "--ca-file", ca_file],
        Some(PASSWORD),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 duplicates skipped"), "{stdout}");

    // A wrong password, no password, a password in the URL: error exits, nothing printed.
    let (code, _, stderr) = fetch(&["--db", &db, &imaps, "--ca-file", ca_file], Some("wrong"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("login as dmarc@contoso.test refused"),
        "{stderr}"
    );
    let (code, _, stderr) = fetch(&["--db", &db, &imaps, "--ca-file", ca_file], None);
    assert_eq!(code, 2);
    assert!(stderr.contains("MAILAUDIT_IMAP_PASSWORD"), "{stderr}");
    let with_password = imaps.replace("%40contoso.test@", &format!("%40contoso.test:{PASSWORD}@"));
    let (code, _, stderr) = fetch(&["--db", &db, &with_password], Some(PASSWORD));
    assert_eq!(code, 2);
    assert!(stderr.contains("--password-env"), "{stderr}");
}

#[test]
fn plaintext_needs_the_explicit_flag() {
    let Some(lab) = lab(None) else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let (code, _, stderr) = fetch(
        &["--db", &db, &imap_url("imap", lab.addr(), "INBOX")],
        Some(PASSWORD),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("does not offer STARTTLS"), "{stderr}");
    // No credentials were sent: Dovecot logged no login.
    assert!(!lab.log().contains("Login: user="), "{}", lab.log());
}

/// Lines of a child's stream, read on a thread.
fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (30 s at most) for a line matching `pred`, keeping every line seen in `seen`.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = pred(&line);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!("no line {what} within 30 s; seen:\n{}", seen.join("\n")),
        }
    }
}

/// Kills the child on drop, so a failed assertion leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_survives_a_kick_and_a_restart_without_losing_or_duplicating() {
    let Some(mut lab) = lab(None) else { return };
    let reports = [
        "aggregate/example.net!example.com!1529366400!1529452799.xml",
        "aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz",
        "smtp_tls/rfc8460.json",
        "failure/dmarc_ruf_report_linkedin.eml",
    ];
    let message = |i: usize| as_message(&Path::new(SAMPLES).join(reports[i]), i);
    lab.deliver("INBOX", &message(0)).expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let url = imap_url("imap", lab.addr(), "INBOX");
    let mut child = Child(
        command(
            &[
                "reports",
                "fetch",
                "--db",
                &db,
                &url,
                "--allow-plaintext",
                "--watch",
                "--interval",
                "0.3",
                "--timeout",
                "5",
            ],
            Some(PASSWORD),
        )
        .spawn()
        .expect("mailaudit starts"),
    );
    let out = lines(child.0.stdout.take().expect("stdout"));
    let err = lines(child.0.stderr.take().expect("stderr"));
    let (mut seen_out, mut seen_err) = (Vec::new(), Vec::new());
    let stored_one = |l: &str| l.contains("1 messages read, 1 reports stored, 0 duplicates");

    wait_line(&out, &mut seen_out, "storing the first report", stored_one);
    // Polls go on with nothing new.
    wait_line(&out, &mut seen_out, "an empty poll", |l| {
        l.contains("0 messages read")
    });
    lab.deliver("INBOX", &message(1)).expect("deliver");
    wait_line(&out, &mut seen_out, "storing the second report", stored_one);

    // The server drops the connection: reported, and the watcher reconnects.
    lab.kick().expect("kick");
    wait_line(&err, &mut seen_err, "about the lost connection", |l| {
        l.contains("connection lost")
    });
    lab.deliver("INBOX", &message(2)).expect("deliver");
    wait_line(&out, &mut seen_out, "storing the third report", stored_one);

    // The server restarts (every connection closed, refused for a moment).
    lab.restart().expect("restart");
    wait_line(&err, &mut seen_err, "about the restart", |l| {
        l.contains("connection lost") || l.contains("retrying")
    });
    lab.deliver("INBOX", &message(3)).expect("deliver");
    wait_line(&out, &mut seen_out, "storing the fourth report", stored_one);

    // SIGTERM (what a supervisor sends) is a clean stop.
    let status = crate::common::sigterm_and_wait(&mut child.0);
    assert_eq!(
        status.code(),
        Some(0),
        "a clean exit on SIGTERM: {status:?}"
    );
    wait_line(&err, &mut seen_err, "about stopping", |l| {
        l.contains("terminated; stopping")
    });
    drop(child);

    // Four reports, each stored once; no poll ever saw a duplicate.
    let (by_kind, _) = stored(&db);
    assert_eq!(by_kind.values().sum::<usize>(), 4, "{by_kind:?}");
    let stored_lines = seen_out
        .iter()
        .filter(|l| l.contains("1 reports stored"))
        .count();
    assert_eq!(stored_lines, 4, "{seen_out:#?}");
    assert!(
        seen_out
            .iter()
            .all(|l| l.contains(" 0 duplicates") && l.contains(" 0 not readable")),
        "{seen_out:#?}"
    );
    for l in seen_out.iter().chain(&seen_err) {
        assert!(!l.contains(PASSWORD), "{l}");
    }
}

/// The lines a child printed within `within`.
fn lines_within(rx: &mpsc::Receiver<String>, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.push(line);
    }
    seen
}

/// `reports fetch --watch --interval 300` (plus `extra`) against `lab`'s INBOX, after the
/// first poll stored the report delivered before: the child, its stdout and stderr lines.
fn watch_after_first_poll(
    lab: &DovecotLab,
    db: &str,
    extra: &[&str],
) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let url = imap_url("imap", lab.addr(), "INBOX");
    let mut args = vec![
        "reports",
        "fetch",
        "--db",
        db,
        &url,
        "--allow-plaintext",
        "--watch",
        "--interval",
        "300",
        "--timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    let mut child = Child(
        command(&args, Some(PASSWORD))
            .spawn()
            .expect("mailaudit starts"),
    );
    let out = lines(child.0.stdout.take().expect("stdout"));
    let err = lines(child.0.stderr.take().expect("stderr"));
    wait_line(&out, &mut Vec::new(), "storing the first report", |l| {
        l.contains("1 messages read, 1 reports stored, 0 duplicates")
    });
    (child, out, err)
}

#[test]
fn rfc2177_watch_with_idle_stores_new_mail_within_seconds_not_after_the_interval() {
    let Some(lab) = lab(None) else { return };
    let sample = |i: usize, name: &str| as_message(&Path::new(SAMPLES).join(name), i);
    lab.deliver(
        "INBOX",
        &sample(
            0,
            "aggregate/example.net!example.com!1529366400!1529452799.xml",
        ),
    )
    .expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let (mut child, out, err) = watch_after_first_poll(&lab, &db, &[]);
    // Let the watcher enter IDLE, then deliver: only IDLE can explain a poll before 300 s.
    std::thread::sleep(Duration::from_millis(500));
    lab.deliver("INBOX", &sample(1, "smtp_tls/rfc8460.json"))
        .expect("deliver");
    let delivered = Instant::now();
    let mut seen = Vec::new();
    wait_line(&out, &mut seen, "storing the second report", |l| {
        l.contains("1 messages read, 1 reports stored, 0 duplicates")
    });
    // Stored within `wait_line`'s 30 s, with polls 300 s apart: IDLE woke the watcher. How soon
    // is the machine's business; it is shown, not asserted.
    let lag = delivered.elapsed();
    eprintln!("stored {lag:?} after the delivery (IDLE)");
    let status = crate::common::sigterm_and_wait(&mut child.0);
    assert_eq!(status.code(), Some(0), "{status:?}");
    let err = lines_within(&err, Duration::from_secs(2));
    assert!(
        err.iter()
            .any(|l| l.contains("on new mail where the server offers IDLE")),
        "{err:#?}"
    );
    assert!(
        !err.iter().any(|l| l.contains("connection lost")),
        "{err:#?}"
    );
    assert_eq!(stored(&db).0.values().sum::<usize>(), 2);
}

#[test]
fn rfc2177_watch_with_no_idle_polls_only_every_interval() {
    let Some(lab) = lab(None) else { return };
    // --no-idle is an option of --watch.
    let url = imap_url("imap", lab.addr(), "INBOX");
    let (code, _, stderr) = fetch(&[&url, "--allow-plaintext", "--no-idle"], Some(PASSWORD));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--watch"), "{stderr}");

    let sample = |i: usize, name: &str| as_message(&Path::new(SAMPLES).join(name), i);
    lab.deliver(
        "INBOX",
        &sample(
            0,
            "aggregate/example.net!example.com!1529366400!1529452799.xml",
        ),
    )
    .expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let (mut child, out, _err) = watch_after_first_poll(&lab, &db, &["--no-idle"]);
    std::thread::sleep(Duration::from_millis(500));
    lab.deliver("INBOX", &sample(1, "smtp_tls/rfc8460.json"))
        .expect("deliver");
    // Polling every 300 s: nothing is picked up in the next seconds.
    let printed = lines_within(&out, Duration::from_secs(4));
    assert!(printed.is_empty(), "{printed:#?}");
    let status = crate::common::sigterm_and_wait(&mut child.0);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(stored(&db).0.values().sum::<usize>(), 1);
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0
// ---------------------------------------------------------------------------------------------

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "2b4c6d8e-1111-4222-8333-444455556666";
const CLIENT_SECRET: &str = "Entra~Secret.Value-0123456789";
const SECRET_ENV: &str = "MAILAUDIT_OAUTH2_CLIENT_SECRET";

/// The lab's authorization server (tokens valid for `lifetime`), a Dovecot that takes its
/// tokens (and the password), and the lab CA in a file.
struct OAuthLab {
    auth: LabOAuth,
    imap: DovecotLab,
    ca_file: tempfile::NamedTempFile,
    /// The token endpoint's URL (for the lab's tenant).
    token_url: String,
}

impl OAuthLab {
    fn start(lifetime: Duration) -> Option<OAuthLab> {
        Self::start_for(USER, lifetime)
    }

    /// The same with tokens for `token_user` (the mailbox user is always [`USER`]).
    fn start_for(token_user: &str, lifetime: Duration) -> Option<OAuthLab> {
        let auth = LabOAuth::start(
            OAuthLabConfig::new(CLIENT_ID, CLIENT_SECRET, token_user).with_lifetime(lifetime),
        )
        .expect("lab authorization server");
        let config = DovecotConfig::new(USER, PASSWORD).with_oauth2(auth.introspection_url());
        let imap = mailaudit_lab::or_skip(DovecotLab::start(&config), "MAILAUDIT_SKIP_DOVECOT")?;
        let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut ca_file, auth.ca_pem().as_bytes()).expect("CA written");
        let token_url = auth.token_url(TENANT);
        Some(OAuthLab {
            auth,
            imap,
            ca_file,
            token_url,
        })
    }

    /// `reports fetch` arguments: the mailbox, the token endpoint and its CA, then `extra`.
    fn args<'a>(&'a self, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            url,
            "--allow-plaintext",
            "--ca-file",
            self.ca_file.path().to_str().expect("UTF-8 path"),
        ];
        v.extend_from_slice(extra);
        v
    }

    fn token_url(&self) -> String {
        self.token_url.clone()
    }

    /// `reports fetch` arguments for the client credentials grant against the lab's token
    /// endpoint, into the store `db`.
    fn client_credentials<'a>(&'a self, url: &'a str, db: &'a str) -> Vec<&'a str> {
        self.args(
            url,
            &[
                "--db",
                db,
                "--oauth2-client-id",
                CLIENT_ID,
                "--oauth2-token-url",
                &self.token_url,
            ],
        )
    }
}

#[test]
fn oauth_client_credentials_fetch_stores_what_a_password_fetch_stores() {
    let Some(lab) = OAuthLab::start(Duration::from_secs(3600)) else {
        return;
    };
    let files = samples();
    for (n, f) in files.iter().enumerate() {
        lab.imap
            .deliver("INBOX", &as_message(f, n))
            .expect("deliver");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let by_password = format!("sqlite://{}/password.db", dir.path().display());
    let by_token = format!("sqlite://{}/oauth.db", dir.path().display());
    let url = imap_url("imap", lab.imap.addr(), "INBOX");
    let (code, password_out, stderr) =
        fetch(&lab.args(&url, &["--db", &by_password]), Some(PASSWORD));
    assert_eq!(code, 2, "empty.xml is not readable: {stderr}");

    // No password in the environment: OAuth alone logs in.
    let (code, token_out, stderr) = fetch_with(
        &lab.client_credentials(&url, &by_token),
        None,
        &[(SECRET_ENV, CLIENT_SECRET)],
    );
    assert_eq!(code, 2, "{token_out}\n{stderr}");
    assert_eq!(token_out, password_out);
    assert!(token_out.contains("29 messages read, "), "{token_out}");
    assert_eq!(stored(&by_token).0, stored(&by_password).0);
    // One token, asked for with the client credentials grant and Exchange Online's scope.
    let requests = lab.auth.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        requests[0].grant_type.as_deref(),
        Some("client_credentials")
    );
    assert_eq!(
        requests[0].scope.as_deref(),
        Some("https://outlook.office365.com/.default")
    );
    assert!(requests[0].secret_ok && requests[0].status == 200);
    assert_eq!(lab.auth.issued(), 1);
    assert!(lab.auth.introspections() >= 1);
    let log = lab.imap.log();
    assert!(
        log.contains("method=XOAUTH2") && log.contains("method=PLAIN"),
        "{log}"
    );
}

#[test]
fn oauth_bad_client_secret_is_a_clear_error_without_the_secret() {
    let Some(lab) = OAuthLab::start(Duration::from_secs(3600)) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let url = imap_url("imap", lab.imap.addr(), "INBOX");
    let token_url = lab.token_url();
    let wrong = "Not~The.Secret-9876543210";
    let (code, stdout, stderr) = fetch_with(
        &lab.client_credentials(&url, &db),
        Some(PASSWORD),
        &[(SECRET_ENV, wrong)],
    );
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(code, 2);
    assert!(stderr.contains(&token_url), "{stderr}");
    assert!(stderr.contains("(HTTP 401): invalid_client"), "{stderr}");
    assert!(
        stderr.contains("AADSTS7000215: Invalid client secret provided"),
        "{stderr}"
    );
    assert!(!stderr.contains(CLIENT_SECRET) && !stdout.contains(CLIENT_SECRET));
    assert_eq!(lab.auth.issued(), 0);
    // No login was attempted with anything.
    assert!(
        !lab.imap.log().contains("Login: user="),
        "{}",
        lab.imap.log()
    );

    // The secret variable unset, and options that do not go together.
    let (code, _, stderr) = fetch_with(
        &lab.args(
            &url,
            &[
                "--db",
                &db,
                "--oauth2-client-id",
                CLIENT_ID,
                "--oauth2-tenant",
                TENANT,
            ],
        ),
        None,
        &[],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains(SECRET_ENV), "{stderr}");
    let (code, _, stderr) = fetch(
        &lab.args(&url, &["--db", &db, "--oauth2-tenant", TENANT]),
        None,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("need --oauth2-client-id"), "{stderr}");
    let (code, _, stderr) = fetch(
        &lab.args(&url, &["--db", &db, "--oauth2-client-id", CLIENT_ID]),
        None,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("--oauth2-tenant"), "{stderr}");
}

/// `reports fetch --watch` with OAuth, polling every 0.3 s; its stdout and stderr lines.
fn watch_oauth(
    lab: &OAuthLab,
    db: &str,
) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let url = imap_url("imap", lab.imap.addr(), "INBOX");
    let token_url = lab.token_url();
    let mut args = vec!["reports", "fetch"];
    args.extend(lab.args(
        &url,
        &[
            "--db",
            db,
            "--watch",
            "--interval",
            "0.3",
            "--timeout",
            "5",
            "--oauth2-client-id",
            CLIENT_ID,
            "--oauth2-token-url",
            &token_url,
        ],
    ));
    let mut cmd = command(&args, None);
    cmd.env(SECRET_ENV, CLIENT_SECRET);
    let mut child = Child(cmd.spawn().expect("mailaudit starts"));
    let out = lines(child.0.stdout.take().expect("stdout"));
    let err = lines(child.0.stderr.take().expect("stderr"));
    (child, out, err)
}

fn report_message(i: usize) -> Vec<u8> {
    let reports = [
        "aggregate/example.net!example.com!1529366400!1529452799.xml",
        "smtp_tls/rfc8460.json",
        "aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz",
    ];
    as_message(&Path::new(SAMPLES).join(reports[i]), i)
}

#[test]
fn oauth_watch_renews_the_token_before_it_expires() {
    // Tokens live 3 s: renewed after 2.25 s, long before a 5-minute margin would apply.
    let Some(lab) = OAuthLab::start(Duration::from_secs(3)) else {
        return;
    };
    lab.imap
        .deliver("INBOX", &report_message(0))
        .expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let (child, out, err) = watch_oauth(&lab, &db);
    let (mut seen_out, mut seen_err) = (Vec::new(), Vec::new());
    let stored_one = |l: &str| l.contains("1 messages read, 1 reports stored, 0 duplicates");
    wait_line(&out, &mut seen_out, "storing the first report", stored_one);
    wait_line(&err, &mut seen_err, "about the renewal", |l| {
        l.contains("access token is due for renewal")
    });
    lab.imap
        .deliver("INBOX", &report_message(1))
        .expect("deliver");
    wait_line(
        &out,
        &mut seen_out,
        "storing the second report after the renewal",
        stored_one,
    );
    drop(child);
    assert!(lab.auth.issued() >= 2, "issued {}", lab.auth.issued());
    // Renewed ahead of time: no token was ever refused.
    assert!(
        !seen_err.iter().any(|l| l.contains("refused")),
        "{seen_err:#?}"
    );
    assert_eq!(stored(&db).0.values().sum::<usize>(), 2);
    for l in seen_out.iter().chain(&seen_err) {
        assert!(!l.contains(CLIENT_SECRET), "{l}");
    }
}

#[test]
fn oauth_watch_replaces_a_revoked_token_once_and_goes_on() {
    let Some(lab) = OAuthLab::start(Duration::from_secs(3600)) else {
        return;
    };
    lab.imap
        .deliver("INBOX", &report_message(0))
        .expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let (child, out, err) = watch_oauth(&lab, &db);
    let (mut seen_out, mut seen_err) = (Vec::new(), Vec::new());
    let stored_one = |l: &str| l.contains("1 messages read, 1 reports stored, 0 duplicates");
    wait_line(&out, &mut seen_out, "storing the first report", stored_one);
    assert_eq!(lab.auth.issued(), 1);

    // The token is revoked and the connection dropped: the reconnection's login with the old
    // token is refused, a new token is fetched once, and polling goes on.
    lab.auth.revoke_all();
    lab.imap.kick().expect("kick");
    wait_line(&err, &mut seen_err, "about the lost connection", |l| {
        l.contains("connection lost")
    });
    wait_line(&err, &mut seen_err, "about the refused token", |l| {
        l.contains("refused the access token") && l.contains("requesting a new one")
    });
    lab.imap
        .deliver("INBOX", &report_message(1))
        .expect("deliver");
    wait_line(&out, &mut seen_out, "storing the second report", stored_one);
    drop(child);
    assert_eq!(lab.auth.issued(), 2);
    assert_eq!(stored(&db).0.values().sum::<usize>(), 2);
    for l in seen_out.iter().chain(&seen_err) {
        assert!(!l.contains(CLIENT_SECRET), "{l}");
    }
}

#[test]
fn oauth_token_from_the_environment_works_until_revoked() {
    let Some(lab) = OAuthLab::start(Duration::from_secs(3600)) else {
        return;
    };
    lab.imap
        .deliver("INBOX", &report_message(0))
        .expect("deliver");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let url = imap_url("imap", lab.imap.addr(), "INBOX");
    let token = lab.auth.mint();
    let env = [("RUA_TOKEN", token.as_str())];
    let (code, stdout, stderr) = fetch_with(
        &lab.args(&url, &["--db", &db, "--oauth2-token-env", "RUA_TOKEN"]),
        None,
        &env,
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 messages read, 1 reports stored"),
        "{stdout}"
    );
    assert_eq!(
        lab.auth.issued(),
        0,
        "a given token needs no token endpoint"
    );

    // Revoked (as an expired token is): refused, nothing to renew it with, a clear error.
    lab.auth.revoke_all();
    lab.imap
        .deliver("INBOX", &report_message(1))
        .expect("deliver");
    let (code, stdout, stderr) = fetch_with(
        &lab.args(&url, &["--db", &db, "--oauth2-token-env", "RUA_TOKEN"]),
        None,
        &env,
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("login as dmarc@contoso.test refused"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the token in RUA_TOKEN was refused: it may have expired"),
        "{stderr}"
    );
    // Unset, and not a bearer token.
    let (code, _, stderr) = fetch(
        &lab.args(&url, &["--db", &db, "--oauth2-token-env", "RUA_TOKEN"]),
        None,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("RUA_TOKEN, which is not set"), "{stderr}");
    let (code, _, stderr) = fetch_with(
        &lab.args(&url, &["--db", &db, "--oauth2-token-env", "RUA_TOKEN"]),
        None,
        &[("RUA_TOKEN", "two words")],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("RFC 6750"), "{stderr}");
}

#[test]
fn oauth_a_fresh_token_that_is_refused_is_not_fetched_again_and_the_error_says_what_to_check() {
    // The app's tokens are for another mailbox (Exchange Online: no Add-MailboxPermission for
    // this one): Dovecot refuses them for USER.
    let Some(lab) = OAuthLab::start_for("someone-else@contoso.test", Duration::from_secs(3600))
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let url = imap_url("imap", lab.imap.addr(), "INBOX");
    let (code, stdout, stderr) = fetch_with(
        &lab.client_credentials(&url, &db),
        None,
        &[(SECRET_ENV, CLIENT_SECRET)],
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("login as dmarc@contoso.test refused"),
        "{stderr}"
    );
    assert!(stderr.contains("XOAUTH2 error challenge"), "{stderr}");
    for hint in [
        "IMAP.AccessAsApp",
        "New-ServicePrincipal",
        "Add-MailboxPermission",
    ] {
        assert!(stderr.contains(hint), "{hint}: {stderr}");
    }
    // Just fetched and refused: another token would be refused the same way.
    assert_eq!(lab.auth.issued(), 1);
    let log = lab.imap.log();
    assert_eq!(
        log.matches("auth failed, 1 attempts").count(),
        1,
        "one login attempt: {log}"
    );
    assert!(log.contains("method=XOAUTH2"), "{log}");
}
