//! One key's retained history: every write (put or tombstone) in revision order.
//!
//! Reads at a revision are a binary search, so historical ranges cost `O(log versions)` per
//! key. Compaction trims the front of the vector and gives the memory back.

use super::types::KeyValue;

/// Smallest revision a write can carry: revision 1 is the empty store (as in etcd).
pub(crate) const FIRST_WRITE_REVISION: i64 = 2;

/// Shrink a history's buffer after compaction when it holds more than this many times the
/// entries it needs, so compaction really frees memory without reallocating on every call.
const SHRINK_SLACK_FACTOR: usize = 2;

/// Position of one write: the txn's revision (`main`) and its index among the txn's writes
/// (`sub`), exactly etcd's `revision{main, sub}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Revision {
    pub(crate) main: i64,
    pub(crate) sub: u32,
}

/// A key's state after a put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) value: Vec<u8>,
    pub(crate) create_revision: i64,
    pub(crate) version: i64,
    pub(crate) lease: i64,
}

/// What one write left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Live(Live),
    /// A delete; kept so reads at older revisions still see the key until compaction.
    Tombstone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) rev: Revision,
    pub(crate) state: State,
}

/// Writes to one key, strictly ascending by revision. Never empty while stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyHistory {
    entries: Vec<Entry>,
}

impl KeyHistory {
    /// Builds a history from decoded entries; the caller has validated them.
    pub(crate) fn from_entries(entries: Vec<Entry>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].rev < w[1].rev));
        Self { entries }
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The live state at revision `rev` (the last write at or before it, unless a tombstone),
    /// with the revision of that write.
    pub(crate) fn at(&self, rev: i64) -> Option<(Revision, &Live)> {
        let idx = self.entries.partition_point(|e| e.rev.main <= rev);
        let entry = self.entries.get(idx.checked_sub(1)?)?;
        match &entry.state {
            State::Live(live) => Some((entry.rev, live)),
            State::Tombstone => None,
        }
    }

    /// The key as a [`KeyValue`] at revision `rev`, if it exists then.
    pub(crate) fn kv_at(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        self.at(rev).map(|(r, live)| live_kv(key, r.main, live))
    }

    /// The write at exactly `rev`.
    pub(crate) fn find(&self, rev: Revision) -> Option<&Entry> {
        let idx = self.entries.binary_search_by(|e| e.rev.cmp(&rev)).ok()?;
        self.entries.get(idx)
    }

    /// Index of the first write with `main >= rev` (for replaying one key's history).
    pub(crate) fn first_index_from(&self, rev: i64) -> usize {
        self.entries.partition_point(|e| e.rev.main < rev)
    }

    /// Appends a write; writes only ever go after every existing one.
    pub(crate) fn push(&mut self, entry: Entry) {
        if let Some(last) = self.entries.last() {
            assert!(
                last.rev < entry.rev,
                "key history must grow in revision order"
            );
        }
        self.entries.push(entry);
    }

    /// Drops every write older than the last one at or before `rev`, and that one too if it is
    /// a tombstone: reads at `rev` or later see exactly what they saw before.
    pub(crate) fn compact(&mut self, rev: i64) {
        let idx = self.entries.partition_point(|e| e.rev.main <= rev);
        let Some(last_idx) = idx.checked_sub(1) else {
            return;
        };
        let keep_from = match self.entries[last_idx].state {
            State::Live(_) => last_idx,
            State::Tombstone => idx,
        };
        self.entries.drain(..keep_from);
        if self.entries.capacity() > SHRINK_SLACK_FACTOR * self.entries.len() + 1 {
            self.entries.shrink_to_fit();
        }
    }
}

/// A live entry as the public [`KeyValue`].
pub(crate) fn live_kv(key: &[u8], mod_revision: i64, live: &Live) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: live.create_revision,
        mod_revision,
        version: live.version,
        value: live.value.clone(),
        lease: live.lease,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(main: i64, version: i64, create: i64) -> Entry {
        Entry {
            rev: Revision { main, sub: 0 },
            state: State::Live(Live {
                value: vec![main as u8],
                create_revision: create,
                version,
                lease: 0,
            }),
        }
    }

    fn tomb(main: i64) -> Entry {
        Entry {
            rev: Revision { main, sub: 0 },
            state: State::Tombstone,
        }
    }

    #[test]
    fn reads_pick_the_last_write_at_or_before() {
        let h = KeyHistory::from_entries(vec![put(2, 1, 2), put(4, 2, 2), tomb(6), put(8, 1, 8)]);
        assert!(h.at(1).is_none());
        assert_eq!(h.at(2).unwrap().0.main, 2);
        assert_eq!(h.at(5).unwrap().1.version, 2);
        assert!(h.at(6).is_none());
        assert!(h.at(7).is_none());
        assert_eq!(h.at(100).unwrap().1.create_revision, 8);
    }

    #[test]
    fn compaction_keeps_the_live_entry_and_drops_tombstones() {
        let mut h = KeyHistory::from_entries(vec![put(2, 1, 2), put(4, 2, 2), tomb(6)]);
        h.compact(5);
        assert_eq!(h.entries().len(), 2);
        assert_eq!(h.at(5).unwrap().0.main, 4);
        h.compact(6);
        assert!(h.is_empty());
    }
}
