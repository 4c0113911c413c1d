//! The DNSSEC-signing lab server, checked with hickory's validating resolver and the lab's
//! trust anchor.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;
use mailaudit_lab::dnssec::{Mode, SignedDns, SignedZone};
use mailaudit_lab::{LabError, TTL};

const TLSA_HEX: &str = "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1";

/// One server for most tests: a signed zone with mail records, an unsigned one, one with
/// expired signatures, one whose parent's DS is of another key, and one under another TLD.
async fn lab() -> SignedDns {
    SignedDns::start(&[
        SignedZone::new(
            "sec.test",
            format!(
                r#"
sec.test              MX    10 mx.sec.test
sec.test              TXT   "v=spf1 -all"
www.sec.test          A     127.0.0.10
mx.sec.test           A     127.0.0.11
mx.sec.test           AAAA  ::1
alias.sec.test        CNAME www.sec.test
_25._tcp.mx.sec.test  TLSA  3 1 1 {TLSA_HEX}
"#
            ),
            Mode::Signed,
        ),
        SignedZone::new("plain.test", "www.plain.test A 127.0.0.20", Mode::Unsigned),
        SignedZone::new(
            "old.test.",
            "www.old.test A 127.0.0.30",
            Mode::ExpiredSignatures,
        ),
        SignedZone::new(
            "wrongds.test",
            "www.wrongds.test A 127.0.0.40",
            Mode::DsMismatch,
        ),
        SignedZone::new(
            "Other.Example",
            "www.other.example A 127.0.0.50",
            Mode::Signed,
        ),
    ])
    .await
    .expect("lab starts")
}

fn builder(addr: SocketAddr) -> hickory_resolver::ResolverBuilder<TokioRuntimeProvider> {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
    let mut builder = TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().attempts = 1;
    builder.options_mut().timeout = Duration::from_secs(5);
    builder
}

/// A validating resolver that trusts only `anchors`.
fn validating(addr: SocketAddr, anchors: TrustAnchors) -> TokioResolver {
    builder(addr)
        .with_trust_anchor(Arc::new(anchors))
        .build()
        .expect("resolver")
}

/// A validating resolver that trusts the lab's root key.
fn lab_resolver(dns: &SignedDns) -> TokioResolver {
    let anchors = TrustAnchors::from_str(dns.trust_anchor()).expect("trust anchor parses");
    validating(dns.addr(), anchors)
}

/// A resolver that does not validate.
fn plain_resolver(dns: &SignedDns) -> TokioResolver {
    builder(dns.addr()).build().expect("resolver")
}

/// What a look-up gave: each answer (signatures left out, in name order) with its proof, a negative answer
/// with its proof, or bogus.
#[derive(Debug, PartialEq)]
enum Seen {
    Answers(Vec<(String, Proof)>),
    Negative(ResponseCode, Proof),
    Bogus,
}

async fn ask(resolver: &TokioResolver, name: &str, rtype: RecordType) -> Seen {
    match resolver.lookup(name, rtype).await {
        Ok(lookup) => {
            let mut seen: Vec<(String, Proof)> = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() != RecordType::RRSIG)
                .map(|r| {
                    (
                        format!("{} {} {}", r.name, r.record_type(), r.data),
                        r.proof,
                    )
                })
                .collect();
            seen.sort_by(|a, b| a.0.cmp(&b.0));
            Seen::Answers(seen)
        }
        Err(NetError::Dns(DnsError::DnssecBogus)) => Seen::Bogus,
        Err(NetError::Dns(DnsError::NoRecordsFound(no))) => {
            let proof = no
                .soa
                .as_ref()
                .map(|soa| soa.proof)
                .expect("a negative answer carries the SOA");
            Seen::Negative(no.response_code, proof)
        }
        Err(NetError::Dns(DnsError::Nsec {
            proof, response, ..
        })) => Seen::Negative(response.response_code, proof),
        Err(e) => panic!("{name} {rtype}: unexpected error {e:?}"),
    }
}

fn answers(list: &[(&str, Proof)]) -> Seen {
    Seen::Answers(list.iter().map(|(s, p)| ((*s).to_owned(), *p)).collect())
}

#[tokio::test]
async fn each_mode_validates_as_documented() {
    let dns = lab().await;
    let resolver = lab_resolver(&dns);
    let cases = [
        (
            "www.sec.test.",
            RecordType::A,
            answers(&[("www.sec.test. A 127.0.0.10", Proof::Secure)]),
        ),
        (
            "www.plain.test.",
            RecordType::A,
            answers(&[("www.plain.test. A 127.0.0.20", Proof::Insecure)]),
        ),
        ("www.old.test.", RecordType::A, Seen::Bogus),
        ("www.wrongds.test.", RecordType::A, Seen::Bogus),
        (
            "www.other.example.",
            RecordType::A,
            answers(&[("www.other.example. A 127.0.0.50", Proof::Secure)]),
        ),
    ];
    for (name, rtype, expected) in cases {
        assert_eq!(
            ask(&resolver, name, rtype).await,
            expected,
            "{name} {rtype}"
        );
    }
    // The bogus zones hold the data: only their signatures are wrong.
    let plain = plain_resolver(&dns);
    for (name, ip) in [
        ("www.old.test.", "127.0.0.30"),
        ("www.wrongds.test.", "127.0.0.40"),
    ] {
        let lookup = plain.lookup(name, RecordType::A).await.expect(name);
        let got: Vec<String> = lookup
            .answers()
            .iter()
            .map(|r| r.data.to_string())
            .collect();
        assert_eq!(got, [ip], "{name}");
    }
}

#[tokio::test]
async fn mail_records_of_a_signed_zone_are_secure() {
    let dns = lab().await;
    let resolver = lab_resolver(&dns);
    let tlsa = format!("_25._tcp.mx.sec.test. TLSA 3 1 1 {TLSA_HEX}");
    let cases = [
        (
            "sec.test.",
            RecordType::MX,
            answers(&[("sec.test. MX 10 mx.sec.test.", Proof::Secure)]),
        ),
        (
            "sec.test.",
            RecordType::TXT,
            answers(&[("sec.test. TXT v=spf1 -all", Proof::Secure)]),
        ),
        (
            "mx.sec.test.",
            RecordType::AAAA,
            answers(&[("mx.sec.test. AAAA ::1", Proof::Secure)]),
        ),
        (
            "_25._tcp.mx.sec.test.",
            RecordType::TLSA,
            answers(&[(tlsa.as_str(), Proof::Secure)]),
        ),
        (
            "alias.sec.test.",
            RecordType::A,
            answers(&[
                ("alias.sec.test. CNAME www.sec.test.", Proof::Secure),
                ("www.sec.test. A 127.0.0.10", Proof::Secure),
            ]),
        ),
        (
            "sec.test.",
            RecordType::SOA,
            answers(&[(
                "sec.test. SOA ns.lab-dns.invalid. hostmaster.lab-dns.invalid. 2 3600 600 86400 300",
                Proof::Secure,
            )]),
        ),
    ];
    for (name, rtype, expected) in cases {
        assert_eq!(
            ask(&resolver, name, rtype).await,
            expected,
            "{name} {rtype}"
        );
    }
    // The TTL is the lab's.
    let lookup = resolver
        .lookup("_25._tcp.mx.sec.test.", RecordType::TLSA)
        .await
        .expect("tlsa");
    assert!(lookup.answers().iter().all(|r| r.ttl <= TTL && r.ttl > 0));
}

#[tokio::test]
async fn negative_answers_carry_proofs() {
    let dns = lab().await;
    let resolver = lab_resolver(&dns);
    let cases = [
        // NODATA: the name exists, without the type.
        (
            "www.sec.test.",
            RecordType::TLSA,
            Seen::Negative(ResponseCode::NoError, Proof::Secure),
        ),
        (
            "_25._tcp.mx.sec.test.",
            RecordType::A,
            Seen::Negative(ResponseCode::NoError, Proof::Secure),
        ),
        // NXDOMAIN, in the signed zone and in the signed TLD made for it.
        (
            "nothing.sec.test.",
            RecordType::A,
            Seen::Negative(ResponseCode::NXDomain, Proof::Secure),
        ),
        (
            "nothing.test.",
            RecordType::MX,
            Seen::Negative(ResponseCode::NXDomain, Proof::Secure),
        ),
        // Negative answers of the unsigned zone are insecure, not bogus.
        (
            "www.plain.test.",
            RecordType::TLSA,
            Seen::Negative(ResponseCode::NoError, Proof::Insecure),
        ),
        ("www.old.test.", RecordType::TLSA, Seen::Bogus),
    ];
    for (name, rtype, expected) in cases {
        assert_eq!(
            ask(&resolver, name, rtype).await,
            expected,
            "{name} {rtype}"
        );
    }
}

#[tokio::test]
async fn trust_anchor_is_the_lab_root_key() {
    let dns = lab().await;
    let line = dns.trust_anchor();
    assert!(
        line.starts_with(". 3600 IN DNSKEY 257 3 13 "),
        "anchor line: {line:?}"
    );
    assert_eq!(line.lines().count(), 1);

    // Written to a file, it is read by TrustAnchors::from_file.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dns.write_trust_anchor(dir.path()).expect("written");
    assert!(path.starts_with(dir.path()));
    let anchors = TrustAnchors::from_file(&path).expect("file parses");
    let resolver = validating(dns.addr(), anchors);
    assert_eq!(
        ask(&resolver, "www.sec.test.", RecordType::A).await,
        answers(&[("www.sec.test. A 127.0.0.10", Proof::Secure)])
    );

    // Another server's root key does not validate this server's zones; nor do the IANA anchors.
    let other = SignedDns::start(&[]).await.expect("second lab");
    assert_ne!(other.trust_anchor(), line);
    let strangers = [
        TrustAnchors::from_str(other.trust_anchor()).expect("parses"),
        TrustAnchors::default(),
    ];
    for anchors in strangers {
        let resolver = validating(dns.addr(), anchors);
        assert_eq!(
            ask(&resolver, "www.sec.test.", RecordType::A).await,
            Seen::Bogus
        );
    }
}

#[tokio::test]
async fn serves_the_root_and_the_intermediate_zones() {
    let dns = SignedDns::start(&[
        SignedZone::new("a.b.test", "a.b.test A 127.0.0.1", Mode::Signed),
        SignedZone::new("test", "x.test A 127.0.0.2", Mode::Signed),
        SignedZone::new("c.a.b.test", "www.c.a.b.test A 127.0.0.3", Mode::Unsigned),
    ])
    .await
    .expect("lab");
    let zones: Vec<(&str, Mode)> = dns.zones().iter().map(|(z, m)| (z.as_str(), *m)).collect();
    assert_eq!(
        zones,
        [
            (".", Mode::Signed),
            ("test.", Mode::Signed),
            ("b.test.", Mode::Signed),
            ("a.b.test.", Mode::Signed),
            ("c.a.b.test.", Mode::Unsigned),
        ]
    );
    let resolver = lab_resolver(&dns);
    let cases = [
        (
            "a.b.test.",
            answers(&[("a.b.test. A 127.0.0.1", Proof::Secure)]),
        ),
        (
            "x.test.",
            answers(&[("x.test. A 127.0.0.2", Proof::Secure)]),
        ),
        (
            "www.c.a.b.test.",
            answers(&[("www.c.a.b.test. A 127.0.0.3", Proof::Insecure)]),
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(
            ask(&resolver, name, RecordType::A).await,
            expected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn refuses_unusable_zones() {
    let cases: Vec<(Vec<SignedZone>, &str)> = vec![
        (
            vec![SignedZone::new(".", "", Mode::Signed)],
            "root zone is always served",
        ),
        (
            vec![SignedZone::new("bad..test", "", Mode::Signed)],
            "invalid origin",
        ),
        (
            vec![
                SignedZone::new("a.test", "", Mode::Signed),
                SignedZone::new("A.test.", "", Mode::Unsigned),
            ],
            "given twice",
        ),
        (
            vec![SignedZone::new("a.test", "a.test BOGUS 1", Mode::Signed)],
            "zone a.test: zone line 1: unknown record type",
        ),
        (
            vec![SignedZone::new(
                "a.test",
                "www.b.test A 127.0.0.1",
                Mode::Signed,
            )],
            "www.b.test is not in this zone",
        ),
        (
            vec![
                SignedZone::new("a.test", "www.c.a.test A 127.0.0.1", Mode::Signed),
                SignedZone::new("c.a.test", "", Mode::Signed),
            ],
            "www.c.a.test is not in this zone (it belongs to c.a.test.)",
        ),
        (
            vec![SignedZone::new(
                "a.test",
                "www.a.test TIMEOUT",
                Mode::Signed,
            )],
            "www.a.test TIMEOUT: not supported",
        ),
        (
            vec![
                SignedZone::new("a.test", "a.test MX 10 mx.b.test", Mode::Signed),
                SignedZone::new("b.test", "mx.b.test A 192.0.2.1", Mode::Unsigned),
            ],
            "MX host mx.b.test has the address 192.0.2.1, which is not a loopback address",
        ),
        (
            vec![SignedZone::new(
                "a.test",
                "a.test MX 10 a.test\na.test AAAA 2001:db8::1",
                Mode::Signed,
            )],
            "not a loopback address",
        ),
    ];
    for (zones, expected) in cases {
        match SignedDns::start(&zones).await {
            Err(LabError::Dnssec(message)) => {
                assert!(message.contains(expected), "{message:?} lacks {expected:?}")
            }
            other => panic!("{zones:?}: expected an error, got {other:?}"),
        }
    }
    // Addresses of hosts that are not MX hosts may be anything.
    SignedDns::start(&[SignedZone::new(
        "a.test",
        "a.test MX 10 mx.a.test\nmx.a.test A 127.0.0.9\nwww.a.test A 192.0.2.1",
        Mode::Signed,
    )])
    .await
    .expect("only MX hosts must be loopback");
}

/// The server counts every request: one for a plain look-up, and the chain of trust's DNSKEY
/// and DS queries on top for a validating one (what the DNSSEC benchmark reports).
#[tokio::test]
async fn query_count_includes_the_validation_queries() {
    let dns = lab().await;
    assert_eq!(dns.query_count(), 0);
    assert!(matches!(
        ask(&plain_resolver(&dns), "www.sec.test", RecordType::A).await,
        Seen::Answers(_)
    ));
    assert_eq!(dns.reset_query_count(), 1);
    assert_eq!(dns.query_count(), 0);
    assert!(matches!(
        ask(&lab_resolver(&dns), "www.sec.test", RecordType::A).await,
        Seen::Answers(_)
    ));
    // The answer, DNSKEY of sec.test., test. and the root, DS of sec.test. and test.
    let validating = dns.query_count();
    assert!(validating >= 6, "{validating} queries");
}
