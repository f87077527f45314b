//! PodTopologySpread (kube-scheduler 1.32's plugin of that name): keeps the pods a
//! `topologySpreadConstraints` entry selects evenly spread over topology domains (the nodes
//! sharing a `topologyKey` label value).
//!
//! It owns reading a pod's constraints, the per-cycle count of matching pods per domain,
//! the `DoNotSchedule` filter and the `ScheduleAnyway` score. It reads the whole cluster,
//! unlike the per-node plugins in `plugins`, hence its own module.
//!
//! As upstream:
//! - A constraint counts pods its `labelSelector` (narrowed by `matchLabelKeys` from the
//!   incoming pod's labels) selects, in the incoming pod's namespace, not terminating, on
//!   nodes that carry every constraint's topology key and pass the constraint's inclusion
//!   policies: `nodeAffinityPolicy` (default `Honor`: the pod's `nodeSelector` and required
//!   node affinity) and `nodeTaintsPolicy` (default `Ignore`). An empty selector (`{}`)
//!   counts no pod but matches the incoming pod itself.
//! - Filter (`DoNotSchedule`): a node without the key is unresolvable; otherwise
//!   `count(domain) + selfMatch − globalMin ≤ maxSkew`, where `globalMin` is the smallest
//!   domain count, or 0 when there are fewer domains than `minDomains`.
//! - Score (`ScheduleAnyway`): per constraint `count(domain) · ln(domains + 2) + maxSkew − 1`
//!   (domains counted among the feasible nodes; `kubernetes.io/hostname` counts per node),
//!   summed; normalized so the fewest matching pods score 100 and nodes missing a key 0.
//!
//! Left out: upstream's default constraints for pods that declare none. Upstream's default
//! `defaultingType: System` adds soft zone (maxSkew 5) and hostname (maxSkew 3) spreading
//! for pods selected by a Service, ReplicaSet, ReplicationController or StatefulSet; here
//! defaulting is off (as `defaultingType: List` with no constraints), so a pod without
//! constraints costs this plugin nothing. Also no AddPod/RemovePod PreFilter extensions
//! (they serve preemption, which does not exist yet).

use std::collections::BTreeMap;

use serde_json::Value;

use super::plugins::{
    label_selector, untolerated_taint, CycleState, Plugin, Reject, MAX_NODE_SCORE,
};
use super::snapshot::{NodeInfo, PodInfo, Snapshot};
use crate::api::selector::{LabelSelector, LabelSelectorRequirement};
use crate::api::{Node, Pod};

/// The plugin's name, also its PreFilter state's key.
pub const NAME: &str = "PodTopologySpread";
/// Key of the PreScore state.
const PRE_SCORE_KEY: &str = "PodTopologySpread/PreScore";
pub const REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
pub const REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// The well-known per-node topology key; scoring counts it per node instead of per domain.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// `minDomains` when a constraint does not set it (a count of domains).
pub const DEFAULT_MIN_DOMAINS: i64 = 1;
/// The raw score of a feasible node that lacks a topology key; normalized to 0 (upstream
/// `invalidScore`). Real raw scores are ≥ 0.
const IGNORED_NODE_SCORE: i64 = -1;

const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";

/// One constraint as the plugin uses it (upstream `topologySpreadConstraint`).
#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    /// `None`: no `labelSelector`, which selects nothing; `{}` counts no pod either.
    selector: Option<LabelSelector>,
    /// Whether the incoming pod matches its own selector (it counts once placed).
    self_match: i64,
    min_domains: i64,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    fn parse(c: &Value, pod_labels: &BTreeMap<String, String>) -> Constraint {
        let mut selector = label_selector(&c["labelSelector"]);
        let keys = c["matchLabelKeys"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        if let Some(sel) = selector.as_mut() {
            for key in keys.iter().filter_map(Value::as_str) {
                if let Some(value) = pod_labels.get(key) {
                    sel.match_expressions.push(LabelSelectorRequirement {
                        key: key.to_string(),
                        operator: "In".to_string(),
                        values: vec![value.clone()],
                        ..LabelSelectorRequirement::default()
                    });
                }
            }
        }
        let self_match = selector.as_ref().is_some_and(|s| s.matches(pod_labels));
        Constraint {
            max_skew: c["maxSkew"].as_i64().unwrap_or(1),
            topology_key: c["topologyKey"].as_str().unwrap_or("").to_string(),
            self_match: i64::from(self_match),
            selector,
            min_domains: c["minDomains"].as_i64().unwrap_or(DEFAULT_MIN_DOMAINS),
            honor_node_affinity: c["nodeAffinityPolicy"].as_str() != Some("Ignore"),
            honor_node_taints: c["nodeTaintsPolicy"].as_str() == Some("Honor"),
        }
    }

    /// Whether a node the pod's node affinity (`affinity_ok`) and taints (`taints_ok`) judge
    /// so counts for this constraint (upstream `matchNodeInclusionPolicies`).
    fn includes(&self, inclusion: Inclusion) -> bool {
        (!self.honor_node_affinity || inclusion.affinity_ok)
            && (!self.honor_node_taints || inclusion.taints_ok)
    }

    /// Pods on `node` the constraint counts (upstream `countPodsMatchSelector`).
    fn count(&self, node: &NodeInfo, namespace: &str) -> i64 {
        let Some(sel) = &self.selector else { return 0 };
        if sel.is_empty() {
            return 0;
        }
        let counted = node.pods.values().filter(|p| {
            let m = &p.pod.metadata;
            m.deletion_timestamp.is_none() && m.namespace == namespace && sel.matches(&m.labels)
        });
        counted.count() as i64
    }
}

/// How the incoming pod's node affinity and taints judge one node, worked out once per node
/// for all constraints.
#[derive(Debug, Clone, Copy)]
struct Inclusion {
    affinity_ok: bool,
    taints_ok: bool,
}

/// The nodes that carry every constraint's key, with how the pod's inclusion policies judge
/// each (computed only if some constraint honours them).
fn keyed_nodes<'a>(
    pod: &'a PodInfo,
    snap: &'a Snapshot,
    constraints: &'a [Constraint],
) -> impl Iterator<Item = (&'a NodeInfo, &'a Node, Inclusion)> {
    let affinity = constraints.iter().any(|c| c.honor_node_affinity);
    let taints = constraints.iter().any(|c| c.honor_node_taints);
    snap.schedulable_nodes().filter_map(move |info| {
        let node = info.node.as_deref()?;
        if !has_all_keys(&node.metadata.labels, constraints) {
            return None;
        }
        let inclusion = Inclusion {
            affinity_ok: !affinity || pod.node_selection.required_match(node),
            taints_ok: !taints
                || untolerated_taint(&node.spec.taints, &pod.pod.spec.tolerations).is_none(),
        };
        Some((info, node, inclusion))
    })
}

/// The pod's constraints with `whenUnsatisfiable` equal to `when`.
fn constraints(pod: &Pod, when: &str) -> Vec<Constraint> {
    let all = &pod.spec.topology_spread_constraints;
    all.iter()
        .filter(|c| c["whenUnsatisfiable"].as_str() == Some(when))
        .map(|c| Constraint::parse(c, &pod.metadata.labels))
        .collect()
}

/// Whether the node carries every constraint's topology key.
fn has_all_keys(labels: &BTreeMap<String, String>, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Adds `n` to a domain's count, creating the domain.
fn add(domains: &mut BTreeMap<String, i64>, value: &str, n: i64) {
    match domains.get_mut(value) {
        Some(count) => *count += n,
        None => {
            domains.insert(value.to_string(), n);
        }
    }
}

/// The smallest domain count, or 0 with fewer domains than `min_domains` (upstream
/// `minMatchNum`).
fn global_min(domains: &BTreeMap<String, i64>, min_domains: i64) -> i64 {
    if (domains.len() as i64) < min_domains {
        return 0;
    }
    domains.values().copied().min().unwrap_or(0)
}

/// What Filter reads, computed once per cycle (upstream `preFilterState`).
struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: matching pods per domain, over the nodes that count.
    counts: Vec<BTreeMap<String, i64>>,
    /// Per constraint: the global minimum the skew is measured from.
    min_match: Vec<i64>,
}

/// Upstream `calPreFilterState`.
fn pre_filter_state(
    pod: &PodInfo,
    snap: &Snapshot,
    constraints: Vec<Constraint>,
) -> PreFilterState {
    let mut counts = vec![BTreeMap::new(); constraints.len()];
    let namespace = &pod.pod.metadata.namespace;
    for (info, node, inclusion) in keyed_nodes(pod, snap, &constraints) {
        let labels = &node.metadata.labels;
        for (c, domains) in constraints.iter().zip(counts.iter_mut()) {
            if c.includes(inclusion) {
                add(domains, &labels[&c.topology_key], c.count(info, namespace));
            }
        }
    }
    let min_match = constraints
        .iter()
        .zip(&counts)
        .map(|(c, domains)| global_min(domains, c.min_domains))
        .collect();
    PreFilterState {
        constraints,
        counts,
        min_match,
    }
}

/// What Score reads (upstream `preScoreState`).
struct PreScoreState {
    constraints: Vec<Constraint>,
    /// Per constraint: matching pods per domain of a feasible node (empty for hostname).
    counts: Vec<BTreeMap<String, i64>>,
    /// Per constraint: `ln(domains + 2)`, so counts in few large domains are not watered
    /// down by many small ones (upstream `topologyNormalizingWeight`).
    weights: Vec<f64>,
}

/// Upstream `initPreScoreState` and `PreScore`: domains from the feasible nodes, counts from
/// every node that has the keys and passes the inclusion policies.
fn pre_score_state(
    pod: &PodInfo,
    snap: &Snapshot,
    feasible: &[&NodeInfo],
    constraints: Vec<Constraint>,
) -> PreScoreState {
    let mut counts = vec![BTreeMap::new(); constraints.len()];
    let mut ignored = 0;
    for node in feasible.iter().filter_map(|n| n.node.as_ref()) {
        let labels = &node.metadata.labels;
        if !has_all_keys(labels, &constraints) {
            ignored += 1;
            continue;
        }
        for (c, domains) in constraints.iter().zip(counts.iter_mut()) {
            if c.topology_key != HOSTNAME_LABEL {
                add(domains, &labels[&c.topology_key], 0);
            }
        }
    }
    let weights = constraints
        .iter()
        .zip(&counts)
        .map(|(c, domains)| {
            let size = if c.topology_key == HOSTNAME_LABEL {
                feasible.len() - ignored
            } else {
                domains.len()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    let namespace = &pod.pod.metadata.namespace;
    for (info, node, inclusion) in keyed_nodes(pod, snap, &constraints) {
        let labels = &node.metadata.labels;
        for (c, domains) in constraints.iter().zip(counts.iter_mut()) {
            // Domains no feasible node is in are not scored, so not counted.
            let Some(count) = domains.get_mut(&labels[&c.topology_key]) else {
                continue;
            };
            if c.includes(inclusion) {
                *count += c.count(info, namespace);
            }
        }
    }
    PreScoreState {
        constraints,
        counts,
        weights,
    }
}

/// The PodTopologySpread plugin.
pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        snap: &Snapshot,
        state: &mut CycleState,
    ) -> Result<(), Reject> {
        if pod.pod.spec.topology_spread_constraints.is_empty() {
            return Ok(()); // Nothing to do; no state, so Filter passes every node.
        }
        let hard = constraints(&pod.pod, DO_NOT_SCHEDULE);
        if !hard.is_empty() {
            state.put(NAME, pre_filter_state(pod, snap, hard));
        }
        Ok(())
    }

    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<(), Reject> {
        let Some(s) = state.get::<PreFilterState>(NAME) else {
            return Ok(());
        };
        let Some(n) = &node.node else { return Ok(()) };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = n.metadata.labels.get(&c.topology_key) else {
                return Err(Reject::unresolvable(REASON_NODE_LABEL_NOT_MATCH));
            };
            let matched = s.counts[i].get(value).copied().unwrap_or(0);
            if matched + c.self_match - s.min_match[i] > c.max_skew {
                let reason = REASON_CONSTRAINTS_NOT_MATCH.to_string();
                return Err(Reject::resolvable(vec![reason]));
            }
        }
        Ok(())
    }

    fn scores(&self) -> bool {
        true
    }

    fn pre_score(
        &self,
        pod: &PodInfo,
        snap: &Snapshot,
        feasible: &[&NodeInfo],
        state: &mut CycleState,
    ) -> bool {
        if pod.pod.spec.topology_spread_constraints.is_empty() || feasible.is_empty() {
            return false;
        }
        let soft = constraints(&pod.pod, SCHEDULE_ANYWAY);
        if soft.is_empty() {
            return false;
        }
        let s = pre_score_state(pod, snap, feasible, soft);
        state.put(PRE_SCORE_KEY, s);
        true
    }

    /// Matching pods in the node's domains, weighted; fewer is better (see `normalize`).
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.get::<PreScoreState>(PRE_SCORE_KEY) else {
            return IGNORED_NODE_SCORE;
        };
        let Some(n) = &node.node else {
            return IGNORED_NODE_SCORE;
        };
        let labels = &n.metadata.labels;
        if !has_all_keys(labels, &s.constraints) {
            return IGNORED_NODE_SCORE;
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let count = if c.topology_key == HOSTNAME_LABEL {
                c.count(node, &pod.pod.metadata.namespace)
            } else {
                let domain = &labels[&c.topology_key];
                s.counts[i].get(domain).copied().unwrap_or(0)
            };
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    /// Upstream: `100 · (max + min − score) / max` over the nodes with every key, so the
    /// fewest matching pods score 100; all-zero scores 100 everywhere; ignored nodes 0.
    fn normalize(&self, scores: &mut [i64]) {
        let valid = scores.iter().copied().filter(|&s| s != IGNORED_NODE_SCORE);
        let (min, max) = valid.fold((i64::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
        for s in scores.iter_mut() {
            *s = if *s == IGNORED_NODE_SCORE {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::Framework;
    use crate::scheduler::snapshot::Cache;
    use crate::scheduler::testing;
    use serde_json::json;
    use std::sync::Arc;

    const ZONE: &str = "topology.kubernetes.io/zone";

    /// Nodes `(name, labels, tainted)`.
    fn cluster(nodes: &[(&str, Value, bool)], pods: &[Arc<Pod>]) -> Cache {
        let mut c = Cache::default();
        for (name, labels, tainted) in nodes {
            let mut labels = labels.clone();
            labels[HOSTNAME_LABEL] = json!(name);
            let taints = if *tainted {
                json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
            } else {
                json!([])
            };
            let n: Node =
                serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
                "spec": {"taints": taints},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
                .unwrap();
            c.upsert_node(Arc::new(n));
        }
        for p in pods {
            c.upsert_pod(p.clone());
        }
        c
    }

    /// Zones a (n1), b (n2), c (n3); n4 has no zone.
    fn zones() -> Vec<(&'static str, Value, bool)> {
        vec![
            ("n1", json!({ZONE: "a"}), false),
            ("n2", json!({ZONE: "b"}), false),
            ("n3", json!({ZONE: "c"}), false),
            ("n4", json!({}), false),
        ]
    }

    fn pod(name: &str, labels: Value, node: &str, spec: Value) -> Arc<Pod> {
        let mut spec = spec;
        if spec.is_null() {
            spec = json!({});
        }
        spec["nodeName"] = json!(node);
        let p =
            json!({"metadata": {"name": name, "namespace": "d", "labels": labels}, "spec": spec});
        Arc::new(serde_json::from_value(p).unwrap())
    }

    fn web(name: &str, node: &str) -> Arc<Pod> {
        pod(name, json!({"app": "web"}), node, Value::Null)
    }

    /// One constraint on `key` selecting `app=web`, plus `extra` fields.
    fn constraint(key: &str, max_skew: i64, when: &str, extra: Value) -> Value {
        let mut c = json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        c
    }

    fn spreading(labels: Value, constraints: Value, spec: Value) -> Arc<Pod> {
        let mut spec = if spec.is_null() { json!({}) } else { spec };
        spec["topologySpreadConstraints"] = constraints;
        pod("new", labels, "", spec)
    }

    fn filter_all(incoming: &Arc<Pod>, c: &Cache) -> Vec<Option<(String, bool)>> {
        testing::filter_all(&PodTopologySpread, incoming, c)
    }

    fn skewed() -> Option<(String, bool)> {
        Some((REASON_CONSTRAINTS_NOT_MATCH.to_string(), false))
    }

    fn unlabelled() -> Option<(String, bool)> {
        Some((REASON_NODE_LABEL_NOT_MATCH.to_string(), true))
    }

    #[test]
    fn a_node_without_the_key_is_unresolvable() {
        let c = cluster(&zones(), &[]);
        let hard = json!([constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}))]);
        let p = spreading(json!({"app": "web"}), hard, Value::Null);
        assert_eq!(filter_all(&p, &c), [None, None, None, unlabelled()]);
    }

    #[test]
    fn skew_counts_the_incoming_pod_when_it_selects_itself() {
        let pods = [
            web("w1", "n1"),
            web("w2", "n1"),
            web("w3", "n2"),
            web("w4", "n3"),
        ];
        let c = cluster(&zones(), &pods);
        let hard = json!([constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}))]);
        // a: 2 + 1 − 1 > 1; b, c: 1 + 1 − 1 ≤ 1.
        let p = spreading(json!({"app": "web"}), hard.clone(), Value::Null);
        assert_eq!(filter_all(&p, &c), [skewed(), None, None, unlabelled()]);
        // Not selected by its own constraint: a: 2 + 0 − 1 ≤ 1.
        let p = spreading(json!({"app": "api"}), hard, Value::Null);
        assert_eq!(filter_all(&p, &c), [None, None, None, unlabelled()]);
    }

    #[test]
    fn only_live_matching_pods_of_the_namespace_count() {
        let terminating = pod("t", json!({"app": "web"}), "n2", Value::Null);
        let mut terminating = (*terminating).clone();
        terminating.metadata.deletion_timestamp = Some("2024-01-01T00:00:00Z".into());
        let mut other_ns = (*web("o", "n2")).clone();
        other_ns.metadata.namespace = "e".into();
        let pods = [
            web("w1", "n1"),
            Arc::new(terminating),
            Arc::new(other_ns),
            pod("api", json!({"app": "api"}), "n2", Value::Null),
            web("w3", "n3"),
        ];
        let c = cluster(&zones(), &pods);
        let hard = json!([constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}))]);
        let p = spreading(json!({"app": "web"}), hard, Value::Null);
        // b counts 0: a and c (1 each) are full at maxSkew 1.
        assert_eq!(filter_all(&p, &c), [skewed(), None, skewed(), unlabelled()]);
        // An empty selector counts nothing but selects the pod itself (upstream).
        let mut everything = constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}));
        everything["labelSelector"] = json!({});
        let p = spreading(json!({"app": "web"}), json!([everything]), Value::Null);
        assert_eq!(filter_all(&p, &c), [None, None, None, unlabelled()]);
    }

    #[test]
    fn min_domains_makes_the_global_minimum_zero() {
        let pods = [web("w1", "n1"), web("w2", "n2"), web("w3", "n3")];
        let c = cluster(&zones(), &pods);
        let plain = json!([constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}))]);
        let p = spreading(json!({"app": "web"}), plain, Value::Null);
        assert_eq!(filter_all(&p, &c), [None, None, None, unlabelled()]);
        // Three domains, four wanted: the minimum is 0, so 1 + 1 − 0 > 1 everywhere.
        let four = json!([constraint(
            ZONE,
            1,
            DO_NOT_SCHEDULE,
            json!({"minDomains": 4})
        )]);
        let p = spreading(json!({"app": "web"}), four, Value::Null);
        assert_eq!(
            filter_all(&p, &c),
            [skewed(), skewed(), skewed(), unlabelled()]
        );
    }

    #[test]
    fn inclusion_policies_decide_which_nodes_are_domains() {
        let mut nodes = zones();
        nodes[2].2 = true; // Zone c tainted.
        nodes[0].1["disk"] = json!("ssd");
        nodes[1].1["disk"] = json!("ssd");
        let c = cluster(&nodes, &[web("w1", "n1"), web("w2", "n2")]);
        let with = |extra: Value, spec: Value| {
            let hard = json!([constraint(ZONE, 1, DO_NOT_SCHEDULE, extra)]);
            filter_all(&spreading(json!({"app": "web"}), hard, spec), &c)
        };
        // Taints ignored by default: empty zone c keeps the minimum at 0.
        assert_eq!(
            with(json!({}), Value::Null),
            [skewed(), skewed(), None, unlabelled()]
        );
        let honor = json!({"nodeTaintsPolicy": "Honor"});
        assert_eq!(with(honor, Value::Null), [None, None, None, unlabelled()]);
        // Node affinity honoured by default: zone c has no ssd, so it is no domain.
        let ssd = json!({"nodeSelector": {"disk": "ssd"}});
        assert_eq!(
            with(json!({}), ssd.clone()),
            [None, None, None, unlabelled()]
        );
        let ignore = json!({"nodeAffinityPolicy": "Ignore"});
        assert_eq!(with(ignore, ssd), [skewed(), skewed(), None, unlabelled()]);
    }

    #[test]
    fn nodes_missing_any_constraints_key_are_not_counted() {
        let mut nodes = zones();
        nodes[0].1["rack"] = json!("r1");
        nodes[1].1["rack"] = json!("r2");
        // n3 (zone c) has no rack: its pods and its zone do not count.
        let c = cluster(&nodes, &[web("w1", "n1"), web("w2", "n2")]);
        let hard = json!([
            constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({})),
            constraint("rack", 5, DO_NOT_SCHEDULE, json!({}))
        ]);
        let p = spreading(json!({"app": "web"}), hard, Value::Null);
        assert_eq!(filter_all(&p, &c), [None, None, unlabelled(), unlabelled()]);
    }

    #[test]
    fn match_label_keys_narrow_the_selector() {
        let v1 = |name: &str, node: &str| {
            pod(name, json!({"app": "web", "ver": "1"}), node, Value::Null)
        };
        let c = cluster(&zones(), &[v1("w1", "n1"), v1("w2", "n1")]);
        let keyed = json!([constraint(
            ZONE,
            1,
            DO_NOT_SCHEDULE,
            json!({"matchLabelKeys": ["ver"]})
        )]);
        let v2 = spreading(
            json!({"app": "web", "ver": "2"}),
            keyed.clone(),
            Value::Null,
        );
        assert_eq!(filter_all(&v2, &c), [None, None, None, unlabelled()]);
        let v1 = spreading(json!({"app": "web", "ver": "1"}), keyed, Value::Null);
        assert_eq!(filter_all(&v1, &c), [skewed(), None, None, unlabelled()]);
    }

    #[test]
    fn pods_without_constraints_leave_no_state() {
        let c = cluster(&zones(), &[web("w1", "n1")]);
        let info = PodInfo::new(web("new", ""));
        let mut state = CycleState::default();
        let snap = c.snapshot();
        PodTopologySpread
            .pre_filter(&info, snap, &mut state)
            .unwrap();
        assert!(state.get::<PreFilterState>(NAME).is_none());
        let nodes: Vec<&NodeInfo> = snap.schedulable_nodes().collect();
        assert!(!PodTopologySpread.pre_score(&info, snap, &nodes, &mut state));
        // Only ScheduleAnyway constraints: no filter state either.
        let soft = json!([constraint(ZONE, 1, SCHEDULE_ANYWAY, json!({}))]);
        let info = PodInfo::new(spreading(json!({"app": "web"}), soft, Value::Null));
        PodTopologySpread
            .pre_filter(&info, snap, &mut state)
            .unwrap();
        assert!(state.get::<PreFilterState>(NAME).is_none());
    }

    fn scores(incoming: &Arc<Pod>, c: &Cache) -> (Vec<i64>, Vec<i64>) {
        testing::scores(&PodTopologySpread, incoming, c)
    }

    #[test]
    fn schedule_anyway_prefers_domains_with_fewer_matching_pods() {
        let mut nodes = zones();
        nodes.insert(1, ("n1b", json!({ZONE: "a"}), false));
        let pods = [web("w1", "n1"), web("w2", "n1"), web("w3", "n3")];
        let c = cluster(&nodes, &pods);
        let soft = json!([constraint(ZONE, 1, SCHEDULE_ANYWAY, json!({}))]);
        let p = spreading(json!({"app": "web"}), soft, Value::Null);
        // Three zones: weight ln 5; a holds 2, b 0, c 1; n4 (no zone) is ignored.
        let w = 5f64.ln();
        let a = (2.0 * w).round() as i64;
        let cz = w.round() as i64;
        let (raw, normalized) = scores(&p, &c);
        assert_eq!(raw, [a, a, 0, cz, IGNORED_NODE_SCORE]);
        let expect = |s: i64| MAX_NODE_SCORE * (a - s) / a;
        assert_eq!(normalized, [0, 0, 100, expect(cz), 0]);
        // maxSkew − 1 is added everywhere; per-host counts for the hostname key.
        let soft = json!([constraint(HOSTNAME_LABEL, 3, SCHEDULE_ANYWAY, json!({}))]);
        let p = spreading(json!({"app": "web"}), soft, Value::Null);
        let w = 7f64.ln(); // Five hosts.
        let (raw, normalized) = scores(&p, &c);
        let two = (2.0 * w + 2.0).round() as i64;
        let one = (w + 2.0).round() as i64;
        assert_eq!(raw, [two, 2, 2, one, 2]);
        // (max + min − score) / max: the most crowded host keeps min / max.
        let host = |s: i64| MAX_NODE_SCORE * (two + 2 - s) / two;
        assert_eq!(normalized, [host(two), 100, 100, host(one), 100]);
    }

    #[test]
    fn the_framework_spreads_evenly_and_reports_as_upstream() {
        let fw = Framework::with_defaults();
        let mut c = cluster(&zones()[..3], &[]);
        let hard = json!([constraint(ZONE, 1, DO_NOT_SCHEDULE, json!({}))]);
        let mut random = testing::xorshift(7);
        for i in 0..6 {
            let p = pod(
                &format!("w{i}"),
                json!({"app": "web"}),
                "",
                json!({"topologySpreadConstraints": hard}),
            );
            let info = Arc::new(PodInfo::new(p));
            let placed = fw.schedule(&info, c.snapshot(), "", &mut random).0.unwrap();
            c.assume(info, &placed.node);
        }
        let per_node: Vec<usize> = c.snapshot().nodes.values().map(|n| n.pods.len()).collect();
        assert_eq!(per_node, [2, 2, 2]);
        // n1 full, n2's zone tainted, n3 without a zone.
        let mut nodes = zones();
        nodes.remove(2);
        nodes[1].2 = true;
        let c = cluster(&nodes, &[web("w1", "n1"), web("w2", "n1")]);
        let p = spreading(json!({"app": "web"}), hard, Value::Null);
        let err = fw
            .schedule(&PodInfo::new(p), c.snapshot(), "", &mut random)
            .0
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, \
             1 node(s) didn't match pod topology spread constraints (missing required label), \
             1 node(s) had untolerated taint {dedicated: db}."
        );
        assert_eq!(err.resolvable_nodes, ["n1"]);
    }
}
