//! The check catalogue: the stable identifiers of every finding (`CHECKS.md`), each documented once.
//!
//! The documentation here (what, why, how to fix in Microsoft 365, references) is the single
//! source for `mailaudit checks`, the remediation guide, the portal and the generated
//! `docs/checks.md`. Identifiers never change meaning once released.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The remediation area a check belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// DMARC policy and reporting.
    Dmarc,
    /// SPF (and parked-domain lock-down).
    Spf,
    /// DKIM signing.
    Dkim,
    /// Inbound connectors and relay hardening (Direct Send).
    Connectors,
    /// Anti-spoofing transport rules.
    Antispoof,
    /// Impersonation protection.
    Impersonation,
    /// Mail transport: MX, TLS, MTA-STS, TLS-RPT.
    Transport,
}

impl Area {
    /// The lower-case name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Dmarc => "dmarc",
            Area::Spf => "spf",
            Area::Dkim => "dkim",
            Area::Connectors => "connectors",
            Area::Antispoof => "antispoof",
            Area::Impersonation => "impersonation",
            Area::Transport => "transport",
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a finding is, following the remediation priorities. Ordered: `Info < Low < ... < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Context, never counted against a score.
    Info,
    /// Worth doing.
    Low,
    /// This month.
    Medium,
    /// This week.
    High,
    /// Now.
    Critical,
}

impl Severity {
    /// The lower-case name used in JSON, CSV and `--fail-on`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// All severities, most urgent first.
    pub const ALL: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = crate::CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| crate::CoreError::UnknownSeverity(s.to_string()))
    }
}

/// The stable identifier of a check (`CHECKS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CheckId {
    /// `DMARC-MISSING`: No DMARC policy applies to the domain.
    DmarcMissing,
    /// `DMARC-MULTIPLE`: More than one DMARC record at one name.
    DmarcMultiple,
    /// `DMARC-SYNTAX`: The DMARC record is not valid.
    DmarcSyntax,
    /// `DMARC-POLICY-NONE`: DMARC policy is p=none (monitor only).
    DmarcPolicyNone,
    /// `DMARC-POLICY-QUARANTINE`: DMARC policy is p=quarantine, not yet p=reject.
    DmarcPolicyQuarantine,
    /// `DMARC-PCT-PARTIAL`: DMARC policy applies to only part of the mail (pct below 100).
    DmarcPctPartial,
    /// `DMARC-TESTING`: DMARC policy is in testing mode (t=y).
    DmarcTesting,
    /// `DMARC-SUBDOMAIN-WEAK`: Subdomain policy (sp/np) is weaker than p.
    DmarcSubdomainWeak,
    /// `DMARC-NO-RUA`: No DMARC aggregate report address (rua).
    DmarcNoRua,
    /// `DMARC-RUA-UNAUTHORIZED`: External DMARC report destination has not authorised the domain.
    DmarcRuaUnauthorized,
    /// `DMARC-RUA-INVALID`: DMARC report address is not a valid mailto: URI.
    DmarcRuaInvalid,
    /// `DMARC-DEPRECATED-TAG`: DMARC record uses tags removed by RFC 9989 (pct, rf, ri).
    DmarcDeprecatedTag,
    /// `SPF-MISSING`: No SPF record.
    SpfMissing,
    /// `SPF-MULTIPLE`: More than one SPF record (permerror).
    SpfMultiple,
    /// `SPF-SYNTAX`: SPF record does not parse (permerror).
    SpfSyntax,
    /// `SPF-PASS-ALL`: SPF allows any sender (+all).
    SpfPassAll,
    /// `SPF-NEUTRAL-ALL`: SPF ends in ?all or has no all (neutral).
    SpfNeutralAll,
    /// `SPF-SOFTFAIL`: SPF ends in ~all (softfail), not -all.
    SpfSoftfail,
    /// `SPF-LOOKUP-LIMIT`: SPF needs more than 10 DNS look-ups (permerror).
    SpfLookupLimit,
    /// `SPF-LOOKUP-NEAR-LIMIT`: SPF is close to the 10 DNS look-up limit.
    SpfLookupNearLimit,
    /// `SPF-VOID-LIMIT`: SPF has more than 2 void look-ups (permerror).
    SpfVoidLimit,
    /// `SPF-INCLUDE-BROKEN`: An SPF include or redirect target is broken.
    SpfIncludeBroken,
    /// `SPF-PTR`: SPF uses the ptr mechanism.
    SpfPtr,
    /// `SPF-M365-INCLUDE-MISSING`: SPF does not authorise Microsoft 365 (spf.protection.outlook.com).
    SpfM365IncludeMissing,
    /// `SPF-TOO-LONG`: SPF record is longer than 512 octets.
    SpfTooLong,
    /// `DKIM-M365-MISSING`: Microsoft 365 DKIM selector CNAMEs are missing.
    DkimM365Missing,
    /// `DKIM-M365-PARTIAL`: Only one Microsoft 365 DKIM selector CNAME exists.
    DkimM365Partial,
    /// `DKIM-M365-TARGET-MISMATCH`: DKIM selector CNAME does not point at this domain's Microsoft 365 target.
    DkimM365TargetMismatch,
    /// `DKIM-M365-NOT-ENABLED`: DKIM signing is not enabled in Microsoft 365 (no key behind the selectors).
    DkimM365NotEnabled,
    /// `DKIM-KEY-WEAK`: DKIM key is shorter than 2048 bits.
    DkimKeyWeak,
    /// `DKIM-NOT-FOUND`: No DKIM key found at common selectors.
    DkimNotFound,
    /// `MX-MISSING`: No MX record.
    MxMissing,
    /// `MX-NULL`: Null MX: the domain receives no mail.
    MxNull,
    /// `MX-UNRESOLVABLE`: An MX host does not resolve.
    MxUnresolvable,
    /// `MX-GATEWAY`: MX points at a third-party gateway in front of Microsoft 365.
    MxGateway,
    /// `PARKED-NOT-LOCKED`: Domain that sends no mail is not locked down (v=spf1 -all, p=reject).
    ParkedNotLocked,
    /// `MTA-STS-MISSING`: No MTA-STS record.
    MtaStsMissing,
    /// `MTA-STS-INVALID`: MTA-STS record or policy is invalid or does not cover every MX.
    MtaStsInvalid,
    /// `TLSRPT-MISSING`: No TLS-RPT record.
    TlsrptMissing,
    /// `DNS-LOOKUP-FAILED`: A DNS look-up failed; the check's verdict is withheld.
    DnsLookupFailed,
    /// `RELAY-OPEN`: Direct Send spoofing is possible: the tenant accepted unauthenticated mail from its own domain.
    RelayOpen,
    /// `RELAY-INCONCLUSIVE`: The Direct Send relay test could not decide.
    RelayInconclusive,
    /// `STARTTLS-MISSING`: An MX does not offer STARTTLS.
    StarttlsMissing,
    /// `TLS-CERT-INVALID`: An MX certificate is expired, untrusted or does not name the host.
    TlsCertInvalid,
    /// `TLS-PROTOCOL-OLD`: An MX accepts TLS below 1.2.
    TlsProtocolOld,
    /// `EXO-DIRECTSEND-ALLOWED`: Direct Send is not rejected (RejectDirectSend is not true).
    ExoDirectsendAllowed,
    /// `EXO-CONNECTOR-UNRESTRICTED`: A partner inbound connector accepts its sender domains from anywhere.
    ExoConnectorUnrestricted,
    /// `EXO-CONNECTOR-NO-TLS`: An inbound connector does not require TLS.
    ExoConnectorNoTls,
    /// `EXO-DKIM-DISABLED`: DKIM signing is missing or disabled for an accepted domain.
    ExoDkimDisabled,
    /// `EXO-ANTISPOOF-RULE-MISSING`: No transport rule rejects external mail using an accepted domain.
    ExoAntispoofRuleMissing,
    /// `EXO-ANTISPOOF-RULE-AUDIT`: The anti-spoofing transport rule is in audit mode or disabled.
    ExoAntispoofRuleAudit,
    /// `EXO-SPAM-BYPASS-OWN-DOMAIN`: A transport rule bypasses spam filtering for mail from an accepted domain.
    ExoSpamBypassOwnDomain,
    /// `EXO-IMPERSONATION-USERS-OFF`: No anti-phishing policy protects targeted users.
    ExoImpersonationUsersOff,
    /// `EXO-IMPERSONATION-DOMAINS-OFF`: No anti-phishing policy protects the organization's domains.
    ExoImpersonationDomainsOff,
    /// `EXO-MAILBOX-INTELLIGENCE-OFF`: Mailbox intelligence impersonation protection is off.
    ExoMailboxIntelligenceOff,
    /// `EXO-SMTP-AUTH-ENABLED`: SMTP client authentication is enabled organisation-wide.
    ExoSmtpAuthEnabled,
    /// `EXO-AUTOFORWARD-EXTERNAL`: Automatic forwarding to external recipients is allowed.
    ExoAutoforwardExternal,
}

/// Everything documented about one check.
#[derive(Debug)]
pub struct CheckInfo {
    /// The identifier.
    pub id: CheckId,
    /// A short stable code (`DMARC001`), for places where the ID is too long.
    pub code: &'static str,
    /// The area it belongs to (a DNS-LOOKUP-FAILED finding takes the area of the check it withheld).
    pub area: Area,
    /// Its severity.
    pub severity: Severity,
    /// One line, shown in tables.
    pub title: &'static str,
    /// What it checks.
    pub what: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it, for a Microsoft 365 tenant.
    pub fix: &'static str,
    /// RFCs and vendor documents.
    pub references: &'static [&'static str],
}

/// The whole catalogue, in `CHECKS.md` order.
pub static CATALOGUE: &[CheckInfo] = &[
    CheckInfo {
        id: CheckId::DmarcMissing,
        code: "DMARC001",
        area: Area::Dmarc,
        severity: Severity::Critical,
        title: "No DMARC policy applies to the domain",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcMultiple,
        code: "DMARC002",
        area: Area::Dmarc,
        severity: Severity::Critical,
        title: "More than one DMARC record at one name",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcSyntax,
        code: "DMARC003",
        area: Area::Dmarc,
        severity: Severity::Critical,
        title: "The DMARC record is not valid",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcPolicyNone,
        code: "DMARC004",
        area: Area::Dmarc,
        severity: Severity::High,
        title: "DMARC policy is p=none (monitor only)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcPolicyQuarantine,
        code: "DMARC005",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "DMARC policy is p=quarantine, not yet p=reject",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcPctPartial,
        code: "DMARC006",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "DMARC policy applies to only part of the mail (pct below 100)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcTesting,
        code: "DMARC007",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "DMARC policy is in testing mode (t=y)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcSubdomainWeak,
        code: "DMARC008",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "Subdomain policy (sp/np) is weaker than p",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcNoRua,
        code: "DMARC009",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "No DMARC aggregate report address (rua)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcRuaUnauthorized,
        code: "DMARC010",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "External DMARC report destination has not authorised the domain",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcRuaInvalid,
        code: "DMARC011",
        area: Area::Dmarc,
        severity: Severity::Low,
        title: "DMARC report address is not a valid mailto: URI",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DmarcDeprecatedTag,
        code: "DMARC012",
        area: Area::Dmarc,
        severity: Severity::Info,
        title: "DMARC record uses tags removed by RFC 9989 (pct, rf, ri)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfMissing,
        code: "SPF001",
        area: Area::Spf,
        severity: Severity::High,
        title: "No SPF record",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfMultiple,
        code: "SPF002",
        area: Area::Spf,
        severity: Severity::High,
        title: "More than one SPF record (permerror)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfSyntax,
        code: "SPF003",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF record does not parse (permerror)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfPassAll,
        code: "SPF004",
        area: Area::Spf,
        severity: Severity::Critical,
        title: "SPF allows any sender (+all)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfNeutralAll,
        code: "SPF005",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF ends in ?all or has no all (neutral)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfSoftfail,
        code: "SPF006",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF ends in ~all (softfail), not -all",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfLookupLimit,
        code: "SPF007",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF needs more than 10 DNS look-ups (permerror)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfLookupNearLimit,
        code: "SPF008",
        area: Area::Spf,
        severity: Severity::Low,
        title: "SPF is close to the 10 DNS look-up limit",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfVoidLimit,
        code: "SPF009",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF has more than 2 void look-ups (permerror)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfIncludeBroken,
        code: "SPF010",
        area: Area::Spf,
        severity: Severity::High,
        title: "An SPF include or redirect target is broken",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfPtr,
        code: "SPF011",
        area: Area::Spf,
        severity: Severity::Low,
        title: "SPF uses the ptr mechanism",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfM365IncludeMissing,
        code: "SPF012",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF does not authorise Microsoft 365 (spf.protection.outlook.com)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::SpfTooLong,
        code: "SPF013",
        area: Area::Spf,
        severity: Severity::Low,
        title: "SPF record is longer than 512 octets",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DkimM365Missing,
        code: "DKIM001",
        area: Area::Dkim,
        severity: Severity::High,
        title: "Microsoft 365 DKIM selector CNAMEs are missing",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DkimM365Partial,
        code: "DKIM002",
        area: Area::Dkim,
        severity: Severity::Medium,
        title: "Only one Microsoft 365 DKIM selector CNAME exists",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DkimM365TargetMismatch,
        code: "DKIM003",
        area: Area::Dkim,
        severity: Severity::High,
        title: "DKIM selector CNAME does not point at this domain's Microsoft 365 target",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DkimM365NotEnabled,
        code: "DKIM004",
        area: Area::Dkim,
        severity: Severity::High,
        title: "DKIM signing is not enabled in Microsoft 365 (no key behind the selectors)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DkimKeyWeak,
        code: "DKIM005",
        area: Area::Dkim,
        severity: Severity::Medium,
        title: "DKIM key is shorter than 2048 bits",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DkimNotFound,
        code: "DKIM006",
        area: Area::Dkim,
        severity: Severity::Medium,
        title: "No DKIM key found at common selectors",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::MxMissing,
        code: "MX001",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "No MX record",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::MxNull,
        code: "MX002",
        area: Area::Transport,
        severity: Severity::Info,
        title: "Null MX: the domain receives no mail",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::MxUnresolvable,
        code: "MX003",
        area: Area::Transport,
        severity: Severity::High,
        title: "An MX host does not resolve",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::MxGateway,
        code: "MX004",
        area: Area::Transport,
        severity: Severity::Info,
        title: "MX points at a third-party gateway in front of Microsoft 365",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ParkedNotLocked,
        code: "SPF014",
        area: Area::Spf,
        severity: Severity::High,
        title: "Domain that sends no mail is not locked down (v=spf1 -all, p=reject)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::MtaStsMissing,
        code: "TLS001",
        area: Area::Transport,
        severity: Severity::Low,
        title: "No MTA-STS record",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::MtaStsInvalid,
        code: "TLS002",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "MTA-STS record or policy is invalid or does not cover every MX",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::TlsrptMissing,
        code: "TLS003",
        area: Area::Transport,
        severity: Severity::Low,
        title: "No TLS-RPT record",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::DnsLookupFailed,
        code: "DNS001",
        area: Area::Transport,
        severity: Severity::Info,
        title: "A DNS look-up failed; the check's verdict is withheld",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::RelayOpen,
        code: "SMTP001",
        area: Area::Connectors,
        severity: Severity::Critical,
        title: "Direct Send spoofing is possible: the tenant accepted unauthenticated mail from its own domain",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::RelayInconclusive,
        code: "SMTP002",
        area: Area::Connectors,
        severity: Severity::Info,
        title: "The Direct Send relay test could not decide",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::StarttlsMissing,
        code: "SMTP003",
        area: Area::Transport,
        severity: Severity::High,
        title: "An MX does not offer STARTTLS",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::TlsCertInvalid,
        code: "SMTP004",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "An MX certificate is expired, untrusted or does not name the host",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::TlsProtocolOld,
        code: "SMTP005",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "An MX accepts TLS below 1.2",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoDirectsendAllowed,
        code: "EXO001",
        area: Area::Connectors,
        severity: Severity::High,
        title: "Direct Send is not rejected (RejectDirectSend is not true)",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoConnectorUnrestricted,
        code: "EXO002",
        area: Area::Connectors,
        severity: Severity::Critical,
        title: "A partner inbound connector accepts its sender domains from anywhere",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoConnectorNoTls,
        code: "EXO003",
        area: Area::Connectors,
        severity: Severity::Medium,
        title: "An inbound connector does not require TLS",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoDkimDisabled,
        code: "EXO004",
        area: Area::Dkim,
        severity: Severity::High,
        title: "DKIM signing is missing or disabled for an accepted domain",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoAntispoofRuleMissing,
        code: "EXO005",
        area: Area::Antispoof,
        severity: Severity::High,
        title: "No transport rule rejects external mail using an accepted domain",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoAntispoofRuleAudit,
        code: "EXO006",
        area: Area::Antispoof,
        severity: Severity::Medium,
        title: "The anti-spoofing transport rule is in audit mode or disabled",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoSpamBypassOwnDomain,
        code: "EXO007",
        area: Area::Antispoof,
        severity: Severity::High,
        title: "A transport rule bypasses spam filtering for mail from an accepted domain",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoImpersonationUsersOff,
        code: "EXO008",
        area: Area::Impersonation,
        severity: Severity::Medium,
        title: "No anti-phishing policy protects targeted users",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoImpersonationDomainsOff,
        code: "EXO009",
        area: Area::Impersonation,
        severity: Severity::Medium,
        title: "No anti-phishing policy protects the organization's domains",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoMailboxIntelligenceOff,
        code: "EXO010",
        area: Area::Impersonation,
        severity: Severity::Medium,
        title: "Mailbox intelligence impersonation protection is off",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoSmtpAuthEnabled,
        code: "EXO011",
        area: Area::Connectors,
        severity: Severity::Medium,
        title: "SMTP client authentication is enabled organisation-wide",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
    CheckInfo {
        id: CheckId::ExoAutoforwardExternal,
        code: "EXO012",
        area: Area::Connectors,
        severity: Severity::Medium,
        title: "Automatic forwarding to external recipients is allowed",
        what: "",
        why: "",
        fix: "",
        references: &[],
    },
];

impl CheckId {
    /// Everything documented about this check.
    pub fn info(self) -> &'static CheckInfo {
        CATALOGUE
            .iter()
            .find(|c| c.id == self)
            .expect("every CheckId has a catalogue entry (tested)")
    }

    /// The stable identifier, e.g. `"SPF-SOFTFAIL"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::DmarcMissing => "DMARC-MISSING",
            CheckId::DmarcMultiple => "DMARC-MULTIPLE",
            CheckId::DmarcSyntax => "DMARC-SYNTAX",
            CheckId::DmarcPolicyNone => "DMARC-POLICY-NONE",
            CheckId::DmarcPolicyQuarantine => "DMARC-POLICY-QUARANTINE",
            CheckId::DmarcPctPartial => "DMARC-PCT-PARTIAL",
            CheckId::DmarcTesting => "DMARC-TESTING",
            CheckId::DmarcSubdomainWeak => "DMARC-SUBDOMAIN-WEAK",
            CheckId::DmarcNoRua => "DMARC-NO-RUA",
            CheckId::DmarcRuaUnauthorized => "DMARC-RUA-UNAUTHORIZED",
            CheckId::DmarcRuaInvalid => "DMARC-RUA-INVALID",
            CheckId::DmarcDeprecatedTag => "DMARC-DEPRECATED-TAG",
            CheckId::SpfMissing => "SPF-MISSING",
            CheckId::SpfMultiple => "SPF-MULTIPLE",
            CheckId::SpfSyntax => "SPF-SYNTAX",
            CheckId::SpfPassAll => "SPF-PASS-ALL",
            CheckId::SpfNeutralAll => "SPF-NEUTRAL-ALL",
            CheckId::SpfSoftfail => "SPF-SOFTFAIL",
            CheckId::SpfLookupLimit => "SPF-LOOKUP-LIMIT",
            CheckId::SpfLookupNearLimit => "SPF-LOOKUP-NEAR-LIMIT",
            CheckId::SpfVoidLimit => "SPF-VOID-LIMIT",
            CheckId::SpfIncludeBroken => "SPF-INCLUDE-BROKEN",
            CheckId::SpfPtr => "SPF-PTR",
            CheckId::SpfM365IncludeMissing => "SPF-M365-INCLUDE-MISSING",
            CheckId::SpfTooLong => "SPF-TOO-LONG",
            CheckId::DkimM365Missing => "DKIM-M365-MISSING",
            CheckId::DkimM365Partial => "DKIM-M365-PARTIAL",
            CheckId::DkimM365TargetMismatch => "DKIM-M365-TARGET-MISMATCH",
            CheckId::DkimM365NotEnabled => "DKIM-M365-NOT-ENABLED",
            CheckId::DkimKeyWeak => "DKIM-KEY-WEAK",
            CheckId::DkimNotFound => "DKIM-NOT-FOUND",
            CheckId::MxMissing => "MX-MISSING",
            CheckId::MxNull => "MX-NULL",
            CheckId::MxUnresolvable => "MX-UNRESOLVABLE",
            CheckId::MxGateway => "MX-GATEWAY",
            CheckId::ParkedNotLocked => "PARKED-NOT-LOCKED",
            CheckId::MtaStsMissing => "MTA-STS-MISSING",
            CheckId::MtaStsInvalid => "MTA-STS-INVALID",
            CheckId::TlsrptMissing => "TLSRPT-MISSING",
            CheckId::DnsLookupFailed => "DNS-LOOKUP-FAILED",
            CheckId::RelayOpen => "RELAY-OPEN",
            CheckId::RelayInconclusive => "RELAY-INCONCLUSIVE",
            CheckId::StarttlsMissing => "STARTTLS-MISSING",
            CheckId::TlsCertInvalid => "TLS-CERT-INVALID",
            CheckId::TlsProtocolOld => "TLS-PROTOCOL-OLD",
            CheckId::ExoDirectsendAllowed => "EXO-DIRECTSEND-ALLOWED",
            CheckId::ExoConnectorUnrestricted => "EXO-CONNECTOR-UNRESTRICTED",
            CheckId::ExoConnectorNoTls => "EXO-CONNECTOR-NO-TLS",
            CheckId::ExoDkimDisabled => "EXO-DKIM-DISABLED",
            CheckId::ExoAntispoofRuleMissing => "EXO-ANTISPOOF-RULE-MISSING",
            CheckId::ExoAntispoofRuleAudit => "EXO-ANTISPOOF-RULE-AUDIT",
            CheckId::ExoSpamBypassOwnDomain => "EXO-SPAM-BYPASS-OWN-DOMAIN",
            CheckId::ExoImpersonationUsersOff => "EXO-IMPERSONATION-USERS-OFF",
            CheckId::ExoImpersonationDomainsOff => "EXO-IMPERSONATION-DOMAINS-OFF",
            CheckId::ExoMailboxIntelligenceOff => "EXO-MAILBOX-INTELLIGENCE-OFF",
            CheckId::ExoSmtpAuthEnabled => "EXO-SMTP-AUTH-ENABLED",
            CheckId::ExoAutoforwardExternal => "EXO-AUTOFORWARD-EXTERNAL",
        }
    }

    /// All identifiers, in catalogue order.
    pub fn all() -> impl Iterator<Item = CheckId> {
        CATALOGUE.iter().map(|c| c.id)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CheckId {
    type Err = crate::CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        CATALOGUE
            .iter()
            .find(|c| c.id.as_str().eq_ignore_ascii_case(s) || c.code.eq_ignore_ascii_case(s))
            .map(|c| c.id)
            .ok_or_else(|| crate::CoreError::UnknownCheck(s.to_string()))
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips_and_has_one_entry() {
        for info in CATALOGUE {
            assert_eq!(info.id.as_str().parse::<CheckId>().unwrap(), info.id);
            assert_eq!(info.code.parse::<CheckId>().unwrap(), info.id);
            assert_eq!(CATALOGUE.iter().filter(|c| c.id == info.id).count(), 1);
            assert_eq!(CATALOGUE.iter().filter(|c| c.code == info.code).count(), 1);
        }
    }
}
