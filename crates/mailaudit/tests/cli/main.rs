//! Integration tests of the `mailaudit` binary: each test runs the real executable.
//!
//! DNS comes only from loopback: `audit --sample` (the binary's own in-process server) or a
//! [`mailaudit_lab::LabDns`] started by the test and passed as `--nameserver`; the DNS-failure
//! tests add a UDP socket that never answers. No test queries a public resolver.

mod checklist;
mod checks;
mod common;
mod demo;
mod distributed;
mod dns_failure;
mod dnssec;
mod docs_cli;
mod docs_json;
mod exit_codes;
mod exo;
mod fetch;
mod hostile;
mod input;
mod inventory;
mod mta_sts;
mod not_found;
mod options;
mod proposals;
mod relay;
mod report;
mod reports;
mod sample;
mod schedule;
mod serve;
mod spf_eval;
mod store;
mod store_open;
mod users;
