//! From parsed reports to the store: the core → store mapping ([`new_report`]), one input's
//! reports stored in one transaction ([`ingest_file`]), and the pipeline of `reports ingest`
//! ([`ingest_items`]): files read, opened and parsed on one blocking task per core, queued for
//! the store in input order, bounded in reports and bytes, stored a batch per transaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use mailaudit_core::reports::Mode;
use mailaudit_core::reports::container;
use mailaudit_store::{AggregateRow, Ingested, NewReport, RawFile, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::input::{FileInput, ReadLimits, bounded, open_input, read_input};
use super::{Parsed, parse_doc, parse_kind};
use crate::AppError;

/// Reports read and prepared ahead of the store, at most (and at most [`QUEUE_BYTES`] of them).
const QUEUE_REPORTS: usize = 64;
/// Memory the prepared reports waiting for the store may hold.
const QUEUE_BYTES: u32 = 16 * 1024 * 1024;
/// Reports stored per transaction, at most (and at most [`QUEUE_BYTES`] of them).
const BATCH_REPORTS: usize = 64;
/// Inputs read and prepared ahead of the one the store is waiting for, at most, per worker.
const AHEAD_PER_WORKER: usize = 2;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `2024-09-03T00:00:00Z` or `2024-09-03T02:00:00+02:00` (RFC 3339) → unix seconds. Lenient
/// as reporters are: `t` or a space before the time, seconds and fractions optional, `z`.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, rest) = s.trim().split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let y: i32 = d.next()?.parse().ok()?;
    let m: u8 = d.next()?.parse().ok()?;
    let day: u8 = d.next()?.parse().ok()?;
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, day).ok()?;
    let zone = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let mut t = rest[..zone]
        .split(':')
        .map(|p| p.split('.').next().unwrap_or("0").parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    let offset = match rest.get(zone..zone + 1) {
        Some(sign @ ("+" | "-")) => {
            let mut o = rest[zone + 1..].split(':').map(|p| p.parse::<i64>().ok());
            let secs = o.next()?? * 3600 + o.next().flatten().unwrap_or(0) * 60;
            if sign == "-" { -secs } else { secs }
        }
        _ => 0,
    };
    Some(date.midnight().assume_utc().unix_timestamp() + hh * 3600 + mm * 60 + ss - offset)
}

/// The store's form of one parsed report. An aggregate report's records become its
/// [`AggregateRow`]s and are left out of its stored `parsed` JSON (which keeps the metadata and
/// the published policy): the rows are what the analysis reads, every record stays in the raw
/// file kept with it (`reports parse` of that file gives them all), and storing them twice made
/// the database a third larger and `reports ingest` slower.
pub fn new_report(
    mut parsed: Parsed,
    doc: &container::Extracted,
    raw: &[u8],
    source: &str,
    now: i64,
) -> NewReport {
    let records = match &mut parsed {
        Parsed::Aggregate(r, _) => std::mem::take(&mut r.records),
        _ => Vec::new(),
    };
    let hash = sha256_hex(&doc.bytes);
    let (value, problems) = parsed.json();
    let mut n = NewReport {
        kind: match parsed {
            Parsed::Aggregate(..) => mailaudit_store::ReportKind::Aggregate,
            Parsed::Tls(..) => mailaudit_store::ReportKind::SmtpTls,
            Parsed::Failure(..) => mailaudit_store::ReportKind::Failure,
        },
        reporter: String::new(),
        report_id: hash.clone(),
        policy_domain: String::new(),
        begin: now,
        end: now,
        content_hash: hash,
        source: source.to_string(),
        raw: RawFile::compress(raw),
        parsed: value,
        problems,
        rows: Vec::new(),
    };
    match parsed {
        Parsed::Aggregate(r, _) => {
            n.begin = i64::try_from(r.report_metadata.date_range.begin).unwrap_or(0);
            n.end = i64::try_from(r.report_metadata.date_range.end).unwrap_or(n.begin);
            n.reporter = r.report_metadata.org_name;
            n.report_id = r.report_metadata.report_id;
            n.policy_domain = r.policy_published.domain;
            n.rows = records
                .into_iter()
                .map(|rec| {
                    let join = |v: Vec<String>| v.join(",");
                    let (dkim_domains, dkim_results) = rec
                        .auth_results
                        .dkim
                        .into_iter()
                        .map(|d| (d.domain, d.result))
                        .unzip();
                    let (spf_domains, spf_results) = rec
                        .auth_results
                        .spf
                        .into_iter()
                        .map(|d| (d.domain, d.result))
                        .unzip();
                    AggregateRow {
                        source_ip: rec.row.source_ip.to_string(),
                        count: i64::try_from(rec.row.count).unwrap_or(i64::MAX),
                        disposition: rec.row.policy_evaluated.disposition,
                        dkim_aligned: rec.row.policy_evaluated.dkim,
                        spf_aligned: rec.row.policy_evaluated.spf,
                        header_from: rec.identifiers.header_from,
                        envelope_from: rec.identifiers.envelope_from.unwrap_or_default(),
                        dkim_domains: join(dkim_domains),
                        dkim_results: join(dkim_results),
                        spf_domains: join(spf_domains),
                        spf_results: join(spf_results),
                    }
                })
                .collect();
        }
        Parsed::Tls(r, _) => {
            n.reporter = r.organization_name.clone().unwrap_or_default();
            if let Some(id) = &r.report_id {
                n.report_id = id.clone();
            }
            n.policy_domain = r
                .policies
                .first()
                .and_then(|p| p.policy.policy_domain.clone())
                .unwrap_or_default();
            n.begin = r
                .date_range
                .start_datetime
                .as_deref()
                .and_then(parse_rfc3339)
                .unwrap_or(now);
            n.end = r
                .date_range
                .end_datetime
                .as_deref()
                .and_then(parse_rfc3339)
                .unwrap_or(n.begin);
        }
        Parsed::Failure(r, _) => {
            n.reporter = r.user_agent.clone().unwrap_or_default();
            n.policy_domain = r.reported_domain.clone().unwrap_or_default();
        }
    }
    n
}

/// The store's form of the one report in `bytes` (a file named `name`, recorded as coming from
/// `source`), read as `reports ingest` reads it: for reports made by mailaudit itself (the
/// demo's), so that they are stored exactly like ingested ones.
pub fn stored_form(
    name: &str,
    source: &str,
    bytes: Vec<u8>,
    now: i64,
) -> Result<NewReport, String> {
    let file = open_input(
        source,
        name,
        bytes,
        &ReadLimits::new(50, 0.0),
        Mode::Lenient,
    )?;
    let [(label, doc)] = file.docs.as_slice() else {
        return Err(format!("{source}: not exactly one report"));
    };
    let parsed = parse_kind(doc, Mode::Lenient).map_err(|e| format!("{label}: {e}"))?;
    Ok(new_report(parsed, doc, &file.raw, label, now))
}

/// What ingesting inputs did: reports stored, duplicates skipped, inputs or documents not read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Reports stored.
    pub new: u64,
    /// Duplicates skipped.
    pub dup: u64,
    /// Inputs or documents not read, or refused by the store.
    pub bad: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.new += o.new;
        self.dup += o.dup;
        self.bad += o.bad;
    }
}

/// A document (or input) that was not stored, named by its label (the file, and the document
/// inside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotStored {
    /// It could not be read, opened or parsed.
    Unreadable {
        /// The file (and document).
        label: String,
        /// Why.
        why: String,
    },
    /// The store refused it as invalid.
    Refused {
        /// The file (and document).
        label: String,
        /// The store's reason.
        error: String,
    },
}

impl std::fmt::Display for NotStored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotStored::Unreadable { label, why } => write!(f, "{label}: {why}"),
            NotStored::Refused { label, error } => write!(f, "{label}: not stored: {error}"),
        }
    }
}

/// What storing a batch did: the counts, and what was not stored, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Reports stored, duplicates, documents not stored.
    pub counts: Counts,
    /// The documents not stored, with why (one per `counts.bad`).
    pub not_stored: Vec<NotStored>,
}

/// One document of an input, ready for the store: its report in the store's form, or why it
/// cannot be read. `label` names the file (and the document inside it).
#[derive(Debug)]
pub struct Prepared {
    label: String,
    report: Result<NewReport, String>,
}

impl Prepared {
    /// About how much memory it holds, for the queue's byte bound.
    fn size(&self) -> usize {
        match &self.report {
            Ok(r) => {
                r.raw.stored().len()
                    + r.parsed.get().len()
                    + r.rows.len() * std::mem::size_of::<AggregateRow>() * 2
            }
            Err(e) => e.len(),
        }
        .saturating_add(self.label.len())
    }

    fn unreadable(label: String, why: String) -> Prepared {
        Prepared {
            label,
            report: Err(why),
        }
    }
}

/// Parses each document of one opened input into the store's form (the parsing within the
/// input's time limit).
fn prepare_file(file: &FileInput, mode: Mode, now: i64) -> Vec<Prepared> {
    let skipped = file
        .skipped
        .iter()
        .map(|(label, why)| Prepared::unreadable(label.clone(), why.clone()));
    file.docs
        .iter()
        .map(|(label, doc)| {
            // The raw file is kept with its report; a file holding several (an mbox) keeps
            // each report's own bytes instead of copying the whole file once per report.
            let raw_kept: &[u8] = if file.docs.len() == 1 {
                &file.raw
            } else {
                &doc.bytes
            };
            Prepared {
                label: label.clone(),
                report: parse_doc(doc, mode, file.time)
                    .map(|parsed| new_report(parsed, doc, raw_kept, label, now)),
            }
        })
        .chain(skipped)
        .collect()
}

/// Stores prepared documents in one transaction ([`Store::ingest_reports`]); a document that
/// could not be read, or that the store refuses as invalid, is counted and listed (with its
/// label), and the others are stored. A database error is the caller's.
async fn store_prepared(
    store: &dyn Store,
    batch: Vec<Prepared>,
    now: i64,
) -> Result<Stored, AppError> {
    let mut out = Stored::default();
    let mut labels = Vec::with_capacity(batch.len());
    let mut reports = Vec::with_capacity(batch.len());
    for p in batch {
        match p.report {
            Ok(r) => {
                labels.push(p.label);
                reports.push(r);
            }
            Err(why) => {
                out.not_stored.push(NotStored::Unreadable {
                    label: p.label,
                    why,
                });
                out.counts.bad += 1;
            }
        }
    }
    if reports.is_empty() {
        return Ok(out);
    }
    let outcomes = store.ingest_reports(reports, now).await?;
    for (label, outcome) in labels.into_iter().zip(outcomes) {
        match outcome {
            Ok(Ingested::New(_)) => out.counts.new += 1,
            Ok(Ingested::Duplicate(_)) => out.counts.dup += 1,
            Err(e) => {
                out.not_stored.push(NotStored::Refused {
                    label,
                    error: e.to_string(),
                });
                out.counts.bad += 1;
            }
        }
    }
    Ok(out)
}

/// Parses and stores each report of one opened input (in one transaction); a document that
/// cannot be read is counted and listed (with its label).
pub async fn ingest_file(
    store: &dyn Store,
    file: &FileInput,
    mode: Mode,
    now: i64,
) -> Result<Stored, AppError> {
    store_prepared(store, prepare_file(file, mode, now), now).await
}

/// One file read, opened, parsed and prepared for the store ([`read_input`], [`prepare_file`]),
/// all of it on one thread within the file's time limit: a file past it is one error, named by
/// the file, and the caller goes on. (One bounded thread per file, rather than one to open it
/// and one per report, each with a copy of the report: fewer threads and copies per file.)
fn prepare_path(path: &Path, limits: &ReadLimits, mode: Mode, now: i64) -> Vec<Prepared> {
    let untimed = ReadLimits {
        time: None,
        ..limits.clone()
    };
    let owned = path.to_path_buf();
    let work = move || match read_input(&owned, &untimed, mode) {
        Ok(file) => prepare_file(&file, mode, now),
        Err((label, e)) => vec![Prepared::unreadable(label, e)],
    };
    bounded(limits.time, work)
        .unwrap_or_else(|e| vec![Prepared::unreadable(path.display().to_string(), e)])
}

/// The reading side of `reports ingest`: `items` read, opened, parsed and prepared on blocking
/// tasks, at most `workers` at a time and at most [`AHEAD_PER_WORKER`] per worker ahead of the
/// next one due, and their reports queued in the order of the inputs (so that which of two
/// duplicates is stored, and the order of the messages, do not depend on timing). The queue
/// holds at most [`QUEUE_REPORTS`] reports and `queue_bytes` bytes of them (a report larger
/// than that takes all of it and goes alone): each report comes with its share of the byte
/// budget, given back when the receiver drops it. Ends when every input is queued or the
/// receiver is gone.
fn prepared_in_order(
    items: Vec<Result<PathBuf, (String, String)>>,
    limits: ReadLimits,
    mode: Mode,
    now: i64,
    workers: usize,
    queue_bytes: u32,
) -> (
    mpsc::Receiver<(Prepared, OwnedSemaphorePermit)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(QUEUE_REPORTS);
    let budget = Arc::new(Semaphore::new(queue_bytes as usize));
    let running = Arc::new(Semaphore::new(workers.max(1)));
    let reader = tokio::spawn(async move {
        let mut files = futures::stream::iter(items)
            .map(|item| {
                let (limits, running) = (limits.clone(), running.clone());
                async move {
                    let path = match item {
                        Ok(path) => path,
                        Err((label, why)) => return vec![Prepared::unreadable(label, why)],
                    };
                    let label = path.display().to_string();
                    // One file per worker at a time; the semaphore is never closed.
                    let _worker = running.acquire_owned().await;
                    tokio::task::spawn_blocking(move || prepare_path(&path, &limits, mode, now))
                        .await
                        .unwrap_or_else(|_| {
                            vec![Prepared::unreadable(
                                label,
                                "the reader failed unexpectedly; skipped".to_string(),
                            )]
                        })
                }
            })
            .buffered(workers.max(1) * AHEAD_PER_WORKER);
        while let Some(prepared) = files.next().await {
            for p in prepared {
                let share = u32::try_from(p.size()).map_or(queue_bytes, |n| n.min(queue_bytes));
                let Ok(permit) = budget.clone().acquire_many_owned(share).await else {
                    return;
                };
                if tx.send((p, permit)).await.is_err() {
                    return;
                }
            }
        }
    });
    (rx, reader)
}

/// `reports ingest`: `items` (from [`super::input_items`]) read, opened, parsed and prepared
/// in parallel, while this task stores what is ready in input order, a batch per transaction
/// (all that is waiting, up to 64 reports): reading and storing overlap, and commits are
/// shared. `not_stored` is told of each document not stored, in order, as it happens.
pub async fn ingest_items(
    store: &dyn Store,
    items: Vec<Result<PathBuf, (String, String)>>,
    limits: &ReadLimits,
    mode: Mode,
    now: i64,
    mut not_stored: impl FnMut(&NotStored),
) -> Result<Counts, AppError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 8)
        .min(items.len().max(1));
    let (mut rx, reader) =
        prepared_in_order(items, limits.clone(), mode, now, workers, QUEUE_BYTES);
    let mut counts = Counts::default();
    while let Some((first, mut held)) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_REPORTS {
            match rx.try_recv() {
                Ok((p, permit)) => {
                    held.merge(permit);
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let stored = store_prepared(store, batch, now).await?;
        stored.not_stored.iter().for_each(&mut not_stored);
        counts += stored.counts;
        drop(held);
    }
    reader
        .await
        .map_err(|e| AppError::Pipeline(format!("the reading task failed: {e}")))?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/reports/aggregate/example.net!example.com!1529366400!1529452799.xml"
    );

    /// An aggregate report's records become its rows, in order and whole, and are left out of
    /// the stored JSON, which keeps the metadata and the policy; the raw file is kept as read.
    #[test]
    fn an_aggregate_report_is_stored_as_rows_and_its_header() {
        let bytes = std::fs::read(SAMPLE).unwrap();
        let file = open_input(
            "s.xml",
            "s.xml",
            bytes.clone(),
            &ReadLimits::new(50, 0.0),
            Mode::Lenient,
        )
        .unwrap();
        let (_, doc) = &file.docs[0];
        let parsed = parse_kind(doc, Mode::Lenient).unwrap();
        let Parsed::Aggregate(report, _) = &parsed else {
            panic!("an aggregate report")
        };
        let records = report.records.clone();
        assert!(!records.is_empty());
        let n = new_report(parsed, doc, &file.raw, "s.xml", 1);
        assert_eq!(n.raw.original().unwrap(), bytes);
        assert_eq!(n.rows.len(), records.len());
        for (row, rec) in n.rows.iter().zip(&records) {
            assert_eq!(row.source_ip, rec.row.source_ip.to_string());
            assert_eq!(row.count, i64::try_from(rec.row.count).unwrap());
            assert_eq!(row.header_from, rec.identifiers.header_from);
            let dkim: Vec<&str> = rec
                .auth_results
                .dkim
                .iter()
                .map(|d| d.domain.as_str())
                .collect();
            assert_eq!(row.dkim_domains, dkim.join(","));
            let spf: Vec<&str> = rec
                .auth_results
                .spf
                .iter()
                .map(|d| d.result.as_str())
                .collect();
            assert_eq!(row.spf_results, spf.join(","));
        }
        let json: Value = serde_json::from_str(n.parsed.get()).unwrap();
        assert_eq!(json["records"], json!([]));
        assert_eq!(json["policy_published"]["domain"], "example.com");
        assert_eq!(json["report_metadata"]["report_id"], n.report_id.as_str());
        assert_eq!(
            (n.policy_domain.as_str(), n.kind.as_str()),
            ("example.com", "aggregate")
        );
    }

    /// An SMTP TLS report's date range, in UTC or with an offset, gives its period.
    #[test]
    fn rfc3339_dates_with_offsets() {
        for (text, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-09-03T00:00:00Z", 1_725_321_600),
            ("2024-09-03T02:00:00+02:00", 1_725_321_600),
            ("2024-02-29T23:59:59Z", 1_709_251_199),
            ("2026-11-28T14:03:00.123Z", 1_795_874_580),
            ("2026-11-28t14:03z", 1_795_874_580),
            ("2026-11-28 14:03:00-01:30", 1_795_874_580 + 5400),
        ] {
            assert_eq!(parse_rfc3339(text), Some(secs), "{text}");
        }
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "yesterday",
            "2024-09-03",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn label(p: &Prepared) -> &str {
        &p.label
    }

    /// Inputs prepared on several workers come out in input order, whatever finishes first:
    /// real reports, files that cannot be read and paths that could not be listed mixed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_are_queued_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let sample = std::fs::read(SAMPLE).unwrap();
        let mut items = Vec::new();
        let mut expected = Vec::new();
        for i in 0..40 {
            match i % 3 {
                0 => {
                    let p = dir.path().join(format!("r{i:02}.xml"));
                    std::fs::write(&p, &sample).unwrap();
                    expected.push(p.display().to_string());
                    items.push(Ok(p));
                }
                1 => {
                    let p = dir.path().join(format!("missing{i:02}.xml"));
                    expected.push(p.display().to_string());
                    items.push(Ok(p));
                }
                _ => {
                    expected.push(format!("unlisted{i:02}"));
                    items.push(Err((format!("unlisted{i:02}"), "cannot list".to_string())));
                }
            }
        }
        let limits = ReadLimits::new(50, 5.0);
        let (mut rx, reader) = prepared_in_order(items, limits, Mode::Lenient, 1, 4, QUEUE_BYTES);
        let mut got = Vec::new();
        while let Some((p, _permit)) = rx.recv().await {
            assert_eq!(
                p.report.is_ok(),
                label(&p).ends_with(".xml") && !label(&p).contains("missing")
            );
            got.push(label(&p).to_string());
        }
        reader.await.unwrap();
        assert_eq!(got, expected);
    }

    /// How many reports are queued once the reader has queued `n` (waiting up to 10 s for it,
    /// then a little more for any it should not queue).
    async fn queued_after(
        rx: &mpsc::Receiver<(Prepared, OwnedSemaphorePermit)>,
        n: usize,
    ) -> usize {
        for _ in 0..1000 {
            if rx.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rx.len()
    }

    /// The queue holds at most the byte budget: a report waits until what is queued before it
    /// is stored (its share dropped); one larger than the budget still goes, alone.
    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes() {
        let why = "x".repeat(98);
        let items: Vec<_> = (0..10)
            .map(|i| Err((format!("i{i}"), why.clone())))
            .chain(std::iter::once(Err(("big".to_string(), "y".repeat(1000)))))
            .collect();
        // Each report is 100 bytes: two fit in 250.
        let (mut rx, reader) =
            prepared_in_order(items, ReadLimits::new(50, 0.0), Mode::Lenient, 1, 2, 250);
        assert_eq!(
            queued_after(&rx, 2).await,
            2,
            "two reports of 100 bytes fit in 250"
        );
        let (first, permit) = rx.recv().await.unwrap();
        assert_eq!(label(&first), "i0");
        assert_eq!(
            queued_after(&rx, 1).await,
            1,
            "the first one's share is still held"
        );
        drop(permit);
        assert_eq!(
            queued_after(&rx, 2).await,
            2,
            "its share given back, the next one is queued"
        );
        let mut rest = Vec::new();
        while let Some((p, permit)) = rx.recv().await {
            rest.push(label(&p).to_string());
            drop(permit);
        }
        reader.await.unwrap();
        assert_eq!(rest.len(), 10);
        assert_eq!(rest.last().map(String::as_str), Some("big"));
    }

    /// The queue holds at most 64 reports however small they are, and the reader stops once
    /// the receiver is gone.
    #[tokio::test]
    async fn the_queue_is_bounded_in_reports_and_stops_with_the_receiver() {
        let items: Vec<_> = (0..500)
            .map(|i| Err((format!("i{i}"), "small".to_string())))
            .collect();
        let (rx, reader) = prepared_in_order(
            items,
            ReadLimits::new(50, 0.0),
            Mode::Lenient,
            1,
            2,
            QUEUE_BYTES,
        );
        assert_eq!(queued_after(&rx, QUEUE_REPORTS).await, QUEUE_REPORTS);
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the reader stops")
            .unwrap();
    }
}
