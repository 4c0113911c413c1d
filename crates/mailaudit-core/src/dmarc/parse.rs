//! The DMARC record parser: TXT text to [`Record`], strict ([`parse`]) or the way a receiver
//! reads it ([`parse_lenient`]).
//!
//! The grammar is RFC 9989 §4.8 (which keeps RFC 7489 §6.4's tag-value syntax, from DKIM,
//! RFC 6376 §3.2), plus the tags RFC 9989 removed (`pct`, `rf`, `ri`) and RFC 7489's `!size`
//! suffix on report URIs, since most receivers still honour them:
//!
//! ```text
//! dmarc-record  = dmarc-version *(dmarc-sep dmarc-tag) [dmarc-sep]
//! dmarc-sep     = *WSP ";" *WSP
//! equals        = *WSP "=" *WSP
//! dmarc-tag     = 1*ALPHA equals 1*dmarc-value
//! dmarc-version = "v" equals %s"DMARC1" ; case sensitive
//! ```
//!
//! ABNF string literals are case-insensitive (RFC 5234 §2.3), so tag names and keyword values
//! (`p=Reject`, `V=DMARC1`) are read case-insensitively; only `DMARC1` is case-sensitive.

use std::collections::HashSet;

use super::{Alignment, FailureOption, Policy, Psd, Record, Uri};

/// Why a TXT string is not a (clean) DMARC record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DmarcParseError {
    /// The record is empty.
    #[error("the record is empty")]
    Empty,
    /// The first tag is not `v=DMARC1`: the text is not a DMARC record at all.
    #[error(
        "the first tag is {first:?}, not v=DMARC1 (the version must come first, spelled exactly DMARC1, and be followed by \";\")"
    )]
    NotDmarc {
        /// The first tag as published.
        first: String,
    },
    /// An element of the tag list is not `name=value` with an alphabetic name.
    #[error("{item:?} is not a tag=value pair")]
    MalformedTag {
        /// The element as published.
        item: String,
    },
    /// A tag appears more than once (RFC 6376 §3.2: the tag list is then invalid).
    #[error("tag {tag} appears more than once")]
    DuplicateTag {
        /// The tag name, lower-case.
        tag: String,
    },
    /// A tag has an empty value.
    #[error("tag {tag} has an empty value")]
    MissingValue {
        /// The tag name, lower-case.
        tag: String,
    },
    /// A known tag has a value outside its grammar.
    #[error("{tag}={value} is invalid: expected {expected}")]
    InvalidValue {
        /// The tag name, lower-case.
        tag: String,
        /// The value as published.
        value: String,
        /// What the grammar allows.
        expected: &'static str,
    },
}

impl serde::Serialize for DmarcParseError {
    /// Serialised as its message.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl DmarcParseError {
    /// The tag the error is about, lower-case, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            DmarcParseError::DuplicateTag { tag }
            | DmarcParseError::MissingValue { tag }
            | DmarcParseError::InvalidValue { tag, .. } => Some(tag),
            _ => None,
        }
    }
}

/// Whether `txt` is a DMARC record in the sense of the tree walk: its first tag is `v=DMARC1`.
///
/// RFC 9989 §4.10 step 2: "Records that do not start with a "v" tag that identifies the current
/// version of DMARC are discarded." RFC 9989 §4.7 `v`: "The value of this tag **MUST** match
/// precisely; if it does not or it is absent, the entire record **MUST** be ignored. It
/// **MUST** be the first tag in the list."
pub fn is_dmarc_record(txt: &str) -> bool {
    first_tag_ok(txt.trim().split(';').next().unwrap_or(""))
}

fn first_tag_ok(first: &str) -> bool {
    match first.split_once('=') {
        Some((name, value)) => name.trim().eq_ignore_ascii_case("v") && value.trim() == "DMARC1",
        None => false,
    }
}

/// Parses a DMARC record strictly: any deviation from the grammar is an error.
///
/// Report URIs are not judged here (any URI is syntactically allowed): see [`Uri::check`].
/// A record without `p` parses: RFC 9989 §4.7 makes `p` RECOMMENDED, not REQUIRED, and
/// third-party reporting authorisation records (`v=DMARC1;`) carry none.
pub fn parse(txt: &str) -> Result<Record, DmarcParseError> {
    let (record, mut problems) = parse_lenient(txt)?;
    if problems.is_empty() {
        Ok(record)
    } else {
        Err(problems.swap_remove(0))
    }
}

/// Parses a DMARC record the way a receiver does: `Err` only when the text is not a DMARC
/// record at all; otherwise the record with every invalid element dropped, and the list of
/// what was dropped and why.
///
/// RFC 9989 §4.7: "A DMARC Policy Record **MUST** comply with the formal specification found
/// in (#formal-definition) in that the "v" tag **MUST** be present and **MUST** appear first.
/// Unknown tags **MUST** be ignored. Syntax errors in the remainder of the record **MUST** be
/// discarded in favor of default values (if any) or ignored outright."
///
/// A duplicated tag keeps its first value (RFC 6376 §3.2 would void the whole tag list; the
/// duplicate is reported either way).
pub fn parse_lenient(txt: &str) -> Result<(Record, Vec<DmarcParseError>), DmarcParseError> {
    let txt = txt.trim();
    if txt.is_empty() {
        return Err(DmarcParseError::Empty);
    }
    let mut items = txt.split(';');
    let first = items.next().unwrap_or("").trim();
    if !first_tag_ok(first) {
        return Err(DmarcParseError::NotDmarc {
            first: first.to_string(),
        });
    }
    let mut record = Record::default();
    let mut problems = Vec::new();
    let mut seen: HashSet<String> = HashSet::from(["v".to_string()]);
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((name, value)) = item.split_once('=') else {
            problems.push(DmarcParseError::MalformedTag {
                item: item.to_string(),
            });
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            problems.push(DmarcParseError::MalformedTag {
                item: item.to_string(),
            });
            continue;
        }
        let tag = name.to_ascii_lowercase();
        if !seen.insert(tag.clone()) {
            problems.push(DmarcParseError::DuplicateTag { tag });
            continue;
        }
        if value.is_empty() {
            problems.push(DmarcParseError::MissingValue { tag });
            continue;
        }
        if let Err(expected) = apply(&mut record, &tag, value) {
            problems.push(DmarcParseError::InvalidValue {
                tag,
                value: value.to_string(),
                expected,
            });
        }
    }
    Ok((record, problems))
}

/// Sets one tag on `r`; `Err(expected)` when the value is outside the tag's grammar.
fn apply(r: &mut Record, tag: &str, value: &str) -> Result<(), &'static str> {
    const POLICY: &str = "none, quarantine or reject";
    const ALIGN: &str = "r (relaxed) or s (strict)";
    match tag {
        "p" => r.p = Some(Policy::from_value(value).ok_or(POLICY)?),
        "sp" => r.sp = Some(Policy::from_value(value).ok_or(POLICY)?),
        "np" => r.np = Some(Policy::from_value(value).ok_or(POLICY)?),
        "adkim" => r.adkim = Some(alignment(value).ok_or(ALIGN)?),
        "aspf" => r.aspf = Some(alignment(value).ok_or(ALIGN)?),
        "pct" => {
            const PCT: &str = "an integer from 0 to 100";
            if value.is_empty() || value.len() > 3 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PCT);
            }
            let n: u8 = value.parse().map_err(|_| PCT)?;
            if n > 100 {
                return Err(PCT);
            }
            r.pct = Some(n);
        }
        "rua" => r.rua = value.split(',').map(Uri::new).collect(),
        "ruf" => r.ruf = value.split(',').map(Uri::new).collect(),
        "fo" => {
            const FO: &str = "0, 1, d or s, colon-separated";
            let opts = value
                .split(':')
                .map(|o| match o.trim().to_ascii_lowercase().as_str() {
                    "0" => Some(FailureOption::All),
                    "1" => Some(FailureOption::Any),
                    "d" => Some(FailureOption::Dkim),
                    "s" => Some(FailureOption::Spf),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(FO)?;
            r.fo = Some(opts);
        }
        "rf" => {
            let ok = value.split(':').all(|k| {
                let k = k.trim();
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if !ok {
                return Err("report format keywords (e.g. afrf), colon-separated");
            }
            r.rf = Some(value.to_string());
        }
        "ri" => {
            const RI: &str = "a number of seconds";
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RI);
            }
            r.ri = Some(value.parse().map_err(|_| RI)?);
        }
        "t" => {
            r.t = Some(match value.to_ascii_lowercase().as_str() {
                "y" => true,
                "n" => false,
                _ => return Err("y or n"),
            })
        }
        "psd" => {
            r.psd = Some(match value.to_ascii_lowercase().as_str() {
                "y" => Psd::Yes,
                "n" => Psd::No,
                "u" => Psd::Unknown,
                _ => return Err("y, n or u"),
            })
        }
        _ => r.unknown.push((tag.to_string(), value.to_string())),
    }
    Ok(())
}

fn alignment(v: &str) -> Option<Alignment> {
    match v.to_ascii_lowercase().as_str() {
        "r" => Some(Alignment::Relaxed),
        "s" => Some(Alignment::Strict),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uri(s: &str) -> Uri {
        Uri::new(s)
    }

    #[test]
    fn rfc_examples_parse() {
        // RFC 9989 Appendix B.2 (Domain Owner examples) and RFC 7489 Appendix B.2.
        let cases: &[(&str, Record)] = &[
            (
                "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
                Record {
                    rua: vec![uri("mailto:dmarc-feedback@example.com")],
                    ..Record::new(Policy::None)
                },
            ),
            (
                "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@example.com",
                Record {
                    rua: vec![uri("mailto:dmarc-feedback@example.com")],
                    ruf: vec![uri("mailto:auth-reports@example.com")],
                    ..Record::new(Policy::None)
                },
            ),
            (
                "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net; t=y",
                Record {
                    rua: vec![
                        uri("mailto:dmarc-feedback@example.com"),
                        uri("mailto:tld-test@thirdparty.example.net"),
                    ],
                    t: Some(true),
                    ..Record::new(Policy::Quarantine)
                },
            ),
            (
                "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25",
                Record {
                    rua: vec![
                        uri("mailto:dmarc-feedback@example.com"),
                        Uri {
                            uri: "mailto:tld-test@thirdparty.example.net".into(),
                            size: Some("10m".into()),
                        },
                    ],
                    pct: Some(25),
                    ..Record::new(Policy::Quarantine)
                },
            ),
            ("v=DMARC1;", Record::default()),
            ("v=DMARC1", Record::default()),
        ];
        for (txt, want) in cases {
            assert_eq!(parse(txt).as_ref(), Ok(want), "{txt}");
            assert!(is_dmarc_record(txt), "{txt}");
        }
    }

    #[test]
    fn valid_records() {
        let full = parse(
            " V = DMARC1 ;P=Reject; SP=quarantine; np=REJECT; adkim=s; aspf=r; pct=100; \
             fo=0:d : s; rf=afrf; ri=86400; t=n; psd=n; rua=mailto:a@example.com , \
             mailto:b@example.net!10M; ruf=mailto:f@example.com; x=whatever=1;; ",
        )
        .unwrap();
        assert_eq!(full.p, Some(Policy::Reject));
        assert_eq!(full.sp, Some(Policy::Quarantine));
        assert_eq!(full.np, Some(Policy::Reject));
        assert_eq!(full.adkim, Some(Alignment::Strict));
        assert_eq!(full.aspf, Some(Alignment::Relaxed));
        assert_eq!(full.pct, Some(100));
        assert_eq!(
            full.fo,
            Some(vec![
                FailureOption::All,
                FailureOption::Dkim,
                FailureOption::Spf
            ])
        );
        assert_eq!(full.rf.as_deref(), Some("afrf"));
        assert_eq!(full.ri, Some(86400));
        assert_eq!(full.t, Some(false));
        assert_eq!(full.psd, Some(Psd::No));
        assert_eq!(full.rua.len(), 2);
        assert_eq!(full.rua[1].size.as_deref(), Some("10M"));
        assert_eq!(
            full.unknown,
            vec![("x".to_string(), "whatever=1".to_string())]
        );
        assert_eq!(
            full.to_string(),
            "v=DMARC1; p=reject; sp=quarantine; np=reject; t=n; psd=n; adkim=s; aspf=r; \
             pct=100; rua=mailto:a@example.com,mailto:b@example.net!10M; \
             ruf=mailto:f@example.com; fo=0:d:s; rf=afrf; ri=86400; x=whatever=1"
        );
        assert_eq!(parse(&full.to_string()), Ok(full));
    }

    #[test]
    fn invalid_records() {
        use DmarcParseError as E;
        let inv = |tag: &str, value: &str, expected: &'static str| E::InvalidValue {
            tag: tag.into(),
            value: value.into(),
            expected,
        };
        let not = |first: &str| E::NotDmarc {
            first: first.into(),
        };
        let cases: Vec<(&str, DmarcParseError)> = vec![
            ("", E::Empty),
            ("   ", E::Empty),
            ("v=spf1 -all", not("v=spf1 -all")),
            ("v=dmarc1; p=none", not("v=dmarc1")),
            ("v=DMARC2; p=none", not("v=DMARC2")),
            ("p=none; v=DMARC1", not("p=none")),
            ("v=DMARC1 p=reject", not("v=DMARC1 p=reject")),
            ("v:DMARC1; p=none", not("v:DMARC1")),
            (
                "v=DMARC1; p=rejected",
                inv("p", "rejected", "none, quarantine or reject"),
            ),
            (
                "v=DMARC1; p=none; sp=hard",
                inv("sp", "hard", "none, quarantine or reject"),
            ),
            (
                "v=DMARC1; p=none; np=0",
                inv("np", "0", "none, quarantine or reject"),
            ),
            (
                "v=DMARC1; p=none; p=reject",
                E::DuplicateTag { tag: "p".into() },
            ),
            (
                "v=DMARC1; p=none; P=reject",
                E::DuplicateTag { tag: "p".into() },
            ),
            (
                "v=DMARC1; p=none; v=DMARC1",
                E::DuplicateTag { tag: "v".into() },
            ),
            (
                "v=DMARC1; p=none; rua",
                E::MalformedTag { item: "rua".into() },
            ),
            (
                "v=DMARC1; p=none; r-ua=x",
                E::MalformedTag {
                    item: "r-ua=x".into(),
                },
            ),
            (
                "v=DMARC1; p=none; =x",
                E::MalformedTag { item: "=x".into() },
            ),
            ("v=DMARC1; p=", E::MissingValue { tag: "p".into() }),
            (
                "v=DMARC1; p=none; rua= ",
                E::MissingValue { tag: "rua".into() },
            ),
            (
                "v=DMARC1; p=none; pct=101",
                inv("pct", "101", "an integer from 0 to 100"),
            ),
            (
                "v=DMARC1; p=none; pct=-1",
                inv("pct", "-1", "an integer from 0 to 100"),
            ),
            (
                "v=DMARC1; p=none; pct=50%",
                inv("pct", "50%", "an integer from 0 to 100"),
            ),
            (
                "v=DMARC1; p=none; adkim=strict",
                inv("adkim", "strict", "r (relaxed) or s (strict)"),
            ),
            ("v=DMARC1; p=none; t=yes", inv("t", "yes", "y or n")),
            ("v=DMARC1; p=none; psd=x", inv("psd", "x", "y, n or u")),
            (
                "v=DMARC1; p=none; fo=2",
                inv("fo", "2", "0, 1, d or s, colon-separated"),
            ),
            (
                "v=DMARC1; p=none; ri=1h",
                inv("ri", "1h", "a number of seconds"),
            ),
            (
                "v=DMARC1; p=none; ri=99999999999",
                inv("ri", "99999999999", "a number of seconds"),
            ),
        ];
        for (txt, want) in cases {
            assert_eq!(parse(txt), Err(want), "{txt:?}");
        }
    }

    #[test]
    fn lenient_parse_drops_bad_parts_and_says_why() {
        let (r, problems) =
            parse_lenient("v=DMARC1; p=bogus; sp=reject; p=none; rua=mailto:x@example.com; junk")
                .unwrap();
        assert_eq!(r.p, None);
        assert_eq!(r.sp, Some(Policy::Reject));
        assert_eq!(r.rua.len(), 1);
        assert_eq!(problems.len(), 3);
        assert_eq!(problems[0].tag(), Some("p"));
        assert_eq!(
            problems[1],
            DmarcParseError::DuplicateTag { tag: "p".into() }
        );
        assert_eq!(
            problems[2],
            DmarcParseError::MalformedTag {
                item: "junk".into()
            }
        );
        assert_eq!(
            problems[0].to_string(),
            "p=bogus is invalid: expected none, quarantine or reject"
        );
        assert!(parse_lenient("v=spf1 -all").is_err());
    }

    #[test]
    fn uris_are_checked() {
        for (u, ok) in [
            ("mailto:dmarc@example.com", true),
            ("MAILTO:Dmarc@Example.COM", true),
            ("mailto:dmarc@example.com!10m", true),
            ("mailto:dmarc@example.com!10", true),
            ("mailto:dmarc%2Breports@example.com", true),
            ("mailto:dmarc@example.com?subject=x", true),
            ("mailto:dmarc@example.com!10x", false),
            ("mailto:dmarc@example.com!", false),
            ("mailto:dmarc@example.com!10mm", false),
            ("dmarc@example.com", false),
            ("https://example.com/dmarc", false),
            ("mailto:example.com", false),
            ("mailto:@example.com", false),
            ("mailto:dmarc@localhost", false),
            ("mailto:dmarc@exa_mple.com", false),
            ("mailto:dmarc@-example.com", false),
            ("mailto:dm arc@example.com", false),
            ("mailto:dmarc%zz@example.com", false),
            ("mailto:dmarc%+1@example.com", false),
            ("mailto:dmarc%4@example.com", false),
            ("", false),
        ] {
            assert_eq!(Uri::new(u).is_valid_mailto(), ok, "{u}");
        }
        assert_eq!(
            Uri::new("MAILTO:Dmarc@Example.COM").mailto().as_deref(),
            Some("Dmarc@example.com")
        );
        assert_eq!(
            Uri::new("mailto:dmarc%2Breports@example.com")
                .mailto()
                .as_deref(),
            Some("dmarc+reports@example.com")
        );
        assert_eq!(
            Uri::new("mailto:x@Reports.Example.NET!5m")
                .mailto_domain()
                .as_deref(),
            Some("reports.example.net")
        );
        assert!(
            Uri::new("dmarc@example.com")
                .check()
                .unwrap_err()
                .contains("mailto:")
        );
    }

    fn tag_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "p=none",
                "p=quarantine",
                "p=REJECT",
                "sp=reject",
                "np=quarantine",
                "p=bad",
                "adkim=s",
                "aspf=r",
                "aspf=x",
                "pct=0",
                "pct=50",
                "pct=100",
                "pct=200",
                "fo=1",
                "fo=d:s",
                "fo=",
                "rf=afrf",
                "ri=3600",
                "t=y",
                "t=n",
                "psd=y",
                "psd=u",
                "rua=mailto:a@example.com",
                "rua=mailto:a@example.com!10m, mailto:b@x.example",
                "ruf=mailto:f@example.org",
                "rua=https://x.example/r",
                "rua=,",
                "foo=bar",
                "Zz=1=2",
                "junk",
                " ",
                "p=none",
                "v=DMARC1",
            ])
            .prop_map(str::to_string),
            "[a-z]{1,4}=[ -:<-~]{0,12}",
            "[ -~]{0,16}",
        ]
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
            let _ = parse_lenient(&s);
            let _ = is_dmarc_record(&s);
        }

        #[test]
        fn never_panics_on_record_like_input(tags in prop::collection::vec(tag_strategy(), 0..10)) {
            let s = format!("v=DMARC1; {}", tags.join(";"));
            let _ = parse(&s);
            if let Ok((r, _)) = parse_lenient(&s) {
                for u in r.rua.iter().chain(&r.ruf) {
                    let _ = u.check();
                }
            }
        }

        #[test]
        fn round_trips(tags in prop::collection::vec(tag_strategy(), 0..10), sep in "[ ;]{0,2}") {
            let s = format!("v=DMARC1;{sep}{}", tags.join(";"));
            if let Ok(r) = parse(&s) {
                prop_assert_eq!(parse(&r.to_string()), Ok(r));
            }
            // What a receiver keeps of any record is itself a clean record.
            if let Ok((r, _)) = parse_lenient(&s) {
                prop_assert_eq!(parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn round_trips_arbitrary_text(s in "v=DMARC1;[ -~]{0,80}") {
            if let Ok((r, _)) = parse_lenient(&s) {
                prop_assert_eq!(parse(&r.to_string()), Ok(r));
            }
        }
    }
}
