//! The inputs of `reports parse` and `reports ingest`: files, directories and Maildirs walked in
//! name order, each file read (size-capped) and opened into its documents within the limits
//! (decompressed sizes, nesting, time).

use std::path::{Path, PathBuf};
use std::time::Duration;

use mailaudit_core::reports::Mode;
use mailaudit_core::reports::container::{self, Limits};

/// The largest input file read (the containers have their own decompression caps).
pub const MAX_FILE: u64 = 100 * 1024 * 1024;

/// The inputs named on the command line, walked: the files to read in order, the paths that
/// cannot be listed, and the files passed over.
#[derive(Debug, Default)]
pub struct InputItems {
    /// Every file to read, in order, after a `(source, why)` for each path that cannot be
    /// listed.
    pub items: Vec<Result<PathBuf, (String, String)>>,
    /// Files found in a directory and passed over: `(path, why)` (documentation, hidden files).
    pub passed_over: Vec<(String, &'static str)>,
}

/// The files named by `paths` (directories walked), in order, after a `(source, why)` for each
/// path that cannot be listed.
pub fn input_items(paths: &[PathBuf]) -> InputItems {
    let mut errors = Vec::new();
    let mut files_found = Vec::new();
    let mut passed_over = Vec::new();
    for p in paths {
        files(p, &mut files_found, &mut errors, &mut passed_over);
    }
    InputItems {
        items: errors
            .into_iter()
            .map(Err)
            .chain(files_found.into_iter().map(Ok))
            .collect(),
        passed_over,
    }
}

/// Every file below `path` (a file, a directory, or a Maildir's `cur`/`new`), in name order;
/// an unreadable directory is an error entry `(path, why)`.
fn files(
    path: &Path,
    out: &mut Vec<PathBuf>,
    errors: &mut Vec<(String, String)>,
    passed_over: &mut Vec<(String, &'static str)>,
) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push((
                    path.display().to_string(),
                    format!("cannot read the directory: {e}"),
                ));
                return;
            }
        };
        entries.sort();
        for e in entries {
            // Maildir's `tmp` holds messages being delivered: not reports yet.
            if e.file_name().is_some_and(|n| n == "tmp") && path.join("cur").is_dir() {
                continue;
            }
            // A directory of reports often carries its own documentation (a README, a
            // licence NOTICE) or a desktop's hidden files: passed over with a note, not an
            // error that fails the run. A file named on the command line is always read.
            if e.is_file()
                && let Some(why) = e
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(not_a_report)
            {
                passed_over.push((e.display().to_string(), why));
                continue;
            }
            files(&e, out, errors, passed_over);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// Why a file found in a directory is evidently not a report, from its name: documentation
/// (README, NOTICE, LICENSE, ... with no extension or a text one) and hidden files.
fn not_a_report(name: &str) -> Option<&'static str> {
    const DOCS: [&str; 9] = [
        "readme",
        "notice",
        "license",
        "licence",
        "copying",
        "changelog",
        "authors",
        "source",
        "sources",
    ];
    if name.starts_with('.') {
        return Some("a hidden file, not a report");
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) => (stem, Some(ext.to_ascii_lowercase())),
        None => (name, None),
    };
    let text_ext = ext
        .as_deref()
        .is_none_or(|e| matches!(e, "md" | "txt" | "rst" | "adoc" | "markdown"));
    (text_ext && DOCS.contains(&stem.to_ascii_lowercase().as_str()))
        .then_some("a documentation file, not a report")
}

/// The bounds on reading one input: decompressed sizes and nesting (the core's [`Limits`]), and
/// time.
#[derive(Clone, Debug)]
pub struct ReadLimits {
    /// Decompression caps.
    pub sizes: Limits,
    /// Most time spent opening one input, then parsing each of its reports; `None`: no limit.
    pub time: Option<Duration>,
}

impl ReadLimits {
    /// Caps of `max_decompressed_mb` MiB and `max_seconds` seconds (0: no time limit).
    pub fn new(max_decompressed_mb: usize, max_seconds: f64) -> ReadLimits {
        ReadLimits {
            sizes: Limits {
                max_decompressed: max_decompressed_mb.saturating_mul(1024 * 1024),
                ..Limits::default()
            },
            time: (max_seconds > 0.0).then(|| Duration::from_secs_f64(max_seconds)),
        }
    }
}

/// Runs `work` on a thread of its own and waits at most `limit` for it (without a limit it runs
/// here). Past the limit the thread is abandoned: what it works on is size-capped, so it ends
/// by itself, and its result is dropped. Nothing in the parsers should take long, so this
/// bounds what a pathological input might still do (the hostile-input rule: one file must not
/// stall the batch).
pub(crate) fn bounded<T: Send + 'static>(
    limit: Option<Duration>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let Some(limit) = limit else {
        return Ok(work());
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("mailaudit-report".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| format!("cannot start a reader thread: {e}"))?;
    rx.recv_timeout(limit).map_err(|e| match e {
        std::sync::mpsc::RecvTimeoutError::Timeout => format!(
            "took longer than {} s to read (--max-seconds-per-file); skipped",
            limit.as_secs_f64()
        ),
        std::sync::mpsc::RecvTimeoutError::Disconnected => {
            "the reader failed unexpectedly; skipped".to_string()
        }
    })
}

/// One input file, read and opened.
pub struct FileInput {
    /// The file as read (before decompression).
    pub raw: Vec<u8>,
    /// Its documents, each with a label naming the file (and the document inside it).
    pub docs: Vec<(String, container::Extracted)>,
    /// What of it was not read, `(label, why)`: an mbox's messages over `--max-messages`.
    pub skipped: Vec<(String, String)>,
    /// The time limit on parsing each document.
    pub time: Option<Duration>,
}

/// Opens one input's bytes (a file named `name`, shown as `source`) into its documents, within
/// the limits, or says why it cannot be. `mode` decides whether a damaged gzip stream is
/// recovered (with a warning on its documents) or refused.
pub fn open_input(
    source: &str,
    name: &str,
    raw: Vec<u8>,
    limits: &ReadLimits,
    mode: Mode,
) -> Result<FileInput, String> {
    let (raw, found) = {
        let (name, sizes) = (name.to_string(), limits.sizes);
        bounded(limits.time, move || {
            let found = container::extract(&name, &raw, &sizes, mode);
            (raw, found)
        })?
    };
    let found = found.map_err(|e| e.to_string())?;
    let label = |inner: &str| {
        if inner == name {
            source.to_string()
        } else {
            format!("{source}:{inner}")
        }
    };
    let skipped: Vec<(String, String)> = found
        .skipped
        .iter()
        .map(|s| {
            (
                label(&s.name),
                format!(
                    "{} messages read, {} over --max-messages skipped",
                    s.read, s.skipped
                ),
            )
        })
        .collect();
    if found.docs.is_empty() && skipped.is_empty() {
        return Err("no report found".to_string());
    }
    let docs = found
        .docs
        .into_iter()
        .map(|d| (label(&d.name), d))
        .collect();
    Ok(FileInput {
        raw,
        docs,
        skipped,
        time: limits.time,
    })
}

/// `items`' files read lazily one at a time (memory stays bounded by one file), each opened
/// into its documents, or `(source, why)` when it cannot be.
pub fn inputs(
    items: Vec<Result<PathBuf, (String, String)>>,
    limits: ReadLimits,
    mode: Mode,
) -> impl Iterator<Item = Result<FileInput, (String, String)>> {
    items
        .into_iter()
        .map(move |item| item.and_then(|path| read_input(&path, &limits, mode)))
}

/// One file read (at most [`MAX_FILE`] bytes) and opened into its documents within `limits`, or
/// `(source, why)` when it cannot be.
pub fn read_input(
    path: &Path,
    limits: &ReadLimits,
    mode: Mode,
) -> Result<FileInput, (String, String)> {
    let source = path.display().to_string();
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_FILE) {
        return Err((
            source,
            format!("larger than {} MiB; skipped", MAX_FILE / 1024 / 1024),
        ));
    }
    let raw = std::fs::read(path).map_err(|e| (source.clone(), format!("cannot read: {e}")))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(&source)
        .to_string();
    open_input(&source, &name, raw, limits, mode).map_err(|e| (source, e))
}
