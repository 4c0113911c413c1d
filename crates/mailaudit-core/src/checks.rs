//! The check catalogue: every finding's stable identifier (`docs/checks.md`), each documented once.
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
        f.pad(self.as_str())
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
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
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
    /// What it checks and when it fires: one or two sentences (Markdown inline code allowed).
    pub what: &'static str,
    /// Why it matters: the attack or delivery problem, in one to three sentences.
    pub why: &'static str,
    /// How to fix it, for a Microsoft 365 tenant, in Markdown. The first paragraph (up to the
    /// first blank line) is a one-line summary and is the default fix of a
    /// [`Finding`](crate::finding::Finding); the following paragraphs give the exact records,
    /// cmdlets and verification steps.
    pub fix: &'static str,
    /// RFC sections, vendor documents and baseline controls. A web page is written
    /// `"Title — https://…"`, which [`render_markdown`] turns into a link.
    pub references: &'static [&'static str],
}

impl CheckInfo {
    /// Where the evidence for this check comes from (the grouping of `docs/checks.md`).
    pub fn source(&self) -> Source {
        if self.code.starts_with("DNSSEC") || self.code.starts_with("DANE") {
            Source::Dnssec
        } else if self.code.starts_with("SMTP") {
            Source::Smtp
        } else if self.code.starts_with("EXO") {
            Source::ExchangeOnline
        } else {
            Source::Dns
        }
    }

    /// The one-line summary of the fix: the first paragraph of [`CheckInfo::fix`].
    pub fn fix_summary(&self) -> &'static str {
        self.fix.split("\n\n").next().unwrap_or("").trim()
    }
}

/// Where the evidence for a check comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Public DNS records alone.
    Dns,
    /// DNS answers validated with DNSSEC from a trust anchor (the zones' signatures and DANE
    /// TLSA records): raised only when validation is on, and tested against signed zones.
    Dnssec,
    /// An SMTP session to the domain's mail exchangers (or its Microsoft 365 endpoint).
    Smtp,
    /// An Exchange Online configuration export (`Get-X | ConvertTo-Json`).
    ExchangeOnline,
}

impl Source {
    /// All sources, in `docs/checks.md` order.
    pub const ALL: [Source; 4] = [
        Source::Dns,
        Source::Dnssec,
        Source::Smtp,
        Source::ExchangeOnline,
    ];

    /// The heading used for this source in `docs/checks.md`.
    pub fn heading(self) -> &'static str {
        match self {
            Source::Dns => "From DNS alone",
            Source::Dnssec => "From DNSSEC-validated DNS (DNSSEC and DANE)",
            Source::Smtp => "From an SMTP session to the domain's mail exchangers",
            Source::ExchangeOnline => "From an Exchange Online configuration export",
        }
    }
}

// Microsoft and baseline references used by several checks, so that every check cites them alike.
const MS_DMARC: &str = "Microsoft Learn: Set up DMARC to validate the From address domain for senders in Microsoft 365 — https://learn.microsoft.com/en-us/defender-office-365/email-authentication-dmarc-configure";
const MS_SPF: &str = "Microsoft Learn: Set up SPF to identify valid email sources for your Microsoft 365 domain — https://learn.microsoft.com/en-us/defender-office-365/email-authentication-spf-configure";
const MS_DKIM: &str = "Microsoft Learn: Set up DKIM to sign mail from your Microsoft 365 domain — https://learn.microsoft.com/en-us/defender-office-365/email-authentication-dkim-configure";
const MS_DNS_RECORDS: &str = "Microsoft Learn: Add DNS records to connect your domain — https://learn.microsoft.com/en-us/microsoft-365/admin/get-help-with-domains/create-dns-records-at-any-dns-hosting-provider";
const MS_DIRECT_SEND_BLOG: &str = "Microsoft Exchange Team Blog: Introducing more control over Direct Send in Exchange Online (2025)";
const MS_MFD: &str = "Microsoft Learn: How to set up a multifunction device or application to send email using Microsoft 365 or Office 365 — https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365";
const MS_SET_ORGCONFIG: &str = "Microsoft Learn: Set-OrganizationConfig — https://learn.microsoft.com/en-us/powershell/module/exchange/set-organizationconfig";
const MS_PARTNER_CONNECTORS: &str = "Microsoft Learn: Set up connectors for secure mail flow with a partner organization — https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/use-connectors-to-configure-mail-flow/set-up-connectors-for-secure-mail-flow-with-a-partner";
const MS_SET_INBOUNDCONNECTOR: &str = "Microsoft Learn: Set-InboundConnector — https://learn.microsoft.com/en-us/powershell/module/exchange/set-inboundconnector";
const MS_MAIL_FLOW_RULES: &str = "Microsoft Learn: Mail flow rules (transport rules) in Exchange Online — https://learn.microsoft.com/en-us/exchange/security-and-compliance/mail-flow-rules/mail-flow-rules";
const MS_ANTIPHISH_ABOUT: &str = "Microsoft Learn: Anti-phishing policies in Microsoft 365 — https://learn.microsoft.com/en-us/defender-office-365/anti-phishing-policies-about";
const MS_ANTIPHISH_CONFIGURE: &str = "Microsoft Learn: Configure anti-phishing policies in Microsoft Defender for Office 365 — https://learn.microsoft.com/en-us/defender-office-365/anti-phishing-policies-mdo-configure";
const MS_SET_ANTIPHISH: &str = "Microsoft Learn: Set-AntiPhishPolicy — https://learn.microsoft.com/en-us/powershell/module/exchange/set-antiphishpolicy";
const MS_SMTP_DANE: &str = "Microsoft Learn: How SMTP DNS-based Authentication of Named Entities (DANE) works — https://learn.microsoft.com/en-us/purview/how-smtp-dane-works";
const MS_MTA_STS: &str = "Microsoft Learn: Enhancing mail flow with MTA-STS — https://learn.microsoft.com/en-us/purview/enhancing-mail-flow-with-mta-sts";
const CIS_DIRECT_SEND: &str =
    "CIS Microsoft 365 Foundations Benchmark 6.5.5 (Direct Send submissions are rejected)";
const MAESTER_DIRECT_SEND: &str = "Maester MT.1062 (Direct Send is rejected)";
const SCUBA_DKIM: &str = "CISA ScubaGear MS.EXO.3.1 (DKIM is enabled for all domains)";
const SCUBA_SPF: &str =
    "CISA ScubaGear MS.EXO.2.2 (an SPF policy is published that fails all non-approved senders)";
const SCUBA_DMARC_REJECT: &str =
    "CISA ScubaGear MS.EXO.4.2 (the DMARC message rejection option is p=reject)";

/// Declares the catalogue: each check once, as its `CheckId` variant, its stable identifier and
/// its documentation. Generates the [`CheckId`] enum (in catalogue order, which is its `Ord`),
/// [`CheckId::as_str`] and [`CATALOGUE`].
macro_rules! catalogue {
    ($(
        $variant:ident = $id:literal {
            code: $code:literal,
            area: $area:expr,
            severity: $severity:expr,
            title: $title:literal,
            what: $what:expr,
            why: $why:expr,
            fix: $fix:expr,
            references: $references:expr $(,)?
        }
    )*) => {
        /// The stable identifier of a check (`docs/checks.md`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum CheckId {
            $(
                #[doc = concat!("`", $id, "`: ", $title, ".")]
                $variant,
            )*
        }

        impl CheckId {
            /// The stable identifier, e.g. `"SPF-SOFTFAIL"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckId::$variant => $id,)*
                }
            }
        }

        /// The whole catalogue, in `docs/checks.md` order.
        pub static CATALOGUE: &[CheckInfo] = &[
            $(
                CheckInfo {
                    id: CheckId::$variant,
                    code: $code,
                    area: $area,
                    severity: $severity,
                    title: $title,
                    what: $what,
                    why: $why,
                    fix: $fix,
                    references: $references,
                },
            )*
        ];
    };
}

catalogue! {
    DmarcMissing = "DMARC-MISSING" {
        code: "DMARC001",
        area: Area::Dmarc,
        severity: Severity::Critical,
        title: "No DMARC policy applies to the domain",
        what: "Looks for a DMARC record (`v=DMARC1`) at `_dmarc.<domain>` and, failing that, at the domain's organizational domain. Fires when neither name has one, so no DMARC policy covers mail that uses the domain in its From address.",
        why: "Without DMARC, receivers have no instruction to refuse mail that forges the domain in the visible From address, and nobody receives reports of who sends as the domain: exact-domain spoofing (fake invoices, fake internal mail) gets through. Google, Yahoo and Microsoft's consumer mail service also require DMARC from bulk senders.",
        fix: r#"Publish a DMARC record at `_dmarc.<domain>`, starting with `v=DMARC1; p=none; rua=mailto:<reports address>`, then move to `p=quarantine` and `p=reject`.

Microsoft 365 does not publish DMARC records for custom domains: add the TXT record at the domain's DNS host.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=none; rua=mailto:dmarc-reports@contoso.com"
```

Roll it out in phases:

1. `p=none` with `rua`: for two to four weeks, read the aggregate reports and list every service that sends as the domain (Microsoft 365, marketing, CRM, invoicing, scanners).
2. Make each legitimate source pass SPF or DKIM with the domain aligned: enable Microsoft 365 DKIM (see DKIM-M365-MISSING), turn on DKIM in each third-party service, add its SPF include or give it a custom bounce (Return-Path) domain.
3. Change to `p=quarantine` once only unauthorised sources fail; after two to four more weeks without legitimate failures, change to `p=reject`.

A domain that sends no mail can go straight to `p=reject` (see PARKED-NOT-LOCKED).

Verify:

```powershell
Resolve-DnsName -Type TXT -Name '_dmarc.contoso.com'
mailaudit audit contoso.com
```"#,
        references: &[
            "RFC 7489 §6.1 (DMARC policy record), §6.6.3 (policy discovery)",
            "RFC 9989 §4.10 (DMARC policy discovery)",
            MS_DMARC,
            "CISA ScubaGear MS.EXO.4.1 (a DMARC policy is published for every second-level domain)",
        ],
    }
    DmarcMultiple = "DMARC-MULTIPLE" {
        code: "DMARC002",
        area: Area::Dmarc,
        severity: Severity::Critical,
        title: "More than one DMARC record at one name",
        what: "Counts the `v=DMARC1` TXT records at the `_dmarc` name that applies to the domain. Fires when there is more than one.",
        why: "When several DMARC records exist at one name, receivers discard all of them, so the domain behaves as if it had no DMARC at all: no policy and no reports. It usually happens when a reporting vendor's record is added next to an older one instead of replacing it.",
        fix: r#"Keep exactly one `v=DMARC1` TXT record at `_dmarc.<domain>`: merge the tags you need into it and delete the others.

At the DNS host, list the TXT records at `_dmarc.contoso.com`, decide which policy and report addresses to keep, and replace them with a single record, for example:

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@contoso.com,mailto:contoso@reports.example.net"
```

Several report destinations go into one `rua` tag, separated by commas. A CNAME at `_dmarc` (used by some DMARC services) cannot coexist with TXT records at the same name: keep either the CNAME or a single TXT record.

Verify that only one record comes back:

```powershell
Resolve-DnsName -Type TXT -Name '_dmarc.contoso.com'
mailaudit audit contoso.com
```"#,
        references: &[
            "RFC 7489 §6.6.3 (policy discovery: several records mean DMARC is not applied)",
            "RFC 9989 §4.10 (DMARC policy discovery)",
            MS_DMARC,
        ],
    }
    DmarcSyntax = "DMARC-SYNTAX" {
        code: "DMARC003",
        area: Area::Dmarc,
        severity: Severity::Critical,
        title: "The DMARC record is not valid",
        what: "Parses the DMARC record. Fires when it is not a valid DMARC record: the first tag is not exactly `v=DMARC1`, `p` is not `none`, `quarantine` or `reject`, or the tag list cannot be parsed.",
        why: "Receivers ignore a DMARC record they cannot parse, so the domain has no enforceable policy even though a record appears to be there. Typical causes are typing errors, curly quotes pasted from a document, `v=DMARC1` not placed first, and commas instead of semicolons between tags.",
        fix: r#"Replace the record with a valid one that begins `v=DMARC1; p=<policy>;` and separates tags with semicolons.

A valid record has `v=DMARC1` as its first tag, followed by `tag=value` pairs separated by `;`. `p`, `sp` and `np` take only `none`, `quarantine` or `reject`; report addresses are `mailto:` URIs separated by commas.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

Common mistakes: `v=dmarc1` (the version is case-sensitive), tags separated by commas, a misspelled policy (`p=rejected`), quote characters inside the value, and two records glued together.

Verify:

```powershell
Resolve-DnsName -Type TXT -Name '_dmarc.contoso.com'
mailaudit audit contoso.com
```"#,
        references: &[
            "RFC 7489 §6.3 (general record format), §6.4 (formal definition)",
            "RFC 9989 §4.7 (DMARC policy record tags), §4.8 (formal definition)",
            MS_DMARC,
        ],
    }
    DmarcPolicyNone = "DMARC-POLICY-NONE" {
        code: "DMARC004",
        area: Area::Dmarc,
        severity: Severity::High,
        title: "DMARC policy is p=none (monitor only)",
        what: "Reads the `p` tag of the DMARC record. Fires when it is `p=none`: receivers send reports but are asked to take no action on mail that fails DMARC.",
        why: "With `p=none`, a message that forges the domain and fails SPF and DKIM alignment is delivered normally, so DMARC does not yet protect anything; it is only a monitoring phase. Domains left at `p=none` for months are as easy to spoof as domains without DMARC.",
        fix: r#"Once the aggregate reports show every legitimate sender passing, change the record to `p=quarantine`, then to `p=reject`.

1. Read the `rua` aggregate reports for at least two weeks (a DMARC report service makes this practical) and list every source sending as the domain. If no reports arrive, fix that first (see DMARC-NO-RUA).
2. Make every legitimate source pass SPF or DKIM with the domain aligned: Microsoft 365 DKIM (`Set-DkimSigningConfig -Identity 'contoso.com' -Enabled $true`), DKIM keys for each third-party sender, their SPF include or a custom Return-Path domain.
3. Move to quarantine:

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@contoso.com"
```

4. After two to four more weeks without legitimate failures, move to reject:

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

Keep `rua` so that new senders that start failing show up. Verify with `Resolve-DnsName -Type TXT -Name '_dmarc.contoso.com'` and `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7489 §6.3 (the p tag), §6.5 (domain owner actions)",
            "RFC 9989 §4.7 (the p tag)",
            MS_DMARC,
            SCUBA_DMARC_REJECT,
            "M3AAWG Email Authentication Recommended Best Practices",
        ],
    }
    DmarcPolicyQuarantine = "DMARC-POLICY-QUARANTINE" {
        code: "DMARC005",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "DMARC policy is p=quarantine, not yet p=reject",
        what: "Reads the `p` tag of the DMARC record. Fires when it is `p=quarantine`: failing mail is to be treated as suspicious (usually delivered to the junk folder) instead of refused.",
        why: "Quarantined spoofs still reach the recipient's junk folder or quarantine, where users find them and act on them. With `p=reject` the receiver refuses the message during the SMTP session, so it never reaches a user.",
        fix: r#"Change the record to `p=reject` once the aggregate reports show no legitimate mail failing DMARC.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

Check the last two to four weeks of aggregate reports first: every source that failed DMARC must be an unauthorised sender, a forwarder or a mailing list, not one of the customer's services. Keep the record's TTL short (for example 3600 seconds) during the change, so that a rollback takes effect quickly if something legitimate breaks.

Verify:

```powershell
Resolve-DnsName -Type TXT -Name '_dmarc.contoso.com'
mailaudit audit contoso.com
```"#,
        references: &[
            "RFC 7489 §6.3 (the p tag)",
            "RFC 9989 §4.7 (the p tag)",
            MS_DMARC,
            SCUBA_DMARC_REJECT,
        ],
    }
    DmarcPctPartial = "DMARC-PCT-PARTIAL" {
        code: "DMARC006",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "DMARC policy applies to only part of the mail (pct below 100)",
        what: "Reads the `pct` tag of the DMARC record. Fires when it is below 100, so the policy is requested for only that share of failing mail.",
        why: "Under RFC 7489 the rest of the failing mail gets the next weaker treatment (`reject` becomes `quarantine`, `quarantine` becomes `none`), so part of the spoofed mail still gets through. RFC 9989 removed `pct`, so receivers now disagree on what the record means.",
        fix: r#"Remove the `pct` tag (or set `pct=100`) so the policy applies to all mail; to test a policy without enforcing it, use `t=y` instead.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

A `pct` ramp-up (10, 50, 100) was the RFC 7489 way to stage a roll-out. Under RFC 9989, stage it with `p=none`, then `p=quarantine`, then `p=reject`, reading the aggregate reports at each step."#,
        references: &[
            "RFC 7489 §6.3 (the pct tag), §6.6.4 (message sampling)",
            "RFC 9989 §4.7 (DMARC policy record tags: pct is no longer defined; the t tag)",
            MS_DMARC,
        ],
    }
    DmarcTesting = "DMARC-TESTING" {
        code: "DMARC007",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "DMARC policy is in testing mode (t=y)",
        what: "Reads the `t` tag that RFC 9989 introduced. Fires when it is `t=y`, which tells receivers that the domain owner is testing its policy.",
        why: "With `t=y`, receivers are asked not to apply the `p`, `sp` or `np` policy to failing mail, so spoofed mail is not refused or quarantined. It is meant for a short test, not as a resting state.",
        fix: r#"Remove `t=y` (or set `t=n`) once the aggregate reports show all legitimate mail passing, so that receivers enforce the policy.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

Receivers that implement only RFC 7489 ignore the `t` tag and already enforce `p`, so their aggregate reports show what enforcement will do."#,
        references: &["RFC 9989 §4.7 (the t tag)", MS_DMARC],
    }
    DmarcSubdomainWeak = "DMARC-SUBDOMAIN-WEAK" {
        code: "DMARC008",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "Subdomain policy (sp/np) is weaker than p",
        what: "Compares the subdomain policy `sp` and the non-existent subdomain policy `np` with `p`. Fires when either is weaker than `p` (for example `p=reject; sp=none`).",
        why: "Attackers then spoof a subdomain, such as `billing.contoso.com` or a name that does not exist at all, and the weaker policy lets the mail through; recipients rarely notice that the sender is not the real domain.",
        fix: r#"Remove `sp` and `np` so that subdomains inherit `p`, or set them to the same value as `p`.

`sp` defaults to `p`, and `np` defaults to `sp` (and so to `p`):

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

If one subdomain still sends mail that does not pass DMARC yet (for example a marketing platform on `news.contoso.com`), give that subdomain its own record at `_dmarc.news.contoso.com` with a temporary weaker policy, instead of weakening every subdomain."#,
        references: &[
            "RFC 7489 §6.3 (the sp tag)",
            "RFC 9989 §4.7 (the sp and np tags)",
            "RFC 9091 (the np tag, first defined for public suffix domains)",
            MS_DMARC,
        ],
    }
    DmarcNoRua = "DMARC-NO-RUA" {
        code: "DMARC009",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "No DMARC aggregate report address (rua)",
        what: "Looks for an `rua` tag in the DMARC record. Fires when there is none, so no receiver sends aggregate reports for the domain.",
        why: "Aggregate reports are the only view of who sends mail as the domain and whether it passes. Without them, legitimate senders cannot be found before enforcement, spoofing campaigns go unnoticed, and moving to `p=quarantine` or `p=reject` blind risks losing legitimate mail.",
        fix: r#"Add `rua=mailto:<mailbox>` to the DMARC record, pointing at a mailbox or DMARC report service that someone reads.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=none; rua=mailto:dmarc-reports@contoso.com"
```

Reports arrive as compressed XML, about one per receiver per day; a DMARC report service, or an MSP-wide mailbox read by a report parser, turns them into a per-source view. If the address is in another organizational domain (for example `contoso@reports.example.net`), that domain must authorise it (see DMARC-RUA-UNAUTHORIZED)."#,
        references: &[
            "RFC 7489 §6.3 (the rua tag), §7.2 (aggregate reports)",
            "RFC 9989 §4.7 (the rua tag)",
            "RFC 9990 (DMARC aggregate reporting)",
            "CISA ScubaGear MS.EXO.4.4 (a point of contact is included for aggregate and failure reports)",
        ],
    }
    DmarcRuaUnauthorized = "DMARC-RUA-UNAUTHORIZED" {
        code: "DMARC010",
        area: Area::Dmarc,
        severity: Severity::Medium,
        title: "External DMARC report destination has not authorised the domain",
        what: "For each `rua` or `ruf` address in another organizational domain, looks up `<domain>._report._dmarc.<destination domain>`. Fires when no `v=DMARC1` TXT record is there, meaning the destination has not agreed to receive the domain's reports.",
        why: "Receivers must check that an external destination accepts reports for the domain and must drop reports to one that does not, so the reports silently never arrive. The rule exists so that a DMARC record cannot be used to flood a third party with reports.",
        fix: r#"Have the report destination publish a TXT record `v=DMARC1` at `<domain>._report._dmarc.<destination domain>`, or use a report address inside the domain itself.

For a report service, add the domain in the service's portal; most services then publish the authorisation record themselves. For an MSP's own report domain, publish one record per customer domain, or a wildcard that accepts reports for every domain:

```text
contoso.com._report._dmarc.msp.example.  3600  IN  TXT  "v=DMARC1"
*._report._dmarc.msp.example.            3600  IN  TXT  "v=DMARC1"
```

Verify:

```powershell
Resolve-DnsName -Type TXT -Name 'contoso.com._report._dmarc.msp.example'
mailaudit audit contoso.com
```"#,
        references: &[
            "RFC 7489 §7.1 (verifying external destinations)",
            "RFC 9990 §4 (verifying external destinations)",
        ],
    }
    DmarcRuaInvalid = "DMARC-RUA-INVALID" {
        code: "DMARC011",
        area: Area::Dmarc,
        severity: Severity::Low,
        title: "DMARC report address is not a valid mailto: URI",
        what: "Checks every `rua` and `ruf` value of the DMARC record. Fires when one is not a valid `mailto:` URI: a bare address without `mailto:`, a malformed address, or a URI scheme receivers do not deliver to.",
        why: "Receivers skip report URIs they cannot use, so reports meant for that address are lost; if it is the only address, the domain receives no reports at all.",
        fix: r#"Write each report address as a `mailto:` URI and separate several with commas, as in `rua=mailto:dmarc-reports@contoso.com,mailto:contoso@reports.example.net`.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com,mailto:contoso@reports.example.net"
```

Wrong forms: `rua=dmarc-reports@contoso.com` (no `mailto:`), `rua=mailto:a@contoso.com; mailto:b@contoso.com` (a semicolon ends the tag), `rua=mailto: dmarc-reports@contoso.com` (a space inside the URI)."#,
        references: &[
            "RFC 7489 §6.2 (DMARC URIs), §6.4 (formal definition)",
            "RFC 9989 §4.7 (the rua and ruf tags)",
            "RFC 6068 (the mailto URI scheme)",
        ],
    }
    DmarcDeprecatedTag = "DMARC-DEPRECATED-TAG" {
        code: "DMARC012",
        area: Area::Dmarc,
        severity: Severity::Info,
        title: "DMARC record uses tags removed by RFC 9989 (pct, rf, ri)",
        what: "Looks for the `pct`, `rf` and `ri` tags, which RFC 9989 removed from DMARC. Fires when any of them is present.",
        why: "Receivers that implement RFC 9989 ignore these tags while older ones still honour them, so the record can mean different things to different receivers (`pct` below 100 in particular). `rf` and `ri` had little effect in practice: there is one failure report format, and most receivers send aggregate reports daily whatever `ri` says.",
        fix: r#"Remove `pct`, `rf` and `ri` from the DMARC record; use `t=y` instead of `pct` for a test phase.

```text
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

`pct=100`, `rf=afrf` and `ri=86400` are the old defaults, so removing them changes nothing. Removing a `pct` below 100 makes the policy apply to all mail: treat that as the DMARC-PCT-PARTIAL change."#,
        references: &[
            "RFC 9989 §4.7 (DMARC policy record tags)",
            "RFC 7489 §6.3 (the pct, rf and ri tags)",
        ],
    }
    SpfMissing = "SPF-MISSING" {
        code: "SPF001",
        area: Area::Spf,
        severity: Severity::High,
        title: "No SPF record",
        what: "Looks for a TXT record beginning with `v=spf1` at the domain itself. Fires when there is none.",
        why: "Without SPF, receivers cannot tell which servers may use the domain as envelope sender: forged mail gets no SPF fail, DMARC can pass only through DKIM, and many receivers score SPF-less mail as spam. A domain without SPF is an easy choice for spoofing and backscatter.",
        fix: r#"Publish one SPF record at the domain that authorises the service its MX points at and every other service that sends as it.

The audit proposes the record from the MX: `include:spf.protection.outlook.com` for Microsoft 365 (GCC High and DoD tenants use `include:spf.protection.office365.us`), `include:_spf.google.com` for Google Workspace, each ending in `-all`:

```text
contoso.com.  3600  IN  TXT  "v=spf1 include:spf.protection.outlook.com -all"
```

When the MX is a third-party gateway (Mimecast, Proofpoint and the like), mail usually leaves through the gateway too: the proposal is the gateway's documented include with `~all` (softfail), or, where the gateway's SPF entry is per customer, a request to list the senders first. Harden to `-all` once the DMARC aggregate reports show every sender passing (see SPF-SOFTFAIL).

Add one mechanism per other legitimate sender, using the value that service documents: `ip4:203.0.113.10` for an on-premises relay, `include:_spf.example.net` for a third-party service. Stay within 10 DNS look-ups (see SPF-LOOKUP-LIMIT). If the domain sends no mail at all, publish `v=spf1 -all` instead (see PARKED-NOT-LOCKED).

Verify:

```powershell
Resolve-DnsName -Type TXT -Name 'contoso.com' | Where-Object Strings -like 'v=spf1*'
mailaudit audit contoso.com
```"#,
        references: &[
            "RFC 7208 §3 (SPF records), §4.5 (selecting records)",
            MS_SPF,
            SCUBA_SPF,
        ],
    }
    SpfMultiple = "SPF-MULTIPLE" {
        code: "SPF002",
        area: Area::Spf,
        severity: Severity::High,
        title: "More than one SPF record (permerror)",
        what: "Counts the TXT records at the domain that begin with `v=spf1`. Fires when there is more than one.",
        why: "SPF evaluation ends in a permerror when more than one SPF record is found, so no sender passes SPF: receivers treat the domain's mail as unauthenticated, and DMARC can pass only through DKIM. It usually happens when a new service's record is added instead of merged.",
        fix: r#"Merge all `v=spf1` records into one that lists every sender and ends in `-all`, and delete the others.

For example, these two records:

```text
contoso.com.  IN  TXT  "v=spf1 include:spf.protection.outlook.com -all"
contoso.com.  IN  TXT  "v=spf1 include:_spf.example.net ~all"
```

become one:

```text
contoso.com.  3600  IN  TXT  "v=spf1 include:spf.protection.outlook.com include:_spf.example.net -all"
```

Other TXT records at the domain (the `MS=ms…` domain verification, site verification tokens) are not SPF records and stay.

Verify with `Resolve-DnsName -Type TXT -Name 'contoso.com'` and `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7208 §3.2 (multiple DNS records), §4.5 (selecting records)",
            MS_SPF,
        ],
    }
    SpfSyntax = "SPF-SYNTAX" {
        code: "SPF003",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF record does not parse (permerror)",
        what: "Parses the SPF record and every record it reaches through `include` and `redirect`. Fires when one of them does not parse, which makes SPF evaluation a permerror.",
        why: "A permerror means SPF passes no sender at all: receivers treat the domain's mail as unauthenticated or failing, DMARC loses its SPF path, and legitimate mail may be rejected. Typical causes are typos (`inlcude:`), host names after `ip4:`, missing colons, stray quotes and unknown mechanisms.",
        fix: r#"Rewrite the record so that every term is a valid mechanism (`ip4:`, `ip6:`, `a`, `mx`, `include:`, `exists:`, `all`) or modifier (`redirect=`, `exp=`), separated by single spaces.

A correct Microsoft 365 record:

```text
contoso.com.  3600  IN  TXT  "v=spf1 include:spf.protection.outlook.com -all"
```

Check that `v=spf1` is the very first word; that `ip4:` and `ip6:` are followed by an address or CIDR range, not a host name; that `include:` is followed by a domain; that there are no commas or semicolons between terms; that only straight quotes are used; and that `all` is the last mechanism (terms after it are never evaluated). If the error is in a record included from a vendor, remove that include and report the problem to the vendor.

Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7208 §4.6 (record evaluation), §12 (collected ABNF)",
            "RFC 7208 §2.6.7 (permerror)",
            MS_SPF,
        ],
    }
    SpfPassAll = "SPF-PASS-ALL" {
        code: "SPF004",
        area: Area::Spf,
        severity: Severity::Critical,
        title: "SPF allows any sender (+all)",
        what: "Reads the `all` mechanism that ends the SPF record. Fires on `+all` or a bare `all` (`+` is the default qualifier), which gives every IP address on the Internet an SPF pass.",
        why: "Anyone can send mail as the domain and pass SPF. Because the attacker also chooses the envelope sender, the pass is aligned and DMARC passes too, even at `p=reject`: this is worse than having no SPF record.",
        fix: r#"Replace `+all` with `-all`, after listing every legitimate sender explicitly.

```text
contoso.com.  3600  IN  TXT  "v=spf1 include:spf.protection.outlook.com -all"
```

`+all` is usually a stop-gap added because some sender was failing SPF: find that sender in the DMARC aggregate reports and add its `include:` or `ip4:`/`ip6:` range instead. Change it now; until then the domain's DMARC policy does not stop spoofing.

Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7208 §5.1 (all)",
            "RFC 7208 §4.6.2 (mechanisms: the qualifier defaults to +)",
            MS_SPF,
            SCUBA_SPF,
        ],
    }
    SpfNeutralAll = "SPF-NEUTRAL-ALL" {
        code: "SPF005",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF ends in ?all or has no all (neutral)",
        what: "Fires when the SPF record ends in `?all`, or has neither an `all` mechanism nor a `redirect` modifier, in which case a sender not listed gets the result `neutral`.",
        why: "`neutral` says nothing about unlisted senders, so receivers treat forged mail as if there were no SPF: it gets through receivers that do not apply DMARC, and the domain fails baselines that require SPF to fail unapproved senders.",
        fix: r#"End the SPF record with `-all` (or `~all` while you confirm the senders), so that unlisted senders fail.

```text
contoso.com.  3600  IN  TXT  "v=spf1 include:spf.protection.outlook.com -all"
```

Before changing it, compare the record with the senders in the DMARC aggregate reports and add any that are missing. Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7208 §4.7 (default result)",
            "RFC 7208 §8.2 (neutral)",
            MS_SPF,
            SCUBA_SPF,
        ],
    }
    SpfSoftfail = "SPF-SOFTFAIL" {
        code: "SPF006",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF ends in ~all (softfail), not -all",
        what: "Fires when the SPF record ends in `~all`: senders not listed get `softfail` instead of `fail`.",
        why: "Receivers are expected to accept softfail mail, perhaps marking it, so receivers that do not enforce DMARC deliver forged mail. CISA's baseline asks for an SPF policy that fails all non-approved senders.",
        fix: r#"Change `~all` to `-all` once every legitimate sender is listed and DKIM signs the domain's mail.

```text
contoso.com.  3600  IN  TXT  "v=spf1 include:spf.protection.outlook.com -all"
```

1. Fix what is broken and get under the limit first: while an include fails (SPF-INCLUDE-BROKEN, SPF-VOID-LIMIT) or the policy needs more than 10 DNS look-ups (SPF-LOOKUP-LIMIT), receivers return permerror and legitimate mail already fails, so the policy must work before it is tightened; until then the audit proposes no `-all`.
2. Check the DMARC aggregate reports: every source with an SPF `softfail` must be unauthorised or a forwarder.
3. Make sure Microsoft 365 DKIM is enabled (`Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Enabled`), so that forwarded mail still passes DMARC through DKIM.
4. Publish `-all` and verify with `mailaudit audit contoso.com`.

Some receivers reject an SPF `fail` during the SMTP session, before they look at DKIM, which can bounce mail forwarded from other domains; that is why step 3 comes first."#,
        references: &[
            "RFC 7208 §8.5 (softfail)",
            "RFC 7208 §5.1 (all)",
            MS_SPF,
            SCUBA_SPF,
        ],
    }
    SpfLookupLimit = "SPF-LOOKUP-LIMIT" {
        code: "SPF007",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF needs more than 10 DNS look-ups (permerror)",
        what: "Counts the terms that cause DNS queries (`include`, `a`, `mx`, `ptr`, `exists` and `redirect`) across the whole include and redirect tree. Fires when there are more than 10, which makes SPF evaluation a permerror.",
        why: "Receivers stop at the limit and return permerror, so SPF passes no sender at all and DMARC depends on DKIM alone. The break often appears without any change on the customer's side, when a vendor adds includes to its own record.",
        fix: r#"Bring the SPF record down to 10 DNS look-ups or fewer: remove unused senders, replace `a` and `mx` with `ip4`/`ip6`, or move bulk senders to a subdomain.

In order of preference:

1. Remove the includes of services that no longer send (check the DMARC aggregate reports).
2. Replace `a`, `mx` and `ptr` with the `ip4:`/`ip6:` ranges they stand for; `ip4`, `ip6` and `all` cost no look-up.
3. Move marketing and transactional services to a subdomain or a custom bounce (Return-Path) domain, such as `bounce.contoso.com`, with its own SPF record; DMARC's relaxed alignment still passes for `contoso.com`.
4. As a last resort, flatten: replace an include with the IP ranges it returns today. Providers change their ranges without notice, so flattening needs a tool that keeps the record up to date.

For a Microsoft 365 domain, `include:spf.protection.outlook.com` stays. Verify the count with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7208 §4.6.4 (DNS lookup limits)",
            "RFC 7208 §5.2 (include)",
            MS_SPF,
        ],
    }
    SpfLookupNearLimit = "SPF-LOOKUP-NEAR-LIMIT" {
        code: "SPF008",
        area: Area::Spf,
        severity: Severity::Low,
        title: "SPF is close to the 10 DNS look-up limit",
        what: "Counts DNS-querying terms as SPF-LOOKUP-LIMIT does. Fires when the record needs 9 or 10 look-ups: within the limit, but only just.",
        why: "One more sender, or one vendor adding an include to its own record, pushes the domain over 10, and SPF becomes a permerror for all of its mail without any change on the customer's side.",
        fix: r#"Reduce the SPF record's DNS look-ups now, before a new sender or a vendor change pushes it over 10.

Use the same steps as for SPF-LOOKUP-LIMIT: remove unused includes, replace `a` and `mx` with `ip4:`/`ip6:` ranges, and move bulk senders to a subdomain. Aim for 7 look-ups or fewer, to leave room for vendor changes."#,
        references: &["RFC 7208 §4.6.4 (DNS lookup limits)", MS_SPF],
    }
    SpfVoidLimit = "SPF-VOID-LIMIT" {
        code: "SPF009",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF has more than 2 void look-ups (permerror)",
        what: "Counts void look-ups during SPF evaluation: DNS queries that return no answer (NXDOMAIN, or no records of the type asked). Fires when there are more than 2, which makes SPF evaluation a permerror.",
        why: "SPF then passes no sender, as with a syntax error. Void look-ups come from includes of retired vendor domains, typos, and `a` or `mx` terms for hosts that no longer exist; the limit exists because such records can be abused to load DNS servers.",
        fix: r#"Remove or correct the SPF terms that point at names that do not exist (retired services, typos, deleted hosts).

Check each `include:`, `a:`, `mx:` and `exists:` target:

```powershell
Resolve-DnsName -Type TXT -Name '_spf.example.net'
Resolve-DnsName -Type A -Name 'mail.contoso.com'
```

A name that returns an error or no records is a void look-up: delete the term, or correct its spelling from the sending service's documentation. Verify with `mailaudit audit contoso.com`."#,
        references: &["RFC 7208 §4.6.4 (DNS lookup limits: void lookups)"],
    }
    SpfIncludeBroken = "SPF-INCLUDE-BROKEN" {
        code: "SPF010",
        area: Area::Spf,
        severity: Severity::High,
        title: "An SPF include or redirect target is broken",
        what: "Follows every `include` and `redirect` in the SPF record. Fires when a target has no SPF record or does not resolve.",
        why: "An include whose target has no SPF record is a permerror, and so is a redirect to a domain without SPF: SPF then fails for all of the domain's mail, not only for the broken sender's.",
        fix: r#"Correct or remove the broken `include:` or `redirect=` target, so that it names a domain with a valid SPF record.

Look up the target and compare it with the sending service's current documentation; vendors rename their SPF domains and retire old ones:

```powershell
Resolve-DnsName -Type TXT -Name '_spf.example.net'
```

If the service is no longer used, delete the include. If the record uses `redirect=`, make sure the target publishes a `v=spf1` record. Verify with `mailaudit audit contoso.com`."#,
        references: &["RFC 7208 §5.2 (include)", "RFC 7208 §6.1 (redirect)"],
    }
    SpfPtr = "SPF-PTR" {
        code: "SPF011",
        area: Area::Spf,
        severity: Severity::Low,
        title: "SPF uses the ptr mechanism",
        what: "Fires when the SPF record, or a record it includes, uses the `ptr` mechanism.",
        why: "RFC 7208 says `ptr` should not be published: it is slow, depends on reverse DNS that the domain owner may not control, and loads the reverse-DNS servers. Some large receivers skip it, so senders that rely on it fail SPF unpredictably.",
        fix: r#"Replace `ptr` with `ip4:`/`ip6:` mechanisms for the addresses of the servers it was meant to cover.

Find the servers the `ptr` term was meant to match (usually an on-premises mail server or relay) and list their public addresses:

```text
contoso.com.  3600  IN  TXT  "v=spf1 ip4:203.0.113.10 include:spf.protection.outlook.com -all"
```"#,
        references: &["RFC 7208 §5.5 (ptr: this mechanism should not be published)"],
    }
    SpfM365IncludeMissing = "SPF-M365-INCLUDE-MISSING" {
        code: "SPF012",
        area: Area::Spf,
        severity: Severity::High,
        title: "SPF does not authorise Microsoft 365 (spf.protection.outlook.com)",
        what: "Fires when the domain receives its mail at Microsoft 365 but its SPF policy, including every record it includes, never reaches `spf.protection.outlook.com`.",
        why: "Mail that users send from Microsoft 365 then fails or softfails SPF at receivers, so DMARC depends on DKIM alone, and mail lands in junk or is rejected once DMARC is enforced.",
        fix: r#"Add `include:spf.protection.outlook.com` to the domain's SPF record.

```text
contoso.com.  3600  IN  TXT  "v=spf1 include:spf.protection.outlook.com -all"
```

Keep the senders already listed, before the `all` term. GCC High and DoD tenants use `include:spf.protection.office365.us`. If the domain's outbound mail leaves through a third-party gateway rather than directly from Microsoft 365, the gateway's SPF entry is the one needed: record that as an accepted exception.

Verify with `mailaudit audit contoso.com`."#,
        references: &[MS_SPF, "RFC 7208 §5.2 (include)"],
    }
    SpfTooLong = "SPF-TOO-LONG" {
        code: "SPF013",
        area: Area::Spf,
        severity: Severity::Low,
        title: "SPF record is longer than 512 octets",
        what: "Measures the SPF TXT record. Fires when a single record is longer than 512 octets.",
        why: "RFC 7208 asks that SPF answers fit in 512 octets: larger answers need EDNS or TCP, which some resolvers and firewalls break, and receivers may then get a temperror or no SPF at all. Records this long are usually close to the look-up limit too.",
        fix: r#"Shorten the SPF record below 512 octets: remove unused senders, merge addresses into CIDR ranges, or move address lists into an included record.

- Remove mechanisms for services that no longer send.
- Merge neighbouring addresses into CIDR ranges (`ip4:203.0.113.0/28` instead of many single `ip4:` terms).
- Move a long list of addresses into a record you control, such as `_spf.contoso.com`, and `include:` it (this costs one DNS look-up).

A single string in a TXT record holds at most 255 characters: longer SPF records are split into several quoted strings, which receivers join without adding spaces."#,
        references: &[
            "RFC 7208 §3.3 (multiple strings in a single DNS record)",
            "RFC 7208 §3.4 (record size)",
        ],
    }
    DkimM365Missing = "DKIM-M365-MISSING" {
        code: "DKIM001",
        area: Area::Dkim,
        severity: Severity::High,
        title: "Microsoft 365 DKIM selector CNAMEs are missing",
        what: "For a domain whose mail is handled by Microsoft 365, looks up the `selector1._domainkey` and `selector2._domainkey` CNAMEs. Fires when neither exists.",
        why: "Without them Microsoft 365 cannot sign with the domain's own key: it signs with the tenant's `onmicrosoft.com` domain, which does not align with the From address. DMARC then rests on SPF alone, which breaks when mail is forwarded, so `p=reject` cannot be enforced safely.",
        fix: r#"Publish both Microsoft 365 DKIM selector CNAMEs for the domain, with the exact values the tenant gives, then enable signing with `Set-DkimSigningConfig -Identity '<domain>' -Enabled $true`.

1. In Exchange Online PowerShell, read the CNAME targets for this domain:

```powershell
Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Selector1CNAME,Selector2CNAME
```

If it returns nothing, the domain has no signing configuration yet: create it, then read them again:

```powershell
New-DkimSigningConfig -DomainName 'contoso.com' -Enabled $false
```

2. Publish both CNAMEs at the DNS host with exactly the values returned. Never build them by hand: they name the tenant and a label Microsoft chooses (hyphens dropped, sometimes a suffix such as `01b`), and for domains added since May 2025 (MX `<label>.<x>-v1.mx.microsoft`) they end in a `<letter>-v1.dkim.mail.microsoft` zone that cannot be predicted. For example, with the values of a classic tenant named `contoso`:

```text
selector1._domainkey.contoso.com.  3600  IN  CNAME  selector1-contoso-com._domainkey.contoso.onmicrosoft.com.
selector2._domainkey.contoso.com.  3600  IN  CNAME  selector2-contoso-com._domainkey.contoso.onmicrosoft.com.
```

After `mailaudit exo import` of the tenant's export, the guide writes the tenant's own values; otherwise it shows how to read them.

3. Once the CNAMEs resolve, enable signing:

```powershell
Set-DkimSigningConfig -Identity 'contoso.com' -Enabled $true
```

The same can be done in the Microsoft Defender portal: Email & collaboration > Policies & rules > Threat policies > Email authentication settings > DKIM. Verify with `mailaudit audit contoso.com`."#,
        references: &[
            MS_DKIM,
            "RFC 6376 §3.1 (selectors), §3.6.2 (DNS binding)",
            SCUBA_DKIM,
            "ORCA-108 (DKIM signing is set up for all custom domains)",
        ],
    }
    DkimM365Partial = "DKIM-M365-PARTIAL" {
        code: "DKIM002",
        area: Area::Dkim,
        severity: Severity::Medium,
        title: "Only one Microsoft 365 DKIM selector CNAME exists",
        what: "Fires when only one of the two Microsoft 365 selector CNAMEs (`selector1._domainkey`, `selector2._domainkey`) exists for the domain.",
        why: "Microsoft 365 signs with one selector and switches to the other at each key rotation. When it switches to the missing one, receivers cannot find the key, DKIM fails for every message, and a DMARC policy at `quarantine` or `reject` starts hitting legitimate mail.",
        fix: r#"Publish the missing selector CNAME with the value from `Get-DkimSigningConfig -Identity '<domain>' | Format-List Selector1CNAME,Selector2CNAME`.

```powershell
Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Selector1CNAME,Selector2CNAME
```

Then add the missing record at the DNS host, for example:

```text
selector2._domainkey.contoso.com.  3600  IN  CNAME  selector2-contoso-com._domainkey.contoso.onmicrosoft.com.
```

Verify with `Resolve-DnsName -Type CNAME -Name 'selector2._domainkey.contoso.com'` and `mailaudit audit contoso.com`."#,
        references: &[MS_DKIM, "RFC 6376 §3.1 (selectors)"],
    }
    DkimM365TargetMismatch = "DKIM-M365-TARGET-MISMATCH" {
        code: "DKIM003",
        area: Area::Dkim,
        severity: Severity::High,
        title: "DKIM selector CNAME does not point at this domain's Microsoft 365 target",
        what: "Checks where each selector CNAME points. Fires when a target is not a Microsoft 365 DKIM target (`selectorN-<label>._domainkey.<tenant>.onmicrosoft.com` or `selectorN-<label>._domainkey.<tenant>.<x>-v1.dkim.mail.microsoft`), when the selector number in the target differs from the selector's own, when the two CNAMEs name different tenants, and when a target was copied from another domain: its label was made for another domain (a label is the domain name with dots as dashes, hyphens dropped and perhaps a numbered suffix, `heig-vd.ch` → `heigvd-ch01b`; a label the domain's own MX names is always its own). The guide also fires it when a target's tenant is not the domain's tenant, as its Exchange Online import (the exact `Selector1CNAME`/`Selector2CNAME`, else the tenant's `onmicrosoft.com` domains) or the inventory records it. The finding names the published target and what it should have been.",
        why: "The domain then signs with a key receivers cannot find, or the records point at another tenant (a previous tenant after a migration, or a copy from another customer), so DKIM fails and DMARC enforcement would reject legitimate mail. A CNAME into a tenant you do not control also lets that tenant sign as the domain.",
        fix: r#"Re-publish both selector CNAMEs with the exact values that `Get-DkimSigningConfig -Identity '<domain>' | Format-List Selector1CNAME,Selector2CNAME` shows in the tenant that sends the domain's mail.

```powershell
Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Selector1CNAME,Selector2CNAME
```

If it returns nothing, create the configuration first with `New-DkimSigningConfig -DomainName 'contoso.com' -Enabled $false` and read them again.

Replace the records at the DNS host with those values, exactly as shown (never edited from a published one or from another domain's records): both must point into the same tenant, `selector1` at the `selector1-…` target and `selector2` at the `selector2-…` target. Common causes are a move to a new tenant, records copied from another domain or customer, and a missing trailing dot that made the DNS host append the zone name. Then make sure signing is enabled:

```powershell
Set-DkimSigningConfig -Identity 'contoso.com' -Enabled $true
```"#,
        references: &[MS_DKIM, "RFC 6376 §3.1 (selectors)"],
    }
    DkimM365NotEnabled = "DKIM-M365-NOT-ENABLED" {
        code: "DKIM004",
        area: Area::Dkim,
        severity: Severity::High,
        title: "DKIM signing is not enabled in Microsoft 365 (no key behind the selectors)",
        what: "Follows the Microsoft 365 selector CNAMEs. Fires when they exist but neither leads to a DKIM key record (`v=DKIM1` with a non-empty `p=`), which means signing has not been enabled in the tenant.",
        why: "Until signing is enabled, Microsoft 365 signs the domain's mail with the tenant's `onmicrosoft.com` domain, which does not align with the From address; DMARC has only SPF to rely on, which breaks on forwarding.",
        fix: r#"Enable DKIM signing for the domain in Microsoft 365: `Set-DkimSigningConfig -Identity '<domain>' -Enabled $true`.

```powershell
Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Enabled,Status,Selector1CNAME,Selector2CNAME
Set-DkimSigningConfig -Identity 'contoso.com' -Enabled $true
```

If `Get-DkimSigningConfig` finds nothing, create the configuration first with `New-DkimSigningConfig -DomainName 'contoso.com' -Enabled $true`. If enabling fails because of the CNAMEs, compare the published records with `Selector1CNAME` and `Selector2CNAME` (see DKIM-M365-TARGET-MISMATCH). Once enabled, a key appears behind the active selector: check it with `Resolve-DnsName -Type TXT -Name 'selector1._domainkey.contoso.com'` and `mailaudit audit contoso.com`."#,
        references: &[MS_DKIM, "RFC 6376 §3.6.1 (key record format)", SCUBA_DKIM],
    }
    DkimKeyWeak = "DKIM-KEY-WEAK" {
        code: "DKIM005",
        area: Area::Dkim,
        severity: Severity::Medium,
        title: "DKIM key is shorter than 2048 bits",
        what: "Reads the RSA public key of each DKIM key record found. Fires when a key is shorter than 2048 bits.",
        why: "1024-bit RSA is within reach of well-funded attackers and below current guidance (RFC 8301 asks signers for at least 2048 bits); whoever factors the key can sign mail that passes DKIM and DMARC as the domain. Microsoft 365 domains set up years ago often still have 1024-bit keys.",
        fix: r#"Rotate to a 2048-bit key: `Rotate-DkimSigningConfig -Identity '<domain>' -KeySize 2048` in Microsoft 365, or a new 2048-bit key in the third-party service that signs.

```powershell
Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Selector1KeySize,Selector2KeySize
Rotate-DkimSigningConfig -Identity 'contoso.com' -KeySize 2048
```

The rotation moves signing to the other selector with the new key; Microsoft 365 starts using it after a delay of up to about four days. Once it is in use, rotate again so that both selectors hold 2048-bit keys. For keys not hosted by Microsoft 365 (a marketing platform, an on-premises signer), create a 2048-bit key there and publish its TXT record under a new selector."#,
        references: &[
            "RFC 8301 §3.2 (RSA key sizes)",
            "RFC 6376 §3.3.3 (key sizes)",
            MS_DKIM,
        ],
    }
    DkimNotFound = "DKIM-NOT-FOUND" {
        code: "DKIM006",
        area: Area::Dkim,
        severity: Severity::Medium,
        title: "No DKIM key found at common selectors",
        what: "For a domain that is not on Microsoft 365, looks for a DKIM key at the selectors common mail platforms use. Fires when none has a key; selectors cannot be listed from DNS, so the domain may still sign with a selector that was not tried.",
        why: "Without DKIM, DMARC depends on SPF alone, which fails whenever mail is forwarded, so enforcing `p=reject` loses legitimate mail. Large mailbox providers also require DKIM from bulk senders.",
        fix: r#"Enable DKIM signing on every platform that sends as the domain and publish its key, or confirm which selector is actually in use.

1. Send a message from the domain to a mailbox you can read and open its `DKIM-Signature` header: `d=` should be the domain and `s=` names the selector. If a signature is there, the selector is simply not one that was tried; check it with `Resolve-DnsName -Type TXT -Name '<selector>._domainkey.contoso.com'`.
2. Otherwise turn DKIM on in the sending platform and publish the TXT or CNAME record it gives you, for example:

```text
s1._domainkey.contoso.com.  3600  IN  TXT  "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA…"
```

If the domain's mail is in fact sent by Microsoft 365, follow DKIM-M365-MISSING instead."#,
        references: &[
            "RFC 6376 §3.1 (selectors), §3.6.1 (key record format)",
            "M3AAWG Email Authentication Recommended Best Practices",
        ],
    }
    MxMissing = "MX-MISSING" {
        code: "MX001",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "No MX record",
        what: "Looks up the domain's MX records. Fires when there is none (not even a null MX), so senders fall back to the domain's A or AAAA record.",
        why: "Mail to the domain then goes to whatever server the A record names, usually a web server, where it is refused, queued or lost. For a domain that is meant to receive no mail, the missing null MX leaves senders retrying for days instead of failing at once.",
        fix: r#"Publish the domain's Microsoft 365 MX record, or a null MX (`0 .`) if the domain receives no mail.

For a Microsoft 365 domain, copy the MX value from the Microsoft 365 admin center (Settings > Domains > the domain > DNS records); Microsoft assigns the host label, so it cannot be derived from the domain name:

```text
contoso.com.  3600  IN  MX  0  contoso-com.mail.protection.outlook.com.
```

For a domain that receives no mail, publish a null MX and lock the domain down (see PARKED-NOT-LOCKED):

```text
contoso.com.  3600  IN  MX  0  .
```

Verify with `Resolve-DnsName -Type MX -Name 'contoso.com'` and `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 5321 §5.1 (locating the target host: the implicit MX)",
            "RFC 7505 (null MX)",
            MS_DNS_RECORDS,
        ],
    }
    MxNull = "MX-NULL" {
        code: "MX002",
        area: Area::Transport,
        severity: Severity::Info,
        title: "Null MX: the domain receives no mail",
        what: "Fires when the domain publishes a null MX (a single `MX 0 .` record), which declares that it accepts no mail.",
        why: "Context: a null MX is the right way to say that a domain receives no mail, and receivers may refuse mail whose envelope sender uses such a domain. A domain like this should also be locked down against spoofing (checked by PARKED-NOT-LOCKED); if it is meant to receive mail in Microsoft 365, the null MX is an outage.",
        fix: r#"Nothing to do if the domain receives no mail (make sure it passes PARKED-NOT-LOCKED); otherwise replace the null MX with the Microsoft 365 MX.

A domain that receives no mail also needs:

```text
contoso.com.         3600  IN  TXT  "v=spf1 -all"
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject;"
```

If the domain should receive mail, delete the `MX 0 .` record and publish the MX value shown in the Microsoft 365 admin center (Settings > Domains)."#,
        references: &[
            "RFC 7505 §3 (the null MX record), §4 (effects of null MX)",
            MS_DNS_RECORDS,
        ],
    }
    MxUnresolvable = "MX-UNRESOLVABLE" {
        code: "MX003",
        area: Area::Transport,
        severity: Severity::High,
        title: "An MX host does not resolve",
        what: "Resolves the A and AAAA records of every host named in the domain's MX records. Fires when a host has neither.",
        why: "Senders that pick that MX cannot deliver to it and must try other MX hosts or queue the mail; if it is the only or the preferred MX, inbound mail is delayed or bounced. An MX that names a host in a lapsed domain can be taken over by whoever registers that domain, who then receives the mail.",
        fix: r#"Correct or remove the MX record that names a host without an address.

```powershell
Resolve-DnsName -Type MX -Name 'contoso.com'
Resolve-DnsName -Type A -Name 'mx1.contoso.com'
```

Typical causes are a decommissioned gateway, a typo, and a missing trailing dot that made the DNS host append the zone name (`contoso-com.mail.protection.outlook.com.contoso.com`). For Microsoft 365, use the MX value shown in the admin center (Settings > Domains). An MX must name a host that has A or AAAA records, not an IP address and not a CNAME."#,
        references: &[
            "RFC 5321 §5.1 (locating the target host)",
            "RFC 2181 §10.3 (MX records must not point to an alias)",
            MS_DNS_RECORDS,
        ],
    }
    MxGateway = "MX-GATEWAY" {
        code: "MX004",
        area: Area::Transport,
        severity: Severity::Info,
        title: "MX points at a third-party gateway in front of Microsoft 365",
        what: "Classifies the domain's MX hosts. Fires, as context, when the MX points at a third-party mail gateway (Mimecast, Proofpoint, Barracuda and the like) in front of Microsoft 365.",
        why: "Attackers skip the gateway and send straight to the tenant's Microsoft 365 endpoint (`<label>.mail.protection.outlook.com`), which accepts mail from anywhere unless it is locked down, so the gateway's filtering is bypassed. Microsoft 365 also sees the gateway's IP address instead of the sender's unless Enhanced Filtering is set up, which weakens its SPF and DMARC checks.",
        fix: r#"Lock the tenant down to accept internet mail only from the gateway (a partner connector restricted to the gateway's IP ranges), turn on Enhanced Filtering, and reject Direct Send.

1. Accept mail only from the gateway. With `-SenderDomains *` and the IP restriction, mail from any other address is rejected, so list every range the gateway vendor documents first:

```powershell
New-InboundConnector -Name 'Inbound from gateway' -ConnectorType Partner -SenderDomains '*' -SenderIPAddresses '203.0.113.0/24','198.51.100.0/24' -RestrictDomainsToIPAddresses $true -RequireTls $true
```

2. Turn on Enhanced Filtering, so that SPF, DKIM and DMARC are evaluated against the original sender's IP address:

```powershell
Set-InboundConnector -Identity 'Inbound from gateway' -EFSkipLastIP $true
```

3. Reject Direct Send: `Set-OrganizationConfig -RejectDirectSend $true` (see EXO-DIRECTSEND-ALLOWED).

Then run the Direct Send probe again against the tenant's Microsoft endpoint: `mailaudit audit contoso.com`."#,
        references: &[
            "Microsoft Learn: Manage mail flow using a third-party cloud service with Exchange Online — https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/manage-mail-flow-using-third-party-cloud",
            "Microsoft Learn: Enhanced Filtering for Connectors in Exchange Online — https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/use-connectors-to-configure-mail-flow/enhanced-filtering-for-connectors",
            MS_DIRECT_SEND_BLOG,
        ],
    }
    MxM365Legacy = "MX-M365-LEGACY" {
        code: "MX005",
        area: Area::Transport,
        severity: Severity::Info,
        title: "MX is Microsoft 365's legacy endpoint, which cannot offer inbound SMTP DANE",
        what: "Classifies the domain's MX hosts. Fires, as context, when an MX host is the legacy Microsoft 365 endpoint `<label>.mail.protection.outlook.com` (compared case-insensitively). The GCC High endpoint `<label>.mail.protection.office365.us` does not fire: Microsoft documents no DNSSEC-signed `mx.microsoft` endpoint for it.",
        why: "Microsoft 365 receives mail with inbound SMTP DANE (RFC 7672) only on its DNSSEC-signed endpoint `<label>.<letter>-v1.mx.microsoft`. On the legacy endpoint, a sender cannot authenticate the receiving server from DNS, so an attacker on the path can strip STARTTLS or present another certificate to senders that do not enforce MTA-STS.",
        fix: r#"Run `Enable-DnssecForVerifiedDomain`, move the MX to the `DnssecMxValue` it prints in the order Microsoft gives, then run `Enable-SmtpDaneInbound`.

Microsoft's prerequisites: the domain is an accepted domain whose status is Healthy, and its MX has priority 0 or 10 with no fallback MX. The new MX host (`<label>.<letter>-v1.mx.microsoft`) cannot be derived from the domain name: read it from the command's output.

1. At the DNS host, lower the TTL of the current MX record to the lowest value allowed (not below 30 seconds), and wait for the old TTL to expire.
2. In Exchange Online PowerShell:

```powershell
Enable-DnssecForVerifiedDomain -DomainName 'contoso.com'
```

It prints `Result`, `DnssecMxValue` and `ErrorData`; note the `DnssecMxValue`.

3. At the DNS host, add an MX record with priority 20 whose host is the `DnssecMxValue` (TTL as low as allowed, not below 30 seconds), keeping the current MX.
4. Check the new MX with the Inbound SMTP Email test of the Microsoft Remote Connectivity Analyzer (https://testconnectivity.microsoft.com/tests/O365InboundSmtp/input); retry if DNS caches still answer the old records.
5. Change the priority of the `mail.protection.outlook.com` MX to 30 and of the new MX to 0.
6. Delete the `mail.protection.outlook.com` MX record, and set the TTL of the new MX to 3600 seconds.
7. Enable inbound SMTP DANE (Microsoft publishes and rotates the TLSA records of its endpoint):

```powershell
Enable-SmtpDaneInbound -DomainName 'contoso.com'
```

Verify with `Get-DnssecStatusForVerifiedDomain -DomainName 'contoso.com'`, `Get-SmtpDaneInboundStatus -DomainName 'contoso.com'` and `mailaudit audit contoso.com`. If a third-party gateway receives the mail, leave the MX at the gateway and change the smart host it relays to into the `DnssecMxValue` instead."#,
        references: &[
            "RFC 7672 (SMTP security via opportunistic DANE TLS)",
            "Microsoft Learn: How SMTP DNS-based Authentication of Named Entities (DANE) works — https://learn.microsoft.com/en-us/purview/how-smtp-dane-works",
            "Microsoft Learn: Enable-DnssecForVerifiedDomain — https://learn.microsoft.com/en-us/powershell/module/exchange/enable-dnssecforverifieddomain",
            "Microsoft Learn: Enable-SmtpDaneInbound — https://learn.microsoft.com/en-us/powershell/module/exchange/enable-smtpdaneinbound",
            MS_DNS_RECORDS,
        ],
    }
    ParkedNotLocked = "PARKED-NOT-LOCKED" {
        code: "SPF014",
        area: Area::Spf,
        severity: Severity::High,
        title: "Domain that sends no mail is not locked down (v=spf1 -all, p=reject)",
        what: "For a domain that sends no mail (it has a null MX, or it is listed as parked), checks for the SPF record `v=spf1 -all` and a DMARC policy of `p=reject`. Fires when either is missing or weaker.",
        why: "Unused domains are favourite spoofing targets: nobody watches them, and receivers have no reason to distrust them. Without `-all` and `p=reject`, mail forged in their name is delivered or merely flagged; locking them down costs two DNS records.",
        fix: r#"Publish `v=spf1 -all` at the domain and `v=DMARC1; p=reject;` at `_dmarc.<domain>`, with a null MX if the domain receives no mail either.

```text
contoso.com.         3600  IN  MX   0 .
contoso.com.         3600  IN  TXT  "v=spf1 -all"
_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.com"
```

The `rua` tag is optional; it shows who tries to spoof the domain. Optionally also revoke DKIM for every selector with a wildcard key record whose `p=` is empty:

```text
*._domainkey.contoso.com.  3600  IN  TXT  "v=DKIM1; p="
```

Leave out the null MX if the domain receives mail but never sends any. Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7208 §5.1 (all)",
            "RFC 7489 §6.3 (the p tag)",
            "RFC 7505 (null MX)",
            "RFC 6376 §3.6.1 (an empty p= means the key has been revoked)",
            "M3AAWG Protecting Parked Domains Best Common Practices",
            MS_SPF,
            MS_DMARC,
        ],
    }
    MtaStsMissing = "MTA-STS-MISSING" {
        code: "TLS001",
        area: Area::Transport,
        severity: Severity::Low,
        title: "No MTA-STS record",
        what: "Looks up the `_mta-sts.<domain>` TXT record. Fires when there is no `v=STSv1` record, so the domain publishes no MTA-STS policy.",
        why: "Without MTA-STS (or DANE), sending servers use TLS only opportunistically: an attacker on the network path can strip STARTTLS or present a false certificate and read or alter inbound mail, and the sender does not notice.",
        fix: r#"Publish an MTA-STS policy at `https://mta-sts.<domain>/.well-known/mta-sts.txt` and a `_mta-sts` TXT record, starting in `testing` mode.

1. Host the policy file over HTTPS, with a valid certificate for `mta-sts.contoso.com`, on any web host; Microsoft 365 does not host it for you:

```text
version: STSv1
mode: testing
mx: *.mail.protection.outlook.com
max_age: 604800
```

List a pattern for every MX the domain uses: `*.mail.protection.outlook.com` for the classic Microsoft 365 MX, the matching `*.<x>-v1.mx.microsoft` pattern for the current one, and the gateway's host names if a gateway receives the mail.

2. Publish the TXT record, and change its `id` every time the policy changes:

```text
_mta-sts.contoso.com.  3600  IN  TXT  "v=STSv1; id=20250101T000000"
```

3. Publish a TLS-RPT record (see TLSRPT-MISSING), read the reports for a few weeks, then set `mode: enforce`, raise `max_age` (for example to 1209600) and change the `id`."#,
        references: &[
            "RFC 8461 §3.1 (MTA-STS TXT records), §3.2 (MTA-STS policies), §5 (policy application)",
            MS_MTA_STS,
        ],
    }
    MtaStsInvalid = "MTA-STS-INVALID" {
        code: "TLS002",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "MTA-STS record or policy is invalid or does not cover every MX",
        what: "Validates the `_mta-sts` TXT record and the policy fetched from `https://mta-sts.<domain>/.well-known/mta-sts.txt`. Fires when either is invalid (bad syntax, no HTTPS or a bad certificate, missing fields) or when the policy's `mx` patterns do not match every MX of the domain.",
        why: "Senders that find the TXT record but no usable policy fall back to opportunistic TLS, so the protection is gone. Worse, in `enforce` mode, an MX that the policy does not cover is one that compliant senders refuse to deliver to, and mail is lost.",
        fix: r#"Correct the policy so that it parses, is served over valid HTTPS and covers every MX, then change the `id` in the `_mta-sts` TXT record.

Check each part:

- TXT at `_mta-sts.contoso.com`: exactly one record, `v=STSv1; id=<1 to 32 letters or digits>`.
- Policy at `https://mta-sts.contoso.com/.well-known/mta-sts.txt`: served with status 200, without a redirect, as `text/plain`, with a certificate valid for `mta-sts.contoso.com`.
- Policy fields: `version: STSv1`, `mode:` (`enforce`, `testing` or `none`), `max_age:` in seconds, and one `mx:` line per pattern. A `*.` wildcard matches exactly one label, so `*.mail.protection.outlook.com` covers `contoso-com.mail.protection.outlook.com` but not a gateway's host names.

After changing the file, change the `id`: senders fetch the policy again only when the `id` changes or their cached copy expires."#,
        references: &[
            "RFC 8461 §3.1 (MTA-STS TXT records), §3.2 (MTA-STS policies), §3.3 (HTTPS policy fetching)",
            "RFC 8461 §4.1 (MX host validation)",
            MS_MTA_STS,
        ],
    }
    TlsrptMissing = "TLSRPT-MISSING" {
        code: "TLS003",
        area: Area::Transport,
        severity: Severity::Low,
        title: "No TLS-RPT record",
        what: "Looks up the `_smtp._tls.<domain>` TXT record. Fires when there is no `v=TLSRPTv1` record.",
        why: "TLS-RPT is how sending servers report failed TLS connections and MTA-STS or DANE policy failures. Without it, an expired certificate, a broken MTA-STS policy or an interception attempt goes unnoticed until mail is lost.",
        fix: r#"Publish a TXT record `v=TLSRPTv1; rua=mailto:<reports address>` at `_smtp._tls.<domain>`.

```text
_smtp._tls.contoso.com.  3600  IN  TXT  "v=TLSRPTv1; rua=mailto:tlsrpt@contoso.com"
```

Reports arrive daily as JSON (usually compressed) from large senders such as Google and Microsoft. A reporting service can receive them instead of a mailbox; `rua` also accepts an `https:` URI."#,
        references: &[
            "RFC 8460 §3 (reporting policy)",
            "RFC 8460 §4 (reporting schema)",
        ],
    }
    DnssecUnsigned = "DNSSEC-UNSIGNED" {
        code: "DNSSEC001",
        area: Area::Transport,
        severity: Severity::Info,
        title: "The domain's zone is not DNSSEC-signed",
        what: "Asks a validating resolver (from the configured trust anchor, the IANA root by default) for the DNSSEC status of the zone that answers for the domain. Fires, as context, when the zone is insecure: its parent delegates it without a DS record, so none of its answers can be validated. Not checked when validation is off (`--no-dnssec`).",
        why: "Without DNSSEC, a sender cannot tell a forged DNS answer from a real one: whoever can spoof or poison DNS can redirect the MX, and no DANE TLSA record can protect inbound mail, because DANE needs signed answers (RFC 7672). Most domains are unsigned, so this is context rather than a fault, but it is the precondition for DANE.",
        fix: r#"Sign the zone at its DNS host and publish the DS record it gives at the registrar; for Microsoft 365's side, see MX-M365-LEGACY.

Signing is done where the domain's DNS is hosted, not in Microsoft 365:

1. At the DNS host, turn on DNSSEC for the zone (most hosts sign and roll the keys themselves once it is on). The host then shows the DS record to publish: key tag, algorithm (13, ECDSAP256SHA256, is the usual choice), digest type 2 and digest.
2. At the registrar, add that DS record to the domain (a registrar that also hosts the DNS may do it by itself, or through CDS/CDNSKEY, RFC 8078). Never publish a DS record before the zone is signed: a DS that matches no key makes the domain bogus (see DNSSEC-BOGUS).
3. Once the parent zone's TTL has passed, check that answers validate and audit again:

```text
delv contoso.com SOA          # prints "; fully validated"
mailaudit audit contoso.com
```

In Microsoft 365, DNSSEC for the mail host is Microsoft's: its `*.mx.microsoft` endpoints are signed. Run `Enable-DnssecForVerifiedDomain -DomainName 'contoso.com'`, move the MX to the `DnssecMxValue` it prints, then run `Enable-SmtpDaneInbound -DomainName 'contoso.com'` (the full order is under MX-M365-LEGACY). The domain's own zone still has to be signed for senders to validate its MX record."#,
        references: &[
            "RFC 4033 (DNS security introduction and requirements)",
            "RFC 4035 §4.3 (determining security status of data)",
            "RFC 7672 §2.2 (DANE TLSA records need secure DNS answers)",
            "RFC 8078 (CDS and CDNSKEY: managing DS records from the parent via the child)",
            MS_SMTP_DANE,
        ],
    }
    DnssecBogus = "DNSSEC-BOGUS" {
        code: "DNSSEC002",
        area: Area::Transport,
        severity: Severity::High,
        title: "DNSSEC validation fails for the domain or an MX host",
        what: "Asks a validating resolver for the DNSSEC status of the zone that answers for the domain and for each MX host. Fires when the status is bogus: the chain of trust exists (the parent publishes a DS record) but does not validate, for example expired or missing signatures, or a DS record that matches no key of the zone.",
        why: "A validating resolver answers SERVFAIL for every name of a bogus zone, so receivers and senders that validate (a large share of the Internet's resolvers do) cannot read the domain's MX, SPF, DKIM or DMARC records: mail to the domain queues and bounces, and its mail may fail authentication. The records are there; they only fail validation, so this is never reported as a missing record.",
        fix: r#"Repair the chain of trust at the DNS host and the registrar: re-sign the zone (or turn signing back on), and make the DS record at the registrar match a key the zone publishes, or remove the DS to turn DNSSEC off cleanly.

1. Find the cause with a DNSSEC debugger (https://dnsviz.net or https://dnssec-analyzer.verisignlabs.com) or `delv contoso.com SOA +vtrace`: expired RRSIG signatures (the signer stopped), a DS at the registrar whose key tag or digest matches no DNSKEY of the zone (a key was rolled or the DNS host changed without updating the DS), or records served unsigned by a secondary server.
2. At the DNS host: turn signing back on, or re-sign the zone so that every RRset has a current signature.
3. At the registrar: replace the DS record with the one the DNS host shows now. When the zone cannot be signed again quickly, delete the DS record instead: the domain then becomes unsigned (DNSSEC-UNSIGNED), which validating resolvers accept, once the DS record's TTL has passed.
4. Check again:

```text
delv contoso.com SOA          # prints "; fully validated"
mailaudit audit contoso.com
```

For an MX host on Microsoft 365's `*.mx.microsoft` endpoint, the zone is Microsoft's: check `Get-DnssecStatusForVerifiedDomain -DomainName 'contoso.com'` and open a support request if the endpoint itself is bogus. If the MX points at another provider, that provider must fix its zone."#,
        references: &[
            "RFC 4033 §5 (bogus: a chain of trust that cannot be established)",
            "RFC 4035 §5.5 (resolver behaviour when signatures do not validate)",
            "RFC 7672 §2.1.1 (DNS errors, bogus and indeterminate responses)",
            MS_SMTP_DANE,
        ],
    }
    DnssecMxUnsigned = "DNSSEC-MX-UNSIGNED" {
        code: "DNSSEC003",
        area: Area::Transport,
        severity: Severity::Info,
        title: "An MX host's zone is not DNSSEC-signed, so DANE cannot protect it",
        what: "Asks a validating resolver for the DNSSEC status of the zone of each MX host (up to ten). Fires, as context, when one or more MX hosts are in an insecure (unsigned) zone; the finding names them.",
        why: "DANE for SMTP applies only to MX hosts whose address and TLSA records are signed (RFC 7672 §2.2): for an MX host in an unsigned zone, senders fall back to unauthenticated opportunistic TLS, which an attacker on the path can strip or intercept unless MTA-STS is enforced.",
        fix: r#"Point the MX at a host in a signed zone: on Microsoft 365, the `*.mx.microsoft` endpoint (see MX-M365-LEGACY); for your own servers, sign the zone of the MX host names at their DNS host.

In Microsoft 365, run `Enable-DnssecForVerifiedDomain -DomainName 'contoso.com'`, move the MX to the `DnssecMxValue` it prints in the order under MX-M365-LEGACY, then run `Enable-SmtpDaneInbound -DomainName 'contoso.com'`; the legacy `mail.protection.outlook.com` endpoint is not signed and cannot be.

For a gateway or an on-premises server, ask the gateway vendor for a DNSSEC-signed MX host name, or sign the zone that holds your MX host names at its DNS host and publish its DS record at the registrar (see DNSSEC-UNSIGNED), then publish TLSA records for each MX (see DANE-TLSA-MISSING).

Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7672 §2.2 (DANE applies to MX hosts with secure TLSA records)",
            "RFC 4035 §4.3 (determining security status of data)",
            MS_SMTP_DANE,
        ],
    }
    DaneTlsaMissing = "DANE-TLSA-MISSING" {
        code: "DANE001",
        area: Area::Transport,
        severity: Severity::Info,
        title: "An MX host in a signed zone publishes no DANE TLSA record",
        what: "For each MX host whose zone is DNSSEC-signed, looks up the TLSA records at `_25._tcp.<mx host>`. Fires, as context, when one or more such hosts have none; the finding names them.",
        why: "A signed MX zone is most of the way to DANE: with TLSA records, DANE-aware senders (including Microsoft 365, Google and most large providers) refuse to deliver unless the MX presents the certificate or key the records name, which defeats STARTTLS stripping and interception. Without them, senders use unauthenticated opportunistic TLS.",
        fix: r#"Publish a `_25._tcp.<mx host>` TLSA record for each MX: `3 1 1` with the SHA-256 digest of the server key, plus a second record for the next key. On Microsoft 365's endpoint, run `Enable-SmtpDaneInbound`.

In Microsoft 365 (MX on the `*.mx.microsoft` endpoint), Microsoft publishes and rolls the TLSA records; turn it on and check it:

```powershell
Enable-SmtpDaneInbound -DomainName 'contoso.com'
Get-SmtpDaneInboundStatus -DomainName 'contoso.com'
```

For your own MX (the zone holding the MX host name must be signed), publish at its DNS host one record for the current key and one for the next, so that a key change never leaves the MX without a matching record (RFC 7671 §8.1):

```text
_25._tcp.mx1.contoso.com.  3600  IN  TLSA  3 1 1 <SHA-256 of the current key's SubjectPublicKeyInfo>
_25._tcp.mx1.contoso.com.  3600  IN  TLSA  3 1 1 <SHA-256 of the next key's SubjectPublicKeyInfo>
```

The digest is `openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256`. A `2 1 1` record for the issuing CA's key next to the `3 1 1` also survives a renewal. Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7672 §2.2 (TLSA records for SMTP), §3.1 (certificate usages for SMTP)",
            "RFC 7671 §8.1 (TLSA publisher requirements: key rollover)",
            "RFC 6698 §2 (the TLSA resource record)",
            MS_SMTP_DANE,
            "Microsoft Learn: Enable-SmtpDaneInbound — https://learn.microsoft.com/en-us/powershell/module/exchange/enable-smtpdaneinbound",
        ],
    }
    DaneTlsaUnusable = "DANE-TLSA-UNUSABLE" {
        code: "DANE002",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "Every TLSA record of an MX host is unusable for SMTP",
        what: "Reads the `_25._tcp.<mx host>` TLSA records of each MX host in a signed zone and checks their parameters against RFC 7672. Fires when none is usable: certificate usage 0 or 1 (PKIX, not for SMTP), an unknown usage, selector or matching type, or a digest of the wrong length.",
        why: "A DANE-aware sender that finds only unusable TLSA records still uses TLS but authenticates nothing (RFC 7672 §3.1.3): the records give no protection while suggesting they do, and some senders delay or refuse the mail. It usually comes from records copied from HTTPS examples, or digests cut short by the DNS host's form.",
        fix: r#"Replace the records with usable ones: `3 1 1` (the SHA-256 of the server key) for the current and the next key, or `3 1 1` plus `2 1 1` for the issuing CA's key.

At the DNS host of the MX host names, delete the TLSA records with usage 0 or 1 or unknown parameters, and publish:

```text
_25._tcp.mx1.contoso.com.  3600  IN  TLSA  3 1 1 <SHA-256 of the current key's SubjectPublicKeyInfo, 64 hex digits>
_25._tcp.mx1.contoso.com.  3600  IN  TLSA  3 1 1 <SHA-256 of the next key's SubjectPublicKeyInfo>
```

A SHA-256 digest (matching type 1) has 64 hexadecimal digits, a SHA-512 digest (matching type 2) 128. In Microsoft 365, the `*.mx.microsoft` endpoint's TLSA records are Microsoft's: if the MX is Microsoft's, delete any TLSA record you published yourself and run `Enable-SmtpDaneInbound -DomainName 'contoso.com'`. Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7672 §3.1.3 (certificate usages 0 and 1 are not for SMTP), §3.1.1, §3.1.2",
            "RFC 7671 §5 (TLSA record parameters), §8.1 (key rollover)",
            "RFC 6698 §2.1 (TLSA RDATA: usage, selector, matching type)",
            MS_SMTP_DANE,
        ],
    }
    DnsLookupFailed = "DNS-LOOKUP-FAILED" {
        code: "DNS001",
        area: Area::Transport,
        severity: Severity::Info,
        title: "A DNS look-up failed; the check's verdict is withheld",
        what: "Raised when a DNS look-up that a check needs times out or fails (SERVFAIL, REFUSED, network error). That check's verdict is withheld rather than reported as a missing record, and the finding takes the area of the withheld check.",
        why: "Receivers run into the same failure: SPF and DMARC then give a temporary error, and mail may be deferred or treated as unauthenticated. Persistent failures usually mean a broken delegation, a DNSSEC signing problem or an unreachable name server; a single timeout can also be a network problem on the auditing side.",
        fix: r#"Run the audit again; if the failure persists, repair the domain's authoritative DNS (delegation, name servers, DNSSEC).

The finding's detail names the look-up that failed. Repeat it:

```powershell
Resolve-DnsName -Type NS -Name 'contoso.com'
Resolve-DnsName -Type TXT -Name '_dmarc.contoso.com' -DnsOnly
mailaudit audit contoso.com
```

Check that every name server listed at the registrar answers for the zone, that the registrar's NS records match the zone's own, and, if the zone is DNSSEC-signed, that the DS record at the registrar matches the current signing key (a mismatch makes validating resolvers answer SERVFAIL)."#,
        references: &[
            "RFC 7208 §4.4 (record lookup: DNS errors give temperror)",
            "RFC 9989 §4.10 (DMARC policy discovery)",
            "RFC 2308 (negative caching: NXDOMAIN and NODATA)",
        ],
    }
    DomainNotFound = "DOMAIN-NOT-FOUND" {
        code: "DNS002",
        area: Area::Transport,
        severity: Severity::High,
        title: "The domain does not exist (NXDOMAIN); nothing else is reported",
        what: "Fires when the DNS answers NXDOMAIN for the domain's own name: the name does not exist, with no record of any type and no name below it. A name that exists without an MX (NODATA) is not this check, and neither is a look-up that failed (DNS-LOOKUP-FAILED). Every other verdict is withheld and the domain gets no score: the records a missing domain lacks say nothing about its security.",
        why: "Usually a typo in the inventory (`contosso.com` for `contoso.com`): the real domain then goes unaudited while the report seems complete. Otherwise the registration has lapsed or the delegation was removed: mail to and from the domain fails, and a lapsed domain that was once used can be registered by anyone, who then receives its mail and password resets, and can send as it.",
        fix: r#"Check the spelling of the domain in the inventory or the input file; if it is right, check its registration and delegation at the registrar.

```powershell
Resolve-DnsName -Type NS -Name 'contoso.com'
Resolve-DnsName -Type SOA -Name 'contoso.com'
```

- A typo: correct the name (`mailaudit domain remove contosso.com`, then `mailaudit domain add contoso.com`) and audit again.
- A lapsed registration of a domain still in use (an accepted domain in Microsoft 365, addresses in use): renew it at the registrar at once, before someone else registers it.
- A domain no longer in use: remove it from the inventory and from the tenant's accepted domains (`Remove-AcceptedDomain` after moving its addresses), and consider keeping the registration, locked down (`v=spf1 -all`, DMARC `p=reject`, null MX), so that nobody else can take it over."#,
        references: &[
            "RFC 1035 §4.1.1 (RCODE 3, name error: the domain name does not exist)",
            "RFC 8020 (NXDOMAIN: there really is nothing underneath)",
            "RFC 2308 §2.1 (NXDOMAIN and NODATA)",
            MS_DNS_RECORDS,
        ],
    }
    RelayOpen = "RELAY-OPEN" {
        code: "SMTP001",
        area: Area::Connectors,
        severity: Severity::Critical,
        title: "Direct Send spoofing is possible: the tenant accepted unauthenticated mail from its own domain",
        what: "Connects without authentication to the domain's inbound endpoint on port 25 (also the tenant's Microsoft 365 endpoint behind a gateway, when known) and offers `MAIL FROM` an address of the domain and `RCPT TO` a mailbox of the domain. Fires when the recipient is accepted. The probe then sends RSET and QUIT, never DATA, so nothing is delivered.",
        why: "Anyone on the Internet can then deliver mail that appears to come from a colleague (an internal-looking invoice, voicemail or password notice) straight into the tenant's mailboxes, bypassing any gateway in front of Microsoft 365. Such Direct Send phishing campaigns were widely reported in 2025.",
        fix: r#"Reject Direct Send in Exchange Online with `Set-OrganizationConfig -RejectDirectSend $true`, after giving legitimate unauthenticated senders a partner connector.

1. Inventory the devices and applications that send as the domain to `<label>.mail.protection.outlook.com` without authenticating (scanners, printers, line-of-business applications, SaaS). Move each to authenticated submission, or create a partner inbound connector restricted to its IP address or certificate:

```powershell
New-InboundConnector -Name 'Scanner 203.0.113.10' -ConnectorType Partner -SenderDomains 'contoso.com' -SenderIPAddresses '203.0.113.10' -RestrictDomainsToIPAddresses $true
```

2. Reject Direct Send:

```powershell
Set-OrganizationConfig -RejectDirectSend $true
Get-OrganizationConfig | Format-List RejectDirectSend
```

3. Run the probe again (`mailaudit audit contoso.com`): the endpoint should now refuse with `550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources`.

Until this is done, DMARC `p=reject` and an anti-spoofing transport rule (see EXO-ANTISPOOF-RULE-MISSING) reduce the risk. If the MX is a third-party gateway, also lock the tenant down to the gateway (see MX-GATEWAY)."#,
        references: &[
            MS_DIRECT_SEND_BLOG,
            MS_MFD,
            MS_SET_ORGCONFIG,
            CIS_DIRECT_SEND,
            MAESTER_DIRECT_SEND,
        ],
    }
    RelayInconclusive = "RELAY-INCONCLUSIVE" {
        code: "SMTP002",
        area: Area::Connectors,
        severity: Severity::Info,
        title: "The Direct Send relay test could not decide",
        what: "Raised when the Direct Send probe reaches no verdict: no connection on port 25, greylisting, an unknown recipient (`5.4.1 … Access denied`), a recipient outside the tenant (`5.7.64 TenantAttribution`), or the probe's own address refused for its reputation.",
        why: "Context, not a problem in itself: the tenant may or may not accept spoofed Direct Send mail, so RELAY-OPEN is neither confirmed nor ruled out. Many networks block outbound port 25, which is the most common cause.",
        fix: r#"Run the relay test again from a network that allows outbound port 25, with an existing mailbox as recipient, or check `RejectDirectSend` in the tenant's configuration.

```powershell
Get-OrganizationConfig | Format-List RejectDirectSend
```

If `RejectDirectSend` is `True`, Direct Send spoofing is already blocked. Otherwise read the probe transcript in the finding's evidence: `5.4.1` and `5.7.64` mean the recipient address was wrong, so use a real mailbox of the domain; a `4xx` reply (greylisting) usually clears on a later run; an IP reputation refusal (Spamhaus, `5.7.606`, `5.7.708`) means the probe host's address is listed, so run it from another host."#,
        references: &[
            MS_DIRECT_SEND_BLOG,
            "RFC 5321 §4.2 (SMTP replies)",
            "RFC 3463 (enhanced mail system status codes)",
        ],
    }
    StarttlsMissing = "STARTTLS-MISSING" {
        code: "SMTP003",
        area: Area::Transport,
        severity: Severity::High,
        title: "An MX does not offer STARTTLS",
        what: "Connects to each MX on port 25 and reads its EHLO reply. Fires when an MX does not advertise STARTTLS.",
        why: "Mail to that MX crosses the Internet in clear text, where anyone on the path can read or alter it; MTA-STS cannot be enforced, and senders that require TLS will not deliver at all.",
        fix: r#"Enable STARTTLS with a valid certificate on the MX, or point the MX at Microsoft 365, which always offers it.

Exchange Online's own endpoints (`*.mail.protection.outlook.com`, `*.mx.microsoft`) always offer STARTTLS, so this finding concerns a third-party gateway or an on-premises server. Turn TLS on for inbound SMTP there; on Exchange Server, assign a certificate for the MX host name to the SMTP service with the Exchange Management Shell's Enable-ExchangeCertificate cmdlet (its `-Services` parameter set to SMTP). If the server is no longer needed, replace the MX with the Microsoft 365 MX from the admin center (Settings > Domains)."#,
        references: &[
            "RFC 3207 (SMTP service extension for secure SMTP over TLS)",
            "RFC 8461 §5 (MTA-STS policy application)",
            "RFC 7672 (SMTP security via opportunistic DANE TLS)",
        ],
    }
    TlsCertInvalid = "TLS-CERT-INVALID" {
        code: "SMTP004",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "An MX certificate is expired, untrusted or does not name the host",
        what: "Inspects the certificate each MX presents after STARTTLS. Fires when it is expired, self-signed or otherwise untrusted, or does not name the MX host.",
        why: "Most senders still deliver despite a bad certificate, but senders that enforce MTA-STS will not, so their mail bounces or queues; and a bad certificate makes an interception indistinguishable from the real server.",
        fix: r#"Install a certificate from a public certification authority that names the MX host, and renew it automatically before it expires.

The certificate's subject alternative names must include the host name in the MX record (for example `mx1.contoso.com`), and the server must send the complete chain. Exchange Online's own endpoints use certificates managed by Microsoft, so this finding concerns a gateway or an on-premises server; on Exchange Server, import the new certificate and assign it with the Exchange Management Shell's Enable-ExchangeCertificate cmdlet (its `-Services` parameter set to SMTP)."#,
        references: &[
            "RFC 8461 §4.2 (recipient MTA certificate validation)",
            "RFC 9525 (service identity in TLS)",
            "RFC 3207 (SMTP service extension for secure SMTP over TLS)",
        ],
    }
    TlsProtocolOld = "TLS-PROTOCOL-OLD" {
        code: "SMTP005",
        area: Area::Transport,
        severity: Severity::Medium,
        title: "An MX accepts TLS below 1.2",
        what: "Would fire when an MX completes a TLS 1.0 or TLS 1.1 handshake after STARTTLS. mailaudit's TLS stack (rustls) cannot speak TLS below 1.2, so this check is not performed yet and is never raised; the negotiated version of each MX is shown in the relay-test report instead.",
        why: "TLS 1.0 and 1.1 are deprecated and have known weaknesses; accepting them exposes mail to downgrade by an active attacker and fails compliance scans and cyber-insurance questionnaires.",
        fix: r#"Disable TLS 1.0 and 1.1 on the MX, so that only TLS 1.2 and 1.3 are offered.

Configure this on the gateway or on-premises server that the MX names (on Exchange Server, through the Windows SCHANNEL settings that Microsoft's Exchange Server TLS guidance describes). Check the senders first: a few old devices and partners only speak TLS 1.0 and will then deliver without encryption or fail."#,
        references: &[
            "RFC 8996 (deprecating TLS 1.0 and TLS 1.1)",
            "RFC 9325 (recommendations for secure use of TLS)",
        ],
    }
    DaneTlsaMismatch = "DANE-TLSA-MISMATCH" {
        code: "SMTP006",
        area: Area::Transport,
        severity: Severity::High,
        title: "An MX's TLSA records match no certificate it presents",
        what: "Connects to each MX with usable DANE TLSA records on port 25, starts TLS and compares the chain it presents with the records (RFC 7672 §3.1: usage 3 against the server certificate, usage 2 against the CA certificates of the chain; selector and matching type as published). Fires when no usable record matches.",
        why: "DANE-validating senders (Microsoft 365, Google and most large providers among them) refuse to deliver to an MX whose certificate matches none of its TLSA records: mail to the domain queues and bounces. It usually follows a certificate or key change without the TLSA records being updated first.",
        fix: r#"Publish TLSA records that match the MX's current certificate or key, and keep a record for the next key so that the next change does not break delivery.

At the DNS host of the MX host names, publish a `3 1 1` record with the SHA-256 digest of the key the MX uses now (or restore the previous certificate until the records are updated), then remove the stale record once its TTL has passed:

```text
_25._tcp.mx1.contoso.com.  3600  IN  TLSA  3 1 1 <SHA-256 of the current key's SubjectPublicKeyInfo>
```

The digest of the key the server presents: `openssl s_client -starttls smtp -connect mx1.contoso.com:25 </dev/null | openssl x509 -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256`. Change keys in this order (RFC 7671 §8.1): publish the new key's record, wait for the TTL, install the new certificate, then delete the old record.

In Microsoft 365, the `*.mx.microsoft` endpoint's TLSA records are Microsoft's: delete any TLSA record you published yourself for it, check `Get-SmtpDaneInboundStatus -DomainName 'contoso.com'`, and open a support request if the mismatch persists. Verify with `mailaudit audit contoso.com`."#,
        references: &[
            "RFC 7672 §3.1 (TLSA records for SMTP: DANE-EE and DANE-TA), §2.2",
            "RFC 7671 §5.1 (DANE-EE), §5.2 (DANE-TA), §8.1 (key rollover)",
            "RFC 6698 §2.1 (TLSA RDATA)",
            MS_SMTP_DANE,
        ],
    }
    ExoDirectsendAllowed = "EXO-DIRECTSEND-ALLOWED" {
        code: "EXO001",
        area: Area::Connectors,
        severity: Severity::High,
        title: "Direct Send is not rejected (RejectDirectSend is not true)",
        what: "Reads `RejectDirectSend` from the tenant's `Get-OrganizationConfig` export. Fires when it is not `true`, including older exports where the property is absent.",
        why: "While Direct Send is accepted, anyone can connect to the tenant's Microsoft 365 endpoint and deliver mail from the tenant's own domain to its users without authenticating, bypassing any gateway; this internal-looking phishing was widely abused in 2025. The setting is off by default.",
        fix: r#"Run `Set-OrganizationConfig -RejectDirectSend $true`, after creating partner inbound connectors for the scanners and applications that legitimately use Direct Send.

1. Inventory the devices and applications that send as the tenant's domains to `<label>.mail.protection.outlook.com` without authenticating (scanners, printers, line-of-business applications, SaaS). Move each to authenticated submission, or create a partner inbound connector restricted to its IP address or certificate:

```powershell
New-InboundConnector -Name 'Scanner 203.0.113.10' -ConnectorType Partner -SenderDomains 'contoso.com' -SenderIPAddresses '203.0.113.10' -RestrictDomainsToIPAddresses $true
```

2. Reject Direct Send and check the setting:

```powershell
Set-OrganizationConfig -RejectDirectSend $true
Get-OrganizationConfig | Format-List RejectDirectSend
```

3. Confirm from outside with the Direct Send probe (`mailaudit audit contoso.com`): it should now report a `5.7.68 TenantInboundAttribution` refusal instead of RELAY-OPEN."#,
        references: &[
            MS_DIRECT_SEND_BLOG,
            MS_SET_ORGCONFIG,
            MS_MFD,
            CIS_DIRECT_SEND,
            MAESTER_DIRECT_SEND,
        ],
    }
    ExoConnectorUnrestricted = "EXO-CONNECTOR-UNRESTRICTED" {
        code: "EXO002",
        area: Area::Connectors,
        severity: Severity::Critical,
        title: "A partner inbound connector accepts its sender domains from anywhere",
        what: "Reads the tenant's inbound connectors. Fires for an enabled partner connector that lists sender domains but restricts them neither to its IP addresses (`RestrictDomainsToIPAddresses` with `SenderIPAddresses`) nor to a certificate (`RestrictDomainsToCertificate` with `TlsSenderCertificateName`).",
        why: "Such a connector trusts anyone who merely claims one of its sender domains, which any attacker can do: if those are the tenant's own domains or `*`, spoofed mail can be treated as if it came from the trusted partner and get past the controls meant for anonymous mail.",
        fix: r#"Restrict the connector to the partner's IP addresses (`-RestrictDomainsToIPAddresses $true -SenderIPAddresses …`) or certificate (`-RestrictDomainsToCertificate $true -TlsSenderCertificateName …`), or disable it.

```powershell
Get-InboundConnector | Format-List Name,Enabled,ConnectorType,SenderDomains,SenderIPAddresses,RestrictDomainsToIPAddresses,RestrictDomainsToCertificate,TlsSenderCertificateName
```

Restrict it by IP address:

```powershell
$o = Get-InboundConnector -Identity 'Fabrikam partner'; Set-InboundConnector -Identity 'Fabrikam partner' -SenderIPAddresses (@($o.SenderIPAddresses) + @('203.0.113.0/24') | Select-Object -Unique) -RestrictDomainsToIPAddresses $true
```

or by certificate (the partner must then send over TLS with a certificate that names that host):

```powershell
Set-InboundConnector -Identity 'Fabrikam partner' -RequireTls $true -RestrictDomainsToCertificate $true -TlsSenderCertificateName 'mail.fabrikam.com'
```

If nobody knows what the connector is for, disable it and watch for complaints: `Set-InboundConnector -Identity 'Fabrikam partner' -Enabled $false`."#,
        references: &[
            MS_PARTNER_CONNECTORS,
            MS_SET_INBOUNDCONNECTOR,
            MS_DIRECT_SEND_BLOG,
        ],
    }
    ExoConnectorNoTls = "EXO-CONNECTOR-NO-TLS" {
        code: "EXO003",
        area: Area::Connectors,
        severity: Severity::Medium,
        title: "A partner inbound connector does not require TLS",
        what: "Reads the tenant's inbound connectors. Fires for an enabled partner connector (`ConnectorType` Partner, or absent) whose `RequireTls` is false. `RequireTls` is a partner connector's setting: an OnPremises connector is not reported (its TLS is governed by its certificate settings).",
        why: "Mail arriving through that connector may travel in clear text, readable and modifiable on the way; for a partner connector this is often the most sensitive mail flow. Requiring TLS also lets the connector check the sender's certificate.",
        fix: r#"Require TLS on the connector: `Set-InboundConnector -Identity '<name>' -RequireTls $true`.

```powershell
Get-InboundConnector | Format-List Name,Enabled,ConnectorType,RequireTls,TlsSenderCertificateName
Set-InboundConnector -Identity 'Fabrikam partner' -RequireTls $true
```

Confirm first that the partner's server supports TLS (send a test message and check its message trace): mail from a server that cannot negotiate TLS is refused once TLS is required."#,
        references: &[
            MS_PARTNER_CONNECTORS,
            MS_SET_INBOUNDCONNECTOR,
            "RFC 3207 (SMTP service extension for secure SMTP over TLS)",
        ],
    }
    ExoDkimDisabled = "EXO-DKIM-DISABLED" {
        code: "EXO004",
        area: Area::Dkim,
        severity: Severity::High,
        title: "DKIM signing is missing or disabled for an accepted domain",
        what: "Matches each accepted domain of the tenant export with its DKIM signing configuration (`Get-DkimSigningConfig`). Fires when a domain has none, or has one that is not enabled.",
        why: "Mail from that domain is then signed only with the tenant's `onmicrosoft.com` domain, which does not align with the From address: DMARC rests on SPF alone, breaks on forwarding, and `p=reject` cannot be enforced safely.",
        fix: r#"Create and enable the domain's DKIM signing configuration: `New-DkimSigningConfig` if it has none, publish the two selector CNAMEs, then `Set-DkimSigningConfig -Identity '<domain>' -Enabled $true`.

1. Create the configuration (skip if it exists) and read the CNAME targets:

```powershell
New-DkimSigningConfig -DomainName 'contoso.com' -Enabled $false
Get-DkimSigningConfig -Identity 'contoso.com' | Format-List Selector1CNAME,Selector2CNAME
```

2. Publish `selector1._domainkey.contoso.com` and `selector2._domainkey.contoso.com` as CNAMEs with exactly those values.

3. Enable signing:

```powershell
Set-DkimSigningConfig -Identity 'contoso.com' -Enabled $true
```

An accepted domain that never sends mail still benefits from DKIM; otherwise lock it down (see PARKED-NOT-LOCKED)."#,
        references: &[
            MS_DKIM,
            SCUBA_DKIM,
            "ORCA-108 (DKIM signing is set up for all custom domains)",
            "Microsoft Learn: New-DkimSigningConfig — https://learn.microsoft.com/en-us/powershell/module/exchange/new-dkimsigningconfig",
        ],
    }
    ExoAntispoofRuleMissing = "EXO-ANTISPOOF-RULE-MISSING" {
        code: "EXO005",
        area: Area::Antispoof,
        severity: Severity::High,
        title: "No transport rule rejects external mail using an accepted domain",
        what: "Looks through the tenant's transport rules for an enabled rule that rejects mail from outside the organization whose sender domain is one of the accepted domains. Fires when there is none.",
        why: "Defence in depth against exact-domain spoofing: while DMARC is not at `p=reject`, or when mail arrives by Direct Send or through a gateway that breaks SPF, mail claiming to come from a colleague can reach users. An explicit rule refuses it whatever the sender's DMARC result.",
        fix: r#"Create a transport rule that rejects mail from outside the organization using the tenant's domains, in audit mode first, then enforce it.

```powershell
New-TransportRule -Name 'Reject spoofed contoso.com' -FromScope NotInOrganization -SenderDomainIs 'contoso.com' -SenderAddressLocation HeaderOrEnvelope -RejectMessageEnhancedStatusCode 5.7.1 -RejectMessageReasonText 'External senders may not use contoso.com' -Mode Audit
```

1. List every legitimate external service that sends as the domain (marketing, CRM, invoicing) and exempt it, for example by its sending IP range with `-ExceptIfSenderIpRanges 203.0.113.0/24`, or route it through a partner connector.
2. Leave the rule in audit mode for one to two weeks and check the Exchange transport rule report and message trace for legitimate matches.
3. Enforce it:

```powershell
Set-TransportRule -Identity 'Reject spoofed contoso.com' -Mode Enforce
```

`-SenderDomainIs` takes a list: include every accepted domain."#,
        references: &[
            MS_MAIL_FLOW_RULES,
            "Microsoft Learn: New-TransportRule — https://learn.microsoft.com/en-us/powershell/module/exchange/new-transportrule",
            "Microsoft Learn: Anti-spoofing protection in EOP — https://learn.microsoft.com/en-us/defender-office-365/anti-spoofing-protection-about",
        ],
    }
    ExoAntispoofRuleAudit = "EXO-ANTISPOOF-RULE-AUDIT" {
        code: "EXO006",
        area: Area::Antispoof,
        severity: Severity::Medium,
        title: "The anti-spoofing transport rule is in audit mode or disabled",
        what: "Fires when the anti-spoofing transport rule exists but is disabled (`State` Disabled) or only audits (`Mode` Audit or AuditAndNotify), so it takes no action.",
        why: "A rule in audit mode only logs its matches, and a disabled rule does nothing: spoofed mail is still delivered. Rules are often left in audit mode after testing and forgotten.",
        fix: r#"Enforce the rule with `Set-TransportRule -Identity '<name>' -Mode Enforce`, and enable it with `Enable-TransportRule -Identity '<name>'` if it is disabled.

```powershell
Get-TransportRule | Format-Table Name,State,Mode,FromScope,SenderDomainIs
Set-TransportRule -Identity 'Reject spoofed contoso.com' -Mode Enforce
Enable-TransportRule -Identity 'Reject spoofed contoso.com'
```

Before enforcing, review what the rule matched in audit mode (Exchange transport rule report, message trace) and add exceptions for legitimate senders, for example `-ExceptIfSenderIpRanges`."#,
        references: &[
            MS_MAIL_FLOW_RULES,
            "Microsoft Learn: Set-TransportRule — https://learn.microsoft.com/en-us/powershell/module/exchange/set-transportrule",
        ],
    }
    ExoSpamBypassOwnDomain = "EXO-SPAM-BYPASS-OWN-DOMAIN" {
        code: "EXO007",
        area: Area::Antispoof,
        severity: Severity::High,
        title: "A transport rule bypasses spam filtering for mail from an accepted domain",
        what: "Fires when a transport rule sets the spam confidence level to -1 (`SetSCL -1`, bypass spam filtering) for mail whose sender domain is one of the tenant's accepted domains.",
        why: "Attackers forge the tenant's own domain as the sender, so such a rule waves spoofed and phishing mail past spam filtering straight into the inbox. These rules are usually added to stop a scanner or an application from being sent to junk.",
        fix: r#"Remove the rule, or narrow it to specific sending IP addresses, and let legitimate senders through by authenticating them instead.

```powershell
Get-TransportRule | Where-Object { "$($_.SetSCL)" -eq "-1" } | Format-List Name,State,FromScope,SenderDomainIs,SenderIpRanges
Remove-TransportRule -Identity 'Bypass spam for contoso.com'
```

For the sender the rule was written for: make it pass SPF or DKIM for the domain, send it through a partner inbound connector restricted to its IP address, or add a spoofed-sender allow entry in the Tenant Allow/Block List (Defender portal: Email & collaboration > Policies & rules > Threat policies > Tenant Allow/Block Lists > Spoofed senders). If a bypass must stay, make it depend on the sender's IP address (`-SenderIpRanges`), never on the sender domain alone."#,
        references: &[
            "ORCA-118-4 (no transport rule sets SCL -1 for the organization's own domains)",
            "Microsoft Learn: Use mail flow rules to set the spam confidence level (SCL) in messages in Exchange Online — https://learn.microsoft.com/en-us/exchange/security-and-compliance/mail-flow-rules/use-rules-to-set-scl",
            "Microsoft Learn: Manage your allows and blocks in the Tenant Allow/Block List — https://learn.microsoft.com/en-us/defender-office-365/tenant-allow-block-list-about",
        ],
    }
    ExoImpersonationUsersOff = "EXO-IMPERSONATION-USERS-OFF" {
        code: "EXO008",
        area: Area::Impersonation,
        severity: Severity::Medium,
        title: "No anti-phishing policy protects targeted users",
        what: "Reads the tenant's anti-phishing policies. Fires when no enabled policy has user impersonation protection on (`EnableTargetedUserProtection`) with users listed in `TargetedUsersToProtect`.",
        why: "User impersonation protection catches mail from look-alike addresses that use the name of an executive or finance contact (`Jane Doe <jane.doe@contoso-mail.com>`), the core of CEO fraud and business email compromise. DMARC cannot stop it, because the attacker sends from a domain of their own. It needs Defender for Office 365 Plan 1 or 2.",
        fix: r#"Turn on user impersonation protection for key users: `Set-AntiPhishPolicy -Identity '<policy>' -EnableTargetedUserProtection $true -TargetedUsersToProtect @{Add='<display name;address>'}`.

```powershell
Set-AntiPhishPolicy -Identity 'Office365 AntiPhish Default' -EnableTargetedUserProtection $true -TargetedUsersToProtect @{Add='Jane Doe;jane.doe@contoso.com','John Smith;john.smith@contoso.com'} -TargetedUserProtectionAction Quarantine
```

Protect the people most likely to be impersonated: executives, finance, HR and IT administrators (up to 350 per policy). Alternatively, apply the Standard or Strict preset security policy in the Defender portal and add the users to its impersonation protection. Without a Defender for Office 365 licence these settings are unavailable: record the risk instead."#,
        references: &[
            MS_ANTIPHISH_ABOUT,
            MS_ANTIPHISH_CONFIGURE,
            MS_SET_ANTIPHISH,
            "CISA ScubaGear MS.DEFENDER.2.1 (user impersonation protection for sensitive accounts)",
        ],
    }
    ExoImpersonationDomainsOff = "EXO-IMPERSONATION-DOMAINS-OFF" {
        code: "EXO009",
        area: Area::Impersonation,
        severity: Severity::Medium,
        title: "No anti-phishing policy protects the organization's domains",
        what: "Reads the tenant's anti-phishing policies. Fires when no enabled policy has `EnableOrganizationDomainsProtection` on, so mail from look-alikes of the organization's own domains is not flagged.",
        why: "Attackers register look-alike domains (`contoso-invoices.com`, `c0ntoso.com`) and send from them with valid SPF, DKIM and DMARC; only impersonation protection compares the sender's domain with the organization's own. It needs Defender for Office 365 Plan 1 or 2.",
        fix: r#"Turn on domain impersonation protection for the organization's domains: `Set-AntiPhishPolicy -Identity '<policy>' -EnableOrganizationDomainsProtection $true`.

```powershell
Set-AntiPhishPolicy -Identity 'Office365 AntiPhish Default' -EnableOrganizationDomainsProtection $true -TargetedDomainProtectionAction Quarantine
```

Add the domains of key partners as well (suppliers, the bank, the MSP itself):

```powershell
$o = Get-AntiPhishPolicy -Identity 'Office365 AntiPhish Default'; Set-AntiPhishPolicy -Identity 'Office365 AntiPhish Default' -EnableTargetedDomainsProtection $true -TargetedDomainsToProtect (@($o.TargetedDomainsToProtect) + @('fabrikam.com','tailspintoys.com') | Select-Object -Unique)
```

The Standard and Strict preset security policies protect the organization's own domains as well."#,
        references: &[
            MS_ANTIPHISH_ABOUT,
            MS_ANTIPHISH_CONFIGURE,
            MS_SET_ANTIPHISH,
            "CISA ScubaGear MS.DEFENDER.2.2 (domain impersonation protection for the organization's own domains)",
        ],
    }
    ExoMailboxIntelligenceOff = "EXO-MAILBOX-INTELLIGENCE-OFF" {
        code: "EXO010",
        area: Area::Impersonation,
        severity: Severity::Medium,
        title: "Mailbox intelligence impersonation protection is off",
        what: "Reads the tenant's anti-phishing policies. Fires when no enabled policy has both mailbox intelligence (`EnableMailboxIntelligence`) and mailbox intelligence based impersonation protection (`EnableMailboxIntelligenceProtection`) turned on.",
        why: "Mailbox intelligence learns each user's usual correspondents, which lets Defender catch impersonation of people who are not on the protected-users list (a supplier's accountant, a new manager) and reduces false positives. Without its protection action, what it detects is not acted on.",
        fix: r#"Turn on mailbox intelligence and its protection: `Set-AntiPhishPolicy -Identity '<policy>' -EnableMailboxIntelligence $true -EnableMailboxIntelligenceProtection $true`.

```powershell
Set-AntiPhishPolicy -Identity 'Office365 AntiPhish Default' -EnableMailboxIntelligence $true -EnableMailboxIntelligenceProtection $true -MailboxIntelligenceProtectionAction MoveToJmf
```

`MoveToJmf` delivers detected messages to the Junk Email folder; `Quarantine` is stricter. The Standard and Strict preset security policies turn both settings on. Requires Defender for Office 365 Plan 1 or 2."#,
        references: &[MS_ANTIPHISH_ABOUT, MS_ANTIPHISH_CONFIGURE, MS_SET_ANTIPHISH],
    }
    ExoSmtpAuthEnabled = "EXO-SMTP-AUTH-ENABLED" {
        code: "EXO011",
        area: Area::Connectors,
        severity: Severity::Medium,
        title: "SMTP client authentication is enabled organisation-wide",
        what: "Reads `SmtpClientAuthenticationDisabled` from the tenant's `Get-TransportConfig` export. Fires when it is false, so authenticated SMTP submission (SMTP AUTH) is allowed for every mailbox that does not override it.",
        why: "SMTP AUTH is mostly used with Basic authentication (user name and password), which bypasses MFA and Conditional Access and is a favourite target of password spraying; a compromised account can then send phishing from the real domain. Microsoft is retiring Basic authentication for SMTP AUTH.",
        fix: r#"Disable SMTP AUTH for the organisation with `Set-TransportConfig -SmtpClientAuthenticationDisabled $true`, and re-enable it only on the mailboxes that need it.

```powershell
Set-TransportConfig -SmtpClientAuthenticationDisabled $true
Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled
```

Find the devices and applications that still use SMTP AUTH (the SMTP AUTH clients report in the Exchange admin center) and move them to another method (Microsoft Graph, OAuth, or a partner connector), or allow SMTP AUTH on their own mailbox only:

```powershell
Set-CASMailbox -Identity 'scanner@contoso.com' -SmtpClientAuthenticationDisabled $false
```"#,
        references: &[
            "Microsoft Learn: Enable or disable authenticated client SMTP submission (SMTP AUTH) in Exchange Online — https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
            "Microsoft Learn: Set-TransportConfig — https://learn.microsoft.com/en-us/powershell/module/exchange/set-transportconfig",
            "CISA ScubaGear MS.EXO.5.1 (SMTP AUTH is disabled)",
        ],
    }
    ExoAutoforwardExternal = "EXO-AUTOFORWARD-EXTERNAL" {
        code: "EXO012",
        area: Area::Connectors,
        severity: Severity::Medium,
        title: "Automatic forwarding to external recipients is allowed",
        what: "Reads the tenant's outbound spam filter policies. Fires when one allows automatic forwarding to external recipients (`AutoForwardingMode` On; the default, Automatic, is system-controlled and blocks it).",
        why: "Attackers who take over a mailbox add an inbox rule or a forwarding address that silently copies its mail to an outside address, to steal data and prepare invoice fraud; the forwarding survives a password reset. Blocking automatic external forwarding cuts off this persistence.",
        fix: r#"Block automatic external forwarding with `Set-HostedOutboundSpamFilterPolicy -Identity 'Default' -AutoForwardingMode Off`, and give the few users who need it a separate policy.

```powershell
Set-HostedOutboundSpamFilterPolicy -Identity 'Default' -AutoForwardingMode Off
```

For approved exceptions, create a policy scoped to those users:

```powershell
New-HostedOutboundSpamFilterPolicy -Name 'Allow external forwarding' -AutoForwardingMode On
New-HostedOutboundSpamFilterRule -Name 'Allow external forwarding' -HostedOutboundSpamFilterPolicy 'Allow external forwarding' -From 'user@contoso.com'
```

Then look for forwarding already in place, on mailboxes and in inbox rules, and remove what nobody approved:

```powershell
Get-Mailbox -ResultSize Unlimited | Where-Object { $_.ForwardingSmtpAddress } | Format-Table Name,ForwardingSmtpAddress
```"#,
        references: &[
            "Microsoft Learn: Control automatic external email forwarding in Microsoft 365 — https://learn.microsoft.com/en-us/defender-office-365/outbound-spam-policies-external-email-forwarding",
            "Microsoft Learn: Set-HostedOutboundSpamFilterPolicy — https://learn.microsoft.com/en-us/powershell/module/exchange/set-hostedoutboundspamfilterpolicy",
            "CISA ScubaGear MS.EXO.1.1 (automatic forwarding to external domains is disabled)",
        ],
    }
}

/// The Markdown reference page of every check (`docs/checks.md`), grouped by [`Source`] in
/// catalogue order: for each check an `## ID` heading, its code, area, severity and title, then
/// what it checks, why it matters, how to fix it in Microsoft 365, and references.
///
/// The page is generated, never edited by hand; the test `docs_checks_md_is_current` fails when
/// the committed file differs and rewrites it when run with `UPDATE_DOCS=1`.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Check reference\n\n");
    out.push_str(
        "<!-- Generated from crates/mailaudit-core/src/checks.rs by render_markdown(). Do not edit: \
         regenerate with `UPDATE_DOCS=1 cargo test -p mailaudit-core docs_checks_md_is_current`. -->\n\n",
    );
    out.push_str(
        "Every finding mailaudit reports carries one of these stable identifiers (and a short code). \
         Identifiers never change meaning once released. Severity follows the remediation \
         priorities: **critical** (do now), **high** (this week), **medium** (this month), **low**, \
         and **info** (context, never counted against a score).\n\n",
    );
    out.push_str("| ID | code | area | severity | title |\n|---|---|---|---|---|\n");
    for info in CATALOGUE {
        let id = info.id.as_str();
        out.push_str(&format!(
            "| [{id}](#{anchor}) | `{code}` | {area} | {severity} | {title} |\n",
            anchor = id.to_ascii_lowercase(),
            code = info.code,
            area = area_label(info),
            severity = info.severity,
            title = info.title.replace('|', "\\|"),
        ));
    }
    for source in Source::ALL {
        out.push_str(&format!("\n# {}\n", source.heading()));
        for info in CATALOGUE.iter().filter(|c| c.source() == source) {
            out.push_str(&format!("\n## {}\n\n", info.id));
            out.push_str(&format!(
                "Code `{}` · area {} · severity **{}**\n\n",
                info.code,
                area_label(info),
                info.severity
            ));
            out.push_str(&format!("**{}**\n\n", info.title));
            out.push_str(&format!("### What it checks\n\n{}\n\n", info.what.trim()));
            out.push_str(&format!("### Why it matters\n\n{}\n\n", info.why.trim()));
            out.push_str(&format!(
                "### How to fix it in Microsoft 365\n\n{}\n\n",
                info.fix.trim()
            ));
            out.push_str("### References\n\n");
            for reference in info.references {
                out.push_str(&format!("- {}\n", reference_markdown(reference)));
            }
        }
    }
    out
}

/// The area as shown in the reference page; DNS-LOOKUP-FAILED takes the withheld check's area.
fn area_label(info: &CheckInfo) -> String {
    if info.id == CheckId::DnsLookupFailed {
        "(the withheld check's area)".to_string()
    } else {
        format!("`{}`", info.area)
    }
}

/// `"Title — https://…"` becomes a Markdown link; anything else is kept as it is.
fn reference_markdown(reference: &str) -> String {
    match reference.rsplit_once(" — ") {
        Some((title, url)) if url.starts_with("https://") && !url.contains(char::is_whitespace) => {
            format!("[{title}]({url})")
        }
        _ => reference.to_string(),
    }
}

impl CheckId {
    /// Everything documented about this check.
    pub fn info(self) -> &'static CheckInfo {
        CATALOGUE
            .iter()
            .find(|c| c.id == self)
            .expect("every CheckId has a catalogue entry (tested)")
    }

    /// All identifiers, in catalogue order.
    pub fn all() -> impl Iterator<Item = CheckId> {
        CATALOGUE.iter().map(|c| c.id)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
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

/// The checks whose identifier or code is closest to `input`, a name that matched none (for
/// "did you mean …?"): case is ignored, and a check is close when its ID or code is at most a
/// couple of edits away (one for names of up to four characters, more for longer ones). The
/// closest are returned, in catalogue order; none when nothing is close.
pub fn suggest(input: &str) -> Vec<CheckId> {
    let input = input.trim().to_ascii_uppercase();
    if input.is_empty() {
        return Vec::new();
    }
    let limit = match input.chars().count() {
        0..=4 => 1,
        5..=11 => 2,
        n => 2 + (n - 12) / 6,
    };
    let mut best: Option<usize> = None;
    let mut found: Vec<CheckId> = Vec::new();
    for info in CATALOGUE {
        let distance = edit_distance(&input, info.id.as_str())
            .min(edit_distance(&input, &info.code.to_ascii_uppercase()));
        if distance > limit {
            continue;
        }
        match best {
            Some(b) if distance > b => {}
            Some(b) if distance == b => found.push(info.id),
            _ => {
                best = Some(distance);
                found = vec![info.id];
            }
        }
    }
    found
}

/// The Levenshtein distance between two strings, in characters (insertions, deletions and
/// substitutions of one character each cost one).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
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
    use crate::finding::Finding;

    #[test]
    fn every_id_round_trips_and_has_one_entry() {
        for info in CATALOGUE {
            assert_eq!(info.id.as_str().parse::<CheckId>().unwrap(), info.id);
            assert_eq!(info.code.parse::<CheckId>().unwrap(), info.id);
            assert_eq!(CATALOGUE.iter().filter(|c| c.id == info.id).count(), 1);
            assert_eq!(CATALOGUE.iter().filter(|c| c.code == info.code).count(), 1);
        }
    }

    #[test]
    fn catalogue_has_one_entry_per_checks_md_row() {
        assert_eq!(CATALOGUE.len(), 65);
        let per_source = Source::ALL.map(|s| CATALOGUE.iter().filter(|c| c.source() == s).count());
        assert_eq!(per_source, [42, 5, 6, 12]);
    }

    /// Spot values of the contract (`docs/checks.md`), written out so that a change to the catalogue
    /// cannot change the expectation with it.
    #[test]
    fn spot_values_match_checks_md() {
        for (id, code, area, severity) in [
            (
                CheckId::DmarcMissing,
                "DMARC001",
                Area::Dmarc,
                Severity::Critical,
            ),
            (
                CheckId::DmarcPolicyNone,
                "DMARC004",
                Area::Dmarc,
                Severity::High,
            ),
            (
                CheckId::MxM365Legacy,
                "MX005",
                Area::Transport,
                Severity::Info,
            ),
            (
                CheckId::DmarcRuaInvalid,
                "DMARC011",
                Area::Dmarc,
                Severity::Low,
            ),
            (
                CheckId::DmarcDeprecatedTag,
                "DMARC012",
                Area::Dmarc,
                Severity::Info,
            ),
            (CheckId::SpfPassAll, "SPF004", Area::Spf, Severity::Critical),
            (
                CheckId::SpfLookupNearLimit,
                "SPF008",
                Area::Spf,
                Severity::Low,
            ),
            (
                CheckId::ParkedNotLocked,
                "SPF014",
                Area::Spf,
                Severity::High,
            ),
            (
                CheckId::DkimM365Partial,
                "DKIM002",
                Area::Dkim,
                Severity::Medium,
            ),
            (CheckId::MxNull, "MX002", Area::Transport, Severity::Info),
            (
                CheckId::MxUnresolvable,
                "MX003",
                Area::Transport,
                Severity::High,
            ),
            (
                CheckId::TlsrptMissing,
                "TLS003",
                Area::Transport,
                Severity::Low,
            ),
            (
                CheckId::DnsLookupFailed,
                "DNS001",
                Area::Transport,
                Severity::Info,
            ),
            (
                CheckId::DomainNotFound,
                "DNS002",
                Area::Transport,
                Severity::High,
            ),
            (
                CheckId::RelayOpen,
                "SMTP001",
                Area::Connectors,
                Severity::Critical,
            ),
            (
                CheckId::StarttlsMissing,
                "SMTP003",
                Area::Transport,
                Severity::High,
            ),
            (
                CheckId::DnssecUnsigned,
                "DNSSEC001",
                Area::Transport,
                Severity::Info,
            ),
            (
                CheckId::DnssecBogus,
                "DNSSEC002",
                Area::Transport,
                Severity::High,
            ),
            (
                CheckId::DnssecMxUnsigned,
                "DNSSEC003",
                Area::Transport,
                Severity::Info,
            ),
            (
                CheckId::DaneTlsaMissing,
                "DANE001",
                Area::Transport,
                Severity::Info,
            ),
            (
                CheckId::DaneTlsaUnusable,
                "DANE002",
                Area::Transport,
                Severity::Medium,
            ),
            (
                CheckId::DaneTlsaMismatch,
                "SMTP006",
                Area::Transport,
                Severity::High,
            ),
            (
                CheckId::ExoConnectorUnrestricted,
                "EXO002",
                Area::Connectors,
                Severity::Critical,
            ),
            (
                CheckId::ExoDkimDisabled,
                "EXO004",
                Area::Dkim,
                Severity::High,
            ),
            (
                CheckId::ExoSpamBypassOwnDomain,
                "EXO007",
                Area::Antispoof,
                Severity::High,
            ),
            (
                CheckId::ExoMailboxIntelligenceOff,
                "EXO010",
                Area::Impersonation,
                Severity::Medium,
            ),
            (
                CheckId::ExoAutoforwardExternal,
                "EXO012",
                Area::Connectors,
                Severity::Medium,
            ),
        ] {
            let info = id.info();
            assert_eq!(
                (info.code, info.area, info.severity),
                (code, area, severity),
                "{id}"
            );
        }
        assert_eq!(CheckId::RelayOpen.info().source(), Source::Smtp);
        assert_eq!(
            CheckId::ExoDirectsendAllowed.info().source(),
            Source::ExchangeOnline
        );
        assert_eq!(CheckId::DnsLookupFailed.info().source(), Source::Dns);
        // Checks that need a signed zone are not demanded of the unsigned fixture zone; the
        // TLSA-against-chain check needs the STARTTLS probe.
        for id in [
            CheckId::DnssecUnsigned,
            CheckId::DnssecBogus,
            CheckId::DnssecMxUnsigned,
            CheckId::DaneTlsaMissing,
            CheckId::DaneTlsaUnusable,
        ] {
            assert_eq!(id.info().source(), Source::Dnssec, "{id}");
        }
        assert_eq!(CheckId::DaneTlsaMismatch.info().source(), Source::Smtp);
    }

    #[test]
    fn every_entry_is_documented() {
        for info in CATALOGUE {
            let id = info.id;
            for (field, text) in [("what", info.what), ("why", info.why), ("fix", info.fix)] {
                assert!(!text.trim().is_empty(), "{id}: empty {field}");
                assert_eq!(
                    text,
                    text.trim(),
                    "{id}: {field} has surrounding whitespace"
                );
            }
            assert!(
                !info.what.contains('\n'),
                "{id}: what must be one paragraph"
            );
            assert!(!info.why.contains('\n'), "{id}: why must be one paragraph");
            let summary = info.fix_summary();
            assert!(!summary.is_empty(), "{id}: empty fix summary");
            assert!(
                !summary.contains('\n'),
                "{id}: first paragraph of fix must be one line"
            );
            assert!(
                !summary.contains("```"),
                "{id}: fix summary must not hold a code block"
            );
            assert_eq!(
                summary,
                Finding::new(id, "d").fix,
                "{id}: finding default fix"
            );
            assert!(
                info.fix.contains("\n\n"),
                "{id}: fix must give steps after the summary"
            );
            assert_eq!(
                info.fix.matches("```").count() % 2,
                0,
                "{id}: unbalanced code fence"
            );
            assert!(!info.references.is_empty(), "{id}: no references");
            for (i, r) in info.references.iter().enumerate() {
                assert!(!r.trim().is_empty(), "{id}: empty reference");
                assert!(
                    !info.references[..i].contains(r),
                    "{id}: duplicate reference {r}"
                );
            }
        }
    }

    /// Tokens such as `DKIM-M365-MISSING` in the prose must name real checks.
    #[test]
    fn cross_references_name_real_checks() {
        const NOT_IDS: [&str; 6] = [
            "MTA-STS",
            "TLS-RPT",
            "ORCA-108",
            "ORCA-118-4",
            "SHA-256",
            "SHA-512",
        ];
        for info in CATALOGUE {
            for text in [info.what, info.why, info.fix] {
                let tokens = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
                for token in tokens {
                    let token = token.trim_matches('-');
                    let looks_like_id = token.contains('-')
                        && token.starts_with(|c: char| c.is_ascii_uppercase())
                        && !token.contains(|c: char| c.is_ascii_lowercase());
                    if looks_like_id && !NOT_IDS.contains(&token) {
                        assert!(
                            token.parse::<CheckId>().is_ok(),
                            "{}: {token} is not a check ID",
                            info.id
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn markdown_has_every_check_once_in_source_order() {
        let md = render_markdown();
        let mut last: Option<(Source, usize)> = None;
        for info in CATALOGUE {
            let heading = format!("\n## {}\n", info.id);
            assert_eq!(md.matches(&heading).count(), 1, "{}", info.id);
            assert!(md.contains(&format!("](#{})", info.id.as_str().to_ascii_lowercase())));
            let at = md.find(&heading).unwrap_or(0);
            if let Some((source, before)) = last
                && source == info.source()
            {
                assert!(before < at, "{} out of catalogue order", info.id);
            }
            last = Some((info.source(), at));
        }
        let dns = md.find("\n# From DNS alone\n").expect("DNS section");
        let dnssec = md
            .find("\n# From DNSSEC-validated DNS")
            .expect("DNSSEC section");
        let smtp = md.find("\n# From an SMTP session").expect("SMTP section");
        let exo = md.find("\n# From an Exchange Online").expect("EXO section");
        assert!(dns < dnssec && dnssec < smtp && smtp < exo);
        assert!(
            md.find("\n## DNSSEC-BOGUS\n")
                .is_some_and(|p| dnssec < p && p < smtp)
        );
        assert!(
            md.find("\n## DANE-TLSA-MISMATCH\n")
                .is_some_and(|p| smtp < p && p < exo)
        );
        assert!(
            md.find("\n## DMARC-MISSING\n")
                .is_some_and(|p| dns < p && p < dnssec)
        );
        assert!(
            md.find("\n## RELAY-OPEN\n")
                .is_some_and(|p| smtp < p && p < exo)
        );
        assert!(
            md.find("\n## EXO-DIRECTSEND-ALLOWED\n")
                .is_some_and(|p| exo < p)
        );
        assert!(md.contains(
            "[Microsoft Learn: Set up DKIM to sign mail from your Microsoft 365 domain](https://"
        ));
        assert!(md.ends_with('\n') && !md.ends_with("\n\n"));
    }

    #[test]
    fn reference_links() {
        for (reference, expected) in [
            (
                "RFC 7208 §4.6.4 (DNS lookup limits)",
                "RFC 7208 §4.6.4 (DNS lookup limits)",
            ),
            (
                "Page — https://example.com/a",
                "[Page](https://example.com/a)",
            ),
            ("A — B", "A — B"),
            (
                "Page — https://example.com/a b",
                "Page — https://example.com/a b",
            ),
        ] {
            assert_eq!(reference_markdown(reference), expected);
        }
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("SPF", "", 3),
            ("", "SPF", 3),
            ("SPF-SOFTFAL", "SPF-SOFTFAIL", 1),
            ("SPF-SOFTFAILS", "SPF-SOFTFAIL", 1),
            ("SPF-SOFTFIAL", "SPF-SOFTFAIL", 2),
            ("KITTEN", "SITTING", 3),
            ("DMARC001", "DMARC01", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} / {b}");
            assert_eq!(edit_distance(b, a), d, "{b} / {a}");
        }
    }

    #[test]
    fn suggestions_for_near_misses() {
        for (input, expected) in [
            ("SPF-SOFTFAL", &[CheckId::SpfSoftfail][..]),
            ("spf-softfal", &[CheckId::SpfSoftfail]),
            (" SPF-SOFTFAILS ", &[CheckId::SpfSoftfail]),
            ("SPF-SOFTFIAL", &[CheckId::SpfSoftfail]),
            ("DMARC-MISING", &[CheckId::DmarcMissing]),
            ("SPF-LOOKUP-LIMT", &[CheckId::SpfLookupLimit]),
            ("EXO-DIRECTSEND-ALLOWD", &[CheckId::ExoDirectsendAllowed]),
            ("SPF06", &[CheckId::SpfSoftfail]),
            ("SPF0006", &[CheckId::SpfSoftfail]),
            // Nothing close: no guess.
            ("HELLO", &[]),
            ("SPF", &[]),
            ("", &[]),
            ("WHAT-IS-THIS-CHECK", &[]),
        ] {
            assert_eq!(suggest(input), expected, "{input:?}");
        }
        // Equally close names are all offered, in catalogue order.
        let ties: Vec<&str> = suggest("DMARC01").iter().map(|c| c.info().code).collect();
        assert_eq!(ties, ["DMARC001", "DMARC010", "DMARC011", "DMARC012"]);
        // Every real ID and code suggests itself (distance 0 wins).
        for info in CATALOGUE {
            assert_eq!(suggest(info.id.as_str()), [info.id]);
            assert_eq!(suggest(info.code), [info.id]);
        }
    }

    /// `docs/checks.md` is generated from the catalogue. Regenerate it with
    /// `UPDATE_DOCS=1 cargo test -p mailaudit-core docs_checks_md_is_current`.
    #[test]
    fn docs_checks_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/checks.md");
        let expected = render_markdown();
        if std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &expected).expect("write docs/checks.md");
            return;
        }
        let actual = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .replace("\r\n", "\n");
        if actual != expected {
            let line = actual
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()))
                + 1;
            panic!(
                "{} is out of date (first difference at line {line}); regenerate it with \
                 `UPDATE_DOCS=1 cargo test -p mailaudit-core docs_checks_md_is_current`",
                path.display()
            );
        }
    }
}
