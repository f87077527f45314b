//! Binary snapshot of the whole state machine, and the replica digest derived from it.
//!
//! Raft ships this to followers that fell behind the log and the driver writes it to disk, so
//! the decoder faces untrusted bytes: it never panics, bounds every count by the bytes left
//! before allocating, and re-checks every invariant the rest of the module relies on (a
//! snapshot that decodes is a state `Mvcc` could have reached by itself).
//!
//! Layout, all integers little-endian:
//! ```text
//! header: magic "RKMVCCSN" | format u32 | body length u64 | crc32(body) u32
//! body:   current_rev i64 | compact_rev i64
//!         key count u64, then per key (ascending, non-empty, unique):
//!           key (len u64 + bytes) | entry count u64, then per entry (ascending revision):
//!             main i64 | sub u32 | tag u8 (1 live, 2 tombstone)
//!             live only: create_revision i64 | version i64 | lease i64 | value (len u64 + bytes)
//!         lease count u64, then per lease (ascending id): id i64 | ttl_secs i64
//! ```
//! The change log and each lease's key set are rebuilt from the histories, so they cannot
//! disagree with them.

use std::collections::BTreeMap;

use super::history::{Entry, KeyHistory, Live, Revision, State, FIRST_WRITE_REVISION};
use super::range::KeyIndex;
use super::{Lease, Mvcc, MvccError, INITIAL_REVISION, MAX_LEASE_TTL_SECS, NO_LEASE};

const MAGIC: [u8; 8] = *b"RKMVCCSN";
const FORMAT_VERSION: u32 = 1;
/// Magic + format + body length + crc.
const HEADER_BYTES: usize = 8 + 4 + 8 + 4;
const TAG_LIVE: u8 = 1;
const TAG_TOMBSTONE: u8 = 2;
/// Largest revision a snapshot may carry: unreachable in practice, and low enough that
/// `revision + 1` and `version + 1` can never overflow afterwards.
const MAX_SNAPSHOT_REVISION: i64 = 1 << 62;
/// Smallest encodings, used to reject counts the remaining bytes cannot hold.
const MIN_ENTRY_BYTES: usize = 8 + 4 + 1;
const MIN_KEY_BYTES: usize = 8 + 1 + 8 + MIN_ENTRY_BYTES;
const LEASE_BYTES: usize = 8 + 8;

/// Where the encoder writes: a buffer for snapshots, a hasher for [`Mvcc::hash`].
trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn put_u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }

    fn put_i64(&mut self, v: i64) {
        self.put(&v.to_le_bytes());
    }

    fn put_len(&mut self, n: usize) {
        // usize is at most 64 bits on every supported target.
        self.put_u64(n as u64);
    }

    fn put_bytes(&mut self, b: &[u8]) {
        self.put_len(b.len());
        self.put(b);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for crc32fast::Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Mvcc {
    /// The whole state (retained history, revisions, leases) in the versioned format above.
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.encode_body(&mut body);
        let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.put_len(body.len());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Restores a state from [`Mvcc::to_snapshot_bytes`] output; anything else is
    /// `BadSnapshot`.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Mvcc, MvccError> {
        let body = check_header(bytes).map_err(MvccError::BadSnapshot)?;
        decode_body(body).map_err(MvccError::BadSnapshot)
    }

    /// A digest of the complete state, equal on replicas that applied the same commands
    /// (it is the crc32 a snapshot of this state carries). Streams; allocates nothing.
    pub fn hash(&self) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        self.encode_body(&mut hasher);
        hasher.finalize()
    }

    fn encode_body(&self, out: &mut impl Sink) {
        out.put_i64(self.current_rev);
        out.put_i64(self.compact_rev);
        out.put_len(self.index.len());
        for (key, history) in &self.index {
            out.put_bytes(key);
            out.put_len(history.entries().len());
            for entry in history.entries() {
                encode_entry(entry, out);
            }
        }
        out.put_len(self.leases.len());
        for (&id, lease) in &self.leases {
            out.put_i64(id);
            out.put_i64(lease.ttl_secs);
        }
    }
}

fn encode_entry(entry: &Entry, out: &mut impl Sink) {
    out.put_i64(entry.rev.main);
    out.put(&entry.rev.sub.to_le_bytes());
    match &entry.state {
        State::Live(live) => {
            out.put(&[TAG_LIVE]);
            out.put_i64(live.create_revision);
            out.put_i64(live.version);
            out.put_i64(live.lease);
            out.put_bytes(&live.value);
        }
        State::Tombstone => out.put(&[TAG_TOMBSTONE]),
    }
}

/// Checks magic, format, length and crc; returns the body.
fn check_header(bytes: &[u8]) -> Result<&[u8], String> {
    let mut r = Reader { buf: bytes };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not an mvcc snapshot (bad magic)".into());
    }
    let format = r.u32()?;
    if format != FORMAT_VERSION {
        return Err(format!("unsupported snapshot format {format}"));
    }
    let body_len = r.u64()?;
    let crc = r.u32()?;
    if u64::try_from(r.buf.len()).ok() != Some(body_len) {
        return Err(format!(
            "body length {body_len} but {} bytes follow the header",
            r.buf.len()
        ));
    }
    if crc32fast::hash(r.buf) != crc {
        return Err("body checksum mismatch".into());
    }
    Ok(r.buf)
}

fn decode_body(body: &[u8]) -> Result<Mvcc, String> {
    let mut r = Reader { buf: body };
    let current_rev = r.i64()?;
    let compact_rev = r.i64()?;
    if !(INITIAL_REVISION..=MAX_SNAPSHOT_REVISION).contains(&current_rev) {
        return Err(format!("current revision {current_rev} out of range"));
    }
    if !(0..=current_rev).contains(&compact_rev) {
        return Err(format!("compact revision {compact_rev} out of range"));
    }
    let revs = Revs {
        current: current_rev,
        compact: compact_rev,
    };
    let mut index = KeyIndex::new();
    let mut writes: Vec<(Revision, Vec<u8>)> = Vec::new();
    for _ in 0..r.count(MIN_KEY_BYTES)? {
        let key = r.bytes()?;
        if key.is_empty() || index.last_key_value().is_some_and(|(k, _)| *k >= key) {
            return Err("keys are empty, unsorted or repeated".into());
        }
        let entries = decode_entries(&mut r)?;
        validate_history(&entries, revs)?;
        for entry in entries.iter().filter(|e| e.rev.main >= compact_rev) {
            writes.push((entry.rev, key.clone()));
        }
        index.insert(key, KeyHistory::from_entries(entries));
    }
    let mut leases = decode_leases(&mut r)?;
    if !r.buf.is_empty() {
        return Err(format!("{} trailing bytes", r.buf.len()));
    }
    let log = rebuild_log(writes, revs)?;
    attach_lease_keys(&index, current_rev, &mut leases)?;
    Ok(Mvcc {
        index,
        log,
        current_rev,
        compact_rev,
        leases,
    })
}

#[derive(Clone, Copy)]
struct Revs {
    current: i64,
    compact: i64,
}

fn decode_entries(r: &mut Reader<'_>) -> Result<Vec<Entry>, String> {
    let n = r.count(MIN_ENTRY_BYTES)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let main = r.i64()?;
        let sub = r.u32()?;
        let state = match r.u8()? {
            TAG_LIVE => State::Live(Live {
                create_revision: r.i64()?,
                version: r.i64()?,
                lease: r.i64()?,
                value: r.bytes()?,
            }),
            TAG_TOMBSTONE => State::Tombstone,
            tag => return Err(format!("unknown entry tag {tag}")),
        };
        entries.push(Entry {
            rev: Revision { main, sub },
            state,
        });
    }
    Ok(entries)
}

/// A key's history must be one the write path and compaction could have produced.
fn validate_history(entries: &[Entry], revs: Revs) -> Result<(), String> {
    if entries.is_empty() {
        return Err("key without history".into());
    }
    let mut prev: Option<&Entry> = None;
    for (i, e) in entries.iter().enumerate() {
        let main = e.rev.main;
        if !(FIRST_WRITE_REVISION..=revs.current).contains(&main) {
            return Err(format!("write at revision {main} out of range"));
        }
        if i > 0 && main <= revs.compact {
            return Err("more than one write retained at or before compaction".into());
        }
        if prev.is_some_and(|p| p.rev >= e.rev) {
            return Err("key history not ascending".into());
        }
        check_step(prev.map(|p| &p.state), e, revs.compact)?;
        prev = Some(e);
    }
    Ok(())
}

/// One write's fields given the write before it: versions count puts within a generation,
/// a generation starts at version 1 with `create_revision` = its revision, and a tombstone
/// only follows a live key.
fn check_step(prev: Option<&State>, e: &Entry, compact: i64) -> Result<(), String> {
    let main = e.rev.main;
    let ok = match (prev, &e.state) {
        (Some(State::Live(_)), State::Tombstone) => true,
        (None | Some(State::Tombstone), State::Tombstone) => false,
        (Some(State::Live(p)), State::Live(l)) => {
            l.version == p.version + 1 && l.create_revision == p.create_revision
        }
        (Some(State::Tombstone), State::Live(l)) => l.version == 1 && l.create_revision == main,
        (None, State::Live(l)) if main > compact => l.version == 1 && l.create_revision == main,
        // The one write kept by compaction: any generation that fits before it.
        (None, State::Live(l)) => {
            (FIRST_WRITE_REVISION..=main).contains(&l.create_revision)
                && (1..=main - l.create_revision + 1).contains(&l.version)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("inconsistent write at revision {main}"))
    }
}

fn decode_leases(r: &mut Reader<'_>) -> Result<BTreeMap<i64, Lease>, String> {
    let mut leases: BTreeMap<i64, Lease> = BTreeMap::new();
    for _ in 0..r.count(LEASE_BYTES)? {
        let id = r.i64()?;
        let ttl_secs = r.i64()?;
        if id == NO_LEASE || leases.last_key_value().is_some_and(|(&last, _)| last >= id) {
            return Err("lease ids zero, unsorted or repeated".into());
        }
        if ttl_secs > MAX_LEASE_TTL_SECS {
            return Err(format!("lease {id} ttl {ttl_secs} too large"));
        }
        let keys = Default::default();
        leases.insert(id, Lease { ttl_secs, keys });
    }
    Ok(leases)
}

/// Most writes one revision may hold in a snapshot (far above any txn the server accepts).
pub const MAX_WRITES_PER_REVISION: usize = 1 << 20;

/// The change log from the writes kept by compaction: after the compaction revision each
/// revision's subs must be exactly `0..n`, and every such revision (after the empty first
/// revision) must have written something, since only writing txns create revisions. At the
/// compaction revision itself only puts survive, so its gaps (dropped deletes) are filled with
/// empty keys, as [`Mvcc::compact`] leaves them.
fn rebuild_log(
    mut writes: Vec<(Revision, Vec<u8>)>,
    revs: Revs,
) -> Result<BTreeMap<i64, Vec<Vec<u8>>>, String> {
    writes.sort_by_key(|(rev, _)| *rev);
    let mut log: BTreeMap<i64, Vec<Vec<u8>>> = BTreeMap::new();
    for (rev, key) in writes {
        let keys = log.entry(rev.main).or_default();
        let sub = usize::try_from(rev.sub).map_err(|_| "sub out of range".to_string())?;
        if rev.main == revs.compact && sub > keys.len() {
            // Placeholders for deletes compaction dropped; bounded, since a corrupt sub must
            // not make us allocate without limit.
            if sub > MAX_WRITES_PER_REVISION {
                return Err(format!(
                    "revision {} claims more than {MAX_WRITES_PER_REVISION} writes",
                    rev.main
                ));
            }
            keys.resize(sub, Vec::new());
        }
        if keys.len() != sub {
            return Err(format!("revision {} has gaps or repeats in sub", rev.main));
        }
        keys.push(key);
    }
    let after = log.range(revs.compact + 1..).count();
    let expected = revs.current - revs.compact.max(INITIAL_REVISION);
    if i64::try_from(after).ok() != Some(expected) {
        return Err("some retained revision has no write".into());
    }
    Ok(log)
}

/// Each live key's lease must exist; it records the key.
fn attach_lease_keys(
    index: &KeyIndex,
    current_rev: i64,
    leases: &mut BTreeMap<i64, Lease>,
) -> Result<(), String> {
    for (key, history) in index {
        let Some((_, live)) = history.at(current_rev) else {
            continue;
        };
        if live.lease == NO_LEASE {
            continue;
        }
        let lease = leases
            .get_mut(&live.lease)
            .ok_or_else(|| format!("key attached to unknown lease {}", live.lease))?;
        lease.keys.insert(key.clone());
    }
    Ok(())
}

/// Bounds-checked little-endian reads over the input.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err("truncated".into());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A length or count that the remaining bytes can hold at `min_item_bytes` per item.
    fn count(&mut self, min_item_bytes: usize) -> Result<usize, String> {
        let n = self.u64()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() / min_item_bytes.max(1) => Ok(n),
            _ => Err(format!("count {n} exceeds the remaining bytes")),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.count(1)?;
        Ok(self.take(n)?.to_vec())
    }
}
