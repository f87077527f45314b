//! Backups: the file `etcdctl snapshot save` (or `rkube etcd snapshot save`) writes from the
//! Maintenance/Snapshot stream, and restoring a new member's data dir from it.
//!
//! Format: magic `RKBACKUP`, format version (u32 LE), crc32 (u32 LE) of the body, body
//! length (u64 LE), body (the replicated state, as in a raft snapshot), zero padding to a
//! multiple of 512 bytes, then the SHA-256 of everything before it. The padding and trailing
//! digest are what `etcdctl snapshot save` (3.4) checks for: it expects a page-aligned
//! database followed by its SHA-256.

use std::sync::Arc;

use raft::prelude::{ConfState, Snapshot};

use super::apply::{self, StoreState};
use super::raftstore;
use crate::platform::disk::Disk;

pub const BACKUP_MAGIC: &[u8; 8] = b"RKBACKUP";
pub const BACKUP_FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 + 4 + 8;
/// etcdctl expects the database part of a snapshot stream to be a multiple of this.
pub const BACKUP_ALIGN_BYTES: usize = 512;
const SHA256_BYTES: usize = 32;

/// Why a backup could not be read or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not an rkube backup (bad magic)")]
    BadMagic,
    #[error("unsupported backup format version {0}")]
    Version(u32),
    #[error("backup is truncated: expected {expected} body bytes, found {found}")]
    Truncated { expected: u64, found: u64 },
    #[error("backup checksum mismatch: the file is damaged")]
    Checksum,
    #[error("backup content: {0}")]
    Content(String),
    #[error("data dir already holds a member's state; restore needs an empty one")]
    NotEmpty,
    #[error("disk: {0}")]
    Io(#[from] std::io::Error),
}

/// Wraps encoded state in the backup envelope.
pub fn encode_backup(state: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + state.len());
    out.extend_from_slice(BACKUP_MAGIC);
    out.extend_from_slice(&BACKUP_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(state).to_le_bytes());
    out.extend_from_slice(&(state.len() as u64).to_le_bytes());
    out.extend_from_slice(state);
    out.resize(
        out.len().div_ceil(BACKUP_ALIGN_BYTES) * BACKUP_ALIGN_BYTES,
        0,
    );
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Checks the envelope and returns the state bytes. Never panics on bad input.
pub fn decode_backup(bytes: &[u8]) -> Result<&[u8], BackupError> {
    if bytes.len() < HEADER_BYTES || &bytes[..8] != BACKUP_MAGIC {
        return Err(BackupError::BadMagic);
    }
    let (bytes, digest) = bytes.split_at(bytes.len().saturating_sub(SHA256_BYTES));
    if bytes.len() % BACKUP_ALIGN_BYTES != 0
        || <sha2::Sha256 as sha2::Digest>::digest(bytes).as_slice() != digest
    {
        return Err(BackupError::Checksum);
    }
    if bytes.len() < HEADER_BYTES {
        return Err(BackupError::BadMagic);
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    if version != BACKUP_FORMAT_VERSION {
        return Err(BackupError::Version(version));
    }
    let crc = u32_at(12);
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let rest = &bytes[HEADER_BYTES.min(bytes.len())..];
    if (rest.len() as u64) < len {
        return Err(BackupError::Truncated {
            expected: len,
            found: rest.len() as u64,
        });
    }
    let body = &rest[..len as usize];
    if crc32fast::hash(body) != crc {
        return Err(BackupError::Checksum);
    }
    Ok(body)
}

/// Seeds an empty data dir from a backup, for a member of a new cluster with `voters`.
/// Every member of the new cluster restores the same backup, so they agree on the log start.
pub fn restore(disk: Arc<dyn Disk>, backup: &[u8], voters: &[u64]) -> Result<u64, BackupError> {
    let body = decode_backup(backup)?;
    if !disk.list(raftstore::WAL_DIR)?.is_empty() || !disk.list(raftstore::SNAP_DIR)?.is_empty() {
        return Err(BackupError::NotEmpty);
    }
    let mut st = StoreState::default();
    apply::restore_state(&mut st, body).map_err(BackupError::Content)?;
    // Member ids of the old cluster mean nothing in the new one.
    st.members.clear();
    st.applied_index = st.applied_index.max(1);
    let index = st.applied_index;
    let mut snap = Snapshot {
        data: apply::encode_state(&st).into(),
        ..Default::default()
    };
    let meta = snap.mut_metadata();
    meta.index = index;
    meta.term = 1;
    meta.set_conf_state(ConfState::from((voters.to_vec(), vec![])));
    raftstore::write_snapshot_file(disk.as_ref(), &snap)?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_and_damage_detection() {
        let body = b"state bytes".to_vec();
        let enc = encode_backup(&body);
        assert_eq!(decode_backup(&enc).unwrap(), body.as_slice());
        assert_eq!((enc.len() - 32) % BACKUP_ALIGN_BYTES, 0, "etcdctl's layout");
        let mut bad = enc.clone();
        bad[30] ^= 1;
        assert!(matches!(decode_backup(&bad), Err(BackupError::Checksum)));
        assert!(matches!(
            decode_backup(&enc[..enc.len() - 1]),
            Err(BackupError::Checksum)
        ));
        assert!(matches!(decode_backup(b"nope"), Err(BackupError::BadMagic)));
    }
}
