//! What the lab's private server instances (`postfix`, `dovecot`) share: instance directories
//! named `<prefix><pid>-<n>` in the temporary directory, the reaping of those whose owning
//! process died before its drops ran, process liveness from `/proc`, free loopback ports, small
//! file helpers, and the tests' skip-or-fail policy for the system servers ([`or_skip`]).

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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

/// `count` ports that were free on 127.0.0.1 a moment ago (bound together, then released).
pub(crate) fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
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
/// `skip_var` (`MAILAUDIT_SKIP_POSTFIX`, `MAILAUDIT_SKIP_DOVECOT`) is set: the one policy of the
/// tests that need a system server. Without the variable a server that cannot start fails the
/// test (panics), saying how to install it, so CI never skips silently.
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
        let ports = free_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert!(ports.iter().all(|p| *p > 0));
    }
}
