//! The resolver's contract: answers, empty answers, failures as errors, cache and coalescing.

use std::time::Duration;

use mailaudit_core::dns::{DnsError, DnsSource, Mx};
use mailaudit_lab::{LabRecord, Zone};

use crate::lab;

fn zone() -> Zone {
    let mut z = Zone::new();
    z.add(
        "example.test",
        LabRecord::Txt(vec!["v=spf1 ".into(), "-all".into()]),
    );
    z.add("example.test", LabRecord::Mx(10, "mx.example.test".into()));
    z.add(
        "mx.example.test",
        LabRecord::A("192.0.2.25".parse().unwrap()),
    );
    z.add(
        "alias.example.test",
        LabRecord::Cname("example.test".into()),
    );
    z.add(
        "deep.sub.example.test",
        LabRecord::A("192.0.2.1".parse().unwrap()),
    );
    z.add("broken.example.test", LabRecord::ServFail);
    z.add("refused.example.test", LabRecord::Refused);
    z.add("slow.example.test", LabRecord::Timeout);
    z.add("big.example.test", LabRecord::Txt(vec!["x".repeat(3000)]));
    z
}

#[tokio::test]
async fn answers_follow_cnames_and_join_txt_strings() {
    let (_server, r) = lab(zone()).await;
    assert_eq!(
        r.txt("example.test").await.unwrap(),
        vec!["v=spf1 -all".to_string()]
    );
    assert_eq!(
        r.txt("ALIAS.example.test.").await.unwrap(),
        vec!["v=spf1 -all".to_string()]
    );
    assert_eq!(
        r.cname("alias.example.test").await.unwrap(),
        vec!["example.test".to_string()]
    );
    assert_eq!(
        r.mx("example.test").await.unwrap(),
        vec![Mx {
            preference: 10,
            exchange: "mx.example.test".into()
        }]
    );
    assert_eq!(
        r.a("mx.example.test").await.unwrap(),
        vec!["192.0.2.25".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        r.txt("big.example.test").await.unwrap()[0].len(),
        3000,
        "truncated UDP answer retried over TCP"
    );
}

#[tokio::test]
async fn nxdomain_and_nodata_are_empty_answers_not_errors() {
    let (_server, r) = lab(zone()).await;
    assert_eq!(r.txt("nope.example.test").await, Ok(vec![]), "NXDOMAIN");
    assert_eq!(r.aaaa("example.test").await, Ok(vec![]), "NODATA");
    assert_eq!(
        r.txt("sub.example.test").await,
        Ok(vec![]),
        "empty non-terminal"
    );
}

#[tokio::test]
async fn failures_are_errors_never_empty_answers() {
    let (_server, r) = lab(zone()).await;
    assert_eq!(r.txt("broken.example.test").await, Err(DnsError::ServFail));
    assert_eq!(r.txt("refused.example.test").await, Err(DnsError::Refused));
    assert_eq!(r.txt("slow.example.test").await, Err(DnsError::Timeout));
    assert!(matches!(r.txt("a..b").await, Err(DnsError::InvalidName(_))));
}

#[tokio::test]
async fn one_cache_per_run_and_identical_questions_coalesce() {
    let (server, r) = lab(zone()).await;
    let before = server.query_count();
    let asks = (0..200).map(|_| {
        let r = r.clone();
        tokio::spawn(async move { r.txt("example.test").await })
    });
    for a in asks {
        assert_eq!(a.await.unwrap().unwrap(), vec!["v=spf1 -all".to_string()]);
    }
    assert_eq!(
        server.query_count() - before,
        1,
        "200 concurrent identical questions, one query"
    );
    let stats = r.stats();
    assert_eq!((stats.lookups, stats.queries_sent), (200, 1));
    // A failure is cached for the run too: a dead name costs one timeout, not one per domain.
    // Counted in questions sent (each one a timeout), not in wall-clock time.
    let before = r.stats();
    for _ in 0..5 {
        assert_eq!(r.txt("slow.example.test").await, Err(DnsError::Timeout));
    }
    let after = r.stats();
    assert_eq!(
        (
            after.lookups - before.lookups,
            after.queries_sent - before.queries_sent,
            after.failed - before.failed
        ),
        (5, 1, 1),
        "timeouts are not repeated: {after:?}"
    );
}

#[tokio::test]
async fn exists_tells_nxdomain_from_nodata_from_the_cached_mx_question() {
    let mut zone = zone();
    zone.add(
        "dangling.example.test",
        LabRecord::Cname("nowhere.example.test".into()),
    );
    let (server, r) = lab(zone).await;
    assert_eq!(r.exists("example.test").await, Ok(true), "has an MX");
    assert_eq!(r.exists("mx.example.test").await, Ok(true), "NODATA for MX");
    assert_eq!(
        r.exists("sub.example.test").await,
        Ok(true),
        "empty non-terminal"
    );
    assert_eq!(r.exists("alias.example.test").await, Ok(true), "a CNAME");
    assert_eq!(
        r.exists("dangling.example.test").await,
        Ok(true),
        "a CNAME to a name that does not exist: the name itself exists"
    );
    assert_eq!(r.exists("nope.example.test").await, Ok(false), "NXDOMAIN");
    assert_eq!(r.exists("Nope.Example.Test.").await, Ok(false));
    // A failure is never "does not exist".
    assert_eq!(
        r.exists("broken.example.test").await,
        Err(DnsError::ServFail)
    );
    assert_eq!(
        r.exists("refused.example.test").await,
        Err(DnsError::Refused)
    );
    assert_eq!(r.exists("slow.example.test").await, Err(DnsError::Timeout));
    // The answer is the MX question's: asking both costs one query.
    let before = server.query_count();
    assert_eq!(r.mx("gone.example.test").await, Ok(vec![]));
    assert_eq!(r.exists("gone.example.test").await, Ok(false));
    assert_eq!(server.query_count() - before, 1);
    let stats = r.stats();
    assert_eq!(
        stats.answered + stats.failed,
        stats.queries_sent,
        "{stats:?}"
    );
    assert_eq!(stats.failed, 3, "{stats:?}");
    assert!(!stats.all_failed());
}

#[tokio::test]
async fn a_resolver_that_never_answers_counts_every_question_as_failed() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let r = mailaudit_net::Resolver::new(&mailaudit_net::ResolverConfig {
        nameservers: vec![silent.local_addr().expect("addr")],
        timeout: Duration::from_millis(200),
        attempts: 1,
        dnssec: mailaudit_net::Dnssec::Off,
        ..mailaudit_net::ResolverConfig::default()
    })
    .expect("resolver");
    assert!(r.exists("example.test").await.is_err());
    assert!(r.txt("example.test").await.is_err());
    let stats = r.stats();
    assert_eq!((stats.answered, stats.failed), (0, 2), "{stats:?}");
    assert!(stats.all_failed());
}

#[tokio::test]
async fn the_probe_tells_a_server_that_answers_from_one_that_does_not() {
    use mailaudit_net::dns::{ProbeOutcome, probe_nameserver};
    let (server, _) = lab(zone()).await;
    // The lab serves no root zone: NXDOMAIN is an answer all the same.
    assert_eq!(
        probe_nameserver(server.addr(), Duration::from_secs(2)).await,
        ProbeOutcome::Answered("NXDOMAIN")
    );
    // Nothing listening on the port: a leased one, which no other test's socket can take (a
    // UDP port bound and released here could be handed to one). The probe ends by its own
    // timeout at the latest, whichever of refusal and silence the kernel's ICMP rate limit
    // lets through.
    let lease = mailaudit_lab::lease_ports(1)
        .expect("a leased port")
        .remove(0);
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], lease.port()));
    match probe_nameserver(closed, Duration::from_secs(2)).await {
        ProbeOutcome::NoReply(why) => assert!(
            why.contains("refused") || why.starts_with("no reply to a test query within"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    // A socket that reads and never replies: the whole timeout, then no reply.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let t0 = std::time::Instant::now();
    assert_eq!(
        probe_nameserver(
            silent.local_addr().expect("addr"),
            Duration::from_millis(600)
        )
        .await,
        ProbeOutcome::NoReply("no reply to a test query within 0.6 s".into())
    );
    assert!(t0.elapsed() >= Duration::from_millis(600));
}
