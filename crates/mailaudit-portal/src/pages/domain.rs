//! `/domains/{domain}`: one domain's findings, score history, checklist (with tick/reopen
//! forms that work without script) and remediation guide; `/domains/{domain}/guide`: the
//! printable guide (a self-contained HTML page, [`crate::guide_html`]); `POST
//! /domains/{domain}/checklist/{key}`: sets one item's state.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, ReportView};
use mailaudit_store::ItemState;
use mailaudit_store::now;
use maud::{Markup, html};
use serde::Deserialize;

use super::fleet::score_class;
use super::{AppError, DomainPath, domain_page};
use crate::Portal;
use crate::access::{Caller, FoundDomain};
use crate::html::{check_href, csrf_field, datetime, domain_href, query_value, seg};
use crate::{dane_html, guide_html};
use mailaudit_app::stored::{self, view_of};

/// How many stored audits the score history shows.
const HISTORY: i64 = 30;

/// Who a checklist change made in the portal is recorded as when the form names nobody.
pub const DEFAULT_BY: &str = "web portal";

/// `GET /domains/{domain}`.
pub async fn page(
    State(p): State<Portal>,
    caller: Caller,
    DomainPath(raw): DomainPath,
) -> Result<Html<String>, AppError> {
    let d = p.reads(&caller).domain(&raw).await?;
    let store = d.store();
    let name = d.name.as_str();
    let view = d.latest.as_ref().map(view_of).transpose()?;

    // Heading and summary.
    let head = html! {
        h1 id="domain-name" { (name) } "\n"
        (super::runs::audit_button(&caller, "domain", name, "Audit now"))
        dl class="facts" {
            @if let Some(e) = &d.entry {
                @if let Some(c) = &e.customer {
                    dt { "Customer" } dd { a href={ "/?customer=" (query_value(c)) } { (c) } }
                }
                @if let Some(t) = &e.tenant { dt { "Tenant" } dd { (t) } }
                @if e.parked { dt { "Parked" } dd { "yes (sends and receives no mail)" } }
            } @else {
                dt { "Inventory" } dd { "removed (its stored audits are kept)" }
            }
            @match (&d.latest, &view) {
                (Some(r), Some(v)) => {
                    dt { "Score" }
                    dd {
                        @match v.score {
                            Some(s) => {
                                span class={ "score " (score_class(s)) } id="score" { (s) } "/100"
                            }
                            None => span class="muted" { "not scored" },
                        }
                    }
                    dt { "Provider" } dd { (v.provider) }
                    dt { "DMARC policy" }
                    dd {
                        @match v.dmarc.policy.as_deref() {
                            Some(p) => { "p=" (p) }
                            None => "none applies",
                        }
                    }
                    dt { "Direct Send" } dd { (v.relay.verdict.replace('_', " ")) }
                    dt { "DNSSEC" }
                    dd id="dnssec-status" {
                        @match &v.dnssec {
                            Some(d) => (dane_html::security_word(d.domain)),
                            None => span class="muted" { "not validated" },
                        }
                    }
                    dt { "Last audited" } dd { (datetime(r.audited_at)) " (run " (r.run_id) ")" }
                }
                _ => { dt { "Last audited" } dd { "never" } }
            }
        }
        "\n"
    };

    let Some(view) = view else {
        let checklist = checklist(&d, &caller, None).await?;
        let b = html! {
            (head)
            p { "Not audited yet: run " code { "mailaudit audit " (name) } "." } "\n"
            (checklist)
        };
        return Ok(domain_page(name, "", name, b));
    };

    let own = findings("findings", "Findings", &view.findings);
    let tree = spf_tree(&view.spf);
    let dane = view.dnssec.as_ref().map(dane_html::section);
    let tenant = stored::tenant_findings(store, name).await?;
    let history = history(&d).await?;
    let phase = dmarc_phase(&d, &caller).await?;
    let edit = edit_form(&d, &caller, &p).await?;
    let checklist = checklist(&d, &caller, Some(&view)).await?;
    let g = stored::guide_for(store, name, view, now(), None).await?;
    let b = html! {
        (head)
        (own)
        (tree)
        @if let Some(d) = dane { (d) }
        @if !tenant.is_empty() {
            (findings("tenant-findings", "Exchange Online (latest tenant import)", &tenant))
        }
        (history)
        (phase)
        (edit)
        (checklist)
        section id="guide" class="guide" {
            "\n"
            (guide_html::fragment(&g))
        }
        "\n"
    };
    Ok(domain_page(name, "", name, b))
}

/// The domain's inventory entry as a form (for those who may write): customer, parked,
/// tenant, Microsoft 365 endpoint.
async fn edit_form(d: &FoundDomain<'_>, caller: &Caller, p: &Portal) -> Result<Markup, AppError> {
    let (Some(e), true) = (&d.entry, caller.may_write()) else {
        return Ok(html! {});
    };
    let customers = p.reads(caller).customers().await?;
    Ok(html! {
        section id="inventory" {
            details {
                summary { "Edit the inventory entry" }
                form method="post" action=(domain_href(&d.name, "/edit")) {
                    (csrf_field())
                    label {
                        "Customer "
                        select name="customer" {
                            option value="" { "None" }
                            @for c in &customers {
                                option value=(c.name) selected[e.customer.as_deref() == Some(c.name.as_str())] { (c.name) }
                            }
                        }
                    }
                    " " label { input type="checkbox" name="parked" value="yes" checked[e.parked]; " parked" }
                    " " label { "Tenant " input name="tenant" value=(e.tenant.as_deref().unwrap_or("")) maxlength="200"; }
                    " " label { "Microsoft 365 endpoint " input name="m365_endpoint" value=(e.m365_endpoint.as_deref().unwrap_or("")) maxlength="253" size="40"; }
                    " " button type="submit" { "Save" }
                }
            }
        }
        "\n"
    })
}

/// The DMARC roll-out: the phase recorded and since when, and (for those who may write) a
/// form that moves it.
async fn dmarc_phase(d: &FoundDomain<'_>, caller: &Caller) -> Result<Markup, AppError> {
    let rollout = d.store().dmarc_rollout(&d.name).await?;
    let current = rollout.as_ref().map(|r| r.phase.as_str());
    Ok(html! {
        section id="dmarc-phase" {
            h2 { "DMARC roll-out" }
            p {
                @match &rollout {
                    Some(r) => { "Phase " strong id="phase" { "p=" (r.phase) } " since " (datetime(r.started_at)) "." }
                    None => "No phase recorded yet (the next audit records the published policy).",
                }
            }
            @if caller.may_write() {
                form method="post" action=(domain_href(&d.name, "/dmarc-phase")) class="inline" {
                    (csrf_field())
                    label {
                        "Move to "
                        select name="phase" {
                            @for p in ["none", "quarantine", "reject"] {
                                option value=(p) selected[current == Some(p)] { "p=" (p) }
                            }
                        }
                    }
                    " " button type="submit" { "Record the phase" }
                    " " span class="muted" { "after publishing it in DNS; the guide's next step follows from it" }
                }
            }
        }
        "\n"
    })
}

/// Evidence too long for a table cell: more than three lines or 160 characters.
fn is_long(e: &str) -> bool {
    e.lines().count() > 3 || e.chars().count() > 160
}

/// The first line of `e`, cut at 80 characters.
fn first_line(e: &str) -> String {
    let line = e.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(80).collect();
    if line.chars().count() > 80 || e.lines().count() > 1 {
        out.push('…');
    }
    out
}

/// The SPF include/redirect tree, drawn as a tree: each record with how it was reached, its
/// own look-ups and those below it, against the limit of 10.
fn spf_tree(spf: &mailaudit_core::guide::SpfView) -> Markup {
    html! {
        @if let Some(tree) = &spf.tree {
            section id="spf-tree" {
                h2 {
                    "SPF include tree "
                    span class=(if spf.lookups > 10 { "bad" } else { "muted" }) id="spf-lookups" {
                        (spf.lookups) " of 10 DNS look-ups"
                    }
                }
                "\n"
                details open[spf.lookups > 10 || tree.children.len() <= 8] {
                    summary { "Each record, with the look-ups it costs (its own, and with what it includes)" }
                    ul class="tree" { (spf_node(tree, 0)) }
                }
            }
            "\n"
        }
    }
}

/// One node of the SPF tree and its children (at most 12 levels drawn).
fn spf_node(n: &mailaudit_core::guide::SpfNodeView, depth: usize) -> Markup {
    html! {
        li class="spf-node" data-domain=[n.domain.as_deref()] {
            span class="via" { (n.via.as_deref().unwrap_or("include")) } " "
            strong { (n.domain.as_deref().unwrap_or("?")) } " "
            span class=(if n.total_lookups > 10 { "cost bad" } else { "cost" }) {
                (n.lookups) " here, " (n.total_lookups) " in all"
            }
            @if n.void_lookups > 0 { " " span class="warn" { (n.void_lookups) " void" } }
            @if let Some(r) = &n.record { br; code class="record" { (r) } }
            @if let Some(e) = &n.error { br; span class="bad" { (e) } }
            @if !n.children.is_empty() && depth < 12 {
                ul { @for c in &n.children { (spf_node(c, depth + 1)) } }
            }
        }
    }
}

fn findings(id: &str, title: &str, list: &[Finding]) -> Markup {
    html! {
        section id=(id) {
            h2 { (title) } "\n"
            @if list.is_empty() {
                p { "No findings." }
            } @else {
                table class="findings" {
                    thead {
                        tr {
                            th { "Severity" } th { "Check" } th { "Title" } th { "Detail" }
                            th { "Evidence" }
                        }
                    }
                    tbody {
                        "\n"
                        @for f in list {
                            @let id = f.id.as_str();
                            @let sev = f.severity.as_str();
                            tr class="finding" data-check=(id) {
                                td { span class={ "sev sev-" (sev) } { (sev) } }
                                td { a class="check" href=(check_href(id)) { (id) } }
                                td { (f.title) }
                                td class="detail" { (f.detail) }
                                td {
                                    @if let Some(e) = f.evidence.as_deref().filter(|e| !is_long(e)) {
                                        pre class="evidence" { (e) }
                                    } @else if f.evidence.is_some() {
                                        span class="muted" { "below" }
                                    }
                                }
                            }
                            "\n"
                            // Long evidence (an SMTP transcript, a long record) across the
                            // table's width, folded.
                            @if let Some(e) = f.evidence.as_deref().filter(|e| is_long(e)) {
                                tr class="evidence-row" data-check=(id) {
                                    td colspan="5" {
                                        details {
                                            summary { "Evidence: " (first_line(e)) }
                                            pre class="evidence wide" { (e) }
                                        }
                                    }
                                }
                                "\n"
                            }
                        }
                    }
                }
            }
        }
        "\n"
    }
}

async fn history(d: &FoundDomain<'_>) -> Result<Markup, AppError> {
    let results = d.store().history(&d.name, HISTORY).await?;
    let entries = stored::history_entries(&results);
    Ok(html! {
        section id="history" {
            h2 { "Score history" }
            @if entries.len() > 1 {
                (crate::charts::line_chart(
                    "score-history",
                    "Score over time",
                    &[crate::charts::Series {
                        label: "score".into(),
                        points: entries
                            .iter()
                            .filter_map(|e| e.score.map(|s| (e.audited_at, f64::from(s))))
                            .collect(),
                    }],
                    Some(100.0),
                    "",
                ))
            }
            table class="history" {
                thead {
                    tr {
                        th { "Audited" } th { "Run" } th { "Score" }
                        th { "Changes since the audit before" }
                    }
                }
                tbody {
                    "\n"
                    @for e in &entries {
                        tr {
                            td class="when" { (datetime(e.audited_at)) }
                            td { (e.run_id) }
                            td class="score-cell" {
                                @match e.score {
                                    Some(s) => {
                                        (s) " "
                                        meter min="0" max="100" low="50" high="80" optimum="100"
                                            value=(s) {}
                                    }
                                    None => "n/a",
                                }
                            }
                            td {
                                @if let Some(d) = &e.diff {
                                    @let changes = changes(d);
                                    @for (i, c) in changes.iter().enumerate() {
                                        @if i > 0 { "; " }
                                        (c)
                                    }
                                }
                            }
                        }
                        "\n"
                    }
                }
            }
        }
        "\n"
    })
}

/// What changed between two audits: the findings new, regressed and fixed (linked to their
/// check), then the values that changed; "no change" when nothing did.
fn changes(d: &mailaudit_core::history::Diff) -> Vec<Markup> {
    let mut changes = Vec::new();
    for (label, list) in [
        ("new", &d.new),
        ("regressed", &d.regressed),
        ("fixed", &d.fixed),
    ] {
        if !list.is_empty() {
            changes.push(html! {
                (label) ": "
                @for (i, f) in list.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href=(check_href(f.id.as_str())) { (f.id.as_str()) }
                }
            });
        }
    }
    for c in &d.changes {
        let v = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
        changes.push(html! { (c.what) ": " (v(&c.before)) " → " (v(&c.after)) });
    }
    if changes.is_empty() {
        changes.push(html! { "no change" });
    }
    changes
}

/// The checklist with its forms. An item marked done by hand that the latest audit (`latest`)
/// contradicts (the rule of `mailaudit checklist --done`: `guide::check_manual_done`) is
/// accepted, as `--force` does, and carries a warning with the evidence: the next audit will
/// reopen it.
async fn checklist(
    d: &FoundDomain<'_>,
    caller: &Caller,
    latest: Option<&ReportView>,
) -> Result<Markup, AppError> {
    let name = d.name.as_str();
    let items = d.store().checklist(name).await?;
    let write = caller.may_write();
    let named = caller.user().is_some();
    let done = items.iter().filter(|i| i.state == ItemState::Done).count();
    Ok(html! {
        section id="checklist" {
            h2 {
                "Checklist "
                span class="muted" id="checklist-progress" { (done) "/" (items.len()) " done" }
            }
            "\n"
            @if items.is_empty() {
                p { "No checklist yet: it is made by the first audit." }
            } @else {
                table class="checklist" {
                    thead {
                        tr {
                            th {} th { "Priority" } th { "Item" } th { "Key" } th { "Last change" }
                            th {}
                        }
                    }
                    tbody {
                        "\n"
                        @for i in &items {
                            (checklist_row(name, i, latest, write, named))
                        }
                    }
                }
            }
        }
        "\n"
    })
}

/// One item of the checklist; with `write`, its form (which, with `named`, records the
/// signed-in user instead of asking for a name).
fn checklist_row(
    name: &str,
    i: &mailaudit_store::ChecklistItem,
    latest: Option<&ReportView>,
    write: bool,
    named: bool,
) -> Markup {
    let (mark, to, label) = match i.state {
        ItemState::Done => ("☑", "open", "Reopen"),
        ItemState::Open => ("☐", "done", "Mark done"),
    };
    let contradicted = if i.state == ItemState::Done
        && let Some(Err(c)) = latest.map(|v| guide::check_manual_done(&i.key, v))
    {
        Some(c.evidence_text())
    } else {
        None
    };
    let state = i.state.as_str();
    html! {
        tr id={ "item-" (seg(&i.key)) } class={ "item " (state) } data-key=(i.key)
            data-state=(state) {
            td class="mark" { (mark) }
            td { "P" (i.priority) }
            td { (i.title) }
            td { code { (i.key) } }
            td class="who" {
                @if let (Some(by), Some(at)) = (&i.by, i.at) { (by) ", " (datetime(at)) }
                @if let Some(evidence) = &contradicted {
                    p class="warn contradicted" {
                        "The latest audit still shows: " (evidence)
                        ". The next audit will reopen this item."
                    }
                }
            }
            td {
                @if write {
                    form method="post" action=(domain_href(name, &format!("/checklist/{}", seg(&i.key)))) {
                        (csrf_field())
                        input type="hidden" name="state" value=(to);
                        @if !named {
                            input type="text" name="by" placeholder="your name" maxlength="100"
                                aria-label="your name" size="10";
                            " "
                        }
                        button type="submit" { (label) }
                    }
                }
            }
        }
        "\n"
    }
}

/// `GET /domains/{domain}/guide`: the self-contained HTML guide ([`guide_html::page`]: print
/// it, save it, mail it).
pub async fn guide_page(
    State(p): State<Portal>,
    caller: Caller,
    DomainPath(raw): DomainPath,
) -> Result<Response, AppError> {
    let d = p.reads(&caller).domain(&raw).await?;
    let Some(latest) = &d.latest else {
        return Err(AppError::NotFound(format!(
            "A stored audit of {} (run `mailaudit audit {}` first); its guide was",
            d.name, d.name
        )));
    };
    let view: ReportView = view_of(latest)?;
    let g = stored::guide_for(d.store(), &d.name, view, now(), None).await?;
    let mut res = Html(guide_html::page(&g)).into_response();
    // The page carries its own inline style (and a meta policy saying so).
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(guide_html::PAGE_CSP),
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
/// `Store::set_item_state` (as `mailaudit checklist --done/--reopen`), records it in the audit
/// log, then back to the page. The origin and CSRF checks are the middleware's
/// ([`crate::auth`]); a domain outside the caller's scope is not found, and a viewer may not
/// change anything (403). With accounts, the change is recorded as the signed-in user's.
pub async fn set_item(
    State(p): State<Portal>,
    caller: Caller,
    Path((raw, key)): Path<(String, String)>,
    form: Result<Form<ItemForm>, FormRejection>,
) -> Result<Response, AppError> {
    let d = p.reads(&caller).domain(&raw).await?;
    if !caller.may_write() {
        return Err(AppError::Forbidden(
            "a viewer's access is read-only: the checklist is kept by technicians".into(),
        ));
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
    let by = match caller.user() {
        Some(u) => u.name.clone(),
        None => {
            let by: String = form
                .by
                .as_deref()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            match by.trim() {
                "" => DEFAULT_BY.to_string(),
                b => b.to_string(),
            }
        }
    };
    d.store()
        .set_item_state(&d.name, &key, state, &by, now())
        .await?;
    crate::auth::record(
        &p,
        &caller,
        "checklist",
        &format!("{} {key}", d.name),
        state.as_str(),
    )
    .await;
    let to = format!("{}#item-{}", domain_href(&d.name, ""), seg(&key));
    Ok(Redirect::to(&to).into_response())
}
