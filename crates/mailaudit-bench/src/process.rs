//! Running a child process and measuring it: wall time, exit status, standard error and the
//! peak resident set size.
//!
//! The peak RSS is the kernel's high-water mark `VmHWM` from `/proc/<pid>/status`, read every
//! few milliseconds while the child runs. The mark only grows, so the last reading misses at
//! most what the child allocated in its final interval. (Reading it needs no unsafe code, unlike
//! `wait4`'s rusage; it is also what `mailaudit --stats` reports about itself.)

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often the child's `VmHWM` is read.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(5);

/// What a finished child did.
#[derive(Debug)]
pub struct ChildRun {
    /// From spawn to exit.
    pub wall: Duration,
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to standard error.
    pub stderr: String,
    /// Its peak resident set size in KiB, if `/proc` could be read: its `VmHWM`, or, when it
    /// had child processes, the largest sum of the `VmRSS` of it and its descendants seen.
    pub peak_rss_kib: Option<u64>,
    /// The CPU time (user + system) it and its descendants had used at the last reading
    /// before it exited.
    pub cpu: Option<Duration>,
    /// The most processes seen at once in its tree (1: no child process).
    pub processes: usize,
    /// Its standard output, with [`Stdout::Capture`] (empty otherwise).
    pub stdout: String,
    /// How many times the needle of [`Stdout::Count`] occurred in its standard output.
    pub stdout_matches: u64,
}

/// What to do with a child's standard output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stdout {
    /// Send it to `/dev/null`.
    Null,
    /// Keep it all (for short outputs).
    Capture,
    /// Read it as it comes and count the occurrences of these bytes, keeping none of it.
    Count(Vec<u8>),
}

/// Runs `command` to completion with standard input and output closed to `/dev/null` and
/// standard error captured, sampling its peak RSS.
pub fn run(command: Command) -> std::io::Result<ChildRun> {
    run_with(command, Stdout::Null)
}

/// [`run`], with standard output handled as `stdout` says.
pub fn run_with(mut command: Command, stdout: Stdout) -> std::io::Result<ChildRun> {
    command
        .stdin(Stdio::null())
        .stdout(if stdout == Stdout::Null {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn()?;
    let out = child.stdout.take().map(|pipe| {
        let mode = stdout.clone();
        thread::spawn(move || read_stdout(pipe, &mode))
    });
    // Drain standard error on its own thread so a chatty child never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut pipe| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let pid = child.id();
    let status_path = format!("/proc/{pid}/status");
    let stat_path = format!("/proc/{pid}/stat");
    let mut peak: Option<u64> = None;
    let mut cpu = None;
    let mut processes = 1;
    let status = loop {
        // Until it is reaped the pid cannot be reused, so this is always our child.
        if let Some(kib) = std::fs::read_to_string(&status_path)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kib)
        {
            peak = Some(peak.map_or(kib, |p| p.max(kib)));
        }
        let mut total = std::fs::read_to_string(&stat_path)
            .ok()
            .as_deref()
            .and_then(cpu_time_with_children);
        // A child that forks workers (parsedmarc does, even with one): their memory and CPU
        // count too. The RSS of the tree is summed (pages shared after a fork count twice).
        let tree = descendants(pid);
        if !tree.is_empty() {
            processes = processes.max(tree.len() + 1);
            let own_rss = std::fs::read_to_string(&status_path)
                .ok()
                .as_deref()
                .and_then(|s| status_kib(s, "VmRSS:"));
            let mut sum = own_rss.unwrap_or(0);
            for d in &tree {
                let text = std::fs::read_to_string(format!("/proc/{d}/status")).ok();
                sum += text
                    .as_deref()
                    .and_then(|s| status_kib(s, "VmRSS:"))
                    .unwrap_or(0);
                let time = std::fs::read_to_string(format!("/proc/{d}/stat"))
                    .ok()
                    .as_deref()
                    .and_then(cpu_time);
                total = total.map(|t| t + time.unwrap_or_default());
            }
            peak = Some(peak.map_or(sum, |p| p.max(sum)));
        }
        if let Some(time) = total {
            cpu = Some(cpu.map_or(time, |c: Duration| c.max(time)));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        thread::sleep(SAMPLE_INTERVAL);
    };
    let wall = started.elapsed();
    let stderr = stderr
        .and_then(|handle| handle.join().ok())
        .unwrap_or_default();
    let (stdout, stdout_matches) = out
        .and_then(|handle| handle.join().ok())
        .unwrap_or_default();
    Ok(ChildRun {
        wall,
        status,
        stderr,
        peak_rss_kib: peak,
        cpu,
        processes,
        stdout,
        stdout_matches,
    })
}

/// Reads a child's standard output to its end: the text with [`Stdout::Capture`], the count
/// of the needle with [`Stdout::Count`].
fn read_stdout(mut pipe: impl Read, mode: &Stdout) -> (String, u64) {
    match mode {
        Stdout::Null => (String::new(), 0),
        Stdout::Capture => {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            (text, 0)
        }
        Stdout::Count(needle) => (String::new(), count_matches(pipe, needle)),
    }
}

/// Occurrences of `needle` (non-empty) in what `input` yields, read in chunks: a match split
/// across two reads is counted once.
pub fn count_matches(mut input: impl Read, needle: &[u8]) -> u64 {
    if needle.is_empty() {
        return 0;
    }
    let mut count = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    // Carry the last `needle.len() - 1` bytes over to the next chunk.
    let mut carry = 0usize;
    loop {
        let n = match input.read(&mut buf[carry..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let filled = carry + n;
        let window = &buf[..filled];
        count += window
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count() as u64;
        carry = (needle.len() - 1).min(filled);
        buf.copy_within(filled - carry..filled, 0);
    }
    count
}

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: u64 = 100;

/// User plus system CPU time from a `/proc/<pid>/stat` line (fields 14 and 15, counted after
/// the parenthesised command name, which may itself contain spaces and parentheses).
pub fn cpu_time(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// [`cpu_time`] plus the time of the children it has waited for (fields 16 and 17).
pub fn cpu_time_with_children(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if fields.len() < 4 {
        return None;
    }
    Some(Duration::from_millis(
        fields.iter().sum::<u64>() * 1000 / USER_HZ,
    ))
}

/// The descendants of `pid` alive now, from `/proc/<pid>/task/<tid>/children` (each thread
/// lists the children it started).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if child != pid && !out.contains(&child) && out.len() < 10_000 {
                    out.push(child);
                    todo.push(child);
                }
            }
        }
    }
    out
}

/// This process's own CPU time so far (for the lab server running in it).
pub fn own_cpu_time() -> Option<Duration> {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(cpu_time)
}

/// The `VmHWM:` value of a `/proc/<pid>/status` text, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status_kib(status, "VmHWM:")
}

/// The value of the line starting `label` of a `/proc/<pid>/status` text, in KiB.
pub fn status_kib(status: &str, label: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(label))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value),
        _ => None,
    }
}

/// Finds `program` in the directories of `PATH`, as a shell would.
pub fn find_in_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm() {
        let status =
            "Name:\tmailaudit\nVmPeak:\t  300000 kB\nVmHWM:\t   88064 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(88_064));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\tlots kB\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\t12 MB\n"), None);
    }

    #[test]
    fn runs_a_child_and_measures_it() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo to-stderr >&2; echo to-stdout; exit 3"]);
        let run = run(command).expect("sh runs");
        assert_eq!(run.status.code(), Some(3));
        assert_eq!(run.stderr, "to-stderr\n");
        assert!(run.wall > Duration::ZERO);
        // The bench's own status has a VmHWM, so /proc works here.
        let own = std::fs::read_to_string("/proc/self/status").expect("/proc");
        assert!(vm_hwm_kib(&own).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn counts_matches_across_reads_and_captures_output() {
        // A reader that returns one byte per read splits every match.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.split_first() {
                    Some((b, rest)) if !buf.is_empty() => {
                        buf[0] = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let text = b"\"source_ip\": 1, \"source_ip\": 2, \"source_ip\"\"source_ip\"";
        assert_eq!(count_matches(Trickle(text), b"\"source_ip\""), 4);
        assert_eq!(count_matches(&text[..], b"\"source_ip\""), 4);
        assert_eq!(count_matches(&text[..], b"absent"), 0);
        assert_eq!(count_matches(&b"aaaa"[..], b"aa"), 3);
        assert_eq!(count_matches(&text[..], b""), 0);

        let mut command = Command::new("sh");
        command.args(["-c", "printf 'x-x-x'; printf ' ok\\n'"]);
        let counted = run_with(command, Stdout::Count(b"x".to_vec())).expect("sh runs");
        assert_eq!(counted.stdout_matches, 3);
        assert!(counted.stdout.is_empty());
        let mut command = Command::new("sh");
        command.args(["-c", "echo 12 reports stored"]);
        let captured = run_with(command, Stdout::Capture).expect("sh runs");
        assert_eq!(captured.stdout, "12 reports stored\n");
    }

    #[test]
    fn measures_the_whole_process_tree() {
        // A shell whose child (dd) holds a 64 MiB buffer: the tree's peak counts the child's
        // memory and CPU, which the shell's own VmHWM and times do not show.
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "dd if=/dev/zero of=/dev/null bs=64M count=40 2>/dev/null; true",
        ]);
        let run = run(command).expect("sh runs");
        assert!(run.status.success(), "{}", run.stderr);
        assert_eq!(run.processes, 2);
        assert!(
            run.peak_rss_kib.is_some_and(|kib| kib > 64 * 1024),
            "{:?}",
            run.peak_rss_kib
        );
        assert!(
            run.cpu.is_some_and(|c| c >= Duration::from_millis(50)),
            "{:?}",
            run.cpu
        );
        assert!(descendants(std::process::id()).is_empty());
    }

    #[test]
    fn reads_cpu_time() {
        let stat = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 4 0 100 0 0";
        assert_eq!(cpu_time(stat), Some(Duration::from_millis(3_800)));
        let stat = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 130 70 50 20 0 4 0 100 0 0";
        assert_eq!(
            cpu_time_with_children(stat),
            Some(Duration::from_millis(5_000))
        );
        assert_eq!(cpu_time_with_children("1234 (x) S 1"), None);
        assert_eq!(cpu_time("1234 (x) S 1"), None);
        assert_eq!(cpu_time("garbage"), None);
        assert!(own_cpu_time().is_some());
    }

    #[test]
    fn finds_programs_on_the_path() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("no-such-program-mailaudit-bench").is_none());
    }
}
