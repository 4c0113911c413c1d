//! The bulk audit driver: many domains, bounded concurrency, results in input order.
//!
//! Input lines are read on a blocking thread into a bounded channel, normalised (trimmed,
//! lower-cased, A-labels), de-duplicated, and audited on the tokio runtime with at most
//! `concurrency` audits in flight. Results leave in input order through a reorder window of at
//! most `window` domains, so memory stays flat however long the input is: a slow domain at the
//! head of the window holds back output (not work) until the window is full.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use mailaudit_core::audit::{AuditOptions, DomainReport, audit_domain, normalize_domain};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::dns::Resolver;
use crate::live::{self, LiveOptions};

/// Options for a bulk run.
#[derive(Clone, Debug)]
pub struct BulkOptions {
    /// Audits in flight at most.
    pub concurrency: usize,
    /// Domains started but not yet written, at most (the reorder window).
    pub window: usize,
    /// Options for each domain's audit.
    pub audit: Arc<AuditOptions>,
    /// Checks beyond DNS (relay test, TLS, MTA-STS policy) run on each report.
    pub live: Arc<LiveOptions>,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            concurrency: 128,
            window: 4096,
            audit: Arc::default(),
            live: Arc::default(),
        }
    }
}

/// The domain in one input line: the first field of a CSV-ish line (separated by `,`, `;` or a
/// tab; surrounding quotes and a byte-order mark removed; a `#` starts a comment). A space
/// separates columns too when what comes before it is a domain name (`contoso.com Contoso
/// Ltd`); otherwise the whole field is the name, so that an invalid one is reported as written
/// (`bad domain!`: "contains a space and '!'", not "bad" as a single label). A header naming
/// the column (`domain`, `domains`, `domain name`) yields nothing.
pub fn first_field(line: &str) -> Option<&str> {
    let line = line.trim_start_matches('\u{feff}').trim();
    let line = line.split('#').next().unwrap_or("").trim();
    let field = if let Some(rest) = line.strip_prefix('"') {
        rest.split('"').next().unwrap_or("")
    } else {
        line.split([',', ';', '\t']).next().unwrap_or("")
    };
    let field = field.trim();
    let field = match field.split_once(' ') {
        Some((head, _)) if normalize_domain(head).is_ok() => head,
        _ => field,
    };
    let header = ["domain", "domains", "domain name", "domain_name"];
    if field.is_empty() || header.iter().any(|h| field.eq_ignore_ascii_case(h)) {
        return None;
    }
    Some(field)
}

/// Audits every domain of `inputs` (raw lines: blank lines and `#` comments are skipped) and
/// returns a channel that yields one report per distinct domain, in input order. Invalid names
/// yield a report with `error` set; the run goes on.
///
/// Must be called inside a tokio runtime.
pub fn audit_stream<I>(
    resolver: Resolver,
    inputs: I,
    opts: BulkOptions,
) -> mpsc::Receiver<DomainReport>
where
    I: IntoIterator<Item = String> + Send + 'static,
    I::IntoIter: Send,
{
    let (line_tx, mut line_rx) = mpsc::channel::<String>(1024);
    tokio::task::spawn_blocking(move || {
        for line in inputs {
            let Some(domain) = first_field(&line) else {
                continue;
            };
            if line_tx.blocking_send(domain.to_string()).is_err() {
                break;
            }
        }
    });

    let (out_tx, out_rx) = mpsc::channel::<DomainReport>(256);
    let concurrency = opts.concurrency.max(1);
    let window = opts.window.max(concurrency);
    tokio::spawn(async move {
        let resolver = Arc::new(resolver);
        let hasher = std::collections::hash_map::RandomState::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut running: JoinSet<DomainReport> = JoinSet::new();
        let mut index_of: HashMap<tokio::task::Id, (usize, String)> = HashMap::new();
        let mut ready: BTreeMap<usize, DomainReport> = BTreeMap::new();
        let (mut next_idx, mut next_emit, mut exhausted) = (0usize, 0usize, false);
        loop {
            while !exhausted && running.len() < concurrency && next_idx - next_emit < window {
                let Some(raw) = line_rx.recv().await else {
                    exhausted = true;
                    break;
                };
                match normalize_domain(&raw) {
                    Err(e) => {
                        ready.insert(next_idx, DomainReport::invalid(&raw, &e));
                        next_idx += 1;
                    }
                    Ok(domain) => {
                        // 8 bytes a domain, not the name: a million-domain run stays small.
                        if !seen.insert(hasher.hash_one(&domain)) {
                            continue; // audited once
                        }
                        let (r, o, d) = (resolver.clone(), opts.audit.clone(), domain.clone());
                        let live = opts.live.clone();
                        let handle = running.spawn(async move {
                            let mut report = audit_domain(&*r, &d, &o).await;
                            live::enrich(&*r, &mut report, &live).await;
                            report
                        });
                        index_of.insert(handle.id(), (next_idx, domain));
                        next_idx += 1;
                    }
                }
            }
            while let Some(report) = ready.remove(&next_emit) {
                if out_tx.send(report).await.is_err() {
                    return;
                }
                next_emit += 1;
            }
            if exhausted && running.is_empty() && ready.is_empty() {
                return;
            }
            if let Some(joined) = running.join_next_with_id().await {
                let (id, report) = match joined {
                    Ok((id, report)) => (id, Some(report)),
                    Err(e) => (e.id(), None),
                };
                if let Some((idx, domain)) = index_of.remove(&id) {
                    let report = report.unwrap_or_else(|| {
                        let err = mailaudit_core::CoreError::InvalidDomain {
                            name: domain.clone(),
                            reason: "internal error while auditing (please report a bug)".into(),
                        };
                        DomainReport::invalid(&domain, &err)
                    });
                    ready.insert(idx, report);
                }
            }
        }
    });
    out_rx
}

#[cfg(test)]
mod tests {
    use super::first_field;

    #[test]
    fn input_lines() {
        for (line, expected) in [
            ("contoso.com", Some("contoso.com")),
            ("  contoso.com  # main tenant", Some("contoso.com")),
            ("contoso.com,Contoso Inc", Some("contoso.com")),
            ("\"contoso.com\",\"Contoso, Inc\"", Some("contoso.com")),
            ("coho.example;Coho Winery", Some("coho.example")),
            ("fabrikam.com\tFabrikam", Some("fabrikam.com")),
            ("fabrikam.com Fabrikam Ltd", Some("fabrikam.com")),
            ("bad domain!", Some("bad domain!")),
            ("exa mple.com, Example", Some("exa mple.com")),
            ("\u{feff}contoso.com\r", Some("contoso.com")),
            ("Domain,Customer", None),
            ("# a comment", None),
            ("", None),
            ("   ", None),
        ] {
            assert_eq!(first_field(line), expected, "{line:?}");
        }
    }
}
