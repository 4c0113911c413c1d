//! The customer and domain inventory.

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;

/// A customer of the MSP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Customer {
    /// Store id.
    pub id: i64,
    /// Unique name, as typed (surrounding white space removed).
    pub name: String,
    /// Free-form contacts.
    pub contacts: String,
    /// Free-form notes.
    pub notes: String,
    /// When it was added.
    pub created_at: Time,
}

/// A person to protect against impersonation (anti-phishing policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPerson {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// A domain of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DomainEntry {
    /// Store id.
    pub id: i64,
    /// Domain name, lower-case ASCII, no trailing dot.
    pub name: String,
    /// Owning customer's name.
    pub customer: Option<String>,
    /// Parked (sends and receives no mail).
    pub parked: bool,
    /// Microsoft 365 tenant name (`contoso` of `contoso.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// The tenant's Microsoft endpoint (`contoso-com.mail.protection.outlook.com`), if known.
    pub m365_endpoint: Option<String>,
    /// Relay test sender.
    pub relay_from: Option<String>,
    /// Relay test recipient.
    pub relay_to: Option<String>,
    /// People to protect against impersonation.
    #[sqlx(json)]
    pub key_people: Vec<KeyPerson>,
    /// When it was first added (kept by later updates).
    pub added_at: Time,
}

/// A domain to add or update ([`Store::upsert_domain`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewDomain {
    /// Domain name; normalised to lower-case ASCII without trailing dot.
    pub name: String,
    /// Owning customer (must exist).
    pub customer: Option<String>,
    /// Parked flag.
    pub parked: bool,
    /// Microsoft 365 tenant name.
    pub tenant: Option<String>,
    /// The tenant's Microsoft endpoint.
    pub m365_endpoint: Option<String>,
    /// Relay test sender.
    pub relay_from: Option<String>,
    /// Relay test recipient.
    pub relay_to: Option<String>,
    /// People to protect against impersonation.
    pub key_people: Vec<KeyPerson>,
}

/// Changes to one domain of the inventory ([`Store::update_domain`]): every field is left as
/// it is stored unless given here.
///
/// For the optional fields, `None` leaves the stored value, `Some(None)` (or `Some` of an empty
/// or blank text) clears it and `Some(Some(value))` sets it (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DomainUpdate {
    /// The owning customer (must exist); `Some(None)`: no customer.
    pub customer: Option<Option<String>>,
    /// The parked flag.
    pub parked: Option<bool>,
    /// The Microsoft 365 tenant name.
    pub tenant: Option<Option<String>>,
    /// The tenant's Microsoft endpoint.
    pub m365_endpoint: Option<Option<String>>,
    /// Relay test sender.
    pub relay_from: Option<Option<String>>,
    /// Relay test recipient.
    pub relay_to: Option<Option<String>>,
    /// Remove every key person (before `add_key_people` is applied, so both together replace
    /// the list).
    pub clear_key_people: bool,
    /// People to add ([`merge_key_people`]): a person whose address is already listed
    /// (compared case-insensitively) renames that entry in place; the others are appended in
    /// order. Existing people are never dropped unless `clear_key_people`.
    pub add_key_people: Vec<KeyPerson>,
}

impl DomainUpdate {
    /// True when it changes nothing, whatever is stored.
    pub fn is_empty(&self) -> bool {
        self.customer.is_none()
            && self.parked.is_none()
            && self.tenant.is_none()
            && self.m365_endpoint.is_none()
            && self.relay_from.is_none()
            && self.relay_to.is_none()
            && !self.clear_key_people
            && self.add_key_people.is_empty()
    }

    /// `entry` with these changes applied (text trimmed, empty text as none). Whether a new
    /// customer exists is for the store to check.
    pub fn apply(&self, entry: &DomainEntry) -> DomainEntry {
        fn text(v: &Option<String>) -> Option<String> {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        }
        let field = |change: &Option<Option<String>>, old: &Option<String>| match change {
            None => old.clone(),
            Some(v) => text(v),
        };
        let mut key_people = if self.clear_key_people {
            Vec::new()
        } else {
            entry.key_people.clone()
        };
        merge_key_people(&mut key_people, &self.add_key_people);
        DomainEntry {
            customer: field(&self.customer, &entry.customer),
            parked: self.parked.unwrap_or(entry.parked),
            tenant: field(&self.tenant, &entry.tenant),
            m365_endpoint: field(&self.m365_endpoint, &entry.m365_endpoint),
            relay_from: field(&self.relay_from, &entry.relay_from),
            relay_to: field(&self.relay_to, &entry.relay_to),
            key_people,
            ..entry.clone()
        }
    }
}

/// Adds `add` to the key people `list`, deduplicated by address (compared case-insensitively,
/// names and addresses trimmed): a person whose address is listed gives that entry its name in
/// place (a person without a name leaves the entry as it is); the others are appended in order,
/// one without a name named after the address's local part. Nobody is removed.
pub fn merge_key_people(list: &mut Vec<KeyPerson>, add: &[KeyPerson]) {
    for p in add {
        let email = p.email.trim();
        let name = p.name.trim();
        match list
            .iter_mut()
            .find(|q| q.email.trim().eq_ignore_ascii_case(email))
        {
            Some(q) if !name.is_empty() => q.name = name.to_string(),
            Some(_) => {}
            None => list.push(KeyPerson {
                name: if name.is_empty() {
                    email.split('@').next().unwrap_or("").to_string()
                } else {
                    name.to_string()
                },
                email: email.to_string(),
            }),
        }
    }
}

/// A stored thing before and after an update ([`Store::update_domain`],
/// [`Store::update_customer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updated<T> {
    /// As it was stored.
    pub before: T,
    /// As it is stored now.
    pub after: T,
}

impl<T: PartialEq> Updated<T> {
    /// True when the update changed anything (when not, nothing was written).
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// The outcome of [`Store::add_domain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Added<T> {
    /// Added: the entry as stored.
    New(T),
    /// One of that name was already stored; it is returned as stored, untouched.
    Existing(T),
}
