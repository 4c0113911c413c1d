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
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::response::Html;
use mailaudit_core::reports::analysis::{DomainAnalysis, whole_percent as pct};
use mailaudit_core::reports::tls_analysis::TlsDomainSummary;
use mailaudit_store::analysis::domain_reports;
use mailaudit_store::now;
use serde::Deserialize;

use super::{AppError, DomainPath, domain_page, find_domain};
use crate::Portal;
use crate::html::{Esc, datetime};

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
    DomainPath(raw): DomainPath,
    Query(q): Query<Period>,
) -> Result<Html<String>, AppError> {
    let d = find_domain(&p, &raw).await?;
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
    let (dmarc, tls) =
        domain_reports(p.store.as_ref(), name, since, until, &HashMap::new()).await?;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1 id=\"domain-name\">{}</h1>\n<p class=\"periods\">Reports of the last \
         <strong id=\"period\">{days} days</strong>:",
        Esc(name)
    );
    for n in PERIODS {
        let _ = write!(
            b,
            " <a href=\"?days={n}\"{}>{n} days</a>",
            if n == days { " class=\"current\"" } else { "" }
        );
    }
    b.push_str("</p>\n");
    dmarc_section(&mut b, &dmarc);
    tls_section(&mut b, &tls);
    recent(&p, name, &mut b).await?;
    Ok(domain_page(
        name,
        "/reports",
        &format!("{name}: reports"),
        &b,
    ))
}

fn dmarc_section(b: &mut String, a: &DomainAnalysis) {
    let s = &a.summary;
    let _ = writeln!(
        b,
        "<section id=\"dmarc\"><h2>DMARC aggregate reports</h2>\n<dl class=\"facts\">\
         <dt>Messages</dt><dd id=\"volume\">{}</dd><dt>Pass DMARC</dt><dd id=\"pass-rate\">{}%</dd>\
         <dt>Days of reports</dt><dd>{:.0}</dd><dt>The period before</dt><dd>{} messages</dd>\
         <dt>Current policy</dt><dd>p={}</dd></dl>",
        s.volume,
        pct(s.dmarc_pass, s.volume),
        a.days_covered,
        a.previous_volume,
        Esc(&a.policy)
    );
    let r = &a.readiness;
    let (class, head) = match (r.ready, r.next) {
        (true, Some(next)) => ("ready", format!("Ready to move to p={next}")),
        (false, Some(next)) => ("not-ready", format!("Not ready to move to p={next}")),
        _ => ("not-ready", "No next phase".to_string()),
    };
    let _ = writeln!(
        b,
        "<div id=\"readiness\" class=\"verdict {class}\" data-ready=\"{}\"><h3>{}</h3><ul>",
        r.ready,
        Esc(&head)
    );
    for reason in &r.reasons {
        let _ = writeln!(b, "<li>{}</li>", Esc(reason));
    }
    b.push_str("</ul></div>\n");
    if s.sources.is_empty() {
        b.push_str("<p>No aggregate report covers this period.</p></section>\n");
        return;
    }
    b.push_str(
        "<table class=\"sources\"><thead><tr><th>Source</th><th>Kind</th><th>IPs</th>\
         <th>Messages</th><th>DMARC</th><th>DKIM aligned</th><th>SPF aligned</th><th>Days</th>\
         <th></th></tr></thead><tbody>\n",
    );
    for src in &s.sources {
        let mut notes = Vec::new();
        if src.failing {
            notes.push("<span class=\"sev sev-high\">failing</span>");
        }
        if src.new {
            notes.push("<span class=\"sev sev-info\">new</span>");
        }
        let kind = src.kind.map_or(String::new(), |k| format!("{k:?}"));
        let ips: Vec<String> = src.ips.iter().take(5).map(ToString::to_string).collect();
        let more = src.ips.len().saturating_sub(5);
        let _ = writeln!(
            b,
            "<tr class=\"source\" data-source=\"{key}\" data-failing=\"{}\"><td>{key}</td>\
             <td>{}</td><td class=\"ips\">{}{}</td><td>{}</td><td>{}%</td><td>{}%</td><td>{}%</td>\
             <td>{}</td><td>{}</td></tr>",
            src.failing,
            Esc(&kind),
            Esc(&ips.join(", ")),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            src.messages,
            pct(src.dmarc_pass, src.messages),
            pct(src.dkim_aligned, src.messages),
            pct(src.spf_aligned, src.messages),
            src.days_seen,
            notes.join(" "),
            key = Esc(&src.key),
        );
    }
    b.push_str(
        "</tbody></table>\n<p class=\"muted\">Sources are named by known service (from their \
         DKIM or return-path domain) or by address: the portal does no DNS. \
         <code>mailaudit reports summary DOMAIN</code> also names them by reverse DNS.</p>\
         </section>\n",
    );
}

fn tls_section(b: &mut String, t: &TlsDomainSummary) {
    b.push_str("<section id=\"tls\"><h2>SMTP TLS reports</h2>\n");
    if t.reports == 0 {
        b.push_str(
            "<p>No SMTP TLS report covers this period (publish a TLS-RPT record, \
             <code>_smtp._tls</code>, to receive them).</p></section>\n",
        );
        return;
    }
    let total = t.successful.saturating_add(t.failed);
    let _ = writeln!(
        b,
        "<dl class=\"facts\"><dt>Reports</dt><dd id=\"tls-reports\">{} from {}</dd>\
         <dt>Sessions</dt><dd id=\"tls-sessions\">{total}</dd><dt>Failed</dt>\
         <dd id=\"tls-failed\">{} ({}%)</dd></dl>",
        t.reports,
        Esc(&t.reporters.join(", ")),
        t.failed,
        pct(t.failed, total)
    );
    b.push_str(
        "<table class=\"tls-policies\"><thead><tr><th>Policy</th><th>Successful</th>\
         <th>Failed</th></tr></thead><tbody>\n",
    );
    for p in &t.policies {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&p.policy_type),
            p.successful,
            p.failed
        );
    }
    b.push_str("</tbody></table>\n");
    if !t.failures.is_empty() {
        b.push_str(
            "<h3>Failures by type</h3><table class=\"tls-failures\"><thead><tr><th>Type</th>\
             <th>Sessions</th><th>What it means, what to do</th></tr></thead><tbody>\n",
        );
        for f in &t.failures {
            let _ = writeln!(
                b,
                "<tr data-type=\"{ty}\"><td>{ty}</td><td>{}</td><td>{}</td></tr>",
                f.sessions,
                Esc(f.meaning.unwrap_or("not a result type RFC 8460 defines")),
                ty = Esc(&f.result_type),
            );
        }
        b.push_str("</tbody></table>\n");
    }
    if !t.sending_mtas.is_empty() {
        b.push_str(
            "<h3>Failures by sending MTA</h3><table class=\"tls-mtas\"><thead><tr>\
             <th>Sending MTA</th><th>Failed sessions</th><th>Types</th><th>Receiving MX</th>\
             </tr></thead><tbody>\n",
        );
        for m in &t.sending_mtas {
            let ip = m
                .sending_mta_ip
                .map_or_else(|| "(not reported)".to_string(), |ip| ip.to_string());
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                Esc(&ip),
                m.sessions,
                Esc(&m.result_types.join(", ")),
                Esc(&m.receiving_mx.join(", "))
            );
        }
        b.push_str("</tbody></table>\n");
    }
    if t.undetailed_failures > 0 {
        let _ = writeln!(
            b,
            "<p class=\"muted\">{} failed sessions were reported without details.</p>",
            t.undetailed_failures
        );
    }
    b.push_str("</section>\n");
}

async fn recent(p: &Portal, name: &str, b: &mut String) -> Result<(), AppError> {
    let list = p.store.reports(Some(name), RECENT).await?;
    let _ = writeln!(
        b,
        "<section id=\"received\"><h2>Reports received <span class=\"muted\">(newest {RECENT})\
         </span></h2>"
    );
    if list.is_empty() {
        b.push_str(
            "<p>None stored: ingest them with <code>mailaudit reports ingest</code> or \
             <code>mailaudit reports fetch</code>.</p></section>\n",
        );
        return Ok(());
    }
    b.push_str(
        "<table class=\"received\"><thead><tr><th>Kind</th><th>Reporter</th><th>Period</th>\
         <th>Problems</th><th>File</th></tr></thead><tbody>\n",
    );
    for r in &list {
        let problems = r.problems.as_array().map_or(0, Vec::len);
        let _ = writeln!(
            b,
            "<tr class=\"report\" data-kind=\"{kind}\"><td>{kind}</td><td>{}</td><td>{} – {}</td>\
             <td>{problems}</td><td><a class=\"raw\" href=\"/reports/{id}/raw\" \
             title=\"Download the file as received\">{}</a></td></tr>",
            Esc(&r.reporter),
            Esc(&datetime(r.begin)),
            Esc(&datetime(r.end)),
            Esc(&r.source),
            id = r.id,
            kind = Esc(r.kind.replace('_', " ").as_str()),
        );
    }
    b.push_str("</tbody></table></section>\n");
    Ok(())
}

/// `GET /reports/{id}/raw`: a stored report's original file, exactly as it was read, as a
/// download. Anyone can mail a report address, so the bytes are never rendered: they are sent
/// as `application/octet-stream` with `Content-Disposition: attachment` (and the portal's
/// `nosniff` and CSP headers), under a name the portal makes, not the one the sender chose.
pub async fn raw(
    State(p): State<Portal>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::response::Response, AppError> {
    use axum::http::header;
    use axum::response::IntoResponse as _;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::BadRequest("a report id is a positive number".into()))?;
    let bytes = p.store.report_raw(id).await?;
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
