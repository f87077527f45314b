//! PostFilter: preemption of lower-priority pods (upstream's DefaultPreemption), as a pure
//! function of the snapshot. When no node fits a pod, it looks for a node where evicting
//! pods of lower priority would make room, chooses the fewest and least important victims,
//! and says which node the pod is nominated to. The driver carries it out (marks and deletes
//! the victims, records the nomination); the pod is placed by a later cycle once the victims
//! are gone.
//!
//! As upstream: only nodes whose filters failed for reasons eviction can fix are tried, a
//! bounded number of them from a random offset; victims are all lower-priority pods of the
//! node, minus those that can stay (reprieved, most important first); among candidate nodes
//! the one with the lowest highest-victim priority wins, then the lowest priority sum, then
//! the fewest victims, then the latest-started victims. A pod whose victims are still
//! terminating on its nominated node waits instead of preempting again. No cross-node
//! preemption (a victim elsewhere would not help upstream either); no PodDisruptionBudgets
//! (rkube serves none).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::framework::{FitError, Framework};
use super::snapshot::{PodInfo, Snapshot};
use crate::api::scheduling::PREEMPT_NEVER;
use crate::api::time::parse_rfc3339;
use crate::api::Pod;

/// Upstream `minCandidateNodesPercentage` and `minCandidateNodesAbsolute`: how many nodes with
/// a possible preemption are evaluated before choosing among them.
pub const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
pub const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;
/// The pod condition a preempted pod is marked with before its deletion, and its reason.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
pub const PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";

/// The status reason of a node where eviction would not help, and of one without
/// lower-priority pods (upstream's texts).
const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A pod's priority (`spec.priority`, set by the API server's Priority admission; 0 if
/// absent).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.priority.unwrap_or(0)
}

/// What preemption decided: evict `victims` from `node` and nominate the pod there.
#[derive(Debug, Clone)]
pub struct Preemption {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Why no preemption happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoPreemption {
    /// Upstream's PostFilter message, appended to the `FailedScheduling` text.
    pub message: String,
    /// Whether the pod's nomination is void (no node would do); an ineligible pod keeps it.
    pub clear_nomination: bool,
}

/// Tries to make room for `pod`, which `fit` says fits nowhere in `snap`; `random` draws the
/// offset of the candidate search.
pub fn preempt(
    fw: &Framework,
    pod: &PodInfo,
    snap: &Snapshot,
    fit: &FitError,
    random: &mut dyn FnMut() -> u64,
) -> Result<Preemption, NoPreemption> {
    eligible(&pod.pod, snap).map_err(|message| NoPreemption {
        message,
        clear_nomination: false,
    })?;
    let potential = &fit.resolvable_nodes;
    let not_helpful = fit.nodes - potential.len();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    if not_helpful > 0 {
        failures.insert(NOT_HELPFUL.to_string(), not_helpful);
    }
    let mut candidates = Vec::new();
    if !potential.is_empty() {
        let wanted = (potential.len() * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
            .max(MIN_CANDIDATE_NODES_ABSOLUTE)
            .min(potential.len());
        let offset = (random() % potential.len() as u64) as usize;
        let ring = potential.iter().cycle().skip(offset).take(potential.len());
        // The snapshot is copied only if some node holds a pod that could be evicted.
        let mut work: Option<Snapshot> = None;
        for name in ring {
            if candidates.len() >= wanted {
                break;
            }
            let lower = lower_priority_pods(snap, name, priority(&pod.pod));
            if lower.is_empty() {
                *failures.entry(NO_VICTIMS.to_string()).or_default() += 1;
                continue;
            }
            let work = work.get_or_insert_with(|| snap.clone());
            match select_victims(fw, pod, work, name, lower) {
                Ok(victims) => candidates.push(Preemption {
                    node: name.clone(),
                    victims,
                }),
                Err(reasons) => {
                    for r in reasons {
                        *failures.entry(r).or_default() += 1;
                    }
                }
            }
        }
    }
    if candidates.is_empty() {
        // Upstream words it as a fit error of its own, over the nodes it looked at.
        let why = FitError {
            nodes: fit.nodes,
            reasons: failures,
            resolvable_nodes: Vec::new(),
            post_filter: String::new(),
        };
        return Err(NoPreemption {
            message: format!("preemption: {why}"),
            clear_nomination: true,
        });
    }
    Ok(pick_one(candidates))
}

/// Upstream `PodEligibleToPreemptOthers`.
fn eligible(pod: &Pod, snap: &Snapshot) -> Result<(), String> {
    if pod.spec.preemption_policy == PREEMPT_NEVER {
        return Err("preemption: not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = snap.nodes.get(&pod.status.nominated_node_name);
    let waiting = nominated.is_some_and(|n| {
        n.pods
            .values()
            .any(|p| priority(&p.pod) < priority(pod) && terminating_by_preemption(&p.pod))
    });
    if waiting {
        return Err(
            "preemption: not eligible due to a terminating pod on the nominated node.".into(),
        );
    }
    Ok(())
}

/// Whether `pod` is on its way out because a scheduler preempted it.
pub fn terminating_by_preemption(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod.status.conditions.iter().any(|c| {
            c.type_ == DISRUPTION_TARGET && c.is_true() && c.reason == PREEMPTION_BY_SCHEDULER
        })
}

/// The pods on node `name` with a priority below `below`, most important first (higher
/// priority, then the earlier started: upstream `MoreImportantPod`).
fn lower_priority_pods(snap: &Snapshot, name: &str, below: i32) -> Vec<Arc<PodInfo>> {
    let Some(node) = snap.nodes.get(name) else {
        return Vec::new();
    };
    let mut pods: Vec<Arc<PodInfo>> = node
        .pods
        .values()
        .filter(|p| priority(&p.pod) < below)
        .cloned()
        .collect();
    pods.sort_by_key(|p| (Reverse(priority(&p.pod)), start_ms(&p.pod), p.key.clone()));
    pods
}

/// When the pod started (its status' start time, else its creation); unknown sorts last.
fn start_ms(pod: &Pod) -> i64 {
    let started = pod.status.start_time.as_deref();
    let created = pod.metadata.creation_timestamp.as_deref();
    started
        .or(created)
        .and_then(parse_rfc3339)
        .unwrap_or(i64::MAX)
}

/// Upstream `SelectVictimsOnNode` on `work` (a copy of the snapshot, left as it was found):
/// evict every pod of `lower`; if the pod then fits, put back as many as can stay, most
/// important first. `Err` carries the filter's reasons when even that is not enough.
fn select_victims(
    fw: &Framework,
    pod: &PodInfo,
    work: &mut Snapshot,
    name: &str,
    lower: Vec<Arc<PodInfo>>,
) -> Result<Vec<Arc<PodInfo>>, Vec<String>> {
    for p in &lower {
        set_present(work, name, p, false);
    }
    if let Err(r) = fits(fw, pod, work, name) {
        for p in &lower {
            set_present(work, name, p, true);
        }
        return Err(r);
    }
    let mut victims = Vec::new();
    for p in lower {
        set_present(work, name, &p, true);
        if fits(fw, pod, work, name).is_err() {
            set_present(work, name, &p, false);
            victims.push(p);
        }
    }
    for p in &victims {
        set_present(work, name, p, true);
    }
    Ok(victims)
}

fn fits(fw: &Framework, pod: &PodInfo, snap: &Snapshot, name: &str) -> Result<(), Vec<String>> {
    let node = snap
        .nodes
        .get(name)
        .expect("a candidate node is in the snapshot");
    fw.fits(pod, snap, node).map_err(|r| r.reasons)
}

/// Adds `p` to node `name` of `snap` or takes it off, keeping the affinity indexes.
fn set_present(snap: &mut Snapshot, name: &str, p: &Arc<PodInfo>, present: bool) {
    let node = snap.nodes.get_mut(name).expect("a candidate node exists");
    if present {
        node.add_pod(p.clone());
    } else {
        node.remove_pod(&p.key)
            .expect("a victim is on its node until put back");
    }
    snap.reindex(name);
}

/// Upstream `pickOneNodeForPreemption` (without its PodDisruptionBudget criterion).
fn pick_one(mut candidates: Vec<Preemption>) -> Preemption {
    assert!(!candidates.is_empty(), "a choice among no candidates");
    if let Some(i) = candidates.iter().position(|c| c.victims.is_empty()) {
        return candidates.swap_remove(i);
    }
    let best = candidates
        .iter()
        .enumerate()
        .min_by_key(|(i, c)| {
            let priorities = c.victims.iter().map(|v| priority(&v.pod));
            let highest = priorities.clone().max().expect("victims");
            // Offset so that negative priorities still add up to more than fewer pods.
            let sum: i64 = priorities
                .map(|p| i64::from(p) + i64::from(i32::MAX) + 1)
                .sum();
            let earliest_of_highest = c
                .victims
                .iter()
                .filter(|v| priority(&v.pod) == highest)
                .map(|v| start_ms(&v.pod))
                .min()
                .expect("victims");
            (
                highest,
                sum,
                c.victims.len(),
                Reverse(earliest_of_highest),
                *i,
            )
        })
        .map(|(i, _)| i)
        .expect("candidates");
    candidates.swap_remove(best)
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::Cache;
    use super::super::testing::{self, xorshift};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn node(name: &str, cpu: u32, taint: bool) -> Arc<crate::api::Node> {
        testing::node(name, cpu, 64, 110, taint, 0)
    }

    fn pod(name: &str, milli_cpu: u32, prio: i32, node: &str, started_s: u32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "d",
                    "creationTimestamp": format!("2026-01-01T00:00:{:02}Z", started_s % 60)},
                "spec": {"nodeName": node, "priority": prio, "containers": [{"name": "c",
                    "resources": {"requests": {"cpu": format!("{milli_cpu}m")}}}]}}))
            .unwrap(),
        )
    }

    /// Schedules `p` in `c`; it must not fit; then preempts for it.
    fn preempt_for(c: &Cache, p: Arc<Pod>) -> Result<Preemption, String> {
        let fw = Framework::with_defaults();
        let info = PodInfo::new(p);
        let (r, _) = fw.schedule(&info, c.snapshot(), "", &mut xorshift(1));
        let fit = r.expect_err("the pod fits nowhere before preemption");
        preempt(&fw, &info, c.snapshot(), &fit, &mut xorshift(7)).map_err(|e| e.message)
    }

    fn names(p: &Preemption) -> Vec<&str> {
        p.victims
            .iter()
            .map(|v| v.pod.metadata.name.as_str())
            .collect()
    }

    #[test]
    fn evicts_the_fewest_least_important_pods() {
        let mut c = Cache::default();
        c.upsert_node(node("a", 2, false));
        c.upsert_node(node("b", 2, false));
        // a: two low pods of 1 CPU; b: one low pod of 1 CPU and one mid pod of 1 CPU.
        c.upsert_pod(pod("a1", 1000, 1, "a", 1));
        c.upsert_pod(pod("a2", 1000, 1, "a", 2));
        c.upsert_pod(pod("b1", 1000, 1, "b", 3));
        c.upsert_pod(pod("b2", 1000, 5, "b", 4));
        let before = format!("{:?}", c.snapshot().nodes["a"].requested);
        // Needs 1 CPU: one low pod suffices on either node; b's highest victim would be the
        // same (1), so fewer victims ties, and then the later-started victim wins (b1).
        let p = preempt_for(&c, pod("p", 1000, 10, "", 0)).unwrap();
        assert_eq!((p.node.as_str(), names(&p)), ("b", vec!["b1"]));
        // Needs 2 CPU: node a evicts two priority-1 pods; node b would evict a priority-5 one.
        let p = preempt_for(&c, pod("q", 2000, 10, "", 0)).unwrap();
        assert_eq!((p.node.as_str(), names(&p)), ("a", vec!["a1", "a2"]));
        // The snapshot is untouched.
        assert_eq!(format!("{:?}", c.snapshot().nodes["a"].requested), before);
        // A pod of priority 5 may evict only the priority-1 pods.
        let p = preempt_for(&c, pod("r", 2000, 5, "", 0)).unwrap();
        assert_eq!(names(&p), ["a1", "a2"]);
    }

    #[test]
    fn messages_say_why_preemption_cannot_help() {
        let mut c = Cache::default();
        c.upsert_node(node("a", 1, false));
        c.upsert_node(node("b", 1, false));
        c.upsert_node(node("t", 8, true));
        c.upsert_pod(pod("a1", 1000, 3, "a", 1));
        c.upsert_pod(pod("b1", 500, 1, "b", 1));
        c.upsert_pod(pod("b2", 500, 3, "b", 2));
        // Equal priority: nothing to evict on a; b's lower pod is not enough room; the
        // tainted node is not helped by eviction.
        let err = preempt_for(&c, pod("p", 1000, 3, "", 0)).unwrap_err();
        assert_eq!(
            err,
            "preemption: 0/3 nodes are available: 1 Insufficient cpu, \
             1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling."
        );
        let mut never = (*pod("n", 1000, 100, "", 0)).clone();
        never.spec.preemption_policy = PREEMPT_NEVER.into();
        let err = preempt_for(&c, Arc::new(never)).unwrap_err();
        assert_eq!(
            err,
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }

    #[test]
    fn a_pod_waits_for_its_victims_to_terminate() {
        let mut c = Cache::default();
        c.upsert_node(node("a", 1, false));
        let mut victim = (*pod("v", 1000, 0, "a", 1)).clone();
        victim.metadata.deletion_timestamp = Some("2026-01-01T00:01:00Z".into());
        victim.status.conditions = vec![serde_json::from_value(json!({"type": DISRUPTION_TARGET,
            "status": "True", "reason": PREEMPTION_BY_SCHEDULER}))
        .unwrap()];
        c.upsert_pod(Arc::new(victim));
        let mut p = (*pod("p", 1000, 10, "", 0)).clone();
        assert!(
            preempt_for(&c, Arc::new(p.clone())).is_ok(),
            "not nominated yet"
        );
        p.status.nominated_node_name = "a".into();
        let err = preempt_for(&c, Arc::new(p)).unwrap_err();
        assert_eq!(
            err,
            "preemption: not eligible due to a terminating pod on the nominated node."
        );
    }

    #[test]
    fn nominated_pods_hold_their_room_against_pods_of_no_higher_priority() {
        let mut c = Cache::default();
        c.upsert_node(node("a", 2, false));
        c.upsert_node(node("b", 1, false));
        c.upsert_pod(pod("b1", 1000, 0, "b", 1));
        let nominee = Arc::new(PodInfo::new(pod("n", 1500, 5, "", 0)));
        c.nominate(nominee.clone(), "a");
        let fw = Framework::with_defaults();
        let place = |c: &Cache, name: &str, prio: i32| {
            let info = PodInfo::new(pod(name, 1000, prio, "", 0));
            fw.schedule(&info, c.snapshot(), "", &mut xorshift(1)).0
        };
        // Equal or lower priority: a's room is held (only 500m left), b is full.
        assert_eq!(
            place(&c, "low", 5).unwrap_err().to_string(),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
        // Higher priority goes first.
        assert_eq!(place(&c, "high", 6).unwrap().node, "a");
        // Once the nominee is placed (or gone), its nomination no longer counts.
        c.assume(nominee, "b");
        assert!(c.snapshot().nominated.is_empty());
        assert_eq!(place(&c, "low", 5).unwrap().node, "a");
    }

    #[derive(Debug, Clone)]
    struct Placed {
        milli_cpu: u32,
        prio: i32,
        node: usize,
    }

    fn cluster() -> impl Strategy<Value = (Vec<u32>, Vec<Placed>, u32, i32)> {
        (1usize..6).prop_flat_map(|nodes| {
            let placed =
                (100u32..2000, -2i32..4, 0..nodes).prop_map(|(milli_cpu, prio, node)| Placed {
                    milli_cpu,
                    prio,
                    node,
                });
            (
                prop::collection::vec(1u32..4, nodes),
                prop::collection::vec(placed, 0..20),
                100u32..4000,
                -1i32..5,
            )
        })
    }

    proptest! {
        /// Whatever the cluster: victims are of lower priority and on the chosen node; with
        /// them gone the pod fits there; with any one of them kept it does not (the set is
        /// minimal for that node); and no preemption is reported where evicting every
        /// lower-priority pod of some node would have made room.
        #[test]
        fn victims_are_lower_priority_sufficient_and_minimal(
            (cpus, placed, want, prio) in cluster(),
        ) {
            let mut c = Cache::default();
            for (i, cpu) in cpus.iter().enumerate() {
                c.upsert_node(node(&format!("n{i}"), *cpu, false));
            }
            for (i, p) in placed.iter().enumerate() {
                let fits = {
                    let n = &c.snapshot().nodes[&format!("n{}", p.node)];
                    n.requested.milli_cpu + i64::from(p.milli_cpu) <= n.allocatable.milli_cpu
                };
                if fits {
                    c.upsert_pod(pod(&format!("p{i}"), p.milli_cpu, p.prio, &format!("n{}", p.node), i as u32));
                }
            }
            let fw = Framework::with_defaults();
            let info = PodInfo::new(pod("x", want, prio, "", 0));
            let (r, _) = fw.schedule(&info, c.snapshot(), "", &mut xorshift(1));
            let Err(fit) = r else { return Ok(()) };
            let free_if_all_evicted = |n: &crate::scheduler::snapshot::NodeInfo| {
                let kept: i64 = n.pods.values().filter(|p| priority(&p.pod) >= prio)
                    .map(|p| p.requests.milli_cpu).sum();
                n.allocatable.milli_cpu - kept >= i64::from(want)
            };
            let possible = c.snapshot().schedulable_nodes().any(free_if_all_evicted);
            match preempt(&fw, &info, c.snapshot(), &fit, &mut xorshift(3)) {
                Err(no) => prop_assert!(!possible, "no preemption, yet one was possible: {}", no.message),
                Ok(p) => {
                    let mut snap = c.snapshot().clone();
                    for v in &p.victims {
                        prop_assert!(priority(&v.pod) < prio);
                        prop_assert_eq!(&v.pod.spec.node_name, &p.node);
                        set_present(&mut snap, &p.node, v, false);
                    }
                    prop_assert!(fits(&fw, &info, &snap, &p.node).is_ok(), "room made");
                    for v in &p.victims {
                        set_present(&mut snap, &p.node, v, true);
                        prop_assert!(fits(&fw, &info, &snap, &p.node).is_err(), "{} need not go", v.key);
                        set_present(&mut snap, &p.node, v, false);
                    }
                }
            }
        }
    }
}
