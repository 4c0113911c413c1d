//! The I/O layer of mailaudit, everything that touches a socket: DNS through hickory-resolver
//! with one cache shared by every domain of a run ([`dns`]); the SMTP probe for the Direct Send
//! relay test and STARTTLS/TLS ([`smtp`]); the MTA-STS policy fetch over HTTPS ([`https`]);
//! regression alerts by webhook and email ([`notify`]); what those clients share to reach a
//! server, with one error type ([`transport`]), and their HTTP/1.1 client (hyper); the
//! IMAP client of `reports fetch` ([`imap`]) and its OAuth 2.0 tokens ([`oauth2`]); the
//! checks beyond DNS applied to a domain's report ([`live`]); and the bulk driver that runs it
//! all over thousands of domains with bounded concurrency, yielding results in input order
//! ([`bulk`]). The decisions (verdicts, findings) are the pure core's.
#![warn(missing_docs)]

pub mod bulk;
pub mod dns;
pub(crate) mod http;
pub mod https;
pub mod imap;
pub mod live;
pub mod notify;
pub mod oauth2;
pub mod oidc;
pub mod smtp;
pub mod transport;

pub use bulk::{BulkOptions, audit_stream};
pub use dns::{Dnssec, Resolver, ResolverConfig, ResolverStats};

/// Errors of the I/O layer's own API (audit outcomes are findings, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The resolver could not be built (bad system configuration, no name server).
    #[error("cannot set up the DNS resolver: {0}")]
    ResolverSetup(String),
    /// A `--nameserver` value that is not `ADDR` or `ADDR:PORT`.
    #[error(
        "invalid name server {0:?}: expected an IP address, optionally with :PORT ([v6]:PORT for IPv6)"
    )]
    InvalidNameserver(String),
    /// A `--trust-anchor` file that cannot be read or holds no DNSKEY or DS record.
    #[error("cannot use the DNSSEC trust anchor {path}: {reason}")]
    TrustAnchor {
        /// The path given.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A `--ca-file` that cannot be read or holds no usable CA certificate.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The path given.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Single sign-on: a setting that cannot be used, or the provider could not be reached
    /// or answered something unusable.
    #[error("single sign-on: {0}")]
    Oidc(String),
    /// An ID token that fails validation (signature, issuer, audience, expiry, nonce).
    #[error("single sign-on: the ID token is refused: {0}")]
    IdToken(String),
    /// An ID token signed by a key the JWKS does not hold (by `kid`).
    #[error("single sign-on: the ID token is signed by an unknown key {0:?}")]
    UnknownKey(String),
}
