//! `mailaudit`: audit and harden the email security of many Microsoft 365 domains at once.
//!
//! The binary is thin: argument parsing ([`cli`]), wiring of the library crates, and output
//! ([`output`]). Exit codes: 0 success; 1 a finding at or above `--fail-on`; 2 an error (bad
//! arguments, unreadable input, an input line that is not a domain name — the run still completes).

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a bulk audit allocates and frees many small
/// buffers per DNS query on every worker thread, and glibc's malloc took a fifth of the
/// auditor's CPU time in a profile (README, Performance).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse_args();
    match commands::run(args) {
        Ok(code) => code,
        // A reader that stops early (`mailaudit audit ... | head`) is not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mailaudit: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
