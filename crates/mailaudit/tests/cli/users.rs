//! `mailaudit user add|list|remove|passwd|role`: portal users in the store, passwords never on
//! the command line, the last admin kept, every change in the audit log; and `serve` with an
//! admin: sign-in required, any listening address.

use std::time::Duration;

use crate::common::{Served, http_get, run, run_env, sigterm_and_wait, spawn_serve};

const PW_ENV: &str = "MAILAUDIT_PASSWORD";

/// A store (SQLite file in a temporary directory) with the customer `Contoso`.
fn store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    run(&["--db", &db, "customer", "add", "Contoso"]).assert_code(0);
    (dir, db)
}

async fn open(db: &str) -> Box<dyn mailaudit_store::Store> {
    mailaudit_store::open(Some(db)).await.unwrap()
}

#[test]
fn users_are_added_listed_changed_and_removed() {
    let (_dir, db) = store();
    // The first admin, its password from the environment.
    let out = run_env(
        &["--db", &db, "user", "add", "--admin", "root"],
        &[(PW_ENV, "root password 1")],
        None,
    );
    out.assert_code(0);
    assert_eq!(out.stdout, "added user root (admin)\n");
    // A viewer, its password from standard input.
    let out = run_env(
        &[
            "--db",
            &db,
            "user",
            "add",
            "ann",
            "--role",
            "viewer",
            "--customer",
            "Contoso",
            "--password-stdin",
        ],
        &[],
        Some("ann password 12\n"),
    );
    out.assert_code(0);
    assert_eq!(out.stdout, "added user ann (viewer of Contoso)\n");

    // Refused, nothing added: no password source (not a terminal), a weak password, a viewer
    // without customers, an unknown customer, a password on the command line.
    for (args, env, want) in [
        (
            vec!["user", "add", "bob", "--role", "technician"],
            vec![],
            "set MAILAUDIT_PASSWORD",
        ),
        (
            vec!["user", "add", "bob", "--role", "technician"],
            vec![(PW_ENV, "short")],
            "at least 12",
        ),
        (
            vec!["user", "add", "bob", "--role", "viewer"],
            vec![(PW_ENV, "bob password 12")],
            "at least one",
        ),
        (
            vec![
                "user",
                "add",
                "bob",
                "--role",
                "viewer",
                "--customer",
                "Nobody",
            ],
            vec![(PW_ENV, "bob password 12")],
            "not found",
        ),
        (
            vec![
                "user",
                "add",
                "bob",
                "--role",
                "technician",
                "--password",
                "x",
            ],
            vec![],
            "unexpected argument '--password'",
        ),
        (vec!["user", "add", "bob"], vec![], "--role"),
    ] {
        let mut full = vec!["--db", db.as_str()];
        full.extend(&args);
        let out = run_env(&full, &env, None);
        out.assert_code(2);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }

    let list = run(&["--db", &db, "user", "list", "--format", "json"]);
    list.assert_code(0);
    let users = list.json();
    assert_eq!(
        users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("ann", "viewer"), ("root", "admin")]
    );
    assert_eq!(users[0]["customers"], serde_json::json!(["Contoso"]));
    assert_eq!(users[0]["password"], true);
    // No hash, no password, in any output.
    assert!(!list.stdout.contains("argon2") && !list.stdout.contains("password 12"));
    let text = run(&["--db", &db, "user", "list"]);
    assert!(
        text.stdout
            .starts_with("ann\tviewer of Contoso\tpassword\tno 2FA\t"),
        "{}",
        text.stdout
    );

    // The store holds argon2id hashes that verify.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hash = rt.block_on(async {
        let s = open(&db).await;
        let u = s.user("ann").await.unwrap();
        s.close().await;
        u.password_hash.unwrap()
    });
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(mailaudit_app::accounts::verify_password(
        &hash,
        "ann password 12"
    ));

    // passwd, role.
    let out = run_env(
        &["--db", &db, "user", "passwd", "ann"],
        &[(PW_ENV, "a new password")],
        None,
    );
    out.assert_code(0);
    assert!(
        out.stdout.starts_with("password of ann changed"),
        "{}",
        out.stdout
    );
    let out = run(&["--db", &db, "user", "role", "ann", "technician"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "ann is now technician (was viewer of Contoso); its sessions ended\n"
    );
    let out = run_env(
        &["--db", &db, "user", "passwd", "nobody"],
        &[(PW_ENV, "a new password")],
        None,
    );
    out.assert_code(2);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);

    // A lost second factor is turned off from the command line.
    rt.block_on(async {
        let s = open(&db).await;
        s.set_second_factor(
            "ann",
            Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
            &["h".into()],
            1,
        )
        .await
        .unwrap();
        s.close().await;
    });
    let text = run(&["--db", &db, "user", "list"]);
    assert!(text.stdout.contains("\t2FA\t"), "{}", text.stdout);
    let out = run(&["--db", &db, "user", "reset-2fa", "ann"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "two-factor sign-in of ann is off; 0 sessions ended\n"
    );
    let ann = rt.block_on(async {
        let s = open(&db).await;
        let u = s.user("ann").await.unwrap();
        s.close().await;
        u
    });
    assert!(ann.totp_secret.is_none() && ann.recovery_codes.is_empty());

    // The last admin stays; another admin can take over.
    let out = run(&["--db", &db, "user", "remove", "root"]);
    out.assert_code(2);
    assert!(out.stderr.contains("only admin"), "{}", out.stderr);
    let out = run(&[
        "--db",
        &db,
        "user",
        "role",
        "root",
        "viewer",
        "--customer",
        "Contoso",
    ]);
    out.assert_code(2);
    run(&["--db", &db, "user", "role", "ann", "admin"]).assert_code(0);
    run(&["--db", &db, "user", "remove", "root"]).assert_code(0);

    // Every change is in the audit log, by the command line.
    let log = rt.block_on(async {
        let s = open(&db).await;
        let log = s.audit_log(100, None).await.unwrap();
        s.close().await;
        log
    });
    let got: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("customer-add", "Contoso"),
            ("user-add", "root"),
            ("user-add", "ann"),
            ("user-password", "ann"),
            ("user-role", "ann"),
            ("second-factor-off", "ann"),
            ("user-role", "ann"),
            ("user-remove", "root"),
        ]
    );
    assert!(log.iter().all(|e| e.actor == "command line"));
}

#[test]
fn the_first_admin_creates_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("new.db").display());
    let out = run_env(
        &["--db", &db, "user", "add", "--admin", "root"],
        &[(PW_ENV, "root password 1")],
        None,
    );
    out.assert_code(0);
    assert!(out.stderr.contains("created a new store"), "{}", out.stderr);
    // Reading commands still need the store to exist.
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    run(&["--db", &missing, "user", "list"]).assert_code(2);
}

/// With an admin in the store, `serve` listens beyond loopback without --public, and every
/// page but the public ones sends the browser to sign in.
#[test]
fn serve_with_an_admin_requires_sign_in_on_any_address() {
    let (dir, db) = store();
    run_env(
        &["--db", &db, "user", "add", "--admin", "root"],
        &[(PW_ENV, "root password 1")],
        None,
    )
    .assert_code(0);
    let Served {
        mut child, line, ..
    } = spawn_serve(&db, &["--listen", "0.0.0.0:0"], &[]);
    assert!(line.contains("sign-in required, 1 users"), "{line}");
    let port = line
        .split("portal on http://0.0.0.0:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("the address printed");
    // Reached through the loopback interface (nothing leaves the machine).
    let addr = format!("127.0.0.1:{port}");
    let (status, response) = http_get(&addr, "/");
    assert_eq!(status, 303, "{response}");
    assert!(response.contains("location: /login?next=%2F"), "{response}");
    let (status, response) = http_get(&addr, "/login");
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("name=\"password\""), "{response}");
    let (status, _) = http_get(&addr, "/healthz");
    assert_eq!(status, 200);
    let status = sigterm_and_wait(&mut child);
    assert_eq!(status.code(), Some(0));
    drop(dir);
}

/// What the command line changes in the inventory is in the audit log too, as made by the
/// `command line`.
#[test]
fn inventory_changes_are_in_the_audit_log() {
    let (_dir, db) = store();
    run(&["--db", &db, "customer", "set", "Contoso", "--notes", "VIP"]).assert_code(0);
    run(&[
        "--db",
        &db,
        "domain",
        "add",
        "contoso.example",
        "--customer",
        "Contoso",
    ])
    .assert_code(0);
    run(&[
        "--db",
        &db,
        "domain",
        "set",
        "contoso.example",
        "--tenant",
        "contoso",
    ])
    .assert_code(0);
    // A checklist item ticked on the command line.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = open(&db).await;
        let item = mailaudit_store::ChecklistItem {
            domain: "contoso.example".into(),
            key: "connectors-audit".into(),
            priority: 4,
            title: "Review the connectors".into(),
            state: mailaudit_store::ItemState::Open,
            by: None,
            at: None,
            updated_at: 1,
        };
        s.sync_checklist("contoso.example", &[item]).await.unwrap();
        s.close().await;
    });
    run(&[
        "--db",
        &db,
        "checklist",
        "contoso.example",
        "--done",
        "connectors-audit",
        "--by",
        "Ann",
    ])
    .assert_code(0);
    run(&["--db", &db, "domain", "remove", "contoso.example"]).assert_code(0);
    let log = rt.block_on(async {
        let s = open(&db).await;
        let log = s.audit_log(100, None).await.unwrap();
        s.close().await;
        log
    });
    let got: Vec<(&str, &str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.target.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("customer-add", "Contoso", ""),
            ("customer-set", "Contoso", "notes"),
            ("domain-add", "contoso.example", "Contoso"),
            ("domain-set", "contoso.example", "tenant"),
            (
                "checklist",
                "contoso.example connectors-audit",
                "done (by Ann)"
            ),
            ("domain-remove", "contoso.example", ""),
        ]
    );
    assert!(log.iter().all(|e| e.actor == "command line"));
}

/// Behind a reverse proxy: refused without an admin (the proxy would expose a portal without
/// sign-in); with one, the proxy's public host name is served and cookies are `Secure`.
#[test]
fn serve_behind_a_proxy_needs_an_admin_and_sets_secure_cookies() {
    use std::io::{Read, Write};
    let (dir, db) = store();
    let out = run(&[
        "--db",
        &db,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--behind-https-proxy",
    ]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("--behind-https-proxy") && out.stderr.contains("user add --admin"),
        "{}",
        out.stderr
    );
    run_env(
        &["--db", &db, "user", "add", "--admin", "root"],
        &[(PW_ENV, "root password 1")],
        None,
    )
    .assert_code(0);
    let Served {
        mut child, line, ..
    } = spawn_serve(
        &db,
        &["--listen", "127.0.0.1:0", "--behind-https-proxy"],
        &[],
    );
    let addr = line
        .split("portal on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("the address")
        .to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "GET /login HTTP/1.1\r\nHost: portal.msp.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .lines()
            .any(|l| l.starts_with("set-cookie: mailaudit_login=") && l.contains("; Secure")),
        "{response}"
    );
    assert_eq!(sigterm_and_wait(&mut child).code(), Some(0));
    drop(dir);
}

/// `serve --tls-cert --tls-key`: HTTPS with rustls (the address printed as https://), and a
/// key file others can read refused before anything listens.
#[test]
fn serve_over_tls_with_a_private_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, db) = store();
    run_env(
        &["--db", &db, "user", "add", "--admin", "root"],
        &[(PW_ENV, "root password 1")],
        None,
    )
    .assert_code(0);
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("portal.crt");
    let key = dir.path().join("portal.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let tls_args = [
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert_s.as_str(),
        "--tls-key",
        key_s.as_str(),
    ];
    let mut args = vec!["--db", db.as_str(), "serve"];
    args.extend(tls_args);
    let out = run(&args);
    out.assert_code(2);
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let Served {
        mut child, line, ..
    } = spawn_serve(&db, &tls_args, &[]);
    let addr = line
        .split("portal on https://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("an https address: {line}"))
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let response = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("a TLS handshake");
        tls.write_all(
            format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .lines()
            .any(|l| l.starts_with("set-cookie: mailaudit_login=") && l.contains("; Secure")),
        "{response}"
    );
    assert_eq!(sigterm_and_wait(&mut child).code(), Some(0));
}

/// A GET with a `Cookie:` header: the whole response, headers lower-cased by the portal.
fn get_with_cookie(addr: &str, path: &str, cookie: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
}

fn header_of<'r>(response: &'r str, name: &str) -> Option<&'r str> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `serve --oidc-issuer … --oidc-client-id …` with the secret in the environment: the sign-in
/// page offers single sign-on, and a user of --oidc-admins signs in through the lab provider
/// (its CA given with --oidc-ca-file) as an admin; without the secret, serve refuses to start.
#[test]
fn serve_with_single_sign_on_through_the_lab_provider() {
    const ID: &str = "0c9a7f3e-3333-4000-8000-00000000f00d";
    const SECRET: &str = "Lab~Oidc.Secret.cli-0123456789";
    let (dir, db) = store();
    run_env(
        &["--db", &db, "user", "add", "--admin", "root"],
        &[(PW_ENV, "root password 1")],
        None,
    )
    .assert_code(0);
    let lab = mailaudit_lab::oidc::LabOidc::start(ID, SECRET).unwrap();
    lab.set_user(Some(mailaudit_lab::oidc::LabUser {
        sub: "boss-sub".into(),
        email: "boss@contoso.example".into(),
        groups: vec![],
    }));
    let ca = dir.path().join("lab-ca.pem");
    std::fs::write(&ca, lab.ca_pem()).unwrap();
    let ca = ca.display().to_string();
    let flags = [
        "--listen",
        "127.0.0.1:0",
        "--oidc-issuer",
        lab.issuer(),
        "--oidc-client-id",
        ID,
        "--oidc-ca-file",
        ca.as_str(),
        "--oidc-admins",
        "boss@contoso.example",
    ];
    let mut args = vec!["--db", db.as_str(), "serve"];
    args.extend(flags);
    let out = run(&args);
    out.assert_code(2);
    assert!(
        out.stderr.contains("MAILAUDIT_OIDC_CLIENT_SECRET"),
        "{}",
        out.stderr
    );

    let Served {
        mut child, line, ..
    } = spawn_serve(&db, &flags, &[("MAILAUDIT_OIDC_CLIENT_SECRET", SECRET)]);
    assert!(line.contains("single sign-on"), "{line}");
    let addr = line
        .split("portal on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("the address")
        .to_string();
    let (status, page) = http_get(&addr, "/login");
    assert_eq!(status, 200);
    assert!(page.contains("Sign in with single sign-on"), "{page}");
    let start = get_with_cookie(&addr, "/login/sso", "");
    assert!(start.starts_with("HTTP/1.1 303"), "{start}");
    let state = header_of(&start, "set-cookie")
        .and_then(|c| c.strip_prefix("mailaudit_sso="))
        .and_then(|c| c.split(';').next())
        .expect("the state cookie")
        .to_string();
    let authorize = header_of(&start, "location").unwrap();
    let rest = authorize.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let back = get_with_cookie(host, path, "");
    let back = header_of(&back, "location")
        .expect("the provider redirects")
        .to_string();
    let callback = back
        .strip_prefix(&format!("http://{addr}"))
        .expect("back to the portal's own redirect URI");
    let done = get_with_cookie(&addr, callback, &format!("mailaudit_sso={state}"));
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    let session = done
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: mailaudit_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .find(|c| !c.is_empty())
        .expect("a session cookie");
    let admin = get_with_cookie(
        &addr,
        "/admin/users",
        &format!("mailaudit_session={session}"),
    );
    assert!(admin.starts_with("HTTP/1.1 200"), "{admin}");
    assert!(admin.contains("boss@contoso.example"), "{admin}");
    assert_eq!(sigterm_and_wait(&mut child).code(), Some(0));
    drop(dir);
}
