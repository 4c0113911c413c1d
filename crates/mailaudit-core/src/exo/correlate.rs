//! The tenant configuration next to the DNS audit of its domains, and the difference between two
//! imports.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::{Area, CheckId};
use crate::guide::ReportView;

use super::eval::{antispoof_rules, mail_domains, spoofable_domains};
use super::*;

/// What the tenant export and the DNS audit say together (`correlate`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Correlation {
    /// Accepted domains (not `onmicrosoft.com`) missing from the inventory: to propose adding.
    pub missing_from_inventory: Vec<String>,
    /// `(domain, explanation)`: DKIM enabled in the tenant but its CNAMEs missing or different in
    /// DNS, or CNAMEs published while signing is disabled or not configured.
    pub dkim_mismatch: Vec<(String, String)>,
    /// `(domain, explanation)`: a RELAY-OPEN explained by `RejectDirectSend` and the connectors.
    pub relay_explained: Vec<(String, String)>,
    /// Custom accepted domains no enforcing anti-spoofing rule covers.
    pub antispoof_uncovered: Vec<String>,
    /// `(domain, selector1 CNAME, selector2 CNAME)`: the exact targets to publish, from
    /// `Get-DkimSigningConfig`.
    pub dkim_cnames: Vec<(String, String, String)>,
    /// `(domain, explanation)`: inbound SMTP DANE enabled in the tenant
    /// (`Get-SmtpDaneInboundStatus`) while the MX still points at the legacy
    /// `mail.protection.outlook.com` endpoint (MX-M365-LEGACY), or the MX on the `*.mx.microsoft`
    /// endpoint while DANE inbound is not enabled. A domain without an exported status, or whose
    /// MX is not known, has no entry.
    pub dane_mismatch: Vec<(String, String)>,
}

fn cname_eq(a: &str, b: &str) -> bool {
    norm_domain(a) == norm_domain(b)
}

/// Correlates a tenant's configuration with the DNS audit of its domains (`dns`: one report
/// per audited domain) and with the inventory's domain names.
pub fn correlate(
    t: &TenantConfig,
    dns: &[(String, ReportView)],
    inventory: &[String],
) -> Correlation {
    let mut c = Correlation::default();
    let domains = mail_domains(t);
    let inv: Vec<String> = inventory.iter().map(|d| norm_domain(d)).collect();
    for d in &domains {
        if !d.is_onmicrosoft() && !inv.contains(&d.domain_name) {
            c.missing_from_inventory.push(d.domain_name.clone());
        }
    }
    for d in &domains {
        if d.is_onmicrosoft() {
            continue;
        }
        if let Some(cfg) = t.dkim.iter().find(|k| k.domain == d.domain_name)
            && let (Some(s1), Some(s2)) = (&cfg.selector1_cname, &cfg.selector2_cname)
        {
            c.dkim_cnames
                .push((d.domain_name.clone(), s1.clone(), s2.clone()));
        }
    }
    let report = |name: &str| {
        dns.iter()
            .find(|(d, _)| norm_domain(d) == name)
            .map(|(_, r)| r)
    };
    // DKIM: tenant versus DNS.
    if t.has("dkim_config") {
        for d in domains.iter().filter(|d| !d.is_onmicrosoft()) {
            let Some(r) = report(&d.domain_name) else {
                continue;
            };
            if r.error.is_some() || r.is_withheld(Area::Dkim) {
                continue;
            }
            let published = |sel: &str| {
                r.dkim
                    .selectors
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(sel))
                    .and_then(|s| s.cname.clone())
            };
            let (p1, p2) = (published("selector1"), published("selector2"));
            let cfg = t.dkim.iter().find(|k| k.domain == d.domain_name);
            let enabled = cfg.is_some_and(|k| k.enabled == Some(true));
            let mut problems = Vec::new();
            if enabled {
                let cfg_sel = cfg.map(|k| (&k.selector1_cname, &k.selector2_cname));
                for (sel, published, expected) in [
                    ("selector1", &p1, cfg_sel.and_then(|s| s.0.as_deref())),
                    ("selector2", &p2, cfg_sel.and_then(|s| s.1.as_deref())),
                ] {
                    match (published, expected) {
                        (None, Some(e)) => problems.push(format!(
                            "{sel}._domainkey.{} has no CNAME (expected {e})",
                            d.domain_name
                        )),
                        (None, None) => problems
                            .push(format!("{sel}._domainkey.{} has no CNAME", d.domain_name)),
                        (Some(p), Some(e)) if !cname_eq(p, e) => problems.push(format!(
                            "{sel}._domainkey.{} points to {p}, the tenant expects {e}",
                            d.domain_name
                        )),
                        _ => {}
                    }
                }
                if !problems.is_empty() {
                    c.dkim_mismatch.push((
                        d.domain_name.clone(),
                        format!(
                            "DKIM signing is enabled in the tenant but {}",
                            problems.join("; ")
                        ),
                    ));
                }
            } else if p1.is_some() || p2.is_some() {
                let state = match cfg {
                    Some(_) => "signing is disabled in the tenant",
                    None => "the tenant has no DKIM signing config for it",
                };
                let published: Vec<String> = [("selector1", &p1), ("selector2", &p2)]
                    .iter()
                    .filter_map(|(s, p)| p.as_ref().map(|p| format!("{s} → {p}")))
                    .collect();
                let q = crate::powershell::quote(&d.domain_name);
                let fix = match cfg {
                    Some(_) => format!("Set-DkimSigningConfig -Identity {q} -Enabled $true"),
                    None => format!("New-DkimSigningConfig -DomainName {q} -Enabled $true"),
                };
                c.dkim_mismatch.push((
                    d.domain_name.clone(),
                    format!(
                        "selector CNAMEs are published ({}) but {state}: {fix}",
                        published.join(", "),
                    ),
                ));
            }
        }
    }
    // Inbound SMTP DANE: tenant versus MX.
    if t.has("smtp_dane_inbound") {
        for d in domains.iter().filter(|d| !d.is_onmicrosoft()) {
            let (Some(r), Some(enabled)) = (
                report(&d.domain_name),
                t.dane_inbound_of(&d.domain_name).and_then(|s| s.enabled),
            ) else {
                continue;
            };
            if let Some(why) = dane_mismatch(&d.domain_name, r, enabled, t) {
                c.dane_mismatch.push((d.domain_name.clone(), why));
            }
        }
    }
    // RELAY-OPEN explained.
    for (name, r) in dns {
        let name = norm_domain(name);
        if !(r.has(CheckId::RelayOpen) || r.relay.verdict == "open") {
            continue;
        }
        let mut why = Vec::new();
        if t.has("org_config") {
            match t.org.as_ref().and_then(|o| o.reject_direct_send) {
                Some(true) => why.push("RejectDirectSend is True in the export, yet the probe was accepted: the export may predate the audit, or the probe reached a different tenant or gateway".to_string()),
                Some(false) => why.push("RejectDirectSend is False: Direct Send is accepted (Set-OrganizationConfig -RejectDirectSend $true)".to_string()),
                None => why.push("RejectDirectSend is absent from the export, so Direct Send is accepted (Set-OrganizationConfig -RejectDirectSend $true)".to_string()),
            }
        }
        let open: Vec<String> = t
            .inbound_connectors
            .iter()
            .filter(|ic| ic.is_enabled() && ic.covers(&name) && !ic.locks_down())
            .map(|ic| ps_quote(&ic.name))
            .collect();
        if !open.is_empty() {
            why.push(format!(
                "enabled inbound connector(s) {} accept {name} without an IP or certificate restriction",
                open.join(", ")
            ));
        }
        let locked = t
            .inbound_connectors
            .iter()
            .any(|ic| ic.covers(&name) && ic.locks_down());
        if !locked && t.has("inbound_connectors") {
            why.push(format!(
                "no inbound connector locks {name} down to an IP address or certificate"
            ));
        }
        if !why.is_empty() {
            c.relay_explained.push((name, why.join("; ")));
        }
    }
    // Anti-spoofing coverage.
    if t.has("transport_rules") {
        let rules = antispoof_rules(t);
        for d in spoofable_domains(t) {
            let covered = rules
                .iter()
                .any(|(r, cov)| r.is_enabled() && r.is_enforced() && cov.iter().any(|x| x == d));
            if !covered {
                c.antispoof_uncovered.push(d.to_string());
            }
        }
    }
    c
}

/// What the tenant's inbound SMTP DANE state (`enabled`) and the domain's MX say together.
fn dane_mismatch(domain: &str, r: &ReportView, enabled: bool, t: &TenantConfig) -> Option<String> {
    // The MX must be known: an audit error or a failed MX look-up decides nothing.
    if r.error.is_some() || r.mx.is_empty() {
        return None;
    }
    let hosts = |pick: fn(&str) -> bool| -> Vec<String> {
        r.mx.iter()
            .map(|m| m.host.trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| pick(h))
            .collect()
    };
    let legacy = hosts(crate::mx::is_m365_legacy);
    let current = hosts(crate::mx::is_m365_dane_endpoint);
    let q = crate::powershell::quote(domain);
    if enabled && !legacy.is_empty() {
        let expected = t
            .dnssec_of(domain)
            .and_then(|s| s.expected_mx.as_deref())
            .map(|mx| format!(" (the tenant expects {mx})"))
            .unwrap_or_default();
        return Some(format!(
            "SMTP DANE inbound is enabled in the tenant but the MX still points at the legacy \
             endpoint {} (MX-M365-LEGACY): senders delivering there get no DANE; finish the MX \
             change to the DnssecMxValue{expected} and delete the legacy MX",
            legacy.join(", ")
        ));
    }
    if !enabled && !current.is_empty() {
        return Some(format!(
            "the MX points at {} (the DNSSEC-signed endpoint) but SMTP DANE inbound is not \
             enabled in the tenant: Enable-SmtpDaneInbound -DomainName {q}",
            current.join(", ")
        ));
    }
    None
}

fn by_name<T>(v: &[T], name: impl Fn(&T) -> &str) -> BTreeMap<String, &T> {
    v.iter()
        .map(|x| (name(x).to_ascii_lowercase(), x))
        .collect()
}

fn diff_named<T: PartialEq + Serialize>(
    what: &str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &str + Copy,
    out: &mut Vec<String>,
) {
    let (o, n) = (by_name(old, name), by_name(new, name));
    for (k, x) in &n {
        match o.get(k) {
            None => out.push(format!("{what} {} added", name(x))),
            Some(prev) if prev != x => {
                let changes = field_changes(*prev, *x);
                out.push(format!(
                    "{what} {} changed: {}",
                    name(x),
                    changes.join(", ")
                ));
            }
            _ => {}
        }
    }
    for (k, x) in &o {
        if !n.contains_key(k) {
            out.push(format!("{what} {} removed", name(x)));
        }
    }
}

/// The fields that differ, as `field: old → new` (through the serialised form).
fn field_changes<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return vec!["changed".into()];
    };
    b.iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, v)| {
            let before = a.get(k).map_or("null".to_string(), |x| x.to_string());
            format!("{k}: {before} → {v}")
        })
        .collect()
}

/// What changed between two imports of one tenant, one line per change: `RejectDirectSend`,
/// SMTP AUTH, accepted domains, connectors and transport rules added, removed or changed, DKIM
/// signing per domain, anti-phishing policies, outbound spam policies and remote domains.
pub fn diff(old: &TenantConfig, new: &TenantConfig) -> Vec<String> {
    let mut out = Vec::new();
    let rds = |t: &TenantConfig| t.org.as_ref().and_then(|o| o.reject_direct_send);
    if rds(old) != rds(new) {
        out.push(format!(
            "RejectDirectSend: {} → {}",
            fmt_opt(rds(old)),
            fmt_opt(rds(new))
        ));
    }
    let smtp = |t: &TenantConfig| {
        t.transport_config
            .as_ref()
            .and_then(|c| c.smtp_client_authentication_disabled)
    };
    if smtp(old) != smtp(new) {
        out.push(format!(
            "SmtpClientAuthenticationDisabled: {} → {}",
            fmt_opt(smtp(old)),
            fmt_opt(smtp(new))
        ));
    }
    diff_named(
        "accepted domain",
        &old.accepted_domains,
        &new.accepted_domains,
        |d| d.domain_name.as_str(),
        &mut out,
    );
    diff_named(
        "inbound connector",
        &old.inbound_connectors,
        &new.inbound_connectors,
        |c| c.name.as_str(),
        &mut out,
    );
    diff_named(
        "outbound connector",
        &old.outbound_connectors,
        &new.outbound_connectors,
        |c| c.name.as_str(),
        &mut out,
    );
    diff_named(
        "transport rule",
        &old.transport_rules,
        &new.transport_rules,
        |r| r.name.as_str(),
        &mut out,
    );
    // DKIM per accepted domain, as enabled / disabled / none.
    let dkim_state = |t: &TenantConfig, d: &str| -> &'static str {
        match t.dkim.iter().find(|k| k.domain == d) {
            Some(k) if k.enabled == Some(true) => "enabled",
            Some(_) => "disabled",
            None => "not configured",
        }
    };
    let mut names: Vec<String> = mail_domains(old)
        .iter()
        .chain(mail_domains(new).iter())
        .map(|d| d.domain_name.clone())
        .chain(
            old.dkim
                .iter()
                .chain(new.dkim.iter())
                .map(|k| k.domain.clone()),
        )
        .collect();
    names.sort();
    names.dedup();
    for d in names {
        let (a, b) = (dkim_state(old, &d), dkim_state(new, &d));
        if a != b {
            out.push(format!("DKIM signing for {d}: {a} → {b}"));
        }
    }
    diff_named(
        "anti-phishing policy",
        &old.anti_phish,
        &new.anti_phish,
        |p| p.name.as_str(),
        &mut out,
    );
    diff_named(
        "outbound spam policy",
        &old.outbound_spam,
        &new.outbound_spam,
        |p| p.name.as_str(),
        &mut out,
    );
    diff_named(
        "remote domain",
        &old.remote_domains,
        &new.remote_domains,
        |p| p.domain_name.as_str(),
        &mut out,
    );
    out
}

fn fmt_opt(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "True",
        Some(false) => "False",
        None => "absent",
    }
}
