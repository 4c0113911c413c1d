//! The remediation guide: for one domain's latest report, the exact DNS records and
//! Exchange Online PowerShell to run, in priority order, with the checks that prove each fix.
//!
//! [`build`] turns a [`ReportView`] (a stored report, read leniently) and a [`GuideContext`]
//! (inventory data and today's date, passed in: the core has no clock) into a [`Guide`]. Each
//! [`GuideItem`] has a stable checklist key ([`checklist`]), the findings it addresses, the
//! catalogue's explanation ([`CheckId::info`]), paste-ready steps computed from the domain's own
//! records (through [`crate::spf::harden`], [`crate::dmarc::propose`] and the Microsoft 365
//! DKIM target parser), and verification commands. [`verify`] says whether a later report shows
//! an item's fix, and [`check_manual_done`] whether a tick by hand contradicts the latest report
//! ([`nearest_key`] suggests a key for a typo). [`render_markdown`] prints a guide; its HTML is
//! the presentation layer's (the portal's `guide_html`).
//!
//! Nothing here does I/O. Checks whose look-ups failed (DNS-LOOKUP-FAILED) produce no item:
//! they are listed in [`Guide::withheld`] instead, and [`verify`] answers `None` for them.

mod dkim_tenant;
mod items;
mod render;
mod tenant;
#[cfg(test)]
mod tests;
mod util;
mod view;

use serde::Serialize;

use crate::checks::{Area, CheckId, Severity};
use crate::finding::Finding;

pub use render::{long_txt_note, records_intro, render_markdown, score_text};
pub use tenant::verify_import;
pub(crate) use util::utc;
pub use util::{date, date_time};
pub use view::{
    DkimView, DmarcView, MxView, RelayView, ReportView, SelectorView, SpfNodeView, SpfView,
};

/// When to do it: the remediation priorities of `docs/checks.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Priority {
    /// Critical: now.
    P1,
    /// High: this week.
    P2,
    /// Medium: this month.
    P3,
    /// Low or informational: when convenient.
    P4,
}

impl Priority {
    /// All priorities, most urgent first.
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    /// 1 to 4.
    pub fn as_u8(self) -> u8 {
        match self {
            Priority::P1 => 1,
            Priority::P2 => 2,
            Priority::P3 => 3,
            Priority::P4 => 4,
        }
    }

    /// The priority of a finding's severity.
    pub fn of(severity: Severity) -> Priority {
        match severity {
            Severity::Critical => Priority::P1,
            Severity::High => Priority::P2,
            Severity::Medium => Priority::P3,
            Severity::Low | Severity::Info => Priority::P4,
        }
    }

    /// The heading: `Priority 1 — critical: now`.
    pub fn heading(self) -> &'static str {
        match self {
            Priority::P1 => "Priority 1 — critical: now",
            Priority::P2 => "Priority 2 — high: this week",
            Priority::P3 => "Priority 3 — medium: this month",
            Priority::P4 => "Priority 4 — low: when convenient",
        }
    }
}

/// What a [`Code`] block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Zone-file records (`name TTL IN TYPE rdata`), to enter at the DNS host.
    Dns,
    /// Exchange Online PowerShell.
    #[serde(rename = "powershell")]
    PowerShell,
    /// A shell command (`mailaudit …`).
    Shell,
    /// A file's content (the MTA-STS policy).
    Text,
}

impl Lang {
    /// `dns`, `powershell`, `shell` or `text` (also the Markdown fence's info string).
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Dns => "dns",
            Lang::PowerShell => "powershell",
            Lang::Shell => "shell",
            Lang::Text => "text",
        }
    }
}

/// A block to paste: records or commands, one per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Code {
    /// What it is.
    pub lang: Lang,
    /// The lines, `\n`-separated.
    pub text: String,
    /// For a [`Lang::Dns`] block, its records, one per line of `text` (which is their
    /// [`DnsRecord::zone_line`]s): what a DNS provider's form asks for (host, type, value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<DnsRecord>,
}

impl Code {
    fn new(lang: Lang, text: impl Into<String>) -> Code {
        Code {
            lang,
            text: text.into(),
            records: Vec::new(),
        }
    }

    /// A [`Lang::Dns`] block of `records`: their zone-file lines, and the records themselves.
    fn dns(records: Vec<DnsRecord>) -> Code {
        Code {
            lang: Lang::Dns,
            text: records
                .iter()
                .map(DnsRecord::zone_line)
                .collect::<Vec<_>>()
                .join("\n"),
            records,
        }
    }
}

/// One step: a sentence (inline code in backticks), optionally followed by a block to paste.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What to do.
    pub text: String,
    /// What to paste.
    pub code: Option<Code>,
}

/// One thing to do, with everything needed to do it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuideItem {
    /// The stable checklist key (`dmarc-publish`, `spf-harden`, …; for findings without a
    /// dedicated item, the check ID itself, e.g. `SPF-PTR`).
    pub key: &'static str,
    /// What to do, in a few words.
    pub title: String,
    /// The findings of the report this item fixes (empty for recommendations that DNS cannot
    /// show, such as the anti-spoofing transport rule).
    pub finding_ids: Vec<CheckId>,
    /// What was found on this domain: the findings' details.
    pub found: Vec<String>,
    /// Why it matters (from the catalogue).
    pub why: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// How to check that it worked.
    pub verify: Vec<Code>,
}

pub use crate::record::DnsRecord;

impl GuideItem {
    /// Every DNS record of the item's steps, in order. A step may show a later phase of the
    /// same record (the next DMARC policy): see [`GuideItem::records_to_publish`].
    pub fn dns_records(&self) -> Vec<DnsRecord> {
        self.steps
            .iter()
            .filter_map(|s| s.code.as_ref())
            .filter(|c| c.lang == Lang::Dns)
            .flat_map(|c| c.records.iter().cloned())
            .collect()
    }

    /// The records to publish now: the first record of each name and type (later ones at the
    /// same name are the next phases).
    pub fn records_to_publish(&self) -> Vec<DnsRecord> {
        let mut out: Vec<DnsRecord> = Vec::new();
        for r in self.dns_records() {
            if !out.iter().any(|o| o.name == r.name && o.rtype == r.rtype) {
                out.push(r);
            }
        }
        out
    }
}

/// The items of one priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The priority.
    pub priority: Priority,
    /// The items, in the guide's order (DMARC, SPF, DKIM, connectors, anti-spoofing,
    /// impersonation, transport, other).
    pub items: Vec<GuideItem>,
}

/// One domain's remediation guide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Guide {
    /// The domain.
    pub domain: String,
    /// Its score in the report.
    pub score: Option<u8>,
    /// Non-empty sections, most urgent first.
    pub sections: Vec<Section>,
    /// The DNS-LOOKUP-FAILED findings: the checks whose verdict is withheld and which therefore
    /// have no item until a re-audit succeeds.
    pub withheld: Vec<Finding>,
    /// Remarks about the guide as a whole (why Exchange Online items are left out, why there
    /// is no guide for an invalid name or a domain that does not exist).
    pub notes: Vec<String>,
}

impl Guide {
    /// All items, most urgent first.
    pub fn items(&self) -> impl Iterator<Item = (Priority, &GuideItem)> {
        self.sections
            .iter()
            .flat_map(|s| s.items.iter().map(move |i| (s.priority, i)))
    }

    /// The item with this key, if the guide has it.
    pub fn item(&self, key: &str) -> Option<&GuideItem> {
        self.items().map(|(_, i)| i).find(|i| i.key == key)
    }
}

/// What the guide needs besides the report: the inventory's data and today's date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuideContext {
    /// Today, in unix seconds (UTC): for the DMARC roll-out's elapsed time and dated ids.
    pub today: i64,
    /// The Microsoft 365 tenant name (`contoso` or `contoso.onmicrosoft.com`), if known: a
    /// published DKIM selector CNAME into another tenant is DKIM-M365-TARGET-MISMATCH (unless
    /// an Exchange Online import says more). The guide never builds a DKIM target from it.
    pub tenant: Option<String>,
    /// The tenant's Microsoft 365 MX host (`contoso-com.mail.protection.outlook.com`), if known.
    pub m365_endpoint: Option<String>,
    /// The people to protect against impersonation: `(display name, address)`.
    pub key_people: Vec<(String, String)>,
    /// The DMARC roll-out: the phase (`none`, `quarantine`, `reject`) and when it started.
    pub dmarc_rollout: Option<(String, i64)>,
    /// The exact DKIM CNAME targets `(selector1, selector2)` from the tenant's
    /// `Get-DkimSigningConfig` (an Exchange Online import): the values the guide publishes, and
    /// what a published CNAME must be. Without them the guide writes a target only when it is
    /// the other selector of a published, correct one, and otherwise says how to read them.
    pub dkim_cnames: Option<(String, String)>,
    /// The verdict of the domain's DMARC aggregate reports on moving to the next phase
    /// ([`crate::reports::analysis::readiness`]), when reports are stored for it.
    pub dmarc_readiness: Option<crate::reports::analysis::Readiness>,
    /// The DMARC aggregate report address to propose when a record has none
    /// (`mailto:dmarc@msp.example`); default `mailto:dmarc-reports@<domain>`.
    pub default_rua: Option<String>,
    /// The newest Exchange Online import of the domain's tenant, when one has the domain among
    /// its accepted domains: the Exchange Online items then act on the tenant's real objects
    /// (the anti-spoofing rule that already covers the domain, the unrestricted connectors and
    /// the spam-bypass rules by name, the anti-phishing policy in effect) instead of
    /// placeholders, and never propose a second rule for a domain a rule covers.
    pub exo: Option<crate::exo::TenantConfig>,
    /// The addresses the domain's stored DMARC aggregate reports show passing SPF aligned
    /// ([`crate::spf::propose::passing_senders`], over the last 30 days): every SPF record the
    /// guide proposes keeps authorising them ([`crate::spf::propose::keep_senders`]).
    pub spf_senders: Vec<crate::spf::propose::ReportedSender>,
}

/// Builds the remediation guide of one domain. See the module documentation.
///
/// The report's findings are completed first with what only the context shows: a selector
/// CNAME into another tenant than the domain's own (DKIM-M365-TARGET-MISMATCH, from the
/// tenant's Exchange Online import or the inventory's tenant).
pub fn build(report: &ReportView, ctx: &GuideContext) -> Guide {
    let more = dkim_tenant::findings(report, ctx);
    if more.is_empty() {
        return items::build(report, ctx);
    }
    let mut report = report.clone();
    report.findings.extend(more);
    items::build(&report, ctx)
}

/// The guide's checklist: `(key, priority 1–4, title)` of every item, in the guide's order.
/// Priority 4 items (MTA-STS, TLS-RPT, low findings) are on it too, so that the checklist and
/// the guide list the same work.
pub fn checklist(guide: &Guide) -> Vec<(&'static str, u8, String)> {
    guide
        .items()
        .map(|(p, i)| (i.key, p.as_u8(), i.title.clone()))
        .collect()
}

/// Why a report contradicts marking a checklist item done by hand ([`check_manual_done`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contradiction {
    /// The item's key.
    pub key: String,
    /// What the report shows, one sentence each: the record read (SPF, DMARC), the relay
    /// verdict, then the details of the findings the item fixes. Values are as read from DNS
    /// (attacker-controlled): escape them for the medium.
    pub evidence: Vec<String>,
}

impl Contradiction {
    /// The evidence in one line, sentences joined by `; `.
    pub fn evidence_text(&self) -> String {
        self.evidence.join("; ")
    }
}

/// Whether marking the checklist item `key` done by hand agrees with `report` (the domain's
/// latest audit). `Err` when the report shows the problem the item fixes ([`verify`] says
/// `Some(false)`): the next audit would reopen the item, so the tick is refused with what the
/// report shows, unless the person insists. Items the report cannot judge (Exchange Online
/// configuration, withheld verdicts) and items it shows fixed are accepted.
pub fn check_manual_done(key: &str, report: &ReportView) -> Result<(), Contradiction> {
    if verify(key, report) != Some(false) {
        return Ok(());
    }
    let d = report.domain.as_str();
    let mut evidence: Vec<String> = Vec::new();
    let spf = key.starts_with("spf-") || key == "parked-lockdown";
    let dmarc = key.starts_with("dmarc-") || key == "parked-lockdown";
    if spf && !report.is_withheld(Area::Spf) {
        evidence.push(match &report.spf.record {
            Some(r) => format!("the SPF record of {d} is `{r}`"),
            None => format!("{d} has no SPF record"),
        });
    }
    if dmarc && !report.dmarc.lookup_failed {
        evidence.push(match (&report.dmarc.record, &report.dmarc.found_at) {
            (Some(r), Some(at)) => format!("the DMARC record at {at} is `{r}`"),
            (Some(r), None) => format!("the DMARC record is `{r}`"),
            (None, _) => format!("no DMARC policy applies to {d}"),
        });
    }
    if key == "rerun-audit" {
        evidence.extend(
            report
                .findings
                .iter()
                .filter(|f| f.severity > Severity::Info)
                .map(|f| format!("{}: {}", f.id, f.detail)),
        );
    }
    if key == "dmarc-verify" {
        evidence.extend(
            report
                .findings
                .iter()
                .filter(|f| matches!(f.id, CheckId::DmarcNoRua | CheckId::DmarcRuaInvalid))
                .map(|f| f.detail.clone()),
        );
    }
    if key == "direct-send-reject" && report.relay.verdict == "open" {
        evidence.push(match &report.relay.reply {
            Some(reply) => format!("the Direct Send relay test says open (`{reply}`)"),
            None => "the Direct Send relay test says open".to_string(),
        });
    }
    // The findings the item fixes, as the guide of this report lists them.
    let g = build(report, &GuideContext::default());
    let found: Vec<String> = match g.item(key) {
        Some(item) => item.found.clone(),
        None => key
            .parse::<CheckId>()
            .map(|id| {
                report
                    .findings
                    .iter()
                    .filter(|f| f.id == id)
                    .map(|f| f.detail.clone())
                    .collect()
            })
            .unwrap_or_default(),
    };
    for f in found {
        if !evidence.contains(&f) {
            evidence.push(f);
        }
    }
    if evidence.is_empty() {
        evidence.push(format!("the audit of {d} still shows the problem"));
    }
    Err(Contradiction {
        key: key.to_string(),
        evidence,
    })
}

/// The key among `keys` nearest to `input` (a typo: `spf-hardn` → `spf-harden`), ignoring
/// case; `None` when none is close (more than a third of the input's length differs, or more
/// than three characters).
pub fn nearest_key<'a>(input: &str, keys: &[&'a str]) -> Option<&'a str> {
    let input = input.trim().to_ascii_lowercase();
    let limit = (input.chars().count() / 3).clamp(1, 3);
    keys.iter()
        .map(|k| (util::edit_distance(&input, &k.to_ascii_lowercase()), *k))
        .filter(|(dist, _)| *dist <= limit)
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, k)| k)
}

/// Whether `report` (normally the latest audit) shows the fix of the checklist item `key`.
///
/// - `Some(true)`: the fix is visible (no DMARC-MISSING for `dmarc-publish`, no legacy
///   Microsoft 365 MX for `m365-dane`, `p=reject` for
///   `dmarc-reject` and `dmarc-review-reports`, one valid record with a working `rua` for
///   `dmarc-verify`, the relay test says `blocked` for `direct-send-reject`, no finding left to
///   fix for `rerun-audit`).
/// - `Some(false)`: the report shows the problem (a regression if the item was done).
/// - `None`: this report cannot tell: the item is Exchange Online configuration that DNS does
///   not show (the transport rule, the anti-phishing policy, the connectors: see
///   [`verify_import`]), the reports were reviewed during the roll-out (`dmarc-review-reports`
///   before `p=reject`), the look-ups it depends on failed
///   (DNS-LOOKUP-FAILED withholds the verdict), the report is for an invalid name or for a
///   domain that does not exist (DOMAIN-NOT-FOUND), or the key is unknown.
pub fn verify(key: &str, report: &ReportView) -> Option<bool> {
    use CheckId::*;
    if report.error.is_some() || report.not_found() {
        return None;
    }
    let none_of = |ids: &[CheckId]| !ids.iter().any(|id| report.has(*id));
    let in_area = |areas: &[Area], ok: bool| {
        if areas.iter().any(|a| report.is_withheld(*a)) {
            None
        } else {
            Some(ok)
        }
    };
    let policy = report.dmarc.policy.as_deref().map(str::to_ascii_lowercase);
    let dmarc_known =
        !report.dmarc.lookup_failed && (policy.is_some() || !report.is_withheld(Area::Dmarc));
    let at_least = |min: u8| {
        let rank = match policy.as_deref() {
            Some("reject") => 2,
            Some("quarantine") => 1,
            _ => 0,
        };
        dmarc_known.then_some(rank >= min && report.dmarc.record.is_some())
    };
    let has_spf = report.spf.record.is_some();
    match key {
        "dmarc-publish" => dmarc_known
            .then_some(none_of(&[DmarcMissing, DmarcMultiple, DmarcSyntax]) && policy.is_some()),
        // Published, one valid record, with a report address that works.
        "dmarc-verify" => dmarc_known.then_some(
            none_of(&[
                DmarcMissing,
                DmarcMultiple,
                DmarcSyntax,
                DmarcNoRua,
                DmarcRuaInvalid,
            ]) && policy.is_some()
                && report.dmarc.record.is_some(),
        ),
        "dmarc-quarantine" => at_least(1),
        "dmarc-reject" => at_least(2),
        // Reviewing reports is not visible in DNS: done once the roll-out reached p=reject.
        "dmarc-review-reports" => at_least(2).filter(|done| *done),
        "dmarc-rua" => in_area(
            &[Area::Dmarc],
            report.dmarc.record.is_some()
                && none_of(&[DmarcNoRua, DmarcRuaInvalid, DmarcRuaUnauthorized]),
        ),
        "dmarc-tags" => in_area(
            &[Area::Dmarc],
            report.dmarc.record.is_some()
                && none_of(&[
                    DmarcPctPartial,
                    DmarcTesting,
                    DmarcSubdomainWeak,
                    DmarcDeprecatedTag,
                ]),
        ),
        "spf-publish" => in_area(&[Area::Spf], has_spf || none_of(&[SpfMissing])),
        "spf-repair" => in_area(&[Area::Spf], has_spf && none_of(&[SpfMultiple, SpfSyntax])),
        "spf-harden" => in_area(
            &[Area::Spf],
            has_spf
                && report.spf.all.as_deref() == Some("-all")
                && none_of(&[SpfSoftfail, SpfNeutralAll, SpfPassAll]),
        ),
        "spf-m365-include" => in_area(
            &[Area::Spf],
            has_spf && (report.spf.authorizes_m365 || none_of(&[SpfM365IncludeMissing])),
        ),
        "spf-lookups" => in_area(
            &[Area::Spf],
            has_spf
                && report.spf.lookups <= crate::spf::MAX_DNS_LOOKUPS
                && none_of(&[SpfLookupLimit]),
        ),
        "dkim-cnames" => in_area(
            &[Area::Dkim],
            none_of(&[DkimM365Missing, DkimM365Partial, DkimM365TargetMismatch]),
        ),
        "dkim-enable" => in_area(
            &[Area::Dkim],
            none_of(&[DkimM365NotEnabled, DkimM365Missing, ExoDkimDisabled])
                && report.dkim.selectors.iter().any(|s| s.key_bits.is_some()),
        ),
        "dkim-key-size" => in_area(&[Area::Dkim], none_of(&[DkimKeyWeak])),
        "direct-send-reject" => match report.relay.verdict.as_str() {
            "blocked" => Some(true),
            "open" => Some(false),
            _ if report.has(ExoDirectsendAllowed) => Some(false),
            _ => None,
        },
        "connectors-partner" | "connectors-audit" => {
            (!none_of(&[ExoConnectorUnrestricted, ExoConnectorNoTls])).then_some(false)
        }
        "antispoof-rule-audit" => report.has(ExoAntispoofRuleMissing).then_some(false),
        "antispoof-rule-enforce" => {
            (!none_of(&[ExoAntispoofRuleMissing, ExoAntispoofRuleAudit])).then_some(false)
        }
        "spam-bypass-remove" => report.has(ExoSpamBypassOwnDomain).then_some(false),
        "impersonation" => {
            (!none_of(&[ExoImpersonationUsersOff, ExoImpersonationDomainsOff])).then_some(false)
        }
        "mailbox-intelligence" => report.has(ExoMailboxIntelligenceOff).then_some(false),
        // The audit itself: done when it shows nothing left to fix (a withheld verdict proves
        // nothing either way).
        "rerun-audit" => (!report.has(DnsLookupFailed))
            .then(|| report.findings.iter().all(|f| f.severity == Severity::Info)),
        "parked-lockdown" => in_area(&[Area::Spf, Area::Dmarc], none_of(&[ParkedNotLocked])),
        "mta-sts" => in_area(&[Area::Transport], none_of(&[MtaStsMissing, MtaStsInvalid])),
        "tls-rpt" => in_area(&[Area::Transport], none_of(&[TlsrptMissing])),
        // Done when no MX is the legacy Microsoft 365 endpoint; unknown when the MX look-up
        // failed (no MX seen and a transport verdict withheld).
        "m365-dane" => {
            if report.mx.is_empty() && report.is_withheld(Area::Transport) {
                None
            } else {
                Some(
                    none_of(&[MxM365Legacy])
                        && !report.mx.iter().any(|m| crate::mx::is_m365_legacy(&m.host)),
                )
            }
        }
        other => {
            let id: CheckId = other.parse().ok()?;
            if id == DnsLookupFailed {
                return None;
            }
            let info = id.info();
            match info.source() {
                crate::checks::Source::Dns => in_area(&[info.area], !report.has(id)),
                // An SMTP or Exchange Online check shows only when it ran: its absence proves nothing.
                _ => report.has(id).then_some(false),
            }
        }
    }
}
