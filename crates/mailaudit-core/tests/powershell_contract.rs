//! The PowerShell contract: every PowerShell line the product can emit (the remediation guide
//! for domains in every state, with and without an Exchange Online import; every catalogue
//! entry's fix; every EXO-* finding's fix on the testdata exports; `exo script`) is parsed with
//! a PowerShell grammar (tree-sitter-powershell) and checked against Microsoft's cmdlet
//! reference (`testdata/exo-cmdlets/cmdlets.json`). All violations are reported at once, each
//! with its line and rule.

use std::collections::{BTreeMap, BTreeSet};

use mailaudit_core::audit::{AuditOptions, DomainReport, audit_domain};
use mailaudit_core::checks::CheckId;
use mailaudit_core::exo::{self, Auth, ScriptOptions, TenantConfig};
use mailaudit_core::finding::Finding;
use mailaudit_core::guide::{self, GuideContext, Lang, ReportView};
use mailaudit_core::memory::{MemoryDns, Rr};
use serde_json::Value;
use tree_sitter::{Node, Parser};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

/// Commands that are not Exchange Online cmdlets but may appear, with the parameters checked
/// for them (`None`: their arguments are not checked; they are property names, script blocks
/// or pipeline plumbing).
type ParamSpec = &'static [(&'static str, Kind)];
const BUILTINS: &[(&str, Option<ParamSpec>)] = &[
    (
        "Resolve-DnsName",
        Some(&[
            ("Name", Kind::Text),
            ("Type", Kind::Enum),
            ("DnsOnly", Kind::Switch),
            ("Server", Kind::Text),
        ]),
    ),
    ("Select-Object", None),
    ("ForEach-Object", None),
    ("Where-Object", None),
    ("Format-List", None),
    ("Format-Table", None),
    ("Sort-Object", None),
    ("Get-Date", None),
    ("Get-Module", None),
    ("Import-Module", None),
    ("ConvertTo-Json", None),
    ("Out-File", None),
    ("Write-Host", None),
    // The product's own CLI, shown next to the commands it verifies.
    ("mailaudit", None),
];

/// PowerShell's common parameters that the product uses (every cmdlet takes them).
const COMMON: &[&str] = &["ErrorAction", "WarningAction"];

/// Parameters that cmdlets.json lists as `MultiValuedProperty` but that take one action
/// keyword (`Quarantine`, `MoveToJmf`, …): checked as enumerations, not as lists to extend.
const ACTIONS: &[(&str, &str)] = &[
    ("Set-AntiPhishPolicy", "TargetedUserProtectionAction"),
    ("Set-AntiPhishPolicy", "TargetedDomainProtectionAction"),
    ("New-AntiPhishPolicy", "TargetedUserProtectionAction"),
    ("New-AntiPhishPolicy", "TargetedDomainProtectionAction"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Switch,
    Bool,
    /// A value the product writes from data (names, domains, addresses): single-quoted.
    Text,
    /// An enumeration, a number, a size: a bare word is fine.
    Enum,
}

#[derive(Clone, Debug)]
struct Param {
    kind: Kind,
    multi: bool,
    add_remove: bool,
    exchange_online: bool,
    max_length: Option<usize>,
}

fn kind_of(ty: &str, switch: bool) -> Kind {
    if switch {
        return Kind::Switch;
    }
    let t = ty.trim_end_matches("[]");
    match t {
        "Boolean" | "System.Boolean" => Kind::Bool,
        "String"
        | "MultiValuedProperty"
        | "Fqdn"
        | "SmtpAddress"
        | "SmtpDomain"
        | "SmtpDomainWithSubdomains"
        | "Word"
        | "Pattern"
        | "RejectText"
        | "DisclaimerText"
        | "HeaderValue"
        | "HeaderName"
        | "SubjectPrefix"
        | "Uri"
        | "ProxyAddressCollection"
        | "TlsCertificate"
        | "EventLogText" => Kind::Text,
        t if t.ends_with("IdParameter") => Kind::Text,
        _ => Kind::Enum,
    }
}

struct Contract {
    cmdlets: BTreeMap<String, BTreeMap<String, Param>>,
}

impl Contract {
    fn load() -> Contract {
        let text = std::fs::read_to_string(format!("{ROOT}/exo-cmdlets/cmdlets.json"))
            .expect("testdata/exo-cmdlets/cmdlets.json");
        let v: Value = serde_json::from_str(&text).expect("cmdlets.json");
        let mut cmdlets = BTreeMap::new();
        for (name, c) in v["cmdlets"].as_object().expect("cmdlets") {
            let mut params = BTreeMap::new();
            for (p, f) in c["parameters"].as_object().expect("parameters") {
                let switch = f["switch"].as_bool().unwrap_or(false);
                let action = ACTIONS.iter().any(|(c, a)| c == name && a == p);
                params.insert(
                    p.to_ascii_lowercase(),
                    Param {
                        kind: if action {
                            Kind::Enum
                        } else {
                            kind_of(f["type"].as_str().unwrap_or(""), switch)
                        },
                        multi: !action && f["multi_valued"].as_bool().unwrap_or(false),
                        add_remove: f["add_remove_syntax"].as_bool().unwrap_or(false),
                        exchange_online: f["exchange_online"].as_bool().unwrap_or(true),
                        max_length: f["max_length"].as_u64().map(|n| n as usize),
                    },
                );
            }
            cmdlets.insert(name.to_ascii_lowercase(), params);
        }
        Contract { cmdlets }
    }
}

/// One place a line comes from, and the export its `Set-` commands act on (if any).
struct Source<'a> {
    what: String,
    export: Option<&'a TenantConfig>,
}

#[derive(Default)]
struct Report {
    violations: Vec<String>,
    lines: usize,
    commands: BTreeSet<String>,
}

impl Report {
    fn flag(&mut self, src: &Source, line: &str, rule: impl Into<String>) {
        self.violations.push(format!(
            "[{}] {}\n    line: {}",
            src.what,
            rule.into(),
            line
        ));
    }
}

/// The text of a single-quoted literal, its doubled quote characters undone; `Err` when a
/// quote character inside is not doubled (PowerShell would end the string there: it treats
/// `‘ ’ ‚ ‛` as `'`, which the grammar does not know).
fn verbatim(text: &str) -> Result<String, String> {
    let inner: Vec<char> = text.chars().collect();
    let inner = &inner[1..inner.len() - 1];
    let mut out = String::new();
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        if mailaudit_core::powershell::is_single_quote(c) {
            if inner.get(i + 1) != Some(&c) {
                return Err(format!("quote character {c:?} not doubled in {text}"));
            }
            i += 1;
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

/// What a parameter's value is.
enum Value2 {
    /// Single-quoted literals, one or a comma list.
    Literals(Vec<String>),
    /// `@{Add=…; Remove=…}` with these keys.
    AddRemove(Vec<String>),
    /// `$null`.
    Null,
    /// `$true` / `$false`.
    Bool,
    /// Another variable, or an expression (parenthesised, sub-expression): reads the
    /// current value when it has a member access (`$o.Prop`).
    Expr { reads_current: bool },
    /// A bare word or a double-quoted string.
    Bare(String),
}

fn descendants<'t>(n: Node<'t>, out: &mut Vec<Node<'t>>) {
    out.push(n);
    let mut c = n.walk();
    for ch in n.children(&mut c) {
        descendants(ch, out);
    }
}

fn classify(nodes: &[Node], src: &str) -> Result<Value2, String> {
    let text: String = nodes
        .iter()
        .map(|n| &src[n.byte_range()])
        .collect::<Vec<_>>()
        .join("");
    if nodes.len() != 1 {
        return Ok(Value2::Bare(text));
    }
    let n = nodes[0];
    let mut all = Vec::new();
    descendants(n, &mut all);
    let kinds: BTreeSet<&str> = all.iter().map(|d| d.kind()).collect();
    if kinds.contains("hash_literal_expression") {
        let keys = all
            .iter()
            .filter(|d| d.kind() == "key_expression")
            .map(|d| src[d.byte_range()].to_string())
            .collect();
        // Its values must be literals too.
        for s in all.iter().filter(|d| d.kind() == "string_literal") {
            verbatim_node(*s, src)?;
        }
        return Ok(Value2::AddRemove(keys));
    }
    if kinds.contains("parenthesized_expression")
        || kinds.contains("sub_expression")
        || kinds.contains("array_expression")
    {
        for s in all.iter().filter(|d| d.kind() == "string_literal") {
            verbatim_node(*s, src)?;
        }
        return Ok(Value2::Expr {
            reads_current: kinds.contains("member_access"),
        });
    }
    if n.kind() == "array_literal_expression" {
        let units: Vec<Node> = {
            let mut c = n.walk();
            n.children(&mut c).filter(|c| c.is_named()).collect()
        };
        let mut lits = Vec::new();
        for u in &units {
            let inner = u.named_child(0);
            match inner.map(|i| i.kind()) {
                Some("string_literal") => lits.push(verbatim_node(inner.unwrap(), src)?),
                Some("variable") => {
                    let v = src[inner.unwrap().byte_range()].to_ascii_lowercase();
                    if units.len() == 1 {
                        return Ok(match v.as_str() {
                            "$null" => Value2::Null,
                            "$true" | "$false" => Value2::Bool,
                            _ => Value2::Expr {
                                reads_current: false,
                            },
                        });
                    }
                    return Ok(Value2::Bare(text));
                }
                _ => return Ok(Value2::Bare(text)),
            }
        }
        return Ok(Value2::Literals(lits));
    }
    Ok(Value2::Bare(text))
}

fn verbatim_node(n: Node, src: &str) -> Result<String, String> {
    let t = &src[n.byte_range()];
    if n.named_child(0).map(|c| c.kind()) != Some("verbatim_string_characters")
        && !t.starts_with('\'')
    {
        return Err(format!(
            "double-quoted string {t} (PowerShell expands $ and ` in it): use a single-quoted literal"
        ));
    }
    // The grammar's verbatim string: '…' with '' inside.
    let inner = &t[1..t.len() - 1].replace("''", "\u{0}");
    let rebuilt = format!("'{}'", inner.replace('\u{0}', "''"));
    verbatim(&rebuilt).map(|s| s.replace("''", "'"))
}

/// The nouns of the cmdlets whose `-Identity` names a tenant object by its name.
const OBJECTS: &[&str] = &[
    "transportrule",
    "inboundconnector",
    "outboundconnector",
    "antiphishpolicy",
    "antiphishrule",
];

/// Objects every Exchange Online tenant has: the default anti-phishing policy (Microsoft
/// Defender for Office 365 and EOP create it; it cannot be removed).
const BUILT_IN: &[(&str, &str)] = &[("antiphishpolicy", "Office365 AntiPhish Default")];

/// The names of the export's objects of one noun of [`OBJECTS`].
fn exported_names(t: &TenantConfig, noun: &str) -> Vec<String> {
    match noun {
        "transportrule" => t.transport_rules.iter().map(|r| r.name.clone()).collect(),
        "inboundconnector" => t
            .inbound_connectors
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        "outboundconnector" => t
            .outbound_connectors
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        "antiphishpolicy" => t.anti_phish.iter().map(|p| p.name.clone()).collect(),
        "antiphishrule" => t.anti_phish_rules.iter().map(|r| r.name.clone()).collect(),
        _ => Vec::new(),
    }
}

/// One value of an inbound connector's `-SenderIPAddresses`: an IPv4 address, a range
/// `a-b`, a CIDR block /24–/32, or a placeholder `<…>`.
fn sender_ip_value(v: &str) -> Result<(), String> {
    use std::net::Ipv4Addr;
    if v.starts_with('<') && v.ends_with('>') {
        return Ok(());
    }
    if let Some((a, b)) = v.split_once('-') {
        return match (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) {
            (Ok(_), Ok(_)) => Ok(()),
            _ => Err("not an IPv4 range a-b".into()),
        };
    }
    let (addr, prefix) = v.split_once('/').unwrap_or((v, "32"));
    if addr.parse::<Ipv4Addr>().is_err() {
        return Err("only IPv4 addresses are accepted".into());
    }
    match prefix.parse::<u8>() {
        Ok(24..=32) => Ok(()),
        _ => Err(format!(
            "/{prefix} is outside /24–/32: split it or use the certificate option"
        )),
    }
}

/// The current value of a multi-valued property in the export, for the objects the product
/// changes: `None` when the export does not show the object.
fn exported_list(t: &TenantConfig, cmdlet: &str, param: &str, id: &str) -> Option<Vec<String>> {
    let eq = |a: &str| a.eq_ignore_ascii_case(id);
    match cmdlet {
        "set-transportrule" => {
            let r = t.transport_rules.iter().find(|r| eq(&r.name))?;
            Some(match param {
                "senderdomainis" => r.sender_domain_is.clone(),
                "senderipranges" => r.sender_ip_ranges.clone(),
                "exceptifsenderipranges" => r.except_if_sender_ip_ranges.clone(),
                "fromaddresscontainswords" => r.from_address_contains_words.clone(),
                _ => return None,
            })
        }
        "set-antiphishpolicy" => {
            let p = t.anti_phish.iter().find(|p| eq(&p.name))?;
            match param {
                "targeteduserstoprotect" => Some(p.targeted_users_to_protect.clone()),
                _ => None,
            }
        }
        "set-inboundconnector" => {
            let c = t.inbound_connectors.iter().find(|c| eq(&c.name))?;
            Some(match param {
                "senderipaddresses" => c.sender_ip_addresses.clone(),
                "senderdomains" => c.sender_domains.clone(),
                _ => return None,
            })
        }
        _ => None,
    }
}

struct Checker {
    contract: Contract,
    parser: Parser,
    report: Report,
    /// Per source, the `(noun, name)` of the objects an earlier `New-` of it creates.
    created: BTreeMap<String, BTreeSet<(String, String)>>,
}

impl Checker {
    fn new() -> Checker {
        let mut parser = Parser::new();
        parser
            .set_language(&tree_sitter_powershell::LANGUAGE.into())
            .expect("PowerShell grammar");
        Checker {
            contract: Contract::load(),
            parser,
            report: Report::default(),
            created: BTreeMap::new(),
        }
    }

    /// Checks each non-comment line of `block` as one command line.
    fn lines(&mut self, src: &Source, block: &str) {
        for line in block.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            self.program(src, l);
        }
    }

    /// Checks `text` as one program (a whole script).
    fn program(&mut self, src: &Source, text: &str) {
        self.report.lines += text.lines().count();
        let Some(tree) = self.parser.parse(text, None) else {
            self.report.flag(src, text, "does not parse");
            return;
        };
        let root = tree.root_node();
        if root.has_error() {
            let mut all = Vec::new();
            descendants(root, &mut all);
            let at = all
                .iter()
                .find(|n| n.is_error() || n.is_missing())
                .map(|n| format!(" at {:?}", &text[n.byte_range()]))
                .unwrap_or_default();
            self.report
                .flag(src, text, format!("parse error (ERROR/MISSING node){at}"));
            return;
        }
        let mut all = Vec::new();
        descendants(root, &mut all);
        for n in all.into_iter().filter(|n| n.kind() == "command") {
            let line = text
                .lines()
                .nth(n.start_position().row)
                .unwrap_or(text)
                .trim()
                .to_string();
            self.command(src, &line, n, text);
        }
    }

    fn command(&mut self, src: &Source, line: &str, cmd: Node, text: &str) {
        let Some(name_node) = cmd.child_by_field_name("command_name") else {
            self.report.flag(src, line, "command without a name");
            return;
        };
        let name = text[name_node.byte_range()].to_string();
        let lname = name.to_ascii_lowercase();
        self.report.commands.insert(name.clone());
        let builtin = BUILTINS
            .iter()
            .find(|(b, _)| b.eq_ignore_ascii_case(&name))
            .map(|(_, spec)| *spec);
        let params: BTreeMap<String, Param> = match (self.contract.cmdlets.get(&lname), builtin) {
            (Some(p), _) => p.clone(),
            (None, Some(Some(spec))) => spec
                .iter()
                .map(|(p, k)| {
                    (
                        p.to_ascii_lowercase(),
                        Param {
                            kind: *k,
                            multi: false,
                            add_remove: false,
                            exchange_online: true,
                            max_length: None,
                        },
                    )
                })
                .collect(),
            (None, Some(None)) => return,
            (None, None) => {
                self.report.flag(
                    src,
                    line,
                    format!("`{name}` is neither in cmdlets.json nor an allowed built-in"),
                );
                return;
            }
        };
        // Tokens: a parameter, or a value (adjacent nodes, as in `a,b`, form one value).
        let mut tokens: Vec<Vec<Node>> = Vec::new();
        if let Some(elems) = cmd.child_by_field_name("command_elements") {
            let mut c = elems.walk();
            let mut prev_end = usize::MAX;
            for ch in elems.children(&mut c) {
                match ch.kind() {
                    "command_argument_sep" => {
                        if !ch.byte_range().is_empty() {
                            prev_end = usize::MAX;
                        }
                    }
                    "comment" => {}
                    k => {
                        let glue = k != "command_parameter"
                            && ch.start_byte() == prev_end
                            && tokens
                                .last()
                                .is_some_and(|t| t[0].kind() != "command_parameter");
                        if glue {
                            tokens.last_mut().expect("token").push(ch);
                        } else {
                            tokens.push(vec![ch]);
                        }
                        prev_end = ch.end_byte();
                    }
                }
            }
        }
        let mut identity: Option<String> = None;
        let mut bound: Vec<(String, Param, Option<Vec<Node>>, bool)> = Vec::new();
        let mut i = 0;
        let positional_name = params.contains_key("name") && builtin.is_some();
        while i < tokens.len() {
            let t = &tokens[i];
            if t[0].kind() != "command_parameter" {
                if positional_name && bound.iter().all(|(p, ..)| p != "name") {
                    let p = params["name"].clone();
                    bound.push(("name".into(), p, Some(t.clone()), false));
                } else {
                    let v: String = t.iter().map(|n| &text[n.byte_range()]).collect();
                    self.report.flag(
                        src,
                        line,
                        format!(
                            "positional or unquoted argument `{v}` (a value with spaces or a placeholder must be one single-quoted literal)"
                        ),
                    );
                }
                i += 1;
                continue;
            }
            let raw = &text[t[0].byte_range()];
            // `-Confirm:$false`: the grammar may or may not include the colon in the node.
            let colon = raw.ends_with(':') || text[t[0].end_byte()..].starts_with(':');
            let pname = raw.trim_start_matches('-').trim_end_matches(':');
            let common = COMMON.iter().any(|c| c.eq_ignore_ascii_case(pname));
            let Some(p) = params
                .get(&pname.to_ascii_lowercase())
                .cloned()
                .or_else(|| {
                    common.then_some(Param {
                        kind: Kind::Enum,
                        multi: false,
                        add_remove: false,
                        exchange_online: true,
                        max_length: None,
                    })
                })
            else {
                self.report
                    .flag(src, line, format!("`{name}` has no parameter -{pname}"));
                i += 1;
                continue;
            };
            if !p.exchange_online {
                self.report.flag(
                    src,
                    line,
                    format!("-{pname} of `{name}` is not available in Exchange Online"),
                );
            }
            let next_is_value = tokens
                .get(i + 1)
                .is_some_and(|n| n[0].kind() != "command_parameter");
            let takes_value = p.kind != Kind::Switch || colon;
            let value = (takes_value && next_is_value).then(|| tokens[i + 1].clone());
            if value.is_some() {
                i += 1;
            } else if takes_value {
                self.report
                    .flag(src, line, format!("-{pname} of `{name}` needs a value"));
            }
            bound.push((pname.to_ascii_lowercase(), p, value, colon));
            i += 1;
        }
        for (pname, p, value, _) in &bound {
            let Some(value) = value else { continue };
            let v = match classify(value, text) {
                Ok(v) => v,
                Err(e) => {
                    self.report.flag(src, line, format!("-{pname}: {e}"));
                    continue;
                }
            };
            if let (true, Value2::Literals(l)) = (pname == "identity", &v) {
                identity = l.first().cloned();
            }
            match (p.kind, &v) {
                (Kind::Switch, Value2::Bool) | (Kind::Bool, Value2::Bool) => {}
                (Kind::Switch | Kind::Bool, _) => self.report.flag(
                    src,
                    line,
                    format!("-{pname} of `{name}` takes $true or $false"),
                ),
                (Kind::Text, Value2::Bare(b)) => self.report.flag(
                    src,
                    line,
                    format!("-{pname}: value `{b}` is not a single-quoted literal"),
                ),
                (_, Value2::AddRemove(keys)) => {
                    if !p.multi || !p.add_remove {
                        self.report.flag(
                            src,
                            line,
                            format!(
                                "-{pname} of `{name}`: its page does not document @{{Add=…}}; write the union instead"
                            ),
                        );
                    }
                    if keys.iter().any(|k| {
                        !k.eq_ignore_ascii_case("Add") && !k.eq_ignore_ascii_case("Remove")
                    }) {
                        self.report
                            .flag(src, line, format!("-{pname}: only Add and Remove keys"));
                    }
                }
                _ => {}
            }
            if let (Some(max), Value2::Literals(l)) = (p.max_length, &v) {
                for s in l {
                    if s.chars().count() > max {
                        self.report.flag(
                            src,
                            line,
                            format!(
                                "-{pname} of `{name}` is {} characters, over the documented maximum of {max}",
                                s.chars().count()
                            ),
                        );
                    }
                }
            }
        }
        self.sender_ip_addresses(src, line, &name, &bound, text);
        self.object_exists(src, line, &lname, &bound, text, identity.as_deref());
        // A Set- on a multi-valued property extends it: @{Add=…}, the union read from the
        // current value, or a plain list that holds every value the export shows.
        if !lname.starts_with("set-") {
            return;
        }
        for (pname, p, value, _) in &bound {
            let (true, Some(value)) = (p.multi, value) else {
                continue;
            };
            match classify(value, text) {
                Ok(Value2::AddRemove(_) | Value2::Null) | Err(_) => {}
                Ok(Value2::Expr {
                    reads_current: true,
                }) => {}
                Ok(Value2::Literals(values)) => {
                    let current = match (src.export, identity.as_deref()) {
                        (Some(t), Some(id)) => exported_list(t, &lname, pname, id),
                        _ => None,
                    };
                    match current {
                        Some(cur) => {
                            let missing: Vec<&String> = cur
                                .iter()
                                .filter(|c| !values.iter().any(|v| v.eq_ignore_ascii_case(c)))
                                .collect();
                            if !missing.is_empty() {
                                self.report.flag(
                                    src,
                                    line,
                                    format!(
                                        "-{pname} of `{name}` replaces the exported list: it drops {missing:?}"
                                    ),
                                );
                            }
                        }
                        None => self.report.flag(
                            src,
                            line,
                            format!(
                                "-{pname} of `{name}` is multi-valued: a plain list replaces what is there (use @{{Add=…}} where documented, or read the current value and add to it)"
                            ),
                        ),
                    }
                }
                Ok(_) => self.report.flag(
                    src,
                    line,
                    format!(
                        "-{pname} of `{name}` is multi-valued: this value replaces what is there"
                    ),
                ),
            }
        }
    }

    /// `-SenderIPAddresses` of an inbound connector takes single IPv4 addresses, ranges
    /// `a-b` and CIDR blocks from /24 to /32 (New-InboundConnector's reference): a gateway's
    /// /20 must be split or use the certificate option instead.
    fn sender_ip_addresses(
        &mut self,
        src: &Source,
        line: &str,
        name: &str,
        bound: &[(String, Param, Option<Vec<Node>>, bool)],
        text: &str,
    ) {
        if !name.to_ascii_lowercase().ends_with("-inboundconnector") {
            return;
        }
        for (pname, _, value, _) in bound {
            let (true, Some(value)) = (pname == "senderipaddresses", value) else {
                continue;
            };
            let Ok(Value2::Literals(values)) = classify(value, text) else {
                continue;
            };
            for v in values {
                if let Err(why) = sender_ip_value(&v) {
                    self.report
                        .flag(src, line, format!("-SenderIPAddresses value `{v}`: {why}"));
                }
            }
        }
    }

    /// A `Set-`, `Remove-`, `Enable-` or `Disable-` on a tenant object (transport rule,
    /// connector, anti-phishing policy or rule) names one that exists: created by an earlier
    /// `New-` of the same guide, shown by the export the line was written from, or a
    /// placeholder (`'<connector name>'`) the technician fills in.
    fn object_exists(
        &mut self,
        src: &Source,
        line: &str,
        lname: &str,
        bound: &[(String, Param, Option<Vec<Node>>, bool)],
        text: &str,
        identity: Option<&str>,
    ) {
        let Some((verb, noun)) = lname.split_once('-') else {
            return;
        };
        if !OBJECTS.contains(&noun) {
            return;
        }
        let created = self.created.entry(src.what.clone()).or_default();
        if verb == "new" {
            let name = bound.iter().find_map(|(p, _, v, _)| match (p.as_str(), v) {
                ("name", Some(v)) => match classify(v, text) {
                    Ok(Value2::Literals(l)) => l.into_iter().next(),
                    _ => None,
                },
                _ => None,
            });
            if let Some(n) = name {
                created.insert((noun.to_string(), n.to_ascii_lowercase()));
            }
            return;
        }
        let (true, Some(id)) = (
            ["set", "remove", "enable", "disable"].contains(&verb),
            identity,
        ) else {
            return;
        };
        if id.starts_with('<')
            || created.contains(&(noun.to_string(), id.to_ascii_lowercase()))
            || BUILT_IN
                .iter()
                .any(|(n, name)| *n == noun && name.eq_ignore_ascii_case(id))
            // The catalogue documents each check with Microsoft's example tenant (contoso.com,
            // 'Fabrikam partner'): examples, not commands for a tenant.
            || (src.export.is_none() && src.what.starts_with("catalogue:"))
        {
            return;
        }
        match src.export {
            Some(t) if exported_names(t, noun).iter().any(|n| n.eq_ignore_ascii_case(id)) => {}
            Some(_) => self.report.flag(
                src,
                line,
                format!(
                    "acts on `{id}`, which neither the export shows nor an earlier New- of this guide creates"
                ),
            ),
            None => self.report.flag(
                src,
                line,
                format!(
                    "acts on `{id}`, which no earlier New- of this guide creates (without an export, name a placeholder)"
                ),
            ),
        }
    }

    /// Inline code spans of prose (`…`) that start with a cmdlet or an allowed command.
    fn inline(&mut self, src: &Source, prose: &str) {
        let mut parts = prose.split('`');
        parts.next();
        while let (Some(code), rest) = (parts.next(), parts.next()) {
            let first = code.split_whitespace().next().unwrap_or("");
            let verb_noun = first.split_once('-').is_some_and(|(v, n)| {
                v.len() > 1
                    && n.len() > 1
                    && v.chars().all(|c| c.is_ascii_alphabetic())
                    && v.starts_with(|c: char| c.is_ascii_uppercase())
                    && n.chars().all(|c| c.is_ascii_alphanumeric())
            });
            if verb_noun && code.contains(' ') {
                self.lines(src, code);
            }
            if rest.is_none() {
                break;
            }
        }
    }

    /// The PowerShell of a Markdown text: its ```powershell blocks and its inline commands.
    fn markdown(&mut self, src: &Source, md: &str) {
        let mut in_ps = false;
        let mut in_other = false;
        let mut prose = String::new();
        for line in md.lines() {
            let t = line.trim();
            if let Some(lang) = t.strip_prefix("```") {
                if in_ps || in_other {
                    in_ps = false;
                    in_other = false;
                } else if lang == "powershell" {
                    in_ps = true;
                } else {
                    in_other = true;
                }
                continue;
            }
            if in_ps {
                self.lines(src, t);
            } else if !in_other {
                prose.push_str(line);
                prose.push('\n');
            }
        }
        self.inline(src, &prose);
    }
}

// ---------------------------------------------------------------------------------------------
// What the product emits.

const D: &str = "contoso.example";
const MX_HOST: &str = "contoso-example.mail.protection.outlook.com";
const TODAY: i64 = 1_769_990_400;

fn zone(spf: Option<&str>, dmarc: Option<&str>, dkim: bool) -> Vec<(String, Rr)> {
    let mut z = vec![
        (D.to_string(), Rr::Mx(0, MX_HOST.into())),
        (MX_HOST.to_string(), Rr::A([192, 0, 2, 25].into())),
        (
            "spf.protection.outlook.com".to_string(),
            Rr::Txt("v=spf1 ip4:40.92.0.0/15 -all".into()),
        ),
    ];
    if let Some(s) = spf {
        z.push((D.into(), Rr::Txt(s.into())));
    }
    if let Some(d) = dmarc {
        z.push((format!("_dmarc.{D}"), Rr::Txt(d.into())));
    }
    if dkim {
        for n in [1, 2] {
            z.push((
                format!("selector{n}._domainkey.{D}"),
                Rr::Cname(format!(
                    "selector{n}-contoso-example._domainkey.contoso.onmicrosoft.com"
                )),
            ));
        }
    }
    z
}

fn audit(z: &[(String, Rr)], parked: bool) -> DomainReport {
    let mut dns = MemoryDns::new();
    for (n, r) in z {
        dns.add(n, r.clone());
    }
    let mut opts = AuditOptions::default();
    if parked {
        opts.parked.insert(D.to_string());
    }
    pollster::block_on(audit_domain(&dns, D, &opts))
}

/// Reports of one domain in every state the guide distinguishes.
fn states() -> Vec<(&'static str, DomainReport)> {
    let m365 = "v=spf1 include:spf.protection.outlook.com -all";
    let mut out = vec![
        ("no DMARC", audit(&zone(Some(m365), None, true), false)),
        (
            "p=none",
            audit(&zone(Some(m365), Some("v=DMARC1; p=none"), true), false),
        ),
        (
            "p=quarantine",
            audit(
                &zone(Some(m365), Some("v=DMARC1; p=quarantine; pct=50"), true),
                false,
            ),
        ),
        (
            "SPF ~all",
            audit(
                &zone(
                    Some("v=spf1 include:spf.protection.outlook.com ~all"),
                    Some("v=DMARC1; p=reject"),
                    true,
                ),
                false,
            ),
        ),
        (
            "no SPF",
            audit(&zone(None, Some("v=DMARC1; p=reject"), true), false),
        ),
        (
            "no DKIM",
            audit(&zone(Some(m365), Some("v=DMARC1; p=reject"), false), false),
        ),
        ("parked", audit(&zone(None, None, false), true)),
    ];
    let mut open = audit(&zone(Some(m365), Some("v=DMARC1; p=reject"), true), false);
    open.relay.verdict = "open".into();
    open.relay.reply = Some("250 2.1.5 Recipient OK".into());
    open.relay.target = Some(MX_HOST.into());
    open.m365_endpoint = Some(MX_HOST.into());
    open.add_findings(vec![Finding::new(
        CheckId::RelayOpen,
        format!("{MX_HOST} accepted mail without authentication"),
    )]);
    out.push(("relay open", open));
    out
}

fn key_people() -> Vec<(String, String)> {
    vec![
        ("Jane Doe".into(), "jane.doe@contoso.example".into()),
        ("Seán O'Brien".into(), "sean@contoso.example".into()),
        // PowerShell reads ‘ and ’ as single quotes: a name must not end the literal.
        (
            "Eve \u{2019}; Remove-Mailbox x; \u{2018}".into(),
            "eve@contoso.example".into(),
        ),
    ]
}

fn ctx(people: bool, tenant: bool) -> GuideContext {
    GuideContext {
        today: TODAY,
        tenant: tenant.then(|| "contoso".to_string()),
        key_people: if people { key_people() } else { Vec::new() },
        ..GuideContext::default()
    }
}

fn real_export() -> TenantConfig {
    let mut files = Vec::new();
    for name in [
        "org_config.json",
        "accepted_domains.json",
        "inbound_connectors.json",
        "outbound_connectors.json",
        "transport_rule.json",
        "dkim_config.json",
        "anti_phish_policies.json",
        "transport_config.json",
        "remote_domains.json",
        "conn_filter.json",
    ] {
        let key = exo::key_for_file(name).expect("key");
        let text = std::fs::read_to_string(format!("{ROOT}/exo/{name}")).expect("testdata/exo");
        files.push((key, text));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(k, t)| (*k, t.as_str())).collect();
    exo::parse_exports(&refs).expect("export").0
}

/// The real export, made hostile: long domain names, quote characters in object names, a
/// protected user and an IP exemption already there, an anti-spoofing rule in audit mode and a
/// spam bypass for an own domain.
fn hostile_export() -> TenantConfig {
    let mut t = real_export();
    for d in [
        format!("{}.example", "verylongsubsidiaryname".repeat(2)),
        "b.example".to_string(),
        "a.example".to_string(),
    ] {
        t.accepted_domains.push(exo::AcceptedDomain {
            domain_name: d,
            domain_type: Some("Authoritative".into()),
            ..Default::default()
        });
    }
    for c in &mut t.inbound_connectors {
        c.name = format!("{} \u{2019}; Remove-InboundConnector x; \u{2018}", c.name);
    }
    for p in &mut t.anti_phish {
        p.name = format!("{} O\u{2019}Neil", p.name);
        p.targeted_users_to_protect = vec!["Existing Person;existing@example.com".into()];
        p.enable_targeted_user_protection = Some(false);
    }
    t.transport_rules.push(exo::TransportRule {
        name: "Bypass it\u{2019}s own".into(),
        state: Some("Enabled".into()),
        set_scl: Some(-1),
        sender_domain_is: vec!["a.example".into()],
        ..Default::default()
    });
    t.transport_rules.push(exo::TransportRule {
        name: "Block spoof".into(),
        state: Some("Enabled".into()),
        mode: Some("Audit".into()),
        from_scope: Some("NotInOrganization".into()),
        sender_domain_is: vec!["b.example".into()],
        except_if_sender_ip_ranges: vec!["198.51.100.0/24".into()],
        reject_message_enhanced_status_code: Some("5.7.1".into()),
        ..Default::default()
    });
    t
}

fn emit_everything(c: &mut Checker) {
    let real = real_export();
    let hostile = hostile_export();
    // The guide, for every state, with and without key people and a tenant import.
    for (state, rep) in states() {
        for (import, export) in [
            ("no import", None),
            ("real import", Some(&real)),
            ("hostile import", Some(&hostile)),
        ] {
            for people in [false, true] {
                let mut view = ReportView::from_report(&rep);
                let mut cx = ctx(people, export.is_some());
                if let Some(t) = export {
                    view.findings.extend(exo::evaluate_for(t, &cx.key_people));
                    // As `guide_for` builds it: the steps name the export's objects.
                    cx.exo = Some(t.clone());
                    cx.dkim_cnames = Some((
                        "selector1-contoso-example._domainkey.contoso.onmicrosoft.com".into(),
                        "selector2-contoso-example._domainkey.contoso.onmicrosoft.com".into(),
                    ));
                }
                let g = guide::build(&view, &cx);
                let src = Source {
                    what: format!("guide: {state}, {import}, key people {people}"),
                    export,
                };
                for (_, item) in g.items() {
                    for s in &item.steps {
                        c.inline(&src, &s.text);
                        if let Some(code) = s.code.as_ref().filter(|c| c.lang == Lang::PowerShell) {
                            c.lines(&src, &code.text);
                        }
                    }
                    for v in item.verify.iter().filter(|c| c.lang == Lang::PowerShell) {
                        c.lines(&src, &v.text);
                    }
                }
                // The audit's own finding fixes (table, JSON, CSV).
                for f in &view.findings {
                    c.inline(&src, &f.fix);
                }
            }
        }
    }
    // Every catalogue entry's fix.
    for id in CheckId::all() {
        let src = Source {
            what: format!("catalogue: {}", id.as_str()),
            export: None,
        };
        c.markdown(&src, id.info().fix);
    }
    // Every EXO-* fix on the exports.
    for (what, t) in [("real export", &real), ("hostile export", &hostile)] {
        for people in [Vec::new(), key_people()] {
            for f in exo::evaluate_for(t, &people) {
                let src = Source {
                    what: format!("{} fix, {what}", f.id.as_str()),
                    export: Some(t),
                };
                c.lines(&src, &f.fix);
            }
        }
    }
    // `exo import`'s correlation of the tenant with DNS: its DKIM command, for a tenant whose
    // configuration for the domain is disabled and for one that has none.
    let mut correlated = 0;
    for cfg in [true, false] {
        let mut t = TenantConfig {
            collected: vec!["accepted_domains".into(), "dkim_config".into()],
            ..TenantConfig::default()
        };
        t.accepted_domains.push(exo::AcceptedDomain {
            domain_name: D.into(),
            ..Default::default()
        });
        if cfg {
            t.dkim.push(exo::DkimSigningConfig {
                domain: D.into(),
                enabled: Some(false),
                ..Default::default()
            });
        }
        for (state, rep) in states() {
            let dns = [(D.to_string(), ReportView::from_report(&rep))];
            for (_, msg) in exo::correlate(&t, &dns, &[D.to_string()]).dkim_mismatch {
                let src = Source {
                    what: format!("exo import correlation (DKIM config {cfg}), {state}"),
                    export: Some(&t),
                };
                // "… but signing is disabled in the tenant: <command>"
                if let Some((_, command)) = msg.rsplit_once(": ") {
                    c.lines(&src, command);
                    correlated += 1;
                }
            }
        }
    }
    assert!(
        correlated >= 2,
        "the correlation's DKIM command was not reached"
    );
    // Its inbound SMTP DANE command, for an MX already on the DNSSEC endpoint while DANE inbound
    // is not enabled in the tenant.
    let mut t = TenantConfig {
        collected: vec!["accepted_domains".into(), "smtp_dane_inbound".into()],
        ..TenantConfig::default()
    };
    t.accepted_domains.push(exo::AcceptedDomain {
        domain_name: D.into(),
        ..Default::default()
    });
    t.smtp_dane_inbound.push(exo::SmtpDaneInboundStatus {
        domain: D.to_ascii_lowercase(),
        status: Some("Disabled".into()),
        enabled: Some(false),
    });
    let mut view = ReportView {
        domain: D.into(),
        ..ReportView::default()
    };
    view.mx.push(mailaudit_core::guide::MxView {
        host: "contoso-com.o-v1.mx.microsoft".into(),
        preference: 0,
    });
    let dane = exo::correlate(&t, &[(D.to_string(), view)], &[D.to_string()]).dane_mismatch;
    assert_eq!(
        dane.len(),
        1,
        "the correlation's DANE command was not reached"
    );
    for (_, msg) in dane {
        let src = Source {
            what: "exo import correlation (DANE inbound)".into(),
            export: Some(&t),
        };
        // "… not enabled in the tenant: <command>"
        let (_, command) = msg
            .rsplit_once(": ")
            .expect("the message ends with the command");
        c.lines(&src, command);
    }
    // The collection script, for each way of signing in.
    for auth in [
        Auth::Interactive,
        Auth::AppOnly {
            app_id: "00000000-0000-0000-0000-000000000000".into(),
            cert_thumbprint: "AB\u{2019}CD".into(),
            organization: "contoso.onmicrosoft.com".into(),
        },
        Auth::Delegated {
            organization: "o\u{2018}brien.onmicrosoft.com".into(),
        },
    ] {
        let src = Source {
            what: format!("exo script ({auth:?})"),
            export: None,
        };
        let script = exo::script(&ScriptOptions { auth });
        c.program(&src, &script);
    }
}

#[test]
fn every_emitted_powershell_line_keeps_the_contract() {
    let mut c = Checker::new();
    emit_everything(&mut c);
    let r = &c.report;
    // The collection found what it must find (a broken collector would pass vacuously).
    for must in [
        "New-TransportRule",
        "Set-TransportRule",
        "Set-AntiPhishPolicy",
        "Set-InboundConnector",
        "New-InboundConnector",
        "Set-DkimSigningConfig",
        "Set-OrganizationConfig",
        "Connect-ExchangeOnline",
        "Get-TransportRule",
        "New-DkimSigningConfig",
    ] {
        assert!(
            r.commands.contains(must),
            "{must} never seen: {:?}",
            r.commands
        );
    }
    assert!(r.lines > 200, "only {} lines checked", r.lines);
    let mut v = r.violations.clone();
    v.sort();
    v.dedup();
    assert!(
        v.is_empty(),
        "{} PowerShell contract violation(s) in {} lines:\n{}",
        v.len(),
        r.lines,
        v.join("\n")
    );
}

/// The checker catches each case of issue 11 (and would fail the test above on it).
#[test]
fn the_checker_flags_the_cases_of_issue_11() {
    let mut c = Checker::new();
    let export = hostile_export();
    let with = |what: &str| Source {
        what: what.to_string(),
        export: Some(&export),
    };
    let cases: &[(&str, &str)] = &[
        (
            "New-TransportRule -Name 'Reject external mail using a.example, b.example, c.example, d.example' -Mode Audit",
            "over the documented maximum of 64",
        ),
        (
            "Set-AntiPhishPolicy -Identity 'Office365 AntiPhish Default O\u{2019}\u{2019}Neil' -TargetedUsersToProtect 'Ann Lee;ann@a.example','Bob;bob@a.example'",
            "replaces the exported list",
        ),
        (
            "Set-TransportRule -Identity 'Block spoof' -ExceptIfSenderIpRanges '192.0.2.0/24'",
            "replaces the exported list",
        ),
        (
            "Set-TransportRule -Identity 'X' -ExceptIfSenderIpRanges @{Add='192.0.2.0/24'}",
            "does not document @{Add=",
        ),
        (
            "Set-TransportRule -Identity 'Block spoof' -SenderDomainIs a.example,b.example",
            "not a single-quoted literal",
        ),
        (
            "Set-InboundConnector -Identity 'it\u{2019}s' -Enabled $false",
            "not doubled",
        ),
        (
            "Set-InboundConnector -Identity \"x$y\" -Enabled $false",
            "double-quoted",
        ),
        ("Set-OrganizationConfig -RejectDirectSend", "needs a value"),
        ("Set-TransportRule -Identity 'x' -Mode", "needs a value"),
        (
            "Set-TransportRule -Identity 'x' -Frobnicate 1",
            "has no parameter",
        ),
        (
            "Disable-TransportRule -Identity 'x' -Confirm 1",
            "positional",
        ),
        (
            "New-InboundConnector -Name 'x' -SenderIPAddresses <sender IP>",
            "positional or unquoted",
        ),
        ("Invoke-Expression 'x'", "neither in cmdlets.json"),
        (
            "New-InboundConnector -Name 'Gateway' -ConnectorType Partner -SenderIPAddresses '203.0.113.0/20'",
            "outside /24–/32",
        ),
        (
            "Set-InboundConnector -Identity 'Partner relay' -SenderIPAddresses '2001:db8::1'",
            "only IPv4",
        ),
        (
            "Set-TransportRule -Identity 'Reject external mail using b.example' -Mode Enforce",
            "neither the export shows nor an earlier New-",
        ),
        ("Set-TransportRule -Identity 'x' -Mode (", "parse error"),
        (
            "Resolve-DnsName -Type TXT contoso.example",
            "not a single-quoted",
        ),
    ];
    for (line, rule) in cases {
        c.report.violations.clear();
        c.lines(&with("case"), line);
        assert!(
            c.report.violations.iter().any(|v| v.contains(rule)),
            "{line}: expected {rule:?}, got {:?}",
            c.report.violations
        );
    }
    for good in [
        "Set-AntiPhishPolicy -Identity 'Office365 AntiPhish Default O\u{2019}\u{2019}Neil' -TargetedUsersToProtect @{Add='Ann Lee;ann@a.example'}",
        "$o = Get-TransportRule -Identity 'Block spoof'; Set-TransportRule -Identity 'Block spoof' -ExceptIfSenderIpRanges (@($o.ExceptIfSenderIpRanges) + @('192.0.2.0/24') | Select-Object -Unique)",
        "Set-TransportRule -Identity 'Block spoof' -SenderDomainIs 'b.example','c.example'",
        "Set-TransportRule -Identity 'Bypass it\u{2019}\u{2019}s own' -SenderDomainIs $null -Mode Enforce",
        "Disconnect-ExchangeOnline -Confirm:$false",
        "Resolve-DnsName -Type TXT -Name '_dmarc.contoso.example'",
        "Get-TransportRule | Where-Object { $_.SetSCL -eq -1 } | Format-List Name,State",
    ] {
        c.report.violations.clear();
        c.lines(&with("good"), good);
        assert!(
            c.report.violations.is_empty(),
            "{good}: {:?}",
            c.report.violations
        );
    }
}
