//! `mailaudit reports parse`: read DMARC aggregate, failure and SMTP TLS reports from files,
//! directories, mbox files or Maildirs and print what they say, without storing anything.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use mailaudit_core::reports::container::{self, Kind, Limits};
use mailaudit_core::reports::{self, Mode, failure};
use serde_json::{Value, json};

use crate::cli::ReportsParseArgs;

/// The largest input file read (the containers have their own decompression caps).
const MAX_FILE: u64 = 100 * 1024 * 1024;

/// Every file below `path` (a file, a directory, or a Maildir's `cur`/`new`), in name order.
fn files(path: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<Value>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(json!({ "source": path.display().to_string(), "error": format!("cannot read the directory: {e}") }));
                return;
            }
        };
        entries.sort();
        for e in entries {
            // Maildir's `tmp` holds messages being delivered: not reports yet.
            if e.file_name().is_some_and(|n| n == "tmp") && path.join("cur").is_dir() {
                continue;
            }
            files(&e, out, errors);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

fn parse_one(name: &str, doc: &container::Extracted, mode: Mode) -> Value {
    match doc.kind {
        Kind::AggregateXml => match reports::parse_aggregate(&doc.bytes, mode) {
            Ok((r, problems)) => {
                json!({ "source": name, "type": "aggregate", "report": r, "problems": problems })
            }
            Err(e) => json!({ "source": name, "type": "aggregate", "error": e.to_string() }),
        },
        Kind::TlsJson => match reports::parse_tls_report(&doc.bytes) {
            Ok((r, problems)) => {
                json!({ "source": name, "type": "smtp_tls", "report": r, "problems": problems })
            }
            Err(e) => json!({ "source": name, "type": "smtp_tls", "error": e.to_string() }),
        },
        Kind::FailureEml => match failure::parse_failure(&doc.bytes) {
            Ok((r, problems)) => {
                json!({ "source": name, "type": "failure", "report": r, "problems": problems })
            }
            Err(e) => json!({ "source": name, "type": "failure", "error": e.to_string() }),
        },
        _ => {
            json!({ "source": name, "error": "not a DMARC aggregate, failure or SMTP TLS report" })
        }
    }
}

pub(crate) fn parse(args: &ReportsParseArgs) -> Result<ExitCode> {
    let mode = if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let limits = Limits {
        max_decompressed: args.max_decompressed_mb * 1024 * 1024,
        ..Limits::default()
    };
    let mut out_docs: Vec<Value> = Vec::new();
    let mut paths = Vec::new();
    for p in &args.paths {
        files(p, &mut paths, &mut out_docs);
    }
    for path in &paths {
        let source = path.display().to_string();
        let bytes = match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE => {
                out_docs.push(json!({ "source": source, "error": format!("larger than {} MiB; skipped", MAX_FILE / 1024 / 1024) }));
                continue;
            }
            _ => match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    out_docs
                        .push(json!({ "source": source, "error": format!("cannot read: {e}") }));
                    continue;
                }
            },
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&source)
            .to_string();
        match container::extract(&name, &bytes, &limits) {
            Ok(docs) if docs.is_empty() => {
                out_docs.push(json!({ "source": source, "error": "no report found" }))
            }
            Ok(docs) => {
                for d in &docs {
                    let inner = if d.name == name {
                        source.clone()
                    } else {
                        format!("{source}:{}", d.name)
                    };
                    out_docs.push(parse_one(&inner, d, mode));
                }
            }
            Err(e) => out_docs.push(json!({ "source": source, "error": e.to_string() })),
        }
    }
    let failed = out_docs.iter().filter(|d| d.get("error").is_some()).count();
    let strict_failed = args.strict
        && out_docs.iter().any(|d| {
            d["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["level"] == "error"))
        });
    for d in out_docs.iter().filter(|d| d.get("error").is_some()) {
        eprintln!(
            "mailaudit: {}: {}",
            d["source"].as_str().unwrap_or("?"),
            d["error"].as_str().unwrap_or("?")
        );
    }
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &out_docs)?;
    writeln!(out)?;
    Ok(if failed > 0 || strict_failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
