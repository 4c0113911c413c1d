//! DNSSEC and DANE for SMTP (RFC 7672, RFC 7671, RFC 6698): what a domain's zone and its MX
//! hosts' zones say about DNSSEC, the TLSA records of each MX, whether they are usable for
//! SMTP, and whether they match the certificate chain an MX presents in STARTTLS.
//!
//! Pure: the look-ups come through [`crate::dns::DnsSource`] (`security`, `tlsa`), the chain
//! from the STARTTLS probe of the I/O layer as [`ChainCert`]s.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::checks::{Area, CheckId};
use crate::dns::{DnsSource, Security, Tlsa};
use crate::finding::Finding;

/// The DNSSEC and DANE section of a domain's report (`docs/json.md`: `dnssec`). Absent from a
/// report when validation was off (`--no-dnssec`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnssecSection {
    /// The DNSSEC status of the domain's zone; `None` when the look-up failed
    /// (DNS-LOOKUP-FAILED).
    pub domain: Option<Security>,
    /// Each MX host looked at, in MX order.
    pub mx: Vec<MxDane>,
}

/// DNSSEC and DANE for one MX host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxDane {
    /// The MX host.
    pub host: String,
    /// The DNSSEC status of its zone; `None` when the look-up failed.
    pub security: Option<Security>,
    /// Its `_25._tcp` TLSA records (looked up only in a secure zone).
    pub tlsa: Vec<Tlsa>,
    /// Whether at least one TLSA record is usable for SMTP (RFC 7672 §3.1).
    pub usable: bool,
    /// Whether the TLSA records form a rollover scheme (current + next "3 1 1", or "3 1 1" and
    /// "2 1 1"), as internet.nl checks.
    pub rollover: bool,
    /// Whether a usable TLSA record matched the chain the host presented in STARTTLS; `None`
    /// when it was not probed (no TLSA, no STARTTLS, probing off).
    pub chain_matches: Option<bool>,
}

/// One certificate of the chain an MX presented (0 = end entity), as DANE selectors see it
/// (RFC 6698 §2.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCert {
    /// The certificate, DER (selector 0).
    pub cert_der: Vec<u8>,
    /// Its SubjectPublicKeyInfo, DER (selector 1).
    pub spki_der: Vec<u8>,
}

/// The MX hosts whose DNSSEC and DANE are looked at, at most (as for their addresses).
pub const MAX_HOSTS: usize = crate::mx::MAX_HOSTS_RESOLVED;

/// The TLSA owner name of an MX host for SMTP: `_25._tcp.<host>` (RFC 7672 §2.2).
pub fn tlsa_name(host: &str) -> String {
    format!("_25._tcp.{}", host.trim_end_matches('.'))
}

/// A TLSA record in presentation form at its owner name:
/// `_25._tcp.mx1.example.com. TLSA 3 1 1 <hex>`.
pub fn presentation(host: &str, t: &Tlsa) -> String {
    format!(
        "{}. TLSA {} {} {} {}",
        tlsa_name(host),
        t.cert_usage,
        t.selector,
        t.matching_type,
        t.cert_association_data
    )
}

/// Whether a TLSA record can authenticate an SMTP server, and if not why.
///
/// RFC 7672 §3.1.3: "TLSA records published for SMTP servers SHOULD NOT include usages
/// PKIX-TA(0) or PKIX-EE(1). SMTP client treatment of TLSA RRs with certificate usages
/// PKIX-TA(0) or PKIX-EE(1) is undefined. As with any other unsupported certificate usage,
/// SMTP clients MAY treat such TLSA records as "unusable"." mailaudit does, as internet.nl
/// does. §3.1.1 and §3.1.2 define the two usages SMTP uses, DANE-EE(3) and DANE-TA(2).
///
/// A certificate usage above 3, a selector above 1 (RFC 6698 §2.1.2: 0 the full certificate,
/// 1 the SubjectPublicKeyInfo) or a matching type above 2 (§2.1.3: 0 exact, 1 SHA-256,
/// 2 SHA-512) is unsupported, hence unusable (RFC 7672 §2.2: a TLSA RRset whose records are
/// all unusable authenticates nothing). So is a record whose data cannot match anything: a
/// SHA-256 digest that is not 32 octets, a SHA-512 digest that is not 64, data that is not
/// hexadecimal, or an empty exact match.
pub fn usable_for_smtp(t: &Tlsa) -> Result<(), &'static str> {
    match t.cert_usage {
        0 => return Err("certificate usage 0 (PKIX-TA) is not for SMTP"),
        1 => return Err("certificate usage 1 (PKIX-EE) is not for SMTP"),
        2 | 3 => {}
        _ => return Err("unknown certificate usage"),
    }
    if t.selector > 1 {
        return Err("unknown selector");
    }
    if t.matching_type > 2 {
        return Err("unknown matching type");
    }
    let Some(data) = decode_hex(&t.cert_association_data) else {
        return Err("the association data is not hexadecimal");
    };
    match (t.matching_type, data.len()) {
        (0, 0) => Err("the association data is empty"),
        (1, n) if n != 32 => Err("a SHA-256 digest (matching type 1) is not 32 octets long"),
        (2, n) if n != 64 => Err("a SHA-512 digest (matching type 2) is not 64 octets long"),
        _ => Ok(()),
    }
}

/// Whether the TLSA records survive a key change, as internet.nl's "DANE rollover scheme"
/// test asks: among the usable records, two DANE-EE SPKI SHA-256 records (`3 1 1`, current
/// and next key) with different digests, or a DANE-EE SPKI record (`3 1 x`) next to a DANE-TA
/// SPKI record (`2 1 x`, the issuing CA's key, which survives a renewal of the server key).
pub fn rollover(records: &[Tlsa]) -> bool {
    let usable: Vec<&Tlsa> = records
        .iter()
        .filter(|t| usable_for_smtp(t).is_ok())
        .collect();
    let mut ee_spki_sha256: Vec<String> = usable
        .iter()
        .filter(|t| (t.cert_usage, t.selector, t.matching_type) == (3, 1, 1))
        .map(|t| t.cert_association_data.to_ascii_lowercase())
        .collect();
    ee_spki_sha256.sort();
    ee_spki_sha256.dedup();
    let ee_spki = usable.iter().any(|t| (t.cert_usage, t.selector) == (3, 1));
    let ta_spki = usable.iter().any(|t| (t.cert_usage, t.selector) == (2, 1));
    ee_spki_sha256.len() >= 2 || (ee_spki && ta_spki)
}

/// Whether a usable TLSA record matches the chain an MX presented (index 0 the server's own
/// certificate, then the chain as sent).
///
/// - DANE-EE(3) is compared with the server certificate alone. RFC 7672 §3.1.1: the record
///   is the binding, so the certificate's names and validity dates are not checked.
/// - DANE-TA(2) is compared with the certificates the server sent after its own (RFC 7672
///   §3.1.2: the trust anchor must be in the chain the server presents, since senders are
///   not expected to have it). The server certificate itself counts only when it is the
///   whole chain and self-issued (issuer and subject names equal octet for octet), the one
///   case where it is its own trust anchor. This says whether the anchor is present; that
///   the server certificate chains to it by signature is the TLS layer's to check.
/// - Selector 0 compares the whole certificate (DER), 1 its SubjectPublicKeyInfo (DER);
///   matching type 0 compares the octets, 1 their SHA-256, 2 their SHA-512.
///
/// Unusable records ([`usable_for_smtp`]) never match; an empty chain matches nothing.
pub fn match_chain(records: &[Tlsa], chain: &[ChainCert]) -> bool {
    records
        .iter()
        .filter(|t| usable_for_smtp(t).is_ok())
        .any(|t| match t.cert_usage {
            3 => chain.first().is_some_and(|c| matches_cert(t, c)),
            2 => chain.iter().enumerate().any(|(i, c)| {
                let anchor_position = i >= 1 || (chain.len() == 1 && self_issued(&c.cert_der));
                anchor_position && matches_cert(t, c)
            }),
            _ => false,
        })
}

/// Whether one record's selector and matching type select data of `cert` equal to its data.
fn matches_cert(t: &Tlsa, cert: &ChainCert) -> bool {
    use sha2::Digest;
    let selected: &[u8] = match t.selector {
        0 => &cert.cert_der,
        1 => &cert.spki_der,
        _ => return false,
    };
    let Some(want) = decode_hex(&t.cert_association_data) else {
        return false;
    };
    match t.matching_type {
        0 => selected == want.as_slice(),
        1 => sha2::Sha256::digest(selected).as_slice() == want.as_slice(),
        2 => sha2::Sha512::digest(selected).as_slice() == want.as_slice(),
        _ => false,
    }
}

/// Hexadecimal (either case) to octets; `None` for an odd length or another character.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// One DER element: its tag, its contents, the whole element and what follows it.
type DerElement<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn der_element(input: &[u8]) -> Option<DerElement<'_>> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((tag, &whole[header..], whole, &input[end..]))
}

/// Whether a DER certificate is self-issued (RFC 5280 §3.2: its issuer and subject names are
/// equal; compared here octet for octet). False for anything that does not parse.
fn self_issued(cert_der: &[u8]) -> bool {
    let issuer_and_subject = || -> Option<(&[u8], &[u8])> {
        let (0x30, cert, _, _) = der_element(cert_der)? else {
            return None;
        };
        let (0x30, tbs, _, _) = der_element(cert)? else {
            return None;
        };
        let mut rest = tbs;
        // version [0] EXPLICIT, optional
        if rest.first() == Some(&0xa0) {
            rest = der_element(rest)?.3;
        }
        let (_, _, _, rest) = der_element(rest)?; // serialNumber
        let (_, _, _, rest) = der_element(rest)?; // signature
        let (0x30, _, issuer, rest) = der_element(rest)? else {
            return None;
        };
        let (_, _, _, rest) = der_element(rest)?; // validity
        let (0x30, _, subject, _) = der_element(rest)? else {
            return None;
        };
        Some((issuer, subject))
    };
    issuer_and_subject().is_some_and(|(i, s)| i == s)
}

/// The DNSSEC status of the domain and of its MX hosts, and the TLSA records of each MX host
/// in a signed zone, with their findings.
///
/// `mx_hosts` are the domain's MX hosts in MX order; a null MX (`""` or `"."`) is skipped,
/// repeated hosts are looked at once, and at most [`MAX_HOSTS`] are. When the source does not
/// validate (`security` answers `Ok(None)` for the domain: `--no-dnssec`, or a source without
/// DNSSEC), nothing else is asked and there is no section and no finding.
///
/// - The domain's zone: insecure is DNSSEC-UNSIGNED, bogus DNSSEC-BOGUS (never a missing
///   record), a failed look-up DNS-LOOKUP-FAILED (area transport).
/// - Each MX host's zone: the insecure ones make one DNSSEC-MX-UNSIGNED naming them all; a
///   bogus one DNSSEC-BOGUS naming it; a failed look-up DNS-LOOKUP-FAILED.
/// - For a host in a secure zone, the TLSA records at `_25._tcp.<host>` (whose zone is the
///   host's, as RFC 7672 §2.2 publishes them): none makes one DANE-TLSA-MISSING naming every
///   such host; records none of which is usable ([`usable_for_smtp`]) DANE-TLSA-UNUSABLE for
///   that host, with the records as evidence; a failed look-up DNS-LOOKUP-FAILED.
///
/// Whether the records match the host's certificate needs the STARTTLS probe: see
/// [`check_chain`].
pub async fn audit<D: DnsSource>(
    dns: &D,
    domain: &str,
    mx_hosts: &[String],
) -> (Option<DnssecSection>, Vec<Finding>) {
    let own = match dns.security(domain).await {
        Ok(None) => return (None, Vec::new()),
        Ok(Some(s)) => Ok(s),
        Err(e) => Err(e),
    };
    let mut findings = Vec::new();
    let mut section = DnssecSection::default();
    match own {
        Ok(s) => {
            section.domain = Some(s);
            match s {
                Security::Secure => {}
                Security::Insecure => findings.push(Finding::new(
                    CheckId::DnssecUnsigned,
                    format!(
                        "{domain}'s zone is not DNSSEC-signed (an insecure delegation): its \
                         answers cannot be validated, and DANE cannot apply to its mail"
                    ),
                )),
                Security::Bogus => findings.push(Finding::new(
                    CheckId::DnssecBogus,
                    format!(
                        "DNSSEC validation of {domain} fails (bogus: a chain of trust exists but \
                         does not validate): validating receivers and senders treat its answers \
                         as failures (SERVFAIL), so they cannot read its MX, SPF, DKIM or DMARC \
                         records; the records are not missing"
                    ),
                )),
            }
        }
        Err(e) => findings.push(Finding::lookup_failed(
            Area::Transport,
            &format!("DNSSEC status of {domain}"),
            &e,
        )),
    }

    let mut hosts: Vec<String> = Vec::new();
    for h in mx_hosts {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        if !h.is_empty() && !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts.truncate(MAX_HOSTS);
    let looked = join_all(hosts.iter().map(|h| host_dane(dns, h))).await;

    let mut unsigned = Vec::new();
    let mut missing = Vec::new();
    // A bogus MX host below a bogus domain is the domain's failure: said once, in its finding.
    let mut bogus_below = Vec::new();
    let domain_bogus = section.domain == Some(Security::Bogus);
    for (mx, outcome) in looked {
        match outcome {
            HostOutcome::Fine => {}
            HostOutcome::Unsigned => unsigned.push(mx.host.clone()),
            HostOutcome::NoTlsa => missing.push(mx.host.clone()),
            HostOutcome::Finding(f)
                if f.id == CheckId::DnssecBogus
                    && domain_bogus
                    && (mx.host == domain || mx.host.ends_with(&format!(".{domain}"))) =>
            {
                bogus_below.push(mx.host.clone());
            }
            HostOutcome::Finding(f) => findings.push(f),
        }
        section.mx.push(mx);
    }
    if !bogus_below.is_empty()
        && let Some(f) = findings.iter_mut().find(|f| f.id == CheckId::DnssecBogus)
    {
        f.detail.push_str(&format!(
            "; its MX host{} {} fail{} with it, so validating senders will not deliver to {}",
            plural(bogus_below.len()),
            bogus_below.join(", "),
            if bogus_below.len() == 1 { "s" } else { "" },
            if bogus_below.len() == 1 { "it" } else { "them" },
        ));
    }
    if !unsigned.is_empty() {
        let list = unsigned.join(", ");
        findings.push(
            Finding::new(
                CheckId::DnssecMxUnsigned,
                format!(
                    "the zone of MX host{} {list} is not DNSSEC-signed: DANE cannot protect mail \
                     to {}",
                    plural(unsigned.len()),
                    if unsigned.len() == 1 { "it" } else { "them" }
                ),
            )
            .with_evidence(list),
        );
    }
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|h| tlsa_name(h)).collect();
        findings.push(
            Finding::new(
                CheckId::DaneTlsaMissing,
                format!(
                    "MX host{} {} in a signed zone publish{} no TLSA record at {}",
                    plural(missing.len()),
                    missing.join(", "),
                    if missing.len() == 1 { "es" } else { "" },
                    names.join(", ")
                ),
            )
            .with_evidence(
                names
                    .iter()
                    .map(|n| format!("{n}. TLSA: none"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        );
    }
    (Some(section), findings)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What one MX host's look-ups came to, besides its [`MxDane`].
enum HostOutcome {
    /// Nothing to report (secure with usable TLSA records, or validation off).
    Fine,
    /// Its zone is insecure (one DNSSEC-MX-UNSIGNED names them all).
    Unsigned,
    /// Secure but no TLSA record (one DANE-TLSA-MISSING names them all).
    NoTlsa,
    /// A finding of its own (bogus, unusable records, a failed look-up).
    Finding(Finding),
}

async fn host_dane<D: DnsSource>(dns: &D, host: &str) -> (MxDane, HostOutcome) {
    let mut mx = MxDane {
        host: host.to_string(),
        security: None,
        tlsa: Vec::new(),
        usable: false,
        rollover: false,
        chain_matches: None,
    };
    let security = match dns.security(host).await {
        Ok(Some(s)) => s,
        Ok(None) => return (mx, HostOutcome::Fine),
        Err(e) => {
            let f = Finding::lookup_failed(
                Area::Transport,
                &format!("DNSSEC status of MX host {host}"),
                &e,
            );
            return (mx, HostOutcome::Finding(f));
        }
    };
    mx.security = Some(security);
    match security {
        Security::Insecure => return (mx, HostOutcome::Unsigned),
        Security::Bogus => {
            let f = Finding::new(
                CheckId::DnssecBogus,
                format!(
                    "DNSSEC validation of the MX host {host} fails (bogus): validating senders \
                     treat its answers as failures (SERVFAIL) and will not deliver to it; its \
                     records are not missing"
                ),
            );
            return (mx, HostOutcome::Finding(f));
        }
        Security::Secure => {}
    }
    let name = tlsa_name(host);
    let records = match dns.tlsa(&name).await {
        Ok(r) => r,
        Err(e) => {
            let f = Finding::lookup_failed(Area::Transport, &format!("TLSA {name}"), &e);
            return (mx, HostOutcome::Finding(f));
        }
    };
    if records.is_empty() {
        return (mx, HostOutcome::NoTlsa);
    }
    mx.usable = records.iter().any(|t| usable_for_smtp(t).is_ok());
    mx.rollover = rollover(&records);
    mx.tlsa = records;
    if mx.usable {
        return (mx, HostOutcome::Fine);
    }
    let mut reasons: Vec<&str> = mx
        .tlsa
        .iter()
        .filter_map(|t| usable_for_smtp(t).err())
        .collect();
    reasons.dedup();
    let f = Finding::new(
        CheckId::DaneTlsaUnusable,
        format!(
            "none of the {n} TLSA record{s} of MX host {host} is usable for SMTP ({why}): \
             DANE-aware senders authenticate nothing with {them}",
            n = mx.tlsa.len(),
            s = plural(mx.tlsa.len()),
            why = reasons.join("; "),
            them = if mx.tlsa.len() == 1 { "it" } else { "them" },
        ),
    )
    .with_evidence(records_text(host, &mx.tlsa));
    (mx, HostOutcome::Finding(f))
}

/// The records in presentation form, one a line.
fn records_text(host: &str, records: &[Tlsa]) -> String {
    records
        .iter()
        .map(|t| presentation(host, t))
        .collect::<Vec<_>>()
        .join("\n")
}

/// DANE-TLSA-MISMATCH for `host`: its usable TLSA records (`records`; the evidence lists them
/// all) matched no certificate of the chain it presented in STARTTLS.
pub fn mismatch_finding(host: &str, records: &[Tlsa]) -> Finding {
    let usable = records
        .iter()
        .filter(|t| usable_for_smtp(t).is_ok())
        .count();
    Finding::new(
        CheckId::DaneTlsaMismatch,
        format!(
            "none of the {usable} usable TLSA record{s} of MX host {host} matches the \
             certificate chain it presented in STARTTLS: DANE-validating senders will not \
             deliver to it",
            s = plural(usable),
        ),
    )
    .with_evidence(records_text(host, records))
}

/// After a STARTTLS probe of `host`: records in `section` whether the chain it presented
/// matches one of its usable TLSA records ([`match_chain`]), and returns DANE-TLSA-MISMATCH
/// when none does. `None`, with nothing recorded, when the section has no such host or the
/// host has no usable TLSA record.
pub fn check_chain(
    section: &mut DnssecSection,
    host: &str,
    chain: &[ChainCert],
) -> Option<Finding> {
    let host = host.trim_end_matches('.');
    let mx = section
        .mx
        .iter_mut()
        .find(|m| m.host.eq_ignore_ascii_case(host))?;
    if !mx.usable {
        return None;
    }
    let matches = match_chain(&mx.tlsa, chain);
    mx.chain_matches = Some(matches);
    (!matches).then(|| mismatch_finding(&mx.host, &mx.tlsa))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::memory::{MemoryDns, Rr};
    use sha2::Digest;

    fn tlsa(u: u8, s: u8, m: u8, data: &str) -> Tlsa {
        Tlsa {
            cert_usage: u,
            selector: s,
            matching_type: m,
            cert_association_data: data.to_string(),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sha256(b: &[u8]) -> String {
        hex(&sha2::Sha256::digest(b))
    }

    fn sha512(b: &[u8]) -> String {
        hex(&sha2::Sha512::digest(b))
    }

    /// A certificate as the STARTTLS probe hands it over, its SPKI read back with x509-parser.
    fn chain_cert(der: &[u8]) -> ChainCert {
        let (_, cert) = x509_parser::parse_x509_certificate(der).expect("parse certificate");
        ChainCert {
            cert_der: der.to_vec(),
            spki_der: cert.tbs_certificate.subject_pki.raw.to_vec(),
        }
    }

    /// A lab CA and a server certificate it issued: `[leaf, ca]`, as a server sends them.
    fn lab_chain() -> Vec<ChainCert> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().expect("key");
        let mut leaf = CertificateParams::new(vec!["mx.example".to_string()]).expect("params");
        leaf.distinguished_name
            .push(DnType::CommonName, "mx.example");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("certificate");
        vec![chain_cert(leaf_cert.der()), chain_cert(ca_cert.der())]
    }

    fn self_signed() -> ChainCert {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(vec!["mx.example".to_string()]).expect("p");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "mx.example");
        chain_cert(p.self_signed(&key).expect("cert").der())
    }

    #[test]
    fn usable_and_unusable_parameters() {
        let d32 = "ab".repeat(32);
        let d64 = "cd".repeat(64);
        for (t, usable) in [
            (tlsa(3, 1, 1, &d32), true),
            (tlsa(3, 0, 1, &d32), true),
            (tlsa(2, 1, 1, &d32), true),
            (tlsa(2, 0, 2, &d64), true),
            (tlsa(3, 1, 2, &d64), true),
            (tlsa(3, 1, 0, "3059301306072a"), true),
            (tlsa(3, 1, 1, &d32.to_ascii_uppercase()), true),
            // RFC 7672 §3.1.3: the PKIX usages are not for SMTP.
            (tlsa(0, 0, 1, &d32), false),
            (tlsa(1, 1, 1, &d32), false),
            // Unknown usage, selector, matching type.
            (tlsa(4, 1, 1, &d32), false),
            (tlsa(255, 1, 1, &d32), false),
            (tlsa(3, 2, 1, &d32), false),
            (tlsa(3, 1, 3, &d32), false),
            (tlsa(3, 1, 255, &d32), false),
            // Digests of the wrong length.
            (tlsa(3, 1, 1, &"ab".repeat(31)), false),
            (tlsa(3, 1, 1, &"ab".repeat(33)), false),
            (tlsa(3, 1, 1, &d64), false),
            (tlsa(3, 1, 2, &d32), false),
            (tlsa(2, 0, 2, &"cd".repeat(63)), false),
            // Not hexadecimal, odd length, empty.
            (tlsa(3, 1, 1, &format!("{}zz", "ab".repeat(31))), false),
            (tlsa(3, 1, 1, &format!("{d32}a")), false),
            (tlsa(3, 1, 0, ""), false),
            (tlsa(3, 1, 1, ""), false),
        ] {
            assert_eq!(usable_for_smtp(&t).is_ok(), usable, "{t:?}");
        }
        assert!(
            usable_for_smtp(&tlsa(1, 1, 1, &d32))
                .unwrap_err()
                .contains("PKIX-EE")
        );
        assert!(
            usable_for_smtp(&tlsa(3, 1, 1, "ab"))
                .unwrap_err()
                .contains("32 octets")
        );
    }

    #[test]
    fn rollover_schemes() {
        let a = "aa".repeat(32);
        let b = "bb".repeat(32);
        for (records, expected) in [
            (vec![], false),
            (vec![tlsa(3, 1, 1, &a)], false),
            // Current and next key.
            (vec![tlsa(3, 1, 1, &a), tlsa(3, 1, 1, &b)], true),
            // The same digest twice is one key.
            (vec![tlsa(3, 1, 1, &a), tlsa(3, 1, 1, &a)], false),
            (
                vec![tlsa(3, 1, 1, &a), tlsa(3, 1, 1, &a.to_ascii_uppercase())],
                false,
            ),
            // Server key and issuing CA key.
            (vec![tlsa(3, 1, 1, &a), tlsa(2, 1, 1, &b)], true),
            (
                vec![tlsa(3, 1, 2, &"cc".repeat(64)), tlsa(2, 1, 1, &b)],
                true,
            ),
            // Full certificates do not survive a renewal.
            (vec![tlsa(3, 0, 1, &a), tlsa(3, 0, 1, &b)], false),
            (vec![tlsa(3, 0, 1, &a), tlsa(2, 0, 1, &b)], false),
            // Two CA keys alone, or an unusable "next" record.
            (vec![tlsa(2, 1, 1, &a), tlsa(2, 1, 1, &b)], false),
            (vec![tlsa(3, 1, 1, &a), tlsa(1, 1, 1, &b)], false),
            (vec![tlsa(3, 1, 1, &a), tlsa(3, 1, 1, "bb")], false),
        ] {
            assert_eq!(rollover(&records), expected, "{records:?}");
        }
    }

    #[test]
    fn dane_ee_matches_the_server_certificate_only() {
        let chain = lab_chain();
        let (leaf, ca) = (&chain[0], &chain[1]);
        for (record, expected) in [
            (tlsa(3, 1, 1, &sha256(&leaf.spki_der)), true),
            (tlsa(3, 0, 1, &sha256(&leaf.cert_der)), true),
            (tlsa(3, 1, 2, &sha512(&leaf.spki_der)), true),
            (tlsa(3, 0, 2, &sha512(&leaf.cert_der)), true),
            (tlsa(3, 1, 0, &hex(&leaf.spki_der)), true),
            (tlsa(3, 0, 0, &hex(&leaf.cert_der)), true),
            (
                tlsa(3, 1, 1, &sha256(&leaf.spki_der).to_ascii_uppercase()),
                true,
            ),
            // The selector and matching type must be the record's own.
            (tlsa(3, 0, 1, &sha256(&leaf.spki_der)), false),
            (tlsa(3, 1, 2, &sha256(&leaf.spki_der)), false),
            // DANE-EE names the server certificate, not the CA's.
            (tlsa(3, 1, 1, &sha256(&ca.spki_der)), false),
            // The same digest under a PKIX usage is unusable, so never matches.
            (tlsa(1, 1, 1, &sha256(&leaf.spki_der)), false),
            (tlsa(3, 1, 1, &"00".repeat(32)), false),
        ] {
            assert_eq!(
                match_chain(std::slice::from_ref(&record), &chain),
                expected,
                "{record:?}"
            );
        }
        assert!(!match_chain(&[tlsa(3, 1, 1, &sha256(&leaf.spki_der))], &[]));
    }

    #[test]
    fn dane_ta_matches_a_certificate_above_the_server_certificate() {
        let chain = lab_chain();
        let (leaf, ca) = (&chain[0], &chain[1]);
        assert!(match_chain(&[tlsa(2, 0, 1, &sha256(&ca.cert_der))], &chain));
        assert!(match_chain(&[tlsa(2, 1, 1, &sha256(&ca.spki_der))], &chain));
        assert!(match_chain(&[tlsa(2, 1, 2, &sha512(&ca.spki_der))], &chain));
        // The CA is not in the chain presented: no trust anchor to match.
        assert!(!match_chain(
            &[tlsa(2, 0, 1, &sha256(&ca.cert_der))],
            &chain[..1]
        ));
        // A DANE-TA record naming the server certificate itself, which is not self-issued.
        assert!(!match_chain(
            &[tlsa(2, 0, 1, &sha256(&leaf.cert_der))],
            &chain
        ));
        assert!(!match_chain(
            &[tlsa(2, 0, 1, &sha256(&leaf.cert_der))],
            &chain[..1]
        ));
        // One usable match among unusable and stale records is enough.
        let set = [
            tlsa(0, 0, 1, &sha256(&ca.cert_der)),
            tlsa(3, 1, 1, &"00".repeat(32)),
            tlsa(2, 0, 1, &sha256(&ca.cert_der)),
        ];
        assert!(match_chain(&set, &chain));
        assert!(!match_chain(&set[..2], &chain));
    }

    #[test]
    fn a_lone_self_issued_certificate_is_its_own_trust_anchor() {
        let own = self_signed();
        assert!(self_issued(&own.cert_der));
        let chain = lab_chain();
        assert!(!self_issued(&chain[0].cert_der), "issued by the CA");
        assert!(self_issued(&chain[1].cert_der), "the CA is self-issued");
        assert!(!self_issued(b"not DER"));
        assert!(!self_issued(&[]));
        let record = tlsa(2, 0, 1, &sha256(&own.cert_der));
        assert!(match_chain(
            std::slice::from_ref(&record),
            std::slice::from_ref(&own)
        ));
        // With something after it, position 0 is the server certificate, not an anchor.
        assert!(!match_chain(&[record], &[own, chain[1].clone()]));
    }

    fn run(dns: &MemoryDns, hosts: &[&str]) -> (Option<DnssecSection>, Vec<Finding>) {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        pollster::block_on(audit(dns, "example.com", &hosts))
    }

    fn ids(f: &[Finding]) -> Vec<CheckId> {
        f.iter().map(|f| f.id).collect()
    }

    #[test]
    fn without_validation_nothing_is_asked() {
        let dns = MemoryDns::new().with("_25._tcp.mx.example.com", Rr::Tlsa(tlsa(3, 1, 1, "ab")));
        let (section, findings) = run(&dns, &["mx.example.com"]);
        assert_eq!(section, None);
        assert!(findings.is_empty());
        assert!(dns.queries().is_empty(), "{:?}", dns.queries());
    }

    #[test]
    fn a_signed_domain_with_a_usable_tlsa_has_no_finding() {
        let good = tlsa(3, 1, 1, &"ab".repeat(32));
        let next = tlsa(3, 1, 1, &"cd".repeat(32));
        let dns = MemoryDns::new()
            .with_security("example.com", Security::Secure)
            .with("_25._tcp.mx.example.com", Rr::Tlsa(good.clone()))
            .with("_25._tcp.mx.example.com", Rr::Tlsa(next.clone()));
        let (section, findings) = run(&dns, &["mx.example.com", "MX.example.com.", ""]);
        assert!(findings.is_empty(), "{findings:?}");
        let section = section.expect("validated");
        assert_eq!(section.domain, Some(Security::Secure));
        assert_eq!(
            section.mx,
            [MxDane {
                host: "mx.example.com".into(),
                security: Some(Security::Secure),
                tlsa: vec![good, next],
                usable: true,
                rollover: true,
                chain_matches: None,
            }],
            "one entry per host; the null MX skipped"
        );
    }

    #[test]
    fn an_unsigned_domain_and_unsigned_mx_hosts() {
        let dns = MemoryDns::new()
            .with_security("signed.example", Security::Secure)
            .with(
                "_25._tcp.mx.signed.example",
                Rr::Tlsa(tlsa(3, 1, 1, &"ab".repeat(32))),
            );
        let (section, findings) = run(
            &dns,
            &["mx1.example.com", "mx.signed.example", "mx2.example.com"],
        );
        assert_eq!(
            ids(&findings),
            [CheckId::DnssecUnsigned, CheckId::DnssecMxUnsigned]
        );
        let mx_unsigned = &findings[1];
        assert!(
            mx_unsigned
                .detail
                .contains("mx1.example.com, mx2.example.com"),
            "one finding names both: {}",
            mx_unsigned.detail
        );
        assert!(!mx_unsigned.detail.contains("signed.example"));
        let section = section.expect("validated");
        assert_eq!(section.domain, Some(Security::Insecure));
        assert_eq!(section.mx.len(), 3);
        assert_eq!(section.mx[0].security, Some(Security::Insecure));
        assert!(section.mx[0].tlsa.is_empty() && !section.mx[0].usable);
        assert!(section.mx[1].usable);
        // No TLSA question for a host in an unsigned zone.
        assert!(
            !dns.queries()
                .iter()
                .any(|q| q == "TLSA _25._tcp.mx1.example.com")
        );
    }

    #[test]
    fn a_bogus_domain_or_mx_host_is_high_and_never_missing() {
        let dns = MemoryDns::new()
            .with_security("example.com", Security::Bogus)
            .with_security("mx.example.net", Security::Bogus)
            .with_security("ok.example.org", Security::Secure)
            .with(
                "_25._tcp.ok.example.org",
                Rr::Tlsa(tlsa(3, 1, 1, &"ab".repeat(32))),
            );
        let (section, findings) = run(&dns, &["mx.example.net", "ok.example.org"]);
        assert_eq!(ids(&findings), [CheckId::DnssecBogus, CheckId::DnssecBogus]);
        assert!(findings.iter().all(|f| f.severity == crate::Severity::High));
        assert!(findings[0].detail.contains("example.com"));
        assert!(findings[0].detail.contains("treat its answers as failures"));
        assert!(findings[1].detail.contains("mx.example.net"));
        for f in &findings {
            assert!(!f.detail.contains("missing") || f.detail.contains("not missing"));
        }
        let section = section.expect("validated");
        assert_eq!(section.domain, Some(Security::Bogus));
        assert_eq!(section.mx[0].security, Some(Security::Bogus));
        assert!(
            !dns.queries()
                .iter()
                .any(|q| q == "TLSA _25._tcp.mx.example.net")
        );

        // An MX host in the bogus domain's own zone is said once, in the domain's finding.
        let dns = MemoryDns::new().with_security("example.com", Security::Bogus);
        let (section, findings) = run(&dns, &["mx.example.com"]);
        assert_eq!(ids(&findings), [CheckId::DnssecBogus]);
        assert!(
            findings[0]
                .detail
                .contains("its MX host mx.example.com fails with it"),
            "{}",
            findings[0].detail
        );
        assert_eq!(
            section.expect("validated").mx[0].security,
            Some(Security::Bogus)
        );
    }

    #[test]
    fn signed_mx_hosts_without_tlsa_make_one_finding() {
        let dns = MemoryDns::new()
            .with_security("example.com", Security::Secure)
            .with(
                "_25._tcp.mx3.example.com",
                Rr::Tlsa(tlsa(3, 1, 1, &"ab".repeat(32))),
            );
        let (_, findings) = run(
            &dns,
            &["mx1.example.com", "mx2.example.com", "mx3.example.com"],
        );
        assert_eq!(ids(&findings), [CheckId::DaneTlsaMissing]);
        let f = &findings[0];
        assert!(
            f.detail.contains("mx1.example.com, mx2.example.com"),
            "{}",
            f.detail
        );
        assert!(!f.detail.contains("mx3"), "{}", f.detail);
        assert!(
            f.evidence
                .as_deref()
                .is_some_and(|e| e.contains("_25._tcp.mx1.example.com"))
        );
        // Negative: every host has a record.
        let dns = MemoryDns::new()
            .with_security("example.com", Security::Secure)
            .with(
                "_25._tcp.mx1.example.com",
                Rr::Tlsa(tlsa(3, 1, 1, &"ab".repeat(32))),
            );
        assert!(run(&dns, &["mx1.example.com"]).1.is_empty());
    }

    #[test]
    fn unusable_records_are_medium_with_the_records_as_evidence() {
        let d = "ab".repeat(32);
        let dns = MemoryDns::new()
            .with_security("example.com", Security::Secure)
            .with("_25._tcp.mx1.example.com", Rr::Tlsa(tlsa(1, 1, 1, &d)))
            .with("_25._tcp.mx1.example.com", Rr::Tlsa(tlsa(3, 1, 1, "abcd")))
            // One usable record among unusable ones is enough.
            .with("_25._tcp.mx2.example.com", Rr::Tlsa(tlsa(0, 0, 1, &d)))
            .with("_25._tcp.mx2.example.com", Rr::Tlsa(tlsa(3, 1, 1, &d)));
        let (section, findings) = run(&dns, &["mx1.example.com", "mx2.example.com"]);
        assert_eq!(ids(&findings), [CheckId::DaneTlsaUnusable]);
        let f = &findings[0];
        assert_eq!(f.severity, crate::Severity::Medium);
        assert!(f.detail.contains("mx1.example.com"));
        assert!(f.detail.contains("PKIX-EE"), "{}", f.detail);
        assert_eq!(
            f.evidence.as_deref(),
            Some(
                format!(
                    "_25._tcp.mx1.example.com. TLSA 1 1 1 {d}\n_25._tcp.mx1.example.com. TLSA 3 1 1 abcd"
                )
                .as_str()
            )
        );
        let section = section.expect("validated");
        assert!(!section.mx[0].usable && !section.mx[0].rollover);
        assert!(section.mx[1].usable);
    }

    #[test]
    fn failed_lookups_are_dns_lookup_failed_in_transport() {
        // The domain's own status.
        let dns = MemoryDns::new()
            .with_security("example.org", Security::Secure)
            .with("example.com", Rr::Fail(DnsError::Timeout));
        let (section, findings) = run(&dns, &[]);
        assert_eq!(ids(&findings), [CheckId::DnsLookupFailed]);
        assert_eq!(findings[0].area, Area::Transport);
        assert!(findings[0].detail.contains("DNSSEC status of example.com"));
        assert_eq!(section.map(|s| s.domain), Some(None));

        // An MX host's status, and its TLSA look-up: never "missing".
        let dns = MemoryDns::new()
            .with_security("example.com", Security::Secure)
            .with("mx1.example.com", Rr::Fail(DnsError::ServFail))
            .with("_25._tcp.mx2.example.com", Rr::Fail(DnsError::Refused));
        let (section, findings) = run(&dns, &["mx1.example.com", "mx2.example.com"]);
        assert_eq!(
            ids(&findings),
            [CheckId::DnsLookupFailed, CheckId::DnsLookupFailed]
        );
        assert!(findings.iter().all(|f| f.area == Area::Transport));
        assert!(findings[0].detail.contains("MX host mx1.example.com"));
        assert!(findings[1].detail.contains("TLSA _25._tcp.mx2.example.com"));
        let section = section.expect("validated");
        assert_eq!(section.mx[0].security, None);
        assert_eq!(section.mx[1].security, Some(Security::Secure));
        assert!(!section.mx[1].usable);
    }

    #[test]
    fn at_most_max_hosts_are_looked_at() {
        let dns = MemoryDns::new().with_security("example.com", Security::Secure);
        let hosts: Vec<String> = (0..MAX_HOSTS + 5)
            .map(|i| format!("mx{i}.example.com"))
            .collect();
        let (section, _) = pollster::block_on(audit(&dns, "example.com", &hosts));
        assert_eq!(section.expect("validated").mx.len(), MAX_HOSTS);
        let tlsa_questions = dns
            .queries()
            .iter()
            .filter(|q| q.starts_with("TLSA"))
            .count();
        assert_eq!(tlsa_questions, MAX_HOSTS);
    }

    #[test]
    fn check_chain_records_the_match_and_reports_a_mismatch() {
        let chain = lab_chain();
        let good = tlsa(3, 1, 1, &sha256(&chain[0].spki_der));
        let stale = tlsa(3, 1, 1, &"00".repeat(32));
        let mut section = DnssecSection {
            domain: Some(Security::Secure),
            mx: vec![
                MxDane {
                    host: "good.example".into(),
                    security: Some(Security::Secure),
                    tlsa: vec![good.clone(), stale.clone()],
                    usable: true,
                    rollover: true,
                    chain_matches: None,
                },
                MxDane {
                    host: "stale.example".into(),
                    security: Some(Security::Secure),
                    tlsa: vec![stale.clone()],
                    usable: true,
                    rollover: false,
                    chain_matches: None,
                },
                MxDane {
                    host: "pkix.example".into(),
                    security: Some(Security::Secure),
                    tlsa: vec![tlsa(1, 1, 1, &sha256(&chain[0].spki_der))],
                    usable: false,
                    rollover: false,
                    chain_matches: None,
                },
            ],
        };
        assert_eq!(check_chain(&mut section, "GOOD.example.", &chain), None);
        assert_eq!(section.mx[0].chain_matches, Some(true));

        let f = check_chain(&mut section, "stale.example", &chain).expect("mismatch");
        assert_eq!(f.id, CheckId::DaneTlsaMismatch);
        assert_eq!(f.severity, crate::Severity::High);
        assert!(f.detail.contains("stale.example") && f.detail.contains("will not deliver"));
        assert_eq!(
            f.evidence.as_deref(),
            Some(format!("_25._tcp.stale.example. TLSA 3 1 1 {}", "00".repeat(32)).as_str())
        );
        assert_eq!(section.mx[1].chain_matches, Some(false));

        // No usable record, or a host that is not in the section: nothing to say.
        assert_eq!(check_chain(&mut section, "pkix.example", &chain), None);
        assert_eq!(section.mx[2].chain_matches, None);
        assert_eq!(check_chain(&mut section, "other.example", &chain), None);

        let f = mismatch_finding("mx.example", &[stale, good]);
        assert!(f.detail.contains("none of the 2 usable TLSA records"));
    }

    #[test]
    fn the_section_round_trips_through_json() {
        let section = DnssecSection {
            domain: Some(Security::Bogus),
            mx: vec![MxDane {
                host: "mx.example".into(),
                security: None,
                tlsa: vec![tlsa(3, 1, 1, &"ab".repeat(32))],
                usable: true,
                rollover: false,
                chain_matches: Some(false),
            }],
        };
        let v = serde_json::to_value(&section).expect("json");
        assert_eq!(v["domain"], "bogus");
        assert_eq!(v["mx"][0]["tlsa"][0]["cert_usage"], 3);
        assert_eq!(v["mx"][0]["chain_matches"], false);
        let back: DnssecSection = serde_json::from_value(v).expect("back");
        assert_eq!(back, section);
    }
}
