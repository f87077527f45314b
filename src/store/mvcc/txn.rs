//! The write path: validating a txn the way etcd does, choosing its branches, and applying it
//! as one revision.
//!
//! Validation runs in etcd's order, entirely before the first write, so a rejected request
//! leaves the store untouched: request shape (`v3rpc.checkTxnRequest`), duplicate keys
//! (`v3rpc.checkIntervals`), branch choice on the pre-txn state (`compareToPath`), then puts
//! (`checkRequestPut`) and read revisions (`checkRequestRange`) on the chosen path. After
//! that, applying cannot fail (where etcd's own apply can panic, we reject up front; see
//! `check_puts`).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::history::{live_kv, Entry, Live, Revision, State};
use super::range::{self, LiveRef};
use super::{event_for, key_in_range, sub_index, Mvcc, NO_LEASE};
use super::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, Event,
    MvccError, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseOp,
    TxnRequest, TxnResponse,
};

/// A write met while checking a txn's path, in execution order.
enum Effect<'r> {
    Put(&'r [u8]),
    Delete { key: &'r [u8], range_end: &'r [u8] },
}

/// The branch each txn level takes, fixed before anything is applied; `nested` follows the
/// txn ops of the taken branch, in order.
struct Branch {
    succeeded: bool,
    nested: Vec<Branch>,
}

impl Mvcc {
    /// Runs a txn (etcd `Txn`): all compares hold ⇒ `success`, else `failure`. Every write
    /// gets the same new revision; returns the watch events in write order.
    pub fn txn(&mut self, req: &TxnRequest) -> Result<(TxnResponse, Vec<Event>), MvccError> {
        check_txn_shape(req)?;
        check_intervals(&req.success)?;
        check_intervals(&req.failure)?;
        let branch = self.branch(req);
        if txn_writes(req) {
            self.check_puts(req, &branch, &mut Vec::new())?;
        }
        self.check_ranges(req, &branch)?;
        let mut w = WriteTxn::begin(self);
        let resp = w.apply_txn(req, &branch);
        Ok((resp, w.commit()))
    }

    /// Writes one key (etcd `Put`) as a txn of its own.
    pub fn put(&mut self, req: &PutRequest) -> Result<(PutResponse, Vec<Event>), MvccError> {
        check_put_shape(req)?;
        // etcd's applier checks the lease before the key for a plain put (a txn does the
        // reverse); only the error reported when both fail differs.
        self.check_lease(req.lease)?;
        self.check_put_key(req)?;
        let mut w = WriteTxn::begin(self);
        let resp = w.put(req);
        Ok((resp, w.commit()))
    }

    /// Deletes a key or range (etcd `DeleteRange`) as a txn of its own; deleting nothing
    /// does not bump the revision.
    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<(DeleteRangeResponse, Vec<Event>), MvccError> {
        if req.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let mut w = WriteTxn::begin(self);
        let resp = w.delete_range(req);
        Ok((resp, w.commit()))
    }

    /// Revokes lease `id`, deleting every key attached to it in one revision, in key order
    /// (etcd's lessor sorts them so replicas agree).
    pub fn lease_revoke(&mut self, id: i64) -> Result<Vec<Event>, MvccError> {
        let lease = self.leases.get(&id).ok_or(MvccError::LeaseNotFound)?;
        let keys: Vec<Vec<u8>> = lease.keys.iter().cloned().collect();
        let mut w = WriteTxn::begin(self);
        for key in &keys {
            w.tombstone(key);
        }
        let events = w.commit();
        let removed = self.leases.remove(&id);
        debug_assert!(removed.is_some_and(|l| l.keys.is_empty()));
        Ok(events)
    }

    /// etcd `compareToPath`: every level's compares see the state before the outer txn.
    fn branch(&self, req: &TxnRequest) -> Branch {
        let succeeded = req.compare.iter().all(|c| self.compare_holds(c));
        let nested = taken(req, succeeded)
            .iter()
            .filter_map(|op| match op {
                RequestOp::Txn(t) => Some(self.branch(t)),
                _ => None,
            })
            .collect();
        Branch { succeeded, nested }
    }

    /// etcd `checkRequestPut` over the taken path, depth first in execution order.
    ///
    /// etcd checks `ignore_*` against the state before the txn; we check it against the state
    /// the put will see. The two differ only when a from-key delete earlier in the txn removed
    /// the key (etcd's duplicate check lets that through, then panics applying the put), so
    /// there we answer `KeyNotFound` instead of crashing.
    fn check_puts<'r>(
        &self,
        req: &'r TxnRequest,
        branch: &Branch,
        effects: &mut Vec<Effect<'r>>,
    ) -> Result<(), MvccError> {
        let mut nested = branch.nested.iter();
        for op in taken(req, branch.succeeded) {
            match op {
                RequestOp::Put(p) => {
                    if (p.ignore_value || p.ignore_lease) && !self.exists_after(effects, &p.key) {
                        return Err(MvccError::KeyNotFound);
                    }
                    self.check_lease(p.lease)?;
                    effects.push(Effect::Put(&p.key));
                }
                RequestOp::DeleteRange(d) => effects.push(Effect::Delete {
                    key: &d.key,
                    range_end: &d.range_end,
                }),
                RequestOp::Txn(t) => self.check_puts(t, next_branch(&mut nested), effects)?,
                RequestOp::Range(_) => {}
            }
        }
        Ok(())
    }

    /// etcd `checkRequestRange` over the taken path, depth first.
    fn check_ranges(&self, req: &TxnRequest, branch: &Branch) -> Result<(), MvccError> {
        let mut nested = branch.nested.iter();
        for op in taken(req, branch.succeeded) {
            match op {
                RequestOp::Range(r) => self.check_txn_range(r)?,
                RequestOp::Txn(t) => self.check_ranges(t, next_branch(&mut nested))?,
                RequestOp::Put(_) | RequestOp::DeleteRange(_) => {}
            }
        }
        Ok(())
    }

    /// Whether `key` exists after the txn's writes so far (`effects`, in order).
    fn exists_after(&self, effects: &[Effect<'_>], key: &[u8]) -> bool {
        for effect in effects.iter().rev() {
            match *effect {
                Effect::Put(k) if k == key => return true,
                Effect::Delete { key: k, range_end } if key_in_range(key, k, range_end) => {
                    return false
                }
                _ => {}
            }
        }
        self.exists(key)
    }

    fn exists(&self, key: &[u8]) -> bool {
        self.index
            .get(key)
            .is_some_and(|h| h.at(self.current_rev).is_some())
    }

    /// `ignore_value` / `ignore_lease` on a plain put need the key to exist.
    fn check_put_key(&self, req: &PutRequest) -> Result<(), MvccError> {
        if (req.ignore_value || req.ignore_lease) && !self.exists(&req.key) {
            return Err(MvccError::KeyNotFound);
        }
        Ok(())
    }

    fn check_lease(&self, lease: i64) -> Result<(), MvccError> {
        if lease != NO_LEASE && !self.leases.contains_key(&lease) {
            return Err(MvccError::LeaseNotFound);
        }
        Ok(())
    }

    /// etcd `checkRequestRange`: a read inside a txn may not name the txn's own revision.
    /// etcd's first retained revision is -1 until the first compaction, so a negative
    /// revision reads "now" until then and is `Compacted` afterwards.
    fn check_txn_range(&self, req: &RangeRequest) -> Result<(), MvccError> {
        let first_rev = if self.compact_rev == 0 {
            -1
        } else {
            self.compact_rev
        };
        match req.revision {
            0 => Ok(()),
            r if r > self.current_rev => Err(MvccError::FutureRevision),
            r if r < first_rev => Err(MvccError::Compacted),
            _ => Ok(()),
        }
    }

    /// etcd `applyCompare`: holds if it holds for every key in the range; with no key, the
    /// fields compare as zero, except that a VALUE compare always fails (gRPC cannot tell a
    /// missing value from an empty one).
    fn compare_holds(&self, c: &Compare) -> bool {
        let mut any = false;
        for r in range::live_in_range(&self.index, &c.key, &c.range_end, self.current_rev) {
            any = true;
            if !result_holds(c.result, field_ordering(&c.target, Some(&r))) {
                return false;
            }
        }
        any || (!matches!(c.target, CompareTarget::Value(_))
            && result_holds(c.result, field_ordering(&c.target, None)))
    }
}

/// The key's field against the compare's operand; a missing key has all fields zero.
fn field_ordering(target: &CompareTarget, kv: Option<&LiveRef<'_>>) -> Ordering {
    let live = kv.map(|r| r.live);
    let int = |f: fn(&Live) -> i64| live.map_or(0, f);
    match target {
        CompareTarget::Version(v) => int(|l| l.version).cmp(v),
        CompareTarget::Create(v) => int(|l| l.create_revision).cmp(v),
        CompareTarget::Mod(v) => kv.map_or(0, |r| r.rev.main).cmp(v),
        CompareTarget::Lease(v) => int(|l| l.lease).cmp(v),
        CompareTarget::Value(v) => live.map_or(&[][..], |l| &l.value[..]).cmp(&v[..]),
    }
}

fn result_holds(result: CompareResult, ord: Ordering) -> bool {
    match result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}

fn taken(req: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &req.success
    } else {
        &req.failure
    }
}

fn next_branch<'b>(nested: &mut std::slice::Iter<'b, Branch>) -> &'b Branch {
    nested
        .next()
        .expect("branch tree is built from the same request")
}

/// Whether any op at any depth writes (etcd `isTxnReadonly`, negated).
fn txn_writes(req: &TxnRequest) -> bool {
    req.success.iter().chain(&req.failure).any(|op| match op {
        RequestOp::Range(_) => false,
        RequestOp::Put(_) | RequestOp::DeleteRange(_) => true,
        RequestOp::Txn(t) => txn_writes(t),
    })
}

/// etcd `checkTxnRequest` / `checkRequestOp`, over both branches at every depth.
fn check_txn_shape(req: &TxnRequest) -> Result<(), MvccError> {
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(MvccError::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            RequestOp::Range(r) if r.key.is_empty() => return Err(MvccError::EmptyKey),
            RequestOp::DeleteRange(d) if d.key.is_empty() => return Err(MvccError::EmptyKey),
            RequestOp::Put(p) => check_put_shape(p)?,
            RequestOp::Txn(t) => check_txn_shape(t)?,
            _ => {}
        }
    }
    Ok(())
}

/// etcd `checkPutRequest`.
fn check_put_shape(req: &PutRequest) -> Result<(), MvccError> {
    if req.key.is_empty() {
        return Err(MvccError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(MvccError::ValueProvided);
    }
    if req.ignore_lease && req.lease != NO_LEASE {
        return Err(MvccError::LeaseProvided);
    }
    Ok(())
}

/// A delete's extent as etcd's duplicate check sees it: a point when `end` is empty, else the
/// literal interval `[key, end)`. etcd builds these with `adt.NewStringAffineInterval`, which
/// gives `"\0"` no special meaning, so a from-key delete (`end == "\0"`) overlaps no put
/// there; we keep that, so the same txns are accepted.
struct DelExtent<'a> {
    key: &'a [u8],
    end: &'a [u8],
}

impl DelExtent<'_> {
    fn contains(&self, k: &[u8]) -> bool {
        if self.end.is_empty() {
            k == self.key
        } else {
            self.key <= k && k < self.end
        }
    }
}

type PutsAndDels<'a> = (BTreeSet<&'a [u8]>, Vec<DelExtent<'a>>);

/// etcd `checkIntervals`: rejects a put of a key already put, or inside a delete, on any path
/// through `ops`. The `then` and `else` of a nested txn are exclusive, so they may put the
/// same key. Like etcd, an earlier nested txn's puts are not checked against a later nested
/// txn's deletes.
fn check_intervals(ops: &[RequestOp]) -> Result<PutsAndDels<'_>, MvccError> {
    let mut dels: Vec<DelExtent<'_>> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(DelExtent {
                key: &d.key,
                end: &d.range_end,
            }),
            _ => None,
        })
        .collect();
    let in_dels = |dels: &[DelExtent<'_>], k: &[u8]| dels.iter().any(|d| d.contains(k));
    let mut puts: BTreeSet<&[u8]> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for &k in &puts_then {
            if puts.contains(k) || in_dels(&dels, k) {
                return Err(MvccError::DuplicateKey);
            }
            puts.insert(k);
        }
        for &k in &puts_else {
            if puts.contains(k) && !puts_then.contains(k) || in_dels(&dels, k) {
                return Err(MvccError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if !puts.insert(&p.key) || in_dels(&dels, &p.key) {
            return Err(MvccError::DuplicateKey);
        }
    }
    Ok((puts, dels))
}

/// A txn being applied: every write goes straight into the store at `rev`, and reads at
/// "now" read at `rev`, so later ops see earlier ones. Validation already passed, so
/// nothing here can fail; `commit` makes `rev` current if anything was written.
struct WriteTxn<'s> {
    store: &'s mut Mvcc,
    rev: i64,
    events: Vec<Event>,
}

impl<'s> WriteTxn<'s> {
    fn begin(store: &'s mut Mvcc) -> Self {
        let rev = store
            .current_rev
            .checked_add(1)
            .expect("revision space exhausted");
        Self {
            store,
            rev,
            events: Vec::new(),
        }
    }

    fn commit(self) -> Vec<Event> {
        if !self.events.is_empty() {
            assert_eq!(
                self.rev,
                self.store.current_rev + 1,
                "revision bumps by one"
            );
            self.store.current_rev = self.rev;
        }
        debug_assert_eq!(
            self.store.log.get(&self.rev).map_or(0, Vec::len),
            self.events.len(),
            "change log matches the txn's writes"
        );
        self.events
    }

    fn apply_txn(&mut self, req: &TxnRequest, branch: &Branch) -> TxnResponse {
        let mut nested = branch.nested.iter();
        let mut responses = Vec::new();
        for op in taken(req, branch.succeeded) {
            responses.push(match op {
                RequestOp::Range(r) => ResponseOp::Range(self.range(r)),
                RequestOp::Put(p) => ResponseOp::Put(self.put(p)),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete_range(d)),
                RequestOp::Txn(t) => ResponseOp::Txn(self.apply_txn(t, next_branch(&mut nested))),
            });
        }
        TxnResponse {
            succeeded: branch.succeeded,
            responses,
        }
    }

    fn range(&self, req: &RangeRequest) -> RangeResponse {
        let rev = if req.revision <= 0 {
            self.rev
        } else {
            req.revision
        };
        range::range_at(&self.store.index, req, rev)
    }

    fn put(&mut self, req: &PutRequest) -> PutResponse {
        let rev = self.rev;
        let key = &req.key[..];
        let prev = self.store.index.get(key).and_then(|h| h.at(rev));
        debug_assert!(prev.is_some() || !(req.ignore_value || req.ignore_lease));
        let (create_revision, version, old_lease) = match prev {
            Some((_, l)) => (l.create_revision, l.version + 1, l.lease),
            None => (rev, 1, NO_LEASE),
        };
        let value = match prev {
            Some((_, l)) if req.ignore_value => l.value.clone(),
            _ => req.value.clone(),
        };
        let lease = if req.ignore_lease {
            old_lease
        } else {
            req.lease
        };
        let prev_kv = match prev {
            Some((r, l)) if req.prev_kv => Some(live_kv(key, r.main, l)),
            _ => None,
        };
        self.detach(key, old_lease);
        self.attach(key, lease);
        let live = Live {
            value,
            create_revision,
            version,
            lease,
        };
        self.write(key, State::Live(live));
        PutResponse { prev_kv }
    }

    fn delete_range(&mut self, req: &DeleteRangeRequest) -> DeleteRangeResponse {
        let live: Vec<LiveRef<'_>> =
            range::live_in_range(&self.store.index, &req.key, &req.range_end, self.rev).collect();
        let prev_kvs = if req.prev_kv {
            live.iter()
                .map(|r| live_kv(r.key, r.rev.main, r.live))
                .collect()
        } else {
            Vec::new()
        };
        let keys: Vec<Vec<u8>> = live.iter().map(|r| r.key.to_vec()).collect();
        for key in &keys {
            self.tombstone(key);
        }
        DeleteRangeResponse {
            deleted: i64::try_from(keys.len()).unwrap_or(i64::MAX),
            prev_kvs,
        }
    }

    /// Deletes a key that exists at `rev`, detaching it from its lease.
    fn tombstone(&mut self, key: &[u8]) {
        let lease = self.store.index.get(key).and_then(|h| h.at(self.rev));
        debug_assert!(lease.is_some(), "only live keys are deleted");
        let lease = lease.map_or(NO_LEASE, |(_, l)| l.lease);
        self.detach(key, lease);
        self.write(key, State::Tombstone);
    }

    fn detach(&mut self, key: &[u8], lease: i64) {
        if lease == NO_LEASE {
            return;
        }
        // Invariant: a live key's lease exists (revoke deletes its keys first).
        let found = self
            .store
            .leases
            .get_mut(&lease)
            .is_some_and(|l| l.keys.remove(key));
        debug_assert!(found, "live key attached to a missing lease");
    }

    fn attach(&mut self, key: &[u8], lease: i64) {
        if lease == NO_LEASE {
            return;
        }
        let found = self.store.leases.get_mut(&lease).map(|l| {
            l.keys.insert(key.to_vec());
        });
        debug_assert!(found.is_some(), "put validated its lease");
    }

    /// Records one write at (`rev`, next sub): key history, change log and watch event.
    fn write(&mut self, key: &[u8], state: State) {
        let rev = Revision {
            main: self.rev,
            sub: sub_index(self.events.len()),
        };
        if !self.store.index.contains_key(key) {
            self.store.index.insert(key.to_vec(), Default::default());
        }
        let history = self
            .store
            .index
            .get_mut(key)
            .expect("history was just ensured");
        history.push(Entry { rev, state });
        let entry = history.entries().last().expect("history was just pushed");
        let event = event_for(key, history, entry);
        let log = self.store.log.entry(self.rev).or_default();
        debug_assert_eq!(log.len(), self.events.len(), "log position = sub");
        log.push(key.to_vec());
        self.events.push(event);
    }
}
