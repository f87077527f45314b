//! Scenarios and the run loop: build the cluster, start clients and watchers, run the
//! nemesis (faults on, safety checked), heal, run the liveness phase (faults off: every
//! client must make progress and every watcher must catch up within a bound), then check.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rkube::store::node::PlantedBug;
use tokio::time::Instant;

use crate::checker::{check_history, RaftChecker, Violation};
use crate::cluster::{Cluster, ClusterSpec};
use crate::history::{History, Outcome, SharedHistory};
use crate::nemesis::Nemesis;
use crate::params::{Fault, Params};
use crate::workload::{watch_all, Client};

/// Successful operations in a row each client needs in the liveness phase.
pub const LIVENESS_STREAK_OPS: usize = 10;
/// Simulated seconds allowed for the first leader election.
pub const FIRST_LEADER_SECS: u64 = 20;

/// A named scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub faults: &'static [Fault],
    pub planted_bug: Option<PlantedBug>,
    /// Negative controls must be caught within this many seeds (from seed 1).
    pub catch_within_seeds: Option<u64>,
    /// Parameters every run of this scenario pins.
    pub pins: &'static [(&'static str, &'static str)],
}

const PARTITIONS: &[Fault] = &[
    Fault::IsolateOne,
    Fault::SplitMinority,
    Fault::IsolateLeader,
    Fault::SwizzleClog,
];
const CRASHES: &[Fault] = &[
    Fault::KillLeader,
    Fault::KillRandom,
    Fault::CrashLoseUnsynced,
    Fault::CrashTornWrite,
    Fault::FsyncFailure,
];
const TIMING: &[Fault] = &[
    Fault::ClockSkew,
    Fault::PacketLoss,
    Fault::PauseResume,
    Fault::IsolateLeader,
];

/// Every scenario, in listing order.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario { name: "store-partition", about: "partitions (one member, minority/majority, leader, swizzle-clog) under mixed KV traffic; checks raft safety, linearizability, watch guarantees", faults: PARTITIONS, planted_bug: None, catch_within_seeds: None, pins: &[] },
        Scenario { name: "store-crash", about: "kills, crashes losing unsynced writes or tearing the last one, failed fsyncs; checks no acknowledged write is lost", faults: CRASHES, planted_bug: None, catch_within_seeds: None, pins: &[] },
        Scenario { name: "store-timing", about: "clock skew/drift/jumps, packet loss, paused members, leader isolation; checks lease and read safety", faults: TIMING, planted_bug: None, catch_within_seeds: None, pins: &[] },
        Scenario { name: "store-chaos", about: "every fault, swarm-selected per seed", faults: &Fault::ALL, planted_bug: None, catch_within_seeds: None, pins: &[] },
        Scenario { name: "control-ack-before-fsync", about: "NEGATIVE CONTROL: acknowledges writes before fsync; crash faults must expose a lost write", faults: &[Fault::CrashLoseUnsynced], planted_bug: Some(PlantedBug::AckBeforeFsync), catch_within_seeds: Some(10), pins: &[("members", "1"), ("fault_interval_ms", "800")] },
        Scenario { name: "control-stale-read", about: "NEGATIVE CONTROL: followers serve linearizable reads without ReadIndex; partitions must expose a stale read", faults: &[Fault::IsolateOne, Fault::IsolateLeader], planted_bug: Some(PlantedBug::StaleFollowerRead), catch_within_seeds: Some(10), pins: &[("members", "3"), ("fault_interval_ms", "800")] },
        Scenario { name: "control-drop-watch-event", about: "NEGATIVE CONTROL: a member drops one watch event; the watch checker must see the gap", faults: &[], planted_bug: Some(PlantedBug::DropWatchEvent), catch_within_seeds: Some(3), pins: &[] },
        Scenario { name: "control-progress-ahead", about: "NEGATIVE CONTROL: watch progress notifications claim one revision more than was sent; the bookmark checker must catch it", faults: &[], planted_bug: Some(PlantedBug::ProgressAhead), catch_within_seeds: Some(3), pins: &[] },
        Scenario { name: "control-apply-twice", about: "NEGATIVE CONTROL: a restarted member applies an entry twice; raft/KV checkers must catch it", faults: &[Fault::KillRandom], planted_bug: Some(PlantedBug::ApplyTwiceAfterRestart), catch_within_seeds: Some(10), pins: &[("members", "3"), ("fault_interval_ms", "800")] },
    ]
}

/// Looks a scenario up by name.
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    pub sim_millis: u64,
    pub raft_steps: u64,
    pub operations: usize,
    pub watch_responses: usize,
    /// Of those, progress notifications (requested or periodic).
    pub progress_notifications: usize,
    /// Compactions that succeeded.
    pub compactions: usize,
    pub digest: u64,
    pub timeline_html: Option<String>,
}

/// The run's parameters: drawn from the seed, then the scenario's and the user's pins.
pub fn params_for(
    scn: &Scenario,
    seed: u64,
    sets: &BTreeMap<String, String>,
) -> Result<Params, String> {
    let mut p = Params::from_seed(seed, scn.faults);
    let pins: BTreeMap<String, String> = scn
        .pins
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    p.pin(&pins)?;
    p.pin(sets)?;
    Ok(p)
}

/// Runs `scn` with `params` inside the current madsim runtime.
pub async fn run_body(scn: &Scenario, seed: u64, params: &Params, want_timeline: bool) -> Verdict {
    let start = Instant::now();
    let history: SharedHistory = Arc::new(Mutex::new(History::default()));
    let checker = Arc::new(RaftChecker::default());
    let exits = Arc::new(Mutex::new(Vec::new()));
    let faults_on = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let spec = ClusterSpec {
        members: params.members,
        seed,
        snapshot_count: params.snapshot_count,
        buggify: params.buggify,
        planted_bug: scn.planted_bug,
        observer: checker.clone(),
        exits: exits.clone(),
        faults_on: faults_on.clone(),
    };
    let mut cluster = Cluster::start(&spec);
    checker.watch_disks(cluster.members.iter().map(|m| (m.id, m.disk.clone())));
    let mut violations = Vec::new();
    if !wait_for(Duration::from_secs(FIRST_LEADER_SECS), || {
        checker.current_leader().is_some()
    })
    .await
    {
        violations.push(Violation {
            property: "liveness: first leader",
            detail: format!("no leader within {FIRST_LEADER_SECS} s"),
        });
    }
    let fault_end = start.elapsed() + Duration::from_secs(params.fault_secs);
    let total_end = fault_end + Duration::from_secs(params.liveness_secs);
    let urls = cluster.client_urls();
    let handle = madsim::runtime::Handle::current();
    let mut watchers = Vec::new();
    for w in 0..urls.len() {
        // Registered before any client runs, so compaction waits for every watcher.
        history.lock().expect("history").watcher_next.insert(w, 1);
    }
    for (w, url) in urls.iter().enumerate() {
        let node = handle
            .create_node()
            .name(format!("watcher-{w}"))
            .ip(format!("10.0.2.{}", w + 1).parse().expect("ip"))
            .build();
        watchers.push(node.spawn(watch_all(
            w,
            url.clone(),
            start,
            total_end + Duration::from_secs(30),
            history.clone(),
        )));
    }
    let mut clients = Vec::new();
    for c in 0..params.clients {
        let node = handle
            .create_node()
            .name(format!("client-{c}"))
            .ip(format!("10.0.1.{}", c + 1).parse().expect("ip"))
            .build();
        let (urls, hist, p) = (urls.clone(), history.clone(), params.clone());
        clients.push(node.spawn(async move {
            let mut client =
                Client::new(c, urls, seed, p.keys, p.mix, start, hist.clone()).kube_shaped(p.kube);
            client.run_until(fault_end).await;
            liveness(&mut client, &hist, total_end).await
        }));
    }
    let mut nemesis = Nemesis::new(
        seed,
        params.clone(),
        start,
        history.clone(),
        checker.clone(),
        exits.clone(),
    );
    nemesis.run(&mut cluster, fault_end).await;
    faults_on.store(false, std::sync::atomic::Ordering::Relaxed);
    nemesis.heal_all(&mut cluster);
    nemesis.restart_stopped(&mut cluster);
    for (c, j) in clients.into_iter().enumerate() {
        if let Ok(false) | Err(_) = j.await {
            violations.push(Violation { property: "liveness: clients make progress", detail: format!("client {c} did not get {LIVENESS_STREAK_OPS} successes in a row after faults stopped") });
        }
    }
    let target = max_known_revision(&history);
    let caught_up = wait_for(Duration::from_secs(params.liveness_secs), || {
        watchers_at(&history, urls.len(), target)
    })
    .await;
    if !caught_up {
        violations.push(Violation {
            property: "liveness: watchers catch up",
            detail: format!("not every watcher reached revision {target}"),
        });
    }
    for (name, err) in exits.lock().expect("exits").iter() {
        if !err.contains("injected fault") {
            violations.push(Violation {
                property: "members survive restarts",
                detail: format!("{name} stopped: {err}"),
            });
        }
    }
    violations.extend(checker.violations());
    let h = history.lock().expect("history");
    violations.extend(check_history(&h));
    let sim_millis = start.elapsed().as_millis() as u64;
    let timeline_html = want_timeline.then(|| {
        let lanes: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
        let leaders: Vec<(u64, String)> = checker
            .leaders()
            .into_iter()
            .filter_map(|(t, id)| {
                cluster
                    .index_of(id)
                    .map(|i| (t, cluster.members[i].name.clone()))
            })
            .collect();
        crate::timeline::render(
            &format!("{} seed {seed}", scn.name),
            &h,
            &lanes,
            &leaders,
            &violations,
            sim_millis,
        )
    });
    Verdict {
        violations,
        sim_millis,
        raft_steps: checker.steps(),
        operations: h.records.len(),
        watch_responses: h.watched.len(),
        progress_notifications: h.watched.iter().filter(|w| w.progress.is_some()).count(),
        compactions: h
            .records
            .iter()
            .filter(|r| {
                matches!(r.op, crate::history::Op::Compact { .. })
                    && matches!(r.outcome, crate::history::Outcome::Noop { .. })
            })
            .count(),
        digest: h.digest(),
        timeline_html,
    }
}

async fn liveness(client: &mut Client, hist: &SharedHistory, deadline: Duration) -> bool {
    let mut streak = 0;
    while streak < LIVENESS_STREAK_OPS {
        if client.elapsed() > deadline {
            return false;
        }
        let before = hist.lock().expect("history").records.len();
        client.one_op().await;
        let h = hist.lock().expect("history");
        let mine_ok = h.records[before..]
            .iter()
            .filter(|r| r.client == client.id)
            .all(|r| !matches!(r.outcome, Outcome::Unknown(_)));
        streak = if mine_ok { streak + 1 } else { 0 };
    }
    true
}

fn max_known_revision(history: &SharedHistory) -> i64 {
    let h = history.lock().expect("history");
    let from_ops = h.records.iter().filter_map(|r| match r.outcome {
        Outcome::Wrote { revision } => Some(revision),
        _ => None,
    });
    let from_watch = h
        .watched
        .iter()
        .flat_map(|w| w.events.iter().map(|e| e.revision));
    from_ops.chain(from_watch).max().unwrap_or(1)
}

fn watchers_at(history: &SharedHistory, watchers: usize, target: i64) -> bool {
    let h = history.lock().expect("history");
    (0..watchers).all(|w| {
        h.watched
            .iter()
            .filter(|r| r.watcher == w)
            .flat_map(|r| r.events.iter())
            .map(|e| e.revision)
            .max()
            .unwrap_or(1)
            >= target
    })
}

async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cond()
}

/// Runs one seed in a fresh madsim runtime, on a fresh thread: std's `HashMap` seeds its
/// per-thread keys on the thread's first use, and madsim can only make those keys come from
/// the run's seed if the runtime is that first use (otherwise hash iteration order inside
/// dependencies, e.g. raft-rs's progress tracker, would vary between processes).
pub fn run_seed(scn: &Scenario, seed: u64, params: &Params, want_timeline: bool) -> Verdict {
    let (scn, params) = (scn.clone(), params.clone());
    std::thread::spawn(move || run_seed_here(&scn, seed, &params, want_timeline))
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn run_seed_here(scn: &Scenario, seed: u64, params: &Params, want_timeline: bool) -> Verdict {
    let mut config = madsim::Config::default();
    config.net.send_latency =
        Duration::from_millis(1)..Duration::from_millis(params.max_latency_ms.max(2));
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
    rt.set_time_limit(Duration::from_secs(
        params.fault_secs + 3 * params.liveness_secs + 120,
    ));
    let (scn, params) = (scn.clone(), params.clone());
    rt.block_on(async move { run_body(&scn, seed, &params, want_timeline).await })
}

static CHECK_ARGS: Mutex<Option<(Scenario, u64, Params)>> = Mutex::new(None);

async fn check_body() -> u64 {
    let (scn, seed, params) = CHECK_ARGS
        .lock()
        .expect("check args")
        .clone()
        .expect("check args set");
    run_body(&scn, seed, &params, false).await.digest
}

/// Runs the seed twice under madsim's own determinism check, which compares every random
/// draw of the two runs (stronger than comparing end results). Panics on divergence.
///
/// A warm-up run comes first: some dependencies draw a process-wide random seed once, on
/// first use (e.g. hashers with a lazily seeded global state), which would otherwise make
/// the first checked run draw more than the second.
pub fn madsim_check_determinism(scn: &Scenario, seed: u64, params: &Params) -> u64 {
    let _ = run_seed(scn, seed, params, false);
    *CHECK_ARGS.lock().expect("check args") = Some((scn.clone(), seed, params.clone()));
    let mut config = madsim::Config::default();
    config.net.send_latency =
        Duration::from_millis(1)..Duration::from_millis(params.max_latency_ms.max(2));
    madsim::runtime::Runtime::check_determinism(seed, config, check_body)
}
