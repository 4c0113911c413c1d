//! The JSON API (`/api/v1/`): per-user tokens made and revoked on the account page, the
//! caller's scope, JSON errors, and `docs/openapi.json` checked against the routes.

use std::collections::BTreeSet;

use mailaudit_portal::PortalOptions;
use serde_json::Value;

use crate::common::{CUSTOMER, Portal, Session, password};

const LOCAL: PortalOptions = PortalOptions::local();

/// `GET path` with `Authorization: Bearer token`: status and JSON body.
async fn api(p: &Portal, token: &str, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = p
        .request("GET", path, &[("Authorization", auth.as_str())], None)
        .await;
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "{path}: {ct} {}",
        r.body
    );
    (r.status, serde_json::from_str(&r.body).expect("JSON"))
}

/// Makes a token on the account page, as its user would; the token shown once.
async fn make_token(p: &Portal, s: &Session, label: &str) -> String {
    let r = p
        .post_as(s, "/account/tokens", &format!("label={label}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .split("<code id=\"new-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the token, shown once")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_act_with_their_users_scope_until_revoked() {
    let p = Portal::start_with_users(LOCAL).await;
    let ann = p.login("ann", password("ann")).await;
    let tech = p.login("tech", password("tech")).await;
    let viewer_token = make_token(&p, &ann, "ann's+dashboard").await;
    assert!(viewer_token.starts_with("mat_"), "{viewer_token}");
    let tech_token = make_token(&p, &tech, "PSA").await;

    // The technician's token sees every customer; the viewer's only its own.
    let (status, fleet) = api(&p, &tech_token, "/api/v1/fleet?per=2&sort=name").await;
    assert_eq!(status, 200, "{fleet}");
    assert_eq!(fleet["matched"], 4);
    assert_eq!(fleet["domains"].as_array().unwrap().len(), 2);
    assert_eq!(fleet["per"], 2);
    let (_, mine) = api(&p, &viewer_token, "/api/v1/fleet?per=500").await;
    let customers: BTreeSet<&str> = mine["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["customer"].as_str().unwrap())
        .collect();
    assert_eq!(customers, BTreeSet::from([CUSTOMER]), "{mine}");
    let (_, list) = api(&p, &viewer_token, "/api/v1/customers").await;
    assert_eq!(list["customers"].as_array().unwrap().len(), 1, "{list}");
    // Another customer's domain is 404, as a domain that does not exist.
    let hostile = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E.example";
    let (status, err) = api(&p, &viewer_token, &format!("/api/v1/domains/{hostile}")).await;
    assert_eq!((status, err["status"].as_u64()), (404, Some(404)), "{err}");
    let (status, _) = api(&p, &tech_token, &format!("/api/v1/domains/{hostile}")).await;
    assert_eq!(status, 200);
    // A domain, its checklist, its reports summary.
    let (_, d) = api(&p, &viewer_token, "/api/v1/domains/contoso.example").await;
    assert_eq!(d["domain"], "contoso.example");
    assert!(
        d["findings"].as_array().is_some_and(|f| !f.is_empty()),
        "{d}"
    );
    let (_, c) = api(
        &p,
        &viewer_token,
        "/api/v1/domains/contoso.example/checklist",
    )
    .await;
    assert!(c["items"].as_array().is_some_and(|i| !i.is_empty()), "{c}");
    let (status, r) = api(
        &p,
        &viewer_token,
        "/api/v1/domains/contoso.example/reports?days=90",
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["dmarc"].is_object() && r["tls"].is_object(), "{r}");

    // Bad values are JSON 400s; unknown tokens and no token JSON 401s.
    for bad in [
        "/api/v1/fleet?severity=bogus",
        "/api/v1/fleet?per=0",
        "/api/v1/fleet?sort=name&sort=score",
        "/api/v1/domains/contoso.example/reports?days=0",
    ] {
        let (status, err) = api(&p, &tech_token, bad).await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(err["error"].is_string());
    }
    let (status, _) = api(&p, "mat_not-a-token-anyone-made", "/api/v1/fleet").await;
    assert_eq!(status, 401);
    let r = p.get("/api/v1/fleet").await;
    assert_eq!(r.status, 401, "no redirect to a sign-in page: {}", r.body);

    // The account page lists the token, with its last use; revoked, it stops working.
    let page = p.get_as(&ann, "/account").await.body;
    assert!(
        page.contains("ann&#39;s dashboard") || page.contains("ann's dashboard"),
        "{page}"
    );
    let id = p.store.api_tokens("ann").await.unwrap()[0].id;
    assert!(
        p.store.api_tokens("ann").await.unwrap()[0]
            .last_used_at
            .is_some()
    );
    // Not by another user.
    let r = p
        .post_as(&tech, &format!("/account/tokens/{id}/revoke"), "")
        .await;
    assert_eq!(r.status, 404);
    let r = p
        .post_as(&ann, &format!("/account/tokens/{id}/revoke"), "")
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (status, _) = api(&p, &viewer_token, "/api/v1/fleet").await;
    assert_eq!(status, 401);
    let log = p.store.audit_log(100, None).await.unwrap();
    for action in ["api-token-create", "api-token-revoke"] {
        assert!(
            log.iter().any(|e| e.action == action && e.actor == "ann"),
            "{action}"
        );
    }
    p.stop().await;
}

/// docs/openapi.json documents every `/api/v1/` route and nothing else, each with a 200 and
/// its errors; the fleet's documented parameters are each checked by the API (a value it does
/// not take is a 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_file_matches_the_routes() {
    let doc: Value = serde_json::from_str(include_str!("../../../docs/openapi.json"))
        .expect("docs/openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed: BTreeSet<String> = mailaudit_portal::pages::routes()
        .iter()
        .filter(|(_, path, _)| path.starts_with("/api/"))
        .map(|(m, path, _)| {
            assert_eq!(m.as_str(), "GET", "{path}: the API is read-only");
            path.to_string()
        })
        .collect();
    assert_eq!(documented, routed);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let responses = &item["get"]["responses"];
        assert!(responses["200"].is_object(), "{path}: 200");
        assert!(responses["401"].is_object(), "{path}: 401");
    }
    let p = Portal::start(LOCAL).await;
    let params = doc["paths"]["/api/v1/fleet"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert_eq!(params.len(), 13);
    for param in params {
        let name = param["name"].as_str().unwrap();
        let r = p.get(&format!("/api/v1/fleet?{name}=%01not-a-value")).await;
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert!(r.body.contains(name), "{name}: {}", r.body);
    }
    p.stop().await;
}
