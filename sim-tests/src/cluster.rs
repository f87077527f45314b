//! The simulated store cluster: each member a madsim node with its own IP, `SimDisk` and
//! `Clock`, started through the same `store::run_observed` entry point as `rkube etcd`.
//! The disk and clock live outside the node, so they survive kills and restarts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use madsim::runtime::{Handle, NodeHandle};
use rkube::platform::buggify::{self, Buggify};
use rkube::platform::disk::SimDisk;
use rkube::platform::rand::SharedRng;
use rkube::platform::task;
use rkube::platform::time::Clock;
use rkube::platform::Platform;
use rkube::store::node::{PlantedBug, RaftObserver};
use rkube::store::{self, StoreConfig};

/// Client port of every member.
pub const CLIENT_PORT: u16 = 2379;
/// Progress-notification interval of simulated members.
pub const WATCH_PROGRESS_NOTIFY_INTERVAL_MS: u64 = 1_000;
/// Peer port of every member.
pub const PEER_PORT: u16 = 2380;

/// One simulated store member.
pub struct Member {
    pub name: String,
    pub id: u64,
    pub ip: IpAddr,
    pub node: NodeHandle,
    pub disk: SimDisk,
    pub clock: Clock,
    pub alive: bool,
    pub paused: bool,
}

impl Member {
    /// The member's client URL.
    pub fn client_url(&self) -> String {
        format!("http://{}:{CLIENT_PORT}", self.ip)
    }
}

/// The members of one simulated cluster.
pub struct Cluster {
    pub members: Vec<Member>,
    handle: Handle,
}

/// What every member is built with.
pub struct ClusterSpec {
    pub members: usize,
    pub seed: u64,
    pub snapshot_count: u64,
    pub buggify: bool,
    pub planted_bug: Option<PlantedBug>,
    pub observer: Arc<dyn RaftObserver>,
    /// BUGGIFY fires only while this is true (the fault phase).
    pub faults_on: Arc<std::sync::atomic::AtomicBool>,
    /// (member, error) of every member whose `run` returned an error.
    pub exits: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

/// The IP of member `i` (0-based).
pub fn member_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
}

fn member_config(spec: &ClusterSpec, i: usize) -> StoreConfig {
    let ip = member_ip(i);
    let mut cfg = StoreConfig::single(
        &format!("m{}", i + 1),
        SocketAddr::new(ip, CLIENT_PORT),
        SocketAddr::new(ip, PEER_PORT),
    );
    cfg.initial_cluster = (0..spec.members)
        .map(|j| {
            (
                format!("m{}", j + 1),
                format!("http://{}:{PEER_PORT}", member_ip(j)),
            )
        })
        .collect();
    cfg.snapshot_count = spec.snapshot_count;
    cfg.catchup_entries = spec.snapshot_count / 2;
    cfg.planted_bug = spec.planted_bug;
    // Minutes in production; short here so idle watchers get notifications within a run.
    cfg.watch_progress_notify_interval_ms = WATCH_PROGRESS_NOTIFY_INTERVAL_MS;
    cfg
}

impl Cluster {
    /// Creates and starts every member.
    pub fn start(spec: &ClusterSpec) -> Cluster {
        let handle = Handle::current();
        let mut members = Vec::new();
        for i in 0..spec.members {
            let cfg = member_config(spec, i);
            let token = cfg.initial_cluster_token.clone();
            let id = store::member_id(&cfg.initial_cluster[i].1, &token);
            let disk = SimDisk::new();
            let clock = Clock::new();
            let incarnation = Arc::new(AtomicU64::new(0));
            let (seed, buggify_on, observer) = (spec.seed, spec.buggify, spec.observer.clone());
            let exits = spec.exits.clone();
            let gate = spec.faults_on.clone();
            let (d, c) = (disk.clone(), clock.clone());
            let node = handle
                .create_node()
                .name(cfg.name.clone())
                .ip(member_ip(i))
                .init(move || {
                    let n = incarnation.fetch_add(1, Ordering::Relaxed);
                    let node_seed = seed ^ ((i as u64 + 1) << 40) ^ (n << 20);
                    let b = if buggify_on {
                        Buggify::enabled(
                            SharedRng::seeded(node_seed ^ 0xb066),
                            buggify::DEFAULT_SITE_ENABLE_PROBABILITY,
                            buggify::DEFAULT_FIRE_PROBABILITY,
                        )
                        .with_gate(gate.clone())
                    } else {
                        Buggify::disabled()
                    };
                    let platform = Platform::with_parts(
                        &cfg.name,
                        c.clone(),
                        Arc::new(d.clone()),
                        node_seed,
                        Arc::new(b),
                    );
                    let (cfg, observer, exits) = (cfg.clone(), observer.clone(), exits.clone());
                    async move {
                        let (_keep, shutdown) = task::shutdown_pair();
                        let name = cfg.name.clone();
                        if let Err(e) =
                            store::run_observed(cfg, platform, shutdown, Some(observer)).await
                        {
                            tracing::warn!(error = %e, "member stopped");
                            exits.lock().expect("exits").push((name, e.to_string()));
                        }
                    }
                })
                .build();
            members.push(Member {
                name: format!("m{}", i + 1),
                id,
                ip: member_ip(i),
                node,
                disk,
                clock,
                alive: true,
                paused: false,
            });
        }
        Cluster { members, handle }
    }

    /// Kills member `i` (its tasks vanish; its disk keeps only what it keeps).
    pub fn kill(&mut self, i: usize) {
        self.handle.kill(self.members[i].node.id());
        self.members[i].alive = false;
        self.members[i].paused = false;
    }

    /// Restarts member `i` from its disk. Always kill before restart.
    pub fn restart(&mut self, i: usize) {
        if self.members[i].alive {
            self.kill(i);
        }
        self.handle.restart(self.members[i].node.id());
        self.members[i].alive = true;
    }

    /// Pauses or resumes member `i`.
    pub fn set_paused(&mut self, i: usize, paused: bool) {
        let id = self.members[i].node.id();
        if paused {
            self.handle.pause(id);
        } else {
            self.handle.resume(id);
        }
        self.members[i].paused = paused;
    }

    /// The madsim node id of member `i`.
    pub fn node_id(&self, i: usize) -> madsim::task::NodeId {
        self.members[i].node.id()
    }

    /// Index of the member with store id `id`.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// Client URLs of every member.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url()).collect()
    }
}
