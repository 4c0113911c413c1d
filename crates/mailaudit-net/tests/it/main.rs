//! Integration tests of the I/O layer: the real resolver against a real DNS server
//! (`mailaudit-lab`, hickory-server) on 127.0.0.1 with an ephemeral port.

mod bulk;
mod checks;
mod dnssec;
mod guide;
mod imap;
mod mta_sts;
mod notify;
mod oauth;
mod oidc;
mod postfix;
mod resolver;
mod rfc7208;
mod smtp;

use std::time::Duration;

use mailaudit_lab::{LabDns, Zone};
use mailaudit_net::{Resolver, ResolverConfig};

/// Starts a lab server with `zone` and a resolver that sends every query to it.
pub(crate) async fn lab(zone: Zone) -> (LabDns, Resolver) {
    let server = LabDns::start(zone).await.expect("lab DNS server starts");
    let resolver = resolver_for(&server, Duration::from_millis(400));
    (server, resolver)
}

pub(crate) fn resolver_for(server: &LabDns, timeout: Duration) -> Resolver {
    Resolver::new(&ResolverConfig {
        nameservers: vec![server.addr()],
        timeout,
        attempts: 1,
        // The lab DNS is not signed (the DNSSEC tests use their own signed lab).
        dnssec: mailaudit_net::Dnssec::Off,
        ..ResolverConfig::default()
    })
    .expect("resolver builds")
}
