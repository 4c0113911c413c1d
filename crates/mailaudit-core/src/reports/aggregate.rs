//! DMARC aggregate reports: RFC 7489 Appendix C, RFC 9990 (DMARCbis, namespace
//! `urn:ietf:params:xml:ns:dmarc-2.0`), the pre-RFC draft schema and the Microsoft 365 format,
//! read with a streaming XML reader that never processes a DTD or expands an entity.
//!
//! Fields are named after the XML elements. Recovery (lenient mode) follows parsedmarc where it
//! recovers: mismatched or unclosed tags are closed, mixed-case result words are lower-cased,
//! an empty `org_name` is taken from the `email` domain, and a broken `<record>` is skipped,
//! each with a [`Problem`].

use std::net::IpAddr;

use quick_xml::events::Event;
use serde::Serialize;

use super::{Mode, Problem, ReportError};

/// Most `<record>` elements accepted in one report.
pub const MAX_RECORDS: usize = 1_000_000;
/// Longest text node kept, in bytes; longer text is truncated with a [`Problem`].
pub const MAX_TEXT: usize = 64 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most problems kept per report (further ones are counted in a final problem).
pub const MAX_PROBLEMS: usize = 1_000;

/// A parsed DMARC aggregate report (`<feedback>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AggregateReport {
    /// `<version>`: "1.0" (RFC 7489 / RFC 9990 samples), "2.0", or absent (draft schema).
    pub version: Option<String>,
    /// The default namespace (`xmlns`) of `<feedback>`, e.g. `urn:ietf:params:xml:ns:dmarc-2.0`.
    pub xml_namespace: Option<String>,
    /// `<report_metadata>`.
    pub report_metadata: ReportMetadata,
    /// `<policy_published>`.
    pub policy_published: PolicyPublished,
    /// The `<record>` rows that could be read.
    pub records: Vec<Record>,
}

impl AggregateReport {
    /// Sum of `<count>` over all records.
    pub fn message_count(&self) -> u64 {
        self.records
            .iter()
            .fold(0u64, |n, r| n.saturating_add(r.row.count))
    }

    /// Messages whose `policy_evaluated` has `dkim=pass` or `spf=pass` (DMARC pass).
    pub fn dmarc_pass_count(&self) -> u64 {
        self.records
            .iter()
            .filter(|r| r.row.policy_evaluated.passes())
            .fold(0u64, |n, r| n.saturating_add(r.row.count))
    }
}

/// `<report_metadata>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportMetadata {
    /// `<org_name>`: the reporter (from the `email` domain when empty).
    pub org_name: String,
    /// `<email>`.
    pub email: Option<String>,
    /// `<extra_contact_info>`.
    pub extra_contact_info: Option<String>,
    /// `<report_id>`.
    pub report_id: String,
    /// `<date_range>`.
    pub date_range: DateRange,
    /// `<error>` elements.
    pub errors: Vec<String>,
    /// `<generator>` (RFC 9990).
    pub generator: Option<String>,
}

/// `<date_range>`: seconds since the epoch, UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DateRange {
    /// `<begin>`.
    pub begin: u64,
    /// `<end>`.
    pub end: u64,
}

/// `<policy_published>`: the DMARC record the reporter applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyPublished {
    /// `<domain>`.
    pub domain: String,
    /// `<adkim>`, "r" when absent (the RFC default).
    pub adkim: String,
    /// `<aspf>`, "r" when absent (the RFC default).
    pub aspf: String,
    /// `<p>`.
    pub p: String,
    /// `<sp>`.
    pub sp: Option<String>,
    /// `<np>` (RFC 9990).
    pub np: Option<String>,
    /// `<pct>` (RFC 7489; removed in RFC 9990).
    pub pct: Option<String>,
    /// `<fo>`.
    pub fo: Option<String>,
    /// `<testing>` (RFC 9990): "y" or "n".
    pub testing: Option<String>,
    /// `<discovery_method>` (RFC 9990): "psl" or "treewalk".
    pub discovery_method: Option<String>,
}

/// One `<record>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// `<row>`.
    pub row: Row,
    /// `<identifiers>`.
    pub identifiers: Identifiers,
    /// `<auth_results>`.
    pub auth_results: AuthResults,
}

/// `<row>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `<source_ip>` (IPv4 or IPv6).
    pub source_ip: IpAddr,
    /// `<count>`: messages from this source with these results.
    pub count: u64,
    /// `<policy_evaluated>`.
    pub policy_evaluated: PolicyEvaluated,
}

/// `<policy_evaluated>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyEvaluated {
    /// `<disposition>`: none, quarantine, reject, or pass (RFC 9990).
    pub disposition: String,
    /// `<dkim>`: the DMARC-aligned DKIM result, pass or fail.
    pub dkim: String,
    /// `<spf>`: the DMARC-aligned SPF result, pass or fail.
    pub spf: String,
    /// `<reason>` elements.
    pub reason: Vec<Reason>,
}

impl PolicyEvaluated {
    /// DMARC passes when aligned DKIM or aligned SPF passes.
    pub fn passes(&self) -> bool {
        self.dkim == "pass" || self.spf == "pass"
    }
}

/// `<reason>`: why the disposition differs from the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// `<type>`: forwarded, sampled_out, trusted_forwarder, mailing_list, local_policy, other…
    #[serde(rename = "type")]
    pub r#type: String,
    /// `<comment>`.
    pub comment: Option<String>,
}

/// `<identifiers>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identifiers {
    /// `<header_from>`.
    pub header_from: String,
    /// `<envelope_from>`.
    pub envelope_from: Option<String>,
    /// `<envelope_to>`.
    pub envelope_to: Option<String>,
}

/// `<auth_results>`: the raw, unaligned results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    /// `<dkim>` results.
    pub dkim: Vec<DkimAuthResult>,
    /// `<spf>` results.
    pub spf: Vec<SpfAuthResult>,
}

/// `<auth_results><dkim>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DkimAuthResult {
    /// `<domain>` (d=).
    pub domain: String,
    /// `<selector>` (s=).
    pub selector: Option<String>,
    /// `<result>`.
    pub result: String,
    /// `<human_result>`.
    pub human_result: Option<String>,
}

/// `<auth_results><spf>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpfAuthResult {
    /// `<domain>`.
    pub domain: String,
    /// `<scope>`: mfrom or helo.
    pub scope: Option<String>,
    /// `<result>`.
    pub result: String,
}

/// Declares [`Tag`]: the element names the parser acts on, matched without allocating.
macro_rules! names {
    ($($variant:ident = $text:literal),* $(,)?) => {
        /// An element's local name: one of the schema's, or [`Tag::Other`] (whose text the
        /// frame keeps).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Tag {
            $($variant,)*
            Other,
        }

        impl Tag {
            fn of(name: &str) -> Tag {
                match name {
                    $($text => Tag::$variant,)*
                    _ => Tag::Other,
                }
            }

            /// The name's text ("" for [`Tag::Other`]: see [`Parser::name_at`]).
            fn as_str(self) -> &'static str {
                match self {
                    $(Tag::$variant => $text,)*
                    Tag::Other => "",
                }
            }
        }
    };
}

names! {
    Feedback = "feedback",
    Version = "version",
    ReportMetadata = "report_metadata",
    OrgName = "org_name",
    Email = "email",
    ExtraContactInfo = "extra_contact_info",
    ReportId = "report_id",
    DateRange = "date_range",
    Begin = "begin",
    End = "end",
    Error = "error",
    Generator = "generator",
    PolicyPublished = "policy_published",
    Domain = "domain",
    Adkim = "adkim",
    Aspf = "aspf",
    P = "p",
    Sp = "sp",
    Np = "np",
    Pct = "pct",
    Fo = "fo",
    Testing = "testing",
    DiscoveryMethod = "discovery_method",
    Record = "record",
    Row = "row",
    SourceIp = "source_ip",
    Count = "count",
    PolicyEvaluated = "policy_evaluated",
    Disposition = "disposition",
    Dkim = "dkim",
    Spf = "spf",
    Reason = "reason",
    Type = "type",
    Comment = "comment",
    Identifiers = "identifiers",
    HeaderFrom = "header_from",
    EnvelopeFrom = "envelope_from",
    EnvelopeTo = "envelope_to",
    AuthResults = "auth_results",
    Selector = "selector",
    Result = "result",
    HumanResult = "human_result",
    Scope = "scope",
    Extension = "extension",
}

#[derive(Default)]
struct RecordBuilder {
    /// `<source_ip>`: the address, or the text that is not one.
    source_ip: Option<Result<IpAddr, String>>,
    /// `<count>`: `None` inside when the text is not a count.
    count: Option<Option<u64>>,
    pe: PolicyEvaluated,
    has_disposition: bool,
    has_dkim: bool,
    has_spf: bool,
    identifiers: Identifiers,
    has_header_from: bool,
    auth: AuthResults,
}

/// One open element besides its [`Tag`] (kept in a parallel stack so that the names below
/// `<feedback>` are a slice to match on).
struct Frame {
    /// The name of a [`Tag::Other`] element (empty, not allocated, otherwise).
    other: String,
    /// Where this element's text starts in [`Parser::text`]: the text of the open elements
    /// is stacked in one buffer, each element's after its parent's.
    text_start: usize,
    truncated: bool,
}

struct Parser {
    mode: Mode,
    problems: Vec<Problem>,
    dropped_problems: usize,
    /// The open elements' names, outermost first.
    names: Vec<Tag>,
    /// The open elements, as `names`.
    frames: Vec<Frame>,
    /// The text of the open elements (see [`Frame::text_start`]).
    text: String,
    report: AggregateReport,
    seen_feedback: bool,
    record: Option<RecordBuilder>,
    record_index: usize,
    has_p: bool,
}

/// Refuse any `<!DOCTYPE` or `<!ENTITY` anywhere in the input (case-insensitive).
fn find_dtd(xml: &[u8]) -> Option<&'static str> {
    for i in memchr::memmem::find_iter(xml, b"<!") {
        let rest = &xml[i + 2..];
        let starts =
            |kw: &[u8]| rest.len() >= kw.len() && rest[..kw.len()].eq_ignore_ascii_case(kw);
        if starts(b"DOCTYPE") {
            return Some("DOCTYPE");
        }
        if starts(b"ENTITY") {
            return Some("ENTITY declaration");
        }
        if starts(b"ATTLIST") || starts(b"ELEMENT") {
            return Some("DTD declaration");
        }
    }
    None
}

/// Parse a DMARC aggregate report.
///
/// RFC 7489 section 7.2 (and RFC 9990, which keeps it): "The aggregate data MUST be an XML file
/// that SHOULD be subjected to GZIP compression. […] The format for these reports is defined
/// in the XML Schema Definition (XSD) provided in Appendix C."
///
/// Decompression and the byte cap on the input are the caller's. Any DTD or entity declaration
/// is refused in both modes ([`ReportError::Dtd`]); undefined entity references are never
/// expanded. In [`Mode::Lenient`] deviations are recovered and recorded as warnings; in
/// [`Mode::Strict`] the same deviations are recorded as error-level problems (see
/// [`super::has_errors`]).
pub fn parse_aggregate(
    xml: &[u8],
    mode: Mode,
) -> Result<(AggregateReport, Vec<Problem>), ReportError> {
    if xml.trim_ascii().is_empty() {
        return Err(ReportError::Empty);
    }
    if let Some(what) = find_dtd(xml) {
        return Err(ReportError::Dtd(what));
    }
    // quick-xml reads `str`; invalid UTF-8 bytes become U+FFFD with one problem. Valid input
    // (nearly all) is borrowed, not copied.
    let text = match std::str::from_utf8(xml) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(xml),
    };
    let lossy = matches!(text, std::borrow::Cow::Owned(_));
    let mut reader = quick_xml::Reader::from_str(&text);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = false;
        cfg.allow_unmatched_ends = true;
        cfg.allow_dangling_amp = true;
        cfg.trim_markup_names_in_closing_tags = true;
    }
    let mut p = Parser {
        mode,
        problems: Vec::new(),
        dropped_problems: 0,
        names: Vec::with_capacity(16),
        frames: Vec::with_capacity(16),
        text: String::with_capacity(256),
        report: AggregateReport::default(),
        seen_feedback: false,
        record: None,
        record_index: 0,
        has_p: false,
    };
    if lossy {
        p.problem_at("feedback".into(), "invalid UTF-8 replaced with U+FFFD");
    }
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let qname = e.name();
                let name = local_name(qname.as_ref());
                let n = Tag::of(name);
                if n == Tag::Feedback && !p.seen_feedback {
                    p.seen_feedback = true;
                    for a in e.attributes().flatten() {
                        if a.key.as_ref() == "xmlns" {
                            p.report.xml_namespace = Some(a.value.trim().to_owned());
                        }
                    }
                }
                p.start(n, name)?;
            }
            Ok(Event::Empty(e)) => {
                let qname = e.name();
                let name = local_name(qname.as_ref());
                p.start(Tag::of(name), name)?;
                p.pop_one();
            }
            Ok(Event::End(e)) => {
                let qname = e.name();
                let name = local_name(qname.as_ref());
                p.end(Tag::of(name), name);
            }
            Ok(Event::Text(t)) => {
                p.push_text(&t);
            }
            Ok(Event::CData(t)) => {
                p.push_text(&t);
            }
            Ok(Event::GeneralRef(r)) => {
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => p.push_text(c.encode_utf8(&mut [0; 4])),
                        _ => p.problem("invalid character reference dropped"),
                    }
                } else {
                    let name: &str = &r;
                    match quick_xml::escape::resolve_predefined_entity(name) {
                        Some(s) => p.push_text(s),
                        None => p.problem(format!("undefined entity &{name}; not expanded")),
                    }
                }
            }
            Ok(Event::DocType(_)) => return Err(ReportError::Dtd("DOCTYPE")),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                if !p.seen_feedback {
                    return Err(ReportError::Xml {
                        position: reader.error_position(),
                        message: e.to_string(),
                    });
                }
                p.problem(format!(
                    "invalid XML at byte {}: {e}; kept what was read before it",
                    reader.error_position()
                ));
                break;
            }
        }
    }
    if !p.seen_feedback {
        return Err(ReportError::NotAggregate("no <feedback> element".into()));
    }
    while !p.names.is_empty() {
        p.problem_at(p.path(), "element not closed at end of input");
        p.pop_one();
    }
    p.finish()
}

/// The local part of a qualified name: what follows the first `:`, as quick-xml's
/// `local_name` (whose `str::find` costs more than this byte loop on names this short).
fn local_name(qname: &str) -> &str {
    match qname.bytes().position(|b| b == b':') {
        Some(i) => &qname[i + 1..],
        None => qname,
    }
}

/// `Some` non-empty text, owned.
fn opt(t: &str) -> Option<String> {
    (!t.is_empty()).then(|| t.to_owned())
}

/// `Some` non-empty text, already owned.
fn opt_owned(t: String) -> Option<String> {
    (!t.is_empty()).then_some(t)
}

/// Whether [`Parser::handle`] ignores the text of the element at `rel`.
fn is_container(rel: &[Tag]) -> bool {
    use Tag::*;
    matches!(
        rel,
        [] | [ReportMetadata]
            | [PolicyPublished]
            | [ReportMetadata, DateRange]
            | [Record]
            | [Record, Row]
            | [Record, Row, PolicyEvaluated]
            | [Record, Identifiers]
            | [Record, AuthResults]
            | [Record, Row, PolicyEvaluated, Reason]
            | [Record, AuthResults, Dkim | Spf]
    )
}

impl Parser {
    /// The name of the open element at `i` (outermost 0).
    fn name_at(&self, i: usize) -> &str {
        match self.names[i] {
            Tag::Other => &self.frames[i].other,
            n => n.as_str(),
        }
    }

    fn path(&self) -> String {
        let mut s = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if i > 0 {
                s.push('/');
            }
            s.push_str(self.name_at(i));
            if *n == Tag::Record {
                s.push_str(&format!("[{}]", self.record_index));
            }
        }
        s
    }

    fn problem_at(&mut self, location: String, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems
                .push(Problem::new(self.mode, location, message));
        } else {
            self.dropped_problems += 1;
        }
    }

    fn problem(&mut self, message: impl Into<String>) {
        let loc = self.path();
        self.problem_at(loc, message);
    }

    /// Where the names below the innermost `<feedback>` start (wrapper elements are ignored).
    fn rel_start(&self) -> usize {
        self.names
            .iter()
            .rposition(|n| *n == Tag::Feedback)
            .map_or(0, |i| i + 1)
    }

    fn in_feedback(&self) -> bool {
        self.names.contains(&Tag::Feedback)
    }

    fn start(&mut self, name: Tag, text: &str) -> Result<(), ReportError> {
        if self.names.len() >= MAX_DEPTH {
            return Err(ReportError::TooDeep(MAX_DEPTH));
        }
        self.names.push(name);
        self.frames.push(Frame {
            other: if name == Tag::Other {
                text.to_owned()
            } else {
                String::new()
            },
            text_start: self.text.len(),
            truncated: false,
        });
        if !self.in_feedback() {
            return Ok(());
        }
        use Tag::*;
        match &self.names[self.rel_start()..] {
            [Record] => {
                if self.report.records.len() >= MAX_RECORDS {
                    return Err(ReportError::TooManyRecords(MAX_RECORDS));
                }
                self.record_index += 1;
                if self.record.is_some() {
                    self.problem("<record> inside an unclosed <record>: previous one dropped");
                }
                self.record = Some(RecordBuilder::default());
            }
            [Record, Row, PolicyEvaluated, Reason] => {
                if let Some(r) = self.record.as_mut() {
                    r.pe.reason.push(self::Reason::default());
                }
            }
            [Record, AuthResults, Dkim] => {
                if let Some(r) = self.record.as_mut() {
                    r.auth.dkim.push(DkimAuthResult::default());
                }
            }
            [Record, AuthResults, Spf] => {
                if let Some(r) = self.record.as_mut() {
                    r.auth.spf.push(SpfAuthResult::default());
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn push_text(&mut self, s: &str) {
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        if frame.truncated {
            return;
        }
        let len = self.text.len() - frame.text_start;
        if len + s.len() > MAX_TEXT {
            let mut cut = MAX_TEXT.saturating_sub(len).min(s.len());
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&s[..cut]);
            frame.truncated = true;
            self.problem(format!("text longer than {MAX_TEXT} bytes truncated"));
        } else {
            self.text.push_str(s);
        }
    }

    fn end(&mut self, name: Tag, text: &str) {
        let found = self
            .names
            .iter()
            .zip(&self.frames)
            .rposition(|(n, f)| *n == name && (name != Tag::Other || f.other == text));
        match found {
            Some(i) => {
                while self.names.len() > i + 1 {
                    let loc = self.path();
                    self.problem_at(loc, format!("element not closed before </{text}>: closed"));
                    self.pop_one();
                }
                self.pop_one();
            }
            None => self.problem(format!("stray </{text}> ignored")),
        }
    }

    /// Lower-case a keyword value, recording a problem when it was not already lower case.
    fn word(&mut self, text: &str, what: &str) -> String {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            self.problem(format!("{what} {text:?} lower-cased"));
            text.to_ascii_lowercase()
        } else {
            text.to_owned()
        }
    }

    /// Close the innermost element: drop its frame and its text.
    fn pop_frame(&mut self) {
        self.names.pop();
        if let Some(f) = self.frames.pop() {
            self.text.truncate(f.text_start);
        }
    }

    /// Handle the innermost element's text, then pop it.
    fn pop_one(&mut self) {
        if !self.in_feedback() {
            self.pop_frame();
            return;
        }
        // The names below <feedback> (at most MAX_DEPTH), copied so that `self` can change.
        let start = self.rel_start();
        let depth = self.names.len() - start;
        let mut rel = [Tag::Other; MAX_DEPTH];
        rel[..depth].copy_from_slice(&self.names[start..]);
        let rel = &rel[..depth];
        // The text, taken out of `self` while it is read (and put back below).
        let buf = std::mem::take(&mut self.text);
        let text_start = self.frames.last().map_or(buf.len(), |f| f.text_start);
        // Elements that only contain others ignore their text (whitespace, mostly): not trimmed.
        let text = if is_container(rel) {
            ""
        } else {
            buf[text_start..].trim()
        };
        self.handle(rel, text);
        self.text = buf;
        self.pop_frame();
    }

    /// Store the text of the element at `rel` (the names below `<feedback>`), being closed.
    fn handle(&mut self, rel: &[Tag], text: &str) {
        use Tag::*;
        match rel {
            [] | [ReportMetadata] | [PolicyPublished] | [ReportMetadata, DateRange] => {}
            [Version] => self.report.version = opt(text),
            [ReportMetadata, field] => {
                let m = &mut self.report.report_metadata;
                match *field {
                    OrgName => m.org_name = text.to_owned(),
                    Email => m.email = opt(text),
                    ExtraContactInfo => m.extra_contact_info = opt(text),
                    ReportId => m.report_id = text.to_owned(),
                    Error => m.errors.push(text.to_owned()),
                    Generator => m.generator = opt(text),
                    _ => {
                        let msg = format!(
                            "unknown element <{}> ignored",
                            self.name_at(self.names.len() - 1)
                        );
                        self.problem(msg);
                    }
                }
            }
            [ReportMetadata, DateRange, which @ (Begin | End)] => match text.parse::<u64>() {
                Ok(v) => {
                    let dr = &mut self.report.report_metadata.date_range;
                    if *which == Begin {
                        dr.begin = v;
                    } else {
                        dr.end = v;
                    }
                }
                Err(_) => {
                    let which = which.as_str();
                    self.problem(format!("<{which}> {text:?} is not a timestamp"));
                }
            },
            [PolicyPublished, field] => match *field {
                Domain => self.report.policy_published.domain = text.to_ascii_lowercase(),
                Adkim | Aspf | P | Sp | Np | Testing | DiscoveryMethod => {
                    let v = self.word(text, field.as_str());
                    let pp = &mut self.report.policy_published;
                    match *field {
                        Adkim => pp.adkim = v,
                        Aspf => pp.aspf = v,
                        P => {
                            pp.p = v;
                            self.has_p = true;
                        }
                        Sp => pp.sp = opt_owned(v),
                        Np => pp.np = opt_owned(v),
                        Testing => pp.testing = opt_owned(v),
                        _ => pp.discovery_method = opt_owned(v),
                    }
                }
                Pct => self.report.policy_published.pct = opt(text),
                Fo => self.report.policy_published.fo = opt(text),
                _ => {
                    let msg = format!(
                        "unknown element <{}> ignored",
                        self.name_at(self.names.len() - 1)
                    );
                    self.problem(msg);
                }
            },
            [Record] => self.finish_record(),
            [Record, Row]
            | [Record, Row, PolicyEvaluated]
            | [Record, Identifiers]
            | [Record, AuthResults]
            | [Record, Row, PolicyEvaluated, Reason]
            | [Record, AuthResults, Dkim | Spf] => {}
            [Record, Row, SourceIp] => {
                if let Some(r) = self.record.as_mut() {
                    r.source_ip = Some(text.parse::<IpAddr>().map_err(|_| text.to_owned()));
                }
            }
            [Record, Row, Count] => {
                if let Some(r) = self.record.as_mut() {
                    r.count = Some(text.parse::<u64>().ok());
                }
            }
            [Record, Row, PolicyEvaluated, f @ (Disposition | Dkim | Spf)] => {
                let v = self.word(text, f.as_str());
                if let Some(r) = self.record.as_mut() {
                    match *f {
                        Disposition => {
                            r.pe.disposition = v;
                            r.has_disposition = true;
                        }
                        Dkim => {
                            r.pe.dkim = v;
                            r.has_dkim = true;
                        }
                        _ => {
                            r.pe.spf = v;
                            r.has_spf = true;
                        }
                    }
                }
            }
            [Record, Row, PolicyEvaluated, Reason, f @ (Type | Comment)] => {
                let v = if *f == Type {
                    self.word(text, "reason type")
                } else {
                    text.to_owned()
                };
                if let Some(reason) = self.record.as_mut().and_then(|r| r.pe.reason.last_mut()) {
                    if *f == Type {
                        reason.r#type = v;
                    } else {
                        reason.comment = opt_owned(v);
                    }
                }
            }
            [
                Record,
                Identifiers,
                f @ (HeaderFrom | EnvelopeFrom | EnvelopeTo),
            ] => {
                if let Some(r) = self.record.as_mut() {
                    match *f {
                        HeaderFrom => {
                            r.identifiers.header_from = text.to_ascii_lowercase();
                            r.has_header_from = true;
                        }
                        EnvelopeFrom => r.identifiers.envelope_from = opt(text),
                        _ => r.identifiers.envelope_to = opt(text),
                    }
                }
            }
            [Record, AuthResults, Dkim, f] => {
                let v = match *f {
                    Result => self.word(text, "DKIM result"),
                    Domain | Selector | HumanResult => text.to_owned(),
                    _ => return,
                };
                if let Some(d) = self.record.as_mut().and_then(|r| r.auth.dkim.last_mut()) {
                    match *f {
                        Domain => d.domain = v,
                        Selector => d.selector = opt_owned(v),
                        Result => d.result = v,
                        _ => d.human_result = opt_owned(v),
                    }
                }
            }
            [Record, AuthResults, Spf, f] => {
                let v = match *f {
                    Result | Scope => self.word(text, f.as_str()),
                    Domain => text.to_owned(),
                    _ => return,
                };
                if let Some(s) = self.record.as_mut().and_then(|r| r.auth.spf.last_mut()) {
                    match *f {
                        Domain => s.domain = v,
                        Scope => s.scope = opt_owned(v),
                        _ => s.result = v,
                    }
                }
            }
            [.., Extension] => {}
            rest if rest.contains(&Extension) => {}
            _ => {
                let msg = format!(
                    "unexpected element <{}> ignored",
                    self.name_at(self.names.len() - 1)
                );
                self.problem(msg);
            }
        }
    }

    fn finish_record(&mut self) {
        let Some(b) = self.record.take() else {
            return;
        };
        let source_ip = match b.source_ip {
            Some(Ok(ip)) => ip,
            Some(Err(s)) => {
                self.problem(format!(
                    "<source_ip> {s:?} is not an IP address: record skipped"
                ));
                return;
            }
            None => {
                self.problem("record without <source_ip> skipped");
                return;
            }
        };
        let Some(Some(count)) = b.count else {
            self.problem("record without a valid <count> skipped");
            return;
        };
        if !(b.has_disposition && b.has_dkim && b.has_spf) {
            self.problem("record with incomplete <policy_evaluated> skipped");
            return;
        }
        if !b.has_header_from {
            self.problem("record without <header_from>");
        }
        self.report.records.push(Record {
            row: Row {
                source_ip,
                count,
                policy_evaluated: b.pe,
            },
            identifiers: b.identifiers,
            auth_results: b.auth,
        });
    }

    fn finish(mut self) -> Result<(AggregateReport, Vec<Problem>), ReportError> {
        let m = &mut self.report.report_metadata;
        if m.org_name.is_empty() {
            let from_email = m
                .email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, d)| d.trim_matches(|c: char| c == '>' || c.is_whitespace()))
                .filter(|d| !d.is_empty())
                .map(str::to_ascii_lowercase);
            match from_email {
                Some(d) => {
                    m.org_name = d;
                    self.problem_at(
                        "feedback/report_metadata/org_name".into(),
                        "empty <org_name>: taken from the <email> domain",
                    );
                }
                None => self.problem_at(
                    "feedback/report_metadata/org_name".into(),
                    "missing <org_name>",
                ),
            }
        } else if !m.org_name.contains(char::is_whitespace) && m.org_name.contains('.') {
            // A domain name as org_name: compare case-insensitively, like parsedmarc.
            m.org_name = m.org_name.to_ascii_lowercase();
        }
        if self.report.report_metadata.report_id.is_empty() {
            self.problem_at("feedback/report_metadata".into(), "missing <report_id>");
        }
        let pp = &mut self.report.policy_published;
        if pp.adkim.is_empty() {
            pp.adkim = "r".into();
        }
        if pp.aspf.is_empty() {
            pp.aspf = "r".into();
        }
        if pp.domain.is_empty() {
            self.problem_at("feedback/policy_published".into(), "missing <domain>");
        }
        if !self.has_p {
            self.problem_at("feedback/policy_published".into(), "missing <p>");
        }
        if self.dropped_problems > 0 {
            let n = self.dropped_problems;
            self.problems.push(Problem::new(
                self.mode,
                "feedback",
                format!("{n} further problems not listed"),
            ));
        }
        Ok((self.report, self.problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    macro_rules! sample {
        ($p:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../testdata/reports/",
                $p
            ))
        };
    }

    fn parse(xml: &[u8]) -> (AggregateReport, Vec<Problem>) {
        match parse_aggregate(xml, Mode::Lenient) {
            Ok(r) => r,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    /// (name, file bytes, org_name, records, msgs, DMARC-pass msgs)
    type SampleRow<'a> = (&'a str, &'a [u8], &'a str, usize, u64, u64);

    #[test]
    fn samples_match_source_md() {
        // (file bytes, org_name, policy domain, records, msgs, DMARC-pass msgs)
        let table: &[SampleRow] = &[
            (
                "!example.com",
                sample!("aggregate/!example.com!1538204542!1538463818.xml"),
                "accurateplastics.com",
                1,
                1,
                0,
            ),
            (
                "addisonfoods",
                sample!("aggregate/addisonfoods.com!example.com!1536105600!1536191999.xml"),
                "addisonfoods.com",
                1,
                1,
                0,
            ),
            (
                "empty_reason",
                sample!("aggregate/empty_reason.xml"),
                "example.org",
                1,
                2,
                2,
            ),
            (
                "example.net",
                sample!("aggregate/example.net!example.com!1529366400!1529452799.xml"),
                "example.net",
                1,
                1,
                0,
            ),
            (
                "invalid_xml",
                sample!("aggregate/invalid_xml.xml"),
                "veeam.com",
                1,
                1,
                0,
            ),
            (
                "old_draft",
                sample!("aggregate/old_draft_from_wiki.xml"),
                "acme.com",
                1,
                2,
                2,
            ),
            (
                "outlook",
                sample!("aggregate/protection.outlook.com!example.com!1711756800!1711843200.xml"),
                "outlook.com",
                1,
                1,
                0,
            ),
            (
                "rfc9990-example",
                sample!("aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml"),
                "example.net",
                2,
                7,
                5,
            ),
            (
                "rfc9990-sample",
                sample!("aggregate/rfc9990-sample.xml"),
                "Sample Reporter",
                1,
                123,
                123,
            ),
            (
                "usssa",
                sample!("aggregate/usssa.com!example.com!1538784000!1538870399.xml"),
                "usssa.com",
                2,
                2,
                0,
            ),
            (
                "veeam",
                sample!("aggregate/veeam.com!example.com!1530133200!1530219600.xml"),
                "veeam.com",
                1,
                1,
                0,
            ),
            (
                "upper_cased",
                sample!("aggregate_invalid/report_with_upper_cased_pass.xml"),
                "example.com",
                1,
                1,
                1,
            ),
            (
                "nice-input",
                sample!("extract_report/nice-input.xml"),
                "google.com",
                20,
                3047,
                3047,
            ),
            (
                "changed-input",
                sample!("extract_report/changed-input.xml"),
                "fred.com",
                20,
                3047,
                3047,
            ),
        ];
        for (name, xml, org, records, msgs, pass) in table {
            let (r, _) = parse(xml);
            assert_eq!(r.report_metadata.org_name, *org, "{name}");
            assert_eq!(r.records.len(), *records, "{name}");
            assert_eq!(r.message_count(), *msgs, "{name}");
            assert_eq!(r.dmarc_pass_count(), *pass, "{name}");
            let domain = if *name == "rfc9990-sample" || *name == "old_draft" {
                "example.com"
            } else {
                r.policy_published.domain.as_str()
            };
            assert_eq!(r.policy_published.domain, domain, "{name}");
            assert!(serde_json::to_string(&r).is_ok(), "{name}");
        }
    }

    #[test]
    fn plain_rfc7489_report() {
        let (r, problems) = parse(sample!(
            "aggregate/example.net!example.com!1529366400!1529452799.xml"
        ));
        let pp = &r.policy_published;
        assert_eq!(pp.pct.as_deref(), Some("100"));
        assert_eq!(pp.fo.as_deref(), Some("0"));
        assert_eq!(
            (
                pp.np.as_ref(),
                pp.testing.as_ref(),
                pp.discovery_method.as_ref()
            ),
            (None, None, None)
        );
        assert_eq!(r.report_metadata.generator, None);
        assert_eq!(r.xml_namespace, None);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn rfc9990_sample_fields() {
        let (r, problems) = parse(sample!("aggregate/rfc9990-sample.xml"));
        assert_eq!(r.version.as_deref(), Some("1.0"));
        assert_eq!(
            r.xml_namespace.as_deref(),
            Some("urn:ietf:params:xml:ns:dmarc-2.0")
        );
        let m = &r.report_metadata;
        assert_eq!(m.report_id, "3v98abbp8ya9n3va8yr8oa3ya");
        assert_eq!(
            m.generator.as_deref(),
            Some("Example DMARC Aggregate Reporter v1.2")
        );
        assert_eq!(
            (m.date_range.begin, m.date_range.end),
            (302832000, 302918399)
        );
        let pp = &r.policy_published;
        assert_eq!(pp.p, "quarantine");
        assert_eq!(pp.sp.as_deref(), Some("none"));
        assert_eq!(pp.np.as_deref(), Some("none"));
        assert_eq!(pp.testing.as_deref(), Some("n"));
        assert_eq!(pp.discovery_method.as_deref(), Some("treewalk"));
        assert_eq!((pp.adkim.as_str(), pp.aspf.as_str()), ("r", "r"));
        assert_eq!((pp.pct.as_ref(), pp.fo.as_ref()), (None, None));
        let rec = &r.records[0];
        assert_eq!(rec.row.source_ip, "192.0.2.123".parse::<IpAddr>().unwrap());
        assert_eq!(rec.row.count, 123);
        let pe = &rec.row.policy_evaluated;
        assert_eq!(
            (pe.disposition.as_str(), pe.dkim.as_str(), pe.spf.as_str()),
            ("pass", "pass", "fail")
        );
        assert_eq!(rec.auth_results.dkim[0].selector.as_deref(), Some("abc123"));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn rfc9990_example_net() {
        let (r, _) = parse(sample!(
            "aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml"
        ));
        assert_eq!(r.version.as_deref(), Some("2.0"));
        let pp = &r.policy_published;
        assert_eq!(pp.np.as_deref(), Some("reject"));
        assert_eq!(pp.testing.as_deref(), Some("y"));
        assert_eq!(pp.discovery_method.as_deref(), Some("treewalk"));
        assert!(r.records.iter().any(|x| {
            x.row
                .policy_evaluated
                .reason
                .iter()
                .any(|r| r.r#type == "other")
        }));
    }

    #[test]
    fn mixed_case_words_lower_cased() {
        let (r, problems) = parse(sample!(
            "aggregate_invalid/report_with_upper_cased_pass.xml"
        ));
        let rec = &r.records[0];
        let pe = &rec.row.policy_evaluated;
        for w in [&pe.disposition, &pe.dkim, &pe.spf] {
            assert_eq!(*w, w.to_ascii_lowercase());
        }
        for d in &rec.auth_results.dkim {
            assert_eq!(d.result, d.result.to_ascii_lowercase());
        }
        for s in &rec.auth_results.spf {
            assert_eq!(s.result, s.result.to_ascii_lowercase());
        }
        assert!(problems.iter().any(|p| p.message.contains("lower-cased")));
        // Strict mode: the same deviations are errors.
        let (_, strict) = parse_aggregate(
            sample!("aggregate_invalid/report_with_upper_cased_pass.xml"),
            Mode::Strict,
        )
        .unwrap();
        assert!(crate::reports::has_errors(&strict));
        assert!(!crate::reports::has_errors(&problems));
    }

    #[test]
    fn invalid_xml_recovered_with_problem() {
        let (r, problems) = parse(sample!("aggregate/invalid_xml.xml"));
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].identifiers.header_from, "bad");
        assert_eq!(r.report_metadata.report_id, "sonexushealth.com:1530233361");
        assert!(!problems.is_empty());
    }

    #[test]
    fn empty_org_name_from_email() {
        let (r, problems) = parse(sample!("aggregate/!example.com!1538204542!1538463818.xml"));
        assert_eq!(r.report_metadata.org_name, "accurateplastics.com");
        assert!(problems.iter().any(|p| p.location.ends_with("org_name")));
    }

    #[test]
    fn refused_inputs() {
        let cases: &[(&[u8], ReportError)] = &[
            (sample!("empty.xml"), ReportError::Empty),
            (b"  \n", ReportError::Empty),
            (
                b"<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>",
                ReportError::Dtd("DOCTYPE"),
            ),
            (
                b"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>",
                ReportError::Dtd("DOCTYPE"),
            ),
            (b"<feedback><!ENTITY x \"y\"></feedback>", ReportError::Dtd("ENTITY declaration")),
            (b"<!doctype feedback><feedback/>", ReportError::Dtd("DOCTYPE")),
            (b"<html><body>hi</body></html>", ReportError::NotAggregate("no <feedback> element".into())),
        ];
        for (xml, want) in cases {
            for mode in [Mode::Lenient, Mode::Strict] {
                assert_eq!(parse_aggregate(xml, mode).as_ref().err(), Some(want));
            }
        }
    }

    #[test]
    fn undefined_entity_not_expanded() {
        let (r, problems) = parse(b"<feedback><report_metadata><org_name>a&xxe;b &amp; &#65;</org_name></report_metadata></feedback>");
        assert_eq!(r.report_metadata.org_name, "ab & A");
        assert!(problems.iter().any(|p| p.message.contains("&xxe;")));
    }

    fn record(ip: &str, count: u64) -> String {
        format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers><auth_results><dkim><domain>example.com</domain><result>pass</result><selector>s1</selector></dkim><spf><domain>example.com</domain><scope>mfrom</scope><result>fail</result></spf></auth_results></record>"
        )
    }

    fn report(records: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\"><version>1.0</version><report_metadata><org_name>r.example</org_name><email>a@r.example</email><report_id>1</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata><policy_published><domain>example.com</domain><p>reject</p><np>reject</np><testing>n</testing><discovery_method>psl</discovery_method></policy_published>{records}<extension><x>1</x></extension></feedback>"
        )
    }

    #[test]
    fn ipv6_sources() {
        let xml = report(&(record("2001:db8::1", 3) + &record("::ffff:192.0.2.1", 4)));
        let (r, problems) = parse(xml.as_bytes());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            r.records[0].row.source_ip,
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert!(r.records[1].row.source_ip.is_ipv6());
        assert_eq!(r.message_count(), 7);
    }

    #[test]
    fn broken_record_skipped_not_report() {
        let xml = report(
            &(record("not-an-ip", 3)
                + &record("192.0.2.1", 4)
                + &record("192.0.2.2", 0).replace("<count>0</count>", "<count>x</count>")),
        );
        for mode in [Mode::Lenient, Mode::Strict] {
            let (r, problems) = parse_aggregate(xml.as_bytes(), mode).unwrap();
            assert_eq!(r.records.len(), 1);
            assert_eq!(problems.len(), 2, "{problems:?}");
            assert_eq!(crate::reports::has_errors(&problems), mode == Mode::Strict);
        }
    }

    #[test]
    fn rfc9990_ten_thousand_records() {
        let mut records = String::new();
        for i in 0..10_000u32 {
            let ip = if i % 2 == 0 {
                format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)
            } else {
                format!("2001:db8::{i:x}")
            };
            records.push_str(&record(&ip, 1 + u64::from(i % 5)));
        }
        let (r, problems) = parse(report(&records).as_bytes());
        assert!(problems.is_empty(), "{:?}", problems.first());
        assert_eq!(r.records.len(), 10_000);
        assert_eq!(
            r.xml_namespace.as_deref(),
            Some("urn:ietf:params:xml:ns:dmarc-2.0")
        );
        assert_eq!(r.message_count(), 30_000);
    }

    #[test]
    fn truncated_input_keeps_what_was_read() {
        let xml = report(&(record("192.0.2.1", 4) + &record("192.0.2.2", 5)));
        let cut = &xml[..xml.find("192.0.2.2").unwrap()];
        let (r, problems) = parse(cut.as_bytes());
        assert_eq!(r.records.len(), 1);
        assert!(!problems.is_empty());
    }

    #[test]
    fn deep_nesting_refused() {
        let xml = format!("<feedback>{}", "<a>".repeat(1000));
        assert_eq!(
            parse_aggregate(xml.as_bytes(), Mode::Lenient).err(),
            Some(ReportError::TooDeep(MAX_DEPTH))
        );
    }

    #[test]
    fn long_text_truncated() {
        let xml = format!(
            "<feedback><report_metadata><org_name>{}</org_name></report_metadata></feedback>",
            "é".repeat(MAX_TEXT)
        );
        let (r, problems) = parse(xml.as_bytes());
        assert!(r.report_metadata.org_name.len() <= MAX_TEXT);
        assert!(problems.iter().any(|p| p.message.contains("truncated")));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_aggregate(&bytes, Mode::Lenient);
            let _ = parse_aggregate(&bytes, Mode::Strict);
        }

        #[test]
        fn never_panics_on_mangled_reports(cut in 0usize..2000, junk in "[<>/&;a-z!\\[\\]]{0,20}") {
            let mut xml = report(&record("192.0.2.1", 4));
            let at = cut.min(xml.len());
            if xml.is_char_boundary(at) {
                xml.insert_str(at, &junk);
            }
            let _ = parse_aggregate(xml.as_bytes(), Mode::Lenient);
        }
    }
}
