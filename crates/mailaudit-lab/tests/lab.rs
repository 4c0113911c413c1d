//! The lab server over real loopback sockets, queried with raw hickory-proto messages.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use mailaudit_lab::client::{self, ClientError, build_query, tcp_exchange, udp_exchange};
use mailaudit_lab::{LabDns, LabError, LabRecord, ParseError, Zone, sample_fleet};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(2);

const ZONE: &str = r#"
# Test zone for the lab server.
contoso.example        A     192.0.2.10
contoso.example        MX    10 contoso-example.mail.protection.outlook.com
contoso.example        MX    20 backup.contoso.example
contoso.example        TXT   "v=spf1 include:spf.protection.outlook.com" " -all"
contoso.example        TXT   "MS=ms12345678"
contoso.example        SPF   "v=spf1 -all"
www.contoso.example    CNAME contoso.example
alias2.contoso.example CNAME www.contoso.example
dangling.contoso.example CNAME gone.example
selector1._domainkey.contoso.example CNAME selector1-contoso-example._domainkey.contoso.onmicrosoft.com
selector1-contoso-example._domainkey.contoso.onmicrosoft.com TXT "v=DKIM1; k=rsa; p=MIIB"
_dmarc.broken.example  SERVFAIL
_dmarc.refused.example REFUSED
_dmarc.slow.example    TIMEOUT
slowalias.example      CNAME _dmarc.slow.example
parked.example         MX    0 .
deep.a.b.contoso.example A   192.0.2.99
10.2.0.192.in-addr.arpa PTR  contoso.example
"#;

async fn lab() -> LabDns {
    LabDns::start(Zone::parse(ZONE).expect("test zone parses"))
        .await
        .expect("lab starts")
}

async fn udp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let q = build_query(0x1234, name, rtype, Some(1232)).expect("query");
    udp_exchange(addr, &q, LONG).await.expect("udp reply")
}

async fn tcp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let q = build_query(0x4321, name, rtype, None).expect("query");
    tcp_exchange(addr, &q, LONG).await.expect("tcp reply")
}

fn rdata(answers: &[Record]) -> Vec<String> {
    answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

fn txt_strings(record: &Record) -> Vec<Vec<u8>> {
    match &record.data {
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
        other => panic!("not TXT: {other:?}"),
    }
}

#[tokio::test]
async fn a_record_with_flags_and_question_case_echoed() {
    let dns = lab().await;
    let reply = udp(dns.addr(), "CONTOSO.Example", RecordType::A).await;
    assert_eq!(reply.metadata.id, 0x1234);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative, "AA");
    assert!(reply.metadata.recursion_available, "RA");
    assert!(reply.metadata.recursion_desired, "RD echoed");
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.queries[0].name().to_ascii(), "CONTOSO.Example.");
    assert_eq!(rdata(&reply.answers), ["CONTOSO.Example. A 192.0.2.10"]);
    assert!(reply.edns.is_some(), "OPT answered with OPT");
    // The same over TCP.
    let reply = tcp(dns.addr(), "contoso.example.", RecordType::A).await;
    assert_eq!(rdata(&reply.answers), ["contoso.example. A 192.0.2.10"]);
    assert!(reply.edns.is_none(), "no OPT without OPT");
}

#[tokio::test]
async fn mx_records_and_null_mx() {
    let dns = lab().await;
    let reply = udp(dns.addr(), "contoso.example", RecordType::MX).await;
    assert_eq!(
        rdata(&reply.answers),
        [
            "contoso.example. MX 10 contoso-example.mail.protection.outlook.com.",
            "contoso.example. MX 20 backup.contoso.example."
        ]
    );
    let reply = udp(dns.addr(), "parked.example", RecordType::MX).await;
    match &reply.answers[..] {
        [r] => match &r.data {
            RData::MX(mx) => {
                assert_eq!(mx.preference, 0);
                assert!(mx.exchange.is_root());
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn txt_keeps_character_strings_and_spf_type_99() {
    let dns = lab().await;
    let reply = udp(dns.addr(), "contoso.example", RecordType::TXT).await;
    let strings: Vec<Vec<Vec<u8>>> = reply.answers.iter().map(txt_strings).collect();
    assert_eq!(
        strings,
        [
            vec![
                b"v=spf1 include:spf.protection.outlook.com".to_vec(),
                b" -all".to_vec()
            ],
            vec![b"MS=ms12345678".to_vec()],
        ]
    );
    let reply = udp(dns.addr(), "contoso.example", RecordType::Unknown(99)).await;
    match &reply.answers[..] {
        [r] => match &r.data {
            RData::Unknown { code, rdata } => {
                assert_eq!(u16::from(*code), 99);
                assert_eq!(rdata.anything, b"\x0bv=spf1 -all");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cname_chase_inside_the_zone() {
    let dns = lab().await;
    let reply = udp(dns.addr(), "Alias2.contoso.example", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        rdata(&reply.answers),
        [
            "Alias2.contoso.example. CNAME www.contoso.example.",
            "www.contoso.example. CNAME contoso.example.",
            "contoso.example. A 192.0.2.10"
        ]
    );
    // A CNAME question gets the CNAME itself, not chased.
    let reply = udp(dns.addr(), "alias2.contoso.example", RecordType::CNAME).await;
    assert_eq!(
        rdata(&reply.answers),
        ["alias2.contoso.example. CNAME www.contoso.example."]
    );
    // DKIM selector CNAME to the key at the tenant.
    let reply = udp(
        dns.addr(),
        "selector1._domainkey.contoso.example",
        RecordType::TXT,
    )
    .await;
    assert_eq!(reply.answers.len(), 2);
    assert_eq!(
        txt_strings(&reply.answers[1]),
        [b"v=DKIM1; k=rsa; p=MIIB".to_vec()]
    );
    // A CNAME to a missing name: NXDOMAIN with the CNAME (RFC 6604).
    let reply = udp(dns.addr(), "dangling.contoso.example", RecordType::TXT).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        rdata(&reply.answers),
        ["dangling.contoso.example. CNAME gone.example."]
    );
}

#[tokio::test]
async fn nodata_nxdomain_and_empty_non_terminals() {
    let dns = lab().await;
    for (name, rtype, rcode) in [
        ("contoso.example", RecordType::AAAA, ResponseCode::NoError),
        (
            "nothing.contoso.example",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        ("b.contoso.example", RecordType::A, ResponseCode::NoError),
        (
            "a.b.contoso.example",
            RecordType::TXT,
            ResponseCode::NoError,
        ),
        ("example", RecordType::TXT, ResponseCode::NoError),
        (
            "x.deep.a.b.contoso.example",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        ("contoso.test", RecordType::A, ResponseCode::NXDomain),
    ] {
        let reply = udp(dns.addr(), name, rtype).await;
        assert_eq!(reply.metadata.response_code, rcode, "{name} {rtype}");
        assert!(reply.answers.is_empty(), "{name} {rtype}");
        assert!(reply.metadata.authoritative, "{name}");
        match &reply.authorities[..] {
            [soa] => assert_eq!(soa.record_type(), RecordType::SOA, "{name}"),
            other => panic!("{name}: expected one SOA, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn servfail_and_refused() {
    let dns = lab().await;
    for (name, rcode) in [
        ("_dmarc.broken.example", ResponseCode::ServFail),
        ("_DMARC.Broken.Example", ResponseCode::ServFail),
        ("_dmarc.refused.example", ResponseCode::Refused),
    ] {
        for reply in [
            udp(dns.addr(), name, RecordType::TXT).await,
            tcp(dns.addr(), name, RecordType::TXT).await,
        ] {
            assert_eq!(reply.metadata.response_code, rcode, "{name}");
            assert!(reply.answers.is_empty());
        }
    }
    // The parent still exists (as an empty non-terminal).
    let reply = udp(dns.addr(), "broken.example", RecordType::TXT).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn timeout_sends_nothing_over_udp_or_tcp() {
    let dns = lab().await;
    for name in ["_dmarc.slow.example", "slowalias.example"] {
        let q = build_query(7, name, RecordType::TXT, Some(1232)).expect("query");
        let started = std::time::Instant::now();
        let udp = udp_exchange(dns.addr(), &q, SHORT).await;
        assert!(
            matches!(udp, Err(ClientError::Timeout(_))),
            "{name}: {udp:?}"
        );
        assert!(started.elapsed() >= SHORT);
        let tcp = tcp_exchange(dns.addr(), &q, SHORT).await;
        assert!(
            matches!(tcp, Err(ClientError::Timeout(_))),
            "{name}: {tcp:?}"
        );
    }
    // The server is still fine afterwards, and counted the ignored queries.
    assert_eq!(dns.query_count(), 4);
    let reply = udp(dns.addr(), "contoso.example", RecordType::A).await;
    assert_eq!(reply.answers.len(), 1);
}

#[tokio::test]
async fn large_txt_is_truncated_over_udp_then_complete_over_tcp() {
    let big = "x".repeat(3000);
    let mut zone = Zone::new();
    zone.add("big.example", LabRecord::Txt(vec![big.clone()]));
    let dns = LabDns::start(zone).await.expect("lab");

    // Without EDNS: 512 octets at most (RFC 1035 §4.2.1).
    let q = build_query(1, "big.example", RecordType::TXT, None).expect("query");
    let reply = udp_exchange(dns.addr(), &q, LONG).await.expect("reply");
    assert!(reply.metadata.truncation, "TC without EDNS");
    assert!(reply.answers.is_empty());
    let q = build_query(2, "big.example", RecordType::TXT, Some(1232)).expect("query");
    let reply = udp_exchange(dns.addr(), &q, LONG).await.expect("reply");
    assert!(reply.metadata.truncation, "TC with EDNS 1232");

    // A client advertising 4096 gets it all over UDP.
    let q = build_query(3, "big.example", RecordType::TXT, Some(4096)).expect("query");
    let reply = udp_exchange(dns.addr(), &q, LONG).await.expect("reply");
    assert!(!reply.metadata.truncation, "no TC with EDNS 4096");

    // Over TCP, the whole record, split into 255-octet character-strings.
    let reply = tcp_exchange(dns.addr(), &q, LONG).await.expect("reply");
    assert!(!reply.metadata.truncation);
    let strings = txt_strings(&reply.answers[0]);
    assert_eq!(strings.len(), 12);
    assert!(strings.iter().all(|s| s.len() <= 255));
    assert_eq!(strings.concat(), big.as_bytes());

    // The stub client retries over TCP by itself.
    let reply = client::query(dns.addr(), "big.example", RecordType::TXT)
        .await
        .expect("reply");
    assert!(!reply.metadata.truncation);
    assert_eq!(txt_strings(&reply.answers[0]).concat(), big.as_bytes());
}

#[tokio::test]
async fn set_zone_swaps_the_data() {
    let dns = lab().await;
    let reply = udp(dns.addr(), "contoso.example", RecordType::A).await;
    assert_eq!(reply.answers.len(), 1);

    let mut next = Zone::new();
    next.add(
        "contoso.example",
        LabRecord::A(Ipv4Addr::new(198, 51, 100, 7)),
    )
    .add("_dmarc.contoso.example", LabRecord::ServFail);
    dns.set_zone(next);
    let reply = udp(dns.addr(), "contoso.example", RecordType::A).await;
    assert_eq!(rdata(&reply.answers), ["contoso.example. A 198.51.100.7"]);
    let reply = udp(dns.addr(), "_dmarc.contoso.example", RecordType::TXT).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    let reply = udp(dns.addr(), "www.contoso.example", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);

    dns.set_zone(Zone::new());
    let reply = udp(dns.addr(), "contoso.example", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn query_count_counts_every_message() {
    let dns = lab().await;
    assert_eq!(dns.query_count(), 0);
    for _ in 0..3 {
        udp(dns.addr(), "contoso.example", RecordType::A).await;
    }
    tcp(dns.addr(), "nothing.example", RecordType::A).await;
    assert_eq!(dns.query_count(), 4);
    assert_eq!(dns.reset_query_count(), 4);
    assert_eq!(dns.query_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_servers_on_distinct_ports() {
    let mut servers = Vec::new();
    for i in 0..4u8 {
        let mut zone = Zone::new();
        zone.add("who.example", LabRecord::A(Ipv4Addr::new(192, 0, 2, i)));
        servers.push(LabDns::start(zone).await.expect("lab"));
    }
    let mut ports: Vec<u16> = servers.iter().map(|s| s.addr().port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    for (i, server) in servers.iter().enumerate() {
        assert!(server.addr().ip().is_loopback());
        let reply = tcp(server.addr(), "who.example", RecordType::A).await;
        assert_eq!(
            rdata(&reply.answers),
            [format!("who.example. A 192.0.2.{i}")]
        );
        let reply = udp(server.addr(), "who.example", RecordType::A).await;
        assert_eq!(
            rdata(&reply.answers),
            [format!("who.example. A 192.0.2.{i}")]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_on_a_multi_thread_runtime() {
    let dns = lab().await;
    let addr = dns.addr();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32u16 {
        tasks.spawn(async move {
            for i in 0..50u16 {
                let name = if i % 2 == 0 {
                    "contoso.example"
                } else {
                    "nothing.example"
                };
                let q = build_query(t * 100 + i, name, RecordType::A, Some(1232)).expect("q");
                let reply = udp_exchange(addr, &q, LONG).await.expect("reply");
                let expected = if i % 2 == 0 {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                assert_eq!(reply.metadata.response_code, expected);
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task");
    }
    assert_eq!(dns.query_count(), 32 * 50);
}

#[tokio::test]
async fn ptr_at_reverse_names() {
    let dns = lab().await;
    let name = mailaudit_lab::reverse_name("192.0.2.10".parse().expect("ip"));
    let reply = udp(dns.addr(), &name, RecordType::PTR).await;
    assert_eq!(
        rdata(&reply.answers),
        ["10.2.0.192.in-addr.arpa. PTR contoso.example."]
    );
}

#[tokio::test]
async fn shutdown_closes_the_sockets() {
    let dns = lab().await;
    let addr = dns.addr();
    dns.shutdown().await;
    let q = build_query(9, "contoso.example", RecordType::A, None).expect("query");
    assert!(tcp_exchange(addr, &q, SHORT).await.is_err());
    assert!(udp_exchange(addr, &q, SHORT).await.is_err());

    // Dropping also stops it.
    let dns = lab().await;
    let addr = dns.addr();
    drop(dns);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tcp_exchange(addr, &q, SHORT).await.is_err());
}

#[tokio::test]
async fn start_rejects_invalid_names() {
    let mut zone = Zone::new();
    zone.add("bad..example", LabRecord::A(Ipv4Addr::LOCALHOST));
    assert!(matches!(
        LabDns::start(zone).await,
        Err(LabError::InvalidName { .. })
    ));
}

#[test]
fn parse_errors_carry_line_numbers() {
    let text = "ok.example A 192.0.2.1\n\n# fine\nbad.example MX ten mx.example\n";
    match Zone::parse(text) {
        Err(LabError::Parse { line, error }) => {
            assert_eq!(line, 4);
            assert_eq!(error, ParseError::InvalidPreference("ten".into()));
        }
        other => panic!("{other:?}"),
    }
    let err = Zone::parse("x.example TXT \"open").expect_err("unterminated");
    assert_eq!(err.to_string(), "zone line 1: unterminated quoted string");
}

#[tokio::test]
async fn sample_fleet_is_served() {
    let (zone, domains) = sample_fleet();
    assert_eq!(domains.len(), 15);
    let dns = LabDns::start(zone).await.expect("lab");
    let addr = dns.addr();
    for domain in &domains {
        let reply = client::query(addr, domain, RecordType::MX)
            .await
            .expect("MX");
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{domain}"
        );
        assert!(!reply.answers.is_empty(), "{domain} MX");
    }
    let reply = client::query(addr, "_dmarc.trey-research.example", RecordType::TXT)
        .await
        .expect("reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    let reply = client::query(addr, "_dmarc.fabrikam-dental.example", RecordType::TXT)
        .await
        .expect("reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);

    // The hardened domain's DKIM key: CNAME to the tenant, a 2048-bit key in two strings.
    let reply = client::query(
        addr,
        "selector1._domainkey.contoso-legal.example",
        RecordType::TXT,
    )
    .await
    .expect("reply");
    assert_eq!(reply.answers.len(), 2);
    let strings = txt_strings(&reply.answers[1]);
    assert_eq!(strings.len(), 2);
    let key = String::from_utf8(strings.concat()).expect("ascii");
    assert!(key.starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"), "{key}");

    // DKIM CNAMEs without keys: NXDOMAIN with the CNAME.
    let reply = client::query(
        addr,
        "selector1._domainkey.tailspin-realty.example",
        RecordType::TXT,
    )
    .await
    .expect("reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.answers.len(), 1);

    // Two SPF records.
    let reply = client::query(addr, "alpine-ski-house.example", RecordType::TXT)
        .await
        .expect("reply");
    let spf = reply
        .answers
        .iter()
        .filter(|r| txt_strings(r).concat().starts_with(b"v=spf1"))
        .count();
    assert_eq!(spf, 2);
}
