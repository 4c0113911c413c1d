#!/usr/bin/env bash
# Installs what the test suite needs and runs all of it. This is the README's test command and
# what CI (.ci/run) runs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Prerequisites. The DNS tests serve zones from an in-process hickory-server on loopback, so
# nothing beyond the Rust toolchain (with rustfmt and clippy) is needed yet.
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }

echo "== architecture invariant: mailaudit-core depends on no async runtime and no network crate"
if cargo tree -p mailaudit-core -e normal --prefix none | grep -E '^(tokio|hickory|mio|socket2|reqwest|hyper) ' ; then
    echo "mailaudit-core must not depend on the crates above (see ARCHITECTURE.md)" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
