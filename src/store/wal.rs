//! The store's write-ahead log: checksummed records in numbered segment files on a [`Disk`].
//!
//! It owns durability and crash recovery of an opaque record stream and nothing else: the
//! caller (the Raft storage) chooses record kinds and encodes payloads. Everything goes through
//! the [`Disk`] seam so the simulation can crash it with torn and lost writes.
//!
//! Layout: a directory of segments named `{seq:016x}.wal` (name order is log order, and the
//! sequence numbers must be contiguous). Each segment starts with a header record (kind
//! [`HEADER_KIND`]) holding a magic, a format version and the segment's own sequence number,
//! so a foreign or misplaced file is rejected instead of being read as log. Records are framed
//! as `[len: u32 LE][crc32 of (len ‖ kind ‖ payload): u32 LE][kind: u8][payload: len bytes]`.
//! The length is checksummed too: otherwise a flipped length bit that extends a record over
//! zero bytes passes whenever the CRC register happens to be zero after the payload (the
//! WAL fuzz target found such a record; format version 2 closed it).
//!
//! Recovery rules, and the write discipline that makes them sound:
//! - Only the *last* segment may end in a torn or corrupt tail; [`Wal::open`] cuts it off (and
//!   fsyncs), because a crash can only tear data that was never fsynced. To keep that true,
//!   a segment is fsynced before the next one is created, and new segments are born complete:
//!   the header is written to a temp file, fsynced, then renamed into place.
//! - Anything else that does not decode — a bad header, a damaged older segment, a missing
//!   sequence number — is [`WalError::Corrupt`]: silently skipping it would lose acknowledged
//!   writes.
//! - A failed fsync poisons the log ([`WalError::Poisoned`]): after such a failure the OS may
//!   have dropped the dirty pages and a retried fsync can falsely succeed, so the only safe
//!   continuation is to reopen and re-read what is really on disk (as etcd and PostgreSQL do).

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::platform::disk::Disk;

/// Largest payload one record may carry. A length field above this is corruption, which also
/// bounds what a damaged length can make the decoder look at.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Segment size at which the log moves on to a new segment.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Frame bytes before the payload: length, checksum, kind.
pub const RECORD_FRAME_BYTES: usize = 9;
/// The record kind reserved for segment headers; callers use `1..=255`.
pub const HEADER_KIND: u8 = 0;
/// First bytes of every segment header payload.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RKUBEWAL";
/// On-disk format version written into every segment header.
pub const SEGMENT_FORMAT_VERSION: u32 = 2;

/// Header payload: magic, version (u32 LE), segment sequence number (u64 LE).
const HEADER_PAYLOAD_BYTES: usize = SEGMENT_MAGIC.len() + 4 + 8;
/// A segment's size when it holds no records yet.
const SEGMENT_HEADER_BYTES: u64 = (RECORD_FRAME_BYTES + HEADER_PAYLOAD_BYTES) as u64;
const FIRST_SEGMENT_SEQ: u64 = 1;
const SEGMENT_SUFFIX: &str = ".wal";
/// Segments under construction; never part of the log, removed on open.
const TEMP_SUFFIX: &str = ".wal.tmp";
const SEGMENT_SEQ_HEX_DIGITS: usize = 16;

/// One log entry. `kind` is the caller's tag and must not be [`HEADER_KIND`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn new(kind: u8, payload: impl Into<Vec<u8>>) -> Record {
        Record {
            kind,
            payload: payload.into(),
        }
    }
}

/// Tunables; tests shrink the segment size to exercise rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// An append that would take a non-empty segment past this starts a new segment first.
    pub segment_size_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
        }
    }
}

/// Why bytes did not decode as log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptReason {
    /// The segment is empty.
    MissingHeader,
    /// The first record is not a header.
    NotAHeader { kind: u8 },
    /// The header payload has the wrong size.
    BadHeaderLength { len: u32 },
    /// The header's magic is not [`SEGMENT_MAGIC`]: not a WAL segment.
    BadMagic,
    /// A format version this code cannot read.
    UnsupportedVersion { version: u32 },
    /// The header names a different sequence number than the file name.
    SeqMismatch { expected: u64, found: u64 },
    /// Fewer bytes than a record frame remain.
    TruncatedFrame,
    /// The payload is shorter than the length field says.
    TruncatedPayload { len: u32 },
    /// The length field exceeds [`MAX_RECORD_BYTES`].
    LengthTooLarge { len: u32 },
    /// The checksum does not match the kind and payload.
    BadChecksum,
    /// Everything from here on is zero bytes (preallocated or zero-filled after a crash).
    ZeroFilled,
    /// A record after the first uses [`HEADER_KIND`].
    ReservedKind,
    /// A `.wal` file whose name is not a 16-digit lowercase hex sequence number.
    BadSegmentName,
    /// Segment sequence numbers skip this one: a segment went missing.
    MissingSegment { seq: u64 },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptReason::MissingHeader => write!(f, "empty segment, no header"),
            CorruptReason::NotAHeader { kind } => write!(f, "first record has kind {kind}"),
            CorruptReason::BadHeaderLength { len } => write!(f, "header payload of {len} bytes"),
            CorruptReason::BadMagic => write!(f, "bad magic, not a wal segment"),
            CorruptReason::UnsupportedVersion { version } => {
                write!(f, "unsupported format version {version}")
            }
            CorruptReason::SeqMismatch { expected, found } => {
                write!(f, "header says segment {found}, file name says {expected}")
            }
            CorruptReason::TruncatedFrame => write!(f, "truncated record frame"),
            CorruptReason::TruncatedPayload { len } => {
                write!(f, "truncated payload (length field {len})")
            }
            CorruptReason::LengthTooLarge { len } => {
                write!(f, "length field {len} exceeds {MAX_RECORD_BYTES}")
            }
            CorruptReason::BadChecksum => write!(f, "checksum mismatch"),
            CorruptReason::ZeroFilled => write!(f, "zero-filled tail"),
            CorruptReason::ReservedKind => write!(f, "record uses the reserved header kind"),
            CorruptReason::BadSegmentName => write!(f, "not a segment file name"),
            CorruptReason::MissingSegment { seq } => write!(f, "segment {seq} is missing"),
        }
    }
}

/// Everything that can go wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("wal segment {segment} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        segment: String,
        offset: u64,
        reason: CorruptReason,
    },
    #[error("wal record payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("wal record kind {HEADER_KIND} is reserved for segment headers")]
    ReservedKind,
    #[error("wal is unusable after a failed write or fsync; reopen it")]
    Poisoned,
    #[error("invalid wal request: {0}")]
    InvalidRequest(String),
}

/// Where and why [`decode_segment`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanStop {
    /// Every byte decoded.
    End,
    /// Bytes from `offset` on do not decode.
    Corrupt { offset: u64, reason: CorruptReason },
}

/// The result of decoding one segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// The header's sequence number; `None` if the header itself is bad.
    pub seq: Option<u64>,
    /// The caller's records that decoded, in order (the header is not included).
    pub records: Vec<Record>,
    /// Bytes up to the end of the last good record (or header).
    pub valid_len: u64,
    pub stop: ScanStop,
}

/// The file name of segment `seq`.
pub fn segment_file_name(seq: u64) -> String {
    format!(
        "{seq:0width$x}{SEGMENT_SUFFIX}",
        width = SEGMENT_SEQ_HEX_DIGITS
    )
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_SUFFIX)?;
    let canonical = hex.len() == SEGMENT_SEQ_HEX_DIGITS
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    canonical.then(|| u64::from_str_radix(hex, 16).ok())?
}

fn checksum(len: u32, kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// Frames without validation; the header and [`encode_record`] check their inputs.
fn encode_frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("payload length checked against the limit");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(len, kind, payload).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// Appends the framed `record` to `out`, refusing what the decoder would call corrupt.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), WalError> {
    if record.kind == HEADER_KIND {
        return Err(WalError::ReservedKind);
    }
    if record.payload.len() > MAX_RECORD_BYTES {
        return Err(WalError::TooLarge {
            len: record.payload.len(),
            max: MAX_RECORD_BYTES,
        });
    }
    encode_frame(record.kind, &record.payload, out);
    Ok(())
}

/// The bytes a fresh segment `seq` starts with.
pub fn encode_segment_header(seq: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(HEADER_PAYLOAD_BYTES);
    payload.extend_from_slice(&SEGMENT_MAGIC);
    payload.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    payload.extend_from_slice(&seq.to_le_bytes());
    let mut out = Vec::with_capacity(SEGMENT_HEADER_BYTES as usize);
    encode_frame(HEADER_KIND, &payload, &mut out);
    out
}

/// A crash that zero-fills is worth telling apart from garbage when reading the logs.
fn zero_or(rest: &[u8], reason: CorruptReason) -> CorruptReason {
    if rest.iter().all(|&b| b == 0) {
        CorruptReason::ZeroFilled
    } else {
        reason
    }
}

/// Decodes the frame at the start of `rest` into `(kind, payload)`. The length field is
/// checked against the limit and the remaining bytes before anything is sliced, and nothing
/// is allocated here, so a damaged length costs nothing.
fn parse_frame(rest: &[u8]) -> Result<(u8, &[u8]), CorruptReason> {
    let Some((frame, body)) = rest.split_first_chunk::<RECORD_FRAME_BYTES>() else {
        return Err(zero_or(rest, CorruptReason::TruncatedFrame));
    };
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let kind = frame[8];
    if usize::try_from(len).map_or(true, |n| n > MAX_RECORD_BYTES) {
        return Err(CorruptReason::LengthTooLarge { len });
    }
    let Some(payload) = body.get(..len as usize) else {
        return Err(zero_or(rest, CorruptReason::TruncatedPayload { len }));
    };
    if checksum(len, kind, payload) != crc {
        return Err(zero_or(rest, CorruptReason::BadChecksum));
    }
    Ok((kind, payload))
}

/// Validates a header record and returns the segment sequence number it names.
fn parse_header(kind: u8, payload: &[u8]) -> Result<u64, CorruptReason> {
    if kind != HEADER_KIND {
        return Err(CorruptReason::NotAHeader { kind });
    }
    let Ok(fields) = <&[u8; HEADER_PAYLOAD_BYTES]>::try_from(payload) else {
        return Err(CorruptReason::BadHeaderLength {
            len: payload.len() as u32,
        });
    };
    let (magic, rest) = fields.split_at(SEGMENT_MAGIC.len());
    if magic != SEGMENT_MAGIC {
        return Err(CorruptReason::BadMagic);
    }
    let version = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    if version != SEGMENT_FORMAT_VERSION {
        return Err(CorruptReason::UnsupportedVersion { version });
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&rest[4..12]);
    Ok(u64::from_le_bytes(seq))
}

/// Decodes a whole segment: the header, then records until the bytes end or stop decoding.
///
/// Pure and total: any input yields a [`SegmentScan`], never a panic (this is a fuzz target).
/// `records` are exactly the records in `bytes[..valid_len]`.
pub fn decode_segment(bytes: &[u8]) -> SegmentScan {
    let mut scan = SegmentScan {
        seq: None,
        records: Vec::new(),
        valid_len: 0,
        stop: ScanStop::End,
    };
    let header = if bytes.is_empty() {
        Err(CorruptReason::MissingHeader)
    } else {
        parse_frame(bytes).and_then(|(kind, payload)| parse_header(kind, payload))
    };
    match header {
        Ok(seq) => scan.seq = Some(seq),
        Err(reason) => {
            scan.stop = ScanStop::Corrupt { offset: 0, reason };
            return scan;
        }
    }
    let mut at = SEGMENT_HEADER_BYTES as usize;
    while at < bytes.len() {
        let reason = match parse_frame(&bytes[at..]) {
            Ok((HEADER_KIND, _)) => CorruptReason::ReservedKind,
            Ok((kind, payload)) => {
                scan.records.push(Record::new(kind, payload));
                at += RECORD_FRAME_BYTES + payload.len();
                continue;
            }
            Err(reason) => reason,
        };
        scan.stop = ScanStop::Corrupt {
            offset: at as u64,
            reason,
        };
        break;
    }
    debug_assert!(
        at <= bytes.len(),
        "parse_frame never returns past the input"
    );
    scan.valid_len = at as u64;
    scan
}

/// An open write-ahead log. Single writer: it assumes it owns its directory.
pub struct Wal {
    disk: Arc<dyn Disk>,
    dir: String,
    options: WalOptions,
    /// Oldest segment on disk.
    first_seq: u64,
    /// The segment appends go to; always the newest.
    seq: u64,
    /// Length of the current segment, all of it valid log.
    len: u64,
    /// The current segment may hold bytes not yet fsynced.
    dirty: bool,
    poisoned: bool,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .field("first_seq", &self.first_seq)
            .field("seq", &self.seq)
            .field("len", &self.len)
            .field("dirty", &self.dirty)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir` with default options; see [`Wal::open_with`].
    pub fn open(disk: Arc<dyn Disk>, dir: &str) -> Result<(Wal, Vec<Record>), WalError> {
        Wal::open_with(disk, dir, WalOptions::default())
    }

    /// Opens (or creates) the log in `dir` and returns every record in it, in order.
    ///
    /// A torn tail of the last segment is logged and cut off. The last segment is then
    /// fsynced, so every returned record is durable: a caller that acts on what it recovered
    /// (a Raft node voting on its log) must not see those records vanish in a later crash.
    pub fn open_with(
        disk: Arc<dyn Disk>,
        dir: &str,
        options: WalOptions,
    ) -> Result<(Wal, Vec<Record>), WalError> {
        let seqs = list_segments(&*disk, dir)?;
        let mut wal = Wal {
            disk,
            dir: dir.to_owned(),
            options,
            first_seq: FIRST_SEGMENT_SEQ,
            seq: FIRST_SEGMENT_SEQ,
            len: 0,
            dirty: false,
            poisoned: false,
        };
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
            wal.create_segment(FIRST_SEGMENT_SEQ)?;
            return Ok((wal, Vec::new()));
        };
        let mut records = Vec::new();
        for &seq in &seqs {
            wal.len = wal.recover_segment(seq, seq == last, &mut records)?;
        }
        wal.first_seq = first;
        wal.seq = last;
        wal.disk.fsync(&wal.segment_path(last))?;
        Ok((wal, records))
    }

    /// Reads segment `seq` into `records` and returns its valid length; cuts off a bad tail
    /// if it is the last segment.
    fn recover_segment(
        &self,
        seq: u64,
        last: bool,
        records: &mut Vec<Record>,
    ) -> Result<u64, WalError> {
        let path = self.segment_path(seq);
        let bytes = self.disk.read(&path)?;
        let scan = decode_segment(&bytes);
        let corrupt = |offset, reason| WalError::Corrupt {
            segment: path.clone(),
            offset,
            reason,
        };
        match (scan.seq, &scan.stop) {
            (None, ScanStop::Corrupt { offset, reason }) => {
                return Err(corrupt(*offset, reason.clone()))
            }
            (None, ScanStop::End) => unreachable!("decode_segment reports why a header is bad"),
            (Some(found), _) if found != seq => {
                let reason = CorruptReason::SeqMismatch {
                    expected: seq,
                    found,
                };
                return Err(corrupt(0, reason));
            }
            (Some(_), _) => {}
        }
        if let ScanStop::Corrupt { offset, reason } = scan.stop {
            if !last {
                return Err(corrupt(offset, reason));
            }
            tracing::warn!(
                segment = %path,
                offset,
                %reason,
                dropped_bytes = bytes.len() as u64 - scan.valid_len,
                "wal: cutting off torn tail of the last segment"
            );
            self.disk.truncate(&path, scan.valid_len)?;
        }
        records.extend(scan.records);
        Ok(scan.valid_len)
    }

    /// Appends `records` to the current segment with one disk write. Not durable until
    /// [`Wal::sync`]. Invalid records are refused before anything is written.
    pub fn append(&mut self, records: &[Record]) -> Result<(), WalError> {
        self.check_usable()?;
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for record in records {
            encode_record(record, &mut buf)?;
        }
        let has_records = self.len > SEGMENT_HEADER_BYTES;
        if has_records && self.len + buf.len() as u64 > self.options.segment_size_bytes {
            self.rotate()?;
        }
        self.write(&buf)
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), WalError> {
        let path = self.segment_path(self.seq);
        self.dirty = true;
        match self.disk.append(&path, buf) {
            Ok(new_len) => {
                let expected = self.len + buf.len() as u64;
                debug_assert_eq!(new_len, expected, "someone else wrote to {path}");
                if new_len != expected {
                    self.poisoned = true;
                    return Err(WalError::Io(io::Error::other(format!(
                        "{path} is {new_len} bytes after append, expected {expected}"
                    ))));
                }
                self.len = new_len;
                Ok(())
            }
            Err(e) => {
                // A real disk may have written part of the batch; later records must not land
                // after that garbage, or recovery would stop there and lose them.
                if self.disk.truncate(&path, self.len).is_err() {
                    self.poisoned = true;
                }
                Err(e.into())
            }
        }
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if !self.dirty {
            return Ok(());
        }
        if let Err(e) = self.disk.fsync(&self.segment_path(self.seq)) {
            self.poisoned = true;
            return Err(e.into());
        }
        self.dirty = false;
        Ok(())
    }

    /// Syncs the current segment and starts a new one; returns the new segment's number.
    ///
    /// For compaction: start a segment, append the records to keep, then
    /// [`Wal::remove_segments_before`] the returned number.
    pub fn start_new_segment(&mut self) -> Result<u64, WalError> {
        self.check_usable()?;
        self.rotate()?;
        Ok(self.seq)
    }

    /// Syncs, then deletes every segment numbered below `seq` (oldest first, so a crash
    /// midway leaves a contiguous run). `seq` may be at most the current segment.
    pub fn remove_segments_before(&mut self, seq: u64) -> Result<(), WalError> {
        self.check_usable()?;
        if seq > self.seq {
            return Err(WalError::InvalidRequest(format!(
                "cannot remove segments before {seq}: the current segment is {}",
                self.seq
            )));
        }
        // The records the caller kept must be durable before the old copies disappear.
        self.sync()?;
        while self.first_seq < seq {
            self.disk.remove(&self.segment_path(self.first_seq))?;
            self.first_seq += 1;
        }
        Ok(())
    }

    /// The segment appends currently go to.
    pub fn current_segment(&self) -> u64 {
        self.seq
    }

    /// The oldest segment still on disk.
    pub fn first_segment(&self) -> u64 {
        self.first_seq
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        Ok(())
    }

    fn segment_path(&self, seq: u64) -> String {
        join(&self.dir, &segment_file_name(seq))
    }

    /// Moves appends to a new segment. The old one is synced first: recovery tolerates a torn
    /// tail only in the last segment.
    fn rotate(&mut self) -> Result<(), WalError> {
        self.sync()?;
        let next = self.seq.checked_add(1).ok_or_else(|| {
            WalError::InvalidRequest("segment sequence numbers exhausted".to_owned())
        })?;
        self.create_segment(next)
    }

    /// Creates segment `seq` complete and durable (header written, fsynced, then renamed into
    /// place), so a crash never leaves a segment with a torn header.
    fn create_segment(&mut self, seq: u64) -> Result<(), WalError> {
        let path = self.segment_path(seq);
        let temp = join(&self.dir, &format!("{seq:016x}{TEMP_SUFFIX}"));
        let header = encode_segment_header(seq);
        self.disk.create(&temp)?;
        self.disk.append(&temp, &header)?;
        self.disk.fsync(&temp)?;
        self.disk.rename(&temp, &path)?;
        debug_assert!(
            seq > self.seq || self.len == 0,
            "segments only move forward"
        );
        self.seq = seq;
        self.len = header.len() as u64;
        self.dirty = false;
        Ok(())
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Sorted sequence numbers of the segments in `dir`; removes leftover temp segments and
/// rejects misnamed segments and gaps.
fn list_segments(disk: &dyn Disk, dir: &str) -> Result<Vec<u64>, WalError> {
    let mut seqs = Vec::new();
    for name in disk.list(dir)? {
        if name.ends_with(TEMP_SUFFIX) {
            tracing::info!(file = %name, "wal: removing unfinished segment");
            disk.remove(&join(dir, &name))?;
        } else if !name.ends_with(SEGMENT_SUFFIX) {
            tracing::warn!(file = %name, dir, "wal: ignoring a file that is not a segment");
        } else if let Some(seq) = parse_segment_name(&name) {
            seqs.push(seq);
        } else {
            return Err(WalError::Corrupt {
                segment: join(dir, &name),
                offset: 0,
                reason: CorruptReason::BadSegmentName,
            });
        }
    }
    seqs.sort_unstable();
    for pair in seqs.windows(2) {
        if pair[1] != pair[0] + 1 {
            let missing = pair[0] + 1;
            return Err(WalError::Corrupt {
                segment: join(dir, &segment_file_name(missing)),
                offset: 0,
                reason: CorruptReason::MissingSegment { seq: missing },
            });
        }
    }
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::disk::{CrashMode, RealDisk, SimDisk};
    use proptest::prelude::*;

    const DIR: &str = "wal";
    /// Small enough that a few dozen records span several segments.
    const SMALL: WalOptions = WalOptions {
        segment_size_bytes: 160,
    };

    fn sim() -> (SimDisk, Arc<dyn Disk>) {
        let disk = SimDisk::new();
        (disk.clone(), Arc::new(disk))
    }

    fn rec(n: usize) -> Record {
        Record::new(1 + (n % 200) as u8, format!("record-{n}"))
    }

    fn recs(range: std::ops::Range<usize>) -> Vec<Record> {
        range.map(rec).collect()
    }

    fn seg(seq: u64) -> String {
        join(DIR, &segment_file_name(seq))
    }

    fn open(disk: &Arc<dyn Disk>, options: WalOptions) -> Result<(Wal, Vec<Record>), WalError> {
        Wal::open_with(disk.clone(), DIR, options)
    }

    /// Byte offset of record `index` in a segment holding `records`.
    fn offset_of(records: &[Record], index: usize) -> u64 {
        let frames: usize = records[..index]
            .iter()
            .map(|r| RECORD_FRAME_BYTES + r.payload.len())
            .sum();
        SEGMENT_HEADER_BYTES + frames as u64
    }

    fn corrupt_reason(
        result: Result<(Wal, Vec<Record>), WalError>,
    ) -> (String, u64, CorruptReason) {
        match result {
            Err(WalError::Corrupt {
                segment,
                offset,
                reason,
            }) => (segment, offset, reason),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    fn check_round_trip(disk: Arc<dyn Disk>) {
        let (mut wal, got) = open(&disk, WalOptions::default()).unwrap();
        assert!(got.is_empty());
        wal.append(&recs(0..3)).unwrap();
        wal.append(&[Record::new(255, Vec::new())]).unwrap();
        wal.append(&[]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let mut want = recs(0..3);
        want.push(Record::new(255, Vec::new()));
        let (mut wal, got) = open(&disk, WalOptions::default()).unwrap();
        assert_eq!(got, want);
        wal.append(&recs(3..5)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        want.extend(recs(3..5));
        assert_eq!(open(&disk, WalOptions::default()).unwrap().1, want);
        assert_eq!(disk.list(DIR).unwrap(), vec![segment_file_name(1)]);
    }

    #[test]
    fn a_flipped_length_over_zero_bytes_is_caught() {
        // CRC-32 of 0xff 0xff 0xff 0xff leaves the register at zero, so appending zero bytes
        // keeps the checksum; without the length in the checksum, growing this record's length
        // by one (over the next record's zero length byte) decoded (found by fuzzing).
        let mut bytes = encode_segment_header(1);
        let start = bytes.len();
        encode_record(&Record::new(255, vec![255, 255, 255, 0]), &mut bytes).unwrap();
        encode_record(&Record::new(1, vec![]), &mut bytes).unwrap();
        assert_eq!(decode_segment(&bytes).records.len(), 2);
        bytes[start] ^= 1;
        let scan = decode_segment(&bytes);
        assert!(scan.records.is_empty(), "{:?}", scan.records);
        assert!(matches!(scan.stop, ScanStop::Corrupt { .. }));
    }

    #[test]
    fn round_trip_on_sim_disk() {
        check_round_trip(sim().1);
    }

    #[test]
    fn round_trip_on_real_disk() {
        let dir = tempfile::tempdir().unwrap();
        check_round_trip(Arc::new(RealDisk::new(dir.path()).unwrap()));
    }

    #[test]
    fn rotation_splits_segments_and_keeps_order() {
        let (_, disk) = sim();
        let (mut wal, _) = open(&disk, SMALL).unwrap();
        for n in 0..40 {
            wal.append(&[rec(n)]).unwrap();
        }
        wal.sync().unwrap();
        let names = disk.list(DIR).unwrap();
        assert!(names.len() > 5, "{names:?}");
        assert_eq!(wal.current_segment(), names.len() as u64);
        for name in &names {
            assert!(disk.len(&join(DIR, name)).unwrap() <= SMALL.segment_size_bytes);
        }
        // One batch bigger than a segment still goes into a single segment.
        let big = recs(100..120);
        wal.append(&big).unwrap();
        wal.sync().unwrap();
        let mut want = recs(0..40);
        want.extend(big);
        assert_eq!(open(&disk, SMALL).unwrap().1, want);
    }

    #[test]
    fn crash_recovers_a_prefix_holding_every_synced_record() {
        for mode in [CrashMode::DropUnsynced, CrashMode::TearLastWrite] {
            let mut lengths = std::collections::BTreeSet::new();
            for entropy in 0..64 {
                let (sim_disk, disk) = sim();
                let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
                wal.append(&recs(0..10)).unwrap();
                wal.sync().unwrap();
                for n in 10..20 {
                    wal.append(&[rec(n)]).unwrap();
                }
                drop(wal);
                sim_disk.crash(mode, entropy);
                let got = open(&disk, WalOptions::default()).unwrap().1;
                assert!(got.len() >= 10, "{mode:?}/{entropy}: lost synced records");
                assert_eq!(got, recs(0..got.len()));
                lengths.insert(got.len());
            }
            match mode {
                CrashMode::DropUnsynced => assert_eq!(lengths, [10].into()),
                CrashMode::TearLastWrite => assert!(lengths.len() > 5, "{lengths:?}"),
            }
        }
    }

    #[test]
    fn torn_tail_is_cut_off_and_appends_continue() {
        let (sim_disk, disk) = sim();
        let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
        wal.append(&recs(0..6)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let good = offset_of(&recs(0..6), 5);
        disk.truncate(&seg(1), good + 3).unwrap();
        let (mut wal, got) = open(&disk, WalOptions::default()).unwrap();
        assert_eq!(got, recs(0..5));
        assert_eq!(disk.len(&seg(1)).unwrap(), good);
        assert_eq!(
            sim_disk.synced_len(&seg(1)),
            Some(good),
            "the cut must be durable"
        );
        wal.append(&recs(5..8)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        assert_eq!(open(&disk, WalOptions::default()).unwrap().1, recs(0..8));
    }

    #[test]
    fn bit_flip_in_last_segment_cuts_from_the_damaged_record() {
        let (_, disk) = sim();
        let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
        wal.append(&recs(0..10)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let at = offset_of(&recs(0..10), 4);
        let mut bytes = disk.read(&seg(1)).unwrap();
        bytes[at as usize + RECORD_FRAME_BYTES + 2] ^= 0x10;
        assert_eq!(
            decode_segment(&bytes).stop,
            ScanStop::Corrupt {
                offset: at,
                reason: CorruptReason::BadChecksum
            }
        );
        disk.write_at(&seg(1), 0, &bytes).unwrap();
        assert_eq!(open(&disk, WalOptions::default()).unwrap().1, recs(0..4));
        assert_eq!(disk.len(&seg(1)).unwrap(), at);
    }

    fn three_segments(disk: &Arc<dyn Disk>) -> Vec<Record> {
        let (mut wal, _) = open(disk, SMALL).unwrap();
        let mut n = 0;
        while wal.current_segment() < 3 {
            wal.append(&[rec(n)]).unwrap();
            n += 1;
        }
        wal.sync().unwrap();
        recs(0..n)
    }

    #[test]
    fn damage_in_an_older_segment_is_an_error() {
        let (_, disk) = sim();
        let all = three_segments(&disk);
        assert_eq!(open(&disk, SMALL).unwrap().1, all);
        let first = disk.read(&seg(1)).unwrap();
        let mut flipped = first.clone();
        let at = SEGMENT_HEADER_BYTES as usize + RECORD_FRAME_BYTES;
        flipped[at] ^= 1;
        disk.write_at(&seg(1), 0, &flipped).unwrap();
        let (segment, offset, reason) = corrupt_reason(open(&disk, SMALL));
        assert_eq!(
            (segment, offset, reason),
            (seg(1), SEGMENT_HEADER_BYTES, CorruptReason::BadChecksum)
        );
        // A torn tail is only excusable in the last segment.
        disk.write_at(&seg(1), 0, &first).unwrap();
        disk.truncate(&seg(2), disk.len(&seg(2)).unwrap() - 1)
            .unwrap();
        let (segment, _, reason) = corrupt_reason(open(&disk, SMALL));
        assert_eq!(segment, seg(2));
        assert!(
            matches!(reason, CorruptReason::TruncatedPayload { .. }),
            "{reason:?}"
        );
    }

    #[test]
    fn missing_or_misnamed_segments_are_errors() {
        let (_, disk) = sim();
        three_segments(&disk);
        let middle = disk.read(&seg(2)).unwrap();
        disk.remove(&seg(2)).unwrap();
        let (segment, _, reason) = corrupt_reason(open(&disk, SMALL));
        assert_eq!(
            (segment, reason),
            (seg(2), CorruptReason::MissingSegment { seq: 2 })
        );
        disk.create(&seg(2)).unwrap();
        disk.append(&seg(2), &middle).unwrap();
        disk.create(&join(DIR, "2.wal")).unwrap();
        let (_, _, reason) = corrupt_reason(open(&disk, SMALL));
        assert_eq!(reason, CorruptReason::BadSegmentName);
        disk.remove(&join(DIR, "2.wal")).unwrap();
        // Unrelated files are left alone; unfinished segments are cleaned up.
        disk.create(&join(DIR, "notes.txt")).unwrap();
        disk.create(&join(DIR, "0000000000000004.wal.tmp")).unwrap();
        open(&disk, SMALL).unwrap();
        assert!(disk.exists(&join(DIR, "notes.txt")));
        assert!(!disk.exists(&join(DIR, "0000000000000004.wal.tmp")));
    }

    #[test]
    fn bad_headers_are_errors_even_in_the_last_segment() {
        let cases: [(Vec<u8>, CorruptReason); 5] = [
            (Vec::new(), CorruptReason::MissingHeader),
            (
                b"definitely not a wal segment".to_vec(),
                CorruptReason::LengthTooLarge { len: 0x6966_6564 }, // "defi" read as a length
            ),
            (
                encode_segment_header(7),
                CorruptReason::SeqMismatch {
                    expected: 1,
                    found: 7,
                },
            ),
            (
                {
                    let mut out = Vec::new();
                    encode_frame(
                        HEADER_KIND,
                        b"RKUBEWAL\x03\0\0\0\x01\0\0\0\0\0\0\0",
                        &mut out,
                    );
                    out
                },
                CorruptReason::UnsupportedVersion { version: 3 },
            ),
            (
                {
                    let mut out = Vec::new();
                    encode_frame(
                        HEADER_KIND,
                        b"NOTAWAL!\x02\0\0\0\x01\0\0\0\0\0\0\0",
                        &mut out,
                    );
                    out
                },
                CorruptReason::BadMagic,
            ),
        ];
        for (bytes, want) in cases {
            let (_, disk) = sim();
            disk.create(&seg(1)).unwrap();
            disk.append(&seg(1), &bytes).unwrap();
            let (segment, offset, reason) = corrupt_reason(open(&disk, SMALL));
            assert_eq!((segment, offset, reason), (seg(1), 0, want));
        }
        let scan = decode_segment(&recs(0..1).iter().fold(Vec::new(), |mut out, r| {
            encode_record(r, &mut out).unwrap();
            out
        }));
        assert_eq!(
            scan.stop,
            ScanStop::Corrupt {
                offset: 0,
                reason: CorruptReason::NotAHeader { kind: 1 }
            }
        );
    }

    #[test]
    fn huge_length_fields_are_corruption_without_allocation() {
        let mut bytes = encode_segment_header(1);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0xAB; 5]);
        let scan = decode_segment(&bytes);
        assert_eq!(
            scan.stop,
            ScanStop::Corrupt {
                offset: SEGMENT_HEADER_BYTES,
                reason: CorruptReason::LengthTooLarge { len: u32::MAX }
            }
        );
        // At the limit, the length is checked against the bytes present, not trusted.
        let mut at_limit = encode_segment_header(1);
        at_limit.extend_from_slice(&(MAX_RECORD_BYTES as u32).to_le_bytes());
        at_limit.extend_from_slice(&[0xAB; 5]);
        let reason = CorruptReason::TruncatedPayload {
            len: MAX_RECORD_BYTES as u32,
        };
        assert_eq!(
            decode_segment(&at_limit).stop,
            ScanStop::Corrupt {
                offset: SEGMENT_HEADER_BYTES,
                reason
            }
        );
        // In the last segment it is a torn tail like any other.
        let (_, disk) = sim();
        let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
        wal.append(&recs(0..2)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        disk.append(&seg(1), &bytes[SEGMENT_HEADER_BYTES as usize..])
            .unwrap();
        assert_eq!(open(&disk, WalOptions::default()).unwrap().1, recs(0..2));
    }

    #[test]
    fn zero_filled_tail_is_cut_off() {
        let (_, disk) = sim();
        let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
        wal.append(&recs(0..3)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let good = disk.len(&seg(1)).unwrap();
        disk.append(&seg(1), &[0; 100]).unwrap();
        let scan = decode_segment(&disk.read(&seg(1)).unwrap());
        assert_eq!(
            scan.stop,
            ScanStop::Corrupt {
                offset: good,
                reason: CorruptReason::ZeroFilled
            }
        );
        assert_eq!(open(&disk, WalOptions::default()).unwrap().1, recs(0..3));
        assert_eq!(disk.len(&seg(1)).unwrap(), good);
    }

    #[test]
    fn invalid_records_are_refused_before_writing() {
        let (_, disk) = sim();
        let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
        let before = disk.len(&seg(1)).unwrap();
        let reserved = [rec(0), Record::new(HEADER_KIND, b"x".to_vec())];
        assert!(matches!(wal.append(&reserved), Err(WalError::ReservedKind)));
        let huge = [rec(0), Record::new(1, vec![0; MAX_RECORD_BYTES + 1])];
        assert!(matches!(
            wal.append(&huge),
            Err(WalError::TooLarge { len, max: MAX_RECORD_BYTES }) if len == MAX_RECORD_BYTES + 1
        ));
        assert_eq!(disk.len(&seg(1)).unwrap(), before);
        wal.append(&recs(0..1)).unwrap();
    }

    #[test]
    fn failed_write_leaves_the_log_usable() {
        let (sim_disk, disk) = sim();
        let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
        wal.append(&recs(0..2)).unwrap();
        sim_disk.fail_next_write();
        assert!(matches!(wal.append(&recs(2..4)), Err(WalError::Io(_))));
        wal.append(&recs(4..5)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let mut want = recs(0..2);
        want.extend(recs(4..5));
        assert_eq!(open(&disk, WalOptions::default()).unwrap().1, want);
    }

    #[test]
    fn failed_fsync_poisons_until_reopened() {
        let (sim_disk, disk) = sim();
        let (mut wal, _) = open(&disk, WalOptions::default()).unwrap();
        wal.append(&recs(0..2)).unwrap();
        sim_disk.fail_next_fsync();
        assert!(matches!(wal.sync(), Err(WalError::Io(_))));
        assert!(matches!(wal.sync(), Err(WalError::Poisoned)));
        assert!(matches!(wal.append(&recs(2..3)), Err(WalError::Poisoned)));
        assert!(matches!(wal.start_new_segment(), Err(WalError::Poisoned)));
        drop(wal);
        let (_, got) = open(&disk, WalOptions::default()).unwrap();
        assert_eq!(got, recs(0..2));
        assert_eq!(
            sim_disk.synced_len(&seg(1)),
            Some(disk.len(&seg(1)).unwrap())
        );
    }

    #[test]
    fn compaction_keeps_only_the_new_segments() {
        let (sim_disk, disk) = sim();
        three_segments(&disk);
        let (mut wal, _) = open(&disk, SMALL).unwrap();
        assert_eq!(wal.first_segment(), 1);
        let seq = wal.start_new_segment().unwrap();
        assert_eq!(seq, 4);
        wal.append(&recs(500..502)).unwrap();
        let bad = wal.remove_segments_before(seq + 1);
        assert!(matches!(bad, Err(WalError::InvalidRequest(_))), "{bad:?}");
        wal.remove_segments_before(seq).unwrap();
        assert_eq!(wal.first_segment(), seq);
        assert_eq!(disk.list(DIR).unwrap(), vec![segment_file_name(seq)]);
        drop(wal);
        sim_disk.crash(CrashMode::DropUnsynced, 0);
        assert_eq!(open(&disk, SMALL).unwrap().1, recs(500..502));
    }

    // ---- property tests ----

    fn record_strategy() -> impl Strategy<Value = Record> {
        (1u8..=255, proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(kind, payload)| Record { kind, payload })
    }

    #[derive(Debug, Clone)]
    enum WalOp {
        Append(Vec<Record>),
        Sync,
        Crash(CrashMode, u64),
        Reopen,
        Rotate,
        Compact(usize),
        FailWrite,
        FailFsync,
    }

    fn wal_op_strategy() -> impl Strategy<Value = WalOp> {
        let mode = prop_oneof![
            Just(CrashMode::DropUnsynced),
            Just(CrashMode::TearLastWrite)
        ];
        prop_oneof![
            8 => proptest::collection::vec(record_strategy(), 1..4).prop_map(WalOp::Append),
            3 => Just(WalOp::Sync),
            2 => (mode, any::<u64>()).prop_map(|(m, e)| WalOp::Crash(m, e)),
            1 => Just(WalOp::Reopen),
            1 => Just(WalOp::Rotate),
            1 => (0..5usize).prop_map(WalOp::Compact),
            1 => Just(WalOp::FailWrite),
            1 => Just(WalOp::FailFsync),
        ]
    }

    /// Drives a Wal on a SimDisk alongside the list of records it must hold.
    struct Harness {
        sim: SimDisk,
        disk: Arc<dyn Disk>,
        wal: Option<Wal>,
        /// Every record appended and not compacted away, in order.
        appended: Vec<Record>,
        /// How many leading records of `appended` are known durable.
        synced: usize,
    }

    fn assert_injected(err: &WalError) {
        let injected = matches!(err, WalError::Io(e) if e.to_string().contains("injected"));
        assert!(
            injected || matches!(err, WalError::Poisoned),
            "unexpected error {err:?}"
        );
    }

    impl Harness {
        fn new() -> Harness {
            let (sim, disk) = sim();
            let mut h = Harness {
                sim,
                disk,
                wal: None,
                appended: Vec::new(),
                synced: 0,
            };
            assert!(h.reopen().is_empty());
            h
        }

        fn wal(&mut self) -> &mut Wal {
            self.wal
                .as_mut()
                .expect("harness keeps the wal open between ops")
        }

        /// Opens, retrying while armed faults make opening fail.
        fn reopen(&mut self) -> Vec<Record> {
            self.wal = None;
            for _ in 0..3 {
                match open(&self.disk, SMALL) {
                    Ok((wal, got)) => {
                        self.wal = Some(wal);
                        return got;
                    }
                    Err(e) => assert_injected(&e),
                }
            }
            panic!("open kept failing");
        }

        /// A restart without a crash loses nothing, even after an injected failure.
        fn restart(&mut self) {
            let got = self.reopen();
            assert_eq!(got, self.appended);
            self.synced = got.len();
        }

        fn recover_from(&mut self, err: WalError) {
            assert_injected(&err);
            self.restart();
        }

        fn crash(&mut self, mode: CrashMode, entropy: u64) {
            self.wal = None;
            self.sim.crash(mode, entropy);
            let got = self.reopen();
            assert!(
                got.len() >= self.synced,
                "lost synced records: {} < {}",
                got.len(),
                self.synced
            );
            assert!(got.len() <= self.appended.len());
            assert_eq!(got[..], self.appended[..got.len()]);
            self.synced = got.len();
            self.appended = got;
        }

        fn compact(&mut self, keep: usize) -> Result<(), WalError> {
            let boundary = self.appended.len();
            let seq = self.wal().start_new_segment()?;
            self.synced = boundary;
            let kept = self.appended[boundary.saturating_sub(keep)..].to_vec();
            self.wal().append(&kept)?;
            self.appended.extend(kept);
            self.wal().remove_segments_before(seq)?;
            self.appended.drain(..boundary);
            self.synced = self.appended.len();
            Ok(())
        }

        fn step(&mut self, op: &WalOp) {
            let result = match op {
                WalOp::Append(batch) => self
                    .wal()
                    .append(batch)
                    .map(|()| self.appended.extend_from_slice(batch)),
                WalOp::Sync => self
                    .wal()
                    .sync()
                    .map(|()| self.synced = self.appended.len()),
                WalOp::Rotate => self
                    .wal()
                    .start_new_segment()
                    .map(|_| self.synced = self.appended.len()),
                WalOp::Compact(keep) => self.compact(*keep),
                WalOp::Crash(mode, entropy) => {
                    self.crash(*mode, *entropy);
                    Ok(())
                }
                WalOp::Reopen => {
                    self.restart();
                    Ok(())
                }
                WalOp::FailWrite => {
                    self.sim.fail_next_write();
                    Ok(())
                }
                WalOp::FailFsync => {
                    self.sim.fail_next_fsync();
                    Ok(())
                }
            };
            if let Err(err) = result {
                self.recover_from(err);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn recovery_returns_a_prefix_holding_every_synced_record(
            ops in proptest::collection::vec(wal_op_strategy(), 1..50)
        ) {
            let mut harness = Harness::new();
            for op in &ops {
                harness.step(op);
            }
            harness.crash(CrashMode::DropUnsynced, 0);
        }

        #[test]
        fn decode_segment_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let scan = decode_segment(&bytes);
            prop_assert!(scan.valid_len <= bytes.len() as u64);
            let mut headed = encode_segment_header(3);
            headed.extend_from_slice(&bytes);
            let scan = decode_segment(&headed);
            prop_assert_eq!(scan.seq, Some(3));
            prop_assert!(scan.valid_len <= headed.len() as u64);
        }

        #[test]
        fn damaged_segments_decode_to_a_prefix(
            records in proptest::collection::vec(record_strategy(), 0..12),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            mask in 1u8..,
            do_flip in any::<bool>(),
        ) {
            let mut bytes = encode_segment_header(1);
            for r in &records {
                encode_record(r, &mut bytes).unwrap();
            }
            prop_assert_eq!(&decode_segment(&bytes).records, &records);
            bytes.truncate(cut.index(bytes.len() + 1));
            if do_flip && !bytes.is_empty() {
                let i = flip.index(bytes.len());
                bytes[i] ^= mask;
            }
            let scan = decode_segment(&bytes);
            prop_assert!(records.starts_with(&scan.records));
            // Cutting at valid_len is what open does; the result must then decode cleanly.
            if scan.seq.is_some() {
                let again = decode_segment(&bytes[..scan.valid_len as usize]);
                prop_assert_eq!(again.stop, ScanStop::End);
                prop_assert_eq!(again.records, scan.records);
            }
        }
    }
}
