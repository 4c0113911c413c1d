//! `mailaudit customer`, `mailaudit domain`, `mailaudit import`: the inventory.

use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mailaudit_core::audit::normalize_domain;
use mailaudit_store::{
    Added, DomainEntry, DomainUpdate, ItemState, KeyPerson, NewDomain, Store, StoreError,
    merge_key_people,
};

use super::dates;
use crate::cli::{
    CustomerCommand, DomainAddArgs, DomainCommand, DomainSetArgs, ImportArgs, TextOrJson,
};
use crate::output::{printable, text_stdout};

/// Parses "Name <address>" (or a bare address, giving an empty name: [`merge_key_people`]
/// names a new person after the address and keeps a known person's name) into a key person.
pub(crate) fn parse_person(s: &str) -> Result<KeyPerson> {
    let s = s.trim();
    let (name, email) = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => (
            s[..a].trim().trim_matches('"').to_string(),
            s[a + 1..b].trim().to_string(),
        ),
        _ => (String::new(), s.to_string()),
    };
    if !email.contains('@') || email.contains(char::is_whitespace) {
        bail!("invalid key person {s:?}: expected \"Name <address>\"");
    }
    Ok(KeyPerson { name, email })
}

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

/// A key person as typed: `Name <address>`.
fn person_text(p: &KeyPerson) -> String {
    if p.name.is_empty() {
        p.email.clone()
    } else {
        format!("{} <{}>", p.name, p.email)
    }
}

fn opt_text(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".to_string())
}

/// The fields of `before` that `after` changes: `(field, old, new)`, named as in the import's
/// columns and `domain show --format json`.
fn domain_changes(
    before: &DomainEntry,
    after: &DomainEntry,
) -> Vec<(&'static str, String, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let people = |v: &[KeyPerson]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.iter().map(person_text).collect::<Vec<_>>().join("; ")
        }
    };
    let mut out = Vec::new();
    let mut text = |field, old: &Option<String>, new: &Option<String>| {
        if old != new {
            out.push((field, opt_text(old), opt_text(new)));
        }
    };
    text("customer", &before.customer, &after.customer);
    text("tenant", &before.tenant, &after.tenant);
    text("m365_endpoint", &before.m365_endpoint, &after.m365_endpoint);
    text("relay_from", &before.relay_from, &after.relay_from);
    text("relay_to", &before.relay_to, &after.relay_to);
    if before.parked != after.parked {
        out.push(("parked", yes_no(before.parked), yes_no(after.parked)));
    }
    if before.key_people != after.key_people {
        out.push((
            "key_people",
            people(&before.key_people),
            people(&after.key_people),
        ));
    }
    out
}

/// Prints `PREFIX field: old → new` for each change.
fn write_changes(
    out: &mut dyn Write,
    prefix: &str,
    changes: &[(&'static str, String, String)],
) -> io::Result<()> {
    for (field, old, new) in changes {
        writeln!(
            out,
            "{prefix}{field}: {} → {}",
            printable(old),
            printable(new)
        )?;
    }
    Ok(())
}

/// Each name normalised, in order, each once; an invalid name is an error (nothing written).
fn domain_names(names: &[String]) -> Result<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for name in names {
        let n = normalize_domain(name)?;
        if seen.insert(n.clone()) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The key people given with --key-person, as typed (a bare address has no name).
fn people(args: &[String]) -> Result<Vec<KeyPerson>> {
    args.iter().map(|p| parse_person(p)).collect()
}

/// The key people of a new domain: deduplicated by address, each with a name.
fn new_people(given: &[KeyPerson]) -> Vec<KeyPerson> {
    let mut list = Vec::new();
    merge_key_people(&mut list, given);
    list
}

/// Fails unless the customer exists (checked before anything is written).
async fn existing_customer(store: &dyn Store, name: &str) -> Result<()> {
    match store.customer(name).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound { .. }) => bail!(
            "customer {:?} not found (add it with `mailaudit customer add`)",
            name.trim()
        ),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn customer(store: &dyn Store, cmd: &CustomerCommand) -> Result<ExitCode> {
    let mut out = text_stdout();
    match cmd {
        CustomerCommand::Add {
            name,
            contacts,
            notes,
        } => {
            let given = (contacts.as_deref(), notes.as_deref());
            match store
                .add_customer(name, given.0.unwrap_or(""), given.1.unwrap_or(""))
                .await
            {
                Ok(c) => writeln!(out, "added customer {}", c.name)?,
                Err(StoreError::Conflict(_)) => {
                    let c = store.customer(name).await?;
                    let mut differ = Vec::new();
                    let mut suggest = format!("mailaudit customer set {}", shell_quote(&c.name));
                    for (field, given, stored) in [
                        ("contacts", given.0, &c.contacts),
                        ("notes", given.1, &c.notes),
                    ] {
                        if let Some(g) = given
                            && g != stored
                        {
                            differ.push(format!(
                                "{field} {:?} (given: {:?})",
                                printable(stored),
                                printable(g)
                            ));
                            suggest.push_str(&format!(" --{field} {}", shell_quote(g)));
                        }
                    }
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
                Err(e) => return Err(e.into()),
            }
        }
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
            }
            let changes: Vec<_> = changes
                .into_iter()
                .map(|(f, old, new)| {
                    let show = |s: String| if s.is_empty() { "(none)".into() } else { s };
                    (f, show(old), show(new))
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

/// The fields `domain add` was given, as an update of an existing domain: applying it changes
/// nothing exactly when the stored domain already has every value given.
fn add_as_update(args: &DomainAddArgs, key_people: &[KeyPerson]) -> DomainUpdate {
    DomainUpdate {
        customer: args.customer.clone().map(Some),
        parked: args.parked.then_some(true),
        tenant: args.tenant.clone().map(Some),
        m365_endpoint: args.m365_endpoint.clone().map(Some),
        relay_from: args.relay_from.clone().map(Some),
        relay_to: args.relay_to.clone().map(Some),
        clear_key_people: false,
        add_key_people: key_people.to_vec(),
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
            let key_people = people(&args.key_people)?;
            if let Some(c) = &args.customer {
                existing_customer(store, c).await?;
            }
            let asked = add_as_update(args, &key_people);
            let mut differ = false;
            for name in names {
                let new = NewDomain {
                    name,
                    customer: args.customer.clone(),
                    parked: args.parked,
                    tenant: args.tenant.clone(),
                    m365_endpoint: args.m365_endpoint.clone(),
                    relay_from: args.relay_from.clone(),
                    relay_to: args.relay_to.clone(),
                    key_people: new_people(&key_people),
                };
                match store.add_domain(&new).await? {
                    Added::New(d) => {
                        let owner = d.customer.map(|c| format!(" ({c})")).unwrap_or_default();
                        writeln!(out, "added {}{owner}", d.name)?;
                    }
                    Added::Existing(d) => {
                        let wanted = asked.apply(&d);
                        let changes = domain_changes(&d, &wanted);
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
                                .map(|(f, old, new)| {
                                    format!("{f} is {} (given: {})", printable(old), printable(new))
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
            let update = domain_set_update(args, people(&args.key_people)?);
            if update.is_empty() {
                bail!(
                    "nothing to change: give the fields to set (--customer, --parked, \
                     --not-parked, --tenant, --m365-endpoint, --relay-from, --relay-to, \
                     --key-person) or to clear (--clear-…); see `mailaudit domain set --help`"
                );
            }
            let mut missing = Vec::new();
            for name in &names {
                match store.domain(name).await {
                    Ok(_) => {}
                    Err(StoreError::NotFound { .. }) => missing.push(name.as_str()),
                    Err(e) => return Err(e.into()),
                }
            }
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
                let changes = domain_changes(&u.before, &u.after);
                if changes.is_empty() {
                    writeln!(out, "{name}: unchanged (already so)")?;
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
                store.remove_domain(&normalize_domain(name)?).await?;
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

/// The columns `import` reads.
const COLUMNS: [&str; 10] = [
    "customer",
    "domain",
    "parked",
    "tenant",
    "m365_endpoint",
    "relay_from",
    "relay_to",
    "key_people",
    "contacts",
    "notes",
];

/// The parked cell: `None` when empty (not given).
fn yes(s: &str) -> Result<Option<bool>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "no" | "n" | "false" | "0" => Ok(Some(false)),
        "yes" | "y" | "true" | "1" | "parked" => Ok(Some(true)),
        other => Err(format!("parked must be yes or no, not {other:?}")),
    }
}

/// What one import row did.
enum RowOutcome {
    /// A new domain.
    New,
    /// An existing domain, with the fields that changed.
    Updated(String, Vec<&'static str>),
    /// An existing domain the row changed nothing of.
    Unchanged,
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
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .with_context(|| format!("{name}: cannot read the header row"))?
        .iter()
        .map(|h| {
            h.trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
                .replace([' ', '-'], "_")
        })
        .collect();
    let col = |c: &str| headers.iter().position(|h| h == c);
    if col("domain").is_none() {
        bail!(
            "{name}: the header row has no `domain` column (columns: {})",
            COLUMNS.join(", ")
        );
    }
    let unknown: Vec<&String> = headers
        .iter()
        .filter(|h| !COLUMNS.contains(&h.as_str()))
        .collect();
    if !unknown.is_empty() {
        eprintln!("mailaudit: {name}: ignoring unknown columns {unknown:?}");
    }
    let (mut added, mut unchanged, mut bad) = (0, 0, 0);
    let mut updated: Vec<(String, Vec<&'static str>)> = Vec::new();
    let (mut new_customers, mut updated_customers) = (0, Vec::<String>::new());
    let mut customers: std::collections::HashSet<String> = store
        .customers()
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut out = text_stdout();
    for (i, row) in csv.records().enumerate() {
        let line = i + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mailaudit: {name}:{line}: unreadable row: {e}");
                bad += 1;
                continue;
            }
        };
        // A missing column and an empty cell are the same: not given.
        let get = |c: &str| {
            col(c)
                .and_then(|i| row.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let opt = |c: &str| Some(get(c)).filter(|v| !v.is_empty());
        let result: Result<RowOutcome> = async {
            // The whole row is checked before anything of it is written.
            let domain = normalize_domain(&get("domain")).map_err(anyhow::Error::from)?;
            let parked = yes(&get("parked")).map_err(anyhow::Error::msg)?;
            let key_people = get("key_people")
                .split(';')
                .filter(|p| !p.trim().is_empty())
                .map(parse_person)
                .collect::<Result<Vec<_>>>()?;
            let customer = opt("customer");
            if let Some(c) = &customer {
                let (contacts, notes) = (opt("contacts"), opt("notes"));
                let mut known = customers.contains(c);
                if !known {
                    match store
                        .add_customer(
                            c,
                            contacts.as_deref().unwrap_or(""),
                            notes.as_deref().unwrap_or(""),
                        )
                        .await
                    {
                        Ok(_) => new_customers += 1,
                        Err(StoreError::Conflict(_)) => known = true,
                        Err(e) => return Err(e.into()),
                    }
                    customers.insert(c.clone());
                }
                if known && (contacts.is_some() || notes.is_some()) {
                    let u = store
                        .update_customer(c, contacts.as_deref(), notes.as_deref())
                        .await?;
                    if u.changed() {
                        let mut fields = Vec::new();
                        for (f, old, new) in [
                            ("contacts", &u.before.contacts, &u.after.contacts),
                            ("notes", &u.before.notes, &u.after.notes),
                        ] {
                            if old != new {
                                fields.push(f);
                                writeln!(
                                    out,
                                    "{name}:{line}: customer {c}: {f}: {} → {}",
                                    printable(old),
                                    printable(new)
                                )?;
                            }
                        }
                        updated_customers.push(format!("{c}: {}", fields.join(", ")));
                    }
                }
            }
            let new = NewDomain {
                name: domain.clone(),
                customer: customer.clone(),
                parked: parked.unwrap_or(false),
                tenant: opt("tenant"),
                m365_endpoint: opt("m365_endpoint"),
                relay_from: opt("relay_from"),
                relay_to: opt("relay_to"),
                key_people: new_people(&key_people),
            };
            if let Added::New(_) = store.add_domain(&new).await? {
                return Ok(RowOutcome::New);
            }
            let update = DomainUpdate {
                customer: customer.map(Some),
                parked,
                tenant: new.tenant.map(Some),
                m365_endpoint: new.m365_endpoint.map(Some),
                relay_from: new.relay_from.map(Some),
                relay_to: new.relay_to.map(Some),
                clear_key_people: false,
                add_key_people: key_people,
            };
            let u = store.update_domain(&domain, &update).await?;
            let changes = domain_changes(&u.before, &u.after);
            if changes.is_empty() {
                return Ok(RowOutcome::Unchanged);
            }
            write_changes(&mut out, &format!("{name}:{line}: {domain}: "), &changes)?;
            Ok(RowOutcome::Updated(
                domain,
                changes.iter().map(|(f, _, _)| *f).collect(),
            ))
        }
        .await;
        match result {
            Ok(RowOutcome::New) => added += 1,
            Ok(RowOutcome::Updated(d, fields)) => updated.push((d, fields)),
            Ok(RowOutcome::Unchanged) => unchanged += 1,
            Err(e) => {
                eprintln!("mailaudit: {name}:{line}: {e:#}; row skipped");
                bad += 1;
            }
        }
    }
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
    writeln!(out, "{summary}")?;
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
