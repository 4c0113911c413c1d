//! Input hygiene (README "Input hygiene"): `--file` with comments, blank lines and CSV columns;
//! duplicates audited once; IDNs converted to A-labels; `--file -`; `--output`; input order.

use crate::common::{Lab, domain, domains, finding_ids, run, run_with_stdin};

/// The sample zone plus an internationalised domain (`bücher.example`) and a domain whose MX
/// look-up never gets an answer (so it finishes last).
fn lab() -> Lab {
    Lab::sample_plus(
        r#"
        xn--bcher-kva.example        MX  0 xn--bcher-kva-example.mail.protection.outlook.com
        xn--bcher-kva.example        TXT "v=spf1 include:spf.protection.outlook.com -all"
        _dmarc.xn--bcher-kva.example TXT "v=DMARC1; p=reject; rua=mailto:d@xn--bcher-kva.example"
        slow.test                    TIMEOUT
        "#,
    )
}

const FILE: &str = "\
# customers exported from the PSA
contoso-legal.example

   # an indented comment
Contoso-Legal.Example.
fabrikam-dental.example,Fabrikam Dental,gold
  coho-winery.example   # trailing comment
COHO-WINERY.EXAMPLE,duplicate
bücher.example
xn--bcher-kva.example
\tlucerne-publishing.example\t
";

const EXPECTED: [&str; 5] = [
    "contoso-legal.example",
    "fabrikam-dental.example",
    "coho-winery.example",
    "xn--bcher-kva.example",
    "lucerne-publishing.example",
];

#[test]
fn file_comments_columns_duplicates_and_idn() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("domains.txt");
    std::fs::write(&path, FILE).expect("write domains file");
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--format",
        "json",
        "--file",
        path.to_str().expect("UTF-8 path"),
    ]);
    out.assert_code(0);
    let report = out.json();
    assert_eq!(domains(&report), EXPECTED);
    // The IDN was audited under its A-label: its records were found.
    let idn = domain(&report, "xn--bcher-kva.example");
    assert_eq!(idn["dmarc"]["policy"], "reject", "{idn}");
    assert!(!finding_ids(idn).contains(&"SPF-MISSING".to_string()));
}

#[test]
fn file_from_stdin() {
    let lab = lab();
    let out = run_with_stdin(
        &[
            "audit",
            "--nameserver",
            lab.addr(),
            "--format",
            "json",
            "--file",
            "-",
        ],
        Some(FILE),
    );
    out.assert_code(0);
    assert_eq!(domains(&out.json()), EXPECTED);
}

#[test]
fn arguments_come_before_files_and_duplicates_across_them_are_dropped() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "trey-research.example\ncontoso-legal.example\n").expect("write");
    std::fs::write(&b, "coho-winery.example\nTREY-RESEARCH.example.\n").expect("write");
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--format",
        "json",
        "Coho-Winery.example",
        "--file",
        a.to_str().expect("UTF-8"),
        "--file",
        b.to_str().expect("UTF-8"),
    ]);
    out.assert_code(0);
    assert_eq!(
        domains(&out.json()),
        [
            "coho-winery.example",
            "trey-research.example",
            "contoso-legal.example"
        ]
    );
}

#[test]
fn output_file_gets_the_report_and_stdout_nothing() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    for format in ["json", "csv", "html", "table"] {
        let path = dir.path().join(format!("report.{format}"));
        let path_str = path.to_str().expect("UTF-8");
        let args = [
            "audit",
            "--nameserver",
            lab.addr(),
            "--format",
            format,
            "contoso-legal.example",
            "fabrikam-dental.example",
        ];
        let mut with_output = args.to_vec();
        with_output.extend(["--output", path_str]);
        let out = run(&with_output);
        out.assert_code(0);
        assert!(
            out.stdout.is_empty(),
            "{format}: stdout is {:?}",
            out.stdout
        );
        let written = std::fs::read_to_string(&path).expect("the report file exists");
        let direct = run(&args);
        direct.assert_code(0);
        assert_eq!(
            written, direct.stdout,
            "{format}: the file holds the report"
        );
    }
}

#[test]
fn output_into_a_missing_directory_is_an_error() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no-such-dir").join("report.json");
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "contoso-legal.example",
        "-o",
        path.to_str().expect("UTF-8"),
    ]);
    out.assert_code(2);
    assert!(out.stderr.contains("report.json"), "{}", out.stderr);
}

/// A domain that takes longest (its MX look-up times out) comes first in the input: the report
/// still follows input order, whatever the concurrency.
#[test]
fn json_order_is_input_order() {
    let lab = lab();
    let order = [
        "slow.test",
        "woodgrove-accounting.example",
        "coho-winery.example",
        "adatum-clinic.example",
        "contoso-legal.example",
        "blue-yonder-airlines.example",
        "alpine-ski-house.example",
        "fabrikam-dental.example",
    ];
    for concurrency in ["1", "3", "256"] {
        let mut args = vec![
            "audit",
            "--nameserver",
            lab.addr(),
            "--format",
            "json",
            "--timeout",
            "0.3",
            "--retries",
            "0",
            "--concurrency",
            concurrency,
        ];
        args.extend(order);
        let out = run(&args);
        out.assert_code(0);
        assert_eq!(domains(&out.json()), order, "--concurrency {concurrency}");
    }
}

/// A file saved by Windows tools: a byte-order mark and CRLF line ends.
#[test]
fn bom_and_crlf() {
    let lab = lab();
    let out = run_with_stdin(
        &[
            "audit",
            "--nameserver",
            lab.addr(),
            "--format",
            "json",
            "--file",
            "-",
        ],
        Some("\u{feff}coho-winery.example\r\n# comment\r\n\r\ncontoso-legal.example\r\n"),
    );
    out.assert_code(0);
    assert_eq!(
        domains(&out.json()),
        ["coho-winery.example", "contoso-legal.example"]
    );
}

/// Whole-line forms that should be read as the domain in their first column.
#[test]
fn quoted_csv_first_column() {
    let lab = lab();
    let out = run_with_stdin(
        &[
            "audit",
            "--nameserver",
            lab.addr(),
            "--format",
            "json",
            "--file",
            "-",
        ],
        Some("coho-winery.example;Coho Winery\n\"contoso-legal.example\",\"Contoso, Legal\"\n"),
    );
    out.assert_code(0);
    assert_eq!(
        domains(&out.json()),
        ["coho-winery.example", "contoso-legal.example"]
    );
}

/// An invalid line of a `--file` is reported with its file and line and the real reason (the
/// first problem: characters before the label count); a space after a domain name still
/// starts another column; the summary counts the invalid names apart from the audited domains.
#[test]
fn invalid_lines_name_the_file_the_line_and_the_reason() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("domains.txt");
    std::fs::write(
        &path,
        "# customers\ncontoso-legal.example Contoso Legal\nbad domain!\n\nfoo@example.com\nbad domain!\nlocalhost\n",
    )
    .expect("write domains file");
    let file = path.to_str().expect("UTF-8 path");
    let out = run(&[
        "audit",
        "--nameserver",
        lab.addr(),
        "--no-store",
        "--no-policy-fetch",
        "--color",
        "never",
        "--file",
        file,
    ]);
    out.assert_code(2);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("invalid domain name"))
        .collect();
    assert_eq!(
        errors,
        [
            format!(
                "mailaudit: {file}:3: invalid domain name \"bad domain!\": contains a space and '!'"
            ),
            format!(
                "mailaudit: {file}:5: invalid domain name \"foo@example.com\": contains '@' (an e-mail address? give the part after '@')"
            ),
            format!(
                "mailaudit: {file}:6: invalid domain name \"bad domain!\": contains a space and '!'"
            ),
            format!(
                "mailaudit: {file}:7: invalid domain name \"localhost\": is a single label: a domain needs at least two (contoso.com)"
            ),
        ],
        "{}",
        out.stderr
    );
    // `contoso-legal.example Contoso Legal`: the domain, then another column.
    assert!(
        out.stdout.contains("contoso-legal.example  ·"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "\n1 domain audited (average score 100): 4 input names not audited (not a domain name)\n"
        ),
        "{}",
        out.stdout
    );

    // From standard input, the same, named <stdin>.
    let out = run_with_stdin(
        &[
            "audit",
            "--nameserver",
            lab.addr(),
            "--no-store",
            "--no-policy-fetch",
            "--format",
            "json",
            "--file",
            "-",
        ],
        Some("contoso-legal.example\nbad domain!\n"),
    );
    out.assert_code(2);
    assert!(
        out.stderr.contains(
            "mailaudit: <stdin>:2: invalid domain name \"bad domain!\": contains a space and '!'"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        domains(&out.json()),
        ["contoso-legal.example", "bad domain!"]
    );
}
