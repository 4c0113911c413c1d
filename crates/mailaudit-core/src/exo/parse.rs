//! The tolerant importer: a lenient layer over `serde_json::Value` for the serialisation traps of
//! real exports (`docs/m365.md`): a single object instead of an array, `/Date(…)/` dates, enums as
//! names or numbers, booleans as strings, `null` and `[]`, properties missing from older exports,
//! `smtp:contoso.com;1` sender domains, and Windows PowerShell's `{"value": [...], "Count": n}`.

use serde_json::{Map, Value};

use super::script::{BUNDLE_VERSION, CMDLETS, cmdlet_by_key};
use super::*;

/// Reads a bundle written by the collection [`script`](super::script).
///
/// Fails only when the text is not JSON, not an object, carries a bundle version other than 1,
/// or holds none of the keys of [`CMDLETS`]; everything else is read leniently, with warnings.
pub fn parse_bundle(json: &str) -> Result<(TenantConfig, Vec<ParseWarning>), ExoError> {
    let v: Value =
        serde_json::from_str(strip_bom(json)).map_err(|e| ExoError::NotJson(e.to_string()))?;
    let Some(obj) = v.as_object() else {
        return Err(ExoError::NotABundle(
            "the top level is not an object".into(),
        ));
    };
    if let Some(ver) = get(obj, "mailaudit_bundle") {
        let ok = match ver {
            Value::Number(n) => n.as_u64() == Some(u64::from(BUNDLE_VERSION)),
            Value::String(s) => s.trim() == BUNDLE_VERSION.to_string(),
            _ => false,
        };
        if !ok {
            return Err(ExoError::UnsupportedVersion(ver.to_string()));
        }
    } else if !CMDLETS.iter().any(|c| get(obj, c.key).is_some()) {
        return Err(ExoError::NotABundle(
            "no mailaudit_bundle marker and none of the bundle's keys".into(),
        ));
    }
    let mut t = TenantConfig {
        organization: get(obj, "organization").and_then(text),
        generated: get(obj, "generated").and_then(date),
        module_version: get(obj, "module_version").and_then(text),
        ..TenantConfig::default()
    };
    let mut warnings = Vec::new();
    if let Some(Value::Object(errs)) = get(obj, "errors") {
        for (k, e) in errs {
            let msg = text(e).unwrap_or_else(|| e.to_string());
            t.errors.insert(k.clone(), msg);
        }
    }
    for c in CMDLETS {
        if let Some(e) = t.errors.get(c.key) {
            // The script writes `[]` for a cmdlet that failed: that is no data, not "none".
            let message = format!("{} failed while collecting: {e}", c.cmdlet);
            warnings.push(warn(c.key, None, "", message));
            continue;
        }
        match get(obj, c.key) {
            Some(v) => read_key(&mut t, c.key, v, &mut warnings),
            None => {
                if c.required && !t.errors.contains_key(c.key) {
                    warnings.push(warn(
                        c.key,
                        None,
                        "",
                        format!("{} was not exported", c.cmdlet),
                    ));
                }
            }
        }
    }
    if t.organization.is_none() {
        t.organization = t.org.as_ref().and_then(|o| o.name.clone());
    }
    Ok((t, warnings))
}

/// Reads one cmdlet's export (`Get-X | ConvertTo-Json`) under its bundle `key` (see
/// [`key_for_file`] to map a file name to it).
pub fn parse_export(key: &str, json: &str) -> Result<(TenantConfig, Vec<ParseWarning>), ExoError> {
    let Some(c) = cmdlet_by_key(key) else {
        return Err(ExoError::UnknownKey(key.to_string()));
    };
    let v: Value =
        serde_json::from_str(strip_bom(json)).map_err(|e| ExoError::NotJson(e.to_string()))?;
    let mut t = TenantConfig::default();
    let mut warnings = Vec::new();
    read_key(&mut t, c.key, &v, &mut warnings);
    t.organization = t.org.as_ref().and_then(|o| o.name.clone());
    Ok((t, warnings))
}

/// Reads several per-cmdlet exports `(key, json)` into one configuration; the first error stops.
pub fn parse_exports(
    files: &[(&str, &str)],
) -> Result<(TenantConfig, Vec<ParseWarning>), ExoError> {
    let mut t = TenantConfig::default();
    let mut warnings = Vec::new();
    for (key, json) in files {
        let (one, w) = parse_export(key, json)?;
        t.merge(one);
        warnings.extend(w);
    }
    Ok((t, warnings))
}

/// The bundle key for a per-cmdlet export file: by its stem (`inbound_connectors.json`,
/// `transport_rule.json`), or named after the cmdlet (`Get-InboundConnector.json`,
/// `InboundConnector.json`), case-insensitively.
pub fn key_for_file(file_name: &str) -> Option<&'static str> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = base
        .strip_suffix(".json")
        .or_else(|| base.strip_suffix(".JSON"))
        .unwrap_or(base)
        .to_ascii_lowercase()
        .replace('-', "_");
    let squash = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    CMDLETS
        .iter()
        .find(|c| {
            c.key == stem
                || c.aliases.contains(&stem.as_str())
                || squash(c.cmdlet) == squash(&stem)
                || c.cmdlet
                    .strip_prefix("Get-")
                    .is_some_and(|noun| squash(noun) == squash(&stem))
        })
        .map(|c| c.key)
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

fn warn(key: &str, index: Option<usize>, property: &str, message: String) -> ParseWarning {
    ParseWarning {
        key: key.to_string(),
        index,
        property: property.to_string(),
        message,
    }
}

/// The objects of an export: `null` → none, an object → one, an array → its objects, and
/// Windows PowerShell's `{"value": [...], "Count": n}` → the array.
fn items<'a>(
    key: &str,
    v: &'a Value,
    warnings: &mut Vec<ParseWarning>,
) -> Vec<(usize, &'a Map<String, Value>)> {
    match v {
        Value::Null => Vec::new(),
        Value::Object(o) => {
            if let (Some(inner @ Value::Array(_)), Some(_)) = (o.get("value"), o.get("Count")) {
                return items(key, inner, warnings);
            }
            vec![(0, o)]
        }
        Value::Array(a) => {
            let mut out = Vec::new();
            for (i, x) in a.iter().enumerate() {
                match x {
                    Value::Object(o) => out.push((i, o)),
                    Value::Null => {}
                    other => warnings.push(warn(
                        key,
                        Some(i),
                        "",
                        format!("not an object: {}", short(other)),
                    )),
                }
            }
            out
        }
        other => {
            warnings.push(warn(
                key,
                None,
                "",
                format!("not an object or array: {}", short(other)),
            ));
            Vec::new()
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
thread_local! {
    /// (key, property) pairs the importer asked for, to check them against [`CMDLETS`].
    pub(super) static READ: std::cell::RefCell<std::collections::BTreeSet<(String, String)>> =
        const { std::cell::RefCell::new(std::collections::BTreeSet::new()) };
}

/// A property, case-insensitively.
fn get<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.get(name).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Unwraps PowerShell's extended-type wrapper `{"value": x, ...}` or `{"DateTime": ..}`.
fn unwrap_pso(v: &Value) -> &Value {
    match v {
        Value::Object(o) => o.get("value").or_else(|| o.get("Value")).unwrap_or(v),
        _ => v,
    }
}

fn text(v: &Value) -> Option<String> {
    match unwrap_pso(v) {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

enum Read<T> {
    Absent,
    Value(T),
    Bad(String),
}

fn boolean(v: &Value) -> Read<bool> {
    match unwrap_pso(v) {
        Value::Null => Read::Absent,
        Value::Bool(b) => Read::Value(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Read::Value(false),
            Some(1) => Read::Value(true),
            _ => Read::Bad(format!("not a boolean: {n}")),
        },
        Value::String(s) => match s
            .trim()
            .trim_start_matches('$')
            .to_ascii_lowercase()
            .as_str()
        {
            "true" | "1" | "yes" => Read::Value(true),
            "false" | "0" | "no" => Read::Value(false),
            "" => Read::Absent,
            _ => Read::Bad(format!("not a boolean: {s:?}")),
        },
        other => Read::Bad(format!("not a boolean: {}", short(other))),
    }
}

fn integer(v: &Value) -> Read<i64> {
    match unwrap_pso(v) {
        Value::Null => Read::Absent,
        Value::Number(n) => match n.as_i64() {
            Some(i) => Read::Value(i),
            None => Read::Bad(format!("not an integer: {n}")),
        },
        Value::String(s) if s.trim().is_empty() => Read::Absent,
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => Read::Value(i),
            Err(_) => Read::Bad(format!("not an integer: {s:?}")),
        },
        other => Read::Bad(format!("not an integer: {}", short(other))),
    }
}

/// A list of strings: `null` → empty, a string → one (PowerShell unrolls one-element arrays),
/// an array → its strings.
fn strings(v: &Value) -> Vec<String> {
    match unwrap_pso(v) {
        Value::Array(a) => a.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

/// `/Date(1723810171000)/` (or with an offset, `/Date(1723810171000+0200)/`) → ISO 8601 UTC;
/// an ISO string is kept as it is.
fn date(v: &Value) -> Option<String> {
    let v = match v {
        Value::Object(o) => o.get("DateTime").or_else(|| o.get("value")).unwrap_or(v),
        _ => v,
    };
    let s = text(v)?;
    let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) else {
        return Some(s);
    };
    let digits_end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(inner.len(), |(i, _)| i);
    let ms: i64 = inner.get(..digits_end)?.parse().ok()?;
    Some(iso_from_millis(ms))
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, by the `time` crate);
/// a time outside the years 0–9999 is clamped to them.
pub(crate) fn iso_from_millis(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    let t = crate::guide::utc(ms.div_euclid(1000));
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| {
        if t.year() < 0 {
            "0000-01-01T00:00:00Z".into()
        } else {
            "9999-12-31T23:59:59Z".into()
        }
    })
}

/// Numeric values of the enums the checks read, in their .NET declaration order (older exports
/// and `ConvertTo-Json` without `-EnumsAsStrings` write numbers).
fn enum_names(property: &str) -> &'static [&'static str] {
    match property {
        "State" => &["Enabled", "Disabled"],
        "Mode" => &["Audit", "AuditAndNotify", "Enforce"],
        "FromScope" => &["InOrganization", "NotInOrganization"],
        "DomainType" => &["Authoritative", "ExternalRelay", "InternalRelay"],
        "AutoForwardingMode" => &["Automatic", "Off", "On"],
        "SenderAddressLocation" => &["Header", "Envelope", "HeaderOrEnvelope"],
        _ => &[],
    }
}

/// One object being read: records warnings with its key and index.
struct Obj<'a, 'w> {
    key: &'static str,
    index: usize,
    o: &'a Map<String, Value>,
    warnings: &'w mut Vec<ParseWarning>,
}

impl<'a> Obj<'a, '_> {
    fn raw(&self, p: &str) -> Option<&'a Value> {
        #[cfg(test)]
        READ.with(|r| r.borrow_mut().insert((self.key.to_string(), p.to_string())));
        get(self.o, p)
    }

    fn w(&mut self, p: &str, message: String) {
        self.warnings
            .push(warn(self.key, Some(self.index), p, message));
    }

    fn text(&mut self, p: &str) -> Option<String> {
        self.raw(p).and_then(text)
    }

    fn name(&mut self) -> String {
        self.text("Name").unwrap_or_default()
    }

    fn boolean(&mut self, p: &str) -> Option<bool> {
        match self.raw(p).map(boolean) {
            None | Some(Read::Absent) => None,
            Some(Read::Value(b)) => Some(b),
            Some(Read::Bad(m)) => {
                self.w(p, m);
                None
            }
        }
    }

    fn flag(&mut self, p: &str) -> bool {
        self.boolean(p).unwrap_or(false)
    }

    fn integer(&mut self, p: &str) -> Option<i64> {
        match self.raw(p).map(integer) {
            None | Some(Read::Absent) => None,
            Some(Read::Value(i)) => Some(i),
            Some(Read::Bad(m)) => {
                self.w(p, m);
                None
            }
        }
    }

    fn strings(&mut self, p: &str) -> Vec<String> {
        self.raw(p).map(strings).unwrap_or_default()
    }

    fn domains(&mut self, p: &str) -> Vec<String> {
        self.strings(p).iter().map(|d| norm_domain(d)).collect()
    }

    fn date(&mut self, p: &str) -> Option<String> {
        self.raw(p).and_then(date)
    }

    /// An enum as its name; a number is mapped through [`enum_names`].
    fn enumeration(&mut self, p: &str) -> Option<String> {
        let v = self.raw(p).map(unwrap_pso)?;
        match v {
            Value::Number(n) => {
                let names = enum_names(p);
                match n.as_u64().and_then(|i| names.get(usize::try_from(i).ok()?)) {
                    Some(name) => Some((*name).to_string()),
                    None => {
                        self.w(p, format!("unknown numeric value {n}"));
                        Some(n.to_string())
                    }
                }
            }
            other => text(other),
        }
    }
}

/// `ExpectedMxRecord`: a host name, or an object holding one (`Record`, `MxRecord`, `Value`,
/// `HostName`, `Host`, `Exchange`, `NameExchange`); kept only when it is a plain host name.
fn expected_mx(v: &Value) -> Option<String> {
    let host = match v {
        Value::Object(o) => [
            "Record",
            "MxRecord",
            "Value",
            "HostName",
            "Host",
            "Exchange",
            "NameExchange",
        ]
        .iter()
        .find_map(|k| get(o, k).and_then(text))?,
        other => text(other)?,
    };
    let host = norm_domain(&host);
    let plain = host.contains('.')
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    plain.then_some(host)
}

/// `SenderDomains` entries: `smtp:contoso.com;1` → `contoso.com`, `smtp:*;1` → `*`.
pub(crate) fn sender_domain(entry: &str) -> String {
    let e = entry.trim();
    let e = match e.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("smtp:") => e.get(5..).unwrap_or(""),
        _ => e,
    };
    let e = e.split(';').next().unwrap_or("");
    norm_domain(e)
}

fn read_key(t: &mut TenantConfig, key: &'static str, v: &Value, warnings: &mut Vec<ParseWarning>) {
    if !t.has(key) {
        t.collected.push(key.to_string());
    }
    let objs = items(key, v, warnings);
    for (index, o) in objs {
        let mut r = Obj {
            key,
            index,
            o,
            warnings,
        };
        match key {
            "org_config" => {
                let name = r.text("Name");
                let reject_direct_send = r.boolean("RejectDirectSend");
                if r.raw("RejectDirectSend").is_none() {
                    r.w(
                        "RejectDirectSend",
                        "absent (export older than the property)".into(),
                    );
                }
                if t.org.is_none() {
                    t.org = Some(OrgConfig {
                        name,
                        reject_direct_send,
                    });
                }
            }
            "accepted_domains" => {
                let domain_name = r.text("DomainName").map(|d| norm_domain(&d));
                let Some(domain_name) = domain_name else {
                    r.w("DomainName", "missing; object skipped".into());
                    continue;
                };
                t.accepted_domains.push(AcceptedDomain {
                    domain_name,
                    domain_type: r.enumeration("DomainType"),
                    default: r.flag("Default"),
                    initial_domain: r.flag("InitialDomain"),
                    is_coexistence: r.flag("IsCoexistenceDomain"),
                });
            }
            "inbound_connectors" => t.inbound_connectors.push(InboundConnector {
                name: r.name(),
                enabled: r.boolean("Enabled"),
                connector_type: r.enumeration("ConnectorType"),
                sender_domains: r
                    .strings("SenderDomains")
                    .iter()
                    .map(|d| sender_domain(d))
                    .filter(|d| !d.is_empty())
                    .collect(),
                sender_ip_addresses: r.strings("SenderIPAddresses"),
                require_tls: r.boolean("RequireTls"),
                restrict_domains_to_ip_addresses: r.boolean("RestrictDomainsToIPAddresses"),
                restrict_domains_to_certificate: r.boolean("RestrictDomainsToCertificate"),
                tls_sender_certificate_name: r.text("TlsSenderCertificateName"),
                when_changed: r.date("WhenChanged"),
            }),
            "outbound_connectors" => t.outbound_connectors.push(OutboundConnector {
                name: r.name(),
                enabled: r.boolean("Enabled"),
                connector_type: r.enumeration("ConnectorType"),
                recipient_domains: r.domains("RecipientDomains"),
                smart_hosts: r.strings("SmartHosts"),
                tls_settings: r.enumeration("TlsSettings"),
            }),
            "transport_rules" => t.transport_rules.push(TransportRule {
                name: r.name(),
                state: r.enumeration("State"),
                mode: r.enumeration("Mode"),
                priority: r.integer("Priority"),
                from_scope: r.enumeration("FromScope"),
                sender_domain_is: r.domains("SenderDomainIs"),
                sender_address_location: r.enumeration("SenderAddressLocation"),
                from_address_contains_words: r.strings("FromAddressContainsWords"),
                from_address_matches_patterns: r.strings("FromAddressMatchesPatterns"),
                header_matches_message_header: r.text("HeaderMatchesMessageHeader"),
                header_matches_patterns: r.strings("HeaderMatchesPatterns"),
                header_contains_message_header: r.text("HeaderContainsMessageHeader"),
                header_contains_words: r.strings("HeaderContainsWords"),
                sender_ip_ranges: r.strings("SenderIpRanges"),
                except_if_sender_ip_ranges: r.strings("ExceptIfSenderIpRanges"),
                reject_message_reason_text: r.text("RejectMessageReasonText"),
                reject_message_enhanced_status_code: r.text("RejectMessageEnhancedStatusCode"),
                quarantine: r.boolean("Quarantine"),
                delete_message: r.boolean("DeleteMessage"),
                set_scl: r.integer("SetSCL"),
                stop_rule_processing: r.boolean("StopRuleProcessing"),
            }),
            "dkim_config" => {
                let domain = r
                    .text("Domain")
                    .map(|d| norm_domain(&d))
                    .unwrap_or_default();
                let key_size =
                    |r: &mut Obj<'_, '_>, p: &str| r.integer(p).and_then(|i| u32::try_from(i).ok());
                t.dkim.push(DkimSigningConfig {
                    domain,
                    enabled: r.boolean("Enabled"),
                    status: r.enumeration("Status"),
                    selector1_cname: r.text("Selector1CNAME"),
                    selector2_cname: r.text("Selector2CNAME"),
                    selector1_key_size: key_size(&mut r, "Selector1KeySize"),
                    selector2_key_size: key_size(&mut r, "Selector2KeySize"),
                });
            }
            "anti_phish_policies" => t.anti_phish.push(AntiPhishPolicy {
                name: r.name(),
                enabled: r.boolean("Enabled"),
                is_default: r.flag("IsDefault"),
                enable_targeted_user_protection: r.boolean("EnableTargetedUserProtection"),
                targeted_users_to_protect: r.strings("TargetedUsersToProtect"),
                targeted_user_protection_action: r.enumeration("TargetedUserProtectionAction"),
                enable_organization_domains_protection: r
                    .boolean("EnableOrganizationDomainsProtection"),
                enable_targeted_domains_protection: r.boolean("EnableTargetedDomainsProtection"),
                targeted_domain_protection_action: r.enumeration("TargetedDomainProtectionAction"),
                enable_mailbox_intelligence: r.boolean("EnableMailboxIntelligence"),
                enable_mailbox_intelligence_protection: r
                    .boolean("EnableMailboxIntelligenceProtection"),
                mailbox_intelligence_protection_action: r
                    .enumeration("MailboxIntelligenceProtectionAction"),
                enable_spoof_intelligence: r.boolean("EnableSpoofIntelligence"),
                honor_dmarc_policy: r.boolean("HonorDmarcPolicy"),
                phish_threshold_level: r.integer("PhishThresholdLevel"),
            }),
            "anti_phish_rules" => t.anti_phish_rules.push(AntiPhishRule {
                name: r.name(),
                anti_phish_policy: r.text("AntiPhishPolicy"),
                state: r.enumeration("State"),
                priority: r.integer("Priority"),
            }),
            "transport_config" => {
                let smtp = r.boolean("SmtpClientAuthenticationDisabled");
                if t.transport_config.is_none() {
                    t.transport_config = Some(TransportConfig {
                        smtp_client_authentication_disabled: smtp,
                    });
                }
            }
            "outbound_spam_policies" => t.outbound_spam.push(OutboundSpamPolicy {
                name: r.name(),
                is_default: r.flag("IsDefault"),
                auto_forwarding_mode: r.enumeration("AutoForwardingMode"),
            }),
            "remote_domains" => t.remote_domains.push(RemoteDomain {
                name: r.name(),
                domain_name: r
                    .text("DomainName")
                    .map(|d| norm_domain(&d))
                    .unwrap_or_default(),
                auto_forward_enabled: r.boolean("AutoForwardEnabled"),
            }),
            "dnssec_status" => {
                let Some(domain) = r.text("DomainName").map(|d| norm_domain(&d)) else {
                    r.w("DomainName", "missing; object skipped".into());
                    continue;
                };
                let feature_status = r.enumeration("DnssecFeatureStatus");
                let expected_mx = r.raw("ExpectedMxRecord").and_then(expected_mx);
                t.dnssec_status.push(DnssecStatus {
                    domain,
                    feature_status,
                    expected_mx,
                });
            }
            "smtp_dane_inbound" => {
                let Some(domain) = r.text("DomainName").map(|d| norm_domain(&d)) else {
                    r.w("DomainName", "missing; object skipped".into());
                    continue;
                };
                let (status, dane_status) = (r.enumeration("Status"), r.enumeration("DaneStatus"));
                let status = status.or(dane_status);
                let enabled_flag = r.boolean("Enabled");
                let enabled = super::status_word(status.as_deref()).or(enabled_flag);
                if enabled.is_none() {
                    r.w(
                        "Status",
                        "no Status, DaneStatus or Enabled value: DANE state unknown".into(),
                    );
                }
                t.smtp_dane_inbound.push(SmtpDaneInboundStatus {
                    domain,
                    status,
                    enabled,
                });
            }
            "conn_filter" => t.connection_filter.push(ConnectionFilterPolicy {
                name: r.name(),
                ip_allow_list: r.strings("IPAllowList"),
                enable_safe_list: r.boolean("EnableSafeList"),
            }),
            _ => {}
        }
    }
}
