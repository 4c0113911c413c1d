//! The resolver seam: what the pure core asks of DNS.
//!
//! Everything in `mailaudit-core` that needs DNS data takes a [`DnsSource`]. The trait uses
//! `async fn` so that the I/O layer (`mailaudit-net`) can drive thousands of audits at once on
//! its runtime, but the core itself depends on no runtime: unit tests drive it with a trivial
//! executor over [`crate::memory::MemoryDns`].
//!
//! An empty answer (NXDOMAIN or NODATA) is `Ok(vec![])`. Only a failure to get an answer
//! (timeout, SERVFAIL, REFUSED, network error) is an `Err`: callers must never report such a
//! failure as a missing record. [`DnsSource::exists`] tells NXDOMAIN (the name does not exist)
//! from NODATA (it exists, with no record of the type asked).

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::name::normalize_name;

/// Why a DNS question got no usable answer. Never means "the record does not exist".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DnsError {
    /// No reply within the time budget (after retries).
    Timeout,
    /// The server answered SERVFAIL.
    ServFail,
    /// The server answered REFUSED.
    Refused,
    /// The name cannot be queried (empty label, label over 63 octets, name over 253 octets).
    InvalidName(String),
    /// Any other failure (network error, malformed reply, other RCODE).
    Other(String),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::Timeout => f.write_str("timed out"),
            DnsError::ServFail => f.write_str("SERVFAIL"),
            DnsError::Refused => f.write_str("REFUSED"),
            DnsError::InvalidName(n) => write!(f, "invalid name {n:?}"),
            DnsError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for DnsError {}

/// The outcome of one DNS question: the records (empty for NXDOMAIN/NODATA) or a failure.
pub type DnsResult<T> = Result<Vec<T>, DnsError>;

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Mx {
    /// The preference (lower is preferred).
    pub preference: u16,
    /// The exchange host, lower-case, without the trailing dot (`""` for a null MX `.`).
    pub exchange: String,
}

/// The DNSSEC status of the zone that answers for a name, from a validated answer (RFC 4033
/// §5, RFC 4035 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// "An RRset for which the resolver is able to build a chain of signed DNSKEY and DS RRs
    /// from a trusted security anchor to the RRset" (RFC 4033 §5).
    Secure,
    /// "An RRset for which the resolver knows that it has no chain of signed DNSKEY and DS RRs
    /// from any trusted starting point to the RRset" (RFC 4033 §5): an unsigned zone below an
    /// insecure delegation.
    Insecure,
    /// "An RRset for which the resolver believes that it ought to be able to establish a chain
    /// of trust but for which it is unable to do so" (RFC 4033 §5): expired or bad signatures,
    /// a DS that matches no key. Validating resolvers answer SERVFAIL.
    Bogus,
}

/// One TLSA record (RFC 6698 §2.1), fields named after the RFC's.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Tlsa {
    /// Certificate Usage (RFC 6698 §2.1.1, RFC 7218 names: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA,
    /// 3 DANE-EE).
    pub cert_usage: u8,
    /// Selector (§2.1.2): 0 the full certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching Type (§2.1.3): 0 exact match, 1 SHA-256, 2 SHA-512.
    pub matching_type: u8,
    /// Certificate Association Data, lower-case hexadecimal.
    pub cert_association_data: String,
}

/// Read-only access to DNS, as the checks need it.
///
/// Names are given lower-case without a trailing dot. Implementations follow CNAMEs for every
/// type but [`DnsSource::cname`], which returns the CNAME target published at the name itself.
pub trait DnsSource: Send + Sync {
    /// TXT records at `name`, each record's character-strings concatenated (RFC 7208 §3.3).
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send;
    /// A records at `name`.
    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send;
    /// AAAA records at `name`.
    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send;
    /// MX records at `name`.
    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<Mx>> + Send;
    /// PTR records for `ip` (the reverse name is built by the implementation).
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send;
    /// The CNAME target published at `name` itself (lower-case, no trailing dot), if any.
    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send;
    /// Whether `name` exists in the DNS: `Ok(false)` only for NXDOMAIN (RFC 1035 §4.1.1, RFC
    /// 8020); a name with records of any type, or an empty non-terminal (a name with nothing
    /// but names below it), exists. A failure to get an answer is an `Err`, never `Ok(false)`.
    /// The resolver answers it from its MX question at `name`, so asking it next to
    /// [`DnsSource::mx`] costs no query.
    fn exists(&self, name: &str) -> impl Future<Output = Result<bool, DnsError>> + Send;
    /// TLSA records at `name` (`_25._tcp.<mx host>`, RFC 7672 §2.2). A source that cannot ask
    /// for TLSA records answers with an error, never with "none".
    fn tlsa(&self, name: &str) -> impl Future<Output = DnsResult<Tlsa>> + Send {
        let _ = name;
        async {
            Err(DnsError::Other(
                "TLSA look-ups are not supported here".into(),
            ))
        }
    }
    /// The DNSSEC status of the zone that answers for `name`, validated from the configured
    /// trust anchor; `Ok(None)` when this source does not validate (`--no-dnssec`). A bogus
    /// zone is `Ok(Some(Security::Bogus))`, not an error: only a failure to get an answer at
    /// all is an `Err`.
    fn security(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Security>, DnsError>> + Send {
        let _ = name;
        async { Ok(None) }
    }
}

impl<T: DnsSource> DnsSource for &T {
    fn txt(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        (**self).txt(name)
    }
    fn a(&self, name: &str) -> impl Future<Output = DnsResult<Ipv4Addr>> + Send {
        (**self).a(name)
    }
    fn aaaa(&self, name: &str) -> impl Future<Output = DnsResult<Ipv6Addr>> + Send {
        (**self).aaaa(name)
    }
    fn mx(&self, name: &str) -> impl Future<Output = DnsResult<Mx>> + Send {
        (**self).mx(name)
    }
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = DnsResult<String>> + Send {
        (**self).ptr(ip)
    }
    fn cname(&self, name: &str) -> impl Future<Output = DnsResult<String>> + Send {
        (**self).cname(name)
    }
    fn exists(&self, name: &str) -> impl Future<Output = Result<bool, DnsError>> + Send {
        (**self).exists(name)
    }
    fn tlsa(&self, name: &str) -> impl Future<Output = DnsResult<Tlsa>> + Send {
        (**self).tlsa(name)
    }
    fn security(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Security>, DnsError>> + Send {
        (**self).security(name)
    }
}

/// The TXT records at `name` whose text begins with `tag` in any letter case (`v=STSv1`,
/// `v=TLSRPTv1`): a record that begins with the tag counts as an attempt at one, even when the
/// rest is invalid. A failed look-up is an `Err`, which the caller reports as
/// DNS-LOOKUP-FAILED (never "no record").
pub async fn txt_tagged<D: DnsSource>(dns: &D, name: &str, tag: &str) -> DnsResult<String> {
    let txts = dns.txt(name).await?;
    Ok(txts
        .into_iter()
        .filter(|t| {
            t.trim_start()
                .get(..tag.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(tag))
        })
        .collect())
}

/// Checks that `name` can be sent as a DNS question: non-empty labels of at most 63 octets and
/// at most 253 octets in all (RFC 1035 §2.3.4).
pub fn check_name(name: &str) -> Result<(), DnsError> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.len() > 253 || n.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(DnsError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// Builds the reverse-lookup name for `ip` (`in-addr.arpa` / `ip6.arpa`, RFC 1035 §3.5, RFC 3596).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_per_rfc1035() {
        for (name, ok) in [
            ("example.com", true),
            ("example.com.", true),
            ("", false),
            ("a..b", false),
            (&format!("{}.com", "a".repeat(63)), true),
            (&format!("{}.com", "a".repeat(64)), false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.1".parse().unwrap()),
            "1.2.0.192.in-addr.arpa"
        );
        assert!(reverse_name("2001:db8::1".parse().unwrap()).starts_with("1.0.0.0."));
        assert!(reverse_name("2001:db8::1".parse().unwrap()).ends_with("8.b.d.0.1.0.0.2.ip6.arpa"));
    }
}
