//! An in-memory [`DnsSource`] for unit tests and property tests of the core.
//!
//! Integration tests use a real DNS server on loopback instead (`mailaudit-lab`); this type is
//! the trait seam that keeps the core's own tests fast and runtime-free.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use crate::dns::{DnsError, DnsResult, DnsSource, Mx, check_name, normalize_name, reverse_name};

/// One record of a [`MemoryDns`] zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rr {
    /// A TXT record (already concatenated).
    Txt(String),
    /// An A record.
    A(Ipv4Addr),
    /// An AAAA record.
    Aaaa(Ipv6Addr),
    /// An MX record.
    Mx(u16, String),
    /// A PTR record (at a reverse name).
    Ptr(String),
    /// A CNAME: queries for other types at this name follow it.
    Cname(String),
    /// Every query for this name fails with this error.
    Fail(DnsError),
}

/// A map from names to records, answering like a resolver would (CNAMEs followed, up to 8).
#[derive(Debug, Default)]
pub struct MemoryDns {
    zone: HashMap<String, Vec<Rr>>,
    queries: Mutex<Vec<String>>,
}

impl MemoryDns {
    /// An empty zone: every name is NXDOMAIN.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record at `name` (builder style).
    pub fn with(mut self, name: &str, rr: Rr) -> Self {
        self.add(name, rr);
        self
    }

    /// Adds a record at `name`.
    pub fn add(&mut self, name: &str, rr: Rr) {
        self.zone.entry(normalize_name(name)).or_default().push(rr);
    }

    /// Shortcut for a TXT record.
    pub fn txt_at(self, name: &str, txt: &str) -> Self {
        self.with(name, Rr::Txt(txt.to_string()))
    }

    /// The questions asked so far, as `"TYPE name"` strings, in order.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().map(|q| q.clone()).unwrap_or_default()
    }

    fn lookup<T>(&self, qtype: &str, name: &str, pick: impl Fn(&Rr) -> Option<T>) -> DnsResult<T> {
        if let Ok(mut q) = self.queries.lock() {
            q.push(format!("{qtype} {name}"));
        }
        check_name(name)?;
        let mut name = normalize_name(name);
        for _ in 0..8 {
            let Some(rrs) = self.zone.get(&name) else {
                return Ok(vec![]);
            };
            if let Some(Rr::Fail(e)) = rrs.iter().find(|r| matches!(r, Rr::Fail(_))) {
                return Err(e.clone());
            }
            let found: Vec<T> = rrs.iter().filter_map(&pick).collect();
            if !found.is_empty() || qtype == "CNAME" {
                return Ok(found);
            }
            match rrs.iter().find_map(|r| match r {
                Rr::Cname(t) => Some(normalize_name(t)),
                _ => None,
            }) {
                Some(target) => name = target,
                None => return Ok(vec![]),
            }
        }
        Err(DnsError::Other("CNAME chain too long".into()))
    }

    /// Whether `name` exists: it has records (a CNAME included), or a name below it has
    /// (an empty non-terminal). A name whose queries fail ([`Rr::Fail`]) fails.
    fn name_exists(&self, name: &str) -> Result<bool, DnsError> {
        if let Ok(mut q) = self.queries.lock() {
            q.push(format!("EXISTS {name}"));
        }
        check_name(name)?;
        let name = normalize_name(name);
        if let Some(rrs) = self.zone.get(&name) {
            if let Some(Rr::Fail(e)) = rrs.iter().find(|r| matches!(r, Rr::Fail(_))) {
                return Err(e.clone());
            }
            return Ok(true);
        }
        let suffix = format!(".{name}");
        Ok(self.zone.keys().any(|k| k.ends_with(&suffix)))
    }
}

impl DnsSource for MemoryDns {
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        let r = self.lookup("TXT", name, |r| match r {
            Rr::Txt(t) => Some(t.clone()),
            _ => None,
        });
        async move { r }
    }
    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send {
        let r = self.lookup("A", name, |r| match r {
            Rr::A(a) => Some(*a),
            _ => None,
        });
        async move { r }
    }
    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send {
        let r = self.lookup("AAAA", name, |r| match r {
            Rr::Aaaa(a) => Some(*a),
            _ => None,
        });
        async move { r }
    }
    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<Mx>> + Send {
        let r = self.lookup("MX", name, |r| match r {
            Rr::Mx(p, h) => Some(Mx {
                preference: *p,
                exchange: normalize_name(h),
            }),
            _ => None,
        });
        async move { r }
    }
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send {
        let r = self.lookup("PTR", &reverse_name(ip), |r| match r {
            Rr::Ptr(h) => Some(normalize_name(h)),
            _ => None,
        });
        async move { r }
    }
    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        let r = self.lookup("CNAME", name, |r| match r {
            Rr::Cname(t) => Some(normalize_name(t)),
            _ => None,
        });
        async move { r }
    }
    fn exists(&self, name: &str) -> impl Future<Output = Result<bool, DnsError>> + Send {
        let r = self.name_exists(name);
        async move { r }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_exists_with_records_or_names_below_it() {
        let dns = MemoryDns::new()
            .with("a.example", Rr::A(Ipv4Addr::new(192, 0, 2, 1)))
            .txt_at("_dmarc.b.example", "v=DMARC1; p=none")
            .with("alias.example", Rr::Cname("nowhere.example".into()))
            .with("bad.example", Rr::Fail(DnsError::ServFail));
        let exists = |n: &str| pollster::block_on(dns.exists(n));
        assert_eq!(exists("a.example"), Ok(true), "records");
        assert_eq!(exists("A.Example."), Ok(true), "case and trailing dot");
        assert_eq!(exists("b.example"), Ok(true), "empty non-terminal");
        assert_eq!(exists("example"), Ok(true), "empty non-terminal");
        assert_eq!(exists("alias.example"), Ok(true), "a CNAME to nowhere");
        assert_eq!(exists("nowhere.example"), Ok(false));
        assert_eq!(exists("c.example"), Ok(false));
        assert_eq!(exists("ab.example"), Ok(false), "not a suffix match");
        assert_eq!(exists("bad.example"), Err(DnsError::ServFail));
    }
}
