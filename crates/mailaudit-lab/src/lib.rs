//! Lab infrastructure on loopback, for tests, benchmarks and the built-in demo: an in-process
//! DNS server ([`LabDns`]), private Postfix instances posing as Microsoft 365 endpoints
//! ([`postfix`]) and private Dovecot IMAP servers ([`dovecot`]).
//!
//! [`LabDns`] answers UDP and TCP queries on one ephemeral port of 127.0.0.1 from a [`Zone`]
//! held in memory. It behaves like an authoritative server that is also the recursive resolver
//! for every name: it sets AA and RA, follows CNAMEs inside its data, distinguishes NXDOMAIN
//! from NODATA, truncates oversized UDP answers so that clients retry over TCP, and can be told
//! to misbehave for a name (never answer, SERVFAIL, REFUSED). The zone can be swapped while the
//! server runs, so one server can serve one test scenario after another, and it counts the
//! queries it receives, so that tests can prove a client's cache works.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailaudit_lab::LabError> {
//! use mailaudit_lab::{LabDns, Zone};
//!
//! let zone = Zone::parse(r#"
//!     contoso.example        MX  0 contoso-example.mail.protection.outlook.com
//!     contoso.example        TXT "v=spf1 include:spf.protection.outlook.com -all"
//!     _dmarc.contoso.example SERVFAIL
//! "#)?;
//! let dns = LabDns::start(zone).await?;
//! // point a resolver at dns.addr() (UDP and TCP) ...
//! # Ok(()) }
//! ```
//!
//! [`sample_fleet`] is the built-in fleet of fictional customer domains that
//! `mailaudit audit --sample` audits (`testdata/zones/sample-fleet.zone`, embedded in the
//! binary). [`demo`] holds the rest of `mailaudit demo`'s sample data: the fleet's customers
//! and inventory ([`SAMPLE_CUSTOMERS`], [`SAMPLE_INVENTORY`]) and the synthetic DMARC aggregate
//! and SMTP TLS reports it stores ([`sample_reports`], plain XML and JSON documents). [`client`]
//! is a minimal raw DNS client for tests and load generation.
//!
//! [`LabSmtp`] ([`smtp`]) is a scripted SMTP server posing as Microsoft 365 inbound endpoints:
//! one port on many loopback addresses (every MX address of the sample fleet, for the demo:
//! [`sample_fleet_smtp`]), STARTTLS with a certificate from a lab CA made at start, and
//! Direct Send open or blocked per endpoint. It needs no system package.
//!
//! [`postfix::PostfixLab`] writes and starts a private Postfix instance in a temporary
//! directory with one `smtpd` per endpoint on 127.0.0.1 (open, Direct Send blocked with
//! `550 5.7.68`, unknown recipient with `550 5.4.1`; STARTTLS with the certificates a test
//! gives), reads back what the server saw (commands per session, rejects, discarded messages),
//! and stops and removes it on drop.
//!
//! [`dovecot::DovecotLab`] does the same with a private Dovecot IMAP server holding one user's
//! Maildir (plain IMAP, STARTTLS and IMAPS with the certificates a test gives), for the
//! `reports fetch` tests: it delivers messages, drops connections, restarts on the same ports
//! and gives a mailbox a new UIDVALIDITY. With an OAuth 2.0 password database it takes bearer
//! tokens (`XOAUTH2`, `OAUTHBEARER`) that it checks with [`oauth::LabOAuth`], a tiny
//! authorization server (client credentials token endpoint over HTTPS, introspection over HTTP).
//!
//! [`SignedDns`] ([`dnssec`]) is a DNSSEC-signing authoritative DNS server for the DNSSEC and
//! DANE tests: a signed lab root with the lab's zones below it, each signed, unsigned, with
//! expired signatures or with a DS that does not match its key, and the root key as the trust
//! anchor of a validating resolver.
//!
//! The DNS server is built on `hickory-server`'s `Server` with a custom `RequestHandler`;
//! nothing here reaches the network beyond loopback.

#![warn(missing_docs)]

pub mod client;
pub mod demo;
pub mod dnssec;
pub mod dovecot;
mod fleet;
mod instance;
pub mod oauth;
pub mod oidc;
pub mod postfix;
pub mod postgres;
mod server;
pub mod smtp;
pub mod zone;

pub use demo::{
    SAMPLE_CUSTOMERS, SAMPLE_INVENTORY, SampleCustomer, SampleDomain, SampleReport, sample_reports,
};
pub use dnssec::{Mode as DnssecMode, SignedDns, SignedZone};
pub use fleet::{
    SAMPLE_FLEET_ZONE, SAMPLE_GATEWAY_REPLY, SAMPLE_GATEWAY_TENANTS, sample_fleet,
    sample_fleet_smtp, sample_relay_behaviour,
};
pub use instance::{PortLease, lease_ports, or_skip};
pub use server::{LabDns, MAX_CNAME_HOPS, MAX_UDP_PAYLOAD, TTL};
pub use smtp::LabSmtp;
pub use zone::{LabRecord, NameError, ParseError, Zone, reverse_name};

/// Why the lab could not load a zone or start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A line of zone text is malformed.
    #[error("zone line {line}: {error}")]
    Parse {
        /// The line number, counting from 1.
        line: usize,
        /// What is wrong with it.
        error: ParseError,
    },
    /// A name in a [`Zone`] built with [`Zone::add`] is not a valid DNS name.
    #[error("invalid name {name:?} in zone: {reason}")]
    InvalidName {
        /// The offending owner or target name.
        name: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// The loopback sockets could not be bound.
    #[error("cannot bind the lab DNS server on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The lab SMTP server could not bind one of its addresses.
    #[error("cannot bind the lab SMTP server on {addr}: {source}")]
    SmtpBind {
        /// The address (and port) that could not be bound.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The lab SMTP server's endpoints are not usable (no address, an address that is not
    /// loopback or is given twice, a host name that cannot be certified).
    #[error("lab SMTP server: {0}")]
    SmtpConfig(String),
    /// The lab CA, the endpoints' certificate or the TLS configuration could not be made.
    #[error("lab SMTP server TLS: {0}")]
    Tls(String),
    /// The zones of the DNSSEC-signing server ([`SignedDns`]) are not usable, or could not be
    /// signed.
    #[error("lab DNSSEC server: {0}")]
    Dnssec(String),
}
