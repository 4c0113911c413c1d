//! An in-memory [`DnsSource`] for unit tests and property tests of the core.
//!
//! Integration tests use a real DNS server on loopback instead (`mailaudit-lab`); this type is
//! the trait seam that keeps the core's own tests fast and runtime-free.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use crate::dns::{
    DnsError, DnsResult, DnsSource, Mx, Security, Tlsa, check_name, normalize_name, reverse_name,
};

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
    /// A TLSA record (at `_25._tcp.<host>`).
    Tlsa(Tlsa),
    /// Every query for this name fails with this error.
    Fail(DnsError),
}

/// A map from names to records, answering like a resolver would (CNAMEs followed, up to 8).
#[derive(Debug, Default)]
pub struct MemoryDns {
    zone: HashMap<String, Vec<Rr>>,
    /// DNSSEC status by zone apex; empty: the source does not validate.
    security: HashMap<String, Security>,
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

    /// Makes this a validating source and sets the DNSSEC status of the zone at `name` (builder
    /// style). [`DnsSource::security`] answers for a name from the closest enclosing name
    /// given here, and `Insecure` when there is none (an unsigned delegation); a source with no
    /// status given at all answers `Ok(None)` (validation off). A name whose queries fail
    /// ([`Rr::Fail`]) fails this question too.
    pub fn with_security(mut self, name: &str, security: Security) -> Self {
        self.security.insert(normalize_name(name), security);
        self
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

impl MemoryDns {
    fn zone_security(&self, name: &str) -> Result<Option<Security>, DnsError> {
        // A source without validation asks nothing (queries() stays as before DNSSEC).
        if self.security.is_empty() {
            return Ok(None);
        }
        if let Ok(mut q) = self.queries.lock() {
            q.push(format!("SECURITY {name}"));
        }
        check_name(name)?;
        let name = normalize_name(name);
        if let Some(Rr::Fail(e)) = self
            .zone
            .get(&name)
            .and_then(|rrs| rrs.iter().find(|r| matches!(r, Rr::Fail(_))))
        {
            return Err(e.clone());
        }
        let mut at = name.as_str();
        loop {
            if let Some(s) = self.security.get(at) {
                return Ok(Some(*s));
            }
            match at.split_once('.') {
                Some((_, parent)) => at = parent,
                None => return Ok(Some(Security::Insecure)),
            }
        }
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
    fn tlsa(&self, name: &str) -> impl Future<Output = DnsResult<Tlsa>> + Send {
        let r = self.lookup("TLSA", name, |r| match r {
            Rr::Tlsa(t) => Some(t.clone()),
            _ => None,
        });
        async move { r }
    }
    fn security(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Security>, DnsError>> + Send {
        let r = self.zone_security(name);
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

    #[test]
    fn tlsa_records_and_zone_security() {
        let t = Tlsa {
            cert_usage: 3,
            selector: 1,
            matching_type: 1,
            cert_association_data: "ab".repeat(32),
        };
        let plain = MemoryDns::new().with("_25._tcp.mx.example", Rr::Tlsa(t.clone()));
        assert_eq!(
            pollster::block_on(plain.security("example")),
            Ok(None),
            "no status given: validation off"
        );
        assert_eq!(
            pollster::block_on(plain.tlsa("_25._tcp.mx.example")),
            Ok(vec![t.clone()])
        );
        assert_eq!(
            pollster::block_on(plain.tlsa("_25._tcp.other.example")),
            Ok(vec![])
        );

        let dns = MemoryDns::new()
            .with_security("example", Security::Secure)
            .with_security("bogus.example", Security::Bogus)
            .with("down.example", Rr::Fail(DnsError::Timeout));
        let sec = |n: &str| pollster::block_on(dns.security(n));
        assert_eq!(sec("example"), Ok(Some(Security::Secure)));
        assert_eq!(
            sec("mx.example"),
            Ok(Some(Security::Secure)),
            "below the apex"
        );
        assert_eq!(
            sec("a.bogus.example"),
            Ok(Some(Security::Bogus)),
            "closest zone"
        );
        assert_eq!(
            sec("example.org"),
            Ok(Some(Security::Insecure)),
            "no zone given"
        );
        assert_eq!(sec("down.example"), Err(DnsError::Timeout));
    }
}
