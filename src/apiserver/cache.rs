//! The watch cache: one store watch per resource type feeds an in-memory copy of that
//! resource's objects and a bounded history of its recent changes; every API watch (and
//! every `resourceVersion=0` list) is served from here instead of opening its own store
//! watch. A thousand watchers cost the store one watch.
//!
//! [`CacheState`] is the pure core (apply a change, find where a watch starts, read a batch);
//! [`WatchCache`] drives it from the store. Watchers do not get their own queues: each one
//! keeps a cursor into the shared history and reads batches from it. A watcher that falls
//! further behind than the history reaches is closed, so a slow client costs no memory; the
//! client re-watches from the last `resourceVersion` it saw (and re-lists on 410).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::Notify;

use super::objects;
use super::resources::Resource;
use super::selector::Filter;
use super::storage::{self, Storage, StorageError};
use crate::platform::time::Clock;
use crate::store::pb::etcdserverpb as pb;
use crate::store::pb::mvccpb;

/// Changes kept per resource type; a watch can start from any revision they cover.
pub const WATCH_CACHE_HISTORY_EVENTS: usize = 4096;
/// Objects read per store request while (re)filling a cache.
pub const CACHE_LIST_PAGE_OBJECTS: i64 = 5_000;
/// How often an idle cache asks the store how far it has got (so bookmarks and
/// freshness checks see the current revision).
pub const CACHE_PROGRESS_INTERVAL_MS: u64 = 1_000;
/// Pause before a cache whose store watch failed lists again.
pub const CACHE_RETRY_BACKOFF_MS: u64 = 200;
/// Longest a watch waits for the cache to reach the revision it asked for (upstream: 3 s).
pub const CACHE_FRESHNESS_WAIT_MS: u64 = 3_000;
/// Events a watcher takes from the history per lock.
pub const WATCHER_BATCH_EVENTS: usize = 128;

/// An object as the cache holds it: decoded (selectors and admission read it) and, from the
/// first list or watch that needs it, its JSON encoding, which every later list and watch
/// line splices in instead of encoding the object again.
#[derive(Debug)]
pub struct CachedObject {
    value: Value,
    json: OnceLock<Bytes>,
}

impl CachedObject {
    pub fn new(value: Value) -> CachedObject {
        CachedObject {
            value,
            json: OnceLock::new(),
        }
    }

    /// The object's JSON encoding (made once).
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| {
            Bytes::from(serde_json::to_vec(&self.value).expect("JSON values serialize"))
        })
    }
}

impl std::ops::Deref for CachedObject {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

/// One change to one object, as the cache saw it.
#[derive(Debug)]
pub struct CacheEvent {
    /// Position in the cache's history (dense, increasing).
    pub seq: u64,
    pub rev: i64,
    pub key: String,
    /// What a watcher receives: the new object, or for a delete the last state with the
    /// delete's revision.
    pub object: Arc<CachedObject>,
    /// The object before the change, if it existed (selectors are applied to both).
    pub old: Option<Arc<CachedObject>>,
    pub deleted: bool,
    /// The encoded line for watchers without selectors, made once for all of them: a
    /// thousand watchers then share one buffer instead of copying the object's JSON each. It
    /// costs a second copy of the object's JSON per history event (bounded by the history).
    plain_line: OnceLock<Bytes>,
}

impl CacheEvent {
    /// The event a watcher with `filter` receives, if any.
    pub fn translate(&self, filter: &Filter) -> Option<&'static str> {
        let old_matches = self.old.as_deref().is_some_and(|o| filter.matches(o));
        if self.deleted {
            return old_matches.then_some("DELETED");
        }
        match (old_matches, filter.matches(&self.object)) {
            (false, true) => Some("ADDED"),
            (true, true) => Some("MODIFIED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        }
    }

    /// The encoded event line for a watcher with `filter`, if it receives one.
    pub fn line_for(&self, filter: &Filter) -> Option<Bytes> {
        if filter.is_everything() {
            let line = self.plain_line.get_or_init(|| {
                let kind = self
                    .translate(filter)
                    .expect("an unfiltered watcher sees all");
                super::watch::encoded_event_line(kind, self.object.json())
            });
            return Some(line.clone());
        }
        let kind = self.translate(filter)?;
        Some(super::watch::encoded_event_line(kind, self.object.json()))
    }
}

/// Where a watch starts in the history, or why it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Read from this history position.
    At(u64),
    /// The revision is older than the history reaches (410 Expired); the oldest servable.
    TooOld(i64),
    /// The cache has not reached that revision yet; where it is.
    TooNew(i64),
}

/// Why a watcher stops reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behind {
    /// The history moved past the watcher's cursor: it was too slow.
    FellBehind,
    /// The cache re-listed; events between were never seen, so every watcher restarts.
    Restarted,
}

/// The cache's content: objects, recent history, how far it has seen.
#[derive(Debug)]
pub struct CacheState {
    /// Bumped on every re-list; a watcher from an older epoch has a hole in its stream.
    epoch: u64,
    ready: bool,
    /// Every change up to this revision is reflected.
    rev: i64,
    /// A watch can start at any revision in `[oldest_rv, rev]`.
    oldest_rv: i64,
    /// The revision of the last list; every change in the history is after it.
    list_rev: i64,
    objects: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<CacheEvent>>,
    next_seq: u64,
    capacity: usize,
}

impl CacheState {
    pub fn new(capacity: usize) -> CacheState {
        assert!(capacity > 0, "a cache needs room for at least one event");
        CacheState {
            epoch: 0,
            ready: false,
            rev: 0,
            oldest_rv: 0,
            list_rev: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            next_seq: 0,
            capacity,
        }
    }

    pub fn ready(&self) -> bool {
        self.ready
    }

    pub fn rev(&self) -> i64 {
        self.rev
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Changes whenever the objects do (not on progress alone): for callers that derive
    /// something from the objects and want to redo it only when they changed.
    pub fn content_version(&self) -> (u64, u64) {
        (self.epoch, self.next_seq)
    }

    /// Replaces everything with a fresh list read at `rev`.
    pub fn reset(&mut self, objects: BTreeMap<String, Arc<CachedObject>>, rev: i64) {
        self.epoch += 1;
        self.ready = true;
        self.rev = rev;
        self.oldest_rv = rev;
        self.list_rev = rev;
        self.objects = objects;
        self.history.clear();
    }

    /// Records a change at `rev`: `new` is the object written, `None` for a delete.
    /// A change out of revision order is refused (the store misbehaved: the caller re-lists)
    /// rather than corrupting the history.
    pub fn apply(&mut self, key: String, new: Option<Value>, rev: i64) -> Result<(), String> {
        assert!(self.ready, "changes arrive only after a list");
        if rev <= self.list_rev || rev < self.rev {
            return Err(format!(
                "change at revision {rev} after the list at {} and progress to {}",
                self.list_rev, self.rev
            ));
        }
        let old = self.objects.get(&key).cloned();
        let (object, deleted) = match new {
            Some(v) => {
                let v = Arc::new(CachedObject::new(v));
                self.objects.insert(key.clone(), v.clone());
                (v, false)
            }
            None => {
                let Some(prev) = self.objects.remove(&key) else {
                    // A delete of something this cache never held (written before the list
                    // and gone by now cannot happen; be lenient for foreign keys).
                    self.rev = rev;
                    return Ok(());
                };
                let mut gone = prev.value.clone();
                gone["metadata"]["resourceVersion"] = Value::String(rev.to_string());
                (Arc::new(CachedObject::new(gone)), true)
            }
        };
        self.history.push_back(Arc::new(CacheEvent {
            seq: self.next_seq,
            rev,
            key,
            object,
            old,
            deleted,
            plain_line: OnceLock::new(),
        }));
        self.next_seq += 1;
        self.rev = rev;
        while self.history.len() > self.capacity {
            let dropped = self.history.pop_front().expect("non-empty");
            // Events at the dropped revision may be gone: a watch must start at or after it.
            self.oldest_rv = self.oldest_rv.max(dropped.rev);
        }
        Ok(())
    }

    /// The store reported that nothing under this resource changed up to `rev`.
    pub fn progress(&mut self, rev: i64) {
        if self.ready {
            self.rev = self.rev.max(rev);
        }
    }

    /// Where a watch from `rv` (it has seen everything up to `rv`) starts.
    pub fn start(&self, rv: i64) -> Start {
        if rv < self.oldest_rv {
            return Start::TooOld(self.oldest_rv);
        }
        if rv > self.rev {
            return Start::TooNew(self.rev);
        }
        let first = self.history.partition_point(|e| e.rev <= rv);
        Start::At(self.next_seq - (self.history.len() - first) as u64)
    }

    /// Up to `max` events from position `seq` on, for a watcher of `epoch`.
    pub fn read(&self, epoch: u64, seq: u64, max: usize) -> Result<Vec<Arc<CacheEvent>>, Behind> {
        if epoch != self.epoch {
            return Err(Behind::Restarted);
        }
        let first = self.next_seq - self.history.len() as u64;
        if seq < first {
            return Err(Behind::FellBehind);
        }
        assert!(seq <= self.next_seq, "cursor {seq} beyond the history");
        let skip = (seq - first) as usize;
        Ok(self.history.iter().skip(skip).take(max).cloned().collect())
    }

    /// The current object at `key`.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.objects.get(key).cloned()
    }

    /// The current objects whose keys start with `prefix`, with the revision and the history
    /// position they correspond to.
    pub fn snapshot(&self, prefix: &str) -> (Vec<Arc<CachedObject>>, i64, u64) {
        let objs = self
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (objs, self.rev, self.next_seq)
    }
}

fn lock(m: &Mutex<CacheState>) -> MutexGuard<'_, CacheState> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One resource type's cache and the signals around it.
pub struct WatchCache {
    pub resource: &'static Resource,
    state: Mutex<CacheState>,
    /// Woken whenever the state changes.
    changed: Notify,
    /// A watcher needs a revision the cache has not reached: ask the store for progress now.
    progress_wanted: Notify,
}

impl WatchCache {
    fn new(resource: &'static Resource) -> WatchCache {
        WatchCache {
            resource,
            state: Mutex::new(CacheState::new(WATCH_CACHE_HISTORY_EVENTS)),
            changed: Notify::new(),
            progress_wanted: Notify::new(),
        }
    }

    /// Runs `f` on the state under the lock.
    pub fn with<T>(&self, f: impl FnOnce(&CacheState) -> T) -> T {
        f(&lock(&self.state))
    }

    /// Waits until `ready(state)` holds or `wait` passes; true if it holds.
    pub async fn wait_for(
        &self,
        clock: &Clock,
        wait: Duration,
        ready: impl Fn(&CacheState) -> bool,
    ) -> bool {
        let answer = |s: &CacheState| ready(s).then_some(());
        self.wait_then(clock, wait, answer).await.is_some()
    }

    /// Waits until `answer(state)` gives something, or `wait` passes; what it gave (taken
    /// under the same lock as the check, so it reflects the state that passed it).
    pub async fn wait_then<T>(
        &self,
        clock: &Clock,
        wait: Duration,
        answer: impl Fn(&CacheState) -> Option<T>,
    ) -> Option<T> {
        let waiting = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(v) = self.with(&answer) {
                    return v;
                }
                self.progress_wanted.notify_one();
                notified.await;
            }
        };
        clock.timeout(wait, waiting).await.ok()
    }

    /// A future that completes at the next change (create it before checking the state).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Keeps the cache filled from the store, forever.
    async fn feed(self: Arc<Self>, storage: Storage, clock: Clock) {
        let prefix = super::route::collection_prefix(self.resource, None);
        loop {
            match self.fill(&storage, &prefix).await {
                Ok(rev) => {
                    let e = self.follow(&storage, &prefix, rev + 1, &clock).await;
                    tracing::debug!(resource = self.resource.plural, error = %e, "watch cache re-lists");
                }
                Err(e) => {
                    tracing::debug!(resource = self.resource.plural, error = %e, "watch cache cannot list");
                }
            }
            clock
                .sleep(Duration::from_millis(CACHE_RETRY_BACKOFF_MS))
                .await;
        }
    }

    /// Lists every object (page by page at one revision) and resets the cache to them.
    async fn fill(&self, storage: &Storage, prefix: &str) -> Result<i64, StorageError> {
        let end = storage::prefix_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        let mut rev = 0;
        let mut objects = BTreeMap::new();
        loop {
            let page = storage
                .list_page(&start, &end, CACHE_LIST_PAGE_OBJECTS, rev)
                .await?;
            rev = page.revision;
            for (key, s) in &page.items {
                let key = String::from_utf8_lossy(key).into_owned();
                match objects::from_stored(&s.value, s.mod_revision) {
                    Ok(obj) => {
                        objects.insert(key, Arc::new(CachedObject::new(obj)));
                    }
                    Err(e) => tracing::warn!(key, error = %e, "undecodable object in the store"),
                }
            }
            match (page.more, page.items.last()) {
                (true, Some((last, _))) => {
                    start = last.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        lock(&self.state).reset(objects, rev);
        self.changed.notify_waiters();
        Ok(rev)
    }

    /// Applies the store's changes from `start` until the store watch ends.
    async fn follow(
        &self,
        storage: &Storage,
        prefix: &str,
        start: i64,
        clock: &Clock,
    ) -> StorageError {
        let mut watch = match storage.watch(prefix.as_bytes(), start).await {
            Ok(w) => w,
            Err(e) => return e,
        };
        let mut ticker = clock.interval(Duration::from_millis(CACHE_PROGRESS_INTERVAL_MS));
        loop {
            let msg = tokio::select! {
                biased;
                m = watch.responses.message() => m,
                _ = self.progress_wanted.notified() => {
                    let _ = watch.requests.try_send(progress_request());
                    continue;
                }
                _ = ticker.tick() => {
                    let _ = watch.requests.try_send(progress_request());
                    continue;
                }
            };
            let msg = match msg {
                Ok(Some(m)) => m,
                Ok(None) => return StorageError::Unavailable("the store ended the watch".into()),
                Err(s) => return StorageError::Unavailable(s.message().to_string()),
            };
            if msg.canceled {
                return StorageError::Compacted;
            }
            if let Err(e) = self.absorb(&msg) {
                return StorageError::Unavailable(e);
            }
        }
    }

    /// Folds one store watch response into the state and wakes the watchers; an error means
    /// the history can no longer be trusted (re-list).
    fn absorb(&self, msg: &pb::WatchResponse) -> Result<(), String> {
        if msg.created {
            return Ok(());
        }
        let mut state = lock(&self.state);
        for ev in &msg.events {
            let Some(kv) = &ev.kv else { continue };
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            let new = if ev.r#type == mvccpb::event::EventType::Delete as i32 {
                None
            } else {
                match objects::from_stored(&kv.value, kv.mod_revision) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::warn!(key, error = %e, "undecodable object in the store");
                        continue;
                    }
                }
            };
            let applied = state.apply(key, new, kv.mod_revision);
            if applied.is_err() {
                drop(state);
                self.changed.notify_waiters();
                return applied;
            }
        }
        if msg.events.is_empty() {
            let rev = msg.header.as_ref().map(|h| h.revision).unwrap_or(0);
            state.progress(rev);
        }
        drop(state);
        self.changed.notify_waiters();
        Ok(())
    }
}

fn progress_request() -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
            pb::WatchProgressRequest {},
        )),
    }
}

/// Every resource type's cache, started on first use.
pub struct Caches {
    storage: Storage,
    clock: Clock,
    caches: Mutex<BTreeMap<(&'static str, &'static str), Arc<WatchCache>>>,
}

impl Caches {
    pub fn new(storage: Storage, clock: Clock) -> Caches {
        Caches {
            storage,
            clock,
            caches: Mutex::new(BTreeMap::new()),
        }
    }

    /// The cache of `r`, started (listing and watching the store) if this is its first use.
    pub fn of(&self, r: &'static Resource) -> Arc<WatchCache> {
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        caches
            .entry((r.group, r.plural))
            .or_insert_with(|| {
                let cache = Arc::new(WatchCache::new(r));
                let feeder = cache.clone().feed(self.storage.clone(), self.clock.clone());
                crate::platform::task::spawn(feeder);
                cache
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::selector::LabelSelector;
    use proptest::prelude::*;
    use serde_json::json;

    fn pod(name: &str, app: &str, rev: i64) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": app}, "resourceVersion": rev.to_string()}})
    }

    fn key(name: &str) -> String {
        format!("/registry/pods/a/{name}")
    }

    fn filled(capacity: usize) -> CacheState {
        let mut s = CacheState::new(capacity);
        let mut objs = BTreeMap::new();
        objs.insert(key("p0"), Arc::new(CachedObject::new(pod("p0", "web", 3))));
        s.reset(objs, 10);
        s
    }

    #[test]
    fn a_watch_starts_after_the_revision_it_has_seen() {
        let mut s = filled(8);
        s.apply(key("p1"), Some(pod("p1", "web", 11)), 11).unwrap();
        s.apply(key("p1"), Some(pod("p1", "db", 12)), 12).unwrap();
        s.apply(key("p0"), None, 13).unwrap();
        assert_eq!(s.start(9), Start::TooOld(10));
        assert_eq!(s.start(10), Start::At(0));
        assert_eq!(s.start(12), Start::At(2));
        assert_eq!(s.start(13), Start::At(3));
        assert_eq!(s.start(14), Start::TooNew(13));
        s.progress(20);
        assert_eq!(s.start(20), Start::At(3));
        let evs = s.read(s.epoch(), 0, 10).unwrap();
        assert_eq!(evs.len(), 3);
        let web = Filter {
            labels: LabelSelector::parse("app=web").unwrap(),
            ..Default::default()
        };
        let kinds: Vec<_> = evs.iter().map(|e| e.translate(&web)).collect();
        assert_eq!(kinds, [Some("ADDED"), Some("DELETED"), Some("DELETED")]);
        let all: Vec<_> = evs
            .iter()
            .map(|e| e.translate(&Filter::default()))
            .collect();
        assert_eq!(all, [Some("ADDED"), Some("MODIFIED"), Some("DELETED")]);
        assert_eq!(evs[2].object["metadata"]["resourceVersion"], "13");
        assert_eq!(evs[2].object["metadata"]["labels"]["app"], "web");
    }

    #[test]
    fn changes_out_of_revision_order_are_refused() {
        let mut s = filled(4);
        assert!(
            s.apply(key("p1"), None, 10).is_err(),
            "at the list revision"
        );
        s.apply(key("p1"), Some(pod("p1", "web", 12)), 12).unwrap();
        s.progress(15);
        assert!(s.apply(key("p1"), None, 14).is_err(), "behind progress");
        assert_eq!(
            s.read(s.epoch(), 0, 10).unwrap().len(),
            1,
            "the history is intact"
        );
    }

    #[test]
    fn slow_watchers_fall_behind_and_relists_restart_everyone() {
        let mut s = filled(2);
        let epoch = s.epoch();
        for rev in 11..=14 {
            s.apply(key("p1"), Some(pod("p1", "web", rev)), rev)
                .unwrap();
        }
        assert_eq!(s.read(epoch, 1, 10).unwrap_err(), Behind::FellBehind);
        assert_eq!(s.read(epoch, 2, 10).unwrap().len(), 2);
        assert_eq!(
            s.start(11),
            Start::TooOld(12),
            "the change at 12 was dropped"
        );
        assert_eq!(s.start(12), Start::At(2));
        assert_eq!(s.start(13), Start::At(3));
        s.reset(BTreeMap::new(), 30);
        assert_eq!(s.read(epoch, 4, 10).unwrap_err(), Behind::Restarted);
        let (objs, rev, seq) = s.snapshot("/registry/pods/");
        assert_eq!((objs.len(), rev, seq), (0, 30, 4));
    }

    #[test]
    fn snapshots_are_limited_to_the_prefix() {
        let mut s = filled(4);
        s.apply("/registry/pods/b/x".into(), Some(pod("x", "web", 11)), 11)
            .unwrap();
        s.apply("/registry/pods/ab/y".into(), Some(pod("y", "web", 12)), 12)
            .unwrap();
        let (objs, rev, _) = s.snapshot("/registry/pods/a/");
        assert_eq!((objs.len(), rev), (1, 12));
        assert_eq!(s.snapshot("/registry/pods/").0.len(), 3);
    }

    proptest! {
        /// Replaying the history from any servable revision onto the objects as they were
        /// then gives the objects as they are now.
        #[test]
        fn history_replays_to_the_current_objects(
            ops in proptest::collection::vec((0u8..4, any::<bool>()), 1..60),
            capacity in 1usize..16,
        ) {
            let mut s = CacheState::new(capacity);
            s.reset(BTreeMap::new(), 1);
            let mut states = vec![(1, BTreeMap::new())];
            for (i, (n, put)) in ops.iter().enumerate() {
                let rev = 2 + i as i64;
                let k = key(&format!("p{n}"));
                s.apply(k, put.then(|| pod(&format!("p{n}"), "web", rev)), rev).unwrap();
                let now: BTreeMap<String, Value> =
                    s.objects.iter().map(|(k, v)| (k.clone(), (**v).clone())).collect();
                states.push((rev, now));
            }
            let current = states.last().unwrap().1.clone();
            for (rv, then) in &states {
                match s.start(*rv) {
                    Start::At(seq) => {
                        let mut objs = then.clone();
                        for ev in s.read(s.epoch(), seq, usize::MAX).unwrap() {
                            prop_assert!(ev.rev > *rv);
                            if ev.deleted {
                                objs.remove(&ev.key);
                            } else {
                                objs.insert(ev.key.clone(), (*ev.object).clone());
                            }
                        }
                        prop_assert_eq!(&objs, &current);
                    }
                    Start::TooOld(oldest) => prop_assert!(*rv < oldest),
                    Start::TooNew(_) => prop_assert!(false, "every recorded revision is reached"),
                }
            }
        }
    }
}
