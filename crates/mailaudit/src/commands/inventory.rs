//! `mailaudit customer`, `mailaudit domain`, `mailaudit import`: the inventory.

use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use mailaudit_app::AppError;
use mailaudit_app::inventory::{
    AddOutcome, COLUMNS, CsvImport, CustomerAdded, DomainFields, FieldChange, ImportTally,
    RowOutcome, add_customer, customer_exists, domain_names, missing_domains, parse_people,
    person_text,
};
use mailaudit_core::audit::normalize_domain;
use mailaudit_store::{DomainEntry, DomainUpdate, ItemState, KeyPerson, Store, StoreError};

use super::dates;
use crate::cli::{
    CustomerCommand, DomainAddArgs, DomainCommand, DomainSetArgs, ImportArgs, TextOrJson,
};
use crate::output::{printable, text_stdout};

/// Quotes `s` for a POSIX shell when it needs it (for the commands mailaudit suggests).
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn opt_text(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".to_string())
}

/// Prints `PREFIX field: old → new` for each change.
fn write_changes(out: &mut dyn Write, prefix: &str, changes: &[FieldChange]) -> io::Result<()> {
    for c in changes {
        writeln!(
            out,
            "{prefix}{}: {} → {}",
            c.field,
            printable(&c.old),
            printable(&c.new)
        )?;
    }
    Ok(())
}

/// Fails unless the customer exists (checked before anything is written).
async fn existing_customer(store: &dyn Store, name: &str) -> Result<()> {
    if !customer_exists(store, name).await? {
        bail!(
            "customer {:?} not found (add it with `mailaudit customer add`)",
            name.trim()
        );
    }
    Ok(())
}

pub(crate) async fn customer(store: &dyn Store, cmd: &CustomerCommand) -> Result<ExitCode> {
    let mut out = text_stdout();
    match cmd {
        CustomerCommand::Add {
            name,
            contacts,
            notes,
        } => match add_customer(store, name, contacts.as_deref(), notes.as_deref()).await? {
            CustomerAdded::New(c) => {
                audit(store, "customer-add", &c.name, "").await?;
                writeln!(out, "added customer {}", c.name)?
            }
            CustomerAdded::Existing { stored: c, differ } => {
                let mut suggest = format!("mailaudit customer set {}", shell_quote(&c.name));
                for d in &differ {
                    suggest.push_str(&format!(" --{} {}", d.field, shell_quote(&d.new)));
                }
                let differ: Vec<String> = differ
                    .iter()
                    .map(|d| {
                        format!(
                            "{} {:?} (given: {:?})",
                            d.field,
                            printable(&d.old),
                            printable(&d.new)
                        )
                    })
                    .collect();
                if differ.is_empty() {
                    eprintln!(
                        "mailaudit: customer {} already exists; nothing changed (use \
                             `mailaudit customer set {} --contacts … --notes …` to change it)",
                        c.name,
                        shell_quote(&c.name)
                    );
                } else {
                    eprintln!(
                        "mailaudit: customer {} already exists with {}; nothing changed: use \
                             `{suggest}` to change it",
                        c.name,
                        differ.join(" and ")
                    );
                    return Ok(ExitCode::from(1));
                }
            }
        },
        CustomerCommand::Set {
            name,
            contacts,
            notes,
        } => {
            if contacts.is_none() && notes.is_none() {
                bail!("nothing to change: give --contacts and/or --notes");
            }
            let u = match store
                .update_customer(name, contacts.as_deref(), notes.as_deref())
                .await
            {
                Ok(u) => u,
                Err(StoreError::NotFound { .. }) => bail!(
                    "customer {:?} not found (add it with `mailaudit customer add`)",
                    name.trim()
                ),
                Err(e) => return Err(e.into()),
            };
            let mut changes = Vec::new();
            if u.before.contacts != u.after.contacts {
                changes.push(("contacts", u.before.contacts, u.after.contacts.clone()));
            }
            if u.before.notes != u.after.notes {
                changes.push(("notes", u.before.notes, u.after.notes.clone()));
            }
            if changes.is_empty() {
                writeln!(out, "customer {}: unchanged (already so)", u.after.name)?;
            } else {
                let fields: Vec<&str> = changes.iter().map(|c| c.0).collect();
                audit(store, "customer-set", &u.after.name, &fields.join(", ")).await?;
            }
            let changes: Vec<_> = changes
                .into_iter()
                .map(|(field, old, new)| {
                    let show = |s: String| if s.is_empty() { "(none)".into() } else { s };
                    FieldChange {
                        field,
                        old: show(old),
                        new: show(new),
                    }
                })
                .collect();
            write_changes(&mut out, &format!("customer {}: ", u.after.name), &changes)?;
        }
        CustomerCommand::List => {
            let customers = store.customers().await?;
            let domains = store.domains(None).await?;
            writeln!(out, "{:<32} {:>7}  CONTACTS", "CUSTOMER", "DOMAINS")?;
            for c in customers {
                let n = domains
                    .iter()
                    .filter(|d| d.customer.as_deref() == Some(c.name.as_str()))
                    .count();
                writeln!(out, "{:<32} {:>7}  {}", c.name, n, c.contacts)?;
            }
        }
        CustomerCommand::Show { name } => {
            let c = store.customer(name).await?;
            writeln!(
                out,
                "{}\n  contacts: {}\n  notes: {}",
                c.name, c.contacts, c.notes
            )?;
            let domains = store.domains(Some(&c.name)).await?;
            writeln!(out, "  domains ({}):", domains.len())?;
            for d in domains {
                let score = match store.latest_result(&d.name).await? {
                    Some(r) => r.score.map_or("n/a".to_string(), |s| s.to_string()),
                    None => "not audited".to_string(),
                };
                let parked = if d.parked { " (parked)" } else { "" };
                writeln!(out, "    {:<40} score {score}{parked}", d.name)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The fields `domain add` was given.
fn add_fields(args: &DomainAddArgs, key_people: Vec<KeyPerson>) -> DomainFields {
    DomainFields {
        customer: args.customer.clone(),
        parked: args.parked.then_some(true),
        tenant: args.tenant.clone(),
        m365_endpoint: args.m365_endpoint.clone(),
        relay_from: args.relay_from.clone(),
        relay_to: args.relay_to.clone(),
        key_people,
    }
}

/// The `domain set` options that make `before` into `after`.
fn set_options(before: &DomainEntry, after: &DomainEntry) -> String {
    let mut s = String::new();
    let mut opt = |flag: &str, old: &Option<String>, new: &Option<String>| match new {
        Some(v) if old != new => s.push_str(&format!(" --{flag} {}", shell_quote(v))),
        None if old.is_some() => s.push_str(&format!(" --clear-{flag}")),
        _ => {}
    };
    opt("customer", &before.customer, &after.customer);
    opt("tenant", &before.tenant, &after.tenant);
    opt("m365-endpoint", &before.m365_endpoint, &after.m365_endpoint);
    opt("relay-from", &before.relay_from, &after.relay_from);
    opt("relay-to", &before.relay_to, &after.relay_to);
    if before.parked != after.parked {
        s.push_str(if after.parked {
            " --parked"
        } else {
            " --not-parked"
        });
    }
    for p in &after.key_people {
        if !before.key_people.contains(p) {
            s.push_str(&format!(" --key-person {}", shell_quote(&person_text(p))));
        }
    }
    s
}

fn domain_set_update(args: &DomainSetArgs, key_people: Vec<KeyPerson>) -> DomainUpdate {
    let field = |v: &Option<String>, clear: bool| {
        if clear {
            Some(None)
        } else {
            v.clone().map(Some)
        }
    };
    DomainUpdate {
        customer: field(&args.customer, args.clear_customer),
        parked: if args.parked {
            Some(true)
        } else if args.not_parked {
            Some(false)
        } else {
            None
        },
        tenant: field(&args.tenant, args.clear_tenant),
        m365_endpoint: field(&args.m365_endpoint, args.clear_m365_endpoint),
        relay_from: field(&args.relay_from, args.clear_relay_from),
        relay_to: field(&args.relay_to, args.clear_relay_to),
        clear_key_people: args.clear_key_people,
        add_key_people: key_people,
    }
}

pub(crate) async fn domain(store: &dyn Store, cmd: &DomainCommand) -> Result<ExitCode> {
    let mut out = text_stdout();
    match cmd {
        DomainCommand::Add(args) => {
            // Everything is checked before anything is written.
            let names = domain_names(&args.domains)?;
            let fields = add_fields(args, parse_people(&args.key_people)?);
            if let Some(c) = &args.customer {
                existing_customer(store, c).await?;
            }
            let mut differ = false;
            for name in names {
                match mailaudit_app::inventory::add_domain(store, name, &fields).await? {
                    AddOutcome::New(d) => {
                        audit(
                            store,
                            "domain-add",
                            &d.name,
                            d.customer.as_deref().unwrap_or(""),
                        )
                        .await?;
                        let owner = d.customer.map(|c| format!(" ({c})")).unwrap_or_default();
                        writeln!(out, "added {}{owner}", d.name)?;
                    }
                    AddOutcome::Existing {
                        stored: d,
                        wanted,
                        changes,
                    } => {
                        if changes.is_empty() {
                            eprintln!(
                                "mailaudit: {} is already in the inventory; nothing changed (use \
                                 `mailaudit domain set {} ...` to change it)",
                                d.name, d.name
                            );
                        } else {
                            differ = true;
                            let list: Vec<String> = changes
                                .iter()
                                .map(|c| {
                                    format!(
                                        "{} is {} (given: {})",
                                        c.field,
                                        printable(&c.old),
                                        printable(&c.new)
                                    )
                                })
                                .collect();
                            eprintln!(
                                "mailaudit: {} is already in the inventory; nothing changed: its \
                                 {}; use `mailaudit domain set {}{}` to change it",
                                d.name,
                                list.join(", its "),
                                d.name,
                                set_options(&d, &wanted)
                            );
                        }
                    }
                }
            }
            if differ {
                return Ok(ExitCode::from(1));
            }
        }
        DomainCommand::Set(args) => {
            let names = domain_names(&args.domains)?;
            let update = domain_set_update(args, parse_people(&args.key_people)?);
            if update.is_empty() {
                bail!(
                    "nothing to change: give the fields to set (--customer, --parked, \
                     --not-parked, --tenant, --m365-endpoint, --relay-from, --relay-to, \
                     --key-person) or to clear (--clear-…); see `mailaudit domain set --help`"
                );
            }
            let missing = missing_domains(store, &names).await?;
            if !missing.is_empty() {
                bail!(
                    "not in the inventory: {} (add with `mailaudit domain add`); nothing changed",
                    missing.join(", ")
                );
            }
            if let Some(c) = &args.customer {
                existing_customer(store, c).await?;
            }
            for name in &names {
                let u = store.update_domain(name, &update).await?;
                let changes = mailaudit_app::inventory::domain_changes(&u.before, &u.after);
                if changes.is_empty() {
                    writeln!(out, "{name}: unchanged (already so)")?;
                } else {
                    let fields: Vec<&str> = changes.iter().map(|c| c.field).collect();
                    audit(store, "domain-set", &u.after.name, &fields.join(", ")).await?;
                }
                write_changes(&mut out, &format!("{name}: "), &changes)?;
            }
        }
        DomainCommand::Show { domain, format } => match format {
            TextOrJson::Json => {
                show_domain(store, &mut io::stdout().lock(), domain, *format).await?
            }
            TextOrJson::Text => show_domain(store, &mut out, domain, *format).await?,
        },
        DomainCommand::Remove { domains } => {
            for name in domains {
                let name_n = normalize_domain(name)?;
                store.remove_domain(&name_n).await?;
                audit(store, "domain-remove", &name_n, "").await?;
                writeln!(out, "removed {name} (its audit history is kept)")?;
            }
        }
        DomainCommand::List { customer } => {
            let domains = store.domains(customer.as_deref()).await?;
            writeln!(
                out,
                "{:<40} {:<24} {:<7} TENANT",
                "DOMAIN", "CUSTOMER", "PARKED"
            )?;
            for d in domains {
                writeln!(
                    out,
                    "{:<40} {:<24} {:<7} {}",
                    d.name,
                    d.customer.unwrap_or_default(),
                    if d.parked { "yes" } else { "no" },
                    d.tenant.unwrap_or_default()
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `domain show`: everything stored about one domain.
async fn show_domain(
    store: &dyn Store,
    out: &mut dyn Write,
    name: &str,
    format: TextOrJson,
) -> Result<()> {
    let name = normalize_domain(name)?;
    let d = match store.domain(&name).await {
        Ok(d) => d,
        Err(StoreError::NotFound { .. }) => {
            bail!("{name} is not in the inventory (`mailaudit domain list` lists it)")
        }
        Err(e) => return Err(e.into()),
    };
    let latest = store.latest_result(&name).await?;
    let items = store.checklist(&name).await?;
    let done = items.iter().filter(|i| i.state == ItemState::Done).count();
    let rollout = store.dmarc_rollout(&name).await?;
    if format == TextOrJson::Json {
        let v = serde_json::json!({
            "domain": d.name,
            "customer": d.customer,
            "parked": d.parked,
            "tenant": d.tenant,
            "m365_endpoint": d.m365_endpoint,
            "relay_from": d.relay_from,
            "relay_to": d.relay_to,
            "key_people": d.key_people,
            "added_at": d.added_at,
            "latest_audit": latest.as_ref().map(|r| serde_json::json!({
                "run": r.run_id,
                "audited_at": r.audited_at,
                "score": r.score,
            })),
            "checklist": {
                "done": done,
                "total": items.len(),
                "open": items.iter().filter(|i| i.state == ItemState::Open).map(|i| &i.key).collect::<Vec<_>>(),
            },
            "dmarc_rollout": rollout.as_ref().map(|r| serde_json::json!({
                "phase": r.phase,
                "started_at": r.started_at,
            })),
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let p = |v: &Option<String>| printable(&opt_text(v)).into_owned();
    writeln!(out, "{}", d.name)?;
    writeln!(out, "  customer:       {}", p(&d.customer))?;
    writeln!(
        out,
        "  parked:         {}",
        if d.parked { "yes" } else { "no" }
    )?;
    writeln!(out, "  tenant:         {}", p(&d.tenant))?;
    writeln!(out, "  m365 endpoint:  {}", p(&d.m365_endpoint))?;
    writeln!(out, "  relay from:     {}", p(&d.relay_from))?;
    writeln!(out, "  relay to:       {}", p(&d.relay_to))?;
    if d.key_people.is_empty() {
        writeln!(out, "  key people:     (none)")?;
    }
    for (i, person) in d.key_people.iter().enumerate() {
        let label = if i == 0 { "key people:" } else { "" };
        writeln!(out, "  {label:<15} {}", printable(&person_text(person)))?;
    }
    writeln!(out, "  added:          {} UTC", dates::format(d.added_at))?;
    match &latest {
        Some(r) => writeln!(
            out,
            "  latest audit:   {} UTC, score {} (run {})",
            dates::format(r.audited_at),
            r.score.map_or("n/a".to_string(), |s| s.to_string()),
            r.run_id
        )?,
        None => writeln!(out, "  latest audit:   not audited")?,
    }
    if items.is_empty() {
        writeln!(out, "  checklist:      (none yet)")?;
    } else {
        writeln!(
            out,
            "  checklist:      {done} of {} items done (`mailaudit checklist {}`)",
            items.len(),
            d.name
        )?;
    }
    if let Some(r) = &rollout {
        writeln!(
            out,
            "  dmarc rollout:  p={} since {} UTC",
            r.phase,
            dates::format(r.started_at)
        )?;
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(crate) async fn import(store: &dyn Store, args: &ImportArgs) -> Result<ExitCode> {
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("{}: cannot open", args.file.display()))?;
        Box::new(BufReader::new(f))
    };
    let name = args.file.display().to_string();
    let mut import = CsvImport::new(reader).map_err(|e| match e {
        AppError::CsvHeader(e) => {
            anyhow::Error::new(e).context(format!("{name}: cannot read the header row"))
        }
        AppError::NoDomainColumn => anyhow!(
            "{name}: the header row has no `domain` column (columns: {})",
            COLUMNS.join(", ")
        ),
        e => e.into(),
    })?;
    let unknown = import.unknown_columns();
    if !unknown.is_empty() {
        eprintln!("mailaudit: {name}: ignoring unknown columns {unknown:?}");
    }
    let mut tally = ImportTally::default();
    let mut out = text_stdout();
    while let Some(row) = import.next_row(store).await? {
        tally.count(&row);
        let line = row.line;
        if let Some(c) = &row.customer_changed {
            let prefix = format!("{name}:{line}: customer {}: ", c.name);
            write_changes(&mut out, &prefix, &c.changes)?;
        }
        match row.outcome {
            RowOutcome::Updated(domain, changes) => {
                write_changes(&mut out, &format!("{name}:{line}: {domain}: "), &changes)?
            }
            RowOutcome::New(_) | RowOutcome::Unchanged(_) => {}
            RowOutcome::Unreadable(e) => eprintln!("mailaudit: {name}:{line}: unreadable row: {e}"),
            RowOutcome::Skipped(e) => {
                let e = anyhow::Error::from(e);
                eprintln!("mailaudit: {name}:{line}: {e:#}; row skipped");
            }
        }
    }
    let ImportTally {
        added,
        updated,
        unchanged,
        skipped: bad,
        new_customers,
        updated_customers,
    } = tally;
    let updated_customers: Vec<String> = updated_customers
        .iter()
        .map(|(c, fields)| format!("{c}: {}", fields.join(", ")))
        .collect();
    /// How many updated domains the summary names.
    const NAMED: usize = 10;
    let mut which: Vec<String> = updated
        .iter()
        .take(NAMED)
        .map(|(d, fields)| format!("{d}: {}", fields.join(", ")))
        .collect();
    if updated.len() > NAMED {
        which.push(format!("and {} more", updated.len() - NAMED));
    }
    let updated_text = if which.is_empty() {
        "updated 0".to_string()
    } else {
        format!("updated {} ({})", updated.len(), which.join("; "))
    };
    let mut summary = format!(
        "imported {}, {updated_text}, {unchanged} unchanged, {}",
        plural(added, "new domain", "new domains"),
        plural(bad, "row skipped", "rows skipped"),
    );
    if new_customers > 0 {
        summary.push_str(&format!(
            "; {}",
            plural(new_customers, "new customer", "new customers")
        ));
    }
    if !updated_customers.is_empty() {
        summary.push_str(&format!(
            "; {} updated ({})",
            plural(updated_customers.len(), "customer", "customers"),
            updated_customers.join("; ")
        ));
    }
    audit(store, "import", &name, &summary).await?;
    writeln!(out, "{summary}")?;
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Records an inventory change made on the command line in the audit log (what the portal's
/// admins read at /admin/audit).
async fn audit(store: &dyn Store, action: &str, target: &str, detail: &str) -> Result<()> {
    mailaudit_app::accounts::Actor::cli()
        .record(store, mailaudit_store::now(), action, target, detail)
        .await?;
    Ok(())
}
