//! The store: rkube's etcd-compatible, Raft-replicated MVCC key-value store. All cluster
//! state lives here; the API server is its only client in a cluster, and etcdctl works
//! against it because it speaks the etcd v3 gRPC API.
//!
//! Layers: pure cores ([`mvcc`], [`watch`], [`lessor`]); durable log storage ([`wal`],
//! [`raftstore`]); the raft loop ([`node`]) that drives raft-rs and applies entries
//! ([`apply`]); the gRPC services ([`service`]) and the member transport ([`transport`]).
//! [`run`] is the one entry point, used by `rkube etcd` and by the simulator.

pub mod apply;
pub mod backup;
pub mod client;
pub mod convert;
pub mod error;
pub mod lessor;
pub mod logger;
pub mod mvcc;
pub mod node;
pub mod pb;
pub mod raftstore;
pub mod service;
pub mod transport;
pub mod wal;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use crate::platform::net::{self, SocketAddr};
use crate::platform::task::{self, Shutdown};
use crate::platform::Platform;
use apply::StoreState;
use pb::etcdserverpb::ResponseHeader;

/// etcd's default request size limit: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// etcd's default limit of operations per txn branch.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;
/// gRPC framing allowance above the request limit (etcd's `grpcOverheadBytes`).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
/// Peer messages queued to the raft loop.
pub const PEER_INBOX_MESSAGES: usize = 4096;
/// Raft entries the leader keeps behind its snapshot for slow followers (etcd's
/// `snapshotCatchUpEntries`); a follower further behind is sent a snapshot.
pub const DEFAULT_CATCHUP_ENTRIES: u64 = 5_000;

/// Whether this member starts a new cluster or joins an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

/// A member's configuration, named after etcd's flags.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub name: String,
    pub listen_client: SocketAddr,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer: SocketAddr,
    pub initial_advertise_peer_urls: Vec<String>,
    /// (name, peer URL) of every initial member, this one included.
    pub initial_cluster: Vec<(String, String)>,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    pub tick_ms: u64,
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
    pub snapshot_count: u64,
    pub catchup_entries: u64,
    pub request_timeout_ms: u64,
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    /// How often watchers that asked for `progress_notify` hear the current revision when
    /// idle (etcd's `--experimental-watch-progress-notify-interval`, default 10 minutes).
    pub watch_progress_notify_interval_ms: u64,
    /// A deliberate bug for the simulation's negative controls; `None` otherwise.
    pub planted_bug: Option<node::PlantedBug>,
}

impl StoreConfig {
    /// A single member named `name` with etcd's defaults for everything else.
    pub fn single(name: &str, client: SocketAddr, peer: SocketAddr) -> StoreConfig {
        let peer_url = format!("http://{peer}");
        StoreConfig {
            name: name.to_string(),
            listen_client: client,
            advertise_client_urls: vec![format!("http://{client}")],
            listen_peer: peer,
            initial_advertise_peer_urls: vec![peer_url.clone()],
            initial_cluster: vec![(name.to_string(), peer_url)],
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".to_string(),
            tick_ms: 100,
            heartbeat_ticks: 1,
            election_ticks: 10,
            snapshot_count: 100_000,
            catchup_entries: DEFAULT_CATCHUP_ENTRIES,
            request_timeout_ms: 5_000,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            watch_progress_notify_interval_ms: DEFAULT_WATCH_PROGRESS_NOTIFY_INTERVAL_MS,
            planted_bug: None,
        }
    }
}

/// etcd's default progress-notify interval for watchers that ask for it.
pub const DEFAULT_WATCH_PROGRESS_NOTIFY_INTERVAL_MS: u64 = 10 * 60 * 1000;

/// Parses a Go-style duration as etcd's flags take them (`10m`, `5s`, `250ms`, `1h`, `1m30s`)
/// into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration like 10m, 5s or 250ms");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let per_unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = n.checked_mul(per_unit_ms).ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Parses etcd's `--initial-cluster` (`a=http://h:p,b=http://h:p`).
pub fn parse_initial_cluster(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, url) = part
            .split_once('=')
            .ok_or_else(|| format!("--initial-cluster entry {part:?} is not name=url"))?;
        if name.is_empty() || !url.starts_with("http://") {
            return Err(format!(
                "--initial-cluster entry {part:?}: need name=http://host:port"
            ));
        }
        out.push((name.to_string(), url.to_string()));
    }
    if out.is_empty() {
        return Err("--initial-cluster is empty".into());
    }
    Ok(out)
}

/// Parses `http://host:port` into a socket address (`localhost` means 127.0.0.1).
pub fn parse_url_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("URL {url:?} must start with http:// (TLS is not supported yet)"))?;
    let hostport = rest.trim_end_matches('/');
    let hostport = match hostport.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => hostport.to_string(),
    };
    hostport
        .parse()
        .map_err(|e| format!("URL {url:?}: need http://IP:port ({e})"))
}

/// 64-bit FNV-1a: stable ids from names and URLs (never zero).
pub fn stable_id(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h.max(1)
}

/// Member id of an initial-cluster entry (like etcd: from its peer URL and the cluster token).
pub fn member_id(peer_url: &str, token: &str) -> u64 {
    stable_id(&[peer_url, token])
}

/// etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds.
pub fn min_lease_ttl_secs(election_ticks: u64, tick_ms: u64) -> i64 {
    let ms = (3 * election_ticks * tick_ms).div_ceil(2);
    ms.div_ceil(1000).max(1) as i64
}

/// Raft status readable by the services.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemberStatus {
    pub leader: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub is_leader: bool,
}

/// State shared between the raft loop and the services.
pub struct Shared {
    pub state: RwLock<StoreState>,
    pub status: Mutex<MemberStatus>,
    pub member_id: u64,
    pub cluster_id: u64,
    /// id → (name, peer URL) from `--initial-cluster`.
    pub initial_members: BTreeMap<u64, (String, String)>,
    /// This member's advertised client URLs (shown before they are published through raft).
    pub own_client_urls: Vec<String>,
    next_stream: AtomicU64,
}

impl Shared {
    /// etcd's response header at `revision`.
    pub fn header(&self, revision: i64, raft_term: u64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision,
            raft_term,
        }
    }

    /// A copy of the current raft status.
    pub fn status(&self) -> MemberStatus {
        *self.status.lock().expect("status lock")
    }

    /// A fresh id for a watch stream.
    pub fn next_stream_id(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }
}

/// Errors that stop a member.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(#[from] raftstore::RaftStoreError),
    #[error("raft: {0}")]
    Node(#[from] node::NodeError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

/// Runs one store member until `shutdown` (or a fatal storage error).
pub async fn run(cfg: StoreConfig, platform: Platform, shutdown: Shutdown) -> Result<(), RunError> {
    run_observed(cfg, platform, shutdown, None).await
}

/// [`run`], reporting every Ready to `observer` (the simulation's online raft checkers).
pub async fn run_observed(
    cfg: StoreConfig,
    platform: Platform,
    shutdown: Shutdown,
    observer: Option<Arc<dyn node::RaftObserver>>,
) -> Result<(), RunError> {
    let token = cfg.initial_cluster_token.clone();
    let initial: BTreeMap<u64, (String, String)> = cfg
        .initial_cluster
        .iter()
        .map(|(n, u)| (member_id(u, &token), (n.clone(), u.clone())))
        .collect();
    let me = initial
        .iter()
        .find(|(_, (n, _))| *n == cfg.name)
        .map(|(id, _)| *id)
        .ok_or_else(|| {
            RunError::Config(format!("--name {} is not in --initial-cluster", cfg.name))
        })?;
    let ids: Vec<u64> = initial.keys().copied().collect();
    let id_strs: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let cluster_id = stable_id(&id_strs.iter().map(|s| s.as_str()).collect::<Vec<_>>());

    let rec = raftstore::recover(platform.disk.clone(), &ids)?;
    if rec.fresh && cfg.initial_cluster_state == ClusterState::Existing {
        return Err(RunError::Config(
            "--initial-cluster-state=existing needs a data dir with this member's state".into(),
        ));
    }
    let mut state = StoreState::default();
    if cfg.planted_bug == Some(node::PlantedBug::DropWatchEvent) {
        state.watch.plant_drop_event(5);
    }
    if cfg.planted_bug == Some(node::PlantedBug::ProgressAhead) {
        state.watch.plant_progress_ahead();
    }
    let snap_index = match &rec.snapshot {
        Some(s) => {
            apply::restore_state(&mut state, &s.data).map_err(RunError::Config)?;
            s.get_metadata().index
        }
        None => 0,
    };
    let shared = Arc::new(Shared {
        state: RwLock::new(state),
        status: Mutex::new(MemberStatus::default()),
        member_id: me,
        cluster_id,
        initial_members: initial.clone(),
        own_client_urls: cfg.advertise_client_urls.clone(),
        next_stream: AtomicU64::new(1),
    });
    let node_cfg = node::NodeConfig {
        id: me,
        voters: ids.clone(),
        tick_ms: cfg.tick_ms,
        heartbeat_ticks: cfg.heartbeat_ticks,
        election_ticks: cfg.election_ticks,
        request_timeout_ms: cfg.request_timeout_ms,
        snapshot_count: cfg.snapshot_count,
        catchup_entries: cfg.catchup_entries,
        watch_progress_notify_interval_ms: cfg.watch_progress_notify_interval_ms,
        attributes: pb::rkubepeerpb::MemberAttributes {
            id: me,
            name: cfg.name.clone(),
            client_urls: cfg.advertise_client_urls.clone(),
            peer_urls: cfg.initial_advertise_peer_urls.clone(),
        },
        planted_bug: cfg.planted_bug,
    };
    let raft_cfg = node::raft_config(&node_cfg, snap_index);
    let raw = raft::RawNode::new(
        &raft_cfg,
        rec.store.clone(),
        &logger::raft_logger(&cfg.name),
    )?;

    let peer_urls: Arc<BTreeMap<u64, String>> = Arc::new(
        initial
            .iter()
            .map(|(id, (_, u))| (*id, u.clone()))
            .collect(),
    );
    let (feedback_tx, feedback_rx) = mpsc::channel(transport::PEER_QUEUE_MESSAGES);
    let transport = transport::Transport::start(me, &peer_urls, feedback_tx, &platform.clock);
    let (cmd_tx, cmd_rx) = mpsc::channel(node::COMMAND_QUEUE_LEN);
    let (raft_tx, raft_rx) = mpsc::channel(PEER_INBOX_MESSAGES);
    let handle = service::Handle {
        shared: shared.clone(),
        commands: cmd_tx,
        platform: platform.clone(),
        limits: service::Limits {
            max_request_bytes: cfg.max_request_bytes,
            max_txn_ops: cfg.max_txn_ops,
            request_timeout_ms: cfg.request_timeout_ms,
            min_lease_ttl_secs: min_lease_ttl_secs(cfg.election_ticks as u64, cfg.tick_ms),
        },
        peer_urls: peer_urls.clone(),
    };
    let bind = |addr: SocketAddr, what: &'static str| async move {
        net::bind_grpc(addr)
            .await
            .map_err(|e| RunError::Config(format!("cannot listen for {what} on {addr}: {e}")))
    };
    let client_listener = bind(cfg.listen_client, "clients").await?;
    let peer_listener = bind(cfg.listen_peer, "peers").await?;
    let (server_stop, server_shutdown) = task::shutdown_pair();
    start_servers(
        &cfg,
        handle,
        raft_tx,
        (client_listener, peer_listener),
        server_shutdown,
    );
    tracing::info!(name = %cfg.name, member = format!("{me:x}"), cluster = format!("{cluster_id:x}"),
        client = %cfg.listen_client, peer = %cfg.listen_peer, "store member starting");
    let node = node::Node::new(
        node_cfg,
        raw,
        rec.store,
        rec.persist,
        shared,
        platform,
        transport,
        snap_index,
    )
    .with_observer(observer)
    .recovered(!rec.fresh);
    let result = node.run(cmd_rx, raft_rx, feedback_rx, shutdown).await;
    server_stop.trigger();
    result.map_err(RunError::from)
}

fn start_servers(
    cfg: &StoreConfig,
    handle: service::Handle,
    raft_tx: mpsc::Sender<raft::prelude::Message>,
    (client_listener, peer_listener): (net::GrpcListener, net::GrpcListener),
    shutdown: Shutdown,
) {
    use pb::etcdserverpb::{
        cluster_server::ClusterServer, kv_server::KvServer, lease_server::LeaseServer,
        maintenance_server::MaintenanceServer, watch_server::WatchServer,
    };
    use pb::rkubepeerpb::peer_server::PeerServer;
    let max = cfg.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let client_router = tonic::transport::Server::builder()
        .add_service(KvServer::new(service::Kv(handle.clone())).max_decoding_message_size(max))
        .add_service(
            WatchServer::new(service::Watch(handle.clone())).max_decoding_message_size(max),
        )
        .add_service(
            LeaseServer::new(service::Lease(handle.clone())).max_decoding_message_size(max),
        )
        .add_service(ClusterServer::new(service::Cluster(handle.clone())))
        .add_service(
            MaintenanceServer::new(service::Maintenance(handle.clone()))
                .max_encoding_message_size(transport::MAX_PEER_MESSAGE_BYTES),
        );
    let peer_router = tonic::transport::Server::builder().add_service(
        PeerServer::new(service::Peer { handle, raft_tx })
            .max_decoding_message_size(transport::MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(transport::MAX_PEER_MESSAGE_BYTES),
    );
    let s1 = shutdown.clone();
    task::spawn(async move {
        if let Err(e) = net::serve_grpc(client_router, client_listener, s1).await {
            tracing::error!(error = %e, "client server stopped");
        }
    });
    task::spawn(async move {
        if let Err(e) = net::serve_grpc(peer_router, peer_listener, shutdown).await {
            tracing::error!(error = %e, "peer server stopped");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations_parse_like_etcd_flags() {
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        for bad in ["", "10", "m", "5 s", "3d", "-1s", "99999999999999999999h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} accepted");
        }
    }
}
