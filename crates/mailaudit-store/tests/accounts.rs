//! Portal accounts: users with roles and customer scopes, sessions stored hashed with idle and
//! absolute expiry and revoked on password or role change, the audit log, and the login
//! throttle's counters.

use std::sync::Arc;

use mailaudit_store::{AuditEntry, NewUser, Role, Store, StoreError};

use crate::db::{Kind, TestDb};

fn viewer(name: &str, customers: &[&str]) -> NewUser {
    NewUser {
        name: name.into(),
        role: Role::Viewer,
        customers: customers.iter().map(|c| c.to_string()).collect(),
        password_hash: Some(format!("$argon2id$hash-of-{name}")),
    }
}

fn staff(name: &str, role: Role) -> NewUser {
    NewUser {
        name: name.into(),
        role,
        customers: Vec::new(),
        password_hash: Some(format!("$argon2id$hash-of-{name}")),
    }
}

const TOKEN: &str = "session-token-0123456789abcdef";
const CSRF: &str = "csrf-token-0123456789abcdef";

pub(crate) async fn users_roles_and_scopes(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Contoso", "", "").await.unwrap();
    s.add_customer("Fabrikam", "", "").await.unwrap();
    assert!(s.users().await.unwrap().is_empty());

    let admin = s.add_user(&staff(" root ", Role::Admin), 10).await.unwrap();
    assert_eq!(
        (admin.name.as_str(), admin.role, admin.created_at),
        ("root", Role::Admin, 10)
    );
    assert!(admin.customers.is_empty());
    let v = s
        .add_user(&viewer("ann", &["Fabrikam", "Contoso", "Contoso"]), 11)
        .await
        .unwrap();
    assert_eq!(v.customers, ["Contoso", "Fabrikam"], "each once, by name");
    assert_eq!(v.password_hash.as_deref(), Some("$argon2id$hash-of-ann"));
    assert!(v.totp_secret.is_none());
    // The hash never shows in a debug print.
    assert!(!format!("{v:?}").contains("hash-of-ann"), "{v:?}");

    // Refused, nothing written: a taken name, a viewer without customers or with an unknown
    // one, customers for a technician, a bad name.
    let refused: Vec<(NewUser, &str)> = vec![
        (staff("ann", Role::Technician), "conflict"),
        (viewer("bob", &[]), "invalid"),
        (viewer("bob", &["Contoso", "Nobody"]), "not found"),
        (
            NewUser {
                customers: vec!["Contoso".into()],
                ..staff("bob", Role::Technician)
            },
            "invalid",
        ),
        (staff("bob lee", Role::Technician), "invalid"),
        (staff("", Role::Technician), "invalid"),
    ];
    for (u, want) in refused {
        let e = s.add_user(&u, 12).await.unwrap_err();
        let got = match e {
            StoreError::Conflict(_) => "conflict",
            StoreError::Invalid(_) => "invalid",
            StoreError::NotFound { .. } => "not found",
            e => panic!("{u:?}: {e}"),
        };
        assert_eq!(got, want, "{u:?}");
    }
    assert_eq!(
        s.users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["ann", "root"]
    );
    assert!(matches!(
        s.user("bob").await,
        Err(StoreError::NotFound { .. })
    ));

    // A role change: the viewer becomes a technician (its customers go), then a viewer of one.
    let changed = s.set_role("ann", Role::Technician, &[], 20).await.unwrap();
    assert_eq!(changed.before.role, Role::Viewer);
    assert_eq!(
        (changed.after.role, changed.after.customers.len()),
        (Role::Technician, 0)
    );
    assert_eq!(changed.after.updated_at, 20);
    let changed = s
        .set_role("ann", Role::Viewer, &["Fabrikam".into()], 21)
        .await
        .unwrap();
    assert_eq!(changed.after.customers, ["Fabrikam"]);
    assert!(matches!(
        s.set_role("ann", Role::Viewer, &[], 22).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.set_role("nobody", Role::Admin, &[], 22).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.user("ann").await.unwrap().customers, ["Fabrikam"]);

    // Password and second factor.
    s.set_password("ann", Some("$argon2id$new"), 30)
        .await
        .unwrap();
    let codes = vec!["hash-one".to_string(), "hash-two".to_string()];
    s.set_second_factor("ann", Some("JBSWY3DPEHPK3PXP"), &codes, 31)
        .await
        .unwrap();
    let ann = s.user("ann").await.unwrap();
    assert_eq!(ann.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(ann.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    assert_eq!(ann.recovery_codes, codes);
    assert_eq!(ann.updated_at, 31);
    assert!(!format!("{ann:?}").contains("JBSWY3DPEHPK3PXP"), "{ann:?}");
    // A code's time step is accepted once, and never an earlier one.
    assert!(s.accept_totp_step("ann", 100).await.unwrap());
    assert!(!s.accept_totp_step("ann", 100).await.unwrap(), "replayed");
    assert!(!s.accept_totp_step("ann", 99).await.unwrap(), "older");
    assert!(s.accept_totp_step("ann", 101).await.unwrap());
    assert!(!s.accept_totp_step("nobody", 102).await.unwrap());
    // A recovery code is used once.
    assert!(s.use_recovery_code("ann", "hash-two", 32).await.unwrap());
    assert!(!s.use_recovery_code("ann", "hash-two", 33).await.unwrap());
    assert!(!s.use_recovery_code("ann", "", 33).await.unwrap());
    assert_eq!(s.user("ann").await.unwrap().recovery_codes, ["hash-one"]);
    s.set_second_factor("ann", None, &[], 34).await.unwrap();
    assert!(
        s.accept_totp_step("ann", 50).await.unwrap(),
        "a new second factor starts afresh"
    );
    let ann = s.user("ann").await.unwrap();
    assert!(ann.totp_secret.is_none() && ann.recovery_codes.is_empty());
    assert!(matches!(
        s.set_second_factor("ann", None, &["two\nlines".into()], 35)
            .await,
        Err(StoreError::Invalid(_))
    ));
    // Settings.
    assert_eq!(s.setting("require_second_factor").await.unwrap(), None);
    s.set_setting("require_second_factor", "yes").await.unwrap();
    s.set_setting("require_second_factor", "no").await.unwrap();
    assert_eq!(
        s.setting("require_second_factor").await.unwrap().as_deref(),
        Some("no")
    );
    assert!(matches!(
        s.set_password("nobody", None, 1).await,
        Err(StoreError::NotFound { .. })
    ));

    // Removal: the user, its customers and its sessions go; the customers stay.
    s.create_session(TOKEN, "ann", CSRF, 40, 1000, false)
        .await
        .unwrap();
    let removed = s.remove_user("ann").await.unwrap();
    assert_eq!(removed.customers, ["Fabrikam"]);
    assert!(s.session(TOKEN, 41, 100).await.unwrap().is_none());
    assert!(matches!(
        s.remove_user("ann").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.customers().await.unwrap().len(), 2);
    // The name is free again, and a customer can be given to a new viewer.
    s.add_user(&viewer("ann", &["Contoso"]), 50).await.unwrap();
    s.close().await;
}

pub(crate) async fn sessions_expire_and_are_revoked(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Contoso", "", "").await.unwrap();
    s.add_user(&staff("tech", Role::Technician), 1)
        .await
        .unwrap();
    s.add_user(&viewer("ann", &["Contoso"]), 1).await.unwrap();

    // Bad tokens are refused; an unknown user is not found.
    for bad in ["", "short", "has white space inside"] {
        assert!(matches!(
            s.create_session(bad, "tech", CSRF, 100, 200, false).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(s.session(bad, 100, 60).await.unwrap().is_none());
    }
    assert!(matches!(
        s.create_session(TOKEN, "nobody", CSRF, 100, 200, false)
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // A session, looked up: its user, role and CSRF token.
    s.create_session(TOKEN, "tech", CSRF, 100, 1000, false)
        .await
        .unwrap();
    assert!(matches!(
        s.create_session(TOKEN, "ann", CSRF, 100, 1000, false).await,
        Err(StoreError::Conflict(_))
    ));
    let found = s.session(TOKEN, 110, 60).await.unwrap().expect("a session");
    assert_eq!(
        (
            found.user.name.as_str(),
            found.user.role,
            found.csrf_token.as_str()
        ),
        ("tech", Role::Technician, CSRF)
    );
    assert_eq!((found.created_at, found.last_seen_at), (100, 100));
    assert!(!format!("{found:?}").contains(CSRF), "{found:?}");
    // The token itself is not stored: only its hash.
    let pool = crate::migrations::Pool::connect(&db).await;
    assert_eq!(pool.count("sessions").await, 1);
    pool.close().await;
    assert!(
        s.session("session-token-0123456789abcdeX", 110, 60)
            .await
            .unwrap()
            .is_none()
    );

    // Each use moves the idle deadline: 110 + 59 is within a minute of the last use.
    let again = s
        .session(TOKEN, 169, 60)
        .await
        .unwrap()
        .expect("still idle-valid");
    assert_eq!(again.last_seen_at, 110);
    // Unused for a minute: gone, and gone for good.
    assert!(s.session(TOKEN, 229, 60).await.unwrap().is_none());
    assert!(s.session(TOKEN, 170, 60).await.unwrap().is_none());

    // Absolute expiry, however busy the session.
    s.create_session(TOKEN, "tech", CSRF, 1000, 1100, false)
        .await
        .unwrap();
    for t in (1000..1100).step_by(30) {
        assert!(s.session(TOKEN, t, 60).await.unwrap().is_some(), "at {t}");
    }
    assert!(s.session(TOKEN, 1100, 60).await.unwrap().is_none());

    // Logout ends one session; the user's others stay.
    let other = "other-session-0123456789abcdef";
    s.create_session(TOKEN, "tech", CSRF, 2000, 9000, false)
        .await
        .unwrap();
    s.create_session(other, "tech", CSRF, 2000, 9000, false)
        .await
        .unwrap();
    assert!(s.delete_session(TOKEN).await.unwrap());
    assert!(!s.delete_session(TOKEN).await.unwrap());
    assert!(s.session(TOKEN, 2001, 600).await.unwrap().is_none());
    assert!(s.session(other, 2001, 600).await.unwrap().is_some());

    // A password change and a role change each revoke every session of the user, and only
    // theirs.
    let ann_token = "ann-session-0123456789abcdef";
    s.create_session(ann_token, "ann", CSRF, 2000, 9000, false)
        .await
        .unwrap();
    assert_eq!(
        s.set_password("tech", Some("$argon2id$x"), 2002)
            .await
            .unwrap(),
        1
    );
    assert!(s.session(other, 2003, 600).await.unwrap().is_none());
    assert!(s.session(ann_token, 2003, 600).await.unwrap().is_some());
    s.set_role("ann", Role::Technician, &[], 2004)
        .await
        .unwrap();
    assert!(s.session(ann_token, 2005, 600).await.unwrap().is_none());
    s.create_session(ann_token, "ann", CSRF, 2006, 9000, false)
        .await
        .unwrap();
    assert_eq!(s.revoke_sessions("ann").await.unwrap(), 1);
    assert!(s.session(ann_token, 2007, 600).await.unwrap().is_none());

    // A session reads its user as stored now.
    s.create_session(ann_token, "ann", CSRF, 3000, 9000, false)
        .await
        .unwrap();
    s.set_second_factor("ann", Some("JBSWY3DPEHPK3PXP"), &[], 3001)
        .await
        .unwrap();
    let found = s.session(ann_token, 3002, 600).await.unwrap().unwrap();
    assert_eq!(found.user.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));

    assert!(!found.pending);
    // A session waiting for its second factor says so.
    let pending = "pending-session-0123456789";
    s.create_session(pending, "ann", CSRF, 3000, 3300, true)
        .await
        .unwrap();
    assert!(
        s.session(pending, 3001, 600)
            .await
            .unwrap()
            .unwrap()
            .pending
    );
    assert!(s.delete_session(pending).await.unwrap());

    // The sweep deletes the expired and the idle, and keeps the live.
    s.create_session(TOKEN, "tech", CSRF, 3000, 3050, false)
        .await
        .unwrap();
    s.create_session(other, "tech", CSRF, 3000, 9000, false)
        .await
        .unwrap();
    assert_eq!(s.delete_expired_sessions(3060, 600).await.unwrap(), 1);
    assert!(s.session(other, 3061, 600).await.unwrap().is_some());
    assert_eq!(s.delete_expired_sessions(5000, 600).await.unwrap(), 2);
    s.close().await;
}

pub(crate) async fn audit_log_and_login_failures(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s: Arc<dyn Store> = Arc::from(db.open().await);
    let entry = |at: i64, action: &str| AuditEntry {
        id: 0,
        at,
        actor: "ann".into(),
        action: action.into(),
        target: "contoso.example dmarc-publish".into(),
        detail: "done\u{1b}[31m".into(),
        address: "127.0.0.1".into(),
    };
    let first = s.record_audit(&entry(100, "login")).await.unwrap();
    let second = s.record_audit(&entry(101, "checklist")).await.unwrap();
    assert!(second > first);
    assert!(matches!(
        s.record_audit(&entry(102, " ")).await,
        Err(StoreError::Invalid(_))
    ));
    let log = s.audit_log(10, None).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["checklist", "login"],
        "newest first"
    );
    assert_eq!(log[0].detail, "done[31m", "control characters dropped");
    assert_eq!(
        (log[0].at, log[0].actor.as_str(), log[0].address.as_str()),
        (101, "ann", "127.0.0.1")
    );
    // Pages.
    let next = s.audit_log(1, Some(second)).await.unwrap();
    assert_eq!(next.iter().map(|e| e.id).collect::<Vec<_>>(), [first]);
    assert!(s.audit_log(10, Some(first)).await.unwrap().is_empty());
    // Concurrent writers each get their entry.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.record_audit(&AuditEntry {
                id: 0,
                at: 200 + i,
                actor: format!("user{i}"),
                action: "login".into(),
                target: String::new(),
                detail: String::new(),
                address: String::new(),
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.audit_log(100, None).await.unwrap().len(), 10);

    // Failed sign-ins: counted per key, forgotten after a quiet period or a success.
    assert!(s.login_failures("user:ann").await.unwrap().is_none());
    for (i, t) in [1000, 1010, 1020].into_iter().enumerate() {
        let f = s.record_login_failure("user:ann", t, 600).await.unwrap();
        assert_eq!((f.failures, f.last_at), (i as i64 + 1, t));
    }
    let f = s
        .record_login_failure("addr:192.0.2.1", 1030, 600)
        .await
        .unwrap();
    assert_eq!(f.failures, 1, "keys are counted apart");
    assert_eq!(
        s.login_failures("user:ann")
            .await
            .unwrap()
            .unwrap()
            .failures,
        3
    );
    let f = s.record_login_failure("user:ann", 1620, 600).await.unwrap();
    assert_eq!(f.failures, 1, "ten quiet minutes forget the earlier ones");
    s.clear_login_failures("user:ann").await.unwrap();
    assert!(s.login_failures("user:ann").await.unwrap().is_none());
    assert!(s.login_failures("addr:192.0.2.1").await.unwrap().is_some());

    // Concurrent failures are each counted.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.record_login_failure("user:bob", 5000, 600).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.login_failures("user:bob")
            .await
            .unwrap()
            .unwrap()
            .failures,
        10
    );
    s.close().await;
}

pub(crate) async fn api_tokens_act_as_their_user_until_revoked(kind: Kind) {
    let db = TestDb::new(kind).await;
    let s = db.open().await;
    s.add_customer("Scoped Co", "", "").await.unwrap();
    s.add_user(
        &mailaudit_store::NewUser {
            name: "psa".into(),
            role: mailaudit_store::Role::Viewer,
            password_hash: None,
            customers: vec!["Scoped Co".into()],
        },
        1,
    )
    .await
    .unwrap();
    let t = s
        .create_api_token("psa", "the PSA sync", "token-of-the-psa-0001", 10)
        .await
        .unwrap();
    assert_eq!((t.user.as_str(), t.label.as_str()), ("psa", "the PSA sync"));
    for (label, token) in [
        ("", "token-of-the-psa-0002"),
        ("x", "short"),
        ("x", "has white space in it"),
    ] {
        assert!(matches!(
            s.create_api_token("psa", label, token, 10).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(matches!(
        s.create_api_token("nobody", "x", "token-of-nobody-0001", 10)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let u = s
        .api_token_user("token-of-the-psa-0001", 100)
        .await
        .unwrap()
        .expect("the token's user");
    assert_eq!(
        (u.name.as_str(), u.customers.clone()),
        ("psa", vec!["Scoped Co".to_string()])
    );
    assert_eq!(
        s.api_tokens("psa").await.unwrap()[0].last_used_at,
        Some(100)
    );
    assert!(
        s.api_token_user("token-of-someone-else", 100)
            .await
            .unwrap()
            .is_none()
    );
    // Revoked by its user only.
    s.add_user(
        &mailaudit_store::NewUser {
            name: "other".into(),
            role: mailaudit_store::Role::Admin,
            password_hash: None,
            customers: Vec::new(),
        },
        1,
    )
    .await
    .unwrap();
    assert!(!s.revoke_api_token("other", t.id).await.unwrap());
    assert!(s.revoke_api_token("psa", t.id).await.unwrap());
    assert!(
        s.api_token_user("token-of-the-psa-0001", 200)
            .await
            .unwrap()
            .is_none()
    );
    // A removed user's tokens go with it.
    s.create_api_token("other", "ops", "token-of-other-0001", 10)
        .await
        .unwrap();
    s.remove_user("psa").await.unwrap();
    assert!(
        s.api_token_user("token-of-other-0001", 300)
            .await
            .unwrap()
            .is_some()
    );
}

/// The store keeps an admin: the last one can be neither removed nor demoted, and two admins
/// demoting each other at once (two connections, two transactions) leave one.
pub(crate) async fn the_last_admin_stays_even_under_concurrent_changes(kind: Kind) {
    let db = TestDb::new(kind).await;
    let a: Arc<dyn Store> = Arc::from(db.open().await);
    let b: Arc<dyn Store> = Arc::from(db.open().await);
    for name in ["ada", "bob"] {
        a.add_user(
            &NewUser {
                name: name.into(),
                role: Role::Admin,
                customers: Vec::new(),
                password_hash: None,
            },
            1,
        )
        .await
        .unwrap();
    }
    for round in 0..5 {
        let (x, y) = tokio::join!(
            a.set_role("ada", Role::Technician, &[], 10 + round),
            b.set_role("bob", Role::Technician, &[], 10 + round),
        );
        let refused = [&x, &y]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
            .count();
        assert_eq!(refused, 1, "round {round}: {x:?} {y:?}");
        let admins: Vec<String> = a
            .users()
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.role == Role::Admin)
            .map(|u| u.name)
            .collect();
        assert_eq!(admins.len(), 1, "round {round}");
        // The last admin: not removed, not demoted.
        assert!(matches!(
            a.remove_user(&admins[0]).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            a.set_role(&admins[0], Role::Technician, &[], 20).await,
            Err(StoreError::Conflict(_))
        ));
        // Both admins again for the next round.
        for name in ["ada", "bob"] {
            a.set_role(name, Role::Admin, &[], 30).await.unwrap();
        }
    }
    // With another admin, one may go.
    a.remove_user("ada").await.unwrap();
    assert!(matches!(
        a.remove_user("bob").await,
        Err(StoreError::Conflict(_))
    ));
}
