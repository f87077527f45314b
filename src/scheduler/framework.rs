//! One scheduling cycle as a pure function: filter the nodes, score the feasible ones, pick
//! the best (ties broken by the caller's seeded random numbers), or explain why none fits in
//! upstream's `FailedScheduling` words.
//!
//! As upstream, a cycle stops filtering once it has found enough feasible nodes
//! (`percentageOfNodesToScore`) and the next cycle starts where this one stopped, so large
//! clusters are not scanned whole for every pod while every node still gets its turn.

use std::collections::BTreeMap;
use std::fmt;

use super::plugins::{CycleState, Plugin, Reject};
use super::snapshot::{NodeInfo, PodInfo, Snapshot};

/// Below this many nodes every node is evaluated (upstream `minFeasibleNodesToFind`).
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The smallest adaptive percentage (upstream `minFeasibleNodesPercentageToFind`).
pub const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// The configured plugins and their score weights.
pub struct Framework {
    plugins: Vec<(Box<dyn Plugin>, i64)>,
    /// `percentageOfNodesToScore`: 0 means upstream's adaptive default.
    pub percentage_of_nodes_to_score: usize,
}

/// The chosen node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    pub score: i64,
    /// Nodes filtered, and how many of them were feasible.
    pub evaluated: usize,
    pub feasible: usize,
}

/// Why no node fits: each reason with the number of nodes that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub nodes: usize,
    pub reasons: BTreeMap<String, usize>,
    /// Nodes where only resolvable reasons failed (preemption could help there).
    pub resolvable_nodes: Vec<String>,
    /// Why PostFilter (preemption) did not help, appended to the message; empty if it did
    /// or did not run.
    pub post_filter: String,
}

impl fmt::Display for FitError {
    /// `0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {a: b}.`
    /// then, if preemption did not help, why (`preemption: 0/5 nodes are available: ...`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        // Upstream sorts the "<count> <reason>" strings.
        parts.sort();
        write!(f, "0/{} nodes are available", self.nodes)?;
        if parts.is_empty() {
            write!(f, ".")?;
        } else {
            write!(f, ": {}.", parts.join(", "))?;
        }
        if !self.post_filter.is_empty() {
            write!(f, " {}", self.post_filter)?;
        }
        Ok(())
    }
}

impl Framework {
    pub fn new(plugins: Vec<(Box<dyn Plugin>, i64)>) -> Framework {
        Framework {
            plugins,
            percentage_of_nodes_to_score: 0,
        }
    }

    pub fn with_defaults() -> Framework {
        Framework::new(super::plugins::default_plugins())
    }

    /// How many feasible nodes to find before scoring (upstream `numFeasibleNodesToFind`).
    pub fn feasible_nodes_to_find(&self, nodes: usize) -> usize {
        if nodes < MIN_FEASIBLE_NODES_TO_FIND || self.percentage_of_nodes_to_score >= 100 {
            return nodes;
        }
        let percentage = match self.percentage_of_nodes_to_score {
            0 => 50usize
                .saturating_sub(nodes / 125)
                .max(MIN_FEASIBLE_NODES_PERCENTAGE),
            p => p,
        };
        (nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    /// Runs every PreFilter: the cycle's state, or why the pod fits nowhere.
    pub fn pre_filter(&self, pod: &PodInfo, snap: &Snapshot) -> Result<CycleState, Reject> {
        let mut state = CycleState::default();
        for (p, _) in &self.plugins {
            p.pre_filter(pod, snap, &mut state)?;
        }
        Ok(state)
    }

    /// Runs every filter; the first rejection's reasons, as upstream stops at the first.
    pub fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        self.plugins
            .iter()
            .try_for_each(|(p, _)| p.filter(state, pod, node))
    }

    /// [`Framework::filter`] with the room of the pods nominated to `node` ahead of `pod`
    /// taken (upstream `RunFilterPluginsWithNominatedPods`): it must fit both with them
    /// (their room is held) and without them (they may never come).
    pub fn filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        node: &NodeInfo,
    ) -> Result<(), Reject> {
        let mut ahead = snap.nominated_ahead_of(node.name(), pod).peekable();
        if ahead.peek().is_some() {
            let mut with = node.clone();
            for p in ahead.filter(|p| !node.pods.contains_key(&p.key)) {
                with.add_pod(p.clone());
            }
            self.filter(state, pod, &with)?;
        }
        self.filter(state, pod, node)
    }

    /// Whether `pod` fits `node` in `snap`, PreFilter and nominated pods included (for checks
    /// and preemption).
    pub fn fits(&self, pod: &PodInfo, snap: &Snapshot, node: &NodeInfo) -> Result<(), Reject> {
        let state = self.pre_filter(pod, snap)?;
        self.filter_with_nominated(&state, pod, snap, node)
    }

    /// Picks a node for `pod`. Nodes are visited in name order from `start` (the node where
    /// the previous cycle stopped; the returned name is where the next one starts), wrapping
    /// around; `random` draws the tie-breaks.
    pub fn schedule(
        &self,
        pod: &PodInfo,
        snap: &Snapshot,
        start: &str,
        random: &mut dyn FnMut() -> u64,
    ) -> (Result<Placement, FitError>, String) {
        // Placeholders for pods on unknown nodes are rare; counting them would cost a walk
        // over every node per pod, and they only shift how many feasible nodes are sought.
        let n = snap.nodes.len();
        let mut state = match self.pre_filter(pod, snap) {
            Ok(state) => state,
            Err(r) => {
                let n = snap.schedulable_nodes().count();
                let reasons = r.reasons.into_iter().map(|why| (why, n)).collect();
                let err = FitError {
                    nodes: n,
                    reasons,
                    resolvable_nodes: Vec::new(),
                    post_filter: String::new(),
                };
                return (Err(err), start.to_string());
            }
        };
        let want = self.feasible_nodes_to_find(n);
        let mut feasible = Vec::new();
        let mut reasons = BTreeMap::new();
        let mut resolvable_nodes = Vec::new();
        let (mut evaluated, mut next) = (0, None);
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let ring = snap
            .nodes
            .range::<str, _>((Included(start), Unbounded))
            .chain(snap.nodes.range::<str, _>((Unbounded, Excluded(start))));
        for (name, node) in ring.filter(|(_, n)| n.node.is_some()) {
            if feasible.len() >= want {
                next = Some(name.clone());
                break;
            }
            evaluated += 1;
            match self.filter_with_nominated(&state, pod, snap, node) {
                Ok(()) => feasible.push(node),
                Err(r) => {
                    for reason in r.reasons {
                        *reasons.entry(reason).or_insert(0) += 1;
                    }
                    if !r.unresolvable {
                        resolvable_nodes.push(node.name().to_string());
                    }
                }
            }
        }
        // A full turn: the next cycle starts where this one did.
        let next = next.unwrap_or_else(|| start.to_string());
        if feasible.is_empty() {
            resolvable_nodes.sort();
            let err = FitError {
                // Nothing fitted, so the turn was full: every node was evaluated.
                nodes: evaluated,
                reasons,
                resolvable_nodes,
                post_filter: String::new(),
            };
            return (Err(err), next);
        }
        let scores = self.score(&mut state, pod, snap, &feasible);
        let (best, score) = select(&feasible, &scores, random);
        let placement = Placement {
            node: best.to_string(),
            score,
            evaluated,
            feasible: feasible.len(),
        };
        (Ok(placement), next)
    }

    /// The weighted sum of every scoring plugin's normalized scores, per feasible node; a
    /// plugin whose PreScore skips adds nothing.
    fn score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        feasible: &[&NodeInfo],
    ) -> Vec<i64> {
        let mut total = vec![0i64; feasible.len()];
        if feasible.len() == 1 {
            return total; // Nothing to rank.
        }
        for (plugin, weight) in self.plugins.iter().filter(|(p, _)| p.scores()) {
            if !plugin.pre_score(pod, snap, feasible, state) {
                continue;
            }
            let state = &*state;
            let mut s: Vec<i64> = feasible
                .iter()
                .map(|n| plugin.score(state, pod, n))
                .collect();
            plugin.normalize(&mut s);
            for (t, s) in total.iter_mut().zip(s) {
                debug_assert!((0..=super::plugins::MAX_NODE_SCORE).contains(&s));
                *t += s * weight;
            }
        }
        total
    }
}

/// The highest-scoring node; among equals each is equally likely (reservoir sampling, as
/// upstream's `selectHost`), drawn from `random` so a seed replays the choice.
fn select<'a>(
    feasible: &[&'a NodeInfo],
    scores: &[i64],
    random: &mut dyn FnMut() -> u64,
) -> (&'a str, i64) {
    assert_eq!(feasible.len(), scores.len());
    let mut best = 0;
    let mut ties = 1u64;
    for i in 1..feasible.len() {
        if scores[i] > scores[best] {
            best = i;
            ties = 1;
        } else if scores[i] == scores[best] {
            ties += 1;
            if random().is_multiple_of(ties) {
                best = i;
            }
        }
    }
    (feasible[best].name(), scores[best])
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{Cache, PodInfo};
    use super::super::testing::{node, xorshift};
    use super::*;
    use crate::api::quantity;
    use crate::api::{Node, Pod};
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn pod(name: &str, milli_cpu: u32, mem_mi: u32, tolerate: bool, zone: Option<u8>) -> Arc<Pod> {
        let mut spec = json!({"containers": [{"name": "c", "resources": {"requests":
            {"cpu": format!("{milli_cpu}m"), "memory": format!("{mem_mi}Mi")}}}]});
        if tolerate {
            spec["tolerations"] = json!([{"key": "dedicated", "operator": "Exists"}]);
        }
        if let Some(z) = zone {
            spec["nodeSelector"] = json!({"zone": format!("z{z}")});
        }
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "d"}, "spec": spec}),
            )
            .unwrap(),
        )
    }

    #[test]
    fn failed_scheduling_counts_reasons_as_upstream() {
        let mut c = Cache::default();
        for i in 0..3 {
            c.upsert_node(node(&format!("n{i}"), 1, 1, 10, false, 0));
        }
        for i in 3..5 {
            c.upsert_node(node(&format!("n{i}"), 8, 8, 10, true, 0));
        }
        // Tainted and too small: upstream's filter order reports the taint (unresolvable).
        c.upsert_node(node("n5", 1, 1, 10, true, 0));
        let fw = Framework::with_defaults();
        let p = PodInfo::new(pod("p", 2000, 10, false, None));
        let (r, _) = fw.schedule(&p, c.snapshot(), "", &mut xorshift(1));
        let err = r.unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/6 nodes are available: 3 Insufficient cpu, 3 node(s) had untolerated taint {dedicated: db}."
        );
        assert_eq!(err.resolvable_nodes, ["n0", "n1", "n2"]);
        let tolerant = PodInfo::new(pod("q", 2000, 10, true, None));
        let (r, _) = fw.schedule(&tolerant, c.snapshot(), "", &mut xorshift(1));
        let node = r.unwrap().node;
        assert!(
            node == "n3" || node == "n4",
            "only the big nodes have room: {node}"
        );
    }

    #[test]
    fn large_clusters_stop_after_enough_feasible_nodes() {
        let fw = Framework::with_defaults();
        assert_eq!(fw.feasible_nodes_to_find(50), 50);
        assert_eq!(fw.feasible_nodes_to_find(1000), 420);
        assert_eq!(fw.feasible_nodes_to_find(5000), 500);
        // Past 6,250 nodes the adaptive share bottoms out at 5 %.
        assert_eq!(fw.feasible_nodes_to_find(7_000), 350);
        assert_eq!(fw.feasible_nodes_to_find(50_000), 2_500);
        let mut c = Cache::default();
        for i in 0..1000 {
            c.upsert_node(node(&format!("n{i:04}"), 4, 8, 110, false, 0));
        }
        let p = PodInfo::new(pod("p", 100, 10, false, None));
        let (r, next) = fw.schedule(&p, c.snapshot(), "n0900", &mut xorshift(3));
        let placed = r.unwrap();
        assert_eq!((placed.evaluated, placed.feasible), (420, 420));
        assert_eq!(next, "n0320", "the next cycle starts where this stopped");
        let (_, again) = fw.schedule(&p, c.snapshot(), &next, &mut xorshift(3));
        assert_eq!(again, "n0740");
    }

    /// A node: cpu cores, memory GiB, max pods, tainted, zone.
    type NodeSpec = (u32, u32, u32, bool, u8);
    /// A pod: millicores, memory MiB, tolerates the taint, zone selector.
    type PodSpec = (u32, u32, bool, Option<u8>);
    pub(super) type Placed = Vec<(Arc<Pod>, Option<String>)>;

    /// A cluster and a stream of pods drawn from a seed.
    fn cluster() -> impl Strategy<Value = (Vec<NodeSpec>, Vec<PodSpec>)> {
        (
            proptest::collection::vec((1u32..8, 1u32..16, 1u32..12, any::<bool>(), 0u8..3), 1..12),
            proptest::collection::vec(
                (
                    0u32..3000,
                    0u32..4096,
                    any::<bool>(),
                    proptest::option::of(0u8..3),
                ),
                1..80,
            ),
        )
    }

    fn run(nodes: &[NodeSpec], pods: &[PodSpec], seed: u64) -> (Cache, Placed) {
        let nodes: Vec<Arc<Node>> = nodes
            .iter()
            .enumerate()
            .map(|(i, &(cpu, mem, max_pods, taint, zone))| {
                node(&format!("n{i}"), cpu, mem, max_pods, taint, zone)
            })
            .collect();
        let pods: Vec<Arc<Pod>> = pods
            .iter()
            .enumerate()
            .map(|(i, &(cpu, mem, tol, zone))| pod(&format!("p{i}"), cpu, mem, tol, zone))
            .collect();
        run_pods(&nodes, &pods, seed)
    }

    /// Schedules every pod in turn, assuming each placement; returns the placements.
    pub(super) fn run_pods(nodes: &[Arc<Node>], pods: &[Arc<Pod>], seed: u64) -> (Cache, Placed) {
        let fw = Framework::with_defaults();
        let mut c = Cache::default();
        for n in nodes {
            c.upsert_node(n.clone());
        }
        let mut random = xorshift(seed);
        let (mut start, mut out) = (String::new(), Vec::new());
        for p in pods {
            let info = Arc::new(PodInfo::new(p.clone()));
            let before = c.snapshot().clone();
            let (r, next) = fw.schedule(&info, &before, &start, &mut random);
            start = next;
            match r {
                Ok(placed) => {
                    // Every filter passes against the state the decision was made on.
                    assert!(fw.fits(&info, &before, &before.nodes[&placed.node]).is_ok());
                    c.assume(info, &placed.node);
                    out.push((p.clone(), Some(placed.node)));
                }
                Err(e) => {
                    // Small clusters are scanned whole: unschedulable means no node fits.
                    for n in before.schedulable_nodes() {
                        assert!(fw.fits(&info, &before, n).is_err(), "{} fits {e}", n.name());
                    }
                    out.push((p.clone(), None));
                }
            }
        }
        (c, out)
    }

    fn requested(p: &Pod, what: &str) -> i64 {
        let v: &Value =
            &serde_json::to_value(&p.spec.containers[0].resources.requests).unwrap()[what];
        let q = quantity::parse(v.as_str().unwrap()).unwrap();
        if what == "cpu" {
            q.milli_value()
        } else {
            q.value()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No node is ever given more than it has (recomputed from the placements, not from
        /// the scheduler's own accounting), and every placement honours taints and selectors.
        #[test]
        fn nodes_are_never_overcommitted((nodes, pods) in cluster(), seed in any::<u64>()) {
            let (_, placed) = run(&nodes, &pods, seed);
            for (i, &(cpu, mem, max_pods, taint, zone)) in nodes.iter().enumerate() {
                let name = format!("n{i}");
                let here: Vec<&Arc<Pod>> = placed.iter()
                    .filter(|(_, n)| n.as_deref() == Some(name.as_str())).map(|(p, _)| p).collect();
                let cpu_used: i64 = here.iter().map(|p| requested(p, "cpu")).sum();
                let mem_used: i64 = here.iter().map(|p| requested(p, "memory")).sum();
                prop_assert!(cpu_used <= i64::from(cpu) * 1000);
                prop_assert!(mem_used <= i64::from(mem) << 30);
                prop_assert!(here.len() <= max_pods as usize);
                for p in &here {
                    prop_assert!(!taint || p.spec.tolerations.iter().any(|t| t.key == "dedicated"));
                    if let Some(z) = p.spec.node_selector.get("zone") {
                        prop_assert_eq!(z, &format!("z{zone}"));
                    }
                }
            }
        }

        /// The same seed gives the same placements; the cache's totals match the placements.
        #[test]
        fn same_seed_same_placements((nodes, pods) in cluster(), seed in any::<u64>()) {
            let (cache, a) = run(&nodes, &pods, seed);
            let (_, b) = run(&nodes, &pods, seed);
            let names = |v: &Placed| v.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
            prop_assert_eq!(names(&a), names(&b));
            let placed = a.iter().filter(|(_, n)| n.is_some()).count() as i64;
            let counted: i64 = cache.snapshot().nodes.values().map(|n| n.requested.pods).sum();
            prop_assert_eq!(placed, counted);
        }
    }

    #[test]
    fn ties_are_broken_by_the_seed_and_spread() {
        let mut c = Cache::default();
        for i in 0..4 {
            c.upsert_node(node(&format!("n{i}"), 4, 8, 110, false, 0));
        }
        let fw = Framework::with_defaults();
        let p = PodInfo::new(pod("p", 100, 10, false, None));
        let chosen: std::collections::BTreeSet<String> = (0..32)
            .map(|seed| {
                fw.schedule(&p, c.snapshot(), "", &mut xorshift(seed))
                    .0
                    .unwrap()
                    .node
            })
            .collect();
        assert!(
            chosen.len() > 1,
            "equal nodes are drawn at random: {chosen:?}"
        );
        let once = fw
            .schedule(&p, c.snapshot(), "", &mut xorshift(7))
            .0
            .unwrap();
        let again = fw
            .schedule(&p, c.snapshot(), "", &mut xorshift(7))
            .0
            .unwrap();
        assert_eq!(once, again);
    }
}

/// Properties of the plugins that look at other pods, over random clusters and pod streams:
/// required anti-affinity is never violated, every `DoNotSchedule` spread constraint holds
/// after each placement, and a seed still replays. Both checks recompute domains and counts
/// from the generated specs and the placements, not from the plugins' own bookkeeping.
#[cfg(test)]
mod topology_tests {
    use super::tests::{run_pods, Placed};
    use crate::api::{Node, Pod};
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOSTNAME: &str = "kubernetes.io/hostname";
    /// How many distinct `app` label values pods draw from.
    const APPS: u8 = 3;

    /// A node: its zone (`None`: no zone label), its max pods.
    type TopoNode = (Option<u8>, u32);
    /// A spread constraint: on zones (else hostnames), maxSkew, minDomains, the app it
    /// selects, DoNotSchedule (else ScheduleAnyway).
    type Spread = (bool, i64, Option<i64>, u8, bool);

    /// A pod of the stream.
    #[derive(Debug, Clone)]
    struct TopoPod {
        app: u8,
        /// Required anti-affinity: on zones (else hostnames), the apps it avoids (bit mask).
        anti: Option<(bool, u8)>,
        spread: Vec<Spread>,
        /// A `nodeSelector` on the zone.
        zone: Option<u8>,
        /// A preferred zone term: anti-affinity (else affinity), the app it names.
        prefer: Option<(bool, u8)>,
    }

    fn topo_cluster() -> impl Strategy<Value = (Vec<TopoNode>, Vec<TopoPod>)> {
        use proptest::option::weighted;
        let node = (weighted(0.85, 0u8..3), 1u32..8);
        let spread = (
            any::<bool>(),
            1i64..3,
            weighted(0.3, 1i64..5),
            0..APPS,
            proptest::bool::weighted(0.7),
        );
        let pod = (
            0..APPS,
            weighted(0.4, (any::<bool>(), 1u8..8)),
            proptest::collection::vec(spread, 0..3),
            weighted(0.2, 0u8..3),
            weighted(0.3, (any::<bool>(), 0..APPS)),
        )
            .prop_map(|(app, anti, spread, zone, prefer)| TopoPod {
                app,
                anti,
                spread,
                zone,
                prefer,
            });
        (
            proptest::collection::vec(node, 1..9),
            proptest::collection::vec(pod, 1..40),
        )
    }

    fn topo_node(i: usize, &(zone, max_pods): &TopoNode) -> Arc<Node> {
        let mut labels = json!({"kubernetes.io/hostname": format!("n{i}")});
        if let Some(z) = zone {
            labels[ZONE] = json!(format!("z{z}"));
        }
        let n = json!({"metadata": {"name": format!("n{i}"), "labels": labels},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": max_pods.to_string()}}});
        Arc::new(serde_json::from_value(n).unwrap())
    }

    fn app(a: u8) -> String {
        format!("a{a}")
    }

    fn key(zone: bool) -> &'static str {
        if zone {
            ZONE
        } else {
            HOSTNAME
        }
    }

    fn affinity(p: &TopoPod) -> Option<Value> {
        let mut affinity = json!({});
        if let Some((zone, mask)) = p.anti {
            let apps: Vec<String> = (0..APPS)
                .filter(|a| mask & (1 << a) != 0)
                .map(app)
                .collect();
            affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!([{
                "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": apps}]},
                "topologyKey": key(zone)}]);
        }
        if let Some((anti, a)) = p.prefer {
            let kind = if anti {
                "podAntiAffinity"
            } else {
                "podAffinity"
            };
            affinity[kind]["preferredDuringSchedulingIgnoredDuringExecution"] = json!([{
                "weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": app(a)}},
                "topologyKey": ZONE}}]);
        }
        (affinity != json!({})).then_some(affinity)
    }

    fn topo_pod(i: usize, p: &TopoPod) -> Arc<Pod> {
        let mut spec = json!({"containers": [{"name": "c",
            "resources": {"requests": {"cpu": "100m", "memory": "10Mi"}}}]});
        if let Some(a) = affinity(p) {
            spec["affinity"] = a;
        }
        let constraints: Vec<Value> = p
            .spread
            .iter()
            .map(|&(zone, max_skew, min_domains, a, hard)| {
                let when = if hard {
                    "DoNotSchedule"
                } else {
                    "ScheduleAnyway"
                };
                let mut c = json!({"maxSkew": max_skew, "topologyKey": key(zone),
                    "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": app(a)}}});
                if let Some(m) = min_domains {
                    c["minDomains"] = json!(m);
                }
                c
            })
            .collect();
        spec["topologySpreadConstraints"] = json!(constraints);
        if let Some(z) = p.zone {
            spec["nodeSelector"] = json!({ZONE: format!("z{z}")});
        }
        let pod = json!({"metadata": {"name": format!("p{i}"), "namespace": "d",
            "labels": {"app": app(p.app)}}, "spec": spec});
        Arc::new(serde_json::from_value(pod).unwrap())
    }

    fn run(nodes: &[TopoNode], pods: &[TopoPod], seed: u64) -> Placed {
        let n: Vec<Arc<Node>> = nodes
            .iter()
            .enumerate()
            .map(|(i, s)| topo_node(i, s))
            .collect();
        let p: Vec<Arc<Pod>> = pods
            .iter()
            .enumerate()
            .map(|(i, s)| topo_pod(i, s))
            .collect();
        run_pods(&n, &p, seed).1
    }

    fn index(node: &str) -> usize {
        node[1..].parse().unwrap()
    }

    /// A node's value for the zone (or hostname) key, from the specs.
    fn domain(nodes: &[TopoNode], i: usize, zone: bool) -> Option<String> {
        if zone {
            nodes[i].0.map(|z| format!("z{z}"))
        } else {
            Some(format!("n{i}"))
        }
    }

    /// No placed pod's required anti-affinity term selects a pod placed in its domain.
    fn anti_affinity_holds(nodes: &[TopoNode], pods: &[TopoPod], placed: &Placed) -> bool {
        for (i, a) in pods.iter().enumerate() {
            let (Some(at_a), Some((zone, mask))) = (&placed[i].1, a.anti) else {
                continue;
            };
            for (j, b) in pods.iter().enumerate() {
                let Some(at_b) = &placed[j].1 else { continue };
                if i == j || mask & (1 << b.app) == 0 {
                    continue;
                }
                let da = domain(nodes, index(at_a), zone);
                if da.is_some() && da == domain(nodes, index(at_b), zone) {
                    eprintln!(
                        "p{i} avoids apps {mask:03b}, p{j} has app {}: both in {da:?}",
                        b.app
                    );
                    return false;
                }
            }
        }
        true
    }

    /// The skew of one hard constraint of pod `k` right after it was placed on `at`:
    /// matching pods in its domain minus the global minimum over the eligible domains.
    fn skew_after(
        nodes: &[TopoNode],
        pods: &[TopoPod],
        placed: &Placed,
        k: usize,
        s: &Spread,
    ) -> i64 {
        let p = &pods[k];
        let (zone, _, min_domains, selected, _) = *s;
        let hard_keys_ok = |i: usize| {
            p.spread
                .iter()
                .all(|c| !c.4 || !c.0 || nodes[i].0.is_some())
        };
        let eligible = |i: usize| hard_keys_ok(i) && p.zone.is_none_or(|z| nodes[i].0 == Some(z));
        let mut counts: BTreeMap<String, i64> = (0..nodes.len())
            .filter(|&i| eligible(i))
            .map(|i| (domain(nodes, i, zone).unwrap(), 0))
            .collect();
        for (q, (_, at)) in pods[..=k].iter().zip(placed) {
            let Some(i) = at.as_deref().map(index) else {
                continue;
            };
            if eligible(i) && q.app == selected {
                *counts.get_mut(&domain(nodes, i, zone).unwrap()).unwrap() += 1;
            }
        }
        let few = (counts.len() as i64) < min_domains.unwrap_or(1);
        let min = if few {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        let at = index(placed[k].1.as_deref().unwrap());
        counts[&domain(nodes, at, zone).expect("placed on a node with the key")] - min
    }

    /// Every hard spread constraint of every placed pod held right after its placement.
    fn spread_holds(nodes: &[TopoNode], pods: &[TopoPod], placed: &Placed) -> bool {
        for (k, p) in pods.iter().enumerate() {
            if placed[k].1.is_none() {
                continue;
            }
            for s in p.spread.iter().filter(|s| s.4) {
                let skew = skew_after(nodes, pods, placed, k, s);
                if skew > s.1 {
                    eprintln!(
                        "p{k} on {:?}: skew {skew} > maxSkew {} for {s:?}",
                        placed[k].1, s.1
                    );
                    return false;
                }
            }
        }
        true
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No two placed pods that anti-affine each other share a domain, whichever of the
        /// two came first (the incoming pod's terms, and existing pods' terms by symmetry).
        #[test]
        fn required_anti_affinity_is_never_violated((nodes, pods) in topo_cluster(), seed in any::<u64>()) {
            let placed = run(&nodes, &pods, seed);
            prop_assert!(anti_affinity_holds(&nodes, &pods, &placed));
        }

        /// After each placement, each of the pod's DoNotSchedule constraints has skew ≤ maxSkew
        /// in the pod's domain (domains: nodes with the keys that pass its nodeSelector;
        /// global minimum 0 below minDomains).
        #[test]
        fn hard_spread_constraints_hold_after_each_placement((nodes, pods) in topo_cluster(), seed in any::<u64>()) {
            let placed = run(&nodes, &pods, seed);
            prop_assert!(spread_holds(&nodes, &pods, &placed));
        }

        /// Spread and affinity scoring keep placements a function of the seed.
        #[test]
        fn same_seed_same_placements_with_constraints((nodes, pods) in topo_cluster(), seed in any::<u64>()) {
            let a: Vec<Option<String>> = run(&nodes, &pods, seed).into_iter().map(|(_, n)| n).collect();
            let b: Vec<Option<String>> = run(&nodes, &pods, seed).into_iter().map(|(_, n)| n).collect();
            prop_assert_eq!(a, b);
        }
    }
}
