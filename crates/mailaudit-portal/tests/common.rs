//! The portal under test: a temporary SQLite store filled through the `Store` API with real
//! audit results (the core's `audit_domain` over `MemoryDns`), the portal serving it on
//! 127.0.0.1 with an ephemeral port, a raw HTTP/1.1 client (so tests can send any `Host:` or
//! `Origin:`), and a real headless Chromium driven through chromedriver (WebDriver).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mailaudit_app::stored::guide_context;
use mailaudit_core::audit::{AuditOptions, audit_domain};
use mailaudit_core::guide::{self, ReportView};
use mailaudit_core::memory::{MemoryDns, Rr};
use mailaudit_portal::PortalOptions;
use mailaudit_store::{AggregateRow, ChecklistItem, NewDomain, NewReport, RunStatus, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The customer of the ordinary domains.
pub(crate) const CUSTOMER: &str = "Contoso Legal";
/// A customer name made to break out of HTML.
pub(crate) const HOSTILE_CUSTOMER: &str = "<b id=\"injected-customer\">Evil</b> & Co";
/// A domain name made to break out of HTML (the store accepts any name without white space).
pub(crate) const HOSTILE_DOMAIN: &str = "<script>alert(1)</script>.example";
/// A finding detail made to break out of HTML.
pub(crate) const HOSTILE_DETAIL: &str =
    "<img id=\"injected\" src=\"x\" onerror=\"alert(2)\"></td></tr><script>alert(3)</script>";
/// A report sender's name made to break out of HTML.
pub(crate) const HOSTILE_REPORTER: &str = "<i id=\"injected-reporter\">Evil reporter</i>";
/// The stored raw file of the fixture's TLS report: markup a browser must never render.
pub(crate) const TLS_RAW: &str = "{\"organization-name\":\"<script>alert(1)</script>\"}";
/// Evidence made to break out of HTML.
pub(crate) const HOSTILE_EVIDENCE: &str = "v=spf1 \"><svg id=\"injected-svg\" onload=\"alert(4)\">";

/// Seconds in a day.
const DAY: i64 = 86_400;

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A realistic Microsoft 365 domain: M365 MX, SPF with `~all`, DMARC as given (None: none).
fn m365_zone(domain: &str, dmarc: Option<&str>) -> MemoryDns {
    let label = domain.replace('.', "-");
    let mut dns = MemoryDns::new()
        .with(
            domain,
            Rr::Mx(0, format!("{label}.mail.protection.outlook.com")),
        )
        .txt_at(domain, "v=spf1 include:spf.protection.outlook.com ~all")
        .txt_at(
            "spf.protection.outlook.com",
            "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 -all",
        )
        .with(
            &format!("{label}.mail.protection.outlook.com"),
            Rr::A(Ipv4Addr::new(192, 0, 2, 25)),
        );
    if let Some(d) = dmarc {
        dns.add(&format!("_dmarc.{domain}"), Rr::Txt(d.to_string()));
    }
    dns
}

/// Audits `domain` over `dns` and records it in a new run at `at`, with its checklist, as
/// `mailaudit audit` does (the guide's items synced into the store).
async fn record(store: &dyn Store, dns: &MemoryDns, domain: &str, at: i64) -> Value {
    let report = audit_domain(dns, domain, &AuditOptions::default()).await;
    let json = serde_json::to_value(&report).expect("the report serialises");
    record_json(store, domain, &json, report.score.map(i64::from), at).await;
    json
}

/// Records a report's JSON in a new run at `at` and syncs the checklist its guide gives.
pub(crate) async fn record_json(
    store: &dyn Store,
    domain: &str,
    json: &Value,
    score: Option<i64>,
    at: i64,
) {
    let run = store.begin_run("cli", at).await.expect("begin run");
    store
        .record_result(run, domain, at, score, json)
        .await
        .expect("record result");
    store
        .finish_run(run, RunStatus::Complete, at)
        .await
        .expect("finish run");
    let view = ReportView::from_json(json).expect("a readable report");
    let entry = store.domain(domain).await.ok();
    let g = guide::build(&view, &guide_context(entry.as_ref(), None, at, None));
    let items = ChecklistItem::open_items(domain, &g, at);
    store
        .sync_checklist(domain, &items)
        .await
        .expect("sync checklist");
}

/// The scores the fixture fleet recorded, by domain.
#[derive(Debug, Clone)]
pub(crate) struct Fleet {
    pub(crate) scores: Vec<(String, Option<u8>)>,
}

/// Fills the store: one customer with three domains (one audited twice, DMARC added between
/// the audits; one without SPF or DMARC; one never audited) and a hostile customer with a
/// hostile domain whose stored audit carries hostile details.
pub(crate) async fn populate(store: &dyn Store) -> Fleet {
    store
        .add_customer(CUSTOMER, "it@contoso.example", "")
        .await
        .expect("customer");
    store
        .add_customer(HOSTILE_CUSTOMER, "", "")
        .await
        .expect("hostile customer");
    for (name, customer) in [
        ("contoso.example", CUSTOMER),
        ("fabrikam.example", CUSTOMER),
        ("unaudited.example", CUSTOMER),
        (HOSTILE_DOMAIN, HOSTILE_CUSTOMER),
    ] {
        store
            .upsert_domain(&NewDomain {
                name: name.into(),
                customer: Some(customer.into()),
                tenant: Some("contoso".into()),
                ..NewDomain::default()
            })
            .await
            .expect("domain");
    }
    let t0 = now() - 7 * DAY;
    // contoso.example: first without DMARC, then with p=none and a report address.
    record(
        store,
        &m365_zone("contoso.example", None),
        "contoso.example",
        t0,
    )
    .await;
    let contoso = record(
        store,
        &m365_zone(
            "contoso.example",
            Some("v=DMARC1; p=none; rua=mailto:dmarc@contoso.example"),
        ),
        "contoso.example",
        now() - 60,
    )
    .await;
    // fabrikam.example: nothing published for mail (it exists: a web host below it).
    let fabrikam_dns = MemoryDns::new().with("www.fabrikam.example", Rr::A([192, 0, 2, 80].into()));
    let fabrikam = record(store, &fabrikam_dns, "fabrikam.example", now() - 120).await;
    // The hostile domain: a real report, renamed, with hostile text in a finding.
    let mut hostile = contoso.clone();
    hostile["domain"] = json!(HOSTILE_DOMAIN);
    hostile["findings"]
        .as_array_mut()
        .expect("findings")
        .insert(
            0,
            json!({"id": "SPF-SYNTAX", "area": "spf", "severity": "critical",
                   "title": "SPF record does not parse (permerror)",
                   "detail": HOSTILE_DETAIL, "evidence": HOSTILE_EVIDENCE, "fix": "<b>fix</b>"}),
        );
    record_json(store, HOSTILE_DOMAIN, &hostile, Some(12), now() - 30).await;
    reports(store).await;
    let score = |v: &Value| v["score"].as_u64().and_then(|s| u8::try_from(s).ok());
    Fleet {
        scores: vec![
            ("contoso.example".into(), score(&contoso)),
            ("fabrikam.example".into(), score(&fabrikam)),
        ],
    }
}

/// A running portal over its own temporary store.
pub(crate) struct Portal {
    pub(crate) addr: SocketAddr,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) fleet: Fleet,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), mailaudit_portal::PortalError>>>,
    _dir: tempfile::TempDir,
}

impl Portal {
    /// A populated store and the portal serving it on 127.0.0.1:0.
    pub(crate) async fn start(options: PortalOptions) -> Portal {
        Portal::start_with(options, mailaudit_portal::Connections::default()).await
    }

    /// A populated store and the portal serving it on 127.0.0.1:0 as `conn` says (TLS,
    /// limits).
    pub(crate) async fn start_with(
        options: PortalOptions,
        conn: mailaudit_portal::Connections,
    ) -> Portal {
        Portal::start_sso(options, conn, |_| None).await
    }

    /// [`Portal::start_with`], with the single sign-on `sso` makes from the portal's address.
    pub(crate) async fn start_sso(
        options: PortalOptions,
        conn: mailaudit_portal::Connections,
        sso: impl FnOnce(SocketAddr) -> Option<mailaudit_portal::sso::Sso>,
    ) -> Portal {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("portal.db").display());
        let store: Arc<dyn Store> = Arc::from(
            mailaudit_store::open(Some(&url))
                .await
                .expect("open the store"),
        );
        let fleet = populate(store.as_ref()).await;
        let addr = mailaudit_portal::check_listen("127.0.0.1:0", false, false).expect("loopback");
        let listener = mailaudit_portal::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut portal = mailaudit_portal::Portal::new(store.clone(), options);
        if let Some(sso) = sso(addr) {
            portal = portal.with_sso(sso);
        }
        let task = tokio::spawn(mailaudit_portal::serve_portal(
            listener,
            portal,
            conn,
            async move {
                let _ = stopped.await;
            },
        ));
        Portal {
            addr,
            store,
            fleet,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A populated store with portal users ([`USERS`]), served with `options`: everyone
    /// signs in.
    pub(crate) async fn start_with_users(options: PortalOptions) -> Portal {
        let p = Portal::start(options).await;
        add_users(p.store.as_ref()).await;
        p
    }

    /// Signs `user` in through the login form, as a browser would: the form's token and
    /// cookie, then the post; the session's cookie and CSRF token.
    pub(crate) async fn login(&self, user: &str, password: &str) -> Session {
        self.login_to(user, password, "/").await
    }

    /// [`Portal::login`], reading the CSRF token from the page at `path`.
    pub(crate) async fn login_to(&self, user: &str, password: &str, path: &str) -> Session {
        let r = self.try_login(user, password, None).await;
        assert_eq!(r.status, 303, "{user} signs in: {}", r.body);
        let cookie = set_cookie(&r, SESSION_COOKIE).expect("a session cookie");
        let mut s = Session {
            cookie: format!("{SESSION_COOKIE}={cookie}"),
            csrf: String::new(),
        };
        let page = self.get_as(&s, path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        s.csrf = hidden(&page.body, "csrf").expect("the page's forms carry a CSRF token");
        s
    }

    /// Posts the login form (fetched first, for its token and cookie), with an extra `Cookie:`
    /// value (a session the browser already had) when given.
    pub(crate) async fn try_login(
        &self,
        user: &str,
        password: &str,
        extra: Option<&str>,
    ) -> Response {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let nonce = hidden(&form.body, "csrf").expect("the login form's token");
        let login_cookie = set_cookie(&form, LOGIN_COOKIE).expect("the login form's cookie");
        let mut cookie = format!("{LOGIN_COOKIE}={login_cookie}");
        if let Some(e) = extra {
            cookie.push_str("; ");
            cookie.push_str(e);
        }
        let body = format!(
            "csrf={}&next=%2F&name={}&password={}",
            enc(&nonce),
            enc(user),
            enc(password)
        );
        self.request(
            "POST",
            "/login",
            &[("Cookie", cookie.as_str())],
            Some(&body),
        )
        .await
    }

    /// `GET path` in a session.
    pub(crate) async fn get_as(&self, s: &Session, path: &str) -> Response {
        self.request("GET", path, &[("Cookie", s.cookie.as_str())], None)
            .await
    }

    /// `POST path` in a session, from the portal's origin, with the session's CSRF token added
    /// to `body`.
    pub(crate) async fn post_as(&self, s: &Session, path: &str, body: &str) -> Response {
        let origin = format!("http://{}", self.addr);
        let body = format!("csrf={}&{body}", enc(&s.csrf));
        self.request(
            "POST",
            path,
            &[("Cookie", s.cookie.as_str()), ("Origin", origin.as_str())],
            Some(&body),
        )
        .await
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server (graceful shutdown) and checks it ended cleanly.
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("the portal stops within 10 s")
                .expect("the server task does not panic")
                .expect("the server ends without error");
        }
    }

    /// A raw HTTP/1.1 request (`Connection: close`); `headers` are added as given (a `Host:`
    /// among them replaces the default one).
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        let mut conn = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect to the portal");
        conn.write_all(req.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut raw))
            .await
            .expect("the portal answers within 20 s")
            .expect("read the response");
        Response::parse(&raw)
    }

    /// `POST path` with a form `body`, from the portal's own origin, without a session.
    pub(crate) async fn post_form(&self, path: &str, body: &str) -> Response {
        let origin = format!("http://{}", self.addr);
        self.request("POST", path, &[("Origin", origin.as_str())], Some(body))
            .await
    }

    /// `POST path` with a multipart body carrying `files` (`(file name, content)`) in the
    /// field `file`, from the portal's own origin, in `session` when given (its CSRF token,
    /// as for an upload, belongs in `path`).
    pub(crate) async fn post_files(
        &self,
        path: &str,
        files: &[(&str, &str)],
        session: Option<&Session>,
    ) -> Response {
        const BOUNDARY: &str = "mailaudit-test-boundary";
        let mut body = String::new();
        for (name, content) in files {
            body.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{name}\"\r\n\r\n{content}\r\n"
            ));
        }
        body.push_str(&format!("--{BOUNDARY}--\r\n"));
        let origin = format!("http://{}", self.addr);
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let mut headers = vec![
            ("Origin", origin.as_str()),
            ("Content-Type", content_type.as_str()),
        ];
        if let Some(s) = session {
            headers.push(("Cookie", s.cookie.as_str()));
        }
        self.request("POST", path, &headers, Some(&body)).await
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None).await
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "mailaudit_session";
/// The login form's cookie.
pub(crate) const LOGIN_COOKIE: &str = "mailaudit_login";

/// The portal users of [`Portal::start_with_users`]: `(name, role, customers, password)`.
pub(crate) const USERS: &[(&str, mailaudit_store::Role, &[&str], &str)] = &[
    ("root", mailaudit_store::Role::Admin, &[], "root password 1"),
    (
        "tech",
        mailaudit_store::Role::Technician,
        &[],
        "tech password 1",
    ),
    (
        "ann",
        mailaudit_store::Role::Viewer,
        &[CUSTOMER],
        "ann password 12",
    ),
    (
        "eve",
        mailaudit_store::Role::Viewer,
        &[HOSTILE_CUSTOMER],
        "eve password 12",
    ),
];

/// The password of a user of [`USERS`].
pub(crate) fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|u| u.0 == user)
        .map(|u| u.3)
        .expect("a test user")
}

/// Adds [`USERS`] to the store, as `mailaudit user add` does.
pub(crate) async fn add_users(store: &dyn Store) {
    for (name, role, customers, password) in USERS {
        let customers: Vec<String> = customers.iter().map(|c| c.to_string()).collect();
        mailaudit_app::accounts::add_user(
            store,
            &mailaudit_app::accounts::Actor::cli(),
            name,
            *role,
            &customers,
            Some(password),
            now(),
        )
        .await
        .expect("add a user");
    }
}

/// A signed-in session: its `Cookie:` value and CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// `s` percent-encoded for a form body.
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value a response's `Set-Cookie:` gives `name`.
pub(crate) fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next()?.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The whole `Set-Cookie:` header that sets `name`.
pub(crate) fn set_cookie_header<'r>(r: &'r Response, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The value of the first hidden input `name` of a page.
pub(crate) fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("type=\"hidden\" name=\"{name}\" value=\""))?;
    let rest = &body[at..];
    let start = rest.find("value=\"")? + 7;
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A headless Chromium driven through its own chromedriver on an ephemeral port, with a fresh
/// profile. Chromium runs with the flags that keep it off the network. Dropping it (also when a
/// test panics) stops chromedriver and every Chromium process of this profile.
pub(crate) struct Browser {
    pub(crate) client: fantoccini::Client,
    _driver: Driver,
}

/// The chromedriver child and the profile directory; on drop, kills chromedriver and then the
/// Chromium processes started with this profile (found by their `--user-data-dir`).
struct Driver {
    child: Child,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let flag = format!("--user-data-dir={}", self.profile.path().display());
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
                continue;
            };
            if cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

impl Browser {
    /// A headless Chromium, or `None` when it cannot start and `MAILAUDIT_SKIP_BROWSER` is set:
    /// the lab's skip-or-fail policy ([`mailaudit_lab::or_skip`]), as for Postfix and Dovecot.
    /// Without the variable (CI never sets it) a browser that cannot start fails the test,
    /// saying how to install it.
    pub(crate) async fn start() -> Option<Browser> {
        mailaudit_lab::or_skip(Browser::try_start().await, "MAILAUDIT_SKIP_BROWSER")
    }

    async fn try_start() -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
        let mut child = Command::new("/usr/bin/chromedriver")
            .arg("--port=0")
            // Chromium's crash-report database and caches go under the profile too.
            .env("XDG_CONFIG_HOME", profile.path().join("config"))
            .env("XDG_CACHE_HOME", profile.path().join("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "chromedriver does not start (Debian package chromium-driver; \
                     scripts/install-test-deps.sh): {e}"
                )
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let driver = Driver { child, profile };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "ChromeDriver was started successfully on port 41335."
                if let Some(rest) = line.split("started successfully on port ").nth(1)
                    && let Ok(port) = rest.trim_end_matches('.').trim().parse::<u16>()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "chromedriver did not report its port within 30 s".to_string())?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", driver.profile.path().display()),
                    "--window-size=1280,1000",
                ],
            }),
        );
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .map_err(|e| {
            format!("no Chromium session through chromedriver (Debian package chromium): {e}")
        })?;
        Ok(Browser {
            client,
            _driver: driver,
        })
    }

    /// Ends the session (Chromium exits); dropping stops chromedriver.
    pub(crate) async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Stores DMARC aggregate and SMTP TLS reports for contoso.example, as `reports ingest` would:
/// 21 days of Microsoft 365 mail signed and aligned (one report a day, one from a reporter with
/// a hostile name), and one TLS report with expired-certificate failures.
async fn reports(store: &dyn Store) {
    let today = now().div_euclid(DAY) * DAY;
    for day in 1..=21i64 {
        let begin = today - day * DAY;
        let n = u8::try_from(day).expect("small");
        let report = NewReport {
            kind: mailaudit_store::ReportKind::Aggregate,
            reporter: if day == 1 {
                HOSTILE_REPORTER.into()
            } else {
                "google.com".into()
            },
            report_id: format!("agg-{day}"),
            policy_domain: "contoso.example".into(),
            begin,
            end: begin + DAY - 1,
            content_hash: format!("{n:02x}").repeat(32),
            source: format!("google.com!contoso.example!{begin}.xml.gz"),
            raw: vec![n].into(),
            parsed: serde_json::value::to_raw_value(&json!({})).unwrap(),
            problems: json!([]),
            rows: vec![AggregateRow {
                source_ip: "40.107.1.1".into(),
                count: 100,
                disposition: "none".into(),
                dkim_aligned: "pass".into(),
                spf_aligned: "pass".into(),
                header_from: "contoso.example".into(),
                envelope_from: "contoso.example".into(),
                dkim_domains: "contoso.example,contoso.onmicrosoft.com".into(),
                dkim_results: "pass,pass".into(),
                spf_domains: "contoso.example".into(),
                spf_results: "pass".into(),
            }],
        };
        store.ingest_report(&report, now()).await.expect("ingest");
    }
    let begin = today - 2 * DAY;
    let tls = json!({
        "organization-name": "Microsoft Corporation", "report-id": "tls-1",
        "date-range": {"start-datetime": "2026-01-01T00:00:00Z", "end-datetime": "2026-01-01T23:59:59Z"},
        "policies": [{
            "policy": {"policy-type": "sts", "policy-domain": "contoso.example"},
            "summary": {"total-successful-session-count": 95, "total-failure-session-count": 5},
            "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "2001:db8::25",
                                 "receiving-mx-hostname": "mx1.contoso.example", "failed-session-count": 5}]
        }]
    });
    let report = NewReport {
        kind: mailaudit_store::ReportKind::SmtpTls,
        reporter: "Microsoft Corporation".into(),
        report_id: "tls-1".into(),
        policy_domain: "contoso.example".into(),
        begin,
        end: begin + DAY - 1,
        content_hash: "ee".repeat(32),
        source: "tls.json".into(),
        raw: TLS_RAW.as_bytes().to_vec().into(),
        parsed: serde_json::value::to_raw_value(&tls).unwrap(),
        problems: json!([]),
        rows: Vec::new(),
    };
    store
        .ingest_report(&report, now())
        .await
        .expect("ingest TLS");
}
