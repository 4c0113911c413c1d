//! The customer report as one self-contained, print-ready HTML page (inline style and charts,
//! the MSP's logo as a `data:` URL, no script): what `/customers/{name}/report` serves and
//! `mailaudit report --customer` writes (and prints to PDF).
//!
//! Print: A4 or Letter (`@page`), each section from a new page, table rows never cut, table
//! headings repeated on each page. Every value is escaped by maud and the page goes through
//! [`finish`], as every portal page.

use maud::{DOCTYPE, Markup, html};

use mailaudit_app::customer_report::{Branding, CustomerReport};
use mailaudit_store::{AREAS, SEVERITIES};

use crate::charts::{Bar, bar_chart, line_chart};
use crate::html::finish;
use crate::pages::fleet::AREA_HEADINGS;

/// The page's Content-Security-Policy (its `<meta>` and the portal's header): its own inline
/// style and images given inline (the logo) only.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The paper the page is laid out for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Paper {
    /// ISO A4 (210 × 297 mm).
    #[default]
    A4,
    /// US Letter (8.5 × 11 in).
    Letter,
}

impl Paper {
    /// The CSS `@page` size.
    fn css(self) -> &'static str {
        match self {
            Paper::A4 => "A4",
            Paper::Letter => "letter",
        }
    }
}

/// What the priorities mean.
const PRIORITIES: [(u8, &str); 4] = [
    (1, "Priority 1: now"),
    (2, "Priority 2: this week"),
    (3, "Priority 3: this month"),
    (4, "Priority 4: when convenient"),
];

/// The report's own style, after the portal's (for the charts and the severity colours).
const REPORT_STYLE: &str = "body.report{max-width:60rem;margin:1.5rem auto;padding:0 1rem}\
body.report h1{word-break:normal;overflow-wrap:break-word}\
header.brand{display:flex;align-items:center;gap:1rem;border-bottom:3px solid #1f2933;padding-bottom:.6rem}\
header.brand img{max-height:3.5rem;max-width:14rem}\
header.brand .msp{font-size:1.3em;font-weight:700}\
p.period{color:#555}\
table{page-break-inside:auto}tr{break-inside:avoid;page-break-inside:avoid}\
thead{display:table-header-group}\
h2,h3{break-after:avoid;page-break-after:avoid}\
svg.chart{break-inside:avoid}\
@media print{body.report{margin:0;max-width:none}section.page{break-before:page;page-break-before:always}a{color:inherit;text-decoration:none}}";

/// `YYYY-MM-DD` of unix seconds.
fn day(t: i64) -> String {
    mailaudit_core::guide::date(t)
}

/// A share as a whole percentage.
fn percent(part: u64, whole: u64) -> String {
    (part * 100 + whole / 2)
        .checked_div(whole)
        .map_or("–".into(), |p| format!("{p}%"))
}

/// The report as a page.
pub fn page(r: &CustomerReport, branding: &Branding, paper: Paper) -> String {
    let msp = branding
        .name
        .as_deref()
        .unwrap_or("Your email security provider");
    let t = &r.totals;
    let audited = r.lines.iter().filter(|l| l.audited_at.is_some()).count() as u64;
    let with_dmarc = audited.saturating_sub(t.without_dmarc);
    let style = format!(
        "{}\n{REPORT_STYLE}\n@page{{size:{};margin:14mm}}",
        crate::pages::CSS,
        paper.css()
    );
    finish(html! {
        (DOCTYPE) "\n"
        html lang="en" {
            head {
                "\n" meta charset="utf-8";
                "\n" meta http-equiv="Content-Security-Policy" content=(PAGE_CSP);
                "\n" meta name="viewport" content="width=device-width, initial-scale=1";
                "\n" title { "Email security report: " (r.customer) }
                "\n" style { (style) }
                "\n"
            }
            "\n"
            body class="report" {
                "\n"
                header class="brand" {
                    @if let Some(logo) = &branding.logo {
                        img src=(logo) alt=(msp);
                    }
                    div class="msp" id="msp" { (msp) }
                }
                "\n"
                h1 id="report-title" { "Email security report for " (r.customer) } "\n"
                p class="period" id="period" {
                    "From " (day(r.since)) " to " (day(r.now)) " · "
                    (r.lines.len()) " domains · prepared by " (msp)
                }
                "\n"
                section id="posture" {
                    h2 { "Posture now" } "\n"
                    ul class="totals" {
                        li {
                            strong id="r-average" {
                                (t.average_score.map_or("–".to_string(), |s| format!("{s}/100")))
                            }
                            " average score"
                        }
                        li { strong id="r-dmarc" { (with_dmarc) " of " (audited) } " domains with DMARC" }
                        li { strong id="r-reject" { (t.dmarc_reject) } " at p=reject (full protection)" }
                        li { strong id="r-blocked" { (t.direct_send_blocked) } " with Direct Send blocked" }
                        li class=[(t.direct_send_open > 0).then_some("bad")] {
                            strong id="r-open" { (t.direct_send_open) } " open to Direct Send spoofing"
                        }
                        li class=[(t.with_critical > 0).then_some("bad")] {
                            strong id="r-critical" { (t.with_critical) } " with a critical finding"
                        }
                        li { strong id="r-checklist" { (t.checklist_done) "/" (t.checklist_total) } " remediation steps done" }
                    }
                    "\n"
                    (areas(r))
                }
                "\n"
                section id="progress" class="page" {
                    h2 { "Progress over the period" } "\n"
                    (progress(r))
                }
                "\n"
                section id="found" class="page" {
                    h2 { "What was found" } "\n"
                    @if r.found.is_empty() {
                        p { "No finding in the latest audits." }
                    } @else {
                        table {
                            thead { tr { th { "Severity" } th { "Finding" } th { "Domains" } } }
                            tbody {
                                @for f in &r.found {
                                    tr data-check=(f.id.as_str()) {
                                        td { span class={ "sev sev-" (f.severity.as_str()) } { (f.severity.as_str()) } }
                                        td { (f.title) br; span class="muted" { (f.id.as_str()) } }
                                        td {
                                            strong { (f.domains.len()) } ": "
                                            (f.domains.iter().take(8).cloned().collect::<Vec<_>>().join(", "))
                                            @if f.domains.len() > 8 { " and " (f.domains.len() - 8) " more" }
                                        }
                                    }
                                    "\n"
                                }
                            }
                        }
                    }
                }
                "\n"
                section id="fixed" class="page" {
                    h2 { "What was fixed" } "\n"
                    @if r.fixed.is_empty() {
                        p { "Nothing was fixed in this period." }
                    } @else {
                        p { strong id="r-fixed" { (r.fixed.len()) } " findings fixed in the period." }
                        table {
                            thead { tr { th { "Date" } th { "Domain" } th { "Finding fixed" } } }
                            tbody {
                                @for f in &r.fixed {
                                    tr {
                                        td class="when" { (day(f.at)) }
                                        td { (f.domain) }
                                        td {
                                            span class={ "sev sev-" (f.finding.severity.as_str()) } { (f.finding.severity.as_str()) }
                                            " " (f.finding.title)
                                        }
                                    }
                                    "\n"
                                }
                            }
                        }
                    }
                }
                "\n"
                section id="remaining" class="page" {
                    h2 { "What remains, in priority order" } "\n"
                    @if r.remaining.is_empty() {
                        p { "Every remediation step is done." }
                    }
                    @for (priority, heading) in PRIORITIES {
                        @let items: Vec<_> = r.remaining.iter().filter(|i| i.priority == priority).collect();
                        @if !items.is_empty() {
                            h3 class={ "p" (priority) } { (heading) " " span class="muted" { "(" (items.len()) ")" } }
                            table {
                                thead { tr { th { "Domain" } th { "Step" } th { "Open since" } } }
                                tbody {
                                    @for i in items {
                                        tr {
                                            td { (i.domain) }
                                            td { (i.title) }
                                            td class="when" {
                                                (day(i.since))
                                                @if i.overdue { " " span class="bad" { "overdue" } }
                                            }
                                        }
                                        "\n"
                                    }
                                }
                            }
                        }
                    }
                }
                "\n"
                section id="domains" class="page" {
                    h2 { "Domains" } "\n"
                    table {
                        thead {
                            tr {
                                th { "Domain" } th { "Score" } th { "DMARC" } th { "Direct Send" }
                                th { "Critical" } th { "High" } th { "Medium" } th { "Low" }
                                th { "Steps done" } th { "Last audited" }
                            }
                        }
                        tbody {
                            @for l in &r.lines {
                                tr data-domain=(l.name) {
                                    td { (l.name) }
                                    td class="n" { @match l.score { Some(s) => (s), None => span class="muted" { "–" } } }
                                    td {
                                        @if l.lacks_dmarc { span class="bad" { "missing" } }
                                        @else if let Some(p) = &l.dmarc_policy { "p=" (p) }
                                        @else { "–" }
                                    }
                                    td { (l.relay.replace('_', " ")) }
                                    @for n in l.counts.iter().take(4) { td class="n" { (n) } }
                                    td class="n" { (l.checklist_done) "/" (l.checklist_total) }
                                    td class="when" { (l.audited_at.map_or("never".to_string(), day)) }
                                }
                                "\n"
                            }
                        }
                    }
                }
                "\n"
                footer {
                    p class="muted" { "Prepared by " (msp) " with mailaudit on " (day(r.now)) "." }
                }
                "\n"
            }
        }
        "\n"
    })
}

/// The areas: how many domains have their worst finding at each severity, as a table and as
/// stacked bars.
fn areas(r: &CustomerReport) -> Markup {
    let audited: Vec<_> = r.lines.iter().filter(|l| l.audited_at.is_some()).collect();
    // counts[area][rank]: domains whose worst finding in the area has that rank (0: none).
    let mut counts = [[0u64; 6]; 7];
    for l in &audited {
        for (a, rank) in l.areas.iter().enumerate() {
            counts[a][usize::from((*rank).min(5))] += 1;
        }
    }
    let bars: Vec<Bar> = AREA_HEADINGS
        .iter()
        .zip(counts)
        .map(|((_, name), c)| Bar {
            label: (*name).to_string(),
            segments: SEVERITIES
                .iter()
                .take(4)
                .enumerate()
                .map(|(i, s)| ((*s).to_string(), c[5 - i] as f64, (*s).to_string()))
                .collect(),
        })
        .collect();
    html! {
        h3 { "By area" } "\n"
        table id="r-areas" {
            thead {
                tr {
                    th { "Area" }
                    th { "No issue" }
                    @for s in SEVERITIES.iter().take(4) { th { (s) } }
                }
            }
            tbody {
                @for (a, (_, name)) in AREA_HEADINGS.iter().enumerate() {
                    tr data-area=(AREAS[a]) {
                        td { (name) }
                        td class="n" { (counts[a][0] + counts[a][1]) }
                        @for i in 0..4 {
                            @let n = counts[a][5 - i];
                            td class={ "n" @if n > 0 { " sev-" (SEVERITIES[i]) } } { (n) }
                        }
                    }
                    "\n"
                }
            }
        }
        "\n"
        (bar_chart("areas", "Domains with a finding, by area and severity", &bars))
    }
}

/// The figures of a run the progress table shows, by row.
type RowValue = fn(&mailaudit_store::TrendPoint) -> String;

/// The progress table's rows.
const PROGRESS_ROWS: [(&str, RowValue); 6] = [
    ("Domains audited", |p| p.domains.to_string()),
    ("Average score", |p| {
        p.average_score.map_or("–".into(), |s| format!("{s:.0}"))
    }),
    ("With DMARC", |p| percent(p.with_dmarc, p.domains)),
    ("At p=reject", |p| percent(p.at_reject, p.domains)),
    ("Direct Send blocked", |p| {
        percent(p.relay_blocked, p.domains)
    }),
    ("With a critical finding", |p| p.with_critical.to_string()),
];

/// The progress chart and the first and last runs of the period in figures.
fn progress(r: &CustomerReport) -> Markup {
    let series = crate::pages::fleet::progress_series(&r.trend);
    let first = r.trend.first();
    let last = r.trend.last();
    html! {
        (line_chart("progress", "Progress over the period", &series, Some(100.0), ""))
        "\n"
        @if let (Some(a), Some(b)) = (first, last) {
            @let b = if r.trend.len() > 1 { Some(b) } else { None };
            table id="r-progress" {
                thead { tr { th { "" } th { (day(a.at)) } @if let Some(b) = b { th { (day(b.at)) } } } }
                tbody {
                    @for (label, value) in PROGRESS_ROWS {
                        tr {
                            td { (label) }
                            td class="n" { (value(a)) }
                            @if let Some(b) = b { td class="n" { (value(b)) } }
                        }
                    }
                }
            }
        } @else {
            p { "No audit in this period." }
        }
    }
}
