//! The checkers.
//!
//! - [`RaftChecker`] runs online: every member reports a view of its raft state after every
//!   Ready, and the checker asserts election safety, leader append-only, leader completeness,
//!   state-machine safety (same entry applied at every index on every member) and that every
//!   committed entry is durable on a quorum of disks — judged by the members' `SimDisk`s
//!   (which know what was fsynced), not by what the members claim.
//! - [`check_history`] runs at the end on the recorded history: the watch guarantees
//!   (ordered, unique, atomic, reliable, resumable), no acknowledged write lost, no phantom
//!   write, and linearizability of every client operation against the sequential KV model of
//!   `rkube-spec`, using the store's revisions to order writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use rkube::platform::disk::SimDisk;
use rkube::store::node::{RaftObserver, RaftView};
use rkube::store::raftstore::WAL_DIR;
use rkube_spec::kv::{Change, KvModel};

use crate::history::{History, Op, Outcome, WatchedEvent};

/// A broken property, with enough detail to debug it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    pub detail: String,
}

#[derive(Default)]
struct RaftState {
    leaders: BTreeMap<u64, u64>,
    /// index → (term, crc) of the entry applied there, and by whom first.
    applied: BTreeMap<u64, (u64, u32, u64)>,
    /// (member, term) → highest last index seen while leader.
    leader_last: BTreeMap<(u64, u64), u64>,
    violations: Vec<Violation>,
    steps: u64,
    terms: BTreeMap<u64, u64>,
    /// Each member's disk, for the durability check (registered by the scenario).
    disks: BTreeMap<u64, SimDisk>,
    /// member → (last index, its term) of the log when its WAL was last seen fully synced.
    durable: BTreeMap<u64, (u64, u64)>,
    /// Highest commit index already checked for durability.
    durable_checked: u64,
}

/// Online raft invariants, fed by every member's [`RaftView`].
#[derive(Default)]
pub struct RaftChecker {
    inner: Mutex<RaftState>,
}

impl RaftChecker {
    /// Registers every member's disk; from then on each newly committed index must be
    /// durable on a quorum of them.
    pub fn watch_disks(&self, disks: impl IntoIterator<Item = (u64, SimDisk)>) {
        self.inner.lock().expect("checker").disks = disks.into_iter().collect();
    }

    /// Violations found so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.inner.lock().expect("checker").violations.clone()
    }

    /// Ready steps observed (all members).
    pub fn steps(&self) -> u64 {
        self.inner.lock().expect("checker").steps
    }

    /// The leader of the highest term with a known leader.
    pub fn current_leader(&self) -> Option<u64> {
        let s = self.inner.lock().expect("checker");
        s.leaders.iter().next_back().map(|(_, l)| *l)
    }

    /// Every (term, leader) seen, for the timeline.
    pub fn leaders(&self) -> Vec<(u64, u64)> {
        self.inner
            .lock()
            .expect("checker")
            .leaders
            .iter()
            .map(|(t, l)| (*t, *l))
            .collect()
    }

    /// Highest index applied anywhere.
    pub fn max_applied(&self) -> u64 {
        self.inner
            .lock()
            .expect("checker")
            .applied
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }
}

fn fail(s: &mut RaftState, property: &'static str, detail: String) {
    if s.violations.len() < 20 {
        s.violations.push(Violation { property, detail });
    }
}

impl RaftObserver for RaftChecker {
    fn observe(&self, v: &RaftView) {
        let mut s = self.inner.lock().expect("checker");
        s.steps += 1;
        let last_term = s.terms.insert(v.member, v.term).unwrap_or(0);
        if v.term < last_term {
            fail(
                &mut s,
                "term monotonic",
                format!("member {:x} term {} -> {}", v.member, last_term, v.term),
            );
        }
        if v.is_leader {
            match s.leaders.get(&v.term) {
                Some(&l) if l != v.member => {
                    let d = format!("term {} has leaders {:x} and {:x}", v.term, l, v.member);
                    fail(&mut s, "election safety", d);
                }
                _ => {
                    s.leaders.insert(v.term, v.member);
                }
            }
            let key = (v.member, v.term);
            let prev = s.leader_last.get(&key).copied().unwrap_or(0);
            if v.last_index < prev {
                let d = format!(
                    "leader {:x} term {} log shrank {} -> {}",
                    v.member, v.term, prev, v.last_index
                );
                fail(&mut s, "leader append-only", d);
            }
            s.leader_last.insert(key, v.last_index.max(prev));
        }
        if let Some(log) = &v.leader_log {
            check_completeness(&mut s, v, log);
        }
        check_durability(&mut s, v);
        for &(index, term, crc) in &v.applied {
            match s.applied.get(&index) {
                Some(&(t, c, who)) if (t, c) != (term, crc) => {
                    let d = format!(
                        "index {index}: member {:x} applied (term {t}, crc {c:x}), member {:x} applied (term {term}, crc {crc:x})",
                        who, v.member
                    );
                    fail(&mut s, "state machine safety", d);
                }
                Some(_) => {}
                None => {
                    s.applied.insert(index, (term, crc, v.member));
                }
            }
        }
    }
}

/// Committed ⇒ durable on a quorum. After a Ready a member's whole in-memory log should be
/// fsynced; if its disk agrees (no unsynced WAL bytes), its log up to `last_index` is durable.
/// A member whose durable log ends at or after the committed index with a term at least the
/// committed entry's holds that entry (log matching and leader completeness, checked
/// separately).
fn check_durability(s: &mut RaftState, v: &RaftView) {
    if s.disks.is_empty() {
        return;
    }
    if let Some(disk) = s.disks.get(&v.member) {
        if !disk.has_unsynced(WAL_DIR) {
            s.durable.insert(v.member, (v.last_index, v.last_term));
        }
    }
    if v.commit <= s.durable_checked || v.commit_term == 0 {
        return;
    }
    s.durable_checked = v.commit;
    let holders: Vec<u64> = s
        .durable
        .iter()
        .filter(|(_, &(i, t))| i >= v.commit && t >= v.commit_term)
        .map(|(&m, _)| m)
        .collect();
    let quorum = s.disks.len() / 2 + 1;
    if holders.len() < quorum {
        let d = format!(
            "member {:x} reports index {} (term {}) committed, but it is durable on {} of {} disks (need {quorum}); durable logs: {:?}",
            v.member,
            v.commit,
            v.commit_term,
            holders.len(),
            s.disks.len(),
            s.durable
        );
        fail(s, "committed entries durable on a quorum", d);
    }
}

fn check_completeness(s: &mut RaftState, v: &RaftView, log: &[(u64, u64)]) {
    let terms: BTreeMap<u64, u64> = log.iter().copied().collect();
    let missing: Vec<(u64, u64)> = s
        .applied
        .iter()
        .filter(|(i, (t, _, _))| **i >= v.first_index && terms.get(i) != Some(t))
        .map(|(i, (t, _, _))| (*i, *t))
        .take(3)
        .collect();
    if !missing.is_empty() {
        let d = format!(
            "new leader {:x} (term {}) lacks committed entries {missing:?}",
            v.member, v.term
        );
        fail(s, "leader completeness", d);
    }
}

/// The store's committed history as the watchers saw it: revision → changes.
fn merged_watch_history(h: &History, v: &mut Vec<Violation>) -> BTreeMap<i64, Vec<WatchedEvent>> {
    let mut merged: BTreeMap<i64, Vec<WatchedEvent>> = BTreeMap::new();
    let watchers: BTreeSet<usize> = h.watched.iter().map(|w| w.watcher).collect();
    for w in watchers {
        check_one_watcher(h, w, &mut merged, v);
    }
    merged
}

fn check_one_watcher(
    h: &History,
    w: usize,
    merged: &mut BTreeMap<i64, Vec<WatchedEvent>>,
    v: &mut Vec<Violation>,
) {
    let mut last_rev = 0i64;
    let mut per_rev: BTreeMap<i64, Vec<WatchedEvent>> = BTreeMap::new();
    for resp in h.watched.iter().filter(|r| r.watcher == w) {
        let mut revs_in_resp = BTreeSet::new();
        for e in &resp.events {
            if e.revision < last_rev
                || (e.revision == last_rev && !revs_in_resp.contains(&e.revision))
            {
                v.push(Violation {
                    property: "watch ordered and unique",
                    detail: format!(
                        "watcher {w}: revision {} after {last_rev} (at {} ms)",
                        e.revision, resp.received_ms
                    ),
                });
                return;
            }
            if e.revision > last_rev + 1 && last_rev > 0 {
                v.push(Violation {
                    property: "watch reliable (no gaps)",
                    detail: format!(
                        "watcher {w}: jumped from revision {last_rev} to {} (at {} ms)",
                        e.revision, resp.received_ms
                    ),
                });
                return;
            }
            revs_in_resp.insert(e.revision);
            last_rev = e.revision;
            per_rev.entry(e.revision).or_default().push(e.clone());
        }
    }
    for (rev, events) in per_rev {
        match merged.get(&rev) {
            Some(other) if *other != events => v.push(Violation {
                property: "watch atomic and consistent",
                detail: format!(
                    "revision {rev}: watcher {w} saw {events:?}, another saw {other:?}"
                ),
            }),
            Some(_) => {}
            None => {
                merged.insert(rev, events);
            }
        }
    }
}

/// Watch bookmarkable: a progress notification at revision R promises the watcher every
/// event up to R, so no revision of the store's history may lie between the last event it
/// received and R, and no event at or below R may follow.
fn check_progress(h: &History, merged: &BTreeMap<i64, Vec<WatchedEvent>>, v: &mut Vec<Violation>) {
    let mut last: BTreeMap<usize, i64> = BTreeMap::new();
    let mut floor: BTreeMap<usize, i64> = BTreeMap::new();
    for resp in &h.watched {
        let w = resp.watcher;
        let (last_rev, floor_rev) = (*last.get(&w).unwrap_or(&0), *floor.get(&w).unwrap_or(&0));
        if let Some(r) = resp.progress {
            let missed = (r > last_rev)
                .then(|| merged.range(last_rev + 1..=r).next())
                .flatten();
            if let Some((&missed, _)) = missed {
                v.push(Violation {
                    property: "watch bookmarkable (progress)",
                    detail: format!(
                        "watcher {w}: progress at revision {r} (at {} ms) but it never got revision {missed} (last event {last_rev})",
                        resp.received_ms
                    ),
                });
                return;
            }
            floor.insert(w, floor_rev.max(r));
            continue;
        }
        if let Some(e) = resp.events.iter().find(|e| e.revision <= floor_rev) {
            v.push(Violation {
                property: "watch bookmarkable (progress)",
                detail: format!(
                    "watcher {w}: event at revision {} (at {} ms) after progress at {floor_rev}",
                    e.revision, resp.received_ms
                ),
            });
            return;
        }
        if let Some(e) = resp.events.last() {
            last.insert(w, last_rev.max(e.revision));
        }
    }
}

/// Checks the recorded history. `first_rev` is the revision the watchers started from.
pub fn check_history(h: &History) -> Vec<Violation> {
    let mut v = Vec::new();
    let merged = merged_watch_history(h, &mut v);
    let model = match replay(&merged) {
        Ok(m) => m,
        Err(e) => {
            v.push(e);
            return v;
        }
    };
    check_progress(h, &merged, &mut v);
    check_writes(h, &merged, &mut v);
    check_reads(h, &model, &mut v);
    check_real_time(h, &merged, &mut v);
    v.truncate(20);
    v
}

fn replay(merged: &BTreeMap<i64, Vec<WatchedEvent>>) -> Result<KvModel, Violation> {
    let mut model = KvModel::new();
    for (rev, events) in merged {
        let changes: Vec<Change> = events
            .iter()
            .map(|e| match &e.value {
                Some(val) => Change::Put {
                    key: e.key.clone(),
                    value: val.clone(),
                },
                None => Change::Delete { key: e.key.clone() },
            })
            .collect();
        model.apply(*rev, &changes).map_err(|e| Violation {
            property: "history fits the KV model",
            detail: format!("revision {rev}: {e:?}"),
        })?;
        for e in events.iter().filter(|e| e.value.is_some()) {
            let m = model.get(&e.key, *rev).expect("just put");
            if (m.create_revision, m.version) != (e.create_revision, e.version) {
                return Err(Violation {
                    property: "history fits the KV model",
                    detail: format!(
                        "revision {rev} key {:?}: store says create {} version {}, model {} {}",
                        String::from_utf8_lossy(&e.key),
                        e.create_revision,
                        e.version,
                        m.create_revision,
                        m.version
                    ),
                });
            }
        }
    }
    Ok(model)
}

/// Where each written value landed (values are unique per run).
fn value_index(merged: &BTreeMap<i64, Vec<WatchedEvent>>) -> BTreeMap<Vec<u8>, (i64, Vec<u8>)> {
    let mut idx = BTreeMap::new();
    for (rev, events) in merged {
        for e in events {
            if let Some(val) = &e.value {
                idx.insert(val.clone(), (*rev, e.key.clone()));
            }
        }
    }
    idx
}

fn written_value(op: &Op) -> Option<(&[u8], &[u8])> {
    match op {
        Op::Put { key, value } | Op::Cas { key, value, .. } | Op::LeasePut { key, value, .. } => {
            Some((key, value))
        }
        _ => None,
    }
}

fn check_writes(h: &History, merged: &BTreeMap<i64, Vec<WatchedEvent>>, v: &mut Vec<Violation>) {
    let idx = value_index(merged);
    let mut issued: BTreeSet<Vec<u8>> = BTreeSet::new();
    for r in &h.records {
        let Some((key, value)) = written_value(&r.op) else {
            continue;
        };
        issued.insert(value.to_vec());
        match (&r.outcome, idx.get(value)) {
            (Outcome::Wrote { revision }, Some((rev, k))) if rev == revision && k == key => {}
            (Outcome::Wrote { revision }, found) => v.push(Violation {
                property: "no acknowledged write lost",
                detail: format!(
                    "client {} {:?} acknowledged at revision {revision}, history has {found:?}",
                    r.client, r.op
                ),
            }),
            (Outcome::CasFailed { .. }, Some((rev, _))) => v.push(Violation {
                property: "failed txn has no effect",
                detail: format!(
                    "client {} {:?} reported compare failure but landed at {rev}",
                    r.client, r.op
                ),
            }),
            _ => {}
        }
    }
    for r in &h.records {
        let (Op::Delete { key } | Op::CasDelete { key, .. }, Outcome::Wrote { revision }) =
            (&r.op, &r.outcome)
        else {
            continue;
        };
        let found = merged
            .get(revision)
            .is_some_and(|evs| evs.iter().any(|e| &e.key == key && e.value.is_none()));
        if !found {
            v.push(Violation {
                property: "no acknowledged write lost",
                detail: format!("client {} delete of {:?} acknowledged at revision {revision}, but no such delete is in the history", r.client, String::from_utf8_lossy(key)),
            });
        }
    }
    for (val, (rev, key)) in &idx {
        if !issued.contains(val) {
            v.push(Violation {
                property: "no phantom write",
                detail: format!(
                    "revision {rev} put {:?}={:?}, which no client wrote",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(val)
                ),
            });
        }
    }
}

fn check_reads(h: &History, model: &KvModel, v: &mut Vec<Violation>) {
    for r in &h.records {
        let (Op::Get { key }, Outcome::Read { revision, kv }) = (&r.op, &r.outcome) else {
            continue;
        };
        if *revision > model.revision() {
            continue; // beyond what the watchers recorded; nothing to compare with
        }
        let expected = model.get(key, *revision);
        let same = match (&expected, kv) {
            (None, None) => true,
            (Some(e), Some(g)) => {
                e.value == g.value
                    && e.mod_revision == g.mod_revision
                    && e.create_revision == g.create_revision
                    && e.version == g.version
            }
            _ => false,
        };
        if !same {
            v.push(Violation {
                property: "linearizable reads",
                detail: format!("client {} get {:?} at revision {revision} returned {kv:?}, the model says {expected:?}", r.client, String::from_utf8_lossy(key)),
            });
        }
    }
}

/// The revision an operation took effect at (writes) or observed (reads), if known.
fn effect_revision(
    op: &Op,
    outcome: &Outcome,
    idx: &BTreeMap<Vec<u8>, (i64, Vec<u8>)>,
) -> Option<(i64, bool)> {
    if matches!(op, Op::Compact { .. }) {
        // Compaction changes no key; its header revision is not checked for order.
        return None;
    }
    match outcome {
        Outcome::Wrote { revision } => Some((*revision, true)),
        // Later pages are pinned to the first page's revision on purpose.
        Outcome::Listed { revision, .. } => match op {
            Op::List { revision: 0, .. } => Some((*revision, false)),
            _ => None,
        },
        Outcome::Read { revision, .. }
        | Outcome::CasFailed { revision }
        | Outcome::Noop { revision } => Some((*revision, false)),
        Outcome::Unknown(_) => written_value(op)
            .and_then(|(_, val)| idx.get(val))
            .map(|(rev, _)| (*rev, true)),
    }
}

/// Real-time order: an operation that started after another finished must see (reads) or
/// land after (writes) that operation's revision.
fn check_real_time(h: &History, merged: &BTreeMap<i64, Vec<WatchedEvent>>, v: &mut Vec<Violation>) {
    let idx = value_index(merged);
    let mut done: Vec<(u64, i64, bool, usize)> = Vec::new();
    for (i, r) in h.records.iter().enumerate() {
        if let Some((rev, is_write)) = effect_revision(&r.op, &r.outcome, &idx) {
            if !matches!(r.outcome, Outcome::Unknown(_)) {
                done.push((r.completed_ms, rev, is_write, i));
            }
        }
    }
    done.sort();
    let mut prefix_max: Vec<(i64, usize)> = Vec::with_capacity(done.len());
    let mut best = (0i64, usize::MAX);
    for d in &done {
        if d.1 > best.0 {
            best = (d.1, d.3);
        }
        prefix_max.push(best);
    }
    for r in &h.records {
        let Some((rev, is_write)) = effect_revision(&r.op, &r.outcome, &idx) else {
            continue;
        };
        let before = done.partition_point(|d| d.0 < r.invoked_ms);
        if before == 0 {
            continue;
        }
        let (max_rev, who) = prefix_max[before - 1];
        let ok = if is_write {
            rev > max_rev
        } else {
            rev >= max_rev
        };
        if !ok {
            v.push(Violation {
                property: "linearizable real-time order",
                detail: format!(
                    "client {} {:?} ({:?}) invoked at {} ms has revision {rev}, but {:?} finished earlier with revision {max_rev}",
                    r.client, r.op, r.outcome, r.invoked_ms, h.records[who].op
                ),
            });
        }
    }
}
