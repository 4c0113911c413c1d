//! `mailaudit spf-eval`: the RFC 7208 result word on the first line of stdout, then the
//! explanation (`exp=`) if the domain publishes one.

use crate::common::{Lab, Output, run};

const ZONE: &str = r#"
pass.test          TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"
fail.test          TXT "v=spf1 ip4:198.51.100.0/24 -all exp=explain.fail.test"
explain.fail.test  TXT "%{i} is not allowed to send as %{s}"
plainfail.test     TXT "v=spf1 ip4:198.51.100.0/24 -all"
softfail.test      TXT "v=spf1 ip4:198.51.100.0/24 ~all"
neutral.test       TXT "v=spf1 ip4:198.51.100.0/24 ?all"
nospf.test         MX  10 mail.nospf.test
nospf.test         TXT "google-site-verification=abc"
perm.test          TXT "v=spf1 ipv4:192.0.2.10 -all"
slow.test          TIMEOUT
inctimeout.test    TXT "v=spf1 include:slow.test -all"
redirect.test      TXT "v=spf1 redirect=pass.test"
mx.test            TXT "v=spf1 mx -all"
mx.test            MX  10 mail.mx.test
mail.mx.test       A   192.0.2.10
"#;

fn eval(lab: &Lab, ip: &str, sender: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "spf-eval",
        "--nameserver",
        lab.addr(),
        "--timeout",
        "0.3",
        "--ip",
        ip,
        "--sender",
        sender,
    ];
    args.extend(extra);
    run(&args)
}

fn first_line(out: &Output) -> &str {
    out.stdout.lines().next().unwrap_or("")
}

#[test]
fn result_words() {
    let lab = Lab::start(ZONE);
    let cases = [
        ("192.0.2.10", "user@pass.test", "pass"),
        ("2001:db8::25", "user@pass.test", "pass"),
        ("203.0.113.9", "user@pass.test", "fail"),
        ("192.0.2.10", "user@plainfail.test", "fail"),
        ("192.0.2.10", "user@softfail.test", "softfail"),
        ("192.0.2.10", "user@neutral.test", "neutral"),
        ("192.0.2.10", "user@nospf.test", "none"),
        ("192.0.2.10", "user@nxdomain.test", "none"),
        ("192.0.2.10", "user@perm.test", "permerror"),
        ("192.0.2.10", "user@slow.test", "temperror"),
        ("192.0.2.10", "user@inctimeout.test", "temperror"),
        ("192.0.2.10", "user@redirect.test", "pass"),
        ("192.0.2.10", "user@mx.test", "pass"),
        ("192.0.2.11", "user@mx.test", "fail"),
        ("192.0.2.10", "User@PASS.TEST", "pass"),
    ];
    for (ip, sender, want) in cases {
        let out = eval(&lab, ip, sender, &[]);
        out.assert_code(0);
        assert_eq!(first_line(&out), want, "{ip} {sender}: {out:?}");
    }
}

#[test]
fn pass_prints_only_the_word() {
    let lab = Lab::start(ZONE);
    let out = eval(&lab, "192.0.2.10", "user@pass.test", &[]);
    out.assert_code(0);
    assert_eq!(out.stdout, "pass\n");
}

#[test]
fn fail_prints_the_expanded_explanation() {
    let lab = Lab::start(ZONE);
    let out = eval(&lab, "192.0.2.10", "user@fail.test", &[]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "fail\n192.0.2.10 is not allowed to send as user@fail.test\n"
    );
    // Without exp= there is no second line.
    let out = eval(&lab, "192.0.2.10", "user@plainfail.test", &[]);
    assert_eq!(out.stdout, "fail\n");
}

#[test]
fn no_record_is_none() {
    let lab = Lab::start(ZONE);
    let out = eval(&lab, "192.0.2.10", "user@nospf.test", &[]);
    out.assert_code(0);
    assert_eq!(out.stdout, "none\n");
}

#[test]
fn timeout_is_temperror_and_finishes() {
    let lab = Lab::start(ZONE);
    let out = eval(&lab, "192.0.2.10", "user@slow.test", &[]);
    out.assert_code(0);
    assert_eq!(out.stdout, "temperror\n");
    assert!(out.elapsed.as_secs() < 20, "took {:?}", out.elapsed);
}

#[test]
fn empty_sender_uses_the_helo_name() {
    let lab = Lab::start(ZONE);
    let out = eval(&lab, "192.0.2.10", "", &["--helo", "pass.test"]);
    out.assert_code(0);
    assert_eq!(first_line(&out), "pass");
    let out = eval(&lab, "192.0.2.10", "", &["--helo", "plainfail.test"]);
    assert_eq!(first_line(&out), "fail");
}

/// A resolver that never answers is an error (exit 2, naming it), not an evaluation: a
/// temperror would blame the domain for our own resolver. (A name that times out at a resolver
/// that answers is a temperror: `timeout_is_temperror_and_finishes`.)
#[test]
fn silent_nameserver_is_an_error_not_temperror() {
    let silent = crate::common::Silent::bind();
    let ns = silent.addr();
    let out = run(&[
        "spf-eval",
        "--nameserver",
        &ns,
        "--timeout",
        "0.3",
        "--ip",
        "192.0.2.10",
        "--sender",
        "user@contoso.example",
    ]);
    out.assert_code(2);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains(&format!("the resolver {ns} does not answer")),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_ip_is_a_usage_error() {
    let lab = Lab::start(ZONE);
    let out = eval(&lab, "192.0.2.300", "user@pass.test", &[]);
    out.assert_code(2);
    assert!(out.stderr.contains("192.0.2.300"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}
