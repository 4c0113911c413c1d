//! ARCHITECTURE.md's code map against the workspace: each crate has a row, its "may depend on"
//! column names every workspace crate it depends on and only crates it does depend on (the
//! external ones it names are the notable ones, not all), and the paths the map names exist.
//!
//! The dependency graph comes from `cargo metadata --no-deps` (run with the cargo that runs the
//! test, offline: only the workspace's own manifests are read).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// One workspace crate: its directory relative to the root (`crates/mailaudit-net`), its name
/// and the names of its normal (not dev, not build) dependencies.
struct Member {
    dir: String,
    name: String,
    deps: BTreeSet<String>,
}

fn members(root: &Path) -> Vec<Member> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata writes JSON");
    let packages = meta["packages"].as_array().expect("packages");
    packages
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest_path"));
            let dir = manifest
                .parent()
                .and_then(|d| d.strip_prefix(root).ok())
                .expect("a member inside the workspace")
                .to_string_lossy()
                .replace('\\', "/");
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("dependency name").to_string())
                .collect();
            Member {
                dir,
                name: p["name"].as_str().expect("name").to_string(),
                deps,
            }
        })
        .collect()
}

/// A row of the code map: the first cell's path, the second cell, the third cell.
struct Row {
    path: String,
    what: String,
    may_depend_on: String,
}

fn code_map(architecture: &str) -> Vec<Row> {
    let section = architecture
        .split("\n## Code map")
        .nth(1)
        .expect("ARCHITECTURE.md has a Code map section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.strip_prefix("| `")?.split(" | ").collect();
            let [path, what, deps] = cells.as_slice() else {
                return None;
            };
            Some(Row {
                path: path.trim_end_matches('`').trim_end_matches('/').to_string(),
                what: what.to_string(),
                may_depend_on: deps.trim_end_matches('|').trim().to_string(),
            })
        })
        .collect()
}

/// The crate names of a "may depend on" cell: `a, b (why), c`; `b (why)` is `b`.
fn listed(cell: &str) -> Vec<String> {
    cell.split(", ")
        .map(|item| item.split(" (").next().unwrap_or(item).trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The paths a row's text names: code spans that look like a path (`commands/tracking.rs`,
/// `spf/`, `migrations/{sqlite,postgres}`), braces expanded.
fn named_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        let looks_like_path = span.contains('/')
            || [".rs", ".css", ".json", ".md", ".toml", ".sql"]
                .iter()
                .any(|ext| span.ends_with(ext));
        let path_chars = span
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./{},".contains(c));
        if i % 2 == 1 && looks_like_path && path_chars && !span.starts_with('/') {
            match (span.find('{'), span.find('}')) {
                (Some(open), Some(close)) if open < close => {
                    for alt in span[open + 1..close].split(',') {
                        paths.push(format!("{}{alt}{}", &span[..open], &span[close + 1..]));
                    }
                }
                _ => paths.push(span.to_string()),
            }
        }
    }
    paths
}

#[test]
fn code_map_matches_the_workspace() {
    let root = root();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rows = code_map(&architecture);
    let members = members(&root);
    assert!(
        members.iter().any(|m| m.name == "mailaudit-core"),
        "cargo metadata lists the workspace"
    );
    let internal: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let mut problems = Vec::new();

    for member in &members {
        let Some(row) = rows.iter().find(|r| r.path == member.dir) else {
            problems.push(format!(
                "crate {} ({}) has no row in the code map",
                member.name, member.dir
            ));
            continue;
        };
        let names = listed(&row.may_depend_on);
        for name in &names {
            if !member.deps.contains(name) {
                problems.push(format!(
                    "row `{}`: lists {name}, which is not a dependency of {} (its dependencies: \
                     {})",
                    row.path,
                    member.name,
                    member.deps.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for dep in member.deps.iter().filter(|d| internal.contains(d.as_str())) {
            if !names.contains(dep) {
                problems.push(format!(
                    "row `{}`: does not list {dep}, a workspace crate {} depends on",
                    row.path, member.name
                ));
            }
        }
    }

    for row in &rows {
        let is_member = members.iter().any(|m| m.dir == row.path);
        if row.path.starts_with("crates/") && !is_member {
            problems.push(format!(
                "row `{}`: no such crate in the workspace",
                row.path
            ));
        }
        if !is_member && !row.may_depend_on.is_empty() {
            problems.push(format!(
                "row `{}`: not a crate, yet it lists dependencies",
                row.path
            ));
        }
        if !root.join(&row.path).exists() {
            problems.push(format!("row `{}`: no such path", row.path));
        }
        // The paths of the row's text, inside the crate (or its `src/`) or from the root.
        let base = root.join(&row.path);
        for path in named_paths(&row.what) {
            let found = [
                base.join("src").join(&path),
                base.join(&path),
                root.join(&path),
            ]
            .iter()
            .any(|p| p.exists());
            if !found {
                problems.push(format!(
                    "row `{}`: names `{path}`, which is in neither {0}/src, {0} nor the root",
                    row.path
                ));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's code map does not match the workspace:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn code_map_cells_are_read_as_written() {
    assert_eq!(
        listed("mailaudit-core, serde, futures-util (combinators only)"),
        ["mailaudit-core", "serde", "futures-util"]
    );
    assert_eq!(
        named_paths(
            "`spf/` (parser), `imap(s)://` URLs, `migrations/{sqlite,postgres}`, `check_host()`, \
             `commands/tracking.rs`"
        ),
        [
            "spf/",
            "migrations/sqlite",
            "migrations/postgres",
            "commands/tracking.rs"
        ]
    );
    let rows = code_map(
        "# A\n\n## Code map\n\n| crate | what | may depend on |\n|---|---|---|\n\
         | `crates/x` | X (`a/b.rs`) | mailaudit-core, tokio |\n| `docs/y.md` | Y | |\n\n\
         ## Invariants\n\n| `crates/z` | not the map | z |\n",
    );
    let read: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.path.as_str(), r.what.as_str(), r.may_depend_on.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("crates/x", "X (`a/b.rs`)", "mailaudit-core, tokio"),
            ("docs/y.md", "Y", "")
        ]
    );
}
