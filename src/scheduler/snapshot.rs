//! What the scheduler knows about the cluster: nodes with what is placed on them, and the
//! pods it has assumed onto nodes but not yet seen bound. One scheduling cycle reads a
//! [`Snapshot`]; the [`Cache`] keeps it up to date from the informers and from the
//! scheduler's own decisions.
//!
//! An assumed pod counts on its node from the moment it is chosen, so the next cycle does not
//! place a second pod into the same room before the binding comes back through the watch.
//! If the binding never shows up, the assumption expires and the room is freed.
//!
//! As upstream, the snapshot also indexes the nodes that hold pods with pod (anti-)affinity,
//! so InterPodAffinity only visits those for a pod that has no terms of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::affinity::PodAffinityTerms;
use super::plugins::NodeSelection;
use super::preemption::priority;
use crate::api::core::{PodSpec, ResourceRequirements};
use crate::api::quantity;
use crate::api::{Node, Pod};
use crate::client::informer::key_of;

/// How long an assumed pod holds its room without its binding being observed
/// (upstream's scheduler cache TTL is 15 minutes with durable binding; we bind synchronously,
/// so the watch confirms within seconds or the API server refused).
pub const ASSUMED_POD_TTL_MS: i64 = 30_000;
/// Upstream's defaults for scoring a pod that requests nothing (`DefaultMilliCPURequest`,
/// `DefaultMemoryRequest`): so that many request-less pods still spread.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST_BYTES: i64 = 200 * 1024 * 1024;

/// Amounts the scheduler compares: CPU in millicores, memory in bytes, and pod count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
}

impl Resources {
    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.pods += o.pods;
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.pods -= o.pods;
        assert!(
            self.milli_cpu >= 0 && self.memory >= 0 && self.pods >= 0,
            "removed more than was added: {self:?}"
        );
    }
}

/// CPU (millicores) and memory (bytes) of a resource list; unparsable quantities count as
/// zero (the API server validates them on the way in).
fn amounts(list: &BTreeMap<String, String>) -> (i64, i64) {
    let q = |name: &str| list.get(name).and_then(|s| quantity::parse(s).ok());
    let cpu = q("cpu").map_or(0, |q| q.milli_value().max(0));
    let memory = q("memory").map_or(0, |q| q.value().max(0));
    (cpu, memory)
}

/// What a pod requests (upstream `computePodResourceRequest`): the larger of the sum over its
/// containers and the largest init container, per resource; one pod slot. With
/// `non_zero`, containers that request nothing count upstream's scoring defaults.
pub fn pod_requests(spec: &PodSpec, non_zero: bool) -> Resources {
    let container = |r: &ResourceRequirements| {
        let (mut cpu, mut mem) = amounts(&r.requests);
        if non_zero {
            if !r.requests.contains_key("cpu") {
                cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !r.requests.contains_key("memory") {
                mem = DEFAULT_MEMORY_REQUEST_BYTES;
            }
        }
        (cpu, mem)
    };
    let (mut cpu, mut mem) = (0, 0);
    for c in &spec.containers {
        let (c_cpu, c_mem) = container(&c.resources);
        cpu += c_cpu;
        mem += c_mem;
    }
    for c in &spec.init_containers {
        let (c_cpu, c_mem) = container(&c.resources);
        cpu = cpu.max(c_cpu);
        mem = mem.max(c_mem);
    }
    Resources {
        milli_cpu: cpu,
        memory: mem,
        pods: 1,
    }
}

/// A pod with what the scheduler derives from it once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    pub pod: Arc<Pod>,
    pub requests: Resources,
    /// Requests with the scoring defaults for containers that request nothing.
    pub non_zero: Resources,
    /// Its pod affinity and anti-affinity terms, parsed once; `None` when the pod has
    /// neither (upstream `podWithAffinity`).
    pub affinity: Option<Arc<PodAffinityTerms>>,
    /// Its `nodeSelector` and node affinity, parsed once.
    pub node_selection: NodeSelection,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        PodInfo {
            key: key_of(&*pod),
            requests: pod_requests(&pod.spec, false),
            non_zero: pod_requests(&pod.spec, true),
            affinity: PodAffinityTerms::of(&pod).map(Arc::new),
            node_selection: NodeSelection::of(&pod),
            pod,
        }
    }
}

/// A node and the pods placed on it (bound or assumed).
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// `None` while pods name a node the cache has not seen (or no longer has).
    pub node: Option<Arc<Node>>,
    pub allocatable: Resources,
    pub requested: Resources,
    pub non_zero_requested: Resources,
    pub pods: BTreeMap<String, Arc<PodInfo>>,
    /// How many of `pods` have pod (anti-)affinity terms, and how many required
    /// anti-affinity (upstream `PodsWithAffinity`, `PodsWithRequiredAntiAffinity`).
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut info = NodeInfo::default();
        info.set_node(node);
        info
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let (cpu, memory) = amounts(&node.status.allocatable);
        let pods = node
            .status
            .allocatable
            .get("pods")
            .and_then(|p| quantity::parse(p).ok())
            .map_or(0, |q| q.value().max(0));
        self.allocatable = Resources {
            milli_cpu: cpu,
            memory,
            pods,
        };
        self.node = Some(node);
    }

    pub fn name(&self) -> &str {
        self.node.as_ref().map_or("", |n| n.metadata.name.as_str())
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero);
        let (any, anti) = affinity_flags(&pod);
        self.pods_with_affinity += usize::from(any);
        self.pods_with_required_anti_affinity += usize::from(anti);
        let previous = self.pods.insert(pod.key.clone(), pod);
        assert!(previous.is_none(), "a pod added twice to one node");
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let pod = self.pods.remove(key)?;
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero);
        let (any, anti) = affinity_flags(&pod);
        self.pods_with_affinity -= usize::from(any);
        self.pods_with_required_anti_affinity -= usize::from(anti);
        Some(pod)
    }
}

/// Whether a pod has pod (anti-)affinity terms at all, and required anti-affinity ones.
fn affinity_flags(pod: &PodInfo) -> (bool, bool) {
    match &pod.affinity {
        None => (false, false),
        Some(terms) => (true, !terms.required_anti_affinity.is_empty()),
    }
}

/// The cluster as one scheduling cycle sees it: every known node by name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Nodes holding pods with pod (anti-)affinity terms, and with required anti-affinity
    /// (upstream `havePodsWithAffinityNodeInfoList` and
    /// `havePodsWithRequiredAntiAffinityNodeInfoList`); kept by [`Snapshot::reindex`], which
    /// whoever adds or removes pods on `nodes` calls (the [`Cache`] does).
    pub have_pods_with_affinity: BTreeSet<String>,
    pub have_pods_with_required_anti_affinity: BTreeSet<String>,
    /// Pending pods nominated to a node by preemption (`status.nominatedNodeName`), by node
    /// then pod key: they hold their room there against pods of no higher priority.
    pub nominated: BTreeMap<String, BTreeMap<String, Arc<PodInfo>>>,
}

impl Snapshot {
    /// Brings the affinity indexes up to date for node `name` after its pods changed.
    pub fn reindex(&mut self, name: &str) {
        let (any, anti) = self.nodes.get(name).map_or((false, false), |n| {
            (
                n.pods_with_affinity > 0,
                n.pods_with_required_anti_affinity > 0,
            )
        });
        for (set, on) in [
            (&mut self.have_pods_with_affinity, any),
            (&mut self.have_pods_with_required_anti_affinity, anti),
        ] {
            if on && !set.contains(name) {
                set.insert(name.to_string());
            } else if !on {
                set.remove(name);
            }
        }
    }

    /// The pods nominated to node `name` that `pod` must leave room for: those of at least
    /// its priority, other than itself, not yet placed anywhere (upstream
    /// `addGENominatedPods`).
    pub fn nominated_ahead_of<'a>(
        &'a self,
        name: &str,
        pod: &'a PodInfo,
    ) -> impl Iterator<Item = &'a Arc<PodInfo>> {
        let at_least = priority(&pod.pod);
        self.nominated
            .get(name)
            .into_iter()
            .flat_map(|pods| pods.values())
            .filter(move |p| p.key != pod.key && priority(&p.pod) >= at_least)
    }

    /// Nodes that exist (not placeholders for pods on unknown nodes), in name order.
    pub fn schedulable_nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values().filter(|n| n.node.is_some())
    }
}

/// Where a pod the cache knows sits, and how sure the cache is of it.
#[derive(Debug, Clone)]
struct Placed {
    node: String,
    state: PlacedState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlacedState {
    /// Seen bound there through the informer.
    Observed,
    /// Chosen by this scheduler; its binding is on its way (it never expires meanwhile:
    /// the binding may still succeed).
    Binding,
    /// Bound by this scheduler, not yet seen bound; forgotten at `expires_ms`.
    Bound { expires_ms: i64 },
}

/// The scheduler's view, kept current from informer events and its own assumptions.
#[derive(Debug, Default)]
pub struct Cache {
    snapshot: Snapshot,
    pods: BTreeMap<String, Placed>,
    /// The node each nominated pod is nominated to (the index of `snapshot.nominated`).
    nominations: BTreeMap<String, String>,
}

impl Cache {
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone();
        self.snapshot.nodes.entry(name).or_default().set_node(node);
    }

    /// A deleted node: its pods keep a placeholder entry until they go too.
    pub fn remove_node(&mut self, name: &str) {
        let Some(info) = self.snapshot.nodes.get_mut(name) else {
            return;
        };
        if info.pods.is_empty() {
            self.snapshot.nodes.remove(name);
        } else {
            info.node = None;
            info.allocatable = Resources::default();
        }
    }

    /// A pod observed bound to a node (confirms an assumption, or moves it if the pod was
    /// bound elsewhere meanwhile). Unbound and finished pods are not placed. A status-only
    /// change of an observed pod (the kubelet's) keeps what was derived from it.
    pub fn upsert_pod(&mut self, pod: Arc<Pod>) {
        let key = key_of(&*pod);
        self.unnominate(&key);
        let finished = pod.is_finished();
        if !finished && self.unchanged_for_scheduling(&key, &pod) {
            return;
        }
        self.remove_pod(&key);
        if pod.spec.node_name.is_empty() || finished {
            return;
        }
        let node = pod.spec.node_name.clone();
        self.place(Arc::new(PodInfo::new(pod)), node, PlacedState::Observed);
    }

    /// Whether `pod` is already placed, observed, on its node with the same spec, labels and
    /// namespace (all that placement decisions read).
    fn unchanged_for_scheduling(&self, key: &str, pod: &Pod) -> bool {
        let Some(placed) = self.pods.get(key) else {
            return false;
        };
        let held = &self.snapshot.nodes[&placed.node].pods[key].pod;
        placed.state == PlacedState::Observed
            && placed.node == pod.spec.node_name
            && held.spec == pod.spec
            && held.metadata.labels == pod.metadata.labels
            && held.metadata.deletion_timestamp == pod.metadata.deletion_timestamp
    }

    pub fn remove_pod(&mut self, key: &str) {
        self.unnominate(key);
        if let Some(placed) = self.pods.remove(key) {
            let info = self.snapshot.nodes.get_mut(&placed.node);
            let info = info.expect("a placed pod's node entry exists");
            info.remove_pod(key).expect("a placed pod is on its node");
            if info.node.is_none() && info.pods.is_empty() {
                self.snapshot.nodes.remove(&placed.node);
            }
            self.snapshot.reindex(&placed.node);
        }
    }

    /// Records that pending `pod` is nominated to `node` (an empty name: to none).
    pub fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.unnominate(&pod.key);
        if node.is_empty() {
            return;
        }
        let key = pod.key.clone();
        let on_node = self.snapshot.nominated.entry(node.to_string()).or_default();
        on_node.insert(key.clone(), pod);
        self.nominations.insert(key, node.to_string());
    }

    /// Drops `key`'s nomination, if any (it was placed, changed or deleted).
    pub fn unnominate(&mut self, key: &str) {
        let Some(node) = self.nominations.remove(key) else {
            return;
        };
        let on_node = self.snapshot.nominated.get_mut(&node);
        let on_node = on_node.expect("a nomination's node entry exists");
        on_node
            .remove(key)
            .expect("a nominated pod is listed on its node");
        if on_node.is_empty() {
            self.snapshot.nominated.remove(&node);
        }
    }

    /// Counts `pod` on `node` from now on, while its binding is on its way.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.unnominate(&pod.key);
        self.remove_pod(&pod.key);
        self.place(pod, node.to_string(), PlacedState::Binding);
    }

    /// The binding of an assumed pod succeeded: it stays counted until seen bound, or until
    /// [`ASSUMED_POD_TTL_MS`] after `now_ms` (upstream `FinishBinding`).
    pub fn finish_binding(&mut self, key: &str, now_ms: i64) {
        if let Some(p) = self.pods.get_mut(key) {
            if p.state == PlacedState::Binding {
                p.state = PlacedState::Bound {
                    expires_ms: now_ms + ASSUMED_POD_TTL_MS,
                };
            }
        }
    }

    /// Drops an assumption whose binding failed.
    pub fn forget(&mut self, key: &str) {
        if self.is_assumed(key) {
            self.remove_pod(key);
        }
    }

    /// Drops bound assumptions never observed by `now_ms`; returns their keys.
    pub fn expire(&mut self, now_ms: i64) -> Vec<String> {
        let expired: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| matches!(p.state, PlacedState::Bound { expires_ms } if expires_ms <= now_ms))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.remove_pod(k);
        }
        expired
    }

    /// Whether `key` is counted on a node only on this scheduler's word.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods
            .get(key)
            .is_some_and(|p| p.state != PlacedState::Observed)
    }

    fn place(&mut self, pod: Arc<PodInfo>, node: String, state: PlacedState) {
        let key = pod.key.clone();
        self.snapshot
            .nodes
            .entry(node.clone())
            .or_default()
            .add_pod(pod);
        self.snapshot.reindex(&node);
        let placed = Placed { node, state };
        assert!(self.pods.insert(key, placed).is_none(), "placed twice");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn node(name: &str, cpu: &str, mem: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}}}))
            .unwrap(),
        )
    }

    pub fn pod(name: &str, cpu: &str, node: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d"},
                "spec": {"nodeName": node, "containers": [{"name": "c",
                    "resources": {"requests": {"cpu": cpu}}}]}}))
            .unwrap(),
        )
    }

    #[test]
    fn requests_take_the_larger_of_containers_and_init_containers() {
        let p: Pod = serde_json::from_value(json!({"spec": {
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}},
                           {"name": "b", "resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "500m"}}}]}}))
        .unwrap();
        let r = pod_requests(&p.spec, false);
        assert_eq!((r.milli_cpu, r.memory, r.pods), (500, 1 << 20, 1));
        let nz = pod_requests(&p.spec, true);
        assert_eq!(nz.memory, (1 << 20) + DEFAULT_MEMORY_REQUEST_BYTES);
    }

    #[test]
    fn assumed_pods_count_until_confirmed_or_expired() {
        let mut c = Cache::default();
        c.upsert_node(node("n1", "2", "4Gi"));
        let p = Arc::new(PodInfo::new(pod("a", "500m", "")));
        c.assume(p.clone(), "n1");
        assert_eq!(c.snapshot().nodes["n1"].requested.milli_cpu, 500);
        assert!(c.is_assumed("d/a"));
        // Seen bound: no longer assumed, still counted once.
        c.upsert_pod(pod("a", "500m", "n1"));
        assert!(!c.is_assumed("d/a"));
        assert_eq!(c.snapshot().nodes["n1"].requested.milli_cpu, 500);
        assert!(c.expire(i64::MAX).is_empty());
        // A binding still on its way never expires: it may yet succeed.
        c.assume(Arc::new(PodInfo::new(pod("b", "1", ""))), "n1");
        assert!(c.expire(i64::MAX).is_empty());
        assert_eq!(c.snapshot().nodes["n1"].requested.milli_cpu, 1500);
        // Bound but never seen: expires one TTL after the binding finished.
        c.finish_binding("d/b", 2_000);
        assert!(c.expire(2_000 + ASSUMED_POD_TTL_MS - 1).is_empty());
        assert_eq!(c.expire(2_000 + ASSUMED_POD_TTL_MS), ["d/b"]);
        assert_eq!(c.snapshot().nodes["n1"].requested.milli_cpu, 500);
        // A failed binding is forgotten at once; an observed pod is not.
        c.assume(Arc::new(PodInfo::new(pod("c", "1", ""))), "n1");
        c.forget("d/c");
        c.forget("d/a");
        assert_eq!(c.snapshot().nodes["n1"].requested.milli_cpu, 500);
        // A status-only update of an observed pod keeps it; a finished pod frees its room.
        let mut running = (*pod("a", "500m", "n1")).clone();
        running.status.phase = "Running".into();
        c.upsert_pod(Arc::new(running.clone()));
        assert_eq!(c.snapshot().nodes["n1"].requested.milli_cpu, 500);
        running.status.phase = "Succeeded".into();
        c.upsert_pod(Arc::new(running));
        assert_eq!(c.snapshot().nodes["n1"].requested.milli_cpu, 0);
        c.upsert_pod(pod("a", "500m", "n1"));
        // A node that goes keeps a placeholder while pods remain on it.
        c.remove_node("n1");
        assert!(c.snapshot().schedulable_nodes().next().is_none());
        c.remove_pod("d/a");
        assert!(c.snapshot().nodes.is_empty());
    }
}
