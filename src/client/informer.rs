//! Informers: keep a local, read-only copy of one kind's objects (list, then watch from the
//! list's resourceVersion) and tell a controller what changed. A watch that ends is resumed
//! from the last resourceVersion seen (bookmarks advance it on quiet resources); a 410
//! Expired means events were lost, so the informer lists again and reports the difference
//! as adds, updates and deletes. A periodic resync re-delivers every object as an update, so
//! a controller that dropped a key picks it up again (level-triggered).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Api, ClientError, Event, ListParams};
use crate::api::kind::Kind;
use crate::platform::task::Shutdown;
use crate::platform::time::Clock;

/// Page size of a consistent re-list.
pub const RELIST_PAGE_OBJECTS: i64 = 500;
/// First and longest pause after a failed list or watch.
pub const INFORMER_BACKOFF_MIN_MS: u64 = 100;
pub const INFORMER_BACKOFF_MAX_MS: u64 = 30_000;
/// Length of one watch request (the informer re-watches when it ends).
pub const INFORMER_WATCH_SECS: u64 = 300;
/// Changes queued for the controller before the informer waits for it.
pub const CHANGE_QUEUE: usize = 1024;

/// The cache key of an object: `namespace/name`, or `name` for cluster-scoped kinds.
pub fn key_of<K: Kind>(obj: &K) -> String {
    let m = obj.metadata();
    if m.namespace.is_empty() {
        m.name.clone()
    } else {
        format!("{}/{}", m.namespace, m.name)
    }
}

/// What changed in the cache.
#[derive(Debug, Clone)]
pub enum Change<K> {
    Added(Arc<K>),
    /// Old and new; equal objects mean a resync.
    Updated(Arc<K>, Arc<K>),
    Deleted(Arc<K>),
}

/// The informer's cache, shared read-only with its users.
pub struct Store<K> {
    map: Arc<RwLock<BTreeMap<String, Arc<K>>>>,
    synced: Arc<AtomicBool>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store {
            map: self.map.clone(),
            synced: self.synced.clone(),
        }
    }
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            map: Arc::new(RwLock::new(BTreeMap::new())),
            synced: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<K: Kind> Store<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<K>>> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<K>>> {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.read().get(key).cloned()
    }

    /// Every object, in key order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// True once the first list has been loaded.
    pub fn has_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Applies one watch event; returns the change to report.
    fn apply(&self, ev: Event<K>) -> Option<Change<K>> {
        match ev {
            Event::Added(o) | Event::Modified(o) => {
                let new = Arc::new(o);
                let old = self.write().insert(key_of(&*new), new.clone());
                Some(match old {
                    Some(old) => Change::Updated(old, new),
                    None => Change::Added(new),
                })
            }
            Event::Deleted(o) => {
                let gone = self.write().remove(&key_of(&o));
                Some(Change::Deleted(gone.unwrap_or_else(|| Arc::new(o))))
            }
            Event::Bookmark(_) | Event::Error(_) => None,
        }
    }

    /// Replaces everything with a fresh list; returns the differences.
    fn replace(&self, items: Vec<K>) -> Vec<Change<K>> {
        let mut fresh: BTreeMap<String, Arc<K>> = BTreeMap::new();
        for o in items {
            fresh.insert(key_of(&o), Arc::new(o));
        }
        let mut map = self.write();
        let mut changes = Vec::new();
        for (k, old) in map.iter() {
            if !fresh.contains_key(k) {
                changes.push(Change::Deleted(old.clone()));
            }
        }
        for (k, new) in &fresh {
            match map.get(k) {
                None => changes.push(Change::Added(new.clone())),
                Some(old) if old.metadata().resource_version != new.metadata().resource_version => {
                    changes.push(Change::Updated(old.clone(), new.clone()))
                }
                Some(_) => {}
            }
        }
        *map = fresh;
        self.synced.store(true, Ordering::Release);
        changes
    }
}

/// What an informer watches and how often it resyncs.
#[derive(Debug, Clone, Default)]
pub struct InformerConfig {
    /// Selectors (the resourceVersion fields are the informer's own).
    pub params: ListParams,
    /// Re-deliver every object this often (0: never).
    pub resync_ms: u64,
}

/// Lists everything (`first`: from the API server's cache; later: consistently, in pages).
async fn list_all<K: Kind>(
    api: &Api<K>,
    cfg: &InformerConfig,
    first: bool,
) -> Result<(Vec<K>, String), ClientError> {
    let mut p = cfg.params.clone();
    p.resource_version = if first { "0".into() } else { String::new() };
    p.limit = if first { 0 } else { RELIST_PAGE_OBJECTS };
    p.continue_token.clear();
    let mut items = Vec::new();
    loop {
        let page = api.list(&p).await?;
        items.extend(page.items);
        if page.metadata.continue_.is_empty() {
            return Ok((items, page.metadata.resource_version));
        }
        p.continue_token = page.metadata.continue_;
    }
}

/// Runs an informer until `shutdown` or until the receiver of `changes` goes away.
pub async fn run<K: Kind>(
    api: Api<K>,
    cfg: InformerConfig,
    store: Store<K>,
    changes: mpsc::Sender<Change<K>>,
    mut shutdown: Shutdown,
) {
    let clock = api.client().clock().clone();
    let mut rv: Option<String> = None;
    let mut first = true;
    let mut backoff = INFORMER_BACKOFF_MIN_MS;
    let mut resync =
        // The first resync one period after the list, not at once (the list just delivered
        // everything).
        (cfg.resync_ms > 0).then(|| clock.interval_after(Duration::from_millis(cfg.resync_ms)));
    while !shutdown.is_triggered() {
        let ok = match &rv {
            None => match list_all(&api, &cfg, first).await {
                Ok((items, list_rv)) => {
                    first = false;
                    rv = Some(list_rv);
                    let diff = store.replace(items);
                    send_all(&changes, diff).await
                }
                Err(e) => {
                    tracing::debug!(kind = K::KIND, error = %e, "informer list failed");
                    false
                }
            },
            Some(from) => {
                let from = from.clone();
                let outcome = follow(
                    &api,
                    &cfg,
                    &store,
                    &changes,
                    &from,
                    &clock,
                    &mut resync,
                    &mut shutdown,
                )
                .await;
                match outcome {
                    Followed::Until(r) => {
                        rv = Some(r);
                        true
                    }
                    Followed::Relist => {
                        rv = None;
                        true
                    }
                    Followed::Failed(r) => {
                        rv = Some(r);
                        false
                    }
                    Followed::Stop => return,
                }
            }
        };
        if changes.is_closed() {
            return;
        }
        if ok {
            backoff = INFORMER_BACKOFF_MIN_MS;
            continue;
        }
        tokio::select! {
            biased;
            _ = shutdown.wait() => return,
            _ = clock.sleep(Duration::from_millis(backoff)) => {}
        }
        backoff = (backoff * 2).min(INFORMER_BACKOFF_MAX_MS);
    }
}

async fn send_all<K>(changes: &mpsc::Sender<Change<K>>, all: Vec<Change<K>>) -> bool {
    for c in all {
        if changes.send(c).await.is_err() {
            return false;
        }
    }
    true
}

/// How one watch ended.
enum Followed {
    /// It ended normally; resume from this resourceVersion.
    Until(String),
    /// Events were lost (410): list again.
    Relist,
    /// It failed; back off, then resume from this resourceVersion.
    Failed(String),
    Stop,
}

#[allow(clippy::too_many_arguments)]
async fn follow<K: Kind>(
    api: &Api<K>,
    cfg: &InformerConfig,
    store: &Store<K>,
    changes: &mpsc::Sender<Change<K>>,
    from: &str,
    clock: &Clock,
    resync: &mut Option<crate::platform::time::Interval>,
    shutdown: &mut Shutdown,
) -> Followed {
    let mut p = cfg.params.clone();
    p.resource_version = from.to_string();
    p.bookmarks = true;
    p.timeout_secs = Some(INFORMER_WATCH_SECS);
    let mut rv = from.to_string();
    let mut stream = match api.watch(&p).await {
        Ok(s) => s,
        Err(e) if e.is_gone() => return Followed::Relist,
        Err(e) => {
            tracing::debug!(kind = K::KIND, error = %e, "informer watch failed");
            return Followed::Failed(rv);
        }
    };
    // A watch that stalls (a dead server behind a live connection) is bounded too.
    let deadline = clock.sleep(Duration::from_secs(INFORMER_WATCH_SECS + 30));
    tokio::pin!(deadline);
    loop {
        let ev = tokio::select! {
            biased;
            _ = shutdown.wait() => return Followed::Stop,
            _ = &mut deadline => return Followed::Until(rv),
            _ = async { resync.as_mut().expect("guarded").tick().await }, if resync.is_some() => {
                let all = store.list().into_iter().map(|o| Change::Updated(o.clone(), o)).collect();
                if !send_all(changes, all).await {
                    return Followed::Stop;
                }
                continue;
            }
            ev = stream.next() => ev,
        };
        let ev = match ev {
            None => return Followed::Until(rv),
            Some(Err(e)) => {
                tracing::debug!(kind = K::KIND, error = %e, "informer watch broke");
                return Followed::Failed(rv);
            }
            Some(Ok(ev)) => ev,
        };
        match &ev {
            Event::Bookmark(r) => rv = r.clone(),
            Event::Error(s) if s.code == 410 => return Followed::Relist,
            Event::Error(s) => {
                tracing::debug!(kind = K::KIND, error = %s.message, "watch error");
                return Followed::Failed(rv);
            }
            Event::Added(o) | Event::Modified(o) | Event::Deleted(o) => {
                rv = o.metadata().resource_version.clone();
            }
        }
        if let Some(change) = store.apply(ev) {
            if changes.send(change).await.is_err() {
                return Followed::Stop;
            }
        }
    }
}

/// Starts an informer task; returns its cache and the stream of changes.
pub fn start<K: Kind>(
    api: Api<K>,
    cfg: InformerConfig,
    shutdown: Shutdown,
) -> (Store<K>, mpsc::Receiver<Change<K>>) {
    let store = Store::default();
    let (tx, rx) = mpsc::channel(CHANGE_QUEUE);
    crate::platform::task::spawn(run(api, cfg, store.clone(), tx, shutdown));
    (store, rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::core::ConfigMap;

    fn cm(ns: &str, name: &str, rv: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.namespace = ns.into();
        c.metadata.name = name.into();
        c.metadata.resource_version = rv.into();
        c
    }

    #[test]
    fn a_relist_reports_the_difference() {
        let store: Store<ConfigMap> = Store::default();
        assert!(!store.has_synced());
        let first = store.replace(vec![cm("a", "x", "1"), cm("a", "y", "2")]);
        assert_eq!(first.len(), 2);
        assert!(store.has_synced());
        let diff = store.replace(vec![cm("a", "y", "3"), cm("b", "z", "4")]);
        let kinds: Vec<String> = diff
            .iter()
            .map(|c| match c {
                Change::Added(o) => format!("added {}", key_of(&**o)),
                Change::Updated(_, n) => format!("updated {}", key_of(&**n)),
                Change::Deleted(o) => format!("deleted {}", key_of(&**o)),
            })
            .collect();
        assert_eq!(kinds, ["deleted a/x", "updated a/y", "added b/z"]);
        assert_eq!(store.len(), 2);
        assert!(store.get("a/x").is_none());
    }

    #[test]
    fn events_update_the_cache() {
        let store: Store<ConfigMap> = Store::default();
        assert!(matches!(
            store.apply(Event::Added(cm("a", "x", "1"))),
            Some(Change::Added(_))
        ));
        assert!(matches!(
            store.apply(Event::Modified(cm("a", "x", "2"))),
            Some(Change::Updated(..))
        ));
        assert_eq!(store.get("a/x").unwrap().metadata.resource_version, "2");
        assert!(matches!(
            store.apply(Event::Deleted(cm("a", "x", "3"))),
            Some(Change::Deleted(_))
        ));
        assert!(store.is_empty());
        assert!(store.apply(Event::Bookmark("9".into())).is_none());
    }
}
