//! The nemesis: a seeded schedule of faults against the store cluster during the fault
//! phase, each recorded as a span on the timeline, and a full heal before the liveness
//! phase.

use std::sync::Arc;
use std::time::Duration;

use madsim::net::NetSim;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rkube::platform::disk::CrashMode;
use tokio::time::Instant;

use crate::checker::RaftChecker;
use crate::cluster::Cluster;
use crate::history::{Mark, SharedHistory};
use crate::params::{Fault, Params};

/// What must be undone when a fault's hold ends.
enum Heal {
    Unclog(Vec<usize>),
    UnclogLinks(Vec<(usize, usize)>),
    Restart(usize),
    CrashRestart(usize),
    Resume(usize),
    ClockReset(usize),
    PacketLossOff,
    Nothing,
}

/// The fault injector of one run.
pub struct Nemesis {
    rng: rand::rngs::SmallRng,
    params: Params,
    start: Instant,
    history: SharedHistory,
    checker: Arc<RaftChecker>,
    exits: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    /// Exits already handled by [`Nemesis::restart_stopped`].
    exits_seen: usize,
}

impl Nemesis {
    pub fn new(
        seed: u64,
        params: Params,
        start: Instant,
        history: SharedHistory,
        checker: Arc<RaftChecker>,
        exits: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    ) -> Nemesis {
        Nemesis {
            rng: rand::rngs::SmallRng::seed_from_u64(seed ^ 0x0e3e_5150),
            params,
            start,
            history,
            checker,
            exits,
            exits_seen: 0,
        }
    }

    /// Restarts members that stopped on an injected fault (a failed fsync, a BUGGIFY site),
    /// as a supervisor would restart a crashed etcd.
    pub fn restart_stopped(&mut self, cluster: &mut Cluster) {
        let new: Vec<(String, String)> = {
            let exits = self.exits.lock().expect("exits");
            exits[self.exits_seen..].to_vec()
        };
        self.exits_seen += new.len();
        for (name, err) in new {
            let Some(i) = cluster.members.iter().position(|m| m.name == name) else {
                continue;
            };
            cluster.kill(i);
            cluster.members[i]
                .disk
                .crash(CrashMode::DropUnsynced, self.rng.random());
            cluster.restart(i);
            let at = self.now_ms();
            self.mark(name, "restart", format!("after: {err}"), at, None);
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn mark(&self, lane: String, kind: &str, detail: String, at_ms: u64, until_ms: Option<u64>) {
        self.history.lock().expect("history").marks.push(Mark {
            at_ms,
            lane,
            kind: kind.to_string(),
            detail,
            until_ms,
        });
    }

    /// Injects faults until `until` (time since start), healing each after its hold.
    pub async fn run(&mut self, cluster: &mut Cluster, until: Duration) {
        if self.params.faults.is_empty() {
            while self.start.elapsed() < until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.restart_stopped(cluster);
            }
            return;
        }
        while self.start.elapsed() < until {
            let gap = self.rng.random_range(
                self.params.fault_interval_ms / 2..=self.params.fault_interval_ms * 3 / 2,
            );
            tokio::time::sleep(Duration::from_millis(gap)).await;
            if self.start.elapsed() >= until {
                break;
            }
            let fault = self.params.faults[self.rng.random_range(0..self.params.faults.len())];
            let began = self.now_ms();
            let (lane, detail, heal) = self.inject(cluster, fault).await;
            let hold = self
                .rng
                .random_range(200..=self.params.fault_hold_ms.max(201));
            tokio::time::sleep(Duration::from_millis(hold)).await;
            self.heal(cluster, heal);
            self.mark(lane, fault.name(), detail, began, Some(self.now_ms()));
        }
    }

    fn pick(&mut self, cluster: &Cluster) -> usize {
        self.rng.random_range(0..cluster.members.len())
    }

    fn leader_or_random(&mut self, cluster: &Cluster) -> usize {
        match self
            .checker
            .current_leader()
            .and_then(|id| cluster.index_of(id))
        {
            Some(i) if cluster.members[i].alive => i,
            _ => self.pick(cluster),
        }
    }

    async fn inject(&mut self, cluster: &mut Cluster, fault: Fault) -> (String, String, Heal) {
        let net = NetSim::current();
        let n = cluster.members.len();
        match fault {
            Fault::IsolateOne | Fault::IsolateLeader => {
                let i = if fault == Fault::IsolateLeader {
                    self.leader_or_random(cluster)
                } else {
                    self.pick(cluster)
                };
                net.clog_node(cluster.node_id(i));
                (
                    cluster.members[i].name.clone(),
                    "isolated".into(),
                    Heal::Unclog(vec![i]),
                )
            }
            Fault::SplitMinority => {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut self.rng);
                let minority = order[..(n - 1) / 2].to_vec();
                let mut links = Vec::new();
                for &a in &minority {
                    for b in (0..n).filter(|b| !minority.contains(b)) {
                        net.clog_link(cluster.node_id(a), cluster.node_id(b));
                        net.clog_link(cluster.node_id(b), cluster.node_id(a));
                        links.push((a, b));
                    }
                }
                let names: Vec<String> = minority
                    .iter()
                    .map(|&i| cluster.members[i].name.clone())
                    .collect();
                (
                    "cluster".into(),
                    format!("minority {names:?}"),
                    Heal::UnclogLinks(links),
                )
            }
            Fault::KillLeader | Fault::KillRandom => {
                let i = if fault == Fault::KillLeader {
                    self.leader_or_random(cluster)
                } else {
                    self.pick(cluster)
                };
                cluster.kill(i);
                (
                    cluster.members[i].name.clone(),
                    "killed".into(),
                    Heal::Restart(i),
                )
            }
            Fault::CrashLoseUnsynced | Fault::CrashTornWrite => {
                let i = self.pick(cluster);
                cluster.kill(i);
                let mode = if fault == Fault::CrashTornWrite {
                    CrashMode::TearLastWrite
                } else {
                    CrashMode::DropUnsynced
                };
                cluster.members[i].disk.crash(mode, self.rng.random());
                (
                    cluster.members[i].name.clone(),
                    format!("crashed ({mode:?})"),
                    Heal::Restart(i),
                )
            }
            Fault::FsyncFailure => {
                let i = self.pick(cluster);
                cluster.members[i].disk.fail_next_fsync();
                (
                    cluster.members[i].name.clone(),
                    "next fsync fails".into(),
                    Heal::CrashRestart(i),
                )
            }
            Fault::ClockSkew => self.skew(cluster),
            Fault::PacketLoss => {
                let rate = self.rng.random_range(0.02..0.3);
                net.update_config(|c| c.packet_loss_rate = rate);
                (
                    "cluster".into(),
                    format!("packet loss {:.0}%", rate * 100.0),
                    Heal::PacketLossOff,
                )
            }
            Fault::SwizzleClog => self.swizzle(cluster).await,
            Fault::PauseResume => {
                let i = self.pick(cluster);
                if !cluster.members[i].alive {
                    return (
                        cluster.members[i].name.clone(),
                        "already down".into(),
                        Heal::Nothing,
                    );
                }
                cluster.set_paused(i, true);
                (
                    cluster.members[i].name.clone(),
                    "paused".into(),
                    Heal::Resume(i),
                )
            }
        }
    }

    fn skew(&mut self, cluster: &mut Cluster) -> (String, String, Heal) {
        let i = self.pick(cluster);
        let clock = &cluster.members[i].clock;
        let detail = match self.rng.random_range(0..3) {
            0 => {
                let off = self.rng.random_range(-10_000i64..10_000);
                clock.set_wall_offset_ms(off);
                format!("wall offset {off} ms")
            }
            1 => {
                let ppm = self.rng.random_range(-300_000i64..300_000);
                clock.set_drift_ppm(ppm);
                format!("drift {ppm} ppm")
            }
            _ => {
                let ms = self.rng.random_range(1_000..10_000);
                clock.jump_forward(Duration::from_millis(ms));
                format!("jump +{ms} ms")
            }
        };
        (cluster.members[i].name.clone(), detail, Heal::ClockReset(i))
    }

    async fn swizzle(&mut self, cluster: &mut Cluster) -> (String, String, Heal) {
        let net = NetSim::current();
        let mut order: Vec<usize> = (0..cluster.members.len()).collect();
        order.shuffle(&mut self.rng);
        let take = (cluster.members.len() / 2 + 1).min(order.len());
        let clogged: Vec<usize> = order[..take].to_vec();
        for &i in &clogged {
            net.clog_node(cluster.node_id(i));
            tokio::time::sleep(Duration::from_millis(self.rng.random_range(50..500))).await;
        }
        let mut unclog = clogged.clone();
        unclog.shuffle(&mut self.rng);
        (
            "cluster".into(),
            format!("swizzle {} members", clogged.len()),
            Heal::Unclog(unclog),
        )
    }

    fn heal(&mut self, cluster: &mut Cluster, heal: Heal) {
        let net = NetSim::current();
        match heal {
            Heal::Unclog(ids) => ids
                .iter()
                .for_each(|&i| net.unclog_node(cluster.node_id(i))),
            Heal::UnclogLinks(links) => {
                for (a, b) in links {
                    net.unclog_link(cluster.node_id(a), cluster.node_id(b));
                    net.unclog_link(cluster.node_id(b), cluster.node_id(a));
                }
            }
            Heal::Restart(i) => cluster.restart(i),
            Heal::CrashRestart(i) => {
                cluster.kill(i);
                cluster.members[i]
                    .disk
                    .crash(CrashMode::DropUnsynced, self.rng.random());
                cluster.restart(i);
            }
            Heal::Resume(i) => cluster.set_paused(i, false),
            Heal::ClockReset(i) => {
                cluster.members[i].clock.set_drift_ppm(0);
                cluster.members[i].clock.set_wall_offset_ms(0);
            }
            Heal::PacketLossOff => net.update_config(|c| c.packet_loss_rate = 0.0),
            Heal::Nothing => {}
        }
    }

    /// Ends every fault: network whole, every member running and unpaused, clocks steady.
    pub fn heal_all(&mut self, cluster: &mut Cluster) {
        let net = NetSim::current();
        net.update_config(|c| c.packet_loss_rate = 0.0);
        for i in 0..cluster.members.len() {
            net.unclog_node(cluster.node_id(i));
            for j in 0..cluster.members.len() {
                net.unclog_link(cluster.node_id(i), cluster.node_id(j));
            }
            if cluster.members[i].paused {
                cluster.set_paused(i, false);
            }
            cluster.members[i].clock.set_drift_ppm(0);
            if !cluster.members[i].alive {
                cluster.restart(i);
            }
        }
        let at = self.now_ms();
        self.mark("cluster".into(), "heal", "all faults off".into(), at, None);
    }
}
