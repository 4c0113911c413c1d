//! Making sure a run cannot reach beyond loopback.
//!
//! checkdmarc resolves names with the system resolver for its MTA-STS policy fetch (over
//! HTTPS), whatever nameserver it is given for its DNS checks. On this machine that would send
//! queries for the synthetic names to a real resolver, and the synthetic MX and web hosts
//! point into documentation ranges that may be routed. So the comparison runs only in a
//! network namespace with nothing but loopback: [`network_isolated`] checks for one, and the
//! bench re-executes itself under `unshare --net` to get one.

/// Whether the routing tables (`/proc/net/route`, `/proc/net/ipv6_route`) hold no route
/// through any interface but `lo`. Unreadable tables count as not isolated.
pub fn network_isolated() -> bool {
    let ipv4 = std::fs::read_to_string("/proc/net/route");
    let ipv6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    match ipv4 {
        Ok(ipv4) => routes_only_loopback(&ipv4, &ipv6),
        Err(_) => false,
    }
}

/// The check behind [`network_isolated`], on the tables' text: `/proc/net/route` has a header
/// line and the interface in its first column; `/proc/net/ipv6_route` has no header and the
/// interface in its last column.
pub fn routes_only_loopback(ipv4: &str, ipv6: &str) -> bool {
    let ipv4_ok = ipv4
        .lines()
        .filter(|l| !l.starts_with("Iface"))
        .filter_map(|l| l.split_whitespace().next())
        .all(|iface| iface == "lo");
    let ipv6_ok = ipv6
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .all(|iface| iface == "lo");
    ipv4_ok && ipv6_ok
}

/// The command line prefix (`unshare --net`, with `--map-root-user` when not root) that runs a
/// program in a new network namespace where only loopback exists, if that works here: checked
/// by reading the routing tables from inside such a namespace. `None` when it cannot be had.
pub fn loopback_only_prefix() -> Option<Vec<&'static str>> {
    let mut prefix = vec!["unshare", "--net"];
    if !is_root() {
        prefix.push("--map-root-user");
    }
    let probe = std::process::Command::new(prefix[0])
        .args(&prefix[1..])
        .args([
            "--",
            "sh",
            "-c",
            "cat /proc/net/route && echo '--- ipv6' && cat /proc/net/ipv6_route",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&probe.stdout);
    let (ipv4, ipv6) = text.split_once("--- ipv6\n")?;
    (probe.status.success() && routes_only_loopback(ipv4, ipv6)).then_some(prefix)
}

/// Whether this process runs as root (uid 0 in `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
    const LO6: &str = "00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000001 00000000 00200001       lo\n";
    const ETH6: &str = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n";

    #[test]
    fn a_loopback_only_namespace_has_no_other_route() {
        // Where namespaces can be made (as root on this project's machines), a program run
        // under the prefix sees only loopback.
        if let Some(prefix) = loopback_only_prefix() {
            let out = std::process::Command::new(prefix[0])
                .args(&prefix[1..])
                .args(["--", "cat", "/proc/net/route"])
                .output()
                .expect("unshare runs");
            let routes = String::from_utf8_lossy(&out.stdout);
            assert!(routes_only_loopback(&routes, ""), "{routes}");
        }
    }

    #[test]
    fn only_loopback_routes_are_isolated() {
        let cases = [
            ("", "", true),
            ("Iface\tDestination\n", LO6, true),
            (HOST_ROUTE, "", false),
            ("", ETH6, false),
            ("Iface\tDestination\n", &format!("{LO6}{ETH6}"), false),
        ];
        for (ipv4, ipv6, want) in cases {
            assert_eq!(routes_only_loopback(ipv4, ipv6), want, "{ipv4:?} {ipv6:?}");
        }
    }
}
