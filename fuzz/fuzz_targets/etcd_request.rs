//! Fuzzes the etcd request path of the store: arbitrary bytes become a sequence of
//! prost-decoded etcd messages, each converted with `convert::*_from_pb` and applied to one
//! `Mvcc`, and in parallel through `apply::apply` to a `StoreState` with a watcher.
//!
//! Input: repeated `[tag][len][len bytes]`; `tag % 10` picks the message (Put, DeleteRange,
//! Txn, Range, Compaction, LeaseGrant, LeaseRevoke, MemberAttributes, AlarmRequest, or a
//! snapshot round trip that ignores its bytes), and the chunk is decoded with
//! `prost::Message::decode` (chunks that do not decode are skipped).
//!
//! Checks, after every request (see `rkube_fuzz::Harness`): nothing panics; the revision never
//! decreases, and a write bumps it by exactly one iff it wrote something; a failed request
//! leaves the store unchanged; a full range (`key = range_end = "\0"`) at the current revision
//! succeeds, and every live key's lease lists it (and back); reads past the current or before
//! the compacted revision fail as etcd's do; ranges agree with the full range; the direct and
//! the `apply` path agree on success and reach equal states; watch replay and the watcher see
//! exactly the write's events. At the end, the state survives a snapshot and backup round
//! trip unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use rkube::store::pb::etcdserverpb as pb;
use rkube::store::pb::rkubepeerpb::MemberAttributes;
use rkube_fuzz::{Harness, PbOp};

/// Most requests run per input, so one input cannot take seconds.
const MAX_OPS: usize = 256;

fn decode(tag: u8, chunk: &[u8]) -> Option<PbOp> {
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

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new();
    let mut rest = data;
    for _ in 0..MAX_OPS {
        let [tag, len, tail @ ..] = rest else { break };
        let (chunk, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        if let Some(op) = decode(*tag, chunk) {
            h.run(&op);
        }
    }
    h.finish();
});
