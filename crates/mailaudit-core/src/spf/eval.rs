//! `check_host()` (RFC 7208 §4 – §6, §8): evaluates a domain's SPF policy for one client IP.
//!
//! The evaluation asks DNS only through [`DnsSource`] and enforces the processing limits of
//! §4.6.4 across the whole evaluation (includes and redirects share one budget): at most 10
//! DNS-querying terms, at most 2 void look-ups, at most 10 MX names and 10 PTR names per term.
//! Any DNS failure on a look-up the result depends on yields `temperror`; the outcome is
//! always a value ([`SpfOutcome`]), never an error.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use serde::Serialize;

use super::macros::{MacroContext, MacroLetter, MacroString, MacroVars};
use super::{DomainSpec, DualCidr, MAX_DNS_LOOKUPS, MAX_VOID_LOOKUPS, Mechanism, select_records};
use crate::dns::{DnsError, DnsSource, check_name, normalize_name};

/// The most MX or PTR names one `mx` or `ptr` term may look up (RFC 7208 §4.6.4).
pub const MAX_NAMES_PER_TERM: usize = 10;

/// The result of `check_host()` (RFC 7208 §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    /// No SPF record, or no syntactically valid domain to check (§2.6.1).
    None,
    /// The domain owner makes no assertion about the IP (§2.6.2).
    Neutral,
    /// The IP is authorised (§2.6.3).
    Pass,
    /// The IP is explicitly not authorised (§2.6.4).
    Fail,
    /// The IP is probably not authorised (§2.6.5).
    SoftFail,
    /// A transient (generally DNS) error (§2.6.6).
    TempError,
    /// The published records could not be correctly interpreted (§2.6.7).
    PermError,
}

impl SpfResult {
    /// The result word: `none`, `neutral`, `pass`, `fail`, `softfail`, `temperror`, `permerror`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `check_host()` concluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfOutcome {
    /// The result.
    pub result: SpfResult,
    /// For `fail`, the explanation computed from `exp=` (§6.2), when there is a usable one.
    pub explanation: Option<String>,
    /// Why: the term that matched, or the error, in words.
    pub reason: String,
}

/// The receiver-side values only explanation text can use (`%{r}`, `%{t}`, RFC 7208 §7.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receiver {
    /// The receiving host's domain name (`%{r}`); `unknown` when absent.
    pub name: Option<String>,
    /// The current time in seconds since the epoch (`%{t}`); the system clock when absent.
    pub timestamp: Option<u64>,
}

/// RFC 7208 §4.1: "The check_host() function fetches SPF records, parses them, and evaluates
/// them to determine whether a particular host is or is not permitted to send mail with a given
/// identity." Its arguments are `<ip>`, `<domain>` ("the domain that provides the sought-after
/// authorization information; initially, the domain portion of the "MAIL FROM" or "HELO"
/// identity") and `<sender>` ("the "MAIL FROM" or "HELO" identity").
///
/// Conveniences: an empty `sender` means the null reverse-path, so `postmaster@<helo>` is used
/// (§2.4); a sender without a local-part gets `postmaster` (§4.3); an empty `domain` is taken
/// from the sender. An IPv4-mapped IPv6 `ip` is evaluated as IPv4 (§5: "it MUST still be
/// considered an IPv4 address").
pub async fn check_host<D: DnsSource>(
    dns: &D,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> SpfOutcome {
    check_host_with(dns, ip, domain, sender, helo, &Receiver::default()).await
}

/// [`check_host`] with the receiver-side macro values given explicitly.
pub async fn check_host_with<D: DnsSource>(
    dns: &D,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
    receiver: &Receiver,
) -> SpfOutcome {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let helo = helo.trim();
    // RFC 7208 §2.4 and §4.3: null sender and missing local-part become postmaster.
    let sender = if sender.trim().is_empty() {
        format!("postmaster@{helo}")
    } else {
        sender.trim().to_string()
    };
    let (local, sender_domain) = match sender.rsplit_once('@') {
        Some((l, d)) => (
            if l.is_empty() {
                "postmaster".to_string()
            } else {
                l.to_string()
            },
            d.to_string(),
        ),
        None => ("postmaster".to_string(), sender.clone()),
    };
    let sender = format!("{local}@{sender_domain}");
    let domain = if domain.trim().is_empty() {
        sender_domain.as_str()
    } else {
        domain.trim()
    };
    if let Err(why) = initial_domain_check(domain) {
        return SpfOutcome {
            result: SpfResult::None,
            explanation: None,
            reason: format!("{domain:?} is not a usable domain name ({why}); RFC 7208 §4.3"),
        };
    }
    let domain = normalize_name(domain);
    let ctx = Ctx {
        dns,
        ip,
        sender: &sender,
        local: &local,
        sender_domain: &sender_domain,
        helo,
        receiver: receiver.name.as_deref().unwrap_or("unknown"),
        timestamp: receiver.timestamp.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        }),
    };
    let mut state = State::default();
    let eval = ctx.evaluate(&mut state, domain, false).await;
    let explanation = match (&eval.result, &eval.exp) {
        (SpfResult::Fail, Some((spec, domain))) => ctx.explanation(spec, domain).await,
        _ => None,
    };
    SpfOutcome {
        result: eval.result,
        explanation,
        reason: eval.reason,
    }
}

/// RFC 7208 §4.3: "If the <domain> is malformed (e.g., label longer than 63 characters,
/// zero-length label not at the end, etc.) or is not a multi-label domain name, or if the DNS
/// lookup returns "Name Error" (RCODE 3, also known as "NXDOMAIN" \[RFC2308\]), check_host()
/// immediately returns the result "none"."
fn initial_domain_check(domain: &str) -> Result<(), &'static str> {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.starts_with('[') || d.parse::<IpAddr>().is_ok() {
        return Err("an address literal, not a domain name");
    }
    if !d.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("contains characters that cannot be in a domain name");
    }
    if check_name(d).is_err() {
        return Err("empty label, label over 63 octets or name over 253 octets");
    }
    if !d.contains('.') {
        return Err("not a multi-label domain name");
    }
    Ok(())
}

struct Ctx<'a, D> {
    dns: &'a D,
    ip: IpAddr,
    sender: &'a str,
    local: &'a str,
    sender_domain: &'a str,
    helo: &'a str,
    receiver: &'a str,
    timestamp: u64,
}

/// The limits' counters, shared by the whole evaluation (includes and redirects included).
#[derive(Debug, Default)]
struct State {
    lookups: u32,
    voids: u32,
}

/// The outcome of evaluating one record, with the `exp=` to use if the result is `fail`.
struct Eval {
    result: SpfResult,
    reason: String,
    exp: Option<(DomainSpec, String)>,
}

impl Eval {
    fn new(result: SpfResult, reason: impl Into<String>) -> Self {
        Eval {
            result,
            reason: reason.into(),
            exp: None,
        }
    }
}

/// How one mechanism turned out.
enum Step {
    Match,
    NoMatch,
    /// Evaluation ends with this result (errors, limits).
    Stop(SpfResult, String),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<D: DnsSource> Ctx<'_, D> {
    /// Evaluates the SPF record of `domain` (§4.4 – §4.7). `via_term` is set for include and
    /// redirect targets, whose TXT look-up counts as a void look-up when empty.
    ///
    /// RFC 7208 §4.7: "If none of the mechanisms match and there is no "redirect" modifier,
    /// then the check_host() returns a result of "neutral", just as if "?all" were specified as
    /// the last directive. If there is a "redirect" modifier, check_host() proceeds as defined
    /// in Section 6.1."
    fn evaluate<'s>(
        &'s self,
        state: &'s mut State,
        domain: String,
        via_term: bool,
    ) -> BoxFuture<'s, Eval> {
        Box::pin(async move {
            // §4.4: "If the DNS lookup returns a server failure (RCODE 2) or some other error
            // (RCODE other than 0 or 3), or if the lookup times out, then check_host()
            // terminates immediately with the result "temperror"."
            let txt = match self.dns.txt(&domain).await {
                Ok(t) => t,
                Err(e) => return Eval::new(SpfResult::TempError, format!("TXT {domain}: {e}")),
            };
            if txt.is_empty()
                && via_term
                && let Some(Step::Stop(r, why)) = void(state, &format!("TXT {domain}"))
            {
                return Eval::new(r, why);
            }
            // §4.5: "If the resultant record set includes no records, check_host() produces the
            // "none" result. If the resultant record set includes more than one record,
            // check_host() produces the "permerror" result."
            let records = select_records(&txt);
            let text = match records.as_slice() {
                [] => return Eval::new(SpfResult::None, format!("no SPF record at {domain}")),
                [one] => *one,
                many => {
                    return Eval::new(
                        SpfResult::PermError,
                        format!("{} SPF records at {domain}", many.len()),
                    );
                }
            };
            let record = match super::parse(text) {
                Ok(r) => r,
                Err(e) => {
                    return Eval::new(SpfResult::PermError, format!("SPF record at {domain}: {e}"));
                }
            };
            for directive in record.directives() {
                if directive.mechanism.queries_dns()
                    && let Some(Step::Stop(r, why)) =
                        count_lookup(state, &format!("{directive} at {domain}"))
                {
                    return Eval::new(r, why);
                }
                match self.matches(state, &directive.mechanism, &domain).await {
                    Step::NoMatch => {}
                    Step::Stop(r, why) => return Eval::new(r, why),
                    Step::Match => {
                        let result = directive.qualifier.result();
                        let exp = match result {
                            SpfResult::Fail => record.exp().map(|e| (e.clone(), domain.clone())),
                            _ => None,
                        };
                        return Eval {
                            result,
                            reason: format!("{directive} matched at {domain}"),
                            exp,
                        };
                    }
                }
            }
            // §6.1: "For clarity, any "redirect" modifier SHOULD appear as the very last term in
            // a record. Any "redirect" modifier MUST be ignored if there is an "all" mechanism
            // anywhere in the record." (An "all" always matches, so it is never reached.)
            if let Some(spec) = record.redirect() {
                if let Some(Step::Stop(r, why)) =
                    count_lookup(state, &format!("redirect={spec} at {domain}"))
                {
                    return Eval::new(r, why);
                }
                // §6.1: "If no SPF record is found, or if the <target-name> is malformed, the
                // result is a "permerror" rather than "none"."
                let Some(target) = self.target(spec, &domain).await else {
                    return Eval::new(
                        SpfResult::PermError,
                        format!("redirect={spec} at {domain}: malformed target"),
                    );
                };
                let sub = self.evaluate(state, target.clone(), true).await;
                if sub.result == SpfResult::None {
                    return Eval::new(
                        SpfResult::PermError,
                        format!("redirect={target} from {domain}: {}", sub.reason),
                    );
                }
                return sub;
            }
            Eval::new(
                SpfResult::Neutral,
                format!("no mechanism matched at {domain} (default neutral)"),
            )
        })
    }

    /// Evaluates one mechanism (§5).
    async fn matches(&self, state: &mut State, mechanism: &Mechanism, domain: &str) -> Step {
        match mechanism {
            // §5.1: "The "all" mechanism is a test that always matches."
            Mechanism::All => Step::Match,
            // §5.2: the include table.
            Mechanism::Include(spec) => {
                let Some(target) = self.target(spec, domain).await else {
                    return Step::Stop(
                        SpfResult::PermError,
                        format!("include:{spec} at {domain}: malformed target"),
                    );
                };
                let sub = self.evaluate(state, target.clone(), true).await;
                match sub.result {
                    SpfResult::Pass => Step::Match,
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Step::NoMatch,
                    SpfResult::TempError | SpfResult::PermError => {
                        Step::Stop(sub.result, sub.reason)
                    }
                    SpfResult::None => Step::Stop(
                        SpfResult::PermError,
                        format!("include:{target} from {domain}: {}", sub.reason),
                    ),
                }
            }
            // §5.3: "An address lookup is done on the <target-name> using the type of lookup (A
            // or AAAA) appropriate for the connection type (IPv4 or IPv6). The <ip> is compared
            // to the returned address(es). If any address matches, the mechanism matches."
            Mechanism::A { domain: spec, cidr } => {
                let Some(name) = self.target_or_current(spec.as_ref(), domain).await else {
                    return Step::NoMatch;
                };
                match self.addresses(&name).await {
                    Err(e) => Step::Stop(
                        SpfResult::TempError,
                        format!("{} {name}: {e}", self.addr_type()),
                    ),
                    Ok(addrs) if addrs.is_empty() => {
                        void(state, &format!("{} {name}", self.addr_type()))
                            .unwrap_or(Step::NoMatch)
                    }
                    Ok(addrs) => self.any_in_cidr(&addrs, cidr),
                }
            }
            // §5.4: "check_host() first performs an MX lookup on the <target-name>. Then it
            // performs an address lookup on each MX name returned. The <ip> is compared to each
            // returned IP address." §4.6.4: "the evaluation of each "MX" record MUST NOT result
            // in querying more than 10 address records … If this limit is exceeded, the "mx"
            // mechanism MUST produce a "permerror" result."
            Mechanism::Mx { domain: spec, cidr } => {
                let Some(name) = self.target_or_current(spec.as_ref(), domain).await else {
                    return Step::NoMatch;
                };
                let mut mxs = match self.dns.mx(&name).await {
                    Err(e) => return Step::Stop(SpfResult::TempError, format!("MX {name}: {e}")),
                    Ok(m) => m,
                };
                if mxs.is_empty() {
                    return void(state, &format!("MX {name}")).unwrap_or(Step::NoMatch);
                }
                if mxs.len() > MAX_NAMES_PER_TERM {
                    return Step::Stop(
                        SpfResult::PermError,
                        format!(
                            "MX {name} returned {} names (limit {MAX_NAMES_PER_TERM})",
                            mxs.len()
                        ),
                    );
                }
                mxs.sort();
                for mx in &mxs {
                    // A null MX (".") names no host.
                    if mx.exchange.is_empty() || check_name(&mx.exchange).is_err() {
                        continue;
                    }
                    match self.addresses(&mx.exchange).await {
                        Err(e) => {
                            return Step::Stop(
                                SpfResult::TempError,
                                format!("{} {}: {e}", self.addr_type(), mx.exchange),
                            );
                        }
                        Ok(addrs) => {
                            if let Step::Match = self.any_in_cidr(&addrs, cidr) {
                                return Step::Match;
                            }
                        }
                    }
                }
                Step::NoMatch
            }
            // §5.5: "If a DNS error occurs while doing the PTR RR lookup, then this mechanism
            // fails to match." "Check all validated domain names to see if they either match the
            // <target-name> domain or are a subdomain of the <target-name> domain."
            Mechanism::Ptr(spec) => {
                let Some(target) = self.target_or_current(spec.as_ref(), domain).await else {
                    return Step::NoMatch;
                };
                let names = match self.dns.ptr(self.ip).await {
                    Err(_) => return Step::NoMatch,
                    Ok(n) if n.is_empty() => {
                        return void(state, &format!("PTR {}", self.ip)).unwrap_or(Step::NoMatch);
                    }
                    Ok(n) => n,
                };
                let validated = self.validate(&names).await;
                let suffix = format!(".{target}");
                if validated
                    .iter()
                    .any(|n| *n == target || n.ends_with(&suffix))
                {
                    Step::Match
                } else {
                    Step::NoMatch
                }
            }
            // §5.6: "If ip4-cidr-length is omitted, it is taken to be "/32". If ip6-cidr-length
            // is omitted, it is taken to be "/128"." IPv4 connections never match "ip6".
            Mechanism::Ip4 { addr, prefix } => match self.ip {
                IpAddr::V4(ip)
                    if in_prefix(
                        u128::from(u32::from(ip)),
                        u128::from(u32::from(*addr)),
                        prefix.unwrap_or(32),
                        32,
                    ) =>
                {
                    Step::Match
                }
                _ => Step::NoMatch,
            },
            Mechanism::Ip6 { addr, prefix } => match self.ip {
                IpAddr::V6(ip)
                    if in_prefix(
                        u128::from(ip),
                        u128::from(*addr),
                        prefix.unwrap_or(128),
                        128,
                    ) =>
                {
                    Step::Match
                }
                _ => Step::NoMatch,
            },
            // §5.7: "The resulting domain name is used for a DNS A RR lookup (even when the
            // connection type is IPv6). If any A record is returned, this mechanism matches."
            Mechanism::Exists(spec) => {
                let Some(name) = self.target(spec, domain).await else {
                    return Step::NoMatch;
                };
                match self.dns.a(&name).await {
                    Err(e) => Step::Stop(SpfResult::TempError, format!("A {name}: {e}")),
                    Ok(a) if a.is_empty() => {
                        void(state, &format!("A {name}")).unwrap_or(Step::NoMatch)
                    }
                    Ok(_) => Step::Match,
                }
            }
        }
    }

    fn addr_type(&self) -> &'static str {
        if self.ip.is_ipv4() { "A" } else { "AAAA" }
    }

    /// A or AAAA records at `name`, as appropriate for the connection.
    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self.ip {
            IpAddr::V4(_) => Ok(self
                .dns
                .a(name)
                .await?
                .into_iter()
                .map(IpAddr::V4)
                .collect()),
            IpAddr::V6(_) => Ok(self
                .dns
                .aaaa(name)
                .await?
                .into_iter()
                .map(IpAddr::V6)
                .collect()),
        }
    }

    fn any_in_cidr(&self, addrs: &[IpAddr], cidr: &DualCidr) -> Step {
        let hit = addrs.iter().any(|a| match (self.ip, a) {
            (IpAddr::V4(ip), IpAddr::V4(a)) => in_prefix(
                u128::from(u32::from(ip)),
                u128::from(u32::from(*a)),
                cidr.ip4.unwrap_or(32),
                32,
            ),
            (IpAddr::V6(ip), IpAddr::V6(a)) => {
                in_prefix(u128::from(ip), u128::from(*a), cidr.ip6.unwrap_or(128), 128)
            }
            _ => false,
        });
        if hit { Step::Match } else { Step::NoMatch }
    }

    /// The validated names among `names` (§5.5): "For each record returned, validate the domain
    /// name by looking up its IP addresses. … If <ip> is among the returned IP addresses, then
    /// that domain name is validated." At most the first 10 names are tried (§4.6.4); a DNS
    /// error on one skips it.
    async fn validate(&self, names: &[String]) -> Vec<String> {
        let mut validated = Vec::new();
        for name in names.iter().take(MAX_NAMES_PER_TERM) {
            let name = normalize_name(name);
            if check_name(&name).is_err() {
                continue;
            }
            if let Ok(addrs) = self.addresses(&name).await
                && addrs.contains(&self.ip)
            {
                validated.push(name);
            }
        }
        validated
    }

    /// The `%{p}` value (§7.3): "If the <domain> is present in the list of validated domains,
    /// it SHOULD be used. Otherwise, if a subdomain of the <domain> is present, it SHOULD be
    /// used. Otherwise, any name from the list can be used. If there are no validated domain
    /// names or if a DNS error occurs, the string "unknown" is used."
    async fn validated_name(&self, domain: &str) -> Option<String> {
        let names = self.dns.ptr(self.ip).await.ok()?;
        let validated = self.validate(&names).await;
        let suffix = format!(".{domain}");
        validated
            .iter()
            .find(|n| *n == domain)
            .or_else(|| validated.iter().find(|n| n.ends_with(&suffix)))
            .or_else(|| validated.first())
            .cloned()
    }

    async fn expand(&self, ms: &MacroString, domain: &str) -> String {
        let validated = if ms.uses(MacroLetter::P) {
            self.validated_name(domain).await
        } else {
            None
        };
        let vars = MacroVars {
            sender: self.sender,
            local: self.local,
            sender_domain: self.sender_domain,
            domain,
            ip: self.ip,
            validated: validated.as_deref(),
            helo: self.helo,
            receiver: self.receiver,
            timestamp: self.timestamp,
        };
        ms.expand(&vars)
    }

    /// The target name of a domain-spec: expanded (§7), trailing dot dropped, truncated from
    /// the left to 253 octets (§7.3: "if the expanded domain name exceeds 253 characters …,
    /// the left side is truncated to fit, by removing successive domain labels (and their
    /// following dots) until the total length does not exceed 253 characters"). `None` when
    /// the result cannot be a DNS name: the term is then treated like a non-existent domain.
    async fn target(&self, spec: &DomainSpec, domain: &str) -> Option<String> {
        let expanded = self.expand(&spec.0, domain).await;
        let mut name = normalize_name(&expanded);
        while name.len() > 253 {
            let (_, rest) = name.split_once('.')?;
            name = rest.to_string();
        }
        check_name(&name).ok()?;
        Some(name)
    }

    async fn target_or_current(&self, spec: Option<&DomainSpec>, domain: &str) -> Option<String> {
        match spec {
            Some(s) => self.target(s, domain).await,
            None => Some(domain.to_string()),
        }
    }

    /// RFC 7208 §6.2: "If check_host() results in a "fail" due to a mechanism match (such as
    /// "-all"), and the "exp" modifier is present, then the explanation string returned is
    /// computed as described below." … "If there are any DNS processing errors (any RCODE other
    /// than 0), or if no records are returned, or if more than one record is returned, or if
    /// there are syntax errors in the explanation string, then proceed as if no "exp" modifier
    /// was given." §6.2 also restricts the text to US-ASCII.
    async fn explanation(&self, spec: &DomainSpec, domain: &str) -> Option<String> {
        let name = self.target(spec, domain).await?;
        let txt = self.dns.txt(&name).await.ok()?;
        let [text] = txt.as_slice() else {
            return None;
        };
        if !text.is_ascii() {
            return None;
        }
        let ms = MacroString::parse(text, MacroContext::Explanation).ok()?;
        Some(self.expand(&ms, domain).await)
    }
}

/// Counts one DNS-querying term (§4.6.4): "SPF implementations MUST limit the total number of
/// those terms to 10 during SPF evaluation, to avoid unreasonable load on the DNS. If this
/// limit is exceeded, the implementation MUST return "permerror"."
fn count_lookup(state: &mut State, what: &str) -> Option<Step> {
    state.lookups += 1;
    (state.lookups > MAX_DNS_LOOKUPS).then(|| {
        Step::Stop(
            SpfResult::PermError,
            format!("more than {MAX_DNS_LOOKUPS} DNS-querying terms (reached at {what}); RFC 7208 §4.6.4"),
        )
    })
}

/// Counts one void look-up (§4.6.4): "As described at the end of Section 11.1, there may be
/// cases where it is useful to limit the number of "terms" for which DNS queries return either
/// a positive answer (RCODE 0) with an answer count of 0, or a "Name Error" (RCODE 3) answer.
/// These are sometimes collectively referred to as "void lookups". SPF implementations SHOULD
/// limit "void lookups" to two. … If this limit is exceeded, the implementation MUST return
/// "permerror"."
fn void(state: &mut State, what: &str) -> Option<Step> {
    state.voids += 1;
    (state.voids > MAX_VOID_LOOKUPS).then(|| {
        Step::Stop(
            SpfResult::PermError,
            format!(
                "more than {MAX_VOID_LOOKUPS} void look-ups (the last: {what}); RFC 7208 §4.6.4"
            ),
        )
    })
}

/// Whether `ip` is in `net/prefix` (addresses as integers of `bits` bits).
fn in_prefix(ip: u128, net: u128, prefix: u8, bits: u32) -> bool {
    let prefix = u32::from(prefix).min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryDns, Rr};

    fn run(dns: &MemoryDns, ip: &str, sender: &str) -> SpfOutcome {
        let receiver = Receiver {
            name: Some("mx.receiver.example".into()),
            timestamp: Some(1_700_000_000),
        };
        pollster::block_on(check_host_with(
            dns,
            ip.parse().unwrap(),
            "",
            sender,
            "helo.example.org",
            &receiver,
        ))
    }

    fn base() -> MemoryDns {
        MemoryDns::new()
            .txt_at("example.com", "v=spf1 ip4:192.0.2.0/24 a:mail.example.com mx include:_spf.partner.example -all exp=why.example.com")
            .txt_at("why.example.com", "%{i} is not one of %{d}'s hosts (%{c}, %{r}, %{t})")
            .with("mail.example.com", Rr::A("198.51.100.1".parse().unwrap()))
            .with("mail.example.com", Rr::Aaaa("2001:db8::25".parse().unwrap()))
            .with("example.com", Rr::Mx(10, "mx1.example.com".into()))
            .with("mx1.example.com", Rr::A("198.51.100.10".parse().unwrap()))
            .txt_at("_spf.partner.example", "v=spf1 ip4:203.0.113.0/25 ~all")
            .txt_at("soft.example", "v=spf1 ?include:_spf.partner.example ~all")
            .txt_at("none.example", "unrelated text")
            .with("tempfail.example", Rr::Fail(DnsError::Timeout))
            .txt_at("redir.example", "v=spf1 redirect=example.com")
            .txt_at("redir-none.example", "v=spf1 redirect=none.example")
            .txt_at("inc-none.example", "v=spf1 include:none.example -all")
            .txt_at("inc-temp.example", "v=spf1 include:tempfail.example -all")
            .txt_at("two.example", "v=spf1 -all")
            .txt_at("two.example", "v=spf1 +all")
            .txt_at("all-and-redirect.example", "v=spf1 ?all redirect=example.com")
    }

    #[test]
    fn check_host_behaviours() {
        let dns = base();
        for (ip, sender, result) in [
            ("192.0.2.7", "a@example.com", SpfResult::Pass),
            ("198.51.100.1", "a@example.com", SpfResult::Pass),
            ("2001:db8::25", "a@example.com", SpfResult::Pass),
            ("::ffff:198.51.100.1", "a@example.com", SpfResult::Pass),
            ("198.51.100.10", "a@example.com", SpfResult::Pass),
            ("203.0.113.5", "a@example.com", SpfResult::Pass),
            ("203.0.113.200", "a@example.com", SpfResult::Fail),
            ("203.0.113.200", "a@soft.example", SpfResult::SoftFail),
            ("203.0.113.5", "a@soft.example", SpfResult::Neutral),
            ("192.0.2.7", "a@none.example", SpfResult::None),
            ("192.0.2.7", "a@nxdomain.example", SpfResult::None),
            ("192.0.2.7", "a@tempfail.example", SpfResult::TempError),
            ("192.0.2.7", "a@redir.example", SpfResult::Pass),
            ("10.0.0.1", "a@redir.example", SpfResult::Fail),
            ("192.0.2.7", "a@redir-none.example", SpfResult::PermError),
            ("192.0.2.7", "a@inc-none.example", SpfResult::PermError),
            ("192.0.2.7", "a@inc-temp.example", SpfResult::TempError),
            ("192.0.2.7", "a@two.example", SpfResult::PermError),
            // §6.1: a redirect next to an "all" is never used.
            (
                "192.0.2.7",
                "a@all-and-redirect.example",
                SpfResult::Neutral,
            ),
            ("192.0.2.7", "a@single-label", SpfResult::None),
            ("192.0.2.7", "a@[192.0.2.7]", SpfResult::None),
            ("192.0.2.7", "a@a..example", SpfResult::None),
        ] {
            assert_eq!(
                run(&dns, ip, sender).result,
                result,
                "{ip} {sender}: {:?}",
                run(&dns, ip, sender)
            );
        }
    }

    #[test]
    fn rfc7208_section_6_2_explanation_with_c_r_t() {
        let o = run(&base(), "10.0.0.1", "a@example.com");
        assert_eq!(o.result, SpfResult::Fail);
        assert_eq!(
            o.explanation.as_deref(),
            Some(
                "10.0.0.1 is not one of example.com's hosts (10.0.0.1, mx.receiver.example, 1700000000)"
            )
        );
        assert_eq!(o.reason, "-all matched at example.com");
        // Redirect: the explanation of the target is used, the one of the origin is not.
        let o = run(&base(), "10.0.0.1", "a@redir.example");
        assert_eq!(
            o.explanation.as_deref(),
            Some(
                "10.0.0.1 is not one of example.com's hosts (10.0.0.1, mx.receiver.example, 1700000000)"
            )
        );
    }

    #[test]
    fn empty_sender_and_missing_local_part_become_postmaster() {
        let dns = MemoryDns::new()
            .txt_at("helo.example.org", "v=spf1 -all exp=e.example.org")
            .txt_at("e.example.org", "%{s}")
            .txt_at("example.net", "v=spf1 -all exp=e.example.org");
        let o = run(&dns, "192.0.2.1", "");
        assert_eq!(
            (o.result, o.explanation.as_deref()),
            (SpfResult::Fail, Some("postmaster@helo.example.org"))
        );
        let o = run(&dns, "192.0.2.1", "@example.net");
        assert_eq!(o.explanation.as_deref(), Some("postmaster@example.net"));
    }

    #[test]
    fn rfc7208_section_4_6_4_limits() {
        let mut dns = MemoryDns::new()
            .txt_at(
                "ten.example",
                "v=spf1 a mx a mx a mx a mx a exists:x.example -all",
            )
            .txt_at(
                "eleven.example",
                "v=spf1 a mx a mx a mx a mx a mx exists:x.example -all",
            )
            .txt_at(
                "voids.example",
                "v=spf1 a:n1.example a:n2.example a:n3.example -all",
            )
            .txt_at("two-voids.example", "v=spf1 a:n1.example a:n2.example -all")
            .txt_at("loop.example", "v=spf1 include:loop.example -all")
            .txt_at("mx11.example", "v=spf1 mx -all")
            .with("x.example", Rr::A("127.0.0.2".parse().unwrap()))
            .with("ten.example", Rr::A("192.0.2.99".parse().unwrap()))
            .with("eleven.example", Rr::A("192.0.2.99".parse().unwrap()))
            .with("ten.example", Rr::Mx(0, "ten.example".into()))
            .with("eleven.example", Rr::Mx(0, "eleven.example".into()));
        for i in 0..11u16 {
            dns.add("mx11.example", Rr::Mx(i, format!("m{i}.example")));
        }
        for (sender, result) in [
            ("a@ten.example", SpfResult::Pass),
            ("a@eleven.example", SpfResult::PermError),
            ("a@voids.example", SpfResult::PermError),
            ("a@two-voids.example", SpfResult::Fail),
            ("a@loop.example", SpfResult::PermError),
            ("a@mx11.example", SpfResult::PermError),
        ] {
            let o = run(&dns, "192.0.2.1", sender);
            assert_eq!(o.result, result, "{sender}: {o:?}");
        }
        assert!(
            run(&dns, "192.0.2.1", "a@eleven.example")
                .reason
                .contains("more than 10 DNS-querying terms")
        );
        assert!(
            run(&dns, "192.0.2.1", "a@voids.example")
                .reason
                .contains("void")
        );
    }

    #[test]
    fn rfc7208_section_5_5_ptr_uses_validated_names() {
        let dns = MemoryDns::new()
            .txt_at("example.com", "v=spf1 ptr -all exp=e.example.com")
            .txt_at("e.example.com", "from %{p}")
            .with("1.2.0.192.in-addr.arpa", Rr::Ptr("host.example.com".into()))
            .with(
                "1.2.0.192.in-addr.arpa",
                Rr::Ptr("forged.example.com".into()),
            )
            .with(
                "2.2.0.192.in-addr.arpa",
                Rr::Ptr("forged.example.com".into()),
            )
            .with("host.example.com", Rr::A("192.0.2.1".parse().unwrap()));
        assert_eq!(
            run(&dns, "192.0.2.1", "a@example.com").result,
            SpfResult::Pass
        );
        let o = run(&dns, "192.0.2.2", "a@example.com");
        assert_eq!(
            (o.result, o.explanation.as_deref()),
            (SpfResult::Fail, Some("from unknown"))
        );
    }

    #[test]
    fn cidr_matching() {
        for (ip, net, prefix, bits, hit) in [
            (0xC000_0201u128, 0xC000_0200u128, 24u8, 32u32, true),
            (0xC000_0301, 0xC000_0200, 24, 32, false),
            (1, 0xFFFF_FFFF, 0, 32, true),
            (5, 5, 32, 32, true),
            (5, 4, 32, 32, false),
            (u128::MAX, 0, 0, 128, true),
            (u128::MAX, u128::MAX - 1, 127, 128, true),
        ] {
            assert_eq!(
                in_prefix(ip, net, prefix, bits),
                hit,
                "{ip:x} {net:x}/{prefix}"
            );
        }
    }

    #[test]
    fn results_serialize_lower_case() {
        for (r, s) in [
            (SpfResult::None, "none"),
            (SpfResult::Neutral, "neutral"),
            (SpfResult::Pass, "pass"),
            (SpfResult::Fail, "fail"),
            (SpfResult::SoftFail, "softfail"),
            (SpfResult::TempError, "temperror"),
            (SpfResult::PermError, "permerror"),
        ] {
            assert_eq!(r.as_str(), s);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{s}\""));
        }
    }

    proptest::proptest! {
        #[test]
        fn evaluation_never_panics(
            record in "v=spf1( [-+~?]?(all|a|mx|ptr|include:[a-z%{}.]{1,12}|exists:[a-z%{}.]{1,12}|ip4:192.0.2.[0-9]{1,3}(/[0-9]{1,2})?|redirect=[a-z.]{1,10}|exp=[a-z.]{1,10}|[ -~]{0,10})){0,6}",
            ip in proptest::prelude::any::<[u8; 16]>(),
            sender in "[ -~]{0,20}",
        ) {
            let dns = MemoryDns::new()
                .txt_at("example.com", &record)
                .txt_at("a.example.com", &record)
                .with("example.com", Rr::A("192.0.2.1".parse().unwrap()));
            let ip = IpAddr::from(ip);
            let _ = pollster::block_on(check_host(&dns, ip, "example.com", &sender, "helo.example"));
            let _ = pollster::block_on(check_host(&dns, ip, "", &sender, &sender));
        }
    }
}
