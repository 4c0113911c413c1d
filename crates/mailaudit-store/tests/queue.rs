//! Recording in batches, and the queue of distributed runs: chunks claimed under a lease,
//! recorded only while the lease holds, claimed again once it has expired.

use std::collections::HashSet;
use std::sync::Arc;

use mailaudit_store::{
    ChecklistItem, DmarcRollout, DomainState, ItemState, NewDomain, ResultWrite, RunStatus,
    StateChange, Store, StoreError,
};
use serde_json::{Value, json};

use crate::db::{Kind, TestDb};

fn report(domain: &str, score: i64, finding: &str) -> Value {
    json!({"domain": domain, "score": score, "findings": [{"id": finding, "severity": "high"}]})
}

fn item(domain: &str, key: &str, priority: u8) -> ChecklistItem {
    ChecklistItem {
        domain: domain.into(),
        key: key.into(),
        priority,
        title: format!("Do {key}"),
        state: ItemState::Open,
        by: None,
        at: None,
        updated_at: 100,
    }
}

fn write(domain: &str, score: i64, finding: &str) -> ResultWrite {
    ResultWrite {
        domain: domain.into(),
        audited_at: 100,
        score: Some(score),
        report: report(domain, score, finding),
        rollout: None,
        checklist: None,
        states: Vec::new(),
        alert: None,
    }
}

pub(crate) async fn batch_records_what_single_writes_would(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Acme", "", "").await.unwrap();
    s.add_domain(&NewDomain {
        name: "a.example".into(),
        customer: Some("Acme".into()),
        parked: true,
        ..NewDomain::default()
    })
    .await
    .unwrap();
    s.sync_checklist("b.example", &[item("b.example", "spf-harden", 2)])
        .await
        .unwrap();

    let run = s.begin_run("cli", 100).await.unwrap();
    let mut a = write("A.Example.", 40, "DMARC-MISSING");
    a.rollout = Some(DmarcRollout {
        domain: "a.example".into(),
        phase: "none".into(),
        started_at: 100,
    });
    a.checklist = Some(vec![
        item("a.example", "dmarc-publish", 1),
        item("a.example", "spf-harden", 2),
    ]);
    a.states = vec![StateChange {
        key: "spf-harden".into(),
        state: ItemState::Done,
        by: "mailaudit (verified by audit)".into(),
    }];
    a.alert = Some(json!({"text": "a.example got worse"}));
    let mut b = write("b.example", 90, "SPF-SOFTFAIL");
    b.states = vec![StateChange {
        key: "spf-harden".into(),
        state: ItemState::Done,
        by: "alice".into(),
    }];
    // c.example's report equals none other: three bodies.
    let c = write("c.example", 70, "SPF-SOFTFAIL");
    s.record_batch(run, &[a.clone(), b, c], None, 100)
        .await
        .unwrap();

    let h = s.history("a.example", 10).await.unwrap();
    assert_eq!((h.len(), h[0].score), (1, Some(40)));
    assert_eq!(h[0].report, report("A.Example.", 40, "DMARC-MISSING"));
    assert_eq!(
        s.domains_with_finding("SPF-SOFTFAIL").await.unwrap(),
        ["b.example", "c.example"]
    );
    assert_eq!(
        s.dmarc_rollout("a.example").await.unwrap().unwrap().phase,
        "none"
    );
    let list = s.checklist("a.example").await.unwrap();
    assert_eq!(
        list.iter()
            .map(|i| (i.key.as_str(), i.state))
            .collect::<Vec<_>>(),
        [
            ("dmarc-publish", ItemState::Open),
            ("spf-harden", ItemState::Done)
        ]
    );
    // b.example's list was not synced (None), its stored item's state changed.
    let list = s.checklist("b.example").await.unwrap();
    assert_eq!(
        (list.len(), list[0].state, list[0].by.as_deref()),
        (1, ItemState::Done, Some("alice"))
    );
    let alerts = s.due_alerts(100).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].domain, "a.example");
    assert_eq!(s.run(run).await.unwrap().domains, 3);

    // Recording a domain again in the run replaces its result and its findings.
    let mut again = write("c.example", 75, "MX-MISSING");
    again.audited_at = 101;
    s.record_batch(run, &[again], None, 101).await.unwrap();
    assert_eq!(s.run(run).await.unwrap().domains, 3);
    assert_eq!(
        s.domains_with_finding("SPF-SOFTFAIL").await.unwrap(),
        ["b.example"]
    );
    assert_eq!(
        s.domains_with_finding("MX-MISSING").await.unwrap(),
        ["c.example"]
    );

    // A domain twice in one batch, or a bad phase: refused whole, nothing written.
    let twice = s
        .record_batch(
            run,
            &[write("d.example", 1, "X"), write("D.example", 2, "X")],
            None,
            102,
        )
        .await;
    assert!(matches!(twice, Err(StoreError::Invalid(_))), "{twice:?}");
    let mut bad = write("e.example", 1, "X");
    bad.rollout = Some(DmarcRollout {
        domain: "e.example".into(),
        phase: "maybe".into(),
        started_at: 1,
    });
    let refused = s
        .record_batch(run, &[write("f.example", 1, "X"), bad], None, 102)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    for d in ["d.example", "e.example", "f.example"] {
        assert!(s.history(d, 1).await.unwrap().is_empty(), "{d}");
    }
    s.finish_run(run, RunStatus::Complete, 103).await.unwrap();
    let finished = s
        .record_batch(run, &[write("g.example", 1, "X")], None, 104)
        .await;
    assert!(
        matches!(finished, Err(StoreError::Conflict(_))),
        "{finished:?}"
    );

    // What recording reads: every kind, one query each, duplicates once, history limited.
    let run2 = s.begin_run("cli", 200).await.unwrap();
    s.record_batch(run2, &[write("a.example", 50, "DMARC-MISSING")], None, 200)
        .await
        .unwrap();
    let names = [
        "a.example".to_string(),
        "b.example".to_string(),
        "A.EXAMPLE".to_string(),
        "nothing.example".to_string(),
    ];
    let states = s.domain_states(&names, 1).await.unwrap();
    assert_eq!(
        states.iter().map(|d| d.domain.as_str()).collect::<Vec<_>>(),
        ["a.example", "b.example", "nothing.example"]
    );
    let a = &states[0];
    assert!(a.entry.as_ref().is_some_and(|e| e.parked));
    assert_eq!(a.rollout.as_ref().map(|r| r.phase.as_str()), Some("none"));
    assert_eq!(a.checklist.len(), 2);
    assert_eq!(
        a.history.iter().map(|r| r.score).collect::<Vec<_>>(),
        [Some(50)]
    );
    assert_eq!(
        s.domain_states(&names, 10).await.unwrap()[0].history.len(),
        2
    );
    let b = &states[1];
    assert!(b.entry.is_none() && b.rollout.is_none());
    assert_eq!((b.checklist.len(), b.history.len()), (1, 1));
    assert_eq!(
        states[2],
        DomainState {
            domain: "nothing.example".into(),
            ..Default::default()
        }
    );
}

fn chunks(n: usize, size: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|c| (0..size).map(|i| format!("d{c}-{i}.example")).collect())
        .collect()
}

fn writes_of(domains: &[String]) -> Vec<ResultWrite> {
    domains
        .iter()
        .map(|d| write(d, 50, "SPF-SOFTFAIL"))
        .collect()
}

pub(crate) async fn distributed_run_chunks_and_leases(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    assert!(matches!(
        s.queue_run(&[vec![], vec![]], 1000).await,
        Err(StoreError::Invalid(_))
    ));
    let run = s.queue_run(&chunks(3, 4), 1000).await.unwrap();
    let r = s.run(run).await.unwrap();
    assert_eq!(
        (r.source.as_str(), r.status, r.domains),
        ("distributed", RunStatus::Running, 0)
    );
    assert_eq!(s.open_chunks().await.unwrap(), 3);

    // Two workers take the first two chunks.
    let mut w1 = s.claim_chunk("w1", 1000, 10).await.unwrap().unwrap();
    let w2 = s.claim_chunk("w2", 1000, 10).await.unwrap().unwrap();
    assert_eq!((w1.run_id, w1.chunk, w1.attempts), (run, 0, 1));
    assert_eq!(w1.domains, chunks(3, 4)[0]);
    assert_eq!(w2.chunk, 1);
    assert_ne!(w1.token, w2.token);
    let p = s.run_progress(run, 1000).await.unwrap();
    assert_eq!(
        (
            p.chunks,
            p.chunks_leased,
            p.chunks_done,
            p.domains,
            p.domains_done
        ),
        (3, 2, 0, 12, 0)
    );
    assert_eq!(p.workers, ["w1", "w2"]);

    // w2 records its chunk; w1 renews, then stalls past its lease.
    s.record_batch(run, &writes_of(&w2.domains), Some(&w2), 1001)
        .await
        .unwrap();
    s.renew_lease(&mut w1, 1005, 10).await.unwrap();
    assert_eq!(w1.lease_until, 1015);
    // w3 takes chunk 2 (pending first), then nothing while w1's lease holds.
    let w3 = s.claim_chunk("w3", 1006, 10).await.unwrap().unwrap();
    assert_eq!(w3.chunk, 2);
    assert!(s.claim_chunk("w3", 1006, 10).await.unwrap().is_none());
    // Once it has expired, w3 claims chunk 0 again.
    let p = s.run_progress(run, 1016).await.unwrap();
    assert_eq!((p.chunks_leased, p.chunks_expired), (1, 1));
    let w3b = s.claim_chunk("w3", 1016, 10).await.unwrap().unwrap();
    assert_eq!((w3b.chunk, w3b.attempts), (0, 2));
    // w1 wakes up: its lease is lost, and nothing it writes lands.
    let late = s
        .record_batch(run, &writes_of(&w1.domains), Some(&w1), 1017)
        .await;
    assert!(matches!(late, Err(StoreError::LeaseLost(_))), "{late:?}");
    assert!(s.history(&w1.domains[0], 1).await.unwrap().is_empty());
    assert!(matches!(
        s.renew_lease(&mut w1, 1017, 10).await,
        Err(StoreError::LeaseLost(_))
    ));
    // A lost lease given back changes nothing; w3 gives chunk 2 back, and takes it again.
    s.release_lease(&w1).await.unwrap();
    s.release_lease(&w3).await.unwrap();
    let w3c = s.claim_chunk("w3", 1018, 10).await.unwrap().unwrap();
    assert_eq!((w3c.chunk, w3c.attempts), (2, 2));

    // The run completes with its last chunk, whoever records it.
    s.record_batch(run, &writes_of(&w3b.domains), Some(&w3b), 1019)
        .await
        .unwrap();
    assert_eq!(s.run(run).await.unwrap().status, RunStatus::Running);
    s.record_batch(run, &writes_of(&w3c.domains), Some(&w3c), 1020)
        .await
        .unwrap();
    let p = s.run_progress(run, 1021).await.unwrap();
    assert_eq!(
        (p.run.status, p.run.finished_at, p.run.domains),
        (RunStatus::Complete, Some(1020), 12)
    );
    assert_eq!((p.chunks_done, p.domains_done, p.retried), (3, 12, 2));
    assert!(p.workers.is_empty());
    assert_eq!(s.open_chunks().await.unwrap(), 0);
    assert!(s.claim_chunk("w1", 1022, 10).await.unwrap().is_none());
    // Every domain of the run has exactly one result.
    let results = s.run_results(run).await.unwrap();
    let names: HashSet<&str> = results.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!((results.len(), names.len()), (12, 12));

    // Bad arguments.
    assert!(matches!(
        s.claim_chunk("", 1, 10).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.claim_chunk("w", 1, 0).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.run_progress(999, 1).await,
        Err(StoreError::NotFound { .. })
    ));

    // A queued run a worker holds a chunk of is not stale; one nobody works on is.
    let busy = s.queue_run(&chunks(1, 1), 2000).await.unwrap();
    let idle = s.queue_run(&chunks(1, 1), 2000).await.unwrap();
    let held = s.claim_chunk("w1", 2000, 86_400).await.unwrap().unwrap();
    assert_eq!(held.run_id, busy);
    assert_eq!(s.abort_stale_runs(3000, 3000).await.unwrap(), 1);
    assert_eq!(s.run(busy).await.unwrap().status, RunStatus::Running);
    assert_eq!(s.run(idle).await.unwrap().status, RunStatus::Aborted);
    // An aborted run's chunks are not claimed.
    assert!(s.claim_chunk("w2", 3000, 10).await.unwrap().is_none());
}

pub(crate) async fn concurrent_claims_never_share_a_chunk(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s: Arc<dyn Store> = Arc::from(db.open().await);
    let run = s.queue_run(&chunks(40, 2), 1000).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(lease) = s.claim_chunk(&format!("w{w}"), 1000, 60).await.unwrap() {
                s.record_batch(lease.run_id, &writes_of(&lease.domains), Some(&lease), 1001)
                    .await
                    .unwrap();
                got.push(lease.chunk);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<i64>>());
    let p = s.run_progress(run, 1002).await.unwrap();
    assert_eq!(
        (p.run.status, p.run.domains, p.retried),
        (RunStatus::Complete, 80, 0)
    );
}
