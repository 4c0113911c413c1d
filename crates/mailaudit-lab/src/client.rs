//! A minimal raw DNS client, for tests and load generation against [`crate::LabDns`].
//!
//! It builds one query message with `hickory-proto`, sends it over UDP or TCP and decodes the
//! reply, with nothing in between: no retries, no cache, no CNAME following, no search list.
//! That makes it the right tool to observe exactly what the server sent (TC bit, RCODE, the
//! sections), unlike a full resolver. [`query`] adds the one thing a stub resolver must do:
//! retry over TCP when the UDP reply is truncated.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The EDNS payload size [`query`] advertises (the DNS Flag Day 2020 value).
pub const DEFAULT_EDNS_PAYLOAD: u16 = 1232;

/// How long [`query`] waits for each reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No reply within the time allowed.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The name cannot be put in a query.
    #[error("invalid query name {0:?}")]
    InvalidName(String),
    /// A socket error.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The reply (or the query) could not be encoded or decoded.
    #[error("malformed DNS message: {0}")]
    Malformed(String),
    /// The reply's ID is not the query's.
    #[error("reply ID {got} does not match query ID {expected}")]
    IdMismatch {
        /// The query's ID.
        expected: u16,
        /// The reply's ID.
        got: u16,
    },
}

/// Encodes a recursive (RD) query for `name` (trailing dot optional, case kept) and `rtype`,
/// with message ID `id` and, if `edns_payload` is given, an OPT record advertising that UDP
/// payload size (RFC 6891 §6.2.3; values below 512 count as 512).
pub fn build_query(
    id: u16,
    name: &str,
    rtype: RecordType,
    edns_payload: Option<u16>,
) -> Result<Vec<u8>, ClientError> {
    let fqdn = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&fqdn).map_err(|_| ClientError::InvalidName(name.to_owned()))?;
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(qname, rtype));
    if let Some(payload) = edns_payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        message.set_edns(edns);
    }
    message
        .to_vec()
        .map_err(|e| ClientError::Malformed(e.to_string()))
}

/// Sends `query` (an encoded message) over UDP from an ephemeral port and returns the first
/// reply whose ID matches.
pub async fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> Result<Message, ClientError> {
    let expected = message_id(query)?;
    let local: SocketAddr = if server.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65_535];
    let exchange = async {
        loop {
            let len = socket.recv(&mut buf).await?;
            let reply = decode(buf.get(..len).unwrap_or_default())?;
            if reply.metadata.id == expected {
                return Ok(reply);
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

/// Sends `query` over a new TCP connection (two-octet length prefix, RFC 1035 §4.2.2) and
/// returns the reply.
pub async fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> Result<Message, ClientError> {
    let expected = message_id(query)?;
    let len = u16::try_from(query.len())
        .map_err(|_| ClientError::Malformed("query longer than 65535 octets".into()))?;
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let reply_len = stream.read_u16().await?;
        let mut buf = vec![0u8; usize::from(reply_len)];
        stream.read_exact(&mut buf).await?;
        let reply = decode(&buf)?;
        if reply.metadata.id == expected {
            Ok(reply)
        } else {
            Err(ClientError::IdMismatch {
                expected,
                got: reply.metadata.id,
            })
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

/// Asks `server` about `name`/`rtype` like a stub resolver: over UDP with EDNS
/// ([`DEFAULT_EDNS_PAYLOAD`]), again over TCP if the reply has TC set, waiting
/// [`DEFAULT_TIMEOUT`] for each reply.
pub async fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> Result<Message, ClientError> {
    let id = next_id();
    let bytes = build_query(id, name, rtype, Some(DEFAULT_EDNS_PAYLOAD))?;
    let reply = udp_exchange(server, &bytes, DEFAULT_TIMEOUT).await?;
    if reply.metadata.truncation {
        tcp_exchange(server, &bytes, DEFAULT_TIMEOUT).await
    } else {
        Ok(reply)
    }
}

/// A message ID that varies from call to call (uniqueness is all a test client needs).
fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x4c41);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn message_id(query: &[u8]) -> Result<u16, ClientError> {
    match query {
        [hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(ClientError::Malformed("query shorter than a header".into())),
    }
}

fn decode(bytes: &[u8]) -> Result<Message, ClientError> {
    Message::from_vec(bytes).map_err(|e| ClientError::Malformed(e.to_string()))
}
