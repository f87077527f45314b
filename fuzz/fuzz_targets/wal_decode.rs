//! Fuzzes the write-ahead log's decoder and recovery: `wal::decode_segment` on arbitrary
//! bytes, and `Wal::open` on a `SimDisk` holding those bytes as segment
//! `wal/0000000000000001.wal`.
//!
//! Two views of each input: the raw bytes; and, because random bytes almost never carry a
//! valid CRC, a well-formed log built from the input (records drawn with `arbitrary`, framed
//! with `encode_segment_header`/`encode_record`, optionally split across two segments) with
//! one drawn corruption applied (truncation, a flipped byte, a zeroed tail, appended garbage,
//! or a stray file in the directory).
//!
//! Checks: nothing panics, and `Wal::open` returns `Ok` or `Err`. `decode_segment` is exact:
//! `valid_len` is at most the input, a bad header yields no records, `stop` is `End` iff every
//! byte decoded, and re-framing the records reproduces `bytes[..valid_len]` byte for byte.
//! `Wal::open` succeeds iff the header names the file's sequence number, then returns exactly
//! `decode_segment`'s records (a prefix of them, per its contract, and in fact all), cuts the
//! file to `valid_len` durably, and a reopen after one more append returns the same records
//! plus the new one. A stray non-segment file changes nothing. For a built log the
//! decoded records are the written ones up to the corruption, and a damaged non-last segment
//! makes `open` fail instead of dropping acknowledged records.

#![no_main]

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rkube::platform::disk::{Disk, SimDisk};
use rkube::store::wal::{
    decode_segment, encode_record, encode_segment_header, segment_file_name, Record, ScanStop, Wal,
    WalError,
};

const DIR: &str = "wal";

fn seg_path(seq: u64) -> String {
    format!("{DIR}/{}", segment_file_name(seq))
}

/// The exact-decoder properties, then `Wal::open` on the bytes as segment 1 (and, if the
/// header names another sequence number, as that segment).
fn check_raw(bytes: &[u8]) {
    let scan = decode_segment(bytes);
    let valid = usize::try_from(scan.valid_len).expect("fits");
    assert!(valid <= bytes.len());
    match (&scan.seq, &scan.stop) {
        (None, ScanStop::Corrupt { offset, .. }) => {
            assert_eq!(*offset, 0);
            assert_eq!(valid, 0);
            assert!(scan.records.is_empty());
        }
        (None, ScanStop::End) => panic!("bad header without a reason"),
        (Some(seq), stop) => {
            match stop {
                ScanStop::End => assert_eq!(valid, bytes.len()),
                ScanStop::Corrupt { offset, .. } => {
                    assert_eq!(*offset, scan.valid_len);
                    assert!(valid < bytes.len());
                }
            }
            let mut framed = encode_segment_header(*seq);
            for r in &scan.records {
                assert_ne!(r.kind, 0, "a record with the header kind decoded");
                encode_record(r, &mut framed).expect("decoded records re-encode");
            }
            assert_eq!(
                framed,
                &bytes[..valid],
                "records are exactly bytes[..valid_len]"
            );
            let again = decode_segment(&bytes[..valid]);
            assert_eq!(again.records, scan.records);
            assert_eq!(again.stop, ScanStop::End);
        }
    }
    check_open(&[(1, bytes)]);
    if let Some(seq) = scan.seq.filter(|&s| s != 1) {
        check_open(&[(seq, bytes)]);
    }
}

/// Writes `segments` (sequence number, bytes) to a fresh disk, opens the log and checks the
/// outcome against what `decode_segment` says of each segment. Returns the records if open
/// succeeded.
fn check_open(segments: &[(u64, &[u8])]) -> Option<Vec<Record>> {
    let sim = SimDisk::new();
    let disk: Arc<dyn Disk> = Arc::new(sim.clone());
    for (seq, bytes) in segments {
        let path = seg_path(*seq);
        disk.create(&path).expect("create");
        disk.append(&path, bytes).expect("append");
    }
    let opened = Wal::open(disk.clone(), DIR);
    let (&(last_seq, last_bytes), older) = segments.split_last().expect("a segment");
    // What open must do, segment by segment.
    let mut want: Option<Vec<Record>> = Some(Vec::new());
    let mut contiguous = true;
    for pair in segments.windows(2) {
        contiguous &= pair[1].0 == pair[0].0 + 1;
    }
    for &(seq, bytes) in older {
        let scan = decode_segment(bytes);
        let good = scan.seq == Some(seq) && scan.stop == ScanStop::End;
        match (&mut want, good) {
            (Some(recs), true) => recs.extend(scan.records),
            _ => want = None,
        }
    }
    let last_scan = decode_segment(last_bytes);
    if last_scan.seq != Some(last_seq) || !contiguous {
        want = None;
    }
    if let Some(recs) = &mut want {
        recs.extend(last_scan.records.iter().cloned());
    }
    match (opened, &want) {
        (Ok((mut wal, got)), Some(want)) => {
            assert_eq!(
                &got, want,
                "open returned other records than decode_segment"
            );
            assert_eq!(wal.current_segment(), last_seq);
            assert_eq!(
                disk.len(&seg_path(last_seq)).expect("len"),
                last_scan.valid_len,
                "open cuts the last segment to its valid prefix"
            );
            assert_eq!(
                sim.synced_len(&seg_path(last_seq)),
                Some(last_scan.valid_len),
                "open leaves what it returns durable"
            );
            // Appending continues the log; a reopen sees old and new records. The segment
            // sequence space can run out (u64::MAX), which must be an error, not a panic.
            let extra = Record::new(7, b"after-open".to_vec());
            let appended = wal
                .append(std::slice::from_ref(&extra))
                .and_then(|()| wal.sync());
            drop(wal);
            let (_, again) = Wal::open(disk.clone(), DIR).expect("reopen");
            let mut want = want.clone();
            match appended {
                Ok(()) => want.push(extra),
                Err(e) => assert!(
                    matches!(e, WalError::InvalidRequest(_)) && last_seq == u64::MAX,
                    "append after open failed: {e}"
                ),
            }
            assert_eq!(again, want, "reopen after append");
            Some(got)
        }
        (Err(e), None) => {
            assert!(
                matches!(e, WalError::Corrupt { .. }),
                "open failed with a non-corruption error: {e}"
            );
            None
        }
        (Ok((_, got)), None) => panic!("open accepted a log it should reject: {got:?}"),
        (Err(e), Some(want)) => panic!("open failed ({e}) on a log holding {want:?}"),
    }
}

#[derive(Arbitrary, Debug)]
enum Damage {
    None,
    /// Cut the file at this many bytes (modulo its length + 1).
    Truncate(u32),
    /// XOR one byte (position modulo the length) with a non-zero value.
    Flip(u32, u8),
    /// Zero every byte from this position on (a preallocated or zero-filled tail).
    ZeroFrom(u32),
    /// Append garbage after the last record.
    Append(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Built {
    records: Vec<(u8, Vec<u8>)>,
    /// Records before this index go to segment 1, the rest to segment 2 (if `split`).
    split_at: u8,
    split: bool,
    /// Damage the first segment instead of the last (when split).
    damage_first: bool,
    damage: Damage,
    /// A stray directory entry next to the segments.
    stray: Option<String>,
}

/// Frames `records` as segment `seq`, returning the bytes and each record's end offset.
fn frame(seq: u64, records: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let mut out = encode_segment_header(seq);
    let mut ends = Vec::new();
    for r in records {
        encode_record(r, &mut out).expect("valid record");
        ends.push(out.len());
    }
    (out, ends)
}

/// What a damage did to a segment's bytes.
struct Damaged {
    /// The first byte that differs from the original (a cut counts as a difference at the
    /// cut); `None` if the bytes are unchanged.
    first_change: Option<usize>,
    /// Only bytes past the original end were added (which may decode as more records: the
    /// fuzzer can learn CRCs through comparison tracing).
    appended: bool,
}

fn apply_damage(bytes: &mut Vec<u8>, damage: &Damage) -> Damaged {
    let len = bytes.len();
    let mut appended = false;
    let first_change = match damage {
        Damage::None => None,
        Damage::Truncate(n) => {
            let at = *n as usize % (len + 1);
            bytes.truncate(at);
            (at < len).then_some(at)
        }
        Damage::Flip(at, x) => {
            let at = *at as usize % len;
            bytes[at] ^= (*x).max(1);
            Some(at)
        }
        Damage::ZeroFrom(n) => {
            let at = *n as usize % (len + 1);
            let first = bytes[at..].iter().position(|&b| b != 0).map(|i| at + i);
            bytes[at..].fill(0);
            first
        }
        Damage::Append(garbage) => {
            bytes.extend_from_slice(garbage);
            appended = !garbage.is_empty();
            appended.then_some(len)
        }
    };
    Damaged {
        first_change,
        appended,
    }
}

fn check_built(b: Built) {
    let records: Vec<Record> = b
        .records
        .into_iter()
        .map(|(kind, payload)| Record::new(kind.max(1), payload))
        .collect();
    let split = if b.split {
        usize::from(b.split_at).min(records.len())
    } else {
        records.len()
    };
    let mut parts = vec![&records[..split]];
    if b.split {
        parts.push(&records[split..]);
    }
    let mut segs: Vec<Vec<u8>> = Vec::new();
    let mut ends: Vec<Vec<usize>> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let (bytes, e) = frame(i as u64 + 1, part);
        segs.push(bytes);
        ends.push(e);
    }
    let target = if b.damage_first { 0 } else { segs.len() - 1 };
    let damaged = apply_damage(&mut segs[target], &b.damage);
    let header_len = encode_segment_header(1).len();
    for (i, bytes) in segs.iter().enumerate() {
        check_raw(bytes);
        let scan = decode_segment(bytes);
        let want = parts[i];
        let change = if i == target {
            damaged.first_change
        } else {
            None
        };
        let Some(at) = change else {
            assert_eq!(scan.seq, Some(i as u64 + 1));
            assert_eq!(scan.records, want);
            assert_eq!(scan.stop, ScanStop::End);
            continue;
        };
        if at < header_len {
            assert_eq!(scan.seq, None, "a damaged header decoded");
            continue;
        }
        assert_eq!(scan.seq, Some(i as u64 + 1));
        // Records that end before the first changed byte survive. CRC-32 catches every
        // error burst of up to 32 bits, and a changed length field makes the checksum cover
        // other bytes, so nothing from the damaged record on decodes (appended bytes may).
        let kept = ends[i].iter().take_while(|&&e| e <= at).count();
        assert!(scan.records.len() >= kept, "lost records before the damage");
        assert_eq!(scan.records[..kept], want[..kept]);
        if !damaged.appended {
            assert_eq!(scan.records.len(), kept, "decoded past the damage");
        }
        let at_boundary = at == header_len || ends[i].contains(&at);
        if matches!(b.damage, Damage::Truncate(_)) {
            let stop_end = scan.stop == ScanStop::End;
            assert_eq!(stop_end, at_boundary, "{:?}", scan.stop);
        }
    }
    let layout: Vec<(u64, &[u8])> = segs
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u64 + 1, &b[..]))
        .collect();
    let opened = check_open(&layout);
    if let Some(got) = &opened {
        // Every record of the older segments, then a prefix of the last one's.
        let older: usize = parts[..parts.len() - 1].iter().map(|p| p.len()).sum();
        if target + 1 == segs.len() || damaged.first_change.is_none() {
            assert!(got.len() >= older);
            assert_eq!(got[..older], records[..older]);
        }
    }
    if let Some(name) = b.stray {
        check_stray(&layout, &name, &opened);
    }
}

/// A foreign entry in the log directory: open must not panic, whatever its name, and a name
/// that is not a segment's (`*.wal`) must not change what open returns (`*.wal.tmp` files are
/// unfinished segments and removed, others ignored).
fn check_stray(layout: &[(u64, &[u8])], name: &str, want: &Option<Vec<Record>>) {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new());
    for (seq, bytes) in layout {
        let path = seg_path(*seq);
        disk.create(&path).expect("create");
        disk.append(&path, bytes).expect("append");
    }
    let path = format!("{DIR}/{name}");
    if disk.create(&path).is_err() {
        return;
    }
    let got = Wal::open(disk, DIR);
    if !name.ends_with(".wal") {
        assert_eq!(
            got.as_ref().ok().map(|(_, r)| r),
            want.as_ref(),
            "stray file {name:?} changed open: {:?}",
            got.as_ref().err()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check_raw(data);
    let mut u = Unstructured::new(data);
    if let Ok(built) = Built::arbitrary(&mut u) {
        check_built(built);
    }
});
