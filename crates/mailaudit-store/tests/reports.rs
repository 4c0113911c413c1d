//! DMARC and TLS reports: ingest, deduplication by key and by content hash, the aggregate rows of a
//! domain and period, raw bytes, and rows deleted with their report.

use mailaudit_store::{AggregateRow, Ingested, NewReport, ReportKind, StoreError};
use serde_json::json;

use crate::db::{Kind, TestDb};

fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn row(ip: &str, count: i64, dkim: &str) -> AggregateRow {
    AggregateRow {
        source_ip: ip.into(),
        count,
        disposition: "none".into(),
        dkim_aligned: dkim.into(),
        spf_aligned: "fail".into(),
        header_from: "contoso.example".into(),
        envelope_from: "bounce.contoso.example".into(),
        dkim_domains: "contoso.example,esp.example".into(),
        dkim_results: "pass,fail".into(),
        spf_domains: "bounce.contoso.example".into(),
        spf_results: "pass".into(),
    }
}

fn report(id: &str, begin: i64, n: u8, rows: Vec<AggregateRow>) -> NewReport {
    NewReport {
        kind: ReportKind::Aggregate,
        reporter: "google.com".into(),
        report_id: id.into(),
        policy_domain: "Contoso.Example.".into(),
        begin,
        end: begin + 86_399,
        content_hash: hash(n),
        source: format!("{id}.xml.gz"),
        raw: vec![0x1f, 0x8b, 0x00, n, 0xff, 0x00].into(),
        parsed: serde_json::value::to_raw_value(&json!({"report_metadata": {"report_id": id}}))
            .unwrap(),
        problems: json!([]),
        rows,
    }
}

async fn exec(db: &TestDb, sql: &str) {
    match db.kind {
        Kind::Sqlite => {
            let path = db.url.strip_prefix("sqlite://").unwrap();
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .foreign_keys(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Kind::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

pub(crate) async fn ingest_and_deduplicate(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    assert!(s.reports(None, 10).await.unwrap().is_empty());
    assert!(matches!(
        s.report_raw(1).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.report_domain(1).await,
        Err(StoreError::NotFound { .. })
    ));

    // Invalid reports write nothing.
    let mut bad = report("bad", 0, 9, vec![]);
    bad.content_hash = "abc".into();
    assert!(matches!(
        s.ingest_report(&bad, 1).await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = report("bad", 0, 9, vec![]);
    bad.content_hash = "z".repeat(64);
    assert!(matches!(
        s.ingest_report(&bad, 1).await,
        Err(StoreError::Invalid(_))
    ));
    // A policy domain that is no domain name (anyone may mail a report address).
    for domain in [
        "<script>alert(1)</script>",
        "<script>.example",
        "contoso..example",
        "-x.example\"onload=\"",
    ] {
        let mut bad = report("bad", 0, 9, vec![]);
        bad.policy_domain = domain.into();
        let outcome = s.ingest_report(&bad, 1).await;
        assert!(
            matches!(&outcome, Err(StoreError::Invalid(m)) if m.contains("domain name")),
            "{domain}: {outcome:?}"
        );
        // Asking about such a name (a hostile inventory entry's page) finds nothing, no error.
        assert_eq!(
            s.reports(Some(domain), 10).await.map(|r| r.len()).ok(),
            Some(0)
        );
        assert_eq!(
            s.aggregate_rows(domain, 0, i64::MAX)
                .await
                .map(|r| r.len())
                .ok(),
            Some(0)
        );
        assert_eq!(
            s.parsed_reports(ReportKind::Aggregate, domain, 0, i64::MAX)
                .await
                .map(|r| r.len())
                .ok(),
            Some(0)
        );
    }
    let mut bad = report("bad", 0, 9, vec![]);
    bad.problems = json!({});
    assert!(matches!(
        s.ingest_report(&bad, 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.reports(None, -1).await,
        Err(StoreError::Invalid(_))
    ));

    let day = 86_400;
    let t0 = 1_700_006_400;
    let first = report(
        "r1",
        t0,
        1,
        vec![row("192.0.2.1", 10, "pass"), row("2001:db8::1", 2, "fail")],
    );
    let id1 = match s.ingest_report(&first, 5_000).await.unwrap() {
        Ingested::New(id) => id,
        d => panic!("{d:?}"),
    };
    // Same key, different content: a duplicate, nothing written.
    let mut same_key = report("r1", t0, 2, vec![row("198.51.100.7", 99, "fail")]);
    same_key.policy_domain = "contoso.example".into();
    assert_eq!(
        s.ingest_report(&same_key, 5_001).await.unwrap(),
        Ingested::Duplicate(id1)
    );
    // Same content under another key (another reporter re-sent it): a duplicate too; the hash is
    // compared case-insensitively.
    let mut same_hash = report(
        "other-id",
        t0 + day,
        1,
        vec![row("198.51.100.8", 1, "pass")],
    );
    same_hash.reporter = "Mail.ru".into();
    same_hash.content_hash = hash(1).to_ascii_uppercase();
    assert_eq!(
        s.ingest_report(&same_hash, 5_002).await.unwrap(),
        Ingested::Duplicate(id1)
    );
    // The same report id for another period, another kind or another domain is new.
    let id2 = s
        .ingest_report(
            &report("r1", t0 + day, 3, vec![row("192.0.2.1", 7, "pass")]),
            5_003,
        )
        .await
        .unwrap();
    let mut tls = report("r1", t0, 4, vec![]);
    tls.kind = ReportKind::SmtpTls;
    tls.problems = json!([{"problem": "missing contact-info"}]);
    let id3 = s.ingest_report(&tls, 5_004).await.unwrap();
    let mut other = report("r1", t0, 5, vec![row("203.0.113.5", 4, "pass")]);
    other.policy_domain = "fabrikam.example".into();
    let id4 = s.ingest_report(&other, 5_005).await.unwrap();
    for i in [id2, id3, id4] {
        assert!(matches!(i, Ingested::New(_)), "{i:?}");
    }

    // Listing: newest period first, then newest ingestion; without raw bytes.
    let all = s.reports(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        [id2.id(), id4.id(), id3.id(), id1]
    );
    let contoso = s.reports(Some("CONTOSO.example"), 10).await.unwrap();
    assert_eq!(
        contoso.iter().map(|r| r.id).collect::<Vec<_>>(),
        [id2.id(), id3.id(), id1]
    );
    assert_eq!(
        s.reports(Some("contoso.example"), 1).await.unwrap().len(),
        1
    );
    assert!(
        s.reports(Some("nobody.example"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let r1 = contoso.iter().find(|r| r.id == id1).unwrap();
    assert_eq!(
        (
            r1.kind.as_str(),
            r1.reporter.as_str(),
            r1.report_id.as_str(),
            r1.policy_domain.as_str(),
            r1.begin,
            r1.end,
            r1.source.as_str(),
            r1.ingested_at,
        ),
        (
            "aggregate",
            "google.com",
            "r1",
            "contoso.example",
            t0,
            t0 + 86_399,
            "r1.xml.gz",
            5_000
        )
    );
    assert_eq!(r1.content_hash, hash(1));
    assert_eq!(r1.problems, json!([]));
    let t = contoso.iter().find(|r| r.id == id3.id()).unwrap();
    assert_eq!(
        (t.kind.as_str(), t.problems[0]["problem"].as_str()),
        ("smtp_tls", Some("missing contact-info"))
    );

    // Who may see a report is decided by the domain it is filed under.
    assert_eq!(s.report_domain(t.id).await.unwrap(), t.policy_domain);
    // Raw bytes round trip exactly, NUL and 0xff included.
    assert_eq!(
        s.report_raw(id1).await.unwrap(),
        [0x1f, 0x8b, 0x00, 1, 0xff, 0x00]
    );
    assert_eq!(
        s.report_raw(id3.id()).await.unwrap(),
        [0x1f, 0x8b, 0x00, 4, 0xff, 0x00]
    );
    let mut big = report("big", t0 + 5 * day, 6, vec![]);
    let big_bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    big.raw = big_bytes.clone().into();
    let big_id = s.ingest_report(&big, 5_006).await.unwrap().id();
    assert_eq!(s.report_raw(big_id).await.unwrap(), big_bytes);
    // Stored compressed (schema version 5): read back as read, whatever the bytes.
    let xml = "<record><row><source_ip>192.0.2.1</source_ip><count>\0\u{ff}</count></row>\n"
        .repeat(5_000)
        .into_bytes();
    let mut packed = report("packed", t0 + 5 * day, 8, vec![]);
    packed.raw = mailaudit_store::RawFile::compress(&xml);
    assert_eq!(packed.raw.encoding(), mailaudit_store::RawEncoding::Zstd);
    assert!(packed.raw.stored().len() * 10 < xml.len());
    let packed_id = s.ingest_report(&packed, 5_008).await.unwrap().id();
    assert_eq!(s.report_raw(packed_id).await.unwrap(), xml);
    // Damaged stored data is an error naming the report, not bytes that were never read.
    let damaged = report("damaged", t0 + 5 * day, 9, vec![]);
    let damaged_id = s.ingest_report(&damaged, 5_009).await.unwrap().id();
    exec(
        &db,
        &format!("UPDATE reports SET raw_encoding = 'zstd' WHERE id = {damaged_id}"),
    )
    .await;
    match s.report_raw(damaged_id).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains(&format!("report {damaged_id}")), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut empty = report("empty", t0 + 6 * day, 7, vec![]);
    empty.raw = Vec::new().into();
    let empty_id = s.ingest_report(&empty, 5_007).await.unwrap().id();
    assert!(s.report_raw(empty_id).await.unwrap().is_empty());

    // Rows by domain and period: since <= begin < until.
    let rows = s
        .aggregate_rows("contoso.example.", t0, t0 + 2 * day)
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|(b, r)| (*b, r.source_ip.as_str(), r.count))
            .collect::<Vec<_>>(),
        [
            (t0, "192.0.2.1", 10),
            (t0, "2001:db8::1", 2),
            (t0 + day, "192.0.2.1", 7)
        ]
    );
    assert_eq!(rows[1].1, row("2001:db8::1", 2, "fail"));
    let rows = s
        .aggregate_rows("contoso.example", t0 + 1, t0 + day + 1)
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|(b, _)| *b).collect::<Vec<_>>(), [t0 + day]);
    assert!(
        s.aggregate_rows("contoso.example", t0, t0)
            .await
            .unwrap()
            .is_empty()
    );
    let fab = s
        .aggregate_rows("fabrikam.example", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(fab.len(), 1);
    assert_eq!(fab[0].1.source_ip, "203.0.113.5");
    // Nothing of the duplicates was written.
    let all_rows = s
        .aggregate_rows("contoso.example", 0, i64::MAX)
        .await
        .unwrap();
    assert!(
        all_rows
            .iter()
            .all(|(_, r)| r.source_ip != "198.51.100.7" && r.source_ip != "198.51.100.8")
    );
    s.close().await;

    // Deleting a report deletes its rows.
    exec(&db, &format!("DELETE FROM reports WHERE id = {id1}")).await;
    let s = db.open().await;
    let rows = s
        .aggregate_rows("contoso.example", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|(b, r)| (*b, r.count)).collect::<Vec<_>>(),
        [(t0 + day, 7)]
    );
    assert!(matches!(
        s.report_raw(id1).await,
        Err(StoreError::NotFound { .. })
    ));
    // Once gone, the same report is new again.
    assert!(matches!(
        s.ingest_report(&first, 6_000).await.unwrap(),
        Ingested::New(id) if id != id1
    ));
    s.close().await;
}

pub(crate) async fn concurrent_ingests_store_once(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = std::sync::Arc::new(db.open().await);
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // Half share the key, half only the hash.
            let mut r = report("same", 1_700_000_000, 1, vec![row("192.0.2.1", 1, "pass")]);
            if i % 2 == 1 {
                r.report_id = format!("alias-{i}");
            }
            s.ingest_report(&r, i64::from(i)).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let new: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, Ingested::New(_)))
        .collect();
    assert_eq!(new.len(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.id() == new[0].id()),
        "{outcomes:?}"
    );
    assert_eq!(s.reports(None, 10).await.unwrap().len(), 1);
    assert_eq!(
        s.aggregate_rows("contoso.example", 0, i64::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
    s.close().await;
}

pub(crate) async fn parsed_reports_by_kind_domain_and_period(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let t0 = 1_700_000_000;
    let tls = |id: &str, begin: i64, n: u8, domain: &str| NewReport {
        kind: ReportKind::SmtpTls,
        policy_domain: domain.into(),
        parsed: serde_json::value::to_raw_value(
            &json!({"report-id": id, "policies": [{"policy": {"policy-domain": domain}}]}),
        )
        .unwrap(),
        rows: Vec::new(),
        ..report(id, begin, n, Vec::new())
    };
    for r in [
        tls("t1", t0, 1, "contoso.example"),
        tls("t2", t0 + 86_400, 2, "contoso.example"),
        tls("t3", t0, 3, "fabrikam.example"),
        report("a1", t0, 4, vec![row("192.0.2.1", 1, "pass")]),
    ] {
        assert!(matches!(
            s.ingest_report(&r, t0).await.unwrap(),
            Ingested::New(_)
        ));
    }
    let got = s
        .parsed_reports(ReportKind::SmtpTls, "Contoso.Example.", t0, t0 + 2 * 86_400)
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|(r, p)| (r.report_id.as_str(), p["report-id"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("t1", "t1"), ("t2", "t2")]
    );
    assert_eq!(got[0].0.kind, "smtp_tls");
    let later = s
        .parsed_reports(ReportKind::SmtpTls, "contoso.example", t0 + 1, i64::MAX)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    let agg = s
        .parsed_reports(ReportKind::Aggregate, "contoso.example", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(agg.len(), 1);
    assert_eq!(agg[0].1["report_metadata"]["report_id"], "a1");
    s.close().await;
}

/// The IMAP mailbox cursor of `reports fetch`: absent, then forward only under one UIDVALIDITY,
/// reset by a new UIDVALIDITY, one row per mailbox identity, bad values refused.
pub(crate) async fn mailbox_cursors(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let inbox = "imaps://dmarc@mail.contoso.example:993/INBOX";
    let other = "imap://dmarc@mail.contoso.example:143/Reports";
    assert_eq!(s.mailbox_cursor(inbox).await.unwrap(), None);
    let c = s
        .advance_mailbox_cursor(inbox, 1_795_880_197, 5, 100)
        .await
        .unwrap();
    assert_eq!(
        c,
        mailaudit_store::MailboxCursor {
            mailbox: inbox.into(),
            uid_validity: 1_795_880_197,
            last_uid: 5,
            updated_at: 100
        }
    );
    // Forward.
    let c = s
        .advance_mailbox_cursor(inbox, 1_795_880_197, 9, 101)
        .await
        .unwrap();
    assert_eq!(c.last_uid, 9);
    // Never back under the same UIDVALIDITY (a slower concurrent fetcher).
    let c = s
        .advance_mailbox_cursor(inbox, 1_795_880_197, 7, 102)
        .await
        .unwrap();
    assert_eq!((c.last_uid, c.updated_at), (9, 102));
    // Another mailbox has its own cursor.
    s.advance_mailbox_cursor(other, 1, 4_294_967_295, 103)
        .await
        .unwrap();
    assert_eq!(s.mailbox_cursor(inbox).await.unwrap().unwrap().last_uid, 9);
    assert_eq!(
        s.mailbox_cursor(other).await.unwrap().unwrap().last_uid,
        4_294_967_295
    );
    // A new UIDVALIDITY replaces the cursor, even with a lower UID.
    let c = s.advance_mailbox_cursor(inbox, 42, 2, 104).await.unwrap();
    assert_eq!((c.uid_validity, c.last_uid), (42, 2));
    assert_eq!(s.mailbox_cursor(inbox).await.unwrap(), Some(c));
    for (mailbox, validity, uid) in [
        ("", 1, 1),
        ("imaps://u@h:993/IN\nBOX", 1, 1),
        ("imaps://u:secret@h:993/INBOX", 1, 1),
        (inbox, 0, 1),
        (inbox, 4_294_967_296, 1),
        (inbox, 1, -1),
        (inbox, 1, 4_294_967_296),
    ] {
        let err = s
            .advance_mailbox_cursor(mailbox, validity, uid, 105)
            .await
            .expect_err(mailbox);
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
    assert_eq!(s.mailbox_cursor(inbox).await.unwrap().unwrap().last_uid, 2);
    s.close().await;
}

/// A report with more rows than one multi-row INSERT takes stores every row, in order.
pub(crate) async fn many_rows_in_one_report(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let rows: Vec<AggregateRow> = (0..1_201)
        .map(|i| row(&format!("2001:db8::{i:x}"), i + 1, "pass"))
        .collect();
    let r = report("big", 1_700_000_000, 9, rows.clone());
    assert!(matches!(
        s.ingest_report(&r, 1).await.unwrap(),
        Ingested::New(_)
    ));
    let stored = s
        .aggregate_rows("contoso.example", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1_201);
    assert!(stored.iter().map(|(_, r)| r).eq(rows.iter()));
    s.close().await;
}

/// `ingest_reports`: one transaction for a batch; a duplicate inside the batch (by key and by
/// hash) is reported as the earlier one, an invalid report gets its error in its place and the
/// others are stored; the outcomes are in input order.
pub(crate) async fn batch_ingest_in_one_transaction(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let first = report("b1", 86_400, 1, vec![row("192.0.2.1", 3, "pass")]);
    let mut invalid = report("b2", 86_400, 2, vec![row("192.0.2.2", 4, "pass")]);
    invalid.policy_domain = "not a domain!".into();
    let same_key = NewReport {
        content_hash: hash(3),
        ..report("b1", 86_400, 1, vec![row("192.0.2.3", 5, "fail")])
    };
    let same_hash = NewReport {
        report_id: "b4".into(),
        ..report("b1", 2 * 86_400, 1, vec![])
    };
    let second = report("b5", 3 * 86_400, 5, vec![row("198.51.100.7", 7, "fail")]);
    let outcomes = s
        .ingest_reports(vec![first, invalid, same_key, same_hash, second], 10)
        .await
        .expect("the batch is stored");
    assert_eq!(outcomes.len(), 5);
    let Ok(Ingested::New(id1)) = outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert!(
        matches!(&outcomes[1], Err(StoreError::Invalid(m)) if m.contains("not a domain")),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[2], Ok(Ingested::Duplicate(id)) if id == id1),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[3], Ok(Ingested::Duplicate(id)) if id == id1),
        "{outcomes:?}"
    );
    let Ok(Ingested::New(id5)) = outcomes[4] else {
        panic!("{outcomes:?}")
    };
    assert_ne!(id1, id5);
    // Two reports stored, with their own rows only (none of the duplicates' or the invalid one's).
    assert_eq!(s.reports(None, 10).await.unwrap().len(), 2);
    let rows = s
        .aggregate_rows("contoso.example", 0, i64::MAX)
        .await
        .unwrap();
    let ips: Vec<&str> = rows.iter().map(|(_, r)| r.source_ip.as_str()).collect();
    assert_eq!(ips, ["192.0.2.1", "198.51.100.7"]);
    // An empty batch is no error and stores nothing.
    assert!(s.ingest_reports(Vec::new(), 11).await.unwrap().is_empty());
    s.close().await;
}
