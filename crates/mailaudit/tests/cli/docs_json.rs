//! `docs/json.md`, the JSON report's contract, checked against what the binary writes: every
//! field of a report is in the page's tables with the type it has there, and every field the page
//! marks *always* is in the report. The sample fleet's report is checked here; the relay and
//! MTA-STS tests check theirs (probes, TLS sessions, fetched policies) with
//! [`assert_report_documented`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::common::run;

/// Objects of the same shape as an ancestor: `(where they are, the field documenting them)`.
/// The include tree of SPF nests nodes in `children`, to any depth.
const RECURSIVE: [(&str, &str); 1] = [("spf.tree.children[]", "spf.tree")];

fn page() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/json.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A field of the page: its JSON type and whether every object that has its parent has it.
#[derive(Debug)]
struct Field {
    kind: Kind,
    element: Option<Kind>,
    nullable: bool,
    always: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    String,
    Integer,
    Boolean,
    Object,
    Array,
}

impl Kind {
    fn parse(word: &str) -> Option<Kind> {
        match word.trim_end_matches('s') {
            "string" => Some(Kind::String),
            "integer" => Some(Kind::Integer),
            "boolean" => Some(Kind::Boolean),
            "object" => Some(Kind::Object),
            "array" => Some(Kind::Array),
            _ => None,
        }
    }

    fn of(value: &Value) -> Option<Kind> {
        match value {
            Value::String(_) => Some(Kind::String),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Kind::Integer),
            Value::Bool(_) => Some(Kind::Boolean),
            Value::Object(_) => Some(Kind::Object),
            Value::Array(_) => Some(Kind::Array),
            Value::Number(_) | Value::Null => None,
        }
    }
}

/// The fields of the page's tables, by path (`findings[].id`): rows of the form
/// ``| `path` | type, always | meaning |``.
fn documented(page: &str) -> BTreeMap<String, Field> {
    let mut fields = BTreeMap::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(path), Some(ty)) = (
            cells.first().and_then(|c| c.strip_prefix("| `")),
            cells.get(1),
        ) else {
            continue;
        };
        let path = path.trim_end_matches('`');
        let (ty, presence) = ty
            .split_once(", ")
            .unwrap_or_else(|| panic!("docs/json.md: `{path}` says always or optional: {ty:?}"));
        let always = match presence {
            "always" => true,
            "optional" => false,
            other => panic!("docs/json.md: `{path}` is {other:?}, not always or optional"),
        };
        let nullable = ty.ends_with(" or null");
        let mut words = ty.trim_end_matches(" or null").split(' ');
        let kind = words
            .next()
            .and_then(Kind::parse)
            .unwrap_or_else(|| panic!("docs/json.md: `{path}` has type {ty:?}"));
        let element = match (words.next(), words.next()) {
            (Some("of"), Some(e)) => {
                Some(Kind::parse(e).unwrap_or_else(|| panic!("docs/json.md: `{path}`: {ty:?}")))
            }
            _ => None,
        };
        let field = Field {
            kind,
            element,
            nullable,
            always,
        };
        assert!(
            fields.insert(path.to_string(), field).is_none(),
            "docs/json.md documents `{path}` twice"
        );
    }
    fields
}

/// The path of `name` in the object at `parent` (`""` for a domain's object).
fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// The parent object's path of a field path: `findings[].id` → `findings[]`, `domain` → `""`.
fn parent(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(p, _)| p)
}

/// What in the object `object` at `path` the page does not describe as it is.
fn check_object(
    fields: &BTreeMap<String, Field>,
    path: &str,
    object: &Map<String, Value>,
    problems: &mut Vec<String>,
) {
    check_fields(fields, path, object, problems);
    for (documented, field) in fields {
        if field.always && parent(documented) == path {
            let name = &documented[documented.rfind('.').map_or(0, |i| i + 1)..];
            if !object.contains_key(name) {
                problems.push(format!(
                    "`{documented}` is documented as always there, but missing"
                ));
            }
        }
    }
}

/// What the page does not describe among the fields `object` has (at `path`), and below them.
fn check_fields(
    fields: &BTreeMap<String, Field>,
    path: &str,
    object: &Map<String, Value>,
    problems: &mut Vec<String>,
) {
    for (name, value) in object {
        let here = child(path, name);
        let Some(field) = fields.get(&here) else {
            problems.push(format!("`{here}` is not documented (value {value})"));
            continue;
        };
        if value.is_null() {
            if !field.nullable {
                problems.push(format!("`{here}` is null, documented as never null"));
            }
        } else if Kind::of(value) != Some(field.kind) {
            problems.push(format!(
                "`{here}` is {value}, documented as {:?}",
                field.kind
            ));
        }
        match value {
            Value::Object(inner) => check_object(fields, &here, inner, problems),
            Value::Array(items) => {
                let element = format!("{here}[]");
                let element = RECURSIVE
                    .iter()
                    .find(|(at, _)| *at == element)
                    .map_or(element.clone(), |(_, same)| same.to_string());
                for item in items {
                    if let Some(kind) = field.element
                        && Kind::of(item) != Some(kind)
                    {
                        problems.push(format!("an element of `{here}` is {item}, not {kind:?}"));
                    }
                    if let Value::Object(inner) = item {
                        check_object(fields, &element, inner, problems);
                    }
                }
            }
            _ => {}
        }
    }
}

/// What in a report (the JSON array of `audit --format json`) the page does not describe.
fn report_problems(page: &str, report: &Value) -> Vec<String> {
    let fields = documented(page);
    let mut problems = Vec::new();
    let Some(domains) = report.as_array() else {
        return vec![format!("the report is not an array: {report}")];
    };
    for domain in domains {
        match domain.as_object() {
            Some(object) => check_object(&fields, "", object, &mut problems),
            None => problems.push(format!("a domain's report is not an object: {domain}")),
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// Panics, naming each field, unless `docs/json.md` describes every field of `report` (the
/// JSON array of `audit --format json`) as it is.
#[track_caller]
pub(crate) fn assert_report_documented(report: &Value) {
    let problems = report_problems(&page(), report);
    assert!(
        problems.is_empty(),
        "docs/json.md does not describe the report:\n  {}",
        problems.join("\n  ")
    );
}

/// The same for the object that `relay-test --format json` writes: the report's `domain`,
/// `findings` and `relay`, and nothing else.
#[track_caller]
pub(crate) fn assert_relay_test_documented(json: &Value) {
    let fields = documented(&page());
    let mut problems = Vec::new();
    let object = json.as_object().expect("relay-test writes an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["domain", "findings", "relay"] {
        problems.push(format!(
            "relay-test writes {keys:?}, documented as domain, findings, relay"
        ));
    }
    // The three fields as they are in a report (the report's others are not expected here).
    check_fields(&fields, "", object, &mut problems);
    assert!(
        problems.is_empty(),
        "docs/json.md does not describe relay-test's JSON:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn docs_json_md_describes_the_sample_report() {
    let out = run(&["audit", "--sample", "--format", "json"]);
    out.assert_code(0);
    assert_report_documented(&out.json());
}

#[test]
fn docs_json_md_is_consistent() {
    let fields = documented(&page());
    assert!(fields.len() > 50, "the tables were read: {}", fields.len());
    // Every nested field hangs from a documented object (or array of objects).
    for path in fields.keys() {
        let parent = parent(path);
        if parent.is_empty() {
            continue;
        }
        let (owner, kind) = match parent.strip_suffix("[]") {
            Some(array) => (array, Kind::Array),
            None => (parent, Kind::Object),
        };
        let field = fields
            .get(owner)
            .unwrap_or_else(|| panic!("docs/json.md: `{path}` hangs from undocumented `{owner}`"));
        assert_eq!(
            field.kind, kind,
            "docs/json.md: `{owner}`, parent of `{path}`"
        );
        if kind == Kind::Array {
            assert_eq!(field.element, Some(Kind::Object), "`{owner}` holds objects");
        }
    }
}

/// The checker itself: a field the page does not have, a wrong type and a missing field are
/// each reported by name.
#[test]
fn docs_json_check_names_what_differs() {
    let out = run(&["audit", "--sample", "--format", "json"]);
    out.assert_code(0);
    let mut report = out.json();
    let first = &mut report[0];
    first["unheard_of"] = Value::from(1);
    first["spf"]["lookups"] = Value::from("three");
    first["dmarc"]
        .as_object_mut()
        .expect("dmarc is an object")
        .remove("policy");
    first["spf"]["tree"] = serde_json::json!({
        "domain": "a.example", "via": "root", "record": null, "lookups": 0,
        "total_lookups": 0, "void_lookups": 0, "error": null,
        "children": [{ "domain": "b.example", "via": "include", "record": null, "lookups": 0,
                       "total_lookups": 0, "void_lookups": 0, "error": null, "children": [],
                       "depth": 2 }]
    });
    let problems = report_problems(&page(), &report);
    for expected in [
        "`unheard_of` is not documented",
        "`spf.lookups` is \"three\", documented as Integer",
        "`dmarc.policy` is documented as always there, but missing",
        // A nested include node is read as a node of `spf.tree`.
        "`spf.tree.depth` is not documented",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), 4, "{problems:#?}");
}

#[test]
fn docs_json_md_has_the_csv_header() {
    let out = run(&["audit", "--sample", "--format", "csv"]);
    out.assert_code(0);
    let header = out.stdout.lines().next().expect("a header line");
    let page = page();
    let csv = page
        .split("## CSV")
        .nth(1)
        .expect("docs/json.md has a CSV section");
    let documented = csv
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .nth(1)
        .expect("the header in a code block");
    assert_eq!(documented, header, "docs/json.md's CSV header");
}
