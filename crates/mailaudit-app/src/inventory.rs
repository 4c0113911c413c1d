//! The inventory as the user enters it: key people and domain names checked, the changes an
//! entry would make to a stored domain, `domain add` that never erases, and the CSV import
//! (each row checked whole before anything of it is written, its outcome by line number).
//!
//! Never lose what the user entered: adding never erases a stored field; an import cell that
//! is empty (or a column that is missing) leaves the stored value as it is.

use std::collections::HashSet;
use std::io::Read;

use mailaudit_core::audit::normalize_domain;
use mailaudit_store::{
    Added, Customer, DomainEntry, DomainUpdate, KeyPerson, NewDomain, Store, StoreError,
    merge_key_people,
};

use crate::AppError;

/// Parses "Name <address>" (or a bare address, giving an empty name: [`merge_key_people`]
/// names a new person after the address and keeps a known person's name) into a key person.
pub fn parse_person(s: &str) -> Result<KeyPerson, AppError> {
    let s = s.trim();
    let (name, email) = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => (
            s[..a].trim().trim_matches('"').to_string(),
            s[a + 1..b].trim().to_string(),
        ),
        _ => (String::new(), s.to_string()),
    };
    if !email.contains('@') || email.contains(char::is_whitespace) {
        return Err(AppError::InvalidKeyPerson {
            text: s.to_string(),
        });
    }
    Ok(KeyPerson { name, email })
}

/// Each key person given, as typed (a bare address has no name); the first invalid one is
/// the error.
pub fn parse_people<S: AsRef<str>>(given: &[S]) -> Result<Vec<KeyPerson>, AppError> {
    given.iter().map(|p| parse_person(p.as_ref())).collect()
}

/// A key person as typed: `Name <address>`, or the bare address of a person with no name.
pub fn person_text(p: &KeyPerson) -> String {
    if p.name.is_empty() {
        p.email.clone()
    } else {
        format!("{} <{}>", p.name, p.email)
    }
}

/// The key people of a new domain: deduplicated by address, each with a name.
pub fn new_people(given: &[KeyPerson]) -> Vec<KeyPerson> {
    let mut list = Vec::new();
    merge_key_people(&mut list, given);
    list
}

/// Each name normalised, in order, each once; the first invalid name is the error.
pub fn domain_names<S: AsRef<str>>(names: &[S]) -> Result<Vec<String>, AppError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in names {
        let n = normalize_domain(name.as_ref())?;
        if seen.insert(n.clone()) {
            out.push(n);
        }
    }
    Ok(out)
}

/// One field an entry changes: its name as in the import's columns and `domain show --format
/// json`, the old and the new value as text (`(none)` for no value, `yes`/`no` for `parked`,
/// key people as `Name <address>` joined by `; `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field.
    pub field: &'static str,
    /// Its value before.
    pub old: String,
    /// Its value after.
    pub new: String,
}

fn opt_text(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".to_string())
}

/// The fields of `before` that `after` changes, in column order.
pub fn domain_changes(before: &DomainEntry, after: &DomainEntry) -> Vec<FieldChange> {
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
            out.push(FieldChange {
                field,
                old: opt_text(old),
                new: opt_text(new),
            });
        }
    };
    text("customer", &before.customer, &after.customer);
    text("tenant", &before.tenant, &after.tenant);
    text("m365_endpoint", &before.m365_endpoint, &after.m365_endpoint);
    text("relay_from", &before.relay_from, &after.relay_from);
    text("relay_to", &before.relay_to, &after.relay_to);
    if before.parked != after.parked {
        out.push(FieldChange {
            field: "parked",
            old: yes_no(before.parked),
            new: yes_no(after.parked),
        });
    }
    if before.key_people != after.key_people {
        out.push(FieldChange {
            field: "key_people",
            old: people(&before.key_people),
            new: people(&after.key_people),
        });
    }
    out
}

/// The fields given for a domain being added (`domain add`, an import row): `None` (and an
/// empty list) is "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainFields {
    /// The owning customer.
    pub customer: Option<String>,
    /// Parked (`Some(false)` only from an import cell that says no).
    pub parked: Option<bool>,
    /// The Microsoft 365 tenant name.
    pub tenant: Option<String>,
    /// The tenant's Microsoft endpoint.
    pub m365_endpoint: Option<String>,
    /// Relay test sender.
    pub relay_from: Option<String>,
    /// Relay test recipient.
    pub relay_to: Option<String>,
    /// Key people as given (a bare address has no name).
    pub key_people: Vec<KeyPerson>,
}

impl DomainFields {
    /// A new domain `name` with these fields (not parked unless given so).
    pub fn new_domain(&self, name: String) -> NewDomain {
        NewDomain {
            name,
            customer: self.customer.clone(),
            parked: self.parked.unwrap_or(false),
            tenant: self.tenant.clone(),
            m365_endpoint: self.m365_endpoint.clone(),
            relay_from: self.relay_from.clone(),
            relay_to: self.relay_to.clone(),
            key_people: new_people(&self.key_people),
        }
    }

    /// These fields as an update of an existing domain: it sets what is given and never clears
    /// a field (key people are added); applying it changes nothing exactly when the stored
    /// domain already has every value given.
    pub fn as_update(&self) -> DomainUpdate {
        DomainUpdate {
            customer: self.customer.clone().map(Some),
            parked: self.parked,
            tenant: self.tenant.clone().map(Some),
            m365_endpoint: self.m365_endpoint.clone().map(Some),
            relay_from: self.relay_from.clone().map(Some),
            relay_to: self.relay_to.clone().map(Some),
            clear_key_people: false,
            add_key_people: self.key_people.clone(),
        }
    }
}

/// What [`add_domain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The domain was added.
    New(DomainEntry),
    /// The domain was already in the inventory and was left as it is.
    Existing {
        /// The stored domain, unchanged.
        stored: DomainEntry,
        /// What it would be with the fields given (`domain set` makes it so).
        wanted: Box<DomainEntry>,
        /// The fields the given values differ in (empty: it already has them all).
        changes: Vec<FieldChange>,
    },
}

/// Adds `name` (normalised) with `fields`; an existing domain is left as it is and reported
/// with how the fields given differ from it.
pub async fn add_domain(
    store: &dyn Store,
    name: String,
    fields: &DomainFields,
) -> Result<AddOutcome, AppError> {
    Ok(match store.add_domain(&fields.new_domain(name)).await? {
        Added::New(d) => AddOutcome::New(d),
        Added::Existing(d) => {
            let wanted = Box::new(fields.as_update().apply(&d));
            let changes = domain_changes(&d, &wanted);
            AddOutcome::Existing {
                stored: d,
                wanted,
                changes,
            }
        }
    })
}

/// What [`add_customer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerAdded {
    /// The customer was added.
    New(Customer),
    /// The customer already existed and was left as it is.
    Existing {
        /// The stored customer, unchanged.
        stored: Customer,
        /// The fields given (`contacts`, `notes`) that differ from the stored ones: `old` as
        /// stored, `new` as given.
        differ: Vec<FieldChange>,
    },
}

/// Adds a customer with the contacts and notes given (`None`: not given, stored empty); an
/// existing customer is left as it is and reported with how the given fields differ.
pub async fn add_customer(
    store: &dyn Store,
    name: &str,
    contacts: Option<&str>,
    notes: Option<&str>,
) -> Result<CustomerAdded, AppError> {
    match store
        .add_customer(name, contacts.unwrap_or(""), notes.unwrap_or(""))
        .await
    {
        Ok(c) => Ok(CustomerAdded::New(c)),
        Err(StoreError::Conflict(_)) => {
            let stored = store.customer(name).await?;
            let mut differ = Vec::new();
            for (field, given, old) in [
                ("contacts", contacts, &stored.contacts),
                ("notes", notes, &stored.notes),
            ] {
                if let Some(g) = given
                    && g != old
                {
                    differ.push(FieldChange {
                        field,
                        old: old.clone(),
                        new: g.to_string(),
                    });
                }
            }
            Ok(CustomerAdded::Existing { stored, differ })
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the customer exists.
pub async fn customer_exists(store: &dyn Store, name: &str) -> Result<bool, AppError> {
    match store.customer(name).await {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The domains of `names` that are not in the inventory, in order.
pub async fn missing_domains<'a>(
    store: &dyn Store,
    names: &'a [String],
) -> Result<Vec<&'a str>, AppError> {
    let mut missing = Vec::new();
    for name in names {
        match store.domain(name).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => missing.push(name.as_str()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(missing)
}

/// The columns the CSV import reads.
pub const COLUMNS: [&str; 10] = [
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

/// A yes/no cell (`parked`): `None` when empty (not given).
pub fn parse_yes_no(s: &str) -> Result<Option<bool>, AppError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "no" | "n" | "false" | "0" => Ok(Some(false)),
        "yes" | "y" | "true" | "1" | "parked" => Ok(Some(true)),
        other => Err(AppError::InvalidParked {
            value: other.to_string(),
        }),
    }
}

/// A customer an import row names that already existed, with the fields the row changed
/// (old and new as stored: an empty text is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerChanges {
    /// The customer.
    pub name: String,
    /// What changed (`contacts`, `notes`), in that order.
    pub changes: Vec<FieldChange>,
}

/// What one import row did to its domain.
#[derive(Debug)]
pub enum RowOutcome {
    /// A new domain.
    New(String),
    /// An existing domain, with the fields that changed.
    Updated(String, Vec<FieldChange>),
    /// An existing domain the row changed nothing of.
    Unchanged(String),
    /// The row is invalid (nothing of it was written) or writing its domain failed.
    Skipped(AppError),
    /// The CSV reader could not read the row.
    Unreadable(csv::Error),
}

/// One import row: its line number (the header is line 1) and what it did.
#[derive(Debug)]
pub struct ImportRow {
    /// The line number.
    pub line: usize,
    /// The customer the row named was new and has been added.
    pub customer_added: Option<String>,
    /// The customer the row named existed, and the row's contacts or notes changed it.
    pub customer_changed: Option<CustomerChanges>,
    /// What the row did to its domain.
    pub outcome: RowOutcome,
}

/// The CSV import, row by row: headers matched case-insensitively (spaces and dashes as
/// underscores, a byte-order mark ignored), a missing column and an empty cell both "not
/// given", rows of any length.
pub struct CsvImport<R> {
    csv: csv::Reader<R>,
    headers: Vec<String>,
    record: csv::StringRecord,
    line: usize,
    customers: Option<HashSet<String>>,
}

impl<R: Read> CsvImport<R> {
    /// Reads the header row: [`AppError::CsvHeader`] when it cannot be read,
    /// [`AppError::NoDomainColumn`] when it has no `domain` column.
    pub fn new(reader: R) -> Result<Self, AppError> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers: Vec<String> = csv
            .headers()
            .map_err(AppError::CsvHeader)?
            .iter()
            .map(|h| {
                h.trim_start_matches('\u{feff}')
                    .to_ascii_lowercase()
                    .replace([' ', '-'], "_")
            })
            .collect();
        if !headers.iter().any(|h| h == "domain") {
            return Err(AppError::NoDomainColumn);
        }
        Ok(CsvImport {
            csv,
            headers,
            record: csv::StringRecord::new(),
            line: 1,
            customers: None,
        })
    }

    /// The header's columns the import does not read (ignored), as normalised.
    pub fn unknown_columns(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|h| !COLUMNS.contains(&h.as_str()))
            .cloned()
            .collect()
    }

    /// Reads the next row and applies it to the store; `None` at the end. The error is the
    /// store's failure to list the customers (on the first call); a row's own failure is its
    /// outcome.
    pub async fn next_row(&mut self, store: &dyn Store) -> Result<Option<ImportRow>, AppError> {
        if self.customers.is_none() {
            let known = store.customers().await?.into_iter().map(|c| c.name);
            self.customers = Some(known.collect());
        }
        let read = self.csv.read_record(&mut self.record);
        self.line += 1;
        let line = self.line;
        let mut row = ImportRow {
            line,
            customer_added: None,
            customer_changed: None,
            outcome: RowOutcome::Unchanged(String::new()),
        };
        match read {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                row.outcome = RowOutcome::Unreadable(e);
                return Ok(Some(row));
            }
        }
        let customers = self.customers.get_or_insert_with(HashSet::new);
        row.outcome = match apply_row(store, &self.headers, &self.record, customers, &mut row).await
        {
            Ok(outcome) => outcome,
            Err(e) => RowOutcome::Skipped(e),
        };
        Ok(Some(row))
    }
}

/// Checks one row whole, then writes it: its customer (added, or its contacts and notes
/// updated), then its domain (added, or updated with the cells given).
async fn apply_row(
    store: &dyn Store,
    headers: &[String],
    record: &csv::StringRecord,
    customers: &mut HashSet<String>,
    row: &mut ImportRow,
) -> Result<RowOutcome, AppError> {
    // A missing column and an empty cell are the same: not given.
    let get = |c: &str| {
        headers
            .iter()
            .position(|h| h == c)
            .and_then(|i| record.get(i))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let opt = |c: &str| Some(get(c)).filter(|v| !v.is_empty());
    // The whole row is checked before anything of it is written.
    let domain = normalize_domain(&get("domain"))?;
    let parked = parse_yes_no(&get("parked"))?;
    let key_people = get("key_people")
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(parse_person)
        .collect::<Result<Vec<_>, _>>()?;
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
                Ok(_) => row.customer_added = Some(c.clone()),
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
                let mut changes = Vec::new();
                for (field, old, new) in [
                    ("contacts", &u.before.contacts, &u.after.contacts),
                    ("notes", &u.before.notes, &u.after.notes),
                ] {
                    if old != new {
                        changes.push(FieldChange {
                            field,
                            old: old.clone(),
                            new: new.clone(),
                        });
                    }
                }
                row.customer_changed = Some(CustomerChanges {
                    name: c.clone(),
                    changes,
                });
            }
        }
    }
    let fields = DomainFields {
        customer,
        parked,
        tenant: opt("tenant"),
        m365_endpoint: opt("m365_endpoint"),
        relay_from: opt("relay_from"),
        relay_to: opt("relay_to"),
        key_people,
    };
    if let Added::New(_) = store.add_domain(&fields.new_domain(domain.clone())).await? {
        return Ok(RowOutcome::New(domain));
    }
    let u = store.update_domain(&domain, &fields.as_update()).await?;
    let changes = domain_changes(&u.before, &u.after);
    Ok(if changes.is_empty() {
        RowOutcome::Unchanged(domain)
    } else {
        RowOutcome::Updated(domain, changes)
    })
}

/// The counts of an import, for its summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportTally {
    /// New domains.
    pub added: usize,
    /// Updated domains, in row order, with the fields that changed.
    pub updated: Vec<(String, Vec<&'static str>)>,
    /// Existing domains left as they were.
    pub unchanged: usize,
    /// Rows skipped (invalid, unreadable, or failed).
    pub skipped: usize,
    /// New customers.
    pub new_customers: usize,
    /// Existing customers updated, in row order, with the fields that changed.
    pub updated_customers: Vec<(String, Vec<&'static str>)>,
}

impl ImportTally {
    /// Counts one row.
    pub fn count(&mut self, row: &ImportRow) {
        if row.customer_added.is_some() {
            self.new_customers += 1;
        }
        if let Some(c) = &row.customer_changed {
            let fields = c.changes.iter().map(|f| f.field).collect();
            self.updated_customers.push((c.name.clone(), fields));
        }
        match &row.outcome {
            RowOutcome::New(_) => self.added += 1,
            RowOutcome::Updated(d, changes) => self
                .updated
                .push((d.clone(), changes.iter().map(|f| f.field).collect())),
            RowOutcome::Unchanged(_) => self.unchanged += 1,
            RowOutcome::Skipped(_) | RowOutcome::Unreadable(_) => self.skipped += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use mailaudit_store::SqliteStore;

    use super::*;

    fn person(name: &str, email: &str) -> KeyPerson {
        KeyPerson {
            name: name.to_string(),
            email: email.to_string(),
        }
    }

    #[test]
    fn a_key_person_is_name_and_address_or_a_bare_address() {
        assert_eq!(
            parse_person(r#" "Ann Lee" <ann@example.com> "#).unwrap(),
            person("Ann Lee", "ann@example.com")
        );
        assert_eq!(
            parse_person("bob@example.com").unwrap(),
            person("", "bob@example.com")
        );
        for bad in ["Ann", "Ann <ann at example.com>", "a b@example.com", ""] {
            let e = parse_person(bad).unwrap_err();
            assert!(
                matches!(&e, AppError::InvalidKeyPerson { text } if text == bad.trim()),
                "{bad:?}: {e:?}"
            );
        }
        assert_eq!(
            parse_person(" Ann ").unwrap_err().to_string(),
            r#"invalid key person "Ann": expected "Name <address>""#
        );
    }

    #[test]
    fn domain_names_are_normalised_once_each_and_any_invalid_one_is_the_error() {
        assert_eq!(
            domain_names(&["Example.COM.", "example.com", "b.example"]).unwrap(),
            ["example.com", "b.example"]
        );
        let e = domain_names(&["ok.example", "bad..example"]).unwrap_err();
        assert!(matches!(e, AppError::Domain(_)), "{e:?}");
    }

    #[test]
    fn yes_no_cells() {
        assert_eq!(parse_yes_no(" ").unwrap(), None);
        assert_eq!(parse_yes_no("Yes").unwrap(), Some(true));
        assert_eq!(parse_yes_no("parked").unwrap(), Some(true));
        assert_eq!(parse_yes_no("0").unwrap(), Some(false));
        assert_eq!(
            parse_yes_no("Maybe").unwrap_err().to_string(),
            r#"parked must be yes or no, not "maybe""#
        );
    }

    fn entry(name: &str) -> DomainEntry {
        DomainEntry {
            id: 0,
            name: name.to_string(),
            customer: None,
            parked: false,
            tenant: None,
            m365_endpoint: None,
            relay_from: None,
            relay_to: None,
            key_people: Vec::new(),
            added_at: 0,
        }
    }

    #[test]
    fn changes_are_listed_in_column_order_with_none_and_yes_no() {
        let before = entry("a.example");
        let mut after = before.clone();
        after.parked = true;
        after.tenant = Some("t".into());
        after.key_people = vec![person("Ann", "ann@a.example"), person("", "b@a.example")];
        let changes = domain_changes(&before, &after);
        let fields: Vec<_> = changes.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["tenant", "parked", "key_people"]);
        assert_eq!(
            (changes[0].old.as_str(), changes[0].new.as_str()),
            ("(none)", "t")
        );
        assert_eq!(
            (changes[1].old.as_str(), changes[1].new.as_str()),
            ("no", "yes")
        );
        assert_eq!(changes[2].new, "Ann <ann@a.example>; b@a.example");
        assert!(domain_changes(&after, &after).is_empty());
    }

    #[test]
    fn fields_given_as_an_update_never_clear() {
        let fields = DomainFields {
            tenant: Some("t".into()),
            ..DomainFields::default()
        };
        let mut stored = entry("a.example");
        stored.customer = Some("Acme".into());
        stored.parked = true;
        stored.key_people = vec![person("Ann", "ann@a.example")];
        let wanted = fields.as_update().apply(&stored);
        assert_eq!(wanted.customer.as_deref(), Some("Acme"));
        assert!(wanted.parked);
        assert_eq!(wanted.key_people, stored.key_people);
        assert_eq!(wanted.tenant.as_deref(), Some("t"));
        assert!(!fields.new_domain("a.example".into()).parked);
    }

    #[tokio::test]
    async fn adding_an_existing_domain_changes_nothing_and_tells_how_it_differs() {
        let store = SqliteStore::open_memory().await.unwrap();
        let first = DomainFields {
            tenant: Some("one".into()),
            ..DomainFields::default()
        };
        let added = add_domain(&store, "a.example".into(), &first)
            .await
            .unwrap();
        assert!(matches!(added, AddOutcome::New(ref d) if d.tenant.as_deref() == Some("one")));
        let same = add_domain(&store, "a.example".into(), &DomainFields::default())
            .await
            .unwrap();
        assert!(matches!(same, AddOutcome::Existing { ref changes, .. } if changes.is_empty()));
        let other = DomainFields {
            tenant: Some("two".into()),
            ..DomainFields::default()
        };
        let AddOutcome::Existing {
            stored, changes, ..
        } = add_domain(&store, "a.example".into(), &other)
            .await
            .unwrap()
        else {
            panic!("an existing domain")
        };
        assert_eq!(stored.tenant.as_deref(), Some("one"));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].old.as_str(), changes[0].new.as_str()),
            ("one", "two")
        );
        let kept = store.domain("a.example").await.unwrap();
        assert_eq!(kept.tenant.as_deref(), Some("one"));
    }

    #[tokio::test]
    async fn adding_an_existing_customer_changes_nothing_and_tells_how_it_differs() {
        let store = SqliteStore::open_memory().await.unwrap();
        let added = add_customer(&store, "Acme", Some("ops@acme.example"), None)
            .await
            .unwrap();
        assert!(matches!(added, CustomerAdded::New(ref c) if c.contacts == "ops@acme.example"));
        assert!(customer_exists(&store, "Acme").await.unwrap());
        assert!(!customer_exists(&store, "Other").await.unwrap());
        let same = add_customer(&store, "Acme", None, Some("")).await.unwrap();
        assert!(matches!(same, CustomerAdded::Existing { ref differ, .. } if differ.is_empty()));
        let CustomerAdded::Existing { stored, differ } =
            add_customer(&store, "Acme", Some("it@acme.example"), Some("vip"))
                .await
                .unwrap()
        else {
            panic!("an existing customer")
        };
        assert_eq!(stored.contacts, "ops@acme.example");
        let fields: Vec<_> = differ
            .iter()
            .map(|c| (c.field, c.old.as_str(), c.new.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("contacts", "ops@acme.example", "it@acme.example"),
                ("notes", "", "vip")
            ]
        );
        let kept = store.customer("Acme").await.unwrap();
        assert_eq!(
            (kept.contacts.as_str(), kept.notes.as_str()),
            ("ops@acme.example", "")
        );
    }

    #[tokio::test]
    async fn missing_domains_are_named_in_order() {
        let store = SqliteStore::open_memory().await.unwrap();
        add_domain(&store, "b.example".into(), &DomainFields::default())
            .await
            .unwrap();
        let names = ["c.example", "b.example", "a.example"].map(String::from);
        assert_eq!(
            missing_domains(&store, &names).await.unwrap(),
            ["c.example", "a.example"]
        );
    }

    async fn run(store: &dyn Store, csv: &str) -> (Vec<ImportRow>, ImportTally) {
        let mut import = CsvImport::new(csv.as_bytes()).unwrap();
        let (mut rows, mut tally) = (Vec::new(), ImportTally::default());
        while let Some(row) = import.next_row(store).await.unwrap() {
            tally.count(&row);
            rows.push(row);
        }
        (rows, tally)
    }

    #[test]
    fn the_header_needs_a_domain_column_and_unknown_columns_are_named() {
        let e = CsvImport::new("customer,tenant\nAcme,t\n".as_bytes())
            .err()
            .unwrap();
        assert!(matches!(e, AppError::NoDomainColumn), "{e:?}");
        let import = CsvImport::new("\u{feff}Domain,M365 Endpoint,Colour\n".as_bytes()).unwrap();
        assert_eq!(import.unknown_columns(), ["colour"]);
    }

    #[tokio::test]
    async fn an_import_adds_updates_without_erasing_and_skips_bad_rows_by_line() {
        let store = SqliteStore::open_memory().await.unwrap();
        let (rows, tally) = run(
            &store,
            "domain,customer,parked,tenant,key_people,contacts\n\
             a.example,Acme,no,t1,Ann <ann@a.example>,ops@acme.example\n\
             bad..example,,,,,\n\
             b.example,,maybe,,,\n\
             c.example,,,,not a person,\n",
        )
        .await;
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        assert!(matches!(rows[0].outcome, RowOutcome::New(ref d) if d == "a.example"));
        assert_eq!(rows[0].customer_added.as_deref(), Some("Acme"));
        assert!(matches!(
            rows[1].outcome,
            RowOutcome::Skipped(AppError::Domain(_))
        ));
        assert!(matches!(
            rows[2].outcome,
            RowOutcome::Skipped(AppError::InvalidParked { .. })
        ));
        assert!(matches!(
            rows[3].outcome,
            RowOutcome::Skipped(AppError::InvalidKeyPerson { .. })
        ));
        assert_eq!((tally.added, tally.skipped, tally.new_customers), (1, 3, 1));
        // Nothing of an invalid row was written.
        assert!(store.domain("b.example").await.is_err());

        // Empty cells and missing columns leave what is stored; cells with a value change it.
        let (rows, tally) = run(
            &store,
            "domain,customer,tenant,relay_to,contacts,notes\n\
             a.example,Acme,,,,\n\
             a.example,Acme,t2,,ops@acme.example,vip\n",
        )
        .await;
        assert!(matches!(rows[0].outcome, RowOutcome::Unchanged(_)));
        assert!(rows[0].customer_changed.is_none());
        let RowOutcome::Updated(d, changes) = &rows[1].outcome else {
            panic!("an update: {:?}", rows[1].outcome)
        };
        assert_eq!(d, "a.example");
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (
                changes[0].field,
                changes[0].old.as_str(),
                changes[0].new.as_str()
            ),
            ("tenant", "t1", "t2")
        );
        let c = rows[1].customer_changed.as_ref().unwrap();
        assert_eq!(
            c.changes.iter().map(|f| f.field).collect::<Vec<_>>(),
            ["notes"]
        );
        assert_eq!(tally.updated, [("a.example".to_string(), vec!["tenant"])]);
        assert_eq!(
            tally.updated_customers,
            [("Acme".to_string(), vec!["notes"])]
        );
        assert_eq!(
            (tally.added, tally.unchanged, tally.new_customers),
            (0, 1, 0)
        );
        let a = store.domain("a.example").await.unwrap();
        assert_eq!(a.tenant.as_deref(), Some("t2"));
        assert_eq!(a.key_people, [person("Ann", "ann@a.example")]);
        assert_eq!(a.customer.as_deref(), Some("Acme"));
    }
}
