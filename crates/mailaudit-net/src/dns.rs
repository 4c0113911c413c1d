//! DNS through hickory-resolver, behind the core's [`DnsSource`] trait.
//!
//! One [`Resolver`] serves a whole run. Its cache is shared by every domain (the 500 domains that
//! include `spf.protection.outlook.com` resolve it once) and coalesces identical questions in
//! flight: the second asker waits for the first answer instead of sending a second query. The
//! cache is bounded, so memory stays flat however many domains a run has. Failures are cached
//! for the run too, so a dead include target costs one timeout, not one per domain. An empty
//! answer keeps whether it was NXDOMAIN, so [`DnsSource::exists`] is answered from the cached
//! MX question at the name, without a query of its own.
//!
//! DNSSEC ([`Dnssec`]): the records themselves always come from a non-validating resolver, so a
//! bogus zone still shows what it publishes (a validating resolver answers SERVFAIL and hides
//! it). A second, validating resolver (same name servers, same timeouts) answers only
//! [`DnsSource::security`]: one SOA question at the name, validated from the trust anchor (the
//! IANA root by default, a file for labs). At a zone apex the SOA is the answer; at a host name
//! the NODATA reply carries the zone's SOA and NSEC proof; the proof of those records is the
//! zone's status. hickory's DNSSEC handle asks the DNSKEY and DS records up the chain itself
//! (with its own cache), so one `security` look-up costs more than one query on the wire; the
//! counters count it as one. A limit: hickory does not set the CD bit (RFC 4035 §3.2.2), so
//! behind a validating upstream resolver (most public ones) a bogus zone's answers are SERVFAIL
//! for both resolvers, and the zone is reported as failed look-ups (DNS-LOOKUP-FAILED), not as
//! DNSSEC-BOGUS; a non-validating upstream, or none (authoritative servers), tells them apart.
//!
//! [`probe_nameserver`] asks one resolver one question with a short timeout, so that a dead or
//! mistyped `--nameserver` fails a run at once rather than after every look-up timed out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig as HickoryConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError as HickoryNetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mailaudit_core::dns::{
    DnsError, DnsResult, DnsSource, Mx, Security, Tlsa, check_name, normalize_name,
};

use crate::NetError;

/// How the resolver is set up for a run.
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    /// Recursive resolvers to send every query to; empty means the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Time to wait for one reply before retrying.
    pub timeout: Duration,
    /// How many times a query is sent before it counts as timed out.
    pub attempts: usize,
    /// How many answers the run's cache keeps at most.
    pub cache_capacity: u64,
    /// DNSSEC validation of [`DnsSource::security`].
    pub dnssec: Dnssec,
}

/// Whether and from which trust anchor [`DnsSource::security`] validates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Dnssec {
    /// Validate from the IANA root zone's trust anchors (KSK-2017 and KSK-2024), as a public
    /// resolver does.
    #[default]
    IanaRoot,
    /// Validate from the DNSKEY records of a file (`--trust-anchor`): zone-file lines such as
    /// `. 3600 IN DNSKEY 257 3 13 <base64>`; a lab's signed root.
    TrustAnchorFile(PathBuf),
    /// The same, given as text rather than as a file (tests).
    TrustAnchorText(String),
    /// No validation (`--no-dnssec`): [`DnsSource::security`] answers `Ok(None)`, and the
    /// report has no DNSSEC/DANE verdicts.
    Off,
}

impl Dnssec {
    /// The trust anchors to validate from; `None` when validation is off.
    fn anchors(&self) -> Result<Option<TrustAnchors>, NetError> {
        let (path, text) = match self {
            Dnssec::Off => return Ok(None),
            Dnssec::IanaRoot => return Ok(Some(TrustAnchors::default())),
            Dnssec::TrustAnchorFile(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| NetError::TrustAnchor {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                (path.display().to_string(), text)
            }
            Dnssec::TrustAnchorText(text) => ("(text)".to_string(), text.clone()),
        };
        let anchors: TrustAnchors = text.parse().map_err(|e| NetError::TrustAnchor {
            path: path.clone(),
            reason: format!("{e}"),
        })?;
        if anchors.is_empty() {
            return Err(NetError::TrustAnchor {
                path,
                reason: "it holds no DNSKEY record of the root zone \".\" \
                         (expected lines such as \". 3600 IN DNSKEY 257 3 13 <base64>\")"
                    .into(),
            });
        }
        Ok(Some(anchors))
    }
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(3),
            attempts: 2,
            cache_capacity: 200_000,
            dnssec: Dnssec::default(),
        }
    }
}

/// Parses a `--nameserver` value: `ADDR`, `ADDR:PORT`, `[V6]:PORT` (port 53 by default).
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, NetError> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(NetError::InvalidNameserver(s.to_string()))
}

/// A reply: its records of the type asked (empty for NXDOMAIN and NODATA), and whether the
/// name does not exist (NXDOMAIN with no CNAME on the way).
#[derive(Debug)]
struct Answer {
    records: Vec<RData>,
    nxdomain: bool,
}

type Cached = Arc<Result<Answer, DnsError>>;

type CachedSecurity = Arc<Result<Security, DnsError>>;

/// Counters for a run, for benchmarks and `--stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Questions asked by the checks.
    pub lookups: u64,
    /// Questions that went to the network (the rest came from the cache or joined one in flight).
    pub queries_sent: u64,
    /// Of the questions sent, those that got an answer (records, NXDOMAIN or NODATA).
    pub answered: u64,
    /// Of the questions sent, those that failed (timeout, SERVFAIL, REFUSED, network error).
    pub failed: u64,
}

impl ResolverStats {
    /// Whether questions were sent and not one of them got an answer: every result of the
    /// run rests on failed look-ups (a resolver that stopped answering, a broken network).
    pub fn all_failed(&self) -> bool {
        self.failed > 0 && self.answered == 0
    }
}

/// A caching, coalescing resolver implementing [`DnsSource`].
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    cache: moka::future::Cache<(String, RecordType), Cached>,
    /// The validating resolver of [`DnsSource::security`]; `None` with `--no-dnssec`.
    validating: Option<TokioResolver>,
    security_cache: moka::future::Cache<String, CachedSecurity>,
    lookups: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Resolver {
    /// Builds the resolver. Must be called inside a tokio runtime.
    pub fn new(config: &ResolverConfig) -> Result<Self, NetError> {
        let inner = build(config, None)?;
        let validating = match config.dnssec.anchors()? {
            Some(anchors) => Some(build(config, Some(anchors))?),
            None => None,
        };
        Ok(Resolver {
            inner,
            cache: moka::future::Cache::builder()
                .max_capacity(config.cache_capacity)
                .build(),
            validating,
            security_cache: moka::future::Cache::builder()
                .max_capacity(config.cache_capacity)
                .build(),
            lookups: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(AtomicU64::new(0)),
            answered: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(AtomicU64::new(0)),
        })
    }
}

/// One hickory resolver for `config`: validating from `anchors` when given.
fn build(
    config: &ResolverConfig,
    anchors: Option<TrustAnchors>,
) -> Result<TokioResolver, NetError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if config.nameservers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| NetError::ResolverSetup(e.to_string()))?
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|sa| {
                let mut udp = ConnectionConfig::udp();
                udp.port = sa.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = sa.port();
                NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(HickoryConfig::from_name_servers(servers), provider)
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.timeout = config.timeout;
    opts.attempts = config.attempts.max(1);
    opts.ndots = 0;
    // Our own cache (below) is the run's cache; hickory's would only duplicate it.
    opts.cache_size = 0;
    opts.edns0 = true;
    opts.preserve_intermediates = true;
    opts.num_concurrent_reqs = 1;
    opts.max_active_requests = 1024;
    if let Some(anchors) = anchors {
        // The DNSKEY and DS records up the chain are cached by hickory's DNSSEC handle
        // itself; the answers to `security` by [`Resolver::security_cache`].
        builder = builder.with_trust_anchor(Arc::new(anchors));
    }
    builder
        .build()
        .map_err(|e| NetError::ResolverSetup(e.to_string()))
}

impl Resolver {
    /// The run's counters so far.
    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            lookups: self.lookups.load(Ordering::Relaxed),
            queries_sent: self.sent.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    async fn query(&self, name: &str, rtype: RecordType) -> Cached {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let name = normalize_name(name);
        if let Err(e) = check_name(&name) {
            return Arc::new(Err(e));
        }
        let key = (name, rtype);
        let fqdn = format!("{}.", key.0);
        self.cache
            .get_with(key, async {
                self.sent.fetch_add(1, Ordering::Relaxed);
                let answer = self.send(&fqdn, rtype).await;
                let counter = match &answer {
                    Ok(_) => &self.answered,
                    Err(_) => &self.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Arc::new(answer)
            })
            .await
    }

    async fn send(&self, fqdn: &str, rtype: RecordType) -> Result<Answer, DnsError> {
        // Labels may hold any octet (RFC 2181 §11): SPF macros expand to names such as
        // `foo:bar/baz.example.com`, which must be asked as they are, not refused.
        let labels = fqdn.trim_end_matches('.').split('.').map(str::as_bytes);
        let mut name =
            Name::from_labels(labels).map_err(|e| DnsError::InvalidName(format!("{fqdn}: {e}")))?;
        name.set_fqdn(true);
        match self.inner.lookup(name.clone(), rtype).await {
            // A reply with records (a CNAME to a missing name is NXDOMAIN with the CNAME in the
            // answer: the name asked exists).
            Ok(lookup) => Ok(Answer {
                records: lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect(),
                nxdomain: false,
            }),
            Err(e) => map_error(e, &name),
        }
    }
}

impl Resolver {
    /// The validated status of the zone answering for `name` (see the module's documentation),
    /// cached and coalesced like the other questions.
    async fn validate(&self, validating: &TokioResolver, name: &str) -> CachedSecurity {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let name = normalize_name(name);
        if let Err(e) = check_name(&name) {
            return Arc::new(Err(e));
        }
        let fqdn = format!("{name}.");
        self.security_cache
            .get_with(name, async {
                self.sent.fetch_add(1, Ordering::Relaxed);
                let answer = security_of(validating, &fqdn).await;
                let counter = match &answer {
                    Ok(_) => &self.answered,
                    Err(_) => &self.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Arc::new(answer)
            })
            .await
    }
}

/// One validating SOA question at `fqdn`, and what its answer says about the zone.
///
/// - records (a zone apex): their proof;
/// - NODATA or NXDOMAIN (a name inside a zone): the proof of the SOA and NSEC records of the
///   authority section;
/// - hickory's `DnssecBogus` (an expired signature, a DS matching no key, a missing proof where
///   the chain says there must be one): [`Security::Bogus`];
/// - no reply, SERVFAIL, REFUSED: an error, as for every other look-up.
///
/// hickory's `Indeterminate` (it could not tell whether the records should be signed) counts as
/// [`Security::Insecure`], as hickory's own `DnssecSummary` does: no chain of trust reached the
/// records, so no DNSSEC-validating sender can rely on them.
async fn security_of(validating: &TokioResolver, fqdn: &str) -> Result<Security, DnsError> {
    let labels = fqdn.trim_end_matches('.').split('.').map(str::as_bytes);
    let mut name =
        Name::from_labels(labels).map_err(|e| DnsError::InvalidName(format!("{fqdn}: {e}")))?;
    name.set_fqdn(true);
    match validating.lookup(name, RecordType::SOA).await {
        Ok(lookup) => Ok(summary(lookup.answers().iter().map(|r| r.proof))),
        Err(HickoryNetError::Dns(HickoryDnsError::DnssecBogus)) => Ok(Security::Bogus),
        Err(HickoryNetError::Dns(HickoryDnsError::NoRecordsFound(no))) => {
            let proofs = no.soa.iter().map(|soa| soa.proof).chain(
                no.authorities
                    .iter()
                    .flat_map(|a| a.iter())
                    .filter(|r| r.record_type() != RecordType::RRSIG)
                    .map(|r| r.proof),
            );
            Ok(summary(proofs))
        }
        // Every other error is a failure to get an answer (map_error's `Ok` is only for
        // NoRecordsFound, handled above).
        Err(e) => Err(map_error(e, &Name::root())
            .err()
            .unwrap_or_else(|| DnsError::Other("no answer".into()))),
    }
}

/// Bogus if any record is, Secure if all are (and there is one), Insecure otherwise.
fn summary(proofs: impl Iterator<Item = Proof>) -> Security {
    let mut all_secure = None;
    for proof in proofs {
        match proof {
            Proof::Bogus => return Security::Bogus,
            Proof::Secure => {
                all_secure.get_or_insert(true);
            }
            _ => all_secure = Some(false),
        }
    }
    if all_secure.unwrap_or(false) {
        Security::Secure
    } else {
        Security::Insecure
    }
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `asked` is the name of the question: after a CNAME, hickory reports the empty answer of
/// the last name of the chain, and NXDOMAIN there says nothing about `asked`, which exists.
fn map_error(e: HickoryNetError, asked: &Name) -> Result<Answer, DnsError> {
    match e {
        HickoryNetError::Dns(HickoryDnsError::NoRecordsFound(no)) => Ok(Answer {
            records: Vec::new(),
            nxdomain: no.response_code == ResponseCode::NXDomain
                && no.query.name().to_lowercase() == asked.to_lowercase(),
        }),
        HickoryNetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::ServFail)) => {
            Err(DnsError::ServFail)
        }
        HickoryNetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::Refused)) => {
            Err(DnsError::Refused)
        }
        HickoryNetError::Timeout => Err(DnsError::Timeout),
        other => {
            let text = other.to_string();
            if text.contains("timed out") {
                Err(DnsError::Timeout)
            } else {
                Err(DnsError::Other(text))
            }
        }
    }
}

fn pick<T>(cached: &Cached, f: impl Fn(&RData) -> Option<T>) -> DnsResult<T> {
    match cached.as_ref() {
        Ok(a) => Ok(a.records.iter().filter_map(f).collect()),
        Err(e) => Err(e.clone()),
    }
}

/// A name from an answer as text: labels joined raw (no `\:` escaping), lower-case.
fn host(name: &Name) -> String {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    normalize_name(&labels.join("."))
}

impl DnsSource for Resolver {
    async fn txt(&self, name: &str) -> DnsResult<String> {
        let c = self.query(name, RecordType::TXT).await;
        pick(&c, |r| match r {
            RData::TXT(t) => {
                let bytes: Vec<u8> = t.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        })
    }

    async fn a(&self, name: &str) -> DnsResult<Ipv4Addr> {
        let c = self.query(name, RecordType::A).await;
        pick(&c, |r| match r {
            RData::A(a) => Some(a.0),
            _ => None,
        })
    }

    async fn aaaa(&self, name: &str) -> DnsResult<Ipv6Addr> {
        let c = self.query(name, RecordType::AAAA).await;
        pick(&c, |r| match r {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
    }

    async fn mx(&self, name: &str) -> DnsResult<Mx> {
        let c = self.query(name, RecordType::MX).await;
        pick(&c, |r| match r {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference,
                exchange: host(&mx.exchange),
            }),
            _ => None,
        })
    }

    async fn ptr(&self, ip: IpAddr) -> DnsResult<String> {
        let name = mailaudit_core::dns::reverse_name(ip);
        let c = self.query(&name, RecordType::PTR).await;
        pick(&c, |r| match r {
            RData::PTR(p) => Some(host(&p.0)),
            _ => None,
        })
    }

    async fn cname(&self, name: &str) -> DnsResult<String> {
        let c = self.query(name, RecordType::CNAME).await;
        pick(&c, |r| match r {
            RData::CNAME(t) => Some(host(&t.0)),
            _ => None,
        })
    }

    async fn tlsa(&self, name: &str) -> DnsResult<Tlsa> {
        let c = self.query(name, RecordType::TLSA).await;
        pick(&c, |r| match r {
            RData::TLSA(t) => Some(Tlsa {
                cert_usage: t.cert_usage.into(),
                selector: t.selector.into(),
                matching_type: t.matching.into(),
                cert_association_data: hex(&t.cert_data),
            }),
            _ => None,
        })
    }

    /// Validated by the second resolver; `Ok(None)` with `--no-dnssec`.
    async fn security(&self, name: &str) -> Result<Option<Security>, DnsError> {
        let Some(validating) = &self.validating else {
            return Ok(None);
        };
        match self.validate(validating, name).await.as_ref() {
            Ok(s) => Ok(Some(*s)),
            Err(e) => Err(e.clone()),
        }
    }

    /// From the MX question at `name` (the audit asks it anyway): the same cached answer.
    async fn exists(&self, name: &str) -> Result<bool, DnsError> {
        let c = self.query(name, RecordType::MX).await;
        match c.as_ref() {
            Ok(a) => Ok(!a.nxdomain),
            Err(e) => Err(e.clone()),
        }
    }
}

/// What a resolver did with one test question ([`probe_nameserver`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A reply came; its response code (`NOERROR`, `NXDOMAIN`, `REFUSED`, `SERVFAIL`, ...).
    /// Any reply means something answers DNS at the address.
    Answered(&'static str),
    /// No reply: why (nothing within the time, the port refused, a network error).
    NoReply(String),
}

/// The text of a response code.
fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "another response code",
    }
}

/// Asks `server` one question (the root zone's SOA, which any recursive resolver can answer)
/// over UDP, waiting at most `timeout` for the reply (the question is sent again halfway, in
/// case a datagram was lost). Only the reply's header is read: whatever the answer, the
/// server is there.
pub async fn probe_nameserver(server: SocketAddr, timeout: Duration) -> ProbeOutcome {
    match tokio::time::timeout(timeout, probe_exchange(server, timeout / 2)).await {
        Ok(Ok(rcode)) => ProbeOutcome::Answered(rcode_name(rcode)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ProbeOutcome::NoReply("nothing listens on its port: connection refused".into())
        }
        Ok(Err(e)) => ProbeOutcome::NoReply(e.to_string()),
        Err(_) => ProbeOutcome::NoReply(format!(
            "no reply to a test query within {}",
            seconds(timeout)
        )),
    }
}

/// `2 s`, `0.5 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// One question to `server`, sent again after `resend`; the reply's RCODE.
async fn probe_exchange(server: SocketAddr, resend: Duration) -> std::io::Result<u8> {
    use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
    let id = probe_id();
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::root(), RecordType::SOA));
    let query = message
        .to_vec()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(&query).await?;
    let mut buf = [0u8; 4096];
    let mut resent = false;
    loop {
        let received = if resent {
            socket.recv(&mut buf).await.map(Some)?
        } else {
            match tokio::time::timeout(resend, socket.recv(&mut buf)).await {
                Ok(r) => Some(r?),
                Err(_) => None,
            }
        };
        let Some(len) = received else {
            socket.send(&query).await?;
            resent = true;
            continue;
        };
        // The header: ID (2 octets), then QR|OPCODE|AA|TC|RD, then RA|Z|AD|CD|RCODE.
        if let Some(&[hi, lo, flags, codes]) = buf.get(..len.min(4))
            && u16::from_be_bytes([hi, lo]) == id
            && flags & 0x80 != 0
        {
            return Ok(codes & 0x0f);
        }
    }
}

/// A query ID that differs from run to run (a liveness probe needs no more).
fn probe_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id()) as u16
}
