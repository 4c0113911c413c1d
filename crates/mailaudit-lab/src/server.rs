//! The loopback server: sockets, the request handler and the answering rules.
//!
//! A [`Zone`] is compiled once (on [`LabDns::start`] and [`LabDns::set_zone`]) into a hash map
//! from `LowerName` to ready-made hickory `Record`s, held behind `RwLock<Arc<_>>`: a query takes
//! the read lock only long enough to clone the `Arc`, looks its name up without allocating, and
//! clones just the records it answers with. Swapping the zone never blocks a query for longer
//! than that.

use std::collections::HashMap;
use std::iter;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, LowerQuery, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NULL, PTR, SOA, TLSA, TXT};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use crate::{LabError, LabRecord, Zone};

/// The TTL of every record served, in seconds (also the negative-caching TTL, RFC 2308 §5).
pub const TTL: u32 = 300;

/// The most CNAMEs followed for one question; a longer chain (or a loop) is SERVFAIL.
pub const MAX_CNAME_HOPS: usize = 8;

/// The largest UDP response sent, whatever larger size a client advertises with EDNS
/// (RFC 6891 §6.2.5 lets a responder use a smaller size than the requestor's).
pub const MAX_UDP_PAYLOAD: u16 = 4096;

/// How long an idle TCP connection is kept open.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Outgoing responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 64;

/// Attempts to find a port free for both TCP and UDP.
const BIND_ATTEMPTS: usize = 32;

/// An authoritative-and-recursive DNS server for a [`Zone`], on UDP and TCP of one ephemeral
/// port of 127.0.0.1.
///
/// # Answering rules
///
/// For a question (name, type), names compared case-insensitively:
///
/// 1. If the name has records of the type, they are the answer (`ANY` returns every record).
/// 2. Else a name with [`LabRecord::Timeout`] gets no reply at all; [`LabRecord::ServFail`] and
///    [`LabRecord::Refused`] get that RCODE (in that order of precedence). A misbehaving name
///    that also has records answers the types it has and misbehaves for the others, as the
///    RFC 7208 test suite's `TIMEOUT` marker after listed records means.
/// 3. Else if it has a CNAME (and the type is not CNAME), the CNAME is added and its target is
///    looked up the same way (step 1 applies to it too), up to [`MAX_CNAME_HOPS`] CNAMEs; a
///    longer chain is SERVFAIL. The RCODE is that of the last name (RFC 6604 §2.1), so a CNAME
///    to a missing name is NXDOMAIN with the CNAME in the answer.
/// 4. Else if the name has other records, or is an empty non-terminal (a record exists below
///    it), the answer is NOERROR with no records (NODATA).
/// 5. Else NXDOMAIN.
///
/// Negative answers carry a synthetic SOA in the authority section, owned by the last two
/// labels of the name, so that resolvers can cache them (RFC 2308 §3). Every response has AA
/// and RA set and echoes RD and the question as asked (case included); answer records are
/// owned by the question's name in its original case. A UDP response larger than the client's
/// EDNS payload size (512 octets without EDNS, at most [`MAX_UDP_PAYLOAD`]) is truncated with
/// TC set, so the client retries over TCP. Queries of a class other than IN (or ANY) are
/// REFUSED, other opcodes NOTIMP, messages without exactly one question FORMERR.
///
/// # Runtime
///
/// [`LabDns::start`] must be called inside a tokio runtime, multi-thread or current-thread;
/// the server runs as tasks of that runtime. On a current-thread runtime the server only makes
/// progress while the runtime is polled, so query it with async sockets, not blocking ones.
/// Dropping the `LabDns` stops the server; [`LabDns::shutdown`] also waits for it.
pub struct LabDns {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<Server<Handler>>,
}

impl std::fmt::Debug for LabDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabDns")
            .field("addr", &self.addr)
            .field("query_count", &self.query_count())
            .finish_non_exhaustive()
    }
}

impl LabDns {
    /// Starts serving `zone` on UDP and TCP of one ephemeral port of 127.0.0.1.
    ///
    /// Binds TCP on `127.0.0.1:0`, then UDP on the port it got, trying again with another port
    /// if that UDP port is taken. Fails if the zone has an invalid name ([`Zone::validate`]) or
    /// the sockets cannot be bound.
    pub async fn start(zone: Zone) -> Result<LabDns, LabError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), zone).await
    }

    /// Starts serving `zone` on UDP and TCP of `addr`, which must be a loopback address
    /// (127.0.0.0/8 or `::1`): for clients that cannot be given a port, such as tools that
    /// only ever query port 53 (binding a port below 1024 needs privileges).
    ///
    /// Port 0 picks an ephemeral port free for both TCP and UDP, as [`LabDns::start`] does.
    /// Fails with [`LabError::Bind`] if `addr` is not a loopback address (kind
    /// `InvalidInput`) or cannot be bound, and if the zone has an invalid name.
    pub async fn start_on(addr: SocketAddr, zone: Zone) -> Result<LabDns, LabError> {
        zone.validate()?;
        if !addr.ip().is_loopback() {
            return Err(LabError::Bind(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a loopback address", addr.ip()),
            )));
        }
        let (tcp, udp) = if addr.port() == 0 {
            bind_pair(addr.ip()).await?
        } else {
            let tcp = TcpListener::bind(addr).await.map_err(LabError::Bind)?;
            let udp = UdpSocket::bind(addr).await.map_err(LabError::Bind)?;
            (tcp, udp)
        };
        let addr = tcp.local_addr().map_err(LabError::Bind)?;
        let shared = Arc::new(Shared {
            zone: RwLock::new(Arc::new(Compiled::new(&zone))),
            queries: AtomicU64::new(0),
        });
        let mut server = Server::new(Handler {
            shared: Arc::clone(&shared),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        Ok(LabDns {
            addr,
            shared,
            server: Some(server),
        })
    }

    /// The address the server listens on, for both UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the data served, atomically: each query sees either the old zone or the new.
    ///
    /// Names that are not valid DNS names ([`Zone::validate`]) are left out (queries for them
    /// would be NXDOMAIN). The query count is not reset.
    pub fn set_zone(&self, zone: Zone) {
        let compiled = Arc::new(Compiled::new(&zone));
        let mut guard = self
            .shared
            .zone
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = compiled;
    }

    /// The number of DNS messages received since the start (or the last
    /// [`LabDns::reset_query_count`]), over UDP and TCP, answered or not.
    pub fn query_count(&self) -> u64 {
        self.shared.queries.load(Ordering::Relaxed)
    }

    /// Sets the query count back to zero and returns what it was.
    pub fn reset_query_count(&self) -> u64 {
        self.shared.queries.swap(0, Ordering::Relaxed)
    }

    /// Stops the server and waits until its sockets are closed.
    pub async fn shutdown(mut self) {
        if let Some(mut server) = self.server.take() {
            // The only errors are sockets that closed unexpectedly: nothing to do about them.
            let _ = server.shutdown_gracefully().await;
        }
    }
}

impl Drop for LabDns {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown_token().cancel();
            // Dropping the server aborts its tasks, which closes the sockets.
        }
    }
}

/// Binds TCP on an ephemeral port of `ip`, then UDP on the same port.
pub(crate) async fn bind_pair(ip: IpAddr) -> Result<(TcpListener, UdpSocket), LabError> {
    let mut last_error = None;
    for _ in 0..BIND_ATTEMPTS {
        let tcp = TcpListener::bind((ip, 0)).await.map_err(LabError::Bind)?;
        let addr = tcp.local_addr().map_err(LabError::Bind)?;
        match UdpSocket::bind(addr).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(LabError::Bind(e)),
        }
    }
    Err(LabError::Bind(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free port")
    })))
}

/// State shared by the handle and the request handler.
struct Shared {
    zone: RwLock<Arc<Compiled>>,
    queries: AtomicU64,
}

impl Shared {
    fn zone(&self) -> Arc<Compiled> {
        let guard = self
            .zone
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&guard)
    }
}

/// A misbehaviour configured for a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Behaviour {
    Refused,
    ServFail,
    Timeout,
}

/// Everything published at one name.
#[derive(Default)]
struct Node {
    /// The strongest misbehaviour configured, if any.
    behaviour: Option<Behaviour>,
    /// Ready-made records (CNAME included), owned by the lower-case name.
    records: Vec<Record>,
    /// The CNAME target, if any.
    cname: Option<Name>,
}

/// A zone compiled for answering.
struct Compiled {
    /// Every owner name, and every ancestor of one (empty non-terminals: empty nodes).
    nodes: HashMap<LowerName, Node>,
    /// The SOA rdata of negative answers.
    soa: SOA,
}

impl Compiled {
    fn new(zone: &Zone) -> Self {
        let mut nodes: HashMap<LowerName, Node> = HashMap::with_capacity(zone.len() * 2);
        for (owner, records) in zone.iter() {
            let Some(name) = to_name(owner) else {
                continue;
            };
            let node = nodes.entry(LowerName::new(&name)).or_default();
            for record in records {
                compile_record(node, &name, record);
            }
            let mut parent = name.base_name();
            while !parent.is_root() {
                let next = parent.base_name();
                nodes.entry(LowerName::new(&parent)).or_default();
                parent = next;
            }
        }
        let soa = SOA::new(
            Name::from_labels(["lab-dns", "invalid"]).unwrap_or_else(|_| Name::root()),
            Name::from_labels(["hostmaster", "lab-dns", "invalid"])
                .unwrap_or_else(|_| Name::root()),
            1,
            3600,
            600,
            86400,
            TTL,
        );
        Compiled { nodes, soa }
    }

    /// Applies the answering rules of [`LabDns`] to one question.
    fn answer(&self, query: &LowerQuery) -> Outcome {
        let qtype = query.query_type();
        match query.query_class() {
            DNSClass::IN | DNSClass::ANY => {}
            _ => return Outcome::rcode(ResponseCode::Refused),
        }
        let mut answers = Vec::new();
        let mut owner = query.original().name().clone();
        let mut lookup = query.name().clone();
        for _ in 0..=MAX_CNAME_HOPS {
            let Some(node) = self.nodes.get(&lookup) else {
                return self.negative(ResponseCode::NXDomain, answers, &owner);
            };
            let before = answers.len();
            answers.extend(
                node.records
                    .iter()
                    .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                    .map(|r| {
                        let mut r = r.clone();
                        r.name = owner.clone();
                        r
                    }),
            );
            if answers.len() > before {
                return Outcome::Reply {
                    rcode: ResponseCode::NoError,
                    answers,
                    authorities: Vec::new(),
                };
            }
            match node.behaviour {
                Some(Behaviour::Timeout) => return Outcome::Silence,
                Some(Behaviour::ServFail) => return Outcome::rcode(ResponseCode::ServFail),
                Some(Behaviour::Refused) => return Outcome::rcode(ResponseCode::Refused),
                None => {}
            }
            match &node.cname {
                Some(target) if qtype != RecordType::CNAME => {
                    let mut cname =
                        Record::from_rdata(owner, TTL, RData::CNAME(CNAME(target.clone())));
                    cname.dns_class = DNSClass::IN;
                    answers.push(cname);
                    owner = target.clone();
                    lookup = LowerName::new(target);
                }
                _ => return self.negative(ResponseCode::NoError, answers, &owner),
            }
        }
        Outcome::rcode(ResponseCode::ServFail)
    }

    /// NXDOMAIN or NODATA, with the synthetic SOA.
    fn negative(&self, rcode: ResponseCode, answers: Vec<Record>, name: &Name) -> Outcome {
        let apex = name.trim_to(2);
        let soa = Record::from_rdata(apex, TTL, RData::SOA(self.soa.clone()));
        Outcome::Reply {
            rcode,
            answers,
            authorities: vec![soa],
        }
    }
}

/// A fully-qualified name from a zone name, if it is valid.
pub(crate) fn to_name(name: &str) -> Option<Name> {
    if name.is_empty() {
        return Some(Name::root());
    }
    if name.len() > crate::zone::MAX_NAME_LEN {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels
        .iter()
        .any(|l| l.is_empty() || l.len() > crate::zone::MAX_LABEL_LEN)
    {
        return None;
    }
    Name::from_labels(labels.iter().map(|l| l.as_bytes())).ok()
}

/// Adds one zone record to a node.
fn compile_record(node: &mut Node, owner: &Name, record: &LabRecord) {
    let behaviour = match record {
        LabRecord::Timeout => Some(Behaviour::Timeout),
        LabRecord::ServFail => Some(Behaviour::ServFail),
        LabRecord::Refused => Some(Behaviour::Refused),
        _ => None,
    };
    if let Some(b) = behaviour {
        node.behaviour = node.behaviour.max(Some(b));
        return;
    }
    let Some(rdata) = rdata_of(record) else {
        return;
    };
    if let RData::CNAME(CNAME(target)) = &rdata
        && node.cname.is_none()
    {
        node.cname = Some(target.clone());
    }
    let mut record = Record::from_rdata(owner.clone(), TTL, rdata);
    record.dns_class = DNSClass::IN;
    node.records.push(record);
}

/// The hickory rdata of a zone record; `None` for a behaviour, an invalid target name, or a
/// CNAME or PTR to the root.
pub(crate) fn rdata_of(record: &LabRecord) -> Option<RData> {
    Some(match record {
        LabRecord::A(ip) => RData::A(A(*ip)),
        LabRecord::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        LabRecord::Mx(pref, host) => RData::MX(MX::new(*pref, to_name(host)?)),
        LabRecord::Cname(target) | LabRecord::Ptr(target) if target.is_empty() => return None,
        LabRecord::Cname(target) => RData::CNAME(CNAME(to_name(target)?)),
        LabRecord::Ptr(target) => RData::PTR(PTR(to_name(target)?)),
        LabRecord::Txt(strings) => RData::TXT(TXT::from_bytes(
            character_strings(strings).collect::<Vec<_>>(),
        )),
        LabRecord::Spf(strings) => {
            let mut wire = Vec::new();
            for s in character_strings(strings) {
                // character_strings yields at most 255 octets: the cast cannot truncate.
                wire.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
                wire.extend_from_slice(s);
            }
            RData::Unknown {
                code: RecordType::Unknown(99),
                rdata: NULL::with(wire),
            }
        }
        LabRecord::Tlsa {
            usage,
            selector,
            matching,
            data,
        } => RData::TLSA(TLSA::new(
            CertUsage::from(*usage),
            Selector::from(*selector),
            Matching::from(*matching),
            data.clone(),
        )),
        LabRecord::Timeout | LabRecord::ServFail | LabRecord::Refused => return None,
    })
}

/// The character-strings (RFC 1035 §3.3) of a TXT or SPF record: each string split into pieces
/// of at most 255 octets; no strings at all becomes one empty string.
fn character_strings(strings: &[String]) -> impl Iterator<Item = &[u8]> {
    let empty: &[u8] = &[];
    let none = strings.is_empty().then_some(empty);
    strings
        .iter()
        .flat_map(move |s| {
            let bytes = s.as_bytes();
            let pieces = if bytes.is_empty() {
                vec![empty]
            } else {
                bytes.chunks(255).collect()
            };
            pieces.into_iter()
        })
        .chain(none)
}

/// What to do with a question.
enum Outcome {
    /// Send nothing.
    Silence,
    /// Send this.
    Reply {
        rcode: ResponseCode,
        answers: Vec<Record>,
        authorities: Vec<Record>,
    },
}

impl Outcome {
    fn rcode(rcode: ResponseCode) -> Self {
        Outcome::Reply {
            rcode,
            answers: Vec::new(),
            authorities: Vec::new(),
        }
    }
}

/// The hickory request handler.
struct Handler {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.shared.queries.fetch_add(1, Ordering::Relaxed);

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = true;

        let outcome = if request.metadata.op_code != OpCode::Query {
            Outcome::rcode(ResponseCode::NotImp)
        } else {
            match request.queries.queries() {
                [query] => self.shared.zone().answer(query),
                _ => Outcome::rcode(ResponseCode::FormErr),
            }
        };
        let (rcode, answers, authorities) = match outcome {
            Outcome::Silence => {
                return ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                });
            }
            Outcome::Reply {
                rcode,
                answers,
                authorities,
            } => (rcode, answers, authorities),
        };
        metadata.response_code = rcode;

        // RFC 6891 §7: a responder that receives OPT must include OPT in its response. The
        // payload size it advertises also bounds the UDP response (hickory truncates to it).
        let edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns
        });
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            answers.iter(),
            authorities.iter(),
            iter::empty(),
            iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    /// RCODE, answers as text and the number of authority records; `None` for silence.
    type Expected<'a> = Option<(ResponseCode, Vec<&'a str>, usize)>;

    fn ask(zone: &Compiled, name: &str, qtype: RecordType) -> Outcome {
        let name = Name::from_ascii(name).expect("name");
        zone.answer(&LowerQuery::from(Query::query(name, qtype)))
    }

    fn summary(outcome: Outcome) -> Option<(ResponseCode, Vec<String>, usize)> {
        match outcome {
            Outcome::Silence => None,
            Outcome::Reply {
                rcode,
                answers,
                authorities,
            } => Some((
                rcode,
                answers
                    .iter()
                    .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
                    .collect(),
                authorities.len(),
            )),
        }
    }

    #[test]
    fn answering_rules() {
        let zone = Zone::parse(
            r#"
a.example A 192.0.2.1
www.a.example CNAME a.example
loop1.example CNAME loop2.example
loop2.example CNAME loop1.example
dangling.example CNAME nowhere.example
slowalias.example CNAME slow.example
slow.example TIMEOUT
slow.example A 192.0.2.9
bad.example SERVFAIL
bad.example REFUSED
no.example REFUSED
deep.x.y.example A 192.0.2.2
_25._tcp.a.example TLSA 3 1 1 00ff
"#,
        )
        .expect("zone");
        let zone = Compiled::new(&zone);
        let cases: Vec<(&str, RecordType, Expected<'_>)> = vec![
            (
                "_25._TCP.a.example.",
                RecordType::TLSA,
                Some((
                    ResponseCode::NoError,
                    vec!["_25._TCP.a.example. TLSA 3 1 1 00ff"],
                    0,
                )),
            ),
            (
                "A.Example.",
                RecordType::A,
                Some((ResponseCode::NoError, vec!["A.Example. A 192.0.2.1"], 0)),
            ),
            (
                "a.example.",
                RecordType::MX,
                Some((ResponseCode::NoError, vec![], 1)),
            ),
            (
                "www.a.example.",
                RecordType::A,
                Some((
                    ResponseCode::NoError,
                    vec!["www.a.example. CNAME a.example.", "a.example. A 192.0.2.1"],
                    0,
                )),
            ),
            (
                "www.a.example.",
                RecordType::CNAME,
                Some((
                    ResponseCode::NoError,
                    vec!["www.a.example. CNAME a.example."],
                    0,
                )),
            ),
            (
                "www.a.example.",
                RecordType::TXT,
                Some((
                    ResponseCode::NoError,
                    vec!["www.a.example. CNAME a.example."],
                    1,
                )),
            ),
            (
                "dangling.example.",
                RecordType::A,
                Some((
                    ResponseCode::NXDomain,
                    vec!["dangling.example. CNAME nowhere.example."],
                    1,
                )),
            ),
            (
                "loop1.example.",
                RecordType::A,
                Some((ResponseCode::ServFail, vec![], 0)),
            ),
            ("slowalias.example.", RecordType::TXT, None),
            ("slow.example.", RecordType::TXT, None),
            // A misbehaving name answers the types it has (the RFC 7208 suite's TIMEOUT).
            (
                "slow.example.",
                RecordType::A,
                Some((ResponseCode::NoError, vec!["slow.example. A 192.0.2.9"], 0)),
            ),
            (
                "bad.example.",
                RecordType::A,
                Some((ResponseCode::ServFail, vec![], 0)),
            ),
            (
                "no.example.",
                RecordType::TXT,
                Some((ResponseCode::Refused, vec![], 0)),
            ),
            (
                "x.y.example.",
                RecordType::A,
                Some((ResponseCode::NoError, vec![], 1)),
            ),
            (
                "y.example.",
                RecordType::A,
                Some((ResponseCode::NoError, vec![], 1)),
            ),
            (
                "example.",
                RecordType::A,
                Some((ResponseCode::NoError, vec![], 1)),
            ),
            (
                "z.example.",
                RecordType::A,
                Some((ResponseCode::NXDomain, vec![], 1)),
            ),
            (
                "deep.x.y.example.",
                RecordType::ANY,
                Some((
                    ResponseCode::NoError,
                    vec!["deep.x.y.example. A 192.0.2.2"],
                    0,
                )),
            ),
        ];
        for (name, qtype, expected) in cases {
            let expected = expected.map(|(rc, answers, auth)| {
                (
                    rc,
                    answers.into_iter().map(String::from).collect::<Vec<_>>(),
                    auth,
                )
            });
            assert_eq!(summary(ask(&zone, name, qtype)), expected, "{name} {qtype}");
        }
    }

    #[test]
    fn character_strings_split_at_255_octets() {
        let long = "é".repeat(200); // 400 octets
        let strings = vec![long.clone(), String::new(), "x".into()];
        let pieces: Vec<usize> = character_strings(&strings).map(<[u8]>::len).collect();
        assert_eq!(pieces, [255, 145, 0, 1]);
        let joined: Vec<u8> = character_strings(&strings).flatten().copied().collect();
        assert_eq!(joined, [long.as_bytes(), b"x"].concat());
        assert_eq!(character_strings(&[]).count(), 1);
    }

    #[tokio::test]
    async fn start_on_binds_the_given_loopback_address() {
        let zone = Zone::parse("a.example A 192.0.2.1").expect("zone");
        // Port 0: an ephemeral port on the address asked for.
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let dns = LabDns::start_on(any, zone.clone()).await.expect("lab");
        assert_eq!(dns.addr().ip(), any.ip());
        assert_ne!(dns.addr().port(), 0);
        // A fixed port: the one just freed, bound again for both TCP and UDP.
        let fixed = dns.addr();
        dns.shutdown().await;
        let dns = LabDns::start_on(fixed, zone.clone())
            .await
            .expect("lab on a fixed port");
        assert_eq!(dns.addr(), fixed);
        let q = crate::client::build_query(7, "a.example", RecordType::A, None).expect("query");
        let timeout = Duration::from_secs(2);
        let reply = crate::client::udp_exchange(fixed, &q, timeout)
            .await
            .expect("udp");
        assert_eq!(reply.answers.len(), 1);
        let reply = crate::client::tcp_exchange(fixed, &q, timeout)
            .await
            .expect("tcp");
        assert_eq!(reply.answers.len(), 1);
        assert_eq!(dns.query_count(), 2);
        // The port is taken now.
        assert!(matches!(
            LabDns::start_on(fixed, zone.clone()).await,
            Err(LabError::Bind(_))
        ));
        // Only loopback addresses.
        let public = SocketAddr::from(([192, 0, 2, 1], 5353));
        match LabDns::start_on(public, zone).await {
            Err(LabError::Bind(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
            other => panic!("{other:?}"),
        }
    }
}
