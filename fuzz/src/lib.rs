//! Shared pieces of the fuzz targets: a [`Harness`] that applies etcd requests to the MVCC
//! store along two paths (the `Mvcc` API directly, and `apply::apply` on a `StoreState` with a
//! watcher attached) and checks invariants after every step, and structured [`Op`]s that the
//! `arbitrary` crate builds from fuzz input over a small key space, so that requests collide
//! on the same keys, revisions and leases often enough to reach the interesting paths.
//!
//! Every check is an `assert!`: a violated invariant is a crash that libFuzzer reports and
//! minimizes like a panic in rkube itself.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use rkube::store::apply::{self, StoreState};
use rkube::store::backup;
use rkube::store::convert;
use rkube::store::lessor::Lessor;
use rkube::store::mvcc::{self as m, Mvcc, MvccError};
use rkube::store::pb::etcdserverpb as pb;
use rkube::store::pb::rkubepeerpb::{internal_request::Request, InternalRequest, MemberAttributes};
use tokio::sync::mpsc;

/// `key = "\0"`, `range_end = "\0"`: every key (keys are never empty).
pub const ALL: &[u8] = b"\0";

/// With `RKUBE_FUZZ_TRACE` set, every request and its outcome goes to stderr (for reading a
/// crash artifact, or checking what a corpus reaches).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("RKUBE_FUZZ_TRACE").is_some())
}

/// One request as it reaches the store: an etcd protobuf message, or a harness action.
#[derive(Clone, Debug)]
pub enum PbOp {
    Put(pb::PutRequest),
    DeleteRange(pb::DeleteRangeRequest),
    Txn(pb::TxnRequest),
    Range(pb::RangeRequest),
    Compaction(pb::CompactionRequest),
    LeaseGrant(pb::LeaseGrantRequest),
    LeaseRevoke(pb::LeaseRevokeRequest),
    Member(MemberAttributes),
    Alarm(pb::AlarmRequest),
    /// Replace the state by a snapshot of itself (a follower installing a Raft snapshot, a
    /// restore from backup): `to_snapshot_bytes`/`encode_state` → backup → decode → restore.
    Snapshot,
}

type WatchItem = Result<pb::WatchResponse, tonic::Status>;

/// Applies requests to one store along two paths and checks that they agree.
pub struct Harness {
    /// Driven through the `Mvcc` API, after `convert::*_from_pb`.
    mvcc: Mvcc,
    /// Driven through `apply::apply`, as a member applies committed entries.
    st: StoreState,
    lessor: Lessor,
    /// A watcher on every key (with `prev_kv`) of `st`'s hub.
    watch_rx: mpsc::Receiver<WatchItem>,
    next_id: u64,
    /// Every key, as a full range read when each revision was current (from the start
    /// revision on): reads at a retained revision must keep answering exactly this.
    seen: BTreeMap<i64, Vec<m::KeyValue>>,
    /// The events of each revision written since the start, as the write returned them:
    /// watch replay must keep returning them until they are compacted.
    written: BTreeMap<i64, Vec<m::Event>>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// An empty store.
    pub fn new() -> Self {
        Self::with_store(Mvcc::new())
    }

    /// Starts from `mvcc` (e.g. a decoded snapshot).
    pub fn with_store(mvcc: Mvcc) -> Self {
        let mut st = StoreState {
            mvcc: mvcc.clone(),
            ..StoreState::default()
        };
        let (tx, mut watch_rx) = mpsc::channel::<WatchItem>(64);
        let header = pb::ResponseHeader {
            revision: mvcc.current_revision(),
            ..Default::default()
        };
        let req = pb::WatchCreateRequest {
            key: ALL.to_vec(),
            range_end: ALL.to_vec(),
            prev_kv: true,
            ..Default::default()
        };
        st.watch
            .create(1, &req, tx, &header, mvcc.compact_revision())
            .expect("watch on an empty hub");
        let created = watch_rx.try_recv().expect("created response").expect("ok");
        assert!(created.created);
        let mut lessor = Lessor::default();
        lessor.promote(&mvcc.leases(), 0, 0);
        let mut seen = BTreeMap::new();
        seen.insert(mvcc.current_revision(), full_range(&mvcc, 0));
        Self {
            mvcc,
            st,
            lessor,
            watch_rx,
            next_id: 1,
            seen,
            written: BTreeMap::new(),
        }
    }

    pub fn mvcc(&self) -> &Mvcc {
        &self.mvcc
    }

    /// Applies one request, then checks every invariant.
    pub fn run(&mut self, op: &PbOp) {
        let before = self.mvcc.clone();
        let rev0 = before.current_revision();
        match op {
            PbOp::Range(r) => self.check_range(r),
            PbOp::Snapshot => self.snapshot_round_trip(),
            _ => {
                let direct = self.apply_direct(op, &before);
                let events = self.apply_replicated(op, &direct);
                if let Some(events) = &direct {
                    self.check_events(rev0, events);
                    if !events.is_empty() {
                        self.written
                            .insert(self.mvcc.current_revision(), events.clone());
                    }
                }
                self.check_watch(events.as_deref().unwrap_or(&[]));
            }
        }
        self.check_invariants(rev0);
        let cur = self.mvcc.current_revision();
        let now = full_range(&self.mvcc, 0);
        match self.seen.get(&cur) {
            Some(then) => assert_eq!(*then, now, "reads at the current revision changed"),
            None => {
                self.seen.insert(cur, now);
            }
        }
        if matches!(op, PbOp::Compaction(_) | PbOp::Snapshot) {
            self.check_history();
        }
    }

    /// End of input: the state must survive a snapshot round trip, and history reads and
    /// watch replay must still answer what they answered when each revision was current.
    pub fn finish(mut self) {
        self.snapshot_round_trip();
        self.check_history();
    }

    /// Reads at every retained revision seen, and watch replay of every retained revision
    /// written, are what they were when the revision was current.
    fn check_history(&self) {
        let cur = self.mvcc.current_revision();
        let compact = self.mvcc.compact_revision();
        for (&rev, then) in self.seen.range(compact.max(1)..=cur) {
            assert_eq!(
                full_range(&self.mvcc, rev),
                *then,
                "reads at revision {rev} changed (compacted at {compact}, now {cur})"
            );
        }
        let Some((&first, _)) = self.written.first_key_value() else {
            return;
        };
        let from = first.max(compact + 1);
        let replay = self
            .mvcc
            .events(from, ALL, ALL)
            .expect("replay of retained revisions");
        let want: Vec<m::Event> = self
            .written
            .range(from..)
            .flat_map(|(_, ev)| ev.iter().cloned())
            .collect();
        assert_eq!(replay, want, "watch replay from {from} changed");
    }

    /// The `Mvcc` path. `None` for an error (or a request without an MVCC part); the store
    /// must then be unchanged.
    fn apply_direct(&mut self, op: &PbOp, before: &Mvcc) -> Option<Vec<m::Event>> {
        let rev0 = before.current_revision();
        let result: Result<Vec<m::Event>, String> = match op {
            PbOp::Put(p) => match convert::put_from_pb(p) {
                Err(e) => Err(e.to_string()),
                Ok(req) => self
                    .mvcc
                    .put(&req)
                    .map_err(|e| e.to_string())
                    .map(|(resp, ev)| {
                        check_put(before, &req, &resp, &ev);
                        ev
                    }),
            },
            PbOp::DeleteRange(d) => match convert::delete_from_pb(d) {
                Err(e) => Err(e.to_string()),
                Ok(req) => {
                    self.mvcc
                        .delete_range(&req)
                        .map_err(|e| e.to_string())
                        .map(|(resp, ev)| {
                            check_delete(before, &req, &resp, &ev);
                            ev
                        })
                }
            },
            PbOp::Txn(t) => match convert::txn_from_pb(t) {
                Err(e) => Err(e.to_string()),
                Ok(req) => self
                    .mvcc
                    .txn(&req)
                    .map_err(|e| e.to_string())
                    .map(|(_, ev)| ev),
            },
            PbOp::Compaction(c) => {
                let r = self.mvcc.compact(c.revision);
                match &r {
                    Ok(()) => {
                        assert_eq!(self.mvcc.compact_revision(), c.revision);
                        assert!(c.revision > before.compact_revision() && c.revision <= rev0);
                    }
                    Err(MvccError::Compacted) => assert!(c.revision <= before.compact_revision()),
                    Err(MvccError::FutureRevision) => assert!(c.revision > rev0),
                    Err(e) => panic!("compact({}) failed with {e:?}", c.revision),
                }
                r.map(|()| Vec::new()).map_err(|e| e.to_string())
            }
            PbOp::LeaseGrant(g) => self
                .mvcc
                .lease_grant(g.id, g.ttl)
                .map(|()| {
                    assert_eq!(self.mvcc.lease_ttl(g.id), Ok(g.ttl));
                    assert_eq!(self.mvcc.lease_keys(g.id), Ok(Vec::new()));
                    Vec::new()
                })
                .map_err(|e| e.to_string()),
            PbOp::LeaseRevoke(r) => {
                let keys = before.lease_keys(r.id);
                let res = self.mvcc.lease_revoke(r.id);
                match (&keys, &res) {
                    (Ok(keys), Ok(ev)) => {
                        let deleted: Vec<Vec<u8>> = ev.iter().map(|e| e.kv.key.clone()).collect();
                        assert_eq!(&deleted, keys, "revoke deletes exactly the lease's keys");
                        assert!(ev.iter().all(|e| e.kind == m::EventKind::Delete));
                        assert_eq!(self.mvcc.lease_ttl(r.id), Err(MvccError::LeaseNotFound));
                    }
                    (Err(_), Err(_)) => {}
                    _ => panic!("lease_keys {keys:?} but lease_revoke {res:?}"),
                }
                res.map_err(|e| e.to_string())
            }
            PbOp::Member(_) | PbOp::Alarm(_) => Err("no mvcc part".into()),
            PbOp::Range(_) | PbOp::Snapshot => unreachable!("handled by run"),
        };
        if tracing() {
            let kind = match op {
                PbOp::Put(_) => "put",
                PbOp::DeleteRange(_) => "delete",
                PbOp::Txn(_) => "txn",
                PbOp::Compaction(_) => "compact",
                PbOp::LeaseGrant(_) => "grant",
                PbOp::LeaseRevoke(_) => "revoke",
                _ => "other",
            };
            match &result {
                Ok(ev) => eprintln!("fuzz-trace: {kind} ok events={} rev={}", ev.len(), rev0),
                Err(e) => eprintln!("fuzz-trace: {kind} err {e}"),
            }
            eprintln!("fuzz-trace-op: {op:?}");
        }
        match result {
            Ok(events) => Some(events),
            Err(_) => {
                assert!(self.mvcc == *before, "a failed {op:?} changed the store");
                None
            }
        }
    }

    /// The `apply::apply` path; must agree with the direct one. Returns the events the
    /// watcher should see.
    fn apply_replicated(
        &mut self,
        op: &PbOp,
        direct: &Option<Vec<m::Event>>,
    ) -> Option<Vec<m::Event>> {
        let request = match op.clone() {
            PbOp::Put(p) => Request::Put(p),
            PbOp::DeleteRange(d) => Request::DeleteRange(d),
            PbOp::Txn(t) => Request::Txn(t),
            PbOp::Compaction(c) => Request::Compaction(c),
            PbOp::LeaseGrant(g) => Request::LeaseGrant(g),
            PbOp::LeaseRevoke(r) => Request::LeaseRevoke(r),
            PbOp::Member(a) => Request::Member(a),
            PbOp::Alarm(a) => Request::Alarm(a),
            PbOp::Range(_) | PbOp::Snapshot => unreachable!("handled by run"),
        };
        let mvcc_op = !matches!(op, PbOp::Member(_) | PbOp::Alarm(_));
        let req = InternalRequest {
            id: self.next_id,
            request: Some(request),
        };
        self.next_id += 1;
        let header = pb::ResponseHeader::default();
        let out = apply::apply(
            &mut self.st,
            &req,
            &header,
            &mut self.lessor,
            self.next_id * 1000,
            i64::MIN,
        );
        assert_eq!(out.header.revision, self.st.mvcc.current_revision());
        if mvcc_op {
            assert_eq!(
                out.result.is_ok(),
                direct.is_some(),
                "apply and Mvcc disagree on {op:?}: {:?}",
                out.result
            );
        } else {
            assert!(out.result.is_ok(), "{op:?} failed: {:?}", out.result);
        }
        assert!(
            self.st.mvcc == self.mvcc,
            "apply and Mvcc reached different states"
        );
        if let PbOp::LeaseGrant(g) = op {
            if direct.is_some() {
                assert!(self.lessor.ids().contains(&g.id));
            }
        }
        direct.clone()
    }

    /// A write's events: one new revision iff something was written, and exactly what
    /// watch replay (`events_between`) reads back for it.
    fn check_events(&self, rev0: i64, events: &[m::Event]) {
        let rev = self.mvcc.current_revision();
        if events.is_empty() {
            assert_eq!(rev, rev0, "revision bumped without a write");
            return;
        }
        assert_eq!(rev, rev0 + 1, "a write bumps the revision by one");
        for e in events {
            assert_eq!(e.kv.mod_revision, rev);
            if e.kind == m::EventKind::Put {
                assert!(e.kv.version >= 1 && e.kv.create_revision <= rev);
                assert_eq!(e.prev_kv.is_some(), e.kv.version > 1);
            }
        }
        let replay = self
            .mvcc
            .events_between(rev, rev, ALL, ALL)
            .expect("replay of the newest revision");
        assert_eq!(
            replay, events,
            "watch replay differs from the write's events"
        );
    }

    /// The watcher got exactly `events` (in one response), or nothing if none.
    fn check_watch(&mut self, events: &[m::Event]) {
        let mut got = Vec::new();
        while let Ok(resp) = self.watch_rx.try_recv() {
            let resp = resp.expect("watch responses are Ok");
            assert!(!resp.canceled, "watcher cancelled: {resp:?}");
            assert_eq!(
                resp.header.as_ref().map(|h| h.revision),
                Some(self.mvcc.current_revision())
            );
            got.extend(resp.events);
        }
        let want: Vec<_> = events
            .iter()
            .map(|e| convert::event_to_pb(e, true))
            .collect();
        assert_eq!(got, want, "watcher saw different events");
    }

    fn check_range(&self, r: &pb::RangeRequest) {
        let req = match convert::range_from_pb(r) {
            Ok(req) => req,
            Err(_) => {
                assert!(r.key.is_empty());
                return;
            }
        };
        let cur = self.mvcc.current_revision();
        let compact = self.mvcc.compact_revision();
        let res = self.mvcc.range(&req);
        if tracing() {
            match &res {
                Ok(r) => eprintln!("fuzz-trace: range ok kvs={} count={}", r.kvs.len(), r.count),
                Err(e) => eprintln!("fuzz-trace: range err {e}"),
            }
        }
        let resp = match res {
            Ok(resp) => resp,
            Err(MvccError::FutureRevision) => {
                assert!(req.revision > cur);
                return;
            }
            Err(MvccError::Compacted) => {
                assert!(req.revision > 0 && req.revision < compact);
                return;
            }
            Err(e) => panic!("range {req:?} failed with {e:?}"),
        };
        assert!(req.revision <= cur);
        assert!(req.revision <= 0 || req.revision >= compact);
        let at = if req.revision <= 0 { cur } else { req.revision };
        let all = self
            .mvcc
            .range(&m::RangeRequest {
                revision: at,
                ..m::RangeRequest::between(ALL, ALL)
            })
            .expect("full range at a readable revision");
        let expected: Vec<&m::KeyValue> = all
            .kvs
            .iter()
            .filter(|kv| m::key_in_range(&kv.key, &req.key, &req.range_end))
            .collect();
        assert_eq!(resp.count, expected.len() as i64, "range count of {req:?}");
        if req.count_only {
            assert!(resp.kvs.is_empty() && !resp.more);
            return;
        }
        assert!(resp.kvs.len() <= expected.len());
        if req.limit > 0 {
            assert!(resp.kvs.len() as i64 <= req.limit);
        } else {
            assert!(!resp.more);
        }
        for kv in &resp.kvs {
            let full = expected
                .iter()
                .find(|e| e.key == kv.key)
                .unwrap_or_else(|| panic!("range returned {kv:?}, not in the range"));
            let mut want = (*full).clone();
            if req.keys_only {
                want.value.clear();
            }
            assert_eq!(*kv, want);
            assert!(kv.mod_revision <= at);
        }
        let unfiltered = req.min_mod_revision == 0
            && req.max_mod_revision == 0
            && req.min_create_revision == 0
            && req.max_create_revision == 0;
        if unfiltered && req.limit <= 0 {
            assert_eq!(resp.kvs.len(), expected.len());
        }
        if unfiltered
            && req.sort_order == m::SortOrder::None
            && req.sort_target == m::SortTarget::Key
        {
            let keys: Vec<&[u8]> = resp.kvs.iter().map(|kv| &kv.key[..]).collect();
            let want: Vec<&[u8]> = expected
                .iter()
                .take(keys.len())
                .map(|kv| &kv.key[..])
                .collect();
            assert_eq!(keys, want, "unsorted range keeps key order");
            assert_eq!(resp.more, keys.len() < expected.len());
        }
    }

    fn snapshot_round_trip(&mut self) {
        let bytes = self.mvcc.to_snapshot_bytes();
        let restored = Mvcc::from_snapshot_bytes(&bytes)
            .unwrap_or_else(|e| panic!("a reachable state does not restore: {e}"));
        assert!(
            restored == self.mvcc,
            "snapshot round trip changed the store"
        );
        assert_eq!(restored.hash(), self.mvcc.hash());
        let state = apply::encode_state(&self.st);
        let backup = backup::encode_backup(&state);
        let body = backup::decode_backup(&backup).expect("own backup decodes");
        assert_eq!(body, &state[..]);
        let members = self.st.members.clone();
        let alarms = self.st.alarms.clone();
        apply::restore_state(&mut self.st, body).expect("own state restores");
        assert!(self.st.mvcc == self.mvcc);
        assert_eq!(self.st.members, members);
        assert_eq!(self.st.alarms, alarms);
        self.mvcc = restored;
    }

    /// What must hold after every step.
    fn check_invariants(&self, rev0: i64) {
        let mvcc = &self.mvcc;
        let cur = mvcc.current_revision();
        let compact = mvcc.compact_revision();
        assert!(cur >= rev0, "revision went backwards: {rev0} -> {cur}");
        assert!((0..=cur).contains(&compact));
        let all = mvcc
            .range(&m::RangeRequest::between(ALL, ALL))
            .expect("full range at the current revision");
        let at_cur = mvcc
            .range(&m::RangeRequest {
                revision: cur,
                ..m::RangeRequest::between(ALL, ALL)
            })
            .expect("full range at the explicit current revision");
        assert_eq!(all, at_cur);
        assert_eq!(all.count, all.kvs.len() as i64);
        assert!(!all.more);
        assert!(all.kvs.windows(2).all(|w| w[0].key < w[1].key));
        let leases = mvcc.leases();
        for kv in &all.kvs {
            assert!(!kv.key.is_empty());
            assert!(kv.version >= 1);
            assert!(kv.create_revision >= 2 && kv.create_revision <= kv.mod_revision);
            assert!(kv.mod_revision <= cur);
            if kv.lease != m::NO_LEASE {
                let keys = mvcc
                    .lease_keys(kv.lease)
                    .unwrap_or_else(|_| panic!("{kv:?} is attached to a missing lease"));
                assert!(keys.contains(&kv.key), "lease does not list {kv:?}");
            }
        }
        for (id, _) in &leases {
            for key in mvcc.lease_keys(*id).expect("listed lease") {
                let kv = all.kvs.iter().find(|kv| kv.key == key);
                assert!(
                    kv.is_some_and(|kv| kv.lease == *id),
                    "lease {id} lists {key:?}, which is not live on it"
                );
            }
        }
        assert_eq!(
            mvcc.range(&m::RangeRequest {
                revision: cur + 1,
                ..m::RangeRequest::between(ALL, ALL)
            }),
            Err(MvccError::FutureRevision)
        );
        if compact >= 1 {
            assert!(mvcc
                .range(&m::RangeRequest {
                    revision: compact,
                    ..m::RangeRequest::between(ALL, ALL)
                })
                .is_ok());
        }
        if compact >= 2 {
            assert_eq!(
                mvcc.range(&m::RangeRequest {
                    revision: compact - 1,
                    ..m::RangeRequest::between(ALL, ALL)
                }),
                Err(MvccError::Compacted)
            );
            assert_eq!(
                mvcc.events(compact - 1, ALL, ALL),
                Err(MvccError::Compacted)
            );
            // As in etcd, a watch may start at the compaction revision: it sees that
            // revision's surviving puts (its deletes were compacted away).
            let at_compact = mvcc.events(compact, ALL, ALL).expect("compaction revision");
            assert!(at_compact
                .iter()
                .filter(|e| e.kv.mod_revision == compact)
                .all(|e| e.kind == m::EventKind::Put && e.prev_kv.is_none()));
        }
        let events = mvcc
            .events(compact + 1, ALL, ALL)
            .expect("retained history");
        assert!(events
            .windows(2)
            .all(|w| w[0].kv.mod_revision <= w[1].kv.mod_revision));
        assert!(events
            .iter()
            .all(|e| e.kv.mod_revision > compact && e.kv.mod_revision <= cur));
    }
}

/// Every key at `revision` (0: the current one).
fn full_range(s: &Mvcc, revision: i64) -> Vec<m::KeyValue> {
    s.range(&m::RangeRequest {
        revision,
        ..m::RangeRequest::between(ALL, ALL)
    })
    .unwrap_or_else(|e| panic!("full range at revision {revision}: {e}"))
    .kvs
}

/// A plain put's response and event agree with the state before it.
fn check_put(before: &Mvcc, req: &m::PutRequest, resp: &m::PutResponse, ev: &[m::Event]) {
    let prev = before
        .range(&m::RangeRequest::single(req.key.clone()))
        .expect("point read")
        .kvs
        .pop();
    assert_eq!(ev.len(), 1);
    let kv = &ev[0].kv;
    assert_eq!(ev[0].kind, m::EventKind::Put);
    assert_eq!(kv.key, req.key);
    assert_eq!(resp.prev_kv, if req.prev_kv { prev.clone() } else { None });
    assert_eq!(ev[0].prev_kv, prev);
    match &prev {
        Some(p) => {
            assert_eq!(kv.version, p.version + 1);
            assert_eq!(kv.create_revision, p.create_revision);
        }
        None => {
            assert_eq!(kv.version, 1);
            assert_eq!(kv.create_revision, kv.mod_revision);
        }
    }
    let want_value = match &prev {
        Some(p) if req.ignore_value => &p.value,
        _ => &req.value,
    };
    assert_eq!(&kv.value, want_value);
    let want_lease = match &prev {
        Some(p) if req.ignore_lease => p.lease,
        _ => req.lease,
    };
    assert_eq!(kv.lease, want_lease);
}

/// A plain delete removes exactly the live keys of its range.
fn check_delete(
    before: &Mvcc,
    req: &m::DeleteRangeRequest,
    resp: &m::DeleteRangeResponse,
    ev: &[m::Event],
) {
    let live = before
        .range(&m::RangeRequest::between(
            req.key.clone(),
            req.range_end.clone(),
        ))
        .expect("range before delete")
        .kvs;
    assert_eq!(resp.deleted, live.len() as i64);
    assert_eq!(ev.len(), live.len());
    for (e, kv) in ev.iter().zip(&live) {
        assert_eq!(e.kind, m::EventKind::Delete);
        assert_eq!(e.kv.key, kv.key);
        assert_eq!(e.prev_kv.as_ref(), Some(kv));
    }
    if req.prev_kv {
        assert_eq!(resp.prev_kvs, live);
    } else {
        assert!(resp.prev_kvs.is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// Structured requests over a small key space.

/// The keys requests draw from: the empty key (an error), the smallest key, keys sharing
/// prefixes, and keys at the top of the byte range (where prefix ends wrap to `"\0"`).
pub const KEYS: [&[u8]; 8] = [b"", b"\0", b"a", b"a\0", b"ab", b"b", b"\xff", b"\xff\xff"];

/// Mostly the non-empty keys; the empty key (always an error) once in 32.
fn key(i: u8) -> Vec<u8> {
    if i % 32 == 31 {
        return KEYS[0].to_vec();
    }
    KEYS[1 + usize::from(i) % (KEYS.len() - 1)].to_vec()
}

#[derive(Arbitrary, Clone, Debug)]
pub enum End {
    /// Just the key.
    Point,
    /// Every key from it on (`"\0"`).
    FromKey,
    /// Every key with it as prefix.
    Prefix,
    /// Up to another key of the key space (possibly an inverted or empty range).
    To(u8),
    Raw(Vec<u8>),
}

impl End {
    fn bytes(&self, key: &[u8]) -> Vec<u8> {
        match self {
            End::Point => Vec::new(),
            End::FromKey => ALL.to_vec(),
            End::Prefix => m::prefix_range_end(key),
            End::To(i) => self::key(*i),
            End::Raw(b) => b.clone(),
        }
    }
}

/// A revision relative to the store's state when the request is built.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Rev {
    Zero,
    Current,
    Next,
    Back(u8),
    AtCompact(i8),
    Raw(i64),
}

impl Rev {
    fn resolve(self, s: &Mvcc) -> i64 {
        let cur = s.current_revision();
        match self {
            Rev::Zero => 0,
            Rev::Current => cur,
            Rev::Next => cur + 1,
            Rev::Back(n) => cur - i64::from(n),
            Rev::AtCompact(d) => s.compact_revision() + i64::from(d),
            Rev::Raw(r) => r,
        }
    }
}

/// A lease id: none, one of a few small ids, or anything.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum LeaseSel {
    None,
    Small(u8),
    Raw(i64),
}

impl LeaseSel {
    fn id(self) -> i64 {
        match self {
            LeaseSel::None => 0,
            LeaseSel::Small(i) => 1 + i64::from(i % 4),
            LeaseSel::Raw(r) => r,
        }
    }
}

/// A value: usually one of a few short ones, so value compares can hold.
#[derive(Arbitrary, Clone, Debug)]
pub enum Val {
    Small(u8),
    Raw(Vec<u8>),
}

impl Val {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Val::Small(i) => match i % 4 {
                0 => Vec::new(),
                n => vec![b'0' + n],
            },
            Val::Raw(b) => b.clone(),
        }
    }
}

#[derive(Arbitrary, Clone, Debug)]
pub struct PutSpec {
    pub key: u8,
    pub value: Val,
    pub lease: LeaseSel,
    pub prev_kv: bool,
    pub ignore_value: bool,
    pub ignore_lease: bool,
}

#[derive(Arbitrary, Clone, Debug)]
pub struct DeleteSpec {
    pub key: u8,
    pub end: End,
    pub prev_kv: bool,
}

#[derive(Arbitrary, Clone, Debug)]
pub struct RangeSpec {
    pub key: u8,
    pub end: End,
    pub limit: i8,
    pub revision: Rev,
    pub sort_order: u8,
    pub sort_target: u8,
    pub keys_only: bool,
    pub count_only: bool,
    /// Which of min/max mod/create revision filters are set, one bit each.
    pub filters: u8,
    pub filter_revs: [Rev; 4],
}

#[derive(Arbitrary, Clone, Debug)]
pub enum Operand {
    Version(i8),
    Create(Rev),
    Mod(Rev),
    Value(Val),
    Lease(LeaseSel),
}

#[derive(Arbitrary, Clone, Debug)]
pub struct CompareSpec {
    pub key: u8,
    pub end: End,
    /// `% 4` picks a result; 255 is an unknown one (a malformed compare).
    pub result: u8,
    pub operand: Operand,
    /// Use another target than the operand's (a malformed compare) when 255.
    pub mismatch: u8,
}

#[derive(Clone, Debug)]
pub enum TxnOpSpec {
    Range(RangeSpec),
    Put(PutSpec),
    Delete(DeleteSpec),
    Txn(Box<TxnSpec>),
    /// A `RequestOp` with no request (an error).
    Empty,
}

#[derive(Clone, Debug)]
pub struct TxnSpec {
    pub compare: Vec<CompareSpec>,
    pub success: Vec<TxnOpSpec>,
    pub failure: Vec<TxnOpSpec>,
}

impl<'a> Arbitrary<'a> for TxnSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // Explicit small counts (one byte each) rather than `Vec`'s continuation bytes, so
        // both branches usually hold ops.
        fn some<'a, T: Arbitrary<'a>>(
            u: &mut Unstructured<'a>,
            max: u8,
        ) -> arbitrary::Result<Vec<T>> {
            (0..u.int_in_range(0..=max)?)
                .map(|_| u.arbitrary())
                .collect()
        }
        Ok(TxnSpec {
            compare: some(u, 3)?,
            success: some(u, 4)?,
            failure: some(u, 3)?,
        })
    }
}

impl<'a> Arbitrary<'a> for TxnOpSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // One byte picks the kind, weighted towards writes so that txns write often.
        Ok(match u.int_in_range(0..=99u8)? {
            0..=39 => TxnOpSpec::Put(u.arbitrary()?),
            40..=64 => TxnOpSpec::Delete(u.arbitrary()?),
            65..=84 => TxnOpSpec::Range(u.arbitrary()?),
            85..=97 => TxnOpSpec::Txn(u.arbitrary()?),
            _ => TxnOpSpec::Empty,
        })
    }
}

/// A lease TTL: usually small (including zero and negative ones), sometimes anything.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Ttl {
    Small(i16),
    Raw(i64),
}

impl Ttl {
    fn secs(self) -> i64 {
        match self {
            Ttl::Small(t) => i64::from(t),
            Ttl::Raw(t) => t,
        }
    }
}

/// One structured step.
#[derive(Clone, Debug)]
pub enum Op {
    Put(PutSpec),
    Delete(DeleteSpec),
    Range(RangeSpec),
    Txn(TxnSpec),
    Compact(Rev),
    LeaseGrant { id: LeaseSel, ttl: Ttl },
    LeaseRevoke(LeaseSel),
    Member { id: u8, name: u8 },
    Alarm { action: u8, member: u8, alarm: u8 },
    Snapshot,
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // One byte picks the kind, weighted towards the requests that change the store.
        Ok(match u.int_in_range(0..=99u8)? {
            0..=27 => Op::Put(u.arbitrary()?),
            28..=37 => Op::Delete(u.arbitrary()?),
            38..=47 => Op::Range(u.arbitrary()?),
            48..=72 => Op::Txn(u.arbitrary()?),
            73..=79 => Op::Compact(u.arbitrary()?),
            80..=86 => Op::LeaseGrant {
                id: u.arbitrary()?,
                ttl: u.arbitrary()?,
            },
            87..=91 => Op::LeaseRevoke(u.arbitrary()?),
            92..=93 => Op::Member {
                id: u.arbitrary()?,
                name: u.arbitrary()?,
            },
            94..=95 => Op::Alarm {
                action: u.arbitrary()?,
                member: u.arbitrary()?,
                alarm: u.arbitrary()?,
            },
            _ => Op::Snapshot,
        })
    }
}

impl PutSpec {
    fn to_pb(&self) -> pb::PutRequest {
        pb::PutRequest {
            key: key(self.key),
            value: self.value.bytes(),
            lease: self.lease.id(),
            prev_kv: self.prev_kv,
            ignore_value: self.ignore_value,
            ignore_lease: self.ignore_lease,
        }
    }
}

impl DeleteSpec {
    fn to_pb(&self) -> pb::DeleteRangeRequest {
        let key = key(self.key);
        pb::DeleteRangeRequest {
            range_end: self.end.bytes(&key),
            key,
            prev_kv: self.prev_kv,
        }
    }
}

impl RangeSpec {
    fn to_pb(&self, s: &Mvcc) -> pb::RangeRequest {
        let key = key(self.key);
        let filter = |bit: u8, i: usize| {
            if self.filters & (1 << bit) != 0 {
                self.filter_revs[i].resolve(s)
            } else {
                0
            }
        };
        pb::RangeRequest {
            range_end: self.end.bytes(&key),
            key,
            limit: i64::from(self.limit),
            revision: self.revision.resolve(s),
            sort_order: i32::from(self.sort_order % 4),
            sort_target: i32::from(self.sort_target % 6),
            serializable: false,
            keys_only: self.keys_only,
            count_only: self.count_only,
            min_mod_revision: filter(0, 0),
            max_mod_revision: filter(1, 1),
            min_create_revision: filter(2, 2),
            max_create_revision: filter(3, 3),
        }
    }
}

impl CompareSpec {
    fn to_pb(&self, s: &Mvcc) -> pb::Compare {
        use pb::compare::{CompareTarget as T, TargetUnion as U};
        let key = key(self.key);
        let (target, union) = match &self.operand {
            Operand::Version(v) => (T::Version, U::Version(i64::from(*v))),
            Operand::Create(r) => (T::Create, U::CreateRevision(r.resolve(s))),
            Operand::Mod(r) => (T::Mod, U::ModRevision(r.resolve(s))),
            Operand::Value(v) => (T::Value, U::Value(v.bytes())),
            Operand::Lease(l) => (T::Lease, U::Lease(l.id())),
        };
        let target = if self.mismatch == u8::MAX {
            (target as i32 + 1) % 6
        } else {
            target as i32
        };
        pb::Compare {
            result: if self.result == u8::MAX {
                4
            } else {
                i32::from(self.result % 4)
            },
            target,
            range_end: self.end.bytes(&key),
            key,
            target_union: Some(union),
        }
    }
}

impl TxnOpSpec {
    fn to_pb(&self, s: &Mvcc) -> pb::RequestOp {
        use pb::request_op::Request as R;
        pb::RequestOp {
            request: match self {
                TxnOpSpec::Range(r) => Some(R::RequestRange(r.to_pb(s))),
                TxnOpSpec::Put(p) => Some(R::RequestPut(p.to_pb())),
                TxnOpSpec::Delete(d) => Some(R::RequestDeleteRange(d.to_pb())),
                TxnOpSpec::Txn(t) => Some(R::RequestTxn(t.to_pb(s))),
                TxnOpSpec::Empty => None,
            },
        }
    }
}

impl TxnSpec {
    fn to_pb(&self, s: &Mvcc) -> pb::TxnRequest {
        pb::TxnRequest {
            compare: self.compare.iter().map(|c| c.to_pb(s)).collect(),
            success: self.success.iter().map(|o| o.to_pb(s)).collect(),
            failure: self.failure.iter().map(|o| o.to_pb(s)).collect(),
        }
    }
}

impl Op {
    /// The request this step sends to a store in state `s`.
    pub fn to_pb(&self, s: &Mvcc) -> PbOp {
        match self {
            Op::Put(p) => PbOp::Put(p.to_pb()),
            Op::Delete(d) => PbOp::DeleteRange(d.to_pb()),
            Op::Range(r) => PbOp::Range(r.to_pb(s)),
            Op::Txn(t) => PbOp::Txn(t.to_pb(s)),
            Op::Compact(r) => PbOp::Compaction(pb::CompactionRequest {
                revision: r.resolve(s),
                physical: false,
            }),
            Op::LeaseGrant { id, ttl } => PbOp::LeaseGrant(pb::LeaseGrantRequest {
                ttl: ttl.secs(),
                id: id.id(),
            }),
            Op::LeaseRevoke(id) => PbOp::LeaseRevoke(pb::LeaseRevokeRequest { id: id.id() }),
            Op::Member { id, name } => PbOp::Member(MemberAttributes {
                id: u64::from(*id % 4),
                name: format!("m{name}"),
                client_urls: vec![format!("http://127.0.0.1:{name}")],
                peer_urls: Vec::new(),
            }),
            Op::Alarm {
                action,
                member,
                alarm,
            } => PbOp::Alarm(pb::AlarmRequest {
                action: i32::from(*action % 4),
                member_id: u64::from(*member % 4),
                alarm: i32::from(*alarm % 4),
            }),
            Op::Snapshot => PbOp::Snapshot,
        }
    }
}

/// Runs structured steps drawn from `u` until it runs dry or `max_ops` ran; returns the
/// harness for more checks.
///
/// With `RKUBE_FUZZ_SEEDS_DIR` set, also writes seeds for the byte-level targets under that
/// directory: the requests in `etcd_request`'s format to `etcd_request/`, and the final
/// state's snapshot and backup to `snapshot_decode/` (`.ci/fuzz` does this from the
/// `mvcc_ops` corpus, so no binary seeds are kept in the repository).
pub fn run_ops(u: &mut Unstructured<'_>, max_ops: usize) -> Harness {
    let mut h = Harness::new();
    let seeds = std::env::var_os("RKUBE_FUZZ_SEEDS_DIR").map(std::path::PathBuf::from);
    let mut ops = Vec::new();
    for _ in 0..max_ops {
        let Ok(op) = Op::arbitrary(u) else { break };
        let op = op.to_pb(h.mvcc());
        h.run(&op);
        if seeds.is_some() {
            ops.push(op);
        }
        if u.is_empty() {
            break;
        }
    }
    if let Some(dir) = seeds {
        write_seed(&dir.join("etcd_request"), &encode_requests(&ops));
        write_seed(&dir.join("snapshot_decode"), &h.mvcc().to_snapshot_bytes());
        let backup = backup::encode_backup(&apply::encode_state(&h.st));
        write_seed(&dir.join("snapshot_decode"), &backup);
    }
    h
}

fn write_seed(dir: &std::path::Path, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    std::fs::create_dir_all(dir).expect("create seed dir");
    let name = format!("seed-{:08x}-{}", crc32fast::hash(bytes), bytes.len());
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// `etcd_request`'s input format: repeated `[tag][len][len bytes of protobuf]`.
pub fn decode_requests(data: &[u8], max_ops: usize) -> Vec<PbOp> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < max_ops {
        let [tag, len, tail @ ..] = rest else { break };
        let (chunk, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        if let Some(op) = decode_request(*tag, chunk) {
            out.push(op);
        }
    }
    out
}

fn decode_request(tag: u8, chunk: &[u8]) -> Option<PbOp> {
    use prost::Message as _;
    Some(match tag % 10 {
        0 => PbOp::Put(pb::PutRequest::decode(chunk).ok()?),
        1 => PbOp::DeleteRange(pb::DeleteRangeRequest::decode(chunk).ok()?),
        2 => PbOp::Txn(pb::TxnRequest::decode(chunk).ok()?),
        3 => PbOp::Range(pb::RangeRequest::decode(chunk).ok()?),
        4 => PbOp::Compaction(pb::CompactionRequest::decode(chunk).ok()?),
        5 => PbOp::LeaseGrant(pb::LeaseGrantRequest::decode(chunk).ok()?),
        6 => PbOp::LeaseRevoke(pb::LeaseRevokeRequest::decode(chunk).ok()?),
        7 => PbOp::Member(MemberAttributes::decode(chunk).ok()?),
        8 => PbOp::Alarm(pb::AlarmRequest::decode(chunk).ok()?),
        _ => PbOp::Snapshot,
    })
}

/// The inverse of [`decode_requests`]; requests whose encoding exceeds 255 bytes are left out.
pub fn encode_requests(ops: &[PbOp]) -> Vec<u8> {
    use prost::Message as _;
    let mut out = Vec::new();
    for op in ops {
        let (tag, chunk) = match op {
            PbOp::Put(m) => (0, m.encode_to_vec()),
            PbOp::DeleteRange(m) => (1, m.encode_to_vec()),
            PbOp::Txn(m) => (2, m.encode_to_vec()),
            PbOp::Range(m) => (3, m.encode_to_vec()),
            PbOp::Compaction(m) => (4, m.encode_to_vec()),
            PbOp::LeaseGrant(m) => (5, m.encode_to_vec()),
            PbOp::LeaseRevoke(m) => (6, m.encode_to_vec()),
            PbOp::Member(m) => (7, m.encode_to_vec()),
            PbOp::Alarm(m) => (8, m.encode_to_vec()),
            PbOp::Snapshot => (9, Vec::new()),
        };
        let Ok(len) = u8::try_from(chunk.len()) else {
            continue;
        };
        out.push(tag);
        out.push(len);
        out.extend_from_slice(&chunk);
    }
    out
}
