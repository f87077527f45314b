//! The disk seam: the [`Disk`] trait and its two back-ends.
//!
//! Everything rkube persists (the store's WAL and snapshots) goes through [`Disk`], so the same
//! storage code runs on real files ([`RealDisk`]) and inside the deterministic simulation
//! ([`SimDisk`]). This is the only module allowed to name `std::fs`.
//!
//! `SimDisk` exists because madsim's own file system cannot lose data: its `sync_all` does
//! nothing and its power failure is empty. `SimDisk` remembers, per file, which bytes were
//! fsynced, so a simulated crash can drop or tear exactly the unsynced part, and it can fail the
//! next fsync or write on command. That is what lets the simulation check "no acknowledged write
//! is lost by a crash".
//!
//! Paths are `'/'`-separated and relative to the disk's root. Absolute paths, `..`, `.` and
//! empty components are rejected with [`io::ErrorKind::InvalidInput`], so both back-ends agree
//! on what a path names. The API is synchronous: the store calls it from its own driver task.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A simulated file may not grow past this, so a buggy `write_at` offset fails instead of
/// allocating the host's memory away (a real disk would make a sparse file).
pub const SIM_MAX_FILE_BYTES: u64 = 1 << 30;

/// Byte storage for one node. Implementations must be usable from any thread.
pub trait Disk: Send + Sync + 'static {
    /// Creates `path` (and its parent directories), or truncates it to empty if it exists.
    fn create(&self, path: &str) -> io::Result<()>;
    /// Appends `data` to an existing file and returns its new length; `NotFound` if missing.
    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64>;
    /// Writes `data` at `offset` of an existing file, extending it (zero-filled) if needed.
    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Reads the whole file.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// The file's current length in bytes.
    fn len(&self, path: &str) -> io::Result<u64>;
    /// Shrinks or zero-extends the file to `len` bytes.
    fn truncate(&self, path: &str, len: u64) -> io::Result<()>;
    /// Makes the file's current contents durable.
    fn fsync(&self, path: &str) -> io::Result<()>;
    /// Atomically renames a file, replacing `to` if it exists; creates `to`'s parents.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &str) -> io::Result<()>;
    /// Names (not paths) of the files directly in `dir`, sorted; empty if `dir` is missing.
    /// `""` names the root. Subdirectories are not listed.
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;
    /// Whether a file (not a directory) exists at `path`.
    fn exists(&self, path: &str) -> bool;
    /// Makes a file readable by its owner only (keys, credentials). A disk without
    /// permissions (the simulation's) has nothing to do.
    fn make_private(&self, _path: &str) -> io::Result<()> {
        Ok(())
    }
}

/// Replaces `path` atomically and durably: the bytes go to a temporary file (made private
/// first when `private`, so a secret is never readable by others), which is fsynced and
/// renamed into place.
pub fn replace_file(disk: &dyn Disk, path: &str, bytes: &[u8], private: bool) -> io::Result<()> {
    let tmp = format!("{path}.tmp");
    disk.create(&tmp)?;
    if private {
        disk.make_private(&tmp)?;
    }
    disk.append(&tmp, bytes)?;
    disk.fsync(&tmp)?;
    disk.rename(&tmp, path)
}

/// The disk of a component that keeps nothing locally (the API server): every operation
/// fails with a clear error instead of touching the file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDisk;

fn no_disk() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this component has no local disk",
    )
}

impl Disk for NoDisk {
    fn create(&self, _: &str) -> io::Result<()> {
        Err(no_disk())
    }
    fn append(&self, _: &str, _: &[u8]) -> io::Result<u64> {
        Err(no_disk())
    }
    fn write_at(&self, _: &str, _: u64, _: &[u8]) -> io::Result<()> {
        Err(no_disk())
    }
    fn read(&self, _: &str) -> io::Result<Vec<u8>> {
        Err(no_disk())
    }
    fn len(&self, _: &str) -> io::Result<u64> {
        Err(no_disk())
    }
    fn truncate(&self, _: &str, _: u64) -> io::Result<()> {
        Err(no_disk())
    }
    fn fsync(&self, _: &str) -> io::Result<()> {
        Err(no_disk())
    }
    fn rename(&self, _: &str, _: &str) -> io::Result<()> {
        Err(no_disk())
    }
    fn remove(&self, _: &str) -> io::Result<()> {
        Err(no_disk())
    }
    fn list(&self, _: &str) -> io::Result<Vec<String>> {
        Err(no_disk())
    }
    fn exists(&self, _: &str) -> bool {
        false
    }
}

fn invalid_path(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "invalid disk path {path:?}: \
             must be relative and '/'-separated, without '.', '..' or empty parts"
        ),
    )
}

/// Rejects anything that could escape the root or that two back-ends could spell differently.
fn check_path(path: &str) -> io::Result<()> {
    let bad_part = |c: &str| c.is_empty() || c == "." || c == "..";
    if path.is_empty() || path.contains('\0') || path.split('/').any(bad_part) {
        return Err(invalid_path(path));
    }
    Ok(())
}

/// Like [`check_path`], but `""` (the root) is allowed.
fn check_dir(dir: &str) -> io::Result<()> {
    if dir.is_empty() {
        Ok(())
    } else {
        check_path(dir)
    }
}

/// The parent directory of a checked path, `""` for the root.
fn parent_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Every proper ancestor directory of a checked path, outermost first (`"a"`, `"a/b"` for
/// `"a/b/c"`).
fn ancestors_of(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Locks a mutex even if a panicking thread poisoned it: the guarded maps stay consistent
/// because every mutation is a single insert/remove/replace.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// RealDisk
// ---------------------------------------------------------------------------------------------

/// A [`Disk`] over a directory of the real file system, with real fsync.
///
/// Namespace changes (create, rename, remove, new directories) fsync the parent directory, so
/// after the call returns they survive power loss; file contents need [`Disk::fsync`].
#[derive(Debug)]
pub struct RealDisk {
    root: PathBuf,
    /// Append handles kept open so the WAL's hot path does not reopen the file per append.
    handles: Mutex<BTreeMap<String, File>>,
}

impl RealDisk {
    /// Uses (and creates if needed) the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<RealDisk> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(RealDisk {
            root,
            handles: Mutex::new(BTreeMap::new()),
        })
    }

    /// The directory this disk lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        check_path(path)?;
        Ok(self.root.join(path))
    }

    /// A cached handle would otherwise keep writing to an unlinked or replaced inode.
    fn forget(&self, path: &str) {
        lock(&self.handles).remove(path);
    }

    /// Creates the missing ancestors of `path`, syncing each new directory's parent so the
    /// directory entry itself is durable.
    fn ensure_parents(&self, path: &str) -> io::Result<()> {
        for dir in ancestors_of(path) {
            match fs::create_dir(self.root.join(dir)) {
                Ok(()) => sync_dir(&self.root.join(parent_of(dir)))?,
                // A file in the way is reported by the operation that needs the directory.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn sync_parent(&self, path: &str) -> io::Result<()> {
        sync_dir(&self.root.join(parent_of(path)))
    }

    /// Fails like the OS would for a directory, so callers see one error for "not a file".
    fn require_file(&self, full: &Path) -> io::Result<fs::Metadata> {
        let meta = fs::metadata(full)?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", full.display()),
            ));
        }
        Ok(meta)
    }
}

/// Makes a directory's entries (creates, renames, removes) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk for RealDisk {
    #[cfg(unix)]
    fn make_private(&self, path: &str) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.resolve(path)?, fs::Permissions::from_mode(0o600))
    }

    fn create(&self, path: &str) -> io::Result<()> {
        let full = self.resolve(path)?;
        self.forget(path);
        self.ensure_parents(path)?;
        // Synced too, so an existing file's truncation is as durable as the name (SimDisk's
        // model); an empty file makes this cheap.
        File::create(&full)?.sync_all()?;
        self.sync_parent(path)
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        let full = self.resolve(path)?;
        let mut handles = lock(&self.handles);
        let file = match handles.entry(path.to_owned()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => v.insert(OpenOptions::new().append(true).open(&full)?),
        };
        file.write_all(data)?;
        Ok(file.metadata()?.len())
    }

    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let full = self.resolve(path)?;
        // Not the cached handle: O_APPEND would ignore the offset.
        let mut file = OpenOptions::new().write(true).open(&full)?;
        if data.is_empty() {
            return Ok(());
        }
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(data)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.resolve(path)?)
    }

    fn len(&self, path: &str) -> io::Result<u64> {
        let full = self.resolve(path)?;
        Ok(self.require_file(&full)?.len())
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let full = self.resolve(path)?;
        self.forget(path);
        OpenOptions::new().write(true).open(&full)?.set_len(len)
    }

    fn fsync(&self, path: &str) -> io::Result<()> {
        let full = self.resolve(path)?;
        let handles = lock(&self.handles);
        match handles.get(path) {
            Some(file) => file.sync_data(),
            None => OpenOptions::new().write(true).open(&full)?.sync_data(),
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let full_from = self.resolve(from)?;
        let full_to = self.resolve(to)?;
        // Directories are outside this API; refuse them like SimDisk does.
        self.require_file(&full_from)?;
        self.ensure_parents(to)?;
        self.forget(from);
        self.forget(to);
        fs::rename(&full_from, &full_to)?;
        self.sync_parent(to)?;
        if parent_of(from) != parent_of(to) {
            self.sync_parent(from)?;
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let full = self.resolve(path)?;
        self.forget(path);
        fs::remove_file(&full)?;
        self.sync_parent(path)
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        check_dir(dir)?;
        let entries = match fs::read_dir(self.root.join(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            // A non-UTF-8 name cannot be addressed through this API, so it is not ours.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path)
            .and_then(fs::metadata)
            .is_ok_and(|m| m.is_file())
    }
}

// ---------------------------------------------------------------------------------------------
// SimDisk
// ---------------------------------------------------------------------------------------------

/// How a simulated crash treats data that was written but not fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every file reverts to its last fsynced contents.
    DropUnsynced,
    /// A file whose unsynced bytes only extend its durable bytes keeps the durable bytes plus
    /// some prefix of the unsynced suffix, possibly with bits flipped in the last kept byte (a
    /// torn sector). A file whose unsynced changes overwrote durable bytes reverts.
    TearLastWrite,
}

/// An in-memory [`Disk`] for one simulated node that knows which bytes were fsynced.
///
/// Cheap to clone; clones share state, so the simulation keeps one handle across a node's
/// restart and the files survive it. Only [`SimDisk::crash`] loses data.
///
/// Durability model: *namespace* operations (create, rename, remove, and the directories they
/// create) are durable as soon as they return, like a journaling file system mounted with
/// `dirsync` (and like [`RealDisk`], which fsyncs the parent directory). A `create` over an
/// existing file durably truncates it. *Contents* written by append, write_at and truncate are
/// durable only after [`Disk::fsync`] of that file; a rename carries a file's durable and
/// unsynced contents along with it.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<String, SimFile>,
    /// Directories ever created; kept because real directories outlive their files.
    dirs: BTreeSet<String>,
    fail_next_fsync: bool,
    fail_next_write: bool,
    fsyncs: u64,
}

#[derive(Debug, Default)]
struct SimFile {
    current: Vec<u8>,
    durable: Durable,
}

/// What a crash may fall back to. Tracked as a prefix length while writes only go past the
/// durable end (the WAL's pattern), so fsync and append stay O(1) instead of copying the file.
#[derive(Debug)]
enum Durable {
    /// The durable bytes are `current[..len]`.
    Prefix(usize),
    /// An unsynced write changed bytes below the durable end; these are the durable bytes.
    Detached(Vec<u8>),
}

impl Default for Durable {
    fn default() -> Self {
        Durable::Prefix(0)
    }
}

impl SimFile {
    fn durable_len(&self) -> usize {
        match &self.durable {
            Durable::Prefix(len) => *len,
            Durable::Detached(bytes) => bytes.len(),
        }
    }

    /// Called before changing bytes at `offset..`: keeps a copy of durable bytes about to be hit.
    fn detach_from(&mut self, offset: usize) {
        if let Durable::Prefix(len) = self.durable {
            if offset < len {
                self.durable = Durable::Detached(self.current[..len].to_vec());
            }
        }
    }

    fn revert(&mut self) {
        match std::mem::take(&mut self.durable) {
            Durable::Prefix(len) => self.current.truncate(len),
            Durable::Detached(bytes) => self.current = bytes,
        }
    }

    /// Applies a crash to this file; `choice` is this file's share of the crash entropy.
    fn crash(&mut self, mode: CrashMode, choice: u64) {
        let durable_len = self.durable_len();
        let extends = match &self.durable {
            Durable::Prefix(_) => true,
            Durable::Detached(bytes) => self.current.starts_with(bytes),
        };
        if mode == CrashMode::DropUnsynced || !extends {
            self.revert();
        } else {
            let unsynced = (self.current.len() - durable_len) as u64;
            let keep = usize::try_from(choice % (unsynced + 1)).unwrap_or(0);
            self.current.truncate(durable_len + keep);
            let flip = mix(choice);
            if keep > 0 && flip & 1 == 1 {
                // `| 1` guarantees at least one bit really changes.
                self.current[durable_len + keep - 1] ^= ((flip >> 8) as u8) | 1;
            }
        }
        // What survived a crash is on disk now, whether or not it was fsynced before.
        self.durable = Durable::Prefix(self.current.len());
    }
}

/// splitmix64's finalizer: a cheap, well-mixed, deterministic hash step.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a, so a file's crash choice depends on its name and not on map or process state.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: simulated {what} failure"))
}

fn to_sim_offset(offset: u64, len: usize) -> io::Result<usize> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= SIM_MAX_FILE_BYTES => Ok(offset as usize),
        _ => Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("simulated file would exceed {SIM_MAX_FILE_BYTES} bytes"),
        )),
    }
}

impl SimState {
    /// The error the OS would give for a path that is not a file in `files`.
    fn missing(&self, path: &str) -> io::Error {
        let (kind, why) = if ancestors_of(path).any(|a| self.files.contains_key(a)) {
            (io::ErrorKind::NotADirectory, "a parent is a file")
        } else if self.dirs.contains(path) {
            (io::ErrorKind::IsADirectory, "is a directory")
        } else {
            (io::ErrorKind::NotFound, "no such file")
        };
        io::Error::new(kind, format!("{path}: {why}"))
    }

    fn file_mut(&mut self, path: &str) -> io::Result<&mut SimFile> {
        check_path(path)?;
        if !self.files.contains_key(path) {
            return Err(self.missing(path));
        }
        Ok(self.files.get_mut(path).expect("presence checked above"))
    }

    fn file(&self, path: &str) -> io::Result<&SimFile> {
        check_path(path)?;
        self.files.get(path).ok_or_else(|| self.missing(path))
    }

    /// Creates `path`'s missing ancestor directories, failing where a file is in the way.
    fn ensure_parents(&mut self, path: &str) -> io::Result<()> {
        for dir in ancestors_of(path) {
            if self.files.contains_key(dir) {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{dir} is a file"),
                ));
            }
            self.dirs.insert(dir.to_owned());
        }
        Ok(())
    }

    /// Checks that `path` can become a file: its parents exist (created here) and no
    /// directory occupies the name.
    fn prepare_file_slot(&mut self, path: &str) -> io::Result<()> {
        self.ensure_parents(path)?;
        if self.dirs.contains(path) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{path} is a directory"),
            ));
        }
        Ok(())
    }

    fn take_write_fault(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.fail_next_write) {
            return Err(injected("write"));
        }
        Ok(())
    }
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        lock(&self.state)
    }

    /// Simulates power loss: unsynced contents are dropped or torn according to `mode`.
    ///
    /// Per-file choices come from `entropy` and the file's name only, so a seed reproduces
    /// the same damage. Pending injected faults are cleared: they belonged to the process that
    /// just died.
    pub fn crash(&self, mode: CrashMode, entropy: u64) {
        let mut state = self.state();
        for (name, file) in state.files.iter_mut() {
            file.crash(mode, mix(entropy ^ name_hash(name)));
        }
        state.fail_next_fsync = false;
        state.fail_next_write = false;
    }

    /// The next fsync fails with an injected [`io::ErrorKind::Other`] error and syncs nothing.
    pub fn fail_next_fsync(&self) {
        self.state().fail_next_fsync = true;
    }

    /// The next append or write_at fails with an injected [`io::ErrorKind::Other`] error and
    /// writes nothing.
    pub fn fail_next_write(&self) {
        self.state().fail_next_write = true;
    }

    /// How many bytes of `path` would survive [`CrashMode::DropUnsynced`]; `None` if missing.
    pub fn synced_len(&self, path: &str) -> Option<u64> {
        self.state().files.get(path).map(|f| f.durable_len() as u64)
    }

    /// Whether any file under `dir` holds written bytes that a crash could still lose.
    pub fn has_unsynced(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.state()
            .files
            .range(prefix.clone()..)
            .take_while(|(name, _)| name.starts_with(&prefix))
            .any(|(_, f)| match &f.durable {
                Durable::Prefix(len) => *len < f.current.len(),
                Durable::Detached(_) => true,
            })
    }

    /// How many fsyncs succeeded on this disk so far.
    pub fn fsync_count(&self) -> u64 {
        self.state().fsyncs
    }
}

impl Disk for SimDisk {
    fn create(&self, path: &str) -> io::Result<()> {
        check_path(path)?;
        let mut state = self.state();
        state.prepare_file_slot(path)?;
        state.files.insert(path.to_owned(), SimFile::default());
        Ok(())
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        let mut state = self.state();
        state.file(path)?;
        state.take_write_fault()?;
        let file = state.file_mut(path)?;
        to_sim_offset(file.current.len() as u64, data.len())?;
        file.current.extend_from_slice(data);
        Ok(file.current.len() as u64)
    }

    fn write_at(&self, path: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        state.file(path)?;
        state.take_write_fault()?;
        let file = state.file_mut(path)?;
        if data.is_empty() {
            return Ok(());
        }
        let start = to_sim_offset(offset, data.len())?;
        file.detach_from(start);
        let end = start + data.len();
        if file.current.len() < end {
            file.current.resize(end, 0);
        }
        file.current[start..end].copy_from_slice(data);
        Ok(())
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        Ok(self.state().file(path)?.current.clone())
    }

    fn len(&self, path: &str) -> io::Result<u64> {
        Ok(self.state().file(path)?.current.len() as u64)
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let mut state = self.state();
        let file = state.file_mut(path)?;
        let len = to_sim_offset(len, 0)?;
        file.detach_from(len);
        file.current.resize(len, 0);
        Ok(())
    }

    fn fsync(&self, path: &str) -> io::Result<()> {
        let mut state = self.state();
        state.file(path)?;
        if std::mem::take(&mut state.fail_next_fsync) {
            return Err(injected("fsync"));
        }
        let file = state.file_mut(path)?;
        file.durable = Durable::Prefix(file.current.len());
        state.fsyncs += 1;
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        check_path(to)?;
        let mut state = self.state();
        state.file(from)?;
        // Linux checks "the target is an ancestor of the source" before "the target is a
        // directory": renaming `d/c` onto `d` fails with ENOTEMPTY, not EISDIR.
        if ancestors_of(from).any(|dir| dir == to) {
            return Err(io::Error::new(
                io::ErrorKind::DirectoryNotEmpty,
                format!("{to} is an ancestor of {from}"),
            ));
        }
        state.prepare_file_slot(to)?;
        if from != to {
            let file = state.files.remove(from).expect("presence checked above");
            state.files.insert(to.to_owned(), file);
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let mut state = self.state();
        state.file(path)?;
        state.files.remove(path);
        Ok(())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        check_dir(dir)?;
        let state = self.state();
        if !dir.is_empty() && !state.dirs.contains(dir) {
            let err = if state.files.contains_key(dir) {
                io::Error::new(io::ErrorKind::NotADirectory, format!("{dir} is a file"))
            } else {
                state.missing(dir)
            };
            return match err.kind() {
                io::ErrorKind::NotFound => Ok(Vec::new()),
                _ => Err(err),
            };
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        // BTreeMap order makes the result sorted already.
        Ok(state
            .files
            .range(prefix.clone()..)
            .map(|(path, _)| path)
            .take_while(|path| path.starts_with(&prefix))
            .map(|path| &path[prefix.len()..])
            .filter(|name| !name.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    fn exists(&self, path: &str) -> bool {
        check_path(path).is_ok() && self.state().files.contains_key(path)
    }
}

/// Writes a whole file outside any data dir (CLI output such as a backup): temp file, fsync,
/// rename, fsync of the directory.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("part");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads a whole file named on the command line.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind<T>(result: io::Result<T>) -> io::ErrorKind {
        result.err().expect("expected an error").kind()
    }

    fn check_bad_paths(disk: &dyn Disk) {
        for bad in [
            "", "/abs", "../x", "a/../b", "a//b", "./a", "a/.", "a/", "a\0b",
        ] {
            assert_eq!(
                kind(disk.create(bad)),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
            assert_eq!(kind(disk.read(bad)), io::ErrorKind::InvalidInput, "{bad:?}");
            assert_eq!(kind(disk.rename("ok", bad)), io::ErrorKind::InvalidInput);
            assert!(!disk.exists(bad));
        }
        assert_eq!(kind(disk.list("/")), io::ErrorKind::InvalidInput);
        assert_eq!(kind(disk.list("..")), io::ErrorKind::InvalidInput);
    }

    /// The contract both back-ends share, without crashes.
    fn check_round_trip(disk: &dyn Disk) {
        assert_eq!(disk.list("wal").unwrap(), Vec::<String>::new());
        disk.create("wal/2.wal").unwrap();
        disk.create("wal/1.wal").unwrap();
        assert_eq!(disk.append("wal/1.wal", b"hello").unwrap(), 5);
        assert_eq!(disk.append("wal/1.wal", b" world").unwrap(), 11);
        assert_eq!(disk.read("wal/1.wal").unwrap(), b"hello world");
        disk.write_at("wal/1.wal", 6, b"W").unwrap();
        disk.write_at("wal/1.wal", 13, b"!").unwrap();
        assert_eq!(disk.read("wal/1.wal").unwrap(), b"hello World\0\0!");
        disk.truncate("wal/1.wal", 5).unwrap();
        assert_eq!(disk.len("wal/1.wal").unwrap(), 5);
        disk.fsync("wal/1.wal").unwrap();
        // The append handle must follow the truncation, not the old length.
        assert_eq!(disk.append("wal/1.wal", b"!").unwrap(), 6);
        disk.create("wal/sub/x").unwrap();
        assert_eq!(disk.list("wal").unwrap(), vec!["1.wal", "2.wal"]);
        assert_eq!(disk.list("").unwrap(), Vec::<String>::new());
        disk.rename("wal/1.wal", "wal/2.wal").unwrap();
        assert!(!disk.exists("wal/1.wal"));
        assert!(disk.exists("wal/2.wal"));
        assert!(!disk.exists("wal"), "directories are not files");
        assert_eq!(disk.read("wal/2.wal").unwrap(), b"hello!");
        assert_eq!(
            kind(disk.append("wal/1.wal", b"x")),
            io::ErrorKind::NotFound
        );
        assert_eq!(disk.append("wal/2.wal", b"?").unwrap(), 7);
        disk.create("wal/2.wal").unwrap();
        assert_eq!(disk.append("wal/2.wal", b"new").unwrap(), 3);
        disk.remove("wal/2.wal").unwrap();
        assert_eq!(kind(disk.remove("wal/2.wal")), io::ErrorKind::NotFound);
        assert_eq!(kind(disk.fsync("wal/2.wal")), io::ErrorKind::NotFound);
        assert_eq!(kind(disk.len("wal/2.wal")), io::ErrorKind::NotFound);
        assert_eq!(kind(disk.read("wal")), io::ErrorKind::IsADirectory);
        disk.create("wal/x/y").unwrap();
        assert_eq!(
            kind(disk.rename("wal/x/y", "wal")),
            io::ErrorKind::DirectoryNotEmpty,
            "a rename onto an ancestor of the source"
        );
        disk.remove("wal/x/y").unwrap();
        assert_eq!(disk.list("wal").unwrap(), Vec::<String>::new());
        assert_eq!(disk.list("nope/deeper").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn real_disk_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let disk = RealDisk::new(dir.path().join("root")).unwrap();
        check_bad_paths(&disk);
        check_round_trip(&disk);
        assert!(dir.path().join("root/wal/sub/x").is_file());
    }

    #[test]
    fn real_disk_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let disk = RealDisk::new(dir.path()).unwrap();
            disk.create("a").unwrap();
            disk.append("a", b"abc").unwrap();
            disk.fsync("a").unwrap();
        }
        let disk = RealDisk::new(dir.path()).unwrap();
        assert_eq!(disk.read("a").unwrap(), b"abc");
        assert_eq!(disk.append("a", b"d").unwrap(), 4);
    }

    #[test]
    fn sim_disk_round_trip() {
        let disk = SimDisk::new();
        check_bad_paths(&disk);
        check_round_trip(&disk);
    }

    #[test]
    fn sim_disk_has_unsynced_sees_appends_and_overwrites_under_a_dir_only() {
        let disk = SimDisk::new();
        disk.create("w/1").unwrap();
        disk.create("wx").unwrap();
        disk.append("wx", b"elsewhere").unwrap();
        assert!(
            !disk.has_unsynced("w"),
            "a sibling name with the same prefix is not in w/"
        );
        disk.append("w/1", b"abc").unwrap();
        assert!(disk.has_unsynced("w"));
        disk.fsync("w/1").unwrap();
        assert!(!disk.has_unsynced("w"));
        disk.write_at("w/1", 0, b"z").unwrap();
        assert!(
            disk.has_unsynced("w"),
            "an overwrite of synced bytes is unsynced"
        );
        disk.fsync("w/1").unwrap();
        assert!(!disk.has_unsynced("w"));
    }

    #[test]
    fn sim_disk_drop_unsynced_keeps_synced_and_namespace() {
        let disk = SimDisk::new();
        disk.create("a").unwrap();
        disk.append("a", b"synced").unwrap();
        disk.fsync("a").unwrap();
        disk.append("a", b"-lost").unwrap();
        disk.create("b").unwrap();
        disk.append("b", b"lost").unwrap();
        disk.create("c").unwrap();
        disk.rename("c", "d/c").unwrap();
        assert_eq!(disk.synced_len("a"), Some(6));
        assert_eq!(disk.synced_len("zz"), None);
        assert!(!disk.has_unsynced("d"));
        let restarted = disk.clone();
        restarted.crash(CrashMode::DropUnsynced, 7);
        assert_eq!(disk.read("a").unwrap(), b"synced");
        assert_eq!(disk.read("b").unwrap(), b"");
        assert!(disk.exists("d/c") && !disk.exists("c"));
        assert_eq!(disk.fsync_count(), 1);
    }

    #[test]
    fn sim_disk_overwrite_of_synced_bytes_reverts_on_tear() {
        let disk = SimDisk::new();
        disk.create("a").unwrap();
        disk.append("a", b"0123456789").unwrap();
        disk.fsync("a").unwrap();
        disk.write_at("a", 2, b"xx").unwrap();
        disk.append("a", b"tail").unwrap();
        disk.crash(CrashMode::TearLastWrite, 99);
        assert_eq!(disk.read("a").unwrap(), b"0123456789");
        disk.truncate("a", 3).unwrap();
        disk.crash(CrashMode::TearLastWrite, 5);
        assert_eq!(disk.read("a").unwrap(), b"0123456789");
    }

    #[test]
    fn sim_disk_tear_covers_all_lengths_and_flips() {
        let mut lengths = BTreeSet::new();
        let mut flipped = false;
        for entropy in 0..200u64 {
            let disk = SimDisk::new();
            disk.create("f").unwrap();
            disk.append("f", b"ab").unwrap();
            disk.fsync("f").unwrap();
            disk.append("f", b"cdef").unwrap();
            disk.crash(CrashMode::TearLastWrite, entropy);
            let got = disk.read("f").unwrap();
            assert!(got.len() >= 2 && got.len() <= 6 && got.starts_with(b"ab"));
            let n = got.len();
            if n > 2 {
                assert_eq!(got[2..n - 1], b"abcdef"[2..n - 1]);
                flipped |= got[n - 1] != b"abcdef"[n - 1];
            }
            lengths.insert(n);
            // Same entropy, same damage.
            let again = SimDisk::new();
            again.create("f").unwrap();
            again.append("f", b"ab").unwrap();
            again.fsync("f").unwrap();
            again.append("f", b"cdef").unwrap();
            again.crash(CrashMode::TearLastWrite, entropy);
            assert_eq!(again.read("f").unwrap(), got);
        }
        assert_eq!(lengths, (2..=6).collect());
        assert!(flipped, "some entropy must tear a sector");
    }

    #[test]
    fn sim_disk_injected_faults_change_nothing() {
        let disk = SimDisk::new();
        disk.create("a").unwrap();
        disk.append("a", b"x").unwrap();
        disk.fail_next_write();
        let err = disk.append("a", b"y").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert!(err.to_string().contains("injected"));
        disk.fail_next_write();
        assert_eq!(kind(disk.write_at("a", 0, b"z")), io::ErrorKind::Other);
        assert_eq!(disk.read("a").unwrap(), b"x");
        disk.fail_next_fsync();
        assert_eq!(kind(disk.fsync("a")), io::ErrorKind::Other);
        assert_eq!(disk.synced_len("a"), Some(0));
        disk.fsync("a").unwrap();
        assert_eq!(disk.synced_len("a"), Some(1));
        // Faults armed before a crash die with the crashed process.
        disk.fail_next_fsync();
        disk.crash(CrashMode::DropUnsynced, 0);
        disk.fsync("a").unwrap();
    }

    #[test]
    fn sim_disk_refuses_huge_offsets() {
        let disk = SimDisk::new();
        disk.create("a").unwrap();
        assert_eq!(
            kind(disk.write_at("a", u64::MAX, b"x")),
            io::ErrorKind::FileTooLarge
        );
        assert_eq!(
            kind(disk.truncate("a", SIM_MAX_FILE_BYTES + 1)),
            io::ErrorKind::FileTooLarge
        );
    }

    // ---- property test: SimDisk against a reference model of synced/current bytes ----

    const NAMES: [&str; 3] = ["a", "b", "d/c"];

    #[derive(Debug, Clone)]
    enum Op {
        Create(usize),
        Append(usize, Vec<u8>),
        WriteAt(usize, u64, Vec<u8>),
        Truncate(usize, u64),
        Fsync(usize),
        Rename(usize, usize),
        Remove(usize),
        Crash(CrashMode, u64),
        FailWrite,
        FailFsync,
    }

    fn op_strategy(names: usize) -> impl Strategy<Value = Op> {
        let name = 0..names;
        let data = proptest::collection::vec(any::<u8>(), 0..12);
        let mode = prop_oneof![
            Just(CrashMode::DropUnsynced),
            Just(CrashMode::TearLastWrite)
        ];
        prop_oneof![
            2 => name.clone().prop_map(Op::Create),
            6 => (name.clone(), data.clone()).prop_map(|(n, d)| Op::Append(n, d)),
            2 => (name.clone(), 0..30u64, data).prop_map(|(n, o, d)| Op::WriteAt(n, o, d)),
            1 => (name.clone(), 0..30u64).prop_map(|(n, l)| Op::Truncate(n, l)),
            3 => name.clone().prop_map(Op::Fsync),
            1 => (name.clone(), name.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
            1 => name.prop_map(Op::Remove),
            2 => (mode, any::<u64>()).prop_map(|(m, e)| Op::Crash(m, e)),
            1 => Just(Op::FailWrite),
            1 => Just(Op::FailFsync),
        ]
    }

    fn op_sequence(names: usize, max_ops: usize) -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(op_strategy(names), 1..max_ops)
    }

    #[derive(Debug, Clone, Default)]
    struct ModelFile {
        current: Vec<u8>,
        synced: Vec<u8>,
    }

    #[derive(Debug, Default)]
    struct Model {
        files: BTreeMap<String, ModelFile>,
        fail_write: bool,
        fail_fsync: bool,
    }

    type Outcome = Result<(), io::ErrorKind>;

    impl Model {
        fn file(&mut self, name: &str) -> Result<&mut ModelFile, io::ErrorKind> {
            self.files.get_mut(name).ok_or(io::ErrorKind::NotFound)
        }

        fn write(&mut self, name: &str, offset: Option<u64>, data: &[u8]) -> Outcome {
            self.file(name)?;
            if std::mem::take(&mut self.fail_write) {
                return Err(io::ErrorKind::Other);
            }
            let file = self.file(name)?;
            let start = offset.map_or(file.current.len(), |o| o as usize);
            if !data.is_empty() {
                let end = start + data.len();
                if file.current.len() < end {
                    file.current.resize(end, 0);
                }
                file.current[start..end].copy_from_slice(data);
            }
            Ok(())
        }

        /// Applies a non-crash op and returns what the disk must answer.
        fn apply(&mut self, op: &Op) -> Outcome {
            match op {
                Op::Create(n) => {
                    self.files.insert(NAMES[*n].into(), ModelFile::default());
                    Ok(())
                }
                Op::Append(n, d) => self.write(NAMES[*n], None, d),
                Op::WriteAt(n, o, d) => self.write(NAMES[*n], Some(*o), d),
                Op::Truncate(n, l) => {
                    self.file(NAMES[*n])?.current.resize(*l as usize, 0);
                    Ok(())
                }
                Op::Fsync(n) => {
                    self.file(NAMES[*n])?;
                    if std::mem::take(&mut self.fail_fsync) {
                        return Err(io::ErrorKind::Other);
                    }
                    let file = self.file(NAMES[*n])?;
                    file.synced = file.current.clone();
                    Ok(())
                }
                Op::Rename(a, b) => {
                    let file = self
                        .files
                        .remove(NAMES[*a])
                        .ok_or(io::ErrorKind::NotFound)?;
                    self.files.insert(NAMES[*b].into(), file);
                    Ok(())
                }
                Op::Remove(n) => self
                    .files
                    .remove(NAMES[*n])
                    .map(drop)
                    .ok_or(io::ErrorKind::NotFound),
                Op::FailWrite => {
                    self.fail_write = true;
                    Ok(())
                }
                Op::FailFsync => {
                    self.fail_fsync = true;
                    Ok(())
                }
                Op::Crash(..) => unreachable!("crashes are checked by check_crash"),
            }
        }

        /// Checks what a crash left against what it was allowed to leave, then adopts it.
        fn check_crash(&mut self, disk: &SimDisk, mode: CrashMode) {
            self.fail_write = false;
            self.fail_fsync = false;
            for (name, file) in self.files.iter_mut() {
                let got = disk.read(name).unwrap();
                let (synced, current) = (&file.synced, &file.current);
                if mode == CrashMode::DropUnsynced || !current.starts_with(synced) {
                    assert_eq!(&got, synced, "{name} after {mode:?}");
                } else {
                    let n = got.len();
                    assert!(n >= synced.len() && n <= current.len(), "{name}: len {n}");
                    assert_eq!(&got[..synced.len()], &synced[..]);
                    if n > synced.len() {
                        assert_eq!(got[synced.len()..n - 1], current[synced.len()..n - 1]);
                    }
                }
                file.synced = got.clone();
                file.current = got;
            }
        }

        fn check_matches(&self, disk: &SimDisk) {
            for name in NAMES {
                match self.files.get(name) {
                    Some(file) => {
                        assert_eq!(disk.read(name).unwrap(), file.current, "{name}");
                        assert_eq!(disk.synced_len(name), Some(file.synced.len() as u64));
                    }
                    None => assert!(!disk.exists(name), "{name} should not exist"),
                }
            }
            let root: Vec<String> = ["a", "b"]
                .into_iter()
                .filter(|n| self.files.contains_key(*n))
                .map(String::from)
                .collect();
            assert_eq!(disk.list("").unwrap(), root);
        }
    }

    fn apply_to_disk(disk: &SimDisk, op: &Op) -> Outcome {
        let result = match op {
            Op::Create(n) => disk.create(NAMES[*n]),
            Op::Append(n, d) => disk.append(NAMES[*n], d).map(drop),
            Op::WriteAt(n, o, d) => disk.write_at(NAMES[*n], *o, d),
            Op::Truncate(n, l) => disk.truncate(NAMES[*n], *l),
            Op::Fsync(n) => disk.fsync(NAMES[*n]),
            Op::Rename(a, b) => disk.rename(NAMES[*a], NAMES[*b]),
            Op::Remove(n) => disk.remove(NAMES[*n]),
            Op::FailWrite => {
                disk.fail_next_write();
                Ok(())
            }
            Op::FailFsync => {
                disk.fail_next_fsync();
                Ok(())
            }
            Op::Crash(..) => unreachable!("crashes are applied by the caller"),
        };
        result.map_err(|e| e.kind())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sim_disk_matches_model(ops in op_sequence(NAMES.len(), 60)) {
            let disk = SimDisk::new();
            let mut model = Model::default();
            for op in &ops {
                if let Op::Crash(mode, entropy) = op {
                    disk.crash(*mode, *entropy);
                    model.check_crash(&disk, *mode);
                } else {
                    let expected = model.apply(op);
                    prop_assert_eq!(apply_to_disk(&disk, op), expected, "{:?}", op);
                }
                model.check_matches(&disk);
            }
        }
    }

    // ---- property test: RealDisk and SimDisk agree on results and errors ----

    /// Names chosen to collide as files and directories ("d" vs "d/c").
    const DIFF_NAMES: [&str; 5] = ["a", "b", "d", "d/c", "e/f/g"];

    fn apply_dyn(disk: &dyn Disk, op: &Op) -> Result<Option<u64>, io::ErrorKind> {
        let name = |n: &usize| DIFF_NAMES[*n];
        let result = match op {
            Op::Create(n) => disk.create(name(n)).map(|()| None),
            Op::Append(n, d) => disk.append(name(n), d).map(Some),
            Op::WriteAt(n, o, d) => disk.write_at(name(n), *o, d).map(|()| None),
            Op::Truncate(n, l) => disk.truncate(name(n), *l).map(|()| None),
            Op::Fsync(n) => disk.fsync(name(n)).map(|()| None),
            Op::Rename(a, b) => disk.rename(name(a), name(b)).map(|()| None),
            Op::Remove(n) => disk.remove(name(n)).map(|()| None),
            Op::Crash(..) | Op::FailWrite | Op::FailFsync => Ok(None),
        };
        result.map_err(|e| e.kind())
    }

    fn observe(disk: &dyn Disk) -> Vec<String> {
        let mut seen = Vec::new();
        for name in DIFF_NAMES {
            let read = disk.read(name).map_err(|e| e.kind());
            let len = disk.len(name).map_err(|e| e.kind());
            seen.push(format!("{name}: {read:?} {len:?} {}", disk.exists(name)));
        }
        for dir in ["", "d", "e/f", "a"] {
            seen.push(format!(
                "list {dir:?}: {:?}",
                disk.list(dir).map_err(|e| e.kind())
            ));
        }
        seen
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn real_and_sim_disks_agree(ops in op_sequence(DIFF_NAMES.len(), 30)) {
            let dir = tempfile::tempdir().unwrap();
            let real = RealDisk::new(dir.path()).unwrap();
            let sim = SimDisk::new();
            for op in &ops {
                let (r, s) = (apply_dyn(&real, op), apply_dyn(&sim, op));
                prop_assert_eq!(r, s, "{:?}", op);
                prop_assert_eq!(observe(&real), observe(&sim));
            }
        }
    }
}
