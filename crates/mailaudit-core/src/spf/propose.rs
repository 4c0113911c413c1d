//! What an SPF proposal must authorise: the sender the domain's MX implies.
//!
//! An SPF record that ends in `-all` hard-fails every host it does not list, so a proposal
//! built for the wrong provider (the Microsoft 365 include for a Google Workspace domain, or for
//! a domain whose mail leaves through a filtering gateway) makes receivers reject the domain's
//! own mail. [`MailHost`] is read from the MX classification ([`crate::mx`]), and
//! [`for_missing`] is the one place that decides the record SPF-MISSING proposes, for the
//! audit's fix and for the guide alike.

use std::collections::HashMap;
use std::net::IpAddr;

use std::collections::HashSet;

use super::{M365_INCLUDE, Mechanism, Qualifier, Term};
use crate::guide::SpfNodeView;
use crate::reports::analysis::Row;

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

/// A sending address the domain's DMARC aggregate reports show passing SPF, aligned
/// (`<policy_evaluated><spf>pass`): mail from it is authorised by the published record today,
/// so a record the guide proposes in its place must keep authorising it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportedSender {
    /// The source address.
    pub ip: IpAddr,
    /// Messages from it that passed SPF aligned over the period read.
    pub messages: u64,
}

/// The addresses of `rows` (one domain's aggregate report rows) with aligned SPF passes, by
/// volume (largest first), then address.
pub fn passing_senders(rows: &[Row]) -> Vec<ReportedSender> {
    let mut by_ip: HashMap<IpAddr, u64> = HashMap::new();
    for r in rows.iter().filter(|r| r.spf_aligned && r.count > 0) {
        *by_ip.entry(r.source_ip).or_default() += r.count;
    }
    let mut out: Vec<ReportedSender> = by_ip
        .into_iter()
        .map(|(ip, messages)| ReportedSender { ip, messages })
        .collect();
    out.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.ip.cmp(&b.ip)));
    out
}

/// At most this many addresses are added to one proposal: beyond it the record grows past
/// what fits in one TXT string and the senders deserve an include of their own.
pub const MAX_KEPT: usize = 10;

/// What [`keep_senders`] did to a proposal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// The record to publish: the proposal, plus `ip4:`/`ip6:` terms for the reported senders
    /// it does not certainly authorise, ending in `~all` instead of `-all` when some could not
    /// be added.
    pub record: String,
    /// The senders added as `ip4:`/`ip6:` terms.
    pub added: Vec<ReportedSender>,
    /// Senders not added (over [`MAX_KEPT`]): the record then ends in `~all`, never `-all`.
    pub left_out: Vec<ReportedSender>,
}

/// Makes `proposal` keep authorising every sender of `senders` (see [`passing_senders`]).
///
/// A sender is certainly authorised when the proposal lists it in a pass-qualified `ip4`/`ip6`
/// term, or in one of a kept `include:`/`redirect=` target's (read from `tree`, the audit's
/// include tree of the published record). Anything else (`a`, `mx`, an include the tree does
/// not show) cannot be expanded without DNS, so the address is added explicitly: an address
/// listed twice costs nothing, one forgotten hard-fails real mail. Up to [`MAX_KEPT`] addresses
/// are added, largest volume first; when more pass, the rest are named and the record keeps
/// `~all`.
pub fn keep_senders(
    proposal: &str,
    tree: Option<&SpfNodeView>,
    senders: &[ReportedSender],
) -> Kept {
    let mut kept = Kept {
        record: proposal.to_string(),
        ..Kept::default()
    };
    let Ok(record) = super::parse(proposal) else {
        return kept;
    };
    let mut ranges: Vec<(IpAddr, u8)> = Vec::new();
    for d in record.directives() {
        if d.qualifier != Qualifier::Pass {
            continue;
        }
        match &d.mechanism {
            Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. } => ranges.extend(range_of(d)),
            Mechanism::Include(spec) => {
                if let (Some(target), Some(tree)) = (spec.literal(), tree) {
                    tree_ranges(tree, &target, &mut ranges);
                }
            }
            _ => {}
        }
    }
    if let (Some(target), Some(tree)) = (record.redirect().and_then(|r| r.literal()), tree) {
        tree_ranges(tree, &target, &mut ranges);
    }
    let missing: Vec<&ReportedSender> = senders
        .iter()
        .filter(|s| !ranges.iter().any(|(net, len)| in_range(s.ip, *net, *len)))
        .collect();
    if missing.is_empty() {
        return kept;
    }
    let (add, rest) = missing.split_at(missing.len().min(MAX_KEPT));
    kept.added = add.iter().map(|s| (*s).clone()).collect();
    kept.left_out = rest.iter().map(|s| (*s).clone()).collect();
    let mut terms: Vec<String> = add
        .iter()
        .map(|s| match s.ip {
            IpAddr::V4(a) => format!("ip4:{a}"),
            IpAddr::V6(a) => format!("ip6:{a}"),
        })
        .collect();
    let mut tokens: Vec<String> = proposal.split_whitespace().map(str::to_string).collect();
    let is_all = |t: &str| {
        let t = t.trim_start_matches(['+', '-', '~', '?']);
        t.eq_ignore_ascii_case("all")
    };
    // After `v=spf1`, before `all` or the first modifier.
    let at = tokens
        .iter()
        .skip(1)
        .position(|t| is_all(t) || t.contains('='))
        .map_or(tokens.len(), |i| i + 1);
    if !kept.left_out.is_empty()
        && let Some(all) = tokens.iter_mut().find(|t| is_all(t))
        && all.starts_with('-')
    {
        *all = "~all".into();
    }
    for (i, t) in terms.drain(..).enumerate() {
        tokens.insert(at + i, t);
    }
    kept.record = tokens.join(" ");
    kept
}

/// The pass-qualified `ip4`/`ip6` ranges of the first node of `tree` whose `domain` is
/// `target` (case-insensitive), its own record's and its includes' ([`flatten`]).
fn tree_ranges(tree: &SpfNodeView, target: &str, out: &mut Vec<(IpAddr, u8)>) {
    let target = target.trim_end_matches('.');
    let mut stack = vec![tree];
    while let Some(n) = stack.pop() {
        let name = n.domain.as_deref().unwrap_or("");
        if name.trim_end_matches('.').eq_ignore_ascii_case(target) {
            out.extend(flatten(n).0.iter().filter_map(|t| match t {
                Term::Directive(d) => range_of(d),
                Term::Modifier(_) => None,
            }));
            return;
        }
        stack.extend(n.children.iter());
    }
}

/// The network of a pass-qualified `ip4`/`ip6` directive.
fn range_of(d: &super::Directive) -> Option<(IpAddr, u8)> {
    match (&d.mechanism, d.qualifier) {
        (Mechanism::Ip4 { addr, prefix }, Qualifier::Pass) => {
            Some(((*addr).into(), prefix.unwrap_or(32)))
        }
        (Mechanism::Ip6 { addr, prefix }, Qualifier::Pass) => {
            Some(((*addr).into(), prefix.unwrap_or(128)))
        }
        _ => None,
    }
}

/// The pass-qualified `ip4`/`ip6` terms of a subtree (what an include of it matches, when the
/// subtree has nothing else that could match), and what makes the flattening inexact.
pub fn flatten(node: &SpfNodeView) -> (Vec<Term>, Vec<String>) {
    let mut terms = Vec::new();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(node, 0usize)];
    while let Some((n, depth)) = stack.pop() {
        let name = n.domain.as_deref().unwrap_or("?");
        if depth > 10 {
            problems.push(format!("{name} nests too deep"));
            continue;
        }
        if let Some(e) = &n.error {
            problems.push(format!("{name}: {e}"));
        }
        match n.record.as_deref().map(super::parse) {
            Some(Ok(rec)) => {
                for d in rec.directives() {
                    match (&d.mechanism, d.qualifier) {
                        (Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. }, Qualifier::Pass) => {
                            let t = Term::Directive(super::Directive {
                                qualifier: Qualifier::Pass,
                                mechanism: d.mechanism.clone(),
                            });
                            if seen.insert(d.to_string().to_ascii_lowercase()) {
                                terms.push(t);
                            }
                        }
                        (Mechanism::All, Qualifier::Pass) => {
                            problems.push(format!("{name} passes every sender (`{d}`)"));
                        }
                        (Mechanism::Include(_) | Mechanism::All, _) => {}
                        (m, _) if m.queries_dns() => {
                            problems.push(format!("{name} uses `{}`", d));
                        }
                        _ => problems.push(format!("{name} has `{}`", d)),
                    }
                }
            }
            Some(Err(_)) => problems.push(format!("{name}: record does not parse")),
            None => problems.push(format!("{name}: no record")),
        }
        for c in n.children.iter().rev() {
            stack.push((c, depth + 1));
        }
    }
    (terms, problems)
}

/// Whether `ip` is in `net/len` (of the same family).
fn in_range(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
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

    fn sender(ip: &str, messages: u64) -> ReportedSender {
        ReportedSender {
            ip: ip.parse().unwrap(),
            messages,
        }
    }

    #[test]
    fn passing_senders_are_the_aligned_spf_passes_by_volume() {
        let row = |ip: &str, count: u64, spf: bool| Row {
            begin: 0,
            source_ip: ip.parse().unwrap(),
            ptr: None,
            count,
            disposition: "none".into(),
            dkim_aligned: !spf,
            spf_aligned: spf,
            header_from: "example.com".into(),
            dkim_domains: Vec::new(),
            spf_domains: Vec::new(),
            dkim_pass: !spf,
            spf_pass: spf,
        };
        let rows = [
            row("198.51.100.7", 5, true),
            row("203.0.113.9", 40, true),
            row("198.51.100.7", 10, true),
            // DKIM only (a forwarder looks the same): not an SPF sender.
            row("192.0.2.99", 500, false),
        ];
        assert_eq!(
            passing_senders(&rows),
            vec![sender("203.0.113.9", 40), sender("198.51.100.7", 15)]
        );
    }

    #[test]
    fn a_proposal_keeps_the_reported_senders_it_does_not_cover() {
        let tree: SpfNodeView = serde_json::from_value(serde_json::json!({
            "domain": "example.com",
            "record": "v=spf1 include:spf.crm.example ip4:198.51.100.0/24 ~all",
            "children": [{
                "domain": "spf.crm.example",
                "record": "v=spf1 ip4:203.0.113.0/26 ip6:2001:db8::/32 -all",
                "children": []
            }]
        }))
        .unwrap();
        let senders = [
            sender("203.0.113.9", 40),  // in the CRM's include
            sender("198.51.100.7", 15), // in the domain's own range
            sender("2001:db8::25", 3),  // in the CRM's include (IPv6)
            sender("192.0.2.50", 7),    // nowhere: the record no longer lists it
        ];
        // The flattening dropped the domain's own range: 198.51.100.7 and 192.0.2.50 are added
        // before `-all`, the modifier stays last.
        let kept = keep_senders(
            "v=spf1 include:spf.crm.example -all exp=explain.example.com",
            Some(&tree),
            &senders,
        );
        assert_eq!(
            kept.record,
            "v=spf1 include:spf.crm.example ip4:198.51.100.7 ip4:192.0.2.50 -all exp=explain.example.com"
        );
        assert_eq!(kept.added.len(), 2);
        assert!(kept.left_out.is_empty());
        // Without the tree the include cannot be expanded: its senders are added too.
        let kept = keep_senders("v=spf1 include:spf.crm.example -all", None, &senders[..1]);
        assert_eq!(
            kept.record,
            "v=spf1 include:spf.crm.example ip4:203.0.113.9 -all"
        );
        // A proposal that covers them all is unchanged.
        let kept = keep_senders(
            "v=spf1 include:spf.crm.example ip4:198.51.100.0/24 ip4:192.0.2.0/24 -all",
            Some(&tree),
            &senders,
        );
        assert!(kept.added.is_empty());
        assert_eq!(
            kept.record,
            "v=spf1 include:spf.crm.example ip4:198.51.100.0/24 ip4:192.0.2.0/24 -all"
        );
    }

    #[test]
    fn more_senders_than_can_be_added_keep_softfail() {
        let senders: Vec<ReportedSender> = (1..=MAX_KEPT as u8 + 2)
            .map(|i| sender(&format!("192.0.2.{i}"), 100 - u64::from(i)))
            .collect();
        let kept = keep_senders("v=spf1 include:_spf.google.com -all", None, &senders);
        assert_eq!(kept.added.len(), MAX_KEPT);
        assert_eq!(kept.left_out.len(), 2);
        assert!(kept.record.ends_with(" ~all"), "{}", kept.record);
        assert!(kept.record.contains("ip4:192.0.2.1 "), "{}", kept.record);
        assert!(!kept.record.contains("ip4:192.0.2.12"), "{}", kept.record);
        assert!(super::super::parse(&kept.record).is_ok());
    }
}
