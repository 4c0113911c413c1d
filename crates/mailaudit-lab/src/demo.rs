//! The sample data of `mailaudit demo`: the customers and inventory of the sample fleet
//! ([`SAMPLE_CUSTOMERS`], [`SAMPLE_INVENTORY`]), and the synthetic reports the demo stores
//! ([`sample_reports`]): DMARC aggregate reports (RFC 7489 appendix C) for [`READY_DOMAIN`] and
//! [`MAILCHIMP_DOMAIN`], [`REPORT_DAYS`] days of them ending yesterday, and one SMTP TLS report
//! (RFC 8460) for [`TLS_DOMAIN`].
//!
//! The reports are plain document text, as a mailbox would hold them; reading them into a store
//! is the caller's business. Their content depends only on the day they cover, so the same day
//! gives the same bytes.

use quick_xml::escape::escape;
use time::OffsetDateTime;

/// A customer of the demo's inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleCustomer {
    /// The customer's name.
    pub name: &'static str,
    /// Its contacts.
    pub contacts: &'static str,
    /// Notes.
    pub notes: &'static str,
}

/// A domain of the demo's inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleDomain {
    /// The domain name (one of [`crate::sample_fleet`]'s).
    pub name: &'static str,
    /// Its customer (one of [`SAMPLE_CUSTOMERS`]).
    pub customer: &'static str,
    /// Its Microsoft 365 tenant, from its DKIM CNAMEs.
    pub tenant: Option<&'static str>,
    /// Whether it sends no mail.
    pub parked: bool,
}

const NOTES: &str = "Sample customer of the built-in demo";

/// The demo's customers.
pub const SAMPLE_CUSTOMERS: &[SampleCustomer] = &[
    SampleCustomer {
        name: "Contoso Legal Group",
        contacts: "it@contoso-legal.example",
        notes: NOTES,
    },
    SampleCustomer {
        name: "Fabrikam Health Partners",
        contacts: "admin@fabrikam-dental.example",
        notes: NOTES,
    },
    SampleCustomer {
        name: "Woodgrove Industries",
        contacts: "it@woodgrove-accounting.example",
        notes: NOTES,
    },
    SampleCustomer {
        name: "Coho Hospitality",
        contacts: "ops@coho-winery.example",
        notes: NOTES,
    },
];

const fn domain(
    name: &'static str,
    customer: &'static str,
    tenant: Option<&'static str>,
    parked: bool,
) -> SampleDomain {
    SampleDomain {
        name,
        customer,
        tenant,
        parked,
    }
}

/// The sample fleet's inventory: one parked domain, the others on Microsoft 365.
pub const SAMPLE_INVENTORY: &[SampleDomain] = &[
    domain(
        "contoso-legal.example",
        "Contoso Legal Group",
        Some("contosolegal"),
        false,
    ),
    domain(
        "northwind-logistics.example",
        "Contoso Legal Group",
        Some("northwindlogistics"),
        false,
    ),
    domain(
        "tailspin-realty.example",
        "Contoso Legal Group",
        Some("tailspinrealty"),
        false,
    ),
    domain(
        "trey-research.example",
        "Contoso Legal Group",
        Some("treyresearch"),
        false,
    ),
    domain(
        "fabrikam-dental.example",
        "Fabrikam Health Partners",
        Some("fabrikamdental"),
        false,
    ),
    domain(
        "adatum-clinic.example",
        "Fabrikam Health Partners",
        Some("adatumclinic"),
        false,
    ),
    domain(
        "proseware-insurance.example",
        "Fabrikam Health Partners",
        Some("prosewareinsurance"),
        false,
    ),
    domain(
        "lucerne-publishing.example",
        "Fabrikam Health Partners",
        Some("lucernepublishing"),
        false,
    ),
    domain(
        "woodgrove-accounting.example",
        "Woodgrove Industries",
        Some("woodgroveaccounting"),
        false,
    ),
    domain(
        "litware-engineering.example",
        "Woodgrove Industries",
        Some("litwareeng"),
        false,
    ),
    domain(
        "relecloud-manufacturing.example",
        "Woodgrove Industries",
        Some("relecloudmfg"),
        false,
    ),
    domain(
        "alpine-ski-house.example",
        "Woodgrove Industries",
        Some("alpineskihouse"),
        false,
    ),
    domain(
        "coho-winery.example",
        "Coho Hospitality",
        Some("cohowinery"),
        false,
    ),
    domain(
        "graphic-design-institute.example",
        "Coho Hospitality",
        Some("graphicdesigninst"),
        false,
    ),
    domain(
        "blue-yonder-airlines.example",
        "Coho Hospitality",
        None,
        true,
    ),
];

/// The domain whose reports show it ready for the next DMARC phase (p=none → quarantine).
pub const READY_DOMAIN: &str = "tailspin-realty.example";
/// The domain whose reports show a forgotten Mailchimp sender failing alignment (p=quarantine).
pub const MAILCHIMP_DOMAIN: &str = "adatum-clinic.example";
/// The domain of the SMTP TLS report (MTA-STS and TLS-RPT published).
pub const TLS_DOMAIN: &str = "contoso-legal.example";
/// Days of synthetic aggregate reports, ending yesterday.
pub const REPORT_DAYS: i64 = 42;
const DAY: i64 = 86_400;

/// One synthetic report: a document as a mailbox would hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleReport {
    /// Its file name (`<report id>.xml` or `.json`).
    pub file_name: String,
    /// The document: DMARC aggregate XML or SMTP TLS report JSON.
    pub bytes: Vec<u8>,
    /// When it arrived (unix seconds): the end of the day it covers.
    pub received_at: i64,
}

/// The demo's reports for the days before `now_unix` (UTC): for each of the last
/// [`REPORT_DAYS`] days, newest first, an aggregate report of [`READY_DOMAIN`] (p=none) then
/// one of [`MAILCHIMP_DOMAIN`] (p=quarantine); last, the SMTP TLS report of [`TLS_DOMAIN`] for
/// yesterday.
pub fn sample_reports(now_unix: i64) -> Vec<SampleReport> {
    let today = now_unix.div_euclid(DAY) * DAY;
    let mut docs = Vec::with_capacity(2 * REPORT_DAYS as usize + 1);
    for back in 1..=REPORT_DAYS {
        let begin = today - back * DAY;
        let day = begin / DAY;
        docs.push(aggregate(READY_DOMAIN, "none", begin, &ready_records(day)));
        docs.push(aggregate(
            MAILCHIMP_DOMAIN,
            "quarantine",
            begin,
            &mailchimp_records(day),
        ));
    }
    docs.push(tls_report(today - DAY));
    docs
}

/// One record of a synthetic aggregate report.
struct Rec {
    ip: String,
    count: u64,
    disposition: &'static str,
    /// DKIM signatures: (d=, result).
    dkim: Vec<(String, &'static str)>,
    /// SPF: (domain checked, result).
    spf: (String, &'static str),
    header_from: &'static str,
}

impl Rec {
    /// DMARC's aligned results (relaxed alignment: the same organizational domain).
    fn aligned(&self) -> (bool, bool) {
        let org = |d: &str| d.ends_with(self.header_from);
        (
            self.dkim.iter().any(|(d, r)| *r == "pass" && org(d)),
            self.spf.1 == "pass" && org(&self.spf.0),
        )
    }
}

/// A small deterministic spread, so that the days differ.
fn spread(day: i64, salt: i64, range: u64) -> u64 {
    (day.wrapping_mul(2_654_435_761).wrapping_add(salt * 40_503)).unsigned_abs() % range.max(1)
}

/// tailspin-realty.example (p=none): its Microsoft 365 mail passes SPF aligned (DKIM signing
/// is not enabled, so Microsoft signs with the tenant's onmicrosoft.com domain), and a few
/// spoofed messages fail (every fourth day): ready for p=quarantine.
fn ready_records(day: i64) -> Vec<Rec> {
    let d = READY_DOMAIN;
    let mut v = vec![Rec {
        ip: format!("40.107.22.{}", 10 + spread(day, 1, 4)),
        count: 70 + spread(day, 2, 60),
        disposition: "none",
        dkim: vec![("tailspinrealty.onmicrosoft.com".into(), "pass")],
        spf: (d.into(), "pass"),
        header_from: d,
    }];
    if day % 4 == 0 {
        v.push(Rec {
            ip: format!("203.0.113.{}", 61 + spread(day, 3, 2)),
            count: 1 + spread(day, 4, 3),
            disposition: "none",
            dkim: Vec::new(),
            spf: (d.into(), "fail"),
            header_from: d,
        });
    }
    v
}

/// adatum-clinic.example (p=quarantine): Microsoft 365 mail passes with aligned DKIM and SPF,
/// but a Mailchimp newsletter (twice a week) signs with mcsv.net and bounces to rsgsv.net:
/// a forgotten service failing alignment, which blocks p=reject.
fn mailchimp_records(day: i64) -> Vec<Rec> {
    let d = MAILCHIMP_DOMAIN;
    let mut v = vec![Rec {
        ip: format!("40.107.73.{}", 20 + spread(day, 5, 2)),
        count: 90 + spread(day, 6, 50),
        disposition: "none",
        dkim: vec![(d.into(), "pass")],
        spf: (d.into(), "pass"),
        header_from: d,
    }];
    if day.rem_euclid(7) == 1 || day.rem_euclid(7) == 4 {
        let n = spread(day, 7, 3);
        v.push(Rec {
            ip: format!("198.51.100.{}", 40 + n),
            count: 300 + spread(day, 8, 120),
            disposition: "quarantine",
            dkim: vec![("mcsv.net".into(), "pass")],
            spf: (format!("mail{}.atl11.rsgsv.net", 40 + n), "pass"),
            header_from: d,
        });
    }
    v
}

/// A DMARC aggregate report (RFC 7489 appendix C) for `domain` at `p=policy` covering the day
/// from `begin`, received at the day's end.
fn aggregate(domain: &str, policy: &str, begin: i64, recs: &[Rec]) -> SampleReport {
    let reporter = if (begin / DAY) % 3 == 0 {
        ("Enterprise Outlook", "dmarcreport@microsoft.com")
    } else {
        ("google.com", "noreply-dmarc-support@google.com")
    };
    let report_id = format!("demo-{domain}-{}", begin / DAY);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n  \
         <report_metadata>\n    <org_name>{}</org_name>\n    <email>{}</email>\n    \
         <report_id>{}</report_id>\n    <date_range><begin>{begin}</begin><end>{}</end></date_range>\n  \
         </report_metadata>\n  <policy_published>\n    <domain>{}</domain>\n    \
         <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>{policy}</p>\n    <sp>{policy}</sp>\n    \
         <pct>100</pct>\n  </policy_published>\n",
        escape(reporter.0),
        escape(reporter.1),
        escape(&report_id),
        begin + DAY - 1,
        escape(domain),
    );
    for r in recs {
        let (dkim_ok, spf_ok) = r.aligned();
        let word = |b: bool| if b { "pass" } else { "fail" };
        xml.push_str(&format!(
            "  <record>\n    <row>\n      <source_ip>{}</source_ip>\n      <count>{}</count>\n      \
             <policy_evaluated><disposition>{}</disposition><dkim>{}</dkim><spf>{}</spf></policy_evaluated>\n    \
             </row>\n    <identifiers><header_from>{}</header_from><envelope_from>{}</envelope_from></identifiers>\n    \
             <auth_results>\n",
            r.ip,
            r.count,
            r.disposition,
            word(dkim_ok),
            word(spf_ok),
            escape(r.header_from),
            escape(&r.spf.0),
        ));
        for (d, result) in &r.dkim {
            xml.push_str(&format!(
                "      <dkim><domain>{}</domain><selector>selector1</selector><result>{result}</result></dkim>\n",
                escape(d)
            ));
        }
        xml.push_str(&format!(
            "      <spf><domain>{}</domain><result>{}</result></spf>\n    </auth_results>\n  </record>\n",
            escape(&r.spf.0),
            r.spf.1
        ));
    }
    xml.push_str("</feedback>\n");
    SampleReport {
        file_name: format!("{report_id}.xml"),
        bytes: xml.into_bytes(),
        received_at: begin + DAY,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC) from unix seconds, formatted by the `time` crate. A
/// time it cannot represent (beyond year 9999) is the epoch.
fn rfc3339(unix: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// An SMTP TLS report (RFC 8460) for the day from `begin`: the domain's MTA-STS policy with a
/// few sessions failing to fetch it.
fn tls_report(begin: i64) -> SampleReport {
    let report_id = format!("demo-tls-{TLS_DOMAIN}-{}", begin / DAY);
    let mx = "contosolegal-example.o-v1.mx.microsoft";
    let json = serde_json::json!({
        "organization-name": "Google Inc.",
        "date-range": {
            "start-datetime": rfc3339(begin),
            "end-datetime": rfc3339(begin + DAY - 1),
        },
        "contact-info": "smtp-tls-reporting@google.com",
        "report-id": report_id,
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: enforce", format!("mx: {mx}"), "max_age: 604800"],
                "policy-domain": TLS_DOMAIN,
                "mx-host": [mx],
            },
            "summary": {
                "total-successful-session-count": 1834 + spread(begin / DAY, 9, 200),
                "total-failure-session-count": 6,
            },
            "failure-details": [{
                "result-type": "sts-policy-fetch-error",
                "sending-mta-ip": "2001:db8:4860::25",
                "receiving-mx-hostname": mx,
                "failed-session-count": 6,
            }],
        }],
    });
    SampleReport {
        file_name: format!("{report_id}.json"),
        // Serializing a `Value` cannot fail.
        bytes: serde_json::to_vec_pretty(&json).unwrap_or_default(),
        received_at: begin + DAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use quick_xml::Reader;
    use quick_xml::events::Event;

    #[test]
    fn the_inventory_is_the_sample_fleet() {
        let (_, fleet) = crate::sample_fleet();
        let mut listed: Vec<&str> = SAMPLE_INVENTORY.iter().map(|d| d.name).collect();
        let mut fleet: Vec<&str> = fleet.iter().map(String::as_str).collect();
        listed.sort_unstable();
        fleet.sort_unstable();
        assert_eq!(listed, fleet);
        for d in SAMPLE_INVENTORY {
            assert!(
                SAMPLE_CUSTOMERS.iter().any(|c| c.name == d.customer),
                "{}",
                d.customer
            );
        }
        let parked: Vec<&str> = SAMPLE_INVENTORY
            .iter()
            .filter(|d| d.parked)
            .map(|d| d.name)
            .collect();
        assert_eq!(
            parked,
            ["blue-yonder-airlines.example"],
            "one parked domain"
        );
    }

    /// What an aggregate report says, read with quick-xml: the text of every element by its
    /// path (`feedback/report_metadata/report_id`), in document order.
    fn elements(xml: &[u8]) -> Vec<(String, String)> {
        let mut reader = Reader::from_reader(xml);
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf).expect("well-formed XML") {
                Event::Start(e) => {
                    path.push(e.name().as_ref().to_string());
                    text.clear();
                }
                Event::End(e) => {
                    if !text.trim().is_empty() {
                        out.push((path.join("/"), std::mem::take(&mut text)));
                    }
                    text.clear();
                    assert_eq!(
                        path.pop().as_deref(),
                        Some(e.name().as_ref()),
                        "balanced tags"
                    );
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => {
                    let name: &str = &r;
                    let resolved = quick_xml::escape::resolve_predefined_entity(name);
                    text.push_str(resolved.expect("a predefined entity"));
                }
                Event::DocType(_) => panic!("no DOCTYPE"),
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        assert!(path.is_empty(), "every element closed");
        out
    }

    fn values<'a>(els: &'a [(String, String)], path: &str) -> Vec<&'a str> {
        els.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn aggregate_reports_cover_the_days_before_now_as_promised() {
        // Mid-afternoon of a day: the reports cover the REPORT_DAYS whole days before it.
        let today = 20_413 * DAY;
        let now = today + 15 * 3600 + 7;
        let reports = sample_reports(now);
        assert_eq!(reports.len(), 2 * REPORT_DAYS as usize + 1);
        let (aggregates, tls) = reports.split_at(reports.len() - 1);
        let later = sample_reports(now + 3 * DAY);
        let mut mailchimp_days = 0;
        let mut spoofed_days = 0;
        for (i, r) in aggregates.iter().enumerate() {
            let back = i as i64 / 2 + 1;
            let begin = today - back * DAY;
            let (domain, policy) = if i % 2 == 0 {
                (READY_DOMAIN, "none")
            } else {
                (MAILCHIMP_DOMAIN, "quarantine")
            };
            let els = elements(&r.bytes);
            let one = |p: &str| {
                let v = values(&els, p);
                assert_eq!(v.len(), 1, "{p} in {}", r.file_name);
                v[0].to_string()
            };
            let id = one("feedback/report_metadata/report_id");
            assert_eq!(r.file_name, format!("{id}.xml"));
            assert_eq!(id, format!("demo-{domain}-{}", begin / DAY));
            assert_eq!(
                one("feedback/report_metadata/date_range/begin"),
                begin.to_string()
            );
            assert_eq!(
                one("feedback/report_metadata/date_range/end"),
                (begin + DAY - 1).to_string()
            );
            assert_eq!(r.received_at, begin + DAY);
            assert!(r.received_at <= today, "no report from the future");
            assert_eq!(one("feedback/policy_published/domain"), domain);
            assert_eq!(one("feedback/policy_published/p"), policy);
            let rows = values(&els, "feedback/record/row/count").len();
            assert_eq!(values(&els, "feedback/record/row/source_ip").len(), rows);
            let from = values(&els, "feedback/record/identifiers/header_from");
            assert_eq!(from, vec![domain; rows]);
            let day = begin / DAY;
            if domain == MAILCHIMP_DOMAIN {
                // Microsoft 365 every day; Mailchimp twice a week, failing alignment.
                let twice_a_week = matches!(day.rem_euclid(7), 1 | 4);
                assert_eq!(rows, if twice_a_week { 2 } else { 1 }, "{id}");
                if twice_a_week {
                    mailchimp_days += 1;
                    let dkim = values(&els, "feedback/record/row/policy_evaluated/dkim");
                    assert_eq!(dkim, ["pass", "fail"], "{id}");
                    assert_eq!(
                        values(&els, "feedback/record/auth_results/dkim/domain")[1],
                        "mcsv.net"
                    );
                }
            } else {
                // Aligned SPF every day; a few spoofed messages every fourth day.
                assert_eq!(rows, if day % 4 == 0 { 2 } else { 1 }, "{id}");
                spoofed_days += usize::from(day % 4 == 0);
                let spf = values(&els, "feedback/record/row/policy_evaluated/spf");
                assert_eq!(spf[0], "pass", "{id}");
                assert!(spf[1..].iter().all(|s| *s == "fail"), "{id}");
            }
            // A report for the day is the same bytes whenever it is made: three days later
            // it is six places further back.
            if let Some(later) = later.get(i + 6).filter(|_| i + 6 < aggregates.len()) {
                assert_eq!(later.file_name, r.file_name);
                assert!(later.bytes == r.bytes, "{id} changed");
            }
        }
        assert_eq!(mailchimp_days, 12, "twice a week for six weeks");
        assert!(spoofed_days >= 10, "{spoofed_days}");

        let tls = &tls[0];
        let json: serde_json::Value = serde_json::from_slice(&tls.bytes).expect("JSON");
        let yesterday = today - DAY;
        assert_eq!(tls.received_at, today);
        assert_eq!(
            json["date-range"]["start-datetime"],
            rfc3339(yesterday).as_str()
        );
        assert_eq!(
            json["date-range"]["end-datetime"],
            rfc3339(today - 1).as_str()
        );
        assert_eq!(json["policies"][0]["policy"]["policy-domain"], TLS_DOMAIN);
        assert_eq!(
            tls.file_name,
            format!("{}.json", json["report-id"].as_str().unwrap())
        );
    }

    #[test]
    fn rfc3339_dates_are_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(20_413 * DAY), "2025-11-21T00:00:00Z");
    }
}
