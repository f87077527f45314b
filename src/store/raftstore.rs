//! The Raft log's durable home: raft-rs's in-memory `MemStorage` for reads, backed by the
//! WAL (entries and hard state) and snapshot files on the node's `Disk`.
//!
//! The write order follows raft-rs's Ready contract: entries and hard state are appended and
//! fsynced before any message that depends on them leaves. Recovery loads the newest valid
//! snapshot, then replays the WAL records after it.

use std::sync::{Arc, Mutex};

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

use super::wal::{Record, Wal, WalError};
use crate::platform::disk::Disk;

/// WAL record kinds (0 is the WAL's own segment header).
pub const RECORD_ENTRY: u8 = 1;
pub const RECORD_HARD_STATE: u8 = 2;
/// Marks that a snapshot at (index, term) was saved; entries at or below it may be gone.
pub const RECORD_SNAPSHOT: u8 = 3;

/// Directory names inside a member's data dir.
pub const WAL_DIR: &str = "member/wal";
pub const SNAP_DIR: &str = "member/snap";
/// Snapshot files kept on disk (the newest, plus older ones in case it is damaged).
pub const SNAPSHOTS_KEPT: usize = 2;

/// Errors of durable log storage.
#[derive(Debug, thiserror::Error)]
pub enum RaftStoreError {
    #[error("wal: {0}")]
    Wal(#[from] WalError),
    #[error("disk: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt raft state: {0}")]
    Corrupt(String),
    #[error("raft storage: {0}")]
    Raft(#[from] raft::Error),
}

/// raft-rs's storage: the in-memory log plus the newest snapshot for lagging followers.
#[derive(Clone)]
pub struct RaftStore {
    pub mem: MemStorage,
    latest_snapshot: Arc<Mutex<Snapshot>>,
}

impl Storage for RaftStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snap = self.latest_snapshot.lock().expect("snapshot lock").clone();
        if snap.get_metadata().index < request_index || snap.data.is_empty() {
            return Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snap)
    }
}

/// The WAL and snapshot files of one member.
pub struct Persist {
    disk: Arc<dyn Disk>,
    wal: Wal,
}

/// What recovery found on disk.
pub struct Recovered {
    pub store: RaftStore,
    pub persist: Persist,
    /// The newest snapshot (state machine data in `data`), if any.
    pub snapshot: Option<Snapshot>,
    /// True when the data dir held no raft state at all (a fresh member).
    pub fresh: bool,
}

fn decode_entry(payload: &[u8]) -> Result<Entry, RaftStoreError> {
    Entry::parse_from_bytes(payload).map_err(|e| RaftStoreError::Corrupt(format!("entry: {e}")))
}

fn encode_u64_pair(a: u64, b: u64) -> Vec<u8> {
    let mut v = a.to_le_bytes().to_vec();
    v.extend_from_slice(&b.to_le_bytes());
    v
}

/// Opens (or creates) the member's durable state and rebuilds the in-memory log.
pub fn recover(disk: Arc<dyn Disk>, voters: &[u64]) -> Result<Recovered, RaftStoreError> {
    let snapshot = load_newest_snapshot(disk.as_ref())?;
    let (wal, records) = Wal::open(disk.clone(), WAL_DIR)?;
    let fresh = snapshot.is_none() && records.is_empty();
    let mem = MemStorage::new_with_conf_state(ConfState::from((voters.to_vec(), vec![])));
    if let Some(snap) = &snapshot {
        mem.wl()
            .apply_snapshot(snap.clone())
            .map_err(|e| RaftStoreError::Corrupt(format!("apply snapshot: {e}")))?;
    }
    replay(&mem, &records)?;
    let latest = snapshot.clone().unwrap_or_default();
    Ok(Recovered {
        store: RaftStore {
            mem,
            latest_snapshot: Arc::new(Mutex::new(latest)),
        },
        persist: Persist { disk, wal },
        snapshot,
        fresh,
    })
}

fn replay(mem: &MemStorage, records: &[Record]) -> Result<(), RaftStoreError> {
    let mut hard_state: Option<HardState> = None;
    for rec in records {
        match rec.kind {
            RECORD_ENTRY => {
                let e = decode_entry(&rec.payload)?;
                let first = mem.first_index()?;
                let last = mem.last_index()?;
                if e.index < first {
                    continue; // covered by the snapshot
                }
                if e.index > last + 1 {
                    return Err(RaftStoreError::Corrupt(format!(
                        "wal entry {} leaves a gap after {last}",
                        e.index
                    )));
                }
                mem.wl()
                    .append(&[e])
                    .map_err(|err| RaftStoreError::Corrupt(format!("append: {err}")))?;
            }
            RECORD_HARD_STATE => {
                let hs = HardState::parse_from_bytes(&rec.payload)
                    .map_err(|e| RaftStoreError::Corrupt(format!("hard state: {e}")))?;
                hard_state = Some(hs);
            }
            RECORD_SNAPSHOT => {}
            other => {
                return Err(RaftStoreError::Corrupt(format!(
                    "unknown wal record kind {other}"
                )))
            }
        }
    }
    if let Some(mut hs) = hard_state {
        let snap_index = mem.first_index()? - 1;
        let last = mem.last_index()?;
        hs.commit = hs.commit.max(snap_index);
        if hs.commit > last {
            return Err(RaftStoreError::Corrupt(format!(
                "commit {} beyond last log index {last}: acknowledged entries are missing",
                hs.commit
            )));
        }
        mem.wl().set_hardstate(hs);
    }
    Ok(())
}

fn snapshot_file_name(index: u64, term: u64) -> String {
    format!("{term:016x}-{index:016x}.snap")
}

fn load_newest_snapshot(disk: &dyn Disk) -> Result<Option<Snapshot>, RaftStoreError> {
    let mut names: Vec<String> = disk
        .list(SNAP_DIR)?
        .into_iter()
        .filter(|n| n.ends_with(".snap"))
        .collect();
    names.sort_by_key(|n| snapshot_sort_key(n));
    for name in names.iter().rev() {
        let bytes = disk.read(&format!("{SNAP_DIR}/{name}"))?;
        match decode_snapshot_file(&bytes) {
            Ok(s) => return Ok(Some(s)),
            Err(e) => tracing::warn!(file = %name, error = %e, "skipping damaged snapshot"),
        }
    }
    Ok(None)
}

fn snapshot_sort_key(name: &str) -> u64 {
    name.split('-')
        .nth(1)
        .and_then(|s| s.strip_suffix(".snap"))
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .unwrap_or(0)
}

/// Snapshot file format: crc32 (LE) of the body, then the body (a raft `Snapshot`).
fn encode_snapshot_file(snap: &Snapshot) -> Vec<u8> {
    let body = snap.write_to_bytes().expect("snapshot encodes");
    let mut out = crc32fast::hash(&body).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn decode_snapshot_file(bytes: &[u8]) -> Result<Snapshot, RaftStoreError> {
    if bytes.len() < 4 {
        return Err(RaftStoreError::Corrupt("snapshot file too short".into()));
    }
    let (crc, body) = bytes.split_at(4);
    if u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) != crc32fast::hash(body) {
        return Err(RaftStoreError::Corrupt("snapshot checksum mismatch".into()));
    }
    Snapshot::parse_from_bytes(body).map_err(|e| RaftStoreError::Corrupt(format!("snapshot: {e}")))
}

/// Writes a snapshot file durably (temp file, fsync, rename).
pub fn write_snapshot_file(disk: &dyn Disk, snap: &Snapshot) -> std::io::Result<()> {
    let meta = snap.get_metadata();
    let name = snapshot_file_name(meta.index, meta.term);
    let path = format!("{SNAP_DIR}/{name}");
    crate::platform::disk::replace_file(disk, &path, &encode_snapshot_file(snap), false)
}

impl Persist {
    /// Appends entries and the hard state to the WAL (not yet durable).
    pub fn append(
        &mut self,
        entries: &[Entry],
        hs: Option<&HardState>,
    ) -> Result<(), RaftStoreError> {
        let mut records = Vec::with_capacity(entries.len() + 1);
        for e in entries {
            records.push(Record {
                kind: RECORD_ENTRY,
                payload: e.write_to_bytes().expect("entry encodes"),
            });
        }
        if let Some(hs) = hs {
            records.push(Record {
                kind: RECORD_HARD_STATE,
                payload: hs.write_to_bytes().expect("hard state encodes"),
            });
        }
        if !records.is_empty() {
            self.wal.append(&records)?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), RaftStoreError> {
        self.wal.sync()?;
        Ok(())
    }

    /// Saves `snap` durably, then rewrites the WAL to hold only what comes after it (plus the
    /// hard state) and drops older segments and snapshot files.
    pub fn save_snapshot(
        &mut self,
        store: &RaftStore,
        snap: &Snapshot,
    ) -> Result<(), RaftStoreError> {
        let meta = snap.get_metadata();
        write_snapshot_file(self.disk.as_ref(), snap)?;
        *store.latest_snapshot.lock().expect("snapshot lock") = snap.clone();
        self.rewrite_wal_after(store, meta.index, meta.term)?;
        self.prune_snapshots()?;
        Ok(())
    }

    fn rewrite_wal_after(
        &mut self,
        store: &RaftStore,
        index: u64,
        term: u64,
    ) -> Result<(), RaftStoreError> {
        let seq = self.wal.start_new_segment()?;
        let (entries, hs) = {
            let last = store.mem.last_index()?;
            let first = (index + 1).max(store.mem.first_index()?);
            let ents = if first <= last {
                store
                    .mem
                    .entries(first, last + 1, None, GetEntriesContext::empty(false))
                    .map_err(|e| RaftStoreError::Corrupt(format!("entries: {e}")))?
            } else {
                Vec::new()
            };
            (ents, store.mem.rl().hard_state().clone())
        };
        self.wal.append(&[Record {
            kind: RECORD_SNAPSHOT,
            payload: encode_u64_pair(index, term),
        }])?;
        self.append(&entries, Some(&hs))?;
        self.wal.sync()?;
        self.wal.remove_segments_before(seq)?;
        Ok(())
    }

    fn prune_snapshots(&mut self) -> Result<(), RaftStoreError> {
        let mut names: Vec<String> = self.disk.list(SNAP_DIR)?;
        names.retain(|n| n.ends_with(".snap") || n.ends_with(".tmp"));
        names.sort_by_key(|n| snapshot_sort_key(n));
        let snaps: Vec<&String> = names.iter().filter(|n| n.ends_with(".snap")).collect();
        let drop_count = snaps.len().saturating_sub(SNAPSHOTS_KEPT);
        for name in snaps.into_iter().take(drop_count) {
            self.disk.remove(&format!("{SNAP_DIR}/{name}"))?;
        }
        Ok(())
    }
}

impl RaftStore {
    /// Replaces the newest snapshot kept for lagging followers (without saving it).
    pub fn set_latest_snapshot(&self, snap: Snapshot) {
        *self.latest_snapshot.lock().expect("snapshot lock") = snap;
    }
}
