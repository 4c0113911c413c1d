//! A DNSSEC-signing authoritative DNS server on loopback, for the DNSSEC and DANE tests.
//!
//! [`SignedDns`] serves a tree of zones under its own signed root `.` on UDP and TCP of one
//! ephemeral port of 127.0.0.1. A validating resolver pointed at [`SignedDns::addr`] with the
//! lab's root key as its only trust anchor ([`SignedDns::trust_anchor`]) sees each name as
//! Secure, Insecure or Bogus according to the [`Mode`] of the zone that holds it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailaudit_lab::LabError> {
//! use mailaudit_lab::dnssec::{Mode, SignedDns, SignedZone};
//!
//! let dns = SignedDns::start(&[
//!     SignedZone::new("sec.test", r#"
//!         sec.test               MX   10 mx.sec.test
//!         mx.sec.test            A    127.0.0.1
//!         _25._tcp.mx.sec.test   TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
//!     "#, Mode::Signed),
//!     SignedZone::new("plain.test", "www.plain.test A 127.0.0.2", Mode::Unsigned),
//!     SignedZone::new("old.test", "www.old.test A 127.0.0.3", Mode::ExpiredSignatures),
//! ])
//! .await?;
//! // A validating resolver: nameserver dns.addr() (UDP and TCP), trust anchor from
//! // dns.trust_anchor() (or the file dns.write_trust_anchor(dir) writes).
//! # Ok(()) }
//! ```
//!
//! # Zones
//!
//! Each [`SignedZone`] names its apex (`origin`, without or with the trailing dot) and holds its
//! records in the text format of [`crate::zone`] (full owner names, one record per line; the
//! behaviours `TIMEOUT`, `SERVFAIL` and `REFUSED` are not supported here). Every owner must be
//! the origin or a name below it that no other given zone holds. The server adds to every zone
//! its SOA and NS records at the apex (the name server is `ns.lab-dns.invalid`, which nothing
//! needs to resolve: the resolver asks this server everything).
//!
//! The zones served are the root `.`, the given zones, and every ancestor of a given zone that
//! is not given itself (for `sec.test`, the TLD `test.`): those are signed and empty but for
//! their delegations. Each zone's parent (the nearest enclosing zone served) delegates to it
//! with NS records and, unless the child is [`Mode::Unsigned`], a DS record. A zone below an
//! unsigned zone is Insecure whatever its own mode.
//!
//! Signed zones have one ECDSA P-256 key (algorithm 13, flags 257), generated at start;
//! their negative answers (NXDOMAIN and NODATA, including "no DS here") carry NSEC proofs, so
//! a validator proves them Secure. The signatures are valid from the start for 30 days.
//!
//! # Modes
//!
//! * [`Mode::Signed`]: signed, DS in the parent → Secure.
//! * [`Mode::Unsigned`]: no key and no signatures, NS in the parent and no DS (an insecure
//!   delegation, proved by the parent's NSEC) → Insecure.
//! * [`Mode::ExpiredSignatures`]: signed, DS in the parent, but every RRSIG (the DNSKEY set's
//!   included) expired 10 days ago → Bogus.
//! * [`Mode::DsMismatch`]: signed with its key, but the parent's DS is that of another key →
//!   Bogus.
//!
//! Every address of an MX host (a name that an MX record of any zone points to) must be a
//! loopback address (127.0.0.0/8 or `::1`), so that nothing a test follows leaves the machine.
//!
//! # Routing
//!
//! Each zone is a hickory `InMemoryZoneHandler` in a `Catalog` of its own. A query goes to the
//! zone with the most labels that holds its name, except a DS query for a zone's apex, which
//! goes to the parent zone (a plain catalog would answer it from the child, and the chain of
//! trust would never validate).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, PublicKeyBuf, SigningKey};
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use rustls::pki_types::PrivatePkcs8KeyDer;

use crate::server::{TTL, bind_pair, rdata_of, to_name};
use crate::zone::check_name;
use crate::{LabError, LabRecord, Zone};

/// How long the signatures of a signed zone are valid, from the server's start.
pub const SIGNATURE_VALIDITY: Duration = Duration::from_secs(30 * 86_400);

/// How long ago the signatures of a [`Mode::ExpiredSignatures`] zone expired.
pub const EXPIRED_AGO: Duration = Duration::from_secs(10 * 86_400);

/// The TTL of the trust anchor line ([`SignedDns::trust_anchor`]).
const ANCHOR_TTL: u32 = 3600;

/// The file name [`SignedDns::write_trust_anchor`] writes.
pub const TRUST_ANCHOR_FILE: &str = "lab-trust-anchor.txt";

/// How long an idle TCP connection is kept open.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Outgoing responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 64;

/// How a zone is (mis)signed; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Signed, with the DS of its key in the parent: Secure.
    Signed,
    /// Not signed, delegated without DS (an insecure delegation): Insecure.
    Unsigned,
    /// Signed, DS in the parent, but every signature expired [`EXPIRED_AGO`]: Bogus.
    ExpiredSignatures,
    /// Signed, but the parent's DS is that of another key: Bogus.
    DsMismatch,
}

/// One zone served by [`SignedDns`]: its apex, its records and how it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedZone {
    /// The apex, such as `sec.test` (case-insensitive, trailing dot optional; not the root).
    pub origin: String,
    /// The records, in the text format of [`crate::zone`], with full owner names.
    pub text: String,
    /// How the zone is signed.
    pub mode: Mode,
}

impl SignedZone {
    /// A zone at `origin` holding the records of `text`.
    pub fn new(origin: impl Into<String>, text: impl Into<String>, mode: Mode) -> Self {
        SignedZone {
            origin: origin.into(),
            text: text.into(),
            mode,
        }
    }
}

/// A DNSSEC-signing authoritative DNS server for a tree of zones under a signed lab root, on UDP
/// and TCP of one ephemeral port of 127.0.0.1. See the [module docs](self).
///
/// [`SignedDns::start`] must be called inside a tokio runtime; the server runs as tasks of it.
/// Dropping the `SignedDns` stops the server; [`SignedDns::shutdown`] also waits for it.
pub struct SignedDns {
    addr: SocketAddr,
    trust_anchor: String,
    zones: Vec<(String, Mode)>,
    queries: Arc<AtomicU64>,
    server: Option<Server<Router>>,
}

impl std::fmt::Debug for SignedDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedDns")
            .field("addr", &self.addr)
            .field("zones", &self.zones)
            .finish_non_exhaustive()
    }
}

/// A zone being built: its apex and mode, its records and its key.
struct Plan {
    origin: Name,
    mode: Mode,
    zone: Zone,
    key: Option<ZoneKey>,
}

/// A zone's signing key, kept as PKCS#8 so that several signers can be made from it.
struct ZoneKey {
    pkcs8: PrivatePkcs8KeyDer<'static>,
    public: PublicKeyBuf,
}

impl ZoneKey {
    fn generate() -> Result<Self, LabError> {
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).map_err(dnssec)?;
        let public = Self::signing_key(&pkcs8)?.to_public_key().map_err(dnssec)?;
        Ok(ZoneKey { pkcs8, public })
    }

    fn signing_key(pkcs8: &PrivatePkcs8KeyDer<'static>) -> Result<EcdsaSigningKey, LabError> {
        EcdsaSigningKey::from_pkcs8(pkcs8, Algorithm::ECDSAP256SHA256).map_err(dnssec)
    }

    fn signer(&self, zone: &Name, validity: Duration) -> Result<DnssecSigner, LabError> {
        Ok(DnssecSigner::new(
            DNSKEY::from_key(&self.public),
            Box::new(Self::signing_key(&self.pkcs8)?),
            zone.clone(),
            validity,
        ))
    }
}

fn dnssec(e: impl std::fmt::Display) -> LabError {
    LabError::Dnssec(e.to_string())
}

impl SignedDns {
    /// Signs `zones` (with a signed root and the intermediate zones they need) and serves them
    /// on UDP and TCP of one ephemeral port of 127.0.0.1.
    ///
    /// Fails with [`LabError::Dnssec`] if an origin is the root, invalid or given twice, if a
    /// zone's text does not parse, has a behaviour (`TIMEOUT`, ...), a record outside its
    /// zone or an MX host address that is not loopback, or if signing fails; with
    /// [`LabError::Bind`] if the sockets cannot be bound.
    pub async fn start(zones: &[SignedZone]) -> Result<SignedDns, LabError> {
        let plans = plan(zones)?;
        check_mx_addresses(&plans)?;
        let root_key = plans
            .first()
            .and_then(|p| p.key.as_ref())
            .map(|k| k.public.clone())
            .ok_or_else(|| dnssec("the root zone has no key"))?;
        let trust_anchor = format!(". {ANCHOR_TTL} IN DNSKEY {}\n", DNSKEY::from_key(&root_key));

        let origins = origins_of(&plans);
        let children = children_of(&plans, &origins);
        let mut catalogs = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            let handler = build_zone(plan, &plans, &origins, &children[i])?;
            let origin = LowerName::new(&plan.origin);
            let mut catalog = Catalog::new();
            catalog.upsert(origin.clone(), vec![Arc::new(handler)]);
            catalogs.push((origin, catalog));
        }

        let (tcp, udp) = bind_pair(Ipv4Addr::LOCALHOST.into()).await?;
        let addr = tcp.local_addr().map_err(LabError::Bind)?;
        let queries = Arc::new(AtomicU64::new(0));
        let mut server = Server::new(Router {
            origins,
            zones: catalogs,
            queries: Arc::clone(&queries),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        Ok(SignedDns {
            addr,
            trust_anchor,
            zones: plans
                .iter()
                .map(|p| (p.origin.to_string(), p.mode))
                .collect(),
            queries,
            server: Some(server),
        })
    }

    /// Requests received since the start or the last [`SignedDns::reset_query_count`], UDP and
    /// TCP, answered or not.
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Sets [`SignedDns::query_count`] back to zero and returns what it was.
    pub fn reset_query_count(&self) -> u64 {
        self.queries.swap(0, Ordering::Relaxed)
    }

    /// The address the server listens on, for both UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The lab root's key as one line of zone-file text, `. 3600 IN DNSKEY 257 3 13 <base64>`,
    /// which hickory's `TrustAnchors` reads (`from_str`, `from_file`).
    pub fn trust_anchor(&self) -> &str {
        &self.trust_anchor
    }

    /// Writes [`SignedDns::trust_anchor`] to [`TRUST_ANCHOR_FILE`] in `dir` and returns the
    /// file's path.
    pub fn write_trust_anchor(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join(TRUST_ANCHOR_FILE);
        std::fs::write(&path, &self.trust_anchor)?;
        Ok(path)
    }

    /// Every zone served (apex with its trailing dot, the root first) and its mode.
    pub fn zones(&self) -> &[(String, Mode)] {
        &self.zones
    }

    /// Stops the server and waits until its sockets are closed.
    pub async fn shutdown(mut self) {
        if let Some(mut server) = self.server.take() {
            // The only errors are sockets that closed unexpectedly: nothing to do about them.
            let _ = server.shutdown_gracefully().await;
        }
    }
}

impl Drop for SignedDns {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown_token().cancel();
        }
    }
}

/// The zones to serve, root first, then by number of labels: each given zone with its parsed
/// records, and every missing ancestor (signed, empty). Keys are generated here.
fn plan(zones: &[SignedZone]) -> Result<Vec<Plan>, LabError> {
    let mut given: BTreeMap<LowerName, (Name, Mode, Zone)> = BTreeMap::new();
    for z in zones {
        let origin = z.origin.strip_suffix('.').unwrap_or(&z.origin);
        if origin.is_empty() {
            return Err(dnssec("the root zone is always served and cannot be given"));
        }
        let origin = origin.to_ascii_lowercase();
        check_name(&origin).map_err(|e| dnssec(format!("invalid origin {:?}: {e}", z.origin)))?;
        let name =
            to_name(&origin).ok_or_else(|| dnssec(format!("invalid origin {:?}", z.origin)))?;
        let records = Zone::parse(&z.text).map_err(|e| dnssec(format!("zone {origin}: {e}")))?;
        records
            .validate()
            .map_err(|e| dnssec(format!("zone {origin}: {e}")))?;
        if given
            .insert(LowerName::new(&name), (name, z.mode, records))
            .is_some()
        {
            return Err(dnssec(format!("zone {origin} is given twice")));
        }
    }
    let mut origins: BTreeSet<(usize, LowerName)> = BTreeSet::new();
    origins.insert((0, LowerName::new(&Name::root())));
    for name in given.keys() {
        let mut n = name.clone();
        while !n.is_root() {
            origins.insert((n.num_labels() as usize, n.clone()));
            n = n.base_name();
        }
    }
    let mut plans = Vec::with_capacity(origins.len());
    for (_, lower) in origins {
        let (origin, mode, zone) = match given.remove(&lower) {
            Some(g) => g,
            None => (Name::from(&lower), Mode::Signed, Zone::new()),
        };
        let key = match mode {
            Mode::Unsigned => None,
            _ => Some(ZoneKey::generate()?),
        };
        plans.push(Plan {
            origin,
            mode,
            zone,
            key,
        });
    }
    Ok(plans)
}

/// Each zone's position in the plans, by origin: a zone is found by walking up from a name,
/// label by label, instead of testing every zone (the bench serves thousands).
type Origins = HashMap<LowerName, usize>;

fn origins_of(plans: &[Plan]) -> Origins {
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| (LowerName::new(&p.origin), i))
        .collect()
}

/// The position of the zone that holds `name` in `origins`: the one with the most labels that
/// contains it.
fn zone_index(origins: &Origins, name: &LowerName) -> Option<usize> {
    let mut n = name.clone();
    loop {
        if let Some(&i) = origins.get(&n) {
            return Some(i);
        }
        if n.is_root() {
            return None;
        }
        n = n.base_name();
    }
}

/// Refuses an address record of an MX host that is not loopback.
fn check_mx_addresses(plans: &[Plan]) -> Result<(), LabError> {
    let mx_hosts: BTreeSet<String> = plans
        .iter()
        .flat_map(|p| p.zone.iter())
        .flat_map(|(_, records)| records)
        .filter_map(|r| match r {
            LabRecord::Mx(_, host) if !host.is_empty() => Some(host.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    for plan in plans {
        for (owner, records) in plan.zone.iter() {
            if !mx_hosts.contains(owner) {
                continue;
            }
            for record in records {
                let ip: std::net::IpAddr = match record {
                    LabRecord::A(ip) => (*ip).into(),
                    LabRecord::Aaaa(ip) => (*ip).into(),
                    _ => continue,
                };
                if !ip.is_loopback() {
                    return Err(dnssec(format!(
                        "MX host {owner} has the address {ip}, which is not a loopback address"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// For each plan, the positions of the zones it delegates to (those whose parent it is).
fn children_of(plans: &[Plan], origins: &Origins) -> Vec<Vec<usize>> {
    let mut children = vec![Vec::new(); plans.len()];
    for (i, child) in plans.iter().enumerate() {
        if child.origin.is_root() {
            continue;
        }
        if let Some(parent) = zone_index(origins, &LowerName::new(&child.origin.base_name())) {
            children[parent].push(i);
        }
    }
    children
}

/// One zone as a hickory zone handler: SOA and NS at the apex, its records, its delegations
/// (NS, and DS unless the child is unsigned), signed as its mode says.
fn build_zone(
    plan: &Plan,
    plans: &[Plan],
    origins: &Origins,
    children: &[usize],
) -> Result<InMemoryZoneHandler, LabError> {
    let origin = &plan.origin;
    let signed = plan.key.is_some();
    let mut handler = InMemoryZoneHandler::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
        signed.then_some(NxProofKind::Nsec),
    );
    let ns_host = Name::from_ascii("ns.lab-dns.invalid.").map_err(dnssec)?;
    let soa = SOA::new(
        ns_host.clone(),
        Name::from_ascii("hostmaster.lab-dns.invalid.").map_err(dnssec)?,
        1,
        3600,
        600,
        86400,
        TTL,
    );
    let mut add = |record: Record| -> Result<(), LabError> {
        let text = format!("{} {}", record.name, record.record_type());
        if handler.upsert_mut(record, 1) {
            Ok(())
        } else {
            Err(dnssec(format!("zone {origin}: cannot add {text}")))
        }
    };
    add(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)))?;
    add(Record::from_rdata(
        origin.clone(),
        TTL,
        RData::NS(NS(ns_host.clone())),
    ))?;

    for (owner, records) in plan.zone.iter() {
        let name = to_name(owner).ok_or_else(|| dnssec(format!("invalid name {owner}")))?;
        let holder = zone_index(origins, &LowerName::new(&name)).map(|i| &plans[i].origin);
        if holder != Some(origin) {
            return Err(dnssec(format!(
                "zone {origin}: {owner} is not in this zone (it belongs to {})",
                holder.map_or_else(|| ".".to_owned(), Name::to_string)
            )));
        }
        for record in records {
            let rdata = rdata_of(record).ok_or_else(|| {
                dnssec(format!(
                    "zone {origin}: {owner} {}: not supported by the signed lab server",
                    record.type_name()
                ))
            })?;
            let mut record = Record::from_rdata(name.clone(), TTL, rdata);
            record.dns_class = DNSClass::IN;
            add(record)?;
        }
    }

    // Delegations to the zones whose parent this is.
    for child in children.iter().map(|&i| &plans[i]) {
        add(Record::from_rdata(
            child.origin.clone(),
            TTL,
            RData::NS(NS(ns_host.clone())),
        ))?;
        let ds_key = match (child.mode, &child.key) {
            (Mode::Unsigned, _) | (_, None) => continue,
            (Mode::DsMismatch, Some(_)) => ZoneKey::generate()?.public,
            (_, Some(key)) => key.public.clone(),
        };
        let ds = DS::from_key(&ds_key, &child.origin, DigestType::SHA256).map_err(dnssec)?;
        add(Record::from_rdata(
            child.origin.clone(),
            TTL,
            RData::DNSSEC(DNSSECRData::DS(ds)),
        ))?;
    }

    let Some(key) = &plan.key else {
        return Ok(handler);
    };
    handler
        .add_zone_signing_key_mut(key.signer(origin, SIGNATURE_VALIDITY)?)
        .map_err(dnssec)?;
    handler.secure_zone_mut().map_err(dnssec)?;
    if plan.mode == Mode::ExpiredSignatures {
        // Sign every set again (NSEC and DNSKEY included), one day's validity ending
        // EXPIRED_AGO.
        let day = Duration::from_secs(86_400);
        let old = key.signer(origin, day)?;
        let inception = time::OffsetDateTime::now_utc() - EXPIRED_AGO - day;
        for rrset in handler.records_get_mut().values_mut() {
            let rrset = Arc::make_mut(rrset);
            rrset.clear_rrsigs();
            let sig = RRSIG::from_rrset(rrset, DNSClass::IN, inception, &old).map_err(dnssec)?;
            let rrsig = Record::from_rdata(
                rrset.name().clone(),
                rrset.ttl(),
                RData::DNSSEC(DNSSECRData::RRSIG(sig)),
            );
            rrset.insert_rrsig(rrsig);
        }
    }
    Ok(handler)
}

/// Routes each query to the zone with the most labels that holds its name, except a DS query
/// for a zone's apex, which goes to the parent.
struct Router {
    /// Every zone served, the root first.
    zones: Vec<(LowerName, Catalog)>,
    /// Each zone's position in `zones`, by origin.
    origins: Origins,
    /// Requests received, for [`SignedDns::query_count`].
    queries: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl RequestHandler for Router {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let (qname, qtype) = match request.request_info() {
            Ok(info) => (info.query.name().clone(), info.query.query_type()),
            Err(_) => (LowerName::new(&Name::root()), RecordType::A),
        };
        // A DS query for a zone's apex is the parent's to answer.
        let asked =
            if qtype == RecordType::DS && !qname.is_root() && self.origins.contains_key(&qname) {
                qname.base_name()
            } else {
                qname
            };
        let catalog = zone_index(&self.origins, &asked)
            .or(Some(0))
            .and_then(|i| self.zones.get(i))
            .map(|(_, catalog)| catalog);
        match catalog {
            Some(catalog) => {
                catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
            // Never reached: the root zone is always served.
            None => {
                Catalog::new()
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// The type covered, inception and expiration (Unix seconds) of every RRSIG of the zone at
    /// `origin` (with its trailing dot).
    fn signatures(zones: &[SignedZone], origin: &str) -> Vec<(RecordType, u32, u32)> {
        let plans = plan(zones).expect("plan");
        let i = plans
            .iter()
            .position(|p| p.origin.to_string() == origin)
            .expect("zone planned");
        let origins = origins_of(&plans);
        let children = children_of(&plans, &origins);
        let mut handler =
            build_zone(&plans[i], &plans, &origins, &children[i]).expect("zone builds");
        handler
            .records_get_mut()
            .values()
            .flat_map(|rrset| rrset.rrsigs())
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some((
                    sig.input().type_covered,
                    sig.input().sig_inception.get(),
                    sig.input().sig_expiration.get(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn signature_validity_follows_the_mode() {
        let zones = [
            SignedZone::new(
                "old.test",
                "www.old.test A 127.0.0.1",
                Mode::ExpiredSignatures,
            ),
            SignedZone::new("new.test", "www.new.test A 127.0.0.1", Mode::Signed),
            SignedZone::new("plain.test", "www.plain.test A 127.0.0.1", Mode::Unsigned),
        ];
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let now = u32::try_from(now).expect("32-bit time");
        let near = |t: u32, expected: u32| t.abs_diff(expected) <= 120;
        let days = |n: u32| n * 86_400;

        let old = signatures(&zones, "old.test.");
        let new = signatures(&zones, "new.test.");
        for sigs in [&old, &new] {
            let mut types: Vec<RecordType> = sigs.iter().map(|s| s.0).collect();
            types.sort();
            types.dedup();
            let mut expected = vec![
                RecordType::A,
                RecordType::NS,
                RecordType::SOA,
                RecordType::DNSKEY,
                RecordType::NSEC,
            ];
            expected.sort();
            assert_eq!(types, expected);
        }
        for &(rtype, inception, expiration) in &old {
            assert!(
                near(expiration, now - days(10)) && near(inception, now - days(11)),
                "{rtype}: {inception}..{expiration}, now {now}"
            );
        }
        for &(rtype, inception, expiration) in &new {
            assert!(
                near(inception, now) && expiration == inception + days(30),
                "{rtype}: {inception}..{expiration}, now {now}"
            );
        }
        assert_eq!(signatures(&zones, "plain.test."), []);
        // The TLD made for them is signed; it signs its DS sets (two: no DS for plain.test).
        let tld = signatures(&zones, "test.");
        assert_eq!(tld.iter().filter(|s| s.0 == RecordType::DS).count(), 2);
    }
}
