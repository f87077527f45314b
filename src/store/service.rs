//! The etcd v3 gRPC services (KV, Watch, Lease, Cluster, Maintenance) and the member-to-member
//! Peer service, all thin: they validate, convert and hand work to the raft loop through a
//! [`Handle`], then answer with etcd's messages and errors.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use super::apply::{self, Applied, ApplyOutcome};
use super::convert;
use super::error::StoreError;
use super::lessor::MAX_LEASE_TTL_SECS;
use super::node::{Command, LeaseCallError};
use super::pb::etcdserverpb as pb;
use super::pb::rkubepeerpb::internal_request::Request as IReq;
use super::pb::rkubepeerpb::{self as peerpb, peer_client::PeerClient};
use super::{transport, Shared};
use crate::platform::{net, task, Platform};

/// The version etcdctl sees in `endpoint status`.
pub const ETCD_API_VERSION: &str = "3.4.0";
/// Bytes per message of a snapshot stream (etcd uses 32 KiB).
pub const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;
/// Keep-alive requests buffered per lease stream.
pub const LEASE_STREAM_BUFFER_MESSAGES: usize = 64;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// What the services need: the shared state, the raft loop's queue, limits.
#[derive(Clone)]
pub struct Handle {
    pub shared: Arc<Shared>,
    pub commands: mpsc::Sender<Command>,
    pub platform: Platform,
    pub limits: Limits,
    /// Peer URL of every member (for forwarding lease calls to the leader).
    pub peer_urls: Arc<BTreeMap<u64, String>>,
}

/// Request limits, with etcd's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    pub request_timeout_ms: u64,
    pub min_lease_ttl_secs: i64,
}

fn st<E: Into<StoreError>>(e: E) -> Status {
    e.into().to_status()
}

impl From<convert::ConvertError> for StoreError {
    fn from(e: convert::ConvertError) -> StoreError {
        match e {
            convert::ConvertError::EmptyKey => StoreError::EmptyKey,
            convert::ConvertError::TooDeep => StoreError::TooManyOps,
            other => StoreError::Internal(other.to_string()),
        }
    }
}

impl Handle {
    fn timeout(&self) -> Duration {
        // A little beyond the raft loop's own deadline, so its answer normally wins.
        Duration::from_millis(self.limits.request_timeout_ms + 500)
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let clock = &self.platform.clock;
        clock
            .timeout(self.timeout(), self.commands.send(make(tx)))
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(|_| StoreError::Stopped)?;
        clock
            .timeout(self.timeout(), rx)
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(|_| StoreError::Stopped)
    }

    /// Replicates `req` and returns its apply outcome.
    pub async fn propose(&self, req: IReq) -> Result<ApplyOutcome, StoreError> {
        let size = req_size(&req);
        if size > self.limits.max_request_bytes {
            return Err(StoreError::RequestTooLarge);
        }
        let outcome = self.call(|reply| Command::Propose { req, reply }).await??;
        if let Err(e) = &outcome.result {
            return Err(e.clone());
        }
        Ok(outcome)
    }

    /// Waits until this member may serve a linearizable read.
    pub async fn read_barrier(&self) -> Result<(), StoreError> {
        self.call(|reply| Command::Read { reply }).await?
    }

    /// A response header at the current revision.
    pub fn header(&self) -> pb::ResponseHeader {
        let rev = self
            .shared
            .state
            .read()
            .expect("state lock")
            .mvcc
            .current_revision();
        self.shared.header(rev, self.shared.status().term)
    }
}

fn req_size(req: &IReq) -> usize {
    match req {
        IReq::Put(p) => p.encoded_len(),
        IReq::DeleteRange(d) => d.encoded_len(),
        IReq::Txn(t) => t.encoded_len(),
        _ => 0,
    }
}

/// KV service.
pub struct Kv(pub Handle);

#[tonic::async_trait]
impl pb::kv_server::Kv for Kv {
    async fn range(
        &self,
        req: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let r = req.into_inner();
        let mr = convert::range_from_pb(&r).map_err(st)?;
        if !r.serializable {
            self.0.read_barrier().await.map_err(st)?;
        }
        let term = self.0.shared.status().term;
        let state = self.0.shared.state.read().expect("state lock");
        let header = self.0.shared.header(state.mvcc.current_revision(), term);
        let resp = state.mvcc.range(&mr).map_err(st)?;
        Ok(Response::new(convert::range_to_pb(&resp, &header)))
    }

    async fn put(&self, req: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let p = req.into_inner();
        convert::put_from_pb(&p).map_err(st)?;
        match self.0.propose(IReq::Put(p)).await.map_err(st)?.result {
            Ok(Applied::Put(r)) => Ok(Response::new(r)),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_range(
        &self,
        req: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let d = req.into_inner();
        convert::delete_from_pb(&d).map_err(st)?;
        match self
            .0
            .propose(IReq::DeleteRange(d))
            .await
            .map_err(st)?
            .result
        {
            Ok(Applied::DeleteRange(r)) => Ok(Response::new(r)),
            other => Err(unexpected(other)),
        }
    }

    async fn txn(&self, req: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let t = req.into_inner();
        if convert::txn_op_count(&t) > self.0.limits.max_txn_ops {
            return Err(st(StoreError::TooManyOps));
        }
        convert::txn_from_pb(&t).map_err(st)?;
        match self.0.propose(IReq::Txn(t)).await.map_err(st)?.result {
            Ok(Applied::Txn(r)) => Ok(Response::new(r)),
            other => Err(unexpected(other)),
        }
    }

    async fn compact(
        &self,
        req: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let c = req.into_inner();
        let out = self.0.propose(IReq::Compaction(c)).await.map_err(st)?;
        Ok(Response::new(pb::CompactionResponse {
            header: Some(out.header),
        }))
    }
}

fn unexpected(r: Result<Applied, StoreError>) -> Status {
    match r {
        Err(e) => e.to_status(),
        Ok(a) => Status::internal(format!("etcdserver: unexpected apply result {a:?}")),
    }
}

/// Watch service.
pub struct Watch(pub Handle);

#[tonic::async_trait]
impl pb::watch_server::Watch for Watch {
    type WatchStream = BoxStream<pb::WatchResponse>;

    async fn watch(
        &self,
        req: Request<tonic::Streaming<pb::WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(super::watch::WATCH_STREAM_BUFFER_MESSAGES);
        let handle = self.0.clone();
        let stream_id = handle.shared.next_stream_id();
        task::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                if !on_watch_request(&handle, stream_id, msg, &tx).await {
                    break;
                }
            }
            handle
                .shared
                .state
                .write()
                .expect("state lock")
                .watch
                .remove_stream(stream_id);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// Handles one message of a watch stream; false when the stream is gone.
async fn on_watch_request(
    handle: &Handle,
    stream: u64,
    msg: pb::WatchRequest,
    tx: &super::watch::StreamSender,
) -> bool {
    use pb::watch_request::RequestUnion as U;
    let term = handle.shared.status().term;
    let reply = match msg.request_union {
        Some(U::CreateRequest(c)) => {
            let mut state = handle.shared.state.write().expect("state lock");
            let header = handle.shared.header(state.mvcc.current_revision(), term);
            let compact = state.mvcc.compact_revision();
            match state.watch.create(stream, &c, tx.clone(), &header, compact) {
                Ok(_) => None,
                Err(e) => Some(pb::WatchResponse {
                    header: Some(header),
                    watch_id: -1,
                    created: true,
                    canceled: true,
                    cancel_reason: e.to_string(),
                    ..Default::default()
                }),
            }
        }
        Some(U::CancelRequest(c)) => {
            let mut state = handle.shared.state.write().expect("state lock");
            let header = handle.shared.header(state.mvcc.current_revision(), term);
            state
                .watch
                .cancel(stream, c.watch_id)
                .then(|| pb::WatchResponse {
                    header: Some(header),
                    watch_id: c.watch_id,
                    canceled: true,
                    ..Default::default()
                })
        }
        Some(U::ProgressRequest(_)) => {
            let state = handle.shared.state.read().expect("state lock");
            let rev = state.watch.progress_revision(state.mvcc.current_revision());
            let header = handle.shared.header(rev, term);
            state
                .watch
                .stream_synced(stream)
                .then(|| pb::WatchResponse {
                    header: Some(header),
                    watch_id: super::watch::PROGRESS_WATCH_ID,
                    ..Default::default()
                })
        }
        None => None,
    };
    match reply {
        Some(r) => tx.send(Ok(r)).await.is_ok(),
        None => !tx.is_closed(),
    }
}

/// Lease service.
pub struct Lease(pub Handle);

impl Handle {
    fn new_lease_id(&self) -> i64 {
        loop {
            let id = (self.platform.rng.next_u64() >> 1) as i64;
            if id != 0 {
                return id;
            }
        }
    }

    /// A lease call answered by the leader (forwarded if this member is a follower).
    async fn keep_alive(&self, id: i64) -> Result<i64, StoreError> {
        match self
            .call(|reply| Command::LeaseKeepAlive { id, reply })
            .await?
        {
            Ok(ttl) => Ok(ttl),
            Err(LeaseCallError::Store(e)) => Err(e),
            Err(LeaseCallError::NotLeader(leader)) => {
                let mut client = self.peer_client(leader)?;
                let r = client
                    .lease_keep_alive(pb::LeaseKeepAliveRequest { id })
                    .await
                    .map_err(|s| status_to_store(&s))?;
                Ok(r.into_inner().ttl)
            }
        }
    }

    async fn time_to_live(&self, id: i64) -> Result<(i64, i64), StoreError> {
        match self
            .call(|reply| Command::LeaseTimeToLive { id, reply })
            .await?
        {
            Ok(v) => Ok(v),
            Err(LeaseCallError::Store(e)) => Err(e),
            Err(LeaseCallError::NotLeader(leader)) => {
                let mut client = self.peer_client(leader)?;
                let r = client
                    .lease_time_to_live(pb::LeaseTimeToLiveRequest { id, keys: false })
                    .await
                    .map_err(|s| status_to_store(&s))?
                    .into_inner();
                Ok((r.ttl, r.granted_ttl))
            }
        }
    }

    fn peer_client(
        &self,
        member: u64,
    ) -> Result<PeerClient<tonic::transport::Channel>, StoreError> {
        let url = self.peer_urls.get(&member).ok_or(StoreError::NoLeader)?;
        let ch = net::grpc_channel(url, self.timeout()).map_err(StoreError::Internal)?;
        Ok(PeerClient::new(ch))
    }
}

fn status_to_store(s: &Status) -> StoreError {
    let msg = s.message();
    if msg == super::mvcc::MvccError::LeaseNotFound.to_string() {
        StoreError::Mvcc(super::mvcc::MvccError::LeaseNotFound)
    } else if msg == StoreError::NoLeader.to_string() {
        StoreError::NoLeader
    } else {
        StoreError::Timeout
    }
}

#[tonic::async_trait]
impl pb::lease_server::Lease for Lease {
    async fn lease_grant(
        &self,
        req: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let mut g = req.into_inner();
        if g.ttl > MAX_LEASE_TTL_SECS {
            return Err(st(StoreError::LeaseTtlTooLarge));
        }
        g.ttl = g.ttl.max(self.0.limits.min_lease_ttl_secs);
        if g.id == 0 {
            g.id = self.0.new_lease_id();
        }
        let out = self.0.propose(IReq::LeaseGrant(g)).await.map_err(st)?;
        match out.result {
            Ok(Applied::LeaseGranted { id, ttl }) => Ok(Response::new(pb::LeaseGrantResponse {
                header: Some(out.header),
                id,
                ttl,
                error: String::new(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn lease_revoke(
        &self,
        req: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let out = self
            .0
            .propose(IReq::LeaseRevoke(req.into_inner()))
            .await
            .map_err(st)?;
        Ok(Response::new(pb::LeaseRevokeResponse {
            header: Some(out.header),
        }))
    }

    type LeaseKeepAliveStream = BoxStream<pb::LeaseKeepAliveResponse>;

    async fn lease_keep_alive(
        &self,
        req: Request<tonic::Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(LEASE_STREAM_BUFFER_MESSAGES);
        let handle = self.0.clone();
        task::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                let resp = match handle.keep_alive(msg.id).await {
                    Ok(ttl) => Ok(pb::LeaseKeepAliveResponse {
                        header: Some(handle.header()),
                        id: msg.id,
                        ttl,
                    }),
                    // etcd answers an unknown lease with TTL 0 and keeps the stream open.
                    Err(StoreError::Mvcc(super::mvcc::MvccError::LeaseNotFound)) => {
                        Ok(pb::LeaseKeepAliveResponse {
                            header: Some(handle.header()),
                            id: msg.id,
                            ttl: 0,
                        })
                    }
                    Err(e) => Err(e.to_status()),
                };
                let fatal = resp.is_err();
                if tx.send(resp).await.is_err() || fatal {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let r = req.into_inner();
        let (ttl, granted) = match self.0.time_to_live(r.id).await {
            Ok(v) => v,
            Err(StoreError::Mvcc(super::mvcc::MvccError::LeaseNotFound)) => (-1, 0),
            Err(e) => return Err(e.to_status()),
        };
        let keys = if r.keys && ttl >= 0 {
            let state = self.0.shared.state.read().expect("state lock");
            state.mvcc.lease_keys(r.id).unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Response::new(pb::LeaseTimeToLiveResponse {
            header: Some(self.0.header()),
            id: r.id,
            ttl,
            granted_ttl: granted,
            keys,
        }))
    }

    async fn lease_leases(
        &self,
        _req: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        self.0.read_barrier().await.map_err(st)?;
        let leases = self
            .0
            .shared
            .state
            .read()
            .expect("state lock")
            .mvcc
            .leases();
        Ok(Response::new(pb::LeaseLeasesResponse {
            header: Some(self.0.header()),
            leases: leases
                .into_iter()
                .map(|(id, _)| pb::LeaseStatus { id })
                .collect(),
        }))
    }
}

/// Cluster service (membership is static for now: MemberList only).
pub struct Cluster(pub Handle);

#[tonic::async_trait]
impl pb::cluster_server::Cluster for Cluster {
    async fn member_list(
        &self,
        _req: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let published = self
            .0
            .shared
            .state
            .read()
            .expect("state lock")
            .members
            .clone();
        let members = self
            .0
            .shared
            .initial_members
            .iter()
            .map(|(id, (name, peer))| {
                let p = published.get(id);
                pb::Member {
                    id: *id,
                    name: p.map(|a| a.name.clone()).unwrap_or_else(|| name.clone()),
                    peer_ur_ls: vec![peer.clone()],
                    client_ur_ls: match p {
                        Some(a) => a.client_urls.clone(),
                        None if *id == self.0.shared.member_id => {
                            self.0.shared.own_client_urls.clone()
                        }
                        None => Vec::new(),
                    },
                    is_learner: false,
                }
            })
            .collect();
        Ok(Response::new(pb::MemberListResponse {
            header: Some(self.0.header()),
            members,
        }))
    }
}

/// Maintenance service.
pub struct Maintenance(pub Handle);

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for Maintenance {
    async fn alarm(
        &self,
        req: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        let a = req.into_inner();
        let get = a.action == pb::alarm_request::AlarmAction::Get as i32;
        let alarms = if get {
            let state = self.0.shared.state.read().expect("state lock");
            apply::alarm_list(&state)
        } else {
            match self.0.propose(IReq::Alarm(a)).await.map_err(st)?.result {
                Ok(Applied::Alarms(list)) => list,
                other => return Err(unexpected(other)),
            }
        };
        Ok(Response::new(pb::AlarmResponse {
            header: Some(self.0.header()),
            alarms,
        }))
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let s = self.0.shared.status();
        let (size, errors) = {
            let state = self.0.shared.state.read().expect("state lock");
            let errors = apply::alarm_list(&state)
                .iter()
                .map(|a| format!("memberID:{} alarm:{} ", a.member_id, alarm_name(a.alarm)))
                .collect();
            (state.mvcc.to_snapshot_bytes().len() as i64, errors)
        };
        Ok(Response::new(pb::StatusResponse {
            header: Some(self.0.header()),
            version: ETCD_API_VERSION.to_string(),
            db_size: size,
            leader: s.leader,
            raft_index: s.commit,
            raft_term: s.term,
            raft_applied_index: s.applied,
            errors,
            db_size_in_use: size,
            is_learner: false,
        }))
    }

    async fn defragment(
        &self,
        _req: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        self.0
            .call(|reply| Command::Snapshot { reply })
            .await
            .map_err(st)?
            .map_err(st)?;
        Ok(Response::new(pb::DefragmentResponse {
            header: Some(self.0.header()),
        }))
    }

    async fn hash(
        &self,
        _req: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        let hash = self.0.shared.state.read().expect("state lock").mvcc.hash();
        Ok(Response::new(pb::HashResponse {
            header: Some(self.0.header()),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        _req: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        let (hash, compact) = {
            let state = self.0.shared.state.read().expect("state lock");
            (state.mvcc.hash(), state.mvcc.compact_revision())
        };
        Ok(Response::new(pb::HashKvResponse {
            header: Some(self.0.header()),
            hash,
            compact_revision: compact,
        }))
    }

    type SnapshotStream = BoxStream<pb::SnapshotResponse>;

    async fn snapshot(
        &self,
        _req: Request<pb::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let blob = {
            let state = self.0.shared.state.read().expect("state lock");
            super::backup::encode_backup(&apply::encode_state(&state))
        };
        let header = self.0.header();
        let total = blob.len();
        let chunks: Vec<Result<pb::SnapshotResponse, Status>> = blob
            .chunks(SNAPSHOT_CHUNK_BYTES)
            .enumerate()
            .map(|(i, c)| {
                let sent = (i * SNAPSHOT_CHUNK_BYTES + c.len()) as u64;
                Ok(pb::SnapshotResponse {
                    header: Some(header),
                    remaining_bytes: total as u64 - sent,
                    blob: c.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
}

fn alarm_name(a: i32) -> &'static str {
    match pb::AlarmType::try_from(a) {
        Ok(pb::AlarmType::Nospace) => "NOSPACE",
        Ok(pb::AlarmType::Corrupt) => "CORRUPT",
        _ => "NONE",
    }
}

/// Peer service: raft messages in, lease calls forwarded from followers.
pub struct Peer {
    pub handle: Handle,
    pub raft_tx: mpsc::Sender<raft::prelude::Message>,
}

impl Peer {
    /// Hands a batch's messages to the raft loop after checking who sent it.
    fn deliver(&self, batch: &peerpb::RaftBatch) -> Result<(), Status> {
        if !self.handle.peer_urls.contains_key(&batch.from) {
            return Err(Status::permission_denied(format!(
                "unknown member {:x}",
                batch.from
            )));
        }
        let msgs = transport::decode_batch(batch).map_err(Status::invalid_argument)?;
        for m in msgs {
            // A full inbox drops: raft retransmits what matters.
            let _ = self.raft_tx.try_send(m);
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl peerpb::peer_server::Peer for Peer {
    async fn send(
        &self,
        req: Request<peerpb::RaftBatch>,
    ) -> Result<Response<peerpb::RaftAck>, Status> {
        self.deliver(&req.into_inner())?;
        Ok(Response::new(peerpb::RaftAck {}))
    }

    async fn stream(
        &self,
        req: Request<tonic::Streaming<peerpb::RaftBatch>>,
    ) -> Result<Response<peerpb::RaftAck>, Status> {
        let mut batches = req.into_inner();
        while let Some(batch) = batches.message().await? {
            self.deliver(&batch)?;
        }
        Ok(Response::new(peerpb::RaftAck {}))
    }

    async fn lease_keep_alive(
        &self,
        req: Request<pb::LeaseKeepAliveRequest>,
    ) -> Result<Response<pb::LeaseKeepAliveResponse>, Status> {
        let id = req.into_inner().id;
        let r = self
            .handle
            .call(|reply| Command::LeaseKeepAlive { id, reply })
            .await
            .map_err(st)?;
        match r {
            Ok(ttl) => Ok(Response::new(pb::LeaseKeepAliveResponse {
                header: Some(self.handle.header()),
                id,
                ttl,
            })),
            Err(LeaseCallError::Store(e)) => Err(e.to_status()),
            Err(LeaseCallError::NotLeader(_)) => Err(StoreError::NoLeader.to_status()),
        }
    }

    async fn lease_time_to_live(
        &self,
        req: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let id = req.into_inner().id;
        let r = self
            .handle
            .call(|reply| Command::LeaseTimeToLive { id, reply })
            .await
            .map_err(st)?;
        match r {
            Ok((ttl, granted_ttl)) => Ok(Response::new(pb::LeaseTimeToLiveResponse {
                header: Some(self.handle.header()),
                id,
                ttl,
                granted_ttl,
                keys: vec![],
            })),
            Err(LeaseCallError::Store(e)) => Err(e.to_status()),
            Err(LeaseCallError::NotLeader(_)) => Err(StoreError::NoLeader.to_status()),
        }
    }
}
