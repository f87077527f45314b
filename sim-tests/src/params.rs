//! Run parameters, drawn from the seed (swarm testing): each seed explores a different
//! cluster size, fault mix, fault rate, latency and workload mix. Any parameter can be
//! pinned from the command line with `--set name=value`.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};

/// Every fault the nemesis knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Cut one member off from everyone.
    IsolateOne,
    /// Split the cluster into a minority and a majority.
    SplitMinority,
    /// Cut off whoever is leader now.
    IsolateLeader,
    /// Kill the leader, then restart it.
    KillLeader,
    /// Kill a random member, then restart it.
    KillRandom,
    /// Kill a member and drop its unsynced writes, then restart it.
    CrashLoseUnsynced,
    /// Kill a member and tear its last unsynced write, then restart it.
    CrashTornWrite,
    /// Make a member's next fsync fail (the member stops, as etcd does; it is restarted).
    FsyncFailure,
    /// Skew, drift or jump one member's clock.
    ClockSkew,
    /// Lose a fraction of packets cluster-wide for a while.
    PacketLoss,
    /// Clog members one by one, then unclog them in random order.
    SwizzleClog,
    /// Pause a member (a stopped VM), then resume it.
    PauseResume,
}

impl Fault {
    /// All faults, in a fixed order.
    pub const ALL: [Fault; 12] = [
        Fault::IsolateOne,
        Fault::SplitMinority,
        Fault::IsolateLeader,
        Fault::KillLeader,
        Fault::KillRandom,
        Fault::CrashLoseUnsynced,
        Fault::CrashTornWrite,
        Fault::FsyncFailure,
        Fault::ClockSkew,
        Fault::PacketLoss,
        Fault::SwizzleClog,
        Fault::PauseResume,
    ];

    /// The name used in output and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::IsolateOne => "isolate-one",
            Fault::SplitMinority => "split-minority",
            Fault::IsolateLeader => "isolate-leader",
            Fault::KillLeader => "kill-leader",
            Fault::KillRandom => "kill-random",
            Fault::CrashLoseUnsynced => "crash-lose-unsynced",
            Fault::CrashTornWrite => "crash-torn-write",
            Fault::FsyncFailure => "fsync-failure",
            Fault::ClockSkew => "clock-skew",
            Fault::PacketLoss => "packet-loss",
            Fault::SwizzleClog => "swizzle-clog",
            Fault::PauseResume => "pause-resume",
        }
    }

    /// Parses [`Fault::name`].
    pub fn parse(s: &str) -> Option<Fault> {
        Fault::ALL.iter().copied().find(|f| f.name() == s)
    }
}

/// A strong 64-bit mix, so neighbouring seeds give unrelated parameters.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    pub members: usize,
    pub clients: usize,
    pub keys: usize,
    /// Simulated seconds with faults on.
    pub fault_secs: u64,
    /// Simulated seconds allowed for the liveness phase.
    pub liveness_secs: u64,
    /// Mean simulated milliseconds between faults.
    pub fault_interval_ms: u64,
    /// Longest a fault is held, in milliseconds.
    pub fault_hold_ms: u64,
    pub faults: Vec<Fault>,
    /// Network latency range upper bound in milliseconds (lower bound 1).
    pub max_latency_ms: u64,
    /// Percent of operations of each kind: get, put, delete, cas txn, lease put.
    pub mix: [u32; 5],
    pub snapshot_count: u64,
    /// Whether BUGGIFY fault sites are live in this run.
    pub buggify: bool,
    /// Kubernetes-shaped traffic instead of etcd-shaped: keys `/registry/pods/<ns>/<name>`,
    /// create-if-absent, update- and delete-if-mod-revision txns, paginated lists.
    pub kube: bool,
}

/// Names of the pinnable parameters, in order.
pub const PARAM_NAMES: [&str; 12] = [
    "kube",
    "members",
    "clients",
    "keys",
    "fault_secs",
    "liveness_secs",
    "fault_interval_ms",
    "fault_hold_ms",
    "faults",
    "max_latency_ms",
    "snapshot_count",
    "buggify",
];

impl Params {
    /// Draws a run's parameters from `seed`, allowing only `faults` (the scenario's set).
    pub fn from_seed(seed: u64, faults: &[Fault]) -> Params {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(splitmix64(seed ^ 0x5eed_5eed_5eed_5eed));
        let members = [3, 3, 3, 5, 1][rng.random_range(0..5)];
        let mut chosen: Vec<Fault> = faults
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.7))
            .collect();
        if chosen.is_empty() && !faults.is_empty() {
            chosen.push(faults[rng.random_range(0..faults.len())]);
        }
        Params {
            members,
            clients: rng.random_range(2..6),
            keys: rng.random_range(3..9),
            fault_secs: rng.random_range(20..40),
            liveness_secs: 30,
            fault_interval_ms: rng.random_range(1_000..4_000),
            fault_hold_ms: rng.random_range(1_000..6_000),
            faults: chosen,
            max_latency_ms: [2, 5, 10, 30][rng.random_range(0..4)],
            mix: [
                rng.random_range(20..40),
                rng.random_range(20..40),
                rng.random_range(5..15),
                rng.random_range(5..20),
                rng.random_range(0..10),
            ],
            snapshot_count: [50, 200, 10_000][rng.random_range(0..3)],
            buggify: rng.random_bool(0.5),
            kube: rng.random_bool(0.5),
        }
    }

    /// Applies `name=value` overrides; unknown names and bad values are errors.
    pub fn pin(&mut self, sets: &BTreeMap<String, String>) -> Result<(), String> {
        for (k, v) in sets {
            let num = || v.parse::<u64>().map_err(|e| format!("--set {k}={v}: {e}"));
            match k.as_str() {
                "members" => self.members = num()? as usize,
                "clients" => self.clients = num()? as usize,
                "keys" => self.keys = num()?.max(1) as usize,
                "fault_secs" => self.fault_secs = num()?,
                "liveness_secs" => self.liveness_secs = num()?,
                "fault_interval_ms" => self.fault_interval_ms = num()?.max(1),
                "fault_hold_ms" => self.fault_hold_ms = num()?.max(1),
                "max_latency_ms" => self.max_latency_ms = num()?.max(1),
                "snapshot_count" => self.snapshot_count = num()?.max(1),
                "buggify" => self.buggify = v == "true" || v == "1",
                "kube" => self.kube = v == "true" || v == "1",
                "faults" => {
                    self.faults = v
                        .split(',')
                        .filter(|s| !s.is_empty() && *s != "none")
                        .map(|s| Fault::parse(s).ok_or_else(|| format!("unknown fault {s:?}")))
                        .collect::<Result<_, _>>()?
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}; known: {}",
                        PARAM_NAMES.join(", ")
                    ))
                }
            }
        }
        if ![1, 3, 5].contains(&self.members) {
            return Err("members must be 1, 3 or 5".into());
        }
        Ok(())
    }

    /// One line describing the run, printed at its start.
    pub fn describe(&self) -> String {
        let faults: Vec<&str> = self.faults.iter().map(|f| f.name()).collect();
        format!(
            "members={} clients={} keys={} fault_secs={} liveness_secs={} fault_interval_ms={} fault_hold_ms={} faults={} max_latency_ms={} mix={:?} snapshot_count={} buggify={} kube={}",
            self.members, self.clients, self.keys, self.fault_secs, self.liveness_secs,
            self.fault_interval_ms, self.fault_hold_ms,
            if faults.is_empty() { "none".to_string() } else { faults.join(",") },
            self.max_latency_ms, self.mix, self.snapshot_count, self.buggify, self.kube
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_params_and_pins_apply() {
        let a = Params::from_seed(9, &Fault::ALL);
        assert_eq!(a.describe(), Params::from_seed(9, &Fault::ALL).describe());
        let mut b = a.clone();
        let sets = BTreeMap::from([
            ("members".to_string(), "5".to_string()),
            ("faults".to_string(), "kill-leader".to_string()),
        ]);
        b.pin(&sets).unwrap();
        assert_eq!((b.members, b.faults.clone()), (5, vec![Fault::KillLeader]));
        let bad = BTreeMap::from([("members".to_string(), "4".to_string())]);
        assert!(b.pin(&bad).is_err());
    }
}
