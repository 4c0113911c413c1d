//! `mailaudit checks` (the catalogue, docs/checks.md) and the help texts.

use mailaudit_core::checks::CATALOGUE;

use crate::common::{Lab, finding_ids, run, run_with_stdin};

#[test]
fn catalogue_has_every_check_of_checks_md() {
    // The contract (docs/checks.md) lists 65 checks.
    assert_eq!(CATALOGUE.len(), 65);
}

#[test]
fn list_shows_every_id_once() {
    let out = run(&["checks"]);
    out.assert_code(0);
    let first_words: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for c in CATALOGUE {
        let n = first_words.iter().filter(|w| **w == c.id.as_str()).count();
        assert_eq!(n, 1, "{} is listed once", c.id.as_str());
        let line = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(c.id.as_str()))
            .expect("line of the check");
        assert!(line.contains(c.code), "{line}: code {}", c.code);
        assert!(line.contains(c.title), "{line}: title");
        assert!(line.contains(c.severity.as_str()), "{line}: severity");
    }
    let ids = out
        .stdout
        .lines()
        .filter(|l| {
            l.split_whitespace().next().is_some_and(|w| {
                w.contains('-')
                    && w.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
            })
        })
        .count();
    assert_eq!(ids, 65, "65 check lines");
    assert!(
        out.stdout.contains("mailaudit checks ID"),
        "says how to see one"
    );
}

#[test]
fn one_check_has_what_why_and_fix() {
    for arg in [
        "spf-softfail",
        "SPF-SOFTFAIL",
        "Spf-SoftFail",
        "spf006",
        " SPF-SOFTFAIL ",
    ] {
        let out = run(&["checks", arg]);
        out.assert_code(0);
        let s = &out.stdout;
        assert!(s.starts_with("SPF-SOFTFAIL (SPF006)"), "{arg}: {s}");
        let what = s.find("WHAT IT CHECKS").expect("WHAT section");
        let why = s.find("WHY IT MATTERS").expect("WHY section");
        let fix = s.find("HOW TO FIX").expect("HOW TO FIX section");
        assert!(what < why && why < fix, "sections in order");
        assert!(s.contains("-all"), "the fix says what to publish");
        assert!(s.contains("severity: high"));
    }
}

#[test]
fn every_check_can_be_explained() {
    for c in CATALOGUE {
        let out = run(&["checks", c.code]);
        out.assert_code(0);
        assert!(out.stdout.starts_with(c.id.as_str()), "{}", c.code);
        for section in ["WHAT IT CHECKS", "WHY IT MATTERS", "HOW TO FIX"] {
            assert!(out.stdout.contains(section), "{}: {section}", c.id.as_str());
        }
    }
}

#[test]
fn unknown_check_exits_two_with_a_clear_message() {
    let out = run(&["checks", "SPF-SOFTFAILS"]);
    out.assert_code(2);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("no check named"), "{}", out.stderr);
    assert!(out.stderr.contains("SPF-SOFTFAILS"), "{}", out.stderr);
}

/// An unknown check: the cause first, then the closest IDs (or codes, for a code), or where
/// the list is when nothing is close.
#[test]
fn unknown_check_suggests_the_closest() {
    for (arg, expected) in [
        (
            "SPF-SOFTFAL",
            "mailaudit: error: no check named SPF-SOFTFAL; did you mean SPF-SOFTFAIL?\n",
        ),
        (
            "dmarc-mising",
            "mailaudit: error: no check named dmarc-mising; did you mean DMARC-MISSING?\n",
        ),
        (
            "SPF06",
            "mailaudit: error: no check named SPF06; did you mean SPF006 (SPF-SOFTFAIL)?\n",
        ),
        (
            "HELLO",
            "mailaudit: error: no check named HELLO; `mailaudit checks` lists them all\n",
        ),
    ] {
        let out = run(&["checks", arg]);
        out.assert_code(2);
        assert!(out.stdout.is_empty(), "{arg}");
        assert_eq!(out.stderr, expected, "{arg}");
    }
}

/// Every ID that can appear in output is in the catalogue: the `id` column of the CSV and the
/// findings of the JSON, over the sample fleet and input names that are not domain names,
/// and each ID explained by `mailaudit checks ID`. (Invalid names used to get the ID
/// INVALID-DOMAIN, which no check has.)
#[test]
fn every_id_in_the_output_is_in_the_catalogue() {
    let lab = Lab::sample_plus("");
    let (_, fleet) = mailaudit_lab::sample_fleet();
    let input = format!("{}\nbad domain!\nfoo@example.com\n", fleet.join("\n"));
    let audit = |format: &str| {
        run_with_stdin(
            &[
                "audit",
                "--nameserver",
                lab.addr(),
                "--no-store",
                "--no-policy-fetch",
                "--format",
                format,
                "--file",
                "-",
            ],
            Some(&input),
        )
    };
    let mut ids = std::collections::BTreeSet::new();
    let csv = audit("csv");
    csv.assert_code(2);
    let header: Vec<&str> = csv.stdout.lines().next().unwrap_or("").split(',').collect();
    let id_column = header
        .iter()
        .position(|h| *h == "id")
        .expect("an id column");
    let mut invalid_rows = 0;
    for line in csv.stdout.lines().skip(1) {
        // A row starts with its domain, and the id column precedes any quoted field (title,
        // detail, ...); other lines continue a quoted field.
        let fields: Vec<&str> = line.split(',').collect();
        let row_of = |d: &str| fields[0] == d;
        if !(fleet.iter().any(|d| row_of(d)) || row_of("bad domain!") || row_of("foo@example.com"))
        {
            continue;
        }
        if line.starts_with("bad domain!,") || line.starts_with("foo@example.com,") {
            invalid_rows += 1;
            assert_eq!(fields[id_column], "", "{line}");
            assert!(line.contains("not a domain name: not audited"), "{line}");
        }
        if let Some(id) = fields.get(id_column).filter(|id| !id.is_empty()) {
            ids.insert(id.to_string());
        }
    }
    assert_eq!(invalid_rows, 2, "{}", csv.stdout);
    let json = audit("json");
    json.assert_code(2);
    for d in json.json().as_array().expect("an array") {
        ids.extend(finding_ids(d));
    }
    assert!(ids.len() >= 20, "the sample shows many checks: {ids:?}");
    let catalogue: Vec<&str> = CATALOGUE.iter().map(|c| c.id.as_str()).collect();
    for id in &ids {
        assert!(
            catalogue.contains(&id.as_str()),
            "{id} is not in the catalogue"
        );
        let out = run(&["checks", id]);
        out.assert_code(0);
        assert!(out.stdout.starts_with(id.as_str()), "{id}: {}", out.stdout);
    }
}

#[test]
fn markdown_reference_covers_every_check() {
    let out = run(&["checks", "--markdown"]);
    out.assert_code(0);
    for c in CATALOGUE {
        assert!(out.stdout.contains(c.id.as_str()), "{}", c.id.as_str());
    }
}

#[test]
fn audit_help_mentions_the_main_options() {
    let out = run(&["audit", "--help"]);
    out.assert_code(0);
    for needle in [
        "--fail-on",
        "--format",
        "--nameserver",
        "--file",
        "--output",
        "--sample",
    ] {
        assert!(
            out.stdout.contains(needle),
            "audit --help mentions {needle}"
        );
    }
}

#[test]
fn top_level_help_mentions_the_exit_codes() {
    let out = run(&["--help"]);
    out.assert_code(0);
    for needle in ["Exit codes", "audit", "spf-eval", "checks", "--nameserver"] {
        assert!(out.stdout.contains(needle), "--help mentions {needle}");
    }
}

#[test]
fn version() {
    let out = run(&["--version"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout.trim(),
        format!("mailaudit {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn audit_help_mentions_the_exit_codes() {
    let out = run(&["audit", "--help"]);
    out.assert_code(0);
    assert!(out.stdout.contains("Exit codes"), "{}", out.stdout);
    for code in [
        "0  success",
        "1  a finding at or above --fail-on",
        "2  error",
    ] {
        assert!(out.stdout.contains(code), "audit --help: {code}");
    }
}

/// The list is a table: every column starts at the same offset on every line.
#[test]
fn list_columns_are_aligned() {
    let out = run(&["checks"]);
    out.assert_code(0);
    let header = out.stdout.lines().next().expect("header line");
    let col = |name: &str| header.find(name).expect("column in header");
    let (code, area, sev, title) = (col("CODE"), col("AREA"), col("SEVERITY"), col("TITLE"));
    for c in CATALOGUE {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{} ", c.id.as_str())))
            .expect("line of the check");
        assert_eq!(line.find(c.code), Some(code), "{line}");
        assert_eq!(
            line[area..].split_whitespace().next(),
            Some(c.area.as_str()),
            "{line}"
        );
        assert_eq!(
            line[sev..].split_whitespace().next(),
            Some(c.severity.as_str()),
            "{line}"
        );
        assert!(line[title..].starts_with(c.title), "{line}");
    }
}
