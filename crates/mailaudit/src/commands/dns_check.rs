//! Whether the run's DNS can be trusted: the resolvers are asked one question before any work
//! (a dead or mistyped `--nameserver` fails at once, exit 2, instead of after every look-up of
//! every domain has timed out), and a run in which not one look-up got an answer says so.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};
use mailaudit_net::dns::{ProbeOutcome, probe_nameserver};
use mailaudit_net::{ResolverConfig, ResolverStats};

/// The longest the check waits for a resolver's reply (less when `--timeout` allows less).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the check waits: [`PROBE_TIMEOUT`], or less when the run's own time for one
/// question (`--timeout` × tries) is shorter.
fn probe_timeout(config: &ResolverConfig) -> Duration {
    let run = config.timeout * u32::try_from(config.attempts.max(1)).unwrap_or(u32::MAX);
    PROBE_TIMEOUT.min(run)
}

/// What an answer other than NOERROR/NXDOMAIN to the test question means, if it means something.
fn warning(server: SocketAddr, rcode: &str) -> Option<String> {
    let why = match rcode {
        "REFUSED" => {
            "it does not resolve names for this machine (an authoritative-only server, or a \
             resolver that serves other networks only), so look-ups through it will likely fail"
        }
        "SERVFAIL" => {
            "it answers but could not resolve the root zone (no route to the Internet's name \
             servers, or a DNSSEC problem), so look-ups through it will likely fail"
        }
        "NOERROR" | "NXDOMAIN" => return None,
        _ => "it may not be a DNS resolver",
    };
    Some(format!(
        "mailaudit: warning: the resolver {server} answered {rcode} to a test query: {why}"
    ))
}

/// Asks every `--nameserver` of the run one question (`. SOA`) at once. Fails when one does
/// not answer at all (no reply, port closed), naming it; any reply, even REFUSED or SERVFAIL,
/// counts as an answer (with a warning saying what it means). The system's resolvers
/// (`/etc/resolv.conf`, no `--nameserver`) are not asked beforehand: no question is sent
/// before there is a domain to audit, and a run in which none of them answers ends with
/// [`all_failed_message`] and exit 2.
pub(crate) async fn check_resolvers(config: &ResolverConfig) -> Result<()> {
    let servers = &config.nameservers;
    if servers.is_empty() {
        return Ok(());
    }
    let timeout = probe_timeout(config);
    let outcomes =
        futures::future::join_all(servers.iter().map(|s| probe_nameserver(*s, timeout))).await;
    let mut dead = Vec::new();
    for (server, outcome) in servers.iter().zip(outcomes) {
        match outcome {
            ProbeOutcome::Answered(rcode) => {
                if let Some(w) = warning(*server, rcode) {
                    eprintln!("{w}");
                }
            }
            ProbeOutcome::NoReply(why) => dead.push((*server, why)),
        }
    }
    let hint = "check --nameserver";
    if let [(server, why)] = dead.as_slice() {
        bail!("the resolver {server} does not answer ({why}); {hint}");
    }
    if dead.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = dead.iter().map(|(s, why)| format!("{s} ({why})")).collect();
    bail!("these resolvers do not answer: {}; {hint}", list.join(", "))
}

/// When not one DNS question of the run got an answer (every one timed out or failed), the
/// message to print: every finding is DNS-LOOKUP-FAILED, no result can be trusted, and the
/// run must not exit 0. `domains` is the number of domains audited (invalid names aside).
pub(crate) fn all_failed_message(stats: &ResolverStats, domains: u64) -> Option<String> {
    (domains > 0 && stats.all_failed()).then(|| {
        format!(
            "mailaudit: every DNS look-up failed ({domains} domain{}, {} look-ups, none \
             answered): no result is trustworthy; check the resolver (--nameserver) and the \
             network, then audit again",
            if domains == 1 { "" } else { "s" },
            stats.failed
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_never_waits_longer_than_the_run_would() {
        let config = |secs: f64, attempts: usize| ResolverConfig {
            timeout: Duration::from_secs_f64(secs),
            attempts,
            ..ResolverConfig::default()
        };
        assert_eq!(probe_timeout(&config(3.0, 2)), Duration::from_secs(2));
        assert_eq!(probe_timeout(&config(0.3, 1)), Duration::from_secs_f64(0.3));
        assert_eq!(probe_timeout(&config(0.5, 2)), Duration::from_secs(1));
    }

    #[test]
    fn refused_is_explained_and_nxdomain_is_fine() {
        let s: SocketAddr = "192.0.2.53:53".parse().unwrap();
        assert!(warning(s, "NXDOMAIN").is_none());
        assert!(warning(s, "NOERROR").is_none());
        let w = warning(s, "REFUSED").unwrap();
        assert!(w.contains("192.0.2.53:53") && w.contains("REFUSED"), "{w}");
        assert!(w.contains("does not resolve names for this machine"), "{w}");
    }

    #[test]
    fn all_failed_needs_failures_and_no_answer() {
        let stats = |answered, failed| ResolverStats {
            lookups: answered + failed,
            queries_sent: answered + failed,
            answered,
            failed,
        };
        assert!(all_failed_message(&stats(0, 12), 2).is_some());
        assert!(all_failed_message(&stats(1, 12), 2).is_none());
        assert!(all_failed_message(&stats(0, 0), 2).is_none());
        assert!(all_failed_message(&stats(0, 12), 0).is_none());
        let m = all_failed_message(&stats(0, 12), 1).unwrap();
        assert!(m.contains("(1 domain, 12 look-ups"), "{m}");
    }
}
