#!/usr/bin/env bash
# Installs what the test suite needs and runs all of it. This is the README's test command and
# what CI (.ci/run) runs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Prerequisites: the Rust toolchain (with rustfmt and clippy), Postfix for the relay-probe
# tests, PostgreSQL for the store tests and Dovecot for the IMAP tests (installed unconfigured
# and left stopped; the tests start private instances on loopback), Chromium and chromedriver
# for the portal's browser tests. DNS tests serve zones from an in-process hickory-server on
# loopback. Where a system program cannot run, MAILAUDIT_SKIP_POSTFIX=1, MAILAUDIT_SKIP_DOVECOT=1
# and MAILAUDIT_SKIP_BROWSER=1 skip the tests that need it; this script and CI set none of them,
# so a missing program fails the run.
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/install-test-deps.sh
elif ! command -v postfix >/dev/null && ! [ -x /usr/sbin/postfix ]; then
    echo "Postfix is needed by the relay-probe tests: run 'sudo scripts/install-test-deps.sh' first" >&2
    exit 2
fi

echo "== architecture invariant: mailaudit-core depends on no async runtime and no network crate"
if cargo tree -p mailaudit-core -e normal --prefix none | grep -E '^(tokio|hickory|mio|socket2|reqwest|hyper) ' ; then
    echo "mailaudit-core must not depend on the crates above (see ARCHITECTURE.md)" >&2
    exit 1
fi

echo "== architecture invariant: mailaudit-portal does no DNS or SMTP (store and core only)"
if cargo tree -p mailaudit-portal -e normal --prefix none | grep -E '^(mailaudit-net|mailaudit-lab|hickory-[a-z]+|lettre) ' ; then
    echo "mailaudit-portal must not depend on the crates above (see ARCHITECTURE.md)" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole workspace (cargo prints one per test binary, the last of which
# is often a doc-test binary with nothing in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
