//! A real Dovecot IMAP server on loopback, holding a report mailbox for the `reports fetch` tests.
//!
//! [`DovecotLab::start`] writes a private Dovecot instance into a fresh temporary directory
//! (`dovecot.conf`, a `passwd` file with one user, the Maildir storage, the runtime and state
//! directories, the log, TLS keys) and starts it with `dovecot -c FILE`. It listens on
//! 127.0.0.1 only, on leased ports ([`crate::PortLease`]): plain IMAP (offering STARTTLS when
//! the lab has a TLS identity) and, with a TLS identity, IMAPS. The user logs in with a password (`PLAIN` and
//! `LOGIN` mechanisms; cleartext authentication is allowed, for the loopback tests of
//! `--allow-plaintext`); failed logins are answered at once (`auth_failure_delay = 0`, and no
//! growing penalty for the address). With [`DovecotConfig::with_oauth2`] the user can also log
//! in with an OAuth 2.0 bearer token (`XOAUTH2`, `OAUTHBEARER`): Dovecot's `oauth2` password
//! database asks an introspection endpoint (such as [`crate::oauth::LabOAuth`]'s) whether the
//! token is active and for whom.
//!
//! Messages are delivered with `doveadm save` ([`DovecotLab::deliver`]), which stores them the
//! way a delivery agent does (as the mail user, in the mailbox named). Connections are dropped
//! with `doveadm kick` ([`DovecotLab::kick`]) or by stopping and starting the server on the same
//! ports ([`DovecotLab::restart`]); a mailbox can be deleted and created again, which gives it
//! a new UIDVALIDITY ([`DovecotLab::recreate_mailbox`]).
//!
//! # Requirements and lifetime
//!
//! Dovecot must be installed (`scripts/install-test-deps.sh` installs Debian's `dovecot-imapd`
//! and leaves the system's own instance stopped; this module never reads `/etc/dovecot`). As
//! root, the instance runs like a packaged one: login processes as `dovenull`, internal ones as
//! `dovecot`, the mail user as `nobody`. As another user, every process runs as that user and
//! group (`anvil` and the login processes without chroot); both ways are tested. [`DovecotLab::check`]
//! says why the lab cannot run here.
//!
//! Dropping a [`DovecotLab`] stops the instance, waits for the master process to exit and
//! removes the directory (kept when `MAILAUDIT_KEEP_DOVECOT` is set, for debugging). An
//! instance left behind by a killed process is stopped and removed by the next
//! [`DovecotLab::start`] on the machine: directories are named after the owning process ID and
//! reaped once that process is gone.
//!
//! The API is blocking (`std::process` and `std::net`); from async code call it through
//! `tokio::task::spawn_blocking` or directly (starting takes a fraction of a second).
//!
//! ```no_run
//! use mailaudit_lab::dovecot::{DovecotConfig, DovecotLab};
//!
//! # fn demo() -> Result<(), mailaudit_lab::dovecot::DovecotError> {
//! let lab = DovecotLab::start(&DovecotConfig::new("dmarc", "s3cret"))?;
//! lab.deliver("INBOX", b"Subject: report\r\n\r\nhello\r\n")?;
//! // connect to lab.addr() as "dmarc" ...
//! lab.kick()?;
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU32;
use std::thread;
use std::time::{Duration, Instant};

use crate::instance::{self, PortLease, is_root, process_running, read_lossy};
use crate::postfix::TlsIdentity;

/// The name prefix of instance directories in the temporary directory; the owning process ID
/// and a sequence number follow.
const DIR_PREFIX: &str = "mailaudit-dovecot-";

/// How often a start is retried (a chosen port taken by someone else meanwhile).
const START_ATTEMPTS: usize = 4;

/// How long the server may take to greet after `dovecot` returns.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a stop may take before the master is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Instance directories made by this process so far.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// What instance to start.
#[derive(Clone)]
pub struct DovecotConfig {
    /// The user name: 1-64 of ASCII letters, digits and `._@-`.
    pub user: String,
    /// Its password: printable ASCII without `:` (the passwd file's separator).
    pub password: String,
    /// The identity for STARTTLS and IMAPS; `None`: plain IMAP only, no STARTTLS.
    pub tls: Option<TlsIdentity>,
    /// Bearer-token authentication besides the password; `None`: passwords only.
    pub oauth2: Option<OAuth2Passdb>,
    /// The capabilities announced instead of Dovecot's own (`imap_capability`), e.g. to leave
    /// `SASL-IR` out; `AUTH=` mechanisms and `STARTTLS` are added by Dovecot as usual.
    pub imap_capability: Option<String>,
}

/// Dovecot's `oauth2` password database: a token is valid when the introspection endpoint
/// answers `{"active": true, "username": USER}` for it (`introspection_mode = post`,
/// `active_attribute = active`, `active_value = true`, `username_attribute = username`), and
/// only for that user.
#[derive(Clone, Debug)]
pub struct OAuth2Passdb {
    /// The introspection endpoint (`http://127.0.0.1:PORT/...`, e.g.
    /// [`LabOAuth::introspection_url`](crate::oauth::LabOAuth::introspection_url)).
    pub introspection_url: String,
    /// The SASL mechanisms offered for tokens: `xoauth2`, `oauthbearer` or both.
    pub mechanisms: Vec<String>,
}

impl std::fmt::Debug for DovecotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DovecotConfig")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("tls", &self.tls)
            .field("oauth2", &self.oauth2)
            .field("imap_capability", &self.imap_capability)
            .finish()
    }
}

impl DovecotConfig {
    /// One user with a password, without TLS.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
            tls: None,
            oauth2: None,
            imap_capability: None,
        }
    }

    /// The same, also taking bearer tokens (`AUTHENTICATE XOAUTH2` and `OAUTHBEARER`) that the
    /// introspection endpoint at `introspection_url` says are active for the user.
    #[must_use]
    pub fn with_oauth2(mut self, introspection_url: impl Into<String>) -> Self {
        self.oauth2 = Some(OAuth2Passdb {
            introspection_url: introspection_url.into(),
            mechanisms: vec!["xoauth2".into(), "oauthbearer".into()],
        });
        self
    }

    /// The same, offering STARTTLS on the IMAP port and IMAPS on a second port.
    #[must_use]
    pub fn with_tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }
}

/// Why the lab could not start or act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DovecotError {
    /// Dovecot cannot run here (not installed, users missing); the text says what to do.
    #[error("the Dovecot lab cannot run here: {0}")]
    Unavailable(String),
    /// The configuration asked for is not usable.
    #[error("invalid Dovecot lab configuration: {0}")]
    InvalidConfig(String),
    /// A file or directory of the instance could not be written or read, or a program not run.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `dovecot` failed or never greeted.
    #[error("Dovecot did not start: {reason}\n--- log (last lines) ---\n{log_tail}")]
    Start {
        /// What went wrong.
        reason: String,
        /// The end of the instance's log.
        log_tail: String,
    },
    /// A `doveadm` command failed.
    #[error("`doveadm {command}` failed: {output}")]
    Doveadm {
        /// The sub-command.
        command: String,
        /// Its output.
        output: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DovecotError {
    let what = what.into();
    move |source| DovecotError::Io { what, source }
}

/// The OS accounts the instance runs as.
#[derive(Debug, Clone)]
struct Accounts {
    /// `default_internal_user`, and its uid (the auth process reads the passwd file as it).
    internal: String,
    internal_uid: u32,
    /// `default_internal_group` when not the packaged `dovecot` group (not root: the caller's).
    internal_group: Option<String>,
    /// `default_login_user`.
    login: String,
    /// The mail user's uid and gid.
    mail_uid: u32,
    mail_gid: u32,
    /// Whether login processes may chroot (root only).
    chroot: bool,
}

/// A running private Dovecot instance; see the [module docs](self).
#[derive(Debug)]
pub struct DovecotLab {
    dir: PathBuf,
    user: String,
    imap: SocketAddr,
    imaps: Option<SocketAddr>,
    stopped: bool,
    /// The ports' leases, held while the instance lives (a restart reuses the ports) and
    /// dropped after the drop stops it.
    _ports: Vec<PortLease>,
}

impl DovecotLab {
    /// Checks that Dovecot can run here: the `dovecot` and `doveadm` programs present and, as
    /// root, the `dovecot`, `dovenull` and `nobody` accounts.
    pub fn check() -> Result<(), DovecotError> {
        // `doveadm` has no version option; that it runs at all is enough.
        for (program, arg, need_success) in
            [("dovecot", "--version", true), ("doveadm", "help", false)]
        {
            let found = Command::new(program).arg(arg).stdin(Stdio::null()).output();
            if !matches!(found, Ok(out) if out.status.success() || !need_success) {
                return Err(DovecotError::Unavailable(format!(
                    "`{program}` is not installed: run `scripts/install-test-deps.sh` as root \
                     (Debian package dovecot-imapd)"
                )));
            }
        }
        accounts().map(|_| ())
    }

    /// Writes and starts an instance for `config` on ports of 127.0.0.1 leased for it
    /// ([`crate::PortLease`], held until the drop, so [`Self::restart`] finds them free) and
    /// returns once it greets. A failed start is retried in a fresh instance with new ports,
    /// a few times.
    pub fn start(config: &DovecotConfig) -> Result<Self, DovecotError> {
        Self::check()?;
        validate(config)?;
        reap_orphans();
        let accounts = accounts()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(config, &accounts) {
                Ok(lab) => return Ok(lab),
                Err(e @ DovecotError::Start { .. }) => last = Some(e),
                Err(other) => return Err(other),
            }
        }
        Err(last.unwrap_or_else(|| DovecotError::Start {
            reason: "no attempt made".into(),
            log_tail: String::new(),
        }))
    }

    fn start_once(config: &DovecotConfig, accounts: &Accounts) -> Result<Self, DovecotError> {
        let ports = lease_ports(if config.tls.is_some() { 2 } else { 1 })?;
        let dir = make_instance_dir()?;
        let mut lab = DovecotLab {
            dir,
            user: config.user.clone(),
            imap: SocketAddr::from((Ipv4Addr::LOCALHOST, ports[0].port())),
            imaps: ports
                .get(1)
                .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p.port()))),
            stopped: false,
            _ports: ports,
        };
        lab.write_files(config, accounts)?;
        lab.launch()?;
        Ok(lab)
    }

    /// Starts the master with the instance's configuration and waits for the greeting on every
    /// port.
    fn launch(&mut self) -> Result<(), DovecotError> {
        // The daemon keeps the launcher's standard streams: pipes would never reach EOF, so
        // they go to a file.
        let out_path = self.dir.join("start.out");
        let out_file = fs::File::create(&out_path)
            .map_err(io_err(format!("creating {}", out_path.display())))?;
        let err_file = out_file
            .try_clone()
            .map_err(io_err(format!("opening {}", out_path.display())))?;
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(out_file)
            .stderr(err_file)
            .status()
            .map_err(io_err("running `dovecot`"))?;
        if !status.success() {
            return Err(DovecotError::Start {
                reason: format!(
                    "`dovecot -c {}` exited with {status}: {}",
                    self.config_path().display(),
                    read_lossy(&out_path)
                ),
                log_tail: self.log_tail(),
            });
        }
        let master = read_pid(&self.dir);
        let alive = || master.is_some_and(process_running);
        let mut addrs = vec![(self.imap, false)];
        addrs.extend(self.imaps.map(|a| (a, true)));
        for (addr, tls) in addrs {
            // IMAPS speaks TLS first: a TCP connection that is accepted is enough.
            if let Err(reason) = wait_ready(addr, !tls, READY_TIMEOUT, &alive) {
                let log_tail = self.log_tail();
                stop_instance(&self.dir);
                return Err(DovecotError::Start {
                    reason: format!("{addr}: {reason}"),
                    log_tail,
                });
            }
        }
        Ok(())
    }

    /// The plain IMAP port (STARTTLS offered when the lab has a TLS identity).
    pub fn addr(&self) -> SocketAddr {
        self.imap
    }

    /// The IMAPS port (implicit TLS), when the lab has a TLS identity.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.imaps
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The instance directory (`dovecot.conf`, `passwd`, `mail/`, `run/`, `log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance's log.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.join("log"))
    }

    /// Delivers `message` into `mailbox` of the user (`doveadm save`); the mailbox must exist
    /// (`INBOX` always does).
    pub fn deliver(&self, mailbox: &str, message: &[u8]) -> Result<(), DovecotError> {
        self.doveadm_with_input(&["save", "-u", &self.user, "-m", mailbox], message)
            .map(|_| ())
    }

    /// Creates `mailbox`.
    pub fn create_mailbox(&self, mailbox: &str) -> Result<(), DovecotError> {
        self.doveadm(&["mailbox", "create", "-u", &self.user, mailbox])
            .map(|_| ())
    }

    /// Deletes `mailbox` with its messages and creates it again, empty, with a new UIDVALIDITY.
    pub fn recreate_mailbox(&self, mailbox: &str) -> Result<(), DovecotError> {
        self.doveadm(&["mailbox", "delete", "-u", &self.user, mailbox])?;
        self.create_mailbox(mailbox)
    }

    /// The UIDVALIDITY of `mailbox`.
    pub fn uid_validity(&self, mailbox: &str) -> Result<u32, DovecotError> {
        let out = self.doveadm(&[
            "mailbox",
            "status",
            "-u",
            &self.user,
            "uidvalidity",
            mailbox,
        ])?;
        out.split_once("uidvalidity=")
            .and_then(|(_, v)| v.trim().parse().ok())
            .ok_or_else(|| DovecotError::Doveadm {
                command: "mailbox status".into(),
                output: out,
            })
    }

    /// The number of messages in `mailbox`.
    pub fn count(&self, mailbox: &str) -> Result<u32, DovecotError> {
        let out = self.doveadm(&["mailbox", "status", "-u", &self.user, "messages", mailbox])?;
        out.split_once("messages=")
            .and_then(|(_, v)| v.trim().parse().ok())
            .ok_or_else(|| DovecotError::Doveadm {
                command: "mailbox status".into(),
                output: out,
            })
    }

    /// Drops every IMAP connection of the user (`doveadm kick`): each gets `* BYE` and is
    /// closed; the server goes on accepting new ones.
    pub fn kick(&self) -> Result<(), DovecotError> {
        self.doveadm(&["kick", &self.user]).map(|_| ())
    }

    /// Stops the server (every connection closed) and starts it again on the same ports.
    pub fn restart(&mut self) -> Result<(), DovecotError> {
        stop_instance(&self.dir);
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            thread::sleep(Duration::from_millis(200));
        }
        Err(last.unwrap_or_else(|| DovecotError::Start {
            reason: "no attempt made".into(),
            log_tail: String::new(),
        }))
    }

    /// Stops the instance and removes its directory; dropping the lab does the same.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        stop_instance(&self.dir);
        if std::env::var_os("MAILAUDIT_KEEP_DOVECOT").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("dovecot.conf")
    }

    fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn doveadm(&self, args: &[&str]) -> Result<String, DovecotError> {
        self.doveadm_with_input(args, b"")
    }

    fn doveadm_with_input(&self, args: &[&str], input: &[u8]) -> Result<String, DovecotError> {
        let mut child = Command::new("doveadm")
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err("running `doveadm`"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input)
                .map_err(io_err("writing to `doveadm`"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(io_err("running `doveadm`"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(DovecotError::Doveadm {
                command: args.first().copied().unwrap_or_default().to_string(),
                output: text,
            });
        }
        Ok(text)
    }

    fn write_files(&self, config: &DovecotConfig, accounts: &Accounts) -> Result<(), DovecotError> {
        let d = &self.dir;
        for (sub, mode) in [
            ("run", 0o755),
            ("state", 0o750),
            ("tls", 0o700),
            ("mail", 0o755),
        ] {
            let path = d.join(sub);
            fs::DirBuilder::new()
                .mode(mode)
                .create(&path)
                .map_err(io_err(format!("creating {}", path.display())))?;
        }
        let mail = d.join("mail");
        std::os::unix::fs::chown(&mail, Some(accounts.mail_uid), Some(accounts.mail_gid))
            .map_err(io_err(format!("chown {}", mail.display())))?;
        let passwd = format!(
            "{}:{{PLAIN}}{}:{}:{}::{}::\n",
            config.user,
            config.password,
            accounts.mail_uid,
            accounts.mail_gid,
            mail.join(&config.user).display()
        );
        // Read by the auth process, which runs as the internal user.
        let passwd_path = d.join("passwd");
        write_file(&passwd_path, &passwd, 0o600)?;
        std::os::unix::fs::chown(&passwd_path, Some(accounts.internal_uid), None)
            .map_err(io_err(format!("chown {}", passwd_path.display())))?;

        let mut ssl = String::from("ssl = no\n");
        if let Some(tls) = &config.tls {
            let cert = d.join("tls/cert.pem");
            let key = d.join("tls/key.pem");
            write_file(&cert, &tls.chain_pem, 0o600)?;
            write_file(&key, &tls.key_pem, 0o600)?;
            ssl = format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\nssl_min_protocol = TLSv1.2\n",
                cert.display(),
                key.display()
            );
        }
        let mut listeners = format!(
            "  inet_listener imap {{\n    address = 127.0.0.1\n    port = {}\n  }}\n",
            self.imap.port()
        );
        match self.imaps {
            Some(a) => {
                let _ = write!(
                    listeners,
                    "  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {}\n    \
                     ssl = yes\n  }}\n",
                    a.port()
                );
            }
            None => listeners.push_str("  inet_listener imaps {\n    port = 0\n  }\n"),
        }
        let chroot = if accounts.chroot { "" } else { "  chroot =\n" };
        let p = d.display();
        let name = d
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("mailaudit-dovecot");
        // Bearer tokens: Dovecot's oauth2 passdb for the token mechanisms, checked by the
        // introspection endpoint; passwords stay with the passwd file.
        let (mut mechanisms, mut oauth2_passdb) = ("plain login".to_string(), String::new());
        if let Some(o) = &config.oauth2 {
            let ext = d.join("oauth2.conf.ext");
            write_file(
                &ext,
                &format!(
                    "introspection_url = {}\nintrospection_mode = post\nforce_introspection = yes\n\
                     username_attribute = username\nactive_attribute = active\n\
                     active_value = true\ntimeout_msecs = 10000\n",
                    o.introspection_url
                ),
                0o644,
            )?;
            let list = o.mechanisms.join(" ");
            mechanisms = format!("plain login {list}");
            oauth2_passdb = format!(
                "passdb {{\n  driver = oauth2\n  mechanisms = {list}\n  args = {}\n}}\n",
                ext.display()
            );
        }
        let capability = config
            .imap_capability
            .as_ref()
            .map(|c| format!("imap_capability = {c}\n"))
            .unwrap_or_default();
        let conf = format!(
            "\
# Written by mailaudit-lab: a private Dovecot instance on 127.0.0.1 for tests.
instance_name = {name}
base_dir = {p}/run
state_dir = {p}/state
log_path = {p}/log
info_log_path = {p}/log
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_login_user = {login}
{group}first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
mail_location = maildir:{p}/mail/%u/Maildir
{capability}{ssl}
{oauth2_passdb}passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {p}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {p}/passwd
}}
service imap-login {{
{listeners}{chroot}}}
# No authentication penalty (anvil's growing delay after failures from an address): tests
# fail logins on purpose and must not wait for it. The auth process logs once that it cannot
# reach the listener.
service anvil {{
{anvil_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
",
            internal = accounts.internal,
            login = accounts.login,
            anvil_chroot = if accounts.chroot { "" } else { "  chroot =\n" },
            group = accounts
                .internal_group
                .as_ref()
                .map(|g| format!("default_internal_group = {g}\n"))
                .unwrap_or_default(),
        );
        write_file(&self.config_path(), &conf, 0o644)
    }
}

impl Drop for DovecotLab {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn validate(config: &DovecotConfig) -> Result<(), DovecotError> {
    let user_ok = !config.user.is_empty()
        && config.user.len() <= 64
        && config
            .user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !user_ok {
        return Err(DovecotError::InvalidConfig(format!(
            "user name {:?}: use 1-64 of letters, digits and ._@-",
            config.user
        )));
    }
    let password_ok = !config.password.is_empty()
        && config
            .password
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b':');
    if !password_ok {
        return Err(DovecotError::InvalidConfig(
            "the password must be printable ASCII without spaces or ':'".into(),
        ));
    }
    if let Some(o) = &config.oauth2 {
        let url_ok = o.introspection_url.starts_with("http")
            && o.introspection_url
                .bytes()
                .all(|b| (0x21..0x7f).contains(&b));
        if !url_ok {
            return Err(DovecotError::InvalidConfig(format!(
                "introspection URL {:?}: an http(s) URL of printable ASCII without spaces",
                o.introspection_url
            )));
        }
        if o.mechanisms.is_empty()
            || o.mechanisms
                .iter()
                .any(|m| !matches!(m.as_str(), "xoauth2" | "oauthbearer"))
        {
            return Err(DovecotError::InvalidConfig(format!(
                "token mechanisms {:?}: xoauth2 and/or oauthbearer",
                o.mechanisms
            )));
        }
    }
    if let Some(c) = &config.imap_capability
        && !c.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(DovecotError::InvalidConfig(format!(
            "capability list {c:?}: printable ASCII only"
        )));
    }
    Ok(())
}

fn id_of(flag: &str, user: Option<&str>) -> Result<String, DovecotError> {
    let mut cmd = Command::new("id");
    cmd.arg(flag);
    if let Some(u) = user {
        cmd.arg(u);
    }
    let out = cmd
        .output()
        .map_err(|e| DovecotError::Unavailable(format!("cannot run `id`: {e}")))?;
    if !out.status.success() {
        return Err(DovecotError::Unavailable(format!(
            "the account {} does not exist: reinstall with `scripts/install-test-deps.sh`",
            user.unwrap_or("(current)")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn accounts() -> Result<Accounts, DovecotError> {
    let num = |s: String| {
        s.parse::<u32>()
            .map_err(|_| DovecotError::Unavailable(format!("`id` printed {s:?}")))
    };
    if is_root() {
        id_of("-u", Some("dovenull"))?;
        Ok(Accounts {
            internal: "dovecot".into(),
            internal_uid: num(id_of("-u", Some("dovecot"))?)?,
            internal_group: None,
            login: "dovenull".into(),
            mail_uid: num(id_of("-u", Some("nobody"))?)?,
            mail_gid: num(id_of("-g", Some("nobody"))?)?,
            chroot: true,
        })
    } else {
        let me = id_of("-un", None)?;
        Ok(Accounts {
            internal: me.clone(),
            internal_uid: num(id_of("-u", None)?)?,
            internal_group: Some(id_of("-gn", None)?),
            login: me,
            mail_uid: num(id_of("-u", None)?)?,
            mail_gid: num(id_of("-g", None)?)?,
            chroot: false,
        })
    }
}

fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), DovecotError> {
    instance::write_file(path, content, mode).map_err(io_err(format!("writing {}", path.display())))
}

/// Makes `$TMPDIR/mailaudit-dovecot-<pid>-<seq>` (0755: the mail and login users traverse it).
fn make_instance_dir() -> Result<PathBuf, DovecotError> {
    let base = std::env::temp_dir();
    let text = base.display().to_string();
    if text.contains(|c: char| c.is_whitespace() || matches!(c, '$' | '{' | '}' | '<' | '%' | '#'))
    {
        return Err(DovecotError::InvalidConfig(format!(
            "the temporary directory {text:?} contains characters Dovecot settings cannot hold"
        )));
    }
    // Unix socket paths (base_dir's) are limited to 108 octets.
    if text.len() > 60 {
        return Err(DovecotError::InvalidConfig(format!(
            "the temporary directory {text:?} is too long for the lab's Unix sockets; set TMPDIR"
        )));
    }
    instance::create_dir(&base, DIR_PREFIX, &SEQUENCE)
        .map_err(io_err(format!("creating an instance directory in {text}")))
}

fn read_pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join("run/master.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Stops the instance in `dir` (SIGTERM to its master, SIGKILL after [`STOP_TIMEOUT`]) and
/// waits for it to exit, so that its ports are free again.
fn stop_instance(dir: &Path) {
    let Some(pid) = read_pid(dir) else { return };
    if !process_running(pid) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .output();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while process_running(pid) {
        if Instant::now() >= deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    // The master's children (imap, auth, ...) may outlive it for a while (an imap process
    // serving a client lingers until it notices): end every process of the instance, so that
    // a stop closes every connection at once. Their titles start with `dovecot-<instance>/`.
    if let Some(instance) = dir.file_name().and_then(|n| n.to_str()) {
        let prefix = format!("dovecot-{instance}/");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let left = instance_processes(&prefix);
            if left.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in left {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .output();
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = fs::remove_file(dir.join("run/master.pid"));
}

/// The live processes whose command line (Dovecot's process title) starts with `prefix`.
fn instance_processes(prefix: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(prefix.as_bytes()))
                && process_running(*pid)
        })
        .collect()
}

/// Stops and removes instances whose owning process is gone (killed before its drops ran).
fn reap_orphans() {
    instance::reap_orphans(DIR_PREFIX, stop_instance);
}

/// `count` ports of 127.0.0.1 leased for the instance ([`PortLease`]).
fn lease_ports(count: usize) -> Result<Vec<PortLease>, DovecotError> {
    instance::lease_ports(count).map_err(io_err("leasing ports on 127.0.0.1"))
}

/// Connects to `addr` until it accepts (and, when `greet`, answers `* OK`), retrying until
/// `timeout`. Gives up at once when `alive` says the master process is gone.
fn wait_ready(
    addr: SocketAddr,
    greet: bool,
    timeout: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("never tried");
    while Instant::now() < deadline {
        match try_greet(addr, greet) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if !alive() {
            return Err(format!("the master process exited ({last})"));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("not ready within {timeout:?}: {last}"))
}

/// Whether `addr` accepts connections and, when `greet`, answers `* OK`.
fn try_greet(addr: SocketAddr, greet: bool) -> Result<(), String> {
    if greet {
        instance::greet(addr, "* OK", "x LOGOUT")
    } else {
        TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map(drop)
            .map_err(|e| format!("connect: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_validated() {
        assert!(validate(&DovecotConfig::new("dmarc@contoso.test", "s3cret!")).is_ok());
        for (user, password) in [
            ("", "x"),
            ("a b", "x"),
            ("a:b", "x"),
            ("u", ""),
            ("u", "a:b"),
            ("u", "a b"),
            ("u", "é"),
        ] {
            assert!(
                matches!(
                    validate(&DovecotConfig::new(user, password)),
                    Err(DovecotError::InvalidConfig(_))
                ),
                "{user:?} {password:?}"
            );
        }
        let shown = format!("{:?}", DovecotConfig::new("u", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn process_state_reads_proc() {
        assert!(process_running(std::process::id()));
        assert!(!process_running(u32::MAX));
    }
}
