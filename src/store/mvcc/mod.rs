//! The store's MVCC state machine: every key's versioned history, the global revision, the
//! compaction point, the per-revision change log that watches replay, and the lease table.
//!
//! It is the deterministic core that Raft replicates: each committed entry becomes one call
//! here (`txn`, `put`, `delete_range`, `compact`, `lease_grant`, `lease_revoke`), and every
//! replica that applies the same calls in the same order reaches the same state, byte for
//! byte (see [`Mvcc::hash`]). So it takes no clock, does no I/O and draws no randomness;
//! lease *expiry* is decided by the driver, which then proposes a revoke.
//!
//! Semantics follow etcd v3 (3.4+) exactly, because etcdctl, python-etcd3 and
//! Kubernetes-style API servers are its clients:
//! - one global revision, starting at 1 for the empty store and bumped once per txn that
//!   writes anything (a txn whose deletes match nothing does not bump it);
//! - per key `create_revision`, `mod_revision` and `version`; a delete writes a tombstone so
//!   reads at older revisions still see the key until compaction, and a re-created key starts
//!   again at version 1;
//! - txns are validated completely (request shape, duplicate keys, compares, leases,
//!   `ignore_*`, read revisions) before anything is applied, so a failing txn changes nothing;
//!   nested txns' compares are evaluated against the state before the outer txn, as in etcd;
//! - compaction at `rev` keeps what reads at `rev` and later need, and frees the rest.
//!
//! Where etcd is unspecified or unsafe we choose, and say so:
//! - replay (`events`) from exactly the compaction revision fails with `Compacted`; etcd lets
//!   a watch start there but can silently miss tombstones at that revision;
//! - an `ignore_value`/`ignore_lease` put of a key that an earlier from-key delete in the same
//!   txn removed is rejected with `KeyNotFound`; etcd accepts it and then panics applying it;
//! - sort ties keep key order (etcd's sort is unstable).
//!
//! Left to the server, as etcd does there: the per-txn op limit (`--max-txn-ops`), request
//! size limits, and raising a lease TTL to the minimum the election timeout implies.
//!
//! Layout: [`types`] (requests, responses, errors), `history` (one key's writes), `range`
//! (reads), `txn` (validation and the write path), `snapshot` (binary encoding and hash).

mod history;
mod range;
mod snapshot;
mod txn;
mod types;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use types::*;

use history::{live_kv, Entry, KeyHistory, Revision, State};
use range::KeyIndex;

/// The lease ID meaning "no lease" (etcd `lease.NoLease`).
pub const NO_LEASE: i64 = 0;

/// Largest TTL a lease may be granted with, in seconds (etcd `lease.MaxLeaseTTL`).
pub const MAX_LEASE_TTL_SECS: i64 = 9_000_000_000;

/// Revision of the empty store (etcd starts its revision counter at 1).
pub const INITIAL_REVISION: i64 = 1;

/// A granted lease: its TTL and the keys currently attached to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Lease {
    ttl_secs: i64,
    keys: BTreeSet<Vec<u8>>,
}

/// The MVCC key-value state machine. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mvcc {
    /// Every key with retained history.
    index: KeyIndex,
    /// For each revision after the compaction point that wrote something: the keys it wrote,
    /// in write order (position = the write's `sub`). Watches replay from this without
    /// scanning the whole index.
    log: BTreeMap<i64, Vec<Vec<u8>>>,
    current_rev: i64,
    /// Reads below this revision fail; 0 until the first compaction.
    compact_rev: i64,
    leases: BTreeMap<i64, Lease>,
}

impl Default for Mvcc {
    fn default() -> Self {
        Self::new()
    }
}

impl Mvcc {
    /// An empty store at revision 1.
    pub fn new() -> Self {
        Self {
            index: KeyIndex::new(),
            log: BTreeMap::new(),
            current_rev: INITIAL_REVISION,
            compact_rev: 0,
            leases: BTreeMap::new(),
        }
    }

    /// Revision of the last write (1 for an empty store).
    pub fn current_revision(&self) -> i64 {
        self.current_rev
    }

    /// Revision of the last compaction (0 if none); reads below it fail.
    pub fn compact_revision(&self) -> i64 {
        self.compact_rev
    }

    /// Reads a key or range, now or at a retained revision (etcd `Range`).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        if req.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let rev = self.resolve_read_revision(req.revision)?;
        Ok(range::range_at(&self.index, req, rev))
    }

    /// etcd's `rangeKeys` revision rule: future first, then 0/negative = now, then compacted
    /// (a read exactly at the compaction revision is allowed).
    fn resolve_read_revision(&self, revision: i64) -> Result<i64, MvccError> {
        if revision > self.current_rev {
            return Err(MvccError::FutureRevision);
        }
        let rev = if revision <= 0 {
            self.current_rev
        } else {
            revision
        };
        if rev < self.compact_rev {
            return Err(MvccError::Compacted);
        }
        Ok(rev)
    }

    /// Discards history before `rev` (etcd `Compact`). Afterwards reads at `rev` or later
    /// answer exactly as before; older reads and watches from before `rev` fail with
    /// `Compacted`. As in etcd, each key keeps its newest write at or before `rev` unless that
    /// write is a delete, so a watch from exactly `rev` still sees the puts made at `rev` (not
    /// its deletes). Does not change the current revision.
    pub fn compact(&mut self, rev: i64) -> Result<(), MvccError> {
        if rev <= self.compact_rev {
            return Err(MvccError::Compacted);
        }
        if rev > self.current_rev {
            return Err(MvccError::FutureRevision);
        }
        // Only keys written after the previous compaction can hold more than one entry at or
        // before `rev` (older ones were trimmed to one live entry then), so the log revisions
        // at or before `rev` name every key with something to free.
        let kept = self.log.split_off(&rev);
        let dropped = std::mem::replace(&mut self.log, kept);
        let mut touched: BTreeSet<Vec<u8>> = dropped.into_values().flatten().collect();
        if let Some(at) = self.log.get(&rev) {
            touched.extend(at.iter().filter(|k| !k.is_empty()).cloned());
        }
        touched.remove(&Vec::new());
        for key in touched {
            if let Some(history) = self.index.get_mut(&key) {
                history.compact(rev);
                if history.is_empty() {
                    self.index.remove(&key);
                }
            }
        }
        self.compact_rev = rev;
        self.blank_compacted_deletes();
        debug_assert!(self.log.keys().all(|&r| r >= rev && r <= self.current_rev));
        Ok(())
    }

    /// In the log entry of the compaction revision, replaces each key whose write there was
    /// dropped (a delete) with an empty key, keeping the others at their sub positions; drops
    /// the entry when nothing of it is left.
    fn blank_compacted_deletes(&mut self) {
        let rev = self.compact_rev;
        let Some(keys) = self.log.get_mut(&rev) else {
            return;
        };
        for (sub, key) in keys.iter_mut().enumerate() {
            let r = Revision {
                main: rev,
                sub: sub_index(sub),
            };
            let kept = self.index.get(key.as_slice()).and_then(|h| h.find(r));
            if kept.is_none() {
                key.clear();
            }
        }
        while keys.last().is_some_and(|k| k.is_empty()) {
            keys.pop();
        }
        if keys.is_empty() {
            self.log.remove(&rev);
        }
    }

    /// Every change to keys in `key`/`range_end` at revisions `>= start_rev`, in revision
    /// order and, within a revision, in the order the txn wrote them; `prev_kv` filled.
    /// Fails with `Compacted` when `start_rev < compact_revision()` (a watch must then be
    /// cancelled with the compact revision). `start_rev <= 0` means 1.
    pub fn events(
        &self,
        start_rev: i64,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<Vec<Event>, MvccError> {
        self.events_between(start_rev, self.current_rev, key, range_end)
    }

    /// Like [`Mvcc::events`], but only revisions `start_rev..=end_rev` (for batched replay).
    pub fn events_between(
        &self,
        start_rev: i64,
        end_rev: i64,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<Vec<Event>, MvccError> {
        let start = start_rev.max(1);
        if start < self.compact_rev {
            return Err(MvccError::Compacted);
        }
        let end = end_rev.min(self.current_rev);
        if end < start {
            return Ok(Vec::new());
        }
        if range_end.is_empty() {
            return Ok(self.key_events(start, end, key));
        }
        let mut out = Vec::new();
        for (&main, keys) in self.log.range(start..=end) {
            for (sub, k) in keys.iter().enumerate() {
                // An empty key is a delete dropped by compaction (compaction revision only).
                if k.is_empty() || !key_in_range(k, key, range_end) {
                    continue;
                }
                let rev = Revision {
                    main,
                    sub: sub_index(sub),
                };
                let history = self.index.get(k);
                let entry = history.and_then(|h| h.find(rev));
                debug_assert!(entry.is_some(), "change log names a write the index lacks");
                if let (Some(h), Some(e)) = (history, entry) {
                    out.push(event_for(k, h, e));
                }
            }
        }
        Ok(out)
    }

    /// One key's changes in `start..=end`, straight from its history.
    fn key_events(&self, start: i64, end: i64, key: &[u8]) -> Vec<Event> {
        let Some(history) = self.index.get(key) else {
            return Vec::new();
        };
        history.entries()[history.first_index_from(start)..]
            .iter()
            .take_while(|e| e.rev.main <= end)
            .map(|e| event_for(key, history, e))
            .collect()
    }

    /// Grants lease `id` (assigned by the caller, never 0) with `ttl_secs` (etcd's lessor
    /// rules and errors). Does not change the revision.
    pub fn lease_grant(&mut self, id: i64, ttl_secs: i64) -> Result<(), MvccError> {
        if id == NO_LEASE {
            // etcd's lessor answers a grant of NoLease this way.
            return Err(MvccError::LeaseNotFound);
        }
        if ttl_secs > MAX_LEASE_TTL_SECS {
            return Err(MvccError::LeaseTtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(MvccError::LeaseExists);
        }
        let lease = Lease {
            ttl_secs,
            keys: BTreeSet::new(),
        };
        self.leases.insert(id, lease);
        Ok(())
    }

    /// Every lease as `(id, granted ttl in seconds)`, ascending by id.
    pub fn leases(&self) -> Vec<(i64, i64)> {
        self.leases
            .iter()
            .map(|(&id, l)| (id, l.ttl_secs))
            .collect()
    }

    /// Keys currently attached to lease `id`, ascending.
    pub fn lease_keys(&self, id: i64) -> Result<Vec<Vec<u8>>, MvccError> {
        let lease = self.leases.get(&id).ok_or(MvccError::LeaseNotFound)?;
        Ok(lease.keys.iter().cloned().collect())
    }

    /// The TTL lease `id` was granted with, in seconds.
    pub fn lease_ttl(&self, id: i64) -> Result<i64, MvccError> {
        let lease = self.leases.get(&id).ok_or(MvccError::LeaseNotFound)?;
        Ok(lease.ttl_secs)
    }
}

/// The watch event for one write, by etcd's rules: a delete carries only key and revision;
/// `prev_kv` is the key at the previous revision, and absent for a create (version 1).
fn event_for(key: &[u8], history: &KeyHistory, entry: &Entry) -> Event {
    let main = entry.rev.main;
    match &entry.state {
        State::Live(live) => Event {
            kind: EventKind::Put,
            kv: live_kv(key, main, live),
            prev_kv: if live.version == 1 {
                None
            } else {
                history.kv_at(key, main - 1)
            },
        },
        State::Tombstone => Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.to_vec(),
                mod_revision: main,
                ..KeyValue::default()
            },
            prev_kv: history.kv_at(key, main - 1),
        },
    }
}

/// A write's position within its revision as stored; a revision holding more than
/// `u32::MAX` writes cannot be built in memory, so overflowing is a broken invariant.
fn sub_index(n: usize) -> u32 {
    u32::try_from(n).expect("more than u32::MAX writes in one revision")
}
