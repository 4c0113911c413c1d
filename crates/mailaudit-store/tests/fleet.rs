//! The fleet pages' reads: each domain's newest result kept with what it found, filtered,
//! sorted, paged and totalled by the store, and customers' totals; the same on both back ends.

use mailaudit_store::{
    ChecklistItem, DmarcFilter, FleetQuery, FleetSort, ItemState, NewDomain, ResultWrite, Store,
    StoreError,
};
use serde_json::json;

use crate::db::{Kind, TestDb};

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;

fn report(policy: Option<&str>, relay: &str, findings: &[(&str, &str, &str)]) -> serde_json::Value {
    json!({
        "dmarc": {"policy": policy},
        "relay": {"verdict": relay},
        "findings": findings.iter().map(|(id, sev, area)| json!({"id": id, "severity": sev, "area": area})).collect::<Vec<_>>(),
    })
}

fn item(domain: &str, key: &str, priority: u8, state: ItemState, updated_at: i64) -> ChecklistItem {
    ChecklistItem {
        domain: domain.into(),
        key: key.into(),
        priority,
        title: key.into(),
        state,
        by: None,
        at: None,
        updated_at,
    }
}

fn names(page: &mailaudit_store::FleetPage) -> Vec<&str> {
    page.lines.iter().map(|l| l.name.as_str()).collect()
}

async fn page(s: &dyn Store, q: FleetQuery) -> mailaudit_store::FleetPage {
    s.fleet_page(&FleetQuery {
        limit: if q.limit == 0 { 100 } else { q.limit },
        now: NOW,
        ..q
    })
    .await
    .unwrap()
}

pub(crate) async fn pages_filter_sort_and_total(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    let s = &*s;
    for c in ["Acme", "Beta"] {
        s.add_customer(c, "", "").await.unwrap();
    }
    for (name, customer) in [
        ("a.example", Some("Acme")),
        ("b.example", Some("Acme")),
        ("c_x.example", Some("Beta")),
        ("d.example", None),
        ("never.example", Some("Beta")),
    ] {
        s.add_domain(&NewDomain {
            name: name.into(),
            customer: customer.map(str::to_string),
            ..NewDomain::default()
        })
        .await
        .unwrap();
    }
    // An older run, then the newest results: a.example's newest replaces its older one.
    let old = s.begin_run("cli", NOW - 10 * DAY).await.unwrap();
    s.record_result(
        old,
        "a.example",
        NOW - 10 * DAY,
        Some(90),
        &report(Some("reject"), "blocked", &[]),
    )
    .await
    .unwrap();
    let run = s.begin_run("cli", NOW - DAY).await.unwrap();
    let writes = [
        (
            "a.example",
            Some(20),
            report(
                None,
                "inconclusive",
                &[
                    ("DMARC-MISSING", "critical", "dmarc"),
                    ("RELAY-OPEN", "critical", "connectors"),
                    ("SPF-SOFTFAIL", "high", "spf"),
                ],
            ),
        ),
        (
            "b.example",
            Some(70),
            report(
                Some("none"),
                "blocked",
                &[
                    ("DMARC-POLICY-NONE", "medium", "dmarc"),
                    ("SPF-SOFTFAIL", "high", "spf"),
                ],
            ),
        ),
        (
            "c_x.example",
            Some(95),
            report(Some("reject"), "blocked", &[("DKIM-X", "low", "dkim")]),
        ),
        (
            "d.example",
            Some(60),
            report(Some("quarantine"), "not_tested", &[]),
        ),
    ];
    let writes: Vec<ResultWrite> = writes
        .into_iter()
        .map(|(d, score, r)| ResultWrite {
            domain: d.into(),
            audited_at: NOW - DAY,
            score,
            report: r,
            rollout: None,
            checklist: None,
            states: Vec::new(),
            alert: None,
        })
        .collect();
    s.record_batch(run, &writes, None, NOW - DAY).await.unwrap();
    // An older result recorded after the newest does not replace it.
    s.record_result(
        old,
        "b.example",
        NOW - 20 * DAY,
        Some(10),
        &report(None, "open", &[("DMARC-MISSING", "critical", "dmarc")]),
    )
    .await
    .unwrap();
    // Checklists: a.example has a priority-1 item open for two days (overdue), b.example a
    // priority-2 item open for two days (not yet) and one done.
    s.sync_checklist(
        "a.example",
        &[item("a.example", "k1", 1, ItemState::Open, NOW - 2 * DAY)],
    )
    .await
    .unwrap();
    s.sync_checklist(
        "b.example",
        &[
            item("b.example", "k1", 2, ItemState::Open, NOW - 2 * DAY),
            item("b.example", "k2", 3, ItemState::Open, NOW - 40 * DAY),
        ],
    )
    .await
    .unwrap();
    s.set_item_state("b.example", "k2", ItemState::Done, "ann", NOW - DAY)
        .await
        .unwrap();

    // Everything, worst first: criticals, then highs, then the rest; never audited last.
    let all = page(s, FleetQuery::default()).await;
    assert_eq!(
        names(&all),
        [
            "a.example",
            "b.example",
            "c_x.example",
            "d.example",
            "never.example"
        ]
    );
    let a = &all.lines[0];
    assert_eq!(
        (
            a.customer.as_deref(),
            a.score,
            a.lacks_dmarc,
            a.relay.as_str()
        ),
        (Some("Acme"), Some(20), true, "open")
    );
    assert_eq!(a.counts, [2, 1, 0, 0, 0]);
    assert_eq!(a.areas, [5, 4, 0, 5, 0, 0, 0]);
    assert_eq!(
        (a.checklist_done, a.checklist_total, a.overdue),
        (0, 1, true)
    );
    let b = &all.lines[1];
    assert_eq!(
        (b.score, b.dmarc_policy.as_deref(), b.relay.as_str()),
        (Some(70), Some("none"), "blocked")
    );
    assert_eq!(
        (b.checklist_done, b.checklist_total, b.overdue),
        (1, 2, false)
    );
    let never = &all.lines[4];
    assert_eq!(
        (never.audited_at, never.score, never.relay.as_str()),
        (None, None, "not_tested")
    );
    let t = &all.totals;
    assert_eq!((t.domains, t.audited, t.average_score), (5, 4, Some(61)));
    assert_eq!((t.without_dmarc, t.dmarc_none, t.dmarc_reject), (1, 1, 1));
    assert_eq!(
        (t.direct_send_open, t.direct_send_blocked, t.with_critical),
        (1, 2, 1)
    );
    assert_eq!((t.checklist_done, t.checklist_total, t.overdue), (1, 3, 1));

    // Other orders, reversed, and paging (totals stay those of every match).
    let q = |sort, descending| FleetQuery {
        sort,
        descending,
        ..FleetQuery::default()
    };
    assert_eq!(
        names(&page(s, q(FleetSort::Score, false)).await),
        [
            "a.example",
            "d.example",
            "b.example",
            "c_x.example",
            "never.example"
        ]
    );
    assert_eq!(
        names(&page(s, q(FleetSort::Score, true)).await),
        [
            "c_x.example",
            "b.example",
            "d.example",
            "a.example",
            "never.example"
        ]
    );
    assert_eq!(
        names(&page(s, q(FleetSort::Name, true)).await),
        [
            "never.example",
            "d.example",
            "c_x.example",
            "b.example",
            "a.example"
        ]
    );
    assert_eq!(
        names(&page(s, q(FleetSort::Customer, false)).await),
        [
            "a.example",
            "b.example",
            "c_x.example",
            "never.example",
            "d.example"
        ]
    );
    assert_eq!(
        names(&page(s, q(FleetSort::Audited, false)).await)[0],
        "never.example"
    );
    assert_eq!(
        names(&page(s, q(FleetSort::Progress, false)).await)[..2],
        ["a.example", "b.example"]
    );
    let second = page(
        s,
        FleetQuery {
            sort: FleetSort::Name,
            offset: 2,
            limit: 2,
            ..FleetQuery::default()
        },
    )
    .await;
    assert_eq!(names(&second), ["c_x.example", "d.example"]);
    assert_eq!(second.totals, all.totals);

    // Filters.
    let only = |q: FleetQuery| async move { names(&page(s, q).await).join(" ") };
    assert_eq!(
        only(FleetQuery {
            customer: Some("Acme".into()),
            ..FleetQuery::default()
        })
        .await,
        "a.example b.example"
    );
    assert_eq!(
        only(FleetQuery {
            search: Some("C_".into()),
            ..FleetQuery::default()
        })
        .await,
        "c_x.example",
        "a search is case-insensitive and its _ is no wildcard"
    );
    assert_eq!(
        only(FleetQuery {
            search: Some("%".into()),
            ..FleetQuery::default()
        })
        .await,
        ""
    );
    assert_eq!(
        only(FleetQuery {
            min_severity: Some(4),
            ..FleetQuery::default()
        })
        .await,
        "a.example b.example"
    );
    assert_eq!(
        only(FleetQuery {
            area: Some(2),
            ..FleetQuery::default()
        })
        .await,
        "c_x.example",
        "dkim, low or worse"
    );
    assert_eq!(
        only(FleetQuery {
            area: Some(0),
            min_severity: Some(5),
            ..FleetQuery::default()
        })
        .await,
        "a.example"
    );
    assert_eq!(
        only(FleetQuery {
            check: Some("SPF-SOFTFAIL".into()),
            ..FleetQuery::default()
        })
        .await,
        "a.example b.example"
    );
    assert_eq!(
        only(FleetQuery {
            relay: Some("not_tested".into()),
            ..FleetQuery::default()
        })
        .await,
        "d.example never.example"
    );
    for (dmarc, want) in [
        (DmarcFilter::Missing, "a.example"),
        (DmarcFilter::None, "b.example"),
        (DmarcFilter::Quarantine, "d.example"),
        (DmarcFilter::Reject, "c_x.example"),
    ] {
        assert_eq!(
            only(FleetQuery {
                dmarc: Some(dmarc),
                ..FleetQuery::default()
            })
            .await,
            want
        );
    }
    assert_eq!(
        only(FleetQuery {
            overdue: true,
            ..FleetQuery::default()
        })
        .await,
        "a.example"
    );
    assert_eq!(
        only(FleetQuery {
            never_audited: Some(true),
            ..FleetQuery::default()
        })
        .await,
        "never.example"
    );
    // A scope of customers: their domains only, none without a customer; an empty scope, none.
    let beta = FleetQuery {
        scope: Some(vec!["Beta".into()]),
        ..FleetQuery::default()
    };
    assert_eq!(only(beta.clone()).await, "c_x.example never.example");
    assert_eq!(
        only(FleetQuery {
            customer: Some("Acme".into()),
            ..beta
        })
        .await,
        ""
    );
    assert_eq!(
        only(FleetQuery {
            scope: Some(Vec::new()),
            ..FleetQuery::default()
        })
        .await,
        ""
    );
    // Values out of range are refused, not ignored.
    for bad in [
        FleetQuery {
            relay: Some("wide open".into()),
            ..FleetQuery::default()
        },
        FleetQuery {
            area: Some(7),
            ..FleetQuery::default()
        },
        FleetQuery {
            min_severity: Some(6),
            ..FleetQuery::default()
        },
        FleetQuery {
            limit: -1,
            ..FleetQuery::default()
        },
    ] {
        assert!(
            matches!(s.fleet_page(&bad).await, Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }

    // Customers' totals, and within a scope.
    let customers = s.customer_lines(None, NOW).await.unwrap();
    let acme = &customers[0];
    assert_eq!(acme.name, "Acme");
    assert_eq!(
        (
            acme.totals.domains,
            acme.totals.with_critical,
            acme.totals.average_score
        ),
        (2, 1, Some(45))
    );
    assert_eq!(customers[1].name, "Beta");
    assert_eq!(
        (customers[1].totals.domains, customers[1].totals.audited),
        (2, 1)
    );
    let scoped = s
        .customer_lines(Some(&["Beta".to_string()]), NOW)
        .await
        .unwrap();
    assert_eq!(scoped.len(), 1);
    assert_eq!(scoped[0].name, "Beta");

    // The progress over time: one point per run, the same while it runs (read as it stands)
    // and once finished (kept); by customer and within a scope.
    let summary = |points: Vec<mailaudit_store::TrendPoint>| {
        points
            .iter()
            .map(|p| {
                (
                    p.run_id,
                    p.domains,
                    p.average_score.map(|s| (s * 100.0).round() as i64),
                    p.with_dmarc,
                    p.at_reject,
                    p.relay_blocked,
                    p.relay_open,
                    p.with_critical,
                )
            })
            .collect::<Vec<_>>()
    };
    let want = vec![
        (old, 2, Some(5000), 1, 1, 1, 1, 1),
        (run, 4, Some(6125), 3, 1, 2, 1, 1),
    ];
    assert_eq!(summary(s.trend(None, None, 0).await.unwrap()), want);
    s.finish_run(old, mailaudit_store::RunStatus::Complete, NOW)
        .await
        .unwrap();
    s.finish_run(run, mailaudit_store::RunStatus::Complete, NOW)
        .await
        .unwrap();
    assert_eq!(summary(s.trend(None, None, 0).await.unwrap()), want);
    assert_eq!(
        summary(s.trend(None, None, 0).await.unwrap()),
        want,
        "read again"
    );
    assert_eq!(
        summary(s.trend(None, None, NOW - 5 * DAY).await.unwrap()),
        want[1..],
        "since"
    );
    let acme = s.trend(None, Some("Acme"), 0).await.unwrap();
    assert_eq!(
        acme.iter()
            .map(|p| (p.run_id, p.domains))
            .collect::<Vec<_>>(),
        [(old, 2), (run, 2)]
    );
    let beta = s.trend(Some(&["Beta".to_string()]), None, 0).await.unwrap();
    assert_eq!(
        beta.iter()
            .map(|p| (p.run_id, p.domains))
            .collect::<Vec<_>>(),
        [(run, 1)]
    );

    // Emptying a checklist empties its counts.
    s.sync_checklist("a.example", &[]).await.unwrap();
    let a = &page(s, FleetQuery::default()).await.lines[0];
    assert_eq!(
        (a.name.as_str(), a.checklist_total, a.overdue),
        ("a.example", 0, false)
    );

    // The checks page's affected domains come from the newest results only.
    assert_eq!(
        s.domains_with_finding("DMARC-MISSING").await.unwrap(),
        ["a.example"]
    );
}
