//! What a run records: every client operation with its invocation and completion times and
//! outcome, and every event every watcher saw. The checkers read only this.

use std::sync::{Arc, Mutex};

/// A client operation as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Put `value` if `key`'s mod revision equals `expect_mod` (0 = absent).
    Cas {
        key: Vec<u8>,
        expect_mod: i64,
        value: Vec<u8>,
    },
    /// Delete `key` if its mod revision equals `expect_mod` (Kubernetes-style delete).
    CasDelete {
        key: Vec<u8>,
        expect_mod: i64,
    },
    /// One page of a list: keys in `[start, end)`, at most `limit`, at `revision` (0 = now).
    List {
        start: Vec<u8>,
        end: Vec<u8>,
        limit: i64,
        revision: i64,
    },
    /// Grant a lease, put `value` under it, then revoke the lease (three calls, one record
    /// per call: `LeasePut` is the put).
    LeasePut {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
    },
    LeaseRevoke {
        lease: i64,
    },
    /// Compact history up to `revision` (chosen below what every watcher has seen).
    Compact {
        revision: i64,
    },
}

/// A key's state as a read returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadKv {
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A read: the header revision and what it returned.
    Read { revision: i64, kv: Option<ReadKv> },
    /// A list page: the header revision, the keys and states, and whether more follow.
    Listed {
        revision: i64,
        kvs: Vec<(Vec<u8>, ReadKv)>,
        more: bool,
    },
    /// A write that took effect at `revision`.
    Wrote { revision: i64 },
    /// A txn whose compare failed (no effect), read at `revision`.
    CasFailed { revision: i64 },
    /// A delete that found nothing (no effect), at `revision`.
    Noop { revision: i64 },
    /// Failed or timed out: it may or may not have taken effect.
    Unknown(String),
}

/// One operation of the history.
#[derive(Debug, Clone)]
pub struct Record {
    pub client: usize,
    pub op: Op,
    /// Simulated milliseconds since the run started.
    pub invoked_ms: u64,
    pub completed_ms: u64,
    pub outcome: Outcome,
}

/// One change a watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub revision: i64,
    pub key: Vec<u8>,
    /// None for a delete.
    pub value: Option<Vec<u8>>,
    pub create_revision: i64,
    pub version: i64,
}

/// One watch response (all its events), as received.
#[derive(Debug, Clone)]
pub struct WatchedResponse {
    pub watcher: usize,
    pub received_ms: u64,
    pub events: Vec<WatchedEvent>,
    /// True for the first response after (re)creating the watch.
    pub after_reconnect: bool,
    /// A progress notification (no events): every event up to this revision was sent.
    pub progress: Option<i64>,
}

/// A mark on the timeline: faults, leaders, violations.
#[derive(Debug, Clone)]
pub struct Mark {
    pub at_ms: u64,
    /// Which lane: a member name, "clients" or "cluster".
    pub lane: String,
    pub kind: String,
    pub detail: String,
    /// For spans: when it ended.
    pub until_ms: Option<u64>,
}

/// Everything recorded in one run, shared by the run's tasks.
#[derive(Debug, Default)]
pub struct History {
    pub records: Vec<Record>,
    pub watched: Vec<WatchedResponse>,
    pub marks: Vec<Mark>,
    /// Each watcher's next revision to receive (compaction stays below all of them).
    pub watcher_next: std::collections::BTreeMap<usize, i64>,
}

/// A shared handle to the run's history.
pub type SharedHistory = Arc<Mutex<History>>;

impl History {
    /// A digest of everything recorded, in order: equal digests ⇒ identical runs.
    pub fn digest(&self) -> u64 {
        let mut h = crc32fast::Hasher::new();
        for r in &self.records {
            h.update(
                format!(
                    "{}|{:?}|{}|{}|{:?}\n",
                    r.client, r.op, r.invoked_ms, r.completed_ms, r.outcome
                )
                .as_bytes(),
            );
        }
        for w in &self.watched {
            h.update(
                format!(
                    "{}|{}|{:?}|{:?}\n",
                    w.watcher, w.received_ms, w.events, w.progress
                )
                .as_bytes(),
            );
        }
        for m in &self.marks {
            h.update(format!("{}|{}|{}|{}\n", m.at_ms, m.lane, m.kind, m.detail).as_bytes());
        }
        let a = h.finalize() as u64;
        (a << 32) | (self.records.len() as u64 & 0xffff_ffff)
    }
}
