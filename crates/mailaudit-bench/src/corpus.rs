//! A deterministic corpus of DMARC aggregate reports, for the `reports` benchmark.
//!
//! [`generate_report`] builds report `i` of a corpus from a small generator seeded with
//! `(seed, i)` alone, so the same seed always gives the same reports, and the corpus of
//! `N` MB is the first files of the corpus of `2N` MB. [`write_corpus`] writes reports `0, 1,
//! 2, …` into a directory until their XML adds up to the size asked for.
//!
//! Report 0 is the largest: it is filled with records up to `largest_bytes` of XML. Every other
//! report is kept under half of that, so two corpora with the same `largest_bytes` have the same
//! largest file whatever their total size. The others are a mix like a real mailbox of
//! aggregate reports: about 70% small (1–10 records), 22% medium (10–200) and 8% large
//! (200–3,000 records, a few MB).
//!
//! The reporters follow what arrives from the big senders, in RFC 7489 Appendix C shape:
//! Google (about 40%: `<version>`, `extra_contact_info`, DKIM selectors, no `envelope_from`),
//! Microsoft (30%: the `xmlns:xsd`/`xmlns:xsi` attributes, `envelope_to`, SPF `scope`, `fo`),
//! Yahoo (15%), and 15% in the RFC 9990 namespace `urn:ietf:params:xml:ns:dmarc-2.0` (`np`,
//! `testing`, `discovery_method`, `generator`). Each record has zero to three DKIM results and
//! one or two SPF results; a few carry a `<reason>`. About 15% of the small and medium reports
//! are gzip-compressed (`.xml.gz`), as RFC 7489 section 7.2.1.1 recommends.
//!
//! Policy domains are under `.example` (RFC 2606). Source addresses come from the benchmarking
//! range 198.18.0.0/15 (RFC 2544), the documentation ranges of RFC 5737, and 2001:db8::/32 (RFC
//! 3849) for the quarter of records that are IPv6; nothing in the corpus is ever looked up.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::fleet::Rng;

/// The RFC 9990 (DMARCbis) namespace of `<feedback>`.
pub const RFC9990_NAMESPACE: &str = "urn:ietf:params:xml:ns:dmarc-2.0";

/// 2024-11-01T00:00:00Z: the first report period of the corpus.
const EPOCH: u64 = 1_730_419_200;

/// Who sent a report, which decides its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// google.com, RFC 7489 shape with `<version>1.0</version>`.
    Google,
    /// Microsoft (Outlook.com / Enterprise Outlook), with `envelope_to` and SPF `scope`.
    Microsoft,
    /// Yahoo, plain RFC 7489 shape.
    Yahoo,
    /// A reporter using the RFC 9990 namespace and fields.
    Rfc9990,
}

impl Reporter {
    /// The reporter's domain, the first part of the file name (RFC 7489 section 7.2.1.1).
    pub fn domain(self) -> &'static str {
        match self {
            Reporter::Google => "google.com",
            Reporter::Microsoft => "enterprise.protection.outlook.com",
            Reporter::Yahoo => "yahoo.com",
            Reporter::Rfc9990 => "reports.dmarcbis-reporter.example",
        }
    }
}

/// One generated report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedReport {
    /// File name: `receiver!policy-domain!begin!end!unique-id.xml[.gz]` (RFC 7489 7.2.1.1).
    pub file_name: String,
    /// The XML document.
    pub xml: String,
    /// How many `<record>` elements it has.
    pub records: u64,
    /// How many of those have an IPv6 source.
    pub ipv6_records: u64,
    /// Who sent it.
    pub reporter: Reporter,
    /// Whether it is to be written gzip-compressed.
    pub gzip: bool,
}

/// Sending services a customer domain's mail comes from, as seen in aggregate reports.
#[derive(Clone, Copy)]
enum Source {
    /// Exchange Online: DKIM by the domain and the tenant, SPF pass.
    Microsoft365,
    /// Google Workspace.
    Google,
    /// A bulk sender signing with its own domain (no DKIM alignment).
    Esp(&'static str, &'static str),
    /// A forwarder: DKIM survives, SPF fails.
    Forwarder,
    /// Someone else using the domain: everything fails.
    Spoofer,
}

const ESPS: &[(&str, &str)] = &[
    ("sendgrid.net", "s1"),
    ("mcsv.net", "k1"),
    ("amazonses.com", "ug7nbtf4gccmlpwj322ax3p6ow6yfsug"),
    ("mktomail.com", "m1"),
    ("sparkpostmail.com", "scph0122"),
];

/// Report `index` of the corpus of `seed`. Report 0 is filled to about `largest_bytes` of XML;
/// every other report stays under half of that.
pub fn generate_report(seed: u64, index: u64, largest_bytes: u64) -> GeneratedReport {
    let mut rng = Rng::new(seed, index);
    let reporter = match rng.percent() {
        0..40 => Reporter::Google,
        40..70 => Reporter::Microsoft,
        70..85 => Reporter::Yahoo,
        _ => Reporter::Rfc9990,
    };
    let size_roll = rng.percent();
    let (max_records, max_bytes) = if index == 0 {
        (u64::MAX, largest_bytes)
    } else {
        let records = match size_roll {
            0..70 => 1 + rng.below(10),
            70..92 => 10 + rng.below(191),
            _ => 200 + rng.below(2_801),
        };
        (records, largest_bytes / 2)
    };
    let gzip = index != 0 && size_roll < 92 && rng.chance(15);
    let customer = index % 997;
    let domain = format!("customer{customer}.example");
    let tenant = format!("customer{customer}");
    let day = index / 997;
    let begin = EPOCH + day * 86_400;
    let end = begin + 86_399;
    let unique = format!("{:016x}", rng.next());

    let mut xml = String::with_capacity(4096);
    header(&mut xml, reporter, &mut rng, &domain, begin, end, &unique);
    let mut records = 0u64;
    let mut ipv6_records = 0u64;
    while records < max_records && (records == 0 || (xml.len() as u64) + 1_536 < max_bytes) {
        ipv6_records += u64::from(record(&mut xml, reporter, &mut rng, &domain, &tenant));
        records += 1;
    }
    xml.push_str("</feedback>\n");
    let file_name = format!(
        "{}!{domain}!{begin}!{end}!{index:06}.xml{}",
        reporter.domain(),
        if gzip { ".gz" } else { "" }
    );
    GeneratedReport {
        file_name,
        xml,
        records,
        ipv6_records,
        reporter,
        gzip,
    }
}

/// The XML declaration, `<feedback>`, `<report_metadata>` and `<policy_published>`.
fn header(
    xml: &mut String,
    reporter: Reporter,
    rng: &mut Rng,
    domain: &str,
    begin: u64,
    end: u64,
    unique: &str,
) {
    let p = *rng.pick(&["none", "none", "quarantine", "reject"]);
    let (org, email, extra, id) = match reporter {
        Reporter::Google => (
            "google.com",
            "noreply-dmarc-support@google.com",
            Some("https://support.google.com/a/answer/2466580"),
            format!("{}", rng.next() >> 1),
        ),
        Reporter::Microsoft => (
            "Enterprise Outlook",
            "dmarcreport@microsoft.com",
            None,
            unique.to_owned() + &format!("{:016x}", rng.next()),
        ),
        Reporter::Yahoo => (
            "Yahoo",
            "dmarchelp@yahooinc.com",
            None,
            format!("{begin}.{}", rng.below(1_000_000)),
        ),
        Reporter::Rfc9990 => (
            "DMARCbis Reporter",
            "dmarc-reports@dmarcbis-reporter.example",
            Some("https://dmarcbis-reporter.example/help"),
            unique.to_owned(),
        ),
    };
    match reporter {
        Reporter::Google => {
            xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback>\n");
            xml.push_str("  <version>1.0</version>\n");
        }
        Reporter::Microsoft => xml.push_str(
            "<?xml version=\"1.0\"?>\n<feedback xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n  <version>1.0</version>\n",
        ),
        Reporter::Yahoo => xml.push_str("<?xml version=\"1.0\"?>\n<feedback>\n"),
        Reporter::Rfc9990 => {
            let _ = writeln!(
                xml,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback xmlns=\"{RFC9990_NAMESPACE}\">\n  <version>1.0</version>"
            );
        }
    }
    let _ = writeln!(
        xml,
        "  <report_metadata>\n    <org_name>{org}</org_name>\n    <email>{email}</email>"
    );
    if let Some(extra) = extra {
        let _ = writeln!(xml, "    <extra_contact_info>{extra}</extra_contact_info>");
    }
    let _ = writeln!(
        xml,
        "    <report_id>{id}</report_id>\n    <date_range>\n      <begin>{begin}</begin>\n      \
         <end>{end}</end>\n    </date_range>"
    );
    if reporter == Reporter::Rfc9990 {
        xml.push_str("    <generator>DMARCbis Reporter 2.1</generator>\n");
    }
    xml.push_str("  </report_metadata>\n  <policy_published>\n");
    let _ = writeln!(xml, "    <domain>{domain}</domain>");
    match reporter {
        Reporter::Rfc9990 => {
            let _ = writeln!(
                xml,
                "    <p>{p}</p>\n    <sp>{p}</sp>\n    <np>reject</np>\n    <testing>n</testing>\n    \
                 <discovery_method>treewalk</discovery_method>"
            );
        }
        _ => {
            let _ = writeln!(
                xml,
                "    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>{p}</p>\n    <sp>{p}</sp>\n    \
                 <pct>100</pct>"
            );
            if reporter == Reporter::Microsoft {
                xml.push_str("    <fo>0</fo>\n");
            } else if reporter == Reporter::Google {
                xml.push_str("    <np>none</np>\n");
            }
        }
    }
    xml.push_str("  </policy_published>\n");
}

/// One `<record>`; returns whether its source is IPv6.
fn record(xml: &mut String, reporter: Reporter, rng: &mut Rng, domain: &str, tenant: &str) -> bool {
    let ipv6 = rng.chance(25);
    let ip = if ipv6 {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.below(0x1_0000),
            rng.below(0x1_0000),
            1 + rng.below(0xffff)
        )
    } else if rng.chance(85) {
        // 198.18.0.0/15: 131,072 addresses.
        let n = rng.below(1 << 17);
        format!("198.{}.{}.{}", 18 + (n >> 16), (n >> 8) & 0xff, n & 0xff)
    } else {
        let net = *rng.pick(&["192.0.2", "198.51.100", "203.0.113"]);
        format!("{net}.{}", rng.below(256))
    };
    let count = if rng.chance(80) {
        1 + rng.below(5)
    } else {
        1 + rng.below(5_000)
    };
    let source = match rng.percent() {
        0..45 => Source::Microsoft365,
        45..55 => Source::Google,
        55..75 => {
            let (d, s) = *rng.pick(ESPS);
            Source::Esp(d, s)
        }
        75..88 => Source::Forwarder,
        _ => Source::Spoofer,
    };
    // (domain, selector, result) and (domain, scope, result).
    let mut dkim: Vec<(String, &str, &str)> = Vec::new();
    let mut spf: Vec<(String, &str, &str)> = Vec::new();
    let envelope_from;
    match source {
        Source::Microsoft365 => {
            dkim.push((domain.to_owned(), "selector1", "pass"));
            if rng.chance(60) {
                dkim.push((format!("{tenant}.onmicrosoft.com"), "selector1", "pass"));
            }
            spf.push((domain.to_owned(), "mfrom", "pass"));
            envelope_from = domain.to_owned();
        }
        Source::Google => {
            dkim.push((domain.to_owned(), "google", "pass"));
            spf.push((domain.to_owned(), "mfrom", "pass"));
            envelope_from = domain.to_owned();
        }
        Source::Esp(esp, selector) => {
            dkim.push((esp.to_owned(), selector, "pass"));
            if rng.chance(40) {
                dkim.push((domain.to_owned(), "s1", "pass"));
            }
            envelope_from = format!("bounces.{esp}");
            spf.push((envelope_from.clone(), "mfrom", "pass"));
        }
        Source::Forwarder => {
            dkim.push((domain.to_owned(), "selector1", "pass"));
            if rng.chance(50) {
                dkim.push((format!("{tenant}.onmicrosoft.com"), "selector2", "pass"));
            }
            dkim.push(("forwarder.example".to_owned(), "arc-2024", "pass"));
            spf.push((domain.to_owned(), "mfrom", "softfail"));
            envelope_from = domain.to_owned();
        }
        Source::Spoofer => {
            if rng.chance(30) {
                dkim.push((domain.to_owned(), "default", "fail"));
            }
            spf.push((
                domain.to_owned(),
                "mfrom",
                *rng.pick(&["fail", "softfail", "none"]),
            ));
            envelope_from = domain.to_owned();
        }
    }
    if rng.chance(20) {
        spf.push(("mta.relay.example".to_owned(), "helo", "neutral"));
    }
    let dkim_aligned = dkim.iter().any(|(d, _, r)| d == domain && *r == "pass");
    let spf_aligned = spf
        .iter()
        .any(|(d, s, r)| d == domain && *s == "mfrom" && *r == "pass");
    let pass = |b: bool| if b { "pass" } else { "fail" };
    let disposition = if dkim_aligned || spf_aligned {
        "none"
    } else {
        *rng.pick(&["none", "quarantine", "reject"])
    };
    let _ = writeln!(
        xml,
        "  <record>\n    <row>\n      <source_ip>{ip}</source_ip>\n      <count>{count}</count>\n      \
         <policy_evaluated>\n        <disposition>{disposition}</disposition>\n        \
         <dkim>{}</dkim>\n        <spf>{}</spf>",
        pass(dkim_aligned),
        pass(spf_aligned)
    );
    if matches!(source, Source::Forwarder) && rng.chance(30) {
        xml.push_str(
            "        <reason>\n          <type>local_policy</type>\n          \
             <comment>arc=pass</comment>\n        </reason>\n",
        );
    }
    xml.push_str("      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    match reporter {
        Reporter::Microsoft => {
            let _ = writeln!(
                xml,
                "      <envelope_to>{}</envelope_to>\n      <envelope_from>{envelope_from}</envelope_from>\n      \
                 <header_from>{domain}</header_from>",
                rng.pick(&["outlook.com", "hotmail.com", "contoso.example"])
            );
        }
        Reporter::Google => {
            let _ = writeln!(xml, "      <header_from>{domain}</header_from>");
        }
        Reporter::Yahoo | Reporter::Rfc9990 => {
            let _ = writeln!(
                xml,
                "      <envelope_from>{envelope_from}</envelope_from>\n      \
                 <header_from>{domain}</header_from>"
            );
        }
    }
    xml.push_str("    </identifiers>\n    <auth_results>\n");
    for (d, selector, result) in &dkim {
        let _ = write!(
            xml,
            "      <dkim>\n        <domain>{d}</domain>\n        <selector>{selector}</selector>\n        \
             <result>{result}</result>\n"
        );
        if reporter == Reporter::Rfc9990 && *result != "pass" {
            xml.push_str("        <human_result>signature did not verify</human_result>\n");
        }
        xml.push_str("      </dkim>\n");
    }
    for (d, scope, result) in &spf {
        let _ = write!(xml, "      <spf>\n        <domain>{d}</domain>\n");
        if reporter != Reporter::Rfc9990 {
            let _ = writeln!(xml, "        <scope>{scope}</scope>");
        }
        let _ = writeln!(xml, "        <result>{result}</result>\n      </spf>");
    }
    xml.push_str("    </auth_results>\n  </record>\n");
    ipv6
}

/// What was asked of [`write_corpus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorpusSpec {
    /// Write reports until their XML (before compression) adds up to at least this.
    pub xml_bytes: u64,
    /// The size of report 0, the largest.
    pub largest_bytes: u64,
    /// The generator's seed.
    pub seed: u64,
}

/// One file written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusFile {
    /// Its index in the corpus.
    pub index: u64,
    /// Its path.
    pub path: PathBuf,
    /// Bytes of XML it holds (decompressed).
    pub xml_bytes: u64,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// `<record>` elements.
    pub records: u64,
    /// Records with an IPv6 source.
    pub ipv6_records: u64,
    /// Who sent it.
    pub reporter: Reporter,
    /// Whether it is gzip-compressed.
    pub gzip: bool,
}

/// The files of a corpus, in index order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Corpus {
    /// Every file written.
    pub files: Vec<CorpusFile>,
}

impl Corpus {
    /// Total bytes of XML.
    pub fn xml_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.xml_bytes).sum()
    }
    /// Total bytes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.disk_bytes).sum()
    }
    /// Total `<record>` elements.
    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }
    /// Records with an IPv6 source.
    pub fn ipv6_records(&self) -> u64 {
        self.files.iter().map(|f| f.ipv6_records).sum()
    }
    /// Files written gzip-compressed.
    pub fn gzip_files(&self) -> usize {
        self.files.iter().filter(|f| f.gzip).count()
    }
    /// Files from `reporter`.
    pub fn files_from(&self, reporter: Reporter) -> usize {
        self.files.iter().filter(|f| f.reporter == reporter).count()
    }
    /// The largest file's XML size.
    pub fn largest_xml_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.xml_bytes).max().unwrap_or(0)
    }
    /// Files whose index is `k - 1` modulo `k`: one in every `k` (all of them for `k <= 1`).
    /// Report 0, the largest, is in it only when `k <= 1`.
    pub fn every(&self, k: u64) -> Corpus {
        let k = k.max(1);
        Corpus {
            files: self
                .files
                .iter()
                .filter(|f| (f.index + 1) % k == 0)
                .cloned()
                .collect(),
        }
    }
}

/// Writes reports `0, 1, 2, …` of `spec.seed` into `dir` (which must exist) until their XML
/// adds up to at least `spec.xml_bytes`.
///
/// # Errors
/// Any error writing a file.
pub fn write_corpus(dir: &Path, spec: &CorpusSpec) -> std::io::Result<Corpus> {
    let mut corpus = Corpus::default();
    let mut total = 0u64;
    let mut index = 0u64;
    while total < spec.xml_bytes.max(1) {
        let report = generate_report(spec.seed, index, spec.largest_bytes);
        let path = dir.join(&report.file_name);
        let xml_bytes = report.xml.len() as u64;
        let disk_bytes = if report.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(report.xml.as_bytes())?;
            let bytes = gz.finish()?;
            std::fs::write(&path, &bytes)?;
            bytes.len() as u64
        } else {
            std::fs::write(&path, report.xml.as_bytes())?;
            xml_bytes
        };
        total += xml_bytes;
        corpus.files.push(CorpusFile {
            index,
            path,
            xml_bytes,
            disk_bytes,
            records: report.records,
            ipv6_records: report.ipv6_records,
            reporter: report.reporter,
            gzip: report.gzip,
        });
        index += 1;
    }
    Ok(corpus)
}

/// Links (or, across file systems, copies) the files of `corpus` into `dir`, which must exist.
///
/// # Errors
/// Any error linking or copying.
pub fn link_into(corpus: &Corpus, dir: &Path) -> std::io::Result<Corpus> {
    let mut out = corpus.clone();
    for file in &mut out.files {
        let name = file.path.file_name().unwrap_or_default();
        let to = dir.join(name);
        if std::fs::hard_link(&file.path, &to).is_err() {
            std::fs::copy(&file.path, &to)?;
        }
        file.path = to;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Read;

    use mailaudit_core::reports::{Mode, parse_aggregate};

    use super::*;

    const SEED: u64 = crate::fleet::DEFAULT_SEED;

    #[test]
    fn reports_are_deterministic_and_parse_to_their_record_count() {
        let mut reporters = HashSet::new();
        let (mut ipv6, mut multi_dkim, mut multi_spf, mut gzip) = (0, 0, 0, 0);
        for index in 0..300 {
            let report = generate_report(SEED, index, 1 << 20);
            assert_eq!(
                report,
                generate_report(SEED, index, 1 << 20),
                "report {index}"
            );
            let (parsed, problems) =
                parse_aggregate(report.xml.as_bytes(), Mode::Strict).expect("parses");
            assert!(problems.is_empty(), "report {index}: {problems:?}");
            assert_eq!(
                parsed.records.len() as u64,
                report.records,
                "report {index}"
            );
            assert_eq!(
                parsed
                    .records
                    .iter()
                    .filter(|r| r.row.source_ip.is_ipv6())
                    .count() as u64,
                report.ipv6_records
            );
            if report.reporter == Reporter::Rfc9990 {
                assert_eq!(parsed.xml_namespace.as_deref(), Some(RFC9990_NAMESPACE));
            } else {
                assert_eq!(parsed.xml_namespace, None);
            }
            assert!(report.file_name.starts_with(report.reporter.domain()));
            reporters.insert(report.reporter);
            ipv6 += report.ipv6_records;
            multi_dkim += parsed
                .records
                .iter()
                .filter(|r| r.auth_results.dkim.len() > 1)
                .count();
            multi_spf += parsed
                .records
                .iter()
                .filter(|r| r.auth_results.spf.len() > 1)
                .count();
            gzip += u32::from(report.gzip);
        }
        assert_eq!(reporters.len(), 4, "every reporter shape appears");
        assert!(ipv6 > 0 && multi_dkim > 0 && multi_spf > 0 && gzip > 0);
        assert_ne!(
            generate_report(SEED, 5, 1 << 20),
            generate_report(SEED + 1, 5, 1 << 20)
        );
    }

    #[test]
    fn report_zero_is_the_largest_and_fills_its_size() {
        let largest = 2 << 20;
        let zero = generate_report(SEED, 0, largest);
        let len = zero.xml.len() as u64;
        assert!(
            (largest - 3_072..=largest).contains(&len),
            "{len} for {largest}"
        );
        assert!(!zero.gzip);
        let (parsed, _) = parse_aggregate(zero.xml.as_bytes(), Mode::Strict).expect("parses");
        assert_eq!(parsed.records.len() as u64, zero.records);
        for index in 1..200 {
            assert!((generate_report(SEED, index, largest).xml.len() as u64) <= largest / 2);
        }
    }

    #[test]
    fn corpus_is_written_deterministically_and_grows_by_prefix() {
        let small_dir = tempfile::tempdir().expect("tempdir");
        let big_dir = tempfile::tempdir().expect("tempdir");
        let spec = CorpusSpec {
            xml_bytes: 3 << 20,
            largest_bytes: 1 << 20,
            seed: SEED,
        };
        let small = write_corpus(small_dir.path(), &spec).expect("written");
        let big = write_corpus(
            big_dir.path(),
            &CorpusSpec {
                xml_bytes: 6 << 20,
                ..spec
            },
        )
        .expect("written");
        assert!(small.xml_bytes() >= spec.xml_bytes);
        assert!(big.xml_bytes() >= 2 * spec.xml_bytes);
        assert_eq!(small.largest_xml_bytes(), big.largest_xml_bytes());
        for (a, b) in small.files.iter().zip(&big.files) {
            assert_eq!(a.path.file_name(), b.path.file_name());
            let (a, b) = (
                std::fs::read(&a.path).expect("read"),
                std::fs::read(&b.path),
            );
            assert_eq!(a, b.expect("read"));
        }
        // Every file on disk holds the XML it says, gzip or not.
        let mut records = 0;
        for file in &small.files {
            let raw = std::fs::read(&file.path).expect("read");
            assert_eq!(raw.len() as u64, file.disk_bytes);
            let xml = if file.gzip {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .expect("gunzip");
                assert!(file.path.to_string_lossy().ends_with(".xml.gz"));
                out
            } else {
                raw
            };
            assert_eq!(xml.len() as u64, file.xml_bytes);
            let (parsed, _) = parse_aggregate(&xml, Mode::Lenient).expect("parses");
            records += parsed.records.len() as u64;
        }
        assert_eq!(records, small.records());
        assert!(small.gzip_files() > 0);
        let every = small.every(3);
        assert!(every.files.iter().all(|f| f.index % 3 == 2));
        assert_eq!(small.every(1), small);
    }
}
