//! The story suite, run against both back ends (see `backends!` in main.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mailaudit_store::{
    Added, ChecklistItem, DmarcRollout, DomainUpdate, ItemState, KeyPerson, NewDomain, RunStatus,
    Schedule, Scope, Store, StoreError, VERIFIED_BY_AUDIT,
};
use serde_json::json;

use crate::db::{Kind, TestDb};

fn report(domain: &str, score: i64, findings: &[(&str, &str)]) -> serde_json::Value {
    json!({
        "domain": domain,
        "provider": "m365",
        "findings": findings.iter().map(|(id, sev)| json!({"id": id, "severity": sev})).collect::<Vec<_>>(),
        "spf": {"record": "v=spf1 include:spf.protection.outlook.com -all", "lookups": 1},
        "score": score,
    })
}

fn domain(name: &str, customer: Option<&str>) -> NewDomain {
    NewDomain {
        name: name.to_string(),
        customer: customer.map(str::to_string),
        ..NewDomain::default()
    }
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound { .. }))
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}

pub(crate) async fn customers_and_domains(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;

    let acme = s
        .add_customer("Acme", "it@acme.example", "VIP")
        .await
        .unwrap();
    assert_eq!(acme.name, "Acme");
    assert!(acme.created_at > 1_600_000_000);
    s.add_customer(" Beta ", "", "").await.unwrap();
    assert!(is_conflict(s.add_customer("Acme", "", "").await));
    assert!(is_invalid(s.add_customer("  ", "", "").await));
    let names: Vec<String> = s
        .customers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Acme", "Beta"]);
    assert_eq!(s.customer("Acme").await.unwrap(), acme);
    let err = s.customer("Nope").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { what } if what.contains("Nope")),
        "{err}"
    );

    // Unknown customer: NotFound, nothing written.
    assert!(is_not_found(
        s.upsert_domain(&domain("x.example", Some("Nope"))).await
    ));
    assert!(is_not_found(s.domain("x.example").await));

    let people = vec![
        KeyPerson {
            name: "Ada Lovelace".into(),
            email: "ada@acme.example".into(),
        },
        KeyPerson {
            name: "Zoë Ünïcode".into(),
            email: "zoe@acme.example".into(),
        },
    ];
    let d = s
        .upsert_domain(&NewDomain {
            name: "Acme.Example.".into(),
            customer: Some("Acme".into()),
            parked: false,
            tenant: Some("acme".into()),
            m365_endpoint: Some("acme-example.mail.protection.outlook.com".into()),
            relay_from: Some("probe@acme.example".into()),
            relay_to: Some("ceo@acme.example".into()),
            key_people: people.clone(),
        })
        .await
        .unwrap();
    assert_eq!(d.name, "acme.example");
    assert_eq!(d.customer.as_deref(), Some("Acme"));
    assert_eq!(d.key_people, people);
    assert_eq!(d.tenant.as_deref(), Some("acme"));
    assert_eq!(s.domain("ACME.example").await.unwrap(), d);

    // Update: same id and added_at, new fields; empty strings become None.
    let d2 = s
        .upsert_domain(&NewDomain {
            name: "acme.example".into(),
            customer: Some("Beta".into()),
            parked: true,
            tenant: Some("".into()),
            key_people: vec![],
            ..NewDomain::default()
        })
        .await
        .unwrap();
    assert_eq!((d2.id, d2.added_at), (d.id, d.added_at));
    assert!(d2.parked);
    assert_eq!(d2.customer.as_deref(), Some("Beta"));
    assert_eq!(d2.tenant, None);
    assert!(d2.key_people.is_empty());

    s.upsert_domain(&domain("parked.example", Some("Beta")))
        .await
        .unwrap();
    s.upsert_domain(&domain("alone.example", None))
        .await
        .unwrap();
    s.upsert_domain(&domain("acme2.example", Some("Acme")))
        .await
        .unwrap();
    let all: Vec<String> = s
        .domains(None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        all,
        [
            "acme.example",
            "acme2.example",
            "alone.example",
            "parked.example"
        ]
    );
    let beta: Vec<String> = s
        .domains(Some("Beta"))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(beta, ["acme.example", "parked.example"]);
    assert!(is_not_found(s.domains(Some("Nope")).await));
    assert!(is_invalid(s.upsert_domain(&domain("  ", None)).await));

    // Remove keeps history.
    let run = s.begin_run("cli", 100).await.unwrap();
    s.record_result(
        run,
        "alone.example",
        101,
        Some(50),
        &report("alone.example", 50, &[]),
    )
    .await
    .unwrap();
    s.finish_run(run, RunStatus::Complete, 102).await.unwrap();
    s.remove_domain("Alone.Example").await.unwrap();
    assert!(is_not_found(s.domain("alone.example").await));
    assert!(is_not_found(s.remove_domain("alone.example").await));
    assert_eq!(s.history("alone.example", 10).await.unwrap().len(), 1);
    // Re-adding it gets a new entry.
    let again = s
        .upsert_domain(&domain("alone.example", None))
        .await
        .unwrap();
    assert_eq!(again.name, "alone.example");
    s.close().await;

    // Everything persists across a reopen.
    let s = db.open().await;
    assert_eq!(s.customers().await.unwrap().len(), 2);
    assert_eq!(s.domain("acme.example").await.unwrap(), d2);
    s.close().await;
}

/// `add_domain` never changes a stored domain; `update_domain` changes exactly the fields it is
/// given (adding key people without dropping any, clearing on request) and writes nothing when
/// nothing changes; `update_customer` likewise for contacts and notes.
pub(crate) async fn inventory_add_never_erases_and_updates_are_partial(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Acme", "it@acme.example", "VIP")
        .await
        .unwrap();
    s.add_customer("Beta", "", "").await.unwrap();
    let ann = KeyPerson {
        name: "Ann Lee".into(),
        email: "ann@acme.example".into(),
    };
    let full = NewDomain {
        name: "Acme.Example.".into(),
        customer: Some("Acme".into()),
        tenant: Some("acme".into()),
        relay_to: Some("alerts@acme.example".into()),
        key_people: vec![ann.clone()],
        ..NewDomain::default()
    };
    let first = match s.add_domain(&full).await.unwrap() {
        Added::New(d) => d,
        other => panic!("new: {other:?}"),
    };
    assert_eq!(first.name, "acme.example");
    assert_eq!(first.tenant.as_deref(), Some("acme"));

    // Re-adding with only a customer: reported as existing, nothing erased.
    let again = s
        .add_domain(&domain("acme.example", Some("Beta")))
        .await
        .unwrap();
    assert_eq!(again, Added::Existing(first.clone()));
    assert_eq!(s.domain("acme.example").await.unwrap(), first);
    // An unknown customer is NotFound, nothing written.
    assert!(is_not_found(
        s.add_domain(&domain("new.example", Some("Nope"))).await
    ));
    assert!(is_not_found(s.domain("new.example").await));

    // One field.
    let u = s
        .update_domain(
            "ACME.example",
            &DomainUpdate {
                tenant: Some(Some(" acmecorp ".into())),
                ..DomainUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(u.changed());
    assert_eq!(u.before, first);
    assert_eq!(u.after.tenant.as_deref(), Some("acmecorp"));
    assert_eq!(
        (
            u.after.id,
            u.after.added_at,
            &u.after.customer,
            &u.after.key_people
        ),
        (first.id, first.added_at, &first.customer, &first.key_people)
    );
    assert_eq!(u.after.relay_to, first.relay_to);

    // Key people are added, deduplicated by address (a known address is renamed in place).
    let bob = KeyPerson {
        name: "Bob Ray".into(),
        email: "bob@acme.example".into(),
    };
    let u = s
        .update_domain(
            "acme.example",
            &DomainUpdate {
                add_key_people: vec![
                    bob.clone(),
                    KeyPerson {
                        name: "Ann Lee-Smith".into(),
                        email: "ANN@acme.example".into(),
                    },
                ],
                customer: Some(Some("Beta".into())),
                parked: Some(true),
                ..DomainUpdate::default()
            },
        )
        .await
        .unwrap();
    let names: Vec<(&str, &str)> = u
        .after
        .key_people
        .iter()
        .map(|p| (p.name.as_str(), p.email.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("Ann Lee-Smith", "ann@acme.example"),
            ("Bob Ray", "bob@acme.example")
        ]
    );
    assert_eq!(u.after.customer.as_deref(), Some("Beta"));
    assert!(u.after.parked);

    // Clearing, and clear + add replaces the list.
    let u = s
        .update_domain(
            "acme.example",
            &DomainUpdate {
                tenant: Some(None),
                relay_to: Some(Some("".into())),
                customer: Some(None),
                clear_key_people: true,
                add_key_people: vec![bob.clone()],
                ..DomainUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.after.tenant, None);
    assert_eq!(u.after.relay_to, None);
    assert_eq!(u.after.customer, None);
    assert_eq!(u.after.key_people, vec![bob.clone()]);
    assert!(u.after.parked, "not given, kept");
    assert_eq!(s.domain("acme.example").await.unwrap(), u.after);

    // Nothing to change: unchanged, and the same as stored.
    let same = s
        .update_domain(
            "acme.example",
            &DomainUpdate {
                parked: Some(true),
                add_key_people: vec![bob.clone()],
                ..DomainUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!same.changed());
    assert_eq!(s.domain("acme.example").await.unwrap(), u.after);

    // Unknown domain or customer: NotFound, nothing written.
    assert!(is_not_found(
        s.update_domain("nope.example", &DomainUpdate::default())
            .await
    ));
    assert!(is_not_found(
        s.update_domain(
            "acme.example",
            &DomainUpdate {
                customer: Some(Some("Nope".into())),
                tenant: Some(Some("other".into())),
                ..DomainUpdate::default()
            },
        )
        .await
    ));
    assert_eq!(s.domain("acme.example").await.unwrap(), u.after);

    // Customers: only the given field changes.
    let c = s
        .update_customer("Acme", None, Some("VIP, 24/7"))
        .await
        .unwrap();
    assert!(c.changed());
    assert_eq!(c.after.contacts, "it@acme.example");
    assert_eq!(c.after.notes, "VIP, 24/7");
    assert_eq!(s.customer("Acme").await.unwrap(), c.after);
    let c2 = s.update_customer("Acme", None, None).await.unwrap();
    assert!(!c2.changed());
    assert!(is_not_found(
        s.update_customer("Nope", Some("x"), None).await
    ));
    s.close().await;

    // Persisted.
    let s = db.open().await;
    assert_eq!(s.domain("acme.example").await.unwrap(), u.after);
    assert_eq!(s.customer("Acme").await.unwrap().notes, "VIP, 24/7");
    s.close().await;
}

pub(crate) async fn runs_and_results(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;

    assert!(is_invalid(s.begin_run("cron-job", 1).await));
    assert!(is_not_found(
        s.record_result(999, "a.example", 1, None, &json!({})).await
    ));
    assert!(is_not_found(
        s.finish_run(999, RunStatus::Complete, 1).await
    ));
    assert!(s.latest_result("a.example").await.unwrap().is_none());

    let r1 = s.begin_run("cli", 1000).await.unwrap();
    s.record_result(
        r1,
        "a.example",
        1001,
        Some(40),
        &report("a.example", 40, &[("DMARC-MISSING", "critical")]),
    )
    .await
    .unwrap();
    s.record_result(r1, "b.example", 1002, None, &report("b.example", 0, &[]))
        .await
        .unwrap();
    s.finish_run(r1, RunStatus::Complete, 1003).await.unwrap();
    assert!(is_conflict(
        s.record_result(r1, "c.example", 1004, None, &json!({}))
            .await
    ));
    assert!(is_conflict(
        s.finish_run(r1, RunStatus::Aborted, 1004).await
    ));
    assert!(is_invalid(s.finish_run(r1, RunStatus::Running, 1004).await));

    let r2 = s.begin_run("schedule", 2000).await.unwrap();
    s.record_result(
        r2,
        "A.EXAMPLE.",
        2001,
        Some(90),
        &report("a.example", 90, &[("SPF-SOFTFAIL", "high")]),
    )
    .await
    .unwrap();
    // Recording the same domain again in one run replaces the result.
    s.record_result(
        r2,
        "a.example",
        2002,
        Some(95),
        &report("a.example", 95, &[("SPF-SOFTFAIL", "high")]),
    )
    .await
    .unwrap();
    s.finish_run(r2, RunStatus::Aborted, 2003).await.unwrap();
    let r3 = s.begin_run("portal", 3000).await.unwrap();

    let h = s.history("a.example", 10).await.unwrap();
    assert_eq!(
        h.iter()
            .map(|r| (r.run_id, r.audited_at, r.score))
            .collect::<Vec<_>>(),
        [(r2, 2002, Some(95)), (r1, 1001, Some(40))]
    );
    assert_eq!(
        h[1].report,
        report("a.example", 40, &[("DMARC-MISSING", "critical")])
    );
    assert_eq!(s.history("a.example", 1).await.unwrap().len(), 1);
    assert!(s.history("a.example", 0).await.unwrap().is_empty());
    assert!(is_invalid(s.history("a.example", -1).await));
    let latest = s.latest_result("a.example").await.unwrap().unwrap();
    assert_eq!((latest.run_id, latest.score), (r2, Some(95)));
    assert_eq!(latest.domain, "a.example");
    let latest_b = s.latest_result("b.example").await.unwrap().unwrap();
    assert_eq!((latest_b.run_id, latest_b.score), (r1, None));

    let runs = s.runs(10).await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| (r.id, r.status, r.domains, r.source.as_str(), r.finished_at))
            .collect::<Vec<_>>(),
        [
            (r3, RunStatus::Running, 0, "portal", None),
            (r2, RunStatus::Aborted, 1, "schedule", Some(2003)),
            (r1, RunStatus::Complete, 2, "cli", Some(1003)),
        ]
    );
    assert_eq!(runs[2].started_at, 1000);
    assert_eq!(s.runs(1).await.unwrap().len(), 1);
    assert_eq!(s.run(r1).await.unwrap(), runs[2]);
    assert!(is_not_found(s.run(999).await));
    let in_r1: Vec<String> = s
        .run_results(r1)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.domain)
        .collect();
    assert_eq!(in_r1, ["a.example", "b.example"]);

    // Findings index follows each domain's latest result.
    assert!(
        s.domains_with_finding("DMARC-MISSING")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.domains_with_finding("SPF-SOFTFAIL").await.unwrap(),
        ["a.example"]
    );
    s.close().await;
}

pub(crate) async fn crash_mid_run_keeps_results(kind: Kind) {
    let db = TestDb::new(kind).await;
    {
        let s = db.open().await;
        let r1 = s.begin_run("cli", 100).await.unwrap();
        for d in ["a.example", "b.example"] {
            s.record_result(r1, d, 101, Some(10), &report(d, 10, &[]))
                .await
                .unwrap();
        }
        s.finish_run(r1, RunStatus::Complete, 102).await.unwrap();
        let r2 = s.begin_run("schedule", 200).await.unwrap();
        s.record_result(
            r2,
            "a.example",
            201,
            Some(80),
            &report("a.example", 80, &[]),
        )
        .await
        .unwrap();
        // The process "dies" here: no finish_run, no close.
        drop(s);
    }
    let s = db.open().await;
    let runs = s.runs(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].status, runs[0].domains), (RunStatus::Running, 1));
    assert_eq!(runs[0].finished_at, None);
    assert_eq!((runs[1].status, runs[1].domains), (RunStatus::Complete, 2));
    // The unfinished run's committed result is the latest; the earlier one is intact.
    let a = s.history("a.example", 10).await.unwrap();
    assert_eq!(
        a.iter().map(|r| r.score).collect::<Vec<_>>(),
        [Some(80), Some(10)]
    );
    let b = s.latest_result("b.example").await.unwrap().unwrap();
    assert_eq!((b.run_id, b.score), (runs[1].id, Some(10)));
    assert_eq!(b.report, report("b.example", 10, &[]));
    // Start-up clean-up: the crashed run becomes aborted, its results stay.
    assert_eq!(s.abort_stale_runs(300, 400).await.unwrap(), 1);
    assert_eq!(s.abort_stale_runs(300, 400).await.unwrap(), 0);
    let run = s.run(runs[0].id).await.unwrap();
    assert_eq!(
        (run.status, run.finished_at, run.domains),
        (RunStatus::Aborted, Some(400), 1)
    );
    assert_eq!(
        s.latest_result("a.example").await.unwrap().unwrap().score,
        Some(80)
    );
    s.close().await;
}

fn item(key: &str, priority: u8, title: &str) -> ChecklistItem {
    ChecklistItem {
        domain: String::new(),
        key: key.to_string(),
        priority,
        title: title.to_string(),
        state: ItemState::Open,
        by: None,
        at: None,
        updated_at: 10,
    }
}

pub(crate) async fn checklist_sync_keeps_state(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    assert!(s.checklist("a.example").await.unwrap().is_empty());
    s.sync_checklist(
        "a.example",
        &[
            item("dkim-enable", 2, "Enable DKIM"),
            item("dmarc-publish", 1, "Publish DMARC"),
            item("direct-send", 1, "Reject Direct Send"),
            item("impersonation", 3, "Impersonation policy"),
        ],
    )
    .await
    .unwrap();
    let keys = |v: &[ChecklistItem]| v.iter().map(|i| i.key.clone()).collect::<Vec<_>>();
    let list = s.checklist("A.example").await.unwrap();
    // Priority first, then the guide's order.
    assert_eq!(
        keys(&list),
        [
            "dmarc-publish",
            "direct-send",
            "dkim-enable",
            "impersonation"
        ]
    );
    assert!(
        list.iter()
            .all(|i| i.domain == "a.example" && i.state == ItemState::Open && i.updated_at == 10)
    );

    let done = s
        .set_item_state("a.example", "dmarc-publish", ItemState::Done, "alice", 50)
        .await
        .unwrap();
    assert_eq!(
        (done.state, done.by.as_deref(), done.at, done.updated_at),
        (ItemState::Done, Some("alice"), Some(50), 50)
    );
    // Ticking it again changes nothing: the first tick is kept.
    let again = s
        .set_item_state(
            "a.example",
            "dmarc-publish",
            ItemState::Done,
            VERIFIED_BY_AUDIT,
            60,
        )
        .await
        .unwrap();
    assert_eq!(again, done);
    s.set_item_state(
        "a.example",
        "dkim-enable",
        ItemState::Done,
        VERIFIED_BY_AUDIT,
        70,
    )
    .await
    .unwrap();
    assert!(is_not_found(
        s.set_item_state("a.example", "nope", ItemState::Done, "bob", 1)
            .await
    ));
    assert!(is_not_found(
        s.set_item_state("b.example", "dmarc-publish", ItemState::Done, "bob", 1)
            .await
    ));
    assert!(is_invalid(
        s.set_item_state("a.example", "dkim-enable", ItemState::Open, " ", 1)
            .await
    ));

    // Re-sync: new title/priority for one, one new, one dropped; states kept.
    let mut retitled = item("dmarc-publish", 2, "Publish DMARC (p=none)");
    retitled.updated_at = 80;
    let mut newer = item("spf-harden", 1, "Harden SPF");
    newer.updated_at = 80;
    let mut same = item("dkim-enable", 2, "Enable DKIM");
    same.updated_at = 80;
    let mut pre_done = item("mta-sts", 3, "MTA-STS");
    pre_done.state = ItemState::Done;
    pre_done.by = Some(VERIFIED_BY_AUDIT.into());
    pre_done.at = Some(80);
    pre_done.updated_at = 80;
    s.sync_checklist("a.example", &[newer, retitled, same, pre_done])
        .await
        .unwrap();
    let list = s.checklist("a.example").await.unwrap();
    assert_eq!(
        keys(&list),
        ["spf-harden", "dmarc-publish", "dkim-enable", "mta-sts"]
    );
    let by_key: BTreeMap<&str, &ChecklistItem> = list.iter().map(|i| (i.key.as_str(), i)).collect();
    let p = by_key["dmarc-publish"];
    assert_eq!(
        (
            p.state,
            p.by.as_deref(),
            p.at,
            p.priority,
            p.title.as_str(),
            p.updated_at
        ),
        (
            ItemState::Done,
            Some("alice"),
            Some(50),
            2,
            "Publish DMARC (p=none)",
            80
        )
    );
    let k = by_key["dkim-enable"];
    assert_eq!(
        (k.state, k.by.as_deref(), k.updated_at),
        (ItemState::Done, Some(VERIFIED_BY_AUDIT), 70)
    );
    assert_eq!(by_key["spf-harden"].state, ItemState::Open);
    assert_eq!(by_key["mta-sts"].state, ItemState::Done);
    assert!(!by_key.contains_key("direct-send"));

    // Reopen on regression.
    let reopened = s
        .set_item_state(
            "a.example",
            "dkim-enable",
            ItemState::Open,
            VERIFIED_BY_AUDIT,
            90,
        )
        .await
        .unwrap();
    assert_eq!((reopened.state, reopened.at), (ItemState::Open, Some(90)));

    assert!(is_invalid(
        s.sync_checklist("a.example", &[item("x", 1, "a"), item("x", 2, "b")])
            .await
    ));
    assert!(is_invalid(
        s.sync_checklist("a.example", &[item(" ", 1, "a")]).await
    ));
    assert_eq!(s.checklist("a.example").await.unwrap().len(), 4);
    s.sync_checklist("a.example", &[]).await.unwrap();
    assert!(s.checklist("a.example").await.unwrap().is_empty());
    s.close().await;
}

pub(crate) async fn dmarc_rollout(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    assert_eq!(s.dmarc_rollout("a.example").await.unwrap(), None);
    let r = DmarcRollout {
        domain: "A.example".into(),
        phase: "none".into(),
        started_at: 1000,
    };
    s.set_dmarc_rollout(&r).await.unwrap();
    assert_eq!(
        s.dmarc_rollout("a.example").await.unwrap(),
        Some(DmarcRollout {
            domain: "a.example".into(),
            ..r.clone()
        })
    );
    s.set_dmarc_rollout(&DmarcRollout {
        domain: "a.example".into(),
        phase: "quarantine".into(),
        started_at: 2000,
    })
    .await
    .unwrap();
    let got = s.dmarc_rollout("a.example").await.unwrap().unwrap();
    assert_eq!((got.phase.as_str(), got.started_at), ("quarantine", 2000));
    assert!(is_invalid(
        s.set_dmarc_rollout(&DmarcRollout {
            domain: "a.example".into(),
            phase: "monitor".into(),
            started_at: 1
        })
        .await
    ));
    assert_eq!(
        s.dmarc_rollout("a.example").await.unwrap().unwrap().phase,
        "quarantine"
    );
    s.close().await;
}

pub(crate) async fn schedules(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Acme", "", "").await.unwrap();
    assert!(is_not_found(
        s.set_schedule(&Schedule {
            scope: Scope::Customer("Nope".into()),
            interval_secs: 60,
            next_run_at: 0,
            last_run_at: None,
            paused: false
        })
        .await
    ));
    assert!(is_invalid(
        s.set_schedule(&Schedule {
            scope: Scope::Fleet,
            interval_secs: 0,
            next_run_at: 0,
            last_run_at: None,
            paused: false
        })
        .await
    ));
    s.set_schedule(&Schedule {
        scope: Scope::Customer("Acme".into()),
        interval_secs: 3600,
        next_run_at: 1000,
        last_run_at: None,
        paused: false,
    })
    .await
    .unwrap();
    s.set_schedule(&Schedule {
        scope: Scope::Fleet,
        interval_secs: 86400,
        next_run_at: 5000,
        last_run_at: None,
        paused: false,
    })
    .await
    .unwrap();
    let all = s.schedules().await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.scope.clone()).collect::<Vec<_>>(),
        [Scope::Fleet, Scope::Customer("Acme".into())]
    );

    // Paused: kept, not claimed; setting it again leaves it paused; resumed, claimed again.
    s.pause_schedule(&Scope::Fleet, true).await.unwrap();
    assert!(
        s.claim_due_schedules(1_000_000)
            .await
            .unwrap()
            .iter()
            .all(|x| x.scope != Scope::Fleet)
    );
    s.set_schedule(&Schedule {
        scope: Scope::Fleet,
        interval_secs: 86400,
        next_run_at: 5000,
        last_run_at: None,
        paused: false,
    })
    .await
    .unwrap();
    assert!(
        s.schedules().await.unwrap()[0].paused,
        "set again, still paused"
    );
    s.pause_schedule(&Scope::Fleet, false).await.unwrap();
    assert!(is_not_found(
        s.pause_schedule(&Scope::Customer("Nope".into()), true)
            .await
    ));
    // Put back as the rest of the story expects it.
    s.set_schedule(&Schedule {
        scope: Scope::Customer("Acme".into()),
        interval_secs: 3600,
        next_run_at: 1000,
        last_run_at: None,
        paused: false,
    })
    .await
    .unwrap();
    assert!(s.claim_due_schedules(999).await.unwrap().is_empty());
    let got = s.claim_due_schedules(1500).await.unwrap();
    assert_eq!(
        got,
        [Schedule {
            scope: Scope::Customer("Acme".into()),
            interval_secs: 3600,
            next_run_at: 4600,
            last_run_at: Some(1500),
            paused: false
        }]
    );
    assert!(s.claim_due_schedules(1500).await.unwrap().is_empty());
    // Far behind: the next run is one interval from now, not a burst of catch-ups.
    let got = s.claim_due_schedules(100_000).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|s| (s.scope.clone(), s.next_run_at))
            .collect::<Vec<_>>(),
        [
            (Scope::Fleet, 100_000 + 86400),
            (Scope::Customer("Acme".into()), 103_600)
        ]
    );
    // Replacing keeps one schedule per scope.
    s.set_schedule(&Schedule {
        scope: Scope::Fleet,
        interval_secs: 60,
        next_run_at: 7,
        last_run_at: None,
        paused: false,
    })
    .await
    .unwrap();
    assert_eq!(s.schedules().await.unwrap().len(), 2);
    s.remove_schedule(&Scope::Fleet).await.unwrap();
    assert!(is_not_found(s.remove_schedule(&Scope::Fleet).await));
    assert_eq!(s.schedules().await.unwrap().len(), 1);
    s.close().await;

    // Two runners (separate connections pools, as two processes) claim at once, many rounds:
    // each due schedule goes to exactly one of them.
    let a: Arc<dyn Store> = Arc::from(db.open().await);
    let b: Arc<dyn Store> = Arc::from(db.open().await);
    for i in 0..10 {
        a.add_customer(&format!("C{i}"), "", "").await.unwrap();
        a.set_schedule(&Schedule {
            scope: Scope::Customer(format!("C{i}")),
            interval_secs: 100,
            next_run_at: 0,
            last_run_at: None,
            paused: false,
        })
        .await
        .unwrap();
    }
    for round in 0..20i64 {
        let now = 100 * round;
        let mut tasks = Vec::new();
        for store in [&a, &b, &a, &b] {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                store.claim_due_schedules(now).await.unwrap()
            }));
        }
        let mut claimed = Vec::new();
        for t in tasks {
            claimed.extend(t.await.unwrap().into_iter().map(|s| s.scope));
        }
        let unique: BTreeSet<String> = claimed.iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(
            unique.len(),
            claimed.len(),
            "round {round}: claimed twice: {claimed:?}"
        );
        // Acme's schedule (next 103_600) is not due in these rounds; the ten are, every round.
        assert_eq!(claimed.len(), 10, "round {round}: {claimed:?}");
    }
    a.close().await;
    b.close().await;
}

pub(crate) async fn alerts_outbox(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let body = json!({"text": "a.example regressed: DMARC-MISSING", "n": 1});
    let a1 = s.enqueue_alert("a.example", &body, 100).await.unwrap();
    let a2 = s
        .enqueue_alert("b.example", &json!({"n": 2}), 101)
        .await
        .unwrap();
    let a3 = s
        .enqueue_alert("c.example", &json!({"n": 3}), 200)
        .await
        .unwrap();
    assert!(s.due_alerts(99).await.unwrap().is_empty());
    let due = s.due_alerts(150).await.unwrap();
    assert_eq!(due.iter().map(|a| a.id).collect::<Vec<_>>(), [a1, a2]);
    assert_eq!(
        (
            due[0].payload.clone(),
            due[0].attempts,
            due[0].created_at,
            due[0].domain.as_str()
        ),
        (body.clone(), 0, 100, "a.example")
    );

    s.alert_delivered(a1, 160).await.unwrap();
    // Failed: retried later with backoff.
    s.alert_failed(a2, "HTTP 503", 160 + 60).await.unwrap();
    assert_eq!(
        s.due_alerts(200)
            .await
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        [a3]
    );
    let due = s.due_alerts(220).await.unwrap();
    assert_eq!(due.iter().map(|a| a.id).collect::<Vec<_>>(), [a3, a2]);
    let retry = &due[1];
    assert_eq!(
        (
            retry.attempts,
            retry.last_error.as_deref(),
            retry.next_attempt_at
        ),
        (1, Some("HTTP 503"), 220)
    );
    s.alert_failed(a2, "timeout", 220 + 120).await.unwrap();
    s.alert_delivered(a2, 400).await.unwrap();
    // Delivering twice keeps the first delivery; failing a delivered alert is a conflict.
    s.alert_delivered(a2, 500).await.unwrap();
    assert!(is_conflict(s.alert_failed(a2, "late", 600).await));
    assert!(is_not_found(s.alert_delivered(999, 1).await));
    assert!(is_not_found(s.alert_failed(999, "x", 1).await));
    assert_eq!(
        s.due_alerts(10_000)
            .await
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        [a3]
    );

    // Leased claims: two senders never take the same alert.
    for i in 0..30 {
        s.enqueue_alert(&format!("d{i}.example"), &json!({"i": i}), 1000)
            .await
            .unwrap();
    }
    let s: Arc<dyn Store> = Arc::from(s);
    let other: Arc<dyn Store> = Arc::from(db.open().await);
    let mut tasks = Vec::new();
    for store in [&s, &other, &s, &other] {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            store.claim_due_alerts(2000, 300).await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        for a in t.await.unwrap() {
            assert_eq!(a.next_attempt_at, 2300);
            ids.push(a.id);
        }
    }
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an alert was claimed twice");
    assert_eq!(ids.len(), 31, "30 new alerts and a3");
    assert!(s.due_alerts(2299).await.unwrap().is_empty());
    assert_eq!(s.due_alerts(2300).await.unwrap().len(), 31);
    assert!(is_invalid(s.claim_due_alerts(1, 0).await));
    s.close().await;
    other.close().await;
}

pub(crate) async fn concurrent_writers(kind: Kind) {
    const TASKS: i64 = 8;
    const PER_TASK: i64 = 50;
    let db = TestDb::new(kind).await;
    // Two stores on one database, as the scheduler and the portal in two processes.
    let stores: Vec<Arc<dyn Store>> = vec![Arc::from(db.open().await), Arc::from(db.open().await)];
    stores[0].add_customer("Acme", "", "").await.unwrap();
    for i in 0..PER_TASK {
        stores[0]
            .upsert_domain(&domain(&format!("d{i}.example"), Some("Acme")))
            .await
            .unwrap();
    }
    stores[0]
        .sync_checklist(
            "d0.example",
            &(0..TASKS)
                .map(|t| item(&format!("k{t}"), 1, "x"))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&stores[usize::try_from(t).unwrap() % stores.len()]);
        tasks.push(tokio::spawn(async move {
            let run = store
                .begin_run(if t % 2 == 0 { "schedule" } else { "cli" }, 1000 + t)
                .await
                .unwrap();
            for i in 0..PER_TASK {
                let d = format!("d{i}.example");
                let score = t * 1000 + i;
                store
                    .record_result(
                        run,
                        &d,
                        2000 + t * PER_TASK + i,
                        Some(score),
                        &report(&d, score, &[("SPF-SOFTFAIL", "high")]),
                    )
                    .await
                    .unwrap();
                if i % 10 == 0 {
                    // Interleave other writes on shared rows.
                    store
                        .upsert_domain(&NewDomain {
                            parked: t % 2 == 0,
                            ..domain(&d, Some("Acme"))
                        })
                        .await
                        .unwrap();
                    store
                        .set_item_state("d0.example", &format!("k{t}"), ItemState::Done, "w", i)
                        .await
                        .unwrap();
                    store
                        .enqueue_alert(&d, &json!({"t": t, "i": i}), i)
                        .await
                        .unwrap();
                }
            }
            store
                .finish_run(run, RunStatus::Complete, 9000)
                .await
                .unwrap();
            run
        }));
    }
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.unwrap());
    }
    let s = &stores[0];
    let listed = s.runs(100).await.unwrap();
    assert_eq!(listed.len(), usize::try_from(TASKS).unwrap());
    for r in &listed {
        assert_eq!((r.status, r.domains), (RunStatus::Complete, PER_TASK));
        assert_eq!(s.run_results(r.id).await.unwrap().len(), 50);
    }
    for i in 0..PER_TASK {
        let d = format!("d{i}.example");
        let h = s.history(&d, 100).await.unwrap();
        assert_eq!(h.len(), usize::try_from(TASKS).unwrap(), "{d}");
        for r in &h {
            // Every stored row is whole: its report matches its indexed columns.
            assert_eq!(r.report["score"].as_i64(), r.score, "{d}");
            assert_eq!(r.report["domain"], json!(d));
        }
        let latest = s.latest_result(&d).await.unwrap().unwrap();
        assert_eq!(latest.audited_at, 2000 + (TASKS - 1) * PER_TASK + i);
    }
    assert_eq!(s.domains(Some("Acme")).await.unwrap().len(), 50);
    assert!(
        s.checklist("d0.example")
            .await
            .unwrap()
            .iter()
            .all(|i| i.state == ItemState::Done)
    );
    assert_eq!(
        s.due_alerts(1000).await.unwrap().len(),
        usize::try_from(TASKS * PER_TASK / 10).unwrap()
    );
    assert_eq!(
        s.domains_with_finding("SPF-SOFTFAIL").await.unwrap().len(),
        50
    );
    for st in &stores {
        st.close().await;
    }
}

pub(crate) async fn tenant_imports(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Contoso", "", "").await.unwrap();
    s.add_customer("Fabrikam", "", "").await.unwrap();
    let config = |n: i64| {
        json!({
            "organization": "contoso.onmicrosoft.com",
            "transportConfig": {"RejectDirectSend": n > 1},
            "inboundConnectors": [{"Name": "From gateway", "RestrictDomainsToIPAddresses": false}],
            "version": n,
        })
    };
    let findings = |ids: &[&str]| {
        json!(
            ids.iter()
                .map(|id| json!({"id": id, "severity": "high"}))
                .collect::<Vec<_>>()
        )
    };
    let org = "contoso.onmicrosoft.com";

    // Never imported: empty, not an error.
    assert!(s.tenant_imports(org, 10).await.unwrap().is_empty());
    assert!(s.latest_tenant_imports(None).await.unwrap().is_empty());

    // Unknown customer: NotFound, nothing written.
    let err = s
        .record_tenant_import(Some("Nope"), org, 100, "x.json", &config(0), &json!([]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { what } if what.contains("Nope")),
        "{err}"
    );
    assert!(s.tenant_imports(org, 10).await.unwrap().is_empty());
    assert!(is_not_found(s.latest_tenant_imports(Some("Nope")).await));
    // Invalid arguments.
    assert!(is_invalid(
        s.record_tenant_import(None, "  ", 100, "x.json", &config(0), &json!([]))
            .await
    ));
    assert!(is_invalid(
        s.record_tenant_import(None, org, 100, "x.json", &config(0), &json!({}))
            .await
    ));
    assert!(is_invalid(s.tenant_imports(org, -1).await));

    // Record and read back; the organization is normalised like a domain name.
    let first = s
        .record_tenant_import(
            Some(" Contoso "),
            "Contoso.onmicrosoft.com.",
            1_000,
            "contoso-2024-01.json",
            &config(1),
            &findings(&["EXO-DIRECT-SEND"]),
        )
        .await
        .unwrap();
    let got = s.tenant_imports(org, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    let t = &got[0];
    assert_eq!(t.id, first);
    assert_eq!(t.customer.as_deref(), Some("Contoso"));
    assert_eq!(t.organization, org);
    assert_eq!(t.imported_at, 1_000);
    assert_eq!(t.source, "contoso-2024-01.json");
    assert_eq!(t.config, config(1));
    assert_eq!(t.findings, findings(&["EXO-DIRECT-SEND"]));

    // Order: newest first by import time, then insertion; an import recorded later with an
    // earlier time sorts by its time.
    let second = s
        .record_tenant_import(
            Some("Contoso"),
            org,
            3_000,
            "b.json",
            &config(2),
            &json!([]),
        )
        .await
        .unwrap();
    let same_time = s
        .record_tenant_import(
            Some("Contoso"),
            org,
            3_000,
            "c.json",
            &config(3),
            &json!([]),
        )
        .await
        .unwrap();
    let older = s
        .record_tenant_import(None, org, 500, "old.json", &config(0), &json!([]))
        .await
        .unwrap();
    let ids: Vec<i64> = s
        .tenant_imports(org, 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, [same_time, second, first, older]);
    let two: Vec<i64> = s
        .tenant_imports(org, 2)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(two, [same_time, second]);
    assert!(s.tenant_imports(org, 0).await.unwrap().is_empty());
    assert_eq!(s.tenant_imports(org, 10).await.unwrap()[3].customer, None);

    // Other tenants.
    let fab = s
        .record_tenant_import(
            Some("Fabrikam"),
            "fabrikam.onmicrosoft.com",
            2_000,
            "f.json",
            &json!({"organization": "fabrikam.onmicrosoft.com"}),
            &json!([]),
        )
        .await
        .unwrap();
    let lone = s
        .record_tenant_import(
            None,
            "adatum.onmicrosoft.com",
            50,
            "a.json",
            &json!({}),
            &json!([]),
        )
        .await
        .unwrap();
    // Contoso's tenant also imported once for Fabrikam (e.g. a mistaken --customer), older.
    let stray = s
        .record_tenant_import(
            Some("Fabrikam"),
            org,
            200,
            "stray.json",
            &json!({}),
            &json!([]),
        )
        .await
        .unwrap();

    // Latest per organization, by organization name.
    let latest = |v: Vec<mailaudit_store::TenantImport>| {
        v.into_iter()
            .map(|t| (t.organization, t.id))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        latest(s.latest_tenant_imports(None).await.unwrap()),
        [
            ("adatum.onmicrosoft.com".to_string(), lone),
            (org.to_string(), same_time),
            ("fabrikam.onmicrosoft.com".to_string(), fab),
        ]
    );
    assert_eq!(
        latest(s.latest_tenant_imports(Some("Contoso")).await.unwrap()),
        [(org.to_string(), same_time)]
    );
    assert_eq!(
        latest(s.latest_tenant_imports(Some("Fabrikam")).await.unwrap()),
        [
            (org.to_string(), stray),
            ("fabrikam.onmicrosoft.com".to_string(), fab),
        ]
    );
    let full = s.latest_tenant_imports(Some("Contoso")).await.unwrap();
    assert_eq!(full[0].config, config(3));
    assert_eq!(full[0].source, "c.json");

    // Survives reopening.
    s.close().await;
    let s = db.open().await;
    assert_eq!(s.tenant_imports(org, 10).await.unwrap().len(), 5);
    s.close().await;
}
