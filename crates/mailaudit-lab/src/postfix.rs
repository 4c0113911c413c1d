//! A real Postfix on loopback, posing as Microsoft 365 inbound endpoints for the SMTP probes.
//!
//! [`PostfixLab::start`] writes a private Postfix instance into a fresh temporary directory
//! (`main.cf`, `master.cf`, queue, data directory, log file, TLS keys) and starts it with
//! `postfix -c DIR start`. Each [`Endpoint`] is one `smtpd` service on its own leased port
//! of 127.0.0.1, answering a spoofed Direct Send envelope the way a Microsoft 365 tenant does
//! (`docs/m365.md`):
//!
//! | [`Behaviour`]                   | reply to `RCPT TO` of the lab domain                    |
//! |---------------------------------|--------------------------------------------------------|
//! | [`Behaviour::Open`]             | `250 2.1.5 Ok` (and the message is accepted at DATA)    |
//! | [`Behaviour::Blocked`]          | [`BLOCKED_REPLY`] (`550 5.7.68 TenantInboundAttribution`) |
//! | [`Behaviour::UnknownRecipient`] | [`UNKNOWN_RECIPIENT_REPLY`] (`550 5.4.1 ... Access denied`) |
//!
//! The rejections are sent word for word: Postfix's access tables would prefix the text with
//! `<address>: Sender address rejected:`, so the rejecting endpoints consult a minimal milter
//! served by this process (a thread per connection on a Unix socket in the instance
//! directory) that answers `RCPT` with the exact reply. A Blocked endpoint rejects only a
//! sender in the lab's own domains (the Direct Send spoof); mail from elsewhere is accepted.
//!
//! An endpoint given a [`TlsIdentity`] offers STARTTLS (`smtpd_tls_security_level = may`) with
//! that key and certificate chain; the certificates are the caller's (tests make a test CA and
//! leaf certificates with rcgen, valid, expired or for another name), so this module needs no
//! X.509 code.
//!
//! # Safety of the instance
//!
//! Nothing is ever delivered and nothing reaches beyond 127.0.0.1: every transport
//! (`local`, `virtual`, `relay`, `default`) is Postfix's `discard` agent, `master.cf` has no
//! `smtp`/`lmtp` client service at all, DNS lookups are disabled (`disable_dns_lookups`,
//! `smtp_dns_support_level = disabled`, `smtpd_peername_lookup = no`), and the host name is
//! fixed (`myhostname`), so Postfix asks no resolver for it. The system's own Postfix
//! (`/etc/postfix`, `/var/spool/postfix`) is neither read for settings nor started.
//!
//! # Observing what the server saw
//!
//! Every service logs to `maillog` in the instance directory (Postfix's `postlogd`, not
//! syslog); each endpoint logs under its own name (`postfix/<name>/smtpd`). [`PostfixLab::sessions`]
//! parses the log into one [`Session`] per SMTP connection: the command counts of Postfix's
//! `disconnect from` line (`ehlo=2 starttls=1 mail=1 rcpt=0/1 rset=1 quit=1`), the TLS protocol
//! and cipher, the rejections and the queue IDs of accepted messages.
//! [`PostfixLab::discarded`] lists the messages the discard agent took, and
//! [`PostfixLab::queued_files`] counts what is left in the queue. That is how the tests prove
//! a probe never sent DATA, and that `--send-test-message` sent exactly one message.
//!
//! # Requirements and lifetime
//!
//! Postfix must be installed (`scripts/install-test-deps.sh` installs Debian's package without
//! configuring it) and the caller must be root: the master daemon binds its ports and drops
//! privileges to the `postfix` user, and the queue must be owned by root. [`PostfixLab::check`]
//! says why the lab cannot run here.
//!
//! Dropping a [`PostfixLab`] runs `postfix stop`, waits for the master process to exit and
//! removes the directory (kept when `MAILAUDIT_KEEP_POSTFIX` is set, for debugging). A test
//! that panics unwinds through the drop, so no instance outlives a normal `cargo test` run.
//! An instance left behind by a killed process (SIGKILL skips destructors) is stopped and
//! removed by the next [`PostfixLab::start`] on the machine: directories are named after the
//! owning process ID and reaped once that process is gone.
//!
//! The API is blocking (`std::process` and `std::net`); from async code call it directly
//! (starting takes about half a second) or through `tokio::task::spawn_blocking`.
//!
//! ```no_run
//! use mailaudit_lab::postfix::{Behaviour, Endpoint, LabConfig, PostfixLab};
//!
//! # fn demo() -> Result<(), mailaudit_lab::postfix::PostfixError> {
//! let lab = PostfixLab::start(&LabConfig::new(vec![
//!     Endpoint::new("open", Behaviour::Open),
//!     Endpoint::new("blocked", Behaviour::Blocked),
//! ]))?;
//! let addr = lab.addr("blocked").expect("endpoint exists");
//! // ... probe addr as the MX host lab.hostname() ...
//! let sessions = lab.wait_sessions("blocked", 1, std::time::Duration::from_secs(5));
//! assert_eq!(sessions[0].count("data"), None);
//! # Ok(()) }
//! ```

use crate::instance::{self, PortLease, process_running, read_lossy};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::thread;
use std::time::{Duration, Instant};

mod milter;

/// The domain the lab's endpoints treat as a Microsoft 365 tenant's accepted domain.
pub const TEST_DOMAIN: &str = "contoso.test";

/// The lab's host name: the SMTP banner and EHLO name, and the name test certificates are made
/// for (the "MX host" a probe is told it connects to).
pub const TEST_HOSTNAME: &str = "mx.contoso.test";

/// What a [`Behaviour::Blocked`] endpoint answers to `RCPT TO`, as Exchange Online does for a
/// tenant that rejects Direct Send (`RejectDirectSend`).
pub const BLOCKED_REPLY: &str = "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources";

/// What a [`Behaviour::UnknownRecipient`] endpoint answers to `RCPT TO`, as Exchange Online
/// does for a recipient it does not know (directory-based edge blocking).
pub const UNKNOWN_RECIPIENT_REPLY: &str =
    "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)";

/// The name prefix of instance directories in the temporary directory; the owning process
/// ID and a sequence number follow.
const DIR_PREFIX: &str = "mailaudit-postfix-";

/// How often the whole start is retried when a chosen port was taken by someone else meanwhile.
const START_ATTEMPTS: usize = 4;

/// How long an endpoint may take to answer its first `220` after `postfix start`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long `postfix stop` may take before the master is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Instance directories made by this process so far.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// How an endpoint answers a spoofed envelope (`MAIL FROM` and `RCPT TO` in the lab domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts it: the tenant is open to Direct Send (the RELAY-OPEN finding).
    Open,
    /// Rejects it at `RCPT` with [`BLOCKED_REPLY`].
    Blocked,
    /// Rejects every recipient of the lab domains with [`UNKNOWN_RECIPIENT_REPLY`]: the probe
    /// learns nothing about Direct Send (RELAY-INCONCLUSIVE).
    UnknownRecipient,
}

/// A private key and the certificate chain to present, both PEM (the leaf first).
#[derive(Clone)]
pub struct TlsIdentity {
    /// The private key (PKCS#8, SEC1 or PKCS#1 PEM).
    pub key_pem: String,
    /// The leaf certificate followed by any intermediates, PEM.
    pub chain_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("key_pem", &"<redacted>")
            .field("chain_pem", &self.chain_pem)
            .finish()
    }
}

/// One `smtpd` service of the lab, on its own port.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its name: lowercase ASCII letters, digits and `-`, at most 32 characters; it names the
    /// endpoint in [`PostfixLab::addr`] and in the log (`postfix/<name>/smtpd`).
    pub name: String,
    /// How it answers a spoofed envelope.
    pub behaviour: Behaviour,
    /// The identity it offers STARTTLS with; `None` offers no STARTTLS.
    pub tls: Option<TlsIdentity>,
}

impl Endpoint {
    /// An endpoint without STARTTLS.
    pub fn new(name: impl Into<String>, behaviour: Behaviour) -> Self {
        Self {
            name: name.into(),
            behaviour,
            tls: None,
        }
    }

    /// The same endpoint, offering STARTTLS with `identity`.
    #[must_use]
    pub fn with_tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }
}

/// What instance to start.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The domains treated as the tenant's accepted domains (`mydestination`); the first is
    /// `myorigin`. Default: [`TEST_DOMAIN`].
    pub domains: Vec<String>,
    /// `myhostname`: banner, EHLO name. Default: [`TEST_HOSTNAME`].
    pub hostname: String,
    /// The endpoints, each on its own port.
    pub endpoints: Vec<Endpoint>,
}

impl LabConfig {
    /// The endpoints for [`TEST_DOMAIN`] on [`TEST_HOSTNAME`].
    pub fn new(endpoints: Vec<Endpoint>) -> Self {
        Self {
            domains: vec![TEST_DOMAIN.to_owned()],
            hostname: TEST_HOSTNAME.to_owned(),
            endpoints,
        }
    }
}

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostfixError {
    /// Postfix cannot run here (not installed, not root); the text says what to do.
    #[error("the Postfix lab cannot run here: {0}")]
    Unavailable(String),
    /// The configuration asked for is not usable.
    #[error("invalid lab configuration: {0}")]
    InvalidConfig(String),
    /// A file or directory of the instance could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `postfix start` failed or an endpoint never greeted.
    #[error("Postfix did not start: {reason}\n--- maillog (last lines) ---\n{log_tail}")]
    Start {
        /// What went wrong.
        reason: String,
        /// The end of the instance's log.
        log_tail: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PostfixError {
    let what = what.into();
    move |source| PostfixError::Io { what, source }
}

/// One SMTP connection as the server logged it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// The endpoint that served it.
    pub endpoint: String,
    /// Postfix's command counts from the `disconnect from` line, by lowercase command name
    /// (`ehlo`, `starttls`, `mail`, `rcpt`, `data`, `bdat`, `rset`, `quit`, `commands`,
    /// `unknown`, ...): `(succeeded, issued)`. A command never issued is absent.
    pub commands: BTreeMap<String, (u32, u32)>,
    /// The TLS protocol and cipher Postfix negotiated, e.g.
    /// `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`; `None` without TLS.
    pub tls: Option<String>,
    /// The reply text of every rejection (`NOQUEUE: reject: RCPT from ...: 550 ...` or
    /// `NOQUEUE: milter-reject: RCPT from ...: 550 5.7.68 ...`),
    /// from the code on, without Postfix's `; from=<...> to=<...>` suffix.
    pub rejects: Vec<String>,
    /// Queue IDs of the messages accepted in this session.
    pub queue_ids: Vec<String>,
    /// Whether the session ended with `disconnect from` (otherwise it is still open, or the
    /// line has not reached the log yet).
    pub closed: bool,
    /// The session's log lines, for failure messages.
    pub lines: Vec<String>,
}

impl Session {
    /// How many times `command` (lowercase, e.g. `"data"`) succeeded and was issued; `None`
    /// when it was never issued.
    pub fn count(&self, command: &str) -> Option<(u32, u32)> {
        self.commands.get(command).copied()
    }

    /// Whether the client sent `DATA` or `BDAT` at all.
    pub fn sent_data(&self) -> bool {
        self.count("data").is_some() || self.count("bdat").is_some()
    }
}

/// A message the lab accepted and then discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    /// Postfix's queue ID.
    pub queue_id: String,
    /// The envelope sender (`qmgr`'s `from=<...>`), when logged.
    pub from: Option<String>,
    /// The envelope recipient.
    pub to: String,
    /// The endpoint whose `smtpd` accepted it, when logged.
    pub endpoint: Option<String>,
    /// Its `Subject:`, `From:`, `To:` and `X-Mailaudit-*:` header fields as received
    /// (unfolded as Postfix logs them), in order.
    pub headers: Vec<String>,
}

/// A running private Postfix instance; see the [module docs](self).
#[derive(Debug)]
pub struct PostfixLab {
    dir: PathBuf,
    hostname: String,
    endpoints: Vec<(String, SocketAddr)>,
    /// The log offset after the readiness checks: [`Self::log`] starts here.
    log_start: u64,
    stopped: bool,
    /// The milters of the rejecting endpoints; dropped (stopped) after Postfix.
    milters: Vec<milter::Milter>,
    /// The endpoints' port leases, dropped after the drop stops Postfix.
    ports: Vec<PortLease>,
}

impl PostfixLab {
    /// Checks that Postfix can run here: root, and the `postfix` program and `postfix` user
    /// present. The error says what is missing and how to fix it.
    pub fn check() -> Result<(), PostfixError> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| PostfixError::Unavailable(format!("cannot run `id -u`: {e}")))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err(PostfixError::Unavailable(
                "the Postfix lab must run as root (Postfix's master binds its ports and drops \
                 privileges to the postfix user; the queue must be owned by root)"
                    .into(),
            ));
        }
        let found = Command::new("postconf")
            .args(["-d", "-h", "mail_version"])
            .output();
        match found {
            Ok(out) if out.status.success() => {}
            _ => {
                return Err(PostfixError::Unavailable(
                    "Postfix is not installed: run `scripts/install-test-deps.sh` as root".into(),
                ));
            }
        }
        let user = Command::new("id").arg("postfix").output();
        if !matches!(user, Ok(out) if out.status.success()) {
            return Err(PostfixError::Unavailable(
                "the `postfix` user does not exist: reinstall with `scripts/install-test-deps.sh`"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Writes and starts an instance with `config`'s endpoints, each on a port of 127.0.0.1
    /// leased for it ([`crate::PortLease`]: outside the kernel's ephemeral range, reserved
    /// against every other lease), and returns once every endpoint has answered `220`.
    ///
    /// A failed start (a port taken by a program outside the tests after its lease, or a start
    /// that fails or never becomes ready on a loaded machine) is retried in a fresh instance
    /// with new ports, a few times.
    pub fn start(config: &LabConfig) -> Result<Self, PostfixError> {
        Self::check()?;
        validate(config)?;
        reap_orphans();
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(config) {
                Ok(lab) => return Ok(lab),
                Err(e @ PostfixError::Start { .. }) => last = Some(e),
                Err(other) => return Err(other),
            }
        }
        Err(last.unwrap_or_else(|| PostfixError::Start {
            reason: "no attempt made".into(),
            log_tail: String::new(),
        }))
    }

    fn start_once(config: &LabConfig) -> Result<Self, PostfixError> {
        let ports = lease_ports(config.endpoints.len())?;
        let dir = make_instance_dir()?;
        // From here on the guard stops and removes the instance on any error.
        let mut lab = Self {
            dir,
            hostname: config.hostname.clone(),
            endpoints: Vec::new(),
            log_start: 0,
            stopped: false,
            milters: Vec::new(),
            ports,
        };
        lab.endpoints = config
            .endpoints
            .iter()
            .zip(&lab.ports)
            .map(|(e, lease)| {
                (
                    e.name.clone(),
                    SocketAddr::from((Ipv4Addr::LOCALHOST, lease.port())),
                )
            })
            .collect();
        lab.write_files(config)?;

        let out = Command::new("postfix")
            .arg("-c")
            .arg(lab.config_dir())
            .arg("start")
            .output()
            .map_err(io_err("running `postfix start`"))?;
        if !out.status.success() {
            return Err(PostfixError::Start {
                reason: format!(
                    "`postfix -c {} start` exited with {}: {}{}",
                    lab.config_dir().display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
                log_tail: lab.log_tail(),
            });
        }

        let master = read_master_pid(&lab.dir);
        let alive = || master.is_some_and(process_running);
        for (name, addr) in &lab.endpoints {
            if let Err(reason) = greet(*addr, READY_TIMEOUT, &alive) {
                return Err(PostfixError::Start {
                    reason: format!("endpoint {name} on {addr}: {reason}"),
                    log_tail: lab.log_tail(),
                });
            }
        }
        // Wait for the readiness sessions to be logged, so that the log the tests read starts
        // after them and holds only their own sessions.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = read_lossy(&lab.log_path());
            let closed = text
                .lines()
                .filter(|l| l.contains("/smtpd[") && l.contains(": disconnect from "))
                .count();
            if closed >= lab.endpoints.len() {
                lab.log_start = text.len() as u64;
                break;
            }
            if Instant::now() >= deadline {
                return Err(PostfixError::Start {
                    reason: "the readiness sessions never reached the log".into(),
                    log_tail: lab.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(lab)
    }

    /// The address of the endpoint named `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.endpoints
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// Every endpoint's name and address, in the order configured.
    pub fn endpoints(&self) -> impl Iterator<Item = (&str, SocketAddr)> {
        self.endpoints.iter().map(|(n, a)| (n.as_str(), *a))
    }

    /// The host name the instance greets with (`myhostname`).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The instance directory (`etc/`, `spool/`, `data/`, `tls/`, `maillog`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log written since the lab became ready (the readiness checks' own sessions are
    /// excluded).
    pub fn log(&self) -> String {
        let text = read_lossy(&self.log_path());
        let start = usize::try_from(self.log_start).unwrap_or(usize::MAX);
        text.get(start..).unwrap_or_default().to_owned()
    }

    /// The SMTP sessions logged so far (see [`Self::log`]), in the order they began.
    pub fn sessions(&self) -> Vec<Session> {
        parse_sessions(&self.log())
    }

    /// Waits until `count` sessions of `endpoint` are closed (or `timeout` passes) and returns
    /// that endpoint's sessions. Postfix logs asynchronously, after the client has gone.
    pub fn wait_sessions(&self, endpoint: &str, count: usize, timeout: Duration) -> Vec<Session> {
        let deadline = Instant::now() + timeout;
        loop {
            let of: Vec<Session> = self
                .sessions()
                .into_iter()
                .filter(|s| s.endpoint == endpoint)
                .collect();
            if of.iter().filter(|s| s.closed).count() >= count || Instant::now() >= deadline {
                return of;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The messages discarded so far (accepted, queued, then dropped by the discard agent).
    pub fn discarded(&self) -> Vec<Discarded> {
        parse_discarded(&self.log())
    }

    /// Waits until at least `count` messages are discarded (or `timeout` passes) and returns them.
    pub fn wait_discarded(&self, count: usize, timeout: Duration) -> Vec<Discarded> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.discarded();
            if found.len() >= count || Instant::now() >= deadline {
                return found;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The number of message files in the queue (`maildrop`, `incoming`, `active`,
    /// `deferred`, `hold`, `corrupt`): zero when nothing was accepted or everything accepted
    /// has been discarded.
    pub fn queued_files(&self) -> usize {
        [
            "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
        ]
        .iter()
        .map(|q| count_files(&self.dir.join("spool").join(q)))
        .sum()
    }

    /// Waits until the queue is empty, for at most `timeout`, and returns what is left. An
    /// accepted RCPT makes Postfix open a queue file, which it removes shortly after RSET: the
    /// queue may hold it briefly even though nothing was sent.
    pub fn wait_queue_empty(&self, timeout: std::time::Duration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = self.queued_files();
            if left == 0 || std::time::Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops the instance, waits for it to exit and removes its directory (see the module
    /// docs); dropping the lab does the same.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        stop_instance(&self.dir);
        // Postfix is gone: stop the milters while their sockets still exist.
        self.milters.clear();
        if std::env::var_os("MAILAUDIT_KEEP_POSTFIX").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("maillog")
    }

    fn log_tail(&self) -> String {
        let text = read_lossy(&self.log_path());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn write_files(&mut self, config: &LabConfig) -> Result<(), PostfixError> {
        let d = &self.dir;
        for sub in ["etc", "spool", "tls"] {
            let path = d.join(sub);
            fs::DirBuilder::new()
                .mode(if sub == "tls" { 0o700 } else { 0o755 })
                .create(&path)
                .map_err(io_err(format!("creating {}", path.display())))?;
        }
        let etc = d.join("etc");
        let domains = &config.domains;

        // The rejecting endpoints answer RCPT through milters, whose replies Postfix sends word
        // for word (its access tables would prefix "<address>: Sender address rejected: ").
        let milter_dir = d.join("milter");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&milter_dir)
            .map_err(io_err(format!("creating {}", milter_dir.display())))?;
        for behaviour in [Behaviour::Blocked, Behaviour::UnknownRecipient] {
            if !config.endpoints.iter().any(|e| e.behaviour == behaviour) {
                continue;
            }
            let (file, rule) = match behaviour {
                Behaviour::Blocked => (
                    "blocked",
                    milter::Rule {
                        sender_domains: Some(domains.clone()),
                        recipient_domains: domains.clone(),
                        reply: BLOCKED_REPLY.to_owned(),
                    },
                ),
                _ => (
                    "unknown",
                    milter::Rule {
                        sender_domains: None,
                        recipient_domains: domains.clone(),
                        reply: UNKNOWN_RECIPIENT_REPLY.to_owned(),
                    },
                ),
            };
            let path = milter_socket(d, file);
            let started = milter::Milter::start(&path, rule)
                .map_err(io_err(format!("starting the milter on {}", path.display())))?;
            self.milters.push(started);
        }

        // Log the headers that label a test message, so tests can see what was sent.
        write_file(&etc.join("header_checks"), HEADER_CHECKS, 0o644)?;

        let main_cf = main_cf(d, &config.hostname, domains);
        write_file(&etc.join("main.cf"), &main_cf, 0o644)?;

        let mut master = String::from(MASTER_CF_HEAD);
        for ((name, addr), endpoint) in self.endpoints.iter().zip(&config.endpoints) {
            let _ = writeln!(master, "{addr} inet n - n - - smtpd");
            let _ = writeln!(master, "  -o syslog_name=postfix/{name}");
            let milter = match endpoint.behaviour {
                Behaviour::Open => None,
                Behaviour::Blocked => Some(milter_socket(d, "blocked")),
                Behaviour::UnknownRecipient => Some(milter_socket(d, "unknown")),
            };
            if let Some(socket) = milter {
                let _ = writeln!(master, "  -o smtpd_milters=unix:{}", socket.display());
            }
            if let Some(tls) = &endpoint.tls {
                let pem = d.join("tls").join(format!("{name}.pem"));
                let mut content = tls.key_pem.trim_end().to_owned();
                content.push('\n');
                content.push_str(tls.chain_pem.trim_end());
                content.push('\n');
                write_file(&pem, &content, 0o600)?;
                let _ = writeln!(master, "  -o smtpd_tls_security_level=may");
                let _ = writeln!(master, "  -o smtpd_tls_chain_files={}", pem.display());
            }
        }
        write_file(&etc.join("master.cf"), &master, 0o644)
    }
}

impl Drop for PostfixLab {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `header_checks` that log (WARN) the headers of an accepted message that label it.
const HEADER_CHECKS: &str = "\
/^Subject:/ WARN
/^From:/ WARN
/^To:/ WARN
/^X-Mailaudit-/ WARN
";

/// The services a private instance needs to accept and discard mail, with no SMTP client.
const MASTER_CF_HEAD: &str = "\
# Written by mailaudit-lab: a private Postfix instance posing as Microsoft 365 endpoints.
# service type  private unpriv  chroot  wakeup  maxproc command
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
discard   unix  -       -       n       -       -       discard
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
postlog   unix-dgram n  -       n       -       1       postlogd
# The endpoints (smtpd on 127.0.0.1, one port each).
";

fn main_cf(dir: &Path, hostname: &str, domains: &[String]) -> String {
    let d = dir.display();
    let origin = domains.first().map_or(TEST_DOMAIN, String::as_str);
    let destinations = domains.join(", ");
    format!(
        "\
# Written by mailaudit-lab: a private Postfix instance posing as Microsoft 365 endpoints.
# Nothing is delivered (every transport is discard) and nothing leaves 127.0.0.1.
compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
myhostname = {hostname}
mydomain = {origin}
myorigin = {origin}
mydestination = {destinations}
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_banner = $myhostname Microsoft ESMTP MAIL Service ready
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = permit
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard:lab
virtual_transport = discard:lab
relay_transport = discard:lab
default_transport = discard:lab
relayhost =
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
biff = no
notify_classes =
smtpd_tls_security_level = none
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
header_checks = regexp:{d}/etc/header_checks
"
    )
}

/// The Unix socket of the milter for `name` in the instance directory `dir`.
fn milter_socket(dir: &Path, name: &str) -> PathBuf {
    dir.join("milter").join(format!("{name}.sock"))
}

fn validate(config: &LabConfig) -> Result<(), PostfixError> {
    let bad = |why: String| Err(PostfixError::InvalidConfig(why));
    if config.endpoints.is_empty() {
        return bad("no endpoints".into());
    }
    let dns_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    if !dns_name(&config.hostname) {
        return bad(format!("host name {:?} is not a DNS name", config.hostname));
    }
    if config.domains.is_empty() {
        return bad("no domains".into());
    }
    if let Some(d) = config.domains.iter().find(|d| !dns_name(d)) {
        return bad(format!("domain {d:?} is not a DNS name"));
    }
    for (i, e) in config.endpoints.iter().enumerate() {
        let ok = !e.name.is_empty()
            && e.name.len() <= 32
            && e.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return bad(format!(
                "endpoint name {:?}: use 1-32 of a-z, 0-9 and -",
                e.name
            ));
        }
        if config.endpoints[..i].iter().any(|o| o.name == e.name) {
            return bad(format!("endpoint name {:?} used twice", e.name));
        }
    }
    Ok(())
}

/// Makes `$TMPDIR/mailaudit-postfix-<pid>-<seq>` (0755, owned by the caller: root).
fn make_instance_dir() -> Result<PathBuf, PostfixError> {
    let base = std::env::temp_dir();
    let text = base.display().to_string();
    // Paths go into main.cf and master.cf `-o` values unquoted.
    if text.contains(|c: char| c.is_whitespace() || matches!(c, ',' | '$' | '{' | '}' | '=')) {
        return Err(PostfixError::InvalidConfig(format!(
            "the temporary directory {text:?} contains characters Postfix settings cannot hold"
        )));
    }
    // Unix socket paths (the milters') are limited to 108 octets.
    if text.len() > 60 {
        return Err(PostfixError::InvalidConfig(format!(
            "the temporary directory {text:?} is too long for the lab's Unix sockets; set TMPDIR"
        )));
    }
    instance::create_dir(&base, DIR_PREFIX, &SEQUENCE)
        .map_err(io_err(format!("creating an instance directory in {text}")))
}

/// Stops the instance in `dir`, waiting for its master to exit (killing it after
/// [`STOP_TIMEOUT`]).
fn stop_instance(dir: &Path) {
    let master = read_master_pid(dir);
    let _ = Command::new("postfix")
        .arg("-c")
        .arg(dir.join("etc"))
        .arg("stop")
        .output();
    let Some(pid) = master else { return };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while process_running(pid) {
        if Instant::now() >= deadline {
            let _ = Command::new("postfix")
                .arg("-c")
                .arg(dir.join("etc"))
                .arg("abort")
                .output();
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn read_master_pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join("spool/pid/master.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Stops and removes instances whose owning process is gone (killed before its drops ran).
fn reap_orphans() {
    instance::reap_orphans(DIR_PREFIX, stop_instance);
}

/// `count` ports of 127.0.0.1 leased for the instance ([`PortLease`]).
fn lease_ports(count: usize) -> Result<Vec<PortLease>, PostfixError> {
    instance::lease_ports(count).map_err(io_err("leasing ports on 127.0.0.1"))
}

/// Connects to `addr` until it answers `220` (retrying refused connections until `timeout`),
/// then says QUIT. Gives up at once when `alive` says the master process is gone.
fn greet(addr: SocketAddr, timeout: Duration, alive: &dyn Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("never tried");
    while Instant::now() < deadline {
        match try_greet(addr) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if !alive() {
            return Err(format!("the master process exited ({last})"));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no 220 greeting within {timeout:?}: {last}"))
}

fn try_greet(addr: SocketAddr) -> Result<(), String> {
    instance::greet(addr, "220", "QUIT")
}

fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), PostfixError> {
    instance::write_file(path, content, mode).map_err(io_err(format!("writing {}", path.display())))
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// Splits a `maillog` line `MMM DD HH:MM:SS host TAG[PID]: TEXT` into (tag, pid, text).
fn split_line(line: &str) -> Option<(&str, &str, &str)> {
    // Skip the three timestamp fields and the host name.
    let mut rest = line;
    for _ in 0..4 {
        rest = rest.trim_start().split_once(' ')?.1;
    }
    let (head, text) = rest.split_once("]: ")?;
    let (tag, pid) = head.split_once('[')?;
    Some((tag, pid, text))
}

/// The endpoint name of an smtpd log tag `postfix/<name>/smtpd`.
fn smtpd_endpoint(tag: &str) -> Option<&str> {
    tag.strip_prefix("postfix/")?.strip_suffix("/smtpd")
}

fn parse_sessions(log: &str) -> Vec<Session> {
    let mut done: Vec<(usize, Session)> = Vec::new();
    // Open sessions by (endpoint, pid), with the index of the line that opened them.
    let mut open: BTreeMap<(String, String), (usize, Session)> = BTreeMap::new();
    for (n, line) in log.lines().enumerate() {
        let Some((tag, pid, text)) = split_line(line) else {
            continue;
        };
        let Some(endpoint) = smtpd_endpoint(tag) else {
            continue;
        };
        let key = (endpoint.to_owned(), pid.to_owned());
        if text.starts_with("connect from ") {
            if let Some(prev) = open.remove(&key) {
                done.push(prev);
            }
            let session = Session {
                endpoint: endpoint.to_owned(),
                ..Session::default()
            };
            open.insert(key.clone(), (n, session));
        }
        let Some((_, session)) = open.get_mut(&key) else {
            continue;
        };
        session.lines.push(line.to_owned());
        if let Some(counts) = text.strip_prefix("disconnect from ") {
            session.commands = parse_counts(counts);
            session.closed = true;
            if let Some(s) = open.remove(&key) {
                done.push(s);
            }
        } else if let Some(rest) = text.split_once("TLS connection established from ") {
            session.tls = rest.1.split_once(": ").map(|(_, t)| t.to_owned());
        } else if let Some(rest) = text
            .split_once(": reject: ")
            .or_else(|| text.split_once(": milter-reject: "))
            .map(|(_, rest)| rest)
        {
            // "RCPT from unknown[127.0.0.1]: 550 5.7.68 text; from=<a> to=<b> proto=ESMTP helo=<h>"
            let reply = rest.split_once("]: ").map_or(rest, |(_, r)| r);
            let reply = reply.rsplit_once("; from=<").map_or(reply, |(r, _)| r);
            session.rejects.push(reply.to_owned());
        } else if let Some((qid, _)) = text.split_once(": client=") {
            session.queue_ids.push(qid.to_owned());
        }
    }
    done.extend(open.into_values());
    done.sort_by_key(|(n, _)| *n);
    done.into_iter().map(|(_, s)| s).collect()
}

/// Parses `unknown[127.0.0.1] ehlo=2 starttls=1 mail=1 rcpt=0/1 rset=1 quit=1 commands=6/7`.
fn parse_counts(text: &str) -> BTreeMap<String, (u32, u32)> {
    text.split_whitespace()
        .skip(1)
        .filter_map(|field| {
            let (name, value) = field.split_once('=')?;
            let (ok, total) = match value.split_once('/') {
                Some((ok, total)) => (ok.parse().ok()?, total.parse().ok()?),
                None => {
                    let n = value.parse().ok()?;
                    (n, n)
                }
            };
            Some((name.to_ascii_lowercase(), (ok, total)))
        })
        .collect()
}

fn parse_discarded(log: &str) -> Vec<Discarded> {
    let mut from: BTreeMap<String, String> = BTreeMap::new();
    let mut endpoint: BTreeMap<String, String> = BTreeMap::new();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut found = Vec::new();
    for line in log.lines() {
        let Some((tag, _, text)) = split_line(line) else {
            continue;
        };
        let Some((qid, rest)) = text.split_once(": ") else {
            continue;
        };
        if let Some(name) = smtpd_endpoint(tag) {
            if rest.starts_with("client=") {
                endpoint.insert(qid.to_owned(), name.to_owned());
            }
        } else if tag.ends_with("/cleanup")
            && let Some(header) = rest.strip_prefix("warning: header ")
        {
            // "Subject: text from unknown[127.0.0.1]; from=<a> to=<b> proto=ESMTP helo=<h>"
            let header = header.rsplit_once("; from=<").map_or(header, |(h, _)| h);
            let header = header.rsplit_once(" from ").map_or(header, |(h, _)| h);
            headers
                .entry(qid.to_owned())
                .or_default()
                .push(header.to_owned());
        } else if tag.ends_with("/qmgr") {
            if let Some(addr) = rest.strip_prefix("from=<").and_then(|r| r.split_once(">,")) {
                from.insert(qid.to_owned(), addr.0.to_owned());
            }
        } else if tag.ends_with("/discard")
            && rest.contains("status=sent")
            && let Some((to, _)) = rest.strip_prefix("to=<").and_then(|r| r.split_once(">,"))
        {
            found.push(Discarded {
                queue_id: qid.to_owned(),
                from: from.get(qid).cloned(),
                to: to.to_owned(),
                endpoint: endpoint.get(qid).cloned(),
                headers: headers.get(qid).cloned().unwrap_or_default(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 28 13:20:11 mx postfix/blocked/smtpd[27770]: connect from unknown[127.0.0.1]
Nov 28 13:20:11 mx postfix/open/smtpd[27771]: connect from unknown[127.0.0.1]
Nov 28 13:20:11 mx postfix/blocked/smtpd[27770]: Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 28 13:20:11 mx postfix/blocked/smtpd[27770]: NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.7.68 TenantInboundAttribution; Direct Send not allowed; from=<a@contoso.test> to=<b@contoso.test> proto=ESMTP helo=<probe.example>
Nov 28 13:20:12 mx postfix/open/smtpd[27771]: 489FE9CC081: client=unknown[127.0.0.1]
Nov 28 13:20:12 mx postfix/cleanup[27791]: 489FE9CC081: message-id=<x@mx.contoso.test>
Nov 28 13:20:12 mx postfix/cleanup[27791]: 489FE9CC081: warning: header Subject: [mailaudit] test from someone from unknown[127.0.0.1]; from=<a@contoso.test> to=<b@contoso.test> proto=ESMTP helo=<probe.example>
Nov 28 13:20:12 mx postfix/cleanup[27791]: 489FE9CC081: warning: header X-Mailaudit-Test: security test; run by ops from unknown[127.0.0.1]; from=<a@contoso.test> to=<b@contoso.test> proto=ESMTP helo=<probe.example>
Nov 28 13:20:12 mx postfix/qmgr[27689]: 489FE9CC081: from=<a@contoso.test>, size=316, nrcpt=1 (queue active)
Nov 28 13:20:12 mx postfix/discard[27813]: 489FE9CC081: to=<b@contoso.test>, relay=none, delay=0.97, delays=0.96/0.02/0/0, dsn=2.0.0, status=sent (lab)
Nov 28 13:20:13 mx postfix/blocked/smtpd[27770]: disconnect from unknown[127.0.0.1] ehlo=2 starttls=1 mail=1 rcpt=0/1 rset=1 quit=1 commands=6/7
Nov 28 13:20:13 mx postfix/open/smtpd[27771]: disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Nov 28 13:20:14 mx postfix/open/smtpd[27771]: connect from unknown[127.0.0.1]
";

    #[test]
    fn sessions_are_parsed_per_endpoint_and_process() {
        let sessions = parse_sessions(LOG);
        assert_eq!(sessions.len(), 3);
        let blocked = &sessions[0];
        assert_eq!(blocked.endpoint, "blocked");
        assert!(blocked.closed);
        for (cmd, want) in [
            ("ehlo", Some((2, 2))),
            ("starttls", Some((1, 1))),
            ("rcpt", Some((0, 1))),
            ("commands", Some((6, 7))),
            ("data", None),
        ] {
            assert_eq!(blocked.count(cmd), want, "{cmd}");
        }
        assert!(!blocked.sent_data());
        assert_eq!(
            blocked.tls.as_deref(),
            Some("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")
        );
        assert_eq!(
            blocked.rejects,
            ["550 5.7.68 TenantInboundAttribution; Direct Send not allowed"]
        );
        let open = &sessions[1];
        assert_eq!(open.endpoint, "open");
        assert!(open.sent_data());
        assert_eq!(open.queue_ids, ["489FE9CC081"]);
        assert!(!sessions[2].closed);
    }

    #[test]
    fn discarded_messages_carry_sender_and_endpoint() {
        assert_eq!(
            parse_discarded(LOG),
            [Discarded {
                queue_id: "489FE9CC081".into(),
                from: Some("a@contoso.test".into()),
                to: "b@contoso.test".into(),
                endpoint: Some("open".into()),
                headers: vec![
                    "Subject: [mailaudit] test from someone".into(),
                    "X-Mailaudit-Test: security test; run by ops".into(),
                ],
            }]
        );
    }

    #[test]
    fn garbage_log_lines_are_skipped() {
        for line in [
            "",
            "x",
            "Nov 28 13:20:11 mx",
            "a b c d e]: f",
            "é é é é [: ]: ",
        ] {
            assert!(parse_sessions(line).is_empty());
            assert!(parse_discarded(line).is_empty());
        }
    }

    #[test]
    fn configs_are_validated() {
        let ok = LabConfig::new(vec![Endpoint::new("open", Behaviour::Open)]);
        assert!(validate(&ok).is_ok());
        for (endpoints, domains, hostname) in [
            (vec![], vec!["contoso.test"], "mx.contoso.test"),
            (vec!["Open"], vec!["contoso.test"], "mx.contoso.test"),
            (vec!["a b"], vec!["contoso.test"], "mx.contoso.test"),
            (vec!["a", "a"], vec!["contoso.test"], "mx.contoso.test"),
            (vec!["a"], vec![], "mx.contoso.test"),
            (vec!["a"], vec!["contoso test"], "mx.contoso.test"),
            (vec!["a"], vec!["contoso.test"], "mx..contoso.test"),
            (vec!["a"], vec!["contoso.test"], "$myhostname"),
        ] {
            let config = LabConfig {
                domains: domains.into_iter().map(String::from).collect(),
                hostname: hostname.into(),
                endpoints: endpoints
                    .into_iter()
                    .map(|n| Endpoint::new(n, Behaviour::Open))
                    .collect(),
            };
            assert!(
                matches!(validate(&config), Err(PostfixError::InvalidConfig(_))),
                "{config:?}"
            );
        }
    }

    #[test]
    fn process_state_reads_proc() {
        assert!(process_running(std::process::id()));
        assert!(!process_running(u32::MAX));
    }
}
