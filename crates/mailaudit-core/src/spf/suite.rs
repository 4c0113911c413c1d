//! The RFC 7208 test suite (openspf.org / pyspf `rfc7208-tests.yml`, 2014.04) run against
//! [`check_host`] over a [`MemoryDns`] built from each scenario's `zonedata`.
//!
//! The zone-building part ([`scenario_records`]) is written so that it can be moved as is to
//! the loopback DNS-server version of this suite: it turns one scenario's `zonedata` into plain
//! `(name, Rr)` pairs, following what the pyspf test driver (`testspf.py`) does with the data:
//!
//! - `SPF` records are published as TXT (RFC 7208 dropped the SPF RR type), **unless** the
//!   name also lists a `TXT` entry (including `TXT: NONE`): pyspf then "generates" no TXT from
//!   SPF, which is how the "Record lookup" scenarios tell TXT-only and SPF-only data apart;
//! - a record value may be one string or a list of strings, concatenated (RFC 7208 §3.3);
//!   `TXT: NONE` means no TXT record; `MX` is `[preference, host]`;
//! - `TIMEOUT` makes every query for the name time out, except for the record types listed
//!   *before* it (pyspf answers those and stops at the `TIMEOUT` marker; entries after it are
//!   never served). With only a `TIMEOUT` that is `Rr::Fail(DnsError::Timeout)` at the name;
//!   with records before it (one scenario: `spftimeout`), the records stay and a CNAME to a
//!   name that fails makes all *other* types time out (`MemoryDns` follows the CNAME only for
//!   types the name has no records of). A real DNS server cannot publish a CNAME beside other
//!   data: there, answer the listed types and drop (time out) queries for the others.

use std::net::IpAddr;

use serde::Deserialize;
use serde_yaml::Value;

use crate::dns::DnsError;
use crate::memory::{MemoryDns, Rr};
use crate::spf::{SpfResult, check_host};

const SUITE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/spf/rfc7208-tests.yml"
));

/// Tests whose expected text we do not reproduce verbatim, with the reason. The result still
/// has to match; the explanation is compared ignoring ASCII case.
const EXPLANATION_CASE_EXCEPTIONS: &[(&str, &str)] = &[(
    "v-macro-ip6",
    "the suite expects upper-case nibbles from %{ir}; RFC 7208 §7.4 shows lower-case \
     (1.0.b.c.0.0…ip6._spf.example.com), which is what we produce",
)];

/// The text of a record value: a string, or a list of strings concatenated (RFC 7208 §3.3).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Sequence(parts) => parts.iter().map(text).collect(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// One scenario's `zonedata` as `(name, record)` pairs, following the pyspf driver (see the
/// module documentation).
pub(crate) fn scenario_records(zonedata: &Value) -> Vec<(String, Rr)> {
    let mut out = Vec::new();
    let Some(zone) = zonedata.as_mapping() else {
        return out;
    };
    for (name, entries) in zone {
        let name = text(name);
        let entries = entries.as_sequence().cloned().unwrap_or_default();
        let has_txt = entries
            .iter()
            .any(|e| e.as_mapping().is_some_and(|m| m.contains_key("TXT")));
        let mut records = Vec::new();
        let mut generated = Vec::new();
        let mut timeout = false;
        for entry in &entries {
            if entry.as_str() == Some("TIMEOUT") {
                timeout = true;
                break;
            }
            let Some(map) = entry.as_mapping() else {
                continue;
            };
            for (rtype, value) in map {
                let rr = match text(rtype).as_str() {
                    "SPF" => {
                        if !has_txt {
                            generated.push(Rr::Txt(text(value)));
                        }
                        continue;
                    }
                    "TXT" if value.as_str() == Some("NONE") => continue,
                    "TXT" => Rr::Txt(text(value)),
                    "A" => match text(value).parse() {
                        Ok(a) => Rr::A(a),
                        Err(_) => continue,
                    },
                    "AAAA" => match text(value).parse() {
                        Ok(a) => Rr::Aaaa(a),
                        Err(_) => continue,
                    },
                    "MX" => {
                        let pair = value.as_sequence().cloned().unwrap_or_default();
                        let pref = pair.first().and_then(Value::as_u64).unwrap_or(0);
                        let host = pair.get(1).map(text).unwrap_or_default();
                        Rr::Mx(u16::try_from(pref).unwrap_or(u16::MAX), host)
                    }
                    "PTR" => Rr::Ptr(text(value)),
                    "CNAME" => Rr::Cname(text(value)),
                    _ => continue,
                };
                records.push(rr);
            }
        }
        // pyspf appends the TXT records generated from SPF after the listed entries, so a
        // TIMEOUT marker hides them.
        if !timeout {
            records.extend(generated);
        }
        match (timeout, records.is_empty()) {
            (true, true) => out.push((name, Rr::Fail(DnsError::Timeout))),
            (true, false) => {
                let alias = format!("timeout.{}", name.trim_end_matches('.'));
                out.extend(records.into_iter().map(|r| (name.clone(), r)));
                out.push((name, Rr::Cname(alias.clone())));
                out.push((alias, Rr::Fail(DnsError::Timeout)));
            }
            (false, _) => out.extend(records.into_iter().map(|r| (name.clone(), r))),
        }
    }
    out
}

fn zone(zonedata: &Value) -> MemoryDns {
    let mut dns = MemoryDns::new();
    for (name, rr) in scenario_records(zonedata) {
        dns.add(&name, rr);
    }
    dns
}

/// One test's verdict: `Ok` or what went wrong.
fn run_test(dns: &MemoryDns, t: &Value) -> Result<Match, String> {
    let helo = t.get("helo").map(text).unwrap_or_default();
    let mailfrom = t.get("mailfrom").map(text).unwrap_or_default();
    let host = t.get("host").map(text).unwrap_or_default();
    let ip: IpAddr = host
        .parse()
        .map_err(|e| format!("bad host {host:?}: {e}"))?;
    // check_host()'s <domain>: the MAIL FROM domain, or the HELO name for a null sender.
    let domain = match mailfrom.rsplit_once('@') {
        _ if mailfrom.is_empty() => helo.clone(),
        Some((_, d)) => d.to_string(),
        None => mailfrom.clone(),
    };
    let outcome = pollster::block_on(check_host(dns, ip, &domain, &mailfrom, &helo));
    let expected: Vec<String> = match t.get("result") {
        Some(Value::Sequence(v)) => v.iter().map(text).collect(),
        Some(v) => vec![text(v)],
        None => vec![],
    };
    if !expected.iter().any(|e| e == outcome.result.as_str()) {
        return Err(format!(
            "result {} (expected {expected:?}); reason: {}",
            outcome.result, outcome.reason
        ));
    }
    if let Some(exp) = t.get("explanation").map(text) {
        let got = outcome.explanation.as_deref().unwrap_or("DEFAULT");
        if got != exp {
            if outcome.result == SpfResult::Fail && got.eq_ignore_ascii_case(&exp) && case_exempt(t)
            {
                return Ok(Match::IgnoringCase);
            }
            return Err(format!("explanation {got:?} (expected {exp:?})"));
        }
    }
    Ok(Match::Exact)
}

/// How a passing test matched.
#[derive(PartialEq)]
enum Match {
    Exact,
    /// The explanation matched only ignoring ASCII case (see [`EXPLANATION_CASE_EXCEPTIONS`]).
    IgnoringCase,
}

fn case_exempt(t: &Value) -> bool {
    t.get("__name")
        .map(text)
        .is_some_and(|n| EXPLANATION_CASE_EXCEPTIONS.iter().any(|(x, _)| *x == n))
}

#[test]
fn rfc7208_test_suite() {
    let mut total = 0;
    let mut failures = Vec::new();
    let mut ignoring_case = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(SUITE) {
        let scenario = Value::deserialize(doc).expect("the suite is valid YAML");
        let description = scenario.get("description").map(text).unwrap_or_default();
        let dns = zone(scenario.get("zonedata").unwrap_or(&Value::Null));
        let Some(tests) = scenario.get("tests").and_then(Value::as_mapping) else {
            continue;
        };
        for (name, t) in tests {
            total += 1;
            let name = text(name);
            let mut t = t.clone();
            if let Some(m) = t.as_mapping_mut() {
                m.insert(Value::from("__name"), Value::from(name.clone()));
            }
            match run_test(&dns, &t) {
                Ok(Match::Exact) => {}
                Ok(Match::IgnoringCase) => ignoring_case.push(name),
                Err(why) => failures.push(format!("{description} / {name}: {why}")),
            }
        }
    }
    let passed = total - failures.len();
    println!(
        "RFC 7208 suite: {passed} of {total} tests pass ({} with the explanation compared ignoring case: {ignoring_case:?})",
        ignoring_case.len()
    );
    assert_eq!(total, 203, "the suite has 203 tests");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
