//! What an SPF proposal must authorise: the sender the domain's MX implies.
//!
//! An SPF record that ends in `-all` hard-fails every host it does not list, so a proposal
//! built for the wrong provider (the Microsoft 365 include for a Google Workspace domain, or for
//! a domain whose mail leaves through a filtering gateway) makes receivers reject the domain's
//! own mail. [`MailHost`] is read from the MX classification ([`crate::mx`]), and
//! [`for_missing`] is the one place that decides the record SPF-MISSING proposes, for the
//! audit's fix and for the guide alike.

use super::M365_INCLUDE;

/// Google Workspace's SPF include (Google Workspace Admin Help, "Define your SPF record").
pub const GOOGLE_INCLUDE: &str = "_spf.google.com";

/// Who receives (and, by default, sends) the domain's mail, from its MX.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MailHost {
    /// Not known (another service, an on-premises server, no MX).
    #[default]
    Unknown,
    /// Microsoft 365, with no third-party gateway in the MX set.
    M365,
    /// Google Workspace.
    Google,
    /// A third-party filtering gateway (the vendor of [`crate::mx::GATEWAYS`]): outbound mail
    /// usually leaves through it too, so neither Microsoft 365's include nor `-all` can be
    /// proposed blindly.
    Gateway(String),
}

impl MailHost {
    /// From the MX classification: a gateway first (whatever is behind it), then Microsoft 365,
    /// then Google Workspace.
    pub fn new(m365: bool, google: bool, gateway: Option<&str>) -> MailHost {
        match gateway {
            Some(v) => MailHost::Gateway(v.to_string()),
            None if m365 => MailHost::M365,
            None if google => MailHost::Google,
            None => MailHost::Unknown,
        }
    }

    /// The include this host's senders are authorised by, when one is documented.
    pub fn include(&self) -> Option<&'static str> {
        match self {
            MailHost::M365 => Some(M365_INCLUDE),
            MailHost::Google => Some(GOOGLE_INCLUDE),
            MailHost::Gateway(v) => gateway_include(v),
            MailHost::Unknown => None,
        }
    }
}

/// The SPF include a gateway vendor documents for its outbound relays, for the vendors of
/// [`crate::mx::GATEWAYS`] that publish one for every customer (Mimecast's global netblocks,
/// Barracuda Email Security Service, Hornetsecurity, Symantec Email Security.cloud, Trend Micro
/// Email Security). Vendors whose include is per customer or per region (Proofpoint, Cisco, …)
/// have none here: their customer portal gives it.
pub fn gateway_include(vendor: &str) -> Option<&'static str> {
    match vendor {
        "Mimecast" => Some("_netblocks.mimecast.com"),
        "Barracuda" => Some("spf.ess.barracudanetworks.com"),
        "Hornetsecurity" => Some("spf.hornetsecurity.com"),
        "Symantec" => Some("spf.messagelabs.com"),
        "Trend Micro" => Some("spf.tmes.trendmicro.com"),
        _ => None,
    }
}

/// What SPF-MISSING proposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpfProposal {
    /// The record to publish at the domain, when the MX says enough to write one.
    pub record: Option<String>,
    /// What to check or add before publishing it (or, without a record, what to do).
    pub note: String,
}

/// The record SPF-MISSING proposes for a domain whose mail is handled by `host`:
///
/// - Microsoft 365: `v=spf1 include:spf.protection.outlook.com -all`;
/// - Google Workspace: `v=spf1 include:_spf.google.com -all`;
/// - a gateway with a documented include: `v=spf1 include:<gateway's> ~all` (softfail: other
///   senders the gateway does not relay are not known yet);
/// - a gateway without one, or an unknown provider: no record, only what to list first.
pub fn for_missing(host: &MailHost, domain: &str) -> SpfProposal {
    let others = "add every other service that sends as the domain (newsletters, ticketing, \
                  invoicing) before the `all` term";
    match (host, host.include()) {
        (MailHost::Gateway(v), Some(inc)) => SpfProposal {
            record: Some(format!("v=spf1 include:{inc} ~all")),
            note: format!(
                "The MX is {v}, so mail is assumed to leave through it: the record authorises \
                 {v}'s outbound relays and ends in `~all` (softfail), not `-all`, until the \
                 DMARC aggregate reports show every sender passing; {others}, and add \
                 `include:{M365_INCLUDE}` only if Microsoft 365 also sends directly."
            ),
        },
        (MailHost::Gateway(v), None) => SpfProposal {
            record: None,
            note: format!(
                "The MX is {v}, so mail is assumed to leave through it: list {v}'s outbound \
                 relays (the SPF entry {v} gives for your account) and every other service that \
                 sends as {domain} first, then publish `v=spf1 <those> ~all`; harden to `-all` \
                 once the DMARC aggregate reports show them all passing."
            ),
        },
        (_, Some(inc)) => SpfProposal {
            record: Some(format!("v=spf1 include:{inc} -all")),
            note: format!("The record authorises {}; {others}.", host_label(host)),
        },
        (_, None) => SpfProposal {
            record: None,
            note: format!(
                "List every service that sends as {domain} (the mail server, `mx` if the MX \
                 hosts also send, each third-party sender's include) first, then publish \
                 `v=spf1 <those> ~all`; harden to `-all` once the DMARC aggregate reports show \
                 them all passing."
            ),
        },
    }
}

fn host_label(host: &MailHost) -> &str {
    match host {
        MailHost::M365 => "Microsoft 365",
        MailHost::Google => "Google Workspace",
        MailHost::Gateway(v) => v,
        MailHost::Unknown => "the mail service",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proposal_follows_the_mx() {
        let d = "example.com";
        let rec = |h: MailHost| for_missing(&h, d).record;
        assert_eq!(
            rec(MailHost::M365).as_deref(),
            Some("v=spf1 include:spf.protection.outlook.com -all")
        );
        assert_eq!(
            rec(MailHost::Google).as_deref(),
            Some("v=spf1 include:_spf.google.com -all")
        );
        assert_eq!(
            rec(MailHost::Gateway("Mimecast".into())).as_deref(),
            Some("v=spf1 include:_netblocks.mimecast.com ~all")
        );
        let pp = for_missing(&MailHost::Gateway("Proofpoint".into()), d);
        assert_eq!(pp.record, None);
        assert!(
            pp.note.contains("Proofpoint") && pp.note.contains("~all"),
            "{}",
            pp.note
        );
        assert_eq!(rec(MailHost::Unknown), None);
        // A gateway wins over what is behind it.
        assert_eq!(
            MailHost::new(true, false, Some("Mimecast")),
            MailHost::Gateway("Mimecast".into())
        );
        assert_eq!(MailHost::new(false, true, None), MailHost::Google);
    }
}
