//! Property tests: the MVCC core against a tiny reference model that keeps a full copy of
//! the key space for every revision (so history, compaction and watch replay are trivially
//! right there), plus snapshot round trips and a decoder that must survive arbitrary bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

const KEYS: [&[u8]; 5] = [b"a", b"ab", b"b", b"ba", b"c"];
/// Empty (a point) is listed thrice so most ranges are single keys.
const RANGE_ENDS: [&[u8]; 8] = [b"", b"", b"", b"\0", b"ab", b"b", b"bb", b"d"];
const VALUES: [&[u8]; 3] = [b"", b"x", b"yy"];
const MAX_LEASE_ID: i64 = 3;
const MAX_STEPS: usize = 40;
const CASES: u32 = 256;
/// Snapshot header bytes: magic, format, body length, crc.
const HEADER_BYTES: usize = 24;

type Snap = BTreeMap<Vec<u8>, KeyValue>;
type KeySet = BTreeSet<Vec<u8>>;

/// The reference: `snaps[r - 1]` is the whole key space at revision `r`, `events[r - 1]` the
/// changes revision `r` made, in order.
#[derive(Clone, Debug)]
struct Model {
    snaps: Vec<Snap>,
    events: Vec<Vec<Event>>,
    compact: i64,
    leases: BTreeMap<i64, i64>,
}

type TxnResult = Result<(TxnResponse, Vec<Event>), MvccError>;

impl Model {
    fn new() -> Self {
        Self {
            snaps: vec![Snap::new()],
            events: vec![Vec::new()],
            compact: 0,
            leases: BTreeMap::new(),
        }
    }

    fn current(&self) -> i64 {
        self.snaps.len() as i64
    }

    fn snap(&self, rev: i64) -> &Snap {
        &self.snaps[(rev - 1) as usize]
    }

    fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        if req.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        if req.revision > self.current() {
            return Err(MvccError::FutureRevision);
        }
        let rev = if req.revision <= 0 {
            self.current()
        } else {
            req.revision
        };
        if rev < self.compact {
            return Err(MvccError::Compacted);
        }
        Ok(model_range(self.snap(rev), req))
    }

    fn compact(&mut self, rev: i64) -> Result<(), MvccError> {
        if rev <= self.compact {
            return Err(MvccError::Compacted);
        }
        if rev > self.current() {
            return Err(MvccError::FutureRevision);
        }
        self.compact = rev;
        Ok(())
    }

    fn events(&self, start: i64, key: &[u8], end: &[u8]) -> Result<Vec<Event>, MvccError> {
        let start = start.max(1);
        if start < self.compact {
            return Err(MvccError::Compacted);
        }
        let from = (start - 1) as usize;
        let all = self.events.iter().skip(from).flatten();
        // etcd's compaction keeps each key's newest write at the compaction revision unless
        // it is a delete, and nothing before it (so no previous value).
        let at_compact = |e: &Event| e.kv.mod_revision == self.compact && self.compact > 0;
        Ok(all
            .filter(|e| key_in_range(&e.kv.key, key, end))
            .filter(|e| !(at_compact(e) && e.kind == EventKind::Delete))
            .map(|e| {
                let mut e = e.clone();
                if at_compact(&e) {
                    e.prev_kv = None;
                }
                e
            })
            .collect())
    }

    fn grant(&mut self, id: i64, ttl: i64) -> Result<(), MvccError> {
        if id == 0 {
            return Err(MvccError::LeaseNotFound);
        }
        if ttl > MAX_LEASE_TTL_SECS {
            return Err(MvccError::LeaseTtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(MvccError::LeaseExists);
        }
        self.leases.insert(id, ttl);
        Ok(())
    }

    fn lease_keys(&self, id: i64) -> Vec<Vec<u8>> {
        let now = self.snap(self.current());
        now.values()
            .filter(|kv| kv.lease == id)
            .map(|kv| kv.key.clone())
            .collect()
    }

    fn revoke(&mut self, id: i64) -> Result<Vec<Event>, MvccError> {
        if self.leases.remove(&id).is_none() {
            return Err(MvccError::LeaseNotFound);
        }
        let mut a = Apply::begin(self);
        for key in self.lease_keys(id) {
            a.delete(&DeleteRangeRequest::single(key));
        }
        Ok(self.commit(a))
    }

    fn put(&mut self, req: &PutRequest) -> Result<(PutResponse, Vec<Event>), MvccError> {
        model_put_shape(req)?;
        if req.lease != 0 && !self.leases.contains_key(&req.lease) {
            return Err(MvccError::LeaseNotFound);
        }
        self.check_put(req)?;
        let mut a = Apply::begin(self);
        let resp = a.put(req);
        Ok((resp, self.commit(a)))
    }

    fn delete(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<(DeleteRangeResponse, Vec<Event>), MvccError> {
        if req.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let mut a = Apply::begin(self);
        let resp = a.delete(req);
        Ok((resp, self.commit(a)))
    }

    fn txn(&mut self, req: &TxnRequest) -> TxnResult {
        model_txn_shape(req)?;
        model_dups(&req.success)?;
        model_dups(&req.failure)?;
        if model_writes(req) {
            // Put checks, by dry run: the first put that finds no key (ignore_*) or no lease.
            let mut dry = Apply::begin(self);
            dry.txn(req);
            if let Some(err) = dry.error {
                return Err(err);
            }
        }
        self.walk_path(req, &|m, op| match op {
            RequestOp::Range(r) if r.revision > m.current() => Err(MvccError::FutureRevision),
            RequestOp::Range(r) if r.revision != 0 && r.revision < first_rev(m.compact) => {
                Err(MvccError::Compacted)
            }
            _ => Ok(()),
        })?;
        let mut a = Apply::begin(self);
        let resp = a.txn(req);
        Ok((resp, self.commit(a)))
    }

    fn check_put(&self, req: &PutRequest) -> Result<(), MvccError> {
        let exists = self.snap(self.current()).contains_key(&req.key);
        if (req.ignore_value || req.ignore_lease) && !exists {
            return Err(MvccError::KeyNotFound);
        }
        Ok(())
    }

    fn walk_path(
        &self,
        req: &TxnRequest,
        check: &dyn Fn(&Model, &RequestOp) -> Result<(), MvccError>,
    ) -> Result<(), MvccError> {
        let now = self.snap(self.current());
        let ops = if model_compares(now, req) {
            &req.success
        } else {
            &req.failure
        };
        for op in ops {
            match op {
                RequestOp::Txn(t) => self.walk_path(t, check)?,
                _ => check(self, op)?,
            }
        }
        Ok(())
    }

    fn commit(&mut self, a: Apply) -> Vec<Event> {
        if !a.events.is_empty() {
            self.snaps.push(a.working);
            self.events.push(a.events.clone());
        }
        a.events
    }
}

/// One txn being applied to a copy of the current key space.
struct Apply {
    pre: Snap,
    working: Snap,
    history: Vec<Snap>,
    leases: BTreeMap<i64, i64>,
    rev: i64,
    events: Vec<Event>,
    /// First put that could not be applied (only a dry run can meet one).
    error: Option<MvccError>,
}

impl Apply {
    fn begin(model: &Model) -> Self {
        let pre = model.snap(model.current()).clone();
        Self {
            working: pre.clone(),
            pre,
            history: model.snaps.clone(),
            leases: model.leases.clone(),
            rev: model.current() + 1,
            events: Vec::new(),
            error: None,
        }
    }

    fn txn(&mut self, req: &TxnRequest) -> TxnResponse {
        let succeeded = model_compares(&self.pre, req);
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let responses = ops
            .iter()
            .map(|op| match op {
                RequestOp::Range(r) => {
                    // A dry run may meet a future revision (checked later); it answers empty.
                    let snap = if r.revision <= 0 {
                        Some(&self.working)
                    } else {
                        self.history.get((r.revision - 1) as usize)
                    };
                    ResponseOp::Range(snap.map(|s| model_range(s, r)).unwrap_or_default())
                }
                RequestOp::Put(p) => ResponseOp::Put(self.put(p)),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete(d)),
                RequestOp::Txn(t) => ResponseOp::Txn(self.txn(t)),
            })
            .collect();
        TxnResponse {
            succeeded,
            responses,
        }
    }

    fn put(&mut self, req: &PutRequest) -> PutResponse {
        let prev = self.working.get(&req.key).cloned();
        if self.error.is_none() {
            if (req.ignore_value || req.ignore_lease) && prev.is_none() {
                self.error = Some(MvccError::KeyNotFound);
            } else if req.lease != 0 && !self.leases.contains_key(&req.lease) {
                self.error = Some(MvccError::LeaseNotFound);
            }
        }
        let mut kv = KeyValue {
            key: req.key.clone(),
            create_revision: self.rev,
            mod_revision: self.rev,
            version: 1,
            value: req.value.clone(),
            lease: req.lease,
        };
        if let Some(p) = &prev {
            kv.create_revision = p.create_revision;
            kv.version = p.version + 1;
            if req.ignore_value {
                kv.value = p.value.clone();
            }
            if req.ignore_lease {
                kv.lease = p.lease;
            }
        }
        let watch_prev = (kv.version > 1)
            .then(|| self.pre.get(&req.key).cloned())
            .flatten();
        self.events.push(Event {
            kind: EventKind::Put,
            kv: kv.clone(),
            prev_kv: watch_prev,
        });
        self.working.insert(req.key.clone(), kv);
        PutResponse {
            prev_kv: prev.filter(|_| req.prev_kv),
        }
    }

    fn delete(&mut self, req: &DeleteRangeRequest) -> DeleteRangeResponse {
        let doomed: Vec<KeyValue> = self
            .working
            .values()
            .filter(|kv| key_in_range(&kv.key, &req.key, &req.range_end))
            .cloned()
            .collect();
        for kv in &doomed {
            self.working.remove(&kv.key);
            self.events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: kv.key.clone(),
                    mod_revision: self.rev,
                    ..KeyValue::default()
                },
                prev_kv: self.pre.get(&kv.key).cloned(),
            });
        }
        DeleteRangeResponse {
            deleted: doomed.len() as i64,
            prev_kvs: if req.prev_kv { doomed } else { Vec::new() },
        }
    }
}

/// etcd's `compactMainRev`, which is -1 until the first compaction.
fn first_rev(compact: i64) -> i64 {
    if compact == 0 {
        -1
    } else {
        compact
    }
}

fn model_range(snap: &Snap, req: &RangeRequest) -> RangeResponse {
    let matched: Vec<&KeyValue> = snap
        .values()
        .filter(|kv| key_in_range(&kv.key, &req.key, &req.range_end))
        .collect();
    let count = matched.len() as i64;
    if req.count_only {
        return RangeResponse {
            kvs: Vec::new(),
            more: false,
            count,
        };
    }
    let zero_or = |bound: i64, ok: bool| bound == 0 || ok;
    let mut kvs: Vec<KeyValue> = matched
        .into_iter()
        .filter(|kv| {
            zero_or(
                req.min_mod_revision,
                kv.mod_revision >= req.min_mod_revision,
            )
        })
        .filter(|kv| {
            zero_or(
                req.max_mod_revision,
                kv.mod_revision <= req.max_mod_revision,
            )
        })
        .filter(|kv| {
            zero_or(
                req.min_create_revision,
                kv.create_revision >= req.min_create_revision,
            )
        })
        .filter(|kv| {
            zero_or(
                req.max_create_revision,
                kv.create_revision <= req.max_create_revision,
            )
        })
        .cloned()
        .collect();
    model_sort(&mut kvs, req.sort_order, req.sort_target);
    let more = req.limit > 0 && kvs.len() as i64 > req.limit;
    if more {
        kvs.truncate(req.limit as usize);
    }
    if req.keys_only {
        kvs.iter_mut().for_each(|kv| kv.value.clear());
    }
    RangeResponse { kvs, more, count }
}

/// etcd's order: `None` means key order for the key target and ascending otherwise; ties
/// are broken by ascending key.
fn model_sort(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let field = |kv: &KeyValue| -> (i64, Vec<u8>) {
        match target {
            SortTarget::Key => (0, kv.key.clone()),
            SortTarget::Version => (kv.version, Vec::new()),
            SortTarget::Create => (kv.create_revision, Vec::new()),
            SortTarget::Mod => (kv.mod_revision, Vec::new()),
            SortTarget::Value => (0, kv.value.clone()),
        }
    };
    match (order, target) {
        (SortOrder::Descend, _) => kvs.sort_by_key(|kv| (Reverse(field(kv)), kv.key.clone())),
        (SortOrder::None, SortTarget::Key) => {}
        _ => kvs.sort_by_key(|kv| (field(kv), kv.key.clone())),
    }
}

fn model_compares(snap: &Snap, req: &TxnRequest) -> bool {
    req.compare.iter().all(|c| {
        let kvs: Vec<&KeyValue> = snap
            .values()
            .filter(|kv| key_in_range(&kv.key, &c.key, &c.range_end))
            .collect();
        if kvs.is_empty() {
            return !matches!(c.target, CompareTarget::Value(_))
                && compare_one(c, &KeyValue::default());
        }
        kvs.into_iter().all(|kv| compare_one(c, kv))
    })
}

fn compare_one(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
        CompareTarget::Value(v) => kv.value.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

fn model_put_shape(p: &PutRequest) -> Result<(), MvccError> {
    match () {
        _ if p.key.is_empty() => Err(MvccError::EmptyKey),
        _ if p.ignore_value && !p.value.is_empty() => Err(MvccError::ValueProvided),
        _ if p.ignore_lease && p.lease != 0 => Err(MvccError::LeaseProvided),
        _ => Ok(()),
    }
}

fn model_txn_shape(t: &TxnRequest) -> Result<(), MvccError> {
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(MvccError::EmptyKey);
    }
    t.success
        .iter()
        .chain(&t.failure)
        .try_for_each(|op| match op {
            RequestOp::Range(r) if r.key.is_empty() => Err(MvccError::EmptyKey),
            RequestOp::DeleteRange(d) if d.key.is_empty() => Err(MvccError::EmptyKey),
            RequestOp::Put(p) => model_put_shape(p),
            RequestOp::Txn(t) => model_txn_shape(t),
            _ => Ok(()),
        })
}

fn model_writes(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).any(|op| match op {
        RequestOp::Range(_) => false,
        RequestOp::Txn(t) => model_writes(t),
        _ => true,
    })
}

/// etcd's duplicate-key rule restated over the finite key universe: a delete covers the
/// universe keys in its literal interval (so a `"\0"` end covers none, as in etcd).
fn model_dups(ops: &[RequestOp]) -> Result<(KeySet, KeySet), MvccError> {
    let covered = |d: &DeleteRangeRequest| -> KeySet {
        KEYS.iter()
            .map(|k| k.to_vec())
            .filter(|k| {
                if d.range_end.is_empty() {
                    *k == d.key
                } else {
                    d.key <= *k && *k < d.range_end
                }
            })
            .collect()
    };
    let mut dels = KeySet::new();
    for op in ops {
        if let RequestOp::DeleteRange(d) = op {
            dels.extend(covered(d));
        }
    }
    let mut puts = KeySet::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (then_puts, then_dels) = model_dups(&t.success)?;
        let (else_puts, else_dels) = model_dups(&t.failure)?;
        let clash_then = then_puts
            .iter()
            .any(|k| puts.contains(k) || dels.contains(k));
        let clash_else = else_puts
            .iter()
            .any(|k| puts.contains(k) && !then_puts.contains(k) || dels.contains(k));
        if clash_then || clash_else {
            return Err(MvccError::DuplicateKey);
        }
        puts.extend(then_puts.into_iter().chain(else_puts));
        dels.extend(then_dels.into_iter().chain(else_dels));
    }
    for op in ops {
        if let RequestOp::Put(p) = op {
            if !puts.insert(p.key.clone()) || dels.contains(&p.key) {
                return Err(MvccError::DuplicateKey);
            }
        }
    }
    Ok((puts, dels))
}

// ---- strategies ----

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(&KEYS[..]).prop_map(<[u8]>::to_vec)
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(&RANGE_ENDS[..]).prop_map(<[u8]>::to_vec)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(&VALUES[..]).prop_map(<[u8]>::to_vec)
}

fn lease_id() -> impl Strategy<Value = i64> {
    prop_oneof![2 => Just(0i64), 1 => 1..=MAX_LEASE_ID]
}

fn put_req() -> impl Strategy<Value = PutRequest> {
    let flags = (
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    );
    (key(), value(), lease_id(), flags).prop_map(|(key, value, lease, (prev_kv, iv, il))| {
        // Mostly well-formed ignore_* puts; "yy" / lease 3 keep some malformed ones.
        let value = if iv && value != b"yy" {
            Vec::new()
        } else {
            value
        };
        let lease = if il && lease != MAX_LEASE_ID {
            0
        } else {
            lease
        };
        PutRequest {
            key,
            value,
            lease,
            prev_kv,
            ignore_value: iv,
            ignore_lease: il,
        }
    })
}

fn del_req() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn filter() -> impl Strategy<Value = i64> {
    prop_oneof![6 => Just(0i64), 1 => 1i64..8]
}

fn range_req() -> impl Strategy<Value = RangeRequest> {
    let order = prop_oneof![
        Just(SortOrder::None),
        Just(SortOrder::Ascend),
        Just(SortOrder::Descend)
    ];
    let target = prop_oneof![
        Just(SortTarget::Key),
        Just(SortTarget::Version),
        Just(SortTarget::Create),
        Just(SortTarget::Mod),
        Just(SortTarget::Value)
    ];
    let flags = (prop::bool::weighted(0.2), prop::bool::weighted(0.1));
    let filters = (filter(), filter(), filter(), filter());
    // Txn reads name a revision directly; mostly "now" so the txn is not rejected.
    let revision = prop_oneof![6 => Just(0i64), 2 => 1i64..8, 1 => Just(-1i64)];
    let base = (key(), range_end(), 0i64..4, revision);
    (base, order, target, flags, filters).prop_map(|((key, end, limit, rev), o, t, f, fl)| {
        RangeRequest {
            key,
            range_end: end,
            limit,
            revision: rev,
            sort_order: o,
            sort_target: t,
            keys_only: f.0,
            count_only: f.1,
            min_mod_revision: fl.0,
            max_mod_revision: fl.1,
            min_create_revision: fl.2,
            max_create_revision: fl.3,
        }
    })
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (0i64..3).prop_map(CompareTarget::Version),
        (0i64..8).prop_map(CompareTarget::Create),
        (0i64..8).prop_map(CompareTarget::Mod),
        value().prop_map(CompareTarget::Value),
        (0i64..=MAX_LEASE_ID).prop_map(CompareTarget::Lease),
    ];
    let result = prop_oneof![
        Just(CompareResult::Equal),
        Just(CompareResult::Greater),
        Just(CompareResult::Less),
        Just(CompareResult::NotEqual)
    ];
    let end = prop_oneof![4 => Just(Vec::new()), 1 => range_end()];
    (key(), end, target, result).prop_map(|(key, range_end, target, result)| Compare {
        key,
        range_end,
        target,
        result,
    })
}

fn txn_req() -> impl Strategy<Value = TxnRequest> {
    // Few deletes: ranges over a five-key space overlap puts (DuplicateKey) very often.
    let leaf = prop_oneof![
        3 => range_req().prop_map(RequestOp::Range),
        3 => put_req().prop_map(RequestOp::Put),
        1 => del_req().prop_map(RequestOp::DeleteRange),
    ];
    let op = leaf.prop_recursive(2, 8, 2, |inner| {
        (
            vec(compare(), 0..3),
            vec(inner.clone(), 0..3),
            vec(inner, 0..2),
        )
            .prop_map(|(compare, success, failure)| {
                RequestOp::Txn(TxnRequest {
                    compare,
                    success,
                    failure,
                })
            })
    });
    (vec(compare(), 0..3), vec(op.clone(), 0..4), vec(op, 0..3)).prop_map(
        |(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        },
    )
}

/// One step of a run; `u8` selectors become revisions in `0..=current + 1` at run time.
#[derive(Clone, Debug)]
enum Step {
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Txn(TxnRequest),
    Range(RangeRequest, u8),
    Compact(u8),
    Grant(i64, i64),
    Revoke(i64),
    Events(u8, Vec<u8>, Vec<u8>),
    Snapshot,
}

/// Mostly real ids; 0 sometimes, to check it is refused.
fn step_lease_id() -> impl Strategy<Value = i64> {
    prop_oneof![1 => Just(0i64), 6 => 1..=MAX_LEASE_ID]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => put_req().prop_map(Step::Put),
        2 => del_req().prop_map(Step::Delete),
        4 => txn_req().prop_map(Step::Txn),
        2 => (range_req(), any::<u8>()).prop_map(|(r, s)| Step::Range(r, s)),
        1 => any::<u8>().prop_map(Step::Compact),
        3 => (step_lease_id(), prop_oneof![4 => Just(10i64), 1 => Just(MAX_LEASE_TTL_SECS + 1)])
            .prop_map(|(id, ttl)| Step::Grant(id, ttl)),
        1 => step_lease_id().prop_map(Step::Revoke),
        2 => (any::<u8>(), key(), range_end()).prop_map(|(s, k, e)| Step::Events(s, k, e)),
        1 => Just(Step::Snapshot),
    ]
}

// ---- the properties ----

fn revision_from(selector: u8, current: i64) -> i64 {
    i64::from(selector) % (current + 2)
}

fn apply_step(m: &mut Mvcc, model: &mut Model, step: &Step) -> Result<(), TestCaseError> {
    let cur = m.current_revision();
    match step {
        Step::Put(p) => prop_assert_eq!(m.put(p), model.put(p)),
        Step::Delete(d) => prop_assert_eq!(m.delete_range(d), model.delete(d)),
        Step::Txn(t) => prop_assert_eq!(m.txn(t), model.txn(t)),
        Step::Range(r, sel) => {
            let req = RangeRequest {
                revision: revision_from(*sel, cur),
                ..r.clone()
            };
            prop_assert_eq!(m.range(&req), model.range(&req));
        }
        Step::Compact(sel) => {
            let rev = revision_from(*sel, cur);
            prop_assert_eq!(m.compact(rev), model.compact(rev));
        }
        Step::Grant(id, ttl) => prop_assert_eq!(m.lease_grant(*id, *ttl), model.grant(*id, *ttl)),
        Step::Revoke(id) => prop_assert_eq!(m.lease_revoke(*id), model.revoke(*id)),
        Step::Events(sel, key, end) => {
            let start = revision_from(*sel, cur);
            prop_assert_eq!(m.events(start, key, end), model.events(start, key, end));
        }
        Step::Snapshot => {
            let back = Mvcc::from_snapshot_bytes(&m.to_snapshot_bytes());
            prop_assert_eq!(back.as_ref(), Ok(&*m));
            *m = back.expect("checked above");
        }
    }
    Ok(())
}

fn all_keys_at(rev: i64) -> RangeRequest {
    RangeRequest {
        revision: rev,
        ..RangeRequest::between("\0", "\0")
    }
}

/// State that must match after every step, plus internal invariants of the core.
fn check_now(m: &Mvcc, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(m.current_revision(), model.current());
    prop_assert_eq!(m.compact_revision(), model.compact);
    prop_assert_eq!(m.range(&all_keys_at(0)), model.range(&all_keys_at(0)));
    let leases: Vec<(i64, i64)> = model.leases.iter().map(|(&i, &t)| (i, t)).collect();
    prop_assert_eq!(m.leases(), leases);
    for &id in model.leases.keys() {
        prop_assert_eq!(m.lease_keys(id), Ok(model.lease_keys(id)));
    }
    // Compaction really freed history: at most one (live) write at or before it per key.
    for history in m.index.values() {
        let old = history
            .entries()
            .iter()
            .filter(|e| e.rev.main <= m.compact_rev);
        let old: Vec<_> = old.collect();
        prop_assert!(old.len() <= 1);
        prop_assert!(old
            .iter()
            .all(|e| matches!(e.state, history::State::Live(_))));
    }
    prop_assert!(m
        .log
        .keys()
        .all(|&r| r >= m.compact_rev && r <= m.current_rev));
    Ok(())
}

/// Every retained revision reads the same, replay from the compaction point matches, and
/// the model's events are exactly the diff between consecutive snapshots.
fn check_history(m: &Mvcc, model: &Model) -> Result<(), TestCaseError> {
    let first = m.compact_revision().max(1);
    for rev in first..=m.current_revision() {
        prop_assert_eq!(m.range(&all_keys_at(rev)), model.range(&all_keys_at(rev)));
    }
    let start = m.compact_revision() + 1;
    prop_assert_eq!(
        m.events(start, b"\0", b"\0"),
        model.events(start, b"\0", b"\0")
    );
    for rev in 2..=model.current() {
        let mut snap = model.snap(rev - 1).clone();
        for e in &model.events[(rev - 1) as usize] {
            prop_assert_eq!(e.kv.mod_revision, rev);
            // etcd's watch rule: prev_kv is the key at rev - 1, and none for a create.
            let create = e.kind == EventKind::Put && e.kv.version == 1;
            let prev = model.snap(rev - 1).get(&e.kv.key).filter(|_| !create);
            prop_assert_eq!(e.prev_kv.as_ref(), prev);
            match e.kind {
                EventKind::Put => snap.insert(e.kv.key.clone(), e.kv.clone()),
                EventKind::Delete => snap.remove(&e.kv.key),
            };
        }
        prop_assert_eq!(&snap, model.snap(rev));
    }
    let back = Mvcc::from_snapshot_bytes(&m.to_snapshot_bytes()).expect("round trip");
    for rev in first..=m.current_revision() {
        prop_assert_eq!(back.range(&all_keys_at(rev)), m.range(&all_keys_at(rev)));
    }
    prop_assert_eq!(back.hash(), m.hash());
    Ok(())
}

fn config() -> ProptestConfig {
    // ProptestConfig::default() reads PROPTEST_CASES, for longer soak runs.
    let default = ProptestConfig::default();
    let soak = std::env::var_os("PROPTEST_CASES").is_some();
    ProptestConfig {
        cases: if soak { default.cases } else { CASES },
        // Keep the shared source tree clean: no regression files next to this module.
        failure_persistence: None,
        ..default
    }
}

fn with_header(body: &[u8]) -> Vec<u8> {
    let mut out = b"RKMVCCSN".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Uses a decoded state the way a server would; none of it may panic.
fn exercise(m: &mut Mvcc) {
    let (compact, current) = (m.compact_revision(), m.current_revision());
    for rev in compact.max(1)..=current.min(compact.max(1) + 8) {
        let _ = m.range(&all_keys_at(rev));
    }
    let _ = m.events(compact + 1, b"\0", b"\0");
    let _ = m.put(&PutRequest::new("a", "x"));
    let _ = m.put(&PutRequest {
        ignore_value: true,
        ..PutRequest::new("b", "")
    });
    let _ = m.delete_range(&DeleteRangeRequest::between("\0", "\0"));
    let leases = m.leases();
    if let Some(&(id, _)) = leases.first() {
        let _ = m.lease_revoke(id);
    }
    let _ = m.compact(m.current_revision());
    let again = Mvcc::from_snapshot_bytes(&m.to_snapshot_bytes());
    assert_eq!(again.as_ref(), Ok(&*m));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn agrees_with_the_reference_model(steps in vec(step(), 1..MAX_STEPS)) {
        let mut m = Mvcc::new();
        let mut model = Model::new();
        // Two leases up front so lease-attached keys are common; lease 3 starts missing.
        let grants = [Step::Grant(1, 10), Step::Grant(2, 10)];
        for step in grants.iter().chain(&steps) {
            apply_step(&mut m, &mut model, step)?;
            check_now(&m, &model)?;
        }
        check_history(&m, &model)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in vec(any::<u8>(), 0..256)) {
        let _ = Mvcc::from_snapshot_bytes(&bytes);
        if let Ok(mut m) = Mvcc::from_snapshot_bytes(&with_header(&bytes)) {
            exercise(&mut m);
        }
    }

    #[test]
    fn corrupted_snapshot_bodies_never_panic(
        steps in vec(step(), 0..20),
        edits in vec((any::<Index>(), any::<u8>()), 1..4),
        cut in any::<Index>(),
        truncate in prop::bool::weighted(0.2),
    ) {
        let mut m = Mvcc::new();
        let mut model = Model::new();
        for step in &steps {
            let _ = apply_step(&mut m, &mut model, step);
        }
        let mut body = m.to_snapshot_bytes()[HEADER_BYTES..].to_vec();
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        if truncate {
            body.truncate(cut.index(body.len() + 1));
        }
        if let Ok(mut decoded) = Mvcc::from_snapshot_bytes(&with_header(&body)) {
            exercise(&mut decoded);
        }
    }
}
