//! Fuzzes the API server's watch cache core, `apiserver::cache::CacheState`, with a sequence
//! of operations decoded from the input: changes (put / delete at the current or a later
//! revision), progress notifications, re-lists (`reset`), watch starts (`start(rv)`), batch
//! reads by started watchers (`read(epoch, seq, max)`) and snapshots (`snapshot(prefix)`).
//! Calls keep `CacheState`'s preconditions as `WatchCache` meets them: changes only after a
//! list, at revisions after the list and not below the cache's revision; cursors only from
//! `start`; and several changes at one revision (one store transaction) only back to back,
//! since `WatchCache::absorb` applies a whole store watch response under one lock (etcd never
//! splits a revision's events across responses, and reports progress only past them). A
//! change at the cache's current revision after a progress report, a watch start, a read or
//! a snapshot would be a transaction split by them, which the store never delivers.
//!
//! Input (`arbitrary::Unstructured`): one byte for the history capacity (1..=8, so events
//! fall out of the history often), then operations until the input runs out (at most
//! [`MAX_OPS`]), each an op code and its small arguments (key index, revision step, ...).
//!
//! Checks, against a model of the cache (objects, every event of the current epoch, the
//! revision, the oldest revision a watch may start at): nothing panics; `start(rv)` refuses a
//! revision older than the history (`TooOld(oldest)`) or newer than the cache
//! (`TooNew(rev)`), and otherwise starts at the first event with `rev > rv`; `read` after
//! `start(rv)` returns only events with `rev > rv`, contiguous from the watcher's cursor,
//! equal to the model's (key, revision, deleted, object, previous object), fails with
//! `Restarted` exactly when a re-list happened since the start and with `FellBehind` exactly
//! when the cursor fell out of the history; `snapshot(prefix)` returns exactly the model's
//! objects under the prefix, in key order, with the current revision and history position;
//! `translate`/`line_for` of every read event do not panic.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rkube::apiserver::cache::{Behind, CacheState, CachedObject, Start};
use rkube::apiserver::selector::{Filter, LabelSelector};
use serde_json::{json, Value};

/// Most operations per input, so one input cannot take long.
const MAX_OPS: usize = 512;

/// Keys under two resource prefixes; some are prefixes of others.
const KEYS: &[&str] = &[
    "/registry/pods/a/x",
    "/registry/pods/a/x2",
    "/registry/pods/a/y",
    "/registry/pods/b/x",
    "/registry/pods/ab/z",
    "/registry/configmaps/a/x",
];

const PREFIXES: &[&str] = &[
    "",
    "/registry/pods/",
    "/registry/pods/a/",
    "/registry/pods/a/x",
    "/registry/pods/b/",
    "/registry/configmaps/",
    "/nothing/",
];

/// One event as the model expects it.
#[derive(Debug, Clone)]
struct Ev {
    rev: i64,
    key: String,
    deleted: bool,
    object: Value,
    old: Option<Value>,
}

/// A started watcher: where `start(rv)` put it, in which epoch.
struct Watcher {
    epoch: u64,
    rv: i64,
    cursor: u64,
}

/// What the cache should hold.
struct Model {
    ready: bool,
    epoch: u64,
    rev: i64,
    list_rev: i64,
    oldest_rv: i64,
    objects: BTreeMap<String, Value>,
    /// Every event of the current epoch, by position (`seq - epoch_first_seq`).
    events: Vec<Ev>,
    /// The history position of `events[0]`.
    epoch_first_seq: u64,
    capacity: usize,
}

impl Model {
    fn next_seq(&self) -> u64 {
        self.epoch_first_seq + self.events.len() as u64
    }

    /// The first history position still retained.
    fn first_retained(&self) -> u64 {
        self.next_seq() - self.events.len().min(self.capacity) as u64
    }

    fn event(&self, seq: u64) -> &Ev {
        &self.events[(seq - self.epoch_first_seq) as usize]
    }
}

fn object(key: &str, rev: i64, n: u8) -> Value {
    let name = key.rsplit('/').next().unwrap_or("");
    let app = if n.is_multiple_of(2) { "web" } else { "db" };
    json!({"metadata": {"name": name, "resourceVersion": rev.to_string(), "labels": {"app": app}},
        "spec": {"n": n}})
}

fn filters() -> Vec<Filter> {
    vec![
        Filter::default(),
        Filter {
            labels: LabelSelector::parse("app=web").expect("valid"),
            ..Filter::default()
        },
    ]
}

fn run(u: &mut Unstructured) -> Result<()> {
    let capacity = u.int_in_range(1..=8usize)?;
    let mut cache = CacheState::new(capacity);
    let mut m = Model {
        ready: false,
        epoch: 0,
        rev: 0,
        list_rev: 0,
        oldest_rv: 0,
        objects: BTreeMap::new(),
        events: Vec::new(),
        epoch_first_seq: 0,
        capacity,
    };
    let mut watchers: Vec<Watcher> = Vec::new();
    let filters = filters();
    // Whether the last operation was a change: only then may the next change share its
    // revision (the rest of the same transaction).
    let mut in_txn = false;

    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let op = u.int_in_range(0..=6u8)?;
        let continues_txn = std::mem::replace(&mut in_txn, op <= 1);
        match op {
            // A change: put (0) or delete (1).
            0 | 1 => {
                if !m.ready {
                    continue;
                }
                let key = KEYS[u.choose_index(KEYS.len())?];
                // After the list and past the cache's revision, or at it as the next change
                // of the same transaction.
                let step = u.int_in_range(i64::from(!continues_txn)..=2)?;
                let rev = (m.rev + step).max(m.list_rev + 1);
                let old = m.objects.get(key).cloned();
                let n: u8 = u.arbitrary()?;
                let new = (op == 0).then(|| object(key, rev, n));
                cache
                    .apply(key.to_string(), new.clone(), rev)
                    .expect("the target applies changes in revision order");
                m.rev = rev;
                let ev = match (new, old) {
                    (Some(v), old) => {
                        m.objects.insert(key.to_string(), v.clone());
                        Ev {
                            rev,
                            key: key.to_string(),
                            deleted: false,
                            object: v,
                            old,
                        }
                    }
                    (None, Some(prev)) => {
                        m.objects.remove(key);
                        let mut gone = prev.clone();
                        gone["metadata"]["resourceVersion"] = Value::String(rev.to_string());
                        Ev {
                            rev,
                            key: key.to_string(),
                            deleted: true,
                            object: gone,
                            old: Some(prev),
                        }
                    }
                    // A delete of a key the cache does not hold: no event.
                    (None, None) => continue,
                };
                m.events.push(ev);
                if m.events.len() > m.capacity {
                    let dropped = &m.events[m.events.len() - m.capacity - 1];
                    m.oldest_rv = m.oldest_rv.max(dropped.rev);
                }
            }
            2 => {
                let rev = m.rev + u.int_in_range(-2..=3i64)?;
                cache.progress(rev);
                if m.ready {
                    m.rev = m.rev.max(rev);
                }
            }
            3 => {
                // A re-list at the store's revision (not behind what the cache has seen),
                // with some of the objects changed or gone meanwhile.
                let rev = m.rev + u.int_in_range(0..=3i64)?;
                let mut objects = BTreeMap::new();
                for key in KEYS {
                    match u.int_in_range(0..=2u8)? {
                        0 => {}
                        1 => {
                            if let Some(v) = m.objects.get(*key) {
                                objects.insert(key.to_string(), v.clone());
                            }
                        }
                        _ => {
                            objects.insert(key.to_string(), object(key, rev, u.arbitrary()?));
                        }
                    }
                }
                let next_seq = m.next_seq();
                cache.reset(
                    objects
                        .iter()
                        .map(|(k, v)| (k.clone(), Arc::new(CachedObject::new(v.clone()))))
                        .collect(),
                    rev,
                );
                m.ready = true;
                m.epoch += 1;
                m.rev = rev;
                m.list_rev = rev;
                m.oldest_rv = rev;
                m.objects = objects;
                m.events.clear();
                m.epoch_first_seq = next_seq;
            }
            4 => {
                let rv = m.rev + u.int_in_range(-10..=2i64)?;
                let got = cache.start(rv);
                let want = if rv < m.oldest_rv {
                    Start::TooOld(m.oldest_rv)
                } else if rv > m.rev {
                    Start::TooNew(m.rev)
                } else {
                    let first = m.events.iter().position(|e| e.rev > rv);
                    Start::At(m.epoch_first_seq + first.unwrap_or(m.events.len()) as u64)
                };
                assert_eq!(got, want, "start({rv})");
                if let Start::At(cursor) = got {
                    assert!(cursor >= m.first_retained(), "start inside the history");
                    watchers.push(Watcher {
                        epoch: cache.epoch(),
                        rv,
                        cursor,
                    });
                }
            }
            5 => {
                if watchers.is_empty() {
                    continue;
                }
                let i = u.choose_index(watchers.len())?;
                let max = u.int_in_range(1..=8usize)?;
                let w = &mut watchers[i];
                match cache.read(w.epoch, w.cursor, max) {
                    Err(Behind::Restarted) => {
                        assert_ne!(w.epoch, m.epoch, "restarted without a re-list");
                        watchers.swap_remove(i);
                    }
                    Err(Behind::FellBehind) => {
                        assert_eq!(w.epoch, m.epoch, "a stale epoch must read as Restarted");
                        assert!(
                            w.cursor < m.first_retained(),
                            "fell behind inside the history"
                        );
                        watchers.swap_remove(i);
                    }
                    Ok(events) => {
                        assert_eq!(w.epoch, m.epoch, "read across a re-list");
                        assert!(w.cursor >= m.first_retained(), "read below the history");
                        let available = (m.next_seq() - w.cursor) as usize;
                        assert_eq!(events.len(), available.min(max), "batch size");
                        for e in &events {
                            assert!(e.rev > w.rv, "event at {} for a watch from {}", e.rev, w.rv);
                            assert_eq!(e.seq, w.cursor, "events are contiguous");
                            let want = m.event(e.seq);
                            assert_eq!(e.rev, want.rev);
                            assert_eq!(e.key, want.key);
                            assert_eq!(e.deleted, want.deleted);
                            assert_eq!(**e.object, want.object);
                            // The encoding made once for every list and watcher is the object.
                            let encoded: Value = serde_json::from_slice(e.object.json()).unwrap();
                            assert_eq!(encoded, want.object);
                            assert_eq!(e.old.as_deref().map(|o| &**o), want.old.as_ref());
                            for f in &filters {
                                let _ = e.translate(f);
                                let _ = e.line_for(f);
                            }
                            w.cursor += 1;
                        }
                    }
                }
            }
            _ => {
                let prefix = PREFIXES[u.choose_index(PREFIXES.len())?];
                let (objs, rev, seq) = cache.snapshot(prefix);
                let want: Vec<&Value> = m
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v)
                    .collect();
                let got: Vec<&Value> = objs.iter().map(|v| &***v).collect();
                assert_eq!(got, want, "snapshot({prefix:?})");
                assert_eq!(rev, m.rev, "snapshot revision");
                assert_eq!(seq, m.next_seq(), "snapshot history position");
            }
        }
        assert_eq!(cache.ready(), m.ready);
        assert_eq!(cache.rev(), m.rev);
        assert_eq!(cache.epoch(), m.epoch);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
