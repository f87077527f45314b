//! The filter and score plugins, each upstream's behaviour and reason text: NodeName,
//! NodeUnschedulable, NodeResourcesFit (with the LeastAllocated score), NodeAffinity,
//! TaintToleration and NodeResourcesBalancedAllocation; the plugins that look at other pods
//! (PodTopologySpread, InterPodAffinity) have their own modules.
//!
//! A filter answers whether a pod may go to a node and, if not, why (the reason strings are
//! what `FailedScheduling` events count). A score ranks the nodes that passed, 0..=100 after
//! normalization; the framework weighs and sums them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::affinity::InterPodAffinity;
use super::snapshot::{NodeInfo, PodInfo, Resources, Snapshot};
use super::spread::PodTopologySpread;
use crate::api::core::{Taint, Toleration};
use crate::api::selector::{LabelSelector, LabelSelectorRequirement};
use crate::api::{Node, Pod};

/// Highest score a plugin gives a node (upstream `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// The taint a cordoned node is treated as having.
pub const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

/// Why a node cannot take a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reasons: Vec<String>,
    /// Removing other pods from the node would not help (preemption skips such nodes).
    pub unresolvable: bool,
}

impl Reject {
    pub fn resolvable(reasons: Vec<String>) -> Reject {
        Reject {
            reasons,
            unresolvable: false,
        }
    }

    pub fn unresolvable(reason: &str) -> Reject {
        Reject {
            reasons: vec![reason.to_string()],
            unresolvable: true,
        }
    }
}

/// What plugins compute once per cycle (at PreFilter) and read for every node, keyed by
/// plugin name.
#[derive(Default)]
pub struct CycleState {
    data: BTreeMap<&'static str, Box<dyn std::any::Any + Send + Sync>>,
}

impl CycleState {
    pub fn put<T: std::any::Any + Send + Sync>(&mut self, plugin: &'static str, value: T) {
        self.data.insert(plugin, Box::new(value));
    }

    pub fn get<T: std::any::Any>(&self, plugin: &'static str) -> Option<&T> {
        self.data.get(plugin).and_then(|v| v.downcast_ref())
    }
}

/// One plugin at the PreFilter, Filter and Score extension points.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Once per cycle, before any node is filtered: computes what the plugin needs from the
    /// whole cluster into `state`; a rejection here makes the pod unschedulable everywhere.
    fn pre_filter(
        &self,
        _pod: &PodInfo,
        _snap: &Snapshot,
        _state: &mut CycleState,
    ) -> Result<(), Reject> {
        Ok(())
    }

    /// Whether `pod` fits `node`.
    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Result<(), Reject> {
        Ok(())
    }

    /// Whether the plugin scores at all (the framework skips the rest for it).
    fn scores(&self) -> bool {
        false
    }

    /// Once per cycle, after filtering and only when there are at least two feasible nodes
    /// to rank: computes what scoring needs into `state`. `false` skips this plugin's score
    /// and normalize for the cycle (upstream's `Skip` status), so a pod the plugin has
    /// nothing to say about costs no per-node work.
    fn pre_score(
        &self,
        _pod: &PodInfo,
        _snap: &Snapshot,
        _feasible: &[&NodeInfo],
        _state: &mut CycleState,
    ) -> bool {
        true
    }

    /// A raw score for a node that passed every filter.
    fn score(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    /// Maps the raw scores of all feasible nodes onto 0..=[`MAX_NODE_SCORE`] in place.
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// Scales scores so the highest becomes [`MAX_NODE_SCORE`] (or, `reverse`, the lowest does).
fn normalize_to_max(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        let scaled = if max == 0 {
            0
        } else {
            *s * MAX_NODE_SCORE / max
        };
        *s = if reverse {
            MAX_NODE_SCORE - scaled
        } else {
            scaled
        };
    }
    if reverse && max == 0 {
        scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
    }
}

/// `spec.nodeName` set before scheduling: only that node.
pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let want = &pod.pod.spec.node_name;
        if want.is_empty() || want == node.name() {
            return Ok(());
        }
        Err(Reject::unresolvable(
            "node(s) didn't match the requested node name",
        ))
    }
}

/// Cordoned nodes take only pods that tolerate the unschedulable taint.
pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let cordoned = node
            .node
            .as_ref()
            .is_some_and(|n| n.spec.unschedulable == Some(true));
        if !cordoned {
            return Ok(());
        }
        let taint = Taint {
            key: UNSCHEDULABLE_TAINT_KEY.into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if !pod
            .pod
            .spec
            .tolerations
            .iter()
            .any(|t| tolerates(t, &taint))
        {
            return Err(Reject::unresolvable("node(s) were unschedulable"));
        }
        Ok(())
    }
}

/// Requests must fit in what the node has left; scored by what would be left (LeastAllocated).
pub struct NodeResourcesFit;

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let (want, used, have) = (&pod.requests, &node.requested, &node.allocatable);
        let mut reasons = Vec::new();
        if used.pods + 1 > have.pods {
            reasons.push("Too many pods".to_string());
        }
        if want.milli_cpu > 0 && used.milli_cpu + want.milli_cpu > have.milli_cpu {
            reasons.push("Insufficient cpu".to_string());
        }
        if want.memory > 0 && used.memory + want.memory > have.memory {
            reasons.push("Insufficient memory".to_string());
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Reject::resolvable(reasons))
        }
    }

    fn scores(&self) -> bool {
        true
    }

    /// Upstream LeastAllocated with cpu and memory weighted 1 each.
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (used, have) = after(pod, node);
        let free = |used: i64, have: i64| {
            if have == 0 || used > have {
                0
            } else {
                (have - used) * MAX_NODE_SCORE / have
            }
        };
        (free(used.milli_cpu, have.milli_cpu) + free(used.memory, have.memory)) / 2
    }
}

/// What the node would have requested (non-zero accounting) with the pod, and its allocatable.
fn after(pod: &PodInfo, node: &NodeInfo) -> (Resources, Resources) {
    let mut used = node.non_zero_requested;
    used.add(&pod.non_zero);
    (used, node.allocatable)
}

/// Prefers nodes whose CPU and memory would be used in equal shares.
pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn scores(&self) -> bool {
        true
    }

    /// Upstream: (1 − standard deviation of the used fractions) × 100; a resource the node
    /// has none of is left out (so with one resource left the deviation is 0); with two the
    /// deviation is half their difference.
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (used, have) = after(pod, node);
        let fraction =
            |used: i64, have: i64| (have > 0).then(|| (used as f64 / have as f64).min(1.0));
        let std = match (
            fraction(used.milli_cpu, have.milli_cpu),
            fraction(used.memory, have.memory),
        ) {
            (Some(cpu), Some(mem)) => (cpu - mem).abs() / 2.0,
            _ => 0.0,
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

/// Whether `t` tolerates `taint` (upstream `ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if !t.effect.is_empty() && t.effect != taint.effect {
        return false;
    }
    if !t.key.is_empty() && t.key != taint.key {
        return false;
    }
    match t.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => t.value == taint.value,
        _ => false,
    }
}

/// The first NoSchedule or NoExecute taint no toleration tolerates (upstream
/// `FindMatchingUntoleratedTaint` with `DoNotScheduleTaintsFilterFunc`).
pub fn untolerated_taint<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

/// NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule ones lower the score.
pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let Some(n) = &node.node else { return Ok(()) };
        match untolerated_taint(&n.spec.taints, &pod.pod.spec.tolerations) {
            None => Ok(()),
            Some(t) => Err(Reject::unresolvable(&format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key, t.value
            ))),
        }
    }

    fn scores(&self) -> bool {
        true
    }

    /// The number of PreferNoSchedule taints the pod does not tolerate (fewer is better).
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(n) = &node.node else { return 0 };
        let tolerations = &pod.pod.spec.tolerations;
        n.spec
            .taints
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule")
            .filter(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64]) {
        normalize_to_max(scores, true);
    }
}

/// `nodeSelector` and required node affinity filter; preferred node affinity scores.
pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let Some(n) = &node.node else { return Ok(()) };
        if pod.node_selection.required_match(n) {
            Ok(())
        } else {
            Err(Reject::unresolvable(
                "node(s) didn't match Pod's node affinity/selector",
            ))
        }
    }

    fn scores(&self) -> bool {
        true
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(n) = &node.node else { return 0 };
        pod.node_selection.preferred_weight(n)
    }

    fn normalize(&self, scores: &mut [i64]) {
        normalize_to_max(scores, false);
    }
}

/// One node selector term (`matchExpressions` on labels, `matchFields` on `metadata.name`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorTerm {
    #[serde(default)]
    match_expressions: Vec<LabelSelectorRequirement>,
    #[serde(default)]
    match_fields: Vec<LabelSelectorRequirement>,
}

impl NodeSelectorTerm {
    /// Every requirement holds; an empty term matches nothing, as upstream.
    fn matches(&self, node: &Node) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        let labels = &node.metadata.labels;
        let field = |key: &str| (key == "metadata.name").then_some(node.metadata.name.as_str());
        self.match_fields
            .iter()
            .all(|r| requirement_holds(r, field(&r.key)))
            && self
                .match_expressions
                .iter()
                .all(|r| requirement_holds(r, labels.get(&r.key).map(String::as_str)))
    }
}

/// A node selector requirement: the label selector operators plus `Gt` and `Lt`.
fn requirement_holds(req: &LabelSelectorRequirement, value: Option<&str>) -> bool {
    let compare = |greater: bool| {
        let (Some(v), [bound]) = (value, req.values.as_slice()) else {
            return false;
        };
        match (v.parse::<i64>(), bound.parse::<i64>()) {
            (Ok(v), Ok(b)) => (greater && v > b) || (!greater && v < b),
            _ => false,
        }
    };
    match req.operator.as_str() {
        "Gt" => compare(true),
        "Lt" => compare(false),
        _ => req.matches_value(value),
    }
}

/// Where a pod may and would like to run: `nodeSelector` and node affinity, parsed once
/// per pod (filters and spread's inclusion policy read it for every node).
#[derive(Debug, Clone, Default)]
pub struct NodeSelection {
    selector: BTreeMap<String, String>,
    /// `None`: no required affinity; otherwise any term may match.
    required: Option<Vec<NodeSelectorTerm>>,
    preferred: Vec<(i64, NodeSelectorTerm)>,
}

impl NodeSelection {
    pub fn of(pod: &Pod) -> NodeSelection {
        let affinity = pod
            .spec
            .affinity
            .as_ref()
            .map_or(&Value::Null, |a| &a["nodeAffinity"]);
        let required =
            &affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        let term = |v: &Value| NodeSelectorTerm::deserialize(v).unwrap_or_default();
        let preferred = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|t| (t["weight"].as_i64().unwrap_or(0), term(&t["preference"])))
            .collect();
        NodeSelection {
            selector: pod.spec.node_selector.clone(),
            required: required.as_array().map(|ts| ts.iter().map(term).collect()),
            preferred,
        }
    }

    /// Whether `node` satisfies the `nodeSelector` and the required node affinity (upstream
    /// `GetRequiredNodeAffinity(pod).Match(node)`).
    pub fn required_match(&self, node: &Node) -> bool {
        let labels = &node.metadata.labels;
        let selector_ok = self.selector.iter().all(|(k, v)| labels.get(k) == Some(v));
        selector_ok
            && self
                .required
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| t.matches(node)))
    }

    /// The summed weights of the preferred terms `node` matches.
    pub fn preferred_weight(&self, node: &Node) -> i64 {
        let matching = self.preferred.iter().filter(|(_, t)| t.matches(node));
        matching.map(|(w, _)| w).sum()
    }
}

/// A `metav1.LabelSelector` from its JSON, as upstream's `LabelSelectorAsSelector`: a missing
/// or null selector selects nothing (`None` here), `{}` selects everything. A malformed one
/// also selects nothing (the API server rejects those on the way in).
pub fn label_selector(v: &Value) -> Option<LabelSelector> {
    if v.is_null() {
        return None;
    }
    LabelSelector::deserialize(v).ok()
}

/// The default plugins in upstream's order (filtering stops at the first rejection, so the
/// order decides which reason a node reports) with upstream's score weights.
pub fn default_plugins() -> Vec<(Box<dyn Plugin>, i64)> {
    vec![
        (Box::new(NodeUnschedulable), 1),
        (Box::new(NodeName), 1),
        (Box::new(TaintToleration), 3),
        (Box::new(NodeAffinity), 2),
        (Box::new(NodeResourcesFit), 1),
        (Box::new(BalancedAllocation), 1),
        (Box::new(PodTopologySpread), 2),
        (Box::new(InterPodAffinity), 2),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn node(v: Value) -> NodeInfo {
        NodeInfo::new(Arc::new(serde_json::from_value::<Node>(v).unwrap()))
    }

    fn pod(v: Value) -> PodInfo {
        PodInfo::new(Arc::new(serde_json::from_value::<Pod>(v).unwrap()))
    }

    #[test]
    fn tolerations_match_as_upstream() {
        let taint = Taint {
            key: "k".into(),
            value: "v".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let t = |v: Value| serde_json::from_value::<Toleration>(v).unwrap();
        assert!(tolerates(&t(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(
            &t(json!({"key": "k", "operator": "Exists"})),
            &taint
        ));
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(&t(json!({"key": "k", "value": "w"})), &taint));
        assert!(!tolerates(
            &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }

    #[test]
    fn filters_give_upstream_reasons() {
        let n = node(
            json!({"metadata": {"name": "n1", "labels": {"zone": "a", "gen": "5"}},
            "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "1"}}}),
        );
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}),
        );
        let fit = NodeResourcesFit
            .filter(&CycleState::default(), &p, &n)
            .unwrap_err();
        assert_eq!(fit.reasons, ["Insufficient cpu", "Insufficient memory"]);
        let taint = TaintToleration
            .filter(&CycleState::default(), &p, &n)
            .unwrap_err();
        assert_eq!(
            taint.reasons,
            ["node(s) had untolerated taint {dedicated: db}"]
        );
        let picky = pod(json!({"spec": {"nodeSelector": {"zone": "b"}}}));
        assert!(NodeAffinity
            .filter(&CycleState::default(), &picky, &n)
            .is_err());
        let gt = pod(json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]}}}}}));
        assert!(NodeAffinity.filter(&CycleState::default(), &gt, &n).is_ok());
        let by_name = pod(json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}}}));
        assert!(NodeAffinity
            .filter(&CycleState::default(), &by_name, &n)
            .is_err());
        let elsewhere = pod(json!({"spec": {"nodeName": "n2"}}));
        assert!(
            NodeName
                .filter(&CycleState::default(), &elsewhere, &n)
                .unwrap_err()
                .unresolvable
        );
        let cordoned = node(json!({"metadata": {"name": "n3"}, "spec": {"unschedulable": true}}));
        assert!(NodeUnschedulable
            .filter(&CycleState::default(), &picky, &cordoned)
            .is_err());
    }

    #[test]
    fn scores_prefer_free_and_balanced_nodes() {
        let p = pod(json!({"spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}));
        let big = node(json!({"metadata": {"name": "big"},
            "status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "10"}}}));
        let small = node(json!({"metadata": {"name": "small"},
            "status": {"allocatable": {"cpu": "2", "memory": "2Gi", "pods": "10"}}}));
        assert!(
            NodeResourcesFit.score(&CycleState::default(), &p, &big)
                > NodeResourcesFit.score(&CycleState::default(), &p, &small)
        );
        let skewed = node(json!({"metadata": {"name": "skewed"},
            "status": {"allocatable": {"cpu": "2", "memory": "64Gi", "pods": "10"}}}));
        assert!(
            BalancedAllocation.score(&CycleState::default(), &p, &small)
                > BalancedAllocation.score(&CycleState::default(), &p, &skewed)
        );
        let mut s = vec![0, 2, 1];
        TaintToleration.normalize(&mut s);
        assert_eq!(s, [100, 0, 50]);
    }
}
