//! The sequential KV model: one global revision, bumped once per write txn; per key
//! create/mod revision and version; deletes end a key's generation. This is the oracle the
//! simulation's history checker compares the store against: every response a client got
//! must be what this model answers at the response's revision.

use std::collections::BTreeMap;

/// A key's state (etcd's `mvccpb.KeyValue` without the lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
}

/// One change inside a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// Why a history does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// Revisions must be applied in order without gaps.
    OutOfOrder { expected: i64, got: i64 },
    /// A delete of a key that does not exist is not a change.
    DeleteOfMissing { key: Vec<u8>, revision: i64 },
    /// A revision must change something.
    EmptyRevision(i64),
}

/// The model: the current state plus, per key, every generation's history.
#[derive(Debug, Clone, Default)]
pub struct KvModel {
    revision: i64,
    /// key → (revision, state after it; None = deleted), in revision order.
    history: BTreeMap<Vec<u8>, Vec<(i64, Option<Kv>)>>,
}

impl KvModel {
    /// An empty store at revision 1 (as etcd's).
    pub fn new() -> KvModel {
        KvModel {
            revision: 1,
            history: BTreeMap::new(),
        }
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Applies the changes of revision `rev`, which must be the next one.
    pub fn apply(&mut self, rev: i64, changes: &[Change]) -> Result<(), ModelError> {
        if rev != self.revision + 1 {
            return Err(ModelError::OutOfOrder {
                expected: self.revision + 1,
                got: rev,
            });
        }
        if changes.is_empty() {
            return Err(ModelError::EmptyRevision(rev));
        }
        for c in changes {
            match c {
                Change::Put { key, value } => {
                    let prev = self.get(key, rev);
                    let kv = match prev {
                        Some(p) => Kv {
                            value: value.clone(),
                            create_revision: p.create_revision,
                            mod_revision: rev,
                            version: p.version + 1,
                        },
                        None => Kv {
                            value: value.clone(),
                            create_revision: rev,
                            mod_revision: rev,
                            version: 1,
                        },
                    };
                    self.push(key, rev, Some(kv));
                }
                Change::Delete { key } => {
                    if self.get(key, rev).is_none() {
                        return Err(ModelError::DeleteOfMissing {
                            key: key.clone(),
                            revision: rev,
                        });
                    }
                    self.push(key, rev, None);
                }
            }
        }
        self.revision = rev;
        Ok(())
    }

    fn push(&mut self, key: &[u8], rev: i64, state: Option<Kv>) {
        let h = self.history.entry(key.to_vec()).or_default();
        match h.last_mut() {
            Some(last) if last.0 == rev => last.1 = state,
            _ => h.push((rev, state)),
        }
    }

    /// The state of `key` as of revision `rev` (None if absent then).
    pub fn get(&self, key: &[u8], rev: i64) -> Option<Kv> {
        let h = self.history.get(key)?;
        let idx = h.partition_point(|(r, _)| *r <= rev);
        if idx == 0 {
            return None;
        }
        h[idx - 1].1.clone()
    }

    /// Every key present at `rev`, in key order.
    pub fn all(&self, rev: i64) -> Vec<(Vec<u8>, Kv)> {
        self.history
            .keys()
            .filter_map(|k| self.get(k, rev).map(|kv| (k.clone(), kv)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Change {
        Change::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn versions_and_generations_follow_etcd() {
        let mut m = KvModel::new();
        m.apply(2, &[put("a", "1")]).unwrap();
        m.apply(3, &[put("a", "2"), put("b", "x")]).unwrap();
        m.apply(4, &[Change::Delete { key: "a".into() }]).unwrap();
        m.apply(5, &[put("a", "3")]).unwrap();
        let a3 = m.get(b"a", 3).unwrap();
        assert_eq!((a3.create_revision, a3.mod_revision, a3.version), (2, 3, 2));
        assert_eq!(m.get(b"a", 4), None);
        let a5 = m.get(b"a", 5).unwrap();
        assert_eq!(
            (a5.create_revision, a5.version, a5.value),
            (5, 1, b"3".to_vec())
        );
        assert_eq!(m.get(b"a", 1), None);
        assert_eq!(m.all(3).len(), 2);
    }

    #[test]
    fn rejects_gaps_empty_revisions_and_phantom_deletes() {
        let mut m = KvModel::new();
        assert!(matches!(
            m.apply(3, &[put("a", "1")]),
            Err(ModelError::OutOfOrder { .. })
        ));
        assert_eq!(m.apply(2, &[]), Err(ModelError::EmptyRevision(2)));
        assert!(matches!(
            m.apply(2, &[Change::Delete { key: "z".into() }]),
            Err(ModelError::DeleteOfMissing { .. })
        ));
    }
}
