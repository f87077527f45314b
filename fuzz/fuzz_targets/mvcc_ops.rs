//! Fuzzes the MVCC core with structured etcd requests: `arbitrary` builds puts, deletes,
//! ranges, (nested) txns with compares, compactions, lease grants and revokes, member and
//! alarm updates and snapshot round trips over a small key space (8 keys, including the empty
//! and `\xff` keys, a few lease ids, revisions relative to the current and compacted ones), so
//! requests collide on the same keys and leases far more often than raw protobuf bytes do.
//! Each request is built as the etcd protobuf message and goes through `convert` and
//! `rkube_fuzz::Harness` exactly as in `etcd_request`.
//!
//! Checks: the same as `etcd_request` (no panic; monotonic revision; failed requests change
//! nothing; full range at the current revision succeeds; lease/key consistency; ranges agree
//! with the full range; direct and `apply` paths agree; watch replay and the watcher see the
//! write's events; snapshot and backup round trips are lossless).

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

/// Most steps per input, so one input cannot take seconds.
const MAX_OPS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    rkube_fuzz::run_ops(&mut u, MAX_OPS).finish();
});
