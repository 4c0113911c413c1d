//! What the lab's private server instances (`postfix`, `dovecot`) share: instance directories
//! named `<prefix><pid>-<n>` in the temporary directory, the reaping of those whose owning
//! process died before its drops ran, process liveness from `/proc`, loopback ports leased to
//! the daemons ([`PortLease`]), small file helpers, and the tests' skip-or-fail policy for the
//! system servers ([`or_skip`]).

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Whether process `pid` exists and is not a zombie.
pub(crate) fn process_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Whether this process runs as root (then the daemons run as their own users).
pub(crate) fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Creates a new instance directory `<base>/<prefix><pid>-<n>` (mode 0755), `n` from `sequence`;
/// a name left by an earlier process with the same ID is skipped.
pub(crate) fn create_dir(base: &Path, prefix: &str, sequence: &AtomicU32) -> io::Result<PathBuf> {
    loop {
        let seq = sequence.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{prefix}{}-{seq}", std::process::id()));
        match fs::DirBuilder::new().mode(0o755).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// Stops (with `stop`) and removes the instance directories of `prefix` in the temporary
/// directory whose owning process is gone.
pub(crate) fn reap_orphans(prefix: &str, stop: impl Fn(&Path)) {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if owner == std::process::id() || process_running(owner) {
            continue;
        }
        let dir = entry.path();
        stop(&dir);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// A TCP port of 127.0.0.1 reserved for an external daemon (Postfix, Dovecot, PostgreSQL): held
/// for as long as the lease lives, so keep it beside the daemon and drop it after stopping it.
///
/// Such a daemon binds the port number it is given and cannot report one it chose itself, so
/// the port must be chosen before it starts. Binding port 0 and releasing it, as the lab once
/// did, races under parallel tests: between the release and the daemon's bind, any socket
/// bound to port 0 (another test's server in this process, or another test binary) may get the
/// same port from the kernel, and a daemon restarted on its ports may find them taken. A lease
/// closes both gaps:
///
/// - its ports lie outside the kernel's ephemeral range
///   (`/proc/sys/net/ipv4/ip_local_port_range`, from which every bind to port 0 and every
///   outgoing connection takes its port), so no socket of any test can be given one by chance;
/// - each is reserved by an exclusive `flock` on `<tmp>/mailaudit-ports/<port>.lock`, held by
///   the lease, so two leases never hold the same port, in this process or another; the kernel
///   releases the lock when the process dies, so a killed test leaves no stale reservation;
/// - a port is leased only if it can be bound at that moment, which skips one still served by
///   a daemon of a process that just exited, or by a program of the machine that uses a fixed
///   port in that range.
///
/// What remains (such a program binding the port after the check) fails the daemon's start,
/// which the harnesses retry with a new lease.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    _lock: fs::File,
}

impl PortLease {
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// How many ports below the ephemeral range leases take turns on.
const LEASE_SPAN: u16 = 4096;

/// The ports leases are taken from: the [`LEASE_SPAN`] ports just below the kernel's ephemeral
/// range (but not the privileged ones), or, when that range starts too low, the ports above it.
fn lease_range() -> std::ops::Range<u32> {
    let (lo, hi) = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let below = lo.saturating_sub(u32::from(LEASE_SPAN)).max(1024)..lo;
    if below.len() >= 256 {
        below
    } else {
        hi + 1..65536
    }
}

/// `count` leased ports of 127.0.0.1 ([`PortLease`]).
pub fn lease_ports(count: usize) -> io::Result<Vec<PortLease>> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let range = lease_range();
    let span = range.end.saturating_sub(range.start);
    let dir = std::env::temp_dir().join("mailaudit-ports");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o1777)
        .create(&dir)?;
    // Shared by every user's tests, like the temporary directory (the umask narrowed the mode;
    // only the owner can widen it again, which is all that is needed).
    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777));
    // Start at a place that differs by process and by call, so concurrent callers rarely
    // try the same ports first.
    let start = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(NEXT.fetch_add(61, Ordering::Relaxed));
    let mut leases = Vec::with_capacity(count);
    for i in 0..span {
        if leases.len() == count {
            break;
        }
        let port = range.start + (start.wrapping_add(i) % span);
        if let Some(lease) = try_lease(&dir, port as u16) {
            leases.push(lease);
        }
    }
    if leases.len() < count {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "no free port to lease in {}..{} on 127.0.0.1",
                range.start, range.end
            ),
        ));
    }
    Ok(leases)
}

/// A lease on `port` if nobody holds one and it can be bound now.
fn try_lease(dir: &Path, port: u16) -> Option<PortLease> {
    // A lock file of another user may be read-only to us: `flock` needs no write access.
    let path = dir.join(format!("{port}.lock"));
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(&path)
        .or_else(|_| fs::File::open(&path))
        .ok()?;
    lock.try_lock().ok()?;
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
    Some(PortLease { port, _lock: lock })
}

/// Connects to `addr` and reads the server's first line, which must start with `expect`
/// (`220` for SMTP, `* OK` for IMAP), then says `bye` (`QUIT`, `x LOGOUT`) and reads the
/// answer: a server that does this is ready. The error says what went wrong.
pub(crate) fn greet(addr: SocketAddr, expect: &str, bye: &str) -> Result<(), String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading the greeting: {e}"))?;
    if !line.starts_with(expect) {
        return Err(format!("greeting {:?}", line.trim_end()));
    }
    let mut writer = stream;
    writer
        .write_all(format!("{bye}\r\n").as_bytes())
        .map_err(|e| format!("{bye}: {e}"))?;
    line.clear();
    let _ = reader.read_line(&mut line);
    Ok(())
}

/// Writes `content` to `path` (created or truncated) with permission bits `mode`.
pub(crate) fn write_file(path: &Path, content: &str, mode: u32) -> io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?
        .write_all(content.as_bytes())
}

/// The file's content as text (invalid UTF-8 replaced), empty when it cannot be read.
pub(crate) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A test's lab server, or `None` when it could not start and the environment variable
/// `skip_var` (`MAILAUDIT_SKIP_POSTFIX`, `MAILAUDIT_SKIP_DOVECOT`, `MAILAUDIT_SKIP_BROWSER`)
/// is set: the one policy of the tests that need a system server or program. Without the
/// variable a server that cannot start fails the test (panics), saying how to install it, so
/// CI never skips silently.
pub fn or_skip<T, E: std::fmt::Display>(started: Result<T, E>, skip_var: &str) -> Option<T> {
    match started {
        Ok(lab) => Some(lab),
        Err(e) if std::env::var_os(skip_var).is_some() => {
            eprintln!("skipped ({skip_var}): {e}");
            None
        }
        Err(e) => panic!("{e}\n(run scripts/install-test-deps.sh as root, or set {skip_var}=1)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_dirs_and_ports() {
        assert!(process_running(std::process::id()));
        assert!(!process_running(u32::MAX));
        let base = std::env::temp_dir();
        let seq = AtomicU32::new(0);
        let a = create_dir(&base, "mailaudit-instance-test-", &seq).unwrap();
        let b = create_dir(&base, "mailaudit-instance-test-", &seq).unwrap();
        assert_ne!(a, b);
        write_file(&a.join("f"), "x\u{e9}", 0o600).unwrap();
        assert_eq!(read_lossy(&a.join("f")), "x\u{e9}");
        assert_eq!(read_lossy(&a.join("missing")), "");
        // Our own directories are not orphans.
        reap_orphans("mailaudit-instance-test-", |_| panic!("not an orphan"));
        assert!(a.is_dir() && b.is_dir());
        fs::remove_dir_all(a).unwrap();
        fs::remove_dir_all(b).unwrap();
    }

    #[test]
    fn leased_ports_are_exclusive_and_never_ephemeral() {
        let range = lease_range();
        let leases = lease_ports(3).unwrap();
        let ports: Vec<u16> = leases.iter().map(PortLease::port).collect();
        assert!(
            ports.iter().all(|p| range.contains(&u32::from(*p))),
            "{ports:?}"
        );
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
        // Ports the kernel hands out for port 0 are never in the lease range.
        let bound: Vec<TcpListener> = (0..20)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        for l in &bound {
            let p = l.local_addr().unwrap().port();
            assert!(!range.contains(&u32::from(p)), "{p} from port 0");
        }
        // A held port is not leased again (here or by another process: the lock is an
        // `flock`, per open file); once released it is.
        let dir = std::env::temp_dir().join("mailaudit-ports");
        assert!(try_lease(&dir, ports[0]).is_none());
        // A port in use is not leased, even without a lock file.
        let busy = leases.into_iter().next().unwrap();
        let port = busy.port();
        drop(busy);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(try_lease(&dir, port).is_none());
        drop(listener);
        assert_eq!(try_lease(&dir, port).map(|l| l.port()), Some(port));
    }
}
