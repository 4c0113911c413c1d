//! Exchange Online tenant configuration: the collection script, the tolerant importer of its
//! export, the EXO-* checks, the correlation with the DNS audit, and the difference between two
//! imports.
//!
//! Credentials stay with the MSP: [`script`] prints a read-only PowerShell 7 script that the
//! administrator runs; [`parse_bundle`] (or [`parse_export`], file by file) reads what it wrote
//! into a [`TenantConfig`]; [`evaluate`] turns that into [`Finding`](crate::Finding)s. One table,
//! [`CMDLETS`], drives both the script and the importer, so that they cannot drift apart.
//!
//! Decisions documented here (`docs/m365.md`, "Exchange Online configuration"):
//! - **Data not collected is no verdict.** A check runs only when the cmdlet it reads was exported
//!   (its key is in the bundle, or the file was imported); a cmdlet that failed is listed in
//!   [`TenantConfig::errors`]. A property absent from an exported object is `None`; only
//!   `RejectDirectSend` treats absence as "not true" (the property is newer than many exports).
//! - **DKIM** is checked for every accepted domain except the `*.mail.onmicrosoft.com` coexistence
//!   domains. A `*.onmicrosoft.com` domain is signed by Microsoft without any CNAME, so it is
//!   reported only when its signing config exists and is disabled.
//! - **Automatic forwarding** fires on an outbound spam policy with `AutoForwardingMode` `On`, as the
//!   catalogue says; the remote domain `*` (`AutoForwardEnabled`) is quoted in the detail, since
//!   `false` there still blocks forwarding to domains without their own remote-domain entry.
//! - **Anti-phishing policies in effect:** the default policy when not disabled; another policy when
//!   `Enabled` is not false and, if an anti-phish rule names it, that rule is enabled (preset
//!   policies have no anti-phish rule).

mod correlate;
mod eval;
mod parse;
mod script;

pub use correlate::{Correlation, correlate, diff};
pub use eval::{evaluate, evaluate_for};
// For the guide: the objects the EXO-* checks name, so that its steps name them too.
pub(crate) use eval::{
    antispoof_rules, impersonation_target, is_unrestricted, lacks_tls, policies_in_effect,
    spam_bypass_rules,
};
pub use parse::{key_for_file, parse_bundle, parse_export, parse_exports};
pub use script::{Auth, BUNDLE_VERSION, CMDLETS, Cmdlet, ScriptOptions, cmdlet_by_key, script};

use std::collections::BTreeMap;

use serde::Serialize;

/// Why an export could not be read at all. Anything less (a property of the wrong type, an
/// unknown enum value) is a [`ParseWarning`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExoError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The JSON is not a mailaudit bundle (not an object, or none of the bundle's keys).
    #[error("not a mailaudit bundle: {0}")]
    NotABundle(String),
    /// The bundle's `mailaudit_bundle` version is not one this version reads.
    #[error("unsupported bundle version {0} (this version reads 1)")]
    UnsupportedVersion(String),
    /// A per-cmdlet export under a key that is not in [`CMDLETS`].
    #[error("unknown export {0:?} (expected one of the keys of the collection script)")]
    UnknownKey(String),
}

/// Something in an export that was read leniently or skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParseWarning {
    /// The bundle key (`inbound_connectors`).
    pub key: String,
    /// The index of the object in that export, when it concerns one object.
    pub index: Option<usize>,
    /// The property concerned (may be empty).
    pub property: String,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        if !self.property.is_empty() {
            write!(f, ".{}", self.property)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One tenant's configuration as read from an export. Enum-valued properties are kept as their
/// names (`"Enforce"`); numeric enums from older exports are mapped to names when known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TenantConfig {
    /// The tenant (`contoso.onmicrosoft.com`), from the bundle or the organization config.
    pub organization: Option<String>,
    /// When the bundle was generated (ISO 8601, as written by the script).
    pub generated: Option<String>,
    /// The ExchangeOnlineManagement module version that produced it.
    pub module_version: Option<String>,
    /// The keys of [`CMDLETS`] that were exported (a check runs only on collected data).
    pub collected: Vec<String>,
    /// Cmdlets that failed while collecting: key → error message.
    pub errors: BTreeMap<String, String>,
    /// `Get-OrganizationConfig`.
    pub org: Option<OrgConfig>,
    /// `Get-AcceptedDomain`.
    pub accepted_domains: Vec<AcceptedDomain>,
    /// `Get-InboundConnector`.
    pub inbound_connectors: Vec<InboundConnector>,
    /// `Get-OutboundConnector`.
    pub outbound_connectors: Vec<OutboundConnector>,
    /// `Get-TransportRule`.
    pub transport_rules: Vec<TransportRule>,
    /// `Get-DkimSigningConfig`.
    pub dkim: Vec<DkimSigningConfig>,
    /// `Get-AntiPhishPolicy`.
    pub anti_phish: Vec<AntiPhishPolicy>,
    /// `Get-AntiPhishRule`.
    pub anti_phish_rules: Vec<AntiPhishRule>,
    /// `Get-TransportConfig`.
    pub transport_config: Option<TransportConfig>,
    /// `Get-HostedOutboundSpamFilterPolicy`.
    pub outbound_spam: Vec<OutboundSpamPolicy>,
    /// `Get-RemoteDomain`.
    pub remote_domains: Vec<RemoteDomain>,
    /// `Get-HostedConnectionFilterPolicy`.
    pub connection_filter: Vec<ConnectionFilterPolicy>,
    /// `Get-DnssecStatusForVerifiedDomain`, per accepted domain (a domain without an entry is
    /// unknown).
    pub dnssec_status: Vec<DnssecStatus>,
    /// `Get-SmtpDaneInboundStatus`, per accepted domain (a domain without an entry is unknown).
    pub smtp_dane_inbound: Vec<SmtpDaneInboundStatus>,
}

impl TenantConfig {
    /// Whether the export of `key` (a key of [`CMDLETS`]) was read.
    pub fn has(&self, key: &str) -> bool {
        self.collected.iter().any(|k| k == key)
    }

    /// Adds what `other` collected (file-by-file import): its lists are appended, its single
    /// objects and bundle metadata fill what is still empty.
    pub fn merge(&mut self, other: TenantConfig) {
        for k in other.collected {
            if !self.has(&k) {
                self.collected.push(k);
            }
        }
        self.errors.extend(other.errors);
        self.organization = self.organization.take().or(other.organization);
        self.generated = self.generated.take().or(other.generated);
        self.module_version = self.module_version.take().or(other.module_version);
        self.org = self.org.take().or(other.org);
        self.transport_config = self.transport_config.take().or(other.transport_config);
        self.accepted_domains.extend(other.accepted_domains);
        self.inbound_connectors.extend(other.inbound_connectors);
        self.outbound_connectors.extend(other.outbound_connectors);
        self.transport_rules.extend(other.transport_rules);
        self.dkim.extend(other.dkim);
        self.anti_phish.extend(other.anti_phish);
        self.anti_phish_rules.extend(other.anti_phish_rules);
        self.outbound_spam.extend(other.outbound_spam);
        self.remote_domains.extend(other.remote_domains);
        self.connection_filter.extend(other.connection_filter);
        self.dnssec_status.extend(other.dnssec_status);
        self.smtp_dane_inbound.extend(other.smtp_dane_inbound);
    }

    /// The `Get-DnssecStatusForVerifiedDomain` status of `domain`, if it was exported.
    pub fn dnssec_of(&self, domain: &str) -> Option<&DnssecStatus> {
        let d = norm_domain(domain);
        self.dnssec_status.iter().find(|s| s.domain == d)
    }

    /// The `Get-SmtpDaneInboundStatus` status of `domain`, if it was exported.
    pub fn dane_inbound_of(&self, domain: &str) -> Option<&SmtpDaneInboundStatus> {
        let d = norm_domain(domain);
        self.smtp_dane_inbound.iter().find(|s| s.domain == d)
    }
}

/// `Get-DnssecStatusForVerifiedDomain` for one accepted domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnssecStatus {
    /// The accepted domain (added by the collection script), lower case.
    pub domain: String,
    /// `DnssecFeatureStatus` (`Enabled`, `Disabled`, …), as exported.
    pub feature_status: Option<String>,
    /// The MX host the tenant expects (`ExpectedMxRecord`, a host name or an object with one),
    /// when the export shows a plain host name: read from the tenant, never constructed.
    pub expected_mx: Option<String>,
}

impl DnssecStatus {
    /// `Some(true)` when `DnssecFeatureStatus` is `Enabled`, `Some(false)` when `Disabled`,
    /// `None` when absent or another value.
    pub fn enabled(&self) -> Option<bool> {
        status_word(self.feature_status.as_deref())
    }
}

/// `Get-SmtpDaneInboundStatus` for one accepted domain. Microsoft does not document the output's
/// properties; `Status` (or `DaneStatus`) `Enabled`/`Disabled` and a boolean `Enabled` are read,
/// and anything else leaves the state unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SmtpDaneInboundStatus {
    /// The accepted domain (added by the collection script), lower case.
    pub domain: String,
    /// The status word as exported (`Status` or `DaneStatus`).
    pub status: Option<String>,
    /// Whether inbound SMTP DANE is enabled, when the export says so unambiguously.
    pub enabled: Option<bool>,
}

/// `Enabled` → true, `Disabled` → false (case-insensitive), else unknown.
fn status_word(s: Option<&str>) -> Option<bool> {
    match s?.trim().to_ascii_lowercase().as_str() {
        "enabled" | "true" => Some(true),
        "disabled" | "false" => Some(false),
        _ => None,
    }
}

/// `Get-OrganizationConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrgConfig {
    /// `Name`: the tenant's initial domain.
    pub name: Option<String>,
    /// `RejectDirectSend` (absent in exports older than September 2025).
    pub reject_direct_send: Option<bool>,
}

/// `Get-AcceptedDomain`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AcceptedDomain {
    /// `DomainName`, lower case.
    pub domain_name: String,
    /// `DomainType`: `Authoritative`, `InternalRelay` or `ExternalRelay`.
    pub domain_type: Option<String>,
    /// `Default`.
    pub default: bool,
    /// `InitialDomain`.
    pub initial_domain: bool,
    /// `IsCoexistenceDomain`.
    pub is_coexistence: bool,
}

impl AcceptedDomain {
    /// A `*.mail.onmicrosoft.com` coexistence domain (hybrid routing only; no DNS checks).
    pub fn is_coexistence_domain(&self) -> bool {
        self.is_coexistence || self.domain_name.ends_with(".mail.onmicrosoft.com")
    }

    /// A Microsoft-hosted `*.onmicrosoft.com` domain.
    pub fn is_onmicrosoft(&self) -> bool {
        self.domain_name.ends_with(".onmicrosoft.com")
    }
}

/// `Get-InboundConnector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InboundConnector {
    /// `Name`.
    pub name: String,
    /// `Enabled`.
    pub enabled: Option<bool>,
    /// `ConnectorType`: `Partner` or `OnPremises`.
    pub connector_type: Option<String>,
    /// `SenderDomains` with `smtp:` and `;1` removed, lower case (`*` = every domain).
    pub sender_domains: Vec<String>,
    /// `SenderIPAddresses`.
    pub sender_ip_addresses: Vec<String>,
    /// `RequireTls`.
    pub require_tls: Option<bool>,
    /// `RestrictDomainsToIPAddresses`.
    pub restrict_domains_to_ip_addresses: Option<bool>,
    /// `RestrictDomainsToCertificate`.
    pub restrict_domains_to_certificate: Option<bool>,
    /// `TlsSenderCertificateName`.
    pub tls_sender_certificate_name: Option<String>,
    /// `WhenChanged` (ISO 8601).
    pub when_changed: Option<String>,
}

impl InboundConnector {
    /// Whether the connector is enabled (absent counts as enabled: the default).
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }

    /// A partner connector (an absent or unknown type counts as partner, the stricter reading).
    pub fn is_partner(&self) -> bool {
        !self
            .connector_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("OnPremises"))
    }

    /// `docs/m365.md`: "A connector locks a sender domain down only if it is enabled and restricts by
    /// IP (non-empty list) or by certificate."
    pub fn locks_down(&self) -> bool {
        self.is_enabled() && (self.restricts_by_ip() || self.restricts_by_certificate())
    }

    /// `RestrictDomainsToIPAddresses` with a non-empty `SenderIPAddresses`.
    pub fn restricts_by_ip(&self) -> bool {
        self.restrict_domains_to_ip_addresses == Some(true) && !self.sender_ip_addresses.is_empty()
    }

    /// `RestrictDomainsToCertificate` with a `TlsSenderCertificateName`.
    pub fn restricts_by_certificate(&self) -> bool {
        self.restrict_domains_to_certificate == Some(true)
            && self
                .tls_sender_certificate_name
                .as_deref()
                .is_some_and(|c| !c.trim().is_empty())
    }

    /// Whether the connector accepts `domain` as a sender domain (directly, by `*` or `*.parent`).
    pub fn covers(&self, domain: &str) -> bool {
        self.sender_domains
            .iter()
            .any(|d| domain_matches(d, domain))
    }
}

/// `Get-OutboundConnector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboundConnector {
    /// `Name`.
    pub name: String,
    /// `Enabled`.
    pub enabled: Option<bool>,
    /// `ConnectorType`.
    pub connector_type: Option<String>,
    /// `RecipientDomains`.
    pub recipient_domains: Vec<String>,
    /// `SmartHosts`.
    pub smart_hosts: Vec<String>,
    /// `TlsSettings`.
    pub tls_settings: Option<String>,
}

/// `Get-TransportRule` (the properties the checks read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportRule {
    /// `Name`.
    pub name: String,
    /// `State`: `Enabled` or `Disabled`.
    pub state: Option<String>,
    /// `Mode`: `Enforce`, `Audit` or `AuditAndNotify`.
    pub mode: Option<String>,
    /// `Priority`.
    pub priority: Option<i64>,
    /// `FromScope`: `InOrganization` or `NotInOrganization`.
    pub from_scope: Option<String>,
    /// `SenderDomainIs`, lower case.
    pub sender_domain_is: Vec<String>,
    /// `SenderAddressLocation`: `Header`, `Envelope`, `HeaderOrEnvelope`.
    pub sender_address_location: Option<String>,
    /// `FromAddressContainsWords`.
    pub from_address_contains_words: Vec<String>,
    /// `FromAddressMatchesPatterns`.
    pub from_address_matches_patterns: Vec<String>,
    /// `HeaderMatchesMessageHeader` (`From` for a header-from condition).
    pub header_matches_message_header: Option<String>,
    /// `HeaderMatchesPatterns`.
    pub header_matches_patterns: Vec<String>,
    /// `HeaderContainsMessageHeader`.
    pub header_contains_message_header: Option<String>,
    /// `HeaderContainsWords`.
    pub header_contains_words: Vec<String>,
    /// `SenderIpRanges`.
    pub sender_ip_ranges: Vec<String>,
    /// `ExceptIfSenderIpRanges`.
    pub except_if_sender_ip_ranges: Vec<String>,
    /// `RejectMessageReasonText`.
    pub reject_message_reason_text: Option<String>,
    /// `RejectMessageEnhancedStatusCode`.
    pub reject_message_enhanced_status_code: Option<String>,
    /// `Quarantine`.
    pub quarantine: Option<bool>,
    /// `DeleteMessage`.
    pub delete_message: Option<bool>,
    /// `SetSCL` (`-1` = bypass spam filtering).
    pub set_scl: Option<i64>,
    /// `StopRuleProcessing`.
    pub stop_rule_processing: Option<bool>,
}

impl TransportRule {
    /// `State` is not `Disabled`.
    pub fn is_enabled(&self) -> bool {
        !self
            .state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Disabled"))
    }

    /// `Mode` is `Enforce` (absent counts as enforce, the cmdlet's default).
    pub fn is_enforced(&self) -> bool {
        self.mode
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case("Enforce"))
    }

    /// Applies to mail from outside the organization only.
    pub fn is_external_only(&self) -> bool {
        self.from_scope
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("NotInOrganization"))
    }

    /// Rejects, quarantines or deletes the message.
    pub fn blocks(&self) -> bool {
        let some = |s: &Option<String>| s.as_deref().is_some_and(|t| !t.trim().is_empty());
        some(&self.reject_message_reason_text)
            || some(&self.reject_message_enhanced_status_code)
            || self.quarantine == Some(true)
            || self.delete_message == Some(true)
    }

    /// The sender domains its conditions name, among `domains` (`SenderDomainIs`, the From
    /// address words or patterns, or a `From` header condition).
    pub fn sender_domains_among<'a>(&self, domains: &[&'a str]) -> Vec<&'a str> {
        let from_header = |h: &Option<String>| {
            h.as_deref()
                .is_some_and(|h| h.trim().eq_ignore_ascii_case("From"))
        };
        let mut texts: Vec<&str> = Vec::new();
        texts.extend(self.from_address_contains_words.iter().map(String::as_str));
        texts.extend(
            self.from_address_matches_patterns
                .iter()
                .map(String::as_str),
        );
        if from_header(&self.header_matches_message_header) {
            texts.extend(self.header_matches_patterns.iter().map(String::as_str));
        }
        if from_header(&self.header_contains_message_header) {
            texts.extend(self.header_contains_words.iter().map(String::as_str));
        }
        domains
            .iter()
            .copied()
            .filter(|d| {
                self.sender_domain_is.iter().any(|s| domain_matches(s, d))
                    || texts.iter().any(|t| mentions_domain(t, d))
            })
            .collect()
    }
}

/// `Get-DkimSigningConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DkimSigningConfig {
    /// `Domain`, lower case.
    pub domain: String,
    /// `Enabled`.
    pub enabled: Option<bool>,
    /// `Status` (`Valid`, `CnameMissing`, …).
    pub status: Option<String>,
    /// `Selector1CNAME`.
    pub selector1_cname: Option<String>,
    /// `Selector2CNAME`.
    pub selector2_cname: Option<String>,
    /// `Selector1KeySize`.
    pub selector1_key_size: Option<u32>,
    /// `Selector2KeySize`.
    pub selector2_key_size: Option<u32>,
}

/// `Get-AntiPhishPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AntiPhishPolicy {
    /// `Name`.
    pub name: String,
    /// `Enabled`.
    pub enabled: Option<bool>,
    /// `IsDefault`.
    pub is_default: bool,
    /// `EnableTargetedUserProtection`.
    pub enable_targeted_user_protection: Option<bool>,
    /// `TargetedUsersToProtect` (`"Name;address"`).
    pub targeted_users_to_protect: Vec<String>,
    /// `TargetedUserProtectionAction`.
    pub targeted_user_protection_action: Option<String>,
    /// `EnableOrganizationDomainsProtection`.
    pub enable_organization_domains_protection: Option<bool>,
    /// `EnableTargetedDomainsProtection`.
    pub enable_targeted_domains_protection: Option<bool>,
    /// `TargetedDomainProtectionAction`.
    pub targeted_domain_protection_action: Option<String>,
    /// `EnableMailboxIntelligence`.
    pub enable_mailbox_intelligence: Option<bool>,
    /// `EnableMailboxIntelligenceProtection`.
    pub enable_mailbox_intelligence_protection: Option<bool>,
    /// `MailboxIntelligenceProtectionAction`.
    pub mailbox_intelligence_protection_action: Option<String>,
    /// `EnableSpoofIntelligence`.
    pub enable_spoof_intelligence: Option<bool>,
    /// `HonorDmarcPolicy`.
    pub honor_dmarc_policy: Option<bool>,
    /// `PhishThresholdLevel` (1–4).
    pub phish_threshold_level: Option<i64>,
}

/// `Get-AntiPhishRule`: which policy applies to whom.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AntiPhishRule {
    /// `Name`.
    pub name: String,
    /// `AntiPhishPolicy`: the policy it applies.
    pub anti_phish_policy: Option<String>,
    /// `State`: `Enabled` or `Disabled`.
    pub state: Option<String>,
    /// `Priority`.
    pub priority: Option<i64>,
}

/// `Get-TransportConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportConfig {
    /// `SmtpClientAuthenticationDisabled`.
    pub smtp_client_authentication_disabled: Option<bool>,
}

/// `Get-HostedOutboundSpamFilterPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboundSpamPolicy {
    /// `Name`.
    pub name: String,
    /// `IsDefault`.
    pub is_default: bool,
    /// `AutoForwardingMode`: `Automatic`, `On` or `Off`.
    pub auto_forwarding_mode: Option<String>,
}

/// `Get-RemoteDomain`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemoteDomain {
    /// `Name`.
    pub name: String,
    /// `DomainName` (`*` for the default remote domain).
    pub domain_name: String,
    /// `AutoForwardEnabled`.
    pub auto_forward_enabled: Option<bool>,
}

/// `Get-HostedConnectionFilterPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionFilterPolicy {
    /// `Name`.
    pub name: String,
    /// `IPAllowList`.
    pub ip_allow_list: Vec<String>,
    /// `EnableSafeList`.
    pub enable_safe_list: Option<bool>,
}

/// Lower case without a trailing dot.
pub(crate) fn norm_domain(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a sender-domain entry (`contoso.com`, `*`, `*.contoso.com`) matches `domain`.
pub(crate) fn domain_matches(entry: &str, domain: &str) -> bool {
    let entry = norm_domain(entry);
    let domain = norm_domain(domain);
    if entry == "*" || entry == domain {
        return true;
    }
    match entry.strip_prefix("*.") {
        Some(parent) => domain.ends_with(&format!(".{parent}")),
        None => false,
    }
}

/// Whether free text (a word list entry or a pattern) names `domain`: `@contoso.com`,
/// `contoso\.com`, or the bare name bounded by non-name characters.
fn mentions_domain(text: &str, domain: &str) -> bool {
    let text = text.to_ascii_lowercase().replace("\\.", ".");
    let domain = norm_domain(domain);
    if domain.is_empty() {
        return false;
    }
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    let mut start = 0;
    while let Some(pos) = text.get(start..).and_then(|t| t.find(&domain)) {
        let at = start + pos;
        let before = text.get(..at).and_then(|t| t.chars().next_back());
        let after = text.get(at + domain.len()..).and_then(|t| t.chars().next());
        let ok_before = before.is_none_or(|c| !is_name(c));
        let ok_after = after.is_none_or(|c| !is_name(c));
        if ok_before && ok_after {
            return true;
        }
        start = at + domain.len().max(1);
    }
    false
}

/// The one PowerShell quoting function ([`crate::powershell::quote`]).
pub(crate) use crate::powershell::quote as ps_quote;

#[cfg(test)]
pub(crate) mod tests;
