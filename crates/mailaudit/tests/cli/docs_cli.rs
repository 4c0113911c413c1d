//! `docs/cli.md`, the command-line contract, checked against the binary: below its marker line
//! the page is generated from the `--help` of every command (one source for both, as the flag
//! definitions in `cli.rs` are), so every subcommand and flag clap knows is documented and the
//! page names none that clap does not. Regenerate it with
//! `UPDATE_DOCS=1 cargo test -p mailaudit --test cli docs_cli`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The line after which `docs/cli.md` is generated; what is above it is written by hand.
const MARKER: &str = "<!-- Generated from `mailaudit --help` below this line: regenerate with \
                      `UPDATE_DOCS=1 cargo test -p mailaudit --test cli docs_cli`. -->";

/// The flags whose long help is the same on most commands: `(flag, how that help begins, the
/// row's text)`. Their rows point to the page's hand-written section, which quotes the help once.
const SHARED: [(&str, &str, &str); 2] = [
    (
        "--db",
        "The store: `sqlite://PATH`",
        "The store (see [The store and the resolver](#the-store-and-the-resolver)).",
    ),
    (
        "--nameserver",
        "Send every DNS query of the run",
        "The recursive resolver, repeatable (see \
         [The store and the resolver](#the-store-and-the-resolver)).",
    ),
];

fn docs_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md")
}

/// `mailaudit PATH... --help`, at clap's widest wrapping (the page joins wrapped lines anyway).
fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mailaudit"))
        .args(path)
        .arg("--help")
        .env("COLUMNS", "100")
        .env_remove("MAILAUDIT_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("the mailaudit binary runs");
    assert!(
        out.status.success(),
        "mailaudit {path:?} --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// One command's help, taken apart.
#[derive(Default)]
struct Help {
    /// The paragraphs before `Usage:`.
    about: Vec<String>,
    usage: String,
    /// `(name, description)` of each positional argument.
    arguments: Vec<(String, String)>,
    /// `(flags, description)` of each option, `-h, --help` left out.
    options: Vec<(String, String)>,
    /// `(name, description)` of each subcommand, `help` left out.
    commands: Vec<(String, String)>,
    /// What clap prints after the options (`after_help`): exit codes, notes, examples.
    tail: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    About,
    Arguments,
    Options,
    Commands,
    Tail,
}

fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut section = Section::About;
    let mut about = String::new();
    // (name, description lines) of the current section's entries.
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    let mut tail = String::new();
    let mut listed = false;
    let flush = |section: Section, entries: &mut Vec<(String, Vec<String>)>, help: &mut Help| {
        let done = entries
            .drain(..)
            .map(|(name, lines)| (name, lines.join(" ")));
        match section {
            Section::Arguments => help.arguments.extend(done),
            Section::Options => help
                .options
                .extend(done.filter(|(name, _)| !name.ends_with("--help"))),
            Section::Commands => help
                .commands
                .extend(done.filter(|(name, _)| name != "help")),
            Section::About | Section::Tail => {}
        }
    };
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if section == Section::About {
            if let Some(usage) = line.strip_prefix("Usage: ") {
                help.about = paragraphs(&about);
                help.usage = usage.to_string();
                section = Section::Tail;
            } else {
                about.push_str(line);
                about.push('\n');
            }
            continue;
        }
        if indent == 0 && !line.is_empty() {
            let next = match line {
                "Arguments:" => Some(Section::Arguments),
                "Options:" => Some(Section::Options),
                "Commands:" => Some(Section::Commands),
                _ => None,
            };
            if let Some(next) = next {
                flush(section, &mut entries, &mut help);
                listed = true;
                section = next;
                continue;
            }
            // Any other unindented line ends the lists: clap's `after_help` follows.
            if section != Section::Tail {
                flush(section, &mut entries, &mut help);
                section = Section::Tail;
            }
        }
        match section {
            Section::Tail => {
                // Only what follows the lists: nothing but blank lines precedes them.
                if listed {
                    tail.push_str(line);
                    tail.push('\n');
                }
            }
            _ if line.trim().is_empty() => {}
            // An entry starts at clap's first column (`  -h, --help`, `      --db <URL>`, `  add`);
            // its description's wrapped lines are indented further.
            _ if indent <= 6 => {
                let mut split = line.trim().splitn(2, "  ");
                let name = split.next().unwrap_or_default().to_string();
                let rest: Vec<String> = split
                    .next()
                    .map(|d| vec![d.trim().to_string()])
                    .unwrap_or_default();
                entries.push((name, rest));
            }
            _ => {
                if let Some((_, lines)) = entries.last_mut() {
                    lines.push(line.trim().to_string());
                }
            }
        }
    }
    flush(section, &mut entries, &mut help);
    help.tail = tail_blocks(&tail);
    help
}

/// Text split at blank lines, each paragraph's lines joined.
fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|p| p.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

/// The `after_help` text as Markdown blocks: a paragraph introducing an indented list (`Exit
/// codes:`, `Examples:`) keeps the list as it is, in a code block; other paragraphs are joined.
fn tail_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    for paragraph in text.split("\n\n") {
        let lines: Vec<&str> = paragraph.lines().filter(|l| !l.trim().is_empty()).collect();
        let Some((first, rest)) = lines.split_first() else {
            continue;
        };
        if first.ends_with(':') && !rest.is_empty() && rest.iter().all(|l| l.starts_with("  ")) {
            let body: Vec<&str> = rest.iter().map(|l| &l[2..]).collect();
            blocks.push(format!(
                "{}\n\n```text\n{}\n```",
                markdown_text(first),
                body.join("\n")
            ));
        } else {
            let joined: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
            blocks.push(markdown_text(&joined.join(" ")));
        }
    }
    blocks
}

/// Help text as Markdown prose: `<` outside code spans escaped, so `<address>` is not taken for
/// an HTML tag.
fn markdown_text(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 0 {
                part.replace('<', "\\<")
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// A table cell: prose, with `|` escaped (GitHub splits cells at a `|` even in a code span).
fn cell(text: &str) -> String {
    markdown_text(text).replace('|', "\\|")
}

/// The long flags (`--db`) and short ones (`-o`) of an option's name column.
fn flags(name: &str) -> Vec<String> {
    name.split([',', ' '])
        .filter(|w| w.starts_with('-'))
        .map(str::to_string)
        .collect()
}

/// Every command, depth first in `--help` order, with its parsed help.
fn commands() -> Vec<(Vec<String>, Help)> {
    let mut out = Vec::new();
    let mut stack = vec![Vec::<String>::new()];
    while let Some(path) = stack.pop() {
        let help = parse_help(&help(&path));
        for (sub, _) in help.commands.iter().rev() {
            let mut child = path.clone();
            child.push(sub.clone());
            stack.push(child);
        }
        out.push((path, help));
    }
    out
}

fn title(path: &[String]) -> String {
    std::iter::once("mailaudit")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The generated part of `docs/cli.md`.
fn render(commands: &[(Vec<String>, Help)]) -> String {
    let mut md = String::new();
    for (path, help) in commands {
        let level = if path.len() <= 1 { "##" } else { "###" };
        md.push_str(&format!("\n{level} `{}`\n\n", title(path)));
        for p in &help.about {
            md.push_str(&markdown_text(p));
            md.push_str("\n\n");
        }
        md.push_str(&format!("```text\n{}\n```\n", help.usage));
        if !help.arguments.is_empty() {
            md.push_str("\n| argument | meaning |\n|---|---|\n");
            for (name, text) in &help.arguments {
                md.push_str(&format!("| `{name}` | {} |\n", cell(text)));
            }
        }
        if !help.commands.is_empty() {
            md.push_str("\n| command | what it does |\n|---|---|\n");
            for (sub, text) in &help.commands {
                let mut child = path.clone();
                child.push(sub.clone());
                let link = anchor(&title(&child));
                md.push_str(&format!("| [`{sub}`](#{link}) | {} |\n", cell(text)));
            }
        }
        if !help.options.is_empty() {
            md.push_str("\n| option | meaning |\n|---|---|\n");
            for (name, text) in &help.options {
                let text = match shared(name, text) {
                    Some(row) => row.to_string(),
                    None => cell(text),
                };
                md.push_str(&format!("| `{}` | {text} |\n", name.replace('|', "\\|")));
            }
        }
        for block in &help.tail {
            md.push('\n');
            md.push_str(block);
            md.push('\n');
        }
    }
    md
}

/// The row text of an option whose help is one of [`SHARED`].
fn shared(name: &str, text: &str) -> Option<&'static str> {
    SHARED
        .iter()
        .find(|(flag, start, _)| flags(name).iter().any(|f| f == flag) && text.starts_with(start))
        .map(|(_, _, row)| *row)
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, punctuation but `-` dropped.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The commands and flags the page documents: each `## `mailaudit …`` heading and the flags of
/// its `| option |` rows.
fn documented(page: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in page.lines() {
        if line.starts_with("## `mailaudit") || line.starts_with("### `mailaudit") {
            let name = line.split('`').nth(1).unwrap_or_default();
            out.push((name.to_string(), BTreeSet::new()));
        } else if let (Some(row), Some((_, set))) = (line.strip_prefix("| `-"), out.last_mut()) {
            let name = row.split('`').next().unwrap_or_default();
            set.extend(flags(&format!("-{name}")));
        }
    }
    out
}

#[test]
fn docs_cli_md_documents_every_command_and_flag() {
    let commands = commands();
    // The walk reached the nested commands (a parse that found no `Commands:` would not).
    for expected in ["audit", "reports fetch", "schedule run", "exo script"] {
        assert!(
            commands.iter().any(|(path, _)| path.join(" ") == expected),
            "the help walk reaches `mailaudit {expected}`"
        );
    }
    let generated = render(&commands);
    let path = docs_path();
    let page = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let Some((head, actual)) = page.split_once(&format!("{MARKER}\n")) else {
        panic!("{} has no marker line {MARKER:?}", path.display());
    };
    if std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, format!("{head}{MARKER}\n{generated}")).expect("write docs/cli.md");
        return;
    }
    // Name what differs first: a command or a flag missing on either side.
    let in_page = documented(actual);
    let mut problems = Vec::new();
    for (path, help) in &commands {
        let name = title(path);
        let want: BTreeSet<String> = help.options.iter().flat_map(|(n, _)| flags(n)).collect();
        match in_page.iter().find(|(n, _)| *n == name) {
            None => problems.push(format!("`{name}` is not documented")),
            Some((_, have)) => {
                for f in want.difference(have) {
                    problems.push(format!("`{name}`: {f} is not documented"));
                }
                for f in have.difference(&want) {
                    problems.push(format!("`{name}`: {f} is documented but clap has none"));
                }
            }
        }
    }
    for (name, _) in &in_page {
        if !commands.iter().any(|(path, _)| title(path) == *name) {
            problems.push(format!(
                "`{name}` is documented but clap has no such command"
            ));
        }
    }
    let regenerate =
        "regenerate it with `UPDATE_DOCS=1 cargo test -p mailaudit --test cli docs_cli`";
    assert!(
        problems.is_empty(),
        "{} does not match the CLI:\n  {}\n{regenerate}",
        path.display(),
        problems.join("\n  ")
    );
    if actual != generated {
        let line = actual
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| actual.lines().count().min(generated.lines().count()));
        panic!(
            "{} is out of date: line {} after the marker is\n  {:?}\nbut --help says\n  {:?}\n\
             {regenerate}",
            path.display(),
            line + 1,
            actual.lines().nth(line).unwrap_or_default(),
            generated.lines().nth(line).unwrap_or_default(),
        );
    }
    // The hand-written part quotes each help that the rows point to...
    for (_, help) in &commands {
        for (name, text) in &help.options {
            if shared(name, text).is_some() {
                assert!(
                    head.contains(text.as_str()),
                    "the hand-written part of docs/cli.md quotes the help of {name}:\n{text}"
                );
            }
        }
    }
    // ...and names only flags clap has.
    let known: BTreeSet<String> = commands
        .iter()
        .flat_map(|(_, h)| h.options.iter().flat_map(|(n, _)| flags(n)))
        .chain(["--help".to_string(), "-h".to_string()])
        .collect();
    for word in head.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if word.starts_with("--") && word.len() > 2 {
            assert!(
                known.contains(word),
                "docs/cli.md names {word}, which no command has"
            );
        }
    }
}

#[test]
fn help_parser_reads_clap_layouts() {
    let short = "About it.\n\nUsage: mailaudit x [OPTIONS] <A>\n\nArguments:\n  <A>  The a\n\n\
                 Options:\n  -o, --output <PATH>  Write\n                       here\n      \
                 --db <URL>  The store\n  -h, --help  Print help\n\nExit status: 0 done;\n\
                 1 not.\n\nExit codes:\n  0  fine\n  2  error\n";
    let help = parse_help(short);
    assert_eq!(help.about, ["About it."]);
    assert_eq!(help.usage, "mailaudit x [OPTIONS] <A>");
    assert_eq!(help.arguments, [("<A>".to_string(), "The a".to_string())]);
    assert_eq!(
        help.options,
        [
            ("-o, --output <PATH>".to_string(), "Write here".to_string()),
            ("--db <URL>".to_string(), "The store".to_string()),
        ]
    );
    assert_eq!(
        help.tail,
        [
            "Exit status: 0 done; 1 not.".to_string(),
            "Exit codes:\n\n```text\n0  fine\n2  error\n```".to_string(),
        ]
    );
    let long = "Usage: mailaudit y [OPTIONS] <COMMAND>\n\nCommands:\n  add   Add one\n  help  \
                Print this\n\nOptions:\n      --fleet\n          The whole inventory\n          \
                \n          [default: x]\n\n  -h, --help\n          Print help\n";
    let help = parse_help(long);
    assert_eq!(help.commands, [("add".to_string(), "Add one".to_string())]);
    assert_eq!(
        help.options,
        [(
            "--fleet".to_string(),
            "The whole inventory [default: x]".to_string()
        )]
    );
    assert_eq!(flags("-o, --output <PATH>"), ["-o", "--output"]);
    assert_eq!(anchor("mailaudit reports fetch"), "mailaudit-reports-fetch");
}
