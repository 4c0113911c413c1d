//! The pieces of `mailaudit-bench`, the throughput and memory benchmark of `mailaudit audit`.
//!
//! The benchmark builds a [`fleet::synthetic_fleet`] of (by default) 10,000 customer domains,
//! serves it from the lab DNS server ([`mailaudit_lab::LabDns`]) on loopback inside its own
//! process, runs the `mailaudit` binary over the list as a child process, and reads the wall
//! time, the auditor's `--stats` line ([`stats::parse_stats`]), the server's query count and
//! the child's peak RSS ([`process::run`]). [`load::udp_load`] measures the lab server's own
//! capacity, so that a slow audit can be told apart from a slow server. The optional
//! comparison with checkdmarc runs only where [`isolation::network_isolated`] holds.
//!
//! `mailaudit-bench reports` times `mailaudit reports parse` and `reports ingest` on a
//! [`corpus::write_corpus`] of DMARC aggregate reports, and parsedmarc on the same files in a
//! network namespace with only loopback ([`isolation::loopback_only_prefix`]).
//!
//! `mailaudit-bench dnssec` serves the synthetic fleet as signed and unsigned zones
//! ([`signed::signed_fleet`]) from the lab's DNSSEC-signing server and measures what DNSSEC
//! validation costs the audit, per domain, in queries and CPU time.

#![warn(missing_docs)]

pub mod corpus;
pub mod fleet;
pub mod isolation;
pub mod load;
pub mod process;
pub mod signed;
pub mod stats;
