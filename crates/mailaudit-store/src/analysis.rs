//! Analyses over stored reports: the stored rows and reports of a domain and period, read
//! through any [`Store`], handed to the pure analyses of `mailaudit_core::reports`. Used by
//! `mailaudit reports summary`, the guide, the checklist and the portal alike.

use std::collections::HashMap;
use std::net::IpAddr;

use mailaudit_core::guide::ReportView;
use mailaudit_core::reports::analysis::{self, DomainAnalysis, Readiness, Row};
use mailaudit_core::reports::tls_analysis::{self, TlsDomainSummary};
use mailaudit_core::reports::{TlsReport, parse_tls_report};

use crate::{AggregateRow, Store, StoreError, Time};

/// The period the guide, the checklist and the portal judge DMARC readiness on: 30 days.
pub const READINESS_PERIOD: Time = 30 * 86_400;

/// The current DMARC phase of `domain`: the latest stored audit's policy, `none` when unknown.
pub async fn current_policy(store: &dyn Store, domain: &str) -> Result<String, StoreError> {
    Ok(store
        .latest_result(domain)
        .await?
        .and_then(|r| ReportView::from_json(&r.report).ok())
        .and_then(|v| v.dmarc.policy)
        .unwrap_or_else(|| "none".into()))
}

fn rows(rows: &[(Time, AggregateRow)], ptrs: &HashMap<IpAddr, String>) -> Vec<Row> {
    rows.iter()
        .filter_map(|(begin, r)| {
            let ptr = r
                .source_ip
                .parse()
                .ok()
                .and_then(|ip: IpAddr| ptrs.get(&ip).cloned());
            r.to_analysis_row(*begin, ptr)
        })
        .collect()
}

/// A domain's reports over `since..until`: the DMARC aggregate analysis (sources, readiness
/// for the next phase from [`current_policy`], against the period of the same length before)
/// and the SMTP TLS summary. `ptrs` names the sources (reverse DNS, looked up by the caller).
pub async fn domain_reports(
    store: &dyn Store,
    domain: &str,
    since: Time,
    until: Time,
    ptrs: &HashMap<IpAddr, String>,
) -> Result<(DomainAnalysis, TlsDomainSummary), StoreError> {
    let length = until.saturating_sub(since);
    let current = rows(&store.aggregate_rows(domain, since, until).await?, ptrs);
    let previous = rows(
        &store
            .aggregate_rows(domain, since.saturating_sub(length), since)
            .await?,
        ptrs,
    );
    let policy = current_policy(store, domain).await?;
    let dmarc = analysis::analyse(domain, &current, &previous, since, until, &policy);
    let tls: Vec<TlsReport> = store
        .parsed_reports(crate::ReportKind::SmtpTls, domain, since, until)
        .await?
        .into_iter()
        .filter_map(|(_, parsed)| {
            // The stored form is the parsed report with RFC 8460's keys: it reads back as is.
            let bytes = serde_json::to_vec(&parsed).ok()?;
            parse_tls_report(&bytes).ok().map(|(r, _)| r)
        })
        .collect();
    Ok((dmarc, tls_analysis::summarize_tls(domain, &tls)))
}

/// The aggregate reports' verdict on the domain's next DMARC phase over the
/// [`READINESS_PERIOD`] before `now` (sources named without reverse DNS, by DKIM domain or
/// address); `None` when no aggregate report of the period is stored.
pub async fn stored_readiness(
    store: &dyn Store,
    domain: &str,
    now: Time,
) -> Result<Option<Readiness>, StoreError> {
    let (a, _) = domain_reports(
        store,
        domain,
        now.saturating_sub(READINESS_PERIOD),
        now,
        &HashMap::new(),
    )
    .await?;
    Ok((a.days_covered > 0.0).then_some(a.readiness))
}

/// The addresses `domain`'s aggregate reports of the [`READINESS_PERIOD`] before `now` show
/// passing SPF aligned: what the guide's SPF proposals keep authorising.
pub async fn stored_spf_senders(
    store: &dyn Store,
    domain: &str,
    now: Time,
) -> Result<Vec<mailaudit_core::spf::propose::ReportedSender>, StoreError> {
    let rows = rows(
        &store
            .aggregate_rows(domain, now.saturating_sub(READINESS_PERIOD), now)
            .await?,
        &HashMap::new(),
    );
    Ok(mailaudit_core::spf::propose::passing_senders(&rows))
}
