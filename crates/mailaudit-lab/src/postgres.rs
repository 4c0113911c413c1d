//! A private PostgreSQL cluster on loopback for a test process (the store's tests, the CLI's
//! distributed-run tests).
//!
//! The first test that needs it runs `initdb` and `pg_ctl start` from `/usr/lib/postgresql/*/bin`
//! (the newest version; `MAILAUDIT_PG_BIN` overrides the directory) into a fresh temporary
//! directory: trust authentication, `listen_addresses=127.0.0.1` on a leased port, the Unix
//! socket inside the temporary directory, fsync off. As root the cluster runs as the `postgres`
//! OS user (PostgreSQL refuses to run as root) and the directory is owned by it.
//!
//! Cleanup: libtest never runs destructors of statics, and a killed test binary runs nothing, so a
//! detached watchdog (`setsid --fork sh -c …`, stdio on /dev/null) polls this process's pid and, once it is
//! gone, stops the cluster (`pg_ctl stop -m immediate`) and removes the directory. Each test gets
//! its own database (`createdb test_N`), so tests run in parallel on one cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::instance::{create_dir, is_root};

/// The running cluster.
pub struct Cluster {
    /// The cluster's port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    /// Its port's lease, held for the life of the test process (the cluster's too: the
    /// watchdog stops it once the process is gone, and a lease is only taken on a port that
    /// nothing listens on).
    _lease: crate::PortLease,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

const MISSING: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under \
    /usr/lib/postgresql/*/bin: install them with `sudo scripts/install-test-deps.sh` \
    (or point MAILAUDIT_PG_BIN at their directory)";

/// URL of a fresh, empty database on the process's cluster (started on first use).
///
/// # Panics
///
/// When the PostgreSQL binaries are missing or the cluster cannot start: a test that needs
/// PostgreSQL fails with the reason.
pub fn fresh_database() -> String {
    let c = cluster();
    let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
    let name = format!("test_{}_{n}", std::process::id());
    let mut createdb = Command::new(c.bin.join("createdb"));
    createdb
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &c.port.to_string(),
            "-U",
            "postgres",
            &name,
        ])
        .current_dir("/")
        .stdin(Stdio::null());
    run(createdb, &format!("createdb {name}"), None);
    format!("postgres://postgres@127.0.0.1:{}/{name}", c.port)
}

/// The process's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

fn bin_dir() -> PathBuf {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(d) = std::env::var_os("MAILAUDIT_PG_BIN") {
        let d = PathBuf::from(d);
        assert!(has_all(&d), "MAILAUDIT_PG_BIN={}: {MISSING}", d.display());
        return d;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!("{MISSING}"),
    }
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    assert!(
        out.status.success(),
        "running as root, but there is no `postgres` OS user to run the test cluster as: {MISSING}"
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

/// A command for a PostgreSQL program, as the `postgres` user when we are root.
fn pg_command(root: bool, program: &Path, dir: &Path) -> Command {
    let mut c = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // The postgres user may not be able to enter the test's working directory.
    c.current_dir(dir).stdin(Stdio::null());
    c
}

fn run(mut c: Command, what: &str, log: Option<&Path>) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    if !out.status.success() {
        let log = log
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default();
        panic!(
            "{what} failed ({}):\n{}\n{}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn start() -> Cluster {
    let bin = bin_dir();
    let root = is_root();
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let dir = create_dir(&std::env::temp_dir(), "mailaudit-pg-", &SEQUENCE)
        .expect("a directory for the test cluster");
    if root {
        std::os::unix::fs::chown(&dir, Some(id_of("-u")), Some(id_of("-g")))
            .expect("chown the cluster directory to postgres");
    }
    spawn_watchdog(&bin, &dir, root);

    let data = dir.join("data");
    let sock = dir.join("sock");
    let log = dir.join("postgres.log");
    let mut mk = pg_command(root, Path::new("/bin/mkdir"), &dir);
    mk.arg(&sock);
    run(mk, "mkdir socket directory", None);

    let mut initdb = pg_command(root, &bin.join("initdb"), &dir);
    initdb.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]);
    run(initdb, "initdb", None);

    // PostgreSQL binds the port it is told (it cannot take port 0 and report the one it got),
    // so the port is leased first (`crate::PortLease`: outside the kernel's ephemeral
    // range, reserved against every other lease of this and other test processes). A start
    // that fails all the same (a program outside the tests on that port) is retried with a new
    // lease.
    let mut last = String::new();
    for _ in 0..5 {
        let lease = crate::lease_ports(1)
            .expect("a leased port on 127.0.0.1")
            .remove(0);
        let port = lease.port();
        let mut ctl = pg_command(root, &bin.join("pg_ctl"), &dir);
        ctl.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=400 -c shared_buffers=32MB",
                sock.display()
            ));
        ctl.arg("start");
        let out = ctl.output().expect("run pg_ctl");
        if out.status.success() {
            return Cluster {
                port,
                bin,
                _lease: lease,
            };
        }
        last = format!(
            "{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    panic!("pg_ctl start failed 5 times:\n{last}");
}

/// Stops the cluster and removes its directory once this test process has exited, however it
/// exits (normal end, panic, SIGKILL).
fn spawn_watchdog(bin: &Path, dir: &Path, root: bool) {
    let pid = std::process::id();
    let stop = format!(
        "{} -D {}/data -m immediate stop",
        bin.join("pg_ctl").display(),
        dir.display()
    );
    let stop = if root {
        format!("runuser -u postgres -- {stop}")
    } else {
        stop
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         if [ -f {dir}/data/postmaster.pid ]; then {stop}; fi; rm -rf {dir}",
        dir = dir.display()
    );
    // `setsid --fork` returns at once, leaving the watchdog in its own session (a Ctrl-C to the
    // test's process group does not reach it) with init as its parent.
    let status = Command::new("setsid")
        .args(["--fork", "sh", "-c", &script])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start the cluster watchdog (setsid sh)");
    assert!(status.success(), "setsid --fork failed: {status}");
}
