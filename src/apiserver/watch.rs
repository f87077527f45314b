//! Watches (`?watch=true`): a store watch on the collection's key prefix, turned into
//! Kubernetes watch events (`{"type": ..., "object": ...}` per line) and streamed.
//!
//! Selectors apply to both the old and the new object, as upstream: an object that starts
//! matching arrives as ADDED, one that stops matching as DELETED. A start revision older than
//! the store's compaction ends the watch with an ERROR event carrying a 410 `Expired` Status,
//! which tells informers to re-list.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::objects;
use super::resources::Resource;
use super::selector::Filter;
use super::storage::{Storage, StoreWatch};
use crate::api::Status;
use crate::platform::time::Clock;
use crate::store::pb::etcdserverpb as pb;
use crate::store::pb::mvccpb;

/// Encoded events buffered for a slow HTTP client before the watch waits for it.
pub const WATCH_EVENT_QUEUE: usize = 256;
/// Longest a watch lasts when the client gives no `timeoutSeconds` (upstream's default
/// minimum request timeout).
pub const DEFAULT_WATCH_TIMEOUT_SECS: u64 = 1800;
/// Longest `timeoutSeconds` honoured.
pub const MAX_WATCH_TIMEOUT_SECS: u64 = 3600;
/// How often a watch that allows bookmarks asks the store for progress.
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
    let mut line =
        serde_json::to_vec(&json!({"type": kind, "object": object})).expect("events serialize");
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(r: &Resource, revision: i64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        meta["annotations"] = json!({INITIAL_EVENTS_END: "true"});
    }
    json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": meta})
}

/// The event a store change is to a watcher with `filter`, if any.
pub fn translate(ev: &mvccpb::Event, filter: &Filter) -> Option<(&'static str, Value)> {
    let kv = ev.kv.as_ref()?;
    let old = ev
        .prev_kv
        .as_ref()
        .and_then(|p| objects::from_stored(&p.value, p.mod_revision).ok());
    let old_matches = old.as_ref().is_some_and(|o| filter.matches(o));
    if ev.r#type == mvccpb::event::EventType::Delete as i32 {
        let mut gone = old.filter(|_| old_matches)?;
        gone["metadata"]["resourceVersion"] = Value::String(kv.mod_revision.to_string());
        return Some(("DELETED", gone));
    }
    let new = objects::from_stored(&kv.value, kv.mod_revision).ok()?;
    match (old_matches, filter.matches(&new)) {
        (false, true) => Some(("ADDED", new)),
        (true, true) => Some(("MODIFIED", new)),
        (true, false) => Some(("DELETED", new)),
        (false, false) => None,
    }
}

fn expired(requested: i64, compacted: i64) -> Value {
    let message = format!("too old resource version: {requested} ({compacted})");
    serde_json::to_value(Status::failure(410, "Expired", message)).expect("Status serializes")
}

/// Runs one watch, writing event lines to `out` until the client leaves, the timeout passes,
/// or the store ends the watch.
pub async fn run(storage: Storage, spec: WatchSpec, clock: Clock, out: mpsc::Sender<Bytes>) {
    let deadline = spec.timeout;
    let _ = clock
        .timeout(deadline, stream_events(storage, spec, &clock, &out))
        .await;
}

async fn stream_events(
    storage: Storage,
    spec: WatchSpec,
    clock: &Clock,
    out: &mpsc::Sender<Bytes>,
) {
    let initial = spec.resource_version.is_none() || spec.send_initial_events;
    let start = match (spec.resource_version, initial) {
        (Some(rv), false) => rv + 1,
        _ => match send_current(&storage, &spec, out).await {
            Some(rev) => rev + 1,
            None => return,
        },
    };
    let watch = match storage.watch(spec.prefix.as_bytes(), start).await {
        Ok(w) => w,
        Err(e) => {
            send_unavailable(out, &e).await;
            return;
        }
    };
    follow(watch, &spec, start, clock, out).await;
}

/// Ends a watch with an ERROR event: the store could not be read.
async fn send_unavailable(out: &mpsc::Sender<Bytes>, e: &super::storage::StorageError) {
    let status = Status::failure(503, "ServiceUnavailable", e.to_string());
    let object = serde_json::to_value(status).expect("Status serializes");
    let _ = out.send(event_line("ERROR", &object)).await;
}

/// Sends the current objects as ADDED (and the end-of-initial-events bookmark when asked);
/// returns the revision they were read at.
async fn send_current(
    storage: &Storage,
    spec: &WatchSpec,
    out: &mpsc::Sender<Bytes>,
) -> Option<i64> {
    let (items, rev) = match storage.list(spec.prefix.as_bytes()).await {
        Ok(v) => v,
        Err(e) => {
            send_unavailable(out, &e).await;
            return None;
        }
    };
    for s in items {
        let Ok(obj) = objects::from_stored(&s.value, s.mod_revision) else {
            continue;
        };
        if spec.filter.matches(&obj) && out.send(event_line("ADDED", &obj)).await.is_err() {
            return None;
        }
    }
    if spec.send_initial_events {
        let b = bookmark(spec.resource, rev, true);
        out.send(event_line("BOOKMARK", &b)).await.ok()?;
    }
    Some(rev)
}

fn progress_request() -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
            pb::WatchProgressRequest {},
        )),
    }
}

async fn follow(
    mut watch: StoreWatch,
    spec: &WatchSpec,
    start: i64,
    clock: &Clock,
    out: &mpsc::Sender<Bytes>,
) {
    let mut ticker = clock.interval(Duration::from_millis(BOOKMARK_INTERVAL_MS));
    loop {
        let msg = tokio::select! {
            biased;
            // The client went away: end the store watch now, not at the next event.
            _ = out.closed() => return,
            m = watch.responses.message() => m,
            _ = ticker.tick(), if spec.bookmarks => {
                let _ = watch.requests.try_send(progress_request());
                continue;
            }
        };
        let Ok(Some(msg)) = msg else {
            return;
        };
        if msg.canceled {
            if msg.compact_revision > 0 {
                let _ = out
                    .send(event_line(
                        "ERROR",
                        &expired(start - 1, msg.compact_revision),
                    ))
                    .await;
            }
            return;
        }
        if !deliver(&msg, spec, out).await {
            return;
        }
    }
}

/// Sends what one store response means to this watcher; false when the client is gone.
async fn deliver(msg: &pb::WatchResponse, spec: &WatchSpec, out: &mpsc::Sender<Bytes>) -> bool {
    if msg.created {
        return true;
    }
    if msg.events.is_empty() {
        if spec.bookmarks {
            let rev = msg.header.as_ref().map(|h| h.revision).unwrap_or(0);
            let b = bookmark(spec.resource, rev, false);
            return out.send(event_line("BOOKMARK", &b)).await.is_ok();
        }
        return true;
    }
    for ev in &msg.events {
        if let Some((kind, obj)) = translate(ev, &spec.filter) {
            if out.send(event_line(kind, &obj)).await.is_err() {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::selector::LabelSelector;

    fn kv(name: &str, app: &str, rev: i64) -> mvccpb::KeyValue {
        let obj = json!({"metadata": {"name": name, "labels": {"app": app}}});
        mvccpb::KeyValue {
            key: format!("/registry/pods/a/{name}").into_bytes(),
            value: serde_json::to_vec(&obj).unwrap(),
            mod_revision: rev,
            ..Default::default()
        }
    }

    fn put(new: mvccpb::KeyValue, old: Option<mvccpb::KeyValue>) -> mvccpb::Event {
        mvccpb::Event {
            r#type: mvccpb::event::EventType::Put as i32,
            kv: Some(new),
            prev_kv: old,
        }
    }

    #[test]
    fn selectors_turn_changes_into_added_modified_deleted() {
        let web = Filter {
            labels: LabelSelector::parse("app=web").unwrap(),
            ..Default::default()
        };
        let kind = |ev: &mvccpb::Event| {
            translate(ev, &web).map(|(k, o)| (k, o["metadata"]["resourceVersion"].clone()))
        };
        assert_eq!(
            kind(&put(kv("p", "web", 5), None)),
            Some(("ADDED", json!("5")))
        );
        assert_eq!(
            kind(&put(kv("p", "web", 6), Some(kv("p", "web", 5)))),
            Some(("MODIFIED", json!("6")))
        );
        assert_eq!(
            kind(&put(kv("p", "db", 7), Some(kv("p", "web", 6)))),
            Some(("DELETED", json!("7")))
        );
        assert_eq!(
            kind(&put(kv("p", "web", 8), Some(kv("p", "db", 7)))),
            Some(("ADDED", json!("8")))
        );
        assert_eq!(kind(&put(kv("p", "db", 9), None)), None);
        let mut gone = kv("p", "", 10);
        gone.value.clear();
        let del = mvccpb::Event {
            r#type: mvccpb::event::EventType::Delete as i32,
            kv: Some(gone),
            prev_kv: Some(kv("p", "web", 8)),
        };
        let (k, obj) = translate(&del, &web).unwrap();
        assert_eq!(
            (k, obj["metadata"]["resourceVersion"].clone()),
            ("DELETED", json!("10"))
        );
        assert_eq!(
            obj["metadata"]["labels"]["app"], "web",
            "the last state is sent"
        );
    }

    #[test]
    fn lines_and_bookmarks_have_the_upstream_shape() {
        let line = event_line("ADDED", &json!({"a": 1}));
        assert_eq!(&line[..], b"{\"object\":{\"a\":1},\"type\":\"ADDED\"}\n");
        let r = crate::apiserver::resources::find("", "v1", "pods").unwrap();
        let b = bookmark(r, 42, true);
        assert_eq!(b["metadata"]["resourceVersion"], "42");
        assert_eq!(b["metadata"]["annotations"][INITIAL_EVENTS_END], "true");
        assert_eq!(expired(3, 9)["code"], 410);
    }
}
