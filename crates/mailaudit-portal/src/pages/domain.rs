//! `/domains/{domain}`: one domain's findings, score history, checklist (with tick/reopen
//! forms that work without script) and remediation guide; `/domains/{domain}/guide`: the
//! printable guide (the core's self-contained HTML page); `POST
//! /domains/{domain}/checklist/{key}`: sets one item's state.

use std::fmt::Write as _;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, ReportView};
use mailaudit_store::ItemState;
use mailaudit_store::now;
use serde::Deserialize;

use super::fleet::score_class;
use super::{AppError, DomainPath, domain_page, find_domain};
use crate::Portal;
use crate::html::{Esc, check_href, datetime, domain_href, query_value, seg};
use crate::stored::{self, view_of};

/// How many stored audits the score history shows.
const HISTORY: i64 = 30;

/// Who a checklist change made in the portal is recorded as when the form names nobody.
pub const DEFAULT_BY: &str = "web portal";

/// `GET /domains/{domain}`.
pub async fn page(
    State(p): State<Portal>,
    DomainPath(raw): DomainPath,
) -> Result<Html<String>, AppError> {
    let d = find_domain(&p, &raw).await?;
    let name = d.name.as_str();
    let view = d.latest.as_ref().map(view_of).transpose()?;
    let mut b = String::new();

    // Heading and summary.
    let _ = writeln!(b, "<h1 id=\"domain-name\">{}</h1>", Esc(name));
    b.push_str("<dl class=\"facts\">");
    if let Some(e) = &d.entry {
        if let Some(c) = &e.customer {
            let _ = write!(
                b,
                "<dt>Customer</dt><dd><a href=\"/?customer={}\">{}</a></dd>",
                query_value(c),
                Esc(c)
            );
        }
        if let Some(t) = &e.tenant {
            let _ = write!(b, "<dt>Tenant</dt><dd>{}</dd>", Esc(t));
        }
        if e.parked {
            b.push_str("<dt>Parked</dt><dd>yes (sends and receives no mail)</dd>");
        }
    } else {
        b.push_str("<dt>Inventory</dt><dd>removed (its stored audits are kept)</dd>");
    }
    match (&d.latest, &view) {
        (Some(r), Some(v)) => {
            let score =
                v.score
                    .map_or("<span class=\"muted\">not scored</span>".to_string(), |s| {
                        format!(
                            "<span class=\"score {}\" id=\"score\">{s}</span>/100",
                            score_class(s)
                        )
                    });
            let _ = write!(
                b,
                "<dt>Score</dt><dd>{score}</dd><dt>Provider</dt><dd>{}</dd>\
                 <dt>DMARC policy</dt><dd>{}</dd><dt>Direct Send</dt><dd>{}</dd>\
                 <dt>Last audited</dt><dd>{} (run {})</dd>",
                Esc(&v.provider),
                v.dmarc
                    .policy
                    .as_deref()
                    .map_or("none applies".to_string(), |p| format!("p={}", Esc(p))),
                Esc(&v.relay.verdict.replace('_', " ")),
                Esc(&datetime(r.audited_at)),
                r.run_id
            );
        }
        _ => b.push_str("<dt>Last audited</dt><dd>never</dd>"),
    }
    b.push_str("</dl>\n");

    let Some(view) = view else {
        let _ = writeln!(
            b,
            "<p>Not audited yet: run <code>mailaudit audit {}</code>.</p>",
            Esc(name)
        );
        checklist(&p, name, None, &mut b).await?;
        return Ok(domain_page(name, "", name, &b));
    };

    findings(&mut b, "findings", "Findings", &view.findings);
    let tenant = stored::tenant_findings(p.store.as_ref(), name).await?;
    if !tenant.is_empty() {
        findings(
            &mut b,
            "tenant-findings",
            "Exchange Online (latest tenant import)",
            &tenant,
        );
    }
    history(&p, name, &mut b).await?;
    checklist(&p, name, Some(&view), &mut b).await?;
    let g = stored::guide_for(p.store.as_ref(), name, view, now(), None).await?;
    let _ = writeln!(
        b,
        "<section id=\"guide\" class=\"guide\">\n{}</section>",
        guide::render_html_fragment(&g)
    );
    Ok(domain_page(name, "", name, &b))
}

fn findings(b: &mut String, id: &str, title: &str, list: &[Finding]) {
    let _ = writeln!(b, "<section id=\"{id}\"><h2>{}</h2>", Esc(title));
    if list.is_empty() {
        b.push_str("<p>No findings.</p></section>\n");
        return;
    }
    b.push_str(
        "<table class=\"findings\"><thead><tr><th>Severity</th><th>Check</th><th>Title</th>\
         <th>Detail</th><th>Evidence</th></tr></thead><tbody>\n",
    );
    for f in list {
        let id = f.id.as_str();
        let evidence = f.evidence.as_deref().map_or(String::new(), |e| {
            format!("<pre class=\"evidence\">{}</pre>", Esc(e))
        });
        let _ = writeln!(
            b,
            "<tr class=\"finding\" data-check=\"{id}\"><td><span class=\"sev sev-{sev}\">{sev}</span>\
             </td><td><a class=\"check\" href=\"{href}\">{id}</a></td><td>{title}</td>\
             <td class=\"detail\">{detail}</td><td>{evidence}</td></tr>",
            sev = f.severity,
            href = check_href(id),
            title = Esc(&f.title),
            detail = Esc(&f.detail),
        );
    }
    b.push_str("</tbody></table></section>\n");
}

async fn history(p: &Portal, name: &str, b: &mut String) -> Result<(), AppError> {
    let results = p.store.history(name, HISTORY).await?;
    let _ = writeln!(
        b,
        "<section id=\"history\"><h2>Score history</h2>\
         <table class=\"history\"><thead><tr><th>Audited</th><th>Run</th><th>Score</th>\
         <th>Changes since the audit before</th></tr></thead><tbody>"
    );
    for e in stored::history_entries(&results) {
        let score = e.score.map_or("n/a".to_string(), |s| s.to_string());
        let meter = e.score.map_or(String::new(), |s| {
            format!(" <meter min=\"0\" max=\"100\" low=\"50\" high=\"80\" optimum=\"100\" value=\"{s}\"></meter>")
        });
        let mut changes = Vec::new();
        if let Some(d) = &e.diff {
            for (label, list) in [
                ("new", &d.new),
                ("regressed", &d.regressed),
                ("fixed", &d.fixed),
            ] {
                if !list.is_empty() {
                    let ids: Vec<String> = list
                        .iter()
                        .map(|f| {
                            format!(
                                "<a href=\"{}\">{}</a>",
                                check_href(f.id.as_str()),
                                f.id.as_str()
                            )
                        })
                        .collect();
                    changes.push(format!("{label}: {}", ids.join(", ")));
                }
            }
            for c in &d.changes {
                let v = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
                changes.push(format!(
                    "{}: {} → {}",
                    Esc(c.what),
                    Esc(&v(&c.before)),
                    Esc(&v(&c.after))
                ));
            }
            if changes.is_empty() {
                changes.push("no change".into());
            }
        }
        let _ = writeln!(
            b,
            "<tr><td class=\"when\">{}</td><td>{}</td><td class=\"score-cell\">{score}{meter}</td>\
             <td>{}</td></tr>",
            Esc(&datetime(e.audited_at)),
            e.run_id,
            changes.join("; ")
        );
    }
    b.push_str("</tbody></table></section>\n");
    Ok(())
}

/// The checklist with its forms. An item marked done by hand that the latest audit (`latest`)
/// contradicts (the rule of `mailaudit checklist --done`: `guide::check_manual_done`) is
/// accepted, as `--force` does, and carries a warning with the evidence: the next audit will
/// reopen it.
async fn checklist(
    p: &Portal,
    name: &str,
    latest: Option<&ReportView>,
    b: &mut String,
) -> Result<(), AppError> {
    let items = p.store.checklist(name).await?;
    let done = items.iter().filter(|i| i.state == ItemState::Done).count();
    let _ = writeln!(
        b,
        "<section id=\"checklist\"><h2>Checklist <span class=\"muted\" id=\"checklist-progress\">\
         {done}/{} done</span></h2>",
        items.len()
    );
    if items.is_empty() {
        b.push_str("<p>No checklist yet: it is made by the first audit.</p></section>\n");
        return Ok(());
    }
    b.push_str(
        "<table class=\"checklist\"><thead><tr><th></th><th>Priority</th><th>Item</th>\
         <th>Key</th><th>Last change</th><th></th></tr></thead><tbody>\n",
    );
    for i in &items {
        let (mark, to, label) = match i.state {
            ItemState::Done => ("☑", "open", "Reopen"),
            ItemState::Open => ("☐", "done", "Mark done"),
        };
        let mut who = match (&i.by, i.at) {
            (Some(by), Some(at)) => format!("{}, {}", Esc(by), Esc(&datetime(at))),
            _ => String::new(),
        };
        if i.state == ItemState::Done
            && let Some(Err(c)) = latest.map(|v| guide::check_manual_done(&i.key, v))
        {
            let _ = write!(
                who,
                "<p class=\"warn contradicted\">The latest audit still shows: {}. The next \
                 audit will reopen this item.</p>",
                Esc(&c.evidence_text())
            );
        }
        let _ = writeln!(
            b,
            "<tr id=\"item-{key_seg}\" class=\"item {state}\" data-key=\"{key}\" data-state=\"{state}\">\
             <td class=\"mark\">{mark}</td><td>P{prio}</td><td>{title}</td><td><code>{key}</code></td>\
             <td class=\"who\">{who}</td><td><form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"state\" value=\"{to}\">\
             <input type=\"text\" name=\"by\" placeholder=\"your name\" maxlength=\"100\" \
             aria-label=\"your name\" size=\"10\"> <button type=\"submit\">{label}</button></form></td></tr>",
            key_seg = seg(&i.key),
            state = i.state.as_str(),
            key = Esc(&i.key),
            prio = i.priority,
            title = Esc(&i.title),
            action = domain_href(name, &format!("/checklist/{}", seg(&i.key))),
        );
    }
    b.push_str("</tbody></table></section>\n");
    Ok(())
}

/// `GET /domains/{domain}/guide`: the core's self-contained HTML guide (print it, save it,
/// mail it).
pub async fn guide_page(
    State(p): State<Portal>,
    DomainPath(raw): DomainPath,
) -> Result<Response, AppError> {
    let d = find_domain(&p, &raw).await?;
    let Some(latest) = &d.latest else {
        return Err(AppError::NotFound(format!(
            "A stored audit of {} (run `mailaudit audit {}` first); its guide was",
            d.name, d.name
        )));
    };
    let view: ReportView = view_of(latest)?;
    let g = stored::guide_for(p.store.as_ref(), &d.name, view, now(), None).await?;
    let mut res = Html(guide::render_html(&g)).into_response();
    // The page carries its own inline style (and a meta policy saying so).
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    Ok(res)
}

/// The checklist form.
#[derive(Debug, Deserialize)]
pub struct ItemForm {
    /// `done` or `open`.
    pub state: String,
    /// Who (optional; [`DEFAULT_BY`] when empty).
    pub by: Option<String>,
}

/// `POST /domains/{domain}/checklist/{key}`: sets the item's state through
/// `Store::set_item_state` (as `mailaudit checklist --done/--reopen`), then back to the page.
/// Refused (403) when the browser says the form came from another origin.
pub async fn set_item(
    State(p): State<Portal>,
    Path((raw, key)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<ItemForm>, FormRejection>,
) -> Result<Response, AppError> {
    if let Some(why) = cross_origin(&headers) {
        return Err(AppError::Forbidden(why));
    }
    let Ok(Form(form)) = form else {
        return Err(AppError::BadRequest(
            "expected a form with state=done or state=open".into(),
        ));
    };
    let Some(state) = ItemState::parse(form.state.trim()) else {
        return Err(AppError::BadRequest(format!(
            "unknown state {:?}: expected done or open",
            form.state
        )));
    };
    let by: String = form
        .by
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let by = match by.trim() {
        "" => DEFAULT_BY.to_string(),
        b => b.to_string(),
    };
    let d = find_domain(&p, &raw).await?;
    p.store
        .set_item_state(&d.name, &key, state, &by, now())
        .await?;
    let to = format!("{}#item-{}", domain_href(&d.name, ""), seg(&key));
    Ok(Redirect::to(&to).into_response())
}

/// Why a state-changing request is refused as cross-site, if it is: an `Origin` that is not
/// `http(s)://<Host>`, or `Sec-Fetch-Site: cross-site`.
fn cross_origin(headers: &HeaderMap) -> Option<String> {
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return Some("cross-site form submissions are refused".into());
    }
    let origin = get(header::ORIGIN)?;
    let host = get(header::HOST).unwrap_or("");
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host));
    (!same).then(|| format!("a form from {origin} may not change this portal"))
}
