//! The I/O layer of mailaudit: DNS through hickory-resolver with one cache shared by every domain
//! of a run, and the bulk audit driver that runs the pure core's checks over thousands of domains
//! with bounded concurrency, yielding results in input order.
//!
//! SMTP probes and the MTA-STS HTTPS fetch will live here too: everything that touches a socket.
#![warn(missing_docs)]

pub mod bulk;
pub mod dns;
pub mod https;
pub mod smtp;

pub use bulk::{BulkOptions, audit_stream};
pub use dns::{Resolver, ResolverConfig, ResolverStats};

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
    /// A `--ca-file` that cannot be read or holds no usable CA certificate.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The path given.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
}
