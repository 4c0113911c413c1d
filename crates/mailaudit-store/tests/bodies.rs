//! Report bodies stored once while unchanged, and pruning old results down to summaries.

use mailaudit_store::{RunStatus, Store};
use serde_json::{Value, json};

use crate::db::{Kind, TestDb};
use crate::migrations::Pool;

/// A report with the parts pruning drops: evidence and fixes, the SPF include tree, probes.
fn report(domain: &str, score: u8, spf: &str) -> Value {
    json!({
        "domain": domain,
        "score": score,
        "provider": "microsoft365",
        "findings": [{
            "id": "SPF-SOFTFAIL",
            "area": "spf",
            "severity": "high",
            "title": "SPF ends in ~all",
            "detail": "the policy ends in ~all",
            "evidence": spf,
            "fix": format!("{domain}. TXT \"v=spf1 include:spf.protection.outlook.com -all\""),
            "fix_records": [{"host": "@", "type": "TXT", "value": "v=spf1 -all"}]
        }],
        "spf": {"record": spf, "all": "~all", "tree": {"include": ["spf.protection.outlook.com"], "lookups": 1}},
        "relay": {"verdict": "blocked", "probes": [{"host": "mx", "transcript": ["220 hi", "250 ok"]}]},
        "dmarc": {"policy": "none"}
    })
}

/// a.example's report, and b.example's before and after it hardens its SPF.
fn reports() -> [Value; 3] {
    [
        report(
            "a.example",
            60,
            "v=spf1 include:spf.protection.outlook.com ~all",
        ),
        report("b.example", 60, "v=spf1 mx ~all"),
        report("b.example", 80, "v=spf1 mx -all"),
    ]
}

async fn run_of(s: &dyn Store, at: i64, reports: &[&Value]) -> i64 {
    let run = s.begin_run("cli", at).await.unwrap();
    for r in reports {
        let domain = r["domain"].as_str().unwrap();
        s.record_result(run, domain, at, Some(r["score"].as_i64().unwrap()), r)
            .await
            .unwrap();
    }
    s.finish_run(run, RunStatus::Complete, at + 1)
        .await
        .unwrap();
    run
}

pub(crate) async fn unchanged_reports_are_stored_once(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let [a, b1, b2] = reports();
    let first = run_of(&*s, 1_000, &[&a, &b1]).await;
    // Week two: a.example unchanged, b.example changed.
    run_of(&*s, 2_000, &[&a, &b2]).await;
    // Week three: both unchanged; b.example's report equals one already stored under another
    // run, and a.example's is byte-for-byte the first one.
    run_of(&*s, 3_000, &[&a, &b2]).await;
    let pool = Pool::connect(&db).await;
    assert_eq!(pool.count("results").await, 6);
    assert_eq!(
        pool.count("report_bodies").await,
        3,
        "a, b1 and b2 once each"
    );
    pool.close().await;

    // Every result reads back whole, from its body.
    let history = s.history("a.example", 10).await.unwrap();
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|r| r.report == a && !r.summary));
    let history = s.history("b.example", 10).await.unwrap();
    assert_eq!(
        history.iter().map(|r| &r.report).collect::<Vec<_>>(),
        [&b2, &b2, &b1]
    );
    let results = s.run_results(first).await.unwrap();
    assert_eq!(
        results.iter().map(|r| &r.report).collect::<Vec<_>>(),
        [&a, &b1]
    );
    // The findings index is written as before.
    assert_eq!(
        s.domains_with_finding("SPF-SOFTFAIL").await.unwrap(),
        ["a.example", "b.example"]
    );
    s.close().await;
}

pub(crate) async fn prune_keeps_summaries_and_each_latest_result(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let [a, b1, b2] = reports();
    let old = report("old.example", 10, "v=spf1 +all");
    run_of(&*s, 1_000, &[&a, &b1, &old]).await;
    run_of(&*s, 2_000, &[&a, &b2]).await;
    run_of(&*s, 3_000, &[&a, &b2]).await;

    // Everything before 2,500: a.example's and b.example's first two results.
    let pruned = s.prune_results(2_500).await.unwrap();
    assert_eq!(pruned.results, 4, "{pruned:?}");
    // b1 is no longer used by any result; a and b2 still are (by the latest results).
    assert_eq!(pruned.bodies, 1, "{pruned:?}");
    s.compact().await.unwrap();

    let history = s.history("a.example", 10).await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.summary).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert_eq!(history[0].report, a, "the latest stays whole");
    let summary = &history[2].report;
    assert_eq!(summary["summary"], true);
    assert_eq!(summary["score"], 60);
    assert_eq!(summary["domain"], "a.example");
    assert_eq!(summary["dmarc"]["policy"], "none");
    assert_eq!(summary["spf"]["all"], "~all");
    assert_eq!(summary["relay"]["verdict"], "blocked");
    let finding = &summary["findings"][0];
    assert_eq!(
        (&finding["id"], &finding["severity"], &finding["detail"]),
        (
            &json!("SPF-SOFTFAIL"),
            &json!("high"),
            &json!("the policy ends in ~all")
        )
    );
    for dropped in [
        &finding["evidence"],
        &finding["fix"],
        &finding["fix_records"],
    ] {
        assert!(dropped.is_null(), "{summary}");
    }
    assert!(summary["spf"]["tree"].is_null() && summary["relay"]["probes"].is_null());
    // Scores over time stay.
    assert_eq!(
        history.iter().map(|r| r.score).collect::<Vec<_>>(),
        [Some(60), Some(60), Some(60)]
    );

    // old.example was audited only in the first run: its one result is its latest, kept whole.
    let history = s.history("old.example", 10).await.unwrap();
    assert_eq!((history.len(), history[0].summary), (1, false));
    assert_eq!(history[0].report, old);

    let pool = Pool::connect(&db).await;
    // The whole a, b2 and old, and the summaries of a (its two pruned results share one), b1
    // and b2.
    assert_eq!(pool.count("report_bodies").await, 6);
    pool.close().await;

    // Pruning again changes nothing; a result recorded after it is stored as usual.
    let again = s.prune_results(2_500).await.unwrap();
    assert_eq!((again.results, again.bodies), (0, 0));
    run_of(&*s, 4_000, &[&b1]).await;
    let history = s.history("b.example", 10).await.unwrap();
    assert_eq!(history[0].report, b1);
    assert_eq!(history.len(), 4);
    s.close().await;
}
