//! Watches (`?watch=true`), served from the resource's [`WatchCache`] and streamed as
//! Kubernetes watch events (`{"type": ..., "object": ...}` per line).
//!
//! Selectors apply to both the old and the new object, as upstream: an object that starts
//! matching arrives as ADDED, one that stops matching as DELETED. A start revision older than
//! the cache's history ends the watch with an ERROR event carrying a 410 `Expired` Status,
//! which tells informers to re-list; one the cache has not reached within
//! [`CACHE_FRESHNESS_WAIT_MS`] gets upstream's 504 "Too large resource version".

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::cache::{Start, WatchCache, CACHE_FRESHNESS_WAIT_MS, WATCHER_BATCH_EVENTS};
use super::resources::Resource;
use super::selector::Filter;
use crate::api::Status;
use crate::platform::time::Clock;

/// Encoded events buffered for a slow HTTP client before the watch waits for it.
pub const WATCH_EVENT_QUEUE: usize = 256;
/// Longest a watch lasts when the client gives no `timeoutSeconds` (upstream's default
/// minimum request timeout).
pub const DEFAULT_WATCH_TIMEOUT_SECS: u64 = 1800;
/// Longest `timeoutSeconds` honoured.
pub const MAX_WATCH_TIMEOUT_SECS: u64 = 3600;
/// How often an idle watch that allows bookmarks gets one (at the watch cache's revision).
pub const BOOKMARK_INTERVAL_MS: u64 = 60_000;
/// Annotation on the bookmark that ends the initial events of a watch-list.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// What one watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub resource: &'static Resource,
    pub prefix: String,
    pub filter: Filter,
    /// `None`: start from now, after sending the current objects as ADDED.
    pub resource_version: Option<i64>,
    /// `sendInitialEvents=true`: current objects, then a bookmark marking their end.
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
}

/// Encodes one watch event as a line.
pub fn event_line(kind: &str, object: &Value) -> Bytes {
    encoded_event_line(kind, &serde_json::to_vec(object).expect("events serialize"))
}

/// A watch event line around an object already encoded as JSON (the watch cache's objects
/// are encoded once for every watcher and list).
pub fn encoded_event_line(kind: &str, object_json: &[u8]) -> Bytes {
    const HEAD: &[u8] = b"{\"type\":\"";
    const MIDDLE: &[u8] = b"\",\"object\":";
    let mut line =
        Vec::with_capacity(HEAD.len() + kind.len() + MIDDLE.len() + object_json.len() + 2);
    line.extend_from_slice(HEAD);
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(MIDDLE);
    line.extend_from_slice(object_json);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn bookmark(r: &Resource, revision: i64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        meta["annotations"] = json!({INITIAL_EVENTS_END: "true"});
    }
    json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": meta})
}

fn expired(requested: i64, oldest: i64) -> Value {
    let message = format!("too old resource version: {requested} ({oldest})");
    serde_json::to_value(Status::failure(410, "Expired", message)).expect("Status serializes")
}

fn too_large(requested: i64, current: i64) -> Value {
    let message = format!("Too large resource version: {requested}, current: {current}");
    let mut s = Status::failure(504, "Timeout", message);
    s.details = Some(crate::api::StatusDetails {
        causes: vec![crate::api::StatusCause {
            reason: "ResourceVersionTooLarge".into(),
            message: "Too large resource version".into(),
            field: String::new(),
        }],
        ..Default::default()
    });
    serde_json::to_value(s).expect("Status serializes")
}

fn not_ready() -> Value {
    let m = "the watch cache is not ready: the store cannot be read".to_string();
    serde_json::to_value(Status::failure(503, "ServiceUnavailable", m)).expect("Status serializes")
}

/// Runs one watch from the resource's cache, writing event lines to `out` until the client
/// leaves, the timeout passes, or the watcher falls behind the cache's history.
pub async fn run(cache: Arc<WatchCache>, spec: WatchSpec, clock: Clock, out: mpsc::Sender<Bytes>) {
    let deadline = spec.timeout;
    let _ = clock
        .timeout(deadline, stream_events(&cache, &spec, &clock, &out))
        .await;
}

async fn stream_events(
    cache: &WatchCache,
    spec: &WatchSpec,
    clock: &Clock,
    out: &mpsc::Sender<Bytes>,
) {
    let wait = Duration::from_millis(CACHE_FRESHNESS_WAIT_MS);
    let want = spec.resource_version.unwrap_or(0);
    if !cache.wait_for(clock, wait, |s| s.ready()).await {
        let _ = out.send(event_line("ERROR", &not_ready())).await;
        return;
    }
    if !cache.wait_for(clock, wait, |s| s.rev() >= want).await {
        let current = cache.with(|s| s.rev());
        let _ = out
            .send(event_line("ERROR", &too_large(want, current)))
            .await;
        return;
    }
    let initial = spec.resource_version.is_none() || spec.send_initial_events;
    let (epoch, cursor) = if initial {
        match send_current(cache, spec, out).await {
            Some(at) => at,
            None => return,
        }
    } else {
        let (epoch, start) = cache.with(|s| (s.epoch(), s.start(want)));
        match start {
            Start::At(seq) => (epoch, seq),
            Start::TooOld(oldest) => {
                let _ = out.send(event_line("ERROR", &expired(want, oldest))).await;
                return;
            }
            Start::TooNew(_) => unreachable!("waited until the cache reached {want}"),
        }
    };
    follow(cache, spec, clock, out, epoch, cursor).await;
}

/// Sends the cache's current objects as ADDED (and the end-of-initial-events bookmark when
/// asked); returns the epoch and history position they correspond to.
async fn send_current(
    cache: &WatchCache,
    spec: &WatchSpec,
    out: &mpsc::Sender<Bytes>,
) -> Option<(u64, u64)> {
    let (epoch, (objs, rev, seq)) = cache.with(|s| (s.epoch(), s.snapshot(&spec.prefix)));
    for obj in objs {
        let line = || encoded_event_line("ADDED", obj.json());
        if spec.filter.matches(&obj) && out.send(line()).await.is_err() {
            return None;
        }
    }
    if spec.send_initial_events {
        let b = bookmark(spec.resource, rev, true);
        out.send(event_line("BOOKMARK", &b)).await.ok()?;
    }
    Some((epoch, seq))
}

/// Streams the cache's history from `cursor` on.
async fn follow(
    cache: &WatchCache,
    spec: &WatchSpec,
    clock: &Clock,
    out: &mpsc::Sender<Bytes>,
    epoch: u64,
    mut cursor: u64,
) {
    let mut ticker = clock.interval(Duration::from_millis(BOOKMARK_INTERVAL_MS));
    let mut bookmark_due = false;
    loop {
        let changed = cache.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let read = cache.with(|s| {
            s.read(epoch, cursor, WATCHER_BATCH_EVENTS)
                .map(|b| (b, s.rev()))
        });
        // Fell behind or the cache re-listed: end the stream; the client re-watches.
        let Ok((batch, rev)) = read else { return };
        if batch.is_empty() {
            if bookmark_due {
                bookmark_due = false;
                let b = bookmark(spec.resource, rev, false);
                if out.send(event_line("BOOKMARK", &b)).await.is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                biased;
                // The client went away: stop now, not at the next event.
                _ = out.closed() => return,
                _ = changed => {}
                _ = ticker.tick(), if spec.bookmarks => bookmark_due = true,
            }
            continue;
        }
        for ev in batch {
            cursor = ev.seq + 1;
            if !ev.key.starts_with(&spec.prefix) {
                continue;
            }
            if let Some(line) = ev.line_for(&spec.filter) {
                if out.send(line).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_bookmarks_have_the_upstream_shape() {
        let line = event_line("ADDED", &json!({"a": 1}));
        assert_eq!(&line[..], b"{\"type\":\"ADDED\",\"object\":{\"a\":1}}\n");
        let parsed: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, json!({"type": "ADDED", "object": {"a": 1}}));
        let r = crate::apiserver::resources::find("", "v1", "pods").unwrap();
        let b = bookmark(r, 42, true);
        assert_eq!(b["metadata"]["resourceVersion"], "42");
        assert_eq!(b["metadata"]["annotations"][INITIAL_EVENTS_END], "true");
        assert_eq!(expired(3, 9)["code"], 410);
    }
}
