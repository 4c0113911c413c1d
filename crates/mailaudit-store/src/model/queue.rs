//! The queue of distributed runs: a run's domains in chunks, claimed by `mailaudit worker`s with
//! a lease.

use serde::{Deserialize, Serialize};

use super::{Run, Time};
#[cfg(doc)]
use crate::Store;

/// A chunk claimed by a worker ([`Store::claim_chunk`]): its domains, and the token that fences
/// its writes. The lease holds until `lease_until` unless renewed ([`Store::renew_lease`]);
/// after that another worker may claim the chunk, and this token no longer records anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkLease {
    /// The run.
    pub run_id: i64,
    /// The chunk's number in the run, from 0.
    pub chunk: i64,
    /// The chunk's domains, in the order queued.
    pub domains: Vec<String>,
    /// The lease's token (unique to this claim).
    pub token: String,
    /// When the lease ends unless renewed.
    pub lease_until: Time,
    /// How many times the chunk has been claimed, this claim included (more than 1: a worker
    /// before this one died or gave it back).
    pub attempts: i64,
}

/// How far a distributed run is ([`Store::run_progress`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProgress {
    /// The run (its `domains` counts the results recorded so far).
    pub run: Run,
    /// Chunks queued.
    pub chunks: i64,
    /// Chunks audited and recorded.
    pub chunks_done: i64,
    /// Chunks held by a worker under a lease that has not expired.
    pub chunks_leased: i64,
    /// Chunks whose lease expired before they were recorded (their worker died or stalled):
    /// the next claim takes them.
    pub chunks_expired: i64,
    /// Domains queued.
    pub domains: i64,
    /// Domains of the chunks recorded.
    pub domains_done: i64,
    /// Chunks claimed more than once.
    pub retried: i64,
    /// The workers holding a lease now, by name.
    pub workers: Vec<String>,
}
