//! Fuzzes the etcd request path of the store: arbitrary bytes become a sequence of
//! prost-decoded etcd messages, each converted with `convert::*_from_pb` and applied to one
//! `Mvcc`, and in parallel through `apply::apply` to a `StoreState` with a watcher.
//!
//! Input (`rkube_fuzz::decode_requests`): repeated `[tag][len][len bytes]`; `tag % 10` picks
//! the message (Put, DeleteRange, Txn, Range, Compaction, LeaseGrant, LeaseRevoke,
//! MemberAttributes, AlarmRequest, or a snapshot round trip that ignores its bytes), and the
//! chunk is decoded with `prost::Message::decode` (chunks that do not decode are skipped).
//! `.ci/fuzz` seeds the corpus with the requests of the `mvcc_ops` corpus in this format.
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
use rkube_fuzz::{decode_requests, Harness};

/// Most requests run per input, so one input cannot take seconds.
const MAX_OPS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new();
    for op in decode_requests(data, MAX_OPS) {
        h.run(&op);
    }
    h.finish();
});
