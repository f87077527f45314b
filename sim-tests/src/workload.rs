//! Workloads: etcd-shaped client traffic (get, put, delete, compare-and-swap txn, lease put
//! and revoke) from clients that time out and retry elsewhere as real clients do, and one
//! watcher per member that watches every key from revision 1 and resumes after failures.
//! Everything is recorded in the run's [`History`](crate::history::History).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rkube::store::pb::etcdserverpb as pb;
use rkube::store::pb::etcdserverpb::{
    kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient,
};
use tokio::time::Instant;

use crate::history::{Op, Outcome, ReadKv, Record, SharedHistory, WatchedEvent, WatchedResponse};

/// Deadline of one client call.
pub const CLIENT_CALL_TIMEOUT_MS: u64 = 3_000;
/// Pause between a client's operations.
pub const CLIENT_THINK_MS: u64 = 20;
/// Pause before a watcher reconnects.
pub const WATCH_RECONNECT_MS: u64 = 200;
/// Lease TTL used by lease puts (short, so expiry happens inside a run).
pub const LEASE_TTL_SECS: i64 = 3;
/// How often a watcher asks for a progress notification.
pub const WATCH_PROGRESS_REQUEST_MS: u64 = 700;
/// One operation in this many is a compaction (below every watcher's position).
pub const COMPACT_ONE_IN: u32 = 40;

type Channel = tonic::transport::Channel;

fn channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("valid url")
        .connect_timeout(Duration::from_millis(CLIENT_CALL_TIMEOUT_MS))
        .timeout(Duration::from_millis(CLIENT_CALL_TIMEOUT_MS))
        .connect_lazy()
}

async fn with_timeout<T>(
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_millis(CLIENT_CALL_TIMEOUT_MS), fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(s.message().to_string()),
        Err(_) => Err("client timeout".into()),
    }
}

fn read_kv(kv: Option<rkube::store::pb::mvccpb::KeyValue>) -> Option<ReadKv> {
    kv.map(|kv| ReadKv {
        value: kv.value,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
    })
}

fn rev(h: &Option<pb::ResponseHeader>) -> i64 {
    h.as_ref().map(|h| h.revision).unwrap_or(0)
}

/// One client's state.
pub struct Client {
    pub id: usize,
    urls: Vec<String>,
    at: usize,
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    rng: rand::rngs::SmallRng,
    keys: usize,
    mix: [u32; 5],
    seq: u64,
    start: Instant,
    history: SharedHistory,
    /// Last mod revision this client saw per key (for CAS).
    seen_mod: std::collections::BTreeMap<Vec<u8>, i64>,
    /// Kubernetes-shaped traffic (see [`crate::params::Params::kube`]).
    kube: bool,
}

impl Client {
    /// A client of the cluster at `urls`, starting at member `id % urls.len()`.
    pub fn new(
        id: usize,
        urls: Vec<String>,
        seed: u64,
        keys: usize,
        mix: [u32; 5],
        start: Instant,
        history: SharedHistory,
    ) -> Client {
        let at = id % urls.len();
        let ch = channel(&urls[at]);
        Client {
            id,
            at,
            kv: KvClient::new(ch.clone()),
            lease: LeaseClient::new(ch),
            urls,
            rng: rand::rngs::SmallRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9e37_79b9)),
            keys,
            mix,
            seq: 0,
            start,
            history,
            seen_mod: Default::default(),
            kube: false,
        }
    }

    /// Switches to Kubernetes-shaped traffic.
    pub fn kube_shaped(mut self, kube: bool) -> Client {
        self.kube = kube;
        self
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Simulated time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn rotate(&mut self) {
        self.at = (self.at + 1) % self.urls.len();
        let ch = channel(&self.urls[self.at]);
        self.kv = KvClient::new(ch.clone());
        self.lease = LeaseClient::new(ch);
    }

    fn record(&mut self, op: Op, invoked_ms: u64, outcome: Outcome) {
        if matches!(outcome, Outcome::Unknown(_)) {
            self.rotate();
        }
        let completed_ms = self.now_ms();
        self.history.lock().expect("history").records.push(Record {
            client: self.id,
            op,
            invoked_ms,
            completed_ms,
            outcome,
        });
    }

    /// Runs operations until `until` (simulated time since start).
    pub async fn run_until(&mut self, until: Duration) {
        while self.start.elapsed() < until {
            self.one_op().await;
            tokio::time::sleep(Duration::from_millis(CLIENT_THINK_MS)).await;
        }
    }

    fn pick_key(&mut self) -> Vec<u8> {
        let k = self.rng.random_range(0..self.keys);
        if self.kube {
            format!("{KUBE_PREFIX}ns{}/pod{k}", k % 2).into_bytes()
        } else {
            format!("k{k}").into_bytes()
        }
    }

    fn next_value(&mut self) -> Vec<u8> {
        self.seq += 1;
        format!("c{}-{}", self.id, self.seq).into_bytes()
    }

    /// Issues one randomly chosen operation and records it.
    pub async fn one_op(&mut self) {
        let total: u32 = self.mix.iter().sum::<u32>().max(1);
        let mut roll = self.rng.random_range(0..total);
        let mut kind = 0;
        for (i, w) in self.mix.iter().enumerate() {
            if roll < *w {
                kind = i;
                break;
            }
            roll -= w;
        }
        if self.rng.random_ratio(1, COMPACT_ONE_IN) {
            return self.compact().await;
        }
        let key = self.pick_key();
        match (kind, self.kube) {
            (0, _) => self.get(key).await,
            (1, false) => self.put(key).await,
            (1, true) => self.cas_with(key, 0).await,
            (2, false) => self.delete(key).await,
            (2, true) => self.cas_delete(key).await,
            (3, _) => self.cas(key).await,
            (_, false) => self.lease_put(key).await,
            (_, true) => self.list().await,
        }
    }

    /// A linearizable get.
    pub async fn get(&mut self, key: Vec<u8>) {
        let t = self.now_ms();
        let req = pb::RangeRequest {
            key: key.clone(),
            ..Default::default()
        };
        let outcome = match with_timeout(self.kv.range(req)).await {
            Ok(r) => {
                let kv = read_kv(r.kvs.into_iter().next());
                self.seen_mod.insert(
                    key.clone(),
                    kv.as_ref().map(|k| k.mod_revision).unwrap_or(0),
                );
                Outcome::Read {
                    revision: rev(&r.header),
                    kv,
                }
            }
            Err(e) => Outcome::Unknown(e),
        };
        self.record(Op::Get { key }, t, outcome);
    }

    async fn put(&mut self, key: Vec<u8>) {
        let value = self.next_value();
        let t = self.now_ms();
        let req = pb::PutRequest {
            key: key.clone(),
            value: value.clone(),
            ..Default::default()
        };
        let outcome = match with_timeout(self.kv.put(req)).await {
            Ok(r) => Outcome::Wrote {
                revision: rev(&r.header),
            },
            Err(e) => Outcome::Unknown(e),
        };
        self.record(Op::Put { key, value }, t, outcome);
    }

    async fn delete(&mut self, key: Vec<u8>) {
        let t = self.now_ms();
        let req = pb::DeleteRangeRequest {
            key: key.clone(),
            ..Default::default()
        };
        let outcome = match with_timeout(self.kv.delete_range(req)).await {
            Ok(r) if r.deleted > 0 => Outcome::Wrote {
                revision: rev(&r.header),
            },
            Ok(r) => Outcome::Noop {
                revision: rev(&r.header),
            },
            Err(e) => Outcome::Unknown(e),
        };
        self.record(Op::Delete { key }, t, outcome);
    }

    async fn cas(&mut self, key: Vec<u8>) {
        let expect_mod = self.seen_mod.get(&key).copied().unwrap_or(0);
        self.cas_with(key, expect_mod).await
    }

    /// Put if `key`'s mod revision is `expect_mod` (0: create if absent).
    async fn cas_with(&mut self, key: Vec<u8>, expect_mod: i64) {
        let value = self.next_value();
        let t = self.now_ms();
        let req = pb::TxnRequest {
            compare: vec![pb::Compare {
                key: key.clone(),
                target: pb::compare::CompareTarget::Mod as i32,
                result: pb::compare::CompareResult::Equal as i32,
                target_union: Some(pb::compare::TargetUnion::ModRevision(expect_mod)),
                ..Default::default()
            }],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: key.clone(),
                    value: value.clone(),
                    ..Default::default()
                })),
            }],
            failure: vec![],
        };
        let outcome = match with_timeout(self.kv.txn(req)).await {
            Ok(r) if r.succeeded => Outcome::Wrote {
                revision: rev(&r.header),
            },
            Ok(r) => Outcome::CasFailed {
                revision: rev(&r.header),
            },
            Err(e) => Outcome::Unknown(e),
        };
        self.record(
            Op::Cas {
                key,
                expect_mod,
                value,
            },
            t,
            outcome,
        );
    }

    async fn lease_put(&mut self, key: Vec<u8>) {
        let grant = pb::LeaseGrantRequest {
            ttl: LEASE_TTL_SECS,
            id: 0,
        };
        let lease = match with_timeout(self.lease.lease_grant(grant)).await {
            Ok(r) => r.id,
            Err(_) => {
                self.rotate();
                return;
            }
        };
        let value = self.next_value();
        let t = self.now_ms();
        let req = pb::PutRequest {
            key: key.clone(),
            value: value.clone(),
            lease,
            ..Default::default()
        };
        let outcome = match with_timeout(self.kv.put(req)).await {
            Ok(r) => Outcome::Wrote {
                revision: rev(&r.header),
            },
            Err(e) => Outcome::Unknown(e),
        };
        self.record(Op::LeasePut { key, value, lease }, t, outcome);
        if self.rng.random_bool(0.5) {
            self.keep_alive_once(lease).await;
        }
        if self.rng.random_bool(0.5) {
            let t = self.now_ms();
            let outcome = match with_timeout(
                self.lease
                    .lease_revoke(pb::LeaseRevokeRequest { id: lease }),
            )
            .await
            {
                Ok(r) => Outcome::Noop {
                    revision: rev(&r.header),
                },
                Err(e) => Outcome::Unknown(e),
            };
            self.record(Op::LeaseRevoke { lease }, t, outcome);
        }
    }
}

impl Client {
    /// One keep-alive round trip on a fresh keep-alive stream (etcdctl's `keep-alive --once`).
    async fn keep_alive_once(&mut self, lease: i64) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(pb::LeaseKeepAliveRequest { id: lease });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let answered = match with_timeout(self.lease.lease_keep_alive(stream)).await {
            Ok(mut s) => {
                let next = tokio::time::timeout(
                    Duration::from_millis(CLIENT_CALL_TIMEOUT_MS),
                    s.message(),
                );
                matches!(next.await, Ok(Ok(Some(_))))
            }
            Err(_) => false,
        };
        if !answered {
            self.rotate();
        }
    }

    /// Compacts below the position of every watcher, so none of them is cancelled.
    async fn compact(&mut self) {
        let safe = {
            let h = self.history.lock().expect("history");
            h.watcher_next.values().min().map(|n| n - 1).unwrap_or(0)
        };
        if safe < 2 {
            return;
        }
        let revision = self.rng.random_range((safe + 1) / 2..=safe);
        let t = self.now_ms();
        let req = pb::CompactionRequest {
            revision,
            physical: false,
        };
        let outcome = match with_timeout(self.kv.compact(req)).await {
            Ok(r) => Outcome::Noop {
                revision: rev(&r.header),
            },
            Err(e) => Outcome::Unknown(e),
        };
        self.record(Op::Compact { revision }, t, outcome);
    }

    /// Kubernetes-style delete: only if the key is unchanged since this client saw it.
    async fn cas_delete(&mut self, key: Vec<u8>) {
        let expect_mod = self.seen_mod.get(&key).copied().unwrap_or(0);
        let t = self.now_ms();
        let req = pb::TxnRequest {
            compare: vec![mod_equals(&key, expect_mod)],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestDeleteRange(
                    pb::DeleteRangeRequest {
                        key: key.clone(),
                        ..Default::default()
                    },
                )),
            }],
            failure: vec![],
        };
        let outcome = match with_timeout(self.kv.txn(req)).await {
            Ok(r) if r.succeeded && deleted_any(&r) => Outcome::Wrote {
                revision: rev(&r.header),
            },
            Ok(r) if r.succeeded => Outcome::Noop {
                revision: rev(&r.header),
            },
            Ok(r) => Outcome::CasFailed {
                revision: rev(&r.header),
            },
            Err(e) => Outcome::Unknown(e),
        };
        self.record(Op::CasDelete { key, expect_mod }, t, outcome);
    }

    /// A paginated list of every pod, as an API server lists: the first page at the current
    /// revision, later pages pinned to that revision.
    async fn list(&mut self) {
        let end = KUBE_PREFIX_END.as_bytes().to_vec();
        let mut start = KUBE_PREFIX.as_bytes().to_vec();
        let mut revision = 0;
        for _ in 0..MAX_LIST_PAGES {
            let t = self.now_ms();
            let req = pb::RangeRequest {
                key: start.clone(),
                range_end: end.clone(),
                limit: LIST_PAGE_LIMIT,
                revision,
                ..Default::default()
            };
            let op = Op::List {
                start: start.clone(),
                end: end.clone(),
                limit: LIST_PAGE_LIMIT,
                revision,
            };
            match with_timeout(self.kv.range(req)).await {
                Ok(r) => {
                    let kvs: Vec<(Vec<u8>, ReadKv)> = r
                        .kvs
                        .into_iter()
                        .map(|kv| (kv.key.clone(), read_kv(Some(kv)).expect("some")))
                        .collect();
                    let (more, header_rev) = (r.more, rev(&r.header));
                    let last = kvs.last().map(|(k, _)| k.clone());
                    self.record(
                        op,
                        t,
                        Outcome::Listed {
                            revision: header_rev,
                            kvs,
                            more,
                        },
                    );
                    if revision == 0 {
                        revision = header_rev;
                    }
                    match (more, last) {
                        (true, Some(mut k)) => {
                            k.push(0);
                            start = k;
                        }
                        _ => return,
                    }
                }
                Err(e) => {
                    self.record(op, t, Outcome::Unknown(e));
                    return;
                }
            }
        }
    }
}

fn deleted_any(r: &pb::TxnResponse) -> bool {
    r.responses.iter().any(|op| {
        matches!(&op.response, Some(pb::response_op::Response::ResponseDeleteRange(d)) if d.deleted > 0)
    })
}

fn mod_equals(key: &[u8], expect_mod: i64) -> pb::Compare {
    pb::Compare {
        key: key.to_vec(),
        target: pb::compare::CompareTarget::Mod as i32,
        result: pb::compare::CompareResult::Equal as i32,
        target_union: Some(pb::compare::TargetUnion::ModRevision(expect_mod)),
        ..Default::default()
    }
}

/// Where Kubernetes-shaped traffic keeps its pods, and the end of that prefix.
pub const KUBE_PREFIX: &str = "/registry/pods/";
pub const KUBE_PREFIX_END: &str = "/registry/pods0";
/// Page size of a paginated list, and the most pages one list reads.
pub const LIST_PAGE_LIMIT: i64 = 2;
pub const MAX_LIST_PAGES: usize = 16;

/// Watches every key on member `url` from revision 1, resuming after failures, until
/// `until`; records each response. It asks for periodic progress notifications and, every
/// [`WATCH_PROGRESS_REQUEST_MS`], requests one; a progress revision moves the resume point
/// forward as a Kubernetes bookmark does.
pub async fn watch_all(
    watcher: usize,
    url: String,
    start: Instant,
    until: Duration,
    history: SharedHistory,
) {
    let mut next_rev = 1i64;
    set_watcher_next(&history, watcher, next_rev);
    while start.elapsed() < until {
        let mut client = WatchClient::new(channel(&url));
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::WatchRequest>(4);
        let _ = tx.send(watch_create(next_rev)).await;
        let left = until.saturating_sub(start.elapsed());
        let opened = tokio::time::timeout(
            left,
            client.watch(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await;
        if let Ok(Ok(resp)) = opened {
            let mut stream = resp.into_inner();
            let mut first = true;
            let mut ask_progress = tokio::time::interval_at(
                Instant::now() + Duration::from_millis(WATCH_PROGRESS_REQUEST_MS),
                Duration::from_millis(WATCH_PROGRESS_REQUEST_MS),
            );
            loop {
                let left = until.saturating_sub(start.elapsed());
                let msg = tokio::select! {
                    biased; // see the node loop: unbiased select breaks in-process replay
                    m = tokio::time::timeout(left, stream.message()) => m,
                    _ = ask_progress.tick() => {
                        let _ = tx.try_send(progress_request());
                        continue;
                    }
                };
                let msg = match msg {
                    Ok(Ok(Some(m))) => m,
                    _ => break,
                };
                if msg.canceled {
                    break;
                }
                if msg.created && msg.events.is_empty() {
                    continue;
                }
                let received_ms = start.elapsed().as_millis() as u64;
                let (events, progress) = if msg.events.is_empty() {
                    let r = rev(&msg.header);
                    next_rev = next_rev.max(r + 1);
                    (Vec::new(), Some(r))
                } else {
                    let events: Vec<WatchedEvent> = msg.events.iter().map(to_watched).collect();
                    next_rev = events.last().map(|e| e.revision + 1).unwrap_or(next_rev);
                    (events, None)
                };
                let mut h = history.lock().expect("history");
                h.watched.push(WatchedResponse {
                    watcher,
                    received_ms,
                    events,
                    after_reconnect: first && progress.is_none(),
                    progress,
                });
                h.watcher_next.insert(watcher, next_rev);
                drop(h);
                if progress.is_none() {
                    first = false;
                }
            }
        }
        drop(tx);
        tokio::time::sleep(Duration::from_millis(WATCH_RECONNECT_MS)).await;
    }
}

fn set_watcher_next(history: &SharedHistory, watcher: usize, next: i64) {
    let mut h = history.lock().expect("history");
    h.watcher_next.insert(watcher, next);
}

fn watch_create(start_revision: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: vec![0],
                range_end: vec![0],
                start_revision,
                progress_notify: true,
                ..Default::default()
            },
        )),
    }
}

fn progress_request() -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
            pb::WatchProgressRequest {},
        )),
    }
}

fn to_watched(e: &rkube::store::pb::mvccpb::Event) -> WatchedEvent {
    let kv = e.kv.clone().unwrap_or_default();
    let is_delete = e.r#type == rkube::store::pb::mvccpb::event::EventType::Delete as i32;
    WatchedEvent {
        revision: kv.mod_revision,
        key: kv.key,
        value: if is_delete { None } else { Some(kv.value) },
        create_revision: kv.create_revision,
        version: kv.version,
    }
}
