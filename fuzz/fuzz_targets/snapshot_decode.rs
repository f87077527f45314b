//! Fuzzes the decoders of whole-store state: `Mvcc::from_snapshot_bytes` (Raft snapshots and
//! the driver's snapshot file), `backup::decode_backup` (backup files) and
//! `apply::restore_state` on a default `StoreState` (the `StateSnapshot` protobuf around them).
//!
//! Three views of each input, all fed to every decoder:
//! - the raw bytes;
//! - by the first byte, either the rest as a snapshot *body* under a valid header (magic,
//!   format, length, CRC; also wrapped as `StateSnapshot` and as a backup), so the body decoder
//!   is reached without the fuzzer having to learn the CRC,
//! - or a *real* snapshot: a store built by structured requests (`rkube_fuzz::run_ops`), its
//!   `to_snapshot_bytes`, then a few drawn mutations of the body (byte flips, integer fields
//!   set to boundary values, insertions, deletions) with the header fixed up again,
//! - or the rest as the fields of a backup envelope (after the magic), padded and sealed with
//!   a correct SHA-256, so `decode_backup`'s version, length and CRC checks are reached.
//!
//! Checks: nothing panics. Whatever decodes is canonical and lossless: re-encoding with
//! `to_snapshot_bytes` gives back the input bytes, decoding that again gives an equal store
//! (`==`, `hash()`, and a full range at the current and the compacted revision). A decoded
//! store is one the store could have reached itself: it passes the harness invariants, and
//! revoking every lease, deleting and re-putting every key, compacting and snapshotting it
//! again run through the harness without a panic or a broken invariant. A decoded
//! `StateSnapshot` re-encodes to the same state. An unmutated real snapshot decodes to the
//! store it came from.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use rkube::store::apply::{self, StoreState};
use rkube::store::backup;
use rkube::store::mvcc::{self as m, Mvcc};
use rkube::store::pb::etcdserverpb as pb;
use rkube::store::pb::rkubepeerpb::StateSnapshot;
use rkube_fuzz::{Harness, PbOp, ALL};

const MAGIC: &[u8; 8] = b"RKMVCCSN";
const FORMAT: u32 = 1;
/// Magic, format, body length, CRC.
const HEADER_BYTES: usize = 8 + 4 + 8 + 4;

/// A snapshot with a correct header around `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn full_range(s: &Mvcc, revision: i64) -> m::RangeResponse {
    s.range(&m::RangeRequest {
        revision,
        ..m::RangeRequest::between(ALL, ALL)
    })
    .unwrap_or_else(|e| panic!("full range at {revision} of a decoded store: {e}"))
}

/// Everything that must hold of a store that `from_snapshot_bytes(input)` returned.
fn check_decoded(s: &Mvcc, input: &[u8]) {
    let bytes = s.to_snapshot_bytes();
    assert_eq!(bytes, input, "a decoded snapshot re-encodes differently");
    let again = Mvcc::from_snapshot_bytes(&bytes).expect("re-encoded snapshot decodes");
    assert!(again == *s, "snapshot round trip changed the store");
    assert_eq!(again.hash(), s.hash());
    assert_eq!(full_range(&again, 0), full_range(s, 0));
    if s.compact_revision() > 0 {
        let c = s.compact_revision();
        assert_eq!(full_range(&again, c), full_range(s, c));
    }
    exercise(s.clone());
}

/// Runs requests that touch every key and lease of `s` through the harness.
fn exercise(s: Mvcc) {
    let keys: Vec<Vec<u8>> = full_range(&s, 0).kvs.into_iter().map(|kv| kv.key).collect();
    let leases = s.leases();
    let cur = s.current_revision();
    let mut h = Harness::with_store(s);
    h.run(&PbOp::Snapshot);
    h.run(&PbOp::Range(pb::RangeRequest {
        key: ALL.to_vec(),
        range_end: ALL.to_vec(),
        revision: h.mvcc().compact_revision(),
        ..Default::default()
    }));
    for key in &keys {
        h.run(&PbOp::Put(pb::PutRequest {
            key: key.clone(),
            ignore_value: true,
            ignore_lease: true,
            prev_kv: true,
            ..Default::default()
        }));
    }
    h.run(&PbOp::Compaction(pb::CompactionRequest {
        revision: cur,
        physical: false,
    }));
    for (id, _) in &leases {
        h.run(&PbOp::LeaseRevoke(pb::LeaseRevokeRequest { id: *id }));
    }
    h.run(&PbOp::DeleteRange(pb::DeleteRangeRequest {
        key: ALL.to_vec(),
        range_end: ALL.to_vec(),
        prev_kv: true,
    }));
    for key in &keys {
        h.run(&PbOp::Put(pb::PutRequest {
            key: key.clone(),
            value: b"v".to_vec(),
            ..Default::default()
        }));
    }
    let cur = h.mvcc().current_revision();
    h.run(&PbOp::Compaction(pb::CompactionRequest {
        revision: cur,
        physical: false,
    }));
    h.finish();
}

/// Feeds `bytes` to every decoder.
fn check_all(bytes: &[u8]) {
    if let Ok(s) = Mvcc::from_snapshot_bytes(bytes) {
        check_decoded(&s, bytes);
    }
    if let Ok(body) = backup::decode_backup(bytes) {
        let offset = body.as_ptr() as usize - bytes.as_ptr() as usize;
        assert!(offset + body.len() <= bytes.len());
        let again = backup::encode_backup(body);
        assert_eq!(backup::decode_backup(&again).ok(), Some(body));
        check_state(body);
    }
    check_state(bytes);
}

/// `restore_state` on `bytes`; whatever it accepts must round-trip through `encode_state`.
fn check_state(bytes: &[u8]) {
    let mut st = StoreState::default();
    let restored = apply::restore_state(&mut st, bytes);
    let decoded = StateSnapshot::decode(bytes)
        .ok()
        .map(|snap| Mvcc::from_snapshot_bytes(&snap.mvcc).is_ok());
    assert_eq!(restored.is_ok(), decoded == Some(true));
    if restored.is_err() {
        return;
    }
    let snap = StateSnapshot::decode(bytes).expect("decoded above");
    check_decoded(&st.mvcc, &snap.mvcc);
    let mut again = StoreState::default();
    apply::restore_state(&mut again, &apply::encode_state(&st)).expect("own state restores");
    assert!(again.mvcc == st.mvcc);
    assert_eq!(again.applied_index, st.applied_index);
    assert_eq!(again.members, st.members);
    assert_eq!(again.alarms, st.alarms);
}

/// A body under a valid header, also wrapped as a state snapshot and as a backup.
fn check_body(body: &[u8]) {
    let snap = frame(body);
    let direct = Mvcc::from_snapshot_bytes(&snap);
    if let Ok(s) = &direct {
        check_decoded(s, &snap);
    }
    let state = StateSnapshot {
        applied_index: 7,
        members: Vec::new(),
        alarms: vec![pb::AlarmMember {
            member_id: 1,
            alarm: 1,
        }],
        mvcc: snap,
    }
    .encode_to_vec();
    let b = backup::encode_backup(&state);
    let inner = backup::decode_backup(&b).expect("own backup decodes");
    assert_eq!(inner, &state[..]);
    let mut st = StoreState::default();
    let restored = apply::restore_state(&mut st, inner);
    assert_eq!(restored.is_ok(), direct.is_ok());
    if let Ok(s) = direct {
        assert!(st.mvcc == s);
        assert_eq!(st.applied_index, 7);
    }
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// XOR the byte at (position modulo body length).
    Flip(u32, u8),
    /// Overwrite 8 bytes at a position with a boundary value (revisions, counts, lengths).
    SetI64(u32, Boundary),
    Set32(u32, u32),
    Insert(u32, Vec<u8>),
    Delete(u32, u8),
    Truncate(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Boundary {
    Zero,
    One,
    MinusOne,
    Max,
    Min,
    /// The original value plus a small delta.
    Nudge(i8),
    Raw(i64),
}

fn mutate(body: &mut Vec<u8>, m: &Mutation) {
    if body.is_empty() {
        return;
    }
    let at = |p: u32, len: usize| p as usize % len;
    match m {
        Mutation::Flip(p, x) => {
            let i = at(*p, body.len());
            body[i] ^= (*x).max(1);
        }
        Mutation::SetI64(p, v) => {
            let i = at(*p, body.len());
            let mut cur = [0u8; 8];
            let n = (body.len() - i).min(8);
            cur[..n].copy_from_slice(&body[i..i + n]);
            let old = i64::from_le_bytes(cur);
            let new = match *v {
                Boundary::Zero => 0,
                Boundary::One => 1,
                Boundary::MinusOne => -1,
                Boundary::Max => i64::MAX,
                Boundary::Min => i64::MIN,
                Boundary::Nudge(d) => old.wrapping_add(i64::from(d)),
                Boundary::Raw(r) => r,
            };
            body[i..i + n].copy_from_slice(&new.to_le_bytes()[..n]);
        }
        Mutation::Set32(p, v) => {
            let i = at(*p, body.len());
            let n = (body.len() - i).min(4);
            body[i..i + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        Mutation::Insert(p, bytes) => {
            let i = at(*p, body.len() + 1);
            body.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(p, n) => {
            let i = at(*p, body.len());
            let end = (i + usize::from(*n).max(1)).min(body.len());
            body.drain(i..end);
        }
        Mutation::Truncate(p) => {
            let i = at(*p, body.len());
            body.truncate(i);
        }
    }
}

/// A real snapshot of a store built from structured requests, then mutated.
fn check_real(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mutations: Vec<Mutation> = (0..u.int_in_range(0..=4u8).unwrap_or(0))
        .filter_map(|_| Mutation::arbitrary(&mut u).ok())
        .collect();
    let h = rkube_fuzz::run_ops(&mut u, 64);
    let store = h.mvcc().clone();
    h.finish();
    let snap = store.to_snapshot_bytes();
    let decoded = Mvcc::from_snapshot_bytes(&snap).expect("own snapshot decodes");
    assert!(decoded == store);
    check_all(&snap);
    if mutations.is_empty() {
        return;
    }
    let mut body = snap[HEADER_BYTES..].to_vec();
    for m in &mutations {
        mutate(&mut body, m);
    }
    check_body(&body);
}

/// A backup envelope whose header fields (after the magic) come from the input, padded and
/// sealed with a correct SHA-256, so `decode_backup`'s checks after the digest are reached.
fn check_envelope(fields: &[u8]) {
    let mut bytes = backup::BACKUP_MAGIC.to_vec();
    bytes.extend_from_slice(fields);
    let aligned = bytes.len().div_ceil(backup::BACKUP_ALIGN_BYTES) * backup::BACKUP_ALIGN_BYTES;
    bytes.resize(aligned, 0);
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
    bytes.extend_from_slice(&digest);
    let decoded = backup::decode_backup(&bytes);
    if let Ok(body) = decoded {
        // version u32, crc u32, length u64, then the body.
        let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        assert_eq!(body.len() as u64, len);
        assert_eq!(body, &bytes[24..24 + body.len()]);
        assert_eq!(crc32fast::hash(body).to_le_bytes(), bytes[12..16]);
        check_state(body);
    }
    check_all(&bytes);
}

fuzz_target!(|data: &[u8]| {
    check_all(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {}
        1 => check_body(rest),
        2 => check_real(rest),
        _ => check_envelope(rest),
    }
});
