//! `mailaudit customer`, `mailaudit domain`, `mailaudit import`: the inventory.

use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mailaudit_core::audit::normalize_domain;
use mailaudit_store::{KeyPerson, NewDomain, Store, StoreError};

use crate::cli::{CustomerCommand, DomainAddArgs, DomainCommand, ImportArgs};

/// Parses "Name <address>" (or a bare address) into a key person.
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
    let name = if name.is_empty() {
        email.split('@').next().unwrap_or("").to_string()
    } else {
        name
    };
    Ok(KeyPerson { name, email })
}

pub(crate) async fn customer(store: &dyn Store, cmd: &CustomerCommand) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match cmd {
        CustomerCommand::Add {
            name,
            contacts,
            notes,
        } => {
            let c = store.add_customer(name.trim(), contacts, notes).await?;
            writeln!(out, "added customer {}", c.name)?;
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

fn new_domain(name: &str, args: &DomainAddArgs) -> Result<NewDomain> {
    Ok(NewDomain {
        name: normalize_domain(name)?,
        customer: args.customer.clone(),
        parked: args.parked,
        tenant: args.tenant.clone(),
        m365_endpoint: args.m365_endpoint.clone(),
        relay_from: args.relay_from.clone(),
        relay_to: args.relay_to.clone(),
        key_people: args
            .key_people
            .iter()
            .map(|p| parse_person(p))
            .collect::<Result<_>>()?,
    })
}

pub(crate) async fn domain(store: &dyn Store, cmd: &DomainCommand) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match cmd {
        DomainCommand::Add(args) => {
            for name in &args.domains {
                let d = store.upsert_domain(&new_domain(name, args)?).await?;
                let owner = d.customer.map(|c| format!(" ({c})")).unwrap_or_default();
                writeln!(out, "added {}{owner}", d.name)?;
            }
        }
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

fn yes(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "no" | "n" | "false" | "0" => Ok(false),
        "yes" | "y" | "true" | "1" | "parked" => Ok(true),
        other => Err(format!("parked must be yes or no, not {other:?}")),
    }
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
    let (mut added, mut bad) = (0, 0);
    let mut customers: std::collections::HashSet<String> = store
        .customers()
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
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
        let get = |c: &str| {
            col(c)
                .and_then(|i| row.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let result: Result<()> = async {
            let domain = normalize_domain(&get("domain")).map_err(anyhow::Error::from)?;
            let customer = Some(get("customer")).filter(|c| !c.is_empty());
            if let Some(c) = &customer
                && !customers.contains(c)
            {
                match store.add_customer(c, &get("contacts"), &get("notes")).await {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                customers.insert(c.clone());
            }
            let key_people = get("key_people")
                .split(';')
                .filter(|p| !p.trim().is_empty())
                .map(parse_person)
                .collect::<Result<Vec<_>>>()?;
            let opt = |c: &str| Some(get(c)).filter(|v| !v.is_empty());
            store
                .upsert_domain(&NewDomain {
                    name: domain,
                    customer,
                    parked: yes(&get("parked")).map_err(anyhow::Error::msg)?,
                    tenant: opt("tenant"),
                    m365_endpoint: opt("m365_endpoint"),
                    relay_from: opt("relay_from"),
                    relay_to: opt("relay_to"),
                    key_people,
                })
                .await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => added += 1,
            Err(e) => {
                eprintln!("mailaudit: {name}:{line}: {e:#}; row skipped");
                bad += 1;
            }
        }
    }
    writeln!(
        io::stdout().lock(),
        "imported {added} domains, {bad} rows skipped"
    )?;
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
