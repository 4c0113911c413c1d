//! The PowerShell the product prints (guide, catalogue, EXO-* fixes, `exo script`): one quoting
//! function, the names of the rules it creates, and the forms that extend a multi-valued
//! property instead of replacing it.
//!
//! The contract test (`tests/powershell_contract.rs`) parses every line the product can emit
//! with a PowerShell grammar and checks it against `testdata/exo-cmdlets/cmdlets.json`.

/// Whether PowerShell reads `c` as a single quote: `'` and the typographic `‘ ’ ‚ ‛`.
pub fn is_single_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

/// A PowerShell single-quoted (verbatim) string literal holding `s`: every character PowerShell
/// treats as a single quote is doubled as itself, and control characters become spaces so that
/// a value can never end the command line. Nothing inside a single-quoted literal is expanded
/// (`$`, backtick, `"`), so this is the only quoting the product uses.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if is_single_quote(c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `values` quoted and joined by commas: a PowerShell array argument.
pub fn quote_list<S: AsRef<str>>(values: &[S]) -> String {
    values
        .iter()
        .map(|v| quote(v.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `New-TransportRule -Name`: "The maximum length is 64 characters."
pub const RULE_NAME_MAX: usize = 64;

/// The name of the anti-spoofing transport rule for `domains` (lower-cased, sorted, without
/// duplicates), at most [`RULE_NAME_MAX`] characters: `Reject spoofed <domain>` for one domain
/// that fits; otherwise the first domain (cut to fit), how many more, and a 12-digit hash of the
/// whole list, so that two different lists never get the same name. The `New-TransportRule`
/// and every later `Set-TransportRule -Identity` of the product take the name from here.
pub fn antispoof_rule_name<S: AsRef<str>>(domains: &[S]) -> String {
    let mut list: Vec<String> = domains
        .iter()
        .map(|d| d.as_ref().trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    list.sort();
    list.dedup();
    let prefix = "Reject spoofed";
    let Some(first) = list.first() else {
        return prefix.to_string();
    };
    let plain = format!("{prefix} {first}");
    if list.len() == 1 && plain.chars().count() <= RULE_NAME_MAX {
        return plain;
    }
    let tail = format!(
        "{} {:012x}",
        if list.len() > 1 {
            format!(" +{}", list.len() - 1)
        } else {
            String::new()
        },
        fnv1a(&list.join(",")) >> 16
    );
    let room = RULE_NAME_MAX - prefix.len() - 1 - tail.chars().count();
    let cut: String = first.chars().take(room).collect();
    format!("{prefix} {cut}{tail}")
}

/// FNV-1a, 64 bits: a stable hash without a dependency (not for security, only to tell lists
/// apart in a name).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A command that adds `values` to the multi-valued property `param` of the object that
/// `get -Identity <identity>` reads and `set -Identity <identity>` writes, keeping what is
/// there: `$o = Get-X -Identity 'id'; Set-X -Identity 'id' -P (@($o.P) + 'a','b' | Select-Object -Unique)`.
/// For the properties whose cmdlet page does not document `@{Add=…}`. `rest` (other
/// parameters, already quoted) follows on the `Set-` command.
pub fn append_to_list<S: AsRef<str>>(
    get: &str,
    set: &str,
    identity: &str,
    param: &str,
    values: &[S],
    rest: &str,
) -> String {
    let id = quote(identity);
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!(" {rest}")
    };
    format!(
        "$o = {get} -Identity {id}; {set} -Identity {id} -{param} (@($o.{param}) + @({}) | Select-Object -Unique){rest}",
        quote_list(values)
    )
}

/// `-Param @{Add='a','b'}`: adds to a multi-valued property whose cmdlet page documents it.
pub fn add_to_list<S: AsRef<str>>(param: &str, values: &[S]) -> String {
    format!("-{param} @{{Add={}}}", quote_list(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_every_single_quote_character() {
        for (s, expected) in [
            ("Jane Doe;jane@contoso.com", "'Jane Doe;jane@contoso.com'"),
            ("O'Brien", "'O''Brien'"),
            ("$(evil)", "'$(evil)'"),
            ("a\nb", "'a b'"),
            ("x\u{2018}y", "'x\u{2018}\u{2018}y'"),
            ("x\u{2019}y", "'x\u{2019}\u{2019}y'"),
            ("x\u{201A}y", "'x\u{201A}\u{201A}y'"),
            ("x\u{201B}y", "'x\u{201B}\u{201B}y'"),
            ("\"`$x", "'\"`$x'"),
            ("", "''"),
        ] {
            assert_eq!(quote(s), expected, "{s:?}");
        }
        assert_eq!(quote_list(&["a", "b'c"]), "'a','b''c'");
    }

    #[test]
    fn rule_names_fit_and_never_collide() {
        assert_eq!(
            antispoof_rule_name(&["Contoso.com."]),
            "Reject spoofed contoso.com"
        );
        let long = format!("{}.example", "a".repeat(60));
        let lists: Vec<Vec<String>> = vec![
            vec!["a.example".into(), "b.example".into()],
            vec!["a.example".into(), "c.example".into()],
            vec!["a.example".into(), "b.example".into(), "c.example".into()],
            vec![long.clone()],
            vec![long.clone(), "b.example".into()],
            vec![format!("{}b.example", "a".repeat(60))],
        ];
        let names: Vec<String> = lists.iter().map(|l| antispoof_rule_name(l)).collect();
        for (l, n) in lists.iter().zip(&names) {
            assert!(n.chars().count() <= RULE_NAME_MAX, "{n}");
            assert!(n.starts_with("Reject spoofed "), "{n}");
            // Stable, and independent of order and case.
            let mut rev = l.clone();
            rev.reverse();
            let rev: Vec<String> = rev.iter().map(|d| d.to_uppercase()).collect();
            assert_eq!(&antispoof_rule_name(&rev), n);
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn append_keeps_the_current_list() {
        assert_eq!(
            append_to_list(
                "Get-TransportRule",
                "Set-TransportRule",
                "R'1",
                "ExceptIfSenderIpRanges",
                &["192.0.2.0/24"],
                ""
            ),
            "$o = Get-TransportRule -Identity 'R''1'; Set-TransportRule -Identity 'R''1' -ExceptIfSenderIpRanges (@($o.ExceptIfSenderIpRanges) + @('192.0.2.0/24') | Select-Object -Unique)"
        );
    }

    #[test]
    fn add_form() {
        assert_eq!(
            add_to_list("TargetedUsersToProtect", &["A;a@x", "B'c;b@x"]),
            "-TargetedUsersToProtect @{Add='A;a@x','B''c;b@x'}"
        );
    }

    proptest::proptest! {
        #[test]
        fn quoted_values_stay_one_literal(raw in "\\PC{0,80}") {
            let q = quote(&raw);
            proptest::prop_assert!(!q.contains('\n'));
            // Between the outer quotes, single-quote characters come in pairs only.
            let inner: Vec<char> = q.chars().skip(1).collect();
            let inner = &inner[..inner.len() - 1];
            let mut i = 0;
            while i < inner.len() {
                if is_single_quote(inner[i]) {
                    proptest::prop_assert_eq!(inner.get(i + 1), Some(&inner[i]));
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
    }
}
