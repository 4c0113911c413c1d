//! Helpers shared by the CLI tests: running the real binary, a lab DNS server on loopback, and
//! a UDP socket that never answers.
//!
//! Every run of the binary either passes `--sample` (its own in-process DNS server) or
//! `--nameserver` pointing at one of these loopback servers, so nothing reaches a public address.

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailaudit_lab::{LabDns, Zone};
use serde_json::Value;

/// The longest any single run of the binary may take before the test fails (and kills it).
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What a run of the binary produced.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Output {
    /// Stdout parsed as JSON (panics with the output if it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics, showing both streams, unless the exit status is `code`.
    #[track_caller]
    pub(crate) fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs the binary with `args`, feeding `stdin` (closed when `None`), killing it if it takes
/// longer than [`RUN_LIMIT`].
/// A data directory shared by this test process's runs of the binary (the default store).
pub(crate) fn data_home() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary data directory"))
        .path()
}

pub(crate) fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    run_env(args, &[], stdin)
}

/// Runs the binary with `env` added to its environment (and MAILAUDIT_PASSWORD removed unless
/// given there).
pub(crate) fn run_env(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let started = Instant::now();
    let args = unsigned_lab(args);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args(&args)
        .env_remove("MAILAUDIT_PASSWORD")
        .envs(env.iter().copied())
        .env_remove("NO_COLOR")
        // Audits are recorded in the default store: keep it out of the user's data directory.
        .env_remove("MAILAUDIT_DB")
        .env("XDG_DATA_HOME", data_home())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mailaudit binary starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes()).expect("write stdin");
        drop(pipe);
    }
    // Drain both pipes on threads so a large report cannot block the child.
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        out_pipe.read_to_string(&mut s).map(|_| s)
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        err_pipe.read_to_string(&mut s).map(|_| s)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mailaudit") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailaudit {args:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let stdout = out_thread
        .join()
        .expect("stdout reader")
        .expect("stdout is UTF-8");
    let stderr = err_thread
        .join()
        .expect("stderr reader")
        .expect("stderr is UTF-8");
    Output {
        code: status
            .code()
            .expect("mailaudit exited normally, not by a signal"),
        stdout,
        stderr,
        elapsed,
    }
}

/// `args` with `--no-dnssec` before the first `--nameserver`, unless they choose DNSSEC
/// themselves (`--no-dnssec`, `--trust-anchor`): every `--nameserver` of these tests is a lab
/// DNS server, and none of them is signed (the DNSSEC tests use the signed lab,
/// `mailaudit_lab::SignedDns`, with `--trust-anchor`), so validating from the IANA root would
/// only find every lab domain's zone bogus.
pub(crate) fn unsigned_lab<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut args = args.to_vec();
    let chosen = args
        .iter()
        .any(|a| *a == "--no-dnssec" || *a == "--trust-anchor");
    if let Some(i) = args.iter().position(|a| *a == "--nameserver")
        && !chosen
    {
        args.insert(i, "--no-dnssec");
    }
    args
}

/// Runs the binary with `args` and no standard input.
pub(crate) fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

/// A lab DNS server on 127.0.0.1 with its own multi-thread runtime, so that it answers while the
/// test thread blocks on the binary.
pub(crate) struct Lab {
    // Field order matters: the server is dropped (stopped) before its runtime.
    dns: LabDns,
    _rt: tokio::runtime::Runtime,
    addr: String,
}

impl Lab {
    /// Serves `zone` (text format of [`Zone::parse`]).
    pub(crate) fn start(zone: &str) -> Lab {
        Lab::start_zone(Zone::parse(zone).expect("test zone parses"))
    }

    /// Serves the built-in sample fleet plus the records of `extra` (text format).
    pub(crate) fn sample_plus(extra: &str) -> Lab {
        let (mut zone, _) = mailaudit_lab::sample_fleet();
        zone.merge(Zone::parse(extra).expect("test zone parses"));
        Lab::start_zone(zone)
    }

    /// Serves `zone`, built in code (names the text format cannot hold, e.g. control bytes).
    pub(crate) fn start_zone(zone: Zone) -> Lab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dns = rt.block_on(LabDns::start(zone)).expect("lab DNS starts");
        let addr = dns.addr();
        assert!(addr.ip().is_loopback());
        Lab {
            dns,
            _rt: rt,
            addr: addr.to_string(),
        }
    }

    /// `ADDR:PORT`, for `--nameserver`.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Queries received so far.
    pub(crate) fn query_count(&self) -> u64 {
        self.dns.query_count()
    }
}

/// A UDP socket on 127.0.0.1 that receives queries and never answers them.
pub(crate) struct Silent {
    _socket: UdpSocket,
    addr: SocketAddr,
}

impl Silent {
    pub(crate) fn bind() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        let addr = socket.local_addr().expect("local address");
        Silent {
            _socket: socket,
            addr,
        }
    }

    pub(crate) fn addr(&self) -> String {
        self.addr.to_string()
    }
}

/// The `domain` of each object of a JSON array report.
pub(crate) fn domains(report: &Value) -> Vec<String> {
    report
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|d| d["domain"].as_str().expect("domain is a string").to_owned())
        .collect()
}

/// The object of `domain` in a JSON array report.
pub(crate) fn domain<'a>(report: &'a Value, domain: &str) -> &'a Value {
    report
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} is in the report"))
}

/// The finding IDs of one domain's JSON object, in order.
pub(crate) fn finding_ids(domain: &Value) -> Vec<String> {
    domain["findings"]
        .as_array()
        .expect("findings is an array")
        .iter()
        .map(|f| f["id"].as_str().expect("finding id is a string").to_owned())
        .collect()
}

/// Sends SIGTERM to `child` (what a supervisor sends) and waits at most 15 s for it to exit;
/// its exit status (the test fails, and the child is killed, if it does not stop in time).
pub(crate) fn sigterm_and_wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success(), "kill -TERM {}", child.id());
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait for mailaudit") {
            return s;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailaudit did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` over plain HTTP/1.1 on `addr` (the portal, on loopback); the status code and the
/// whole response.
pub(crate) fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut conn = std::net::TcpStream::connect(addr).expect("the portal listens");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// A `mailaudit serve` started by [`spawn_serve`]: the child, the lines of its standard error
/// still to come, and the line that gave its address (`mailaudit: portal on http://…`).
pub(crate) struct Served {
    pub(crate) child: std::process::Child,
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
    pub(crate) line: String,
}

impl Served {
    /// `HOST:PORT` of the portal, from its address line.
    pub(crate) fn addr(&self) -> String {
        self.line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {:?}", self.line))
            .to_string()
    }
}

/// Starts `mailaudit --db DB serve --tick 3600 ARGS` with `env` (a long tick: the scheduler
/// stays out of the way) and waits up to 30 s for the line that gives its address.
pub(crate) fn spawn_serve(db: &str, args: &[&str], env: &[(&str, &str)]) -> Served {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args(["--db", db, "serve", "--tick", "3600"])
        .args(args)
        .envs(env.iter().copied())
        .env("XDG_DATA_HOME", data_home())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailaudit serve starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("serve prints its address within 30 s");
        if line.contains("portal on http") {
            break line;
        }
    };
    Served { child, lines, line }
}
