//! `/domains/{domain}/reports?days=N`: what the domain's stored DMARC aggregate and SMTP TLS
//! reports say over the last N days (default 30): volume, sending sources grouped by service
//! with their alignment, failing and new sources, the readiness verdict for the next DMARC
//! phase with its reasons, the TLS sessions by policy, failure type and sending MTA, and the
//! reports received, each linking to `/reports/{id}/raw`: the file as received, as a download.
//!
//! The analysis is `mailaudit_store::analysis::domain_reports`, the same as `mailaudit reports
//! summary`. The portal does no DNS, so sources are named without reverse DNS (by known
//! service from their DKIM or return-path domain, else by address); the page says so.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Html;
use mailaudit_core::reports::analysis::{DomainAnalysis, whole_percent as pct};
use mailaudit_core::reports::tls_analysis::TlsDomainSummary;
use mailaudit_store::analysis::domain_reports;
use mailaudit_store::now;
use maud::{Markup, html};
use serde::Deserialize;

use super::{AppError, DomainPath, domain_page};
use crate::Portal;
use crate::access::{Caller, FoundDomain};
use crate::html::datetime;

/// Reports listed at the bottom of the page.
const RECENT: i64 = 50;
/// The periods offered, in days.
const PERIODS: [i64; 4] = [7, 14, 30, 90];

/// The query string: `days` (1–3660, default 30).
#[derive(Debug, Deserialize)]
pub struct Period {
    days: Option<String>,
}

/// `GET /domains/{domain}/reports`.
pub async fn page(
    State(p): State<Portal>,
    caller: Caller,
    DomainPath(raw): DomainPath,
    Query(q): Query<Period>,
) -> Result<Html<String>, AppError> {
    let d = p.reads(&caller).domain(&raw).await?;
    let name = d.name.as_str();
    let days = match q.days.as_deref().map(str::parse::<i64>) {
        None => 30,
        Some(Ok(n)) if (1..=3660).contains(&n) => n,
        Some(_) => {
            return Err(AppError::BadRequest(
                "days must be a whole number of days from 1 to 3660".into(),
            ));
        }
    };
    let until = now();
    let since = until - days * 86_400;
    let (dmarc, tls) = domain_reports(d.store(), name, since, until, &HashMap::new()).await?;
    let recent = recent(&d).await?;
    let rows: Vec<_> = d
        .store()
        .aggregate_rows(name, since, until)
        .await?
        .iter()
        .filter_map(|(begin, r)| r.to_analysis_row(*begin, None))
        .collect();
    let daily = mailaudit_core::reports::analysis::daily(name, &rows, since, until, TOP_SOURCES);
    let b = html! {
        h1 id="domain-name" { (name) } "\n"
        p class="periods" {
            "Reports of the last " strong id="period" { (days) " days" } ":\n"
            @for n in PERIODS {
                " "
                a href={ "?days=" (n) } class=[(n == days).then_some("current")] { (n) " days" }
            }
        }
        "\n"
        (dmarc_section(&dmarc))
        (daily_charts(&daily))
        (tls_section(&tls))
        (recent)
    };
    Ok(domain_page(
        name,
        "/reports",
        &format!("{name}: reports"),
        b,
    ))
}

/// The sources drawn one by one in the daily volume chart (the rest as "other").
const TOP_SOURCES: usize = 5;

/// The daily DMARC volume by source and the daily pass rate, as charts.
fn daily_charts(d: &mailaudit_core::reports::analysis::Daily) -> Markup {
    use crate::charts::{Series, line_chart};
    if d.volume.iter().all(|v| *v == 0) {
        return html! {};
    }
    let by_source: Vec<Series> = d
        .sources
        .iter()
        .map(|(name, per)| Series {
            label: name.clone(),
            points: d
                .days
                .iter()
                .zip(per)
                .map(|(t, v)| (*t, *v as f64))
                .collect(),
        })
        .collect();
    let rate = vec![Series {
        label: "% passing DMARC".into(),
        points: d
            .days
            .iter()
            .zip(d.volume.iter().zip(&d.pass))
            .filter(|(_, (v, _))| **v > 0)
            .map(|(t, (v, p))| (*t, *p as f64 * 100.0 / *v as f64))
            .collect(),
    }];
    html! {
        section id="daily" {
            h2 { "Day by day" }
            (line_chart("daily-volume", "Messages per day, by sending source", &by_source, None, ""))
            (line_chart("daily-pass", "Share of messages passing DMARC per day", &rate, Some(100.0), "%"))
        }
        "\n"
    }
}

fn dmarc_section(a: &DomainAnalysis) -> Markup {
    let s = &a.summary;
    let r = &a.readiness;
    let (class, head) = match (r.ready, r.next) {
        (true, Some(next)) => ("ready", format!("Ready to move to p={next}")),
        (false, Some(next)) => ("not-ready", format!("Not ready to move to p={next}")),
        _ => ("not-ready", "No next phase".to_string()),
    };
    html! {
        section id="dmarc" {
            h2 { "DMARC aggregate reports" } "\n"
            dl class="facts" {
                dt { "Messages" } dd id="volume" { (s.volume) }
                dt { "Pass DMARC" } dd id="pass-rate" { (pct(s.dmarc_pass, s.volume)) "%" }
                dt { "Days of reports" } dd { (format!("{:.0}", a.days_covered)) }
                dt { "The period before" } dd { (a.previous_volume) " messages" }
                dt { "Current policy" } dd { "p=" (a.policy) }
            }
            "\n"
            div id="readiness" class={ "verdict " (class) } data-ready=(r.ready) {
                h3 { (head) }
                ul { "\n" @for reason in &r.reasons { li { (reason) } "\n" } }
            }
            "\n"
            @if s.sources.is_empty() {
                p { "No aggregate report covers this period." }
            } @else {
                table class="sources" {
                    thead {
                        tr {
                            th { "Source" } th { "Kind" } th { "IPs" } th { "Messages" }
                            th { "DMARC" } th { "DKIM aligned" } th { "SPF aligned" } th { "Days" }
                            th {}
                        }
                    }
                    tbody {
                        "\n"
                        @for src in &s.sources {
                            @let more = src.ips.len().saturating_sub(5);
                            tr class="source" data-source=(src.key) data-failing=(src.failing) {
                                td { (src.key) }
                                td { @if let Some(k) = src.kind { (format!("{k:?}")) } }
                                td class="ips" {
                                    @for (i, ip) in src.ips.iter().take(5).enumerate() {
                                        @if i > 0 { ", " }
                                        (ip.to_string())
                                    }
                                    @if more > 0 { " and " (more) " more" }
                                }
                                td { (src.messages) }
                                td { (pct(src.dmarc_pass, src.messages)) "%" }
                                td { (pct(src.dkim_aligned, src.messages)) "%" }
                                td { (pct(src.spf_aligned, src.messages)) "%" }
                                td { (src.days_seen) }
                                td {
                                    @if src.failing { span class="sev sev-high" { "failing" } }
                                    @if src.failing && src.new { " " }
                                    @if src.new { span class="sev sev-info" { "new" } }
                                }
                            }
                            "\n"
                        }
                    }
                }
                "\n"
                p class="muted" {
                    "Sources are named by known service (from their DKIM or return-path domain) \
                     or by address: the portal does no DNS. "
                    code { "mailaudit reports summary DOMAIN" }
                    " also names them by reverse DNS."
                }
            }
        }
        "\n"
    }
}

fn tls_section(t: &TlsDomainSummary) -> Markup {
    let total = t.successful.saturating_add(t.failed);
    html! {
        section id="tls" {
            h2 { "SMTP TLS reports" } "\n"
            @if t.reports == 0 {
                p {
                    "No SMTP TLS report covers this period (publish a TLS-RPT record, "
                    code { "_smtp._tls" } ", to receive them)."
                }
            } @else {
                dl class="facts" {
                    dt { "Reports" } dd id="tls-reports" { (t.reports) " from " (t.reporters.join(", ")) }
                    dt { "Sessions" } dd id="tls-sessions" { (total) }
                    dt { "Failed" } dd id="tls-failed" { (t.failed) " (" (pct(t.failed, total)) "%)" }
                }
                "\n"
                table class="tls-policies" {
                    thead { tr { th { "Policy" } th { "Successful" } th { "Failed" } } }
                    tbody {
                        "\n"
                        @for p in &t.policies {
                            tr { td { (p.policy_type) } td { (p.successful) } td { (p.failed) } }
                            "\n"
                        }
                    }
                }
                "\n"
                @if !t.failures.is_empty() {
                    h3 { "Failures by type" }
                    table class="tls-failures" {
                        thead {
                            tr { th { "Type" } th { "Sessions" } th { "What it means, what to do" } }
                        }
                        tbody {
                            "\n"
                            @for f in &t.failures {
                                tr data-type=(f.result_type) {
                                    td { (f.result_type) }
                                    td { (f.sessions) }
                                    td { (f.meaning.unwrap_or("not a result type RFC 8460 defines")) }
                                }
                                "\n"
                            }
                        }
                    }
                    "\n"
                }
                @if !t.sending_mtas.is_empty() {
                    h3 { "Failures by sending MTA" }
                    table class="tls-mtas" {
                        thead {
                            tr {
                                th { "Sending MTA" } th { "Failed sessions" } th { "Types" }
                                th { "Receiving MX" }
                            }
                        }
                        tbody {
                            "\n"
                            @for m in &t.sending_mtas {
                                tr {
                                    td {
                                        @match m.sending_mta_ip {
                                            Some(ip) => (ip.to_string()),
                                            None => "(not reported)",
                                        }
                                    }
                                    td { (m.sessions) }
                                    td { (m.result_types.join(", ")) }
                                    td { (m.receiving_mx.join(", ")) }
                                }
                                "\n"
                            }
                        }
                    }
                    "\n"
                }
                @if t.undetailed_failures > 0 {
                    p class="muted" {
                        (t.undetailed_failures) " failed sessions were reported without details."
                    }
                    "\n"
                }
            }
        }
        "\n"
    }
}

async fn recent(d: &FoundDomain<'_>) -> Result<Markup, AppError> {
    let list = d.store().reports(Some(&d.name), RECENT).await?;
    Ok(html! {
        section id="received" {
            h2 { "Reports received " span class="muted" { "(newest " (RECENT) ")" } } "\n"
            @if list.is_empty() {
                p {
                    "None stored: ingest them with " code { "mailaudit reports ingest" } " or "
                    code { "mailaudit reports fetch" } "."
                }
            } @else {
                table class="received" {
                    thead {
                        tr {
                            th { "Kind" } th { "Reporter" } th { "Period" } th { "Problems" }
                            th { "File" }
                        }
                    }
                    tbody {
                        "\n"
                        @for r in &list {
                            @let kind = r.kind.as_str().replace('_', " ");
                            tr class="report" data-kind=(kind) {
                                td { (kind) }
                                td { (r.reporter) }
                                td { (datetime(r.begin)) " – " (datetime(r.end)) }
                                td { (r.problems.as_array().map_or(0, Vec::len)) }
                                td {
                                    a class="raw" href={ "/reports/" (r.id) "/raw" }
                                        title="Download the file as received" { (r.source) }
                                }
                            }
                            "\n"
                        }
                    }
                }
            }
        }
        "\n"
    })
}

/// `GET /reports/{id}/raw`: a stored report's original file, exactly as it was read, as a
/// download. Anyone can mail a report address, so the bytes are never rendered: they are sent
/// as `application/octet-stream` with `Content-Disposition: attachment` (and the portal's
/// `nosniff` and CSP headers), under a name the portal makes, not the one the sender chose.
pub async fn raw(
    State(p): State<Portal>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::response::Response, AppError> {
    use axum::http::header;
    use axum::response::IntoResponse as _;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::BadRequest("a report id is a positive number".into()))?;
    let bytes = p.reads(&caller).report_raw(id).await?;
    let disposition = format!("attachment; filename=\"report-{id}.{}\"", extension(&bytes));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// A file name extension for a raw report, from its first bytes: `gz`, `zip`, `xml`, `json`,
/// else `eml` (a message).
fn extension(bytes: &[u8]) -> &'static str {
    let start = bytes.trim_ascii_start();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        "gz"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "zip"
    } else if start.starts_with(b"<") || start.starts_with(b"\xef\xbb\xbf<") {
        "xml"
    } else if start.starts_with(b"{") {
        "json"
    } else {
        "eml"
    }
}
