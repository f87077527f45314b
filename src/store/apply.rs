//! Applying committed log entries to the member's state: the MVCC store, the lease table,
//! the member list and alarms. Every member applies the same entries in the same order and
//! so reaches the same state; the proposer also gets the result back for its client.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;

use super::convert;
use super::error::StoreError;
use super::lessor::Lessor;
use super::mvcc::{self as m, Mvcc};
use super::pb::etcdserverpb as pb;
use super::pb::rkubepeerpb::{
    internal_request::Request, InternalRequest, MemberAttributes, StateSnapshot,
};
use super::watch::WatchHub;

/// Everything a member applies entries to, behind one lock.
#[derive(Default)]
pub struct StoreState {
    pub mvcc: Mvcc,
    pub watch: WatchHub,
    pub applied_index: u64,
    pub members: BTreeMap<u64, MemberAttributes>,
    /// Active alarms: (member id, alarm type).
    pub alarms: BTreeSet<(u64, i32)>,
}

/// What applying one request produced, for the member that proposed it.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// Header after the apply (revision = store revision then).
    pub header: pb::ResponseHeader,
    pub result: Result<Applied, StoreError>,
}

/// The successful result of each request kind (headers are filled by the caller).
#[derive(Debug, Clone)]
pub enum Applied {
    Put(pb::PutResponse),
    DeleteRange(pb::DeleteRangeResponse),
    Txn(pb::TxnResponse),
    Compacted,
    LeaseGranted { id: i64, ttl: i64 },
    LeaseRevoked,
    MemberPublished,
    Alarms(Vec<pb::AlarmMember>),
}

/// Applies one decoded entry. Never panics on a bad request: the error goes to the client.
pub fn apply(
    st: &mut StoreState,
    req: &InternalRequest,
    header: &pb::ResponseHeader,
    lessor: &mut Lessor,
    now_ms: u64,
    min_ttl_secs: i64,
) -> ApplyOutcome {
    let before = st.mvcc.current_revision();
    let result = match &req.request {
        Some(Request::Put(p)) => apply_put(st, p),
        Some(Request::DeleteRange(d)) => apply_delete(st, d),
        Some(Request::Txn(t)) => apply_txn(st, t),
        Some(Request::Compaction(c)) => st
            .mvcc
            .compact(c.revision)
            .map(|_| Applied::Compacted)
            .map_err(StoreError::from),
        Some(Request::LeaseGrant(g)) => apply_lease_grant(st, g, lessor, now_ms, min_ttl_secs),
        Some(Request::LeaseRevoke(r)) => apply_lease_revoke(st, r.id, lessor),
        Some(Request::Member(a)) => {
            st.members.insert(a.id, a.clone());
            Ok(Applied::MemberPublished)
        }
        Some(Request::Alarm(a)) => Ok(apply_alarm(st, a)),
        None => Err(StoreError::Internal("empty request".into())),
    };
    let after = st.mvcc.current_revision();
    assert!(
        after >= before,
        "revision went backwards: {before} -> {after}"
    );
    let mut header = *header;
    header.revision = after;
    let result = result.map(|a| with_header(a, &header));
    ApplyOutcome { header, result }
}

fn with_header(a: Applied, h: &pb::ResponseHeader) -> Applied {
    match a {
        Applied::Put(mut r) => {
            r.header = Some(*h);
            Applied::Put(r)
        }
        Applied::DeleteRange(mut r) => {
            r.header = Some(*h);
            Applied::DeleteRange(r)
        }
        Applied::Txn(t) => Applied::Txn(refill_txn_headers(t, h)),
        other => other,
    }
}

fn refill_txn_headers(mut t: pb::TxnResponse, h: &pb::ResponseHeader) -> pb::TxnResponse {
    use pb::response_op::Response as R;
    t.header = Some(*h);
    for r in &mut t.responses {
        match &mut r.response {
            Some(R::ResponseRange(x)) => x.header = Some(*h),
            Some(R::ResponsePut(x)) => x.header = Some(*h),
            Some(R::ResponseDeleteRange(x)) => x.header = Some(*h),
            Some(R::ResponseTxn(x)) => *x = refill_txn_headers(std::mem::take(x), h),
            None => {}
        }
    }
    t
}

fn publish(st: &mut StoreState, events: &[m::Event]) {
    if events.is_empty() {
        return;
    }
    let rev = st.mvcc.current_revision();
    let header = pb::ResponseHeader {
        revision: rev,
        ..Default::default()
    };
    st.watch.publish(rev, events, &header);
}

fn apply_put(st: &mut StoreState, p: &pb::PutRequest) -> Result<Applied, StoreError> {
    let req = convert::put_from_pb(p).map_err(|e| StoreError::Internal(e.to_string()))?;
    let (resp, events) = st.mvcc.put(&req)?;
    publish(st, &events);
    Ok(Applied::Put(convert::put_to_pb(&resp, &Default::default())))
}

fn apply_delete(st: &mut StoreState, d: &pb::DeleteRangeRequest) -> Result<Applied, StoreError> {
    let req = convert::delete_from_pb(d).map_err(|e| StoreError::Internal(e.to_string()))?;
    let (resp, events) = st.mvcc.delete_range(&req)?;
    publish(st, &events);
    Ok(Applied::DeleteRange(convert::delete_to_pb(
        &resp,
        &Default::default(),
    )))
}

fn apply_txn(st: &mut StoreState, t: &pb::TxnRequest) -> Result<Applied, StoreError> {
    let req = convert::txn_from_pb(t).map_err(|e| StoreError::Internal(e.to_string()))?;
    let (resp, events) = st.mvcc.txn(&req)?;
    publish(st, &events);
    Ok(Applied::Txn(convert::txn_to_pb(&resp, &Default::default())))
}

fn apply_lease_grant(
    st: &mut StoreState,
    g: &pb::LeaseGrantRequest,
    lessor: &mut Lessor,
    now_ms: u64,
    min_ttl_secs: i64,
) -> Result<Applied, StoreError> {
    let ttl = g.ttl.max(min_ttl_secs);
    st.mvcc.lease_grant(g.id, ttl)?;
    lessor.grant(g.id, ttl, now_ms, min_ttl_secs);
    Ok(Applied::LeaseGranted { id: g.id, ttl })
}

fn apply_lease_revoke(
    st: &mut StoreState,
    id: i64,
    lessor: &mut Lessor,
) -> Result<Applied, StoreError> {
    let events = st.mvcc.lease_revoke(id)?;
    lessor.remove(id);
    publish(st, &events);
    Ok(Applied::LeaseRevoked)
}

fn apply_alarm(st: &mut StoreState, a: &pb::AlarmRequest) -> Applied {
    use pb::alarm_request::AlarmAction;
    match AlarmAction::try_from(a.action).unwrap_or(AlarmAction::Get) {
        AlarmAction::Get => {}
        AlarmAction::Activate => {
            if a.alarm != pb::AlarmType::None as i32 {
                st.alarms.insert((a.member_id, a.alarm));
            }
        }
        AlarmAction::Deactivate => {
            st.alarms.remove(&(a.member_id, a.alarm));
        }
    }
    Applied::Alarms(alarm_list(st))
}

/// Active alarms in (member, type) order.
pub fn alarm_list(st: &StoreState) -> Vec<pb::AlarmMember> {
    st.alarms
        .iter()
        .map(|&(member_id, alarm)| pb::AlarmMember { member_id, alarm })
        .collect()
}

/// Encodes the replicated state (not watchers) for a raft snapshot or a backup.
pub fn encode_state(st: &StoreState) -> Vec<u8> {
    StateSnapshot {
        applied_index: st.applied_index,
        members: st.members.values().cloned().collect(),
        alarms: alarm_list(st),
        mvcc: st.mvcc.to_snapshot_bytes(),
    }
    .encode_to_vec()
}

/// Replaces the replicated state from [`encode_state`]'s bytes; watchers are kept.
pub fn restore_state(st: &mut StoreState, bytes: &[u8]) -> Result<(), String> {
    let snap = StateSnapshot::decode(bytes).map_err(|e| format!("state snapshot: {e}"))?;
    let mvcc = Mvcc::from_snapshot_bytes(&snap.mvcc).map_err(|e| e.to_string())?;
    st.mvcc = mvcc;
    st.applied_index = snap.applied_index;
    st.members = snap.members.into_iter().map(|m| (m.id, m)).collect();
    st.alarms = snap.alarms.iter().map(|a| (a.member_id, a.alarm)).collect();
    Ok(())
}
