//! `/inventory`: the inventory's actions for technicians and admins: add a customer, add a
//! domain, import the inventory CSV (the same columns, validation and line-numbered errors as
//! `mailaudit import`; good rows kept, bad ones named), and move a domain's DMARC phase. Each
//! write is the store's own transaction and lands in the audit log. Viewers get 404, as for
//! the admin pages.

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mailaudit_app::inventory::{
    AddOutcome, COLUMNS, CsvImport, CustomerAdded, DomainFields, ImportTally, RowOutcome,
    add_customer, add_domain, domain_names,
};
use maud::html;
use serde::Deserialize;

use super::AppError;
use crate::Portal;
use crate::access::Caller;
use crate::auth::record;
use crate::html::{csrf_field, domain_href, layout, query_value};

/// The largest inventory CSV taken (a fleet of 100,000 domains is a few MB).
pub const MAX_CSV: usize = 16 * 1024 * 1024;

/// `GET /inventory`.
pub async fn page(State(p): State<Portal>, caller: Caller) -> Result<Html<String>, AppError> {
    p.inventory(&caller)?;
    let customers = p.reads(&caller).customers().await?;
    let csrf = crate::auth::csrf_token().unwrap_or_default();
    let b = html! {
        h1 { "Inventory" } "\n"
        section id="add-customer" {
            h2 { "Add a customer" }
            form method="post" action="/inventory/customers" class="stack" {
                (csrf_field())
                label { "Name " input name="name" required maxlength="200"; }
                " " label { "Contacts " input name="contacts" maxlength="500"; }
                " " label { "Notes " input name="notes" maxlength="2000"; }
                " " button type="submit" { "Add" }
            }
        }
        "\n"
        section id="add-domain" {
            h2 { "Add domains" }
            form method="post" action="/inventory/domains" class="stack" {
                (csrf_field())
                label { "Domains (one per line) " br; textarea name="domains" rows="3" cols="40" required {} }
                br;
                label {
                    "Customer "
                    select name="customer" {
                        option value="" { "None" }
                        @for c in &customers { option value=(c.name) { (c.name) } }
                    }
                }
                " " label { input type="checkbox" name="parked" value="yes"; " parked (sends no mail)" }
                " " label { "Tenant " input name="tenant" maxlength="200" placeholder="contoso"; }
                " " button type="submit" { "Add" }
            }
        }
        "\n"
        section id="exo" {
            h2 { "Import an Exchange Online export" }
            p class="muted" {
                "The bundle the read-only collection script writes (" code { "mailaudit exo script" }
                "), or its per-cmdlet JSON files: connectors, Direct Send, transport rules, DKIM signing and anti-phishing are evaluated offline, and the tenant's domains' checklists follow."
            }
            form method="post" action={ "/inventory/exo?csrf=" (query_value(&csrf)) }
                enctype="multipart/form-data" {
                input type="file" name="file" accept=".json,application/json" multiple required;
                " " label {
                    "Customer "
                    select name="customer" {
                        option value="" { "Any (by the tenant's domains)" }
                        @for c in &customers { option value=(c.name) { (c.name) } }
                    }
                }
                " " button type="submit" { "Import" }
            }
        }
        "\n"
        section id="import" {
            h2 { "Import a CSV file" }
            p class="muted" {
                "A header row, then one domain a row. Columns (any order; only "
                code { "domain" } " is needed): " (COLUMNS.join(", "))
                ". Existing domains get only the values the file gives; bad rows are named with their line and the others kept."
            }
            // The CSRF token in the address: a file upload's body is not a plain form.
            form method="post" action={ "/inventory/import?csrf=" (query_value(&csrf)) }
                enctype="multipart/form-data" {
                input type="file" name="file" accept=".csv,text/csv" required;
                " " button type="submit" { "Import" }
            }
        }
        "\n"
    };
    Ok(Html(layout("Inventory", b)))
}

/// The add-a-customer form.
#[derive(Debug, Deserialize)]
pub struct CustomerForm {
    name: String,
    #[serde(default)]
    contacts: String,
    #[serde(default)]
    notes: String,
}

/// `POST /inventory/customers`.
pub async fn add_customer_form(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<CustomerForm>, FormRejection>,
) -> Result<Response, AppError> {
    let store = p.inventory(&caller)?;
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest("expected a form with a name".into()));
    };
    let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
    match add_customer(
        store,
        f.name.trim(),
        given(&f.contacts).as_deref(),
        given(&f.notes).as_deref(),
    )
    .await?
    {
        CustomerAdded::New(c) => {
            record(&p, &caller, "customer-add", &c.name, "").await;
            Ok(done(&format!("Customer {} added.", c.name)))
        }
        CustomerAdded::Existing { stored, .. } => Ok(done(&format!(
            "The customer {} exists already: nothing was changed (change it with mailaudit \
             customer set).",
            stored.name
        ))),
    }
}

/// The add-domains form.
#[derive(Debug, Deserialize)]
pub struct DomainForm {
    domains: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    parked: Option<String>,
    #[serde(default)]
    tenant: String,
}

/// `POST /inventory/domains`: every name checked before any is added; existing domains are
/// left as they are and named.
pub async fn add_domains_form(
    State(p): State<Portal>,
    caller: Caller,
    form: Result<Form<DomainForm>, FormRejection>,
) -> Result<Response, AppError> {
    let store = p.inventory(&caller)?;
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest("expected a form with domains".into()));
    };
    let lines: Vec<&str> = f
        .domains
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() || lines.len() > 1000 {
        return Err(AppError::BadRequest(
            "give from 1 to 1,000 domain names, one per line (more: import a CSV file)".into(),
        ));
    }
    let names = domain_names(&lines)
        .map_err(|e| AppError::BadRequest(format!("{e}: nothing was added.")))?;
    let customer = Some(f.customer.trim()).filter(|c| !c.is_empty());
    if let Some(c) = customer {
        // A customer that does not exist is a mistake, not a new customer.
        store.customer(c).await?;
    }
    let fields = DomainFields {
        customer: customer.map(str::to_string),
        parked: f.parked.as_deref().map(|v| !v.is_empty()),
        tenant: Some(f.tenant.trim())
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        ..DomainFields::default()
    };
    let mut added = Vec::new();
    let mut existing = Vec::new();
    for name in names {
        match add_domain(store, name, &fields).await? {
            AddOutcome::New(d) => {
                record(
                    &p,
                    &caller,
                    "domain-add",
                    &d.name,
                    d.customer.as_deref().unwrap_or(""),
                )
                .await;
                added.push(d.name);
            }
            AddOutcome::Existing { stored, .. } => existing.push(stored.name),
        }
    }
    let mut text = format!("{} domain(s) added", added.len());
    if !existing.is_empty() {
        text.push_str(&format!(
            "; already in the inventory, left as they are: {}",
            existing.join(", ")
        ));
    }
    Ok(done(&format!("{text}.")))
}

/// `POST /inventory/import` (multipart, the file in `file`): each row as `mailaudit import`
/// reads it; the result page names every bad row with its line.
pub async fn import(
    State(p): State<Portal>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Html<String>, AppError> {
    let store = p.inventory(&caller)?;
    let upload = read_upload(multipart).await?;
    let file = upload.files.into_iter().next();
    let Some((name, bytes)) = file else {
        return Err(AppError::BadRequest(
            "No file was sent (field `file`).".into(),
        ));
    };
    let mut csv = CsvImport::new(std::io::Cursor::new(bytes)).map_err(|e| match e {
        mailaudit_app::AppError::NoDomainColumn => AppError::BadRequest(format!(
            "{name}: the header row has no `domain` column (columns: {})",
            COLUMNS.join(", ")
        )),
        e => AppError::BadRequest(format!("{name}: cannot read the header row: {e}")),
    })?;
    let unknown = csv.unknown_columns();
    let mut tally = ImportTally::default();
    let mut problems: Vec<(usize, String)> = Vec::new();
    while let Some(row) = csv.next_row(store).await? {
        tally.count(&row);
        match &row.outcome {
            RowOutcome::Skipped(e) => problems.push((row.line, format!("{e}; row skipped"))),
            RowOutcome::Unreadable(e) => problems.push((row.line, format!("unreadable row: {e}"))),
            RowOutcome::New(_) | RowOutcome::Updated(..) | RowOutcome::Unchanged(_) => {}
        }
    }
    let summary = format!(
        "added {}, updated {}, unchanged {}, skipped {}; new customers {}",
        tally.added,
        tally.updated.len(),
        tally.unchanged,
        tally.skipped,
        tally.new_customers
    );
    record(&p, &caller, "inventory-import", &name, &summary).await;
    let b = html! {
        h1 { "Import of " (name) } "\n"
        p id="import-summary" { (summary) "." } "\n"
        @if !unknown.is_empty() {
            p class="note" { "Columns not known, ignored: " (unknown.join(", ")) } "\n"
        }
        @if !problems.is_empty() {
            h2 { "Rows not imported" }
            ul id="import-problems" {
                @for (line, why) in &problems {
                    li data-line=(line) { strong { (name) ":" (line) } ": " (why) }
                }
            }
            "\n"
        }
        @if !tally.updated.is_empty() {
            h2 { "Domains updated" }
            ul {
                @for (d, fields) in &tally.updated {
                    li { a href=(domain_href(d, "")) { (d) } ": " (fields.join(", ")) }
                }
            }
        }
        p { a href="/inventory" { "Back to the inventory" } " · " a href="/" { "The fleet" } }
    };
    Ok(Html(layout("Import", b)))
}

/// The DMARC phase form.
#[derive(Debug, Deserialize)]
pub struct PhaseForm {
    phase: String,
}

/// `POST /domains/{domain}/dmarc-phase`: records the domain's DMARC roll-out phase (`none`,
/// `quarantine`, `reject`) as started now, as `audit` records it when the published policy
/// moves; the guide's next step follows from it.
pub async fn set_phase(
    State(p): State<Portal>,
    caller: Caller,
    Path(raw): Path<String>,
    form: Result<Form<PhaseForm>, FormRejection>,
) -> Result<Response, AppError> {
    let d = p.reads(&caller).domain(&raw).await?;
    p.inventory(&caller)?;
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest("expected a form with phase".into()));
    };
    let phase = f.phase.trim();
    if !["none", "quarantine", "reject"].contains(&phase) {
        return Err(AppError::BadRequest(format!(
            "unknown DMARC phase {phase:?}: expected none, quarantine or reject"
        )));
    }
    d.store()
        .set_dmarc_rollout(&mailaudit_store::DmarcRollout {
            domain: d.name.clone(),
            phase: phase.to_string(),
            started_at: mailaudit_store::now(),
        })
        .await?;
    record(&p, &caller, "dmarc-phase", &d.name, phase).await;
    Ok(Redirect::to(&format!("{}#dmarc-phase", domain_href(&d.name, ""))).into_response())
}

/// The page after a change: what was done, and the way back.
fn done(text: &str) -> Response {
    Html(layout(
        "Inventory",
        html! {
            h1 { "Inventory" } "\n"
            p class="done" id="done" { (text) } "\n"
            p { a href="/inventory" { "Back to the inventory" } " · " a href="/" { "The fleet" } }
        },
    ))
    .into_response()
}

/// What a file upload form sent: its files (field `file`, in order) and its other fields.
pub(crate) struct Upload {
    /// `(file name, content)` of each file.
    pub(crate) files: Vec<(String, Vec<u8>)>,
    /// The other fields, `(name, value)`.
    pub(crate) fields: Vec<(String, String)>,
}

/// Reads a multipart form: every `file` field's content, at most [`MAX_CSV`] bytes in all, and
/// the other (small) fields; a 400 for an upload that is not one or is too large.
pub(crate) async fn read_upload(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Upload, AppError> {
    let bad = |why: String| AppError::BadRequest(format!("The upload is not understood: {why}."));
    let mut multipart = multipart.map_err(|e| bad(e.body_text()))?;
    let mut upload = Upload {
        files: Vec::new(),
        fields: Vec::new(),
    };
    let mut total = 0usize;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name != "file" {
            let value = field.text().await.map_err(|e| bad(e.body_text()))?;
            if value.len() > 1024 {
                return Err(bad(format!("the field {name} is too long")));
            }
            upload.fields.push((name, value));
            continue;
        }
        let file_name = field.file_name().unwrap_or("upload").to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.body_text()))? {
            total += chunk.len();
            if total > MAX_CSV {
                return Err(AppError::BadRequest(format!(
                    "The upload is larger than {} MB.",
                    MAX_CSV / (1024 * 1024)
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        upload.files.push((file_name, bytes));
    }
    Ok(upload)
}

/// `POST /inventory/exo` (multipart: the export files in `file`, optionally `customer`):
/// evaluates an Exchange Online export as `mailaudit exo import` does (the bundle the
/// collection script writes, or its per-cmdlet files), records it and ticks or reopens the
/// checklists of its domains, then shows its findings.
pub async fn exo_import(
    State(p): State<Portal>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Html<String>, AppError> {
    let store = p.inventory(&caller)?;
    let upload = read_upload(multipart).await?;
    let customer = upload
        .fields
        .iter()
        .find(|(k, _)| k == "customer")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if let Some(c) = &customer {
        store.customer(c).await?;
    }
    let mut bundle = mailaudit_app::exo::Bundle::default();
    let mut skipped = Vec::new();
    for (name, bytes) in &upload.files {
        let added = bundle
            .add_json(name, &String::from_utf8_lossy(bytes))
            .map_err(|e| AppError::BadRequest(format!("{name}: not JSON ({e})")))?;
        if !added {
            skipped.push(name.clone());
        }
    }
    if bundle.is_empty() {
        return Err(AppError::BadRequest(
            "No export to read: send the bundle the collection script writes (mailaudit exo \
             script), or per-cmdlet files named after their cmdlet (e.g. \
             inbound_connectors.json)."
                .into(),
        ));
    }
    let (bundle, sources) = bundle.into_parts();
    let mut warnings = Vec::new();
    let imported = mailaudit_app::exo::import(
        store,
        &bundle,
        &sources,
        mailaudit_app::exo::ImportOptions {
            customer: customer.as_deref(),
            no_store: false,
        },
        &mut |w| warnings.push(w.to_string()),
    )
    .await
    .map_err(|e| match e {
        mailaudit_app::AppError::Store(e) => AppError::from(e),
        e => AppError::BadRequest(format!("The export cannot be read: {e}.")),
    })?;
    record(
        &p,
        &caller,
        "exo-import",
        &imported.organization,
        &format!("{} findings", imported.findings.len()),
    )
    .await;
    let b = html! {
        h1 { "Exchange Online import: " (imported.organization) } "\n"
        p id="exo-summary" {
            (imported.findings.len()) " findings; " (imported.checklist.len()) " checklist items changed"
            @if let Some(c) = &customer { "; customer " (c) }
            "."
        }
        @if !skipped.is_empty() {
            p class="note" { "Not an export mailaudit reads, skipped: " (skipped.join(", ")) }
        }
        @if !warnings.is_empty() {
            details { summary { (warnings.len()) " warnings" } ul { @for w in &warnings { li { (w) } } } }
        }
        @if let Some(changes) = &imported.changes {
            h2 { "Changed since the previous import" }
            @if changes.is_empty() { p { "Nothing." } }
            ul { @for c in changes { li { (c) } } }
        }
        h2 { "Findings" }
        table id="exo-findings" {
            thead { tr { th { "Severity" } th { "Check" } th { "Title" } th { "Detail" } } }
            tbody {
                @for f in &imported.findings {
                    tr data-check=(f.id.as_str()) {
                        td { span class={ "sev sev-" (f.severity.as_str()) } { (f.severity.as_str()) } }
                        td { (f.id.as_str()) }
                        td { (f.title) }
                        td class="detail" { (f.detail) }
                    }
                }
            }
        }
        p { a href="/inventory" { "Back to the inventory" } }
    };
    Ok(Html(layout("Exchange Online import", b)))
}

/// The edit form of a domain's inventory entry.
#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    parked: Option<String>,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    m365_endpoint: String,
}

/// `POST /domains/{domain}/edit`: sets the domain's customer, parked flag, tenant and
/// Microsoft 365 endpoint as the form gives them (an empty field clears it; its relay-test
/// addresses and key people are left as they are); the changes are audit-logged.
pub async fn edit_domain(
    State(p): State<Portal>,
    caller: Caller,
    Path(raw): Path<String>,
    form: Result<Form<EditForm>, FormRejection>,
) -> Result<Response, AppError> {
    let d = p.reads(&caller).domain(&raw).await?;
    let store = p.inventory(&caller)?;
    if d.entry.is_none() {
        return Err(AppError::BadRequest(format!(
            "{} is not in the inventory (add it first)",
            d.name
        )));
    }
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest("expected the domain's form".into()));
    };
    let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
    let update = mailaudit_store::DomainUpdate {
        customer: Some(given(&f.customer)),
        parked: Some(f.parked.is_some_and(|v| !v.is_empty())),
        tenant: Some(given(&f.tenant)),
        m365_endpoint: Some(given(&f.m365_endpoint)),
        ..mailaudit_store::DomainUpdate::default()
    };
    let updated = store.update_domain(&d.name, &update).await?;
    let changes = mailaudit_app::inventory::domain_changes(&updated.before, &updated.after);
    if !changes.is_empty() {
        let detail: Vec<String> = changes
            .iter()
            .map(|c| format!("{}: {:?} -> {:?}", c.field, c.old, c.new))
            .collect();
        record(&p, &caller, "domain-set", &d.name, &detail.join("; ")).await;
    }
    Ok(Redirect::to(&format!("{}#inventory", domain_href(&d.name, ""))).into_response())
}
