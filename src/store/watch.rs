//! The watch hub: every live watcher of this member, fed from the apply loop.
//!
//! Like etcd, watchers are either *synced* (they have seen every revision up to the current
//! one and get new events pushed as revisions are applied) or *unsynced* (behind, because
//! they started from an old revision or their stream was full). Unsynced watchers catch up
//! from the MVCC history, one whole revision per response, so a txn's events always arrive
//! together, in order, without gaps or duplicates. A slow stream never grows memory: its
//! channel is bounded, and when it is full its watchers drop back to unsynced and re-read
//! history later. A watcher that falls behind the compaction point is cancelled with
//! `compact_revision`, as etcd does.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::mpsc;

use super::convert::event_to_pb;
use super::mvcc::{Event, EventKind, Mvcc, MvccError};
use super::pb::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchResponse};

/// Responses buffered per watch stream before its watchers fall back to unsynced.
pub const WATCH_STREAM_BUFFER_MESSAGES: usize = 256;
/// Most revisions one unsynced watcher replays per catch-up pass (bounds work per pass).
pub const MAX_CATCHUP_REVISIONS_PER_PASS: usize = 64;
/// Most revisions read from history for one watcher per pass (bounds memory per pass).
pub const MAX_CATCHUP_WINDOW_REVISIONS: i64 = 1024;
/// Watch id etcd uses for stream-wide progress responses.
pub const PROGRESS_WATCH_ID: i64 = -1;
/// Filter values from `WatchCreateRequest.FilterType`.
const FILTER_NOPUT: i32 = 0;
const FILTER_NODELETE: i32 = 1;

/// Where a watch stream's responses go.
pub type StreamSender = mpsc::Sender<Result<WatchResponse, tonic::Status>>;

type WatcherKey = (u64, i64);

struct Watcher {
    key: Vec<u8>,
    range_end: Vec<u8>,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    /// The first revision this watcher has not been sent yet.
    next_rev: i64,
    tx: StreamSender,
    /// The client asked for periodic progress notifications (`progress_notify`).
    progress_notify: bool,
    /// Events were sent since the last progress interval (etcd then skips the notification).
    sent_since_progress: bool,
}

/// Why a watch could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchCreateError {
    #[error("etcdserver: duplicate watch id {0} on this stream")]
    DuplicateId(i64),
    #[error("etcdserver: watch stream is backlogged")]
    Backlogged,
}

/// All watchers of one member.
#[derive(Default)]
pub struct WatchHub {
    watchers: BTreeMap<WatcherKey, Watcher>,
    unsynced: BTreeSet<WatcherKey>,
    next_auto_id: BTreeMap<u64, i64>,
    /// Planted bug (negative control): publishes left before one event is dropped.
    drop_event_countdown: Option<u64>,
    /// Planted bug (negative control): progress claims one revision too many.
    progress_ahead: bool,
}

/// True if `key` lies in the watcher's range (etcd range rules).
fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    if end.is_empty() {
        return key == start;
    }
    if end == [0] {
        return key >= start;
    }
    key >= start && key < end
}

impl Watcher {
    fn wants(&self, e: &Event) -> bool {
        let filtered = match e.kind {
            EventKind::Put => self.no_put,
            EventKind::Delete => self.no_delete,
        };
        !filtered && in_range(&e.kv.key, &self.key, &self.range_end)
    }

    fn response(&self, header: &ResponseHeader, id: i64, events: &[&Event]) -> WatchResponse {
        WatchResponse {
            header: Some(*header),
            watch_id: id,
            events: events
                .iter()
                .map(|e| event_to_pb(e, self.prev_kv))
                .collect(),
            ..Default::default()
        }
    }
}

/// The outcome of offering one response to a stream.
enum Offer {
    Sent,
    Full,
    Closed,
}

fn offer(tx: &StreamSender, resp: WatchResponse) -> Offer {
    match tx.try_send(Ok(resp)) {
        Ok(()) => Offer::Sent,
        Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
        Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
    }
}

impl WatchHub {
    /// Creates a watcher on `stream`; sends `created` (and, for a compacted start, the
    /// cancellation) through `tx`. Returns the watch id.
    pub fn create(
        &mut self,
        stream: u64,
        req: &WatchCreateRequest,
        tx: StreamSender,
        header: &ResponseHeader,
        compact_rev: i64,
    ) -> Result<i64, WatchCreateError> {
        let id = self.assign_id(stream, req.watch_id)?;
        let current = header.revision;
        let created = WatchResponse {
            header: Some(*header),
            watch_id: id,
            created: true,
            ..Default::default()
        };
        if !matches!(offer(&tx, created), Offer::Sent) {
            return Err(WatchCreateError::Backlogged);
        }
        let start = req.start_revision;
        if start > 0 && start < compact_rev {
            let cancel = WatchResponse {
                header: Some(*header),
                watch_id: id,
                canceled: true,
                compact_revision: compact_rev,
                cancel_reason: super::mvcc::MvccError::Compacted.to_string(),
                ..Default::default()
            };
            let _ = offer(&tx, cancel);
            return Ok(id);
        }
        let next_rev = if start <= 0 { current + 1 } else { start };
        let w = Watcher {
            key: req.key.clone(),
            range_end: req.range_end.clone(),
            prev_kv: req.prev_kv,
            no_put: req.filters.contains(&FILTER_NOPUT),
            no_delete: req.filters.contains(&FILTER_NODELETE),
            next_rev,
            tx,
            progress_notify: req.progress_notify,
            sent_since_progress: false,
        };
        if next_rev <= current {
            self.unsynced.insert((stream, id));
        }
        self.watchers.insert((stream, id), w);
        Ok(id)
    }

    fn assign_id(&mut self, stream: u64, requested: i64) -> Result<i64, WatchCreateError> {
        let next = self.next_auto_id.entry(stream).or_insert(0);
        if requested != 0 {
            if self.watchers.contains_key(&(stream, requested)) {
                return Err(WatchCreateError::DuplicateId(requested));
            }
            return Ok(requested);
        }
        while self.watchers.contains_key(&(stream, *next)) {
            *next += 1;
        }
        let id = *next;
        *next += 1;
        Ok(id)
    }

    /// Cancels one watcher; true if it existed.
    pub fn cancel(&mut self, stream: u64, id: i64) -> bool {
        self.unsynced.remove(&(stream, id));
        self.watchers.remove(&(stream, id)).is_some()
    }

    /// Drops every watcher of a closed stream.
    pub fn remove_stream(&mut self, stream: u64) {
        let keys: Vec<WatcherKey> = self
            .watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.unsynced.remove(&k);
            self.watchers.remove(&k);
        }
        self.next_auto_id.remove(&stream);
    }

    /// Number of live watchers (for status and tests).
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// True when there are no watchers.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Negative control only: drop the first event of the `n`th published revision.
    pub fn plant_drop_event(&mut self, n: u64) {
        self.drop_event_countdown = Some(n);
    }

    /// Negative control only: progress notifications claim one revision too many.
    pub fn plant_progress_ahead(&mut self) {
        self.progress_ahead = true;
    }

    /// The revision a progress notification reports when the store is at `current`.
    pub fn progress_revision(&self, current: i64) -> i64 {
        current + i64::from(self.progress_ahead)
    }

    /// Pushes the events of revision `rev` (one txn) to every synced watcher.
    pub fn publish(&mut self, rev: i64, events: &[Event], header: &ResponseHeader) {
        debug_assert!(events.iter().all(|e| e.kv.mod_revision == rev));
        let events = match self.drop_event_countdown.as_mut() {
            Some(0) => {
                self.drop_event_countdown = None;
                &events[1..]
            }
            Some(n) => {
                *n -= 1;
                events
            }
            None => events,
        };
        let mut closed = Vec::new();
        for (k, w) in self.watchers.iter_mut() {
            if self.unsynced.contains(k) || w.next_rev > rev {
                continue;
            }
            assert_eq!(w.next_rev, rev, "synced watcher skipped a revision");
            let mine: Vec<&Event> = events.iter().filter(|e| w.wants(e)).collect();
            if mine.is_empty() {
                w.next_rev = rev + 1;
                continue;
            }
            match offer(&w.tx, w.response(header, k.1, &mine)) {
                Offer::Sent => {
                    w.next_rev = rev + 1;
                    w.sent_since_progress = true;
                }
                Offer::Full => {
                    self.unsynced.insert(*k);
                }
                Offer::Closed => closed.push(*k),
            }
        }
        for k in closed {
            self.watchers.remove(&k);
        }
    }

    /// One progress interval passed (etcd's `--experimental-watch-progress-notify-interval`):
    /// every synced watcher that asked for `progress_notify` and was sent no events during
    /// the interval gets an empty response whose header revision it has seen everything up
    /// to. Best effort: a full stream skips it.
    pub fn notify_progress(&mut self, header: &ResponseHeader) {
        let claimed = ResponseHeader {
            revision: self.progress_revision(header.revision),
            ..*header
        };
        for (k, w) in self.watchers.iter_mut() {
            let idle = !std::mem::take(&mut w.sent_since_progress);
            if !w.progress_notify || !idle || self.unsynced.contains(k) {
                continue;
            }
            debug_assert!(
                w.next_rev > header.revision,
                "synced watcher behind the head"
            );
            let _ = offer(&w.tx, w.response(&claimed, k.1, &[]));
        }
    }

    /// Replays history to unsynced watchers whose streams have room.
    pub fn catch_up(&mut self, mvcc: &Mvcc, header: &ResponseHeader) {
        let keys: Vec<WatcherKey> = self.unsynced.iter().copied().collect();
        for k in keys {
            let Some(w) = self.watchers.get_mut(&k) else {
                self.unsynced.remove(&k);
                continue;
            };
            if w.tx.capacity() == 0 {
                continue;
            }
            match catch_up_one(w, k.1, mvcc, header) {
                CatchUp::Synced => {
                    self.unsynced.remove(&k);
                }
                CatchUp::Behind => {}
                CatchUp::Drop => {
                    self.unsynced.remove(&k);
                    self.watchers.remove(&k);
                }
            }
        }
    }

    /// True when `stream` has unsynced watchers (progress must then wait).
    pub fn stream_synced(&self, stream: u64) -> bool {
        !self.unsynced.iter().any(|(s, _)| *s == stream)
    }

    /// Marks every watcher as behind (after the state machine was replaced by a snapshot).
    pub fn mark_all_unsynced(&mut self) {
        self.unsynced = self.watchers.keys().copied().collect();
    }

    /// True when some watcher is behind and needs [`WatchHub::catch_up`].
    pub fn has_unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }
}

enum CatchUp {
    Synced,
    Behind,
    Drop,
}

fn catch_up_one(w: &mut Watcher, id: i64, mvcc: &Mvcc, header: &ResponseHeader) -> CatchUp {
    let current = header.revision;
    let window_end = current.min(w.next_rev.saturating_add(MAX_CATCHUP_WINDOW_REVISIONS));
    let events = match mvcc.events_between(w.next_rev, window_end, &w.key, &w.range_end) {
        Ok(ev) => ev,
        Err(MvccError::Compacted) => {
            let cancel = WatchResponse {
                header: Some(*header),
                watch_id: id,
                canceled: true,
                compact_revision: mvcc.compact_revision(),
                cancel_reason: MvccError::Compacted.to_string(),
                ..Default::default()
            };
            let _ = offer(&w.tx, cancel);
            return CatchUp::Drop;
        }
        Err(_) => return CatchUp::Drop,
    };
    let mut start = 0;
    let mut revisions_sent = 0;
    while start < events.len() {
        let rev = events[start].kv.mod_revision;
        let end = start
            + events[start..]
                .iter()
                .take_while(|e| e.kv.mod_revision == rev)
                .count();
        let mine: Vec<&Event> = events[start..end].iter().filter(|e| w.wants(e)).collect();
        if !mine.is_empty() {
            if revisions_sent >= MAX_CATCHUP_REVISIONS_PER_PASS {
                return CatchUp::Behind;
            }
            match offer(&w.tx, w.response(header, id, &mine)) {
                Offer::Sent => {
                    revisions_sent += 1;
                    w.sent_since_progress = true;
                }
                Offer::Full => return CatchUp::Behind,
                Offer::Closed => return CatchUp::Drop,
            }
        }
        w.next_rev = rev + 1;
        start = end;
    }
    w.next_rev = window_end + 1;
    if window_end == current {
        CatchUp::Synced
    } else {
        CatchUp::Behind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mvcc::{DeleteRangeRequest, PutRequest};
    use proptest::prelude::*;

    fn header(rev: i64) -> ResponseHeader {
        ResponseHeader {
            revision: rev,
            ..Default::default()
        }
    }

    fn create_req(start: i64, key: &[u8], end: &[u8]) -> WatchCreateRequest {
        WatchCreateRequest {
            key: key.to_vec(),
            range_end: end.to_vec(),
            start_revision: start,
            ..Default::default()
        }
    }

    #[test]
    fn progress_notify_goes_to_idle_synced_watchers_that_asked() {
        let mut m = Mvcc::new();
        let mut hub = WatchHub::default();
        let (tx, mut rx) = mpsc::channel(16);
        let asks = WatchCreateRequest {
            progress_notify: true,
            ..create_req(0, b"k", &[0])
        };
        hub.create(1, &asks, tx.clone(), &header(1), 0).unwrap();
        hub.create(1, &create_req(0, b"k", &[0]), tx.clone(), &header(1), 0)
            .unwrap();
        let behind = WatchCreateRequest {
            progress_notify: true,
            ..create_req(1, b"k", &[0])
        };
        write(&mut m, &mut hub, 1, false);
        // Created after revision 2 exists, from revision 1: unsynced, so no progress for it.
        let h = header(m.current_revision());
        hub.create(2, &behind, tx.clone(), &h, 0).unwrap();
        let drain = |rx: &mut mpsc::Receiver<_>| {
            let mut got = Vec::new();
            while let Ok(Ok::<WatchResponse, tonic::Status>(r)) = rx.try_recv() {
                got.push((r.watch_id, r.events.len(), r.header.unwrap().revision));
            }
            got
        };
        drain(&mut rx);
        // Watcher 0 got the event at revision 2 in this interval: no notification yet.
        hub.notify_progress(&h);
        assert_eq!(drain(&mut rx), vec![]);
        // Next interval, idle: watcher 0 (asked, synced) only.
        hub.notify_progress(&h);
        assert_eq!(drain(&mut rx), vec![(0, 0, 2)]);
    }

    /// Applies a write to the store and publishes its events, as the apply loop does.
    fn write(m: &mut Mvcc, hub: &mut WatchHub, key: u8, delete: bool) {
        let key = vec![b'k', key];
        let (_, events) = if delete {
            let (r, ev) = m.delete_range(&DeleteRangeRequest::single(key)).unwrap();
            (r.deleted, ev)
        } else {
            let (_, ev) = m.put(&PutRequest::new(key, b"v".to_vec())).unwrap();
            (1, ev)
        };
        if !events.is_empty() {
            hub.publish(m.current_revision(), &events, &header(m.current_revision()));
        }
    }

    /// Drains a stream: (revision of each event, events per response).
    fn drain(
        rx: &mut mpsc::Receiver<Result<WatchResponse, tonic::Status>>,
        out: &mut Vec<i64>,
    ) -> Vec<WatchResponse> {
        let mut responses = Vec::new();
        while let Ok(Ok(r)) = rx.try_recv() {
            out.extend(r.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision));
            responses.push(r);
        }
        responses
    }

    #[test]
    fn compacted_start_is_cancelled_with_the_compact_revision() {
        let mut m = Mvcc::new();
        let mut hub = WatchHub::default();
        for _ in 0..4 {
            write(&mut m, &mut hub, 1, false);
        }
        m.compact(3).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let req = create_req(2, b"k", &[0]);
        hub.create(
            1,
            &req,
            tx,
            &header(m.current_revision()),
            m.compact_revision(),
        )
        .unwrap();
        let got = drain(&mut rx, &mut Vec::new());
        assert!(got[0].created);
        assert!(got[1].canceled);
        assert_eq!(got[1].compact_revision, 3);
        assert!(hub.is_empty());
    }

    #[test]
    fn duplicate_watch_ids_on_one_stream_are_rejected() {
        let mut hub = WatchHub::default();
        let (tx, _rx) = mpsc::channel(8);
        let mut req = create_req(0, b"a", b"");
        req.watch_id = 7;
        hub.create(1, &req, tx.clone(), &header(1), 0).unwrap();
        assert_eq!(
            hub.create(1, &req, tx.clone(), &header(1), 0),
            Err(WatchCreateError::DuplicateId(7))
        );
        assert_eq!(
            hub.create(2, &req, tx, &header(1), 0),
            Ok(7),
            "other streams are separate"
        );
    }

    proptest! {
        /// Whatever the interleaving of writes, drains and catch-up passes, and however small
        /// the stream buffer, a watcher receives every matching event from its start revision
        /// exactly once, in revision order, each revision in one response.
        #[test]
        fn watchers_see_every_event_once_in_order(
            ops in proptest::collection::vec((0u8..4, any::<bool>(), 0u8..4), 1..120),
            start_after in 0usize..40,
            buffer in 1usize..4,
            prefix_only in any::<bool>(),
        ) {
            let mut m = Mvcc::new();
            let mut hub = WatchHub::default();
            let (tx, mut rx) = mpsc::channel(buffer);
            let mut seen = Vec::new();
            let mut created_at = None;
            for (i, (key, delete, action)) in ops.iter().enumerate() {
                if i == start_after.min(ops.len() - 1) && created_at.is_none() {
                    let start = (m.current_revision() - 3).max(1);
                    let end: &[u8] = if prefix_only { b"l" } else { &[0] };
                    hub.create(9, &create_req(start, b"k", end), tx.clone(), &header(m.current_revision()), m.compact_revision()).unwrap();
                    created_at = Some(start);
                }
                write(&mut m, &mut hub, *key, *delete);
                match action {
                    0 => { drain(&mut rx, &mut seen); }
                    1 => hub.catch_up(&m, &header(m.current_revision())),
                    _ => {}
                }
            }
            let Some(start) = created_at else { return Ok(()) };
            for _ in 0..10_000 {
                let before = seen.len();
                drain(&mut rx, &mut seen);
                hub.catch_up(&m, &header(m.current_revision()));
                drain(&mut rx, &mut seen);
                if !hub.has_unsynced() && seen.len() == before { break; }
            }
            let expected: Vec<i64> = m
                .events(start, b"k", &[0])
                .unwrap()
                .iter()
                .map(|e| e.kv.mod_revision)
                .collect();
            prop_assert_eq!(seen, expected);
        }
    }
}
